/*
 * lint_target.c - real programs for schedtop's lints, one per scenario
 * (tests/bpf/test_schedtop.py lints): each stages one classic problem, or
 * a healthy load that must draw no lint.
 *
 *   lint_target SCENARIO SECONDS [WORKERS]
 *
 * Starts a runtime of WORKERS workers (default 2) and the scenario, prints "ready PID" once the
 * load runs (schedtop attaches to a busy runtime, as an engineer would),
 * runs SECONDS and exits 0.
 *
 * Pathologies:
 *   longpoll   one task spins in a single poll for the whole run
 *   stuck      one worker (run with WORKERS=1): a task spawns 8 tasks
 *              onto its own worker's queue, then spins in that poll: the
 *              worker holds them and polls nothing, and no one can take
 *              them (stuck-worker)
 *   blocking   a task on each worker calls sleep(1) / read() on a pipe,
 *              while an outside thread spawns 2,000 tasks/s
 *   wakestorm  512 fibers wait on a notify that an outside thread fires
 *              every 2 ms (notify_all): every wake is a herd (256 every
 *              1 ms ran 13-38 polls per wake, about the lint's 16: drawn
 *              in 3 of 7 intervals in some runs, old library and new)
 *   imbalance  one worker runs a task of 50 ms CPU-bound polls (each
 *              yields, so it never runs dry and never steals)
 *              while on the other 200 short jobs each spawn their
 *              successor: one queue stays deep, nobody can take from it
 *   fanout     64 fibers send into one channel of 64 that one fiber
 *              drains, with 2 us of work per item: each receive wakes a
 *              sender on the receiver's worker, the other worker steals
 *              it, and the tasks bounce between the workers (steal-storm).
 *              The work makes the receiver's worker look busy (mean poll
 *              over the steal policy's 2 us, lib/sched/steal.h); without
 *              it the policy leaves the senders on their worker and there
 *              is no storm to see.
 * Healthy:
 *   flood      one task spawns 256 jobs per poll and yields, more than
 *              both workers can run: each worker's queue is deep in turn
 *   skew       the demo's shape: waves of 600 tasks spawned from one
 *              worker every 20 ms, stolen by the other
 *   pingpong   two fibers passing a token through two channels
 *   idle       a runtime with nothing to do
 *   trickle    an outside thread spawns 2,000 tiny tasks/s into an
 *              otherwise idle runtime
 *   bursty     bursts of 2,000 tasks every 200 ms, idle between
 *   two        two runtimes in one process (2 and 1 workers), skew in
 *              the first, trickle in the second
 *   handoff    (run with WORKERS=1) after 1 s a task queues a 3 s spin
 *              on its worker and calls weft_block_in_place for 100 ms:
 *              the spare thread that takes the core runs the spin, the
 *              task's thread wakes beside it
 *   grow       skew, the runtime grown from WORKERS to WORKERS + 2 after
 *              0.5 s: the first cores steal from the new ones
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>
#include <weft/sync.h>
#include <weft/metrics.h>

static atomic_bool stop;

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spin_us(unsigned us)
{
	double end = now_s() + us / 1e6;
	while (now_s() < end)
		;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "lint_target: %s: %s\n", what, weft_strerror(rc));
	exit(1);
}

/* ---------------------------------------------------------------- tasks */

static enum weft_poll tiny(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	spin_us(2);
	return WEFT_READY;
}

static enum weft_poll job(void *state, struct weft_cx *cx)
{
	int *yields = state;
	spin_us(5);
	if ((*yields)-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

static void spawn_job(struct weft_runtime *rt, int yields)
{
	int *y = malloc(sizeof(*y));
	if (!y)
		abort();
	*y = yields;
	int rc = weft_spawn_poll(rt, job, y, free, NULL);
	if (rc)
		die("spawn", rc);
}

/* An outside thread spawning `rate` tiny tasks per second. */
struct trickle { struct weft_runtime *rt; int rate; pthread_t th; };

static void *trickle_main(void *arg)
{
	struct trickle *t = arg;
	long gap = 1000000000L / t->rate;
	while (!atomic_load(&stop)) {
		int rc = weft_spawn_poll(t->rt, tiny, NULL, NULL, NULL);
		if (rc)
			die("spawn", rc);
		sleep_ns(gap);
	}
	return NULL;
}

static void trickle_start(struct trickle *t, struct weft_runtime *rt, int rate)
{
	t->rt = rt;
	t->rate = rate;
	if (pthread_create(&t->th, NULL, trickle_main, t))
		exit(1);
}

/* longpoll */
static enum weft_poll spin_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	while (!atomic_load(&stop))
		;
	return WEFT_READY;
}

/* stuck: spawn 8 tasks from inside the poll (onto this worker's queue),
 * then spin */
static enum weft_poll nop_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

static enum weft_poll stuck_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	for (int i = 0; i < 8; i++)
		if (weft_spawn_poll(weft_runtime_current(), nop_poll, NULL, NULL, NULL))
			abort();
	while (!atomic_load(&stop))
		;
	return WEFT_READY;
}

/* blocking: worker 0's task sleeps, worker 1's reads a pipe written once
 * a second; each comes back and blocks again. */
static int pipe_fd[2];

static enum weft_poll sleeper(void *state, struct weft_cx *cx)
{
	(void)state;
	if (atomic_load(&stop))
		return WEFT_READY;
	sleep(1);
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static enum weft_poll reader(void *state, struct weft_cx *cx)
{
	char b;
	(void)state;
	if (atomic_load(&stop))
		return WEFT_READY;
	if (read(pipe_fd[0], &b, 1) < 0 && errno != EINTR)
		abort();
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static void *pipe_writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		sleep_ns(1000000000L);
		if (write(pipe_fd[1], "x", 1) != 1)
			abort();
	}
	return NULL;
}

/* wakestorm */
static struct weft_notify *storm_n;

static void *storm_fiber(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		if (weft_notify_wait_timeout(storm_n, 50000000ull) && atomic_load(&stop))
			break;
	return NULL;
}

/* flood: a spawner that keeps the queues deep */
static enum weft_poll flood(void *state, struct weft_cx *cx)
{
	(void)state;
	if (atomic_load(&stop))
		return WEFT_READY;
	for (int i = 0; i < 256; i++)
		spawn_job(weft_cx_runtime(cx), 0);
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* imbalance: 200 jobs, each spawning its successor as it ends, so the
 * queue they sit in stays as deep as it started */
static enum weft_poll relay_job(void *state, struct weft_cx *cx)
{
	(void)state;
	spin_us(5);
	if (!atomic_load(&stop)) {
		int rc = weft_spawn_poll(weft_cx_runtime(cx), relay_job, NULL, NULL, NULL);
		if (rc)
			die("spawn", rc);
	}
	return WEFT_READY;
}

static enum weft_poll keeper(void *state, struct weft_cx *cx)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		int rc = weft_spawn_poll(weft_cx_runtime(cx), relay_job, NULL, NULL, NULL);
		if (rc)
			die("spawn", rc);
	}
	return WEFT_READY;
}

static enum weft_poll chain(void *state, struct weft_cx *cx)
{
	(void)state;
	spin_us(50000);
	if (atomic_load(&stop))
		return WEFT_READY;
	/* Yield (wake itself) rather than spawn a successor: a successor sat
	 * in the LIFO slot for the last instant of a 50 ms poll, and the
	 * stall rescue, watching this core since its 10 ms threshold, now and
	 * then took it to the other worker - this one ran dry, stole half the
	 * other's queue, and the staged imbalance was gone. A yielded task
	 * waits in the core's own deferred list. */
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

/* skew: one wave of 600 jobs from one worker */
static enum weft_poll wave(void *state, struct weft_cx *cx)
{
	(void)state;
	for (int i = 0; i < 600; i++)
		spawn_job(weft_cx_runtime(cx), 3);
	return WEFT_READY;
}

static void *skew_main(void *arg)
{
	struct weft_runtime *rt = arg;
	while (!atomic_load(&stop)) {
		struct weft_task *t;
		int rc = weft_spawn_poll(rt, wave, NULL, NULL, &t);
		if (rc || (rc = weft_join(t, NULL)))
			die("wave", rc);
		sleep_ns(20000000L);
	}
	return NULL;
}

/* pingpong */
static struct weft_chan *ping, *pong;

static void *pp_fiber(void *arg)
{
	long v = 0;
	bool first = arg != NULL;
	if (first && weft_chan_send(ping, &v))
		return NULL;
	for (;;) {
		if (weft_chan_recv(first ? pong : ping, &v))
			return NULL;
		if (atomic_load(&stop))
			break;
		v++;
		if (weft_chan_send(first ? ping : pong, &v))
			return NULL;
	}
	weft_chan_close(ping);
	weft_chan_close(pong);
	return NULL;
}

/* fanout: 64 producers, one consumer, a channel of 64 */
static struct weft_chan *fan;

static void *fan_producer(void *arg)
{
	long v = (long)(intptr_t)arg;
	/* until the consumer closes the channel (-EPIPE) */
	while (!weft_chan_send(fan, &v))
		v++;
	return NULL;
}

static void *fan_consumer(void *arg)
{
	(void)arg;
	long v;
	while (!atomic_load(&stop)) {
		if (weft_chan_recv(fan, &v))
			break;
		spin_us(2); /* work per item: the receiver's core looks busy */
	}
	weft_chan_close(fan);
	return NULL;
}

/* bursty */
static void *bursty_main(void *arg)
{
	struct weft_runtime *rt = arg;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 2000; i++) {
			int rc = weft_spawn_poll(rt, tiny, NULL, NULL, NULL);
			if (rc)
				die("spawn", rc);
		}
		sleep_ns(200000000L);
	}
	return NULL;
}

static struct weft_runtime *make_rt(unsigned workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	int rc = weft_runtime_create(&o, &rt);
	if (rc)
		die("create", rc);
	return rt;
}

/* imbalance: did the keeper's 200 jobs land on the worker the chain does
 * not hold? (Either worker may take the keeper from the inject queue;
 * the chain's worker checks it between its polls. If that one took it, the
 * other steals half and nothing stays uneven: a setup that failed, not a
 * balanced runtime the lint should flag.) */
static bool one_queue_deep(struct weft_runtime *rt)
{
	for (int k = 0; k < 3; k++) {
		struct weft_metrics *m;
		if (weft_runtime_metrics(rt, &m))
			return false;
		uint64_t lo = UINT64_MAX, hi = 0;
		for (unsigned i = 0; i < m->workers; i++) {
			uint64_t d = m->worker[i].local_queue_depth;
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		weft_metrics_free(m);
		if (hi < 150 || lo > 16)
			return false;
		sleep_ns(20000000L);
	}
	return true;
}

static struct weft_runtime *imbalance_setup(unsigned workers, struct weft_task **keeper_h)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		struct weft_runtime *rt = make_rt(workers);
		int rc;
		if ((rc = weft_spawn_poll(rt, chain, NULL, NULL, NULL)))
			die("spawn", rc);
		sleep_ns(100000000L); /* the chain holds one worker: the keeper gets the other */
		if ((rc = weft_spawn_poll(rt, keeper, NULL, NULL, keeper_h)))
			die("spawn", rc);
		sleep_ns(100000000L);
		if (one_queue_deep(rt))
			return rt;
		fprintf(stderr, "lint_target: imbalance: the jobs were shared out; again\n");
		atomic_store(&stop, true);
		sleep_ns(100000000L); /* every job saw it: none spawns into the shutdown */
		if ((rc = weft_join(*keeper_h, NULL)))
			die("join", rc);
		while ((rc = weft_runtime_destroy(rt)) == -EBUSY)
			sleep_ns(10000000L);
		if (rc)
			die("destroy", rc);
		atomic_store(&stop, false);
	}
	fprintf(stderr, "lint_target: imbalance: no uneven setup in 10 attempts\n");
	exit(1);
}

/* elastic: one worker, grown to 3 after 1 s and back to 1 at 2.5 s
 * (weft_runtime_set_workers), with a trickle of tasks all along */
static void *resize_main(void *arg)
{
	struct weft_runtime *rt = arg;
	int rc;
	sleep_ns(1000000000L);
	if ((rc = weft_runtime_set_workers(rt, 3)))
		die("set_workers 3", rc);
	sleep_ns(1500000000L);
	if ((rc = weft_runtime_set_workers(rt, 1)))
		die("set_workers 1", rc);
	return NULL;
}

/* handoff: see the top of the file */
static enum weft_poll long_spin(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	spin_us(3000000);
	return WEFT_READY;
}

static void *nap(void *arg)
{
	(void)arg;
	sleep_ns(100000000L);
	return NULL;
}

static enum weft_poll handoff_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	struct weft_task *t;
	int rc = weft_spawn_poll(weft_cx_runtime(cx), long_spin, NULL, NULL, &t);
	if (rc || (rc = weft_detach(t)))
		die("spawn", rc); /* queued on this worker */
	if ((rc = weft_block_in_place(nap, NULL, NULL)))
		die("block_in_place", rc);
	return WEFT_READY;
}

static void *handoff_main(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_task *t;
	sleep_ns(1000000000L);
	int rc = weft_spawn_poll(rt, handoff_poll, NULL, NULL, &t);
	if (rc || (rc = weft_join(t, NULL)))
		die("handoff", rc);
	struct weft_metrics *m;
	if ((rc = weft_runtime_metrics(rt, &m)))
		die("metrics", rc);
	bool handed = m->block_in_place_count == 1 && !m->block_in_place_reclaimed;
	weft_metrics_free(m);
	if (!handed) /* ends the run early: the test sees too few intervals */
		die("handoff", -EAGAIN);
	return NULL;
}

/* grow: skew's waves all along, 2 more workers after 0.5 s */
static void *grow_main(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_metrics *m;
	int rc;
	sleep_ns(500000000L);
	if ((rc = weft_runtime_metrics(rt, &m)))
		die("metrics", rc);
	unsigned n = m->workers;
	weft_metrics_free(m);
	if ((rc = weft_runtime_set_workers(rt, (int)n + 2)))
		die("set_workers", rc);
	return skew_main(rt);
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: lint_target SCENARIO SECONDS [WORKERS]\n");
		return 2;
	}
	const char *sc = argv[1];
	double secs = atof(argv[2]);
	struct weft_runtime *rt = make_rt(argc == 4 ? (unsigned)atoi(argv[3]) : 2), *rt2 = NULL;
	struct trickle tr = { 0 };
	pthread_t th;
	bool have_th = false;
	struct weft_task *tasks[520];
	int ntasks = 0, rc;

	if (!strcmp(sc, "longpoll")) {
		trickle_start(&tr, rt, 200);
		if ((rc = weft_spawn_poll(rt, spin_poll, NULL, NULL, &tasks[ntasks++])))
			die("spawn", rc);
	} else if (!strcmp(sc, "stuck")) {
		if ((rc = weft_spawn_poll(rt, stuck_poll, NULL, NULL, &tasks[ntasks++])))
			die("spawn", rc);
	} else if (!strcmp(sc, "blocking")) {
		if (pipe(pipe_fd))
			return 1;
		if (pthread_create(&th, NULL, pipe_writer, NULL))
			return 1;
		have_th = true;
		trickle_start(&tr, rt, 2000);
		if ((rc = weft_spawn_poll(rt, sleeper, NULL, NULL, &tasks[ntasks++])) ||
		    (rc = weft_spawn_poll(rt, reader, NULL, NULL, &tasks[ntasks++])))
			die("spawn", rc);
	} else if (!strcmp(sc, "wakestorm")) {
		if ((rc = weft_notify_create(&storm_n)))
			die("notify", rc);
		for (int i = 0; i < 512; i++)
			if ((rc = weft_spawn(rt, storm_fiber, NULL, &tasks[ntasks++])))
				die("spawn", rc);
	} else if (!strcmp(sc, "imbalance")) {
		if ((rc = weft_runtime_destroy(rt)))
			die("destroy", rc);
		rt = imbalance_setup(argc == 4 ? (unsigned)atoi(argv[3]) : 2, &tasks[ntasks++]);
	} else if (!strcmp(sc, "flood")) {
		if ((rc = weft_spawn_poll(rt, flood, NULL, NULL, &tasks[ntasks++])))
			die("spawn", rc);
	} else if (!strcmp(sc, "skew")) {
		if (pthread_create(&th, NULL, skew_main, rt))
			return 1;
		have_th = true;
	} else if (!strcmp(sc, "pingpong")) {
		if ((rc = weft_chan_create(sizeof(long), 1, &ping)) ||
		    (rc = weft_chan_create(sizeof(long), 1, &pong)))
			die("chan", rc);
		if ((rc = weft_spawn(rt, pp_fiber, (void *)1, &tasks[ntasks++])) ||
		    (rc = weft_spawn(rt, pp_fiber, NULL, &tasks[ntasks++])))
			die("spawn", rc);
	} else if (!strcmp(sc, "fanout")) {
		if ((rc = weft_chan_create(sizeof(long), 64, &fan)))
			die("chan", rc);
		if ((rc = weft_spawn(rt, fan_consumer, NULL, &tasks[ntasks++])))
			die("spawn", rc);
		for (int i = 0; i < 64; i++)
			if ((rc = weft_spawn(rt, fan_producer, (void *)(intptr_t)i, &tasks[ntasks++])))
				die("spawn", rc);
	} else if (!strcmp(sc, "idle")) {
		/* nothing */
	} else if (!strcmp(sc, "trickle")) {
		trickle_start(&tr, rt, 2000);
	} else if (!strcmp(sc, "bursty")) {
		if (pthread_create(&th, NULL, bursty_main, rt))
			return 1;
		have_th = true;
	} else if (!strcmp(sc, "elastic")) {
		trickle_start(&tr, rt, 2000);
		if (pthread_create(&th, NULL, resize_main, rt))
			return 1;
		have_th = true;
	} else if (!strcmp(sc, "handoff")) {
		if (pthread_create(&th, NULL, handoff_main, rt))
			return 1;
		have_th = true;
	} else if (!strcmp(sc, "grow")) {
		if (pthread_create(&th, NULL, grow_main, rt))
			return 1;
		have_th = true;
	} else if (!strcmp(sc, "two")) {
		rt2 = make_rt(1);
		if (pthread_create(&th, NULL, skew_main, rt))
			return 1;
		have_th = true;
		trickle_start(&tr, rt2, 2000);
	} else {
		fprintf(stderr, "lint_target: unknown scenario %s\n", sc);
		return 2;
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	double end = now_s() + secs;
	while (now_s() < end) {
		if (storm_n && (rc = weft_notify_all(storm_n)))
			die("notify_all", rc);
		sleep_ns(storm_n ? 2000000L : 50000000L);
	}
	atomic_store(&stop, true);
	if (storm_n)
		weft_notify_all(storm_n);
	if (tr.rt)
		pthread_join(tr.th, NULL);
	if (have_th)
		pthread_join(th, NULL);
	if (pipe_fd[1] && write(pipe_fd[1], "x", 1) != 1)
		return 1;
	for (int i = 0; i < ntasks; i++)
		if ((rc = weft_join(tasks[i], NULL)))
			die("join", rc);
	if (rt2 && weft_runtime_destroy(rt2))
		return 1;
	return weft_runtime_destroy(rt) ? 1 : 0;
}
