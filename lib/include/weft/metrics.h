/*
 * weft/metrics.h - runtime metrics snapshot.
 *
 * Per-worker counters are kept by each worker on its own cache line and
 * published at maintenance (every event_interval ticks) and before parking,
 * so a snapshot lags a busy worker by at most one maintenance interval.
 * Counters only grow; subtract two snapshots for a rate.
 */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_runtime;

struct weft_worker_metrics {
	uint64_t park_count;           /* times the worker went to sleep */
	uint64_t noop_count;           /* unparked, then parked again without polling */
	uint64_t steal_count;          /* tasks stolen from other workers */
	uint64_t steal_operations;     /* successful steal operations */
	uint64_t poll_count;           /* task polls */
	uint64_t busy_ns;              /* time spent polling tasks */
	uint64_t local_schedule_count; /* tasks scheduled from this worker locally */
	uint64_t overflow_count;       /* times the local queue overflowed to inject */
	uint64_t local_queue_depth;    /* tasks in the local ring now (LIFO slot excluded) */
	uint64_t mean_poll_ns;         /* EWMA of poll time */
	uint64_t thread_id;            /* kernel tid of the thread holding the core, 0 if none */
	uint64_t stalls;               /* polls on this core that lasted stall_threshold_ns or
	                                * more, as seen by the other workers (weft.h) */
};

struct weft_metrics {
	/* Entries in worker[]: every core the runtime has had. Cores 0 ..
	 * workers_active-1 are in service; the others were retired by
	 * weft_runtime_set_workers (their counters are final, thread_id 0,
	 * once retired) or are being retired. */
	unsigned workers;
	unsigned workers_active;
	uint64_t alive_tasks;          /* spawned, not yet completed; a task stops
					* counting before weft_join returns it or
					* weft_task_is_finished says true */
	uint64_t spawned_tasks;        /* ever spawned */
	uint64_t inject_depth;         /* tasks in the inject queue now */
	uint64_t remote_schedule_count;/* tasks scheduled from outside the workers,
					* counted as a worker takes them */
	uint64_t budget_forced_yield_count;
	uint64_t io_fds_registered;    /* ever registered with the I/O driver */
	uint64_t io_fds_deregistered;
	uint64_t io_ready_events;      /* readiness events from the driver (epoll or io_uring) */
	uint64_t blocking_threads;     /* blocking-pool threads alive now */
	uint64_t blocking_idle_threads;
	uint64_t blocking_queue_depth; /* jobs waiting for a blocking thread */
	uint64_t blocking_threads_exited; /* pool threads that exited idle: after keep-alive,
	                                   * or to leave their room to a weft_block_in_place
	                                   * spare (not at shutdown) */
	uint64_t block_in_place_count; /* core hand-offs by weft_block_in_place */
	uint64_t block_in_place_reclaimed; /* of those, calls whose thread took its core back
	                                    * (fn ended before the spare took the core) */
	uint64_t block_in_place_inline; /* calls that found no spare and could not start one
	                                 * (max_blocking_threads reached, or no thread): fn
	                                 * ran holding the core */
	uint64_t block_in_place_threads; /* spare worker threads alive now (idle, or holding
	                                  * a core); counted against max_blocking_threads */
	uint64_t block_in_place_threads_started; /* spare threads ever started */
	uint64_t fibers_live;          /* fibers spawned and not yet finished (each holds a stack) */
	uint64_t fiber_stack_bytes_reserved; /* address space of the stack slabs, guards included
	                                      * (not RAM: idle stacks' pages are given back) */
	uint64_t fiber_stack_alloc_failures; /* weft_spawn calls refused for want of a stack */
	/* Stack pages resident in RAM now, in bytes, with the pages of the
	 * stacks' descriptors (64 bytes per slot handed out): measured with
	 * mincore(2) over the slots handed out (not an estimate). After a
	 * burst it falls to the few stacks idle workers keep, and to 0 once
	 * every worker has been idle for two trims in a row. It walks
	 * the page tables of that address space, so the snapshot costs about
	 * 1 ms per thousand stacks ever in use at once (64 KiB stacks; 0.3 s
	 * with 300,000 suspended fibers, measured on a busy 2-vCPU VM): take
	 * snapshots sparingly at that scale. */
	uint64_t fiber_stack_bytes_resident;
	uint64_t stalls;               /* sum of the workers' stalls */
	/* A flexible array member: standard C99, an extension in C++, whose
	 * -Wpedantic would reject the header. */
#ifdef __cplusplus
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
	struct weft_worker_metrics worker[]; /* `workers` entries */
#ifdef __cplusplus
#pragma GCC diagnostic pop
#endif
};

/*
 * Allocate and fill a snapshot with `workers` entries; release it with
 * weft_metrics_free(). Works on a runtime that is shut down (final figures).
 * Errors: -EINVAL (NULL argument), -ENOMEM, -ECHILD (a runtime of the
 * parent process, in a forked child).
 */
WEFT_API int weft_runtime_metrics(struct weft_runtime *rt, struct weft_metrics **out);
WEFT_API void weft_metrics_free(struct weft_metrics *m);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_METRICS_H */
