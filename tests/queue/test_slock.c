/*
 * test_slock.c - weft's short lock (lib/sched/slock.h, slow path in
 * lib/sched/park.c): the lock every sync primitive, the owned-task shards,
 * the inject queue's pop side, the foreign task cache and the stack pool
 * take.
 *
 * - Mutual exclusion under contention: more threads than cores add to a
 *   plain counter under the lock; the total is exact and no thread ever
 *   finds another inside.
 * - The sleeping path: a waiter that outlasts the back-off spin announces
 *   itself (word 2) and sleeps on the futex; the holder's unlock wakes it
 *   (a lost wake-up would hang the test into its timeout).
 * - trylock: fails while held, takes a free lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "slock.h"

static struct weft__slock lock = WEFT__SLOCK_INIT;
static uint64_t counter;        /* under lock */
static atomic_int inside, overlap;

enum { THREADS = 4, ROUNDS = 200000 };

static void *adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		weft__slock_lock(&lock);
		if (atomic_fetch_add_explicit(&inside, 1, memory_order_relaxed) != 0)
			atomic_store(&overlap, 1);
		counter++;
		atomic_fetch_sub_explicit(&inside, 1, memory_order_relaxed);
		weft__slock_unlock(&lock);
	}
	return NULL;
}

Test(slock, exclusive_under_contention, .timeout = WT_TMO(60))
{
	weft__slock_init(&lock);
	counter = 0;
	atomic_store(&overlap, 0);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, adder, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&overlap), 0, "two threads inside the lock at once");
	cr_assert_eq(counter, (uint64_t)THREADS * ROUNDS, "counter %llu, want %llu",
		     (unsigned long long)counter, (unsigned long long)THREADS * ROUNDS);
	cr_assert_eq(atomic_load(&lock.v), 0, "left held");
}

static atomic_int waiter_has_it;
static _Atomic uint64_t waiter_got_ns;

static void *waiter(void *arg)
{
	(void)arg;
	weft__slock_lock(&lock);
	atomic_store(&waiter_got_ns, wt_now_ns());
	atomic_store(&waiter_has_it, 1);
	weft__slock_unlock(&lock);
	return NULL;
}

Test(slock, long_hold_puts_the_waiter_to_sleep_and_unlock_wakes_it, .timeout = WT_TMO(30))
{
	weft__slock_init(&lock);
	atomic_store(&waiter_has_it, 0);
	weft__slock_lock(&lock);
	cr_assert_eq(atomic_load(&lock.v), 1);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, waiter, NULL), 0);
	/* The spin lasts ~16 us of pauses; then the waiter marks the word 2
	 * and sleeps. */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&lock.v) == 2, WT_LONG_MS),
		  "the waiter never announced itself sleeping (word %u)",
		  (unsigned)atomic_load(&lock.v));
	wt_sleep_ms(50);
	cr_assert_eq(atomic_load(&waiter_has_it), 0, "the waiter got a held lock");
	uint64_t released = wt_now_ns();
	weft__slock_unlock(&lock); /* sees 2: must wake it */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&waiter_has_it), WT_LONG_MS),
		  "the unlock did not wake the sleeping waiter");
	pthread_join(th, NULL);
	cr_assert_geq(atomic_load(&waiter_got_ns), released);
	cr_assert_eq(atomic_load(&lock.v), 0, "left held");
}

Test(slock, trylock_fails_while_held_and_takes_a_free_lock)
{
	weft__slock_init(&lock);
	cr_assert(weft__slock_trylock(&lock));
	cr_assert_not(weft__slock_trylock(&lock));
	weft__slock_unlock(&lock);
	cr_assert(weft__slock_trylock(&lock));
	weft__slock_unlock(&lock);
	cr_assert_eq(atomic_load(&lock.v), 0);
}
