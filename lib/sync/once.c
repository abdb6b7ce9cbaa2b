/*
 * once.c - weft_once: run an initialiser exactly once, however many tasks,
 * fibers and threads call at the same time.
 *
 * The caller-owned struct weft_once (zero-initialised, WEFT_ONCE_INIT) is
 * a state word (NEW, RUNNING, DONE) plus a lock and a wait list, all
 * usable from zero. The first caller to move NEW -> RUNNING (a CAS) runs fn
 * on its own stack, then sets DONE and grants every waiter. Later callers
 * return at once when they see DONE (acquire, pairing with the release
 * that set it, so fn's writes are visible); otherwise they wait on the
 * list: a fiber suspends (fn may itself suspend), a thread parks.
 * Lost wakeup: a waiter links under the lock and re-checks the state there;
 * the runner sets DONE under the same lock before granting. weft_once_try's
 * fn may fail: the state goes back to NEW and the waiters are woken to look
 * again (one of them runs fn next; once it has begun, the waiters still
 * linked are left for its own finish to wake). While fn runs, `runner`
 * holds the id of the task or thread running it, so a call from fn itself
 * returns -EDEADLK instead of waiting for itself.
 * A runner that never comes back from fn - a fiber discarded at shutdown
 * while suspended in it, a thread that exits in it (pthread_exit, a
 * cancellation) - left the once RUNNING for good and every later caller
 * waiting for ever (found by a review). As POSIX says of pthread_once's
 * cancelled init routine, that call then counts as never made: the state
 * goes back to NEW and the waiters are woken, as after a failed try. A
 * thread's exit runs a pthread cleanup handler pushed around fn; a fiber
 * runs fn with a record on its own stack on `running` (below), which the
 * discarding thread walks before the stack is given back (fiber.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "waitlist.h"

enum { ONCE_NEW = 0, ONCE_RUNNING = 1, ONCE_DONE = 2 };

struct once_impl {
	_Atomic uint32_t state;
	struct weft__slock lock;
	struct weft__waitq q;           /* q.lock set at first use (zero is valid) */
	_Atomic uint64_t runner;        /* who runs fn (once_caller_id) while RUNNING, else 0 */
};

_Static_assert(sizeof(struct once_impl) <= sizeof(struct weft_once),
	       "struct weft_once holds the implementation");
_Static_assert(_Alignof(struct once_impl) <= _Alignof(struct weft_once),
	       "struct weft_once is aligned for the implementation");

static struct once_impl *impl(struct weft_once *o) { return (struct once_impl *)(void *)o; }

/* Under o->lock: point the wait list at the lock, once. Written only while
 * unset: weft_wait_cancel reads q.lock before it takes the lock, and a
 * store of the same value at every poll raced with that read (a fiber
 * cancelled in weft_once while a thread polled: ThreadSanitizer, found by
 * a review). The first store happens before any entry is linked, and the
 * canceller linked its entry under this lock after it. */
static void once_attach_lock(struct once_impl *o)
{
	if (!o->q.lock)
		o->q.lock = &o->lock;
}

struct once_args { struct once_impl *o; struct weft_wait *w; };

static enum weft_poll once_wait_fn(void *arg, struct weft_cx *cx)
{
	struct once_args *a = arg;
	struct once_impl *o = a->o;
	uint32_t grant;
	weft__slock_lock(&o->lock);
	once_attach_lock(o);
	switch (weft__waitq_poll_entry(&o->q, a->w, cx, &grant)) {
	case WQ_GRANTED:
		weft__slock_unlock(&o->lock);
		return WEFT_READY;
	case WQ_LINKED:
		break;
	default:
		/* DONE, or NEW again (a weft_once_try's fn failed): look
		 * again, and maybe run it */
		if (atomic_load_explicit(&o->state, memory_order_acquire) != ONCE_RUNNING) {
			weft__slock_unlock(&o->lock);
			return WEFT_READY;
		}
		weft__waitq_link(&o->q, a->w, weft_cx_waker(cx), 0);
		break;
	}
	weft__slock_unlock(&o->lock);
	return WEFT_PENDING;
}

/* The runner's end: publish `state` (DONE, or NEW after a failed try)
 * and wake every waiter; they look at the state again. */
static void once_finish(struct once_impl *o, uint32_t state)
{
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&o->lock);
	once_attach_lock(o);
	/* before the state: once it is NEW another caller may run fn and
	 * set its own id */
	atomic_store_explicit(&o->runner, 0, memory_order_relaxed);
	/* release: fn's writes before DONE (pairs with the acquires). */
	atomic_store_explicit(&o->state, state, memory_order_release);
	for (;;) {
		while (o->q.head && !weft__wakes_full(&wk))
			weft__waitq_grant_head(&o->q, WQ_GRANT_WAKE, &wk);
		bool more = o->q.head != NULL;
		if (more)
			weft__waitq_hold(&o->q); /* see waitlist.h */
		weft__slock_unlock(&o->lock);
		weft__wakes_run(&wk);
		if (!more)
			return;
		weft__slock_lock(&o->lock);
		weft__waitq_unhold(&o->q);
		/* A failed try's NEW taken by a new runner: the waiters still
		 * linked are that runner's to wake (its finish wakes every
		 * one). Woken ones that found it running link again, and
		 * granting on went round with them until its fn ended: the
		 * failed caller spun that long before returning (a review). */
		if (atomic_load_explicit(&o->state, memory_order_relaxed) != state) {
			weft__slock_unlock(&o->lock);
			return;
		}
	}
}

/* The onces whose fn runs in a fiber, innermost first: a record on that
 * fiber's stack, linked by the runner before fn and unlinked after it, or
 * by weft__once_fiber_discarded. Only while fn runs (rare), so one lock
 * for the process is enough. */
struct once_rec {
	struct once_impl *o;
	const struct weft__fiber *fiber;
	struct once_rec *prev, *next;
};
static struct weft__slock running_lock = WEFT__SLOCK_INIT;
static struct once_rec *running;

static void once_rec_unlink(struct once_rec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		running = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

/* In a forked child (fork.c, from pthread_atfork): only the forking
 * thread came along. A parent thread that held running_lock at the fork
 * (linking or unlinking its fiber's record) left it held for good, and
 * the first fiber of a runtime made in the child to run a weft_once fn
 * waited on it for ever (found by a review); the records are those of
 * the parent's fibers, which no thread of the child runs. Both start
 * anew, as probes.c's registry lock does. */
void weft__once_after_fork(void)
{
	weft__slock_init(&running_lock);
	running = NULL;
}

/* fiber.c: f is discarded without returning; its stack is still there.
 * Every once whose fn it was running goes back to NEW (see the top). */
void weft__once_fiber_discarded(const struct weft__fiber *f)
{
	for (;;) {
		struct once_rec *r;
		weft__slock_lock(&running_lock);
		for (r = running; r && r->fiber != f; r = r->next)
			;
		if (r)
			once_rec_unlink(r);
		weft__slock_unlock(&running_lock);
		if (!r)
			return;
		once_finish(r->o, ONCE_NEW);
	}
}

/* A thread that exits in fn (pthread cleanup handler). */
static void once_thread_exit(void *o)
{
	once_finish(o, ONCE_NEW);
}

struct once_call {
	void (*vfn)(void *);
	int (*ifn)(void *);
	void *arg;
	int rc;
};

static void once_call_fn(struct once_call *c)
{
	if (c->vfn)
		c->vfn(c->arg);
	else
		c->rc = c->ifn(c->arg);
}

/* Run fn so that a runner that never returns from it leaves the once
 * NEW. In a fiber, not a pthread cleanup handler: the fiber may move to
 * another thread while fn suspends, and the handlers are a per-thread
 * stack (the same for a fiber's block_in_place fn, on the fiber's stack). */
static void once_call(struct once_impl *o, struct once_call *c)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		struct once_rec r = { o, ctx->fiber, NULL, NULL };
		weft__slock_lock(&running_lock);
		r.next = running;
		if (running)
			running->prev = &r;
		running = &r;
		weft__slock_unlock(&running_lock);
		once_call_fn(c);
		weft__slock_lock(&running_lock);
		once_rec_unlink(&r);
		weft__slock_unlock(&running_lock);
		return;
	}
	if (ctx && ctx->fiber_in_place) {
		once_call_fn(c);
		return;
	}
	pthread_cleanup_push(once_thread_exit, o);
	once_call_fn(c);
	pthread_cleanup_pop(0);
}

/* Who is calling: the task whose code runs here (a fiber - on whatever
 * thread it has moved to -, a poll task, the task a weft_block_in_place
 * fn belongs to: weft_current_task_id), else the thread. Task ids are
 * below 2^63. */
static uint64_t once_caller_id(void)
{
	uint64_t id = weft_current_task_id();
	return id ? id : (1ull << 63) | (uint64_t)(uintptr_t)pthread_self();
}

/* fn is weft_once's (void) or weft_once_try's (int; non-zero: not done). */
static int once_run(struct weft_once *once, void (*vfn)(void *), int (*ifn)(void *), void *arg)
{
	struct once_impl *o = impl(once);
	uint64_t me = 0;
	for (;;) {
		/* acquire: pairs with the release store of DONE. */
		uint32_t s = atomic_load_explicit(&o->state, memory_order_acquire);
		if (s == ONCE_DONE)
			return 0;
		if (!me)
			me = once_caller_id();
		if (s == ONCE_NEW &&
		    atomic_compare_exchange_strong_explicit(&o->state, &s, ONCE_RUNNING,
							    memory_order_acquire,
							    memory_order_acquire)) {
			struct once_call c = { vfn, ifn, arg, 0 };
			/* relaxed: read back only by this caller's own calls from
			 * fn (program order); others compare it with their own
			 * id, which it never equals */
			atomic_store_explicit(&o->runner, me, memory_order_relaxed);
			once_call(o, &c);
			once_finish(o, c.rc ? ONCE_NEW : ONCE_DONE);
			return c.rc;
		}
		if (s == ONCE_DONE)
			return 0;
		/* fn calling weft_once on its own once: it waited for itself,
		 * for good (found by a review). -EDEADLK, as weft_join on the
		 * caller's own handle says. */
		if (atomic_load_explicit(&o->runner, memory_order_relaxed) == me)
			return -EDEADLK;
		struct weft_wait w = WEFT_WAIT_INIT;
		struct once_args a = { o, &w };
		int rc = weft__wait(once_wait_fn, &a, &w);
		if (rc) {
			weft_wait_cancel(&w);
			return rc;
		}
		/* woken: DONE, or a failed try left it NEW - look again */
	}
}

int weft_once(struct weft_once *once, void (*fn)(void *arg), void *arg)
{
	if (!once || !fn)
		return -EINVAL;
	return once_run(once, fn, NULL, arg);
}

int weft_once_try(struct weft_once *once, int (*fn)(void *arg), void *arg)
{
	if (!once || !fn)
		return -EINVAL;
	return once_run(once, NULL, fn, arg);
}

bool weft_once_done(const struct weft_once *once)
{
	return once && atomic_load_explicit(&impl((struct weft_once *)once)->state,
					    memory_order_acquire) == ONCE_DONE;
}
