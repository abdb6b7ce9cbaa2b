/*
 * chan.c - weft_chan: bounded MPMC channel of fixed-size items, and the
 * rendezvous channel (capacity 0).
 *
 * Owns: the ring buffer (items copied in and out), two FIFO wait lists
 * (senders waiting for room, receivers waiting for an item). Everything
 * below is under `lock`, except the owner's collection of a completed
 * (DONE) entry (waitlist.h).
 *
 * Hand-off. A waiting entry may carry its item ("storage"): a sender's item,
 * or a receiver's place for one. Storage is the entry's `_arg` itself for
 * items of at most 8 bytes, else a pointer (in `_arg`) to the caller's item,
 * given only where the caller's item is known to stay put while the entry is
 * linked: the blocking sends (their frame is suspended), and the poll forms
 * on a rendezvous channel (documented in sync.h). Not the blocking
 * receives: their buffer must stay untouched when they fail (chan_recv_fn).
 * Entries with larger items and no storage use reservations as
 * before: a slot (`slot_res`) or a buffered item (`item_res`) is granted to
 * the entry (WQ_GRANT_PERMIT) and its next poll uses it under the lock.
 *  - A receiver that frees a slot while senders wait moves the first
 *    sender's item into the buffer and completes it (WQ_DONE): the woken
 *    sender's poll sees DONE without the lock and returns 0. A sender
 *    that is an arm of a weft_select is completed only if it wins the
 *    select's claim (claim_sender), else woken with nothing.
 *  - A sender that finds a receiver waiting copies its item straight into
 *    the receiver's storage (WQ_GRANT_ITEM). The item is "in flight"
 *    (`inflight`) until the receiver's poll collects it; in-flight items
 *    take room like buffered ones (so a cancelled receiver can always put
 *    its item back at the head of the buffer, where the next receiver gets
 *    it first). A receiver collects under the lock because the room it
 *    frees may be owed to a waiting sender.
 * One waiter is woken per item or slot that became available, never more.
 *
 * Counters: `count` items buffered at [head, head + count) mod `slots`
 * (slots = max(cap, 1): a rendezvous channel buffers only items given back
 * by cancelled receivers). A new sender may use cap - count - slot_res -
 * inflight slots (buffered channel); a new receiver count - item_res items.
 *
 * Invariants:
 *  - buffered: sendq non-empty => no room for new senders; recvq non-empty
 *    => no item for new receivers (balance() runs after every change of
 *    room or items, granting or handing off to the first waiter). So a
 *    later caller never overtakes a waiting one.
 *  - rendezvous: count + inflight <= 1; sendq and recvq both non-empty =>
 *    count + inflight == 1 (the next hand-off waits for that item). A send
 *    completes only when a receiver took the item (into its storage).
 *  - A new caller (one not linked) uses room or an item only when its own
 *    wait list is empty. Room or items can show while callers wait: between
 *    balance()'s wake batches (the lock is dropped to wake), and on a
 *    rendezvous channel a waiting sender's item while the item in transit
 *    to another receiver holds the slot. Both belong to the waiters (a
 *    review found newcomers taking them; test_sync_order).
 *  - closed => sendq empty (close wakes every sender with WQ_GRANT_WAKE;
 *    later sends fail at once). Between close's wake batches senders are
 *    still listed: nothing takes their items (balance and the receives
 *    look at `closed`). A woken sender holding a slot grant after close
 *    releases it and returns -EPIPE.
 *  - closed and count == 0 and inflight == 0 => recvq empty (close, and
 *    every change that drains a closed channel, wake all receivers). While
 *    an item is in flight or reserved, receivers wait for it: its holder
 *    may give it back by cancelling.
 *  - Items leave in FIFO order (a given-back item returns to the head);
 *    each receive removes exactly one item under the lock, so no item is
 *    lost or received twice.
 * Cancellation: a cancelled sender holding a slot grant gives it to the
 * next sender (or back); a cancelled receiver holding a reserved or an
 * in-flight item gives it to the next receiver (or back to the buffer's
 * head). A completed (DONE) sender has nothing to give back: its item was
 * sent.
 * Memory ordering: the lock orders everything (items are copied under it);
 * a DONE entry is collected with the acquire that pairs with the notifier's
 * release (waitlist.h); wakers are woken after unlock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "waitlist.h"

/* The receiver's grant: an item is in its storage. */
#define WQ_GRANT_ITEM 4u

struct weft_chan {
	struct weft__slock lock;
	struct weft__waitq sendq, recvq;
	size_t item_size, cap, slots;
	size_t head, count, slot_res, item_res, inflight;
	bool closed;
	bool unbounded;                 /* weft_chan_create_unbounded: cap SIZE_MAX, the ring grows */
	unsigned char *buf;
	/* signals notified into the channel (weft/signal.h), kept by
	 * signal.c: destroy refuses while any is. Atomic, not under `lock`:
	 * a forked child drops its copies without a lock another thread of
	 * the parent may have held. */
	_Atomic unsigned sig_refs;
	_Atomic size_t senders;         /* weft_chan_sender_add's count (calloc: 0) */
};

#define INLINE_MAX sizeof(uint64_t)

size_t weft__chan_item_size(const struct weft_chan *ch) { return ch->item_size; }

void weft__chan_sig_ref(struct weft_chan *ch, int delta)
{
	atomic_fetch_add_explicit(&ch->sig_refs, (unsigned)delta, memory_order_relaxed);
}

static size_t free_slots(const struct weft_chan *ch)
{
	return ch->cap - ch->count - ch->slot_res - ch->inflight;
}
static size_t avail_items(const struct weft_chan *ch) { return ch->count - ch->item_res; }
static bool drained(const struct weft_chan *ch) { return ch->count == 0 && ch->inflight == 0; }

/* The entry's storage, or NULL if it has none. */
static void *storage(const struct weft_chan *ch, struct weft_wait *w)
{
	if (ch->item_size <= INLINE_MAX)
		return &w->_arg;
	return (void *)(uintptr_t)w->_arg;
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
	if (tail >= ch->slots)
		tail -= ch->slots;
	copy_item(ch->buf + tail * ch->item_size, item, ch->item_size);
	ch->count++;
}

/* Unbounded channels (weft_chan_create_unbounded). cap is SIZE_MAX, so a
 * sender always finds room and none ever waits (sendq stays empty); the
 * ring holds what the counters say it may have to: count buffered, plus
 * inflight (a cancelled receiver puts its item back) and slot_res. Before
 * a new item adds to those, unb_room makes room for it, doubling the
 * ring; a receive that leaves it a quarter used halves it. Both under the
 * lock, like every change of the ring. */
#define UNB_MIN_SLOTS 16u

static size_t unb_used(const struct weft_chan *ch)
{
	return ch->count + ch->inflight + ch->slot_res;
}

/* Move the ring to a buffer of `ns` slots (>= count), items from index 0. */
static int unb_resize(struct weft_chan *ch, size_t ns)
{
	size_t isz = ch->item_size;
	unsigned char *nb = weft__malloc(ns * isz);
	if (!nb)
		return -ENOMEM;
	size_t first = ch->slots - ch->head < ch->count ? ch->slots - ch->head : ch->count;
	memcpy(nb, ch->buf + ch->head * isz, first * isz);
	memcpy(nb + first * isz, ch->buf, (ch->count - first) * isz);
	weft__free(ch->buf);
	ch->buf = nb;
	ch->slots = ns;
	ch->head = 0;
	return 0;
}

/* Room for one more item: 0, or -ENOMEM (nothing changed). */
static int unb_room(struct weft_chan *ch)
{
	if (unb_used(ch) < ch->slots)
		return 0;
	size_t max = WEFT_CHAN_MAX_BYTES / ch->item_size;
	if (ch->slots >= max)
		return -ENOMEM;
	return unb_resize(ch, ch->slots > max / 2 ? max : ch->slots * 2);
}

static void unb_shrink(struct weft_chan *ch)
{
	if (ch->slots > UNB_MIN_SLOTS && (unb_used(ch) + 1) * 4 <= ch->slots)
		(void)unb_resize(ch, ch->slots / 2); /* no memory: keep the larger one */
}

/* A given-back item: at the head, so it leaves first (it was the oldest). */
static void push_front(struct weft_chan *ch, const void *item)
{
	ch->head = ch->head ? ch->head - 1 : ch->slots - 1;
	copy_item(ch->buf + ch->head * ch->item_size, item, ch->item_size);
	ch->count++;
}

static void take_item(struct weft_chan *ch, void *item)
{
	copy_item(item, ch->buf + ch->head * ch->item_size, ch->item_size);
	if (++ch->head == ch->slots)
		ch->head = 0;
	ch->count--;
}

/* Link `w` with its storage: the item itself (small items), or `item`'s
 * address when `stable`, else none. */
static void link_entry(struct weft_chan *ch, struct weft__waitq *q, struct weft_wait *w,
		       struct weft_cx *cx, const void *item, bool stable, bool is_send)
{
	uint64_t arg = 0;
	if (ch->item_size > INLINE_MAX && stable)
		arg = (uint64_t)(uintptr_t)item;
	weft__waitq_link(q, w, weft_cx_waker(cx), arg);
	if (ch->item_size <= INLINE_MAX && is_send)
		copy_item(&w->_arg, item, ch->item_size);
}

/* The select an entry is an arm of, or NULL. */
static inline void *sel_of(struct weft_wait *w)
{
	return __atomic_load_n(&w->_sel, __ATOMIC_RELAXED);
}

/*
 * The first waiting receiver a sender in select `sel` (NULL: none) may hand
 * its item to, or NULL. Not an arm of the sender's own select: a select
 * whose send and receive arms on one rendezvous channel met completed its
 * send with no receiver, the item left buffered (found by a review).
 * Under the lock.
 */
static struct weft_wait *receiver_for(struct weft_chan *ch, void *sel)
{
	struct weft_wait *r = ch->recvq.head;
	if (sel)
		while (r && sel_of(r) == sel)
			r = r->_next;
	return r;
}

/* An item to waiting receiver r: into its storage (in flight), or, if it
 * has none, pushed and reserved for it. Under the lock; room checked by
 * the caller. */
static void give_to_receiver(struct weft_chan *ch, struct weft_wait *r, const void *item,
			     struct weft__wakes *wk)
{
	void *dst = storage(ch, r);
	if (dst) {
		copy_item(dst, item, ch->item_size);
		ch->inflight++;
		weft__waitq_grant_entry(&ch->recvq, r, WQ_GRANT_ITEM, wk);
	} else {
		push_item(ch, item);
		ch->item_res++;
		weft__waitq_grant_entry(&ch->recvq, r, WQ_GRANT_PERMIT, wk);
	}
}

/*
 * The first waiting sender whose whole send may be completed here, or NULL.
 * A sender that is an arm of a weft_select is completed only if it wins its
 * select's claim (weft__wait_claim): one arm of a select completes, never
 * two. One that cannot win now (its select is polling, or another arm won)
 * is woken with nothing to pass on (WQ_GRANT_WAKE) and skipped: its select
 * polls again. NULL also when wk is full (the caller retries after waking).
 * Under the lock.
 */
static struct weft_wait *claim_sender(struct weft_chan *ch, struct weft__wakes *wk)
{
	struct weft_wait *s;
	/* wk must keep room for the winner's completion as well as for the
	 * losers' wakes: check before claiming, never after. */
	while ((s = ch->sendq.head) && !weft__wakes_full(wk)) {
		if (weft__wait_claim(s))
			return s;
		weft__waitq_grant_head(&ch->sendq, WQ_GRANT_WAKE, wk);
	}
	return NULL;
}

/*
 * Under the lock, after any change of room or items: hand buffered items to
 * waiting receivers, then waiting senders' items to the buffer (buffered) or
 * to waiting receivers (rendezvous), one waiter woken per item or slot.
 * Returns true if it stopped because wk is full (call again after waking).
 */
static bool balance(struct weft_chan *ch, struct weft__wakes *wk)
{
	for (;;) {
		if (wk->n + 2 > WEFT__WAKES_MAX)
			return true;
		if (avail_items(ch) > 0 && !weft__waitq_empty(&ch->recvq)) {
			void *dst = storage(ch, ch->recvq.head);
			if (dst) {
				take_item(ch, dst);
				ch->inflight++;
				weft__waitq_grant_head(&ch->recvq, WQ_GRANT_ITEM, wk);
			} else {
				ch->item_res++;
				weft__waitq_grant_head(&ch->recvq, WQ_GRANT_PERMIT, wk);
			}
			continue;
		}
		if (ch->closed || weft__waitq_empty(&ch->sendq))
			return false;
		struct weft_wait *s = ch->sendq.head;
		void *src = storage(ch, s);
		if (ch->cap > 0) {
			if (free_slots(ch) == 0)
				return false;
			bool polling = false;
			if (src && weft__wait_claim_why(s, &polling)) {
				push_item(ch, src);
				weft__waitq_complete_head(&ch->sendq, wk);
			} else if (src && !polling) { /* a select's arm that lost */
				weft__waitq_grant_head(&ch->sendq, WQ_GRANT_WAKE, wk);
			} else {
				/* No storage, or a select's arm that cannot be
				 * completed while its select is polled: the slot
				 * is reserved for it, and its poll sends into it,
				 * or its cancel passes it on. A wake with nothing
				 * let a later sender take the slot meanwhile and
				 * the arm queue again behind it (found by a review:
				 * FIFO broken in 98-184 of 200 runs of a task
				 * polled often). */
				ch->slot_res++;
				weft__waitq_grant_head(&ch->sendq, WQ_GRANT_PERMIT, wk);
			}
			continue;
		}
		/* rendezvous: straight from the sender to the receiver - the
		 * first sender some waiting receiver may take from: one whose
		 * only waiting receivers are arms of its own select never
		 * pairs with them, and must not keep later senders from them
		 * (found by a review: a sender queued behind such an arm while
		 * an item was in transit waited for good once it landed) */
		if (ch->count + ch->inflight > 0)
			return false;
		struct weft_wait *r = NULL;
		for (; s; s = s->_next)
			if ((r = receiver_for(ch, sel_of(s))))
				break;
		if (!s)
			return false;
		if (!weft__wait_claim(s)) {
			weft__waitq_grant_entry(&ch->sendq, s, WQ_GRANT_WAKE, wk);
			continue;
		}
		give_to_receiver(ch, r, storage(ch, s), wk);
		weft__waitq_complete_entry(&ch->sendq, s, wk);
	}
}

/* Wake every waiter of q (WQ_GRANT_WAKE); takes and releases the lock,
 * which the caller holds on entry and not on return. */
static void unlock_wake_all(struct weft_chan *ch, struct weft__waitq *q, struct weft__wakes *wk)
{
	for (;;) {
		while (!weft__wakes_full(wk) && weft__waitq_grant_head(q, WQ_GRANT_WAKE, wk))
			;
		bool more = !weft__waitq_empty(q);
		if (more)
			weft__waitq_hold(q); /* destroy waits: see waitlist.h */
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(wk);
		if (!more)
			return;
		weft__slock_lock(&ch->lock);
		weft__waitq_unhold(q);
	}
}

/* Under the lock: take at once the wake a close (for a receiver: of a
 * drained channel) has still to send `w`, which is linked, from a later
 * batch (the waker it holds is ours: dropped, not woken). A waiter polled
 * in that gap said WEFT_PENDING, and a select or timed wait whose time ran
 * out in it said -ETIMEDOUT for a close that came first (found by a
 * review, as for the semaphore's and the watch's close). */
static void take_close_wake(struct weft__waitq *q, struct weft_wait *w)
{
	struct weft__wakes wk;
	wk.n = 0;
	weft__waitq_grant_entry(q, w, WQ_GRANT_WAKE, &wk);
	weft_waker_drop(&wk.w[0]);
	weft__waitq_consume(q, w);
}

/* After a change: balance; if that left a closed channel drained, release
 * every waiting receiver. Unlocks and wakes. */
static void unlock_balance(struct weft_chan *ch, struct weft__wakes *wk)
{
	for (;;) {
		bool more = balance(ch, wk);
		if (!more && ch->closed && drained(ch) && !weft__waitq_empty(&ch->recvq)) {
			unlock_wake_all(ch, &ch->recvq, wk);
			return;
		}
		if (more)
			weft__waitq_hold(&ch->recvq); /* destroy waits: see waitlist.h */
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(wk);
		if (!more)
			return;
		weft__slock_lock(&ch->lock);
		weft__waitq_unhold(&ch->recvq);
	}
}

static bool send_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			   struct weft__wakes *wk)
{
	struct weft_chan *ch = weft__container_of(q, struct weft_chan, sendq);
	(void)arg;
	if (grant == WQ_GRANT_PERMIT)
		ch->slot_res--;
	/* Also for a sender that was only linked: on a rendezvous channel its
	 * leaving changes nothing, on a buffered one nothing either; the call
	 * is cheap and keeps the invariants obviously true. */
	return balance(ch, wk);
}

static bool recv_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			   struct weft__wakes *wk)
{
	struct weft_chan *ch = weft__container_of(q, struct weft_chan, recvq);
	if (grant == WQ_GRANT_PERMIT) {
		ch->item_res--;
	} else if (grant == WQ_GRANT_ITEM) {
		/* The item handed to us goes back to the head of the buffer;
		 * in-flight items hold room, so it fits. */
		const void *src = ch->item_size <= INLINE_MAX ? (const void *)&arg
							      : (const void *)(uintptr_t)arg;
		ch->inflight--;
		push_front(ch, src);
	}
	bool more = balance(ch, wk);
	if (!more && ch->closed && drained(ch)) {
		while (!weft__wakes_full(wk) &&
		       weft__waitq_grant_head(&ch->recvq, WQ_GRANT_WAKE, wk))
			;
		more = !weft__waitq_empty(&ch->recvq);
	}
	return more;
}

int weft_chan_create(size_t item_size, size_t capacity, struct weft_chan **out)
{
	size_t slots = capacity ? capacity : 1;
	/* Division, not a product that could wrap: slots * item_size <=
	 * WEFT_CHAN_MAX_BYTES. */
	if (!out || item_size == 0 || item_size > WEFT_CHAN_MAX_BYTES ||
	    slots > WEFT_CHAN_MAX_BYTES / item_size)
		return -EINVAL;
	struct weft_chan *ch = weft__calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->buf = weft__malloc(slots * item_size);
	if (!ch->buf) {
		weft__free(ch);
		return -ENOMEM;
	}
	ch->item_size = item_size;
	ch->cap = capacity;
	ch->slots = slots;
	weft__waitq_init(&ch->sendq, &ch->lock, send_on_cancel);
	weft__waitq_init(&ch->recvq, &ch->lock, recv_on_cancel);
	*out = ch;
	return 0;
}

int weft_chan_create_unbounded(size_t item_size, struct weft_chan **out)
{
	if (!out || item_size == 0 || item_size > WEFT_CHAN_MAX_BYTES / UNB_MIN_SLOTS)
		return -EINVAL;
	struct weft_chan *ch;
	int rc = weft_chan_create(item_size, UNB_MIN_SLOTS, &ch);
	if (rc)
		return rc;
	ch->cap = SIZE_MAX; /* never full: unb_room grows the ring instead */
	ch->unbounded = true;
	*out = ch;
	return 0;
}

int weft_chan_destroy(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	weft__slock_lock(&ch->lock);
	bool busy = ch->sendq.outstanding || ch->recvq.outstanding ||
		    atomic_load_explicit(&ch->sig_refs, memory_order_relaxed);
	weft__slock_unlock(&ch->lock);
	if (busy)
		return -EBUSY;
	weft__free(ch->buf);
	weft__free(ch);
	return 0;
}

int weft_chan_sender_add(struct weft_chan *ch, size_t n)
{
	if (!ch || !n)
		return -EINVAL;
	size_t c = atomic_load_explicit(&ch->senders, memory_order_relaxed);
	do {
		if (c > SIZE_MAX - n)
			return -EOVERFLOW;
	} while (!atomic_compare_exchange_weak_explicit(&ch->senders, &c, c + n,
							memory_order_relaxed, memory_order_relaxed));
	return 0;
}

int weft_chan_sender_done(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	/* acq_rel: the last one's close comes after every other sender's
	 * sends (each done after its own), as Go's WaitGroup-then-close */
	size_t c = atomic_load_explicit(&ch->senders, memory_order_relaxed);
	do {
		if (!c)
			return -EINVAL; /* more dones than senders counted */
	} while (!atomic_compare_exchange_weak_explicit(&ch->senders, &c, c - 1,
							memory_order_acq_rel, memory_order_relaxed));
	return c == 1 ? weft_chan_close(ch) : 0;
}

int weft_chan_close(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&ch->lock);
	ch->closed = true;
	/* held while the senders are woken: the receivers are still to do */
	weft__waitq_hold(&ch->recvq);
	unlock_wake_all(ch, &ch->sendq, &wk);
	weft__slock_lock(&ch->lock);
	weft__waitq_unhold(&ch->recvq);
	if (drained(ch)) {
		unlock_wake_all(ch, &ch->recvq, &wk);
		return 0;
	}
	weft__slock_unlock(&ch->lock);
	return 0;
}

int weft_chan_len(struct weft_chan *ch, size_t *len)
{
	if (!ch || !len)
		return -EINVAL;
	weft__slock_lock(&ch->lock);
	*len = avail_items(ch); /* not those reserved for a receiver: handed to it */
	weft__slock_unlock(&ch->lock);
	return 0;
}

int weft_chan_is_closed(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	weft__slock_lock(&ch->lock);
	bool closed = ch->closed;
	weft__slock_unlock(&ch->lock);
	return closed;
}

/* ------------------------------------------------------------------ send */

/*
 * Send `item`, which stays valid and unchanged until the call completes if
 * `stable` (blocking forms; poll forms on a rendezvous channel).
 */
static int send_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
		     const void *item, bool stable)
{
	/* Completed by a receiver that took our item: no lock. */
	if (weft__wait_collect_done(w, &ch->sendq))
		return 0;
	/* (an unbounded channel's send never waits, for budget either: it
	 * is Tokio's synchronous UnboundedSender::send) */
	if (!ch->unbounded && weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	uint32_t grant = WQ_GRANT_NONE;
	weft__slock_lock(&ch->lock);
	uint32_t st = weft__waitq_poll_entry(&ch->sendq, w, cx, &grant);
	if (st == WQ_LINKED) {
		/* closed: every sender is released (none links after it) */
		if (!ch->closed)
			goto pending;
		take_close_wake(&ch->sendq, w);
	}
	if (st == WQ_DONE) {
		weft__slock_unlock(&ch->lock);
		return 0;
	}
	if (grant == WQ_GRANT_PERMIT)
		ch->slot_res--; /* our reserved slot: use it, or give it back */
	if (ch->closed) {
		if (grant == WQ_GRANT_PERMIT)
			unlock_balance(ch, &wk);
		else
			weft__slock_unlock(&ch->lock);
		return -EPIPE;
	}
	if (grant == WQ_GRANT_PERMIT) {
		push_item(ch, item);
		unlock_balance(ch, &wk);
		return 0;
	}
	/* Not past a waiting sender: room can be free while one waits only
	 * while a balance() is between wake batches, and it is theirs. */
	struct weft_wait *r = receiver_for(ch, sel_of(w));
	/* (rendezvous: the waiting senders count only if a receiver may take
	 * the first one's item, as in recv_poll) */
	if ((weft__waitq_empty(&ch->sendq) ||
	     (ch->cap == 0 && !receiver_for(ch, sel_of(ch->sendq.head)))) &&
	    (ch->cap > 0 ? free_slots(ch) > 0 : r && ch->count + ch->inflight == 0)) {
		if (__builtin_expect(ch->unbounded, 0) && unb_room(ch)) {
			weft__slock_unlock(&ch->lock);
			return -ENOMEM; /* nothing sent */
		}
		if (r)
			give_to_receiver(ch, r, item, &wk); /* recvq => no item buffered */
		else
			push_item(ch, item);
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(&wk);
		return 0;
	}
	link_entry(ch, &ch->sendq, w, cx, item, stable, true);
pending:
	weft__slock_unlock(&ch->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

static bool chan_args_ok(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			 const void *item, struct weft__waitq *q)
{
	return ch && w && cx && item && weft__wait_usable(w, q);
}

int weft_chan_send_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			const void *item)
{
	if (!ch || !chan_args_ok(ch, w, cx, item, &ch->sendq))
		return -EINVAL;
	return send_poll(ch, w, cx, item, ch->cap == 0);
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
	bool recv_waits = !weft__waitq_empty(&ch->recvq);
	/* past waiting senders only as in send_poll */
	if ((!weft__waitq_empty(&ch->sendq) &&
	     (ch->cap > 0 || receiver_for(ch, sel_of(ch->sendq.head)))) ||
	    (ch->cap > 0 ? free_slots(ch) == 0 : !recv_waits || ch->count + ch->inflight > 0)) {
		weft__slock_unlock(&ch->lock);
		return -EAGAIN;
	}
	if (__builtin_expect(ch->unbounded, 0) && unb_room(ch)) {
		weft__slock_unlock(&ch->lock);
		return -ENOMEM; /* nothing sent */
	}
	if (recv_waits)
		give_to_receiver(ch, ch->recvq.head, item, &wk);
	else
		push_item(ch, item);
	weft__slock_unlock(&ch->lock);
	weft__wakes_run(&wk);
	return 0;
}

struct chan_args { struct weft_chan *ch; struct weft_wait *w; void *item; int rc; };

static enum weft_poll chan_send_fn(void *arg, struct weft_cx *cx)
{
	struct chan_args *a = arg;
	int rc = send_poll(a->ch, a->w, cx, a->item, true);
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

static int chan_wait(weft__wait_poll_fn fn, struct weft_chan *ch, struct weft__waitq *q,
		     void *item, uint64_t deadline)
{
	struct weft_wait w = WEFT_WAIT_INIT;
	struct chan_args a = { ch, &w, item, 0 };
	int rc = weft__wait_deadline(fn, &a, &w, deadline);
	if (rc) {
		/* -ETIMEDOUT too: cancel passes on a slot or item granted
		 * meanwhile. A sender completed by a receiver as time ran out
		 * (before or during the cancel) was sent: that is success. */
		if (weft__wait_cancel(&w) && q == &ch->sendq)
			return 0;
		/* Out of time with the channel closed (for a receiver: and
		 * drained): the close's wake, sent in batches with the lock
		 * dropped between them, may not have reached this waiter yet.
		 * It says -EPIPE, as it would have a batch later and as every
		 * call from now on does: -ETIMEDOUT said the time ran out
		 * first, for a close that came before it (found by a review,
		 * as for the semaphore's and the watch's close). */
		if (rc == -ETIMEDOUT) {
			weft__slock_lock(&ch->lock);
			bool closed = ch->closed && (q == &ch->sendq || drained(ch));
			weft__slock_unlock(&ch->lock);
			if (closed)
				return -EPIPE;
		}
		return rc;
	}
	return a.rc;
}

/* An unbounded channel's send never waits: from a poll task or a thread
 * it is the try form (weft__wait_deadline would refuse a poll task); a
 * fiber still meets its cancellation point. */
static bool send_never_waits(struct weft_chan *ch)
{
	return __builtin_expect(ch->unbounded, 0) && !weft__cancelled();
}

/* ... and so does a fiber's weft_block_in_place fn, where the fiber's
 * cancellation (or its runtime's shutdown) ends the waits with
 * -ECANCELED: a loop of these sends there went on after an abort (the
 * fiber never unwound) and held a shutdown to its limit (found by a
 * review). */
static int send_without_waiting(struct weft_chan *ch, const void *item)
{
	if (weft__fn_cancelled())
		return -ECANCELED;
	return weft_chan_try_send(ch, item);
}

int weft_chan_send(struct weft_chan *ch, const void *item)
{
	if (!ch || !item)
		return -EINVAL;
	if (send_never_waits(ch))
		return send_without_waiting(ch, item);
	return chan_wait(chan_send_fn, ch, &ch->sendq, (void *)item, WEFT_FOREVER);
}

int weft_chan_send_timeout(struct weft_chan *ch, const void *item, uint64_t timeout_ns)
{
	if (!ch || !item)
		return -EINVAL;
	if (send_never_waits(ch))
		return send_without_waiting(ch, item);
	return chan_wait(chan_send_fn, ch, &ch->sendq, (void *)item, deadline_after(timeout_ns));
}


/* ------------------------------------------------------------------ recv */

static int recv_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx, void *item,
		     bool stable)
{
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	uint32_t grant;
	bool held = false;
again:
	grant = WQ_GRANT_NONE;
	weft__slock_lock(&ch->lock);
	if (held)
		weft__waitq_unhold(&ch->recvq);
	held = false;
	uint32_t st = weft__waitq_poll_entry(&ch->recvq, w, cx, &grant);
	if (st == WQ_LINKED) {
		/* closed and drained: every receiver is released */
		if (!ch->closed || !drained(ch))
			goto pending;
		take_close_wake(&ch->recvq, w);
	}
	if (grant == WQ_GRANT_ITEM) {
		/* handed to us by a sender: in our storage */
		const void *src = storage(ch, w);
		if (src != item)
			copy_item(item, src, ch->item_size);
		ch->inflight--;
		if (__builtin_expect(ch->unbounded, 0))
			unb_shrink(ch);
		unlock_balance(ch, &wk);
		return 0;
	}
	if (grant == WQ_GRANT_PERMIT)
		ch->item_res--; /* our reserved item */
	/* Not past a waiting receiver (w is not linked here): a waiting
	 * sender's item on a rendezvous channel is theirs when the item in
	 * transit lands, and on a buffered one an item shows while receivers
	 * wait only between a balance()'s wake batches. */
	bool first = weft__waitq_empty(&ch->recvq);
	if (grant == WQ_GRANT_PERMIT || (first && avail_items(ch) > 0)) {
		take_item(ch, item);
		if (__builtin_expect(ch->unbounded, 0))
			unb_shrink(ch);
		unlock_balance(ch, &wk);
		return 0;
	}
	/* the waiting receivers count only if one may take the first
	 * sender's item: an arm of that sender's own select never will.
	 * Not once closed: senders close has still to wake (its batches
	 * drop the lock) get -EPIPE, their items are not sent. */
	if (ch->cap == 0 && !ch->closed && !weft__waitq_empty(&ch->sendq) &&
	    (first || !receiver_for(ch, sel_of(ch->sendq.head)))) {
		/* rendezvous: take it from the first sender that may complete
		 * (which has storage: every rendezvous sender has) */
		struct weft_wait *s = claim_sender(ch, &wk);
		if (s) {
			copy_item(item, storage(ch, s), ch->item_size);
			weft__waitq_complete_head(&ch->sendq, &wk);
			weft__slock_unlock(&ch->lock);
			weft__wakes_run(&wk);
			return 0;
		}
		if (!weft__waitq_empty(&ch->sendq)) { /* wk full: wake, look again */
			weft__waitq_hold(&ch->recvq); /* destroy waits: see waitlist.h */
			weft__slock_unlock(&ch->lock);
			weft__wakes_run(&wk);
			held = true;
			goto again;
		}
	}
	if (ch->closed && drained(ch)) {
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(&wk);
		return -EPIPE;
	}
	link_entry(ch, &ch->recvq, w, cx, item, stable, false);
pending:
	weft__slock_unlock(&ch->lock);
	/* selects' senders that could not complete (claim_sender woke them
	 * off the list: only their select's next poll links them again) */
	weft__wakes_run(&wk);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_chan_recv_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			void *item)
{
	if (!ch || !chan_args_ok(ch, w, cx, item, &ch->recvq))
		return -EINVAL;
	/* A select's arm never lends its destination to senders: two arms
	 * sharing one (Go's `case m = <-a: case m = <-b:`) were both handed
	 * an item into it, and the loser gave back the winner's item, one
	 * item lost and one received twice (found by a review). It gets the
	 * item reserved in the buffer instead, copied out if it wins. */
	return recv_poll(ch, w, cx, item, ch->cap == 0 && !sel_of(w));
}

int weft_chan_try_recv(struct weft_chan *ch, void *item)
{
	if (!ch || !item)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	bool held = false;
again:
	weft__slock_lock(&ch->lock);
	if (held)
		weft__waitq_unhold(&ch->recvq);
	held = false;
	bool first = weft__waitq_empty(&ch->recvq); /* as in recv_poll */
	if (first && avail_items(ch) > 0) {
		take_item(ch, item);
		if (__builtin_expect(ch->unbounded, 0))
			unb_shrink(ch);
		unlock_balance(ch, &wk);
		return 0;
	}
	/* the waiting receivers count only if one may take the first
	 * sender's item: an arm of that sender's own select never will
	 * (not once closed, as in recv_poll) */
	if (ch->cap == 0 && !ch->closed && !weft__waitq_empty(&ch->sendq) &&
	    (first || !receiver_for(ch, sel_of(ch->sendq.head)))) {
		struct weft_wait *s = claim_sender(ch, &wk);
		if (s) {
			copy_item(item, storage(ch, s), ch->item_size);
			weft__waitq_complete_head(&ch->sendq, &wk);
			weft__slock_unlock(&ch->lock);
			weft__wakes_run(&wk);
			return 0;
		}
		if (!weft__waitq_empty(&ch->sendq)) { /* wk full: wake, look again */
			weft__waitq_hold(&ch->recvq); /* destroy waits: see waitlist.h */
			weft__slock_unlock(&ch->lock);
			weft__wakes_run(&wk);
			held = true;
			goto again;
		}
	}
	int rc = ch->closed && drained(ch) ? -EPIPE : -EAGAIN;
	weft__slock_unlock(&ch->lock);
	weft__wakes_run(&wk); /* selects' senders that could not complete */
	return rc;
}

/*
 * The blocking receives lend senders no storage for items over 8 bytes:
 * they reserve a buffered item instead, as a poll form on a buffered
 * channel does (or, rendezvous, a hand-off pushed into the one slot and
 * reserved for them, as for a select's arm). With the caller's `item` as
 * storage, a sender wrote the item into it before the receive's outcome
 * was known; a cancel (weft_abort, shutdown) or a timeout then gave the
 * item back to the next receiver from there, and the call said
 * -ECANCELED / -ETIMEDOUT with that item in its buffer (found by a
 * review). A reservation is copied out only by the poll that returns 0.
 */
static enum weft_poll chan_recv_fn(void *arg, struct weft_cx *cx)
{
	struct chan_args *a = arg;
	int rc = recv_poll(a->ch, a->w, cx, a->item, false);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

int weft_chan_recv(struct weft_chan *ch, void *item)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_recv_fn, ch, &ch->recvq, item, WEFT_FOREVER);
}

int weft_chan_recv_timeout(struct weft_chan *ch, void *item, uint64_t timeout_ns)
{
	if (!ch || !item)
		return -EINVAL;
	return chan_wait(chan_recv_fn, ch, &ch->recvq, item, deadline_after(timeout_ns));
}

/* ------------------------------------------------------------- recv_many */

/*
 * After items[0, n) were received: take up to max - n more without
 * waiting. A buffered channel gives them under one lock, from the head,
 * each slot freed filled from the first waiting sender (balance()), so a
 * batch may hold more than the capacity and FIFO is kept; never past a
 * waiting receiver (it was first). A rendezvous channel gives one
 * hand-off from a waiting sender per item (weft_chan_try_recv).
 */
static size_t recv_more(struct weft_chan *ch, unsigned char *items, size_t n, size_t max)
{
	size_t isz = ch->item_size;
	if (ch->cap == 0) {
		while (n < max && weft_chan_try_recv(ch, items + n * isz) == 0)
			n++;
		return n;
	}
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&ch->lock);
	for (;;) {
		bool more = false; /* wk filled up: wake, then go on */
		while (n < max && weft__waitq_empty(&ch->recvq) && avail_items(ch) > 0) {
			take_item(ch, items + n * isz);
			n++;
			if ((more = balance(ch, &wk)))
				break;
		}
		if (!more)
			break;
		/* the lock dropped between batches: destroy waits (waitlist.h) */
		weft__waitq_hold(&ch->recvq);
		weft__slock_unlock(&ch->lock);
		weft__wakes_run(&wk);
		weft__slock_lock(&ch->lock);
		weft__waitq_unhold(&ch->recvq);
	}
	if (__builtin_expect(ch->unbounded, 0)) {
		size_t s;
		do {
			s = ch->slots;
			unb_shrink(ch);
		} while (ch->slots != s);
	}
	unlock_balance(ch, &wk);
	return n;
}

static bool many_args_ok(struct weft_chan *ch, void *items, size_t max, size_t *got)
{
	if (got)
		*got = 0;
	return ch && items && max && got;
}

/* After the single-item form's result rc for items[0]: the rest. */
static int many_rest(struct weft_chan *ch, void *items, size_t max, size_t *got, int rc)
{
	if (rc)
		return rc;
	*got = recv_more(ch, items, 1, max);
	return 0;
}

int weft_chan_recv_many_poll(struct weft_chan *ch, struct weft_wait *w, struct weft_cx *cx,
			     void *items, size_t max, size_t *got)
{
	if (!many_args_ok(ch, items, max, got))
		return -EINVAL;
	return many_rest(ch, items, max, got, weft_chan_recv_poll(ch, w, cx, items));
}

int weft_chan_recv_many(struct weft_chan *ch, void *items, size_t max, size_t *got)
{
	if (!many_args_ok(ch, items, max, got))
		return -EINVAL;
	return many_rest(ch, items, max, got, weft_chan_recv(ch, items));
}

int weft_chan_recv_many_timeout(struct weft_chan *ch, void *items, size_t max, size_t *got,
				uint64_t timeout_ns)
{
	if (!many_args_ok(ch, items, max, got))
		return -EINVAL;
	return many_rest(ch, items, max, got, weft_chan_recv_timeout(ch, items, timeout_ns));
}

int weft_chan_try_recv_many(struct weft_chan *ch, void *items, size_t max, size_t *got)
{
	if (!many_args_ok(ch, items, max, got))
		return -EINVAL;
	return many_rest(ch, items, max, got, weft_chan_try_recv(ch, items));
}
