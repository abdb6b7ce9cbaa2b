/*
 * skewed.c - all work is spawned from one worker, so the others must steal.
 * Prints, once per interval, each worker's polls and steals from the
 * runtime's metrics.  Usage: skewed [SECONDS] [WORKERS]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <weft/weft.h>

struct job { int yields; };

static enum weft_poll work(void *state, struct weft_cx *cx)
{
	struct job *j = state;
	volatile unsigned x = 0;
	for (int i = 0; i < 2000; i++) x += i; /* a little CPU per poll */
	if (j->yields-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

/* One task, on one worker, spawns a wave of 512 jobs; they land in its ring.
 * Its result: 0, or the error that stopped the wave (a negative errno). */
static enum weft_poll spawner(void *state, struct weft_cx *cx)
{
	for (int i = 0; i < 512; i++) {
		struct job *j = malloc(sizeof(*j));
		int rc = -ENOMEM;
		if (j) {
			j->yields = 4;
			rc = weft_spawn_poll(weft_cx_runtime(cx), work, j, free, NULL); /* frees j if refused */
		}
		if (rc) {
			weft_cx_set_result(cx, (void *)(intptr_t)rc);
			break;
		}
	}
	return WEFT_READY;
}

/* A whole number in [lo, hi], nothing after it (atoi took "abc" and "0.5"
 * as 0 seconds: nothing printed, exit 0). */
static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	long secs = 5, workers = 0;
	if (argc > 3 || (argc > 1 && parse_num(argv[1], 1, 1000000, &secs)) ||
	    (argc > 2 && parse_num(argv[2], 0, WEFT_MAX_WORKERS, &workers))) {
		fprintf(stderr, "usage: skewed [SECONDS [WORKERS]]  (SECONDS 1..1000000, default 5; "
				"WORKERS 0..%d, 0: one per CPU)\n", WEFT_MAX_WORKERS);
		return 2;
	}
	WEFT_OPTS(weft_runtime_opts, o, .workers = (int)workers);
	struct weft_runtime *rt;
	int rc = weft_runtime_create(&o, &rt);
	if (rc) { fprintf(stderr, "create: %s\n", weft_strerror(rc)); return 1; }
	for (long s = 0; s < secs * 10; s++) {
		struct weft_task *t;
		void *r = NULL;
		if ((rc = weft_spawn_poll(rt, spawner, NULL, NULL, &t)) ||
		    (rc = weft_join(t, &r)) || (rc = (int)(intptr_t)r)) {
			fprintf(stderr, "spawn: %s\n", weft_strerror(rc));
			weft_runtime_destroy(rt);
			return 1;
		}
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
		if (s % 10 != 9)
			continue;
		struct weft_metrics *m;
		if (weft_runtime_metrics(rt, &m) == 0) {
			printf("t=%2lds alive=%-6llu", s / 10 + 1, (unsigned long long)m->alive_tasks);
			for (unsigned w = 0; w < m->workers; w++)
				printf(" | w%u polls=%-8llu stolen=%-7llu parks=%llu", w,
				       (unsigned long long)m->worker[w].poll_count,
				       (unsigned long long)m->worker[w].steal_count,
				       (unsigned long long)m->worker[w].park_count);
			printf("\n");
			weft_metrics_free(m);
		}
	}
	return weft_runtime_destroy(rt) ? 1 : 0;
}
