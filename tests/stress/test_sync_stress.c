/*
 * test_sync_stress.c - the primitives of weft/sync.h under load from poll
 * tasks on several workers, each test ending in a conservation check.
 *
 *  chan_mpmc_W     8 producers x 8 consumers x 100,000 items on a
 *                  capacity-16 channel (W workers): every item received
 *                  exactly once, each consumer sees each producer's items in
 *                  order, the last producer closes, every consumer ends with
 *                  -EPIPE
 *  chan_abort_storm  producers and consumers aborted at random while
 *                  waiting (their drops cancel the entries, passing on slot
 *                  and item grants): items received = items sent, each once
 *  mutex_counter   64 tasks increment a plain counter under the async
 *                  mutex, some holding it across a yield: no lost update
 *  sem_bound       32 tasks take 1..3 of 3 permits at a time: never more
 *                  than 3 in use, all 3 back at the end
 *  notify_pingpong two tasks wake each other 100,000 times through two
 *                  notifies (a lost wakeup hangs)
 *  oneshot_chain   100,000 oneshots passed task to task: the sum arrives
 *  waitgroup_rounds 1,000 rounds of 16 done() tasks and a waiting task
 *  shutdown_with_waiters  tasks waiting on every primitive when the
 *                  runtime shuts down: every drop runs, every object
 *                  destroys cleanly, the runtime destroys with 0
 *
 * Workers {1, 2, 4, 8} for the channel on a 2-CPU machine
 * (oversubscription intended). Sizes are the spec's; each test takes a few
 * seconds at most under ASan+UBSan on 2 cores.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

static atomic_long errors;  /* failures recorded off the test thread */

#define FAIL_IF(cond) do { if (cond) atomic_fetch_add(&errors, 1); } while (0)

/* --------------------------------------------------------------- chan_mpmc */

#define PRODUCERS 8
#define CONSUMERS 8

struct mpmc {
	struct weft_chan *ch;
	uint64_t per_producer;
	atomic_uchar *seen;            /* PRODUCERS * per_producer */
	atomic_int producers_left;
	atomic_long received;
	bool main_closes;              /* abort storm: main closes after joins */
	atomic_long reordered;         /* abort storm: given-back items late */
};

struct producer {
	struct mpmc *m;
	uint32_t id;
	uint64_t next;                 /* next sequence number to send */
	struct weft_wait w;
	atomic_long sent;
	struct weft_task *h;
	uint64_t stall_at;             /* abort storm: 0, or wait here until aborted */
};

struct consumer {
	struct mpmc *m;
	uint64_t last[PRODUCERS];      /* last seq + 1 seen from each producer */
	struct weft_wait w;
	struct weft_task *h;
	atomic_int finished;           /* got -EPIPE */
};

static enum weft_poll producer_poll(void *state, struct weft_cx *cx)
{
	struct producer *p = state;
	while (p->next < p->m->per_producer) {
		if (p->stall_at && p->next == p->stall_at)
			return WEFT_PENDING; /* no waker: only the abort polls it again */
		uint64_t item = (uint64_t)p->id << 32 | p->next;
		int rc = weft_chan_send_poll(p->m->ch, &p->w, cx, &item);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		FAIL_IF(rc != 0);
		p->next++;
		atomic_store_explicit(&p->sent, (long)p->next, memory_order_relaxed);
	}
	if (atomic_fetch_sub(&p->m->producers_left, 1) == 1 && !p->m->main_closes)
		FAIL_IF(weft_chan_close(p->m->ch) != 0);
	return WEFT_READY;
}

static void producer_drop(void *state)
{
	struct producer *p = state;
	weft_wait_cancel(&p->w);
}

static enum weft_poll consumer_poll(void *state, struct weft_cx *cx)
{
	struct consumer *c = state;
	struct mpmc *m = c->m;
	for (;;) {
		uint64_t item;
		int rc = weft_chan_recv_poll(m->ch, &c->w, cx, &item);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		if (rc == -EPIPE) {
			atomic_store(&c->finished, 1);
			return WEFT_READY;
		}
		FAIL_IF(rc != 0);
		uint32_t pid = (uint32_t)(item >> 32);
		uint64_t seq = (uint32_t)item;
		if (pid >= PRODUCERS || seq >= m->per_producer) {
			atomic_fetch_add(&errors, 1);
			continue;
		}
		/* Per-producer order. Under aborts (main_closes) an item handed
		 * to a receiver that is aborted before collecting it goes back
		 * to the head and may arrive after later items of its producer
		 * that others took meanwhile (sync.h): counted, not an error. */
		if (seq < c->last[pid] && m->main_closes)
			atomic_fetch_add(&m->reordered, 1);
		else
			FAIL_IF(seq < c->last[pid]);
		if (seq >= c->last[pid])
			c->last[pid] = seq + 1;
		atomic_fetch_add_explicit(&m->seen[pid * m->per_producer + seq], 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&m->received, 1, memory_order_relaxed);
	}
}

static void consumer_drop(void *state)
{
	struct consumer *c = state;
	weft_wait_cancel(&c->w);
}

static void mpmc_run(int workers, uint64_t per_producer)
{
	struct weft_runtime *rt = wt_rt_create(workers);
	struct mpmc m = { .per_producer = per_producer };
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 16, &m.ch), 0);
	m.seen = calloc(PRODUCERS * per_producer, sizeof(*m.seen));
	cr_assert_not_null(m.seen);
	atomic_store(&m.producers_left, PRODUCERS);
	static struct producer p[PRODUCERS];
	static struct consumer c[CONSUMERS];
	memset(p, 0, sizeof(p));
	memset(c, 0, sizeof(c));
	for (int i = 0; i < CONSUMERS; i++) {
		c[i].m = &m;
		cr_assert_eq(weft_spawn_poll(rt, consumer_poll, &c[i], consumer_drop, &c[i].h), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		p[i].m = &m;
		p[i].id = (uint32_t)i;
		cr_assert_eq(weft_spawn_poll(rt, producer_poll, &p[i], producer_drop, &p[i].h), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(weft_join(p[i].h, NULL), 0);
	for (int i = 0; i < CONSUMERS; i++) {
		cr_assert_eq(weft_join(c[i].h, NULL), 0);
		cr_assert(atomic_load(&c[i].finished), "consumer %d did not see -EPIPE", i);
	}
	cr_assert_eq(atomic_load(&errors), 0, "%ld errors (order, range or rc)",
		     atomic_load(&errors));
	cr_assert_eq(atomic_load(&m.received), (long)(PRODUCERS * per_producer));
	for (uint64_t i = 0; i < PRODUCERS * per_producer; i++)
		if (atomic_load_explicit(&m.seen[i], memory_order_relaxed) != 1)
			cr_assert_fail("item %llu of producer %llu received %d times",
				       (unsigned long long)(i % per_producer),
				       (unsigned long long)(i / per_producer), (int)m.seen[i]);
	cr_assert_eq(weft_chan_destroy(m.ch), 0);
	free(m.seen);
	wt_rt_destroy(rt);
}

Test(sync_stress, chan_mpmc_1, .timeout = WT_TMO(120)) { mpmc_run(1, 100000); }
Test(sync_stress, chan_mpmc_2, .timeout = WT_TMO(120)) { mpmc_run(2, 100000); }
Test(sync_stress, chan_mpmc_4, .timeout = WT_TMO(120)) { mpmc_run(4, 100000); }
Test(sync_stress, chan_mpmc_8, .timeout = WT_TMO(120)) { mpmc_run(8, 100000); }

/*
 * Abort storm: 8 producers (20,000 items each) and 16 consumers; the test
 * thread aborts 4 producers and 12 consumers at random moments while they
 * run or wait. Aborted senders keep what they sent (counted before the
 * next send; the item an aborted sender was waiting with may have been
 * taken already, which counts as sent), aborted receivers what they
 * received (an item handed to a receiver that is aborted before it
 * collects it goes back). After all producers
 * are gone the channel is closed; surviving consumers drain it, and the
 * test thread takes whatever is left. Each sent item must be received
 * exactly once and nothing beyond what was sent. Producer 0 stops half
 * way until its abort, so at least one abort lands mid-stream: with the
 * test thread starved of CPU by the two busy workers, its sleeps overran
 * and every producer had finished before its abort (CI, 1 run).
 */
Test(sync_stress, chan_abort_storm, .timeout = WT_TMO(120))
{
	enum { NC = 16, PER = 20000 };
	struct weft_runtime *rt = wt_rt_create(2);
	struct mpmc m = { .per_producer = PER, .main_closes = true };
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 16, &m.ch), 0);
	m.seen = calloc(PRODUCERS * PER, sizeof(*m.seen));
	atomic_store(&m.producers_left, PRODUCERS);
	static struct producer p[PRODUCERS];
	static struct consumer c[NC];
	for (int i = 0; i < NC; i++) {
		c[i].m = &m;
		cr_assert_eq(weft_spawn_poll(rt, consumer_poll, &c[i], consumer_drop, &c[i].h), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		p[i].m = &m;
		p[i].id = (uint32_t)i;
		p[i].stall_at = i == 0 ? PER / 2 : 0;
		cr_assert_eq(weft_spawn_poll(rt, producer_poll, &p[i], producer_drop, &p[i].h), 0);
	}
	uint64_t seed = 12345;
	for (int k = 0; k < 16; k++) {
		usleep(200 + (unsigned)(wt_rand(&seed) % 2000));
		if (k % 4 == 0)
			weft_abort(p[k / 4 * 2].h);   /* producers 0, 2, 4, 6 */
		else
			weft_abort(c[wt_rand(&seed) % 12].h); /* consumers 0..11 */
	}
	for (int i = 0; i < PRODUCERS; i++) {
		int rc = weft_join(p[i].h, NULL);
		cr_assert(rc == 0 || rc == -ECANCELED, "producer join %d", rc);
	}
	cr_assert_eq(weft_chan_close(m.ch), 0);
	for (int i = 0; i < NC; i++) {
		int rc = weft_join(c[i].h, NULL);
		cr_assert(rc == 0 || rc == -ECANCELED, "consumer join %d", rc);
		if (i >= 12)
			cr_assert_eq(rc, 0, "consumer %d was never aborted", i);
	}
	/* Leftovers (possible only if every consumer holding them was aborted). */
	uint64_t item;
	while (weft_chan_try_recv(m.ch, &item) == 0) {
		m.seen[(item >> 32) * PER + (uint32_t)item]++;
		atomic_fetch_add(&m.received, 1);
	}
	cr_assert_eq(weft_chan_try_recv(m.ch, &item), -EPIPE);
	cr_assert_eq(atomic_load(&errors), 0);
	long sent = 0;
	for (int i = 0; i < PRODUCERS; i++) {
		long s = atomic_load(&p[i].sent);
		sent += s;
		/* An aborted producer's pending item may have been taken by a
		 * receiver before the abort landed (the send had completed;
		 * the task never saw it): received once, or not at all. */
		if (s < PER && m.seen[i * PER + s] == 1) {
			s++;
			sent++;
		}
		for (long j = 0; j < PER; j++) {
			int want = j < s ? 1 : 0;
			int got = m.seen[i * PER + j];
			if (got != want)
				cr_assert_fail("producer %d item %ld (sent %ld): received %d times",
					       i, j, s, got);
		}
	}
	cr_assert_eq(atomic_load(&m.received), sent);
	/* Producer 0 was aborted before or at its stall, never past it, so
	 * at least one abort landed mid-stream (sent < PRODUCERS * PER). */
	cr_assert_leq(atomic_load(&p[0].sent), PER / 2, "producer 0 sent %ld, past its stall",
		      atomic_load(&p[0].sent));
	cr_assert_eq(weft_chan_destroy(m.ch), 0);
	free(m.seen);
	wt_rt_destroy(rt);
}

/* ----------------------------------------------------------- mutex_counter */

struct mtask {
	struct weft_mutex *m;
	long *counter;
	int left;
	bool holding, yielded, hold_across_yield;
	struct weft_wait w;
};

static enum weft_poll mtask_poll(void *state, struct weft_cx *cx)
{
	struct mtask *t = state;
	for (;;) {
		if (!t->holding) {
			if (t->left == 0)
				return WEFT_READY;
			int rc = weft_mutex_lock_poll(t->m, &t->w, cx);
			if (rc == WEFT_PENDING)
				return WEFT_PENDING;
			FAIL_IF(rc != 0);
			t->holding = true;
			t->yielded = false;
		}
		long v = *t->counter;
		if (t->hold_across_yield && !t->yielded && (t->left % 16) == 0) {
			t->yielded = true;   /* keep the mutex across a yield */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		*t->counter = v + 1;
		t->left--;
		t->holding = false;
		FAIL_IF(weft_mutex_unlock(t->m) != 0);
	}
}

Test(sync_stress, mutex_counter, .timeout = WT_TMO(120))
{
	enum { N = 64, PER = 2000 };
	struct weft_runtime *rt = wt_rt_create(4);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	long counter = 0;
	static struct mtask t[N];
	struct weft_task *h[N];
	for (int i = 0; i < N; i++) {
		t[i] = (struct mtask){ .m = m, .counter = &counter, .left = PER,
				       .hold_across_yield = i % 4 == 0 };
		cr_assert_eq(weft_spawn_poll(rt, mtask_poll, &t[i], NULL, &h[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert_eq(counter, (long)N * PER);
	cr_assert_eq(weft_mutex_destroy(m), 0);
	wt_rt_destroy(rt);
}

/* --------------------------------------------------------------- sem_bound */

static atomic_int sem_in_use, sem_max;

struct stask {
	struct weft_sem *s;
	int left;
	uint64_t want, rng;
	bool holding;
	struct weft_wait w;
};

static enum weft_poll stask_poll(void *state, struct weft_cx *cx)
{
	struct stask *t = state;
	if (t->holding) {
		int now = atomic_fetch_sub(&sem_in_use, (int)t->want) - (int)t->want;
		FAIL_IF(now < 0);
		FAIL_IF(weft_sem_release_n(t->s, t->want) != 0);
		t->holding = false;
		t->want = 0;
		t->left--;
	}
	if (t->left == 0)
		return WEFT_READY;
	if (!t->want)
		t->want = 1 + wt_rand(&t->rng) % 3;
	int rc = weft_sem_acquire_n_poll(t->s, t->want, &t->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	FAIL_IF(rc != 0);
	int now = atomic_fetch_add(&sem_in_use, (int)t->want) + (int)t->want;
	int mx = atomic_load(&sem_max);
	while (now > mx && !atomic_compare_exchange_weak(&sem_max, &mx, now))
		;
	t->holding = true;
	/* Hold it across a yield, then release on the next poll with a new
	 * request size. */
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

Test(sync_stress, sem_bound, .timeout = WT_TMO(120))
{
	enum { N = 32, PER = 1000 };
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(3, &s), 0);
	static struct stask t[N];
	struct weft_task *h[N];
	for (int i = 0; i < N; i++) {
		t[i] = (struct stask){ .s = s, .left = PER, .rng = (uint64_t)i + 1 };
		cr_assert_eq(weft_spawn_poll(rt, stask_poll, &t[i], NULL, &h[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert_leq(atomic_load(&sem_max), 3, "%d permits in use at once", atomic_load(&sem_max));
	cr_assert_eq(atomic_load(&sem_in_use), 0);
	cr_assert_eq(weft_sem_available(s), 3);
	cr_assert_eq(weft_sem_destroy(s), 0);
	wt_rt_destroy(rt);
}

/* --------------------------------------------------------- notify_pingpong */

struct pp {
	struct weft_notify *mine, *theirs;
	int left;
	bool serve_first;
	struct weft_wait w;
};

static enum weft_poll pp_poll(void *state, struct weft_cx *cx)
{
	struct pp *t = state;
	if (t->serve_first) {
		t->serve_first = false;
		weft_notify_one(t->theirs);
	}
	while (t->left > 0) {
		int rc = weft_notify_wait_poll(t->mine, &t->w, cx);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		FAIL_IF(rc != 0);
		t->left--;
		weft_notify_one(t->theirs);
	}
	return WEFT_READY;
}

Test(sync_stress, notify_pingpong, .timeout = WT_TMO(120))
{
	enum { ROUNDS = 100000 };
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_notify *a, *b;
	cr_assert_eq(weft_notify_create(&a), 0);
	cr_assert_eq(weft_notify_create(&b), 0);
	struct pp x = { .mine = a, .theirs = b, .left = ROUNDS, .serve_first = true };
	struct pp y = { .mine = b, .theirs = a, .left = ROUNDS };
	struct weft_task *hx, *hy;
	cr_assert_eq(weft_spawn_poll(rt, pp_poll, &y, NULL, &hy), 0);
	cr_assert_eq(weft_spawn_poll(rt, pp_poll, &x, NULL, &hx), 0);
	cr_assert_eq(weft_join(hx, NULL), 0);
	cr_assert_eq(weft_join(hy, NULL), 0);
	cr_assert_eq(atomic_load(&errors), 0);
	/* y's last notify left a permit for x (x had stopped waiting). */
	cr_assert_eq(weft_notify_destroy(a), 0);
	cr_assert_eq(weft_notify_destroy(b), 0);
	wt_rt_destroy(rt);
}

/* ----------------------------------------------------------- oneshot_chain */

/* Link i receives a running sum on its oneshot, adds i, sends it on the
 * next one; the test thread receives the last. */
struct link {
	struct weft_oneshot *in, *out;
	uint64_t add;
	struct weft_wait w;
	bool received;
};

static enum weft_poll link_poll(void *state, struct weft_cx *cx)
{
	struct link *l = state;
	void *v;
	int rc = weft_oneshot_recv_poll(l->in, &l->w, cx, &v);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	l->received = true;
	FAIL_IF(rc != 0);
	FAIL_IF(weft_oneshot_send(l->out, (void *)((uintptr_t)v + l->add)) != 0);
	return WEFT_READY;
}

static void link_drop(void *state)
{
	struct link *l = state;
	weft_wait_cancel(&l->w);
	if (!l->received) {
		weft_oneshot_receiver_drop(l->in);
		weft_oneshot_sender_drop(l->out);
	}
	free(l);
}

Test(sync_stress, oneshot_chain, .timeout = WT_TMO(120))
{
	enum { N = 100000 };
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_oneshot *first, *in;
	cr_assert_eq(weft_oneshot_create(NULL, &first), 0);
	in = first;
	for (uint64_t i = 1; i <= N; i++) {
		struct link *l = calloc(1, sizeof(*l));
		cr_assert_not_null(l);
		l->in = in;
		l->add = i;
		cr_assert_eq(weft_oneshot_create(NULL, &l->out), 0);
		in = l->out;
		cr_assert_eq(weft_spawn_poll(rt, link_poll, l, link_drop, NULL), 0);
	}
	cr_assert_eq(weft_oneshot_send(first, (void *)0), 0);
	void *v;
	cr_assert_eq(weft_oneshot_recv(in, &v), 0);
	cr_assert_eq((uintptr_t)v, (uint64_t)N * (N + 1) / 2);
	cr_assert_eq(atomic_load(&errors), 0);
	wt_rt_destroy(rt);
}

/* -------------------------------------------------------- waitgroup_rounds */

static enum weft_poll done_poll(void *state, struct weft_cx *cx)
{
	FAIL_IF(weft_waitgroup_done(state) != 0);
	return WEFT_READY;
}

struct wgwaiter { struct weft_waitgroup *wg; struct weft_wait w; };

static enum weft_poll wgwaiter_poll(void *state, struct weft_cx *cx)
{
	struct wgwaiter *t = state;
	int rc = weft_waitgroup_wait_poll(t->wg, &t->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	FAIL_IF(rc != 0);
	return WEFT_READY;
}

Test(sync_stress, waitgroup_rounds, .timeout = WT_TMO(120))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_waitgroup *wg;
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	for (int round = 0; round < 1000; round++) {
		cr_assert_eq(weft_waitgroup_add(wg, 16), 0);
		struct wgwaiter ww = { .wg = wg };
		struct weft_task *h;
		cr_assert_eq(weft_spawn_poll(rt, wgwaiter_poll, &ww, NULL, &h), 0);
		for (int i = 0; i < 16; i++)
			cr_assert_eq(weft_spawn_poll(rt, done_poll, wg, NULL, NULL), 0);
		cr_assert_eq(weft_join(h, NULL), 0);
	}
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert_eq(weft_waitgroup_destroy(wg), 0);
	wt_rt_destroy(rt);
}

/* --------------------------------------------------- shutdown_with_waiters */

struct anyw {
	int kind;
	void *obj;
	struct weft_wait w;
	atomic_int *drops;
	bool got_mutex;
};

static enum weft_poll anyw_poll(void *state, struct weft_cx *cx)
{
	struct anyw *t = state;
	uint64_t x;
	int rc = 0;
	switch (t->kind) {
	case 0: rc = weft_chan_recv_poll(t->obj, &t->w, cx, &x); break;
	case 1: rc = weft_notify_wait_poll(t->obj, &t->w, cx); break;
	case 2:
		rc = weft_mutex_lock_poll(t->obj, &t->w, cx);
		if (rc == 0)
			weft_mutex_unlock(t->obj);
		break;
	case 3: rc = weft_sem_acquire_n_poll(t->obj, 1, &t->w, cx); break;
	case 4: rc = weft_waitgroup_wait_poll(t->obj, &t->w, cx); break;
	}
	return rc == WEFT_PENDING ? WEFT_PENDING : WEFT_READY;
}

static void anyw_drop(void *state)
{
	struct anyw *t = state;
	weft_wait_cancel(&t->w);
	atomic_fetch_add(t->drops, 1);
}

Test(sync_stress, shutdown_with_waiters, .timeout = WT_TMO(120))
{
	enum { PER_KIND = 200 };
	for (int cycle = 0; cycle < 20; cycle++) {
		struct weft_runtime *rt = wt_rt_create(2);
		struct weft_chan *ch;
		struct weft_notify *n;
		struct weft_mutex *m;
		struct weft_sem *s;
		struct weft_waitgroup *wg;
		cr_assert_eq(weft_chan_create(8, 4, &ch), 0);
		cr_assert_eq(weft_notify_create(&n), 0);
		cr_assert_eq(weft_mutex_create(&m), 0);
		cr_assert_eq(weft_sem_create(0, &s), 0);
		cr_assert_eq(weft_waitgroup_create(&wg), 0);
		cr_assert_eq(weft_mutex_try_lock(m), 0);
		cr_assert_eq(weft_waitgroup_add(wg, 1), 0);
		void *objs[5] = { ch, n, m, s, wg };
		static struct anyw t[5 * PER_KIND];
		atomic_int drops = 0;
		for (int i = 0; i < 5 * PER_KIND; i++) {
			t[i] = (struct anyw){ .kind = i % 5, .obj = objs[i % 5], .drops = &drops };
			cr_assert_eq(weft_spawn_poll(rt, anyw_poll, &t[i], anyw_drop, NULL), 0);
		}
		/* Let some of them park, and wake some mid-flight. */
		usleep(500 + 300 * (unsigned)cycle);
		uint64_t x = 1;
		weft_chan_try_send(ch, &x);
		weft_notify_one(n);
		weft_sem_release_n(s, 3);
		weft_mutex_unlock(m);
		cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
		cr_assert_eq(atomic_load(&drops), 5 * PER_KIND, "every drop ran once");
		cr_assert_eq(weft_chan_destroy(ch), 0);
		cr_assert_eq(weft_notify_destroy(n), 0);
		/* The mutex ends up free: each holder unlocked it, and a grant
		 * held by a cancelled task was passed on or released. */
		cr_assert_eq(weft_mutex_destroy(m), 0);
		cr_assert_eq(weft_sem_destroy(s), 0);
		cr_assert_eq(weft_waitgroup_destroy(wg), 0);
		wt_rt_destroy(rt);
	}
}
