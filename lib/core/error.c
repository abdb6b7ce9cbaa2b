/*
 * error.c - weft_strerror and weft__die.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/*
 * Texts fit every call that can return the code: the generic meaning
 * first, what it means for a particular call only as "e.g.". 0 and
 * WEFT_PENDING (1) are the other values of the same int space (poll forms
 * return them); a positive value other than WEFT_PENDING is taken as an
 * errno value.
 */
const char *weft_strerror(int err)
{
	if (err == INT_MIN)
		return "unknown error";
	if (err == WEFT_PENDING)
		return "pending: not finished yet, the waker will be woken (WEFT_PENDING, not an error)";
	switch (err) {
	case WEFT_EAI_NONAME: return "name resolution: host not known";
	case WEFT_EAI_NODATA: return "name resolution: the host has no address of the wanted family";
	case WEFT_EAI_AGAIN: return "name resolution: temporary failure of the name server (try again)";
	case WEFT_EAI_FAIL: return "name resolution: permanent failure of the name server";
	case WEFT_EAI_OTHER: return "name resolution failed";
	}
	if (err < 0)
		err = -err;
	switch (err) {
	case 0: return "success";
	case EINVAL: return "invalid argument";
	case ENOMEM: return "out of memory";
	case EAGAIN: return "resource temporarily unavailable (try again)";
	case ESHUTDOWN: return "shut down (e.g. the runtime was shut down)";
	case EDEADLK: return "would deadlock (e.g. a blocking call from a poll task, "
			     "or a runtime's own worker waiting for that runtime)";
	case ECANCELED: return "cancelled (e.g. a task aborted or cancelled by shutdown - a fiber "
			       "before it started -, or a blocking call in a cancelled fiber)";
	case EINTR: return "interrupted (e.g. a fiber cancelled after it started: it unwound "
			   "and returned)";
	case ETIMEDOUT: return "timed out";
	case EBUSY: return "busy (e.g. a mutex already held, or a destroy while join "
			   "handles, wakers or wait entries are outstanding)";
	case EPIPE: return "the other end is closed (e.g. a closed channel, a dropped "
			   "oneshot end, a socket the peer closed)";
	case ENOTSUP: return "not supported";
	case ECHILD: return "no child process, or an object of the parent process (e.g. a "
			    "pid that is not a child or was reaped already; a runtime used "
			    "in a child after fork)";
	case EBADF: return "bad file descriptor (e.g. the I/O registration was closed)";
	case EPERM: return "operation not permitted (e.g. unlocking a mutex that is not locked)";
	case EOVERFLOW: return "value too large (e.g. a semaphore count past WEFT_SEM_MAX_PERMITS)";
	case EADDRNOTAVAIL: return "address not available (e.g. an address that is not this "
				   "host's, or no local port left)";
	case ENOENT: return "no such file or entry, nothing to take (e.g. a program or "
			    "socket path that does not exist, a join set with no task left)";
	case EADDRINUSE: return "address already in use (e.g. a port another socket holds, or "
				"a file already at a Unix socket's path: weft does not remove "
				"it, unlink a stale one)";
	case EPROTOTYPE: return "wrong type of socket for the call (e.g. a datagram socket "
				"given to a reader or a copy, which read streams)";
	}
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

void weft__warn(const char *fmt, ...)
{
	char buf[512];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = saved;
		return;
	}
	size_t len = (size_t)n < sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 2;
	buf[len++] = '\n';
	/* fprintf raised SIGPIPE on a stderr whose reader had gone, killing
	 * a program that had SIGPIPE at its default (found by a review):
	 * blocked around the write, and one it raised is taken off again,
	 * as io.c does for pipes */
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	fflush(stderr); /* anything the program buffered goes first */
	ssize_t w = write(STDERR_FILENO, buf, len);
	if (w < 0 && errno == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
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
