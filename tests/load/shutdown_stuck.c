/*
 * shutdown_stuck.c - an LD_PRELOAD module for test_load.py's
 * shutdown-stuck: weft_runtime_shutdown first starts a fiber that never
 * returns and never calls weft (it sleeps in nanosleep, as code stuck in a
 * blocking call or a loop does), waits until a worker runs it, then calls
 * libweft's shutdown, which times out: the fiber keeps its worker.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <time.h>
#include <weft/weft.h>

#define EXPORT __attribute__((visibility("default")))

static atomic_int running;

static void *stuck(void *arg)
{
	(void)arg;
	atomic_store(&running, 1);
	for (;;)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	return NULL;
}

EXPORT int weft_runtime_shutdown(struct weft_runtime *rt, uint64_t timeout_ns)
{
	static atomic_int started;
	int (*real)(struct weft_runtime *, uint64_t) =
		(int (*)(struct weft_runtime *, uint64_t))dlsym(RTLD_NEXT, "weft_runtime_shutdown");
	if (!atomic_exchange(&started, 1) && weft_spawn(rt, stuck, NULL, NULL) == 0)
		for (int i = 0; i < 500 && !atomic_load(&running); i++)
			nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	return real(rt, timeout_ns);
}
