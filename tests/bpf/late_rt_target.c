/*
 * late_rt_target.c - runtimes created while schedtop already traces the
 * process (schedtop_trace_late_rt, schedtop_trace_ended_rt).
 *
 *   late_rt_target SECONDS [recreate]
 *
 * Prints "ready PID" and waits for SIGUSR1 with no runtime yet; then
 * creates a 2-worker runtime and spawns and joins batches of 64 one-poll
 * tasks for SECONDS, prints "tasks N", and keeps the runtime 10 s more.
 * With `recreate`, the first runtime is destroyed after its SECONDS and a
 * second one does the same ("tasks M"), then is kept 10 s: the first
 * ended during the trace (at the second's address, often: malloc reuses
 * it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft/weft.h>

#include "ready_wait.h"

static enum weft_poll nop_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_READY;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Batches of 64 one-poll tasks on rt for `secs`: the number run, or -1. */
static long run_tasks(struct weft_runtime *rt, double secs)
{
	long n = 0;
	double end = now_s() + secs;
	while (now_s() < end) {
		struct weft_task *t[64];
		for (int i = 0; i < 64; i++)
			if (weft_spawn_poll(rt, nop_poll, NULL, NULL, &t[i]))
				return -1;
		for (int i = 0; i < 64; i++)
			if (weft_join(t[i], NULL))
				return -1;
		n += 64;
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "recreate"))) {
		fprintf(stderr, "usage: late_rt_target SECONDS [recreate]\n");
		return 2;
	}
	double secs = atof(argv[1]);
	if (ready_wait())
		return 1;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt))
		return 1;
	long n = run_tasks(rt, secs);
	if (n < 0)
		return 1;
	if (argc == 3) {
		printf("tasks %ld\n", n);
		fflush(stdout);
		if (weft_runtime_destroy(rt) || weft_runtime_create(&o, &rt))
			return 1;
		if ((n = run_tasks(rt, secs)) < 0)
			return 1;
	}
	printf("tasks %ld\n", n);
	fflush(stdout);
	/* outlast the trace (the test kills us) */
	struct timespec ts = { 10, 0 };
	nanosleep(&ts, NULL);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
