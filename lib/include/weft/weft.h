/*
 * weft.h - the public API of libweft, a work-stealing task runtime for C.
 *
 * fork(): a child process must not use its parent's runtime (its threads
 * did not come along). Every call that takes a runtime, task or registration
 * made before the fork returns -ECHILD in the child (weft_io_close among
 * them: the child closes its copy of an fd with close(2), as the epoll
 * instance is shared with the parent); exec works as usual. The poll form
 * weft_io_poll_ready has no error return: it must not be used there.
 * Forked from inside a task (a fiber, a poll, a blocking job), the child
 * goes on in that task's code on the parent's copy of the runtime: its
 * waits and weft_yield return -ECHILD instead of suspending (and
 * weft_block_in_place runs its fn right there), and it must exec or
 * _exit - returning from the fiber or poll into the runtime ends the
 * child with a message and abort().
 *
 * Conventions (every call below):
 *  - Calls return 0 or a negative errno value; nothing is reported through
 *    `errno`. weft_strerror() turns a code into text.
 *  - Constructors fill an out-parameter and leave it untouched on failure.
 *  - Options structs are size-versioned: fill them with WEFT_OPTS_INIT()
 *    (standard C11) or WEFT_OPTS() (GNU C); see weft/common.h.
 *
 * Ownership in one paragraph: a runtime belongs to the caller of
 * weft_runtime_create() until weft_runtime_destroy(). A spawned task's
 * `state` belongs to weft from the moment weft_spawn_poll() is called:
 * `drop(state)` runs exactly once, whatever the spawn returned. A join
 * handle (`struct weft_task *`) is consumed exactly once, by weft_join(),
 * a weft_join_poll() that returned ready, or weft_detach(). A waker is a
 * value that owns a reference: each clone must be woken by value or dropped.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <weft/common.h>
#include <weft/metrics.h>
#include <weft/time.h>
#include <weft/io.h>
#include <weft/sync.h>
#include <weft/signal.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_runtime;
struct weft_task;
struct weft_cx;

/* ---------------------------------------------------------------- runtime */

/* Largest accepted `workers`. */
#define WEFT_MAX_WORKERS 256

struct weft_runtime_opts {
	size_t sz;            /* sizeof(struct weft_runtime_opts); WEFT_OPTS_INIT sets it */
	/* Worker threads (= cores). 0: WEFT_WORKERS from the environment if
	 * set and not empty (1..WEFT_MAX_WORKERS, else the create fails with -EINVAL and a
	 * message on stderr), else the CPUs the process may use: those of the
	 * caller's affinity mask, capped by a cgroup CPU quota rounded up
	 * (cgroup v2 cpu.max, v1 cpu.cfs_quota_us, of the process's cgroup and
	 * its ancestors) - as Go's GOMAXPROCS and Rust's available_parallelism
	 * count them; that count is capped at WEFT_MAX_WORKERS (a process
	 * that may use more CPUs gets that many workers). 1..WEFT_MAX_WORKERS,
	 * otherwise -EINVAL. */
	int workers;
	/* Ticks between maintenance passes. 0: 61. At most 1,000,000. */
	uint32_t event_interval;
	/* Polls between inject-queue-first checks. 0: self-tuned from the mean
	 * poll time (target 50 us, clamped to 2..127). At most 1,000,000.
	 * Either way a chain of LIFO tasks that hits its cap (3 in a row) has
	 * the inject queue checked first at the next pick. */
	uint32_t global_queue_interval;
	/* Turn the LIFO slot off: tasks woken or spawned by a running task go
	 * to the back of the local queue instead of running next. */
	bool disable_lifo_slot;
	/* Seed for the runtime's seed generator (steal-victim choice).
	 * 0: random. The same non-zero seed gives the same per-core seeds. */
	uint64_t rng_seed;
	/* Worker threads are named "<prefix>-<n>". NULL: "weft-worker".
	 * 1 to 11 bytes, so the name fits Linux's 15-byte limit; "" is
	 * -EINVAL. */
	const char *thread_name_prefix;
	/* Called on each worker thread when it starts and before it exits,
	 * with `hook_arg` and the worker's index: the index of the core the
	 * thread was started for - 0..workers-1 for the first threads, up to
	 * WEFT_MAX_WORKERS - 1 for cores weft_runtime_set_workers adds; a
	 * spare thread started for weft_block_in_place gets the index of the
	 * core it takes over, so two live threads may share one. May be
	 * NULL. Neither hook holds a core (the start hook runs before the
	 * thread takes up its core, the stop hook after it let it go):
	 * spawns from them go to the inject queue, weft_block_in_place in
	 * them just calls fn, and their blocking calls park the thread. */
	void (*on_thread_start)(void *hook_arg, unsigned worker);
	void (*on_thread_stop)(void *hook_arg, unsigned worker);
	void *hook_arg;
	/* Usable stack of each fiber, in bytes (rounded up to a page; a 64
	 * KiB guard region of address space, no RAM, sits below it).
	 * 0: 64 KiB. 16 KiB .. 1 GiB, otherwise -EINVAL. */
	size_t fiber_stack_size;
	/* Threads beyond the workers: blocking-pool threads
	 * (weft_spawn_blocking) plus spare worker threads (weft_block_in_place;
	 * a spare counts while it lives, idle or holding a core) together at
	 * most this many. 0: 512. At most 65,536. */
	unsigned max_blocking_threads;
	/* An idle blocking-pool or spare thread exits after this long. 0: 10 s. */
	uint64_t blocking_keep_alive_ns;
	/* A core whose current poll has lasted this long is stalled: another
	 * worker takes the task waiting in its LIFO slot and the tasks that
	 * yielded on that core (weft_yield; where membarrier(2) works: on a
	 * kernel or seccomp filter without it they wait for the poll to end,
	 * as in Tokio), the stall is counted (metrics: stalls) and reported
	 * (USDT probe `stall`). Detection is by
	 * other workers watching each core's poll count (at maintenance, when a
	 * search finds nothing, and from a parked worker every 5 ms while a
	 * worker runs, on a clock of ~1 ms units), so a stall is seen up to
	 * ~7 ms (plus scheduling delay) after the threshold, and never for a
	 * poll shorter than it; a runtime of one worker has nobody to watch it
	 * and counts none. 0: 10 ms. 1 ms .. 60 s, otherwise -EINVAL. */
	uint64_t stall_threshold_ns;
	/* Where I/O readiness comes from (enum weft_io_driver). 0
	 * (WEFT_IO_DRIVER_DEFAULT): the environment variable WEFT_IO_DRIVER,
	 * "epoll" or "uring" ("io_uring" too; unset or empty: epoll), if set
	 * (an io_uring the kernel refuses falls back to epoll, with one line on
	 * stderr), else epoll. WEFT_IO_DRIVER_URING asked for here fails
	 * weft_runtime_create instead of falling back. */
	int io_driver;
};

/*
 * I/O drivers. Both give the same semantics to weft_io_* (edge-triggered
 * readiness, the same wakes), and both sleep to timer deadlines in ns.
 * - epoll: the default, and the faster one on the benchmarks measured
 *   (docs/BENCHMARKS.md).
 * - io_uring: multishot poll requests on one ring (Linux 5.18 or later:
 *   poll multishot, IORING_ENTER_EXT_ARG, IORING_SETUP_SUBMIT_ALL). A
 *   registered fd's file stays referenced by its poll until weft_io_close
 *   or weft_io_deregister: an fd closed with close(2) while registered stays
 *   open in the kernel (under epoll it would leave the set). An fd
 *   registered on a thread that is not one of the runtime's workers is
 *   armed by a worker at its next driver pass (the kernel interrupts the
 *   thread that armed a poll to post its events; a task's own call that
 *   fails with EINTR on any interruption, such as poll(2) or epoll_wait(2),
 *   can see EINTR on a worker); if that fails, the registration reports
 *   WEFT_IO_ERROR. io_uring reports what woke the fd,
 *   not its whole state; a hang-up or error seen once is checked with
 *   the fd before a later event clears it, as epoll would report it.
 */
enum weft_io_driver {
	WEFT_IO_DRIVER_DEFAULT = 0,
	WEFT_IO_DRIVER_EPOLL = 1,
	WEFT_IO_DRIVER_URING = 2,
};

/*
 * Create a runtime and start its worker threads.
 * Errors: -EINVAL (NULL out, bad opts: wrong sz - below the `workers`
 * field, inside a field, or above WEFT_OPTS_MAX_SZ -, non-zero bytes past
 * the known fields, out-of-range values; WEFT_IO_DRIVER set to something other
 * than "epoll" or "uring"; WEFT_WORKERS set to something other than a
 * number of workers, when opts' workers is 0), -ENOMEM, -EAGAIN or another error of
 * pthread_create (threads already started are stopped and joined, and
 * tasks their start hooks spawned are ended as by a shutdown); with
 * io_driver WEFT_IO_DRIVER_URING: -ENOSYS (no io_uring: the kernel, or a
 * libweft built without liburing), -EPERM (kernel.io_uring_disabled, a
 * seccomp filter of io_uring_setup or io_uring_enter: the create submits
 * one request to find out), -EOPNOTSUPP (a kernel before 5.18), -EMFILE/-ENFILE
 * (no fd for the ring), -ENOMEM (io_uring_setup's).
 * `opts` may be NULL for all defaults.
 */
WEFT_API int weft_runtime_create(const struct weft_runtime_opts *opts,
				 struct weft_runtime **out);

/* The I/O driver `rt` uses: WEFT_IO_DRIVER_EPOLL or WEFT_IO_DRIVER_URING. */
WEFT_API enum weft_io_driver weft_runtime_io_driver(const struct weft_runtime *rt);

/*
 * Change the number of worker threads (cores) while the runtime runs; no
 * worker stops for it. Callable from any thread, a task included.
 *
 * Growing starts the new cores at once (each on an idle spare thread or a
 * new one; not counted against max_blocking_threads). Shrinking returns at
 * once: each removed core's thread notices at its next scheduling step
 * (after the poll it is in, if any), hands the tasks queued on it to the
 * other workers, and becomes a spare thread that exits after
 * blocking_keep_alive_ns. Timers and I/O waits of tasks that ran there
 * keep working. Growing again before that undoes the removal. Concurrent
 * calls are serialised; the last one wins.
 *
 * weft_runtime_metrics reports workers_active (and per-core entries for
 * every core ever made); the USDT probe runtime_resize fires per call and
 * worker_start / worker_stop per core; schedtop follows.
 *
 * Errors: -EINVAL (NULL rt, workers < 1 or > WEFT_MAX_WORKERS),
 * -ESHUTDOWN (shutdown has begun), -ECHILD (a forked child), -ENOMEM or a
 * pthread_create error (-EAGAIN) when a new thread cannot be had: the
 * cores started before the failure stay and the count stops there
 * (weft_runtime_metrics says how many).
 */
WEFT_API int weft_runtime_set_workers(struct weft_runtime *rt, int workers);

/*
 * Stop the runtime: refuse new spawns and registrations (-ESHUTDOWN), let
 * fibers unwind, cancel every task that has not completed (each task's drop
 * runs exactly once; joiners get -ECANCELED), and join the worker threads.
 *
 * Fibers first: every fiber is cancelled as by weft_abort, and the workers
 * keep running while the fibers' blocking calls return -ECANCELED and
 * their code releases what it holds and returns (joiners get -EINTR and
 * the value returned). Shutdown waits for that up to `timeout_ns`. A fiber
 * that keeps running past it (it ignores -ECANCELED, or computes without
 * a weft call) does not hold shutdown longer: the workers are stopped; if
 * the fiber is suspended then (in weft_yield, say, or in a blocking call:
 * a cancelled fiber's calls return at once but still spend its budget
 * and yield now and again - its spawns and weft_block_in_place too -, so
 * one that retries them in a loop is suspended at times) its stack is
 * discarded
 * without unwinding, so whatever it holds stays held (joiners get -EINTR,
 * no result); a fiber computing on a worker keeps that worker, and the
 * call returns -ETIMEDOUT until its poll ends.
 *
 * Waits at most `timeout_ns` in all (WEFT_FOREVER: no limit); on
 * -ETIMEDOUT call it again to keep waiting for the workers (the fibers
 * are not waited for again). Idempotent: 0 once shut down. A runtime
 * with no task alive (none spawned, or all completed) has no work to
 * wait for: its threads only wake and leave, and their exit is waited
 * for up to 1 s even when `timeout_ns` is shorter (0 included), so a
 * 0 limit shuts an idle runtime down with 0 (-ETIMEDOUT only if a stop
 * hook or key destructor holds a thread longer).
 * The limit covers the wait for a concurrent shutdown (or destroy) of rt
 * to let go, too.
 * Once it has returned 0, every thread rt started - workers, spares,
 * blocking-pool threads - has ended, its pthread key destructors run (one
 * still running at the limit: -ETIMEDOUT, as for a worker).
 * Errors: -EINVAL (NULL rt), -EDEADLK (called from one of rt's threads -
 * a worker, a spare, a blocking-pool thread (a job), their pthread key
 * destructors included - or from what rt's shutdown runs on the calling
 * thread: a task's drop, a discarded fiber's dtors), -ETIMEDOUT.
 */
WEFT_API int weft_runtime_shutdown(struct weft_runtime *rt, uint64_t timeout_ns);

/*
 * Shut down (without a time limit) if that was not done, then free the
 * runtime. Every join handle must have been consumed and every waker
 * dropped first, and no other thread may still be inside weft_block_on(rt)
 * (its fn may outlive the shutdown); otherwise -EBUSY and nothing is
 * freed (call again later). The shutdown is done all the same: after
 * -EBUSY, rt refuses spawns (-ESHUTDOWN) and a task whose handle was
 * left unconsumed has been cancelled unless it had completed (its
 * weft_join returns -ECANCELED or -EINTR, as after a shutdown); consume
 * the handles, drop the wakers, then call destroy again.
 * A wake or spawn from a thread outside the runtime whose task has already
 * run may still be returning: destroy waits for it to leave before freeing.
 * Errors: -EINVAL (NULL rt), -EDEADLK (from one of rt's threads - a
 * worker, a spare, a blocking-pool thread, their pthread key destructors
 * included -, from fn of a weft_block_on(rt) on this thread, or
 * from a drop or dtor rt's shutdown runs on this thread), -EBUSY.
 */
WEFT_API int weft_runtime_destroy(struct weft_runtime *rt);

/*
 * Run fn(arg) on the calling thread inside rt's context and store its return
 * value in *result (result may be NULL). Spawns from fn go to the inject
 * queue; weft_join() inside it blocks this thread.
 * Errors: -EINVAL (NULL rt or fn), -EDEADLK (called from a task on a worker
 * thread of any weft runtime while that thread holds a core: not inside
 * weft_block_in_place, nor after it, in the rest of a poll whose core went
 * to a spare), -ESHUTDOWN (rt is shut down); fn does not run then.
 */
WEFT_API int weft_block_on(struct weft_runtime *rt, void *(*fn)(void *arg),
			   void *arg, void **result);

/* The runtime whose task (a blocking job included) or block_on the calling
 * thread is running, else NULL. */
WEFT_API struct weft_runtime *weft_runtime_current(void);

/* -------------------------------------------------------------- poll tasks */

/*
 * A poll function advances a task. Return WEFT_READY when the task is done
 * (optionally after weft_cx_set_result()), or WEFT_PENDING after arranging
 * for a waker (weft_cx_waker(cx), cloned) to be woken when it can progress.
 * A task that wakes its own waker by reference and returns WEFT_PENDING
 * yields: it is polled again after the tasks already queued.
 * Any other return value (for instance a poll form's negative errno passed
 * through) is a programming error: weft aborts with "task <id>: poll
 * function returned <value>, not WEFT_READY (0) or WEFT_PENDING (1)".
 */
typedef enum weft_poll (*weft_poll_fn)(void *state, struct weft_cx *cx);
typedef void (*weft_drop_fn)(void *state);

/*
 * Spawn a poll task. `drop` (may be NULL) runs exactly once with `state`: on
 * completion, on abort, at shutdown, or before this call returns an error.
 * `out` (may be NULL: detached) receives the join handle.
 * From a worker of rt the task goes to the LIFO slot (runs next); from any
 * other thread it goes to the inject queue.
 * Errors: -EINVAL (NULL rt or poll), -ESHUTDOWN, -ENOMEM.
 */
WEFT_API int weft_spawn_poll(struct weft_runtime *rt, weft_poll_fn poll,
			     void *state, weft_drop_fn drop,
			     struct weft_task **out);

/* ------------------------------------------------------------------ fibers */

/*
 * Spawn a fiber task: fn(arg) runs on its own stack (fiber_stack_size) and
 * may call blocking-style weft functions - weft_join, weft_yield, the
 * blocking calls of weft/sync.h - which suspend the fiber, not the thread.
 * Its return value is the task's result. `out` may be NULL (detached).
 * From a worker the fiber goes to the LIFO slot like any local spawn. A
 * fiber may resume on another worker thread after a suspension: do not keep
 * the address of a thread-local variable (errno included) across a weft
 * call.
 *
 * Stacks: taken by this call (so a fiber that returned 0 has one and will
 * run), given back when the fiber finishes. They are slots of large
 * MAP_NORESERVE mappings, each with a 64 KiB guard region below it; a
 * stack costs address space and the pages the fiber touches, and idle
 * stacks give their pages back (MADV_DONTNEED), so memory returns after a
 * burst. An overflow lands in the guard region; weft reports the task id
 * and aborts. A frame larger than the guard could jump it: build code that
 * runs in fibers with -fstack-clash-protection (gcc, clang), as weft is.
 * Guards are installed with madvise(MADV_GUARD_INSTALL), Linux 6.13+, which
 * costs no kernel mapping. On older kernels weft falls back to
 * mprotect(PROT_NONE), which splits the mapping: each stack in use then
 * costs two mappings, so live fibers are bounded by vm.max_map_count / 2
 * (32,765 by default) and the spawn past it fails with -EAGAIN.
 *
 * Cancellation (weft_abort on the handle, or runtime shutdown) unwinds: the
 * blocking call the fiber is suspended in, and every blocking call it makes
 * afterwards, returns -ECANCELED - weft_join, weft_join_timeout, the sleeps,
 * every blocking call of weft/sync.h (mutex lock included) and weft/io.h
 * (read, write, accept, connect, wait; even one that would not have to
 * wait), and weft_yield (which still yields). Non-blocking calls keep
 * working (weft_mutex_unlock, try_* forms, weft_io_close), so the fiber's
 * own code can release its mutexes, close its fds, free its memory and
 * return. Code that retries a failed blocking call must stop on
 * -ECANCELED: a fiber that never returns keeps weft_runtime_shutdown
 * waiting until its timeout (see there). The joiner tells the cases apart:
 * -ECANCELED if fn never started (aborted or shut down first: arg is still
 * the caller's, see weft_spawn_with), -EINTR if it started and was
 * cancelled (*result gets what fn returned).
 *
 * Errors: -EINVAL (NULL rt or fn), -ESHUTDOWN, -ENOMEM (no memory or
 * address space for a stack), -EAGAIN (the guard of a new stack could not
 * be installed: out of kernel mappings, on the fallback); fn does not run.
 * Stack allocation failures are counted in weft_metrics.
 */
WEFT_API int weft_spawn(struct weft_runtime *rt, void *(*fn)(void *arg), void *arg,
			struct weft_task **out);

/* Bounds of a fiber's stack size (fiber_stack_size, weft_spawn_opts). */
#define WEFT_FIBER_STACK_MIN (16u * 1024)
#define WEFT_FIBER_STACK_MAX (1024ul * 1024 * 1024)

/*
 * Options of weft_spawn_with; fill with WEFT_OPTS_INIT(weft_spawn_opts, ...).
 */
struct weft_spawn_opts {
	size_t sz;            /* sizeof(struct weft_spawn_opts); WEFT_OPTS_INIT sets it */
	/* Runs exactly once with `arg` when fn never starts: the fiber was
	 * aborted before its first run, the runtime shut down first, or this
	 * spawn failed (then before weft_spawn_with returns). It runs on the
	 * thread that ends the task (a worker, the thread calling
	 * weft_runtime_shutdown, or the spawner). Once fn has started it
	 * never runs: arg is fn's. May be NULL. */
	void (*drop)(void *arg);
	/* Usable stack of this fiber, in bytes. 0: the runtime's
	 * fiber_stack_size. Otherwise WEFT_FIBER_STACK_MIN ..
	 * WEFT_FIBER_STACK_MAX (else -EINVAL); a size other than the
	 * runtime's is rounded up to a power of two (address space only:
	 * pages are taken as the fiber touches them), and such stacks come
	 * from a pool of their size shared by the workers (no per-worker
	 * cache: spawning them takes a mutex). */
	size_t stack_size;
};

/*
 * weft_spawn with options (`opts` may be NULL: as weft_spawn). With
 * `drop` set, ownership of `arg` mirrors weft_spawn_poll's: the caller
 * gives it away with this call, and it ends either in fn or in drop,
 * never both, never neither. The join result says which: -ECANCELED
 * (never started, drop ran) or anything else (fn started).
 * Errors: as weft_spawn (drop runs before they are returned), and -EINVAL
 * for bad opts (wrong sz, non-zero bytes past the known fields,
 * stack_size out of bounds), in which case drop does not run.
 */
WEFT_API int weft_spawn_with(struct weft_runtime *rt, void *(*fn)(void *arg), void *arg,
			     const struct weft_spawn_opts *opts, struct weft_task **out);

/* True when called from inside a fiber. */
WEFT_API bool weft_in_fiber(void);

/*
 * Fiber-local values: what a thread-local variable would be, for code that
 * runs in fibers (a fiber may resume on another thread, so __thread is not
 * it); Tokio's task_local!, pthread keys. A key is a static object whose
 * address names it; it needs no creation:
 *
 *     static const struct weft_local_key request_id = { .dtor = free };
 *     weft_local_set(&request_id, strdup(id));
 *     ...
 *     const char *id = weft_local_get(&request_id);   // NULL if never set
 *
 * Each fiber has its own value for each key, NULL until it sets one; a
 * spawned fiber starts with none (nothing is inherited). Replacing a value
 * does not destroy the old one (as pthread_setspecific). When fn returns -
 * after a cancellation too, since a cancelled fiber unwinds and returns -
 * each key's dtor (if not NULL) runs on the fiber, once for each non-NULL
 * value, in the order the keys were first set. A dtor may set values again;
 * the new ones are destroyed in a further round, up to
 * WEFT_LOCAL_DTOR_ROUNDS rounds; in the last round weft_local_set refuses
 * (-EBUSY) rather than store a value no dtor would see. A fiber whose stack
 * is discarded without returning (weft_runtime_shutdown's timeout ran out)
 * has its dtors run by the thread that discards it, as if on the fiber:
 * weft_local_get/set act on that fiber's values, and every blocking call
 * returns -ECANCELED at once (a cancelled fiber's cancellation point), so
 * a dtor cannot hold shutdown up; weft_in_fiber() is false. Lookups scan the
 * fiber's keys in order: meant for a handful of keys per fiber.
 * Poll tasks and plain threads have no fiber-local values.
 */
struct weft_local_key {
	void (*dtor)(void *value); /* may be NULL */
};
#define WEFT_LOCAL_DTOR_ROUNDS 4
/* The running fiber's value for key; NULL if none was set, key is NULL, or
 * the caller is not in a fiber. */
WEFT_API void *weft_local_get(const struct weft_local_key *key);
/* Set the running fiber's value for key (NULL clears it: no dtor runs for
 * it). Errors: -EINVAL (NULL key), -EPERM (not in a fiber: a poll task or
 * a plain thread), -ENOMEM (first use of the key in this fiber, and no
 * memory: nothing stored), -EBUSY (from a dtor in the last round). */
WEFT_API int weft_local_set(const struct weft_local_key *key, void *value);

/*
 * Let other tasks run. In a fiber: requeue behind the ready tasks and
 * suspend. Outside the runtime: sched_yield(). Returns 0, -ECANCELED in a
 * fiber that was cancelled (after yielding all the same; also in its
 * weft_block_in_place fn and, at shutdown, in a discarded fiber's dtors),
 * or -EDEADLK from a poll task (which yields by waking itself and
 * returning WEFT_PENDING).
 */
WEFT_API int weft_yield(void);

/* ----------------------------------------------------------- blocking work */

/*
 * Run fn(arg) on a thread of the runtime's blocking pool, for work that
 * blocks (file I/O, DNS, long CPU work). The pool grows to
 * max_blocking_threads; beyond that jobs queue. Idle threads exit after
 * blocking_keep_alive_ns. The join handle works like any other (result =
 * fn's return value); weft_abort cancels a job that has not started (at
 * once, even while every pool thread is busy: its joiner gets -ECANCELED),
 * not one that runs. `out` may be NULL (detached). Shutdown cancels queued
 * jobs and waits (within its timeout) for running ones: a job is no
 * fiber, so its sleeps and weft/sync.h waits are not cut short (its I/O
 * waits say -ESHUTDOWN, and a weft_join of a task the shutdown ends
 * returns, as on any thread).
 * Errors: -EINVAL, -ESHUTDOWN, -ENOMEM; fn does not run.
 */
WEFT_API int weft_spawn_blocking(struct weft_runtime *rt, void *(*fn)(void *arg), void *arg,
				 struct weft_task **out);

/*
 * Run fn(arg) on this worker thread while a spare thread takes over this
 * worker's core (its queues), so the runtime keeps all its workers running
 * tasks while fn blocks. Spares are reused: a call with an idle spare
 * hands the core over in O(1) (a futex wake; no thread creation, no grace
 * period); a call that finds none starts one, within max_blocking_threads
 * (spares count there with the blocking pool's threads; an idle pool
 * thread at the cap is asked to leave to make room). At that cap, or
 * if no thread can be started, fn runs holding the core, as a plain
 * blocking call would (metrics: block_in_place_inline); so it does, not
 * counted there, once shutdown has stopped the workers (no hand-off then).
 * When fn returns, the calling thread takes its core back if the spare
 * has not taken it yet; otherwise the calling task goes on, on this
 * thread, holding no core (its spawns and wakes go to the inject queue)
 * until its poll returns, and the thread then becomes a spare. From
 * outside a worker (or from a thread that holds no core, as inside fn) it
 * just calls fn. *result (may be NULL) receives fn's return value.
 * Returns 0 or -EINVAL (NULL fn).
 * fn runs on the calling thread from start to end, which holds no core
 * meanwhile: weft's blocking calls (weft_join, weft_sleep_ns,
 * weft_block_on, the blocking forms of weft/sync.h and weft/io.h) block
 * the thread there, also when the caller is a fiber. A fiber's fn is part
 * of the fiber: once the fiber is aborted (or its runtime shuts down), a
 * weft/sync.h wait, a sleep or a weft_join in fn returns -ECANCELED - at
 * once when begun after that (even one that would not have to wait, or
 * with a time limit), within ~10 ms when it was already waiting (such a
 * wait looks every 10 ms) -, and so does a weft_yield there (after
 * yielding); its I/O waits (a weft_select with a READY or LINE arm
 * among them) say -ESHUTDOWN at shutdown, as on any thread. A
 * poll task's fn: once shutdown stops the workers (after the fibers'
 * turn), a weft/sync.h wait or a weft_join in fn returns -ECANCELED within
 * ~10 ms (the task it waits for would be ended only after this thread
 * stopped; such a wait looks every 10 ms), and at once when begun after
 * that if it would have to wait, whatever its time limit (one that need
 * not wait, as the lock of a free mutex, still succeeds). A sleep in a
 * poll task's fn is not cut short: a poll task has no cancellation, and
 * a sleep, unlike those waits, ends by itself - it sleeps out and
 * returns 0, and shutdown waits for it within its limit, as for any
 * code fn runs (a fiber's fn's sleep says -ECANCELED, above).
 */
WEFT_API int weft_block_in_place(void *(*fn)(void *arg), void *arg, void **result);

/* ------------------------------------------------------------ join handles */

/*
 * A consumed handle must not be used again. The calls below detect it and
 * return -EINVAL without touching the task, as long as the task's memory has
 * not been taken by a newer task spawned with a handle (after that the old
 * pointer may name the newer task) nor given back to the allocator: an idle
 * worker trims task slabs nobody uses, and a stale handle into a trimmed
 * slab is a read of freed memory. A diagnostic, not a guarantee.
 */

/*
 * Wait for the task to finish and consume the handle. *result (may be NULL)
 * receives the pointer the task set with weft_cx_set_result() or a fiber's
 * return value (NULL if none). In a fiber it suspends the fiber; on any
 * other thread outside the runtime it blocks the thread.
 * Returns 0, -ECANCELED (aborted or cancelled by shutdown before it
 * started - a fiber's fn never ran - or, for a poll task, at any time; the
 * handle is consumed), -EINTR (a fiber cancelled after fn started: fn
 * unwound and returned, and *result receives its value; or shutdown
 * discarded it after its timeout, *result NULL; consumed), -ECANCELED
 * also when the caller is a fiber that is itself cancelled (the handle is
 * not consumed: abort or detach it), -EINVAL (NULL task or a consumed handle), -EDEADLK
 * (called from a poll task on a worker thread, or by the task itself -
 * its weft_block_in_place fn and a weft_block_on fn called from there
 * included -, or, for a task not finished yet, from a drop that the
 * shutdown of the task's runtime runs on the calling thread, which may
 * have that task still to end: the handle is not consumed; use
 * weft_join_poll, or detach it), -ENOMEM (a plain thread's first wait could not
 * allocate its parker; not consumed). A fiber's stack is taken at
 * weft_spawn, so a fiber that was spawned runs: its join never reports a
 * missing stack.
 * One joiner at a time: while a weft_join or weft_join_timeout waits on
 * the handle, another join of any form on it (a second thread, a fiber,
 * weft_join_poll, a select's JOIN arm) returns -EBUSY at once, the handle
 * untouched; the waiting one goes on. Joining from two places at once is
 * a mistake (the handle is consumed once): only one could ever succeed.
 */
WEFT_API int weft_join(struct weft_task *task, void **result);

/*
 * Poll form of weft_join for poll tasks. Returns WEFT_PENDING (handle still
 * valid; cx's waker will be woken when the task finishes), or, with the
 * handle consumed: 0 (result stored), -ECANCELED or -EINTR (a fiber
 * cancelled after fn started; *result receives what fn returned), as
 * weft_join.
 * -EINVAL for a NULL task or cx (handle not consumed) or a consumed handle;
 * -EDEADLK when cx is the task's own (not consumed); -EBUSY while a
 * weft_join or weft_join_timeout waits on the handle (see weft_join; not
 * consumed).
 */
WEFT_API int weft_join_poll(struct weft_task *task, struct weft_cx *cx,
			    void **result);

/* Consume the handle without waiting; the task keeps running. -EINVAL if
 * NULL or already consumed. */
WEFT_API int weft_detach(struct weft_task *task);

/*
 * Request cancellation. A poll task not yet complete is cancelled before
 * its next poll (or when its current poll returns): its drop runs, its
 * joiner gets -ECANCELED. A fiber not yet started never starts (joiner:
 * -ECANCELED); a started fiber unwinds: its blocking calls return
 * -ECANCELED until fn returns (joiner: -EINTR, see weft_spawn). No effect on
 * a finished task. Does not consume the handle.
 * -EINVAL if NULL or already consumed (joined or detached).
 */
WEFT_API int weft_abort(struct weft_task *task);

/* True once the task has completed or been cancelled. */
WEFT_API bool weft_task_is_finished(const struct weft_task *task);

/* A number unique among the tasks of the process (never 0). */
WEFT_API uint64_t weft_task_id(const struct weft_task *task);
/* The id (as weft_task_id) of the task the calling thread is running: a
 * fiber, a poll task, a blocking job (weft_spawn_blocking), or the task
 * whose weft_block_in_place fn this is; in the fiber-local dtors of a fiber
 * discarded at shutdown, that fiber's. A weft_block_on fn called from a
 * task's code (its weft_block_in_place fn, a blocking job) is that task's,
 * as weft_join counts it, whatever the kind of task. 0 outside a task: a
 * plain thread, a weft_block_on fn called from one. For log lines and
 * tracing (Tokio's task::id(), Go's goroutine id in a stack dump). */
WEFT_API uint64_t weft_current_task_id(void);

/* --------------------------------------------------------------- join sets */

/*
 * A set of tasks joined in the order they complete (Tokio's JoinSet, Go's
 * errgroup without its error policy). Spawn fibers and poll tasks into the
 * set; weft_joinset_join_next() returns the outcome of one that finished
 * (each exactly once), or -ENOENT when the set is empty. The set holds the
 * tasks' join handles: callers never see them.
 *
 * Ownership: weft_joinset_create() / weft_joinset_destroy(). Destroy aborts
 * every task still in the set and lets go of it (each task's drop runs once,
 * as for weft_abort, possibly after destroy returned); it returns -EBUSY
 * (nothing done) while a join_next wait entry is linked. Spawns must not run
 * concurrently with destroy; everything else may run from any thread, in
 * parallel. Tasks of several runtimes may share a set.
 */
struct weft_joinset;

/* Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_joinset_create(struct weft_joinset **out);
/* Aborts and detaches the members still in the set, and frees it. In a
 * forked child, members that are tasks of a runtime made before the fork
 * are the parent's and are left alone (its copy of the set still has
 * them); the child's copy is freed all the same (0).
 * Errors: -EINVAL (NULL s), -EBUSY (a joiner's entry is linked). */
WEFT_API int weft_joinset_destroy(struct weft_joinset *s);

/*
 * Spawn into the set: as weft_spawn / weft_spawn_poll, with the handle kept
 * by the set. *id (may be NULL) receives the task's id (weft_task_id), which
 * join_next reports again. Errors: -EINVAL (NULL s, rt, fn/poll),
 * -ESHUTDOWN, -ENOMEM, and weft_spawn's -EAGAIN; the task does not run then
 * (for spawn_poll, drop has run, as weft_spawn_poll does on error).
 */
WEFT_API int weft_joinset_spawn(struct weft_joinset *s, struct weft_runtime *rt,
				void *(*fn)(void *arg), void *arg, uint64_t *id);
WEFT_API int weft_joinset_spawn_poll(struct weft_joinset *s, struct weft_runtime *rt,
				     weft_poll_fn poll, void *state, weft_drop_fn drop,
				     uint64_t *id);

/*
 * Join the next task to complete (in completion order). Poll form (entry
 * rules of weft/sync.h): WEFT_PENDING (none finished yet; `w` linked), or,
 * with that task taken out of the set, its weft_join outcome: 0 (*result,
 * may be NULL, holds its result), -ECANCELED (aborted or cancelled by
 * shutdown before a fiber started, or a poll task), -EINTR (a fiber
 * cancelled after it started: *result holds what fn returned as it
 * unwound); or -ENOENT (the set is empty - also for a joiner linked when
 * it emptied, while the call that emptied it still wakes joiners in
 * batches), -EINVAL (NULL s, w or cx; w
 * attached elsewhere), -ECHILD (in a forked child, when the member next
 * in line - the first finished one not joined yet, or with none finished
 * one still running - is a task of a runtime made before the fork, whose
 * handle weft_join refuses there too: nothing taken out), -EDEADLK (none
 * finished, and the one member still running is the caller itself - a
 * member joining its own set, the others all joined: it would wait for
 * itself, as weft_join on its own handle says; nothing taken out; also
 * for a caller already waiting when the set came down to it). *id (may
 * be NULL) receives the task's id with 0, -ECANCELED and -EINTR.
 */
WEFT_API int weft_joinset_join_next_poll(struct weft_joinset *s, struct weft_wait *w,
					 struct weft_cx *cx, void **result, uint64_t *id);
/* Blocking form: as above (-EDEADLK for the member itself too), plus
 * -EDEADLK (poll task on a worker, or, as for weft_join, from a drop that
 * the shutdown of a runtime runs on the calling thread when no member is
 * finished and every member is a task of that runtime, which it may have
 * still to end: nothing taken out; use weft_joinset_destroy), -ENOMEM,
 * -ECANCELED also when the calling fiber is cancelled (nothing taken
 * out); the _timeout form -ETIMEDOUT (nothing taken out; a joiner whose
 * set emptied before its time ran out says -ENOENT). */
WEFT_API int weft_joinset_join_next(struct weft_joinset *s, void **result, uint64_t *id);
WEFT_API int weft_joinset_join_next_timeout(struct weft_joinset *s, void **result,
					    uint64_t *id, uint64_t timeout_ns);
/* Abort every task in the set (they stay in it: join_next reports each,
 * -ECANCELED unless it completed first - -EINTR for a fiber that had
 * started, with what fn returned as it unwound), a member whose spawn
 * into the set runs at the same time on another thread included; a spawn
 * that starts after abort_all returned is not aborted. 0, or -EINVAL
 * (NULL s), -ECHILD (in a forked child, a member still running is a task
 * of a runtime made before the fork, which weft_abort refuses there too:
 * nothing aborted). */
WEFT_API int weft_joinset_abort_all(struct weft_joinset *s);
/* Tasks in the set: spawned and not yet returned by join_next (0 for NULL).
 * A member counts from the start of its spawn call - also for its own
 * code, which may run (and end) before the spawn returns - unless the
 * spawn fails; a join_next meanwhile waits for it. */
WEFT_API size_t weft_joinset_len(struct weft_joinset *s);

/* ------------------------------------------------------------------ select */

/*
 * Wait for the first of several operations (Go's select, Tokio's select!):
 * channel send or receive, oneshot receive, notify, semaphore or mutex
 * acquire, cancellation token, join of a task or of a join set's next
 * member, a wait group reaching zero, I/O readiness, a buffered reader's
 * next line, a watch's change, a broadcast item, an interval's tick, and
 * (poll form) a timer; the blocking form takes a deadline. Exactly one arm completes, and only it has any effect: arms
 * are polled in order and polling stops at the first that is ready, and
 * every other arm is then deregistered with whatever had been granted to
 * it meanwhile passed on to the next waiter (a channel slot or item, a
 * notify_one permit, semaphore permits, the mutex), so no item, permit or
 * lock is lost or taken twice; a losing CHAN_RECV arm's destination is
 * not written, so arms may share one. A CHAN_SEND arm keeps its place
 * among a buffered channel's waiting senders; on a rendezvous channel, a
 * receiver that comes while the arm's select is being polled may take a
 * later sender's item instead (the arm queues again). A select's send and receive arms on
 * one channel never pair with each other. When several arms are ready, the
 * earliest in the array wins (put a token or deadline arm first to give it
 * priority), also when the task's budget runs out in the middle of a round
 * (the round is then pending and the task runs again); the _fair forms
 * below pick among ready arms at random instead.
 *
 * Fill an array of arms with the WEFT_SEL_* macros below (each zeroes the
 * arm's private wait entry). After a select returned, the arms are idle
 * and may be used again. The winning arm's `rc` holds the result its
 * operation's poll form returned: 0, or an error that completes it (e.g.
 * -EPIPE: the channel is closed; -ECANCELED: the joined task was aborted;
 * -ENOENT: the join set is empty).
 *
 * Per arm (op: obj, ptr, arg -> what the winner leaves):
 *   CHAN_SEND     chan, item to copy in (required)        -> item sent
 *   CHAN_RECV     chan, where to copy the item (required)  -> item received
 *   ONESHOT_RECV  oneshot, void ** (may be NULL)           -> value; the receiver
 *                 end is consumed on 0 and -EPIPE (with NULL the value
 *                 received is passed to the oneshot's value_drop)
 *   NOTIFY        notify                                  -> notified
 *   SEM           sem, -, permits                          -> permits taken
 *   MUTEX         mutex                                   -> the caller holds it
 *   TOKEN         token                                   -> cancelled
 *   JOIN          task handle, void ** result (may be NULL) -> handle consumed
 *                 (0, -ECANCELED or -EINTR, as weft_join_poll)
 *   JOINSET       join set, void ** result (may be NULL)    -> one member taken
 *                 out; its id in `id`
 *   IO            weft_io, -, WEFT_IO_* interest (READABLE and/or WRITABLE;
 *                 HUP, ERROR, CLOSED, SHUTDOWN are reported anyway)
 *                                                         -> `io_ready` holds the
 *                 readiness (pass it to weft_io_clear_ready after EAGAIN);
 *                 rc -ECHILD: a registration made before a fork, in the child
 *   TIMER         struct weft_timer *, -, deadline_ns      -> deadline passed
 *                 (poll form only)
 *   WAITGROUP     waitgroup                               -> its counter was zero
 *                 (nothing taken: other waiters see it too)
 *   READER_LINE   struct weft_reader *, struct weft_line *, delimiter byte
 *                 -> the next line, taken from the reader (weft/io.h,
 *                 weft_reader_until_poll: a line already buffered wins at
 *                 once; len 0 at end of stream); rc -EMSGSIZE, -EBADF, ...
 *   WATCH         watch receiver                          -> a newer value, now
 *                 marked seen (read it with weft_watch_get); rc -EPIPE: closed
 *   BROADCAST     broadcast receiver, where to copy the item (required)
 *                 -> the next item; rc -EOVERFLOW with the number missed in
 *                 `id` (lagged: select again for the oldest kept), -EPIPE
 *   INTERVAL      struct weft_interval *                  -> a tick (Tokio's
 *                 interval.tick() in select!; a losing arm's tick stays due
 *                 for the next select; the blocking form wakes a thread at
 *                 it too)
 * A losing JOIN arm leaves its waker on the handle until the handle is
 * consumed, and a losing IO or READER_LINE arm on the registration until
 * its next readiness event or close: at worst a spurious wake.
 */
enum weft_select_op {
	WEFT_SEL_CHAN_SEND = 1,
	WEFT_SEL_CHAN_RECV,
	WEFT_SEL_ONESHOT_RECV,
	WEFT_SEL_NOTIFY,
	WEFT_SEL_SEM,
	WEFT_SEL_MUTEX,
	WEFT_SEL_TOKEN,
	WEFT_SEL_JOIN,
	WEFT_SEL_JOINSET,
	WEFT_SEL_IO,
	WEFT_SEL_TIMER,
	WEFT_SEL_WAITGROUP, /* appended: the values above stay */
	WEFT_SEL_READER_LINE,
	WEFT_SEL_WATCH,
	WEFT_SEL_BROADCAST,
	WEFT_SEL_INTERVAL,
};

struct weft_select_arm {
	enum weft_select_op op;
	void *obj;
	void *ptr;
	uint64_t arg;
	int rc;                          /* out: the winner's result; -EINPROGRESS: not completed */
	uint64_t id;                     /* out: JOINSET member's task id; BROADCAST: items missed */
	struct weft_io_ready io_ready;   /* out: IO readiness */
	struct weft_wait _w;             /* private */
	uintptr_t _claim;                /* private (arms[0]'s: which arm won) */
};

#define WEFT_SELECT_MAX_ARMS 64

#define WEFT__SEL(OP, OBJ, PTR, ARG) \
	((struct weft_select_arm){ .op = (OP), .obj = (OBJ), .ptr = (PTR), .arg = (ARG), \
				   .rc = -EINPROGRESS })
#define WEFT_SEL_SEND(ch, item)       WEFT__SEL(WEFT_SEL_CHAN_SEND, (ch), (void *)(item), 0)
#define WEFT_SEL_RECV(ch, item)       WEFT__SEL(WEFT_SEL_CHAN_RECV, (ch), (item), 0)
#define WEFT_SEL_ONESHOT(o, valuep)   WEFT__SEL(WEFT_SEL_ONESHOT_RECV, (o), (valuep), 0)
#define WEFT_SEL_NOTIFIED(n)          WEFT__SEL(WEFT_SEL_NOTIFY, (n), NULL, 0)
#define WEFT_SEL_ACQUIRE(s, permits)  WEFT__SEL(WEFT_SEL_SEM, (s), NULL, (permits))
#define WEFT_SEL_LOCK(m)              WEFT__SEL(WEFT_SEL_MUTEX, (m), NULL, 0)
#define WEFT_SEL_CANCELLED(t)         WEFT__SEL(WEFT_SEL_TOKEN, (t), NULL, 0)
#define WEFT_SEL_JOINED(task, resultp) WEFT__SEL(WEFT_SEL_JOIN, (task), (resultp), 0)
#define WEFT_SEL_JOIN_NEXT(set, resultp) WEFT__SEL(WEFT_SEL_JOINSET, (set), (resultp), 0)
#define WEFT_SEL_READY(io, interest)  WEFT__SEL(WEFT_SEL_IO, (io), NULL, (interest))
#define WEFT_SEL_AT(timer, deadline)  WEFT__SEL(WEFT_SEL_TIMER, (timer), NULL, (deadline))
#define WEFT_SEL_WG_DONE(wg)          WEFT__SEL(WEFT_SEL_WAITGROUP, (wg), NULL, 0)
#define WEFT_SEL_LINE(reader, delim, linep) \
	WEFT__SEL(WEFT_SEL_READER_LINE, (reader), (linep), (uint64_t)(delim))
#define WEFT_SEL_CHANGED(watch_rx)    WEFT__SEL(WEFT_SEL_WATCH, (watch_rx), NULL, 0)
#define WEFT_SEL_BROADCAST(rx, item)  WEFT__SEL(WEFT_SEL_BROADCAST, (rx), (item), 0)
#define WEFT_SEL_TICK(interval)       WEFT__SEL(WEFT_SEL_INTERVAL, (interval), NULL, 0)

/*
 * Blocking form (fibers suspend, threads block). Returns the index of the
 * arm that completed (>= 0; its rc holds its result), or -ETIMEDOUT (the
 * deadline - CLOCK_MONOTONIC ns, WEFT_FOREVER for none - passed first;
 * no arm completed), -EINVAL (NULL arms, n = 0 or > WEFT_SELECT_MAX_ARMS,
 * an unknown op, a NULL obj, a NULL ptr for CHAN_SEND/CHAN_RECV/BROADCAST/
 * READER_LINE, a READER_LINE delimiter above 255, an IO arm whose
 * interest has neither WEFT_IO_READABLE nor WEFT_IO_WRITABLE or a bit no
 * WEFT_IO_* names, a SEM arm asking for more than WEFT_SEM_MAX_PERMITS,
 * two ONESHOT_RECV arms on one oneshot, an INTERVAL arm on an interval
 * never initialised, a TIMER arm; before any arm is polled),
 * -EDEADLK (from a poll task on a worker; or, as weft_join and
 * join_next say there, from a drop that the shutdown of a runtime runs on
 * the calling thread when every arm is a JOIN on an unfinished task of
 * that runtime or a JOIN_NEXT on a set whose members are all such tasks,
 * none ready - the shutdown may have them still to end; no arm polled,
 * deadline or not), -ENOMEM, -ECANCELED (the
 * calling fiber was cancelled, before or while waiting: no arm completed,
 * every arm deregistered). An arm whose wait entry is attached to another
 * object completes with -EINVAL.
 */
WEFT_API int weft_select(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns);
WEFT_API int weft_select_timeout(struct weft_select_arm *arms, size_t n, uint64_t timeout_ns);
/*
 * The fair forms (Go's select, Tokio's select! without `biased;`): each
 * round starts at a random arm and goes round the array, so when several
 * arms are ready each is as likely to win, and a channel that is never
 * empty cannot starve the others (a ticker's arm, say, in a loop). All
 * else as weft_select, weft_select_timeout and weft_select_poll.
 */
WEFT_API int weft_select_fair(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns);
WEFT_API int weft_select_fair_timeout(struct weft_select_arm *arms, size_t n,
				      uint64_t timeout_ns);

/*
 * Poll form for poll tasks: 0 with *index set (that arm completed, the
 * others are idle), WEFT_PENDING (every arm registered; keep `arms` in the
 * task's state and poll again with the same array when woken), or -EINVAL
 * (as above, TIMER arms allowed; NULL cx or index). A task dropped while a
 * select is pending calls weft_select_cancel from its drop function.
 */
WEFT_API int weft_select_poll(struct weft_select_arm *arms, size_t n, struct weft_cx *cx,
			      size_t *index);
WEFT_API int weft_select_fair_poll(struct weft_select_arm *arms, size_t n, struct weft_cx *cx,
				   size_t *index);
/* Deregister every arm (passing on grants, cancelling timers). No-op on
 * idle arms; NULL arms is ignored. A CHAN_SEND arm whose item a receiver
 * had already taken cannot be undone: its rc is set to 0 (the item was
 * sent; a task's drop can look), every other arm's is left as it was:
 * -EINPROGRESS, which each select call and the WEFT_SEL_* macros set in
 * every arm that has not completed (an arm whose item is still the
 * caller's). */
WEFT_API void weft_select_cancel(struct weft_select_arm *arms, size_t n);

/* ---------------------------------------------------------------- wakers */

/*
 * A waker schedules a task (or unblocks a thread). It is a plain value that
 * owns one reference; the vtable is public so other resources can make
 * their own wakers.
 */
struct weft_waker_vtable {
	void *(*clone)(void *data);      /* new reference; returns the new data */
	void (*wake)(void *data);        /* wake and release the reference */
	void (*wake_by_ref)(void *data); /* wake, keep the reference */
	void (*drop)(void *data);        /* release the reference */
};

typedef struct weft_waker {
	const struct weft_waker_vtable *vtable;
	void *data;
} weft_waker;

/* All of these may be called from any thread. */
WEFT_API weft_waker weft_waker_clone(const weft_waker *w);
WEFT_API void weft_waker_wake(weft_waker *w);          /* consumes *w */
WEFT_API void weft_waker_wake_by_ref(const weft_waker *w);
WEFT_API void weft_waker_drop(weft_waker *w);          /* consumes *w */
/* True if both wake the same task: a stored waker need not be replaced. */
WEFT_API bool weft_waker_will_wake(const weft_waker *a, const weft_waker *b);

/* ----------------------------------------------------------- poll context */

/* The current task's waker, borrowed for the duration of the poll: clone it
 * to keep it. */
WEFT_API const weft_waker *weft_cx_waker(struct weft_cx *cx);
/* Set the pointer a joiner receives; meaningful with WEFT_READY. */
WEFT_API void weft_cx_set_result(struct weft_cx *cx, void *result);
/* The running task's runtime and id. */
WEFT_API struct weft_runtime *weft_cx_runtime(struct weft_cx *cx);
WEFT_API uint64_t weft_cx_task_id(struct weft_cx *cx);

/* ------------------------------------------------------ cooperative budget */

/*
 * Each poll runs under a budget of WEFT_BUDGET resource operations (tasks
 * run from the LIFO slot share their parent's). A resource (channel, I/O)
 * calls weft_budget_poll_proceed() before doing work: WEFT_READY consumes one
 * unit; WEFT_PENDING means the budget is spent, the task has been woken to
 * run again later, and the resource must return PENDING. If the resource
 * then turns out not to be ready, weft_budget_refund() returns the unit.
 */
#define WEFT_BUDGET 128

WEFT_API enum weft_poll weft_budget_poll_proceed(struct weft_cx *cx);
WEFT_API void weft_budget_refund(struct weft_cx *cx);
WEFT_API unsigned weft_budget_remaining(struct weft_cx *cx);

/* -------------------------------------------------------------- allocator */

/*
 * Where weft gets its memory. alloc(size, align, ctx) returns memory aligned
 * to `align` (a power of two, at most 128) or NULL; free(p, ctx) releases
 * it. Process-wide; set it once, before creating any runtime or sync
 * object. NULL restores malloc/free. Errors: -EINVAL (a NULL function),
 * -EBUSY (a runtime exists: from the start of its weft_runtime_create,
 * whose workers' start hooks may run before it returns, to the end of its
 * weft_runtime_destroy). Fiber stacks (and their descriptors) come
 * from mmap, not from here, and weft_signal_notify's process-wide table
 * of channels from malloc (it outlives runtimes and allocators). Changing it later is not safe even with no
 * runtime alive: memory taken from the old allocator is given back to the
 * new one - sync objects and metrics snapshots still alive, and the
 * per-thread parker of any thread that blocked in a weft call (freed when
 * that thread exits).
 */
struct weft_allocator {
	void *(*alloc)(size_t size, size_t align, void *ctx);
	void (*free)(void *p, void *ctx);
	void *ctx;
};
WEFT_API int weft_set_allocator(const struct weft_allocator *a);

/* ----------------------------------------------------------------- errors */

/*
 * Text for a value a weft call returns: 0, WEFT_PENDING, or a negative
 * errno. The text fits every call that returns the code (the meaning for
 * one call follows as "e.g."). A positive value other than WEFT_PENDING is
 * taken as an errno value; EPERM equals WEFT_PENDING, so pass -EPERM. The
 * string is static; never NULL. The WEFT_EAI_* resolver codes of weft/io.h
 * have texts of their own.
 */
WEFT_API const char *weft_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WEFT_H */
