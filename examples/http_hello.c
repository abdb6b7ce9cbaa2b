/*
 * http_hello.c - the HTTP/1.1 "hello" server of the benchmarks.
 *
 *     http_hello PORT [WORKERS]      (WORKERS: default one per CPU)
 *
 * Binds 127.0.0.1:PORT. One fiber per connection, TCP_NODELAY, keep-alive:
 * read up to 4 KiB, count complete requests by scanning for CRLFCRLF (the
 * scan state carries over between reads, so pipelined and split requests
 * are both counted right), answer N requests with N copies of a fixed
 * response in one write, close at end of stream. Request bodies are not
 * supported (GET only), as in the benchmark.
 *
 * A failed accept is reported (once a second at most) and retried: out of
 * fds or memory after 10 ms, a lost connection (ECONNABORTED, EPERM...)
 * after 1 ms. An error that says the listener is unusable (EBADF, EINVAL...)
 * ends the server: status 1, the error named.
 *
 * Not hardened for the open Internet: there is no idle deadline (Go's
 * IdleTimeout), so a client that connects and sends nothing, or never
 * ends its request, holds a fiber and an fd until it closes; it is the
 * benchmark's server, and a deadline would add a timer to every read it
 * measures. echo.c and kv.c show the deadline (weft_io_set_deadline).
 *
 *     wrk -t2 -c64 -d5s http://127.0.0.1:PORT/
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <weft/weft.h>

#define RESPONSE "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
		 "Content-Length: 13\r\n\r\nHello, world!"
#define RESP_LEN (sizeof(RESPONSE) - 1)
#define READ_SIZE 4096
/* A 4 KiB read holds at most 4096 / 4 request ends. */
#define MAX_BATCH (READ_SIZE / 4)

static char responses[MAX_BATCH * RESP_LEN]; /* MAX_BATCH copies, read-only after main */
static struct weft_runtime *rt;

/* Count the CRLFCRLF in buf[0..n); *state is how much of "\r\n\r\n" the
 * previous bytes matched (0..3), carried from one read to the next. */
static size_t count_requests(const char *buf, size_t n, unsigned *state)
{
	size_t count = 0;
	unsigned s = *state;

	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\r')
			s = (s == 2) ? 3 : 1;
		else if (c == '\n' && (s == 1 || s == 3)) {
			if (s == 3) {
				count++;
				s = 0;
			} else {
				s = 2;
			}
		} else {
			s = 0;
		}
	}
	*state = s;
	return count;
}

static void *connection(void *arg)
{
	struct weft_io *io = arg;
	char buf[READ_SIZE];
	unsigned state = 0;
	int one = 1;

	setsockopt(weft_io_fd(io), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = weft_read(io, buf, sizeof(buf));
		if (n <= 0) /* 0: end of stream; < 0: error */
			break;
		size_t reqs = count_requests(buf, (size_t)n, &state);
		if (reqs && weft_write(io, responses, reqs * RESP_LEN) < 0)
			break;
	}
	weft_io_close(io);
	return NULL;
}

/* The listener is gone or was never one (EBADF, EINVAL after a shutdown,
 * ...): every accept would fail the same way, at once, for ever. It used to
 * be retried every 10 ms, a server that served nothing and said so once a
 * second (found by a review); echo.c exits, as Go's http.Server.Serve
 * returns on any error but a temporary one. Every other error is of one
 * connection (ECONNABORTED, EPERM from a firewall rule, EPROTO, EINTR: it
 * is lost, the next is taken) or of a resource that comes back. */
static bool accept_fatal(int rc)
{
	return rc == -EBADF || rc == -EINVAL || rc == -ENOTSOCK || rc == -EOPNOTSUPP ||
	       rc == -EFAULT || rc == -ESHUTDOWN;
}

/* Out of a resource: the error repeats at once until something is freed. */
static bool accept_short_of(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

/* Returns only when the listener is unusable: the error, as a pointer. */
static void *acceptor(void *arg)
{
	struct weft_io *listener = arg;
	uint64_t quiet_until = 0;  /* accept errors are reported once a second at most */
	unsigned long unreported = 0;

	for (;;) {
		struct weft_io *conn;
		int rc = weft_accept(listener, &conn, NULL, NULL);
		if (rc < 0 && accept_fatal(rc))
			return (void *)(intptr_t)rc;
		if (rc < 0) {
			/* e.g. -EMFILE: keep serving the others. The connection
			 * stays queued and the next accept would fail at once:
			 * wait a little before it. */
			uint64_t now = weft_now_ns();
			if (now >= quiet_until) {
				if (unreported)
					fprintf(stderr, "http_hello: accept: %s (and %lu more errors since "
						"the last message)\n", weft_strerror(rc), unreported);
				else
					fprintf(stderr, "http_hello: accept: %s\n", weft_strerror(rc));
				unreported = 0;
				quiet_until = now + 1000000000ull;
			} else {
				unreported++;
			}
			/* 10 ms out of fds or memory; 1 ms after a lost
			 * connection, so that an error that does repeat cannot
			 * spin a core */
			weft_sleep_ns(accept_short_of(rc) ? 10000000 : 1000000);
			continue;
		}
		if (weft_spawn(rt, connection, conn, NULL) < 0)
			weft_io_close(conn);
	}
}

/* A whole number in [lo, hi], nothing after it ("abc" was port 0). */
static bool parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	long port = -1, workers = 0;
	if (argc < 2 || argc > 3 || !parse_num(argv[1], 0, 65535, &port) ||
	    (argc == 3 && !parse_num(argv[2], 0, WEFT_MAX_WORKERS, &workers))) {
		fprintf(stderr, "usage: http_hello PORT [WORKERS]\n");
		return 2;
	}
	for (size_t i = 0; i < MAX_BATCH; i++)
		memcpy(responses + i * RESP_LEN, RESPONSE, RESP_LEN);
	signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error return */

	struct weft_io *listener;
	struct weft_task *t;
	WEFT_OPTS(weft_runtime_opts, opts, .workers = (int)workers);
	int rc = weft_runtime_create(&opts, &rt);
	if (!rc)
		rc = weft_tcp_listen(rt, "127.0.0.1", (uint16_t)port, 1024, &listener);
	if (rc) {
		fprintf(stderr, "http_hello: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("http_hello: listening on 127.0.0.1:%d\n", weft_io_local_port(listener));
	fflush(stdout);
	rc = weft_spawn(rt, acceptor, listener, &t);
	if (rc) {
		fprintf(stderr, "http_hello: %s\n", weft_strerror(rc));
		return 1;
	}
	void *res;
	rc = weft_join(t, &res); /* serves until killed, or the listener breaks */
	if (rc)
		fprintf(stderr, "http_hello: %s\n", weft_strerror(rc));
	else
		fprintf(stderr, "http_hello: accept: %s; the listener is unusable, exiting\n",
			weft_strerror((int)(intptr_t)res));
	return 1;
}
