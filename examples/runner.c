/*
 * runner.c - a command runner on a Unix socket: each connection sends one
 * line, a shell command; the server runs it (weft_process_spawn) and answers
 * "exit N", "signal N" or "timeout" once it is done. One fiber per
 * connection. It shows:
 *  - weft_unix_listen / weft_accept: a local socket by path;
 *  - weft_process_spawn / weft_process_wait: the fiber waits for its
 *    child's pidfd, in a weft_select beside its token, without holding a
 *    worker (a worker that called waitpid would stop every other fiber),
 *    and kills it through the pidfd (weft_process_kill) and its process
 *    group (whatever the shell started);
 *  - a token with a deadline (Go's context.WithTimeout) per command, a
 *    child of the server's stop token, so SIGTERM ends every command too;
 *  - a semaphore bounding how many commands run at once, closed at
 *    shutdown so waiting connections are told "shutting down".
 *
 * Usage: runner PATH [TIMEOUT_MS [MAX_RUNNING]]  (default 5000 ms, 4; a PATH
 * "@name": Linux's abstract namespace, no file; a PATH that can be no
 * socket's - "", "@", 108 bytes or more - is a usage error, exit 2).
 * Try: runner /tmp/runner.sock & echo 'sleep 1; exit 3' | nc -U /tmp/runner.sock
 * SIGINT or SIGTERM: running commands are killed, clients that have not
 * sent their whole line yet are told "error shutting down", the server
 * waits for every connection fiber, removes the socket file and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft/weft.h>

#define MS 1000000ull
#define LINGER_NS (2000 * MS)   /* close_gracefully: at most this for the client's end */

static struct weft_token *stop;        /* cancelled on SIGINT/SIGTERM */
static struct weft_sem *slots;         /* commands running at once */
static uint64_t timeout_ns;

/* Kill the command: the shell, and what it started. A SIGKILL to the
 * shell alone left its children running ("sleep 30; exit 4": the sleep,
 * orphaned, ran its 30 s after the "timeout" answer, and after the server
 * exited). The group's id is the shell's pid, which nobody else can take
 * while the shell is not reaped (it is reaped after this, by the wait).
 * The pidfd kill still reaches the shell if the group kill cannot. */
static void kill_command(struct weft_process *p)
{
	kill(-p->pid, SIGKILL);
	weft_process_kill(p, SIGKILL);
}

/* Run `cmd` with sh -c until it ends, its deadline passes or the server
 * stops; say how it went into `out`. */
static void run(const char *cmd, char *out, size_t outsz)
{
	struct weft_token *tok;
	int rc = weft_token_create_deadline(NULL, stop, weft_now_ns() + timeout_ns, &tok);
	if (rc) {
		snprintf(out, outsz, "error %s\n", weft_strerror(rc));
		return;
	}
	/* weft_process_spawn: posix_spawn with no stdin (/dev/null), and the
	 * child's pidfd registered - waited on beside the token (Tokio's
	 * select! over child.wait() and token.cancelled()), and signalled
	 * through, so a kill never reaches a process that took its pid. The
	 * shell leads a process group of its own: what it starts ("sleep 30;
	 * exit 4" forks the sleep) is killed with it (kill_command). */
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	struct weft_process p;
	rc = weft_process_spawn(weft_runtime_current(), "/bin/sh", argv,
				&WEFT_OPTS_INIT(weft_process_opts, .stdio = { WEFT_STDIO_NULL },
						.setpgid = true), &p);
	if (rc) {
		snprintf(out, outsz, "error %s\n", weft_strerror(rc));
		weft_token_destroy(tok);
		return;
	}
	int status = 0;
	const char *why = NULL;
	struct weft_select_arm arms[] = { WEFT_SEL_READY(p.child, WEFT_IO_READABLE),
					  WEFT_SEL_CANCELLED(tok) };
	int won = weft_select(arms, 2, WEFT_FOREVER);
	if (won == 1) {
		/* its deadline passed, or the server stops */
		why = weft_token_err(tok) == -ETIMEDOUT ? "timeout" : "stopped";
		kill_command(&p);
	}
	if (won < 0) {
		/* the select failed (-ENOMEM, or this fiber was cancelled,
		 * when the wait would say -ECANCELED too): leave no child
		 * behind, nor a zombie */
		kill_command(&p);
		weft_process_close(&p);
		waitpid(p.pid, &status, 0);
		rc = won;
	} else {
		rc = weft_process_wait(&p, &status, WEFT_FOREVER);
		weft_process_close(&p);
	}
	if (rc)
		snprintf(out, outsz, "error %s\n", weft_strerror(rc));
	else if (why)
		snprintf(out, outsz, "%s\n", why);
	else if (WIFEXITED(status))
		snprintf(out, outsz, "exit %d\n", WEXITSTATUS(status));
	else
		snprintf(out, outsz, "signal %d\n", WTERMSIG(status));
	weft_token_destroy(tok);
}

/* Close c so that the client gets every byte written to it. A close with
 * input still unread makes the kernel reset the connection (TCP sends an
 * RST instead of a FIN and drops what it has not sent yet; a Unix socket
 * says ECONNRESET to the peer), so a client that sent more than its line
 * (never read), or a command over 511 bytes, could lose its answer, or
 * see a reset instead of the end. Shut the write side down (the client
 * reads our last byte, then end of stream), read and drop what the
 * client still sends until its end of stream or LINGER_NS (a client that
 * keeps sending cannot hold the fiber: a read that need not wait ignores
 * the deadline, hence the clock), then close. (A lingering close, as
 * nginx's and Go's net/http's.) */
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

static void *client(void *arg)
{
	struct weft_io *c = arg;
	/* a command of 511 bytes, its newline and a NUL (line[512] held 511
	 * bytes with the newline: a 511-byte command was "too long") */
	char line[511 + 2], out[128];
	size_t n = 0;
	ssize_t r = 0;
	bool stopped = false;
	/* one line, a command of at most 511 bytes, within the time limit */
	uint64_t deadline = weft_now_ns() + timeout_ns;
	weft_io_set_deadline(c, WEFT_IO_READABLE, deadline);
	for (;;) {
		/* Wait for its bytes beside the stop token: a client that
		 * sent nothing, or half a line, held the shutdown up for the
		 * rest of its time limit (up to an hour) in the read. */
		struct weft_select_arm arms[] = { WEFT_SEL_READY(c, WEFT_IO_READABLE),
						  WEFT_SEL_CANCELLED(stop) };
		int won = weft_select(arms, 2, deadline);
		if (won == 1) {
			stopped = true;
			break;
		}
		if (won < 0 || arms[0].rc < 0) {
			r = won < 0 ? won : arms[0].rc; /* -ETIMEDOUT: the time limit */
			break;
		}
		/* Never wait in the read: only the select waits beside the
		 * token. A READY arm goes by the readiness last seen, which a
		 * read that got bytes does not clear; after the first piece
		 * of a line, the next select won at once and the read waited,
		 * deaf to the token: SIGTERM waited for such a client's time
		 * limit, and it was never told (found by a review). A read
		 * that finds nothing says -ETIMEDOUT (and clears the
		 * readiness): wait in the select again. */
		weft_io_set_deadline(c, WEFT_IO_READABLE, weft_now_ns());
		r = weft_read(c, line + n, sizeof line - 1 - n);
		weft_io_set_deadline(c, WEFT_IO_READABLE, deadline);
		if (r == -ETIMEDOUT && weft_now_ns() < deadline)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(line, '\n', n) || n == sizeof line - 1)
			break;
	}
	line[n] = '\0';
	bool whole = memchr(line, '\n', n) || r == 0; /* a line, or all until the end */
	line[strcspn(line, "\n")] = '\0';
	if (stopped) {
		snprintf(out, sizeof out, "error shutting down\n");
	} else if (!whole) {
		/* never run the first 511 bytes of a command; the rest of
		 * the line is read and dropped by close_gracefully */
		snprintf(out, sizeof out, "error %s\n",
			 n == sizeof line - 1 ? "command too long (511 bytes at most)"
					      : weft_strerror((int)r));
	} else if (!line[0]) {
		snprintf(out, sizeof out, "error empty command\n");
	} else if (weft_sem_acquire_n(slots, 1)) {
		snprintf(out, sizeof out, "error shutting down\n");
	} else {
		run(line, out, sizeof out);
		weft_sem_release_n(slots, 1);
	}
	weft_write(c, out, strlen(out));
	close_gracefully(c);
	return NULL;
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
		fprintf(stderr, "runner: accept: %s; retrying\n", weft_strerror(rc));
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
		/* the token first: the first arm ready wins, and with the
		 * listener first a steady stream of clients (one always
		 * queued) kept the token from ever winning - SIGTERM never
		 * ended the server (found by a review). Then a finished
		 * connection's fiber, taken out of the set before the next
		 * client is accepted: the set kept every
		 * connection served until the shutdown, ~200 bytes each
		 * (2 MB more per 10,000 clients, for the server's life;
		 * found by a review). Before the listener: a steady stream
		 * of clients would hold the reaping back as it did the token.
		 * The JOIN_NEXT arm only while the set has members. */
		struct weft_select_arm arms[3] = { WEFT_SEL_CANCELLED(stop) };
		int n = 1;
		if (weft_joinset_len(set))
			arms[n++] = WEFT_SEL_JOIN_NEXT(set, NULL);
		int listener = n;
		arms[n++] = WEFT_SEL_READY(l, WEFT_IO_READABLE);
		int r = weft_select(arms, (size_t)n, WEFT_FOREVER);
		if (r <= 0)
			break; /* stopped */
		if (r != listener) {
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
	weft_sem_close(slots); /* connections still waiting for a slot are told */
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
	return (void *)served;
}

/* Remove the socket's file. An "@name" (Linux's abstract namespace) has
 * none: unlink("@name") removed a file of that name from the current
 * directory, one the runner never made. */
static void remove_socket(const char *path)
{
	if (path[0] != '@')
		unlink(path);
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
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: runner PATH [TIMEOUT_MS [MAX_RUNNING]]\n");
		return 2;
	}
	const char *path = argv[1];
	long tmo = 5000, max = 4;
	/* whole numbers, nothing after them: strtoul without an end check
	 * took "10s" as 10 ms */
	if ((argc > 2 && parse_num(argv[2], 1, 3600000, &tmo)) ||
	    (argc > 3 && parse_num(argv[3], 1, 1024, &max))) {
		fprintf(stderr, "runner: TIMEOUT_MS 1..3600000, MAX_RUNNING 1..1024\n");
		return 2;
	}
	timeout_ns = (uint64_t)tmo * MS;
	struct weft_chan *sigs;
	int rc;
	if ((rc = weft_chan_create(sizeof(int), 2, &sigs)) ||
	    (rc = weft_signal_notify(sigs, SIGINT)) || (rc = weft_signal_notify(sigs, SIGTERM))) {
		fprintf(stderr, "runner: signals: %s\n", weft_strerror(rc));
		return 1;
	}
	struct weft_runtime *rt;
	struct weft_io *l;
	struct weft_task *acc;
	if ((rc = weft_runtime_create(NULL, &rt)) || (rc = weft_token_create(NULL, &stop)) ||
	    (rc = weft_sem_create(max, &slots))) {
		fprintf(stderr, "runner: %s\n", weft_strerror(rc));
		return 1;
	}
	if ((rc = weft_unix_listen(rt, path, 0, &l))) {
		/* A PATH that can be no socket's ("", "@", 108 bytes or more)
		 * is a usage error: it said "runner: : invalid argument",
		 * exit 1, as if the system had failed (found by a review). */
		bool usage = rc == -EINVAL || rc == -ENAMETOOLONG;
		if (usage)
			fprintf(stderr, "usage: runner PATH [TIMEOUT_MS [MAX_RUNNING]]\n"
					"  (PATH a socket's file, at most 107 bytes, or \"@name\": "
					"not \"%s\": %s)\n", path, weft_strerror(rc));
		else
			fprintf(stderr, "runner: %s: %s\n", path, weft_strerror(rc));
		return usage ? 2 : 1;
	}
	if ((rc = weft_spawn(rt, acceptor, l, &acc))) {
		fprintf(stderr, "runner: %s\n", weft_strerror(rc));
		remove_socket(path);
		return 1;
	}
	printf("runner: listening on %s\n", path);
	fflush(stdout);
	int sig = 0;
	weft_chan_recv(sigs, &sig); /* this thread blocks until one comes */
	weft_token_cancel(stop);
	void *served;
	weft_join(acc, &served);
	weft_io_close(l);
	remove_socket(path);
	printf("runner: %s, served %ld connections\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
	       (long)served);
	weft_sem_destroy(slots);
	weft_token_destroy(stop);
	weft_signal_stop(sigs);
	weft_chan_destroy(sigs);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
