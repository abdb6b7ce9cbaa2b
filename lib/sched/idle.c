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
 *    notifies (relays the search), because work may remain.
 *  - A worker that parks decrements `unparked` (and `searching`) and lists
 *    itself, under the lock. If it was the last searcher it rescans every
 *    queue and notifies if anything is there.
 *  - A sleeper that wakes on its own with work in hand (the driver's LIFO
 *    watch, worker.c) unlists itself and counts itself unparked and
 *    searching, exactly as a notifier that popped it would have; if a
 *    notifier did pop it meanwhile, that count stands and nothing changes.
 *
 * No lost wakeup: notify reads `state` with an RMW (fetch_add 0, seq_cst)
 * after its push, and a parking worker changes `state` with a seq_cst RMW
 * before its rescan. The two RMWs on one location are totally ordered: if
 * the notifier's comes first, the parker's rescan is ordered after the push
 * and sees it; if the parker's comes first, the notifier sees one fewer
 * unparked worker and wakes a sleeper. (A plain load in notify is not enough
 * - it need not observe the parker's decrement; Tokio hit exactly this.)
 * Non-searchers park without a rescan: a searcher existed when they gave up,
 * and the last searcher always rescans.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

int weft__idle_init(struct weft__idle *idle, unsigned n)
{
	idle->sleepers = weft__calloc(n, sizeof(unsigned));
	if (!idle->sleepers)
		return -ENOMEM;
	idle->nsleepers = 0;
	idle->n = n;
	atomic_init(&idle->state, (uint64_t)n << 32);
	pthread_mutex_init(&idle->lock, NULL);
	return 0;
}

void weft__idle_fini(struct weft__idle *idle)
{
	weft__free(idle->sleepers);
	idle->sleepers = NULL;
	pthread_mutex_destroy(&idle->lock);
}

void weft__idle_notify(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	WEFT_CHAOS_POINT();
	/* seq_cst RMW, not a load: see the header comment. */
	uint64_t s = atomic_fetch_add_explicit(&idle->state, 0, memory_order_seq_cst);
	if (IDLE_SEARCHING(s) != 0 || IDLE_UNPARKED(s) >= idle->n)
		return;
	pthread_mutex_lock(&idle->lock);
	s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (IDLE_SEARCHING(s) != 0 || idle->nsleepers == 0) {
		pthread_mutex_unlock(&idle->lock);
		return;
	}
	unsigned core = idle->sleepers[--idle->nsleepers];
	atomic_fetch_add_explicit(&idle->state, IDLE_UNPARK_ONE | 1, memory_order_seq_cst);
	/* release: the woken worker's acquire load sees it was popped. */
	atomic_store_explicit(&rt->cores[core].sleeping, false, memory_order_release);
	pthread_mutex_unlock(&idle->lock);
	WEFT_PROBE(notify, weft__ctx() && weft__ctx()->core ? (int)weft__ctx()->core->index : -1,
		   core, (uintptr_t)rt);
	weft__registry_unpark(rt, core);
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

bool weft__idle_park(struct weft_runtime *rt, struct weft__core *c, bool searching)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	uint64_t prev = atomic_fetch_sub_explicit(&idle->state,
						  IDLE_UNPARK_ONE | (searching ? 1 : 0),
						  memory_order_seq_cst);
	atomic_store_explicit(&c->sleeping, true, memory_order_relaxed);
	idle->sleepers[idle->nsleepers++] = c->index;
	pthread_mutex_unlock(&idle->lock);
	WEFT_CHAOS_POINT(); /* between announcing idle and the rescan */
	return searching && IDLE_SEARCHING(prev) == 1;
}

void weft__idle_unpark_self(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__idle *idle = &rt->idle;
	pthread_mutex_lock(&idle->lock);
	if (atomic_load_explicit(&c->sleeping, memory_order_relaxed)) {
		for (unsigned i = 0; i < idle->nsleepers; i++) {
			if (idle->sleepers[i] == c->index) {
				idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
				break;
			}
		}
		/* as a notifier that popped us would */
		atomic_fetch_add_explicit(&idle->state, IDLE_UNPARK_ONE | 1, memory_order_seq_cst);
		atomic_store_explicit(&c->sleeping, false, memory_order_relaxed);
	}
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_notify_if_work(struct weft_runtime *rt)
{
	for (unsigned i = 0; i < rt->n; i++) {
		if (weft__ring_len(&rt->cores[i].ring)) {
			weft__idle_notify(rt);
			return;
		}
	}
	if (weft__inject_len(&rt->inject))
		weft__idle_notify(rt);
}
