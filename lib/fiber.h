/*
 * fiber.h - stackful tasks (see fiber.c).
 */
#ifndef WEFT_FIBER_H
#define WEFT_FIBER_H

#include <stddef.h>
#include <stdint.h>

struct weft_runtime;
struct weft__core;
struct weft_cx;
struct weft_wait;

/* A stack: the mapping [map, map + map_len) holds a PROT_NONE guard page at
 * the bottom, the usable stack, and this descriptor at the very top. */
struct weft__stack {
	void *map;
	size_t map_len;
	struct weft__stack *next;       /* pool link */
};

struct weft__fiber {
	void *(*fn)(void *);
	void *arg;
	void *result;
	struct weft__stack *stack;      /* NULL until the first poll */
	void *sp;                       /* fiber's saved stack pointer while suspended */
	void *sched_sp;                 /* worker's saved stack pointer while the fiber runs */
	struct weft_cx *cx;             /* the poll in progress */
	struct weft_wait *waiting;      /* wait entry to cancel if dropped while suspended */
	struct weft__timer *timer;      /* timer to cancel likewise (sleep, timeouts) */
	struct weft_runtime *timer_rt;
	uint64_t task_id;
	struct weft_runtime *rt;        /* set at the first poll */
	int done;
	/* sanitizer bookkeeping */
	void *fake_stack;               /* ASan fake stack of the side being left */
	const void *sched_bottom;       /* scheduler stack bounds, for switching back */
	size_t sched_size;
	void *tsan_fiber, *tsan_sched;
};

/* Suspend the running fiber; returns when it is polled again. */
void weft__fiber_suspend(struct weft__fiber *f);
/* Return every pooled stack of a core / of the runtime to the system. */
void weft__fiber_pool_fini(struct weft__core *c);
void weft__fiber_shared_pool_fini(struct weft_runtime *rt);
/* Per worker thread: alternate signal stack + the guard-page fault handler. */
void *weft__fiber_thread_init(void);
void weft__fiber_thread_fini(void *altstack);

#endif /* WEFT_FIBER_H */
