/*
 * weft.h - types shared by bpf/weft.bpf.c (kernel side) and the user side
 * (tools/schedtop). Fixed-size types only; compiled with clang -target bpf
 * and with the host compiler. Nothing here is part of libweft's ABI: the
 * probe ABI is lib/probe/probe_abi.h.
 *
 * All aggregates live in the program's .bss (one mmapped array map), so user
 * space reads a whole snapshot without a syscall per key. Counters only grow;
 * the user side subtracts two snapshots for a rate. Gauges (depths, state)
 * hold the latest value.
 */
#ifndef WEFT_BPF_H
#define WEFT_BPF_H

/* Cores the BPF side tracks one by one; events on higher core indexes are
 * counted in `cores_dropped` only. Slot WEFT_BPF_OTHER holds the process's
 * threads that are not workers (the kernel-side columns only). */
#define WEFT_BPF_MAX_CORES 64  /* slots: (runtime, core) pairs */
#define WEFT_BPF_OTHER WEFT_BPF_MAX_CORES
#define WEFT_BPF_SLOTS (WEFT_BPF_MAX_CORES + 1)
/* log2 buckets: [2^i, 2^(i+1)), the whole u64 range, so no value is
 * capped into a bucket it does not belong to. With 32, every duration
 * from 2^31 ns (2.1 s) up landed in the top one and a 7 s park read as
 * "< 4.3 s" (found by a review). */
#define WEFT_BPF_HIST_SLOTS 64

/* Key of the slot map: cores of several runtimes get slots of their own
 * (cores[], hists[], matrix[] are indexed by slot). */
struct weft_bpf_slot_key {
	unsigned long long rt;
	unsigned int core;
	unsigned int pad;
};

/* A slot index is taken from `slots_used` before its key is inserted; when
 * two threads (two probes, or a probe and schedtop adding a core it found in
 * the registry) add the same key at once, the one whose insert fails leaves
 * its index unused and marks it with this `core` value. User space drops
 * such holes from each snapshot (snap_drop_holes). */
#define WEFT_BPF_SLOT_HOLE 0xffffffffu

/* Worker state as the probes show it. */
enum weft_bpf_state {
	WEFT_ST_UNKNOWN = 0,
	WEFT_ST_RUNNING = 1,   /* last probe showed it running tasks */
	WEFT_ST_SEARCHING = 2, /* unparked, no sign of work yet */
	WEFT_ST_PARKED = 3,    /* between park and unpark */
	WEFT_ST_STOPPED = 4,   /* after worker_stop */
	WEFT_ST_NR = 5,
};

/* Histograms kept per core. */
enum weft_bpf_hist {
	WEFT_H_PARK_NS = 0,    /* one park sleep: asleep in the park -> running again */
	WEFT_H_UNPARK_LAT_NS,  /* woken from a park sleep (sched_wakeup) -> running again */
	WEFT_H_STEAL_BATCH,    /* tasks per steal operation (as thief) */
	WEFT_H_FUTEX_NS,       /* time asleep in futex waits (kernel view) */
	WEFT_H_NR,
};

struct weft_bpf_core {
	/* runtime view (USDT) */
	unsigned long long steal_ops_in;    /* successful steals as thief */
	unsigned long long tasks_stolen_in;
	unsigned long long steal_ops_out;   /* times robbed, as victim */
	unsigned long long tasks_stolen_out;
	/* parks, unparks, noop_unparks, steal_fails: the core's own counters
	 * (struct weft_probe_counters), read whenever its thread is current
	 * in a probe or goes to sleep in its park */
	unsigned long long steal_fails;     /* searched everything, found nothing */
	unsigned long long steal_waits;     /* search rounds waited on a ring of short tasks its
					     * owner serves (steal policy, lib/sched/steal.h) */
	unsigned long long parks;
	unsigned long long unparks;         /* every wake from a park: notified, self, retire (not shutdown) */
	unsigned long long noop_unparks;    /* unparked, parked again without a poll */
	unsigned long long overflows;       /* ring full: half moved (= runtime overflow_count) */
	unsigned long long overflow_spills; /* single task spilled while a thief copied */
	unsigned long long overflow_tasks;  /* tasks moved to inject, both kinds */
	unsigned long long notified;        /* woken from a park sleep (sched_wakeup) */
	unsigned long long notifies_sent;   /* park sleeps of others this core's thread woke */
	unsigned long long park_ns;         /* completed park sleeps */
	unsigned long long state_ns[WEFT_ST_NR];
	unsigned long long polls;           /* latest poll_count read from the core's counters */
	unsigned long long busy_ns;         /* latest busy_ns read from the core's counters */
	unsigned long long rt_id;
	unsigned long long counters_ptr;    /* user address of the core's counters */
	unsigned long long park_word;       /* user address of the thread's futex parker word */
	unsigned long long local_depth;     /* latest */
	unsigned long long inject_depth;    /* latest seen by this core */
	unsigned long long depth_max;       /* max local depth seen (reset by user side) */
	unsigned long long state_ts;
	unsigned long long park_ts;         /* current park sleep began */
	unsigned long long notify_ts;       /* the parked thread was woken */
	unsigned long long last_event_ts;   /* last USDT event of this core */
	unsigned long long last_poll_change_ts;
	unsigned int state;
	unsigned int tid;
	unsigned int core;                  /* the core's index in its runtime (rt_id) */
	unsigned int pad;
	/* kernel view (tracepoints), threads of the target only */
	unsigned long long oncpu_ns;
	unsigned long long vol_switches;
	unsigned long long invol_switches;
	unsigned long long invol_with_work; /* preempted while its local ring held tasks */
	unsigned long long migrations;
	unsigned long long futex_waits;
	unsigned long long futex_wait_ns;
	/* the core's thread went on CPU at this time (0: off CPU): the span in
	 * progress, which oncpu_ns gets only at the switch out (a thread
	 * spinning through an interval read 0%, then hundreds: found by a
	 * review) */
	unsigned long long oncpu_since;
	/* polls of the runtimes that held this slot before (a runtime created
	 * again at the same address, runtime_create): each one's last poll
	 * count, read at its workers' worker_stop, moved here from `polls`,
	 * which restarts from the new runtime's counters. Totals are
	 * polls_done + polls (the new runtime's polls outgrowing the old
	 * one's last sample read as a delta of the same counter, and the old
	 * one's final polls were lost: found by a review) */
	unsigned long long polls_done;
};

/* A worker thread off-CPU inside a poll (not in its park): a blocking call
 * in a task. `cur` is the episode in progress (start_ts 0: none); `done`
 * the last finished one that lasted WEFT_BPF_BLOCK_KEEP_NS or more. Each
 * is written by sched_switch between seq odd and seq even. */
#define WEFT_BPF_STACK_WORDS 256     /* user stack copied from sp: 2 KiB */
#define WEFT_BPF_BLOCK_KEEP_NS 1000000ull

struct weft_bpf_block_rec {
	unsigned long long seq;
	unsigned long long start_ts, end_ts; /* CLOCK_MONOTONIC ns */
	unsigned long long task;             /* the polled task's address (cur_task) */
	long long nr;                        /* syscall number; -1: not in a syscall */
	unsigned long long ip, sp;           /* user registers at the switch */
	unsigned long long nstack;           /* words of stack copied */
	unsigned long long stack[WEFT_BPF_STACK_WORDS];
};

struct weft_bpf_block {
	unsigned long long episodes, total_ns; /* finished, any length */
	struct weft_bpf_block_rec cur, done;
};

struct weft_bpf_hist_slots {
	unsigned long long slot[WEFT_BPF_HIST_SLOTS];
};

struct weft_bpf_steal_cell {
	unsigned long long ops;
	unsigned long long tasks;
};

/* Trace events (ring buffer), written only while `trace_on` is set. */
enum weft_ev_type {
	WEFT_EV_RUNTIME_CREATE = 1, /* a0 workers */
	WEFT_EV_RUNTIME_SHUTDOWN,
	WEFT_EV_WORKER_START,       /* core, a0 tid */
	WEFT_EV_WORKER_STOP,        /* core, a0 tid */
	WEFT_EV_STEAL,              /* core thief, a0 victim, a1 n_stolen, a2 victim depth before */
	WEFT_EV_STEAL_FAIL,         /* core */
	WEFT_EV_PARK,               /* core, a0 kind, a1 local depth, a2 inject depth */
	WEFT_EV_UNPARK,             /* core, a0 reason */
	WEFT_EV_NOTIFY,             /* core from (-1 not a worker), a0 to */
	WEFT_EV_OVERFLOW,           /* core, a0 n */
	/* Written by schedtop, not the BPF side: a core as schedtop saw it
	 * when the trace began and when it ended (the BPF side's slots and
	 * the target's registry), tid its thread, a0 its state (enum
	 * weft_bpf_state). A worker asleep in its park all along fires no
	 * other event. */
	WEFT_EV_WORKER_SEEN,        /* core, a0 state */
	WEFT_EV_NR,
};

struct weft_bpf_event {
	unsigned long long ts;      /* CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
	unsigned long long rt_id;
	long long a0, a1, a2;
	int core;
	unsigned int type;
	unsigned int tid;
	unsigned int cpu;
};

#endif /* WEFT_BPF_H */
