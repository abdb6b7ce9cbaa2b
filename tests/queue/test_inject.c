/*
 * test_inject.c - the runtime-wide inject queue (lib/sched/inject.c).
 *
 * Single-thread checks, exact: tasks leave in push order across single
 * pushes, batches, the ring filling up and the overflow stack; a pop takes at most
 * what it is asked for; remote pushes (threads without a core) are counted
 * in remote_len and each pop takes off exactly the remote tasks it took,
 * while overflow batches never count; a push refused after close leaves
 * both counters and the caller's task as they were.
 *
 * The stress tests push remote tasks and batches from several threads
 * while one thread pops, fast or slowly enough for the ring to fill: every
 * task comes out once, in order per pusher, and remote_len ends at 0 with
 * len. A slot claimed before the close and published after it is still
 * drained.
 *
 * Visible work: a push counted in len but not linked yet (its pusher
 * preempted between the two) is not work a parked worker should be woken
 * for; on a real runtime, such a push left two parked workers waking each
 * other tens of thousands of times a second until the pusher ran again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "runtime.h"
#include "qtasks.h"

#include <weft/metrics.h>

static struct weft__inject q; /* static: honours the _Alignas */

static void batch_of(struct weft__tlist *b, struct weft_task *tasks, size_t from, size_t to)
{
	*b = (struct weft__tlist)WEFT__TLIST_INIT;
	for (size_t i = from; i < to; i++)
		weft__tlist_push(b, &tasks[i]);
}

/* Pop up to max, expect ids [from, to) in order. */
static void expect_pop(size_t max, struct weft_task *tasks, size_t from, size_t to)
{
	struct weft__tlist out = WEFT__TLIST_INIT;
	size_t n = weft__inject_pop_batch(&q, max, &out);
	cr_assert_eq(n, to - from, "popped %zu, expected %zu", n, to - from);
	for (size_t i = from; i < to; i++) {
		struct weft_task *t = weft__tlist_pop(&out);
		cr_assert_eq(t, &tasks[i], "popped task %llu, expected %zu",
			     t ? (unsigned long long)t->id : 0ull, i);
	}
	cr_assert_null(weft__tlist_pop(&out));
}

Test(inject, fifo_and_remote_count)
{
	weft__inject_init(&q);
	struct weft_task *t = mk_tasks(12);
	struct weft__tlist b;

	cr_assert_eq(weft__inject_push(&q, &t[0], true), 0);
	cr_assert_eq(weft__inject_push(&q, &t[1], false), 0);
	batch_of(&b, t, 2, 6); /* an overflow batch: not remote */
	cr_assert_eq(weft__inject_push_batch(&q, &b), 0);
	cr_assert_eq(b.n, 0);
	cr_assert_eq(weft__inject_push(&q, &t[6], true), 0);
	cr_assert_eq(weft__inject_len(&q), 7);
	cr_assert_eq(weft__inject_remote_len(&q), 2);

	expect_pop(2, t, 0, 2); /* takes remote t0 */
	cr_assert_eq(weft__inject_remote_len(&q), 1);
	/* pushed after the first refill: behind what is left of it */
	cr_assert_eq(weft__inject_push(&q, &t[7], true), 0);
	cr_assert_eq(weft__inject_remote_len(&q), 2);
	expect_pop(4, t, 2, 6); /* the batch: no remote task */
	cr_assert_eq(weft__inject_remote_len(&q), 2);
	expect_pop(8, t, 6, 8); /* t6 and, after a refill, t7 */
	cr_assert_eq(weft__inject_remote_len(&q), 0);
	cr_assert_eq(weft__inject_len(&q), 0);
	struct weft__tlist out = WEFT__TLIST_INIT;
	cr_assert_eq(weft__inject_pop_batch(&q, 8, &out), 0);

	/* closed: refused, counters unchanged, the task untouched */
	cr_assert_eq(weft__inject_push(&q, &t[8], true), 0);
	weft__inject_close(&q);
	t[9].qnext = &t[0]; /* left over from an earlier queue: reset, not linked */
	cr_assert_eq(weft__inject_push(&q, &t[9], true), -ESHUTDOWN);
	cr_assert_null(t[9].qnext);
	batch_of(&b, t, 10, 12);
	cr_assert_eq(weft__inject_push_batch(&q, &b), -ESHUTDOWN);
	cr_assert_eq(b.n, 2);
	cr_assert_eq(b.head, &t[10]);
	cr_assert_eq(weft__inject_len(&q), 1);
	cr_assert_eq(weft__inject_remote_len(&q), 1);
	expect_pop(8, t, 8, 9); /* the final drain still gets t8 */
	cr_assert_eq(weft__inject_remote_len(&q), 0);
	weft__inject_fini(&q);
	free(t);
}

enum { PUSHERS = 4, PER_PUSHER = 20000, BATCH = 5 };

static struct weft_task *st_tasks;
static atomic_int st_go, st_push_errors;

static void *pusher(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg * PER_PUSHER;
	while (!atomic_load(&st_go))
		;
	for (size_t i = 0; i < PER_PUSHER;) {
		if (i % 3 == 0 && i + BATCH <= PER_PUSHER) {
			struct weft__tlist b;
			batch_of(&b, st_tasks, base + i, base + i + BATCH);
			if (weft__inject_push_batch(&q, &b))
				atomic_fetch_add(&st_push_errors, 1);
			i += BATCH;
		} else {
			if (weft__inject_push(&q, &st_tasks[base + i], i & 1))
				atomic_fetch_add(&st_push_errors, 1);
			i++;
		}
	}
	return NULL;
}

/* Pops until every task came out once, in order per pusher. A slow
 * popper (a pause every few pops) lets the ring fill, so pushes go to the
 * overflow stack and back: returns whether the stack was seen holding
 * tasks. */
static bool run_concurrent(bool slow);

Test(inject, concurrent_pushes_one_popper, .timeout = WT_TMO(60))
{
	run_concurrent(false);
}

/* The ring full and the overflow stack in use, on and off, while four
 * threads push: still every task once, in order per pusher. */
Test(inject, concurrent_pushes_through_the_overflow_stack, .timeout = WT_TMO(60))
{
	cr_assert(run_concurrent(true), "the ring never filled: the overflow path was not run");
}

static bool run_concurrent(bool slow)
{
	weft__inject_init(&q);
	atomic_store(&st_go, 0);
	size_t total = (size_t)PUSHERS * PER_PUSHER;
	st_tasks = mk_tasks(total);
	uint8_t *seen = calloc(total, 1);
	cr_assert_not_null(seen);
	pthread_t th[PUSHERS];
	for (uintptr_t i = 0; i < PUSHERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, pusher, (void *)i), 0);
	atomic_store(&st_go, 1);
	size_t got = 0, last_of[PUSHERS] = { 0 }, pops = 0;
	bool started[PUSHERS] = { false }, overflowed = false;
	while (got < total) {
		struct weft__tlist out = WEFT__TLIST_INIT;
		if (slow && ++pops % 8 == 0)
			wt_sleep_ms(1);
		if (atomic_load(&q.incoming) & ~(uintptr_t)1)
			overflowed = true;
		weft__inject_pop_batch(&q, 1 + got % 97, &out);
		struct weft_task *t;
		while ((t = weft__tlist_pop(&out))) {
			size_t id = t->id;
			cr_assert_lt(id, total);
			cr_assert_eq(seen[id], 0, "task %zu popped twice", id);
			seen[id] = 1;
			/* FIFO per pusher */
			size_t p = id / PER_PUSHER;
			cr_assert(!started[p] || id > last_of[p], "task %zu after %zu", id, last_of[p]);
			started[p] = true;
			last_of[p] = id;
			got++;
		}
	}
	for (int i = 0; i < PUSHERS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&st_push_errors), 0);
	cr_assert_eq(weft__inject_len(&q), 0);
	cr_assert_eq(weft__inject_remote_len(&q), 0);
	weft__inject_fini(&q);
	free(seen);
	free(st_tasks);
	return overflowed;
}

/* One thread, exact: the ring filled to the last slot; the next pushes
 * (a single one, then a batch, which goes behind it although it would
 * fit nowhere else either) go to the overflow stack; a pop takes the
 * stack and serves the ring below it first; a push after that goes to the
 * ring again, behind the stack's tasks. Tasks leave in push order
 * throughout, and remote_len follows the remote ones wherever they are. */
Test(inject, overflow_to_the_stack_keeps_push_order)
{
	enum { R = WEFT_INJECT_RING };
	weft__inject_init(&q);
	struct weft_task *t = mk_tasks(R + 8);
	struct weft__tlist b;
	for (size_t i = 0; i < R; i++)
		cr_assert_eq(weft__inject_push(&q, &t[i], i % 2), 0);
	cr_assert_eq(atomic_load(&q.incoming), 0, "the ring should hold all %d", R);
	cr_assert_eq(weft__inject_push(&q, &t[R], true), 0); /* full: the stack */
	cr_assert_neq(atomic_load(&q.incoming), 0);
	batch_of(&b, t, R + 1, R + 3);
	cr_assert_eq(weft__inject_push_batch(&q, &b), 0);
	cr_assert_eq(weft__inject_len(&q), R + 3);
	cr_assert_eq(weft__inject_remote_len(&q), R / 2 + 1);
	expect_pop(10, t, 0, 10); /* the ring below the stack first */
	cr_assert_eq(atomic_load(&q.incoming), 0, "that pop took the stack");
	cr_assert(weft__inject_visible(&q));
	/* room in the ring again: this one goes there, after the FIFO
	 * taken from the stack */
	cr_assert_eq(weft__inject_push(&q, &t[R + 3], true), 0);
	cr_assert_eq(atomic_load(&q.incoming), 0);
	expect_pop(R, t, 10, R + 4);
	cr_assert_eq(weft__inject_len(&q), 0);
	cr_assert_eq(weft__inject_remote_len(&q), 0);
	cr_assert_not(weft__inject_visible(&q));
	weft__inject_fini(&q);
	free(t);
}


Test(inject, counted_but_unlinked_is_not_visible)
{
	weft__inject_init(&q);
	struct weft_task *t = mk_tasks(3);
	cr_assert_not(weft__inject_visible(&q));
	atomic_fetch_add(&q.len, 1); /* a pusher between its count and its link */
	cr_assert_not(weft__inject_visible(&q));
	atomic_fetch_sub(&q.len, 1);
	cr_assert_eq(weft__inject_push(&q, &t[0], true), 0);
	cr_assert(weft__inject_visible(&q)); /* on the stack */
	cr_assert_eq(weft__inject_push(&q, &t[1], false), 0);
	cr_assert_eq(weft__inject_push(&q, &t[2], false), 0);
	expect_pop(1, t, 0, 1);
	cr_assert(weft__inject_visible(&q)); /* left in the FIFO */
	expect_pop(8, t, 1, 3);
	cr_assert_not(weft__inject_visible(&q));
	weft__inject_fini(&q);
	free(t);
}

static enum weft_poll nothing(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

static uint64_t noops(struct weft_runtime *rt)
{
	struct weft_metrics *m = wt_metrics(rt);
	uint64_t n = 0;
	for (unsigned i = 0; i < m->workers; i++)
		n += m->worker[i].noop_count;
	weft_metrics_free(m);
	return n;
}

/* Both workers parked; a push "stuck" between its count and its link (len
 * raised by hand, as a preempted pusher leaves it); one real task wakes a
 * worker, which parks again after it. Before the fix its rescan saw len,
 * woke the other worker, which found nothing, parked, saw len, woke the
 * first...: ~70,000 unparks without work per second. */
Test(inject, a_push_caught_before_its_link_wakes_nobody, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	wt_sleep_ms(50); /* both parked */
	atomic_fetch_add(&rt->inject.len, 1);
	uint64_t before = noops(rt);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, nothing, NULL, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	wt_sleep_ms(200);
	uint64_t storm = noops(rt) - before;
	atomic_fetch_sub(&rt->inject.len, 1);
	cr_log_info("unparks without work in 200 ms: %llu", (unsigned long long)storm);
	cr_assert_lt(storm, 50, "%llu unparks without work in 200 ms", (unsigned long long)storm);
	wt_rt_destroy(rt);
}

/* A push that claimed its ring slot before the close but had not
 * published it yet (preempted between the two) is still found by the
 * final drain, which waits for it: the task is queued, and shutdown must
 * cancel it. Simulated by claiming a slot by hand and publishing it from
 * another thread 50 ms after the close. */
static struct weft_task *late_task;
static uint64_t late_pos;

static void *late_publisher(void *arg)
{
	(void)arg;
	wt_sleep_ms(50);
	atomic_store(&q.ring[late_pos & (WEFT_INJECT_RING - 1)].task, (uintptr_t)late_task);
	atomic_store(&q.ring[late_pos & (WEFT_INJECT_RING - 1)].seq, late_pos + 1);
	return NULL;
}

Test(inject, drain_after_close_waits_for_a_claimed_slot, .timeout = WT_TMO(30))
{
	weft__inject_init(&q);
	struct weft_task *t = mk_tasks(3);
	cr_assert_eq(weft__inject_push(&q, &t[0], false), 0);
	/* the pusher of t[1]: counted and claimed, not published */
	atomic_fetch_add(&q.len, 1);
	late_pos = atomic_fetch_add(&q.enq, 1);
	late_task = &t[1];
	weft__inject_close(&q);
	cr_assert_eq(weft__inject_push(&q, &t[2], false), -ESHUTDOWN);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, late_publisher, NULL), 0);
	expect_pop(8, t, 0, 2); /* t0 at once, t1 once published */
	pthread_join(th, NULL);
	cr_assert_eq(weft__inject_len(&q), 0);
	weft__inject_fini(&q);
	free(t);
}
