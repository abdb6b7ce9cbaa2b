/*
 * probe_abi.h - data shared between libweft's USDT probes and the BPF
 * programs that read them. Plain fixed-size types only: this header is
 * compiled both into the library and with clang -target bpf.
 *
 * The `worker_start` and `maintenance` probes pass a pointer to struct
 * weft_probe_counters, the core's running counters (owner-written, plain
 * stores); a BPF program reads it with bpf_probe_read_user while the
 * owning thread is current (at a probe, or when it goes to sleep), so it
 * sees them consistent. This is how schedtop counts parks, unparks and
 * failed searches without a probe on the park path. schedtop also reads
 * the struct straight from the target's memory (the cur_* fields, while
 * a poll lasts). Fields are only ever appended.
 */
#ifndef WEFT_PROBE_ABI_H
#define WEFT_PROBE_ABI_H

/* Steals by one core, per victim (victims 0..WEFT_PROBE_STEAL_VICTIMS-1),
 * and its steal sizes by log2 bucket (1, 2-3, 4-7, ..., 128). */
#define WEFT_PROBE_STEAL_VICTIMS 64
#define WEFT_PROBE_STEAL_BINS 8

#define WEFT_PROBE_LAT_BINS 32
#define WEFT_PROBE_LAT_SAMPLE 256

struct weft_probe_steal {
	unsigned long long ops;
	unsigned long long tasks;
};

struct weft_probe_counters {
	unsigned long long park_count;
	unsigned long long noop_count;
	unsigned long long steal_count;          /* tasks stolen by this core */
	unsigned long long steal_operations;
	unsigned long long poll_count;
	unsigned long long busy_ns;
	unsigned long long local_schedule_count;
	unsigned long long overflow_count;
	unsigned long long budget_forced_yields;
	unsigned long long steal_fail_count;     /* searches that found nothing */
	unsigned long long unpark_count;         /* unparked by a notifier */
	unsigned long long park_local_depth;     /* ring length at the latest park */
	unsigned long long park_inject_depth;    /* inject depth at the latest park */
	unsigned long long park_word;            /* address of the holder thread's futex
						  * parker word (set when a thread takes
						  * the core): a u32 that reads
						  * WEFT_PROBE_PARK_WORD_PARKED or
						  * _DRIVER while the thread is in its
						  * park (below) */
	unsigned long long steal_from;           /* address of struct weft_probe_steal
						  * [steal_from_n]: this core's steals
						  * by victim (n grows when it steals
						  * from a core added since; the rest
						  * are 0) */
	unsigned long long steal_from_n;
	unsigned long long steal_batch_log2[WEFT_PROBE_STEAL_BINS];
	/* The task being polled (its address; 0 between polls), for schedtop's
	 * long-poll lint: one plain store by the owner before and after every
	 * poll (poll_count above is the poll's sequence number). A reader
	 * outside (schedtop, process_vm_readv) takes the task's id, poll
	 * function and spawn site from the task itself, at the offsets the
	 * registry gives, and believes them only when two reads agree. */
	unsigned long long cur_task;
	/* Task-level latency, log2 ns buckets ([2^i, 2^(i+1)), bucket 0 also
	 * 0-1 ns), kept only while a tracer holds the `maintenance` probe (its
	 * semaphore is the switch) and sampled: one poll in
	 * WEFT_PROBE_LAT_SAMPLE (by poll_count) is timed, and one schedule in
	 * WEFT_PROBE_LAT_SAMPLE (per core, or per thread without a core)
	 * stamps the task with its wake time for its next poll. Owner-written plain stores; readers take differences. */
	unsigned long long poll_ns_log2[WEFT_PROBE_LAT_BINS];  /* one poll's duration */
	unsigned long long wake_ns_log2[WEFT_PROBE_LAT_BINS];  /* woken (or spawned) -> its poll starts */
	/* Search rounds spent waiting on a victim whose ring holds only short
	 * tasks that it serves itself (worker.c, steal policy). */
	unsigned long long steal_wait_rounds;
	/* Stalls: polls that lasted the runtime's stall_threshold_ns or more,
	 * each counted once by the stall watch (the metric `stalls`), and the
	 * latest one: its task's id, the function it runs (a fiber's own fn,
	 * not weft's fiber_poll), its spawn site, and how long it had lasted
	 * when it was counted (0s when the task could not be read safely).
	 * Written by the worker that counted it under a sequence word:
	 * stall_seq odd, the fields and the count, stall_seq even (a reader
	 * that reads the same even stall_seq before and after has them whole;
	 * the count alone needs no check). Readers outside check the
	 * registry's counters_size before they read these. */
	unsigned long long stall_count;
	unsigned long long stall_task_id, stall_fn, stall_site, stall_age_ns;
	unsigned long long stall_seq;
	/* The thread id (gettid) of the thread that holds the core, 0 while
	 * none does (a retired core), set beside park_word. A reader outside
	 * the process (schedtop attaching to a runtime whose workers sleep in
	 * their parks, which fire no probe) learns each core's thread from it;
	 * read it only when the registry's counters_size covers it. */
	unsigned long long holder_tid;
};

/* The runtimes of a process, for readers outside it: schedtop's long-poll
 * lint finds the dynamic symbol weft_probe_registry in libweft (or the
 * executable) and reads it with process_vm_readv, so it knows every core's
 * counters even in a runtime created before it attached, without a probe.
 * A runtime takes a free slot at create and clears it at destroy, under a
 * lock; `gen` is odd while a slot changes, so a reader that sees the same
 * even gen before and after its copy has a consistent copy. At most
 * WEFT_PROBE_REG_SLOTS runtimes are listed at once: one created while
 * every slot is taken waits, and takes the first slot that frees (oldest
 * first). In a forked child
 * the registry starts empty (fork.c). */
#define WEFT_PROBE_REG_SLOTS 16
#define WEFT_PROBE_REG_MAGIC 0x0067657274666577ull /* "weftreg" */

struct weft_probe_reg_slot {
	unsigned long long rt;        /* runtime address; 0: free */
	unsigned long long ncores;
	unsigned long long counters;  /* core 0's struct weft_probe_counters */
	unsigned long long stride;    /* bytes from one core's counters to the next */
};

struct weft_probe_registry {
	unsigned long long magic;
	unsigned long long gen;
	/* where, in a task (cur_task), its id, poll function and spawn site
	 * (the return address of the weft_spawn_poll / weft_spawn call) are */
	unsigned long long task_id_off, task_poll_off, task_spawn_off;
	struct weft_probe_reg_slot slot[WEFT_PROBE_REG_SLOTS];
	/* A core's run queue, for a fresh depth without a probe: from a core's
	 * counters address, its ring's head (u64: steal << 32 | next to pop)
	 * and tail (u32: next free) are at these signed offsets; depth is
	 * tail - (u32)head. */
	long long ring_head_off, ring_tail_off;
	/* each runtime's inject queue length (a size_t), by slot */
	unsigned long long inject_len[WEFT_PROBE_REG_SLOTS];
	/* Fibers (weft_spawn): their task's poll function is weft's own
	 * fiber_poll, never the user's. A reader names the user's function
	 * from the task: when poll == fiber_poll, it is at (the task's arg,
	 * at task_arg_off) + fiber_fn_off; when poll == fiber_poll_lazy (a
	 * fiber spawned lazily, before its first poll), at arg +
	 * fiber_lazy_fn_off. Valid only when fiber_magic is
	 * WEFT_PROBE_FIBER_MAGIC (a library older than these fields has other
	 * data here); the addresses are 0 until the first runtime is
	 * created. */
	unsigned long long fiber_magic;
	unsigned long long task_arg_off;
	unsigned long long fiber_poll, fiber_fn_off;
	unsigned long long fiber_poll_lazy, fiber_lazy_fn_off;
	/* sizeof(struct weft_probe_counters) in this library (valid, like the
	 * fields above, when fiber_magic is WEFT_PROBE_FIBER_MAGIC): a reader
	 * reads the counters' later fields (the stall_* ones) only when they
	 * fit in it. */
	unsigned long long counters_size;
};
#define WEFT_PROBE_FIBER_MAGIC 0x7265626966746677ull /* "wftfiber" */

/* The parker word's values (park_word above) while its thread is in its
 * park: asleep on the futex, or in the I/O driver's wait (epoll or
 * io_uring). Others (0, 2) while it is awake or being woken. A reader
 * outside (schedtop, of a worker asleep since before it attached, which
 * fires no probe) reads the word to tell a parked worker. */
#define WEFT_PROBE_PARK_WORD_PARKED 1
#define WEFT_PROBE_PARK_WORD_DRIVER 3

/* `park` probe, argument kind: always WEFT_PARK_FUTEX. The probe fires
 * before the worker knows whether it sleeps in the driver or on its futex
 * (one park cycle may do both); WEFT_PARK_DRIVER is reserved, never passed. */
#define WEFT_PARK_FUTEX 0
#define WEFT_PARK_DRIVER 1

/* `unpark` probe, argument reason */
#define WEFT_UNPARK_NOTIFIED 0   /* a notifier popped this core from the sleepers */
#define WEFT_UNPARK_SHUTDOWN 1
#define WEFT_UNPARK_SELF 2       /* woke itself: the driver's watch found a task to rescue
				  * or a queue its worker had not served */
#define WEFT_UNPARK_RETIRE 3     /* weft_runtime_set_workers retires the core */

#endif /* WEFT_PROBE_ABI_H */
