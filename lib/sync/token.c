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
 *
 * Deadlines (weft_token_create_deadline, Go's context.WithDeadline): a
 * token's `deadline` is the earlier of its own and its parent's, fixed at
 * create. When its own is the earlier, a small poll task on the runtime
 * (struct deadline_task) waits for the deadline on a weft_timer and, in
 * the same poll, on the token itself through an internal wait entry; it
 * cancels the token (reason -ETIMEDOUT) when the timer fires, and ends
 * early when the token is cancelled or destroyed. is_cancelled and the
 * waits also compare the clock with the deadline, so they are exact even
 * when the task is late or gone (a shut-down runtime). The token's memory
 * is shared with that task (`refs`): destroy grants the task's entry and
 * drops one reference; the task's drop, which clears `dl` under the lock,
 * drops the other. The entry counts in `outstanding` like any waiter's;
 * destroy leaves it out of its -EBUSY check.
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "waitlist.h"

struct deadline_task;

struct weft_token {
	struct weft__slock lock;
	struct weft__waitq q;
	_Atomic bool cancelled;
	_Atomic int reason;            /* 0, -ECANCELED or -ETIMEDOUT; stored before `cancelled` */
	bool destroyed;                /* under lock: the deadline task's entry was granted by destroy */
	_Atomic unsigned refs;         /* the owner's, and the deadline task's while it lives */
	uint64_t deadline;             /* WEFT_FOREVER, or the earlier of its own and its parent's */
	struct deadline_task *dl;      /* under lock: the task that fires `deadline`, or NULL */
	struct weft_token *parent;
	struct weft_token *child, *sib_next, *sib_prev;  /* children list, under parent's lock */
	size_t nchildren;
};

struct deadline_task {
	struct weft_token *t;
	struct weft_timer tm;
	struct weft_wait w;            /* on t->q: woken by a cancel or by destroy */
};

static void token_unref(struct weft_token *t)
{
	/* acq_rel: the last one sees every write the other made. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		weft__free(t);
}

static bool deadline_passed(const struct weft_token *t)
{
	return t->deadline != WEFT_FOREVER && weft_now_ns() >= t->deadline;
}

static struct weft_token *token_new(void)
{
	struct weft_token *t = weft__calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	weft__waitq_init(&t->q, &t->lock, NULL);
	atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
	t->deadline = WEFT_FOREVER;
	return t;
}

/* Link t under parent (may be NULL) and publish it; t is not shared yet. */
static void token_attach(struct weft_token *t, struct weft_token *parent)
{
	if (!parent)
		return;
	weft__slock_lock(&parent->lock);
	t->parent = parent;
	t->sib_next = parent->child;
	if (parent->child)
		parent->child->sib_prev = t;
	parent->child = t;
	parent->nchildren++;
	if (atomic_load_explicit(&parent->cancelled, memory_order_relaxed)) {
		atomic_store_explicit(&t->reason,
				      atomic_load_explicit(&parent->reason, memory_order_relaxed),
				      memory_order_relaxed);
		atomic_store_explicit(&t->cancelled, true, memory_order_relaxed);
	}
	weft__slock_unlock(&parent->lock);
}

int weft_token_create(struct weft_token *parent, struct weft_token **out)
{
	if (!out)
		return -EINVAL;
	struct weft_token *t = token_new();
	if (!t)
		return -ENOMEM;
	if (parent)
		t->deadline = parent->deadline; /* fixed at the parent's create */
	token_attach(t, parent);
	*out = t;
	return 0;
}

static int token_cancel_reason(struct weft_token *t, int reason);

/* The deadline task: fires the token's deadline, or ends when the token is
 * cancelled (its entry granted by the cancel) or destroyed (granted by
 * destroy). */
static enum weft_poll deadline_poll(void *state, struct weft_cx *cx)
{
	struct deadline_task *d = state;
	struct weft_token *t = d->t;
	uint32_t grant;
	weft__slock_lock(&t->lock);
	uint32_t s = weft__waitq_poll_entry(&t->q, &d->w, cx, &grant);
	bool done = s == WQ_GRANTED || t->destroyed ||
		    atomic_load_explicit(&t->cancelled, memory_order_relaxed);
	if (!done && s == WQ_IDLE)
		weft__waitq_link(&t->q, &d->w, weft_cx_waker(cx), 0);
	weft__slock_unlock(&t->lock);
	if (done)
		return WEFT_READY;
	if (weft_timer_poll(&d->tm, cx, t->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	weft_wait_cancel(&d->w);
	token_cancel_reason(t, -ETIMEDOUT);
	return WEFT_READY;
}

static void deadline_drop(void *state)
{
	struct deadline_task *d = state;
	struct weft_token *t = d->t;
	weft_timer_cancel(&d->tm);
	weft_wait_cancel(&d->w);
	weft__slock_lock(&t->lock);
	t->dl = NULL;
	weft__slock_unlock(&t->lock);
	weft__free(d);
	token_unref(t);
}

int weft_token_create_deadline(struct weft_runtime *rt, struct weft_token *parent,
			       uint64_t deadline_ns, struct weft_token **out)
{
	if (!out)
		return -EINVAL;
	uint64_t inherited = parent ? parent->deadline : WEFT_FOREVER;
	bool own = deadline_ns < inherited;
	bool passed = own && weft_now_ns() >= deadline_ns;
	if (own && !passed && !rt && !(rt = weft_runtime_current()))
		return -EINVAL;
	struct weft_token *t = token_new();
	if (!t)
		return -ENOMEM;
	t->deadline = own ? deadline_ns : inherited;
	if (passed) {
		atomic_store_explicit(&t->reason, -ETIMEDOUT, memory_order_relaxed);
		atomic_store_explicit(&t->cancelled, true, memory_order_relaxed);
	} else if (own) {
		struct deadline_task *d = weft__calloc(1, sizeof(*d));
		if (!d) {
			weft__free(t);
			return -ENOMEM;
		}
		d->t = t;
		t->dl = d;
		atomic_store_explicit(&t->refs, 2, memory_order_relaxed);
		/* Attached before the spawn: the task may run (and fire) at
		 * once, and its cancel reaches t's children through the
		 * parent's links only once they exist. */
		token_attach(t, parent);
		int rc = weft_spawn_poll(rt, deadline_poll, d, deadline_drop, NULL);
		if (rc) {
			/* the drop ran: t->dl is NULL, one reference left */
			weft_token_destroy(t);
			return rc;
		}
		*out = t;
		return 0;
	}
	token_attach(t, parent);
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
	/* the deadline task's own entry, linked or granted, is no user's */
	size_t own = 0;
	struct deadline_task *d = t->dl;
	if (d && d->w._queue == &t->q && weft__wait_state_get(&d->w) != WQ_DONE)
		own = 1;
	bool busy = t->q.outstanding != own || t->nchildren != 0 || t->destroyed;
	struct weft__wakes wk;
	wk.n = 0;
	if (!busy) {
		t->destroyed = true;
		if (own && weft__wait_state_get(&d->w) == WQ_LINKED)
			weft__waitq_grant_entry(&t->q, &d->w, WQ_GRANT_WAKE, &wk);
	}
	weft__slock_unlock(&t->lock);
	weft__wakes_run(&wk);
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
	token_unref(t);
	return 0;
}

/* Under t->lock: set t's flag and wake its waiters. False if it was
 * cancelled already (then so are its children: at their create, or by
 * that cancel). */
static bool cancel_one(struct weft_token *t, int reason)
{
	if (atomic_load_explicit(&t->cancelled, memory_order_relaxed))
		return false;
	/* the first cause stays: a deadline already passed (weft_token_err
	 * has said -ETIMEDOUT from the clock) beats a later cancel */
	if (deadline_passed(t))
		reason = -ETIMEDOUT;
	atomic_store_explicit(&t->reason, reason, memory_order_relaxed);
	/* release: pairs with the acquire in weft_token_is_cancelled (and
	 * orders `reason` before it). */
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
static int token_cancel_reason(struct weft_token *t, int reason)
{
	if (!t)
		return -EINVAL;
	weft__slock_lock(&t->lock);
	struct weft_token *n = t;
	bool descend = cancel_one(t, reason);
	for (;;) {
		if (descend && n->child) {
			n = n->child;
			weft__slock_lock(&n->lock);
			descend = cancel_one(n, reason);
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
		descend = cancel_one(n, reason);
	}
	weft__slock_unlock(&t->lock);
	return 0;
}

int weft_token_cancel(struct weft_token *t)
{
	return token_cancel_reason(t, -ECANCELED);
}

bool weft_token_is_cancelled(const struct weft_token *t)
{
	return weft_token_err(t) != 0;
}

int weft_token_err(const struct weft_token *t)
{
	if (!t)
		return 0;
	struct weft_token *m = (struct weft_token *)t;
	/* acquire: pairs with the release in cancel_one. */
	if (atomic_load_explicit(&m->cancelled, memory_order_acquire))
		return atomic_load_explicit(&m->reason, memory_order_relaxed);
	return deadline_passed(t) ? -ETIMEDOUT : 0;
}

uint64_t weft_token_deadline(const struct weft_token *t)
{
	return t ? t->deadline : WEFT_FOREVER;
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
		if (deadline_passed(t)) {
			/* Linked, and the deadline has passed with nothing
			 * granted: its task runs late or went with its
			 * runtime. The clock says cancelled, as weft_token_err
			 * does (a linked entry said WEFT_PENDING for good after
			 * a shutdown: found by a review). Leave the list; a
			 * grant that comes meanwhile holds nothing. */
			weft__slock_unlock(&t->lock);
			weft_wait_cancel(w);
			return 0;
		}
		break;
	default:
		if (atomic_load_explicit(&t->cancelled, memory_order_relaxed) ||
		    deadline_passed(t)) {
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
	/* The token's own deadline bounds the wait as well: a thread waiting
	 * on a token whose runtime has shut down (its deadline task gone)
	 * still returns at the deadline. */
	bool tokens = t->deadline <= deadline;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct token_wait_args a = { t, &w, 0 };
	int rc = weft__wait_deadline(token_wait_fn, &a, &w, tokens ? t->deadline : deadline);
	if (rc) {
		weft_wait_cancel(&w);
		if (rc == -ETIMEDOUT && tokens)
			return 0;
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
