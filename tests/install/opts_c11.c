/*
 * opts_c11.c - a client in standard C: built by check-install.sh against
 * the installed headers with -std=c11 -pedantic -Werror, so the public
 * headers and WEFT_OPTS_INIT stay free of GNU extensions. It includes no
 * <errno.h> of its own: the error codes come with weft's headers.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

static enum weft_poll square(void *state, struct weft_cx *cx)
{
	long *x = state;
	*x *= *x;
	weft_cx_set_result(cx, state);
	return WEFT_READY;
}

/* fiber-local values: a key is a static object, its dtor runs when the
 * fiber's fn returns */
static int local_dtors;
static void count_dtor(void *v)
{
	(void)v;
	local_dtors++;
}
static const struct weft_local_key request_key = { count_dtor };

static void *with_local(void *arg)
{
	if (weft_local_set(&request_key, arg) || weft_yield())
		return NULL;
	return weft_local_get(&request_key);
}

/* a poll task waiting for a child (weft_process_wait_poll) */
struct proc_wait {
	struct weft_process *p;
	int rc, status;
};
static enum weft_poll proc_waiter(void *state, struct weft_cx *cx)
{
	struct proc_wait *w = state;
	int rc = weft_process_wait_poll(w->p, cx, &w->status);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	w->rc = rc;
	return WEFT_READY;
}

int main(void)
{
	struct weft_runtime_opts o = WEFT_OPTS_INIT(weft_runtime_opts, .workers = 2,
						   .thread_name_prefix = "c11");
	struct weft_runtime_opts d = WEFT_OPTS_INIT(weft_runtime_opts);
	struct weft_runtime *rt, *rt2;
	struct weft_task *t;
	long x = 7;
	void *r = NULL;
	int rc;
	if (d.sz != sizeof(d) || d.workers != 0 || o.sz != sizeof(o) || o.workers != 2)
		return 1;
	struct weft_token *tok = NULL;
	if ((rc = weft_runtime_create(&o, &rt)) ||
	    (rc = weft_spawn_poll(rt, square, &x, NULL, &t)) ||
	    (rc = weft_join(t, &r)) ||
	    /* a token that cancels itself 20 ms on (context.WithTimeout) */
	    (rc = weft_token_create_deadline(rt, NULL, weft_now_ns() + 20000000u, &tok)) ||
	    (rc = weft_token_wait(tok)) || (rc = weft_token_err(tok) == -ETIMEDOUT ? 0 : -EPROTO) ||
	    (rc = weft_token_destroy(tok)) ||
	    (rc = weft_spawn(rt, with_local, &x, &t)) || (rc = weft_join(t, &r)) ||
	    (rc = r == &x && local_dtors == 1 ? 0 : -EPROTO) ||
	    (rc = weft_local_set(&request_key, &x) == -EPERM ? 0 : -EPROTO)) {
		fprintf(stderr, "opts_c11: %s\n", weft_strerror(rc));
		return 1;
	}
	/* weft/io.h: a Unix socket by abstract name; the connect completes
	 * against the listener's backlog */
	char name[64];
	struct weft_io *lis, *cli, *acc;
	struct weft_writer *wr;
	struct weft_reader *rd = NULL;
	struct weft_line line = { 0 };
	struct weft_select_arm arms[1]; /* a buffered reader's next line */
	char *echo_argv[] = { "echo", "hi", NULL }, echoed[8];
	struct weft_process proc;
	int status = -1;
	char ok[] = "ok", nl[] = "\n";
	struct iovec segs[2];
	char *exit4_argv[] = { "sh", "-c", "exit 4", NULL };
	struct proc_wait pw = { &proc, 1, 0 };
	segs[0].iov_base = ok;
	segs[0].iov_len = 2;
	segs[1].iov_base = nl;
	segs[1].iov_len = 1;
	snprintf(name, sizeof name, "@opts-c11-%ld", (long)getpid());
	if ((rc = weft_unix_listen(rt, name, 0, &lis)) ||
	    (rc = weft_unix_connect_timeout(rt, name, &cli, 5000000000u)) ||
	    (rc = weft_accept(lis, &acc, NULL, NULL)) ||
	    (rc = weft_writer_create(cli, 0, &wr)) || (rc = (int)weft_writer_printf(wr, "%c\n", 'u')) != 2 ||
	    (rc = weft_writer_flush(wr)) || (rc = (int)weft_writer_destroy(wr)) ||
	    (rc = weft_reader_create(acc, 0, &rd)) ||
	    (rc = (arms[0] = WEFT_SEL_LINE(rd, '\n', &line), 0)) ||
	    (rc = weft_select(arms, 1, weft_now_ns() + 5000000000u)) || (rc = arms[0].rc) ||
	    (rc = line.len == 2 && line.data[0] == 'u' ? 0 : -EPROTO) ||
	    /* a gather write: two segments, one stream */
	    (rc = (int)weft_writev(cli, segs, 2)) != 3 ||
	    (rc = (int)weft_read(acc, echoed, sizeof echoed)) != 3 ||
	    (rc = echoed[0] == 'o' && echoed[1] == 'k' && echoed[2] == '\n' ? 0 : -EPROTO) ||
	    /* a half-close: the other end reads end of stream */
	    (rc = weft_io_shutdown(cli, SHUT_WR)) ||
	    (rc = (int)weft_read(acc, echoed, sizeof echoed)) != 0 ||
	    (weft_reader_destroy(rd), rc = weft_io_close(acc)) || (rc = weft_io_close(cli)) || (rc = weft_io_close(lis)) ||
	    /* a process whose stdout is a pipe (exec.Cmd.StdoutPipe) */
	    (rc = weft_process_spawn(rt, "echo", echo_argv,
				     &WEFT_OPTS_INIT(weft_process_opts,
						     .stdio = { WEFT_STDIO_NULL, WEFT_STDIO_PIPE }),
				     &proc)) ||
	    (rc = (int)weft_read(proc.out, echoed, sizeof echoed)) != 3 ||
	    (rc = echoed[0] == 'h' && echoed[1] == 'i' ? 0 : -EPROTO) ||
	    (rc = weft_process_wait(&proc, &status, 5000000000u)) || (rc = status ? -EPROTO : 0) ||
	    (rc = weft_process_close(&proc)) ||
	    (rc = weft_process_spawn(rt, "sh", exit4_argv, NULL, &proc)) ||
	    (rc = weft_spawn_poll(rt, proc_waiter, &pw, NULL, &t)) || (rc = weft_join(t, NULL)) ||
	    (rc = pw.rc) || (rc = WIFEXITED(pw.status) && WEXITSTATUS(pw.status) == 4 ? 0 : -EPROTO) ||
	    (rc = weft_process_close(&proc)) ||
	    (rc = weft_runtime_destroy(rt))) {
		fprintf(stderr, "opts_c11: %s\n", weft_strerror(rc));
		return 1;
	}
	if ((rc = weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt2)) ||
	    (rc = weft_runtime_destroy(rt2))) {
		fprintf(stderr, "opts_c11: %s\n", weft_strerror(rc));
		return 1;
	}
	/* weft/signal.h: SIGTERM (C11's raise) arrives as a channel item */
	struct weft_chan *sigs;
	int signo = 0;
	if ((rc = weft_chan_create(sizeof(int), 1, &sigs)) ||
	    (rc = weft_signal_notify(sigs, SIGTERM)) || raise(SIGTERM) ||
	    (rc = weft_chan_recv_timeout(sigs, &signo, 5000000000u)) ||
	    (rc = weft_signal_stop(sigs)) || (rc = weft_chan_destroy(sigs))) {
		fprintf(stderr, "opts_c11: signal: %s\n", weft_strerror(rc));
		return 1;
	}
	if (signo != SIGTERM)
		return 1;
	/* a batch receive: three items in one call, in order */
	struct weft_chan *q;
	int in[3] = { 7, 8, 9 }, out[4] = { 0 };
	size_t got = 0;
	if ((rc = weft_chan_create_unbounded(sizeof(int), &q)) ||
	    (rc = weft_chan_send(q, &in[0])) || (rc = weft_chan_send(q, &in[1])) ||
	    (rc = weft_chan_send(q, &in[2])) || (rc = weft_chan_recv_many(q, out, 4, &got)) ||
	    (rc = weft_chan_destroy(q))) {
		fprintf(stderr, "opts_c11: recv_many: %s\n", weft_strerror(rc));
		return 1;
	}
	if (got != 3 || out[0] != 7 || out[2] != 9)
		return 1;
	/* a child writing into the caller's own pipe (WEFT_STDIO_FD) in a
	 * process group of its own (test_process checks the group); an
	 * interval that bursts, then reset: the options in standard C */
	int pp[2];
	char said[8] = { 0 };
	char *pg_argv[] = { "sh", "-c", "echo pg", NULL };
	struct weft_interval iv;
	if ((rc = weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt2)) ||
	    (rc = pipe(pp) ? -EIO : 0) ||
	    (rc = weft_process_spawn(rt2, "sh", pg_argv,
				     &WEFT_OPTS_INIT(weft_process_opts,
						     .stdio = { WEFT_STDIO_NULL, WEFT_STDIO_FD },
						     .fd = { -1, pp[1] }, .setpgid = 1),
				     &proc)) ||
	    (rc = weft_process_wait(&proc, &status, 5000000000u)) || (rc = status ? -EPROTO : 0) ||
	    (rc = weft_process_close(&proc)) || (rc = close(pp[1]) ? -EIO : 0) ||
	    (rc = read(pp[0], said, sizeof said - 1) == 3 && said[0] == 'p' ? 0 : -EPROTO) ||
	    (rc = weft_interval_init(&iv, 1000000u)) ||
	    (rc = weft_interval_set_missed(&iv, WEFT_MISSED_BURST)) ||
	    (rc = weft_interval_reset(&iv, 2000000u)) || (rc = weft_interval_tick(&iv)) ||
	    (rc = iv.period_ns == 2000000u ? 0 : -EPROTO) ||
	    (rc = weft_runtime_destroy(rt2))) {
		fprintf(stderr, "opts_c11: process/interval: %s\n", weft_strerror(rc));
		return 1;
	}
	close(pp[0]);
	printf("opts_c11: %ld\n", *(long *)r);
	return 0;
}
