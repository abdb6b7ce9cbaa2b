/*
 * weft_load.c - the fixed workload of the BPF tests: all tasks spawned from
 * one worker (a spawner task pushing a wave of jobs into its own ring), so
 * the other workers must steal; the ring overflows to the inject queue.
 *
 *   weft_load [--wait] [--undumpable] WORKERS WAVES
 *
 * --undumpable: prctl(PR_SET_DUMPABLE, 0) first, as a process that gained
 * privileges at exec would be (schedtop's access check must refuse it).
 * --wait: print "ready PID" and wait for SIGUSR1 before creating the
 * runtime, so a tracer attached meanwhile sees the runtime's whole life.
 * At the end it shuts the runtime down (every worker publishes its final
 * counters) and prints its own metrics as one JSON line:
 *   {"workers":N,"worker":[{"park_count":..,"steal_count":..,...},...]}
 * steal_wait_rounds is not in the public metrics: it is read from the
 * core's probe counters, found through the probe registry as schedtop
 * finds them (lib/probe/probe_abi.h).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>
#include <weft/metrics.h>

#include "probe_abi.h"
#include "ready_wait.h"

extern struct weft_probe_registry weft_probe_registry;

/* Core i's steal_wait_rounds, from the registry slot of rt. */
static unsigned long long wait_rounds(struct weft_runtime *rt, unsigned i)
{
	for (unsigned k = 0; k < WEFT_PROBE_REG_SLOTS; k++) {
		const struct weft_probe_reg_slot *s = &weft_probe_registry.slot[k];
		if (s->rt != (uintptr_t)rt || i >= s->ncores)
			continue;
		const struct weft_probe_counters *c =
			(const void *)(uintptr_t)(s->counters + i * s->stride);
		return c->steal_wait_rounds;
	}
	fprintf(stderr, "weft_load: runtime not in the probe registry\n");
	exit(1);
}

struct job { int yields; };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Each poll works for 1 us of wall time, not a fixed loop: short for the
 * steal policy (under its 2 us, lib/sched/steal.h) on any host, so the end
 * of each wave, a ring of fewer than 128 such tasks its owner drains for
 * up to ~128 us, has thieves wait on it (steal_wait_rounds, which the
 * counts test needs). A 2,000-iteration loop took ~2 us on earlier hosts
 * and well under 1 us on the host of 2026-12-04, where rings drained
 * before a thief waited and the test saw no wait at all. */
static enum weft_poll work(void *state, struct weft_cx *cx)
{
	struct job *j = state;
	uint64_t until = now_ns() + 1000;
	while (now_ns() < until)
		;
	if (j->yields-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

static enum weft_poll spawner(void *state, struct weft_cx *cx)
{
	for (int i = 0; i < 600; i++) {
		struct job *j = malloc(sizeof(*j));
		if (!j)
			abort();
		j->yields = 3;
		if (weft_spawn_poll(weft_cx_runtime(cx), work, j, free, NULL))
			abort();
	}
	return WEFT_READY;
}

int main(int argc, char **argv)
{
	int a = 1;
	bool wait = false;
	for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
		if (!strcmp(argv[a], "--wait")) {
			wait = true;
		} else if (!strcmp(argv[a], "--undumpable")) {
			if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
				return 1;
		} else {
			break;
		}
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: weft_load [--wait] [--undumpable] WORKERS WAVES\n");
		return 2;
	}
	int workers = atoi(argv[a]), waves = atoi(argv[a + 1]);
	if (wait && ready_wait())
		return 1;
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	int rc = weft_runtime_create(&o, &rt);
	if (rc) {
		fprintf(stderr, "weft_load: create: %s\n", weft_strerror(rc));
		return 1;
	}
	for (int w = 0; w < waves; w++) {
		struct weft_task *t;
		if (weft_spawn_poll(rt, spawner, NULL, NULL, &t) || weft_join(t, NULL))
			return 1;
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	/* Let the last wave finish, then stop: the workers publish their final
	 * counters before they exit, so the snapshot below is exact. */
	for (int i = 0; i < 200; i++) {
		struct weft_metrics *m;
		if (weft_runtime_metrics(rt, &m))
			return 1;
		uint64_t alive = m->alive_tasks;
		weft_metrics_free(m);
		if (!alive)
			break;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	rc = weft_runtime_shutdown(rt, 5000000000ull);
	if (rc) {
		fprintf(stderr, "weft_load: shutdown: %s\n", weft_strerror(rc));
		return 1;
	}
	struct weft_metrics *m;
	if (weft_runtime_metrics(rt, &m))
		return 1;
	printf("{\"workers\":%u,\"worker\":[", m->workers);
	for (unsigned i = 0; i < m->workers; i++) {
		const struct weft_worker_metrics *w = &m->worker[i];
		printf("%s{\"park_count\":%llu,\"noop_count\":%llu,\"steal_count\":%llu,"
		       "\"steal_operations\":%llu,\"poll_count\":%llu,\"overflow_count\":%llu,"
		       "\"steal_wait_rounds\":%llu}",
		       i ? "," : "", (unsigned long long)w->park_count,
		       (unsigned long long)w->noop_count, (unsigned long long)w->steal_count,
		       (unsigned long long)w->steal_operations, (unsigned long long)w->poll_count,
		       (unsigned long long)w->overflow_count, wait_rounds(rt, i));
	}
	printf("]}\n");
	fflush(stdout);
	weft_metrics_free(m);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
