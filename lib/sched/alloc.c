/*
 * alloc.c - task memory from per-core caches.
 *
 * Tasks are carved from slabs of SLAB_TASKS headers. Each core has a cache:
 * a private free list its worker pops and pushes without atomics, and a
 * `remote_free` stack that other threads push freed tasks onto (a CAS push;
 * the owner takes the whole stack with one exchange, so there is no ABA).
 * Threads that hold no core (block_on callers, plain threads) share one more
 * cache, `rt->foreign`, under a mutex. A task remembers its cache and its
 * slab and goes back to that cache wherever it is freed.
 *
 * A slab belongs to one cache (the one that carved it) and counts its tasks
 * on that cache's free list (`nfree`, owner only). An allocation that finds
 * the free list empty takes the whole remote stack as `fresh`, uncounted,
 * and pops from it with the next task prefetched: counting it at the take
 * walked the stack, one dependent cache miss per task (each freed on
 * another core), and the pops missed again once the stack was larger than
 * the cache (refill and weft__task_alloc were ~30% of the spawning thread
 * in spawn_many_local_fiber). A trim counts `fresh` in first. Trimming gives back slabs whose
 * tasks are all free, so memory returns after a burst: before the core's
 * thread parks (all but KEEP_TASKS free tasks) and at maintenance (every
 * TRIM_PERIOD_NS, what stayed free throughout the period beyond KEEP_TASKS),
 * and the foreign cache likewise by whichever worker gets its lock. A trim
 * walks the free list once (O(free tasks)); it runs only when more than
 * KEEP_TASKS are free.
 *
 * Destroy counts the slots on free lists against the slabs still held to
 * refuse (-EBUSY) while a handle or waker still holds one.
 */
#include <stdlib.h>

#include "runtime.h"

#define SLAB_TASKS 64
#define FOREIGN_CACHE 0xffffu
#define KEEP_TASKS (16 * SLAB_TASKS)   /* free tasks a cache keeps when trimming */
#define TRIM_PERIOD_NS 500000000ull

struct weft__task_slab {
	struct weft__task_slab *prev, *next; /* the owning cache's list */
	unsigned nfree;                      /* tasks of this slab on the cache's free list */
	bool dying;                          /* chosen by the trim in progress */
	struct weft_task task[SLAB_TASKS];
};

static struct weft__task_cache *cache_of(struct weft_runtime *rt, uint16_t idx)
{
	return idx == FOREIGN_CACHE ? &rt->foreign : &rt->cores[idx].cache;
}

static void cache_init(struct weft__task_cache *c)
{
	c->free = c->fresh = NULL;
	c->nfree = c->low = 0;
	c->trimmed_ns = 0;
	c->slabs = NULL;
	atomic_init(&c->remote_free, NULL);
}

void weft__alloc_core_init(struct weft__core *c)
{
	cache_init(&c->cache);
}

int weft__alloc_init(struct weft_runtime *rt)
{
	weft__slock_init(&rt->foreign_lock);
	cache_init(&rt->foreign);
	for (unsigned i = 0; i < rt->n; i++)
		cache_init(&rt->cores[i].cache);
	atomic_init(&rt->slab_count, 0);
	return 0;
}

static inline void push_free(struct weft__task_cache *c, struct weft_task *t)
{
	t->qnext = c->free;
	c->free = t;
	c->nfree++;
	t->slab->nfree++;
}

static inline struct weft_task *pop_free(struct weft__task_cache *c)
{
	struct weft_task *t = c->free;
	if (t) {
		c->free = t->qnext;
		c->nfree--;
		t->slab->nfree--;
		if (c->nfree < c->low)
			c->low = c->nfree;
	}
	return t;
}

/* A task of `fresh`: never counted, so nothing to uncount. The next one's
 * header is prefetched (its link is what the next pop reads): the misses
 * overlap with the spawn in between instead of coming one after another. */
static inline struct weft_task *pop_fresh(struct weft__task_cache *c)
{
	struct weft_task *t = c->fresh;
	if (t) {
		c->fresh = t->qnext;
		if (c->fresh)
			__builtin_prefetch(c->fresh, 1, 3);
	}
	return t;
}

/* Move `fresh` and the remote stack onto the owner's counted list (held by
 * the caller): before a trim, which frees only slabs counted whole. */
static bool drain_remote(struct weft__task_cache *c)
{
	struct weft_task *t;
	while ((t = pop_fresh(c)))
		push_free(c, t);
	/* acquire: pairs with the release CAS of remote frees. */
	struct weft_task *list = atomic_exchange_explicit(&c->remote_free, NULL,
							  memory_order_acquire);
	bool found = list != NULL;
	while (list) {
		struct weft_task *next = list->qnext;
		push_free(c, list);
		list = next;
	}
	return found;
}

/* Refill c (held by the caller, its free list and `fresh` empty) from its
 * remote stack, taken whole as `fresh`, or a new slab. */
static struct weft_task *refill(struct weft_runtime *rt, struct weft__task_cache *c,
				uint16_t idx)
{
	/* acquire: pairs with the release CAS of remote frees. */
	c->fresh = atomic_exchange_explicit(&c->remote_free, NULL, memory_order_acquire);
	struct weft_task *t = pop_fresh(c);
	if (t)
		return t;
	struct weft__task_slab *s = weft__alloc_aligned(sizeof(*s));
	if (!s)
		return NULL;
	atomic_fetch_add_explicit(&rt->slab_count, 1, memory_order_relaxed);
	s->prev = NULL;
	s->next = c->slabs;
	if (c->slabs)
		c->slabs->prev = s;
	c->slabs = s;
	s->nfree = 0;
	s->dying = false;
	for (unsigned i = SLAB_TASKS; i-- > 1;) {
		s->task[i].cache = idx;
		s->task[i].slab = s;
		push_free(c, &s->task[i]);
	}
	s->task[0].cache = idx;
	s->task[0].slab = s;
	return &s->task[0];
}

struct weft_task *weft__task_alloc(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	struct weft_task *t;
	if (ctx && ctx->rt == rt && ctx->core) {
		struct weft__task_cache *c = &ctx->core->cache;
		t = pop_free(c);
		if (!t)
			t = pop_fresh(c);
		if (!t)
			t = refill(rt, c, (uint16_t)ctx->core->index);
		return t;
	}
	weft__slock_lock(&rt->foreign_lock);
	t = pop_free(&rt->foreign);
	if (!t)
		t = pop_fresh(&rt->foreign);
	if (!t)
		t = refill(rt, &rt->foreign, FOREIGN_CACHE);
	weft__slock_unlock(&rt->foreign_lock);
	return t;
}

/*
 * A free into a cache's empty remote stack (the first since its owner last
 * took it), and every REMOTE_WAKE_EVERY frees a thread makes into caches
 * it does not own: if the cache's owner (any core, for the foreign cache)
 * sleeps, ask it to trim (core->trim_wanted) and wake it. Without this,
 * slots freed by a joining thread after the workers went idle stayed
 * cached until the next activity. The count alone left up to 1023 slots
 * per freeing thread for good: six plain threads joining 1,000 handles
 * each after the workers slept left 94 slabs (found by a review). The
 * flag stays set until that core trims, so the asks of a trickle of
 * frees wake it once per trim (at most one idle trim per core per gap,
 * fiber.c). Called before the free is published: rt is alive (the slot
 * still counts as in use, so destroy waits).
 */
#define REMOTE_WAKE_EVERY 1024u
static WEFT__TLS unsigned remote_frees;

static void ask_trim(struct weft_runtime *rt, struct weft__core *c)
{
	if (atomic_exchange_explicit(&c->trim_wanted, true, memory_order_relaxed))
		return; /* asked already, not trimmed since */
	weft__registry_unpark(rt, c->index);
}

static void wake_for_trim(struct weft_runtime *rt, uint16_t idx)
{
	unsigned active = atomic_load_explicit(&rt->active, memory_order_acquire);
	if (idx != FOREIGN_CACHE && idx < active) {
		/* an active core's cache: its owner trims it (awake: at
		 * maintenance) */
		struct weft__core *c = &rt->cores[idx];
		if (atomic_load_explicit(&c->sleeping, memory_order_relaxed))
			ask_trim(rt, c);
		return;
	}
	/* The foreign cache, or a retired core's: no owner, so any sleeping
	 * worker trims it (weft__alloc_trim). A retired core's cache had
	 * nobody: the slabs of tasks freed after a shrink stayed until the
	 * core came back or destroy (found by a review). */
	for (unsigned i = 0; i < active; i++) {
		struct weft__core *c = &rt->cores[i];
		if (atomic_load_explicit(&c->sleeping, memory_order_relaxed)) {
			ask_trim(rt, c);
			return;
		}
	}
}

void weft__task_free(struct weft_task *t)
{
	struct weft_runtime *rt = t->rt;
	struct weft__ctx *ctx = weft__ctx();
	uint16_t idx = t->cache;
	if (ctx && ctx->rt == rt && ctx->core && ctx->core->index == idx) {
		push_free(&ctx->core->cache, t);
		return;
	}
	struct weft__task_cache *c = cache_of(rt, idx);
	struct weft_task *head = atomic_load_explicit(&c->remote_free, memory_order_relaxed);
	bool asked = ++remote_frees % REMOTE_WAKE_EVERY == 0;
	if (asked)
		wake_for_trim(rt, idx);
	do {
		/* on the head the push lands on: a push onto an empty stack
		 * has asked (a first load's stale head did not count) */
		if (!head && !asked) {
			wake_for_trim(rt, idx);
			asked = true;
		}
		t->qnext = head;
		/* release: the task's last writes happen before its reuse. */
	} while (!atomic_compare_exchange_weak_explicit(&c->remote_free, &head, t,
							memory_order_release,
							memory_order_relaxed));
}

/* Free whole slabs of c (held by the caller) until at most `keep` tasks
 * are free, or no slab is entirely free. */
static void trim_cache(struct weft_runtime *rt, struct weft__task_cache *c, size_t keep)
{
	size_t n = c->nfree, dying = 0;
	for (struct weft__task_slab *s = c->slabs; s && n >= keep + SLAB_TASKS; s = s->next) {
		if (s->nfree == SLAB_TASKS) {
			s->dying = true;
			n -= SLAB_TASKS;
			dying++;
		}
	}
	if (!dying)
		return;
	/* Unlink the dying slabs' tasks from the free list, keeping order. */
	struct weft_task **pp = &c->free;
	while (*pp) {
		if ((*pp)->slab->dying)
			*pp = (*pp)->qnext;
		else
			pp = &(*pp)->qnext;
	}
	c->nfree = n;
	if (c->low > n)
		c->low = n;
	struct weft__task_slab *s = c->slabs;
	while (s) {
		struct weft__task_slab *next = s->next;
		if (s->dying) {
			if (s->prev)
				s->prev->next = s->next;
			else
				c->slabs = s->next;
			if (s->next)
				s->next->prev = s->prev;
			weft__free(s);
		}
		s = next;
	}
	atomic_fetch_sub_explicit(&rt->slab_count, dying, memory_order_relaxed);
}

/* Idle: keep KEEP_TASKS, none if `deep` (idle since the last idle trim).
 * Otherwise once per period: what stayed free the whole period beyond
 * KEEP_TASKS was not needed. */
static bool trim_policy(struct weft_runtime *rt, struct weft__task_cache *c, bool idle,
			bool deep, uint64_t *now)
{
	/* At maintenance nothing happens before the period is up, not even
	 * the drain: it walks every task freed remotely since the last one,
	 * a cold header each (3% of ping_pong_fiber when it ran at every
	 * maintenance), and an allocation takes those uncounted anyway
	 * (refill). */
	if (!idle) {
		if (!*now)
			*now = weft__now_ns();
		if (*now - __atomic_load_n(&c->trimmed_ns, __ATOMIC_RELAXED) < TRIM_PERIOD_NS)
			return false;
		/* atomic: weft__alloc_trim peeks at the foreign cache's unlocked */
		__atomic_store_n(&c->trimmed_ns, *now, __ATOMIC_RELAXED);
	}
	bool found = drain_remote(c);
	size_t keep = idle && deep ? 0 : KEEP_TASKS;
	if (c->nfree < keep + SLAB_TASKS) {
		c->low = c->nfree;
		return found;
	}
	if (idle) {
		trim_cache(rt, c, keep);
		return found;
	}
	size_t unneeded = c->low > KEEP_TASKS ? c->low - KEEP_TASKS : 0;
	trim_cache(rt, c, c->nfree - unneeded);
	c->low = c->nfree;
	return found;
}

/* The caches of retired cores (set_workers shrank the runtime): tasks
 * freed after the retirement go back to the cache that carved them, which
 * no thread holds. Trimmed by a worker on its way to parking, under the
 * resize lock (tried, never waited for: a resize in progress trims its
 * own) so that no grow hands the core to a thread meanwhile. */
static bool trim_retired(struct weft_runtime *rt, bool deep)
{
	bool found = false;
	unsigned n = atomic_load_explicit(&rt->n, memory_order_acquire);
	if (atomic_load_explicit(&rt->active, memory_order_relaxed) >= n ||
	    pthread_mutex_trylock(&rt->resize_lock))
		return false;
	for (unsigned i = atomic_load_explicit(&rt->active, memory_order_relaxed); i < n; i++) {
		struct weft__core *c = &rt->cores[i];
		if (c->life != CORE_RETIRED)
			continue;
		uint64_t now = 0;
		found |= trim_policy(rt, &c->cache, true, deep, &now);
	}
	pthread_mutex_unlock(&rt->resize_lock);
	return found;
}

bool weft__alloc_trim(struct weft_runtime *rt, struct weft__core *core, bool idle, bool deep)
{
	uint64_t now = 0;
	bool found = trim_policy(rt, &core->cache, idle, deep, &now);
	/* The foreign cache fills when plain threads spawn (a burst from
	 * main, say) and has no worker of its own: trimmed by a worker on its
	 * way to parking (waiting for the lock: with a trylock, a trim that
	 * found it held gave nothing back and nothing asked for another), or
	 * at maintenance once its period is up if the lock is free - not at
	 * every maintenance, and never waited for there: the worker held
	 * the lock while draining the remote frees of a burst, and the
	 * spawning thread, blocked on it, slept in the kernel (~280 times a
	 * batch of spawn_many_local_fiber; its own refill drains them). */
	if (!idle) {
		if (!now)
			now = weft__now_ns();
		if (now - __atomic_load_n(&rt->foreign.trimmed_ns, __ATOMIC_RELAXED) < TRIM_PERIOD_NS)
			return false;
	}
	if (idle)
		weft__slock_lock(&rt->foreign_lock);
	if (idle || weft__slock_trylock(&rt->foreign_lock)) {
		found |= trim_policy(rt, &rt->foreign, idle, deep, &now); /* not idle: next period */
		weft__slock_unlock(&rt->foreign_lock);
	}
	if (!idle)
		return false;
	found |= trim_retired(rt, deep);
	return found;
}

static size_t count_list(struct weft_task *t)
{
	size_t n = 0;
	for (; t; t = t->qnext)
		n++;
	return n;
}

size_t weft__alloc_in_use(struct weft_runtime *rt)
{
	size_t free_n = count_list(rt->foreign.free) + count_list(rt->foreign.fresh) +
			count_list(atomic_load(&rt->foreign.remote_free));
	for (unsigned i = 0; i < rt->n; i++)
		free_n += count_list(rt->cores[i].cache.free) +
			  count_list(rt->cores[i].cache.fresh) +
			  count_list(atomic_load(&rt->cores[i].cache.remote_free));
	return atomic_load_explicit(&rt->slab_count, memory_order_relaxed) * SLAB_TASKS - free_n;
}

static void cache_fini(struct weft__task_cache *c)
{
	struct weft__task_slab *s = c->slabs;
	while (s) {
		struct weft__task_slab *next = s->next;
		weft__free(s);
		s = next;
	}
	c->slabs = NULL;
	c->free = c->fresh = NULL;
}

void weft__alloc_fini(struct weft_runtime *rt)
{
	cache_fini(&rt->foreign);
	for (unsigned i = 0; i < rt->n; i++)
		cache_fini(&rt->cores[i].cache);
}
