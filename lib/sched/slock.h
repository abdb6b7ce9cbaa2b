/*
 * slock.h - weft's short lock: a futex lock (Drepper's "mutex 2"): 0 free,
 * 1 held, 2 held with sleepers. The uncontended lock is one inline CAS and
 * the unlock one exchange; a contended lock probes with exponential
 * back-off (~16 us of pauses here, park.c), then sleeps on the futex.
 * Acquire on lock pairs with release on unlock.
 *
 * For critical sections of a few list or counter operations taken on hot
 * paths: the channel and wait lists of lib/sync (its first users), and
 * the owned-task shards, the inject queue's consumers, the foreign task
 * cache, the fiber stack pool and the timer shards, where it replaced glibc's adaptive
 * pthread mutex: an out-of-line call with a type dispatch on each side,
 * 5-10% of spawn_many_local_fiber, ping_pong_fiber, spawn_many_local and
 * chained_spawn (docs/BENCHMARKS.md).
 *
 * Not recursive, no owner check, no condition variables: keep pthread
 * mutexes where those are needed.
 */
#ifndef WEFT_SLOCK_H
#define WEFT_SLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct weft__slock { _Atomic uint32_t v; };

#define WEFT__SLOCK_INIT { 0 }

static inline void weft__slock_init(struct weft__slock *l) { atomic_init(&l->v, 0); }

/* Contended path (park.c): spin, then sleep on the futex. */
void weft__slock_lock_slow(struct weft__slock *l);
/* The futex wake of an unlock that found sleepers (park.c). */
void weft__slock_wake(struct weft__slock *l);

static inline void weft__slock_lock(struct weft__slock *l)
{
	uint32_t e = 0;
	/* acquire: pairs with the release in weft__slock_unlock. */
	if (__builtin_expect(atomic_compare_exchange_strong_explicit(&l->v, &e, 1,
								     memory_order_acquire,
								     memory_order_relaxed), 1))
		return;
	weft__slock_lock_slow(l);
}

/* True if taken (then unlock it as usual). */
static inline bool weft__slock_trylock(struct weft__slock *l)
{
	uint32_t e = 0;
	/* acquire: pairs with the release in weft__slock_unlock. */
	return atomic_compare_exchange_strong_explicit(&l->v, &e, 1, memory_order_acquire,
						       memory_order_relaxed);
}

static inline void weft__slock_unlock(struct weft__slock *l)
{
	/* release: pairs with the acquire in weft__slock_lock(_slow). */
	if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
		weft__slock_wake(l);
}

#endif /* WEFT_SLOCK_H */
