/*
 * test_faults.c - resource failures: the -EAGAIN and -ENOMEM paths of
 * weft_runtime_create and weft_spawn_poll.
 *
 * This executable defines pthread_create and aligned_alloc itself; libweft
 * (the shared library) resolves them here, so a test can make the Nth call
 * fail. Both forward to the next definition (libc, or the sanitizer's
 * interceptor) otherwise. Under ASan, LeakSanitizer checks that failed
 * creates free what they allocated.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <dirent.h>
#include <dlfcn.h>

#define SENTINEL_RT ((struct weft_runtime *)(uintptr_t)0xdead0001)
#define SENTINEL_TASK ((struct weft_task *)(uintptr_t)0xdead0002)

/* Calls seen since the counter was reset; fail the call whose number is
 * `fail_at` (1-based; 0: none; -1: every call). */
static atomic_int pc_calls, pc_fail_at;
static atomic_int aa_calls, aa_fail_at;

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
	if (should_fail(&pc_calls, &pc_fail_at))
		return EAGAIN;
	return real(th, attr, fn, arg);
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
	cr_assert_eq(thread_count(), base);
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
