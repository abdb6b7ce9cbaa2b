/*
 * barrier.c - weft_barrier: Tokio's Barrier (pthread_barrier for tasks).
 *
 * Owns: the party count `n`, the arrivals of the current generation, the
 * generation number and the wait list, under `lock`.
 * Invariants (under `lock`): 0 <= arrived < n between calls; every linked
 * entry of the current generation (_arg == gen) is one arrival; entries of
 * older generations (released, not yet completed) come before them - the
 * list is FIFO and gen only grows. The n-th arrival does not link: it
 * bumps gen, resets arrived and completes (DONE) every entry older than
 * the current generation, in batches of WEFT__WAKES_MAX with the lock
 * dropped between them (held meanwhile, so destroy says -EBUSY:
 * waitlist.h); it is the generation's leader. Older than the current
 * generation, not "of the generation it closed": while a release drops
 * the lock a second round can fill up and close, and its releaser, which
 * finds an older entry at the head, must go on past it (one that stopped
 * there left the second round asleep for good: found by a review).
 * Completion, not a grant, so a waiter whose time runs out or that is
 * cancelled after its generation was released still returns 0
 * (weft__wait_cancel says DONE; a blocking wait whose entry is released
 * but not yet completed sees that under the lock). A waiter that gives up
 * while still linked in the current generation takes its arrival back
 * (on_cancel); one of an older generation does not.
 * Memory ordering: the lock orders everything: a party that returns sees
 * what every party of its generation wrote before it arrived.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_barrier {
	struct weft__slock lock;
	struct weft__waitq q;
	size_t n, arrived;
	uint64_t gen;
};

static bool barrier_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			      struct weft__wakes *wk)
{
	(void)wk;
	struct weft_barrier *b = weft__container_of(q, struct weft_barrier, q);
	if (grant == WQ_GRANT_NONE && arg == b->gen)
		b->arrived--;
	else if (grant == WQ_GRANT_NONE)
		q->cancel_note = true; /* its round was released: it passed */
	return false;
}

int weft_barrier_create(size_t n, struct weft_barrier **out)
{
	if (!out || n == 0)
		return -EINVAL;
	struct weft_barrier *b = weft__calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	weft__waitq_init(&b->q, &b->lock, barrier_on_cancel);
	b->n = n;
	*out = b;
	return 0;
}

int weft_barrier_destroy(struct weft_barrier *b)
{
	if (!b)
		return -EINVAL;
	weft__slock_lock(&b->lock);
	bool busy = b->q.outstanding != 0;
	weft__slock_unlock(&b->lock);
	if (busy)
		return -EBUSY;
	weft__free(b);
	return 0;
}

/* Under the lock, by the n-th arrival: close the generation and complete
 * its entries. Returns with the lock released. */
static void release_unlock(struct weft_barrier *b)
{
	struct weft__wakes wk;
	wk.n = 0;
	b->gen++;
	b->arrived = 0;
	/* b->gen is read again at each batch: a round that closes while this
	 * one's release is between batches is completed here too. */
	weft__waitq_wake_older_unlock(&b->q, &b->gen, WEFT__WQ_COMPLETE, &wk);
}

int weft_barrier_wait_poll(struct weft_barrier *b, struct weft_wait *w, struct weft_cx *cx,
			   bool *leader)
{
	if (!b || !w || !cx || !weft__wait_usable(w, &b->q))
		return -EINVAL;
	/* A completed entry is collected without the lock. */
	if (weft__wait_collect_done(w, &b->q)) {
		if (leader)
			*leader = false;
		return 0;
	}
	if (!w->_queue && weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&b->lock);
	switch (weft__waitq_poll_entry(&b->q, w, cx, &grant)) {
	case WQ_LINKED:
		if (w->_arg < b->gen) {
			/* its round was released, and the batch that will
			 * complete the entry has not reached it yet: passed.
			 * A poll task that polls once more before giving up
			 * learns it (it used to read WEFT_PENDING, cancel, and
			 * never know its arrival had counted). */
			weft__slock_unlock(&b->lock);
			weft_wait_cancel(w); /* linked in a closed round: no un-arrive */
			if (leader)
				*leader = false;
			return 0;
		}
		weft__slock_unlock(&b->lock);
		return WEFT_PENDING;
	case WQ_DONE:
		weft__slock_unlock(&b->lock);
		if (leader)
			*leader = false;
		return 0;
	case WQ_GRANTED: /* nobody grants a barrier entry */
		weft__slock_unlock(&b->lock);
		return -EINVAL;
	default:
		break;
	}
	if (++b->arrived == b->n) {
		release_unlock(b);
		if (leader)
			*leader = true;
		return 0;
	}
	weft__waitq_link(&b->q, w, weft_cx_waker(cx), b->gen);
	weft__slock_unlock(&b->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

struct barrier_args { struct weft_barrier *b; struct weft_wait *w; bool leader; int rc; };

static enum weft_poll barrier_wait_fn(void *arg, struct weft_cx *cx)
{
	struct barrier_args *a = arg;
	int rc = weft_barrier_wait_poll(a->b, a->w, cx, &a->leader);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int barrier_wait_until(struct weft_barrier *b, uint64_t deadline, bool *leader)
{
	if (!b)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct barrier_args a = { b, &w, false, 0 };
	int rc = weft__wait_deadline(barrier_wait_fn, &a, &w, deadline);
	if (rc) {
		/* Released just as the wait gave up: it passed the barrier.
		 * Completed already (DONE), or still linked in a generation
		 * that has closed when the cancel took it out (a later batch
		 * of the release would have completed it; the cancel leaves
		 * the arrival counted and says so). Decided in the cancel's
		 * own lock hold: a look under the lock before it let a round
		 * close in between, and the call said -ETIMEDOUT for an
		 * arrival that had counted (found by a review). */
		bool released;
		if (!weft__wait_cancel_note(&w, &released) && !released)
			return rc;
		a.leader = false;
		a.rc = 0;
	}
	if (leader && a.rc == 0)
		*leader = a.leader;
	return a.rc;
}

int weft_barrier_wait(struct weft_barrier *b, bool *leader)
{
	return barrier_wait_until(b, WEFT_FOREVER, leader);
}

int weft_barrier_wait_timeout(struct weft_barrier *b, uint64_t timeout_ns, bool *leader)
{
	uint64_t now = weft_now_ns();
	return barrier_wait_until(b, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER
				  : now + timeout_ns, leader);
}
