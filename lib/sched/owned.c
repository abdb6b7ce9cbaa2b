/*
 * owned.c - the list of every task of a runtime that has not completed, so
 * shutdown can cancel the ones that are waiting. Intrusive doubly linked
 * lists in shards (4 per worker, a power of two) chosen by task id, each
 * behind its own short lock (slock.h), so concurrent spawns rarely meet. Closing sets a flag
 * in every shard under its lock: a bind that comes later fails, and every
 * task bound before it is found by the shutdown sweep.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

int weft__owned_init(struct weft__owned *o, unsigned workers)
{
	unsigned n = 4;
	while (n < workers * 4)
		n <<= 1;
	o->shard = weft__alloc_aligned(n * sizeof(*o->shard));
	if (!o->shard)
		return -ENOMEM;
	o->mask = n - 1;
	for (unsigned i = 0; i < n; i++) {
		struct weft__owned_shard *s = &o->shard[i];
		weft__slock_init(&s->lock);
		s->head = NULL;
		s->closed = false;
		atomic_init(&s->len, 0);
		atomic_init(&s->added, 0);
	}
	return 0;
}

void weft__owned_fini(struct weft__owned *o)
{
	if (!o->shard)
		return;
	weft__free(o->shard);
	o->shard = NULL;
}

int weft__owned_bind(struct weft__owned *o, struct weft_task *t)
{
	struct weft__owned_shard *s = &o->shard[t->id & o->mask];
	t->shard = (uint16_t)(t->id & o->mask);
	weft__slock_lock(&s->lock);
	if (s->closed) {
		weft__slock_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	t->owned_prev = NULL;
	t->owned_next = s->head;
	if (s->head)
		s->head->owned_prev = t;
	s->head = t;
	atomic_store_explicit(&s->len, atomic_load_explicit(&s->len, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&s->added, atomic_load_explicit(&s->added, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	weft__slock_unlock(&s->lock);
	return 0;
}

static void unlink_locked(struct weft__owned_shard *s, struct weft_task *t)
{
	if (t->owned_prev)
		t->owned_prev->owned_next = t->owned_next;
	else
		s->head = t->owned_next;
	if (t->owned_next)
		t->owned_next->owned_prev = t->owned_prev;
	t->owned_prev = t->owned_next = NULL;
	atomic_store_explicit(&s->len, atomic_load_explicit(&s->len, memory_order_relaxed) - 1,
			      memory_order_relaxed);
}

void weft__owned_remove(struct weft__owned *o, struct weft_task *t)
{
	struct weft__owned_shard *s = &o->shard[t->shard];
	weft__slock_lock(&s->lock);
	unlink_locked(s, t);
	weft__slock_unlock(&s->lock);
}

void weft__owned_close(struct weft__owned *o)
{
	for (unsigned i = 0; i <= o->mask; i++) {
		weft__slock_lock(&o->shard[i].lock);
		o->shard[i].closed = true;
		weft__slock_unlock(&o->shard[i].lock);
	}
}

struct weft_task *weft__owned_first(struct weft__owned *o)
{
	for (unsigned i = 0; i <= o->mask; i++) {
		struct weft__owned_shard *s = &o->shard[i];
		weft__slock_lock(&s->lock);
		struct weft_task *t = s->head;
		weft__slock_unlock(&s->lock);
		if (t)
			return t;
	}
	return NULL;
}

void weft__owned_each(struct weft__owned *o, void (*fn)(struct weft_task *t))
{
	for (unsigned i = 0; i <= o->mask; i++) {
		struct weft__owned_shard *s = &o->shard[i];
		weft__slock_lock(&s->lock);
		for (struct weft_task *t = s->head; t; t = t->owned_next)
			fn(t);
		weft__slock_unlock(&s->lock);
	}
}

uint64_t weft__owned_len(struct weft__owned *o)
{
	uint64_t n = 0;
	for (unsigned i = 0; i <= o->mask; i++)
		n += atomic_load_explicit(&o->shard[i].len, memory_order_relaxed);
	return n;
}

uint64_t weft__owned_added(struct weft__owned *o)
{
	uint64_t n = 0;
	for (unsigned i = 0; i <= o->mask; i++)
		n += atomic_load_explicit(&o->shard[i].added, memory_order_relaxed);
	return n;
}
