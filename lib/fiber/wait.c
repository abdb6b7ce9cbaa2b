/*
 * wait.c - blocking-style waits built on poll-style operations.
 *
 * Every weft resource has a poll form, `poll(arg, cx)`, that registers cx's
 * waker when it cannot finish. weft__wait turns that into a blocking call:
 *  - inside a fiber the fiber suspends between polls (it is polled again
 *    when the waker fires), and its pending wait entry `w` and deadline
 *    timer are remembered so that cancelling the suspended fiber unlinks
 *    them before its stack is discarded;
 *  - on a thread outside the runtime, the cx carries a waker for the
 *    thread's parker and an unlimited budget; between polls the thread
 *    sleeps on its futex (with a timeout for a deadline);
 *  - a fiber whose task was cancelled (weft_abort, shutdown) gets
 *    -ECANCELED at entry, or when resumed, instead of waiting: the
 *    cancellation point. Its code then unwinds (releases what it holds)
 *    and returns; task.c keeps polling it until it does;
 *  - inside a plain poll task on a thread that drives a core it refuses
 *    with -EDEADLK: blocking there would stall the core; such tasks use the
 *    poll form. A worker thread inside weft_block_in_place has given its
 *    core away and blocks like any other thread.
 * Nothing thread-local is held across a suspension: the fiber is reached
 * through weft__ctx() before it and lives in the task's state.
 */
#include <errno.h>
#include <limits.h>

#include "runtime.h"

/* How often a wait in a fiber's weft_block_in_place fn looks whether the
 * fiber was cancelled (below). */
#define FIP_SLICE_NS (10u * 1000 * 1000)

/* The fiber whose block_in_place fn runs here was cancelled (weft_abort,
 * or shutdown's sweep); its runtime is shutting down (a fiber still in
 * its first poll is not on the list the sweep cancels). */
static bool fip_aborted(const struct weft__fiber *f)
{
	return weft__task_cancelled(f->cx->task);
}

static bool fip_closing(const struct weft__fiber *f)
{
	return atomic_load_explicit(&f->cx->rt->closed, memory_order_relaxed);
}

/* The running fiber was cancelled (weft_abort, shutdown). Shutdown cancels
 * the fibers on its list; one still in its first poll (it never waited, so
 * it is not listed) cancels itself here, at its first cancellation point
 * after the close, as the sweep would have: its calls that would not have
 * to wait said 0 (a free mutex was taken, an unbounded channel's sends -
 * no budget, no suspension - went on for ever, holding the shutdown), and
 * its joiner got 0 for -EINTR (found by a review of weft.h). */
static bool fiber_cancelled(struct weft__fiber *f)
{
	if (weft__task_cancelled(f->cx->task))
		return true;
	if (!atomic_load_explicit(&f->cx->rt->closed, memory_order_relaxed))
		return false;
	(void)weft__task_cancel(f->cx->task); /* running: marks it, submits nothing */
	return true;
}

/* A cancelled fiber's blocking call returns -ECANCELED without waiting:
 * spend a unit of its budget as a call that finished without waiting
 * does, and yield once it is spent. Code that ignores -ECANCELED and calls
 * again (a retry loop) then still suspends now and again: before, it never
 * did, so it held its worker for good, the other tasks there waited, and
 * shutdown, which discards a fiber only while it is suspended, returned
 * -ETIMEDOUT for ever (weft.h promises the fiber no longer than the
 * timeout; found by a review: a loop of weft_sleep_ns). `w`, the caller's
 * entry it has yet to cancel, is the pending wait while suspended, so a
 * fiber discarded there leaves nothing linked to its stack. */
static void cancel_spend(struct weft__fiber *f, struct weft_wait *w)
{
	if (__builtin_expect(weft__forked_task, 0))
		return; /* a forked child: never back into the parent's loop */
	if (weft_budget_poll_proceed(f->cx) == WEFT_PENDING) {
		f->waiting = w;
		weft__fiber_suspend(f); /* woken by the call above: runs again later */
		f->waiting = NULL;
	}
}

static int wait_fiber(struct weft__fiber *f, weft__wait_poll_fn poll, void *arg,
		      struct weft_wait *w, uint64_t deadline_ns)
{
	struct weft__timer timer = { 0 };
	struct weft_runtime *rt = f->cx->rt;
	int rc = 0;
	for (;;) {
		/* In a child forked by this fiber, suspending would return to
		 * the parent's runtime loop. */
		if (__builtin_expect(weft__forked_task, 0)) {
			rc = -ECHILD;
			break;
		}
		/* The cancellation point: at entry and after every resume. */
		if (fiber_cancelled(f)) {
			rc = -ECANCELED;
			break;
		}
		if (poll && poll(arg, f->cx) == WEFT_READY)
			break;
		/* A poll whose budget was spent said PENDING without looking
		 * (sync.h's forms, a select's round): a deadline already
		 * passed must not end the wait before a look with the next
		 * poll's budget, or a try (a select with a past deadline) on
		 * a ready arm said -ETIMEDOUT once per budget (found by a
		 * review). Run again after the others, then look. */
		if (poll && *f->cx->budget == 0) {
			weft_waker_wake_by_ref(&f->cx->waker);
		} else if (deadline_ns != WEFT_FOREVER &&
			   weft__timer_poll(rt, &timer, deadline_ns, f->cx) == WEFT_READY) {
			rc = -ETIMEDOUT;
			break;
		}
		f->waiting = w;
		f->timer = deadline_ns != WEFT_FOREVER ? &timer : NULL;
		f->timer_rt = rt;
		weft__fiber_suspend(f);
		f->waiting = NULL;
		f->timer = NULL;
	}
	if (deadline_ns != WEFT_FOREVER)
		weft__timer_cancel_own(rt, &timer); /* its waker is this fiber's */
	if (rc == -ECANCELED)
		cancel_spend(f, w);
	return rc;
}

/* `io`: an I/O wait, which says -ESHUTDOWN at shutdown on any thread (a
 * fiber's block_in_place fn included); for the others, the fn's shutdown
 * is its fiber's cancellation from its start. */
static int wait_deadline(weft__wait_poll_fn poll, void *arg, struct weft_wait *w,
			 uint64_t deadline_ns, bool io)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber)
		return wait_fiber(ctx->fiber, poll, arg, w, deadline_ns);
	if (__builtin_expect(weft__forked_task, 0))
		return -ECHILD; /* a blocking job's child: nobody would wake it */
	if (ctx && ctx->core)
		return -EDEADLK; /* a poll task: it would stall the core */
	if (ctx && ctx->discarding)
		return -ECANCELED; /* a discarded fiber's dtor: as on the fiber */
	/* A fiber's weft_block_in_place fn: its waits end with -ECANCELED when
	 * the fiber is cancelled, as the fiber's own do (sync.h, weft_spawn).
	 * Nothing wakes this thread then (abort and shutdown wake the task,
	 * which is running fn here), so it looks again every FIP_SLICE_NS
	 * while it waits. Before, a wait in fn parked until its object woke
	 * it: an aborted fiber could not unwind, and shutdown timed out on it
	 * (found by a review: a weft_chan_recv with no sender). */
	struct weft__fiber *fip = ctx ? ctx->fiber_in_place : NULL;
	if (fip && !fip->cx)
		fip = NULL;
	/* A wait begun once the fiber's runtime is closing is cancelled at
	 * once, as the fiber's own (its sleep, yield and unbounded sends
	 * here already were): looking at the close only a slice in, the
	 * lock of a free mutex said 0, a wait limited to less than the
	 * slice -ETIMEDOUT, and a loop retrying it went on for good, holding
	 * the shutdown (found by a review). Not an I/O wait: shutdown wakes
	 * those itself, with -ESHUTDOWN (below). */
	if (fip && (fip_aborted(fip) || (!io && fip_closing(fip))))
		return -ECANCELED;
	/* A poll task's weft_block_in_place fn: once shutdown has told the
	 * workers to stop (after the fibers' turn), no worker runs what its
	 * wait is for, and the shutdown's sweep that would end a waiting task
	 * it joins comes only after this thread has stopped: the wait, looked
	 * at every FIP_SLICE_NS too, ends with -ECANCELED a slice after that
	 * was seen. Before, a join of a waiting task there held shutdown to
	 * its timeout, and destroy for good. */
	struct weft_runtime *pip = weft__ctx_poll_in_place(ctx) ? ctx->rt : NULL;
	struct weft__tparker *p = weft__tparker_self();
	if (!p)
		return -ENOMEM;
	unsigned budget = UINT_MAX;
	struct weft_cx cx = {
		.task = NULL,
		.waker = weft__tparker_waker(p),
		.budget = &budget,
		.core = NULL,
		.rt = ctx ? ctx->rt : NULL,
	};
	int rc = 0;
	/* A poll task's fn: a wait begun once the workers were told to stop
	 * that would wait ends at once: nothing will end it (above). It ran
	 * to its time limit: one under the slice said -ETIMEDOUT, and a loop
	 * retrying it went on for good, holding the shutdown (found by a
	 * review). One that need not wait still succeeds. */
	bool closing = pip && !io && atomic_load_explicit(&pip->shutdown, memory_order_relaxed);
	while (poll(arg, &cx) == WEFT_PENDING) {
		if (fip || pip) {
			/* Shutdown wakes the I/O waits itself, which then say
			 * -ESHUTDOWN as a thread's do (io.c,
			 * weft__io_stop_waiters): a wait still pending a
			 * slice after the close was seen is one nothing will
			 * end, and ends here. */
			if ((fip && fip_aborted(fip)) || closing) {
				rc = -ECANCELED; /* the caller cancels its entry */
				break;
			}
			closing = fip ? fip_closing(fip)
				      : atomic_load_explicit(&pip->shutdown, memory_order_relaxed);
			uint64_t slice = weft__now_ns() + FIP_SLICE_NS;
			if (slice < deadline_ns) {
				weft__tparker_park_until(p, slice);
				continue;
			}
		}
		if (deadline_ns == WEFT_FOREVER) {
			/* a thread the runtime knows (a blocking-pool thread, one
			 * that gave its core away) yields rather than spin when no
			 * CPU is spare; for any other the runtime is not known */
			weft__tparker_park(p, !cx.rt || weft__cpu_spare(cx.rt));
		} else if (!weft__tparker_park_until(p, deadline_ns)) {
			if (poll(arg, &cx) == WEFT_READY)
				break;
			/* The last stretch, under a slice, is parked in one
			 * go and nothing wakes it at an abort: a fiber aborted
			 * (or a runtime closed) in it said -ETIMEDOUT where
			 * weft.h promises -ECANCELED (found by a review). Look
			 * as the loop above does before saying time ran out. */
			if ((fip && (fip_aborted(fip) || (!io && fip_closing(fip)))) ||
			    (pip && !io && atomic_load_explicit(&pip->shutdown, memory_order_relaxed)))
				rc = -ECANCELED; /* the caller cancels its entry */
			else
				rc = -ETIMEDOUT;
			break;
		}
	}
	weft_waker_drop(&cx.waker);
	return rc;
}

int weft__wait_deadline(weft__wait_poll_fn poll, void *arg, struct weft_wait *w,
			uint64_t deadline_ns)
{
	return wait_deadline(poll, arg, w, deadline_ns, false);
}

int weft__io_wait_deadline(weft__wait_poll_fn poll, void *arg, struct weft_wait *w,
			   uint64_t deadline_ns)
{
	return wait_deadline(poll, arg, w, deadline_ns, true);
}

bool weft__cancelled(void)
{
	struct weft__ctx *ctx = weft__ctx();
	if (!ctx)
		return false;
	/* A fiber of a runtime shutting down is cancelled: shutdown cancels
	 * the fibers on its list, and one not there yet - still in its first
	 * poll, it never waited - is cancelled when it first would. Its calls
	 * before that said -ESHUTDOWN where weft.h promises -ECANCELED: the
	 * I/O waits and copies look at the runtime's close, then at this
	 * (found by a flaky io_copy test under io_uring). */
	if (ctx->fiber) {
		if (!fiber_cancelled(ctx->fiber))
			return false;
		cancel_spend(ctx->fiber, NULL); /* the caller has no entry linked */
		return true;
	}
	return ctx->discarding;
}

/* The calls of a cancelled fiber that are no cancellation points - the
 * spawns, weft_block_in_place - return without suspending as well: a
 * fiber that ignores its cancellation and loops on them (a spawn at
 * shutdown says -ESHUTDOWN at once) held its worker and every
 * weft_runtime_shutdown said -ETIMEDOUT for ever, as a loop of cancelled
 * blocking calls did before cancel_spend (found by a review). They spend
 * its budget as those do; called at the start of the call, with nothing
 * held. */
void weft__cancelled_spend(void)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber && fiber_cancelled(ctx->fiber))
		cancel_spend(ctx->fiber, NULL);
}

bool weft__fn_cancelled(void)
{
	/* As the fn's waits see it, but at once: a wait that finds the
	 * runtime closing ends a slice later if nothing woke it meanwhile;
	 * a call that never waits has no later. */
	struct weft__ctx *ctx = weft__ctx();
	struct weft__fiber *fip = ctx ? ctx->fiber_in_place : NULL;
	return fip && fip->cx && (fip_aborted(fip) || fip_closing(fip));
}

int weft__wait(weft__wait_poll_fn poll, void *arg, struct weft_wait *w)
{
	return weft__wait_deadline(poll, arg, w, WEFT_FOREVER);
}

void weft__coop_spend(void)
{
	struct weft__ctx *ctx = weft__ctx();
	if (!ctx || !ctx->fiber)
		return;
	struct weft__fiber *f = ctx->fiber;
	if (__builtin_expect(weft__forked_task, 0))
		return; /* a forked child: never back into the parent's loop */
	if (weft_budget_poll_proceed(f->cx) == WEFT_PENDING)
		weft__fiber_suspend(f); /* woken by the call above: runs again later */
}
