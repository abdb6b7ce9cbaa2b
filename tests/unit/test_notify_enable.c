/*
 * test_notify_enable.c - weft_notify's register-then-check form
 * (weft_notify_enable, weft_notify_wait_enabled[_timeout]) and the flag
 * pattern it exists for: set a flag and notify_all on one side; check the
 * flag and wait on the other. Without the enable, a notify_all that lands
 * between the check and the wait is lost (the first test shows it with
 * the plain wait); with it, nothing is lost, also under a two-thread race.
 */
#include "../common/wt.h"

#define MS 1000000ull

Test(notify_enable, plain_wait_loses_a_notify_all_between_check_and_wait,
     .timeout = WT_TMO(20))
{
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	atomic_int flag = 0;
	bool seen = atomic_load(&flag);       /* the waiter checks: not set */
	atomic_store(&flag, 1);               /* the notifier sets it ... */
	cr_assert_eq(weft_notify_all(n), 0);  /* ... and notifies nobody */
	cr_assert(!seen);
	cr_assert_eq(weft_notify_wait_timeout(n, 50 * MS), -ETIMEDOUT,
		     "the plain wait cannot see a notify_all that came before it");
	cr_assert_eq(weft_notify_destroy(n), 0);
}

Test(notify_enable, enabled_entry_keeps_a_notify_all_between_check_and_wait,
     .timeout = WT_TMO(20))
{
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	atomic_int flag = 0;
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_enable(n, &w), 0);
	bool seen = atomic_load(&flag);
	atomic_store(&flag, 1);
	cr_assert_eq(weft_notify_all(n), 0);
	cr_assert(!seen);
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_notify_wait_enabled_timeout(n, &w, 5000 * MS), 0);
	cr_assert_lt(wt_now_ns() - t0, 1000 * MS, "returned at once");
	cr_assert_eq(weft_notify_destroy(n), 0, "the entry is idle after the wait");
}

Test(notify_enable, enable_takes_a_stored_permit, .timeout = WT_TMO(20))
{
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	cr_assert_eq(weft_notify_one(n), 0);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_enable(n, &w), 0);
	cr_assert_eq(weft_notify_enable(n, &w), 0, "enabling twice is a no-op");
	cr_assert_eq(weft_notify_wait_timeout(n, 20 * MS), -ETIMEDOUT,
		     "the permit is in the enabled entry, not for another waiter");
	cr_assert_eq(weft_notify_wait_enabled(n, &w), 0);
	cr_assert_eq(weft_notify_destroy(n), 0);
}

Test(notify_enable, notify_one_grants_the_enabled_entry_and_cancel_passes_it_on,
     .timeout = WT_TMO(20))
{
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_enable(n, &w), 0);
	cr_assert_eq(weft_notify_one(n), 0);
	cr_assert_eq(weft_notify_destroy(n), -EBUSY, "the grant is still in w");
	weft_wait_cancel(&w);
	cr_assert_eq(weft_notify_wait_timeout(n, 1000 * MS), 0,
		     "the cancelled entry's grant became the permit again");
	cr_assert_eq(weft_notify_destroy(n), 0);
}

Test(notify_enable, notify_all_before_enable_does_not_count, .timeout = WT_TMO(20))
{
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	cr_assert_eq(weft_notify_all(n), 0);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_enable(n, &w), 0);
	cr_assert_eq(weft_notify_wait_enabled_timeout(n, &w, 20 * MS), -ETIMEDOUT);
	cr_assert_eq(weft_notify_destroy(n), 0, "a timed-out wait leaves w idle");
}

/* A poll task: enable, let the test notify_all, then the poll form with the
 * same entry must return 0 within the same poll. */
struct pstate {
	struct weft_notify *n;
	struct weft_wait w;
	atomic_int enabled, notified;
	atomic_int rc_blocking, rc_poll;
	atomic_int drops;
};

static enum weft_poll enabled_poll(void *state, struct weft_cx *cx)
{
	struct pstate *p = state;
	/* The blocking form from a poll task: refused, its entry left idle. */
	struct weft_wait tmp = WEFT_WAIT_INIT;
	weft_notify_enable(p->n, &tmp);
	int rc = weft_notify_wait_enabled(p->n, &tmp);
	atomic_store(&p->rc_blocking, tmp._queue ? 999 : rc);
	weft_notify_enable(p->n, &p->w);
	atomic_store(&p->enabled, 1);
	while (!atomic_load(&p->notified))
		usleep(100);
	atomic_store(&p->rc_poll, weft_notify_wait_poll(p->n, &p->w, cx));
	return WEFT_READY;
}

static void enabled_drop(void *state)
{
	struct pstate *p = state;
	weft_wait_cancel(&p->w);
	atomic_fetch_add(&p->drops, 1);
}

Test(notify_enable, poll_form_with_an_enabled_entry, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct pstate p = { 0 };
	cr_assert_eq(weft_notify_create(&p.n), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, enabled_poll, &p, enabled_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.enabled), WT_LONG_MS));
	cr_assert_eq(weft_notify_all(p.n), 0);
	atomic_store(&p.notified, 1);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&p.rc_blocking), -EDEADLK);
	cr_assert_eq(atomic_load(&p.rc_poll), 0, "the notify_all after the enable counted");
	cr_assert_eq(atomic_load(&p.drops), 1);
	cr_assert_eq(weft_notify_destroy(p.n), 0);
	wt_rt_destroy(rt);
}

Test(notify_enable, errors, .timeout = WT_TMO(20))
{
	struct weft_notify *a, *b;
	cr_assert_eq(weft_notify_create(&a), 0);
	cr_assert_eq(weft_notify_create(&b), 0);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_enable(NULL, &w), -EINVAL);
	cr_assert_eq(weft_notify_enable(a, NULL), -EINVAL);
	cr_assert_eq(weft_notify_wait_enabled(NULL, &w), -EINVAL);
	cr_assert_eq(weft_notify_wait_enabled(a, NULL), -EINVAL);
	cr_assert_eq(weft_notify_wait_enabled_timeout(NULL, &w, 0), -EINVAL);
	cr_assert_eq(weft_notify_enable(a, &w), 0);
	cr_assert_eq(weft_notify_enable(b, &w), -EINVAL, "w is attached to a");
	cr_assert_eq(weft_notify_wait_enabled(b, &w), -EINVAL, "w is attached to a");
	cr_assert_eq(weft_notify_destroy(a), -EBUSY, "an enabled entry counts as a waiter");
	weft_wait_cancel(&w);
	cr_assert_eq(weft_notify_destroy(a), 0);
	cr_assert_eq(weft_notify_destroy(b), 0);
}

/*
 * The race itself: a waiter thread and a notifier thread, 20,000 rounds of
 * the flag pattern. A lost notify_all shows as a wait that times out
 * although the flag was set before it began. (With the enable taken away,
 * this failed within the first few hundred rounds.)
 */
#define ROUNDS 20000

struct race {
	struct weft_notify *n;
	atomic_int flag, ack;
	atomic_int lost, errors;
	bool fiber;
};

static void *race_waiter(void *arg)
{
	struct race *r = arg;
	for (int i = 1; i <= ROUNDS && !atomic_load(&r->lost); i++) {
		while (atomic_load(&r->flag) < i) {
			struct weft_wait w = WEFT_WAIT_INIT;
			weft_notify_enable(r->n, &w);
			if (atomic_load(&r->flag) >= i) {
				weft_wait_cancel(&w);
				break;
			}
			int rc = weft_notify_wait_enabled_timeout(r->n, &w, 500 * MS);
			if (rc == -ETIMEDOUT && atomic_load(&r->flag) >= i) {
				atomic_store(&r->lost, i);
				break;
			}
			if (rc && rc != -ETIMEDOUT)
				atomic_fetch_add(&r->errors, 1);
		}
		atomic_store(&r->ack, i);
	}
	atomic_store(&r->ack, ROUNDS + 1);
	return NULL;
}

static void *race_notifier(void *arg)
{
	struct race *r = arg;
	for (int i = 1; i <= ROUNDS && !atomic_load(&r->lost); i++) {
		while (atomic_load(&r->ack) < i - 1)
			if (r->fiber)
				weft_yield();
		atomic_store(&r->flag, i);
		weft_notify_all(r->n);
	}
	return NULL;
}

Test(notify_enable, flag_pattern_race_threads, .timeout = WT_TMO(60))
{
	struct race r = { 0 };
	cr_assert_eq(weft_notify_create(&r.n), 0);
	pthread_t a, b;
	pthread_create(&a, NULL, race_waiter, &r);
	pthread_create(&b, NULL, race_notifier, &r);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	cr_assert_eq(atomic_load(&r.lost), 0, "round %d: notify_all lost", atomic_load(&r.lost));
	cr_assert_eq(atomic_load(&r.errors), 0);
	cr_assert_eq(weft_notify_destroy(r.n), 0);
}

Test(notify_enable, flag_pattern_race_fibers, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct race r = { .fiber = true };
	cr_assert_eq(weft_notify_create(&r.n), 0);
	struct weft_task *a, *b;
	cr_assert_eq(weft_spawn(rt, race_waiter, &r, &a), 0);
	cr_assert_eq(weft_spawn(rt, race_notifier, &r, &b), 0);
	cr_assert_eq(weft_join(a, NULL), 0);
	cr_assert_eq(weft_join(b, NULL), 0);
	cr_assert_eq(atomic_load(&r.lost), 0, "round %d: notify_all lost", atomic_load(&r.lost));
	cr_assert_eq(atomic_load(&r.errors), 0);
	cr_assert_eq(weft_notify_destroy(r.n), 0);
	wt_rt_destroy(rt);
}
