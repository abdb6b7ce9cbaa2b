/*
 * tsan_runtime.c - concurrency scenarios run under ThreadSanitizer:
 * `tsan_runtime SCENARIO` runs one, and the test passes when the scenario's
 * own checks hold and TSan reports nothing (halt_on_error=1, exitcode 66).
 * Scenarios: ring, spawn, wake, abort, shutdown, fibers, chan, chan_handoff,
 * broadcast, timers, io, blocking, cycles, lifo, yield_rescue, spares,
 * unwind, elastic, stall_lazy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#include "queue.h"
#include "task.h"
#include "tlist.h"
#include "tsan_check.h"

static struct weft_runtime *mk(int workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	CHECK_EQ(weft_runtime_create(&o, &rt), 0);
	/* the io_uring runs (tests/tsan/CMakeLists.txt): no silent epoll */
	const char *drv = getenv("WEFT_IO_DRIVER");
	if (drv && (!strcmp(drv, "uring") || !strcmp(drv, "io_uring")))
		CHECK_EQ(weft_runtime_io_driver(rt), WEFT_IO_DRIVER_URING);
	return rt;
}

static void rm_rt(struct weft_runtime *rt) { CHECK_EQ(weft_runtime_destroy(rt), 0); }

/* ------------------------------------------------------------------ ring */

static struct weft__ring g_ring;
static atomic_long g_seen_total;
static atomic_int g_owner_done;

static void *thief(void *arg)
{
	struct weft__ring *mine = arg;
	long n = 0;
	while (!atomic_load(&g_owner_done) || weft__ring_len(&g_ring)) {
		unsigned got, depth;
		struct weft_task *t = weft__ring_steal(&g_ring, mine, &got, &depth);
		if (!t)
			continue;
		n++;
		while (weft__ring_pop_owner(mine))
			n++;
	}
	atomic_fetch_add(&g_seen_total, n);
	return NULL;
}

static void scenario_ring(void)
{
	enum { N = 200000 };
	static struct weft_task tasks[N];
	static struct weft__ring thief_ring[2];
	weft__ring_init(&g_ring);
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		weft__ring_init(&thief_ring[i]);
		pthread_create(&th[i], NULL, thief, &thief_ring[i]);
	}
	long own = 0, over = 0;
	for (int i = 0; i < N; i++) {
		struct weft__tlist o = WEFT__TLIST_INIT;
		over += weft__ring_push_owner(&g_ring, &tasks[i], &o);
		if (i % 3 == 0 && weft__ring_pop_owner(&g_ring))
			own++;
	}
	atomic_store(&g_owner_done, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	while (weft__ring_pop_owner(&g_ring))
		own++;
	CHECK_EQ(own + over + atomic_load(&g_seen_total), N);
}

/* ----------------------------------------------------------------- spawn */

static atomic_long g_done;

static enum weft_poll leaf(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&g_done, 1);
	return WEFT_READY;
}

static enum weft_poll fan(void *s, struct weft_cx *cx)
{
	long n = (long)s;
	for (long i = 0; i < n; i++)
		CHECK_EQ(weft_spawn_poll(weft_cx_runtime(cx), leaf, NULL, NULL, NULL), 0);
	atomic_fetch_add(&g_done, 1);
	return WEFT_READY;
}

static struct weft_runtime *g_rt;

static void *remote_spawner(void *arg)
{
	for (int i = 0; i < 2000; i++)
		CHECK_EQ(weft_spawn_poll(g_rt, i % 10 ? leaf : fan, (void *)10L, NULL, NULL), 0);
	return NULL;
}

static void scenario_spawn(void)
{
	for (int w = 1; w <= 4; w *= 2) {
		g_rt = mk(w);
		atomic_store(&g_done, 0);
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, remote_spawner, NULL);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		long want = 2 * (2000 + 200 * 10);
		for (int i = 0; i < 20000 && atomic_load(&g_done) < want; i++)
			usleep(500);
		CHECK_EQ(atomic_load(&g_done), want);
		rm_rt(g_rt);
	}
}

/* ------------------------------------------------------------------ wake */

struct sleeper { weft_waker w; atomic_int armed; atomic_int polls; atomic_int stop; };

static enum weft_poll wait_wakes(void *s, struct weft_cx *cx)
{
	struct sleeper *z = s;
	atomic_fetch_add(&z->polls, 1);
	if (atomic_load(&z->stop))
		return WEFT_READY;
	if (!atomic_load(&z->armed)) {
		z->w = weft_waker_clone(weft_cx_waker(cx));
		atomic_store(&z->armed, 1); /* publishes z->w */
	}
	return WEFT_PENDING;
}

static void drop_waker(void *s)
{
	struct sleeper *z = s;
	weft_waker_drop(&z->w);
}

enum { NZ = 64 };
static struct sleeper g_z[NZ];
static weft_waker g_mine[NZ]; /* our own clones: the task drops its copy when it ends */

static void *waker_thread(void *arg)
{
	for (int r = 0; r < 300; r++)
		for (int i = 0; i < NZ; i++)
			weft_waker_wake_by_ref(&g_mine[i]);
	return NULL;
}

static void scenario_wake(void)
{
	g_rt = mk(2);
	struct weft_task *t[NZ];
	for (int i = 0; i < NZ; i++)
		CHECK_EQ(weft_spawn_poll(g_rt, wait_wakes, &g_z[i], drop_waker, &t[i]), 0);
	for (int i = 0; i < NZ; i++) {
		while (!atomic_load(&g_z[i].armed))
			usleep(100);
		g_mine[i] = weft_waker_clone(&g_z[i].w);
	}
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, waker_thread, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NZ; i++) {
		atomic_store(&g_z[i].stop, 1);
		weft_waker_wake(&g_mine[i]);
	}
	for (int i = 0; i < NZ; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	rm_rt(g_rt);
}

/* ----------------------------------------------------------------- abort */

static enum weft_poll yielder(void *s, struct weft_cx *cx)
{
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static atomic_int g_drops;
static void count_drop(void *s) { atomic_fetch_add(&g_drops, 1); }

static void scenario_abort(void)
{
	g_rt = mk(2);
	enum { N = 2000 };
	static struct weft_task *t[N];
	atomic_store(&g_drops, 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_spawn_poll(g_rt, yielder, NULL, count_drop, &t[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_abort(t[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_join(t[i], NULL), -ECANCELED);
	CHECK_EQ(atomic_load(&g_drops), N);
	rm_rt(g_rt);
}

/* -------------------------------------------------------------- shutdown */

static atomic_long g_attempts;

static void *spawn_until_refused(void *arg)
{
	for (;;) {
		atomic_fetch_add(&g_attempts, 1);
		int rc = weft_spawn_poll(g_rt, yielder, NULL, count_drop, NULL);
		if (rc == -ESHUTDOWN)
			return NULL;
		CHECK_EQ(rc, 0);
	}
}

static void scenario_shutdown(void)
{
	for (int round = 0; round < 5; round++) {
		g_rt = mk(2);
		atomic_store(&g_drops, 0);
		atomic_store(&g_attempts, 0);
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, spawn_until_refused, NULL);
		usleep(5000);
		/* a limit, not WEFT_FOREVER: the limited path takes the
		 * shutdown lock by deadline, which TSan must see (it did not
		 * see pthread_mutex_clocklock: "unlock of an unlocked mutex") */
		CHECK_EQ(weft_runtime_shutdown(g_rt, 60000000000ull), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		CHECK_EQ(atomic_load(&g_drops), atomic_load(&g_attempts));
		rm_rt(g_rt);
	}
}

/* ---------------------------------------------------------------- fibers */

static void *migrate(void *arg)
{
	for (int i = 0; i < 100; i++)
		weft_yield();
	atomic_fetch_add(&g_done, 1);
	return NULL;
}

static void scenario_fibers(void)
{
	g_rt = mk(2);
	atomic_store(&g_done, 0);
	enum { N = 200 };
	struct weft_task *t[N];
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_spawn(g_rt, migrate, NULL, &t[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&g_done), N);
	rm_rt(g_rt);
}

/* ---------------------------------------------------------------- unwind */

/* Fibers holding a shared weft mutex around waits on a notify, a sleep and
 * a channel; aborted from this thread while another thread keeps waking
 * them, the rest cancelled by shutdown. Each returns once its calls fail
 * (-ECANCELED) and unlocks what it held; drop(arg) runs exactly for the
 * ones that never started. */
static struct weft_mutex *g_um;
static struct weft_notify *g_un;
static struct weft_chan *g_uch;
static atomic_int g_unwound, g_udrops, g_ustop;

static void *unwinder(void *arg)
{
	long i = (long)(intptr_t)arg;
	for (;;) {
		if (weft_mutex_lock(g_um))
			break;
		int rc = i % 3 == 0 ? weft_notify_wait(g_un)
			 : i % 3 == 1 ? weft_sleep_ns(1000000)
				      : weft_chan_recv(g_uch, &(long){ 0 });
		CHECK_EQ(weft_mutex_unlock(g_um), 0);
		if (rc == -ECANCELED)
			break;
	}
	atomic_fetch_add(&g_unwound, 1);
	return NULL;
}

static void unwinder_drop(void *arg) { atomic_fetch_add(&g_udrops, 1); }

static void *notifier(void *arg)
{
	while (!atomic_load(&g_ustop)) {
		weft_notify_all(g_un);
		long v = 1;
		weft_chan_try_send(g_uch, &v);
	}
	return NULL;
}

static void scenario_unwind(void)
{
	for (int round = 0; round < 3; round++) {
		g_rt = mk(2);
		CHECK_EQ(weft_mutex_create(&g_um), 0);
		CHECK_EQ(weft_notify_create(&g_un), 0);
		CHECK_EQ(weft_chan_create(sizeof(long), 4, &g_uch), 0);
		atomic_store(&g_unwound, 0);
		atomic_store(&g_udrops, 0);
		atomic_store(&g_ustop, 0);
		pthread_t th;
		pthread_create(&th, NULL, notifier, NULL);
		enum { N = 300 };
		static struct weft_task *t[N];
		struct weft_spawn_opts o = WEFT_OPTS_INIT(weft_spawn_opts, .drop = unwinder_drop);
		for (long i = 0; i < N; i++)
			CHECK_EQ(weft_spawn_with(g_rt, unwinder, (void *)(intptr_t)i, &o, &t[i]), 0);
		usleep(2000);
		int never = 0;
		for (int i = 0; i < N / 2; i++)
			CHECK_EQ(weft_abort(t[i]), 0);
		for (int i = 0; i < N / 2; i++) {
			int rc = weft_join(t[i], NULL);
			CHECK(rc == -EINTR || rc == -ECANCELED, "join = %d\n", rc);
			never += rc == -ECANCELED;
		}
		CHECK_EQ(weft_runtime_shutdown(g_rt, WEFT_FOREVER), 0);
		atomic_store(&g_ustop, 1);
		pthread_join(th, NULL);
		for (int i = N / 2; i < N; i++) {
			int rc = weft_join(t[i], NULL);
			CHECK(rc == -EINTR || rc == -ECANCELED, "join = %d\n", rc);
			never += rc == -ECANCELED;
		}
		CHECK_EQ(atomic_load(&g_udrops), never);
		CHECK_EQ(atomic_load(&g_unwound) + never, N);
		CHECK_EQ(weft_mutex_try_lock(g_um), 0);
		CHECK_EQ(weft_mutex_unlock(g_um), 0);
		CHECK_EQ(weft_mutex_destroy(g_um), 0);
		CHECK_EQ(weft_notify_destroy(g_un), 0);
		CHECK_EQ(weft_chan_destroy(g_uch), 0);
		rm_rt(g_rt);
	}
}

/* ------------------------------------------------------------------ chan */

static struct weft_chan *g_ch;
static atomic_long g_sum;

static void *producer(void *arg)
{
	for (long i = 1; i <= 2000; i++)
		CHECK_EQ(weft_chan_send(g_ch, &i), 0);
	return NULL;
}

static void *consumer(void *arg)
{
	long v, s = 0;
	while (weft_chan_recv(g_ch, &v) == 0)
		s += v;
	atomic_fetch_add(&g_sum, s);
	return NULL;
}

static void scenario_chan(void)
{
	g_rt = mk(2);
	CHECK_EQ(weft_chan_create(sizeof(long), 8, &g_ch), 0);
	struct weft_task *p[4], *c[2];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_spawn(g_rt, consumer, NULL, &c[i]), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_spawn(g_rt, producer, NULL, &p[i]), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(p[i], NULL), 0);
	CHECK_EQ(weft_chan_close(g_ch), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(weft_join(c[i], NULL), 0);
	CHECK_EQ(atomic_load(&g_sum), 4L * 2000 * 2001 / 2);
	CHECK_EQ(weft_chan_destroy(g_ch), 0);
	rm_rt(g_rt);
}

/*
 * chan_handoff: the channel's direct hand-offs from every side at once.
 * 16 poll-task producers (items kept in their wait entries, completed by
 * receivers without the lock), 2 poll-task consumers, a foreign thread
 * receiving with the blocking form, and 6 poll-task receivers aborted at
 * random while items are being handed to them (each gives its item back).
 * Conservation: the sum of everything collected equals the sum sent. Run
 * on a capacity-4 channel, then on a rendezvous channel.
 */
enum { HO_P = 16, HO_N = 4000, HO_VICTIMS = 6 };

struct ho_prod { long next; struct weft_wait w; };
struct ho_cons { struct weft_wait w; };

static struct weft_chan *g_hoch;
static atomic_long g_ho_sum, g_ho_count;

static enum weft_poll ho_producer(void *state, struct weft_cx *cx)
{
	struct ho_prod *p = state;
	while (p->next <= HO_N) {
		int rc = weft_chan_send_poll(g_hoch, &p->w, cx, &p->next);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		CHECK_EQ(rc, 0);
		p->next++;
	}
	return WEFT_READY;
}

static enum weft_poll ho_consumer(void *state, struct weft_cx *cx)
{
	struct ho_cons *c = state;
	for (;;) {
		long v;
		int rc = weft_chan_recv_poll(g_hoch, &c->w, cx, &v);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		if (rc == -EPIPE)
			return WEFT_READY;
		CHECK_EQ(rc, 0);
		atomic_fetch_add(&g_ho_sum, v);
		atomic_fetch_add(&g_ho_count, 1);
	}
}

static void ho_cons_drop(void *state)
{
	struct ho_cons *c = state;
	weft_wait_cancel(&c->w); /* gives back an item handed to it */
}

static void *ho_thread_consumer(void *arg)
{
	(void)arg;
	long v;
	while (weft_chan_recv(g_hoch, &v) == 0) {
		atomic_fetch_add(&g_ho_sum, v);
		atomic_fetch_add(&g_ho_count, 1);
	}
	return NULL;
}

static void chan_handoff_run(size_t cap)
{
	static struct ho_prod prod[HO_P];
	static struct ho_cons cons[2 + HO_VICTIMS];
	struct weft_task *hp[HO_P], *hc[2 + HO_VICTIMS];
	g_rt = mk(2);
	atomic_store(&g_ho_sum, 0);
	atomic_store(&g_ho_count, 0);
	CHECK_EQ(weft_chan_create(sizeof(long), cap, &g_hoch), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, ho_thread_consumer, NULL), 0);
	for (int i = 0; i < 2 + HO_VICTIMS; i++) {
		memset(&cons[i], 0, sizeof(cons[i]));
		CHECK_EQ(weft_spawn_poll(g_rt, ho_consumer, &cons[i], ho_cons_drop, &hc[i]), 0);
	}
	for (int i = 0; i < HO_P; i++) {
		memset(&prod[i], 0, sizeof(prod[i]));
		prod[i].next = 1;
		CHECK_EQ(weft_spawn_poll(g_rt, ho_producer, &prod[i], NULL, &hp[i]), 0);
	}
	for (int i = 0; i < HO_VICTIMS; i++) {
		usleep(1000 + 1000 * (unsigned)i);
		CHECK_EQ(weft_abort(hc[2 + i]), 0);
	}
	for (int i = 0; i < HO_P; i++)
		CHECK_EQ(weft_join(hp[i], NULL), 0);
	CHECK_EQ(weft_chan_close(g_hoch), 0);
	for (int i = 0; i < 2 + HO_VICTIMS; i++) {
		int rc = weft_join(hc[i], NULL);
		CHECK(rc == 0 || (i >= 2 && rc == -ECANCELED), "consumer %d join %d", i, rc);
	}
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&g_ho_count), (long)HO_P * HO_N);
	CHECK_EQ(atomic_load(&g_ho_sum), (long)HO_P * HO_N * (HO_N + 1) / 2);
	CHECK_EQ(weft_chan_destroy(g_hoch), 0);
	rm_rt(g_rt);
}

static void scenario_chan_handoff(void)
{
	chan_handoff_run(4);
	chan_handoff_run(0); /* rendezvous */
}

/*
 * broadcast: a thread sends 3,000 items while 3 fibers receive them all
 * (history large enough for no lag) and 3 fibers follow a watch channel
 * the same thread updates, until they see its last value.
 */
enum { BC_N = 3000 };
static struct weft_broadcast *g_bc;
static struct weft_watch *g_wt;
static atomic_long g_bc_sum;

static void *bc_fiber(void *arg)
{
	struct weft_broadcast_rx *rx = arg;
	long v, s = 0, n = 0;
	int rc;
	while ((rc = weft_broadcast_recv(rx, &v, NULL)) == 0) {
		s += v;
		n++;
	}
	CHECK_EQ(rc, -EPIPE);
	CHECK_EQ(n, BC_N);
	atomic_fetch_add(&g_bc_sum, s);
	return NULL;
}

static void *wt_fiber(void *arg)
{
	struct weft_watch_rx *rx = arg;
	long v = 0, last = 0;
	while (weft_watch_changed(rx) == 0) {
		CHECK_EQ(weft_watch_get(rx, &v), 0);
		CHECK(v >= last, "watch went back: %ld after %ld", v, last);
		last = v;
	}
	CHECK_EQ(last, BC_N);
	return NULL;
}

static void scenario_broadcast(void)
{
	g_rt = mk(2);
	long zero = 0;
	atomic_store(&g_bc_sum, 0);
	CHECK_EQ(weft_broadcast_create(sizeof(long), 4096, &g_bc), 0);
	CHECK_EQ(weft_watch_create(sizeof(long), &zero, &g_wt), 0);
	struct weft_broadcast_rx *brx[3];
	struct weft_watch_rx *wrx[3];
	struct weft_task *t[6];
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(weft_broadcast_subscribe(g_bc, &brx[i]), 0);
		CHECK_EQ(weft_watch_subscribe(g_wt, &wrx[i]), 0);
		CHECK_EQ(weft_spawn(g_rt, bc_fiber, brx[i], &t[i]), 0);
		CHECK_EQ(weft_spawn(g_rt, wt_fiber, wrx[i], &t[3 + i]), 0);
	}
	for (long v = 1; v <= BC_N; v++) {
		CHECK_EQ(weft_broadcast_send(g_bc, &v), 0);
		CHECK_EQ(weft_watch_send(g_wt, &v), 0);
	}
	CHECK_EQ(weft_broadcast_close(g_bc), 0);
	CHECK_EQ(weft_watch_close(g_wt), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&g_bc_sum), 3L * BC_N * (BC_N + 1) / 2);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(weft_broadcast_rx_drop(brx[i]), 0);
		CHECK_EQ(weft_watch_rx_drop(wrx[i]), 0);
	}
	CHECK_EQ(weft_broadcast_destroy(g_bc), 0);
	CHECK_EQ(weft_watch_destroy(g_wt), 0);
	rm_rt(g_rt);
}

/* ---------------------------------------------------------------- timers */

static void *nap(void *arg)
{
	uint64_t d = (uint64_t)(uintptr_t)arg * 100000;
	uint64_t t0 = weft_now_ns();
	CHECK_EQ(weft_sleep_ns(d), 0);
	CHECK(weft_now_ns() - t0 >= d, "early");
	return NULL;
}

static void scenario_timers(void)
{
	g_rt = mk(2);
	enum { N = 500 };
	struct weft_task *t[N];
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_spawn(g_rt, nap, (void *)(uintptr_t)(i % 50), &t[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	rm_rt(g_rt);
}

/* --------------------------------------------------------------- elastic */

/* weft_runtime_set_workers from a thread and from inside tasks while fibers
 * yield, sleep and spawn: every fiber finishes, the cores retired and
 * re-added pass between threads without a race. */
static atomic_long g_el_done;
static atomic_int g_el_stop;

static void *el_fiber(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	for (int i = 0; i < 20; i++) {
		if ((k + (uintptr_t)i) % 3 == 0) {
			CHECK_EQ(weft_yield(), 0);
		} else if ((k + (uintptr_t)i) % 3 == 1) {
			CHECK_EQ(weft_sleep_ns(100000), 0);
		} else {
			struct weft_task *t;
			CHECK_EQ(weft_spawn_poll(g_rt, leaf, NULL, NULL, &t), 0);
			CHECK_EQ(weft_join(t, NULL), 0);
		}
		if (k % 50 == 0 && i == 10) /* from a task, on a worker */
			CHECK_EQ(weft_runtime_set_workers(g_rt, 1 + (int)(k / 50) % 3), 0);
	}
	atomic_fetch_add(&g_el_done, 1);
	return NULL;
}

static void *el_resizer(void *arg)
{
	static const int seq[] = { 3, 1, 4, 2, 1, 3 };
	for (unsigned i = 0; !atomic_load(&g_el_stop); i++) {
		CHECK_EQ(weft_runtime_set_workers(g_rt, seq[i % 6]), 0);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* a start hook that takes a while: the core its thread will drive is
 * counted unparked meanwhile but not watched (idle.c, weft__idle_hook_end
 * against the parked watchers) */
static void el_hook(void *arg, unsigned worker)
{
	(void)arg;
	(void)worker;
	struct timespec ts = { 0, 2000000 };
	nanosleep(&ts, NULL);
}

static void scenario_elastic(void)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .blocking_keep_alive_ns = 20000000,
		  .on_thread_start = el_hook);
	CHECK_EQ(weft_runtime_create(&o, &g_rt), 0);
	enum { N = 200 };
	static struct weft_task *t[N];
	pthread_t th;
	atomic_store(&g_el_stop, 0);
	CHECK_EQ(pthread_create(&th, NULL, el_resizer, NULL), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_spawn(g_rt, el_fiber, (void *)(uintptr_t)i, &t[i]), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	atomic_store(&g_el_stop, 1);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&g_el_done), N);
	/* shut down right after a shrink: retirements race the shutdown */
	CHECK_EQ(weft_runtime_set_workers(g_rt, 1), 0);
	rm_rt(g_rt);
}

/* -------------------------------------------------------------------- io */

static struct weft_io *g_a, *g_b;

static void *pinger(void *arg)
{
	char c = 'x';
	for (int i = 0; i < 500; i++) {
		CHECK_EQ(weft_write(g_a, &c, 1), 1);
		CHECK_EQ(weft_read(g_a, &c, 1), 1);
	}
	return NULL;
}

static void *ponger(void *arg)
{
	char c;
	for (int i = 0; i < 500; i++) {
		CHECK_EQ(weft_read(g_b, &c, 1), 1);
		CHECK_EQ(weft_write(g_b, &c, 1), 1);
	}
	return NULL;
}

static void scenario_io(void)
{
	g_rt = mk(2);
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CHECK_EQ(weft_io_register(g_rt, sv[0], &g_a), 0);
	CHECK_EQ(weft_io_register(g_rt, sv[1], &g_b), 0);
	struct weft_task *p, *q;
	CHECK_EQ(weft_spawn(g_rt, pinger, NULL, &p), 0);
	CHECK_EQ(weft_spawn(g_rt, ponger, NULL, &q), 0);
	CHECK_EQ(weft_join(p, NULL), 0);
	CHECK_EQ(weft_join(q, NULL), 0);
	weft_io_close(g_a);
	weft_io_close(g_b);
	rm_rt(g_rt);
}

/* -------------------------------------------------------------- blocking */

static void *slow(void *arg)
{
	usleep(2000);
	return arg;
}

static void *bip(void *arg)
{
	void *r;
	CHECK_EQ(weft_block_in_place(slow, arg, &r), 0);
	return r;
}

static void scenario_blocking(void)
{
	g_rt = mk(2);
	struct weft_task *t[40];
	for (long i = 0; i < 40; i++) {
		if (i % 2)
			CHECK_EQ(weft_spawn_blocking(g_rt, slow, (void *)i, &t[i]), 0);
		else
			CHECK_EQ(weft_spawn(g_rt, bip, (void *)i, &t[i]), 0);
	}
	for (long i = 0; i < 40; i++) {
		void *r;
		CHECK_EQ(weft_join(t[i], &r), 0);
		CHECK_EQ((long)r, i);
	}
	rm_rt(g_rt);
}

/* ------------------------------------------------ block_in_place spares */

static void *quick(void *arg) { return arg; }

/* One block_in_place per poll (a poll that lost its core would just run fn
 * for the rest), `left` polls: the spare's take and the caller's take-back
 * race on every call; spawns keep the cores' queues busy meanwhile. */
static enum weft_poll bip_many(void *state, struct weft_cx *cx)
{
	long *left = state;
	void *r;
	CHECK_EQ(weft_block_in_place(quick, (void *)*left, &r), 0);
	CHECK_EQ((long)r, *left);
	CHECK_EQ(weft_spawn_poll(g_rt, leaf, NULL, NULL, NULL), 0);
	if (--*left == 0)
		return WEFT_READY;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static void scenario_spares(void)
{
	g_rt = mk(2);
	long left[4];
	struct weft_task *t[4];
	for (int i = 0; i < 4; i++) {
		left[i] = 300;
		CHECK_EQ(weft_spawn_poll(g_rt, bip_many, &left[i], NULL, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_join(t[i], NULL), 0);
	rm_rt(g_rt);
}

/* ---------------------------------------------------------------- cycles */

static void scenario_cycles(void)
{
	for (int i = 0; i < 50; i++) {
		struct weft_runtime *rt = mk(1 + i % 3);
		for (int k = 0; k < 20; k++)
			CHECK_EQ(weft_spawn_poll(rt, leaf, NULL, NULL, NULL), 0);
		rm_rt(rt);
	}
}

/* ------------------------------------------------------------------ lifo */

/*
 * A parent spawns a child into its worker's LIFO slot and spins 5-25 ms in
 * the same poll. Past 10-20 ms the other worker rescues the child, close to
 * the moment the owner itself takes it after the poll: each child must run
 * exactly once, and the slot's exchanges must not race.
 */
enum { NL = 40 };
static atomic_int g_child_runs[NL];

static enum weft_poll lifo_child(void *s, struct weft_cx *cx)
{
	atomic_fetch_add(&g_child_runs[(long)s], 1);
	return WEFT_READY;
}

static long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static enum weft_poll lifo_parent(void *s, struct weft_cx *cx)
{
	CHECK_EQ(weft_spawn_poll(weft_cx_runtime(cx), lifo_child, s, NULL, NULL), 0);
	long end = mono_ns() + (5 + (long)s % 21) * 1000000L;
	while (mono_ns() < end)
		;
	return WEFT_READY;
}

static void scenario_lifo(void)
{
	g_rt = mk(2);
	for (long i = 0; i < NL; i++) {
		struct weft_task *t;
		CHECK_EQ(weft_spawn_poll(g_rt, lifo_parent, (void *)i, NULL, &t), 0);
		CHECK_EQ(weft_join(t, NULL), 0);
	}
	for (long i = 0; i < NL; i++)
		for (int k = 0; k < 20000 && !atomic_load(&g_child_runs[i]); k++)
			usleep(500);
	rm_rt(g_rt);
	for (long i = 0; i < NL; i++)
		CHECK_EQ(atomic_load(&g_child_runs[i]), 1);
}

/*
 * The deferred yields' rescue (worker.c, rescue_deferred): a parent spawns
 * a child into its worker's LIFO slot and yields; the child spins 5-25 ms
 * in one poll, so past 10-20 ms the other worker takes the yielded parent
 * off the stalled core, close to the moment the owner's poll ends and it
 * touches the list itself. Every parent must run its second poll exactly
 * once, and the list must not race.
 */
static atomic_int g_yr_started[NL], g_yr_second[NL], g_yr_child[NL], g_yr_rescued;

static enum weft_poll yr_child(void *s, struct weft_cx *cx)
{
	(void)cx;
	long end = mono_ns() + (5 + (long)s % 21) * 1000000L;
	while (mono_ns() < end)
		;
	atomic_fetch_add(&g_yr_child[(long)s], 1);
	return WEFT_READY;
}

static enum weft_poll yr_parent(void *s, struct weft_cx *cx)
{
	if (!atomic_exchange(&g_yr_started[(long)s], 1)) {
		CHECK_EQ(weft_spawn_poll(weft_cx_runtime(cx), yr_child, s, NULL, NULL), 0);
		weft_waker_wake_by_ref(weft_cx_waker(cx)); /* a yield */
		return WEFT_PENDING;
	}
	if (!atomic_load(&g_yr_child[(long)s]))
		atomic_fetch_add(&g_yr_rescued, 1); /* ran while its core was stuck */
	atomic_fetch_add(&g_yr_second[(long)s], 1);
	return WEFT_READY;
}

static void scenario_yield_rescue(void)
{
	g_rt = mk(2);
	for (long i = 0; i < NL; i++) {
		struct weft_task *t;
		CHECK_EQ(weft_spawn_poll(g_rt, yr_parent, (void *)i, NULL, &t), 0);
		CHECK_EQ(weft_join(t, NULL), 0);
	}
	for (long i = 0; i < NL; i++)
		for (int k = 0; k < 20000 && !atomic_load(&g_yr_child[i]); k++)
			usleep(500);
	rm_rt(g_rt);
	for (long i = 0; i < NL; i++) {
		CHECK_EQ(atomic_load(&g_yr_second[i]), 1);
		CHECK_EQ(atomic_load(&g_yr_child[i]), 1);
	}
	fprintf(stderr, "yield_rescue: %d of %d parents ran again while their child's poll went on\n",
		atomic_load(&g_yr_rescued), NL);
}

/*
 * stall_lazy: the stall report of one worker reads the task another worker
 * is stuck polling (id, poll function, spawn site and, for a fiber, t->arg
 * and the fn it names) with atomic loads. A lazily spawned fiber (from a
 * plain thread, onto a warm stack) writes t->arg and its header's fn in its
 * first poll, and a spawn writes those fields of a slot the report looked
 * at before the slot was freed: plain stores, a data race (found by a
 * review).
 */
static uint64_t sl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *sl_quick(void *a)
{
	weft_yield();
	return a;
}

static void *sl_spin(void *a)
{
	uint64_t end = sl_now_ns() + 40000000ull; /* 40 ms without a weft call */
	while (sl_now_ns() < end)
		;
	return a;
}

static enum weft_poll sl_spin_poll(void *s, struct weft_cx *cx)
{
	weft_cx_set_result(cx, sl_spin(s));
	return WEFT_READY;
}

static void *sl_spawn_spin(void *a)
{
	struct weft_task *t;
	void *res = NULL;
	CHECK_EQ(weft_spawn_poll(weft_runtime_current(), sl_spin_poll, a, NULL, &t), 0);
	CHECK_EQ(weft_join(t, &res), 0);
	return res;
}

static void scenario_stall_lazy(void)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2, .stall_threshold_ns = 1000000);
	struct weft_runtime *rt;
	CHECK_EQ(weft_runtime_create(&o, &rt), 0);
	for (long r = 0; r < 10; r++) {
		struct weft_task *h[256], *t;
		/* a burst, then idle: the workers' trims put the stacks on the
		 * shared warm list, where this thread's next spawn is lazy */
		for (int i = 0; i < 256; i++)
			CHECK_EQ(weft_spawn(rt, sl_quick, NULL, &h[i]), 0);
		for (int i = 0; i < 256; i++)
			CHECK_EQ(weft_join(h[i], NULL), 0);
		usleep(100000);
		CHECK_EQ(weft_spawn(rt, sl_spin, (void *)r, &t), 0);
		void *res = NULL;
		CHECK_EQ(weft_join(t, &res), 0);
		CHECK_EQ((long)res, r);
	}
	rm_rt(rt);
	/* A task a worker allocated (a fresh slab of its cache) and polls
	 * itself, stuck: the watcher's reads had nothing ordering them
	 * after the allocation and the spawn's stores (cur_task was a
	 * relaxed store) - a report on the first stall of a runtime. */
	for (long r = 0; r < 5; r++) {
		CHECK_EQ(weft_runtime_create(&o, &rt), 0);
		struct weft_task *t;
		CHECK_EQ(weft_spawn(rt, sl_spawn_spin, (void *)r, &t), 0);
		void *res = NULL;
		CHECK_EQ(weft_join(t, &res), 0);
		CHECK_EQ((long)res, r);
		rm_rt(rt);
	}
}

static const struct { const char *name; void (*fn)(void); } scenarios[] = {
	{ "ring", scenario_ring },         { "spawn", scenario_spawn },
	{ "wake", scenario_wake },         { "abort", scenario_abort },
	{ "shutdown", scenario_shutdown }, { "fibers", scenario_fibers },
	{ "chan", scenario_chan },         { "chan_handoff", scenario_chan_handoff },
	{ "broadcast", scenario_broadcast }, { "timers", scenario_timers },
	{ "io", scenario_io },             { "blocking", scenario_blocking },
	{ "cycles", scenario_cycles },     { "lifo", scenario_lifo },
	{ "yield_rescue", scenario_yield_rescue },
	{ "spares", scenario_spares },     { "unwind", scenario_unwind },
	{ "elastic", scenario_elastic }, { "stall_lazy", scenario_stall_lazy },
};

int main(int argc, char **argv)
{
	int passed = 0;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (argc > 1 && strcmp(argv[1], scenarios[i].name))
			continue;
		scenarios[i].fn();
		printf("tsan %s: ok\n", scenarios[i].name);
		passed++;
	}
	if (!passed) {
		fprintf(stderr, "usage: tsan_runtime [SCENARIO]\n");
		return 2;
	}
	printf("%d passed, 0 failed\n", passed);
	return 0;
}
