/*
 * waitgroup.c - weft_waitgroup: Go's WaitGroup.
 *
 * Owns: the counter, a generation number and the wait list, under `lock`.
 * Invariants (under `lock`): count >= 0; count == 0 => every linked entry
 * has _arg == gen (entries record the generation they linked in). When the
 * counter reaches zero, gen is bumped and every entry of an older
 * generation is granted WQ_GRANT_WAKE (in batches of WEFT__WAKES_MAX,
 * unlocking between batches); those waiters return 0 even if the counter
 * was raised again meanwhile. So a linked entry with _arg below gen was
 * released, its grant not yet made: its poll says 0 at once (it said
 * WEFT_PENDING until its batch came, and a wait whose time ran out in the
 * gap said -ETIMEDOUT for a release before it: found by a review), and a
 * timed wait that gives up asks its cancel (cancel_note) whether it was
 * released. Nothing is passed on at cancel.
 * Memory ordering: the lock orders everything: a waiter that returns 0
 * sees whatever the tasks that called done() wrote before it.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_waitgroup {
	struct weft__slock lock;
	struct weft__waitq q;
	int64_t count;
	uint64_t gen;
};

/* Nothing to pass on; tells the canceller whether its entry was released
 * (granted, or linked in an older generation: see above). */
static bool wg_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			 struct weft__wakes *wk)
{
	struct weft_waitgroup *wg = weft__container_of(q, struct weft_waitgroup, q);
	(void)wk;
	if (grant != WQ_GRANT_NONE || arg < wg->gen)
		q->cancel_note = true;
	return false;
}

int weft_waitgroup_create(struct weft_waitgroup **out)
{
	if (!out)
		return -EINVAL;
	struct weft_waitgroup *wg = weft__calloc(1, sizeof(*wg));
	if (!wg)
		return -ENOMEM;
	weft__waitq_init(&wg->q, &wg->lock, wg_on_cancel);
	*out = wg;
	return 0;
}

int weft_waitgroup_destroy(struct weft_waitgroup *wg)
{
	if (!wg)
		return -EINVAL;
	weft__slock_lock(&wg->lock);
	bool busy = wg->q.outstanding != 0;
	weft__slock_unlock(&wg->lock);
	if (busy)
		return -EBUSY;
	weft__free(wg);
	return 0;
}

int weft_waitgroup_add(struct weft_waitgroup *wg, int64_t delta)
{
	if (!wg)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&wg->lock);
	int64_t c = wg->count;
	if ((delta < 0 && c + delta < 0) || (delta > 0 && c > INT64_MAX - delta)) {
		weft__slock_unlock(&wg->lock);
		return -EINVAL;
	}
	wg->count = c + delta;
	if (wg->count != 0 || weft__waitq_empty(&wg->q)) {
		weft__slock_unlock(&wg->lock);
		return 0;
	}
	uint64_t gen = ++wg->gen;
	weft__waitq_wake_older_unlock(&wg->q, &gen, WQ_GRANT_WAKE, &wk);
	return 0;
}

int weft_waitgroup_done(struct weft_waitgroup *wg) { return weft_waitgroup_add(wg, -1); }

int weft_waitgroup_wait_poll(struct weft_waitgroup *wg, struct weft_wait *w, struct weft_cx *cx)
{
	if (!wg || !w || !cx || !weft__wait_usable(w, &wg->q))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&wg->lock);
	switch (weft__waitq_poll_entry(&wg->q, w, cx, &grant)) {
	case WQ_GRANTED:
		weft__slock_unlock(&wg->lock);
		return 0;
	case WQ_LINKED:
		if (w->_arg < wg->gen) {
			/* released; its batch of wakes has not come yet */
			weft__slock_unlock(&wg->lock);
			weft_wait_cancel(w);
			return 0;
		}
		break;
	default:
		if (wg->count == 0) {
			weft__slock_unlock(&wg->lock);
			return 0;
		}
		weft__waitq_link(&wg->q, w, weft_cx_waker(cx), wg->gen);
		break;
	}
	weft__slock_unlock(&wg->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

struct wg_args { struct weft_waitgroup *wg; struct weft_wait *w; int rc; };

static enum weft_poll wg_wait_fn(void *arg, struct weft_cx *cx)
{
	struct wg_args *a = arg;
	int rc = weft_waitgroup_wait_poll(a->wg, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int waitgroup_wait_until(struct weft_waitgroup *wg, uint64_t deadline)
{
	if (!wg)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct wg_args a = { wg, &w, 0 };
	int rc = weft__wait_deadline(wg_wait_fn, &a, &w, deadline);
	if (rc) {
		/* Released as its time ran out: it was released first. Asked
		 * in the cancel's own lock hold, so no release slips in
		 * between the look and the cancel. */
		bool released;
		weft__wait_cancel_note(&w, &released);
		return rc == -ETIMEDOUT && released ? 0 : rc;
	}
	return a.rc;
}

int weft_waitgroup_wait(struct weft_waitgroup *wg)
{
	return waitgroup_wait_until(wg, WEFT_FOREVER);
}

int weft_waitgroup_wait_timeout(struct weft_waitgroup *wg, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return waitgroup_wait_until(wg, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns);
}
