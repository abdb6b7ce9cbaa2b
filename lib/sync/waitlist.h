/*
 * waitlist.h - what every primitive of lib/sync/ shares: a small lock, the
 * FIFO wait list of `struct weft_wait` entries, and a batch of wakers to
 * wake after the lock is released.
 *
 * Entry states (all transitions but the last two under the owning
 * object's lock):
 *   IDLE    --link-->     LINKED    (the waiter's poll: waker cloned in)
 *   LINKED  --grant-->    GRANTED   (a notifier: unlinked, waker moved out to
 *                                    be woken after unlock, _grant says what)
 *   GRANTED --consume-->  IDLE      (the waiter's next poll)
 *   LINKED  --complete--> DONE      (a notifier finished the waiter's whole
 *                                    operation for it, e.g. took a sender's
 *                                    item: unlinked, waker moved out, no
 *                                    longer counted in `outstanding`)
 *   DONE    --collect-->  IDLE      (the waiter's next poll, without the lock)
 *   LINKED/GRANTED/DONE --weft_wait_cancel--> IDLE (grant passed on by the
 *                                    hook; DONE has nothing to pass on)
 * `_queue` is written only by the waiter's own calls (link, consume,
 * collect, cancel), never by notifiers, so weft_wait_cancel may read it
 * without the lock to find which lock to take. `_grant`, `_arg`, the links
 * and the waker are read and written only under the lock, except by the
 * owner after it saw DONE. `_state` is read with an atomic load by the
 * owner without the lock (to collect DONE); every store to it is atomic,
 * and the store of DONE is a release, the notifier's last touch of the
 * entry: the owner's acquire load of DONE sees everything the notifier did
 * with the entry (read the item out of it, moved the waker), so the owner
 * may reuse the entry and the item's memory at once.
 *
 * Lost wakeups: a waiter checks its condition and links itself under the
 * same lock a notifier takes to change the condition, so a notifier either
 * ran before (the waiter sees the change) or after (it finds the entry).
 * The waker is woken after unlock; the woken poll takes the lock, whose
 * release/acquire makes the grant visible.
 */
#ifndef WEFT_SYNC_WAITLIST_H
#define WEFT_SYNC_WAITLIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define weft__container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

/* --------------------------------------------------------------- lock */

/* The lock is weft__slock (slock.h, via runtime.h): critical sections here
 * are a few list and buffer operations. */

/* -------------------------------------------------------------- wakes */

#define WEFT__WAKES_MAX 16

/* Wakers taken out of granted entries, woken after unlock. */
struct weft__wakes {
	unsigned n;
	weft_waker w[WEFT__WAKES_MAX];
};

static inline bool weft__wakes_full(const struct weft__wakes *wk)
{
	return wk->n == WEFT__WAKES_MAX;
}

/* Wake (consuming) every collected waker; empties the batch. */
void weft__wakes_run(struct weft__wakes *wk);

/* ---------------------------------------------------------- wait list */

enum { WQ_IDLE = 0, WQ_LINKED = 1, WQ_GRANTED = 2, WQ_DONE = 3 };

/* `_state` as an atomic (the public struct declares it plain uint32_t so
 * that C++ and pre-C11 callers can embed it). */
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
		       _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
	       "weft_wait._state used as _Atomic uint32_t");
static inline _Atomic uint32_t *weft__wait_state(struct weft_wait *w)
{
	return (_Atomic uint32_t *)(void *)&w->_state;
}

static inline uint32_t weft__wait_state_get(struct weft_wait *w)
{
	return atomic_load_explicit(weft__wait_state(w), memory_order_relaxed);
}

static inline void weft__wait_state_set(struct weft_wait *w, uint32_t s)
{
	atomic_store_explicit(weft__wait_state(w), s, memory_order_relaxed);
}

/*
 * The owner's check, without the lock: was the entry completed (DONE) by a
 * notifier? If so it is reset to idle and true is returned: the operation
 * finished. Only the owner calls this (it owns `_queue`).
 */
static inline bool weft__wait_collect_done(struct weft_wait *w, const void *q)
{
	if (w->_queue != q ||
	    /* acquire: pairs with the release store of DONE in
	     * weft__waitq_complete_head (the notifier's last touch). */
	    atomic_load_explicit(weft__wait_state(w), memory_order_acquire) != WQ_DONE)
		return false;
	weft__wait_state_set(w, WQ_IDLE);
	w->_grant = 0;
	w->_queue = NULL;
	return true;
}
/* What a grant carries. */
enum {
	WQ_GRANT_NONE = 0,
	WQ_GRANT_WAKE = 1,   /* "look again"; nothing to pass on */
	WQ_GRANT_PERMIT = 2, /* something the waiter now owns (passed on at cancel) */
	WQ_GRANT_ALL = 3,    /* notify_all: notified, nothing to pass on */
};

struct weft__waitq;

/*
 * Called under the lock by weft_wait_cancel after it took an entry out:
 * `grant` is WQ_GRANT_NONE if it was still linked, else what it held;
 * `arg` is its _arg. Passes on what it held, collecting wakers into wk.
 * Returns true if it stopped because wk is full and must be called again
 * (with grant WQ_GRANT_NONE, after the batch was woken).
 */
typedef bool (*weft__waitq_cancel_fn)(struct weft__waitq *q, uint32_t grant,
				      uint64_t arg, struct weft__wakes *wk);

struct weft__waitq {
	struct weft__slock *lock;
	struct weft_wait *head, *tail;
	size_t outstanding;            /* entries linked or granted-not-consumed */
	weft__waitq_cancel_fn on_cancel;
	/* cleared before each on_cancel call; the hook may set it to tell
	 * the canceller something about its entry (weft__wait_cancel_note) */
	bool cancel_note;
};

void weft__waitq_init(struct weft__waitq *q, struct weft__slock *lock,
		      weft__waitq_cancel_fn on_cancel);

static inline bool weft__waitq_empty(const struct weft__waitq *q) { return !q->head; }
/* A notifier that drops the lock between two batches of wakes and takes it
 * again holds the object meanwhile: counted in `outstanding`, so destroy
 * says -EBUSY until the last batch is out (without it, destroy freed a
 * semaphore under a release_n of 17 waiters, whose next batch then locked
 * freed memory; found by a review). Under the lock. */
static inline void weft__waitq_hold(struct weft__waitq *q) { q->outstanding++; }
static inline void weft__waitq_unhold(struct weft__waitq *q) { q->outstanding--; }

/* The entry may be used with q: idle, or already attached to q. */
static inline bool weft__wait_usable(const struct weft_wait *w, const struct weft__waitq *q)
{
	return !w->_queue || w->_queue == q;
}

/* Link an idle entry at the tail with a clone of `waker`. Under the lock. */
void weft__waitq_link(struct weft__waitq *q, struct weft_wait *w, const weft_waker *waker,
		      uint64_t arg);
/* A linked entry polled again: keep its place, refresh the waker. */
void weft__waitq_refresh(struct weft_wait *w, const weft_waker *waker);
/* Unlink the head, mark it granted with `grant`, move its waker into wk.
 * Returns the entry (do not touch it after unlock), or NULL if empty. */
struct weft_wait *weft__waitq_grant_head(struct weft__waitq *q, uint32_t grant,
					 struct weft__wakes *wk);
/* The same for any linked entry `w` of q (not only the head). */
struct weft_wait *weft__waitq_grant_entry(struct weft__waitq *q, struct weft_wait *w,
					  uint32_t grant, struct weft__wakes *wk);
/* The first linked entry whose _arg is at least `gen`, or NULL. For a
 * single-waiter wake (notify_one, cond_signal, a permit passed on at
 * cancel) on a list whose notify_all / broadcast grants entries with _arg
 * below the generation in batches: while such a call is between batches,
 * the older entries at the head are already released by it, and a wake
 * granted to one of them would be absorbed (lost). Under the lock. */
static inline struct weft_wait *weft__waitq_first_from(struct weft__waitq *q, uint64_t gen)
{
	struct weft_wait *w = q->head;
	while (w && w->_arg < gen)
		w = w->_next;
	return w;
}
/* Attach an idle entry as already granted (a condition that held when
 * the waiter registered, e.g. a stored notify permit). Under the lock. */
void weft__waitq_grant_idle(struct weft__waitq *q, struct weft_wait *w, uint32_t grant);
/* Unlink the head and complete it (DONE): its operation is finished, its
 * waker moved into wk, it stops counting in `outstanding`. The caller has
 * already done with the entry's payload (`_arg`). Returns the entry or NULL.
 * Do not touch the entry after this call. */
struct weft_wait *weft__waitq_complete_head(struct weft__waitq *q, struct weft__wakes *wk);
/* The same for any linked entry `w` of q (not only the head). */
struct weft_wait *weft__waitq_complete_entry(struct weft__waitq *q, struct weft_wait *w,
					     struct weft__wakes *wk);
/*
 * Called with q's lock held: end the wait of every entry at the head whose
 * _arg is below *bound - granted `grant`, or completed (DONE) when `grant`
 * is WEFT__WQ_COMPLETE - and wake them. At most WEFT__WAKES_MAX at a time:
 * between two batches the lock is dropped, the queue held
 * (weft__waitq_hold) and the batch woken, and *bound is read again under
 * the lock (a barrier's generation may move on meanwhile). Returns with
 * the lock released and every wake run. `wk` may hold wakes already.
 * Inline, so that the wake call stays in the caller's object file, where
 * test_batch_gap's -Wl,--wrap=weft__wakes_run reaches it.
 */
#define WEFT__WQ_COMPLETE UINT32_MAX
static inline void weft__waitq_wake_older_unlock(struct weft__waitq *q, const uint64_t *bound,
						 uint32_t grant, struct weft__wakes *wk)
{
	for (;;) {
		while (!weft__wakes_full(wk) && q->head && q->head->_arg < *bound) {
			if (grant == WEFT__WQ_COMPLETE)
				weft__waitq_complete_head(q, wk);
			else
				weft__waitq_grant_head(q, grant, wk);
		}
		bool more = q->head && q->head->_arg < *bound;
		if (more)
			weft__waitq_hold(q);
		weft__slock_unlock(q->lock);
		weft__wakes_run(wk);
		if (!more)
			return;
		weft__slock_lock(q->lock);
		weft__waitq_unhold(q);
	}
}
/*
 * Claim the select an entry belongs to (weft_select), before completing the
 * entry's whole operation for it (WQ_DONE: e.g. a sender's item taken). A
 * select completes exactly one arm: its claim word is 0 while free, 1 while
 * the select itself polls its arms, else the address of the entry that won.
 * Returns true if `w` is in no select or now owns its select's claim; false
 * if the select is being polled or another arm won (the caller must not
 * complete `w`; a grant that wakes it is fine - the select's next poll sorts
 * it out). Under the lock of the entry's object.
 */
#define WEFT__SEL_POLLING ((uintptr_t)1)
/* ...and, when it returns false, *polling says which: the select was
 * being polled (the arm may still win) rather than won by another arm. */
static inline bool weft__wait_claim_why(struct weft_wait *w, bool *polling)
{
	*polling = false;
	void *sel = __atomic_load_n(&w->_sel, __ATOMIC_RELAXED);
	if (!sel)
		return true;
	uintptr_t e = 0;
	/* acq_rel: the select reads the claim with acquire before it collects
	 * the entry (the DONE store's release orders the item itself). */
	if (__atomic_compare_exchange_n((uintptr_t *)sel, &e, (uintptr_t)w, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
	    e == (uintptr_t)w)
		return true;
	*polling = e == WEFT__SEL_POLLING;
	return false;
}
static inline bool weft__wait_claim(struct weft_wait *w)
{
	bool polling;
	return weft__wait_claim_why(w, &polling);
}

/* weft_wait_cancel, saying whether the entry had been completed (DONE) by
 * a notifier - its whole operation done - rather than cancelled. */
bool weft__wait_cancel(struct weft_wait *w);
/* The same, also giving what the queue's on_cancel said of this entry
 * (q->cancel_note, read in the same lock hold; false when on_cancel did
 * not run: the entry was DONE or not attached). */
bool weft__wait_cancel_note(struct weft_wait *w, bool *note);

/* weft_mutex_lock_poll after its checks and without the budget: takes the
 * mutex or links (or keeps) w on its list - never returns WEFT_PENDING with
 * w idle. For weft_cond, whose waiter must not lose its place between the
 * signal and the mutex. `cond_tag` is stored in the linked entry: 0, or a
 * cond waiter's weft__cond_tag, which the mutex hands back to
 * weft__cond_mutex_phase_cancelled if the entry is cancelled. */
int weft__mutex_lock_poll_entry(struct weft_mutex *m, struct weft_wait *w, struct weft_cx *cx,
				uint64_t cond_tag);
/* weft_mutex_lock_poll for a cond waiter's entry in its mutex phase
 * (weft_cond_wait_poll; the public form refuses such an entry): -EINVAL
 * for an entry queued for another mutex, else as the public form. */
int weft__mutex_lock_poll_phase(struct weft_mutex *m, struct weft_wait *w, struct weft_cx *cx);

/* Whether anyone is queued for m (tests: a waiter has taken its place). */
bool weft__mutex_has_waiter(struct weft_mutex *m);
/* Tests only: run between a join set member's spawn and its listing. */
extern void (*weft__joinset_spawned_hook)(struct weft_joinset *s);

/* A cond waiter in its mutex phase: the cond, and bit 0 set if what moved
 * it there was a signal (passed on if the waiter is cancelled) rather than
 * a broadcast. */
#define WEFT__COND_TAG_SIGNAL 1u
/* From the mutex's cancel, under the mutex's lock (lock order: mutex, then
 * cond; the cond never holds its lock while it takes the mutex's): the
 * waiter leaves its mutex phase without having returned; a signal it had
 * goes to the next cond waiter. */
void weft__cond_mutex_phase_cancelled(uint64_t cond_tag, struct weft__wakes *wk);

/* A granted entry's own poll: back to idle. Returns the grant. */
uint32_t weft__waitq_consume(struct weft__waitq *q, struct weft_wait *w);

/*
 * The common prologue of a poll form, under the lock. Returns:
 *   WQ_LINKED  - still waiting (waker refreshed): return WEFT_PENDING;
 *   WQ_GRANTED - *grant holds what was granted; the entry is idle again;
 *   WQ_DONE    - completed by a notifier (the operation is finished); the
 *                entry is idle again;
 *   WQ_IDLE    - not attached: check the condition.
 */
static inline uint32_t weft__waitq_poll_entry(struct weft__waitq *q, struct weft_wait *w,
					      struct weft_cx *cx, uint32_t *grant)
{
	if (w->_queue != q)
		return WQ_IDLE;
	uint32_t s = weft__wait_state_get(w);
	if (s == WQ_LINKED) {
		weft__waitq_refresh(w, weft_cx_waker(cx));
		return WQ_LINKED;
	}
	if (s == WQ_DONE) {
		weft__wait_collect_done(w, q);
		return WQ_DONE;
	}
	*grant = weft__waitq_consume(q, w);
	return WQ_GRANTED;
}

#endif /* WEFT_SYNC_WAITLIST_H */
