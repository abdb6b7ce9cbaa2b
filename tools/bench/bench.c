/*
 * bench.c - weft-bench: the scheduler benchmarks of ../shared/design/BENCHMARKS.md.
 *
 *     weft-bench BENCH ITERATIONS [WORKERS]
 *     weft-bench list
 *
 * One case per process. The runtime is created once with WORKERS workers
 * (default 2); the process's main thread stays outside the runtime and
 * drives. Background tasks (busy cases) are started before the PEER_WARMUP
 * (default 1) untimed warm-up batches and stopped after the last timed
 * batch. Each timed batch is one sample of monotonic wall time;
 * getrusage(RUSAGE_SELF) is read just before the first and just after the
 * last timed batch. stdout gets exactly one line:
 *
 *   weft <bench> <workers> median_ns_per_batch=N min=N max=N mean=N p10=N
 *   p90=N iters=N cpu_ns_per_batch=N user_ns_per_batch=N sys_ns_per_batch=N
 *   cpu_util=X.XX vcsw_per_batch=N ivcsw_per_batch=N ops_per_batch=N
 *
 * ops_per_batch is the case's own count of operations in one batch (the
 * `ops` of its table entry), so scripts that print ns per op divide by the
 * number the case ran, never by a copy of it.
 *
 * stderr gets the cross-core cache-line round trip (`# rtt_ns=N`) measured
 * before the runtime is created and after it is destroyed, so figures taken
 * while the host slows cross-core traffic can be told apart.
 *
 * Cases are written with poll tasks; the `*_fiber` cases do the same work
 * with fiber tasks (weft_spawn) and the blocking-style calls. Shared state
 * the tasks touch lives in `g`, each contended word on its own cache line.
 *
 * fiber_rss is a memory measurement rather than a speed one: each batch
 * suspends 1,000,000 fibers (64 KiB stacks) on a waitgroup, reads the
 * resident set from /proc/self/statm and the mapping count, then releases
 * them; stderr gets `# fiber_rss ...` with the figures, the creation time
 * (first spawn to the last fiber suspended) among them, and RSS after
 * release read once it has stopped falling for 600 ms (settle_s: how long
 * after the last fiber finished). Stacks share slab mappings, so the
 * default vm.max_map_count is enough.
 *
 * fiber_exit_storm: each batch suspends 30,000 fibers on a gate, opens it;
 * each sleeps 50 ms and exits, all at about the same time. stderr gets
 * `# fiber_exit_storm ...`: the median (and p99) over the fibers of how
 * late each wake-up was, and the kernel CPU (getrusage) from the release
 * to 100 ms after the last exit (the idle workers' trim, which gives the
 * stacks' pages back, included) divided by the fibers, each the median
 * over batches.
 */
#include <weft/weft.h>

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CACHE_LINE 64
#define NUM_SPAWN 10000u        /* spawn_many_*, remote_idle, remote_busy */
#define NUM_SPAWN_BUSY2 1000u   /* spawn_many_remote_busy2 */
#define YIELD_TASKS 200u        /* yield_many */
#define NUM_YIELD 1000u         /* yield_many */
#define CHAIN_DEPTH 1000u       /* chained_spawn */
#define NUM_PINGS 1000u         /* ping_pong */
#define FANOUT_PRODUCERS 64u    /* fanout_mpsc */
#define FANOUT_ITEMS 10000u     /* fanout_mpsc: per producer */
#define FANOUT_CAPACITY 1024u   /* fanout_mpsc */
#define NUM_TIMERS 10000u       /* timers, timers_fiber */
#define TIMER_SLEEP_NS 1000000u /* timers: 1 ms */
#define CTX_YIELDS 100000u      /* ctx_switch_fiber: yields per batch */
#define RSS_FIBERS 1000000u     /* fiber_rss */
#define NUM_BIP 10000u          /* block_in_place: calls per batch */
#define STORM_FIBERS 30000u     /* fiber_exit_storm */
#define STORM_SLEEP_NS 50000000u /* fiber_exit_storm: 50 ms */
#define FIBER_STACK (64u << 10) /* fiber_stack_size of every case (the default) */
#define STALL_NS 10000u         /* stall(): 10 us */
#define RTT_NS 50000000u        /* round-trip probe: 50 ms */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

/* ------------------------------------------------------------- utilities */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Fatal error, callable from any thread (workers included): no atexit. */
__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("weft-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stdout);
	_exit(1);
}

#define CHECK(call)                                                          \
	do {                                                                 \
		int rc_ = (call);                                            \
		if (__builtin_expect(rc_ != 0, 0))                           \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #call,      \
			    weft_strerror(rc_));                             \
	} while (0)

/* BENCHMARKS.md: read the monotonic clock, then sched_yield() until 10 us
 * have passed. */
static void stall(void)
{
	uint64_t t0 = now_ns();

	while (now_ns() - t0 < STALL_NS)
		sched_yield();
}

/*
 * One-shot signal for the main thread. word: 0 = not set, 1 = main sleeps
 * on it, 2 = set. set() is one exchange, plus a FUTEX_WAKE only when main is
 * actually asleep. wait() spins briefly, then announces itself with 0 -> 1
 * and sleeps while the word is 1; FUTEX_WAIT compares the word atomically in
 * the kernel, so a set() between the CAS and the sleep is not lost. Only
 * the main thread waits and resets; at most one set() per reset.
 */
struct signal {
	_Alignas(CACHE_LINE) _Atomic uint32_t word;
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
	return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static void signal_reset(struct signal *s)
{
	/* Relaxed: the spawn that follows publishes it to the tasks. */
	atomic_store_explicit(&s->word, 0, memory_order_relaxed);
}

static void signal_set(struct signal *s)
{
	/* acq_rel: the release half pairs with the acquire loads in
	 * signal_wait(); the acquire half pairs with the waiter's CAS, so the
	 * value 1 seen here means the waiter is (about to be) in FUTEX_WAIT. */
	if (atomic_exchange_explicit(&s->word, 2, memory_order_acq_rel) == 1)
		futex(&s->word, FUTEX_WAKE_PRIVATE, 1);
}

static void signal_wait(struct signal *s)
{
	for (int i = 0; i < 128; i++) {
		/* acquire: pairs with the exchange in signal_set(). */
		if (atomic_load_explicit(&s->word, memory_order_acquire) == 2)
			return;
		cpu_relax();
	}
	uint32_t expect = 0;
	/* acq_rel CAS: pairs with the exchange in signal_set(). */
	if (!atomic_compare_exchange_strong_explicit(&s->word, &expect, 1,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		if (expect == 2)
			return;
	}
	/* acquire: pairs with the exchange in signal_set(). */
	while (atomic_load_explicit(&s->word, memory_order_acquire) != 2)
		futex(&s->word, FUTEX_WAIT_PRIVATE, 1); /* EAGAIN/EINTR: re-check */
}

/* --------------------------------------------------------- shared state */

struct bg_state { /* one background task of spawn_many_remote_busy */
	_Alignas(CACHE_LINE) bool yielded;
};

/* ping_pong: task A and its partner B; reused by every batch (the last A
 * signals main only after every B has sent, and B touches nothing of its
 * state after its send). */
struct pp_b {
	struct weft_oneshot *rx1, *tx2;
	struct weft_wait w;
};

struct pp_a {
	_Alignas(CACHE_LINE) struct weft_oneshot *rx2;
	bool started;
	struct weft_wait w;
	struct pp_b b;
};

/* ping_pong_fiber: the two oneshots of one pair, set by A before it spawns B. */
struct ppf {
	_Alignas(CACHE_LINE) struct weft_oneshot *o1, *o2;
};

/* timers: one task's state. */
struct tm_state {
	struct weft_timer t;
	uint64_t deadline; /* 0 until the first poll */
};

/* fanout_mpsc: one producer. */
struct fan_producer {
	_Alignas(CACHE_LINE) uint64_t next;
	struct weft_wait w;
};

static struct {
	struct weft_runtime *rt;
	int workers;

	/* Countdown: the task that takes it from 1 to 0 sets `done`. */
	_Alignas(CACHE_LINE) _Atomic uint32_t remaining;
	struct signal done;

	/* Background work of the busy cases: runs while `flag` is set. */
	_Alignas(CACHE_LINE) _Atomic bool flag;
	_Alignas(CACHE_LINE) _Atomic uint32_t chains_alive;
	struct signal chains_done;

	/* Allocated once in setup, reused by every batch. */
	_Alignas(CACHE_LINE) struct weft_task **handles;
	struct weft_task **bg_handles;
	struct bg_state *bg;
	unsigned n_bg;
	uint32_t *yield_left; /* yield_many: one counter per task */
	struct pp_a *pp;      /* ping_pong: NUM_PINGS pairs */
	struct ppf *ppf;      /* ping_pong_fiber: NUM_PINGS pairs */
	struct tm_state *tm;  /* timers: NUM_TIMERS states */

	/* fiber_rss */
	struct weft_waitgroup *gate;
	_Alignas(CACHE_LINE) _Atomic uint32_t suspended;
	uint64_t rss_base, rss_peak, rss_after; /* bytes */
	uint64_t create_ns;   /* slowest batch: first spawn to all suspended */
	uint64_t settle_ns;   /* last batch: all finished to RSS flat */
	long maps_base, maps_peak;

	/* fiber_exit_storm */
	uint64_t *storm_late;   /* STORM_FIBERS lateness samples (ns), one batch */
	uint64_t *storm_median; /* per batch */
	uint64_t *storm_p99;
	uint64_t *storm_sys;    /* per batch: kernel CPU from release to the last exit */
	unsigned storm_batches, storm_cap;

	/* fanout_mpsc */
	struct weft_chan *chan;
	struct fan_producer *fan;
	_Alignas(CACHE_LINE) struct weft_wait fan_w; /* the consumer's */
	uint64_t fan_count, fan_sum;                  /* consumer-only until done */
} g;

static void countdown(void)
{
	/* acq_rel: each task's release publishes its accesses to per-task state
	 * (yield_left[], reused by the next batch); the last task's acquire
	 * gathers them and its signal_set() hands them to main. Free on x86. */
	if (atomic_fetch_sub_explicit(&g.remaining, 1, memory_order_acq_rel) == 1)
		signal_set(&g.done);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p)
		die("out of memory");
	return p;
}

/* ------------------------------------------------------------ poll tasks */

static enum weft_poll task_empty(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

static enum weft_poll task_countdown(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	countdown();
	return WEFT_READY;
}

/* spawn_many_local_worker: all 10,000 spawns from one worker-side poll. */
static enum weft_poll task_spawner(void *state, struct weft_cx *cx)
{
	struct weft_runtime *rt = weft_cx_runtime(cx);

	(void)state;

	for (unsigned i = 0; i < NUM_SPAWN; i++)
		CHECK(weft_spawn_poll(rt, task_countdown, NULL, NULL, NULL));
	return WEFT_READY;
}

/* spawn_many_remote_busy: while (flag) { yield; stall(); } */
static enum weft_poll task_busy_loop(void *state, struct weft_cx *cx)
{
	struct bg_state *st = state;

	if (st->yielded)
		stall();
	if (!atomic_load_explicit(&g.flag, memory_order_relaxed))
		return WEFT_READY;
	st->yielded = true;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* spawn_many_remote_busy2: one link of a chain. While the flag is set,
 * stall, then spawn the successor from the worker (LIFO slot). */
static enum weft_poll task_busy_link(void *state, struct weft_cx *cx)
{
	(void)state;
	if (!atomic_load_explicit(&g.flag, memory_order_relaxed)) {
		/* Relaxed: the signal carries the ordering. */
		if (atomic_fetch_sub_explicit(&g.chains_alive, 1,
					      memory_order_relaxed) == 1)
			signal_set(&g.chains_done);
		return WEFT_READY;
	}
	stall();
	CHECK(weft_spawn_poll(weft_cx_runtime(cx), task_busy_link, NULL, NULL,
			      NULL));
	return WEFT_READY;
}

/* yield_many: yield NUM_YIELD times, then count down. */
static enum weft_poll task_yielder(void *state, struct weft_cx *cx)
{
	uint32_t *left = state;

	if (*left == 0) {
		countdown();
		return WEFT_READY;
	}
	--*left;
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* chained_spawn: the state is the remaining depth, stored in the pointer. */
static enum weft_poll task_chain(void *state, struct weft_cx *cx)
{
	uintptr_t n = (uintptr_t)state;

	if (n == 0)
		signal_set(&g.done);
	else
		CHECK(weft_spawn_poll(weft_cx_runtime(cx), task_chain,
				      (void *)(n - 1), NULL, NULL));
	return WEFT_READY;
}

/* ping_pong B: await the first oneshot, then send on the second. */
static enum weft_poll task_pp_b(void *state, struct weft_cx *cx)
{
	struct pp_b *b = state;
	void *v;
	int rc = weft_oneshot_recv_poll(b->rx1, &b->w, cx, &v);

	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	CHECK(rc);
	CHECK(weft_oneshot_send(b->tx2, NULL));
	return WEFT_READY;
}

/* ping_pong A: make two oneshots, spawn B, send on the first, await the
 * second; the last A to finish signals main. */
static enum weft_poll task_pp_a(void *state, struct weft_cx *cx)
{
	struct pp_a *a = state;
	void *v;

	if (!a->started) {
		struct weft_oneshot *o1, *o2;

		a->started = true;
		CHECK(weft_oneshot_create(NULL, &o1));
		CHECK(weft_oneshot_create(NULL, &o2));
		a->b.rx1 = o1;
		a->b.tx2 = o2;
		a->rx2 = o2;
		CHECK(weft_spawn_poll(weft_cx_runtime(cx), task_pp_b, &a->b, NULL, NULL));
		CHECK(weft_oneshot_send(o1, NULL));
	}
	int rc = weft_oneshot_recv_poll(a->rx2, &a->w, cx, &v);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	CHECK(rc);
	countdown();
	return WEFT_READY;
}

static enum weft_poll task_pp_root(void *state, struct weft_cx *cx)
{
	(void)state;
	for (unsigned i = 0; i < NUM_PINGS; i++) {
		g.pp[i].started = false;
		CHECK(weft_spawn_poll(weft_cx_runtime(cx), task_pp_a, &g.pp[i], NULL, NULL));
	}
	return WEFT_READY;
}

/* fanout_mpsc producer: send 1..FANOUT_ITEMS. */
static enum weft_poll task_fan_producer(void *state, struct weft_cx *cx)
{
	struct fan_producer *p = state;

	while (p->next <= FANOUT_ITEMS) {
		int rc = weft_chan_send_poll(g.chan, &p->w, cx, &p->next);

		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		CHECK(rc);
		p->next++;
	}
	countdown(); /* last touch of *p: the next batch may reuse it */
	return WEFT_READY;
}

/* fanout_mpsc consumer: receive every item, then count down. */
static enum weft_poll task_fan_consumer(void *state, struct weft_cx *cx)
{
	(void)state;
	while (g.fan_count < (uint64_t)FANOUT_PRODUCERS * FANOUT_ITEMS) {
		uint64_t x;
		int rc = weft_chan_recv_poll(g.chan, &g.fan_w, cx, &x);

		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		CHECK(rc);
		g.fan_count++;
		g.fan_sum += x;
	}
	countdown();
	return WEFT_READY;
}

/* timers: sleep 1 ms (deadline taken at the first poll), then count down. */
static enum weft_poll task_timer(void *state, struct weft_cx *cx)
{
	struct tm_state *s = state;

	if (s->deadline == 0)
		s->deadline = weft_now_ns() + TIMER_SLEEP_NS;
	if (weft_timer_poll(&s->t, cx, s->deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	countdown();
	return WEFT_READY;
}

/* ---------------------------------------------------------------- fibers */

static void *fiber_countdown(void *arg)
{
	(void)arg;
	countdown();
	return NULL;
}

/* spawn_many_local_worker_fiber: one fiber spawns the 10,000 countdown
 * fibers (Go's spawn_many_local spawns from its main goroutine, which runs
 * on a P as this fiber runs on a worker) */
static void *fiber_spawner(void *arg)
{
	(void)arg;
	struct weft_runtime *rt = weft_runtime_current();
	for (unsigned i = 0; i < NUM_SPAWN; i++)
		CHECK(weft_spawn(rt, fiber_countdown, NULL, NULL));
	return NULL;
}

/* yield_many_fiber: weft_yield NUM_YIELD times, then count down. */
static void *fiber_yielder(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < NUM_YIELD; i++)
		CHECK(weft_yield());
	countdown();
	return NULL;
}

/* ctx_switch_fiber: the only fiber on a one-worker runtime yields
 * CTX_YIELDS times: each weft_yield is one switch out to the worker's
 * scheduler loop, one requeue, one switch back in. */
static void *fiber_ctx_switch(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < CTX_YIELDS; i++)
		CHECK(weft_yield());
	signal_set(&g.done);
	return NULL;
}

/* ping_pong_fiber B: blocking recv on the first oneshot, send on the
 * second. Its last touch of *p is reading p->o2 before the send. */
static void *fiber_pp_b(void *arg)
{
	struct ppf *p = arg;
	struct weft_oneshot *o2 = p->o2;
	void *v;

	CHECK(weft_oneshot_recv(p->o1, &v));
	CHECK(weft_oneshot_send(o2, NULL));
	return NULL;
}

/* ping_pong_fiber A: make two oneshots, spawn B, send on the first, block
 * on the second; the last A to finish signals main. */
static void *fiber_pp_a(void *arg)
{
	struct ppf *p = arg;
	struct weft_oneshot *o1, *o2;
	void *v;

	CHECK(weft_oneshot_create(NULL, &o1));
	CHECK(weft_oneshot_create(NULL, &o2));
	p->o1 = o1;
	p->o2 = o2;
	CHECK(weft_spawn(g.rt, fiber_pp_b, p, NULL));
	CHECK(weft_oneshot_send(o1, NULL));
	CHECK(weft_oneshot_recv(o2, &v));
	countdown();
	return NULL;
}

static void *fiber_pp_root(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < NUM_PINGS; i++)
		CHECK(weft_spawn(g.rt, fiber_pp_a, &g.ppf[i], NULL));
	return NULL;
}

/* timers_fiber: weft_sleep_ns(1 ms), then count down. */
static void *fiber_timer(void *arg)
{
	(void)arg;
	CHECK(weft_sleep_ns(TIMER_SLEEP_NS));
	countdown();
	return NULL;
}

/* fiber_rss: announce, then suspend on the gate until main opens it. */
static void *fiber_gated(void *arg)
{
	(void)arg;
	/* Relaxed: main only counts; the 20 ms it then sleeps lets the last
	 * fibers finish suspending. */
	atomic_fetch_add_explicit(&g.suspended, 1, memory_order_relaxed);
	CHECK(weft_waitgroup_wait(g.gate));
	countdown();
	return NULL;
}

/* fiber_exit_storm: wait for the gate, sleep 50 ms, note how late the
 * wake-up was, exit. */
static void *fiber_storm(void *arg)
{
	uint64_t *late = arg;
	atomic_fetch_add_explicit(&g.suspended, 1, memory_order_relaxed);
	CHECK(weft_waitgroup_wait(g.gate));
	uint64_t due = now_ns() + STORM_SLEEP_NS;
	CHECK(weft_sleep_ns(STORM_SLEEP_NS));
	uint64_t t = now_ns();
	*late = t > due ? t - due : 0;
	countdown();
	return NULL;
}

/* ----------------------------------------------------------------- cases */

static void batch_spawn_many_local(void)
{
	atomic_store_explicit(&g.remaining, NUM_SPAWN, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < NUM_SPAWN; i++)
		CHECK(weft_spawn_poll(g.rt, task_countdown, NULL, NULL, NULL));
	signal_wait(&g.done);
}

static void batch_spawn_many_local_worker(void)
{
	atomic_store_explicit(&g.remaining, NUM_SPAWN, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn_poll(g.rt, task_spawner, NULL, NULL, NULL));
	signal_wait(&g.done);
}

static void spawn_join(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		CHECK(weft_spawn_poll(g.rt, task_empty, NULL, NULL,
				      &g.handles[i]));
	for (unsigned i = 0; i < n; i++)
		CHECK(weft_join(g.handles[i], NULL));
}

static void setup_handles(void)
{
	g.handles = xcalloc(NUM_SPAWN, sizeof(*g.handles));
}

static void batch_remote_10k(void)
{
	spawn_join(NUM_SPAWN);
}

static void batch_remote_1k(void)
{
	spawn_join(NUM_SPAWN_BUSY2);
}

static void setup_remote_busy(void)
{
	setup_handles();
	g.n_bg = 2u * (unsigned)g.workers;
	g.bg = xcalloc(g.n_bg, sizeof(*g.bg));
	g.bg_handles = xcalloc(g.n_bg, sizeof(*g.bg_handles));
	atomic_store_explicit(&g.flag, true, memory_order_relaxed);
	for (unsigned i = 0; i < g.n_bg; i++)
		CHECK(weft_spawn_poll(g.rt, task_busy_loop, &g.bg[i], NULL,
				      &g.bg_handles[i]));
}

static void teardown_remote_busy(void)
{
	atomic_store_explicit(&g.flag, false, memory_order_relaxed);
	for (unsigned i = 0; i < g.n_bg; i++)
		CHECK(weft_join(g.bg_handles[i], NULL));
}

static void setup_remote_busy2(void)
{
	setup_handles();
	atomic_store_explicit(&g.flag, true, memory_order_relaxed);
	atomic_store_explicit(&g.chains_alive, (uint32_t)g.workers,
			      memory_order_relaxed);
	signal_reset(&g.chains_done);
	for (int i = 0; i < g.workers; i++)
		CHECK(weft_spawn_poll(g.rt, task_busy_link, NULL, NULL, NULL));
}

static void teardown_remote_busy2(void)
{
	atomic_store_explicit(&g.flag, false, memory_order_relaxed);
	signal_wait(&g.chains_done); /* every chain has ended */
}

static void setup_yield_many(void)
{
	g.yield_left = xcalloc(YIELD_TASKS, sizeof(*g.yield_left));
}

static void batch_yield_many(void)
{
	atomic_store_explicit(&g.remaining, YIELD_TASKS, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < YIELD_TASKS; i++) {
		g.yield_left[i] = NUM_YIELD;
		CHECK(weft_spawn_poll(g.rt, task_yielder, &g.yield_left[i],
				      NULL, NULL));
	}
	signal_wait(&g.done); /* all 200 tasks have signalled */
}

static void batch_chained_spawn(void)
{
	signal_reset(&g.done);
	CHECK(weft_spawn_poll(g.rt, task_chain, (void *)(uintptr_t)CHAIN_DEPTH,
			      NULL, NULL));
	signal_wait(&g.done);
}

/* block_in_place: one call per poll (a call hands the core over and the
 * rest of that poll runs without one), fn empty; the task wakes itself
 * for the next. */
static void *bip_empty(void *arg) { return arg; }

static enum weft_poll task_bip(void *state, struct weft_cx *cx)
{
	uint32_t *left = state;

	if (weft_block_in_place(bip_empty, NULL, NULL))
		die("weft_block_in_place failed");
	if (--*left == 0) {
		countdown();
		return WEFT_READY;
	}
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static void batch_block_in_place(void)
{
	static uint32_t left;

	left = NUM_BIP;
	atomic_store_explicit(&g.remaining, 1, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn_poll(g.rt, task_bip, &left, NULL, NULL));
	signal_wait(&g.done);
}

static void setup_ping_pong(void)
{
	g.pp = xcalloc(NUM_PINGS, sizeof(*g.pp));
}

static void batch_ping_pong(void)
{
	atomic_store_explicit(&g.remaining, NUM_PINGS, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn_poll(g.rt, task_pp_root, NULL, NULL, NULL));
	signal_wait(&g.done);
}

static void setup_fanout_mpsc(void)
{
	CHECK(weft_chan_create(sizeof(uint64_t), FANOUT_CAPACITY, &g.chan));
	g.fan = xcalloc(FANOUT_PRODUCERS, sizeof(*g.fan));
}

static void batch_fanout_mpsc(void)
{
	const uint64_t want_sum =
		(uint64_t)FANOUT_PRODUCERS * FANOUT_ITEMS * (FANOUT_ITEMS + 1) / 2;

	g.fan_count = g.fan_sum = 0;
	/* The consumer and every producer count down; the last signals. */
	atomic_store_explicit(&g.remaining, FANOUT_PRODUCERS + 1, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn_poll(g.rt, task_fan_consumer, NULL, NULL, NULL));
	for (unsigned i = 0; i < FANOUT_PRODUCERS; i++) {
		g.fan[i].next = 1;
		CHECK(weft_spawn_poll(g.rt, task_fan_producer, &g.fan[i], NULL, NULL));
	}
	signal_wait(&g.done); /* all items received, every producer done */
	if (g.fan_count != (uint64_t)FANOUT_PRODUCERS * FANOUT_ITEMS || g.fan_sum != want_sum)
		die("fanout_mpsc: received %" PRIu64 " items summing to %" PRIu64
		    ", want %u summing to %" PRIu64, g.fan_count, g.fan_sum,
		    FANOUT_PRODUCERS * FANOUT_ITEMS, want_sum);
}

static void teardown_fanout_mpsc(void)
{
	CHECK(weft_chan_destroy(g.chan));
}

static void batch_spawn_many_local_fiber(void)
{
	atomic_store_explicit(&g.remaining, NUM_SPAWN, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < NUM_SPAWN; i++)
		CHECK(weft_spawn(g.rt, fiber_countdown, NULL, NULL));
	signal_wait(&g.done);
}

static void batch_spawn_many_local_worker_fiber(void)
{
	atomic_store_explicit(&g.remaining, NUM_SPAWN, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn(g.rt, fiber_spawner, NULL, NULL));
	signal_wait(&g.done);
}

static void batch_yield_many_fiber(void)
{
	atomic_store_explicit(&g.remaining, YIELD_TASKS, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < YIELD_TASKS; i++)
		CHECK(weft_spawn(g.rt, fiber_yielder, NULL, NULL));
	signal_wait(&g.done);
}

static void batch_ctx_switch_fiber(void)
{
	signal_reset(&g.done);
	CHECK(weft_spawn(g.rt, fiber_ctx_switch, NULL, NULL));
	signal_wait(&g.done);
}

static void setup_ping_pong_fiber(void)
{
	g.ppf = xcalloc(NUM_PINGS, sizeof(*g.ppf));
}

static void batch_ping_pong_fiber(void)
{
	atomic_store_explicit(&g.remaining, NUM_PINGS, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_spawn(g.rt, fiber_pp_root, NULL, NULL));
	signal_wait(&g.done);
}

static void setup_timers(void)
{
	g.tm = xcalloc(NUM_TIMERS, sizeof(*g.tm));
}

static void batch_timers(void)
{
	atomic_store_explicit(&g.remaining, NUM_TIMERS, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < NUM_TIMERS; i++) {
		/* The previous batch's timers have fired: start afresh. */
		g.tm[i] = (struct tm_state){ .t = WEFT_TIMER_INIT };
		CHECK(weft_spawn_poll(g.rt, task_timer, &g.tm[i], NULL, NULL));
	}
	signal_wait(&g.done);
}

static void batch_timers_fiber(void)
{
	atomic_store_explicit(&g.remaining, NUM_TIMERS, memory_order_relaxed);
	signal_reset(&g.done);
	for (unsigned i = 0; i < NUM_TIMERS; i++)
		CHECK(weft_spawn(g.rt, fiber_timer, NULL, NULL));
	signal_wait(&g.done);
}

/* Resident set in bytes, from /proc/self/statm (second field, pages). */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
		die("cannot read /proc/self/statm");
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void setup_fiber_rss(void)
{
	CHECK(weft_waitgroup_create(&g.gate));
	g.rss_base = rss_bytes();
	g.maps_base = count_lines("/proc/self/maps");
}

static void batch_fiber_rss(void)
{
	atomic_store_explicit(&g.remaining, RSS_FIBERS, memory_order_relaxed);
	atomic_store_explicit(&g.suspended, 0, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_waitgroup_add(g.gate, 1));
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < RSS_FIBERS; i++)
		CHECK(weft_spawn(g.rt, fiber_gated, NULL, NULL));
	while (atomic_load_explicit(&g.suspended, memory_order_relaxed) < RSS_FIBERS) {
		if (now_ns() - t0 > 120ull * 1000000000u)
			die("fiber_rss: only %u of %u fibers started in 120 s",
			    atomic_load_explicit(&g.suspended, memory_order_relaxed),
			    RSS_FIBERS);
		usleep(1000);
	}
	uint64_t created = now_ns() - t0;
	if (created > g.create_ns)
		g.create_ns = created;
	usleep(20000); /* the last ones finish suspending */
	uint64_t rss = rss_bytes();
	if (rss > g.rss_peak)
		g.rss_peak = rss;
	long maps = count_lines("/proc/self/maps");
	if (maps > g.maps_peak)
		g.maps_peak = maps;
	CHECK(weft_waitgroup_done(g.gate));
	signal_wait(&g.done);
	/* Idle workers give the stacks' pages back (in one pass when they
	 * park, at most once per 250 ms per core: fiber.c): wait until RSS
	 * has stopped falling for 600 ms (at most 10 s) and report how long
	 * that took. */
	uint64_t t1 = now_ns(), prev = rss_bytes();
	unsigned flat = 0;
	while (flat < 12 && now_ns() - t1 < 10000000000ull) {
		usleep(50000);
		uint64_t r = rss_bytes();
		flat = r + (1u << 20) >= prev ? flat + 1 : 0;
		prev = r;
	}
	g.rss_after = prev;
	g.settle_ns = now_ns() - t1;
}

static void teardown_fiber_rss(void)
{
	const double mib = 1024.0 * 1024.0;

	fprintf(stderr,
		"# fiber_rss fibers=%u stack_kib=%u rss_base_mib=%.2f "
		"rss_suspended_mib=%.1f rss_after_release_mib=%.2f "
		"per_fiber_kib=%.2f create_s=%.2f maps_base=%ld maps_suspended=%ld "
		"settle_s=%.2f\n",
		RSS_FIBERS, FIBER_STACK >> 10, (double)g.rss_base / mib,
		(double)g.rss_peak / mib, (double)g.rss_after / mib,
		(double)(g.rss_peak - g.rss_base) / 1024.0 / RSS_FIBERS,
		(double)g.create_ns / 1e9, g.maps_base, g.maps_peak, (double)g.settle_ns / 1e9);
	CHECK(weft_waitgroup_destroy(g.gate));
}

static void setup_fiber_exit_storm(void)
{
	CHECK(weft_waitgroup_create(&g.gate));
	g.storm_late = xcalloc(STORM_FIBERS, sizeof(*g.storm_late));
	g.storm_cap = 1024;
	g.storm_median = xcalloc(g.storm_cap, sizeof(uint64_t));
	g.storm_p99 = xcalloc(g.storm_cap, sizeof(uint64_t));
	g.storm_sys = xcalloc(g.storm_cap, sizeof(uint64_t));
}

static int cmp_u64(const void *a, const void *b);

static uint64_t sys_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

/* Spawn the 30,000 behind the gate, wait until all are suspended, then
 * open it: they all sleep 50 ms, wake together and exit together (the
 * storm of stack give-backs the issue measured). Kernel CPU is taken from
 * the release to the last exit. */
static void batch_fiber_exit_storm(void)
{
	atomic_store_explicit(&g.remaining, STORM_FIBERS, memory_order_relaxed);
	atomic_store_explicit(&g.suspended, 0, memory_order_relaxed);
	signal_reset(&g.done);
	CHECK(weft_waitgroup_add(g.gate, 1));
	for (unsigned i = 0; i < STORM_FIBERS; i++)
		CHECK(weft_spawn(g.rt, fiber_storm, &g.storm_late[i], NULL));
	uint64_t t0 = now_ns();
	while (atomic_load_explicit(&g.suspended, memory_order_relaxed) < STORM_FIBERS) {
		if (now_ns() - t0 > 60ull * 1000000000u)
			die("fiber_exit_storm: only %u of %u fibers suspended in 60 s",
			    atomic_load_explicit(&g.suspended, memory_order_relaxed), STORM_FIBERS);
		usleep(1000);
	}
	usleep(20000); /* the last ones finish suspending */
	uint64_t s0 = sys_ns();
	CHECK(weft_waitgroup_done(g.gate));
	signal_wait(&g.done);
	usleep(100000); /* idle workers give the stacks' pages back: counted too */
	uint64_t sys = sys_ns() - s0;
	qsort(g.storm_late, STORM_FIBERS, sizeof(uint64_t), cmp_u64);
	if (g.storm_batches < g.storm_cap) {
		g.storm_median[g.storm_batches] = g.storm_late[STORM_FIBERS / 2];
		g.storm_p99[g.storm_batches] = g.storm_late[STORM_FIBERS / 100 * 99];
		g.storm_sys[g.storm_batches] = sys;
		g.storm_batches++;
	}
}

static void teardown_fiber_exit_storm(void)
{
	/* warm-up batches included; medians over the batches */
	unsigned n = g.storm_batches;
	qsort(g.storm_median, n, sizeof(uint64_t), cmp_u64);
	qsort(g.storm_p99, n, sizeof(uint64_t), cmp_u64);
	qsort(g.storm_sys, n, sizeof(uint64_t), cmp_u64);
	fprintf(stderr,
		"# fiber_exit_storm fibers=%u sleep_ms=%u batches=%u median_late_ms=%.2f "
		"p99_late_ms=%.2f sys_ns_per_fiber=%.0f (medians over batches; max batch: "
		"median_late_ms=%.2f sys_ns_per_fiber=%.0f)\n",
		STORM_FIBERS, STORM_SLEEP_NS / 1000000u, n, (double)g.storm_median[n / 2] / 1e6,
		(double)g.storm_p99[n / 2] / 1e6, (double)g.storm_sys[n / 2] / STORM_FIBERS,
		(double)g.storm_median[n - 1] / 1e6, (double)g.storm_sys[n - 1] / STORM_FIBERS);
	CHECK(weft_waitgroup_destroy(g.gate));
}

struct bench_case {
	const char *name;
	unsigned ops;          /* operations per batch (for the README/list) */
	int workers;           /* fixed worker count; 0: WORKERS from argv */
	const char *what;
	void (*setup)(void);   /* before warm-up; may be NULL */
	void (*batch)(void);
	void (*teardown)(void);/* after the last timed batch; may be NULL */
};

static const struct bench_case cases[] = {
	{ "spawn_many_local", NUM_SPAWN, 0,
	  "main spawns 10,000 tasks; each counts down, the last signals main",
	  NULL, batch_spawn_many_local, NULL },
	/* the peers' "static" variant (no per-task refcount: a static
	 * counter, as a C program capturing raw pointers has): in C the same
	 * code as spawn_many_local, as in Go (../shared/peers/README.md) */
	{ "spawn_many_local_static", NUM_SPAWN, 0,
	  "spawn_many_local under the peers' static name (the same code in C)",
	  NULL, batch_spawn_many_local, NULL },
	{ "spawn_many_local_worker", NUM_SPAWN, 0,
	  "one task spawns the 10,000 countdown tasks from a worker",
	  NULL, batch_spawn_many_local_worker, NULL },
	{ "spawn_many_remote_idle", NUM_SPAWN, 0,
	  "main spawns 10,000 empty tasks, then joins them in order",
	  setup_handles, batch_remote_10k, NULL },
	{ "spawn_many_remote_busy", NUM_SPAWN, 0,
	  "remote_idle while 2*W tasks loop { yield; stall() }",
	  setup_remote_busy, batch_remote_10k, teardown_remote_busy },
	{ "spawn_many_remote_busy2", NUM_SPAWN_BUSY2, 0,
	  "1,000 remote spawns + joins while W chains stall and respawn",
	  setup_remote_busy2, batch_remote_1k, teardown_remote_busy2 },
	{ "yield_many", YIELD_TASKS * NUM_YIELD, 0,
	  "200 tasks each yield 1,000 times, then signal main",
	  setup_yield_many, batch_yield_many, NULL },
	{ "chained_spawn", CHAIN_DEPTH, 0,
	  "a chain of 1,000 worker-side spawns; the last signals main",
	  NULL, batch_chained_spawn, NULL },
	{ "ping_pong", NUM_PINGS, 0,
	  "1,000 task pairs bounce a oneshot each way; the last signals main",
	  setup_ping_pong, batch_ping_pong, NULL },
	{ "fanout_mpsc", FANOUT_PRODUCERS * FANOUT_ITEMS, 0,
	  "64 producers x 10,000 u64 on a capacity-1024 channel, one consumer",
	  setup_fanout_mpsc, batch_fanout_mpsc, teardown_fanout_mpsc },
	{ "timers", NUM_TIMERS, 0,
	  "10,000 tasks each sleep 1 ms (weft_timer_poll), then count down",
	  setup_timers, batch_timers, NULL },
	{ "spawn_many_local_fiber", NUM_SPAWN, 0,
	  "spawn_many_local with fibers: main spawns 10,000 countdown fibers",
	  NULL, batch_spawn_many_local_fiber, NULL },
	{ "spawn_many_local_worker_fiber", NUM_SPAWN, 0,
	  "one fiber spawns the 10,000 countdown fibers from a worker",
	  NULL, batch_spawn_many_local_worker_fiber, NULL },
	{ "yield_many_fiber", YIELD_TASKS * NUM_YIELD, 0,
	  "200 fibers each weft_yield 1,000 times, then signal main",
	  NULL, batch_yield_many_fiber, NULL },
	{ "ping_pong_fiber", NUM_PINGS, 0,
	  "ping_pong with fibers and the blocking weft_oneshot_recv",
	  setup_ping_pong_fiber, batch_ping_pong_fiber, NULL },
	{ "ctx_switch_fiber", CTX_YIELDS, 1,
	  "one fiber on a 1-worker runtime weft_yields 100,000 times",
	  NULL, batch_ctx_switch_fiber, NULL },
	{ "timers_fiber", NUM_TIMERS, 0,
	  "10,000 fibers each weft_sleep_ns(1 ms), then count down",
	  NULL, batch_timers_fiber, NULL },
	{ "block_in_place", NUM_BIP, 1,
	  "one task on 1 worker: 10,000 polls, each weft_block_in_place(empty fn)",
	  NULL, batch_block_in_place, NULL },
	{ "fiber_rss", RSS_FIBERS, 0,
	  "1,000,000 fibers suspend on a waitgroup; RSS (stderr) while suspended",
	  setup_fiber_rss, batch_fiber_rss, teardown_fiber_rss },
	{ "fiber_exit_storm", STORM_FIBERS, 0,
	  "30,000 fibers released together each sleep 50 ms and exit; lateness and "
	  "kernel CPU per fiber (stderr)",
	  setup_fiber_exit_storm, batch_fiber_exit_storm, teardown_fiber_exit_storm },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* -------------------------------------------------- cross-core round trip */

/*
 * Two threads bounce a counter on one cache line for 50 ms: the prober
 * makes it odd, the partner makes it even again. Mean ns per round trip.
 * Nothing is pinned; the probe gives up if the partner never answers.
 */
static struct {
	_Alignas(CACHE_LINE) _Atomic uint64_t ball;
	_Alignas(CACHE_LINE) _Atomic bool stop;
} rtt;

static void *rtt_partner(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t v;

		/* acquire: pairs with the prober's release store. */
		while (((v = atomic_load_explicit(&rtt.ball,
						  memory_order_acquire)) & 1) == 0) {
			if (atomic_load_explicit(&rtt.stop, memory_order_relaxed))
				return NULL;
			cpu_relax();
		}
		/* release: pairs with the prober's acquire load. */
		atomic_store_explicit(&rtt.ball, v + 1, memory_order_release);
	}
}

static void print_rtt(const char *phase)
{
	pthread_t th;
	int rc;

	atomic_store_explicit(&rtt.ball, 0, memory_order_relaxed);
	atomic_store_explicit(&rtt.stop, false, memory_order_relaxed);
	rc = pthread_create(&th, NULL, rtt_partner, NULL);
	if (rc != 0) {
		fprintf(stderr, "# rtt_ns=-1 phase=%s (pthread_create: %s)\n",
			phase, strerror(rc));
		return;
	}
	uint64_t t0 = now_ns(), t1 = t0, rounds = 0, v = 0;
	bool stuck = false;

	while (!stuck) {
		/* release: pairs with the partner's acquire load. */
		atomic_store_explicit(&rtt.ball, v + 1, memory_order_release);
		unsigned spins = 0;
		/* acquire: pairs with the partner's release store. */
		while (atomic_load_explicit(&rtt.ball, memory_order_acquire) != v + 2) {
			cpu_relax();
			if ((++spins & 0xffff) == 0 && now_ns() - t0 > 4u * RTT_NS) {
				stuck = true; /* partner not scheduled */
				break;
			}
		}
		if (stuck)
			break;
		v += 2;
		rounds++;
		if ((rounds & 255) == 0 && (t1 = now_ns()) - t0 >= RTT_NS)
			break;
	}
	if (stuck)
		t1 = now_ns();
	atomic_store_explicit(&rtt.stop, true, memory_order_relaxed);
	pthread_join(th, NULL);
	if (rounds == 0)
		fprintf(stderr, "# rtt_ns=-1 phase=%s (no round trip)\n", phase);
	else
		fprintf(stderr, "# rtt_ns=%" PRIu64 " phase=%s rounds=%" PRIu64 "\n",
			(t1 - t0) / rounds, phase, rounds);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: weft-bench BENCH ITERATIONS [WORKERS]\n"
		"       weft-bench list\n"
		"       weft-bench rtt      (only the round trip, on stderr)\n"
		"\n"
		"Run one benchmark case: PEER_WARMUP (env, default 1) untimed\n"
		"batches, then ITERATIONS timed batches, on a runtime with WORKERS\n"
		"workers (default 2). Prints one result line on stdout and the\n"
		"cross-core round trip (# rtt_ns=N) before and after on stderr.\n"
		"\n"
		"Examples:\n"
		"    weft-bench list\n"
		"    weft-bench spawn_many_local 100\n"
		"    PEER_WARMUP=5 weft-bench yield_many 50 4\n");
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	/* digits only: strtol skips blanks and takes a sign, so " 5" and
	 * "+5" were taken, unlike the peers' parsers (found by a review) */
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* Per-batch quotient, truncated as the Tokio and Go peers print theirs
 * (rounded, a count of 1.5 per batch read 2 against their 1). */
static uint64_t per(uint64_t total, uint64_t n)
{
	return total / n;
}

/* What weft-bench prints on stdout is its result (scripts/bench reads the
 * line): one stdout did not take (a full disk, /dev/full) is a failure,
 * said on stderr, exit 1. It exited 0 with nothing written (found by a
 * review of the docs: "Exit status: 0 ok, 1 failure"). */
static int stdout_checked(const char *what)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	fprintf(stderr, "weft-bench: %s: writing to stdout: %s\n", what,
		errno ? strerror(errno) : "error");
	return 1;
}

int main(int argc, char **argv)
{
	const struct bench_case *bc = NULL;
	long iters, workers = 2, warmup = 1;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return stdout_checked("--help");
	}
	if (argc == 2 && !strcmp(argv[1], "rtt")) { /* for scripts: rtt only */
		print_rtt("now");
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < N_CASES; i++)
			printf("%s\n", cases[i].name);
		return stdout_checked("list");
	}
	if (argc < 3 || argc > 4) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < N_CASES; i++)
		if (!strcmp(argv[1], cases[i].name))
			bc = &cases[i];
	if (!bc) {
		fprintf(stderr, "weft-bench: unknown case '%s' (try: weft-bench list)\n",
			argv[1]);
		return 2;
	}
	if (!parse_long(argv[2], 1, 100000000, &iters)) {
		fprintf(stderr, "weft-bench: bad ITERATIONS '%s' (1..100000000)\n", argv[2]);
		return 2;
	}
	if (argc == 4 && !parse_long(argv[3], 1, WEFT_MAX_WORKERS, &workers)) {
		fprintf(stderr, "weft-bench: bad WORKERS '%s' (1..%d)\n", argv[3],
			WEFT_MAX_WORKERS);
		return 2;
	}
	const char *env = getenv("PEER_WARMUP");
	if (env && *env && !parse_long(env, 0, 100000000, &warmup)) {
		fprintf(stderr, "weft-bench: bad PEER_WARMUP '%s' (0..100000000)\n", env);
		return 2;
	}

	uint64_t *samples = xcalloc((size_t)iters, sizeof(*samples));

	print_rtt("before");

	if (bc->workers)
		workers = bc->workers;
	WEFT_OPTS(weft_runtime_opts, opts, .workers = (int)workers,
		  .fiber_stack_size = FIBER_STACK);
	CHECK(weft_runtime_create(&opts, &g.rt));
	g.workers = (int)workers;

	if (bc->setup)
		bc->setup();
	for (long i = 0; i < warmup; i++)
		bc->batch();

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t start = now_ns(), t = start;
	for (long i = 0; i < iters; i++) {
		bc->batch();
		uint64_t t2 = now_ns();
		samples[i] = t2 - t;
		t = t2;
	}
	getrusage(RUSAGE_SELF, &ru1);
	uint64_t wall = now_ns() - start;

	if (bc->teardown)
		bc->teardown();
	CHECK(weft_runtime_destroy(g.rt));
	g.rt = NULL;

	uint64_t n = (uint64_t)iters, sum = 0;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	for (uint64_t i = 0; i < n; i++)
		sum += samples[i];
	uint64_t user = tv_ns(ru1.ru_utime) - tv_ns(ru0.ru_utime);
	uint64_t sys = tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_stime);
	uint64_t vcsw = (uint64_t)(ru1.ru_nvcsw - ru0.ru_nvcsw);
	uint64_t ivcsw = (uint64_t)(ru1.ru_nivcsw - ru0.ru_nivcsw);

	printf("weft %s %ld median_ns_per_batch=%" PRIu64 " min=%" PRIu64
	       " max=%" PRIu64 " mean=%" PRIu64 " p10=%" PRIu64 " p90=%" PRIu64
	       " iters=%" PRIu64 " cpu_ns_per_batch=%" PRIu64
	       " user_ns_per_batch=%" PRIu64 " sys_ns_per_batch=%" PRIu64
	       " cpu_util=%.2f vcsw_per_batch=%" PRIu64
	       " ivcsw_per_batch=%" PRIu64 " ops_per_batch=%u\n",
	       bc->name, workers, samples[n / 2], samples[0], samples[n - 1],
	       sum / n, samples[n / 10], samples[9 * n / 10], n,
	       per(user + sys, n), per(user, n), per(sys, n),
	       wall ? (double)(user + sys) / (double)wall : 0.0,
	       per(vcsw, n), per(ivcsw, n), bc->ops);
	int out_rc = stdout_checked(bc->name);

	print_rtt("after");
	free(samples);
	return out_rc;
}
