/*
 * chan.c - weft_chan: bounded MPMC channel of fixed-size items.
 *
 * Owns: the ring buffer (capacity * item_size bytes, items copied in and
 * out), two FIFO wait lists (senders waiting for a slot, receivers waiting
 * for an item). Everything below is under `lock`.
 *
 * Counters: `count` items buffered at [head, head + count) mod cap;
 * `slot_res` free slots granted to woken senders that have not yet used
 * them; `item_res` buffered items granted to woken receivers that have not
 * yet taken them. A new sender may use cap - count - slot_res slots, a new
 * receiver count - item_res items.
 *
 * Invariants:
 *  - sendq non-empty => no free slot for new senders (every slot that frees
 *    up is granted to the first waiting sender: grant_send), so a later
 *    sender cannot overtake a waiting one; likewise recvq non-empty => no
 *    item for new receivers (grant_recv after every push and every release
 *    of an item reservation).
 *  - closed => sendq empty (close wakes every sender with WQ_GRANT_WAKE;
 *    later sends fail at once). A woken sender holding a slot grant after
 *    close releases it and returns -EPIPE.
 *  - closed and count == 0 => recvq empty (close, and every take that
 *    empties a closed channel, wake all receivers). Receivers waiting on a
 *    closed channel with count > 0 wait for reserved items that another
 *    receiver may still give back by cancelling.
 *  - Items leave in FIFO order; each receive removes exactly one item
 *    under the lock, so no item is lost or received twice.
 * Cancellation: a cancelled sender holding a slot grant gives it to the
 * next sender (or back to the pool); a cancelled receiver holding an item
 * grant gives it to the next receiver (or back).
 * Memory ordering: the lock orders everything (items are copied under it);
 * wakers are woken after unlock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "waitlist.h"

struct weft_chan {
	struct weft__slock lock;
	struct weft__waitq sendq, recvq;
	size_t item_size, cap;
	size_t head, count, slot_res, item_res;
	bool closed;
	unsigned char *buf;
};

static size_t free_slots(const struct weft_chan *ch) { return ch->cap - ch->count - ch->slot_res; }
static size_t avail_items(const struct weft_chan *ch) { return ch->count - ch->item_res; }

/* Under the lock: grant free slots / available items to waiters, as many
 * as fit in wk (at most one each per call site in practice). */
static void grant_send(struct weft_chan *ch, struct weft__wakes *wk)
{
	while (!ch->closed && free_slots(ch) > 0 && !weft__wakes_full(wk) &&
	       weft__waitq_grant_head(&ch->sendq, WQ_GRANT_PERMIT, wk))
		ch->slot_res++;
}

static void grant_recv(struct weft_chan *ch, struct weft__wakes *wk)
{
	while (avail_items(ch) > 0 && !weft__wakes_full(wk) &&
	       weft__waitq_grant_head(&ch->recvq, WQ_GRANT_PERMIT, wk))
		ch->item_res++;
}

/* memcpy with a constant size for the common item sizes (inlined). */
static inline void copy_item(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 4: memcpy(dst, src, 4); break;
	case 8: memcpy(dst, src, 8); break;
	case 16: memcpy(dst, src, 16); break;
	default: memcpy(dst, src, n); break;
	}
}

static void push_item(struct weft_chan *ch, const void *item)
{
	size_t tail = ch->head + ch->count;
	if (tail >= ch->cap)
		tail -= ch->cap;
	copy_item(ch->buf + tail * ch->item_size, item, ch->item_size);
	ch->count++;
}

static void take_item(struct weft_chan *ch, void *item)
{
	copy_item(item, ch->buf + ch->head * ch->item_size, ch->item_size);
	if (++ch->head == ch->cap)
		ch->head = 0;
	ch->count--;
}

/* Wake every receiver (WQ_GRANT_WAKE) once closed and empty; takes and
 * releases the lock, which the caller holds on entry and not on return. */
static void unlock_wake_all(struct weft_chan *ch, struct weft__waitq *q, struct weft__wakes *wk)
{
	for (;;) {
		while (!weft__wakes_full(wk) && weft__waitq_grant_head(q, WQ_GRANT_WAKE, wk))
			;
		bool more = !weft__waitq_empty(q);
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(wk);
		if (!more)
			return;
		weft__slock_lock(&ch->lock);
	}
}

/* After a take: pass the freed slot on; if that emptied a closed channel,
 * release every waiting receiver. Unlocks. */
static void after_take_unlock(struct weft_chan *ch, struct weft__wakes *wk)
{
	grant_send(ch, wk);
	if (ch->closed && ch->count == 0 && !weft__waitq_empty(&ch->recvq)) {
		unlock_wake_all(ch, &ch->recvq, wk);
		return;
	}
	weft__slock_unlock(&ch->lock);
	weft__wakes_run(wk);
}

static bool send_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			   struct weft__wakes *wk)
{
	struct weft_chan *ch = weft__container_of(q, struct weft_chan, sendq);
	(void)arg;
	if (grant == WQ_GRANT_PERMIT) {
		ch->slot_res--;
		grant_send(ch, wk);
	}
	return false;
}

static bool recv_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			   struct weft__wakes *wk)
{
	struct weft_chan *ch = weft__container_of(q, struct weft_chan, recvq);
	(void)arg;
	if (grant == WQ_GRANT_PERMIT) {
		ch->item_res--;
		grant_recv(ch, wk);
	}
	return false;
}

int weft_chan_create(size_t item_size, size_t capacity, struct weft_chan **out)
{
	/* Division, not a product that could wrap: capacity * item_size <=
	 * WEFT_CHAN_MAX_BYTES. */
	if (!out || item_size == 0 || capacity == 0 || item_size > WEFT_CHAN_MAX_BYTES ||
	    capacity > WEFT_CHAN_MAX_BYTES / item_size)
		return -EINVAL;
	struct weft_chan *ch = weft__calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->buf = weft__malloc(capacity * item_size);
	if (!ch->buf) {
		weft__free(ch);
		return -ENOMEM;
	}
	ch->item_size = item_size;
	ch->cap = capacity;
	weft__waitq_init(&ch->sendq, &ch->lock, send_on_cancel);
	weft__waitq_init(&ch->recvq, &ch->lock, recv_on_cancel);
	*out = ch;
	return 0;
}

int weft_chan_destroy(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	weft__slock_lock(&ch->lock);
	bool busy = ch->sendq.outstanding || ch->recvq.outstanding;
	weft__slock_unlock(&ch->lock);
	if (busy)
		return -EBUSY;
	weft__free(ch->buf);
	weft__free(ch);
	return 0;
}

int weft_chan_close(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&ch->lock);
	ch->closed = true;
	unlock_wake_all(ch, &ch->sendq, &wk);
	weft__slock_lock(&ch->lock);
	if (ch->count == 0) {
		unlock_wake_all(ch, &ch->recvq, &wk);
		return 0;
	}
	weft__slock_unlock(&ch->lock);
	return 0;
}

/* ------------------------------------------------------------------ send */

int weft_chan_send_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			const void *item)
{
	if (!ch || !w || !cx || !item || !weft__wait_usable(w, &ch->sendq))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	uint32_t grant = WQ_GRANT_NONE;
	weft__slock_lock(&ch->lock);
	uint32_t st = weft__waitq_poll_entry(&ch->sendq, w, cx, &grant);
	if (st == WQ_LINKED)
		goto pending;
	if (grant == WQ_GRANT_PERMIT)
		ch->slot_res--; /* our reserved slot: use it, or give it back */
	if (ch->closed) {
		weft__slock_unlock(&ch->lock);
		return -EPIPE;
	}
	if (grant == WQ_GRANT_PERMIT || free_slots(ch) > 0) {
		push_item(ch, item);
		grant_recv(ch, &wk);
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(&wk);
		return 0;
	}
	weft__waitq_link(&ch->sendq, w, weft_cx_waker(cx), 0);
pending:
	weft__slock_unlock(&ch->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_chan_try_send(struct weft_chan *ch, const void *item)
{
	if (!ch || !item)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&ch->lock);
	if (ch->closed) {
		weft__slock_unlock(&ch->lock);
		return -EPIPE;
	}
	if (free_slots(ch) == 0) {
		weft__slock_unlock(&ch->lock);
		return -EAGAIN;
	}
	push_item(ch, item);
	grant_recv(ch, &wk);
	weft__slock_unlock(&ch->lock);
	weft__wakes_run(&wk);
	return 0;
}

struct chan_args { struct weft_chan *ch; struct weft_wait *w; void *item; int rc; };

static enum weft_poll chan_send_fn(void *arg, struct weft_cx *cx)
{
	struct chan_args *a = arg;
	int rc = weft_chan_send_poll(a->ch, a->w, cx, a->item);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static uint64_t deadline_after(uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
}

static int chan_wait(weft__wait_poll_fn fn, struct weft_chan *ch, void *item, uint64_t deadline)
{
	struct weft_wait w = WEFT_WAIT_INIT;
	struct chan_args a = { ch, &w, item, 0 };
	int rc = weft__wait_deadline(fn, &a, &w, deadline);
	if (rc) {
		/* -ETIMEDOUT too: cancel passes on a slot or item granted meanwhile */
		weft_wait_cancel(&w);
		return rc;
	}
	return a.rc;
}

int weft_chan_send(struct weft_chan *ch, const void *item)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_send_fn, ch, (void *)item, WEFT_FOREVER);
}

int weft_chan_send_timeout(struct weft_chan *ch, const void *item, uint64_t timeout_ns)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_send_fn, ch, (void *)item, deadline_after(timeout_ns));
}


/* ------------------------------------------------------------------ recv */

int weft_chan_recv_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			void *item)
{
	if (!ch || !w || !cx || !item || !weft__wait_usable(w, &ch->recvq))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	uint32_t grant = WQ_GRANT_NONE;
	weft__slock_lock(&ch->lock);
	uint32_t st = weft__waitq_poll_entry(&ch->recvq, w, cx, &grant);
	if (st == WQ_LINKED)
		goto pending;
	if (grant == WQ_GRANT_PERMIT)
		ch->item_res--; /* our reserved item */
	if (grant == WQ_GRANT_PERMIT || avail_items(ch) > 0) {
		take_item(ch, item);
		after_take_unlock(ch, &wk);
		return 0;
	}
	if (ch->closed && ch->count == 0) {
		weft__slock_unlock(&ch->lock);
		return -EPIPE;
	}
	weft__waitq_link(&ch->recvq, w, weft_cx_waker(cx), 0);
pending:
	weft__slock_unlock(&ch->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_chan_try_recv(struct weft_chan *ch, void *item)
{
	if (!ch || !item)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&ch->lock);
	if (avail_items(ch) > 0) {
		take_item(ch, item);
		after_take_unlock(ch, &wk);
		return 0;
	}
	int rc = ch->closed && ch->count == 0 ? -EPIPE : -EAGAIN;
	weft__slock_unlock(&ch->lock);
	return rc;
}

static enum weft_poll chan_recv_fn(void *arg, struct weft_cx *cx)
{
	struct chan_args *a = arg;
	int rc = weft_chan_recv_poll(a->ch, a->w, cx, a->item);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

int weft_chan_recv(struct weft_chan *ch, void *item)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_recv_fn, ch, item, WEFT_FOREVER);
}

int weft_chan_recv_timeout(struct weft_chan *ch, void *item, uint64_t timeout_ns)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_recv_fn, ch, item, deadline_after(timeout_ns));
}
