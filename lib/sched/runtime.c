/*
 * runtime.c - options, create, spawn, block_on, shutdown, destroy.
 *
 * Shutdown protocol:
 *  0. set `closed` and close the owned-task list (no spawn or registration
 *     is accepted after this), cancel every listed fiber (its blocking
 *     calls now return -ECANCELED, an idle one is queued) and wait, until
 *     the caller's deadline, for the workers to run them to their end;
 *  1. set `shutdown`, close the inject queue (no task can enter a queue for
 *     good after this), wake every worker;
 *  2. join the workers (bounded by the caller's timeout; a worker stuck in a
 *     poll keeps the runtime in this step and the call can be repeated);
 *  3. with no worker left, cancel every task still on the owned list (its
 *     drop runs, its joiner gets -ECANCELED) on the calling thread;
 *  4. drain the LIFO slots, rings and the inject queue, releasing the
 *     references the queues held.
 * A spawn that raced with step 1 either failed to bind (-ESHUTDOWN, its
 * drop ran) or was bound before and is cancelled in step 3; a task pushed
 * into the closed inject queue had its reference dropped by the pusher.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "runtime.h"

#define DEFAULT_EVENT_INTERVAL 61
#define MAX_INTERVAL 1000000u
#define MAX_PREFIX 11
#define DEFAULT_FIBER_STACK (64 * 1024)
#define MIN_FIBER_STACK WEFT_FIBER_STACK_MIN
#define MAX_FIBER_STACK WEFT_FIBER_STACK_MAX
#define DEFAULT_STALL_NS (10ull * 1000000ull)
#define MIN_STALL_NS (1000000ull)
#define MAX_STALL_NS (60ull * 1000000000ull)
/* How long a shutdown waits at least for the threads of a runtime with
 * no task alive to end (weft.h): they only wake from their parks and
 * leave, but on a loaded machine that can take a while. */
#define IDLE_EXIT_NS (1000ull * 1000000ull)

#define OPT_FIELD(f) { offsetof(struct weft_runtime_opts, f), sizeof(((struct weft_runtime_opts *)0)->f) }

/* A size an older header could have produced ends between fields (in
 * padding, or exactly at a field's end); one ending inside a field (half a
 * pointer) is refused. */
static bool sz_splits_a_field(size_t sz)
{
	static const struct { size_t off, len; } fields[] = {
		OPT_FIELD(sz), OPT_FIELD(workers), OPT_FIELD(event_interval),
		OPT_FIELD(global_queue_interval), OPT_FIELD(disable_lifo_slot), OPT_FIELD(rng_seed),
		OPT_FIELD(thread_name_prefix), OPT_FIELD(on_thread_start), OPT_FIELD(on_thread_stop),
		OPT_FIELD(hook_arg), OPT_FIELD(fiber_stack_size), OPT_FIELD(max_blocking_threads),
		OPT_FIELD(blocking_keep_alive_ns), OPT_FIELD(stall_threshold_ns), OPT_FIELD(io_driver),
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (sz > fields[i].off && sz < fields[i].off + fields[i].len)
			return true;
	return false;
}

static int read_opts(const struct weft_runtime_opts *in, struct weft_runtime_opts *o)
{
	if (in && sz_splits_a_field(in->sz)) {
		memset(o, 0, sizeof(*o));
		return -EINVAL;
	}
	int rc = weft__opts_read(o, in, sizeof(*o), offsetof(struct weft_runtime_opts, workers));
	if (rc || !in)
		return rc;
	if (o->workers < 0 || o->workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (o->event_interval > MAX_INTERVAL || o->global_queue_interval > MAX_INTERVAL)
		return -EINVAL;
	if (o->max_blocking_threads > 65536)
		return -EINVAL;
	if (o->stall_threshold_ns &&
	    (o->stall_threshold_ns < MIN_STALL_NS || o->stall_threshold_ns > MAX_STALL_NS))
		return -EINVAL;
	if (o->io_driver < WEFT_IO_DRIVER_DEFAULT || o->io_driver > WEFT_IO_DRIVER_URING)
		return -EINVAL;
	if (o->fiber_stack_size &&
	    (o->fiber_stack_size < MIN_FIBER_STACK || o->fiber_stack_size > MAX_FIBER_STACK))
		return -EINVAL;
	if (o->thread_name_prefix &&
	    (!o->thread_name_prefix[0] || strlen(o->thread_name_prefix) > MAX_PREFIX))
		return -EINVAL;
	return 0;
}

/*
 * Workers when the options say 0: WEFT_WORKERS from the environment if set
 * and not empty (as TOKIO_WORKER_THREADS and GOMAXPROCS; a value that is not a number
 * from 1 to WEFT_MAX_WORKERS fails the create with -EINVAL and says why on
 * stderr), else the CPUs this process may use (cpus.c: affinity, capped by
 * a cgroup CPU quota).
 */
static int default_workers(unsigned ncpu, unsigned *out)
{
	const char *env = getenv("WEFT_WORKERS");
	if (env && *env) {
		char *end;
		errno = 0;
		long v = strtol(env, &end, 10);
		/* digits only, as Tokio's and Go's parsers: strtol also took a
		 * leading blank or sign, so " 4" was 4 while "4 " was refused
		 * (found by a review) */
		if (errno || *end || !(*env >= '0' && *env <= '9') || v < 1 ||
		    v > WEFT_MAX_WORKERS) {
			weft__warn("weft: WEFT_WORKERS=%s: expected a number of workers from 1 to %d",
				env, WEFT_MAX_WORKERS);
			return -EINVAL;
		}
		*out = (unsigned)v;
		return 0;
	}
	*out = ncpu > WEFT_MAX_WORKERS ? WEFT_MAX_WORKERS : ncpu;
	return 0;
}

static void rt_free(struct weft_runtime *rt)
{
	pthread_mutex_destroy(&rt->threads_lock);
	pthread_cond_destroy(&rt->threads_cv);
	weft__blocking_fini(rt);
	for (unsigned i = 0; i < rt->n; i++)
		weft__fiber_pool_fini(&rt->cores[i]);
	weft__fiber_shared_pool_fini(rt);
	weft__alloc_fini(rt);
	if (rt->driver_up)
		weft__driver_fini(rt);
	weft__registry_fini(rt);
	weft__owned_fini(&rt->owned);
	weft__idle_fini(&rt->idle);
	weft__inject_fini(&rt->inject);
	pthread_mutex_destroy(&rt->shutdown_lock);
	pthread_mutex_destroy(&rt->orphans_lock);
	pthread_mutex_destroy(&rt->resize_lock);
	weft__free(rt->workers);
	weft__free(rt->cores);
	weft__free(rt);
}

/* Wait until every worker thread has counted itself out (no deadline:
 * WEFT_FOREVER). 0 or -ETIMEDOUT. */
static int wait_threads(struct weft_runtime *rt, uint64_t deadline_ns)
{
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull) };
	int rc = 0;
	pthread_mutex_lock(&rt->threads_lock);
	while (rt->live_threads && !rc) {
		if (deadline_ns == WEFT_FOREVER)
			pthread_cond_wait(&rt->threads_cv, &rt->threads_lock);
		else if (pthread_cond_timedwait(&rt->threads_cv, &rt->threads_lock, &ts) == ETIMEDOUT)
			rc = rt->live_threads ? -ETIMEDOUT : 0;
	}
	pthread_mutex_unlock(&rt->threads_lock);
	return rc;
}

/* A core's own state (the per-core parts of the task cache and the timer
 * wheel are set up by alloc.c and driver.c: at create for the first cores,
 * by weft__alloc_core_init / weft__driver_core_init for later ones). */
static void core_init(struct weft_runtime *rt, struct weft__core *c, unsigned i)
{
	memset(c, 0, sizeof(*c));
	weft__ring_init(&c->ring);
	c->index = i;
	c->gqi = GQI_START_VALUE;
	c->ewma_poll_ns = 200000.0 / GQI_START_VALUE;
	c->polls_at_unpark = WEFT__NO_UNPARK; /* its first park follows no wake */
	weft__rng_seed(&c->rng, weft__seedgen_next(&rt->seedgen));
	atomic_init(&c->sleeping, false);
	atomic_init(&c->trim_wanted, false);
	atomic_init(&c->retiring, false);
	atomic_init(&c->lifo, NULL);
	atomic_init(&c->poll_seq, 0);
	atomic_init(&c->watch, 0);
	atomic_init(&c->stalled_seq, 0);
	atomic_init(&c->stalls, 0);
	c->life = CORE_ACTIVE;
}

int weft_runtime_create(const struct weft_runtime_opts *opts, struct weft_runtime **out)
{
	struct weft_runtime_opts o;
	int rc;
	if (!out)
		return -EINVAL;
	if ((rc = read_opts(opts, &o)))
		return rc;

	unsigned ncpu = weft__available_cpus(), n = (unsigned)o.workers;
	if (!n && (rc = default_workers(ncpu, &n)))
		return rc;
	weft__fork_watch();
	/* Counted from its first allocation, not its last step: the workers
	 * run (and their start hooks with them) before create returns, and a
	 * weft_set_allocator from a hook was let through, so the runtime's
	 * memory went back to an allocator it did not come from (found by a
	 * review). Every failure below uncounts it after its frees. */
	weft__runtime_count(1);
	struct weft_runtime *rt = weft__calloc(1, sizeof(*rt));
	if (!rt) {
		weft__runtime_count(-1);
		return -ENOMEM;
	}
	rt->fork_gen = atomic_load_explicit(&weft__fork_gen, memory_order_relaxed);
	rt->opts = o;
	atomic_init(&rt->n, n);
	atomic_init(&rt->active, n);
	rt->nfirst = n;
	pthread_mutex_init(&rt->resize_lock, NULL);
	rt->event_interval = o.event_interval ? o.event_interval : DEFAULT_EVENT_INTERVAL;
	rt->fixed_gqi = o.global_queue_interval;
	rt->fiber_stack_size = o.fiber_stack_size ? o.fiber_stack_size : DEFAULT_FIBER_STACK;
	rt->stall_ns = o.stall_threshold_ns ? o.stall_threshold_ns : DEFAULT_STALL_NS;
	rt->ncpu = ncpu;
	snprintf(rt->name_prefix, sizeof(rt->name_prefix), "%s",
		 o.thread_name_prefix ? o.thread_name_prefix : "weft-worker");
	rt->opts.thread_name_prefix = NULL; /* not kept: the caller owns it */
	atomic_init(&rt->shutdown, false);
	atomic_init(&rt->closed, false);
	atomic_init(&rt->handoffs, 0);
	atomic_init(&rt->remote_schedules, 0);
	atomic_init(&rt->block_ons, 0);
	pthread_mutex_init(&rt->shutdown_lock, NULL);
	pthread_mutex_init(&rt->orphans_lock, NULL);
	rt->orphans = (struct weft__tlist)WEFT__TLIST_INIT;
	pthread_mutex_init(&rt->threads_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->threads_cv, &ca);
	pthread_condattr_destroy(&ca);
	rt->live_threads = 0;
	atomic_init(&rt->leaver, 0);
	weft__fiber_pool_init(rt, rt->fiber_stack_size);
	weft__inject_init(&rt->inject);

	/* Room for every core weft_runtime_set_workers may add: address space
	 * only until a core is made (its memory is first touched then). */
	rt->cores = weft__alloc_aligned(WEFT_MAX_WORKERS * sizeof(struct weft__core));
	rt->workers = weft__alloc_aligned(rt->n * sizeof(struct weft__worker));
	if (!rt->cores || !rt->workers || weft__idle_init(&rt->idle, rt->n) ||
	    weft__owned_init(&rt->owned, rt->n) || weft__registry_init(rt)) {
		/* partial init: free what exists */
		weft__free(rt->idle.sleepers);
		weft__owned_fini(&rt->owned);
		weft__free(rt->registry);
		weft__free(rt->cores);
		weft__free(rt->workers);
		pthread_mutex_destroy(&rt->resize_lock);
		weft__free(rt);
		weft__runtime_count(-1);
		return -ENOMEM;
	}
	memset(rt->workers, 0, rt->n * sizeof(struct weft__worker));

	if (o.rng_seed) {
		rt->seedgen = o.rng_seed;
	} else if (getrandom(&rt->seedgen, sizeof(rt->seedgen), GRND_NONBLOCK) !=
		   sizeof(rt->seedgen)) {
		rt->seedgen = weft__now_ns() ^ (uintptr_t)rt;
	}
	for (unsigned i = 0; i < rt->n; i++)
		core_init(rt, &rt->cores[i], i);
	weft__alloc_init(rt);
	weft__blocking_init(rt);
	if ((rc = weft__driver_init(rt))) {
		rt_free(rt);
		weft__runtime_count(-1);
		return rc;
	}
	rt->driver_up = true;

	/* Before the workers start: a tracer takes runtime_create as the start
	 * of a runtime at this address (and forgets what it read from another
	 * runtime once there), so it must not come after the workers' first
	 * worker_start and parks */
	WEFT_PROBE(runtime_create, (uintptr_t)rt, (unsigned)atomic_load_explicit(&rt->n, memory_order_relaxed));
	/* n, not rt->n: a start hook may grow the runtime meanwhile
	 * (weft_runtime_set_workers), whose new cores get threads of their
	 * own; rt->workers holds the first n (found by a review: the loop
	 * wrote past it and started a second thread for a new core) */
	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *w = &rt->workers[i];
		w->rt = rt;
		w->index = i;
		atomic_init(&w->tid, 0);
		atomic_init(&w->parker.state, PARK_EMPTY);
		atomic_init(&w->assign, NULL);
		w->parker.evfd = rt->driver.evfd;
		rc = weft__worker_start(rt, w);
		if (rc) {
			/* The workers started so far (their start hooks may have
			 * spawned tasks, or grown the runtime) stop as at any
			 * shutdown, which ends every task: freed with the tasks
			 * in its queues, none of them ended (found by a review).
			 * It fires runtime_shutdown, which pairs runtime_create. */
			rt->nfirst = i;
			(void)weft_runtime_shutdown(rt, WEFT_FOREVER);
			rt_free(rt);
			weft__runtime_count(-1);
			return rc;
		}
	}
	weft__probe_register(rt, true);
	*out = rt;
	return 0;
}

/* ------------------------------------------------------ elastic workers */

/*
 * Shrinking flags the cores from `workers` up (highest first) and wakes
 * them if they sleep; each one's holder retires it at the top of its loop
 * (worker.c, retire), moving its queued tasks to the inject queue, and
 * becomes a spare thread (which exits after blocking_keep_alive_ns).
 * Growing undoes a retirement not yet carried out, or gives a retired core
 * (or a new one, made here) to an idle spare or a new thread. Calls are
 * serialised by resize_lock; no worker stops for them.
 */
int weft_runtime_set_workers(struct weft_runtime *rt, int workers)
{
	if (!rt || workers < 1 || workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	pthread_mutex_lock(&rt->resize_lock);
	if (atomic_load_explicit(&rt->closed, memory_order_acquire)) {
		pthread_mutex_unlock(&rt->resize_lock);
		return -ESHUTDOWN;
	}
	unsigned want = (unsigned)workers;
	unsigned cur = atomic_load_explicit(&rt->active, memory_order_relaxed);
	int rc = 0;
	for (unsigned i = cur; i-- > want;) {
		struct weft__core *c = &rt->cores[i];
		c->life = CORE_RETIRING;
		/* seq_cst, before the idle lock: see worker.c, park */
		atomic_store_explicit(&c->retiring, true, memory_order_seq_cst);
		weft__idle_wake_core(rt, c);
	}
	for (unsigned i = cur; i < want; i++) {
		struct weft__core *c = &rt->cores[i];
		if (i >= rt->n) {
			core_init(rt, c, i);
			weft__alloc_core_init(c);
			weft__driver_core_init(c);
			c->life = CORE_RETIRED;
			/* release: a reader that sees the count sees the core */
			atomic_store_explicit(&rt->n, i + 1, memory_order_release);
			weft__probe_update(rt);
		}
		if (c->life == CORE_RETIRING) {
			/* its holder has not retired it yet: it just stays */
			atomic_store_explicit(&c->retiring, false, memory_order_relaxed);
			c->life = CORE_ACTIVE;
			continue;
		}
		weft__idle_add_core(rt, c);
		if ((rc = weft__core_start_thread(rt, c))) {
			weft__idle_remove_core(rt, c);
			want = i;
			break;
		}
		c->life = CORE_ACTIVE;
	}
	atomic_store_explicit(&rt->active, want, memory_order_release);
	WEFT_PROBE(runtime_resize, cur, want, (uintptr_t)rt);
	pthread_mutex_unlock(&rt->resize_lock);
	return rc;
}

/* --------------------------------------------------------------- spawning */

int weft_spawn_poll(struct weft_runtime *rt, weft_poll_fn poll, void *state,
		    weft_drop_fn drop, struct weft_task **out)
{
	weft__cancelled_spend(); /* a cancelled fiber's spawn loop yields */
	return weft__spawn_poll_at(rt, poll, state, drop, out, __builtin_return_address(0), 0);
}

int weft__spawn_poll_at(struct weft_runtime *rt, weft_poll_fn poll, void *state,
			weft_drop_fn drop, struct weft_task **out, void *site, unsigned flags)
{
	if (!rt || !poll) {
		if (drop)
			drop(state);
		return -EINVAL;
	}
	if (WEFT__FORKED(rt)) {
		if (drop)
			drop(state);
		return -ECHILD;
	}
	if (atomic_load_explicit(&rt->closed, memory_order_relaxed)) {
		if (drop)
			drop(state);
		return -ESHUTDOWN;
	}
	struct weft_task *t = weft__task_alloc(rt);
	if (!t) {
		if (drop)
			drop(state);
		return -ENOMEM;
	}
	weft__task_init(t, rt, poll, state, drop, out != NULL);
	__atomic_store_n(&t->spawn_site, site, __ATOMIC_RELAXED); /* task.c, weft__task_init */
	t->unwind = flags & WEFT__SPAWN_UNWIND;
	/* Not bound to the owned list until a poll leaves it pending
	 * (owned.c). A close after the check above: the task is cancelled
	 * at its first poll, or by the final drain of the queues. */
	weft__owned_count_spawn(rt);
	if (out)
		*out = t;
	weft__schedule(rt, t, false);
	return 0;
}

/* ---------------------------------------------------------------- block_on */

/* This thread's weft_block_on calls, innermost first: a destroy from
 * inside fn is -EDEADLK (the call uses rt after fn), one from another
 * thread -EBUSY (rt->block_ons counts every thread's). `task`: the task
 * whose code called it (from a weft_block_in_place fn or a blocking job),
 * for weft_join's self-join check - fn is still that task's code, and a
 * join of its own handle there waited forever (found by a review). */
struct bo_frame {
	struct weft_runtime *rt;
	struct bo_frame *prev;
	struct weft_task *task;
};
static _Thread_local struct bo_frame *bo_frames;

struct weft_task *weft__block_on_task(void)
{
	return bo_frames ? bo_frames->task : NULL;
}

static unsigned own_block_ons(const struct weft_runtime *rt)
{
	unsigned n = 0;
	for (const struct bo_frame *f = bo_frames; f; f = f->prev)
		n += f->rt == rt;
	return n;
}

int weft_block_on(struct weft_runtime *rt, void *(*fn)(void *), void *arg, void **result)
{
	if (!rt || !fn)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	struct weft__ctx *prev = weft__ctx();
	if (prev && prev->core)
		return -EDEADLK; /* it would stall the core (not so inside block_in_place) */
	/* Counted in before the look at `closed` (seq_cst both, against
	 * shutdown's store of `closed` and destroy's load of the count): a
	 * destroy either sees this call or this call sees the shutdown. fn
	 * may still be waiting after the shutdown (a select on an interval
	 * arm, whose timer is in rt's wheel): destroy freed rt under it. */
	atomic_fetch_add_explicit(&rt->block_ons, 1, memory_order_seq_cst);
	/* closed, not shutdown: refused from the start of a shutdown, as
	 * spawns and set_workers are (fn could do nothing there) */
	if (atomic_load_explicit(&rt->closed, memory_order_seq_cst)) {
		atomic_fetch_sub_explicit(&rt->block_ons, 1, memory_order_release);
		return -ESHUTDOWN;
	}
	/* fn is still the code of whatever called this: a fiber's
	 * block_in_place fn (its waits end with -ECANCELED once that fiber
	 * is cancelled, wait.c; its fiber-local values) or a discarded
	 * fiber's dtor. Without them a weft_join in fn parked until the
	 * joined task ended, and the aborted fiber could not unwind (found
	 * by a review). */
	struct weft__ctx ctx = {
		.rt = rt,
		.home = prev ? prev->home : NULL,
		.fiber_in_place = prev ? prev->fiber_in_place : NULL,
		.discarding = prev && prev->discarding,
	};
	struct weft_cx *pcx = !prev ? NULL : prev->fiber ? prev->fiber->cx : prev->cx;
	struct bo_frame frame = { rt, bo_frames,
				  pcx && pcx->task ? pcx->task : weft__block_on_task() };
	bo_frames = &frame;
	weft__ctx_set(&ctx);
	void *r = fn(arg);
	weft__ctx_set(prev);
	bo_frames = frame.prev;
	/* release: destroy's acquire load sees everything fn did to rt */
	atomic_fetch_sub_explicit(&rt->block_ons, 1, memory_order_release);
	if (result)
		*result = r;
	return 0;
}

/* ---------------------------------------------------------------- shutdown */

/* Take the shutdown lock by deadline_mono (CLOCK_MONOTONIC ns): 0, or
 * nonzero when time ran out. */
static int shutdown_lock_until(struct weft_runtime *rt, uint64_t deadline_mono)
{
#if defined(__SANITIZE_THREAD__)
	/* GCC 12's ThreadSanitizer has no interceptor for
	 * pthread_mutex_clocklock: it missed the lock and reported the
	 * unlock (found by a review). Poll with trylock, which it sees. */
	while (pthread_mutex_trylock(&rt->shutdown_lock)) {
		if (weft__now_ns() >= deadline_mono)
			return ETIMEDOUT;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return 0;
#else
	struct timespec ts = { (time_t)(deadline_mono / 1000000000ull),
			       (long)(deadline_mono % 1000000000ull) };
	return pthread_mutex_clocklock(&rt->shutdown_lock, CLOCK_MONOTONIC, &ts);
#endif
}

/* Also from the pthread key (or tss) destructors of one of rt's threads,
 * which run once its loop has ended and it has no context: rt's shutdown
 * joins the thread. From a first worker's destructor, the shutdown waited
 * for the lock the shutdown that was joining this thread held, time limit
 * or not: a hang (found by a review); a shutdown that got the lock joined
 * its own thread. */
static bool on_worker_of(struct weft_runtime *rt)
{
	struct weft__ctx *c = weft__ctx();
	if (weft__thread_of == rt)
		return true;
	return c && (((c->worker || c->pool) && c->rt == rt) || c->home == rt);
}

/* This thread's shutdowns that hold their runtime's shutdown lock,
 * innermost first. What a shutdown runs on its own thread - a task's drop,
 * a discarded fiber's dtors - may call shutdown or destroy of the same
 * runtime: -EDEADLK, as from a worker, where that code runs otherwise. It
 * waited for the lock its own thread held: until its limit, or for good
 * (found by a review). */
struct sd_frame {
	struct weft_runtime *rt;
	struct sd_frame *prev;
};
static _Thread_local struct sd_frame *sd_frames;

static bool in_own_shutdown(const struct weft_runtime *rt)
{
	for (const struct sd_frame *f = sd_frames; f; f = f->prev)
		if (f->rt == rt)
			return true;
	return false;
}

bool weft__in_own_shutdown(const struct weft_runtime *rt) { return in_own_shutdown(rt); }

bool weft__in_a_shutdown(void) { return sd_frames != NULL; }

/* Leave a shutdown that holds the lock, returning rc. */
static int shutdown_leave(struct weft_runtime *rt, struct sd_frame *frame, int rc)
{
	sd_frames = frame->prev;
	pthread_mutex_unlock(&rt->shutdown_lock);
	return rc;
}

/*
 * A scheduling call that finds the inject queue closed (shutdown) used to
 * end the refused tasks in place (weft__task_drop_queued: drop functions,
 * joiners woken). Its caller may hold a lock those need - a token's while
 * it wakes its waiters, a join set's while it aborts its members, or the
 * user's own: a review found both library cases hanging. They wait here
 * for drain_queues (after the workers stopped) or destroy.
 */
static void drain_orphans(struct weft_runtime *rt, bool final)
{
	pthread_mutex_lock(&rt->orphans_lock);
	struct weft__tlist l = rt->orphans;
	rt->orphans = (struct weft__tlist)WEFT__TLIST_INIT;
	if (final)
		rt->orphans_drained = true;
	pthread_mutex_unlock(&rt->orphans_lock);
	struct weft_task *t;
	while ((t = weft__tlist_pop(&l)))
		weft__task_drop_queued(t);
}

/* Once the shutdown's drain has run (the workers are gone, every pending
 * task was ended), a refused task is ended at once again: only a thread
 * outside the runtime can still schedule one - a spawn racing the end of
 * the shutdown, holding no lock of the library's, or a stale wake of a
 * finished task (no drop to run) - and a spawn that returned 0 has had
 * its drop run by the time the shutdown and the spawn have both returned. */
void weft__orphan(struct weft_runtime *rt, struct weft__tlist *l)
{
	pthread_mutex_lock(&rt->orphans_lock);
	weft__tlist_append(&rt->orphans, l);
	bool now = rt->orphans_drained;
	pthread_mutex_unlock(&rt->orphans_lock);
	if (now)
		drain_orphans(rt, false);
}

static void drain_queues(struct weft_runtime *rt)
{
	struct weft_task *t;
	drain_orphans(rt, false);
	for (unsigned i = 0; i < rt->n; i++) {
		struct weft__core *c = &rt->cores[i];
		if ((t = atomic_exchange_explicit(&c->lifo, NULL, memory_order_acquire)))
			weft__task_drop_queued(t);
		while ((t = weft__ring_pop_owner(&c->ring)))
			weft__task_drop_queued(t);
		while ((t = weft__tlist_pop(&c->deferred)))
			weft__task_drop_queued(t);
	}
	struct weft__tlist b = WEFT__TLIST_INIT;
	while (weft__inject_pop_batch(&rt->inject, 256, &b))
		while ((t = weft__tlist_pop(&b)))
			weft__task_drop_queued(t);
}

/* Step 0, under a shard lock (the list's reference keeps t alive): ask a
 * fiber to unwind; an idle one is queued for a worker. */
static void cancel_fiber(struct weft_task *t)
{
	if (t->unwind)
		weft__task_cancel(t);
}

/* Step 0: wait for the cancelled fibers to return, until the deadline.
 * Polled with a growing sleep: fibers ending decrement per-core counters
 * that nothing could wait on. 0 or -ETIMEDOUT. */
static int wait_fibers(struct weft_runtime *rt, uint64_t deadline_ns)
{
	unsigned us = 20;
	while (weft__fiber_live(rt) > 0) {
		uint64_t now = weft__now_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		uint64_t left_us = deadline_ns == WEFT_FOREVER ? us : (deadline_ns - now) / 1000 + 1;
		struct timespec ts = { 0, (long)(left_us < us ? left_us : us) * 1000 };
		nanosleep(&ts, NULL);
		if (us < 1000)
			us *= 2;
	}
	return 0;
}

/* Join a thread that has counted itself out, by deadline_ns: 0, or
 * -ETIMEDOUT while it still runs (its pthread key destructors, which may
 * take any time; a later call joins it). These joins ignored the limit:
 * a destructor that took a second held a shutdown limited to 100 ms for
 * that second (found by a review). Without a limit a plain join; with
 * one, pthread_tryjoin_np and a growing sleep, as wait_fibers (the
 * thread is normally gone within microseconds; ThreadSanitizer has no
 * interceptor for pthread_clockjoin_np). */
static int join_until(pthread_t th, uint64_t deadline_ns)
{
	if (deadline_ns == WEFT_FOREVER)
		return -pthread_join(th, NULL);
	unsigned us = 20;
	while (pthread_tryjoin_np(th, NULL) == EBUSY) {
		uint64_t now = weft__now_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		uint64_t left_us = (deadline_ns - now) / 1000 + 1;
		struct timespec ts = { 0, (long)(left_us < us ? left_us : us) * 1000 };
		nanosleep(&ts, NULL);
		if (us < 1000)
			us *= 2;
	}
	return 0;
}

int weft_runtime_shutdown(struct weft_runtime *rt, uint64_t timeout_ns)
{
	if (!rt)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	if (on_worker_of(rt) || in_own_shutdown(rt))
		return -EDEADLK;
	/* The deadline counts from the call, and covers the wait for a
	 * concurrent shutdown (one without a limit, say) to let go of the
	 * lock: that wait used to ignore timeout_ns. */
	uint64_t now_mono = weft__now_ns();
	uint64_t deadline_mono = timeout_ns == WEFT_FOREVER || timeout_ns >= WEFT_FOREVER - now_mono
					 ? WEFT_FOREVER : now_mono + timeout_ns;
	if (deadline_mono == WEFT_FOREVER) {
		pthread_mutex_lock(&rt->shutdown_lock);
	} else {
		if (shutdown_lock_until(rt, deadline_mono))
			return -ETIMEDOUT;
	}
	struct sd_frame frame = { rt, sd_frames };
	sd_frames = &frame;
	if (rt->shut_down)
		return shutdown_leave(rt, &frame, 0);
	if (!rt->closing) {
		rt->closing = true;
		WEFT_PROBE(runtime_shutdown, (uintptr_t)rt);
		/* seq_cst: pairs with io.c's check before a registration.
		 * Under resize_lock: a grow that passed set_workers' check
		 * has counted its thread in before wait_threads below looks
		 * (without the lock, a thread started after that look ran
		 * on the freed runtime after destroy; found by a review) */
		pthread_mutex_lock(&rt->resize_lock);
		atomic_store_explicit(&rt->closed, true, memory_order_seq_cst);
		pthread_mutex_unlock(&rt->resize_lock);
		weft__owned_close(&rt->owned);
		weft__owned_each(&rt->owned, cancel_fiber);
		/* threads blocked in I/O (a fiber's block_in_place fn among
		 * them, which both waits below wait for) get -ESHUTDOWN */
		weft__io_stop_waiters(rt);
	}
	if (!rt->stopping) {
		/* Out of time or not, the workers stop now: a fiber still
		 * unwinding is discarded by the sweep below if suspended, and
		 * keeps its worker (-ETIMEDOUT) while it runs. */
		(void)wait_fibers(rt, deadline_mono);
		/* Nothing alive (closed: nothing can be spawned any more):
		 * there is no work to wait for, only the threads' own exit,
		 * which no limit can make shorter. A 0 limit returned
		 * -ETIMEDOUT for a runtime that had never run a task, where
		 * Tokio's shutdown_timeout(ZERO) just stops it (found by a
		 * review). Stop hooks and key destructors may still hold a
		 * thread past the grace: -ETIMEDOUT, as before. */
		if (weft__owned_alive(rt) == 0 && weft__fiber_live(rt) <= 0) {
			uint64_t floor = weft__now_ns() + IDLE_EXIT_NS;
			if (deadline_mono < floor)
				deadline_mono = floor;
		}
		rt->stopping = true;
		atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
		weft__inject_close(&rt->inject);
		for (unsigned i = 0; i < rt->nfirst; i++)
			weft__parker_unpark(&rt->workers[i].parker);
		for (unsigned i = 0; i < rt->n; i++)
			weft__registry_unpark(rt, i); /* the core's current thread */
		weft__spares_wake_all(rt);
	}
	/* Every worker thread, including those started or retired by
	 * block_in_place, counts itself out as its last act. */
	if (wait_threads(rt, deadline_mono))
		return shutdown_leave(rt, &frame, -ETIMEDOUT);
	for (unsigned i = 0; i < rt->nfirst; i++) {
		/* counted out already: what is left is the thread's exit */
		if (!rt->workers[i].joined) {
			if (join_until(rt->workers[i].thread, deadline_mono) == -ETIMEDOUT)
				return shutdown_leave(rt, &frame, -ETIMEDOUT);
			rt->workers[i].joined = true;
		}
	}
	/* No driver pass will come: registrations fail from here
	 * (-ESHUTDOWN) and their waiters wake, a blocking-pool job waiting in
	 * weft_read among them, which would otherwise hold up the wait for
	 * the pool below for good. */
	weft__io_shutdown(rt);
	/* End the waiting tasks now, before the wait for the pool: a job
	 * blocked in weft_join (or a join set's join_next) on one of them
	 * waits for what only this sweep ends, and held the wait below up
	 * until its timeout, destroy for good (found by a review). No worker
	 * runs any more; a job the pool runs is RUNNING and passed over, and
	 * swept below once the pool is gone if it is still listed then. */
	struct weft_task *t;
	while ((t = weft__owned_claim_idle(&rt->owned)))
		weft__task_end_claimed(t);
	if (weft__blocking_shutdown(rt, deadline_mono))
		return shutdown_leave(rt, &frame, -ETIMEDOUT);
	/* Every spare and pool thread has counted itself out: the last to
	 * leave is here, and joins the one before it (worker.c,
	 * weft__thread_leave), so its end is theirs. */
	uintptr_t last = atomic_load_explicit(&rt->leaver, memory_order_seq_cst);
	if (last) {
		pthread_t th;
		memcpy(&th, &last, sizeof(th));
		if (join_until(th, deadline_mono) == -ETIMEDOUT)
			return shutdown_leave(rt, &frame, -ETIMEDOUT);
		atomic_store_explicit(&rt->leaver, 0, memory_order_relaxed);
	}
	while ((t = weft__owned_first(&rt->owned)))
		weft__task_shutdown(t);
	drain_queues(rt);
	drain_orphans(rt, true); /* from here refused tasks end at once */
	weft__blocking_drain(rt);
	rt->shut_down = true;
	return shutdown_leave(rt, &frame, 0);
}

int weft_runtime_destroy(struct weft_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD; /* not freed: its locks may be held forever here */
	if (on_worker_of(rt))
		return -EDEADLK;
	/* from inside this thread's own weft_block_on(rt): that call still
	 * uses rt when fn returns (its count below) */
	if (own_block_ons(rt))
		return -EDEADLK;
	int rc = weft_runtime_shutdown(rt, WEFT_FOREVER);
	if (rc)
		return rc;
	/* a weft_block_on fn still running on another thread (after the
	 * shutdown: no new one starts) */
	if (atomic_load_explicit(&rt->block_ons, memory_order_seq_cst))
		return -EBUSY;
	/* refused by the closed inject queue after the shutdown's drain (a
	 * thread outside the runtime waking a task): ended here */
	drain_orphans(rt, false);
	if (weft__alloc_in_use(rt))
		return -EBUSY;
	/*
	 * A thread without a core may still be in weft__schedule after its
	 * task was queued, ran and was joined (a foreign wake by value, a
	 * spawn): wait for it to leave (a few instructions and a futex wake
	 * at most). Read after the count of task memory: if that count saw a
	 * free made by such a thread (its last reference, dropped inside the
	 * call: the inject queue was closed), the increment that preceded the
	 * free is visible too; acquire pairs with the release decrement.
	 */
	while (atomic_load_explicit(&rt->remote_schedules, memory_order_acquire))
		sched_yield();
	weft__probe_register(rt, false);
	rt_free(rt);
	weft__runtime_count(-1);
	return 0;
}
