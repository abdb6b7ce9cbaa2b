/*
 * test_recv_many.c - batch receives (weft_chan_recv_many and its try,
 * timeout and poll forms): order, the senders waiting for room refilling
 * a batch past the capacity, rendezvous hand-offs, unbounded channels,
 * close, errors, and no item lost or doubled with producers and batch
 * receivers running together (threads, fibers, poll tasks).
 */
#include <criterion/criterion.h>
#include <weft/sync.h>

#include "wt.h"

/* --------------------------------------------------------- plain thread */

Test(recv_many, order_errors_and_close_from_a_thread, .timeout = WT_TMO(30))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 8, &ch), 0);
	uint64_t got[16];
	size_t n = 77;
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 4, &n), -EAGAIN);
	cr_assert_eq(n, 0);
	cr_assert_eq(weft_chan_recv_many_timeout(ch, got, 4, &n, 2000000), -ETIMEDOUT);
	cr_assert_eq(n, 0);
	n = 77;
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 0, &n), -EINVAL);
	cr_assert_eq(n, 0);
	cr_assert_eq(weft_chan_try_recv_many(ch, NULL, 4, &n), -EINVAL);
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 4, NULL), -EINVAL);
	cr_assert_eq(weft_chan_recv_many(NULL, got, 4, &n), -EINVAL);
	for (uint64_t i = 0; i < 8; i++)
		cr_assert_eq(weft_chan_try_send(ch, &i), 0);
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 3, &n), 0);
	cr_assert_eq(n, 3);
	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(got[i], i);
	cr_assert_eq(weft_chan_recv_many(ch, got, 16, &n), 0);
	cr_assert_eq(n, 5, "a batch takes everything buffered, %zu", n);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert_eq(got[i], 3 + i);
	/* one item left at close: received, then -EPIPE with *got 0 */
	uint64_t v = 42;
	cr_assert_eq(weft_chan_try_send(ch, &v), 0);
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_recv_many_timeout(ch, got, 16, &n, 1000000000), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(got[0], 42);
	cr_assert_eq(weft_chan_recv_many(ch, got, 16, &n), -EPIPE);
	cr_assert_eq(n, 0);
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 16, &n), -EPIPE);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* Items larger than a wait entry's inline storage take the other paths. */
struct big { uint64_t seq, pad[5]; };

Test(recv_many, large_items_keep_their_bytes, .timeout = WT_TMO(30))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(struct big), 5, &ch), 0);
	struct big in, out[7];
	memset(out, 0xee, sizeof(out));
	for (uint64_t i = 0; i < 5; i++) {
		in = (struct big){ .seq = i, .pad = { i * 3, i * 5, i * 7, i * 11, i * 13 } };
		cr_assert_eq(weft_chan_try_send(ch, &in), 0);
	}
	size_t n;
	cr_assert_eq(weft_chan_try_recv_many(ch, out, 7, &n), 0);
	cr_assert_eq(n, 5);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert(out[i].seq == i && out[i].pad[0] == i * 3 && out[i].pad[4] == i * 13,
			  "item %lu", (unsigned long)i);
	cr_assert_eq(out[5].seq, 0xeeeeeeeeeeeeeeeeull, "past *got is not written");
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ------------------------------------- senders waiting for room refill */

/* A poll task that links `n` sends at once, in order, each with its own
 * wait entry; the channel has no room, so each waits. Its later polls
 * collect them as receivers complete them. */
struct senders {
	struct weft_chan *ch;
	int n;
	uint64_t first;
	struct weft_wait w[8];
	bool sent[8];
	atomic_int linked, done, bad;
};

static enum weft_poll senders_poll(void *state, struct weft_cx *cx)
{
	struct senders *s = state;
	int left = 0;
	for (int i = 0; i < s->n; i++) {
		if (s->sent[i])
			continue;
		uint64_t v = s->first + (uint64_t)i;
		int rc = weft_chan_send_poll(s->ch, &s->w[i], cx, &v);
		if (rc == WEFT_PENDING)
			left++;
		else if (rc == 0)
			s->sent[i] = true;
		else
			atomic_fetch_add(&s->bad, 1);
	}
	atomic_store(&s->linked, 1);
	if (left)
		return WEFT_PENDING;
	atomic_store(&s->done, 1);
	return WEFT_READY;
}

static void link_senders(struct weft_runtime *rt, struct senders *s, struct weft_task **t)
{
	for (int i = 0; i < s->n; i++)
		s->w[i] = (struct weft_wait)WEFT_WAIT_INIT;
	cr_assert_eq(weft_spawn_poll(rt, senders_poll, s, NULL, t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&s->linked), WT_LONG_MS));
}

Test(recv_many, waiting_senders_refill_a_batch_past_the_capacity, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 2, &ch), 0);
	for (uint64_t i = 0; i < 2; i++)
		cr_assert_eq(weft_chan_try_send(ch, &i), 0);
	static struct senders s = { .n = 5, .first = 2 };
	s.ch = ch;
	struct weft_task *t;
	link_senders(rt, &s, &t);
	uint64_t got[16];
	size_t n;
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 16, &n), 0);
	cr_assert_eq(n, 7, "2 buffered + 5 waiting senders, got %zu", n);
	for (uint64_t i = 0; i < 7; i++)
		cr_assert_eq(got[i], i, "FIFO: got[%lu] = %lu", (unsigned long)i, (unsigned long)got[i]);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&s.done), 1, "every waiting sender completed");
	cr_assert_eq(atomic_load(&s.bad), 0);
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 16, &n), -EAGAIN);

	/* a batch stops at max: the rest stays for the next, still in order */
	for (uint64_t i = 0; i < 2; i++)
		cr_assert_eq(weft_chan_try_send(ch, &i), 0);
	static struct senders s2 = { .n = 6, .first = 2 };
	s2.ch = ch;
	link_senders(rt, &s2, &t);
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 3, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(weft_chan_recv_many(ch, got + 3, 16, &n), 0);
	cr_assert_eq(n, 5);
	for (uint64_t i = 0; i < 8; i++)
		cr_assert_eq(got[i], i);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

Test(recv_many, rendezvous_takes_each_waiting_sender_in_order, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	uint64_t got[16];
	size_t n;
	cr_assert_eq(weft_chan_try_recv_many(ch, got, 16, &n), -EAGAIN);
	static struct senders s = { .n = 5, .first = 10 };
	s.ch = ch;
	struct weft_task *t;
	link_senders(rt, &s, &t);
	cr_assert_eq(weft_chan_recv_many(ch, got, 16, &n), 0);
	cr_assert_eq(n, 5);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert_eq(got[i], 10 + i);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

Test(recv_many, unbounded_batches, .timeout = WT_TMO(30))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create_unbounded(sizeof(uint32_t), &ch), 0);
	for (uint32_t i = 0; i < 10000; i++)
		cr_assert_eq(weft_chan_send(ch, &i), 0);
	static uint32_t got[4096];
	uint32_t next = 0;
	size_t n, sizes[3], k = 0;
	while (weft_chan_try_recv_many(ch, got, 4096, &n) == 0) {
		cr_assert_lt(k, 3);
		sizes[k++] = n;
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(got[i], next++);
	}
	cr_assert_eq(k, 3);
	cr_assert(sizes[0] == 4096 && sizes[1] == 4096 && sizes[2] == 1808);
	/* the ring shrank while the batches drained; it still works */
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(weft_chan_send(ch, &i), 0);
	cr_assert_eq(weft_chan_recv_many(ch, got, 4096, &n), 0);
	cr_assert_eq(n, 100);
	cr_assert_eq(got[99], 99);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ---------------------------------- producers and batch receivers racing */

#define PRODUCERS 3
#define PER_PRODUCER 20000

struct race {
	struct weft_chan *ch;
	atomic_int producers_left;
	atomic_long received, bad, batches, multi;
	uint32_t last[PRODUCERS];
	pthread_mutex_t mu; /* last[]: receivers interleave batches */
	uint8_t seen[PRODUCERS][PER_PRODUCER];
};

/* An item: producer << 24 | sequence. Per producer, sequences must come
 * in order within a receiver's batch (FIFO: no receiver here gives up, so
 * none gives an item back); across receivers each is seen exactly once. */
static void account(struct race *r, const uint32_t *items, size_t n)
{
	atomic_fetch_add(&r->batches, 1);
	if (n > 1)
		atomic_fetch_add(&r->multi, 1);
	uint32_t prev[PRODUCERS];
	memset(prev, 0xff, sizeof(prev));
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < n; i++) {
		uint32_t p = items[i] >> 24, seq = items[i] & 0xffffff;
		if (p >= PRODUCERS || seq >= PER_PRODUCER || r->seen[p][seq]++ ||
		    (prev[p] != 0xffffffffu && seq <= prev[p]))
			atomic_fetch_add(&r->bad, 1);
		prev[p] = seq;
	}
	pthread_mutex_unlock(&r->mu);
	atomic_fetch_add(&r->received, (long)n);
}

struct prod { struct race *r; uint32_t id; };

static void *producer_fiber(void *arg)
{
	struct prod *p = arg;
	for (uint32_t i = 0; i < PER_PRODUCER; i++) {
		uint32_t v = p->id << 24 | i;
		if (weft_chan_send(p->r->ch, &v))
			atomic_fetch_add(&p->r->bad, 1);
	}
	if (atomic_fetch_sub(&p->r->producers_left, 1) == 1)
		weft_chan_close(p->r->ch);
	return NULL;
}

static void *consumer_fiber(void *arg)
{
	struct race *r = arg;
	uint32_t items[37];
	size_t n;
	int rc;
	while ((rc = weft_chan_recv_many(r->ch, items, 37, &n)) == 0)
		account(r, items, n);
	if (rc != -EPIPE || n != 0)
		atomic_fetch_add(&r->bad, 1);
	return NULL;
}

struct pconsumer { struct race *r; struct weft_wait w; uint32_t items[64]; };

static enum weft_poll consumer_poll(void *state, struct weft_cx *cx)
{
	struct pconsumer *c = state;
	size_t n;
	int rc;
	while ((rc = weft_chan_recv_many_poll(c->r->ch, &c->w, cx, c->items, 64, &n)) == 0)
		account(c->r, c->items, n);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	if (rc != -EPIPE || n != 0)
		atomic_fetch_add(&c->r->bad, 1);
	return WEFT_READY;
}

static void consumer_drop(void *state)
{
	struct pconsumer *c = state;
	weft_wait_cancel(&c->w);
	free(c);
}

static void *consumer_thread(void *arg)
{
	struct race *r = arg;
	uint32_t items[5];
	size_t n;
	int rc;
	/* blocking, no time limit: a receiver that gives up with an item
	 * handed to it puts it back at the head, where it may follow newer
	 * items of its sender in someone's batch (sync.h) - this test checks
	 * the order within each batch */
	while ((rc = weft_chan_recv_many(r->ch, items, 5, &n)) == 0)
		account(r, items, n);
	if (rc != -EPIPE || n != 0)
		atomic_fetch_add(&r->bad, 1);
	return NULL;
}

static void race_once(size_t cap)
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct race *r = calloc(1, sizeof(*r));
	cr_assert_not_null(r);
	pthread_mutex_init(&r->mu, NULL);
	cr_assert_eq(cap == SIZE_MAX ? weft_chan_create_unbounded(sizeof(uint32_t), &r->ch)
				     : weft_chan_create(sizeof(uint32_t), cap, &r->ch), 0);
	atomic_store(&r->producers_left, PRODUCERS);
	struct weft_task *tc[2], *tp[PRODUCERS], *tpoll;
	struct prod prods[PRODUCERS];
	cr_assert_eq(weft_spawn(rt, consumer_fiber, r, &tc[0]), 0);
	cr_assert_eq(weft_spawn(rt, consumer_fiber, r, &tc[1]), 0);
	struct pconsumer *pc = calloc(1, sizeof(*pc));
	pc->r = r;
	pc->w = (struct weft_wait)WEFT_WAIT_INIT;
	cr_assert_eq(weft_spawn_poll(rt, consumer_poll, pc, consumer_drop, &tpoll), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, consumer_thread, r), 0);
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		prods[i] = (struct prod){ r, i };
		cr_assert_eq(weft_spawn(rt, producer_fiber, &prods[i], &tp[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_join(tp[i], NULL), 0);
	cr_assert_eq(weft_join(tc[0], NULL), 0);
	cr_assert_eq(weft_join(tc[1], NULL), 0);
	cr_assert_eq(weft_join(tpoll, NULL), 0);
	pthread_join(th, NULL);
	cr_log_info("cap %zu: %ld batches, %ld of more than one item", cap,
		    atomic_load(&r->batches), atomic_load(&r->multi));
	cr_assert_eq(atomic_load(&r->bad), 0);
	cr_assert_eq(atomic_load(&r->received), (long)PRODUCERS * PER_PRODUCER);
	for (int p = 0; p < PRODUCERS; p++)
		for (int i = 0; i < PER_PRODUCER; i++)
			cr_assert_eq(r->seen[p][i], 1, "producer %d item %d seen %d times", p, i,
				     r->seen[p][i]);
	cr_assert_eq(weft_chan_destroy(r->ch), 0);
	pthread_mutex_destroy(&r->mu);
	free(r);
	wt_rt_destroy(rt);
}

Test(recv_many, producers_and_batch_receivers_lose_and_double_nothing, .timeout = WT_TMO(120))
{
	race_once(16);
	race_once(0);
	race_once(SIZE_MAX);
}
