/*
 * mutex.c - weft_mutex: async mutex with FIFO hand-off.
 *
 * Owns: `locked` and the wait list, both under `lock` (the internal
 * spinning futex lock, held only for a few instructions; the async mutex
 * itself may be held across suspensions).
 * Invariants (under `lock`): waiters linked => locked. Unlock with waiters
 * does not clear `locked`: it grants the mutex to the head entry
 * (WQ_GRANT_PERMIT), which owns it from that moment, so no later locker can
 * barge in (FIFO fairness). A cancelled entry holding that grant unlocks on
 * its behalf: the mutex goes to the next waiter or becomes free.
 * Memory ordering: the internal lock's release (unlock) / acquire (the
 * next owner's poll) orders the critical sections of successive owners.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_mutex {
	struct weft__slock lock;
	struct weft__waitq q;
	bool locked;
};

/* Under the lock: hand the mutex to the first waiter, or free it. */
static void release_locked(struct weft_mutex *m, struct weft__wakes *wk)
{
	if (!weft__waitq_grant_head(&m->q, WQ_GRANT_PERMIT, wk))
		m->locked = false;
}

static bool mutex_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			    struct weft__wakes *wk)
{
	if (grant == WQ_GRANT_PERMIT)
		release_locked(weft__container_of(q, struct weft_mutex, q), wk);
	if (arg) /* a cond waiter between its signal and the mutex */
		weft__cond_mutex_phase_cancelled(arg, wk);
	return false;
}

int weft_mutex_create(struct weft_mutex **out)
{
	if (!out)
		return -EINVAL;
	struct weft_mutex *m = weft__calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	weft__waitq_init(&m->q, &m->lock, mutex_on_cancel);
	*out = m;
	return 0;
}

int weft_mutex_destroy(struct weft_mutex *m)
{
	if (!m)
		return -EINVAL;
	weft__slock_lock(&m->lock);
	bool busy = m->locked || m->q.outstanding;
	weft__slock_unlock(&m->lock);
	if (busy)
		return -EBUSY;
	weft__free(m);
	return 0;
}

int weft_mutex_lock_poll(struct weft_mutex *m, struct weft_wait *w, struct weft_cx *cx)
{
	if (!m || !w || !cx || !weft__wait_usable(w, &m->q))
		return -EINVAL;
	/* Queued for m by a cond wait (its mutex phase: the entry carries
	 * the cond's tag, which our own links leave 0): the entry is the
	 * cond's - the mutex granted to it taken here left the cond counting
	 * a waiter in its mutex phase for good (destroy said -EBUSY ever
	 * after; found by a review). Read unlocked: a linked entry's _arg is
	 * the owner's, written at its link (as weft_cond_wait_poll reads it). */
	if (w->_queue == &m->q && w->_arg)
		return -EINVAL;
	return weft__mutex_lock_poll_phase(m, w, cx);
}

int weft__mutex_lock_poll_phase(struct weft_mutex *m, struct weft_wait *w, struct weft_cx *cx)
{
	if (!weft__wait_usable(w, &m->q)) /* queued for another mutex */
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	return weft__mutex_lock_poll_entry(m, w, cx, 0);
}

bool weft__mutex_has_waiter(struct weft_mutex *m)
{
	weft__slock_lock(&m->lock);
	bool any = m->q.head != NULL;
	weft__slock_unlock(&m->lock);
	return any;
}

int weft__mutex_lock_poll_entry(struct weft_mutex *m, struct weft_wait *w, struct weft_cx *cx,
				uint64_t cond_tag)
{
	uint32_t grant;
	weft__slock_lock(&m->lock);
	switch (weft__waitq_poll_entry(&m->q, w, cx, &grant)) {
	case WQ_GRANTED:
		/* The only grant is the mutex itself. */
		weft__slock_unlock(&m->lock);
		return 0;
	case WQ_LINKED:
		break;
	default:
		if (!m->locked) {
			m->locked = true;
			weft__slock_unlock(&m->lock);
			return 0;
		}
		weft__waitq_link(&m->q, w, weft_cx_waker(cx), cond_tag);
		break;
	}
	weft__slock_unlock(&m->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_mutex_try_lock(struct weft_mutex *m)
{
	if (!m)
		return -EINVAL;
	weft__slock_lock(&m->lock);
	bool got = !m->locked;
	m->locked = true;
	weft__slock_unlock(&m->lock);
	return got ? 0 : -EBUSY;
}

int weft_mutex_unlock(struct weft_mutex *m)
{
	if (!m)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	weft__slock_lock(&m->lock);
	if (!m->locked) {
		weft__slock_unlock(&m->lock);
		return -EPERM;
	}
	release_locked(m, &wk);
	weft__slock_unlock(&m->lock);
	weft__wakes_run(&wk);
	return 0;
}

struct mutex_args { struct weft_mutex *m; struct weft_wait *w; int rc; };

static enum weft_poll mutex_lock_fn(void *arg, struct weft_cx *cx)
{
	struct mutex_args *a = arg;
	int rc = weft_mutex_lock_poll(a->m, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int mutex_lock_until(struct weft_mutex *m, uint64_t deadline)
{
	if (!m)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct mutex_args a = { m, &w, 0 };
	int rc = weft__wait_deadline(mutex_lock_fn, &a, &w, deadline);
	if (rc) {
		weft_wait_cancel(&w);
		return rc;
	}
	return a.rc;
}

int weft_mutex_lock(struct weft_mutex *m)
{
	return mutex_lock_until(m, WEFT_FOREVER);
}

int weft_mutex_lock_timeout(struct weft_mutex *m, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return mutex_lock_until(m, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns);
}
