/*
 * shapes.c - the workload shapes of weft-load.
 *
 * Each shape issues units from the driver thread (an outside thread, so a
 * unit's root task goes to the inject queue) and describes its graph twice:
 * by running it (start) and by enumerating it (enumerate). Both derive every
 * parameter from the same functions of (seed, k, node id) below, so the
 * node hashes summed by a run equal the enumerated ones exactly when the
 * runtime ran the whole graph.
 *
 *   skewed     a spawner task spawns a wave of 256..1024 CPU jobs from the
 *              worker it runs on (LIFO slot + ring + overflow to inject);
 *              the other workers can only get work by stealing
 *   fork-join  recursive tree (depth 3..6, 2..3 children), parents join
 *              children with weft_join_poll
 *   bursty     the driver thread spawns 100..1000 small jobs at once, then
 *              stays idle for a seeded gap: workers park and are unparked
 *   ping-pong  two fibers pass a counter 50..200 times over two channels
 *   timers     a poll task sleeps 1..5 times, 0.1..3 ms each (weft_timer)
 *   blocking   8..32 fibers; 20% call weft_block_in_place, 20%
 *              weft_spawn_blocking + weft_join (0.2..2 ms of sleep), the
 *              rest do CPU work
 *   echo       a client fiber connects to the in-process echo server on
 *              127.0.0.1 and sends 8..32 messages of 16..2048 bytes
 *   mixed      unit k is a unit of one of the shapes above, chosen by hash
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

/* Domain tags so that different shapes never share node hashes. */
enum { T_SKEW = 1, T_FJ, T_BURST, T_PP, T_TIMER, T_BLOCK, T_ECHO, T_MIX, T_GAP };

uint64_t load_extra_spin;

void spin(uint64_t iters)
{
	uint64_t x = 0;
	iters += load_extra_spin;
	for (uint64_t i = 0; i < iters; i++) {
		x += i;
		__asm__ volatile("" : "+r"(x)); /* keep the loop */
	}
}

static uint64_t unit_key(unsigned tag, uint64_t k)
{
	return h3(load_seed, tag, k);
}

/* ------------------------------------------------------ CPU jobs (shared) */

/* A job: `yields` times wake itself and return PENDING, `work` spin
 * iterations per poll. Used by skewed and bursty. */
struct job {
	struct node n;
	uint32_t yields, work;
};

struct job_params { uint32_t yields, work; };

static struct job_params job_params(uint64_t id, uint32_t max_yields, uint32_t min_work,
				    uint32_t max_work)
{
	return (struct job_params){
		.yields = (uint32_t)hrange(h2(id, 1), 0, max_yields),
		.work = (uint32_t)hrange(h2(id, 2), min_work, max_work),
	};
}

static uint64_t job_hash(uint64_t id, struct job_params p)
{
	return h3(id, p.yields, p.work);
}

static enum weft_poll job_poll(void *state, struct weft_cx *cx)
{
	struct job *j = state;
	spin(j->work);
	if (j->yields > 0) {
		j->yields--;
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	node_done(&j->n);
	return WEFT_READY;
}

static void job_drop(void *state)
{
	struct job *j = state;
	node_drop(&j->n);
	free(j);
}

static void job_spawn(struct unit *u, uint64_t id, struct job_params p)
{
	struct job *j = malloc(sizeof(*j));
	if (!j)
		abort();
	node_init(&j->n, u, job_hash(id, p));
	j->yields = p.yields;
	j->work = p.work;
	weft_spawn_poll(load_rt, job_poll, j, job_drop, NULL); /* drop runs on error */
}

/* ---------------------------------------------------------------- skewed */

#define SKEW_MAX_YIELDS 4
#define SKEW_MIN_WORK 500
#define SKEW_MAX_WORK 4000

static uint64_t skew_size(uint64_t key) { return hrange(h2(key, 0), 256, 1024); }
static uint64_t skew_job_id(uint64_t key, uint64_t i) { return h2(key, i + 1); }

struct spawner {
	struct node n;
	uint64_t key;
};

static enum weft_poll spawner_poll(void *state, struct weft_cx *cx)
{
	struct spawner *s = state;
	uint64_t n = skew_size(s->key);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = skew_job_id(s->key, i);
		job_spawn(s->n.u, id, job_params(id, SKEW_MAX_YIELDS, SKEW_MIN_WORK, SKEW_MAX_WORK));
	}
	node_done(&s->n);
	return WEFT_READY;
}

static void spawner_drop(void *state)
{
	struct spawner *s = state;
	node_drop(&s->n);
	free(s);
}

static void skewed_start(struct unit *u)
{
	struct spawner *s = malloc(sizeof(*s));
	if (!s)
		abort();
	s->key = unit_key(T_SKEW, u->idx);
	node_init(&s->n, u, s->key);
	weft_spawn_poll(load_rt, spawner_poll, s, spawner_drop, NULL);
}

static void skewed_enumerate(uint64_t k, struct gsum *g)
{
	uint64_t key = unit_key(T_SKEW, k), n = skew_size(key);
	gsum_add(g, key);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = skew_job_id(key, i);
		gsum_add(g, job_hash(id, job_params(id, SKEW_MAX_YIELDS, SKEW_MIN_WORK, SKEW_MAX_WORK)));
	}
}

/* -------------------------------------------------------------- fork-join */

#define FJ_MAX_CHILDREN 3

static unsigned fj_children(uint64_t id, unsigned depth)
{
	return depth ? (unsigned)hrange(h2(id, 1), 2, FJ_MAX_CHILDREN) : 0;
}
static uint64_t fj_work(uint64_t id) { return hrange(h2(id, 2), 200, 2000); }
static uint64_t fj_hash(uint64_t id, unsigned depth)
{
	return h3(id, depth, fj_children(id, depth) * 100000 + fj_work(id));
}

struct fj {
	struct node n;
	uint64_t id;
	unsigned depth, nchild, joined;
	bool spawned;
	struct weft_task *child[FJ_MAX_CHILDREN];
};

static void fj_spawn(struct unit *u, uint64_t id, unsigned depth, struct weft_task **out);

static enum weft_poll fj_poll(void *state, struct weft_cx *cx)
{
	struct fj *f = state;
	if (!f->spawned) {
		f->spawned = true;
		f->nchild = fj_children(f->id, f->depth);
		for (unsigned i = 0; i < f->nchild; i++)
			fj_spawn(f->n.u, h2(f->id, 10 + i), f->depth - 1, &f->child[i]);
		spin(fj_work(f->id));
	}
	while (f->joined < f->nchild) {
		struct weft_task *c = f->child[f->joined];
		if (c && weft_join_poll(c, cx, NULL) == WEFT_PENDING)
			return WEFT_PENDING;
		f->child[f->joined++] = NULL;
	}
	node_done(&f->n);
	return WEFT_READY;
}

static void fj_drop(void *state)
{
	struct fj *f = state;
	for (unsigned i = f->joined; i < f->nchild; i++)
		if (f->child[i])
			weft_detach(f->child[i]); /* cancelled before joining them */
	node_drop(&f->n);
	free(f);
}

static void fj_spawn(struct unit *u, uint64_t id, unsigned depth, struct weft_task **out)
{
	struct fj *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->id = id;
	f->depth = depth;
	node_init(&f->n, u, fj_hash(id, depth));
	if (weft_spawn_poll(load_rt, fj_poll, f, fj_drop, out))
		*out = NULL;
}

static unsigned fj_depth(uint64_t key) { return (unsigned)hrange(h2(key, 0), 3, 6); }

static void fork_join_start(struct unit *u)
{
	uint64_t key = unit_key(T_FJ, u->idx);
	struct weft_task *t;
	fj_spawn(u, key, fj_depth(key), &t);
	if (t)
		weft_detach(t);
}

static void fj_enum(uint64_t id, unsigned depth, struct gsum *g)
{
	gsum_add(g, fj_hash(id, depth));
	unsigned n = fj_children(id, depth);
	for (unsigned i = 0; i < n; i++)
		fj_enum(h2(id, 10 + i), depth - 1, g);
}

static void fork_join_enumerate(uint64_t k, struct gsum *g)
{
	uint64_t key = unit_key(T_FJ, k);
	fj_enum(key, fj_depth(key), g);
}

/* ----------------------------------------------------------------- bursty */

static uint64_t burst_size(uint64_t key) { return hrange(h2(key, 0), 100, 1000); }
static uint64_t burst_job_id(uint64_t key, uint64_t i) { return h2(key, i + 1); }

static void bursty_start(struct unit *u)
{
	uint64_t key = unit_key(T_BURST, u->idx), n = burst_size(key);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = burst_job_id(key, i);
		job_spawn(u, id, job_params(id, 1, 200, 3000));
	}
}

static void bursty_enumerate(uint64_t k, struct gsum *g)
{
	uint64_t key = unit_key(T_BURST, k), n = burst_size(key);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = burst_job_id(key, i);
		gsum_add(g, job_hash(id, job_params(id, 1, 200, 3000)));
	}
}

/* Idle gap after burst k: 0.25..1.75 of the mean. */
static double bursty_gap(uint64_t k)
{
	return 0.25 + 1.5 * (double)(h3(load_seed, T_GAP, k) % 1000001) / 1000000.0;
}

/* -------------------------------------------------------------- ping-pong */

struct pp_pair {
	struct weft_chan *ab, *ba;
	atomic_int left; /* fibers still running */
	uint64_t rounds;
};

struct pp_fiber {
	struct node n;
	struct pp_pair *p;
	bool ping;
};

static uint64_t pp_rounds(uint64_t key) { return hrange(h2(key, 0), 50, 200); }
static uint64_t pp_hash(uint64_t key, bool ping) { return h3(key, ping, pp_rounds(key)); }

static void *pp_fiber_fn(void *arg)
{
	struct pp_fiber *f = arg;
	struct pp_pair *p = f->p;
	for (uint64_t r = 0; r < p->rounds; r++) {
		uint64_t x = r, y = 0;
		if (f->ping) {
			uint64_t t0 = weft_now_ns();
			if (weft_chan_send(p->ab, &x) || weft_chan_recv(p->ba, &y) || y != r + 1) {
				op_error();
				break;
			}
			op_record(weft_now_ns() - t0);
		} else {
			if (weft_chan_recv(p->ab, &y) || (y++, weft_chan_send(p->ba, &y))) {
				op_error();
				break;
			}
		}
	}
	/* Done (or failed): a partner still waiting gets -EPIPE, not a hang. */
	weft_chan_close(f->ping ? p->ab : p->ba);
	node_done(&f->n);
	free(f);
	if (atomic_fetch_sub_explicit(&p->left, 1, memory_order_acq_rel) == 1) {
		weft_chan_destroy(p->ab);
		weft_chan_destroy(p->ba);
		free(p);
	}
	return NULL;
}

static void ping_pong_start(struct unit *u)
{
	uint64_t key = unit_key(T_PP, u->idx);
	struct pp_pair *p = calloc(1, sizeof(*p));
	if (!p || weft_chan_create(sizeof(uint64_t), 1, &p->ab) ||
	    weft_chan_create(sizeof(uint64_t), 1, &p->ba))
		abort();
	p->rounds = pp_rounds(key);
	atomic_init(&p->left, 2);
	for (int i = 0; i < 2; i++) {
		struct pp_fiber *f = malloc(sizeof(*f));
		if (!f)
			abort();
		f->p = p;
		f->ping = i == 0;
		node_init(&f->n, u, pp_hash(key, f->ping));
		if (weft_spawn(load_rt, pp_fiber_fn, f, NULL)) {
			/* shutting down: fn never runs */
			node_drop(&f->n);
			free(f);
			weft_chan_close(p->ab);
			weft_chan_close(p->ba);
			if (atomic_fetch_sub_explicit(&p->left, 1, memory_order_acq_rel) == 1) {
				weft_chan_destroy(p->ab);
				weft_chan_destroy(p->ba);
				free(p);
			}
		}
	}
}

static void ping_pong_enumerate(uint64_t k, struct gsum *g)
{
	uint64_t key = unit_key(T_PP, k);
	gsum_add(g, pp_hash(key, true));
	gsum_add(g, pp_hash(key, false));
}

/* ----------------------------------------------------------------- timers */

static unsigned timer_count(uint64_t key) { return (unsigned)hrange(h2(key, 0), 1, 5); }
static uint64_t timer_ns(uint64_t key, unsigned i)
{
	return hrange(h2(key, 100 + i), 100 * 1000, 3000 * 1000);
}
static uint64_t timer_hash(uint64_t key)
{
	uint64_t h = key;
	unsigned n = timer_count(key);
	for (unsigned i = 0; i < n; i++)
		h = h2(h, timer_ns(key, i));
	return h;
}

struct sleeper {
	struct node n;
	struct weft_timer t;
	uint64_t key, deadline;
	unsigned i, count;
};

static enum weft_poll sleeper_poll(void *state, struct weft_cx *cx)
{
	struct sleeper *s = state;
	while (s->i < s->count) {
		if (!s->deadline)
			s->deadline = weft_now_ns() + timer_ns(s->key, s->i);
		if (weft_timer_poll(&s->t, cx, s->deadline) == WEFT_PENDING)
			return WEFT_PENDING;
		op_record(weft_now_ns() - s->deadline); /* lateness */
		s->deadline = 0;
		s->i++;
	}
	node_done(&s->n);
	return WEFT_READY;
}

static void sleeper_drop(void *state)
{
	struct sleeper *s = state;
	if (!s->n.done)
		weft_timer_cancel(&s->t);
	node_drop(&s->n);
	free(s);
}

static void timers_start(struct unit *u)
{
	struct sleeper *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->key = unit_key(T_TIMER, u->idx);
	s->count = timer_count(s->key);
	node_init(&s->n, u, timer_hash(s->key));
	weft_spawn_poll(load_rt, sleeper_poll, s, sleeper_drop, NULL);
}

static void timers_enumerate(uint64_t k, struct gsum *g)
{
	gsum_add(g, timer_hash(unit_key(T_TIMER, k)));
}

/* --------------------------------------------------------------- blocking */


enum { BLK_CPU, BLK_IN_PLACE, BLK_POOL };

static uint64_t blk_size(uint64_t key) { return hrange(h2(key, 0), 8, 32); }
static unsigned blk_kind(uint64_t id)
{
	uint64_t r = h2(id, 1) % 100;
	return r < 20 ? BLK_IN_PLACE : r < 40 ? BLK_POOL : BLK_CPU;
}
static uint64_t blk_amount(uint64_t id)
{
	return blk_kind(id) == BLK_CPU ? hrange(h2(id, 2), 1000, 20000)
				       : hrange(h2(id, 2), 200 * 1000, 2000 * 1000);
}
static uint64_t blk_hash(uint64_t id) { return h3(id, blk_kind(id), blk_amount(id)); }

struct blk {
	struct node n;
	uint64_t id;
};

static void *blk_sleep(void *arg)
{
	uint64_t ns = (uint64_t)(uintptr_t)arg;
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	/* the whole amount even across a signal: a sleep cut short made the
	 * recorded delay (now - t0 - amount) wrap to ~1.8e19 ns */
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	return arg;
}

static void *blk_fiber_fn(void *arg)
{
	struct blk *b = arg;
	uint64_t amount = blk_amount(b->id), t0 = weft_now_ns();
	void *res = NULL;
	struct weft_task *t;
	switch (blk_kind(b->id)) {
	case BLK_CPU:
		spin(amount);
		break;
	case BLK_IN_PLACE:
		if (weft_block_in_place(blk_sleep, (void *)(uintptr_t)amount, &res) ||
		    res != (void *)(uintptr_t)amount)
			op_error();
		else
			op_record(weft_now_ns() - t0 - amount);
		break;
	case BLK_POOL:
		if (weft_spawn_blocking(load_rt, blk_sleep, (void *)(uintptr_t)amount, &t) ||
		    weft_join(t, &res) || res != (void *)(uintptr_t)amount)
			op_error();
		else
			op_record(weft_now_ns() - t0 - amount);
		break;
	}
	node_done(&b->n);
	free(b);
	return NULL;
}

static void blocking_start(struct unit *u)
{
	uint64_t key = unit_key(T_BLOCK, u->idx), n = blk_size(key);
	for (uint64_t i = 0; i < n; i++) {
		struct blk *b = malloc(sizeof(*b));
		if (!b)
			abort();
		b->id = h2(key, i + 1);
		node_init(&b->n, u, blk_hash(b->id));
		if (weft_spawn(load_rt, blk_fiber_fn, b, NULL)) {
			node_drop(&b->n);
			free(b);
		}
	}
}

static void blocking_enumerate(uint64_t k, struct gsum *g)
{
	uint64_t key = unit_key(T_BLOCK, k), n = blk_size(key);
	for (uint64_t i = 0; i < n; i++)
		gsum_add(g, blk_hash(h2(key, i + 1)));
}

/* ------------------------------------------------------------------- echo */

static struct weft_io *echo_listener;
static uint16_t echo_port;
static atomic_long echo_conns; /* server connections (and the accept loop) alive */
static bool echo_ready;

static void set_sockopts(struct weft_io *io, bool client)
{
	int fd = weft_io_fd(io), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (client) {
		/* Close with RST: no TIME_WAIT, so thousands of short connections
		 * per second do not run out of local ports. */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
}

static void *echo_conn_fn(void *arg)
{
	struct weft_io *c = arg;
	char buf[4096];
	set_sockopts(c, false);
	for (;;) {
		ssize_t n = weft_read(c, buf, sizeof(buf));
		if (n <= 0 || weft_write(c, buf, (size_t)n) != n)
			break;
	}
	weft_io_close(c);
	atomic_fetch_sub_explicit(&echo_conns, 1, memory_order_release); /* pairs with echo_drained */
	return NULL;
}

static void *echo_accept_fn(void *arg)
{
	for (;;) {
		struct weft_io *c;
		int rc = weft_accept(echo_listener, &c, NULL, NULL);
		/* -ECANCELED: shutdown cancelled this fiber; every later wait,
		 * the sleep below included, says so at once: the loop spun
		 * to the shutdown's limit (weft.h: a cancelled fiber returns) */
		if (rc == -EBADF || rc == -ESHUTDOWN || rc == -ECANCELED)
			break;
		if (rc) {
			/* Out of fds or memory (a --concurrency past ulimit -n)
			 * the error repeats at once until a connection ends: the
			 * loop spun its worker, and counted millions of errors,
			 * while the clients waited. Wait 50 ms for one, 1 ms after
			 * any other error (found by a review). */
			op_error();
			weft_sleep_ns(rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM
					      ? 50000000
					      : 1000000);
			continue;
		}
		atomic_fetch_add_explicit(&echo_conns, 1, memory_order_relaxed);
		if (weft_spawn(load_rt, echo_conn_fn, c, NULL)) {
			weft_io_close(c);
			atomic_fetch_sub_explicit(&echo_conns, 1, memory_order_release);
		}
	}
	atomic_fetch_sub_explicit(&echo_conns, 1, memory_order_release);
	return NULL;
}

static int echo_setup(void)
{
	if (echo_ready)
		return 0;
	int rc = weft_tcp_listen(load_rt, "127.0.0.1", 0, 1024, &echo_listener);
	if (rc) {
		fprintf(stderr, "weft-load: echo: listen on 127.0.0.1: %s\n", weft_strerror(rc));
		return rc;
	}
	rc = weft_io_local_port(echo_listener);
	if (rc <= 0) {
		fprintf(stderr, "weft-load: echo: local port: %s\n", weft_strerror(rc));
		return rc ? rc : -EINVAL;
	}
	echo_port = (uint16_t)rc;
	atomic_store_explicit(&echo_conns, 1, memory_order_relaxed);
	rc = weft_spawn(load_rt, echo_accept_fn, NULL, NULL);
	if (rc) {
		fprintf(stderr, "weft-load: echo: spawn accept loop: %s\n", weft_strerror(rc));
		return rc;
	}
	echo_ready = true;
	return 0;
}

static void echo_teardown(void)
{
	if (echo_ready)
		weft_io_close(echo_listener); /* the accept loop gets -EBADF */
	echo_ready = false;
}

static bool echo_drained(void)
{
	return atomic_load_explicit(&echo_conns, memory_order_acquire) <= 0;
}

static unsigned echo_msgs(uint64_t key) { return (unsigned)hrange(h2(key, 0), 8, 32); }
static size_t echo_len(uint64_t key, unsigned m) { return hrange(h2(key, 100 + m), 16, 2048); }
static uint64_t echo_hash(uint64_t key)
{
	uint64_t h = key;
	unsigned n = echo_msgs(key);
	for (unsigned m = 0; m < n; m++)
		h = h2(h, echo_len(key, m));
	return h;
}

struct echo_client {
	struct node n;
	uint64_t key;
};

static void *echo_client_fn(void *arg)
{
	struct echo_client *e = arg;
	struct weft_io *c;
	char out[2048], in[2048];
	int rc = weft_tcp_connect(load_rt, "127.0.0.1", echo_port, &c);
	if (rc) {
		op_error();
		goto done;
	}
	set_sockopts(c, true);
	unsigned n = echo_msgs(e->key);
	for (unsigned m = 0; m < n; m++) {
		size_t len = echo_len(e->key, m), got = 0;
		memset(out, (int)(e->key + m), len);
		uint64_t t0 = weft_now_ns();
		if (weft_write(c, out, len) != (ssize_t)len) {
			op_error(); /* a failed write is a failed op (it ended the unit as done) */
			break;
		}
		while (got < len) {
			ssize_t r = weft_read(c, in + got, len - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != len || memcmp(in, out, len)) {
			op_error();
			break;
		}
		op_record(weft_now_ns() - t0);
	}
	weft_io_close(c);
done:
	node_done(&e->n);
	free(e);
	return NULL;
}

static void echo_start(struct unit *u)
{
	struct echo_client *e = malloc(sizeof(*e));
	if (!e)
		abort();
	e->key = unit_key(T_ECHO, u->idx);
	node_init(&e->n, u, echo_hash(e->key));
	if (weft_spawn(load_rt, echo_client_fn, e, NULL)) {
		node_drop(&e->n);
		free(e);
	}
}

static void echo_enumerate(uint64_t k, struct gsum *g)
{
	gsum_add(g, echo_hash(unit_key(T_ECHO, k)));
}

/* ------------------------------------------------------------------ mixed */

static const struct shape sh_skewed, sh_fork_join, sh_bursty, sh_ping_pong, sh_timers,
	sh_blocking, sh_echo;
static const struct shape *const mix_of[] = {
	&sh_skewed, &sh_fork_join, &sh_bursty, &sh_ping_pong, &sh_timers, &sh_echo, &sh_blocking,
};
#define MIX_N (sizeof(mix_of) / sizeof(mix_of[0]))

static const struct shape *mix_pick(uint64_t k)
{
	return mix_of[h3(load_seed, T_MIX, k) % MIX_N];
}

static void mixed_start(struct unit *u) { mix_pick(u->idx)->start(u); }
static void mixed_enumerate(uint64_t k, struct gsum *g) { mix_pick(k)->enumerate(k, g); }

/* ----------------------------------------------------------------- table */

static const struct shape sh_skewed = {
	.name = "skewed", .default_conc = 1,
	.help = "a task spawns 256..1024 CPU jobs on its worker; the others steal",
	.start = skewed_start, .enumerate = skewed_enumerate,
};
static const struct shape sh_fork_join = {
	.name = "fork-join", .default_conc = 2,
	.help = "recursive fan-out/fan-in tree, parents join children",
	.start = fork_join_start, .enumerate = fork_join_enumerate,
};
static const struct shape sh_bursty = {
	.name = "bursty", .open_loop = true, .default_rate = 20,
	.help = "bursts of 100..1000 jobs from an outside thread, idle gaps between",
	.start = bursty_start, .enumerate = bursty_enumerate, .gap = bursty_gap,
};
static const struct shape sh_ping_pong = {
	.name = "ping-pong", .default_conc = 32,
	.help = "pairs of fibers passing a counter over two channels",
	.ops_name = "round trips", .op_latency = "ping-pong round trip",
	.start = ping_pong_start, .enumerate = ping_pong_enumerate,
};
static const struct shape sh_timers = {
	.name = "timers", .default_conc = 512,
	.help = "tasks sleeping 1..5 times for 0.1..3 ms",
	.ops_name = "timer firings", .op_latency = "timer lateness (fired - deadline)",
	.start = timers_start, .enumerate = timers_enumerate,
};
static const struct shape sh_blocking = {
	.name = "blocking", .default_conc = 8,
	.help = "fibers of which 40% block (block_in_place / spawn_blocking)",
	.ops_name = "blocking calls", .op_latency = "blocking-call overhead (elapsed - sleep)",
	.start = blocking_start, .enumerate = blocking_enumerate,
};
static const struct shape sh_echo = {
	.name = "echo", .default_conc = 16,
	.help = "TCP clients against an in-process echo server on 127.0.0.1",
	.ops_name = "echoed messages", .op_latency = "message round trip",
	.setup = echo_setup, .teardown = echo_teardown, .drained = echo_drained,
	.start = echo_start, .enumerate = echo_enumerate,
};
static const struct shape sh_mixed = {
	.name = "mixed", .default_conc = 8,
	.help = "each unit one of the shapes above, chosen by the seed",
	.ops_name = "ops", .op_latency = "op latency (all kinds)",
	.setup = echo_setup, .teardown = echo_teardown, .drained = echo_drained,
	.start = mixed_start, .enumerate = mixed_enumerate,
};

const struct shape *const load_shapes[] = {
	&sh_skewed, &sh_fork_join, &sh_bursty, &sh_ping_pong, &sh_timers,
	&sh_blocking, &sh_echo, &sh_mixed, NULL,
};
