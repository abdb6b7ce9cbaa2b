/*
 * proxy.c - a TCP proxy: one fiber per client, which connects to the
 * target and copies both ways with weft_io_copy_bidirectional (each side's
 * end of stream is passed on to the other as a half-close).
 * Usage: proxy LISTEN_PORT TARGET_HOST TARGET_PORT
 * (LISTEN_PORT 0: any free port; binds 127.0.0.1; a TARGET_HOST that can
 * be no host, "" or "host:80", is a usage error, exit 2). Try, with the echo
 * example on 7007: proxy 7009 127.0.0.1 7007, then nc 127.0.0.1 7009.
 * Each connection's end is logged on stderr with its byte counts. SIGINT or
 * SIGTERM: stop accepting, let open connections finish for up to 2 s, then
 * cancel the rest (their copies return -ECANCELED and they close), exit 0.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft/weft.h>

#define CONNECT_TIMEOUT_NS 3000000000ull
#define DRAIN_NS 2000000000ull

static const char *target_host;
static uint16_t target_port;
static atomic_ulong next_id;
static struct weft_waitgroup *live; /* connections open */

/* A whole number in [lo, hi], nothing after it. */
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

static void *relay(void *arg)
{
	struct weft_io *client = arg, *server;
	unsigned long id = atomic_fetch_add(&next_id, 1) + 1;
	int rc = weft_tcp_connect_timeout(weft_runtime_current(), target_host, target_port,
					  &server, CONNECT_TIMEOUT_NS);
	if (rc) {
		fprintf(stderr, "proxy: conn %lu: connect %s:%u: %s\n", id, target_host,
			target_port, weft_strerror(rc));
		weft_io_close(client);
		weft_waitgroup_done(live);
		return NULL;
	}
	uint64_t up = 0, down = 0;
	rc = weft_io_copy_bidirectional(client, server, &up, &down);
	fprintf(stderr, "proxy: conn %lu: %llu bytes up, %llu down: %s\n", id,
		(unsigned long long)up, (unsigned long long)down, rc ? weft_strerror(rc) : "done");
	weft_io_close(server);
	weft_io_close(client);
	weft_waitgroup_done(live);
	return NULL;
}

int main(int argc, char **argv)
{
	long lport, tport;
	if (argc != 4 || parse_num(argv[1], 0, 65535, &lport) ||
	    parse_num(argv[3], 1, 65535, &tport)) {
		fprintf(stderr, "usage: proxy LISTEN_PORT TARGET_HOST TARGET_PORT\n"
				"  (LISTEN_PORT 0..65535, 0: any free port; TARGET_PORT 1..65535)\n");
		return 2;
	}
	target_host = argv[2];
	target_port = (uint16_t)tport;

	struct weft_runtime *rt;
	struct weft_io *l, *c;
	struct weft_chan *sig;
	struct addrinfo *ai;
	int rc;
	if ((rc = weft_runtime_create(NULL, &rt))) {
		fprintf(stderr, "proxy: %s\n", weft_strerror(rc));
		return 1;
	}
	/* A host that can be no name ("", "host:80", "[::1]:80") is a usage
	 * error now: it was taken, and every client was then dropped with
	 * "invalid argument". A name that does not resolve yet may later
	 * (each connection looks it up): that is only said. */
	rc = weft_resolve(rt, target_host, target_port, &ai);
	if (rc == -EINVAL) {
		fprintf(stderr, "usage: proxy LISTEN_PORT TARGET_HOST TARGET_PORT\n"
				"  (TARGET_HOST a name or an address, \"[::1]\" too; not \"%s\")\n",
			target_host);
		return 2;
	}
	if (rc)
		fprintf(stderr, "proxy: %s: %s (looked up again for each connection)\n",
			target_host, weft_strerror(rc));
	else
		freeaddrinfo(ai);
	if ((rc = weft_waitgroup_create(&live)) ||
	    (rc = weft_chan_create(sizeof(int), 4, &sig)) ||
	    (rc = weft_signal_notify(sig, SIGINT)) || (rc = weft_signal_notify(sig, SIGTERM)) ||
	    (rc = weft_tcp_listen(rt, "127.0.0.1", (uint16_t)lport, 128, &l))) {
		fprintf(stderr, "proxy: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("proxy: listening on 127.0.0.1:%d, to %s:%u\n", weft_io_local_port(l), target_host,
	       target_port);
	fflush(stdout);

	int signo = 0;
	uint64_t quiet_until = 0; /* accept errors: one line a second at most */
	for (;;) {
		/* the main thread waits for a signal or a client; the signal
		 * first, so that a backlog of clients cannot hold it back */
		struct weft_select_arm arms[2] = { WEFT_SEL_RECV(sig, &signo),
						   WEFT_SEL_READY(l, WEFT_IO_READABLE) };
		rc = weft_select(arms, 2, WEFT_FOREVER);
		if (rc == 0)
			break;
		if (rc < 0) {
			fprintf(stderr, "proxy: select: %s\n", weft_strerror(rc));
			return 1;
		}
		/* ready: this accept takes the client without waiting (or, if
		 * another took it, waits for the next) */
		weft_io_set_deadline(l, WEFT_IO_READABLE, weft_now_ns());
		rc = weft_accept(l, &c, NULL, NULL);
		weft_io_set_deadline(l, WEFT_IO_READABLE, WEFT_FOREVER);
		if (rc == 0) {
			weft_waitgroup_add(live, 1);
			if (weft_spawn(rt, relay, c, NULL) < 0) {
				weft_io_close(c);
				weft_waitgroup_done(live);
			}
		} else if (rc != -ETIMEDOUT && rc != -ECONNABORTED) {
			/* out of fds or memory: the client stays queued and the
			 * error would repeat at once, so wait; say so once a
			 * second at most (a line every 50 ms filled the log) */
			if (weft_now_ns() >= quiet_until) {
				fprintf(stderr, "proxy: accept: %s; retrying\n", weft_strerror(rc));
				quiet_until = weft_now_ns() + 1000000000ull;
			}
			weft_sleep_ns(50000000);
		}
	}
	fprintf(stderr, "proxy: signal %d: stopping (open connections get 2 s)\n", signo);
	weft_io_close(l);
	if (weft_waitgroup_wait_timeout(live, DRAIN_NS) == -ETIMEDOUT)
		fprintf(stderr, "proxy: connections still open: cancelling them\n");
	rc = weft_runtime_shutdown(rt, DRAIN_NS);
	weft_signal_stop(sig);
	if (rc == 0)
		rc = weft_runtime_destroy(rt);
	weft_chan_destroy(sig);
	weft_waitgroup_destroy(live);
	if (rc) {
		fprintf(stderr, "proxy: shutdown: %s\n", weft_strerror(rc));
		return 1;
	}
	return 0;
}
