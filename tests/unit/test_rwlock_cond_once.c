/*
 * test_rwlock_cond_once.c - weft_rwlock, weft_cond and weft_once
 * (weft/sync.h) through the public headers.
 */
#include <signal.h>
#include <sys/wait.h>

#include "../common/wt.h"

#define MS 1000000ull

/* ------------------------------------------------------------------ rwlock */

Test(rwlock, try_forms_and_errors, .timeout = WT_TMO(20))
{
	struct weft_rwlock *l;
	cr_assert_eq(weft_rwlock_create(NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_create(&l), 0);
	cr_assert_eq(weft_rwlock_read_unlock(l), -EPERM);
	cr_assert_eq(weft_rwlock_write_unlock(l), -EPERM);
	cr_assert_eq(weft_rwlock_try_read(l), 0);
	cr_assert_eq(weft_rwlock_try_read(l), 0, "readers share");
	cr_assert_eq(weft_rwlock_try_write(l), -EBUSY);
	cr_assert_eq(weft_rwlock_write_unlock(l), -EPERM, "held for reading");
	cr_assert_eq(weft_rwlock_destroy(l), -EBUSY);
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	cr_assert_eq(weft_rwlock_try_write(l), 0);
	cr_assert_eq(weft_rwlock_try_read(l), -EBUSY);
	cr_assert_eq(weft_rwlock_try_write(l), -EBUSY);
	cr_assert_eq(weft_rwlock_read_unlock(l), -EPERM, "held for writing");
	cr_assert_eq(weft_rwlock_write_timeout(l, 10 * MS), -ETIMEDOUT);
	cr_assert_eq(weft_rwlock_read_timeout(l, 10 * MS), -ETIMEDOUT);
	cr_assert_eq(weft_rwlock_write_unlock(l), 0);
	cr_assert_eq(weft_rwlock_read(l), 0);
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	cr_assert_eq(weft_rwlock_write(l), 0);
	cr_assert_eq(weft_rwlock_write_unlock(l), 0);
	cr_assert_eq(weft_rwlock_try_read(NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_read(NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_write_timeout(NULL, 0), -EINVAL);
	cr_assert_eq(weft_rwlock_read_unlock(NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_destroy(NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_destroy(l), 0);
}

struct rw_op {
	struct weft_rwlock *l;
	bool write;
	int tag;
	struct weft_token *release;   /* hold until cancelled (NULL: release at once) */
	atomic_int *order;            /* acquisition order */
	int *log;
	atomic_int *holding;
	atomic_int *max_holding;
	atomic_int started;
};

static void *rw_fiber(void *arg)
{
	struct rw_op *o = arg;
	atomic_store(&o->started, 1);
	int rc = o->write ? weft_rwlock_write(o->l) : weft_rwlock_read(o->l);
	if (rc)
		return (void *)(intptr_t)rc;
	o->log[atomic_fetch_add(o->order, 1)] = o->tag;
	int h = atomic_fetch_add(o->holding, 1) + 1;
	int m = atomic_load(o->max_holding);
	while (h > m && !atomic_compare_exchange_weak(o->max_holding, &m, h))
		;
	if (o->release)
		weft_token_wait(o->release);
	atomic_fetch_sub(o->holding, 1);
	rc = o->write ? weft_rwlock_write_unlock(o->l) : weft_rwlock_read_unlock(o->l);
	return (void *)(intptr_t)rc;
}

/* With one worker: spawn the fiber, then a gate behind it in the inject
 * queue; once the gate runs, the fiber's first poll (which linked it in
 * the lock's FIFO, or took the lock) is over. No sleep, so no guess. */
static void spawn_parked(struct weft_runtime *rt, struct rw_op *o, struct weft_task **h)
{
	cr_assert_eq(weft_spawn(rt, rw_fiber, o, h), 0);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert(atomic_load(&o->started), "the fiber ran before the gate");
	wt_gate_open(&g);
}

Test(rwlock, fifo_writer_preferring_readers_batched, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_rwlock *l;
	cr_assert_eq(weft_rwlock_create(&l), 0);
	atomic_int order = 0, holding = 0, maxh = 0;
	int log[32] = { 0 };
	/* The test holds a read lock; W1 waits; a new reader now waits too
	 * (behind the writer), as does try_read. */
	cr_assert_eq(weft_rwlock_try_read(l), 0);
	struct rw_op w1 = { .l = l, .write = true, .tag = 1, .order = &order, .log = log,
			    .holding = &holding, .max_holding = &maxh };
	struct weft_task *hw1, *hr[10], *hw2;
	spawn_parked(rt, &w1, &hw1);
	cr_assert_eq(weft_rwlock_try_read(l), -EBUSY, "a writer waits: new readers queue");
	struct weft_token *hold;
	cr_assert_eq(weft_token_create(NULL, &hold), 0);
	struct rw_op r[10];
	for (int i = 0; i < 10; i++) {
		r[i] = (struct rw_op){ .l = l, .tag = 10 + i, .release = hold, .order = &order,
				       .log = log, .holding = &holding, .max_holding = &maxh };
		spawn_parked(rt, &r[i], &hr[i]);
	}
	struct rw_op w2 = { .l = l, .write = true, .tag = 2, .order = &order, .log = log,
			    .holding = &holding, .max_holding = &maxh };
	spawn_parked(rt, &w2, &hw2);
	cr_assert_eq(atomic_load(&order), 0, "nobody got it while the test reads");
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	/* W1 first; then the 10 readers together; W2 only after all of them. */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&order) == 11, WT_LONG_MS));
	cr_assert(WT_WAIT_UNTIL(atomic_load(&holding) == 10, WT_LONG_MS),
		  "the readers hold it together");
	cr_assert_eq(log[0], 1);
	for (int i = 1; i <= 10; i++)
		cr_assert_geq(log[i], 10);
	wt_sleep_ms(10);
	cr_assert_eq(atomic_load(&order), 11, "W2 waits for the readers");
	cr_assert_eq(weft_token_cancel(hold), 0);
	void *rc;
	cr_assert_eq(weft_join(hw1, &rc), 0);
	cr_assert_eq((intptr_t)rc, 0);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(weft_join(hr[i], &rc), 0);
		cr_assert_eq((intptr_t)rc, 0);
	}
	cr_assert_eq(weft_join(hw2, &rc), 0);
	cr_assert_eq((intptr_t)rc, 0);
	cr_assert_eq(log[11], 2);
	cr_assert_eq(atomic_load(&maxh), 10);
	cr_assert_eq(weft_rwlock_destroy(l), 0);
	cr_assert_eq(weft_token_destroy(hold), 0);
	wt_rt_destroy(rt);
}

struct wr { struct weft_rwlock *l; int rc; };

static void *timed_writer(void *a)
{
	struct wr *x = a;
	x->rc = weft_rwlock_write_timeout(x->l, 100 * MS);
	return NULL;
}

Test(rwlock, timed_out_writer_lets_queued_readers_in, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_rwlock *l;
	cr_assert_eq(weft_rwlock_create(&l), 0);
	cr_assert_eq(weft_rwlock_try_read(l), 0);
	atomic_int order = 0, holding = 0, maxh = 0;
	int log[4];
	struct rw_op rd = { .l = l, .tag = 5, .order = &order, .log = log, .holding = &holding,
			    .max_holding = &maxh };
	struct weft_task *h;
	/* A writer from this thread times out; the reader queued behind it
	 * (while it waited) must then get in beside the test's read hold. */
	pthread_t th;
	struct wr wr = { l, 0 };
	cr_assert_eq(pthread_create(&th, NULL, timed_writer, &wr), 0);
	/* the writer is queued once a new reader is refused */
	cr_assert(WT_WAIT_UNTIL(weft_rwlock_try_read(l) == -EBUSY ||
				(weft_rwlock_read_unlock(l), false), WT_LONG_MS));
	spawn_parked(rt, &rd, &h);
	cr_assert_eq(atomic_load(&order), 0, "queued behind the writer");
	pthread_join(th, NULL);
	cr_assert_eq(wr.rc, -ETIMEDOUT);
	void *rc;
	cr_assert_eq(weft_join(h, &rc), 0);
	cr_assert_eq((intptr_t)rc, 0);
	cr_assert_eq(log[0], 5);
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	cr_assert_eq(weft_rwlock_destroy(l), 0);
	wt_rt_destroy(rt);
}

/* The two patterns sync.h documents as waiting for ever (the lock cannot
 * tell a holder from anyone else): a read holder asking for the write lock
 * (no upgrade), and a read holder asking for a second read hold while a
 * writer is queued (no recursive read). Both end only by their time limit,
 * and the lock is left as it was. */
Test(rwlock, upgrade_and_recursive_read_behind_a_writer_wait_for_ever, .timeout = WT_TMO(20))
{
	struct weft_rwlock *l;
	cr_assert_eq(weft_rwlock_create(&l), 0);
	cr_assert_eq(weft_rwlock_read(l), 0);
	cr_assert_eq(weft_rwlock_try_write(l), -EBUSY);
	cr_assert_eq(weft_rwlock_write_timeout(l, 30 * MS), -ETIMEDOUT,
		     "an upgrade waits for the caller's own read hold");
	cr_assert_eq(weft_rwlock_try_read(l), 0, "nobody left queued, the hold kept");
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	/* recursive read behind a queued writer */
	pthread_t th;
	struct wr wr = { l, 0 };
	cr_assert_eq(pthread_create(&th, NULL, timed_writer, &wr), 0);
	cr_assert(WT_WAIT_UNTIL(weft_rwlock_try_read(l) == -EBUSY ||
				(weft_rwlock_read_unlock(l), false), WT_LONG_MS));
	cr_assert_eq(weft_rwlock_read_timeout(l, 30 * MS), -ETIMEDOUT,
		     "a second read hold waits behind the queued writer");
	pthread_join(th, NULL);
	cr_assert_eq(wr.rc, -ETIMEDOUT, "the writer waited for the first hold");
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	cr_assert_eq(weft_rwlock_read_unlock(l), -EPERM, "only the first hold was taken");
	cr_assert_eq(weft_rwlock_destroy(l), 0);
}

/* Poll form, -EDEADLK, abort while waiting. */
struct rwp { struct weft_rwlock *l; struct weft_wait w; int rc_blocking; atomic_int parked; };

static enum weft_poll rwp_poll(void *state, struct weft_cx *cx)
{
	struct rwp *p = state;
	p->rc_blocking = weft_rwlock_write(p->l);
	int rc = weft_rwlock_write_poll(p->l, &p->w, cx);
	if (rc == WEFT_PENDING) {
		atomic_store(&p->parked, 1);
		return WEFT_PENDING;
	}
	weft_cx_set_result(cx, (void *)(intptr_t)(rc + 100));
	return WEFT_READY;
}

static void rwp_drop(void *state) { weft_wait_cancel(&((struct rwp *)state)->w); }

Test(rwlock, poll_form_and_abort, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_rwlock *l;
	cr_assert_eq(weft_rwlock_create(&l), 0);
	cr_assert_eq(weft_rwlock_try_read(l), 0);
	struct rwp a = { .l = l }, b = { .l = l };
	struct weft_task *ha, *hb;
	cr_assert_eq(weft_spawn_poll(rt, rwp_poll, &a, rwp_drop, &ha), 0);
	cr_assert_eq(weft_spawn_poll(rt, rwp_poll, &b, rwp_drop, &hb), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&a.parked) && atomic_load(&b.parked), WT_LONG_MS));
	cr_assert_eq(a.rc_blocking, -EDEADLK);
	cr_assert_eq(weft_abort(ha), 0);
	cr_assert_eq(weft_join(ha, NULL), -ECANCELED);
	cr_assert_eq(weft_rwlock_read_unlock(l), 0);
	void *r;
	cr_assert_eq(weft_join(hb, &r), 0);
	cr_assert_eq((intptr_t)r, 100);
	cr_assert_eq(weft_rwlock_try_read(l), -EBUSY, "b holds it for writing");
	cr_assert_eq(weft_rwlock_write_unlock(l), 0);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_rwlock_read_poll(NULL, &w, NULL), -EINVAL);
	cr_assert_eq(weft_rwlock_destroy(l), 0);
	wt_rt_destroy(rt);
}

/* Readers and writers hammering one value: writers exclusive, no lost update. */
struct rw_hammer {
	struct weft_rwlock *l;
	long value;
	atomic_long writes;
	atomic_int writers_in, readers_in, bad;
};

static void *hammer(void *arg)
{
	struct rw_hammer *h = arg;
	uint64_t seed = (uintptr_t)&seed;
	for (int i = 0; i < 2000; i++) {
		if (wt_rand(&seed) % 4 == 0) {
			weft_rwlock_write(h->l);
			if (atomic_fetch_add(&h->writers_in, 1) || atomic_load(&h->readers_in))
				atomic_fetch_add(&h->bad, 1);
			long v = h->value;
			if (i % 8 == 0)
				weft_yield();
			h->value = v + 1;
			atomic_fetch_add(&h->writes, 1);
			atomic_fetch_sub(&h->writers_in, 1);
			weft_rwlock_write_unlock(h->l);
		} else {
			weft_rwlock_read(h->l);
			atomic_fetch_add(&h->readers_in, 1);
			if (atomic_load(&h->writers_in))
				atomic_fetch_add(&h->bad, 1);
			if (i % 8 == 0)
				weft_yield();
			atomic_fetch_sub(&h->readers_in, 1);
			weft_rwlock_read_unlock(h->l);
		}
	}
	return NULL;
}

Test(rwlock, hammer_writers_exclusive, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct rw_hammer h = { 0 };
	cr_assert_eq(weft_rwlock_create(&h.l), 0);
	struct weft_task *t[16];
	for (int i = 0; i < 16; i++)
		cr_assert_eq(weft_spawn(rt, hammer, &h, &t[i]), 0);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	cr_assert_eq(atomic_load(&h.bad), 0, "a writer overlapped another holder");
	cr_assert_gt(atomic_load(&h.writes), 1000);
	cr_assert_eq(h.value, atomic_load(&h.writes), "no lost update");
	cr_assert_eq(weft_rwlock_destroy(h.l), 0);
	wt_rt_destroy(rt);
}

/* -------------------------------------------------------------------- cond */

struct cv {
	struct weft_mutex *m;
	struct weft_cond *c;
	int ready;                  /* the predicate, under m */
	atomic_int woke, waiting;
	int rc_lock_held;
};

static void *cv_waiter(void *arg)
{
	struct cv *v = arg;
	weft_mutex_lock(v->m);
	atomic_fetch_add(&v->waiting, 1);
	while (!v->ready) {
		int rc = weft_cond_wait(v->c, v->m);
		if (rc) {
			if (rc != -ECANCELED) /* cancelled: the mutex is not held */
				weft_mutex_unlock(v->m);
			return (void *)(intptr_t)rc;
		}
	}
	v->ready--;
	atomic_fetch_add(&v->woke, 1);
	weft_mutex_unlock(v->m);
	return NULL;
}

Test(cond, signal_and_broadcast_with_fibers_and_threads, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct cv v = { 0 };
	cr_assert_eq(weft_mutex_create(&v.m), 0);
	cr_assert_eq(weft_cond_create(&v.c), 0);
	struct weft_task *h[6];
	for (int i = 0; i < 6; i++)
		cr_assert_eq(weft_spawn(rt, cv_waiter, &v, &h[i]), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, cv_waiter, &v), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&v.waiting) == 7, WT_LONG_MS));
	wt_sleep_ms(10);
	cr_assert_eq(weft_cond_destroy(v.c), -EBUSY, "waiters linked");
	/* one at a time */
	for (int k = 1; k <= 3; k++) {
		cr_assert_eq(weft_mutex_lock(v.m), 0);
		v.ready++;
		cr_assert_eq(weft_cond_signal(v.c), 0);
		cr_assert_eq(weft_mutex_unlock(v.m), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&v.woke) == k, WT_LONG_MS));
	}
	wt_sleep_ms(10);
	cr_assert_eq(atomic_load(&v.woke), 3, "a signal wakes one");
	cr_assert_eq(weft_mutex_lock(v.m), 0);
	v.ready += 4;
	cr_assert_eq(weft_cond_broadcast(v.c), 0);
	cr_assert_eq(weft_mutex_unlock(v.m), 0);
	for (int i = 0; i < 6; i++) {
		void *r;
		cr_assert_eq(weft_join(h[i], &r), 0);
		cr_assert_eq((intptr_t)r, 0);
	}
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&v.woke), 7);
	cr_assert_eq(weft_cond_signal(v.c), 0, "nobody waits: nothing happens");
	cr_assert_eq(weft_cond_destroy(v.c), 0);
	cr_assert_eq(weft_mutex_destroy(v.m), 0);
	wt_rt_destroy(rt);
}

Test(cond, timeout_holds_the_mutex_again_and_errors, .timeout = WT_TMO(20))
{
	struct weft_mutex *m;
	struct weft_cond *c;
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_cond_create(&c), 0);
	cr_assert_eq(weft_cond_wait(c, m), -EPERM, "the mutex is not locked");
	cr_assert_eq(weft_cond_destroy(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_lock(m), 0);
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_cond_wait_timeout(c, m, 30 * MS), -ETIMEDOUT);
	cr_assert_geq(wt_now_ns() - t0, 30 * MS);
	cr_assert_eq(weft_mutex_try_lock(m), -EBUSY, "held again after the timeout");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(weft_cond_create(NULL), -EINVAL);
	cr_assert_eq(weft_cond_signal(NULL), -EINVAL);
	cr_assert_eq(weft_cond_broadcast(NULL), -EINVAL);
	cr_assert_eq(weft_cond_wait(NULL, m), -EINVAL);
	cr_assert_eq(weft_cond_wait(c, NULL), -EINVAL);
	cr_assert_eq(weft_cond_wait_timeout(NULL, m, 0), -EINVAL);
	cr_assert_eq(weft_cond_destroy(c), 0);
	cr_assert_eq(weft_mutex_destroy(m), 0);
}

/*
 * A signal granted to a waiter that is then cancelled goes to the next
 * waiter. One worker, held by a gate, while the signal lands on fiber A
 * (the head) and A is aborted: B must wake.
 */
Test(cond, signal_to_a_cancelled_waiter_is_passed_on, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct cv v = { 0 };
	cr_assert_eq(weft_mutex_create(&v.m), 0);
	cr_assert_eq(weft_cond_create(&v.c), 0);
	struct weft_task *a, *b;
	cr_assert_eq(weft_spawn(rt, cv_waiter, &v, &a), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&v.waiting) == 1, WT_LONG_MS));
	cr_assert_eq(weft_spawn(rt, cv_waiter, &v, &b), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&v.waiting) == 2, WT_LONG_MS));
	wt_sleep_ms(10);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_mutex_lock(v.m), 0);
	v.ready = 1;
	cr_assert_eq(weft_cond_signal(v.c), 0); /* granted to A */
	cr_assert_eq(weft_mutex_unlock(v.m), 0);
	cr_assert_eq(weft_abort(a), 0);
	wt_gate_open(&g);
	void *r;
	/* A unwinds: its cond wait returns -ECANCELED without the mutex. */
	cr_assert_eq(weft_join(a, &r), -EINTR);
	cr_assert_eq((intptr_t)r, -ECANCELED);
	cr_assert_eq(weft_join(b, &r), 0, "B got the signal A never used");
	cr_assert_eq((intptr_t)r, 0);
	cr_assert_eq(atomic_load(&v.woke), 1);
	cr_assert_eq(weft_mutex_try_lock(v.m), 0, "A did not keep the mutex");
	cr_assert_eq(weft_mutex_unlock(v.m), 0);
	cr_assert_eq(weft_cond_destroy(v.c), 0);
	cr_assert_eq(weft_mutex_destroy(v.m), 0);
	wt_rt_destroy(rt);
}

/* Poll form. */
struct cvp { struct cv *v; struct weft_wait w; int step, rc_blocking, spend; atomic_int parked; };

static enum weft_poll cvp_poll(void *state, struct weft_cx *cx)
{
	struct cvp *p = state;
	if (p->step == 0) {
		p->rc_blocking = weft_cond_wait(p->v->c, p->v->m);
		if (weft_mutex_try_lock(p->v->m))
			return WEFT_READY; /* cannot happen: the test leaves it free */
		p->step = 1;
	}
	for (;;) {
		if (p->step == 2) {
			if (p->v->ready) {
				p->v->ready = 0;
				weft_mutex_unlock(p->v->m);
				weft_cx_set_result(cx, (void *)1);
				return WEFT_READY;
			}
		}
		if (p->spend && atomic_load(&p->parked)) {
			/* signalled: come back with the poll's budget used up */
			p->spend = 0;
			while (weft_budget_poll_proceed(cx) == WEFT_READY)
				;
		}
		int rc = weft_cond_wait_poll(p->v->c, p->v->m, &p->w, cx);
		if (rc == WEFT_PENDING) {
			atomic_store(&p->parked, 1);
			return WEFT_PENDING;
		}
		if (rc)
			return WEFT_READY;
		p->step = 2; /* woken, mutex held: check the predicate */
	}
}

static void cvp_drop(void *state) { weft_wait_cancel(&((struct cvp *)state)->w); }

static void cond_poll_form(int spend)
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct cv v = { 0 };
	cr_assert_eq(weft_mutex_create(&v.m), 0);
	cr_assert_eq(weft_cond_create(&v.c), 0);
	struct cvp p = { .v = &v, .spend = spend };
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, cvp_poll, &p, cvp_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.parked), WT_LONG_MS));
	cr_assert_eq(p.rc_blocking, -EDEADLK);
	cr_assert_eq(weft_mutex_try_lock(v.m), 0, "the wait released the mutex");
	v.ready = 1;
	cr_assert_eq(weft_cond_signal(v.c), 0);
	cr_assert_eq(weft_mutex_unlock(v.m), 0);
	void *r;
	cr_assert_eq(weft_join(h, &r), 0);
	cr_assert_eq((intptr_t)r, 1);
	cr_assert_eq(weft_cond_destroy(v.c), 0);
	cr_assert_eq(weft_mutex_destroy(v.m), 0);
	wt_rt_destroy(rt);
}

Test(cond, poll_form, .timeout = WT_TMO(20)) { cond_poll_form(0); }

/* Signalled, then polled with the budget spent: the waiter keeps its turn
 * for the mutex (it must not wait on the cond again, having used the
 * signal, nor unlock a mutex it does not hold). */
Test(cond, poll_form_with_spent_budget, .timeout = WT_TMO(20)) { cond_poll_form(1); }

/* An entry queued for the mutex by weft_mutex_lock_poll, or in another
 * cond's mutex phase, is not this cond's waiter: its poll form refuses it
 * (sync.h: an entry linked to another object) and leaves it as it was. */
struct cvx { struct weft_cond *c; struct weft_mutex *m; struct weft_wait w; int step;
	     atomic_int rc, parked; };

static enum weft_poll cvx_poll(void *state, struct weft_cx *cx)
{
	struct cvx *p = state;
	int rc;
	if (p->step == 0) {
		p->step = 1;
		rc = weft_mutex_lock_poll(p->m, &p->w, cx); /* the test holds m */
		if (rc != WEFT_PENDING) {
			atomic_store(&p->rc, 1000 + rc);
			return WEFT_READY;
		}
		atomic_store(&p->parked, 1);
		return WEFT_PENDING;
	}
	/* woken: m handed to the entry, not yet collected */
	rc = weft_cond_wait_poll(p->c, p->m, &p->w, cx);
	atomic_store(&p->rc, rc);
	if (rc == 0)
		weft_mutex_unlock(p->m);
	weft_wait_cancel(&p->w); /* passes m on */
	return WEFT_READY;
}

static void cvx_drop(void *state) { weft_wait_cancel(&((struct cvx *)state)->w); }

Test(cond, poll_form_refuses_an_entry_queued_for_the_mutex, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct cvx p = { 0 };
	cr_assert_eq(weft_mutex_create(&p.m), 0);
	cr_assert_eq(weft_cond_create(&p.c), 0);
	cr_assert_eq(weft_mutex_lock(p.m), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, cvx_poll, &p, cvx_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.parked), WT_LONG_MS));
	cr_assert_eq(weft_mutex_unlock(p.m), 0); /* to the queued entry */
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&p.rc), -EINVAL, "cond poll with a mutex waiter's entry: %d",
		     atomic_load(&p.rc));
	cr_assert_eq(weft_mutex_try_lock(p.m), 0, "the cancel passed the mutex on");
	cr_assert_eq(weft_mutex_unlock(p.m), 0);
	cr_assert_eq(weft_cond_destroy(p.c), 0, "the cond counts no waiter");
	cr_assert_eq(weft_mutex_destroy(p.m), 0);
	wt_rt_destroy(rt);
}

/* The other way round: an entry in its cond's mutex phase (signalled,
 * queued for the mutex by weft_cond_wait_poll) is the cond's, and the
 * mutex's poll form refuses it (sync.h: an entry linked to another
 * object), queued or granted. It took the mutex granted to the entry and
 * returned 0, and the cond counted a waiter in its mutex phase for good:
 * destroy said -EBUSY ever after (found by a review). */
struct mxc { struct weft_cond *c; struct weft_mutex *m; struct weft_wait w; int step;
	     atomic_int parked, rc_linked, rc_granted, rc_cond; };

static enum weft_poll mxc_poll(void *state, struct weft_cx *cx)
{
	struct mxc *p = state;
	int rc;
	switch (p->step++) {
	case 0: /* the cond phase: m free, taken here, let go by the wait */
		if (weft_mutex_try_lock(p->m) ||
		    weft_cond_wait_poll(p->c, p->m, &p->w, cx) != WEFT_PENDING) {
			atomic_store(&p->rc_cond, 1000);
			return WEFT_READY;
		}
		atomic_store(&p->parked, 1);
		return WEFT_PENDING;
	case 1: /* signalled; the test holds m: queued for it */
		rc = weft_cond_wait_poll(p->c, p->m, &p->w, cx);
		if (rc != WEFT_PENDING) {
			atomic_store(&p->rc_cond, 2000 + rc);
			return WEFT_READY;
		}
		atomic_store(&p->rc_linked, weft_mutex_lock_poll(p->m, &p->w, cx));
		atomic_store(&p->parked, 2);
		return WEFT_PENDING;
	default: /* m granted to the entry */
		rc = weft_mutex_lock_poll(p->m, &p->w, cx);
		atomic_store(&p->rc_granted, rc);
		if (rc == 0) { /* taken through the cond's entry */
			weft_mutex_unlock(p->m);
			return WEFT_READY;
		}
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		rc = weft_cond_wait_poll(p->c, p->m, &p->w, cx);
		atomic_store(&p->rc_cond, rc);
		if (rc == 0)
			weft_mutex_unlock(p->m);
		return WEFT_READY;
	}
}

static void mxc_drop(void *state) { weft_wait_cancel(&((struct mxc *)state)->w); }

Test(cond, mutex_poll_refuses_an_entry_in_its_cond_mutex_phase, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct mxc p = { 0 };
	atomic_store(&p.rc_cond, 99);
	cr_assert_eq(weft_mutex_create(&p.m), 0);
	cr_assert_eq(weft_cond_create(&p.c), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, mxc_poll, &p, mxc_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.parked) == 1, WT_LONG_MS));
	cr_assert_eq(weft_mutex_lock(p.m), 0);
	cr_assert_eq(weft_cond_signal(p.c), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.parked) == 2, WT_LONG_MS),
		  "cond wait: %d", atomic_load(&p.rc_cond));
	cr_assert_eq(weft_mutex_unlock(p.m), 0); /* to the queued entry */
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&p.rc_linked), -EINVAL, "mutex poll, entry queued by the cond: %d",
		     atomic_load(&p.rc_linked));
	cr_assert_eq(atomic_load(&p.rc_granted), -EINVAL, "mutex poll, m granted to it: %d",
		     atomic_load(&p.rc_granted));
	cr_assert_eq(atomic_load(&p.rc_cond), 0, "the cond wait still ends with m");
	cr_assert_eq(weft_cond_destroy(p.c), 0, "the cond counts no waiter");
	cr_assert_eq(weft_mutex_destroy(p.m), 0);
	wt_rt_destroy(rt);
}

/* -------------------------------------------------------------------- once */

static struct weft_once g_once = WEFT_ONCE_INIT;
static atomic_int g_once_runs;
static long g_once_value;

static void once_init(void *arg)
{
	atomic_fetch_add(&g_once_runs, 1);
	weft_sleep_ns(50 * MS); /* suspends the first caller's fiber (or thread) */
	g_once_value = (long)(intptr_t)arg;
}

static void *once_caller(void *arg)
{
	int rc = weft_once(&g_once, once_init, (void *)42);
	if (rc)
		return (void *)(intptr_t)rc;
	return (void *)(intptr_t)(g_once_value == 42 ? 0 : -1000);
}

Test(once, concurrent_fibers_and_threads_run_it_once, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h[16];
	for (int i = 0; i < 16; i++)
		cr_assert_eq(weft_spawn(rt, once_caller, NULL, &h[i]), 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, once_caller, NULL), 0);
	for (int i = 0; i < 16; i++) {
		void *r;
		cr_assert_eq(weft_join(h[i], &r), 0);
		cr_assert_eq((intptr_t)r, 0, "fiber %d: %ld", i, (long)(intptr_t)r);
	}
	for (int i = 0; i < 2; i++) {
		void *r;
		pthread_join(th[i], &r);
		cr_assert_eq((intptr_t)r, 0);
	}
	cr_assert_eq(atomic_load(&g_once_runs), 1);
	cr_assert(weft_once_done(&g_once));
	cr_assert_eq(weft_once(&g_once, once_init, NULL), 0, "later calls return at once");
	cr_assert_eq(atomic_load(&g_once_runs), 1);
	wt_rt_destroy(rt);
}

static atomic_int gate_open;
static void slow_init(void *arg)
{
	while (!atomic_load(&gate_open))
		usleep(100);
}

static void *slow_once_thread(void *arg)
{
	weft_once(arg, slow_init, NULL);
	return NULL;
}

struct oncep { struct weft_once *o; int rc; atomic_int done; };

static enum weft_poll once_poll(void *state, struct weft_cx *cx)
{
	struct oncep *p = state;
	p->rc = weft_once(p->o, slow_init, NULL);
	atomic_store(&p->done, 1);
	return WEFT_READY;
}

Test(once, errors_and_poll_task_that_would_wait, .timeout = WT_TMO(20))
{
	struct weft_once o = WEFT_ONCE_INIT;
	cr_assert_eq(weft_once(NULL, slow_init, NULL), -EINVAL);
	cr_assert_eq(weft_once(&o, NULL, NULL), -EINVAL);
	cr_assert(!weft_once_done(&o));
	cr_assert(!weft_once_done(NULL));
	struct weft_runtime *rt = wt_rt_create(1);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, slow_once_thread, &o), 0);
	wt_sleep_ms(20); /* the thread runs slow_init */
	struct oncep p = { .o = &o };
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, once_poll, &p, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(p.rc, -EDEADLK, "a poll task cannot wait for it");
	atomic_store(&gate_open, 1);
	pthread_join(th, NULL);
	cr_assert(weft_once_done(&o));
	cr_assert_eq(weft_spawn_poll(rt, once_poll, &p, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(p.rc, 0, "once done, a poll task gets 0");
	wt_rt_destroy(rt);
}

/* weft_once_try: an initialiser that fails twice, then succeeds, called
 * by 12 fibers and 2 threads at once. Each failure goes to the caller that
 * ran it, the once is not done after it, and a waiting caller runs fn
 * next; in the end fn ran 3 times, every other caller got 0, and later
 * calls return 0 without running it. */
static struct weft_once g_try = WEFT_ONCE_INIT;
static atomic_int g_try_runs;
static long g_try_value;

static int try_init(void *arg)
{
	int n = atomic_fetch_add(&g_try_runs, 1);
	weft_sleep_ns(20 * MS); /* the others wait meanwhile */
	if (n < 2)
		return -EAGAIN;
	g_try_value = (long)(intptr_t)arg;
	return 0;
}

static void *try_caller(void *arg)
{
	int rc = weft_once_try(&g_try, try_init, (void *)42);
	if (rc)
		return (void *)(intptr_t)rc;
	return (void *)(intptr_t)(g_try_value == 42 ? 0 : -1000);
}

Test(once, a_failed_try_is_run_again_by_the_next_caller, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h[12];
	for (int i = 0; i < 12; i++)
		cr_assert_eq(weft_spawn(rt, try_caller, NULL, &h[i]), 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, try_caller, NULL), 0);
	int ok = 0, failed = 0;
	for (int i = 0; i < 14; i++) {
		void *r;
		if (i < 12)
			cr_assert_eq(weft_join(h[i], &r), 0);
		else
			pthread_join(th[i - 12], &r);
		if ((intptr_t)r == 0)
			ok++;
		else if ((intptr_t)r == -EAGAIN)
			failed++;
		else
			cr_assert_fail("caller %d: %ld", i, (long)(intptr_t)r);
	}
	cr_assert_eq(atomic_load(&g_try_runs), 3, "fn ran %d times", atomic_load(&g_try_runs));
	cr_assert_eq(failed, 2, "%d callers saw the failure", failed);
	cr_assert_eq(ok, 12);
	cr_assert(weft_once_done(&g_try));
	cr_assert_eq(weft_once_try(&g_try, try_init, NULL), 0, "later calls return at once");
	cr_assert_eq(atomic_load(&g_try_runs), 3);
	struct weft_once o = WEFT_ONCE_INIT;
	cr_assert_eq(weft_once_try(&o, NULL, NULL), -EINVAL);
	cr_assert_eq(weft_once_try(NULL, try_init, NULL), -EINVAL);
	wt_rt_destroy(rt);
}

/* A failed try wakes its waiters and returns its error: it does not wait
 * for the next run. With more waiters than one batch of wakes (16), the
 * woken ones that found the next run under way linked again, and the
 * failed caller went on waking them until that run ended - a CPU spinning
 * for all of the next run before it got its -EAGAIN back (found by a
 * review). Three rounds: the storm needs the woken waiters to link again
 * before the last batch is out, which most rounds see. */
/* The next run takes STORM_NEXT_MS and the failed caller must be back in
 * half of it: waking 400 threads on 2 busy vCPUs may take a good part of
 * the 300 ms the bound was beside a 600 ms run, and the bound is not
 * scaled for sanitizers. */
enum { STORM_WAITERS = 400, STORM_ROUNDS = 3, STORM_NEXT_MS = 1500 };
static struct weft_once g_storm;
static atomic_int g_storm_runs, g_storm_calling;
static atomic_bool g_storm_running;
static _Atomic uint64_t g_storm_failed_at;

static int storm_init(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&g_storm_runs, 1) == 0) {
		atomic_store(&g_storm_running, true);
		WT_WAIT_UNTIL(atomic_load(&g_storm_calling) == STORM_WAITERS, WT_LONG_MS);
		wt_sleep_ms(50); /* every waiter linked */
		atomic_store(&g_storm_failed_at, wt_now_ns());
		return -EAGAIN;
	}
	wt_sleep_ms(STORM_NEXT_MS); /* the next run, slow */
	return 0;
}

static void *storm_waiter(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_storm_running))
		usleep(1000);
	atomic_fetch_add(&g_storm_calling, 1);
	return (void *)(intptr_t)weft_once_try(&g_storm, storm_init, NULL);
}

Test(once, a_failed_try_returns_without_waiting_for_the_next_run, .timeout = WT_TMO(60))
{
	for (int round = 0; round < STORM_ROUNDS; round++) {
		g_storm = (struct weft_once)WEFT_ONCE_INIT;
		atomic_store(&g_storm_runs, 0);
		atomic_store(&g_storm_calling, 0);
		atomic_store(&g_storm_running, false);
		pthread_t th[STORM_WAITERS];
		for (int i = 0; i < STORM_WAITERS; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, storm_waiter, NULL), 0);
		cr_assert_eq(weft_once_try(&g_storm, storm_init, NULL), -EAGAIN);
		uint64_t late = (wt_now_ns() - atomic_load(&g_storm_failed_at)) / MS;
		for (int i = 0; i < STORM_WAITERS; i++) {
			void *r;
			pthread_join(th[i], &r);
			cr_assert_null(r, "waiter %d: %ld", i, (long)(intptr_t)r);
		}
		cr_assert_eq(atomic_load(&g_storm_runs), 2);
		cr_assert(weft_once_done(&g_storm));
		cr_assert_lt(late, STORM_NEXT_MS / 2, "round %d: the failed caller returned %llu ms "
			     "after its fn failed (the next run took %d)", round,
			     (unsigned long long)late, STORM_NEXT_MS);
	}
}

/* fn calling weft_once (or weft_once_try) on its own once, from a plain
 * thread and from a fiber: -EDEADLK at once, and the outer call finishes
 * (0, done). It waited for itself, for good (found by a review). Callers
 * that are not fn's task or thread still wait for it and get 0. */
struct once_rec {
	struct weft_once o;
	atomic_int inner, inner_try, started, done;
	atomic_int others_ok;
};

static int rec_try_init(void *arg)
{
	struct once_rec *r = arg;
	atomic_store(&r->inner_try, weft_once_try(&r->o, rec_try_init, arg));
	return 0;
}

static void rec_init(void *arg)
{
	struct once_rec *r = arg;
	atomic_store(&r->started, 1);
	weft_sleep_ns(30 * MS); /* the others arrive and wait meanwhile */
	atomic_store(&r->inner, weft_once(&r->o, rec_init, arg));
	atomic_store(&r->inner_try, weft_once_try(&r->o, rec_try_init, arg));
}

static void *rec_outer(void *arg)
{
	struct once_rec *r = arg;
	int rc = weft_once(&r->o, rec_init, arg);
	atomic_store(&r->done, 1);
	return (void *)(intptr_t)rc;
}

static void *rec_other(void *arg)
{
	struct once_rec *r = arg;
	while (!atomic_load(&r->started)) {
		if (weft_in_fiber())
			weft_yield(); /* leave the worker to fn's fiber */
		else
			usleep(100);
	}
	if (weft_once(&r->o, rec_init, arg) == 0 && weft_once_done(&r->o))
		atomic_fetch_add(&r->others_ok, 1);
	return NULL;
}

static struct once_rec g_rec_try;

static void *rec_try_outer(void *arg)
{
	(void)arg;
	int rc = weft_once_try(&g_rec_try.o, rec_try_init, &g_rec_try);
	atomic_store(&g_rec_try.done, 1);
	return (void *)(intptr_t)rc;
}

Test(once, called_from_its_own_fn_is_edeadlk, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	static struct once_rec rec[2];
	for (int k = 0; k < 2; k++) {
		struct once_rec *r = &rec[k];
		*r = (struct once_rec){ .o = WEFT_ONCE_INIT, .inner = 1, .inner_try = 1 };
		pthread_t outer_th, other_th;
		struct weft_task *outer_f = NULL, *other_f;
		if (k == 0)
			cr_assert_eq(pthread_create(&outer_th, NULL, rec_outer, r), 0);
		else
			cr_assert_eq(weft_spawn(rt, rec_outer, r, &outer_f), 0);
		cr_assert_eq(pthread_create(&other_th, NULL, rec_other, r), 0);
		cr_assert_eq(weft_spawn(rt, rec_other, r, &other_f), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&r->done), 3000),
			  "%s: fn's own weft_once waited for itself", k ? "fiber" : "thread");
		cr_assert_eq(atomic_load(&r->inner), -EDEADLK);
		cr_assert_eq(atomic_load(&r->inner_try), -EDEADLK);
		void *rc;
		if (k == 0)
			pthread_join(outer_th, &rc);
		else
			cr_assert_eq(weft_join(outer_f, &rc), 0);
		cr_assert_eq((intptr_t)rc, 0);
		cr_assert(weft_once_done(&r->o));
		pthread_join(other_th, NULL);
		cr_assert_eq(weft_join(other_f, NULL), 0);
		cr_assert_eq(atomic_load(&r->others_ok), 2, "a caller other than fn's got an error");
	}
	/* weft_once_try's fn calling weft_once_try on its own once */
	g_rec_try = (struct once_rec){ .o = WEFT_ONCE_INIT, .inner_try = 1 };
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, rec_try_outer, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_rec_try.done), 3000),
		  "weft_once_try's fn waited for itself");
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_rec_try.inner_try), -EDEADLK);
	cr_assert(weft_once_done(&g_rec_try.o));
	wt_rt_destroy(rt);
}

/* A runner that never comes back from fn: a fiber discarded at shutdown
 * while suspended in it (it ignores -ECANCELED), a thread that exits in
 * it. The once stayed RUNNING for good: a thread already waiting, and
 * every later caller, waited for ever (found by a review). Now, as POSIX
 * says of a cancelled pthread_once routine, the call counts as never
 * made: the waiting thread is woken and runs its own fn. */
struct once_lost {
	struct weft_once o;
	atomic_int started, calling, ran, done, rc;
};

static void lost_spin_init(void *arg)
{
	struct once_lost *l = arg;
	atomic_store(&l->started, 1);
	for (;;)
		(void)weft_yield(); /* never returns: discarded at the timeout */
}

static void lost_exit_init(void *arg)
{
	struct once_lost *l = arg;
	atomic_store(&l->started, 1);
	WT_WAIT_UNTIL(atomic_load(&l->calling), WT_LONG_MS);
	wt_sleep_ms(20); /* the other caller waits meanwhile */
	pthread_exit(NULL);
}

static void lost_mark_init(void *arg)
{
	atomic_fetch_add(&((struct once_lost *)arg)->ran, 1);
}

/* the second caller: on a thread of its own, so a hang is a failed
 * WT_WAIT_UNTIL here, not a test timeout */
static void *lost_second_caller(void *arg)
{
	struct once_lost *l = arg;
	WT_WAIT_UNTIL(atomic_load(&l->started), WT_LONG_MS);
	atomic_store(&l->calling, 1);
	atomic_store(&l->rc, weft_once(&l->o, lost_mark_init, l));
	atomic_store(&l->done, 1);
	return NULL;
}

static void *lost_first_caller(void *arg)
{
	struct once_lost *l = arg;
	return (void *)(intptr_t)weft_once(&l->o, weft_in_fiber() ? lost_spin_init : lost_exit_init,
					    l);
}

Test(once, a_runner_that_never_returns_from_fn_leaves_it_not_done, .timeout = WT_TMO(60))
{
	static struct once_lost lost[2];
	for (int k = 0; k < 2; k++) {
		struct once_lost *l = &lost[k];
		*l = (struct once_lost){ .o = WEFT_ONCE_INIT, .rc = 1 };
		pthread_t first, second;
		struct weft_runtime *rt = NULL;
		if (k == 0) {
			WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
			cr_assert_eq(weft_runtime_create(&o, &rt), 0);
			cr_assert_eq(weft_spawn(rt, lost_first_caller, l, NULL), 0);
		} else {
			cr_assert_eq(pthread_create(&first, NULL, lost_first_caller, l), 0);
		}
		cr_assert_eq(pthread_create(&second, NULL, lost_second_caller, l), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&l->calling), WT_LONG_MS));
		if (k == 0) {
			wt_sleep_ms(20); /* the second caller waits meanwhile */
			int rc;
			while ((rc = weft_runtime_shutdown(rt, 100 * MS)) == -ETIMEDOUT)
				;
			cr_assert_eq(rc, 0);
			cr_assert_eq(weft_runtime_destroy(rt), 0);
		} else {
			pthread_join(first, NULL);
		}
		const char *how = k ? "a thread exited in fn" : "fn's fiber was discarded";
		cr_assert(WT_WAIT_UNTIL(atomic_load(&l->done), WT_LONG_MS),
			  "%s: the waiting caller waited for ever", how);
		pthread_join(second, NULL);
		cr_assert_eq(atomic_load(&l->rc), 0, "%s: %d", how, atomic_load(&l->rc));
		cr_assert_eq(atomic_load(&l->ran), 1, "%s: the waiting caller ran its fn", how);
		cr_assert(weft_once_done(&l->o));
		cr_assert_eq(weft_once(&l->o, lost_mark_init, l), 0);
		cr_assert_eq(atomic_load(&l->ran), 1, "later calls return at once");
	}
}

/* A fork while fibers of the parent run weft_once fns: a fiber running
 * fn keeps a record on one process-wide list, under one lock (once.c).
 * A parent thread that held that lock at the fork left it held in the
 * child for good, and the first fiber of a runtime made in the child to
 * run a weft_once fn waited on it for ever (found by a review). The
 * parent's fibers here run fn (a weft_once_try that fails, so the once is
 * run again) over and over while the children are forked. */
static atomic_bool g_fork_churn_stop;
static int fork_churn_fail(void *arg)
{
	(void)arg;
	return -1; /* not done: the next call runs fn again */
}
static void *fork_churn(void *arg)
{
	while (!atomic_load(&g_fork_churn_stop))
		(void)weft_once_try(arg, fork_churn_fail, NULL);
	return NULL;
}
static void fork_child_mark(void *arg) { *(int *)arg = 1; }
static void *fork_child_fiber(void *arg)
{
	(void)arg;
	struct weft_once o = WEFT_ONCE_INIT;
	int ran = 0;
	return (void *)(intptr_t)(weft_once(&o, fork_child_mark, &ran) == 0 && ran);
}

Test(once, a_child_forked_while_fibers_run_fn_runs_its_own_in_a_fiber, .timeout = WT_TMO(120))
{
	static struct weft_once churn[2] = { WEFT_ONCE_INIT, WEFT_ONCE_INIT };
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_spawn(rt, fork_churn, &churn[i], &t[i]), 0);
	wt_sleep_ms(20);
	int hung = 0, bad = 0, n;
	for (n = 0; n < 200 && !hung; n++) {
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			alarm(10 * WEFT_TEST_SLOW); /* a hang shows as SIGALRM */
			WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
			struct weft_runtime *crt;
			void *ok = NULL;
			struct weft_task *ct;
			if (weft_runtime_create(&o, &crt) || weft_spawn(crt, fork_child_fiber, NULL, &ct) ||
			    weft_join(ct, &ok) || !ok)
				_exit(3);
			_exit(weft_runtime_destroy(crt) ? 4 : 0);
		}
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
			hung++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	atomic_store(&g_fork_churn_stop, true);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_join(t[i], NULL), 0);
	cr_assert_eq(hung, 0, "child %d hung in a fiber's weft_once", n);
	cr_assert_eq(bad, 0, "%d of %d children failed otherwise", bad, n);
	wt_rt_destroy(rt);
}
