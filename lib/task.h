/*
 * task.h - the task header and its atomic state word (see task.c).
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

/* State word bits. The reference count lives above the flags. */
#define T_RUNNING       (1ull << 0)
#define T_COMPLETE      (1ull << 1)
#define T_LIFECYCLE     (T_RUNNING | T_COMPLETE)
#define T_NOTIFIED      (1ull << 2)
#define T_JOIN_INTEREST (1ull << 3)
#define T_JOIN_WAKER    (1ull << 4)
#define T_CANCELLED     (1ull << 5)
#define T_REF_SHIFT     6
#define T_REF_ONE       (1ull << T_REF_SHIFT)
#define T_FLAGS_MASK    (T_REF_ONE - 1)
#define T_REFS(s)       ((s) >> T_REF_SHIFT)

struct weft_runtime;

struct weft_task {
	/* hot: touched on every schedule and poll */
	_Atomic uint64_t state;
	struct weft_task *qnext;        /* inject / overflow / free-list link */
	weft_poll_fn poll;
	void *arg;
	struct weft_runtime *rt;
	/* written by the poller, read by the joiner after COMPLETE */
	void *result;
	weft_drop_fn drop;
	uint64_t id;
	/* cold: owned-task list, join waker */
	struct weft_task *owned_prev, *owned_next;
	weft_waker join_waker;          /* guarded by the JOIN_WAKER protocol */
	uint16_t cache;                 /* index of the cache the memory came from */
	uint16_t shard;                 /* owned-list shard */
	int16_t err;                    /* outcome: 0, -ECANCELED, or the poll's error */
	bool live;                      /* memory is in use (checked at destroy) */
};

_Static_assert(sizeof(struct weft_task) <= 128, "task header fits two cache lines");

#endif /* WEFT_TASK_H */
