/*
 * state_harness.c - the task state word (lib/sched/task_state.h, the transitions
 * task.c drives) under a worker, a waker and the join handle's owner.
 *
 * One task, spawned with a join handle, and one waker clone; the run queue
 * is a counter of queued Notified references (0 or 1). The task's poll
 * returns READY once `event` is set, PENDING before.
 *  - worker: three rounds of "take the queued Notified, if any, and run it"
 *    (run -> poll -> idle / complete, as weft__task_run does);
 *  - waker:  sets `event`, wakes by reference, then wakes by value (which
 *    consumes its reference), as a sync primitive releasing a waiter does;
 *    in modes 6-7 it wakes by reference only and then drops its reference,
 *    as task.c's complete() wakes a join waker;
 *  - handle: per mode, abort first or not, then join (register a join waker
 *    and take the output if already complete), detach, or register a join
 *    waker and then detach.
 * After the threads, the main thread runs whatever is still queued (the
 * worker would have), finishes a join left waiting, and checks.
 *
 * Checks: drop/complete exactly once; never polled after completing; at
 * most one Notified queued at any time; the memory freed exactly once, after
 * every reference went (no underflow); no lost wakeup: `event` was set and
 * the wake delivered, so the task has completed once the queue is drained;
 * a join waker published before completion is woken, and every join waker
 * stored is dropped exactly once by whoever owns the slot then; the joiner
 * reads the result the completer wrote (plain data published by COMPLETE);
 * without an abort the outcome is success.
 *
 * Modes (HARNESS_MODE for a checker; the plain run cycles through all):
 * 0 join, 2 detach, 4 register a join waker then detach (weft_join_poll
 * PENDING, then weft_detach), 6 join with a by-ref-only waker; +1: abort
 * first. Mode 6 is the SB shape of task_state.h's note on wake_by_ref: the
 * task starts NOTIFIED and queued, so a wake before the first run finds it
 * NOTIFIED; were that wake a load only, the first poll could miss `event`
 * (a checker finds it; x86 practically never shows it).
 * --broken: the waker sets `event` but drops its reference instead of
 * waking; the no-lost-wakeup check must catch it.
 */
#include "harness.h"

/* The library's own transitions, not a copy. */
#include "../../lib/sched/task_state.h"

/* mode: bit 0 abort first; mode >> 1: how the handle goes */
enum { M_ABORT = 1, H_JOIN = 0, H_DETACH = 1, H_REGISTER_DETACH = 2, H_JOIN_BYREF = 3,
       N_MODES = 8 };

#define HARNESS_PATHS(X) X(poll_pending) X(poll_ready) X(woken_while_running) \
	X(run_cancelled) X(idle_cancelled) X(wake_submits) X(abort_submits) X(waker_frees) \
	X(join_registered) X(join_completed_first) X(completer_drops_waker) X(run_by_main)
HARNESS_DECLARE_PATHS()

static _Atomic uint64_t word;     /* the task's state word */
static atomic_int queued;         /* Notified references in the run queue */
static atomic_int event;          /* what the task waits for */
static atomic_int polls, completions, frees;
static int result;                /* completer writes, joiner reads after COMPLETE */
static int join_slot;             /* the join waker slot: plain, the JOIN_WAKER protocol guards it */
static atomic_int slot_stores, slot_drops, join_woken;
static bool handle_left;          /* a join waiting: the main thread finishes it */
static unsigned mode;
static bool broken_run;

static void submit(void)
{
	/* acq_rel, like the ring (release store of tail, acquire on the way
	 * out) - no stronger, so the harness hides no missing order */
	int before = atomic_fetch_add_explicit(&queued, 1, memory_order_acq_rel);
	assert(before == 0 && "two Notified references queued");
	(void)before;
}

static void task_free(void)
{
	int before = atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
	assert(before == 0 && "task freed twice");
	/* relaxed: only the protocol's own order makes the completion visible */
	assert(atomic_load_explicit(&completions, memory_order_relaxed) == 1 &&
	       "task freed before it completed");
	(void)before;
}

static void unref(unsigned n)
{
	uint64_t refs = weft__ts_unref(&word, n);
	assert(refs >= n && "reference count underflow");
	if (refs == n)
		task_free();
}

static void slot_drop(void)
{
	assert(join_slot == 1 && "dropping an empty join waker slot");
	join_slot = 0;
	atomic_fetch_add_explicit(&slot_drops, 1, memory_order_relaxed);
}

/* task.c complete(): drop, outcome, COMPLETE, wake the joiner, unref2. */
static void complete(bool cancelled)
{
	int before = atomic_fetch_add_explicit(&completions, 1, memory_order_relaxed);
	assert(before == 0 && "completed (drop ran) twice");
	(void)before;
	result = cancelled ? -1 : 42;
	HARNESS_JITTER();
	uint64_t s = weft__ts_complete(&word);
	assert(s & T_RUNNING);
	if ((s & T_JOIN_INTEREST) && (s & T_JOIN_WAKER)) {
		assert(join_slot == 1 && "the published join waker is not visible");
		atomic_store_explicit(&join_woken, 1, memory_order_relaxed);
		HARNESS_JITTER();
		if (weft__ts_join_waker_done(&word)) {
			HARNESS_HIT(completer_drops_waker);
			slot_drop(); /* the handle went away and left it to us */
		}
	}
	unref(2); /* the poller's and the owned list's */
}

/* task.c weft__task_run(), for the holder of the queued Notified. */
static void run_notified(void)
{
	switch (weft__ts_run(&word)) {
	case TS_RUN_STALE:
		/* not reached here: only shutdown leaves a stale Notified */
		unref(1);
		return;
	case TS_RUN_CANCEL:
		HARNESS_HIT(run_cancelled);
		complete(true);
		return;
	case TS_RUN_POLL:
		break;
	}
	assert(atomic_load_explicit(&completions, memory_order_relaxed) == 0 &&
	       "polled after completion");
	atomic_fetch_add_explicit(&polls, 1, memory_order_relaxed);
	if (atomic_load_explicit(&event, memory_order_relaxed)) {
		HARNESS_HIT(poll_ready);
		complete(false);
		return;
	}
	HARNESS_HIT(poll_pending);
	HARNESS_JITTER();
	switch (weft__ts_idle(&word)) {
	case TS_IDLE_CANCEL:
		HARNESS_HIT(idle_cancelled);
		complete(true);
		return;
	case TS_IDLE_REQUEUE:
		HARNESS_HIT(woken_while_running);
		submit();
		return;
	case TS_IDLE_DONE:
		unref(1);
		return;
	}
}

static void *worker(void *arg)
{
	(void)arg;
	harness_seed(1);
	for (int round = 0; round < 3; round++) {
		HARNESS_JITTER();
		if (atomic_exchange_explicit(&queued, 0, memory_order_acq_rel))
			run_notified();
	}
	return NULL;
}

static void *waker(void *arg)
{
	(void)arg;
	harness_seed(2);
	if (broken_run) {
		/* Planted bug: set the event but wake nobody. Wait for the first
		 * poll to end first (mode 0: nothing else wakes the task), so the
		 * loss is certain. */
		while (atomic_load(&polls) == 0 || (atomic_load(&word) & (T_RUNNING | T_NOTIFIED)))
			;
		atomic_store_explicit(&event, 1, memory_order_relaxed);
		unref(1);
		return NULL;
	}
	HARNESS_JITTER();
	atomic_store_explicit(&event, 1, memory_order_relaxed);
	if (weft__ts_wake_by_ref(&word)) {
		HARNESS_HIT(wake_submits);
		submit();
	}
	HARNESS_JITTER();
	if (mode >> 1 == H_JOIN_BYREF) {
		unref(1); /* by reference only: the drop is not a wake */
		return NULL;
	}
	switch (weft__ts_wake_by_val(&word)) {
	case TS_WAKE_SUBMIT:
		HARNESS_HIT(wake_submits);
		submit();
		break;
	case TS_WAKE_FREE:
		HARNESS_HIT(waker_frees);
		task_free();
		break;
	case TS_WAKE_NONE:
		break;
	}
	return NULL;
}

/* task.c handle_release() + unref. */
static void handle_release(void)
{
	switch (weft__ts_handle_release(&word)) {
	case TS_RELEASE_CONSUMED:
		assert(!"handle released twice");
		break;
	case TS_RELEASE_DROP_WAKER:
		if (join_slot)
			slot_drop();
		break;
	case TS_RELEASE_KEEP_WAKER:
		break;
	}
	unref(1);
}

static void take_output(void)
{
	int r = result; /* after an acquire that saw COMPLETE */
	assert((r == 42 || r == -1) && "the joiner does not see the result");
	if (!(mode & M_ABORT))
		assert(r == 42 && "cancelled without an abort");
	handle_release();
}

static void *handle(void *arg)
{
	(void)arg;
	harness_seed(3);
	HARNESS_JITTER();
	if (mode & M_ABORT) {
		switch (weft__ts_abort(&word)) {
		case TS_ABORT_SUBMIT:
			HARNESS_HIT(abort_submits);
			submit();
			break;
		case TS_ABORT_CONSUMED:
			assert(!"abort saw the handle consumed");
			break;
		case TS_ABORT_NONE:
			break;
		}
		HARNESS_JITTER();
	}
	if (mode >> 1 == H_DETACH) {
		handle_release();
		return NULL;
	}
	/* task.c join_register(), with a fresh waker and an empty slot */
	if (atomic_load_explicit(&word, memory_order_acquire) & T_COMPLETE) {
		take_output();
		return NULL;
	}
	join_slot = 1;
	atomic_fetch_add_explicit(&slot_stores, 1, memory_order_relaxed);
	HARNESS_JITTER();
	if (weft__ts_join_publish(&word)) {
		HARNESS_HIT(join_completed_first);
		take_output(); /* completed first: the slot stayed ours */
		return NULL;
	}
	HARNESS_HIT(join_registered);
	if (mode >> 1 == H_REGISTER_DETACH) {
		/* weft_join_poll said PENDING, then the poller detached */
		HARNESS_JITTER();
		handle_release();
		return NULL;
	}
	handle_left = true; /* registered: would park until woken */
	return NULL;
}

static void scenario(unsigned iter, bool broken)
{
	mode = HARNESS_PICK_MODE(iter, N_MODES);
	broken_run = broken;
	if (broken)
		mode = 0;
	/* spawned with a handle, plus one waker clone */
	atomic_init(&word, weft__ts_initial(true) + T_REF_ONE);
	atomic_init(&queued, 1);
	atomic_init(&event, 0);
	atomic_init(&polls, 0);
	atomic_init(&completions, 0);
	atomic_init(&frees, 0);
	atomic_init(&slot_stores, 0);
	atomic_init(&slot_drops, 0);
	atomic_init(&join_woken, 0);
	result = 0;
	join_slot = 0;
	handle_left = false;

	void *(*fn[3])(void *) = { worker, waker, handle };
	void *arg[3] = { NULL, NULL, NULL };
	harness_run(3, fn, arg);

	/* What the worker would still run. Bounded: event is set, so the next
	 * poll completes. */
	for (int i = 0; i < 3 && atomic_exchange(&queued, 0); i++) {
		HARNESS_HIT(run_by_main);
		run_notified();
	}
	assert(atomic_load(&queued) == 0);
	assert(atomic_load(&completions) == 1 && "lost wakeup: woken, yet never polled again");
	if (handle_left) {
		assert(atomic_load(&join_woken) && "the join waker was never woken");
		take_output();
	}
	assert(atomic_load(&frees) == 1 && "task memory not freed");
	assert(T_REFS(atomic_load(&word)) == 0);
	assert(atomic_load(&slot_drops) == atomic_load(&slot_stores) && join_slot == 0 &&
	       "a join waker leaked");
	assert(atomic_load(&polls) <= 3);
}

HARNESS_MAIN(scenario)
