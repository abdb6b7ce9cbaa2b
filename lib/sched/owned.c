/*
 * owned.c - the list of the runtime's tasks that may be waiting, so that
 * shutdown can cancel them. A task is bound when a poll first leaves it
 * pending (task.c, weft__task_run), not at spawn: a task queued or running
 * is found by the workers or by the final drain of the queues, and one
 * that completes in its first poll never touches the list (binding every
 * task at spawn and unlinking it at completion moved the shard's lock
 * line between the spawning and the completing core twice per task: 15%
 * of spawn_many_local's samples). Blocking-pool tasks are bound at spawn.
 * Intrusive doubly linked lists in shards (4 per worker, a power of two),
 * four per core: a task goes to one of the binding core's four by its id
 * (to a shard by id alone from a thread holding no core), each behind its
 * own short lock (slock.h). Closing
 * sets a flag in every shard under its lock: a bind that comes later
 * fails (the caller cancels the task), and every task bound before it is
 * found by the shutdown sweep.
 *
 * The counts of spawned and completed tasks (alive_tasks is their
 * difference) are per core, written by the core's holder, plus a shared
 * pair for threads holding no core.
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
	atomic_init(&o->spawned_off, 0);
	atomic_init(&o->completed_off, 0);
	for (unsigned i = 0; i < n; i++) {
		struct weft__owned_shard *s = &o->shard[i];
		weft__slock_init(&s->lock);
		s->head = NULL;
		s->closed = false;
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

int weft__owned_bind(struct weft__owned *o, struct weft_task *t, const struct weft__core *c)
{
	/* A core's binds go to its own four shards (a runtime grown past its
	 * size at creation wraps around): by task id alone, each shard's lock
	 * line and list head went back and forth between the cores (7.6% of
	 * ping_pong_fiber in the bind and the unlink, most of it on the
	 * lock's RMW). The unlink takes the shard recorded here. */
	uint32_t i = (c ? c->index << 2 | (uint32_t)(t->id & 3) : (uint32_t)t->id) & o->mask;
	struct weft__owned_shard *s = &o->shard[i];
	t->shard = (uint16_t)i;
	weft__slock_lock(&s->lock);
	if (s->closed) {
		weft__slock_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	t->owned = true;
	t->owned_prev = NULL;
	t->owned_next = s->head;
	if (s->head)
		s->head->owned_prev = t;
	s->head = t;
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

struct weft_task *weft__owned_claim_idle(struct weft__owned *o)
{
	for (unsigned i = 0; i <= o->mask; i++) {
		struct weft__owned_shard *s = &o->shard[i];
		weft__slock_lock(&s->lock);
		for (struct weft_task *t = s->head; t; t = t->owned_next) {
			/* Claimed, it stays listed (and referenced by the list)
			 * until the caller completes it: nobody else can now. */
			if (!weft__ts_shutdown(&t->state)) {
				weft__slock_unlock(&s->lock);
				return t;
			}
		}
		weft__slock_unlock(&s->lock);
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

static struct weft__core *own_core(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	return ctx && ctx->rt == rt ? ctx->core : NULL;
}

/* release: a reader that acquires a completion sees the spawn before it
 * (the task was queued, released, after its spawn was counted). */
static void count(_Atomic uint64_t *own, _Atomic uint64_t *shared, bool mine)
{
	if (mine)
		atomic_store_explicit(own, atomic_load_explicit(own, memory_order_relaxed) + 1,
				      memory_order_release);
	else
		atomic_fetch_add_explicit(shared, 1, memory_order_release);
}

void weft__owned_count_spawn(struct weft_runtime *rt)
{
	struct weft__core *c = own_core(rt);
	count(c ? &c->spawned : NULL, &rt->owned.spawned_off, c != NULL);
}

void weft__owned_count_completion(struct weft_runtime *rt)
{
	struct weft__core *c = own_core(rt);
	count(c ? &c->completed : NULL, &rt->owned.completed_off, c != NULL);
}

static uint64_t sum(struct weft_runtime *rt, bool completed)
{
	uint64_t n = atomic_load_explicit(completed ? &rt->owned.completed_off
						    : &rt->owned.spawned_off, memory_order_acquire);
	unsigned cores = atomic_load_explicit(&rt->n, memory_order_acquire);
	for (unsigned i = 0; i < cores; i++)
		n += atomic_load_explicit(completed ? &rt->cores[i].completed : &rt->cores[i].spawned,
					  memory_order_acquire);
	return n;
}

uint64_t weft__owned_spawned(struct weft_runtime *rt) { return sum(rt, false); }

uint64_t weft__owned_alive(struct weft_runtime *rt)
{
	/* Completions first: both counts only grow, and a task is counted
	 * spawned before it can complete, so this is never below the number
	 * alive at the first read. A joiner that saw its task complete sees
	 * it counted (the count is written before COMPLETE is published). */
	uint64_t done = sum(rt, true);
	uint64_t spawned = sum(rt, false);
	return spawned > done ? spawned - done : 0;
}
