/*
 * harness.h - what the three weak-memory harnesses share (README.md).
 *
 * Each harness compiles a piece of lib/ as it is (the ring, the task state
 * word, the parker's handshake), runs a 2-3 thread scenario on it with
 * plain pthreads and C11 atomics, and checks the outcome with assert().
 *
 * Two ways to build:
 *  - plain (the default, what ctest runs): the scenario runs `iterations`
 *    times (argv[1]), each with fresh threads, with a little random jitter
 *    between steps so that more interleavings come up. Under -fsanitize=
 *    thread the same run also checks the happens-before edges the library
 *    claims (plain data published through the atomics).
 *  - -DHARNESS_MODEL: for a C11 model checker (GenMC, CDSChecker, ...). One
 *    run, no jitter, no argv; the checker explores the interleavings and
 *    the weak-memory behaviours itself and reports a failed assert().
 *
 * Failures are assert()s (kept in NDEBUG builds); `--broken` runs a variant
 * with a bug planted in the harness's own use of the code, to show that the
 * check catches it (ctest expects that run to fail).
 */
#ifndef WEFT_HARNESS_H
#define WEFT_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#undef NDEBUG
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "die.h"

/* lib/ reports a broken invariant through weft__die (error.c, which formats
 * with vfprintf); here it is an assertion failure a checker understands. */
void weft__die_at(const char *file, int line, const char *func, const char *fmt, ...)
{
	fprintf(stderr, "harness: weft__die at %s:%d (%s): %s\n", file, line, func, fmt);
	assert(!"weft__die: an invariant of lib/ broke");
	abort();
}

/* The scenario variant to run: HARNESS_MODE when a checker build fixes it,
 * else the plain run cycles through the n variants. */
#ifdef HARNESS_MODE
#define HARNESS_PICK_MODE(iter, n) ((void)(iter), (unsigned)(HARNESS_MODE))
#else
#define HARNESS_PICK_MODE(iter, n) ((unsigned)(iter) % (n))
#endif

#ifdef HARNESS_MODEL
#define HARNESS_JITTER() do { } while (0)
#define harness_seed(salt) ((void)(salt))
#else
#include <sched.h>
#include <time.h>
#include <unistd.h>

static _Thread_local uint64_t harness_rng;

static inline void harness_seed(unsigned salt)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	harness_rng = ((uint64_t)ts.tv_nsec << 16) ^ ((uint64_t)salt * 0x9e3779b97f4a7c15ull) ^ 1;
}

/* Between atomic steps: nothing, a short spin, or a yield. */
static inline void harness_jitter(void)
{
	uint64_t x = harness_rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	harness_rng = x;
	unsigned r = (unsigned)((x * 0x2545F4914F6CDD1Dull) >> 58); /* 0..63 */
	if (r < 40)
		return;
	if (r < 60) {
		for (volatile unsigned i = 0; i < r * 4; i++)
			;
		return;
	}
	sched_yield();
}
#define HARNESS_JITTER() harness_jitter()
#endif

/*
 * Path counters: each harness names the interesting paths of its scenario
 * (#define HARNESS_PATHS(X) X(name) ..., then HARNESS_DECLARE_PATHS()) and
 * counts them with HARNESS_HIT(name); a
 * plain run prints how often each came up, so a scenario that stopped
 * reaching a path shows. No-ops for a model checker.
 */
#ifdef HARNESS_MODEL
#define HARNESS_DECLARE_PATHS()
#define HARNESS_HIT(p) do { } while (0)
#define HARNESS_REPORT() do { } while (0)
#else
#define HARNESS_DECLARE_PATHS()                                               \
	enum { HARNESS_PATHS(HARNESS_ENUM_) P_COUNT_ };                       \
	static const char *const harness_path_name[] = {                      \
		HARNESS_PATHS(HARNESS_NAME_)                                  \
	};                                                                    \
	static atomic_long harness_hits[P_COUNT_];
#define HARNESS_ENUM_(p) P_##p,
#define HARNESS_NAME_(p) #p,
#define HARNESS_HIT(p) atomic_fetch_add_explicit(&harness_hits[P_##p], 1, memory_order_relaxed)
#define HARNESS_REPORT()                                                      \
	do {                                                                  \
		for (int p_ = 0; p_ < P_COUNT_; p_++)                         \
			printf("  %-24s %ld\n", harness_path_name[p_],        \
			       (long)atomic_load(&harness_hits[p_]));         \
	} while (0)
#endif

/* Start n threads running fn(arg[i]) and wait for all of them. */
static inline void harness_run(unsigned n, void *(*fn[])(void *), void *arg[])
{
	pthread_t th[8];
	assert(n <= 8);
	for (unsigned i = 0; i < n; i++) {
		int rc = pthread_create(&th[i], NULL, fn[i], arg[i]);
		assert(rc == 0);
		(void)rc;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* main() of a harness: `scenario(iteration, broken)` once per iteration.
 * Plain build: argv[1] iterations (default 20000), argv[2] "--broken". */
#ifdef HARNESS_MODEL
#define HARNESS_MAIN(scenario)                                                \
	int main(void)                                                        \
	{                                                                     \
		scenario(0, false);                                           \
		return 0;                                                     \
	}
#else
#define HARNESS_MAIN(scenario)                                                \
	int main(int argc, char **argv)                                       \
	{                                                                     \
		long iters = argc > 1 ? atol(argv[1]) : 20000;                \
		bool broken = argc > 2 && !strcmp(argv[2], "--broken");       \
		if (iters <= 0) {                                             \
			fprintf(stderr, "usage: %s [ITERATIONS [--broken]]\n", \
				argv[0]);                                     \
			return 2;                                             \
		}                                                             \
		for (long i = 0; i < iters; i++)                              \
			scenario((unsigned)i, broken);                        \
		printf("%s: %ld iterations%s, all checks held; paths:\n",     \
		       argv[0], iters, broken ? " (--broken)" : "");          \
		HARNESS_REPORT();                                             \
		return 0;                                                     \
	}
#endif

#endif /* WEFT_HARNESS_H */
