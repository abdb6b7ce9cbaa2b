/*
 * notify.c - weft_notify: wake one waiter (or store one permit), or all.
 *
 * Owns: the wait list and `permit` (0 or 1). Everything is under `lock`.
 * Invariants (under the lock): permit set => no waiter linked but those
 * a notify_all still running has released (notify_one grants the first
 * waiter of the current generation before it would store a permit, and a
 * wait consumes a stored permit before it would link).
 * notify_all bumps `gen` and grants, in batches of WEFT__WAKES_MAX, the
 * head entries linked with an older generation: waiters that arrive while
 * it runs are not released by it. A cancelled entry holding a notify_one
 * grant (WQ_GRANT_PERMIT) passes it to the next waiter or back to `permit`;
 * a notify_all grant (WQ_GRANT_ALL) is not passed on.
 * A linked entry with _arg below `gen` has been released by a notify_all
 * still granting in batches: its poll says 0 at once, and a timed wait
 * that gives up asks its cancel (cancel_note) whether a notify_all had
 * released it - it was notified before its time ran out. Before, it said
 * WEFT_PENDING until its batch came, and -ETIMEDOUT if its time ran out
 * in the gap (found by a review, beside the wait group's).
 * weft_notify_enable (Tokio's Notified::enable) links an entry with no
 * waker, or attaches it already granted when a permit is stored: from then
 * on notify_one may grant it and notify_all releases it (it carries the
 * generation of its enable), exactly as for a waiting entry, so a notify
 * between the enable and the wait is kept in the entry. A grant to a
 * wakerless entry wakes nobody; the waiter's poll finds it.
 * Memory ordering: the lock (acquire/release) orders everything; wakers
 * are woken after unlock.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_notify {
	struct weft__slock lock;
	struct weft__waitq q;
	bool permit;
	uint64_t gen;
};

/* Grant a notify_one permit to the first waiter a notify_all has not
 * released (one between batches has released the older ones at the head:
 * waitlist.h, weft__waitq_first_from). NULL if there is none. */
static struct weft_wait *grant_current(struct weft_notify *n, struct weft__wakes *wk)
{
	struct weft_wait *w = weft__waitq_first_from(&n->q, n->gen);
	return w ? weft__waitq_grant_entry(&n->q, w, WQ_GRANT_PERMIT, wk) : NULL;
}

static bool notify_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			     struct weft__wakes *wk)
{
	struct weft_notify *n = weft__container_of(q, struct weft_notify, q);
	if (grant == WQ_GRANT_PERMIT && !grant_current(n, wk))
		n->permit = true;
	/* released by a notify_all: nothing to pass on, and notified */
	if (grant == WQ_GRANT_ALL || (grant == WQ_GRANT_NONE && arg < n->gen))
		q->cancel_note = true;
	return false;
}

int weft_notify_create(struct weft_notify **out)
{
	if (!out)
		return -EINVAL;
	struct weft_notify *n = weft__calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	weft__waitq_init(&n->q, &n->lock, notify_on_cancel);
	*out = n;
	return 0;
}

int weft_notify_destroy(struct weft_notify *n)
{
	if (!n)
		return -EINVAL;
	weft__slock_lock(&n->lock);
	bool busy = n->q.outstanding != 0;
	weft__slock_unlock(&n->lock);
	if (busy)
		return -EBUSY;
	weft__free(n);
	return 0;
}

int weft_notify_one(struct weft_notify *n)
{
	if (!n)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&n->lock);
	if (!grant_current(n, &wk))
		n->permit = true;
	weft__slock_unlock(&n->lock);
	weft__wakes_run(&wk);
	return 0;
}

int weft_notify_all(struct weft_notify *n)
{
	if (!n)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&n->lock);
	uint64_t gen = ++n->gen;
	weft__waitq_wake_older_unlock(&n->q, &gen, WQ_GRANT_ALL, &wk);
	return 0;
}

int weft_notify_wait_poll(struct weft_notify *n, struct weft_wait *w, struct weft_cx *cx)
{
	if (!n || !w || !cx || !weft__wait_usable(w, &n->q))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&n->lock);
	switch (weft__waitq_poll_entry(&n->q, w, cx, &grant)) {
	case WQ_GRANTED:
		weft__slock_unlock(&n->lock);
		return 0;
	case WQ_LINKED:
		if (w->_arg < n->gen) {
			/* released by a notify_all whose batch has not come */
			weft__slock_unlock(&n->lock);
			weft_wait_cancel(w);
			return 0;
		}
		break;
	default:
		if (n->permit) {
			n->permit = false;
			weft__slock_unlock(&n->lock);
			return 0;
		}
		weft__waitq_link(&n->q, w, weft_cx_waker(cx), n->gen);
		break;
	}
	weft__slock_unlock(&n->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_notify_enable(struct weft_notify *n, struct weft_wait *w)
{
	if (!n || !w || !weft__wait_usable(w, &n->q))
		return -EINVAL;
	weft__slock_lock(&n->lock);
	if (w->_queue != &n->q) {
		if (n->permit) {
			n->permit = false;
			weft__waitq_grant_idle(&n->q, w, WQ_GRANT_PERMIT);
		} else {
			weft_waker none = { NULL, NULL };
			weft__waitq_link(&n->q, w, &none, n->gen);
		}
	}
	weft__slock_unlock(&n->lock);
	return 0;
}

struct notify_wait_args { struct weft_notify *n; struct weft_wait *w; int rc; };

static enum weft_poll notify_wait_fn(void *arg, struct weft_cx *cx)
{
	struct notify_wait_args *a = arg;
	int rc = weft_notify_wait_poll(a->n, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

/* A blocking wait ended with rc: leave the list (a notify_one grant that
 * raced with the timeout goes on). Released by a notify_all as its time
 * ran out, it was notified first: 0. Asked in the cancel's own lock hold. */
static int notify_gave_up(struct weft_wait *w, int rc)
{
	bool released;
	weft__wait_cancel_note(w, &released);
	return rc == -ETIMEDOUT && released ? 0 : rc;
}

static int notify_wait_until(struct weft_notify *n, uint64_t deadline)
{
	if (!n)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct notify_wait_args a = { n, &w, 0 };
	int rc = weft__wait_deadline(notify_wait_fn, &a, &w, deadline);
	return rc ? notify_gave_up(&w, rc) : a.rc;
}

static int notify_wait_entry_until(struct weft_notify *n, struct weft_wait *w,
				   uint64_t deadline)
{
	if (!n || !w || !weft__wait_usable(w, &n->q))
		return -EINVAL;
	struct notify_wait_args a = { n, w, 0 };
	int rc = weft__wait_deadline(notify_wait_fn, &a, w, deadline);
	return rc ? notify_gave_up(w, rc) : a.rc;
}

int weft_notify_wait_enabled(struct weft_notify *n, struct weft_wait *w)
{
	return notify_wait_entry_until(n, w, WEFT_FOREVER);
}

int weft_notify_wait_enabled_timeout(struct weft_notify *n, struct weft_wait *w,
				     uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return notify_wait_entry_until(n, w, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER
					     : now + timeout_ns);
}

int weft_notify_wait(struct weft_notify *n)
{
	return notify_wait_until(n, WEFT_FOREVER);
}

int weft_notify_wait_timeout(struct weft_notify *n, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return notify_wait_until(n, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns);
}
