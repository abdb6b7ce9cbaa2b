/*
 * test_select_stress.c - weft_select under contention: 500,000 items, each
 * sent through a select over two channels and received through a select
 * over the same two channels and a token (1,000,000 channel operations in
 * selects), by 4 producer fibers, 4 consumer fibers and a consumer thread,
 * capacity 4 so that most operations wait and losing arms are cancelled
 * with grants in flight. Conservation: every item received exactly once.
 * Takes about 2-4 s on 2 cores (more under ASan+UBSan).
 */
#include "../common/wt.h"

#define ITEMS 500000
#define PRODUCERS 4
#define CONSUMERS 4

static unsigned char seen[ITEMS];

struct sel_stress {
	struct weft_chan *a, *b;
	struct weft_token *stop;
	atomic_long received, dup, bad, sent;
	atomic_int next_producer;
};

static void *producer(void *arg)
{
	struct sel_stress *s = arg;
	long me = atomic_fetch_add(&s->next_producer, 1);
	for (long v = me; v < ITEMS; v += PRODUCERS) {
		struct weft_select_arm arms[2] = { WEFT_SEL_SEND(s->a, &v), WEFT_SEL_SEND(s->b, &v) };
		if (v & 1) { /* both orders, so both channels see first-arm wins */
			struct weft_select_arm t = arms[0];
			arms[0] = arms[1];
			arms[1] = t;
		}
		int r = weft_select(arms, 2, WEFT_FOREVER);
		if (r < 0 || arms[r].rc)
			atomic_fetch_add(&s->bad, 1);
		else
			atomic_fetch_add(&s->sent, 1);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct sel_stress *s = arg;
	long v = -1;
	for (;;) {
		struct weft_select_arm arms[3] = { WEFT_SEL_RECV(s->a, &v), WEFT_SEL_RECV(s->b, &v),
						   WEFT_SEL_CANCELLED(s->stop) };
		int r = weft_select(arms, 3, WEFT_FOREVER);
		if (r == 2)
			return NULL;
		if (r < 0 || arms[r].rc || v < 0 || v >= ITEMS) {
			atomic_fetch_add(&s->bad, 1);
			return NULL;
		}
		if (__atomic_fetch_add(&seen[v], 1, __ATOMIC_RELAXED))
			atomic_fetch_add(&s->dup, 1);
		atomic_fetch_add(&s->received, 1);
	}
}

static void *consumer_thread(void *arg) { return consumer(arg); }

Test(select_stress, million_channel_ops_no_loss_no_duplicate, .timeout = WT_TMO(120))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct sel_stress s = { 0 };
	cr_assert_eq(weft_chan_create(sizeof(long), 4, &s.a), 0);
	cr_assert_eq(weft_chan_create(sizeof(long), 4, &s.b), 0);
	cr_assert_eq(weft_token_create(NULL, &s.stop), 0);
	memset(seen, 0, sizeof seen);
	uint64_t t0 = wt_now_ns();
	struct weft_task *p[PRODUCERS], *c[CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		cr_assert_eq(weft_spawn(rt, consumer, &s, &c[i]), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, consumer_thread, &s), 0);
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_spawn(rt, producer, &s, &p[i]), 0);
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_join(p[i], NULL), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&s.received) + atomic_load(&s.bad) >= ITEMS, 60000),
		  "received %ld of %d", atomic_load(&s.received), ITEMS);
	cr_assert_eq(weft_token_cancel(s.stop), 0);
	for (int i = 0; i < CONSUMERS; i++)
		cr_assert_eq(weft_join(c[i], NULL), 0);
	pthread_join(th, NULL);
	double secs = (double)(wt_now_ns() - t0) / 1e9;
	cr_log_info("%d items, %d channel operations in selects in %.2f s", ITEMS, 2 * ITEMS, secs);
	cr_assert_eq(atomic_load(&s.bad), 0);
	cr_assert_eq(atomic_load(&s.dup), 0);
	cr_assert_eq(atomic_load(&s.sent), ITEMS);
	cr_assert_eq(atomic_load(&s.received), ITEMS);
	for (long v = 0; v < ITEMS; v++)
		cr_assert_eq(seen[v], 1, "item %ld seen %d times", v, seen[v]);
	long x;
	cr_assert_eq(weft_chan_try_recv(s.a, &x), -EAGAIN, "nothing left behind");
	cr_assert_eq(weft_chan_try_recv(s.b, &x), -EAGAIN, "nothing left behind");
	cr_assert_eq(weft_chan_destroy(s.a), 0);
	cr_assert_eq(weft_chan_destroy(s.b), 0);
	cr_assert_eq(weft_token_destroy(s.stop), 0);
	wt_rt_destroy(rt);
}
