/*
 * wait.c - blocking-style waits built on poll-style operations.
 *
 * Every weft resource has a poll form, `poll(arg, cx)`, that registers cx's
 * waker when it cannot finish. weft__wait turns that into a blocking call:
 *  - on a thread outside the runtime, the cx carries a waker for the
 *    thread's parker and an unlimited budget; between polls the thread
 *    sleeps on its futex;
 *  - inside a fiber (once fibers exist) the fiber suspends between polls;
 *  - inside a plain poll task on a worker it refuses with -EDEADLK: blocking
 *    there would stall the worker; such tasks use the poll form.
 */
#include <errno.h>
#include <limits.h>

#include "runtime.h"

int weft__wait(weft__wait_poll_fn poll, void *arg, struct weft_wait *w)
{
	(void)w;
	struct weft__ctx *ctx = weft__ctx();
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
