/*
 * wt.h - small helpers shared by the weft Criterion tests.
 *
 * Rules every test follows:
 *  - cr_assert only on the Criterion test thread. Poll functions, drops,
 *    hooks and helper threads record problems in atomic counters that the
 *    test thread checks afterwards (Criterion's asserts unwind through
 *    longjmp and must not be used from other threads).
 *  - Waits for the runtime are bounded (WT_WAIT_UNTIL) so a lost wakeup is
 *    reported as a failed assertion naming what did not happen, not only as
 *    a Criterion timeout.
 *  - Every test ends with weft_runtime_destroy() == 0: destroy refuses
 *    (-EBUSY) while a join handle or a waker is outstanding, so a leaked
 *    reference fails the test.
 */
#ifndef WEFT_TESTS_WT_H
#define WEFT_TESTS_WT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <weft/weft.h>

/* Callbacks have fixed signatures; the project builds with the same flag. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Set by tests/CMakeLists.txt: 3 in sanitized builds, else 1. */
#ifndef WEFT_TEST_SLOW
#define WEFT_TEST_SLOW 1
#endif

/* A Criterion .timeout (seconds), scaled for sanitized builds. */
#define WT_TMO(s) ((double)(s) * WEFT_TEST_SLOW)

/* Skip a test the machine cannot run - but never silently in CI (CI=true,
 * as scripts/test sets it for any CI): there a skip fails, as the exit-77
 * script tests do. A Criterion skip exits 0, which ctest counts as a pass. */
#define WT_SKIP(...)                                                              \
	do {                                                                      \
		const char *ci_ = getenv("CI");                                   \
		if (ci_ && !strcmp(ci_, "true"))                                  \
			cr_assert_fail("cannot run here, and CI=true: " __VA_ARGS__); \
		cr_skip_test(__VA_ARGS__);                                        \
	} while (0)

static inline uint64_t wt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void wt_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Evaluate `cond` until it is true or `ms` milliseconds (scaled for
 * sanitizers) have passed; the value is the last evaluation of `cond`.
 */
#define WT_WAIT_UNTIL(cond, ms)                                               \
	({                                                                    \
		uint64_t wt_dl_ = wt_now_ns() +                               \
			(uint64_t)(ms) * 1000000ull * WEFT_TEST_SLOW;         \
		bool wt_ok_;                                                  \
		while (!(wt_ok_ = (cond)) && wt_now_ns() < wt_dl_)            \
			usleep(100);                                          \
		wt_ok_;                                                       \
	})

/* Generous bound for "the runtime will get to it" waits. */
#define WT_LONG_MS 5000

/*
 * On a failed "the runtime will get to it" wait: what the runtime's workers
 * were doing, on stderr, so that a liveness failure seen once in a CI log
 * can be told apart from a host stall - the metrics (queue depths, parks,
 * polls) and, per thread of the process, its state and kernel wait channel.
 */
static inline void wt_dump_runtime(struct weft_runtime *rt, const char *why)
{
	fprintf(stderr, "wt_dump_runtime: %s\n", why);
	struct weft_metrics *m = NULL;
	if (rt && weft_runtime_metrics(rt, &m) == 0) {
		fprintf(stderr, "  inject_depth %llu alive_tasks %llu remote_schedule %llu\n",
			(unsigned long long)m->inject_depth, (unsigned long long)m->alive_tasks,
			(unsigned long long)m->remote_schedule_count);
		for (unsigned i = 0; i < m->workers; i++) {
			struct weft_worker_metrics *w = &m->worker[i];
			fprintf(stderr,
				"  core %u tid %llu ring %llu polls %llu parks %llu noops %llu "
				"steals %llu/%llu mean_poll %llu ns stalls %llu\n",
				i, (unsigned long long)w->thread_id,
				(unsigned long long)w->local_queue_depth,
				(unsigned long long)w->poll_count, (unsigned long long)w->park_count,
				(unsigned long long)w->noop_count, (unsigned long long)w->steal_count,
				(unsigned long long)w->steal_operations,
				(unsigned long long)w->mean_poll_ns, (unsigned long long)w->stalls);
		}
		weft_metrics_free(m);
	}
	/* the shell's /proc/self is not ours: name the process */
	char cmd[256];
	snprintf(cmd, sizeof cmd,
		 "for t in /proc/%d/task/*; do echo \"  $(cut -d' ' -f1-3 $t/stat)"
		 " $(cat $t/wchan)\"; done 2>/dev/null",
		 (int)getpid());
	FILE *ls = popen(cmd, "r");
	if (ls) {
		char line[256];
		while (fgets(line, sizeof line, ls))
			fputs(line, stderr);
		pclose(ls);
	}
}

static inline struct weft_runtime *wt_rt_create(int workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt = NULL;
	int rc = weft_runtime_create(&o, &rt);
	cr_assert_eq(rc, 0, "weft_runtime_create(workers=%d) = %d (%s)", workers, rc,
		     weft_strerror(rc));
	cr_assert_not_null(rt);
	/* The io_uring run of a suite (tests/CMakeLists.txt) must not pass
	 * on a silent fallback to epoll. */
	const char *drv = getenv("WEFT_IO_DRIVER");
	if (drv && (!strcmp(drv, "uring") || !strcmp(drv, "io_uring")))
		cr_assert_eq(weft_runtime_io_driver(rt), WEFT_IO_DRIVER_URING,
			     "WEFT_IO_DRIVER=uring, but the runtime fell back to epoll");
	return rt;
}

static inline void wt_rt_destroy(struct weft_runtime *rt)
{
	int rc = weft_runtime_destroy(rt);
	cr_assert_eq(rc, 0, "weft_runtime_destroy = %d (%s): a join handle or waker "
		     "is still outstanding, or the runtime is broken", rc, weft_strerror(rc));
}

/* Sum of a per-worker metric over all workers of a snapshot. */
#define WT_SUM_WORKERS(m, field)                                              \
	({                                                                    \
		uint64_t wt_s_ = 0;                                           \
		for (unsigned wt_i_ = 0; wt_i_ < (m)->workers; wt_i_++)       \
			wt_s_ += (m)->worker[wt_i_].field;                    \
		wt_s_;                                                        \
	})

static inline struct weft_metrics *wt_metrics(struct weft_runtime *rt)
{
	struct weft_metrics *m = NULL;
	int rc = weft_runtime_metrics(rt, &m);
	cr_assert_eq(rc, 0, "weft_runtime_metrics = %d (%s)", rc, weft_strerror(rc));
	cr_assert_not_null(m);
	return m;
}

/*
 * Take snapshots into `m` until `cond` (an expression over m) holds or `ms`
 * (scaled) pass: workers publish their counters at maintenance and before
 * parking, so an exact figure appears only once they went idle. The value
 * is the last evaluation of cond; m keeps the last snapshot (caller frees).
 */
#define WT_METRICS_UNTIL(rt, m, cond, ms)                                     \
	({                                                                    \
		uint64_t wt_mdl_ = wt_now_ns() +                              \
			(uint64_t)(ms) * 1000000ull * WEFT_TEST_SLOW;         \
		bool wt_mok_;                                                 \
		for (;;) {                                                    \
			(m) = wt_metrics(rt);                                 \
			if ((wt_mok_ = (cond)) || wt_now_ns() > wt_mdl_)      \
				break;                                        \
			weft_metrics_free(m);                                 \
			usleep(1000);                                         \
		}                                                             \
		wt_mok_;                                                      \
	})

/* Small deterministic PRNG (xorshift64*) for tests. */
static inline uint64_t wt_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* A drop function that counts into an atomic_int the state points at. */
static inline void wt_drop_count(void *state)
{
	atomic_fetch_add_explicit((atomic_int *)state, 1, memory_order_acq_rel);
}

/* A poll function that completes at once. */
static inline enum weft_poll wt_poll_ready(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

/* A poll function that completes after 20 ms of spinning: a join issued
 * right after the spawn finds it still running and waits (so it makes the
 * joining thread's parker, kept for the thread's life). */
static inline enum weft_poll wt_poll_ready_in_20ms(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	uint64_t t0 = wt_now_ns();
	while (wt_now_ns() - t0 < 20000000ull)
		;
	return WEFT_READY;
}

/*
 * Gate: a task that occupies a worker until released. With workers = 1 it
 * guarantees that nothing else is polled meanwhile, which makes "before the
 * first poll" and "woken twice while queued" deterministic.
 */
struct wt_gate {
	atomic_int running;
	atomic_int release;
	atomic_int drops;
	struct weft_task *h;
};

static inline enum weft_poll wt_gate_poll(void *state, struct weft_cx *cx)
{
	struct wt_gate *g = state;
	(void)cx;
	atomic_store(&g->running, 1);
	while (!atomic_load(&g->release))
		usleep(50);
	return WEFT_READY;
}

static inline void wt_gate_drop(void *state)
{
	struct wt_gate *g = state;
	atomic_fetch_add(&g->drops, 1);
}

/* Spawn the gate and wait until it holds a worker. */
static inline void wt_gate_hold(struct weft_runtime *rt, struct wt_gate *g)
{
	memset(g, 0, sizeof *g);
	int rc = weft_spawn_poll(rt, wt_gate_poll, g, wt_gate_drop, &g->h);
	cr_assert_eq(rc, 0, "spawn gate = %d", rc);
	if (!WT_WAIT_UNTIL(atomic_load(&g->running), WT_LONG_MS)) {
		wt_dump_runtime(rt, "the gate task was never polled");
		cr_assert_fail("the gate task was never polled");
	}
}

/* Let the gate finish and consume its handle. */
static inline void wt_gate_open(struct wt_gate *g)
{
	atomic_store(&g->release, 1);
	void *res = (void *)1;
	int rc = weft_join(g->h, &res);
	cr_assert_eq(rc, 0, "join gate = %d", rc);
	cr_assert_null(res, "a task that never called weft_cx_set_result joined with %p", res);
	g->h = NULL;
}

#endif /* WEFT_TESTS_WT_H */
