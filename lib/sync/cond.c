/*
 * cond.c - weft_cond: condition variable used with weft_mutex.
 *
 * Owns: a FIFO wait list under `lock`. No state besides it: a signal with
 * nobody waiting is lost, as with pthread_cond_signal (check the
 * predicate under the mutex).
 *
 * Wait protocol: the waiter links its entry (holding the mutex, so a
 * signaller that changed the predicate under the mutex comes after the
 * link and finds the entry), then unlocks the mutex, then waits for a
 * grant; once granted, the same entry is used to take the mutex again
 * (weft_mutex_lock_poll). So the entry is attached to the condition
 * variable ("cond phase") or to the mutex ("mutex phase"), and
 * weft_wait_cancel on it does the right thing in both: a signal that had
 * been granted is passed on to the next waiter (so a timed-out or aborted
 * waiter cannot swallow a signal meant for the others), a mutex granted to
 * it goes to the next locker. In the mutex phase the entry carries a tag
 * (the cond, and whether a signal or a broadcast released it) that the
 * mutex's cancel hands back here (weft__cond_mutex_phase_cancelled), so a
 * waiter cancelled while it queues for the mutex passes its signal on too
 * (it used to be lost there: a review found the next waiter left asleep).
 * `in_mutex` counts the entries in their mutex phase, so destroy refuses
 * while one could still reach the cond. A timed-out waiter already in its
 * mutex phase was signalled: it keeps its place and waits for the mutex.
 * Signal grants the head (WQ_GRANT_PERMIT, passed on at cancel); broadcast
 * grants every entry linked before it (WQ_GRANT_ALL, not passed on),
 * in batches, as notify_all does. While a broadcast is between batches the
 * head entries are ones it has released already: a signal (or one passed
 * on) goes to the first entry of the current generation instead, else it
 * was absorbed by an entry woken anyway and a later waiter slept on.
 * A linked entry with _arg below `gen` has been released by a broadcast
 * still granting in batches: its poll takes that grant at once (it said
 * WEFT_PENDING until its batch came, and a timed wait whose time ran out
 * in the gap said -ETIMEDOUT for a broadcast before it: found by a review,
 * beside notify's), and a timed wait that gives up in its cond phase asks
 * its cancel (cancel_note) whether a broadcast had released it.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_cond {
	struct weft__slock lock;
	struct weft__waitq q;
	uint64_t gen;
	unsigned in_mutex; /* entries in their mutex phase (see above) */
};

/* Grant a signal to the first waiter a broadcast has not released (one
 * between batches has released the older ones at the head: waitlist.h,
 * weft__waitq_first_from). */
static void grant_signal(struct weft_cond *c, struct weft__wakes *wk)
{
	struct weft_wait *w = weft__waitq_first_from(&c->q, c->gen);
	if (w)
		weft__waitq_grant_entry(&c->q, w, WQ_GRANT_PERMIT, wk);
}

void weft__cond_mutex_phase_cancelled(uint64_t cond_tag, struct weft__wakes *wk)
{
	struct weft_cond *c = (struct weft_cond *)(uintptr_t)(cond_tag & ~(uint64_t)WEFT__COND_TAG_SIGNAL);
	weft__slock_lock(&c->lock);
	c->in_mutex--;
	if (cond_tag & WEFT__COND_TAG_SIGNAL)
		grant_signal(c, wk);
	weft__slock_unlock(&c->lock);
}

/* An entry's mutex phase ended with the mutex taken: the cond's part is done. */
static void leave_mutex_phase(struct weft_cond *c)
{
	weft__slock_lock(&c->lock);
	c->in_mutex--;
	weft__slock_unlock(&c->lock);
}

static bool cond_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			   struct weft__wakes *wk)
{
	struct weft_cond *c = weft__container_of(q, struct weft_cond, q);
	if (grant == WQ_GRANT_PERMIT)
		grant_signal(c, wk);
	/* released by a broadcast: nothing to pass on */
	if (grant == WQ_GRANT_ALL || (grant == WQ_GRANT_NONE && arg < c->gen))
		q->cancel_note = true;
	return false;
}

int weft_cond_create(struct weft_cond **out)
{
	if (!out)
		return -EINVAL;
	struct weft_cond *c = weft__calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	weft__waitq_init(&c->q, &c->lock, cond_on_cancel);
	*out = c;
	return 0;
}

int weft_cond_destroy(struct weft_cond *c)
{
	if (!c)
		return -EINVAL;
	weft__slock_lock(&c->lock);
	bool busy = c->q.outstanding != 0 || c->in_mutex != 0;
	weft__slock_unlock(&c->lock);
	if (busy)
		return -EBUSY;
	weft__free(c);
	return 0;
}

int weft_cond_signal(struct weft_cond *c)
{
	if (!c)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&c->lock);
	grant_signal(c, &wk);
	weft__slock_unlock(&c->lock);
	weft__wakes_run(&wk);
	return 0;
}

int weft_cond_broadcast(struct weft_cond *c)
{
	if (!c)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&c->lock);
	uint64_t gen = ++c->gen;
	weft__waitq_wake_older_unlock(&c->q, &gen, WQ_GRANT_ALL, &wk);
	return 0;
}

int weft_cond_wait_poll(struct weft_cond *c, struct weft_mutex *m, struct weft_wait *w,
			struct weft_cx *cx)
{
	if (!c || !m || !w || !cx)
		return -EINVAL;
	if (w->_queue && w->_queue != &c->q) {
		/* mutex phase (or an entry of another object: the mutex's
		 * poll form refuses it). Only an entry this cond moved there
		 * carries its tag: one queued by weft_mutex_lock_poll, or in
		 * another cond's mutex phase, was taken for ours - it returned
		 * 0 with the mutex and uncounted in_mutex, which wrapped, so
		 * destroy said -EBUSY for good (found by a review). _arg is
		 * the owner's, written at its link. */
		if ((w->_arg & ~(uint64_t)WEFT__COND_TAG_SIGNAL) != (uint64_t)(uintptr_t)c)
			return -EINVAL;
		int rc = weft__mutex_lock_poll_phase(m, w, cx);
		if (rc == 0)
			leave_mutex_phase(c);
		return rc;
	}
	uint32_t grant;
	weft__slock_lock(&c->lock);
	uint32_t st = weft__waitq_poll_entry(&c->q, w, cx, &grant);
	if (st == WQ_LINKED && w->_arg < c->gen) {
		/* released by a broadcast whose batch has not come: take its
		 * grant now (the waker it holds is ours: dropped, not woken) */
		struct weft__wakes wk;
		wk.n = 0;
		weft__waitq_grant_entry(&c->q, w, WQ_GRANT_ALL, &wk);
		weft_waker_drop(&wk.w[0]);
		grant = weft__waitq_consume(&c->q, w);
		st = WQ_GRANTED;
	}
	switch (st) {
	case WQ_GRANTED: {
		/* Counted before the cond's lock goes: from here the entry
		 * may name the cond from the mutex's list. */
		c->in_mutex++;
		weft__slock_unlock(&c->lock);
		/* w is idle again: take the mutex or queue for it now. Not the
		 * public poll form: a spent budget would leave w idle, and the
		 * next poll would wait on the cond again with the signal gone
		 * and unlock a mutex it does not hold. */
		uint64_t tag = (uint64_t)(uintptr_t)c |
			       (grant == WQ_GRANT_PERMIT ? WEFT__COND_TAG_SIGNAL : 0);
		int rc = weft__mutex_lock_poll_entry(m, w, cx, tag);
		if (rc != WEFT_PENDING)
			leave_mutex_phase(c);
		return rc;
	}
	case WQ_LINKED:
		weft__slock_unlock(&c->lock);
		return WEFT_PENDING;
	default:
		weft__waitq_link(&c->q, w, weft_cx_waker(cx), c->gen);
		weft__slock_unlock(&c->lock);
		break;
	}
	/* Linked while holding the mutex: now let it go. */
	if (weft_mutex_unlock(m)) {
		weft_wait_cancel(w);
		return -EPERM;
	}
	return WEFT_PENDING;
}

struct cond_args { struct weft_cond *c; struct weft_mutex *m; struct weft_wait *w; int rc; };

static enum weft_poll cond_fn(void *arg, struct weft_cx *cx)
{
	struct cond_args *a = arg;
	int rc = weft_cond_wait_poll(a->c, a->m, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int cond_wait_until(struct weft_cond *c, struct weft_mutex *m, uint64_t timeout_ns)
{
	if (!c || !m)
		return -EINVAL;
	uint64_t now = weft_now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct cond_args a = { c, m, &w, 0 };
	int rc = weft__wait_deadline(cond_fn, &a, &w, deadline);
	if (!rc)
		return a.rc;
	if (rc == -ECANCELED) {
		/* A cancelled fiber cannot wait for the mutex again: return
		 * without it, whichever phase the entry was in. */
		if (!w._queue)
			weft_mutex_unlock(m); /* cancelled at entry: still held */
		weft_wait_cancel(&w);
		return rc;
	}
	if (!w._queue)
		return rc; /* refused before anything (-EDEADLK, -ENOMEM): mutex still held */
	/* Out of time (-ETIMEDOUT). Still on the cond's list: leave it
	 * (passing on a signal granted meanwhile) and take the mutex back
	 * without a limit, as pthread does. Already queued for the mutex: we
	 * were signalled, so keep that place and wait for the mutex. */
	if (w._queue == &c->q) {
		/* released by a broadcast as the time ran out (its grant,
		 * or still linked behind the broadcast's batches): it was
		 * woken first, and says 0 */
		bool released;
		weft__wait_cancel_note(&w, &released);
		int lrc = weft_mutex_lock(m);
		return lrc ? lrc : released ? 0 : rc;
	}
	rc = weft__wait_deadline(cond_fn, &a, &w, WEFT_FOREVER);
	if (!rc)
		return a.rc;
	weft_wait_cancel(&w); /* -ECANCELED: the mutex and the signal go on */
	return rc;
}

int weft_cond_wait(struct weft_cond *c, struct weft_mutex *m)
{
	return cond_wait_until(c, m, WEFT_FOREVER);
}

int weft_cond_wait_timeout(struct weft_cond *c, struct weft_mutex *m, uint64_t timeout_ns)
{
	return cond_wait_until(c, m, timeout_ns);
}
