/*
 * test_local.c - fiber-local values (weft.h, weft_local_get/set): one value
 * per fiber and key, kept across suspensions and moves between workers,
 * nothing inherited, dtors once per stored value when fn returns (after a
 * cancellation too, and for a fiber discarded at shutdown), dtor rounds
 * that end, errors outside a fiber and on allocation failure.
 */
#include <criterion/criterion.h>
#include <sys/syscall.h>
#include <weft/sync.h>

#include "wt.h"

static atomic_int g_bad;       /* problems seen off the test thread */
static atomic_int g_dtor_runs;
static atomic_int g_dtor_off_fiber;

static void count_free(void *v)
{
	atomic_fetch_add(&g_dtor_runs, 1);
	if (!weft_in_fiber())
		atomic_fetch_add(&g_dtor_off_fiber, 1);
	free(v);
}

static const struct weft_local_key k_heap = { .dtor = count_free };
static const struct weft_local_key k_plain = { .dtor = NULL };

/* ------------------------------------------------ per fiber, across moves */

static atomic_int g_moved;

/* Not pthread_self(): glibc declares it const, so its value may be kept
 * across the yield, which is what this test must not do. */
static __attribute__((noinline)) long my_tid(void)
{
	return syscall(SYS_gettid);
}

static void *own_values(void *arg)
{
	long i = (long)arg;
	if (weft_local_get(&k_heap) || weft_local_get(&k_plain))
		atomic_fetch_add(&g_bad, 1); /* a new fiber starts with none */
	long *mine = malloc(sizeof(*mine));
	*mine = i;
	if (weft_local_set(&k_heap, mine) || weft_local_set(&k_plain, (void *)(i + 1)))
		atomic_fetch_add(&g_bad, 1);
	long tid = my_tid();
	for (int y = 0; y < 200; y++) {
		if (weft_yield())
			atomic_fetch_add(&g_bad, 1);
		if (my_tid() != tid) {
			atomic_fetch_add(&g_moved, 1);
			tid = my_tid();
		}
		long *got = weft_local_get(&k_heap);
		if (got != mine || *got != i || weft_local_get(&k_plain) != (void *)(i + 1))
			atomic_fetch_add(&g_bad, 1);
		volatile unsigned x = 0;
		for (int k = 0; k < 200; k++)
			x += k; /* some work, so that the idle worker steals */
	}
	return NULL;
}

enum { PER_ROUND = 200 };

/* Spawned from a fiber, the others start in its worker's queue and the
 * other worker has to steal them (test_fiber's migration test). */
static void *spawn_round(void *arg)
{
	struct weft_runtime *rt = arg;
	static struct weft_task *t[PER_ROUND];
	for (long i = 0; i < PER_ROUND; i++)
		if (weft_spawn(rt, own_values, (void *)i, &t[i]))
			atomic_fetch_add(&g_bad, 1);
	for (int i = 0; i < PER_ROUND; i++)
		if (weft_join(t[i], NULL))
			atomic_fetch_add(&g_bad, 1);
	return NULL;
}

Test(local, values_are_per_fiber_and_follow_it_between_workers, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	/* rounds until a fiber has moved (a loaded machine may keep one
	 * worker off-CPU for a whole round), for up to 20 s */
	uint64_t until = wt_now_ns() + 20000000000ull;
	int rounds = 0;
	do {
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, spawn_round, rt, &h), 0);
		cr_assert_eq(weft_join(h, NULL), 0);
		rounds++;
	} while (!atomic_load(&g_moved) && wt_now_ns() < until);
	cr_assert_eq(atomic_load(&g_bad), 0, "a fiber read another's value, or none");
	cr_assert_gt(atomic_load(&g_moved), 0, "no fiber resumed on another worker (%d rounds)",
		     rounds);
	cr_assert_eq(atomic_load(&g_dtor_runs), rounds * PER_ROUND, "each heap value destroyed once");
	cr_assert_eq(atomic_load(&g_dtor_off_fiber), 0, "dtors run on the fiber");
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------- nothing inherited */

static void *child_sees_none(void *arg)
{
	if (weft_local_get(&k_plain) != NULL)
		atomic_fetch_add(&g_bad, 1);
	if (weft_local_set(&k_plain, (void *)7))
		atomic_fetch_add(&g_bad, 1);
	return weft_local_get(&k_plain);
}

static void *parent_spawns(void *arg)
{
	struct weft_runtime *rt = arg;
	if (weft_local_set(&k_plain, (void *)3))
		atomic_fetch_add(&g_bad, 1);
	struct weft_task *c;
	void *r = NULL;
	if (weft_spawn(rt, child_sees_none, NULL, &c) || weft_join(c, &r) || r != (void *)7)
		atomic_fetch_add(&g_bad, 1);
	return weft_local_get(&k_plain); /* the child's set left ours alone */
}

Test(local, a_spawned_fiber_inherits_nothing, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t;
	void *r = NULL;
	cr_assert_eq(weft_spawn(rt, parent_spawns, rt, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq(r, (void *)3);
	cr_assert_eq(atomic_load(&g_bad), 0);
	wt_rt_destroy(rt);
}

/* ------------------------------------------- dtors: order, replace, clear */

static char g_log[16];
static atomic_int g_log_n;

static void log_dtor(void *v)
{
	int n = atomic_fetch_add(&g_log_n, 1);
	if (n < (int)sizeof(g_log))
		g_log[n] = *(char *)v;
}

static const struct weft_local_key k1 = { .dtor = log_dtor };
static const struct weft_local_key k2 = { .dtor = log_dtor };
static const struct weft_local_key k3 = { .dtor = log_dtor };

static void *set_replace_clear(void *arg)
{
	static char a = 'a', a2 = 'A', b = 'b', c = 'c';
	int rc = weft_local_set(&k1, &a) | weft_local_set(&k2, &b) | weft_local_set(&k3, &c) |
		 weft_local_set(&k1, &a2) | weft_local_set(&k2, NULL);
	if (rc || weft_local_get(&k1) != &a2 || weft_local_get(&k2) != NULL)
		atomic_fetch_add(&g_bad, 1);
	if (atomic_load(&g_log_n) != 0)
		atomic_fetch_add(&g_bad, 1); /* replacing destroys nothing */
	return NULL;
}

Test(local, dtors_run_once_per_value_in_first_set_order, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, set_replace_clear, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_log_n), 2, "dtor calls: %d", atomic_load(&g_log_n));
	cr_assert_eq(g_log[0], 'A'); /* k1's current value, k2 cleared, then k3 */
	cr_assert_eq(g_log[1], 'c');
	wt_rt_destroy(rt);
}

/* ----------------------------------------------- cancelled, then unwound */

static atomic_bool g_started;

static void *set_then_wait(void *arg)
{
	struct weft_notify *n = arg;
	atomic_store(&g_started, true);
	if (weft_local_set(&k_heap, malloc(8)))
		atomic_fetch_add(&g_bad, 1);
	int rc = weft_notify_wait(n);
	if (rc != -ECANCELED)
		atomic_fetch_add(&g_bad, 1);
	if (atomic_load(&g_dtor_runs) != 0)
		atomic_fetch_add(&g_bad, 1); /* not before fn returns */
	return (void *)1;
}

Test(local, a_cancelled_fiber_has_its_dtors_run_on_it_when_it_returns, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, set_then_wait, n, &t), 0);
	/* started (aborted before its first poll it would never run: -ECANCELED,
	 * not -EINTR), then most likely suspended in its wait */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_started), WT_LONG_MS), "the fiber never started");
	wt_sleep_ms(20);
	cr_assert_eq(weft_abort(t), 0);
	void *r = NULL;
	cr_assert_eq(weft_join(t, &r), -EINTR);
	cr_assert_eq(r, (void *)1);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_dtor_runs), 1);
	cr_assert_eq(atomic_load(&g_dtor_off_fiber), 0);
	wt_rt_destroy(rt);
	weft_notify_destroy(n);
}

/* ------------------------------------------------------ rounds that end */

static atomic_int g_again_calls, g_other_calls;
static int g_again_rc[8];

static void other_dtor(void *v)
{
	atomic_fetch_add(&g_other_calls, 1);
}

static const struct weft_local_key k_other = { .dtor = other_dtor };
static void again_dtor(void *v);
static const struct weft_local_key k_again = { .dtor = again_dtor };

/* Sets its own key again every time, and another key the first time. */
static void again_dtor(void *v)
{
	int call = atomic_fetch_add(&g_again_calls, 1);
	free(v);
	if (call == 0 && weft_local_set(&k_other, (void *)1))
		atomic_fetch_add(&g_bad, 1);
	void *nv = malloc(4);
	int rc = weft_local_set(&k_again, nv);
	if (call < 8)
		g_again_rc[call] = rc;
	if (rc)
		free(nv); /* refused: still ours */
}

static void *set_again(void *arg)
{
	if (weft_local_set(&k_again, malloc(4)))
		atomic_fetch_add(&g_bad, 1);
	return NULL;
}

Test(local, a_dtor_that_sets_again_is_stopped_after_the_last_round, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, set_again, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_again_calls), WEFT_LOCAL_DTOR_ROUNDS);
	for (int i = 0; i < WEFT_LOCAL_DTOR_ROUNDS - 1; i++)
		cr_assert_eq(g_again_rc[i], 0, "round %d's set: %d", i + 1, g_again_rc[i]);
	cr_assert_eq(g_again_rc[WEFT_LOCAL_DTOR_ROUNDS - 1], -EBUSY);
	cr_assert_eq(atomic_load(&g_other_calls), 1, "a value set by a dtor is destroyed");
	wt_rt_destroy(rt); /* ASan: nothing leaked */
}

/* ------------------------------------------------------- not in a fiber */

static atomic_int g_poll_rc = 1;
static atomic_bool g_poll_get_null;

static enum weft_poll local_in_poll(void *state, struct weft_cx *cx)
{
	atomic_store(&g_poll_rc, weft_local_set(&k_plain, (void *)1));
	atomic_store(&g_poll_get_null, weft_local_get(&k_plain) == NULL);
	return WEFT_READY;
}

static void *null_key(void *arg)
{
	return (void *)(intptr_t)weft_local_set(NULL, (void *)1);
}

Test(local, outside_a_fiber_there_are_none, .timeout = WT_TMO(30))
{
	cr_assert_eq(weft_local_set(&k_plain, (void *)1), -EPERM, "a plain thread");
	cr_assert_null(weft_local_get(&k_plain));
	cr_assert_null(weft_local_get(NULL));
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, local_in_poll, NULL, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_poll_rc), -EPERM, "a poll task: %d", atomic_load(&g_poll_rc));
	cr_assert(atomic_load(&g_poll_get_null));
	void *r = NULL;
	cr_assert_eq(weft_spawn(rt, null_key, NULL, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((intptr_t)r, -EINVAL);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------- block_in_place */

static void *in_place(void *arg)
{
	if (weft_local_get(&k_plain) != (void *)5)
		atomic_fetch_add(&g_bad, 1);
	return (void *)(intptr_t)weft_local_set(&k1, (void *)"x");
}

static void *fiber_blocks_in_place(void *arg)
{
	if (weft_local_set(&k_plain, (void *)5))
		atomic_fetch_add(&g_bad, 1);
	void *r = (void *)1;
	if (weft_block_in_place(in_place, NULL, &r) || r != NULL)
		atomic_fetch_add(&g_bad, 1);
	if (weft_local_get(&k1) == NULL)
		atomic_fetch_add(&g_bad, 1);
	weft_local_set(&k1, NULL); /* "x" is not log_dtor's to log */
	return NULL;
}

Test(local, block_in_place_runs_with_the_fibers_values, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, fiber_blocks_in_place, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_log_n), 0);
	wt_rt_destroy(rt);
}

/* ------------------------------------------- discarded without returning */

static atomic_bool g_stop;

static void *ignores_cancellation(void *arg)
{
	if (weft_local_set(&k_heap, malloc(8)))
		atomic_fetch_add(&g_bad, 1);
	while (!atomic_load(&g_stop))
		(void)weft_yield(); /* -ECANCELED ignored: never unwinds */
	return NULL;
}

Test(local, a_fiber_discarded_at_shutdown_has_its_dtors_run, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_spawn(rt, ignores_cancellation, NULL, NULL), 0);
	wt_sleep_ms(20);
	int rc = weft_runtime_shutdown(rt, 100 * 1000000ull);
	cr_assert(rc == 0 || rc == -ETIMEDOUT, "shutdown: %d", rc);
	while (rc == -ETIMEDOUT)
		rc = weft_runtime_shutdown(rt, 100 * 1000000ull);
	cr_assert_eq(atomic_load(&g_dtor_runs), 1, "dtor runs: %d", atomic_load(&g_dtor_runs));
	cr_assert_eq(atomic_load(&g_dtor_off_fiber), 1, "run by the discarding thread");
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&g_dtor_runs), 1);
	cr_assert_eq(atomic_load(&g_bad), 0);
}

/* ------------------------------------------------- many keys, no memory */

/* Fails on the thread that asked, while it asks: the workers' own
 * allocations meanwhile are not this test's. */
static atomic_bool g_fail_alloc;
static pthread_t g_fail_thread;

static void fail_allocs(bool on)
{
	if (on)
		g_fail_thread = pthread_self(); /* read only while the flag is on */
	atomic_store(&g_fail_alloc, on);
}

static void *failing_alloc(size_t size, size_t align, void *ctx)
{
	if (atomic_load(&g_fail_alloc) && pthread_equal(g_fail_thread, pthread_self()))
		return NULL;
	void *p = NULL;
	return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) ? NULL : p;
}

static void failing_free(void *p, void *ctx)
{
	free(p);
}

enum { NKEYS = 40 };
static struct weft_local_key g_keys[NKEYS];
static atomic_int g_key_dtors[NKEYS];

static void key_dtor(void *v)
{
	atomic_fetch_add(&g_key_dtors[(intptr_t)v - 1], 1);
}

static void *many_keys(void *arg)
{
	for (intptr_t i = 0; i < NKEYS; i++) {
		if (i == 4 || i == 16) {
			/* the array is full: growing it fails, nothing lost */
			fail_allocs(true);
			if (weft_local_set(&g_keys[i], (void *)(i + 1)) != -ENOMEM)
				atomic_fetch_add(&g_bad, 1);
			fail_allocs(false);
			if (weft_local_get(&g_keys[i]) != NULL)
				atomic_fetch_add(&g_bad, 1);
			for (intptr_t j = 0; j < i; j++)
				if (weft_local_get(&g_keys[j]) != (void *)(j + 1))
					atomic_fetch_add(&g_bad, 1);
		}
		if (weft_local_set(&g_keys[i], (void *)(i + 1)))
			atomic_fetch_add(&g_bad, 1);
		(void)weft_yield();
	}
	for (intptr_t j = 0; j < NKEYS; j++)
		if (weft_local_get(&g_keys[j]) != (void *)(j + 1))
			atomic_fetch_add(&g_bad, 1);
	return NULL;
}

static void *first_set_fails(void *arg)
{
	fail_allocs(true);
	int rc = weft_local_set(&g_keys[0], (void *)1);
	fail_allocs(false);
	if (weft_local_get(&g_keys[0]) != NULL)
		atomic_fetch_add(&g_bad, 1);
	return (void *)(intptr_t)rc;
}

Test(local, many_keys_and_a_failed_allocation_loses_nothing, .timeout = WT_TMO(30))
{
	struct weft_allocator a = { .alloc = failing_alloc, .free = failing_free };
	cr_assert_eq(weft_set_allocator(&a), 0);
	for (int i = 0; i < NKEYS; i++)
		g_keys[i].dtor = key_dtor;
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t;
	void *r = NULL;
	cr_assert_eq(weft_spawn(rt, first_set_fails, NULL, &t), 0);
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((intptr_t)r, -ENOMEM);
	cr_assert_eq(weft_spawn(rt, many_keys, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	for (int i = 0; i < NKEYS; i++)
		cr_assert_eq(atomic_load(&g_key_dtors[i]), 1, "key %d: %d dtor calls", i,
			     atomic_load(&g_key_dtors[i]));
	wt_rt_destroy(rt);
	cr_assert_eq(weft_set_allocator(NULL), 0);
}

/* ------------------------- a discarded fiber's dtors, as if on the fiber */

/* From the review of fiber-local values: the dtors of a fiber discarded by
 * shutdown's sweep ran as plain code on the shutting-down thread, so a
 * dtor's blocking call really blocked (a 2 s sleep held shutdown 2 s past
 * its timeout; a lock of a mutex the fiber held, forever), and a dtor's
 * get/set acted on whatever that thread was running (-EPERM on a plain
 * thread; on a supervisor fiber of another runtime, its own values). */
static struct weft_mutex *g_sweep_m;
static atomic_int g_sweep_sleep_rc = 1, g_sweep_lock_rc = 1, g_sweep_set_rc = 1;
static atomic_int g_sweep_get_null, g_key2_dtors, g_sweep_dtors;
/* the fiber's id, and the one its dtor saw (0 before: a review, 2026-12-06) */
static _Atomic uint64_t g_sweep_fiber_id, g_sweep_dtor_id;

static void key2_dtor(void *v)
{
	atomic_fetch_add(&g_key2_dtors, 1);
}

static const struct weft_local_key k_sweep2 = { .dtor = key2_dtor };
static void sweep_dtor(void *v);
static const struct weft_local_key k_sweep = { .dtor = sweep_dtor };

static void sweep_dtor(void *v)
{
	atomic_fetch_add(&g_sweep_dtors, 1);
	atomic_store(&g_sweep_sleep_rc, weft_sleep_ns(2000000000ull));
	atomic_store(&g_sweep_lock_rc, weft_mutex_lock(g_sweep_m));
	atomic_store(&g_sweep_get_null, weft_local_get(&k_sweep) == NULL);
	atomic_store(&g_sweep_set_rc, weft_local_set(&k_sweep2, (void *)2));
	atomic_store(&g_sweep_dtor_id, weft_current_task_id());
	free(v);
}

static void *holds_and_spins(void *arg)
{
	if (weft_mutex_lock(g_sweep_m) || weft_local_set(&k_sweep, malloc(8)))
		atomic_fetch_add(&g_bad, 1);
	atomic_store(&g_sweep_fiber_id, weft_current_task_id());
	while (!atomic_load(&g_stop))
		(void)weft_yield(); /* never unwinds */
	return NULL;
}

static uint64_t shut_down_spinner(void)
{
	struct weft_runtime *b = NULL;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	if (weft_runtime_create(&o, &b) || weft_spawn(b, holds_and_spins, NULL, NULL)) {
		atomic_fetch_add(&g_bad, 1);
		return 0;
	}
	usleep(20000);
	uint64_t t0 = wt_now_ns();
	int rc;
	while ((rc = weft_runtime_shutdown(b, 100 * 1000000ull)) == -ETIMEDOUT)
		;
	uint64_t took = wt_now_ns() - t0;
	if (rc || weft_runtime_destroy(b))
		atomic_fetch_add(&g_bad, 1);
	return took;
}

static void check_sweep(uint64_t took)
{
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_sweep_dtors), 1);
	cr_assert_lt(took, 1500000000ull, "shutdown took %lu ms", (unsigned long)(took / 1000000));
	cr_assert_eq(atomic_load(&g_sweep_sleep_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&g_sweep_lock_rc), -ECANCELED);
	cr_assert(atomic_load(&g_sweep_get_null), "the key being destroyed reads NULL");
	cr_assert_eq(atomic_load(&g_sweep_set_rc), 0, "a dtor may set values");
	cr_assert_eq(atomic_load(&g_key2_dtors), 1, "and they are destroyed in a later round");
	cr_assert_neq(atomic_load(&g_sweep_fiber_id), 0);
	cr_assert_eq(atomic_load(&g_sweep_dtor_id), atomic_load(&g_sweep_fiber_id),
		     "the dtor saw task id %llu, the fiber is %llu",
		     (unsigned long long)atomic_load(&g_sweep_dtor_id),
		     (unsigned long long)atomic_load(&g_sweep_fiber_id));
}

Test(local, a_discarded_fibers_dtors_run_as_on_the_fiber, .timeout = WT_TMO(30))
{
	cr_assert_eq(weft_mutex_create(&g_sweep_m), 0);
	uint64_t took = shut_down_spinner();
	check_sweep(took);
	/* the discarded fiber still holds it: released for the destroy */
	(void)weft_mutex_unlock(g_sweep_m);
	cr_assert_eq(weft_mutex_destroy(g_sweep_m), 0);
}

/* weft_yield is one of the blocking calls that say -ECANCELED in a
 * cancelled fiber (it still yields): in a discarded fiber's dtor too. It
 * said 0 there, so a dtor that yields until cancelled - the loop a
 * cancelled fiber's code may use - held shutdown for good (found by a
 * review; capped here). */
static atomic_int g_yield_dtor_rc = 12345, g_yield_dtor_n;
static void yield_dtor(void *v)
{
	int rc, n = 0;
	while ((rc = weft_yield()) == 0 && ++n < 100000)
		;
	atomic_store(&g_yield_dtor_n, n);
	atomic_store(&g_yield_dtor_rc, rc);
}
static const struct weft_local_key k_yield = { .dtor = yield_dtor };

static void *sets_and_spins(void *arg)
{
	if (weft_local_set(&k_yield, (void *)1))
		atomic_fetch_add(&g_bad, 1);
	atomic_store((atomic_int *)arg, 1);
	for (;;)
		(void)weft_yield(); /* never unwinds: discarded at the timeout */
	return NULL;
}

Test(local, a_discarded_fibers_dtor_sees_its_yield_cancelled, .timeout = WT_TMO(30))
{
	struct weft_runtime *b = NULL;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	cr_assert_eq(weft_runtime_create(&o, &b), 0);
	atomic_int started = 0;
	cr_assert_eq(weft_spawn(b, sets_and_spins, &started, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&started), 5000));
	int rc;
	while ((rc = weft_runtime_shutdown(b, 100 * 1000000ull)) == -ETIMEDOUT)
		;
	cr_assert_eq(rc, 0);
	cr_assert_eq(weft_runtime_destroy(b), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_yield_dtor_rc), -ECANCELED,
		     "the dtor's weft_yield returned %d after %d yields",
		     atomic_load(&g_yield_dtor_rc), atomic_load(&g_yield_dtor_n));
	cr_assert_eq(atomic_load(&g_yield_dtor_n), 0);
}

/* In a discarded fiber's dtor a join is refused with -ECANCELED, the
 * handle left valid, as on the cancelled fiber itself - also the join of
 * a task already finished, which weft_join took (0, handle consumed)
 * while weft_join_timeout refused it (found by a review). */
static struct weft_task *g_finished;
static atomic_int g_dj_join = 12345, g_dj_join_tmo = 12345;
static void join_dtor(void *v)
{
	atomic_store(&g_dj_join, weft_join(g_finished, NULL));
	atomic_store(&g_dj_join_tmo, weft_join_timeout(g_finished, NULL, 1000000));
}
static const struct weft_local_key k_join = { .dtor = join_dtor };

static void *sets_join_key_and_spins(void *arg)
{
	if (weft_local_set(&k_join, (void *)1))
		atomic_fetch_add(&g_bad, 1);
	atomic_store((atomic_int *)arg, 1);
	for (;;)
		(void)weft_yield(); /* never unwinds: discarded at the timeout */
	return NULL;
}

static void *returns_arg(void *arg) { return arg; }

Test(local, a_discarded_fibers_dtor_has_its_join_refused, .timeout = WT_TMO(30))
{
	struct weft_runtime *other = wt_rt_create(1), *b = NULL;
	cr_assert_eq(weft_spawn(other, returns_arg, (void *)7, &g_finished), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(g_finished), 5000));
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	cr_assert_eq(weft_runtime_create(&o, &b), 0);
	atomic_int started = 0;
	cr_assert_eq(weft_spawn(b, sets_join_key_and_spins, &started, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&started), 5000));
	int rc;
	while ((rc = weft_runtime_shutdown(b, 100 * 1000000ull)) == -ETIMEDOUT)
		;
	cr_assert_eq(rc, 0);
	cr_assert_eq(weft_runtime_destroy(b), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_dj_join), -ECANCELED, "weft_join in the dtor: %d",
		     atomic_load(&g_dj_join));
	cr_assert_eq(atomic_load(&g_dj_join_tmo), -ECANCELED, "weft_join_timeout in the dtor: %d",
		     atomic_load(&g_dj_join_tmo));
	void *r = NULL;
	cr_assert_eq(weft_join(g_finished, &r), 0, "the handle is still the test's");
	cr_assert_eq((long)r, 7);
	wt_rt_destroy(other);
}

static void *in_place_shutdown(void *arg)
{
	return (void *)(uintptr_t)shut_down_spinner();
}

static void *supervisor(void *arg)
{
	if (weft_local_set(&k_plain, (void *)"A"))
		atomic_fetch_add(&g_bad, 1);
	void *took = NULL;
	if (weft_block_in_place(in_place_shutdown, NULL, &took))
		atomic_fetch_add(&g_bad, 1);
	/* the other runtime's dtor touched nothing of ours */
	if (weft_local_get(&k_plain) != (void *)"A" || weft_local_get(&k_sweep2) != NULL)
		atomic_fetch_add(&g_bad, 1);
	return took;
}

Test(local, a_fiber_shutting_down_another_runtime_keeps_its_values, .timeout = WT_TMO(30))
{
	cr_assert_eq(weft_mutex_create(&g_sweep_m), 0);
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t;
	void *took = NULL;
	cr_assert_eq(weft_spawn(rt, supervisor, NULL, &t), 0);
	cr_assert_eq(weft_join(t, &took), 0);
	check_sweep((uint64_t)(uintptr_t)took);
	wt_rt_destroy(rt);
	(void)weft_mutex_unlock(g_sweep_m);
	cr_assert_eq(weft_mutex_destroy(g_sweep_m), 0);
}
