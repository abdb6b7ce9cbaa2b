/*
 * tsan_api.c - ThreadSanitizer scenarios for the application API of
 * issue 14 (notify enable, tokens, join sets, ...): `tsan_api SCENARIO`
 * runs one; it passes when its own checks hold and TSan reports nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/time.h>
#include <weft/weft.h>

#include "tsan_check.h"

static struct weft_runtime *mk(int workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	CHECK_EQ(weft_runtime_create(&o, &rt), 0);
	return rt;
}

static void rm_rt(struct weft_runtime *rt) { CHECK_EQ(weft_runtime_destroy(rt), 0); }

/* ------------------------------------------------ notify: the flag pattern */

struct flag_race { struct weft_notify *n; atomic_int flag, ack; int rounds; };

static void *flag_waiter(void *arg)
{
	struct flag_race *r = arg;
	for (int i = 1; i <= r->rounds; i++) {
		while (atomic_load(&r->flag) < i) {
			struct weft_wait w = WEFT_WAIT_INIT;
			CHECK_EQ(weft_notify_enable(r->n, &w), 0);
			if (atomic_load(&r->flag) >= i) {
				weft_wait_cancel(&w);
				break;
			}
			CHECK_EQ(weft_notify_wait_enabled_timeout(r->n, &w, 5000000000ull), 0);
		}
		atomic_store(&r->ack, i);
	}
	return NULL;
}

static void *flag_notifier(void *arg)
{
	struct flag_race *r = arg;
	for (int i = 1; i <= r->rounds; i++) {
		while (atomic_load(&r->ack) < i - 1)
			weft_yield();
		atomic_store(&r->flag, i);
		weft_notify_all(r->n);
	}
	return NULL;
}

static void scenario_notify(void)
{
	struct weft_runtime *rt = mk(2);
	struct flag_race r = { .rounds = 2000 };
	CHECK_EQ(weft_notify_create(&r.n), 0);
	struct weft_task *a, *b;
	CHECK_EQ(weft_spawn(rt, flag_waiter, &r, &a), 0);
	CHECK_EQ(weft_spawn(rt, flag_notifier, &r, &b), 0);
	CHECK_EQ(weft_join(a, NULL), 0);
	CHECK_EQ(weft_join(b, NULL), 0);
	CHECK_EQ(weft_notify_destroy(r.n), 0);
	rm_rt(rt);
}

/* --------------------------------------------- join sets and tokens */

#define JS_N 500
static atomic_int g_seen[JS_N];

static void *js_member(void *arg)
{
	weft_yield();
	return arg;
}

static void *js_wait_token(void *arg)
{
	weft_token_wait(arg);
	return (void *)(intptr_t)JS_N; /* not counted in g_seen */
}

static void *js_joiner(void *arg)
{
	struct weft_joinset *s = arg;
	void *r;
	int rc;
	while ((rc = weft_joinset_join_next(s, &r, NULL)) != -ENOENT)
		if (rc == 0 && (intptr_t)r < JS_N)
			atomic_fetch_add(&g_seen[(intptr_t)r], 1);
	return NULL;
}

static void scenario_joinset(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_joinset *s;
	struct weft_token *root, *child;
	CHECK_EQ(weft_joinset_create(&s), 0);
	CHECK_EQ(weft_token_create(NULL, &root), 0);
	CHECK_EQ(weft_token_create(root, &child), 0);
	for (intptr_t i = 0; i < JS_N; i++)
		CHECK_EQ(weft_joinset_spawn(s, rt, js_member, (void *)i, NULL), 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(weft_joinset_spawn(s, rt, js_wait_token, child, NULL), 0);
	struct weft_task *j[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_spawn(rt, js_joiner, s, &j[i]), 0);
	CHECK_EQ(weft_token_cancel(root), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_join(j[i], NULL), 0);
	for (int i = 0; i < JS_N; i++)
		CHECK_EQ(atomic_load(&g_seen[i]), 1);
	CHECK_EQ(weft_joinset_destroy(s), 0);
	/* A set destroyed with members still running. */
	struct weft_token *never;
	CHECK_EQ(weft_token_create(NULL, &never), 0);
	CHECK_EQ(weft_joinset_create(&s), 0);
	for (int i = 0; i < 50; i++)
		CHECK_EQ(weft_joinset_spawn(s, rt, js_wait_token, never, NULL), 0);
	CHECK_EQ(weft_joinset_destroy(s), 0);
	/* The members may still be running up to their wait: the token must
	 * outlive them (runtime destroy waits for every task). */
	rm_rt(rt);
	CHECK_EQ(weft_token_destroy(never), 0);
	CHECK_EQ(weft_token_destroy(child), 0);
	CHECK_EQ(weft_token_destroy(root), 0);
}


/* ------------------------------------------------------ token deadlines */

/* Deadline tokens made, waited on, cancelled and destroyed from fibers and
 * threads while their deadline tasks fire on the workers: the token's
 * memory is shared with the task until the last of the two lets go. */
#define DL_N 200

static void *dl_fiber(void *arg)
{
	struct weft_token *parent = arg;
	for (int i = 0; i < DL_N; i++) {
		struct weft_token *t;
		uint64_t dl = weft_now_ns() + (uint64_t)(i % 4) * 100000u;
		CHECK_EQ(weft_token_create_deadline(NULL, parent, dl, &t), 0);
		if (i % 3 == 0)
			CHECK_EQ(weft_token_wait(t), 0);
		else if (i % 3 == 1)
			CHECK_EQ(weft_token_cancel(t), 0);
		CHECK_EQ(weft_token_destroy(t), 0);
	}
	return NULL;
}

static void *dl_thread(void *arg)
{
	struct weft_runtime *rt = arg;
	for (int i = 0; i < DL_N; i++) {
		struct weft_token *t;
		CHECK_EQ(weft_token_create_deadline(rt, NULL, weft_now_ns() + 50000, &t), 0);
		if (i % 2)
			CHECK_EQ(weft_token_wait(t), 0);
		CHECK_EQ(weft_token_destroy(t), 0);
	}
	return NULL;
}

static void scenario_deadline(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_token *root;
	CHECK_EQ(weft_token_create(NULL, &root), 0);
	struct weft_task *f[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_spawn(rt, dl_fiber, root, &f[i]), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, dl_thread, rt), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(f[i], NULL), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	/* tokens left to the shutdown: their tasks are dropped by it */
	struct weft_token *left[8];
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_token_create_deadline(rt, NULL, weft_now_ns() + 3600000000000ull,
						    &left[i]), 0);
	rm_rt(rt);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_token_destroy(left[i]), 0);
	CHECK_EQ(weft_token_destroy(root), 0);
}

/* ----------------------------------------------------------------- barrier */

/* Phases over plain (not atomic) data: each party writes its own slot in a
 * round, and after the barrier reads every other party's slot. TSan sees a
 * race unless the barrier orders each write before the reads. */
#define BAR_P 4
#define BAR_ROUNDS 300
static struct weft_barrier *g_bar;
static int g_slots[BAR_P];
static atomic_int g_bar_leaders;

static void bar_party(int me)
{
	for (int r = 1; r <= BAR_ROUNDS; r++) {
		g_slots[me] = r;
		bool leader = false;
		CHECK_EQ(weft_barrier_wait(g_bar, &leader), 0);
		if (leader)
			atomic_fetch_add(&g_bar_leaders, 1);
		for (int i = 0; i < BAR_P; i++)
			CHECK_EQ(g_slots[i], r);
		CHECK_EQ(weft_barrier_wait(g_bar, NULL), 0); /* nobody writes r+1 yet */
	}
}

static void *bar_fiber(void *arg) { bar_party((int)(intptr_t)arg); return NULL; }

static void scenario_barrier(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_barrier_create(BAR_P, &g_bar), 0);
	struct weft_task *f[BAR_P - 1];
	for (int i = 0; i < BAR_P - 1; i++)
		CHECK_EQ(weft_spawn(rt, bar_fiber, (void *)(intptr_t)i, &f[i]), 0);
	bar_party(BAR_P - 1); /* this thread is a party too */
	for (int i = 0; i < BAR_P - 1; i++)
		CHECK_EQ(weft_join(f[i], NULL), 0);
	CHECK_EQ(atomic_load(&g_bar_leaders), BAR_ROUNDS);
	CHECK_EQ(weft_barrier_destroy(g_bar), 0);
	rm_rt(rt);
}

/* ------------------------------------------------------------------ select */

#define SEL_N 20000
static atomic_int g_sel_seen[SEL_N];

struct sel { struct weft_chan *a, *b; struct weft_token *stop; atomic_long got; atomic_int next; };

static void *sel_producer(void *arg)
{
	struct sel *s = arg;
	long me = atomic_fetch_add(&s->next, 1);
	for (long v = me; v < SEL_N; v += 2) {
		struct weft_select_arm arms[2] = { WEFT_SEL_SEND(s->a, &v), WEFT_SEL_SEND(s->b, &v) };
		int r = weft_select(arms, 2, WEFT_FOREVER);
		CHECK(r >= 0 && arms[r].rc == 0, "select send %d", r);
	}
	return NULL;
}

static void *sel_consumer(void *arg)
{
	struct sel *s = arg;
	for (;;) {
		long v;
		struct weft_select_arm arms[3] = { WEFT_SEL_RECV(s->a, &v), WEFT_SEL_RECV(s->b, &v),
						   WEFT_SEL_CANCELLED(s->stop) };
		int r = weft_select(arms, 3, WEFT_FOREVER);
		if (r == 2)
			return NULL;
		CHECK(r >= 0 && arms[r].rc == 0 && v >= 0 && v < SEL_N, "select recv %d", r);
		CHECK_EQ(atomic_fetch_add(&g_sel_seen[v], 1), 0);
		atomic_fetch_add(&s->got, 1);
	}
}

static void scenario_select(void)
{
	struct weft_runtime *rt = mk(2);
	struct sel s = { 0 };
	CHECK_EQ(weft_chan_create(sizeof(long), 2, &s.a), 0);
	CHECK_EQ(weft_chan_create(sizeof(long), 2, &s.b), 0);
	CHECK_EQ(weft_token_create(NULL, &s.stop), 0);
	struct weft_task *p[2], *c[2];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, sel_consumer, &s, &c[i]), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, sel_consumer, &s), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, sel_producer, &s, &p[i]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(p[i], NULL), 0);
	for (int k = 0; k < 60000 && atomic_load(&s.got) < SEL_N; k++)
		usleep(500);
	CHECK_EQ(atomic_load(&s.got), SEL_N);
	CHECK_EQ(weft_token_cancel(s.stop), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(c[i], NULL), 0);
	pthread_join(th, NULL);
	CHECK_EQ(weft_chan_destroy(s.a), 0);
	CHECK_EQ(weft_chan_destroy(s.b), 0);
	CHECK_EQ(weft_token_destroy(s.stop), 0);
	rm_rt(rt);
}

/* ------------------------------------------------- rwlock, cond and once */

struct locks {
	struct weft_rwlock *l;
	struct weft_mutex *m;
	struct weft_cond *c;
	long value, queue;          /* value under l; queue under m */
	atomic_long writes;
};

static struct weft_once g_once = WEFT_ONCE_INIT;
static long g_once_value;
static void once_fn(void *arg) { weft_yield(); g_once_value = (long)(intptr_t)arg; }

static void *locks_worker(void *arg)
{
	struct locks *k = arg;
	CHECK_EQ(weft_once(&g_once, once_fn, (void *)7), 0);
	CHECK_EQ(g_once_value, 7);
	for (int i = 0; i < 500; i++) {
		if (i % 3 == 0) {
			CHECK_EQ(weft_rwlock_write(k->l), 0);
			k->value++;
			atomic_fetch_add(&k->writes, 1);
			CHECK_EQ(weft_rwlock_write_unlock(k->l), 0);
		} else {
			CHECK_EQ(weft_rwlock_read(k->l), 0);
			CHECK(k->value >= 0, "value");
			CHECK_EQ(weft_rwlock_read_unlock(k->l), 0);
		}
		/* a producer/consumer pair through the condition variable */
		CHECK_EQ(weft_mutex_lock(k->m), 0);
		if (i % 2 == 0) {
			k->queue++;
			weft_cond_signal(k->c);
		} else {
			while (k->queue == 0)
				CHECK_EQ(weft_cond_wait(k->c, k->m), 0);
			k->queue--;
		}
		CHECK_EQ(weft_mutex_unlock(k->m), 0);
	}
	return NULL;
}

static void scenario_locks(void)
{
	struct weft_runtime *rt = mk(2);
	struct locks k = { 0 };
	CHECK_EQ(weft_rwlock_create(&k.l), 0);
	CHECK_EQ(weft_mutex_create(&k.m), 0);
	CHECK_EQ(weft_cond_create(&k.c), 0);
	struct weft_task *t[6];
	for (int i = 0; i < 6; i++)
		CHECK_EQ(weft_spawn(rt, locks_worker, &k, &t[i]), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, locks_worker, &k), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	pthread_join(th, NULL);
	CHECK_EQ(k.value, atomic_load(&k.writes));
	CHECK_EQ(k.queue, 0);
	CHECK_EQ(weft_rwlock_destroy(k.l), 0);
	CHECK_EQ(weft_cond_destroy(k.c), 0);
	CHECK_EQ(weft_mutex_destroy(k.m), 0);
	rm_rt(rt);
}

/* -------------------------------------------------------------------- copy */

/* Proxies: fibers on two workers (and one thread) copy both ways between a
 * client's socket pair and a server's; the client and server threads send
 * at once, each then reads the other's bytes to the end. */
#define CP_PROXIES 4
#define CP_BYTES (512 * 1024 + 3)

struct cp_end { int fd; long got; };

/* --------------------------------- once: a waiter cancelled while others poll */

/* A fiber waiting in weft_once is aborted (weft_wait_cancel reads the wait
 * list's lock pointer without the lock) after a thread's wait has polled
 * the same once: that poll stored the pointer again, a race. */
static struct weft_once oc_once = WEFT_ONCE_INIT;
static atomic_int oc_fiber_rc = 1;
static void oc_slow(void *arg) { (void)arg; usleep(300000); }
static void *oc_thread(void *arg) { (void)arg; CHECK_EQ(weft_once(&oc_once, oc_slow, NULL), 0); return NULL; }
static void *oc_fiber(void *arg)
{
	(void)arg;
	atomic_store(&oc_fiber_rc, weft_once(&oc_once, oc_slow, NULL));
	return NULL;
}

static void scenario_once_cancel(void)
{
	struct weft_runtime *rt = mk(1);
	pthread_t runner, waiter;
	CHECK_EQ(pthread_create(&runner, NULL, oc_thread, NULL), 0);
	usleep(30000); /* oc_slow runs */
	struct weft_task *f;
	CHECK_EQ(weft_spawn(rt, oc_fiber, NULL, &f), 0);
	usleep(30000); /* the fiber waits */
	CHECK_EQ(pthread_create(&waiter, NULL, oc_thread, NULL), 0);
	usleep(30000); /* the thread's wait polled */
	CHECK_EQ(weft_abort(f), 0);
	weft_join(f, NULL);
	CHECK_EQ(atomic_load(&oc_fiber_rc), -ECANCELED);
	pthread_join(runner, NULL);
	pthread_join(waiter, NULL);
	CHECK(weft_once_done(&oc_once), "once not done");
	rm_rt(rt);
}

static void *cp_read(void *arg)
{
	struct cp_end *e = arg;
	char buf[8192];
	ssize_t r;
	while ((r = read(e->fd, buf, sizeof buf)) > 0)
		e->got += r;
	return NULL;
}

/* Sends CP_BYTES and its end while another thread reads the other way
 * (both ends writing before reading would fill every buffer). */
static void *cp_talk(void *arg)
{
	struct cp_end *e = arg;
	pthread_t rd;
	CHECK_EQ(pthread_create(&rd, NULL, cp_read, e), 0);
	static const char junk[4096];
	for (long sent = 0; sent < CP_BYTES;) {
		long k = CP_BYTES - sent < (long)sizeof junk ? CP_BYTES - sent : (long)sizeof junk;
		ssize_t w = write(e->fd, junk, (size_t)k);
		CHECK(w > 0, "write %zd", w);
		sent += w;
	}
	CHECK_EQ(shutdown(e->fd, SHUT_WR), 0);
	pthread_join(rd, NULL);
	return NULL;
}

struct cp_proxy { struct weft_io *a, *b; uint64_t ab, ba; int rc; };

static void *cp_run(void *arg)
{
	struct cp_proxy *p = arg;
	p->rc = weft_io_copy_bidirectional(p->a, p->b, &p->ab, &p->ba);
	return NULL;
}

/* proxy 1 runs as a poll task with a copier */
struct cp_poll { struct cp_proxy *p; struct weft_io_copier *c; };

static enum weft_poll cp_poll_fn(void *state, struct weft_cx *cx)
{
	struct cp_poll *q = state;
	int rc = weft_io_copier_poll(q->c, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	q->p->rc = rc;
	weft_io_copier_counts(q->c, &q->p->ba, &q->p->ab);
	return WEFT_READY;
}

static void cp_poll_drop(void *state)
{
	struct cp_poll *q = state;
	weft_io_copier_destroy(q->c);
}

static void scenario_copy(void)
{
	struct cp_poll q1;
	struct weft_runtime *rt = mk(2);
	struct cp_proxy px[CP_PROXIES];
	struct cp_end cl[CP_PROXIES], sv[CP_PROXIES];
	pthread_t th[2 * CP_PROXIES], proxy_thread;
	struct weft_task *t[CP_PROXIES];
	for (int i = 0; i < CP_PROXIES; i++) {
		int c[2], s[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, c), 0);
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
		px[i] = (struct cp_proxy){ .rc = 1 };
		CHECK_EQ(weft_io_register(rt, c[1], &px[i].a), 0);
		CHECK_EQ(weft_io_register(rt, s[0], &px[i].b), 0);
		cl[i] = (struct cp_end){ .fd = c[0] };
		sv[i] = (struct cp_end){ .fd = s[1] };
		if (i == 0) {
			CHECK_EQ(pthread_create(&proxy_thread, NULL, cp_run, &px[i]), 0);
		} else if (i == 1) {
			q1.p = &px[i];
			/* dst a, src b: counts come back as (b -> a, a -> b) */
			CHECK_EQ(weft_io_copier_create(px[i].a, px[i].b, WEFT_COPY_BOTH, &q1.c), 0);
			CHECK_EQ(weft_spawn_poll(rt, cp_poll_fn, &q1, cp_poll_drop, &t[i]), 0);
		} else
			CHECK_EQ(weft_spawn(rt, cp_run, &px[i], &t[i]), 0);
		CHECK_EQ(pthread_create(&th[2 * i], NULL, cp_talk, &cl[i]), 0);
		CHECK_EQ(pthread_create(&th[2 * i + 1], NULL, cp_talk, &sv[i]), 0);
	}
	pthread_join(proxy_thread, NULL);
	for (int i = 1; i < CP_PROXIES; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 2 * CP_PROXIES; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < CP_PROXIES; i++) {
		CHECK_EQ(px[i].rc, 0);
		CHECK_EQ(px[i].ab, (uint64_t)CP_BYTES);
		CHECK_EQ(px[i].ba, (uint64_t)CP_BYTES);
		CHECK_EQ(cl[i].got, CP_BYTES);
		CHECK_EQ(sv[i].got, CP_BYTES);
		CHECK_EQ(weft_io_close(px[i].a), 0);
		CHECK_EQ(weft_io_close(px[i].b), 0);
		close(cl[i].fd);
		close(sv[i].fd);
	}
	rm_rt(rt);
}

/* ------------------------------------------------------------------ locals */

/* Fiber-local values on fibers that move between the workers: each value
 * is written after every resume (on whichever thread) and freed by its
 * dtor on the fiber; a value set from a dtor is destroyed too. */
#define LC_FIBERS 64
static atomic_int lc_dtors, lc_bad;

static void lc_free(void *v)
{
	atomic_fetch_add(&lc_dtors, 1);
	free(v);
}

static const struct weft_local_key lc_key = { .dtor = lc_free };
static const struct weft_local_key lc_key2 = { .dtor = lc_free };

static void lc_free_and_set(void *v)
{
	lc_free(v);
	if (weft_local_set(&lc_key2, malloc(16)))
		atomic_fetch_add(&lc_bad, 1);
}

static const struct weft_local_key lc_key3 = { .dtor = lc_free_and_set };

static void *lc_fiber(void *arg)
{
	long *v = calloc(1, sizeof(*v));
	CHECK_EQ(weft_local_set(&lc_key, v), 0);
	CHECK_EQ(weft_local_set(&lc_key3, malloc(8)), 0);
	for (int i = 0; i < 300; i++) {
		CHECK_EQ(weft_yield(), 0);
		long *got = weft_local_get(&lc_key);
		if (got != v || *got != i)
			atomic_fetch_add(&lc_bad, 1);
		(*got)++;
		volatile unsigned x = 0;
		for (int k = 0; k < 100; k++)
			x += k;
	}
	return NULL;
}

static void *lc_spawner(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_task *t[LC_FIBERS];
	for (int i = 0; i < LC_FIBERS; i++)
		CHECK_EQ(weft_spawn(rt, lc_fiber, NULL, &t[i]), 0);
	for (int i = 0; i < LC_FIBERS; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	return NULL;
}

static void scenario_locals(void)
{
	struct weft_runtime *rt = mk(2);
	for (int round = 0; round < 3; round++) {
		struct weft_task *h;
		CHECK_EQ(weft_spawn(rt, lc_spawner, rt, &h), 0);
		CHECK_EQ(weft_join(h, NULL), 0);
	}
	CHECK_EQ(atomic_load(&lc_bad), 0);
	CHECK_EQ(atomic_load(&lc_dtors), 3 * LC_FIBERS * 3);
	rm_rt(rt);
}

/* --------------------------------------------------------------- unbounded */

/* An unbounded channel whose ring grows and shrinks under 2 producer fibers
 * and a producer thread while 2 receiver fibers and a receiver thread take
 * items (24 bytes: copied, not inline); every item received once. */
#define UB_PER 20000
struct ub_item { uint32_t who, seq; uint64_t pad; uint64_t check; };
static struct weft_chan *ub_ch;
static atomic_int ub_seen[3][UB_PER];
static atomic_long ub_got;

static void *ub_produce(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;
	for (uint32_t s = 0; s < UB_PER; s++) {
		struct ub_item it = { who, s, 0, (uint64_t)who * 1000003u + s };
		CHECK_EQ(weft_chan_send(ub_ch, &it), 0);
		if (s % 1000 == 0 && weft_in_fiber())
			weft_yield();
	}
	return NULL;
}

static void *ub_receive(void *arg)
{
	struct ub_item it;
	while (weft_chan_recv(ub_ch, &it) == 0) {
		CHECK_EQ(it.check, (uint64_t)it.who * 1000003u + it.seq);
		CHECK_EQ(atomic_fetch_add(&ub_seen[it.who][it.seq], 1), 0);
		atomic_fetch_add(&ub_got, 1);
	}
	return NULL;
}

static void scenario_unbounded(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_chan_create_unbounded(sizeof(struct ub_item), &ub_ch), 0);
	struct weft_task *p[2], *r[2];
	pthread_t pt, rt_th;
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, ub_receive, NULL, &r[i]), 0);
	CHECK_EQ(pthread_create(&rt_th, NULL, ub_receive, NULL), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, ub_produce, (void *)(uintptr_t)i, &p[i]), 0);
	CHECK_EQ(pthread_create(&pt, NULL, ub_produce, (void *)(uintptr_t)2), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(p[i], NULL), 0);
	pthread_join(pt, NULL);
	CHECK_EQ(weft_chan_close(ub_ch), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(r[i], NULL), 0);
	pthread_join(rt_th, NULL);
	CHECK_EQ(atomic_load(&ub_got), 3L * UB_PER);
	CHECK_EQ(weft_chan_destroy(ub_ch), 0);
	rm_rt(rt);
}

/* -------------------------------------------------------------- recv_many */

/* Batch receives on a small bounded channel of 24-byte items: two fibers
 * with weft_chan_recv_many and a thread with the timeout and try forms
 * take batches while two producer fibers and a producer thread wait for
 * room (a batch refills from them); every item received once. */
#define RM_PER 20000
static struct weft_chan *rm_ch;
static atomic_int rm_seen[3][RM_PER];
static atomic_long rm_got;

static void *rm_produce(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;
	for (uint32_t s = 0; s < RM_PER; s++) {
		struct ub_item it = { who, s, 0, (uint64_t)who * 1000003u + s };
		CHECK_EQ(weft_chan_send(rm_ch, &it), 0);
	}
	return NULL;
}

static void rm_account(const struct ub_item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(it[i].check, (uint64_t)it[i].who * 1000003u + it[i].seq);
		CHECK_EQ(atomic_fetch_add(&rm_seen[it[i].who][it[i].seq], 1), 0);
	}
	atomic_fetch_add(&rm_got, (long)n);
}

static void *rm_receive(void *arg)
{
	struct ub_item it[11];
	size_t n;
	int rc;
	if (arg) { /* the thread: timeout and try forms */
		for (int i = 0;; i++) {
			rc = i % 2 ? weft_chan_try_recv_many(rm_ch, it, 11, &n)
				   : weft_chan_recv_many_timeout(rm_ch, it, 11, &n, 20000000);
			if (rc == -EAGAIN || rc == -ETIMEDOUT)
				continue;
			if (rc)
				break;
			rm_account(it, n);
		}
	} else {
		while ((rc = weft_chan_recv_many(rm_ch, it, 11, &n)) == 0)
			rm_account(it, n);
	}
	CHECK_EQ(rc, -EPIPE);
	return NULL;
}

static void scenario_many(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_chan_create(sizeof(struct ub_item), 8, &rm_ch), 0);
	struct weft_task *p[2], *r[2];
	pthread_t pt, rt_th;
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, rm_receive, NULL, &r[i]), 0);
	CHECK_EQ(pthread_create(&rt_th, NULL, rm_receive, (void *)1), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, rm_produce, (void *)(uintptr_t)i, &p[i]), 0);
	CHECK_EQ(pthread_create(&pt, NULL, rm_produce, (void *)(uintptr_t)2), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(p[i], NULL), 0);
	pthread_join(pt, NULL);
	CHECK_EQ(weft_chan_close(rm_ch), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(r[i], NULL), 0);
	pthread_join(rt_th, NULL);
	CHECK_EQ(atomic_load(&rm_got), 3L * RM_PER);
	CHECK_EQ(weft_chan_destroy(rm_ch), 0);
	rm_rt(rt);
}

/* ------------------------------------------------------------------- lines */

/* Buffered readers waited on with the select LINE arm: two fibers and a
 * thread each read one socket's lines, written in odd-sized chunks by
 * writer threads, beside a channel arm fed by another thread. */
#define LN_READERS 3
#define LN_LINES 3000
struct ln_job { struct weft_io *io; int wfd; struct weft_chan *ch; long lines, items; };

static void *ln_write(void *arg)
{
	struct ln_job *j = arg;
	char buf[64];
	for (int i = 0; i < LN_LINES; i++) {
		int n = snprintf(buf, sizeof buf, "line %d\n", i);
		for (int off = 0; off < n;) {
			int k = 1 + (i + off) % 5;
			if (k > n - off)
				k = n - off;
			ssize_t w = write(j->wfd, buf + off, (size_t)k);
			CHECK(w > 0, "write: %zd", w);
			off += (int)w;
		}
	}
	close(j->wfd);
	return NULL;
}

static void *ln_feed(void *arg)
{
	struct ln_job *j = arg;
	for (long i = 0; i < 500; i++)
		CHECK_EQ(weft_chan_send(j->ch, &i), 0);
	return NULL;
}

static void *ln_read(void *arg)
{
	struct ln_job *j = arg;
	struct weft_reader *r;
	CHECK_EQ(weft_reader_create(j->io, 32, &r), 0);
	for (;;) {
		struct weft_line ln;
		long item;
		struct weft_select_arm arms[] = { WEFT_SEL_RECV(j->ch, &item),
						  WEFT_SEL_LINE(r, '\n', &ln) };
		int i = weft_select(arms, 2, weft_now_ns() + 10000000000ull);
		CHECK(i == 0 || i == 1, "select: %d", i);
		if (i == 0) {
			j->items++;
			continue;
		}
		CHECK_EQ(arms[1].rc, 0);
		if (ln.len == 0)
			break;
		char want[64];
		int n = snprintf(want, sizeof want, "line %ld\n", j->lines);
		CHECK(ln.len == (size_t)n && !memcmp(ln.data, want, ln.len), "line %ld", j->lines);
		j->lines++;
	}
	weft_reader_destroy(r);
	return NULL;
}

static void scenario_lines(void)
{
	struct weft_runtime *rt = mk(2);
	struct ln_job j[LN_READERS];
	pthread_t wr[LN_READERS], fd[LN_READERS], rd;
	struct weft_task *t[LN_READERS];
	for (int i = 0; i < LN_READERS; i++) {
		int sv[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		j[i] = (struct ln_job){ .wfd = sv[1] };
		CHECK_EQ(weft_io_register(rt, sv[0], &j[i].io), 0);
		CHECK_EQ(weft_chan_create(sizeof(long), 8, &j[i].ch), 0);
		CHECK_EQ(pthread_create(&wr[i], NULL, ln_write, &j[i]), 0);
		CHECK_EQ(pthread_create(&fd[i], NULL, ln_feed, &j[i]), 0);
		if (i == 0)
			CHECK_EQ(pthread_create(&rd, NULL, ln_read, &j[i]), 0);
		else
			CHECK_EQ(weft_spawn(rt, ln_read, &j[i], &t[i]), 0);
	}
	for (int i = 0; i < LN_READERS; i++) {
		pthread_join(wr[i], NULL);
		pthread_join(fd[i], NULL);
	}
	pthread_join(rd, NULL);
	for (int i = 1; i < LN_READERS; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	for (int i = 0; i < LN_READERS; i++) {
		CHECK_EQ(j[i].lines, LN_LINES);
		long item;
		while (weft_chan_try_recv(j[i].ch, &item) == 0)
			j[i].items++;
		CHECK_EQ(j[i].items, 500);
		CHECK_EQ(weft_chan_destroy(j[i].ch), 0);
		CHECK_EQ(weft_io_close(j[i].io), 0);
	}
	rm_rt(rt);
}

/* ------------------------------------------- timers cancelled by a thread */

/* Poll tasks each keep a far timer armed (weft_timer_poll, and an
 * interval) and yield to the back of their queue (no LIFO slot), so the
 * other worker steals them; a thread cancels their timers all along
 * (weft_timer_cancel from any thread, driver.c): the owner re-arms the
 * cancelled timer on whichever core it runs on now - a shard other than
 * the one the cancel unlinked it from. Every task ends, with its timers
 * cancelled by its drop. */
#define TC_TASKS 8
#define TC_POLLS 3000
struct tc_task { struct weft_timer t; struct weft_interval iv; int polls; atomic_int seen; };
static struct tc_task tc[TC_TASKS];
static atomic_int tc_stop, tc_dropped;
static atomic_long tc_cancels;

static enum weft_poll tc_poll(void *state, struct weft_cx *cx)
{
	struct tc_task *s = state;
	if (++s->polls == TC_POLLS)
		return WEFT_READY;
	atomic_store(&s->seen, s->polls);
	CHECK_EQ(weft_timer_poll(&s->t, cx, weft_now_ns() + 3600000000000ull), WEFT_PENDING);
	CHECK_EQ(weft_interval_poll_tick(&s->iv, cx), WEFT_PENDING);
	/* a little work, then to the back of the queue */
	volatile unsigned x = 0;
	for (int k = 0; k < 200; k++)
		x += (unsigned)k;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static void tc_drop(void *state)
{
	struct tc_task *s = state;
	weft_timer_cancel(&s->t);
	weft_interval_cancel(&s->iv);
	atomic_fetch_add(&tc_dropped, 1);
}

/* One timer at a time, and nothing else until its owner has polled twice
 * more: this thread takes no other shard's lock meanwhile, so only the
 * timer's own state orders the cancel before the owner's re-arming. */
static void *tc_canceller(void *arg)
{
	(void)arg;
	while (!atomic_load(&tc_stop)) {
		for (int i = 0; i < TC_TASKS; i++) {
			int n0 = atomic_load(&tc[i].seen);
			weft_timer_cancel(&tc[i].t);
			atomic_fetch_add(&tc_cancels, 1);
			for (int k = 0; k < 2000 && atomic_load(&tc[i].seen) < n0 + 2 &&
					!atomic_load(&tc_stop); k++)
				sched_yield();
		}
	}
	return NULL;
}

static void scenario_timer_cancel(void)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 4, .disable_lifo_slot = true);
	for (int round = 0; round < 15; round++) {
		struct weft_runtime *rt;
		CHECK_EQ(weft_runtime_create(&o, &rt), 0);
		struct weft_task *t[TC_TASKS];
		for (int i = 0; i < TC_TASKS; i++) {
			tc[i] = (struct tc_task){ .t = WEFT_TIMER_INIT };
			CHECK_EQ(weft_interval_init(&tc[i].iv, 3600000000000ull), 0);
		}
		atomic_store(&tc_stop, 0);
		atomic_store(&tc_dropped, 0);
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, tc_canceller, NULL), 0);
		for (int i = 0; i < TC_TASKS; i++)
			CHECK_EQ(weft_spawn_poll(rt, tc_poll, &tc[i], tc_drop, &t[i]), 0);
		for (int i = 0; i < TC_TASKS; i++)
			CHECK_EQ(weft_join(t[i], NULL), 0);
		atomic_store(&tc_stop, 1);
		pthread_join(th, NULL);
		CHECK_EQ(atomic_load(&tc_dropped), TC_TASKS);
		for (int i = 0; i < TC_TASKS; i++)
			CHECK_EQ(tc[i].polls, TC_POLLS);
		rm_rt(rt);
	}
	CHECK(atomic_load(&tc_cancels) > 0, "no cancels");
}

static const struct { const char *name; void (*fn)(void); } scenarios[] = {
	{ "notify", scenario_notify },
	{ "joinset", scenario_joinset },
	{ "deadline", scenario_deadline },
	{ "barrier", scenario_barrier },
	{ "select", scenario_select },
	{ "locks", scenario_locks },
	{ "copy", scenario_copy },
	{ "locals", scenario_locals },
	{ "unbounded", scenario_unbounded },
	{ "many", scenario_many },
	{ "lines", scenario_lines },
	{ "once_cancel", scenario_once_cancel },
	{ "timer_cancel", scenario_timer_cancel },
};

int main(int argc, char **argv)
{
	int passed = 0;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (argc > 1 && strcmp(argv[1], scenarios[i].name))
			continue;
		scenarios[i].fn();
		printf("tsan_api %s: ok\n", scenarios[i].name);
		passed++;
	}
	if (!passed) {
		fprintf(stderr, "usage: tsan_api [SCENARIO]\n");
		return 2;
	}
	return 0;
}
