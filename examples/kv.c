/*
 * kv.c - a line-protocol key-value server: a fiber per connection reading
 * requests through a buffered reader (a select's LINE arm, beside the
 * shutdown token) and answering through a buffered writer, flushed only
 * when no request is left buffered, so a client that pipelines gets one
 * write per batch. The map is behind a reader-writer lock. Each connection
 * fiber keeps its name in a fiber-local value, which the log helper
 * reads, and log lines go to a logger fiber through a channel of
 * LOG_QUEUE lines: logging never waits, wherever it is called from; a
 * line that finds the queue full (the log's reader is slower than the
 * clients, or stopped) is dropped and counted, and the logger says how
 * many were dropped once it catches up. A client that stops
 * reading its answers is dropped after 2 s of a write that cannot go, and
 * one that sends no whole request for IDLE_SECONDS is told "BYE idle too
 * long" and dropped: the select that waits for the next line has that
 * deadline, counted from the last request (bytes of a line that never
 * ends are not progress), so a client that connects and says nothing, or
 * a byte a minute, does not hold its fiber for ever.
 *
 * Protocol, one request per line: SET key value | GET key | DEL key | QUIT.
 * Answers: OK | VALUE value | NOT_FOUND | ERR reason | BYE.
 *
 * Usage: kv [PORT [IDLE_SECONDS]]  (default 7010 and 60 s; PORT 0: any free
 * port, printed). SIGINT or SIGTERM: the connections are told, the server
 * waits for each and exits 0.
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <weft/weft.h>

#define BUCKETS 1024
#define KEY_MAX 64
#define VAL_MAX 256
#define LINGER_NS 2000000000ull /* close_gracefully: at most this for the client's end */
#define LOG_QUEUE 4096 /* log lines waiting for the logger; more are dropped */

struct entry {
	struct entry *next;
	char key[KEY_MAX + 1];
	char val[VAL_MAX + 1];
};

static struct entry *map[BUCKETS];
static struct weft_rwlock *map_lock;
static struct weft_chan *log_ch; /* LOG_QUEUE of struct log_line */
static unsigned long log_dropped; /* lines that found log_ch full (atomic) */
static struct weft_token *stop;
static uint64_t idle_ns; /* no whole request for this long: the client is dropped */

struct log_line { char text[160]; };

/* The connection's name, for log lines: one per fiber, freed when it ends. */
static const struct weft_local_key conn_name = { .dtor = free };

static void logf_(const char *fmt, ...)
{
	struct log_line l;
	const char *who = weft_local_get(&conn_name);
	int n = snprintf(l.text, sizeof l.text, "[%s] ", who ? who : "kv");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l.text + n, sizeof l.text - (size_t)n, fmt, ap);
	va_end(ap);
	/* Never waits, and never queues without bound: the channel was
	 * unbounded, and with stdout slower than the clients (a terminal,
	 * a pipe, a terminal paused by ^S) every SET queued a line - 440 MB
	 * in 3 s of 100 clients pipelining SETs, growing while they went
	 * on (found by a review). A line that finds the queue full is
	 * dropped and counted instead. */
	if (weft_chan_try_send(log_ch, &l) == -EAGAIN)
		__atomic_add_fetch(&log_dropped, 1, __ATOMIC_RELAXED);
}

/* Say how many lines were dropped since the last time it was said. */
static void log_say_dropped(void)
{
	unsigned long d = __atomic_exchange_n(&log_dropped, 0, __ATOMIC_RELAXED);
	if (d)
		printf("[kv] %lu log lines dropped: the log fell behind\n", d);
}

/* The lines of one batch, said on stdout; run by weft_block_in_place. */
struct log_batch { const struct log_line *l; size_t n; };

static void *print_lines(void *arg)
{
	const struct log_batch *b = arg;
	log_say_dropped();
	for (size_t i = 0; i < b->n; i++)
		printf("%s\n", b->l[i].text);
	return NULL;
}

static void *logger(void *arg)
{
	static struct log_line batch[64]; /* one logger: no need for a stack of 10 KiB */
	size_t got;
	(void)arg;
	/* A write to a stdout that waits (a full pipe) blocks the thread: in
	 * a weft_block_in_place fn it does not hold a worker, whose queued
	 * fibers - the connections - would wait with it (a paused log held
	 * a client's answers, once the connection's fiber queued there). */
	while (weft_chan_recv_many(log_ch, batch, 64, &got) == 0) /* -EPIPE once closed, drained */
		weft_block_in_place(print_lines, &(struct log_batch){ batch, got }, NULL);
	log_say_dropped();
	fflush(stdout);
	return NULL;
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % BUCKETS;
}

static struct entry **find(const char *key)
{
	struct entry **e = &map[hash(key)];
	while (*e && strcmp((*e)->key, key))
		e = &(*e)->next;
	return e;
}

/* One request (the line without its newline): writes the answer. */
static int serve(struct weft_writer *w, char *line)
{
	/* strtok_r: the fibers of two workers parse at once (strtok's one
	 * saved position is shared by every thread) */
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save), *key = strtok_r(NULL, " ", &save);
	char *val = key ? save : NULL; /* the rest of the line, spaces and all */
	while (val && *val == ' ')
		val++;
	if (!cmd)
		return (int)weft_writer_printf(w, "ERR empty request\n");
	if (!strcmp(cmd, "QUIT"))
		return -1;
	if (strcmp(cmd, "GET") && strcmp(cmd, "SET") && strcmp(cmd, "DEL"))
		return (int)weft_writer_printf(w, "ERR unknown request (SET, GET, DEL, QUIT)\n");
	if (!key || strlen(key) > KEY_MAX)
		return (int)weft_writer_printf(w, "ERR a key of 1 to %d bytes\n", KEY_MAX);
	if (!strcmp(cmd, "GET")) {
		char v[VAL_MAX + 1] = "";
		if (weft_rwlock_read(map_lock))
			return -1; /* the fiber was cancelled (aborted, or the runtime shut down) */
		struct entry *e = *find(key);
		if (e)
			strcpy(v, e->val);
		weft_rwlock_read_unlock(map_lock);
		return (int)(e ? weft_writer_printf(w, "VALUE %s\n", v)
			       : weft_writer_printf(w, "NOT_FOUND\n"));
	}
	if (!strcmp(cmd, "SET")) {
		if (!val || !*val || strlen(val) > VAL_MAX)
			return (int)weft_writer_printf(w, "ERR SET needs a value of 1 to %d bytes\n",
						       VAL_MAX);
		if (weft_rwlock_write(map_lock))
			return -1;
		struct entry **e = find(key);
		if (!*e && (*e = calloc(1, sizeof(**e))))
			strcpy((*e)->key, key);
		if (*e)
			strcpy((*e)->val, val);
		weft_rwlock_write_unlock(map_lock);
		logf_("SET %s", key);
		return (int)weft_writer_printf(w, *e ? "OK\n" : "ERR out of memory\n");
	}
	if (!strcmp(cmd, "DEL")) {
		if (weft_rwlock_write(map_lock))
			return -1;
		struct entry **e = find(key), *gone = *e;
		if (gone)
			*e = gone->next;
		weft_rwlock_write_unlock(map_lock);
		free(gone);
		logf_("DEL %s", key);
		return (int)weft_writer_printf(w, gone ? "OK\n" : "NOT_FOUND\n");
	}
	return -1; /* not reached: the request was checked above */
}

/* Send what the writer holds within 2 s: 0, or -1 when the client must go
 * (it does not read: once the socket's buffers are full the write waits,
 * and without a limit it would hold shutdown up for good). */
static int flush_within(struct weft_io *c, struct weft_writer *w)
{
	weft_io_set_deadline(c, WEFT_IO_WRITABLE, weft_now_ns() + 2000000000ull);
	return weft_writer_flush(w) ? -1 : 0;
}

/* Close c so that the client gets every answer written to it. A close with
 * input still unread makes the kernel reset the connection (an RST instead
 * of a FIN, and what was not sent yet is dropped), so a client that
 * pipelined requests after QUIT, sent a request too long, or was sending
 * at the shutdown could lose the last answers ("BYE", "ERR request too
 * long"), or see a reset instead of the end. Shut the write side down
 * (the client reads our last byte, then end of stream), read and drop
 * what the client still sends until its end of stream or LINGER_NS (a
 * client that keeps sending cannot hold the fiber: a read that need not
 * wait ignores the deadline, hence the clock), then close. (A lingering
 * close, as nginx's and Go's net/http's.) */
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

static void *conn(void *arg)
{
	static long next_id;
	struct weft_io *c = arg;
	char *name = malloc(32);
	if (name) {
		snprintf(name, 32, "conn-%ld", __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED));
		if (weft_local_set(&conn_name, name))
			free(name);
	}
	logf_("connected");
	struct weft_reader *r = NULL;
	struct weft_writer *w = NULL;
	const char *bye = NULL;
	uint64_t last_request = weft_now_ns();
	if (!weft_reader_create(c, 1024, &r) && !weft_writer_create(c, 0, &w)) {
		for (;;) {
			struct weft_line ln;
			struct weft_select_arm arms[] = {
				WEFT_SEL_CANCELLED(stop),
				WEFT_SEL_LINE(r, '\n', &ln), /* a request already read wins at once */
			};
			/* With answers waiting, only look for another request
			 * already here (a deadline of now); when there is none,
			 * send the batch in one write and wait, until the idle
			 * time after the last request. */
			bool answers = weft_writer_buffered(w) > 0;
			int sel = weft_select(arms, 2,
					      answers ? weft_now_ns() : last_request + idle_ns);
			if (sel == -ETIMEDOUT && answers) {
				if (flush_within(c, w))
					break; /* it does not read, or it is gone */
				continue;
			}
			if (sel == -ETIMEDOUT) {
				bye = "BYE idle too long\n";
				break;
			}
			if (sel != 1) {
				bye = "BYE server shutting down\n";
				break;
			}
			if (arms[1].rc == -EMSGSIZE) {
				bye = "ERR request too long\n";
				break;
			}
			if (arms[1].rc)
				break; /* gone, or an error */
			if (ln.len == 0) {
				/* the client's end of stream (printf ... | nc -N):
				 * its requests before it are still answered */
				flush_within(c, w);
				break;
			}
			last_request = weft_now_ns();
			char line[1025];
			size_t n = ln.data[ln.len - 1] == '\n' ? ln.len - 1 : ln.len;
			memcpy(line, ln.data, n);
			line[n] = '\0';
			if (n && line[n - 1] == '\r')
				line[n - 1] = '\0';
			/* answers that fill the buffer are written on the way:
			 * within 2 s too */
			weft_io_set_deadline(c, WEFT_IO_WRITABLE, weft_now_ns() + 2000000000ull);
			if (serve(w, line) < 0) {
				bye = "BYE\n";
				break;
			}
		}
	}
	if (bye && w && weft_writer_printf(w, "%s", bye) > 0)
		flush_within(c, w);
	weft_writer_destroy(w);
	weft_reader_destroy(r);
	close_gracefully(c);
	logf_("closed");
	return NULL; /* conn_name's dtor frees the name */
}

/* A failed accept (out of fds or memory: EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * leaves the client queued and the listener readable, so the next look
 * fails again at once: it spun a core, saying nothing. Say so once a
 * second at most and wait 50 ms before looking again. */
static void accept_failed(int rc, uint64_t *quiet_until)
{
	if (rc == -ETIMEDOUT || rc == -ECONNABORTED)
		return; /* another took it, or it left: look again */
	if (weft_now_ns() >= *quiet_until) {
		fprintf(stderr, "kv: accept: %s; retrying\n", weft_strerror(rc));
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
			WEFT_SEL_JOIN_NEXT(set, NULL),
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
		else if (weft_joinset_spawn(set, rt, conn, c, NULL))
			weft_io_close(c);
	}
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

int main(int argc, char **argv)
{
	long port = 7010, idle_s = 60;
	if (argc > 3 || (argc > 1 && parse_num(argv[1], 0, 65535, &port)) ||
	    (argc > 2 && parse_num(argv[2], 1, 1000000000, &idle_s))) {
		fprintf(stderr, "usage: kv [PORT [IDLE_SECONDS]]  (PORT 0..65535, 0: any free port; "
				"IDLE_SECONDS 1..1000000000; default 7010 60)\n");
		return 2;
	}
	idle_ns = (uint64_t)idle_s * 1000000000ull;
	struct weft_chan *sigs;
	struct weft_runtime *rt;
	struct weft_io *l;
	struct weft_task *acc, *lg;
	int rc;
	if ((rc = weft_chan_create(sizeof(int), 2, &sigs)) ||
	    (rc = weft_signal_notify(sigs, SIGINT)) || (rc = weft_signal_notify(sigs, SIGTERM)) ||
	    (rc = weft_runtime_create(NULL, &rt)) || (rc = weft_rwlock_create(&map_lock)) ||
	    (rc = weft_chan_create(sizeof(struct log_line), LOG_QUEUE, &log_ch)) ||
	    (rc = weft_token_create(NULL, &stop)) ||
	    (rc = weft_tcp_listen(rt, NULL, (uint16_t)port, 128, &l)) ||
	    (rc = weft_spawn(rt, logger, NULL, &lg)) || (rc = weft_spawn(rt, acceptor, l, &acc))) {
		fprintf(stderr, "kv: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("kv: listening on port %d\n", weft_io_local_port(l));
	fflush(stdout);
	int sig = 0;
	weft_chan_recv(sigs, &sig);
	weft_token_cancel(stop);
	void *served;
	weft_join(acc, &served);
	weft_chan_close(log_ch); /* the logger prints what is queued, then ends */
	weft_join(lg, NULL);
	printf("kv: %s, served %ld connections\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
	       (long)served);
	weft_chan_destroy(log_ch);
	weft_token_destroy(stop);
	weft_rwlock_destroy(map_lock);
	weft_signal_stop(sigs);
	weft_chan_destroy(sigs);
	for (int i = 0; i < BUCKETS; i++)
		while (map[i]) {
			struct entry *e = map[i];
			map[i] = e->next;
			free(e);
		}
	return weft_runtime_destroy(rt) ? 1 : 0;
}
