/*
 * test_batch_gap.c - what others do while a primitive wakes its waiters in
 * batches with its lock dropped between them. Linked with
 * -Wl,--wrap=weft__wakes_run: the wrapper, once armed, sleeps inside the
 * first full batch (WEFT__WAKES_MAX wakers), which holds that window open
 * for 400 ms (found by a review with the same wrapper):
 *  - a second barrier round that fills and closes meanwhile;
 *  - a barrier waiter whose round was released but sits in a later batch,
 *    and whose time runs out meanwhile;
 *  - a semaphore release while its close wakes the waiters;
 *  - a poll-form barrier waiter polled again in the gap;
 *  - a wait group waiter released by a done() but in a later batch, whose
 *    time runs out meanwhile; the same for a notify_all, a cond
 *    broadcast and a semaphore's close, and a reader a write unlock
 *    released; a watch receiver a send (or the close) woke, and a
 *    broadcast receiver likewise; a channel's receiver or sender its
 *    close woke;
 *  - a join set's joiner the set's emptying released, whose time runs
 *    out meanwhile; a semaphore waiter a release gave its permits to.
 */
#include <pthread.h>

#include "../common/wt.h"
#include "waitlist.h"

#define MS 1000000ull

void __real_weft__wakes_run(struct weft__wakes *wk);
void __wrap_weft__wakes_run(struct weft__wakes *wk);
static atomic_int slow_armed, slow_fired, slow_over;
static _Atomic uint64_t slow_at; /* when the held batch began */

void __wrap_weft__wakes_run(struct weft__wakes *wk)
{
	int one = 1;
	if (wk->n == WEFT__WAKES_MAX && atomic_compare_exchange_strong(&slow_armed, &one, 0)) {
		atomic_store(&slow_at, wt_now_ns());
		atomic_store(&slow_fired, 1);
		wt_sleep_ms(400 * WEFT_TEST_SLOW);
		atomic_store(&slow_over, 1);
	}
	__real_weft__wakes_run(wk);
}

/* time for threads just started to link their entries */
static void settle(void) { wt_sleep_ms(200 * WEFT_TEST_SLOW); }

/*
 * A case with a late waiter proves something only if its event (the
 * done(), the send, the close...) came while the late waiter waited, and
 * before its limit, which ran out in the gap then. On a loaded machine the
 * settle before the event may overrun that limit: such a round proved
 * nothing, and the test passed with a warning. A round now returns
 * whether it lined up (its checks made); another runs until one does, and
 * the test fails if none of GAP_ROUNDS does (a round takes about a
 * second; one that does not line up is rare).
 */
enum { GAP_ROUNDS = 6 };

/* The late waiters' limit. */
#define LATE_LIMIT (400 * MS * WEFT_TEST_SLOW)

/* The event at `t` came while the late waiter, whose limit ends at
 * `deadline`, was waiting: after it began (it links just after it reads
 * the clock; one that began after the event proves nothing either), and
 * before its limit. A deadline still 0 or left from an earlier round is
 * older than the event. */
static bool lined_up_with(uint64_t t, uint64_t deadline)
{
	return deadline >= LATE_LIMIT && deadline - LATE_LIMIT <= t && t < deadline;
}

#define PROVE_IN_ROUNDS(round, what)                                            \
	do {                                                                    \
		int n_ = 1;                                                     \
		while (!(round)) {                                              \
			cr_assert_lt(n_, GAP_ROUNDS, "%s never came while the " \
				     "late waiter waited, in %d rounds: nothing " \
				     "proven", what, n_);                       \
			cr_log_info("%s did not come while the late waiter "    \
				    "waited in round %d: another round", what, n_); \
			n_++;                                                   \
		}                                                               \
	} while (0)

static struct weft_barrier *bar;
static atomic_int bar_ok, bar_bad;

static void *bar_party(void *arg)
{
	(void)arg;
	int rc = weft_barrier_wait_timeout(bar, 10000 * MS, NULL);
	atomic_fetch_add(rc ? &bar_bad : &bar_ok, 1);
	return NULL;
}

Test(batch_gap, a_barrier_round_closed_while_the_last_one_is_released, .timeout = WT_TMO(30))
{
	enum { N = WEFT__WAKES_MAX + 2 }; /* 17 linked: two batches */
	cr_assert_eq(weft_barrier_create(N, &bar), 0);
	pthread_t th[2 * N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, bar_party, NULL), 0);
	settle();
	atomic_store(&slow_armed, 1);
	cr_assert_eq(pthread_create(&th[N - 1], NULL, bar_party, NULL), 0); /* releases round 0 */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&slow_fired), WT_LONG_MS));
	/* round 1 fills and closes while round 0's release sleeps */
	for (int i = N; i < 2 * N; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, bar_party, NULL), 0);
	for (int i = 0; i < 2 * N; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&bar_bad), 0, "%d parties timed out (round 1 never woken)",
		     atomic_load(&bar_bad));
	cr_assert_eq(atomic_load(&bar_ok), 2 * N);
	cr_assert_eq(weft_barrier_destroy(bar), 0);
}

static atomic_int late_rc = 1;

static void *bar_forever(void *arg)
{
	(void)arg;
	weft_barrier_wait(bar, NULL);
	return NULL;
}

/* Its time runs out in the middle of the gap: the test arrives a settle()
 * (200 ms) after starting it, and the gap lasts 400 ms from then. With 200
 * ms here (the end of the settle) it could run out before the test's
 * arrival when the machine was busy, take its arrival back, and leave the
 * barrier one short for good (a chaos-build CI run: every party waiting,
 * 30 s timeout). */
static void *bar_late(void *arg)
{
	(void)arg;
	atomic_store(&late_rc, weft_barrier_wait_timeout(bar, 400 * MS * WEFT_TEST_SLOW, NULL));
	return NULL;
}

Test(batch_gap, a_released_barrier_waiter_whose_time_runs_out_passed, .timeout = WT_TMO(30))
{
	enum { N = WEFT__WAKES_MAX + 2 };
	atomic_store(&slow_fired, 0);
	cr_assert_eq(weft_barrier_create(N, &bar), 0);
	pthread_t th[N - 1];
	for (int i = 0; i < N - 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, bar_forever, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 2], NULL, bar_late, NULL), 0); /* in the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	bool leader = false;
	cr_assert_eq(weft_barrier_wait(bar, &leader), 0);
	cr_assert(leader);
	for (int i = 0; i < N - 1; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&late_rc), 0, "released, yet it said %d", atomic_load(&late_rc));
	cr_assert_eq(weft_barrier_destroy(bar), 0);
}

/* A poll task waits on the barrier and polls again and again (it wakes
 * itself): released while the release's first batch is held, it must
 * learn so before the later batch that completes its entry (a poll task
 * that polls once more before giving up relies on it). The 16 parties of
 * the first batch are poll tasks too, linked before it (threads could link
 * after it under load, which put it in the first batch: a CI run). */
static atomic_int poll_rc = 1, poll_early, poll_linked, first_linked;
static struct weft_wait poll_w = WEFT_WAIT_INIT;

static enum weft_poll bar_poller(void *state, struct weft_cx *cx)
{
	(void)state;
	int rc = weft_barrier_wait_poll(bar, &poll_w, cx, NULL);
	if (rc == WEFT_PENDING) {
		atomic_store(&poll_linked, 1);
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	/* its entry can only be completed by the batch after the gap */
	atomic_store(&poll_early, !atomic_load(&slow_over));
	atomic_store(&poll_rc, rc);
	return WEFT_READY;
}

struct first_party { struct weft_wait w; bool counted; };

static enum weft_poll bar_first(void *state, struct weft_cx *cx)
{
	struct first_party *f = state;
	int rc = weft_barrier_wait_poll(bar, &f->w, cx, NULL);
	if (rc != WEFT_PENDING)
		return WEFT_READY;
	if (!f->counted) {
		f->counted = true;
		atomic_fetch_add(&first_linked, 1);
	}
	return WEFT_PENDING;
}

Test(batch_gap, a_poll_form_barrier_waiter_learns_its_release_in_the_gap, .timeout = WT_TMO(30))
{
	enum { N = WEFT__WAKES_MAX + 2 };
	atomic_store(&slow_fired, 0);
	atomic_store(&slow_over, 0);
	cr_assert_eq(weft_barrier_create(N, &bar), 0);
	struct weft_runtime *rt_first = wt_rt_create(2), *rt = wt_rt_create(1);
	static struct first_party fp[N - 2];
	struct weft_task *ft[N - 2], *t;
	for (int i = 0; i < N - 2; i++) {
		fp[i] = (struct first_party){ .w = WEFT_WAIT_INIT };
		cr_assert_eq(weft_spawn_poll(rt_first, bar_first, &fp[i], NULL, &ft[i]), 0);
	}
	cr_assert(WT_WAIT_UNTIL(atomic_load(&first_linked) == N - 2, WT_LONG_MS));
	cr_assert_eq(weft_spawn_poll(rt, bar_poller, NULL, NULL, &t), 0); /* the second batch */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&poll_linked), WT_LONG_MS));
	atomic_store(&slow_armed, 1);
	cr_assert_eq(weft_barrier_wait(bar, NULL), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	for (int i = 0; i < N - 2; i++)
		cr_assert_eq(weft_join(ft[i], NULL), 0);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&poll_rc), 0);
	cr_assert(atomic_load(&poll_early),
		  "the poll task learned its release only when its batch reached it");
	wt_rt_destroy(rt);
	wt_rt_destroy(rt_first);
	cr_assert_eq(weft_barrier_destroy(bar), 0);
}

static struct weft_sem *sem;
static atomic_int sem_ok, sem_pipe;

static void *sem_waiter(void *arg)
{
	(void)arg;
	int rc = weft_sem_acquire_n(sem, 1);
	atomic_fetch_add(rc == 0 ? &sem_ok : &sem_pipe, 1);
	return NULL;
}

static void *sem_release_in_gap(void *arg)
{
	(void)arg;
	while (!atomic_load(&slow_fired))
		usleep(1000);
	weft_sem_release_n(sem, 5);
	return NULL;
}

Test(batch_gap, a_semaphore_release_while_its_close_wakes_the_waiters, .timeout = WT_TMO(30))
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	cr_assert_eq(weft_sem_create(0, &sem), 0);
	pthread_t th[N], rel;
	for (int i = 0; i < N; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, sem_waiter, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&rel, NULL, sem_release_in_gap, NULL), 0);
	atomic_store(&slow_armed, 1);
	cr_assert_eq(weft_sem_close(sem), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_join(rel, NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&sem_ok), 0, "%d waiters got permits after the close",
		     atomic_load(&sem_ok));
	cr_assert_eq(atomic_load(&sem_pipe), N);
	cr_assert_eq(weft_sem_available(sem), 5, "the release still counted");
	cr_assert_eq(weft_sem_destroy(sem), 0);
}

/* The wait group's counter reaches zero with 17 waiters linked; the last,
 * in the second batch, has a time limit that runs out in the gap. It was
 * released before its time ran out (sync.h): 0, not -ETIMEDOUT (found by
 * a review; the barrier had the same fixed). If a busy machine delays the
 * done() past its limit, the round proves nothing: another one runs. */
static struct weft_waitgroup *wg;
static atomic_int wg_late_rc = 1;
static _Atomic uint64_t wg_late_deadline;

static void *wg_forever(void *arg)
{
	(void)arg;
	weft_waitgroup_wait(wg);
	return NULL;
}

static void *wg_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	atomic_store(&wg_late_deadline, wt_now_ns() + limit);
	atomic_store(&wg_late_rc, weft_waitgroup_wait_timeout(wg, limit));
	return NULL;
}

static bool waitgroup_gap(void)
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&wg_late_rc, 1);
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	cr_assert_eq(weft_waitgroup_add(wg, 1), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, wg_forever, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 1], NULL, wg_late, NULL), 0); /* the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_done = wt_now_ns();
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	bool lined_up = lined_up_with(t_done, atomic_load(&wg_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&wg_late_rc), 0, "released, yet it said %d",
			     atomic_load(&wg_late_rc));
	cr_assert_eq(weft_waitgroup_destroy(wg), 0);
	return lined_up;
}

Test(batch_gap, a_released_waitgroup_waiter_whose_time_runs_out_passed, .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(waitgroup_gap(), "the done()");
}

/* The same for a notify_all: the waiter was linked before it, so it was
 * notified before its time ran out. */
static struct weft_notify *nf;
static atomic_int nf_late_rc = 1;
static _Atomic uint64_t nf_late_deadline;

static void *nf_forever(void *arg)
{
	(void)arg;
	weft_notify_wait(nf);
	return NULL;
}

static void *nf_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	atomic_store(&nf_late_deadline, wt_now_ns() + limit);
	atomic_store(&nf_late_rc, weft_notify_wait_timeout(nf, limit));
	return NULL;
}

static bool notify_all_gap(void)
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&nf_late_rc, 1);
	cr_assert_eq(weft_notify_create(&nf), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, nf_forever, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 1], NULL, nf_late, NULL), 0); /* the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_all = wt_now_ns();
	cr_assert_eq(weft_notify_all(nf), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	bool lined_up = lined_up_with(t_all, atomic_load(&nf_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&nf_late_rc), 0, "notified, yet it said %d",
			     atomic_load(&nf_late_rc));
	cr_assert_eq(weft_notify_destroy(nf), 0);
	return lined_up;
}

Test(batch_gap, a_waiter_notified_by_notify_all_whose_time_runs_out_passed, .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(notify_all_gap(), "the notify_all");
}

/* The same for a condition variable's broadcast: the late waiter was
 * woken before its time ran out, takes the mutex back and says 0. */
static struct weft_cond *cv;
static struct weft_mutex *cvm;
static atomic_int cv_late_rc = 1, cv_bad;
static _Atomic uint64_t cv_late_deadline;

static void *cv_forever(void *arg)
{
	(void)arg;
	weft_mutex_lock(cvm);
	if (weft_cond_wait(cv, cvm))
		atomic_fetch_add(&cv_bad, 1);
	weft_mutex_unlock(cvm);
	return NULL;
}

static void *cv_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	weft_mutex_lock(cvm);
	atomic_store(&cv_late_deadline, wt_now_ns() + limit);
	atomic_store(&cv_late_rc, weft_cond_wait_timeout(cv, cvm, limit));
	weft_mutex_unlock(cvm); /* held again, whatever it said */
	return NULL;
}

static bool cond_broadcast_gap(void)
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&cv_late_rc, 1);
	atomic_store(&cv_bad, 0);
	cr_assert_eq(weft_cond_create(&cv), 0);
	cr_assert_eq(weft_mutex_create(&cvm), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, cv_forever, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 1], NULL, cv_late, NULL), 0); /* the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_all = wt_now_ns();
	cr_assert_eq(weft_cond_broadcast(cv), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&cv_bad), 0);
	bool lined_up = lined_up_with(t_all, atomic_load(&cv_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&cv_late_rc), 0, "woken, yet it said %d",
			     atomic_load(&cv_late_rc));
	cr_assert_eq(weft_cond_destroy(cv), 0);
	cr_assert_eq(weft_mutex_destroy(cvm), 0);
	return lined_up;
}

Test(batch_gap, a_waiter_woken_by_a_broadcast_whose_time_runs_out_passed, .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(cond_broadcast_gap(), "the broadcast");
}

/* The same for a semaphore's close: the late waiter's semaphore was
 * closed before its time ran out, so it says -EPIPE as every waiter. */
static atomic_int sm_late_rc = 1;
static _Atomic uint64_t sm_late_deadline;

static void *sm_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	atomic_store(&sm_late_deadline, wt_now_ns() + limit);
	atomic_store(&sm_late_rc, weft_sem_acquire_n_timeout(sem, 1, limit));
	return NULL;
}

static bool sem_close_gap(void)
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&sm_late_rc, 1);
	atomic_store(&sem_ok, 0);
	atomic_store(&sem_pipe, 0);
	cr_assert_eq(weft_sem_create(0, &sem), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, sem_waiter, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 1], NULL, sm_late, NULL), 0); /* the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_close = wt_now_ns();
	cr_assert_eq(weft_sem_close(sem), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&sem_pipe), N - 1);
	bool lined_up = lined_up_with(t_close, atomic_load(&sm_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&sm_late_rc), -EPIPE, "closed, yet it said %d",
			     atomic_load(&sm_late_rc));
	cr_assert_eq(weft_sem_destroy(sem), 0);
	return lined_up;
}

Test(batch_gap, a_semaphore_waiter_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(sem_close_gap(), "the close");
}

/* The same for a rwlock: the writer's unlock gave the read lock to every
 * reader linked, the late one in the second batch; its time ran out while
 * the first batch was held. It holds the lock and says 0; before, it said
 * -ETIMEDOUT and its cancel passed the lock on (found by a review). */
static struct weft_rwlock *rwl;
static atomic_int rw_ok, rw_late_rc = 1;
static _Atomic uint64_t rw_late_deadline;

static void *rw_reader(void *arg)
{
	(void)arg;
	if (weft_rwlock_read(rwl) == 0) {
		atomic_fetch_add(&rw_ok, 1);
		weft_rwlock_read_unlock(rwl);
	}
	return NULL;
}

static void *rw_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	atomic_store(&rw_late_deadline, wt_now_ns() + limit);
	int rc = weft_rwlock_read_timeout(rwl, limit);
	atomic_store(&rw_late_rc, rc);
	if (rc == 0)
		cr_assert_eq(weft_rwlock_read_unlock(rwl), 0);
	return NULL;
}

static bool rwlock_gap(void)
{
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&rw_late_rc, 1);
	atomic_store(&rw_ok, 0);
	cr_assert_eq(weft_rwlock_create(&rwl), 0);
	cr_assert_eq(weft_rwlock_try_write(rwl), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, rw_reader, NULL), 0);
	settle();
	cr_assert_eq(pthread_create(&th[N - 1], NULL, rw_late, NULL), 0); /* the second batch */
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_unlock = wt_now_ns();
	cr_assert_eq(weft_rwlock_write_unlock(rwl), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&rw_ok), N - 1);
	bool lined_up = lined_up_with(t_unlock, atomic_load(&rw_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&rw_late_rc), 0, "released, yet it said %d",
			     atomic_load(&rw_late_rc));
	cr_assert_eq(weft_rwlock_read_unlock(rwl), -EPERM, "no hold left over");
	cr_assert_eq(weft_rwlock_destroy(rwl), 0);
	return lined_up;
}

Test(batch_gap, a_released_rwlock_reader_whose_time_runs_out_holds_the_lock,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(rwlock_gap(), "the unlock");
}

/* The same for a watch: a receiver whose newer value was sent before its
 * time ran out, but whose wake sits in the send's second batch, says 0
 * and sees the value, as weft_watch_has_changed said all along; after a
 * close, 0 for the value unseen, then -EPIPE. */
static struct weft_watch *wch;
static atomic_int wch_bad;
static _Atomic int wch_late_rc = 1;
static _Atomic uint64_t wch_late_deadline;

static void *wch_forever(void *arg)
{
	(void)arg;
	struct weft_watch_rx *rx;
	if (weft_watch_subscribe(wch, &rx)) {
		atomic_fetch_add(&wch_bad, 1);
		return NULL;
	}
	if (weft_watch_changed(rx))
		atomic_fetch_add(&wch_bad, 1);
	weft_watch_rx_drop(rx);
	return NULL;
}

static void *wch_late(void *arg)
{
	(void)arg;
	uint64_t limit = LATE_LIMIT;
	struct weft_watch_rx *rx;
	if (weft_watch_subscribe(wch, &rx)) {
		atomic_fetch_add(&wch_bad, 1);
		return NULL;
	}
	atomic_store(&wch_late_deadline, wt_now_ns() + limit);
	int rc = weft_watch_changed_timeout(rx, limit);
	atomic_store(&wch_late_rc, rc);
	if (rc == 0 && weft_watch_has_changed(rx) != 0)
		atomic_fetch_add(&wch_bad, 1); /* 0 marks the value seen */
	weft_watch_rx_drop(rx);
	return NULL;
}

static bool watch_gap(bool by_close, bool fiber)
{
	struct weft_runtime *rt = fiber ? wt_rt_create(1) : NULL;
	struct weft_task *late = NULL;
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&wch_late_rc, 1);
	atomic_store(&wch_bad, 0);
	char init[24] = "zero";
	cr_assert_eq(weft_watch_create(sizeof init, init, &wch), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, wch_forever, NULL), 0);
	settle();
	/* the second batch: a thread's wait looks once more at its
	 * deadline, a fiber's is woken by its timer */
	if (fiber)
		cr_assert_eq(weft_spawn(rt, wch_late, NULL, &late), 0);
	else
		cr_assert_eq(pthread_create(&th[N - 1], NULL, wch_late, NULL), 0);
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_send = wt_now_ns();
	char one[24] = "one";
	cr_assert_eq(by_close ? weft_watch_close(wch) : weft_watch_send(wch, one), 0);
	for (int i = 0; i < N - 1; i++)
		pthread_join(th[i], NULL);
	if (fiber)
		cr_assert_eq(weft_join(late, NULL), 0);
	else
		pthread_join(th[N - 1], NULL);
	cr_assert(atomic_load(&slow_fired));
	bool lined_up = lined_up_with(t_send, atomic_load(&wch_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&wch_late_rc), by_close ? -EPIPE : 0,
			     "sent before its limit, yet it said %d", atomic_load(&wch_late_rc));
	if (!by_close)
		cr_assert_eq(atomic_load(&wch_bad), 0);
	cr_assert_eq(weft_watch_destroy(wch), 0);
	if (rt)
		wt_rt_destroy(rt);
	return lined_up;
}

Test(batch_gap, a_watch_receiver_whose_time_runs_out_in_the_send_sees_the_value,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(watch_gap(false, false), "the send");
}

Test(batch_gap, a_watch_fiber_whose_time_runs_out_in_the_send_sees_the_value,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(watch_gap(false, true), "the send");
}

Test(batch_gap, a_watch_receiver_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(watch_gap(true, false), "the close");
}

/* The same for a broadcast channel: a receiver whose item was sent before
 * its time ran out, but whose wake sits in the send's second batch, takes
 * the item, as weft_broadcast_try_recv said it could all along; after a
 * close with nothing left for it, -EPIPE. It said -ETIMEDOUT. */
static struct weft_broadcast *bch;
static atomic_int bch_bad;
static _Atomic int bch_late_rc = 1;
static _Atomic uint64_t bch_late_deadline;
static char bch_late_item[24];

static void *bch_forever(void *arg)
{
	struct weft_broadcast_rx *rx = arg;
	char item[24];
	if (weft_broadcast_recv(rx, item, NULL))
		atomic_fetch_add(&bch_bad, 1);
	weft_broadcast_rx_drop(rx);
	return NULL;
}

static void *bch_late(void *arg)
{
	struct weft_broadcast_rx *rx = arg;
	uint64_t limit = LATE_LIMIT;
	atomic_store(&bch_late_deadline, wt_now_ns() + limit);
	int rc = weft_broadcast_recv_timeout(rx, bch_late_item, NULL, limit);
	atomic_store(&bch_late_rc, rc);
	char again[24];
	if (rc == 0 && weft_broadcast_try_recv(rx, again, NULL) != -EAGAIN)
		atomic_fetch_add(&bch_bad, 1); /* 0 took the item */
	weft_broadcast_rx_drop(rx);
	return NULL;
}

static bool broadcast_gap(bool by_close, bool fiber)
{
	struct weft_runtime *rt = fiber ? wt_rt_create(1) : NULL;
	struct weft_task *late = NULL;
	enum { N = WEFT__WAKES_MAX + 1 };
	atomic_store(&slow_fired, 0);
	atomic_store(&bch_late_rc, 1);
	atomic_store(&bch_bad, 0);
	memset(bch_late_item, 0, sizeof bch_late_item);
	cr_assert_eq(weft_broadcast_create(24, 4, &bch), 0);
	struct weft_broadcast_rx *rx[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_broadcast_subscribe(bch, &rx[i]), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, bch_forever, rx[i]), 0);
	settle();
	/* the second batch: a thread's wait looks once more at its
	 * deadline, a fiber's is woken by its timer */
	if (fiber)
		cr_assert_eq(weft_spawn(rt, bch_late, rx[N - 1], &late), 0);
	else
		cr_assert_eq(pthread_create(&th[N - 1], NULL, bch_late, rx[N - 1]), 0);
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_send = wt_now_ns();
	char one[24] = "one";
	cr_assert_eq(by_close ? weft_broadcast_close(bch) : weft_broadcast_send(bch, one), 0);
	for (int i = 0; i < N - 1; i++)
		pthread_join(th[i], NULL);
	if (fiber)
		cr_assert_eq(weft_join(late, NULL), 0);
	else
		pthread_join(th[N - 1], NULL);
	cr_assert(atomic_load(&slow_fired));
	bool lined_up = lined_up_with(t_send, atomic_load(&bch_late_deadline));
	if (lined_up) {
		cr_assert_eq(atomic_load(&bch_late_rc), by_close ? -EPIPE : 0,
			     "sent before its limit, yet it said %d", atomic_load(&bch_late_rc));
		if (!by_close)
			cr_assert_str_eq(bch_late_item, "one");
	}
	if (!by_close)
		cr_assert_eq(atomic_load(&bch_bad), 0);
	cr_assert_eq(weft_broadcast_destroy(bch), 0);
	if (rt)
		wt_rt_destroy(rt);
	return lined_up;
}

Test(batch_gap, a_broadcast_receiver_whose_time_runs_out_in_the_send_takes_the_item,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(broadcast_gap(false, false), "the send");
}

Test(batch_gap, a_broadcast_fiber_whose_time_runs_out_in_the_send_takes_the_item,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(broadcast_gap(false, true), "the send");
}

Test(batch_gap, a_broadcast_receiver_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(broadcast_gap(true, false), "the close");
}

/* The same for a channel's close: a receiver of an empty channel (or a
 * sender to a full one) whose time runs out while the close wakes the
 * others in batches is told the channel is closed (-EPIPE), as it would
 * be after the close's wake reached it. */
static struct weft_chan *cch;
static atomic_int cch_bad;
static _Atomic int cch_late_rc = 1;
static _Atomic uint64_t cch_late_deadline;

static void *cch_forever(void *arg)
{
	uint64_t v = 1;
	int rc = arg ? weft_chan_send(cch, &v) : weft_chan_recv(cch, &v);
	if (rc != -EPIPE)
		atomic_fetch_add(&cch_bad, 1);
	return NULL;
}

static void *cch_late(void *arg)
{
	uint64_t limit = LATE_LIMIT, v = 1;
	atomic_store(&cch_late_deadline, wt_now_ns() + limit);
	int rc;
	if (arg == (void *)2) { /* a select's receive arm */
		struct weft_select_arm arm[] = { WEFT_SEL_RECV(cch, &v) };
		rc = weft_select_timeout(arm, 1, limit);
		if (rc == 0)
			rc = arm[0].rc;
		else if (rc > 0)
			rc = 1;
	} else {
		rc = arg ? weft_chan_send_timeout(cch, &v, limit) : weft_chan_recv_timeout(cch, &v, limit);
	}
	atomic_store(&cch_late_rc, rc);
	return NULL;
}

static bool chan_close_gap(bool senders, bool fiber, bool select)
{
	struct weft_runtime *rt = fiber ? wt_rt_create(1) : NULL;
	struct weft_task *late = NULL;
	enum { N = WEFT__WAKES_MAX + 1 };
	void *role = senders ? (void *)1 : NULL;
	atomic_store(&slow_fired, 0);
	atomic_store(&cch_late_rc, 1);
	atomic_store(&cch_bad, 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &cch), 0);
	uint64_t v = 0;
	if (senders)
		cr_assert_eq(weft_chan_send(cch, &v), 0); /* full */
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, cch_forever, role), 0);
	settle();
	void *late_role = select ? (void *)2 : role;
	if (fiber)
		cr_assert_eq(weft_spawn(rt, cch_late, late_role, &late), 0);
	else
		cr_assert_eq(pthread_create(&th[N - 1], NULL, cch_late, late_role), 0);
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_close = wt_now_ns();
	cr_assert_eq(weft_chan_close(cch), 0);
	for (int i = 0; i < N - 1; i++)
		pthread_join(th[i], NULL);
	if (fiber)
		cr_assert_eq(weft_join(late, NULL), 0);
	else
		pthread_join(th[N - 1], NULL);
	cr_assert(atomic_load(&slow_fired));
	bool lined_up = lined_up_with(t_close, atomic_load(&cch_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&cch_late_rc), -EPIPE,
			     "closed before its limit, yet it said %d", atomic_load(&cch_late_rc));
	cr_assert_eq(atomic_load(&cch_bad), 0);
	cr_assert_eq(weft_chan_destroy(cch), 0);
	if (rt)
		wt_rt_destroy(rt);
	return lined_up;
}

Test(batch_gap, a_channel_receiver_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(chan_close_gap(false, false, false), "the close");
}

Test(batch_gap, a_channel_fiber_receiver_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(chan_close_gap(false, true, false), "the close");
}

Test(batch_gap, a_channel_sender_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(chan_close_gap(true, false, false), "the close");
}

/* the same for a select's receive arm (its poll in the gap: pending) */
Test(batch_gap, a_channel_select_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(chan_close_gap(false, false, true), "the close");
}

Test(batch_gap, a_channel_fiber_select_whose_time_runs_out_in_the_close_is_told_closed,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(chan_close_gap(false, true, true), "the close");
}

/* The same for a join set: its last member is taken while 18 joiners
 * wait; the 17 left are woken in batches to look again (-ENOENT), the
 * last of them in the second batch, its time running out in the gap. The
 * set was empty before its limit: -ENOENT, not -ETIMEDOUT, as its look a
 * batch later would have said. The set empties when the first batch is
 * held (slow_at), some time after the member's release. */
static struct weft_joinset *jset;
static struct weft_sem *jsem;
static atomic_int js_ok, js_noent, js_bad;
static _Atomic int js_late_rc = 1;
static _Atomic uint64_t js_late_deadline;

static void *js_member(void *arg)
{
	(void)arg;
	weft_sem_acquire_n(jsem, 1);
	return (void *)7;
}

static void *js_forever(void *arg)
{
	(void)arg;
	void *r = NULL;
	int rc = weft_joinset_join_next(jset, &r, NULL);
	if (rc == 0 && r == (void *)7)
		atomic_fetch_add(&js_ok, 1);
	else if (rc == -ENOENT)
		atomic_fetch_add(&js_noent, 1);
	else
		atomic_fetch_add(&js_bad, 1);
	return NULL;
}

static void *js_late(void *arg)
{
	uint64_t limit = LATE_LIMIT;
	void *r = NULL;
	atomic_store(&js_late_deadline, wt_now_ns() + limit);
	int rc;
	if (arg) { /* a select's join set arm */
		struct weft_select_arm arm[] = { WEFT_SEL_JOIN_NEXT(jset, &r) };
		rc = weft_select_timeout(arm, 1, limit);
		if (rc == 0)
			rc = arm[0].rc;
		else if (rc > 0)
			rc = 1;
	} else {
		rc = weft_joinset_join_next_timeout(jset, &r, NULL, limit);
	}
	atomic_store(&js_late_rc, rc);
	return NULL;
}

static bool joinset_gap(bool fiber, bool select)
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *late = NULL;
	enum { N = WEFT__WAKES_MAX + 2 }; /* one takes the member, 16 + 1 look again */
	atomic_store(&slow_fired, 0);
	atomic_store(&js_late_rc, 1);
	atomic_store(&js_ok, 0);
	atomic_store(&js_noent, 0);
	atomic_store(&js_bad, 0);
	cr_assert_eq(weft_sem_create(0, &jsem), 0);
	cr_assert_eq(weft_joinset_create(&jset), 0);
	cr_assert_eq(weft_joinset_spawn(jset, rt, js_member, NULL, NULL), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, js_forever, NULL), 0);
	settle();
	void *role = select ? (void *)1 : NULL;
	if (fiber)
		cr_assert_eq(weft_spawn(rt, js_late, role, &late), 0);
	else
		cr_assert_eq(pthread_create(&th[N - 1], NULL, js_late, role), 0);
	settle();
	atomic_store(&slow_armed, 1);
	cr_assert_eq(weft_sem_release_n(jsem, 1), 0); /* the member ends */
	for (int i = 0; i < N - 1; i++)
		pthread_join(th[i], NULL);
	if (fiber)
		cr_assert_eq(weft_join(late, NULL), 0);
	else
		pthread_join(th[N - 1], NULL);
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&js_bad), 0);
	cr_assert_eq(atomic_load(&js_ok), 1);
	cr_assert_eq(atomic_load(&js_noent), N - 2);
	bool lined_up = lined_up_with(atomic_load(&slow_at), atomic_load(&js_late_deadline));
	if (lined_up)
		cr_assert_eq(atomic_load(&js_late_rc), -ENOENT,
			     "the set emptied before its limit, yet it said %d",
			     atomic_load(&js_late_rc));
	cr_assert_eq(weft_joinset_destroy(jset), 0);
	cr_assert_eq(weft_sem_destroy(jsem), 0);
	wt_rt_destroy(rt);
	return lined_up;
}

Test(batch_gap, a_joiner_whose_time_runs_out_as_the_set_empties_is_told_empty,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(joinset_gap(false, false), "the emptying of the set");
}

Test(batch_gap, a_fiber_joiner_whose_time_runs_out_as_the_set_empties_is_told_empty,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(joinset_gap(true, false), "the emptying of the set");
}

/* the same for a select's join set arm */
Test(batch_gap, a_joinset_select_whose_time_runs_out_as_the_set_empties_is_told_empty,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(joinset_gap(false, true), "the emptying of the set");
}

Test(batch_gap, a_fiber_joinset_select_whose_time_runs_out_as_the_set_empties_is_told_empty,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(joinset_gap(true, true), "the emptying of the set");
}

/* The same for a semaphore's release: 17 waiters for one permit each and
 * a release of 17. The 16 of the first batch are granted theirs; the
 * release has left the last one's in the count for the second batch,
 * whose time runs out in the gap. Its permit was released before its
 * limit, and nothing ahead of it waits (strict FIFO): it takes it and
 * says 0. A second late waiter behind it is served the same way. */
static atomic_int sr_ok, sr_bad;
static _Atomic int sr_late_rc[2] = { 1, 1 };
static _Atomic uint64_t sr_late_deadline;

static void *sr_forever(void *arg)
{
	(void)arg;
	atomic_fetch_add(weft_sem_acquire_n(sem, 1) == 0 ? &sr_ok : &sr_bad, 1);
	return NULL;
}

static void *sr_late(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	uint64_t limit = LATE_LIMIT;
	if (i == 0)
		atomic_store(&sr_late_deadline, wt_now_ns() + limit);
	atomic_store(&sr_late_rc[i], weft_sem_acquire_n_timeout(sem, 1, limit));
	return NULL;
}

static bool sem_release_gap(bool fiber)
{
	struct weft_runtime *rt = fiber ? wt_rt_create(1) : NULL;
	struct weft_task *late[2] = { NULL, NULL };
	enum { N = WEFT__WAKES_MAX + 2 };
	atomic_store(&slow_fired, 0);
	atomic_store(&sr_ok, 0);
	atomic_store(&sr_bad, 0);
	atomic_store(&sr_late_rc[0], 1);
	atomic_store(&sr_late_rc[1], 1);
	cr_assert_eq(weft_sem_create(0, &sem), 0);
	pthread_t th[N];
	for (int i = 0; i < N - 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, sr_forever, NULL), 0);
	settle();
	/* the second batch, both linked within the first one's limit */
	for (uintptr_t i = 0; i < 2; i++) {
		if (fiber)
			cr_assert_eq(weft_spawn(rt, sr_late, (void *)i, &late[i]), 0);
		else
			cr_assert_eq(pthread_create(&th[N - 2 + i], NULL, sr_late, (void *)i), 0);
	}
	settle();
	atomic_store(&slow_armed, 1);
	uint64_t t_rel = wt_now_ns();
	cr_assert_eq(weft_sem_release_n(sem, N), 0);
	for (int i = 0; i < N - 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		if (fiber)
			cr_assert_eq(weft_join(late[i], NULL), 0);
		else
			pthread_join(th[N - 2 + i], NULL);
	}
	cr_assert(atomic_load(&slow_fired));
	cr_assert_eq(atomic_load(&sr_bad), 0);
	cr_assert_eq(atomic_load(&sr_ok), N - 2);
	int taken = 0;
	for (int i = 0; i < 2; i++)
		taken += atomic_load(&sr_late_rc[i]) == 0;
	cr_assert_eq(weft_sem_available(sem), 2 - taken, "a permit lost or made");
	bool lined_up = lined_up_with(t_rel, atomic_load(&sr_late_deadline));
	if (lined_up)
		for (int i = 0; i < 2; i++)
			cr_assert_eq(atomic_load(&sr_late_rc[i]), 0,
				     "late waiter %d: released for before its limit, yet it said %d",
				     i, atomic_load(&sr_late_rc[i]));
	cr_assert_eq(weft_sem_destroy(sem), 0);
	if (rt)
		wt_rt_destroy(rt);
	return lined_up;
}

Test(batch_gap, a_semaphore_waiter_whose_time_runs_out_in_the_release_takes_its_permit,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(sem_release_gap(false), "the release");
}

Test(batch_gap, a_semaphore_fiber_whose_time_runs_out_in_the_release_takes_its_permit,
     .timeout = WT_TMO(30))
{
	PROVE_IN_ROUNDS(sem_release_gap(true), "the release");
}
