/*
 * exec_target.c - a weft program that execs another while schedtop
 * watches it (schedtop_longpoll_exec).
 *
 *   exec_target PROGRAM [ARGS...]
 *
 * Starts a 2-worker runtime, prints "ready PID" and waits for SIGUSR1
 * (schedtop attaches meanwhile); then destroys the runtime and execs
 * PROGRAM (stall_target: "ready PID" again, the same pid, then a long poll
 * after the next SIGUSR1).
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <weft/weft.h>

#include "ready_wait.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: exec_target PROGRAM [ARGS...]\n");
		return 2;
	}
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt))
		return 1;
	if (ready_wait())
		return 1;
	if (weft_runtime_destroy(rt))
		return 1;
	/* PROGRAM blocks SIGUSR1 again itself (ready_wait) */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	execv(argv[1], argv + 1);
	perror("exec_target: exec");
	return 1;
}
