/*
 * rwlock.c - weft_rwlock: async reader-writer lock, FIFO and fair.
 *
 * Owns: `readers` (read holds, granted ones included), `writer` (write
 * held) and one FIFO wait list of readers and writers (entry _arg: 0 for a
 * reader, 1 for a writer), all under `lock`.
 * Invariants (under `lock`): writer => readers == 0; a new caller gets the
 * lock at once only when nobody waits (so a waiting writer holds back
 * readers that arrive after it - writer preference without starving
 * readers: readers queued before the writer go first); whenever the lock
 * is released, dispatch() grants from the head: one writer if the lock is
 * free, or every reader up to the next writer if no writer holds it. A
 * grant is the lock itself (WQ_GRANT_PERMIT): a cancelled entry holding
 * one releases it, and any cancel re-runs dispatch (a writer that left the
 * head may unblock the readers behind it).
 * dispatch grants at most WEFT__WAKES_MAX entries at a time and drops the
 * lock between two batches (the list held), so an entry that dispatch
 * would grant - no writer holds the lock and only readers are ahead of a
 * reader, or a writer at the head with no reader left - is only there
 * while a dispatch is under way: it was released, its grant not yet made.
 * Its poll takes the lock at once, and a timed wait that gives up keeps a
 * lock it was granted or released (it said WEFT_PENDING until its batch
 * came, and -ETIMEDOUT if its time ran out in the gap, the lock passed on:
 * found by a review, as for the wait group and the cond).
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_rwlock {
	struct weft__slock lock;
	struct weft__waitq q;
	uint64_t readers;
	bool writer;
};

enum { RW_READ = 0, RW_WRITE = 1 };

/* Under the lock. Returns true if it stopped because wk is full. */
static bool dispatch(struct weft_rwlock *l, struct weft__wakes *wk)
{
	while (l->q.head && !l->writer) {
		if (weft__wakes_full(wk))
			return true;
		if (l->q.head->_arg == RW_WRITE) {
			if (l->readers)
				return false;
			weft__waitq_grant_head(&l->q, WQ_GRANT_PERMIT, wk);
			l->writer = true;
			return false;
		}
		weft__waitq_grant_head(&l->q, WQ_GRANT_PERMIT, wk);
		l->readers++;
	}
	return false;
}

/* Under the lock: would the dispatch under way grant w (linked, `mode`)
 * now? See the top of the file. */
static bool rw_released(struct weft_rwlock *l, struct weft_wait *w, int mode)
{
	if (l->writer)
		return false;
	if (mode == RW_WRITE)
		return l->q.head == w && !l->readers;
	for (struct weft_wait *e = l->q.head; e != w; e = e->_next)
		if (e->_arg == RW_WRITE)
			return false;
	return true;
}

/* Under the lock: w (linked, released: rw_released) takes the lock itself,
 * ahead of its batch, and leaves the list idle. Its waker is moved into
 * *mine, to be dropped after unlock. */
static void rw_take_released(struct weft_rwlock *l, struct weft_wait *w, int mode,
			     weft_waker *mine)
{
	struct weft__wakes one;
	one.n = 0;
	weft__waitq_grant_entry(&l->q, w, WQ_GRANT_PERMIT, &one);
	weft__waitq_consume(&l->q, w);
	*mine = one.w[0];
	if (mode == RW_READ)
		l->readers++;
	else
		l->writer = true;
}

static bool rw_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			 struct weft__wakes *wk)
{
	struct weft_rwlock *l = weft__container_of(q, struct weft_rwlock, q);
	if (grant == WQ_GRANT_PERMIT) {
		if (arg == RW_WRITE)
			l->writer = false;
		else
			l->readers--;
	}
	return dispatch(l, wk);
}

int weft_rwlock_create(struct weft_rwlock **out)
{
	if (!out)
		return -EINVAL;
	struct weft_rwlock *l = weft__calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	weft__waitq_init(&l->q, &l->lock, rw_on_cancel);
	*out = l;
	return 0;
}

int weft_rwlock_destroy(struct weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	weft__slock_lock(&l->lock);
	bool busy = l->readers || l->writer || l->q.outstanding;
	weft__slock_unlock(&l->lock);
	if (busy)
		return -EBUSY;
	weft__free(l);
	return 0;
}

static int rw_poll(struct weft_rwlock *l, struct weft_wait *w, struct weft_cx *cx, int mode)
{
	if (!l || !w || !cx || !weft__wait_usable(w, &l->q))
		return -EINVAL;
	if (w->_queue == &l->q && w->_arg != (uint64_t)mode)
		return -EINVAL; /* linked for the other mode */
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&l->lock);
	switch (weft__waitq_poll_entry(&l->q, w, cx, &grant)) {
	case WQ_GRANTED:
		weft__slock_unlock(&l->lock);
		return 0;
	case WQ_LINKED:
		if (rw_released(l, w, mode)) {
			weft_waker mine;
			rw_take_released(l, w, mode, &mine);
			weft__slock_unlock(&l->lock);
			weft_waker_drop(&mine);
			return 0;
		}
		break;
	default:
		if (!l->writer && !l->q.head && (mode == RW_READ || !l->readers)) {
			if (mode == RW_READ)
				l->readers++;
			else
				l->writer = true;
			weft__slock_unlock(&l->lock);
			return 0;
		}
		weft__waitq_link(&l->q, w, weft_cx_waker(cx), (uint64_t)mode);
		break;
	}
	weft__slock_unlock(&l->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_rwlock_read_poll(struct weft_rwlock *l, struct weft_wait *w, struct weft_cx *cx)
{
	return rw_poll(l, w, cx, RW_READ);
}

int weft_rwlock_write_poll(struct weft_rwlock *l, struct weft_wait *w, struct weft_cx *cx)
{
	return rw_poll(l, w, cx, RW_WRITE);
}

static int rw_try(struct weft_rwlock *l, int mode)
{
	if (!l)
		return -EINVAL;
	int rc = -EBUSY;
	weft__slock_lock(&l->lock);
	if (!l->writer && !l->q.head && (mode == RW_READ || !l->readers)) {
		if (mode == RW_READ)
			l->readers++;
		else
			l->writer = true;
		rc = 0;
	}
	weft__slock_unlock(&l->lock);
	return rc;
}

int weft_rwlock_try_read(struct weft_rwlock *l) { return rw_try(l, RW_READ); }
int weft_rwlock_try_write(struct weft_rwlock *l) { return rw_try(l, RW_WRITE); }

static int rw_unlock(struct weft_rwlock *l, int mode)
{
	if (!l)
		return -EINVAL;
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&l->lock);
	if (mode == RW_READ ? !l->readers : !l->writer) {
		weft__slock_unlock(&l->lock);
		return -EPERM;
	}
	if (mode == RW_READ)
		l->readers--;
	else
		l->writer = false;
	bool more;
	do {
		more = dispatch(l, &wk);
		if (more)
			weft__waitq_hold(&l->q); /* see waitlist.h */
		weft__slock_unlock(&l->lock);
		weft__wakes_run(&wk);
		if (more) {
			weft__slock_lock(&l->lock);
			weft__waitq_unhold(&l->q);
		}
	} while (more);
	return 0;
}

int weft_rwlock_read_unlock(struct weft_rwlock *l) { return rw_unlock(l, RW_READ); }
int weft_rwlock_write_unlock(struct weft_rwlock *l) { return rw_unlock(l, RW_WRITE); }

struct rw_args { struct weft_rwlock *l; struct weft_wait *w; int mode; int rc; };

static enum weft_poll rw_fn(void *arg, struct weft_cx *cx)
{
	struct rw_args *a = arg;
	int rc = rw_poll(a->l, a->w, cx, a->mode);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

/* A timed wait whose time ran out: if it was granted the lock, or released
 * by an unlock still waking in batches, by now, it keeps the lock (true;
 * w idle). Looked at in one lock hold, so no grant slips in between the
 * look and a cancel. */
static bool rw_keep(struct weft_rwlock *l, struct weft_wait *w, int mode)
{
	weft_waker mine = { NULL, NULL };
	bool kept = false;
	weft__slock_lock(&l->lock);
	if (w->_queue == &l->q) {
		uint32_t s = weft__wait_state_get(w);
		if (s == WQ_GRANTED) {
			weft__waitq_consume(&l->q, w);
			kept = true;
		} else if (s == WQ_LINKED && rw_released(l, w, mode)) {
			rw_take_released(l, w, mode, &mine);
			kept = true;
		}
	}
	weft__slock_unlock(&l->lock);
	weft_waker_drop(&mine);
	return kept;
}

static int rw_until(struct weft_rwlock *l, int mode, uint64_t timeout_ns)
{
	if (!l)
		return -EINVAL;
	uint64_t now = weft_now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct rw_args a = { l, &w, mode, 0 };
	int rc = weft__wait_deadline(rw_fn, &a, &w, deadline);
	if (rc == -ETIMEDOUT && rw_keep(l, &w, mode))
		return 0;
	if (rc) {
		weft_wait_cancel(&w); /* a grant that raced with the error goes on */
		return rc;
	}
	return a.rc;
}

int weft_rwlock_read(struct weft_rwlock *l) { return rw_until(l, RW_READ, WEFT_FOREVER); }
int weft_rwlock_write(struct weft_rwlock *l) { return rw_until(l, RW_WRITE, WEFT_FOREVER); }
int weft_rwlock_read_timeout(struct weft_rwlock *l, uint64_t timeout_ns)
{
	return rw_until(l, RW_READ, timeout_ns);
}
int weft_rwlock_write_timeout(struct weft_rwlock *l, uint64_t timeout_ns)
{
	return rw_until(l, RW_WRITE, timeout_ns);
}
