/*
 * slow_unit.c - an LD_PRELOAD module for test_load.py's units-drain: the
 * first nanosleep of a blocking job (weft-load's blocking shape sleeps
 * 0.2..2 ms off the main thread) lasts SLOW_UNIT_S seconds instead (12 by
 * default), so a --units run's one unit outlasts the 10 s --drain
 * defaults to. Every other nanosleep, the main thread's included, is
 * libc's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	static atomic_bool done;
	int (*real)(const struct timespec *, struct timespec *) =
		(int (*)(const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "nanosleep");
	if (syscall(SYS_gettid) != getpid() && req->tv_sec == 0 && req->tv_nsec >= 200000 &&
	    !atomic_exchange(&done, true)) {
		const char *s = getenv("SLOW_UNIT_S");
		struct timespec left = { s ? atoi(s) : 12, 0 };
		while (real(&left, &left) && errno == EINTR)
			;
		return 0;
	}
	return real(req, rem);
}
