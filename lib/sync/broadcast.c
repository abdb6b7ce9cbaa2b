/*
 * broadcast.c - weft_broadcast: every receiver sees every item (Tokio's
 * broadcast channel), with a bounded history; a receiver that falls more
 * than `cap` items behind is told how many it missed ("lagged").
 *
 * Owns: the history ring (cap * item_size bytes; item number s lives in
 * slot s % cap), one FIFO wait list of receivers waiting for the next
 * item, and the receivers' cursors (struct weft_broadcast_rx, allocated at
 * subscribe, freed at rx_drop). Everything is under `lock`.
 *
 * Invariants: `tail` items were ever sent; the ring holds numbers
 * [tail - min(tail, cap), tail). A receiver's `next` is <= tail; if it is
 * below the oldest held number the receiver lagged. Every waiting receiver
 * has next == tail (it waited because nothing was new), so each send lets
 * every waiter progress: it wakes them all (that is exactly one wake per
 * waiter that can now make progress, not a herd). Close wakes them all
 * too; a receiver sees -EPIPE only after it has taken everything still
 * held.
 * Each link takes a ticket (`links`, counted up; the entry's _arg): a
 * receiver keeps the entry and the ticket it linked, so an entry it
 * linked, cancelled and another receiver linked again is not taken as
 * still its own (found by a review: it passed the -EINVAL check). A send
 * releases every ticket handed out before it (`sent`).
 * A linked entry whose _arg is below `sent` (or any, once closed) has been
 * released by a send still waking in batches: its poll takes that wake at
 * once, and a timed wait that gives up asks its cancel (cancel_note)
 * whether it had been released. It said WEFT_PENDING until its batch
 * came, and a timed wait whose time ran out in the gap said -ETIMEDOUT
 * for an item sent before it, which weft_broadcast_try_recv said was
 * there (found by a review, as for watch.c).
 * Memory ordering: the lock orders everything; wakers run after unlock.
 */
#include <errno.h>
#include <string.h>

#include "waitlist.h"

struct weft_broadcast {
	struct weft__slock lock;
	struct weft__waitq q;
	size_t item_size, cap;
	uint64_t tail;
	uint64_t links;         /* tickets handed out (each link's _arg) */
	uint64_t sent;          /* `links` at the last send: tickets below it released */
	size_t receivers;
	bool closed;
	unsigned char *buf;
};

struct weft_broadcast_rx {
	struct weft_broadcast *b;
	uint64_t next;
	/* the entry this receiver linked (under b->lock), until a poll of
	 * it collects it: an entry attached to the wait list that is not
	 * this one was linked for another receiver (recv_poll). Never
	 * dereferenced; after a cancel it may name an entry gone, or one
	 * linked again by another receiver: `ticket` (its _arg when this
	 * receiver linked it) tells. */
	const struct weft_wait *w;
	uint64_t ticket;
};

/* Under the lock: an entry still linked that a send (or the close) has
 * released, its wake in a later batch. */
static bool released(const struct weft_broadcast *b, uint64_t ticket)
{
	return ticket < b->sent || b->closed;
}

static bool broadcast_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
				struct weft__wakes *wk)
{
	(void)wk;
	struct weft_broadcast *b = weft__container_of(q, struct weft_broadcast, q);
	if (grant == WQ_GRANT_WAKE || (grant == WQ_GRANT_NONE && released(b, arg)))
		q->cancel_note = true; /* woken, or about to be: nothing to pass on */
	return false;
}

int weft_broadcast_create(size_t item_size, size_t capacity, struct weft_broadcast **out)
{
	if (!out || item_size == 0 || capacity == 0 || item_size > WEFT_CHAN_MAX_BYTES ||
	    capacity > WEFT_CHAN_MAX_BYTES / item_size)
		return -EINVAL;
	struct weft_broadcast *b = weft__calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->buf = weft__malloc(capacity * item_size);
	if (!b->buf) {
		weft__free(b);
		return -ENOMEM;
	}
	b->item_size = item_size;
	b->cap = capacity;
	weft__waitq_init(&b->q, &b->lock, broadcast_on_cancel);
	*out = b;
	return 0;
}

int weft_broadcast_destroy(struct weft_broadcast *b)
{
	if (!b)
		return -EINVAL;
	weft__slock_lock(&b->lock);
	bool busy = b->receivers || b->q.outstanding;
	weft__slock_unlock(&b->lock);
	if (busy)
		return -EBUSY;
	weft__free(b->buf);
	weft__free(b);
	return 0;
}

/* Wake every waiter whose ticket is below `bound` (linked before the send
 * that set it; tickets rise along the FIFO list, so they are the
 * head's run). The caller holds the lock on entry, not on return. Only
 * those: a receiver woken in one batch can take what is new and link
 * again before the next batch, and waking it again kept a send going as
 * long as receivers kept re-polling (found by a review: one send, 17
 * receivers, 100,000 wakes). */
static void unlock_wake_all(struct weft_broadcast *b, uint64_t bound)
{
	struct weft__wakes wk;
	wk.n = 0;
	weft__waitq_wake_older_unlock(&b->q, &bound, WQ_GRANT_WAKE, &wk);
}

int weft_broadcast_send(struct weft_broadcast *b, const void *item)
{
	if (!b || !item)
		return -EINVAL;
	weft__slock_lock(&b->lock);
	if (b->closed) {
		weft__slock_unlock(&b->lock);
		return -EPIPE;
	}
	memcpy(b->buf + (size_t)(b->tail % b->cap) * b->item_size, item, b->item_size);
	b->tail++;
	b->sent = b->links;
	unlock_wake_all(b, b->sent);
	return 0;
}

int weft_broadcast_close(struct weft_broadcast *b)
{
	if (!b)
		return -EINVAL;
	weft__slock_lock(&b->lock);
	b->closed = true;
	unlock_wake_all(b, UINT64_MAX); /* nobody links once closed */
	return 0;
}

int weft_broadcast_subscribe(struct weft_broadcast *b, struct weft_broadcast_rx **out)
{
	if (!b || !out)
		return -EINVAL;
	struct weft_broadcast_rx *rx = weft__malloc(sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->b = b;
	rx->w = NULL;
	weft__slock_lock(&b->lock);
	rx->next = b->tail;
	b->receivers++;
	weft__slock_unlock(&b->lock);
	*out = rx;
	return 0;
}

int weft_broadcast_rx_drop(struct weft_broadcast_rx *rx)
{
	if (!rx)
		return -EINVAL;
	struct weft_broadcast *b = rx->b;
	weft__slock_lock(&b->lock);
	b->receivers--;
	weft__slock_unlock(&b->lock);
	weft__free(rx);
	return 0;
}

/* Under the lock: take the receiver's next item if there is one. Returns
 * 0, -EOVERFLOW (lagged: *lagged set, cursor moved to the oldest held
 * item), -EPIPE (closed, nothing left) or -EAGAIN (nothing new). */
static int take(struct weft_broadcast *b, struct weft_broadcast_rx *rx, void *item,
		uint64_t *lagged)
{
	uint64_t oldest = b->tail > b->cap ? b->tail - b->cap : 0;
	if (rx->next < oldest) {
		if (lagged)
			*lagged = oldest - rx->next;
		rx->next = oldest;
		return -EOVERFLOW;
	}
	if (rx->next < b->tail) {
		memcpy(item, b->buf + (size_t)(rx->next % b->cap) * b->item_size, b->item_size);
		rx->next++;
		return 0;
	}
	return b->closed ? -EPIPE : -EAGAIN;
}

int weft_broadcast_recv_poll(struct weft_broadcast_rx *rx, struct weft_wait *w,
			     struct weft_cx *cx, void *item, uint64_t *lagged)
{
	if (!rx || !w || !cx || !item || !weft__wait_usable(w, &rx->b->q))
		return -EINVAL;
	struct weft_broadcast *b = rx->b;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant = WQ_GRANT_NONE;
	weft__slock_lock(&b->lock);
	if (w->_queue == &b->q && (rx->w != w || w->_arg != rx->ticket)) {
		/* linked for another receiver of this channel: it waits for
		 * that one's cursor, and this receiver's items sat unread
		 * behind WEFT_PENDING until the next send (found by a
		 * review). sync.h: -EINVAL, `w` linked elsewhere. An entry
		 * this receiver linked, cancelled, then linked by another
		 * has that one's ticket (another review). */
		weft__slock_unlock(&b->lock);
		weft_budget_refund(cx);
		return -EINVAL;
	}
	if (weft__waitq_poll_entry(&b->q, w, cx, &grant) == WQ_LINKED) {
		if (!released(b, w->_arg))
			goto pending;
		/* released by a send whose batch has not come: take its wake
		 * now (the waker it holds is ours: dropped, not woken) */
		struct weft__wakes wk;
		wk.n = 0;
		weft__waitq_grant_entry(&b->q, w, WQ_GRANT_WAKE, &wk);
		weft_waker_drop(&wk.w[0]);
		weft__waitq_consume(&b->q, w);
	}
	rx->w = NULL;
	int rc = take(b, rx, item, lagged);
	if (rc != -EAGAIN) {
		weft__slock_unlock(&b->lock);
		return rc;
	}
	rx->ticket = b->links++;
	weft__waitq_link(&b->q, w, weft_cx_waker(cx), rx->ticket);
	rx->w = w;
pending:
	weft__slock_unlock(&b->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_broadcast_try_recv(struct weft_broadcast_rx *rx, void *item, uint64_t *lagged)
{
	if (!rx || !item)
		return -EINVAL;
	weft__slock_lock(&rx->b->lock);
	int rc = take(rx->b, rx, item, lagged);
	weft__slock_unlock(&rx->b->lock);
	return rc;
}

struct bc_args {
	struct weft_broadcast_rx *rx;
	struct weft_wait *w;
	void *item;
	uint64_t *lagged;
	int rc;
};

static enum weft_poll bc_recv_fn(void *arg, struct weft_cx *cx)
{
	struct bc_args *a = arg;
	int rc = weft_broadcast_recv_poll(a->rx, a->w, cx, a->item, a->lagged);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

int weft_broadcast_recv_timeout(struct weft_broadcast_rx *rx, void *item, uint64_t *lagged,
				uint64_t timeout_ns)
{
	if (!rx || !item)
		return -EINVAL;
	uint64_t now = weft_now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct bc_args a = { rx, &w, item, lagged, 0 };
	int rc = weft__wait_deadline(bc_recv_fn, &a, &w, deadline);
	if (rc) {
		/* Out of time, but woken (or released, its wake in a later
		 * batch) as it ran out: an item, or the close, came first;
		 * take it, as the poll would have. Decided in the cancel's
		 * own lock hold. */
		bool woken;
		weft__wait_cancel_note(&w, &woken);
		if (rc != -ETIMEDOUT || !woken)
			return rc;
		struct weft_broadcast *b = rx->b;
		weft__slock_lock(&b->lock);
		rx->w = NULL;
		int got = take(b, rx, item, lagged);
		weft__slock_unlock(&b->lock);
		return got == -EAGAIN ? rc : got;
	}
	return a.rc;
}

int weft_broadcast_recv(struct weft_broadcast_rx *rx, void *item, uint64_t *lagged)
{
	return weft_broadcast_recv_timeout(rx, item, lagged, WEFT_FOREVER);
}
