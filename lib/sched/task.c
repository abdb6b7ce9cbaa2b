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
 *
 * The transitions themselves (each CAS loop or fetch-op on the word) are in
 * task_state.h, as functions of the word alone, so that they also compile
 * into tests/harness/state_harness.c; this file acts on what they return.
 */
#include <errno.h>

#include "runtime.h"

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
	atomic_store_explicit(&t->state, weft__ts_initial(join), memory_order_relaxed);
	t->qnext = NULL;
	/* poll, arg, id and spawn_site: relaxed atomic stores. The stall
	 * report of another worker (worker.c, report_stall) reads them with
	 * atomic loads from a task it saw running, and that slot may have
	 * been freed and taken by this spawn meanwhile; its loads are not
	 * ordered before these stores (a TSan race, found by a review). */
	__atomic_store_n(&t->poll, poll, __ATOMIC_RELAXED);
	__atomic_store_n(&t->arg, arg, __ATOMIC_RELAXED);
	t->drop = drop;
	t->rt = rt;
	t->result = NULL;
	__atomic_store_n(&t->id, task_id_next(rt), __ATOMIC_RELAXED);
	t->owned_prev = t->owned_next = NULL;
	t->join_waker = (weft_waker){ NULL, NULL };
	t->err = 0;
	__atomic_store_n(&t->spawn_site, NULL, __ATOMIC_RELAXED);
	t->unwind = false;
	t->started = false;
	t->owned = false;
	atomic_store_explicit(&t->join_busy, false, memory_order_relaxed);
	atomic_store_explicit(&t->in_joinset, false, memory_order_relaxed);
	t->wake_ns = 0;
}

static void ref_inc(struct weft_task *t)
{
	uint64_t prev = weft__ts_ref_inc(&t->state);
	if (T_REFS(prev) >= (1ull << 40))
		weft__die("task %llu: reference count overflow", (unsigned long long)t->id);
}

void weft__task_ref(struct weft_task *t) { ref_inc(t); }

void weft__task_unref(struct weft_task *t)
{
	uint64_t refs = weft__ts_unref(&t->state, 1);
	if (refs == 0)
		weft__die("task %llu: reference count underflow", (unsigned long long)t->id);
	if (refs == 1)
		weft__task_free(t);
}

static void unref2(struct weft_task *t)
{
	uint64_t refs = weft__ts_unref(&t->state, 2);
	if (refs < 2)
		weft__die("task %llu: reference count underflow", (unsigned long long)t->id);
	if (refs == 2)
		weft__task_free(t);
}

/*
 * Finish a task the caller has RUNNING: run drop, leave the owned list if
 * it is on it, count the completion, publish the outcome, wake the joiner,
 * and release the caller's reference and the list's (every task holds the
 * list's reference from its spawn, bound or not; it outlives the unlink).
 *
 * The completion is counted before COMPLETE is published, so a joiner
 * released by it (or anyone who saw weft_task_is_finished) finds the task
 * no longer counted in alive_tasks. Shutdown's sweep does not miss a task
 * unlinked early: it runs only once no thread can be completing one.
 */
static void complete(struct weft_task *t, void *result, int err)
{
	if (t->drop)
		t->drop(t->arg);
	WEFT_CHAOS_POINT();
	t->result = result;
	t->err = (int16_t)err;
	if (t->owned)
		weft__owned_remove(&t->rt->owned, t);
	weft__owned_count_completion(t->rt);
	/* acq_rel: the joiner's acquire of COMPLETE sees result, drop's work
	 * and the completion count above. */
	uint64_t s = weft__ts_complete(&t->state);
	if ((s & T_JOIN_INTEREST) && (s & T_JOIN_WAKER)) {
		weft_waker_wake_by_ref(&t->join_waker);
		if (weft__ts_join_waker_done(&t->state))
			/* The handle went away meanwhile and left the waker to us. */
			weft_waker_drop(&t->join_waker);
	}
	unref2(t);
}

void weft__task_run(struct weft_task *t, struct weft_cx *cx)
{
	WEFT_CHAOS_POINT();
	enum weft__ts_run run = weft__ts_run(&t->state);
	if (run == TS_RUN_STALE) {
		/* Running elsewhere or complete: this Notified is stale. */
		weft__task_unref(t);
		return;
	}
	/* t is this thread's now, before its poll: a drop run by a cancel
	 * below runs as t too. cx is the worker's for a whole LIFO chain,
	 * and it named the task polled before (complete, maybe freed):
	 * weft_current_task_id and the self-join check read it (found by a
	 * review). */
	cx->task = t;
	cx->rt = t->rt;
	switch (run) {
	case TS_RUN_STALE:
		break; /* handled above */
	case TS_RUN_CANCEL:
		/* A fiber is polled on: its blocking calls return -ECANCELED
		 * and it runs its own code to the end (fiber.c). */
		if (t->unwind)
			break;
		complete(t, NULL, -ECANCELED);
		return;
	case TS_RUN_POLL:
		/* Never pending so far, so not on the owned list: shutdown's
		 * sweep cannot cancel it. Once the runtime is closing, cancel
		 * it here as the sweep would (a fiber that has not started
		 * then never starts). A close that comes after this load is
		 * caught by the bind below. */
		if (!t->owned && atomic_load_explicit(&t->rt->closed, memory_order_relaxed)) {
			if (!t->unwind) {
				complete(t, NULL, -ECANCELED);
				return;
			}
			(void)weft__ts_cancel(&t->state); /* RUNNING: marks it, submits nothing */
		}
		break;
	}
	cx->waker = (weft_waker){ &weft__task_waker_vtable, t };
	cx->result = NULL;
	cx->result_set = false;
	cx->error = 0;
	enum weft_poll r = t->poll(t->arg, cx);
	if (__builtin_expect(weft__forked_task, 0))
		weft__fork_child_returned(); /* back in the parent's loop in a forked child */
	if (r == WEFT_READY) {
		complete(t, cx->result, cx->error);
		return;
	}
	if (r != WEFT_PENDING)
		/* A programming error like an invalid enum (often a poll form's
		 * negative errno returned as is). Taken as PENDING, the task
		 * would wait forever for a waker nobody registered. */
		weft__die("task %llu: poll function returned %d, not WEFT_READY (%d) or "
			  "WEFT_PENDING (%d)", (unsigned long long)t->id, (int)r, WEFT_READY,
			  WEFT_PENDING);
	WEFT_CHAOS_POINT(); /* wakes land between the poll and the idle transition */
	/* Pending for the first time: onto the owned list, so that shutdown
	 * finds it while it waits. Still RUNNING here, so no other thread
	 * can complete (and unlink) it before it is linked. Refused once
	 * the list is closed: the sweep has passed, cancel it ourselves. */
	if (!t->owned && weft__owned_bind(&t->rt->owned, t, cx->core) < 0) {
		if (!t->unwind) {
			complete(t, NULL, -ECANCELED);
			return;
		}
		(void)weft__ts_cancel(&t->state); /* polled again, cancelled, until it returns */
	}
	switch (weft__ts_idle(&t->state)) {
	case TS_IDLE_CANCEL:
		if (t->unwind) {
			/* Not done unwinding (it yielded, or was cancelled
			 * during this poll): poll it again, behind the others. */
			weft__ts_idle_unwind(&t->state);
			weft__schedule(t->rt, t, true);
			return;
		}
		complete(t, NULL, -ECANCELED);
		return;
	case TS_IDLE_REQUEUE:
		/* Woken during its own poll: our reference becomes the Notified,
		 * and the task goes behind the others (a yield). */
		weft__schedule(t->rt, t, true);
		return;
	case TS_IDLE_DONE:
		weft__task_unref(t);
		return;
	}
}

bool weft__task_cancel(struct weft_task *t)
{
	if (!weft__ts_cancel(&t->state))
		return false;
	weft__schedule(t->rt, t, false);
	return true;
}

bool weft__task_cancelled(const struct weft_task *t)
{
	return atomic_load_explicit(&((struct weft_task *)t)->state, memory_order_relaxed) &
	       T_CANCELLED;
}

void weft__task_drop_queued(struct weft_task *t)
{
	/* Not on the owned list (never pending), so no sweep will end it:
	 * shut it down here unless it is running or complete (a stale
	 * Notified), then drop the queue's reference. */
	if (!t->owned && !weft__ts_shutdown(&t->state)) {
		ref_inc(t); /* complete() releases the caller's reference */
		complete(t, NULL, t->started ? -EINTR : -ECANCELED);
	}
	weft__task_unref(t);
}

void weft__task_shutdown(struct weft_task *t)
{
	uint64_t s = weft__ts_shutdown(&t->state);
	if (s)
		weft__die("task %llu listed but %s at shutdown", (unsigned long long)t->id,
			  s & T_RUNNING ? "running" : "complete");
	weft__task_end_claimed(t);
}

void weft__task_end_claimed(struct weft_task *t)
{
	ref_inc(t); /* complete() releases the caller's reference */
	/* A fiber that started and had not unwound by the end of the
	 * shutdown timeout is discarded: still "cancelled while running". */
	complete(t, NULL, t->started ? -EINTR : -ECANCELED);
}

/* ------------------------------------------------------------------ wakers */

static void wake_by_val(struct weft_task *t)
{
	WEFT_CHAOS_POINT();
	switch (weft__ts_wake_by_val(&t->state)) {
	case TS_WAKE_SUBMIT:
		weft__schedule(t->rt, t, false);
		break;
	case TS_WAKE_FREE:
		weft__task_free(t);
		break;
	case TS_WAKE_NONE:
		break;
	}
}

static void wake_by_ref(struct weft_task *t)
{
	WEFT_CHAOS_POINT();
	if (weft__ts_wake_by_ref(&t->state))
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

/*
 * A handle is live exactly while JOIN_INTEREST is set: weft__task_init sets
 * it for a task spawned with a handle, only handle_release clears it, and a
 * slot on a free list never carries it (the last reference goes only after
 * the handle's; a spawn that fails after init clears the word before freeing
 * the slot). So a handle call that finds it clear is a second use of a
 * consumed handle, answered with -EINVAL before anything is touched. The
 * load is sound while the slot's slab is the runtime's; an idle worker's
 * trim gives unused slabs back to the allocator (alloc.c), and then the
 * load reads freed memory (a review crashed it with an allocator that
 * unmaps: weft.h says so). Nor can it tell a slot already reused by a
 * newer task that has a handle of its own: the stale handle then aliases
 * that one (see docs/RELIABILITY.md, "join twice"). The flag is read where the state word
 * is loaded anyway, so the check costs no extra cache miss.
 */
static inline bool handle_consumed(struct weft_task *t)
{
	return !(atomic_load_explicit(&t->state, memory_order_relaxed) & T_JOIN_INTEREST);
}

/* Give up the handle: clear JOIN_INTEREST, settle the waker slot, unref.
 * false (nothing done) if the handle was already consumed. */
static bool handle_release(struct weft_task *t)
{
	switch (weft__ts_handle_release(&t->state)) {
	case TS_RELEASE_CONSUMED:
		return false;
	case TS_RELEASE_DROP_WAKER:
		weft_waker_drop(&t->join_waker);
		break;
	case TS_RELEASE_KEEP_WAKER:
		/* The task completed with JOIN_WAKER still set: the runtime
		 * drops the waker after waking it. */
		break;
	}
	weft__task_unref(t);
	return true;
}

static int take_output(struct weft_task *t, void **result)
{
	int rc = t->err;
	/* -EINTR: a fiber cancelled while running returned; its value is
	 * handed over too, so the joiner can free what it returned. */
	void *r = rc && rc != -EINTR ? NULL : t->result;
	/* Read before the release: that may free the task. Fails only when
	 * another thread consumed the same handle meanwhile. */
	if (!handle_release(t))
		return -EINVAL;
	if (result)
		*result = r;
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
		if (weft__ts_join_take_slot(&t->state, s))
			return true;
	}
	/* The slot is ours: store, then publish with JOIN_WAKER. If the task
	 * completed first, the slot stays ours; handle_release drops it.
	 * While a blocking join waits (join_enter), a waker of someone else's
	 * may be what we replace: a join_poll's that came before it, or the
	 * blocking joiner's own, replaced by a join_poll that looked before
	 * the flag was set. Woken, not dropped: the blocking joiner registers
	 * again, the poll's next call says -EBUSY - neither waits for a wake
	 * that went to the other's waker (an extra wake is harmless). */
	if (atomic_load_explicit(&t->join_busy, memory_order_seq_cst))
		weft_waker_wake(&t->join_waker);
	else
		weft_waker_drop(&t->join_waker);
	t->join_waker = weft_waker_clone(w);
	return weft__ts_join_publish(&t->state);
}

/* A task waiting for itself would wait forever. Blocking forms (cx NULL)
 * look at the poll in progress on this thread: a fiber's, or, inside
 * weft_block_in_place (where the fiber is set aside and the thread blocks),
 * the blocking task's; inside a weft_block_on fn, the task that called
 * weft_block_on. */
static bool joins_itself(struct weft_task *task, struct weft_cx *cx)
{
	if (!cx) {
		struct weft__ctx *ctx = weft__ctx();
		cx = !ctx ? NULL : ctx->fiber ? ctx->fiber->cx : ctx->cx;
		if (!cx)
			return task == weft__block_on_task();
	}
	return cx && cx->task == task;
}

/*
 * A handle has one joiner at a time. Two blocking joins on it at once
 * took the join waker slot from each other (join_register): the one whose
 * waker was replaced was never woken and hung for good, also after the
 * other had consumed the handle (found by a review). A blocking join now
 * holds join_busy while it waits; another join of any form meanwhile says
 * -EBUSY with the handle untouched. Cleared before the output is taken:
 * take_output may free the task. seq_cst: the flag is read in
 * join_register after the slot's RMW on the state word, and must be seen
 * by whichever of a blocking and a poll joiner registers second.
 */
static bool join_enter(struct weft_task *t)
{
	return !atomic_exchange_explicit(&t->join_busy, true, memory_order_seq_cst);
}

static void join_leave(struct weft_task *t)
{
	atomic_store_explicit(&t->join_busy, false, memory_order_seq_cst);
}

static bool join_is_busy(struct weft_task *t)
{
	return atomic_load_explicit(&t->join_busy, memory_order_seq_cst);
}

int weft_join_poll(struct weft_task *task, struct weft_cx *cx, void **result)
{
	if (!task || !cx || handle_consumed(task))
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	/* cx may be a hand-made one (weft_select's blocking form on a pool
	 * thread): look at the poll in progress on this thread too, or a
	 * blocking job's select on its own handle waited out its deadline
	 * where its weft_join said -EDEADLK (found by a review). */
	if (joins_itself(task, cx) || joins_itself(task, NULL))
		return -EDEADLK;
	if (join_is_busy(task))
		return -EBUSY;
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

/* weft_join's wait, inside join_enter: 0 once the task is complete (the
 * output readable), or the error (the handle stays valid). */
static int join_wait(struct weft_task *task)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		/* Suspend the fiber until the task completes. */
		return weft__wait(join_wait_poll, task, NULL); /* -ECANCELED */
	}
	if (ctx && ctx->core)
		return -EDEADLK;
	/* A discarded fiber's dtor (local.c): -ECANCELED, the handle stays
	 * valid, as at a cancelled fiber's cancellation point and as
	 * weft_join_timeout says there - also for a task already finished,
	 * which this join used to take (found by a review). */
	if (ctx && ctx->discarding)
		return -ECANCELED;
	/* A fiber's weft_block_in_place fn: through weft__wait, whose wait
	 * there ends with -ECANCELED once the fiber is cancelled or its
	 * runtime closes (wait.c), as weft_join_timeout's already did. Parked
	 * on the joined task alone, an aborted fiber could not unwind, and
	 * shutdown waited for it until its timeout, destroy for good (found
	 * by a review). */
	if (ctx && (ctx->fiber_in_place || weft__ctx_poll_in_place(ctx))) {
		/* a poll task's fn too: its wait ends with -ECANCELED once its
		 * runtime's workers stop (wait.c) */
		return weft__wait(join_wait_poll, task, NULL); /* -ECANCELED, -ENOMEM */
	}
	if (atomic_load_explicit(&task->state, memory_order_acquire) & T_COMPLETE)
		return 0;
	/* A drop the shutdown of task's runtime runs on this thread (its
	 * sweep ends a parent whose drop aborts and joins a child): the task
	 * may be one that shutdown ends only after this call returns, and
	 * the join waited for itself, for good (found by a review).
	 * -EDEADLK, as on a worker, where a drop runs otherwise. */
	if (weft__in_own_shutdown(task->rt))
		return -EDEADLK;
	struct weft__tparker *p = weft__tparker_self();
	if (!p)
		return -ENOMEM;
	weft_waker w = weft__tparker_waker(p);
	while (!join_register(task, &w))
		weft__tparker_park(p, weft__cpu_spare(task->rt));
	weft_waker_drop(&w);
	return 0;
}

/* What weft_join and weft_join_timeout refuse before anything else: 0,
 * or the error (the handle untouched). */
static int join_refused(struct weft_task *task)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	if (handle_consumed(task))
		return -EINVAL;
	if (joins_itself(task, NULL))
		return -EDEADLK;
	return 0;
}

int weft_join(struct weft_task *task, void **result)
{
	int rc = join_refused(task);
	if (rc)
		return rc;
	/* A plain thread joining a task that has finished, with nobody
	 * waiting on it: nothing to wait for, so no flag to hold - its
	 * exchange and store cost spawn_many_remote_busy 15% (a join per
	 * task). What join_wait does for a finished task elsewhere (a
	 * worker's -EDEADLK, a discarded fiber's -ECANCELED, a cancelled
	 * fiber's) it still decides. */
	struct weft__ctx *ctx = weft__ctx();
	if ((!ctx || !(ctx->fiber || ctx->core || ctx->discarding || ctx->fiber_in_place ||
		       weft__ctx_poll_in_place(ctx))) &&
	    (atomic_load_explicit(&task->state, memory_order_acquire) & T_COMPLETE) &&
	    !join_is_busy(task))
		return take_output(task, result);
	if (!join_enter(task))
		return -EBUSY;
	rc = join_wait(task);
	join_leave(task);
	return rc ? rc : take_output(task, result);
}

int weft_detach(struct weft_task *task)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	return handle_release(task) ? 0 : -EINVAL;
}

int weft_abort(struct weft_task *task)
{
	if (!task)
		return -EINVAL;
	if (WEFT__FORKED(task->rt))
		return -ECHILD;
	switch (weft__ts_abort(&task->state)) {
	case TS_ABORT_CONSUMED:
		return -EINVAL; /* see handle_consumed */
	case TS_ABORT_SUBMIT:
		weft__schedule(task->rt, task, false);
		return 0;
	case TS_ABORT_NONE:
		/* finished, or the poller (or the queued run) sees CANCELLED;
		 * a blocking job's queued run may be far off (blocking.c) */
		weft__blocking_abort(task);
		return 0;
	}
	return 0;
}

bool weft_task_is_finished(const struct weft_task *task)
{
	return task && (atomic_load_explicit(&((struct weft_task *)task)->state,
					     memory_order_acquire) & T_COMPLETE);
}

uint64_t weft_task_id(const struct weft_task *task) { return task ? task->id : 0; }

uint64_t weft_current_task_id(void)
{
	/* the poll in progress on this thread, as joins_itself reads it */
	struct weft__ctx *ctx = weft__ctx();
	if (!ctx)
		return 0;
	struct weft_cx *cx = ctx->fiber ? ctx->fiber->cx : ctx->cx;
	if (cx && cx->task)
		return cx->task->id;
	/* a discarded fiber's dtors run "as if on the fiber" with no poll in
	 * progress (local.c): they said 0, and a dtor that logs or ends a
	 * trace by task id lost it (found by a review) */
	if (ctx->fiber_in_place)
		return ctx->fiber_in_place->task_id;
	/* a weft_block_on fn called from a task's code (a poll task's
	 * weft_block_in_place fn, a blocking job) is still that task's, as
	 * weft_join's self-join check counts it and as a fiber's is (its
	 * fiber_in_place, above): it said 0 there, the fiber's id in the
	 * same place for a fiber (found by a review) */
	struct weft_task *bo = weft__block_on_task();
	return bo ? bo->id : 0;
}

/* ------------------------------------------------------------ poll context */

/* The exported forms; the library itself uses runtime.h's inlines. */
#undef weft_cx_waker
#undef weft_budget_poll_proceed
#undef weft_budget_refund

const weft_waker *weft_cx_waker(struct weft_cx *cx) { return weft__cx_waker(cx); }

void weft_cx_set_result(struct weft_cx *cx, void *result)
{
	cx->result = result;
	cx->result_set = true;
}

struct weft_runtime *weft_cx_runtime(struct weft_cx *cx) { return cx->rt; }
uint64_t weft_cx_task_id(struct weft_cx *cx) { return cx->task ? cx->task->id : 0; }

enum weft_poll weft_budget_poll_proceed(struct weft_cx *cx)
{
	return weft__budget_poll_proceed(cx);
}

void weft_budget_refund(struct weft_cx *cx) { weft__budget_refund(cx); }

unsigned weft_budget_remaining(struct weft_cx *cx) { return *cx->budget; }

bool weft__task_forked(const struct weft_task *t) { return WEFT__FORKED(t->rt); }

bool weft__join_is_self(struct weft_task *t, struct weft_cx *cx)
{
	return joins_itself(t, cx) || joins_itself(t, NULL);
}

/* Relaxed: the join set reads the flag under its lock, which the marker
 * took after the store; a reader in another set's lock only compares. */
void weft__task_mark_joinset(struct weft_task *t)
{
	atomic_store_explicit(&t->in_joinset, true, memory_order_relaxed);
}

static bool may_be_member(struct weft_task *t, bool spawning)
{
	return t && (spawning || atomic_load_explicit(&t->in_joinset, memory_order_relaxed));
}

bool weft__joiner_may_be_member(struct weft_cx *cx, bool spawning)
{
	struct weft__ctx *ctx = weft__ctx();
	struct weft_cx *own = !ctx ? NULL : ctx->fiber ? ctx->fiber->cx : ctx->cx;
	/* the tasks weft__join_is_self compares: cx's, and joins_itself's
	 * with no cx (the poll in progress here, or weft_block_on's task) */
	return may_be_member(cx ? cx->task : NULL, spawning) ||
	       may_be_member(own ? own->task : weft__block_on_task(), spawning);
}

bool weft__join_waits_on_own_shutdown(struct weft_task *t)
{
	if (!weft__in_a_shutdown() || !weft__in_own_shutdown(t->rt))
		return false;
	/* a consumed handle is no wait: its join says -EINVAL */
	uint64_t st = atomic_load_explicit(&t->state, memory_order_acquire);
	return (st & T_JOIN_INTEREST) && !(st & T_COMPLETE);
}

int weft_join_timeout(struct weft_task *task, void **result, uint64_t timeout_ns)
{
	int rc = join_refused(task);
	if (rc)
		return rc;
	/* as weft_join: a drop its runtime's shutdown runs here */
	if (weft__in_own_shutdown(task->rt) &&
	    !(atomic_load_explicit(&task->state, memory_order_acquire) & T_COMPLETE))
		return -EDEADLK;
	if (!join_enter(task))
		return -EBUSY;
	uint64_t now = weft__now_ns();
	uint64_t deadline = timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
	rc = weft__wait_deadline(join_wait_poll, task, NULL, deadline);
	join_leave(task);
	if (rc)
		return rc; /* -ETIMEDOUT, -EDEADLK, -ENOMEM: the handle stays valid */
	return take_output(task, result);
}
