/*
 * test_elastic.c - weft_runtime_set_workers: cores added and removed while
 * the runtime runs. A removed core's queued tasks move to the others, its
 * timers still fire, its thread becomes a spare and exits after the keep-
 * alive; growing back before the removal is carried out undoes it; metrics
 * and the probe registry (what schedtop reads) follow.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

#include "probe_abi.h"
#include "runtime.h"
#include "wt.h"

#define MS 1000000ull

extern struct weft_probe_registry weft_probe_registry;

static struct weft_runtime *mk(int workers, const char *prefix)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers, .thread_name_prefix = prefix,
		  .blocking_keep_alive_ns = 50 * MS);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	return rt;
}

/* Threads of this process whose name starts with prefix. */
static int threads_named(const char *prefix)
{
	DIR *d = opendir("/proc/self/task");
	cr_assert_not_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, prefix, strlen(prefix)))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Cores with a thread holding them, in a fresh snapshot. */
static unsigned held(struct weft_runtime *rt, unsigned *active)
{
	struct weft_metrics *m = wt_metrics(rt);
	unsigned n = 0;
	for (unsigned i = 0; i < m->workers; i++)
		n += m->worker[i].thread_id != 0;
	if (active)
		*active = m->workers_active;
	weft_metrics_free(m);
	return n;
}

static uint64_t core_tid(struct weft_runtime *rt, unsigned core)
{
	struct weft_metrics *m = wt_metrics(rt);
	uint64_t tid = core < m->workers ? m->worker[core].thread_id : 0;
	weft_metrics_free(m);
	return tid;
}

static unsigned registry_ncores(struct weft_runtime *rt)
{
	for (unsigned i = 0; i < WEFT_PROBE_REG_SLOTS; i++)
		if (__atomic_load_n(&weft_probe_registry.slot[i].rt, __ATOMIC_ACQUIRE) ==
		    (uintptr_t)rt)
			return (unsigned)__atomic_load_n(&weft_probe_registry.slot[i].ncores,
							 __ATOMIC_ACQUIRE);
	return 0;
}

Test(elastic, bad_arguments_and_shut_down_runtime)
{
	struct weft_runtime *rt = mk(1, "el");
	cr_assert_eq(weft_runtime_set_workers(NULL, 2), -EINVAL);
	cr_assert_eq(weft_runtime_set_workers(rt, 0), -EINVAL);
	cr_assert_eq(weft_runtime_set_workers(rt, -1), -EINVAL);
	cr_assert_eq(weft_runtime_set_workers(rt, WEFT_MAX_WORKERS + 1), -EINVAL);
	unsigned active;
	cr_assert(WT_WAIT_UNTIL(held(rt, &active) == 1, WT_LONG_MS));
	cr_assert_eq(active, 1, "a refused call changes nothing");
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(weft_runtime_set_workers(rt, 2), -ESHUTDOWN);
	wt_rt_destroy(rt);
}

/* A grow racing shutdown. set_workers checked `closed` under resize_lock,
 * shutdown set it without: a grow past the check started its thread after
 * shutdown had counted every thread out, and that thread ran on the freed
 * runtime after destroy (found by a review; the ASan build reports the
 * heap-use-after-free in weft__worker_main, the plain one may crash). */
static struct weft_runtime *g_race_rt;
static atomic_int g_race_go;

static void *grower(void *arg)
{
	(void)arg;
	/* SCHED_IDLE: main's shutdown preempts it inside set_workers */
	struct sched_param sp = { 0 };
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	while (!atomic_load(&g_race_go))
		;
	for (int k = 2; k <= 64; k++)
		if (weft_runtime_set_workers(g_race_rt, k))
			break;
	return NULL;
}

Test(elastic, grow_racing_shutdown_starts_no_thread_after_it, .timeout = WT_TMO(120))
{
	cpu_set_t one, all;
	cr_assert_eq(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	/* one CPU makes the grower's preemption inside set_workers likely */
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	for (int it = 0; it < 200; it++) {
		g_race_rt = mk(1, "elr");
		atomic_store(&g_race_go, 0);
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, grower, NULL), 0);
		atomic_store(&g_race_go, 1);
		usleep((useconds_t)(50 + (it * 37) % 400));
		cr_assert_eq(weft_runtime_shutdown(g_race_rt, WEFT_FOREVER), 0);
		cr_assert_eq(pthread_join(th, NULL), 0);
		cr_assert_eq(weft_runtime_destroy(g_race_rt), 0);
		usleep(2000); /* a thread started late would now touch freed memory */
	}
	sched_setaffinity(0, sizeof(all), &all);
}

/* Tasks freed after a shrink go back to the cache of the core that
 * carved them, which no thread holds once it retired: their slabs stayed
 * allocated until the core came back or destroy (313 slabs for 20,000
 * tasks; found by a review). Now a parking worker trims retired caches. */
#define RT_N 20000
static struct weft_runtime *g_rt_rt;
static weft_waker g_rt_wakers[RT_N];
static bool g_rt_polled[RT_N];
static struct weft_task *g_rt_handles[RT_N];
static atomic_int g_rt_parked, g_rt_done;

static enum weft_poll rt_parker(void *s, struct weft_cx *cx)
{
	uintptr_t i = (uintptr_t)s;
	if (!g_rt_polled[i]) {
		g_rt_polled[i] = true;
		g_rt_wakers[i] = weft_waker_clone(weft_cx_waker(cx));
		atomic_fetch_add(&g_rt_parked, 1);
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

static enum weft_poll rt_spawner(void *s, struct weft_cx *cx)
{
	struct weft__ctx *ctx = weft__ctx();
	if (!ctx || !ctx->core || ctx->core->index != 1 || atomic_exchange(&g_rt_done, 1))
		return WEFT_READY; /* the tasks must be carved by core 1's cache */
	for (uintptr_t i = 0; i < RT_N; i++)
		cr_assert_eq(weft_spawn_poll(g_rt_rt, rt_parker, (void *)i, NULL, &g_rt_handles[i]), 0);
	return WEFT_READY;
}

Test(elastic, retired_cores_task_memory_is_given_back, .timeout = WT_TMO(60))
{
	g_rt_rt = mk(2, "elt");
	for (int tries = 0; !atomic_load(&g_rt_done) && tries < 10000; tries++) {
		struct weft_task *t[4];
		for (int k = 0; k < 4; k++)
			cr_assert_eq(weft_spawn_poll(g_rt_rt, rt_spawner, NULL, NULL, &t[k]), 0);
		for (int k = 0; k < 4; k++)
			cr_assert_eq(weft_join(t[k], NULL), 0);
	}
	cr_assert(atomic_load(&g_rt_done), "no spawner ran on core 1");
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_rt_parked) == RT_N, WT_LONG_MS));
	size_t slabs = atomic_load(&g_rt_rt->slab_count);
	cr_assert_eq(weft_runtime_set_workers(g_rt_rt, 1), 0);
	unsigned active;
	cr_assert(WT_WAIT_UNTIL(held(g_rt_rt, &active) == 1, WT_LONG_MS));
	for (int i = 0; i < RT_N; i++)
		weft_waker_wake(&g_rt_wakers[i]);
	for (int i = 0; i < RT_N; i++)
		cr_assert_eq(weft_join(g_rt_handles[i], NULL), 0);
	bool back = WT_WAIT_UNTIL(atomic_load(&g_rt_rt->slab_count) <= 4, 5000);
	cr_assert(back, "%zu task slabs with 20,000 tasks, %zu after they ended and 5 s idle",
		  slabs, (size_t)atomic_load(&g_rt_rt->slab_count));
	wt_rt_destroy(g_rt_rt);
}

/* A forked child's registry (what schedtop reads) lists none of the
 * parent's runtimes, and one the child creates is listed. Before, the
 * parent's stayed listed in the child (schedtop -p CHILD showed its
 * workers and a task frozen in a poll as a long poll), and the registry's
 * lock stayed as the fork found it (found by a review). */
static unsigned listed(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < WEFT_PROBE_REG_SLOTS; i++)
		if (__atomic_load_n(&weft_probe_registry.slot[i].rt, __ATOMIC_ACQUIRE))
			n++;
	return n;
}

Test(elastic, forked_child_lists_only_its_own_runtimes, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = mk(2, "elf");
	cr_assert_geq(listed(), 1);
	/* Fork once both workers have parked. Under ASan (GCC 12's has no
	 * fork handlers for its allocator) a fork while a new worker thread
	 * was still starting, inside the allocator, left the child's
	 * allocator locked, and the child's first thread hung until its alarm
	 * (9 of 12 runs on this machine at one time, at the session's start
	 * too: a limit of the sanitizer, not of weft, whose child makes its
	 * runtime in the plain build every time). */
	struct weft_metrics *m;
	bool parked = WT_METRICS_UNTIL(rt, m, m->workers == 2 && m->worker[0].park_count &&
					      m->worker[1].park_count, WT_LONG_MS);
	weft_metrics_free(m);
	cr_assert(parked, "the workers never parked");
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		alarm(10);
		int bad = 0;
		if (listed() != 0)
			bad |= 1;
		struct weft_runtime *crt = NULL;
		WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
		if (weft_runtime_create(&o, &crt))
			bad |= 2;
		else if (listed() != 1)
			bad |= 4;
		if (crt && weft_runtime_destroy(crt))
			bad |= 8;
		if (listed() != 0)
			bad |= 16;
		_exit(bad);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "child died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_eq(WEXITSTATUS(st), 0, "child failures: mask %d (1: the parent's runtime "
		     "listed in the child)", WEXITSTATUS(st));
	cr_assert_geq(listed(), 1, "the parent's runtime is still listed in the parent");
	wt_rt_destroy(rt);
}

/* A fork while another thread of the parent is between the two `gen`
 * stores of a registry write (a create, destroy or grow: gen odd, the
 * writer holding the registry's lock), stood for here by making gen odd
 * as that writer does. The child's registry must still be readable:
 * readers (schedtop, tools/schedtop/stall.c) take a copy only under an
 * even gen. Before, the child's reset added 2 to the odd gen and every
 * later write 2 more, so gen stayed odd in the child for good and no
 * copy of its registry was ever consistent. */
Test(elastic, forked_child_registry_readable_after_a_fork_mid_write, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = mk(1, "elg");
	struct weft_metrics *m; /* fork once the worker has parked (see above) */
	bool parked = WT_METRICS_UNTIL(rt, m, m->worker[0].park_count, WT_LONG_MS);
	weft_metrics_free(m);
	cr_assert(parked, "the worker never parked");
	unsigned long long g = __atomic_load_n(&weft_probe_registry.gen, __ATOMIC_ACQUIRE);
	cr_assert_eq(g & 1, 0, "no write under way before the test");
	__atomic_store_n(&weft_probe_registry.gen, g + 1, __ATOMIC_RELEASE); /* the writer's first store */
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		alarm(10);
		int bad = 0;
		if (__atomic_load_n(&weft_probe_registry.gen, __ATOMIC_ACQUIRE) & 1)
			bad |= 1;
		struct weft_runtime *crt = NULL;
		WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
		if (weft_runtime_create(&o, &crt))
			bad |= 2;
		else if (listed() != 1 || (__atomic_load_n(&weft_probe_registry.gen, __ATOMIC_ACQUIRE) & 1))
			bad |= 4;
		if (crt && weft_runtime_destroy(crt))
			bad |= 8;
		if (__atomic_load_n(&weft_probe_registry.gen, __ATOMIC_ACQUIRE) & 1)
			bad |= 16;
		_exit(bad);
	}
	__atomic_store_n(&weft_probe_registry.gen, g + 2, __ATOMIC_RELEASE); /* its second store */
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "child died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_eq(WEXITSTATUS(st), 0, "child failures: mask %d (1: gen odd after the fork, "
		     "4 or 16: odd after a create or destroy in the child)", WEXITSTATUS(st));
	wt_rt_destroy(rt);
}

/* A snapshot taken while the runtime grows never says more active
 * workers than it has rows for (it read the count of cores, then the
 * active count after the grow: workers 1, workers_active 8, in 6 of 300
 * runtimes in the review's program). */
static struct weft_runtime *g_snap_rt;
static atomic_int g_snap_go, g_snap_done;

static void *snap_grow(void *arg)
{
	while (!atomic_load(&g_snap_go))
		;
	weft_runtime_set_workers(g_snap_rt, 8);
	atomic_store(&g_snap_done, 1);
	return arg;
}

Test(elastic, snapshot_during_a_grow_is_consistent, .timeout = WT_TMO(120))
{
	int bad = 0;
	unsigned bad_n = 0, bad_active = 0;
	for (int it = 0; it < 600; it++) {
		g_snap_rt = mk(1, "els");
		atomic_store(&g_snap_go, 0);
		atomic_store(&g_snap_done, 0);
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, snap_grow, NULL), 0);
		atomic_store(&g_snap_go, 1);
		while (!atomic_load(&g_snap_done)) {
			struct weft_metrics *m;
			cr_assert_eq(weft_runtime_metrics(g_snap_rt, &m), 0);
			if (m->workers_active > m->workers) {
				bad++;
				bad_n = m->workers;
				bad_active = m->workers_active;
			}
			weft_metrics_free(m);
		}
		cr_assert_eq(pthread_join(th, NULL), 0);
		wt_rt_destroy(g_snap_rt);
	}
	cr_assert_eq(bad, 0, "%d snapshots with more active workers than rows (e.g. %u of %u)", bad,
		     bad_active, bad_n);
}

static atomic_long g_ran;

static enum weft_poll count_poll(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&g_ran, 1);
	return WEFT_READY;
}

static void run_batch(struct weft_runtime *rt, int n)
{
	long before = atomic_load(&g_ran);
	struct weft_task **t = calloc((size_t)n, sizeof(*t));
	for (int i = 0; i < n; i++)
		cr_assert_eq(weft_spawn_poll(rt, count_poll, NULL, NULL, &t[i]), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	free(t);
	cr_assert_eq(atomic_load(&g_ran) - before, n);
}

Test(elastic, grows_then_shrinks_and_the_threads_exit, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = mk(1, "elg");
	cr_assert(WT_WAIT_UNTIL(threads_named("elg-") == 1, WT_LONG_MS));
	cr_assert_eq(weft_runtime_set_workers(rt, 4), 0);
	unsigned active = 0;
	cr_assert(WT_WAIT_UNTIL(held(rt, &active) == 4, WT_LONG_MS), "4 cores held");
	cr_assert_eq(active, 4);
	cr_assert_eq(registry_ncores(rt), 4, "schedtop's registry lists the new cores");
	uint64_t tids[4];
	for (unsigned i = 0; i < 4; i++) {
		tids[i] = core_tid(rt, i);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(tids[i], tids[j], "cores %u and %u share a thread", i, j);
	}
	cr_assert(WT_WAIT_UNTIL(threads_named("elg-") == 4, WT_LONG_MS));
	run_batch(rt, 5000);

	cr_assert_eq(weft_runtime_set_workers(rt, 1), 0);
	cr_assert(WT_WAIT_UNTIL(held(rt, &active) == 1, WT_LONG_MS), "cores 1-3 let go");
	cr_assert_eq(active, 1);
	cr_assert_eq(core_tid(rt, 0), tids[0], "core 0 kept its thread");
	cr_assert_eq(registry_ncores(rt), 4, "retired cores stay listed (their counters)");
	run_batch(rt, 5000);
	/* the retired cores' threads are spares now: gone after the keep-alive */
	cr_assert(WT_WAIT_UNTIL(threads_named("elg-") == 1, WT_LONG_MS),
		  "%d worker threads left", threads_named("elg-"));
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, 4);
	cr_assert_eq(m->workers_active, 1);
	cr_assert_eq(m->block_in_place_threads, 0, "no spare counted once they exited");
	weft_metrics_free(m);

	/* and back up: retired cores are reused, none is made */
	cr_assert_eq(weft_runtime_set_workers(rt, 3), 0);
	cr_assert(WT_WAIT_UNTIL(held(rt, &active) == 3, WT_LONG_MS), "3 cores held");
	cr_assert_eq(registry_ncores(rt), 4);
	run_batch(rt, 5000);
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------------------------------
 * A core retired with tasks queued on it and a timer in its wheel. Core A
 * is kept in one long poll (spin) so the spawner lands on the other core,
 * B; the spawner queues children on B, asks for one worker, and sleeps
 * (its timer goes into B's wheel). B retires as soon as the spawner's poll
 * ends; the children wait in the inject queue until A is let go; then
 * every child runs and the spawner wakes on A.
 */
struct spinner { atomic_int go, running; atomic_llong tid; };
static struct spinner g_s1, g_s2;
static atomic_long g_child_ran;
static atomic_int g_spawner_woke;
static struct weft_runtime *g_rt;
static atomic_llong g_spawner_tid;

static long my_tid(void) { return (long)syscall(SYS_gettid); }

static enum weft_poll spin(void *s, struct weft_cx *cx)
{
	struct spinner *sp = s;
	atomic_store(&sp->tid, my_tid());
	atomic_store(&sp->running, 1);
	while (!atomic_load(&sp->go))
		;
	return WEFT_READY;
}

static enum weft_poll child(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&g_child_ran, 1);
	return WEFT_READY;
}

enum { CHILDREN = 200 };
static struct weft_task *g_children[CHILDREN];

static void *spawner(void *arg)
{
	atomic_store(&g_spawner_tid, my_tid());
	for (int i = 0; i < CHILDREN; i++)
		cr_assert_eq(weft_spawn_poll(g_rt, child, NULL, NULL, &g_children[i]), 0);
	cr_assert_eq(weft_runtime_set_workers(g_rt, 1), 0); /* from a task, on the core it removes */
	cr_assert_eq(weft_sleep_ns(100 * MS), 0);
	atomic_store(&g_spawner_woke, 1);
	return NULL;
}

Test(elastic, retired_core_hands_over_its_queue_and_timers, .timeout = WT_TMO(60))
{
	/* stall rescue off the table: a 60 s threshold */
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .thread_name_prefix = "elq",
		  .stall_threshold_ns = 60000 * MS);
	struct weft_task *sp, *sp2, *sw;
	/* Shrinking to one worker removes core 1, so the spin must hold core
	 * 0 and the spawner land on core 1. Whichever worker a remote spawn
	 * wakes takes the first spin; if that is core 1, a second spin takes
	 * core 0 (the only free one) and the first is let go. */
	cr_assert_eq(weft_runtime_create(&o, &g_rt), 0);
	cr_assert(WT_WAIT_UNTIL(held(g_rt, NULL) == 2, WT_LONG_MS));
	cr_assert_eq(weft_spawn_poll(g_rt, spin, &g_s1, NULL, &sp), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_s1.running), WT_LONG_MS));
	struct spinner *holder = &g_s1;
	if ((uint64_t)atomic_load(&g_s1.tid) != core_tid(g_rt, 0)) {
		cr_assert_eq(weft_spawn_poll(g_rt, spin, &g_s2, NULL, &sp2), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&g_s2.running), WT_LONG_MS));
		cr_assert_eq((uint64_t)atomic_load(&g_s2.tid), core_tid(g_rt, 0));
		atomic_store(&g_s1.go, 1);
		cr_assert_eq(weft_join(sp, NULL), 0);
		sp = sp2;
		holder = &g_s2;
	}
	uint64_t tid1 = core_tid(g_rt, 1); /* read now: the spawner retires core 1 at once */
	cr_assert_eq(weft_spawn(g_rt, spawner, NULL, &sw), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_spawner_tid) != 0, WT_LONG_MS));
	cr_assert_eq((uint64_t)atomic_load(&g_spawner_tid), tid1, "the spawner ran on core 1");
	/* the spawner's core lets go while the other is still in its spin.
	 * The metrics are not one atomic snapshot: workers_active is read
	 * before the holders, so a read racing the spawner's resize can see
	 * the old count next to the retired core; wait for both. */
	unsigned active = 0;
	cr_assert(WT_WAIT_UNTIL(held(g_rt, &active) == 1 && active == 1, WT_LONG_MS),
		  "the spawner's core retired (held %u, active %u)", held(g_rt, NULL), active);
	struct weft_metrics *m = wt_metrics(g_rt);
	/* B may have run a few from its LIFO slot right after the spawner's
	 * poll (worker.c, run_task); nothing else can run them now: the rest
	 * wait in the inject queue */
	long ran = atomic_load(&g_child_ran);
	cr_assert_leq(ran, 4);
	cr_assert_eq(m->inject_depth + (uint64_t)ran, CHILDREN, "the children moved to the "
		     "inject queue (%llu there, %ld ran)", (unsigned long long)m->inject_depth, ran);
	weft_metrics_free(m);
	atomic_store(&holder->go, 1);
	cr_assert_eq(weft_join(sp, NULL), 0);
	for (int i = 0; i < CHILDREN; i++)
		cr_assert_eq(weft_join(g_children[i], NULL), 0);
	cr_assert_eq(atomic_load(&g_child_ran), CHILDREN);
	cr_assert_eq(weft_join(sw, NULL), 0);
	cr_assert(atomic_load(&g_spawner_woke), "the sleep's timer, in the retired core's "
		  "wheel, fired");
	wt_rt_destroy(g_rt);
}

/* Growing back before a removal is carried out undoes it: the core's
 * thread (in a long poll meanwhile) keeps it. */
static atomic_int g_spins_running, g_spins_go;

static enum weft_poll spin2(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&g_spins_running, 1);
	while (!atomic_load(&g_spins_go))
		;
	return WEFT_READY;
}

Test(elastic, growing_back_before_retirement_keeps_the_thread, .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .thread_name_prefix = "elb",
		  .stall_threshold_ns = 60000 * MS);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert(WT_WAIT_UNTIL(held(rt, NULL) == 2, WT_LONG_MS));
	uint64_t tid1 = core_tid(rt, 1);
	struct weft_task *a, *b;
	cr_assert_eq(weft_spawn_poll(rt, spin2, NULL, NULL, &a), 0);
	cr_assert_eq(weft_spawn_poll(rt, spin2, NULL, NULL, &b), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_spins_running) == 2, WT_LONG_MS));
	cr_assert_eq(weft_runtime_set_workers(rt, 1), 0);
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	atomic_store(&g_spins_go, 1);
	cr_assert_eq(weft_join(a, NULL), 0);
	cr_assert_eq(weft_join(b, NULL), 0);
	run_batch(rt, 2000);
	unsigned active;
	cr_assert_eq(held(rt, &active), 2);
	cr_assert_eq(active, 2);
	cr_assert_eq(core_tid(rt, 1), tid1, "core 1 never changed hands");
	cr_assert_eq(threads_named("elb-"), 2, "no thread started or retired");
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------------------------------
 * Under load: fibers yield, sleep and spawn while another thread resizes
 * the runtime between 1 and 5 workers; every task finishes, nothing lost. */
static atomic_long g_work_done;
static atomic_int g_resizing;

static void *worker_fiber(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	for (int i = 0; i < 40; i++) {
		switch ((k + (uintptr_t)i) % 3) {
		case 0:
			cr_assert_eq(weft_yield(), 0);
			break;
		case 1:
			cr_assert_eq(weft_sleep_ns(200000), 0);
			break;
		default: {
			struct weft_task *t;
			cr_assert_eq(weft_spawn_poll(weft_runtime_current(), count_poll, NULL, NULL,
						     &t), 0);
			cr_assert_eq(weft_join(t, NULL), 0);
		}
		}
	}
	atomic_fetch_add(&g_work_done, 1);
	return NULL;
}

static void *resizer(void *arg)
{
	struct weft_runtime *rt = arg;
	static const int seq[] = { 3, 1, 5, 2, 1, 4, 2, 5, 1, 3 };
	unsigned i = 0;
	while (atomic_load(&g_resizing)) {
		cr_assert_eq(weft_runtime_set_workers(rt, seq[i++ % 10]), 0);
		usleep(2000);
	}
	return NULL;
}

Test(elastic, resizing_under_load_loses_nothing, .timeout = WT_TMO(120))
{
	struct weft_runtime *rt = mk(2, "ell");
	enum { N = 400 };
	static struct weft_task *t[N];
	atomic_store(&g_resizing, 1);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, resizer, rt), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_spawn(rt, worker_fiber, (void *)(uintptr_t)i, &t[i]), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	atomic_store(&g_resizing, 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&g_work_done), N);
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	unsigned active;
	cr_assert(WT_WAIT_UNTIL(held(rt, &active) == 2, WT_LONG_MS), "2 cores held at the end");
	run_batch(rt, 2000);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------ spares: take-back race */

/*
 * A block_in_place whose fn ends before the spare it started (the cold
 * path: a new thread, given the core at creation) has run takes its core
 * back with a CAS on the spare's `assign`, then relists the spare unless it
 * is listed. Between the two, the new spare's first look (spare_wait: no
 * core assigned, not listed) listed it, and another block_in_place popped
 * it and gave it its core: the relist then put on the idle stack a spare
 * holding (or about to hold) a core. A later pop overwrote its pending
 * core (a core left with no thread) and the spare count went below 0
 * (metrics block_in_place_threads 2^32-1; weft_spawn_blocking then never
 * started a pool thread: its jobs never ran). The three threads are lined
 * up on the pool's lock (held here) in the order that shows it: the new
 * spare, the second caller, the first caller's take-back; the kernel wakes
 * a mutex's waiters in the order they came.
 */
static atomic_int g_gate_armed, g_gate_open, g_hook_tid;
static atomic_int g_a_tid, g_a_in, g_a_release, g_a_done, g_b_tid, g_b_in, g_b_release, g_b_done;

static void gate_hook(void *arg, unsigned worker)
{
	(void)arg, (void)worker;
	int one = 1;
	if (!atomic_compare_exchange_strong(&g_gate_armed, &one, 0))
		return;
	atomic_store(&g_hook_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&g_gate_open))
		usleep(200);
}

static void *until_flag(void *arg)
{
	atomic_int *in = arg == (void *)1 ? &g_a_in : &g_b_in;
	atomic_int *rel = arg == (void *)1 ? &g_a_release : &g_b_release;
	atomic_store(in, 1);
	while (!atomic_load(rel))
		usleep(200);
	return NULL;
}

static enum weft_poll bip_a(void *state, struct weft_cx *cx)
{
	atomic_store(&g_a_tid, (int)syscall(SYS_gettid));
	weft_block_in_place(until_flag, (void *)1, NULL);
	atomic_store(&g_a_done, 1);
	return WEFT_READY;
}

static enum weft_poll bip_b(void *state, struct weft_cx *cx)
{
	atomic_store(&g_b_tid, (int)syscall(SYS_gettid));
	weft_block_in_place(until_flag, (void *)2, NULL);
	atomic_store(&g_b_done, 1);
	return WEFT_READY;
}

/* Thread tid is asleep in futex(2) on the word at addr. */
static bool waits_on(int tid, const void *addr)
{
	char path[64], buf[256] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	long nr;
	unsigned long a0;
	return ok && sscanf(buf, "%ld %lx", &nr, &a0) == 2 && nr == SYS_futex &&
	       a0 == (unsigned long)(uintptr_t)addr;
}

/* Under the pool's lock: every spare on the idle stack is idle (no core
 * pending for it, none held by it). */
static bool idle_stack_is_idle(struct weft_runtime *rt)
{
	struct weft__blocking *b = &rt->blocking;
	bool ok = true;
	pthread_mutex_lock(&b->lock);
	for (struct weft__worker *w = b->spares; w && ok; w = w->next_spare) {
		if (atomic_load(&w->assign))
			ok = false;
		for (unsigned i = 0; i < rt->n && ok; i++)
			if (atomic_load(&rt->registry->holder[i]) == w)
				ok = false;
	}
	pthread_mutex_unlock(&b->lock);
	return ok;
}

Test(elastic, take_back_racing_a_new_spares_first_look_lists_no_busy_spare,
     .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .thread_name_prefix = "elr",
		  .on_thread_start = gate_hook);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	const void *lock = &rt->blocking.lock;
	/* both cores' threads past the hook */
	cr_assert(WT_WAIT_UNTIL(held(rt, NULL) == 2, WT_LONG_MS));
	/* A: its call starts a spare (none exists), which waits in the hook */
	atomic_store(&g_gate_armed, 1);
	cr_assert_eq(weft_spawn_poll(rt, bip_a, NULL, NULL, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_a_in) && atomic_load(&g_hook_tid), WT_LONG_MS),
		  "A's fn runs and its new spare starts");
	pthread_mutex_lock(&rt->blocking.lock);
	/* 1st in line: the new spare's first look */
	atomic_store(&g_gate_open, 1);
	bool s_waits = WT_WAIT_UNTIL(waits_on(atomic_load(&g_hook_tid), lock), WT_LONG_MS);
	/* 2nd: B, on the other core, hands its core off */
	cr_assert_eq(weft_spawn_poll(rt, bip_b, NULL, NULL, NULL), 0);
	bool b_waits = WT_WAIT_UNTIL(atomic_load(&g_b_tid) &&
					     waits_on(atomic_load(&g_b_tid), lock),
				     WT_LONG_MS);
	/* 3rd: A's fn ends, its take-back */
	atomic_store(&g_a_release, 1);
	bool a_waits = WT_WAIT_UNTIL(waits_on(atomic_load(&g_a_tid), lock), WT_LONG_MS);
	pthread_mutex_unlock(&rt->blocking.lock);
	cr_assert(s_waits && b_waits && a_waits, "lined up on the pool's lock (%d %d %d)", s_waits,
		  b_waits, a_waits);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_b_in) && atomic_load(&g_a_done), WT_LONG_MS));
	cr_assert(WT_WAIT_UNTIL(idle_stack_is_idle(rt), 2000),
		  "a spare on the idle stack has a core (pending or held)");
	atomic_store(&g_b_release, 1);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_b_done), WT_LONG_MS));
	wt_rt_destroy(rt);
}

/*
 * Handles joined by plain threads after the workers went to sleep: each
 * join frees a slot onto a cache's remote stack from outside the runtime.
 * Only every 1,024th such free (per thread) asked a sleeping worker to
 * trim, so six threads joining 1,000 handles each left all 94 task slabs
 * for good (found by a review). A free onto an empty remote stack asks
 * too, and a trim that found frees still coming comes back for the rest.
 */
#define LJ_THREADS 6
#define LJ_PER 1000
static struct weft_runtime *g_lj_rt;
static struct weft_task *g_lj_h[LJ_THREADS][LJ_PER];
static pthread_barrier_t g_lj_bar;

static enum weft_poll lj_ready(void *s, struct weft_cx *cx) { return WEFT_READY; }

static void *lj_thread(void *arg)
{
	long k = (long)arg;
	for (int i = 0; i < LJ_PER; i++)
		if (weft_spawn_poll(g_lj_rt, lj_ready, NULL, NULL, &g_lj_h[k][i]))
			abort(); /* checked below: every handle joins */
	pthread_barrier_wait(&g_lj_bar); /* all spawned */
	pthread_barrier_wait(&g_lj_bar); /* the workers sleep */
	for (int i = 0; i < LJ_PER; i++)
		if (weft_join(g_lj_h[k][i], NULL))
			abort();
	return NULL;
}

Test(elastic, task_memory_freed_by_late_joiners_is_given_back, .timeout = WT_TMO(60))
{
	g_lj_rt = mk(2, "elj");
	cr_assert_eq(pthread_barrier_init(&g_lj_bar, NULL, LJ_THREADS + 1), 0);
	pthread_t th[LJ_THREADS];
	for (long k = 0; k < LJ_THREADS; k++)
		cr_assert_eq(pthread_create(&th[k], NULL, lj_thread, (void *)k), 0);
	pthread_barrier_wait(&g_lj_bar);
	for (int k = 0; k < LJ_THREADS; k++)
		cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(g_lj_h[k][LJ_PER - 1]), WT_LONG_MS));
	/* both workers trim and go to sleep */
	unsigned active;
	cr_assert(WT_WAIT_UNTIL(held(g_lj_rt, &active) == 2, WT_LONG_MS));
	wt_sleep_ms(1000);
	size_t slabs = atomic_load(&g_lj_rt->slab_count);
	pthread_barrier_wait(&g_lj_bar);
	for (int k = 0; k < LJ_THREADS; k++)
		cr_assert_eq(pthread_join(th[k], NULL), 0);
	bool back = WT_WAIT_UNTIL(atomic_load(&g_lj_rt->slab_count) <= 4, 5000);
	cr_assert(back, "%zu task slabs held by %d handles, %zu 5 s after plain threads joined them",
		  slabs, LJ_THREADS * LJ_PER, (size_t)atomic_load(&g_lj_rt->slab_count));
	pthread_barrier_destroy(&g_lj_bar);
	wt_rt_destroy(g_lj_rt);
}

/*
 * A shrink by more than max_blocking_threads leaves more idle spares (the
 * retired cores' threads, which count there) than the cap. A blocking job
 * asked one of them to leave, which made no room (5 spares, cap 2), and
 * nothing asked the next: the job waited for the others' keep-alive (5 s
 * here, 10 s by default).
 */
static unsigned spares_listed(struct weft_runtime *rt)
{
	unsigned n = 0;
	pthread_mutex_lock(&rt->blocking.lock);
	for (struct weft__worker *w = rt->blocking.spares; w; w = w->next_spare)
		n++;
	pthread_mutex_unlock(&rt->blocking.lock);
	return n;
}

static void *answer_42(void *arg)
{
	(void)arg;
	return (void *)42;
}

Test(elastic, a_blocking_job_after_a_shrink_past_the_cap_does_not_wait, .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 6, .max_blocking_threads = 2,
		  .blocking_keep_alive_ns = 5000 * MS);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert_eq(weft_runtime_set_workers(rt, 1), 0);
	cr_assert(WT_WAIT_UNTIL(spares_listed(rt) == 5, WT_LONG_MS),
		  "the retired cores' threads did not become idle spares");
	uint64_t t0 = wt_now_ns();
	struct weft_task *j;
	void *r = NULL;
	cr_assert_eq(weft_spawn_blocking(rt, answer_42, NULL, &j), 0);
	int rc = weft_join_timeout(j, &r, 2000 * MS);
	uint64_t waited = wt_now_ns() - t0;
	if (rc) {
		weft_abort(j);
		weft_join(j, NULL);
	}
	cr_assert_eq(rc, 0, "the job waited %llu ms and did not run (%d)",
		     (unsigned long long)(waited / MS), rc);
	cr_assert_eq((intptr_t)r, 42);
	cr_assert_lt(waited, 1000 * MS, "the job waited %llu ms for the pool",
		     (unsigned long long)(waited / MS));
	wt_rt_destroy(rt);
}

/* ------------------------------------------ a vacant driver's last worker */

/*
 * The only worker running leaves the driver vacant when it dispatches I/O
 * readiness (driver.c, maybe_vacate): the parked workers sleep on their
 * futexes, and it comes back to the driver when it parks. Retired instead,
 * it never came back, and nobody was called in: the pipe's next byte went
 * unseen for good (the fiber reading it woke only when a spawn happened to
 * wake the other worker). Core 0 is kept in a poll so that core 1's thread
 * takes the driver; core 0 then parks on its futex, and the reader's wake
 * makes core 1 the only worker running.
 */
static struct weft_io *g_vac_io;
static atomic_int g_vac_reads, g_vac_tid, g_vac_hit, g_vac_rc;
static atomic_ullong g_vac_core1; /* core 1's thread id */

/* The reader retires core 1 itself, from the fiber that runs there while
 * the driver is vacant: the main thread's look came too late under ASan
 * (a parked worker, kicked to watch, comes for a vacant driver a watch
 * timeout later). */
static void *vacant_reader(void *arg)
{
	char c;
	for (;;) {
		if (weft_read(g_vac_io, &c, 1) != 1)
			return NULL;
		atomic_store(&g_vac_tid, (int)my_tid());
		if (atomic_load(&g_vac_reads) == 0 && (unsigned long long)my_tid() == atomic_load(&g_vac_core1) &&
		    atomic_load(&g_rt->driver.unwatched) == WEFT__UNWATCHED_VACANT) {
			atomic_store(&g_vac_hit, 1);
			atomic_store(&g_vac_rc, weft_runtime_set_workers(g_rt, 1));
		}
		atomic_fetch_add(&g_vac_reads, 1);
		if (c == 'q')
			return NULL;
	}
}

static enum weft_poll vacant_nop(void *s, struct weft_cx *cx) { return WEFT_READY; }

Test(elastic, retiring_the_worker_that_left_the_driver_vacant_loses_no_readiness,
     .timeout = WT_TMO(120))
{
	int hits = 0;
	for (int round = 0; round < 10 && hits < 3; round++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .thread_name_prefix = "elv",
			  .stall_threshold_ns = 60000 * MS);
		cr_assert_eq(weft_runtime_create(&o, &g_rt), 0);
		cr_assert(WT_WAIT_UNTIL(held(g_rt, NULL) == 2, WT_LONG_MS));
		int p[2];
		cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
		cr_assert_eq(weft_io_register(g_rt, p[0], &g_vac_io), 0);
		atomic_store(&g_vac_reads, 0);
		atomic_store(&g_vac_hit, 0);
		atomic_store(&g_vac_rc, 0);
		atomic_store(&g_vac_core1, core_tid(g_rt, 1));
		struct weft_task *rd, *sp, *sp2 = NULL;
		cr_assert_eq(weft_spawn(g_rt, vacant_reader, NULL, &rd), 0);
		/* core 0 in a poll (as in the test above), so core 1 parks
		 * first and takes the driver */
		memset(&g_s1, 0, sizeof(g_s1));
		memset(&g_s2, 0, sizeof(g_s2));
		cr_assert_eq(weft_spawn_poll(g_rt, spin, &g_s1, NULL, &sp), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&g_s1.running), WT_LONG_MS));
		if ((uint64_t)atomic_load(&g_s1.tid) != core_tid(g_rt, 0)) {
			cr_assert_eq(weft_spawn_poll(g_rt, spin, &g_s2, NULL, &sp2), 0);
			cr_assert(WT_WAIT_UNTIL(atomic_load(&g_s2.running), WT_LONG_MS));
			atomic_store(&g_s1.go, 1);
			cr_assert_eq(weft_join(sp, NULL), 0);
			sp = sp2;
		}
		wt_sleep_ms(30);
		atomic_store(&g_s1.go, 1);
		atomic_store(&g_s2.go, 1);
		cr_assert_eq(weft_join(sp, NULL), 0);
		/* core 0 parks: on its futex, the driver being held; past its
		 * idle trims (fiber.c: two, IDLE_TRIM_GAP_NS apart), after which
		 * it sleeps until woken */
		wt_sleep_ms(800);
		cr_assert_eq(write(p[1], "a", 1), 1);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&g_vac_reads) == 1, WT_LONG_MS));
		bool hit = atomic_load(&g_vac_hit);
		cr_assert_eq(atomic_load(&g_vac_rc), 0);
		wt_sleep_ms(30); /* the reader waits again; core 1 retires */
		cr_assert_eq(write(p[1], "b", 1), 1);
		bool seen = WT_WAIT_UNTIL(atomic_load(&g_vac_reads) == 2, 2000);
		if (!seen) /* let the test end: a spawn wakes core 0, which takes the driver */
			cr_assert_eq(weft_spawn_poll(g_rt, vacant_nop, NULL, NULL, NULL), 0);
		cr_assert_eq(write(p[1], "q", 1), 1);
		cr_assert_eq(weft_join(rd, NULL), 0);
		cr_assert_eq(weft_io_close(g_vac_io), 0);
		close(p[1]);
		wt_rt_destroy(g_rt);
		cr_assert(seen, "round %d (reader on core %d): the byte written after core 1 "
			  "retired was never seen", round, hit ? 1 : 0);
		hits += hit;
	}
	cr_assert_gt(hits, 0, "the reader never ran alone on core 1");
}
