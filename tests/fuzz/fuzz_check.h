/*
 * fuzz_check.h - the one assertion the fuzz targets use: on failure print
 * where and abort, which libFuzzer reports as a crash with the input.
 */
#ifndef WEFT_FUZZ_CHECK_H
#define WEFT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                         \
	do {                                                                             \
		if (!(c)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);  \
			abort();                                                         \
		}                                                                        \
	} while (0)

#endif
