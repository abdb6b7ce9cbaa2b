/*
 * queue.h - per-core bounded run queue (ring of 256 task pointers).
 *
 * One owner thread pushes and pops; any thread may steal half. See queue.c
 * for the algorithm and the memory-ordering argument.
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tlist.h"

/* The library always uses 256. The weak-memory harness (tests/harness/)
 * compiles queue.c alone with a capacity of a few slots, so that a model
 * checker reaches full, overflow and wrap-around in a handful of pushes. */
#ifndef WEFT_RING_CAP
#define WEFT_RING_CAP 256u
#endif
#define WEFT_RING_MASK (WEFT_RING_CAP - 1)
_Static_assert(WEFT_RING_CAP >= 2 && (WEFT_RING_CAP & (WEFT_RING_CAP - 1)) == 0,
	       "ring capacity is a power of two");

struct weft_task;

struct weft__ring {
	/* (steal << 32) | real. real: next slot the owner pops. steal: first
	 * slot a thief is still copying; steal == real when no thief works. */
	_Alignas(128) _Atomic uint64_t head;
	/* Next free slot; written only by the owner. */
	_Alignas(128) _Atomic uint32_t tail;
	_Alignas(128) struct weft_task *_Atomic slot[WEFT_RING_CAP];
};

void weft__ring_init(struct weft__ring *q);

/*
 * Owner: push t. Returns 0 when t went into the ring. Otherwise the ring was
 * full and `overflow` (initialised empty by the caller) receives what must go
 * to the inject queue, in order, and the count is returned: the oldest half
 * of the ring plus t (129), or t alone (1) while a thief is mid-copy.
 */
unsigned weft__ring_push_owner(struct weft__ring *q, struct weft_task *t,
			       struct weft__tlist *overflow);

/* Owner: push a batch that fits (n <= weft__ring_free_owner(q)). */
void weft__ring_push_batch_owner(struct weft__ring *q, struct weft__tlist *batch);

/* Owner: slots free for pushes now. */
unsigned weft__ring_free_owner(const struct weft__ring *q);

/* Owner: pop the oldest task, NULL if empty. */
struct weft_task *weft__ring_pop_owner(struct weft__ring *q);

/*
 * Thief: move ceil(n/2) of src's n tasks into dst (owned by the caller) and
 * return the last of them to run now; the others are pushed to dst.
 * Returns NULL when src is empty, another thief is busy on src, or dst is
 * more than half full. *n_stolen receives the count including the one
 * returned; *src_depth the depth of src seen before the steal.
 */
struct weft_task *weft__ring_steal(struct weft__ring *src, struct weft__ring *dst,
				   unsigned *n_stolen, unsigned *src_depth);

/* Any thread: tasks in the ring (a snapshot; may be stale at once). */
unsigned weft__ring_len(const struct weft__ring *q);

/* Any thread: as weft__ring_len, and in *served the count of tasks ever
 * taken from the ring (by its owner or thieves), mod 2^32: unchanged
 * between two looks means nothing left the ring in between. */
unsigned weft__ring_len_served(const struct weft__ring *q, uint32_t *served);

#endif /* WEFT_QUEUE_H */
