/*
 * wait.c - blocking-style waits built on poll-style operations.
 *
 * Every weft resource has a poll form, `poll(arg, cx)`, that registers cx's
 * waker when it cannot finish. weft__wait turns that into a blocking call:
 *  - on a thread outside the runtime, the cx carries a waker for the
 *    thread's parker and an unlimited budget; between polls the thread
 *    sleeps on its futex;
 *  - inside a fiber the fiber suspends between polls, and a wait entry `w`
 *    is remembered so that cancelling the suspended fiber unlinks it;
 *  - inside a plain poll task on a worker it refuses with -EDEADLK: blocking
 *    there would stall the worker; such tasks use the poll form.
 */
#include <errno.h>
#include <limits.h>

#include "runtime.h"

int weft__wait(weft__wait_poll_fn poll, void *arg, struct weft_wait *w)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		struct weft__fiber *f = ctx->fiber;
		/* Poll with the fiber's own cx (its task's waker and budget);
		 * suspend between polls. Nothing thread-local is kept across
		 * the suspension: f lives in the task's state. */
		while (poll(arg, f->cx) == WEFT_PENDING) {
			f->waiting = w;
			weft__fiber_suspend(f);
			f->waiting = NULL;
		}
		return 0;
	}
	if (ctx && ctx->worker)
		return -EDEADLK;
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
	while (poll(arg, &cx) == WEFT_PENDING)
		weft__tparker_park(p);
	weft_waker_drop(&cx.waker);
	return 0;
}
