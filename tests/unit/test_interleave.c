/*
 * test_interleave.c - races forced into one interleaving.
 *
 * This executable defines pthread_mutex_unlock itself; libweft (the shared
 * library) resolves it here. A thread that sets `pause_on` stops right
 * after its next unlock of that mutex (PAUSE_ANY: of any mutex) returns,
 * until the test lets it go, so a test can hold a thread between two steps
 * of a library call (the idle lock's unlock in the notify that follows an
 * inject push, and what follows it) while other threads act. The inject
 * push itself takes no lock, and the short locks of slock.h are not
 * pthread mutexes: the first pthread mutex a foreign wake or spawn unlocks
 * is the idle lock, after its task is queued. A thread that sets `record_next` has its next
 * unlocked mutex stored in `recorded` (to learn a mutex's address from a
 * call whose first unlock it is). Every unlock forwards to the next
 * definition.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <dlfcn.h>
#include <weft/metrics.h>

/* default visibility: the project builds everything with -fvisibility=hidden */
#define INTERPOSE __attribute__((visibility("default")))

#define PAUSE_ANY ((pthread_mutex_t *)1)
static __thread pthread_mutex_t *pause_on;
static __thread bool record_next;
static pthread_mutex_t *_Atomic recorded;
static atomic_int paused, go, resumed;

INTERPOSE int pthread_mutex_unlock(pthread_mutex_t *m)
{
	static int (*_Atomic real)(pthread_mutex_t *);
	int (*fn)(pthread_mutex_t *) = atomic_load(&real);
	if (!fn) {
		fn = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_unlock");
		atomic_store(&real, fn);
	}
	int rc = fn(m);
	if (record_next) {
		record_next = false;
		atomic_store(&recorded, m);
	}
	if (pause_on && (pause_on == PAUSE_ANY || pause_on == m)) {
		pause_on = NULL;
		atomic_store(&paused, 1);
		/* bounded: a broken test must not hang the suite */
		uint64_t end = wt_now_ns() + 20ull * 1000000000ull;
		while (!atomic_load(&go) && wt_now_ns() < end)
			usleep(100);
		atomic_store(&resumed, 1);
	}
	return rc;
}

/* ------------------------------------------- foreign wake vs destroy */

static weft_waker saved_waker;
static atomic_int first_poll_done, wake_seen;

/* Pending until woken once: the first poll leaves its waker for the
 * foreign thread. */
static enum weft_poll wait_for_wake(void *s, struct weft_cx *cx)
{
	if (atomic_load(&wake_seen))
		return WEFT_READY;
	saved_waker = weft_waker_clone(weft_cx_waker(cx));
	atomic_store(&first_poll_done, 1);
	return WEFT_PENDING;
}

static void *foreign_waker(void *arg)
{
	weft_waker w = saved_waker;
	atomic_store(&wake_seen, 1);
	pause_on = PAUSE_ANY; /* the first unlock: the idle lock, after the push */
	weft_waker_wake(&w);
	pause_on = NULL;
	return NULL;
}

static void *release_later(void *arg)
{
	wt_sleep_ms(200);
	atomic_store(&go, 1);
	return NULL;
}

static uint64_t parks(struct weft_runtime *rt)
{
	struct weft_metrics *m = wt_metrics(rt);
	uint64_t n = m->worker[0].park_count;
	weft_metrics_free(m);
	return n;
}

/*
 * A foreign thread wakes a task by value and stops inside the notify that
 * follows the inject push: the parked worker is taken off the sleeper
 * list and counted as searching, but not yet woken (weft__idle_notify,
 * before weft__registry_unpark). A second worker, added with
 * weft_runtime_set_workers (a spawn's notify would see the searcher and
 * wake nobody), runs the task; it is joined, and destroy is called while
 * the waking thread is still inside the runtime: destroy must wait for it
 * to leave. Before the fix destroy
 * freed the runtime at once and the waker's idle notify read freed memory
 * (heap-use-after-free under ASan; here also: destroy returned before the
 * waker had even resumed).
 */
Test(interleave, foreign_wake_racing_destroy, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert(WT_WAIT_UNTIL(parks(rt) >= 1, WT_LONG_MS), "the worker never parked");
	uint64_t p0 = parks(rt);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, wait_for_wake, NULL, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&first_poll_done), WT_LONG_MS));
	/* parked again: the first poll is over and the task is idle */
	cr_assert(WT_WAIT_UNTIL(parks(rt) > p0, WT_LONG_MS), "the worker did not park again");

	pthread_t f, r;
	cr_assert_eq(pthread_create(&f, NULL, foreign_waker, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&paused), WT_LONG_MS),
		  "the waking thread never stopped after the inject push");
	/* The waker has not woken the worker: a new one runs the task. */
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	cr_assert_eq(weft_join_timeout(t, NULL, 5000000000ull * WEFT_TEST_SLOW), 0);
	cr_assert_eq(atomic_load(&resumed), 0);

	cr_assert_eq(pthread_create(&r, NULL, release_later, NULL), 0);
	int rc = weft_runtime_destroy(rt);
	int resumed_at_return = atomic_load(&resumed);
	pthread_join(r, NULL);
	pthread_join(f, NULL);
	cr_assert_eq(rc, 0, "destroy = %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(resumed_at_return, 1,
		     "destroy freed the runtime while a foreign wake was still inside it");
}

/* ------------------------------------------ foreign spawn vs destroy */

static atomic_int spawned_ran, spawn_rc;

static enum weft_poll note_run(void *s, struct weft_cx *cx)
{
	atomic_store(&spawned_ran, 1);
	return WEFT_READY;
}

static void *foreign_spawner(void *arg)
{
	pause_on = atomic_load(&recorded); /* the idle lock */
	atomic_store(&spawn_rc, weft_spawn_poll(arg, note_run, NULL, NULL, NULL));
	pause_on = NULL;
	return NULL;
}

/*
 * The same window for a detached spawn from a thread outside the runtime:
 * the task runs (its effect is all the caller can wait for) on a worker
 * added meanwhile, while the spawning thread is still inside its notify.
 * Destroy must wait for it too.
 */
Test(interleave, foreign_spawn_racing_destroy, .timeout = WT_TMO(60))
{
	atomic_store(&paused, 0);
	atomic_store(&go, 0);
	atomic_store(&resumed, 0);
	atomic_store(&first_poll_done, 0);
	atomic_store(&wake_seen, 0);
	struct weft_runtime *rt = wt_rt_create(1);

	/* Learn the idle lock's address from a foreign wake, whose first
	 * pthread mutex unlock it is (in the notify after the push). */
	cr_assert(WT_WAIT_UNTIL(parks(rt) >= 1, WT_LONG_MS), "the worker never parked");
	uint64_t p0 = parks(rt);
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, wait_for_wake, NULL, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&first_poll_done), WT_LONG_MS));
	cr_assert(WT_WAIT_UNTIL(parks(rt) > p0, WT_LONG_MS), "the worker did not park again");
	weft_waker w = saved_waker;
	atomic_store(&wake_seen, 1);
	atomic_store(&recorded, NULL);
	uint64_t p1 = parks(rt);
	record_next = true;
	weft_waker_wake(&w);
	record_next = false;
	cr_assert_not_null(atomic_load(&recorded));
	cr_assert_eq(weft_join_timeout(t, NULL, 5000000000ull * WEFT_TEST_SLOW), 0);
	/* The spawner stops in the notify only if it has a sleeper to take
	 * off the list: let the worker park again first (the count moves as
	 * it starts to park; a moment more and it is listed). A CI run failed
	 * here with the worker still awake. */
	cr_assert(WT_WAIT_UNTIL(parks(rt) > p1, WT_LONG_MS), "the worker did not park again");
	wt_sleep_ms(20);

	pthread_t f, r;
	cr_assert_eq(pthread_create(&f, NULL, foreign_spawner, rt), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&paused), WT_LONG_MS),
		  "the spawning thread never stopped after the inject push");
	cr_assert_eq(weft_runtime_set_workers(rt, 2), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&spawned_ran), WT_LONG_MS),
		  "the task spawned from the stopped thread never ran");
	cr_assert_eq(atomic_load(&resumed), 0);

	cr_assert_eq(pthread_create(&r, NULL, release_later, NULL), 0);
	int rc = weft_runtime_destroy(rt);
	int resumed_at_return = atomic_load(&resumed);
	pthread_join(r, NULL);
	pthread_join(f, NULL);
	cr_assert_eq(rc, 0, "destroy = %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(atomic_load(&spawn_rc), 0);
	cr_assert_eq(resumed_at_return, 1,
		     "destroy freed the runtime while a foreign spawn was still inside it");
}
