/*
 * fork.c - detect that we run in the child of a fork(): the runtime's
 * threads did not come along and its mutexes may be held by threads that no
 * longer exist, so the child must not touch it. weft calls check
 * WEFT__FORKED(rt) first and fail with -ECHILD; exec in the child works
 * as usual.
 */
#include <pthread.h>

#include "probes.h"
#include "runtime.h"

_Atomic unsigned weft__fork_gen;

static void in_child(void)
{
	atomic_fetch_add_explicit(&weft__fork_gen, 1, memory_order_relaxed);
	weft__probe_after_fork();
}
static void install(void) { pthread_atfork(NULL, NULL, in_child); }

void weft__fork_watch(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install);
}
