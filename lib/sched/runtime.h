/*
 * runtime.h - internal structures shared by the scheduler's files: the
 * runtime, its cores, worker threads, the inject queue, the owned-task list,
 * the idle set, parkers, the registry and the per-core task caches.
 *
 * Ownership: a core (index i) is driven by exactly one worker thread at a
 * time; fields marked "owner" are touched only by that thread. Fields other
 * threads read are atomics, on their own cache lines.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include <weft/weft.h>

#include "chaos.h"
#include "fiber.h"
#include "wheel.h"
#include "probe_abi.h"
#include "probes.h"
#include "queue.h"
#include "steal.h"
#include "task.h"
#include "tlist.h"

#define WEFT_CACHELINE 128

/* A spin-wait hint to the CPU (spin locks, the search's pause). */
#if defined(__x86_64__) || defined(__i386__)
#define weft__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define weft__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define weft__cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif
#define GQI_START_VALUE 61  /* first global queue interval, before tuning */
/* Stall watch (worker.c, watch_cores): the driver's sleeper looks at the
 * other cores this often while any worker is unparked. The threshold is
 * rt->stall_ns (option stall_threshold_ns). */
#define WEFT_WATCH_MS 5

/* Thread-locals of the library: the initial-exec model, one %fs-relative
 * load instead of a call to __tls_get_addr (weft__ctx() is read several
 * times per fiber switch: 5% of timers_fiber). The few bytes come from
 * the static TLS block, which glibc keeps room in for libraries loaded
 * later with dlopen too. */
#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))

/* ---------------------------------------------------------------- die */
#include "die.h"

/* opts.c: an options struct (weft/common.h) into dst (`known` bytes,
 * this library's size of it): fields up to the caller's sz, the rest zero,
 * dst's sz set to known; NULL src gives all zero. -EINVAL for sz below
 * min_sz or above WEFT_OPTS_MAX_SZ, or a non-zero byte past the known
 * fields. */
int weft__opts_read(void *dst, const void *src, size_t known, size_t min_sz);

/* mem.c: every allocation of the library goes through the allocator set
 * with weft_set_allocator (default: malloc/aligned_alloc/free). */
void *weft__malloc(size_t n);
void *weft__calloc(size_t n, size_t size);
void *weft__alloc_aligned(size_t size);   /* cache-line aligned; free with weft__free */
void weft__mem_release(void);             /* free heap pages back to the kernel (default allocator) */
void weft__free(void *p);

/* cpus.c: CPUs this process may use (affinity, capped by a cgroup CPU
 * quota rounded up); the quota alone from the given /proc/self/cgroup and
 * /proc/self/mountinfo files (0: none). */
unsigned weft__available_cpus(void);
unsigned weft__cgroup_cpu_limit(const char *proc_cgroup, const char *mountinfo);
void weft__runtime_count(int delta);      /* live runtimes: the allocator is fixed while > 0 */

/* --------------------------------------------------------------- rand.c */
struct weft__rng { uint32_t one, two; };
void weft__rng_seed(struct weft__rng *r, uint64_t seed);
uint32_t weft__rng_next(struct weft__rng *r);
/* Uniform in [0, n) by multiply-shift. */
uint32_t weft__rng_below(struct weft__rng *r, uint32_t n);
/* The runtime's seed generator: splitmix64 over a 64-bit counter. */
uint64_t weft__seedgen_next(uint64_t *state);

/* --------------------------------------------------------------- park.c */
/* A parker is one futex word: EMPTY, PARKED, NOTIFIED or DRIVER; the word
 * protocol and the futex helpers are in park_core.h. */
#include "park_core.h"
#include "slock.h"
struct weft__parker {
	_Atomic uint32_t state;
	/* Waking a PARK_DRIVER sleeper: the epoll driver's eventfd, or -1 for
	 * the io_uring driver of the worker's runtime (weft__parker_unpark).
	 * Only workers' parkers park in the driver. */
	int evfd;
};
/* Driver parking: EMPTY -> PARK_DRIVER (false if a notification was
 * pending, which is consumed); end: back to EMPTY. */
bool weft__parker_begin_driver(struct weft__parker *p);
void weft__parker_end_driver(struct weft__parker *p);
void weft__parker_park(struct weft__parker *p);
/* Park until unparked (true) or deadline_ns (CLOCK_MONOTONIC) passes (false). */
bool weft__parker_park_until(struct weft__parker *p, uint64_t deadline_ns);
void weft__parker_unpark(struct weft__parker *p);

/* A waker for a thread blocked outside the runtime (weft_join, block_on). */
struct weft__tparker;
struct weft__tparker *weft__tparker_self(void);   /* this thread's, lazily made */
weft_waker weft__tparker_waker(struct weft__tparker *p); /* a new reference */
/* Park until woken. The word is watched first: with `spin` for ~20 us of
 * CPU pauses, else through 12 sched_yields (weft__cpu_spare says which). */
void weft__tparker_park(struct weft__tparker *p, bool spin);
/* Park until woken (true) or deadline_ns passes (false). */
bool weft__tparker_park_until(struct weft__tparker *p, uint64_t deadline_ns);

/* ------------------------------------------------------------- inject.c */
#define WEFT_INJECT_RING 4096u          /* slots of the inject queue's ring (a power of 2) */
struct weft__inject_slot {
	_Atomic uint64_t seq;            /* pos + 1: position pos's task is published here */
	_Atomic uintptr_t task;          /* the task, REMOTE_TAG in bit 0 (inject.c) */
};
struct weft__inject {
	/* Pushers claim ring positions here with a CAS (bit 63: closed),
	 * below deq + WEFT_INJECT_RING; deq_seen is the last deq a pusher
	 * read (so that pushes do not read the consumers' line each time). */
	_Alignas(WEFT_CACHELINE) _Atomic uint64_t enq;
	_Atomic uint64_t deq_seen;
	/* Overflow, when the ring is full: a stack of tasks linked by qnext,
	 * newest first, with INJECT_CLOSED in bit 0; pushed with a CAS,
	 * taken whole by a consumer (inject.c). */
	_Alignas(WEFT_CACHELINE) _Atomic uintptr_t incoming;
	/* Consumers, under lock: the next ring position to take, and what
	 * was taken from `incoming`, oldest first. */
	_Alignas(WEFT_CACHELINE) struct weft__slock lock;
	_Atomic uint64_t deq;            /* next position to take; written under lock */
	/* metrics: remote tasks taken out (written under lock, read without):
	 * counted by the consumer, not by each remote push with an RMW */
	_Atomic uint64_t remote_taken;
	struct weft_task *head, *tail;   /* under lock */
	uint64_t bound;                  /* under lock: ring positions below it go before head */
	_Atomic bool head_nonempty;      /* head takeable now (not behind an unpublished claim); under lock; a hint for idle.c */
	/* Tasks pushed (counted before they are published) minus popped:
	 * never below the number queued, so 0 means empty. */
	_Alignas(WEFT_CACHELINE) _Atomic size_t len;
	/* Of those, pushed by threads without a core (remote spawns and
	 * wakes; each is tagged in bit 0 while queued): a LIFO chain gives
	 * way while any waits (worker.c). Same line as len, so a remote
	 * push's second RMW finds it owned; pops touch it only when they
	 * take a remote task. Never below the number of remote tasks queued
	 * (counted before the publish, like len). */
	_Atomic size_t remote_len;
	_Alignas(WEFT_CACHELINE) struct weft__inject_slot ring[WEFT_INJECT_RING];
};
void weft__inject_init(struct weft__inject *q);
void weft__inject_fini(struct weft__inject *q);
/* 0, or -ESHUTDOWN when closed (the caller still owns t). */
int weft__inject_push(struct weft__inject *q, struct weft_task *t, bool remote);
/* Pushes the whole batch; 0, or -ESHUTDOWN when closed (batch untouched). */
int weft__inject_push_batch(struct weft__inject *q, struct weft__tlist *batch);
/* Pop up to max tasks into out; returns how many. */
size_t weft__inject_pop_batch(struct weft__inject *q, size_t max, struct weft__tlist *out);
void weft__inject_close(struct weft__inject *q);
/* polls_at_unpark of a core not woken since it (re)started: its next
 * park follows no wake and is no no-op unpark */
#define WEFT__NO_UNPARK UINT64_MAX

static inline size_t weft__inject_len(struct weft__inject *q)
{
	return atomic_load_explicit(&q->len, memory_order_acquire);
}
/* Work a consumer can take now (a snapshot): counted (len) and published,
 * at the ring's next position, on the stack or left in the FIFO by an
 * earlier pop. len alone also counts a push between its increment and its
 * publish: a pusher preempted there kept two parked workers waking each
 * other for nothing (idle.c, weft__idle_notify_if_work; 74,000 wakes/s in
 * one CI run). Such a pusher notifies once it has published. The idle
 * protocol's fences (idle.c) order the parker's listing and this read
 * against the pusher's publish and notify; its seq_cst store or CAS
 * carries it in TSan builds, which have no fences. A consumer stores
 * head_nonempty true (seq_cst) before it empties `incoming`; it leaves a
 * slot as it is when it takes it, so a look at a slot just taken sees work
 * (a wake for nothing at worst, never one missed). */
static inline bool weft__inject_ring_visible(struct weft__inject *q)
{
	uint64_t d = atomic_load_explicit(&q->deq, memory_order_seq_cst);
	/* at or past d + 1: a slot already one lap on (consumers took d
	 * since our load of deq and a pusher reused it) is published work
	 * too; "== d + 1" missed it */
	return (int64_t)(atomic_load_explicit(&q->ring[d & (WEFT_INJECT_RING - 1)].seq,
					      memory_order_seq_cst) -
			 (d + 1)) >= 0;
}
static inline bool weft__inject_visible(struct weft__inject *q)
{
	return weft__inject_len(q) &&
	       (weft__inject_ring_visible(q) ||
		(atomic_load_explicit(&q->incoming, memory_order_seq_cst) & ~(uintptr_t)1) ||
		atomic_load_explicit(&q->head_nonempty, memory_order_seq_cst));
}

/* Remote tasks queued (a snapshot): see remote_len. */
static inline size_t weft__inject_remote_len(struct weft__inject *q)
{
	return atomic_load_explicit(&q->remote_len, memory_order_relaxed);
}

/* -------------------------------------------------------------- owned.c */
struct weft__owned_shard {
	_Alignas(WEFT_CACHELINE) struct weft__slock lock;
	struct weft_task *head;          /* under lock */
	bool closed;                     /* under lock */
};
struct weft__owned {
	unsigned mask;
	struct weft__owned_shard *shard;
	/* Spawns and completions by threads holding none of the cores. */
	_Atomic uint64_t spawned_off, completed_off;
};
int weft__owned_init(struct weft__owned *o, unsigned workers);
void weft__owned_fini(struct weft__owned *o);
/* 0, or -ESHUTDOWN once closed. */
struct weft__core;
int weft__owned_bind(struct weft__owned *o, struct weft_task *t, const struct weft__core *c);
void weft__owned_remove(struct weft__owned *o, struct weft_task *t);
void weft__owned_close(struct weft__owned *o);
/* Any task still listed (it stays listed until it completes), or NULL. */
struct weft_task *weft__owned_first(struct weft__owned *o);
/* A listed task that is idle, claimed for the caller to end
 * (weft__ts_shutdown: idle -> RUNNING | CANCELLED, under its shard's lock);
 * one running (a blocking-pool job) is passed over. NULL when none is left. */
struct weft_task *weft__owned_claim_idle(struct weft__owned *o);
/* Call fn on every listed task, each under its shard's lock. */
void weft__owned_each(struct weft__owned *o, void (*fn)(struct weft_task *t));
/* Count a spawn / a completion (the caller's core, or the shared count). */
void weft__owned_count_spawn(struct weft_runtime *rt);
void weft__owned_count_completion(struct weft_runtime *rt);
/* Tasks spawned, and spawned minus completed (metrics). */
uint64_t weft__owned_spawned(struct weft_runtime *rt);
uint64_t weft__owned_alive(struct weft_runtime *rt);

/* -------------------------------------------------------------- alloc.c */
/* Per-core task cache: a private free list plus a stack other threads push
 * freed tasks onto. Index `workers` is the shared cache for foreign threads. */
struct weft__task_slab;
struct weft__task_cache {
	struct weft_task *free;          /* owner */
	struct weft_task *fresh;         /* owner: taken from remote_free, not on nfree */
	size_t nfree;                    /* owner: tasks on `free` */
	size_t low;                      /* owner: fewest on `free` since the last timed trim */
	uint64_t trimmed_ns;             /* owner: time of the last timed trim */
	struct weft__task_slab *slabs;   /* owner: this cache's slabs */
	_Alignas(WEFT_CACHELINE) struct weft_task *_Atomic remote_free;
};
struct weft_task *weft__task_alloc(struct weft_runtime *rt);
void weft__task_free(struct weft_task *t);
/* Give back slabs whose tasks are all free, keeping some: from the core's
 * holder before it parks (`idle`; `deep`: none kept, the core has been
 * idle since its last idle trim) and at maintenance (what stayed free for
 * a whole period); the foreign cache too if its lock is free. */
/* true (idle trims): the remote stacks had frees, more may be landing */
bool weft__alloc_trim(struct weft_runtime *rt, struct weft__core *c, bool idle, bool deep);
int weft__alloc_init(struct weft_runtime *rt);
void weft__alloc_core_init(struct weft__core *c);      /* a core made after create */
/* Number of task slots not on a free list (used at destroy). */
size_t weft__alloc_in_use(struct weft_runtime *rt);
void weft__alloc_fini(struct weft_runtime *rt);

/* ------------------------------------------------------------- idle.c */
/* state: (unparked << 32) | searching; sleepers: stack of core indices. */
#define WEFT_IDLE_MASK_WORDS ((WEFT_MAX_WORKERS + 63) / 64)
struct weft__idle {
	_Alignas(WEFT_CACHELINE) _Atomic uint64_t state;
	/* Bit i set while core i is listed as a sleeper (changed under lock,
	 * read by searchers without it: a parked core's ring is empty, so a
	 * thief skips it). */
	_Alignas(WEFT_CACHELINE) _Atomic uint64_t parked[WEFT_IDLE_MASK_WORDS];
	_Alignas(WEFT_CACHELINE) pthread_mutex_t lock;
	unsigned *sleepers;              /* under lock */
	unsigned nsleepers;              /* under lock */
	_Atomic unsigned n;              /* active cores (changed under lock) */
	/* Parked workers asleep on a WEFT_WATCH_MS timeout to run the stall
	 * watch (idle.c, "The watch"); counted around each such sleep. */
	_Atomic unsigned watchers;
	/* Threads in on_thread_start whose core is counted unparked but not
	 * yet driven (worker.c, weft__worker_main): nothing there for the
	 * watch to look at (idle.c, weft__idle_hook_begin). */
	_Atomic unsigned hooked;
};
#define IDLE_UNPARK_ONE (1ull << 32)
#define IDLE_SEARCHING(s) ((uint32_t)(s))
#define IDLE_UNPARKED(s) ((uint32_t)((s) >> 32))

/* ---------------------------------------------------------- counters */
/* Owner-written running counters: struct weft_probe_counters (probe_abi.h),
 * whose layout the BPF programs read through the maintenance probe. */
struct weft__pub_counters {
	_Atomic uint64_t park_count, noop_count, steal_count, steal_operations;
	_Atomic uint64_t poll_count, busy_ns, local_schedule_count, overflow_count;
	_Atomic uint64_t budget_forced_yields, mean_poll_ns;
};

/* --------------------------------------------------------------- core */
struct weft__core {
	struct weft__ring ring;                   /* aligned inside */
	/* owner-only from here */
	_Alignas(WEFT_CACHELINE) unsigned index;
	/* The owner's exchange puts and takes; another worker takes it (an
	 * exchange too) only when the core is stuck in one poll (worker.c,
	 * watch_cores). */
	struct weft_task *_Atomic lifo;
	struct weft__rng rng;
	uint32_t tick;
	/* Set by weft_runtime_set_workers (under rt->resize_lock) when this
	 * core is to go away: its holder retires it at the top of its loop
	 * (worker.c, retire). Read there on every pass: a line the owner
	 * reads anyway; written only on a resize. */
	_Atomic bool retiring;
	uint32_t gqi;                             /* global queue interval */
	bool inject_forced;                       /* a capped LIFO chain asked for inject first;
						     cleared by a ring pop */
	uint32_t polls_since_global;              /* polls since the last inject-first check */
	struct weft__tlist deferred;              /* yielded tasks, queued when local work runs out */
	bool is_searching;
	/* the last timer pass stopped at a queue with no room for
	 * TIMERS_MIN_PASS (driver.c, fire_budget): the next fires that many */
	bool timers_short;
	double ewma_poll_ns;
	uint64_t short_notify_ns;      /* owner: last wake of a peer for its short-task ring (worker.c) */
	uint64_t batch_start_ns;
	uint64_t batch_polls;
	uint64_t polls_at_unpark;                 /* poll_count at the last unpark; WEFT__NO_UNPARK:
	                                           * none since the core started (noop_count) */
	uint64_t parks_at_maint;                  /* park_count at the last maintenance */
	uint64_t last_maint_probe_ns;
	uint64_t idle_trimmed_ns;                 /* last idle trim (fiber.c, weft__fiber_trim) */
	uint64_t idle_trim_polls;                 /* poll_count at it: unchanged at the next => deep */
	uint64_t id_next, id_end;                 /* task id block */
	/* Tasks spawned and completed on this core (owner writes; metrics
	 * read: alive_tasks is spawned minus completed, owned.c). */
	_Atomic uint64_t spawned, completed;
	struct weft_probe_counters c;
	struct weft_probe_steal steal_from[WEFT_PROBE_STEAL_VICTIMS]; /* for tracers */
	/* This core as a thief: its look at each victim below
	 * WEFT_PROBE_STEAL_VICTIMS (steal.h; a victim beyond is stolen from
	 * as before the policy). */
	struct weft__steal_look look[WEFT_PROBE_STEAL_VICTIMS];
	struct weft__stack_cache stacks;          /* fiber stacks (fiber.h) */
	/* Timers set while holding this core: the owner inserts, cancels and
	 * fires them under an uncontended lock; other threads take it only to
	 * cancel or refresh one of them, or to fire them while the owner is
	 * away (driver.c). */
	_Alignas(WEFT_CACHELINE) struct weft__tshard timers;
	struct weft__task_cache cache;            /* aligned inside */
	/* read by others */
	_Alignas(WEFT_CACHELINE) _Atomic bool sleeping;   /* listed in idle sleepers */
	_Atomic bool trim_wanted;                 /* others: memory came free, trim (alloc.c) */
	_Atomic uint64_t poll_seq;                /* owner: poll_count at each poll's start */
	/* A watcher rescuing the yielded tasks (`deferred`) of this core,
	 * stuck in one poll: 1 while it looks. The owner reads it after
	 * every poll, before it touches `deferred` again (worker.c,
	 * rescue_deferred). */
	_Atomic uint32_t yield_claim;
	/* written by watchers: a line of its own, so their stores do not
	 * take the owner's poll_seq line away from it */
	_Alignas(WEFT_CACHELINE) _Atomic uint64_t watch; /* others: (uint32_t)poll_seq << 32 | time in
						     2^20 ns units when a watcher first saw
						     that poll running (worker.c, watch_cores) */
	_Atomic uint64_t stalled_seq;             /* others: the last poll counted as a stall */
	_Atomic uint64_t stalls;                  /* others: stalls counted on this core */
	_Alignas(WEFT_CACHELINE) struct weft__pub_counters pub;
	/* under rt->resize_lock: CORE_ACTIVE, CORE_RETIRING or CORE_RETIRED */
	unsigned life;
};
enum { CORE_ACTIVE, CORE_RETIRING, CORE_RETIRED };

/* -------------------------------------------------------------- worker */
/* A worker thread. The first thread of each core lives in rt->workers; a
 * spare (blocking.c: started for block_in_place, or a thread that lost its
 * core to one) is allocated on its own and kept on the runtime's list of
 * spares until destroy, so any pointer to a worker stays valid while the
 * runtime lives (the registry relies on it). */
struct weft__worker {
	struct weft_runtime *rt;
	unsigned index;                           /* core at start (thread name, hooks) */
	pthread_t thread;
	bool extra;                               /* allocated alone, freed at destroy; joined through rt->leaver */
	bool joined;                              /* first thread of a core: joined at shutdown */
	bool fresh_core;                          /* started for a core weft_runtime_set_workers
						   * added: nobody else drives it until this
						   * thread does (idle.c, weft__idle_hook_begin) */
	bool listed;                              /* under blocking.lock: on the idle-spare stack */
	bool exited;                              /* under blocking.lock: its spare loop has ended */
	_Atomic bool evicted;                     /* set under blocking.lock: an idle spare asked to
						   * leave, its thread's room wanted by the pool */
	struct weft__worker *next_spare;          /* under blocking.lock: idle-spare stack */
	struct weft__worker *next_all;            /* under blocking.lock: every extra worker */
	_Atomic int tid;
	_Alignas(WEFT_CACHELINE) struct weft__parker parker;
	/* A core handed over by block_in_place: the caller stores it and
	 * unparks; the spare takes it with an exchange, the caller takes it
	 * back with a CAS - exactly one of them gets it (blocking.c). */
	struct weft__core *_Atomic assign;
};

/* ------------------------------------------------------------ registry */
/* Which thread holds which core: one atomic slot per core (registry.c). */
struct weft__registry {
	struct weft__worker *_Atomic holder[WEFT_MAX_WORKERS]; /* per core; NULL if none */
};
int weft__registry_init(struct weft_runtime *rt);
/* Publish w as the core's holder (no grace period: workers are type-stable). */
void weft__registry_set(struct weft_runtime *rt, unsigned core, struct weft__worker *w);
void weft__registry_unpark(struct weft_runtime *rt, unsigned core);
uint64_t weft__registry_tid(struct weft_runtime *rt, unsigned core); /* 0: none */
void weft__registry_fini(struct weft_runtime *rt);

/* ------------------------------------------------------------ context */
/* What the calling thread is doing for weft: a worker holding a core, or a
 * thread inside block_on. Read only through weft__ctx() (see worker.c). */
struct weft_cx {
	struct weft_task *task;                   /* NULL: a thread blocked in weft__wait */
	struct weft_runtime *rt;
	weft_waker waker;
	void *result;
	bool result_set;
	int error;                                /* READY with an error for the joiner */
	unsigned *budget;
	struct weft__core *core;
};
struct weft__ctx {
	struct weft_runtime *rt;
	struct weft__worker *worker;              /* NULL outside workers */
	struct weft__core *core;                  /* NULL if no core held */
	unsigned budget;
	struct weft_cx *cx;                       /* the poll in progress */
	struct weft__fiber *fiber;                /* the fiber running on this thread */
	struct weft__fiber *fiber_in_place;       /* fiber whose block_in_place fn runs here
						     (on its stack, as plain code), or whose
						     fiber-local dtors run here (discarding) */
	bool discarding;                          /* running a discarded fiber's dtors
						     (local.c): every wait is -ECANCELED */
	bool pool;                                /* a blocking-pool thread of rt */
	struct weft_runtime *home;                /* the runtime whose worker or pool thread this is
						     (kept across block_on) */
};
struct weft__ctx *weft__ctx(void);
void weft__ctx_set(struct weft__ctx *c);
/* A poll task's code on a worker thread that holds no core: its
 * weft_block_in_place fn (or the rest of its poll after a hand-off). */
static inline bool weft__ctx_poll_in_place(const struct weft__ctx *ctx)
{
	return ctx && ctx->worker && !ctx->core && !ctx->fiber && !ctx->fiber_in_place && ctx->cx;
}
/* The task whose code called this thread's innermost weft_block_on (from a
 * weft_block_in_place fn or a blocking job), NULL if none. */
struct weft_task *weft__block_on_task(void);
/* The calling thread is inside weft_runtime_shutdown(rt) (runtime.c): a
 * drop or dtor that shutdown runs here. */
bool weft__in_own_shutdown(const struct weft_runtime *rt);
/* Inside some runtime's weft_runtime_shutdown: the cheap test first. */
bool weft__in_a_shutdown(void);
/* A join of t, from here, would wait for the shutdown this thread runs: t
 * is a task of a runtime this thread is shutting down, not finished yet
 * (task.c; weft_join's -EDEADLK). */
bool weft__join_waits_on_own_shutdown(struct weft_task *t);
/* t is a task of a runtime made before a fork, seen in the child (task.c) */
bool weft__task_forked(const struct weft_task *t);
/* t is the task whose poll is in progress here, through cx or this
 * thread's context: a join of t would wait for itself (task.c, as
 * weft_join_poll's -EDEADLK). */
bool weft__join_is_self(struct weft_task *t, struct weft_cx *cx);
/* A join set lists t as a member (joinset.c; for the next call). */
void weft__task_mark_joinset(struct weft_task *t);
/* The joiner polling with cx may be a join set member: one of the tasks
 * weft__join_is_self compares is listed in a set, or `spawning` (a spawn
 * into the set is under way: its member may run before it is listed) and
 * there is such a task (task.c). */
bool weft__joiner_may_be_member(struct weft_cx *cx, bool spawning);
/* The same for a join set's join_next: no member is ready, and every one
 * is such a task (joinset.c). */
bool weft__joinset_waits_on_own_shutdown(struct weft_joinset *s);

/* ------------------------------------------------------------ driver.c */
struct weft__driver {
	pthread_mutex_t lock;                     /* held by the thread in epoll_wait */
	_Atomic bool sleeper;                     /* a thread sleeps in it (weft__idle_relay) */
	int epfd, evfd;                           /* the epoll driver's (io_uring: epfd the
						   * registry, never waited on) */
	uint64_t start_ns;
	_Atomic bool io_registered;               /* any fd ever registered */
	_Atomic uint64_t io_registered_count, io_deregistered_count, io_ready_events;
	pthread_mutex_t retired_lock;
	struct weft_io *retired;                  /* deregistered, freed at the next driver pass */
	struct weft_io *regs;                     /* live registrations (under retired_lock) */
	struct weft_io *reg_free, *reg_free_tail; /* registration slab: free entries, oldest first */
	struct reg_chunk *reg_chunks;             /* and its chunks */
	_Atomic bool retired_any;
	/* Timers set by threads holding no core; each core has its own
	 * shard (weft__core.timers). */
	_Alignas(WEFT_CACHELINE) struct weft__tshard timers;
	_Atomic uint64_t sleep_until_tick;          /* what the driver thread sleeps to */
	/* Who watches the LIFO slots (worker.c's push, driver.c): 0, the
	 * driver's sleeper, every WEFT_WATCH_MS; WEFT__UNWATCHED_SLEEPER, the
	 * sleeper sleeps with no watch (every other worker was parked): a push
	 * wakes it; WEFT__UNWATCHED_VACANT, nobody: the sleeper left with I/O
	 * work, no timer set and every other worker parked, and relayed the
	 * driver to nobody; the first LIFO push or earliest timer set since
	 * wakes a parked worker to take it (weft__driver_unwatched). */
	_Alignas(WEFT_CACHELINE) _Atomic uint8_t unwatched;
	/* The io_uring driver's, on unwatched's line (read with it by the
	 * wakes; placed earlier they shifted every later field of the runtime
	 * by a line, and spawn_many_remote_idle ran 8% slower). */
	struct weft__uring *uring;                /* the io_uring driver (uring.c); NULL: epoll */
	_Atomic bool arm_pending_any;
	/* io_uring: shut down, no driver pass will read a completion again:
	 * the polls' references are dropped without them (io.c; set under
	 * retired_lock, fits the padding here) */
	_Atomic bool no_driver;
	struct weft_io *arm_pending;              /* registrations to arm (retired_lock) */
	_Atomic uint64_t io_polls_ended;          /* polls whose last completion came */
	_Atomic uint64_t io_polls_rearmed;        /* polls armed again by the driver */
	struct weft_io *polled;                   /* io_uring: whose poll holds a reference
						   * (retired_lock) */
};
/* ----------------------------------------------------------- blocking.c */
struct weft__blocking {
	pthread_mutex_t lock;
	pthread_cond_t work, gone;
	struct weft__tlist queue;                 /* jobs not started */
	unsigned threads, idle, max;
	/* jobs weft__blocking_abort took out of the queue and is cancelling
	 * on its caller's thread: shutdown waits for them as for threads */
	unsigned aborting;
	uint64_t keep_alive_ns, exited;
	bool closed;
	/* A job is queued but no pool thread exists (pthread_create failed):
	 * worker maintenance retries starting one. */
	_Atomic bool starved;
	/* Spares for block_in_place (blocking.c): worker threads beyond one per
	 * core, counted with the pool's threads against `max`. */
	unsigned extra;                           /* spare threads alive */
	struct weft__worker *spares;              /* idle ones, a stack (w->listed) */
	struct weft__worker *all;                 /* every one ever made, freed at destroy */
	uint64_t spares_made;                     /* threads started for block_in_place */
	uint64_t no_spare;                        /* calls that ran fn holding the core */
	_Atomic uint64_t reclaims;                /* calls whose caller took its core back */
	unsigned evict_pool;                      /* idle pool threads asked to leave, for a
						   * spare's room (blocking.c, spare_take) */
};
/* weft_spawn_blocking with a drop for arg, called when fn never runs (the
 * job was cancelled while queued); on an error return nothing is called. */
int weft__spawn_blocking_drop(struct weft_runtime *rt, void *(*fn)(void *), void *arg,
			      void (*drop)(void *), struct weft_task **out);
/* From worker maintenance: start a pool thread if jobs wait with none. */
void weft__blocking_retry(struct weft_runtime *rt);
/* weft_abort of t, left to its next run: if t is a job still queued, take
 * it out and cancel it now. */
void weft__blocking_abort(struct weft_task *t);

/* ------------------------------------------------------------ fork.c */
/* Bumped in the child of every fork(). A runtime remembers the value it was
 * created under; a different value means we are in a forked child, whose
 * copy of the runtime has no threads and possibly locked mutexes: every
 * public call refuses with -ECHILD before touching anything. */
extern _Atomic unsigned weft__fork_gen;
void weft__fork_watch(void);
/* In a forked child (fork.c): weft_once's list of the fns fibers run
 * starts empty, its lock free (sync/once.c). */
void weft__once_after_fork(void);
/* True in the child of a fork made by a thread running weft code (a task's
 * poll, a fiber, a blocking job): that thread goes on in the child, on the
 * parent's copy of the runtime. Its waits return -ECHILD, and a return into
 * the runtime's loop ends the child (weft__fork_child_returned). */
extern WEFT__TLS bool weft__forked_task;
/* Set once by each thread a runtime starts (workers, spares, blocking-pool
 * threads): a fork from such a thread leaves its copy in a runtime loop. */
extern WEFT__TLS bool weft__runtime_thread;
/* The runtime that started this thread (a worker, a spare or a pool
 * thread: each one is joined by its shutdown). Kept after the thread's
 * loop ends: its key destructors still run on it, and a shutdown of that
 * runtime from one would wait to join the thread it runs on. */
extern WEFT__TLS struct weft_runtime *weft__thread_of;
/* A spare or pool thread of rt on its way out, before it counts itself
 * out: swap it into rt->leaver; returns the thread it displaced (0: none),
 * which the caller joins once it has let go of rt (weft__thread_join). */
uintptr_t weft__thread_leave(struct weft_runtime *rt);
void weft__thread_join(uintptr_t th);
/* sync/chan.c, for weft_signal_notify's check (io/signal.c) */
size_t weft__chan_item_size(const struct weft_chan *ch);
/* Count a signal notified into ch (+1) or stopped (-1): signal.c. */
void weft__chan_sig_ref(struct weft_chan *ch, int delta);
/* sync/oneshot.c, for a select's ONESHOT_RECV arm without a place for the
 * value: weft_oneshot_recv_poll, but a value received is passed to the
 * oneshot's value_drop (nobody else will see it). */
int weft__oneshot_recv_poll_drop(struct weft_oneshot *o, struct weft_wait *w,
				 struct weft_cx *cx);
__attribute__((noreturn, cold)) void weft__fork_child_returned(void);
#define WEFT__FORKED(rt) \
	(atomic_load_explicit(&weft__fork_gen, memory_order_relaxed) != (rt)->fork_gen)

/* ------------------------------------------------------------ runtime */
struct weft_runtime {
	struct weft_runtime_opts opts;
	char name_prefix[16];
	/* created while every probe registry slot was taken: queued, and
	 * listed when a slot frees (probes.c; guarded by its lock) */
	struct weft_runtime *reg_wait_next;
	bool reg_waiting;
	/* Cores made so far (never fewer: a retired core stays, idle, until
	 * destroy, so any &rt->cores[i] with i < n stays valid; loops over
	 * the cores run to n). The array has room for WEFT_MAX_WORKERS;
	 * cores past n are untouched memory. Stored with release under
	 * resize_lock after the new core is initialised. */
	_Atomic unsigned n;
	/* Cores in service: 0 .. active-1 (weft_runtime_set_workers). Cores
	 * from active to n-1 are retiring or retired. */
	_Atomic unsigned active;
	unsigned nfirst;                          /* entries in `workers` (cores at create) */
	pthread_mutex_t resize_lock;              /* weft_runtime_set_workers, core retirement */
	uint32_t event_interval;
	uint32_t fixed_gqi;                       /* 0: self-tuned */
	size_t fiber_stack_size;
	uint64_t stall_ns;                        /* stall threshold (worker.c, watch_cores) */
	unsigned ncpu;                            /* CPUs the creating thread may use (cpus.c: affinity, capped by a cgroup quota) */
	struct weft__stack_pool stacks;           /* fiber stack slabs (fiber.h) */
	struct weft__stack_pool *_Atomic stack_class[WEFT__STACK_CLASSES]; /* other sizes */
	_Alignas(WEFT_CACHELINE) _Atomic bool shutdown;   /* workers stop */
	_Atomic bool closed;                      /* shutdown began: no spawn, no registration */
	_Alignas(WEFT_CACHELINE) struct weft__inject inject;
	/* Threads holding no core of this runtime that are inside
	 * weft__schedule: destroy waits for zero before freeing (worker.c). */
	_Alignas(WEFT_CACHELINE) _Atomic unsigned remote_schedules;
	/* Threads inside weft_block_on(rt): their fn may outlive the
	 * shutdown (a select's interval timer in driver.timers, holding the
	 * thread's waker): destroy refuses (-EBUSY) while any is there. */
	_Atomic unsigned block_ons;
	struct weft__driver driver;
	struct weft__idle idle;
	struct weft__owned owned;
	struct weft__core *cores;                 /* room for WEFT_MAX_WORKERS, cache-aligned */
	struct weft__worker *workers;             /* nfirst: the first thread of each core */
	/* Every worker thread counts itself out as its last act, and shutdown
	 * waits for the count to reach zero. The first thread of each core is
	 * then joined; spare threads (block_in_place, their structs freed at
	 * destroy) and blocking-pool threads through `leaver`. */
	pthread_mutex_t threads_lock;
	pthread_cond_t threads_cv;                /* CLOCK_MONOTONIC */
	unsigned live_threads;
	/* The last spare or pool thread to leave (a pthread_t; 0: none),
	 * joinable: each one leaving swaps itself in before it counts itself
	 * out and joins the one it displaced, and shutdown joins the last, so
	 * none outlives destroy (weft__thread_leave). */
	_Atomic uintptr_t leaver;
	_Atomic uint64_t handoffs;
	struct weft__blocking blocking;
	struct weft__registry *registry;          /* core -> holding thread (registry.c) */
	/* task memory */
	struct weft__task_cache foreign;
	struct weft__slock foreign_lock;
	_Atomic size_t slab_count;
	/* shutdown */
	pthread_mutex_t shutdown_lock;
	/* Tasks the closed inject queue refused during shutdown (weft__orphan),
	 * ended by drain_queues or destroy rather than in the scheduling call,
	 * whose caller may hold a lock their drop functions need. */
	pthread_mutex_t orphans_lock;
	struct weft__tlist orphans;
	bool orphans_drained;                     /* the shutdown's drain ran: end them at once */
	bool closing, stopping, shut_down;        /* steps 0, 1 begun; done (runtime.c) */
	uint64_t seedgen;
	unsigned fork_gen;                        /* weft__fork_gen at create */
	bool driver_up;                           /* driver initialised (for rt_free) */
};

/* ------------------------------------------------------ driver.c API */
struct weft_runtime;
int weft__driver_init(struct weft_runtime *rt);
void weft__driver_core_init(struct weft__core *c);     /* a core made after create */
void weft__driver_fini(struct weft_runtime *rt);
void weft__driver_wake(struct weft_runtime *rt);
enum { WEFT__UNWATCHED_SLEEPER = 1, WEFT__UNWATCHED_VACANT = 2 };
void weft__driver_unwatched(struct weft_runtime *rt, uint8_t u);
uint64_t weft__driver_now_tick(struct weft_runtime *rt);
/* driver.c: epoll_pwait2 is missing (found at run time; tests set it). */
extern _Atomic bool weft__driver_no_pwait2;
/* until_ns: 0, or a CLOCK_MONOTONIC time to wake at the latest (the idle
 * trim's, fiber.c) */
bool weft__driver_park(struct weft_runtime *rt, struct weft__parker *p, uint64_t until_ns,
		       unsigned *linger);
void weft__driver_poll_nowait(struct weft_runtime *rt);
void weft__timers_process(struct weft_runtime *rt);
/* When the earliest timer is due (ns, CLOCK_MONOTONIC), or 0: none soon. */
uint64_t weft__driver_next_due_ns(struct weft_runtime *rt);
enum weft_poll weft__timer_poll(struct weft_runtime *rt, struct weft__timer *t,
				uint64_t deadline_ns, struct weft_cx *cx);
void weft__timer_cancel(struct weft_runtime *rt, struct weft__timer *t);
/* The same, the waker a pending timer held handed to the caller (to wake
 * or drop) instead of dropped; {NULL, NULL} if it held none. */
weft_waker weft__timer_cancel_take(struct weft_runtime *rt, struct weft__timer *t);
/* The same without waiting for a wake of a firing it raced to end: for a
 * timer whose waker is the caller's own fiber task (driver.c). */
void weft__timer_cancel_own(struct weft_runtime *rt, struct weft__timer *t);
/* io.c: readiness delivered by the driver for a registration. */
void weft__io_ready(struct weft_runtime *rt, void *reg, uint32_t events);
/* io.c: one read or write for a poll form (reader.c, writer.c); see there. */
#define WEFT__IO_WAIT (-1000000)
ssize_t weft__io_xfer_poll(struct weft_io *io, void *buf, size_t n, bool write_,
			   struct weft_cx *cx);
/* child.c: a timeout (WEFT_FOREVER: none) as a deadline, and what is
 * left of one */
uint64_t weft__child_deadline(uint64_t timeout_ns);
uint64_t weft__child_left(uint64_t deadline);
/* child.c: a pause before the next wait if `ready` was an error that stays */
int weft__child_backoff(struct weft_io_ready ready, uint64_t deadline);
/* child.c: weft_child_reap without its close of io: 0 (reaped, *status
 * set), -EAGAIN (running: readiness cleared), -EBADF, or waitid's error
 * (-ECHILD). After 0 or an error other than -EAGAIN and -EBADF the caller
 * closes io (process.c: whoever takes it out of p->child). */
int weft__child_reap_keep(struct weft_io *io, int *status);
/* io.c: a call's reference on io, as the socket calls take one (a close
 * meanwhile leaves the fd open until weft__io_release): 0, or -EBADF once
 * closed or deregistered. */
/* child.c: pid's pidfd, checked to be our child (waitid WNOWAIT, which
 * reaps nothing): the fd, or -ESRCH, -ECHILD (not ours), -EMFILE, ... */
int weft__child_pidfd(pid_t pid);
int weft__io_hold(struct weft_io *io);
/* The registration's fd, for a caller holding it (weft__io_hold): weft_io_fd
 * says -EBADF once a close has begun, while the held fd stays open. */
int weft__io_fd(const struct weft_io *io);
/* io.c: mark a registration of a child's pidfd, made by weft (child.c,
 * process.c), which weft_child_reap takes; any other it refuses */
void weft__io_mark_child(struct weft_io *io);
bool weft__io_is_child(const struct weft_io *io);
/* io.c: a datagram or seqpacket socket, where one read takes one message
 * (cut to the room given; an empty one reads as 0): no stream to buffer
 * or copy from (reader.c; the copies say -EPROTOTYPE) */
bool weft__io_is_msg(const struct weft_io *io);
/* io.c: a registration made before a fork, seen in the child (the driver
 * that would report its readiness is the parent's) */
bool weft__io_forked(const struct weft_io *io);
/* io.c: io_uring, the registration's poll failed (no readiness will come,
 * and WEFT_IO_ERROR stays set) */
bool weft__io_broken(const struct weft_io *io);
void weft__io_release(struct weft_io *io);
uint64_t weft__io_tick(const struct weft_io *io); /* the readiness's tick, for a clear */
/* ------------------------------------------------------- uring.c API */
/* In a driver event's mask: the io_uring poll behind it ended, or ended
 * with an error (no bits of epoll's or poll's; uring.c). */
#define WEFT__EV_ENDED (1u << 26)
#define WEFT__EV_FAILED (1u << 25)   /* and with an error: the mask is 0 */
#define WEFT__EV_CANCELED (1u << 24) /* and the error was ECANCELED */
struct epoll_event;
int weft__uring_init(struct weft_runtime *rt);          /* -ENOSYS, -EPERM, -EOPNOTSUPP: none */
void weft__uring_fini(struct weft_runtime *rt);
int weft__uring_arm(struct weft_runtime *rt, int fd, void *reg, uint32_t events);
int weft__uring_disarm(struct weft_runtime *rt, void *reg);
void weft__uring_wake(struct weft_runtime *rt);
uint64_t weft__uring_overflows(struct weft_runtime *rt); /* completion queue overflows seen */
void weft__uring_test_oneshot(struct weft_runtime *rt, unsigned n); /* tests: next n arms oneshot */
int weft__uring_wait(struct weft_runtime *rt, struct epoll_event *ev, int max, int64_t timeout_ns);
void weft__io_free_retired(struct weft_runtime *rt);
void weft__io_arm_pending(struct weft_runtime *rt);    /* io_uring: driver lock held */
void weft__io_shutdown(struct weft_runtime *rt);
void weft__io_stop_waiters(struct weft_runtime *rt);
void weft__io_fini(struct weft_runtime *rt);

/* ------------------------------------------------------------- wait.c */
struct weft_wait;
void weft_wait_cancel(struct weft_wait *w);  /* lib/sync */
typedef enum weft_poll (*weft__wait_poll_fn)(void *arg, struct weft_cx *cx);
/*
 * Block the caller until poll(arg, cx) returns WEFT_READY: a thread outside
 * the runtime parks between polls (a fiber will suspend). `w` (may be NULL)
 * is the wait-list entry the poll links, for cancelling a suspended fiber.
 * Returns 0, -EDEADLK from a poll task on a thread that holds a core,
 * -ENOMEM, -ECANCELED in a fiber whose task was cancelled (the caller
 * then cancels `w` itself, as after -ETIMEDOUT).
 */
int weft__wait(weft__wait_poll_fn poll, void *arg, struct weft_wait *w);
/* The same with a deadline (CLOCK_MONOTONIC ns, WEFT_FOREVER for none):
 * -ETIMEDOUT when it passes first; the caller then cancels `w` itself. */
int weft__wait_deadline(weft__wait_poll_fn poll, void *arg, struct weft_wait *w,
			uint64_t deadline_ns);
/* The same for an I/O wait (io.c): in a fiber's weft_block_in_place fn,
 * the runtime's close does not cancel it at its start, as it does the
 * other waits there; shutdown ends it with -ESHUTDOWN (weft/io.h). */
int weft__io_wait_deadline(weft__wait_poll_fn poll, void *arg, struct weft_wait *w,
			   uint64_t deadline_ns);
/* True in a fiber whose task was cancelled: its blocking calls return
 * -ECANCELED (weft__wait does it; calls that may finish without waiting
 * ask here first). When true it has spent a unit of the fiber's budget,
 * and may have yielded (wait.c, cancel_spend): ask at the start of a call,
 * with no wait entry linked and no lock held. */
bool weft__cancelled(void);
/* In a cancelled fiber: spend a unit of its budget, yielding once it is
 * spent (wait.c, cancel_spend); no-op elsewhere. For the calls that are no
 * cancellation points (spawns, weft_block_in_place), so that a fiber
 * looping on them after its cancellation still suspends at times. Call it
 * first thing, with nothing held (the fiber may resume on another
 * thread: read weft__ctx() after it). */
void weft__cancelled_spend(void);
/* True in the weft_block_in_place fn of a fiber that was cancelled or
 * whose runtime is shutting down, where the fn's waits end with -ECANCELED
 * (weft__wait_deadline): for a call that never waits (an unbounded
 * channel's send) and so never reaches that check. */
bool weft__fn_cancelled(void);
/* One unit of the cooperative budget for a blocking-style operation that
 * finished without waiting: a fiber that has spent its budget yields here
 * (so a fiber whose socket is always ready still lets the others run).
 * No-op outside a fiber. */
void weft__coop_spend(void);

/* ------------------------------------------------------------- task.c */
/* weft_spawn_poll with the spawn site to publish (the caller's return
 * address: the public spawn calls pass their own caller's). */
#define WEFT__SPAWN_UNWIND 1u /* a fiber: cancellation polls it (task.c) */
int weft__spawn_poll_at(struct weft_runtime *rt, weft_poll_fn poll, void *state,
			weft_drop_fn drop, struct weft_task **out, void *site, unsigned flags);
void weft__task_init(struct weft_task *t, struct weft_runtime *rt, weft_poll_fn poll,
		     void *arg, weft_drop_fn drop, bool join);
/* Run the poll for a Notified reference held by the caller (worker). */
void weft__task_run(struct weft_task *t, struct weft_cx *cx);
/* Add one reference (the caller holds one); drop one, freeing the task on
 * the last. */
void weft__task_ref(struct weft_task *t);
void weft__task_unref(struct weft_task *t);
/* Runtime shutdown, first step: cancel a task (a fiber) and enqueue it if
 * it was idle, so that a worker polls it to unwind. true if enqueued. */
bool weft__task_cancel(struct weft_task *t);
/* Cancellation was requested (weft_abort, shutdown): read by the task's
 * own poll (relaxed: the bit is never cleared). */
bool weft__task_cancelled(const struct weft_task *t);
/* Runtime shutdown: cancel a task taken off the owned list (no worker runs). */
void weft__task_shutdown(struct weft_task *t);
/* Runtime shutdown: end a task weft__owned_claim_idle claimed. */
void weft__task_end_claimed(struct weft_task *t);
/* A Notified reference a closed queue refused, or found in a queue by the
 * final drain: ends the task if no sweep will (it was never pending), and
 * drops the reference. */
void weft__task_drop_queued(struct weft_task *t);
/* Queued tasks the closed inject queue refused (the list is emptied): kept
 * for the shutdown's drain (runtime.c). */
void weft__orphan(struct weft_runtime *rt, struct weft__tlist *l);
extern const struct weft_waker_vtable weft__task_waker_vtable;

/* ------------------------------------------------------------ worker.c */
/* Submit a Notified reference: to this thread's core if it holds one of rt's
 * cores (LIFO unless is_yield), else to the inject queue (counted in
 * rt->remote_schedules until the call has stopped touching rt). */
void weft__schedule(struct weft_runtime *rt, struct weft_task *t, bool is_yield);
void *weft__worker_main(void *arg);
/* block_in_place support (worker.c): move a core's LIFO task and deferred
 * yields to its ring; make and start a spare thread. */
void weft__core_release_local(struct weft_runtime *rt, struct weft__core *c);
struct weft__worker *weft__worker_new(struct weft_runtime *rt, unsigned core);
/* This thread (w) holds c now: the registry and the tracers' fields say so.
 * Called by whoever takes a core, also by block_in_place's caller taking its
 * core back: between its offer and the take-back the core may have passed
 * through other threads (an offer to the same spare of the same core by
 * another thread passes the same CAS), so the registry may name another. */
void weft__core_hold(struct weft_runtime *rt, struct weft__worker *w, struct weft__core *c);
/* Start a thread for w (counted in live_threads): the worker loop on core
 * w->index, or for an extra worker the spare loop (it takes w->assign if
 * set). Joinable: an extra worker's thread is joined through rt->leaver
 * (weft__thread_leave). 0 or a negative pthread_create error. */
int weft__worker_start(struct weft_runtime *rt, struct weft__worker *w);
/* blocking.c: a thread without a core waits here for one handed over by
 * block_in_place; returns false when it should exit (shutdown, or idle for
 * blocking_keep_alive_ns), true with *out set to the core it now holds. */
bool weft__spare_wait(struct weft_runtime *rt, struct weft__worker *w, struct weft__core **out);
/* Shutdown: wake every spare so it sees the flag. */
void weft__spares_wake_all(struct weft_runtime *rt);
/* weft_runtime_set_workers: give core c to an idle spare, or start a
 * thread for it. 0, or a negative pthread_create error / -ENOMEM. */
int weft__core_start_thread(struct weft_runtime *rt, struct weft__core *c);
/* A thread that retired its core is a spare now: counted as one. */
void weft__spare_count_retired(struct weft_runtime *rt);
/* blocking.c */
int weft__blocking_init(struct weft_runtime *rt);
void weft__blocking_fini(struct weft_runtime *rt);
int weft__blocking_shutdown(struct weft_runtime *rt, uint64_t deadline_ns); /* monotonic */
void weft__blocking_drain(struct weft_runtime *rt);
void weft__blocking_metrics(struct weft_runtime *rt, struct weft_metrics *m);
uint64_t weft__now_ns(void);
/* The last weft__now_ns() this thread read: a time already passed, so a
 * deadline at or before it is due without another clock read (a fiber may
 * have moved threads since: any thread's reading is in the past). */
extern WEFT__TLS uint64_t weft__clock_seen;
void weft__core_publish(struct weft__core *c);
/* Idle protocol (idle.c) */
int weft__idle_init(struct weft__idle *idle, unsigned n);
/* weft_runtime_set_workers: core c joins the active set, counted unparked
 * (its new thread starts running); true. */
void weft__idle_add_core(struct weft_runtime *rt, struct weft__core *c);
/* Core c is to retire: if it sleeps, take it off the sleepers (counted
 * unparked and searching, as a notifier would) and wake its thread. */
void weft__idle_wake_core(struct weft_runtime *rt, struct weft__core *c);
/* c's holder retires it: it leaves the active set (no longer unparked). */
void weft__idle_remove_core(struct weft_runtime *rt, struct weft__core *c);
void weft__idle_fini(struct weft__idle *idle);
void weft__idle_notify(struct weft_runtime *rt);
bool weft__idle_would_notify(struct weft_runtime *rt);
bool weft__idle_try_search(struct weft__idle *idle);
bool weft__idle_end_search(struct weft__idle *idle);
bool weft__idle_park(struct weft_runtime *rt, struct weft__core *c, bool searching);
/* A sleeper that leaves on its own (the driver's watch found a LIFO task to
 * rescue): counted unparked and searching, unless a notifier already did. */
void weft__idle_unpark_self(struct weft_runtime *rt, struct weft__core *c);
/* The watch (idle.c): whether a parked worker about to sleep sleeps on a
 * WEFT_WATCH_MS timeout to watch the running cores. `linger` is the
 * sleeper's own count of timeouts since it last saw a worker running (0
 * when it parks). _want: the driver's sleeper; _begin: a futex sleeper,
 * only if no other does - true: counted in idle.watchers, and it calls
 * weft__idle_watch_end when it wakes (popped by a notify meanwhile, it
 * searches, and its relay looks for a watcher). */
#define WEFT__WATCH_LINGER 20
bool weft__idle_watch_want(struct weft_runtime *rt, unsigned *linger);
bool weft__idle_watch_begin(struct weft_runtime *rt, unsigned *linger);
void weft__idle_watch_end(struct weft_runtime *rt, struct weft__core *c);
/* Around on_thread_start on a thread that will drive a core counted
 * unparked: the watch does not count that core as running meanwhile;
 * _end makes sure someone watches it from then on. */
void weft__idle_hook_begin(struct weft_runtime *rt);
void weft__idle_hook_end(struct weft_runtime *rt);
/* The last searcher's rescan after it listed itself: notify if work is
 * visible - a ring a thief on `self` would take from now (a ring its
 * worker is serving is not: its worker is running, and the driver's watch
 * looks again while it runs; worker.c, park), or linked inject work. */
void weft__idle_notify_if_work(struct weft_runtime *rt, struct weft__core *self);
/* The last searcher found a task and stopped searching: relay the search
 * if more work is visible - as that rescan, plus `self`'s own ring (a
 * batch or a steal left tasks there) - or if nobody sleeps in the driver
 * (its sleeper may be the one that just left it with work: a sleeper on a
 * futex must take its place, for the timers and the stall watch). */
void weft__idle_relay(struct weft_runtime *rt, struct weft__core *self);
/* worker.c: whether another core's ring holds work a thief on `self`
 * would take now (steal.h); rings their worker is serving do not count. */
bool weft__steal_wanted(struct weft_runtime *rt, struct weft__core *self);
/* Core i is listed as a sleeper (a hint: may be stale by the time it is used). */
static inline bool weft__idle_is_parked(struct weft__idle *idle, unsigned i)
{
	return atomic_load_explicit(&idle->parked[i / 64], memory_order_relaxed) >> (i % 64) & 1;
}

/* Whether a thread outside the runtime that waits for it may spin first:
 * only while fewer of its workers are awake than `ncpu` (the affinity of
 * the thread that created the runtime; cgroup CPU quotas are not read). With
 * every CPU taken by an awake worker, the waiter's CPU is one of theirs,
 * and its spin delays the very worker it waits for (spawn_many_remote_busy2:
 * a joining main thread spun away 25% of the samples; the OS put it on a
 * worker's CPU in two processes of three). A hint: the count may be stale. */
static inline bool weft__cpu_spare(struct weft_runtime *rt)
{
	uint64_t s = atomic_load_explicit(&rt->idle.state, memory_order_relaxed);
	return IDLE_UNPARKED(s) < rt->ncpu;
}

/* ------------------------------------------- poll helpers, inlined here
 * The budget and the waker of a poll: tiny exported functions that every
 * channel, lock and timer operation calls. Inside the library they are
 * these inlines (task.c defines the exported ones with the same bodies):
 * each was a call through the PLT, 4% of fanout_mpsc on one worker. */
static inline enum weft_poll weft__budget_poll_proceed(struct weft_cx *cx)
{
	if (*cx->budget == 0) {
		/* Spent: make sure the task runs again, after the others. */
		if (cx->core)
			cx->core->c.budget_forced_yields++;
		weft_waker_wake_by_ref(&cx->waker);
		return WEFT_PENDING;
	}
	--*cx->budget;
	return WEFT_READY;
}

static inline void weft__budget_refund(struct weft_cx *cx)
{
	if (*cx->budget < WEFT_BUDGET)
		++*cx->budget;
}

static inline const weft_waker *weft__cx_waker(struct weft_cx *cx) { return &cx->waker; }

#define weft_budget_poll_proceed(cx) weft__budget_poll_proceed(cx)
#define weft_budget_refund(cx) weft__budget_refund(cx)
#define weft_cx_waker(cx) weft__cx_waker(cx)

#endif /* WEFT_RUNTIME_H */
