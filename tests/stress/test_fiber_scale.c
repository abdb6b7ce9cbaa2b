/*
 * test_fiber_scale.c - fibers at scale (label stress).
 *
 *  - a million fibers suspended at once with the default vm.max_map_count
 *    (65530): all created, all released and joined, nothing lost, and the
 *    stacks cost no kernel mapping each;
 *  - the memory of a burst of fiber stacks goes back to the system once the
 *    burst is over: when the workers go idle, and while they stay busy.
 *
 * Sanitized builds (WEFT_TEST_SLOW > 1) run a tenth of the million and only
 * log the RSS figures.
 */
#include "../common/wt.h"

#include <sys/mman.h>

#define MILLION (WEFT_TEST_SLOW > 1 ? 100000u : 1000000u)

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	unsigned long size = 0, res = 0;
	cr_assert_eq(fscanf(f, "%lu %lu", &size, &res), 2);
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
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

static long max_map_count(void)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Linux 6.13+ installs a stack's guard without a mapping of its own
 * (MADV_GUARD_INSTALL); before, the library's mprotect fallback splits a
 * mapping per stack (weft.h). */
static bool have_guard_install(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	void *m = mmap(NULL, (size_t)ps * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	bool ok = madvise(m, (size_t)ps, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(m, (size_t)ps * 2);
	return ok;
}

static struct weft_waitgroup *gate;
static atomic_uint suspended;
static atomic_int wait_errors;

static void *gated(void *arg)
{
	atomic_fetch_add_explicit(&suspended, 1, memory_order_relaxed);
	if (weft_waitgroup_wait(gate))
		atomic_fetch_add(&wait_errors, 1);
	return arg;
}

Test(fiber_scale, million_suspended_fibers, .timeout = WT_TMO(600))
{
	unsigned n = MILLION;
	long mmc = max_map_count();
	bool guards = have_guard_install();
	cr_log_info("vm.max_map_count %ld, MADV_GUARD_INSTALL %s", mmc, guards ? "yes" : "no");
	if (!guards) {
		/* An older kernel (Debian 12's 6.1): every stack costs two
		 * mappings, so as many fibers as the map limit allows (a
		 * million would fail at about 32,000, as weft.h says). */
		unsigned maps = map_count();
		unsigned fit = mmc > (long)maps + 4000 ? (unsigned)((mmc - maps - 4000) / 2) : 1000;
		if (fit < n)
			n = fit;
		cr_log_warn("no MADV_GUARD_INSTALL: %u fibers, not a million", n);
	}
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task **h = calloc(n, sizeof(*h));
	cr_assert_not_null(h);
	cr_assert_eq(weft_waitgroup_create(&gate), 0);
	cr_assert_eq(weft_waitgroup_add(gate, 1), 0);
	atomic_store(&suspended, 0);
	atomic_store(&wait_errors, 0);
	unsigned maps0 = map_count();
	uint64_t rss0 = rss_bytes();

	uint64_t t0 = wt_now_ns();
	for (unsigned i = 0; i < n; i++) {
		int rc = weft_spawn(rt, gated, (void *)(uintptr_t)(i + 1), &h[i]);
		cr_assert_eq(rc, 0, "spawn %u of %u = %d (%s)", i, n, rc, weft_strerror(rc));
	}
	cr_assert(WT_WAIT_UNTIL(atomic_load(&suspended) == n, 120000), "%u of %u fibers ran",
		  atomic_load(&suspended), n);
	uint64_t t1 = wt_now_ns();
	usleep(20000); /* the last ones finish suspending */
	uint64_t rss1 = rss_bytes();
	unsigned maps1 = map_count();

	struct weft_metrics *m = wt_metrics(rt);
	cr_log_info("%u fibers suspended in %.2f s; RSS %.2f KiB per fiber; mappings %u -> %u; "
		    "stack address space %.1f GiB", n, (double)(t1 - t0) / 1e9,
		    (double)(rss1 - rss0) / 1024.0 / n, maps0, maps1,
		    (double)m->fiber_stack_bytes_reserved / (1u << 30));
	cr_assert_eq(m->fibers_live, n, "live fibers %llu, want %u",
		     (unsigned long long)m->fibers_live, n);
	cr_assert_eq(m->fiber_stack_alloc_failures, 0);
	cr_assert_geq(m->fiber_stack_bytes_reserved, (uint64_t)n * 64 * 1024);
	weft_metrics_free(m);
	/* No kernel mapping per stack: a few per slab of thousands. */
	/* signed: the count can also fall (an allocator giving a mapping back
	 * meanwhile: under ASan, now that a spawn allocates only the task) */
	if (guards)
		cr_assert_lt((long)maps1 - (long)maps0, (long)(n / 500), "%u fibers took %ld mappings",
			     n, (long)maps1 - (long)maps0);
	if (WEFT_TEST_SLOW == 1)
		cr_assert_lt((rss1 - rss0) / n, 8192, "%.2f KiB RSS per suspended fiber",
			     (double)(rss1 - rss0) / 1024.0 / n);

	cr_assert_eq(weft_waitgroup_done(gate), 0);
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++) {
		void *res = NULL;
		int rc = weft_join(h[i], &res);
		cr_assert_eq(rc, 0, "join %u = %d (%s)", i, rc, weft_strerror(rc));
		cr_assert_eq((uintptr_t)res, (uintptr_t)i + 1, "fiber %u returned %p", i, res);
		sum += (uintptr_t)res;
	}
	cr_assert_eq(sum, (uint64_t)n * (n + 1) / 2);
	cr_assert_eq(atomic_load(&wait_errors), 0);
	cr_assert(WT_METRICS_UNTIL(rt, m, m->fibers_live == 0, WT_LONG_MS), "%llu fibers live",
		  (unsigned long long)m->fibers_live);
	weft_metrics_free(m);
	cr_assert_eq(weft_waitgroup_destroy(gate), 0);
	free(h);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------- memory after a burst */

#define BURST 1000u
#define TOUCH (256 * 1024)

static void *touch_and_wait(void *arg)
{
	volatile char buf[TOUCH];
	memset((char *)buf, 1, sizeof buf);
	return gated((void *)(uintptr_t)buf[(uintptr_t)arg % TOUCH]);
}

static atomic_bool spin_stop;

/* Keeps a worker from ever parking: wakes itself and yields. */
static enum weft_poll spin_poll(void *s, struct weft_cx *cx)
{
	if (atomic_load_explicit(&spin_stop, memory_order_relaxed))
		return WEFT_READY;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* A burst of fibers each using 256 KiB of stack; after they are joined the
 * RSS must come back to within 10% of the burst's growth. */
static void burst_returns_memory(bool busy)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .fiber_stack_size = 512 * 1024);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_task *spin[2];
	atomic_store(&spin_stop, false);
	if (busy)
		for (int i = 0; i < 2; i++)
			cr_assert_eq(weft_spawn_poll(rt, spin_poll, NULL, NULL, &spin[i]), 0);
	static struct weft_task *h[BURST];
	cr_assert_eq(weft_waitgroup_create(&gate), 0);
	cr_assert_eq(weft_waitgroup_add(gate, 1), 0);
	atomic_store(&suspended, 0);
	atomic_store(&wait_errors, 0);
	usleep(20000);
	uint64_t before = rss_bytes();

	for (uintptr_t i = 0; i < BURST; i++)
		cr_assert_eq(weft_spawn(rt, touch_and_wait, (void *)i, &h[i]), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&suspended) == BURST, WT_LONG_MS), "%u of %u ran",
		  atomic_load(&suspended), BURST);
	uint64_t peak = rss_bytes();
	cr_assert_gt(peak - before, (uint64_t)BURST * TOUCH / 2, "the burst grew RSS by %llu KiB only",
		     (unsigned long long)(peak - before) >> 10);
	cr_assert_eq(weft_waitgroup_done(gate), 0);
	for (unsigned i = 0; i < BURST; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	uint64_t limit = before + (peak - before) / 10, after;
	bool ok = WT_WAIT_UNTIL((after = rss_bytes()) <= limit, 3000);
	if (ok) {
		usleep(100000); /* for the log: where it settles */
		after = rss_bytes();
	}
	cr_log_info("%s: RSS before %.1f MiB, burst %.1f MiB, after %.1f MiB", busy ? "busy" : "idle",
		    before / 1048576.0, peak / 1048576.0, after / 1048576.0);
	/* Under ASan the stacks' shadow (1/8 of what they touched) and the
	 * allocator's quarantine stay resident: the figure is logged only. */
	if (WEFT_TEST_SLOW == 1)
		cr_assert(ok, "RSS %.1f MiB after the burst, before %.1f MiB, peak %.1f MiB",
			  after / 1048576.0, before / 1048576.0, peak / 1048576.0);
	atomic_store(&spin_stop, true);
	if (busy)
		for (int i = 0; i < 2; i++)
			cr_assert_eq(weft_join(spin[i], NULL), 0);
	cr_assert_eq(weft_waitgroup_destroy(gate), 0);
	wt_rt_destroy(rt);
}

/* The workers go idle after the burst (stacks trimmed before parking). */
Test(fiber_scale, burst_memory_returns_when_idle, .timeout = WT_TMO(60))
{
	burst_returns_memory(false);
}

/* The workers never park (stacks trimmed at maintenance, over time). */
Test(fiber_scale, burst_memory_returns_while_busy, .timeout = WT_TMO(60))
{
	burst_returns_memory(true);
}
