// SPDX-License-Identifier: MIT
/*
 * weft.bpf.c - kernel side of schedtop.
 *
 * Runtime view: one program per USDT probe of libweft (provider "weft",
 * lib/probe/probes.h). Each event updates the per-core aggregates in .bss
 * (struct weft_bpf_core, the thief x victim matrix, log2 histograms) and,
 * only while user space sets `trace_on`, writes a struct weft_bpf_event to
 * the ring buffer `rb` (a full ring counts in `drops`, never blocks).
 *
 * Kernel view of the same threads (tp_btf, no tracefs needed): sched_switch
 * (on-CPU time, voluntary/involuntary switches, involuntary ones while the
 * core's ring held tasks), sched_migrate_task, and futex sleeps. A futex
 * sleep is timed inside sched_switch itself: a thread of the target that
 * switches out voluntarily while its user registers (bpf_task_pt_regs) show
 * it inside futex(FUTEX_WAIT / WAIT_BITSET) or futex_waitv is asleep in a
 * futex until it is switched in again. That costs no program beyond
 * sched_switch, which runs anyway. Kernels without bpf_task_pt_regs (before
 * 5.15) fail that load; user space then clears `futex_from_switch` and
 * loads the raw syscall tracepoints sys_enter/sys_exit instead, which run
 * for every syscall on the machine and time a wait from syscall entry to
 * exit (a wait that returns at once, EAGAIN, counts too). fentry on the
 * futex syscall functions would fire only for futex calls, but is refused
 * on some kernels (EPERM) and still runs for every futex call on the
 * machine, so it is not used.
All filter on the target's
 * tgid (`target_tgid`, see below); a thread is mapped to its core the
 * first time it fires a USDT probe carrying that core (tstate map), or
 * once schedtop read it from the target's memory (tid_seed_gen); other
 * threads of the process land in slot WEFT_BPF_OTHER.
 *
 * Concurrency: a core's fields are written by the thread holding the core,
 * except the victim-side steal counters and `notified`, which other threads
 * update with atomic adds. User space reads .bss while programs run; a u64
 * read is never torn, a snapshot is not atomic across fields (at most the
 * events in flight during the copy are missing, picked up next interval).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "weft.h"
#include "probe_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 1: futex sleeps from sched_switch; 0: from sys_enter/sys_exit (set before load) */
const volatile __u32 futex_from_switch = 1;

/*
 * The target's tgid as the kernel knows it (the init pid namespace's id,
 * which task->tgid and bpf_get_current_pid_tgid() give); 0: not known yet,
 * and the kernel-side programs count nothing. schedtop sees the target's
 * pid in its own pid namespace. In the initial one that is the global id
 * and user space writes it here before attaching. Elsewhere (schedtop run
 * under `unshare -p`, in a container) it is not, and the tracepoints
 * compared every task with the namespaced pid: every kernel figure read 0
 * (found by a review). There user space sets `target_nspid` and the
 * namespace (`pidns_dev`, `pidns_ino`) instead, and the BPF side learns the
 * global id itself: from the first target thread that switches out
 * (sched_switch runs in the task switching out, so
 * bpf_get_ns_current_pid_tgid names it in that namespace), and from any
 * USDT probe, which fires only in the target's address space.
 */
__u32 target_tgid = 0;
const volatile __u32 target_nspid = 0;
const volatile __u64 pidns_dev = 0;
const volatile __u64 pidns_ino = 0;

/* Written by user space after load. */
__u32 trace_on = 0;
__u64 filter_rt = 0; /* 0: every runtime of the process */

/* Aggregates, read by user space through the mmapped .bss. */
struct weft_bpf_core cores[WEFT_BPF_SLOTS];
struct weft_bpf_hist_slots hists[WEFT_BPF_SLOTS][WEFT_H_NR];
struct weft_bpf_steal_cell matrix[WEFT_BPF_MAX_CORES][WEFT_BPF_MAX_CORES];
struct weft_bpf_block blocks[WEFT_BPF_MAX_CORES];
__u64 drops = 0;
__u64 events = 0;          /* ring buffer events written */
__u64 usdt_events = 0;     /* USDT probe hits counted */
__u64 cores_dropped = 0;   /* events for cores >= WEFT_BPF_MAX_CORES */
__u64 last_rt = 0;
__u64 workers_declared = 0;
__u64 runtimes_created = 0;
__u64 runtimes_shutdown = 0;
__u64 workers_started = 0;
__u64 workers_stopped = 0;
__u64 slots_used = 0;
__u64 execs = 0;           /* the target called exec: every runtime before it is gone */
/* Bumped by user space after it gave a core its thread (cores[].tid) read
 * from the target's memory (the core's holder_tid): a thread's tstate made
 * before that takes its slot again from core_of_tid (tstate_get). */
__u32 tid_seed_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} rb SEC(".maps");

struct tstate {
	__u64 oncpu_start;
	__u64 futex_ts;
	__u32 slot;
	__u32 park_sleep;  /* asleep in its park (futex parker word, epoll_wait or io_uring_enter) */
	/* futex_from_switch 0 only: the core's thread is inside the system
	 * call of its park (seen at sys_enter, until sys_exit); sched_switch
	 * cannot read the registers that say so there */
	__u32 park_call;
	/* futex_from_switch 0 only: the system call the thread is in (from
	 * sys_enter to sys_exit, in_sys 1) and its user registers, which
	 * block_begin takes from bpf_task_pt_regs otherwise */
	__u32 in_sys;
	__s64 sys_nr;
	__u64 sys_ip, sys_sp;
	__u32 seed_gen;    /* tid_seed_gen when slot was last taken from core_of_tid */
};

struct {
	/* LRU: a process that churned through more threads than entries
	 * filled a plain hash for good, and new workers then had no kernel
	 * figures at all (found by a review); the threads seen least recently
	 * (exited ones) go first now */
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tstate);
} tstate SEC(".maps");

#define FUTEX_CMD_MASK 0x7f
#define FUTEX_WAIT_ 0
#define FUTEX_WAIT_BITSET_ 9
#if defined(__TARGET_ARCH_x86)
#define NR_FUTEX 202
#define NR_FUTEX_WAITV 449
#define NR_EPOLL_WAIT 232
#define NR_EPOLL_PWAIT 281
#define NR_EPOLL_PWAIT2 441
#define NR_IO_URING_ENTER 426
#elif defined(__TARGET_ARCH_arm64)
#define NR_FUTEX 98
#define NR_FUTEX_WAITV 449
#define NR_EPOLL_WAIT -1 /* arm64 has epoll_pwait only */
#define NR_EPOLL_PWAIT 22
#define NR_EPOLL_PWAIT2 441
#define NR_IO_URING_ENTER 426
#else
#define NR_FUTEX -1
#define NR_FUTEX_WAITV -1
#define NR_EPOLL_WAIT -1
#define NR_EPOLL_PWAIT -1
#define NR_EPOLL_PWAIT2 -1
#define NR_IO_URING_ENTER -1
#endif

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xFFFFFFFFull) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline void hist_add(__u32 slot, __u32 kind, __u64 v)
{
	__u32 b = log2_u64(v);
	/* never true with 64 buckets; keeps the index bounded for the verifier */
	if (b >= WEFT_BPF_HIST_SLOTS)
		b = WEFT_BPF_HIST_SLOTS - 1;
	if (slot >= WEFT_BPF_SLOTS || kind >= WEFT_H_NR)
		return;
	__sync_fetch_and_add(&hists[slot][kind].slot[b], 1);
}

/* Slots: one per (runtime, core), in the order first seen, so several
 * runtimes of one process stay apart. schedtop adds the cores it finds in
 * the target's registry the same way (the map and slots_used are shared). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4 * WEFT_BPF_MAX_CORES);
	__type(key, struct weft_bpf_slot_key);
	__type(value, __u32);
} slots SEC(".maps");

/* A global function: the verifier checks it once, not at each of its
 * calls (the victim loop of read_counters made the load 10x slower). */
__noinline long slot_of(__u64 rt, long core)
{
	struct weft_bpf_slot_key k = { .rt = rt, .core = (__u32)core };
	if (core < 0)
		return -1;
	__u32 *v = bpf_map_lookup_elem(&slots, &k);
	if (v)
		return *v;
	__u64 n = __sync_fetch_and_add(&slots_used, 1);
	if (n >= WEFT_BPF_MAX_CORES)
		return -1;
	__u32 nv = (__u32)n;
	if (bpf_map_update_elem(&slots, &k, &nv, BPF_NOEXIST)) {
		/* raced: the key was added meanwhile; this index stays unused */
		cores[nv & (WEFT_BPF_MAX_CORES - 1)].core = WEFT_BPF_SLOT_HOLE;
		v = bpf_map_lookup_elem(&slots, &k);
		return v ? *v : -1;
	}
	/* the core before the runtime: a slot whose runtime user space sees
	 * is whole (a snapshot leaves out a slot with runtime 0, still being
	 * filled: snap_drop_holes) */
	cores[nv & (WEFT_BPF_MAX_CORES - 1)].core = (__u32)core;
	asm volatile("" ::: "memory");
	cores[nv & (WEFT_BPF_MAX_CORES - 1)].rt_id = rt;
	return nv;
}

static __always_inline struct weft_bpf_core *core_get(__u64 rt, long core, __u32 *slot)
{
	long i = slot_of(rt, core);
	if (i < 0 || i >= WEFT_BPF_MAX_CORES) {
		__sync_fetch_and_add(&cores_dropped, 1);
		return 0;
	}
	*slot = (__u32)i;
	return &cores[i];
}

/* A USDT probe of ours fired: the current thread is the target's (the
 * uprobes are attached to its address space only), so its tgid is the
 * target's global one. A plain store only when it differs: it is read by
 * every sched_switch on the machine. */
static __always_inline void learn_tgid(void)
{
	__u32 tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	if (target_tgid != tgid)
		target_tgid = tgid;
}

static __always_inline bool rt_skip(__u64 rt)
{
	__u64 f = filter_rt;
	return f && f != rt;
}

static __always_inline void set_state(struct weft_bpf_core *c, __u32 st, __u64 now)
{
	__u32 old = c->state;
	if (old < WEFT_ST_NR && c->state_ts)
		c->state_ns[old] += now - c->state_ts;
	c->state = st;
	c->state_ts = now;
}

/*
 * Learn which core the current thread holds (kernel-side attribution).
 * The core's previous thread, if it still points at the core, goes back
 * to WEFT_BPF_OTHER: after a weft_block_in_place hand-off it runs the
 * blocking fn beside the spare that now drives the core, and its CPU time
 * and switches were charged to the core (a parked core read 46 % CPU and
 * 500 switches/s while other_threads read 0: found by a review). Its span
 * in progress goes to OTHER at its switch out; the core's in-progress
 * span is the current thread's from now on.
 */
static __always_inline void learn_tid(struct weft_bpf_core *c, __u32 core)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 old = c->tid;
	if (old == tid)
		return;
	c->tid = tid;
	if (old) {
		struct tstate *ots = bpf_map_lookup_elem(&tstate, &old);
		if (ots && ots->slot == core)
			ots->slot = WEFT_BPF_OTHER;
	}
	struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
	if (ts) {
		ts->slot = (__u32)core;
		c->oncpu_since = ts->oncpu_start;
	} else {
		struct tstate n = { .slot = (__u32)core };
		bpf_map_update_elem(&tstate, &tid, &n, BPF_ANY);
		c->oncpu_since = 0;
	}
}

/*
 * The core's own running counters (struct weft_probe_counters, lib/
 * probe_abi.h), read through the address learned at worker_start or
 * maintenance, only while the core's thread is current: it writes them with
 * plain stores. Parks, unparks, no-op unparks, failed searches, steals (in,
 * out, the thief x victim matrix, tasks per steal) all come from here, so
 * neither the park path nor the steal path needs a probe while schedtop
 * only aggregates. The first read of a core's counters is a baseline: what
 * the runtime did before schedtop attached is not counted.
 */
struct core_last {
	__u64 ptr;        /* the counters these values came from (0: none yet) */
	__u64 parks, noops, unparks, fails, steal_ops, steal_tasks, waits;
	__u64 bins[WEFT_PROBE_STEAL_BINS];
	struct weft_probe_steal row[WEFT_BPF_MAX_CORES];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);  /* a map, not .bss: user space never reads it */
	__uint(max_entries, WEFT_BPF_MAX_CORES);
	__type(key, __u32);
	__type(value, struct core_last);
} last SEC(".maps");

struct steal_row {
	struct weft_probe_steal e[WEFT_BPF_MAX_CORES];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steal_row);
} row_scratch SEC(".maps");

_Static_assert((WEFT_BPF_MAX_CORES & (WEFT_BPF_MAX_CORES - 1)) == 0,
	       "read_counters masks core slots with WEFT_BPF_MAX_CORES - 1");

/* What a counter of the target added since the last read. A value below
 * the last one is a reset: a runtime destroyed and created again at the
 * same address (glibc hands it back) has the same counters address, so
 * only the value shows it; the new counters started at 0, so all of it is
 * new. As an unsigned new - old it wrapped, and a total since attach went
 * backwards (found by a review). */
static __always_inline __u64 since(__u64 now_v, __u64 last_v)
{
	return now_v >= last_v ? now_v - last_v : now_v;
}
#define D(field, now_v) ({ __u64 n_ = (now_v); __u64 d_ = since(n_, l->field); l->field = n_; d_; })

/* The counters up to cur_task (the latency histograms after it are read
 * by schedtop itself): too big for the BPF stack, so a per-CPU copy. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weft_probe_counters);
} pc_scratch SEC(".maps");

static __always_inline void read_counters(struct weft_bpf_core *c, __u32 slot, __u64 now,
					  bool park_depths)
{
	__u32 zero0 = 0;
	struct weft_probe_counters *pcp = bpf_map_lookup_elem(&pc_scratch, &zero0);
	if (!pcp || !c->counters_ptr || slot >= WEFT_BPF_MAX_CORES)
		return;
	if (bpf_probe_read_user(pcp, __builtin_offsetof(struct weft_probe_counters, poll_ns_log2),
				(void *)c->counters_ptr))
		return;
	/* appended after the latency histograms, so read apart */
	__u64 waits = 0;
	bool waits_ok = !bpf_probe_read_user(&waits, sizeof(waits),
					     (void *)(c->counters_ptr +
						      __builtin_offsetof(struct weft_probe_counters,
									 steal_wait_rounds)));
#define pc (*pcp)
	if (pc.poll_count != c->polls)
		c->last_poll_change_ts = now;
	c->polls = pc.poll_count;
	c->busy_ns = pc.busy_ns;
	c->park_word = pc.park_word;
	if (park_depths) {
		c->local_depth = pc.park_local_depth;
		c->inject_depth = pc.park_inject_depth;
	}
	struct core_last *l = bpf_map_lookup_elem(&last, &slot);
	if (!l)
		return;
	__u32 zero = 0;
	struct steal_row *row = bpf_map_lookup_elem(&row_scratch, &zero);
	__u64 n = pc.steal_from_n;
	if (n > WEFT_BPF_MAX_CORES)
		n = WEFT_BPF_MAX_CORES;
	__u32 sz = (__u32)n * sizeof(struct weft_probe_steal);
	if (sz > sizeof(struct steal_row))
		sz = sizeof(struct steal_row);
	if (!row || !pc.steal_from || bpf_probe_read_user(row, sz, (void *)pc.steal_from))
		n = 0;
	bool base = l->ptr != c->counters_ptr; /* first read, or a new runtime */
	l->ptr = c->counters_ptr;
	if (base) {
		l->parks = pc.park_count;
		l->noops = pc.noop_count;
		l->unparks = pc.unpark_count;
		l->fails = pc.steal_fail_count;
		l->steal_ops = pc.steal_operations;
		l->steal_tasks = pc.steal_count;
		l->waits = waits;
		for (__u32 b = 0; b < WEFT_PROBE_STEAL_BINS; b++)
			l->bins[b] = pc.steal_batch_log2[b];
		/* the entries not read yet are 0 (the array is zeroed at core_init):
		 * steal_from_n grows when the core steals from a core added since */
		for (__u32 v = 0; v < WEFT_BPF_MAX_CORES; v++) {
			if (v < n) {
				l->row[v] = row->e[v];
			} else {
				l->row[v].ops = 0;
				l->row[v].tasks = 0;
			}
		}
		return;
	}
	c->parks += D(parks, pc.park_count);
	c->noop_unparks += D(noops, pc.noop_count);
	c->unparks += D(unparks, pc.unpark_count);
	c->steal_fails += D(fails, pc.steal_fail_count);
	if (waits_ok)
		c->steal_waits += D(waits, waits);
	__u64 ops = D(steal_ops, pc.steal_operations);
	c->steal_ops_in += ops;
	c->tasks_stolen_in += D(steal_tasks, pc.steal_count);
	if (!ops)
		return;
	c->last_event_ts = now;
	/* slot < WEFT_BPF_MAX_CORES (checked above), but the verifier may not
	 * see it through clang's rematerialised copies: mask it, hidden from
	 * the optimizer so the mask stays */
	__u32 si = slot;
	asm volatile("" : "+r"(si));
	si &= WEFT_BPF_MAX_CORES - 1;
	struct weft_bpf_hist_slots *hb = &hists[si][WEFT_H_STEAL_BATCH];
	struct weft_bpf_steal_cell *mrow = matrix[si];
	for (__u32 b = 0; b < WEFT_PROBE_STEAL_BINS; b++) {
		__u64 d = since(pc.steal_batch_log2[b], l->bins[b]);
		l->bins[b] = pc.steal_batch_log2[b];
		if (d)
			__sync_fetch_and_add(&hb->slot[b], d);
	}
	for (__u32 v = 0; v < WEFT_BPF_MAX_CORES; v++) {
		if (v >= n)
			break;
		__u64 dops = since(row->e[v].ops, l->row[v].ops);
		__u64 dtasks = since(row->e[v].tasks, l->row[v].tasks);
		if (!dops)
			continue;
		l->row[v] = row->e[v];
		__u32 vs = 0;
		struct weft_bpf_core *vc = core_get(c->rt_id, v, &vs);
		if (!vc)
			continue;
		vs &= WEFT_BPF_MAX_CORES - 1;
		__sync_fetch_and_add(&mrow[vs].ops, dops);
		__sync_fetch_and_add(&mrow[vs].tasks, dtasks);
		__sync_fetch_and_add(&vc->steal_ops_out, dops);
		__sync_fetch_and_add(&vc->tasks_stolen_out, dtasks);
	}
#undef pc
}

static __always_inline void emit(__u32 type, long core, __u64 rt, __s64 a0, __s64 a1, __s64 a2,
				 __u64 now)
{
	if (!trace_on)
		return;
	struct weft_bpf_event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&drops, 1);
		return;
	}
	e->ts = now;
	e->rt_id = rt;
	e->a0 = a0;
	e->a1 = a1;
	e->a2 = a2;
	e->core = (int)core;
	e->type = type;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&events, 1);
}

/* ------------------------------------------------------------- USDT side */

/* The programs of the probes that fire per steal or park cycle: attached
 * only by `schedtop trace`, they record the event and count nothing (the
 * counts come from read_counters and the scheduler tracepoints). */
static __always_inline int trace_only(__u32 type, long core, __u64 rt, __s64 a0, __s64 a1, __s64 a2)
{
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	emit(type, core, rt, a0, a1, a2, bpf_ktime_get_ns());
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_runtime_create, __u64 rt, long workers)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__sync_fetch_and_add(&runtimes_created, 1);
	last_rt = rt;
	workers_declared = workers;
	/* A runtime at this address again (destroyed and created anew): its
	 * cores' slots read the new counters as a first read, from their
	 * starting values, whatever the counters' address */
	for (__u32 i = 0; i < WEFT_BPF_MAX_CORES; i++) {
		if (cores[i].rt_id != rt)
			continue;
		struct core_last *l = bpf_map_lookup_elem(&last, &i);
		if (l)
			l->ptr = 0;
		/* the old runtime's final poll count (its worker_stop read it):
		 * kept, as `polls` starts over with the new one's (bpf/weft.h) */
		cores[i].polls_done += cores[i].polls;
		cores[i].polls = 0;
	}
	emit(WEFT_EV_RUNTIME_CREATE, -1, rt, workers, 0, 0, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_runtime_shutdown, __u64 rt)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__sync_fetch_and_add(&runtimes_shutdown, 1);
	emit(WEFT_EV_RUNTIME_SHUTDOWN, -1, rt, 0, 0, 0, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_worker_start, long core, long tid, __u64 counters, __u64 rt)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__u32 slot = 0;
	struct weft_bpf_core *c = core_get(rt, core, &slot);
	if (!c)
		return 0;
	__sync_fetch_and_add(&workers_started, 1);
	c->counters_ptr = counters;
	learn_tid(c, slot);
	read_counters(c, slot, now, false);
	set_state(c, WEFT_ST_SEARCHING, now);
	c->last_event_ts = now;
	emit(WEFT_EV_WORKER_START, core, rt, tid, 0, 0, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_worker_stop, long core, long tid, __u64 rt)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__u32 slot = 0;
	struct weft_bpf_core *c = core_get(rt, core, &slot);
	if (!c)
		return 0;
	__sync_fetch_and_add(&workers_stopped, 1);
	read_counters(c, slot, now, false);
	set_state(c, WEFT_ST_STOPPED, now);
	c->last_event_ts = now;
	emit(WEFT_EV_WORKER_STOP, core, rt, tid, 0, 0, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_steal, long thief, long victim, long n, long depth, __u64 rt)
{
	return trace_only(WEFT_EV_STEAL, thief, rt, victim, n, depth);
}

/*
 * The park path: steal_fail, park, unpark and notify fire once or more per
 * park cycle, which on a runtime that parks and wakes all the time is
 * hundreds of thousands of uprobe traps per second. schedtop attaches them
 * only to record a trace; its counts and histograms come from the core's
 * counters and from the scheduler tracepoints below (see sched_switch and
 * sched_wakeup), which cost no trap. Likewise steal (see trace_only).
 */
SEC("usdt")
int BPF_USDT(weft_steal_fail, long core, __u64 rt)
{
	return trace_only(WEFT_EV_STEAL_FAIL, core, rt, 0, 0, 0);
}

SEC("usdt")
int BPF_USDT(weft_park, long core, long kind, long local_depth, long inject_depth, __u64 rt)
{
	return trace_only(WEFT_EV_PARK, core, rt, kind, local_depth, inject_depth);
}

SEC("usdt")
int BPF_USDT(weft_unpark, long core, long reason, __u64 rt)
{
	return trace_only(WEFT_EV_UNPARK, core, rt, reason, 0, 0);
}

SEC("usdt")
int BPF_USDT(weft_notify, long from, long to, __u64 rt)
{
	return trace_only(WEFT_EV_NOTIFY, from, rt, to, 0, 0);
}

SEC("usdt")
int BPF_USDT(weft_overflow, long core, long n, __u64 rt)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__u32 slot = 0;
	struct weft_bpf_core *c = core_get(rt, core, &slot);
	if (!c)
		return 0;
	if (n > 1)
		c->overflows++;
	else
		c->overflow_spills++;
	c->overflow_tasks += n;
	set_state(c, WEFT_ST_RUNNING, now);
	c->last_event_ts = now;
	emit(WEFT_EV_OVERFLOW, core, rt, n, 0, 0, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(weft_maintenance, long core, __u64 counters, long local_depth, long inject_depth,
	     __u64 rt)
{
	__u64 now = bpf_ktime_get_ns();
	learn_tgid();
	if (rt_skip(rt))
		return 0;
	__sync_fetch_and_add(&usdt_events, 1);
	__u32 slot = 0;
	struct weft_bpf_core *c = core_get(rt, core, &slot);
	if (!c)
		return 0;
	learn_tid(c, slot);
	c->counters_ptr = counters;
	read_counters(c, slot, now, false);
	c->local_depth = local_depth;
	if ((__u64)local_depth > c->depth_max)
		c->depth_max = local_depth;
	c->inject_depth = inject_depth;
	if (c->state != WEFT_ST_RUNNING)
		set_state(c, WEFT_ST_RUNNING, now);
	c->last_event_ts = now;
	return 0;
}

/* ----------------------------------------------------------- kernel side */

/* The slot of the core thread `tid` drives (learn_tid made it the core's
 * tid; a stopped core has none), else WEFT_BPF_OTHER. A global function:
 * the verifier walks its loop once. */
__noinline __u32 core_of_tid(__u32 tid)
{
	for (__u32 i = 0; i < WEFT_BPF_MAX_CORES; i++)
		if (tid && cores[i].tid == tid && cores[i].rt_id && cores[i].state != WEFT_ST_STOPPED)
			return i;
	return WEFT_BPF_OTHER;
}

/* A thread's entry, made if missing (create). A core's thread got one
 * from learn_tid; the LRU may evict it since (a worker parked while the
 * process churns through threads is the least recently seen), and the
 * entry made again here names the core again. Made as another thread's
 * (OTHER), the worker's CPU time, switches and parks went to
 * other_threads for good, learn_tid seeing the same tid (two workers
 * burning read 0 % CPU, other_threads 190 %: found by a review). */
/*
 * Likewise after user space named a core's thread (tid_seed_gen moved):
 * schedtop attached to a runtime whose workers all slept in their parks,
 * which fire no probe, and a worker woke and blocked in a task at once
 * (no maintenance probe between): its thread was never a core's, and the
 * blocking-call lint never fired (found by a review). schedtop reads each core's thread
 * from the target's memory and stores it as the core's tid; a thread of
 * the target seen before that (an entry made as OTHER) takes the slot
 * core_of_tid gives now, at its next event (one asleep in a park still
 * ends that park on the slot it began on).
 */
static __always_inline struct tstate *tstate_get(__u32 tid, bool create)
{
	__u32 gen = tid_seed_gen;
	struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
	if (ts && ts->seed_gen != gen && !ts->park_sleep) { /* a park ends on its own slot */
		ts->seed_gen = gen;
		ts->slot = core_of_tid(tid);
	}
	if (ts || !create)
		return ts;
	struct tstate n = { .slot = core_of_tid(tid), .seed_gen = gen };
	bpf_map_update_elem(&tstate, &tid, &n, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tstate, &tid);
}

static __always_inline struct weft_bpf_core *slot_get(__u32 slot)
{
	if (slot >= WEFT_BPF_SLOTS)
		return 0;
	return &cores[slot];
}

/* Futex waits: futex_ts is set when a wait starts and consumed when the
 * thread comes back (switched in, or syscall exit for the tracepoints). */
static __always_inline void futex_done(struct tstate *ts, __u64 now)
{
	if (!ts->futex_ts)
		return;
	__u64 d = now > ts->futex_ts ? now - ts->futex_ts : 0;
	ts->futex_ts = 0;
	struct weft_bpf_core *c = slot_get(ts->slot);
	if (!c)
		return;
	__sync_fetch_and_add(&c->futex_waits, 1);
	__sync_fetch_and_add(&c->futex_wait_ns, d);
	hist_add(ts->slot, WEFT_H_FUTEX_NS, d);
}

static __always_inline bool futex_call_waits(long nr, unsigned long op)
{
	op &= FUTEX_CMD_MASK;
	if (nr == NR_FUTEX)
		return op == FUTEX_WAIT_ || op == FUTEX_WAIT_BITSET_;
	return nr == NR_FUTEX_WAITV;
}

/* The syscall `t` (switching out voluntarily) is in, from its user
 * registers saved at syscall entry: number, first and second argument. */
struct sys_args {
	long nr;
	unsigned long a0, a1;
	unsigned long ip, sp;
};

static __always_inline bool task_sys_args(struct task_struct *t, struct sys_args *a)
{
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!r)
		return false;
#if defined(__TARGET_ARCH_x86)
	a->nr = (long)BPF_CORE_READ(r, orig_ax);
	a->a0 = BPF_CORE_READ(r, di);
	a->a1 = BPF_CORE_READ(r, si);
	a->ip = BPF_CORE_READ(r, ip);
	a->sp = BPF_CORE_READ(r, sp);
	return true;
#elif defined(__TARGET_ARCH_arm64)
	a->nr = (long)BPF_CORE_READ(r, syscallno);
	a->a0 = BPF_CORE_READ(r, orig_x0);
	a->a1 = BPF_CORE_READ(r, regs[1]);
	a->ip = BPF_CORE_READ(r, pc);
	a->sp = BPF_CORE_READ(r, sp);
	return true;
#else
	return false;
#endif
}

/* A worker parks in one of two places: a futex wait on its parker word, or
 * the I/O driver's wait when it holds the driver: epoll_wait, or under the
 * io_uring driver (lib/io/uring.c) io_uring_enter with nothing to submit
 * (a wake's NOP submits one). Without the latter a worker parked in an
 * io_uring driver read as running 100 % of the time, with no park
 * durations (found by a review). */
/* The core is inside a poll: its cur_task (read from the thread's own
 * memory: it is current) is set. */
static __always_inline bool in_poll(const struct weft_bpf_core *c)
{
	__u64 task = 0;
	if (!c->counters_ptr ||
	    bpf_probe_read_user(&task, sizeof(task),
				(void *)(c->counters_ptr +
					 __builtin_offsetof(struct weft_probe_counters, cur_task))))
		return false;
	return task != 0;
}

static __always_inline bool is_park_sleep(const struct sys_args *a, const struct weft_bpf_core *c)
{
	/* Between polls only: a task's own epoll_wait (or io_uring) inside
	 * its poll is a blocking call, not the driver's wait (it read as a
	 * park, 100 % parked, and blocking-call never saw it: found by a
	 * review). The futex on the parker word is weft's alone. Outside any
	 * system call (a page fault, a preemption) nr reads -1, which is
	 * also what the table above gives a call an architecture lacks
	 * (arm64's epoll_wait): such a switch is no park. */
	if (a->nr < 0)
		return false;
	if (a->nr == NR_EPOLL_WAIT || a->nr == NR_EPOLL_PWAIT || a->nr == NR_EPOLL_PWAIT2)
		return !in_poll(c);
	if (a->nr == NR_IO_URING_ENTER && a->a1 == 0)
		return !in_poll(c);
	return c->park_word && a->a0 == c->park_word && futex_call_waits(a->nr, a->a1);
}

/* The core's thread goes to sleep in its park: take the counters (they are
 * the thread's own, and it is current) and start the park. */
static __always_inline void park_begin(struct weft_bpf_core *c, struct tstate *ts, __u64 now)
{
	read_counters(c, ts->slot, now, true);
	set_state(c, WEFT_ST_PARKED, now);
	c->park_ts = now;
	c->last_event_ts = now;
	ts->park_sleep = 1;
}

/* ... and runs again: the park's length, and the latency from the wake-up
 * (sched_wakeup, usually a notifier's futex wake or eventfd write). */
static __always_inline void park_end(struct weft_bpf_core *c, struct tstate *ts, __u64 now)
{
	ts->park_sleep = 0;
	__u64 p = c->park_ts;
	if (p && now > p) {
		c->park_ns += now - p;
		hist_add(ts->slot, WEFT_H_PARK_NS, now - p);
	}
	c->park_ts = 0;
	__u64 w = c->notify_ts;
	if (w && now >= w)
		hist_add(ts->slot, WEFT_H_UNPARK_LAT_NS, now - w);
	c->notify_ts = 0;
	set_state(c, WEFT_ST_SEARCHING, now);
}

/* Global functions (block_begin, block_end): the verifier checks each once.
 * The core's thread goes to sleep outside its park: if it is inside a poll
 * (the core's cur_task, read from the thread's own memory: it is current),
 * a task made a blocking call. Keep the syscall, the registers and the top
 * of the user stack for schedtop to name. */
__noinline int block_begin(__u32 slot, __u64 counters_ptr, __u64 now)
{
	__u64 task = 0;
	struct sys_args a = {};
	if (!counters_ptr || slot >= WEFT_BPF_MAX_CORES)
		return 0;
	if (bpf_probe_read_user(&task, sizeof(task),
				(void *)(counters_ptr +
					 __builtin_offsetof(struct weft_probe_counters, cur_task))) ||
	    !task)
		return 0;
	if (futex_from_switch) {
		/* the thread going to sleep is current in sched_switch */
		if (!task_sys_args(bpf_get_current_task_btf(), &a))
			return 0;
	} else {
		/* what sys_enter kept (a sleep outside a system call, a page
		 * fault: no call, no registers) */
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
		if (!ts)
			return 0;
		a.nr = ts->in_sys ? ts->sys_nr : -1;
		a.ip = ts->in_sys ? ts->sys_ip : 0;
		a.sp = ts->in_sys ? ts->sys_sp : 0;
	}
	struct weft_bpf_block_rec *r = &blocks[slot].cur;
	r->seq++;
	r->start_ts = now;
	r->end_ts = 0;
	r->task = task;
	r->nr = a.nr;
	r->ip = a.ip;
	r->sp = a.sp;
	r->nstack = WEFT_BPF_STACK_WORDS;
	if (bpf_probe_read_user(r->stack, sizeof(r->stack), (void *)a.sp)) {
		/* The stack's mapping ends within 2 KiB of sp: a fiber's
		 * stack, whose top is the next stack's guard. Copy up to the
		 * end of sp's 4 KiB page, which is that end (a mapping ends on
		 * a page, and 2 KiB holds one 4 KiB boundary at most). The
		 * fallback was 256 bytes, else nothing: a fiber blocked a few
		 * frames below its top (pthread_mutex_lock) had none of its own
		 * frames named (found by a review). */
		__u64 room = (4096 - (a.sp & 4095)) & ~7ull;
		if (room > sizeof(r->stack))
			room = sizeof(r->stack);
		r->nstack = room / 8;
		if (!room || bpf_probe_read_user(r->stack, room, (void *)a.sp))
			r->nstack = 0;
	}
	r->seq++;
	return 0;
}

__noinline int block_end(__u32 slot, __u64 now)
{
	if (slot >= WEFT_BPF_MAX_CORES)
		return 0;
	struct weft_bpf_block *b = &blocks[slot];
	__u64 t0 = b->cur.start_ts;
	if (!t0)
		return 0;
	__u64 d = now > t0 ? now - t0 : 0;
	b->episodes++;
	b->total_ns += d;
	if (d >= WEFT_BPF_BLOCK_KEEP_NS) {
		b->done.seq++;
		b->done.start_ts = t0;
		b->done.end_ts = now;
		b->done.task = b->cur.task;
		b->done.nr = b->cur.nr;
		b->done.ip = b->cur.ip;
		b->done.sp = b->cur.sp;
		b->done.nstack = b->cur.nstack;
		bpf_probe_read_kernel(b->done.stack, sizeof(b->done.stack), b->cur.stack);
		b->done.seq++;
	}
	b->cur.seq++;
	b->cur.start_ts = 0;
	b->cur.seq++;
	return 0;
}

/* Asleep, not just rescheduled on its way back to user mode (a voluntary
 * switch, preempt false, either way). The field is `state` before 5.14. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline bool task_asleep(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state) != 0;
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state) != 0;
}

/* The global tgid of the target, learned from `prev` (the current task in
 * sched_switch) when its pid in schedtop's pid namespace is the target's.
 * Runs only until the id is known: a helper call per switch machine-wide,
 * and only when schedtop runs outside the initial pid namespace. */
static __always_inline __u32 learn_tgid_ns(struct task_struct *prev)
{
	struct bpf_pidns_info ns = {};
	if (!target_nspid ||
	    bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) ||
	    ns.tgid != target_nspid)
		return 0;
	target_tgid = (__u32)prev->tgid;
	return target_tgid;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(weft_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tgid = target_tgid;
	if (!tgid && !(tgid = learn_tgid_ns(prev)))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if ((__u32)prev->tgid == tgid) {
		struct tstate *ts = tstate_get((__u32)prev->pid, true);
		if (ts) {
			struct weft_bpf_core *c = slot_get(ts->slot);
			if (c) {
				if (ts->slot < WEFT_BPF_MAX_CORES)
					c->oncpu_since = 0;
				if (ts->oncpu_start && now > ts->oncpu_start)
					__sync_fetch_and_add(&c->oncpu_ns, now - ts->oncpu_start);
				if (preempt) {
					__sync_fetch_and_add(&c->invol_switches, 1);
					if (ts->slot < WEFT_BPF_MAX_CORES && c->local_depth > 0 &&
					    c->state == WEFT_ST_RUNNING)
						c->invol_with_work++;
				} else {
					__sync_fetch_and_add(&c->vol_switches, 1);
				}
			}
			ts->oncpu_start = 0;
			struct sys_args a;
			if (futex_from_switch && !preempt && task_sys_args(prev, &a)) {
				if (futex_call_waits(a.nr, a.a1))
					ts->futex_ts = now;
				/* the core's current thread only: a hand-off
				 * thread that gave the core up is not parked */
				if (c && ts->slot < WEFT_BPF_MAX_CORES && c->tid == (__u32)prev->pid) {
					if (is_park_sleep(&a, c))
						park_begin(c, ts, now);
					else if (task_asleep(prev))
						block_begin(ts->slot, c->counters_ptr, now);
				}
			}
			/* Without bpf_task_pt_regs sys_enter said which call the
			 * thread is in: a park sleep all the same (it was never
			 * taken for one there, and every worker read running,
			 * 0 % parked, no park durations: found by a review), or
			 * a blocking call (blocking-call never fired there) */
			if (!futex_from_switch && !preempt && c && ts->slot < WEFT_BPF_MAX_CORES &&
			    c->tid == (__u32)prev->pid) {
				if (ts->park_call)
					park_begin(c, ts, now);
				else if (task_asleep(prev))
					block_begin(ts->slot, c->counters_ptr, now);
			}
		}
	}
	if ((__u32)next->tgid == tgid) {
		struct tstate *ts = tstate_get((__u32)next->pid, true);
		if (ts) {
			ts->oncpu_start = now;
			if (ts->slot < WEFT_BPF_MAX_CORES) {
				struct weft_bpf_core *oc = slot_get(ts->slot);
				if (oc)
					oc->oncpu_since = now;
			}
			if (futex_from_switch)
				futex_done(ts, now);
			block_end(ts->slot, now);
			if (ts->park_sleep) {
				struct weft_bpf_core *c = slot_get(ts->slot);
				if (c)
					park_end(c, ts, now);
				else
					ts->park_sleep = 0;
			}
		}
	}
	return 0;
}

/* A parked worker thread is woken: count it for its core (and for the
 * waker's, when a worker of the process woke it) and stamp the wake for
 * the unpark latency. */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(weft_sched_wakeup, struct task_struct *p)
{
	__u32 tgid = target_tgid;
	if (!tgid || (__u32)p->tgid != tgid)
		return 0;
	__u32 tid = (__u32)p->pid;
	struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
	if (!ts || !ts->park_sleep)
		return 0;
	struct weft_bpf_core *c = slot_get(ts->slot);
	if (!c)
		return 0;
	if (!c->notify_ts)
		c->notify_ts = bpf_ktime_get_ns();
	__sync_fetch_and_add(&c->notified, 1);
	__u64 pt = bpf_get_current_pid_tgid();
	if ((__u32)(pt >> 32) == tgid) {
		__u32 wtid = (__u32)pt;
		struct tstate *wts = bpf_map_lookup_elem(&tstate, &wtid);
		if (wts && wts->slot < WEFT_BPF_MAX_CORES) {
			struct weft_bpf_core *f = slot_get(wts->slot);
			if (f)
				__sync_fetch_and_add(&f->notifies_sent, 1);
		}
	}
	return 0;
}

/* The target execs (the same pid, a new program): its runtimes and their
 * threads are gone without a worker_stop. Their cores are stopped from here
 * on (they stayed "parked" or "running", with their dead threads, beside
 * the new program's runtime for as long as schedtop ran: found by a
 * review); the thread that called exec, a worker's perhaps, goes on as a
 * thread of the new program, not as that core. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(weft_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = target_tgid;
	if (!tgid || (__u32)p->tgid != tgid)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__sync_fetch_and_add(&execs, 1);
	for (__u32 i = 0; i < WEFT_BPF_MAX_CORES; i++) {
		struct weft_bpf_core *c = &cores[i];
		if (!c->rt_id || c->state == WEFT_ST_STOPPED)
			continue;
		set_state(c, WEFT_ST_STOPPED, now);
		c->park_ts = 0;
		c->notify_ts = 0;
		c->oncpu_since = 0;
		c->last_event_ts = now;
	}
	__u32 tid = (__u32)p->pid, otid = (__u32)old_pid;
	struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
	if (ts) {
		ts->slot = WEFT_BPF_OTHER;
		ts->park_sleep = 0;
		ts->futex_ts = 0;
	}
	if (otid != tid)
		bpf_map_delete_elem(&tstate, &otid);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(weft_sched_migrate, struct task_struct *p, int dest_cpu)
{
	__u32 tgid = target_tgid;
	if (!tgid || (__u32)p->tgid != tgid)
		return 0;
	struct tstate *ts = tstate_get((__u32)p->pid, true);
	if (!ts)
		return 0;
	struct weft_bpf_core *c = slot_get(ts->slot);
	if (c)
		__sync_fetch_and_add(&c->migrations, 1);
	return 0;
}

/* Fallback (futex_from_switch == 0): the raw syscall tracepoints, which
 * run for every syscall on the machine. Not loaded otherwise. */
SEC("tp_btf/sys_enter")
int BPF_PROG(weft_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = target_tgid;
	__u64 pt = bpf_get_current_pid_tgid();
	if (!tgid || (__u32)(pt >> 32) != tgid)
		return 0;
	struct sys_args a = { .nr = id };
	a.a1 = PT_REGS_PARM2_CORE_SYSCALL(regs);
	bool waits = futex_call_waits(id, a.a1);
	/* a core's thread has a tstate (learn_tid); others only for a wait */
	struct tstate *ts = tstate_get((__u32)pt, waits);
	if (!ts)
		return 0;
	if (waits)
		ts->futex_ts = bpf_ktime_get_ns();
	/* The core's thread entering the wait of its park (is_park_sleep; the
	 * thread is current, so its counters are readable): its sleeps until
	 * sys_exit are park sleeps (sched_switch) */
	struct weft_bpf_core *c = ts->slot < WEFT_BPF_MAX_CORES ? slot_get(ts->slot) : 0;
	if (c && c->tid == (__u32)pt) {
		a.a0 = PT_REGS_PARM1_CORE_SYSCALL(regs);
		ts->park_call = is_park_sleep(&a, c);
		/* for block_begin, should it sleep in the call inside a poll */
		ts->sys_nr = id;
		ts->sys_ip = PT_REGS_IP_CORE(regs);
		ts->sys_sp = PT_REGS_SP_CORE(regs);
		ts->in_sys = 1;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(weft_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tgid = target_tgid;
	__u64 pt = bpf_get_current_pid_tgid();
	if (!tgid || (__u32)(pt >> 32) != tgid)
		return 0;
	__u32 tid = (__u32)pt;
	struct tstate *ts = bpf_map_lookup_elem(&tstate, &tid);
	if (ts) {
		futex_done(ts, bpf_ktime_get_ns());
		ts->park_call = 0;
		ts->in_sys = 0;
	}
	return 0;
}
