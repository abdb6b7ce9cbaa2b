/*
 * test_blocking.c - the blocking pool (limits, queueing, keep-alive, abort,
 * shutdown) and block_in_place (a rendezvous that deadlocks unless the
 * blocked worker's core keeps running tasks on another thread).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>

#include "wt.h"

static atomic_int g_running, g_max_running, g_ran;

static void *sleepy_job(void *arg)
{
	int now = atomic_fetch_add(&g_running, 1) + 1;
	int m = atomic_load(&g_max_running);
	while (now > m && !atomic_compare_exchange_weak(&g_max_running, &m, now))
		;
	wt_sleep_ms((unsigned)(uintptr_t)arg);
	atomic_fetch_sub(&g_running, 1);
	atomic_fetch_add(&g_ran, 1);
	return (void *)((uintptr_t)arg * 2);
}

static struct weft_runtime *rt_blocking(unsigned max, uint64_t keep_alive_ns)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .max_blocking_threads = max,
		  .blocking_keep_alive_ns = keep_alive_ns);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	return rt;
}

Test(blocking, more_jobs_than_threads_queue_and_finish, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = rt_blocking(3, 0);
	atomic_store(&g_running, 0);
	atomic_store(&g_max_running, 0);
	atomic_store(&g_ran, 0);
	enum { N = 30 };
	struct weft_task *t[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)10, &t[i]), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_leq(m->blocking_threads, 3);
	cr_assert_gt(m->blocking_queue_depth, 0, "jobs beyond the limit should queue");
	weft_metrics_free(m);
	for (int i = 0; i < N; i++) {
		void *r;
		cr_assert_eq(weft_join(t[i], &r), 0);
		cr_assert_eq((uintptr_t)r, 20);
	}
	cr_assert_eq(atomic_load(&g_ran), N);
	cr_assert_leq(atomic_load(&g_max_running), 3, "more threads than max_blocking_threads");
	cr_assert_geq(atomic_load(&g_max_running), 2);
	wt_rt_destroy(rt);
}

Test(blocking, idle_threads_exit_after_keep_alive, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = rt_blocking(4, 50 * 1000000ull);
	struct weft_task *t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)20, &t[i]), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_gt(m->blocking_threads, 0);
	weft_metrics_free(m);
	cr_assert(WT_METRICS_UNTIL(rt, m, m->blocking_threads == 0 && m->blocking_threads_exited >= 1,
				   WT_LONG_MS),
		  "idle blocking threads did not exit after keep-alive");
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

static atomic_int g_gate;
static void *wait_gate(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_gate))
		usleep(1000);
	return NULL;
}

Test(blocking, abort_queued_job_and_shutdown_with_queue, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = rt_blocking(1, 0);
	atomic_store(&g_gate, 0);
	struct weft_task *busy, *queued, *later;
	cr_assert_eq(weft_spawn_blocking(rt, wait_gate, NULL, &busy), 0);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &queued), 0);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &later), 0);
	cr_assert_eq(weft_abort(queued), 0);
	atomic_store(&g_gate, 1);
	cr_assert_eq(weft_join(busy, NULL), 0);
	cr_assert_eq(weft_join(queued, NULL), -ECANCELED, "a job aborted before it ran is cancelled");
	cr_assert_eq(weft_join(later, NULL), 0);

	/* shutdown: the running job finishes, the queued one is cancelled */
	atomic_store(&g_gate, 0);
	cr_assert_eq(weft_spawn_blocking(rt, wait_gate, NULL, &busy), 0);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &queued), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_runtime_shutdown(rt, 20 * 1000000ull), -ETIMEDOUT, "the running job blocks shutdown");
	atomic_store(&g_gate, 1);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(weft_join(busy, NULL), 0);
	cr_assert_eq(weft_join(queued, NULL), -ECANCELED);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, NULL, NULL), -ESHUTDOWN);
	cr_assert_eq(weft_spawn_blocking(NULL, sleepy_job, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
}

/*
 * An aborted job still queued is cancelled then, not when a thread frees
 * up: with the only pool thread held by a job that does not end, its
 * joiner waited for that job (forever, for a job blocked on input), and
 * its drop ran only then (found by a review).
 */
Test(blocking, abort_queued_job_ends_it_while_the_pool_is_busy, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = rt_blocking(1, 0);
	atomic_store(&g_gate, 0);
	atomic_store(&g_ran, 0);
	struct weft_task *busy, *queued, *later;
	cr_assert_eq(weft_spawn_blocking(rt, wait_gate, NULL, &busy), 0);
	struct weft_metrics *m;
	cr_assert(WT_METRICS_UNTIL(rt, m, m->blocking_queue_depth == 0, WT_LONG_MS),
		  "the pool thread did not take the first job");
	weft_metrics_free(m);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &queued), 0);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &later), 0);
	cr_assert_eq(weft_abort(queued), 0);
	cr_assert_eq(weft_join_timeout(queued, NULL, (uint64_t)WT_LONG_MS * 1000000ull), -ECANCELED,
		     "an aborted queued job waited for the busy pool");
	cr_assert(weft_task_is_finished(busy) == false);
	m = wt_metrics(rt);
	cr_assert_eq(m->blocking_queue_depth, 1, "the aborted job left the queue");
	weft_metrics_free(m);
	atomic_store(&g_gate, 1);
	cr_assert_eq(weft_join(busy, NULL), 0);
	cr_assert_eq(weft_join(later, NULL), 0);
	cr_assert_eq(atomic_load(&g_ran), 1, "the aborted job ran anyway");
	wt_rt_destroy(rt);
}

/*
 * An abort cancels a queued job on the aborting thread; a shutdown from
 * another thread meanwhile found the job on the owned list and running
 * (claimed by the abort's run, unlisted only when complete) and died:
 * "task N listed but running at shutdown" (found by a review). The test's
 * allocator holds the aborting thread in the free of the job's record
 * (job_drop, inside that run) for 2 s, while the shutdown goes on.
 */
static _Thread_local bool slow_frees;
static atomic_int in_slow_free;

static void *slow_alloc(size_t size, size_t align, void *ctx)
{
	(void)ctx;
	if (align < sizeof(void *))
		align = sizeof(void *);
	return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

static void slow_free(void *p, void *ctx)
{
	(void)ctx;
	if (slow_frees && !atomic_exchange(&in_slow_free, 1))
		usleep(2000000);
	free(p);
}

static struct weft_task *abort_racing_job;

static void *abort_racing_thread(void *arg)
{
	(void)arg;
	slow_frees = true;
	int rc = weft_abort(abort_racing_job);
	slow_frees = false;
	return (void *)(intptr_t)rc;
}

Test(blocking, abort_of_a_queued_job_racing_shutdown, .timeout = WT_TMO(60))
{
	static const struct weft_allocator slow = { slow_alloc, slow_free, NULL };
	cr_assert_eq(weft_set_allocator(&slow), 0);
	struct weft_runtime *rt = rt_blocking(1, 0);
	atomic_store(&g_gate, 0);
	atomic_store(&g_ran, 0);
	atomic_store(&in_slow_free, 0);
	struct weft_task *busy;
	cr_assert_eq(weft_spawn_blocking(rt, wait_gate, NULL, &busy), 0);
	struct weft_metrics *m;
	cr_assert(WT_METRICS_UNTIL(rt, m, m->blocking_queue_depth == 0, WT_LONG_MS),
		  "the pool thread did not take the first job");
	weft_metrics_free(m);
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &abort_racing_job), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, abort_racing_thread, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&in_slow_free), WT_LONG_MS),
		  "the abort did not cancel the queued job");
	atomic_store(&g_gate, 1);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	void *rc;
	cr_assert_eq(pthread_join(th, &rc), 0);
	cr_assert_eq((intptr_t)rc, 0, "weft_abort = %d", (int)(intptr_t)rc);
	cr_assert_eq(weft_join(abort_racing_job, NULL), -ECANCELED);
	cr_assert_eq(weft_join(busy, NULL), 0);
	cr_assert_eq(atomic_load(&g_ran), 0, "the aborted job ran");
	cr_assert_eq(weft_runtime_destroy(rt), 0);
	cr_assert_eq(weft_set_allocator(NULL), 0);
}

/* ------------------------------------------------------- block_in_place */

static atomic_int g_spinners, g_release;

static void *until_released(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_release))
		usleep(100);
	return (void *)7;
}

static enum weft_poll blocker_poll(void *state, struct weft_cx *cx)
{
	void *r = NULL;
	int *rc = state;
	*rc = weft_block_in_place(until_released, NULL, &r);
	weft_cx_set_result(cx, r);
	return WEFT_READY;
}

/* Two of these must run at the same time to get past the rendezvous. */
static enum weft_poll spinner_poll(void *state, struct weft_cx *cx)
{
	atomic_fetch_add(&g_spinners, 1);
	uint64_t end = wt_now_ns() + 10ull * 1000000000ull;
	while (atomic_load(&g_spinners) < 2 && wt_now_ns() < end)
		;
	if (atomic_load(&g_spinners) >= 2)
		atomic_store(&g_release, 1);
	return WEFT_READY;
}

static void *fiber_blocker(void *arg)
{
	void *r = NULL;
	weft_block_in_place(until_released, NULL, &r);
	weft_yield(); /* the fiber goes on, on whichever worker */
	return r;
}

Test(block_in_place, runtime_keeps_all_workers_running, .timeout = WT_TMO(60))
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(2);
		atomic_store(&g_spinners, 0);
		atomic_store(&g_release, 0);
		struct weft_task *b, *s1, *s2;
		int rc = 99;
		if (round == 0)
			cr_assert_eq(weft_spawn_poll(rt, blocker_poll, &rc, NULL, &b), 0);
		else
			cr_assert_eq(weft_spawn(rt, fiber_blocker, NULL, &b), 0);
		wt_sleep_ms(20); /* the blocker occupies one worker */
		cr_assert_eq(weft_spawn_poll(rt, spinner_poll, NULL, NULL, &s1), 0);
		cr_assert_eq(weft_spawn_poll(rt, spinner_poll, NULL, NULL, &s2), 0);
		cr_assert_eq(weft_join(s1, NULL), 0);
		cr_assert_eq(weft_join(s2, NULL), 0);
		cr_assert_eq(atomic_load(&g_release), 1,
			     "two spinners never ran in parallel: the blocked core stood still");
		void *r;
		cr_assert_eq(weft_join(b, &r), 0);
		cr_assert_eq((uintptr_t)r, 7);
		if (round == 0)
			cr_assert_eq(rc, 0);
		struct weft_metrics *m = wt_metrics(rt);
		cr_assert_geq(m->block_in_place_count, 1);
		weft_metrics_free(m);
		/* still a working runtime after the hand-off */
		struct weft_task *t[1000];
		for (int i = 0; i < 1000; i++)
			cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, NULL, NULL, &t[i]), 0);
		for (int i = 0; i < 1000; i++)
			cr_assert_eq(weft_join(t[i], NULL), 0);
		wt_rt_destroy(rt);
	}
}

Test(block_in_place, outside_a_worker_just_calls, .timeout = WT_TMO(10))
{
	void *r = NULL;
	atomic_store(&g_release, 1);
	cr_assert_eq(weft_block_in_place(until_released, NULL, &r), 0);
	cr_assert_eq((uintptr_t)r, 7);
	cr_assert_eq(weft_block_in_place(NULL, NULL, &r), -EINVAL);
}

/* ------------------------------------- block_in_place through spares */

static atomic_int g_threads_started;

static void count_thread_start(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	atomic_fetch_add(&g_threads_started, 1);
}

static void *quick_fn(void *arg) { return arg; }

/* A poll task calling block_in_place once per poll, CALLS polls (each
 * poll starts on a thread holding a core: after a hand-off, the rest of a
 * poll runs without one and a further call there just runs fn). */
struct many_bip { int left, bad; };

static enum weft_poll many_bip_poll(void *state, struct weft_cx *cx)
{
	struct many_bip *b = state;
	void *r = NULL;
	if (weft_block_in_place(quick_fn, (void *)(uintptr_t)b->left, &r) ||
	    r != (void *)(uintptr_t)b->left)
		b->bad++;
	if (--b->left == 0)
		return WEFT_READY;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/*
 * 10,000 calls (4 tasks at once on 2 workers) reuse a few spare threads:
 * the start hook, which runs once on every worker thread, counts the
 * threads ever made. Before the spares, every call started a thread
 * (10,000 hook calls). Most calls end before the spare takes the core, so
 * their thread takes its core back.
 */
Test(block_in_place, spare_threads_are_reused, .timeout = WT_TMO(60))
{
	atomic_store(&g_threads_started, 0);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .on_thread_start = count_thread_start);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	enum { TASKS = 4, CALLS = 2500 };
	struct many_bip st[TASKS];
	struct weft_task *t[TASKS];
	for (int i = 0; i < TASKS; i++) {
		st[i] = (struct many_bip){ CALLS, 0 };
		cr_assert_eq(weft_spawn_poll(rt, many_bip_poll, &st[i], NULL, &t[i]), 0);
	}
	for (int i = 0; i < TASKS; i++) {
		cr_assert_eq(weft_join(t[i], NULL), 0);
		cr_assert_eq(st[i].bad, 0, "a call failed or returned the wrong result");
	}
	struct weft_metrics *m = wt_metrics(rt);
	int started = atomic_load(&g_threads_started);
	cr_assert_leq(started, 2 + 8, "%d worker threads made for %d block_in_place calls",
		      started, TASKS * CALLS);
	cr_assert_leq(m->block_in_place_threads_started, 8);
	cr_assert_eq(m->block_in_place_count + m->block_in_place_inline, TASKS * CALLS);
	cr_assert_eq(m->block_in_place_inline, 0);
	cr_assert_gt(m->block_in_place_reclaimed, 0, "no caller ever took its core back");
	cr_assert_leq(m->block_in_place_threads, 8);
	weft_metrics_free(m);
	/* still a working runtime, whichever threads hold the cores now */
	struct weft_task *u[500];
	for (int i = 0; i < 500; i++)
		cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, NULL, NULL, &u[i]), 0);
	for (int i = 0; i < 500; i++)
		cr_assert_eq(weft_join(u[i], NULL), 0);
	wt_rt_destroy(rt);
}

/* blocking_keep_alive_ns = WEFT_FOREVER: an idle spare stays. Its deadline
 * (now + keep-alive) used to wrap into the past, every idle spare left at
 * once, and each of these calls started a thread of its own (20 of 20). */
static void *short_fn(void *arg)
{
	wt_sleep_ms(2);
	return arg;
}

static void *bip_twenty(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(weft_block_in_place(short_fn, NULL, NULL), 0);
		cr_assert_eq(weft_sleep_ns(5 * 1000000ull), 0);
	}
	return NULL;
}

Test(block_in_place, keep_alive_forever_keeps_the_spare, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .blocking_keep_alive_ns = WEFT_FOREVER);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, bip_twenty, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_leq(m->block_in_place_threads_started, 2, "%llu spare threads for 20 calls",
		      (unsigned long long)m->block_in_place_threads_started);
	cr_assert_geq(m->block_in_place_threads, 1, "the idle spare left");
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* max_blocking_threads = 1, spent on an idle spare (left by a
 * block_in_place): a blocking job does not wait for the spare's keep-alive
 * (3 s here) - the spare is asked to leave and a pool thread runs the job
 * (it waited 3 s, 3 of 3 runs in a review's program). */
static void *answer_fn(void *arg)
{
	(void)arg;
	return (void *)42;
}

static void *bip_then_spawn_blocking(void *arg)
{
	(void)arg;
	cr_assert_eq(weft_block_in_place(answer_fn, NULL, NULL), 0);
	cr_assert_eq(weft_sleep_ns(5 * 1000000ull), 0);
	uint64_t t0 = weft_now_ns();
	struct weft_task *j;
	void *r = NULL;
	cr_assert_eq(weft_spawn_blocking(weft_runtime_current(), answer_fn, NULL, &j), 0);
	cr_assert_eq(weft_join(j, &r), 0);
	cr_assert_eq((intptr_t)r, 42);
	return (void *)(uintptr_t)(weft_now_ns() - t0);
}

Test(block_in_place, idle_spare_at_the_cap_makes_room_for_a_job, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1,
		  .blocking_keep_alive_ns = 3000 * 1000000ull);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, bip_then_spawn_blocking, NULL, &t), 0);
	void *waited;
	cr_assert_eq(weft_join(t, &waited), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->block_in_place_threads_started, 1, "the call did not go through a spare");
	weft_metrics_free(m);
	cr_assert_lt((uintptr_t)waited, 1000 * 1000000ull, "the job waited %llu ms for the pool",
		     (unsigned long long)((uintptr_t)waited / 1000000));
	wt_rt_destroy(rt);
}

/* The mirror: max_blocking_threads = 1, spent on an idle pool thread (a
 * finished job's, waiting out its 3 s keep-alive): a block_in_place does
 * not run fn holding the core - the idle pool thread is asked to leave and
 * a spare takes the core, so a task queued behind the caller runs while
 * fn blocks. Noticed by a review (weft.h's "at that cap" counted idle
 * pool threads): fn ran inline and the queued task waited for it. */
struct bip_mirror { struct weft_runtime *rt; atomic_int side_ran, side_during; atomic_int in_fn; };

static void *mirror_side(void *arg)
{
	struct bip_mirror *b = arg;
	atomic_store(&b->side_during, atomic_load(&b->in_fn));
	atomic_store(&b->side_ran, 1);
	return NULL;
}

static void *mirror_slow_fn(void *arg)
{
	struct bip_mirror *b = arg;
	atomic_store(&b->in_fn, 1);
	wt_sleep_ms(200); /* blocks this thread: the side task needs the core */
	atomic_store(&b->in_fn, 0);
	return NULL;
}

static void *mirror_bip_after_job(void *arg)
{
	struct bip_mirror *b = arg;
	struct weft_task *j, *side;
	cr_assert_eq(weft_spawn_blocking(b->rt, answer_fn, NULL, &j), 0);
	cr_assert_eq(weft_join(j, NULL), 0);
	cr_assert_eq(weft_sleep_ns(5 * 1000000ull), 0); /* the pool thread idles */
	cr_assert_eq(weft_spawn(b->rt, mirror_side, b, &side), 0); /* queued behind us */
	cr_assert_eq(weft_block_in_place(mirror_slow_fn, b, NULL), 0);
	cr_assert_eq(weft_join(side, NULL), 0);
	return NULL;
}

Test(block_in_place, idle_pool_thread_at_the_cap_makes_room_for_a_spare, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1,
		  .blocking_keep_alive_ns = 3000 * 1000000ull);
	struct bip_mirror b = { 0 };
	cr_assert_eq(weft_runtime_create(&o, &b.rt), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(b.rt, mirror_bip_after_job, &b, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	struct weft_metrics *m = wt_metrics(b.rt);
	uint64_t inl = m->block_in_place_inline, started = m->block_in_place_threads_started;
	weft_metrics_free(m);
	cr_assert_eq(inl, 0, "fn ran holding the core (idle pool thread kept its room)");
	cr_assert_eq(started, 1);
	cr_assert(atomic_load(&b.side_ran));
	cr_assert(atomic_load(&b.side_during), "the queued task waited for fn");
	wt_rt_destroy(b.rt);
}

/* max_blocking_threads = 1, spent on the spare of a block_in_place whose
 * fn is still running when a blocking job is spawned: the job queues (no
 * idle spare to ask to leave). When fn returns the spare goes idle, and
 * must leave for the job at once; nothing evicted it, and the job waited
 * for its keep-alive (5 s here; 3 s of 3 s in a review's program). */
static atomic_int g_slow_in;
static _Atomic uint64_t g_slow_end_ns, g_job_ran_ns;

static void *slow_200ms(void *arg)
{
	atomic_store(&g_slow_in, 1);
	wt_sleep_ms(200);
	atomic_store(&g_slow_end_ns, wt_now_ns());
	return arg;
}

static void *bip_slow(void *arg)
{
	cr_assert_eq(weft_block_in_place(slow_200ms, NULL, NULL), 0);
	return arg;
}

static void *note_job_ran(void *arg)
{
	atomic_store(&g_job_ran_ns, wt_now_ns());
	return (void *)42;
}

Test(block_in_place, job_queued_at_the_cap_gets_the_spare_going_idle, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1,
		  .blocking_keep_alive_ns = 5000 * 1000000ull);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_task *f, *j;
	cr_assert_eq(weft_spawn(rt, bip_slow, NULL, &f), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_slow_in), WT_LONG_MS));
	cr_assert_eq(weft_spawn_blocking(rt, note_job_ran, NULL, &j), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->block_in_place_threads_started, 1, "the call did not go through a spare");
	cr_assert_eq(m->blocking_queue_depth, 1, "the job did not queue behind the busy spare");
	weft_metrics_free(m);
	void *r = NULL;
	cr_assert_eq(weft_join(f, NULL), 0);
	cr_assert_eq(weft_join(j, &r), 0);
	cr_assert_eq((intptr_t)r, 42);
	uint64_t late = atomic_load(&g_job_ran_ns) - atomic_load(&g_slow_end_ns);
	cr_log_info("the job ran %.1f ms after fn returned", (double)late / 1e6);
	cr_assert_lt(late, 1000 * 1000000ull, "the job waited %llu ms for the idle spare to leave",
		     (unsigned long long)(late / 1000000));
	wt_rt_destroy(rt);
}

static atomic_int g_in_fn, g_max_in_fn;

static void *slow_fn(void *arg)
{
	int now = atomic_fetch_add(&g_in_fn, 1) + 1;
	int m = atomic_load(&g_max_in_fn);
	while (now > m && !atomic_compare_exchange_weak(&g_max_in_fn, &m, now))
		;
	wt_sleep_ms(30);
	atomic_fetch_sub(&g_in_fn, 1);
	return arg;
}

static enum weft_poll slow_bip_poll(void *state, struct weft_cx *cx)
{
	void *r = NULL;
	int rc = weft_block_in_place(slow_fn, state, &r);
	weft_cx_set_result(cx, rc ? (void *)(uintptr_t)-1 : r);
	return WEFT_READY;
}

/*
 * max_blocking_threads = 2 bounds the spares too: 8 tasks block in place
 * for 30 ms each on 2 workers; at most 2 spare threads ever exist, the
 * calls that find none run fn holding their core (counted), and every one
 * returns fn's result. A blocking job spawned meanwhile waits for the
 * pool, which has no room until a spare leaves (keep-alive 50 ms here).
 */
Test(block_in_place, spares_count_against_max_blocking_threads, .timeout = WT_TMO(60))
{
	atomic_store(&g_in_fn, 0);
	atomic_store(&g_max_in_fn, 0);
	struct weft_runtime *rt = rt_blocking(2, 50 * 1000000ull);
	enum { N = 8 };
	struct weft_task *t[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_spawn_poll(rt, slow_bip_poll, (void *)(uintptr_t)(i + 1), NULL,
					     &t[i]), 0);
	uint64_t max_spares = 0;
	for (int k = 0; k < 20; k++) {
		struct weft_metrics *m = wt_metrics(rt);
		if (m->block_in_place_threads > max_spares)
			max_spares = m->block_in_place_threads;
		cr_assert_leq(m->block_in_place_threads + m->blocking_threads, 2);
		weft_metrics_free(m);
		wt_sleep_ms(5);
	}
	for (int i = 0; i < N; i++) {
		void *r;
		cr_assert_eq(weft_join(t[i], &r), 0);
		cr_assert_eq((uintptr_t)r, (uintptr_t)(i + 1));
	}
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_leq(m->block_in_place_threads_started, 2);
	cr_assert_geq(max_spares, 1);
	cr_assert_gt(m->block_in_place_inline, 0, "8 calls on 2 workers with 2 spares all handed off?");
	cr_assert_eq(m->block_in_place_count + m->block_in_place_inline, N);
	weft_metrics_free(m);
	/* the spares leave after keep-alive; the pool gets its room back */
	struct weft_task *j;
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &j), 0);
	void *r;
	cr_assert_eq(weft_join_timeout(j, &r, 5000000000ull * WEFT_TEST_SLOW), 0);
	cr_assert_eq((uintptr_t)r, 2);
	wt_rt_destroy(rt);
}

/*
 * A core's first thread can end up a spare (its core taken by a thread
 * started as one) and leave after keep-alive: the spare count must drop
 * then too. max_blocking_threads = 1, 1 worker: a 20 ms block_in_place
 * hands the core over for good; 30 ms keep-alive later no spare is left,
 * and the pool can start its one thread. Before, only threads started as
 * spares were counted out: the count stayed 1, the cap stayed full and the
 * blocking job never ran (the join timed out).
 */
Test(block_in_place, first_thread_leaving_as_spare_is_counted_out, .timeout = WT_TMO(30))
{
	atomic_store(&g_in_fn, 0);
	atomic_store(&g_max_in_fn, 0);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1,
		  .blocking_keep_alive_ns = 30 * 1000000ull);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, slow_bip_poll, (void *)(uintptr_t)5, NULL, &t), 0);
	void *r;
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((uintptr_t)r, 5);
	struct weft_metrics *m;
	cr_assert(WT_METRICS_UNTIL(rt, m, m->block_in_place_threads == 0, WT_LONG_MS),
		  "a spare is still counted after every spare thread left");
	cr_assert_eq(m->block_in_place_threads_started, 1);
	weft_metrics_free(m);
	struct weft_task *j;
	cr_assert_eq(weft_spawn_blocking(rt, sleepy_job, (void *)(uintptr_t)1, &j), 0);
	int rc = weft_join_timeout(j, &r, 3000000000ull * WEFT_TEST_SLOW);
	cr_assert_eq(rc, 0, "blocking job: %s (the pool had no room)", weft_strerror(rc));
	cr_assert_eq((uintptr_t)r, 2);
	wt_rt_destroy(rt);
}

/* ------------------------------------- block_in_place from the start hook */

static atomic_int g_hook_bip_calls, g_hook_bip_ok;

static void *hook_blocking_fn(void *arg)
{
	wt_sleep_ms(10);
	return (void *)11;
}

/* The first worker thread to start blocks in place inside the hook. */
static void start_hook_blocks_in_place(void *arg, unsigned w)
{
	if (atomic_fetch_add(&g_hook_bip_calls, 1) != 0)
		return;
	void *r = NULL;
	int rc = weft_block_in_place(hook_blocking_fn, NULL, &r);
	atomic_store(&g_hook_bip_ok, rc == 0 && r == (void *)11);
}

/*
 * The hook runs on the worker thread before it drives its core. Before the
 * fix the core was already installed, block_in_place handed it to a new
 * thread, and the hook's thread went on into the loop anyway: two threads
 * drove one core, both parked it, the idle count underflowed and nothing
 * was ever woken again (issue 13, item 2).
 */
Test(block_in_place, from_the_thread_start_hook, .timeout = WT_TMO(60))
{
	atomic_store(&g_hook_bip_calls, 0);
	atomic_store(&g_hook_bip_ok, 0);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1,
		  .on_thread_start = start_hook_blocks_in_place);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_hook_bip_ok), WT_LONG_MS),
		  "block_in_place in the start hook did not return fn's result");
	for (int round = 0; round < 3; round++) {
		wt_sleep_ms(30); /* every thread that drives the core parks */
		enum { N = 200 };
		struct weft_task *t[N];
		for (int i = 0; i < N; i++)
			cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, NULL, NULL, &t[i]), 0);
		for (int i = 0; i < N; i++) {
			int rc = weft_join_timeout(t[i], NULL, 2000000000ull * WEFT_TEST_SLOW);
			cr_assert_eq(rc, 0, "round %d task %d: join = %d (%s): the runtime stalled",
				     round, i, rc, weft_strerror(rc));
		}
	}
	wt_rt_destroy(rt);
}

/* ------------------------------ blocking calls inside block_in_place */

#include <sys/syscall.h>
#include <weft/sync.h>
#include <weft/time.h>

struct inside {
	struct weft_runtime *rt;
	struct weft_chan *ch;
	struct weft_task *_Atomic self;           /* the blocking task's own handle */
	int spawn_rc, join_rc, sleep_rc, fiber_rc, recv_rc, block_on_rc, yield_rc, self_join_rc;
	int nested_self_join_rc;                  /* the same from a weft_block_on fn inside */
	uintptr_t joined, received, block_on_r;
	long tid_before, tid_after;
};

static enum weft_poll result_poll(void *state, struct weft_cx *cx)
{
	weft_cx_set_result(cx, state);
	return WEFT_READY;
}

static void *send_later(void *arg)
{
	weft_sleep_ns(2000000);
	int v = 33;
	weft_chan_send(arg, &v);
	return NULL;
}

static void *echo(void *arg) { return arg; }

/* fn of a weft_block_on inside block_in_place's fn: still the task's code */
static void *nested_self_join(void *arg)
{
	struct inside *in = arg;
	in->nested_self_join_rc = weft_join_timeout(atomic_load(&in->self), NULL, 2000000000ull);
	return NULL;
}

/* fn of block_in_place: every kind of blocking weft call. */
static void *blocking_calls(void *arg)
{
	struct inside *in = arg;
	in->tid_before = syscall(SYS_gettid);
	struct weft_task *t;
	void *r = NULL;
	in->spawn_rc = weft_spawn_poll(in->rt, result_poll, (void *)21, NULL, &t);
	in->join_rc = in->spawn_rc ? in->spawn_rc : weft_join(t, &r);
	if (in->join_rc == -EDEADLK)
		weft_detach(t);
	in->joined = (uintptr_t)r;
	in->sleep_rc = weft_sleep_ns(1000000);
	in->fiber_rc = weft_spawn(in->rt, send_later, in->ch, NULL);
	int v = 0;
	in->recv_rc = weft_chan_recv(in->ch, &v);
	in->received = (uintptr_t)v;
	r = NULL;
	in->block_on_rc = weft_block_on(in->rt, echo, (void *)5, &r);
	in->block_on_r = (uintptr_t)r;
	in->yield_rc = weft_yield();
	/* joining its own task would wait forever: refused, handle kept */
	while (!atomic_load(&in->self))
		usleep(100);
	in->self_join_rc = weft_join_timeout(atomic_load(&in->self), NULL, 2000000000ull);
	/* and from a weft_block_on fn in fn: it waited out its timeout */
	if (weft_block_on(in->rt, nested_self_join, in, NULL))
		in->nested_self_join_rc = 1;
	in->tid_after = syscall(SYS_gettid);
	return (void *)7;
}

static enum weft_poll bip_calls_poll(void *state, struct weft_cx *cx)
{
	void *r = NULL;
	if (weft_block_in_place(blocking_calls, state, &r) == 0)
		weft_cx_set_result(cx, r);
	return WEFT_READY;
}

static void *bip_calls_fiber(void *arg)
{
	void *r = NULL;
	weft_block_in_place(blocking_calls, arg, &r);
	weft_yield(); /* and the fiber goes on as a fiber */
	return r;
}

/*
 * Inside block_in_place the thread has given its core away, so weft's
 * blocking calls block it like any thread outside the runtime. Before the
 * fix they tested "is a worker thread" instead of "holds a core" and all
 * returned -EDEADLK (issue 13, item 3); from a fiber they suspended it
 * instead, so fn went on on another thread. One worker: only the thread
 * that took over the core can run what fn waits for.
 */
/* Round 0 a poll task, round 1 a fiber, calling block_in_place with the
 * calls above in fn; returns what the task returned. */
static void *run_inside(struct weft_runtime *rt, int round, struct inside *in)
{
	*in = (struct inside){ .rt = rt };
	cr_assert_eq(weft_chan_create(sizeof(int), 1, &in->ch), 0);
	struct weft_task *b;
	if (round == 0)
		cr_assert_eq(weft_spawn_poll(rt, bip_calls_poll, in, NULL, &b), 0);
	else
		cr_assert_eq(weft_spawn(rt, bip_calls_fiber, in, &b), 0);
	atomic_store(&in->self, b);
	void *r = NULL;
	cr_assert_eq(weft_join_timeout(b, &r, 10000000000ull * WEFT_TEST_SLOW), 0);
	return r;
}

/* Every call in fn did what a plain thread's would; `all`: also the
 * fiber spawn and the yield (checked on the hand-off path). */
static void check_inside(const struct inside *in, void *r, const char *who, bool all)
{
	cr_assert_eq((uintptr_t)r, 7, "%s: block_in_place did not return fn's result", who);
	cr_assert_eq(in->spawn_rc, 0, "%s: spawn = %d", who, in->spawn_rc);
	cr_assert_eq(in->join_rc, 0, "%s: join = %d (%s)", who, in->join_rc,
		     weft_strerror(in->join_rc));
	cr_assert_eq(in->joined, 21);
	cr_assert_eq(in->sleep_rc, 0, "%s: sleep = %d (%s)", who, in->sleep_rc,
		     weft_strerror(in->sleep_rc));
	if (all)
		cr_assert_eq(in->fiber_rc, 0);
	cr_assert_eq(in->recv_rc, 0, "%s: chan_recv = %d (%s)", who, in->recv_rc,
		     weft_strerror(in->recv_rc));
	cr_assert_eq(in->received, 33);
	cr_assert_eq(in->block_on_rc, 0, "%s: block_on = %d (%s)", who, in->block_on_rc,
		     weft_strerror(in->block_on_rc));
	cr_assert_eq(in->block_on_r, 5);
	if (all)
		cr_assert_eq(in->yield_rc, 0, "%s: yield = %d", who, in->yield_rc);
	cr_assert_eq(in->self_join_rc, -EDEADLK, "%s: joining its own task = %d (%s)", who,
		     in->self_join_rc, weft_strerror(in->self_join_rc));
	cr_assert_eq(in->nested_self_join_rc, -EDEADLK,
		     "%s: joining its own task from a block_on fn = %d (%s)", who,
		     in->nested_self_join_rc, weft_strerror(in->nested_self_join_rc));
	cr_assert_eq(in->tid_before, in->tid_after, "%s: fn moved to another thread in the middle",
		     who);
	cr_assert_eq(weft_chan_destroy(in->ch), 0);
}

Test(block_in_place, blocking_calls_work_inside, .timeout = WT_TMO(60))
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(1);
		struct inside in;
		void *r = run_inside(rt, round, &in);
		check_inside(&in, r, round == 0 ? "poll task" : "fiber", true);
		wt_rt_destroy(rt);
	}
}

static atomic_int g_room_release;

static void *hold_the_room(void *arg)
{
	while (!atomic_load(&g_room_release))
		usleep(1000);
	return arg;
}

/*
 * The same calls when no spare can be had (max_blocking_threads taken by a
 * pool job): fn runs while the thread keeps its core, and weft.h promises
 * the same - weft's blocking calls block the thread, fn runs on it from
 * start to end. Before the fix the core stayed in the context while fn
 * ran: from a poll task the join and the sleep failed with -EDEADLK; from
 * a fiber they suspended the fiber, and fn went on on another worker. Two
 * workers: what fn waits for runs on the other one.
 */
Test(block_in_place, blocking_calls_work_inside_an_inline_call, .timeout = WT_TMO(60))
{
	for (int round = 0; round < 2; round++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .max_blocking_threads = 1);
		struct weft_runtime *rt;
		cr_assert_eq(weft_runtime_create(&o, &rt), 0);
		atomic_store(&g_room_release, 0);
		struct weft_task *hog;
		cr_assert_eq(weft_spawn_blocking(rt, hold_the_room, NULL, &hog), 0);
		struct weft_metrics *m;
		WT_METRICS_UNTIL(rt, m, m->blocking_threads == 1, WT_LONG_MS);
		weft_metrics_free(m);
		struct inside in;
		void *r = run_inside(rt, round, &in);
		const char *who = round == 0 ? "poll task" : "fiber";
		m = wt_metrics(rt);
		uint64_t inl = m->block_in_place_inline;
		weft_metrics_free(m);
		cr_assert_eq(inl, 1, "%s: the call was not inline", who);
		check_inside(&in, r, who, false);
		atomic_store(&g_room_release, 1);
		cr_assert_eq(weft_join(hog, NULL), 0);
		wt_rt_destroy(rt);
	}
}

/*
 * A fiber cancelled - by weft_abort (round 0), by shutdown (round 1) -
 * while its weft_block_in_place fn waits in a blocking form of
 * weft/sync.h: the wait returns -ECANCELED, as the fiber's own would
 * (sync.h, weft_spawn), and the fiber unwinds. Found by a review: the
 * fn's weft_chan_recv parked its thread until something was sent, so the
 * aborted fiber never ended and shutdown said -ETIMEDOUT.
 */
struct bip_sync { struct weft_chan *ch; atomic_int started, rc; };

static void *bip_sync_fn(void *arg)
{
	struct bip_sync *b = arg;
	uint64_t v;
	atomic_store(&b->started, 1);
	atomic_store(&b->rc, weft_chan_recv(b->ch, &v));
	return NULL;
}

static void *bip_sync_fiber(void *arg)
{
	weft_block_in_place(bip_sync_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, a_sync_wait_inside_a_cancelled_fibers_fn_ends, .timeout = WT_TMO(30))
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(2);
		struct bip_sync b = { .rc = 1 };
		cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &b.ch), 0);
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, bip_sync_fiber, &b, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
		usleep(20000); /* parked in the receive */
		int src = 0;
		if (round == 0)
			cr_assert_eq(weft_abort(h), 0);
		else
			src = weft_runtime_shutdown(rt, 2000000000ull * WEFT_TEST_SLOW);
		bool ended = WT_WAIT_UNTIL(atomic_load(&b.rc) != 1, 2000);
		if (!ended) /* let the fiber go, so that the test can end */
			weft_chan_close(b.ch);
		int jrc = weft_join(h, NULL);
		/* shutdown: a fiber still in its first poll is not marked
		 * cancelled (never pending, it is not on shutdown's list): it
		 * returns as it likes once its wait said -ECANCELED */
		cr_assert(jrc == -EINTR || (round == 1 && jrc == 0), "round %d: join = %d", round,
			  jrc);
		cr_assert(ended, "round %d: the receive in the fiber's fn still waits", round);
		cr_assert_eq(atomic_load(&b.rc), -ECANCELED, "round %d: the receive said %d", round,
			     atomic_load(&b.rc));
		cr_assert_eq(src, 0, "shutdown = %d (%s)", src, weft_strerror(src));
		wt_rt_destroy(rt);
		cr_assert_eq(weft_chan_destroy(b.ch), 0);
	}
}

/*
 * The same for a weft_join in the fn (round 0: weft_abort of the fiber,
 * round 1: shutdown): it returns -ECANCELED, the handle stays valid, and
 * the fiber unwinds - as weft_join_timeout in the fn already did. Found by
 * a review: the fn's weft_join parked its thread until the joined task
 * ended, so the aborted fiber went on waiting and shutdown said
 * -ETIMEDOUT (destroy, without a limit, hung for good).
 */
struct bip_join {
	struct weft_task *job;
	atomic_int started, release, rc;
	atomic_int shut_rc;
	struct weft_runtime *rt;
};

static void *bip_join_job(void *arg)
{
	struct bip_join *b = arg;
	while (!atomic_load(&b->release))
		usleep(1000);
	return (void *)42;
}

static void *bip_join_fn(void *arg)
{
	struct bip_join *b = arg;
	atomic_store(&b->started, 1);
	atomic_store(&b->rc, weft_join(b->job, NULL));
	return NULL;
}

static void *bip_join_fiber(void *arg)
{
	weft_block_in_place(bip_join_fn, arg, NULL);
	return NULL;
}

static void *bip_join_shutdown(void *arg)
{
	struct bip_join *b = arg;
	atomic_store(&b->shut_rc, weft_runtime_shutdown(b->rt, 2000000000ull * WEFT_TEST_SLOW));
	return NULL;
}

/* Both rounds (abort, then shutdown) of a fiber whose fn joins b.job:
 * the join ends with -ECANCELED. `where` names the join in messages. */
static void bip_join_rounds(void *(*fiber)(void *), const char *where)
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(2);
		struct bip_join b = { .rc = 1, .shut_rc = 1, .rt = rt };
		cr_assert_eq(weft_spawn_blocking(rt, bip_join_job, &b, &b.job), 0);
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, fiber, &b, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
		usleep(20000); /* parked in the join */
		pthread_t shut;
		if (round == 0)
			cr_assert_eq(weft_abort(h), 0);
		else
			cr_assert_eq(pthread_create(&shut, NULL, bip_join_shutdown, &b), 0);
		bool ended = WT_WAIT_UNTIL(atomic_load(&b.rc) != 1, 2000);
		/* the job ends either way, so that the join (or the shutdown's
		 * wait for the pool) can end and the test with it */
		atomic_store(&b.release, 1);
		if (round == 1)
			pthread_join(shut, NULL);
		int jrc = weft_join(h, NULL);
		int rc = atomic_load(&b.rc);
		if (rc != 0) /* not consumed by the fn's join */
			cr_assert_eq(weft_join(b.job, NULL), 0);
		cr_assert(jrc == -EINTR || (round == 1 && jrc == 0), "round %d: join = %d", round,
			  jrc);
		cr_assert(ended, "round %d: the join in %s still waits", round, where);
		cr_assert_eq(rc, -ECANCELED, "round %d: the join said %d", round, rc);
		if (round == 1)
			cr_assert_eq(atomic_load(&b.shut_rc), 0, "shutdown = %d",
				     atomic_load(&b.shut_rc));
		wt_rt_destroy(rt);
	}
}

Test(block_in_place, a_join_inside_a_cancelled_fibers_fn_ends, .timeout = WT_TMO(30))
{
	bip_join_rounds(bip_join_fiber, "the fiber's fn");
}

/*
 * The same one call deeper: the fn runs weft_block_on (allowed inside
 * weft_block_in_place, weft.h) and the join is in the block_on's fn. That
 * fn is still the fiber's code on the fiber's thread, so the join ends
 * with -ECANCELED once the fiber is aborted or its runtime shuts down.
 * Before, block_on's context dropped the fiber: the join parked until the
 * joined task ended, the aborted fiber could not unwind, and shutdown
 * said -ETIMEDOUT (destroy hung for good).
 */
static void *bip_bo_join(void *arg)
{
	struct bip_join *b = arg;
	atomic_store(&b->started, 1);
	atomic_store(&b->rc, weft_join(b->job, NULL));
	return NULL;
}

static void *bip_bo_fn(void *arg)
{
	struct bip_join *b = arg;
	int rc = weft_block_on(b->rt, bip_bo_join, arg, NULL);
	if (rc)
		atomic_store(&b->rc, rc + 1000);
	return NULL;
}

static void *bip_bo_fiber(void *arg)
{
	weft_block_in_place(bip_bo_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, a_join_in_a_block_on_inside_a_cancelled_fibers_fn_ends, .timeout = WT_TMO(30))
{
	bip_join_rounds(bip_bo_fiber, "the block_on's fn");
}

/*
 * The same for a sleep in the fn (round 0: weft_abort of the fiber, round
 * 1: shutdown): weft_sleep_ns returns -ECANCELED, as time.h says for a
 * cancelled fiber, and the fiber unwinds. Found by a review: the fn's
 * sleep was a clock_nanosleep nothing could end, so an aborted fiber
 * slept on and shutdown said -ETIMEDOUT.
 */
struct bip_sleep { struct weft_runtime *rt; atomic_int started, rc, shut_rc; };

static void *bip_sleep_fn(void *arg)
{
	struct bip_sleep *b = arg;
	atomic_store(&b->started, 1);
	atomic_store(&b->rc, weft_sleep_ns(5000000000ull));
	return NULL;
}

static void *bip_sleep_fiber(void *arg)
{
	weft_block_in_place(bip_sleep_fn, arg, NULL);
	return NULL;
}

static void *bip_sleep_shutdown(void *arg)
{
	struct bip_sleep *b = arg;
	atomic_store(&b->shut_rc, weft_runtime_shutdown(b->rt, 2000000000ull * WEFT_TEST_SLOW));
	return NULL;
}

/* Round 0 aborts the fiber, round 1 shuts its runtime down from a thread:
 * either way the call its weft_block_in_place fn loops on (`what`) says
 * -ECANCELED, and the fiber unwinds. */
static void cancel_in_fn_rounds(void *(*fiber)(void *), const char *what)
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(2);
		struct bip_sleep b = { .rt = rt, .rc = 1, .shut_rc = 1 };
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, fiber, &b, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
		usleep(20000); /* in its loop */
		cr_assert_eq(atomic_load(&b.rc), 1, "the %s said %d before any cancel", what,
			     atomic_load(&b.rc));
		pthread_t shut;
		if (round == 0)
			cr_assert_eq(weft_abort(h), 0);
		else
			cr_assert_eq(pthread_create(&shut, NULL, bip_sleep_shutdown, &b), 0);
		bool ended = WT_WAIT_UNTIL(atomic_load(&b.rc) != 1, 1000);
		if (round == 1)
			pthread_join(shut, NULL);
		int jrc = weft_join(h, NULL);
		cr_assert(jrc == -EINTR || (round == 1 && jrc == 0), "round %d: join = %d", round,
			  jrc);
		cr_assert(ended, "round %d: the %s in the fiber's fn goes on", round, what);
		cr_assert_eq(atomic_load(&b.rc), -ECANCELED, "round %d: the %s said %d", round, what,
			     atomic_load(&b.rc));
		if (round == 1)
			cr_assert_eq(atomic_load(&b.shut_rc), 0, "shutdown = %d",
				     atomic_load(&b.shut_rc));
		wt_rt_destroy(rt);
	}
}

Test(block_in_place, a_sleep_inside_a_cancelled_fibers_fn_ends, .timeout = WT_TMO(30))
{
	cancel_in_fn_rounds(bip_sleep_fiber, "sleep");
}

/*
 * A sleep the fn begins once its fiber's runtime has begun to shut down,
 * the fiber still in its first poll (so not on the list shutdown cancels;
 * weft_yield in the fn already says -ECANCELED, and the fiber's own sleep
 * would at once): weft.h says it returns -ECANCELED. The thread form
 * looked at the close only after a 10 ms slice: a shorter sleep slept out
 * and said 0, a longer one said -ECANCELED 10 ms in (found by a review).
 */
static void *bip_late_sleep_fn(void *arg)
{
	struct bip_sleep *b = arg;
	atomic_store(&b->started, 1);
	while (weft_yield() == 0) /* until the shutdown has begun */
		usleep(1000);
	atomic_store(&b->rc, weft_sleep_ns(5000000ull));
	return NULL;
}

static void *bip_late_sleep_fiber(void *arg)
{
	weft_block_in_place(bip_late_sleep_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, a_sleep_begun_in_a_fibers_fn_after_shutdown_began_is_cancelled,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct bip_sleep b = { .rt = rt, .rc = 1, .shut_rc = 1 };
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, bip_late_sleep_fiber, &b, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
	cr_assert_eq(weft_runtime_shutdown(rt, 5000000000ull * WEFT_TEST_SLOW), 0);
	int jrc = weft_join(h, NULL);
	cr_assert(jrc == 0 || jrc == -EINTR, "join = %d", jrc);
	cr_assert_eq(atomic_load(&b.rc), -ECANCELED, "the sleep begun after the close said %d",
		     atomic_load(&b.rc));
	wt_rt_destroy(rt);
}

/*
 * The same for the fn's other waits begun after the close: a sync.h wait
 * that would not have to wait (the lock of a free mutex), waits with a
 * time limit under the 10 ms slice (a semaphore with no permit, an empty
 * channel, weft_join_timeout of a job still running) and a lock in a loop
 * that retries on -ETIMEDOUT. weft.h has them say -ECANCELED, the fn's
 * waits counting the shutdown as cancellation from its start (sync.h,
 * weft_chan_create_unbounded). The thread form looked at the close only
 * a slice in: the free mutex was taken (0), the short waits said
 * -ETIMEDOUT, and the retry loop went on for good, holding the shutdown
 * (found by a review). Its I/O waits still say -ESHUTDOWN
 * (test_io_api: io_copy/waits_in_block_in_place_end_at_shutdown).
 */
enum { LW_FREE_LOCK, LW_SEM, LW_RECV, LW_JOIN, LW_RETRY, LW_COUNT };
struct bip_late_waits {
	struct weft_io *io;             /* nothing to read */
	int read_rc, sel_rc;
	unsigned sel_mask;
	struct weft_mutex *free, *held;
	struct weft_sem *sem;
	struct weft_chan *ch;
	struct weft_task *job;
	atomic_int started, release, done;
	int rc[LW_COUNT];
	long retries;
};

static void *bip_late_job(void *arg)
{
	struct bip_late_waits *b = arg;
	while (!atomic_load(&b->release))
		usleep(1000);
	return NULL;
}

static void *bip_late_waits_fn(void *arg)
{
	struct bip_late_waits *b = arg;
	const uint64_t ms = 1000000;
	atomic_store(&b->started, 1);
	while (weft_yield() == 0) /* until the shutdown has begun */
		usleep(1000);
	b->rc[LW_FREE_LOCK] = weft_mutex_lock(b->free);
	if (b->rc[LW_FREE_LOCK] == 0)
		weft_mutex_unlock(b->free);
	b->rc[LW_SEM] = weft_sem_acquire_n_timeout(b->sem, 1, 2 * ms);
	uint64_t v;
	b->rc[LW_RECV] = weft_chan_recv_timeout(b->ch, &v, 2 * ms);
	b->rc[LW_JOIN] = weft_join_timeout(b->job, NULL, 2 * ms);
	/* capped, so that the old code's loop ends and the test with it */
	uint64_t cap = wt_now_ns() + 3000 * ms * WEFT_TEST_SLOW;
	while ((b->rc[LW_RETRY] = weft_mutex_lock_timeout(b->held, 2 * ms)) == -ETIMEDOUT &&
	       wt_now_ns() < cap)
		b->retries++;
	if (b->rc[LW_RETRY] == 0)
		weft_mutex_unlock(b->held);
	/* I/O waits: ended by the shutdown, -ESHUTDOWN, not cancelled */
	char c;
	b->read_rc = (int)weft_read(b->io, &c, 1);
	struct weft_select_arm arms[] = { WEFT_SEL_READY(b->io, WEFT_IO_READABLE) };
	b->sel_rc = weft_select_timeout(arms, 1, 1000 * ms);
	b->sel_mask = arms[0].io_ready.mask;
	atomic_store(&b->done, 1);
	return NULL;
}

static void *bip_late_waits_fiber(void *arg)
{
	weft_block_in_place(bip_late_waits_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, waits_begun_in_a_fibers_fn_after_shutdown_began_are_cancelled,
     .timeout = WT_TMO(30))
{
	static const char *const what[LW_COUNT] = {
		"lock of a free mutex", "2 ms semaphore acquire", "2 ms channel receive",
		"2 ms weft_join_timeout", "2 ms lock retried on -ETIMEDOUT",
	};
	struct weft_runtime *rt = wt_rt_create(2);
	struct bip_late_waits b = { .read_rc = 1, .sel_rc = 1 };
	for (int i = 0; i < LW_COUNT; i++)
		b.rc[i] = 1;
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(weft_io_register(rt, sv[0], &b.io), 0);
	cr_assert_eq(weft_mutex_create(&b.free), 0);
	cr_assert_eq(weft_mutex_create(&b.held), 0);
	cr_assert_eq(weft_mutex_lock(b.held), 0); /* this thread's */
	cr_assert_eq(weft_sem_create(0, &b.sem), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &b.ch), 0);
	cr_assert_eq(weft_spawn_blocking(rt, bip_late_job, &b, &b.job), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, bip_late_waits_fiber, &b, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
	int src = weft_runtime_shutdown(rt, 2000000000ull * WEFT_TEST_SLOW);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.done), WT_LONG_MS));
	atomic_store(&b.release, 1); /* the job ends: the pool's wait with it */
	if (src)
		src = weft_runtime_shutdown(rt, WEFT_FOREVER);
	int jrc = weft_join(h, NULL);
	cr_assert(jrc == 0 || jrc == -EINTR, "join = %d", jrc);
	if (b.rc[LW_JOIN] != 0)
		cr_assert_eq(weft_join(b.job, NULL), 0);
	for (int i = 0; i < LW_COUNT; i++)
		cr_expect_eq(b.rc[i], -ECANCELED, "the %s begun after the close said %d (%s)",
			     what[i], b.rc[i], weft_strerror(b.rc[i]));
	cr_expect_eq(b.retries, 0, "the retried lock timed out %ld times", b.retries);
	cr_expect_eq(b.read_rc, -ESHUTDOWN, "the read said %d", b.read_rc);
	cr_expect(b.sel_rc == 0 && (b.sel_mask & WEFT_IO_SHUTDOWN),
		  "the select of a READY arm said %d, mask %#x", b.sel_rc, b.sel_mask);
	weft_io_close(b.io);
	close(sv[1]);
	weft_mutex_unlock(b.held);
	wt_rt_destroy(rt);
	cr_assert_eq(weft_mutex_destroy(b.free), 0);
	cr_assert_eq(weft_mutex_destroy(b.held), 0);
	cr_assert_eq(weft_sem_destroy(b.sem), 0);
	cr_assert_eq(weft_chan_destroy(b.ch), 0);
}

/*
 * A fiber aborted during the last stretch (under the 10 ms slice) of a
 * timed wait in its fn: weft.h promises -ECANCELED. That stretch was
 * parked in one go, which the abort does not wake, and the wait said
 * -ETIMEDOUT at its deadline (found by a review). The wait is a 9 ms
 * lock of a mutex this thread holds, all of it that last stretch; the
 * abort comes ~5 ms in. Only
 * rounds whose weft_abort returned before the wait's deadline count (a
 * loaded machine may abort later: -ETIMEDOUT is right then).
 */
struct bip_last {
	struct weft_mutex *held;        /* by the test thread */
	atomic_int started, rc;
	_Atomic uint64_t deadline;
};

static void *bip_last_fn(void *arg)
{
	struct bip_last *b = arg;
	/* before the wait's own deadline, which it computes later */
	atomic_store(&b->deadline, wt_now_ns() + 9000000ull);
	atomic_store(&b->started, 1);
	atomic_store(&b->rc, weft_mutex_lock_timeout(b->held, 9000000ull));
	return NULL;
}

static void *bip_last_fiber(void *arg)
{
	weft_block_in_place(bip_last_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, an_abort_in_the_last_slice_of_a_timed_wait_in_a_fibers_fn_cancels,
     .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_mutex_lock(m), 0); /* this thread's */
	int counted = 0;
	for (int round = 0; round < 40 && counted < 5; round++) {
		struct bip_last b = { .held = m, .rc = 1 };
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, bip_last_fiber, &b, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&b.started), WT_LONG_MS));
		uint64_t dl = atomic_load(&b.deadline);
		uint64_t now = wt_now_ns();
		if (dl - 4000000ull > now)
			usleep((useconds_t)((dl - 4000000ull - now) / 1000));
		cr_assert_eq(weft_abort(h), 0);
		bool in_time = wt_now_ns() < dl;
		cr_assert(WT_WAIT_UNTIL(atomic_load(&b.rc) != 1, WT_LONG_MS));
		int jrc = weft_join(h, NULL);
		/* 0: the abort came after the fiber had returned, which a
		 * late one may (its wait timed out first) */
		cr_assert(jrc == -EINTR || jrc == -ECANCELED || (jrc == 0 && !in_time),
			  "round %d: join = %d (abort in time: %d)", round, jrc, in_time);
		if (!in_time)
			continue;
		counted++;
		cr_assert_eq(atomic_load(&b.rc), -ECANCELED,
			     "round %d: the lock aborted before its deadline said %d (%s)", round,
			     atomic_load(&b.rc), weft_strerror(atomic_load(&b.rc)));
	}
	cr_assert_gt(counted, 0, "no abort came before the wait's deadline");
	weft_mutex_unlock(m);
	wt_rt_destroy(rt);
	cr_assert_eq(weft_mutex_destroy(m), 0);
}

/*
 * The same for a loop of weft_yield in the fn, which a cancelled fiber's
 * code ends on -ECANCELED (weft.h: weft_yield says so in a cancelled
 * fiber, and in a discarded fiber's dtors): the fn is the fiber's code.
 * Before, its yield was a plain thread's sched_yield and said 0 for good
 * (found by a review): the aborted fiber never unwound, and shutdown held
 * on to -ETIMEDOUT while the fn spun (capped here at 3 s).
 */
static void *bip_yield_fn(void *arg)
{
	struct bip_sleep *b = arg;
	atomic_store(&b->started, 1);
	uint64_t cap = wt_now_ns() + 3000000000ull * WEFT_TEST_SLOW;
	int rc;
	while ((rc = weft_yield()) == 0 && wt_now_ns() < cap)
		;
	atomic_store(&b->rc, rc);
	return NULL;
}

static void *bip_yield_fiber(void *arg)
{
	weft_block_in_place(bip_yield_fn, arg, NULL);
	return NULL;
}

Test(block_in_place, a_yield_loop_inside_a_cancelled_fibers_fn_ends, .timeout = WT_TMO(30))
{
	cancel_in_fn_rounds(bip_yield_fiber, "yield");
}

/*
 * A blocking-pool job blocked in weft_join on a poll task of its own
 * runtime that waits for good (nobody will wake it). Shutdown promises
 * such a task ends (-ECANCELED to its joiner), so the job's join returns
 * and the job with it: shutdown must not wait on the job for what only
 * shutdown itself can end.
 */
static enum weft_poll pending_forever(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_PENDING;
}

static atomic_int g_job_joining;

static void *job_joins(void *arg)
{
	atomic_store(&g_job_joining, 1);
	void *r = (void *)1;
	int rc = weft_join(arg, &r);
	return (void *)(intptr_t)rc;
}

Test(blocking, shutdown_ends_the_task_a_job_is_joining, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = rt_blocking(2, 0);
	atomic_store(&g_job_joining, 0);
	atomic_int drops = 0;
	struct weft_task *idle, *job;
	cr_assert_eq(weft_spawn_poll(rt, pending_forever, &drops, wt_drop_count, &idle), 0);
	cr_assert_eq(weft_spawn_blocking(rt, job_joins, idle, &job), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_job_joining), WT_LONG_MS));
	wt_sleep_ms(20); /* the job parks in its join */
	int rc = weft_runtime_shutdown(rt, 3000 * 1000000ull);
	cr_assert_eq(rc, 0, "shutdown = %d (%s): the job's join held it up", rc, weft_strerror(rc));
	cr_assert_eq(atomic_load(&drops), 1);
	void *r = NULL;
	cr_assert_eq(weft_join(job, &r), 0);
	cr_assert_eq((int)(intptr_t)r, -ECANCELED, "the job's join said %d", (int)(intptr_t)r);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
}

/*
 * The same from a poll task's weft_block_in_place fn: round 0 with a spare
 * taking the core (the hand-off), round 1 with none (max_blocking_threads
 * 1, taken by a job: fn runs holding the core's place, as a plain
 * blocking call). The waiting task is ended only by shutdown's sweep,
 * which comes after the workers stopped - and this worker thread stops
 * only when fn returns. fn's join now ends with -ECANCELED once the
 * workers are told to stop (within ~10 ms, the handle not consumed).
 * Before, shutdown said -ETIMEDOUT and destroy waited for good (a limit
 * listed by the twenty-eighth session).
 */
struct pip_join {
	struct weft_task *idle;
	atomic_int started, rc;
	atomic_int release; /* round 1: lets the pool's job go */
};

static void *pip_join_fn(void *arg)
{
	struct pip_join *j = arg;
	atomic_store(&j->started, 1);
	atomic_store(&j->rc, weft_join(j->idle, NULL));
	return NULL;
}

static enum weft_poll pip_join_poll(void *state, struct weft_cx *cx)
{
	(void)cx;
	weft_block_in_place(pip_join_fn, state, NULL);
	return WEFT_READY;
}

static void *hold_the_pool(void *arg)
{
	struct pip_join *j = arg;
	while (!atomic_load(&j->release))
		usleep(1000);
	return NULL;
}

Test(block_in_place, shutdown_ends_a_join_in_a_poll_tasks_fn, .timeout = WT_TMO(40))
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = rt_blocking(round == 0 ? 8 : 1, 0);
		struct pip_join j = { .rc = 1 };
		atomic_int drops = 0;
		struct weft_task *job = NULL, *p;
		if (round == 1)
			cr_assert_eq(weft_spawn_blocking(rt, hold_the_pool, &j, &job), 0);
		cr_assert_eq(weft_spawn_poll(rt, pending_forever, &drops, wt_drop_count, &j.idle), 0);
		cr_assert_eq(weft_spawn_poll(rt, pip_join_poll, &j, NULL, &p), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&j.started), WT_LONG_MS));
		wt_sleep_ms(20); /* fn parks in its join */
		if (round == 1)
			atomic_store(&j.release, 1); /* the pool's wait must not be what holds */
		int rc = weft_runtime_shutdown(rt, 3000 * 1000000ull);
		cr_assert_eq(rc, 0, "round %d: shutdown = %d (%s): the fn's join held it up", round,
			     rc, weft_strerror(rc));
		cr_assert_eq(atomic_load(&j.rc), -ECANCELED, "round %d: fn's join said %d", round,
			     atomic_load(&j.rc));
		cr_assert_eq(atomic_load(&drops), 1, "round %d: the waiting task's drop", round);
		struct weft_metrics *m;
		cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
		cr_assert_eq(m->block_in_place_inline, (uint64_t)round,
			     "round %d: fn ran %s", round, round ? "handed off" : "inline");
		weft_metrics_free(m);
		/* not consumed by fn's join: the test's own join takes it */
		cr_assert_eq(weft_join(j.idle, NULL), -ECANCELED);
		cr_assert_eq(weft_join(p, NULL), 0);
		if (job)
			cr_assert_eq(weft_join(job, NULL), 0);
		cr_assert_eq(weft_runtime_destroy(rt), 0);
	}
}

/* A poll task still in its poll when shutdown has stopped the other
 * workers calls weft_block_in_place (no hand-off then: fn runs on the
 * caller's thread). fn must still hold no core, as weft.h says of every
 * fn: a weft_block_on of another runtime runs (-EDEADLK only "from a task
 * on a worker thread ..., except inside weft_block_in_place") and a sleep
 * sleeps. Found by a review: that path ran fn with the core (and a
 * fiber's context) left in place, so both said -EDEADLK. */
struct bip_late {
	struct weft_runtime *rt2;
	struct weft_mutex *held;        /* by the test thread */
	atomic_int stops, started;
	atomic_int bo_rc, sleep_rc, lock_rc;
	long lock_tries;
	void *bo_result;
};

static void late_stop_hook(void *arg, unsigned worker)
{
	(void)worker;
	atomic_fetch_add(&((struct bip_late *)arg)->stops, 1);
}

static void *late_seven(void *arg)
{
	(void)arg;
	return (void *)7;
}

static void *late_fn(void *arg)
{
	struct bip_late *l = arg;
	atomic_store(&l->bo_rc, weft_block_on(l->rt2, late_seven, NULL, &l->bo_result));
	atomic_store(&l->sleep_rc, weft_sleep_ns(1000000ull));
	/* A wait begun now, in a loop that retries a short limit: it says
	 * -ECANCELED (weft.h: what it waits for may be ended only after
	 * this thread stopped). It said -ETIMEDOUT for good, and the loop
	 * held the shutdown (found by a review); capped for the old code. */
	uint64_t cap = wt_now_ns() + 3000000000ull * WEFT_TEST_SLOW;
	int rc;
	while ((rc = weft_mutex_lock_timeout(l->held, 2000000ull)) == -ETIMEDOUT &&
	       wt_now_ns() < cap)
		l->lock_tries++;
	atomic_store(&l->lock_rc, rc);
	return (void *)42;
}

static enum weft_poll late_bip_poll(void *state, struct weft_cx *cx)
{
	(void)cx;
	struct bip_late *l = state;
	atomic_store(&l->started, 1);
	/* the other worker's stop hook: shutdown has stopped the workers */
	uint64_t dl = wt_now_ns() + 20000 * 1000000ull;
	while (!atomic_load(&l->stops) && wt_now_ns() < dl)
		;
	void *r = NULL;
	cr_assert_eq(weft_block_in_place(late_fn, l, &r), 0);
	cr_assert_eq((uintptr_t)r, 42);
	return WEFT_READY;
}

Test(block_in_place, during_shutdown_fn_holds_no_core, .timeout = WT_TMO(60))
{
	struct bip_late l = { .bo_rc = 1, .sleep_rc = 1, .lock_rc = 1 };
	l.rt2 = wt_rt_create(1);
	cr_assert_eq(weft_mutex_create(&l.held), 0);
	cr_assert_eq(weft_mutex_lock(l.held), 0);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .on_thread_stop = late_stop_hook,
		  .hook_arg = &l);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert_eq(weft_spawn_poll(rt, late_bip_poll, &l, NULL, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&l.started), WT_LONG_MS));
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&l.stops), 2);
	cr_assert_eq(atomic_load(&l.bo_rc), 0, "block_on in fn said %d (%s)",
		     atomic_load(&l.bo_rc), weft_strerror(atomic_load(&l.bo_rc)));
	cr_assert_eq((uintptr_t)l.bo_result, 7);
	cr_assert_eq(atomic_load(&l.sleep_rc), 0, "sleep in fn said %d (%s)",
		     atomic_load(&l.sleep_rc), weft_strerror(atomic_load(&l.sleep_rc)));
	cr_assert_eq(atomic_load(&l.lock_rc), -ECANCELED,
		     "the 2 ms lock in fn said %d (%s) after %ld tries", atomic_load(&l.lock_rc),
		     weft_strerror(atomic_load(&l.lock_rc)), l.lock_tries);
	weft_mutex_unlock(l.held);
	cr_assert_eq(weft_mutex_destroy(l.held), 0);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
	wt_rt_destroy(l.rt2);
}
