/*
 * check.h - the non-fatal check of the tests/bpf C test programs: a failed
 * condition prints where and why and counts in `failures`, and the program
 * goes on to its other checks (main returns failures != 0).
 */
#ifndef WEFT_TESTS_BPF_CHECK_H
#define WEFT_TESTS_BPF_CHECK_H
#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                       \
			printf(__VA_ARGS__);                                              \
			printf("\n");                                                     \
			failures++;                                                       \
		}                                                                         \
	} while (0)

#endif
