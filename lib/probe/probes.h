/*
 * probes.h - USDT probe points, provider "weft".
 *
 * Every probe has its own semaphore (a counter the tracer increments while
 * attached), so a probe nobody watches costs one load and a predictable
 * branch, and its arguments are not even computed. Probes fire on
 * scheduling decisions, never per task poll. Every probe carries the
 * runtime id (the runtime's address), so several runtimes in one process
 * can be told apart: runtime_create's first argument, every other probe's
 * last.
 *
 *   runtime_create(rt_id, workers)
 *   runtime_shutdown(rt_id)
 *   runtime_resize(old_workers, new_workers, rt_id)   weft_runtime_set_workers; the
 *                                               cores then stop (worker_stop) or start
 *                                               (worker_start) on their own
 *   worker_start(core, tid, counters, rt_id)    counters: struct weft_probe_counters *
 *   worker_stop(core, tid, rt_id)
 *   steal(thief, victim, n_stolen, victim_depth_before, rt_id)
 *   steal_fail(thief, rt_id)                    searched every queue, found nothing
 *   park(core, kind, local_depth, inject_depth, rt_id)   kind: WEFT_PARK_*
 *   unpark(core, reason, rt_id)                 reason: WEFT_UNPARK_*
 *   notify(from_core, to_core, rt_id)           from_core -1: not a worker
 *   overflow(core, n, rt_id)                    n tasks moved to inject
 *   block_in_place(core, tid, rt_id)            the thread tid hands core to a spare thread
 *   stall(core, task_id, poll_fn, stalled_ns, rt_id)
 *                                               core has been in one poll (task_id, its
 *                                               poll function - a fiber's own fn) at
 *                                               least stalled_ns; once per stalled poll,
 *                                               from the watcher
 *   maintenance(core, counters, local_depth, inject_depth, rt_id)
 *                                               counters: struct weft_probe_counters *;
 *                                               at most once per ms per core
 *
 * Build with -DWEFT_PROBES=OFF to compile them out entirely.
 */
#ifndef WEFT_PROBES_H
#define WEFT_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include "probe_abi.h"

struct weft_runtime;
/* List rt in weft_probe_registry (add) or take it out (probe_abi.h). */
void weft__probe_register(struct weft_runtime *rt, bool add);
/* rt made more cores (weft_runtime_set_workers): its slot's ncores follows. */
void weft__probe_update(struct weft_runtime *rt);
/* In a forked child: no runtime listed, the registry lock made anew. */
void weft__probe_after_fork(void);

#ifdef WEFT_WITH_PROBES
#define _SDT_HAS_SEMAPHORES 1
#define SDT_USE_VARIADIC 1
#include <sys/sdt.h>

#define WEFT__SEMA(name) weft_##name##_semaphore
#define WEFT__DECLARE_SEMA(name) \
	extern volatile unsigned short WEFT__SEMA(name) __attribute__((visibility("hidden")))
WEFT__DECLARE_SEMA(runtime_create);
WEFT__DECLARE_SEMA(runtime_shutdown);
WEFT__DECLARE_SEMA(runtime_resize);
WEFT__DECLARE_SEMA(worker_start);
WEFT__DECLARE_SEMA(worker_stop);
WEFT__DECLARE_SEMA(steal);
WEFT__DECLARE_SEMA(steal_fail);
WEFT__DECLARE_SEMA(park);
WEFT__DECLARE_SEMA(unpark);
WEFT__DECLARE_SEMA(notify);
WEFT__DECLARE_SEMA(overflow);
WEFT__DECLARE_SEMA(maintenance);
WEFT__DECLARE_SEMA(block_in_place);
WEFT__DECLARE_SEMA(stall);

#define WEFT_PROBE_ENABLED(name) __builtin_expect(WEFT__SEMA(name) != 0, 0)
#define WEFT_PROBE(name, ...)                                         \
	do {                                                          \
		if (WEFT_PROBE_ENABLED(name))                         \
			STAP_PROBEV(weft, name, __VA_ARGS__);         \
	} while (0)
#else
#define WEFT_PROBE_ENABLED(name) 0
#define WEFT_PROBE(name, ...) do { } while (0)
#endif

/* Task-level latency histograms (probe_abi.h): on only while a tracer
 * holds the maintenance probe. */
#define WEFT_LAT_ON() WEFT_PROBE_ENABLED(maintenance)

static inline void weft__lat_add(unsigned long long *h, unsigned long long ns)
{
	unsigned b = ns > 1 ? 63u - (unsigned)__builtin_clzll(ns) : 0;
	h[b < WEFT_PROBE_LAT_BINS ? b : WEFT_PROBE_LAT_BINS - 1]++;
}

/* A task's wake stamp (weft_task.wake_ns) is 32 bits, on the header's
 * full first line: the clock in units of 2^WEFT__LAT_SHIFT ns (16 ns), so
 * delays up to 68.7 s are measured, where whole nanoseconds wrapped at
 * 4.29 s and a 5 s wait went into the 0.7 s bin. Delays under 16 ns,
 * which a wake-to-poll never is, go into the lowest bins. Never 0 (0 is
 * "no stamp"). */
#define WEFT__LAT_SHIFT 4
static inline uint32_t weft__lat_stamp(uint64_t now_ns)
{
	return (uint32_t)(now_ns >> WEFT__LAT_SHIFT) | 1;
}

static inline uint64_t weft__lat_since(uint32_t stamp, uint64_t now_ns)
{
	/* the same low bit on both sides: a delay of 0 is 0, not 68.7 s */
	return (uint64_t)(uint32_t)(weft__lat_stamp(now_ns) - stamp) << WEFT__LAT_SHIFT;
}

#endif /* WEFT_PROBES_H */
