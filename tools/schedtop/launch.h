/*
 * launch.h - `schedtop -- CMD` when CMD itself does not load libweft: a
 * wrapper (sh -c, env, taskset, numactl, a script) that starts the program
 * that does. CMD runs traced (ptrace, PTRACE_SEIZE with fork/vfork/clone/
 * exec events) with the caller's real ids and no capabilities; every
 * process it starts is followed until one execs a program that loads
 * libweft (or holds weft probes itself). That process is held at its exec
 * stop, before ld.so has mapped anything, so the probes can be attached
 * before its first instruction, as for a direct command; then every
 * process is detached and runs on untraced.
 *
 * Under ptrace a set-user-ID or file-capability program in the chain runs
 * without its privileges (the kernel's rule), so a wrapper such as sudo
 * will not gain any; schedtop never watches anything the caller could not.
 */
#ifndef SCHEDTOP_LAUNCH_H
#define SCHEDTOP_LAUNCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct launch {
	pid_t child;                 /* CMD, schedtop's child */
	pid_t target;                /* the process that loads libweft, held at exec */
	/* every process and thread traced, as many as CMD starts (a fixed 256
	 * left the rest traced but unknown: never detached, and killed when
	 * schedtop exited, PTRACE_O_EXITKILL). Freed by launch_release and
	 * launch_abort, and by launch_follow when it fails. */
	pid_t *traced;
	int ntraced, cap;
	int child_status;            /* CMD's wait status if it was reaped here */
	bool child_reaped;
};

/* Start `cmd` and follow it (see above). 0 with l->target stopped and its
 * library in `lib`; -ECHILD when CMD and everything it started ended
 * before any loaded libweft (`err` says so, with CMD's exit status),
 * other -errno with `err` filled. On an error nothing is left traced and
 * CMD has been killed (or has ended). */
int launch_follow(char *const cmd[], struct launch *l, char *lib, size_t n, char *err,
		  size_t en);

/* Detach every process but the target (they run on). */
void launch_detach_others(struct launch *l);

/* Let the target run (detach it). */
void launch_release(struct launch *l);

/* The attach failed: kill the target and CMD, detach the rest. */
void launch_abort(struct launch *l);

/* The command's stdin and its stdout and stderr, in the child schedtop
 * starts (start_child, launch_follow), from then on: -1 (the default)
 * leaves them inherited. The live view gives it /dev/null and a log file,
 * so the command's output cannot write over the screen. */
void launch_set_child_stdio(int in_fd, int out_fd);
/* In the child, before exec: apply it (fds are dup2'd onto 0, 1, 2). */
void launch_child_stdio(void);

/* The library the program at `exe` would load when run with `envp`, asked
 * of its dynamic loader (`ld.so --list`, which never runs the program), or
 * `exe` itself when it holds the weft probes (static link). 0 or -ENOENT.
 * The loader runs with the caller's ids; for a process it follows,
 * launch_follow runs it with that process's real uid, gid and groups. */
int launch_lib_for_exe(const char *exe, char *const envp[], char *out, size_t n);

#endif /* SCHEDTOP_LAUNCH_H */
