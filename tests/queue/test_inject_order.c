/*
 * test_inject_order.c - one pusher's order across the inject queue's ring
 * and its overflow stack, under the interleaving that used to break it.
 *
 * The queue's own file is compiled here with hooks at the two points that
 * decide the order (INJECT_TEST_HOOK: a pusher that has looked at the
 * stack and is about to claim a ring slot; a consumer about to take the
 * stack), under other names so that it does not clash with the library's
 * copy. The test holds each thread at its hook and lets them go in this
 * order:
 *
 *   1. pusher P sees the stack empty and stops before its claim (task A);
 *   2. the ring is full, so another push (X) goes onto the stack;
 *   3. a pop frees one ring slot without taking the stack;
 *   4. consumer C starts a pop that will take the stack, and stops;
 *   5. P claims the free slot for A, then pushes B, which goes onto the
 *      stack behind X (the stack holds tasks);
 *   6. C takes the stack [X, B].
 *
 * A must still leave before B. When the consumer took its ring bound
 * (`enq`) itself before step 5, A's slot was above the bound, so B (in the
 * taken stack) left first (reported by a review, reproduced with this
 * schedule before the fix).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <pthread.h>
#include <semaphore.h>

#include "runtime.h"
#include "qtasks.h"

static void inject_hook(int where);
#define INJECT_TEST_HOOK(where) inject_hook(where)
#define weft__inject_init order_inject_init
#define weft__inject_fini order_inject_fini
#define weft__inject_push order_inject_push
#define weft__inject_push_batch order_inject_push_batch
#define weft__inject_pop_batch order_inject_pop_batch
#define weft__inject_close order_inject_close
#include "../../lib/sched/inject.c"

enum { R = WEFT_INJECT_RING };

static struct weft__inject q; /* static: honours the _Alignas */
static __thread int role;    /* 1: the pusher P, 2: the consumer C */
static atomic_int armed[3];  /* a role's hook stops once when armed */
static sem_t at[3], go[3];

static void inject_hook(int where)
{
	if (where != role || !atomic_exchange(&armed[role], 0))
		return;
	sem_post(&at[role]);
	sem_wait(&go[role]);
}

static struct weft_task *tasks, *A, *B, *X, *W;
static struct weft__tlist c_out = WEFT__TLIST_INIT;
static bool batched;

static void *pusher(void *arg)
{
	(void)arg;
	role = 1;
	if (batched) { /* the same through push_batch, one task each */
		struct weft__tlist b = WEFT__TLIST_INIT;
		weft__tlist_push(&b, A);
		cr_assert_eq(order_inject_push_batch(&q, &b), 0);
		weft__tlist_push(&b, B);
		cr_assert_eq(order_inject_push_batch(&q, &b), 0);
	} else {
		cr_assert_eq(order_inject_push(&q, A, false), 0);
		cr_assert_eq(order_inject_push(&q, B, false), 0);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	role = 2;
	order_inject_pop_batch(&q, 1, &c_out);
	return NULL;
}

static void run_schedule(bool batch)
{
	batched = batch;
	tasks = mk_tasks(2 * R + 8);
	A = &tasks[2 * R + 0];
	B = &tasks[2 * R + 1];
	X = &tasks[2 * R + 2];
	W = &tasks[2 * R + 3];
	for (int i = 1; i <= 2; i++) {
		sem_init(&at[i], 0, 0);
		sem_init(&go[i], 0, 0);
	}
	order_inject_init(&q);
	struct weft__tlist out = WEFT__TLIST_INIT;
	size_t k = 0;
	/* a ring taken to the bound of a first stack refill, then full again */
	for (int i = 0; i < R; i++)
		cr_assert_eq(order_inject_push(&q, &tasks[k++], false), 0);
	cr_assert_eq(order_inject_push(&q, W, false), 0); /* ring full: the stack */
	cr_assert_eq(order_inject_pop_batch(&q, R, &out), R);
	for (int i = 0; i < R; i++)
		cr_assert_eq(order_inject_push(&q, &tasks[k++], false), 0);

	pthread_t p, c;
	atomic_store(&armed[1], 1);
	cr_assert_eq(pthread_create(&p, NULL, pusher, NULL), 0);
	sem_wait(&at[1]);                                   /* 1 */
	cr_assert_eq(order_inject_push(&q, X, false), 0);   /* 2 */
	cr_assert_eq(atomic_load(&q.incoming), (uintptr_t)X, "X is on the stack");
	cr_assert_eq(order_inject_pop_batch(&q, 2, &out), 2); /* 3: W and one ring slot */
	atomic_store(&armed[2], 1);
	cr_assert_eq(pthread_create(&c, NULL, consumer, NULL), 0);
	sem_wait(&at[2]);                                   /* 4 */
	sem_post(&go[1]);                                   /* 5 */
	cr_assert_eq(pthread_join(p, NULL), 0);
	cr_assert_eq(atomic_load(&q.incoming) & ~(uintptr_t)1, (uintptr_t)B,
		     "B went onto the stack, behind X");
	sem_post(&go[2]);                                   /* 6 */
	cr_assert_eq(pthread_join(c, NULL), 0);

	/* everything in the order it leaves: C's pop, then the rest */
	long pos_a = -1, pos_b = -1, pos_x = -1, n = 0;
	struct weft_task *t;
	while (order_inject_pop_batch(&q, 256, &c_out))
		;
	while ((t = weft__tlist_pop(&c_out))) {
		if (t == A)
			pos_a = n;
		else if (t == B)
			pos_b = n;
		else if (t == X)
			pos_x = n;
		n++;
	}
	cr_assert_eq(n, R - 1 + 3, "every task left once (%ld)", n);
	cr_assert(pos_a >= 0 && pos_b >= 0 && pos_x >= 0);
	cr_assert_lt(pos_a, pos_b, "P pushed A before B, but B left at %ld and A at %ld", pos_b,
		     pos_a);
	cr_assert_lt(pos_x, pos_b, "X was on the stack before B");
	cr_assert_eq(atomic_load(&q.len), 0);
	while (weft__tlist_pop(&out))
		;
	free(tasks);
}

Test(inject_order, a_claim_racing_a_stack_take_stays_ahead_of_the_same_pushers_next_task,
     .timeout = WT_TMO(30))
{
	run_schedule(false);
}

Test(inject_order, the_same_through_batch_pushes, .timeout = WT_TMO(30))
{
	run_schedule(true);
}
