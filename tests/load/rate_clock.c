/*
 * rate_clock.c - an LD_PRELOAD module for test_load.py's rate-gaps: the
 * main thread's clock (weft_now_ns, as weft-load reads it) stands still
 * but for its sleeps, which take no time - an absolute clock_nanosleep
 * on CLOCK_MONOTONIC moves that clock to its deadline and returns. An
 * open-loop driver then never falls behind its schedule, whatever the
 * rate: it starts exactly the units the schedule holds before the end
 * of --duration, and the count says what the gaps were. Every other
 * thread reads the real clock plus the time the main thread skipped, so
 * what it measures from a unit's scheduled start is never negative.
 * libweft's own clock reads (weft__now_ns) are not touched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static _Atomic uint64_t base;	/* the real clock at the main thread's first read */
static _Atomic uint64_t skipped; /* the time its sleeps skipped */

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int main_thread(void)
{
	return syscall(SYS_gettid) == getpid();
}

static uint64_t main_now(void)
{
	uint64_t b = atomic_load(&base), zero = 0;
	if (!b && !atomic_compare_exchange_strong(&base, &zero, b = real_ns()))
		b = zero;
	return b + atomic_load(&skipped);
}

EXPORT uint64_t weft_now_ns(void)
{
	return main_thread() ? main_now() : real_ns() + atomic_load(&skipped);
}

EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			   struct timespec *rem)
{
	if (clk == CLOCK_MONOTONIC && flags == TIMER_ABSTIME && main_thread()) {
		uint64_t want = (uint64_t)req->tv_sec * 1000000000ull + (uint64_t)req->tv_nsec,
			 now = main_now();
		if (want > now)
			atomic_fetch_add(&skipped, want - now);
		return 0;
	}
	int (*real)(clockid_t, int, const struct timespec *, struct timespec *) =
		(int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(
			RTLD_NEXT, "clock_nanosleep");
	return real(clk, flags, req, rem);
}
