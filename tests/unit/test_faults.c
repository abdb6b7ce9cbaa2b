/*
 * test_faults.c - resource failures: the -EAGAIN and -ENOMEM paths of
 * weft_runtime_create and weft_spawn_poll, a fiber whose stack cannot be
 * had, and fiber guards on a kernel without MADV_GUARD_INSTALL.
 *
 * This executable defines pthread_create, pthread_cond_timedwait,
 * aligned_alloc, mmap, madvise, mprotect and munmap itself; libweft (the shared library) resolves them
 * here, so a test can make the Nth call (or a fiber stack's mapping) fail,
 * or hold a pthread_create that has started its thread. All forward to
 * the next definition (libc, or the sanitizer's interceptor) otherwise.
 * Under ASan, LeakSanitizer checks that failed calls free what they
 * allocated.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/mman.h>

#define SENTINEL_RT ((struct weft_runtime *)(uintptr_t)0xdead0001)
#define SENTINEL_TASK ((struct weft_task *)(uintptr_t)0xdead0002)

/* Calls seen since the counter was reset; fail the call whose number is
 * `fail_at` (1-based; 0: none; -1: every call). */
static atomic_int pc_calls, pc_fail_at;
static atomic_int aa_calls, aa_fail_at;
/* Hold the next pthread_create made on thread pc_hold_on, once it has
 * started its thread, until pc_release is set (bounded). */
static atomic_bool pc_hold, pc_release;
static pthread_t pc_hold_on;
/* If set, a failing pthread_create first waits (bounded) until it counts
 * one for each call before it: the threads started so far have done
 * something. */
static atomic_int *_Atomic pc_fail_waits_for;

static bool should_fail(atomic_int *calls, atomic_int *fail_at)
{
	int n = atomic_fetch_add(calls, 1) + 1;
	int f = atomic_load(fail_at);
	return f == -1 || (f > 0 && n == f);
}

/* default visibility: the project builds everything with -fvisibility=hidden */
#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE int pthread_create(pthread_t *restrict th, const pthread_attr_t *restrict attr,
		   void *(*fn)(void *), void *restrict arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	if (!real)
		real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
			dlsym(RTLD_NEXT, "pthread_create");
	if (should_fail(&pc_calls, &pc_fail_at)) {
		atomic_int *w = atomic_load(&pc_fail_waits_for);
		if (w)
			WT_WAIT_UNTIL(atomic_load(w) >= atomic_load(&pc_calls) - 1, WT_LONG_MS);
		return EAGAIN;
	}
	int rc = real(th, attr, fn, arg);
	if (rc == 0 && atomic_load(&pc_hold) && pthread_equal(pthread_self(), pc_hold_on)) {
		atomic_store(&pc_hold, false);
		WT_WAIT_UNTIL(atomic_load(&pc_release), WT_LONG_MS);
	}
	return rc;
}

/* If set, the next timed wait of a blocking-pool thread (named "...-blk")
 * ends at its first wake and says ETIMEDOUT: its keep-alive running out
 * just as it is woken, an interleaving the real call allows. Once. */
static atomic_bool ctw_pool_times_out;

INTERPOSE int pthread_cond_timedwait(pthread_cond_t *restrict cv, pthread_mutex_t *restrict mx,
				     const struct timespec *restrict ts)
{
	static int (*real)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
	if (!real)
		real = (int (*)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *))
			dlsym(RTLD_NEXT, "pthread_cond_timedwait");
	char name[16];
	if (atomic_load(&ctw_pool_times_out) &&
	    !pthread_getname_np(pthread_self(), name, sizeof(name)) && strstr(name, "-blk") &&
	    atomic_exchange(&ctw_pool_times_out, false)) {
		pthread_cond_wait(cv, mx);
		return ETIMEDOUT;
	}
	return real(cv, mx, ts);
}

INTERPOSE void *aligned_alloc(size_t alignment, size_t size)
{
	static void *(*real)(size_t, size_t);
	if (!real)
		real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	if (should_fail(&aa_calls, &aa_fail_at))
		return NULL;
	return real(alignment, size);
}

static unsigned thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	cr_assert_not_null(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static atomic_int hook_starts, hook_stops;
static void on_start(void *arg, unsigned w) { atomic_fetch_add(&hook_starts, 1); }
static void on_stop(void *arg, unsigned w) { atomic_fetch_add(&hook_stops, 1); }

/* Creates with the Nth call of `calls` failing, for every N a successful
 * create makes; expects `want` and a clean unwind each time. */
static void fail_each_call(atomic_int *calls, atomic_int *fail_at, int want, const char *what)
{
	enum { W = 4 };
	WEFT_OPTS(weft_runtime_opts, o, .workers = W, .on_thread_start = on_start,
		  .on_thread_stop = on_stop);
	struct weft_runtime *rt = NULL;
	unsigned base = thread_count();

	atomic_store(calls, 0);
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	int k = atomic_load(calls);
	wt_rt_destroy(rt);
	cr_assert_gt(k, 0, "create made no %s call: the interposition does not work", what);
	cr_log_info("create makes %d %s calls", k, what);

	for (int f = 1; f <= k; f++) {
		atomic_store(&hook_starts, 0);
		atomic_store(&hook_stops, 0);
		atomic_store(calls, 0);
		atomic_store(fail_at, f);
		rt = SENTINEL_RT;
		int rc = weft_runtime_create(&o, &rt);
		atomic_store(fail_at, 0);
		cr_assert_eq(rc, want, "%s call %d of %d failing: create = %d (%s), want %d", what, f,
			     k, rc, weft_strerror(rc), want);
		cr_assert_eq(rt, SENTINEL_RT, "out written by a failed create");
		cr_assert(WT_WAIT_UNTIL(thread_count() == base, 1000),
			  "%s call %d failing: %u threads left over", what, f, thread_count() - base);
		cr_assert_eq(atomic_load(&hook_starts), atomic_load(&hook_stops),
			     "%s call %d failing: %d workers started, %d stopped", what, f,
			     atomic_load(&hook_starts), atomic_load(&hook_stops));
	}
	/* and everything works again */
	rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	wt_rt_destroy(rt);
	/* a joined thread's /proc entry may outlive pthread_join by a moment */
	cr_assert(WT_WAIT_UNTIL(thread_count() == base, 1000), "%u threads left over",
		  thread_count() - base);
}

Test(faults, create_pthread_create_fails, .timeout = WT_TMO(20))
{
	fail_each_call(&pc_calls, &pc_fail_at, -EAGAIN, "pthread_create");
}

Test(faults, create_aligned_alloc_fails, .timeout = WT_TMO(20))
{
	fail_each_call(&aa_calls, &aa_fail_at, -ENOMEM, "aligned_alloc");
}

static atomic_int drops, polls;

static enum weft_poll ready_poll(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&polls, 1);
	return WEFT_READY;
}

struct parent {
	atomic_int child_rc, child_drops_at_return;
	struct weft_task *child_h;
};

static enum weft_poll parent_poll(void *s, struct weft_cx *cx)
{
	struct parent *p = s;
	/* this worker's task cache is empty: the spawn needs a new slab */
	atomic_store(&aa_fail_at, -1);
	p->child_h = SENTINEL_TASK;
	int rc = weft_spawn_poll(weft_cx_runtime(cx), ready_poll, &drops, wt_drop_count, &p->child_h);
	atomic_store(&aa_fail_at, 0);
	atomic_store(&p->child_drops_at_return, atomic_load(&drops));
	atomic_store(&p->child_rc, rc);
	return WEFT_READY;
}

Test(faults, spawn_enomem_drops_once, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);

	/* from a foreign thread */
	struct weft_task *h = SENTINEL_TASK;
	atomic_store(&aa_fail_at, -1);
	int rc = weft_spawn_poll(rt, ready_poll, &drops, wt_drop_count, &h);
	atomic_store(&aa_fail_at, 0);
	cr_assert_eq(rc, -ENOMEM, "spawn with no memory = %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(atomic_load(&drops), 1, "drop must run before a failed spawn returns");
	cr_assert_eq(h, SENTINEL_TASK, "out written by a failed spawn");

	/* from a worker */
	static struct parent p;
	struct weft_task *ph;
	cr_assert_eq(weft_spawn_poll(rt, parent_poll, &p, NULL, &ph), 0);
	cr_assert_eq(weft_join(ph, NULL), 0);
	cr_assert_eq(atomic_load(&p.child_rc), -ENOMEM, "spawn from a worker with no memory = %d",
		     atomic_load(&p.child_rc));
	cr_assert_eq(atomic_load(&p.child_drops_at_return), 2);
	cr_assert_eq(p.child_h, SENTINEL_TASK);

	/* memory is back: spawns work */
	cr_assert_eq(weft_spawn_poll(rt, ready_poll, &drops, wt_drop_count, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&drops), 3);
	cr_assert_eq(atomic_load(&polls), 1);
}

/* ---------------------------------------------------- fiber stack faults */

/*
 * A fiber takes its stack at weft_spawn (lib/fiber/fiber.c): from a pool, else a
 * new slot of a slab - one mmap (MAP_NORESERVE | MAP_STACK) of many stacks -
 * whose 64 KiB guard region is installed with madvise(MADV_GUARD_INSTALL),
 * or mprotect(PROT_NONE) where the kernel answers EINVAL. The interposed
 * mmap/madvise/mprotect/munmap below recognise slabs by their flags and
 * guards by their length, fail them while asked to, and count slabs mapped
 * and unmapped: LeakSanitizer does not see mmap, so "no slab leaked" is
 * checked by the count.
 */
#define STK_SIZE (100 * 1024)
#define GUARD_LEN (64 * 1024)
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static atomic_bool stk_watch;                  /* count and fail only while set */
static atomic_int stk_fail_mmap, stk_fail_mprotect, stk_guard_einval;
static atomic_int stk_maps, stk_unmaps, stk_mmap_failed, stk_mprotect_failed;
static atomic_int stk_guard_madvise, stk_guard_mprotect;
static _Atomic size_t stk_slab_len;

static bool is_slab(int flags, int fd)
{
	return atomic_load(&stk_watch) && (flags & MAP_NORESERVE) && (flags & MAP_STACK) &&
	       (flags & MAP_ANONYMOUS) && fd == -1;
}

INTERPOSE void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);
	if (!real)
		real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
	bool slab = is_slab(flags, fd);
	if (slab && atomic_load(&stk_fail_mmap)) {
		atomic_fetch_add(&stk_mmap_failed, 1);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = real(addr, len, prot, flags, fd, off);
	if (slab && p != MAP_FAILED) {
		atomic_fetch_add(&stk_maps, 1);
		atomic_store(&stk_slab_len, len);
	}
	return p;
}

INTERPOSE int madvise(void *addr, size_t len, int advice)
{
	static int (*real)(void *, size_t, int);
	if (!real)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
	if (atomic_load(&stk_watch) && advice == MADV_GUARD_INSTALL) {
		atomic_fetch_add(&stk_guard_madvise, 1);
		if (atomic_load(&stk_guard_einval)) {
			errno = EINVAL; /* as a kernel before 6.13 */
			return -1;
		}
	}
	return real(addr, len, advice);
}

INTERPOSE int mprotect(void *addr, size_t len, int prot)
{
	static int (*real)(void *, size_t, int);
	if (!real)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "mprotect");
	if (atomic_load(&stk_watch) && prot == PROT_NONE && len == GUARD_LEN) {
		if (atomic_load(&stk_fail_mprotect)) {
			atomic_fetch_add(&stk_mprotect_failed, 1);
			errno = ENOMEM; /* as when vm.max_map_count is reached */
			return -1;
		}
		atomic_fetch_add(&stk_guard_mprotect, 1);
	}
	return real(addr, len, prot);
}

INTERPOSE int munmap(void *addr, size_t len)
{
	static int (*real)(void *, size_t);
	if (!real)
		real = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
	int rc = real(addr, len);
	if (rc == 0 && atomic_load(&stk_watch) && len == atomic_load(&stk_slab_len))
		atomic_fetch_add(&stk_unmaps, 1);
	return rc;
}

static unsigned map_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	cr_assert_not_null(f);
	unsigned n = 0;
	int ch;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static atomic_int fib_runs;

static void *fib_fn(void *arg)
{
	atomic_fetch_add(&fib_runs, 1);
	weft_yield(); /* suspend once: the stack is really switched to and back */
	return arg;
}

/* Holds fibers suspended until the test opens it. */
static struct weft_waitgroup *stk_gate;

static void *gated_fn(void *arg)
{
	atomic_fetch_add(&fib_runs, 1);
	weft_waitgroup_wait(stk_gate);
	return arg;
}

static void gate_close(void)
{
	cr_assert_eq(weft_waitgroup_create(&stk_gate), 0);
	cr_assert_eq(weft_waitgroup_add(stk_gate, 1), 0);
}

static void gate_open_and_join(struct weft_task **h, int k)
{
	cr_assert(WT_WAIT_UNTIL(atomic_load(&fib_runs) == k, WT_LONG_MS), "%d of %d fibers ran",
		  atomic_load(&fib_runs), k);
	cr_assert_eq(weft_waitgroup_done(stk_gate), 0);
	for (uintptr_t i = 0; i < (uintptr_t)k; i++) {
		void *res;
		cr_assert_eq(weft_join(h[i], &res), 0);
		cr_assert_eq((uintptr_t)res, i);
	}
	cr_assert_eq(weft_waitgroup_destroy(stk_gate), 0);
}

/* A poll task that spawns a fiber from a worker and joins it with
 * weft_join_poll: the worker's own stack pool is consulted first. */
struct fib_parent {
	struct weft_task *child;
	int spawn_rc;
	atomic_int join_rc;
	atomic_int done;
};

static enum weft_poll fib_parent_poll(void *s, struct weft_cx *cx)
{
	struct fib_parent *p = s;
	if (!p->child) {
		p->spawn_rc = weft_spawn(weft_cx_runtime(cx), fib_fn, (void *)1, &p->child);
		if (p->spawn_rc) {
			atomic_store(&p->done, 1);
			return WEFT_READY;
		}
	}
	void *res = (void *)0x1;
	int rc = weft_join_poll(p->child, cx, &res);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	if (res != NULL)
		rc = 1000; /* a failed join must not hand out a result */
	atomic_store(&p->join_rc, rc);
	atomic_store(&p->done, 1);
	return WEFT_READY;
}

static struct weft_runtime *stk_rt_create(void)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .fiber_stack_size = STK_SIZE);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	atomic_store(&stk_maps, 0);
	atomic_store(&stk_unmaps, 0);
	atomic_store(&stk_mmap_failed, 0);
	atomic_store(&stk_mprotect_failed, 0);
	atomic_store(&stk_guard_madvise, 0);
	atomic_store(&stk_guard_mprotect, 0);
	atomic_store(&stk_slab_len, 0);
	atomic_store(&fib_runs, 0);
	atomic_store(&stk_watch, true);
	return rt;
}

static uint64_t stk_failures(struct weft_runtime *rt)
{
	struct weft_metrics *m = wt_metrics(rt);
	uint64_t n = m->fiber_stack_alloc_failures;
	weft_metrics_free(m);
	return n;
}

/* With stacks available again, fibers run, and every slab mapped is gone
 * after destroy. */
static void stk_recover_and_destroy(struct weft_runtime *rt)
{
	enum { K = 64 };
	struct weft_task *h[K];
	int runs0 = atomic_load(&fib_runs);
	for (uintptr_t i = 0; i < K; i++)
		cr_assert_eq(weft_spawn(rt, fib_fn, (void *)(i + 10), &h[i]), 0);
	for (uintptr_t i = 0; i < K; i++) {
		void *res = NULL;
		int rc = weft_join(h[i], &res);
		cr_assert_eq(rc, 0, "fiber %zu after the fault: join = %d (%s)", (size_t)i, rc,
			     weft_strerror(rc));
		cr_assert_eq((uintptr_t)res, i + 10);
	}
	cr_assert_eq(atomic_load(&fib_runs) - runs0, K);
	cr_assert_gt(atomic_load(&stk_maps), 0, "no slab mapping seen: the interposition does not work");
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&stk_maps), atomic_load(&stk_unmaps),
		     "%d stack slabs mapped, %d unmapped after destroy", atomic_load(&stk_maps),
		     atomic_load(&stk_unmaps));
	atomic_store(&stk_watch, false);
}

Test(faults, fiber_stack_mmap_fails, .timeout = WT_TMO(20))
{
	/* A fresh runtime has no slab: the first spawn has to map one, and
	 * that fails. The spawn says so; nothing runs later. */
	struct weft_runtime *rt = stk_rt_create();
	atomic_store(&stk_fail_mmap, 1);

	struct weft_task *a = SENTINEL_TASK;
	int rc = weft_spawn(rt, fib_fn, (void *)7, &a);
	cr_assert_eq(rc, -ENOMEM, "spawn without a stack = %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(a, SENTINEL_TASK, "out written by a failed spawn");

	/* detached: refused just the same, not lost silently */
	rc = weft_spawn(rt, fib_fn, NULL, NULL);
	cr_assert_eq(rc, -ENOMEM, "detached spawn without a stack = %d", rc);

	/* spawned from a poll task on a worker (the core's cache is empty) */
	static struct fib_parent p;
	memset(&p, 0, sizeof p);
	struct weft_task *ph;
	cr_assert_eq(weft_spawn_poll(rt, fib_parent_poll, &p, NULL, &ph), 0);
	cr_assert_eq(weft_join(ph, NULL), 0);
	cr_assert_eq(p.spawn_rc, -ENOMEM, "spawn from a worker without a stack = %d", p.spawn_rc);

	atomic_store(&stk_fail_mmap, 0);
	cr_assert_eq(atomic_load(&stk_mmap_failed), 3);
	cr_assert_eq(stk_failures(rt), 3, "stack allocation failures not counted");
	wt_sleep_ms(20);
	cr_assert_eq(atomic_load(&fib_runs), 0, "a fiber ran without a stack");
	cr_assert_eq(atomic_load(&stk_maps), 0);

	stk_recover_and_destroy(rt);
}

/* A kernel without MADV_GUARD_INSTALL (EINVAL): guards fall back to
 * mprotect, one per stack, each splitting the slab's mapping. */
Test(faults, fiber_guard_fallback_mprotect, .timeout = WT_TMO(20))
{
	enum { K = 100 };
	struct weft_runtime *rt = stk_rt_create();
	atomic_store(&stk_guard_einval, 1);
	unsigned maps0 = map_count();
	gate_close();
	struct weft_task *h[K];
	for (uintptr_t i = 0; i < K; i++)
		cr_assert_eq(weft_spawn(rt, gated_fn, (void *)i, &h[i]), 0);
	cr_assert_eq(atomic_load(&stk_guard_madvise), 1, "the guard madvise was tried %d times",
		     atomic_load(&stk_guard_madvise));
	/* at least one per stack: workers also install them ahead of the
	 * spawner (fiber.c, guard_ahead), up to 512 slots, sometimes twice */
	cr_assert_geq(atomic_load(&stk_guard_mprotect), K, "%d PROT_NONE guards for %d stacks",
		      atomic_load(&stk_guard_mprotect), K);
	unsigned maps1 = map_count();
	cr_assert_geq(maps1, maps0 + 2 * K - 2, "fallback guards split the slab: %u -> %u mappings",
		      maps0, maps1);
	gate_open_and_join(h, K);
	atomic_store(&stk_guard_einval, 0);
	stk_recover_and_destroy(rt);
}

/* ... and the mappings those guards cost come back with the stacks: once
 * the workers have given every idle stack back, the slab is one mapping
 * again, and the next burst's stacks take their guards afresh. The guards
 * stayed, two mappings per stack ever in use until destroy, fibers live
 * or not (found by a review: 10,044 mappings with none live after a
 * burst of 5,000), against vm.max_map_count for the whole process. */
Test(faults, fiber_guard_fallback_gives_its_mappings_back, .timeout = WT_TMO(30))
{
	enum { K = 500 };
	struct weft_runtime *rt = stk_rt_create();
	atomic_store(&stk_guard_einval, 1);
	unsigned maps0 = map_count();
	struct weft_task *h[K];
	for (int round = 0; round < 2; round++) {
		atomic_store(&fib_runs, 0);
		int guards0 = atomic_load(&stk_guard_mprotect);
		gate_close();
		for (uintptr_t i = 0; i < K; i++)
			cr_assert_eq(weft_spawn(rt, gated_fn, (void *)i, &h[i]), 0);
		cr_assert_geq(atomic_load(&stk_guard_mprotect) - guards0, K,
			      "round %d: %d PROT_NONE guards for %d stacks", round,
			      atomic_load(&stk_guard_mprotect) - guards0, K);
		unsigned live = map_count();
		cr_assert_geq(live, maps0 + 2 * K - 2, "round %d: %u -> %u mappings", round, maps0,
			      live);
		gate_open_and_join(h, K);
		struct weft_metrics *m;
		cr_assert(WT_METRICS_UNTIL(rt, m, m->fiber_stack_bytes_resident == 0, 3000));
		weft_metrics_free(m);
		unsigned idle;
		bool back = WT_WAIT_UNTIL((idle = map_count()) <= maps0 + 16, 3000);
		cr_assert(back, "round %d: %u mappings with no fiber live (%u before the burst, %u with "
			  "%d live)", round, idle, maps0, live, K);
	}
	atomic_store(&stk_guard_einval, 0);
	stk_recover_and_destroy(rt);
}

/* With MADV_GUARD_INSTALL, stacks cost no mapping of their own. */
Test(faults, fiber_guards_do_not_split_the_mapping, .timeout = WT_TMO(20))
{
	enum { K = 1000 };
	struct weft_runtime *rt = stk_rt_create();
	unsigned maps0 = map_count();
	gate_close();
	static struct weft_task *h[K];
	for (uintptr_t i = 0; i < K; i++)
		cr_assert_eq(weft_spawn(rt, gated_fn, (void *)i, &h[i]), 0);
	unsigned maps1 = map_count();
	cr_assert_geq(atomic_load(&stk_guard_madvise), K); /* and some ahead */
	cr_assert_eq(atomic_load(&stk_guard_mprotect), 0);
	cr_assert_eq(atomic_load(&stk_maps), 1, "%d slabs for %d stacks", atomic_load(&stk_maps), K);
	/* the slab, and a few for the allocator (more under ASan); the
	 * fallback would add 2 per stack */
	cr_assert_lt(maps1, maps0 + K / 20, "%d stacks: %u -> %u mappings", K, maps0, maps1);
	gate_open_and_join(h, K);
	stk_recover_and_destroy(rt);
}

/* The fallback's mprotect fails as it does when vm.max_map_count is
 * reached: the spawn returns -EAGAIN. */
Test(faults, fiber_stack_guard_mprotect_fails, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = stk_rt_create();
	atomic_store(&stk_guard_einval, 1);
	atomic_store(&stk_fail_mprotect, 1);
	struct weft_task *a = SENTINEL_TASK;
	int rc = weft_spawn(rt, fib_fn, (void *)7, &a);
	atomic_store(&stk_fail_mprotect, 0);
	cr_assert_eq(rc, -EAGAIN, "spawn whose guard failed = %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(a, SENTINEL_TASK);
	cr_assert_eq(atomic_load(&stk_mprotect_failed), 1);
	cr_assert_eq(stk_failures(rt), 1);
	wt_sleep_ms(20);
	cr_assert_eq(atomic_load(&fib_runs), 0, "a fiber ran on a stack without a guard");
	/* the slot whose guard failed is tried again by the next spawn */
	stk_recover_and_destroy(rt);
	cr_assert_geq(atomic_load(&stk_guard_mprotect), 1, "the recovered stacks have no guard");
	atomic_store(&stk_guard_einval, 0);
}

/* pthread_create failing for the blocking pool: spawn_blocking still
 * succeeds and the job waits in the queue; once threads can be created
 * again, the runtime starts one by itself (a worker retries when it parks
 * or runs maintenance), without another spawn_blocking. */
static atomic_int blocking_ran;

static void *blocking_job(void *arg)
{
	atomic_fetch_add(&blocking_ran, 1);
	return arg;
}

static enum weft_poll nudge_poll(void *s, struct weft_cx *cx) { return WEFT_READY; }

Test(faults, blocking_pool_queues_while_pthread_create_fails, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	atomic_store(&blocking_ran, 0);
	atomic_store(&pc_calls, 0);
	atomic_store(&pc_fail_at, -1); /* every thread creation fails */
	struct weft_task *t;
	cr_assert_eq(weft_spawn_blocking(rt, blocking_job, (void *)7L, &t), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->blocking_threads, 0);
	cr_assert_eq(m->blocking_queue_depth, 1, "the job must wait in the queue");
	weft_metrics_free(m);
	wt_sleep_ms(50);
	cr_assert_eq(atomic_load(&blocking_ran), 0);
	cr_assert_geq(atomic_load(&pc_calls), 1, "the pool did not even try to start a thread");
	/* a worker that parks or runs maintenance retries: still failing */
	cr_assert_eq(weft_spawn_poll(rt, nudge_poll, NULL, NULL, NULL), 0);
	wt_sleep_ms(20);
	cr_assert_eq(atomic_load(&blocking_ran), 0);
	atomic_store(&pc_fail_at, 0); /* threads can be created again */
	cr_assert_eq(weft_spawn_poll(rt, nudge_poll, NULL, NULL, NULL), 0);
	void *res;
	cr_assert_eq(weft_join(t, &res), 0);
	cr_assert_eq((long)res, 7);
	cr_assert_eq(atomic_load(&blocking_ran), 1);
	wt_rt_destroy(rt);
}

/* A start hook that grows the runtime while weft_runtime_create is still
 * starting its first workers: the hook may name the runtime
 * (weft_runtime_current) and weft_runtime_set_workers is callable from any
 * thread. create's loop over the first workers read the grown core count:
 * it wrote worker structs past the end of its array (ASan: heap-buffer-
 * overflow) and started a second thread for each new core, which a spare
 * already drove (found by a review). The pthread_create of worker 0 is
 * held until its hook has grown the runtime, so the loop looks after. */
static atomic_int grow_rc, grow_starts[4], grow_stops;

static void grow_on_start(void *arg, unsigned w)
{
	atomic_fetch_add(&grow_starts[w < 4 ? w : 3], 1);
	if (w == 0 && !atomic_load(&pc_release)) {
		atomic_store(&grow_rc, weft_runtime_set_workers(weft_runtime_current(), 3));
		atomic_store(&pc_release, true);
	}
}

static void grow_on_stop(void *arg, unsigned w) { atomic_fetch_add(&grow_stops, 1); }

Test(faults, a_start_hook_growing_the_runtime_during_create, .timeout = WT_TMO(20))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .on_thread_start = grow_on_start,
		  .on_thread_stop = grow_on_stop);
	atomic_store(&pc_release, false);
	pc_hold_on = pthread_self();
	atomic_store(&pc_hold, true);
	struct weft_runtime *rt = NULL;
	int rc = weft_runtime_create(&o, &rt);
	atomic_store(&pc_hold, false);
	cr_assert_eq(rc, 0, "create = %d (%s)", rc, weft_strerror(rc));
	cr_assert(atomic_load(&pc_release), "worker 0's start hook did not run during create");
	cr_assert_eq(atomic_load(&grow_rc), 0, "set_workers from the hook = %d",
		     atomic_load(&grow_rc));
	struct weft_metrics *m = NULL;
	cr_assert(WT_METRICS_UNTIL(rt, m, m->workers == 3 && m->workers_active == 3 &&
				   m->worker[1].thread_id && m->worker[2].thread_id, WT_LONG_MS));
	weft_metrics_free(m);
	wt_rt_destroy(rt);
	/* every thread started ran its start hook first; destroy waited for all */
	int s0 = atomic_load(&grow_starts[0]), s1 = atomic_load(&grow_starts[1]),
	    s2 = atomic_load(&grow_starts[2]), s3 = atomic_load(&grow_starts[3]);
	cr_assert(s0 == 1 && s1 == 1 && s2 == 1 && s3 == 0,
		  "threads started per core: %d %d %d %d, want 1 1 1 0", s0, s1, s2, s3);
	cr_assert_eq(atomic_load(&grow_stops), 3);
}

/* Start hooks may spawn (weft.h: their spawns go to the inject queue).
 * When a later worker cannot be started, create fails: every task the
 * hooks spawned is ended as a shutdown ends it - a poll task's drop, a
 * fiber's spawn drop if it never started, its unwinding if it did - each
 * exactly once. Before, the runtime was freed with the tasks in its
 * queues and on its list: none of them ended (found by a review). */
static atomic_int hs_spawned, hs_ended, hs_hooks_done;

static enum weft_poll hs_pending(void *s, struct weft_cx *cx) { return WEFT_PENDING; }
static void hs_end(void *s) { atomic_fetch_add(&hs_ended, 1); }

static void *hs_fiber(void *arg)
{
	(void)weft_sleep_ns(WEFT_FOREVER); /* until cancelled */
	hs_end(arg);
	return NULL;
}

static void hs_on_start(void *arg, unsigned w)
{
	struct weft_runtime *rt = weft_runtime_current();
	on_start(arg, w);
	if (weft_spawn_poll(rt, hs_pending, NULL, hs_end, NULL) == 0)
		atomic_fetch_add(&hs_spawned, 1);
	if (weft_spawn_poll(rt, ready_poll, NULL, hs_end, NULL) == 0)
		atomic_fetch_add(&hs_spawned, 1);
	WEFT_OPTS(weft_spawn_opts, so, .drop = hs_end);
	if (weft_spawn_with(rt, hs_fiber, NULL, &so, NULL) == 0)
		atomic_fetch_add(&hs_spawned, 1);
	atomic_fetch_add(&hs_hooks_done, 1);
}

Test(faults, create_failing_after_a_start_hook_spawned_ends_its_tasks, .timeout = WT_TMO(30))
{
	enum { W = 3 };
	WEFT_OPTS(weft_runtime_opts, o, .workers = W, .on_thread_start = hs_on_start,
		  .on_thread_stop = on_stop);
	unsigned base = thread_count();
	/* the failing call waits for the hooks of the workers before it */
	atomic_store(&pc_fail_waits_for, &hs_hooks_done);
	/* call 1 failing starts no thread, so no hook */
	for (int f = 2; f <= W; f++) {
		atomic_store(&hs_spawned, 0);
		atomic_store(&hs_ended, 0);
		atomic_store(&hs_hooks_done, 0);
		atomic_store(&hook_starts, 0);
		atomic_store(&hook_stops, 0);
		atomic_store(&pc_calls, 0);
		atomic_store(&pc_fail_at, f);
		struct weft_runtime *rt = SENTINEL_RT;
		int rc = weft_runtime_create(&o, &rt);
		atomic_store(&pc_fail_at, 0);
		cr_assert_eq(rc, -EAGAIN, "pthread_create call %d failing: create = %d", f, rc);
		cr_assert_eq(rt, SENTINEL_RT, "out written by a failed create");
		cr_assert_eq(atomic_load(&hook_starts), f - 1);
		cr_assert_eq(atomic_load(&hook_stops), f - 1);
		cr_assert_eq(atomic_load(&hs_spawned), 3 * (f - 1), "a hook's spawn failed");
		cr_assert_eq(atomic_load(&hs_ended), atomic_load(&hs_spawned),
			     "call %d failing: %d tasks spawned by the hooks, %d ended", f,
			     atomic_load(&hs_spawned), atomic_load(&hs_ended));
		cr_assert(WT_WAIT_UNTIL(thread_count() == base, 1000),
			  "call %d failing: %u threads left over", f, thread_count() - base);
	}
	atomic_store(&pc_fail_waits_for, NULL);
}

/* max_blocking_threads 1 held by an idle pool thread (keep-alive 30 s): a
 * weft_block_in_place asks it to leave (spare_take), and the thread's
 * keep-alive runs out as it wakes (forced here), so it leaves by the
 * timeout instead. The request to leave stayed pending: the next pool
 * thread to go idle, started for a later job, left at once (its keep-alive
 * ignored), and the next block_in_place would not ask the idle thread for
 * its room (found by a review). */
static void *ctw_job(void *arg)
{
	return arg;
}

static void *ctw_fn(void *arg)
{
	wt_sleep_ms(20);
	return arg;
}

static void *ctw_fiber(void *arg)
{
	void *r = NULL;
	cr_assert_eq(weft_block_in_place(ctw_fn, arg, &r), 0);
	return r;
}

Test(faults, a_pool_threads_keep_alive_ending_as_a_spare_asks_for_its_room,
     .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1,
		  .blocking_keep_alive_ns = 30000 * 1000000ull);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	atomic_store(&ctw_pool_times_out, true);
	struct weft_task *t;
	void *r;
	cr_assert_eq(weft_spawn_blocking(rt, ctw_job, (void *)1, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	struct weft_metrics *m;
	/* under the pool's lock from idle++ to the wait: idle means waiting */
	cr_assert(WT_METRICS_UNTIL(rt, m, m->blocking_idle_threads == 1, WT_LONG_MS));
	weft_metrics_free(m);
	cr_assert_eq(weft_spawn(rt, ctw_fiber, (void *)2, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((uintptr_t)r, 2);
	cr_assert(!atomic_load(&ctw_pool_times_out), "the pool thread's wait was not seen");
	m = wt_metrics(rt);
	cr_assert_eq(m->blocking_threads, 0, "the idle pool thread did not leave");
	cr_assert_eq(m->block_in_place_threads_started, 1, "no spare took the room");
	weft_metrics_free(m);
	/* a job now: a pool thread takes the room back from the spare, runs
	 * it and waits out its 30 s keep-alive */
	cr_assert_eq(weft_spawn_blocking(rt, ctw_job, (void *)3, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((uintptr_t)r, 3);
	bool idle = WT_METRICS_UNTIL(rt, m, m->blocking_threads == 1 &&
					       m->blocking_idle_threads == 1, WT_LONG_MS);
	cr_assert(idle, "the new pool thread left at once: %llu threads, %llu exited",
		  (unsigned long long)m->blocking_threads,
		  (unsigned long long)m->blocking_threads_exited);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* max_blocking_threads 1: a job spawned while pthread_create fails
 * leaves the pool "starved"; then a weft_block_in_place (in the same poll)
 * starts a spare, which takes the room. The spare's park retried the
 * pool's thread regardless, one beyond the cap (weft.h: pool threads and
 * spares together at most max_blocking_threads), and the job ran while fn
 * held the room. Now the job waits for the room: the spare's leaving
 * starts its thread (found by a review). */
static atomic_int st_in_fn, st_release;
static struct weft_task *_Atomic st_job;

static void *st_fn(void *arg)
{
	atomic_store(&st_in_fn, 1);
	WT_WAIT_UNTIL(atomic_load(&st_release), 20000);
	return arg;
}

static void *st_fiber(void *arg)
{
	struct weft_task *job;
	/* the first pthread_create fails: this job's thread */
	cr_assert_eq(weft_spawn_blocking(weft_runtime_current(), blocking_job, (void *)7L, &job), 0);
	atomic_store(&st_job, job);
	void *r = NULL;
	cr_assert_eq(weft_block_in_place(st_fn, arg, &r), 0);
	return r;
}

Test(faults, a_starved_pool_retries_within_max_blocking_threads, .timeout = WT_TMO(60))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	atomic_store(&pc_calls, 0);
	atomic_store(&pc_fail_at, 1);
	struct weft_task *f;
	cr_assert_eq(weft_spawn(rt, st_fiber, (void *)5L, &f), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&st_in_fn), WT_LONG_MS));
	struct weft_task *job = atomic_load(&st_job);
	cr_assert_geq(atomic_load(&pc_calls), 2, "no failed try, or no spare");
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->block_in_place_threads_started, 1, "no spare took the core");
	weft_metrics_free(m);
	/* the spare drives the core and parks (its retry) at once */
	bool ran = WT_WAIT_UNTIL(weft_task_is_finished(job), 1000);
	m = wt_metrics(rt);
	uint64_t threads = m->blocking_threads, spares = m->block_in_place_threads;
	weft_metrics_free(m);
	cr_assert(!ran && threads + spares <= 1,
		  "past max_blocking_threads 1: %llu pool threads and %llu spares (job ran: %d)",
		  (unsigned long long)threads, (unsigned long long)spares, ran);
	atomic_store(&st_release, 1);
	void *r;
	cr_assert_eq(weft_join(f, &r), 0);
	cr_assert_eq((long)r, 5);
	cr_assert_eq(weft_join(job, &r), 0, "the job never got the room back");
	cr_assert_eq((long)r, 7);
	wt_rt_destroy(rt);
}
