/*
 * joinset.c - weft_joinset: tasks spawned into a set, joined in the order
 * they complete (Tokio's JoinSet, Go's errgroup without the error policy).
 *
 * Owns: one entry per member task (its join handle until joined), two
 * lists of entries - `idle` (running) and `ready` (completed, FIFO in
 * completion order) - and a wait list of joiners, all under `lock`.
 *
 * How completion is seen: each entry's join handle has the entry's own
 * waker registered as its join waker (weft_join_poll with a cx made here).
 * The task's completion wakes it: the waker moves the entry from idle to
 * ready and grants the first linked joiner (WQ_GRANT_WAKE). A joiner takes
 * the ready head under the lock, then consumes its handle outside it. A
 * task already complete when it is spawned is joined at once and its entry
 * queued ready with the outcome stored.
 *
 * Lifetimes: entries are refcounted (the set's list reference + each clone
 * of the entry waker the runtime holds); the set is refcounted by its owner
 * and each entry, so a waker that fires after destroy still finds the set's
 * memory and its `dead` flag, and does nothing. Destroy aborts and detaches
 * every member (their handles are consumed, the tasks end cancelled in the
 * background) and drops the owner's reference.
 * Invariants (under lock): an entry in a list has an unconsumed handle or a
 * stored outcome; `len` = entries in both lists + `spawning` (members
 * counted from before their spawn, so that a member that runs, or ends,
 * before it is listed is in weft_joinset_len already); a granted joiner implies a
 * ready entry, an empty set, or one member left running (a look-again for
 * a joiner that may be that member: -EDEADLK); cancel passes a WAKE grant
 * on to the next joiner if a ready entry remains or the set is empty.
 * Joiners link with `gen` as _arg (bit 0 set for one that may be a
 * member itself, JS_MAY_BE_MEMBER), so a look-again wakes only those linked
 * before it. It wakes them in batches of WEFT__WAKES_MAX, the lock dropped
 * between two, so a linked entry with _arg below gen is one a look-again
 * has still to wake (every bump of gen runs one to the end): its poll
 * looks at once. It said WEFT_PENDING until its batch came, and a timed
 * join whose time ran out in the gap said -ETIMEDOUT for a set that had
 * emptied before its limit (-ENOENT a batch later; found by a review, as
 * for the wait group and the barrier).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "waitlist.h"

struct js_entry {
	struct js_entry *next, *prev;
	struct weft_joinset *set;
	struct weft_task *task;         /* unconsumed handle, NULL once the outcome is stored */
	_Atomic unsigned refs;
	uint8_t where;                  /* JS_NONE, JS_IDLE, JS_READY (under set lock) */
	bool woken;                     /* woken before it was listed (under set lock) */
	int rc;                         /* stored outcome (task NULL) */
	void *result;
	uint64_t id;
};

enum { JS_NONE, JS_IDLE, JS_READY };

/* A joiner's _arg: the set's gen when it linked, which moves in steps of
 * two, and in bit 0 whether it may be a member itself (the look-again
 * when one member is left running is for that member alone). Entries
 * compare with gen as before: a bound of gen is above every entry linked
 * before it, flagged or not. */
enum { JS_MAY_BE_MEMBER = 1, JS_GEN_STEP = 2 };

struct weft_joinset {
	struct weft__slock lock;
	struct weft__waitq q;
	struct js_entry *idle;
	struct js_entry *ready, *ready_tail;
	size_t len;
	size_t spawning;                /* counted in len, spawn under way, not listed yet */
	uint64_t gen;                   /* joiners link with it as _arg; bumped (by 2) to wake those linked */
	bool dead;
	_Atomic unsigned refs;          /* the owner + one per entry */
	_Atomic uint64_t abort_epoch;   /* abort_all calls (bumped under lock) */
};

static void set_unref(struct weft_joinset *s)
{
	/* acq_rel: the last one frees, after every other use. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		weft__free(s);
}

static void entry_unref(struct js_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
		struct weft_joinset *s = e->set;
		weft__free(e);
		set_unref(s);
	}
}

static void list_remove(struct weft_joinset *s, struct js_entry *e)
{
	if (e->where == JS_IDLE) {
		if (e->prev)
			e->prev->next = e->next;
		else
			s->idle = e->next;
		if (e->next)
			e->next->prev = e->prev;
	} else if (e->where == JS_READY) {
		if (e->prev)
			e->prev->next = e->next;
		else
			s->ready = e->next;
		if (e->next)
			e->next->prev = e->prev;
		else
			s->ready_tail = e->prev;
	}
	e->next = e->prev = NULL;
	e->where = JS_NONE;
}

static void push_idle(struct weft_joinset *s, struct js_entry *e)
{
	e->prev = NULL;
	e->next = s->idle;
	if (s->idle)
		s->idle->prev = e;
	s->idle = e;
	e->where = JS_IDLE;
}

/* Under lock: queue e as ready and grant one joiner. */
static void push_ready(struct weft_joinset *s, struct js_entry *e, struct weft__wakes *wk)
{
	e->next = NULL;
	e->prev = s->ready_tail;
	if (s->ready_tail)
		s->ready_tail->next = e;
	else
		s->ready = e;
	s->ready_tail = e;
	e->where = JS_READY;
	weft__waitq_grant_head(&s->q, WQ_GRANT_WAKE, wk);
}

static void entry_notify(struct js_entry *e)
{
	struct weft_joinset *s = e->set;
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&s->lock);
	if (!s->dead && e->where == JS_IDLE) {
		list_remove(s, e);
		push_ready(s, e, &wk);
	} else if (e->where == JS_NONE) {
		e->woken = true; /* js_add has not listed it yet */
	}
	weft__slock_unlock(&s->lock);
	weft__wakes_run(&wk);
}

static void *ew_clone(void *d)
{
	atomic_fetch_add_explicit(&((struct js_entry *)d)->refs, 1, memory_order_relaxed);
	return d;
}
static void ew_wake(void *d) { entry_notify(d); entry_unref(d); }
static void ew_wake_by_ref(void *d) { entry_notify(d); }
static void ew_drop(void *d) { entry_unref(d); }

static const struct weft_waker_vtable entry_waker_vtable = {
	.clone = ew_clone, .wake = ew_wake, .wake_by_ref = ew_wake_by_ref, .drop = ew_drop,
};

/* Register e's waker as the join waker, or consume the handle if the task
 * is complete. Returns WEFT_PENDING (registered) or the outcome. */
static int entry_join_poll(struct js_entry *e, void **result)
{
	unsigned budget = UINT_MAX;
	struct weft_cx cx = {
		.task = NULL,
		.waker = { &entry_waker_vtable, e },
		.budget = &budget,
	};
	return weft_join_poll(e->task, &cx, result);
}

static bool js_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			 struct weft__wakes *wk)
{
	struct weft_joinset *s = weft__container_of(q, struct weft_joinset, q);
	(void)arg;
	if (grant != WQ_GRANT_NONE && (s->ready || s->len == 0))
		weft__waitq_grant_head(q, WQ_GRANT_WAKE, wk);
	return false;
}

int weft_joinset_create(struct weft_joinset **out)
{
	if (!out)
		return -EINVAL;
	struct weft_joinset *s = weft__calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	weft__waitq_init(&s->q, &s->lock, js_on_cancel);
	atomic_init(&s->refs, 1);
	*out = s;
	return 0;
}

static struct js_entry *entry_new(struct weft_joinset *s)
{
	struct js_entry *e = weft__calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	atomic_init(&e->refs, 1);
	e->set = s;
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return e;
}

/* A spawn failed: the entry was never listed. */
static void entry_discard(struct js_entry *e)
{
	struct weft_joinset *s = e->set;
	weft__free(e);
	set_unref(s);
}

/* Under the lock, which it releases: one member left, and running. Only
 * a joiner that is that member has anything new to see (-EDEADLK, which
 * only its own look can tell): the joiners linked as ones that may be a
 * member (JS_MAY_BE_MEMBER) look again; the others wait on. They all
 * looked again here, about two wakes for each member of a set that one
 * joiner or more wait on while its members come and go one at a time
 * (found by a review). Granted in this lock hold; more than a batch of
 * them (a member with that many waits linked at once, or ones linked
 * while spawns were under way) and every joiner looks again, in batches,
 * as when the set empties. */
static void wake_member_joiners_unlock(struct weft_joinset *s, struct weft__wakes *wk)
{
	struct weft_wait *w, *next;
	for (w = s->q.head; w; w = next) {
		next = w->_next;
		if (!(w->_arg & JS_MAY_BE_MEMBER))
			continue;
		if (weft__wakes_full(wk)) {
			uint64_t bound = s->gen += JS_GEN_STEP;
			weft__waitq_wake_older_unlock(&s->q, &bound, WQ_GRANT_WAKE, wk);
			return;
		}
		weft__waitq_grant_entry(&s->q, w, WQ_GRANT_WAKE, wk);
	}
	weft__slock_unlock(&s->lock);
	weft__wakes_run(wk);
}

/*
 * List a freshly spawned task. The join waker is registered first, before
 * the entry is listed (so nobody can take the entry and consume the handle
 * meanwhile); a wake that comes before the listing sets `woken`, and the
 * entry is then listed ready.
 */
static void js_add(struct weft_joinset *s, struct js_entry *e, struct weft_task *task,
		   uint64_t *id, uint64_t epoch)
{
	e->task = task;
	e->id = weft_task_id(task);
	if (id)
		*id = e->id;
	/* before the lock: the member's own join_next looks at it under the
	 * lock (while it is unset the member is counted in `spawning`). And
	 * before the join poll: one that finds the member done consumes the
	 * handle, and the task may be freed at once (marked after it, the
	 * store could land in a freed slot: found by a review) */
	weft__task_mark_joinset(task);
	void *r = NULL;
	int rc = entry_join_poll(e, &r);
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&s->lock);
	s->spawning--; /* counted in len by js_reserve */
	if (rc != WEFT_PENDING) {
		e->task = NULL; /* consumed: the outcome is stored */
		e->rc = rc;
		e->result = r;
		push_ready(s, e, &wk);
	} else if (e->woken) {
		push_ready(s, e, &wk);
	} else {
		push_idle(s, e);
		/* a weft_joinset_abort_all ran while the task was being spawned:
		 * its walk missed the entry, unlisted then (found by a review) */
		if (atomic_load_explicit(&s->abort_epoch, memory_order_relaxed) != epoch)
			weft_abort(task);
		/* The only member, running: a joiner that is this member,
		 * linked while it was being spawned (counted, not listed:
		 * no -EDEADLK then), has only itself to wait for. It looks
		 * again, as in join_next. */
		if (s->len == 1 && s->q.head) {
			wake_member_joiners_unlock(s, &wk);
			return;
		}
	}
	weft__slock_unlock(&s->lock);
	weft__wakes_run(&wk);
}

/* Under the lock, which it releases: the set just shrank (a member taken
 * or uncounted). Nothing left to wait for: every joiner linked now looks
 * again, to say -ENOENT - in batches, woken after unlock; one that
 * relinks meanwhile is newer than the bound and left linked. One member
 * left and running: a joiner that may be that member looks again, to say
 * -EDEADLK if it is (idle_members_are_caller). */
static void unlock_after_shrink(struct weft_joinset *s, struct weft__wakes *wk)
{
	if (s->len == 0 && s->q.head) {
		uint64_t bound = s->gen += JS_GEN_STEP;
		weft__waitq_wake_older_unlock(&s->q, &bound, WQ_GRANT_WAKE, wk);
	} else if (s->len == 1 && !s->ready && s->q.head) {
		wake_member_joiners_unlock(s, wk);
	} else {
		weft__slock_unlock(&s->lock);
	}
}

/*
 * Count a member in before its spawn: weft.h's len counts it from the
 * moment the spawn returns, and the member may run - and end - before
 * that, on another worker. It was counted only by js_add, after the
 * spawn: a member that looked at the set's len saw itself missing, and a
 * join_next from it said -ENOENT (found by a review).
 */
static void js_reserve(struct weft_joinset *s)
{
	weft__slock_lock(&s->lock);
	s->len++;
	s->spawning++;
	weft__slock_unlock(&s->lock);
}

/* The spawn failed: uncount it. Joiners that waited for it look again,
 * as after join_next takes a member (the set may be empty now, or hold
 * only the joiner). */
static void js_unreserve(struct weft_joinset *s)
{
	struct weft__wakes wk;
	wk.n = 0;
	weft__slock_lock(&s->lock);
	s->len--;
	s->spawning--;
	unlock_after_shrink(s, &wk);
}

/* Tests only (test_sync_order): called between a member's spawn and its
 * listing, so that a test can run abort_all in that window. */
void (*weft__joinset_spawned_hook)(struct weft_joinset *s);

int weft_joinset_spawn(struct weft_joinset *s, struct weft_runtime *rt,
		       void *(*fn)(void *arg), void *arg, uint64_t *id)
{
	if (!s || !rt || !fn)
		return -EINVAL;
	struct js_entry *e = entry_new(s);
	if (!e)
		return -ENOMEM;
	uint64_t epoch = atomic_load_explicit(&s->abort_epoch, memory_order_relaxed);
	struct weft_task *t;
	js_reserve(s);
	int rc = weft_spawn(rt, fn, arg, &t);
	if (rc) {
		js_unreserve(s);
		entry_discard(e);
		return rc;
	}
	if (__builtin_expect(weft__joinset_spawned_hook != NULL, 0))
		weft__joinset_spawned_hook(s);
	js_add(s, e, t, id, epoch);
	return 0;
}

int weft_joinset_spawn_poll(struct weft_joinset *s, struct weft_runtime *rt,
			    weft_poll_fn poll, void *state, weft_drop_fn drop, uint64_t *id)
{
	if (!s || !rt || !poll) {
		if (drop)
			drop(state);
		return -EINVAL;
	}
	struct js_entry *e = entry_new(s);
	if (!e) {
		if (drop)
			drop(state);
		return -ENOMEM;
	}
	uint64_t epoch = atomic_load_explicit(&s->abort_epoch, memory_order_relaxed);
	struct weft_task *t;
	js_reserve(s);
	int rc = weft_spawn_poll(rt, poll, state, drop, &t);
	if (rc) {
		js_unreserve(s);
		entry_discard(e);
		return rc;
	}
	if (__builtin_expect(weft__joinset_spawned_hook != NULL, 0))
		weft__joinset_spawned_hook(s);
	js_add(s, e, t, id, epoch);
	return 0;
}

size_t weft_joinset_len(struct weft_joinset *s)
{
	if (!s)
		return 0;
	weft__slock_lock(&s->lock);
	size_t n = s->len;
	weft__slock_unlock(&s->lock);
	return n;
}

static bool idle_member_forked(struct weft_joinset *s);

int weft_joinset_abort_all(struct weft_joinset *s)
{
	if (!s)
		return -EINVAL;
	/* Handles in the lists are unconsumed (a joiner takes an entry off
	 * its list before consuming), so aborting under the lock is sound;
	 * an abort only schedules the task. A member whose spawn is under
	 * way is not listed yet: the epoch makes js_add abort it. */
	weft__slock_lock(&s->lock);
	/* In a forked child a member still running on the parent's runtime
	 * cannot be aborted (weft_abort says -ECHILD there): this said 0,
	 * having done nothing (found by a review). Nothing is aborted. */
	if (idle_member_forked(s)) {
		weft__slock_unlock(&s->lock);
		return -ECHILD;
	}
	atomic_fetch_add_explicit(&s->abort_epoch, 1, memory_order_relaxed);
	for (struct js_entry *e = s->idle; e; e = e->next)
		weft_abort(e->task);
	weft__slock_unlock(&s->lock);
	return 0;
}

/* In a forked child (and only there: the scan is for a process that has
 * forked), a member still running is a task of the parent's runtime,
 * which no thread of the child will finish: weft.h's -ECHILD, as
 * weft_join on it says, where join_next waited for it for good (found by
 * a review). Under the set's lock. */
static bool idle_member_forked(struct weft_joinset *s)
{
	if (!atomic_load_explicit(&weft__fork_gen, memory_order_relaxed))
		return false;
	for (struct js_entry *e = s->idle; e; e = e->next)
		if (e->task && weft__task_forked(e->task))
			return true;
	return false;
}

/* The same for the next finished member, its handle not consumed yet: in
 * the child weft_join_poll refuses it (-ECHILD), so its outcome cannot be
 * taken. join_next took the member out before it asked, and returned
 * -ECHILD with the member gone from the set, its outcome lost and *id
 * written (found by a review). A member whose outcome was stored at its
 * spawn holds no handle: it is joined as anywhere. Under the set's lock. */
static bool ready_member_forked(const struct js_entry *e)
{
	return atomic_load_explicit(&weft__fork_gen, memory_order_relaxed) && e->task &&
	       weft__task_forked(e->task);
}

/* Every member still running is the caller itself: a member fiber or poll
 * task joining the next of its own set once the others are all joined.
 * Its wait waited for its own end, for good (found by a review: a
 * supervisor that spawns workers into the set it belongs to and collects
 * them never saw -ENOENT). -EDEADLK, as weft_join on its own handle says.
 * A task is in the set once, so the walk stops at the second entry at
 * most. Under the set's lock. */
static bool idle_members_are_caller(struct weft_joinset *s, struct weft_cx *cx)
{
	if (!s->idle || s->spawning) /* a member being spawned is another task */
		return false;
	for (struct js_entry *e = s->idle; e; e = e->next)
		if (!weft__join_is_self(e->task, cx))
			return false;
	return true;
}

/* Under the lock: w, linked with _arg below gen, was told to look again
 * by a call that wakes the joiners in batches with the lock dropped
 * between them, and its batch has not come yet: it takes that wake now
 * (the waker it holds is ours: dropped, not woken) and leaves the list
 * idle. */
static void take_look_again(struct weft_joinset *s, struct weft_wait *w)
{
	struct weft__wakes one;
	one.n = 0;
	weft__waitq_grant_entry(&s->q, w, WQ_GRANT_WAKE, &one);
	weft__waitq_consume(&s->q, w);
	weft_waker_drop(&one.w[0]);
}

int weft_joinset_join_next_poll(struct weft_joinset *s, struct weft_wait *w,
				struct weft_cx *cx, void **result, uint64_t *id)
{
	if (!s || !w || !cx || !weft__wait_usable(w, &s->q))
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	struct weft__wakes wk;
	wk.n = 0;
	uint32_t grant;
	for (;;) {
		weft__slock_lock(&s->lock);
		if (weft__waitq_poll_entry(&s->q, w, cx, &grant) == WQ_LINKED) {
			/* Polled from a task that may be a member: flagged (an
			 * entry linked where it could be no member), and if
			 * that task is the one member left running, it looks
			 * now: the look-again was not granted to the entry, or
			 * came before it was linked - by another task, flagged
			 * or not, which that look could not tell (only ones
			 * linked unflagged were looked at here, and the member
			 * polling one linked flagged waited for itself for
			 * good; found by a review). */
			bool alone = false;
			if (weft__joiner_may_be_member(cx, s->spawning)) {
				w->_arg |= JS_MAY_BE_MEMBER;
				alone = !s->ready && idle_members_are_caller(s, cx);
			}
			if (w->_arg >= s->gen && !alone) {
				weft__slock_unlock(&s->lock);
				weft_budget_refund(cx);
				return WEFT_PENDING;
			}
			/* told to look again, its batch of wakes not come yet
			 * (see the top of the file), or alone: it looks now */
			take_look_again(s, w);
		}
		struct js_entry *e = s->ready;
		if (!e) {
			if (s->len == 0) {
				weft__slock_unlock(&s->lock);
				return -ENOENT;
			}
			if (idle_member_forked(s)) {
				weft__slock_unlock(&s->lock);
				return -ECHILD;
			}
			if (idle_members_are_caller(s, cx)) {
				weft__slock_unlock(&s->lock);
				return -EDEADLK;
			}
			weft__waitq_link(&s->q, w, weft_cx_waker(cx),
					 s->gen | (weft__joiner_may_be_member(cx, s->spawning)
						   ? JS_MAY_BE_MEMBER : 0));
			weft__slock_unlock(&s->lock);
			weft_budget_refund(cx);
			return WEFT_PENDING;
		}
		if (ready_member_forked(e)) {
			weft__slock_unlock(&s->lock);
			return -ECHILD;
		}
		list_remove(s, e);
		s->len--;
		/* nothing left, or one running member: the joiners look again */
		unlock_after_shrink(s, &wk);
		void *r = NULL;
		int rc = e->task ? entry_join_poll(e, &r) : (r = e->result, e->rc);
		if (rc == WEFT_PENDING) {
			/* Queued ready but not complete: cannot happen (the join
			 * waker fires at completion only); put it back. */
			weft__slock_lock(&s->lock);
			push_idle(s, e);
			s->len++;
			weft__slock_unlock(&s->lock);
			continue;
		}
		if (id)
			*id = e->id;
		if (result) /* -EINTR: a fiber that unwound; its return value */
			*result = rc == 0 || rc == -EINTR ? r : NULL;
		entry_unref(e);
		return rc;
	}
}

struct js_wait_args {
	struct weft_joinset *s;
	struct weft_wait *w;
	void **result;
	uint64_t *id;
	int rc;
};

static enum weft_poll js_wait_fn(void *arg, struct weft_cx *cx)
{
	struct js_wait_args *a = arg;
	int rc = weft_joinset_join_next_poll(a->s, a->w, cx, a->result, a->id);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

bool weft__joinset_waits_on_own_shutdown(struct weft_joinset *s)
{
	if (!weft__in_a_shutdown())
		return false;
	weft__slock_lock(&s->lock);
	bool bound = !s->ready && s->len && !s->spawning;
	for (struct js_entry *e = s->idle; bound && e; e = e->next)
		bound = weft__join_waits_on_own_shutdown(e->task);
	weft__slock_unlock(&s->lock);
	return bound;
}

static int js_join_until(struct weft_joinset *s, void **result, uint64_t *id, uint64_t deadline)
{
	if (!s)
		return -EINVAL;
	/* A drop the shutdown of the members' runtime runs on this thread (a
	 * parent ending the set it owns): each member may be one that
	 * shutdown ends only after this call returns, and the wait waited
	 * for itself, for good (found by a review). -EDEADLK, as weft_join
	 * says there. A member of another runtime, or one already finished,
	 * can end the wait without this thread: then it waits. */
	if (weft__joinset_waits_on_own_shutdown(s))
		return -EDEADLK;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct js_wait_args a = { s, &w, result, id, 0 };
	int rc = weft__wait_deadline(js_wait_fn, &a, &w, deadline);
	if (rc) {
		weft_wait_cancel(&w);
		return rc;
	}
	return a.rc;
}

int weft_joinset_join_next(struct weft_joinset *s, void **result, uint64_t *id)
{
	return js_join_until(s, result, id, WEFT_FOREVER);
}

int weft_joinset_join_next_timeout(struct weft_joinset *s, void **result, uint64_t *id,
				   uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return js_join_until(s, result, id, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER
			     : now + timeout_ns);
}

int weft_joinset_destroy(struct weft_joinset *s)
{
	if (!s)
		return -EINVAL;
	weft__slock_lock(&s->lock);
	if (s->q.outstanding) {
		weft__slock_unlock(&s->lock);
		return -EBUSY;
	}
	s->dead = true;
	struct js_entry *all = NULL;
	for (struct js_entry *l = s->idle; l;) {
		struct js_entry *e = l;
		l = l->next;
		e->next = all;
		all = e;
		e->where = JS_NONE;
	}
	for (struct js_entry *l = s->ready; l;) {
		struct js_entry *e = l;
		l = l->next;
		e->next = all;
		all = e;
		e->where = JS_NONE;
	}
	s->idle = s->ready = s->ready_tail = NULL;
	s->len = 0;
	weft__slock_unlock(&s->lock);
	bool forked = atomic_load_explicit(&weft__fork_gen, memory_order_relaxed);
	while (all) {
		struct js_entry *e = all;
		all = e->next;
		/* In a forked child, a member of a runtime made before the fork
		 * is the parent's: no thread of the child runs it, and
		 * weft_abort and weft_detach refuse it (-ECHILD), so the join
		 * waker it holds is never woken or dropped here, and the entry
		 * and the set were never freed - the child's copy leaked
		 * (found by a review). The child's copy of the entry is freed
		 * as is; the parent's copy of the set still has the task. */
		if (forked && e->task && weft__task_forked(e->task)) {
			entry_discard(e);
			continue;
		}
		if (e->task) {
			weft_abort(e->task);
			weft_detach(e->task); /* drops the entry waker if registered */
		}
		entry_unref(e);
	}
	set_unref(s);
	return 0;
}
