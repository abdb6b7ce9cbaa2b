/*
 * sem.c - weft_sem: counting semaphore, strict FIFO.
 *
 * Owns: `permits` and the wait list, under `lock`. Each linked entry's
 * _arg is the number of permits it asks for.
 * Invariants (under `lock`): the head waiter (if any) asks for more than
 * `permits` - requests are granted strictly in list order, so a large
 * request at the head is never starved by smaller later ones, and a new
 * request is served at once only when nobody waits. A grant
 * (WQ_GRANT_PERMIT) moves the head's permits out of `permits` into the
 * entry; a cancelled entry holding a grant returns them, and any cancel
 * (the head leaving may unblock the next) re-runs the grant loop.
 * `granted` sums the permits of grants not yet collected or given back,
 * and permits + granted never passes UINT64_MAX (release_n refuses what
 * would): a cancel adds its grant back to `permits`, which may so pass
 * WEFT_SEM_MAX_PERMITS, and without the bound 15 uncollected grants of
 * 2^60 given back to a count of 2^60 wrapped it (found by a review).
 * The grant loop stops when the wake batch is full and says so; callers
 * then unlock, wake, and run it again.
 * Closing (Tokio's Semaphore::close) sets `closed` and grants every
 * waiter WQ_GRANT_WAKE (no permits), which its poll turns into -EPIPE;
 * from then on no acquire waits or takes permits. A waiter granted
 * permits before the close keeps them. One still linked once closed is
 * one the close has still to wake (it grants in batches, the lock dropped
 * between two): its poll says -EPIPE at once, and a timed wait that gives
 * up asks its cancel (cancel_note) whether the close had come. Before, it
 * said WEFT_PENDING until its batch, and -ETIMEDOUT if its time ran out
 * in the gap (found by a review). A release's grants come in batches
 * too: an entry whose request fits in `permits` with every one ahead of
 * it exists only while a grant loop is between batches (each release and
 * cancel runs one until the head does not fit), so it was released: its
 * poll takes its permits at once (it said WEFT_PENDING until its batch,
 * and a timed wait whose time ran out in the gap -ETIMEDOUT, the permits
 * left to the next: found by a review).
 * Memory ordering: the lock orders everything; wakers woken after unlock.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_sem {
	struct weft__slock lock;
	struct weft__waitq q;
	uint64_t permits;
	uint64_t granted;      /* in grants not yet collected (see above) */
	bool closed;
};

/* Under the lock: grant to head waiters while they fit - or, once
 * closed, wake every one without permits (its poll says -EPIPE; a release
 * between the close's batches hands out nothing: found by a review); true
 * if stopped because wk is full. */
static bool grant_loop(struct weft_sem *s, struct weft__wakes *wk)
{
	while (s->q.head && (s->closed || s->q.head->_arg <= s->permits)) {
		if (weft__wakes_full(wk))
			return true;
		if (s->closed) {
			weft__waitq_grant_head(&s->q, WQ_GRANT_WAKE, wk);
			continue;
		}
		s->permits -= s->q.head->_arg;
		s->granted += s->q.head->_arg;
		weft__waitq_grant_head(&s->q, WQ_GRANT_PERMIT, wk);
	}
	return false;
}

/* Called locked: run grant_loop batch by batch, waking each batch with the
 * lock dropped and the list held meanwhile (waitlist.h); returns unlocked. */
static void grant_unlock(struct weft_sem *s)
{
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	for (;;) {
		bool more = grant_loop(s, &wk);
		if (more)
			weft__waitq_hold(&s->q);
		weft__slock_unlock(&s->lock);
		weft__wakes_run(&wk);
		if (!more)
			return;
		weft__slock_lock(&s->lock);
		weft__waitq_unhold(&s->q);
	}
}

static bool sem_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			  struct weft__wakes *wk)
{
	struct weft_sem *s = weft__container_of(q, struct weft_sem, q);
	if (grant == WQ_GRANT_PERMIT) {
		s->granted -= arg;
		s->permits += arg; /* no wrap: permits + granted is bounded */
	} else if (s->closed) {
		q->cancel_note = true; /* woken, or to be woken, by the close */
	}
	return grant_loop(s, wk);
}

int weft_sem_create(uint64_t permits, struct weft_sem **out)
{
	if (!out || permits > WEFT_SEM_MAX_PERMITS)
		return -EINVAL;
	struct weft_sem *s = weft__calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	weft__waitq_init(&s->q, &s->lock, sem_on_cancel);
	s->permits = permits;
	*out = s;
	return 0;
}

int weft_sem_destroy(struct weft_sem *s)
{
	if (!s)
		return -EINVAL;
	weft__slock_lock(&s->lock);
	bool busy = s->q.outstanding != 0;
	weft__slock_unlock(&s->lock);
	if (busy)
		return -EBUSY;
	weft__free(s);
	return 0;
}

/* Under the lock: would grant_loop grant w (linked, not closed) now -
 * do the requests from the head to w, w's included, fit in `permits`? */
static bool sem_fits(struct weft_sem *s, struct weft_wait *w)
{
	uint64_t need = 0;
	for (struct weft_wait *e = s->q.head;; e = e->_next) {
		need += e->_arg; /* each <= WEFT_SEM_MAX_PERMITS: no wrap */
		if (need > s->permits)
			return false;
		if (e == w)
			return true;
	}
}

/* Under the lock: w (sem_fits) takes its permits itself, ahead of its
 * batch, and leaves the list idle; those ahead of it still fit. Its waker
 * is moved into *mine, to be dropped after unlock. */
static void sem_take_fitting(struct weft_sem *s, struct weft_wait *w, weft_waker *mine)
{
	struct weft__wakes one;
	one.n = 0;
	s->permits -= w->_arg;
	weft__waitq_grant_entry(&s->q, w, WQ_GRANT_PERMIT, &one);
	weft__waitq_consume(&s->q, w);
	*mine = one.w[0];
}

int weft_sem_acquire_n_poll(struct weft_sem *s, uint64_t n, struct weft_wait *w,
			    struct weft_cx *cx)
{
	if (!s || !w || !cx || n > WEFT_SEM_MAX_PERMITS || !weft__wait_usable(w, &s->q))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&s->lock);
	if (w->_queue == &s->q && w->_arg != n) {
		/* polled again for a different count: the entry holds (or
		 * waits for) its first n, so this would take the wrong number
		 * (it returned 0 with the first n taken; found by a review) */
		weft__slock_unlock(&s->lock);
		weft_budget_refund(cx);
		return -EINVAL;
	}
	switch (weft__waitq_poll_entry(&s->q, w, cx, &grant)) {
	case WQ_GRANTED:
		if (grant == WQ_GRANT_PERMIT)
			s->granted -= n; /* n == the entry's _arg, checked above */
		weft__slock_unlock(&s->lock);
		return grant == WQ_GRANT_PERMIT ? 0 : -EPIPE; /* else woken by the close */
	case WQ_LINKED:
		if (s->closed) {
			/* the close wakes it in a later batch: say so now */
			weft__slock_unlock(&s->lock);
			weft_wait_cancel(w);
			return -EPIPE;
		}
		if (sem_fits(s, w)) {
			/* a release's later batch grants it: take them now */
			weft_waker mine;
			sem_take_fitting(s, w, &mine);
			weft__slock_unlock(&s->lock);
			weft_waker_drop(&mine);
			return 0;
		}
		break;
	default:
		if (s->closed) {
			weft__slock_unlock(&s->lock);
			return -EPIPE;
		}
		if (n == 0 || (weft__waitq_empty(&s->q) && s->permits >= n)) {
			s->permits -= n;
			weft__slock_unlock(&s->lock);
			return 0;
		}
		weft__waitq_link(&s->q, w, weft_cx_waker(cx), n);
		break;
	}
	weft__slock_unlock(&s->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_sem_try_acquire_n(struct weft_sem *s, uint64_t n)
{
	if (!s || n > WEFT_SEM_MAX_PERMITS)
		return -EINVAL;
	int rc = -EAGAIN;
	weft__slock_lock(&s->lock);
	if (s->closed)
		rc = -EPIPE;
	else if (n == 0 || (weft__waitq_empty(&s->q) && s->permits >= n)) {
		s->permits -= n;
		rc = 0;
	}
	weft__slock_unlock(&s->lock);
	return rc;
}

int weft_sem_release_n(struct weft_sem *s, uint64_t n)
{
	if (!s)
		return -EINVAL;
	/* Nothing to add, nothing to refuse: a count taken past the maximum
	 * by a cancel's given-back grant made the check below say -EOVERFLOW
	 * for a release of 0 (found by a review). No new permit, so no
	 * waiter to grant either (the head asks more than the count). */
	if (n == 0)
		return 0;
	weft__slock_lock(&s->lock);
	/* permits + n <= WEFT_SEM_MAX_PERMITS, so the last subtraction
	 * cannot wrap */
	if (n > WEFT_SEM_MAX_PERMITS || s->permits > WEFT_SEM_MAX_PERMITS - n ||
	    s->granted > UINT64_MAX - s->permits - n) {
		weft__slock_unlock(&s->lock);
		return -EOVERFLOW;
	}
	s->permits += n;
	grant_unlock(s);
	return 0;
}

int weft_sem_close(struct weft_sem *s)
{
	if (!s)
		return -EINVAL;
	weft__slock_lock(&s->lock);
	s->closed = true;
	grant_unlock(s);
	return 0;
}

bool weft_sem_is_closed(struct weft_sem *s)
{
	if (!s)
		return false;
	weft__slock_lock(&s->lock);
	bool c = s->closed;
	weft__slock_unlock(&s->lock);
	return c;
}

uint64_t weft_sem_available(struct weft_sem *s)
{
	if (!s)
		return 0;
	weft__slock_lock(&s->lock);
	uint64_t p = s->permits;
	weft__slock_unlock(&s->lock);
	return p;
}

struct sem_args { struct weft_sem *s; uint64_t n; struct weft_wait *w; int rc; };

static enum weft_poll sem_acquire_fn(void *arg, struct weft_cx *cx)
{
	struct sem_args *a = arg;
	int rc = weft_sem_acquire_n_poll(a->s, a->n, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int sem_acquire_n_until(struct weft_sem *s, uint64_t n, uint64_t deadline)
{
	if (!s || n > WEFT_SEM_MAX_PERMITS)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct sem_args a = { s, n, &w, 0 };
	int rc = weft__wait_deadline(sem_acquire_fn, &a, &w, deadline);
	if (rc) {
		/* Closed as its time ran out: the close came first, -EPIPE.
		 * Asked in the cancel's own lock hold; permits granted before
		 * the close go back (and the call says rc). */
		bool closed;
		weft__wait_cancel_note(&w, &closed);
		return rc == -ETIMEDOUT && closed ? -EPIPE : rc;
	}
	return a.rc;
}

int weft_sem_acquire_n(struct weft_sem *s, uint64_t n)
{
	return sem_acquire_n_until(s, n, WEFT_FOREVER);
}

int weft_sem_acquire_n_timeout(struct weft_sem *s, uint64_t n, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return sem_acquire_n_until(s, n, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns);
}
