/*
 * count_target.c - known work for schedtop's kernel-side and counter
 * figures (tests/bpf/test_schedtop.py pidns, handoff_cpu, slow_attach,
 * long_park).
 *
 *   count_target rounds WORKERS ROUNDS TASKS PRE_MS GAP_MS
 *       a runtime of WORKERS workers; prints "ready PID", sleeps PRE_MS
 *       (the workers park: a tracer attaches, or a long park to measure),
 *       then ROUNDS rounds of TASKS remote spawns of one-poll tasks, each
 *       round joined and followed by GAP_MS of sleep, so the workers park
 *       between rounds. At the end it shuts the runtime down and prints
 *       the runtime's own counts over the rounds as one JSON line
 *       ({"polls":..,"parks":..,...}, the deltas of weft_runtime_metrics
 *       from after PRE_MS to after the shutdown).
 *   count_target handoff SECS
 *       one worker; after 0.5 s a task calls weft_block_in_place(fn), fn
 *       alternates 1 ms of spinning and 1 ms of sleep for SECS seconds on
 *       the thread that gave the core away, while the core, driven by the
 *       spare, is idle. Exits 1 if the call did not hand the core off.
 *   count_target exec SECS PROG ARGS...
 *       a 2-worker runtime polling tasks for SECS, then exec PROG (the
 *       runtime never destroyed, as a server re-executing itself).
 *   count_target epollblock SECS
 *       one worker whose task blocks in epoll_wait (its own epoll
 *       instance, nothing ready) for 1 s in every poll, for SECS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>
#include <weft/metrics.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "count_target: %s: %s\n", what, weft_strerror(rc));
	exit(1);
}

struct sums {
	unsigned long long polls, parks, noops, steal_ops, tasks_stolen;
};

static void sum(struct weft_runtime *rt, struct sums *s)
{
	struct weft_metrics *m;
	int rc = weft_runtime_metrics(rt, &m);
	if (rc)
		die("metrics", rc);
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < m->workers; i++) {
		const struct weft_worker_metrics *w = &m->worker[i];
		s->polls += w->poll_count;
		s->parks += w->park_count;
		s->noops += w->noop_count;
		s->steal_ops += w->steal_operations;
		s->tasks_stolen += w->steal_count;
	}
	weft_metrics_free(m);
}

static enum weft_poll one(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

static int rounds(int argc, char **argv)
{
	if (argc != 7)
		return 2;
	int workers = atoi(argv[2]), nrounds = atoi(argv[3]), ntasks = atoi(argv[4]);
	long pre_ms = atol(argv[5]), gap_ms = atol(argv[6]);
	WEFT_OPTS(weft_runtime_opts, o, .workers = (unsigned)workers);
	struct weft_runtime *rt;
	int rc = weft_runtime_create(&o, &rt);
	if (rc)
		die("runtime_create", rc);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sleep_ms(pre_ms);
	struct sums a, b;
	sum(rt, &a);
	struct weft_task **t = calloc((size_t)ntasks, sizeof(*t));
	if (!t)
		return 1;
	for (int r = 0; r < nrounds; r++) {
		for (int k = 0; k < ntasks; k++)
			if ((rc = weft_spawn_poll(rt, one, NULL, NULL, &t[k])))
				die("spawn", rc);
		for (int k = 0; k < ntasks; k++)
			if ((rc = weft_join(t[k], NULL)))
				die("join", rc);
		sleep_ms(gap_ms);
	}
	free(t);
	/* every worker publishes its final counters at shutdown */
	if ((rc = weft_runtime_shutdown(rt, 1000000000ull)))
		die("shutdown", rc);
	sum(rt, &b);
	printf("{\"polls\":%llu,\"parks\":%llu,\"noops\":%llu,\"steal_ops\":%llu,"
	       "\"tasks_stolen\":%llu}\n",
	       b.polls - a.polls, b.parks - a.parks, b.noops - a.noops,
	       b.steal_ops - a.steal_ops, b.tasks_stolen - a.tasks_stolen);
	fflush(stdout);
	return weft_runtime_destroy(rt) ? 1 : 0;
}

/* exec SECS PROG ARGS...: a 2-worker runtime polling tasks for SECS, then
 * exec PROG without destroying it, as a server re-executing itself does */
static int exec_after(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	double end = now_s() + atof(argv[2]);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	struct weft_runtime *rt;
	int rc = weft_runtime_create(&o, &rt);
	if (rc)
		die("runtime_create", rc);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (now_s() < end) {
		struct weft_task *t[100];
		for (int k = 0; k < 100; k++)
			if ((rc = weft_spawn_poll(rt, one, NULL, NULL, &t[k])))
				die("spawn", rc);
		for (int k = 0; k < 100; k++)
			if ((rc = weft_join(t[k], NULL)))
				die("join", rc);
		sleep_ms(5);
	}
	execv(argv[3], argv + 3);
	perror("count_target: exec");
	return 1;
}

/* epollblock SECS: one worker whose task waits in epoll_wait (its own
 * epoll instance, nothing ever ready) for 1 s in every poll, for SECS */
static int task_ep = -1;

static enum weft_poll ep_waiter(void *state, struct weft_cx *cx)
{
	(void)state;
	struct epoll_event ev;
	if (epoll_wait(task_ep, &ev, 1, 1000) < 0 && errno != EINTR)
		abort();
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static int epoll_block(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int p[2];
	struct epoll_event e = { .events = EPOLLIN };
	if (pipe(p) || (task_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(task_ep, EPOLL_CTL_ADD, p[0], &e))
		return 1;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	struct weft_runtime *rt;
	struct weft_task *t;
	int rc = weft_runtime_create(&o, &rt);
	if (rc)
		die("runtime_create", rc);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if ((rc = weft_spawn_poll(rt, ep_waiter, NULL, NULL, &t)))
		die("spawn", rc);
	sleep_ms((long)(atof(argv[2]) * 1000));
	_exit(0); /* the task never ends */
}

static double handoff_secs;

static void *burn(void *arg)
{
	(void)arg;
	double end = now_s() + handoff_secs;
	while (now_s() < end) {
		double until = now_s() + 0.001;
		while (now_s() < until)
			;
		sleep_ms(1);
	}
	return NULL;
}

static void *handoff_task(void *arg)
{
	(void)arg;
	int rc = weft_block_in_place(burn, NULL, NULL);
	if (rc)
		die("block_in_place", rc);
	return NULL;
}

static int handoff(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	handoff_secs = atof(argv[2]);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	struct weft_runtime *rt;
	struct weft_task *t;
	int rc = weft_runtime_create(&o, &rt);
	if (rc)
		die("runtime_create", rc);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sleep_ms(500);
	if ((rc = weft_spawn(rt, handoff_task, NULL, &t)) || (rc = weft_join(t, NULL)))
		die("handoff", rc);
	struct weft_metrics *m;
	if ((rc = weft_runtime_metrics(rt, &m)))
		die("metrics", rc);
	bool handed = m->block_in_place_count == 1 && !m->block_in_place_reclaimed;
	weft_metrics_free(m);
	if (!handed) {
		fprintf(stderr, "count_target: the core was not handed off\n");
		return 1;
	}
	sleep_ms(300);
	return weft_runtime_destroy(rt) ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (argc > 1 && !strcmp(argv[1], "rounds"))
		rc = rounds(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "handoff"))
		rc = handoff(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "exec"))
		rc = exec_after(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "epollblock"))
		rc = epoll_block(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: count_target rounds WORKERS ROUNDS TASKS PRE_MS GAP_MS\n"
				"       count_target handoff SECS\n"
				"       count_target exec SECS PROG ARGS...\n"
				"       count_target epollblock SECS\n");
	return rc;
}
