/*
 * test_unbounded.c - unbounded channels (weft_chan_create_unbounded): a send
 * never waits (threads, poll tasks, fibers, select arms), FIFO across the
 * ring's growth and shrinking against a model, no item lost or doubled
 * with receivers aborted mid hand-off, close, -ENOMEM with nothing sent,
 * and memory given back after a burst.
 */
#include <criterion/criterion.h>
#include <weft/sync.h>

#include "wt.h"

static atomic_int g_bad;

/* ------------------------------------------------- FIFO against a model */

Test(unbounded, fifo_across_growth_and_shrinking, .timeout = WT_TMO(60))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create_unbounded(0, &ch), -EINVAL);
	cr_assert_eq(weft_chan_create_unbounded(8, NULL), -EINVAL);
	cr_assert_eq(weft_chan_create_unbounded(WEFT_CHAN_MAX_BYTES, &ch), -EINVAL);
	cr_assert_eq(weft_chan_create_unbounded(sizeof(uint64_t), &ch), 0);
	/* a plain thread: no runtime at all, and no send waits */
	uint64_t next_send = 0, next_recv = 0, seed = 3;
	for (int round = 0; round < 400; round++) {
		uint64_t r = wt_rand(&seed);
		unsigned sends = (unsigned)(r % 3000), recvs = (unsigned)((r >> 16) % 3000);
		if (round < 20)
			recvs /= 4; /* grow first */
		for (unsigned i = 0; i < sends; i++, next_send++)
			cr_assert_eq(weft_chan_send(ch, &next_send), 0);
		for (unsigned i = 0; i < recvs && next_recv < next_send; i++, next_recv++) {
			uint64_t got;
			int rc = (r >> 40) & 1 ? weft_chan_try_recv(ch, &got) : weft_chan_recv(ch, &got);
			cr_assert_eq(rc, 0);
			cr_assert_eq(got, next_recv, "round %d: got %lu, wanted %lu", round,
				     (unsigned long)got, (unsigned long)next_recv);
		}
		size_t len;
		cr_assert_eq(weft_chan_len(ch, &len), 0);
		cr_assert_eq(len, next_send - next_recv);
	}
	uint64_t got;
	while (next_recv < next_send) {
		cr_assert_eq(weft_chan_try_recv(ch, &got), 0);
		cr_assert_eq(got, next_recv++);
	}
	cr_assert_eq(weft_chan_try_recv(ch, &got), -EAGAIN);
	/* close: what was sent is still received, then -EPIPE */
	for (uint64_t i = 0; i < 100; i++)
		cr_assert_eq(weft_chan_try_send(ch, &i), 0);
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_send(ch, &got), -EPIPE);
	cr_assert_eq(weft_chan_try_send(ch, &got), -EPIPE);
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert_eq(weft_chan_recv(ch, &got), 0);
		cr_assert_eq(got, i);
	}
	cr_assert_eq(weft_chan_recv(ch, &got), -EPIPE);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ------------------------------------------------------ from a poll task */

struct ptask { struct weft_chan *ch; int n; };

static enum weft_poll send_from_poll(void *state, struct weft_cx *cx)
{
	struct ptask *p = state;
	for (int i = 0; i < p->n; i++) {
		long v = i;
		int rc;
		if (i % 3 == 0) {
			struct weft_wait w = WEFT_WAIT_INIT;
			rc = weft_chan_send_poll(p->ch, &w, cx, &v); /* never pending */
		} else {
			rc = i % 3 == 1 ? weft_chan_send(p->ch, &v) : weft_chan_try_send(p->ch, &v);
		}
		if (rc)
			atomic_fetch_add(&g_bad, 1);
	}
	return WEFT_READY;
}

Test(unbounded, a_poll_task_sends_without_waiting, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create_unbounded(sizeof(long), &ch), 0);
	struct ptask p = { ch, 50000 };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, send_from_poll, &p, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0, "a send from the poll task failed");
	size_t len;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 50000);
	for (long i = 0; i < 50000; i++) {
		long got;
		cr_assert_eq(weft_chan_try_recv(ch, &got), 0);
		cr_assert_eq(got, i);
	}
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/* ------------- producers, receivers (some aborted mid hand-off), a select */

enum { PRODUCERS = 4, PER_PRODUCER = 50000, RECEIVERS = 4 };

struct item { uint32_t producer, seq; uint64_t pad[2]; }; /* 24 bytes: not inline */

struct mp {
	struct weft_chan *ch;
	atomic_uint_fast64_t received;
	atomic_int seen[PRODUCERS][PER_PRODUCER];
};
static struct mp g_mp;

static void *produce(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	for (uint32_t s = 0; s < PER_PRODUCER; s++) {
		struct item it = { id, s, { 0, 0 } };
		int rc;
		if (s % 2) {
			struct weft_select_arm arms[] = { WEFT_SEL_SEND(g_mp.ch, &it) };
			rc = weft_select(arms, 1, WEFT_FOREVER) == 0 ? arms[0].rc : -1;
		} else {
			rc = weft_chan_send(g_mp.ch, &it);
		}
		if (rc)
			atomic_fetch_add(&g_bad, 1);
		if (s % 64 == 0)
			(void)weft_yield();
	}
	return NULL;
}

static void *receive(void *arg)
{
	struct item it;
	for (;;) {
		int rc = weft_chan_recv(g_mp.ch, &it);
		if (rc == -EPIPE || rc == -ECANCELED)
			return NULL;
		if (rc) {
			atomic_fetch_add(&g_bad, 1);
			return NULL;
		}
		if (it.producer >= PRODUCERS || it.seq >= PER_PRODUCER ||
		    atomic_fetch_add(&g_mp.seen[it.producer][it.seq], 1) != 0)
			atomic_fetch_add(&g_bad, 1);
		atomic_fetch_add(&g_mp.received, 1);
	}
}

Test(unbounded, producers_and_aborted_receivers_lose_nothing, .timeout = WT_TMO(120))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_chan_create_unbounded(sizeof(struct item), &g_mp.ch), 0);
	struct weft_task *prod[PRODUCERS], *recv[RECEIVERS];
	for (int i = 0; i < RECEIVERS; i++)
		cr_assert_eq(weft_spawn(rt, receive, NULL, &recv[i]), 0);
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_spawn(rt, produce, (void *)(uintptr_t)i, &prod[i]), 0);
	/* abort receivers while items flow, and start new ones */
	for (int i = 0; i < RECEIVERS; i++) {
		wt_sleep_ms(5);
		cr_assert_eq(weft_abort(recv[i]), 0);
		int rc = weft_join(recv[i], NULL);
		cr_assert(rc == -EINTR || rc == 0 || rc == -ECANCELED, "%d", rc);
		cr_assert_eq(weft_spawn(rt, receive, NULL, &recv[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_join(prod[i], NULL), 0);
	cr_assert_eq(weft_chan_close(g_mp.ch), 0);
	for (int i = 0; i < RECEIVERS; i++)
		cr_assert_eq(weft_join(recv[i], NULL), 0);
	cr_assert_eq(atomic_load(&g_bad), 0);
	cr_assert_eq(atomic_load(&g_mp.received), (uint64_t)PRODUCERS * PER_PRODUCER,
		     "received %lu", (unsigned long)atomic_load(&g_mp.received));
	cr_assert_eq(weft_chan_destroy(g_mp.ch), 0);
	wt_rt_destroy(rt);
}

/* --------------------------------------------- a cancelled fiber's send */

static atomic_bool g_started;

static void *send_when_cancelled(void *arg)
{
	struct weft_notify *n = arg;
	atomic_store(&g_started, true);
	(void)weft_notify_wait(n); /* -ECANCELED */
	struct weft_chan *ch;
	if (weft_chan_create_unbounded(4, &ch))
		return (void *)1;
	int v = 1;
	intptr_t rc = weft_chan_send(ch, &v);
	if (weft_chan_try_send(ch, &v)) /* not a cancellation point */
		rc = 1;
	weft_chan_destroy(ch);
	return (void *)rc;
}

Test(unbounded, a_cancelled_fibers_blocking_send_says_so, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, send_when_cancelled, n, &t), 0);
	/* started (aborted before its first poll it would never run: -ECANCELED,
	 * not -EINTR), then most likely suspended in its wait */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_started), WT_LONG_MS), "the fiber never started");
	wt_sleep_ms(20);
	cr_assert_eq(weft_abort(t), 0);
	void *r;
	cr_assert_eq(weft_join(t, &r), -EINTR);
	cr_assert_eq((intptr_t)r, -ECANCELED);
	wt_rt_destroy(rt);
	cr_assert_eq(weft_notify_destroy(n), 0);
}

/*
 * The same send in the fiber's weft_block_in_place fn. The fn's blocking
 * forms end with -ECANCELED once the fiber is aborted (or its runtime
 * shuts down), as the fiber's own do (wait.c); an unbounded channel's send
 * never waits, so it never looked: a loop of sends in the fn went on after
 * the abort (the fiber never unwound) and held a shutdown to its time
 * limit (found by a review).
 */
struct fip_send { struct weft_chan *ch; atomic_int started, rc; atomic_bool stop; };

static void *fip_send_fn(void *arg)
{
	struct fip_send *f = arg;
	uint64_t v = 0;
	int rc;
	atomic_store(&f->started, 1);
	/* each item taken back at once: the ring stays small */
	while ((rc = weft_chan_send(f->ch, &v)) == 0 && !atomic_load(&f->stop))
		(void)weft_chan_try_recv(f->ch, &v);
	atomic_store(&f->rc, rc);
	return NULL;
}

static void *fip_send_fiber(void *arg)
{
	weft_block_in_place(fip_send_fn, arg, NULL);
	return NULL;
}

Test(unbounded, sends_in_a_cancelled_fibers_block_in_place_fn_say_so, .timeout = WT_TMO(60))
{
	for (int round = 0; round < 2; round++) {
		struct weft_runtime *rt = wt_rt_create(2);
		struct fip_send f = { .rc = 1 };
		cr_assert_eq(weft_chan_create_unbounded(sizeof(uint64_t), &f.ch), 0);
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, fip_send_fiber, &f, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&f.started), WT_LONG_MS));
		int src = 0;
		if (round == 0)
			cr_assert_eq(weft_abort(h), 0);
		else
			src = weft_runtime_shutdown(rt, 2000000000ull * WEFT_TEST_SLOW);
		bool ended = WT_WAIT_UNTIL(atomic_load(&f.rc) != 1, 2000);
		atomic_store(&f.stop, true); /* let the fiber go, so that the test can end */
		int jrc = weft_join(h, NULL);
		cr_assert(ended, "round %d: the sends in the fiber's fn went on", round);
		cr_assert_eq(atomic_load(&f.rc), -ECANCELED, "round %d: the send said %d", round,
			     atomic_load(&f.rc));
		/* shutdown: a fiber still in its first poll is not marked
		 * cancelled (as in test_blocking's fn that waits) */
		cr_assert(jrc == -EINTR || (round == 1 && jrc == 0), "round %d: join = %d", round,
			  jrc);
		cr_assert_eq(src, 0, "shutdown = %d (%s)", src, weft_strerror(src));
		wt_rt_destroy(rt);
		cr_assert_eq(weft_chan_destroy(f.ch), 0);
	}
}

/* ----------------------------- no memory: nothing sent; memory given back */

/* Every block carries its size and offset in the bytes just before it. */
struct hdr { size_t size, off; };
static atomic_llong g_live;
static atomic_bool g_fail;
static pthread_t g_fail_thread;

static void *counting_alloc(size_t size, size_t align, void *ctx)
{
	if (atomic_load(&g_fail) && pthread_equal(g_fail_thread, pthread_self()))
		return NULL;
	size_t off = align > 64 ? align : 64;
	void *base = NULL;
	if (posix_memalign(&base, off, off + size))
		return NULL;
	char *p = (char *)base + off;
	struct hdr *h = (struct hdr *)p - 1;
	h->size = size;
	h->off = off;
	atomic_fetch_add(&g_live, (long long)size);
	return p;
}

static void counting_free(void *p, void *ctx)
{
	if (!p)
		return;
	struct hdr *h = (struct hdr *)p - 1;
	atomic_fetch_sub(&g_live, (long long)h->size);
	free((char *)p - h->off);
}

Test(unbounded, no_memory_sends_nothing_and_a_drained_channel_gives_memory_back,
     .timeout = WT_TMO(60))
{
	struct weft_allocator a = { .alloc = counting_alloc, .free = counting_free };
	cr_assert_eq(weft_set_allocator(&a), 0);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create_unbounded(sizeof(uint64_t), &ch), 0);
	long long base = atomic_load(&g_live);
	uint64_t v;
	/* the first 16 fit the first ring; the 17th must grow it */
	for (v = 0; v < 16; v++)
		cr_assert_eq(weft_chan_try_send(ch, &v), 0);
	g_fail_thread = pthread_self();
	atomic_store(&g_fail, true);
	cr_assert_eq(weft_chan_try_send(ch, &v), -ENOMEM);
	cr_assert_eq(weft_chan_send(ch, &v), -ENOMEM);
	atomic_store(&g_fail, false);
	size_t len;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 16, "nothing sent");
	/* a burst of a million, then drained */
	for (; v < 1000000; v++)
		cr_assert_eq(weft_chan_send(ch, &v), 0);
	long long peak = atomic_load(&g_live);
	cr_assert_geq(peak - base, 1000000LL * 8, "the ring holds the burst");
	for (uint64_t i = 0; i < 1000000; i++) {
		uint64_t got;
		cr_assert_eq(weft_chan_try_recv(ch, &got), 0);
		cr_assert_eq(got, i);
	}
	long long after = atomic_load(&g_live);
	cr_assert_leq(after - base, 4096, "drained, the ring is back to small: %lld bytes",
		      after - base);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	cr_assert_eq(weft_set_allocator(NULL), 0);
}
