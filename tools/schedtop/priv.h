/*
 * priv.h - schedtop's privileges: which capabilities it holds, the one
 * stretch of code that uses them, whom it may watch, and what its children
 * run with. docs/OBSERVABILITY.md ("Privileges") explains the model.
 *
 * Two kinds of caller:
 *  - an ordinary user running a copy with file capabilities (setcap ...=p):
 *    schedtop keeps only CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN in its
 *    permitted set, none effective, raises them around the BPF load and
 *    attach (priv_raise) and drops every capability right after (priv_drop);
 *    it may watch only processes it could ptrace with its real credentials;
 *  - root (sudo): root's own credentials, any process; after the attach it
 *    keeps only the capabilities to read and write files and read any
 *    process's memory map (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 *    CAP_SYS_PTRACE).
 * Set-user-ID installs are refused: nothing here would undo the uid change.
 */
#ifndef SCHEDTOP_PRIV_H
#define SCHEDTOP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* First thing in main. 0, or 1 with `why` filled (set-user-ID install, or
 * capget/capset failed). */
int priv_init(char *why, size_t n);

/* Is the real user root? */
bool priv_is_root(void);

/* 0 when the permitted set holds what loading the BPF programs needs
 * (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN); otherwise 77 with `why`
 * naming each missing capability and the fix. */
int priv_missing(char *why, size_t n);

/* Effective = permitted (an ordinary user's capability binary). */
int priv_raise(void);

/* After the attach, for good: an ordinary user keeps no capability in any
 * set (effective, permitted, inheritable, ambient); root keeps the
 * file-access set above. Checked with capget: 0, or 1 with `why`. */
int priv_drop(char *why, size_t n);

/* In a forked child, before exec: the caller's real ids and, for an
 * ordinary user, no capability at all. Async-signal-safe. 0 or -errno. */
int priv_child(void);

/* May the caller watch `pid`? The ptrace rule with real credentials
 * (PTRACE_MODE_READ_REALCREDS): root may watch anything; anyone else only a
 * process whose real, effective, saved and filesystem uids and gids are all
 * the caller's real uid and gid, and which is dumpable. 0, or 1 with `why`
 * saying which part failed (-ESRCH-like "no process" included). */
int priv_may_observe(int pid, char *why, size_t n);

/* The kernel refused (-EPERM/-EACCES) at `step` of mon_open (enum
 * mon_step): fill `why` with the capability that is missing for that step
 * on this kernel and the fix. Returns true when a missing capability
 * explains it (exit 77), false when the caller held everything that step
 * needs (the refusal has another cause: lockdown, an LSM, seccomp). */
bool priv_explain(int step, int err, char *why, size_t n);

#endif /* SCHEDTOP_PRIV_H */
