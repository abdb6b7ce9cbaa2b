/*
 * stall_target.c - a real program with one long poll, for schedtop's
 * long-poll lint (tests/bpf/test_schedtop.py longpoll).
 *
 *   stall_target SECONDS [fiber|shortstalls|utf8|lock|lockspare|lockexit|exec]
 *
 * Starts a 2-worker runtime, prints "ready PID", waits for SIGUSR1 (so
 * schedtop can attach first), then spawns spin_poll, which spins SECONDS
 * in a single poll without yielding, and prints "spawn_line N fn_line M":
 * the source lines of the spawn call and of spin_poll's definition, which
 * the lint must name. Then it joins the task and exits. With `fiber`, the
 * task is a fiber (weft_spawn) running spin_fiber, which spins as long:
 * its task's poll function is weft's fiber_poll, and the lint must name
 * spin_fiber. With `utf8`, the fiber's function has a name of 2-byte
 * UTF-8 characters (the live view clips the lint line on characters).
 * With `lock`, the fiber (lock_fiber) blocks SECONDS in pthread_mutex_lock
 * on a mutex main holds (blocking-call, a fiber's shallow stack), and the
 * line printed after fn_line is "lock_line L", the line of that call.
 * With `exec`, the poll task spins SECONDS, then execs `sleep 3` from
 * inside its poll: the process runs on, no longer a weft program.
 * With `lockspare`, as `lock`, but the runtime starts with 4 workers; before
 * "ready" two are retired (weft_runtime_set_workers 2: their threads become
 * spares) and one of the others is handed to a spare thread for good
 * (weft_block_in_place). Both print "tids A B", the threads that hold
 * cores 0 and 1 (weft_runtime_metrics), before "ready".
 * With `lockexit`, as `lock`, but after SECONDS main exits the process
 * (_exit 0) with the fiber still blocked: the block ends with the
 * process, in schedtop's final interval.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>

#include "ready_wait.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const int fn_line = __LINE__ + 1;
static enum weft_poll spin_poll(void *state, struct weft_cx *cx)
{
	double end = now_s() + *(double *)state;
	volatile unsigned long x = 0;
	while (now_s() < end)
		x++;
	return WEFT_READY;
}

static const int fiber_line = __LINE__ + 1;
static void *spin_fiber(void *arg)
{
	double end = now_s() + *(double *)arg;
	volatile unsigned long x = 0;
	while (now_s() < end)
		x++;
	return NULL;
}

/* exec: a poll that spins, then execs a program without weft */
static enum weft_poll spin_exec_poll(void *state, struct weft_cx *cx)
{
	spin_poll(state, cx);
	execl("/bin/sleep", "sleep", "3", (char *)NULL);
	perror("stall_target: exec");
	exit(1);
}

/* shortstalls: polls of 30 ms, over the runtime's stall threshold (10
 * ms) and under the long-poll lint's 100 ms, one after another */
static const int short_line = __LINE__ + 1;
static void *short_stall_fiber(void *arg)
{
	double end = now_s() + *(double *)arg;
	while (now_s() < end) {
		double e = now_s() + 0.030;
		volatile unsigned long x = 0;
		while (now_s() < e)
			x++;
		weft_yield();
	}
	return NULL;
}

/* utf8: spin_fiber under a name of 2-byte UTF-8 characters, long enough
 * to be cut at the right edge of an 80-column lint line */
static const int utf8_line = __LINE__ + 1;
__attribute__((noipa)) static void *spin_ééééééééééééééééééééééééééééééééééééé(void *arg)
{
	return spin_fiber(arg);
}

/* lock: a fiber that blocks in pthread_mutex_lock, a few frames from
 * the top of its stack */
static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static const int lock_fn_line = __LINE__ + 1;
static void *lock_fiber(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock_mu);
	pthread_mutex_unlock(&lock_mu);
	return NULL;
}
static const int lock_line = __LINE__ - 4; /* the pthread_mutex_lock call */

/* lockspare: the fiber's core goes to a spare thread while fn runs */
static void *nap(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 500 * 1000000L };
	nanosleep(&ts, NULL);
	return NULL;
}

static void *handoff_fiber(void *arg)
{
	(void)arg;
	return weft_block_in_place(nap, NULL, NULL) ? (void *)1 : NULL;
}

/* The threads holding cores 0 and 1, once only they hold cores (the
 * retired ones' threads have let go); "tids A B". handed: one of them is
 * the spare that took a core from handoff_fiber's thread. */
static int print_tids(struct weft_runtime *rt, bool handed)
{
	for (int tries = 0; tries < 1000; tries++) {
		struct weft_metrics *m;
		if (weft_runtime_metrics(rt, &m))
			return 1;
		if (handed && (m->block_in_place_count != 1 || m->block_in_place_reclaimed)) {
			fprintf(stderr, "stall_target: the core was not handed to a spare\n");
			weft_metrics_free(m);
			return 1;
		}
		bool settled = m->workers_active == 2 && m->worker[0].thread_id &&
			       m->worker[1].thread_id;
		for (unsigned i = 2; i < m->workers; i++)
			settled &= !m->worker[i].thread_id;
		if (settled)
			printf("tids %llu %llu\n", (unsigned long long)m->worker[0].thread_id,
			       (unsigned long long)m->worker[1].thread_id), fflush(stdout);
		weft_metrics_free(m);
		if (settled)
			return 0;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "stall_target: the cores' threads did not settle\n");
	return 1;
}

int main(int argc, char **argv)
{
	bool fiber = argc == 3 && !strcmp(argv[2], "fiber");
	bool shorts = argc == 3 && !strcmp(argv[2], "shortstalls");
	bool utf8 = argc == 3 && !strcmp(argv[2], "utf8");
	bool spare = argc == 3 && !strcmp(argv[2], "lockspare");
	bool lockexit = argc == 3 && !strcmp(argv[2], "lockexit");
	bool lock = spare || lockexit || (argc == 3 && !strcmp(argv[2], "lock"));
	bool exec = argc == 3 && !strcmp(argv[2], "exec");
	if (argc != 2 && !fiber && !shorts && !utf8 && !lock && !exec) {
		fprintf(stderr,
			"usage: stall_target SECONDS "
			"[fiber|shortstalls|utf8|lock|lockspare|lockexit|exec]\n");
		return 2;
	}
	double secs = atof(argv[1]);
	WEFT_OPTS(weft_runtime_opts, o, .workers = spare ? 4 : 2);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt))
		return 1;
	if (spare) {
		struct weft_task *h;
		void *r = NULL;
		if (weft_runtime_set_workers(rt, 2) || weft_spawn(rt, handoff_fiber, NULL, &h) ||
		    weft_join(h, &r) || r)
			return 1;
	}
	if (lock && print_tids(rt, spare))
		return 1;
	if (ready_wait())
		return 1;
	struct weft_task *t;
	int rc, spawn_line;
	if (lock) {
		pthread_mutex_lock(&lock_mu);
		rc = weft_spawn(rt, lock_fiber, NULL, &t), spawn_line = __LINE__;
	} else if (exec) {
		rc = weft_spawn_poll(rt, spin_exec_poll, &secs, NULL, &t), spawn_line = __LINE__;
	} else if (shorts) {
		rc = weft_spawn(rt, short_stall_fiber, &secs, &t), spawn_line = __LINE__;
	} else if (utf8) {
		rc = weft_spawn(rt, spin_ééééééééééééééééééééééééééééééééééééé, &secs, &t),
		spawn_line = __LINE__;
	} else if (fiber) {
		rc = weft_spawn(rt, spin_fiber, &secs, &t), spawn_line = __LINE__;
	} else {
		rc = weft_spawn_poll(rt, spin_poll, &secs, NULL, &t), spawn_line = __LINE__;
	}
	if (rc)
		return 1;
	if (lock)
		printf("spawn_line %d fn_line %d lock_line %d\n", spawn_line, lock_fn_line,
		       lock_line);
	else
		printf("spawn_line %d fn_line %d\n", spawn_line,
		       shorts ? short_line : utf8 ? utf8_line : fiber ? fiber_line : fn_line);
	fflush(stdout);
	if (lock) {
		struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
		nanosleep(&ts, NULL);
		if (lockexit)
			_exit(0);
		pthread_mutex_unlock(&lock_mu);
	}
	if (weft_join(t, NULL))
		return 1;
	return weft_runtime_destroy(rt) ? 1 : 0;
}
