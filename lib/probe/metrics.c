/*
 * metrics.c - snapshot of the runtime's counters. Per-core counters are
 * read from their published copies (relaxed atomics written by the owner at
 * maintenance, before parking and at exit); depths are read live.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

int weft_runtime_metrics(struct weft_runtime *rt, struct weft_metrics **out)
{
	if (!rt || !out)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	/* once: weft_runtime_set_workers may add cores meanwhile */
	unsigned n = atomic_load_explicit(&rt->n, memory_order_acquire);
	struct weft_metrics *m = weft__calloc(1, sizeof(*m) + n * sizeof(m->worker[0]));
	if (!m)
		return -ENOMEM;
	m->workers = n;
	/* read after n, so a grow in between can make it larger: a caller
	 * looping to workers_active read past worker[] (found by a review) */
	unsigned active = atomic_load_explicit(&rt->active, memory_order_relaxed);
	m->workers_active = active < n ? active : n;
	m->alive_tasks = weft__owned_alive(rt);
	m->spawned_tasks = weft__owned_spawned(rt);
	m->inject_depth = weft__inject_len(&rt->inject);
	m->io_fds_registered = atomic_load_explicit(&rt->driver.io_registered_count, memory_order_relaxed);
	m->io_fds_deregistered = atomic_load_explicit(&rt->driver.io_deregistered_count, memory_order_relaxed);
	m->io_ready_events = atomic_load_explicit(&rt->driver.io_ready_events, memory_order_relaxed);
	weft__blocking_metrics(rt, m);
	weft__fiber_metrics(rt, m);
	m->remote_schedule_count = atomic_load_explicit(&rt->inject.remote_taken,
							memory_order_relaxed);
	for (unsigned i = 0; i < n; i++) {
		struct weft__core *c = &rt->cores[i];
		struct weft_worker_metrics *w = &m->worker[i];
#define RD(f) atomic_load_explicit(&c->pub.f, memory_order_relaxed)
		w->park_count = RD(park_count);
		w->noop_count = RD(noop_count);
		w->steal_count = RD(steal_count);
		w->steal_operations = RD(steal_operations);
		w->poll_count = RD(poll_count);
		w->busy_ns = RD(busy_ns);
		w->local_schedule_count = RD(local_schedule_count);
		w->overflow_count = RD(overflow_count);
		w->mean_poll_ns = RD(mean_poll_ns);
		m->budget_forced_yield_count += RD(budget_forced_yields);
#undef RD
		w->local_queue_depth = weft__ring_len(&c->ring);
		/* the thread holding the core now (block_in_place moves cores) */
		w->thread_id = weft__registry_tid(rt, i);
		w->stalls = atomic_load_explicit(&c->stalls, memory_order_relaxed);
		m->stalls += w->stalls;
	}
	*out = m;
	return 0;
}

void weft_metrics_free(struct weft_metrics *m) { weft__free(m); }
