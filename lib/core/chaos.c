/*
 * chaos.c - the perturbation points of chaos builds (see chaos.h).
 * Each thread draws from its own xorshift generator, seeded with the run's
 * seed and the order in which threads reached their first point; the same
 * seed replays the same decisions per thread (the OS scheduler still adds
 * its own variation, so a failing seed makes a failure likely, not certain).
 */
#include "chaos.h"

#ifdef WEFT_CHAOS
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t seed;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t thread_no;
static __thread uint64_t rng;

static void init(void)
{
	const char *s = getenv("WEFT_CHAOS_SEED");
	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	fprintf(stderr, "weft: chaos build, WEFT_CHAOS_SEED=%llu\n", (unsigned long long)seed);
}

void weft__chaos_point(void)
{
	if (!rng) {
		pthread_once(&once, init);
		rng = (seed ^ (0x9e3779b97f4a7c15ull * (atomic_fetch_add(&thread_no, 1) + 1))) | 1;
	}
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	unsigned r = (unsigned)(rng >> 32) & 1023;
	if (r < 16) {
		sched_yield();
	} else if (r < 32) {
		for (volatile int i = 0; i < (int)(rng & 255) * 8; i++)
			;
	} else if (r < 34) {
		usleep((useconds_t)(1 + (rng & 31)));
	}
}
#else
typedef int weft__chaos_disabled;
#endif
