/*
 * probe_abi.h - data shared between libweft's USDT probes and the BPF
 * programs that read them. Plain fixed-size types only: this header is
 * compiled both into the library and with clang -target bpf.
 *
 * The `maintenance` probe passes a pointer to struct weft_probe_counters,
 * the core's running counters; a BPF program reads it with
 * bpf_probe_read_user. Fields are only ever appended.
 */
#ifndef WEFT_PROBE_ABI_H
#define WEFT_PROBE_ABI_H

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
};

/* `park` probe, argument kind */
#define WEFT_PARK_FUTEX 0
#define WEFT_PARK_DRIVER 1

/* `unpark` probe, argument reason */
#define WEFT_UNPARK_NOTIFIED 0   /* a notifier popped this core from the sleepers */
#define WEFT_UNPARK_SHUTDOWN 1

#endif /* WEFT_PROBE_ABI_H */
