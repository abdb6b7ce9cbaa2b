/*
 * ready_wait.h - for the BPF tests' workload programs: print "ready PID"
 * and wait for SIGUSR1, so a tracer can attach before what it must see.
 * Returns 0, or -1 when sigwait fails.
 */
#ifndef WEFT_TESTS_READY_WAIT_H
#define WEFT_TESTS_READY_WAIT_H

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static inline int ready_wait(void)
{
	sigset_t s;
	int sig;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	return sigwait(&s, &sig) ? -1 : 0;
}

#endif /* WEFT_TESTS_READY_WAIT_H */
