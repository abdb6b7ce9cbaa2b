/*
 * tsan_api.c - ThreadSanitizer scenarios for the application API of
 * issue 14 (notify enable, tokens, join sets, ...): `tsan_api SCENARIO`
 * runs one; it passes when its own checks hold and TSan reports nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/io.h>
#include <weft/metrics.h>
#include <weft/signal.h>
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
static atomic_bool oc_running, oc_release, oc_fiber_in;
/* Runs until the fiber's abort is over: with a fixed 300 ms a slow
 * (TSan, loaded) host could see the once done first, or the fiber, not
 * yet started, never run (rc 1) or become the runner (rc 0). */
static void oc_slow(void *arg)
{
	(void)arg;
	atomic_store(&oc_running, true);
	while (!atomic_load(&oc_release))
		usleep(1000);
}
static void *oc_thread(void *arg) { (void)arg; CHECK_EQ(weft_once(&oc_once, oc_slow, NULL), 0); return NULL; }
static void *oc_fiber(void *arg)
{
	(void)arg;
	atomic_store(&oc_fiber_in, true);
	atomic_store(&oc_fiber_rc, weft_once(&oc_once, oc_slow, NULL));
	return NULL;
}

static void scenario_once_cancel(void)
{
	struct weft_runtime *rt = mk(1);
	pthread_t runner, waiter;
	CHECK_EQ(pthread_create(&runner, NULL, oc_thread, NULL), 0);
	while (!atomic_load(&oc_running)) /* oc_slow runs */
		usleep(1000);
	struct weft_task *f;
	CHECK_EQ(weft_spawn(rt, oc_fiber, NULL, &f), 0);
	while (!atomic_load(&oc_fiber_in))
		usleep(1000);
	usleep(30000); /* the fiber waits */
	CHECK_EQ(pthread_create(&waiter, NULL, oc_thread, NULL), 0);
	usleep(30000); /* the thread's wait polled */
	CHECK_EQ(weft_abort(f), 0);
	weft_join(f, NULL);
	CHECK_EQ(atomic_load(&oc_fiber_rc), -ECANCELED);
	atomic_store(&oc_release, true);
	pthread_join(runner, NULL);
	pthread_join(waiter, NULL);
	CHECK(weft_once_done(&oc_once), "once not done");
	rm_rt(rt);
}

/* ------------------------------------- once: fn's fiber discarded */

/* Fibers of a 2-worker runtime run the fn of two onces (one each) and
 * never return from it; threads wait on both; shutdown discards the
 * fibers, and the discarding thread reads each fiber's record (on its
 * stack, linked under once.c's lock) and wakes the threads, which run
 * their own fn. */
static struct weft_once od_once[2] = { WEFT_ONCE_INIT, WEFT_ONCE_INIT };
static atomic_int od_started, od_ran;
static long od_value[2];
static void od_spin(void *arg)
{
	(void)arg;
	atomic_fetch_add(&od_started, 1);
	for (;;)
		weft_yield(); /* -ECANCELED ignored: discarded */
}
static void od_mark(void *arg)
{
	od_value[(intptr_t)arg] = 42;
	atomic_fetch_add(&od_ran, 1);
}
static void *od_fiber(void *arg) { weft_once(&od_once[(intptr_t)arg], od_spin, NULL); return NULL; }
static void *od_thread(void *arg)
{
	CHECK_EQ(weft_once(&od_once[(intptr_t)arg], od_mark, arg), 0);
	CHECK_EQ(od_value[(intptr_t)arg], 42);
	return NULL;
}

static void scenario_once_discard(void)
{
	struct weft_runtime *rt = mk(2);
	for (intptr_t i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, od_fiber, (void *)i, NULL), 0);
	while (atomic_load(&od_started) < 2)
		usleep(1000);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, od_thread, (void *)(intptr_t)(i % 2)), 0);
	usleep(20000); /* the threads wait */
	int rc;
	while ((rc = weft_runtime_shutdown(rt, 5000000)) == -ETIMEDOUT)
		;
	CHECK_EQ(rc, 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&od_ran), 2);
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

/* ------------------------------------------------------------------- watch */

/* A watch of 64-byte values (every word the same number) sent 1..WT_N by a
 * fiber and a thread in turn while fibers, a thread and subscribers that
 * come and go wait for changes (some with short timeouts): every value
 * read is whole and never older than one read before it. */
#define WT_N 4000
#define WT_RX 4
struct wt_val { uint64_t w[8]; };
static struct weft_watch *wt_w;
static atomic_ullong wt_next;
static atomic_int wt_rx_done;
static pthread_mutex_t wt_order = PTHREAD_MUTEX_INITIALIZER;

static void wt_check(const struct wt_val *v)
{
	for (int i = 1; i < 8; i++)
		CHECK_EQ(v->w[i], v->w[0]);
}

static void *wt_send(void *arg)
{
	(void)arg;
	for (;;) {
		/* the two senders take turns: values go out in order */
		pthread_mutex_lock(&wt_order);
		uint64_t n = atomic_fetch_add(&wt_next, 1) + 1;
		if (n > WT_N) {
			pthread_mutex_unlock(&wt_order);
			return NULL;
		}
		struct wt_val v;
		for (int i = 0; i < 8; i++)
			v.w[i] = n;
		CHECK_EQ(weft_watch_send(wt_w, &v), 0);
		pthread_mutex_unlock(&wt_order);
		if (n % 64 == 0 && weft_in_fiber())
			weft_yield();
	}
}

static void *wt_recv(void *arg)
{
	struct weft_watch_rx *rx = arg;
	uint64_t last = 0;
	int rc, i = 0;
	for (;; i++) {
		rc = i % 3 ? weft_watch_changed(rx) : weft_watch_changed_timeout(rx, 100000);
		if (rc == -ETIMEDOUT)
			continue;
		struct wt_val v;
		CHECK_EQ(weft_watch_get(rx, &v), 0);
		wt_check(&v);
		CHECK(v.w[0] >= last, "went back %llu < %llu", (unsigned long long)v.w[0],
		      (unsigned long long)last);
		last = v.w[0];
		if (rc == -EPIPE)
			break;
		CHECK_EQ(rc, 0);
	}
	CHECK_EQ(last, WT_N);
	CHECK_EQ(weft_watch_rx_drop(rx), 0);
	atomic_fetch_add(&wt_rx_done, 1);
	return NULL;
}

/* subscribers that come and go */
static void *wt_churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		struct weft_watch_rx *rx;
		CHECK_EQ(weft_watch_subscribe(wt_w, &rx), 0);
		int rc = weft_watch_changed_timeout(rx, 50000);
		CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EPIPE, "churn %d", rc);
		struct wt_val v;
		CHECK_EQ(weft_watch_get(rx, &v), 0);
		wt_check(&v);
		CHECK(weft_watch_has_changed(rx) >= -EPIPE, "has_changed");
		CHECK_EQ(weft_watch_rx_drop(rx), 0);
	}
	return NULL;
}

static void scenario_watch(void)
{
	struct weft_runtime *rt = mk(2);
	struct wt_val z = { { 0 } };
	CHECK_EQ(weft_watch_create(sizeof z, &z, &wt_w), 0);
	struct weft_watch_rx *rx[WT_RX];
	for (int i = 0; i < WT_RX; i++)
		CHECK_EQ(weft_watch_subscribe(wt_w, &rx[i]), 0);
	struct weft_task *r[WT_RX - 1], *s, *ch;
	pthread_t rth, sth, cth;
	for (int i = 0; i < WT_RX - 1; i++)
		CHECK_EQ(weft_spawn(rt, wt_recv, rx[i], &r[i]), 0);
	CHECK_EQ(pthread_create(&rth, NULL, wt_recv, rx[WT_RX - 1]), 0);
	CHECK_EQ(weft_spawn(rt, wt_churn, NULL, &ch), 0);
	CHECK_EQ(pthread_create(&cth, NULL, wt_churn, NULL), 0);
	CHECK_EQ(weft_spawn(rt, wt_send, NULL, &s), 0);
	CHECK_EQ(pthread_create(&sth, NULL, wt_send, NULL), 0);
	CHECK_EQ(weft_join(s, NULL), 0);
	pthread_join(sth, NULL);
	/* the last value must be WT_N: both senders are done */
	CHECK_EQ(weft_watch_close(wt_w), 0);
	for (int i = 0; i < WT_RX - 1; i++)
		CHECK_EQ(weft_join(r[i], NULL), 0);
	pthread_join(rth, NULL);
	CHECK_EQ(weft_join(ch, NULL), 0);
	pthread_join(cth, NULL);
	CHECK_EQ(atomic_load(&wt_rx_done), WT_RX);
	CHECK_EQ(weft_watch_destroy(wt_w), 0);
	rm_rt(rt);
}

/* ----------------------------------------------------------------- oneshot */

/* Pairs of ends on different threads: the sender (fiber or thread) sends
 * a heap value or drops; the receiver (fiber, thread, or poll task) takes
 * it (some with a timeout first), or drops its end. Every value is
 * received, dropped by value_drop, or refused with -EPIPE: none lost,
 * none twice. */
#define OS_N 3000
struct os_pair { struct weft_oneshot *o; int i; };
static atomic_long os_sent, os_recvd, os_dropped, os_refused;

static void os_vdrop(void *v)
{
	CHECK_EQ(*(int *)v, 0x5eed);
	*(int *)v = 0;
	free(v);
	atomic_fetch_add(&os_dropped, 1);
}

static void *os_sender(void *arg)
{
	struct os_pair *p = arg;
	if (p->i % 5 == 4) {
		CHECK_EQ(weft_oneshot_sender_drop(p->o), 0);
		return NULL;
	}
	int *v = malloc(sizeof *v);
	*v = 0x5eed;
	atomic_fetch_add(&os_sent, 1);
	int rc = weft_oneshot_send(p->o, v);
	if (rc == -EPIPE) {
		free(v);
		atomic_fetch_add(&os_refused, 1);
	} else
		CHECK_EQ(rc, 0);
	return NULL;
}

static void os_got(int rc, void *v)
{
	if (rc == 0) {
		CHECK_EQ(*(int *)v, 0x5eed);
		free(v);
		atomic_fetch_add(&os_recvd, 1);
	} else
		CHECK_EQ(rc, -EPIPE);
}

static void *os_receiver(void *arg)
{
	struct os_pair *p = arg;
	void *v;
	int rc;
	switch (p->i % 4) {
	case 0:
		rc = weft_oneshot_recv(p->o, &v);
		os_got(rc, v);
		break;
	case 1:
		rc = weft_oneshot_recv_timeout(p->o, &v, 20000);
		if (rc == -ETIMEDOUT)
			CHECK_EQ(weft_oneshot_receiver_drop(p->o), 0);
		else
			os_got(rc, v);
		break;
	case 2:
		CHECK_EQ(weft_oneshot_receiver_drop(p->o), 0);
		break;
	default:
		while ((rc = weft_oneshot_try_recv(p->o, &v)) == -EAGAIN)
			if (weft_in_fiber())
				weft_yield();
		os_got(rc, v);
	}
	return NULL;
}

struct os_poll { struct os_pair *p; struct weft_wait w; };

static enum weft_poll os_poll_fn(void *state, struct weft_cx *cx)
{
	struct os_poll *q = state;
	void *v;
	int rc = weft_oneshot_recv_poll(q->p->o, &q->w, cx, &v);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	os_got(rc, v);
	return WEFT_READY;
}

static void scenario_oneshot(void)
{
	struct weft_runtime *rt = mk(2);
	static struct os_pair p[OS_N];
	static struct os_poll q[OS_N];
	for (int base = 0; base < OS_N; base += 100) {
		struct weft_task *t[200];
		pthread_t th[200];
		int nt = 0, nth = 0;
		for (int i = base; i < base + 100; i++) {
			p[i].i = i;
			CHECK_EQ(weft_oneshot_create(os_vdrop, &p[i].o), 0);
			/* receiver */
			if (i % 7 == 3) {
				q[i] = (struct os_poll){ .p = &p[i], .w = WEFT_WAIT_INIT };
				CHECK_EQ(weft_spawn_poll(rt, os_poll_fn, &q[i], NULL, &t[nt++]), 0);
			} else if (i % 11 == 5)
				CHECK_EQ(pthread_create(&th[nth++], NULL, os_receiver, &p[i]), 0);
			else
				CHECK_EQ(weft_spawn(rt, os_receiver, &p[i], &t[nt++]), 0);
			/* sender */
			if (i % 3 == 1)
				CHECK_EQ(pthread_create(&th[nth++], NULL, os_sender, &p[i]), 0);
			else
				CHECK_EQ(weft_spawn(rt, os_sender, &p[i], &t[nt++]), 0);
		}
		for (int i = 0; i < nt; i++)
			CHECK_EQ(weft_join(t[i], NULL), 0);
		for (int i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
	}
	CHECK_EQ(atomic_load(&os_sent),
		 atomic_load(&os_recvd) + atomic_load(&os_dropped) + atomic_load(&os_refused));
	CHECK(atomic_load(&os_recvd) > 0, "nothing received");
	rm_rt(rt);
}

/* --------------------------------------------------------------- semaphore */

/* SEM_P permits taken 1..3 at a time by fibers and threads, with and
 * without timeouts and tries, while a fiber aborted in its wait passes on
 * what it may have been granted: never more than SEM_P held at once, all
 * back at the end; then a close wakes every waiter with -EPIPE... */
#define SEM_P 5
static struct weft_sem *sm;
static atomic_int sm_held, sm_max, sm_ops;
static long sm_plain; /* written by whoever holds all permits */

static void sm_use(uint64_t n)
{
	int h = atomic_fetch_add(&sm_held, (int)n) + (int)n;
	CHECK(h <= SEM_P, "held %d", h);
	int m = atomic_load(&sm_max);
	while (h > m && !atomic_compare_exchange_weak(&sm_max, &m, h))
		;
	if (n == SEM_P)
		sm_plain++;
	atomic_fetch_sub(&sm_held, (int)n);
	atomic_fetch_add(&sm_ops, 1);
	CHECK_EQ(weft_sem_release_n(sm, n), 0);
}

static void *sm_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0; i < 600; i++) {
		uint64_t n = (i + me) % 7 == 0 ? SEM_P : 1 + (uint64_t)((i + me) % 3);
		int rc;
		switch ((i + me) % 4) {
		case 0: rc = weft_sem_acquire_n(sm, n); break;
		case 1: rc = weft_sem_acquire_n_timeout(sm, n, 30000); break;
		case 2: rc = weft_sem_try_acquire_n(sm, n); break;
		default: rc = weft_sem_acquire_n_timeout(sm, n, 5000000); break;
		}
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			continue;
		CHECK_EQ(rc, 0);
		sm_use(n);
	}
	return NULL;
}

static void *sm_victim(void *arg)
{
	(void)arg;
	for (;;) {
		int rc = weft_sem_acquire_n(sm, SEM_P);
		if (rc == -ECANCELED)
			return NULL;
		CHECK_EQ(rc, 0);
		sm_use(SEM_P);
	}
}

static void *sm_closed_waiter(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)weft_sem_acquire_n(sm, SEM_P + 1);
}

static void scenario_sem(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_sem_create(SEM_P, &sm), 0);
	struct weft_task *t[4], *v[3];
	pthread_t th[2];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_spawn(rt, sm_worker, (void *)(intptr_t)i, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, sm_worker, (void *)(intptr_t)(4 + i)), 0);
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(weft_spawn(rt, sm_victim, NULL, &v[k]), 0);
		usleep(2000);
		CHECK_EQ(weft_abort(v[k]), 0);
	}
	for (int k = 0; k < 3; k++)
		weft_join(v[k], NULL);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(weft_sem_available(sm), SEM_P);
	CHECK(atomic_load(&sm_max) <= SEM_P, "max");
	CHECK(atomic_load(&sm_ops) > 0, "no ops");
	/* waiters for more than there are, ended by a close */
	struct weft_task *cw[2];
	pthread_t ct;
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, sm_closed_waiter, NULL, &cw[i]), 0);
	CHECK_EQ(pthread_create(&ct, NULL, sm_closed_waiter, NULL), 0);
	usleep(20000);
	CHECK_EQ(weft_sem_close(sm), 0);
	void *res;
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(weft_join(cw[i], &res), 0);
		CHECK((intptr_t)res < 0, "closed waiter %ld", (long)(intptr_t)res);
	}
	pthread_join(ct, &res);
	CHECK((intptr_t)res < 0, "closed waiter %ld", (long)(intptr_t)res);
	CHECK(weft_sem_is_closed(sm), "closed");
	CHECK_EQ(weft_sem_destroy(sm), 0);
	rm_rt(rt);
}

/* --------------------------------------------------------------- waitgroup */

/* Rounds of WG_N members that each write their own plain slot before
 * done(), waited for by a fiber, a thread with short timeouts and a poll
 * task: whoever's wait returns 0 reads every slot (TSan: the wait must
 * order the members' writes before it). */
#define WG_N 16
#define WG_ROUNDS 200
static struct weft_waitgroup *wg;
static int wg_slot[WG_N];
static atomic_int wg_round;

static void *wg_member(void *arg)
{
	int i = (int)(intptr_t)arg;
	if (i % 3 == 0)
		weft_yield();
	wg_slot[i] = atomic_load(&wg_round);
	CHECK_EQ(weft_waitgroup_done(wg), 0);
	return NULL;
}

static void wg_verify(void)
{
	int r = atomic_load(&wg_round);
	for (int i = 0; i < WG_N; i++)
		CHECK_EQ(wg_slot[i], r);
}

static void *wg_waiter(void *arg)
{
	if (arg) { /* a thread: short timeouts */
		int rc;
		while ((rc = weft_waitgroup_wait_timeout(wg, 20000)) == -ETIMEDOUT)
			;
		CHECK_EQ(rc, 0);
	} else
		CHECK_EQ(weft_waitgroup_wait(wg), 0);
	wg_verify();
	return NULL;
}

struct wg_poll { struct weft_wait w; };
static enum weft_poll wg_poll_fn(void *state, struct weft_cx *cx)
{
	struct wg_poll *p = state;
	int rc = weft_waitgroup_wait_poll(wg, &p->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	CHECK_EQ(rc, 0);
	wg_verify();
	return WEFT_READY;
}

static void scenario_waitgroup(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_waitgroup_create(&wg), 0);
	for (int r = 1; r <= WG_ROUNDS; r++) {
		atomic_store(&wg_round, r);
		CHECK_EQ(weft_waitgroup_add(wg, WG_N), 0);
		struct weft_task *w1, *pt, *m[WG_N];
		pthread_t wt, mt;
		struct wg_poll p = { WEFT_WAIT_INIT };
		CHECK_EQ(weft_spawn(rt, wg_waiter, NULL, &w1), 0);
		CHECK_EQ(weft_spawn_poll(rt, wg_poll_fn, &p, NULL, &pt), 0);
		CHECK_EQ(pthread_create(&wt, NULL, wg_waiter, (void *)1), 0);
		for (int i = 0; i < WG_N - 1; i++)
			CHECK_EQ(weft_spawn(rt, wg_member, (void *)(intptr_t)i, &m[i]), 0);
		CHECK_EQ(pthread_create(&mt, NULL, wg_member, (void *)(intptr_t)(WG_N - 1)), 0);
		CHECK_EQ(weft_join(w1, NULL), 0);
		CHECK_EQ(weft_join(pt, NULL), 0);
		pthread_join(wt, NULL);
		pthread_join(mt, NULL);
		for (int i = 0; i < WG_N - 1; i++)
			CHECK_EQ(weft_join(m[i], NULL), 0);
	}
	CHECK_EQ(weft_waitgroup_destroy(wg), 0);
	rm_rt(rt);
}

/* ------------------------------------------------------ cond with timeouts */

/* A queue (plain, under the mutex) fed by producers that signal or
 * broadcast, drained by consumers that wait with timeouts - some so short
 * they time out while a signal is on its way - and fibers aborted in their
 * wait: every item is taken exactly once, none stranded. */
#define CV_ITEMS 6000
static struct weft_mutex *cv_m;
static struct weft_cond *cv_c;
static long cv_queue, cv_taken, cv_produced; /* under cv_m */
static int cv_done;                          /* under cv_m */

static void *cv_producer(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0; i < CV_ITEMS / 2; i++) {
		CHECK_EQ(weft_mutex_lock(cv_m), 0);
		cv_queue++;
		cv_produced++;
		CHECK_EQ(weft_mutex_unlock(cv_m), 0);
		if ((i + me) % 5 == 0)
			weft_cond_broadcast(cv_c);
		else
			weft_cond_signal(cv_c);
		if (i % 50 == 0 && weft_in_fiber())
			weft_yield();
	}
	return NULL;
}

static void *cv_consumer(void *arg)
{
	int me = (int)(intptr_t)arg;
	long mine = 0;
	CHECK_EQ(weft_mutex_lock(cv_m), 0);
	for (int i = 0;; i++) {
		while (cv_queue == 0 && !cv_done) {
			int rc = (i + me) % 2 ? weft_cond_wait_timeout(cv_c, cv_m, 10000 + (uint64_t)me * 7000)
					      : weft_cond_wait_timeout(cv_c, cv_m, 2000000);
			CHECK(rc == 0 || rc == -ETIMEDOUT, "cond wait %d", rc);
		}
		if (cv_queue == 0)
			break;
		cv_queue--;
		cv_taken++;
		mine++;
	}
	CHECK_EQ(weft_mutex_unlock(cv_m), 0);
	return (void *)mine;
}

static void *cv_victim(void *arg)
{
	(void)arg;
	int rc = weft_mutex_lock(cv_m);
	if (rc == -ECANCELED)
		return NULL;
	CHECK_EQ(rc, 0);
	for (;;) {
		rc = weft_cond_wait(cv_c, cv_m);
		if (rc == -ECANCELED)
			return NULL; /* m is not held then */
		CHECK_EQ(rc, 0);
	}
}

static void scenario_cond(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_mutex_create(&cv_m), 0);
	CHECK_EQ(weft_cond_create(&cv_c), 0);
	struct weft_task *c[3], *p, *v[4];
	pthread_t ct, pt;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_spawn(rt, cv_consumer, (void *)(intptr_t)i, &c[i]), 0);
	CHECK_EQ(pthread_create(&ct, NULL, cv_consumer, (void *)3), 0);
	CHECK_EQ(weft_spawn(rt, cv_producer, (void *)0, &p), 0);
	CHECK_EQ(pthread_create(&pt, NULL, cv_producer, (void *)1), 0);
	for (int k = 0; k < 4; k++) {
		CHECK_EQ(weft_spawn(rt, cv_victim, NULL, &v[k]), 0);
		usleep(3000);
		CHECK_EQ(weft_abort(v[k]), 0);
	}
	for (int k = 0; k < 4; k++)
		weft_join(v[k], NULL);
	CHECK_EQ(weft_join(p, NULL), 0);
	pthread_join(pt, NULL);
	CHECK_EQ(weft_mutex_lock(cv_m), 0);
	cv_done = 1;
	CHECK_EQ(weft_mutex_unlock(cv_m), 0);
	CHECK_EQ(weft_cond_broadcast(cv_c), 0);
	long sum = 0;
	void *r;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(weft_join(c[i], &r), 0);
		sum += (long)r;
	}
	pthread_join(ct, &r);
	sum += (long)r;
	CHECK_EQ(cv_produced, CV_ITEMS);
	CHECK_EQ(cv_taken, CV_ITEMS);
	CHECK_EQ(sum, CV_ITEMS);
	CHECK_EQ(cv_queue, 0);
	CHECK_EQ(weft_cond_destroy(cv_c), 0);
	CHECK_EQ(weft_mutex_destroy(cv_m), 0);
	rm_rt(rt);
}

/* -------------------------------------------------- rwlock with timeouts */

/* Two plain fields kept equal by writers (write, write_timeout, try) and
 * checked by readers (read, read_timeout, try) from fibers, threads and a
 * poll task; fibers aborted while they wait for the write lock. */
static struct weft_rwlock *rw_l;
static long rw_a, rw_b;
static atomic_long rw_writes;

static void *rw_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0; i < 800; i++) {
		int k = (i + me) % 6, rc;
		if (k < 3) {
			rc = k == 0 ? weft_rwlock_write(rw_l)
			   : k == 1 ? weft_rwlock_write_timeout(rw_l, 20000)
				    : weft_rwlock_try_write(rw_l);
			if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBUSY)
				continue;
			CHECK_EQ(rc, 0);
			CHECK_EQ(rw_a, rw_b);
			rw_a++;
			if (i % 16 == 0 && weft_in_fiber())
				weft_yield();
			rw_b++;
			atomic_fetch_add(&rw_writes, 1);
			CHECK_EQ(weft_rwlock_write_unlock(rw_l), 0);
		} else {
			rc = k == 3 ? weft_rwlock_read(rw_l)
			   : k == 4 ? weft_rwlock_read_timeout(rw_l, 15000)
				    : weft_rwlock_try_read(rw_l);
			if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBUSY)
				continue;
			CHECK_EQ(rc, 0);
			CHECK_EQ(rw_a, rw_b);
			CHECK_EQ(weft_rwlock_read_unlock(rw_l), 0);
		}
	}
	return NULL;
}

static void *rw_victim(void *arg)
{
	int rc = arg ? weft_rwlock_write(rw_l) : weft_rwlock_read(rw_l);
	if (rc == 0) {
		if (arg) {
			rw_a++;
			rw_b++;
			atomic_fetch_add(&rw_writes, 1);
			CHECK_EQ(weft_rwlock_write_unlock(rw_l), 0);
		} else
			CHECK_EQ(weft_rwlock_read_unlock(rw_l), 0);
	} else
		CHECK_EQ(rc, -ECANCELED);
	return NULL;
}

static void scenario_rwlock(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_rwlock_create(&rw_l), 0);
	struct weft_task *t[4], *v[6];
	pthread_t th[2];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_spawn(rt, rw_worker, (void *)(intptr_t)i, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, rw_worker, (void *)(intptr_t)(4 + i)), 0);
	for (int k = 0; k < 6; k++) {
		CHECK_EQ(weft_spawn(rt, rw_victim, (void *)(intptr_t)(k % 2), &v[k]), 0);
		usleep(1000);
		CHECK_EQ(weft_abort(v[k]), 0);
	}
	for (int k = 0; k < 6; k++)
		weft_join(v[k], NULL);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(rw_a, atomic_load(&rw_writes));
	CHECK_EQ(rw_a, rw_b);
	CHECK_EQ(weft_rwlock_destroy(rw_l), 0);
	rm_rt(rt);
}

/* ------------------------------------------------------------- token tree */

/* A root with deadline children (some already passed, some far) and
 * grandchildren made, waited on and destroyed by fibers and a thread while
 * another thread cancels the root partway: every wait ends, with -ECANCELED
 * or -ETIMEDOUT, and err agrees with is_cancelled. */
#define TT_ROUNDS 40
static struct weft_token *tt_root;
static atomic_int tt_waits;

static void *tt_fiber(void *arg)
{
	struct weft_runtime *rt = arg;
	for (int i = 0; i < 50; i++) {
		struct weft_token *c, *g;
		uint64_t dl = weft_now_ns() + (uint64_t)(i % 5) * 40000u;
		if (i % 7 == 6)
			dl = weft_now_ns() + 3600000000000ull; /* only the root's cancel ends it */
		CHECK_EQ(weft_token_create_deadline(rt, tt_root, dl, &c), 0);
		CHECK_EQ(weft_token_create(c, &g), 0);
		if (i % 2 == 0) {
			CHECK_EQ(weft_token_wait(g), 0);
			int e = weft_token_err(g);
			CHECK(e == -ECANCELED || e == -ETIMEDOUT, "err %d", e);
			CHECK(weft_token_is_cancelled(c), "child not cancelled");
			atomic_fetch_add(&tt_waits, 1);
		} else {
			int rc = weft_token_wait_timeout(g, 30000);
			CHECK(rc == 0 || rc == -ETIMEDOUT, "wait_timeout %d", rc);
			if (rc == 0)
				CHECK(weft_token_is_cancelled(g), "woken, not cancelled");
		}
		CHECK_EQ(weft_token_destroy(g), 0);
		if (i % 3 == 0)
			CHECK_EQ(weft_token_cancel(c), 0);
		CHECK_EQ(weft_token_destroy(c), 0);
	}
	return NULL;
}

struct tt_poll { struct weft_token *t; struct weft_wait w; };
static enum weft_poll tt_poll_fn(void *state, struct weft_cx *cx)
{
	struct tt_poll *p = state;
	int rc = weft_token_wait_poll(p->t, &p->w, cx);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	CHECK_EQ(rc, 0);
	CHECK(weft_token_is_cancelled(p->t), "poll woken, not cancelled");
	return WEFT_READY;
}

static void scenario_token_tree(void)
{
	struct weft_runtime *rt = mk(2);
	for (int r = 0; r < TT_ROUNDS; r++) {
		CHECK_EQ(weft_token_create(NULL, &tt_root), 0);
		struct weft_task *f[3], *pt;
		pthread_t th;
		struct tt_poll p = { .w = WEFT_WAIT_INIT };
		CHECK_EQ(weft_token_create(tt_root, &p.t), 0);
		CHECK_EQ(weft_spawn_poll(rt, tt_poll_fn, &p, NULL, &pt), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_spawn(rt, tt_fiber, rt, &f[i]), 0);
		CHECK_EQ(pthread_create(&th, NULL, tt_fiber, rt), 0);
		usleep((useconds_t)(r % 5) * 1000);
		CHECK_EQ(weft_token_cancel(tt_root), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_join(f[i], NULL), 0);
		pthread_join(th, NULL);
		CHECK_EQ(weft_join(pt, NULL), 0);
		CHECK_EQ(weft_token_destroy(p.t), 0);
		CHECK_EQ(weft_token_err(tt_root), -ECANCELED);
		CHECK_EQ(weft_token_destroy(tt_root), 0);
	}
	CHECK_EQ(atomic_load(&tt_waits), TT_ROUNDS * 4 * 25);
	rm_rt(rt);
}

/* ------------------------------------------------ timers, intervals, abort */

/* Poll tasks each on a timer (cancelled by their drop when aborted from a
 * thread), fibers ticking intervals and sleeping, and a thread joining
 * with timeouts: every task ends, ticks never come early. */
#define TM_TASKS 300
struct tm_task { struct weft_timer t; uint64_t deadline; int polls; };
static atomic_int tm_fired, tm_dropped;

static enum weft_poll tm_poll(void *state, struct weft_cx *cx)
{
	struct tm_task *s = state;
	s->polls++;
	if (weft_timer_poll(&s->t, cx, s->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	CHECK(weft_now_ns() >= s->deadline, "timer early");
	atomic_fetch_add(&tm_fired, 1);
	return WEFT_READY;
}

static void tm_drop(void *state)
{
	struct tm_task *s = state;
	weft_timer_cancel(&s->t);
	atomic_fetch_add(&tm_dropped, 1);
	free(s);
}

static void *tm_ticker(void *arg)
{
	(void)arg;
	struct weft_interval iv;
	CHECK_EQ(weft_interval_init(&iv, 300000), 0);
	uint64_t t0 = weft_now_ns();
	for (int i = 1; i <= 20; i++) {
		CHECK_EQ(weft_interval_tick(&iv), 0);
		CHECK(weft_now_ns() - t0 >= 300000, "tick early");
		if (i % 4 == 0)
			CHECK_EQ(weft_sleep_ns(100000), 0);
	}
	weft_interval_cancel(&iv);
	return NULL;
}

struct tm_ivp { struct weft_interval iv; int ticks; };
static enum weft_poll tm_iv_poll(void *state, struct weft_cx *cx)
{
	struct tm_ivp *p = state;
	while (weft_interval_poll_tick(&p->iv, cx) == WEFT_READY)
		if (++p->ticks == 15)
			return WEFT_READY;
	return WEFT_PENDING;
}
static void tm_iv_drop(void *state) { weft_interval_cancel(&((struct tm_ivp *)state)->iv); }

static void scenario_timers_abort(void)
{
	struct weft_runtime *rt = mk(2);
	static struct weft_task *t[TM_TASKS];
	struct weft_task *tk[3], *ivt;
	struct tm_ivp ivp = { .ticks = 0 };
	CHECK_EQ(weft_interval_init(&ivp.iv, 200000), 0);
	CHECK_EQ(weft_spawn_poll(rt, tm_iv_poll, &ivp, tm_iv_drop, &ivt), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_spawn(rt, tm_ticker, NULL, &tk[i]), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, tm_ticker, NULL), 0);
	for (int i = 0; i < TM_TASKS; i++) {
		struct tm_task *s = calloc(1, sizeof *s);
		s->deadline = weft_now_ns() + (uint64_t)(i % 9) * 150000u;
		CHECK_EQ(weft_spawn_poll(rt, tm_poll, s, tm_drop, &t[i]), 0);
		if (i % 3 == 0 && i >= 6)
			CHECK_EQ(weft_abort(t[i - 6]), 0);
	}
	int aborted = 0, done = 0;
	for (int i = 0; i < TM_TASKS; i++) {
		int rc;
		while ((rc = weft_join_timeout(t[i], NULL, 50000)) == -ETIMEDOUT)
			;
		if (rc == -ECANCELED)
			aborted++;
		else {
			CHECK_EQ(rc, 0);
			done++;
		}
	}
	CHECK_EQ(atomic_load(&tm_dropped), TM_TASKS);
	CHECK_EQ(atomic_load(&tm_fired), done);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_join(tk[i], NULL), 0);
	pthread_join(th, NULL);
	CHECK_EQ(weft_join(ivt, NULL), 0);
	CHECK_EQ(ivp.ticks, 15);
	(void)aborted;
	rm_rt(rt);
}

/* ----------------------------------------------------------------- signals */

/* SIGUSR1 sent by a thread, one at a time (each waited for), relayed into
 * a channel read by a fiber, while fibers and a thread notify and stop
 * other channels for SIGUSR1 and SIGUSR2 all along: every signal reaches
 * the steady channel. */
#define SG_N 300
static struct weft_chan *sg_steady;
static atomic_int sg_got, sg_stop_churn;

static void *sg_reader(void *arg)
{
	(void)arg;
	int v;
	while (weft_chan_recv(sg_steady, &v) == 0) {
		CHECK_EQ(v, SIGUSR1);
		atomic_fetch_add(&sg_got, 1);
	}
	return NULL;
}

static void *sg_churn(void *arg)
{
	int me = (int)(intptr_t)arg;
	while (!atomic_load(&sg_stop_churn)) {
		struct weft_chan *c;
		CHECK_EQ(weft_chan_create(sizeof(int), (size_t)(me % 2), &c), 0);
		CHECK_EQ(weft_signal_notify(c, SIGUSR1), 0);
		CHECK_EQ(weft_signal_notify(c, SIGUSR2), 0);
		CHECK_EQ(weft_signal_notify(c, SIGUSR1), 0); /* no-op */
		if (weft_in_fiber())
			weft_yield();
		int v;
		while (weft_chan_try_recv(c, &v) == 0)
			CHECK(v == SIGUSR1 || v == SIGUSR2, "signo %d", v);
		CHECK_EQ(weft_chan_destroy(c), -EBUSY);
		CHECK_EQ(weft_signal_stop(c), 0);
		CHECK_EQ(weft_signal_stop(c), -ENOENT);
		CHECK_EQ(weft_chan_destroy(c), 0);
	}
	return NULL;
}

static void *sg_sender(void *arg)
{
	(void)arg;
	/* SIGUSR2 only ever reaches churn channels: keep it blocked here so a
	 * moment without any left cannot kill the process */
	for (int i = 1; i <= SG_N; i++) {
		CHECK_EQ(kill(getpid(), SIGUSR1), 0);
		/* up to 30 s by the clock (20,000 usleep(100) could be
		 * 2 s on a host busy with the other TSan tests) */
		uint64_t t0 = weft_now_ns();
		while (atomic_load(&sg_got) < i) {
			CHECK(weft_now_ns() - t0 < 30000000000ull, "signal %d not relayed in 30 s", i);
			usleep(100);
		}
	}
	return NULL;
}

static void scenario_signal(void)
{
	/* SIGUSR2 ignored: while no churn channel holds it, it must not kill */
	signal(SIGUSR2, SIG_IGN);
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_chan_create(sizeof(int), 4, &sg_steady), 0);
	CHECK_EQ(weft_signal_notify(sg_steady, SIGUSR1), 0);
	struct weft_task *rd, *ch[2];
	pthread_t cth, sth, u2;
	CHECK_EQ(weft_spawn(rt, sg_reader, NULL, &rd), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, sg_churn, (void *)(intptr_t)i, &ch[i]), 0);
	CHECK_EQ(pthread_create(&cth, NULL, sg_churn, (void *)2), 0);
	CHECK_EQ(pthread_create(&sth, NULL, sg_sender, NULL), 0);
	CHECK_EQ(pthread_create(&u2, NULL, sg_sender, NULL), 0);
	pthread_join(sth, NULL);
	pthread_join(u2, NULL);
	atomic_store(&sg_stop_churn, 1);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(ch[i], NULL), 0);
	pthread_join(cth, NULL);
	CHECK_EQ(weft_signal_stop(sg_steady), 0);
	CHECK_EQ(weft_chan_close(sg_steady), 0);
	CHECK_EQ(weft_join(rd, NULL), 0);
	CHECK(atomic_load(&sg_got) >= SG_N, "got %d", atomic_load(&sg_got));
	CHECK_EQ(weft_chan_destroy(sg_steady), 0);
	rm_rt(rt);
}

/* ---------------------------------------------------------------- children */

/* Children started with weft_process_spawn (pipes) and posix_spawn, waited
 * for from fibers, threads and poll tasks (wait, wait with timeouts while
 * another thread kills, child_wait, child_open + select + reap): every
 * child reaped once with the status it should have. */
#define PR_N 24
struct pr_job { struct weft_runtime *rt; int i; int status; int rc; };

static void *pr_run(void *arg)
{
	struct pr_job *j = arg;
	char code[8];
	snprintf(code, sizeof code, "exit %d", j->i % 7);
	if (j->i % 4 == 0) {
		/* a pipe child: echo through sh */
		char *argv[] = { "sh", "-c", "read x; echo \"$x$x\"", NULL };
		struct weft_process p;
		WEFT_OPTS(weft_process_opts, o, .stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE });
		CHECK_EQ(weft_process_spawn(j->rt, "sh", argv, &o, &p), 0);
		CHECK_EQ(weft_write(p.in, "ab\n", 3), 3);
		CHECK_EQ(weft_io_close(p.in), 0);
		p.in = NULL;
		char buf[16];
		size_t got = 0;
		ssize_t r;
		while ((r = weft_read(p.out, buf + got, sizeof buf - got)) > 0)
			got += (size_t)r;
		CHECK(got == 5 && !memcmp(buf, "abab\n", 5), "pipe got %zu", got);
		j->rc = weft_process_wait(&p, &j->status, WEFT_FOREVER);
		CHECK_EQ(weft_process_close(&p), 0);
		return NULL;
	}
	char *argv[] = { "sh", "-c", code, NULL };
	struct weft_process p;
	CHECK_EQ(weft_process_spawn(j->rt, "sh", argv, NULL, &p), 0);
	if (j->i % 4 == 1) {
		/* timeouts until it is done */
		while ((j->rc = weft_process_wait(&p, &j->status, 100000)) == -ETIMEDOUT)
			;
	} else if (j->i % 4 == 2) {
		/* a long child killed while it is waited for */
		char *sl[] = { "sleep", "5", NULL };
		struct weft_process q;
		CHECK_EQ(weft_process_spawn(j->rt, "sleep", sl, NULL, &q), 0);
		int st;
		CHECK_EQ(weft_process_wait(&q, &st, 1000000), -ETIMEDOUT);
		CHECK_EQ(weft_process_kill(&q, SIGKILL), 0);
		CHECK_EQ(weft_process_wait(&q, &st, WEFT_FOREVER), 0);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed status %x", st);
		CHECK_EQ(weft_process_kill(&q, 0), -ESRCH);
		CHECK_EQ(weft_process_close(&q), 0);
		j->rc = weft_process_wait(&p, &j->status, WEFT_FOREVER);
	} else {
		/* open + select on readiness + reap */
		struct weft_io *io = p.child;
		p.child = NULL;
		for (;;) {
			struct weft_select_arm a[] = { WEFT_SEL_READY(io, WEFT_IO_READABLE) };
			int s = weft_select(a, 1, weft_now_ns() + 10000000000ull);
			CHECK_EQ(s, 0);
			j->rc = weft_child_reap(io, &j->status);
			if (j->rc != -EAGAIN)
				break;
		}
	}
	CHECK_EQ(weft_process_close(&p), 0);
	return NULL;
}

static void *pr_child_wait(void *arg)
{
	struct pr_job *j = arg;
	pid_t pid = fork();
	if (pid == 0)
		_exit(j->i % 7);
	CHECK(pid > 0, "fork");
	if (j->i % 12 == 11) { /* weft_child_open, a wait on it, weft_child_reap */
		struct weft_io *io;
		CHECK_EQ(weft_child_open(j->rt, pid, &io), 0);
		while ((j->rc = weft_child_reap(io, &j->status)) == -EAGAIN)
			CHECK(weft_io_wait(io, WEFT_IO_READABLE, 10000000000ull) > 0, "child wait");
		return NULL;
	}
	j->rc = weft_child_wait(j->rt, pid, &j->status, WEFT_FOREVER);
	return NULL;
}

static void scenario_process(void)
{
	struct weft_runtime *rt = mk(2);
	struct pr_job j[PR_N];
	struct weft_task *t[PR_N];
	pthread_t th[PR_N];
	for (int i = 0; i < PR_N; i++) {
		j[i] = (struct pr_job){ .rt = rt, .i = i, .rc = 1 };
		if (i % 5 == 4)
			CHECK_EQ(pthread_create(&th[i], NULL, pr_run, &j[i]), 0);
		else if (i % 6 == 5)
			CHECK_EQ(weft_spawn(rt, pr_child_wait, &j[i], &t[i]), 0);
		else
			CHECK_EQ(weft_spawn(rt, pr_run, &j[i], &t[i]), 0);
	}
	for (int i = 0; i < PR_N; i++) {
		if (i % 5 == 4)
			pthread_join(th[i], NULL);
		else
			CHECK_EQ(weft_join(t[i], NULL), 0);
		CHECK_EQ(j[i].rc, 0);
		int want = i % 4 == 0 && i % 6 != 5 ? 0 : i % 7;
		CHECK(WIFEXITED(j[i].status) && WEXITSTATUS(j[i].status) == want,
		      "child %d status %x", i, j[i].status);
	}
	rm_rt(rt);
}

/* ------------------------------------------------------ udp, unix, writer */

/* UDP: fibers and a thread send numbered datagrams to one socket read by
 * a fiber and a thread (recvfrom); Unix: a fiber accepts connections from
 * fibers and a thread that write through a buffered writer (printf and
 * write) while the server reads them with weft_read. */
#define UD_SENDERS 3
#define UD_PER 400
static struct weft_io *ud_rx;
static atomic_int ud_seen[UD_SENDERS][UD_PER];
static atomic_int ud_got;
static uint16_t ud_port;

struct ud_ctx { struct weft_runtime *rt; int me; };

static void *ud_sender(void *arg)
{
	struct ud_ctx *c = arg;
	struct weft_io *s;
	CHECK_EQ(weft_udp_bind(c->rt, "127.0.0.1", 0, &s), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(ud_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int i = 0; i < UD_PER; i++) {
		int msg[2] = { c->me, i };
		CHECK_EQ(weft_sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to),
			 (ssize_t)sizeof msg);
		/* pace: the receive buffer must not overflow (UDP drops) */
		if (i % 16 == 15)
			while (atomic_load(&ud_seen[c->me][i - 8]) == 0)
				weft_in_fiber() ? (void)weft_yield() : (void)usleep(100);
	}
	CHECK_EQ(weft_io_close(s), 0);
	return NULL;
}

static void *ud_receiver(void *arg)
{
	(void)arg;
	for (;;) {
		int msg[2];
		struct sockaddr_in from;
		socklen_t fl = sizeof from;
		ssize_t r = weft_recvfrom(ud_rx, msg, sizeof msg, 0, (struct sockaddr *)&from, &fl);
		if (r == -EBADF || r == -ETIMEDOUT)
			return NULL;
		CHECK_EQ(r, (ssize_t)sizeof msg);
		if (msg[0] == -1)
			return NULL;
		CHECK(msg[0] >= 0 && msg[0] < UD_SENDERS && msg[1] >= 0 && msg[1] < UD_PER, "msg");
		CHECK_EQ(from.sin_family, AF_INET);
		CHECK_EQ(atomic_fetch_add(&ud_seen[msg[0]][msg[1]], 1), 0);
		atomic_fetch_add(&ud_got, 1);
	}
}

#define UX_CLIENTS 4
#define UX_LINES 500
static char ux_path[64];

static void *ux_client(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_io *c;
	CHECK_EQ(weft_unix_connect(rt, ux_path, &c), 0);
	struct weft_writer *w;
	CHECK_EQ(weft_writer_create(c, 64, &w), 0);
	for (int i = 0; i < UX_LINES; i++) {
		if (i % 2)
			CHECK(weft_writer_printf(w, "%06d\n", i) == 7, "printf");
		else {
			char b[8];
			snprintf(b, sizeof b, "%06d\n", i);
			CHECK_EQ(weft_writer_write(w, b, 7), 7);
		}
		if (i % 37 == 0)
			CHECK_EQ(weft_writer_flush(w), 0);
	}
	CHECK_EQ(weft_writer_flush(w), 0);
	CHECK_EQ(weft_writer_buffered(w), 0);
	CHECK_EQ(weft_writer_destroy(w), 0);
	CHECK_EQ(weft_io_close(c), 0);
	return NULL;
}

static void *ux_conn(void *arg)
{
	struct weft_io *c = arg;
	char buf[7 * UX_LINES];
	size_t got = 0;
	ssize_t r;
	while ((r = weft_read(c, buf + got, sizeof buf - got)) > 0)
		got += (size_t)r;
	CHECK_EQ(r, 0);
	CHECK_EQ(got, sizeof buf);
	for (int i = 0; i < UX_LINES; i++) {
		char want[8];
		snprintf(want, sizeof want, "%06d\n", i);
		CHECK(!memcmp(buf + 7 * i, want, 7), "line %d", i);
	}
	CHECK_EQ(weft_io_close(c), 0);
	return NULL;
}

static void *ux_server(void *arg)
{
	struct weft_io *l = arg;
	struct weft_task *t[UX_CLIENTS];
	for (int i = 0; i < UX_CLIENTS; i++) {
		struct weft_io *c;
		CHECK_EQ(weft_accept(l, &c, NULL, NULL), 0);
		CHECK_EQ(weft_spawn(weft_runtime_current(), ux_conn, c, &t[i]), 0);
	}
	for (int i = 0; i < UX_CLIENTS; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	return NULL;
}

static void scenario_sockets(void)
{
	struct weft_runtime *rt = mk(2);
	/* udp */
	CHECK_EQ(weft_udp_bind(rt, "127.0.0.1", 0, &ud_rx), 0);
	int port = weft_io_local_port(ud_rx);
	CHECK(port > 0, "port %d", port);
	ud_port = (uint16_t)port;
	struct ud_ctx c[UD_SENDERS];
	struct weft_task *st[UD_SENDERS], *rf;
	pthread_t sth, rth;
	CHECK_EQ(weft_spawn(rt, ud_receiver, NULL, &rf), 0);
	CHECK_EQ(pthread_create(&rth, NULL, ud_receiver, NULL), 0);
	for (int i = 0; i < UD_SENDERS; i++) {
		c[i] = (struct ud_ctx){ rt, i };
		if (i == UD_SENDERS - 1)
			CHECK_EQ(pthread_create(&sth, NULL, ud_sender, &c[i]), 0);
		else
			CHECK_EQ(weft_spawn(rt, ud_sender, &c[i], &st[i]), 0);
	}
	/* unix, meanwhile */
	snprintf(ux_path, sizeof ux_path, "@weft-tsan-%d", (int)getpid());
	struct weft_io *l;
	CHECK_EQ(weft_unix_listen(rt, ux_path, 0, &l), 0);
	struct weft_task *srv, *cl[UX_CLIENTS - 1];
	pthread_t clt;
	CHECK_EQ(weft_spawn(rt, ux_server, l, &srv), 0);
	for (int i = 0; i < UX_CLIENTS - 1; i++)
		CHECK_EQ(weft_spawn(rt, ux_client, rt, &cl[i]), 0);
	CHECK_EQ(pthread_create(&clt, NULL, ux_client, rt), 0);

	for (int i = 0; i < UD_SENDERS - 1; i++)
		CHECK_EQ(weft_join(st[i], NULL), 0);
	pthread_join(sth, NULL);
	for (int k = 0; k < 20000 && atomic_load(&ud_got) < UD_SENDERS * UD_PER; k++)
		usleep(100);
	CHECK_EQ(atomic_load(&ud_got), UD_SENDERS * UD_PER);
	/* two end markers, one per receiver */
	struct weft_io *s;
	CHECK_EQ(weft_udp_bind(rt, "127.0.0.1", 0, &s), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(ud_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int end[2] = { -1, -1 };
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_sendto(s, end, sizeof end, 0, (struct sockaddr *)&to, sizeof to),
			 (ssize_t)sizeof end);
	CHECK_EQ(weft_join(rf, NULL), 0);
	pthread_join(rth, NULL);
	CHECK_EQ(weft_io_close(s), 0);
	CHECK_EQ(weft_io_close(ud_rx), 0);

	for (int i = 0; i < UX_CLIENTS - 1; i++)
		CHECK_EQ(weft_join(cl[i], NULL), 0);
	pthread_join(clt, NULL);
	CHECK_EQ(weft_join(srv, NULL), 0);
	CHECK_EQ(weft_io_close(l), 0);
	rm_rt(rt);
}

/* ------------------------------------------------------------ block_on */

/* weft_block_on from four threads at once, each spawning fibers that
 * meet on a channel and joining them; a shutdown from another thread
 * ends the last calls with -ESHUTDOWN or lets them finish. */
static struct weft_chan *bo_ch;
static atomic_long bo_sum;

static void *bo_fiber(void *arg)
{
	long v = (long)(intptr_t)arg;
	CHECK_EQ(weft_chan_send(bo_ch, &v), 0);
	return NULL;
}

static void *bo_body(void *arg)
{
	long base = (long)(intptr_t)arg;
	CHECK(weft_runtime_current() != NULL, "no current runtime");
	struct weft_task *t[8];
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_spawn(weft_runtime_current(), bo_fiber, (void *)(intptr_t)(base + i), &t[i]), 0);
	long s = 0;
	for (int i = 0; i < 8; i++) {
		long v;
		CHECK_EQ(weft_chan_recv(bo_ch, &v), 0);
		s += v;
	}
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	return (void *)(intptr_t)s;
}

static void *bo_thread(void *arg)
{
	struct weft_runtime *rt = arg;
	for (int r = 0; r < 100; r++) {
		void *res;
		CHECK_EQ(weft_block_on(rt, bo_body, (void *)(intptr_t)(r * 100), &res), 0);
		atomic_fetch_add(&bo_sum, (long)(intptr_t)res);
	}
	return NULL;
}

static void scenario_block_on(void)
{
	struct weft_runtime *rt = mk(2);
	/* rendezvous: the 8 values each call receives may be any 8 sent */
	CHECK_EQ(weft_chan_create(sizeof(long), 0, &bo_ch), 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, bo_thread, rt), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	long want = 0;
	for (int r = 0; r < 100; r++)
		want += 4 * (8 * r * 100 + 28);
	CHECK_EQ(atomic_load(&bo_sum), want);
	CHECK_EQ(weft_chan_destroy(bo_ch), 0);
	rm_rt(rt);
}

/* -------------------------------------------------- resize and metrics */

/* Threads resize the runtime between 1 and 6 workers while fibers spawn
 * fibers that yield and sleep, poll tasks run, and two threads take
 * metrics snapshots: every task ends, the snapshots are sane. */
static atomic_int rz_stop;
static atomic_long rz_done;

static void *rz_leaf(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		weft_yield();
	if ((intptr_t)arg % 5 == 0)
		weft_sleep_ns(100000);
	atomic_fetch_add(&rz_done, 1);
	return NULL;
}

static void *rz_spawner(void *arg)
{
	(void)arg;
	for (int r = 0; r < 40; r++) {
		struct weft_task *t[16];
		for (int i = 0; i < 16; i++)
			CHECK_EQ(weft_spawn(weft_runtime_current(), rz_leaf, (void *)(intptr_t)i, &t[i]), 0);
		for (int i = 0; i < 16; i++)
			CHECK_EQ(weft_join(t[i], NULL), 0);
	}
	return NULL;
}

static void *rz_resizer(void *arg)
{
	struct weft_runtime *rt = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	while (!atomic_load(&rz_stop)) {
		int n = 1 + (int)(rand_r(&seed) % 6);
		CHECK_EQ(weft_runtime_set_workers(rt, n), 0);
		usleep(500);
	}
	return NULL;
}

static void *rz_metrics(void *arg)
{
	struct weft_runtime *rt = arg;
	while (!atomic_load(&rz_stop)) {
		struct weft_metrics *m;
		CHECK_EQ(weft_runtime_metrics(rt, &m), 0);
		CHECK(m->workers >= 1 && m->workers <= 6, "workers %u", m->workers);
		CHECK(m->workers_active <= m->workers, "active");
		uint64_t polls = 0;
		for (unsigned i = 0; i < m->workers; i++)
			polls += m->worker[i].poll_count;
		(void)polls;
		weft_metrics_free(m);
	}
	return NULL;
}

static void scenario_resize(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t rs[2], ms[2];
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(pthread_create(&rs[i], NULL, rz_resizer, rt), 0);
		CHECK_EQ(pthread_create(&ms[i], NULL, rz_metrics, rt), 0);
	}
	struct weft_task *sp[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_spawn(rt, rz_spawner, NULL, &sp[i]), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_join(sp[i], NULL), 0);
	atomic_store(&rz_stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(rs[i], NULL);
		pthread_join(ms[i], NULL);
	}
	CHECK_EQ(atomic_load(&rz_done), 3 * 40 * 16);
	rm_rt(rt);
}

/* ------------------------------------------ io: waiters, deadlines, close */

/* Socket pairs registered with the runtime, each read by two fibers and a
 * thread at once (weft_read, weft_io_wait with timeouts) and by a poll
 * task (weft_io_poll_ready), with read deadlines set from another thread,
 * while writer threads send counted bytes; then every registration is
 * closed from another thread with waiters still parked on it: all bytes
 * read once, every waiter ends (-EBADF), registrations churn through the
 * slab meanwhile. Also on WEFT_IO_DRIVER=uring. */
#define IW_PAIRS 6
#define IW_BYTES 20000
struct iw_pair { struct weft_io *io; int wfd; atomic_long got; atomic_int ended; };
static struct iw_pair iw[IW_PAIRS];
static atomic_int iw_stop;

static void *iw_reader(void *arg)
{
	struct iw_pair *p = arg;
	char buf[97];
	for (int i = 0;; i++) {
		ssize_t r = weft_read(p->io, buf, sizeof buf);
		if (r > 0) {
			atomic_fetch_add(&p->got, r);
			continue;
		}
		if (r == -ETIMEDOUT) {
			weft_io_set_deadline(p->io, WEFT_IO_READABLE, WEFT_FOREVER);
			continue;
		}
		CHECK(r == -EBADF || r == 0, "read %zd", r);
		break;
	}
	atomic_fetch_add(&p->ended, 1);
	return NULL;
}

static void *iw_waiter(void *arg)
{
	struct iw_pair *p = arg;
	for (;;) {
		int rc = weft_io_wait(p->io, WEFT_IO_READABLE, 200000);
		if (rc == -ETIMEDOUT || rc > 0) {
			if (rc > 0)
				usleep(50);
			continue;
		}
		CHECK_EQ(rc, -EBADF);
		break;
	}
	atomic_fetch_add(&p->ended, 1);
	return NULL;
}

struct iw_poll { struct iw_pair *p; };
static enum weft_poll iw_poll_fn(void *state, struct weft_cx *cx)
{
	struct iw_poll *q = state;
	struct weft_io_ready rd;
	while (weft_io_poll_ready(q->p->io, cx, WEFT_IO_READABLE, &rd) == WEFT_READY) {
		if (rd.mask & WEFT_IO_CLOSED) {
			atomic_fetch_add(&q->p->ended, 1);
			return WEFT_READY;
		}
		/* leave the bytes to the readers: yield and look again */
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_PENDING;
}

static void *iw_writer(void *arg)
{
	struct iw_pair *p = arg;
	static const char junk[256];
	for (long sent = 0; sent < IW_BYTES;) {
		long k = IW_BYTES - sent < 211 ? IW_BYTES - sent : 211;
		ssize_t w = write(p->wfd, junk, (size_t)k);
		CHECK(w > 0, "write %zd", w);
		sent += w;
		if (sent % 2000 < 211)
			usleep(200);
	}
	return NULL;
}

static void *iw_deadliner(void *arg)
{
	(void)arg;
	for (int i = 0; !atomic_load(&iw_stop); i++) {
		struct iw_pair *p = &iw[i % IW_PAIRS];
		weft_io_set_deadline(p->io, WEFT_IO_READABLE, weft_now_ns() + 100000);
		usleep(300);
	}
	return NULL;
}

/* registrations made and closed meanwhile, some with a waiter */
static void *iw_churn(void *arg)
{
	struct weft_runtime *rt = arg;
	while (!atomic_load(&iw_stop)) {
		int sv[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct weft_io *a;
		CHECK_EQ(weft_io_register(rt, sv[0], &a), 0);
		CHECK_EQ(weft_io_wait(a, WEFT_IO_WRITABLE, 1000000) & WEFT_IO_WRITABLE, WEFT_IO_WRITABLE);
		CHECK_EQ(weft_io_wait(a, WEFT_IO_READABLE, 10000), -ETIMEDOUT);
		CHECK_EQ(weft_io_close(a), 0);
		close(sv[1]);
	}
	return NULL;
}

static void scenario_io_close(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_task *t[IW_PAIRS][3], *ch;
	pthread_t rth[IW_PAIRS], wth[IW_PAIRS], dl, cth;
	struct iw_poll q[IW_PAIRS];
	for (int i = 0; i < IW_PAIRS; i++) {
		int sv[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		iw[i].wfd = sv[1];
		CHECK_EQ(weft_io_register(rt, sv[0], &iw[i].io), 0);
		CHECK_EQ(weft_spawn(rt, iw_reader, &iw[i], &t[i][0]), 0);
		CHECK_EQ(weft_spawn(rt, i % 2 ? iw_reader : iw_waiter, &iw[i], &t[i][1]), 0);
		q[i].p = &iw[i];
		CHECK_EQ(weft_spawn_poll(rt, iw_poll_fn, &q[i], NULL, &t[i][2]), 0);
		CHECK_EQ(pthread_create(&rth[i], NULL, i % 2 ? iw_waiter : iw_reader, &iw[i]), 0);
		CHECK_EQ(pthread_create(&wth[i], NULL, iw_writer, &iw[i]), 0);
	}
	CHECK_EQ(pthread_create(&dl, NULL, iw_deadliner, NULL), 0);
	CHECK_EQ(pthread_create(&cth, NULL, iw_churn, rt), 0);
	CHECK_EQ(weft_spawn(rt, iw_churn, rt, &ch), 0);
	for (int i = 0; i < IW_PAIRS; i++)
		pthread_join(wth[i], NULL);
	for (int i = 0; i < IW_PAIRS; i++)
		for (int k = 0; k < 40000 && atomic_load(&iw[i].got) < IW_BYTES; k++)
			usleep(250);
	atomic_store(&iw_stop, 1);
	pthread_join(dl, NULL);
	pthread_join(cth, NULL);
	CHECK_EQ(weft_join(ch, NULL), 0);
	usleep(2000); /* the waiters park again */
	for (int i = 0; i < IW_PAIRS; i++) {
		CHECK_EQ(atomic_load(&iw[i].got), IW_BYTES);
		CHECK_EQ(weft_io_close(iw[i].io), 0);
	}
	for (int i = 0; i < IW_PAIRS; i++) {
		for (int k = 0; k < 3; k++)
			CHECK_EQ(weft_join(t[i][k], NULL), 0);
		pthread_join(rth[i], NULL);
		CHECK_EQ(atomic_load(&iw[i].ended), 4);
		close(iw[i].wfd);
	}
	rm_rt(rt);
}

/* ------------------------------------------------- shutdown under traffic */

/* Threads keep spawning (fibers, poll tasks, blocking jobs, fibers with
 * their own stack sizes), registering fds, resizing, taking metrics and
 * making deadline tokens while the main thread shuts the runtime down:
 * every call says 0 or -ESHUTDOWN, every spawned task ends (its join or
 * its drop), nothing is left when destroy returns. */
static atomic_int sd_stop;
static atomic_long sd_spawned, sd_ended, sd_dropped;

static void *sd_fiber(void *arg)
{
	(void)arg;
	weft_yield();
	atomic_fetch_add(&sd_ended, 1);
	return NULL;
}
static void sd_fiber_drop(void *arg) { (void)arg; atomic_fetch_add(&sd_dropped, 1); }
static enum weft_poll sd_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	atomic_fetch_add(&sd_ended, 1);
	return WEFT_READY;
}
static void sd_poll_drop(void *state)
{
	(void)state;
}

static void *sd_traffic(void *arg)
{
	struct weft_runtime *rt = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	for (int i = 0; !atomic_load(&sd_stop); i++) {
		int rc = 0;
		struct weft_task *t = NULL;
		switch (i % 8) {
		case 0: {
			WEFT_OPTS(weft_spawn_opts, o, .drop = sd_fiber_drop,
				  .stack_size = (size_t)(32 + 32 * (rand_r(&seed) % 3)) * 1024);
			rc = weft_spawn_with(rt, sd_fiber, NULL, &o, &t);
			break;
		}
		case 1: rc = weft_spawn(rt, sd_fiber, NULL, &t); break;
		case 2: rc = weft_spawn_poll(rt, sd_poll, NULL, sd_poll_drop, &t); break;
		case 3: rc = weft_spawn_blocking(rt, sd_fiber, NULL, &t); break;
		case 4: {
			int sv[2];
			CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			struct weft_io *io;
			rc = weft_io_register(rt, sv[0], &io);
			if (rc == 0)
				CHECK_EQ(weft_io_close(io), 0);
			else
				close(sv[0]);
			close(sv[1]);
			break;
		}
		case 5: {
			struct weft_metrics *m;
			rc = weft_runtime_metrics(rt, &m);
			if (rc == 0)
				weft_metrics_free(m);
			break;
		}
		case 6: rc = weft_runtime_set_workers(rt, 1 + (int)(rand_r(&seed) % 3)); break;
		default: {
			struct weft_token *tk;
			rc = weft_token_create_deadline(rt, NULL, weft_now_ns() + 200000, &tk);
			if (rc == 0) {
				if (i % 16 == 7)
					weft_token_wait_timeout(tk, 100000);
				CHECK_EQ(weft_token_destroy(tk), 0);
			}
		}
		}
		CHECK(rc == 0 || rc == -ESHUTDOWN, "call %d: %d", i % 8, rc);
		if (t) {
			atomic_fetch_add(&sd_spawned, 1);
			int j = weft_join(t, NULL);
			CHECK(j == 0 || j == -ECANCELED || j == -EINTR || j == -ESHUTDOWN, "join %d", j);
		}
		if (rc == -ESHUTDOWN && i > 64)
			break;
	}
	return NULL;
}

static void scenario_shutdown_traffic(void)
{
	for (int r = 0; r < 6; r++) {
		struct weft_runtime *rt = mk(2);
		atomic_store(&sd_stop, 0);
		pthread_t th[3];
		for (int i = 0; i < 3; i++)
			CHECK_EQ(pthread_create(&th[i], NULL, sd_traffic, rt), 0);
		usleep(20000 + (useconds_t)r * 5000);
		int rc;
		while ((rc = weft_runtime_shutdown(rt, 1000000)) == -ETIMEDOUT)
			;
		CHECK_EQ(rc, 0);
		atomic_store(&sd_stop, 1);
		for (int i = 0; i < 3; i++)
			pthread_join(th[i], NULL);
		rm_rt(rt);
	}
	CHECK(atomic_load(&sd_spawned) > 0, "nothing spawned");
}

/* ----------------------------------------------------- broadcast with lag */

/* A small broadcast ring overrun by two senders (fiber, thread) while
 * receivers in fibers, a thread and with timeouts fall behind and catch
 * up, and subscribers come and go: per sender the values a receiver gets
 * only grow, and got + lagged accounts for every item sent after it
 * subscribed. */
#define BL_PER 5000
static struct weft_broadcast *bl;
static atomic_int bl_senders_done;

struct bl_item { uint32_t who, seq; };

static void *bl_send(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;
	for (uint32_t s = 0; s < BL_PER; s++) {
		struct bl_item it = { who, s };
		CHECK_EQ(weft_broadcast_send(bl, &it), 0);
		if (s % 100 == 0 && weft_in_fiber())
			weft_yield();
	}
	atomic_fetch_add(&bl_senders_done, 1);
	return NULL;
}

static void *bl_recv(void *arg)
{
	struct weft_broadcast_rx *rx = arg;
	int64_t last[2] = { -1, -1 };
	uint64_t got = 0, lag = 0;
	for (int i = 0;; i++) {
		struct bl_item it;
		uint64_t lagged = 0;
		int rc = i % 3 == 2 ? weft_broadcast_recv_timeout(rx, &it, &lagged, 50000)
				    : weft_broadcast_recv(rx, &it, &lagged);
		if (rc == -EOVERFLOW) {
			CHECK(lagged > 0, "lagged 0");
			lag += lagged;
			continue;
		}
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -EPIPE)
			break;
		CHECK_EQ(rc, 0);
		CHECK(it.who < 2, "who");
		CHECK((int64_t)it.seq > last[it.who], "seq %u after %lld", it.seq, (long long)last[it.who]);
		last[it.who] = it.seq;
		got++;
		if (i % 500 == 0 && weft_in_fiber())
			weft_sleep_ns(200000); /* fall behind */
	}
	CHECK_EQ(got + lag, 2 * BL_PER);
	CHECK_EQ(weft_broadcast_rx_drop(rx), 0);
	return NULL;
}

static void *bl_churn(void *arg)
{
	(void)arg;
	while (atomic_load(&bl_senders_done) < 2) {
		struct weft_broadcast_rx *rx;
		CHECK_EQ(weft_broadcast_subscribe(bl, &rx), 0);
		struct bl_item it;
		uint64_t lagged;
		int rc = weft_broadcast_try_recv(rx, &it, &lagged);
		CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EOVERFLOW, "try %d", rc);
		rc = weft_broadcast_recv_timeout(rx, &it, &lagged, 20000);
		CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EPIPE || rc == -EOVERFLOW, "timeout %d", rc);
		CHECK_EQ(weft_broadcast_rx_drop(rx), 0);
	}
	return NULL;
}

static void scenario_broadcast_lag(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_broadcast_create(sizeof(struct bl_item), 16, &bl), 0);
	struct weft_broadcast_rx *rx[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_broadcast_subscribe(bl, &rx[i]), 0);
	struct weft_task *r[3], *s, *c;
	pthread_t rth, sth, cth;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_spawn(rt, bl_recv, rx[i], &r[i]), 0);
	CHECK_EQ(pthread_create(&rth, NULL, bl_recv, rx[3]), 0);
	CHECK_EQ(weft_spawn(rt, bl_churn, NULL, &c), 0);
	CHECK_EQ(pthread_create(&cth, NULL, bl_churn, NULL), 0);
	CHECK_EQ(weft_spawn(rt, bl_send, (void *)0, &s), 0);
	CHECK_EQ(pthread_create(&sth, NULL, bl_send, (void *)1), 0);
	CHECK_EQ(weft_join(s, NULL), 0);
	pthread_join(sth, NULL);
	CHECK_EQ(weft_broadcast_close(bl), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_join(r[i], NULL), 0);
	pthread_join(rth, NULL);
	CHECK_EQ(weft_join(c, NULL), 0);
	pthread_join(cth, NULL);
	CHECK_EQ(weft_broadcast_destroy(bl), 0);
	rm_rt(rt);
}

/* --------------------------------------------- join sets: abort, timeouts */

/* Members that sleep or wait forever, joined with timeouts by a fiber and
 * a thread while another thread aborts them all and spawns more: every
 * member is joined exactly once (its id seen once), as done or cancelled. */
#define JA_N 400
static struct weft_joinset *ja;
static atomic_int ja_ids_seen;
static atomic_int ja_ok, ja_cancelled;

static void *ja_member(void *arg)
{
	intptr_t i = (intptr_t)arg;
	if (i % 3 == 0)
		weft_sleep_ns(3600000000000ull);
	else if (i % 3 == 1)
		weft_sleep_ns(50000);
	return arg;
}

static enum weft_poll ja_poll_member(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_PENDING; /* only an abort ends it */
}

static void *ja_joiner(void *arg)
{
	(void)arg;
	for (;;) {
		void *r;
		uint64_t id;
		int rc = weft_joinset_join_next_timeout(ja, &r, &id, 100000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -ENOENT)
			return NULL;
		atomic_fetch_add(&ja_ids_seen, 1);
		if (rc == 0)
			atomic_fetch_add(&ja_ok, 1);
		else {
			/* -EINTR: a sleeping fiber aborted after it started */
			CHECK(rc == -ECANCELED || rc == -EINTR, "join_next %d", rc);
			atomic_fetch_add(&ja_cancelled, 1);
		}
	}
}

static void scenario_joinset_abort(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_joinset_create(&ja), 0);
	for (int round = 0; round < 4; round++) {
		for (intptr_t i = 0; i < JA_N; i++) {
			if (i % 10 == 9)
				CHECK_EQ(weft_joinset_spawn_poll(ja, rt, ja_poll_member, NULL, NULL, NULL), 0);
			else
				CHECK_EQ(weft_joinset_spawn(ja, rt, ja_member, (void *)i, NULL), 0);
		}
		struct weft_task *j;
		pthread_t th;
		CHECK_EQ(weft_spawn(rt, ja_joiner, NULL, &j), 0);
		CHECK_EQ(pthread_create(&th, NULL, ja_joiner, NULL), 0);
		usleep(3000);
		CHECK_EQ(weft_joinset_abort_all(ja), 0);
		CHECK_EQ(weft_join(j, NULL), 0);
		pthread_join(th, NULL);
		CHECK_EQ(weft_joinset_len(ja), 0);
	}
	CHECK_EQ(atomic_load(&ja_ids_seen), 4 * JA_N);
	CHECK_EQ(atomic_load(&ja_ok) + atomic_load(&ja_cancelled), 4 * JA_N);
	CHECK(atomic_load(&ja_cancelled) >= 4 * (JA_N / 3), "cancelled %d", atomic_load(&ja_cancelled));
	CHECK_EQ(weft_joinset_destroy(ja), 0);
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

/* ------------------------------------------------ abort, detach, is_finished */

/* Fibers spawned with a drop (weft_spawn_with) and poll tasks, aborted by
 * another thread as they start, run or finish; others detached while they
 * run; a thread polls weft_task_is_finished and then reads what the task
 * wrote (plain) before it ended: for each task exactly one of fn / drop
 * ran, the join says which, and is_finished orders the task's writes. */
#define AR_N 600
struct ar_slot { long plain; atomic_int fn_ran, drop_ran; struct weft_task *t; atomic_int ready; };
static struct ar_slot ar[AR_N];
static atomic_int ar_detached_done;

static void *ar_fn(void *arg)
{
	struct ar_slot *s = arg;
	atomic_fetch_add(&s->fn_ran, 1);
	s->plain = (long)(s - ar) + 1;
	if ((s - ar) % 4 == 1)
		weft_yield();
	if ((s - ar) % 8 == 3)
		weft_sleep_ns(20000);
	return s;
}

static void ar_drop(void *arg)
{
	struct ar_slot *s = arg;
	atomic_fetch_add(&s->drop_ran, 1);
}

static enum weft_poll ar_poll(void *state, struct weft_cx *cx)
{
	struct ar_slot *s = state;
	if (atomic_fetch_add(&s->fn_ran, 1) < 3) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	s->plain = (long)(s - ar) + 1;
	weft_cx_set_result(cx, s);
	return WEFT_READY;
}

static void ar_poll_drop(void *state)
{
	struct ar_slot *s = state;
	atomic_fetch_add(&s->drop_ran, 1);
}

static void *ar_detached(void *arg)
{
	struct ar_slot *s = arg;
	weft_yield();
	atomic_fetch_add(&ar_detached_done, 1);
	(void)s;
	return NULL;
}

static void *ar_aborter(void *arg)
{
	(void)arg;
	for (int i = 0; i < AR_N; i += 2) {
		while (!atomic_load(&ar[i].ready))
			sched_yield();
		if (i % 6 != 4)
			CHECK_EQ(weft_abort(ar[i].t), 0);
	}
	return NULL;
}

static void scenario_abort_race(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t ab;
	CHECK_EQ(pthread_create(&ab, NULL, ar_aborter, NULL), 0);
	for (int i = 0; i < AR_N; i++) {
		if (i % 3 == 2)
			CHECK_EQ(weft_spawn_poll(rt, ar_poll, &ar[i], ar_poll_drop, &ar[i].t), 0);
		else {
			WEFT_OPTS(weft_spawn_opts, o, .drop = ar_drop);
			CHECK_EQ(weft_spawn_with(rt, ar_fn, &ar[i], &o, &ar[i].t), 0);
		}
		atomic_store(&ar[i].ready, 1);
		if (i % 10 == 7) {
			struct weft_task *d;
			CHECK_EQ(weft_spawn(rt, ar_detached, &ar[i], &d), 0);
			CHECK_EQ(weft_detach(d), 0);
		}
	}
	pthread_join(ab, NULL);
	for (int i = 0; i < AR_N; i++) {
		struct ar_slot *s = &ar[i];
		if (i % 2 == 1) {
			/* not aborted: is_finished, then the task's plain write */
			while (!weft_task_is_finished(s->t))
				sched_yield();
			CHECK_EQ(s->plain, i + 1);
		}
		CHECK(weft_task_id(s->t) != 0, "id");
		void *r = NULL;
		int rc = weft_join(s->t, &r);
		if (i % 3 == 2) { /* poll task: drop always runs, once */
			CHECK_EQ(atomic_load(&s->drop_ran), 1);
			if (rc == 0) {
				CHECK(r == s, "result");
				CHECK_EQ(s->plain, i + 1);
			} else
				CHECK_EQ(rc, -ECANCELED);
		} else if (rc == -ECANCELED) { /* never started: drop ran */
			CHECK_EQ(atomic_load(&s->fn_ran), 0);
			CHECK_EQ(atomic_load(&s->drop_ran), 1);
		} else {
			CHECK(rc == 0 || rc == -EINTR, "join %d", rc);
			CHECK_EQ(atomic_load(&s->fn_ran), 1);
			CHECK_EQ(atomic_load(&s->drop_ran), 0);
			CHECK(r == s, "fiber result");
			CHECK_EQ(s->plain, i + 1);
		}
	}
	for (int k = 0; k < 20000 && atomic_load(&ar_detached_done) < AR_N / 10; k++)
		usleep(100);
	CHECK_EQ(atomic_load(&ar_detached_done), AR_N / 10);
	rm_rt(rt);
}

/* ------------------------------------------------------- select, mixed arms */

/* Fibers, threads and poll tasks select over a mutex, a semaphore, a
 * notify, a watch, a broadcast and a one-shot, with an interval and
 * (poll form) a timer arm beside them, while a thread notifies, sends and
 * fires: the mutex and permits won by an arm are held exactly as by
 * their own calls (plain counter under the mutex, permit count checked),
 * grants to losing arms are passed on (nothing strands: every actor ends). */
#define SX_ROUNDS 600
static struct weft_mutex *sx_m;
static struct weft_sem *sx_s;
static struct weft_notify *sx_n;
static struct weft_watch *sx_w;
static struct weft_broadcast *sx_b;
static long sx_plain;            /* under sx_m */
static atomic_int sx_held, sx_stop;
static atomic_long sx_wins[8];

static void sx_handle(int r, struct weft_select_arm *arms)
{
	CHECK(r >= 0, "select %d", r);
	atomic_fetch_add(&sx_wins[r], 1);
	switch (r) {
	case 0: /* mutex */
		CHECK_EQ(arms[0].rc, 0);
		sx_plain++;
		CHECK_EQ(weft_mutex_unlock(sx_m), 0);
		break;
	case 1: { /* two permits */
		CHECK_EQ(arms[1].rc, 0);
		int h = atomic_fetch_add(&sx_held, 2) + 2;
		CHECK(h <= 3, "held %d", h);
		atomic_fetch_sub(&sx_held, 2);
		CHECK_EQ(weft_sem_release_n(sx_s, 2), 0);
		break;
	}
	case 4: /* broadcast */
		CHECK(arms[4].rc == 0 || arms[4].rc == -EOVERFLOW, "bcast %d", arms[4].rc);
		break;
	default:
		break;
	}
}

struct sx_actor {
	struct weft_watch_rx *rx;
	struct weft_broadcast_rx *brx;
	struct weft_interval iv;
	struct weft_timer tm;
	struct weft_select_arm arms[7];
	int rounds;
	long item;
};

static void sx_arms(struct sx_actor *a, bool poll_form)
{
	struct weft_select_arm arms[7] = {
		WEFT_SEL_LOCK(sx_m), WEFT_SEL_ACQUIRE(sx_s, 2), WEFT_SEL_NOTIFIED(sx_n),
		WEFT_SEL_CHANGED(a->rx), WEFT_SEL_BROADCAST(a->brx, &a->item), WEFT_SEL_TICK(&a->iv),
		WEFT_SEL_AT(&a->tm, weft_now_ns() + 300000),
	};
	memcpy(a->arms, arms, sizeof arms);
	(void)poll_form;
}

static void sx_init(struct sx_actor *a)
{
	CHECK_EQ(weft_watch_subscribe(sx_w, &a->rx), 0);
	CHECK_EQ(weft_broadcast_subscribe(sx_b, &a->brx), 0);
	CHECK_EQ(weft_interval_init(&a->iv, 500000), 0);
	a->tm = (struct weft_timer)WEFT_TIMER_INIT;
	a->rounds = 0;
}

static void sx_fini(struct sx_actor *a)
{
	weft_interval_cancel(&a->iv);
	weft_timer_cancel(&a->tm);
	CHECK_EQ(weft_watch_rx_drop(a->rx), 0);
	CHECK_EQ(weft_broadcast_rx_drop(a->brx), 0);
}

static void *sx_blocking(void *arg)
{
	struct sx_actor *a = arg;
	sx_init(a);
	for (int i = 0; i < SX_ROUNDS; i++) {
		sx_arms(a, false);
		int r = i % 4 == 3 ? weft_select_timeout(a->arms, 6, 100000)
				   : weft_select(a->arms, 6, WEFT_FOREVER);
		if (r == -ETIMEDOUT)
			continue;
		sx_handle(r, a->arms);
	}
	sx_fini(a);
	return NULL;
}

static enum weft_poll sx_poll(void *state, struct weft_cx *cx)
{
	struct sx_actor *a = state;
	for (;;) {
		if (a->rounds == 0 && !a->rx) {
			sx_init(a);
			sx_arms(a, true);
		}
		size_t idx;
		int rc = weft_select_poll(a->arms, 7, cx, &idx);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		CHECK_EQ(rc, 0);
		sx_handle((int)idx, a->arms);
		if (++a->rounds == SX_ROUNDS) {
			weft_select_cancel(a->arms, 7);
			sx_fini(a);
			a->rx = NULL;
			return WEFT_READY;
		}
		sx_arms(a, true);
	}
}

static void sx_poll_drop(void *state)
{
	struct sx_actor *a = state;
	if (a->rx) { /* not finished */
		weft_select_cancel(a->arms, 7);
		sx_fini(a);
	}
}

static void *sx_driver(void *arg)
{
	(void)arg;
	long v = 0;
	while (!atomic_load(&sx_stop)) {
		v++;
		if (v % 3 == 0)
			weft_notify_all(sx_n);
		else
			weft_notify_one(sx_n);
		CHECK_EQ(weft_watch_send(sx_w, &v), 0);
		CHECK_EQ(weft_broadcast_send(sx_b, &v), 0);
		usleep(50);
	}
	return NULL;
}

static void scenario_select_mix(void)
{
	struct weft_runtime *rt = mk(2);
	long z = 0;
	CHECK_EQ(weft_mutex_create(&sx_m), 0);
	CHECK_EQ(weft_sem_create(3, &sx_s), 0);
	CHECK_EQ(weft_notify_create(&sx_n), 0);
	CHECK_EQ(weft_watch_create(sizeof(long), &z, &sx_w), 0);
	CHECK_EQ(weft_broadcast_create(sizeof(long), 4, &sx_b), 0);
	static struct sx_actor act[6];
	struct weft_task *t[4];
	pthread_t th[2], drv;
	CHECK_EQ(pthread_create(&drv, NULL, sx_driver, NULL), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, sx_blocking, &act[i], &t[i]), 0);
	for (int i = 2; i < 4; i++)
		CHECK_EQ(weft_spawn_poll(rt, sx_poll, &act[i], sx_poll_drop, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, sx_blocking, &act[4 + i]), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	atomic_store(&sx_stop, 1);
	pthread_join(drv, NULL);
	long wins = 0;
	for (int i = 0; i < 8; i++)
		wins += atomic_load(&sx_wins[i]);
	CHECK(wins > 0, "no wins");
	CHECK_EQ(sx_plain, atomic_load(&sx_wins[0]));
	CHECK_EQ(weft_sem_available(sx_s), 3);
	CHECK_EQ(weft_mutex_try_lock(sx_m), 0);
	CHECK_EQ(weft_mutex_unlock(sx_m), 0);
	CHECK_EQ(weft_broadcast_destroy(sx_b), 0);
	CHECK_EQ(weft_watch_destroy(sx_w), 0);
	CHECK_EQ(weft_notify_destroy(sx_n), 0);
	CHECK_EQ(weft_sem_destroy(sx_s), 0);
	CHECK_EQ(weft_mutex_destroy(sx_m), 0);
	rm_rt(rt);
}

/* ------------------------------------ resize with block_in_place and jobs */

/* Fibers hand their core to a spare (weft_block_in_place) and take it
 * back, blocking jobs come and go, and poll tasks hop cores, while threads
 * grow and shrink the runtime and take metrics: every call returns its
 * value, the counts add up. */
static atomic_int rb_stop;
static atomic_long rb_bip, rb_jobs;

static void *rb_inplace(void *arg)
{
	usleep(100);
	return arg;
}

static void *rb_fiber(void *arg)
{
	long me = (long)(intptr_t)arg;
	for (int i = 0; i < 60; i++) {
		void *r;
		if (i % 3 == 0) {
			CHECK_EQ(weft_block_in_place(rb_inplace, (void *)(intptr_t)(me + i), &r), 0);
			CHECK_EQ((long)(intptr_t)r, me + i);
			atomic_fetch_add(&rb_bip, 1);
		} else if (i % 3 == 1) {
			struct weft_task *j;
			CHECK_EQ(weft_spawn_blocking(weft_runtime_current(), rb_inplace,
						     (void *)(intptr_t)i, &j), 0);
			CHECK_EQ(weft_join(j, &r), 0);
			CHECK_EQ((long)(intptr_t)r, i);
			atomic_fetch_add(&rb_jobs, 1);
		} else
			weft_yield();
	}
	return NULL;
}

static void *rb_resizer(void *arg)
{
	struct weft_runtime *rt = arg;
	unsigned seed = 7;
	while (!atomic_load(&rb_stop)) {
		CHECK_EQ(weft_runtime_set_workers(rt, 1 + (int)(rand_r(&seed) % 4)), 0);
		struct weft_metrics *m;
		CHECK_EQ(weft_runtime_metrics(rt, &m), 0);
		CHECK(m->workers_active <= m->workers, "active");
		for (unsigned i = 0; i < m->workers; i++)
			(void)m->worker[i].thread_id;
		weft_metrics_free(m);
		usleep(300);
	}
	return NULL;
}

static void scenario_resize_bip(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t rs;
	CHECK_EQ(pthread_create(&rs, NULL, rb_resizer, rt), 0);
	struct weft_task *t[8];
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_spawn(rt, rb_fiber, (void *)(intptr_t)(i * 1000), &t[i]), 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	atomic_store(&rb_stop, 1);
	pthread_join(rs, NULL);
	CHECK_EQ(atomic_load(&rb_bip), 8 * 20);
	CHECK_EQ(atomic_load(&rb_jobs), 8 * 20);
	rm_rt(rt);
}

/* ------------------------------- block_in_place at the blocking cap */

/* max_blocking_threads 2: fibers alternate blocking jobs (whose pool
 * threads then idle, holding the rooms) with block_in_place calls (which
 * ask an idle pool thread to leave for their spare: evict_pool), on 2
 * workers: every call returns its value, the counts add up, and destroy
 * finds every thread gone. */
static atomic_long bc_bip, bc_jobs;

static void *bc_fiber(void *arg)
{
	long me = (long)(intptr_t)arg;
	for (int i = 0; i < 40; i++) {
		void *r;
		if (i % 2) {
			CHECK_EQ(weft_block_in_place(rb_inplace, (void *)(intptr_t)(me + i), &r), 0);
			CHECK_EQ((long)(intptr_t)r, me + i);
			atomic_fetch_add(&bc_bip, 1);
		} else {
			struct weft_task *j;
			CHECK_EQ(weft_spawn_blocking(weft_runtime_current(), rb_inplace,
						     (void *)(intptr_t)i, &j), 0);
			CHECK_EQ(weft_join(j, &r), 0);
			CHECK_EQ((long)(intptr_t)r, i);
			atomic_fetch_add(&bc_jobs, 1);
		}
	}
	return NULL;
}

static void scenario_bip_cap(void)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .max_blocking_threads = 2);
	struct weft_runtime *rt;
	CHECK_EQ(weft_runtime_create(&o, &rt), 0);
	struct weft_task *t[6];
	for (int i = 0; i < 6; i++)
		CHECK_EQ(weft_spawn(rt, bc_fiber, (void *)(intptr_t)(i * 1000), &t[i]), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&bc_bip), 6 * 20);
	CHECK_EQ(atomic_load(&bc_jobs), 6 * 20);
	rm_rt(rt);
}

/* ---------------------------------- yield in a cancelled fiber's bip fn */

/* Fibers whose weft_block_in_place fn yields until weft_yield says
 * otherwise, aborted from this thread as they start (two rounds), then left
 * for shutdown to cancel (the last round): every yield loop ends with
 * -ECANCELED, every join says -EINTR (or -ECANCELED, aborted before fn
 * started), and shutdown does not time out. */
#define BY_N 6
static atomic_int by_started, by_ended;

static void *by_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&by_started, 1);
	int rc;
	while ((rc = weft_yield()) == 0)
		;
	CHECK_EQ(rc, -ECANCELED);
	atomic_fetch_add(&by_ended, 1);
	return NULL;
}

static void *by_fiber(void *arg)
{
	CHECK_EQ(weft_block_in_place(by_fn, arg, NULL), 0);
	return NULL;
}

static void scenario_bip_yield(void)
{
	for (int round = 0; round < 3; round++) {
		struct weft_runtime *rt = mk(2);
		struct weft_task *t[BY_N];
		atomic_store(&by_started, 0);
		atomic_store(&by_ended, 0);
		for (int i = 0; i < BY_N; i++)
			CHECK_EQ(weft_spawn(rt, by_fiber, NULL, &t[i]), 0);
		if (round < 2) {
			for (int i = 0; i < BY_N; i++)
				CHECK_EQ(weft_abort(t[i]), 0);
		} else {
			for (int ms = 0; ms < 5000 && atomic_load(&by_started) < BY_N; ms++)
				usleep(1000); /* let them start */
			CHECK_EQ(weft_runtime_shutdown(rt, 10000000000ull), 0);
		}
		for (int i = 0; i < BY_N; i++) {
			int rc = weft_join(t[i], NULL);
			CHECK(rc == -EINTR || rc == -ECANCELED || rc == 0, "join %d", rc);
		}
		CHECK_EQ(atomic_load(&by_ended), atomic_load(&by_started));
		rm_rt(rt);
	}
}

/* ------------------------------------------------ channel closed mid-stream */

/* A small channel (and a rendezvous one) closed by a thread while
 * producers send (blocking, with timeouts, through select arms and try)
 * and consumers receive (blocking, timeouts, select, batches): every item
 * whose send said 0 is received exactly once, none whose send failed. */
#define CC_PER 20000
static struct weft_chan *cc_ch;
static atomic_long cc_sent, cc_recvd;
static atomic_int cc_seen[4][CC_PER];

static void *cc_produce(void *arg)
{
	int who = (int)(intptr_t)arg;
	for (int s = 0; s < CC_PER; s++) {
		long v = (long)who * CC_PER + s;
		int rc;
		switch ((s + who) % 4) {
		case 0: rc = weft_chan_send(cc_ch, &v); break;
		case 1:
			while ((rc = weft_chan_send_timeout(cc_ch, &v, 20000)) == -ETIMEDOUT)
				;
			break;
		case 2: {
			struct weft_select_arm a[] = { WEFT_SEL_SEND(cc_ch, &v) };
			int r = weft_select_timeout(a, 1, 30000);
			rc = r == 0 ? a[0].rc : r;
			if (rc == -ETIMEDOUT)
				rc = weft_chan_send(cc_ch, &v);
			break;
		}
		default:
			while ((rc = weft_chan_try_send(cc_ch, &v)) == -EAGAIN)
				weft_in_fiber() ? (void)weft_yield() : (void)sched_yield();
		}
		if (rc == -EPIPE)
			return NULL;
		CHECK_EQ(rc, 0);
		atomic_fetch_add(&cc_sent, 1);
	}
	return NULL;
}

static void cc_take(long v)
{
	CHECK(v >= 0 && v < 4L * CC_PER, "item %ld", v);
	CHECK_EQ(atomic_fetch_add(&cc_seen[v / CC_PER][v % CC_PER], 1), 0);
	atomic_fetch_add(&cc_recvd, 1);
}

static void *cc_consume(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0;; i++) {
		long v[5];
		size_t n;
		int rc;
		switch ((i + me) % 4) {
		case 0: rc = weft_chan_recv(cc_ch, v); n = 1; break;
		case 1: rc = weft_chan_recv_timeout(cc_ch, v, 15000); n = 1; break;
		case 2: {
			struct weft_select_arm a[] = { WEFT_SEL_RECV(cc_ch, v) };
			int r = weft_select_timeout(a, 1, 25000);
			rc = r == 0 ? a[0].rc : r;
			n = 1;
			break;
		}
		default: rc = weft_chan_recv_many(cc_ch, v, 5, &n); break;
		}
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -EPIPE)
			return NULL;
		CHECK_EQ(rc, 0);
		for (size_t k = 0; k < n; k++)
			cc_take(v[k]);
	}
}

static void scenario_chan_close(void)
{
	struct weft_runtime *rt = mk(2);
	for (int round = 0; round < 6; round++) {
		atomic_store(&cc_sent, 0);
		atomic_store(&cc_recvd, 0);
		memset(cc_seen, 0, sizeof cc_seen);
		CHECK_EQ(weft_chan_create(sizeof(long), (size_t)(round % 3) * 2, &cc_ch), 0);
		struct weft_task *p[3], *c[2];
		pthread_t pt, ct;
		for (int i = 0; i < 2; i++)
			CHECK_EQ(weft_spawn(rt, cc_consume, (void *)(intptr_t)i, &c[i]), 0);
		CHECK_EQ(pthread_create(&ct, NULL, cc_consume, (void *)2), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_spawn(rt, cc_produce, (void *)(intptr_t)i, &p[i]), 0);
		CHECK_EQ(pthread_create(&pt, NULL, cc_produce, (void *)3), 0);
		usleep(5000 + (useconds_t)round * 3000);
		CHECK_EQ(weft_chan_close(cc_ch), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_join(p[i], NULL), 0);
		pthread_join(pt, NULL);
		for (int i = 0; i < 2; i++)
			CHECK_EQ(weft_join(c[i], NULL), 0);
		pthread_join(ct, NULL);
		CHECK_EQ(atomic_load(&cc_recvd), atomic_load(&cc_sent));
		CHECK_EQ(weft_chan_destroy(cc_ch), 0);
	}
	rm_rt(rt);
}

/* ------------------------------------------ notify_one against timeouts */

/* Waiters (fibers and threads) wait on a notify with timeouts so short that
 * many expire as a notify_one grants them; a thread sends one notify_one
 * at a time and waits for some waiter to count it: a grant to a waiter
 * that timed out is passed on (or kept as the permit), never lost - the
 * count reaches the number sent. */
#define NO_N 1500
static struct weft_notify *no_n;
static atomic_int no_woken, no_stop;

static void *no_waiter(void *arg)
{
	int me = (int)(intptr_t)arg;
	while (!atomic_load(&no_stop)) {
		int rc = weft_notify_wait_timeout(no_n, 5000 + (uint64_t)(me % 3) * 10000);
		if (rc == -ETIMEDOUT)
			continue;
		CHECK_EQ(rc, 0);
		atomic_fetch_add(&no_woken, 1);
	}
	return NULL;
}

static void scenario_notify_timeout(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_notify_create(&no_n), 0);
	struct weft_task *f[4];
	pthread_t th[2];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_spawn(rt, no_waiter, (void *)(intptr_t)i, &f[i]), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, no_waiter, (void *)(intptr_t)(4 + i)), 0);
	for (int i = 1; i <= NO_N; i++) {
		CHECK_EQ(weft_notify_one(no_n), 0);
		for (int k = 0; atomic_load(&no_woken) < i; k++) {
			CHECK(k < 200000, "notify %d lost (woken %d)", i, atomic_load(&no_woken));
			sched_yield();
		}
		CHECK_EQ(atomic_load(&no_woken), i);
	}
	atomic_store(&no_stop, 1);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(f[i], NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&no_woken), NO_N);
	CHECK_EQ(weft_notify_destroy(no_n), 0);
	rm_rt(rt);
}

/* ------------------------------------------------- barrier with timeouts */

/* The barrier scenario's phases over plain slots, with every party
 * (fibers, a poll-free thread) waiting with time limits so short that
 * many give up and take their arrival back, then wait again, and a fiber
 * aborted in its wait between rounds: one leader per round, every slot
 * read after the round that wrote it. */
#define BT_P 4
#define BT_ROUNDS 150
static struct weft_barrier *bt_bar;
static int bt_slots[BT_P];
static atomic_int bt_leaders, bt_timeouts;

static void bt_wait(int me, bool *leader)
{
	for (;;) {
		int rc = weft_barrier_wait_timeout(bt_bar, 2000 + (uint64_t)me * 3000, leader);
		if (rc == 0)
			return;
		CHECK_EQ(rc, -ETIMEDOUT);
		atomic_fetch_add(&bt_timeouts, 1);
	}
}

static void bt_party(int me)
{
	for (int r = 1; r <= BT_ROUNDS; r++) {
		bt_slots[me] = r;
		bool leader = false;
		bt_wait(me, &leader);
		if (leader)
			atomic_fetch_add(&bt_leaders, 1);
		for (int i = 0; i < BT_P; i++)
			CHECK_EQ(bt_slots[i], r);
		bt_wait(me, NULL);
	}
}

static void *bt_fiber(void *arg) { bt_party((int)(intptr_t)arg); return NULL; }
static void *bt_thread(void *arg) { bt_party((int)(intptr_t)arg); return NULL; }

/* an extra party that never completes a round: it waits, is aborted */
static void *bt_intruder(void *arg)
{
	(void)arg;
	bool leader = false;
	int rc = weft_barrier_wait(bt_bar, &leader);
	CHECK(rc == -ECANCELED || rc == 0, "intruder %d", rc);
	return (void *)(intptr_t)rc;
}

static void scenario_barrier_timeout(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_barrier_create(BT_P, &bt_bar), 0);
	struct weft_task *f[BT_P - 1];
	pthread_t th;
	for (int i = 0; i < BT_P - 1; i++)
		CHECK_EQ(weft_spawn(rt, bt_fiber, (void *)(intptr_t)i, &f[i]), 0);
	CHECK_EQ(pthread_create(&th, NULL, bt_thread, (void *)(intptr_t)(BT_P - 1)), 0);
	for (int i = 0; i < BT_P - 1; i++)
		CHECK_EQ(weft_join(f[i], NULL), 0);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&bt_leaders), BT_ROUNDS);
	/* a lone waiter, aborted: its arrival is taken back */
	struct weft_task *in;
	CHECK_EQ(weft_spawn(rt, bt_intruder, NULL, &in), 0);
	usleep(2000);
	CHECK_EQ(weft_abort(in), 0);
	int jr = weft_join(in, NULL);
	CHECK(jr == -EINTR || jr == -ECANCELED, "intruder join %d", jr);
	CHECK_EQ(weft_barrier_destroy(bt_bar), 0);
	rm_rt(rt);
}

/* ------------------------------------------------ registration churn */

/* Threads (whose registrations the io_uring driver arms later, from its
 * pending list) and fibers (armed at once) register socket pairs and
 * close or deregister them at once, some with bytes in flight or a waiter
 * on the other side: every registration ends, every fd closed once
 * (a deregistered fd is the caller's: closed here), no wait hangs. */
#define RC_ITERS 400
static atomic_long rc_events;

static void *rc_churn(void *arg)
{
	struct weft_runtime *rt = arg;
	for (int i = 0; i < RC_ITERS; i++) {
		int sv[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct weft_io *a;
		CHECK_EQ(weft_io_register(rt, sv[0], &a), 0);
		if (i % 3 == 0)
			CHECK_EQ(write(sv[1], "x", 1), 1);
		if (i % 5 == 1) {
			int rc = weft_io_wait(a, WEFT_IO_WRITABLE, 1000000);
			CHECK(rc > 0, "wait %d", rc);
			atomic_fetch_add(&rc_events, 1);
		}
		if (i % 4 == 2) {
			int fd = weft_io_deregister(a);
			CHECK_EQ(fd, sv[0]);
			close(fd);
		} else
			CHECK_EQ(weft_io_close(a), 0);
		close(sv[1]);
	}
	return NULL;
}

static void scenario_reg_churn(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_task *f[2];
	pthread_t th[3];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(rt, rc_churn, rt, &f[i]), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, rc_churn, rt), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(f[i], NULL), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&rc_events), 5 * (RC_ITERS / 5));
	struct weft_metrics *m;
	CHECK_EQ(weft_runtime_metrics(rt, &m), 0);
	CHECK_EQ(m->io_fds_registered, m->io_fds_deregistered);
	weft_metrics_free(m);
	rm_rt(rt);
}

/* ----------------------------------------- shutdown with fibers in waits */

/* Fibers parked in every kind of wait (channel, mutex held elsewhere,
 * semaphore, cond, notify, watch, broadcast, oneshot, waitgroup, token,
 * I/O, sleep, select with a deadline, join set) and poll tasks with
 * pending timers, all ended by a shutdown from another thread while a
 * thread keeps sending and notifying: each fiber's wait returns (its
 * joiner gets -EINTR or 0), each poll task's drop runs. */
struct sw_objs {
	struct weft_chan *ch;
	struct weft_mutex *m;
	struct weft_sem *s;
	struct weft_cond *c;
	struct weft_mutex *cm;
	struct weft_notify *n;
	struct weft_watch *w;
	struct weft_broadcast *b;
	struct weft_oneshot *o[3]; /* one per receiving fiber: a oneshot has one receiver */
	struct weft_waitgroup *wg;
	struct weft_token *tk;
	struct weft_io *io;
	struct weft_joinset *js;
	struct weft_runtime *rt;
};
static struct sw_objs sw;
static atomic_int sw_returned, sw_dropped, sw_stop;

static void *sw_forever(void *arg) { (void)arg; weft_sleep_ns(3600000000000ull); return NULL; }

static void *sw_fiber(void *arg)
{
	int i = (int)(intptr_t)arg, kind = i % 14;
	long v;
	int rc = 0;
	switch (kind) {
	case 0: rc = weft_chan_recv(sw.ch, &v); break;
	case 1: rc = weft_mutex_lock(sw.m); if (!rc) weft_mutex_unlock(sw.m); break;
	case 2: rc = weft_sem_acquire_n(sw.s, 5); break;
	case 3:
		rc = weft_mutex_lock(sw.cm);
		if (!rc) {
			rc = weft_cond_wait(sw.c, sw.cm);
			if (rc == 0)
				weft_mutex_unlock(sw.cm);
		}
		break;
	case 4: rc = weft_notify_wait(sw.n); break;
	case 5: {
		struct weft_watch_rx *rx;
		CHECK_EQ(weft_watch_subscribe(sw.w, &rx), 0);
		while ((rc = weft_watch_changed(rx)) == 0)
			;
		weft_watch_rx_drop(rx);
		break;
	}
	case 6: {
		struct weft_broadcast_rx *rx;
		CHECK_EQ(weft_broadcast_subscribe(sw.b, &rx), 0);
		uint64_t lag;
		while ((rc = weft_broadcast_recv(rx, &v, &lag)) == 0 || rc == -EOVERFLOW)
			;
		weft_broadcast_rx_drop(rx);
		break;
	}
	case 7: { void *p; rc = weft_oneshot_recv(sw.o[i / 14], &p); break; }
	case 8: rc = weft_waitgroup_wait(sw.wg); break;
	case 9: rc = weft_token_wait(sw.tk); break;
	case 10: { char c; rc = (int)weft_read(sw.io, &c, 1); break; }
	case 11: rc = weft_sleep_ns(3600000000000ull); break;
	case 12: {
		struct weft_interval iv;
		weft_interval_init(&iv, 100000);
		for (;;) {
			struct weft_select_arm a[] = { WEFT_SEL_RECV(sw.ch, &v), WEFT_SEL_CANCELLED(sw.tk),
						       WEFT_SEL_TICK(&iv) };
			rc = weft_select(a, 3, weft_now_ns() + 3600000000000ull);
			if (rc != 2)
				break;
		}
		weft_interval_cancel(&iv);
		break;
	}
	default: { void *r; rc = weft_joinset_join_next(sw.js, &r, NULL); break; }
	}
	(void)rc;
	atomic_fetch_add(&sw_returned, 1);
	return NULL;
}

struct sw_poll { struct weft_timer t; };
static enum weft_poll sw_poll_fn(void *state, struct weft_cx *cx)
{
	struct sw_poll *p = state;
	(void)weft_timer_poll(&p->t, cx, weft_now_ns() + 3600000000000ull);
	return WEFT_PENDING;
}
static void sw_poll_drop(void *state)
{
	struct sw_poll *p = state;
	weft_timer_cancel(&p->t);
	free(p);
	atomic_fetch_add(&sw_dropped, 1);
}

static void *sw_noise(void *arg)
{
	(void)arg;
	long v = 0;
	while (!atomic_load(&sw_stop)) {
		v++;
		weft_notify_all(sw.n);
		weft_watch_send(sw.w, &v);
		weft_broadcast_send(sw.b, &v);
		weft_cond_broadcast(sw.c);
		usleep(100);
	}
	return NULL;
}

#define SW_FIBERS 42
static void scenario_shutdown_waits(void)
{
	struct weft_runtime *rt = mk(2);
	long z = 0;
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(weft_chan_create(sizeof(long), 1, &sw.ch), 0);
	CHECK_EQ(weft_mutex_create(&sw.m), 0);
	CHECK_EQ(weft_sem_create(1, &sw.s), 0);
	CHECK_EQ(weft_cond_create(&sw.c), 0);
	CHECK_EQ(weft_mutex_create(&sw.cm), 0);
	CHECK_EQ(weft_notify_create(&sw.n), 0);
	CHECK_EQ(weft_watch_create(sizeof(long), &z, &sw.w), 0);
	CHECK_EQ(weft_broadcast_create(sizeof(long), 4, &sw.b), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_oneshot_create(NULL, &sw.o[i]), 0);
	CHECK_EQ(weft_waitgroup_create(&sw.wg), 0);
	CHECK_EQ(weft_waitgroup_add(sw.wg, 1), 0);
	CHECK_EQ(weft_token_create(NULL, &sw.tk), 0);
	CHECK_EQ(weft_io_register(rt, sv[0], &sw.io), 0);
	CHECK_EQ(weft_joinset_create(&sw.js), 0);
	CHECK_EQ(weft_joinset_spawn(sw.js, rt, sw_forever, NULL, NULL), 0);
	CHECK_EQ(weft_mutex_lock(sw.m), 0); /* held by this thread throughout */
	struct weft_task *t[SW_FIBERS];
	for (int i = 0; i < SW_FIBERS; i++)
		CHECK_EQ(weft_spawn(rt, sw_fiber, (void *)(intptr_t)i, &t[i]), 0);
	for (int i = 0; i < 10; i++) {
		struct sw_poll *p = calloc(1, sizeof *p);
		CHECK_EQ(weft_spawn_poll(rt, sw_poll_fn, p, sw_poll_drop, NULL), 0);
	}
	pthread_t noise;
	CHECK_EQ(pthread_create(&noise, NULL, sw_noise, NULL), 0);
	usleep(100000); /* most fibers reach their wait (slow under TSan) */
	int rc;
	while ((rc = weft_runtime_shutdown(rt, 2000000000ull)) == -ETIMEDOUT)
		;
	CHECK_EQ(rc, 0);
	atomic_store(&sw_stop, 1);
	pthread_join(noise, NULL);
	int started = 0;
	for (int i = 0; i < SW_FIBERS; i++) {
		int j = weft_join(t[i], NULL);
		/* -ECANCELED: never started (the shutdown came first) */
		CHECK(j == -EINTR || j == 0 || j == -ECANCELED, "join %d: %d", i, j);
		started += j != -ECANCELED;
	}
	CHECK_EQ(atomic_load(&sw_returned), started);
	CHECK_EQ(atomic_load(&sw_dropped), 10);
	CHECK_EQ(weft_mutex_unlock(sw.m), 0);
	CHECK_EQ(weft_io_close(sw.io), 0);
	close(sv[1]);
	weft_joinset_destroy(sw.js);
	rm_rt(rt);
	CHECK_EQ(weft_chan_destroy(sw.ch), 0);
	CHECK_EQ(weft_mutex_destroy(sw.m), 0);
	CHECK_EQ(weft_sem_destroy(sw.s), 0);
	CHECK_EQ(weft_cond_destroy(sw.c), 0);
	CHECK_EQ(weft_mutex_destroy(sw.cm), 0);
	CHECK_EQ(weft_notify_destroy(sw.n), 0);
	CHECK_EQ(weft_watch_destroy(sw.w), 0);
	CHECK_EQ(weft_broadcast_destroy(sw.b), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(weft_oneshot_receiver_drop(sw.o[i]), 0);
		CHECK_EQ(weft_oneshot_sender_drop(sw.o[i]), 0);
	}
	CHECK_EQ(weft_waitgroup_destroy(sw.wg), 0);
	CHECK_EQ(weft_token_destroy(sw.tk), 0);
}

/* ------------------------------------------------ cond, poll form */

/* Consumers that are poll tasks (weft_mutex_lock_poll, weft_cond_wait_poll:
 * the mutex taken in one poll, released in a later one, maybe on the
 * other worker), some aborted while they wait (their drop cancels the
 * entry: a signal they had goes to the next waiter), beside fiber and
 * thread consumers; producers signal per item: every item taken once. */
#define CP_ITEMS 4000
static struct weft_mutex *cp_m;
static struct weft_cond *cp_c;
static long cp_queue, cp_taken; /* under cp_m */
static int cp_done;             /* under cp_m */

struct cp_task { struct weft_wait w; int phase; long mine; };

static enum weft_poll cp_poll(void *state, struct weft_cx *cx)
{
	struct cp_task *t = state;
	for (;;) {
		int rc;
		if (t->phase == 0) {
			rc = weft_mutex_lock_poll(cp_m, &t->w, cx);
			if (rc == WEFT_PENDING)
				return WEFT_PENDING;
			CHECK_EQ(rc, 0);
			t->phase = 1;
		}
		/* phase 2: in the cond wait (the mutex released until it
		 * returns 0); phase 1: holding cp_m */
		while (t->phase == 2 || (cp_queue == 0 && !cp_done)) {
			t->phase = 2;
			rc = weft_cond_wait_poll(cp_c, cp_m, &t->w, cx);
			if (rc == WEFT_PENDING)
				return WEFT_PENDING;
			CHECK_EQ(rc, 0);
			t->phase = 1;
		}
		if (cp_queue == 0) {
			CHECK_EQ(weft_mutex_unlock(cp_m), 0);
			weft_cx_set_result(cx, (void *)(intptr_t)t->mine);
			return WEFT_READY;
		}
		cp_queue--;
		cp_taken++;
		t->mine++;
		CHECK_EQ(weft_mutex_unlock(cp_m), 0);
		t->phase = 0;
		if (t->mine % 8 == 0) { /* let others in: poll again later */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
	}
}

static void cp_drop(void *state)
{
	struct cp_task *t = state;
	weft_wait_cancel(&t->w); /* passes on a signal or the mutex */
}

static void *cp_consumer(void *arg)
{
	(void)arg;
	long mine = 0;
	CHECK_EQ(weft_mutex_lock(cp_m), 0);
	for (;;) {
		while (cp_queue == 0 && !cp_done)
			CHECK_EQ(weft_cond_wait(cp_c, cp_m), 0);
		if (cp_queue == 0)
			break;
		cp_queue--;
		cp_taken++;
		mine++;
	}
	CHECK_EQ(weft_mutex_unlock(cp_m), 0);
	return (void *)(intptr_t)mine;
}

static void *cp_producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < CP_ITEMS / 2; i++) {
		CHECK_EQ(weft_mutex_lock(cp_m), 0);
		cp_queue++;
		CHECK_EQ(weft_mutex_unlock(cp_m), 0);
		CHECK_EQ(weft_cond_signal(cp_c), 0);
	}
	return NULL;
}

static void scenario_cond_poll(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_mutex_create(&cp_m), 0);
	CHECK_EQ(weft_cond_create(&cp_c), 0);
	static struct cp_task pt[6];
	struct weft_task *t[6], *fc, *fp;
	pthread_t cth, pth;
	for (int i = 0; i < 6; i++) {
		pt[i] = (struct cp_task){ .w = WEFT_WAIT_INIT };
		CHECK_EQ(weft_spawn_poll(rt, cp_poll, &pt[i], cp_drop, &t[i]), 0);
	}
	CHECK_EQ(weft_spawn(rt, cp_consumer, NULL, &fc), 0);
	CHECK_EQ(pthread_create(&cth, NULL, cp_consumer, NULL), 0);
	CHECK_EQ(weft_spawn(rt, cp_producer, NULL, &fp), 0);
	CHECK_EQ(pthread_create(&pth, NULL, cp_producer, NULL), 0);
	usleep(3000);
	for (int i = 4; i < 6; i++) /* two poll consumers aborted mid-stream */
		CHECK_EQ(weft_abort(t[i]), 0);
	CHECK_EQ(weft_join(fp, NULL), 0);
	pthread_join(pth, NULL);
	CHECK_EQ(weft_mutex_lock(cp_m), 0);
	cp_done = 1;
	CHECK_EQ(weft_mutex_unlock(cp_m), 0);
	CHECK_EQ(weft_cond_broadcast(cp_c), 0);
	for (int i = 0; i < 6; i++) {
		void *r;
		int rc = weft_join(t[i], &r);
		CHECK(rc == 0 || (i >= 4 && rc == -ECANCELED), "poll consumer %d: %d", i, rc);
	}
	CHECK_EQ(weft_join(fc, NULL), 0);
	pthread_join(cth, NULL);
	CHECK_EQ(cp_taken, CP_ITEMS);
	CHECK_EQ(cp_queue, 0);
	CHECK_EQ(weft_mutex_try_lock(cp_m), 0);
	CHECK_EQ(weft_mutex_unlock(cp_m), 0);
	CHECK_EQ(weft_cond_destroy(cp_c), 0);
	CHECK_EQ(weft_mutex_destroy(cp_m), 0);
	rm_rt(rt);
}

/* ------------------------------------------- process: kill beside wait */

/* Children waited for by fibers and threads (process_wait, the poll form
 * in a poll task) while other fibers and threads check them
 * (kill sig 0) and then kill them: each wait returns the kill's status,
 * and kill says 0 before the reap, -ESRCH after. */
#define PK_N 8
struct pk_job { struct weft_process p; atomic_int waiting, reaped; int status, rc; };
static struct pk_job pk[PK_N];

static void *pk_wait(void *arg)
{
	struct pk_job *j = arg;
	atomic_store(&j->waiting, 1);
	j->rc = weft_process_wait(&j->p, &j->status, WEFT_FOREVER);
	atomic_store(&j->reaped, 1);
	return NULL;
}

static enum weft_poll pk_poll(void *state, struct weft_cx *cx)
{
	struct pk_job *j = state;
	atomic_store(&j->waiting, 1);
	int rc = weft_process_wait_poll(&j->p, cx, &j->status);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	j->rc = rc;
	atomic_store(&j->reaped, 1);
	return WEFT_READY;
}

static void *pk_kill(void *arg)
{
	struct pk_job *j = arg;
	while (!atomic_load(&j->waiting))
		weft_in_fiber() ? (void)weft_yield() : (void)sched_yield();
	for (int i = 0; i < 20; i++) {
		int rc = weft_process_kill(&j->p, 0);
		CHECK(rc == 0 || rc == -ESRCH, "kill 0: %d", rc); /* -ESRCH: reaped by now */
	}
	CHECK_EQ(weft_process_kill(&j->p, SIGTERM), 0);
	while (!atomic_load(&j->reaped))
		weft_in_fiber() ? (void)weft_sleep_ns(100000) : (void)usleep(100);
	CHECK_EQ(weft_process_kill(&j->p, 0), -ESRCH);
	return NULL;
}

static void scenario_process_kill(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_task *w[PK_N], *k[PK_N];
	pthread_t wt[PK_N], kt[PK_N];
	for (int i = 0; i < PK_N; i++) {
		char *argv[] = { "sleep", "10", NULL };
		CHECK_EQ(weft_process_spawn(rt, "sleep", argv, NULL, &pk[i].p), 0);
		if (i % 3 == 0)
			CHECK_EQ(pthread_create(&wt[i], NULL, pk_wait, &pk[i]), 0);
		else if (i % 3 == 1)
			CHECK_EQ(weft_spawn(rt, pk_wait, &pk[i], &w[i]), 0);
		else
			CHECK_EQ(weft_spawn_poll(rt, pk_poll, &pk[i], NULL, &w[i]), 0);
		if (i % 2)
			CHECK_EQ(pthread_create(&kt[i], NULL, pk_kill, &pk[i]), 0);
		else
			CHECK_EQ(weft_spawn(rt, pk_kill, &pk[i], &k[i]), 0);
	}
	for (int i = 0; i < PK_N; i++) {
		if (i % 3 == 0)
			pthread_join(wt[i], NULL);
		else
			CHECK_EQ(weft_join(w[i], NULL), 0);
		if (i % 2)
			pthread_join(kt[i], NULL);
		else
			CHECK_EQ(weft_join(k[i], NULL), 0);
		CHECK_EQ(pk[i].rc, 0);
		CHECK(WIFSIGNALED(pk[i].status) && WTERMSIG(pk[i].status) == SIGTERM,
		      "status %x", pk[i].status);
		CHECK(pk[i].p.child == NULL, "child registration left");
		CHECK_EQ(weft_process_close(&pk[i].p), 0);
	}
	rm_rt(rt);
}

/* ---------------------------------------- two waits for one process */

/* Two waits at once on each child (a thread and a fiber, or two fibers,
 * or a fiber and a poll task), and a weft_process_close beside a wait on
 * others: one wait reaps, the other says -ECHILD; a close ends a wait with
 * -EBADF. The waits read p->child while the reaper clears it (io.h). */
#define PW_N 12
struct pw2 { struct weft_process *p; int rc, status; };
static struct weft_process pw_p[PW_N];
static struct pw2 pw_w[PW_N][2];

static void *pw2_wait(void *arg)
{
	struct pw2 *w = arg;
	w->rc = weft_process_wait(w->p, &w->status, WEFT_FOREVER);
	return NULL;
}

static enum weft_poll pw2_poll(void *arg, struct weft_cx *cx)
{
	struct pw2 *w = arg;
	int rc = weft_process_wait_poll(w->p, cx, &w->status);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	w->rc = rc;
	return WEFT_READY;
}

static void scenario_process_waits(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t th[PW_N];
	struct weft_task *t[PW_N][2];
	pid_t pid[PW_N];
	for (int i = 0; i < PW_N; i++) {
		char *argv[] = { "sleep", "10", NULL };
		CHECK_EQ(weft_process_spawn(rt, "sleep", argv, NULL, &pw_p[i]), 0);
		pid[i] = pw_p[i].pid;
		for (int k = 0; k < 2; k++)
			pw_w[i][k] = (struct pw2){ .p = &pw_p[i] };
		if (i % 3 == 0)
			CHECK_EQ(pthread_create(&th[i], NULL, pw2_wait, &pw_w[i][0]), 0);
		else
			CHECK_EQ(weft_spawn(rt, pw2_wait, &pw_w[i][0], &t[i][0]), 0);
		if (i % 3 == 2)
			CHECK_EQ(weft_spawn_poll(rt, pw2_poll, &pw_w[i][1], NULL, &t[i][1]), 0);
		else
			CHECK_EQ(weft_spawn(rt, pw2_wait, &pw_w[i][1], &t[i][1]), 0);
	}
	usleep(20000);
	for (int i = 0; i < PW_N; i++) {
		if (i % 4 == 3 && i % 3 != 2) /* closed under its (blocking) waits */
			CHECK_EQ(weft_process_close(&pw_p[i]), 0);
		else
			CHECK_EQ(weft_process_kill(&pw_p[i], SIGKILL), 0);
	}
	for (int i = 0; i < PW_N; i++) {
		if (i % 3 == 0)
			pthread_join(th[i], NULL);
		else
			CHECK_EQ(weft_join(t[i][0], NULL), 0);
		CHECK_EQ(weft_join(t[i][1], NULL), 0);
		int a = pw_w[i][0].rc, b = pw_w[i][1].rc;
		if (i % 4 == 3 && i % 3 != 2) {
			/* -ECHILD: a wait that began after the close */
			CHECK((a == -EBADF || a == -ECHILD) && (b == -EBADF || b == -ECHILD),
			      "closed: %d %d", a, b);
			CHECK_EQ(kill(pid[i], SIGKILL), 0);
			CHECK_EQ(waitpid(pid[i], NULL, 0), pid[i]);
		} else {
			CHECK((a == 0 && b == -ECHILD) || (a == -ECHILD && b == 0), "%d %d", a, b);
		}
		CHECK_EQ(weft_process_close(&pw_p[i]), 0);
	}
	rm_rt(rt);
}

/* ------------------------------------------------ kill beside close */

/* Threads send signal 0 to their child in a loop while the main thread
 * closes it: the close waits for a kill in flight before it closes the
 * kill descriptor (lib/io/process.c, KILL_FD_BITS); the kills then say
 * -EBADF. */
#define KC_N 8
struct kc2 { struct weft_process p; atomic_int started; int last; };
static struct kc2 kc_s[KC_N];

static void *kc2_kill(void *arg)
{
	struct kc2 *k = arg;
	atomic_store(&k->started, 1);
	while ((k->last = weft_process_kill(&k->p, 0)) == 0)
		;
	return NULL;
}

static void scenario_process_kill_close(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t th[KC_N];
	for (int i = 0; i < KC_N; i++) {
		char *argv[] = { "sleep", "10", NULL };
		CHECK_EQ(weft_process_spawn(rt, "sleep", argv, NULL, &kc_s[i].p), 0);
		atomic_store(&kc_s[i].started, 0);
		CHECK_EQ(pthread_create(&th[i], NULL, kc2_kill, &kc_s[i]), 0);
	}
	for (int i = 0; i < KC_N; i++) {
		while (!atomic_load(&kc_s[i].started))
			usleep(100);
		pid_t pid = kc_s[i].p.pid;
		CHECK_EQ(weft_process_close(&kc_s[i].p), 0);
		pthread_join(th[i], NULL);
		CHECK_EQ(kc_s[i].last, -EBADF);
		CHECK_EQ(kill(pid, SIGKILL), 0);
		CHECK_EQ(waitpid(pid, NULL, 0), pid);
	}
	rm_rt(rt);
}

/* ---------------------------------- an interval reset from another thread */

/* A poll task waits on an interval 100 s away; the main thread resets it
 * to 1 ms (time.h: the waiting task is woken and waits for the new
 * deadline). The reset takes the timer's waker while the wheel's shard
 * may be firing others. */
#define IR_N 16
struct ir { struct weft_interval iv; atomic_int armed; int ticked; };
static struct ir ir_s[IR_N];

static enum weft_poll ir_poll(void *arg, struct weft_cx *cx)
{
	struct ir *s = arg;
	if (weft_interval_poll_tick(&s->iv, cx) == WEFT_PENDING) {
		atomic_store(&s->armed, 1);
		return WEFT_PENDING;
	}
	s->ticked = 1;
	weft_interval_cancel(&s->iv);
	return WEFT_READY;
}

static void scenario_interval_reset(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_task *t[IR_N];
	for (int i = 0; i < IR_N; i++) {
		atomic_store(&ir_s[i].armed, 0);
		ir_s[i].ticked = 0;
		CHECK_EQ(weft_interval_init(&ir_s[i].iv, 100ull * 1000000000ull), 0);
		CHECK_EQ(weft_spawn_poll(rt, ir_poll, &ir_s[i], NULL, &t[i]), 0);
	}
	for (int i = 0; i < IR_N; i++) {
		while (!atomic_load(&ir_s[i].armed))
			usleep(100);
		CHECK_EQ(weft_interval_reset(&ir_s[i].iv, 1000000), 0);
	}
	for (int i = 0; i < IR_N; i++) {
		CHECK_EQ(weft_join(t[i], NULL), 0);
		CHECK_EQ(ir_s[i].ticked, 1);
	}
	rm_rt(rt);
}

/* ------------------------------------------- shutdown discarding fibers */

/* Fibers that ignore cancellation (they keep yielding), each with
 * fiber-local values it writes at every turn, outlive the shutdown's time
 * limit: the workers stop with them suspended and the shutdown's sweep
 * discards them on the calling thread, running their locals' destructors
 * there - which read what the fibers wrote on the workers. */
#define SDI_N 24
static atomic_int sdi_dtors, sdi_bad;

struct sdi_val { long turns; long check; };

static void sdi_dtor(void *v)
{
	struct sdi_val *x = v;
	if (x->check != x->turns * 7)
		atomic_fetch_add(&sdi_bad, 1);
	free(x);
	atomic_fetch_add(&sdi_dtors, 1);
}

static const struct weft_local_key sdi_key = { .dtor = sdi_dtor };

static void *sdi_fiber(void *arg)
{
	(void)arg;
	struct sdi_val *x = calloc(1, sizeof *x);
	CHECK_EQ(weft_local_set(&sdi_key, x), 0);
	for (;;) {
		x->turns++;
		x->check = x->turns * 7;
		weft_yield(); /* -ECANCELED ignored */
	}
	return NULL;
}

static void scenario_shutdown_discard(void)
{
	for (int round = 0; round < 4; round++) {
		struct weft_runtime *rt = mk(2);
		struct weft_task *t[SDI_N];
		for (int i = 0; i < SDI_N; i++)
			CHECK_EQ(weft_spawn(rt, sdi_fiber, NULL, &t[i]), 0);
		usleep(20000);
		int rc;
		while ((rc = weft_runtime_shutdown(rt, 5000000)) == -ETIMEDOUT)
			;
		CHECK_EQ(rc, 0);
		for (int i = 0; i < SDI_N; i++) {
			int j = weft_join(t[i], NULL);
			CHECK(j == -EINTR || j == -ECANCELED, "join %d", j);
		}
		rm_rt(rt);
	}
	CHECK_EQ(atomic_load(&sdi_bad), 0);
	CHECK(atomic_load(&sdi_dtors) > 0, "no fiber discarded");
}

/* ------------------------------------- readers and writers closed under */

/* Buffered readers (fibers, a thread, a poll task on weft_reader_until_poll)
 * and buffered writers (fibers, a thread) on socket pairs whose
 * registrations another thread closes mid-stream: every reader and writer
 * ends (-EBADF, -EPIPE, end of stream) and lines arrive whole. */
#define CR_PAIRS 4
struct cr_pair {
	struct weft_io *rio, *wio;
	atomic_long got;
	atomic_int ended;
};
static struct cr_pair cr[CR_PAIRS];

static void *cr_read(void *arg)
{
	struct cr_pair *p = arg;
	struct weft_reader *r;
	CHECK_EQ(weft_reader_create(p->rio, 64, &r), 0);
	for (;;) {
		const char *line;
		ssize_t n = weft_reader_until(r, '\n', &line);
		if (n <= 0) {
			CHECK(n == 0 || n == -EBADF || n == -ECONNRESET, "reader %zd", n);
			break;
		}
		CHECK(n == 8 && line[7] == '\n', "line %zd", n);
		atomic_fetch_add(&p->got, n);
	}
	weft_reader_destroy(r);
	atomic_fetch_add(&p->ended, 1);
	return NULL;
}

static void *cr_write(void *arg)
{
	struct cr_pair *p = arg;
	struct weft_writer *w;
	CHECK_EQ(weft_writer_create(p->wio, 100, &w), 0);
	for (int i = 0;; i++) {
		ssize_t n = weft_writer_printf(w, "%07d\n", i % 10000000);
		if (n < 0)
			break;
		CHECK_EQ(n, 8);
		if (i % 5 == 4 && weft_writer_flush(w))
			break;
		if (i % 50 == 0)
			weft_in_fiber() ? (void)weft_yield() : (void)usleep(50);
	}
	weft_writer_destroy(w);
	atomic_fetch_add(&p->ended, 1);
	return NULL;
}

static void scenario_close_rw(void)
{
	struct weft_runtime *rt = mk(2);
	for (int round = 0; round < 4; round++) {
		struct weft_task *t[2 * CR_PAIRS];
		pthread_t th[2 * CR_PAIRS];
		bool is_th[2 * CR_PAIRS];
		for (int i = 0; i < CR_PAIRS; i++) {
			int sv[2];
			CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			cr[i] = (struct cr_pair){ .got = 0 };
			CHECK_EQ(weft_io_register(rt, sv[0], &cr[i].rio), 0);
			CHECK_EQ(weft_io_register(rt, sv[1], &cr[i].wio), 0);
			is_th[2 * i] = (i + round) % 3 == 0;
			is_th[2 * i + 1] = (i + round) % 3 == 1;
			if (is_th[2 * i])
				CHECK_EQ(pthread_create(&th[2 * i], NULL, cr_read, &cr[i]), 0);
			else
				CHECK_EQ(weft_spawn(rt, cr_read, &cr[i], &t[2 * i]), 0);
			if (is_th[2 * i + 1])
				CHECK_EQ(pthread_create(&th[2 * i + 1], NULL, cr_write, &cr[i]), 0);
			else
				CHECK_EQ(weft_spawn(rt, cr_write, &cr[i], &t[2 * i + 1]), 0);
		}
		usleep(10000 + (useconds_t)round * 5000);
		for (int i = 0; i < CR_PAIRS; i++) {
			/* the writer's end first (its reader sees the end of the
			 * stream or the close), or the reader's (its writer
			 * gets -EPIPE or -EBADF) */
			if ((i + round) % 2) {
				CHECK_EQ(weft_io_close(cr[i].wio), 0);
				CHECK_EQ(weft_io_close(cr[i].rio), 0);
			} else {
				CHECK_EQ(weft_io_close(cr[i].rio), 0);
				CHECK_EQ(weft_io_close(cr[i].wio), 0);
			}
		}
		for (int k = 0; k < 2 * CR_PAIRS; k++) {
			if (is_th[k])
				pthread_join(th[k], NULL);
			else
				CHECK_EQ(weft_join(t[k], NULL), 0);
		}
		for (int i = 0; i < CR_PAIRS; i++) {
			CHECK_EQ(atomic_load(&cr[i].ended), 2);
			CHECK(atomic_load(&cr[i].got) % 8 == 0, "partial line");
		}
	}
	rm_rt(rt);
}

/* ----------------------------------------------- many runtimes at once */

/* Twenty threads each create a runtime (more than the probe registry's 16
 * slots: the rest queue for a free one), run fibers with timers and a
 * cross-runtime wake (a channel shared by all), then destroy it, twice
 * over: every runtime's work completes, the shared channel carries every
 * item once. */
#define MR_THREADS 20
static struct weft_chan *mr_ch;
static atomic_long mr_sum;

static void *mr_fiber(void *arg)
{
	long v = (long)(intptr_t)arg;
	CHECK_EQ(weft_sleep_ns(50000), 0);
	CHECK_EQ(weft_chan_send(mr_ch, &v), 0);
	long got;
	CHECK_EQ(weft_chan_recv(mr_ch, &got), 0); /* maybe another runtime's */
	atomic_fetch_add(&mr_sum, got);
	return NULL;
}

static void *mr_thread(void *arg)
{
	long base = (long)(intptr_t)arg;
	for (int r = 0; r < 2; r++) {
		struct weft_runtime *rt = mk(1);
		struct weft_task *t[4];
		for (int i = 0; i < 4; i++)
			CHECK_EQ(weft_spawn(rt, mr_fiber, (void *)(intptr_t)(base + r * 4 + i), &t[i]), 0);
		for (int i = 0; i < 4; i++)
			CHECK_EQ(weft_join(t[i], NULL), 0);
		struct weft_metrics *m;
		CHECK_EQ(weft_runtime_metrics(rt, &m), 0);
		CHECK_EQ(m->workers, 1);
		weft_metrics_free(m);
		rm_rt(rt);
	}
	return NULL;
}

static void scenario_many_runtimes(void)
{
	CHECK_EQ(weft_chan_create(sizeof(long), 8, &mr_ch), 0);
	pthread_t th[MR_THREADS];
	long want = 0;
	for (int i = 0; i < MR_THREADS; i++) {
		CHECK_EQ(pthread_create(&th[i], NULL, mr_thread, (void *)(intptr_t)(i * 100)), 0);
		for (int k = 0; k < 8; k++)
			want += i * 100 + k;
	}
	for (int i = 0; i < MR_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&mr_sum), want);
	CHECK_EQ(weft_chan_destroy(mr_ch), 0);
}

/* ------------------------------------------- concurrent shutdowns */

/* Three threads shut the runtime down at once, with short time limits,
 * while fibers sleep and yield, a thread inside weft_block_on keeps
 * spawning and joining until it is refused, and another thread keeps
 * sending wakes to a fiber's channel: every shutdown call ends with 0,
 * every fiber's join says how it ended. */
static struct weft_chan *sc_ch;
static atomic_int sc_refused;

static void *sc_fiber(void *arg)
{
	(void)arg;
	for (;;) {
		long v;
		int rc = weft_chan_recv_timeout(sc_ch, &v, 200000);
		if (rc == -ECANCELED || rc == -EPIPE)
			return NULL;
		if (weft_yield() == -ECANCELED)
			return NULL;
	}
}

static void *sc_leaf(void *arg) { return arg; }

static void *sc_block_body(void *arg)
{
	struct weft_runtime *rt = arg;
	for (;;) {
		struct weft_task *t;
		int rc = weft_spawn(rt, sc_leaf, NULL, &t);
		if (rc == -ESHUTDOWN) {
			atomic_store(&sc_refused, 1);
			return NULL;
		}
		CHECK_EQ(rc, 0);
		rc = weft_join(t, NULL);
		CHECK(rc == 0 || rc == -ECANCELED || rc == -EINTR || rc == -ESHUTDOWN, "join %d", rc);
	}
}

static void *sc_block_on(void *arg)
{
	struct weft_runtime *rt = arg;
	int rc = weft_block_on(rt, sc_block_body, rt, NULL);
	CHECK(rc == 0 || rc == -ESHUTDOWN, "block_on %d", rc);
	if (rc == -ESHUTDOWN)
		atomic_store(&sc_refused, 1);
	return NULL;
}

static void *sc_shutdown(void *arg)
{
	struct weft_runtime *rt = arg;
	int rc;
	while ((rc = weft_runtime_shutdown(rt, 300000)) == -ETIMEDOUT)
		;
	CHECK_EQ(rc, 0);
	return NULL;
}

static void *sc_sender(void *arg)
{
	(void)arg;
	long v = 0;
	while (weft_chan_send_timeout(sc_ch, &v, 1000000) != -EPIPE)
		v++;
	return NULL;
}

static void scenario_shutdown_concurrent(void)
{
	for (int round = 0; round < 5; round++) {
		struct weft_runtime *rt = mk(2);
		atomic_store(&sc_refused, 0);
		CHECK_EQ(weft_chan_create(sizeof(long), 2, &sc_ch), 0);
		struct weft_task *f[8];
		for (int i = 0; i < 8; i++)
			CHECK_EQ(weft_spawn(rt, sc_fiber, NULL, &f[i]), 0);
		pthread_t bo, snd, sd[3];
		CHECK_EQ(pthread_create(&bo, NULL, sc_block_on, rt), 0);
		CHECK_EQ(pthread_create(&snd, NULL, sc_sender, NULL), 0);
		usleep(10000 + (useconds_t)round * 3000);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(pthread_create(&sd[i], NULL, sc_shutdown, rt), 0);
		for (int i = 0; i < 3; i++)
			pthread_join(sd[i], NULL);
		pthread_join(bo, NULL);
		CHECK_EQ(atomic_load(&sc_refused), 1);
		for (int i = 0; i < 8; i++) {
			int j = weft_join(f[i], NULL);
			CHECK(j == -EINTR || j == -ECANCELED || j == 0, "fiber join %d", j);
		}
		CHECK_EQ(weft_chan_close(sc_ch), 0);
		pthread_join(snd, NULL);
		rm_rt(rt);
		CHECK_EQ(weft_chan_destroy(sc_ch), 0);
	}
}

/* ----------------------------------------- fiber stacks of many sizes */

/* Bursts of fibers with their own stack sizes (each size class a pool
 * shared by the workers), spawned from fibers and threads, each writing
 * over much of its stack, with pauses between bursts in which idle
 * workers trim the pools, while a thread takes metrics (which walks the
 * pools' slabs): every fiber's stack holds what it wrote. */
static atomic_int st_stop, st_bad;
static atomic_long st_done;

static void *st_fiber(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	unsigned char *buf = __builtin_alloca(n);
	memset(buf, (int)(n & 0xff), n);
	weft_yield();
	for (size_t i = 0; i < n; i += 512)
		if (buf[i] != (unsigned char)(n & 0xff))
			atomic_fetch_add(&st_bad, 1);
	atomic_fetch_add(&st_done, 1);
	return NULL;
}

static void *st_spawner(void *arg)
{
	struct weft_runtime *rt = arg;
	for (int burst = 0; burst < 6; burst++) {
		struct weft_task *t[40];
		for (int i = 0; i < 40; i++) {
			size_t ss = (size_t)16384 << (i % 5); /* 16 KiB .. 256 KiB */
			WEFT_OPTS(weft_spawn_opts, o, .stack_size = ss);
			CHECK_EQ(weft_spawn_with(rt, st_fiber, (void *)(uintptr_t)(ss / 2), &o, &t[i]), 0);
		}
		for (int i = 0; i < 40; i++)
			CHECK_EQ(weft_join(t[i], NULL), 0);
		if (weft_in_fiber())
			weft_sleep_ns(3000000);
		else
			usleep(3000);
	}
	return NULL;
}

static void *st_metrics(void *arg)
{
	struct weft_runtime *rt = arg;
	while (!atomic_load(&st_stop)) {
		/* one snapshot is not atomic (a slab made between its reads of
		 * reserved and resident counts in resident only), but slabs are
		 * never given back while the runtime lives: what was resident
		 * then is within what is reserved at the next snapshot */
		struct weft_metrics *m, *m2;
		CHECK_EQ(weft_runtime_metrics(rt, &m), 0);
		CHECK_EQ(weft_runtime_metrics(rt, &m2), 0);
		CHECK(m->fiber_stack_bytes_resident <= m2->fiber_stack_bytes_reserved, "resident");
		CHECK(m->fiber_stack_bytes_reserved <= m2->fiber_stack_bytes_reserved, "reserved");
		weft_metrics_free(m);
		weft_metrics_free(m2);
		usleep(200);
	}
	return NULL;
}

static void scenario_stacks(void)
{
	struct weft_runtime *rt = mk(2);
	pthread_t sp[2], mt;
	struct weft_task *f;
	CHECK_EQ(pthread_create(&mt, NULL, st_metrics, rt), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&sp[i], NULL, st_spawner, rt), 0);
	CHECK_EQ(weft_spawn(rt, st_spawner, rt, &f), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(sp[i], NULL);
	CHECK_EQ(weft_join(f, NULL), 0);
	atomic_store(&st_stop, 1);
	pthread_join(mt, NULL);
	CHECK_EQ(atomic_load(&st_done), 3 * 6 * 40);
	CHECK_EQ(atomic_load(&st_bad), 0);
	rm_rt(rt);
}

/* ----------------------------------- timers armed by threads, not tasks */

/* Threads inside weft_block_on and fibers' weft_block_in_place fns (their
 * timers go to the driver's own wheel, shared by every such thread) select
 * on intervals and a channel with deadlines, while fibers tick intervals
 * on the workers' wheels and a thread feeds the channel: no tick or
 * deadline comes early, every item is received once. */
#define TT2_ITEMS 300
static struct weft_chan *tt2_ch;
static atomic_int tt2_got, tt2_stop;

static void *tt2_body(void *arg)
{
	(void)arg;
	struct weft_interval iv;
	uint64_t t0 = weft_now_ns(); /* before the interval's own clock read */
	CHECK_EQ(weft_interval_init(&iv, 400000), 0);
	int ticks = 0;
	while (!atomic_load(&tt2_stop)) {
		long v;
		struct weft_select_arm a[] = { WEFT_SEL_RECV(tt2_ch, &v), WEFT_SEL_TICK(&iv) };
		uint64_t before = weft_now_ns();
		int r = weft_select_timeout(a, 2, 700000);
		if (r == -ETIMEDOUT) {
			CHECK(weft_now_ns() - before >= 700000, "timeout early");
			continue;
		}
		CHECK(r == 0 || r == 1, "select %d", r);
		if (r == 0) {
			CHECK_EQ(a[0].rc, 0);
			atomic_fetch_add(&tt2_got, 1);
		} else {
			ticks++;
			uint64_t el = weft_now_ns() - t0;
			CHECK(el >= (uint64_t)ticks * 400000, "tick %d early: %llu ns", ticks,
			      (unsigned long long)el);
		}
	}
	weft_interval_cancel(&iv);
	return NULL;
}

static void *tt2_block_on(void *arg)
{
	CHECK_EQ(weft_block_on(arg, tt2_body, NULL, NULL), 0);
	return NULL;
}

static void *tt2_in_place(void *arg)
{
	(void)arg;
	CHECK_EQ(weft_block_in_place(tt2_body, NULL, NULL), 0);
	return NULL;
}

static void *tt2_fiber_ticks(void *arg)
{
	(void)arg;
	struct weft_interval iv;
	CHECK_EQ(weft_interval_init(&iv, 300000), 0);
	while (!atomic_load(&tt2_stop))
		CHECK_EQ(weft_interval_tick(&iv), 0);
	weft_interval_cancel(&iv);
	return NULL;
}

static void scenario_thread_timers(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_chan_create(sizeof(long), 2, &tt2_ch), 0);
	pthread_t bo[2];
	struct weft_task *ip[2], *fk[2];
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(pthread_create(&bo[i], NULL, tt2_block_on, rt), 0);
		CHECK_EQ(weft_spawn(rt, tt2_in_place, NULL, &ip[i]), 0);
		CHECK_EQ(weft_spawn(rt, tt2_fiber_ticks, NULL, &fk[i]), 0);
	}
	for (long i = 0; i < TT2_ITEMS; i++) {
		CHECK_EQ(weft_chan_send(tt2_ch, &i), 0);
		if (i % 10 == 0)
			usleep(300);
	}
	for (int k = 0; k < 20000 && atomic_load(&tt2_got) < TT2_ITEMS; k++)
		usleep(100);
	atomic_store(&tt2_stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(bo[i], NULL);
		CHECK_EQ(weft_join(ip[i], NULL), 0);
		CHECK_EQ(weft_join(fk[i], NULL), 0);
	}
	CHECK_EQ(atomic_load(&tt2_got), TT2_ITEMS);
	CHECK_EQ(weft_chan_destroy(tt2_ch), 0);
	rm_rt(rt);
}

/* --------------------------------------------------- TCP by host name */

/* A listener on 127.0.0.1 accepting in a fiber (each connection echoed by
 * its own fiber), clients that connect by name ("localhost": resolved on
 * the blocking pool from a fiber, on the calling thread from a thread),
 * some with time limits, and weft_resolve beside them: every client gets
 * its bytes back. */
#define TC2_CLIENTS 8
static int tc2_port;

static void *tc2_echo(void *arg)
{
	struct weft_io *c = arg;
	char buf[256];
	ssize_t r;
	while ((r = weft_read(c, buf, sizeof buf)) > 0)
		CHECK_EQ(weft_write(c, buf, (size_t)r), r);
	CHECK_EQ(weft_io_close(c), 0);
	return NULL;
}

static void *tc2_server(void *arg)
{
	struct weft_io *l = arg;
	struct weft_task *t[TC2_CLIENTS];
	for (int i = 0; i < TC2_CLIENTS; i++) {
		struct weft_io *c;
		CHECK_EQ(weft_accept(l, &c, NULL, NULL), 0);
		CHECK_EQ(weft_spawn(weft_runtime_current(), tc2_echo, c, &t[i]), 0);
	}
	for (int i = 0; i < TC2_CLIENTS; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	return NULL;
}

static void *tc2_client(void *arg)
{
	struct weft_runtime *rt = arg;
	static atomic_int n;
	int me = atomic_fetch_add(&n, 1);
	struct weft_io *c;
	int rc = me % 2 ? weft_tcp_connect(rt, "localhost", (uint16_t)tc2_port, &c)
			: weft_tcp_connect_timeout(rt, "127.0.0.1", (uint16_t)tc2_port, &c, 5000000000ull);
	CHECK_EQ(rc, 0);
	char msg[64], back[64];
	int len = snprintf(msg, sizeof msg, "client %d says hello", me);
	for (int k = 0; k < 20; k++) {
		CHECK_EQ(weft_write(c, msg, (size_t)len), len);
		size_t got = 0;
		while (got < (size_t)len) {
			ssize_t r = weft_read(c, back + got, (size_t)len - got);
			CHECK(r > 0, "read %zd", r);
			got += (size_t)r;
		}
		CHECK(!memcmp(msg, back, (size_t)len), "echo");
	}
	struct addrinfo *res;
	CHECK_EQ(weft_resolve(rt, "localhost", (uint16_t)tc2_port, &res), 0);
	freeaddrinfo(res);
	CHECK_EQ(weft_io_close(c), 0);
	return NULL;
}

static void scenario_tcp(void)
{
	struct weft_runtime *rt = mk(2);
	struct weft_io *l;
	CHECK_EQ(weft_tcp_listen(rt, "127.0.0.1", 0, 0, &l), 0);
	tc2_port = weft_io_local_port(l);
	CHECK(tc2_port > 0, "port");
	struct weft_task *srv, *cf[TC2_CLIENTS / 2];
	pthread_t ct[TC2_CLIENTS / 2];
	CHECK_EQ(weft_spawn(rt, tc2_server, l, &srv), 0);
	for (int i = 0; i < TC2_CLIENTS / 2; i++) {
		CHECK_EQ(weft_spawn(rt, tc2_client, rt, &cf[i]), 0);
		CHECK_EQ(pthread_create(&ct[i], NULL, tc2_client, rt), 0);
	}
	for (int i = 0; i < TC2_CLIENTS / 2; i++) {
		CHECK_EQ(weft_join(cf[i], NULL), 0);
		pthread_join(ct[i], NULL);
	}
	CHECK_EQ(weft_join(srv, NULL), 0);
	CHECK_EQ(weft_io_close(l), 0);
	rm_rt(rt);
}

/* ------------------------------------------------ select on join handles */

/* Fibers and threads select on a task's join handle beside a channel that
 * usually wins (the losing JOIN arm leaves its waker on the handle), and
 * the handle is joined later by another thread or by a second select; the
 * tasks complete meanwhile, waking the stale wakers of selects long
 * returned: every task joined once, every item received once. */
#define SJ_N 300
static struct weft_chan *sj_ch;
static struct weft_task *sj_t[SJ_N];
static atomic_int sj_joined[SJ_N], sj_items;

static void *sj_task(void *arg)
{
	if ((intptr_t)arg % 3 == 0)
		weft_sleep_ns(100000);
	else
		weft_yield();
	return arg;
}

static void *sj_selector(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = me; i < SJ_N; i += 3) {
		long v;
		void *res;
		struct weft_select_arm a[] = { WEFT_SEL_RECV(sj_ch, &v), WEFT_SEL_JOINED(sj_t[i], &res) };
		int r = weft_select(a, 2, WEFT_FOREVER);
		CHECK(r == 0 || r == 1, "select %d", r);
		if (r == 0) {
			CHECK_EQ(a[0].rc, 0);
			atomic_fetch_add(&sj_items, 1);
			if (i % 2 == 0) /* this select joins the handle after all */
				CHECK_EQ(weft_join(sj_t[i], &res), 0);
			else
				continue; /* left for the main thread */
		} else
			CHECK_EQ(a[1].rc, 0);
		CHECK_EQ((intptr_t)res, i);
		CHECK_EQ(atomic_fetch_add(&sj_joined[i], 1), 0);
	}
	return NULL;
}

static void scenario_select_join(void)
{
	struct weft_runtime *rt = mk(2);
	/* room for every item: a select the join wins takes none */
	CHECK_EQ(weft_chan_create(sizeof(long), SJ_N, &sj_ch), 0);
	for (intptr_t i = 0; i < SJ_N; i++)
		CHECK_EQ(weft_spawn(rt, sj_task, (void *)i, &sj_t[i]), 0);
	struct weft_task *s[2];
	pthread_t th;
	for (int k = 0; k < 2; k++)
		CHECK_EQ(weft_spawn(rt, sj_selector, (void *)(intptr_t)k, &s[k]), 0);
	CHECK_EQ(pthread_create(&th, NULL, sj_selector, (void *)2), 0);
	for (long v = 0; v < SJ_N; v++) {
		CHECK_EQ(weft_chan_send(sj_ch, &v), 0);
		if (v % 8 == 0)
			usleep(300); /* the channel runs dry: joins win some selects */
	}
	for (int k = 0; k < 2; k++)
		CHECK_EQ(weft_join(s[k], NULL), 0);
	pthread_join(th, NULL);
	for (int i = 0; i < SJ_N; i++)
		if (!atomic_load(&sj_joined[i])) {
			void *res;
			CHECK_EQ(weft_join(sj_t[i], &res), 0);
			CHECK_EQ((intptr_t)res, i);
			atomic_fetch_add(&sj_joined[i], 1);
		}
	for (int i = 0; i < SJ_N; i++)
		CHECK_EQ(atomic_load(&sj_joined[i]), 1);
	long v;
	int left = 0;
	while (weft_chan_try_recv(sj_ch, &v) == 0)
		left++;
	CHECK_EQ(atomic_load(&sj_items) + left, SJ_N);
	CHECK_EQ(weft_chan_destroy(sj_ch), 0);
	rm_rt(rt);
}

/* ------------------------------------------ copiers aborted mid-stream */

/* Poll tasks copying between socket pairs (weft_io_copier, both ways)
 * while threads pump bytes in and drain them out, aborted from the main
 * thread mid-stream (the drop destroys the copier), and fibers running
 * weft_io_copy aborted the same way: every task ends, the registrations
 * close cleanly afterwards, the pumps see their ends close. */
#define CA_N 4
struct ca_job {
	struct weft_io *a, *b;
	int ca, cb; /* the outer ends */
	struct weft_io_copier *c;
	uint64_t n;
};
static struct ca_job ca[CA_N];

static enum weft_poll ca_poll(void *state, struct weft_cx *cx)
{
	struct ca_job *j = state;
	int rc = weft_io_copier_poll(j->c, cx);
	return rc == WEFT_PENDING ? WEFT_PENDING : WEFT_READY;
}

static void ca_drop(void *state)
{
	struct ca_job *j = state;
	weft_io_copier_destroy(j->c);
}

static void *ca_fiber(void *arg)
{
	struct ca_job *j = arg;
	int rc = weft_io_copy(j->a, j->b, &j->n);
	CHECK(rc == 0 || rc == -ECANCELED || rc == -EPIPE || rc == -ECONNRESET || rc == -EBADF,
	      "copy %d", rc);
	return NULL;
}

static void *ca_pump(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static const char junk[1024];
	char buf[1024];
	for (int i = 0; i < 2000; i++) {
		if (send(fd, junk, sizeof junk, MSG_NOSIGNAL) < 0)
			break;
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0)
			break;
	}
	return NULL;
}

static void scenario_copy_abort(void)
{
	struct weft_runtime *rt = mk(2);
	for (int round = 0; round < 4; round++) {
		struct weft_task *t[CA_N];
		pthread_t pa[CA_N], pb[CA_N];
		for (int i = 0; i < CA_N; i++) {
			int x[2], y[2];
			CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x), 0);
			CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, y), 0);
			/* the pumps' writes must not block for good once the copy stops */
			CHECK_EQ(fcntl(x[0], F_SETFL, O_NONBLOCK), 0);
			CHECK_EQ(fcntl(y[0], F_SETFL, O_NONBLOCK), 0);
			ca[i] = (struct ca_job){ .ca = x[0], .cb = y[0] };
			CHECK_EQ(weft_io_register(rt, x[1], &ca[i].a), 0);
			CHECK_EQ(weft_io_register(rt, y[1], &ca[i].b), 0);
			if (i % 2) {
				CHECK_EQ(weft_io_copier_create(ca[i].a, ca[i].b, WEFT_COPY_BOTH, &ca[i].c), 0);
				CHECK_EQ(weft_spawn_poll(rt, ca_poll, &ca[i], ca_drop, &t[i]), 0);
			} else
				CHECK_EQ(weft_spawn(rt, ca_fiber, &ca[i], &t[i]), 0);
			CHECK_EQ(pthread_create(&pa[i], NULL, ca_pump, (void *)(intptr_t)x[0]), 0);
			CHECK_EQ(pthread_create(&pb[i], NULL, ca_pump, (void *)(intptr_t)y[0]), 0);
		}
		usleep(3000 + (useconds_t)round * 2000);
		for (int i = 0; i < CA_N; i++)
			CHECK_EQ(weft_abort(t[i]), 0);
		for (int i = 0; i < CA_N; i++) {
			int rc = weft_join(t[i], NULL);
			CHECK(rc == 0 || rc == -ECANCELED || rc == -EINTR, "join %d", rc);
			CHECK_EQ(weft_io_close(ca[i].a), 0);
			CHECK_EQ(weft_io_close(ca[i].b), 0);
			pthread_join(pa[i], NULL);
			pthread_join(pb[i], NULL);
			close(ca[i].ca);
			close(ca[i].cb);
		}
	}
	rm_rt(rt);
}

/* -------------------- abort of queued blocking jobs racing a shutdown */

/* A plain thread aborts queued jobs (each cancelled on that thread, in
 * weft__blocking_abort) while the test thread shuts the runtime down:
 * the shutdown waits for those runs (blocking.c, `aborting`). Before, the
 * final sweep could find a job listed and still running there and died. */
enum { AS_ROUNDS = 40, AS_JOBS = 16 };
static struct weft_task *as_jobs[AS_JOBS];
static atomic_int as_gate, as_go;

static void *as_busy(void *arg)
{
	while (!atomic_load(&as_gate))
		sched_yield();
	return arg;
}

static void *as_job(void *arg) { return arg; }

static void *as_aborter(void *arg)
{
	(void)arg;
	while (!atomic_load(&as_go))
		sched_yield();
	for (int i = 0; i < AS_JOBS; i++)
		CHECK_EQ(weft_abort(as_jobs[i]), 0);
	return NULL;
}

static void scenario_abort_shutdown(void)
{
	for (int r = 0; r < AS_ROUNDS; r++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = 1, .max_blocking_threads = 1);
		struct weft_runtime *rt;
		CHECK_EQ(weft_runtime_create(&o, &rt), 0);
		atomic_store(&as_gate, 0);
		atomic_store(&as_go, 0);
		struct weft_task *busy;
		CHECK_EQ(weft_spawn_blocking(rt, as_busy, NULL, &busy), 0);
		for (int i = 0; i < AS_JOBS; i++)
			CHECK_EQ(weft_spawn_blocking(rt, as_job, NULL, &as_jobs[i]), 0);
		pthread_t ab;
		CHECK_EQ(pthread_create(&ab, NULL, as_aborter, NULL), 0);
		atomic_store(&as_go, 1);
		atomic_store(&as_gate, 1);
		CHECK_EQ(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
		pthread_join(ab, NULL);
		int rc = weft_join(busy, NULL); /* -ECANCELED: shut down before it started */
		CHECK(rc == 0 || rc == -ECANCELED, "busy job join");
		for (int i = 0; i < AS_JOBS; i++) {
			rc = weft_join(as_jobs[i], NULL);
			CHECK(rc == 0 || rc == -ECANCELED, "job join");
		}
		rm_rt(rt);
	}
}

/* ------------------------------------- join: one handle, two joiners at once */

/* A thread and a fiber join one handle at once (weft_join, or
 * weft_join_timeout every other round): the later says -EBUSY while the
 * other waits, and the other joins once the task is let go (task.c,
 * join_enter). Before, one of them could never be woken. */
#define JT_ROUNDS 100

static struct weft_sem *jt_gate;
static struct weft_task *_Atomic jt_task;
static atomic_int jt_rc[2], jt_done[2];
static void *jt_res[2];
static atomic_int jt_round;

static void *jt_target(void *arg)
{
	CHECK_EQ(weft_sem_acquire_n(jt_gate, 1), 0);
	return arg;
}

static void jt_join(int me)
{
	struct weft_task *t = atomic_load(&jt_task);
	int rc = me == 1 && (atomic_load(&jt_round) & 1)
			 ? weft_join_timeout(t, &jt_res[me], 60000000000ull)
			 : weft_join(t, &jt_res[me]);
	atomic_store(&jt_rc[me], rc);
	atomic_store(&jt_done[me], 1);
}

static void *jt_thread(void *arg) { (void)arg; jt_join(0); return NULL; }
static void *jt_fiber(void *arg) { (void)arg; jt_join(1); return NULL; }

static void scenario_join_twice(void)
{
	struct weft_runtime *rt = mk(2);
	CHECK_EQ(weft_sem_create(0, &jt_gate), 0);
	for (int round = 0; round < JT_ROUNDS; round++) {
		atomic_store(&jt_round, round);
		struct weft_task *t, *f;
		CHECK_EQ(weft_spawn(rt, jt_target, &jt_round, &t), 0);
		atomic_store(&jt_task, t);
		for (int k = 0; k < 2; k++) {
			atomic_store(&jt_done[k], 0);
			jt_res[k] = NULL;
		}
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, jt_thread, NULL), 0);
		CHECK_EQ(weft_spawn(rt, jt_fiber, NULL, &f), 0);
		while (!atomic_load(&jt_done[0]) && !atomic_load(&jt_done[1]))
			usleep(100);
		int busy = atomic_load(&jt_done[0]) ? 0 : 1;
		CHECK_EQ(atomic_load(&jt_rc[busy]), -EBUSY);
		CHECK_EQ(weft_sem_release_n(jt_gate, 1), 0);
		while (!atomic_load(&jt_done[!busy]))
			usleep(100);
		CHECK_EQ(atomic_load(&jt_rc[!busy]), 0);
		CHECK(jt_res[!busy] == &jt_round, "round %d: the result", round);
		CHECK_EQ(pthread_join(th, NULL), 0);
		CHECK_EQ(weft_join(f, NULL), 0);
	}
	CHECK_EQ(weft_sem_destroy(jt_gate), 0);
	rm_rt(rt);
}

static const struct { const char *name; void (*fn)(void); } scenarios[] = {
	{ "notify", scenario_notify },
	{ "bip_cap", scenario_bip_cap },
	{ "bip_yield", scenario_bip_yield },
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
	{ "once_discard", scenario_once_discard },
	{ "timer_cancel", scenario_timer_cancel },
	{ "watch", scenario_watch },
	{ "oneshot", scenario_oneshot },
	{ "sem", scenario_sem },
	{ "waitgroup", scenario_waitgroup },
	{ "cond", scenario_cond },
	{ "rwlock", scenario_rwlock },
	{ "token_tree", scenario_token_tree },
	{ "timers_abort", scenario_timers_abort },
	{ "signal", scenario_signal },
	{ "process", scenario_process },
	{ "sockets", scenario_sockets },
	{ "block_on", scenario_block_on },
	{ "resize", scenario_resize },
	{ "io_close", scenario_io_close },
	{ "shutdown_traffic", scenario_shutdown_traffic },
	{ "broadcast_lag", scenario_broadcast_lag },
	{ "joinset_abort", scenario_joinset_abort },
	{ "abort_race", scenario_abort_race },
	{ "abort_shutdown", scenario_abort_shutdown },
	{ "select_mix", scenario_select_mix },
	{ "resize_bip", scenario_resize_bip },
	{ "chan_close", scenario_chan_close },
	{ "notify_timeout", scenario_notify_timeout },
	{ "barrier_timeout", scenario_barrier_timeout },
	{ "reg_churn", scenario_reg_churn },
	{ "shutdown_waits", scenario_shutdown_waits },
	{ "cond_poll", scenario_cond_poll },
	{ "process_kill", scenario_process_kill },
	{ "process_waits", scenario_process_waits },
	{ "process_kill_close", scenario_process_kill_close },
	{ "interval_reset", scenario_interval_reset },
	{ "shutdown_discard", scenario_shutdown_discard },
	{ "close_rw", scenario_close_rw },
	{ "many_runtimes", scenario_many_runtimes },
	{ "shutdown_concurrent", scenario_shutdown_concurrent },
	{ "stacks", scenario_stacks },
	{ "thread_timers", scenario_thread_timers },
	{ "tcp", scenario_tcp },
	{ "select_join", scenario_select_join },
	{ "copy_abort", scenario_copy_abort },
	{ "join_twice", scenario_join_twice },
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
