/*
 * alloc.c - task memory from per-core caches.
 *
 * Tasks are carved from slabs of SLAB_TASKS headers. Each core has a cache:
 * a private free list its worker pops and pushes without atomics, and a
 * `remote_free` stack that other threads push freed tasks onto (a CAS push;
 * the owner takes the whole stack with one exchange, so there is no ABA).
 * Threads that hold no core (block_on callers, plain threads) share one more
 * cache, `rt->foreign`, under a mutex. A task remembers its cache and goes
 * back to it wherever it is freed.
 *
 * All slabs live until the runtime is destroyed; destroy counts the slots
 * on free lists to refuse (-EBUSY) while a handle or waker still holds one.
 */
#include <stdlib.h>

#include "runtime.h"

#define SLAB_TASKS 64
#define FOREIGN_CACHE 0xffffu

struct slab {
	struct slab *next;
	struct weft_task task[SLAB_TASKS];
};

static struct weft__task_cache *cache_of(struct weft_runtime *rt, uint16_t idx)
{
	return idx == FOREIGN_CACHE ? &rt->foreign : &rt->cores[idx].cache;
}

int weft__alloc_init(struct weft_runtime *rt)
{
	pthread_mutex_init(&rt->foreign_lock, NULL);
	pthread_mutex_init(&rt->slab_lock, NULL);
	rt->foreign.free = NULL;
	atomic_init(&rt->foreign.remote_free, NULL);
	for (unsigned i = 0; i < rt->n; i++) {
		rt->cores[i].cache.free = NULL;
		atomic_init(&rt->cores[i].cache.remote_free, NULL);
	}
	rt->slabs = NULL;
	rt->slab_count = 0;
	return 0;
}

/* Refill c (held by the caller) from its remote stack or a new slab. */
static struct weft_task *refill(struct weft_runtime *rt, struct weft__task_cache *c,
				uint16_t idx)
{
	/* acquire: pairs with the release CAS of remote frees. */
	struct weft_task *list = atomic_exchange_explicit(&c->remote_free, NULL,
							  memory_order_acquire);
	if (list) {
		c->free = list->qnext;
		return list;
	}
	struct slab *s = weft__alloc_aligned(sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_lock(&rt->slab_lock);
	s->next = rt->slabs;
	rt->slabs = s;
	rt->slab_count++;
	pthread_mutex_unlock(&rt->slab_lock);
	for (unsigned i = 0; i < SLAB_TASKS; i++) {
		s->task[i].cache = idx;
		s->task[i].qnext = i + 1 < SLAB_TASKS ? &s->task[i + 1] : NULL;
	}
	c->free = s->task[0].qnext;
	return &s->task[0];
}

struct weft_task *weft__task_alloc(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	struct weft_task *t;
	if (ctx && ctx->rt == rt && ctx->core) {
		struct weft__task_cache *c = &ctx->core->cache;
		t = c->free;
		if (t)
			c->free = t->qnext;
		else
			t = refill(rt, c, (uint16_t)ctx->core->index);
		return t;
	}
	pthread_mutex_lock(&rt->foreign_lock);
	t = rt->foreign.free;
	if (t)
		rt->foreign.free = t->qnext;
	else
		t = refill(rt, &rt->foreign, FOREIGN_CACHE);
	pthread_mutex_unlock(&rt->foreign_lock);
	return t;
}

void weft__task_free(struct weft_task *t)
{
	struct weft_runtime *rt = t->rt;
	struct weft__ctx *ctx = weft__ctx();
	uint16_t idx = t->cache;
	if (ctx && ctx->rt == rt && ctx->core && ctx->core->index == idx) {
		t->qnext = ctx->core->cache.free;
		ctx->core->cache.free = t;
		return;
	}
	struct weft__task_cache *c = cache_of(rt, idx);
	struct weft_task *head = atomic_load_explicit(&c->remote_free, memory_order_relaxed);
	do {
		t->qnext = head;
		/* release: the task's last writes happen before its reuse. */
	} while (!atomic_compare_exchange_weak_explicit(&c->remote_free, &head, t,
							memory_order_release,
							memory_order_relaxed));
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
	size_t free_n = count_list(rt->foreign.free) +
			count_list(atomic_load(&rt->foreign.remote_free));
	for (unsigned i = 0; i < rt->n; i++)
		free_n += count_list(rt->cores[i].cache.free) +
			  count_list(atomic_load(&rt->cores[i].cache.remote_free));
	return rt->slab_count * SLAB_TASKS - free_n;
}

void weft__alloc_fini(struct weft_runtime *rt)
{
	struct slab *s = rt->slabs;
	while (s) {
		struct slab *next = s->next;
		weft__free(s);
		s = next;
	}
	rt->slabs = NULL;
	pthread_mutex_destroy(&rt->foreign_lock);
	pthread_mutex_destroy(&rt->slab_lock);
}
