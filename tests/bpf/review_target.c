/*
 * review_target.c - the programs behind schedtop_ops_hardening (the
 * seventeenth session's review of schedtop), one per mode:
 *   evil HEAD TAIL   a weft program that writes bogus run-queue offsets
 *                    into its own probe registry (schedtop must not trust
 *                    them), then sleeps 30 s
 *   names            threads named "aスレッド名" (the kernel keeps 15 of
 *                    its 16 bytes: a cut character) and "weft-worker-0";
 *                    a runtime; sleeps 20 s
 *   churn N          after SIGUSR1: N short-lived threads, then a 2-worker
 *                    runtime whose tasks burn CPU for 3 s
 *   churnidle N      a 2-worker runtime, parked; 0.6 s later N short-lived
 *                    threads; then its tasks burn CPU for 3 s
 *   fds FILE         a runtime; writes the targets of its open fds to FILE
 *   escapes          its own name and a thread's hold terminal escapes
 *                    (ESC, BEL, the C1 CSI U+009B), another thread is
 *                    "\e[7mw-0" (a worker for --prefix "\e[7mw"); a
 *                    runtime; sleeps 20 s (schedtop_ops_escapes)
 *   restart N [S]    N rounds of: a 2-worker runtime, S s (0.8) of tasks that
 *                    yield and park, destroy. What weft_runtime_create
 *                    allocates comes from an arena reset each round, so
 *                    every round's runtime and core counters sit at the
 *                    same addresses (as glibc often gives them);
 *                    then "polls N", the rounds' own poll counts
 *                    (schedtop_ops_restart)
 * Each prints "ready PID" first.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>
#include <weft/metrics.h>

#include "probe_abi.h"

extern struct weft_probe_registry weft_probe_registry;

static struct weft_runtime *rt_make(int workers)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt)) {
		fprintf(stderr, "review_target: runtime_create failed\n");
		exit(1);
	}
	return rt;
}

static void ready(void)
{
	printf("ready %d\n", getpid());
	fflush(stdout);
}

static void *named(void *a)
{
	prctl(PR_SET_NAME, (const char *)a);
	sleep(20);
	return NULL;
}

static void *brief(void *a)
{
	(void)a;
	usleep(100);
	return NULL;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static enum weft_poll burn(void *s, struct weft_cx *cx)
{
	double *end = s, t = now_s() + 0.001;
	while (now_s() < t)
		;
	if (now_s() < *end) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

/* n threads made and ended one after another, then two tasks burn 3 s on
 * rt's workers (a runtime of 2 made here when rt is NULL), then destroy. */
static void churn_then_burn(struct weft_runtime *rt, int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_create(&t, NULL, brief, NULL);
		pthread_join(t, NULL);
	}
	if (!rt)
		rt = rt_make(2);
	double end = now_s() + 3;
	struct weft_task *t[2];
	for (int i = 0; i < 2; i++)
		weft_spawn_poll(rt, burn, &end, NULL, &t[i]);
	for (int i = 0; i < 2; i++)
		weft_join(t[i], NULL);
	weft_runtime_destroy(rt);
}

/* weft_runtime_create's allocations: the same addresses every round */
static _Alignas(128) unsigned char arena[8 << 20];
static size_t arena_used;
static bool in_create;

static void *arena_alloc(size_t size, size_t align, void *ctx)
{
	(void)ctx;
	if (in_create) {
		size_t at = (arena_used + align - 1) & ~(align - 1);
		if (at + size <= sizeof(arena)) {
			arena_used = at + size;
			return arena + at;
		}
	}
	void *p = NULL;
	return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) ? NULL : p;
}

static void arena_free(void *p, void *ctx)
{
	(void)ctx;
	if ((unsigned char *)p < arena || (unsigned char *)p >= arena + sizeof(arena))
		free(p);
}

struct hop {
	int left;
};

static enum weft_poll hop(void *s, struct weft_cx *cx)
{
	struct hop *h = s;
	volatile unsigned x = 0;
	for (unsigned i = 0; i < 2000; i++)
		x += i;
	if (h->left-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "evil")) {
		struct weft_runtime *rt = rt_make(2);
		volatile struct weft_probe_registry *r = &weft_probe_registry;
		r->ring_head_off = strtoll(argv[2], NULL, 0);
		r->ring_tail_off = strtoll(argv[3], NULL, 0);
		ready();
		sleep(30);
		weft_runtime_destroy(rt);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "names")) {
		pthread_t t1, t2;
		pthread_create(&t1, NULL, named,
			       "a\xe3\x82\xb9\xe3\x83\xac\xe3\x83\x83\xe3\x83\x89\xe5\x90\x8d");
		pthread_create(&t2, NULL, named, "weft-worker-0");
		struct weft_runtime *rt = rt_make(1);
		ready();
		pthread_join(t1, NULL);
		weft_runtime_destroy(rt);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "churnidle")) {
		/* the workers park first, then the threads churn (the thread
		 * map's entries of the parked workers are the oldest), then
		 * the workers burn */
		int n = atoi(argv[2]);
		struct weft_runtime *rt = rt_make(2);
		ready();
		struct timespec ts = { 0, 600000000 };
		nanosleep(&ts, NULL);
		churn_then_burn(rt, n);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "churn")) {
		int n = atoi(argv[2]);
		sigset_t s;
		int sig;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		ready();
		sigwait(&s, &sig);
		churn_then_burn(NULL, n);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "fds")) {
		struct weft_runtime *rt = rt_make(1);
		ready();
		FILE *out = fopen(argv[2], "w");
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		while (out && d && (e = readdir(d))) {
			char p[300], t[PATH_MAX];
			snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
			ssize_t n = readlink(p, t, sizeof(t) - 1);
			if (n > 0) {
				t[n] = '\0';
				fprintf(out, "%s\n", t);
			}
		}
		if (d)
			closedir(d);
		if (out)
			fclose(out);
		sleep(2);
		weft_runtime_destroy(rt);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "escapes")) {
		static const char evil[] = "\x1b]0;T\x07\x1b[2J\xc2\x9b";
		pthread_t t1, t2;
		prctl(PR_SET_NAME, evil);
		pthread_create(&t1, NULL, named, (void *)evil);
		pthread_create(&t2, NULL, named, "\x1b[7mw-0");
		struct weft_runtime *rt = rt_make(1);
		ready();
		pthread_join(t1, NULL);
		weft_runtime_destroy(rt);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "restart")) {
		int rounds = atoi(argv[2]);
		unsigned long long polls = 0;
		struct weft_allocator al = { arena_alloc, arena_free, NULL };
		weft_set_allocator(&al);
		ready();
		for (int r = 0; r < rounds; r++) {
			arena_used = 0;
			in_create = true;
			struct weft_runtime *rt = rt_make(2);
			in_create = false;
			printf("round %d runtime %p\n", r, (void *)rt);
			fflush(stdout);
			double end = now_s() + (argc > 3 ? atof(argv[3]) : 0.8);
			while (now_s() < end) {
				static struct weft_task *t[128];
				static struct hop h[128];
				for (int i = 0; i < 128; i++) {
					h[i].left = 4;
					weft_spawn_poll(rt, hop, &h[i], NULL, &t[i]);
				}
				for (int i = 0; i < 128; i++)
					weft_join(t[i], NULL);
				usleep(2000); /* the workers park */
			}
			/* the rounds' own poll counts, for schedtop's total */
			struct weft_metrics *m;
			if (weft_runtime_shutdown(rt, 5000000000ull) || weft_runtime_metrics(rt, &m)) {
				fprintf(stderr, "review_target: shutdown or metrics failed\n");
				return 1;
			}
			for (unsigned i = 0; i < m->workers; i++)
				polls += m->worker[i].poll_count;
			weft_metrics_free(m);
			weft_runtime_destroy(rt);
		}
		printf("polls %llu\n", polls);
		fflush(stdout);
		return 0;
	}
	fprintf(stderr, "usage: review_target evil HEAD TAIL | names | churn N | fds FILE | "
			"escapes | restart N\n");
	return 2;
}
