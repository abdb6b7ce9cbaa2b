/*
 * test_stress.c - load and races, each ending in a conservation check.
 *
 * Every task carries its own index (the state pointer is index + 1) and its
 * drop increments that index's byte: at the end each byte must be exactly 1
 * (drop ran exactly once, for every task, whether it completed, was
 * cancelled, or was refused at spawn), and weft_runtime_destroy must return
 * 0 (no handle or waker leaked).
 *
 *  spawn_flat_W    1,000,000 tasks spawned from the test thread (W workers)
 *  spawn_tree_W    a binary tree of 2^20 - 1 tasks, each spawning its
 *                  children from inside its poll (LIFO slot, overflow, steal)
 *  spawn_chains    64 chains of tasks, each spawning its successor and
 *                  yielding once
 *  wake_storm_W    pending tasks woken over and over from 4 foreign threads
 *                  through waker clones: every wake causes at most one poll,
 *                  and the last wake is never lost
 *  blocked_worker_others_progress  a task blocking its worker does not
 *                  stop the other worker (stealing, notification)
 *  shutdown_pending      100,000 tasks pending or queued at shutdown: every
 *                        drop once, blocked joiners get -ECANCELED
 *  shutdown_vs_wakes     foreign threads keep waking while shutdown runs
 *  wake_pingpong_W foreign threads wake idle tasks one wake at a time: each
 *                  wake must cause exactly one poll (no loss, no coalescing)
 *  create_destroy_cycles 10,000 create/shutdown/destroy cycles
 *  spawn_vs_shutdown     spawner threads (and tasks spawning children) race
 *                        shutdown: every spawn is 0 or -ESHUTDOWN, never 0
 *                        after an -ESHUTDOWN, drops == attempts
 *
 * Workers {1, 2, 4, 8} on a 2-CPU machine: oversubscription is intended.
 * The sizes are those of the spec (1,000,000 tasks, 100,000 pending) or
 * larger (10,000 cycles instead of 1,000); each test takes well under 20 s
 * under ASan+UBSan on 2 cores, and the timeouts leave room for that.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <inttypes.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft/io.h>
#include <weft/time.h>

#define IDX(state) ((size_t)(uintptr_t)(state) - 1)
#define STATE(i) ((void *)(uintptr_t)((i) + 1))

/* Per-task conservation counters, reset by each test (each test runs in
 * its own process anyway). */
static atomic_uchar *drop_of;  /* drops per task */
static atomic_uchar *poll_of;  /* polls per task (saturating at 255 is fine) */
static atomic_long drops_total, polls_total, spawn_errors, dup_drops;

static void cons_init(size_t n)
{
	drop_of = calloc(n, sizeof *drop_of);
	poll_of = calloc(n, sizeof *poll_of);
	cr_assert(drop_of && poll_of);
	atomic_store(&drops_total, 0);
	atomic_store(&polls_total, 0);
	atomic_store(&spawn_errors, 0);
	atomic_store(&dup_drops, 0);
}

static void cons_fini(void)
{
	free(drop_of);
	free(poll_of);
	drop_of = poll_of = NULL;
}

static void cons_drop(void *state)
{
	size_t i = IDX(state);
	if (atomic_fetch_add_explicit(&drop_of[i], 1, memory_order_relaxed) != 0)
		atomic_fetch_add(&dup_drops, 1);
	atomic_fetch_add_explicit(&drops_total, 1, memory_order_release);
}

static void note_poll(void *state)
{
	size_t i = IDX(state);
	if (atomic_load_explicit(&drop_of[i], memory_order_relaxed))
		atomic_fetch_add(&spawn_errors, 1000000); /* polled after drop */
	atomic_fetch_add_explicit(&poll_of[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&polls_total, 1, memory_order_relaxed);
}

/* Every task i < n dropped exactly once; polled exactly `polls` times if
 * polls >= 0. */
static void cons_check(size_t n, int polls)
{
	cr_assert_eq(atomic_load(&dup_drops), 0, "%ld drops ran twice", atomic_load(&dup_drops));
	cr_assert_eq(atomic_load(&spawn_errors), 0, "spawn errors / polls after drop: %ld",
		     atomic_load(&spawn_errors));
	cr_assert_eq(atomic_load(&drops_total), (long)n, "drops %ld != tasks %zu",
		     atomic_load(&drops_total), n);
	for (size_t i = 0; i < n; i++) {
		unsigned d = atomic_load_explicit(&drop_of[i], memory_order_relaxed);
		cr_assert_eq(d, 1, "task %zu dropped %u times", i, d);
		if (polls >= 0) {
			unsigned p = atomic_load_explicit(&poll_of[i], memory_order_relaxed);
			cr_assert_eq(p, (unsigned)polls, "task %zu polled %u times, want %d", i, p, polls);
		}
	}
}

#define WAIT_DROPS(n, s)                                                           \
	cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&drops_total, memory_order_acquire) \
				== (long)(n), (s) * 1000),                         \
		  "only %ld of %ld tasks finished", atomic_load(&drops_total), (long)(n))

/* ------------------------------------------------------------ spawn_flat */

enum { FLAT_N = 1000000, FLAT_WINDOW = 100000 };

static enum weft_poll flat_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	return WEFT_READY;
}

static void spawn_flat(int workers)
{
	cons_init(FLAT_N);
	struct weft_runtime *rt = wt_rt_create(workers);
	uint64_t t0 = wt_now_ns();
	for (size_t i = 0; i < FLAT_N; i++) {
		/* bound the backlog (memory), not the contention */
		while ((long)i - atomic_load_explicit(&drops_total, memory_order_relaxed) > FLAT_WINDOW)
			sched_yield();
		int rc = weft_spawn_poll(rt, flat_poll, STATE(i), cons_drop, NULL);
		if (rc != 0)
			cr_assert_fail("spawn %zu = %d (%s)", i, rc, weft_strerror(rc));
	}
	WAIT_DROPS(FLAT_N, 50);
	cr_log_info("workers %d: %d tasks in %.2f s", workers, FLAT_N,
		    (double)(wt_now_ns() - t0) / 1e9);
	struct weft_metrics *m;
	WT_METRICS_UNTIL(rt, m, m->alive_tasks == 0 && WT_SUM_WORKERS(m, poll_count) >= FLAT_N, 2000);
	cr_assert_eq(m->spawned_tasks, FLAT_N);
	cr_assert_eq(m->alive_tasks, 0);
	cr_assert_geq(WT_SUM_WORKERS(m, poll_count), FLAT_N);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
	cons_check(FLAT_N, 1);
	cons_fini();
}

Test(stress, spawn_flat_1, .timeout = WT_TMO(60)) { spawn_flat(1); }
Test(stress, spawn_flat_2, .timeout = WT_TMO(60)) { spawn_flat(2); }
Test(stress, spawn_flat_4, .timeout = WT_TMO(60)) { spawn_flat(4); }
Test(stress, spawn_flat_8, .timeout = WT_TMO(60)) { spawn_flat(8); }

/* ------------------------------------------------------------ spawn_tree */

enum { TREE_N = (1 << 20) - 1 };

static enum weft_poll tree_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	size_t i = IDX(state);
	struct weft_runtime *rt = weft_cx_runtime(cx);
	for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < TREE_N; c++)
		if (weft_spawn_poll(rt, tree_poll, STATE(c), cons_drop, NULL) != 0)
			atomic_fetch_add(&spawn_errors, 1);
	return WEFT_READY;
}

static void spawn_tree(int workers)
{
	cons_init(TREE_N);
	struct weft_runtime *rt = wt_rt_create(workers);
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_spawn_poll(rt, tree_poll, STATE(0), cons_drop, NULL), 0);
	WAIT_DROPS(TREE_N, 50);
	cr_log_info("workers %d: tree of %d tasks in %.2f s", workers, TREE_N,
		    (double)(wt_now_ns() - t0) / 1e9);
	struct weft_metrics *m;
	WT_METRICS_UNTIL(rt, m, m->alive_tasks == 0 && WT_SUM_WORKERS(m, poll_count) >= TREE_N, 2000);
	cr_assert_eq(m->spawned_tasks, TREE_N);
	cr_assert_geq(WT_SUM_WORKERS(m, poll_count), TREE_N);
	cr_assert_eq(m->alive_tasks, 0);
	if (workers > 1)
		cr_log_info("steals %llu, overflows %llu",
			    (unsigned long long)WT_SUM_WORKERS(m, steal_count),
			    (unsigned long long)WT_SUM_WORKERS(m, overflow_count));
	weft_metrics_free(m);
	wt_rt_destroy(rt);
	cons_check(TREE_N, 1);
	cons_fini();
}

Test(stress, spawn_tree_1, .timeout = WT_TMO(60)) { spawn_tree(1); }
Test(stress, spawn_tree_2, .timeout = WT_TMO(60)) { spawn_tree(2); }
Test(stress, spawn_tree_4, .timeout = WT_TMO(60)) { spawn_tree(4); }
Test(stress, spawn_tree_8, .timeout = WT_TMO(60)) { spawn_tree(8); }

/* ---------------------------------------------------------- spawn_chains */

enum { CHAINS = 64, CHAIN_LEN = 4096 }; /* 262,144 tasks, each polled twice */

static enum weft_poll chain_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	size_t i = IDX(state);
	if (atomic_load_explicit(&poll_of[i], memory_order_relaxed) == 1) {
		/* first poll: spawn the successor, then yield once */
		if (i % CHAIN_LEN != CHAIN_LEN - 1 &&
		    weft_spawn_poll(weft_cx_runtime(cx), chain_poll, STATE(i + 1), cons_drop, NULL) != 0)
			atomic_fetch_add(&spawn_errors, 1);
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

Test(stress, spawn_chains_4, .timeout = WT_TMO(60))
{
	const size_t n = (size_t)CHAINS * CHAIN_LEN;
	cons_init(n);
	struct weft_runtime *rt = wt_rt_create(4);
	for (size_t c = 0; c < CHAINS; c++)
		cr_assert_eq(weft_spawn_poll(rt, chain_poll, STATE(c * CHAIN_LEN), cons_drop, NULL), 0);
	WAIT_DROPS(n, 50);
	wt_rt_destroy(rt);
	cons_check(n, 2);
	cons_fini();
}

/* ------------------------------------------------------------ wake_storm */

enum { STORM_TASKS = 1000, STORM_THREADS = 4, STORM_ROUNDS = 100 };

struct storm_task {
	atomic_int polls, drops, stored, final, completed;
	atomic_long wakes;
	weft_waker w[STORM_THREADS];
};

static struct storm_task *storm;
static atomic_int storm_go;

static enum weft_poll storm_poll(void *s, struct weft_cx *cx)
{
	struct storm_task *t = s;
	if (atomic_fetch_add(&t->polls, 1) == 0) {
		for (int j = 0; j < STORM_THREADS; j++)
			t->w[j] = weft_waker_clone(weft_cx_waker(cx));
		atomic_store_explicit(&t->stored, 1, memory_order_release);
	}
	if (atomic_load_explicit(&t->final, memory_order_acquire)) {
		atomic_store(&t->completed, 1);
		return WEFT_READY;
	}
	return WEFT_PENDING;
}

static void storm_drop(void *s)
{
	struct storm_task *t = s;
	atomic_fetch_add(&t->drops, 1);
}

static void *storm_thread(void *arg)
{
	int j = (int)(intptr_t)arg;
	while (!atomic_load_explicit(&storm_go, memory_order_acquire))
		usleep(100);
	for (int r = 0; r < STORM_ROUNDS; r++)
		for (int i = 0; i < STORM_TASKS; i++) {
			/* count first: the poll it causes may come at once */
			atomic_fetch_add(&storm[i].wakes, 1);
			weft_waker_wake_by_ref(&storm[i].w[j]);
		}
	return NULL;
}

static struct weft_runtime *storm_setup(int workers, pthread_t *th)
{
	storm = calloc(STORM_TASKS, sizeof *storm);
	cr_assert_not_null(storm);
	atomic_store(&storm_go, 0);
	struct weft_runtime *rt = wt_rt_create(workers);
	for (int i = 0; i < STORM_TASKS; i++)
		cr_assert_eq(weft_spawn_poll(rt, storm_poll, &storm[i], storm_drop, NULL), 0);
	for (int i = 0; i < STORM_TASKS; i++)
		cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&storm[i].stored, memory_order_acquire),
					WT_LONG_MS), "task %d never polled", i);
	for (int j = 0; j < STORM_THREADS; j++)
		cr_assert_eq(pthread_create(&th[j], NULL, storm_thread, (void *)(intptr_t)j), 0);
	atomic_store_explicit(&storm_go, 1, memory_order_release);
	return rt;
}

static void wake_storm(int workers)
{
	pthread_t th[STORM_THREADS];
	struct weft_runtime *rt = storm_setup(workers, th);
	for (int j = 0; j < STORM_THREADS; j++)
		cr_assert_eq(pthread_join(th[j], NULL), 0);

	/* final wake: set the flag, then wake by value; drop the other clones */
	for (int i = 0; i < STORM_TASKS; i++)
		atomic_store_explicit(&storm[i].final, 1, memory_order_release);
	for (int i = 0; i < STORM_TASKS; i++) {
		atomic_fetch_add(&storm[i].wakes, 1);
		weft_waker_wake(&storm[i].w[0]);
		for (int j = 1; j < STORM_THREADS; j++)
			weft_waker_drop(&storm[i].w[j]);
	}
	for (int i = 0; i < STORM_TASKS; i++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&storm[i].drops) == 1, WT_LONG_MS),
			  "task %d: the final wake was lost (%d polls, %ld wakes)", i,
			  atomic_load(&storm[i].polls), atomic_load(&storm[i].wakes));
	wt_rt_destroy(rt);

	long polls = 0, wakes = 0;
	for (int i = 0; i < STORM_TASKS; i++) {
		struct storm_task *t = &storm[i];
		int p = atomic_load(&t->polls);
		long w = atomic_load(&t->wakes);
		cr_assert_eq(atomic_load(&t->drops), 1, "task %d dropped %d times", i,
			     atomic_load(&t->drops));
		cr_assert(atomic_load(&t->completed), "task %d did not complete", i);
		cr_assert_geq(p, 2, "task %d polled %d times: the final wake did nothing", i, p);
		cr_assert_leq(p, 1 + w, "task %d: %d polls from %ld wakes", i, p, w);
		polls += p;
		wakes += w;
	}
	cr_log_info("workers %d: %ld wakes -> %ld polls", workers, wakes, polls);
	free(storm);
}

Test(stress, wake_storm_1, .timeout = WT_TMO(40)) { wake_storm(1); }
Test(stress, wake_storm_2, .timeout = WT_TMO(40)) { wake_storm(2); }
Test(stress, wake_storm_4, .timeout = WT_TMO(40)) { wake_storm(4); }
Test(stress, wake_storm_8, .timeout = WT_TMO(40)) { wake_storm(8); }

/*
 * Ping-pong: each foreign thread wakes its tasks, then waits until every one
 * of them was polled again before the next round. At most one wake is
 * outstanding per task, so none may coalesce: every wake must cause exactly
 * one poll (a lost wakeup fails the wait; a spurious poll fails the count).
 */
enum { PP_TASKS = 200, PP_ROUNDS = 200 };

struct pp_task {
	atomic_int polls, drops, stored, final;
	weft_waker w;
};

static struct pp_task *pp;
static atomic_int pp_lost;

static enum weft_poll pp_poll(void *s, struct weft_cx *cx)
{
	struct pp_task *t = s;
	bool fin = atomic_load_explicit(&t->final, memory_order_acquire);
	if (!atomic_load_explicit(&t->stored, memory_order_relaxed)) {
		t->w = weft_waker_clone(weft_cx_waker(cx));
		atomic_store_explicit(&t->stored, 1, memory_order_release);
	}
	atomic_fetch_add_explicit(&t->polls, 1, memory_order_release);
	return fin ? WEFT_READY : WEFT_PENDING;
}

static void pp_drop(void *s)
{
	struct pp_task *t = s;
	atomic_fetch_add(&t->drops, 1);
}

static void *pp_thread(void *arg)
{
	int j = (int)(intptr_t)arg;
	int seen[PP_TASKS];
	for (int r = 0; r < PP_ROUNDS; r++) {
		for (int i = j; i < PP_TASKS; i += STORM_THREADS) {
			seen[i] = atomic_load_explicit(&pp[i].polls, memory_order_acquire);
			weft_waker_wake_by_ref(&pp[i].w);
		}
		for (int i = j; i < PP_TASKS; i += STORM_THREADS) {
			uint64_t dl = wt_now_ns() + 10ull * 1000000000ull * WEFT_TEST_SLOW;
			while (atomic_load_explicit(&pp[i].polls, memory_order_acquire) == seen[i]) {
				if (wt_now_ns() > dl) {
					atomic_fetch_add(&pp_lost, 1);
					return NULL;
				}
				sched_yield();
			}
		}
	}
	return NULL;
}

static void wake_pingpong(int workers)
{
	pp = calloc(PP_TASKS, sizeof *pp);
	cr_assert_not_null(pp);
	struct weft_runtime *rt = wt_rt_create(workers);
	for (int i = 0; i < PP_TASKS; i++)
		cr_assert_eq(weft_spawn_poll(rt, pp_poll, &pp[i], pp_drop, NULL), 0);
	for (int i = 0; i < PP_TASKS; i++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&pp[i].polls) == 1, WT_LONG_MS));
	pthread_t th[STORM_THREADS];
	for (int j = 0; j < STORM_THREADS; j++)
		cr_assert_eq(pthread_create(&th[j], NULL, pp_thread, (void *)(intptr_t)j), 0);
	for (int j = 0; j < STORM_THREADS; j++)
		cr_assert_eq(pthread_join(th[j], NULL), 0);
	cr_assert_eq(atomic_load(&pp_lost), 0, "a wake of an idle task never caused a poll");
	wt_sleep_ms(20); /* room for a spurious extra poll to show */
	for (int i = 0; i < PP_TASKS; i++)
		cr_assert_eq(atomic_load(&pp[i].polls), 1 + PP_ROUNDS, "task %d: %d polls from %d wakes",
			     i, atomic_load(&pp[i].polls) - 1, PP_ROUNDS);
	for (int i = 0; i < PP_TASKS; i++) {
		atomic_store_explicit(&pp[i].final, 1, memory_order_release);
		weft_waker_wake(&pp[i].w);
	}
	for (int i = 0; i < PP_TASKS; i++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&pp[i].drops) == 1, WT_LONG_MS),
			  "task %d: the final wake was lost", i);
	wt_rt_destroy(rt);
	for (int i = 0; i < PP_TASKS; i++) {
		cr_assert_eq(atomic_load(&pp[i].polls), 2 + PP_ROUNDS);
		cr_assert_eq(atomic_load(&pp[i].drops), 1);
	}
	free(pp);
}

Test(stress, wake_pingpong_1, .timeout = WT_TMO(40)) { wake_pingpong(1); }
Test(stress, wake_pingpong_2, .timeout = WT_TMO(40)) { wake_pingpong(2); }
Test(stress, wake_pingpong_4, .timeout = WT_TMO(40)) { wake_pingpong(4); }
Test(stress, wake_pingpong_8, .timeout = WT_TMO(40)) { wake_pingpong(8); }

/* Wakes keep arriving while the runtime shuts down. */
Test(stress, shutdown_vs_wakes, .timeout = WT_TMO(40))
{
	pthread_t th[STORM_THREADS];
	struct weft_runtime *rt = storm_setup(4, th);
	wt_sleep_ms(3); /* the storm is under way */
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	for (int i = 0; i < STORM_TASKS; i++)
		cr_assert_eq(atomic_load(&storm[i].drops), 1, "task %d: %d drops after shutdown", i,
			     atomic_load(&storm[i].drops));
	for (int j = 0; j < STORM_THREADS; j++)
		cr_assert_eq(pthread_join(th[j], NULL), 0);
	cr_assert_eq(weft_runtime_destroy(rt), -EBUSY, "destroy with %d waker clones alive",
		     STORM_TASKS * STORM_THREADS);
	for (int i = 0; i < STORM_TASKS; i++) {
		weft_waker_wake(&storm[i].w[0]); /* no-op after shutdown */
		for (int j = 1; j < STORM_THREADS; j++)
			weft_waker_drop(&storm[i].w[j]);
	}
	wt_rt_destroy(rt);
	for (int i = 0; i < STORM_TASKS; i++) {
		cr_assert_eq(atomic_load(&storm[i].drops), 1);
		cr_assert_leq(atomic_load(&storm[i].polls), 1 + atomic_load(&storm[i].wakes));
	}
	free(storm);
}

/* ------------------------------------------------------- blocked worker */

/*
 * A task blocks its worker (spins in its poll) after spawning children into
 * that worker's own queue. The other worker must steal and run them (all but
 * at most the one in the blocked worker's LIFO slot) and must keep running
 * tasks spawned from outside, all while the blocker still blocks.
 */
enum { BW_CHILDREN = 200, BW_OUTSIDE = 10000 };

static atomic_int bw_running, bw_release, bw_spawn_errors;

static enum weft_poll bw_child_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	return WEFT_READY;
}

static enum weft_poll bw_blocker_poll(void *state, struct weft_cx *cx)
{
	for (size_t i = 1; i <= BW_CHILDREN; i++)
		if (weft_spawn_poll(weft_cx_runtime(cx), bw_child_poll, STATE(i), cons_drop, NULL))
			atomic_fetch_add(&bw_spawn_errors, 1);
	atomic_store(&bw_running, 1);
	while (!atomic_load(&bw_release))
		usleep(100);
	note_poll(state);
	return WEFT_READY;
}

Test(stress, blocked_worker_others_progress, .timeout = WT_TMO(30))
{
	const size_t n = 1 + BW_CHILDREN + BW_OUTSIDE;
	cons_init(n);
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_spawn_poll(rt, bw_blocker_poll, STATE(0), cons_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&bw_running), WT_LONG_MS));
	cr_assert_eq(atomic_load(&bw_spawn_errors), 0);

	/* nothing else happens: the idle worker must be told about the work
	 * queued behind the blocked one, and steal it */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&drops_total) >= BW_CHILDREN - 1, WT_LONG_MS),
		  "only %ld of %d children queued behind a blocked worker ran",
		  atomic_load(&drops_total), BW_CHILDREN);

	for (size_t i = 1 + BW_CHILDREN; i < n; i++)
		cr_assert_eq(weft_spawn_poll(rt, bw_child_poll, STATE(i), cons_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&drops_total) >= BW_CHILDREN - 1 + BW_OUTSIDE,
				WT_LONG_MS),
		  "only %ld tasks ran while one worker was blocked", atomic_load(&drops_total));
	cr_assert_eq(atomic_load(&drop_of[0]), 0, "the blocker finished early");
	cr_log_info("LIFO-slot child ran while its worker was blocked: %s",
		    atomic_load(&drops_total) == BW_CHILDREN + BW_OUTSIDE ? "yes" : "no");

	atomic_store(&bw_release, 1);
	WAIT_DROPS(n, 10);
	wt_rt_destroy(rt);
	cons_check(n, 1);
	cons_fini();
}

/* ------------------------------------------------------------ LIFO strand */

/*
 * A task spawns a child, which goes to its worker's LIFO slot, and then
 * spins in the same poll for LS_POLL_MS. The child must not wait for the
 * poll to end: the LIFO slot is not stealable, but once the owner has been
 * in one poll for the stall threshold (10 ms) an idle worker takes the task
 * over. Before the fix the child started only after the long poll (issue
 * 13, item 5); with the slot disabled it ran at once.
 */
#define LS_POLL_MS (300 * WEFT_TEST_SLOW)

static _Atomic uint64_t ls_spawned_ns, ls_child_ns;
static atomic_int ls_spawn_rc;

static enum weft_poll ls_child_poll(void *state, struct weft_cx *cx)
{
	atomic_store(&ls_child_ns, wt_now_ns());
	return WEFT_READY;
}

static enum weft_poll ls_long_poll(void *state, struct weft_cx *cx)
{
	atomic_store(&ls_spawned_ns, wt_now_ns());
	atomic_store(&ls_spawn_rc, weft_spawn_poll(weft_cx_runtime(cx), ls_child_poll, NULL, NULL,
						   NULL));
	uint64_t end = wt_now_ns() + LS_POLL_MS * 1000000ull;
	while (wt_now_ns() < end)
		; /* a long poll: CPU work the worker cannot leave */
	return WEFT_READY;
}

Test(stress, lifo_child_not_stranded_behind_long_poll, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	for (int round = 0; round < 3; round++) {
		atomic_store(&ls_child_ns, 0);
		wt_sleep_ms(20); /* both workers idle, asleep */
		struct weft_task *t;
		cr_assert_eq(weft_spawn_poll(rt, ls_long_poll, NULL, NULL, &t), 0);
		cr_assert_eq(weft_join(t, NULL), 0);
		cr_assert_eq(atomic_load(&ls_spawn_rc), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&ls_child_ns) != 0, WT_LONG_MS),
			  "the child never ran");
		uint64_t waited = atomic_load(&ls_child_ns) - atomic_load(&ls_spawned_ns);
		cr_log_info("round %d: the child started %.1f ms after its spawn", round,
			    (double)waited / 1e6);
		cr_assert_lt(waited, LS_POLL_MS / 2 * 1000000ull,
			     "round %d: the child waited %.1f ms in the LIFO slot behind a %d ms poll",
			     round, (double)waited / 1e6, LS_POLL_MS);
	}
	wt_rt_destroy(rt);
}

/*
 * The same rescue on a runtime with an fd registered, while the other
 * worker runs a LIFO ping-pong: two tasks wake each other through their
 * wakers (each wake goes to the LIFO slot and notifies nobody), so that
 * worker's maintenance polls I/O without blocking every event_interval
 * polls, holding the driver lock meanwhile. The idle worker, back from its
 * 5 ms watch, found the lock held and went to sleep on its futex with no
 * timeout; the holder handed the driver to nobody. Then the ping-pong's
 * last poll wakes a task (into the LIFO slot) and spins 300 ms: that task
 * waited the spin out (300.0 ms in 4 runs of 4; found by a review), and a
 * timer set then would have fired only after it. Now a worker that finds
 * the driver held by a thread not asleep in it comes back for it after
 * the watch period.
 */
#define MP_SPIN_MS (300 * WEFT_TEST_SLOW)

static pthread_mutex_t mp_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_waker mp_w[2], mp_y;
static bool mp_have[2], mp_have_y;
static atomic_int mp_go, mp_stop;
static _Atomic uint64_t mp_wake_ns, mp_y_ns;

static enum weft_poll mp_target(void *state, struct weft_cx *cx)
{
	(void)state;
	pthread_mutex_lock(&mp_lock);
	if (!mp_have_y && !atomic_load(&mp_y_ns) && !atomic_load(&mp_wake_ns)) {
		mp_y = weft_waker_clone(weft_cx_waker(cx));
		mp_have_y = true;
		pthread_mutex_unlock(&mp_lock);
		return WEFT_PENDING;
	}
	pthread_mutex_unlock(&mp_lock);
	atomic_store(&mp_y_ns, wt_now_ns());
	return WEFT_READY;
}

static enum weft_poll mp_poll(void *state, struct weft_cx *cx)
{
	int me = (int)(uintptr_t)state;
	if (me == 0 && atomic_load(&mp_go) && !atomic_load(&mp_stop)) {
		atomic_store(&mp_stop, 1);
		pthread_mutex_lock(&mp_lock);
		weft_waker y = mp_y;
		bool have = mp_have_y;
		mp_have_y = false;
		atomic_store(&mp_wake_ns, wt_now_ns());
		pthread_mutex_unlock(&mp_lock);
		if (have)
			weft_waker_wake(&y); /* into this worker's LIFO slot */
		uint64_t end = wt_now_ns() + MP_SPIN_MS * 1000000ull;
		while (wt_now_ns() < end)
			; /* a long poll with a task waiting behind it */
	}
	weft_waker peer = { 0 };
	bool have_peer = false;
	pthread_mutex_lock(&mp_lock);
	if (mp_have[me])
		weft_waker_drop(&mp_w[me]);
	mp_w[me] = weft_waker_clone(weft_cx_waker(cx));
	mp_have[me] = true;
	if (mp_have[!me]) {
		peer = mp_w[!me];
		mp_have[!me] = false;
		have_peer = true;
	}
	pthread_mutex_unlock(&mp_lock);
	if (have_peer)
		weft_waker_wake(&peer);
	if (atomic_load(&mp_stop)) {
		pthread_mutex_lock(&mp_lock);
		if (mp_have[me]) { /* nobody wakes us again */
			weft_waker_drop(&mp_w[me]);
			mp_have[me] = false;
		}
		pthread_mutex_unlock(&mp_lock);
		return WEFT_READY;
	}
	return WEFT_PENDING;
}

Test(stress, lifo_task_rescued_while_maintenance_polls_io, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, sv[0], &io), 0); /* maintenance polls I/O */
	struct weft_task *y, *a, *b;
	cr_assert_eq(weft_spawn_poll(rt, mp_target, NULL, NULL, &y), 0);
	cr_assert(WT_WAIT_UNTIL(({
					pthread_mutex_lock(&mp_lock);
					bool h = mp_have_y;
					pthread_mutex_unlock(&mp_lock);
					h;
				}),
				WT_LONG_MS));
	cr_assert_eq(weft_spawn_poll(rt, mp_poll, (void *)(uintptr_t)0, NULL, &a), 0);
	cr_assert_eq(weft_spawn_poll(rt, mp_poll, (void *)(uintptr_t)1, NULL, &b), 0);
	wt_sleep_ms(700); /* past the idle trims: the other worker sleeps with no trim due */
	atomic_store(&mp_go, 1);
	cr_assert_eq(weft_join(a, NULL), 0);
	cr_assert_eq(weft_join(b, NULL), 0);
	cr_assert_eq(weft_join(y, NULL), 0);
	uint64_t waited = atomic_load(&mp_y_ns) - atomic_load(&mp_wake_ns);
	cr_log_info("the woken task started %.1f ms after its wake", (double)waited / 1e6);
	cr_assert_lt(waited, MP_SPIN_MS / 2 * 1000000ull,
		     "the task waited %.1f ms in the LIFO slot behind a %d ms poll", (double)waited / 1e6,
		     MP_SPIN_MS);
	weft_io_close(io);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/*
 * A remote spawn must not wait behind a chain of long polls that keeps
 * its worker busy through the LIFO slot: each link spins RC_LINK_MS and
 * spawns the next. One worker, so nobody steals. The probe task, spawned
 * from this thread while link 1 runs, records how many links had ended
 * when it started. Before the fix it ran after link 4 (link 1 and three
 * LIFO polls, every time); now the link woken while it waits goes to the
 * ring and the inject queue is served next: after link 1 (2 if this
 * thread was slow to push).
 */
#define RC_LINKS 8
#define RC_LINK_MS (20 * WEFT_TEST_SLOW) /* long: a descheduled test thread stays inside link 1 */

static atomic_int rc_started, rc_ended, rc_seen, rc_err;

static enum weft_poll rc_link(void *state, struct weft_cx *cx)
{
	uintptr_t left = (uintptr_t)state;
	atomic_fetch_add(&rc_started, 1);
	uint64_t end = wt_now_ns() + RC_LINK_MS * 1000000ull;
	while (wt_now_ns() < end)
		;
	atomic_fetch_add(&rc_ended, 1);
	if (left > 1 && weft_spawn_poll(weft_cx_runtime(cx), rc_link, (void *)(left - 1), NULL,
					NULL))
		atomic_fetch_add(&rc_err, 1);
	return WEFT_READY;
}

static enum weft_poll rc_probe(void *state, struct weft_cx *cx)
{
	atomic_store(&rc_seen, atomic_load(&rc_ended));
	return WEFT_READY;
}

Test(stress, remote_spawn_not_queued_behind_lifo_chain, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	for (int round = 0; round < 3; round++) {
		atomic_store(&rc_started, 0);
		atomic_store(&rc_ended, 0);
		atomic_store(&rc_seen, -1);
		cr_assert_eq(weft_spawn_poll(rt, rc_link, (void *)(uintptr_t)RC_LINKS, NULL, NULL),
			     0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&rc_started) >= 1, WT_LONG_MS));
		struct weft_task *t;
		cr_assert_eq(weft_spawn_poll(rt, rc_probe, NULL, NULL, &t), 0);
		cr_assert_eq(weft_join(t, NULL), 0);
		int seen = atomic_load(&rc_seen);
		cr_log_info("round %d: the remote task started after %d of %d links", round, seen,
			    RC_LINKS);
		cr_assert_leq(seen, 2, "round %d: a remote spawn waited for %d links of a LIFO chain",
			      round, seen);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&rc_ended) == RC_LINKS, WT_LONG_MS));
		cr_assert_eq(atomic_load(&rc_err), 0);
	}
	wt_rt_destroy(rt);
}

/* The threshold is an option: at 100 ms the child waits about that long
 * (and no stall is counted for shorter polls); out of range is -EINVAL. */
Test(stress, stall_threshold_option, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt;
	WEFT_OPTS(weft_runtime_opts, low, .stall_threshold_ns = 999999);
	WEFT_OPTS(weft_runtime_opts, high, .stall_threshold_ns = 60000000001ull);
	cr_assert_eq(weft_runtime_create(&low, &rt), -EINVAL);
	cr_assert_eq(weft_runtime_create(&high, &rt), -EINVAL);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .stall_threshold_ns = 100000000ull);
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	atomic_store(&ls_child_ns, 0);
	wt_sleep_ms(20);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, ls_long_poll, NULL, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&ls_child_ns) != 0, WT_LONG_MS));
	uint64_t waited = atomic_load(&ls_child_ns) - atomic_load(&ls_spawned_ns);
	cr_log_info("threshold 100 ms: the child started %.1f ms after its spawn", (double)waited / 1e6);
	cr_assert_geq(waited, 95000000ull, "taken over before the threshold: %.1f ms", (double)waited / 1e6);
	cr_assert_lt(waited, LS_POLL_MS * 1000000ull - 50000000ull, "not taken over: %.1f ms",
		     (double)waited / 1e6);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->stalls, 1, "stalls: %" PRIu64, m->stalls);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* Polls shorter than the threshold are not stalls. The watch keeps time
 * in ~1 ms units and rounded the threshold down: at 2 ms, any poll seen
 * twice across a unit boundary counted (and lost its LIFO task); 0.5 ms
 * polls were counted by the dozen (found by a review). Now a stall is
 * counted only for a poll that lasted the threshold: at most the polls
 * measured that long (a descheduled poll can be). */
#define SU_POLLS 300
#define SU_POLL_NS 500000ull
#define SU_THRESHOLD_NS 2000000ull

struct su_state {
	int left;
	atomic_int stop;
	int long_polls; /* polls that took the threshold or more */
};

static enum weft_poll su_poll(void *state, struct weft_cx *cx)
{
	struct su_state *s = state;
	uint64_t t0 = wt_now_ns(), d;
	while ((d = wt_now_ns() - t0) < SU_POLL_NS)
		;
	if (d >= SU_THRESHOLD_NS - 200000) /* the poll began a little before t0 */
		s->long_polls++;
	if (--s->left == 0) {
		atomic_store(&s->stop, 1);
		return WEFT_READY;
	}
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* keeps the other worker looking at the cores (a search finds nothing) */
static enum weft_poll su_watcher(void *state, struct weft_cx *cx)
{
	struct su_state *s = state;
	if (atomic_load(&s->stop))
		return WEFT_READY;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

Test(stress, polls_under_the_threshold_are_not_stalls, .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .stall_threshold_ns = SU_THRESHOLD_NS);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct su_state s = { .left = SU_POLLS };
	struct weft_task *a, *b;
	cr_assert_eq(weft_spawn_poll(rt, su_watcher, &s, NULL, &b), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_spawn_poll(rt, su_poll, &s, NULL, &a), 0);
	cr_assert_eq(weft_join(a, NULL), 0);
	cr_assert_eq(weft_join(b, NULL), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_log_info("%d polls of 0.5 ms, threshold 2 ms: %d took 2 ms or more, %" PRIu64
		    " stalls counted", SU_POLLS, s.long_polls, m->stalls);
	cr_assert_leq(m->stalls, (uint64_t)s.long_polls + 2,
		      "%" PRIu64 " stalls counted for %d polls that lasted the threshold",
		      m->stalls, s.long_polls);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* A task woken into the LIFO slot by the fn of an inline
 * weft_block_in_place (no spare: the blocking pool is at its cap) is
 * rescued like one woken by a plain blocking poll. Before, the hand-off
 * attempt cleared the core's running task and the stall watch skipped the
 * core: the child waited for all of fn (300 ms; found by a review). */
#define BI_FN_MS (300 * WEFT_TEST_SLOW)

static struct weft_runtime *bi_rt;
static _Atomic uint64_t bi_spawned, bi_ran;

static enum weft_poll bi_child(void *s, struct weft_cx *cx)
{
	atomic_store(&bi_ran, wt_now_ns());
	return WEFT_READY;
}

static void *bi_fn(void *arg)
{
	atomic_store(&bi_spawned, wt_now_ns());
	if (weft_spawn_poll(bi_rt, bi_child, NULL, NULL, NULL)) /* this core's LIFO slot */
		atomic_store(&bi_ran, 1);
	wt_sleep_ms(BI_FN_MS);
	return arg;
}

static enum weft_poll bi_parent(void *s, struct weft_cx *cx)
{
	void *r = NULL;
	if (weft_block_in_place(bi_fn, s, &r) || r != s)
		atomic_store(&bi_ran, 2);
	return WEFT_READY;
}

static _Atomic int bi_hog_release;

static void *bi_hog(void *arg)
{
	while (!atomic_load(&bi_hog_release))
		wt_sleep_ms(5);
	return arg;
}

Test(stress, lifo_task_of_an_inline_block_in_place_is_rescued, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .max_blocking_threads = 1);
	cr_assert_eq(weft_runtime_create(&o, &bi_rt), 0);
	atomic_store(&bi_hog_release, 0);
	struct weft_task *hog, *t;
	cr_assert_eq(weft_spawn_blocking(bi_rt, bi_hog, NULL, &hog), 0); /* the one thread */
	wt_sleep_ms(50);
	atomic_store(&bi_ran, 0);
	cr_assert_eq(weft_spawn_poll(bi_rt, bi_parent, &bi_rt, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&bi_ran) != 0, WT_LONG_MS));
	uint64_t ran = atomic_load(&bi_ran);
	cr_assert_gt(ran, 2, "the child's spawn or the block_in_place failed (%" PRIu64 ")", ran);
	uint64_t waited = ran - atomic_load(&bi_spawned);
	struct weft_metrics *m = wt_metrics(bi_rt);
	cr_log_info("inline block_in_place: the child started %.1f ms after its spawn; stalls %" PRIu64
		    ", inline %" PRIu64, (double)waited / 1e6, m->stalls, m->block_in_place_inline);
	cr_assert_geq(m->block_in_place_inline, 1, "the call did not run inline");
	cr_assert_lt(waited, BI_FN_MS * 1000000ull / 2, "the child waited %.1f ms of fn's %d",
		     (double)waited / 1e6, BI_FN_MS);
	cr_assert_geq(m->stalls, 1);
	weft_metrics_free(m);
	atomic_store(&bi_hog_release, 1);
	cr_assert_eq(weft_join(hog, NULL), 0);
	wt_rt_destroy(bi_rt);
}

/* --------------------------------------------------------- driver hand-off */

/*
 * 3 workers, all asleep: one in the driver, two on their futex. A timer
 * task arms a deadline DH_TIMER_MS ahead. Then task L spawns child K (into
 * its worker's LIFO slot) and spins DH_POLL_MS; K spins DH_POLL_MS too.
 * The driver's sleeper, watching while L's worker runs, takes K over once
 * L's core has been stalled for the threshold (10 ms), and so leaves the
 * driver for a long poll of its own. The timer must still fire on time:
 * the worker left asleep on its futex takes the driver over. Before (issue
 * 13, item 6) nobody slept in the driver any more, and the timer fired
 * only when one of the long polls ended and its worker's maintenance ran
 * (~250 ms late). The stall metric counts L's core (and K's).
 */
#define DH_TIMER_MS (80 * WEFT_TEST_SLOW)
#define DH_POLL_MS (300 * WEFT_TEST_SLOW)

struct dh_timer {
	struct weft_timer t;
	uint64_t deadline;
	_Atomic uint64_t fired_ns;
};

static enum weft_poll dh_timer_poll(void *state, struct weft_cx *cx)
{
	struct dh_timer *d = state;
	if (!d->deadline)
		d->deadline = wt_now_ns() + DH_TIMER_MS * 1000000ull;
	if (weft_timer_poll(&d->t, cx, d->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_store(&d->fired_ns, wt_now_ns());
	return WEFT_READY;
}

static _Atomic uint64_t dh_k_started_ns;

static void dh_spin(void)
{
	uint64_t end = wt_now_ns() + DH_POLL_MS * 1000000ull;
	while (wt_now_ns() < end)
		; /* CPU work the worker cannot leave */
}

static enum weft_poll dh_k_poll(void *state, struct weft_cx *cx)
{
	atomic_store(&dh_k_started_ns, wt_now_ns());
	dh_spin();
	return WEFT_READY;
}

static enum weft_poll dh_l_poll(void *state, struct weft_cx *cx)
{
	if (weft_spawn_poll(weft_cx_runtime(cx), dh_k_poll, NULL, NULL, NULL))
		return WEFT_READY;
	dh_spin();
	return WEFT_READY;
}

Test(stress, timer_fires_while_driver_sleeper_leaves_for_long_poll, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(3);
	for (int round = 0; round < 2; round++) {
		atomic_store(&dh_k_started_ns, 0);
		wt_sleep_ms(30); /* every worker asleep */
		struct dh_timer d = { .t = WEFT_TIMER_INIT };
		atomic_init(&d.fired_ns, 0);
		struct weft_task *tt, *l;
		cr_assert_eq(weft_spawn_poll(rt, dh_timer_poll, &d, NULL, &tt), 0);
		wt_sleep_ms(10); /* armed; its worker asleep again */
		uint64_t l_ns = wt_now_ns();
		cr_assert_eq(weft_spawn_poll(rt, dh_l_poll, NULL, NULL, &l), 0);
		cr_assert_eq(weft_join(tt, NULL), 0);
		uint64_t late = atomic_load(&d.fired_ns) - d.deadline;
		uint64_t k_wait = atomic_load(&dh_k_started_ns) ? atomic_load(&dh_k_started_ns) - l_ns : 0;
		cr_log_info("round %d: K started %.1f ms after L's spawn; timer %.1f ms late", round,
			    (double)k_wait / 1e6, (double)late / 1e6);
		/* 120 ms: a host may deschedule a vCPU for 90 (CI's timer_race
		 * run); the bug is about 230 ms late (DH_POLL_MS - DH_TIMER_MS) */
		cr_assert_lt(late, 120 * WEFT_TEST_SLOW * 1000000ull,
			     "round %d: the timer fired %.1f ms late while workers ran %d ms polls",
			     round, (double)late / 1e6, DH_POLL_MS);
		cr_assert_eq(weft_join(l, NULL), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&dh_k_started_ns) != 0, WT_LONG_MS));
		wt_sleep_ms(DH_POLL_MS + 20); /* K done */
	}
	struct weft_metrics *m = wt_metrics(rt);
	/* L's core (the driver's sleeper saw it) and K's, twice each; a
	 * watcher may miss one when its poll ends first: at least 2 */
	cr_assert_geq(m->stalls, 2, "stalls counted: %" PRIu64, m->stalls);
	uint64_t per_worker = 0;
	for (unsigned i = 0; i < m->workers; i++)
		per_worker += m->worker[i].stalls;
	cr_assert_eq(per_worker, m->stalls);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------ shutdown_pending */

enum { SD_N = 100000, SD_WORKERS = 2, SD_JOINERS = 4 };

struct sd_task {
	atomic_int returned_ready, stored;
	weft_waker w;
};

static struct sd_task *sd;
static struct weft_task **sd_h;
static int *sd_rc;

static enum weft_poll sd_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	size_t i = IDX(state);
	switch (i % 10) {
	case 0:
		atomic_store(&sd[i].returned_ready, 1);
		return WEFT_READY;
	case 1:
		if (!atomic_load(&sd[i].stored)) {
			sd[i].w = weft_waker_clone(weft_cx_waker(cx));
			atomic_store_explicit(&sd[i].stored, 1, memory_order_release);
		}
		return WEFT_PENDING;
	default:
		return WEFT_PENDING; /* nothing will wake it */
	}
}

static void *sd_joiner(void *arg)
{
	size_t j = (size_t)(uintptr_t)arg;
	for (size_t i = j; i < SD_N; i += SD_JOINERS)
		sd_rc[i] = weft_join(sd_h[i], NULL);
	return NULL;
}

struct gates {
	struct wt_gate g[SD_WORKERS];
};

static void *gate_releaser(void *arg)
{
	struct gates *gs = arg;
	wt_sleep_ms(30);
	for (int k = 0; k < SD_WORKERS; k++)
		atomic_store(&gs->g[k].release, 1);
	return NULL;
}

Test(stress, shutdown_pending, .timeout = WT_TMO(60))
{
	cons_init(SD_N);
	sd = calloc(SD_N, sizeof *sd);
	sd_h = calloc(SD_N, sizeof *sd_h);
	sd_rc = calloc(SD_N, sizeof *sd_rc);
	cr_assert(sd && sd_h && sd_rc);
	static struct gates gs;
	struct weft_runtime *rt = wt_rt_create(SD_WORKERS);

	/* first half: polled, now pending (or completed) */
	for (size_t i = 0; i < SD_N / 2; i++)
		cr_assert_eq(weft_spawn_poll(rt, sd_poll, STATE(i), cons_drop, &sd_h[i]), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&polls_total) == SD_N / 2, WT_LONG_MS),
		  "%ld of %d polled", atomic_load(&polls_total), SD_N / 2);
	/* second half: queued behind gates that hold every worker */
	for (int k = 0; k < SD_WORKERS; k++) {
		memset(&gs.g[k], 0, sizeof gs.g[k]);
		cr_assert_eq(weft_spawn_poll(rt, wt_gate_poll, &gs.g[k], wt_gate_drop, NULL), 0);
	}
	for (int k = 0; k < SD_WORKERS; k++)
		if (!WT_WAIT_UNTIL(atomic_load(&gs.g[k].running), WT_LONG_MS)) {
			wt_dump_runtime(rt, "a gate never ran");
			cr_assert_fail("gate %d never ran", k);
		}
	for (size_t i = SD_N / 2; i < SD_N; i++)
		cr_assert_eq(weft_spawn_poll(rt, sd_poll, STATE(i), cons_drop, &sd_h[i]), 0);

	pthread_t jt[SD_JOINERS], rel;
	for (int j = 0; j < SD_JOINERS; j++)
		cr_assert_eq(pthread_create(&jt[j], NULL, sd_joiner, (void *)(uintptr_t)j), 0);
	wt_sleep_ms(20); /* joiners block on pending tasks */
	cr_assert_eq(pthread_create(&rel, NULL, gate_releaser, &gs), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(pthread_join(rel, NULL), 0);
	for (int j = 0; j < SD_JOINERS; j++)
		cr_assert_eq(pthread_join(jt[j], NULL), 0);

	long ready = 0, cancelled = 0, unpolled = 0;
	for (size_t i = 0; i < SD_N; i++) {
		unsigned p = atomic_load(&poll_of[i]);
		cr_assert_leq(p, 1, "task %zu polled %u times", i, p);
		unpolled += p == 0;
		if (atomic_load(&sd[i].returned_ready)) {
			cr_assert_eq(sd_rc[i], 0, "task %zu completed but join = %d", i, sd_rc[i]);
			ready++;
		} else {
			cr_assert_eq(sd_rc[i], -ECANCELED, "task %zu cancelled but join = %d", i, sd_rc[i]);
			cancelled++;
		}
		if (atomic_load_explicit(&sd[i].stored, memory_order_acquire))
			weft_waker_wake(&sd[i].w); /* no-op: cancelled */
	}
	cr_log_info("%ld completed, %ld cancelled (%ld never polled)", ready, cancelled, unpolled);
	cr_assert_geq(ready, SD_N / 20);
	cr_assert_geq(cancelled, SD_N / 2);
	wt_rt_destroy(rt);
	cons_check(SD_N, -1);
	for (int k = 0; k < SD_WORKERS; k++)
		cr_assert_eq(atomic_load(&gs.g[k].drops), 1);
	free(sd);
	free(sd_h);
	free(sd_rc);
	cons_fini();
}

/* ------------------------------------------------- create_destroy_cycles */

/* 10,000 (TESTING.md's figure; the issue asks for 1,000): ~1 s, ~5 s under ASan. */
enum { CYCLES = 10000 };

static enum weft_poll cyc_pending(void *state, struct weft_cx *cx)
{
	note_poll(state);
	return WEFT_PENDING;
}

Test(stress, create_destroy_cycles, .timeout = WT_TMO(60))
{
	cons_init(CYCLES * 3);
	uint64_t t0 = wt_now_ns();
	for (size_t c = 0; c < CYCLES; c++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = 1 + (int)(c % 3));
		struct weft_runtime *rt = NULL;
		int rc = weft_runtime_create(&o, &rt);
		if (rc != 0)
			cr_assert_fail("cycle %zu: create = %d (%s)", c, rc, weft_strerror(rc));
		size_t b = c * 3;
		cr_assert_eq(weft_spawn_poll(rt, flat_poll, STATE(b), cons_drop, NULL), 0);
		cr_assert_eq(weft_spawn_poll(rt, cyc_pending, STATE(b + 1), cons_drop, NULL), 0);
		struct weft_task *h = NULL;
		cr_assert_eq(weft_spawn_poll(rt, cyc_pending, STATE(b + 2), cons_drop, &h), 0);
		switch (c % 3) {
		case 0: /* shutdown, join, destroy */
			cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
			cr_assert_eq(weft_join(h, NULL), -ECANCELED);
			break;
		case 1: /* abort + join, then destroy does the shutdown */
			cr_assert_eq(weft_abort(h), 0);
			cr_assert_eq(weft_join(h, NULL), -ECANCELED);
			break;
		case 2: /* detach, destroy at once */
			cr_assert_eq(weft_detach(h), 0);
			break;
		}
		rc = weft_runtime_destroy(rt);
		if (rc != 0)
			cr_assert_fail("cycle %zu: destroy = %d (%s)", c, rc, weft_strerror(rc));
		if (atomic_load(&drops_total) != (long)(b + 3))
			cr_assert_fail("cycle %zu: %ld drops, want %zu", c, atomic_load(&drops_total), b + 3);
	}
	cr_log_info("%d cycles in %.2f s", CYCLES, (double)(wt_now_ns() - t0) / 1e9);
	cons_check(CYCLES * 3, -1);
	cons_fini();
}

/* ----------------------------------------------------- spawn_vs_shutdown */

enum {
	SR_THREADS = 4,
	SR_CAP = 200000,          /* attempts per thread at most */
	SR_BEFORE = 5000,         /* attempts per thread before shutdown starts */
	SR_AFTER = 1000,          /* attempts after the first -ESHUTDOWN */
	SR_SLOTS = SR_THREADS * SR_CAP,
	SR_CHILD = SR_SLOTS,      /* child of task i has index SR_CHILD + i */
};

static atomic_long sr_attempts, sr_ok, sr_refused, sr_bad_rc, sr_nondecreasing;
static atomic_long sr_child_attempts, sr_child_ok, sr_child_refused;
static atomic_int sr_progress[SR_THREADS];
static atomic_bool sr_shut_done;
static struct weft_runtime *sr_rt;

static enum weft_poll sr_child_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	return WEFT_READY;
}

static enum weft_poll sr_poll(void *state, struct weft_cx *cx)
{
	note_poll(state);
	size_t i = IDX(state);
	atomic_fetch_add(&sr_child_attempts, 1);
	int rc = weft_spawn_poll(weft_cx_runtime(cx), sr_child_poll, STATE(SR_CHILD + i),
				 cons_drop, NULL);
	if (rc == 0) {
		atomic_fetch_add(&sr_child_ok, 1);
	} else if (rc == -ESHUTDOWN) {
		atomic_fetch_add(&sr_child_refused, 1);
		if (atomic_load(&drop_of[SR_CHILD + i]) != 1)
			atomic_fetch_add(&sr_bad_rc, 1); /* drop not run before return */
	} else {
		atomic_fetch_add(&sr_bad_rc, 1);
	}
	return WEFT_READY;
}

static void *sr_spawner(void *arg)
{
	size_t me = (size_t)(uintptr_t)arg;
	size_t after = 0;
	bool refused = false;
	for (size_t k = 0; k < SR_CAP && after < SR_AFTER; k++) {
		size_t i = me * SR_CAP + k;
		/* A spawner that ran far ahead of the shutdown (a slow main
		 * thread on a loaded machine) keeps its last SR_AFTER slots for
		 * attempts after shutdown, instead of running out of slots with
		 * fewer refusals than the test asks for. */
		if (k == SR_CAP - SR_AFTER)
			while (!atomic_load(&sr_shut_done))
				sched_yield();
		atomic_fetch_add(&sr_attempts, 1);
		int rc = weft_spawn_poll(sr_rt, sr_poll, STATE(i), cons_drop, NULL);
		if (rc == 0) {
			atomic_fetch_add(&sr_ok, 1);
			if (refused)
				atomic_fetch_add(&sr_nondecreasing, 1); /* accepted after a refusal */
		} else if (rc == -ESHUTDOWN) {
			atomic_fetch_add(&sr_refused, 1);
			refused = true;
			if (atomic_load(&drop_of[i]) != 1)
				atomic_fetch_add(&sr_bad_rc, 1); /* drop not run before return */
		} else {
			atomic_fetch_add(&sr_bad_rc, 1);
		}
		if (refused)
			after++;
		atomic_store(&sr_progress[me], (int)k + 1);
		/* bound the backlog */
		while (!refused && atomic_load(&sr_ok) - atomic_load(&drops_total) > 50000)
			sched_yield();
	}
	return NULL;
}

static void spawn_vs_shutdown(int workers)
{
	cons_init(2 * (size_t)SR_SLOTS);
	sr_rt = wt_rt_create(workers);
	pthread_t th[SR_THREADS];
	for (int j = 0; j < SR_THREADS; j++)
		cr_assert_eq(pthread_create(&th[j], NULL, sr_spawner, (void *)(uintptr_t)j), 0);
	for (int j = 0; j < SR_THREADS; j++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&sr_progress[j]) >= SR_BEFORE, 30000),
			  "spawner %d stuck at %d", j, atomic_load(&sr_progress[j]));
	cr_assert_eq(weft_runtime_shutdown(sr_rt, WEFT_FOREVER), 0);
	atomic_store(&sr_shut_done, true);
	for (int j = 0; j < SR_THREADS; j++)
		cr_assert_eq(pthread_join(th[j], NULL), 0);
	wt_rt_destroy(sr_rt);

	long attempts = atomic_load(&sr_attempts) + atomic_load(&sr_child_attempts);
	cr_log_info("workers %d: %ld spawns ok, %ld refused; children %ld ok, %ld refused", workers,
		    atomic_load(&sr_ok), atomic_load(&sr_refused), atomic_load(&sr_child_ok),
		    atomic_load(&sr_child_refused));
	cr_assert_eq(atomic_load(&sr_bad_rc), 0,
		     "%ld spawns returned neither 0 nor -ESHUTDOWN, or ran no drop before -ESHUTDOWN",
		     atomic_load(&sr_bad_rc));
	cr_assert_eq(atomic_load(&sr_nondecreasing), 0, "%ld spawns accepted after an -ESHUTDOWN",
		     atomic_load(&sr_nondecreasing));
	cr_assert_geq(atomic_load(&sr_refused), SR_THREADS * SR_AFTER);
	cr_assert_eq(atomic_load(&drops_total), attempts, "drops %ld != spawn attempts %ld",
		     atomic_load(&drops_total), attempts);
	cr_assert_leq(atomic_load(&polls_total), atomic_load(&sr_ok) + atomic_load(&sr_child_ok));
	/* every attempt's own byte is 1, no other byte is set */
	for (size_t i = 0; i < 2 * (size_t)SR_SLOTS; i++) {
		unsigned d = atomic_load_explicit(&drop_of[i], memory_order_relaxed);
		size_t k = i % SR_SLOTS % SR_CAP, t = i % SR_SLOTS / SR_CAP;
		bool attempted = i < SR_SLOTS ? k < (size_t)atomic_load(&sr_progress[t])
					      : atomic_load_explicit(&poll_of[i - SR_CHILD],
								     memory_order_relaxed) > 0;
		cr_assert_eq(d, attempted ? 1u : 0u, "slot %zu (attempted %d) dropped %u times", i,
			     attempted, d);
	}
	cr_assert_eq(atomic_load(&dup_drops), 0);
	cons_fini();
}

Test(stress, spawn_vs_shutdown_2, .timeout = WT_TMO(40)) { spawn_vs_shutdown(2); }
Test(stress, spawn_vs_shutdown_8, .timeout = WT_TMO(40)) { spawn_vs_shutdown(8); }
