/*
 * blocking.c - the blocking pool (weft_spawn_blocking) and core hand-off
 * (weft_block_in_place) through spare threads.
 *
 * Pool: a FIFO of jobs under one mutex; threads are created on demand up to
 * max_blocking_threads, wait on a condition variable when idle and exit
 * after blocking_keep_alive_ns without work. A job is an ordinary task
 * (same state word, join handle, owned list); a pool thread "polls" it
 * once, which runs fn to completion. Abort before the job starts cancels
 * it (weft__blocking_abort takes it out of the queue); a running job
 * cannot be interrupted. Shutdown closes the pool and waits, bounded by
 * its timeout, until the count of threads reaches zero; a thread touches
 * nothing of the runtime after it has unlocked the pool for the last
 * time. Pool threads are joinable: the next thread to leave joins each,
 * the shutdown the last (worker.c, weft__thread_leave).
 *
 * Hand-off: weft_block_in_place on a worker W holding core C moves C's LIFO
 * task and deferred yields to C's ring, takes an idle spare S off the
 * spares stack (under the pool's lock: O(1)), stores C in S->assign and
 * unparks S - one futex wake, no thread creation, no grace period. W then
 * runs fn holding no core (for a fiber, outside the fiber's context, so fn
 * stays on W): weft's blocking calls in fn park W like any thread outside
 * the runtime. S takes C with an exchange on its `assign` and drives C's
 * worker loop with C's queues as they are. When fn returns, W tries to take
 * C back with a CAS on S->assign: if S has not taken it yet, W holds C
 * again and puts S back on the stack (a short fn costs the futex wake and
 * S's wake-up, and nothing moves); otherwise S holds C, and W, once the
 * task's poll returns without a core, becomes a spare itself.
 *
 * Spares: worker threads beyond one per core. There is one spare made per
 * block_in_place running at once, at most: a call that finds the stack
 * empty starts a thread (counted in `extra`, which with the pool's own
 * threads stays within max_blocking_threads); at the cap, or if the system
 * refuses a thread, fn runs holding the core as a plain blocking call
 * (counted: block_in_place_inline); an idle pool thread at the cap is
 * asked to leave first, its room taken for the spare. An idle spare parks
 * on its parker and exits after blocking_keep_alive_ns (or at shutdown),
 * unless a caller has just taken it off the stack. Every spare's struct
 * stays on `all` until destroy (the registry relies on workers never being
 * freed early).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define DEFAULT_MAX_BLOCKING 512
#define DEFAULT_KEEP_ALIVE_NS (10ull * 1000000000ull)

/* `drop` (may be NULL) is called with arg when fn never ran: the job was
 * cancelled while queued (weft_abort, or shutdown's sweep). */
struct job { void *(*fn)(void *); void *arg; void (*drop)(void *); bool ran; };

static enum weft_poll job_poll(void *state, struct weft_cx *cx)
{
	struct job *j = state;
	j->ran = true;
	weft_cx_set_result(cx, j->fn(j->arg));
	return WEFT_READY;
}

static void job_drop(void *state)
{
	struct job *j = state;
	if (!j->ran && j->drop)
		j->drop(j->arg);
	weft__free(j);
}

int weft__blocking_init(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->work, &ca);
	pthread_cond_init(&b->gone, &ca);
	pthread_condattr_destroy(&ca);
	b->queue = (struct weft__tlist)WEFT__TLIST_INIT;
	b->threads = b->idle = 0;
	b->aborting = 0;
	b->exited = 0;
	b->closed = false;
	atomic_init(&b->starved, false);
	b->extra = 0;
	b->spares = b->all = NULL;
	b->spares_made = b->no_spare = 0;
	b->evict_pool = 0;
	atomic_init(&b->reclaims, 0);
	b->max = rt->opts.max_blocking_threads ? rt->opts.max_blocking_threads : DEFAULT_MAX_BLOCKING;
	b->keep_alive_ns = rt->opts.blocking_keep_alive_ns ? rt->opts.blocking_keep_alive_ns
							   : DEFAULT_KEEP_ALIVE_NS;
	return 0;
}

void weft__blocking_fini(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	while (b->all) { /* every spare thread has exited (live_threads) */
		struct weft__worker *w = b->all;
		b->all = w->next_all;
		weft__free(w);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->work);
	pthread_cond_destroy(&b->gone);
}

static void *pool_thread(void *arg)
{
	struct weft_runtime *rt = arg;
	weft__runtime_thread = true; /* fork.c */
	weft__thread_of = rt;      /* runtime.c, on_worker_of */
	/* A thread inherits its creator's name, often a worker's: name it for
	 * what it is, so tools (and tests) can tell pool threads apart. */
	char name[16];
	snprintf(name, sizeof(name), "%.11s-blk", rt->name_prefix);
	pthread_setname_np(pthread_self(), name);
	struct weft__blocking *b = &rt->blocking;
	unsigned budget = WEFT_BUDGET;
	/* A job runs in rt's context: weft_runtime_current() names rt, and
	 * weft_runtime_shutdown/destroy from it is -EDEADLK (it would wait
	 * for this thread) */
	struct weft__ctx ctx = { .rt = rt, .pool = true, .home = rt };
	weft__ctx_set(&ctx);
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->queue.n && !b->closed) {
			if (b->evict_pool) { /* a spare takes this thread's room */
				b->evict_pool--;
				b->exited++;
				goto out;
			}
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + b->keep_alive_ns % 1000000000ull;
			ts.tv_sec += (time_t)(b->keep_alive_ns / 1000000000ull + ns / 1000000000ull);
			ts.tv_nsec = (long)(ns % 1000000000ull);
			b->idle++;
			int rc = pthread_cond_timedwait(&b->work, &b->lock, &ts);
			b->idle--;
			if (rc == ETIMEDOUT && !b->queue.n) {
				/* A request to leave that came as the keep-alive
				 * ran out (spare_take) is served by this exit: its
				 * caller gets the room all the same. Left pending,
				 * it sent the next pool thread to go idle away at
				 * once, and kept block_in_place from asking an idle
				 * thread for its room meanwhile (found by a
				 * review). */
				if (b->evict_pool)
					b->evict_pool--;
				b->exited++;
				goto out;
			}
		}
		if (b->closed)
			goto out;
		struct weft_task *t = weft__tlist_pop(&b->queue);
		pthread_mutex_unlock(&b->lock);
		struct weft_cx cx = { .budget = &budget };
		budget = WEFT_BUDGET;
		/* The job in progress, for weft_join's self-join check (task.c,
		 * joins_itself): without it a job joining its own handle waited
		 * forever, or, with a timeout, took the real joiner's place and
		 * left it waiting forever (found by a review). */
		ctx.cx = &cx;
		weft__task_run(t, &cx);
		ctx.cx = NULL;
		pthread_mutex_lock(&b->lock);
	}
out:
	weft__ctx_set(NULL);
	uintptr_t prev = weft__thread_leave(rt); /* joinable: see there */
	b->threads--;
	pthread_cond_broadcast(&b->gone);
	pthread_mutex_unlock(&b->lock); /* last touch of rt */
	weft__thread_join(prev);
	return NULL;
}

/* Start one more pool thread (under b->lock). If the system refuses, the
 * job stays queued: a running thread takes it, or the next spawn or a
 * worker's maintenance (when no thread exists at all, and a spare holds
 * no room it needs) tries again. */
static void start_thread_locked(struct weft_runtime *rt, struct weft__blocking *b)
{
	pthread_t th;
	/* joinable: the next thread to leave, or the shutdown, joins it */
	if (pthread_create(&th, NULL, pool_thread, rt) == 0)
		b->threads++;
	atomic_store_explicit(&b->starved, b->threads == 0, memory_order_relaxed);
}

int weft_spawn_blocking(struct weft_runtime *rt, void *(*fn)(void *), void *arg,
			struct weft_task **out)
{
	weft__cancelled_spend(); /* a cancelled fiber's spawn loop yields */
	return weft__spawn_blocking_drop(rt, fn, arg, NULL, out);
}

int weft__spawn_blocking_drop(struct weft_runtime *rt, void *(*fn)(void *), void *arg,
			      void (*drop)(void *), struct weft_task **out)
{
	if (!rt || !fn)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed))
		return -ESHUTDOWN;
	struct job *j = weft__malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->drop = drop;
	j->ran = false;
	struct weft_task *t = weft__task_alloc(rt);
	if (!t) {
		weft__free(j);
		return -ENOMEM;
	}
	weft__task_init(t, rt, job_poll, j, job_drop, out != NULL);
	/* Bound at spawn: it runs on a pool thread, where no worker's queue
	 * or poll would find it at shutdown. */
	if (weft__owned_bind(&rt->owned, t, NULL) < 0) {
		/* A free slot must not look like a live handle (task.c,
		 * handle_consumed). */
		atomic_store_explicit(&t->state, 0, memory_order_relaxed);
		weft__task_free(t);
		weft__free(j);
		return -ESHUTDOWN;
	}
	weft__owned_count_spawn(rt);
	if (out)
		*out = t;
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	if (b->closed) {
		pthread_mutex_unlock(&b->lock);
		weft__task_unref(t); /* the shutdown sweep cancels it */
		return 0;
	}
	weft__tlist_push(&b->queue, t);
	struct weft__worker *evict = NULL;
	if (b->idle > b->queue.n - 1) {
		pthread_cond_signal(&b->work);
	} else if (b->threads + b->extra < b->max) { /* spares count too */
		start_thread_locked(rt, b);
	} else if ((evict = b->spares)) {
		/* At the cap with an idle spare holding a thread's room: ask
		 * it to leave; its way out starts a pool thread for the job.
		 * (The job used to wait for the spare's keep-alive, 10 s by
		 * default: found by a review.) */
		b->spares = evict->next_spare;
		evict->listed = false;
		atomic_store_explicit(&evict->evicted, true, memory_order_relaxed);
	}
	pthread_mutex_unlock(&b->lock);
	if (evict)
		weft__parker_unpark(&evict->parker);
	return 0;
}

void weft__blocking_retry(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	if (!atomic_load_explicit(&b->starved, memory_order_relaxed))
		return;
	pthread_mutex_lock(&b->lock);
	/* Within max_blocking_threads: spares started since the failure
	 * may hold the room (a block_in_place); the one that leaves starts
	 * the thread then (weft__spare_wait). This started one beyond the
	 * cap (found by a review). */
	if (!b->closed && b->queue.n && !b->threads && b->extra < b->max)
		start_thread_locked(rt, b);
	else
		atomic_store_explicit(&b->starved, false, memory_order_relaxed);
	pthread_mutex_unlock(&b->lock);
}

/* An aborted job still queued is cancelled now, as the pool thread that
 * took it would: its run may be far off (every thread busy with jobs that
 * do not end), and its joiner waited for it, its drop too (found by a
 * review). Out of the queue under the lock, so no pool thread has it. */
void weft__blocking_abort(struct weft_task *t)
{
	/* any task may come here, a fiber whose first poll is swapping its
	 * poll function meanwhile (fiber.c, a relaxed atomic store): read
	 * likewise. A job's is job_poll for good, no other task's ever is. */
	if (__atomic_load_n(&t->poll, __ATOMIC_RELAXED) != job_poll)
		return;
	struct weft__blocking *b = &t->rt->blocking;
	struct weft_task *prev = NULL, *q;
	pthread_mutex_lock(&b->lock);
	for (q = b->queue.head; q && q != t; q = q->qnext)
		prev = q;
	if (q) {
		if (prev)
			prev->qnext = t->qnext;
		else
			b->queue.head = t->qnext;
		if (b->queue.tail == t)
			b->queue.tail = prev;
		t->qnext = NULL;
		b->queue.n--;
		/* Counted like a pool thread until its run is done: the run
		 * claims the job (RUNNING) and unlists it only when complete,
		 * and shutdown's last sweep, which may come meanwhile from
		 * another thread, takes a job listed and running for a
		 * broken invariant ("listed but running at shutdown": an
		 * abort from a plain thread racing a shutdown, found by a
		 * review). blocking_shutdown waits for it. A reference of our
		 * own keeps the task's slot in use until the count is back
		 * (after that rt is touched no more): a joiner that saw it
		 * complete could otherwise destroy rt under our unlock. */
		b->aborting++;
		weft__task_ref(t);
	}
	pthread_mutex_unlock(&b->lock);
	if (q) {
		unsigned budget = WEFT_BUDGET;
		struct weft_cx cx = { .budget = &budget };
		weft__task_run(t, &cx); /* CANCELLED: fn is not called */
		pthread_mutex_lock(&b->lock);
		if (!--b->aborting)
			pthread_cond_broadcast(&b->gone);
		pthread_mutex_unlock(&b->lock);
		weft__task_unref(t);
	}
}

/* Shutdown: refuse new jobs, let running ones finish, and the aborts
 * cancelling a job on their own threads (until the deadline). */
int weft__blocking_shutdown(struct weft_runtime *rt, uint64_t deadline_ns)
{
	struct weft__blocking *b = &rt->blocking;
	/* the condition variables run on CLOCK_MONOTONIC, like deadline_ns */
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull) };
	pthread_mutex_lock(&b->lock);
	b->closed = true;
	pthread_cond_broadcast(&b->work);
	while (b->threads || b->aborting) {
		if (deadline_ns == WEFT_FOREVER) {
			pthread_cond_wait(&b->gone, &b->lock);
		} else if (pthread_cond_timedwait(&b->gone, &b->lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&b->lock);
			return -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* After the sweep: release the queue's references to cancelled jobs. */
void weft__blocking_drain(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	struct weft_task *t;
	pthread_mutex_lock(&b->lock);
	struct weft__tlist q = b->queue;
	b->queue = (struct weft__tlist)WEFT__TLIST_INIT;
	pthread_mutex_unlock(&b->lock);
	while ((t = weft__tlist_pop(&q)))
		weft__task_unref(t);
}

void weft__blocking_metrics(struct weft_runtime *rt, struct weft_metrics *m)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	m->blocking_threads = b->threads;
	m->blocking_idle_threads = b->idle;
	m->blocking_queue_depth = b->queue.n;
	m->blocking_threads_exited = b->exited;
	m->block_in_place_threads = b->extra;
	m->block_in_place_threads_started = b->spares_made;
	m->block_in_place_inline = b->no_spare;
	pthread_mutex_unlock(&b->lock);
	m->block_in_place_count = atomic_load_explicit(&rt->handoffs, memory_order_relaxed);
	m->block_in_place_reclaimed = atomic_load_explicit(&b->reclaims, memory_order_relaxed);
}

/* --------------------------------------------------------------- spares */

/* Now + keep-alive, saturated: a keep-alive of WEFT_FOREVER wrapped into
 * the past, and each idle spare left at once (a thread per
 * block_in_place instead of none: found by a review). */
static uint64_t keep_alive_deadline(const struct weft__blocking *b)
{
	uint64_t now = weft__now_ns();
	return b->keep_alive_ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + b->keep_alive_ns;
}

/* Under b->lock: queued jobs wait for a thread's room, which only a
 * spare's exit can make (no idle pool thread takes them, and the pool and
 * the spares are at max_blocking_threads). */
static bool jobs_want_room_locked(const struct weft__blocking *b)
{
	return !b->closed && b->queue.n > b->idle && b->threads + b->extra >= b->max;
}

static void spare_unlist_locked(struct weft__blocking *b, struct weft__worker *w)
{
	for (struct weft__worker **pp = &b->spares; *pp; pp = &(*pp)->next_spare) {
		if (*pp == w) {
			*pp = w->next_spare;
			break;
		}
	}
	w->listed = false;
}

bool weft__spare_wait(struct weft_runtime *rt, struct weft__worker *w, struct weft__core **out)
{
	struct weft__blocking *b = &rt->blocking;
	/* Back on the stack, unless a core is waiting for us already (a new
	 * spare, started with its first assignment), or jobs wait for the
	 * room we hold: then leave at once (the way out starts a pool thread
	 * for them). A job spawned while every spare was busy used to wait
	 * for this one's keep-alive, 10 s by default (found by a review). */
	pthread_mutex_lock(&b->lock);
	if (!atomic_load_explicit(&w->assign, memory_order_relaxed) && !w->listed) {
		if (jobs_want_room_locked(b)) {
			atomic_store_explicit(&w->evicted, true, memory_order_relaxed);
		} else {
			w->next_spare = b->spares;
			b->spares = w;
			w->listed = true;
		}
	}
	pthread_mutex_unlock(&b->lock);
	uint64_t deadline = keep_alive_deadline(b);
	for (;;) {
		/* acquire: pairs with the caller's release store, so the core's
		 * state as it left it is ours. */
		struct weft__core *c = atomic_exchange_explicit(&w->assign, NULL, memory_order_acquire);
		if (c) {
			*out = c;
			return true;
		}
		bool down = atomic_load_explicit(&rt->shutdown, memory_order_acquire);
		if (!down && !atomic_load_explicit(&w->evicted, memory_order_relaxed) &&
		    weft__parker_park_until(&w->parker, deadline) &&
		    !atomic_load_explicit(&w->evicted, memory_order_relaxed))
			continue;
		pthread_mutex_lock(&b->lock);
		bool evicted = atomic_load_explicit(&w->evicted, memory_order_relaxed);
		atomic_store_explicit(&w->evicted, false, memory_order_relaxed);
		/* Idle for keep_alive, evicted, or shutdown: leave, unless a
		 * caller took us off the stack and is about to assign (or has
		 * assigned). */
		if (!down && !evicted &&
		    (!w->listed || atomic_load_explicit(&w->assign, memory_order_relaxed))) {
			pthread_mutex_unlock(&b->lock);
			deadline = keep_alive_deadline(b);
			continue;
		}
		if (w->listed)
			spare_unlist_locked(b, w);
		if ((c = atomic_exchange_explicit(&w->assign, NULL, memory_order_acquire))) {
			/* Shutdown with a core handed to us: take it, so it is
			 * held (the loop sees the flag and stops at once). */
			pthread_mutex_unlock(&b->lock);
			*out = c;
			return true;
		}
		/* Threads = cores + spares: any spare leaving is one less (a
		 * core's first thread may be the spare now, its core with a
		 * thread started as a spare). */
		b->extra--;
		/* Room for the pool again: jobs may be waiting for it. Still
		 * none (a shrink by more than the cap left more spares than
		 * max_blocking_threads): ask the next idle spare to leave too,
		 * or the jobs waited for its keep-alive (found by a review). */
		struct weft__worker *next = NULL;
		if (!b->closed && b->queue.n > b->idle && b->threads + b->extra < b->max) {
			start_thread_locked(rt, b);
		} else if (jobs_want_room_locked(b) && (next = b->spares)) {
			b->spares = next->next_spare;
			next->listed = false;
			atomic_store_explicit(&next->evicted, true, memory_order_relaxed);
		}
		w->exited = true; /* a caller's take-back must not list us again */
		pthread_mutex_unlock(&b->lock);
		/* next's struct lives until destroy, which waits for us */
		if (next)
			weft__parker_unpark(&next->parker);
		return false;
	}
}

void weft__spares_wake_all(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	for (struct weft__worker *w = b->all; w; w = w->next_all)
		weft__parker_unpark(&w->parker);
	pthread_mutex_unlock(&b->lock);
}

/* Under b->lock: give c to an idle spare (popped, S->assign set) and
 * return it; the caller unlocks, then wakes it. NULL if none is idle. */
static struct weft__worker *spare_pop_locked(struct weft__blocking *b, struct weft__core *c)
{
	struct weft__worker *s = b->spares;
	if (s) {
		b->spares = s->next_spare;
		s->listed = false;
		/* release: S's exchange sees c as the giving thread left it. */
		atomic_store_explicit(&s->assign, c, memory_order_release);
	}
	return s;
}

/* Under b->lock: a new (joinable) thread that starts holding c (on the list
 * of extra workers, freed at destroy); NULL with *rc set if none. fresh:
 * c is a core weft_runtime_set_workers added, not one block_in_place hands
 * over (whose caller may take it back while the thread is in its start
 * hook, and run on it). */
static struct weft__worker *thread_for_core_locked(struct weft_runtime *rt,
						   struct weft__blocking *b,
						   struct weft__core *c, bool fresh, int *rc)
{
	struct weft__worker *s = weft__worker_new(rt, c->index);
	if (!s) {
		*rc = -ENOMEM;
		return NULL;
	}
	s->fresh_core = fresh; /* thread start orders it */
	atomic_store_explicit(&s->assign, c, memory_order_relaxed); /* thread start orders it */
	s->next_all = b->all;
	b->all = s;
	if ((*rc = weft__worker_start(rt, s))) {
		atomic_store_explicit(&s->assign, NULL, memory_order_relaxed);
		s->exited = true; /* freed at destroy with the others */
		return NULL;
	}
	return s;
}

/* A spare for core c, given c (S->assign) and woken; NULL when none can be
 * had (at the cap, or no thread). */
static struct weft__worker *spare_take(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	struct weft__worker *s = spare_pop_locked(b, c);
	if (s) {
		pthread_mutex_unlock(&b->lock);
		weft__parker_unpark(&s->parker); /* one FUTEX_WAKE, if S sleeps */
		return s;
	}
	/* At the cap with an idle pool thread holding a room: ask it to
	 * leave, and wait (briefly: it only has to wake) for its room. fn ran
	 * holding the core while the thread waited out its keep-alive, 10 s
	 * by default - the mirror of the idle spare that a blocking job asks
	 * to leave (weft__spawn_blocking_drop). A job queued meanwhile may
	 * take the thread instead; then fn runs holding the core, as before. */
	if (!b->closed && b->threads + b->extra >= b->max &&
	    b->idle > b->queue.n + b->evict_pool) {
		b->evict_pool++;
		pthread_cond_signal(&b->work);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		/* for room, not for this request: two callers and one idle
		 * thread each waited out the limit, the second's request
		 * keeping the first waiting (found by a review) */
		while (!b->closed && b->threads + b->extra >= b->max &&
		       pthread_cond_timedwait(&b->gone, &b->lock, &ts) != ETIMEDOUT)
			;
		if (b->threads + b->extra >= b->max && b->evict_pool)
			b->evict_pool--; /* no room came: a request withdrawn */
	}
	/* Cold path: a new thread, within max_blocking_threads. */
	int rc;
	if (b->closed || b->threads + b->extra >= b->max ||
	    !(s = thread_for_core_locked(rt, b, c, false, &rc))) {
		b->no_spare++;
		pthread_mutex_unlock(&b->lock);
		return NULL;
	}
	b->extra++;
	b->spares_made++;
	pthread_mutex_unlock(&b->lock);
	return s;
}

int weft__core_start_thread(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	struct weft__worker *s = spare_pop_locked(b, c);
	if (s) {
		b->extra--; /* a core's thread now, not a spare */
		pthread_mutex_unlock(&b->lock);
		weft__parker_unpark(&s->parker);
		return 0;
	}
	/* Not bounded by max_blocking_threads: cores are not spares. */
	int rc = 0;
	thread_for_core_locked(rt, b, c, true, &rc);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void weft__spare_count_retired(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	pthread_mutex_lock(&b->lock);
	b->extra++; /* threads = cores + spares */
	pthread_mutex_unlock(&b->lock);
}

/* After fn: take c back from s if s has not taken it (true). */
static bool spare_give_back(struct weft_runtime *rt, struct weft__worker *s, struct weft__core *c)
{
	struct weft__core *exp = c;
	struct weft__blocking *b = &rt->blocking;
	/* The CAS under the lock: a new spare (started with c, the cold path)
	 * that runs spare_wait's entry after a CAS made outside it lists
	 * itself (assign NULL, not listed); another caller could then pop it
	 * and give it its core before our relist below, which found it
	 * unlisted and listed it again with that core pending: the next pop
	 * overwrote the assignment (a core left with no thread) and the
	 * spare count went below 0. Under the lock, its entry comes wholly
	 * before the CAS (it saw c and did not list itself) or after our
	 * relist (it sees itself listed). */
	pthread_mutex_lock(&b->lock);
	/* acquire: whatever s wrote before it would have taken c is ours
	 * (it wrote nothing to c: it never had it). */
	if (!atomic_compare_exchange_strong_explicit(&s->assign, &exp, NULL, memory_order_acquire,
						     memory_order_relaxed)) {
		pthread_mutex_unlock(&b->lock);
		return false;
	}
	bool evict = false;
	if (!s->exited && !s->listed) {
		if (jobs_want_room_locked(b)) {
			/* jobs queued while s held the room: let it go (its way
			 * out starts a pool thread), as spare_wait does */
			atomic_store_explicit(&s->evicted, true, memory_order_relaxed);
			evict = true;
		} else {
			s->next_spare = b->spares;
			b->spares = s;
			s->listed = true;
		}
	}
	pthread_mutex_unlock(&b->lock);
	if (evict)
		weft__parker_unpark(&s->parker);
	atomic_fetch_add_explicit(&b->reclaims, 1, memory_order_relaxed);
	return true;
}

/* ------------------------------------------------------------- hand-off */

int weft_block_in_place(void *(*fn)(void *), void *arg, void **result)
{
	if (!fn)
		return -EINVAL;
	/* A cancelled fiber that calls this in a loop (fn returning at once)
	 * never suspended: it held its core, and shutdown said -ETIMEDOUT
	 * for ever. Before the context is read: the fiber may resume on
	 * another thread. */
	weft__cancelled_spend();
	struct weft__ctx *ctx = weft__ctx();
	/* A child forked by a task: its thread holds its copy of a core of
	 * the parent's runtime, and a hand-off gave that core to a spare -
	 * none in the child, so a new thread was started there, which ran
	 * the parent's tasks queued on the core in the child (found by a
	 * review). fn runs here; nothing of the runtime is touched. */
	if (!ctx || !ctx->worker || !ctx->core || __builtin_expect(weft__forked_task, 0)) {
		void *r = fn(arg);
		if (result)
			*result = r;
		return 0;
	}
	struct weft_runtime *rt = ctx->rt;
	struct weft__core *c = ctx->core;
	/* No hand-off during shutdown: the workers are stopping, and a spare
	 * given the core would stop at once. fn still runs as below, holding
	 * no core: it ran with the core (and a fiber's context) in place,
	 * and a weft_block_on or a sleep in it said -EDEADLK, contrary to
	 * weft.h (found by a review). */
	bool down = atomic_load_explicit(&rt->shutdown, memory_order_relaxed);
	/* Leave nothing on the core that only this thread could run. The
	 * running task is put back whenever the core stays or comes back:
	 * with it cleared the stall watch skipped the core, and a task woken
	 * into its LIFO slot by an inline fn waited for all of fn (found by
	 * a review: 300 ms against the threshold's 10). */
	uintptr_t running = __atomic_load_n(&c->c.cur_task, __ATOMIC_RELAXED);
	if (!down)
		weft__core_release_local(rt, c);
	struct weft__fiber *fiber = ctx->fiber;
	/* Give the core up before anyone can take it. */
	ctx->core = NULL;
	if (ctx->cx)
		ctx->cx->core = NULL;
	struct weft__worker *s = down ? NULL : spare_take(rt, c);
	if (!s) {
		/* No spare: keep the core and block it, as a plain blocking
		 * call. fn still runs as on the hand-off path, as a thread
		 * holding no core (its spawns and wakes go to the inject queue,
		 * where any worker takes them) and outside the fiber: weft's
		 * blocking calls in it park this thread. With the core in the
		 * context they failed (-EDEADLK) from a poll task, and a
		 * fiber's suspended the fiber, which could go on on another
		 * thread inside fn. The running task stays published, so the
		 * stall watch counts the stall. */
		__atomic_store_n(&c->c.cur_task, running, __ATOMIC_RELEASE); /* report_stall */
		ctx->fiber = NULL;
		ctx->fiber_in_place = fiber;
		void *r = fn(arg);
		ctx->fiber = fiber;
		ctx->fiber_in_place = NULL;
		ctx->core = c;
		if (ctx->cx)
			ctx->cx->core = c;
		if (result)
			*result = r;
		return 0;
	}
	atomic_fetch_add_explicit(&rt->handoffs, 1, memory_order_relaxed);
	WEFT_PROBE(block_in_place, c->index,
		   atomic_load_explicit(&ctx->worker->tid, memory_order_relaxed), (uintptr_t)rt);
	/* fn is ordinary blocking code on this thread, which holds no core
	 * now: weft's blocking calls in it park the thread (a fiber's would
	 * suspend it and move fn elsewhere). */
	ctx->fiber = NULL;
	ctx->fiber_in_place = fiber; /* for the overflow report */
	void *r = fn(arg);
	ctx->fiber = fiber; /* fn never suspended: same thread, same ctx */
	ctx->fiber_in_place = NULL;
	if (spare_give_back(rt, s, c)) {
		weft__core_hold(rt, ctx->worker, c);
		ctx->core = c;
		if (ctx->cx)
			ctx->cx->core = c;
		__atomic_store_n(&c->c.cur_task, running, __ATOMIC_RELEASE); /* report_stall */
	}
	if (result)
		*result = r;
	return 0;
}
