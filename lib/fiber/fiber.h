/*
 * fiber.h - stackful tasks (see fiber.c).
 */
#ifndef WEFT_FIBER_H
#define WEFT_FIBER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slock.h"

#include "sanitize.h"

#ifdef WEFT_ASAN
#define WEFT_FIBER_ASAN 1
#else
#define WEFT_FIBER_ASAN 0
#endif
#ifdef WEFT_TSAN
#define WEFT_FIBER_TSAN 1
#else
#define WEFT_FIBER_TSAN 0
#endif

struct weft_runtime;
struct weft__core;
struct weft_cx;
struct weft_wait;

/*
 * Stacks live in slabs: one mmap (MAP_NORESERVE) holding the slot
 * descriptors in its first pages, then `nslots` slots, each a guard region
 * (at least 64 KiB, MADV_GUARD_INSTALL or PROT_NONE) below a stack. The
 * descriptors live there, not on the stacks, so a stack whose pages went
 * back to the kernel (MADV_DONTNEED) sits on a free list without a resident
 * page; and once every slot a slab handed out is free and cold, the slab's
 * descriptor pages go back too (the slab is reset: its slots are carved
 * again, keeping their guards). The slab's own record lives apart, beside
 * the pool's other records in one mapping, so all a burst leaves resident
 * is those records (about 100 bytes per slab).
 */
struct weft__slab;

struct weft__stack_pool;

/*
 * A slot's descriptor, one cache line. The spawner normally builds the
 * fiber's header at the top of its stack. Not when the spawn has no core
 * cache (a thread holding no core, a pool of another stack size) and takes
 * a warm stack (fiber.c, stack_take: fwarm), nor in a pool that has held
 * LAZY_HDR_STACKS (fiber.c) or more at once, when the stack is cold
 * (fresh, or given back): there fn, arg and drop wait here, the
 * descriptor is the task's state, and the worker that first runs the
 * fiber builds the header (fiber.c, fiber_poll_lazy), taking the page
 * fault. A million spawns from one thread faulting in a million pages was
 * most of fiber_rss's creation time; in the workers the faults run beside
 * the spawner (create_s 2.86-3.22 s against 3.59-5.38 s in one
 * interleaved run). Not always: a spawner that does not touch the stacks
 * outruns the workers, so more stacks are in use at once, each a TLB and
 * cache miss and, cold, a fault (spawn_many_local_fiber 1.45-1.76x slower
 * with every cold header built late). The pool's slabs are kept until
 * destroy, so once a pool has held that many, its cold spawns stay lazy
 * for the runtime's life.
 */
struct weft__stack {
	char *lo;                       /* lowest usable byte; the guard is just below */
	struct weft__stack *next;       /* free-list link */
	struct weft__slab *slab;        /* the slab it belongs to */
	/* a fiber spawned lazily, until its first poll: */
	void *(*fn)(void *);
	void *arg;
	void (*drop)(void *arg);
	struct weft_runtime *rt;
	bool warm;                      /* may hold resident pages (a fiber ran on it) */
	bool trim;                      /* being given back (fiber.c, give_back) */
	bool on_warm;                   /* on the pool's warm list (under its lock) */
};

struct weft__slab {
	struct weft__slab *next;        /* every slab of the pool */
	struct weft__stack_pool *pool;  /* the pool it belongs to (its stack size) */
	struct weft__slab *avail_next;  /* on the pool's avail list */
	bool on_avail;                  /* has cold or uncarved slots (under the pool lock) */
	char *map;                      /* the mapping: descriptors, then the slots */
	size_t map_len;
	size_t desc_len;                /* bytes of descriptor pages at map */
	char *slots;                    /* first slot (its guard) */
	unsigned nslots;
	unsigned carved;                /* slots [0, carved) were handed out since the last reset */
	unsigned guarded;               /* slots [0, guarded) have their guard installed */
	unsigned cold_n;                /* of the carved: free with no resident page */
	struct weft__stack *cold;       /* those, linked */
};

/* Per core (struct weft__core): stacks ready for reuse, owner only; `live`
 * is read by metrics. */
struct weft__stack_cache {
	struct weft__stack *head;
	unsigned n;
	unsigned low;                   /* fewest held since the last timed trim */
	uint64_t trimmed_ns;            /* time of the last timed trim */
	_Atomic int64_t live;           /* fibers spawned minus fibers ended on this core */
};

/* Per runtime. */
struct weft__stack_pool {
	struct weft__slock lock;
	pthread_mutex_t trim_lock;      /* one give-back walk at a time */
	struct weft__stack *warm;       /* free, maybe resident */
	struct weft__stack *fwarm;      /* under lock: warm stacks taken whole by spawns with no core cache (fiber.c) */
	_Atomic unsigned warm_n;        /* written under lock, peeked without */
	unsigned warm_low;              /* under lock: fewest warm stacks since warm_since_ns */
	uint64_t warm_since_ns;         /* under lock: the trim window's start (fiber.c) */
	_Atomic bool warm_sorted;       /* the warm list is in address order (written under lock) */
	_Atomic uint64_t warm_sorted_ns; /* last sort_warm (written under lock) */
	struct weft__slab *slabs;       /* newest first */
	struct weft__slab *avail;       /* slabs with cold or uncarved slots; take from the head */
	struct weft__slab *records;     /* the slabs' records, side by side (fiber.c) */
	unsigned nrecords;
	size_t stack_size;              /* usable bytes, a page multiple */
	size_t guard_size;
	size_t slot_size;               /* guard + stack */
	unsigned slab_slots;
	int guard_mode;                 /* under lock: GUARD_UNKNOWN / _MADVISE / _MPROTECT */
	_Atomic bool guard_wanted;      /* the carving slab is running out of guarded slots */
	_Atomic bool guard_busy;        /* a worker is installing guards ahead (one at a time) */
	_Atomic uint64_t reserved;      /* bytes of address space in slabs */
	_Atomic uint64_t failures;      /* spawns refused for want of a stack */
	_Atomic int64_t live;           /* fibers spawned minus ended off any core */
};

/* Built by header_init (fiber.c), which stores every field one by one: a
 * new field needs its store there. */
struct weft__fiber {
	void *(*fn)(void *);
	void *arg;
	void (*drop)(void *arg);        /* weft_spawn_with: runs iff fn never starts */
	void *result;
	struct weft__stack *stack;      /* taken at spawn, given back when done or dropped */
	struct weft__stack_pool *pool;  /* the stack's pool (its size) */
	void *sp;                       /* fiber's saved stack pointer while suspended */
	void *sched_sp;                 /* worker's saved stack pointer while the fiber runs */
	struct weft_cx *cx;             /* the poll in progress */
	struct weft_wait *waiting;      /* wait entry to cancel if dropped while suspended */
	struct weft__timer *timer;      /* timer to cancel likewise (sleep, timeouts) */
	struct weft_runtime *timer_rt;
	uint64_t task_id;
	struct weft_runtime *rt;
	struct weft__locals *locals;     /* fiber-local values (local.c), NULL until one is set */
	bool started;                   /* polled at least once */
	int done;
	/* Sanitizer bookkeeping, only in sanitizer builds: without it the
	 * header is two cache lines, not three (the spawner writes it and
	 * the worker that runs the fiber reads it: one line less to move). */
#if WEFT_FIBER_ASAN
	void *fake_stack;               /* ASan fake stack of the side being left */
	const void *sched_bottom;       /* scheduler stack bounds, for switching back */
	size_t sched_size;
#endif
#if WEFT_FIBER_TSAN
	void *tsan_fiber, *tsan_sched;
#endif
};

/* The addresses of the poll functions of a fiber's task (fiber.c): for the
 * probe registry (probe_abi.h), whose readers name the fiber's own fn. */
void weft__fiber_probe_polls(unsigned long long *poll, unsigned long long *lazy);
struct weft_task;
/* The function task t runs for a reader naming it (a stall): for a fiber
 * (poll is fiber_poll or fiber_poll_lazy) its own fn, read from its state;
 * else poll itself. The caller knows t is still being polled. */
uintptr_t weft__fiber_user_fn(const struct weft_task *t, uintptr_t poll);

/* Fiber-local values (local.c): run f's dtors and free its values; f's
 * fn has returned (on f), or f is being discarded (any thread). */
struct weft__locals;
void weft__fiber_locals_end(struct weft__fiber *f);
/* The same for a fiber discarded while suspended, from the discarding
 * thread, as if on the fiber: its blocking calls return -ECANCELED at once
 * (they must not hold shutdown) and weft_local_get/set act on f's values. */
void weft__fiber_locals_discard(struct weft__fiber *f);
/* f is discarded without returning (sync/once.c): a weft_once whose fn it
 * was running is as if never called - not done, its waiters woken. */
void weft__once_fiber_discarded(const struct weft__fiber *f);

/* Suspend the running fiber; returns when it is polled again. */
void weft__fiber_suspend(struct weft__fiber *f);
/* For a worker that holds t alone (popped from the inject queue, not yet
 * on its ring): if t is a fiber spawned lazily, start the stack lines its
 * first poll writes (the header, the first frame) on their way into this
 * core's cache; any other task is left alone. */
struct weft_task;
void weft__fiber_prefetch_first(const struct weft_task *t);
/* Runtime create: the stack pool for stacks of `stack_size` usable bytes. */
void weft__fiber_pool_init(struct weft_runtime *rt, size_t stack_size);
/* Give idle stacks' memory back (MADV_DONTNEED). From the core's holder:
 * at maintenance (`idle` false: stacks the core has not needed for a
 * while) and before parking (`idle` true: all but a few, at most once per
 * IDLE_TRIM_GAP_NS per core). */
/* Returns 0, or (idle, a trim done less than IDLE_TRIM_GAP_NS ago) the
 * CLOCK_MONOTONIC time at which the parked caller should call again. */
uint64_t weft__fiber_trim(struct weft_runtime *rt, struct weft__core *c, bool idle);
/* A worker about to park: install guards ahead of the slab being carved,
 * if a spawner asked (one relaxed load otherwise). */
void weft__fiber_guard_ahead(struct weft_runtime *rt);
/* Runtime destroy: forget a core's cached stacks / unmap every slab. */
void weft__fiber_pool_fini(struct weft__core *c);
void weft__fiber_shared_pool_fini(struct weft_runtime *rt);
/* Metrics: live fibers (spawned, not ended). */
int64_t weft__fiber_live(struct weft_runtime *rt);
/* Metrics: the fiber fields of a snapshot. */
struct weft_metrics;
void weft__fiber_metrics(struct weft_runtime *rt, struct weft_metrics *m);
/* Stack size classes besides the runtime's: powers of two from 16 KiB to
 * 1 GiB (weft_spawn_opts.stack_size), each pool made on first use. */
#define WEFT__STACK_CLASS_MIN (16u * 1024)
#define WEFT__STACK_CLASSES 17
/* Per worker thread: alternate signal stack + the guard-page fault handler. */
void *weft__fiber_thread_init(void);
void weft__fiber_thread_fini(void *altstack);

#endif /* WEFT_FIBER_H */
