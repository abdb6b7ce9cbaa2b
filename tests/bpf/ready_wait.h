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

/* SIGUSR1 blocked from the start, in every thread: ready_wait blocked it
 * in the calling thread only, after the runtime's workers were made, so
 * a SIGUSR1 that the kernel gave to a worker (the main thread not taking
 * it at that instant) killed the program - stall_target in CI, "killed
 * by signal 10" before it spawned anything. Threads made later inherit
 * the mask. */
__attribute__((constructor)) static void ready_block_early(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

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
