/*
 * mon.h - the BPF side of schedtop: finding the library
 * that holds the weft probes, loading weft.bpf.c, attaching it to one
 * process, reading snapshots and draining the trace ring buffer.
 */
#ifndef SCHEDTOP_MON_H
#define SCHEDTOP_MON_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"

#define SCHEDTOP_EXIT_SKIP 77

struct weft_bpf;
struct ring_buffer;
struct bpf_link;

/* Where mon_open failed, for naming the capability that was missing. */
enum mon_step { MON_STEP_NONE, MON_STEP_LOAD, MON_STEP_USDT, MON_STEP_TP };

struct mon {
	struct weft_bpf *skel;
	int pid;
	char lib[PATH_MAX];
	int stats_fd;
	struct ring_buffer *rb;
	struct bpf_link *links[24];
	int nlinks;
	char futex_src[64]; /* which programs time futex waits (sched_switch or tp_btf:...) */
	enum mon_step step; /* the step that failed, after mon_open returned an error */
	int stats_err;      /* BPF_ENABLE_STATS refused (-errno): no BPF run-time figures */
	/* the thread mon_seed_thread gave each slot last (0: none): while the
	 * slot's tid is still that one, no probe has named another */
	unsigned seeded[WEFT_BPF_MAX_CORES];
	unsigned seeded_as[WEFT_BPF_MAX_CORES]; /* that thread's id in the target's pid namespace */
};

/* The file whose USDT notes carry provider weft, as mapped by `pid`:
 * libweft.so, or the executable when weft is linked statically. 0, -ENOENT
 * (no weft in that process), -ESRCH (no such process), -EACCES / -EPERM
 * (its /proc/PID/maps may not be read). */
int mon_find_lib(int pid, char *out, size_t n);

/* Does the file hold stapsdt notes of provider weft? */
bool mon_file_has_weft_notes(const char *path);

/* The libweft that `argv[0]` would load (ld.so's trace mode, run in a
 * child with the caller's ids and no capabilities), or the executable
 * itself when it holds the probes. 0 or -ENOENT. */
int mon_find_lib_for_cmd(char *const argv[], char *out, size_t n);

/* Load and attach to `pid` (USDT in `lib`, tracepoints filtered on the
 * pid). Futex sleeps are timed in sched_switch, or, when that cannot load
 * (kernel before 5.15), by the sys_enter/sys_exit tracepoints (environment
 * SCHEDTOP_FUTEX=tp forces them); the choice is in m->futex_src. 0;
 * -EPERM/-EACCES (privileges; m->step says where), -EOPNOTSUPP (BPF
 * cannot work here: no BTF, no uprobes...), other -errno. Needs the
 * capabilities raised (priv_raise); keeps working after they are dropped. */
/* trace: also attach the park-path probes (steal_fail, park, unpark,
 * notify), which only feed the event stream; the counts never need them. */
int mon_open(struct mon *m, int pid, const char *lib, bool verbose, bool trace);

/* Give core `core` of runtime `rt` a slot (rows are per slot), as the BPF
 * side does when it first sees the core: for the cores the target's
 * registry lists that fired no probe yet. 0 or -errno. */
int mon_add_core(struct mon *m, uint64_t rt, unsigned core);

/* Core `core` of runtime `rt` (a slot mon_add_core gave it) is driven by
 * thread `tid`, whose counters are at `counters`: as read from the target's
 * memory (the core's holder_tid), for a core whose thread no probe named
 * yet (its workers asleep in their parks when schedtop attached fire none).
 * `tid` is the target's own id of the thread (gettid in its pid namespace),
 * translated to the kernel's global one through /proc/PID/task/.../status
 * (NSpid); schedtop outside the initial pid namespace cannot know that
 * one, and names none. A thread a probe named (worker_start, maintenance)
 * is newer and stays; one named here before is replaced when the core
 * changed hands. 0, -ENOENT (no slot, or the thread not found). */
int mon_seed_thread(struct mon *m, uint64_t rt, unsigned core, uint64_t counters, unsigned tid);

/* Copy the aggregates. */
void mon_snapshot(struct mon *m, struct snap *s);

typedef int (*mon_event_fn)(void *ctx, const struct weft_bpf_event *e);
int mon_trace_start(struct mon *m, mon_event_fn fn, void *ctx);
void mon_trace_stop(struct mon *m);
int mon_trace_poll(struct mon *m, int timeout_ms); /* events consumed or -errno */
void mon_close(struct mon *m);

/* Is `pid` gone? (exited, or a zombie) */
bool mon_target_gone(int pid);

#endif /* SCHEDTOP_MON_H */
