/*
 * test_api.c - the public API contract of weft.h and weft/metrics.h.
 *
 * Every error code the headers document is provoked here, with the side
 * conditions the headers promise: out-parameters untouched on failure, drop
 * run exactly once (before the call returns) for a failed spawn, callbacks
 * of failed calls never run, handles not consumed where it says so.
 * Then the positive contract: defaults, options, thread names and hooks,
 * block_on and weft_runtime_current, metrics, the cooperative budget.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <dirent.h>
#include <limits.h>
#include <sys/syscall.h>

#define SENTINEL_RT ((struct weft_runtime *)(uintptr_t)0xdead0001)
#define SENTINEL_TASK ((struct weft_task *)(uintptr_t)0xdead0002)

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* Create with `o`, expecting `want`; on success destroy again. */
static void create_expect(const struct weft_runtime_opts *o, int want, const char *what)
{
	struct weft_runtime *rt = SENTINEL_RT;
	int rc = weft_runtime_create(o, &rt);
	cr_assert_eq(rc, want, "%s: create = %d (%s), want %d", what, rc, weft_strerror(rc), want);
	if (want == 0) {
		cr_assert_not_null(rt);
		cr_assert_neq(rt, SENTINEL_RT);
		wt_rt_destroy(rt);
	} else {
		cr_assert_eq(rt, SENTINEL_RT, "%s: out written by a failed create", what);
	}
}

/* ------------------------------------------------------ create: options */

Test(create, null_out, .timeout = WT_TMO(10))
{
	cr_assert_eq(weft_runtime_create(NULL, NULL), -EINVAL);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	cr_assert_eq(weft_runtime_create(&o, NULL), -EINVAL);
}

Test(create, opts_macro_sets_sz_and_zeroes_the_rest, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 3);
	cr_assert_eq(o.sz, sizeof(struct weft_runtime_opts));
	cr_assert_eq(o.workers, 3);
	cr_assert_eq(o.event_interval, 0);
	cr_assert_eq(o.global_queue_interval, 0);
	cr_assert_not(o.disable_lifo_slot);
	cr_assert_eq(o.rng_seed, 0);
	cr_assert_null(o.thread_name_prefix);
	cr_assert_null(o.on_thread_start);
	cr_assert_null(o.on_thread_stop);
	cr_assert_null(o.hook_arg);
}

Test(create, wrong_sz, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	o.sz = 0;
	create_expect(&o, -EINVAL, "sz = 0");
	o.sz = 1;
	create_expect(&o, -EINVAL, "sz = 1");
	o.sz = sizeof(size_t) - 1;
	create_expect(&o, -EINVAL, "sz smaller than the sz field");
}

/* "The library reads fields only up to sz, so a program built against an
 * older header keeps working." */
Test(create, older_header_sz, .timeout = WT_TMO(10))
{
	/* what `struct { size_t sz; int workers; }` (16 bytes) would pass */
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	o.sz = offsetof(struct weft_runtime_opts, global_queue_interval);
	o.global_queue_interval = 7777777; /* past sz (and invalid): must not be read */
	struct weft_runtime *rt = NULL;
	int rc = weft_runtime_create(&o, &rt);
	cr_assert_eq(rc, 0, "create with a truncated (older) opts struct = %d", rc);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, 2);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

struct opts_ext {
	struct weft_runtime_opts o;
	unsigned char tail[24];
};

Test(create, larger_sz_nonzero_tail, .timeout = WT_TMO(10))
{
	for (unsigned i = 0; i < sizeof(((struct opts_ext *)0)->tail); i += 7) {
		struct opts_ext x;
		memset(&x, 0, sizeof x);
		x.o.sz = sizeof x;
		x.o.workers = 1;
		x.tail[i] = 0x40;
		create_expect(&x.o, -EINVAL, "non-zero byte past the known fields");
	}
	struct opts_ext x;
	memset(&x, 0, sizeof x);
	x.o.sz = sizeof x;
	x.o.workers = 1;
	x.tail[sizeof x.tail - 1] = 1;
	create_expect(&x.o, -EINVAL, "non-zero last byte");
}

Test(create, larger_sz_zero_tail, .timeout = WT_TMO(10))
{
	struct opts_ext x;
	memset(&x, 0, sizeof x);
	x.o.sz = sizeof x;
	x.o.workers = 1;
	create_expect(&x.o, 0, "zero tail");
}

Test(create, workers_out_of_range, .timeout = WT_TMO(10))
{
	static const int bad[] = { -1, -2, INT_MIN, WEFT_MAX_WORKERS + 1, INT_MAX };
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = bad[i]);
		char what[64];
		snprintf(what, sizeof what, "workers = %d", bad[i]);
		create_expect(&o, -EINVAL, what);
	}
}

Test(create, workers_max_accepted, .timeout = WT_TMO(20))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = WEFT_MAX_WORKERS);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, WEFT_MAX_WORKERS);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

Test(create, thread_name_prefix_too_long, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .thread_name_prefix = "abcdefghijkl");
	create_expect(&o, -EINVAL, "12-byte prefix");
	o.thread_name_prefix = "a-very-long-thread-name-prefix";
	create_expect(&o, -EINVAL, "30-byte prefix");
}

Test(create, intervals_out_of_range, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .event_interval = 1000001);
	create_expect(&o, -EINVAL, "event_interval 1,000,001");
	o.event_interval = UINT32_MAX;
	create_expect(&o, -EINVAL, "event_interval UINT32_MAX");
	o.event_interval = 1000000;
	create_expect(&o, 0, "event_interval 1,000,000");
	o.event_interval = 1;
	create_expect(&o, 0, "event_interval 1");

	o.event_interval = 0;
	o.global_queue_interval = 1000001;
	create_expect(&o, -EINVAL, "global_queue_interval 1,000,001");
	o.global_queue_interval = UINT32_MAX;
	create_expect(&o, -EINVAL, "global_queue_interval UINT32_MAX");
	o.global_queue_interval = 1000000;
	create_expect(&o, 0, "global_queue_interval 1,000,000");
}

static unsigned affinity_cpus(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

Test(create, defaults, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(NULL, &rt), 0, "opts NULL must mean defaults");
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, affinity_cpus(), "default workers %u, affinity mask has %u",
		     m->workers, affinity_cpus());
	weft_metrics_free(m);
	wt_rt_destroy(rt);

	WEFT_OPTS(weft_runtime_opts, o, .workers = 0);
	rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0, "workers = 0 must mean defaults");
	m = wt_metrics(rt);
	cr_assert_eq(m->workers, affinity_cpus());
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* Tasks run with every option set to a non-default value. */
static atomic_int opt_drops;

Test(create, all_options_run_tasks, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .event_interval = 3,
		  .global_queue_interval = 2, .disable_lifo_slot = true, .rng_seed = 42,
		  .thread_name_prefix = "opt");
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, &opt_drops, wt_drop_count, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&opt_drops) == 1000, WT_LONG_MS));
	wt_rt_destroy(rt);

	/* the same seed twice is fine */
	for (int k = 0; k < 2; k++) {
		WEFT_OPTS(weft_runtime_opts, s, .workers = 2, .rng_seed = 0x1234567890abcdefull);
		create_expect(&s, 0, "rng_seed");
	}
}

/* --------------------------------------------------- names and hooks */

/* Worker threads of this process whose comm is "<prefix>-<n>": fills
 * nums[] (up to max) and returns how many. */
static unsigned named_threads(const char *prefix, int *nums, unsigned max)
{
	DIR *d = opendir("/proc/self/task");
	cr_assert_not_null(d);
	size_t pl = strlen(prefix);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* thread exited meanwhile */
		if (!fgets(comm, sizeof comm, f))
			comm[0] = 0;
		fclose(f);
		comm[strcspn(comm, "\n")] = 0;
		if (strncmp(comm, prefix, pl) != 0 || comm[pl] != '-')
			continue;
		char *end;
		long v = strtol(comm + pl + 1, &end, 10);
		if (*end || end == comm + pl + 1)
			continue;
		if (n < max)
			nums[n] = (int)v;
		n++;
	}
	closedir(d);
	return n;
}

static void check_names(const char *prefix, const char *want_prefix, int workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers, .thread_name_prefix = prefix);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	int nums[64];
	cr_assert(WT_WAIT_UNTIL(named_threads(want_prefix, nums, 64) == (unsigned)workers, 2000),
		  "%u threads named %s-<n>, want %d", named_threads(want_prefix, nums, 64),
		  want_prefix, workers);
	/* the numbers are distinct and consecutive (from 0 or from 1) */
	int lo = INT_MAX, hi = INT_MIN;
	for (int i = 0; i < workers; i++) {
		lo = nums[i] < lo ? nums[i] : lo;
		hi = nums[i] > hi ? nums[i] : hi;
		for (int j = 0; j < i; j++)
			cr_assert_neq(nums[i], nums[j], "two workers named %s-%d", want_prefix, nums[i]);
	}
	cr_assert(lo == 0 || lo == 1, "worker numbers start at %d", lo);
	cr_assert_eq(hi - lo, workers - 1);
	wt_rt_destroy(rt);
	cr_assert_eq(named_threads(want_prefix, nums, 64), 0, "worker threads outlived destroy");
}

Test(names, default_prefix, .timeout = WT_TMO(10)) { check_names(NULL, "weft-worker", 3); }
Test(names, custom_prefix, .timeout = WT_TMO(10)) { check_names("tst", "tst", 4); }
Test(names, prefix_of_11_bytes, .timeout = WT_TMO(10)) { check_names("abcdefghijk", "abcdefghijk", 2); }

static atomic_int name_ok, name_bad;

static enum weft_poll name_poll(void *s, struct weft_cx *cx)
{
	char name[32] = "";
	pthread_getname_np(pthread_self(), name, sizeof name);
	if (strncmp(name, "nm-", 3) == 0)
		atomic_fetch_add(&name_ok, 1);
	else
		atomic_fetch_add(&name_bad, 1);
	return WEFT_READY;
}

Test(names, seen_from_inside_a_task, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .thread_name_prefix = "nm");
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	for (int i = 0; i < 50; i++) {
		struct weft_task *h;
		cr_assert_eq(weft_spawn_poll(rt, name_poll, NULL, NULL, &h), 0);
		cr_assert_eq(weft_join(h, NULL), 0);
	}
	cr_assert_eq(atomic_load(&name_ok), 50);
	cr_assert_eq(atomic_load(&name_bad), 0);
	wt_rt_destroy(rt);
}

#define HOOK_W 6
struct hooks {
	atomic_int start[HOOK_W], stop[HOOK_W];
	atomic_int bad_arg, bad_index, on_main;
	atomic_int tid[HOOK_W];
	pid_t main_tid;
};

static void hook_start(void *arg, unsigned w)
{
	struct hooks *hk = arg;
	if (hk == NULL || hk->main_tid == 0) {
		/* cannot count into a wrong arg */
		return;
	}
	if (w >= HOOK_W) {
		atomic_fetch_add(&hk->bad_index, 1);
		return;
	}
	if (my_tid() == hk->main_tid)
		atomic_fetch_add(&hk->on_main, 1);
	atomic_store(&hk->tid[w], my_tid());
	atomic_fetch_add(&hk->start[w], 1);
}

static void hook_stop(void *arg, unsigned w)
{
	struct hooks *hk = arg;
	if (hk == NULL || hk->main_tid == 0)
		return;
	if (w >= HOOK_W) {
		atomic_fetch_add(&hk->bad_index, 1);
		return;
	}
	if (atomic_load(&hk->tid[w]) != my_tid())
		atomic_fetch_add(&hk->on_main, 1); /* stop ran on another thread than start */
	atomic_fetch_add(&hk->stop[w], 1);
}

static struct hooks hk;

Test(hooks, start_and_stop_once_per_worker, .timeout = WT_TMO(10))
{
	enum { W = 4 };
	memset(&hk, 0, sizeof hk);
	hk.main_tid = my_tid();
	WEFT_OPTS(weft_runtime_opts, o, .workers = W, .on_thread_start = hook_start,
		  .on_thread_stop = hook_stop, .hook_arg = &hk);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	for (int w = 0; w < W; w++)
		cr_assert(WT_WAIT_UNTIL(atomic_load(&hk.start[w]) == 1, 2000),
			  "on_thread_start(%d) ran %d times", w, atomic_load(&hk.start[w]));
	wt_sleep_ms(20);
	for (int w = 0; w < HOOK_W; w++) {
		cr_assert_eq(atomic_load(&hk.start[w]), w < W ? 1 : 0);
		cr_assert_eq(atomic_load(&hk.stop[w]), 0, "on_thread_stop before shutdown");
	}
	/* the hook threads are the workers metrics report */
	struct weft_metrics *m;
	WT_METRICS_UNTIL(rt, m, ({
		bool all = true;
		for (int j = 0; j < W; j++)
			all &= m->worker[j].thread_id != 0;
		all;
	}), 2000);
	for (int w = 0; w < W; w++) {
		bool found = false;
		for (int j = 0; j < W; j++)
			found |= m->worker[j].thread_id == (uint64_t)atomic_load(&hk.tid[w]);
		cr_assert(found, "hook tid %d is no worker's metrics thread_id", atomic_load(&hk.tid[w]));
	}
	weft_metrics_free(m);

	wt_rt_destroy(rt);
	for (int w = 0; w < HOOK_W; w++) {
		cr_assert_eq(atomic_load(&hk.start[w]), w < W ? 1 : 0);
		cr_assert_eq(atomic_load(&hk.stop[w]), w < W ? 1 : 0,
			     "on_thread_stop(%d) ran %d times", w, atomic_load(&hk.stop[w]));
	}
	cr_assert_eq(atomic_load(&hk.bad_index), 0, "hook called with an index >= workers");
	cr_assert_eq(atomic_load(&hk.on_main), 0, "hook ran on the wrong thread");
}

Test(hooks, null_hooks_and_only_one, .timeout = WT_TMO(10))
{
	memset(&hk, 0, sizeof hk);
	hk.main_tid = my_tid();
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .on_thread_stop = hook_stop, .hook_arg = &hk);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&hk.stop[0]) + atomic_load(&hk.stop[1]), 2);
}

/* The stop hook runs holding no core, as the start hook does: its
 * blocking calls park the thread (here a send on a channel with room and
 * a sleep), whether the thread stops at shutdown or leaves as a spare
 * after a shrink. At shutdown they said -EDEADLK, as from a poll task -
 * the thread still held its core in the hook - while the same hook on a
 * spare's way out worked (found by a review). */
static atomic_int sh_calls, sh_bad_rc;

static void stop_hook_blocks(void *arg, unsigned w)
{
	struct weft_chan *ch = arg;
	int item = (int)w;
	int rc = weft_chan_send(ch, &item);
	if (!rc)
		rc = weft_sleep_ns(100000);
	if (rc)
		atomic_store(&sh_bad_rc, rc);
	atomic_fetch_add(&sh_calls, 1);
}

Test(hooks, the_stop_hook_holds_no_core_at_shutdown_either, .timeout = WT_TMO(20))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(int), 8, &ch), 0);
	atomic_store(&sh_calls, 0);
	atomic_store(&sh_bad_rc, 0);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 3, .on_thread_stop = stop_hook_blocks,
		  .hook_arg = ch, .blocking_keep_alive_ns = 20 * 1000000ull);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	/* core 2's thread retires, becomes a spare and leaves after 20 ms */
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&sh_calls) == 1, WT_LONG_MS));
	cr_assert_eq(atomic_load(&sh_bad_rc), 0, "the stop hook of a leaving spare: %d (%s)",
		     atomic_load(&sh_bad_rc), weft_strerror(atomic_load(&sh_bad_rc)));
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&sh_calls), 3);
	cr_assert_eq(atomic_load(&sh_bad_rc), 0, "the stop hook at shutdown: %d (%s)",
		     atomic_load(&sh_bad_rc), weft_strerror(atomic_load(&sh_bad_rc)));
	int item, n = 0;
	while (weft_chan_try_recv(ch, &item) == 0)
		n++;
	cr_assert_eq(n, 3, "%d items sent by the stop hooks", n);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ------------------------------------------------------------- spawn */

static atomic_int sp_drops, sp_polls;

static enum weft_poll count_poll(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&sp_polls, 1);
	return WEFT_READY;
}

Test(spawn, null_rt_or_poll_drops_once, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h = SENTINEL_TASK;
	cr_assert_eq(weft_spawn_poll(NULL, count_poll, &sp_drops, wt_drop_count, &h), -EINVAL);
	cr_assert_eq(atomic_load(&sp_drops), 1, "drop must run before a failed spawn returns");
	cr_assert_eq(h, SENTINEL_TASK, "out written by a failed spawn");

	cr_assert_eq(weft_spawn_poll(rt, NULL, &sp_drops, wt_drop_count, &h), -EINVAL);
	cr_assert_eq(atomic_load(&sp_drops), 2);
	cr_assert_eq(h, SENTINEL_TASK);

	/* detached and with a NULL drop: still just -EINVAL */
	cr_assert_eq(weft_spawn_poll(NULL, NULL, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_spawn_poll(rt, NULL, &sp_drops, wt_drop_count, NULL), -EINVAL);
	cr_assert_eq(atomic_load(&sp_drops), 3);

	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&sp_polls), 0);
	cr_assert_eq(atomic_load(&sp_drops), 3);
}

Test(spawn, after_shutdown, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	struct weft_task *h = SENTINEL_TASK;
	cr_assert_eq(weft_spawn_poll(rt, count_poll, &sp_drops, wt_drop_count, &h), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&sp_drops), 1, "drop must run before a refused spawn returns");
	cr_assert_eq(h, SENTINEL_TASK, "out written by a refused spawn");
	cr_assert_eq(weft_spawn_poll(rt, count_poll, &sp_drops, wt_drop_count, NULL), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&sp_drops), 2);
	wt_sleep_ms(20);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&sp_polls), 0, "a refused task was polled");
	cr_assert_eq(atomic_load(&sp_drops), 2);
}

/* A task on runtime A spawns onto runtime B: the child must run on B. */
struct xrt {
	struct weft_runtime *b;
	struct weft_runtime *_Atomic child_cx_rt, *_Atomic child_cur;
	atomic_int spawn_rc, child_drops;
};

static enum weft_poll xrt_child(void *s, struct weft_cx *cx)
{
	struct xrt *x = s;
	atomic_store(&x->child_cx_rt, weft_cx_runtime(cx));
	atomic_store(&x->child_cur, weft_runtime_current());
	return WEFT_READY;
}

static void xrt_child_drop(void *s)
{
	struct xrt *x = s;
	atomic_fetch_add(&x->child_drops, 1);
}

static enum weft_poll xrt_parent(void *s, struct weft_cx *cx)
{
	struct xrt *x = s;
	atomic_store(&x->spawn_rc, weft_spawn_poll(x->b, xrt_child, x, xrt_child_drop, NULL));
	return WEFT_READY;
}

Test(spawn, onto_another_runtime_from_a_task, .timeout = WT_TMO(10))
{
	static struct xrt x;
	struct weft_runtime *a = wt_rt_create(1);
	x.b = wt_rt_create(1);
	atomic_store(&x.spawn_rc, 99);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(a, xrt_parent, &x, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&x.spawn_rc), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&x.child_drops) == 1, WT_LONG_MS));
	cr_assert_eq(atomic_load(&x.child_cx_rt), x.b, "child ran on the parent's runtime");
	cr_assert_eq(atomic_load(&x.child_cur), x.b);
	wt_rt_destroy(a);
	wt_rt_destroy(x.b);
}

/* ----------------------------------------------------------- block_on */

static atomic_int bo_runs;
static struct weft_runtime *_Atomic bo_cur;

static void *bo_fn(void *arg)
{
	atomic_fetch_add(&bo_runs, 1);
	atomic_store(&bo_cur, weft_runtime_current());
	return (char *)arg + 1;
}

Test(block_on, runs_fn_and_sets_current, .timeout = WT_TMO(10))
{
	static char buf[4];
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_null(weft_runtime_current(), "current runtime outside block_on");
	void *res = NULL;
	cr_assert_eq(weft_block_on(rt, bo_fn, buf, &res), 0);
	cr_assert_eq(res, buf + 1, "block_on result %p, want %p", res, (void *)(buf + 1));
	cr_assert_eq(atomic_load(&bo_runs), 1);
	cr_assert_eq(atomic_load(&bo_cur), rt, "weft_runtime_current inside block_on");
	cr_assert_null(weft_runtime_current(), "current runtime after block_on");
	/* result may be NULL */
	cr_assert_eq(weft_block_on(rt, bo_fn, buf, NULL), 0);
	cr_assert_eq(atomic_load(&bo_runs), 2);
	wt_rt_destroy(rt);
}

Test(block_on, einval, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	void *res = (void *)0x1;
	cr_assert_eq(weft_block_on(NULL, bo_fn, NULL, &res), -EINVAL);
	cr_assert_eq(weft_block_on(rt, NULL, NULL, &res), -EINVAL);
	cr_assert_eq(atomic_load(&bo_runs), 0);
	wt_rt_destroy(rt);
}

Test(block_on, after_shutdown, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	void *res = (void *)0x1;
	cr_assert_eq(weft_block_on(rt, bo_fn, NULL, &res), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&bo_runs), 0, "fn ran although block_on failed");
	wt_rt_destroy(rt);
}

/* Calls made from inside a poll task, i.e. on a worker thread. */
struct inside {
	struct weft_runtime *other;   /* a second runtime, for block_on */
	struct weft_task *foreign;    /* a handle made by the test thread */
	atomic_int bo_rc, bo_other_rc, join_rc, shut_rc, destroy_rc, jp_rc;
	atomic_int detach_rc, abort_rc;
	struct weft_runtime *_Atomic cur;
	atomic_int done;
};

static enum weft_poll inside_poll(void *s, struct weft_cx *cx)
{
	struct inside *in = s;
	struct weft_runtime *rt = weft_cx_runtime(cx);
	void *res = NULL;
	atomic_store(&in->cur, weft_runtime_current());
	atomic_store(&in->bo_rc, weft_block_on(rt, bo_fn, NULL, &res));
	if (in->other)
		atomic_store(&in->bo_other_rc, weft_block_on(in->other, bo_fn, NULL, &res));
	if (in->foreign)
		atomic_store(&in->join_rc, weft_join(in->foreign, &res));
	atomic_store(&in->shut_rc, weft_runtime_shutdown(rt, WEFT_FOREVER));
	atomic_store(&in->destroy_rc, weft_runtime_destroy(rt));
	atomic_store(&in->jp_rc, weft_join_poll(NULL, cx, &res));
	atomic_store(&in->detach_rc, weft_detach(NULL));
	atomic_store(&in->abort_rc, weft_abort(NULL));
	atomic_store(&in->done, 1);
	return WEFT_READY;
}

static struct wt_gate inside_gate;

Test(worker_calls, edeadlk_and_einval, .timeout = WT_TMO(15))
{
	static struct inside in;
	struct weft_runtime *rt = wt_rt_create(2);
	in.other = wt_rt_create(1);
	/* a handle made outside, of a task that stays busy until released */
	memset(&inside_gate, 0, sizeof inside_gate);
	cr_assert_eq(weft_spawn_poll(rt, wt_gate_poll, &inside_gate, wt_gate_drop, &inside_gate.h), 0);
	in.foreign = inside_gate.h;

	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, inside_poll, &in, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&in.done), 1);
	cr_assert_eq(atomic_load(&in.cur), rt, "weft_runtime_current inside a poll");
	cr_assert_eq(atomic_load(&in.bo_rc), -EDEADLK, "block_on from a worker = %d",
		     atomic_load(&in.bo_rc));
	cr_assert_eq(atomic_load(&in.bo_other_rc), -EDEADLK,
		     "block_on of another runtime from a worker = %d", atomic_load(&in.bo_other_rc));
	cr_assert_eq(atomic_load(&bo_runs), 0, "block_on's fn ran on a worker");
	cr_assert_eq(atomic_load(&in.join_rc), -EDEADLK, "weft_join from a worker = %d",
		     atomic_load(&in.join_rc));
	cr_assert_eq(atomic_load(&in.shut_rc), -EDEADLK, "shutdown from a worker = %d",
		     atomic_load(&in.shut_rc));
	cr_assert_eq(atomic_load(&in.destroy_rc), -EDEADLK, "destroy from a worker = %d",
		     atomic_load(&in.destroy_rc));
	cr_assert_eq(atomic_load(&in.jp_rc), -EINVAL);
	cr_assert_eq(atomic_load(&in.detach_rc), -EINVAL);
	cr_assert_eq(atomic_load(&in.abort_rc), -EINVAL);

	/* the runtime is still alive, and the failed join did not consume the
	 * handle: joining it here works */
	struct weft_task *h2;
	cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, NULL, NULL, &h2), 0);
	cr_assert_eq(weft_join(h2, NULL), 0);
	wt_gate_open(&inside_gate);
	wt_rt_destroy(rt);
	wt_rt_destroy(in.other);
	cr_assert_eq(atomic_load(&inside_gate.drops), 1);
}

/* block_on is not a worker: spawn and join from inside it work. */
struct bo_spawn {
	struct weft_runtime *rt;
	atomic_int drops;
	int rc_spawn, rc_join;
};

static enum weft_poll val_poll(void *s, struct weft_cx *cx)
{
	weft_cx_set_result(cx, (void *)((uintptr_t)weft_cx_task_id(cx) * 2));
	return WEFT_READY;
}

static void *bo_spawn_fn(void *arg)
{
	struct bo_spawn *b = arg;
	enum { K = 100 };
	struct weft_task *h[K];
	uint64_t id[K];
	for (int i = 0; i < K; i++) {
		b->rc_spawn |= weft_spawn_poll(weft_runtime_current(), val_poll, &b->drops,
					       wt_drop_count, &h[i]);
		if (b->rc_spawn)
			return NULL;
		id[i] = weft_task_id(h[i]);
	}
	uintptr_t ok = 0;
	for (int i = 0; i < K; i++) {
		void *res = NULL;
		b->rc_join |= weft_join(h[i], &res);
		ok += (uintptr_t)res == id[i] * 2;
	}
	return (void *)ok;
}

Test(block_on, spawn_and_join_inside, .timeout = WT_TMO(10))
{
	static struct bo_spawn b;
	struct weft_runtime *rt = wt_rt_create(2);
	b.rt = rt;
	void *res = NULL;
	cr_assert_eq(weft_block_on(rt, bo_spawn_fn, &b, &res), 0);
	cr_assert_eq(b.rc_spawn, 0);
	cr_assert_eq(b.rc_join, 0);
	cr_assert_eq((uintptr_t)res, 100, "%zu of 100 results right", (size_t)(uintptr_t)res);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&b.drops), 100);
}

/* --------------------------------------------------------------- join */

Test(join, null_handle, .timeout = WT_TMO(10))
{
	void *res = (void *)0x1;
	cr_assert_eq(weft_join(NULL, &res), -EINVAL);
	cr_assert_eq(weft_join(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_detach(NULL), -EINVAL);
	cr_assert_eq(weft_abort(NULL), -EINVAL);
}

Test(join, result_may_be_null_and_abort_of_finished_is_noop, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, val_poll, NULL, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(h), WT_LONG_MS));
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_abort(h), 0);
	cr_assert(weft_task_is_finished(h));
	cr_assert_eq(weft_join(h, NULL), 0, "abort of a finished task changed its outcome");
	wt_rt_destroy(rt);
}

/*
 * Join twice: a consumed handle used again is refused with -EINVAL by every
 * handle call, and touches nothing. Two cases: the task's memory is free
 * (joined, all references gone, slot not yet reused), and the task is still
 * alive (detached while pending, so the owned list still references it).
 * The case the check cannot see - a slot already reused by a newer task
 * with a handle - is not tested: the stale pointer then names that task.
 */
struct consumed_probe {
	struct weft_task *h;
	struct weft_task *ph;  /* the probe's own handle */
	atomic_int go;
	atomic_int rc;
	atomic_int done;
};

/* Spawned before `h` is consumed, so that its task cannot take the slot
 * `h` frees (a slot reused by a task with a handle is the case the check
 * cannot see, above; a probe spawned after a join got h's slot now and
 * then and joined itself: -EDEADLK). It yields until `go`. */
static enum weft_poll consumed_probe_poll(void *s, struct weft_cx *cx)
{
	struct consumed_probe *p = s;
	if (!atomic_load(&p->go)) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	void *res = (void *)0x1;
	int rc = weft_join_poll(p->h, cx, &res);
	if (rc == -EINVAL && res != (void *)0x1)
		rc = 1000; /* refused but wrote the result */
	atomic_store(&p->rc, rc);
	atomic_store(&p->done, 1);
	return WEFT_READY;
}

static void probe_arm(struct weft_runtime *rt, struct consumed_probe *p)
{
	memset(p, 0, sizeof *p);
	cr_assert_eq(weft_spawn_poll(rt, consumed_probe_poll, p, NULL, &p->ph), 0);
}

/* Every handle call on `h` (consumed) from this thread and from a poll
 * task (the armed probe `p`). */
static void expect_consumed(struct weft_task *h, struct consumed_probe *p, const char *what)
{
	void *res = (void *)0x1;
	int rc = weft_join(h, &res);
	cr_assert_eq(rc, -EINVAL, "%s: weft_join = %d (%s)", what, rc, weft_strerror(rc));
	cr_assert_eq(res, (void *)0x1, "%s: a refused join wrote the result", what);
	rc = weft_join_timeout(h, &res, 1000000);
	cr_assert_eq(rc, -EINVAL, "%s: weft_join_timeout = %d (%s)", what, rc, weft_strerror(rc));
	rc = weft_detach(h);
	cr_assert_eq(rc, -EINVAL, "%s: weft_detach = %d (%s)", what, rc, weft_strerror(rc));
	rc = weft_abort(h);
	cr_assert_eq(rc, -EINVAL, "%s: weft_abort = %d (%s)", what, rc, weft_strerror(rc));
	p->h = h;
	atomic_store(&p->go, 1);
	cr_assert_eq(weft_join(p->ph, NULL), 0);
	cr_assert_eq(atomic_load(&p->rc), -EINVAL, "%s: weft_join_poll = %d", what,
		     atomic_load(&p->rc));
}

static void *fiber_join_twice(void *arg)
{
	struct weft_task *h;
	if (weft_spawn_poll(weft_runtime_current(), val_poll, NULL, NULL, &h))
		return (void *)1;
	if (weft_join(h, NULL))
		return (void *)2;
	if (weft_join(h, NULL) != -EINVAL)
		return (void *)3;
	if (weft_detach(h) != -EINVAL)
		return (void *)4;
	return NULL;
}

Test(join, twice_after_join_einval, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h;
	static struct consumed_probe probe;
	probe_arm(rt, &probe);
	cr_assert_eq(weft_spawn_poll(rt, val_poll, NULL, NULL, &h), 0);
	uint64_t id = weft_task_id(h);
	void *res = NULL;
	cr_assert_eq(weft_join(h, &res), 0);
	cr_assert_eq((uintptr_t)res, id * 2);
	expect_consumed(h, &probe, "joined");

	/* the same from a fiber (weft_join suspends there) */
	struct weft_task *f;
	cr_assert_eq(weft_spawn(rt, fiber_join_twice, NULL, &f), 0);
	cr_assert_eq(weft_join(f, &res), 0);
	cr_assert_null(res, "fiber: check %zu failed", (size_t)(uintptr_t)res);

	/* nothing was released twice: no reference is missing or left over */
	wt_rt_destroy(rt);
}

struct parked_task {
	weft_waker waker;
	atomic_int polls;
};

static enum weft_poll parked_poll(void *s, struct weft_cx *cx)
{
	struct parked_task *p = s;
	if (atomic_fetch_add(&p->polls, 1) == 0) {
		p->waker = weft_waker_clone(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

Test(join, twice_after_detach_of_live_task_einval, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	static struct parked_task p;
	memset(&p, 0, sizeof p);
	struct weft_task *h;
	static struct consumed_probe probe;
	probe_arm(rt, &probe);
	cr_assert_eq(weft_spawn_poll(rt, parked_poll, &p, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.polls) == 1, WT_LONG_MS));
	cr_assert_eq(weft_detach(h), 0);
	/* the task is pending, its memory alive (the owned list and the waker
	 * hold it): a join here would wait for ever, an abort cancel it */
	expect_consumed(h, &probe, "detached");
	weft_waker_wake(&p.waker);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.polls) == 2, WT_LONG_MS),
		  "the refused abort cancelled the task (%d polls)", atomic_load(&p.polls));
	wt_rt_destroy(rt);
}

/* ----------------------------------------------------------- shutdown */

Test(shutdown, null_and_idempotent, .timeout = WT_TMO(10))
{
	cr_assert_eq(weft_runtime_shutdown(NULL, WEFT_FOREVER), -EINVAL);
	cr_assert_eq(weft_runtime_shutdown(NULL, 0), -EINVAL);
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, 0), 0);
	wt_rt_destroy(rt);
}

/* An idle runtime - no task ever, or every task completed and joined -
 * has nothing to wait for: a 0 limit shuts it down (as Tokio's
 * shutdown_timeout(ZERO) does). It returned -ETIMEDOUT: the workers had
 * not left yet when the zero limit ran out. */
Test(shutdown, idle_zero_timeout, .timeout = WT_TMO(20))
{
	for (int i = 0; i < 20; i++) {
		struct weft_runtime *rt = wt_rt_create(2);
		if (i & 1) {
			atomic_int d = 0;
			struct weft_task *h;
			cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, &d, wt_drop_count, &h), 0);
			cr_assert_eq(weft_join(h, NULL), 0);
		}
		cr_assert_eq(weft_runtime_shutdown(rt, 0), 0, "idle runtime, run %d", i);
		wt_rt_destroy(rt);
	}
}

/* A task busy in a poll: shutdown times out, keeps refusing spawns, and a
 * later call finishes the job; the busy task is cancelled when its poll
 * returns PENDING. */
struct busy {
	atomic_int running, release, polls, drops;
};

static enum weft_poll busy_poll(void *s, struct weft_cx *cx)
{
	struct busy *b = s;
	atomic_fetch_add(&b->polls, 1);
	atomic_store(&b->running, 1);
	while (!atomic_load(&b->release))
		usleep(100);
	return WEFT_PENDING; /* nobody will wake it */
}

static void busy_drop(void *s)
{
	struct busy *b = s;
	atomic_fetch_add(&b->drops, 1);
}

Test(shutdown, timeout_then_retry, .timeout = WT_TMO(15))
{
	static struct busy b;
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, busy_poll, &b, busy_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.running), WT_LONG_MS));

	uint64_t t0 = wt_now_ns();
	int rc = weft_runtime_shutdown(rt, 20 * 1000000ull);
	uint64_t dt = wt_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "shutdown with a busy worker = %d", rc);
	cr_assert_geq(dt, 15 * 1000000ull, "timed out after only %llu ns", (unsigned long long)dt);
	cr_assert_eq(weft_runtime_shutdown(rt, 0), -ETIMEDOUT, "zero timeout, still busy");

	atomic_int d = 0;
	cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, &d, wt_drop_count, NULL), -ESHUTDOWN,
		     "spawn accepted after a timed-out shutdown");
	cr_assert_eq(atomic_load(&d), 1);
	cr_assert_eq(atomic_load(&b.drops), 0, "dropped while its poll runs");

	atomic_store(&b.release, 1);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&b.drops), 1, "busy task's drop ran %d times", atomic_load(&b.drops));
	cr_assert(weft_task_is_finished(h));
	cr_assert_eq(weft_join(h, NULL), -ECANCELED);
	cr_assert_eq(atomic_load(&b.polls), 1);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------ destroy */

Test(destroy, null, .timeout = WT_TMO(10))
{
	cr_assert_eq(weft_runtime_destroy(NULL), -EINVAL);
}

static atomic_int ds_drops;

Test(destroy, ebusy_with_unconsumed_handle, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *done;
	cr_assert_eq(weft_spawn_poll(rt, val_poll, &ds_drops, wt_drop_count, &done), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(done), WT_LONG_MS));

	cr_assert_eq(weft_runtime_destroy(rt), -EBUSY, "destroy with a live handle");
	/* nothing was freed: metrics and the handle still work */
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->spawned_tasks, 1);
	weft_metrics_free(m);
	void *res = NULL;
	cr_assert_eq(weft_join(done, &res), 0);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&ds_drops), 1);
}

Test(destroy, ebusy_with_handle_of_cancelled_task, .timeout = WT_TMO(10))
{
	static struct busy b;
	atomic_store(&b.release, 1); /* polls once, returns PENDING, never woken */
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *stuck;
	cr_assert_eq(weft_spawn_poll(rt, busy_poll, &b, busy_drop, &stuck), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.polls) == 1, WT_LONG_MS));
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&b.drops), 1, "shutdown did not cancel a pending task");
	cr_assert(weft_task_is_finished(stuck));
	cr_assert_eq(weft_runtime_destroy(rt), -EBUSY, "destroy with a live handle");
	cr_assert_eq(weft_runtime_destroy(rt), -EBUSY, "destroy with a live handle, again");
	cr_assert_eq(weft_join(stuck, NULL), -ECANCELED);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&b.drops), 1);
}

struct wk {
	weft_waker w;
	atomic_int stored, drops;
};

static enum weft_poll wk_poll(void *s, struct weft_cx *cx)
{
	struct wk *k = s;
	k->w = weft_waker_clone(weft_cx_waker(cx));
	atomic_store_explicit(&k->stored, 1, memory_order_release);
	return WEFT_READY;
}

static void wk_drop(void *s)
{
	struct wk *k = s;
	atomic_fetch_add(&k->drops, 1);
}

Test(destroy, ebusy_with_live_waker, .timeout = WT_TMO(10))
{
	static struct wk k;
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_spawn_poll(rt, wk_poll, &k, wk_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&k.stored, memory_order_acquire) &&
				atomic_load(&k.drops) == 1, WT_LONG_MS));
	cr_assert_eq(weft_runtime_destroy(rt), -EBUSY, "destroy with a waker clone alive");
	weft_waker_wake_by_ref(&k.w); /* after shutdown: harmless */
	weft_waker_drop(&k.w);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&k.drops), 1);
}

/* ------------------------------------------------------------ metrics */

Test(metrics, einval, .timeout = WT_TMO(10))
{
	struct weft_metrics *m = (struct weft_metrics *)(uintptr_t)0xdead0003;
	cr_assert_eq(weft_runtime_metrics(NULL, &m), -EINVAL);
	cr_assert_eq(m, (struct weft_metrics *)(uintptr_t)0xdead0003);
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_runtime_metrics(rt, NULL), -EINVAL);
	wt_rt_destroy(rt);
}

struct mt {
	atomic_int polls, drops;
	int yields;
};

static enum weft_poll mt_poll(void *s, struct weft_cx *cx)
{
	struct mt *t = s;
	if (atomic_fetch_add(&t->polls, 1) < t->yields) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

static void mt_drop(void *s)
{
	struct mt *t = s;
	atomic_fetch_add(&t->drops, 1);
}

/* Worker threads start asynchronously: one may not have published itself
 * yet when the others have done all the work. */
static bool all_workers_registered(const struct weft_metrics *m)
{
	for (unsigned w = 0; w < m->workers; w++)
		if (!m->worker[w].thread_id)
			return false;
	return true;
}

Test(metrics, counts_after_quiet_period, .timeout = WT_TMO(15))
{
	enum { W = 3, N = 5000 };
	static struct mt t[N];
	struct weft_runtime *rt = wt_rt_create(W);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, W);
	cr_assert_eq(m->spawned_tasks, 0);
	cr_assert_eq(m->alive_tasks, 0);
	weft_metrics_free(m);

	for (int i = 0; i < N; i++) {
		t[i].yields = i % 4;
		cr_assert_eq(weft_spawn_poll(rt, mt_poll, &t[i], mt_drop, NULL), 0);
	}
	int want_polls = 0;
	for (int i = 0; i < N; i++)
		want_polls += 1 + t[i].yields;
	cr_assert(WT_WAIT_UNTIL(({
		int d = 0;
		for (int i = 0; i < N; i++)
			d += atomic_load(&t[i].drops);
		d == N;
	}), WT_LONG_MS), "not all tasks completed");
	/* workers publish before they park */
	WT_METRICS_UNTIL(rt, m, WT_SUM_WORKERS(m, poll_count) >= (uint64_t)want_polls &&
			 m->alive_tasks == 0 && WT_SUM_WORKERS(m, park_count) >= W &&
			 all_workers_registered(m), 2000);
	cr_assert_eq(m->workers, W);
	cr_assert_eq(m->spawned_tasks, N, "spawned_tasks %llu, want %d",
		     (unsigned long long)m->spawned_tasks, N);
	cr_assert_eq(m->alive_tasks, 0, "alive_tasks %llu after all completed",
		     (unsigned long long)m->alive_tasks);
	cr_assert_eq(m->inject_depth, 0);
	uint64_t polls = WT_SUM_WORKERS(m, poll_count);
	cr_assert_geq(polls, (uint64_t)want_polls, "poll_count sum %llu < %d polls made",
		      (unsigned long long)polls, want_polls);
	cr_assert_geq(m->remote_schedule_count, N, "remote_schedule_count %llu < %d spawns from main",
		      (unsigned long long)m->remote_schedule_count, N);
	cr_assert_geq(WT_SUM_WORKERS(m, park_count), W, "an idle worker never parked");
	for (unsigned w = 0; w < W; w++) {
		cr_assert_eq(m->worker[w].local_queue_depth, 0);
		cr_assert_neq(m->worker[w].thread_id, 0, "worker %u has no thread", w);
		for (unsigned j = 0; j < w; j++)
			cr_assert_neq(m->worker[w].thread_id, m->worker[j].thread_id);
	}
	uint64_t polls1 = polls;
	weft_metrics_free(m);

	/* counters only grow, and the snapshot works after shutdown */
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	m = wt_metrics(rt);
	cr_assert_eq(m->workers, W);
	cr_assert_eq(m->spawned_tasks, N);
	cr_assert_geq(WT_SUM_WORKERS(m, poll_count), polls1);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* A no-op unpark is a wake followed by a park without a poll: a core's
 * first park follows no wake, so a runtime nobody woke counts none (each
 * idle worker's first park was counted one: found by a review). Parks
 * and no-ops of a core can only be related as noops < parks. */
Test(metrics, first_park_is_not_a_noop_unpark, .timeout = WT_TMO(15))
{
	enum { W = 2 };
	struct weft_runtime *rt = wt_rt_create(W);
	struct weft_metrics *m;
	bool parked = WT_METRICS_UNTIL(rt, m, ({
		bool all = true;
		for (unsigned w = 0; w < m->workers; w++)
			all &= m->worker[w].park_count >= 1;
		all;
	}), 2000);
	cr_assert(parked, "an idle worker never parked");
	for (unsigned w = 0; w < W; w++)
		cr_assert_lt(m->worker[w].noop_count, m->worker[w].park_count,
			     "worker %u: %llu no-op unparks in %llu parks", w,
			     (unsigned long long)m->worker[w].noop_count,
			     (unsigned long long)m->worker[w].park_count);
	weft_metrics_free(m);
	/* Nor is the first park of a core grown back: the wake that retired
	 * it was no wake its next thread parked after. Two first parks of
	 * core 1 now, so at most parks - 2 no-ops. */
	uint64_t parks1 = 0;
	cr_assert_eq(weft_runtime_set_workers(rt, 1), 0);
	cr_assert(WT_METRICS_UNTIL(rt, m, m->worker[1].thread_id == 0 &&
				   (parks1 = m->worker[1].park_count) >= 1, 2000),
		  "core 1 not retired");
	weft_metrics_free(m);
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	cr_assert(WT_METRICS_UNTIL(rt, m, m->worker[1].thread_id != 0 &&
				   m->worker[1].park_count > parks1, 2000),
		  "core 1 grown back never parked");
	cr_assert_leq(m->worker[1].noop_count + 2, m->worker[1].park_count,
		      "core 1: %llu no-op unparks in %llu parks, two of them first parks",
		      (unsigned long long)m->worker[1].noop_count,
		      (unsigned long long)m->worker[1].park_count);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------- budget */

struct bud {
	atomic_int polls, errors;
	atomic_uint first_remaining, second_remaining, after_refund;
	atomic_int ready_units, pending_at;
};

static enum weft_poll bud_poll(void *s, struct weft_cx *cx)
{
	struct bud *b = s;
	int n = atomic_fetch_add(&b->polls, 1);
	if (n == 0) {
		atomic_store(&b->first_remaining, weft_budget_remaining(cx));
		/* proceed + refund is a wash */
		if (weft_budget_poll_proceed(cx) != WEFT_READY)
			atomic_fetch_add(&b->errors, 1);
		weft_budget_refund(cx);
		atomic_store(&b->after_refund, weft_budget_remaining(cx));
		for (int i = 1; i <= WEFT_BUDGET + 5; i++) {
			if (weft_budget_poll_proceed(cx) == WEFT_READY) {
				atomic_fetch_add(&b->ready_units, 1);
				if (weft_budget_remaining(cx) != (unsigned)(WEFT_BUDGET - i))
					atomic_fetch_add(&b->errors, 1);
			} else {
				atomic_store(&b->pending_at, i);
				break;
			}
		}
		/* the runtime has woken us: return PENDING and expect a poll */
		return WEFT_PENDING;
	}
	atomic_store(&b->second_remaining, weft_budget_remaining(cx));
	return WEFT_READY;
}

Test(budget, proceed_exhausts_and_forces_yield, .timeout = WT_TMO(10))
{
	static struct bud b;
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, bud_poll, &b, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(h), WT_LONG_MS),
		  "a task whose budget ran out was not polled again (%d polls)",
		  atomic_load(&b.polls));
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&b.first_remaining), WEFT_BUDGET);
	cr_assert_eq(atomic_load(&b.after_refund), WEFT_BUDGET, "refund did not return the unit");
	cr_assert_eq(atomic_load(&b.ready_units), WEFT_BUDGET);
	cr_assert_eq(atomic_load(&b.pending_at), WEFT_BUDGET + 1);
	cr_assert_eq(atomic_load(&b.errors), 0, "remaining did not count down by one");
	cr_assert_eq(atomic_load(&b.polls), 2);
	cr_assert_eq(atomic_load(&b.second_remaining), WEFT_BUDGET, "a new poll starts with a full budget");
	struct weft_metrics *m;
	WT_METRICS_UNTIL(rt, m, m->budget_forced_yield_count >= 1, 2000);
	wt_sleep_ms(20);
	weft_metrics_free(m);
	m = wt_metrics(rt);
	cr_assert_eq(m->budget_forced_yield_count, 1, "budget_forced_yield_count %llu",
		     (unsigned long long)m->budget_forced_yield_count);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
}

/* "tasks run from the LIFO slot share their parent's" budget */
struct bud_lifo {
	atomic_uint child_remaining;
	atomic_int spawn_rc, child_ran;
};

static enum weft_poll bud_child(void *s, struct weft_cx *cx)
{
	struct bud_lifo *b = s;
	atomic_store(&b->child_remaining, weft_budget_remaining(cx));
	atomic_store(&b->child_ran, 1);
	return WEFT_READY;
}

static enum weft_poll bud_parent(void *s, struct weft_cx *cx)
{
	struct bud_lifo *b = s;
	for (int i = 0; i < 100; i++)
		weft_budget_poll_proceed(cx);
	atomic_store(&b->spawn_rc, weft_spawn_poll(weft_cx_runtime(cx), bud_child, b, NULL, NULL));
	return WEFT_READY;
}

Test(budget, lifo_child_shares_parent_budget, .timeout = WT_TMO(10))
{
	static struct bud_lifo b;
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, bud_parent, &b, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&b.spawn_rc), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&b.child_ran), WT_LONG_MS));
	cr_assert_eq(atomic_load(&b.child_remaining), WEFT_BUDGET - 100,
		     "LIFO child started with %u units, parent left %d",
		     atomic_load(&b.child_remaining), WEFT_BUDGET - 100);
	wt_rt_destroy(rt);
}

/* A chain of tasks, each spawning the next from the worker (LIFO slot),
 * must not hold the inject queue back for the global queue interval's
 * count of polls: once the chain hits the LIFO cap, the inject queue is
 * next. Counted in chain links, not time: one worker, interval fixed at
 * 127, so before, a remote task waited up to 127 links (each link here
 * is a poll of ~10 us: ~1.3 ms). */
static struct {
	atomic_uint links;
	atomic_bool stop, ended, remote_ran;
	atomic_uint remote_at;
	atomic_int spawn_rc;
} chain;

static enum weft_poll chain_link(void *s, struct weft_cx *cx)
{
	(void)s;
	atomic_fetch_add(&chain.links, 1);
	if (atomic_load(&chain.stop)) {
		atomic_store(&chain.ended, true);
		return WEFT_READY;
	}
	uint64_t t0 = weft_now_ns();
	while (weft_now_ns() - t0 < 10000)
		; /* a 10 us poll */
	int rc = weft_spawn_poll(weft_cx_runtime(cx), chain_link, NULL, NULL, NULL);
	if (rc) {
		atomic_store(&chain.spawn_rc, rc);
		atomic_store(&chain.ended, true);
	}
	return WEFT_READY;
}

static enum weft_poll chain_remote(void *s, struct weft_cx *cx)
{
	(void)s;
	(void)cx;
	atomic_store(&chain.remote_at, atomic_load(&chain.links));
	atomic_store(&chain.remote_ran, true);
	return WEFT_READY;
}

Test(sched, lifo_chain_lets_inject_in, .timeout = WT_TMO(30))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .global_queue_interval = 127);
	struct weft_runtime *rt = NULL;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert_eq(weft_spawn_poll(rt, chain_link, NULL, NULL, NULL), 0);
	unsigned worst = 0;
	for (int round = 0; round < 20; round++) {
		unsigned start = atomic_load(&chain.links);
		while (atomic_load(&chain.links) < start + 50)
			wt_sleep_ms(1);
		atomic_store(&chain.remote_ran, false);
		cr_assert_eq(weft_spawn_poll(rt, chain_remote, NULL, NULL, NULL), 0);
		/* read after the spawn returned: a slow spawn (sanitizers) is
		 * not the scheduler's wait; a task that ran already waited 0 */
		unsigned at = atomic_load(&chain.links);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&chain.remote_ran), WT_LONG_MS),
			  "round %d: a remote task never ran beside the chain", round);
		unsigned ran = atomic_load(&chain.remote_at);
		unsigned waited = ran > at ? ran - at : 0;
		if (waited > worst)
			worst = waited;
	}
	atomic_store(&chain.stop, true);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&chain.ended), WT_LONG_MS), "the chain did not end");
	cr_assert_eq(atomic_load(&chain.spawn_rc), 0, "a link's spawn failed");
	/* MAX_LIFO_POLLS (3) links, the one running at the spawn, and a
	 * margin for the links run while this thread was not looking */
	cr_assert_leq(worst, 12, "a remote task waited %u chain links (interval 127)", worst);
	wt_rt_destroy(rt);
}

/*
 * Steal policy (lib/sched/steal.h). Short tasks that their own worker serves stay
 * there: a receiver waking its senders on its worker, the other worker
 * stealing them and the channel's lines then crossing between the cores
 * on every item made fanout_mpsc 2-3x slower on two workers than on one.
 * Before the policy this shape stole 121k-189k tasks for its 320k items
 * (8 runs; 109k-189k under ASan); with it 103-4613 (24 runs, some with
 * both cores loaded by other processes), 1.7k-5.6k under ASan. The bound,
 * 5% of the items (x3 under sanitizers), is far from both. Counted in
 * steals, not time.
 */
enum { FAN_PRODUCERS = 64, FAN_ITEMS = 5000 };
static struct weft_chan *fan_ch;

static void *fan_send(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= FAN_ITEMS; i++)
		if (weft_chan_send(fan_ch, &i))
			return (void *)1;
	return NULL;
}

static void *fan_recv(void *arg)
{
	uint64_t *sum = arg, x;
	for (unsigned i = 0; i < FAN_PRODUCERS * FAN_ITEMS; i++) {
		if (weft_chan_recv(fan_ch, &x))
			return (void *)1;
		*sum += x;
	}
	return NULL;
}

Test(sched, short_channel_tasks_stay_on_their_worker, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), FAN_PRODUCERS, &fan_ch), 0);
	uint64_t sum = 0;
	struct weft_task *h[FAN_PRODUCERS + 1];
	cr_assert_eq(weft_spawn(rt, fan_recv, &sum, &h[0]), 0);
	for (int i = 1; i <= FAN_PRODUCERS; i++)
		cr_assert_eq(weft_spawn(rt, fan_send, NULL, &h[i]), 0);
	for (int i = 0; i <= FAN_PRODUCERS; i++) {
		void *res = (void *)2;
		cr_assert_eq(weft_join(h[i], &res), 0);
		cr_assert_null(res, "fiber %d failed", i);
	}
	cr_assert_eq(sum, (uint64_t)FAN_PRODUCERS * FAN_ITEMS * (FAN_ITEMS + 1) / 2);
	struct weft_metrics *m;
	/* counters are published at maintenance and when a worker parks */
	WT_METRICS_UNTIL(rt, m, m->alive_tasks == 0 && WT_SUM_WORKERS(m, poll_count) >=
				    (uint64_t)FAN_PRODUCERS * FAN_ITEMS / 2, 2000);
	uint64_t steals = WT_SUM_WORKERS(m, steal_count);
	uint64_t items = (uint64_t)FAN_PRODUCERS * FAN_ITEMS;
	cr_log_info("%llu tasks stolen for %llu items", (unsigned long long)steals,
		    (unsigned long long)items);
	/* sanitizers slow every poll: more of them pass for long tasks. A
	 * chaos build sleeps and yields inside polls, so many are long and
	 * may be stolen: 23.7k-37.9k of 320k (6 runs); a quarter of the
	 * items still fails a scheduler without the policy (38-59%). */
#ifdef WEFT_TEST_CHAOS
	uint64_t bound = items / 4;
#else
	uint64_t bound = items / 20 * WEFT_TEST_SLOW;
#endif
	cr_assert_leq(steals, bound, "%llu tasks stolen for %llu items: senders bounce",
		      (unsigned long long)steals, (unsigned long long)items);
	weft_metrics_free(m);
	cr_assert_eq(weft_chan_destroy(fan_ch), 0);
	wt_rt_destroy(rt);
}

/*
 * The other side of the policy: short tasks queued behind a long poll are
 * taken by the idle worker (their worker does not serve its ring), well
 * before the poll ends. Four children are far below the backlog that
 * steals at once; the LIFO slot's child waits for the stall rescue. Both
 * workers first run short tasks until each publishes a mean poll under
 * the policy's long-task bound (a fresh core's seed is above it, which
 * would take the children by that rule instead).
 */
enum { LP_CHILDREN = 4, LP_POLL_MS = 400 };
#define LP_SHORT_NS 2000 /* lib/sched/steal.h, WEFT__STEAL_TASK_NS */
static struct {
	atomic_uint ran;
	atomic_bool spawned, poll_done;
	atomic_int spawn_rc;
	atomic_uint_fast64_t ran_ns[LP_CHILDREN], spawn_ns;
} lp;

static enum weft_poll lp_child(void *s, struct weft_cx *cx)
{
	(void)cx;
	atomic_store(&lp.ran_ns[(uintptr_t)s], weft_now_ns());
	atomic_fetch_add(&lp.ran, 1);
	return WEFT_READY;
}

static enum weft_poll lp_long(void *s, struct weft_cx *cx)
{
	(void)s;
	atomic_store(&lp.spawn_ns, weft_now_ns());
	for (uintptr_t i = 0; i < LP_CHILDREN; i++) {
		int rc = weft_spawn_poll(weft_cx_runtime(cx), lp_child, (void *)i, NULL, NULL);
		if (rc)
			atomic_store(&lp.spawn_rc, rc);
	}
	atomic_store(&lp.spawned, true);
	uint64_t t0 = weft_now_ns();
	while (weft_now_ns() - t0 < LP_POLL_MS * 1000000ull)
		; /* one long poll */
	atomic_store(&lp.poll_done, true);
	return WEFT_READY;
}

static enum weft_poll lp_warm(void *s, struct weft_cx *cx)
{
	(void)s;
	(void)cx;
	return WEFT_READY;
}

Test(sched, short_tasks_behind_a_long_poll_are_taken, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	bool short_polls = false;
	for (int round = 0; round < 100 && !short_polls; round++) {
		for (int i = 0; i < 2000; i++)
			cr_assert_eq(weft_spawn_poll(rt, lp_warm, NULL, NULL, NULL), 0);
		struct weft_metrics *m;
		/* published at maintenance and when a worker parks */
		short_polls = WT_METRICS_UNTIL(rt, m, m->alive_tasks == 0 &&
					       m->worker[0].mean_poll_ns < LP_SHORT_NS &&
					       m->worker[1].mean_poll_ns < LP_SHORT_NS, 50);
		weft_metrics_free(m);
	}
	cr_assert(short_polls, "the workers never published a short mean poll");
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, lp_long, NULL, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&lp.spawned), WT_LONG_MS));
	cr_assert_eq(atomic_load(&lp.spawn_rc), 0);
	/* the children in the ring: all but the LIFO slot's */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&lp.ran) >= LP_CHILDREN - 1, WT_LONG_MS));
	cr_assert_not(atomic_load(&lp.poll_done),
		      "the children queued behind a %d ms poll waited for it", LP_POLL_MS);
	uint64_t worst = 0;
	for (int i = 0; i < LP_CHILDREN; i++) {
		uint64_t at = atomic_load(&lp.ran_ns[i]);
		if (at && at - atomic_load(&lp.spawn_ns) > worst)
			worst = at - atomic_load(&lp.spawn_ns);
	}
	cr_log_info("ring children ran within %.2f ms of their spawn", worst / 1e6);
	cr_assert_eq(weft_join(h, NULL), 0);
	wt_rt_destroy(rt);
}

/*
 * A task that yielded waits in its core's deferred list, which no thief
 * reaches, until local work runs out. A long poll next on that core held
 * it for the whole poll: here the yielder's second poll came only after
 * the 400 ms poll ended (found by a review). The watcher that counts the
 * stall now takes the list (worker.c, rescue_deferred): the second poll
 * runs on the other worker while the long poll goes on. The yielder's
 * first poll puts the long task in its core's LIFO slot, so the long poll
 * comes right after the yield, on the same core.
 */
enum { YS_POLL_MS = 400 };
static struct {
	atomic_bool long_started, long_done, second_during;
	atomic_int polls, spawn_rc;
	atomic_uint_fast64_t yield_ns, second_ns;
} ys;

static enum weft_poll ys_long(void *s, struct weft_cx *cx)
{
	(void)s;
	(void)cx;
	atomic_store(&ys.long_started, true);
	uint64_t t0 = weft_now_ns();
	while (weft_now_ns() - t0 < YS_POLL_MS * 1000000ull)
		; /* one long poll */
	atomic_store(&ys.long_done, true);
	return WEFT_READY;
}

static enum weft_poll ys_yielder(void *s, struct weft_cx *cx)
{
	(void)s;
	if (atomic_fetch_add(&ys.polls, 1) == 0) {
		int rc = weft_spawn_poll(weft_cx_runtime(cx), ys_long, NULL, NULL, NULL);
		if (rc)
			atomic_store(&ys.spawn_rc, rc);
		atomic_store(&ys.yield_ns, weft_now_ns());
		weft_waker_wake_by_ref(weft_cx_waker(cx)); /* a yield: behind the others */
		return WEFT_PENDING;
	}
	atomic_store(&ys.second_ns, weft_now_ns());
	atomic_store(&ys.second_during, !atomic_load(&ys.long_done));
	return WEFT_READY;
}

Test(sched, a_yielded_task_behind_a_long_poll_is_taken, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, ys_yielder, NULL, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&ys.spawn_rc), 0);
	cr_assert(atomic_load(&ys.long_started), "the long task never ran");
	uint64_t wait = atomic_load(&ys.second_ns) - atomic_load(&ys.yield_ns);
	cr_log_info("the yielder ran again %.2f ms after its yield", wait / 1e6);
	cr_assert(atomic_load(&ys.second_during),
		  "the yielded task waited %.1f ms, for the %d ms poll behind it to end",
		  wait / 1e6, YS_POLL_MS);
	struct weft_metrics *m;
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	uint64_t stalls = m->stalls;
	weft_metrics_free(m);
	cr_assert_geq(stalls, 1, "the long poll was not counted as a stall");
	cr_assert(WT_WAIT_UNTIL(atomic_load(&ys.long_done), WT_LONG_MS));
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------ strerror */

Test(strerror, distinct_texts, .timeout = WT_TMO(10))
{
	static const int codes[] = { -EINVAL, -ENOMEM, -EAGAIN, -ESHUTDOWN, -EDEADLK,
				     -ECANCELED, -EBUSY, -ETIMEDOUT };
	enum { NC = sizeof codes / sizeof codes[0] };
	char txt[NC][256];
	for (int i = 0; i < NC; i++) {
		const char *s = weft_strerror(codes[i]);
		cr_assert_not_null(s, "weft_strerror(%d) is NULL", codes[i]);
		cr_assert_gt(strlen(s), 0);
		snprintf(txt[i], sizeof txt[i], "%s", s); /* copy: may be a static buffer */
	}
	for (int i = 0; i < NC; i++)
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(txt[i], txt[j], "codes %d and %d share the text \"%s\"",
					  codes[i], codes[j], txt[i]);
	cr_assert_not_null(weft_strerror(0));
	cr_assert_not_null(weft_strerror(-123456));
	cr_assert_not_null(weft_strerror(123456));
	cr_assert_not_null(weft_strerror(INT_MIN));
	cr_assert_not_null(weft_strerror(EINVAL)); /* "or any errno value" */
}

Test(opts, size_ending_inside_a_field_is_refused, .timeout = WT_TMO(10))
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	struct weft_runtime *rt = NULL;
	o.sz = offsetof(struct weft_runtime_opts, thread_name_prefix) + 4; /* half a pointer */
	cr_assert_eq(weft_runtime_create(&o, &rt), -EINVAL);
	o.sz = offsetof(struct weft_runtime_opts, thread_name_prefix); /* an older header's end */
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
}

/* ------------------------------------------------------ idle neighbours */

/*
 * Two fibers passing a token through two channels keep one worker busy:
 * each wake puts the other fiber in the LIFO slot, and every third poll
 * the LIFO cap moves it to the ring, where this core polls it next. Waking
 * the parked worker for it was useless (the steal policy leaves short
 * tasks to their own worker): it searched, declined and parked again,
 * ~70,000 times a second, and the process burned a second CPU, a third of
 * it in the kernel. 300 ms of ping-pong: fewer parks than one per 100 us.
 */
static struct weft_chan *pp_a, *pp_b;
static atomic_bool pp_stop;
static atomic_ulong pp_rounds;

static void *pp_side(void *arg)
{
	long v = 0;
	bool first = arg != NULL;
	if (first && weft_chan_send(pp_a, &v))
		return NULL;
	for (;;) {
		if (weft_chan_recv(first ? pp_b : pp_a, &v))
			return NULL;
		atomic_fetch_add_explicit(&pp_rounds, 1, memory_order_relaxed);
		if (atomic_load(&pp_stop))
			break;
		if (weft_chan_send(first ? pp_a : pp_b, &v))
			return NULL;
	}
	weft_chan_close(pp_a);
	weft_chan_close(pp_b);
	return NULL;
}

/* One per-worker counter summed over the workers, from a fresh snapshot. */
#define SUM_NOW(rt, field)                                                     \
	({                                                                     \
		struct weft_metrics *sum_m_ = wt_metrics(rt);                  \
		uint64_t sum_n_ = WT_SUM_WORKERS(sum_m_, field);               \
		weft_metrics_free(sum_m_);                                     \
		sum_n_;                                                        \
	})

Test(sched, ping_pong_leaves_the_idle_worker_asleep, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h[2];
	cr_assert_eq(weft_chan_create(sizeof(long), 1, &pp_a), 0);
	cr_assert_eq(weft_chan_create(sizeof(long), 1, &pp_b), 0);
	atomic_store(&pp_stop, false);
	atomic_store(&pp_rounds, 0);
	cr_assert_eq(weft_spawn(rt, pp_side, (void *)1, &h[0]), 0);
	cr_assert_eq(weft_spawn(rt, pp_side, NULL, &h[1]), 0);
	wt_sleep_ms(50); /* settled: both fibers on one worker */
	uint64_t p0 = SUM_NOW(rt, park_count), r0 = atomic_load(&pp_rounds), t0 = wt_now_ns();
	wt_sleep_ms(300);
	uint64_t p1 = SUM_NOW(rt, park_count), r1 = atomic_load(&pp_rounds), t1 = wt_now_ns();
	atomic_store(&pp_stop, true);
	cr_assert_eq(weft_join(h[0], NULL), 0);
	cr_assert_eq(weft_join(h[1], NULL), 0);
	double ms = (double)(t1 - t0) / 1e6;
	cr_log_info("ping-pong: %llu rounds, %llu parks in %.0f ms",
		    (unsigned long long)(r1 - r0), (unsigned long long)(p1 - p0), ms);
	cr_assert_gt(r1 - r0, 1000, "the ping-pong did not run (%llu rounds)",
		     (unsigned long long)(r1 - r0));
	cr_assert_lt((double)(p1 - p0), ms * 10, "%llu parks in %.0f ms: the idle worker is woken "
		     "for tasks its neighbour runs next", (unsigned long long)(p1 - p0), ms);
	cr_assert_eq(weft_chan_destroy(pp_a), 0);
	cr_assert_eq(weft_chan_destroy(pp_b), 0);
	wt_rt_destroy(rt);
}

/*
 * A fan-in of short tasks: 64 fibers sending to one channel (capacity
 * 1,024), one receiving. Each receive wakes a sender onto the receiver's
 * core, displacing the task in its LIFO slot into the ring, and each such
 * push woke the parked worker, which looked, declined a ring of short
 * tasks its owner serves (steal.h) and parked again: ~23 wakes a
 * millisecond, each an eventfd write on the busy worker (fanout_mpsc ran
 * 10% slower on two workers than on one). A short-task ring now wakes a
 * peer at most once per SHORT_NOTIFY_GAP_NS (worker.c): 1 park a
 * millisecond here, 5 with another test loading both CPUs (preempted, the
 * owner's polls look long); fewer than 12 (before: 23).
 */
static struct weft_chan *fan_ch;
static atomic_bool fan_stop;
static atomic_long fan_items;

static void *fan_sender(void *arg)
{
	long v = 1;
	while (!atomic_load_explicit(&fan_stop, memory_order_relaxed))
		if (weft_chan_send(fan_ch, &v))
			break;
	return NULL;
}

static void *fan_receiver(void *arg)
{
	long v;
	while (weft_chan_recv(fan_ch, &v) == 0)
		atomic_fetch_add_explicit(&fan_items, 1, memory_order_relaxed);
	return NULL;
}

Test(sched, a_fan_in_of_short_tasks_leaves_the_idle_worker_asleep, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	enum { SENDERS = 64 };
	struct weft_task *h[SENDERS + 1];
	cr_assert_eq(weft_chan_create(sizeof(long), 1024, &fan_ch), 0);
	atomic_store(&fan_stop, false);
	atomic_store(&fan_items, 0);
	cr_assert_eq(weft_spawn(rt, fan_receiver, NULL, &h[SENDERS]), 0);
	for (int i = 0; i < SENDERS; i++)
		cr_assert_eq(weft_spawn(rt, fan_sender, NULL, &h[i]), 0);
	wt_sleep_ms(50);
	/* three windows, the quietest counts: the bug parks ~23 times a
	 * millisecond in every one; a busy host (other tests, a stalled
	 * vCPU making the owner's polls look long) raises one at a time */
	uint64_t p0 = 0, p1 = 0, t0 = 0, t1 = 0;
	long i0 = atomic_load(&fan_items), i1;
	double best = 1e9;
	for (int w = 0; w < 3; w++) {
		uint64_t wp0 = SUM_NOW(rt, park_count), wt0 = wt_now_ns();
		wt_sleep_ms(100);
		uint64_t wp1 = SUM_NOW(rt, park_count), wt1 = wt_now_ns();
		double rate = (double)(wp1 - wp0) / ((double)(wt1 - wt0) / 1e6);
		if (rate < best) {
			best = rate;
			p0 = wp0, p1 = wp1, t0 = wt0, t1 = wt1;
		}
	}
	i1 = atomic_load(&fan_items);
	atomic_store(&fan_stop, true);
	for (int i = 0; i < SENDERS; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	cr_assert_eq(weft_chan_close(fan_ch), 0);
	cr_assert_eq(weft_join(h[SENDERS], NULL), 0);
	double ms = (double)(t1 - t0) / 1e6;
	cr_log_info("fan-in: %ld items; the quietest of 3 windows: %llu parks in %.0f ms", i1 - i0,
		    (unsigned long long)(p1 - p0), ms);
	cr_assert_gt(i1 - i0, 10000, "the fan-in did not run (%ld items)", i1 - i0);
	/* A chaos build sleeps inside the owner's polls, so its ring often
	 * looks unserved and waking the peer is right: 13 a millisecond in
	 * one run of several, too close to the 23 this bound tells apart.
	 * The rate is checked in the other builds; here only that it ran. */
#ifndef WEFT_TEST_CHAOS
	cr_assert_lt((double)(p1 - p0), ms * 12, "%llu parks in %.0f ms: the idle worker is woken "
		     "for a ring of short tasks its owner serves", (unsigned long long)(p1 - p0), ms);
#endif
	cr_assert_eq(weft_chan_destroy(fan_ch), 0);
	wt_rt_destroy(rt);
}

/*
 * A thread spawning tasks one at a time into an idle runtime: each spawn
 * wakes one worker, which runs the task. The searcher that found it used
 * to relay the search unconditionally (Tokio's rule), waking the second
 * worker to find nothing: one empty wake per task, 5 system calls per task
 * instead of 2. Now it relays only with work in sight. 200 tasks, each
 * after the previous has finished: fewer empty wakes than one in four.
 */
static atomic_int trickle_done;

static enum weft_poll trickle_task(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	atomic_fetch_add(&trickle_done, 1);
	return WEFT_READY;
}

Test(sched, a_trickle_of_spawns_wakes_one_worker_each, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	const int n = 200;
	atomic_store(&trickle_done, 0);
	wt_sleep_ms(20); /* both workers parked */
	uint64_t noop0 = SUM_NOW(rt, noop_count);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(weft_spawn_poll(rt, trickle_task, NULL, NULL, NULL), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&trickle_done) == i + 1, WT_LONG_MS));
		usleep(300); /* the workers park again */
	}
	uint64_t noops = SUM_NOW(rt, noop_count) - noop0;
	cr_log_info("trickle: %d tasks, %llu empty wakes", n, (unsigned long long)noops);
	cr_assert_lt(noops, (uint64_t)n / 4, "%llu empty wakes for %d tasks spawned one at a time",
		     (unsigned long long)noops, n);
	wt_rt_destroy(rt);
}

/* Every error the library returns has a text that fits its calls: -ENOENT
 * (an empty join set) read "No such file or directory" (found by a
 * review). */
Test(api, strerror_of_an_empty_join_set)
{
	cr_assert(strstr(weft_strerror(-ENOENT), "join set") != NULL, "%s",
		  weft_strerror(-ENOENT));
}
