/*
 * slow_sigaction.c - LD_PRELOAD shim: sigaction() that installs the new
 * SIGSEGV action, then waits 20 ms before it writes the old one to the
 * caller's oact. The kernel does the same in that order (oact is copied
 * out after the new action is in place), only for nanoseconds; this makes
 * the window wide enough to hit every time. overflow.sh runs
 * `fiber_overflow big chained` under it: the program's own fault, taken as
 * the runtime's workers install weft's handler, must reach the program's
 * handler, not kill it (a chaos-build CI flake, status 139).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction *act,
						 struct sigaction *oact)
{
	static int (*real)(int, const struct sigaction *, struct sigaction *);
	if (!real)
		real = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(
			RTLD_NEXT, "sigaction");
	struct sigaction old;
	int rc = real(sig, act, &old);
	if (act && oact && sig == SIGSEGV)
		usleep(20000);
	if (oact && rc == 0)
		*oact = old;
	return rc;
}
