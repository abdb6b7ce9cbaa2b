/*
 * fallback.h - schedtop without BPF (`--no-bpf`): what an ordinary user may
 * see of the worker threads of a process they own. Per worker thread
 * (found by name, "<prefix>-<n>" in /proc/PID/task/TID/comm): software perf
 * counters through perf_event_open (task-clock, context switches, CPU
 * migrations) and /proc (state, last CPU, utime/stime, voluntary and
 * involuntary context switches). The runtime's own figures (polls, steals,
 * parks, depths, latencies, futex sleeps, lints) need the BPF programs and
 * are listed as missing, with the reason.
 */
#ifndef SCHEDTOP_FALLBACK_H
#define SCHEDTOP_FALLBACK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "weft.h"

enum fb_counter { FB_TASK_CLOCK, FB_CTX_SWITCHES, FB_MIGRATIONS, FB_NR };

struct fb_vals {
	uint64_t perf[FB_NR];          /* task-clock ns, switches, migrations */
	uint64_t utime_ns, stime_ns;   /* /proc stat (clock ticks, converted) */
	uint64_t vol_cs, invol_cs;     /* /proc status */
};

struct fb_thread {
	int tid;                       /* 0: a free row */
	int index;                     /* the number in its name, <prefix>-<n> */
	bool alive;                    /* seen in the latest scan */
	char comm[16];
	char state;                    /* /proc state letter: R S D ... */
	int cpu;                       /* last CPU it ran on */
	int fd[FB_NR];                 /* perf fds, -1 when unavailable */
	struct fb_vals first, prev, cur; /* at first sight, previous and latest read */
};

struct fallback {
	int pid;
	char prefix[32];
	/* Rows are keyed by thread id, not by the number in the name: two
	 * runtimes, or block_in_place's spare threads, each have a
	 * weft-worker-0, and keyed by name they took turns in one row (its
	 * counters reset at each turn, one of them never shown). A row whose
	 * thread is gone shows once with state X, then is freed. */
	unsigned nworkers;             /* rows in use (threads named <prefix>-<n>) */
	struct fb_thread th[WEFT_BPF_MAX_CORES];
	unsigned order[WEFT_BPF_MAX_CORES]; /* rows in use, by index then tid */
	unsigned other_threads;        /* threads of the process that are not workers */
	/* their names, each once (the first FB_MAX_NAMES), for the message when
	 * no thread matches the prefix */
#define FB_MAX_NAMES 16
	char other_names[FB_MAX_NAMES][16];
	unsigned n_other_names;
	bool perf_ok;                  /* every perf_event_open so far worked */
	bool perf_user_only;           /* counters restricted to user mode (paranoid) */
	char perf_why[160];            /* why perf counters are missing, if they are */
	char bpf_why[320];             /* why the BPF columns are missing */
	uint64_t ts_ns, prev_ts_ns;
};

/* Prepare for `pid`; threads are found by fb_sample(). `bpf_why` says why
 * there is no BPF (shown with the missing columns). 0, -ESRCH (no such
 * process) or -EACCES/-EPERM (/proc/PID/task may not be read). */
int fb_open(struct fallback *fb, int pid, const char *prefix, const char *bpf_why);

/* Rescan the threads (workers may start late or be replaced) and read
 * every counter. 0, -ESRCH when the process is gone, or -errno when its
 * task list may not be read. */
int fb_sample(struct fallback *fb);

/* One report for the interval between the last two samples. */
void fb_print_text(FILE *f, const struct fallback *fb);
/* end: NULL, or why this is the last object (SCHEDTOP_END_*, model.h) */
void fb_print_json(FILE *f, const struct fallback *fb, const char *end);

/* When no thread matched: a prefix that names some of the threads found
 * ("<x>-<n>" for two or more n), or NULL. */
const char *fb_guess_prefix(const struct fallback *fb, char *buf, size_t n);

void fb_close(struct fallback *fb);

#endif /* SCHEDTOP_FALLBACK_H */
