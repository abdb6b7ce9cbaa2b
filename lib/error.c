/*
 * error.c - weft_strerror and weft__die.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

const char *weft_strerror(int err)
{
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
	case 0: return "success";
	case EINVAL: return "invalid argument";
	case ENOMEM: return "out of memory";
	case EAGAIN: return "resource temporarily unavailable (try again)";
	case ESHUTDOWN: return "runtime is shut down";
	case EDEADLK: return "would deadlock: called from a runtime worker thread";
	case ECANCELED: return "task was cancelled";
	case ETIMEDOUT: return "timed out";
	case EBUSY: return "busy: join handles or wakers still outstanding";
	case EPIPE: return "peer closed";
	case ENOTSUP: return "not supported";
	case ECHILD: return "the runtime belongs to the parent process (called after fork)";
	case EBADF: return "the registration was closed";
	}
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

void weft__die_at(const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "weft: fatal: %s:%d: %s: ", file, line, func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
