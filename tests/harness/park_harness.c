/*
 * park_harness.c - the parker's handshake (lib/sched/park_core.h, what park.c
 * and the driver use) between one parked worker and two notifiers.
 *
 * Parker: until both notifiers' work is visible, park - on the futex
 * (weft__park_word), or, in driver mode every other time, as the driver:
 * begin (EMPTY -> DRIVER), sleep on the driver's eventfd, end (as
 * driver.c's weft__driver_park does around epoll_wait). Notifiers: publish
 * their work (a relaxed flag), then unpark (weft__unpark_word; an old value
 * of DRIVER means "write the eventfd", as weft__parker_unpark does).
 *
 * The futex and the eventfd are emulated with one mutex: FUTEX_WAIT checks
 * the word under it and sleeps until a FUTEX_WAKE comes after that check,
 * which is what the kernel guarantees (the check and the wake serialise on
 * the futex hash bucket). Spurious returns are allowed and harmless.
 *
 * Checks: no lost wakeup - once both notifiers are done, the parker is not
 * asleep without a wake on its way (checked directly on the emulated futex,
 * not by a timeout); each return from a park consumed a notification, so
 * the parker loops at most once per notifier plus one, and after the last
 * return it sees both flags (an unpark's exchange is the release the
 * parker's consuming RMW acquires); the word ends EMPTY or NOTIFIED.
 *
 * Modes (HARNESS_MODE for a checker; the plain run alternates): 0 futex
 * only, 1 futex and driver in turn.
 * --broken: the second notifier sets NOTIFIED without FUTEX_WAKE (the bug
 * park.pml's BROKEN_NO_FUTEX_WAKE models); the lost-wakeup check must fire.
 */
#include "harness.h"

/* The library's own handshake, not a copy. */
#include "../../lib/sched/park_core.h"

enum { NOTIFIERS = 2 };

#define HARNESS_PATHS(X) X(park) X(park_slept) X(driver_park) X(driver_notified_first) \
	X(driver_woken_by_eventfd) X(unpark_futex_wake)
HARNESS_DECLARE_PATHS()

static _Atomic uint32_t word;          /* the parker's futex word */
static _Atomic uint32_t evfd;          /* the driver's eventfd counter */
static atomic_int ready[NOTIFIERS];
static atomic_int n0_done;             /* --broken: notifier 0 has finished */
static unsigned mode;
static bool broken_run;

/* ------------------------------------------------------ futex emulation */

static pthread_mutex_t fx_lock = PTHREAD_MUTEX_INITIALIZER;
#ifndef HARNESS_MODEL
static pthread_cond_t fx_cond = PTHREAD_COND_INITIALIZER;
#endif
static atomic_uint fx_wakes;           /* FUTEX_WAKEs so far (written under fx_lock) */
static atomic_int fx_asleep;           /* a thread sleeps in FUTEX_WAIT (under fx_lock) */
static unsigned fx_asleep_since;       /* fx_wakes when it went to sleep (under fx_lock) */

#ifdef HARNESS_MODEL
void __VERIFIER_assume(int);
#endif

void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel)
{
	(void)rel; /* no timed waits here */
	pthread_mutex_lock(&fx_lock);
	if (atomic_load_explicit(addr, memory_order_relaxed) != val) {
		pthread_mutex_unlock(&fx_lock);
		return;
	}
	unsigned seen = atomic_load_explicit(&fx_wakes, memory_order_relaxed);
	HARNESS_HIT(park_slept);
	atomic_store_explicit(&fx_asleep, 1, memory_order_relaxed);
	fx_asleep_since = seen;
#ifdef HARNESS_MODEL
	pthread_mutex_unlock(&fx_lock);
	/* blocked until a wake after our check */
	__VERIFIER_assume(atomic_load_explicit(&fx_wakes, memory_order_relaxed) != seen);
	pthread_mutex_lock(&fx_lock);
#else
	while (atomic_load_explicit(&fx_wakes, memory_order_relaxed) == seen)
		pthread_cond_wait(&fx_cond, &fx_lock);
#endif
	atomic_store_explicit(&fx_asleep, 0, memory_order_relaxed);
	pthread_mutex_unlock(&fx_lock);
}

void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
	(void)addr;
	(void)n; /* one sleeper at most: wake it whatever it waits on */
	pthread_mutex_lock(&fx_lock);
	atomic_fetch_add_explicit(&fx_wakes, 1, memory_order_relaxed);
#ifndef HARNESS_MODEL
	pthread_cond_broadcast(&fx_cond);
#endif
	pthread_mutex_unlock(&fx_lock);
}

/* The eventfd: write adds and wakes; the driver sleeps while it reads 0. */
static void evfd_write(void)
{
	atomic_fetch_add(&evfd, 1);
	weft__futex_wake(&evfd, 1);
}

static void evfd_wait(void)
{
	while (atomic_exchange(&evfd, 0) == 0)
		weft__futex_wait(&evfd, 0, NULL);
}

/* ------------------------------------------------------------- threads */

static bool all_ready(void)
{
	for (int i = 0; i < NOTIFIERS; i++)
		if (!atomic_load_explicit(&ready[i], memory_order_relaxed))
			return false;
	return true;
}

static void *parker(void *arg)
{
	(void)arg;
	harness_seed(1);
	int round;
	/* each park returns only after consuming a notification */
	for (round = 0; round <= NOTIFIERS; round++) {
		if (all_ready())
			break;
		HARNESS_JITTER();
		if ((mode & 1) && (round & 1)) {
			HARNESS_HIT(driver_park);
			if (weft__park_word_begin_driver(&word)) {
				evfd_wait();
				weft__park_word_end_driver(&word);
			} else {
				HARNESS_HIT(driver_notified_first);
			}
		} else {
			HARNESS_HIT(park);
			weft__park_word(&word);
		}
	}
	assert(all_ready() && "woken, but the notifier's work is not visible");
	return NULL;
}

/* The parker sleeps and no wake has come since it went to sleep. */
static bool asleep_unwoken(void)
{
	pthread_mutex_lock(&fx_lock);
	bool r = atomic_load_explicit(&fx_asleep, memory_order_relaxed) &&
		 atomic_load_explicit(&fx_wakes, memory_order_relaxed) == fx_asleep_since;
	pthread_mutex_unlock(&fx_lock);
	return r;
}

static void *notifier(void *arg)
{
	int i = (int)(intptr_t)arg;
	harness_seed(2 + (unsigned)i);
	if (broken_run && i == 1) {
		/* Planted bug: notify without FUTEX_WAKE. Wait until the other
		 * notifier is done and the parker sleeps for want of our work,
		 * so the loss is certain. */
		while (!atomic_load(&n0_done) || !asleep_unwoken())
			;
		atomic_store_explicit(&ready[i], 1, memory_order_relaxed);
		atomic_exchange(&word, PARK_NOTIFIED);
		return NULL;
	}
	HARNESS_JITTER();
	atomic_store_explicit(&ready[i], 1, memory_order_relaxed);
	HARNESS_JITTER();
	uint32_t old = weft__unpark_word(&word);
	if (old == PARK_PARKED)
		HARNESS_HIT(unpark_futex_wake);
	if (old == PARK_DRIVER) {
		HARNESS_HIT(driver_woken_by_eventfd);
		evfd_write(); /* weft__parker_unpark */
	}
	if (i == 0)
		atomic_store(&n0_done, 1);
	return NULL;
}

static void scenario(unsigned iter, bool broken)
{
	mode = HARNESS_PICK_MODE(iter, 2);
	broken_run = broken;
	if (broken)
		mode = 0;
	atomic_init(&word, PARK_EMPTY);
	atomic_init(&evfd, 0);
	for (int i = 0; i < NOTIFIERS; i++)
		atomic_init(&ready[i], 0);
	atomic_init(&fx_asleep, 0);
	atomic_init(&n0_done, 0);

	pthread_t p, n[NOTIFIERS];
	int rc = pthread_create(&p, NULL, parker, NULL);
	assert(rc == 0);
	for (int i = 0; i < NOTIFIERS; i++) {
		rc = pthread_create(&n[i], NULL, notifier, (void *)(intptr_t)i);
		assert(rc == 0);
	}
	(void)rc;
	for (int i = 0; i < NOTIFIERS; i++)
		pthread_join(n[i], NULL);
	/* Every notifier is done: the parker must be awake, or asleep with a
	 * wake on its way. Asleep with no wake since it slept is a lost
	 * wakeup: nothing will ever wake it. */
	assert(!asleep_unwoken() && "lost wakeup: the parker sleeps and no wake is coming");
	pthread_join(p, NULL);
	uint32_t w = atomic_load(&word);
	assert((w == PARK_EMPTY || w == PARK_NOTIFIED) && "parker word left PARKED or DRIVER");
	(void)w;
}

HARNESS_MAIN(scenario)
