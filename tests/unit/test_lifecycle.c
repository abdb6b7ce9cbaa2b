/*
 * test_lifecycle.c - the life of a poll task and of its join handle.
 *
 * The matrix crosses what happens to the task
 *   ready    completes on its first poll
 *   woken    pending, then woken by value from a foreign thread, then ready
 *   abort_before   aborted before its first poll
 *   abort_running  aborted while its poll runs (the poll then returns PENDING
 *                  without arranging a wake: cancellation must happen when
 *                  the poll returns)
 *   abort_pending  aborted while idle and pending, holding a waker clone
 *   abort_after    aborted after completion (no effect)
 * with what happens to the handle
 *   join           weft_join (blocking where the task is not done yet)
 *   detach_early   detached before the first poll (or right after the abort)
 *   detach_late    detached after the task finished
 * and checks: drop runs exactly once, the poll count is exact, polls never
 * overlap, join returns 0 with the result pointer or -ECANCELED, and
 * weft_runtime_destroy returns 0 (no handle or waker leaked).
 *
 * Runtimes have one worker and a gate task (common/wt.h) holds it while the
 * test arranges "before the first poll" situations, which makes them
 * deterministic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

enum beh { B_READY, B_WOKEN, B_ABORT_BEFORE, B_ABORT_RUNNING, B_ABORT_PENDING, B_ABORT_AFTER };
enum hmode { H_JOIN, H_DETACH_EARLY, H_DETACH_LATE };

struct lc {
	enum beh beh;
	atomic_int polls, drops, in_poll, overlap, errors;
	atomic_int running; /* B_ABORT_RUNNING: the poll has started */
	atomic_int go;      /* B_ABORT_RUNNING: the poll may return */
	atomic_int stored;  /* a waker clone is in `waker` */
	weft_waker waker;
	int result_tag;     /* its address is the task's result */
};

static void lc_drop(void *s)
{
	struct lc *st = s;
	atomic_fetch_add(&st->drops, 1);
	if (atomic_load(&st->in_poll))
		atomic_fetch_add(&st->errors, 1); /* dropped while being polled */
}

static enum weft_poll lc_poll(void *s, struct weft_cx *cx)
{
	struct lc *st = s;
	if (atomic_fetch_add(&st->in_poll, 1) != 0)
		atomic_fetch_add(&st->overlap, 1);
	if (atomic_load(&st->drops))
		atomic_fetch_add(&st->errors, 1); /* polled after its drop */
	int n = atomic_fetch_add(&st->polls, 1) + 1;
	enum weft_poll ret = WEFT_READY;

	switch (st->beh) {
	case B_READY:
	case B_ABORT_BEFORE: /* must never run */
	case B_ABORT_AFTER:
		weft_cx_set_result(cx, &st->result_tag);
		break;
	case B_WOKEN:
		if (n == 1) {
			st->waker = weft_waker_clone(weft_cx_waker(cx));
			atomic_store_explicit(&st->stored, 1, memory_order_release);
			ret = WEFT_PENDING;
		} else {
			weft_cx_set_result(cx, &st->result_tag);
		}
		break;
	case B_ABORT_RUNNING:
		atomic_store(&st->running, 1);
		while (!atomic_load(&st->go))
			usleep(50);
		ret = WEFT_PENDING; /* nothing will wake it: only the abort ends it */
		break;
	case B_ABORT_PENDING:
		if (n == 1) {
			st->waker = weft_waker_clone(weft_cx_waker(cx));
			atomic_store_explicit(&st->stored, 1, memory_order_release);
		}
		ret = WEFT_PENDING;
		break;
	}
	atomic_fetch_sub(&st->in_poll, 1);
	return ret;
}

static void *waker_thread(void *arg)
{
	struct lc *st = arg;
	while (!atomic_load_explicit(&st->stored, memory_order_acquire))
		usleep(100);
	wt_sleep_ms(20); /* let the joiner block first */
	weft_waker_wake(&st->waker);
	return NULL;
}

static struct lc lc_st;
static struct wt_gate lc_gate;

static void lifecycle(enum beh beh, enum hmode hm)
{
	struct lc *st = &lc_st;
	memset(st, 0, sizeof *st);
	st->beh = beh;
	struct weft_runtime *rt = wt_rt_create(1);
	wt_gate_hold(rt, &lc_gate);

	struct weft_task *h = NULL;
	int rc = weft_spawn_poll(rt, lc_poll, st, lc_drop, &h);
	cr_assert_eq(rc, 0, "spawn = %d", rc);
	cr_assert_not_null(h);
	cr_assert_neq(weft_task_id(h), 0);
	cr_assert_not(weft_task_is_finished(h), "finished before its first poll");

	if (beh == B_ABORT_BEFORE)
		cr_assert_eq(weft_abort(h), 0);
	if (hm == H_DETACH_EARLY && (beh == B_READY || beh == B_WOKEN || beh == B_ABORT_BEFORE)) {
		cr_assert_eq(weft_detach(h), 0);
		h = NULL;
	}
	cr_assert_eq(atomic_load(&st->polls), 0, "polled while the only worker was busy");
	wt_gate_open(&lc_gate);

	pthread_t wth = 0;
	switch (beh) {
	case B_WOKEN:
		cr_assert_eq(pthread_create(&wth, NULL, waker_thread, st), 0);
		break;
	case B_ABORT_RUNNING:
		cr_assert(WT_WAIT_UNTIL(atomic_load(&st->running), WT_LONG_MS), "never polled");
		cr_assert_not(weft_task_is_finished(h), "finished while its poll runs");
		cr_assert_eq(weft_abort(h), 0);
		if (hm == H_DETACH_EARLY) {
			cr_assert_eq(weft_detach(h), 0);
			h = NULL;
		}
		wt_sleep_ms(5);
		cr_assert_eq(atomic_load(&st->drops), 0, "dropped while its poll runs");
		if (h)
			cr_assert_not(weft_task_is_finished(h), "finished while its poll runs");
		atomic_store(&st->go, 1);
		break;
	case B_ABORT_PENDING:
		cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&st->stored, memory_order_acquire),
					WT_LONG_MS), "never polled");
		cr_assert(WT_WAIT_UNTIL(atomic_load(&st->in_poll) == 0, WT_LONG_MS));
		cr_assert_eq(weft_abort(h), 0);
		if (hm == H_DETACH_EARLY) {
			cr_assert_eq(weft_detach(h), 0);
			h = NULL;
		}
		break;
	case B_ABORT_AFTER:
		cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(h), WT_LONG_MS), "never finished");
		cr_assert_eq(weft_abort(h), 0, "abort of a finished task");
		if (hm == H_DETACH_EARLY) {
			cr_assert_eq(weft_detach(h), 0);
			h = NULL;
		}
		break;
	default:
		break;
	}

	bool cancelled = beh == B_ABORT_BEFORE || beh == B_ABORT_RUNNING || beh == B_ABORT_PENDING;
	if (h && hm == H_JOIN) {
		void *res = (void *)0x1;
		rc = weft_join(h, &res);
		if (cancelled) {
			cr_assert_eq(rc, -ECANCELED, "join of an aborted task = %d", rc);
		} else {
			cr_assert_eq(rc, 0, "join = %d (%s)", rc, weft_strerror(rc));
			cr_assert_eq(res, &st->result_tag, "join result %p, want %p", res,
				     (void *)&st->result_tag);
		}
		h = NULL;
	} else if (h) {
		cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(h), WT_LONG_MS), "never finished");
		cr_assert_eq(weft_detach(h), 0);
		h = NULL;
	}
	/* drop runs on completion / cancellation, not only at destroy */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&st->drops) == 1, WT_LONG_MS),
		  "drop ran %d times after the task finished", atomic_load(&st->drops));

	if (beh == B_ABORT_PENDING) {
		/* waking a cancelled task is a no-op (and consumes the clone) */
		weft_waker_wake(&st->waker);
		wt_sleep_ms(20);
	}
	if (beh == B_WOKEN)
		cr_assert_eq(pthread_join(wth, NULL), 0);

	wt_rt_destroy(rt);

	static const int want_polls[] = {
		[B_READY] = 1, [B_WOKEN] = 2, [B_ABORT_BEFORE] = 0,
		[B_ABORT_RUNNING] = 1, [B_ABORT_PENDING] = 1, [B_ABORT_AFTER] = 1,
	};
	cr_assert_eq(atomic_load(&st->drops), 1, "drop ran %d times", atomic_load(&st->drops));
	cr_assert_eq(atomic_load(&st->polls), want_polls[beh], "polled %d times, want %d",
		     atomic_load(&st->polls), want_polls[beh]);
	cr_assert_eq(atomic_load(&st->overlap), 0, "two polls of one task overlapped");
	cr_assert_eq(atomic_load(&st->errors), 0, "polled after drop, or dropped during a poll");
	cr_assert_eq(atomic_load(&lc_gate.drops), 1);
}

#define LC(b, bn, m, mn)                                                         \
	Test(lifecycle, bn##__##mn, .timeout = WT_TMO(15)) { lifecycle(b, m); }
#define LC_ROW(b, bn)                                                            \
	LC(b, bn, H_JOIN, join)                                                  \
	LC(b, bn, H_DETACH_EARLY, detach_early)                                  \
	LC(b, bn, H_DETACH_LATE, detach_late)

LC_ROW(B_READY, ready)
LC_ROW(B_WOKEN, woken)
LC_ROW(B_ABORT_BEFORE, abort_before)
LC_ROW(B_ABORT_RUNNING, abort_running)
LC_ROW(B_ABORT_PENDING, abort_pending)
LC_ROW(B_ABORT_AFTER, abort_after)

/* ------------------------------------------------------------ wakers */

/* A task that stays pending, storing waker clones; it completes once `done`
 * is set and it is polled. Records the poll count. */
struct pend {
	atomic_int polls, drops, in_poll, overlap;
	atomic_int running, go; /* optional spin inside the first poll */
	atomic_int spin_first;
	atomic_int done;
	atomic_int stored;
	weft_waker w1, w2;
};

static enum weft_poll pend_poll(void *s, struct weft_cx *cx)
{
	struct pend *p = s;
	if (atomic_fetch_add(&p->in_poll, 1) != 0)
		atomic_fetch_add(&p->overlap, 1);
	int n = atomic_fetch_add(&p->polls, 1) + 1;
	bool done = atomic_load(&p->done); /* read at entry: set later, it needs a wake */
	if (n == 1) {
		p->w1 = weft_waker_clone(weft_cx_waker(cx));
		p->w2 = weft_waker_clone(&p->w1);
		atomic_store_explicit(&p->stored, 1, memory_order_release);
		if (atomic_load(&p->spin_first)) {
			atomic_store(&p->running, 1);
			while (!atomic_load(&p->go))
				usleep(50);
		}
	}
	enum weft_poll r = done ? WEFT_READY : WEFT_PENDING;
	atomic_fetch_sub(&p->in_poll, 1);
	return r;
}

static void pend_drop(void *s)
{
	struct pend *p = s;
	atomic_fetch_add(&p->drops, 1);
}

static struct pend pend_st;

Test(waker, wake_after_completion_is_noop, .timeout = WT_TMO(10))
{
	struct pend *p = &pend_st;
	memset(p, 0, sizeof *p);
	atomic_store(&p->done, 1); /* completes on the first poll, keeping clones */
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, pend_poll, p, pend_drop, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p->drops) == 1, WT_LONG_MS));
	cr_assert(weft_waker_will_wake(&p->w1, &p->w2), "two clones of one task's waker");

	weft_waker_wake_by_ref(&p->w2);
	weft_waker_wake_by_ref(&p->w2);
	weft_waker_wake(&p->w1);
	weft_waker_drop(&p->w2);
	wt_sleep_ms(30);
	cr_assert_eq(atomic_load(&p->polls), 1, "a completed task was polled again");
	cr_assert_eq(atomic_load(&p->drops), 1);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&p->drops), 1);
}

Test(waker, double_wake_enqueues_once, .timeout = WT_TMO(10))
{
	struct pend *p = &pend_st;
	memset(p, 0, sizeof *p);
	struct wt_gate g;
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, pend_poll, p, pend_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&p->stored, memory_order_acquire) &&
				atomic_load(&p->in_poll) == 0, WT_LONG_MS));
	cr_assert_eq(atomic_load(&p->polls), 1);

	/* the only worker is busy: every wake below lands while the task is
	 * idle or already scheduled, so they must coalesce into one poll */
	wt_gate_hold(rt, &g);
	weft_waker_wake_by_ref(&p->w1);
	weft_waker_wake_by_ref(&p->w2);
	weft_waker w3 = weft_waker_clone(&p->w1);
	weft_waker_wake(&w3);
	weft_waker_wake_by_ref(&p->w1);
	wt_gate_open(&g);

	cr_assert(WT_WAIT_UNTIL(atomic_load(&p->polls) >= 2, WT_LONG_MS), "the wake was lost");
	wt_sleep_ms(50);
	cr_assert_eq(atomic_load(&p->polls), 2, "4 wakes of a queued task gave %d polls, want 1",
		     atomic_load(&p->polls) - 1);

	/* a final wake by value completes it */
	atomic_store(&p->done, 1);
	weft_waker_wake(&p->w1);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&p->polls), 3);
	weft_waker_drop(&p->w2);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&p->drops), 1);
	cr_assert_eq(atomic_load(&p->overlap), 0);
}

Test(waker, wake_while_running_repolls_after_return, .timeout = WT_TMO(10))
{
	struct pend *p = &pend_st;
	memset(p, 0, sizeof *p);
	atomic_store(&p->spin_first, 1);
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, pend_poll, p, pend_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p->running), WT_LONG_MS));

	/* woken from a foreign thread during its poll, which then returns
	 * PENDING without arranging anything itself */
	atomic_store(&p->done, 1);
	weft_waker_wake_by_ref(&p->w1);
	wt_sleep_ms(10);
	cr_assert_eq(atomic_load(&p->polls), 1, "re-polled while still running");
	atomic_store(&p->go, 1);

	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(h), WT_LONG_MS),
		  "a wake during the poll was lost");
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&p->polls), 2);
	cr_assert_eq(atomic_load(&p->overlap), 0, "the re-poll overlapped the running poll");
	weft_waker_drop(&p->w1);
	weft_waker_drop(&p->w2);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&p->drops), 1);
}

Test(waker, will_wake_distinguishes_tasks, .timeout = WT_TMO(10))
{
	static struct pend a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *ha, *hb;
	cr_assert_eq(weft_spawn_poll(rt, pend_poll, &a, pend_drop, &ha), 0);
	cr_assert_eq(weft_spawn_poll(rt, pend_poll, &b, pend_drop, &hb), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load_explicit(&a.stored, memory_order_acquire) &&
				atomic_load_explicit(&b.stored, memory_order_acquire), WT_LONG_MS));
	cr_assert(weft_waker_will_wake(&a.w1, &a.w2));
	cr_assert_not(weft_waker_will_wake(&a.w1, &b.w1));
	atomic_store(&a.done, 1);
	atomic_store(&b.done, 1);
	weft_waker_wake(&a.w1);
	weft_waker_wake(&b.w2);
	cr_assert_eq(weft_join(ha, NULL), 0);
	cr_assert_eq(weft_join(hb, NULL), 0);
	weft_waker_drop(&a.w2);
	weft_waker_drop(&b.w1);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&a.drops) + atomic_load(&b.drops), 2);
}

/* ------------------------------------------------------------- yield */

#define ORDER_MAX 16
static atomic_int order_n;
static int order[ORDER_MAX];

struct yld {
	int tag;
	int yields;     /* times to yield before completing */
	atomic_int polls;
};

static enum weft_poll yld_poll(void *s, struct weft_cx *cx)
{
	struct yld *y = s;
	int i = atomic_fetch_add(&order_n, 1);
	if (i < ORDER_MAX)
		order[i] = y->tag;
	if (atomic_fetch_add(&y->polls, 1) < y->yields) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

Test(yield, self_wake_repolls_exactly, .timeout = WT_TMO(10))
{
	static struct yld y = { .tag = 1, .yields = 1000 };
	atomic_store(&y.polls, 0);
	static atomic_int drops;
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, yld_poll, &y, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(atomic_load(&y.polls), 1001);
	/* a NULL drop is allowed */
	cr_assert_eq(weft_spawn_poll(rt, wt_poll_ready, &drops, wt_drop_count, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&drops) == 1, WT_LONG_MS));
	wt_rt_destroy(rt);
}

/* "A task that wakes its own waker by reference and returns PENDING yields:
 * it is polled again after the tasks already queued." */
Test(yield, runs_after_already_queued_tasks, .timeout = WT_TMO(10))
{
	static struct yld a = { .tag = 'A', .yields = 1 };
	static struct yld b = { .tag = 'B' }, c = { .tag = 'C' };
	struct wt_gate g;
	struct weft_runtime *rt = wt_rt_create(1);
	wt_gate_hold(rt, &g);
	struct weft_task *h[3];
	cr_assert_eq(weft_spawn_poll(rt, yld_poll, &a, NULL, &h[0]), 0);
	cr_assert_eq(weft_spawn_poll(rt, yld_poll, &b, NULL, &h[1]), 0);
	cr_assert_eq(weft_spawn_poll(rt, yld_poll, &c, NULL, &h[2]), 0);
	wt_gate_open(&g);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	cr_assert_eq(atomic_load(&order_n), 4);
	cr_assert(order[0] == 'A' && order[1] == 'B' && order[2] == 'C' && order[3] == 'A',
		  "poll order %c%c%c%c, want ABCA", order[0], order[1], order[2], order[3]);
	wt_rt_destroy(rt);
}

/* --------------------------------------------------- join_poll in a task */

struct child {
	atomic_int polls, drops;
	int yields;
	int tag;
};

static enum weft_poll child_poll(void *s, struct weft_cx *cx)
{
	struct child *c = s;
	if (atomic_fetch_add(&c->polls, 1) < c->yields) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	weft_cx_set_result(cx, &c->tag);
	return WEFT_READY;
}

static void child_drop(void *s)
{
	struct child *c = s;
	atomic_fetch_add(&c->drops, 1);
}

struct parent {
	struct child ch;
	struct weft_task *h;
	bool abort_child;
	atomic_int polls, drops, errors, pendings;
	int join_rc;
	void *got;
	int tag;
};

static enum weft_poll parent_poll(void *s, struct weft_cx *cx)
{
	struct parent *p = s;
	atomic_fetch_add(&p->polls, 1);
	if (!p->h) {
		int rc = weft_spawn_poll(weft_cx_runtime(cx), child_poll, &p->ch, child_drop, &p->h);
		if (rc != 0 || !p->h) {
			atomic_fetch_add(&p->errors, 1);
			return WEFT_READY;
		}
		void *r = NULL;
		if (weft_join_poll(NULL, cx, &r) != -EINVAL)
			atomic_fetch_add(&p->errors, 1);
		if (weft_join_poll(p->h, NULL, &r) != -EINVAL) /* must not consume */
			atomic_fetch_add(&p->errors, 1);
		if (p->abort_child && weft_abort(p->h) != 0)
			atomic_fetch_add(&p->errors, 1);
	}
	void *res = (void *)0x1;
	int rc = weft_join_poll(p->h, cx, &res);
	if (rc == WEFT_PENDING) {
		atomic_fetch_add(&p->pendings, 1);
		return WEFT_PENDING;
	}
	p->join_rc = rc;
	p->got = res;
	p->h = NULL;
	weft_cx_set_result(cx, &p->tag);
	return WEFT_READY;
}

static void parent_drop(void *s)
{
	struct parent *p = s;
	atomic_fetch_add(&p->drops, 1);
}

static void join_poll_case(bool abort_child, int yields)
{
	static struct parent p;
	memset(&p, 0, sizeof p);
	p.abort_child = abort_child;
	p.ch.yields = yields;
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, parent_poll, &p, parent_drop, &h), 0);
	void *res = NULL;
	cr_assert_eq(weft_join(h, &res), 0);
	cr_assert_eq(res, &p.tag);
	cr_assert_eq(atomic_load(&p.errors), 0, "spawn from a task failed or join_poll "
		     "accepted a NULL argument");
	/* one worker: the child (in the LIFO slot) cannot have run before the
	 * parent's first join_poll, which therefore must be PENDING */
	cr_assert_geq(atomic_load(&p.pendings), 1, "join_poll never returned PENDING");
	if (abort_child) {
		cr_assert_eq(p.join_rc, -ECANCELED, "join_poll of an aborted child = %d", p.join_rc);
		cr_assert_eq(atomic_load(&p.ch.polls), 0, "aborted child was polled");
	} else {
		cr_assert_eq(p.join_rc, 0, "join_poll = %d", p.join_rc);
		cr_assert_eq(p.got, &p.ch.tag, "join_poll result %p", p.got);
		cr_assert_eq(atomic_load(&p.ch.polls), yields + 1);
	}
	cr_assert_eq(atomic_load(&p.polls), atomic_load(&p.pendings) + 1);
	wt_rt_destroy(rt);
	cr_assert_eq(atomic_load(&p.drops), 1);
	cr_assert_eq(atomic_load(&p.ch.drops), 1);
}

Test(join_poll, child_ready, .timeout = WT_TMO(10)) { join_poll_case(false, 0); }
Test(join_poll, child_yields, .timeout = WT_TMO(10)) { join_poll_case(false, 5); }
Test(join_poll, child_aborted, .timeout = WT_TMO(10)) { join_poll_case(true, 0); }

/* ------------------------------------------------------ ids and results */

struct idt {
	atomic_ullong cx_id;
	struct weft_runtime *_Atomic cx_rt;
	atomic_int drops;
	int idx;
};

static enum weft_poll idt_poll(void *s, struct weft_cx *cx)
{
	struct idt *t = s;
	atomic_store(&t->cx_id, weft_cx_task_id(cx));
	atomic_store(&t->cx_rt, weft_cx_runtime(cx));
	weft_cx_set_result(cx, (void *)(uintptr_t)(t->idx * 8 + 8));
	return WEFT_READY;
}

static void idt_drop(void *s)
{
	struct idt *t = s;
	atomic_fetch_add(&t->drops, 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

Test(task, ids_unique_nonzero_and_results_delivered, .timeout = WT_TMO(20))
{
	enum { PER = 1000 };
	static struct idt st[2 * PER];
	static uint64_t ids[2 * PER];
	struct weft_runtime *rt[2] = { wt_rt_create(2), wt_rt_create(1) };
	struct weft_task **h = calloc(2 * PER, sizeof *h);
	cr_assert_not_null(h);
	for (int i = 0; i < 2 * PER; i++) {
		memset(&st[i], 0, sizeof st[i]);
		st[i].idx = i;
		cr_assert_eq(weft_spawn_poll(rt[i % 2], idt_poll, &st[i], idt_drop, &h[i]), 0);
		ids[i] = weft_task_id(h[i]);
		cr_assert_neq(ids[i], 0, "task id 0");
	}
	for (int i = 0; i < 2 * PER; i++) {
		void *res = NULL;
		cr_assert_eq(weft_join(h[i], &res), 0);
		cr_assert_eq(res, (void *)(uintptr_t)(i * 8 + 8), "task %d: result %p", i, res);
		cr_assert_eq(atomic_load(&st[i].cx_id), ids[i],
			     "weft_cx_task_id %llu != weft_task_id %llu",
			     (unsigned long long)atomic_load(&st[i].cx_id),
			     (unsigned long long)ids[i]);
		cr_assert_eq(atomic_load(&st[i].cx_rt), rt[i % 2], "weft_cx_runtime is not the spawner's");
	}
	qsort(ids, 2 * PER, sizeof ids[0], cmp_u64);
	for (int i = 1; i < 2 * PER; i++)
		cr_assert_neq(ids[i], ids[i - 1], "task id %llu used twice",
			      (unsigned long long)ids[i]);
	wt_rt_destroy(rt[0]);
	wt_rt_destroy(rt[1]);
	for (int i = 0; i < 2 * PER; i++)
		cr_assert_eq(atomic_load(&st[i].drops), 1);
	free(h);
}

/* weft_current_task_id: the running task's id from every kind of task,
 * and 0 outside one. A fiber had no way to its own id (only a poll task's
 * cx said it). */
static _Atomic uint64_t cur_id[9];
static struct weft_runtime *cur_rt;
static void *cur_nested(void *arg)
{
	atomic_store((_Atomic uint64_t *)arg, weft_current_task_id() + 1);
	return NULL;
}
/* a weft_block_on fn called from a task's code is still the task's, as
 * weft_join counts it: a fiber's said the fiber, a poll task's and a
 * job's 0 (found by a review) */
static void block_on_nested(_Atomic uint64_t *slot)
{
	if (weft_block_on(cur_rt, cur_nested, (void *)slot, NULL))
		atomic_store(slot, UINT64_MAX);
}
static void *cur_in_place(void *arg)
{
	atomic_store(&cur_id[2], weft_current_task_id());
	block_on_nested(&cur_id[6]);
	return arg;
}
static void *cur_poll_in_place(void *arg)
{
	block_on_nested(&cur_id[7]);
	return arg;
}
static void *cur_fiber(void *arg)
{
	atomic_store(&cur_id[0], weft_current_task_id());
	weft_yield(); /* the same after a resume, wherever it runs */
	atomic_store(&cur_id[1], weft_current_task_id());
	weft_block_in_place(cur_in_place, NULL, NULL);
	return arg;
}
static enum weft_poll cur_poll(void *state, struct weft_cx *cx)
{
	atomic_store(&cur_id[3], weft_current_task_id() == weft_cx_task_id(cx) ? weft_cx_task_id(cx) : 1);
	weft_block_in_place(cur_poll_in_place, NULL, NULL);
	return WEFT_READY;
}
static void *cur_job(void *arg)
{
	atomic_store(&cur_id[4], weft_current_task_id());
	block_on_nested(&cur_id[8]);
	return arg;
}
static void *cur_block_on(void *arg) { atomic_store(&cur_id[5], weft_current_task_id() + 1); return arg; }

Test(task, the_current_task_id_from_each_kind_of_task, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = cur_rt = wt_rt_create(2);
	cr_assert_eq(weft_current_task_id(), 0, "a plain thread");
	struct weft_task *f, *p, *j;
	cr_assert_eq(weft_spawn(rt, cur_fiber, NULL, &f), 0);
	cr_assert_eq(weft_spawn_poll(rt, cur_poll, NULL, NULL, &p), 0);
	cr_assert_eq(weft_spawn_blocking(rt, cur_job, NULL, &j), 0);
	uint64_t fid = weft_task_id(f), pid = weft_task_id(p), jid = weft_task_id(j);
	cr_assert_eq(weft_join(f, NULL), 0);
	cr_assert_eq(weft_join(p, NULL), 0);
	cr_assert_eq(weft_join(j, NULL), 0);
	cr_assert_eq(weft_block_on(rt, cur_block_on, NULL, NULL), 0);
	cr_assert_eq(atomic_load(&cur_id[0]), fid, "a fiber: %llu, its id %llu",
		     (unsigned long long)atomic_load(&cur_id[0]), (unsigned long long)fid);
	cr_assert_eq(atomic_load(&cur_id[1]), fid, "a fiber after a yield");
	cr_assert_eq(atomic_load(&cur_id[2]), fid, "a fiber's block_in_place fn");
	cr_assert_eq(atomic_load(&cur_id[3]), pid, "a poll task (and its cx's id)");
	cr_assert_eq(atomic_load(&cur_id[4]), jid, "a blocking job");
	cr_assert_eq(atomic_load(&cur_id[5]), 1, "a block_on fn is no task: %llu",
		     (unsigned long long)atomic_load(&cur_id[5]) - 1);
	cr_assert_eq(atomic_load(&cur_id[6]), fid + 1, "a block_on fn in a fiber's in-place fn: %llu",
		     (unsigned long long)atomic_load(&cur_id[6]) - 1);
	cr_assert_eq(atomic_load(&cur_id[7]), pid + 1, "a block_on fn in a poll task's in-place fn: %llu",
		     (unsigned long long)atomic_load(&cur_id[7]) - 1);
	cr_assert_eq(atomic_load(&cur_id[8]), jid + 1, "a block_on fn in a blocking job: %llu",
		     (unsigned long long)atomic_load(&cur_id[8]) - 1);
	wt_rt_destroy(rt);
}

/* A task cancelled before its first poll has its drop run by the worker
 * that takes it, with no poll of its own. There weft_current_task_id said
 * the id of the task polled before it on that worker (the LIFO chain's
 * parent, here already completed and its memory back on the free list),
 * not its own as in the drop of a task that completed (found by a
 * review). The parent spawns the child (to its LIFO slot: it runs next,
 * on the same worker, with the same poll context) and aborts it. */
static _Atomic uint64_t cd_child_id, cd_drop_id;
static struct weft_task *cd_child;

static void cd_drop(void *state)
{
	atomic_store(&cd_drop_id, weft_current_task_id() + 1);
}

static enum weft_poll cd_parent(void *state, struct weft_cx *cx)
{
	struct weft_task *h;
	if (weft_spawn_poll(weft_cx_runtime(cx), wt_poll_ready, NULL, cd_drop, &h) ||
	    weft_abort(h))
		return WEFT_READY;
	atomic_store(&cd_child_id, weft_task_id(h));
	cd_child = h;
	return WEFT_READY;
}

Test(task, the_current_task_id_in_the_drop_of_a_task_cancelled_before_its_poll,
     .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	for (int i = 0; i < 20; i++) {
		atomic_store(&cd_drop_id, 0);
		cd_child = NULL;
		struct weft_task *p;
		cr_assert_eq(weft_spawn_poll(rt, cd_parent, NULL, NULL, &p), 0);
		uint64_t pid = weft_task_id(p);
		cr_assert_eq(weft_join(p, NULL), 0);
		cr_assert_not_null(cd_child, "the parent could not spawn or abort its child");
		cr_assert_eq(weft_join(cd_child, NULL), -ECANCELED);
		uint64_t got = atomic_load(&cd_drop_id) - 1;
		cr_assert_eq(got, atomic_load(&cd_child_id),
			     "round %d: the cancelled child's drop saw task id %llu "
			     "(child %llu, parent %llu)", i, (unsigned long long)got,
			     (unsigned long long)atomic_load(&cd_child_id),
			     (unsigned long long)pid);
	}
	wt_rt_destroy(rt);
}

/* ----------------------------------------- shutdown's edges (a review's) */

static atomic_bool sh_release;

/* A fiber that ignores its cancellation until released: a shutdown
 * without a limit waits for it, holding the shutdown in progress. */
static void *sh_stubborn(void *arg)
{
	atomic_store((atomic_bool *)arg, true);
	while (!atomic_load(&sh_release))
		usleep(1000);
	return NULL;
}

static void *sh_forever(void *rt)
{
	return (void *)(intptr_t)weft_runtime_shutdown(rt, WEFT_FOREVER);
}

static void *sh_nop(void *arg)
{
	return arg;
}

static atomic_int bo_ran;
static void *bo_fn(void *arg)
{
	atomic_fetch_add(&bo_ran, 1);
	return arg;
}

/* A shutdown's limit covers the wait for another shutdown in progress
 * (before: 100 ms asked, ~3 s taken, 0 returned); block_on is refused
 * once a shutdown has begun (before: it ran fn, whose spawns failed). */
Test(shutdown_edges, a_limit_covers_a_concurrent_shutdown_and_block_on_is_refused,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	atomic_store(&sh_release, false);
	atomic_bool started = false;
	cr_assert_eq(weft_spawn(rt, sh_stubborn, &started, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&started), WT_LONG_MS));
	pthread_t a;
	cr_assert_eq(pthread_create(&a, NULL, sh_forever, rt), 0);
	/* the shutdown has begun once spawns are refused */
	cr_assert(WT_WAIT_UNTIL(weft_spawn(rt, sh_nop, NULL, NULL) == -ESHUTDOWN, WT_LONG_MS));
	void *res = NULL;
	cr_assert_eq(weft_block_on(rt, bo_fn, &res, &res), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&bo_ran), 0, "block_on ran fn during a shutdown");
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_runtime_shutdown(rt, 100 * 1000000ull), -ETIMEDOUT);
	uint64_t took = wt_now_ns() - t0;
	cr_assert_geq(took, 100 * 1000000ull);
	cr_assert_lt(took, 1500 * 1000000ull, "a 100 ms shutdown took %llu ms",
		     (unsigned long long)(took / 1000000));
	atomic_store(&sh_release, true);
	void *ra;
	cr_assert_eq(pthread_join(a, &ra), 0);
	cr_assert_eq((intptr_t)ra, 0);
	cr_assert_eq(weft_runtime_shutdown(rt, 0), 0, "shut down: idempotent");
	wt_rt_destroy(rt);
}

struct job_sd {
	struct weft_runtime *rt, *other;
	struct weft_runtime *current;
	int shutdown_rc, destroy_rc, nested_rc, nested_other_rc, block_on_rc[2];
};

static void *shutdown_in_block_on(void *arg)
{
	struct job_sd *j = arg;
	return (void *)(intptr_t)weft_runtime_shutdown(j->rt, WEFT_FOREVER);
}

static void *job_shuts_down(void *arg)
{
	struct job_sd *j = arg;
	j->current = weft_runtime_current();
	j->shutdown_rc = weft_runtime_shutdown(j->rt, WEFT_FOREVER);
	j->destroy_rc = weft_runtime_destroy(j->rt);
	/* one call deeper, through block_on on its own runtime and on another
	 * (a review's: block_on's context forgot the pool thread, and the
	 * shutdown waited for it) */
	void *r = (void *)1;
	j->block_on_rc[0] = weft_block_on(j->rt, shutdown_in_block_on, j, &r);
	j->nested_rc = (int)(intptr_t)r;
	r = (void *)1;
	j->block_on_rc[1] = weft_block_on(j->other, shutdown_in_block_on, j, &r);
	j->nested_other_rc = (int)(intptr_t)r;
	return NULL;
}

/* A blocking job that shuts its own runtime down would wait for its own
 * thread: -EDEADLK at once (before: it hung for good, holding the
 * shutdown lock, and every later shutdown hung behind it). */
Test(shutdown_edges, shutdown_or_destroy_from_a_blocking_job_is_edeadlk, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2), *other = wt_rt_create(1);
	struct job_sd j = { .rt = rt, .other = other, .shutdown_rc = 1, .destroy_rc = 1 };
	struct weft_task *h;
	cr_assert_eq(weft_spawn_blocking(rt, job_shuts_down, &j, &h), 0);
	cr_assert_eq(weft_join_timeout(h, NULL, 5000 * 1000000ull), 0, "the job hung");
	cr_assert_eq(j.shutdown_rc, -EDEADLK);
	cr_assert_eq(j.destroy_rc, -EDEADLK);
	cr_assert_eq(j.current, rt, "weft_runtime_current() in a blocking job");
	cr_assert_eq(j.block_on_rc[0], 0);
	cr_assert_eq(j.nested_rc, -EDEADLK, "shutdown in block_on in a job: %d", j.nested_rc);
	cr_assert_eq(j.block_on_rc[1], 0);
	cr_assert_eq(j.nested_other_rc, -EDEADLK, "the same through another runtime's block_on: %d",
		     j.nested_other_rc);
	cr_assert_eq(weft_runtime_shutdown(rt, 5000 * 1000000ull), 0);
	wt_rt_destroy(rt);
	wt_rt_destroy(other);
}

/* A worker thread's pthread key destructors run after its loop has ended,
 * in the shutdown that joins the thread: a shutdown or destroy of rt from
 * one is -EDEADLK, as from the worker itself. Before, it waited for the
 * lock of the shutdown joining its thread, which waited for the thread
 * whatever its limit: both hung for good (found by a review). */
struct key_sd {
	struct weft_runtime *rt;
	atomic_int shutdown_rc, destroy_rc, runs;
};
static pthread_key_t key_sd_key;

static void key_sd_dtor(void *v)
{
	struct key_sd *k = v;
	atomic_fetch_add(&k->runs, 1);
	atomic_store(&k->shutdown_rc, weft_runtime_shutdown(k->rt, 1000 * 1000000ull));
	atomic_store(&k->destroy_rc, weft_runtime_destroy(k->rt));
}

static enum weft_poll key_sd_set(void *s, struct weft_cx *cx)
{
	(void)cx;
	cr_assert_eq(pthread_setspecific(key_sd_key, s), 0);
	return WEFT_READY;
}

Test(shutdown_edges, shutdown_or_destroy_from_a_workers_key_destructor_is_edeadlk,
     .timeout = WT_TMO(30))
{
	struct key_sd k = { .shutdown_rc = 1, .destroy_rc = 1 };
	cr_assert_eq(pthread_key_create(&key_sd_key, key_sd_dtor), 0);
	k.rt = wt_rt_create(1); /* the one worker runs the task */
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(k.rt, key_sd_set, &k, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(weft_runtime_shutdown(k.rt, 10000 * 1000000ull), 0, "the limit was not kept");
	cr_assert_eq(atomic_load(&k.runs), 1);
	cr_assert_eq(atomic_load(&k.shutdown_rc), -EDEADLK);
	cr_assert_eq(atomic_load(&k.destroy_rc), -EDEADLK);
	wt_rt_destroy(k.rt);
	cr_assert_eq(pthread_key_delete(key_sd_key), 0);
}

/* The threads a runtime starts besides the first workers - a spare that
 * took a core for weft_block_in_place, a blocking-pool thread - are gone,
 * their key destructors run, when destroy returns; a destructor that
 * shuts rt down or destroys it gets -EDEADLK, as on a worker. Before,
 * they were detached: destroy returned while they were still on their
 * way out (the destructors here ran 100 ms after it; code a dlclose
 * would unmap), and one such destroy freed rt under its caller. */
static pthread_key_t leave_key;
static atomic_int leave_dtors, leave_rc_bad, leave_destroyed;

static void leave_dtor(void *v)
{
	struct key_sd *k = v;
	struct timespec ms100 = { 0, 100 * 1000000L };
	nanosleep(&ms100, NULL); /* long past an early return of destroy */
	if (!atomic_load(&leave_destroyed)) { /* rt is not freed */
		if (weft_runtime_shutdown(k->rt, 0) != -EDEADLK ||
		    weft_runtime_destroy(k->rt) != -EDEADLK)
			atomic_fetch_add(&leave_rc_bad, 1);
	}
	atomic_fetch_add(&leave_dtors, 1);
}

struct leave_st {
	struct key_sd *k;
	pthread_t bip_thread, spare_thread;
	atomic_bool spare_ran;
};

static void *leave_job(void *arg)
{
	cr_assert_eq(pthread_setspecific(leave_key, ((struct leave_st *)arg)->k), 0);
	return NULL;
}

/* runs on the spare, which holds the core while leave_bip's fn waits */
static enum weft_poll leave_on_spare(void *arg, struct weft_cx *cx)
{
	struct leave_st *st = arg;
	(void)cx;
	st->spare_thread = pthread_self();
	cr_assert_eq(pthread_setspecific(leave_key, st->k), 0);
	atomic_store(&st->spare_ran, true);
	return WEFT_READY;
}

static void *leave_bip_fn(void *arg)
{
	struct leave_st *st = arg;
	st->bip_thread = pthread_self();
	cr_assert_eq(weft_spawn_poll(st->k->rt, leave_on_spare, st, NULL, NULL), 0);
	for (int i = 0; i < 10000 && !atomic_load(&st->spare_ran); i++) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static enum weft_poll leave_bip(void *arg, struct weft_cx *cx)
{
	(void)cx;
	cr_assert_eq(weft_block_in_place(leave_bip_fn, arg, NULL), 0);
	return WEFT_READY;
}

Test(shutdown_edges, spare_and_pool_threads_are_gone_when_destroy_returns, .timeout = WT_TMO(30))
{
	struct key_sd k = { 0 };
	struct leave_st st = { .k = &k };
	cr_assert_eq(pthread_key_create(&leave_key, leave_dtor), 0);
	k.rt = wt_rt_create(1);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(k.rt, leave_bip, &st, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert(atomic_load(&st.spare_ran), "no spare took the core");
	cr_assert(!pthread_equal(st.bip_thread, st.spare_thread));
	cr_assert_eq(weft_spawn_blocking(k.rt, leave_job, &st, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(weft_runtime_destroy(k.rt), 0);
	int ran = atomic_load(&leave_dtors);
	atomic_store(&leave_destroyed, 1);
	cr_assert_eq(ran, 2, "%d of the 2 destructors had run when destroy returned", ran);
	cr_assert_eq(atomic_load(&leave_rc_bad), 0, "shutdown or destroy from a destructor was not -EDEADLK");
	cr_assert_eq(pthread_key_delete(leave_key), 0);
}

/* A pthread key destructor of one of rt's threads that takes its time (a
 * first worker's, a pool thread's) holds up the shutdown's join of that
 * thread: a limited shutdown returns -ETIMEDOUT at its limit, and a later
 * one joins it. Before, those joins ignored the limit: the shutdown below
 * returned when the destructor did, 10 s on (found by a review). */
static pthread_key_t slow_key;
static atomic_bool slow_go;
static atomic_int slow_dtors;

static void slow_dtor(void *v)
{
	(void)v;
	for (int i = 0; i < 10000 && !atomic_load(&slow_go); i++) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
	}
	atomic_fetch_add(&slow_dtors, 1);
}

static enum weft_poll slow_set(void *s, struct weft_cx *cx)
{
	(void)cx;
	cr_assert_eq(pthread_setspecific(slow_key, s), 0);
	return WEFT_READY;
}

static void *slow_set_job(void *s)
{
	cr_assert_eq(pthread_setspecific(slow_key, s), 0);
	return NULL;
}

Test(shutdown_edges, a_slow_key_destructor_does_not_hold_a_limited_shutdown, .timeout = WT_TMO(60))
{
	cr_assert_eq(pthread_key_create(&slow_key, slow_dtor), 0);
	for (int pool = 0; pool < 2; pool++) {
		atomic_store(&slow_go, false);
		struct weft_runtime *rt = wt_rt_create(1); /* the one worker runs the task */
		struct weft_task *h;
		if (pool)
			cr_assert_eq(weft_spawn_blocking(rt, slow_set_job, &slow_go, &h), 0);
		else
			cr_assert_eq(weft_spawn_poll(rt, slow_set, &slow_go, NULL, &h), 0);
		cr_assert_eq(weft_join(h, NULL), 0);
		uint64_t t0 = weft_now_ns();
		cr_assert_eq(weft_runtime_shutdown(rt, 100 * 1000000ull), -ETIMEDOUT, "pool %d", pool);
		uint64_t took = weft_now_ns() - t0;
		cr_assert_lt(took, 5000 * 1000000ull, "pool %d: a 100 ms shutdown took %llu ms", pool,
			     (unsigned long long)(took / 1000000));
		cr_assert_eq(atomic_load(&slow_dtors), pool);
		atomic_store(&slow_go, true);
		cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
		cr_assert_eq(atomic_load(&slow_dtors), pool + 1);
		wt_rt_destroy(rt);
	}
	cr_assert_eq(pthread_key_delete(slow_key), 0);
}

/* Code that rt's shutdown runs on the calling thread - a task's drop, a
 * discarded fiber's fiber-local dtor - shutting rt down or destroying it
 * would wait for the shutdown it is part of: -EDEADLK at once, as from a
 * worker, where the same drop or dtor runs otherwise. Before, it waited
 * for the shutdown lock its own thread held: a limited shutdown timed out
 * at its limit, one without a limit (and destroy) hung for good (found by
 * a review). */
struct sd_inner {
	struct weft_runtime *rt;
	atomic_int shutdown_rc, destroy_rc, runs;
};
static struct sd_inner sd_drop = { .shutdown_rc = 1, .destroy_rc = 1 },
		       sd_dtor = { .shutdown_rc = 1, .destroy_rc = 1 };

static void sd_calls(struct sd_inner *s)
{
	atomic_fetch_add(&s->runs, 1);
	atomic_store(&s->shutdown_rc, weft_runtime_shutdown(s->rt, WEFT_FOREVER));
	atomic_store(&s->destroy_rc, weft_runtime_destroy(s->rt));
}

static enum weft_poll sd_pending(void *s, struct weft_cx *cx) { return WEFT_PENDING; }
static void sd_drop_fn(void *s) { sd_calls(s); }
static void sd_dtor_fn(void *v) { sd_calls(v); }
static const struct weft_local_key sd_key = { .dtor = sd_dtor_fn };

/* sets its value, then yields whatever it is told: discarded at the limit */
static void *sd_stubborn(void *arg)
{
	(void)weft_local_set(&sd_key, &sd_dtor);
	atomic_store((atomic_bool *)arg, true);
	for (;;)
		(void)weft_yield();
	return NULL;
}

Test(shutdown_edges, shutdown_or_destroy_from_a_drop_or_dtor_the_shutdown_runs_is_edeadlk,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	sd_drop.rt = sd_dtor.rt = rt;
	cr_assert_eq(weft_spawn_poll(rt, sd_pending, &sd_drop, sd_drop_fn, NULL), 0);
	atomic_bool started = false;
	cr_assert_eq(weft_spawn(rt, sd_stubborn, &started, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&started), WT_LONG_MS));
	int rc;
	while ((rc = weft_runtime_shutdown(rt, 100 * 1000000ull)) == -ETIMEDOUT)
		;
	cr_assert_eq(rc, 0);
	cr_assert_eq(atomic_load(&sd_drop.runs), 1, "the pending task's drop ran %d times",
		     atomic_load(&sd_drop.runs));
	cr_assert_eq(atomic_load(&sd_drop.shutdown_rc), -EDEADLK, "shutdown from a drop: %d",
		     atomic_load(&sd_drop.shutdown_rc));
	cr_assert_eq(atomic_load(&sd_drop.destroy_rc), -EDEADLK, "destroy from a drop: %d",
		     atomic_load(&sd_drop.destroy_rc));
	cr_assert_eq(atomic_load(&sd_dtor.runs), 1, "the discarded fiber's dtor ran %d times",
		     atomic_load(&sd_dtor.runs));
	cr_assert_eq(atomic_load(&sd_dtor.shutdown_rc), -EDEADLK, "shutdown from a dtor: %d",
		     atomic_load(&sd_dtor.shutdown_rc));
	cr_assert_eq(atomic_load(&sd_dtor.destroy_rc), -EDEADLK, "destroy from a dtor: %d",
		     atomic_load(&sd_dtor.destroy_rc));
	wt_rt_destroy(rt);
}

/* A parent's drop that aborts and joins its children, as code that owns
 * handles must consume them. Run by the shutdown's sweep on the calling
 * thread, it joined a child the same sweep had still to end: it waited
 * for itself, and the shutdown (and destroy) hung for good (found by a
 * review). Now -EDEADLK for a child not yet finished, as from a worker,
 * where that drop runs otherwise; the drop detaches it and the sweep ends
 * it. A child the sweep ended first is joined (-ECANCELED). */
enum { SJ_KIDS = 8 };
struct sj_parent {
	struct weft_task *kid[SJ_KIDS];
	int rc[SJ_KIDS];
	atomic_int spawned, drops;
};

static enum weft_poll sj_parent_poll(void *state, struct weft_cx *cx)
{
	struct sj_parent *p = state;
	if (!atomic_load(&p->spawned)) {
		for (int i = 0; i < SJ_KIDS; i++)
			if (weft_spawn_poll(weft_cx_runtime(cx), sd_pending, NULL, NULL, &p->kid[i]))
				return WEFT_READY;
		atomic_store(&p->spawned, 1);
	}
	return WEFT_PENDING;
}

static void sj_parent_drop(void *state)
{
	struct sj_parent *p = state;
	atomic_fetch_add(&p->drops, 1);
	for (int i = 0; atomic_load(&p->spawned) && i < SJ_KIDS; i++) {
		(void)weft_abort(p->kid[i]);
		p->rc[i] = i & 1 ? weft_join_timeout(p->kid[i], NULL, UINT64_MAX)
				 : weft_join(p->kid[i], NULL);
		if (p->rc[i] == -EDEADLK)
			(void)weft_detach(p->kid[i]);
	}
}

Test(shutdown_edges, a_drop_the_shutdown_runs_joining_a_task_it_has_still_to_end_is_edeadlk,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	static struct sj_parent p;
	cr_assert_eq(weft_spawn_poll(rt, sj_parent_poll, &p, sj_parent_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.spawned), WT_LONG_MS));
	wt_sleep_ms(20); /* the children's first polls: pending, listed */
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&p.drops), 1);
	int deadlk = 0;
	for (int i = 0; i < SJ_KIDS; i++) {
		cr_assert(p.rc[i] == -ECANCELED || p.rc[i] == -EDEADLK,
			  "child %d: %s from the parent's drop = %d", i,
			  i & 1 ? "weft_join_timeout" : "weft_join", p.rc[i]);
		deadlk += p.rc[i] == -EDEADLK;
	}
	cr_log_info("%d of %d children still to be ended at the parent's drop", deadlk, SJ_KIDS);
	wt_rt_destroy(rt);
}

/* The same drop ending a join set it owns: abort_all, then join_next
 * until the set is empty. From the shutdown's sweep join_next waited for a
 * member only that sweep would end: the shutdown hung for good (found by
 * a review). Now -EDEADLK once every member left is one the sweep has
 * still to end; the drop destroys the set, which detaches them. */
struct sjs_parent {
	struct weft_joinset *set;
	int rc[SJ_KIDS + 1];
	atomic_int spawned, drops, joins;
};

static enum weft_poll sjs_parent_poll(void *state, struct weft_cx *cx)
{
	struct sjs_parent *p = state;
	if (!atomic_load(&p->spawned)) {
		for (int i = 0; i < SJ_KIDS; i++)
			if (weft_joinset_spawn_poll(p->set, weft_cx_runtime(cx), sd_pending, NULL,
						    NULL, NULL))
				return WEFT_READY;
		atomic_store(&p->spawned, 1);
	}
	return WEFT_PENDING;
}

static void sjs_parent_drop(void *state)
{
	struct sjs_parent *p = state;
	atomic_fetch_add(&p->drops, 1);
	(void)weft_joinset_abort_all(p->set);
	for (int i = 0; i <= SJ_KIDS; i++) {
		int rc = i & 1 ? weft_joinset_join_next_timeout(p->set, NULL, NULL, UINT64_MAX)
			       : weft_joinset_join_next(p->set, NULL, NULL);
		p->rc[atomic_fetch_add(&p->joins, 1)] = rc;
		if (rc != -ECANCELED)
			break;
	}
	(void)weft_joinset_destroy(p->set);
}

Test(shutdown_edges, a_drop_the_shutdown_runs_joining_the_next_of_a_set_it_has_still_to_end_is_edeadlk,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	static struct sjs_parent p;
	cr_assert_eq(weft_joinset_create(&p.set), 0);
	cr_assert_eq(weft_spawn_poll(rt, sjs_parent_poll, &p, sjs_parent_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.spawned), WT_LONG_MS));
	wt_sleep_ms(20); /* the members' first polls: pending, listed */
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&p.drops), 1);
	int n = atomic_load(&p.joins);
	cr_assert(n >= 1 && n <= SJ_KIDS + 1);
	for (int i = 0; i < n - 1; i++)
		cr_assert_eq(p.rc[i], -ECANCELED, "join_next %d from the drop = %d", i, p.rc[i]);
	/* the last: the set empty (the sweep ended every member first), or
	 * members left that only the sweep ends */
	cr_assert(p.rc[n - 1] == -ENOENT || p.rc[n - 1] == -EDEADLK,
		  "the last join_next from the drop = %d", p.rc[n - 1]);
	cr_log_info("%d members joined before join_next said %d", n - 1, p.rc[n - 1]);
	wt_rt_destroy(rt);
}

/* The same drop waiting in weft_select on the tasks it owns: JOIN arms
 * on its children's handles and a JOIN_NEXT arm on a set of more. From
 * the shutdown's sweep the select waited for children only that sweep
 * would end: the shutdown hung for good (found by a review). Now -EDEADLK
 * once every arm waits on such a child; the drop detaches the handles
 * left and destroys the set. A select with an arm another thread can end
 * (a oneshot a plain thread sends on) is not refused: it waits. */
enum { SS_KIDS = 4 };
struct ss_parent {
	struct weft_task *kid[SS_KIDS];
	bool joined[SS_KIDS], set_empty;
	struct weft_joinset *set;
	struct weft_oneshot *o;         /* sent on by a plain thread */
	int bad, last, mixed;
	atomic_int spawned, drops, won;
};

static enum weft_poll ss_parent_poll(void *state, struct weft_cx *cx)
{
	struct ss_parent *p = state;
	if (!atomic_load(&p->spawned)) {
		for (int i = 0; i < SS_KIDS; i++)
			if (weft_spawn_poll(weft_cx_runtime(cx), sd_pending, NULL, NULL, &p->kid[i]) ||
			    weft_joinset_spawn_poll(p->set, weft_cx_runtime(cx), sd_pending, NULL,
						    NULL, NULL))
				return WEFT_READY;
		atomic_store(&p->spawned, 1);
	}
	return WEFT_PENDING;
}

static void ss_parent_drop(void *state)
{
	struct ss_parent *p = state;
	atomic_fetch_add(&p->drops, 1);
	for (int i = 0; atomic_load(&p->spawned) && i < SS_KIDS; i++)
		(void)weft_abort(p->kid[i]);
	(void)weft_joinset_abort_all(p->set);
	/* an arm another thread can end (the oneshot): not refused, waits */
	if (atomic_load(&p->spawned)) {
		void *v = NULL;
		struct weft_select_arm mix[2] = { WEFT_SEL_JOINED(p->kid[0], NULL),
						  WEFT_SEL_ONESHOT(p->o, &v) };
		p->mixed = weft_select(mix, 2, WEFT_FOREVER);
		if (p->mixed == 0)
			p->joined[0] = true;
		else if (p->mixed == 1 && (mix[1].rc || v != &p->o))
			p->bad++;
		if (p->mixed != 1)
			(void)weft_oneshot_receiver_drop(p->o);
	}
	for (int round = 0; atomic_load(&p->spawned); round++) {
		struct weft_select_arm arms[SS_KIDS + 1];
		int kid_of[SS_KIDS + 1];
		size_t n = 0;
		for (int i = 0; i < SS_KIDS; i++)
			if (!p->joined[i]) {
				kid_of[n] = i;
				arms[n++] = WEFT_SEL_JOINED(p->kid[i], NULL);
			}
		if (!p->set_empty) {
			kid_of[n] = -1;
			arms[n++] = WEFT_SEL_JOIN_NEXT(p->set, NULL);
		}
		if (!n)
			break;
		int rc = round & 1 ? weft_select_fair_timeout(arms, n, UINT64_MAX)
				   : weft_select(arms, n, WEFT_FOREVER);
		p->last = rc;
		if (rc < 0)
			break;
		atomic_fetch_add(&p->won, 1);
		if (kid_of[rc] >= 0) {
			p->joined[kid_of[rc]] = true;
			p->bad += arms[rc].rc != -ECANCELED;
		} else if (arms[rc].rc == -ENOENT) {
			p->set_empty = true;
		} else {
			p->bad += arms[rc].rc != -ECANCELED;
		}
	}
	for (int i = 0; atomic_load(&p->spawned) && i < SS_KIDS; i++)
		if (!p->joined[i])
			(void)weft_detach(p->kid[i]);
	(void)weft_joinset_destroy(p->set);
}

/* Sends once the parent's drop has started. */
static void *ss_sender(void *arg)
{
	struct ss_parent *p = arg;
	if (WT_WAIT_UNTIL(atomic_load(&p->drops), WT_LONG_MS))
		wt_sleep_ms(20); /* most runs: the drop's select waits for it */
	(void)weft_oneshot_send(p->o, &p->o);
	return NULL;
}

Test(shutdown_edges, a_drop_the_shutdown_runs_selecting_on_tasks_it_has_still_to_end_is_edeadlk,
     .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	static struct ss_parent p;
	cr_assert_eq(weft_joinset_create(&p.set), 0);
	cr_assert_eq(weft_oneshot_create(NULL, &p.o), 0);
	cr_assert_eq(weft_spawn_poll(rt, ss_parent_poll, &p, ss_parent_drop, NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.spawned), WT_LONG_MS));
	wt_sleep_ms(20); /* the children's first polls: pending, listed */
	pthread_t sender;
	cr_assert_eq(pthread_create(&sender, NULL, ss_sender, &p), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	cr_assert_eq(pthread_join(sender, NULL), 0);
	cr_assert_eq(atomic_load(&p.drops), 1);
	/* kid 0 may have been swept first (0), else the oneshot's send (1) */
	cr_assert(p.mixed == 0 || p.mixed == 1, "the select with a oneshot arm = %d", p.mixed);
	cr_assert_eq(p.bad, 0, "an arm won with an outcome other than -ECANCELED/-ENOENT");
	/* the last select: every arm done (0 arms, no call: last is the
	 * index of the last win), or -EDEADLK with children left */
	cr_assert(p.last >= 0 || p.last == -EDEADLK, "the last select from the drop = %d", p.last);
	cr_log_info("%d arms won before the last select said %d", atomic_load(&p.won), p.last);
	wt_rt_destroy(rt);
}
