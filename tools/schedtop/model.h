/*
 * model.h - schedtop's figures, computed from two snapshots of the BPF
 * aggregates, and the lints. No BPF here: the same code runs on live
 * snapshots (mon.c) and on recorded ones (`schedtop report FILE`, the
 * fixture tests in tests/bpf/).
 */
#ifndef SCHEDTOP_MODEL_H
#define SCHEDTOP_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "weft.h"

/* One copy of the BPF side's .bss plus what user space adds. */
struct snap {
	uint64_t ts_ns;                 /* CLOCK_MONOTONIC */
	uint64_t pid;                   /* the process watched (0: not recorded) */
	unsigned ncores;                /* workers shown (<= WEFT_BPF_MAX_CORES) */
	uint64_t drops, events, usdt_events, cores_dropped;
	uint64_t workers_declared, runtimes_created, runtimes_shutdown, last_rt;
	uint64_t slots_used;            /* (runtime, core) slots given out; 0: an old
					 * recording, where slot = core */
	uint64_t bpf_run_ns, bpf_run_cnt; /* BPF_ENABLE_STATS totals over our programs */
	uint64_t self_cpu_ns;           /* schedtop's own user+sys CPU time */
	char futex_src[64];             /* programs timing futex waits (mon.h) */
	unsigned hbins;                 /* read from a file: its histograms' bucket count
					 * ("hbins"; 0: a file from before it, 32 buckets) */
	struct weft_bpf_core cores[WEFT_BPF_SLOTS];
	struct weft_bpf_hist_slots hists[WEFT_BPF_SLOTS][WEFT_H_NR];
	struct weft_bpf_steal_cell matrix[WEFT_BPF_MAX_CORES][WEFT_BPF_MAX_CORES];
	/* blocking calls in tasks (live only: not in recorded snapshots); a
	 * record torn by a concurrent write has start_ts 0 */
	struct weft_bpf_block blocks[WEFT_BPF_MAX_CORES];
	/* queue depths read from the target's memory (stall.c; live only):
	 * when set, newer than what the probes said */
	uint64_t fresh_depth[WEFT_BPF_MAX_CORES], fresh_depth_ts[WEFT_BPF_MAX_CORES];
	uint64_t fresh_inject, fresh_inject_ts;
	/* each core's poll count read from memory (stall.c; live only): known
	 * for a worker stuck since before the attach, which no probe reports */
	uint64_t fresh_polls[WEFT_BPF_MAX_CORES], fresh_polls_ts[WEFT_BPF_MAX_CORES];
	/* each core's state as its counters tell it (stall.c; live only),
	 * for a core no probe or park has given a state since the attach
	 * (cores[].state WEFT_ST_UNKNOWN; 0: not read): workers asleep in
	 * their parks since before the attach fire none, and read unknown
	 * for good on an idle runtime. snap_state says which to show. */
	unsigned fresh_state[WEFT_BPF_MAX_CORES];
	uint64_t fresh_state_ts[WEFT_BPF_MAX_CORES];
};

/* Lint thresholds (documented in docs/OBSERVABILITY.md). */
#define LINT_IMBALANCE_DEPTH 64      /* one worker's local depth - the shallowest's ... */
#define LINT_IMBALANCE_INTERVALS 3   /* ... for this many intervals in a row, same worker */
#define LINT_STEAL_STORM_MIN_PER_S 1000.0 /* steal attempts/s, at least */
/* attempts per poll, at least: an idle runtime woken for one task costs
 * at most two searches (the woken worker and the searcher it relays to) */
#define LINT_STEAL_STORM_RATIO 4.0
/* steal-storm's second shape, tasks bouncing between workers: at least this
 * many successful steals a second, one per LINT_STEAL_BOUNCE_POLLS polls or
 * more often, and at least LINT_STEAL_BOUNCE_BOTH of them going both ways
 * (sum over workers of min(steals in, steals out) / steals) - work spread
 * one way (a spawner and its thieves) is not a storm. */
#define LINT_STEAL_BOUNCE_MIN_PER_S 20000.0
#define LINT_STEAL_BOUNCE_POLLS 50.0
#define LINT_STEAL_BOUNCE_BOTH 0.5
/* herd (a wake storm): workers woken this often ... */
/* (1000: the storms wake 1,800-3,100 times a second; the demo's skew beside
 * another runtime once reached 594 with 193 polls each, over 500) */
#define LINT_HERD_MIN_UNPARKS_PER_S 1000.0
/* ... each wake with a burst of tasks (8: on the host of 2026-12-04's
 * thirteenth session the wake-storm program woke 6,000-17,500 times a
 * second with 10.6-37 polls per wake, under the old 16 in half of its
 * intervals; healthy loads: 1 (a thread spawning into an idle runtime),
 * or fewer than 1,000 wakes a second) ... */
#define LINT_HERD_POLLS_PER_UNPARK 8.0
/* ... and at least this many polls a second riding on them (30,000: the
 * storm program polls 212,000-229,000 times a second on both hosts, the
 * herd fixture 40,000; a healthy thread spawning bursts of 2,000 tasks
 * every 200 ms, slowed by a loaded machine, once woke 1,214 times a
 * second with 13 polls per wake - 15,800 polls a second, and two bursts
 * in one 0.25 s interval make at most 16,000) */
#define LINT_HERD_MIN_POLLS_PER_S 30000.0
#define LINT_HERD_PARKED 0.5         /* ... out of a mostly parked runtime (mean share) */
/* ... or, the same storm in its other shape, woken this often and mostly
 * for nothing (the storm's tasks pushed one at a time, every push waking
 * a worker that another one beats to it) */
#define LINT_HERD_EMPTY_UNPARKS_PER_S 10000.0
#define LINT_HERD_EMPTY_SHARE 0.8

#define LINT_LONG_POLL_MS 100      /* long-poll: one poll longer than this (live only, stall.c) */
#define LINT_BLOCKING_MS 10        /* blocking-call: off-CPU inside a poll this long (live only) */

enum lint_id { LINT_IMBALANCE, LINT_STEAL_STORM, LINT_HERD, LINT_STUCK_WORKER, LINT_LONG_POLL,
	       LINT_BLOCKING_CALL, LINT_NR };
extern const char *const lint_names[LINT_NR];

struct lint_state {            /* carried from one interval to the next */
	unsigned imbalance_run[WEFT_BPF_MAX_CORES]; /* intervals in a row this worker was deep */
	/* per slot: the polls of the runtimes that held the slot before the
	 * current one (its poll counter restarted from 0), so that total.polls
	 * never decreases */
	uint64_t polls_before[WEFT_BPF_MAX_CORES];
};

struct worker_row {
	unsigned core;                /* index in its runtime */
	unsigned slot;                /* BPF slot (index of cores[] in the snapshot) */
	uint64_t rt;                  /* runtime id */
	unsigned tid;
	unsigned state;               /* enum weft_bpf_state, latest */
	double state_frac[WEFT_ST_NR];/* share of the interval in each state */
	uint64_t polls, steals_in, tasks_in, steals_out, tasks_out, steal_fails, steal_waits;
	uint64_t parks, unparks, noop_unparks, overflows, spills, notified;
	uint64_t local_depth, depth_max;
	/* how old state and local_depth are (the last probe or park that
	 * reported them; -1: none yet); stale: not reported during this
	 * interval, so not current (a parked worker's are: the kernel says
	 * when it wakes, and only it can fill its queue) */
	double age_s;
	bool stale;
	/* local_depth's own: read from the target's memory at the last sample
	 * when schedtop could (live), else the same as age_s / stale */
	double depth_age_s;
	bool depth_stale;
	double polls_per_s;
	uint64_t park_p50_ns, park_p99_ns, unpark_p99_ns, futex_p99_ns;
	double cpu_pct;
	uint64_t vol_cs, invol_cs, invol_with_work, migrations, futex_waits, futex_wait_ns;
	/* totals since attach */
	uint64_t tot_steals_in, tot_tasks_in, tot_steals_out, tot_tasks_out, tot_parks,
		tot_unparks, tot_noop, tot_overflows, tot_polls, tot_steal_waits;
};

/* Task-level latency of one runtime over the interval (runtime-kept
 * histograms, read by stall.c; live only). */
struct rt_lat {
	uint64_t rt;                  /* runtime id (address) */
	unsigned workers;
	uint64_t polls_timed, wakes_timed; /* samples behind the figures */
	uint64_t poll_p50_ns, poll_p99_ns, wake_p50_ns, wake_p99_ns;
	/* Polls the runtime's stall watch counted over its stall_threshold_ns
	 * in the interval (stalls_known: the library keeps the count, and
	 * there was a baseline), and the latest of them, named: task id,
	 * function, spawn site, how long it had lasted when counted (empty
	 * when none was read in the interval). */
	bool stalls_known;
	uint64_t stalls;
	char last_stall[400];
	/* 0: a runtime the target lists. N: it ended in the interval
	 * (destroyed, or re-created at its address), the figures up to
	 * schedtop's last read of it; N > 1: N such runtimes merged (rt 0) */
	unsigned ended;
};
/* the registry's 16 runtimes and 8 entries for runtimes that ended (stall.h) */
#define MAX_RT 24

struct interval {
	double dt_s;
	uint64_t ts_ns;
	unsigned workers;             /* rows (slots), all runtimes */
	unsigned runtimes;            /* distinct runtimes among them */
	unsigned order[WEFT_BPF_MAX_CORES]; /* rows by runtime, then core */
	double polls_per_s, steals_per_s, tasks_stolen_per_s, parks_per_s, unparks_per_s;
	uint64_t inject_depth;
	double inject_age_s;          /* age of inject_depth (-1: never reported) */
	bool inject_stale;
	double bpf_ns_per_event, bpf_events_per_s, self_cpu_pct;
	uint64_t drops, drops_delta;
	bool cores_over;              /* more (runtime, core) pairs than slots: some not shown */
	char futex_src[64];           /* from the snapshot: sched_switch or tp_btf:... */
	struct worker_row row[WEFT_BPF_MAX_CORES];
	struct worker_row other;      /* threads of the process that are not workers */
	struct rt_lat lat[MAX_RT];
	unsigned nlat;
	bool lint[LINT_NR];
	char lint_detail[LINT_NR][768];
	/* steal matrix deltas (ops), thief x victim */
	uint64_t matrix[WEFT_BPF_MAX_CORES][WEFT_BPF_MAX_CORES];
	uint64_t hist[WEFT_BPF_MAX_CORES][WEFT_H_NR][WEFT_BPF_HIST_SLOTS]; /* deltas */
};

/* Number of workers to show: declared by runtime_create, or the highest
 * core that showed any activity. */
unsigned snap_ncores(const struct snap *s);

/* Remove the slots lost to a race (core WEFT_BPF_SLOT_HOLE, bpf/weft.h)
 * below slots_used: later slots move down, with their histograms, blocking
 * records and steal-matrix rows and columns. Then slots_used stops at the
 * first slot not filled yet (runtime 0: given out while the snapshot was
 * copied), which shows from the next snapshot on. Returns the holes
 * removed. */
unsigned snap_drop_holes(struct snap *s);

/* cur - prev (prev may be a zeroed snap: totals since attach). */
void interval_compute(struct interval *iv, const struct snap *prev, const struct snap *cur,
		      struct lint_state *ls);

/* Percentile (0..100) of a log2 histogram of n buckets ([2^i, 2^(i+1))):
 * the upper bound of its bucket, 0 when empty. The top bucket is
 * open-ended (its producers count every larger value there: the
 * runtime's 32 latency buckets from 2.1 s up); a percentile in it is
 * HIST_OPEN, "at least 2^(n-1)", shown so in text (">=2.1s") and as this
 * number in JSON. The BPF histograms have 64 buckets and never reach it. */
#define HIST_OPEN UINT64_MAX
uint64_t hist_pct(const uint64_t *slots, unsigned n, double pct);

const char *state_name(unsigned st);

/* The state of slot i to show: the BPF side's, or while it has none
 * (WEFT_ST_UNKNOWN) the one read from the target's memory (fresh_state),
 * *ts when it was set or read (0: never). */
unsigned snap_state(const struct snap *s, unsigned i, uint64_t *ts);

/* Why the last report is the last (JSON "end"). */
#define SCHEDTOP_END_EXITED "target-exited" /* the process watched exited */
#define SCHEDTOP_END_COUNT "count"          /* -n / count intervals were shown */
#define SCHEDTOP_END_SIGNAL "signal"        /* SIGINT/SIGTERM to schedtop */
#define SCHEDTOP_END_EOF "end-of-file"      /* report: the recording ended */

/* Output. */
/* "0.4s", "3.2s old" (stale), "never" (age_s < 0) */
void fmt_age(char *b, size_t n, double age_s, bool stale);
void interval_print_text(FILE *f, const struct interval *iv, int pid);
/* `end`: NULL while the run goes on; on the last object why it ended
 * (SCHEDTOP_END_*), printed as "final":true,"end":"<reason>". */
void interval_print_json(FILE *f, const struct interval *iv, int pid, const char *end);
void print_hist_text(FILE *f, const char *title, const uint64_t *slots, unsigned n,
		     const char *unit);

/* Snapshot recording (JSON lines, flat objects) for fixtures. */
void snap_write(FILE *f, const struct snap *s, unsigned seq);
/* Read the next snapshot; 1 on success, 0 at EOF, -1 on a malformed file
 * (a line cut short or not an object, a header or end line missing, a line
 * of another snapshot). */
int snap_read(FILE *f, struct snap *s);

/* Tiny flat-JSON helpers (our own files only: one object per line,
 * "key":number or "key":"string"). */
bool jf_num(const char *line, const char *key, double *out);
bool jf_u64(const char *line, const char *key, uint64_t *out);
bool jf_str(const char *line, const char *key, char *out, size_t n);

#endif /* SCHEDTOP_MODEL_H */
