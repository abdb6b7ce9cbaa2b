/*
 * test_timer_race.c - a timer set while the driver's sleeper is between
 * its two looks at the earliest deadline (seventeenth session, found by a
 * review of the timers).
 *
 * weft__driver_park publishes the earliest deadline it sees
 * (sleep_until_tick), then looks again and sleeps until what it sees
 * then; a timer set later wakes the driver only if it is due before the
 * published tick. When the earliest timer was cancelled between the two
 * looks, the sleeper slept past its published deadline (for good on an
 * idle runtime) and a new timer due at or after that deadline waited for
 * some other wake: 69-244 ms late in a review's program. The window is
 * tens of nanoseconds; this test widens it the way that program did:
 * clock_gettime, which libweft imports, takes 5 us longer on worker
 * threads (weft__now_ns sits between the two looks). Nothing else
 * changes. Each round: T1 is armed by a poll task 2 ms out, the test
 * thread cancels it after 0-60 us, then a task arms T2 1 ms after T1's
 * deadline; T2 must fire within 60 ms of its deadline, in all but two
 * rounds (the old code: 51 of 811 rounds late in 12 s, 10-14 in this
 * test's 4 s). A round whose T1 is first polled after its deadline (a
 * worker slow to start under load) finds it due at once, with nothing
 * armed to cancel: it is skipped (it waited for that forever once a
 * deadline already passed stopped waiting for the wheel's tick).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include <weft/time.h>

static _Atomic uint64_t amp_ns;
static __thread int is_worker = -1;

__attribute__((visibility("default"))) int clock_gettime(clockid_t c, struct timespec *ts)
{
	int r = (int)syscall(SYS_clock_gettime, c, ts);
	if (is_worker < 0) {
		char n[16] = { 0 };
		prctl(PR_GET_NAME, n);
		is_worker = strncmp(n, "weft-worker", 11) == 0;
	}
	uint64_t amp = atomic_load_explicit(&amp_ns, memory_order_relaxed);
	if (amp && is_worker) {
		struct timespec a, b;
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
		do
			syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
		while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec -
			       (uint64_t)a.tv_nsec < amp);
	}
	return r;
}

static struct weft_timer t1;
static uint64_t d1;
static atomic_int armed, fired;
static _Atomic uint64_t fired_at;

static enum weft_poll arm_t1(void *st, struct weft_cx *cx)
{
	(void)st;
	if (weft_timer_poll(&t1, cx, d1) == WEFT_READY) {
		/* first polled after d1 (a worker slow to start): ready at
		 * once, nothing armed to cancel; the round does not count */
		atomic_store_explicit(&armed, 2, memory_order_release);
		return WEFT_READY;
	}
	atomic_store_explicit(&armed, 1, memory_order_release);
	return WEFT_PENDING; /* cancelled by the test thread: never woken */
}

struct t2 { struct weft_timer t; uint64_t d; };

static enum weft_poll arm_t2(void *st, struct weft_cx *cx)
{
	struct t2 *s = st;
	if (weft_timer_poll(&s->t, cx, s->d) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_store(&fired_at, weft_now_ns());
	atomic_store(&fired, 1);
	return WEFT_READY;
}

static void spin_ns(uint64_t ns)
{
	uint64_t e = weft_now_ns() + ns;
	while (weft_now_ns() < e)
		;
}

Test(timer_race, timer_set_after_a_cancel_wakes_the_sleeping_driver, .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	atomic_store(&amp_ns, 5000);
	static struct t2 s2[4096];
	uint64_t end = weft_now_ns() + 4000 * 1000000ull, seed = 1;
	long rounds = 0, late = 0, skipped = 0;
	double worst = 0;
	while (weft_now_ns() < end && rounds < 4096) {
		t1 = (struct weft_timer)WEFT_TIMER_INIT;
		atomic_store(&armed, 0);
		d1 = weft_now_ns() + 2000000ull;
		cr_assert_eq(weft_spawn_poll(rt, arm_t1, NULL, NULL, NULL), 0);
		int a;
		while (!(a = atomic_load_explicit(&armed, memory_order_acquire)))
			;
		if (a == 2) {
			skipped++;
			continue;
		}
		spin_ns(wt_rand(&seed) % 60000);
		weft_timer_cancel(&t1);
		spin_ns(300000);
		struct t2 *s = &s2[rounds++];
		*s = (struct t2){ .t = WEFT_TIMER_INIT, .d = d1 + 1000000ull };
		atomic_store(&fired, 0);
		cr_assert_eq(weft_spawn_poll(rt, arm_t2, s, NULL, NULL), 0);
		uint64_t give_up = s->d + 2000 * 1000000ull;
		while (!atomic_load(&fired) && weft_now_ns() < give_up) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
		cr_assert(atomic_load(&fired), "round %ld: a timer due 2 s ago has not fired", rounds);
		double ms = (double)(atomic_load(&fired_at) - s->d) / 1e6;
		if (ms > worst)
			worst = ms;
		if (ms > 60)
			late++;
	}
	atomic_store(&amp_ns, 0);
	cr_log_info("%ld rounds, %ld late by more than 60 ms, worst %.1f ms; %ld skipped (T1 first "
		    "polled after its deadline)", rounds, late, worst, skipped);
	/* Two late rounds are forgiven: a 2-vCPU VM's host may deschedule a
	 * vCPU for tens of ms (CI once saw one round 89 ms late in 1,060 on
	 * the fixed code). The old code: 10-14 late in 4 s (every run). */
	cr_assert_leq(late, 2, "%ld of %ld timers set after a cancel fired more than 60 ms late (worst %.1f ms)",
		      late, rounds, worst);
	cr_assert_geq(rounds, 200, "only %ld rounds", rounds);
	wt_rt_destroy(rt);
}
