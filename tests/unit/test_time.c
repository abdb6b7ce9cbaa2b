/*
 * test_time.c - the timer wheel alone, then timers in a runtime: many
 * random sleeps (none early, lateness reported), cancellation, fiber
 * sleeps, join with a timeout, intervals.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wt.h"
#include "wheel.h"
#include "runtime.h"

/* ------------------------------------------------------------ the wheel */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

Test(wheel, fires_in_order_never_early_across_levels, .timeout = WT_TMO(30))
{
	enum { N = 20000 };
	static struct weft__timer t[N];
	static uint64_t want[N];
	struct weft__wheel w;
	weft__wheel_init(&w);
	uint64_t seed = 42;
	for (int i = 0; i < N; i++) {
		/* spread over every level: 1 tick .. 2^30 ticks (~3 days) */
		uint64_t span = 1ull << (wt_rand(&seed) % 30);
		t[i].when_tick = 1 + wt_rand(&seed) % span;
		want[i] = t[i].when_tick;
		cr_assert(weft__wheel_insert(&w, &t[i]));
	}
	qsort(want, N, sizeof(want[0]), cmp_u64);
	int got = 0;
	uint64_t now = 0, last = 0;
	while (got < N) {
		uint64_t next = weft__wheel_next(&w);
		cr_assert_neq(next, UINT64_MAX);
		cr_assert_geq(next, now);
		/* jump to the next deadline in random-size steps */
		now = next + wt_rand(&seed) % 3;
		struct weft__timer *fired = NULL;
		weft__wheel_advance(&w, now, &fired, SIZE_MAX);
		for (struct weft__timer *f = fired; f; f = f->next) {
			cr_assert_leq(f->when_tick, now, "fired early: %lu > %lu",
				      (unsigned long)f->when_tick, (unsigned long)now);
			cr_assert_geq(f->when_tick, last, "out of order");
			cr_assert_eq(f->when_tick, want[got], "timer %d: %lu, want %lu", got,
				     (unsigned long)f->when_tick, (unsigned long)want[got]);
			last = f->when_tick;
			got++;
		}
	}
	cr_assert_eq(weft__wheel_next(&w), UINT64_MAX);
}

Test(wheel, remove_is_exact, .timeout = WT_TMO(10))
{
	static struct weft__timer t[1000];
	struct weft__wheel w;
	weft__wheel_init(&w);
	for (int i = 0; i < 1000; i++) {
		t[i].when_tick = 10 + (uint64_t)i * 37;
		cr_assert(weft__wheel_insert(&w, &t[i]));
	}
	for (int i = 0; i < 1000; i += 2)
		weft__wheel_remove(&w, &t[i]);
	struct weft__timer *fired = NULL;
	weft__wheel_advance(&w, 1000000, &fired, SIZE_MAX);
	int n = 0;
	for (struct weft__timer *f = fired; f; f = f->next) {
		cr_assert_eq((f - t) % 2, 1, "a removed timer fired");
		n++;
	}
	cr_assert_eq(n, 500);
}

/* weft__wheel_fire hands each timer over as it unlinks it and never
 * touches it again: the owner may reuse it at once (a fiber's sleep entry,
 * its stack frame overwritten as soon as the fiber resumes). Here the
 * callback scribbles over every timer it is given; the rest of each slot,
 * taken a few per pass, must still come out whole and in order. */
struct scribble {
	int n;
	uint64_t last;
	uint64_t now;
};

static void fire_and_scribble(struct weft__timer *t, void *arg)
{
	struct scribble *s = arg;
	cr_assert_null(t->next, "handed over still linked");
	cr_assert_leq(t->when_tick, s->now, "fired early");
	cr_assert_geq(t->when_tick, s->last, "out of order");
	s->last = t->when_tick;
	s->n++;
	memset(t, 0xa5, sizeof(*t));
}

Test(wheel, fire_never_touches_a_timer_it_handed_over, .timeout = WT_TMO(10))
{
	enum { N = 3000 };
	static struct weft__timer t[N];
	struct weft__wheel w;
	weft__wheel_init(&w);
	for (int i = 0; i < N; i++) {
		/* 3 per slot in level 0, and some far enough to cascade */
		t[i].when_tick = 1 + (uint64_t)(i / 3) + (i % 7 == 0 ? 3 * WHEEL_NEAR : 0);
		cr_assert(weft__wheel_insert(&w, &t[i]));
	}
	struct scribble s = { 0 };
	uint64_t seed = 7;
	while (s.n < N) {
		uint64_t next = weft__wheel_next(&w);
		cr_assert_neq(next, UINT64_MAX, "%d of %d fired, none left", s.n, N);
		s.now = next + wt_rand(&seed) % 4;
		size_t got;
		do {
			size_t max = 1 + wt_rand(&seed) % 5;
			got = weft__wheel_fire(&w, s.now, max, fire_and_scribble, &s);
			cr_assert_leq(got, max);
		} while (got);
	}
	cr_assert_eq(s.n, N);
	cr_assert_eq(weft__wheel_next(&w), UINT64_MAX);
}

/* A deadline a whole top-level window out (2^36 ticks, ~199 days; a sleep
 * "forever") or just under it, on a wheel that has moved off tick 0: it
 * must wait, and firing what is due beside it must return. It landed in
 * the current top-level slot's index, read as due now, and
 * weft__wheel_fire moved it down and back forever (the runtime: a
 * weft_sleep_ns(UINT64_MAX) hung its worker once another timer of that
 * core had fired; found by a review). */
static void count_fired(struct weft__timer *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

Test(wheel, a_deadline_a_window_away_waits_and_does_not_spin, .timeout = WT_TMO(10))
{
	const uint64_t window = 1ull << 36; /* the wheel's whole span */
	const uint64_t starts[] = { 5, 1000, (1ull << 30) + 12345, 3 * (1ull << 35) + 7 };
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		uint64_t start = starts[k];
		struct weft__wheel w;
		weft__wheel_init(&w);
		int fired = 0;
		static struct weft__timer first, forever, under, near;
		first = (struct weft__timer){ .when_tick = start };
		cr_assert(weft__wheel_insert(&w, &first));
		cr_assert_eq(weft__wheel_fire(&w, start, 16, count_fired, &fired), 1);
		forever = (struct weft__timer){ .when_tick = UINT64_MAX / 2 };
		under = (struct weft__timer){ .when_tick = start + window - 1 };
		near = (struct weft__timer){ .when_tick = start + 10 };
		cr_assert(weft__wheel_insert(&w, &forever));
		cr_assert(weft__wheel_insert(&w, &under));
		cr_assert(weft__wheel_insert(&w, &near));
		uint64_t next = weft__wheel_next(&w);
		cr_assert_gt(next, start, "start %" PRIu64 ": next %" PRIu64 " reads as due", start, next);
		cr_assert_leq(next, start + 10);
		fired = 0;
		/* returns (before the fix: never), with only `near` fired */
		cr_assert_eq(weft__wheel_fire(&w, start + 10, 1000, count_fired, &fired), 1);
		cr_assert_eq(fired, 1);
		/* walk to `under`'s deadline: nothing fires early, then it does */
		uint64_t now = start + 10;
		int steps = 0;
		while ((next = weft__wheel_next(&w)) < under.when_tick) {
			cr_assert_gt(next, now - 1);
			now = next;
			cr_assert_eq(weft__wheel_fire(&w, now, 1000, count_fired, &fired), 0,
				     "fired early at %" PRIu64, now);
			cr_assert_lt(++steps, 100, "no progress towards the deadline");
		}
		cr_assert_eq(weft__wheel_fire(&w, under.when_tick, 1000, count_fired, &fired), 1);
		cr_assert_gt(weft__wheel_next(&w), under.when_tick); /* `forever` waits on */
	}
}

/* Inserts, removes and advances in random order against a plain list: at
 * every step exactly the timers due have fired, in deadline order (also
 * when taken a few per pass); a timer
 * due within WHEEL_NEAR ticks sits in level 0 (it never cascades), one further
 * out above it - across the near window's wrap. */
Test(wheel, random_ops_match_a_model_near_window_wraps, .timeout = WT_TMO(30))
{
	enum { N = 4000 };
	static struct weft__timer t[N];
	static bool active[N];
	struct weft__wheel w;
	weft__wheel_init(&w);
	uint64_t seed = 7, now = 0;
	int nactive = 0, nfired = 0, nnear = 0, nfar = 0, npartial = 0;
	for (int step = 0; step < 200000; step++) {
		uint64_t r = wt_rand(&seed) % 100;
		int i = (int)(wt_rand(&seed) % N);
		if (r < 50 && !active[i]) {
			/* mostly near, some just past the window, some far */
			uint64_t d = r < 30 ? 1 + wt_rand(&seed) % (WHEEL_NEAR + 76)
				   : r < 45 ? WHEEL_NEAR - 24 + wt_rand(&seed) % 100
					    : 1 + wt_rand(&seed) % (200 * WHEEL_NEAR);
			t[i].when_tick = now + d;
			cr_assert(weft__wheel_insert(&w, &t[i]));
			cr_assert_eq(t[i].level == 0, d < WHEEL_NEAR, "delay %lu at level %u",
				     (unsigned long)d, t[i].level);
			d < WHEEL_NEAR ? nnear++ : nfar++;
			active[i] = true;
			nactive++;
		} else if (r < 60 && active[i]) {
			weft__wheel_remove(&w, &t[i]);
			active[i] = false;
			nactive--;
		} else if (r >= 60) {
			now += wt_rand(&seed) % (r < 95 ? 40 : WHEEL_NEAR + WHEEL_NEAR / 2);
			/* half the time in passes of a few timers (the driver's
			 * budget): the rest stays due and comes out in order */
			size_t max = r % 2 ? SIZE_MAX : 1 + wt_rand(&seed) % 8, got;
			uint64_t last = 0;
			do {
				struct weft__timer *fired = NULL;
				got = weft__wheel_advance(&w, now, &fired, max);
				size_t n = 0;
				for (struct weft__timer *f = fired; f; f = f->next, n++) {
					int k = (int)(f - t);
					cr_assert(active[k], "timer %d fired twice or after removal", k);
					cr_assert_leq(f->when_tick, now, "fired early");
					cr_assert_geq(f->when_tick, last, "out of order");
					last = f->when_tick;
					active[k] = false;
					nactive--;
					nfired++;
				}
				cr_assert_eq(n, got);
				cr_assert_leq(got, max);
				if (got == max)
					npartial++;
			} while (got == max);
			for (int k = 0; k < N; k++)
				cr_assert(!active[k] || t[k].when_tick > now, "timer %d due but not fired", k);
			uint64_t next = weft__wheel_next(&w);
			cr_assert_eq(next == UINT64_MAX, nactive == 0);
			cr_assert_gt(next, now);
		}
	}
	cr_assert_gt(nfired, 10000);
	cr_assert_gt(nnear, 1000);
	cr_assert_gt(nfar, 1000);
	cr_assert_gt(npartial, 1000);
}

/* -------------------------------------------------------- poll-task sleeps */

struct sleeper {
	struct weft_timer timer;
	uint64_t deadline, fired_at;
	atomic_int *fires;
};

static enum weft_poll sleeper_poll(void *state, struct weft_cx *cx)
{
	struct sleeper *s = state;
	if (weft_timer_poll(&s->timer, cx, s->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	s->fired_at = weft_now_ns();
	atomic_fetch_add(s->fires, 1);
	return WEFT_READY;
}

static void sleeper_drop(void *state)
{
	struct sleeper *s = state;
	weft_timer_cancel(&s->timer); /* no-op once fired */
}

Test(timers, hundred_thousand_random_sleeps_half_cancelled, .timeout = WT_TMO(120))
{
	enum { N = 100000 };
	struct weft_runtime *rt = wt_rt_create(2);
	struct sleeper *s = calloc(N, sizeof(*s));
	struct weft_task **h = calloc(N, sizeof(*h));
	atomic_int fires = 0;
	uint64_t seed = 7, start = weft_now_ns();
	(void)start;
	for (int i = 0; i < N; i++) {
		s[i].deadline = weft_now_ns() + (wt_rand(&seed) % 50000) * 1000; /* 0..50 ms */
		s[i].fires = &fires;
		cr_assert_eq(weft_spawn_poll(rt, sleeper_poll, &s[i], sleeper_drop, &h[i]), 0);
		/* cancel the odd ones: before their first poll, or with their
		 * timer pending in the wheel (the drop removes it) */
		if (i % 2)
			cr_assert_eq(weft_abort(h[i]), 0);
	}
	int cancelled = 0;
	uint64_t *late = calloc(N, sizeof(*late));
	int n_late = 0;
	for (int i = 0; i < N; i++) {
		int rc = weft_join(h[i], NULL);
		if (i % 2 == 0) {
			cr_assert_eq(rc, 0);
			cr_assert_geq(s[i].fired_at, s[i].deadline, "timer %d fired early", i);
			late[n_late++] = s[i].fired_at - s[i].deadline;
		} else if (rc == -ECANCELED) {
			cancelled++;
			cr_assert_eq(s[i].fired_at, 0, "a cancelled timer fired");
		} else {
			cr_assert_eq(rc, 0); /* fired before the abort reached it */
		}
	}
	cr_assert_eq(atomic_load(&fires), N - cancelled);
	cr_assert_gt(cancelled, N / 4, "aborts should catch most pending timers");
	qsort(late, n_late, sizeof(late[0]), cmp_u64);
	cr_log_info("timers: %d fired, %d cancelled; lateness p50 %.2f ms p99 %.2f ms max %.2f ms",
		    n_late, cancelled, late[n_late / 2] / 1e6, late[n_late * 99 / 100] / 1e6,
		    late[n_late - 1] / 1e6);
	free(late);
	free(s);
	free(h);
	wt_rt_destroy(rt);
}

/* More timers due at once than a worker's queue holds (256), on one
 * worker: every one fires, none early, and they run in deadline order by
 * groups - a worker fires no more than its queue takes and leaves the rest
 * due in the wheel; firing them all at once sent the overflow to the
 * inject queue, where it waited while later deadlines, fired into the
 * local queue, ran first. */
struct ordered {
	struct weft_timer timer;
	uint64_t deadline;
	long seq;
	bool armed;
	atomic_long *next_seq, *unarmed;
};

static enum weft_poll ordered_poll(void *state, struct weft_cx *cx)
{
	struct ordered *o = state;
	if (weft_timer_poll(&o->timer, cx, o->deadline) == WEFT_PENDING) {
		o->armed = true;
		return WEFT_PENDING;
	}
	if (!o->armed) /* first polled after its deadline: it ran in spawn order */
		atomic_fetch_add(o->unarmed, 1);
	o->seq = atomic_fetch_add(o->next_seq, 1);
	cr_assert_geq(weft_now_ns(), o->deadline, "fired early");
	return WEFT_READY;
}

/* 20,000 poll tasks on rt, each on a timer, in 4 deadline groups 1 ms
 * apart; fails if a task of one group runs after one of the group two
 * later has begun. A run whose order is off is done again, up to `runs`
 * runs (see the first test). */
static void burst_in_deadline_order(struct weft_runtime *rt, int runs)
{
	enum { N = 20000, GROUPS = 4 };
	struct ordered *o = calloc(N, sizeof(*o));
	struct weft_task **h = calloc(N, sizeof(*h));
	atomic_long next_seq, unarmed;
	/* all set well before the first is due; group g due g ms after the
	 * first. A busy host (or a sanitizer, or chaos) can take longer than
	 * the lead to spawn and poll them all: the tasks first polled after
	 * their deadline run in spawn order and say nothing about the
	 * wheel's, so the run is done again with twice the lead. */
	/* The order was off in 2 of 60 chaos runs and once in a plain CI
	 * run (group 1 until 19713, group 3 from 14046): a pass that fired
	 * the minimum of 16 timers into a queue with less room overflowed it,
	 * and the earliest group's tasks waited in the inject queue (the
	 * next test). The chaos build still does a run whose order is off
	 * again, up to 3 runs: its points sleep for milliseconds. */
	for (int run = 1;; run++) {
		for (uint64_t lead = 200000000ull;; lead *= 2) {
			atomic_store(&next_seq, 0);
			atomic_store(&unarmed, 0);
			memset(o, 0, N * sizeof(*o));
			uint64_t base = weft_now_ns() + lead;
			for (int i = 0; i < N; i++) {
				o[i].deadline = base + (uint64_t)(i % GROUPS) * 1000000ull;
				o[i].next_seq = &next_seq;
				o[i].unarmed = &unarmed;
				cr_assert_eq(weft_spawn_poll(rt, ordered_poll, &o[i], NULL, &h[i]), 0);
			}
			for (int i = 0; i < N; i++)
				cr_assert_eq(weft_join(h[i], NULL), 0);
			cr_assert_eq(atomic_load(&next_seq), N);
			if (!atomic_load(&unarmed))
				break;
			cr_assert_lt(lead, 1600000000ull, "%ld of %d timers were first polled after their "
				     "deadline, %llu ms after the spawns began", atomic_load(&unarmed), N,
				     (unsigned long long)(lead / 1000000));
		}
		/* the last of a group ran before the first of the group two after it
		 * (the LIFO slot may let one task of the next group in early) */
		long lo[GROUPS], hi[GROUPS];
		for (int g = 0; g < GROUPS; g++)
			lo[g] = N, hi[g] = -1;
		for (int i = 0; i < N; i++) {
			int g = i % GROUPS;
			if (o[i].seq < lo[g])
				lo[g] = o[i].seq;
			if (o[i].seq > hi[g])
				hi[g] = o[i].seq;
		}
		int bad = -1;
		for (int g = 0; g + 2 < GROUPS && bad < 0; g++)
			if (hi[g] >= lo[g + 2])
				bad = g;
		if (bad >= 0 && run < runs) {
			cr_log_info("run %d: group %d ran until %ld, group %d from %ld; again (chaos)", run,
				    bad, hi[bad], bad + 2, lo[bad + 2]);
			continue;
		}
		if (bad >= 0)
			cr_assert_fail("group %d ran until %ld, group %d from %ld", bad, hi[bad], bad + 2,
				       lo[bad + 2]);
		break;
	}
	free(o);
	free(h);
}

Test(timers, burst_beyond_the_queue_fires_all_in_deadline_order, .timeout = WT_TMO(60))
{
#ifdef WEFT_TEST_CHAOS
	const int runs = 3;
#else
	const int runs = 1;
#endif
	struct weft_runtime *rt = wt_rt_create(1);
	burst_in_deadline_order(rt, runs);
	wt_rt_destroy(rt);
}

/* A worker that parks between the groups fires a full queue's worth when
 * it wakes; with maintenance every 16 polls the next pass comes while the
 * queue has less room than the 16 a pass fired at least, and those 16
 * overflowed the queue: its oldest half, the earliest group's tasks, went
 * to the inject queue and ran after the later groups (4 of 6 runs with
 * the old fire_budget, each run; 5 runs here must all keep the order). */
Test(timers, burst_with_maintenance_at_a_full_queue_keeps_deadline_order, .timeout = WT_TMO(120))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .event_interval = 16);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
#ifdef WEFT_TEST_CHAOS
	const int runs = 3; /* as above */
#else
	const int runs = 1;
#endif
	for (int i = 0; i < 5; i++)
		burst_in_deadline_order(rt, runs);
	wt_rt_destroy(rt);
}

/* A worker that parks while another thread holds the driver (a running
 * worker's maintenance poll, a sleeper on its way out) sleeps on its
 * futex, to try again later. It tried again after the watch period
 * (WEFT_WATCH_MS) whatever the timers said: a timer due sooner, with
 * nobody in the driver once the holder had let go, fired up to a watch
 * period late (found by a review). Here the test thread is the holder:
 * it takes the driver while the worker runs a task that then arms a
 * timer 1 ms out, and lets go once the worker has parked. */
struct driver_held {
	struct weft_timer t;
	uint64_t deadline;
	atomic_int go;
	_Atomic uint64_t fired_ns;
};

static enum weft_poll driver_held_poll(void *state, struct weft_cx *cx)
{
	struct driver_held *d = state;
	if (!d->deadline) {
		/* first poll: the test thread takes the driver meanwhile */
		if (!WT_WAIT_UNTIL(atomic_load(&d->go), WT_LONG_MS))
			return WEFT_READY; /* the test says why */
		d->deadline = weft_now_ns() + 1000000ull;
	}
	if (weft_timer_poll(&d->t, cx, d->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_store(&d->fired_ns, weft_now_ns());
	return WEFT_READY;
}

Test(timers, a_timer_due_after_a_failed_try_for_the_driver_fires_on_time, .timeout = WT_TMO(60))
{
	enum { ROUNDS = 21 };
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft__core *c = &rt->cores[0];
	uint64_t late[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		static struct driver_held d;
		memset(&d, 0, sizeof(d));
		struct weft_task *h;
		cr_assert_eq(weft_spawn_poll(rt, driver_held_poll, &d, NULL, &h), 0);
		/* the worker leaves the driver to run the task */
		pthread_mutex_lock(&rt->driver.lock);
		uint64_t parks = atomic_load(&c->pub.park_count);
		atomic_store(&d.go, 1);
		/* armed, and the worker parked on its futex: its try failed */
		bool parked = WT_WAIT_UNTIL(atomic_load(&c->pub.park_count) != parks, WT_LONG_MS);
		pthread_mutex_unlock(&rt->driver.lock);
		cr_assert(parked, "the worker never parked");
		cr_assert_eq(weft_join(h, NULL), 0);
		cr_assert(d.deadline && atomic_load(&d.fired_ns) >= d.deadline);
		late[r] = atomic_load(&d.fired_ns) - d.deadline;
	}
	qsort(late, ROUNDS, sizeof(late[0]), cmp_u64);
	/* on time: within a tick and a wake-up; a watch period late was
	 * 3.5-4 ms (the timer due 1 ms after the park, the retry 5 ms) */
	cr_assert_lt(late[ROUNDS / 2], 2000000ull, "the median timer fired %" PRIu64 " us late "
		     "(min %" PRIu64 ", max %" PRIu64 ")", late[ROUNDS / 2] / 1000, late[0] / 1000,
		     late[ROUNDS - 1] / 1000);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------ fiber sleeps */

static atomic_int g_early;

static void *fiber_sleeps(void *arg)
{
	uint64_t ns = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = weft_now_ns();
		cr_assert_eq(weft_sleep_ns(ns), 0);
		if (weft_now_ns() - t0 < ns)
			atomic_fetch_add(&g_early, 1);
	}
	return NULL;
}

static void *sleep_long(void *arg)
{
	(void)arg;
	weft_sleep_ns(30ull * 1000000000ull);
	return (void *)1;
}

Test(timers, fibers_sleep_join_timeout_interval, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t[200];
	for (int i = 0; i < 200; i++)
		cr_assert_eq(weft_spawn(rt, fiber_sleeps, (void *)(uintptr_t)((i % 20 + 1) * 500000), &t[i]), 0);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	cr_assert_eq(atomic_load(&g_early), 0);

	/* join with a timeout: times out, handle still valid; abort cancels
	 * the sleeping fiber (its timer leaves the wheel). */
	struct weft_task *f;
	cr_assert_eq(weft_spawn(rt, sleep_long, NULL, &f), 0);
	uint64_t t0 = weft_now_ns();
	cr_assert_eq(weft_join_timeout(f, NULL, 20 * 1000000ull), -ETIMEDOUT);
	uint64_t waited = weft_now_ns() - t0;
	cr_assert_geq(waited, 20 * 1000000ull);
	cr_assert_lt(waited, 2000 * 1000000ull);
	cr_assert_eq(weft_abort(f), 0);
	cr_assert_eq(weft_join(f, NULL), -EINTR);

	struct weft_interval iv;
	cr_assert_eq(weft_interval_init(&iv, 0), -EINVAL);
	/* the ticks are due init + k periods: the clock read before init (a
	 * read after it failed once under ASan, the 4th tick 20 ms after init
	 * but a little less after the read) */
	t0 = weft_now_ns();
	cr_assert_eq(weft_interval_init(&iv, 5 * 1000000ull), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_interval_tick(&iv), 0);
	cr_assert_geq(weft_now_ns() - t0, 20 * 1000000ull);
	wt_rt_destroy(rt);
}

/* Missed ticks (weft_interval_set_missed): a fiber's 50 ms interval left
 * alone 275 ms (the ticks at 50..250 missed), then ticked. What each mode
 * schedules next is read from the interval's public next_ns, so the test
 * does not depend on how late the machine runs the fiber. */
struct missed_run {
	enum weft_missed_tick mode;
	uint64_t sleep;               /* left alone this long (0: 5.5 periods) */
	uint64_t first, period;       /* the first deadline, the period */
	uint64_t before, after;       /* the clock around the first late tick */
	uint64_t next_after_first;    /* next_ns after it */
	int quick;                    /* ticks returned while next_ns was past */
	uint64_t next_after_quick;
};

static void *missed_fiber(void *arg)
{
	struct missed_run *r = arg;
	struct weft_interval iv;
	cr_assert_eq(weft_interval_init(&iv, r->period), 0);
	cr_assert_eq(iv.missed, WEFT_MISSED_SKIP, "the default skips");
	cr_assert_eq(weft_interval_set_missed(&iv, r->mode), 0);
	r->first = iv.next_ns;
	cr_assert_eq(weft_sleep_ns(r->sleep ? r->sleep : r->period * 11 / 2), 0);
	r->before = weft_now_ns();
	cr_assert_eq(weft_interval_tick(&iv), 0);
	r->after = weft_now_ns();
	r->next_after_first = iv.next_ns;
	while (iv.next_ns <= weft_now_ns() && r->quick < 100) {
		cr_assert_eq(weft_interval_tick(&iv), 0);
		r->quick++;
	}
	r->next_after_quick = iv.next_ns;
	/* and then it waits for that deadline */
	cr_assert_eq(weft_interval_tick(&iv), 0);
	cr_assert_geq(weft_now_ns(), r->next_after_quick);
	return NULL;
}

Test(timers, interval_missed_ticks_skip_burst_or_delay, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_interval bad;
	cr_assert_eq(weft_interval_init(&bad, 1000000), 0);
	cr_assert_eq(weft_interval_set_missed(&bad, (enum weft_missed_tick)3), -EINVAL);
	cr_assert_eq(weft_interval_set_missed(NULL, WEFT_MISSED_BURST), -EINVAL);
	cr_assert_eq(bad.missed, WEFT_MISSED_SKIP, "a refused mode changes nothing");
	const uint64_t P = 50 * 1000000ull;
	enum weft_missed_tick modes[] = { WEFT_MISSED_SKIP, WEFT_MISSED_BURST, WEFT_MISSED_DELAY };
	for (int k = 0; k < 3; k++) {
		struct missed_run r = { .mode = modes[k], .period = P };
		struct weft_task *t;
		cr_assert_eq(weft_spawn(rt, missed_fiber, &r, &t), 0);
		cr_assert_eq(weft_join(t, NULL), 0);
		uint64_t late = (r.before - r.first) / P; /* whole periods missed after the first */
		cr_assert_geq(late, 4);
		switch (modes[k]) {
		case WEFT_MISSED_SKIP: /* the next deadline of the schedule still ahead */
			cr_assert_eq((r.next_after_first - r.first) % P, 0);
			cr_assert_gt(r.next_after_first, r.before);
			cr_assert_leq(r.next_after_first, r.after + P);
			break;
		case WEFT_MISSED_BURST: /* every missed one, one per call */
			cr_assert_eq(r.next_after_first, r.first + P);
			cr_assert_geq(r.quick, (int)late, "%d quick ticks, %llu missed", r.quick,
				      (unsigned long long)late);
			cr_assert_eq(r.next_after_quick, r.first + (uint64_t)(r.quick + 1) * P);
			break;
		default: /* one period after the late tick */
			cr_assert_geq(r.next_after_first, r.before + P);
			cr_assert_leq(r.next_after_first, r.after + P);
			break;
		}
		if (modes[k] != WEFT_MISSED_BURST)
			cr_assert_eq(r.quick, 0, "mode %d: %d ticks back to back", modes[k], r.quick);
	}
	/* A tick taken half a period late: SKIP keeps the schedule (the next
	 * deadline is the first plus a period); DELAY shifts it - it kept the
	 * schedule too, shifting only after a whole period missed, against
	 * time.h's "one period after a late one was taken" (found by a
	 * review). The sleep overshooting a whole period would make SKIP's
	 * next deadline a later one of the schedule: still a multiple. */
	for (int k = 0; k < 2; k++) {
		struct missed_run r = { .mode = k ? WEFT_MISSED_DELAY : WEFT_MISSED_SKIP,
					.period = P, .sleep = P * 3 / 2 };
		struct weft_task *t;
		cr_assert_eq(weft_spawn(rt, missed_fiber, &r, &t), 0);
		cr_assert_eq(weft_join(t, NULL), 0);
		cr_assert_gt(r.before, r.first + 5000000ull, "the tick was late");
		if (k) {
			cr_assert_geq(r.next_after_first, r.before + P, "DELAY kept the schedule");
			cr_assert_leq(r.next_after_first, r.after + P);
		} else {
			cr_assert_eq((r.next_after_first - r.first) % P, 0, "SKIP lost the phase");
			cr_assert_gt(r.next_after_first, r.before);
		}
	}
	wt_rt_destroy(rt);
}

/* weft_interval_reset: the schedule starts again from now, with a new
 * period or the old one - also for a poll task whose interval timer is
 * already armed for the old deadline (the reset cancels it: a pending
 * timer keeps its first deadline). */
struct reset_state {
	struct weft_interval iv;
	int step;
	uint64_t reset_at, ticked_at;
};

static enum weft_poll reset_poll(void *arg, struct weft_cx *cx)
{
	struct reset_state *s = arg;
	if (s->step == 0) { /* armed for a tick 10 s away */
		cr_assert_eq(weft_interval_init(&s->iv, 10ull * 1000000000ull), 0);
		cr_assert_eq(weft_interval_poll_tick(&s->iv, cx), WEFT_PENDING);
		s->step = 1;
		weft_waker_wake_by_ref(weft_cx_waker(cx)); /* polled again at once */
		return WEFT_PENDING;
	}
	if (s->step == 1) { /* the same task, its timer armed: 20 ms from now */
		s->reset_at = weft_now_ns();
		cr_assert_eq(weft_interval_reset(&s->iv, 20 * 1000000ull), 0);
		cr_assert_eq(s->iv.period_ns, 20 * 1000000ull);
		s->step = 2;
	}
	if (weft_interval_poll_tick(&s->iv, cx) == WEFT_PENDING)
		return WEFT_PENDING;
	s->ticked_at = weft_now_ns();
	weft_interval_cancel(&s->iv);
	return WEFT_READY;
}

Test(timers, interval_reset_restarts_the_schedule, .timeout = WT_TMO(30))
{
	cr_assert_eq(weft_interval_reset(NULL, 0), -EINVAL);
	struct weft_interval iv;
	cr_assert_eq(weft_interval_init(&iv, 50 * 1000000ull), 0);
	uint64_t first = iv.next_ns;
	wt_sleep_ms(20);
	uint64_t t0 = weft_now_ns();
	cr_assert_eq(weft_interval_reset(&iv, 0), 0); /* the old period, from now */
	uint64_t t1 = weft_now_ns();
	cr_assert_eq(iv.period_ns, 50 * 1000000ull);
	cr_assert_geq(iv.next_ns, t0 + 50 * 1000000ull);
	cr_assert_leq(iv.next_ns, t1 + 50 * 1000000ull);
	cr_assert_gt(iv.next_ns, first);

	struct weft_runtime *rt = wt_rt_create(2);
	struct reset_state s = { .step = 0 };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, reset_poll, &s, NULL, &t), 0);
	cr_assert_eq(weft_join_timeout(t, NULL, 5ull * 1000000000ull), 0,
		     "the reset interval did not tick within 5 s (its timer kept the old deadline)");
	cr_assert_geq(s.ticked_at - s.reset_at, 20 * 1000000ull);
	wt_rt_destroy(rt);
}

/* A reset that would leave the period 0 (a zeroed interval never
 * initialised, "keep the old period") is refused like a zero period at
 * init: it said 0, and the next tick divided by the period (SIGFPE, found
 * by a review). */
Test(timers, interval_reset_to_no_period_is_einval, .timeout = WT_TMO(10))
{
	struct weft_interval iv = { 0 };
	cr_assert_eq(weft_interval_reset(&iv, 0), -EINVAL);
	cr_assert_eq(iv.period_ns, 0);
	cr_assert_eq(iv.next_ns, 0, "nothing changes on -EINVAL");
	cr_assert_eq(weft_interval_reset(&iv, 5 * 1000000ull), 0, "a period of its own is fine");
	cr_assert_eq(weft_interval_tick(&iv), 0);
	cr_assert_eq(weft_interval_tick(&iv), 0);
}

/* A zeroed interval never given to weft_interval_init: the blocking tick
 * says -EINVAL, the poll form (no error return) aborts with a message.
 * Both divided by the zero period before: SIGFPE, nothing said. */
Test(timers, interval_never_initialised_is_einval, .timeout = WT_TMO(10))
{
	struct weft_interval iv = { 0 };
	cr_assert_eq(weft_interval_tick(&iv), -EINVAL);
	cr_assert_eq(iv.next_ns, 0, "nothing changes on -EINVAL");
}

static enum weft_poll zeroed_interval_poll(void *arg, struct weft_cx *cx)
{
	return weft_interval_poll_tick(arg, cx);
}

Test(timers, interval_never_initialised_poll_form_aborts, .signal = SIGABRT,
     .timeout = WT_TMO(10))
{
	static struct weft_interval iv; /* zeroed */
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(NULL, &rt), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, zeroed_interval_poll, &iv, NULL, &t), 0);
	(void)weft_join(t, NULL);
	cr_assert_fail("the poll form on a zeroed interval returned");
}

/* An interval whose period is "never" (WEFT_FOREVER, or anything that
 * would carry now + period past 2^64) does not tick: the first deadline
 * used to wrap into the past and the interval ticked back to back
 * (2.8 million ticks in 200 ms in a review's program). */
static atomic_long g_iv_ticks;
static atomic_bool g_iv_started;

static void *interval_ticker(void *arg)
{
	struct weft_interval iv;
	cr_assert_eq(weft_interval_init(&iv, (uint64_t)(uintptr_t)arg), 0);
	atomic_store(&g_iv_started, true);
	while (weft_interval_tick(&iv) == 0)
		atomic_fetch_add(&g_iv_ticks, 1);
	return NULL;
}

Test(timers, interval_of_forever_never_ticks, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	uint64_t periods[] = { WEFT_FOREVER, UINT64_MAX / 2 + 1 };
	for (int k = 0; k < 2; k++) {
		atomic_store(&g_iv_ticks, 0);
		atomic_store(&g_iv_started, false);
		struct weft_task *t;
		cr_assert_eq(weft_spawn(rt, interval_ticker, (void *)(uintptr_t)periods[k], &t), 0);
		/* started: aborted before its first poll it would never run
		 * (-ECANCELED, not -EINTR) and its 0 ticks would say nothing */
		cr_assert(WT_WAIT_UNTIL(atomic_load(&g_iv_started), WT_LONG_MS));
		wt_sleep_ms(100);
		cr_assert_eq(atomic_load(&g_iv_ticks), 0, "period %llu: %ld ticks in 100 ms",
			     (unsigned long long)periods[k], atomic_load(&g_iv_ticks));
		cr_assert_eq(weft_abort(t), 0);
		cr_assert_eq(weft_join(t, NULL), -EINTR);
	}
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------ channel timeouts */

static struct weft_chan *g_ch;
static atomic_int g_timed_out;

static void *fiber_recv_timeout(void *arg)
{
	(void)arg;
	uint64_t v, t0 = weft_now_ns();
	int rc = weft_chan_recv_timeout(g_ch, &v, 10 * 1000000ull);
	if (rc != -ETIMEDOUT || weft_now_ns() - t0 < 10 * 1000000ull)
		return (void *)1;
	atomic_store(&g_timed_out, 1);
	rc = weft_chan_recv_timeout(g_ch, &v, 5000 * 1000000ull); /* the main thread sends */
	return (void *)(long)(rc == 0 && v == 77 ? 0 : 2);
}

Test(timers, channel_recv_send_timeouts, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &g_ch), 0);
	uint64_t v = 5;
	/* thread: empty channel times out; full channel send times out */
	cr_assert_eq(weft_chan_recv_timeout(g_ch, &v, 5 * 1000000ull), -ETIMEDOUT);
	cr_assert_eq(weft_chan_send_timeout(g_ch, &v, 5 * 1000000ull), 0);
	cr_assert_eq(weft_chan_send_timeout(g_ch, &v, 5 * 1000000ull), -ETIMEDOUT);
	cr_assert_eq(weft_chan_recv(g_ch, &v), 0);
	cr_assert_eq(v, 5);
	/* fiber: times out first, then receives */
	struct weft_task *t;
	atomic_store(&g_timed_out, 0);
	cr_assert_eq(weft_spawn(rt, fiber_recv_timeout, NULL, &t), 0);
	/* not a fixed 50 ms: under ASan beside other tests in CI the fiber's
	 * 10 ms timeout had not run out by then, and it received the 77 */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_timed_out), WT_LONG_MS));
	v = 77;
	cr_assert_eq(weft_chan_send(g_ch, &v), 0);
	void *r;
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((long)r, 0, "fiber: %ld (1: the 10 ms timeout, 2: the receive of 77)", (long)r);
	cr_assert_eq(weft_chan_destroy(g_ch), 0);
	wt_rt_destroy(rt);
}

/* -------------------------------------------- timeouts on every sync wait */

struct sync_objs {
	struct weft_mutex *m;
	struct weft_sem *s;
	struct weft_notify *n;
	struct weft_waitgroup *wg;
	struct weft_oneshot *o;
};

static int all_time_out(struct sync_objs *x)
{
	const uint64_t t = 3 * 1000000ull;
	void *v;
	int bad = 0;
	bad |= (weft_mutex_lock_timeout(x->m, t) != -ETIMEDOUT) << 0;
	bad |= (weft_sem_acquire_n_timeout(x->s, 2, t) != -ETIMEDOUT) << 1;
	bad |= (weft_notify_wait_timeout(x->n, t) != -ETIMEDOUT) << 2;
	bad |= (weft_waitgroup_wait_timeout(x->wg, t) != -ETIMEDOUT) << 3;
	bad |= (weft_oneshot_recv_timeout(x->o, &v, t) != -ETIMEDOUT) << 4;
	return bad;
}

static void *fiber_all_time_out(void *arg) { return (void *)(long)all_time_out(arg); }

Test(timers, every_sync_wait_has_a_timeout, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct sync_objs x;
	cr_assert_eq(weft_mutex_create(&x.m), 0);
	cr_assert_eq(weft_mutex_lock(x.m), 0); /* held: others time out */
	cr_assert_eq(weft_sem_create(1, &x.s), 0);
	cr_assert_eq(weft_notify_create(&x.n), 0);
	cr_assert_eq(weft_waitgroup_create(&x.wg), 0);
	cr_assert_eq(weft_waitgroup_add(x.wg, 1), 0);
	cr_assert_eq(weft_oneshot_create(NULL, &x.o), 0);
	cr_assert_eq(all_time_out(&x), 0, "from a thread"); /* plain thread */
	struct weft_task *t;
	void *r;
	cr_assert_eq(weft_spawn(rt, fiber_all_time_out, &x, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((long)r, 0, "from a fiber: mask %ld", (long)r);
	/* nothing was taken: the same objects still work */
	cr_assert_eq(weft_mutex_unlock(x.m), 0);
	cr_assert_eq(weft_mutex_lock_timeout(x.m, 1000000000ull), 0);
	cr_assert_eq(weft_mutex_unlock(x.m), 0);
	cr_assert_eq(weft_sem_acquire_n_timeout(x.s, 1, 1000000000ull), 0);
	cr_assert_eq(weft_notify_one(x.n), 0);
	cr_assert_eq(weft_notify_wait_timeout(x.n, 1000000000ull), 0);
	cr_assert_eq(weft_waitgroup_done(x.wg), 0);
	cr_assert_eq(weft_waitgroup_wait_timeout(x.wg, 1000000000ull), 0);
	cr_assert_eq(weft_oneshot_send(x.o, (void *)5), 0);
	void *v;
	cr_assert_eq(weft_oneshot_recv_timeout(x.o, &v, 1000000000ull), 0);
	cr_assert_eq((long)v, 5);
	weft_mutex_destroy(x.m);
	weft_sem_destroy(x.s);
	weft_notify_destroy(x.n);
	weft_waitgroup_destroy(x.wg);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------- per-core timer shards */

/* A poll task that sets one timer and counts its polls. */
struct armed {
	struct weft_timer t;
	uint64_t deadline;
	atomic_int polls;
	atomic_int armed;
	uint64_t fired_at;
	atomic_int done;
};

static enum weft_poll armed_poll(void *state, struct weft_cx *cx)
{
	struct armed *a = state;
	atomic_fetch_add(&a->polls, 1);
	if (weft_timer_poll(&a->t, cx, a->deadline) == WEFT_PENDING) {
		atomic_store(&a->armed, 1);
		return WEFT_PENDING;
	}
	a->fired_at = weft_now_ns();
	atomic_store(&a->done, 1);
	return WEFT_READY;
}

static void armed_drop(void *state)
{
	struct armed *a = state;
	weft_timer_cancel(&a->t);
}

/*
 * A timer set by a task (so in its core's shard) and cancelled from
 * another thread, one holding no core, while the task waits: it never
 * fires (the task is not polled again) and the runtime destroys cleanly
 * (the cancel dropped the timer's waker). Ten timers, on both cores.
 */
Test(timers, cancelled_from_another_thread_never_fires, .timeout = WT_TMO(30))
{
	enum { N = 10 };
	struct weft_runtime *rt = wt_rt_create(2);
	static struct armed a[N];
	struct weft_task *h[N];
	memset(a, 0, sizeof(a));
	/* The deadline leaves the spawns, the arming and the cancels room on
	 * a busy host (40 ms did not: a timer that fired before its cancel
	 * read as woken after it); the wait below runs past it. */
	uint64_t deadline = weft_now_ns() + 500 * 1000000ull * WEFT_TEST_SLOW;
	for (int i = 0; i < N; i++) {
		a[i].deadline = deadline;
		cr_assert_eq(weft_spawn_poll(rt, armed_poll, &a[i], armed_drop, &h[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&a[i].armed), WT_LONG_MS), "task %d never armed", i);
	for (int i = 0; i < N; i++)
		weft_timer_cancel(&a[i].t);
	while (weft_now_ns() < deadline + 100 * 1000000ull)
		wt_sleep_ms(10);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(atomic_load(&a[i].polls), 1, "task %d woken after its timer was cancelled",
			     i);
		cr_assert_eq(atomic_load(&a[i].done), 0);
		cr_assert_eq(weft_abort(h[i]), 0);
		cr_assert_eq(weft_join(h[i], NULL), -ECANCELED);
	}
	wt_rt_destroy(rt);
}

/*
 * Timers set by tasks on the cores, then every worker parks: the driver's
 * sleeper must bound its sleep by the cores' shards too. Each fires, never
 * early, and well before the driver's one-minute cap (the bound is loose:
 * the machine may be busy).
 */
Test(timers, fire_on_time_with_every_worker_parked, .timeout = WT_TMO(30))
{
	enum { N = 6 };
	struct weft_runtime *rt = wt_rt_create(2);
	static struct armed a[N];
	struct weft_task *h[N];
	memset(a, 0, sizeof(a));
	for (int i = 0; i < N; i++) {
		a[i].deadline = weft_now_ns() + (uint64_t)(30 + 40 * i) * 1000000ull;
		cr_assert_eq(weft_spawn_poll(rt, armed_poll, &a[i], armed_drop, &h[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_join(h[i], NULL), 0);
		cr_assert_geq(a[i].fired_at, a[i].deadline, "timer %d fired early", i);
		cr_assert_lt(a[i].fired_at - a[i].deadline, 2000 * 1000000ull,
			     "timer %d fired %.1f ms late", i,
			     (double)(a[i].fired_at - a[i].deadline) / 1e6);
		cr_log_info("timer %d: %.2f ms late", i,
			    (double)(a[i].fired_at - a[i].deadline) / 1e6);
	}
	wt_rt_destroy(rt);
}

/* A fiber's sleep allocates nothing: its timer lives on the fiber's stack,
 * the waker is a reference to the fiber's task. Counted with a
 * weft_set_allocator allocator around 200 sleeps. */
static atomic_long g_allocs;

static void *count_alloc(size_t size, size_t align, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_allocs, 1);
	void *p = NULL;
	if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size))
		return NULL;
	return p;
}

static void count_free(void *p, void *ctx)
{
	(void)ctx;
	free(p);
}

static void *sleeper_counting(void *arg)
{
	long *delta = arg;
	weft_sleep_ns(1000000); /* warm: first sleep on this core */
	long before = atomic_load(&g_allocs);
	for (int i = 0; i < 200; i++)
		weft_sleep_ns(100000);
	*delta = atomic_load(&g_allocs) - before;
	return NULL;
}

Test(timers, fiber_sleep_allocates_nothing, .timeout = WT_TMO(30))
{
	struct weft_allocator al = { count_alloc, count_free, NULL };
	cr_assert_eq(weft_set_allocator(&al), 0);
	struct weft_runtime *rt = wt_rt_create(2);
	long delta = -1;
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, sleeper_counting, &delta, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(delta, 0, "%ld allocations during 200 fiber sleeps", delta);
	wt_rt_destroy(rt);
	cr_assert_eq(weft_set_allocator(NULL), 0);
}

/*
 * Resolution: deadlines round up to the wheels' tick (WEFT_TICK_NS, 250
 * µs), and the driver's sleeper sleeps to the tick's boundary in ns
 * (epoll_pwait2). With 1 ms ticks and epoll_wait's whole milliseconds, a
 * fiber sleeping 1 ms in a loop took 1.97-2.15 ms each time (every sleep
 * began just after a boundary and was rounded up past the next one); now
 * ~1.25 ms. 40 sleeps; the first quartile is read, so a busy machine that
 * makes some wake-ups late does not fail it.
 */
static void *sleep_1ms_40(void *arg)
{
	uint64_t *took = arg;
	for (int i = 0; i < 40; i++) {
		uint64_t t0 = weft_now_ns();
		if (weft_sleep_ns(1000000))
			return (void *)1;
		took[i] = weft_now_ns() - t0;
	}
	return NULL;
}

/* 40 sleeps of 1 ms in a fiber on a fresh runtime: their durations,
 * sorted, in took[]; none returned early. */
static void sleep_1ms_40_sorted(uint64_t *took)
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, sleep_1ms_40, took, &h), 0);
	void *r = (void *)2;
	cr_assert_eq(weft_join(h, &r), 0);
	cr_assert_null(r);
	wt_rt_destroy(rt);
	qsort(took, 40, sizeof(took[0]), cmp_u64);
	cr_assert_geq(took[0], 1000000ull, "a 1 ms sleep returned after %llu ns",
		      (unsigned long long)took[0]);
}

/* A host busy with other work (ctest -j2 beside a test whose workers
 * spin, a noisy VM) can make most wake-ups of one run late: a run whose
 * bound fails is done again, up to 3 runs. Rounded up to the next
 * boundary every sleep of every run takes 1.97 ms or more, so the
 * rounding still fails all three. */
enum { SLEEP_RUNS = 3 };

Test(timers, a_1ms_sleep_is_not_rounded_to_2ms, .timeout = WT_TMO(30))
{
	static uint64_t took[40];
	for (int run = 0; run < SLEEP_RUNS; run++) {
		sleep_1ms_40_sorted(took);
		cr_log_info("1 ms sleeps: min %.3f, p25 %.3f, median %.3f ms", took[0] / 1e6,
			    took[10] / 1e6, took[20] / 1e6);
		if (took[10] < 1750000ull)
			break;
	}
	cr_assert_lt(took[10], 1750000ull, "%d runs: a quarter of the 1 ms sleeps took %.3f ms "
		     "or more", SLEEP_RUNS, took[10] / 1e6);
}

/* The same loop on the fallback a kernel without epoll_pwait2 takes
 * (epoll_wait's whole milliseconds, rounded up): never early, and no more
 * than the tick plus that millisecond late when the machine is quiet. */
Test(timers, sleeps_on_the_epoll_wait_fallback_are_never_early, .timeout = WT_TMO(30))
{
	atomic_store(&weft__driver_no_pwait2, true);
	static uint64_t took[40];
	for (int run = 0; run < SLEEP_RUNS; run++) {
		sleep_1ms_40_sorted(took);
		cr_log_info("1 ms sleeps, fallback: min %.3f, median %.3f ms", took[0] / 1e6,
			    took[20] / 1e6);
		if (took[20] < 4000000ull)
			break;
	}
	atomic_store(&weft__driver_no_pwait2, false);
	cr_assert_lt(took[20], 4000000ull, "%d runs: half the 1 ms sleeps took %.3f ms or more",
		     SLEEP_RUNS, took[20] / 1e6);
}

/* A fiber that sleeps "forever" (UINT64_MAX ns) on an otherwise idle
 * runtime: its deadline in ticks is near the top of the range, and the
 * tick's boundary in ns wrapped, read as due now: the driver's sleeper
 * woke at once, found nothing due, and slept again, a CPU spinning
 * (review of the 250 µs ticks, before they landed). The process uses
 * almost no CPU over 300 ms; then the fiber is aborted out of its sleep. */
static void *sleep_forever(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)weft_sleep_ns(UINT64_MAX);
}

static uint64_t process_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The same sleep on a worker whose timer shard has fired before, beside
 * short sleeps on that worker: the short sleeps go on. Before, the
 * forever deadline sat in the current top-level slot, the next firing of
 * the shard moved it down and back forever under the shard's lock, and
 * the worker hung (found by a review; 3 of 3 runs on one worker). */
static void *short_sleeps_then_forever(void *arg)
{
	struct weft_task **forever = arg;
	if (weft_sleep_ns(1000000)) /* the shard fires once: off tick 0 */
		return (void *)1;
	if (weft_spawn(weft_runtime_current(), sleep_forever, NULL, forever))
		return (void *)2;
	for (int i = 0; i < 5; i++)
		if (weft_sleep_ns(1000000))
			return (void *)3;
	return NULL;
}

Test(timers, a_sleep_forever_beside_short_sleeps_on_one_worker, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h, *forever = NULL;
	cr_assert_eq(weft_spawn(rt, short_sleeps_then_forever, &forever, &h), 0);
	void *r = (void *)-1;
	int rc = weft_join_timeout(h, &r, 5000000000ull * WEFT_TEST_SLOW);
	cr_assert_eq(rc, 0, "the short sleeps did not finish: %d", rc);
	cr_assert_null(r);
	cr_assert_not_null(forever);
	cr_assert_eq(weft_abort(forever), 0);
	cr_assert_eq(weft_join(forever, NULL), -EINTR);
	wt_rt_destroy(rt);
}

Test(timers, a_sleep_forever_leaves_the_runtime_idle, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, sleep_forever, NULL, &h), 0);
	wt_sleep_ms(50);
	uint64_t c0 = process_cpu_ns();
	wt_sleep_ms(300);
	uint64_t used = process_cpu_ns() - c0;
	cr_log_info("CPU over 300 ms with one fiber asleep forever: %.1f ms", used / 1e6);
	cr_assert_lt(used, 60000000ull * WEFT_TEST_SLOW,
		     "%.1f ms of CPU in 300 ms with every task asleep", used / 1e6);
	cr_assert_eq(weft_abort(h), 0);
	void *r = NULL;
	cr_assert_eq(weft_join(h, &r), -EINTR);
	cr_assert_eq((intptr_t)r, -ECANCELED);
	wt_rt_destroy(rt);
}

/*
 * A weft_block_on fn may outlive the runtime's shutdown: a select on an
 * interval arm there caps its wait at the tick and reads the clock, and
 * its interval's timer sits in the runtime's wheel meanwhile, holding the
 * thread's waker. weft_runtime_destroy from another thread must refuse
 * (-EBUSY) until that fn has returned. It freed the runtime, and the
 * select's cancel of its timer at the tick locked the freed wheel's shard
 * (ASan: heap-use-after-free in weft__timer_cancel).
 */
static atomic_int g_bo_in_select, g_bo_rc = 1;

static void *bo_select_tick(void *arg)
{
	(void)arg;
	struct weft_interval iv;
	if (weft_interval_init(&iv, 300 * 1000000ull * WEFT_TEST_SLOW))
		return NULL;
	struct weft_select_arm a[1] = { WEFT_SEL_TICK(&iv) };
	atomic_store(&g_bo_in_select, 1);
	atomic_store(&g_bo_rc, weft_select(a, 1, WEFT_FOREVER));
	return NULL;
}

static void *bo_thread(void *rt)
{
	return (void *)(intptr_t)weft_block_on(rt, bo_select_tick, NULL, NULL);
}

static void *destroy_inside(void *arg)
{
	return (void *)(intptr_t)weft_runtime_destroy(arg);
}

Test(timers, destroy_refuses_while_a_block_on_waits_on_an_interval, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, bo_thread, rt), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_bo_in_select), WT_LONG_MS));
	wt_sleep_ms(50); /* in its wait, the interval's timer in the wheel */
	int rc = weft_runtime_destroy(rt);
	cr_assert_eq(rc, -EBUSY, "destroy said %d while block_on's fn waits (the runtime freed under it)",
		     rc);
	void *bo_rc;
	cr_assert_eq(pthread_join(th, &bo_rc), 0);
	cr_assert_eq((intptr_t)bo_rc, 0);
	cr_assert_eq(atomic_load(&g_bo_rc), 0, "the tick arm: %d", atomic_load(&g_bo_rc));
	/* from inside this thread's own block_on(rt): -EDEADLK, nothing
	 * freed (the call uses rt after fn returns) */
	struct weft_runtime *rt2 = wt_rt_create(1);
	void *inner = NULL;
	cr_assert_eq(weft_block_on(rt2, destroy_inside, rt2, &inner), 0);
	cr_assert_eq((intptr_t)inner, -EDEADLK);
	cr_assert_eq(weft_runtime_destroy(rt2), 0);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
}

/*
 * A fiber that sleeps until a deadline already past, in a loop (a periodic
 * loop running behind, `next += period`), on one worker: the sleep returns
 * at once, and it must spend the cooperative budget as a ready channel
 * operation does, or the fiber never yields and a fiber queued beside it
 * never runs. Before: 50 million sleeps in 2 s, the other fiber never ran
 * (weft_sleep_ns(0) did yield then: its deadline rounded up to the next
 * tick; now it returns at once, and spends the budget as these do).
 */
static atomic_int g_past_flag;

static void *sleep_past_until_flag(void *arg)
{
	(void)arg;
	uint64_t t0 = weft_now_ns();
	while (!atomic_load(&g_past_flag)) {
		if (weft_sleep_until(t0 - 1) != 0)
			return (void *)2;
		if (weft_now_ns() - t0 > 2000000000ull * WEFT_TEST_SLOW)
			return (void *)1; /* starved: the flag never came */
	}
	return NULL;
}

static void *set_past_flag(void *arg)
{
	atomic_store(&g_past_flag, 1);
	return arg;
}

Test(timers, a_loop_of_sleeps_into_the_past_lets_others_run, .timeout = WT_TMO(30))
{
	atomic_store(&g_past_flag, 0);
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *a, *b;
	cr_assert_eq(weft_spawn(rt, sleep_past_until_flag, NULL, &a), 0);
	wt_sleep_ms(5); /* a is in its loop */
	cr_assert_eq(weft_spawn(rt, set_past_flag, NULL, &b), 0);
	void *r = (void *)-1;
	cr_assert_eq(weft_join(a, &r), 0);
	cr_assert_eq(weft_join(b, NULL), 0);
	cr_assert_null(r, "the sleeping fiber %s", r == (void *)1 ? "kept its worker for 2 s: the other fiber never ran" : "got an error");
	wt_rt_destroy(rt);
}

/*
 * A zero sleep (weft_sleep_ns(0), weft_sleep_until(now)) returns promptly,
 * as Go's time.Sleep(0) does: found by a review, its deadline rounded up
 * to the next 250 us tick and the fiber waited for the driver to reach it
 * (median ~250 us, where a yield at most costs a few us). The poll form
 * likewise: a deadline already passed is READY at the first poll, not
 * PENDING until the wheel's tick. A cancelled fiber's zero sleep still
 * says -ECANCELED.
 */
struct zero_sleep { uint64_t took[101]; int rc, cancelled_rc; atomic_int sleeping; };

static void *zero_sleeps(void *arg)
{
	struct zero_sleep *z = arg;
	for (int i = 0; i < 101; i++) {
		uint64_t t0 = weft_now_ns();
		int rc = i & 1 ? weft_sleep_until(t0) : weft_sleep_ns(0);
		z->took[i] = weft_now_ns() - t0;
		if (rc)
			z->rc = rc;
	}
	return NULL;
}

static void *zero_sleep_when_cancelled(void *arg)
{
	struct zero_sleep *z = arg;
	atomic_store(&z->sleeping, 1);
	weft_sleep_ns(WEFT_FOREVER);
	z->cancelled_rc = weft_sleep_ns(0);
	return NULL;
}

struct due_now { struct weft_timer t; int first; };

static enum weft_poll due_now_poll(void *state, struct weft_cx *cx)
{
	struct due_now *d = state;
	enum weft_poll r = weft_timer_poll(&d->t, cx, weft_now_ns());
	if (!d->first)
		d->first = r == WEFT_READY ? 1 : 2;
	return r;
}

static void due_now_drop(void *state) { weft_timer_cancel(&((struct due_now *)state)->t); }

Test(timers, a_zero_sleep_returns_at_once, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	static struct zero_sleep z;
	memset(&z, 0, sizeof(z));
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, zero_sleeps, &z, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(z.rc, 0);
	qsort(z.took, 101, sizeof(z.took[0]), cmp_u64);
	cr_assert_lt(z.took[50], 100000ull * WEFT_TEST_SLOW,
		     "zero sleeps: median %.1f us, max %.1f us", z.took[50] / 1e3, z.took[100] / 1e3);
	/* the poll form: READY at the first poll */
	for (int i = 0; i < 20; i++) {
		struct due_now d = { .t = WEFT_TIMER_INIT };
		cr_assert_eq(weft_spawn_poll(rt, due_now_poll, &d, due_now_drop, &h), 0);
		cr_assert_eq(weft_join(h, NULL), 0);
		cr_assert_eq(d.first, 1, "poll %d: a deadline of now was PENDING at the first poll", i);
	}
	/* cancelled: still -ECANCELED */
	cr_assert_eq(weft_spawn(rt, zero_sleep_when_cancelled, &z, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&z.sleeping), WT_LONG_MS));
	wt_sleep_ms(5);
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_join(h, NULL), -EINTR);
	cr_assert_eq(z.cancelled_rc, -ECANCELED);
	wt_rt_destroy(rt);
}

/*
 * The poll forms, as the sleep above: a poll task whose timer or interval
 * is already due at every poll (a periodic loop running behind) on one
 * worker must spend the cooperative budget as the other poll forms do
 * (weft_join_poll, weft_io_poll_ready, the sync.h forms), or it never
 * returns WEFT_PENDING and a fiber queued beside it never runs. Found by
 * a review: weft_timer_poll and weft_interval_poll_tick took no budget
 * (the task kept its worker for the whole 2 s).
 */
struct past_poll {
	struct weft_timer t;
	struct weft_interval iv;
	bool interval;
	uint64_t t0;
	int starved; /* 1: the flag never came; 2: a READY the loop did not expect */
};

static enum weft_poll past_poll(void *state, struct weft_cx *cx)
{
	struct past_poll *p = state;
	while (!atomic_load(&g_past_flag)) {
		enum weft_poll r = p->interval ? weft_interval_poll_tick(&p->iv, cx)
					       : weft_timer_poll(&p->t, cx, p->t0 - 1);
		if (r == WEFT_PENDING)
			return WEFT_PENDING;
		if (weft_now_ns() - p->t0 > 2000000000ull * WEFT_TEST_SLOW) {
			p->starved = 1;
			return WEFT_READY;
		}
	}
	return WEFT_READY;
}

static void past_poll_drop(void *state)
{
	struct past_poll *p = state;
	weft_timer_cancel(&p->t);
	weft_interval_cancel(&p->iv);
}

Test(timers, a_poll_task_always_due_lets_others_run, .timeout = WT_TMO(30))
{
	for (int round = 0; round < 2; round++) {
		atomic_store(&g_past_flag, 0);
		struct weft_runtime *rt = wt_rt_create(1);
		struct past_poll p = { .t = WEFT_TIMER_INIT, .interval = round == 1,
				       .t0 = weft_now_ns() };
		/* round 1: a 1 ns period, due again at every poll */
		cr_assert_eq(weft_interval_init(&p.iv, 1), 0);
		struct weft_task *a, *b;
		cr_assert_eq(weft_spawn_poll(rt, past_poll, &p, past_poll_drop, &a), 0);
		wt_sleep_ms(5); /* a is in its loop */
		cr_assert_eq(weft_spawn(rt, set_past_flag, NULL, &b), 0);
		cr_assert_eq(weft_join(a, NULL), 0);
		cr_assert_eq(weft_join(b, NULL), 0);
		cr_assert_eq(p.starved, 0, "%s: the poll task kept its worker for 2 s, the fiber "
			     "beside it never ran", round ? "interval" : "timer");
		wt_rt_destroy(rt);
	}
}

/* An interval handed from a poll task to a fiber (io.h: it belongs to one
 * task at a time). The poll task's weft_interval_poll_tick left the
 * interval's timer armed for the tick due at D; the fiber took that tick
 * with the blocking weft_interval_tick (a sleep of its own, next tick
 * D + P), then waited in a select on the interval: the old timer, fired
 * at D, made the select tick at once, a whole period early (found by a
 * review). */
#define HANDOVER_P (60 * 1000000ull)

static enum weft_poll handover_arm(void *arg, struct weft_cx *cx)
{
	struct weft_interval *iv = arg;
	cr_assert_eq(weft_interval_poll_tick(iv, cx), WEFT_PENDING);
	return WEFT_READY; /* done with it: the fiber owns it now */
}

static void *handover_fiber(void *arg)
{
	struct weft_interval *iv = arg;
	if (weft_interval_tick(iv)) /* the tick due at D */
		return (void *)1;
	uint64_t next = iv->next_ns;
	struct weft_select_arm arms[] = { WEFT_SEL_TICK(iv) };
	if (weft_select_timeout(arms, 1, 5000 * 1000000ull) != 0)
		return (void *)2;
	uint64_t at = weft_now_ns();
	cr_expect_geq(at, next, "ticked %.1f ms before its deadline",
		      (double)(next - at) / 1e6);
	return at >= next ? NULL : (void *)3;
}

Test(timers, an_interval_handed_from_a_poll_task_to_a_fiber_is_never_early,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_interval iv;
	cr_assert_eq(weft_interval_init(&iv, HANDOVER_P), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, handover_arm, &iv, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	void *res;
	cr_assert_eq(weft_spawn(rt, handover_fiber, &iv, &t), 0);
	cr_assert_eq(weft_join(t, &res), 0);
	cr_assert_null(res, "the fiber said %p", res);
	weft_interval_cancel(&iv);
	wt_rt_destroy(rt);
}

/* weft_interval_reset from another thread while a poll task waits on the
 * interval, its only wake source (Go's Ticker.Reset beside a goroutine
 * blocked on t.C): the task ticks at the new deadline. The reset
 * cancelled the waiting task's timer and dropped its waker: the task
 * slept for good (found by a review). */
struct xreset { struct weft_interval iv; atomic_int armed; uint64_t ticked_at; };

static enum weft_poll xreset_poll(void *arg, struct weft_cx *cx)
{
	struct xreset *s = arg;
	if (weft_interval_poll_tick(&s->iv, cx) == WEFT_PENDING) {
		atomic_store(&s->armed, 1);
		return WEFT_PENDING;
	}
	s->ticked_at = weft_now_ns();
	weft_interval_cancel(&s->iv);
	return WEFT_READY;
}

Test(timers, interval_reset_from_another_thread_wakes_its_waiting_task, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct xreset s;
	atomic_init(&s.armed, 0);
	cr_assert_eq(weft_interval_init(&s.iv, 100ull * 1000000000ull), 0); /* 100 s */
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, xreset_poll, &s, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&s.armed), WT_LONG_MS));
	/* the task is waiting (PENDING returned, nothing else wakes it) */
	cr_assert_eq(weft_join_timeout(t, NULL, 1000000), -ETIMEDOUT);
	uint64_t reset_at = weft_now_ns();
	cr_assert_eq(weft_interval_reset(&s.iv, 20 * 1000000ull), 0);
	cr_assert_eq(weft_join_timeout(t, NULL, 5ull * 1000000000ull), 0,
		     "the waiting task did not tick within 5 s of the reset");
	cr_assert_geq(s.ticked_at - reset_at, 20 * 1000000ull);
	wt_rt_destroy(rt);
}

/*
 * A timer that fired and was taken (idle: it holds no waker, nothing in
 * any wheel) outlives its runtime: a cleanup that cancels it after
 * weft_runtime_destroy - weft_timer_cancel, weft_interval_cancel - has
 * nothing to do. It read the runtime the timer was last polled on (the
 * forked-child check) before it looked at the timer: freed memory (found
 * by a review). The runtime's memory comes from an allocator whose free
 * unmaps it, so a read of it faults; left installed (the process is this
 * test's: what it allocated goes back to it).
 */
static void *unmap_alloc(size_t size, size_t align, void *ctx)
{
	(void)ctx;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	if (align > pg)
		return NULL;
	size_t len = (size + pg + pg - 1) / pg * pg; /* a page in front for the length */
	char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	*(size_t *)b = len;
	return b + pg;
}

static void unmap_free(void *p, void *ctx)
{
	(void)ctx;
	if (!p)
		return;
	char *b = (char *)p - (size_t)sysconf(_SC_PAGESIZE);
	munmap(b, *(size_t *)b);
}

struct iv_once { struct weft_interval iv; atomic_int ticked; };

static enum weft_poll iv_once_poll(void *state, struct weft_cx *cx)
{
	struct iv_once *o = state;
	if (weft_interval_poll_tick(&o->iv, cx) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_store(&o->ticked, 1);
	return WEFT_READY;
}

static void iv_once_drop(void *state)
{
	struct iv_once *o = state;
	weft_interval_cancel(&o->iv);
}

Test(timers, an_idle_timer_cancelled_after_its_runtime_is_destroyed, .timeout = WT_TMO(30))
{
	struct weft_allocator al = { unmap_alloc, unmap_free, NULL };
	cr_assert_eq(weft_set_allocator(&al), 0);
	struct weft_runtime *rt = wt_rt_create(1);
	static struct armed a;
	static struct iv_once o;
	memset(&a, 0, sizeof(a));
	memset(&o, 0, sizeof(o));
	a.deadline = weft_now_ns() + 5 * 1000000ull;
	cr_assert_eq(weft_interval_init(&o.iv, 5 * 1000000ull), 0);
	struct weft_task *h, *hi;
	cr_assert_eq(weft_spawn_poll(rt, armed_poll, &a, armed_drop, &h), 0);
	cr_assert_eq(weft_spawn_poll(rt, iv_once_poll, &o, iv_once_drop, &hi), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(weft_join(hi, NULL), 0);
	cr_assert_eq(atomic_load(&a.done), 1);
	cr_assert_eq(atomic_load(&o.ticked), 1);
	wt_rt_destroy(rt);
	weft_timer_cancel(&a.t); /* idle: nothing to do, nothing to read */
	weft_interval_cancel(&o.iv);
	cr_assert_eq(weft_interval_reset(&o.iv, 0), 0);
}
