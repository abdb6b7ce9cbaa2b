/*
 * registry.c - which worker thread holds which core, RCU-protected.
 *
 * Readers (anyone who wakes a worker: notifiers on any thread, including
 * application threads that never registered with liburcu) use the
 * "bulletproof" flavour, urcu-bp, whose readers register themselves on
 * first use. They look a core's holder up under rcu_read_lock() with no
 * lock. Writers (a thread starting, leaving, or taking over a core) publish
 * the new holder in the core's slot with rcu_assign_pointer (release) under
 * `registry_lock`, then wait for a grace period: after it, no reader can
 * still be using the previous holder.
 */
#include <errno.h>
#include <stdlib.h>

#include <urcu-bp.h>

#include "runtime.h"

/*
 * ThreadSanitizer cannot see liburcu's ordering (the library is not
 * instrumented, and rcu_dereference is a volatile load): slots are read and
 * published through C11 atomics in TSan builds, and the grace period is
 * annotated - each reader "releases" a token when it leaves its read-side
 * section, the writer "acquires" it after synchronize_rcu, which is exactly
 * the edge the grace period guarantees.
 */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define SLOT_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SLOT_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define GP_READER_DONE(rt) __tsan_release(&(rt)->registry_gp)
#define GP_WRITER_AFTER(rt) __tsan_acquire(&(rt)->registry_gp)
#else
#define SLOT_LOAD(p) rcu_dereference(*(p))
#define SLOT_STORE(p, v) rcu_assign_pointer(*(p), (v))
#define GP_READER_DONE(rt) do { } while (0)
#define GP_WRITER_AFTER(rt) do { } while (0)
#endif

/*
 * The table has one slot per core, allocated once at create; an update
 * replaces one slot (the published entry is the worker struct), so starting
 * or retiring a thread never allocates and cannot fail. After the grace
 * period no reader holds the previous entry, which its owner may then free.
 */
int weft__registry_init(struct weft_runtime *rt)
{
	struct weft__registry *r =
		weft__calloc(1, sizeof(struct weft__registry) + rt->n * sizeof(struct weft__worker *));
	if (!r)
		return -ENOMEM;
	r->n = rt->n;
	rt->registry = r;
	pthread_mutex_init(&rt->registry_lock, NULL);
	return 0;
}

struct weft__worker *weft__registry_set(struct weft_runtime *rt, unsigned core,
					struct weft__worker *w)
{
	pthread_mutex_lock(&rt->registry_lock); /* one writer per slot at a time */
	struct weft__worker *prev = rt->registry->holder[core];
	/* release: a reader that sees w sees it initialised (its parker). */
	SLOT_STORE(&rt->registry->holder[core], w);
	pthread_mutex_unlock(&rt->registry_lock);
	synchronize_rcu();
	GP_WRITER_AFTER(rt);
	return prev; /* no reader holds it any more */
}

void weft__registry_unpark(struct weft_runtime *rt, unsigned core)
{
	rcu_read_lock();
	struct weft__worker *w = SLOT_LOAD(&rt->registry->holder[core]);
	if (w)
		weft__parker_unpark(&w->parker);
	GP_READER_DONE(rt);
	rcu_read_unlock();
}

uint64_t weft__registry_tid(struct weft_runtime *rt, unsigned core)
{
	rcu_read_lock();
	struct weft__worker *w = SLOT_LOAD(&rt->registry->holder[core]);
	uint64_t tid = w ? (uint64_t)atomic_load_explicit(&w->tid, memory_order_relaxed) : 0;
	GP_READER_DONE(rt);
	rcu_read_unlock();
	return tid;
}

void weft__registry_fini(struct weft_runtime *rt)
{
	weft__free(rt->registry);
	pthread_mutex_destroy(&rt->registry_lock);
}
