/*
 * token.c - weft_token: a cancellation token, with child tokens.
 *
 * Owns: the `cancelled` flag, the wait list, and the list of children,
 * under `lock`. `cancelled` is also an atomic so that is_cancelled reads
 * it without the lock (release on set, acquire on read: a reader that sees
 * it sees what the canceller wrote before cancelling).
 * Invariants (under `lock`): cancelled => no entry linked (cancel grants
 * every linked entry WQ_GRANT_WAKE and a wait that finds the flag set
 * returns at once instead of linking); a child of a cancelled parent is
 * cancelled (create copies the flag under the parent's lock; cancel walks
 * the children under it).
 * Lock order: parent before child (cancel, child create and destroy all
 * take the parent's lock first). Wakers are woken with the lock held: a
 * wake only schedules, it never comes back into a token (and at shutdown a
 * task the closed inject queue refuses is left for the shutdown to end,
 * not ended in the wake, which ran drop functions under this lock:
 * runtime.c, weft__orphan).
 * Lifetime: a child points at its parent; the parent's destroy refuses
 * (-EBUSY) while it has children, so the pointer stays valid.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_token {
	struct weft__slock lock;
	struct weft__waitq q;
	_Atomic bool cancelled;
	struct weft_token *parent;
	struct weft_token *child, *sib_next, *sib_prev;  /* children list, under parent's lock */
	size_t nchildren;
};

int weft_token_create(struct weft_token *parent, struct weft_token **out)
{
	if (!out)
		return -EINVAL;
	struct weft_token *t = weft__calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	weft__waitq_init(&t->q, &t->lock, NULL);
	if (parent) {
		weft__slock_lock(&parent->lock);
		t->parent = parent;
		t->sib_next = parent->child;
		if (parent->child)
			parent->child->sib_prev = t;
		parent->child = t;
		parent->nchildren++;
		if (atomic_load_explicit(&parent->cancelled, memory_order_relaxed))
			atomic_store_explicit(&t->cancelled, true, memory_order_relaxed);
		weft__slock_unlock(&parent->lock);
	}
	*out = t;
	return 0;
}

int weft_token_destroy(struct weft_token *t)
{
	if (!t)
		return -EINVAL;
	struct weft_token *p = t->parent;
	if (p)
		weft__slock_lock(&p->lock);
	weft__slock_lock(&t->lock);
	bool busy = t->q.outstanding != 0 || t->nchildren != 0;
	weft__slock_unlock(&t->lock);
	if (busy) {
		if (p)
			weft__slock_unlock(&p->lock);
		return -EBUSY;
	}
	if (p) {
		if (t->sib_prev)
			t->sib_prev->sib_next = t->sib_next;
		else
			p->child = t->sib_next;
		if (t->sib_next)
			t->sib_next->sib_prev = t->sib_prev;
		p->nchildren--;
		weft__slock_unlock(&p->lock);
	}
	weft__free(t);
	return 0;
}

/* Under t->lock: set t's flag and wake its waiters. False if it was
 * cancelled already (then so are its children: at their create, or by
 * that cancel). */
static bool cancel_one(struct weft_token *t)
{
	if (atomic_load_explicit(&t->cancelled, memory_order_relaxed))
		return false;
	/* release: pairs with the acquire in weft_token_is_cancelled. */
	atomic_store_explicit(&t->cancelled, true, memory_order_release);
	struct weft__wakes wk;
	wk.n = 0;
	while (t->q.head) {
		if (weft__wakes_full(&wk))
			weft__wakes_run(&wk);
		weft__waitq_grant_head(&t->q, WQ_GRANT_WAKE, &wk);
	}
	weft__wakes_run(&wk);
	return true;
}

/*
 * Cancel t and its descendants, depth first, without recursion (one stack
 * frame per level overflowed a fiber's 64 KiB stack at about 230 levels:
 * found by a review). The locks of the path from t down to the token
 * visited are held, parent before child, as create and destroy take them:
 * a child cannot be made uncancelled under a cancelled parent, nor
 * destroyed while visited.
 */
int weft_token_cancel(struct weft_token *t)
{
	if (!t)
		return -EINVAL;
	weft__slock_lock(&t->lock);
	struct weft_token *n = t;
	bool descend = cancel_one(t);
	for (;;) {
		if (descend && n->child) {
			n = n->child;
			weft__slock_lock(&n->lock);
			descend = cancel_one(n);
			continue;
		}
		/* n's subtree is done: its next sibling, or up */
		while (n != t && !n->sib_next) {
			struct weft_token *p = n->parent;
			weft__slock_unlock(&n->lock);
			n = p; /* locked: on the path */
		}
		if (n == t)
			break;
		struct weft_token *next = n->sib_next;
		weft__slock_unlock(&n->lock);
		n = next;
		weft__slock_lock(&n->lock);
		descend = cancel_one(n);
	}
	weft__slock_unlock(&t->lock);
	return 0;
}

bool weft_token_is_cancelled(const struct weft_token *t)
{
	/* acquire: pairs with the release in cancel_locked. */
	return t && atomic_load_explicit(&((struct weft_token *)t)->cancelled,
					 memory_order_acquire);
}

int weft_token_wait_poll(struct weft_token *t, struct weft_wait *w, struct weft_cx *cx)
{
	if (!t || !w || !cx || !weft__wait_usable(w, &t->q))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&t->lock);
	switch (weft__waitq_poll_entry(&t->q, w, cx, &grant)) {
	case WQ_GRANTED:
		weft__slock_unlock(&t->lock);
		return 0;
	case WQ_LINKED:
		break;
	default:
		if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
			weft__slock_unlock(&t->lock);
			return 0;
		}
		weft__waitq_link(&t->q, w, weft_cx_waker(cx), 0);
		break;
	}
	weft__slock_unlock(&t->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

struct token_wait_args { struct weft_token *t; struct weft_wait *w; int rc; };

static enum weft_poll token_wait_fn(void *arg, struct weft_cx *cx)
{
	struct token_wait_args *a = arg;
	int rc = weft_token_wait_poll(a->t, a->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int token_wait_until(struct weft_token *t, uint64_t deadline)
{
	if (!t)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct token_wait_args a = { t, &w, 0 };
	int rc = weft__wait_deadline(token_wait_fn, &a, &w, deadline);
	if (rc) {
		weft_wait_cancel(&w);
		return rc;
	}
	return a.rc;
}

int weft_token_wait(struct weft_token *t)
{
	return token_wait_until(t, WEFT_FOREVER);
}

int weft_token_wait_timeout(struct weft_token *t, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return token_wait_until(t, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER
				   : now + timeout_ns);
}
