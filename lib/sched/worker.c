/*
 * worker.c - the worker loop and task scheduling.
 *
 * A core is driven by one thread at a time: its first thread, until a
 * block_in_place hands it to a spare (blocking.c); a thread that lost its
 * core waits as a spare for another one. The loop:
 *   tick; every event_interval ticks: maintenance (publish metrics, retune
 *   the global queue interval); every global_queue_interval ticks: the
 *   inject queue first (fairness to remote spawns); otherwise the LIFO
 *   slot, the ring, then a batch from the inject queue; nothing local:
 *   search (steal half of a random victim's ring, then inject; the steal
 *   policy of steal.h leaves short tasks their own worker is serving
 *   where they are); nothing anywhere: park (idle.c decides who is woken).
 *
 * A task woken or spawned by the running task goes to the LIFO slot and
 * runs next, at most MAX_LIFO_POLLS in a row and only while the budget of
 * the first poll lasts, so two tasks waking each other cannot starve the
 * ring. The LIFO slot is not stealable; a task displaced from it goes to
 * the ring, where it is. Only when the core has been in one poll for
 * the stall threshold may another worker take the slot's task (watch_cores),
 * and the tasks that yielded before that poll (rescue_deferred).
 *
 * Thread-local context is read only through weft__ctx(), a noinline
 * function with a compiler barrier: once fibers exist, a task may resume on
 * another thread, and a cached TLS address would point at the old one.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define MAX_LIFO_POLLS 3
#define TARGET_GQI_NS 50000.0 /* time between inject-first checks (Tokio: 200 us) */
#define GQI_MIN 2
#define GQI_MAX 127
#define EWMA_ALPHA 0.1
#define SEARCH_ROUNDS 2
#define SHORT_NOTIFY_GAP_NS 1000000u
#define MAINT_PROBE_PARK_NS 100000000ull /* a park fires `maintenance` at most this often */

static WEFT__TLS struct weft__ctx *tls_ctx;

__attribute__((noinline)) struct weft__ctx *weft__ctx(void)
{
	struct weft__ctx *c = tls_ctx;
	__asm__ volatile("" ::: "memory");
	return c;
}

__attribute__((noinline)) void weft__ctx_set(struct weft__ctx *c)
{
	__asm__ volatile("" ::: "memory");
	tls_ctx = c;
}

struct weft_runtime *weft_runtime_current(void)
{
	struct weft__ctx *c = weft__ctx();
	return c ? c->rt : NULL;
}

WEFT__TLS uint64_t weft__clock_seen;
WEFT__TLS struct weft_runtime *weft__thread_of;

uint64_t weft__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	weft__clock_seen = now;
	return now;
}

/* ------------------------------------------------------------- scheduling */

/* Push to this core's ring; an overflow batch goes to the inject queue. */
static void push_local(struct weft_runtime *rt, struct weft__core *c, struct weft_task *t)
{
	struct weft__tlist over = WEFT__TLIST_INIT;
	if (!weft__ring_push_owner(&c->ring, t, &over))
		return;
	if (over.n > 1)
		c->c.overflow_count++;
	WEFT_PROBE(overflow, c->index, over.n, (uintptr_t)rt);
	if (weft__inject_push_batch(&rt->inject, &over) < 0)
		weft__orphan(rt, &over); /* closed by shutdown: it ends them */
}

/*
 * The owner's side of rescue_deferred: cur_task was just cleared (the
 * poll returned, or goes on without this core), and `deferred` is about
 * to be touched. A watcher that claimed the list before it could see that
 * store may be moving the list now: wait for it (microseconds, once per
 * stalled poll). The watcher's membarrier orders the store before this
 * load, so the owner pays no fence: a compiler barrier and one load of a
 * line it writes at every poll. Acquire: what the watcher did to the list
 * happens before the owner's next touch.
 */
static void yield_claim_wait(struct weft__core *c)
{
	while (atomic_load_explicit(&c->yield_claim, memory_order_acquire))
		weft__cpu_relax();
}

static inline void yield_claim_check(struct weft__core *c)
{
	atomic_signal_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&c->yield_claim, memory_order_acquire) != 0, 0))
		yield_claim_wait(c);
}

void weft__core_release_local(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft_task *t;
	__atomic_store_n(&c->c.cur_task, 0, __ATOMIC_RELAXED); /* the poll goes on without this core */
	yield_claim_check(c);
	if ((t = atomic_exchange_explicit(&c->lifo, NULL, memory_order_acquire)))
		push_local(rt, c, t);
	while ((t = weft__tlist_pop(&c->deferred)))
		push_local(rt, c, t);
	weft__idle_notify(rt);
}

struct weft__worker *weft__worker_new(struct weft_runtime *rt, unsigned core)
{
	struct weft__worker *w = weft__alloc_aligned(sizeof(*w));
	if (!w)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->rt = rt;
	w->index = core;
	w->extra = true;
	atomic_init(&w->tid, 0);
	atomic_init(&w->parker.state, PARK_EMPTY);
	atomic_init(&w->assign, NULL);
	w->parker.evfd = rt->driver.evfd;
	return w;
}

int weft__worker_start(struct weft_runtime *rt, struct weft__worker *w)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_mutex_lock(&rt->threads_lock);
	rt->live_threads++;
	pthread_mutex_unlock(&rt->threads_lock);
	int rc = pthread_create(&w->thread, &at, weft__worker_main, w);
	pthread_attr_destroy(&at);
	if (rc) {
		pthread_mutex_lock(&rt->threads_lock);
		rt->live_threads--;
		pthread_cond_broadcast(&rt->threads_cv);
		pthread_mutex_unlock(&rt->threads_lock);
	}
	return -rc;
}

/* Latency samples (probes.h, WEFT_LAT_ON): the clock when t was scheduled,
 * read back by its next poll (lat_poll_start). */
static __attribute__((noinline)) void lat_stamp(struct weft_task *t)
{
	t->wake_ns = weft__lat_stamp(weft__now_ns());
}

/* schedules from threads without a core, sampled per thread */
static WEFT__TLS uint32_t remote_lat_tick;

/*
 * A push to this core's own ring while this core runs: whether to skip
 * the notify because the ring holds short tasks this core serves (what a
 * thief would decline, steal.h) and it already woke a peer for such a ring
 * in the last SHORT_NOTIFY_GAP_NS. The woken peer would look, decline and
 * park again; a receiver waking its senders did that ~23 times a
 * millisecond (fanout_mpsc, each wake an eventfd write on this core). The
 * pusher serves its ring before it can park, and the driver's watch finds
 * a ring stuck behind a long poll (docs/ARCHITECTURE.md).
 */
static bool short_ring_notified(struct weft__core *c)
{
	if (weft__steal_ring_worth(weft__ring_len(&c->ring), (uint64_t)c->ewma_poll_ns))
		return false;
	/* the clock of the core's last maintenance or batch (no clock read
	 * here: a vDSO read per wake was 12% of fanout_mpsc) */
	uint64_t now = c->batch_start_ns;
	if (now - c->short_notify_ns < SHORT_NOTIFY_GAP_NS)
		return true;
	c->short_notify_ns = now;
	return false;
}

static void notify_for_ring(struct weft_runtime *rt, struct weft__core *c)
{
	if (weft__idle_would_notify(rt) && !short_ring_notified(c))
		weft__idle_notify(rt);
}

void weft__schedule(struct weft_runtime *rt, struct weft_task *t, bool is_yield)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->rt == rt && ctx->core) {
		struct weft__core *c = ctx->core;
		c->c.local_schedule_count++;
		/* t's header is in cache: the waker just read its state word */
		weft__task_prefetch_state(t);
		/* latency sample (tracer attached only): one schedule in
		 * WEFT_PROBE_LAT_SAMPLE stamps the task - by count, not by task
		 * id, so no task is stamped on every wake; the holder of the
		 * Notified reference stamps, the poller reads it after taking
		 * the task */
		if (WEFT_LAT_ON() && !(c->c.local_schedule_count & (WEFT_PROBE_LAT_SAMPLE - 1)))
			lat_stamp(t);
		if (is_yield) {
			/* Deferred until local work runs out (or maintenance), so a
			 * yielding task cannot keep the ring non-empty forever and
			 * starve the inject queue. Only after its poll returned
			 * (task.c): the poll is over for the stall watch, and a
			 * watcher rescuing the list is waited for. */
			__atomic_store_n(&c->c.cur_task, 0, __ATOMIC_RELAXED);
			yield_claim_check(c);
			weft__tlist_push(&c->deferred, t);
			return;
		}
		if (rt->opts.disable_lifo_slot) {
			push_local(rt, c, t);
		} else {
			/* acq_rel: a rescuer's acquire exchange sees the task's
			 * contents; exchanges on both sides give it to one. */
			struct weft_task *prev = atomic_exchange_explicit(&c->lifo, t,
									  memory_order_acq_rel);
			/* t runs next on this core - unless the poll in progress
			 * lasts; then only the driver's watch can see it. seq_cst:
			 * see weft__driver_park. */
			uint8_t u = atomic_load_explicit(&rt->driver.unwatched, memory_order_seq_cst);
			if (__builtin_expect(u != 0, 0))
				weft__driver_unwatched(rt, u);
			if (!prev)
				return; /* nobody to wake */
			push_local(rt, c, prev);
			notify_for_ring(rt, c);
			return;
		}
		weft__idle_notify(rt);
		return;
	}
	/*
	 * No core: the inject queue. Once the task is in it, it can run and
	 * complete, its joiner return and the runtime be destroyed while this
	 * thread still notifies. The count keeps destroy from freeing rt until
	 * we are out (Tokio keeps the runtime alive across the same call
	 * through the scheduler handle's reference). rt is live at the
	 * increment: the Notified reference we hold keeps destroy at -EBUSY.
	 * seq_cst increment, release decrement: see weft_runtime_destroy.
	 */
	if (WEFT_LAT_ON() && !(++remote_lat_tick & (WEFT_PROBE_LAT_SAMPLE - 1)))
		lat_stamp(t);
	atomic_fetch_add_explicit(&rt->remote_schedules, 1, memory_order_seq_cst);
	if (weft__inject_push(&rt->inject, t, true) < 0) {
		struct weft__tlist one = WEFT__TLIST_INIT;
		weft__tlist_push(&one, t);
		weft__orphan(rt, &one); /* closed by shutdown: it ends it */
	} else
		weft__idle_notify(rt);
	atomic_fetch_sub_explicit(&rt->remote_schedules, 1, memory_order_release); /* last touch of rt */
}

/* --------------------------------------------------------------- metrics */

void weft__core_publish(struct weft__core *c)
{
#define PUB(f) atomic_store_explicit(&c->pub.f, c->c.f, memory_order_relaxed)
	PUB(park_count); PUB(noop_count); PUB(steal_count); PUB(steal_operations);
	PUB(poll_count); PUB(busy_ns); PUB(local_schedule_count); PUB(overflow_count);
	PUB(budget_forced_yields);
#undef PUB
	atomic_store_explicit(&c->pub.mean_poll_ns, (uint64_t)c->ewma_poll_ns,
			      memory_order_relaxed);
}

static void batch_start(struct weft__core *c)
{
	c->batch_start_ns = weft__now_ns();
	c->batch_polls = 0;
}

static void batch_end_at(struct weft__core *c, uint64_t now)
{
	uint64_t elapsed = now - c->batch_start_ns;
	c->c.busy_ns += elapsed;
	if (c->batch_polls) {
		double mean = (double)elapsed / (double)c->batch_polls;
		/* weight of this batch: 1 - (1 - alpha)^polls */
		double keep = 1.0;
		for (uint64_t i = 0; i < c->batch_polls && keep > 1e-6; i++)
			keep *= 1.0 - EWMA_ALPHA;
		c->ewma_poll_ns = (1.0 - keep) * mean + keep * c->ewma_poll_ns;
	}
	c->batch_start_ns = now;
	c->batch_polls = 0;
}

static void batch_end(struct weft__core *c)
{
	batch_end_at(c, weft__now_ns());
}

static void retune(struct weft_runtime *rt, struct weft__core *c)
{
	if (rt->fixed_gqi)
		return;
	double v = TARGET_GQI_NS / (c->ewma_poll_ns > 1.0 ? c->ewma_poll_ns : 1.0);
	uint32_t n = v < GQI_MIN ? GQI_MIN : v > GQI_MAX ? GQI_MAX : (uint32_t)v;
	if (n > c->gqi + 2 || n + 2 < c->gqi)
		c->gqi = n;
}

/* Move yielded tasks to the ring, where peers can steal them. */
static bool flush_deferred(struct weft_runtime *rt, struct weft__core *c)
{
	if (!c->deferred.n)
		return false;
	struct weft_task *t;
	while ((t = weft__tlist_pop(&c->deferred)))
		push_local(rt, c, t);
	notify_for_ring(rt, c);
	return true;
}

/*
 * Stall watch and LIFO rescue. A core stalls when one poll lasts (CPU work,
 * a blocking call): the task in its LIFO slot, which runs right after the
 * poll and is not stealable (stealing it would cost the locality it exists
 * for), would wait for all of it while other workers idle. So other
 * workers watch the cores: when a search finds nothing, at maintenance, and
 * while they sleep through the driver's sleeper, which wakes every
 * WEFT_WATCH_MS while any worker runs (driver.c). Each core publishes
 * poll_seq (its poll count, a relaxed store at every poll's start) and
 * cur_task; there is no clock read per poll. A watcher that sees a core in
 * a poll (cur_task set) records (poll_seq, now) in the core's `watch` word
 * the first time it sees that poll_seq; a later look that finds the same
 * poll_seq, rt->stall_ns or more after, has found a stall. The sample is
 * one word, so it is always a (sequence, time) pair that was seen
 * together, whoever wrote it last; the poll's start is known to the watch
 * period (the stall is reported at least that long). Each stall is counted
 * once (a CAS of stalled_seq to that poll_seq; metric `stalls`, probe
 * `stall` with the task's id and poll function), and the LIFO slot's task
 * is taken (an exchange: owner or rescuer gets it, never both).
 *
 * The driver never waits on a stalled core: only a parked worker sleeps in
 * it, and a worker leaving the driver to run tasks leaves it free for the
 * next one that parks (driver.c, the idle relay in idle.c).
 */
#define WATCH_UNIT_SHIFT 20  /* time unit of `watch`: 2^20 ns, ~1 ms */

/* Count and report vc's stall of poll `seq` (once per poll). */
static bool report_stall(struct weft_runtime *rt, struct weft__core *vc, uint64_t seq,
			 uint32_t age)
{
	uint64_t old = atomic_load_explicit(&vc->stalled_seq, memory_order_relaxed);
	if (old == seq || !atomic_compare_exchange_strong_explicit(&vc->stalled_seq, &old, seq,
								   memory_order_relaxed,
								   memory_order_relaxed))
		return false; /* counted already */
	atomic_fetch_add_explicit(&vc->stalls, 1, memory_order_relaxed);
	/* The task is RUNNING while poll_seq still equals seq, so its memory
	 * is not reused under us; re-checked after the reads. */
	uint64_t id = 0;
	uintptr_t fn = 0, site = 0, user_fn = 0;
	/* acquire: pairs with poll_task's release store (and block_in_place's
	 * when it puts the task back): t's fields as its poller saw them */
	struct weft_task *t = (struct weft_task *)__atomic_load_n(&vc->c.cur_task, __ATOMIC_ACQUIRE);
	/* looked at before the reads too: a task whose poll ended may be
	 * freed, its slab trimmed (the reads are then skipped but for a
	 * window of a few instructions) */
	if (t && atomic_load_explicit(&vc->poll_seq, memory_order_acquire) == seq) {
		id = __atomic_load_n(&t->id, __ATOMIC_RELAXED);
		fn = (uintptr_t)__atomic_load_n(&t->poll, __ATOMIC_RELAXED);
		site = (uintptr_t)__atomic_load_n(&t->spawn_site, __ATOMIC_RELAXED);
		user_fn = weft__fiber_user_fn(t, fn);
		if (atomic_load_explicit(&vc->poll_seq, memory_order_acquire) != seq)
			id = 0, fn = 0, site = 0, user_fn = 0; /* the poll ended meanwhile */
	}
	uint64_t age_ns = (uint64_t)age << WATCH_UNIT_SHIFT;
	/* For readers outside (schedtop): the latest stall and the count,
	 * under stall_seq (odd while they change; the acquire keeps the
	 * field stores after it, the release before the even value: a
	 * reader checking the count alone, or a copy between two even
	 * reads, was torn by a second stall's report: found by a review).
	 * Every stall, tracer or not: once per stalled poll. */
	__atomic_fetch_add(&vc->c.stall_seq, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&vc->c.stall_task_id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&vc->c.stall_fn, user_fn, __ATOMIC_RELAXED);
	__atomic_store_n(&vc->c.stall_site, site, __ATOMIC_RELAXED);
	__atomic_store_n(&vc->c.stall_age_ns, age_ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&vc->c.stall_count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&vc->c.stall_seq, 1, __ATOMIC_RELEASE);
	/* poll_fn: a fiber's own fn, as in the registry, not weft's
	 * fiber_poll that every fiber's task polls (a tracer got the same
	 * address for every fiber's stall) */
	WEFT_PROBE(stall, vc->index, id, user_fn ? user_fn : fn, age_ns, (uintptr_t)rt);
	return true;
}

/*
 * Yielded tasks on a stalled core. A task that yields waits in its core's
 * `deferred` list (owner-only: no thief reaches it) until local work runs
 * out, as Tokio's deferred wakes do; a long poll next on that core held
 * it for the whole poll - 500 ms behind a 500 ms poll, where a task in
 * the ring waits a few ms for a thief (found by a review). Moving the
 * list to the ring before every poll cost the yield and spawn rows up to
 * 28% (BENCHMARKS.md, thirty-second session); a lock on it, a lock per
 * yield. Instead the watcher that counts the stall takes the list, once
 * per stalled poll, by an asymmetric Dekker handshake:
 *   watcher: claim = 1; membarrier(); still in poll seq? take the list;
 *            claim = 0
 *   owner:   cur_task = 0 (its poll returned); compiler barrier; claim?
 *            wait for 0; then touch `deferred`
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) runs a full barrier on
 * every thread of the process, so either the watcher sees the owner's
 * store (the poll is over: it leaves the list alone) or the owner sees
 * the claim (and waits). The owner pays a load per poll, no fence. The
 * list's contents were written before the stalled poll began, published
 * by cur_task's release store there, read here with acquire.
 * Without membarrier (a kernel that lacks it, a seccomp filter) nothing
 * is rescued, as before. The tasks go to the inject queue.
 */
static int membarrier_state; /* 0 not asked yet, 1 registered, -1 refused */
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
	/* Once per process, at the first stall, not at runtime create: the
	 * registration may wait for an RCU grace period. */
	long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
	__atomic_store_n(&membarrier_state, r == 0 ? 1 : -1, __ATOMIC_RELAXED);
}

static void rescue_deferred(struct weft_runtime *rt, struct weft__core *vc, uint64_t seq)
{
	pthread_once(&membarrier_once, membarrier_register);
	if (__atomic_load_n(&membarrier_state, __ATOMIC_RELAXED) != 1)
		return;
	uint32_t free_ = 0;
	if (!atomic_compare_exchange_strong_explicit(&vc->yield_claim, &free_, 1,
						     memory_order_seq_cst, memory_order_relaxed))
		return;
	struct weft__tlist got = WEFT__TLIST_INIT;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
		WEFT_CHAOS_POINT();
		/* acquire: pairs with poll_task's release store of cur_task */
		if (__atomic_load_n(&vc->c.cur_task, __ATOMIC_ACQUIRE) &&
		    atomic_load_explicit(&vc->poll_seq, memory_order_relaxed) == seq) {
			struct weft_task *t;
			while ((t = weft__tlist_pop(&vc->deferred)))
				weft__tlist_push(&got, t);
		}
	}
	atomic_store_explicit(&vc->yield_claim, 0, memory_order_release);
	if (!got.n)
		return;
	/* The inject queue, not this core's ring: a watcher in its park
	 * (listed asleep) would keep them there, and a thief declines short
	 * tasks in a ring it takes for served (steal.h). Someone is woken
	 * for the inject queue, or its backstop finds them. */
	if (weft__inject_push_batch(&rt->inject, &got) < 0)
		weft__orphan(rt, &got); /* closed by shutdown: it ends them */
	else
		weft__idle_notify(rt);
}

/* Look at the other cores (now_ns: a clock reading the caller has, or 0).
 * Returns a task taken from a stalled core's LIFO slot, or NULL. */
static struct weft_task *watch_cores(struct weft_runtime *rt, struct weft__core *self,
				     uint64_t now_ns)
{
	uint32_t now = (uint32_t)(now_ns >> WATCH_UNIT_SHIFT);
	/* Both samples are truncated to units, so `age` units mean more than
	 * age - 1 units passed: the threshold rounded up, plus one. (Rounded
	 * down it counted polls of 0.2 ms as stalls of a 1 ms threshold, and
	 * took their LIFO tasks; found by a review.) */
	uint32_t stall_units = (uint32_t)((rt->stall_ns + (1u << WATCH_UNIT_SHIFT) - 1) >>
					  WATCH_UNIT_SHIFT) + 1;
	for (unsigned v = 0; v < rt->n; v++) {
		struct weft__core *vc = &rt->cores[v];
		if (vc == self || !__atomic_load_n(&vc->c.cur_task, __ATOMIC_RELAXED))
			continue; /* not in a poll */
		if (!now_ns) {
			now_ns = weft__now_ns();
			now = (uint32_t)(now_ns >> WATCH_UNIT_SHIFT);
		}
		uint64_t seq = atomic_load_explicit(&vc->poll_seq, memory_order_relaxed);
		uint64_t seen = atomic_load_explicit(&vc->watch, memory_order_relaxed);
		if ((uint32_t)(seen >> 32) != (uint32_t)seq) {
			atomic_store_explicit(&vc->watch, (uint64_t)(uint32_t)seq << 32 | now,
					      memory_order_relaxed);
			continue;
		}
		/* Signed: the sighting may be younger than our clock reading -
		 * another watcher read its clock after us and stored first, or
		 * we were preempted since our read. Unsigned, that age wrapped
		 * to ~2^32 units: a stall counted for a poll that had just
		 * begun, "50 days" long, and its LIFO task taken (found by a
		 * review). */
		int32_t age = (int32_t)(now - (uint32_t)seen);
		if (age < (int32_t)stall_units)
			continue;
		if (report_stall(rt, vc, seq, (uint32_t)age - 1)) /* at least that many units */
			rescue_deferred(rt, vc, seq);
		if (!atomic_load_explicit(&vc->lifo, memory_order_relaxed))
			continue;
		/* acquire: pairs with the owner's acq_rel exchange that put it. */
		struct weft_task *t = atomic_exchange_explicit(&vc->lifo, NULL, memory_order_acquire);
		if (t)
			return t;
	}
	return NULL;
}

static void maintenance(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft_task *t;
	/* I/O readiness only if this core has not parked since the last
	 * maintenance: a park slept in the driver (or another thread did),
	 * which saw the readiness, less than event_interval ticks ago. The
	 * bound on how long a run of polls goes without a look at I/O is
	 * then two intervals, and one keep-alive connection's request costs
	 * read, write and the park's epoll_wait, without an epoll_wait here
	 * every 30 requests (tools/bench/syscalls.sh). Timers either way. */
	if (c->c.park_count == c->parks_at_maint)
		weft__driver_poll_nowait(rt);
	else
		weft__timers_process(rt);
	c->parks_at_maint = c->c.park_count;
	weft__blocking_retry(rt);
	weft__fiber_trim(rt, c, false);
	weft__fiber_guard_ahead(rt);
	flush_deferred(rt, c);
	uint64_t now = weft__now_ns();
	if ((t = watch_cores(rt, c, now))) {
		push_local(rt, c, t); /* queued as if spawned here: stealable */
		weft__idle_notify(rt);
	}
	batch_end_at(c, now);
	retune(rt, c);
	weft__core_publish(c);
	/* At most once per millisecond per core: each firing under a tracer
	 * is a trap, and maintenance comes every event_interval polls. */
	if (WEFT_PROBE_ENABLED(maintenance) && c->batch_start_ns - c->last_maint_probe_ns >= 1000000) {
		c->last_maint_probe_ns = c->batch_start_ns;
		WEFT_PROBE(maintenance, c->index, &c->c, weft__ring_len(&c->ring),
			   weft__inject_len(&rt->inject), (uintptr_t)rt);
	}
}

/* ------------------------------------------------------------- the loop */

static struct weft_task *inject_batch(struct weft_runtime *rt, struct weft__core *c)
{
	size_t len = weft__inject_len(&rt->inject);
	if (!len)
		return NULL;
	size_t cap = weft__ring_free_owner(&c->ring);
	if (cap > WEFT_RING_CAP / 2)
		cap = WEFT_RING_CAP / 2;
	size_t n = len / atomic_load_explicit(&rt->active, memory_order_relaxed) + 1;
	if (n > cap + 1)
		n = cap + 1;
	struct weft__tlist b = WEFT__TLIST_INIT;
	if (!weft__inject_pop_batch(&rt->inject, n, &b))
		return NULL;
	/* the batch is ours alone until it is on the ring: look ahead into
	 * it (a whole batch did better than its first 16) */
	for (struct weft_task *x = b.head; x; x = x->qnext)
		weft__fiber_prefetch_first(x);
	struct weft_task *t = weft__tlist_pop(&b);
	if (b.n) {
		weft__ring_push_batch_owner(&c->ring, &b);
		/* Between the pop and this push the batch was in neither
		 * queue: a worker parking then rescanned both, found nothing
		 * and slept - while t, our next poll, may be one that lasts,
		 * and the batch waited for the driver's watch (tests/model
		 * park.pml, model_park_broken_no_batch_notify). This notify
		 * reads the parker's decrement and wakes it (the store-
		 * buffering pair of idle.c). Not gated as notify_for_ring is:
		 * that gate assumes we serve the ring soon, which t may not
		 * let us do. A searcher relays at run_task instead. */
		if (!c->is_searching)
			weft__idle_notify(rt);
	}
	return t;
}

static struct weft_task *next_task(struct weft_runtime *rt, struct weft__core *c)
{
	struct weft_task *t;
	uint32_t gqi = rt->fixed_gqi ? rt->fixed_gqi : c->gqi;
	if (c->polls_since_global >= gqi) {
		/* Fairness to remote spawns: inject first, as a batch, so a
		 * worker whose local work never runs out still drains it. */
		c->polls_since_global = 0;
		if ((t = inject_batch(rt, c)))
			return t;
	}
	if (atomic_load_explicit(&c->lifo, memory_order_relaxed) &&
	    (t = atomic_exchange_explicit(&c->lifo, NULL, memory_order_acquire)))
		return t;
	if ((t = weft__ring_pop_owner(&c->ring))) {
		c->inject_forced = false;
		return t;
	}
	return inject_batch(rt, c);
}

/* Whether c steals from core v now (steal.h); *now: a clock reading, or
 * 0 (read when needed). */
static enum weft__steal_verdict steal_verdict(struct weft_runtime *rt, struct weft__core *c,
					      unsigned v, uint64_t *now)
{
	struct weft__core *vc = &rt->cores[v];
	uint32_t served;
	uint64_t len = weft__ring_len_served(&vc->ring, &served);
	uint64_t mean = atomic_load_explicit(&vc->pub.mean_poll_ns, memory_order_relaxed);
	return weft__steal_verdict(len, served, mean,
				   v < WEFT_PROBE_STEAL_VICTIMS ? &c->look[v] : NULL, now,
				   weft__now_ns);
}

bool weft__steal_wanted(struct weft_runtime *rt, struct weft__core *self)
{
	uint64_t now = 0;
	for (unsigned v = 0; v < rt->n; v++)
		if (v != self->index && steal_verdict(rt, self, v, &now) == WEFT__STEAL_NOW)
			return true;
	return false;
}

static struct weft_task *steal_work(struct weft_runtime *rt, struct weft__core *c)
{
	if (!c->is_searching) {
		if (!weft__idle_try_search(&rt->idle))
			return NULL;
		c->is_searching = true;
	}
	uint64_t wait_from = 0;
	for (int round = 0;; round++) {
		unsigned n = rt->n;
		unsigned start = weft__rng_below(&c->rng, n);
		uint64_t now = 0;
		bool waiting = false;
		for (unsigned i = 0; i < n; i++) {
			unsigned v = start + i < n ? start + i : start + i - n;
			if (v == c->index || weft__idle_is_parked(&rt->idle, v))
				continue; /* a parked core's ring is empty */
			enum weft__steal_verdict vd = steal_verdict(rt, c, v, &now);
			if (vd != WEFT__STEAL_NOW) {
				waiting |= vd == WEFT__STEAL_WAIT;
				continue;
			}
			unsigned got, depth;
			struct weft_task *t = weft__ring_steal(&rt->cores[v].ring, &c->ring,
							       &got, &depth);
			if (t) {
				if (v < WEFT_PROBE_STEAL_VICTIMS)
					c->look[v].since_ns = 0;
				c->c.steal_count += got;
				c->c.steal_operations++;
				/* per victim and by size, for tracers (no probe trap
				 * needed to draw the steal matrix) */
				if (v < WEFT_PROBE_STEAL_VICTIMS) {
					c->steal_from[v].ops++;
					c->steal_from[v].tasks += got;
					/* a core added since drive() set the count */
					if (v >= c->c.steal_from_n)
						c->c.steal_from_n = v + 1;
				}
				unsigned b = got > 1 ? 31u - (unsigned)__builtin_clz(got) : 0;
				c->c.steal_batch_log2[b < WEFT_PROBE_STEAL_BINS ? b : WEFT_PROBE_STEAL_BINS - 1]++;
				WEFT_PROBE(steal, c->index, v, got, depth, (uintptr_t)rt);
				return t;
			}
		}
		struct weft_task *t = inject_batch(rt, c);
		if (t)
			return t;
		if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed) ||
		    atomic_load_explicit(&c->retiring, memory_order_relaxed))
			break;
		if (round + 1 >= SEARCH_ROUNDS) {
			/* Past the usual rounds only while a decline waits to
			 * see whether its victim serves its ring, at most twice
			 * the wait: a victim that keeps serving short tasks
			 * keeps them, and this worker parks; its rescan does
			 * not count such rings as work (so it does not wake
			 * itself again at once), and the driver's watch has a
			 * sleeper look at the rings again every WEFT_WATCH_MS
			 * while any core runs (park). */
			if (!waiting)
				break;
			if (!wait_from)
				wait_from = now;
			else if (now - wait_from > 2 * WEFT__STEAL_WAIT_NS)
				break;
			c->c.steal_wait_rounds++;
		}
		/* A short pause for the workers still running to produce work
		 * (a futex wake costs far more): CPU pauses, not sched_yield,
		 * which cost a system call per failed round (spawn_many_remote_
		 * busy 0.80x, fanout_mpsc 0.90x without it). With every other
		 * worker parked nobody here will: no pause (an idle transition
		 * on a lightly loaded server). */
		if (IDLE_UNPARKED(atomic_load_explicit(&rt->idle.state, memory_order_relaxed)) > 1)
			for (int k = 0; k < 64; k++)
				weft__cpu_relax();
	}
	struct weft_task *t = watch_cores(rt, c, 0);
	if (t)
		return t;
	c->c.steal_fail_count++;
	WEFT_PROBE(steal_fail, c->index, (uintptr_t)rt);
	return NULL;
}

/* Latency samples, with a tracer attached only (probes.h): the wake delay
 * of a stamped task, and the start time of one poll in
 * WEFT_PROBE_LAT_SAMPLE (0: this poll is not timed). */
static __attribute__((noinline)) uint64_t lat_poll_start(struct weft__core *c,
							 struct weft_task *t)
{
	uint64_t now = 0;
	if (t->wake_ns) {
		now = weft__now_ns();
		weft__lat_add(c->c.wake_ns_log2, weft__lat_since(t->wake_ns, now));
		t->wake_ns = 0;
	}
	if (c->c.poll_count & (WEFT_PROBE_LAT_SAMPLE - 1))
		return 0;
	return now ? now : weft__now_ns();
}

/* One poll of t on c: count it, publish what runs (poll_seq for the LIFO
 * rescue; cur_task for schedtop's long-poll lint: one plain store on a
 * line the owner writes anyway, no clock read, nothing read from t - an
 * earlier version that also copied t's poll function and spawn site here
 * made yield_many bimodal, half its runs 2x slower) and run it. t may be
 * gone when this returns; so may the core (block_in_place), which then
 * cleared cur_task itself. */
static inline void poll_task(struct weft__ctx *ctx, struct weft__core *c, struct weft_task *t,
			     struct weft_cx *cx)
{
	c->c.poll_count++;
	c->batch_polls++;
	c->polls_since_global++;
	atomic_store_explicit(&c->poll_seq, c->c.poll_count, memory_order_relaxed);
	/* release (a plain mov on x86): pairs with report_stall's acquire
	 * load, which then reads t's fields - written by whoever allocated
	 * and spawned it, before this thread took it from a queue. Relaxed,
	 * nothing ordered those reads after them (an aarch64 watcher could
	 * read the slot's old contents; TSan reported the first stall of a
	 * task a worker allocated from a fresh slab: found by a review). */
	__atomic_store_n(&c->c.cur_task, (uintptr_t)t, __ATOMIC_RELEASE);
	/* the call only for a stamped task or a sampled poll: a call per poll
	 * cost yield_many ~3 ns of its 18 with a tracer attached */
	uint64_t t0 = 0;
	if (WEFT_LAT_ON() &&
	    (t->wake_ns || !(c->c.poll_count & (WEFT_PROBE_LAT_SAMPLE - 1))))
		t0 = lat_poll_start(c, t);
	weft__task_run(t, cx);
	if (ctx->core == c) {
		__atomic_store_n(&c->c.cur_task, 0, __ATOMIC_RELAXED);
		yield_claim_check(c); /* before `deferred` is touched again */
		if (t0)
			weft__lat_add(c->c.poll_ns_log2, weft__now_ns() - t0);
	}
}

static void run_task(struct weft_runtime *rt, struct weft__ctx *ctx, struct weft__core *c,
		     struct weft_task *t)
{
	if (c->is_searching) {
		c->is_searching = false;
		if (weft__idle_end_search(&rt->idle))
			weft__idle_relay(rt, c); /* last searcher: relay the search */
	}
	struct weft_cx cx = { .budget = &ctx->budget, .core = c };
	ctx->budget = WEFT_BUDGET;
	ctx->cx = &cx;
	poll_task(ctx, c, t, &cx);
	if (ctx->core != c)
		goto handed_off; /* block_in_place gave the core to another thread */
	for (int lifo_polls = 0; atomic_load_explicit(&c->lifo, memory_order_relaxed); lifo_polls++) {
		t = atomic_exchange_explicit(&c->lifo, NULL, memory_order_acquire);
		if (!t)
			break; /* rescued by another worker */
		/* A remote spawn or wake waits in the inject queue (one load of
		 * a line only its pushers and poppers write): the woken task
		 * goes to the ring at once and the inject queue is served next
		 * (unless it was forced once since the last ring pop: see
		 * below; then within the global queue interval). A chain of long polls (10 us each in spawn_many_remote_
		 * busy2) held the core for four of them between looks at the
		 * queue. Overflow batches do not count: a burst of local spawns
		 * must not cost every LIFO chain its slot (ping_pong). */
		if (lifo_polls >= MAX_LIFO_POLLS || ctx->budget == 0 ||
		    weft__inject_remote_len(&rt->inject)) {
			push_local(rt, c, t);
			/* A chain of tasks each waking or spawning the next can
			 * hold the core for a long time in few polls: the inject
			 * queue's turn comes next, not after the polls the
			 * interval counts (tuned for the mean poll, which a burst
			 * of short tasks can leave far too long). Once per ring
			 * pop: if every inject task started such a chain, the
			 * ring would never be served again. */
			if (!c->inject_forced) {
				c->inject_forced = true;
				c->polls_since_global = UINT32_MAX / 2;
			}
			/* A peer only if the task waits behind others: alone in
			 * the ring with the inject queue empty, it is the next
			 * one this core polls. A ping-pong of two tasks hits the
			 * LIFO cap every third poll, and each wake pulled the
			 * parked worker out to search, decline (steal.h) and
			 * park again: ~70k futex wakes a second, each worker at
			 * 65-100% CPU. */
			if (weft__inject_len(&rt->inject))
				weft__idle_notify(rt);
			else if (weft__ring_len(&c->ring) > 1)
				notify_for_ring(rt, c);
			break;
		}
		poll_task(ctx, c, t, &cx);
		if (ctx->core != c)
			goto handed_off;
	}
handed_off:
	ctx->cx = NULL;
}

/* After a trim a thread asked for, one more this long after (alloc.c). */
#define TRIM_FOLLOW_NS 250000000ull

/* Sleep until notified; returns NULL, or a task rescued from another
 * core's LIFO slot (watch_cores) when the driver's watch woke us. */
static struct weft_task *park(struct weft_runtime *rt, struct weft__worker *w,
			      struct weft__core *c)
{
	struct weft_task *t = NULL;
	long reason = WEFT_UNPARK_SELF; /* for tracers: who woke us */
	unsigned linger = 0; /* watch timeouts since a worker was last seen running (idle.c) */
	weft__blocking_retry(rt); /* one atomic load unless the pool is starved */
	/* idle stacks' and tasks' memory back, beyond a few (now, or at
	 * trim_at if this core trimmed a moment ago) */
	atomic_store_explicit(&c->trim_wanted, false, memory_order_relaxed); /* this trim serves it */
	uint64_t trim_at = weft__fiber_trim(rt, c, true);
	weft__fiber_guard_ahead(rt); /* a growing burst of fibers: guards ahead of the spawner */
	/* A tracer learns a core's thread and counters from `maintenance`,
	 * which comes every event_interval polls: seconds on a core that
	 * polls a task every 100 ms, and schedtop attached to such a runtime
	 * counted none of its parks until then (11 of 40: found by a review).
	 * A park fires it too, at most every 100 ms, so a tracer sees an
	 * idle core at its first park; at most 10 traps a second per core.
	 * Before this park is counted: the tracer's first read of the
	 * counters is its baseline, and the park is then its first count. */
	if (WEFT_PROBE_ENABLED(maintenance) &&
	    c->batch_start_ns - c->last_maint_probe_ns >= MAINT_PROBE_PARK_NS) {
		c->last_maint_probe_ns = c->batch_start_ns;
		WEFT_PROBE(maintenance, c->index, &c->c, weft__ring_len(&c->ring),
			   weft__inject_len(&rt->inject), (uintptr_t)rt);
	}
	c->c.park_count++;
	if (c->c.poll_count == c->polls_at_unpark)
		c->c.noop_count++;
	weft__core_publish(c);
	/* for tracers, which read the counters when this thread goes to sleep */
	c->c.park_local_depth = weft__ring_len(&c->ring);
	c->c.park_inject_depth = weft__inject_len(&rt->inject);
	WEFT_PROBE(park, c->index, WEFT_PARK_FUTEX, c->c.park_local_depth, c->c.park_inject_depth,
		   (uintptr_t)rt);
	bool searching = c->is_searching;
	c->is_searching = false;
	/* the last searcher, or a non-searcher (idle.c): rescan */
	if (weft__idle_park(rt, c, searching))
		weft__idle_notify_if_work(rt, c);
	/* Listed now: weft_runtime_set_workers either found us listed (and
	 * unlisted us) or set the flag before we listed ourselves (the idle
	 * lock orders the two), so it is seen here; the loop retires. */
	if (atomic_load_explicit(&c->retiring, memory_order_relaxed)) {
		weft__idle_unpark_self(rt, c);
		goto unparked;
	}
	bool inject_seen = false; /* an inject task seen at the last wake (below) */
	bool vacant_seen = false; /* a vacant driver left alone at the last wake */
	for (bool again = false;; again = true) {
		if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
			goto shutdown;
		/* Woken while still listed (a watch timeout, the watch's kick:
		 * idle.c), a vacant driver is left to the worker that left it
		 * so (driver.c) once, while a worker runs: we watch from here
		 * a timeout long, and take it if it is still vacant at our
		 * next wake. The kick comes as the vacating worker starts its
		 * task: taking the driver then ended every vacancy at once
		 * and moved readiness between threads (elastic's vacant-retire
		 * test found none under ASan). Leaving it for good let a poll
		 * that lasts hold up every other fd's readiness (a second
		 * fd's byte waited ~900 ms behind a 1 s poll, found by a
		 * review; 0.1 ms before). With no worker running nobody would
		 * poll it: the worker that left it vacant parked, and its own
		 * try for the driver failed (another thread held the lock a
		 * moment) - passed by on every wake, readiness was lost for
		 * good (a reader hung under io_uring, 3 runs in 558). */
		bool leave_vacant =
			again && !vacant_seen &&
			atomic_load_explicit(&rt->driver.unwatched, memory_order_seq_cst) ==
				WEFT__UNWATCHED_VACANT &&
			IDLE_UNPARKED(atomic_load_explicit(&rt->idle.state, memory_order_seq_cst)) > 0;
		vacant_seen = leave_vacant;
		if (leave_vacant || !weft__driver_park(rt, &w->parker, trim_at, &linger)) {
			/* Another thread holds the driver. If nobody sleeps
			 * in it (a running worker's maintenance poll, a
			 * sleeper on its way out), the holder hands it to
			 * nobody: without this retry the driver stayed empty
			 * while we slept, with no stall watch and timers
			 * fired only at the running workers' maintenance (a
			 * LIFO task behind a 300 ms poll waited it out). */
			uint64_t until = trim_at;
			/* ... and with a worker running (or lately), this
			 * one watches it when no other futex sleeper does
			 * (idle.c, "The watch": the driver may be left
			 * vacant, and its sleeper leaves with each event) */
			bool watching = weft__idle_watch_begin(rt, &linger);
			if (watching || !atomic_load_explicit(&rt->driver.sleeper, memory_order_relaxed)) {
				uint64_t now = weft__now_ns();
				uint64_t retry = now + WEFT_WATCH_MS * 1000000ull;
				/* ... or sooner, when a timer is due: with nobody
				 * in the driver once its holder lets go, a timer
				 * due before the retry fired up to a watch period
				 * late (found by a review). Not before a tick from
				 * now: a timer due already is the holder's to fire,
				 * and we try again, not spin. */
				uint64_t due = weft__driver_next_due_ns(rt);
				if (due && due < retry)
					retry = due > now + WEFT_TICK_NS ? due : now + WEFT_TICK_NS;
				if (!until || retry < until)
					until = retry;
			}
			if (until)
				(void)weft__parker_park_until(&w->parker, until);
			else
				weft__parker_park(&w->parker);
			if (watching)
				weft__idle_watch_end(rt, c);
		}
		if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
			goto shutdown;
		/* acquire: pairs with the notifier's release when it popped us. */
		if (!atomic_load_explicit(&c->sleeping, memory_order_acquire)) {
			reason = WEFT_UNPARK_NOTIFIED;
			break;
		}
		/* Still listed: the idle trim's time, a thread that freed memory
		 * into our caches (alloc.c), a spurious wake, a stale
		 * notification, or the driver's watch. */
		/* The flag stays set until the trim runs: alloc.c wakes us
		 * only when it was clear, once per trim. */
		if (atomic_load_explicit(&c->trim_wanted, memory_order_relaxed) && !trim_at)
			trim_at = 1; /* due now (or at the gap's end) */
		if (trim_at && weft__now_ns() >= trim_at) {
			bool asked = atomic_exchange_explicit(&c->trim_wanted, false,
							      memory_order_relaxed);
			trim_at = weft__fiber_trim(rt, c, true);
			/* An ask comes before its free lands (alloc.c): a trim
			 * that ran at once may have missed it. Once more, a
			 * gap later (and again while frees keep coming). */
			if (asked && !trim_at)
				trim_at = weft__now_ns() + TRIM_FOLLOW_NS;
		}
		/* The driver's watch. A LIFO task stuck behind a long poll is ours
		 * to run: leave as if notified. So are short tasks in a ring
		 * its worker has not served since our last look (steal.h: the
		 * rescan at park left them to it; a long poll or a preempted
		 * thread since): leave and search. */
		if ((t = watch_cores(rt, c, 0))) {
			weft__idle_unpark_self(rt, c);
			break;
		}
		if (weft__steal_wanted(rt, c)) {
			weft__idle_unpark_self(rt, c);
			break;
		}
		/* A task in the inject queue no notify woke anyone for (a
		 * backstop: the idle protocol should not lose one, idle.c;
		 * with one it waited for the running worker's poll to end,
		 * seconds behind a long one). Not at once while a worker
		 * searches: the notify woke that one for it, and whoever finds
		 * it relays. (A sleeper the watch woke as the push notified -
		 * idle.c, "The watch" - raced the notified worker for the task
		 * and parked again empty-handed.) Still there at our next wake
		 * with a worker searching, it is ours: a backstop that waits
		 * on a searcher is none if that searcher never comes. */
		if (weft__inject_visible(&rt->inject)) {
			if (inject_seen || !IDLE_SEARCHING(atomic_load_explicit(
						   &rt->idle.state, memory_order_seq_cst))) {
				weft__idle_unpark_self(rt, c);
				break;
			}
			inject_seen = true;
		} else {
			inject_seen = false;
		}
	}
unparked:
	/* a core retired while parked is woken by weft_runtime_set_workers */
	if (atomic_load_explicit(&c->retiring, memory_order_relaxed))
		reason = WEFT_UNPARK_RETIRE;
	c->is_searching = true; /* the notifier (or unpark_self) counted us as searching */
	c->polls_at_unpark = c->c.poll_count;
	c->c.unpark_count++;
	WEFT_PROBE(unpark, c->index, reason, (uintptr_t)rt);
	return t;
shutdown:
	WEFT_PROBE(unpark, c->index, WEFT_UNPARK_SHUTDOWN, (uintptr_t)rt);
	return NULL;
}

void weft__core_hold(struct weft_runtime *rt, struct weft__worker *w, struct weft__core *c)
{
	weft__registry_set(rt, c->index, w);
	c->c.park_word = (uintptr_t)&w->parker.state; /* for tracers: where this thread parks */
	c->c.holder_tid = (unsigned long long)atomic_load_explicit(&w->tid, memory_order_relaxed);
}

/*
 * weft_runtime_set_workers asked for c to go (c->retiring): under the
 * resize lock, unless the call was undone meanwhile, move every task queued
 * on c to the inject queue, take c out of the idle protocol and the
 * registry, and let go of it; this thread becomes a spare (blocking.c).
 * Timers set on c stay in its wheel and are fired by the other workers and
 * the driver, like any absent owner's. true: c is gone from this thread.
 */
static bool retire(struct weft_runtime *rt, struct weft__ctx *ctx, struct weft__core *c)
{
	pthread_mutex_lock(&rt->resize_lock);
	if (c->life != CORE_RETIRING) {
		pthread_mutex_unlock(&rt->resize_lock); /* grown back before we saw it */
		return false;
	}
	c->life = CORE_RETIRED;
	atomic_store_explicit(&c->retiring, false, memory_order_relaxed);
	bool relay = false;
	if (c->is_searching) {
		c->is_searching = false;
		relay = weft__idle_end_search(&rt->idle);
	}
	struct weft__tlist all = WEFT__TLIST_INIT;
	struct weft_task *t;
	if ((t = atomic_exchange_explicit(&c->lifo, NULL, memory_order_acquire)))
		weft__tlist_push(&all, t);
	while ((t = weft__tlist_pop(&c->deferred)))
		weft__tlist_push(&all, t);
	while ((t = weft__ring_pop_owner(&c->ring)))
		weft__tlist_push(&all, t);
	bool moved = all.n > 0;
	if (moved && weft__inject_push_batch(&rt->inject, &all) < 0)
		weft__orphan(rt, &all); /* closed by shutdown: it ends them */
	weft__idle_remove_core(rt, c);
	/* No gap: the core goes idle for good; deep (keep nothing) unless
	 * another core runs. */
	c->idle_trimmed_ns = 1;
	c->idle_trim_polls = c->c.poll_count;
	/* the wake that retires it is not one its next thread parks after */
	c->polls_at_unpark = WEFT__NO_UNPARK;
	(void)weft__fiber_trim(rt, c, true); /* its idle stacks' and tasks' memory back */
	__atomic_store_n(&c->c.cur_task, 0, __ATOMIC_RELAXED);
	batch_end(c);
	weft__core_publish(c);
	weft__registry_set(rt, c->index, NULL);
	c->c.park_word = 0;
	c->c.holder_tid = 0;
	ctx->core = NULL;
	pthread_mutex_unlock(&rt->resize_lock);
	if (relay || moved)
		weft__idle_notify(rt);
	/* This thread may have left the driver vacant (driver.c,
	 * maybe_vacate: the only worker running), counting on coming back
	 * to it when it parks; it will not now. The parked workers sleep on
	 * their futexes, not in the driver: call one in to take it, or I/O
	 * readiness went unseen until something else woke one (found by a
	 * review: for good on an idle runtime). */
	uint8_t u = atomic_load_explicit(&rt->driver.unwatched, memory_order_seq_cst);
	if (u == WEFT__UNWATCHED_VACANT)
		weft__driver_unwatched(rt, u);
	weft__spare_count_retired(rt);
	return true;
}

/* Drive core c until this thread loses it (block_in_place handed it to a
 * spare; weft_runtime_set_workers retired it) or shutdown. */
static void drive(struct weft_runtime *rt, struct weft__worker *w, struct weft__ctx *ctx,
		  struct weft__core *c)
{
	int tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
	weft__core_hold(rt, w, c);
	ctx->core = c;
	c->c.steal_from = (uintptr_t)c->steal_from;
	c->c.steal_from_n = rt->n < WEFT_PROBE_STEAL_VICTIMS ? rt->n : WEFT_PROBE_STEAL_VICTIMS;
	WEFT_PROBE(worker_start, c->index, tid, &c->c, (uintptr_t)rt);

	batch_start(c);
	while (!atomic_load_explicit(&rt->shutdown, memory_order_relaxed)) {
		if (atomic_load_explicit(&c->retiring, memory_order_relaxed) && retire(rt, ctx, c))
			break;
		c->tick++;
		if (c->tick % rt->event_interval == 0)
			maintenance(rt, c);
		struct weft_task *t = next_task(rt, c);
		if (!t && flush_deferred(rt, c))
			continue;
		if (!t) {
			batch_end(c);
			t = steal_work(rt, c);
			if (!t) {
				t = park(rt, w, c);
				batch_start(c);
				if (!t)
					continue;
			}
		}
		run_task(rt, ctx, c, t);
		if (!ctx->core)
			return; /* handed off: the spare that took it drives it now */
	}
	if (ctx->core) {
		batch_end(c);
		weft__core_publish(c);
	}
	/* Not after a hand-off: the core did not stop, and the spare's
	 * worker_start came before (a tracer would mark it stopped while the
	 * spare drives it, and read its counters from this thread) */
	WEFT_PROBE(worker_stop, c->index, tid, (uintptr_t)rt);
}

void *weft__worker_main(void *arg)
{
	struct weft__worker *w = arg;
	struct weft_runtime *rt = w->rt;
	struct weft__ctx ctx = { .rt = rt, .worker = w, .home = rt }; /* the core comes after the hook */
	char name[32];
	weft__runtime_thread = true; /* fork.c */
	weft__thread_of = rt; /* runtime.c, on_worker_of */

	snprintf(name, sizeof(name), "%s-%u", rt->name_prefix, w->index);
	name[15] = '\0'; /* prefix <= 11 bytes and index < 256: never cut */
	pthread_setname_np(pthread_self(), name);
	atomic_store_explicit(&w->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
	void *altstack = weft__fiber_thread_init();
	weft__ctx_set(&ctx);
	/* The hook runs before this thread drives a core, so it holds none:
	 * block_in_place there just calls fn (it used to hand the core to a
	 * new thread, and then this one drove it too), and a blocking call
	 * parks the thread. */
	if (rt->opts.on_thread_start) {
		/* A core's first thread (at creation, or a core that
		 * weft_runtime_set_workers added) has its core counted
		 * unparked since before it started, and nobody else drives it:
		 * not a running worker for the watch while the hook runs. Not
		 * a spare that block_in_place started: its caller may take the
		 * core back and run on it meanwhile (blocking.c); nor a pooled
		 * spare, which has no core. */
		bool counted = !w->extra || w->fresh_core;
		if (counted)
			weft__idle_hook_begin(rt);
		rt->opts.on_thread_start(rt->opts.hook_arg, w->index);
		if (counted)
			weft__idle_hook_end(rt);
	}
	/* A core's first thread drives it at once; a spare waits for one. */
	struct weft__core *c = w->extra ? NULL : &rt->cores[w->index];
	for (;;) {
		if (!c && !weft__spare_wait(rt, w, &c))
			break; /* idle too long, or shutdown */
		drive(rt, w, &ctx, c);
		if (ctx.core)
			break; /* shutdown */
		c = NULL;
	}

	/* The stop hook holds no core either (at shutdown this thread still
	 * had one): its blocking calls park the thread, as the start hook's
	 * and a leaving spare's do. They said -EDEADLK, as from a poll task
	 * (found by a review). Its wakes go to the inject queue, which the
	 * shutdown drains after this thread is out. */
	struct weft__core *held = ctx.core;
	ctx.core = NULL;
	if (rt->opts.on_thread_stop)
		rt->opts.on_thread_stop(rt->opts.hook_arg, w->index);
	if (held) {
		weft__registry_set(rt, held->index, NULL);
		held->c.holder_tid = 0;
	}
	atomic_store_explicit(&w->tid, 0, memory_order_relaxed);
	weft__ctx_set(NULL);
	weft__fiber_thread_fini(altstack);
	uintptr_t prev = w->extra ? weft__thread_leave(rt) : 0;
	pthread_mutex_lock(&rt->threads_lock);
	rt->live_threads--;
	pthread_cond_broadcast(&rt->threads_cv);
	pthread_mutex_unlock(&rt->threads_lock); /* the thread's last touch of rt and w */
	weft__thread_join(prev);
	return NULL;
}

/*
 * Spares and pool threads leave at any time (keep-alive, eviction), so
 * nobody waits to join each one; they were detached, and a thread still
 * on its way out - in this library's code, in its key destructors - when
 * destroy returned outlived the runtime: a destructor ran after destroy,
 * a dlclose unmapped the code under it (found by a review). Joinable now:
 * a thread leaving joins the one that left before it, and shutdown the
 * last (a chain, each link joined before its joiner can end).
 */
uintptr_t weft__thread_leave(struct weft_runtime *rt)
{
	_Static_assert(sizeof(pthread_t) == sizeof(uintptr_t), "pthread_t is not a word");
	pthread_t self = pthread_self();
	uintptr_t me;
	memcpy(&me, &self, sizeof(me));
	/* seq_cst, before the count-out: shutdown, once it has seen every
	 * thread counted out, finds the last leaver here */
	return atomic_exchange_explicit(&rt->leaver, me, memory_order_seq_cst);
}

void weft__thread_join(uintptr_t th)
{
	pthread_t t;
	if (!th)
		return;
	memcpy(&t, &th, sizeof(t));
	pthread_join(t, NULL);
}
