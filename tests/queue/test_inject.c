/*
 * test_inject.c - the runtime-wide inject queue (lib/sched/inject.c).
 *
 * Single-thread checks, exact: tasks leave in push order across single
 * pushes, batches and refills of the incoming stack; a pop takes at most
 * what it is asked for; remote pushes (threads without a core) are counted
 * in remote_len and each pop takes off exactly the remote tasks it took,
 * while overflow batches never count; a push refused after close leaves
 * both counters and the caller's task as they were.
 *
 * The stress test pushes remote tasks and batches from several threads
 * while one thread pops: every task comes out once, and remote_len ends
 * at 0 with len.
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

Test(inject, concurrent_pushes_one_popper, .timeout = WT_TMO(60))
{
	weft__inject_init(&q);
	size_t total = (size_t)PUSHERS * PER_PUSHER;
	st_tasks = mk_tasks(total);
	uint8_t *seen = calloc(total, 1);
	cr_assert_not_null(seen);
	pthread_t th[PUSHERS];
	for (uintptr_t i = 0; i < PUSHERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, pusher, (void *)i), 0);
	atomic_store(&st_go, 1);
	size_t got = 0, last_of[PUSHERS] = { 0 };
	bool started[PUSHERS] = { false };
	while (got < total) {
		struct weft__tlist out = WEFT__TLIST_INIT;
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
