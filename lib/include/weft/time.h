/*
 * weft/time.h - sleeping, timers, intervals, timeouts.
 *
 * Times are CLOCK_MONOTONIC nanoseconds (weft_now_ns()). Timers live in the
 * runtime's hierarchical wheels (250 µs resolution): they never fire early
 * and fire within about 250 µs of their deadline plus the time to wake a
 * worker (a 1 ms sleep takes ~1.25 ms on an idle runtime); a deadline
 * the calling thread has already seen pass - at or before its last
 * weft_now_ns() or weft sleep, as weft_sleep_ns(0) or a deadline made
 * from weft_now_ns() is - is due at once (one that passed unseen waits
 * for the next tick). On a kernel
 * without epoll_pwait2 (before 5.11, or a seccomp filter that refuses it)
 * an idle runtime wakes on whole milliseconds: up to 1 ms more.
 * Blocking-style calls suspend a fiber, block a thread outside the runtime,
 * and return -EDEADLK from a poll task (which uses the poll forms).
 */
#ifndef WEFT_TIME_H_PUBLIC
#define WEFT_TIME_H_PUBLIC

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_cx;
struct weft_task;

/* CLOCK_MONOTONIC in nanoseconds. */
WEFT_API uint64_t weft_now_ns(void);

/* Sleep for ns / until deadline_ns. 0, -EDEADLK (poll task), -ECANCELED
 * (a fiber that was cancelled: at once, or as soon as it is). A deadline
 * already passed (weft_sleep_ns(0)) returns at once, as Go's
 * time.Sleep(0): a fiber yields its worker only if its cooperative budget
 * is spent. */
WEFT_API int weft_sleep_ns(uint64_t ns);
WEFT_API int weft_sleep_until(uint64_t deadline_ns);

/*
 * A timer for poll tasks: caller-owned (keep it in the task's state),
 * zero-initialised (WEFT_TIMER_INIT). weft_timer_poll returns WEFT_READY
 * once deadline_ns has passed (at the first poll if the thread has seen
 * it pass, above: no wait for the wheel's next tick), else registers cx's waker (the deadline of
 * the first poll counts until the timer fires or is cancelled). A task
 * dropped while its timer is pending must call weft_timer_cancel from its
 * drop function. After READY or cancel the timer can be polled again for a
 * new deadline. Cancel is O(1). A cancel that races the timer's firing
 * returns only once the wake that firing began has ended: nothing of the
 * timer follows the return (the task it woke may still be polled once
 * for it - the wake came before the cancel, as a wake does). In a
 * child forked from the process, cancelling a timer of the parent's
 * runtime does nothing (the timer is the parent's); polling it on a
 * runtime the child made arms it anew there, for that poll's deadline
 * (the parent's arming left alone), and a poll with a cx of the parent's
 * runtime (in the task the child was forked from) reads the clock only,
 * as a thread's cx does: READY once the deadline has passed.
 * Each poll (weft_interval_poll_tick's too) spends one unit of the
 * cooperative budget, refunded when it must wait, as the poll forms of
 * sync.h: once the budget is spent it returns WEFT_PENDING and the task
 * is polled again later. t must not be NULL (nor iv for
 * weft_interval_poll_tick): none of the three has an error to return, so
 * a NULL one aborts with a message naming the call.
 */
struct weft_timer { uint64_t _opaque[10]; };
#define WEFT_TIMER_INIT { { 0 } }
WEFT_API enum weft_poll weft_timer_poll(struct weft_timer *t, struct weft_cx *cx,
					uint64_t deadline_ns);
WEFT_API void weft_timer_cancel(struct weft_timer *t);

/*
 * A periodic tick: first tick one period after init, then every period.
 * Ticks missed while nobody waited (the owner busy, or polling late) are
 * by default skipped (no burst), like Go's Ticker; weft_interval_set_missed
 * chooses another way, as Tokio's MissedTickBehavior. An interval belongs
 * to one task at a time: its calls are not safe beside each other.
 */
enum weft_missed_tick {
	/* the next tick is the next one of the original schedule still ahead
	 * (init + k * period): late ticks are dropped, the phase kept */
	WEFT_MISSED_SKIP = 0,
	/* every missed tick is delivered, at once, one per call, until the
	 * schedule is caught up (Tokio's default) */
	WEFT_MISSED_BURST = 1,
	/* the next tick is one period after a late one was taken (more
	 * than 5 ms after its deadline): the schedule shifts (Tokio's Delay) */
	WEFT_MISSED_DELAY = 2,
};
struct weft_interval {
	struct weft_timer timer;
	uint64_t next_ns, period_ns;
	int missed; /* enum weft_missed_tick */
};
/* -EINVAL for a NULL iv or a zero period (Go's NewTicker and Tokio's
 * interval panic). init writes the whole struct, as WEFT_TIMER_INIT
 * would: not on an interval whose timer is armed (polled by
 * weft_interval_poll_tick or a select and not cancelled) - the runtime's
 * wheel still links it, and a later poll arms it twice. Restart a live
 * interval with weft_interval_reset, or weft_interval_cancel it first. */
WEFT_API int weft_interval_init(struct weft_interval *iv, uint64_t period_ns);
/* The poll form on an interval never initialised (no period) aborts with
 * a message: it has no error to return. */
WEFT_API enum weft_poll weft_interval_poll_tick(struct weft_interval *iv, struct weft_cx *cx);
/* Blocking-style: 0 at the next tick, -EDEADLK from a poll task,
 * -ECANCELED in a cancelled fiber (and its weft_block_in_place fn),
 * -EINVAL for a NULL iv or one never initialised. */
WEFT_API int weft_interval_tick(struct weft_interval *iv);
/* Cancel the interval's armed timer, as weft_timer_cancel (a task dropped
 * while it waits on the interval calls it from its drop function; a
 * select does for an arm that lost). The schedule is kept: the next poll
 * or tick waits for the next tick, or ticks at once if it is past. It is
 * not Go's Ticker.Stop - an interval has no stopped state: to stop,
 * stop ticking it. NULL is a no-op. */
WEFT_API void weft_interval_cancel(struct weft_interval *iv);
/* How ticks missed from now on are handled (the default is SKIP): 0, or
 * -EINVAL (NULL iv, or not a weft_missed_tick). */
WEFT_API int weft_interval_set_missed(struct weft_interval *iv, enum weft_missed_tick m);
/* Start the schedule again from now: the next tick one period from now
 * (Go's Ticker.Reset, Tokio's Interval::reset), with period_ns as the new
 * period, or the old one when period_ns is 0. A task waiting in
 * weft_interval_poll_tick (or a select's TICK arm) is woken by it and
 * waits for the new deadline, as a goroutine blocked on a reset Ticker's
 * channel; from the waiting task itself (a select loop) that costs one
 * extra poll. The interval's calls are still not safe beside each other:
 * a reset from another task can meet the owner's poll (woken by the old
 * tick, or by another arm of its select), and a fiber inside
 * weft_interval_tick is inside a call - where that can happen, tell the
 * owner (a channel, a notify) and let it reset. In a forked child a timer
 * armed in the parent's runtime is left alone, as by weft_timer_cancel:
 * only the schedule restarts. 0, or -EINVAL for a NULL iv or no period
 * (period_ns 0 on an interval never initialised). */
WEFT_API int weft_interval_reset(struct weft_interval *iv, uint64_t period_ns);

/*
 * weft_join with a time limit: -ETIMEDOUT if the task has not finished
 * within timeout_ns (the handle is then NOT consumed). Otherwise as
 * weft_join, -EBUSY included (another weft_join or weft_join_timeout
 * waits on the handle).
 */
WEFT_API int weft_join_timeout(struct weft_task *task, void **result, uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TIME_H_PUBLIC */
