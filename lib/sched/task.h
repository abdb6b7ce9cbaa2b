/*
 * task.h - the task header and its atomic state word (see task.c).
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

#include "task_state.h"   /* the state word: bits and transitions */

struct weft_runtime;

struct weft_task {
	/* hot: touched on every schedule and poll (one cache line) */
	_Atomic uint64_t state;
	struct weft_task *qnext;        /* inject / overflow / free-list link */
	weft_poll_fn poll;
	void *arg;
	struct weft_runtime *rt;
	weft_drop_fn drop;
	uint64_t id;
	/* latency sample: the clock when it was scheduled, in 16 ns units,
	 * low 32 bits (0: none; probes.h, weft__lat_stamp): delays up to
	 * 68.7 s. On this
	 * line because the poll path reads it whenever a tracer is attached:
	 * on the second line it cost yield_many 29% under schedtop (a line
	 * the poll otherwise never touches, one miss per poll). */
	uint32_t wake_ns;
	int16_t err;                    /* outcome: 0, -ECANCELED, or the poll's error */
	uint16_t cache;                 /* index of the cache the memory came from */
	/* cold: result, owned-task list, join waker */
	union {
		void *result;           /* written by the poller, read by the joiner after COMPLETE */
		/* only while on the inject queue's overflow stack (never
		 * complete there): the queue's `enq` read before the push
		 * (inject.c, refill_locked); complete() writes result */
		uint64_t qbound;
	};
	struct weft_task *owned_prev, *owned_next;
	weft_waker join_waker;          /* guarded by the JOIN_WAKER protocol */
	uint16_t shard;                 /* owned-list shard */
	bool live;                      /* memory is in use (checked at destroy) */
	bool unwind;                    /* a fiber: cancellation polls it (it unwinds), see task.c */
	bool started;                   /* a fiber whose fn started (set by its poll) */
	bool owned;                     /* on the owned-task list (bound when a poll leaves it waiting) */
	_Atomic bool join_busy;         /* a weft_join / weft_join_timeout waits on the handle (task.c) */
	_Atomic bool in_joinset;        /* listed in a join set (weft__task_mark_joinset) */
	void *spawn_site;               /* return address of the spawn call (probes) */
	struct weft__task_slab *slab;   /* the slab the memory belongs to (alloc.c) */
};

_Static_assert(sizeof(struct weft_task) <= 128, "task header fits two cache lines");
_Static_assert(offsetof(struct weft_task, result) == 64, "the hot fields fill the first line");

/* Start t's state (t->arg) on its way into the cache, from a caller that
 * has t's header in cache and runs t soon: a woken fiber's header, on its
 * own stack page, was 13% of timers_fiber in fiber_poll. NULL is skipped:
 * a prefetch of it costs a failed page walk each time. -DWEFT_NO_STATE_
 * PREFETCH builds it out (the A side of its benchmark). */
static inline void weft__task_prefetch_state(const struct weft_task *t)
{
#ifndef WEFT_NO_STATE_PREFETCH
	if (t->arg)
		__builtin_prefetch(t->arg);
#else
	(void)t;
#endif
}

#endif /* WEFT_TASK_H */
