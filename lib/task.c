/*
 * task.c - the task header, its state word, wakers, join handles, abort.
 *
 * State word (64-bit atomic): flags RUNNING, COMPLETE, NOTIFIED,
 * JOIN_INTEREST, JOIN_WAKER, CANCELLED in the low 6 bits and a reference
 * count above them (T_REF_ONE per reference). Every transition is one CAS
 * loop or one fetch-op on the word.
 *
 * References: the owned-task list holds one until completion; each Notified
 * (a task sitting in a queue, or being polled) holds one; the join handle
 * holds one; each waker clone holds one. A new task starts NOTIFIED with
 * refs = owned + notified (+ handle). The last reference frees the memory.
 *
 * Invariants:
 *  - NOTIFIED set <=> exactly one Notified reference exists for the task
 *    (queued or about to be), except while RUNNING, where NOTIFIED means
 *    "poll again": the poller turns its own reference into the Notified.
 *  - Only the thread that set RUNNING polls, cancels or completes the task.
 *  - The join-waker slot belongs to the handle while JOIN_WAKER is clear and
 *    the task is not complete; to the runtime while JOIN_WAKER is set; after
 *    COMPLETE the runtime wakes it and clears JOIN_WAKER, handing it back.
 *
 * Orderings: transitions that hand the task to another thread (NOTIFIED set
 * by a waker -> poll on a worker, COMPLETE -> joiner) are acq_rel on the word,
 * so the poll sees what the waker wrote and the joiner sees the result.
 * Reference increments are relaxed (the incrementer already holds one);
 * decrements are acq_rel so the freeing thread sees every earlier use.
 */
#include <errno.h>

#include "runtime.h"

#define CAS_WORD(t, s, ns) \
	atomic_compare_exchange_weak_explicit(&(t)->state, &(s), (ns), \
					      memory_order_acq_rel, memory_order_acquire)

static _Atomic uint64_t next_task_id = 1;

static uint64_t task_id_next(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->rt == rt && ctx->core) {
		struct weft__core *c = ctx->core;
		if (c->id_next == c->id_end) {
			c->id_next = atomic_fetch_add_explicit(&next_task_id, 1024,
							       memory_order_relaxed);
			c->id_end = c->id_next + 1024;
		}
		return c->id_next++;
	}
	return atomic_fetch_add_explicit(&next_task_id, 1, memory_order_relaxed);
}

void weft__task_init(struct weft_task *t, struct weft_runtime *rt, weft_poll_fn poll,
		     void *arg, weft_drop_fn drop, bool join)
{
	uint64_t s = T_NOTIFIED | (join ? 3 * T_REF_ONE | T_JOIN_INTEREST : 2 * T_REF_ONE);
	atomic_store_explicit(&t->state, s, memory_order_relaxed);
	t->qnext = NULL;
	t->poll = poll;
	t->arg = arg;
	t->drop = drop;
	t->rt = rt;
	t->result = NULL;
	t->id = task_id_next(rt);
	t->owned_prev = t->owned_next = NULL;
	t->join_waker = (weft_waker){ NULL, NULL };
	t->err = 0;
}

static void ref_inc(struct weft_task *t)
{
	uint64_t prev = atomic_fetch_add_explicit(&t->state, T_REF_ONE, memory_order_relaxed);
	if (T_REFS(prev) >= (1ull << 40))
		weft__die("task %llu: reference count overflow", (unsigned long long)t->id);
}

void weft__task_unref(struct weft_task *t)
{
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, T_REF_ONE, memory_order_acq_rel);
	if (T_REFS(prev) == 0)
		weft__die("task %llu: reference count underflow", (unsigned long long)t->id);
	if (T_REFS(prev) == 1)
		weft__task_free(t);
}

static void unref2(struct weft_task *t)
{
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, 2 * T_REF_ONE, memory_order_acq_rel);
	if (T_REFS(prev) < 2)
		weft__die("task %llu: reference count underflow", (unsigned long long)t->id);
	if (T_REFS(prev) == 2)
		weft__task_free(t);
}

/*
 * Finish a task the caller has RUNNING: run drop, publish the outcome, wake
 * the joiner, leave the owned list, and release the caller's reference and
 * the list's.
 */
static void complete(struct weft_task *t, void *result, int err)
{
	if (t->drop)
		t->drop(t->arg);
	WEFT_CHAOS_POINT();
	t->result = result;
	t->err = (int16_t)err;
	/* acq_rel: the joiner's acquire of COMPLETE sees result and drop's work. */
	uint64_t s = atomic_fetch_xor_explicit(&t->state, T_RUNNING | T_COMPLETE,
					       memory_order_acq_rel);
	if ((s & T_JOIN_INTEREST) && (s & T_JOIN_WAKER)) {
		weft_waker_wake_by_ref(&t->join_waker);
		uint64_t s2 = atomic_fetch_and_explicit(&t->state, ~T_JOIN_WAKER,
							memory_order_acq_rel);
		if (!(s2 & T_JOIN_INTEREST))
			/* The handle went away meanwhile and left the waker to us. */
			weft_waker_drop(&t->join_waker);
	}
	weft__owned_remove(&t->rt->owned, t);
	unref2(t);
}

void weft__task_run(struct weft_task *t, struct weft_cx *cx)
{
	WEFT_CHAOS_POINT();
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_LIFECYCLE) {
			/* Running elsewhere or complete: this Notified is stale. */
			weft__task_unref(t);
			return;
		}
		ns = (s | T_RUNNING) & ~T_NOTIFIED;
	} while (!CAS_WORD(t, s, ns));

	if (ns & T_CANCELLED) {
		complete(t, NULL, -ECANCELED);
		return;
	}
	cx->task = t;
	cx->rt = t->rt;
	cx->waker = (weft_waker){ &weft__task_waker_vtable, t };
	cx->result = NULL;
	cx->result_set = false;
	cx->error = 0;
	enum weft_poll r = t->poll(t->arg, cx);
	if (r == WEFT_READY) {
		complete(t, cx->result, cx->error);
		return;
	}
	WEFT_CHAOS_POINT(); /* wakes land between the poll and the idle transition */
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	do {
		if (s & T_CANCELLED) {
			complete(t, NULL, -ECANCELED);
			return;
		}
		ns = s & ~T_RUNNING;
	} while (!CAS_WORD(t, s, ns));
	if (ns & T_NOTIFIED)
		/* Woken during its own poll: our reference becomes the Notified,
		 * and the task goes behind the others (a yield). */
		weft__schedule(t->rt, t, true);
	else
		weft__task_unref(t);
}

void weft__task_shutdown(struct weft_task *t)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_LIFECYCLE)
			weft__die("task %llu listed but %s at shutdown", (unsigned long long)t->id,
				  s & T_RUNNING ? "running" : "complete");
		ns = s | T_RUNNING | T_CANCELLED;
	} while (!CAS_WORD(t, s, ns));
	ref_inc(t); /* complete() releases the caller's reference */
	complete(t, NULL, -ECANCELED);
}

/* ------------------------------------------------------------------ wakers */

static void wake_by_val(struct weft_task *t)
{
	WEFT_CHAOS_POINT();
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (s & T_RUNNING) {
			ns = (s | T_NOTIFIED) - T_REF_ONE;  /* the poller holds a ref */
		} else if (s & (T_COMPLETE | T_NOTIFIED)) {
			ns = s - T_REF_ONE;
		} else {
			ns = s | T_NOTIFIED;                /* our ref becomes the Notified */
			submit = true;
		}
	} while (!CAS_WORD(t, s, ns));
	if (submit)
		weft__schedule(t->rt, t, false);
	else if (T_REFS(ns) == 0)
		weft__task_free(t);
}

static void wake_by_ref(struct weft_task *t)
{
	WEFT_CHAOS_POINT();
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (s & T_RUNNING) {
			ns = s | T_NOTIFIED;
		} else if (s & (T_COMPLETE | T_NOTIFIED)) {
			return;
		} else {
			ns = (s | T_NOTIFIED) + T_REF_ONE;
			submit = true;
		}
	} while (!CAS_WORD(t, s, ns));
	if (submit)
		weft__schedule(t->rt, t, false);
}

static void *tw_clone(void *d) { ref_inc(d); return d; }
static void tw_wake(void *d) { wake_by_val(d); }
static void tw_wake_by_ref(void *d) { wake_by_ref(d); }
static void tw_drop(void *d) { weft__task_unref(d); }

const struct weft_waker_vtable weft__task_waker_vtable = {
	.clone = tw_clone, .wake = tw_wake, .wake_by_ref = tw_wake_by_ref, .drop = tw_drop,
};

weft_waker weft_waker_clone(const weft_waker *w)
{
	if (!w || !w->vtable)
		return (weft_waker){ NULL, NULL };
	return (weft_waker){ w->vtable, w->vtable->clone(w->data) };
}

void weft_waker_wake(weft_waker *w)
{
	if (!w || !w->vtable)
		return;
	const struct weft_waker_vtable *vt = w->vtable;
	void *d = w->data;
	w->vtable = NULL;
	w->data = NULL;
	vt->wake(d);
}

void weft_waker_wake_by_ref(const weft_waker *w)
{
	if (w && w->vtable)
		w->vtable->wake_by_ref(w->data);
}

void weft_waker_drop(weft_waker *w)
{
	if (!w || !w->vtable)
		return;
	const struct weft_waker_vtable *vt = w->vtable;
	void *d = w->data;
	w->vtable = NULL;
	w->data = NULL;
	vt->drop(d);
}

bool weft_waker_will_wake(const weft_waker *a, const weft_waker *b)
{
	return a && b && a->vtable == b->vtable && a->data == b->data;
}

/* ------------------------------------------------------------ join handles */

/* Give up the handle: clear JOIN_INTEREST, settle the waker slot, unref. */
static void handle_release(struct weft_task *t)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_COMPLETE)
			ns = s & ~T_JOIN_INTEREST;
		else
			ns = s & ~(T_JOIN_INTEREST | T_JOIN_WAKER);
	} while (!CAS_WORD(t, s, ns));
	/* The slot is ours unless the task completed with JOIN_WAKER still
	 * set, in which case the runtime drops it after waking. */
	if (!((s & T_COMPLETE) && (s & T_JOIN_WAKER)))
		weft_waker_drop(&t->join_waker);
	weft__task_unref(t);
}

static int take_output(struct weft_task *t, void **result)
{
	int rc = t->err;
	if (result)
		*result = rc ? NULL : t->result;
	handle_release(t);
	return rc;
}

/*
 * Register `w` (borrowed) as the join waker unless the task is complete.
 * Returns true when the task is complete (output readable).
 */
static bool join_register(struct weft_task *t, const weft_waker *w)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	if (s & T_COMPLETE)
		return true;
	if (s & T_JOIN_WAKER) {
		if (weft_waker_will_wake(&t->join_waker, w))
			return false;
		/* Take the slot back to replace the waker. */
		uint64_t ns;
		do {
			if (s & T_COMPLETE)
				return true;
			ns = s & ~T_JOIN_WAKER;
		} while (!CAS_WORD(t, s, ns));
	}
	/* The slot is ours: store, then publish with JOIN_WAKER. */
	weft_waker_drop(&t->join_waker);
	t->join_waker = weft_waker_clone(w);
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_COMPLETE)
			return true; /* slot stays ours; handle_release drops it */
		ns = s | T_JOIN_WAKER;
	} while (!CAS_WORD(t, s, ns));
	return false;
}

int weft_join_poll(struct weft_task *task, struct weft_cx *cx, void **result)
{
	if (!task || !cx)
		return -EINVAL;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	if (!join_register(task, &cx->waker)) {
		weft_budget_refund(cx);
		return WEFT_PENDING;
	}
	return take_output(task, result);
}

static enum weft_poll join_wait_poll(void *arg, struct weft_cx *cx)
{
	return join_register(arg, &cx->waker) ? WEFT_READY : WEFT_PENDING;
}

int weft_join(struct weft_task *task, void **result)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		/* Suspend the fiber until the task completes. */
		weft__wait(join_wait_poll, task, NULL);
		return take_output(task, result);
	}
	if (ctx && ctx->worker)
		return -EDEADLK;
	if (atomic_load_explicit(&task->state, memory_order_acquire) & T_COMPLETE)
		return take_output(task, result);
	struct weft__tparker *p = weft__tparker_self();
	if (!p)
		return -ENOMEM;
	weft_waker w = weft__tparker_waker(p);
	while (!join_register(task, &w))
		weft__tparker_park(p);
	weft_waker_drop(&w);
	return take_output(task, result);
}

int weft_detach(struct weft_task *task)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	handle_release(task);
	return 0;
}

int weft_abort(struct weft_task *task)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	uint64_t s = atomic_load_explicit(&task->state, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (s & (T_COMPLETE | T_CANCELLED))
			return 0;
		if (s & (T_RUNNING | T_NOTIFIED)) {
			/* The poller (or the queued run) sees CANCELLED. */
			ns = s | T_NOTIFIED | T_CANCELLED;
		} else {
			ns = (s | T_NOTIFIED | T_CANCELLED) + T_REF_ONE;
			submit = true;
		}
	} while (!CAS_WORD(task, s, ns));
	if (submit)
		weft__schedule(task->rt, task, false);
	return 0;
}

bool weft_task_is_finished(const struct weft_task *task)
{
	return task && (atomic_load_explicit(&((struct weft_task *)task)->state,
					     memory_order_acquire) & T_COMPLETE);
}

uint64_t weft_task_id(const struct weft_task *task) { return task ? task->id : 0; }

/* ------------------------------------------------------------ poll context */

const weft_waker *weft_cx_waker(struct weft_cx *cx) { return &cx->waker; }

void weft_cx_set_result(struct weft_cx *cx, void *result)
{
	cx->result = result;
	cx->result_set = true;
}

struct weft_runtime *weft_cx_runtime(struct weft_cx *cx) { return cx->rt; }
uint64_t weft_cx_task_id(struct weft_cx *cx) { return cx->task ? cx->task->id : 0; }

enum weft_poll weft_budget_poll_proceed(struct weft_cx *cx)
{
	if (*cx->budget == 0) {
		/* Spent: make sure the task runs again, after the others. */
		if (cx->core)
			cx->core->c.budget_forced_yields++;
		weft_waker_wake_by_ref(&cx->waker);
		return WEFT_PENDING;
	}
	--*cx->budget;
	return WEFT_READY;
}

void weft_budget_refund(struct weft_cx *cx)
{
	if (*cx->budget < WEFT_BUDGET)
		++*cx->budget;
}

unsigned weft_budget_remaining(struct weft_cx *cx) { return *cx->budget; }

int weft_join_timeout(struct weft_task *task, void **result, uint64_t timeout_ns)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	uint64_t now = weft__now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	int rc = weft__wait_deadline(join_wait_poll, task, NULL, deadline);
	if (rc)
		return rc; /* -ETIMEDOUT, -EDEADLK, -ENOMEM: the handle stays valid */
	return take_output(task, result);
}
