/*
 * registry.c - which worker thread holds which core, RCU-protected.
 *
 * Readers (anyone who wakes a worker: notifiers on any thread, including
 * application threads that never registered with liburcu) use the
 * "bulletproof" flavour, urcu-bp, whose readers register themselves on
 * first use. They look a core's holder up under rcu_read_lock() with no
 * lock. Writers (a thread starting, leaving, or taking over a core) copy
 * the table under `registry_lock`, publish the copy with
 * rcu_assign_pointer (release), wait for a grace period, and free the old
 * table: no reader can still hold it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-bp.h>

#include "runtime.h"

/*
 * ThreadSanitizer cannot see liburcu's ordering (the library is not
 * instrumented, and rcu_dereference is a volatile load): the pointer is
 * read and published through C11 atomics in TSan builds, and the grace
 * period is annotated - each reader "releases" a token when it leaves its
 * read-side section, the writer "acquires" it after synchronize_rcu, which
 * is exactly the edge the grace period guarantees.
 */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define REG_LOAD(rt) __atomic_load_n(&(rt)->registry, __ATOMIC_ACQUIRE)
#define REG_STORE(rt, r) __atomic_store_n(&(rt)->registry, (r), __ATOMIC_RELEASE)
#define GP_READER_DONE(rt) __tsan_release(&(rt)->registry_gp)
#define GP_WRITER_AFTER(rt) __tsan_acquire(&(rt)->registry_gp)
#else
#define REG_LOAD(rt) rcu_dereference((rt)->registry)
#define REG_STORE(rt, r) rcu_assign_pointer((rt)->registry, (r))
#define GP_READER_DONE(rt) do { } while (0)
#define GP_WRITER_AFTER(rt) do { } while (0)
#endif

static struct weft__registry *reg_new(unsigned n)
{
	return calloc(1, sizeof(struct weft__registry) + n * sizeof(struct weft__worker *));
}

int weft__registry_init(struct weft_runtime *rt)
{
	struct weft__registry *r = reg_new(rt->n);
	if (!r)
		return -ENOMEM;
	r->n = rt->n;
	rt->registry = r;
	pthread_mutex_init(&rt->registry_lock, NULL);
	return 0;
}

void weft__registry_set(struct weft_runtime *rt, unsigned core, struct weft__worker *w)
{
	pthread_mutex_lock(&rt->registry_lock);
	struct weft__registry *old = rt->registry;
	struct weft__registry *r = reg_new(old->n);
	if (!r) {
		/* Tiny allocation; without it nobody could wake this core. */
		weft__die("out of memory updating the worker registry");
	}
	memcpy(r, old, sizeof(*r) + old->n * sizeof(r->holder[0]));
	r->holder[core] = w;
	/* release: readers that see the new table see its contents. */
	REG_STORE(rt, r);
	pthread_mutex_unlock(&rt->registry_lock);
	synchronize_rcu();
	GP_WRITER_AFTER(rt);
	free(old);
}

void weft__registry_unpark(struct weft_runtime *rt, unsigned core)
{
	rcu_read_lock();
	struct weft__registry *r = REG_LOAD(rt);
	struct weft__worker *w = r->holder[core];
	if (w)
		weft__parker_unpark(&w->parker);
	GP_READER_DONE(rt);
	rcu_read_unlock();
}

uint64_t weft__registry_tid(struct weft_runtime *rt, unsigned core)
{
	rcu_read_lock();
	struct weft__registry *r = REG_LOAD(rt);
	struct weft__worker *w = r->holder[core];
	uint64_t tid = w ? (uint64_t)atomic_load_explicit(&w->tid, memory_order_relaxed) : 0;
	GP_READER_DONE(rt);
	rcu_read_unlock();
	return tid;
}

void weft__registry_fini(struct weft_runtime *rt)
{
	free(rt->registry);
	pthread_mutex_destroy(&rt->registry_lock);
}
