/*
 * metrics.c - see metrics.h. A deliberately small HTTP/1.0-style server:
 * one connection at a time, the request read with a timeout, the scrape
 * written, the connection closed. That is all a Prometheus scraper needs,
 * and it cannot be held up for long by a slow client (2 s per request).
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "mon.h"
#include "prom.h"

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

/* Read the request head (up to the blank line) within 2 s; the path in
 * `path`. 0 for GET, 1 for HEAD, -2 another method, -3 a request line
 * that is not METHOD PATH, -4 a head past HEAD_MAX bytes, -1 on a timeout
 * or an error (nothing to answer). Only the first sizeof(buf) - 1 bytes
 * are kept (the request line is all we parse); the rest of a larger head
 * is read and dropped: left unread, the close that follows the answer
 * became a reset, and the client got no answer at all (a 10 KB header or
 * query, found by a review). The end of the head is found with a window
 * of the last four bytes, so a blank line split across two reads, or
 * after a NUL byte, counts too. */
static int read_request(int c, char *path, size_t n)
{
	char buf[4096], drop[4096];
	size_t len = 0, total = 0;
	uint32_t last4 = 0;
	bool end = false;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!end) {
		if (total >= HEAD_MAX)
			return -4;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		struct pollfd p = { .fd = c, .events = POLLIN };
		if (el >= 2000 || poll(&p, 1, (int)(2000 - el)) <= 0)
			return -1;
		char *to = len < sizeof(buf) - 1 ? buf + len : drop;
		size_t room = len < sizeof(buf) - 1 ? sizeof(buf) - 1 - len : sizeof(drop);
		ssize_t k = read(c, to, room);
		if (k <= 0)
			return -1;
		for (ssize_t i = 0; i < k && !end; i++) {
			last4 = last4 << 8 | (unsigned char)to[i];
			end = last4 == 0x0d0a0d0a || (last4 & 0xffff) == 0x0a0a; /* CRLF CRLF, LF LF */
		}
		if (to == buf) {
			len += (size_t)k;
			buf[len] = '\0';
		}
		total += (size_t)k;
	}
	char method[16];
	if (sscanf(buf, "%15s %255s", method, path) != 2 || n < 256)
		return -3;
	return !strcmp(method, "GET") ? 0 : !strcmp(method, "HEAD") ? 1 : -2;
}

/* After an answer to a head we stopped reading (431): say we are done
 * (FIN), then read and drop what the client still sends until it closes
 * or 2 s pass, so that our close is no reset that takes the answer away
 * before the client reads it. */
static void linger_close(int c)
{
	char drop[4096];
	struct timespec t0, t1;
	shutdown(c, SHUT_WR);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		struct pollfd p = { .fd = c, .events = POLLIN };
		if (el >= 2000 || poll(&p, 1, (int)(2000 - el)) <= 0 ||
		    read(c, drop, sizeof(drop)) <= 0)
			return;
	}
}

static void write_all(int c, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(c, p, n);
		if (k <= 0)
			return; /* the scraper went away: nothing to do */
		p += k;
		n -= (size_t)k;
	}
}

/* A HEAD answer has the headers of the GET, no body (RFC 9110 9.3.2: the
 * scrape followed them, found by a review); `extra` is one more header
 * line, or "". */
static void respond(int c, bool head_only, const char *status, const char *extra,
		    const char *ctype, const char *body, size_t blen)
{
	char head[320];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, extra, ctype, blen);
	write_all(c, head, (size_t)hl);
	if (!head_only)
		write_all(c, body, blen);
}

static int scrape(struct mon *m, int pid, char **body, size_t *len)
{
	struct snap *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	FILE *f = open_memstream(body, len);
	if (!f) {
		free(s);
		return -ENOMEM;
	}
	mon_snapshot(m, s);
	prom_write(f, s, pid, m->lib);
	free(s);
	return fclose(f) ? -ENOMEM : 0;
}

static void serve_one(struct mon *m, int c, int pid)
{
	char path[256];
	int r = read_request(c, path, sizeof(path));
	bool head = r == 1;
	if (r == -1)
		return;
	if (r == -4) {
		static const char msg[] = "schedtop: request head too large (GET /metrics)\n";
		respond(c, false, "431 Request Header Fields Too Large", "", "text/plain", msg,
			sizeof(msg) - 1);
		linger_close(c);
		return;
	}
	if (r == -3) { /* it was closed without a word (a review) */
		static const char msg[] = "schedtop: not an HTTP request (GET /metrics)\n";
		respond(c, false, "400 Bad Request", "", "text/plain", msg, sizeof(msg) - 1);
		return;
	}
	if (r == -2) { /* 405 names the methods that work (RFC 9110 15.5.6) */
		static const char msg[] = "only GET /metrics\n";
		respond(c, false, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "text/plain", msg,
			sizeof(msg) - 1);
		return;
	}
	if (strcmp(path, "/metrics") && strncmp(path, "/metrics?", 9)) {
		static const char msg[] = "schedtop: the metrics are at /metrics\n";
		respond(c, head, "404 Not Found", "", "text/plain", msg, sizeof(msg) - 1);
		return;
	}
	char *body = NULL;
	size_t len = 0;
	if (scrape(m, pid, &body, &len)) {
		static const char msg[] = "schedtop: out of memory\n";
		respond(c, head, "500 Internal Server Error", "", "text/plain", msg, sizeof(msg) - 1);
	} else {
		respond(c, head, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", body, len);
	}
	free(body);
}

int metrics_serve(struct mon *m, int fd, int pid, int pidfd, volatile sig_atomic_t *exiting)
{
	while (!*exiting) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
		int r = poll(p, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? 1000 : 200);
		if (r < 0 && errno != EINTR) {
			perror("schedtop: poll");
			return 1;
		}
		if (pidfd >= 0 ? (r > 0 && (p[1].revents & POLLIN)) : mon_target_gone(pid)) {
			fprintf(stderr, "schedtop: process %d exited; metrics server stops\n", pid);
			return 0;
		}
		if (r > 0 && (p[0].revents & POLLIN)) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue; /* the client gave up, or EMFILE: try again */
			serve_one(m, c, pid);
			close(c);
		}
	}
	return 0;
}

int metrics_once(struct mon *m, int pid, int pidfd, double interval,
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
	if (scrape(m, pid, &body, &len)) {
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
