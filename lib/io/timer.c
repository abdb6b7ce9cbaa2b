/*
 * timer.c - the public time API over the driver's wheel: sleep, poll-style
 * timers, intervals, join with a timeout.
 */
#include <errno.h>
#include <time.h>

#include "runtime.h"

struct timer_pub {
	struct weft__timer t;
	struct weft_runtime *rt;
	uint64_t deadline_ns;
};
_Static_assert(sizeof(struct timer_pub) <= sizeof(struct weft_timer), "weft_timer too small");

uint64_t weft_now_ns(void) { return weft__now_ns(); }

static enum weft_poll timer_poll(struct weft_timer *pub, struct weft_cx *cx, uint64_t deadline_ns)
{
	struct timer_pub *p = (struct timer_pub *)pub;
	/* A thread's cx (no runtime): only the clock. So in a forked child
	 * for a cx of the parent's runtime (the task the child was forked
	 * from, a cx made on it): nothing of that runtime is the child's to
	 * arm in, and its shard's lock may have been held by a parent thread
	 * at the fork - the poll took it, as weft_timer_cancel did, and spun
	 * for good (found by a review). */
	if (!cx->rt || __builtin_expect(WEFT__FORKED(cx->rt), 0))
		return weft__now_ns() >= deadline_ns ? WEFT_READY : WEFT_PENDING;
	uint8_t st = atomic_load_explicit(&p->t.state, memory_order_relaxed);
	/* Armed in the parent's runtime, polled on one of the child's: the
	 * arming is the parent's (its wheel links the timer, its waker is
	 * the parent's task; weft_timer_cancel leaves it alone), so this copy
	 * is idle here and arms anew, for this poll's deadline. It went to
	 * the parent's shard - its lock maybe held at the fork - and waited
	 * there for a wheel nobody in the child fires. */
	struct weft_runtime *armed_in = __atomic_load_n(&p->rt, __ATOMIC_RELAXED);
	if (st != TIMER_IDLE && __builtin_expect(armed_in != cx->rt, 0) && WEFT__FORKED(armed_in)) {
		atomic_store_explicit(&p->t.state, TIMER_IDLE, memory_order_relaxed);
		p->t.waker = (weft_waker){ NULL, NULL }; /* the parent's reference */
		st = TIMER_IDLE;
	}
	if (st == TIMER_IDLE) {
		/* atomic, written only when it changes: a cancel from
		 * another thread reads it */
		if (armed_in != cx->rt)
			__atomic_store_n(&p->rt, cx->rt, __ATOMIC_RELAXED);
		p->deadline_ns = deadline_ns;
	}
	enum weft_poll r = weft__timer_poll(p->rt, &p->t, p->deadline_ns, cx);
	if (r == WEFT_READY)
		atomic_store_explicit(&p->t.state, TIMER_IDLE, memory_order_relaxed);
	return r;
}

/* One unit of the cooperative budget a poll, refunded when it must wait,
 * as the other poll forms (weft_join_poll, weft_io_poll_ready, sync.h's):
 * a poll task whose timer was due at every poll (a periodic loop running
 * behind) never returned WEFT_PENDING, and a task beside it on its worker
 * never ran (found by a review; weft_sleep_until spends it likewise). */
enum weft_poll weft_timer_poll(struct weft_timer *pub, struct weft_cx *cx, uint64_t deadline_ns)
{
	/* a poll form has no error to return: a NULL timer said nothing
	 * and crashed (found by a review) */
	if (!pub)
		weft__die("weft_timer_poll: NULL timer");
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING; /* spent: the task was woken to run again later */
	enum weft_poll r = timer_poll(pub, cx, deadline_ns);
	if (r == WEFT_PENDING)
		weft_budget_refund(cx);
	return r;
}

void weft_timer_cancel(struct weft_timer *pub)
{
	if (!pub) /* nothing to return it in: as weft_timer_poll */
		weft__die("weft_timer_cancel: NULL timer");
	struct timer_pub *p = (struct timer_pub *)pub;
	/* An idle timer (never armed, fired and taken, or cancelled) holds
	 * nothing: the runtime it was last polled on is not looked at - it
	 * may have been destroyed since, and the look below read freed
	 * memory (found by a review). A cancel from another thread racing
	 * its owner's arming may read IDLE, as weft__timer_cancel's first
	 * look did. */
	if (atomic_load_explicit(&p->t.state, memory_order_relaxed) == TIMER_IDLE)
		return;
	struct weft_runtime *rt = __atomic_load_n(&p->rt, __ATOMIC_RELAXED);
	/* In a forked child the timer is the parent's (its wheel, its waker):
	 * nothing to cancel here, and the shard's lock may have been held by
	 * a parent thread at the fork - the child spun on it for good (found
	 * by a review). */
	if (rt && !WEFT__FORKED(rt))
		weft__timer_cancel(rt, &p->t);
}

struct sleep_arg { struct weft__timer t; uint64_t deadline; };

static enum weft_poll sleep_poll(void *arg, struct weft_cx *cx)
{
	struct sleep_arg *s = arg;
	return weft__timer_poll(cx->rt, &s->t, s->deadline, cx);
}

/* Nothing to wait for but the deadline (weft__wait_deadline's thread form). */
static enum weft_poll sleep_never(void *arg, struct weft_cx *cx)
{
	(void)arg, (void)cx;
	return WEFT_PENDING;
}

int weft_sleep_until(uint64_t deadline_ns)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		/* The fiber's wait deadline is the sleep: wait on nothing. */
		int rc = weft__wait_deadline((weft__wait_poll_fn)0, NULL, NULL, deadline_ns);
		if (rc != -ETIMEDOUT)
			return rc;
		/* A deadline already past returns without suspending: spend the
		 * budget as a ready channel operation does, or a loop of such
		 * sleeps (a periodic loop running behind) never yields its
		 * worker (found by a review: a fiber beside it never ran) */
		weft__coop_spend();
		return 0;
	}
	if (ctx && ctx->core)
		return -EDEADLK;
	if (ctx && ctx->discarding)
		return -ECANCELED; /* a discarded fiber's dtor (local.c) */
	(void)sleep_poll;
	if (ctx && ctx->fiber_in_place && !weft__forked_task) {
		/* A fiber's weft_block_in_place fn is part of the fiber
		 * (weft.h): its sleep ends with -ECANCELED once the fiber is
		 * cancelled or its runtime shuts down, as the fn's sync
		 * waits and joins do (wait.c looks every 10 ms). A
		 * clock_nanosleep there could not be ended: an aborted fiber
		 * slept on and shutdown timed out on it (found by a review).
		 * A sleep begun once that is so ends at once, as the fiber's
		 * own (and weft_yield in fn) does: the wait looks at the
		 * close only a 10 ms slice in, so a shorter sleep slept out
		 * and said 0 (a fiber in its first poll is not on the list
		 * shutdown cancels; found by a review). */
		if (weft__fn_cancelled())
			return -ECANCELED;
		int rc = weft__wait_deadline(sleep_never, NULL, NULL, deadline_ns);
		if (rc != -ENOMEM)
			return rc == -ETIMEDOUT ? 0 : rc;
	}
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ull),
			       (long)(deadline_ns % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return 0;
}

int weft_sleep_ns(uint64_t ns)
{
	uint64_t now = weft__now_ns();
	return weft_sleep_until(ns > UINT64_MAX - now ? UINT64_MAX - 1 : now + ns);
}

/* a + b, at most UINT64_MAX - 1 (as weft_sleep_ns): a period near
 * WEFT_FOREVER means "never", not a deadline wrapped into the past (that
 * ticked back to back: found by a review). */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - 1 - a ? UINT64_MAX - 1 : a + b;
}

/* How late a tick may be taken and still count as on time for DELAY: the
 * wheel's slots and a worker's wake-up make every tick a little late. */
#define DELAY_SLACK_NS (5ull * 1000000ull)

/* The deadline after the one that just passed (iv->next_ns), for the
 * interval's weft_missed_tick. */
static uint64_t next_tick(const struct weft_interval *iv)
{
	uint64_t next = add_sat(iv->next_ns, iv->period_ns);
	if (iv->missed == WEFT_MISSED_BURST)
		return next; /* maybe past already: the next call ticks at once */
	uint64_t now = weft__now_ns();
	/* DELAY: a tick taken late shifts the schedule, as time.h says (and
	 * Tokio's Delay, with its 5 ms slack) - not only one a whole period
	 * late, which kept the schedule for a tick half a period late (found
	 * by a review of the session's diff) */
	if (iv->missed == WEFT_MISSED_DELAY && now > add_sat(iv->next_ns, DELAY_SLACK_NS))
		return add_sat(now, iv->period_ns);
	if (next > now)
		return next;
	if (iv->missed == WEFT_MISSED_DELAY)
		return add_sat(now, iv->period_ns);
	return now + iv->period_ns - (now - next) % iv->period_ns;
}

int weft_interval_init(struct weft_interval *iv, uint64_t period_ns)
{
	if (!iv || !period_ns)
		return -EINVAL;
	*iv = (struct weft_interval){ .next_ns = add_sat(weft__now_ns(), period_ns),
				      .period_ns = period_ns };
	return 0;
}

/* weft_timer_cancel for the interval's own poll, which does not wait for
 * the wake of a firing it races (driver.c): that waker is the polling
 * task's, or that of a task it took the interval from - a wake still
 * running only polls it once more - and a task woken by a batch of fires,
 * running on another worker, would wait for the whole batch. */
static void interval_timer_drop(struct weft_interval *iv)
{
	struct timer_pub *p = (struct timer_pub *)&iv->timer;
	if (atomic_load_explicit(&p->t.state, memory_order_relaxed) == TIMER_IDLE)
		return;
	struct weft_runtime *rt = __atomic_load_n(&p->rt, __ATOMIC_RELAXED);
	if (rt && !WEFT__FORKED(rt)) /* in a forked child: as weft_timer_cancel */
		weft__timer_cancel_own(rt, &p->t);
}

enum weft_poll weft_interval_poll_tick(struct weft_interval *iv, struct weft_cx *cx)
{
	/* Due by the clock is due: a thread in weft_block_on or a
	 * block_in_place fn waits with the runtime's wheel, which fires a
	 * tick a little after it (and never once the runtime has shut
	 * down), so a select woken at the tick found the arm pending and
	 * said -ETIMEDOUT (found by a review). */
	/* the budget as weft_timer_poll's */
	if (!iv) /* a NULL one crashed, said nothing (found by a review) */
		weft__die("weft_interval_poll_tick: NULL interval");
	if (!iv->period_ns) /* a poll form has no error to return */
		weft__die("the interval has no period (never "
			  "given to weft_interval_init)");
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	if (weft__now_ns() >= iv->next_ns) {
		interval_timer_drop(iv);
		iv->next_ns = next_tick(iv);
		return WEFT_READY;
	}
	/* The timer armed for a tick that is not the next one any more: one
	 * taken meanwhile by weft_interval_tick, which sleeps on a timer of
	 * its own (the interval handed from a poll task to a fiber). An armed
	 * timer keeps the deadline it was first polled with, so the old one,
	 * fired, made this poll tick a whole period early (found by a
	 * review). State and deadline are the owner's to read: a relaxed
	 * look, the cancel orders itself. */
	struct timer_pub *tp = (struct timer_pub *)&iv->timer;
	if (atomic_load_explicit(&tp->t.state, memory_order_relaxed) != TIMER_IDLE &&
	    tp->deadline_ns != iv->next_ns)
		interval_timer_drop(iv);
	if (timer_poll(&iv->timer, cx, iv->next_ns) == WEFT_PENDING) {
		weft_budget_refund(cx);
		return WEFT_PENDING;
	}
	iv->next_ns = next_tick(iv);
	return WEFT_READY;
}

int weft_interval_tick(struct weft_interval *iv)
{
	/* no period: a zeroed interval never initialised (it divided by
	 * zero: SIGFPE; a review) */
	if (!iv || !iv->period_ns)
		return -EINVAL;
	int rc = weft_sleep_until(iv->next_ns);
	if (rc)
		return rc;
	iv->next_ns = next_tick(iv);
	return 0;
}

void weft_interval_cancel(struct weft_interval *iv)
{
	if (iv)
		weft_timer_cancel(&iv->timer);
}

int weft_interval_set_missed(struct weft_interval *iv, enum weft_missed_tick m)
{
	if (!iv || ((unsigned)m != WEFT_MISSED_SKIP && (unsigned)m != WEFT_MISSED_BURST &&
		    (unsigned)m != WEFT_MISSED_DELAY))
		return -EINVAL;
	iv->missed = (int)m;
	return 0;
}

int weft_interval_reset(struct weft_interval *iv, uint64_t period_ns)
{
	/* no period at all (a zeroed interval never initialised): refused as
	 * at init, or the next tick divided by it (SIGFPE; a review) */
	if (!iv || (!period_ns && !iv->period_ns))
		return -EINVAL;
	/* a pending timer keeps the deadline it was first polled with until
	 * it fires or is cancelled (weft_timer_poll). The waker it held is
	 * woken once the new schedule is written: a task waiting in
	 * weft_interval_poll_tick polls again and waits for the new deadline.
	 * Dropped, as it was, a reset from another task left that task
	 * asleep for good, nothing else due to wake it (found by a review). */
	struct timer_pub *tp = (struct timer_pub *)&iv->timer;
	struct weft_runtime *rt = __atomic_load_n(&tp->rt, __ATOMIC_RELAXED);
	/* In a forked child the timer is the parent's, as for
	 * weft_timer_cancel: only the schedule restarts. Cancelled there as
	 * here, the child took the shard's lock a parent thread may have held
	 * at the fork (it spun on it for good) and woke the parent's task in
	 * the child (found by a review). An idle timer holds nothing: its
	 * runtime, maybe destroyed since, is not looked at. */
	weft_waker w = { NULL, NULL };
	if (rt && atomic_load_explicit(&tp->t.state, memory_order_relaxed) != TIMER_IDLE &&
	    !WEFT__FORKED(rt))
		w = weft__timer_cancel_take(rt, &tp->t);
	if (period_ns)
		iv->period_ns = period_ns;
	iv->next_ns = add_sat(weft__now_ns(), iv->period_ns);
	if (w.vtable)
		weft_waker_wake(&w);
	return 0;
}
