/*
 * metrics.c - see metrics.h. A deliberately small HTTP/1.0-style server:
 * up to 16 connections served at once, each request head read within 2 s,
 * the scrape written (within 10 s, as the socket takes it), the connection
 * closed once the client closed its side (within 2 s). That is all a
 * Prometheus scraper needs, and a slow or idle client holds no other one
 * up: with all 16 taken, the one stalled longest (0.5 s at least) makes
 * room for the next.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "mon.h"
#include "prom.h"
#include "stall.h"

int metrics_listen(const char *addr, char *shown, size_t shown_n, char *err, size_t n)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1]) {
		snprintf(err, n, "--listen %s: expected ADDR:PORT (e.g. 127.0.0.1:9464)", addr);
		return -EINVAL;
	}
	/* getaddrinfo takes any number as a port and keeps its low 16 bits:
	 * :99999 listened on 34463 and said 99999 (found by a review) */
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || colon[1] < '0' || colon[1] > '9' || errno || port > 65535) {
		snprintf(err, n, "--listen %s: the port must be a number from 0 to 65535 (0: any "
				 "free port, said once bound)", addr);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof(host)) {
		snprintf(err, n, "--listen %s: address too long", addr);
		return -EINVAL;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:9464 */
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	int fd = -1, e = 0;
	if (!host[0]) {
		/* ":PORT": every address of both families, as Prometheus's own
		 * ":9090" (one IPv6 socket with IPV6_V6ONLY off); the first of
		 * getaddrinfo's passive list, 0.0.0.0, left IPv6 scrapers out.
		 * IPv4 alone only on a host without IPv6. */
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any,
					    .sin6_port = htons((uint16_t)port) };
		int one = 1, off = 0;
		if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
				bind(fd, (struct sockaddr *)&any, sizeof(any)) || listen(fd, 16))) {
			e = errno;
			close(fd);
			fd = -1;
			if (e != EADDRNOTAVAIL) {
				snprintf(err, n, "--listen %s: %s", addr, strerror(e));
				return -e;
			}
		} else if (fd < 0 && errno != EAFNOSUPPORT) {
			e = errno;
			snprintf(err, n, "--listen %s: %s", addr, strerror(e));
			return -e;
		}
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res = NULL;
	int r = fd >= 0 ? 0 : getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (r) {
		snprintf(err, n, "--listen %s: %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	for (struct addrinfo *ai = res; fd < 0 && ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	if (res)
		freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, n, "--listen %s: %s", addr, strerror(e));
		return -e;
	}
	/* the port bound, which port 0 leaves to the kernel: "serving
	 * http://127.0.0.1:0/metrics" told no one where to scrape */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned bound = (unsigned)port;
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
		bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(shown, shown_n, "%.*s:%u", (int)hl, addr, bound);
	return fd;
}

/* Reading on past the buffer: a head larger than this is refused (431). */
#define HEAD_MAX (64 * 1024)
/* Connections read at once; more wait in the listen backlog (see
 * slot_for_next). */
#define MAX_CLIENTS 16
/* What a client has to send its request head in, from its accept; and
 * to close its side once its answer is out (the linger: see
 * client_flush). */
#define CLIENT_MS 2000
/* What a client has to take its answer in, from when it is ready
 * (Prometheus's default scrape timeout: a scraper gives up by then). */
#define SEND_MS 10000
/* With every slot taken, a client that has made no progress for this
 * long gives its slot up to the next connection (slot_for_next). */
#define EVICT_MS 500
/* How long the listener is left alone after accept found no fd (or no
 * memory) for the next connection; see metrics_serve. */
#define ACCEPT_PAUSE_MS 100

/* A connection: its request head being read, then its answer sent, then
 * the linger. Only the first sizeof(buf) - 1 bytes of the head are kept
 * (the request line is all we parse); the rest of a larger head is read
 * and dropped: left unread, the close that follows the answer became a
 * reset, and the client got no answer at all (a 10 KB header or query,
 * found by a review). So is anything sent after the head (a pipelined
 * request, a body), while the answer goes out and in the linger. The end
 * of the head is found with a window of the last four bytes, so a blank
 * line split across two reads, or after a NUL byte, counts too. */
struct client {
	int fd;                  /* -1: a free slot */
	bool draining;           /* answered: reading until the client closes */
	bool peer_done;          /* the client closed its side (read 0) */
	char *out;               /* the answer being sent, or NULL */
	size_t out_len, out_off; /* its size; bytes of it sent */
	long long deadline_ms;   /* CLOCK_MONOTONIC */
	long long seen_ms;       /* its last progress: accept, head bytes read, answer bytes sent */
	size_t len, total;       /* bytes in buf; bytes of the head read */
	uint32_t last4;
	char buf[4096];
};

static long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The request line of a whole head: the path in `path`. 0 for GET, 1 for
 * HEAD, -2 another method, -3 a request line that is not METHOD PATH. */
static int parse_request(const char *buf, char *path, size_t n)
{
	char method[16];
	if (sscanf(buf, "%15s %255s", method, path) != 2 || n < 256)
		return -3;
	return !strcmp(method, "GET") ? 0 : !strcmp(method, "HEAD") ? 1 : -2;
}

/* Send what the socket takes of cl's answer, never waiting: the rest is
 * sent as poll says the socket is writable. A blocking write loop here
 * held the whole server - every other scrape, the target's exit - for as
 * long as one client did not read an answer larger than the socket
 * buffers take (a scraper with a small receive window, 8 workers'
 * 120 KB; found by a review). true: done with cl - the client went
 * away, or it closed its side and all is sent; otherwise all sent starts
 * the linger. */
static bool client_flush(struct client *cl, long long now)
{
	while (cl->out_off < cl->out_len) {
		ssize_t k = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (k <= 0)
			return true; /* the scraper went away: nothing to do */
		cl->out_off += (size_t)k;
		cl->seen_ms = now;
	}
	free(cl->out);
	cl->out = NULL;
	if (cl->peer_done)
		return true; /* it sends nothing more: the close is clean */
	/* Say we are done (FIN) and read on, dropping what the client
	 * still sends, until it closes (it reads to our FIN, then closes)
	 * or its CLIENT_MS are up. A close with received bytes unread is a
	 * reset, and a reset throws away what the kernel has not sent yet:
	 * a client that sent a second request (or a 100 KB head, answered
	 * 431) and read slowly got ECONNRESET after 8 KB of its 110 KB
	 * answer (found by a review). Past the linger the close is clean
	 * too, unless bytes came in since the last read. */
	shutdown(cl->fd, SHUT_WR);
	cl->draining = true;
	cl->deadline_ms = now + CLIENT_MS;
	return false;
}

/* Queue cl's answer and send what the socket takes at once (all of it,
 * mostly). A HEAD answer has the headers of the GET, no body (RFC 9110
 * 9.3.2: the scrape followed them, found by a review); `extra` is one
 * more header line, or "". true: done with cl (see client_flush; also
 * out of memory for the answer: closed unanswered). */
static bool respond(struct client *cl, bool head_only, const char *status, const char *extra,
		    const char *ctype, const char *body, size_t blen)
{
	char head[320];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, extra, ctype, blen);
	if (head_only)
		blen = 0;
	cl->out = malloc((size_t)hl + blen);
	if (!cl->out)
		return true;
	memcpy(cl->out, head, (size_t)hl);
	if (blen)
		memcpy(cl->out + hl, body, blen);
	cl->out_len = (size_t)hl + blen;
	cl->out_off = 0;
	long long now = mono_ms();
	cl->deadline_ms = now + SEND_MS;
	return client_flush(cl, now);
}

/* The target's registry read first, as the live view does at each
 * interval: every core it lists gets a slot (and its thread and, while the
 * BPF side has none, its state from its counters), so a worker that fired
 * no probe since the attach - asleep in its park on an idle runtime - has
 * its series. Scrapes read only the BPF side before, and such workers had
 * none, where the live view named them (found by a review). */
static int scrape(struct mon *m, struct stall *st, int pid, char **body, size_t *len)
{
	struct snap *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	FILE *f = open_memstream(body, len);
	if (!f) {
		free(s);
		return -ENOMEM;
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	stall_sample(st, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	stall_sync_slots(st, m);
	mon_snapshot(m, s);
	stall_fill_snap(st, s);
	prom_write(f, s, pid, m->lib);
	free(s);
	return fclose(f) ? -ENOMEM : 0;
}

static bool bad_request(struct client *cl)
{
	static const char msg[] = "schedtop: not an HTTP request (GET /metrics)\n";
	return respond(cl, false, "400 Bad Request", "", "text/plain", msg, sizeof(msg) - 1);
}

/*
 * Whether what cl sent so far cannot begin a request: a request starts
 * with its method, a token (RFC 9110 5.6.2), after empty lines at most
 * (RFC 9112 2.2). A TLS ClientHello (a scraper set to https) has no
 * blank line: it waited its 2 s and was closed without a word, and the
 * scraper said only "EOF" (found by a review); answered 400 at once, Go's
 * client (Prometheus) says "server gave HTTP response to HTTPS client".
 */
static bool not_http(const struct client *cl)
{
	size_t i = 0;
	while (i < cl->len && (cl->buf[i] == '\r' || cl->buf[i] == '\n'))
		i++;
	if (i == cl->len)
		return false; /* nothing to tell by yet */
	unsigned char c = (unsigned char)cl->buf[i];
	bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     (c && strchr("!#$%&'*+-.^_`|~", c));
	return !tchar;
}

/* Answer the whole request head in cl->buf; true: done with cl. */
static bool serve_head(struct mon *m, struct stall *st, struct client *cl, int pid)
{
	char path[256];
	int r = parse_request(cl->buf, path, sizeof(path));
	bool head = r == 1;
	if (r == -3) /* it was closed without a word (a review) */
		return bad_request(cl);
	if (r == -2) { /* 405 names the methods that work (RFC 9110 15.5.6) */
		static const char msg[] = "only GET /metrics\n";
		return respond(cl, false, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
			       "text/plain", msg, sizeof(msg) - 1);
	}
	/* The absolute form, "GET http://host:port/metrics" (what a client
	 * sends through a proxy), which a server must accept (RFC 9112
	 * 3.2.2): it got 404 (a review). Its path is what follows the
	 * authority; none is "/". */
	const char *at = path;
	if (!strncasecmp(at, "http://", 7) || !strncasecmp(at, "https://", 8)) {
		at = strchr(strstr(at, "//") + 2, '/');
		if (!at)
			at = "/";
	}
	if (strcmp(at, "/metrics") && strncmp(at, "/metrics?", 9)) {
		static const char msg[] = "schedtop: the metrics are at /metrics\n";
		return respond(cl, head, "404 Not Found", "", "text/plain", msg, sizeof(msg) - 1);
	}
	char *body = NULL;
	size_t len = 0;
	if (scrape(m, st, pid, &body, &len)) {
		static const char msg[] = "schedtop: out of memory\n";
		free(body);
		return respond(cl, head, "500 Internal Server Error", "", "text/plain", msg,
			       sizeof(msg) - 1);
	}
	bool done = respond(cl, head, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", body,
			    len);
	free(body);
	return done;
}

/* Read what cl sent (poll said it is readable): its request head, or
 * after it (its answer going out, or the linger) bytes to drop. true:
 * done with it - answered in full, or it closed or failed with nothing
 * left to send it. */
static bool client_read(struct mon *m, struct stall *st, struct client *cl, int pid,
			long long now)
{
	char drop[4096];
	bool in_head = !cl->out && !cl->draining;
	bool kept = in_head && cl->len < sizeof(cl->buf) - 1;
	char *to = kept ? cl->buf + cl->len : drop;
	ssize_t k = read(cl->fd, to, kept ? sizeof(cl->buf) - 1 - cl->len : sizeof(drop));
	if (k < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (k == 0 && cl->out) {
		/* it closed its side only (shutdown after its request):
		 * the answer still goes out, no more reading */
		cl->peer_done = true;
		return false;
	}
	if (k <= 0 || !in_head)
		return k <= 0; /* bytes dropped are no progress: seen_ms stays */
	cl->seen_ms = now;
	bool end = false;
	for (ssize_t i = 0; i < k && !end; i++) {
		cl->last4 = cl->last4 << 8 | (unsigned char)to[i];
		end = cl->last4 == 0x0d0a0d0a || (cl->last4 & 0xffff) == 0x0a0a; /* CRLF CRLF, LF LF */
	}
	if (kept) {
		cl->len += (size_t)k;
		cl->buf[cl->len] = '\0';
	}
	cl->total += (size_t)k;
	if (not_http(cl))
		return bad_request(cl); /* the rest is read in the linger */
	if (end)
		return serve_head(m, st, cl, pid);
	if (cl->total >= HEAD_MAX) {
		/* what the client still sends is read while the answer goes
		 * out and in the linger (client_flush) */
		static const char msg[] = "schedtop: request head too large (GET /metrics)\n";
		return respond(cl, false, "431 Request Header Fields Too Large", "", "text/plain", msg,
			       sizeof(msg) - 1);
	}
	return false;
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	free(cl->out);
	cl->out = NULL;
}

/*
 * The slot for the next connection: a free one; with none, the one whose
 * client has made no progress for the longest, if for EVICT_MS (it is
 * closed to make room), else NULL and *wait lowered to when it will be.
 * 16 clients that sent a request and did not read their answers held
 * every slot for SEND_MS (10 s), and a healthy scraper waited in the
 * backlog past its own timeout (found by a review). A client that moves
 * at all keeps its slot: the one dropped is stalled, or lingering done,
 * and 17 healthy scrapers at once never drop each other; one that only
 * sends, never reads, makes no progress (bytes dropped do not count).
 */
static struct client *slot_for_next(struct client *cl, long long now, int *wait)
{
	struct client *old = NULL;
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (cl[i].fd < 0)
			return &cl[i];
		if (!old || cl[i].seen_ms < old->seen_ms)
			old = &cl[i];
	}
	long long left = old->seen_ms + EVICT_MS - now;
	if (left <= 0)
		return old;
	if (left < *wait)
		*wait = (int)left;
	return NULL;
}

/*
 * Up to MAX_CLIENTS connections are served at once, each given CLIENT_MS
 * for its request head; a complete head is answered at once (the scrape
 * taken, then sent as the socket takes it, within SEND_MS, then the
 * connection closed after the client's close or CLIENT_MS). One at a
 * time, a client
 * that sent nothing held every other one up for its 2 s: three idle
 * connections (a port scan, a health check that connects and waits) made
 * a scrape wait 6 s, past a Prometheus scrape timeout with a few more
 * (found by a review).
 */
int metrics_serve(struct mon *m, struct stall *st, int fd, int pid, int pidfd,
		  volatile sig_atomic_t *exiting)
{
	static struct client cl[MAX_CLIENTS];
	long long paused_until = 0; /* accept failed for want of an fd */
	bool said = false;
	int rc = 0;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		cl[i].fd = -1;
	while (!*exiting) {
		struct pollfd p[2 + MAX_CLIENTS];
		long long now = mono_ms();
		int wait = pidfd >= 0 ? 1000 : 200;
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			/* an answer being sent: what comes in is read too */
			short ev = !cl[i].out ? POLLIN : cl[i].peer_done ? POLLOUT : POLLIN | POLLOUT;
			p[2 + i] = (struct pollfd){ .fd = cl[i].fd, .events = ev };
			if (cl[i].fd < 0)
				continue;
			long long left = cl[i].deadline_ms - now;
			if (left < wait)
				wait = left < 0 ? 0 : (int)left;
		}
		/* no slot: the next connection waits in the backlog for one */
		bool room = false;
		if (now < paused_until)
			wait = paused_until - now < wait ? (int)(paused_until - now) : wait;
		else
			room = slot_for_next(cl, now, &wait);
		p[0] = (struct pollfd){ .fd = fd, .events = room ? POLLIN : 0 };
		p[1] = (struct pollfd){ .fd = pidfd, .events = POLLIN }; /* -1: ignored */
		int r = poll(p, 2 + MAX_CLIENTS, wait);
		if (r < 0 && errno != EINTR) {
			perror("schedtop: poll");
			rc = 1;
			break;
		}
		if (pidfd >= 0 ? (r > 0 && (p[1].revents & POLLIN)) : mon_target_gone(pid)) {
			fprintf(stderr, "schedtop: process %d exited; metrics server stops\n", pid);
			break;
		}
		now = mono_ms();
		for (unsigned i = 0; r > 0 && i < MAX_CLIENTS; i++) {
			short ev = p[2 + i].revents;
			if (cl[i].fd < 0 || !ev)
				continue;
			bool done = false;
			if ((ev & (POLLIN | POLLHUP | POLLERR)) && !(cl[i].out && cl[i].peer_done))
				done = client_read(m, st, &cl[i], pid, now);
			if (!done && cl[i].out && (ev & (POLLOUT | POLLHUP | POLLERR)))
				done = client_flush(&cl[i], now);
			if (done)
				client_close(&cl[i]);
		}
		/* out of time: nothing to answer, the answer not taken (a
		 * client that does not read), or the linger over */
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			if (cl[i].fd >= 0 && now >= cl[i].deadline_ms)
				client_close(&cl[i]);
		}
		int ignored = wait;
		struct client *to = r > 0 && (p[0].revents & POLLIN) ? slot_for_next(cl, now, &ignored)
								      : NULL;
		if (to) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			int e = c < 0 ? errno : 0;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				/* The connection stays in the backlog and the
				 * listener readable: polled again at once, the
				 * loop spun at 100% CPU for as long as the
				 * process (or the system) was out of fds (found
				 * by a review). Left alone ACCEPT_PAUSE_MS, then
				 * tried again: a client closed meanwhile frees
				 * an fd, and the waiting scrape is served. */
				if (!said)
					fprintf(stderr, "schedtop: metrics: cannot accept a connection: "
							"%s; trying again every %d ms (said once)\n",
						strerror(e), ACCEPT_PAUSE_MS);
				said = true;
				paused_until = now + ACCEPT_PAUSE_MS;
				continue;
			}
			if (c < 0)
				continue; /* the client gave up: the next one */
			if (to->fd >= 0)
				client_close(to); /* stalled: makes room */
			to->fd = c;
			to->draining = to->peer_done = false;
			to->out = NULL;
			to->deadline_ms = now + CLIENT_MS;
			to->seen_ms = now;
			to->len = to->total = 0;
			to->last4 = 0;
			to->buf[0] = '\0';
		}
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (cl[i].fd >= 0)
			client_close(&cl[i]);
	return rc;
}

int metrics_once(struct mon *m, struct stall *st, int pid, int pidfd, double interval,
		 volatile sig_atomic_t *exiting)
{
	/* the interval may be up to 1e9 s: (int)(interval * 1000) overflowed
	 * (undefined; on x86 INT_MIN, and --once 3e6 printed at once) */
	long long ms = (long long)(interval * 1000);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!*exiting) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long long el = (long long)(t1.tv_sec - t0.tv_sec) * 1000 +
			       (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= ms)
			break;
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int left = ms - el > INT_MAX ? INT_MAX : (int)(ms - el);
		if (pidfd >= 0 ? poll(&p, 1, left) > 0 : mon_target_gone(pid))
			break; /* the target exited: its last figures */
		if (pidfd < 0) {
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	char *body = NULL;
	size_t len = 0;
	if (scrape(m, st, pid, &body, &len)) {
		fprintf(stderr, "schedtop: metrics: out of memory for the scrape\n");
		return 1;
	}
	/* `--once > /dev/full` exited 0 with nothing written and nothing
	 * said (fflush had nothing left to fail on: the large fwrite had
	 * failed already): found by a review */
	errno = 0;
	size_t k = fwrite(body, 1, len, stdout);
	int e = k < len ? errno : 0;
	free(body);
	if (fflush(stdout) && !e)
		e = errno;
	if (!e && ferror(stdout))
		e = EIO;
	if (e) {
		if (e != EPIPE)
			fprintf(stderr, "schedtop: metrics: writing the scrape to stdout: %s\n",
				strerror(e));
		return 1;
	}
	return 0;
}
