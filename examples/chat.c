/*
 * chat.c - a TCP chat server: one fiber per connection, a hub fiber that
 * relays lines to everyone, weft_select to wait for a client's next line
 * (a buffered reader's LINE arm), a channel and a cancellation token at
 * once, deadlines to drop idle clients and slow
 * readers, and a join set that holds the connection fibers so shutdown can
 * wait for every one of them. Up to MAX_CLIENTS at once: a client over
 * that is told the server is full, and its connection is closed.
 *
 * A client is dropped when it types nothing for IDLE_SECONDS (part of a
 * line counts: it is noticed when the idle time runs out), and when a
 * line to it cannot be written within 2 s (it does not read: once the
 * socket's buffers are full, the write waits). Lines for a client whose
 * outbox is full (64 lines) are skipped, so one slow client never holds
 * up the others. Every close is a lingering one (close_gracefully), so
 * that the last line to a client - "idle too long", "server full", the
 * shutdown notice - is not lost to a reset when the client still sends.
 *
 * Usage: chat [PORT [IDLE_SECONDS]]  (default 7008, 300 s; listens on all
 * interfaces). Try: nc 127.0.0.1 7008 in two terminals, type lines.
 * SIGINT or SIGTERM: every client is told, the server waits for all
 * connection fibers, prints how many it served and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <weft/weft.h>

#define LINE_MAX_ 200
#define MAX_CLIENTS 256
#define S (1000000000ull)
#define LINGER_NS (2 * S)       /* close_gracefully: at most this for the client's end */

enum kind { JOIN, LEAVE, SAY, FULL };  /* FULL: hub -> a client it did not take */
struct msg {
	enum kind kind;
	int id;
	struct weft_chan *outbox;       /* JOIN: where the hub sends this client's lines */
	char text[LINE_MAX_ + 32];
};

static struct weft_chan *hub_in;        /* clients -> hub */
static struct weft_token *stop;         /* cancelled on SIGINT/SIGTERM */
static uint64_t idle_ns;

/* The hub owns the list of clients: nothing else touches it. */
static void *hub(void *arg)
{
	struct { int id; struct weft_chan *out; } cl[MAX_CLIENTS];
	int n = 0;
	struct msg m;
	(void)arg;
	while (weft_chan_recv(hub_in, &m) == 0) { /* -EPIPE once closed and drained */
		if (m.kind == JOIN && n == MAX_CLIENTS) {
			/* only to it; the outbox stays the client's */
			m.kind = FULL;
			weft_chan_try_send(m.outbox, &m); /* a new outbox has room */
			continue;
		}
		if (m.kind == JOIN) {
			cl[n].id = m.id;
			cl[n++].out = m.outbox;
			snprintf(m.text, sizeof m.text, "* user%d joined\n", m.id);
		} else if (m.kind == LEAVE) {
			for (int i = 0; i < n; i++)
				if (cl[i].id == m.id) {
					weft_chan_destroy(cl[i].out); /* the client is done with it */
					cl[i] = cl[--n];
					break;
				}
			snprintf(m.text, sizeof m.text, "* user%d left\n", m.id);
		}
		for (int i = 0; i < n; i++)
			if (cl[i].id != m.id || m.kind == JOIN)
				weft_chan_try_send(cl[i].out, &m); /* a full outbox drops the line */
	}
	for (int i = 0; i < n; i++)
		weft_chan_destroy(cl[i].out);
	return NULL;
}

/* Write all of s within 2 s: 0, or -1 when the client must go (the write
 * failed, timed out or was cut short: a partial line breaks the framing). */
static int say(struct weft_io *c, const char *s)
{
	size_t n = strlen(s);
	weft_io_set_deadline(c, WEFT_IO_WRITABLE, weft_now_ns() + 2 * S);
	return weft_write(c, s, n) == (ssize_t)n ? 0 : -1;
}

/* Close c so that the client gets every line written to it. A close with
 * input still unread makes the kernel reset the connection (an RST instead
 * of a FIN, and what was not sent yet is dropped), so a client that typed
 * a line as it was dropped (idle, shutdown), or one told the server is
 * full, which is never read, could lose that last line, or see a reset
 * instead of the end. Shut the write side down (the client reads our last
 * byte, then end of stream), read and drop what the client still sends
 * until its end of stream or LINGER_NS (a client that keeps sending
 * cannot hold the fiber: a read that need not wait ignores the deadline,
 * hence the clock), then close. (A lingering close, as nginx's and Go's
 * net/http's.) */
static void close_gracefully(struct weft_io *c)
{
	uint64_t until = weft_now_ns() + LINGER_NS;
	char sink[1024];
	if (weft_io_shutdown(c, SHUT_WR) == 0) {
		weft_io_set_deadline(c, WEFT_IO_READABLE, until);
		while (weft_read(c, sink, sizeof sink) > 0 && weft_now_ns() < until)
			;
	}
	weft_io_close(c);
}

/* One connection: wait for input, for lines to relay, or for shutdown. */
static void *client(void *arg)
{
	static int next_id;
	struct weft_io *c = arg;
	int id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	struct weft_chan *out;
	if (weft_chan_create(sizeof(struct msg), 64, &out)) {
		weft_io_close(c);
		return NULL;
	}
	struct msg m = { .kind = JOIN, .id = id, .outbox = out };
	weft_chan_send(hub_in, &m);
	/* The hub's answer comes first: our own join notice, or FULL. */
	if (weft_chan_recv(out, &m) == 0 && m.kind == FULL) {
		say(c, "server full, try again later\n"); /* closing anyway */
		close_gracefully(c);
		weft_chan_destroy(out); /* the hub never had it */
		return NULL;
	}
	char greet[64];
	struct weft_reader *rd = NULL;
	snprintf(greet, sizeof greet, "welcome, you are user%d\n", id);
	int alive = !weft_reader_create(c, LINE_MAX_, &rd) && !say(c, greet) && !say(c, m.text);
	const char *bye = NULL;
	uint64_t last_input = weft_now_ns();
	size_t partial = 0; /* bytes of an unfinished line seen at the last look */
	bool in_pieces = false; /* the last relay was a piece of a line too long */
	while (alive && !bye) {
		struct msg in;
		struct weft_line ln;
		struct weft_select_arm arms[] = {
			WEFT_SEL_CANCELLED(stop),              /* first: shutdown wins */
			WEFT_SEL_RECV(out, &in),
			WEFT_SEL_LINE(rd, '\n', &ln),          /* a line already read wins at once */
		};
		int r = weft_select(arms, 3, last_input + idle_ns); /* idle: nothing typed */
		if (r == -ETIMEDOUT && weft_reader_buffered(rd) != partial) {
			/* typing, a character at a time: part of a line came
			 * in meanwhile (the LINE arm keeps it until the line ends) */
			partial = weft_reader_buffered(rd);
			last_input = weft_now_ns();
		} else if (r == -ETIMEDOUT) {
			bye = "idle too long, bye\n";
		} else if (r == 0) {
			bye = "server shutting down, bye\n";
		} else if (r == 1) {
			if (arms[1].rc == 0 && say(c, in.text))
				break; /* it does not read, or it is gone: drop it */
		} else if (r == 2) {
			char part[LINE_MAX_];
			bool piece = arms[2].rc == -EMSGSIZE;
			if (piece) {
				/* a line longer than LINE_MAX_: relay it in pieces */
				ssize_t k = weft_reader_read(rd, part, sizeof part);
				ln.data = part;
				ln.len = k > 0 ? (size_t)k : 0;
			} else if (arms[2].rc) {
				break; /* an error */
			}
			if (ln.len == 0)
				break; /* closed by the peer */
			last_input = weft_now_ns();
			partial = weft_reader_buffered(rd);
			size_t ll = ln.data[ln.len - 1] == '\n' ? ln.len - 1 : ln.len;
			/* The newline alone (or "\r\n") after pieces ends the long
			 * line, whose bytes have all gone out: not an empty line of
			 * its own (a line of 400 bytes came out as 200, 200 and an
			 * empty one) */
			bool tail = in_pieces && (ll == 0 || (ll == 1 && ln.data[0] == '\r'));
			in_pieces = piece;
			if (tail)
				continue;
			struct msg s = { .kind = SAY, .id = id };
			snprintf(s.text, sizeof s.text, "user%d: %.*s\n", id, (int)ll, ln.data);
			weft_chan_send(hub_in, &s);
		} else {
			break;
		}
	}
	if (bye)
		say(c, bye);
	weft_reader_destroy(rd);
	struct msg l = { .kind = LEAVE, .id = id };
	weft_chan_send(hub_in, &l); /* the hub destroys `out`; not touched again */
	close_gracefully(c); /* the others hear it left at once, not after the linger */
	return NULL;
}

/* Accept connections into the join set until shutdown; reap finished ones. */
/* A failed accept (out of fds or memory: EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * leaves the client queued and the listener readable, so the next look
 * fails again at once: it spun a core, saying nothing. Say so once a
 * second at most and wait 50 ms before looking again. */
static void accept_failed(int rc, uint64_t *quiet_until)
{
	if (rc == -ETIMEDOUT || rc == -ECONNABORTED)
		return; /* another took it, or it left: look again */
	if (weft_now_ns() >= *quiet_until) {
		fprintf(stderr, "chat: accept: %s; retrying\n", weft_strerror(rc));
		*quiet_until = weft_now_ns() + 1000000000ull;
	}
	weft_sleep_ns(50000000);
}

static void *acceptor(void *arg)
{
	struct weft_io *l = arg;
	struct weft_runtime *rt = weft_runtime_current();
	struct weft_joinset *set;
	long served = 0;
	uint64_t quiet_until = 0; /* accept errors: one line a second at most */
	if (weft_joinset_create(&set))
		return (void *)-1L;
	for (;;) {
		struct weft_select_arm arms[] = {
			WEFT_SEL_CANCELLED(stop),
			WEFT_SEL_READY(l, WEFT_IO_READABLE),
			WEFT_SEL_JOIN_NEXT(set, NULL),         /* only while the set has members */
		};
		int r = weft_select(arms, weft_joinset_len(set) ? 3 : 2, WEFT_FOREVER);
		if (r == 0)
			break;
		if (r == 2) {
			served++;
			continue;
		}
		struct weft_io *c;
		weft_io_set_deadline(l, WEFT_IO_READABLE, weft_now_ns()); /* never wait here */
		int rc = weft_accept(l, &c, NULL, NULL);
		if (rc)
			accept_failed(rc, &quiet_until);
		else if (weft_joinset_spawn(set, rt, client, c, NULL))
			weft_io_close(c);
	}
	/* Every client saw the token too: wait for each of them. */
	/* Until the set is empty. A call that took no member out (no id:
	 * this fiber was cancelled itself, by a shutdown that came before
	 * the token) stops the loop too - it would say so again at once,
	 * for ever; the destroy below ends those left. */
	for (;;) {
		uint64_t id = 0;
		int rc = weft_joinset_join_next(set, NULL, &id);
		if (rc == -ENOENT || !id)
			break;
		served++;
	}
	weft_joinset_destroy(set);
	weft_io_close(l);
	return (void *)served;
}

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

int main(int argc, char **argv)
{
	long port = 7008, idle_s = 300;
	if (argc > 3 || (argc > 1 && parse_num(argv[1], 0, 65535, &port)) ||
	    (argc > 2 && parse_num(argv[2], 1, 1000000000, &idle_s))) {
		fprintf(stderr, "usage: chat [PORT [IDLE_SECONDS]]  (PORT 0..65535, 0: any free "
				"port; IDLE_SECONDS 1..1000000000; default 7008 300)\n");
		return 2;
	}
	idle_ns = (uint64_t)idle_s * S;
	/* SIGINT and SIGTERM arrive as items of a channel (weft/signal.h),
	 * as with Go's signal.Notify */
	struct weft_chan *sigs;
	int rc;
	if ((rc = weft_chan_create(sizeof(int), 2, &sigs)) ||
	    (rc = weft_signal_notify(sigs, SIGINT)) || (rc = weft_signal_notify(sigs, SIGTERM))) {
		fprintf(stderr, "chat: signals: %s\n", weft_strerror(rc));
		return 1;
	}
	struct weft_runtime *rt;
	struct weft_io *l;
	struct weft_task *acc, *h;
	if ((rc = weft_runtime_create(NULL, &rt)) ||
	    (rc = weft_chan_create(sizeof(struct msg), 256, &hub_in)) ||
	    (rc = weft_token_create(NULL, &stop)) ||
	    (rc = weft_tcp_listen(rt, NULL, (uint16_t)port, 128, &l)) ||
	    (rc = weft_spawn(rt, hub, NULL, &h)) ||
	    (rc = weft_spawn(rt, acceptor, l, &acc))) {
		fprintf(stderr, "chat: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("chat: listening on port %d\n", weft_io_local_port(l));
	fflush(stdout);
	int sig = 0;
	weft_chan_recv(sigs, &sig); /* this thread blocks until one comes */
	weft_token_cancel(stop);
	void *served;
	weft_join(acc, &served);
	weft_chan_close(hub_in);
	weft_join(h, NULL);
	printf("chat: %s, served %ld connections\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
	       (long)served);
	weft_chan_destroy(hub_in);
	weft_token_destroy(stop);
	weft_signal_stop(sigs);
	weft_chan_destroy(sigs);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
