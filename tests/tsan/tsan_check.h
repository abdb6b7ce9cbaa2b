/*
 * tsan_check.h - minimal assertions for the ThreadSanitizer programs
 * (Criterion aborts at start under -fsanitize=thread, so these are plain
 * executables). A failed check prints where and exits 1.
 */
#ifndef WEFT_TSAN_CHECK_H
#define WEFT_TSAN_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,    \
				__LINE__, #cond);                                 \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
			exit(1);                                                  \
		}                                                                 \
	} while (0)

#define CHECK_EQ(a, b) CHECK((a) == (b), "%lld != %lld", (long long)(a), (long long)(b))

#endif
