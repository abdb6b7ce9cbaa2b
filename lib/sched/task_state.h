/*
 * task_state.h - the task state word: its bits and every transition on it,
 * as functions of the word alone.
 *
 * task.c drives these; what a transition tells the caller to do next
 * (enqueue a Notified, run drop, wake the joiner, free the memory) stays in
 * task.c. Nothing here touches a task, a queue or a waker, so the same code
 * also compiles into tests/harness/state_harness.c, a small program for a
 * C11 weak-memory model checker. Everything is static inline and compiles
 * into task.c exactly as the open-coded loops did.
 *
 * Word: flags in the low 6 bits, reference count above (T_REF_ONE each).
 * See task.c for the reference rules and the invariants. Orderings: every
 * CAS is acq_rel (success) / acquire (failure): a transition that hands the
 * task to another thread (NOTIFIED set by a waker -> the run on a worker,
 * COMPLETE -> the joiner) is a release the other side acquires. Reference
 * increments are relaxed (the incrementer already holds one); decrements
 * are acq_rel, so whoever frees sees every earlier use.
 *
 * Memory-ordering argument in the C11 model alone (x86 hides the weak
 * cases: there every locked RMW is a full fence). After weft__task_init's
 * relaxed store (the task reaches other threads only through a queue's
 * release/acquire or the spawner's handle), every write to the word is an
 * RMW. Two facts carry everything below:
 *  (R1) RMWs on one location are totally ordered (modification order) and
 *       each reads the value just before its own write, so of two threads
 *       that both RMW the word, the later one sees the earlier one's write.
 *       This is what replaces seq_cst for the store->load (SB) pairs
 *       here: poller "read the event, then idle-CAS" against waker "write
 *       the event, then wake-CAS", and the queued run against a wake of a
 *       task already NOTIFIED (wake_by_ref, note below).
 *  (R2) Every RMW, relaxed ones included, continues the release sequence
 *       of every earlier release on the word (RMW chain). An acquire that
 *       reads any later value synchronises with all of them.
 *
 *  operation          order  pairs with / shape / why enough
 *  ref_inc            rlx    nothing: the caller holds a reference, so the
 *                            count cannot reach 0 meanwhile, and a clone
 *                            publishes no data. Still an RMW: (R2) holds.
 *  unref              ac_rl  each drop's release with the last drop's
 *                            acquire, through the chain of decrements
 *                            (R2): MP, every use happens before the free.
 *  run (CAS)          ac_rl  acquire: the idle CAS that ended the previous
 *                            poll and any waker CAS since (R2): MP, this
 *                            poll sees the last poll's and the wakers'
 *                            writes on whatever worker it runs.
 *  idle (CAS)         ac_rl  release: the next run / completer / shutdown
 *                            (MP). Against a concurrent wake: (R1), see
 *                            above; if the wake came first the idle CAS
 *                            sees NOTIFIED (requeue), else the wake sees
 *                            RUNNING clear and submits; either way the
 *                            next run acquires the waker's release (MP).
 *  complete (xor)     ac_rl  release: result, err, drop's effects -> the
 *                            joiner's acquire that sees COMPLETE (MP).
 *                            acquire: join_publish's release, so the
 *                            waker in the slot is visible (MP).
 *  join_waker_done    ac_rl  release: the completer's last use of the slot
 *                            -> handle_release / join_take_slot (MP);
 *                            acquire: handle_release's, before the
 *                            completer drops a slot left to it (MP).
 *  shutdown (CAS)     ac_rl  acquire: the last idle CAS, so drop on the
 *                            shutdown thread sees the last poll (MP).
 *  wake_by_val (CAS)  ac_rl  release: the waker's writes -> the next run
 *                            (MP, or (R1) when racing idle); acquire: on
 *                            TS_WAKE_FREE it frees, as unref.
 *  wake_by_ref (CAS)  ac_rl  release as wake_by_val. Also writes (the same
 *                            value) when the task is already NOTIFIED and
 *                            idle; see the note below.
 *  handle_release     ac_rl  release: the handle's reads of the output and
 *                            its slot use -> the completer / last unref;
 *                            acquire: join_waker_done's release, before
 *                            it drops the slot (DROP_WAKER after COMPLETE).
 *  join_take_slot     ac_rl  acquire (success or failure): COMPLETE seen
 *                            -> the output is readable (MP).
 *  join_publish       ac_rl  release: the slot's waker -> complete's
 *                            acquire (MP); acquire: as join_take_slot.
 *  abort (CAS)        ac_rl  release: CANCELLED -> run / idle; no data
 *                            rides on the bit, the queue hands the task.
 *  cancel (CAS)       ac_rl  as abort (shutdown asking fibers to unwind).
 *  idle_unwind (CAS)  ac_rl  as idle: the requeued run acquires the poll.
 *  first acquire      acq    used only on paths that return without a
 *  load of each loop         write: STALE, CANCEL, CONSUMED, and COMPLETE
 *                            (output readable, MP as above).
 * Nothing here is seq_cst: no protocol on the word needs a store->load
 * order between two locations beyond what (R1) gives.
 *
 * wake_by_ref on an already NOTIFIED, idle task used to return after its
 * acquire load, without writing. That leaves a real SB: waker [write the
 * event; load the word = NOTIFIED] against the queued run [run-CAS the
 * word; read the event = old]. Without seq_cst on all four nothing forbids
 * both old values, and then the poll misses the event and no wake follows:
 * a lost wakeup. Concrete case in task.c: complete() does its COMPLETE RMW
 * on task T, then wakes T's joiner J by ref; if J is already queued, J's
 * next poll may load T's word without COMPLETE and return PENDING for
 * good. There x86 forbids it (the locked RMW before the load is a fence);
 * C11 does not, nor AArch64 when acquire loads are RCpc (LDAPR), POWER or
 * RISC-V. With a plain store for the event even x86 shows it (store
 * buffering: a scratch litmus of a relaxed store then this wake, against
 * run + load, lost 532 wakes in 2M tries on x86_64, none after the fix).
 * Writing the word (same value) puts the wake in the word's modification
 * order (R1): before the run (the run acquires it, MP) or after (the CAS
 * fails, retries, finds RUNNING and sets NOTIFIED).
 */
#ifndef WEFT_TASK_STATE_H
#define WEFT_TASK_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* State word bits. The reference count lives above the flags. */
#define T_RUNNING       (1ull << 0)
#define T_COMPLETE      (1ull << 1)
#define T_LIFECYCLE     (T_RUNNING | T_COMPLETE)
#define T_NOTIFIED      (1ull << 2)
#define T_JOIN_INTEREST (1ull << 3)
#define T_JOIN_WAKER    (1ull << 4)
#define T_CANCELLED     (1ull << 5)
#define T_REF_SHIFT     6
#define T_REF_ONE       (1ull << T_REF_SHIFT)
#define T_FLAGS_MASK    (T_REF_ONE - 1)
#define T_REFS(s)       ((s) >> T_REF_SHIFT)

#define WEFT__TS_CAS(w, s, ns) \
	atomic_compare_exchange_weak_explicit((w), &(s), (ns), \
					      memory_order_acq_rel, memory_order_acquire)

/* A new task: NOTIFIED, references for the owned list and the first queue
 * entry, and with `join` the handle's and JOIN_INTEREST. */
static inline uint64_t weft__ts_initial(bool join)
{
	return T_NOTIFIED | (join ? 3 * T_REF_ONE | T_JOIN_INTEREST : 2 * T_REF_ONE);
}

/* ------------------------------------------------------------ references */

/* Add one reference; returns the word before. */
static inline uint64_t weft__ts_ref_inc(_Atomic uint64_t *w)
{
	return atomic_fetch_add_explicit(w, T_REF_ONE, memory_order_relaxed);
}

/* Drop n references; returns the count before (n of them: the last ones,
 * the caller frees). */
static inline uint64_t weft__ts_unref(_Atomic uint64_t *w, unsigned n)
{
	return T_REFS(atomic_fetch_sub_explicit(w, n * T_REF_ONE, memory_order_acq_rel));
}

/* ------------------------------------------------------------- the poller */

enum weft__ts_run {
	TS_RUN_STALE,   /* running elsewhere or complete: drop the Notified's reference */
	TS_RUN_POLL,    /* RUNNING now: poll */
	TS_RUN_CANCEL,  /* RUNNING now, but cancelled: complete with -ECANCELED */
};

/* The holder of a Notified reference: NOTIFIED -> RUNNING. */
static inline enum weft__ts_run weft__ts_run(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_LIFECYCLE)
			return TS_RUN_STALE;
		ns = (s | T_RUNNING) & ~T_NOTIFIED;
	} while (!WEFT__TS_CAS(w, s, ns));
	return ns & T_CANCELLED ? TS_RUN_CANCEL : TS_RUN_POLL;
}

enum weft__ts_idle {
	TS_IDLE_DONE,     /* idle: drop the poller's reference */
	TS_IDLE_REQUEUE,  /* woken during the poll: the poller's reference becomes the Notified */
	TS_IDLE_CANCEL,   /* cancelled during the poll: complete with -ECANCELED */
};

/* After a poll returned PENDING: RUNNING -> idle. */
static inline enum weft__ts_idle weft__ts_idle(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_CANCELLED)
			return TS_IDLE_CANCEL;
		ns = s & ~T_RUNNING;
	} while (!WEFT__TS_CAS(w, s, ns));
	return ns & T_NOTIFIED ? TS_IDLE_REQUEUE : TS_IDLE_DONE;
}

/* After a cancelled task that unwinds (a fiber) returned PENDING:
 * RUNNING -> idle with NOTIFIED, so the poller's reference becomes the
 * Notified and the task is polled again (it must run until it returns).
 * While RUNNING no Notified reference exists (NOTIFIED only means "poll
 * again"), so setting the bit here keeps the invariant. */
static inline void weft__ts_idle_unwind(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		ns = (s & ~T_RUNNING) | T_NOTIFIED;
	} while (!WEFT__TS_CAS(w, s, ns));
}

/* RUNNING -> COMPLETE, after drop ran and the outcome was stored (acq_rel:
 * the joiner's acquire of COMPLETE sees both). Returns the word before: with
 * JOIN_INTEREST and JOIN_WAKER set, the caller wakes the join waker and then
 * calls weft__ts_join_waker_done. */
static inline uint64_t weft__ts_complete(_Atomic uint64_t *w)
{
	return atomic_fetch_xor_explicit(w, T_RUNNING | T_COMPLETE, memory_order_acq_rel);
}

/* The completer has woken the join waker: hand the slot back. true if the
 * handle went away meanwhile and left the waker to the caller to drop. */
static inline bool weft__ts_join_waker_done(_Atomic uint64_t *w)
{
	uint64_t s = atomic_fetch_and_explicit(w, ~T_JOIN_WAKER, memory_order_acq_rel);
	return !(s & T_JOIN_INTEREST);
}

/* Shutdown: cancel an idle task on the shutdown thread (idle -> RUNNING |
 * CANCELLED). Returns 0, or the word found running or complete. */
static inline uint64_t weft__ts_shutdown(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_LIFECYCLE)
			return s;
		ns = s | T_RUNNING | T_CANCELLED;
	} while (!WEFT__TS_CAS(w, s, ns));
	return 0;
}

/* ----------------------------------------------------------------- wakers */

enum weft__ts_wake {
	TS_WAKE_NONE,    /* nothing more to do */
	TS_WAKE_SUBMIT,  /* enqueue the task: the waker's reference is the Notified */
	TS_WAKE_FREE,    /* the waker's reference was the last: free the task */
};

/* Wake by value: consumes the waker's reference. */
static inline enum weft__ts_wake weft__ts_wake_by_val(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
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
	} while (!WEFT__TS_CAS(w, s, ns));
	if (submit)
		return TS_WAKE_SUBMIT;
	return T_REFS(ns) == 0 ? TS_WAKE_FREE : TS_WAKE_NONE;
}

/* Wake by reference: true when the caller must enqueue the task (a new
 * reference, already counted, is the Notified). */
static inline bool weft__ts_wake_by_ref(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (s & T_RUNNING) {
			ns = s | T_NOTIFIED;
		} else if (s & T_COMPLETE) {
			return false;
		} else if (s & T_NOTIFIED) {
			/* Already queued: write the same value anyway, a release
			 * the queued run acquires (see the header: a load alone
			 * is SB with that run, and can lose this wake). */
			ns = s;
		} else {
			ns = (s | T_NOTIFIED) + T_REF_ONE;
			submit = true;
		}
	} while (!WEFT__TS_CAS(w, s, ns));
	return submit;
}

/* ----------------------------------------------------------- join handles */

enum weft__ts_release {
	TS_RELEASE_CONSUMED,    /* the handle was consumed before: nothing done */
	TS_RELEASE_DROP_WAKER,  /* released; the waker slot is the caller's to drop */
	TS_RELEASE_KEEP_WAKER,  /* released; the completer drops the waker after waking it */
};

/* Give up the handle: clear JOIN_INTEREST (and JOIN_WAKER unless the task
 * completed, in which case the completer still owns the slot). The caller
 * then drops the handle's reference. */
static inline enum weft__ts_release weft__ts_handle_release(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		if (!(s & T_JOIN_INTEREST))
			return TS_RELEASE_CONSUMED;
		if (s & T_COMPLETE)
			ns = s & ~T_JOIN_INTEREST;
		else
			ns = s & ~(T_JOIN_INTEREST | T_JOIN_WAKER);
	} while (!WEFT__TS_CAS(w, s, ns));
	return (s & T_COMPLETE) && (s & T_JOIN_WAKER) ? TS_RELEASE_KEEP_WAKER
						      : TS_RELEASE_DROP_WAKER;
}

/* The joiner takes the waker slot back (to replace the waker), starting
 * from the word `s` it loaded. true: the task completed first (the output
 * is readable and the slot stays with the completer until it is done). */
static inline bool weft__ts_join_take_slot(_Atomic uint64_t *w, uint64_t s)
{
	uint64_t ns;
	do {
		if (s & T_COMPLETE)
			return true;
		ns = s & ~T_JOIN_WAKER;
	} while (!WEFT__TS_CAS(w, s, ns));
	return false;
}

/* The joiner stored a waker in the slot: publish it with JOIN_WAKER. true:
 * the task completed first (the slot stays the joiner's). */
static inline bool weft__ts_join_publish(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	do {
		if (s & T_COMPLETE)
			return true;
		ns = s | T_JOIN_WAKER;
	} while (!WEFT__TS_CAS(w, s, ns));
	return false;
}

enum weft__ts_abort {
	TS_ABORT_NONE,      /* finished, already cancelled, or the poller / queued run sees CANCELLED */
	TS_ABORT_SUBMIT,    /* idle: enqueue it (a new reference, already counted, is the Notified) */
	TS_ABORT_CONSUMED,  /* the handle was consumed before: nothing done */
};

static inline enum weft__ts_abort weft__ts_abort(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (!(s & T_JOIN_INTEREST))
			return TS_ABORT_CONSUMED;
		if (s & (T_COMPLETE | T_CANCELLED))
			return TS_ABORT_NONE;
		if (s & (T_RUNNING | T_NOTIFIED)) {
			ns = s | T_NOTIFIED | T_CANCELLED;
		} else {
			ns = (s | T_NOTIFIED | T_CANCELLED) + T_REF_ONE;
			submit = true;
		}
	} while (!WEFT__TS_CAS(w, s, ns));
	return submit ? TS_ABORT_SUBMIT : TS_ABORT_NONE;
}

/* Shutdown's request to a fiber to unwind: abort without a handle. true:
 * the task was idle and the caller enqueues it (a new reference, already
 * counted, is the Notified). */
static inline bool weft__ts_cancel(_Atomic uint64_t *w)
{
	uint64_t s = atomic_load_explicit(w, memory_order_acquire);
	uint64_t ns;
	bool submit;
	do {
		submit = false;
		if (s & (T_COMPLETE | T_CANCELLED))
			return false;
		if (s & (T_RUNNING | T_NOTIFIED)) {
			ns = s | T_NOTIFIED | T_CANCELLED;
		} else {
			ns = (s | T_NOTIFIED | T_CANCELLED) + T_REF_ONE;
			submit = true;
		}
	} while (!WEFT__TS_CAS(w, s, ns));
	return submit;
}

#endif /* WEFT_TASK_STATE_H */
