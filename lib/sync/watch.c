/*
 * watch.c - weft_watch: one value, the latest sent, with "changed"
 * notification (Tokio's watch channel).
 *
 * Owns: the value (item_size bytes, copied in and out), its version
 * (incremented by every send), one FIFO wait list of receivers waiting for
 * a version newer than the one they saw, and the receivers' cursors
 * (struct weft_watch_rx: the version last seen). Everything is under `lock`.
 *
 * Invariants: a waiting receiver has seen == version; a send (or close)
 * lets every waiter progress, so it wakes them all - one wake per waiter
 * that can now make progress. Intermediate values may be skipped: a
 * receiver sees the latest value, not every value.
 * Each link takes a ticket (`links`, counted up; the entry's _arg): a
 * receiver keeps the entry and the ticket it linked, so an entry it
 * linked, cancelled and another receiver linked again is not taken as
 * still its own (found by a review: it passed the -EINVAL check). A send
 * releases every ticket handed out before it (`sent`).
 * A linked entry whose _arg is below `sent` (or any, once closed) has
 * been released by a send still waking in batches: its poll takes that
 * wake at once, and a timed wait that gives up asks its cancel
 * (cancel_note) whether it had been released. It said WEFT_PENDING until
 * its batch came, and a timed wait whose time ran out in the gap said
 * -ETIMEDOUT for a value sent before it, which weft_watch_has_changed
 * said was there (found by a review, as for cond and barrier).
 * Memory ordering: the lock orders everything; wakers run after unlock.
 */
#include <errno.h>
#include <string.h>

#include "waitlist.h"

struct weft_watch {
	struct weft__slock lock;
	struct weft__waitq q;
	size_t item_size;
	uint64_t version;
	uint64_t links;         /* tickets handed out (each link's _arg) */
	uint64_t sent;          /* `links` at the last send: tickets below it released */
	size_t receivers;
	bool closed;
	unsigned char *val;
};

struct weft_watch_rx {
	struct weft_watch *wt;
	uint64_t seen;
	/* the entry this receiver linked (under wt->lock), until a poll of
	 * it collects it: an entry attached to the wait list that is not
	 * this one was linked for another receiver (changed_poll), as for
	 * broadcast.c's receivers. Never dereferenced; after a cancel it
	 * may name an entry gone, or one linked again by another receiver:
	 * `ticket` (its _arg when this receiver linked it) tells. */
	const struct weft_wait *w;
	uint64_t ticket;
};

/* Under the lock: an entry still linked that a send (or the close) has
 * released, its wake in a later batch. */
static bool released(const struct weft_watch *wt, uint64_t ticket)
{
	return ticket < wt->sent || wt->closed;
}

static bool watch_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			    struct weft__wakes *wk)
{
	(void)wk;
	struct weft_watch *wt = weft__container_of(q, struct weft_watch, q);
	if (grant == WQ_GRANT_WAKE || (grant == WQ_GRANT_NONE && released(wt, arg)))
		q->cancel_note = true; /* woken, or about to be: nothing to pass on */
	return false;
}

int weft_watch_create(size_t item_size, const void *initial, struct weft_watch **out)
{
	if (!out || !initial || item_size == 0 || item_size > WEFT_CHAN_MAX_BYTES)
		return -EINVAL;
	struct weft_watch *wt = weft__calloc(1, sizeof(*wt));
	if (!wt)
		return -ENOMEM;
	wt->val = weft__malloc(item_size);
	if (!wt->val) {
		weft__free(wt);
		return -ENOMEM;
	}
	memcpy(wt->val, initial, item_size);
	wt->item_size = item_size;
	weft__waitq_init(&wt->q, &wt->lock, watch_on_cancel);
	*out = wt;
	return 0;
}

int weft_watch_destroy(struct weft_watch *wt)
{
	if (!wt)
		return -EINVAL;
	weft__slock_lock(&wt->lock);
	bool busy = wt->receivers || wt->q.outstanding;
	weft__slock_unlock(&wt->lock);
	if (busy)
		return -EBUSY;
	weft__free(wt->val);
	weft__free(wt);
	return 0;
}

/* Wake every waiter whose ticket is below `bound` (linked before the send
 * that set it; tickets rise along the FIFO list, so they are the
 * head's run). The caller holds the lock on entry, not on return. Only
 * those: a receiver woken in one batch can take what is new and link
 * again before the next batch, and waking it again kept a send going as
 * long as receivers kept re-polling (found by a review: one send, 17
 * receivers, 100,000 wakes). */
static void unlock_wake_all(struct weft_watch *wt, uint64_t bound)
{
	struct weft__wakes wk;
	wk.n = 0;
	for (;;) {
		while (!weft__wakes_full(&wk) && wt->q.head && wt->q.head->_arg < bound)
			weft__waitq_grant_head(&wt->q, WQ_GRANT_WAKE, &wk);
		bool more = wt->q.head && wt->q.head->_arg < bound;
		if (more)
			weft__waitq_hold(&wt->q); /* see waitlist.h */
		weft__slock_unlock(&wt->lock);
		weft__wakes_run(&wk);
		if (!more)
			return;
		weft__slock_lock(&wt->lock);
		weft__waitq_unhold(&wt->q);
	}
}

int weft_watch_send(struct weft_watch *wt, const void *item)
{
	if (!wt || !item)
		return -EINVAL;
	weft__slock_lock(&wt->lock);
	if (wt->closed) {
		weft__slock_unlock(&wt->lock);
		return -EPIPE;
	}
	memcpy(wt->val, item, wt->item_size);
	wt->version++;
	wt->sent = wt->links;
	unlock_wake_all(wt, wt->sent);
	return 0;
}

int weft_watch_close(struct weft_watch *wt)
{
	if (!wt)
		return -EINVAL;
	weft__slock_lock(&wt->lock);
	wt->closed = true;
	unlock_wake_all(wt, UINT64_MAX); /* nobody links once closed */
	return 0;
}

int weft_watch_subscribe(struct weft_watch *wt, struct weft_watch_rx **out)
{
	if (!wt || !out)
		return -EINVAL;
	struct weft_watch_rx *rx = weft__malloc(sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->wt = wt;
	rx->w = NULL;
	weft__slock_lock(&wt->lock);
	rx->seen = wt->version;
	wt->receivers++;
	weft__slock_unlock(&wt->lock);
	*out = rx;
	return 0;
}

int weft_watch_rx_drop(struct weft_watch_rx *rx)
{
	if (!rx)
		return -EINVAL;
	struct weft_watch *wt = rx->wt;
	weft__slock_lock(&wt->lock);
	wt->receivers--;
	weft__slock_unlock(&wt->lock);
	weft__free(rx);
	return 0;
}

int weft_watch_get(struct weft_watch_rx *rx, void *item)
{
	if (!rx || !item)
		return -EINVAL;
	struct weft_watch *wt = rx->wt;
	weft__slock_lock(&wt->lock);
	memcpy(item, wt->val, wt->item_size);
	rx->seen = wt->version;
	weft__slock_unlock(&wt->lock);
	return 0;
}

/* Under the lock: 0 (a newer value: now seen), -EPIPE, or -EAGAIN. */
static int check(struct weft_watch *wt, struct weft_watch_rx *rx)
{
	if (rx->seen != wt->version) {
		rx->seen = wt->version;
		return 0;
	}
	return wt->closed ? -EPIPE : -EAGAIN;
}

int weft_watch_changed_poll(struct weft_watch_rx *rx, struct weft_wait *w, struct weft_cx *cx)
{
	if (!rx || !w || !cx || !weft__wait_usable(w, &rx->wt->q))
		return -EINVAL;
	struct weft_watch *wt = rx->wt;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant = WQ_GRANT_NONE;
	weft__slock_lock(&wt->lock);
	if (w->_queue == &wt->q && (rx->w != w || w->_arg != rx->ticket)) {
		/* linked for another receiver of this channel: it waits past
		 * that one's version, so this receiver's unseen value sat
		 * behind WEFT_PENDING, and after a send it took the other's
		 * wake (found by a review). sync.h: -EINVAL, `w` linked
		 * elsewhere. An entry this receiver linked, cancelled, then
		 * linked by another has that one's ticket (another review). */
		weft__slock_unlock(&wt->lock);
		weft_budget_refund(cx);
		return -EINVAL;
	}
	if (weft__waitq_poll_entry(&wt->q, w, cx, &grant) == WQ_LINKED) {
		if (!released(wt, w->_arg))
			goto pending;
		/* released by a send whose batch has not come: take its wake
		 * now (the waker it holds is ours: dropped, not woken) */
		struct weft__wakes wk;
		wk.n = 0;
		weft__waitq_grant_entry(&wt->q, w, WQ_GRANT_WAKE, &wk);
		weft_waker_drop(&wk.w[0]);
		weft__waitq_consume(&wt->q, w);
	}
	rx->w = NULL;
	int rc = check(wt, rx);
	if (rc != -EAGAIN) {
		weft__slock_unlock(&wt->lock);
		return rc;
	}
	rx->ticket = wt->links++;
	weft__waitq_link(&wt->q, w, weft_cx_waker(cx), rx->ticket);
	rx->w = w;
pending:
	weft__slock_unlock(&wt->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_watch_has_changed(struct weft_watch_rx *rx)
{
	if (!rx)
		return -EINVAL;
	weft__slock_lock(&rx->wt->lock);
	int rc = rx->seen != rx->wt->version ? 1 : rx->wt->closed ? -EPIPE : 0;
	weft__slock_unlock(&rx->wt->lock);
	return rc;
}

struct wt_args { struct weft_watch_rx *rx; struct weft_wait *w; int rc; };

static enum weft_poll changed_fn(void *arg, struct weft_cx *cx)
{
	struct wt_args *a = arg;
	int rc = weft_watch_changed_poll(a->rx, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

int weft_watch_changed_timeout(struct weft_watch_rx *rx, uint64_t timeout_ns)
{
	if (!rx)
		return -EINVAL;
	uint64_t now = weft_now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct wt_args a = { rx, &w, 0 };
	int rc = weft__wait_deadline(changed_fn, &a, &w, deadline);
	if (rc) {
		/* Out of time, but woken (or released, its wake in a later
		 * batch) as it ran out: a newer value, or the close, came
		 * first; say so, as the poll would have. Decided in the
		 * cancel's own lock hold. */
		bool woken;
		weft__wait_cancel_note(&w, &woken);
		if (rc != -ETIMEDOUT || !woken)
			return rc;
		struct weft_watch *wt = rx->wt;
		weft__slock_lock(&wt->lock);
		int seen = check(wt, rx);
		weft__slock_unlock(&wt->lock);
		return seen == -EAGAIN ? rc : seen;
	}
	return a.rc;
}

int weft_watch_changed(struct weft_watch_rx *rx)
{
	return weft_watch_changed_timeout(rx, WEFT_FOREVER);
}
