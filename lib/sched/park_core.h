/*
 * park_core.h - the parker's handshake on its 32-bit futex word (park.c).
 *
 * Word: EMPTY, PARKED, NOTIFIED, or DRIVER (the parked thread sleeps in
 * epoll_wait as the driver; see driver.c).
 *  park:   CAS NOTIFIED->EMPTY and return (a wake came first); else CAS
 *          EMPTY->PARKED and FUTEX_WAIT while the word is PARKED; return
 *          once a CAS NOTIFIED->EMPTY succeeds.
 *  unpark: exchange to NOTIFIED; FUTEX_WAKE only if the old value was
 *          PARKED. The caller acts on an old value of DRIVER (park.c writes
 *          the driver's eventfd).
 *  driver: CAS EMPTY->DRIVER (false: a notification was pending, consumed);
 *          after epoll_wait, exchange back to EMPTY.
 * All operations on the word are seq_cst RMWs: the exchange in unpark is
 * the release that the parker's successful CAS acquires, so whatever the
 * waker wrote before unpark is visible after park returns (ThreadSanitizer
 * sees this through the atomics, not through the futex syscall). Spurious
 * returns from FUTEX_WAIT are harmless: the loop re-checks the word.
 *
 * The ordering argument in the C11 model alone. Every write to the word
 * after init is an RMW, so (as for the task state word) the RMWs are
 * totally ordered and each sees the one before it (W1), and an acquire
 * reading any value synchronises with every earlier release on the word,
 * RMWs continuing release sequences (W2).
 *
 *  operation                        needs        pairs with / shape
 *  unpark: exchange -> NOTIFIED     release      the consuming RMW below:
 *                                                MP, the waker's writes
 *                                                before unpark are visible
 *                                                after park. An exchange,
 *                                                not "load, store if not
 *                                                NOTIFIED": a load-only
 *                                                path would be SB with the
 *                                                parker and lose the MP.
 *  park: CAS NOTIFIED -> EMPTY,     acquire      that exchange, or a later
 *    the loop's CAS; park and                    one (W2: two notifiers'
 *    begin_driver: exchange ->                   exchanges chain): MP.
 *    EMPTY after a failed CAS
 *  park: CAS EMPTY -> PARKED;       atomicity    against unpark's exchange
 *    driver: CAS EMPTY -> DRIVER    (W1)         (W1): the exchange either
 *                                                comes first (our CAS fails
 *                                                and we consume) or sees
 *                                                PARKED / DRIVER and wakes
 *                                                us (FUTEX_WAKE / eventfd).
 *  end_driver: exchange -> EMPTY    acquire      a notification that came
 *                                                during epoll_wait is
 *                                                consumed: MP as above.
 * The futex adds one SB that C11 does not see: the kernel's check of the
 * word in FUTEX_WAIT against the waker's check for sleepers in FUTEX_WAKE.
 * The kernel closes it (both serialise on the hash bucket, with full
 * barriers on each side, kernel/futex/waitwake.c); unpark calls FUTEX_WAKE
 * whenever it replaced PARKED, and FUTEX_WAIT returns at once unless the
 * word is still PARKED.
 *
 * All of these are seq_cst, which this handshake does not need: acq_rel
 * RMWs would do (W1, W2). On AArch64 seq_cst and acq_rel RMWs are the same
 * instructions (LDAXR/STLXR, or SWPAL/CASAL), on x86 both are locked, so it
 * costs nothing. The callers' own SB (idle.c: push then notify, against
 * announce-parked then rescan) is closed by idle.c's seq_cst RMWs on its
 * own word, not by this one; weakening these would need that re-checked.
 * park.c's weft__tparker_park_until repeats these steps with a timeout.
 *
 * Only the word logic is here, static inline (it compiles into park.c as
 * before); the futex calls are weft__futex_wait / weft__futex_wake, defined
 * in park.c, or by tests/harness/park_harness.c, which builds this file
 * alone for a C11 weak-memory model checker.
 */
#ifndef WEFT_PARK_CORE_H
#define WEFT_PARK_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "chaos.h"
#include "die.h"

enum { PARK_EMPTY = 0, PARK_PARKED = 1, PARK_NOTIFIED = 2, PARK_DRIVER = 3 };

/* Futex helpers (errors are ignored: callers loop on the word anyway). */
void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel);
void weft__futex_wake(_Atomic uint32_t *addr, int n);

static inline void weft__park_word(_Atomic uint32_t *w)
{
	uint32_t exp = PARK_NOTIFIED;
	if (atomic_compare_exchange_strong(w, &exp, PARK_EMPTY))
		return;
	exp = PARK_EMPTY;
	if (!atomic_compare_exchange_strong(w, &exp, PARK_PARKED)) {
		/* Only an unpark can have changed it: consume the notification. */
		if (atomic_exchange(w, PARK_EMPTY) != PARK_NOTIFIED)
			weft__die("parker in state %u", exp);
		return;
	}
	WEFT_CHAOS_POINT();
	for (;;) {
		weft__futex_wait(w, PARK_PARKED, NULL);
		exp = PARK_NOTIFIED;
		if (atomic_compare_exchange_strong(w, &exp, PARK_EMPTY))
			return;
	}
}

/* Returns the word before: PARK_DRIVER asks the caller to wake the driver. */
static inline uint32_t weft__unpark_word(_Atomic uint32_t *w)
{
	WEFT_CHAOS_POINT();
	uint32_t old = atomic_exchange(w, PARK_NOTIFIED);
	if (old == PARK_PARKED)
		weft__futex_wake(w, 1);
	return old;
}

/* EMPTY -> DRIVER; false if a notification was pending (it is consumed). */
static inline bool weft__park_word_begin_driver(_Atomic uint32_t *w)
{
	uint32_t exp = PARK_EMPTY;
	if (atomic_compare_exchange_strong(w, &exp, PARK_DRIVER))
		return true;
	atomic_exchange(w, PARK_EMPTY); /* consume the notification */
	return false;
}

static inline void weft__park_word_end_driver(_Atomic uint32_t *w)
{
	atomic_exchange(w, PARK_EMPTY);
}

#endif /* WEFT_PARK_CORE_H */
