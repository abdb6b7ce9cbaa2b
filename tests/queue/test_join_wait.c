/*
 * test_join_wait.c - how a thread outside the runtime waits in weft_join
 * (lib/sched/task.c, park.c): it spins on its parker before sleeping only
 * while a CPU is likely spare (weft__cpu_spare: fewer workers awake than
 * the process has CPUs). With every CPU taken by an awake worker it yields
 * its CPU instead: its spin ran on a worker's CPU and delayed the task it
 * waited for (spawn_many_remote_busy2, docs/BENCHMARKS.md).
 *
 * The decision is read here from the runtime's own state, exactly: parked
 * workers leave a CPU spare; as many busy workers as CPUs leave none; one
 * worker fewer than CPUs leaves one. The joins then run through the yield
 * path: short tasks behind busy workers, and one that outlasts the yields
 * so the joiner goes on to sleep on its futex and is woken; the joiner's
 * sched_yield calls are counted (this file defines sched_yield), and a
 * join with a CPU spare makes none.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "runtime.h"

#include <sys/syscall.h>
#include <unistd.h>

static _Atomic bool stop;
static _Atomic unsigned busy_running;

/* This executable's sched_yield, which the statically linked library's
 * calls resolve to: counts the calls of the thread that set count_yields,
 * so a test sees which way its joins waited. */
static _Thread_local bool count_yields;
static _Atomic unsigned joiner_yields;

int sched_yield(void)
{
	if (count_yields)
		atomic_fetch_add(&joiner_yields, 1);
	return (int)syscall(SYS_sched_yield);
}

/* Holds its worker: spins in its poll until told to stop. */
static enum weft_poll busy_poll(void *arg, struct weft_cx *cx)
{
	(void)arg;
	(void)cx;
	atomic_fetch_add(&busy_running, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		weft__cpu_relax();
	return WEFT_READY;
}

static struct weft_runtime *make_rt(unsigned workers)
{
	/* the busy polls are stalls: no rescue during a test */
	WEFT_OPTS(weft_runtime_opts, o, .workers = (int)workers,
		  .stall_threshold_ns = 60ull * 1000000000ull);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	return rt;
}

static unsigned awake(struct weft_runtime *rt)
{
	return IDLE_UNPARKED(atomic_load(&rt->idle.state));
}

static void occupy(struct weft_runtime *rt, unsigned n)
{
	atomic_store(&stop, false);
	atomic_store(&busy_running, 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(weft_spawn_poll(rt, busy_poll, NULL, NULL, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&busy_running) == n, WT_LONG_MS),
		  "%u of %u busy tasks started", atomic_load(&busy_running), n);
}

static unsigned process_cpus(void)
{
	cpu_set_t set;
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

Test(join_wait, a_cpu_is_spare_until_every_cpu_has_an_awake_worker, .timeout = WT_TMO(30))
{
	unsigned ncpu = process_cpus();
	struct weft_runtime *rt = make_rt(ncpu);
	cr_assert_eq(rt->ncpu, ncpu, "the runtime counted %u CPUs, affinity says %u",
		     rt->ncpu, ncpu);
	cr_assert(WT_WAIT_UNTIL(awake(rt) == 0, WT_LONG_MS), "%u workers stayed awake", awake(rt));
	cr_assert(weft__cpu_spare(rt), "no CPU spare with every worker parked");
	occupy(rt, ncpu);
	cr_assert_eq(awake(rt), ncpu);
	cr_assert_not(weft__cpu_spare(rt), "a CPU counted spare with %u busy workers on %u CPUs",
		      ncpu, ncpu);
	atomic_store(&stop, true);
	cr_assert(WT_WAIT_UNTIL(awake(rt) == 0, WT_LONG_MS), "%u workers stayed awake", awake(rt));
	cr_assert(weft__cpu_spare(rt), "no CPU spare after the workers parked again");
	wt_rt_destroy(rt);
}

Test(join_wait, one_worker_fewer_than_cpus_leaves_one_spare, .timeout = WT_TMO(30))
{
	unsigned ncpu = process_cpus();
	if (ncpu < 2)
		WT_SKIP("one CPU: no runtime has fewer workers than CPUs");
	struct weft_runtime *rt = make_rt(ncpu - 1);
	occupy(rt, ncpu - 1);
	cr_assert(weft__cpu_spare(rt), "no CPU spare with %u busy workers on %u CPUs",
		  ncpu - 1, ncpu);
	atomic_store(&stop, true);
	wt_rt_destroy(rt);
}

static enum weft_poll short_poll(void *arg, struct weft_cx *cx)
{
	(void)cx;
	*(unsigned *)arg += 1;
	return WEFT_READY;
}

/* Completes 50 ms after its first poll: longer than the joiner's yields. */
static enum weft_poll late_poll(void *arg, struct weft_cx *cx)
{
	(void)cx;
	uint64_t t0 = wt_now_ns();
	while (wt_now_ns() - t0 < 50000000ull)
		weft__cpu_relax();
	*(unsigned *)arg = 1;
	return WEFT_READY;
}

Test(join_wait, joins_while_every_cpu_is_busy, .timeout = WT_TMO(60))
{
	unsigned ncpu = process_cpus();
	if (ncpu + 1 > WEFT_MAX_WORKERS)
		WT_SKIP("%u CPUs: no room for a worker per CPU and one more", ncpu);
	/* a worker held per CPU, and one more that runs the joined tasks */
	struct weft_runtime *rt = make_rt(ncpu + 1);
	occupy(rt, ncpu);
	cr_assert_not(weft__cpu_spare(rt));
	static unsigned counts[200];
	for (unsigned i = 0; i < 200; i++) {
		struct weft_task *t = NULL;
		cr_assert_eq(weft_spawn_poll(rt, short_poll, &counts[i], NULL, &t), 0);
		cr_assert_eq(weft_join(t, NULL), 0);
		cr_assert_eq(counts[i], 1, "task %u ran %u times", i, counts[i]);
	}
	unsigned late = 0;
	struct weft_task *t = NULL;
	cr_assert_eq(weft_spawn_poll(rt, late_poll, &late, NULL, &t), 0);
	atomic_store(&joiner_yields, 0);
	count_yields = true;
	cr_assert_eq(weft_join(t, NULL), 0);
	count_yields = false;
	cr_assert_eq(late, 1);
	/* the yields, then the futex sleep: exactly TPARK_SPINS (12) unless
	 * the task ends first, which it cannot in 12 yields of 50 ms */
	cr_assert_geq(atomic_load(&joiner_yields), 1,
		      "the join paused on a busy worker's CPU instead of yielding it");
	atomic_store(&stop, true);
	wt_rt_destroy(rt);
}

/* The other way: one worker on a machine of two CPUs or more, awake
 * running the late task, leaves a CPU spare, and the joiner pauses on it
 * (no system call) before its futex sleep. */
Test(join_wait, a_join_with_a_cpu_spare_pauses_without_yielding, .timeout = WT_TMO(30))
{
	unsigned ncpu = process_cpus();
	if (ncpu < 2)
		WT_SKIP("one CPU: a single worker leaves none spare");
	struct weft_runtime *rt = make_rt(1);
	unsigned late = 0;
	struct weft_task *t = NULL;
	cr_assert_eq(weft_spawn_poll(rt, late_poll, &late, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(awake(rt) == 1, WT_LONG_MS));
	cr_assert(weft__cpu_spare(rt));
	atomic_store(&joiner_yields, 0);
	count_yields = true;
	cr_assert_eq(weft_join(t, NULL), 0);
	count_yields = false;
	cr_assert_eq(late, 1);
	/* a chaos build yields at its points in this thread's calls too */
#ifndef WEFT_TEST_CHAOS
	cr_assert_eq(atomic_load(&joiner_yields), 0, "%u yields with a CPU spare",
		     atomic_load(&joiner_yields));
#endif
	wt_rt_destroy(rt);
}

/* A thread's key destructors run last, in key order. weft's (made at the
 * first wait of any thread) frees the thread's parker; a destructor of a
 * key made after it that waits in weft - here a join of a task that is
 * still running - came back to the freed parker: "parker in state
 * <garbage>" and an abort (found by a review). It gets a new parker now,
 * freed in a further round of destructors (LSan sees no leak). */
static struct weft_runtime *late_rt;
static pthread_key_t late_key;
static atomic_int late_rc;

static void late_dtor(void *v)
{
	(void)v;
	struct weft_task *h;
	int rc = weft_spawn_poll(late_rt, wt_poll_ready_in_20ms, NULL, NULL, &h);
	if (!rc)
		rc = weft_join(h, NULL);
	atomic_store(&late_rc, rc ? rc : 1);
}

static void *late_thread(void *arg)
{
	(void)arg;
	struct weft_task *h;
	/* a wait first: the parker, and weft's key, exist before late_key */
	if (weft_spawn_poll(late_rt, wt_poll_ready_in_20ms, NULL, NULL, &h) ||
	    weft_join(h, NULL))
		return (void *)1;
	if (pthread_key_create(&late_key, late_dtor))
		return (void *)2;
	if (pthread_setspecific(late_key, (void *)1))
		return (void *)3;
	return NULL;
}

Test(join_wait, a_join_in_a_key_destructor_that_runs_after_the_parkers, .timeout = WT_TMO(30))
{
	late_rt = make_rt(1);
	for (int i = 0; i < 3; i++) {
		atomic_store(&late_rc, 0);
		pthread_t th;
		void *res = (void *)-1;
		cr_assert_eq(pthread_create(&th, NULL, late_thread, NULL), 0);
		cr_assert_eq(pthread_join(th, &res), 0);
		cr_assert_null(res, "round %d: the thread's own join failed (%p)", i, res);
		cr_assert_eq(atomic_load(&late_rc), 1, "round %d: the join in the destructor: %d",
			     i, atomic_load(&late_rc));
		cr_assert_eq(pthread_key_delete(late_key), 0);
	}
	cr_assert_eq(weft_runtime_destroy(late_rt), 0);
}

