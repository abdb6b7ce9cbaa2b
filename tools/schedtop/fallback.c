/*
 * fallback.c - schedtop without BPF; see fallback.h.
 *
 * perf_event_open(2) on another thread needs ptrace read access to it
 * (same user, or CAP_PERFMON / CAP_SYS_PTRACE). With
 * kernel.perf_event_paranoid >= 2 an unprivileged user may only count user
 * mode: the counters are opened with exclude_kernel=0 first and, on EACCES,
 * again with exclude_kernel=1 (perf_user_only). Under user-only counting
 * the kernel does not count context switches (they happen in kernel mode);
 * /proc's voluntary/involuntary counts do not depend on it and are always
 * shown. Task-clock and migrations are counted either way.
 *
 * Every sample rescans /proc/PID/task: a worker thread seen under a new
 * tid (runtime recreated) gets fresh counters; a thread that is gone keeps
 * its last values and shows as exited ("X").
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "jwalk.h"
#include "fallback.h"

static const struct {
	uint64_t config;
	const char *name;
} fb_counters[FB_NR] = {
	{ PERF_COUNT_SW_TASK_CLOCK, "task-clock" },
	{ PERF_COUNT_SW_CONTEXT_SWITCHES, "context-switches" },
	{ PERF_COUNT_SW_CPU_MIGRATIONS, "cpu-migrations" },
};

/* JSON keys only BPF provides (worker rows, then process-wide). */
static const char *const missing_keys[] = {
	"state",           "running_pct",    "polls_per_s",   "local_depth",  "steals_in",
	"tasks_stolen_in", "steals_out",     "tasks_stolen_out", "steal_fails", "steal_waits", "parks",
	"unparks",         "noop_unparks",   "overflows",     "park_p50_ns",  "park_p99_ns",
	"unpark_p99_ns",   "invol_with_work", "futex_waits",  "futex_wait_ns", "steal_matrix",
	"inject_depth",    "lints",
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int perf_open(int tid, uint64_t config, bool user_only)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = config;
	a.exclude_kernel = user_only;
	a.exclude_hv = 1;
	int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void thread_close(struct fb_thread *t)
{
	for (int k = 0; k < FB_NR; k++) {
		if (t->fd[k] >= 0)
			close(t->fd[k]);
		t->fd[k] = -1;
	}
}

static void thread_open_perf(struct fallback *fb, struct fb_thread *t)
{
	for (int k = 0; k < FB_NR; k++) {
		int fd = perf_open(t->tid, fb_counters[k].config, fb->perf_user_only);
		if (fd == -EACCES && !fb->perf_user_only) {
			fd = perf_open(t->tid, fb_counters[k].config, true);
			if (fd >= 0) {
				/* from now on user mode only, for every counter */
				fb->perf_user_only = true;
				for (int j = 0; j < k; j++) {
					if (t->fd[j] >= 0)
						close(t->fd[j]);
					t->fd[j] = perf_open(t->tid, fb_counters[j].config, true);
				}
			}
		}
		t->fd[k] = fd >= 0 ? fd : -1;
		if (fd < 0 && fb->perf_ok) {
			fb->perf_ok = false;
			snprintf(fb->perf_why, sizeof(fb->perf_why),
				 "perf_event_open(%s) on thread %d: %s%s", fb_counters[k].name,
				 t->tid, strerror(-fd),
				 fd == -EACCES || fd == -EPERM
					 ? " (another user's process needs CAP_PERFMON; see "
					   "kernel.perf_event_paranoid)"
					 : "");
		}
	}
}

static bool read_file(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t k = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[k] = '\0';
	return k > 0;
}

/* /proc/PID/task/TID/{stat,status} into t->cur; false when the thread is
 * gone. */
static bool thread_read_proc(int pid, struct fb_thread *t, long tck)
{
	char p[96], buf[4096];
	snprintf(p, sizeof(p), "/proc/%d/task/%d/stat", pid, t->tid);
	if (!read_file(p, buf, sizeof(buf)))
		return false;
	char *rp = strrchr(buf, ')');
	if (!rp)
		return false;
	/* after ')': field 3 (state) is token 0, so field k is token k - 3 */
	char *tok[40], *save = NULL;
	int n = 0;
	for (char *s = strtok_r(rp + 1, " ", &save); s && n < 40; s = strtok_r(NULL, " ", &save))
		tok[n++] = s;
	if (n < 37)
		return false;
	t->state = tok[0][0];
	t->cur.utime_ns = strtoull(tok[11], NULL, 10) * (1000000000ull / (uint64_t)tck);
	t->cur.stime_ns = strtoull(tok[12], NULL, 10) * (1000000000ull / (uint64_t)tck);
	t->cpu = atoi(tok[36]);
	snprintf(p, sizeof(p), "/proc/%d/task/%d/status", pid, t->tid);
	if (read_file(p, buf, sizeof(buf))) {
		char *v = strstr(buf, "\nvoluntary_ctxt_switches:");
		if (v)
			t->cur.vol_cs = strtoull(strchr(v, ':') + 1, NULL, 10);
		v = strstr(buf, "\nnonvoluntary_ctxt_switches:");
		if (v)
			t->cur.invol_cs = strtoull(strchr(v, ':') + 1, NULL, 10);
	}
	return true;
}

static void thread_read_perf(struct fb_thread *t)
{
	for (int k = 0; k < FB_NR; k++) {
		uint64_t v;
		if (t->fd[k] >= 0 && read(t->fd[k], &v, sizeof(v)) == (ssize_t)sizeof(v))
			t->cur.perf[k] = v;
	}
}

/* "<prefix>-<n>" -> n, or -1. */
static int worker_index(const char *comm, const char *prefix)
{
	size_t l = strlen(prefix);
	if (strncmp(comm, prefix, l) || comm[l] != '-' || !comm[l + 1])
		return -1;
	char *e;
	long n = strtol(comm + l + 1, &e, 10);
	if (*e || n < 0 || n >= WEFT_BPF_MAX_CORES)
		return -1;
	return (int)n;
}

int fb_open(struct fallback *fb, int pid, const char *prefix, const char *bpf_why)
{
	char p[64];
	memset(fb, 0, sizeof(*fb));
	fb->pid = pid;
	snprintf(fb->prefix, sizeof(fb->prefix), "%s", prefix ? prefix : "weft-worker");
	snprintf(fb->bpf_why, sizeof(fb->bpf_why), "%s", bpf_why);
	fb->perf_ok = true;
	for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++)
		for (int k = 0; k < FB_NR; k++)
			fb->th[i].fd[k] = -1;
	snprintf(p, sizeof(p), "/proc/%d/task", pid);
	if (access(p, R_OK) == 0)
		return 0;
	return errno == ENOENT ? -ESRCH : -errno;
}

static void note_other_name(struct fallback *fb, const char *comm)
{
	for (unsigned i = 0; i < fb->n_other_names; i++)
		if (!strcmp(fb->other_names[i], comm))
			return;
	if (fb->n_other_names < FB_MAX_NAMES)
		snprintf(fb->other_names[fb->n_other_names++], sizeof(fb->other_names[0]), "%.15s",
			 comm);
}

const char *fb_guess_prefix(const struct fallback *fb, char *buf, size_t n)
{
	for (unsigned i = 0; i < fb->n_other_names; i++) {
		const char *dash = strrchr(fb->other_names[i], '-');
		if (!dash || dash == fb->other_names[i])
			continue;
		size_t l = (size_t)(dash - fb->other_names[i]);
		char pre[16];
		snprintf(pre, sizeof(pre), "%.*s", (int)l, fb->other_names[i]);
		unsigned hits = 0;
		for (unsigned j = 0; j < fb->n_other_names; j++)
			if (worker_index(fb->other_names[j], pre) >= 0)
				hits++;
		if (hits >= 2) {
			snprintf(buf, n, "%s", pre);
			return buf;
		}
	}
	return NULL;
}

int fb_sample(struct fallback *fb)
{
	char p[64];
	long tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0)
		tck = 100;
	snprintf(p, sizeof(p), "/proc/%d/task", fb->pid);
	DIR *d = opendir(p);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	fb->prev_ts_ns = fb->ts_ns;
	fb->ts_ns = now_ns();
	for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++) {
		struct fb_thread *t = &fb->th[i];
		if (t->tid && !t->alive && t->state == 'X') { /* shown gone once: free it */
			thread_close(t);
			memset(t, 0, sizeof(*t));
			for (int k = 0; k < FB_NR; k++)
				t->fd[k] = -1;
		}
		t->prev = t->cur;
		t->alive = false;
	}
	fb->other_threads = 0;
	fb->n_other_names = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int tid = atoi(de->d_name);
		char path[96], comm[32];
		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", fb->pid, tid);
		if (!read_file(path, comm, sizeof(comm)))
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		int w = worker_index(comm, fb->prefix);
		if (w < 0) {
			fb->other_threads++;
			note_other_name(fb, comm);
			continue;
		}
		struct fb_thread *t = NULL, *free_row = NULL;
		for (unsigned i = 0; i < WEFT_BPF_MAX_CORES && !t; i++) {
			if (fb->th[i].tid == tid)
				t = &fb->th[i];
			else if (!fb->th[i].tid && !free_row)
				free_row = &fb->th[i];
		}
		bool fresh = !t;
		if (fresh) {
			if (!free_row) { /* more worker threads than rows */
				fb->other_threads++;
				continue;
			}
			t = free_row;
			memset(&t->first, 0, sizeof(t->first));
			memset(&t->cur, 0, sizeof(t->cur));
			t->tid = tid;
			thread_open_perf(fb, t);
		}
		/* the name may change (a thread renamed, a tid reused) */
		t->index = w;
		snprintf(t->comm, sizeof(t->comm), "%.15s", comm);
		if (!thread_read_proc(fb->pid, t, tck))
			continue;
		thread_read_perf(t);
		if (fresh) {
			/* /proc counts from the thread's start, perf from now: the
			 * first interval starts here for both */
			t->first = t->cur;
			t->prev = t->cur;
		}
		t->alive = true;
	}
	closedir(d);
	fb->nworkers = 0;
	for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++) {
		struct fb_thread *t = &fb->th[i];
		if (!t->tid)
			continue;
		if (!t->alive)
			t->state = 'X';
		/* insertion by (index, tid) */
		unsigned j = fb->nworkers++;
		while (j > 0) {
			const struct fb_thread *o = &fb->th[fb->order[j - 1]];
			if (o->index < t->index || (o->index == t->index && o->tid < t->tid))
				break;
			fb->order[j] = fb->order[j - 1];
			j--;
		}
		fb->order[j] = i;
	}
	return 0;
}

static uint64_t dd(uint64_t a, uint64_t b)
{
	return a >= b ? a - b : 0;
}

static double fb_dt(const struct fallback *fb)
{
	return fb->prev_ts_ns && fb->ts_ns > fb->prev_ts_ns
		       ? (double)(fb->ts_ns - fb->prev_ts_ns) / 1e9
		       : 0;
}

static double cpu_pct(const struct fallback *fb, const struct fb_thread *t, double dt)
{
	if (dt <= 0)
		return 0;
	uint64_t ns = t->fd[FB_TASK_CLOCK] >= 0
			      ? dd(t->cur.perf[FB_TASK_CLOCK], t->prev.perf[FB_TASK_CLOCK])
			      : dd(t->cur.utime_ns + t->cur.stime_ns, t->prev.utime_ns + t->prev.stime_ns);
	(void)fb;
	return 100.0 * (double)ns / (dt * 1e9);
}

void fb_print_text(FILE *f, const struct fallback *fb)
{
	double dt = fb_dt(fb);
	fprintf(f, "pid %d  workers %u  other threads %u  NO BPF: perf_event_open%s + /proc\n",
		fb->pid, fb->nworkers, fb->other_threads,
		fb->perf_ok ? (fb->perf_user_only ? " (user mode only)" : "") : " (unavailable)");
	fprintf(f, "missing: runtime state, polls/s, depth, steals, parks, unparks, overflows, "
		   "park/unpark latency, futex sleeps, steal matrix, lints\n  why: %s\n",
		fb->bpf_why);
	if (!fb->perf_ok)
		fprintf(f, "missing: perf counters (task-clock, context-switches, cpu-migrations): "
			   "%s; CPU%% from /proc\n", fb->perf_why);
	if (fb->perf_ok && fb->perf_user_only)
		fprintf(f, "note: perf counts user mode only (kernel.perf_event_paranoid): CS is 0; "
			   "VCS/NVCS from /proc\n");
	if (!fb->nworkers) {
		char guess[16];
		fprintf(f, "no thread named %s-<n> (yet): not a weft process, or another "
			   "thread_name_prefix (--prefix)\n  %u threads, named:", fb->prefix,
			fb->other_threads);
		for (unsigned i = 0; i < fb->n_other_names; i++) {
			char safe[sizeof(fb->other_names[i]) * 4];
			fprintf(f, "%s %s", i ? "," : "",
				tx_safe(safe, sizeof(safe), fb->other_names[i]));
		}
		if (fb->other_threads > fb->n_other_names && fb->n_other_names == FB_MAX_NAMES)
			fprintf(f, ", ...");
		fprintf(f, "\n");
		if (fb_guess_prefix(fb, guess, sizeof(guess)))
			fprintf(f, "  try --prefix %s\n", guess);
	}
	fprintf(f, "%-3s %-7s %-15s %2s %3s %6s %9s %6s %5s %6s %6s %8s %8s\n", "W", "TID", "COMM",
		"ST", "CPU", "CPU%", "TASKCLK", "CS", "MIGR", "VCS", "NVCS", "UTIME", "STIME");
	for (unsigned i = 0; i < fb->nworkers; i++) {
		const struct fb_thread *t = &fb->th[fb->order[i]];
		char comm[sizeof(t->comm) * 4];
		fprintf(f, "%-3d %-7d %-15s %2c %3d %6.1f %7.1fms %6" PRIu64 " %5" PRIu64 " %6" PRIu64
			   " %6" PRIu64 " %6.1fms %6.1fms\n",
			t->index, t->tid, tx_safe(comm, sizeof(comm), t->comm), t->state ? t->state : '?', t->cpu, cpu_pct(fb, t, dt),
			(double)dd(t->cur.perf[FB_TASK_CLOCK], t->prev.perf[FB_TASK_CLOCK]) / 1e6,
			dd(t->cur.perf[FB_CTX_SWITCHES], t->prev.perf[FB_CTX_SWITCHES]),
			dd(t->cur.perf[FB_MIGRATIONS], t->prev.perf[FB_MIGRATIONS]),
			dd(t->cur.vol_cs, t->prev.vol_cs), dd(t->cur.invol_cs, t->prev.invol_cs),
			(double)dd(t->cur.utime_ns, t->prev.utime_ns) / 1e6,
			(double)dd(t->cur.stime_ns, t->prev.stime_ns) / 1e6);
	}
	fflush(f);
}

static void json_str(FILE *f, const char *s) { jw_print_str(f, s); }

void fb_print_json(FILE *f, const struct fallback *fb, const char *end)
{
	double dt = fb_dt(fb);
	fprintf(f, "{\"schema\":\"schedtop-nobpf/1\",\"bpf\":false,\"final\":%s,",
		end ? "true" : "false");
	if (end)
		fprintf(f, "\"end\":\"%s\",", end);
	fprintf(f, "\"pid\":%d,\"ts_ns\":%" PRIu64 ",\"interval_s\":%.3f,\"workers\":%u,"
		   "\"other_threads\":%u,\"other_thread_names\":[",
		fb->pid, fb->ts_ns, dt, fb->nworkers, fb->other_threads);
	for (unsigned i = 0; i < fb->n_other_names; i++) {
		if (i)
			fputc(',', f);
		json_str(f, fb->other_names[i]);
	}
	fprintf(f, "],\"thread_prefix\":");
	json_str(f, fb->prefix);
	fprintf(f, ",\"perf\":{\"ok\":%s,\"user_mode_only\":%s,\"error\":",
		fb->perf_ok ? "true" : "false", fb->perf_user_only ? "true" : "false");
	json_str(f, fb->perf_ok ? "" : fb->perf_why);
	fprintf(f, ",\"note\":");
	json_str(f, fb->perf_ok && fb->perf_user_only
			    ? "user mode only (kernel.perf_event_paranoid >= 2 without CAP_PERFMON): "
			      "context_switches stay 0, vol_cs/invol_cs from /proc count them"
			    : "");
	fprintf(f, "},\"missing\":[");
	size_t nm = sizeof(missing_keys) / sizeof(missing_keys[0]);
	for (size_t i = 0; i < nm; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", missing_keys[i]);
	if (!fb->perf_ok)
		fprintf(f, ",\"task_clock_ns\",\"context_switches\",\"cpu_migrations\"");
	else if (fb->perf_user_only)
		fprintf(f, ",\"context_switches\""); /* 0 under user-mode-only counting */
	fprintf(f, "],\"missing_why\":");
	json_str(f, fb->bpf_why);
	fprintf(f, ",\"worker\":[");
	bool first = true;
	for (unsigned i = 0; i < fb->nworkers; i++) {
		const struct fb_thread *t = &fb->th[fb->order[i]];
		const struct fb_vals *c = &t->cur, *p = &t->prev, *z = &t->first;
		fprintf(f, "%s{\"core\":%d,\"tid\":%d,\"comm\":", first ? "" : ",", t->index,
			t->tid);
		json_str(f, t->comm);
		fprintf(f,
			",\"kstate\":\"%c\",\"last_cpu\":%d,\"cpu_pct\":%.1f,"
			"\"task_clock_ns\":%" PRIu64 ",\"context_switches\":%" PRIu64
			",\"cpu_migrations\":%" PRIu64 ",\"utime_ns\":%" PRIu64 ",\"stime_ns\":%" PRIu64
			",\"vol_cs\":%" PRIu64 ",\"invol_cs\":%" PRIu64
			",\"total\":{\"task_clock_ns\":%" PRIu64 ",\"context_switches\":%" PRIu64
			",\"cpu_migrations\":%" PRIu64 ",\"vol_cs\":%" PRIu64 ",\"invol_cs\":%" PRIu64 "}}",
			t->state ? t->state : '?', t->cpu, cpu_pct(fb, t, dt),
			dd(c->perf[FB_TASK_CLOCK], p->perf[FB_TASK_CLOCK]),
			dd(c->perf[FB_CTX_SWITCHES], p->perf[FB_CTX_SWITCHES]),
			dd(c->perf[FB_MIGRATIONS], p->perf[FB_MIGRATIONS]),
			dd(c->utime_ns, p->utime_ns), dd(c->stime_ns, p->stime_ns),
			dd(c->vol_cs, p->vol_cs), dd(c->invol_cs, p->invol_cs),
			dd(c->perf[FB_TASK_CLOCK], z->perf[FB_TASK_CLOCK]),
			dd(c->perf[FB_CTX_SWITCHES], z->perf[FB_CTX_SWITCHES]),
			dd(c->perf[FB_MIGRATIONS], z->perf[FB_MIGRATIONS]), dd(c->vol_cs, z->vol_cs),
			dd(c->invol_cs, z->invol_cs));
		first = false;
	}
	fprintf(f, "]}\n");
	fflush(f);
}

void fb_close(struct fallback *fb)
{
	for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++)
		thread_close(&fb->th[i]);
}
