/*
 * fork.c - detect that we run in the child of a fork(): the runtime's
 * threads did not come along and its mutexes may be held by threads that no
 * longer exist, so the child must not touch it. weft calls check
 * WEFT__FORKED(rt) first and fail with -ECHILD; exec in the child works
 * as usual.
 */
#include <pthread.h>
#include <unistd.h>

#include "probes.h"
#include "runtime.h"

_Atomic unsigned weft__fork_gen;
WEFT__TLS bool weft__forked_task;
WEFT__TLS bool weft__runtime_thread;

static void in_child(void)
{
	atomic_fetch_add_explicit(&weft__fork_gen, 1, memory_order_relaxed);
	/* Forked from inside a task, fiber or blocking job: this thread is a
	 * worker or pool thread of the parent's runtime, and after the fork
	 * it would go back into that runtime's loop and run the parent's
	 * other tasks in the child, again (found by a review: a fiber's
	 * fork whose exec failed left a child running the parent's
	 * fibers for good; a blocking job's child ran the parent's queued
	 * jobs again). */
	/* A thread a runtime started (a worker, a spare, a blocking-pool
	 * thread: never a user's, whose fork inside weft_block_on's fn
	 * returns to user code, not to a runtime loop; marking those made
	 * every later wait of that thread -ECHILD, on new runtimes too) */
	if (weft__runtime_thread)
		weft__forked_task = true;
	weft__probe_after_fork();
	weft__once_after_fork();
}

/* The task of a forked child returned to the runtime's loop (a fiber's fn
 * returned, a poll or blocking job ended): the child has none of the
 * parent's threads, so it cannot go on. A child forked from a task must
 * exec or _exit (weft.h). */
void weft__fork_child_returned(void)
{
	weft__die("pid %d: a task of a forked child returned into its parent's runtime, "
		  "which the child cannot run; a child forked from a task must exec or _exit",
		  (int)getpid());
}
static void install(void) { pthread_atfork(NULL, NULL, in_child); }

void weft__fork_watch(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install);
}
