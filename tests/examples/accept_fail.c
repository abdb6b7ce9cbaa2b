/*
 * accept_fail.c - an LD_PRELOAD module for accept-errors.py: accept4
 * fails as it does when the connection it takes is lost to an error
 * (a firewall rule: EPERM; a protocol error: EPROTO; the peer's reset:
 * ECONNABORTED) or when the listener is gone (EBADF, EINVAL).
 *
 *   WEFT_TEST_ACCEPT_FAIL=E:N   the first N connections accepted are
 *                               closed at once and accept4 returns -1
 *                               with errno E (a number); N may be 0+
 *                               for every one
 *
 * An accept4 that takes no connection (EAGAIN) goes through as it is.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static unsigned long taken;

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	if (!real)
		real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	int c = real(fd, addr, len, flags);
	const char *s = getenv("WEFT_TEST_ACCEPT_FAIL");
	if (c < 0 || !s)
		return c;
	char *end;
	long e = strtol(s, &end, 10);
	if (*end != ':')
		return c;
	unsigned long n = strtoul(end + 1, &end, 10);
	unsigned long k = __atomic_add_fetch(&taken, 1, __ATOMIC_RELAXED);
	if (k > n && *end != '+')
		return c;
	close(c);
	errno = (int)e;
	return -1;
}
