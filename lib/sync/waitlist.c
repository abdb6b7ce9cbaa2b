/*
 * waitlist.c - the lock, the FIFO wait list and weft_wait_cancel shared by
 * the primitives of lib/sync/. The entry state machine and the lost-wakeup
 * argument are in waitlist.h.
 *
 * Owns: nothing beyond the entries' links and the wakers cloned into
 * linked entries (each clone is either moved out by a grant and woken, or
 * dropped by weft_wait_cancel). `outstanding` counts entries linked or
 * granted but not consumed, so destroy can refuse while any exist.
 */
#include <errno.h>

#include "waitlist.h"

void weft__wakes_run(struct weft__wakes *wk)
{
	for (unsigned i = 0; i < wk->n; i++)
		weft_waker_wake(&wk->w[i]);
	wk->n = 0;
}

void weft__waitq_init(struct weft__waitq *q, struct weft__slock *lock,
		      weft__waitq_cancel_fn on_cancel)
{
	q->lock = lock;
	q->head = q->tail = NULL;
	q->outstanding = 0;
	q->on_cancel = on_cancel;
}

static weft_waker entry_waker(struct weft_wait *w)
{
	return (weft_waker){ w->_waker_vtable, w->_waker_data };
}

static void entry_set_waker(struct weft_wait *w, weft_waker k)
{
	w->_waker_vtable = k.vtable;
	w->_waker_data = k.data;
}

static void unlink_entry(struct weft__waitq *q, struct weft_wait *w)
{
	if (w->_prev)
		w->_prev->_next = w->_next;
	else
		q->head = w->_next;
	if (w->_next)
		w->_next->_prev = w->_prev;
	else
		q->tail = w->_prev;
	w->_next = w->_prev = NULL;
}

void weft__waitq_link(struct weft__waitq *q, struct weft_wait *w, const weft_waker *waker,
		      uint64_t arg)
{
	w->_next = NULL;
	w->_prev = q->tail;
	if (q->tail)
		q->tail->_next = w;
	else
		q->head = w;
	q->tail = w;
	w->_queue = q;
	w->_arg = arg;
	weft__wait_state_set(w, WQ_LINKED);
	w->_grant = WQ_GRANT_NONE;
	entry_set_waker(w, weft_waker_clone(waker));
	q->outstanding++;
}

void weft__waitq_refresh(struct weft_wait *w, const weft_waker *waker)
{
	weft_waker old = entry_waker(w);
	if (weft_waker_will_wake(&old, waker))
		return;
	weft_waker_drop(&old);
	entry_set_waker(w, weft_waker_clone(waker));
}

struct weft_wait *weft__waitq_grant_head(struct weft__waitq *q, uint32_t grant,
					 struct weft__wakes *wk)
{
	return q->head ? weft__waitq_grant_entry(q, q->head, grant, wk) : NULL;
}

struct weft_wait *weft__waitq_grant_entry(struct weft__waitq *q, struct weft_wait *w,
					  uint32_t grant, struct weft__wakes *wk)
{
	if (weft__wakes_full(wk))
		weft__die("wake batch overflow");
	unlink_entry(q, w);
	weft__wait_state_set(w, WQ_GRANTED);
	w->_grant = grant;
	wk->w[wk->n++] = entry_waker(w);
	entry_set_waker(w, (weft_waker){ NULL, NULL });
	return w;
}

void weft__waitq_grant_idle(struct weft__waitq *q, struct weft_wait *w, uint32_t grant)
{
	w->_next = w->_prev = NULL;
	w->_queue = q;
	w->_arg = 0;
	weft__wait_state_set(w, WQ_GRANTED);
	w->_grant = grant;
	entry_set_waker(w, (weft_waker){ NULL, NULL });
	q->outstanding++;
}

struct weft_wait *weft__waitq_complete_head(struct weft__waitq *q, struct weft__wakes *wk)
{
	return q->head ? weft__waitq_complete_entry(q, q->head, wk) : NULL;
}

struct weft_wait *weft__waitq_complete_entry(struct weft__waitq *q, struct weft_wait *w,
					     struct weft__wakes *wk)
{
	if (weft__wakes_full(wk))
		weft__die("wake batch overflow");
	unlink_entry(q, w);
	wk->w[wk->n++] = entry_waker(w);
	entry_set_waker(w, (weft_waker){ NULL, NULL });
	q->outstanding--;
	/* release: the last touch of the entry; pairs with the owner's acquire
	 * in weft__wait_collect_done / weft_wait_cancel. */
	atomic_store_explicit(weft__wait_state(w), WQ_DONE, memory_order_release);
	return w;
}

uint32_t weft__waitq_consume(struct weft__waitq *q, struct weft_wait *w)
{
	uint32_t s = weft__wait_state_get(w);
	if (s != WQ_GRANTED)
		weft__die("wait entry %p in state %u, expected granted", (void *)w, s);
	uint32_t g = w->_grant;
	weft__wait_state_set(w, WQ_IDLE);
	w->_grant = WQ_GRANT_NONE;
	w->_queue = NULL;
	q->outstanding--;
	return g;
}

void weft_wait_cancel(struct weft_wait *w)
{
	weft__wait_cancel(w);
}

bool weft__wait_cancel(struct weft_wait *w) { return weft__wait_cancel_note(w, NULL); }

bool weft__wait_cancel_note(struct weft_wait *w, bool *note)
{
	if (note)
		*note = false;
	if (!w || !w->_queue)
		return false;
	struct weft__waitq *q = w->_queue;
	/* Completed by a notifier: nothing to pass on, the object need not be
	 * touched (it may already be gone). */
	if (weft__wait_collect_done(w, q))
		return true;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft_waker mine = { NULL, NULL };
	uint32_t grant;

	weft__slock_lock(q->lock);
	uint32_t s = weft__wait_state_get(w);
	if (s == WQ_DONE) { /* completed since the check above */
		weft__wait_collect_done(w, q);
		weft__slock_unlock(q->lock);
		return true;
	}
	if (s == WQ_LINKED) {
		unlink_entry(q, w);
		mine = entry_waker(w);
		entry_set_waker(w, (weft_waker){ NULL, NULL });
		grant = WQ_GRANT_NONE;
	} else if (s == WQ_GRANTED) {
		grant = w->_grant;
	} else {
		weft__die("wait entry %p attached but in state %u", (void *)w, s);
	}
	uint64_t arg = w->_arg;
	weft__wait_state_set(w, WQ_IDLE);
	w->_grant = WQ_GRANT_NONE;
	w->_queue = NULL;
	q->outstanding--;
	q->cancel_note = false;
	bool more = q->on_cancel ? q->on_cancel(q, grant, arg, &wk) : false;
	if (note)
		*note = q->cancel_note;
	if (more)
		weft__waitq_hold(q); /* passing on, between batches: see waitlist.h */
	weft__slock_unlock(q->lock);
	weft__wakes_run(&wk);
	weft_waker_drop(&mine);
	while (more) {
		weft__slock_lock(q->lock);
		weft__waitq_unhold(q);
		more = q->on_cancel(q, WQ_GRANT_NONE, 0, &wk);
		if (more)
			weft__waitq_hold(q);
		weft__slock_unlock(q->lock);
		weft__wakes_run(&wk);
	}
	return false;
}
