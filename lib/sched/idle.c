/*
 * idle.c - who searches for work, who sleeps, and whom to wake.
 *
 * `state` packs (unparked << 32) | searching. Sleepers are a stack of core
 * indices under `lock`; each core's `sleeping` flag mirrors its presence.
 *
 * Rules (the protocol of Tokio's multi-thread scheduler, restated):
 *  - A worker may start searching only while fewer than half of the unparked
 *    workers search (bounds the herd of thieves).
 *  - Whoever makes work available (a push to a ring or the inject queue)
 *    calls weft__idle_notify: if nobody searches and someone sleeps, it wakes
 *    one sleeper, counting it unparked and searching on its behalf.
 *  - A searcher that finds work stops searching; if it was the last one, it
 *    notifies (relays the search) if work remains in sight: a ring or the
 *    inject queue, looked at after a fence, as the parker's rescan below
 *    (a push that saw it searching and woke nobody is either seen by that
 *    look, or saw the decrement and woke someone itself) - or if nobody
 *    sleeps in the driver: the searcher may be the driver's sleeper, woken
 *    with work, and a parked worker must take the driver over (timers, the
 *    stall watch; tests/stress timer_fires_while_driver_sleeper_leaves_
 *    for_long_poll) - unless the sleeper left it vacant (driver.c: the
 *    only worker running, no timer set; the first LIFO push or timer set
 *    then notifies instead). Tokio relays
 *    unconditionally: with tasks arriving one at a time (a thread
 *    spawning 2,000 a second), each wake then woke a second worker that
 *    found nothing - 5 system calls per task instead of 2.
 *  - A worker that parks decrements `unparked` (and `searching`) and lists
 *    itself, under the lock. If it was the last searcher, or was not
 *    searching at all, it rescans every queue and notifies if anything is
 *    there (see the end of this comment for the non-searcher).
 *  - A sleeper that wakes on its own with work in hand (the driver's LIFO
 *    watch, worker.c) unlists itself and counts itself unparked and
 *    searching, exactly as a notifier that popped it would have; if a
 *    notifier did pop it meanwhile, that count stands and nothing changes.
 *
 * No lost wakeup (store buffering: the notifier writes a queue then reads
 * `state`, the parker writes `state` then reads the queues). The notifier
 * issues a seq_cst fence between its push and a relaxed load of `state`;
 * the parker changes `state` with a seq_cst RMW followed by a seq_cst
 * fence, then rescans. The two fences are ordered in the single total
 * order S: if the notifier's comes first, the parker's rescan (after its
 * fence) sees the push; if the parker's comes first, the notifier's load
 * (after its fence) sees the RMW or a later value - one fewer unparked
 * worker - and wakes a sleeper. (A plain load with no fence is not enough:
 * it need not observe the parker's decrement; Tokio hit exactly this.)
 * Before, notify read `state` with an RMW (fetch_add 0): correct too, but
 * every notify then took the runtime-wide line exclusively, also when a
 * worker was already searching and nothing was to be done; a fence and a
 * load leave the line shared. ThreadSanitizer builds keep the RMW (TSan
 * does not model standalone fences). On x86 the fence is an MFENCE, on
 * AArch64 a DMB ISH.
 * Every parker rescans, searching or not. (Non-searchers used to park
 * without one, on the ground that a searcher existed when they gave up and
 * the last searcher always rescans. But that searcher's rescan may come
 * before a push, and the push's notify then skips the wake because the
 * non-searcher, on its way to park, still counts as unparked: W1 fails
 * try_search while W0 searches; W0 finds work, ends its search and relays
 * (nothing else in sight yet); a remote push notifies and reads unparked ==
 * n; W1 parks with no rescan. The task waits until W0's poll ends - for
 * good behind a poll that does not end (tests/stress shutdown_pending,
 * "gate 1 never ran"). The store-buffering argument above needs the
 * parker's rescan whenever a notify may have counted it unparked.)
 *
 * The watch. The stall watch (worker.c, watch_cores) runs in workers: at
 * maintenance, when a search finds nothing, and in parked workers that
 * sleep on a WEFT_WATCH_MS timeout: the driver's sleeper, and at most one
 * sleeper on a futex besides (counted in `watchers` for its sleep). A
 * parked worker sleeps so while another worker is unparked, and for
 * WEFT__WATCH_LINGER of its timeouts after the last look that found one
 * (so that work arriving in bursts - a request at a time on a keep-alive
 * connection - keeps a watcher without a wake per burst); after that it
 * sleeps until woken, and an idle runtime does not wake. A core whose
 * thread is still in its start hook (`hooked`) is counted unparked but
 * runs nothing: the watch does not count it, and the thread leaving its
 * hook makes sure someone watches (weft__idle_hook_end). Every worker
 * that runs was counted searching (a notify's pop, a sleeper leaving on
 * its own), and the last searcher to find work, after its relay
 * (weft__idle_relay), makes sure someone watches: a driver sleeper with
 * no timeout is woken (`unwatched` SLEEPER, cleared by whoever wakes it);
 * with no sleeper in the driver (vacant, or between two) and no futex
 * watcher, one listed sleeper is woken without being unlisted (it looks,
 * finds a worker running, and sleeps on the timeout). A searcher that
 * parks instead watches itself if nobody does. After the relay, not at
 * the pop: a driver sleeper woken as the push notified was out of the
 * driver as the notified worker relayed, which then called a third worker
 * in to take the driver (a wake for nothing); and a futex watcher popped
 * to run was still counted in `watchers` at its pop, so the notify woke
 * nobody and its poll and a vacating worker's ran unwatched (found by a
 * review). Store buffering again, closed by seq_cst on both sides: the
 * searcher's RMWs on `state` (the pop that counted it, its end of search)
 * then its loads of `unwatched` and `watchers`; the sleeper's store of
 * `unwatched`, or the watcher's decrement of `watchers` after its sleep,
 * then its load of `state` before it chooses the next sleep. Before, a
 * parked worker chose its timeout once, when it went to sleep: a long
 * poll that began later on an otherwise idle runtime (a remote spawn woke
 * one sleeper; the driver's sleeper slept on), or behind a driver its
 * last sleeper left vacant
 * (driver.c), was never counted or reported as a stall.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

int weft__idle_init(struct weft__idle *idle, unsigned n)
{
	/* room for every core the runtime may grow to */
	idle->sleepers = weft__calloc(WEFT_MAX_WORKERS, sizeof(unsigned));
	if (!idle->sleepers)
		return -ENOMEM;
	idle->nsleepers = 0;
	atomic_init(&idle->n, n);
	atomic_init(&idle->state, (uint64_t)n << 32);
	for (unsigned i = 0; i < WEFT_IDLE_MASK_WORDS; i++)
		atomic_init(&idle->parked[i], 0);
	atomic_init(&idle->watchers, 0);
	atomic_init(&idle->hooked, 0);
	pthread_mutex_init(&idle->lock, NULL);
	return 0;
}

void weft__idle_fini(struct weft__idle *idle)
{
	weft__free(idle->sleepers);
	idle->sleepers = NULL;
	pthread_mutex_destroy(&idle->lock);
}

static void mark_parked(struct weft__idle *idle, unsigned i, bool parked)
{
	if (parked)
		atomic_fetch_or_explicit(&idle->parked[i / 64], 1ull << (i % 64), memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&idle->parked[i / 64], ~(1ull << (i % 64)),
					  memory_order_relaxed);
}

/* The notifier's read of `state` after its push: see the header comment. */
static inline uint64_t notify_read_state(struct weft__idle *idle)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer does not model standalone fences (and GCC refuses
	 * them under -Werror): the RMW form, equivalent here. */
	return atomic_fetch_add_explicit(&idle->state, 0, memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&idle->state, memory_order_relaxed);
#endif
}

/* The parker's side of the same pair, after its RMW on `state`. */
static inline void park_fence(void)
{
#if !defined(__SANITIZE_THREAD__)
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

#define KICK_DRIVER (-2)

/* Under the lock, after a worker was counted unparked (the caller's
 * seq_cst RMW on state): whom to wake so that a parked worker watches it
 * (see "The watch"): KICK_DRIVER, a listed core, or -1 (nobody). */
static int watch_kick_locked(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	uint8_t u = atomic_load_explicit(&rt->driver.unwatched, memory_order_seq_cst);
	if (u == WEFT__UNWATCHED_SLEEPER)
		return KICK_DRIVER;
	if (u == 0 && atomic_load_explicit(&rt->driver.sleeper, memory_order_relaxed))
		return -1; /* the sleeper there sleeps on the watch timeout */
	if (!idle->nsleepers || atomic_load_explicit(&idle->watchers, memory_order_seq_cst))
		return -1;
	return (int)idle->sleepers[idle->nsleepers - 1];
}

static void watch_kick(struct weft_runtime *rt, int kick)
{
	if (kick == KICK_DRIVER) {
		uint8_t u = WEFT__UNWATCHED_SLEEPER;
		if (atomic_compare_exchange_strong_explicit(&rt->driver.unwatched, &u, 0,
							    memory_order_seq_cst,
							    memory_order_relaxed))
			weft__driver_wake(rt);
	} else if (kick >= 0) {
		weft__registry_unpark(rt, (unsigned)kick);
	}
}

bool weft__idle_watch_want(struct weft_runtime *rt, unsigned *linger)
{
	/* A core whose thread is in its start hook is counted unparked but
	 * runs nothing: a hook that blocked for seconds kept a watcher waking
	 * every WEFT_WATCH_MS all along (found by a review). `hooked` is read
	 * after `state`: a thread counted in it now drives a core that was
	 * counted unparked before its hook began (runtime creation,
	 * weft__idle_add_core) and that no other thread drives, so unparked -
	 * hooked never counts a running worker out; one that left its hook
	 * since runs watch_check (weft__idle_hook_end). */
	uint64_t s = atomic_load_explicit(&rt->idle.state, memory_order_seq_cst);
	if (IDLE_UNPARKED(s) > atomic_load_explicit(&rt->idle.hooked, memory_order_seq_cst)) {
		*linger = 0;
		return true;
	}
	if (*linger >= WEFT__WATCH_LINGER)
		return false;
	++*linger;
	return true;
}

bool weft__idle_watch_begin(struct weft_runtime *rt, unsigned *linger)
{
	struct weft__idle *idle = &rt->idle;
	if (!weft__idle_watch_want(rt, linger) ||
	    atomic_load_explicit(&idle->watchers, memory_order_seq_cst))
		return false;
	atomic_fetch_add_explicit(&idle->watchers, 1, memory_order_seq_cst);
	return true;
}

void weft__idle_watch_end(struct weft_runtime *rt, struct weft__core *c)
{
	/* popped by a notify while it watched (c->sleeping false): it goes
	 * on to search, and its relay looks for a watcher (see "The watch") */
	(void)c;
	atomic_fetch_sub_explicit(&rt->idle.watchers, 1, memory_order_seq_cst);
}

/* The last searcher found work (weft__idle_relay): make sure a parked
 * worker watches the running ones (see "The watch"). Lock-free unless a
 * listed sleeper must be woken. */
static void watch_check(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	uint8_t u = atomic_load_explicit(&rt->driver.unwatched, memory_order_seq_cst);
	if (u == WEFT__UNWATCHED_SLEEPER) {
		watch_kick(rt, KICK_DRIVER);
		return;
	}
	if (u == 0 && atomic_load_explicit(&rt->driver.sleeper, memory_order_relaxed))
		return; /* the sleeper there sleeps on the watch timeout */
	if (atomic_load_explicit(&idle->watchers, memory_order_seq_cst))
		return;
	pthread_mutex_lock(&idle->lock);
	int kick = watch_kick_locked(rt);
	pthread_mutex_unlock(&idle->lock);
	watch_kick(rt, kick);
}

void weft__idle_hook_begin(struct weft_runtime *rt)
{
	atomic_fetch_add_explicit(&rt->idle.hooked, 1, memory_order_seq_cst);
}

/* The thread goes on to drive its core: a running worker now, as a last
 * searcher that found work, so it makes sure someone watches. Store
 * buffering as in "The watch": our seq_cst RMW on `hooked` then the loads
 * of `unwatched` and `watchers` (watch_check), against the sleeper's
 * store of `unwatched` or the watcher's decrement of `watchers` then its
 * loads of `state` and `hooked` (weft__idle_watch_want): either it sees
 * us out of the hook and sleeps on the watch timeout, or we see it
 * sleeping unwatched and wake it. */
void weft__idle_hook_end(struct weft_runtime *rt)
{
	atomic_fetch_sub_explicit(&rt->idle.hooked, 1, memory_order_seq_cst);
	watch_check(rt);
}

void weft__idle_notify(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	WEFT_CHAOS_POINT();
	uint64_t s = notify_read_state(idle);
	if (IDLE_SEARCHING(s) != 0 ||
	    IDLE_UNPARKED(s) >= atomic_load_explicit(&idle->n, memory_order_relaxed))
		return;
	pthread_mutex_lock(&idle->lock);
	s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (IDLE_SEARCHING(s) != 0 || idle->nsleepers == 0) {
		pthread_mutex_unlock(&idle->lock);
		return;
	}
	unsigned core = idle->sleepers[--idle->nsleepers];
	mark_parked(idle, core, false);
	atomic_fetch_add_explicit(&idle->state, IDLE_UNPARK_ONE | 1, memory_order_seq_cst);
	/* release: the woken worker's acquire load sees it was popped. */
	atomic_store_explicit(&rt->cores[core].sleeping, false, memory_order_release);
	pthread_mutex_unlock(&idle->lock);
	/* from_core: the notifier's core in this runtime, else -1 (a worker
	 * of another runtime was reported as a core of this one) */
	WEFT_PROBE(notify,
		   weft__ctx() && weft__ctx()->core && weft__ctx()->rt == rt
			   ? (int)weft__ctx()->core->index : -1,
		   core, (uintptr_t)rt);
	weft__registry_unpark(rt, core);
}

bool weft__idle_would_notify(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	uint64_t s = notify_read_state(idle);
	return IDLE_SEARCHING(s) == 0 &&
	       IDLE_UNPARKED(s) < atomic_load_explicit(&idle->n, memory_order_relaxed);
}

bool weft__idle_try_search(struct weft__idle *idle)
{
	uint64_t s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (2 * IDLE_SEARCHING(s) >= IDLE_UNPARKED(s))
		return false;
	atomic_fetch_add_explicit(&idle->state, 1, memory_order_seq_cst);
	return true;
}

bool weft__idle_end_search(struct weft__idle *idle)
{
	uint64_t prev = atomic_fetch_sub_explicit(&idle->state, 1, memory_order_seq_cst);
	if (IDLE_SEARCHING(prev) == 0)
		weft__die("searching count underflow");
	return IDLE_SEARCHING(prev) == 1;
}

void weft__idle_relay(struct weft_runtime *rt, struct weft__core *self)
{
	park_fence(); /* after end_search's RMW: pairs with notify_read_state */
	WEFT_CHAOS_POINT();
	if ((!atomic_load_explicit(&rt->driver.sleeper, memory_order_relaxed) &&
	     atomic_load_explicit(&rt->driver.unwatched, memory_order_relaxed) !=
		     WEFT__UNWATCHED_VACANT) ||
	    weft__ring_len(&self->ring) || weft__steal_wanted(rt, self) ||
	    weft__inject_visible(&rt->inject))
		weft__idle_notify(rt);
	watch_check(rt);
}

bool weft__idle_park(struct weft_runtime *rt, struct weft__core *c, bool searching)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	uint64_t prev = atomic_fetch_sub_explicit(&idle->state,
						  IDLE_UNPARK_ONE | (searching ? 1 : 0),
						  memory_order_seq_cst);
	atomic_store_explicit(&c->sleeping, true, memory_order_relaxed);
	idle->sleepers[idle->nsleepers++] = c->index;
	mark_parked(idle, c->index, true);
	pthread_mutex_unlock(&idle->lock);
	park_fence(); /* before the rescan: pairs with notify_read_state */
	WEFT_CHAOS_POINT(); /* between announcing idle and the rescan */
	/* the last searcher, or a non-searcher: a notify that read us
	 * unparked (before our decrement) woke nobody, and no searcher is
	 * left to see its push after it (see the header) */
	return !searching || IDLE_SEARCHING(prev) == 1;
}

/* Under the lock: take c off the sleepers, as a notifier that popped it
 * would (counted unparked and searching). false if it was not listed. */
static bool unlist_locked(struct weft__idle *idle, struct weft__core *c)
{
	if (!atomic_load_explicit(&c->sleeping, memory_order_relaxed))
		return false;
	for (unsigned i = 0; i < idle->nsleepers; i++) {
		if (idle->sleepers[i] == c->index) {
			idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
			break;
		}
	}
	mark_parked(idle, c->index, false);
	atomic_fetch_add_explicit(&idle->state, IDLE_UNPARK_ONE | 1, memory_order_seq_cst);
	/* release: the woken worker's acquire load sees it was popped. */
	atomic_store_explicit(&c->sleeping, false, memory_order_release);
	return true;
}

void weft__idle_unpark_self(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	unlist_locked(idle, c);
	pthread_mutex_unlock(&idle->lock);
}

/*
 * Elastic worker count (weft_runtime_set_workers, worker.c's retire). `n`
 * counts the cores taking part in this protocol: each is either unparked
 * or listed. A core joins counted unparked (a thread is about to drive
 * it) and leaves from unparked (its holder retires it, not searching).
 * While a retiring core is still counted, notify may skip a wake it would
 * otherwise make (all counted cores look busy); the retiring holder
 * notifies after it has left and moved its tasks to the inject queue.
 */
void weft__idle_add_core(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	atomic_store_explicit(&c->sleeping, false, memory_order_relaxed);
	atomic_fetch_add_explicit(&idle->state, IDLE_UNPARK_ONE, memory_order_seq_cst);
	atomic_store_explicit(&idle->n, atomic_load_explicit(&idle->n, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_wake_core(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	unlist_locked(idle, c);
	pthread_mutex_unlock(&idle->lock);
	/* listed or not: a thread about to park sees the flag after listing
	 * itself (worker.c, park), and an unpark too many is harmless */
	weft__registry_unpark(rt, c->index);
}

void weft__idle_remove_core(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	if (unlist_locked(idle, c)) /* cannot be: its holder is running */
		weft__die("retiring core %u was listed as a sleeper", c->index);
	uint64_t prev = atomic_fetch_sub_explicit(&idle->state, IDLE_UNPARK_ONE, memory_order_seq_cst);
	if (IDLE_UNPARKED(prev) == 0)
		weft__die("unparked count underflow retiring core %u", c->index);
	atomic_store_explicit(&idle->n, atomic_load_explicit(&idle->n, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_notify_if_work(struct weft_runtime *rt, struct weft__core *self)
{
	if (weft__steal_wanted(rt, self) || weft__inject_visible(&rt->inject))
		weft__idle_notify(rt);
}
