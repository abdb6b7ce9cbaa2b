/*
 * park.c - putting threads to sleep and waking them.
 *
 * Parker (one per worker): a 32-bit futex word, EMPTY / PARKED / NOTIFIED
 * (or DRIVER while its thread sleeps in the driver). The handshake on the
 * word, and why it loses no wakeup, is in park_core.h; this file adds the
 * futex calls, the driver's eventfd and the thread parkers.
 *
 * Thread parker: the same word in a refcounted heap object, one per thread
 * that blocks outside the runtime (weft_join). Wakers made from it hold a
 * reference, so a waker may outlive the wait that created it.
 */
#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

/* schedtop reads a worker's parker word (probe_abi.h) to tell one asleep
 * in its park since before it attached */
_Static_assert(PARK_PARKED == WEFT_PROBE_PARK_WORD_PARKED &&
		       PARK_DRIVER == WEFT_PROBE_PARK_WORD_DRIVER,
	       "the parker word's values are published in probe_abi.h");

void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/*
 * Contended: probe the word with exponential back-off (1, 2, 4 ... 64
 * pauses between probes), SLOCK_SPIN_PAUSES pauses or a few more in all
 * (~16 us at the 26 ns a PAUSE takes on the machine we measure on), then
 * sleep on the futex. Probing after every pause made two cores strictly
 * alternate on a busy lock: each acquisition paid a transfer of the lock's
 * line (and the data under it) from the other core. Backing off lets the
 * holder take it again while the line is still its own, several critical
 * sections per transfer.
 */
#define SLOCK_SPIN_PAUSES 600u
#define SLOCK_BACKOFF_MAX 64u

void weft__slock_lock_slow(struct weft__slock *l)
{
	for (unsigned wait = 1, spent = 0; spent < SLOCK_SPIN_PAUSES;) {
		for (unsigned k = 0; k < wait; k++)
			weft__cpu_relax();
		spent += wait;
		uint32_t e = 0;
		if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
		    /* acquire: pairs with the release in weft__slock_unlock. */
		    atomic_compare_exchange_weak_explicit(&l->v, &e, 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
		if (wait < SLOCK_BACKOFF_MAX)
			wait <<= 1;
	}
	/* Announce a sleeper (2) and sleep while held; whoever takes it here
	 * keeps 2, so its unlock wakes the next sleeper (maybe needlessly). */
	/* acquire: pairs with the release in weft__slock_unlock. */
	while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
		weft__futex_wait(&l->v, 2, NULL);
}

void weft__slock_wake(struct weft__slock *l) { weft__futex_wake(&l->v, 1); }

void weft__parker_park(struct weft__parker *p) { weft__park_word(&p->state); }

void weft__parker_unpark(struct weft__parker *p)
{
	if (weft__unpark_word(&p->state) == PARK_DRIVER) {
		if (__builtin_expect(p->evfd < 0, 0)) { /* io_uring: a worker's parker (see runtime.h) */
			struct weft__worker *w =
				(struct weft__worker *)((char *)p - offsetof(struct weft__worker, parker));
			weft__driver_wake(w->rt);
			return;
		}
		uint64_t one = 1;
		ssize_t n = write(p->evfd, &one, sizeof(one));
		(void)n;
	}
}

bool weft__parker_begin_driver(struct weft__parker *p)
{
	return weft__park_word_begin_driver(&p->state);
}

void weft__parker_end_driver(struct weft__parker *p) { weft__park_word_end_driver(&p->state); }

/* ------------------------------------------------------- thread parkers */

struct weft__tparker {
	_Atomic uint32_t word;
	_Atomic uint64_t refs;
};

static pthread_key_t tparker_key;
static pthread_once_t tparker_once = PTHREAD_ONCE_INIT;
static WEFT__TLS struct weft__tparker *tparker_tls;

static void tparker_unref(struct weft__tparker *p)
{
	/* acq_rel: the last holder sees every earlier holder's use. */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		weft__free(p);
}

/* The thread's key destructors run in key order, this one among them: a
 * destructor of a key made later that waits in weft (a join, a lock) came
 * back to the parker freed here through tparker_tls, "parker in state
 * <garbage>" and an abort, or a double free (found by a review). It now
 * makes a new one; glibc sees the key set again and runs this once more. */
static void tparker_thread_exit(void *p)
{
	tparker_tls = NULL;
	tparker_unref(p);
}
static void tparker_key_make(void) { pthread_key_create(&tparker_key, tparker_thread_exit); }

struct weft__tparker *weft__tparker_self(void)
{
	struct weft__tparker *p = tparker_tls;
	if (p)
		return p;
	pthread_once(&tparker_once, tparker_key_make);
	p = weft__calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	atomic_init(&p->word, PARK_EMPTY);
	atomic_init(&p->refs, 1);
	tparker_tls = p;
	pthread_setspecific(tparker_key, p);
	return p;
}

static void *tw_clone(void *d)
{
	struct weft__tparker *p = d;
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}
static void tw_wake_by_ref(void *d) { weft__unpark_word(&((struct weft__tparker *)d)->word); }
static void tw_wake(void *d) { tw_wake_by_ref(d); tparker_unref(d); }
static void tw_drop(void *d) { tparker_unref(d); }

static const struct weft_waker_vtable tparker_vtable = {
	.clone = tw_clone, .wake = tw_wake, .wake_by_ref = tw_wake_by_ref, .drop = tw_drop,
};

#ifndef TPARK_SPINS
#define TPARK_SPINS 12
#endif

weft_waker weft__tparker_waker(struct weft__tparker *p)
{
	return (weft_waker){ .vtable = &tparker_vtable, .data = tw_clone(p) };
}

void weft__tparker_park(struct weft__tparker *p, bool spin)
{
	for (int i = 0; i < TPARK_SPINS; i++) {
		if (atomic_load_explicit(&p->word, memory_order_relaxed) == PARK_NOTIFIED)
			break;
		if (!spin) {
			sched_yield();
			continue;
		}
		for (int k = 0; k < 64; k++)
			weft__cpu_relax();
	}
	weft__park_word(&p->word);
}

/* Timed park on a parker word (the steps of weft__park_word with a deadline). */
static bool park_word_until(_Atomic uint32_t *w, uint64_t deadline_ns)
{
	uint32_t exp = PARK_NOTIFIED;
	if (atomic_compare_exchange_strong(w, &exp, PARK_EMPTY))
		return true;
	exp = PARK_EMPTY;
	if (!atomic_compare_exchange_strong(w, &exp, PARK_PARKED)) {
		atomic_exchange(w, PARK_EMPTY);
		return true;
	}
	for (;;) {
		uint64_t now = weft__now_ns();
		if (now >= deadline_ns) {
			/* Time is up; a notification racing with us is kept. */
			return atomic_exchange(w, PARK_EMPTY) == PARK_NOTIFIED;
		}
		uint64_t left = deadline_ns - now;
		struct timespec ts = { (time_t)(left / 1000000000ull), (long)(left % 1000000000ull) };
		weft__futex_wait(w, PARK_PARKED, &ts);
		exp = PARK_NOTIFIED;
		if (atomic_compare_exchange_strong(w, &exp, PARK_EMPTY))
			return true;
	}
}

bool weft__tparker_park_until(struct weft__tparker *p, uint64_t deadline_ns)
{
	return park_word_until(&p->word, deadline_ns);
}

bool weft__parker_park_until(struct weft__parker *p, uint64_t deadline_ns)
{
	return park_word_until(&p->state, deadline_ns);
}
