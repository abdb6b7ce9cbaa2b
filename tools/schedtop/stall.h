/*
 * stall.h - the long-poll lint: a core that has been in one poll longer
 * than LINT_LONG_POLL_MS, named while it is still stuck - task id, poll
 * function and spawn site, symbolized to function and file:line. Needs no
 * BPF: it reads the target's runtime registry and cores' counters (lib/
 * probe_abi.h) from the target's memory.
 */
#ifndef SCHEDTOP_STALL_H
#define SCHEDTOP_STALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "probe_abi.h"

struct sym_ctx;

#define STALL_MAX_CORES 64 /* per runtime */

struct stall_core {
	uint64_t poll_h[WEFT_PROBE_LAT_BINS], wake_h[WEFT_PROBE_LAT_BINS]; /* latest read */
	uint64_t poll_h0[WEFT_PROBE_LAT_BINS], wake_h0[WEFT_PROBE_LAT_BINS]; /* at the last interval */
	bool h_seen, h0_seen;
	uint64_t depth, depth_ts;           /* run queue depth read from memory, when */
	uint64_t polls, polls_ts;           /* the core's poll count read from memory, when */
	uint64_t seq, task, fn, site;       /* the poll last seen */
	uint64_t since_ns;                  /* when it was first seen */
	bool seen, confirmed;               /* confirmed: two reads agreed on it */
	bool fiber;                         /* fn is a fiber's fn (its poll: weft's fiber_poll) */
	/* stalls (the counters' stall_* fields, when the library has them) */
	uint64_t stalls, stalls0;           /* stall_count: latest read; at the last interval */
	bool stalls_seen, stalls0_seen;
	uint64_t st_count, st_task, st_fn, st_site, st_age; /* the latest stall, read whole */
	bool st_new;                        /* read since the last interval */
	uint64_t holder_tid;                /* the core's thread at the latest read (0: none,
					     * not known, or a library without the field) */
	uint64_t park_word, cur_now;        /* park_word and cur_task at the latest read */
	uint64_t cur_addr;                  /* the address of the task of the poll last seen
					     * (cur_task; 0: between polls), whose id, fn and
					     * fiber are task, fn and fiber above */
};

/* A blocking call as stall_blocking_lint named it last, per BPF slot: the
 * episode (its start and task) and its task and stack in words. Once the
 * target has exited, its memory - the task, the code the stack scan checks
 * for call instructions - is gone, and the final report named the episode
 * seen all along as "task at 0x..." with one frame (found by a review). */
struct stall_block_name {
	uint64_t start_ts, task;
	char task_text[200], stack[400];
};

/* Figures of runtimes that ended (destroyed, or re-created at the same
 * address) since the last interval: what their cores counted up to the
 * last read, kept until stall_latency reports them. More than
 * STALL_MAX_ENDED in one interval: the later ones are merged into the last
 * entry (rt 0, `runtimes` of them). */
#define STALL_MAX_ENDED 8
struct stall_acc {
	uint64_t rt;
	unsigned workers, runtimes;
	unsigned gen;                       /* the sample it was opened in */
	uint64_t ph[WEFT_PROBE_LAT_BINS], wh[WEFT_PROBE_LAT_BINS];
	bool stalls_known;
	uint64_t stalls, last_age;
	char last_stall[400];
};

struct stall {
	int pid;
	uint64_t threshold_ns;
	struct sym_ctx *sym;                /* the target's symbols */
	int sym_err;
	unsigned sample_gen, sym_gen;       /* sym synced with the maps at sample sym_gen */
	uint64_t reg_addr;                  /* weft_probe_registry in the target */
	bool reg_lost;                      /* reg_addr stopped reading as the registry
					     * (an exec): re-read the maps before the
					     * next look-up */
	int reg_err;                        /* why it is not known (-errno) */
	unsigned reg_reads;                 /* consistent copies read so far */
	struct weft_probe_registry reg;     /* last consistent copy */
	struct stall_core core[WEFT_PROBE_REG_SLOTS][STALL_MAX_CORES];
	uint64_t slot_rt[WEFT_PROBE_REG_SLOTS]; /* the runtime each slot's cores belong to */
	uint64_t inject[WEFT_PROBE_REG_SLOTS], inject_ts[WEFT_PROBE_REG_SLOTS];
	struct stall_acc ended[STALL_MAX_ENDED];
	unsigned nended;
	struct stall_block_name block_name[WEFT_BPF_MAX_CORES];
};

/* Put the queue depths read from memory (fresh at each sample, whatever
 * the probes said last) into `s`, for the cores of the runtimes it shows:
 * s->fresh_*. */
void stall_fill_snap(struct stall *st, struct snap *s);

/* Give every core the registry lists a row (mon_add_core), also those
 * that fired no probe since schedtop attached, and its thread as read from
 * its counters (mon_seed_thread). */
struct mon;
void stall_sync_slots(struct stall *st, struct mon *m);

/* The (runtime, core) pairs the registry lists: up to max. */
int stall_cores(const struct stall *st, uint64_t *rt, unsigned *core, int max);

void stall_init(struct stall *st, int pid, uint64_t threshold_ns);

/* Read every runtime's cores' current polls at time `now_ns`. */
void stall_sample(struct stall *st, uint64_t now_ns);

/* The longest poll over the threshold, if any: sets iv's LINT_LONG_POLL
 * with the detail (symbolized). */
void stall_lint(struct stall *st, struct interval *iv, uint64_t now_ns);

/* Task-level latency per runtime since the last call (iv->lat), from the
 * histograms the runtimes keep in their cores' counters; and the stalls
 * the runtimes counted (polls over their stall threshold, the latest one
 * named). The runtimes listed now, then those that ended since the last
 * call (rt_lat.ended), with what they counted up to the last sample. */
void stall_latency(struct stall *st, struct interval *iv);

/* The blocking-call lint: a worker thread off-CPU inside a poll (not in
 * its park) for LINT_BLOCKING_MS or more, still or during the interval
 * ending at `cur` (BPF's sched_switch records, struct weft_bpf_block):
 * which syscall, how long, the task and its user stack, symbolized. */
void stall_blocking_lint(struct stall *st, struct interval *iv, const struct snap *prev,
			 const struct snap *cur);

/* The name of syscall `nr` on this architecture ("syscall N" if unknown,
 * "no syscall" for -1). */
const char *stall_syscall_name(long long nr, char *buf, size_t n);

void stall_fini(struct stall *st);

#endif /* SCHEDTOP_STALL_H */
