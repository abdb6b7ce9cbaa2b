/*
 * echo.c - a TCP echo server: one fiber per connection.
 * Usage: echo [PORT [IDLE_SECONDS]] (default 7007 and 60 s; PORT 0: any
 * free port; binds 127.0.0.1; anything else is a usage error, exit 2).
 * Try: nc 127.0.0.1 7007
 * A connection that sends nothing for IDLE_SECONDS, or cannot take its
 * echo for as long (it does not read), is closed: each read and write has
 * a deadline (Go's SetDeadline before each call), so a client that
 * connects and says nothing does not hold a fiber and an fd for ever.
 * Every byte that comes is progress: its echo starts the next wait.
 * Out of file descriptors or memory, it waits and accepts again: the
 * pending connections stay queued until connections close. An error that
 * lost one connection (ECONNABORTED, EPERM from a firewall rule, EPROTO,
 * a network error accept passes on) is reported and the next one
 * accepted; it exits only when the listener itself is unusable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft/weft.h>

/* A whole number in [lo, hi], nothing after it (atoi took "70000" as port
 * 4464 and "abc" as 0, a random port). */
static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* The listener is gone or was never one: accepting again cannot work.
 * Every other error is of one connection (it is lost, the next is taken)
 * or of a resource that comes back (fds, memory). It used to be the other
 * way round: errors outside a short list (EPERM, EPROTO, ENETUNREACH...)
 * ended the server (found by a review). */
static int accept_fatal(int rc)
{
	return rc == -EBADF || rc == -EINVAL || rc == -ENOTSOCK || rc == -EOPNOTSUPP ||
	       rc == -EFAULT || rc == -ESHUTDOWN;
}

/* Out of a resource: the error repeats at once until something is freed. */
static int accept_short_of(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

static uint64_t idle_ns;

static void *serve(void *arg)
{
	struct weft_io *c = arg;
	char buf[4096];
	for (;;) {
		/* the wait for the next bytes, and for room to echo them, ends
		 * idle_ns from now: -ETIMEDOUT, and the connection is closed */
		weft_io_set_deadline(c, WEFT_IO_READABLE | WEFT_IO_WRITABLE,
				     weft_now_ns() + idle_ns);
		ssize_t n = weft_read(c, buf, sizeof(buf)); /* suspends, never blocks a worker */
		if (n <= 0 || weft_write(c, buf, (size_t)n) != n)
			break; /* end of stream, idle, or an error */
	}
	weft_io_close(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct weft_runtime *rt;
	struct weft_io *l, *c;
	long port = 7007, idle_s = 60;
	int rc;
	if (argc > 3 || (argc > 1 && parse_num(argv[1], 0, 65535, &port)) ||
	    (argc > 2 && parse_num(argv[2], 1, 1000000000, &idle_s))) {
		fprintf(stderr, "usage: echo [PORT [IDLE_SECONDS]]  (PORT 0..65535, 0: any free port; "
				"IDLE_SECONDS 1..1000000000; default 7007 60)\n");
		return 2;
	}
	idle_ns = (uint64_t)idle_s * 1000000000ull;
	if ((rc = weft_runtime_create(NULL, &rt)) ||
	    (rc = weft_tcp_listen(rt, "127.0.0.1", (uint16_t)port, 128, &l))) {
		fprintf(stderr, "echo: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("echo: listening on 127.0.0.1:%d\n", weft_io_local_port(l));
	fflush(stdout);
	uint64_t quiet_until = 0; /* a transient accept error is reported once a second at most */
	for (;;) {
		rc = weft_accept(l, &c, NULL, NULL); /* main thread blocks here */
		if (rc == 0) {
			if (weft_spawn(rt, serve, c, NULL) < 0)
				weft_io_close(c);
			continue;
		}
		if (accept_fatal(rc))
			break;
		if (weft_now_ns() >= quiet_until) {
			fprintf(stderr, "echo: accept: %s; retrying\n", weft_strerror(rc));
			quiet_until = weft_now_ns() + 1000000000ull;
		}
		/* 50 ms out of fds or memory: the error would repeat at once;
		 * 1 ms after a lost connection, so that an error that does
		 * repeat cannot spin a core */
		weft_sleep_ns(accept_short_of(rc) ? 50000000 : 1000000);
	}
	fprintf(stderr, "echo: accept: %s\n", weft_strerror(rc));
	return 1;
}
