/* many_rt.c - many runtimes in one process (schedtop_many_rt).
 *
 * many_rt N W ROUNDS: creates N runtimes of W workers, one after another,
 * each alive at once; then ROUNDS rounds of 200 one-poll tasks into each,
 * 50 ms apart; prints the sum of the runtimes' own poll counts and workers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>
#include <weft/metrics.h>
static enum weft_poll one(void *s, struct weft_cx *cx) { (void)s; (void)cx; return WEFT_READY; }
static void sleep_ms(long ms) { struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L }; while (nanosleep(&ts, &ts) && errno == EINTR) ; }
int main(int argc, char **argv)
{
	int n = atoi(argv[1]), w = atoi(argv[2]), rounds = atoi(argv[3]);
	struct weft_runtime **rt = calloc((size_t)n, sizeof(*rt));
	for (int i = 0; i < n; i++) {
		WEFT_OPTS(weft_runtime_opts, o, .workers = (unsigned)w);
		if (weft_runtime_create(&o, &rt[i])) { fprintf(stderr, "create %d failed\n", i); return 1; }
	}
	printf("ready %d\n", (int)getpid()); fflush(stdout);
	sleep_ms(300);
	struct weft_task *t[200];
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			for (int k = 0; k < 200; k++) weft_spawn_poll(rt[i], one, NULL, NULL, &t[k]);
			for (int k = 0; k < 200; k++) weft_join(t[k], NULL);
		}
		sleep_ms(50);
	}
	unsigned long long polls = 0, workers = 0;
	for (int i = 0; i < n; i++) {
		weft_runtime_shutdown(rt[i], 1000000000ull);
		struct weft_metrics *m; weft_runtime_metrics(rt[i], &m);
		for (unsigned k = 0; k < m->workers; k++) polls += m->worker[k].poll_count;
		workers += m->workers; weft_metrics_free(m);
	}
	printf("{\"polls\":%llu,\"workers\":%llu}\n", polls, workers); fflush(stdout);
	for (int i = 0; i < n; i++) weft_runtime_destroy(rt[i]);
	return 0;
}
