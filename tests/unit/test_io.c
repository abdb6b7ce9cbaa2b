/*
 * test_io.c - the I/O driver: an echo server and clients in one runtime
 * (1,000 connections x 100 round trips, every byte checked), peer reset,
 * half-close (and weft_io_shutdown waking the calls waiting on it), EAGAIN
 * on a full socket buffer, closing an fd under a waiter,
 * and the reads a short read saves (counted by the read() defined here,
 * which libweft resolves to: the executable exports it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wt.h"

/* read(2) on the fd under watch that returned EAGAIN. */
static atomic_int watch_fd = -1, watch_eagain;
/* A read(2) of stall_fd stops once, before the call, until resumed: a
 * thread preempted between weft_read's checks and its system call. */
static atomic_int stall_fd = -1, stalled, stall_resume;

__attribute__((visibility("default"))) ssize_t read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	int expect = fd;
	if (fd >= 0 && atomic_compare_exchange_strong(&stall_fd, &expect, -1)) {
		atomic_store(&stalled, 1);
		while (!atomic_load(&stall_resume))
			usleep(100);
	}
	ssize_t r = real(fd, buf, n);
	if (r < 0 && errno == EAGAIN && fd == atomic_load_explicit(&watch_fd, memory_order_relaxed))
		atomic_fetch_add(&watch_eagain, 1);
	return r;
}

static struct weft_runtime *g_rt;
static struct weft_io *g_listener;
static atomic_long g_bytes_ok, g_clients_done, g_errors;

static void *echo_conn(void *arg)
{
	struct weft_io *c = arg;
	char buf[4096];
	for (;;) {
		ssize_t n = weft_read(c, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (weft_write(c, buf, (size_t)n) != n) {
			atomic_fetch_add(&g_errors, 1);
			break;
		}
	}
	weft_io_close(c);
	return NULL;
}

static void *acceptor(void *arg)
{
	long n = (long)arg;
	for (long i = 0; i < n; i++) {
		struct weft_io *c;
		int rc = weft_accept(g_listener, &c, NULL, NULL);
		if (rc) {
			atomic_fetch_add(&g_errors, 1);
			continue;
		}
		cr_assert_eq(weft_spawn(g_rt, echo_conn, c, NULL), 0);
	}
	return NULL;
}

static void *client(void *arg)
{
	long id = (long)arg;
	struct weft_io *c;
	int rc = weft_tcp_connect(g_rt, "127.0.0.1", (uint16_t)weft_io_local_port(g_listener), &c);
	if (rc) {
		atomic_fetch_add(&g_errors, 1);
		return NULL;
	}
	char out[64], in[64];
	for (int r = 0; r < 100; r++) {
		int len = snprintf(out, sizeof(out), "client %ld round %d payload", id, r);
		if (weft_write(c, out, (size_t)len) != len) {
			atomic_fetch_add(&g_errors, 1);
			break;
		}
		int got = 0;
		while (got < len) {
			ssize_t n = weft_read(c, in + got, (size_t)(len - got));
			if (n <= 0)
				break;
			got += (int)n;
		}
		if (got != len || memcmp(in, out, (size_t)len)) {
			atomic_fetch_add(&g_errors, 1);
			break;
		}
		atomic_fetch_add(&g_bytes_ok, len);
	}
	weft_io_close(c);
	atomic_fetch_add(&g_clients_done, 1);
	return NULL;
}

Test(io, echo_thousand_connections_hundred_round_trips, .timeout = WT_TMO(120))
{
	enum { CONNS = 1000 };
	g_rt = wt_rt_create(2);
	cr_assert_eq(weft_tcp_listen(g_rt, "127.0.0.1", 0, 1024, &g_listener), 0);
	cr_assert_gt(weft_io_local_port(g_listener), 0);
	struct weft_task *acc;
	cr_assert_eq(weft_spawn(g_rt, acceptor, (void *)(long)CONNS, &acc), 0);
	static struct weft_task *cl[CONNS];
	for (long i = 0; i < CONNS; i++)
		cr_assert_eq(weft_spawn(g_rt, client, (void *)i, &cl[i]), 0);
	for (int i = 0; i < CONNS; i++)
		cr_assert_eq(weft_join(cl[i], NULL), 0);
	cr_assert_eq(weft_join(acc, NULL), 0);
	cr_assert_eq(atomic_load(&g_errors), 0);
	cr_assert_eq(atomic_load(&g_clients_done), CONNS);
	struct weft_metrics *m;
	cr_assert_eq(weft_runtime_metrics(g_rt, &m), 0);
	cr_assert_geq(m->io_fds_registered, 2 * CONNS + 1);
	cr_assert_gt(m->io_ready_events, 0);
	weft_metrics_free(m);
	weft_io_close(g_listener);
	wt_rt_destroy(g_rt);
}

/* A socket pair registered with the runtime, for the edge cases. */
static void pair(struct weft_runtime *rt, struct weft_io **a, struct weft_io **b)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(weft_io_register(rt, sv[0], a), 0);
	cr_assert_eq(weft_io_register(rt, sv[1], b), 0);
}

struct reader { struct weft_io *io; ssize_t rc; char buf[16]; };

static void *read_once(void *arg)
{
	struct reader *r = arg;
	r->rc = weft_read(r->io, r->buf, sizeof(r->buf));
	return NULL;
}

Test(io, half_close_reset_and_close_under_waiter, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_io *a, *b;
	struct weft_task *t;

	/* half-close: the reader sees its data, then end of stream */
	pair(rt, &a, &b);
	struct reader r = { .io = a };
	cr_assert_eq(weft_write(b, "hi", 2), 2);
	cr_assert_eq(shutdown(weft_io_fd(b), SHUT_WR), 0);
	cr_assert_eq(weft_spawn(rt, read_once, &r, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(r.rc, 2);
	cr_assert_eq(weft_spawn(rt, read_once, &r, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(r.rc, 0, "end of stream after half-close");
	weft_io_close(a);
	weft_io_close(b);

	/* close under a waiting reader: it wakes with -EBADF, no hang */
	pair(rt, &a, &b);
	r = (struct reader){ .io = a, .rc = 99 };
	cr_assert_eq(weft_spawn(rt, read_once, &r, &t), 0);
	wt_sleep_ms(50);
	cr_assert_eq(weft_task_is_finished(t), false, "reader should be waiting");
	cr_assert_eq(weft_io_close(a), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert_eq(r.rc, -EBADF);
	weft_io_close(b);

	/* peer reset: a TCP peer closing with unread data resets */
	struct weft_io *l, *c, *s;
	cr_assert_eq(weft_tcp_listen(rt, "127.0.0.1", 0, 16, &l), 0);
	cr_assert_eq(weft_tcp_connect(rt, "127.0.0.1", (uint16_t)weft_io_local_port(l), &c), 0);
	cr_assert_eq(weft_accept(l, &s, NULL, NULL), 0);
	cr_assert_eq(weft_write(c, "unread", 6), 6);
	wt_sleep_ms(20);
	cr_assert_eq(weft_io_close(s), 0); /* unread data: RST */
	wt_sleep_ms(20);
	char buf[8];
	ssize_t n = weft_read(c, buf, sizeof(buf));
	cr_assert(n == -ECONNRESET || n == 0, "read after reset: %zd", n);
	ssize_t w = weft_write(c, "x", 1);
	cr_assert(w == -EPIPE || w == -ECONNRESET || w == 1, "write after reset: %zd", w);
	weft_io_close(c);
	weft_io_close(l);
	wt_rt_destroy(rt);
}

static void *big_writer(void *arg)
{
	struct weft_io *io = arg;
	static char chunk[1 << 20];
	memset(chunk, 'x', sizeof(chunk));
	return (void *)(long)weft_write(io, chunk, sizeof(chunk)); /* > socket buffer: EAGAIN path */
}

Test(io, full_buffer_eagain_then_drained, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_io *a, *b;
	pair(rt, &a, &b);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, big_writer, a, &t), 0);
	wt_sleep_ms(30);
	cr_assert_eq(weft_task_is_finished(t), false, "writer should wait for buffer space");
	/* drain from this thread: blocking-style calls work outside the runtime too */
	size_t total = 0;
	char buf[65536];
	while (total < (1 << 20)) {
		ssize_t n = weft_read(b, buf, sizeof(buf));
		cr_assert_gt(n, 0);
		for (ssize_t i = 0; i < n; i++)
			cr_assert_eq(buf[i], 'x');
		total += (size_t)n;
	}
	void *res;
	cr_assert_eq(weft_join(t, &res), 0);
	cr_assert_eq((long)res, 1 << 20);
	weft_io_close(a);
	weft_io_close(b);
	/* nothing to read on a fresh pair: the wait times out */
	pair(rt, &a, &b);
	cr_assert_eq(weft_io_wait(b, WEFT_IO_READABLE, 10 * 1000000ull), -ETIMEDOUT);
	weft_io_close(a);
	weft_io_close(b);
	wt_rt_destroy(rt);
}

/*
 * Regression (the soak stall): a TCP socket registered before connect()
 * reports EPOLLHUP once (an unconnected socket is "hung up"). If that
 * stale HUP stayed in the readiness word, every readable wait returned at
 * once, the reader spun on read() = EAGAIN without ever yielding, and on
 * one worker the echo server it waits for never ran. The reader must make
 * progress: readiness follows the socket's current state, and readiness
 * polls consume the cooperative budget.
 */
static void *echo_one(void *arg)
{
	struct weft_io *l = arg, *c;
	char ch;
	if (weft_accept(l, &c, NULL, NULL))
		return (void *)-1L;
	long rc = weft_read(c, &ch, 1) == 1 && weft_write(c, &ch, 1) == 1 ? 0 : -2;
	weft_io_close(c);
	return (void *)rc;
}

static void *register_then_connect(void *arg)
{
	struct weft_io *l = arg, *c;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || weft_io_register(g_rt, fd, &c))
		return (void *)-1L;
	weft_sleep_ns(20 * 1000000ull); /* the driver sees the unconnected HUP */
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)weft_io_local_port(l)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS)
		return (void *)-2L;
	if (weft_io_wait(c, WEFT_IO_WRITABLE, WEFT_FOREVER) < 0)
		return (void *)-3L;
	char ch = 'q';
	if (weft_write(c, &ch, 1) != 1)
		return (void *)-4L;
	ch = 0;
	long rc = weft_read(c, &ch, 1) == 1 && ch == 'q' ? 0 : -5;
	weft_io_close(c);
	return (void *)rc;
}

/* A thread outside the runtime blocked in weft_read when the runtime shuts
 * down returns -ESHUTDOWN (io.h). Shutdown used to drop its waker instead
 * of waking it: it slept on for good, close could not reach it either. */
struct blocked_reader { struct weft_io *io; atomic_int done; ssize_t res; };

static void *blocked_read(void *arg)
{
	struct blocked_reader *b = arg;
	char c;
	b->res = weft_read(b->io, &c, 1);
	atomic_store(&b->done, 1);
	return NULL;
}

Test(io, shutdown_wakes_a_thread_blocked_in_read, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct blocked_reader b = { .res = 99 };
	cr_assert_eq(weft_io_register(rt, p[0], &b.io), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, blocked_read, &b), 0);
	wt_sleep_ms(100);
	cr_assert_eq(atomic_load(&b.done), 0, "the read did not wait");
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	for (int i = 0; i < 2000 && !atomic_load(&b.done); i++)
		wt_sleep_ms(1);
	cr_assert_eq(atomic_load(&b.done), 1, "the reader still sleeps 2 s after shutdown");
	pthread_join(th, NULL);
	cr_assert_eq(b.res, -ESHUTDOWN, "read returned %zd", b.res);
	cr_assert_eq(weft_io_close(b.io), 0);
	close(p[1]);
	cr_assert_eq(weft_runtime_destroy(rt), 0);
}

/* The same read in a blocking-pool job: shutdown wakes it (-ESHUTDOWN) and
 * returns. It used to mark the registrations only after it had waited for
 * the pool, which such a job holds up, and no driver pass came once the
 * workers had stopped: shutdown said -ETIMEDOUT, and destroy hung (a
 * review's programs). */
static void *read_then_close(void *arg)
{
	struct blocked_reader *b = arg;
	blocked_read(b);
	weft_io_close(b->io); /* a pool job cleans up after itself */
	return NULL;
}

Test(io, shutdown_wakes_a_blocking_job_blocked_in_read, .timeout = WT_TMO(20))
{
	for (int destroy = 0; destroy < 2; destroy++) {
		struct weft_runtime *rt = wt_rt_create(1);
		int p[2];
		cr_assert_eq(pipe(p), 0);
		struct blocked_reader b = { .res = 99 };
		cr_assert_eq(weft_io_register(rt, p[0], &b.io), 0);
		cr_assert_eq(weft_spawn_blocking(rt, read_then_close, &b, NULL), 0);
		wt_sleep_ms(100);
		cr_assert_eq(atomic_load(&b.done), 0, "the read did not wait");
		if (!destroy) {
			int rc = weft_runtime_shutdown(rt, 3000 * 1000000ull);
			cr_assert_eq(rc, 0, "shutdown: %d (%s): the job's read was not woken", rc,
				     weft_strerror(rc));
		}
		wt_rt_destroy(rt); /* with the job's registration closed by the job */
		cr_assert_eq(atomic_load(&b.done), 1);
		cr_assert_eq(b.res, -ESHUTDOWN, "read returned %zd", b.res);
		close(p[1]);
	}
}

/* The same read in a fiber's block_in_place fn, on a thread that holds no
 * core: shutdown waits for every worker thread, that one included, so it
 * must wake the read itself when it stops the workers (no driver pass
 * comes after that). Before: shutdown said -ETIMEDOUT, and destroy hung
 * (found by the nineteenth session's review of the I/O layer). */
static void *bip_fiber(void *arg)
{
	return (void *)(intptr_t)weft_block_in_place(blocked_read, arg, NULL);
}

Test(io, shutdown_wakes_a_block_in_place_fn_blocked_in_read, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct blocked_reader b = { .res = 99 };
	cr_assert_eq(weft_io_register(rt, p[0], &b.io), 0);
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, bip_fiber, &b, &t), 0);
	wt_sleep_ms(100);
	cr_assert_eq(atomic_load(&b.done), 0, "the read did not wait");
	int rc = weft_runtime_shutdown(rt, 3000 * 1000000ull);
	cr_assert_eq(rc, 0, "shutdown: %d (%s): the fn's read was not woken", rc, weft_strerror(rc));
	cr_assert_eq(atomic_load(&b.done), 1);
	cr_assert_eq(b.res, -ESHUTDOWN, "read returned %zd", b.res);
	void *r;
	/* shutdown cancelled the fiber, which returned after its fn: -EINTR
	 * and what it returned (weft.h) */
	rc = weft_join(t, &r);
	cr_assert_eq(rc, -EINTR, "the fiber returned after its fn: join %d", rc);
	cr_assert_eq((intptr_t)r, 0, "block_in_place said %ld", (long)(intptr_t)r);
	cr_assert_eq(weft_io_close(b.io), 0);
	close(p[1]);
	wt_rt_destroy(rt);
}

/* weft_io_close while a weft_read on another thread is past its checks
 * and about to read(2): the fd stays open until that call is done, so the
 * call cannot read a file that took the number over. close(2) at once
 * let a new pipe get the number and the in-flight read return its bytes
 * (6 of 6 runs in a review's program). */
static struct weft_io *g_reuse_io;
static char g_reuse_buf[64];
static atomic_long g_reuse_res;
static atomic_int g_reuse_done;

static void *reuse_reader(void *arg)
{
	(void)arg;
	atomic_store(&g_reuse_res, weft_read(g_reuse_io, g_reuse_buf, sizeof(g_reuse_buf) - 1));
	atomic_store(&g_reuse_done, 1);
	return NULL;
}

Test(io, close_during_a_read_never_reaches_a_reused_fd, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(weft_io_register(rt, p[0], &g_reuse_io), 0);
	cr_assert_eq(write(p[1], "old", 3), 3);
	int oldfd = p[0];
	atomic_store(&stall_fd, oldfd);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, reuse_reader, NULL), 0);
	while (!atomic_load(&stalled))
		usleep(100);
	cr_assert_eq(weft_io_close(g_reuse_io), 0);
	close(p[1]);
	cr_assert_neq(fcntl(oldfd, F_GETFD), -1, "fd closed under a read in progress");
	int q[2];
	cr_assert_eq(pipe(q), 0); /* a file opened meanwhile */
	cr_assert_neq(q[0], oldfd);
	cr_assert_neq(q[1], oldfd);
	cr_assert_eq(write(q[1], "SECRET", 6), 6);
	atomic_store(&stall_resume, 1);
	pthread_join(th, NULL);
	long res = atomic_load(&g_reuse_res);
	cr_assert_eq(res, 3, "the read returned %ld (\"%.*s\")", res, res > 0 ? (int)res : 0,
		     g_reuse_buf);
	cr_assert_eq(memcmp(g_reuse_buf, "old", 3), 0);
	/* the last reference closes the fd: the read's (epoll), or the
	 * io_uring poll's once its cancel completes at a driver pass */
	int gone = 0;
	for (int i = 0; i < 2000 && !gone; i++) {
		gone = fcntl(oldfd, F_GETFD) == -1 && errno == EBADF;
		if (!gone)
			wt_sleep_ms(1);
	}
	cr_assert(gone, "the fd stayed open after the last call on it");
	close(q[0]);
	close(q[1]);
	wt_rt_destroy(rt);
}

/* Several blocking calls waiting on one registration and direction (two
 * fibers accepting on one listener): each is woken. The poll form's one
 * waker per direction kept only the last waiter's, and the first slept on
 * through data and close alike (6 of 6 runs in a review's program). */
static struct weft_io *g_multi_io;
static atomic_int g_multi_done;
static atomic_long g_multi_bytes, g_multi_badf;

static void *multi_reader(void *arg)
{
	(void)arg;
	char c;
	ssize_t n = weft_read(g_multi_io, &c, 1);
	if (n == 1)
		atomic_fetch_add(&g_multi_bytes, 1);
	else if (n == -EBADF)
		atomic_fetch_add(&g_multi_badf, 1);
	atomic_fetch_add(&g_multi_done, 1);
	return NULL;
}

static void multi_wait_done(int want, const char *what)
{
	for (int i = 0; i < 3000 && atomic_load(&g_multi_done) < want; i++)
		wt_sleep_ms(1);
	cr_assert_eq(atomic_load(&g_multi_done), want, "%s: %d of %d waiters returned", what,
		     atomic_load(&g_multi_done), want);
}

static void multi_waiters(bool fibers)
{
	enum { N = 6 };
	struct weft_runtime *rt = wt_rt_create(2);
	atomic_store(&g_multi_done, 0);
	atomic_store(&g_multi_bytes, 0);
	atomic_store(&g_multi_badf, 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(weft_io_register(rt, p[0], &g_multi_io), 0);
	/* one event first, drained outside weft: later reads wait for edges */
	char c;
	cr_assert_eq(write(p[1], "x", 1), 1);
	wt_sleep_ms(30);
	cr_assert_eq(read(p[0], &c, 1), 1);
	pthread_t th[N];
	struct weft_task *t[N];
	for (long i = 0; i < N; i++) {
		if (fibers)
			cr_assert_eq(weft_spawn(rt, multi_reader, NULL, &t[i]), 0);
		else
			cr_assert_eq(pthread_create(&th[i], NULL, multi_reader, NULL), 0);
	}
	wt_sleep_ms(100);
	cr_assert_eq(atomic_load(&g_multi_done), 0);
	/* three bytes, one at a time: three waiters get one each */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(write(p[1], "abc" + i, 1), 1);
		multi_wait_done(i + 1, "data");
	}
	cr_assert_eq(atomic_load(&g_multi_bytes), 3);
	/* close wakes every one still waiting, with -EBADF */
	cr_assert_eq(weft_io_close(g_multi_io), 0);
	multi_wait_done(N, "close");
	cr_assert_eq(atomic_load(&g_multi_badf), N - 3);
	for (int i = 0; i < N; i++) {
		if (fibers)
			cr_assert_eq(weft_join(t[i], NULL), 0);
		else
			pthread_join(th[i], NULL);
	}
	close(p[1]);
	wt_rt_destroy(rt);
}

Test(io, many_threads_wait_on_one_direction, .timeout = WT_TMO(30))
{
	multi_waiters(false);
}

Test(io, many_fibers_wait_on_one_direction, .timeout = WT_TMO(30))
{
	multi_waiters(true);
}

/* weft_write to a pipe whose reader is gone: -EPIPE (io.h), not a process
 * killed by SIGPIPE (exit 141 before: sockets had MSG_NOSIGNAL, pipes
 * nothing). From a thread and from a fiber; no SIGPIPE is left pending
 * and the thread's signal mask is as it was. */
static void *write_to_widowed_pipe(void *arg)
{
	struct weft_io *io = arg;
	return (void *)(intptr_t)weft_write(io, "x", 1);
}

Test(io, write_to_a_pipe_without_reader_is_epipe, .timeout = WT_TMO(20))
{
	signal(SIGPIPE, SIG_DFL);
	struct weft_runtime *rt = wt_rt_create(2);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, p[1], &io), 0);
	close(p[0]);
	sigset_t before, after, pending;
	cr_assert_eq(pthread_sigmask(SIG_SETMASK, NULL, &before), 0);
	cr_assert_eq((intptr_t)write_to_widowed_pipe(io), -EPIPE);
	cr_assert_eq(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
	cr_assert_eq(sigismember(&after, SIGPIPE), sigismember(&before, SIGPIPE));
	cr_assert_eq(sigpending(&pending), 0);
	cr_assert(!sigismember(&pending, SIGPIPE), "a SIGPIPE was left pending");
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, write_to_widowed_pipe, io, &t), 0);
	void *r;
	cr_assert_eq(weft_join(t, &r), 0);
	cr_assert_eq((intptr_t)r, -EPIPE);
	cr_assert_eq(weft_io_close(io), 0);
	wt_rt_destroy(rt);
}

Test(io, stale_hup_does_not_starve_the_worker, .timeout = WT_TMO(20))
{
	g_rt = wt_rt_create(1);
	struct weft_io *l;
	cr_assert_eq(weft_tcp_listen(g_rt, "127.0.0.1", 0, 16, &l), 0);
	struct weft_task *srv, *cli;
	cr_assert_eq(weft_spawn(g_rt, echo_one, l, &srv), 0);
	cr_assert_eq(weft_spawn(g_rt, register_then_connect, l, &cli), 0);
	void *r1, *r2;
	cr_assert_eq(weft_join(cli, &r1), 0);
	cr_assert_eq(weft_join(srv, &r2), 0);
	cr_assert_eq((long)r1, 0);
	cr_assert_eq((long)r2, 0);
	weft_io_close(l);
	wt_rt_destroy(g_rt);
}

Test(io, errors, .timeout = WT_TMO(10))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(NULL, 0, &io), -EINVAL);
	cr_assert_eq(weft_io_register(rt, -1, &io), -EINVAL);
	cr_assert_eq(weft_io_register(rt, 12345, &io), -EBADF);
	cr_assert_eq(weft_tcp_connect(rt, "127.0.0.1", 1, &io), -ECONNREFUSED);
	cr_assert_eq(weft_io_wait(NULL, WEFT_IO_READABLE, 0), -EINVAL);
	cr_assert_lt(weft_tcp_listen(rt, "no.such.host.invalid", 0, 1, &io), 0);
	wt_rt_destroy(rt);
}

/*
 * Readiness without a relay: a fiber echoes on one end of a socket pair
 * while the test thread, outside the runtime, sends one byte at a time and
 * waits for the echo, with pauses so that every worker parks between round
 * trips. The worker asleep in the driver receives each event and runs the
 * woken fiber itself: nothing goes through the inject queue (before, every
 * event was pushed there from a thread without a core: one remote
 * schedule per round trip).
 */
Test(io, event_runs_on_the_driver_thread_without_inject, .timeout = WT_TMO(30))
{
	enum { ROUNDS = 200 };
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *a;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, echo_conn, a, &h), 0);
	char c = 'x', back;
	/* first round trip: the fiber is running and waiting on its read */
	cr_assert_eq(write(sv[1], &c, 1), 1);
	cr_assert_eq(read(sv[1], &back, 1), 1);
	struct weft_metrics *m;
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	uint64_t before = m->remote_schedule_count;
	weft_metrics_free(m);
	for (int i = 0; i < ROUNDS; i++) {
		wt_sleep_ms(1); /* both workers park */
		c = (char)('a' + i % 26);
		cr_assert_eq(write(sv[1], &c, 1), 1);
		cr_assert_eq(read(sv[1], &back, 1), 1);
		cr_assert_eq(back, c);
	}
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	uint64_t remote = m->remote_schedule_count - before;
	weft_metrics_free(m);
	cr_log_info("remote schedules over %d event round trips: %llu", ROUNDS,
		    (unsigned long long)remote);
	cr_assert_lt(remote, ROUNDS / 10, "%llu of %d wakes went through the inject queue",
		     (unsigned long long)remote, ROUNDS);
	close(sv[1]);
	cr_assert_eq(weft_join(h, NULL), 0);
	wt_rt_destroy(rt);
}

/*
 * What the driver left vacant by the above must still see: the worker runs
 * a long poll after the event (every other worker asleep, nobody in the
 * driver). A task it wakes into its LIFO slot is rescued by another worker
 * during the poll, and a timer it sets fires during the poll: each calls a
 * parked worker to take the driver and its watch.
 */
enum { VAC_SPIN_MS = 300, VAC_TIMER_MS = 20, VAC_RESCUE_SLACK_MS = 50 };

struct vac {
	struct weft_io *io;
	int mode; /* 0: wake y, 1: set a timer */
	struct weft_timer timer;
	weft_waker y_waker;
	_Atomic int y_stored;
	_Atomic uint64_t y_ran_ns, spin_end_ns;
	_Atomic int timer_fired_in_poll; /* -1: not yet known */
};

static enum weft_poll vac_y(void *state, struct weft_cx *cx)
{
	struct vac *v = state;
	if (!atomic_load(&v->y_stored)) {
		v->y_waker = weft_waker_clone(weft_cx_waker(cx));
		atomic_store(&v->y_stored, 1);
		return WEFT_PENDING;
	}
	atomic_store(&v->y_ran_ns, wt_now_ns());
	return WEFT_READY;
}

static enum weft_poll vac_x(void *state, struct weft_cx *cx)
{
	struct vac *v = state;
	struct weft_io_ready r;
	if (weft_io_poll_ready(v->io, cx, WEFT_IO_READABLE, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	uint64_t deadline = wt_now_ns() + VAC_TIMER_MS * 1000000ull;
	if (v->mode == 0)
		weft_waker_wake(&v->y_waker);
	else
		cr_assert_eq(weft_timer_poll(&v->timer, cx, deadline), WEFT_PENDING);
	uint64_t end = wt_now_ns() + VAC_SPIN_MS * 1000000ull;
	while (wt_now_ns() < end)
		; /* a poll the worker cannot leave */
	atomic_store(&v->spin_end_ns, wt_now_ns());
	if (v->mode == 1) {
		/* the same poll: READY only if the timer fired meanwhile */
		enum weft_poll p = weft_timer_poll(&v->timer, cx, deadline);
		atomic_store(&v->timer_fired_in_poll, p == WEFT_READY);
		if (p == WEFT_PENDING)
			weft_timer_cancel(&v->timer);
	}
	return WEFT_READY;
}

static void vacant_driver_case(int mode)
{
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct vac v = { .mode = mode, .timer = WEFT_TIMER_INIT };
	atomic_init(&v.timer_fired_in_poll, -1);
	cr_assert_eq(weft_io_register(rt, sv[0], &v.io), 0);
	struct weft_task *x, *y = NULL;
	if (mode == 0) {
		cr_assert_eq(weft_spawn_poll(rt, vac_y, &v, NULL, &y), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&v.y_stored), WT_LONG_MS));
	}
	cr_assert_eq(weft_spawn_poll(rt, vac_x, &v, NULL, &x), 0);
	wt_sleep_ms(50); /* x waits on its read; every worker parks */
	char c = 'x';
	cr_assert_eq(write(sv[1], &c, 1), 1);
	cr_assert_eq(weft_join(x, NULL), 0);
	if (mode == 0) {
		cr_assert_eq(weft_join(y, NULL), 0);
		uint64_t ran = atomic_load(&v.y_ran_ns), end = atomic_load(&v.spin_end_ns);
		cr_log_info("the woken task ran %.1f ms before the long poll ended",
			    ran < end ? (double)(end - ran) / 1e6 : -(double)(ran - end) / 1e6);
		/* Rescued, the task runs ~15 ms into the poll (the 10 ms stall
		 * threshold, then a watcher's 5 ms look); not rescued, after the
		 * poll ends. The bound was half the poll: on a loaded 2-vCPU
		 * machine the rescuer's thread, woken, waited 110-130 ms for a
		 * CPU (seen in 60 runs beside a busy loop and other tests), and
		 * once past 150 (test_io under io_uring, ~1 run in 50 in CI). */
		cr_assert_lt(ran, end - VAC_RESCUE_SLACK_MS * 1000000ull,
			     "the task woken into the LIFO slot waited for the long poll");
	} else {
		cr_assert_eq(atomic_load(&v.timer_fired_in_poll), 1,
			     "a %d ms timer set before a %d ms poll did not fire during it",
			     VAC_TIMER_MS, VAC_SPIN_MS);
	}
	weft_io_close(v.io);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/*
 * Every worker busy with short polls (each yields, so none parks and nobody
 * sleeps in the driver): readiness is seen by the non-blocking driver poll
 * at maintenance, which now skips I/O when the core parked since the last
 * one. The reader must still run within a few intervals of the write.
 */
/* A driver that does not look at I/O while its workers are busy shows
 * the readiness only when they stop, BUSY_MS - BUSY_WRITE_MS after the
 * write; the bound is half of that. At 400 ms (a 150 ms bound) a loaded
 * host failed it about once in 20 runs with weft seeing it in time. */
enum { BUSY_MS = 1000, BUSY_WRITE_MS = 100 };

struct busy_io {
	struct weft_io *io;
	_Atomic uint64_t read_ns, stop_ns;
};

static enum weft_poll busy_spinner(void *state, struct weft_cx *cx)
{
	struct busy_io *b = state;
	uint64_t now = wt_now_ns();
	if (now >= atomic_load(&b->stop_ns))
		return WEFT_READY;
	while (wt_now_ns() < now + 10000)
		; /* a 10 us poll */
	weft_waker_wake_by_ref(weft_cx_waker(cx));
	return WEFT_PENDING;
}

static enum weft_poll busy_reader(void *state, struct weft_cx *cx)
{
	struct busy_io *b = state;
	struct weft_io_ready r;
	if (weft_io_poll_ready(b->io, cx, WEFT_IO_READABLE, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_store(&b->read_ns, wt_now_ns());
	return WEFT_READY;
}

Test(io, readiness_seen_while_every_worker_runs_short_polls, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct busy_io b = { 0 };
	cr_assert_eq(weft_io_register(rt, sv[0], &b.io), 0);
	struct weft_task *reader, *spin[4];
	cr_assert_eq(weft_spawn_poll(rt, busy_reader, &b, NULL, &reader), 0);
	wt_sleep_ms(20); /* the reader waits */
	atomic_store(&b.stop_ns, wt_now_ns() + BUSY_MS * 1000000ull);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_spawn_poll(rt, busy_spinner, &b, NULL, &spin[i]), 0);
	wt_sleep_ms(BUSY_WRITE_MS);
	uint64_t wrote = wt_now_ns();
	char c = 'x';
	cr_assert_eq(write(sv[1], &c, 1), 1);
	cr_assert_eq(weft_join(reader, NULL), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_join(spin[i], NULL), 0);
	uint64_t late = atomic_load(&b.read_ns) - wrote;
	cr_log_info("readiness seen %.2f ms after the write", (double)late / 1e6);
	cr_assert_lt(late, (BUSY_MS - BUSY_WRITE_MS) / 2 * 1000000ull,
		     "readiness waited %.1f ms for a worker to park", (double)late / 1e6);
	weft_io_close(b.io);
	close(sv[1]);
	wt_rt_destroy(rt);
}

Test(io, vacant_driver_still_rescues_a_lifo_task, .timeout = WT_TMO(30))
{
	vacant_driver_case(0);
}

Test(io, vacant_driver_still_fires_a_timer_set_after, .timeout = WT_TMO(30))
{
	vacant_driver_case(1);
}

/*
 * A short read on a stream socket shows its buffer ran dry: the next read
 * waits for the driver's edge instead of making a read(2) that returns
 * EAGAIN. 100 request/response rounds, the client pausing 1 ms before
 * each: before, every round cost one EAGAIN read (100); now at most the
 * first read of the new registration may.
 */
static void *echo_rounds(void *arg)
{
	struct weft_io *io = arg;
	char buf[64];
	for (;;) {
		ssize_t n = weft_read(io, buf, sizeof(buf));
		if (n <= 0 || weft_write(io, buf, (size_t)n) != n)
			break;
	}
	return NULL;
}

/* A connected TCP pair on the loopback: sv[0] the accepted end. */
static void tcp_pair(int sv[2])
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(l, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	sv[1] = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(sv[1], (struct sockaddr *)&a, sizeof(a)), 0);
	sv[0] = accept(l, NULL, NULL);
	cr_assert_geq(sv[0], 0);
	close(l);
	int one = 1;
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Round trips on one TCP connection to an echo fiber, the client pausing so
 * that both workers park between them (as test event_runs_on_the_driver_
 * thread_without_inject): the worker that receives the event runs the
 * fiber and goes back to the driver; it wakes no other worker to take the
 * driver in its place. Before, each round relayed the driver: the other
 * worker was woken (a futex wake), found nothing to do and parked again (a
 * noop park and a futex wait): one noop per round trip, 200. (TCP, not a
 * Unix socketpair: there the client's read of the echo gives the server's
 * end an EPOLLOUT edge, one wake of the driver's own sleeper per round.)
 */
Test(io, event_on_an_idle_runtime_wakes_no_other_worker, .timeout = WT_TMO(30))
{
	enum { ROUNDS = 200 };
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	tcp_pair(sv);
	struct weft_io *a;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, echo_conn, a, &h), 0);
	char c = 'x', back;
	cr_assert_eq(write(sv[1], &c, 1), 1);
	cr_assert_eq(read(sv[1], &back, 1), 1);
	struct weft_metrics *m;
	wt_sleep_ms(20);
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	uint64_t noops = 0, parks = 0;
	for (unsigned i = 0; i < m->workers; i++) {
		noops -= m->worker[i].noop_count;
		parks -= m->worker[i].park_count;
	}
	weft_metrics_free(m);
	for (int i = 0; i < ROUNDS; i++) {
		wt_sleep_ms(1); /* both workers park */
		c = (char)('a' + i % 26);
		cr_assert_eq(write(sv[1], &c, 1), 1);
		cr_assert_eq(read(sv[1], &back, 1), 1);
		cr_assert_eq(back, c);
	}
	wt_sleep_ms(20);
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	for (unsigned i = 0; i < m->workers; i++) {
		noops += m->worker[i].noop_count;
		parks += m->worker[i].park_count;
	}
	weft_metrics_free(m);
	cr_log_info("over %d round trips: %llu parks, %llu of them noops", ROUNDS,
		    (unsigned long long)parks, (unsigned long long)noops);
	cr_assert_lt(noops, ROUNDS / 10, "%llu workers woke for nothing over %d round trips",
		     (unsigned long long)noops, ROUNDS);
	close(sv[1]);
	cr_assert_eq(weft_join(h, NULL), 0);
	wt_rt_destroy(rt);
}

Test(io, short_read_saves_the_eagain_read, .timeout = WT_TMO(30))
{
	enum { ROUNDS = 100 };
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	tcp_pair(sv);
	struct weft_io *a;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	atomic_store(&watch_eagain, 0);
	atomic_store(&watch_fd, sv[0]);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, echo_rounds, a, &h), 0);
	for (int i = 0; i < ROUNDS; i++) {
		wt_sleep_ms(1);
		char c = (char)('a' + i % 26), back;
		cr_assert_eq(write(sv[1], &c, 1), 1);
		cr_assert_eq(read(sv[1], &back, 1), 1);
		cr_assert_eq(back, c);
	}
	close(sv[1]);
	cr_assert_eq(weft_join(h, NULL), 0);
	atomic_store(&watch_fd, -1);
	int eagain = atomic_load(&watch_eagain);
	cr_log_info("EAGAIN reads over %d rounds: %d", ROUNDS, eagain);
	if (weft_runtime_io_driver(rt) == WEFT_IO_DRIVER_URING) {
		/* io_uring's masks are wakeup keys (every TCP arrival says
		 * EPOLLPRI): a short read is not trusted there (io.c). If this
		 * fails, the optimisation was turned on under io_uring, where
		 * a read stopped at an urgent mark would hang. */
		cr_assert_geq(eagain, ROUNDS / 2, "io_uring: %d of %d rounds made an EAGAIN read",
			      eagain, ROUNDS);
	} else {
		cr_assert_leq(eagain, 2, "%d of %d rounds made a read that found nothing", eagain,
			      ROUNDS);
	}
	weft_io_close(a);
	wt_rt_destroy(rt);
}

/* Where a short transfer does not mean "dry", the next call must not wait
 * for an edge that never comes: a second datagram queued behind a short
 * one, and bytes a peek left in place (TCP). Each second call returns at once
 * (the read deadline of 2 s would otherwise end it: -ETIMEDOUT, or the
 * timeout's own check of the fd, after 2 s). */
struct two_reads { struct weft_io *io; int flags; ssize_t r1, r2; uint64_t ns2; char buf[64]; };

static void *read_twice(void *arg)
{
	struct two_reads *t = arg;
	t->r1 = weft_recv(t->io, t->buf, sizeof(t->buf), t->flags);
	uint64_t t0 = wt_now_ns();
	t->r2 = weft_recv(t->io, t->buf, sizeof(t->buf), 0);
	t->ns2 = wt_now_ns() - t0;
	return NULL;
}

static void check_second_read_is_immediate(bool tcp, int type, int flags, ssize_t want1,
					   ssize_t want2)
{
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	if (tcp)
		tcp_pair(sv);
	else
		cr_assert_eq(socketpair(AF_UNIX, type, 0, sv), 0);
	struct weft_io *a;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	cr_assert_eq(weft_io_set_deadline(a, WEFT_IO_READABLE, wt_now_ns() + 2000000000ull), 0);
	if (type == SOCK_DGRAM) {
		cr_assert_eq(write(sv[1], "aaaa", 4), 4);
		cr_assert_eq(write(sv[1], "bbbbbbbb", 8), 8);
	} else {
		cr_assert_eq(write(sv[1], "cccccc", 6), 6);
	}
	wt_sleep_ms(20); /* the registration's first edge has come */
	struct two_reads t = { .io = a, .flags = flags };
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, read_twice, &t, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(t.r1, want1);
	cr_assert_eq(t.r2, want2, "second read: %zd", t.r2);
	cr_assert_lt(t.ns2, 500000000ull, "the second read waited %llu ms for an edge",
		     (unsigned long long)(t.ns2 / 1000000));
	weft_io_close(a);
	close(sv[1]);
	wt_rt_destroy(rt);
}

Test(io, short_datagram_does_not_hide_the_next, .timeout = WT_TMO(30))
{
	check_second_read_is_immediate(false, SOCK_DGRAM, 0, 4, 8);
}

Test(io, short_peek_does_not_hide_the_bytes, .timeout = WT_TMO(30))
{
	check_second_read_is_immediate(true, SOCK_STREAM, MSG_PEEK, 6, 6);
}

/* A Unix stream socket: two writes, the first with a descriptor attached
 * (SCM_RIGHTS); a read stops after the first chunk, short, with the second
 * still queued: the next read must not wait for an edge. */
struct unix_reads { struct weft_io *io; ssize_t r1, r2; uint64_t ns2; };

static void *unix_read_twice(void *arg)
{
	struct unix_reads *t = arg;
	char buf[64];
	t->r1 = weft_read(t->io, buf, sizeof(buf));
	uint64_t t0 = wt_now_ns();
	t->r2 = weft_read(t->io, buf, sizeof(buf));
	t->ns2 = wt_now_ns() - t0;
	return NULL;
}

Test(io, short_unix_read_does_not_hide_the_rest, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *a;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	cr_assert_eq(weft_io_set_deadline(a, WEFT_IO_READABLE, wt_now_ns() + 2000000000ull), 0);
	int passed = dup(1);
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = "aaaa", .iov_len = 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &passed, sizeof(int));
	cr_assert_eq(sendmsg(sv[1], &mh, 0), 4);
	cr_assert_eq(write(sv[1], "bbbbbbbb", 8), 8);
	close(passed);
	wt_sleep_ms(20);
	struct unix_reads t = { .io = a };
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, unix_read_twice, &t, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(t.r1, 4, "first read: %zd (stops after the descriptor's chunk)", t.r1);
	cr_assert_eq(t.r2, 8, "second read: %zd", t.r2);
	cr_assert_lt(t.ns2, 500000000ull, "the second read waited %llu ms for an edge",
		     (unsigned long long)(t.ns2 / 1000000));
	weft_io_close(a);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/*
 * A connected UDP socket whose peer port is closed: a send draws an ICMP
 * port unreachable, which sets the socket's error (EPOLLERR), and the next
 * recv returns it (-ECONNREFUSED), consuming it. ERROR used to stay in the
 * readiness word until the next event, which edge-triggered epoll never
 * sent: a later recv found EAGAIN, its wait returned at once on ERROR, and
 * it spun until its deadline (0.6 s of CPU in a 1 s timed recv, a review's
 * program). The poll form's clear after EAGAIN left ERROR set the same way.
 */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct weft_io *udp_to_closed_port(struct weft_runtime *rt)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(s, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s); /* the port is closed now */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, fd, &io), 0);
	return io;
}

/* Send, wait for the ICMP error, and consume it with a recv. */
static void draw_and_consume_udp_error(struct weft_io *io)
{
	cr_assert_eq(weft_send(io, "x", 1, 0), 1);
	int m = weft_io_wait(io, WEFT_IO_READABLE, 2000000000ull);
	cr_assert_gt(m, 0, "weft_io_wait: %d", m);
	cr_assert(m & WEFT_IO_ERROR, "no error came (mask %#x)", (unsigned)m);
	char b[8];
	ssize_t r = weft_recv(io, b, sizeof(b), 0);
	cr_assert_eq(r, -ECONNREFUSED, "recv: %zd", r);
}

struct after_error { struct weft_io *io; atomic_int step; unsigned first, second; int eagain; };

static enum weft_poll poll_after_error(void *state, struct weft_cx *cx)
{
	struct after_error *p = state;
	if (atomic_load(&p->step))
		return WEFT_READY; /* woken by the close */
	struct weft_io_ready r = { 0 };
	if (weft_io_poll_ready(p->io, cx, WEFT_IO_READABLE, &r) == WEFT_READY) {
		p->first = r.mask;
		char b[8];
		p->eagain = recv(weft_io_fd(p->io), b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
		weft_io_clear_ready(p->io, r);
		if (weft_io_poll_ready(p->io, cx, WEFT_IO_READABLE, &r) == WEFT_READY)
			p->second = r.mask;
	}
	atomic_store(&p->step, 1);
	return p->second ? WEFT_READY : WEFT_PENDING;
}

Test(io, consumed_udp_error_does_not_spin_the_next_recv, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_io *io = udp_to_closed_port(rt);
	draw_and_consume_udp_error(io);
	/* nothing will come: the deadline ends the recv after 1 s */
	cr_assert_eq(weft_io_set_deadline(io, WEFT_IO_READABLE, wt_now_ns() + 1000000000ull), 0);
	char b[8];
	uint64_t c0 = thread_cpu_ns(), t0 = wt_now_ns();
	ssize_t r = weft_recv(io, b, sizeof(b), 0);
	uint64_t cpu = thread_cpu_ns() - c0, wall = wt_now_ns() - t0;
	cr_log_info("timed recv after a consumed error: %zd, %.3f s wall, %.3f s CPU", r,
		    (double)wall / 1e9, (double)cpu / 1e9);
	cr_assert_eq(r, -ETIMEDOUT, "recv: %zd", r);
	cr_assert_lt(cpu, 200000000ull, "the recv spun: %.3f s of CPU in %.3f s", (double)cpu / 1e9,
		     (double)wall / 1e9);
	/* the poll form: an EAGAIN then weft_io_clear_ready clears ERROR too */
	cr_assert_eq(weft_io_set_deadline(io, WEFT_IO_READABLE, WEFT_FOREVER), 0);
	draw_and_consume_udp_error(io);
	struct after_error p = { .io = io };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, poll_after_error, &p, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&p.step), WT_LONG_MS));
	cr_assert(p.first & WEFT_IO_ERROR, "the poll form saw %#x, not the stale error", p.first);
	cr_assert(p.eagain, "the socket had something to read");
	cr_assert_eq(p.second, 0, "still ready (%#x) after EAGAIN and weft_io_clear_ready",
		     p.second);
	cr_assert_eq(weft_io_close(io), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	wt_rt_destroy(rt);
}

/*
 * Under io_uring a registration's poll holds a reference, dropped when a
 * driver pass reads the poll's last completion. After shutdown no pass
 * comes: weft_io_close returned 0 and never closed the fd (a review's
 * program; the kernel's poll kept the file open too), and a close just
 * before shutdown could be left the same way. Shutdown now drops what the
 * polls hold, and a later close its own. Under epoll there is no such
 * reference: the same checks hold trivially.
 */
static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static bool peer_sees_no_reader(int wfd)
{
	struct pollfd p = { .fd = wfd, .events = POLLOUT };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

Test(io, close_after_shutdown_closes_the_fd, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	enum { N = 8 };
	int open_p[N][2], closed_p[N][2];
	struct weft_io *open_io[N], *closed_io[N];
	for (int i = 0; i < N; i++) {
		cr_assert_eq(pipe(open_p[i]), 0);
		cr_assert_eq(pipe(closed_p[i]), 0);
		cr_assert_eq(weft_io_register(rt, open_p[i][0], &open_io[i]), 0);
		cr_assert_eq(weft_io_register(rt, closed_p[i][0], &closed_io[i]), 0);
	}
	wt_sleep_ms(20); /* the polls are armed */
	/* closed just before shutdown: the polls' last completions may not
	 * have been read */
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_io_close(closed_io[i]), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, 3000 * 1000000ull), 0);
	for (int i = 0; i < N; i++)
		cr_assert(fd_is_closed(closed_p[i][0]),
			  "fd %d, closed just before shutdown, is still open", closed_p[i][0]);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_io_close(open_io[i]), 0);
		cr_assert(fd_is_closed(open_p[i][0]), "weft_io_close after shutdown left fd %d open",
			  open_p[i][0]);
	}
	/* and the file itself is gone: the writers see no reader */
	for (int i = 0; i < N; i++) {
		cr_assert(WT_WAIT_UNTIL(peer_sees_no_reader(open_p[i][1]), 2000),
			  "the pipe's read end is still open somewhere");
		cr_assert(WT_WAIT_UNTIL(peer_sees_no_reader(closed_p[i][1]), 2000));
		close(open_p[i][1]);
		close(closed_p[i][1]);
	}
	wt_rt_destroy(rt);
}

/*
 * A call made after weft_io_close, before the runtime reuses the struct
 * (a fiber between two reads while another closes): -EBADF, and nothing
 * else. Its entry took the count of references from 0 to 1 and back, and
 * the registration was retired a second time: it was linked to itself on
 * the retired list, then on the slab's free list, and later registrations
 * shared one struct (a review's program: regs[78] == regs[79]).
 */
static void *nop_task(void *arg)
{
	return arg;
}

Test(io, a_call_after_close_is_ebadf_and_frees_nothing_twice, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct weft_io *io, *out;
	cr_assert_eq(weft_io_register(rt, p[0], &io), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_io_close(io), 0);
	char b[4];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(9) };
	socklen_t len = sizeof(sa);
	cr_assert_eq(weft_read(io, b, sizeof(b)), -EBADF);
	cr_assert_eq(weft_recv(io, b, sizeof(b), 0), -EBADF);
	cr_assert_eq(weft_write(io, "x", 1), -EBADF);
	cr_assert_eq(weft_send(io, "x", 1, 0), -EBADF);
	/* no system call to make: still -EBADF (under io_uring the poll's
	 * reference kept the registration, and these said 0) */
	cr_assert_eq(weft_write(io, "x", 0), -EBADF);
	cr_assert_eq(weft_send(io, "x", 0, 0), -EBADF);
	cr_assert_eq(weft_writev(io, NULL, 0), -EBADF);
	cr_assert_eq(weft_read(io, b, 0), -EBADF);
	cr_assert_eq(weft_recvfrom(io, b, sizeof(b), 0, (struct sockaddr *)&sa, &len), -EBADF);
	cr_assert_eq(weft_sendto(io, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)), -EBADF);
	cr_assert_eq(weft_io_wait(io, WEFT_IO_READABLE, 0), -EBADF);
	cr_assert_eq(weft_accept(io, &out, NULL, NULL), -EBADF);
	/* a socket that took the closed number: not its port (it was) */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(s, 0);
	if (s != p[0]) { /* usually the lowest free number is that one */
		cr_assert_eq(dup2(s, p[0]), p[0]);
		close(s);
	}
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(p[0], (struct sockaddr *)&any, sizeof(any)), 0);
	cr_assert_eq(weft_io_local_port(io), -EBADF);
	close(p[0]);
	/* a driver pass frees what was retired */
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, nop_task, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	wt_sleep_ms(50);
	enum { N = 80 };
	struct weft_io *regs[N];
	int fds[N][2];
	for (int i = 0; i < N; i++) {
		cr_assert_eq(pipe(fds[i]), 0);
		cr_assert_eq(weft_io_register(rt, fds[i][0], &regs[i]), 0);
		for (int k = 0; k < i; k++)
			cr_assert_neq(regs[k], regs[i], "registrations %d and %d share a struct", k, i);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_io_close(regs[i]), 0);
		close(fds[i][1]);
	}
	close(p[1]);
	wt_rt_destroy(rt);
}

/* Found by a review (io_uring): weft_io_close returned 0 while the fd
 * stayed open until a driver pass read the poll's last completion - with
 * the only worker busy, until its poll ended (a child's stdin "closed"
 * that way saw EOF 1.95 s late). The pipe's reader must see the end at
 * once. */
static atomic_bool spin_started, spin_release;
static void *spin_fiber(void *arg)
{
	atomic_store(&spin_started, true);
	uint64_t until = wt_now_ns() + 3000 * 1000000ull;
	while (!atomic_load(&spin_release) && wt_now_ns() < until)
		; /* holds the only worker: no driver pass */
	return arg;
}

Test(io, close_closes_the_fd_while_every_worker_is_busy, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct weft_io *w;
	cr_assert_eq(weft_io_register(rt, p[1], &w), 0);
	wt_sleep_ms(30); /* an idle worker's driver pass arms the poll */
	atomic_store(&spin_started, false);
	atomic_store(&spin_release, false);
	struct weft_task *h;
	cr_assert_eq(weft_spawn(rt, spin_fiber, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&spin_started), WT_LONG_MS));
	cr_assert_eq(weft_io_close(w), 0);
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	uint64_t t0 = wt_now_ns();
	int n = poll(&pf, 1, 1000);
	uint64_t ms = (wt_now_ns() - t0) / 1000000;
	atomic_store(&spin_release, true);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(n, 1, "the reader saw no end of stream in 1 s: the write end is still open");
	cr_assert(pf.revents & POLLHUP, "revents %#x", pf.revents);
	cr_assert_lt(ms, 500, "the end of stream came %llu ms after the close",
		     (unsigned long long)ms);
	close(p[0]);
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------- weft_io_shutdown */

/* A TCP connection over 127.0.0.1: *c the client's end, *s the server's. */
static void tcp_conn(struct weft_runtime *rt, struct weft_io **c, struct weft_io **s)
{
	struct weft_io *l;
	cr_assert_eq(weft_tcp_listen(rt, "127.0.0.1", 0, 4, &l), 0);
	cr_assert_eq(weft_tcp_connect(rt, "127.0.0.1", (uint16_t)weft_io_local_port(l), c), 0);
	cr_assert_eq(weft_accept(l, s, NULL, NULL), 0);
	cr_assert_eq(weft_io_close(l), 0);
}

/* SHUT_WR as a client ending its request (Go's CloseWrite): the server
 * reads the request, then end of stream, and its answer still comes back;
 * our own writes after it are -EPIPE; the registration stays open. */
Test(io_shutdown, shut_wr_the_peer_reads_eof_and_still_answers, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_io *c, *s;
	tcp_conn(rt, &c, &s);
	cr_assert_eq(weft_write(c, "request", 7), 7);
	cr_assert_eq(weft_io_shutdown(c, SHUT_WR), 0);
	char buf[16];
	cr_assert_eq(weft_read_full(s, buf, 7), 7);
	cr_assert_eq(memcmp(buf, "request", 7), 0);
	cr_assert_eq(weft_read(s, buf, sizeof buf), 0, "the server sees end of stream");
	cr_assert_eq(weft_write(s, "answer", 6), 6);
	cr_assert_eq(weft_read_full(c, buf, 6), 6, "we still read after SHUT_WR");
	cr_assert_eq(memcmp(buf, "answer", 6), 0);
	cr_assert_eq(weft_write(c, "more", 4), -EPIPE);
	cr_assert_geq(weft_io_fd(c), 0, "the registration is not closed");
	cr_assert_eq(weft_io_close(s), 0);
	cr_assert_eq(weft_read(c, buf, sizeof buf), 0, "the server's end, after its answer");
	cr_assert_eq(weft_io_close(c), 0);
	wt_rt_destroy(rt);
}

Test(io_shutdown, bad_how_closed_registration_and_errors_passed_through, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_io *a, *b;
	pair(rt, &a, &b);
	cr_assert_eq(weft_io_shutdown(NULL, SHUT_WR), -EINVAL);
	cr_assert_eq(weft_io_shutdown(a, -1), -EINVAL);
	cr_assert_eq(weft_io_shutdown(a, SHUT_RDWR + 1), -EINVAL);
	cr_assert_eq(weft_io_shutdown(a, 42), -EINVAL);
	/* nothing was shut by the refusals: both ways still work */
	char c;
	cr_assert_eq(weft_write(a, "x", 1), 1);
	cr_assert_eq(weft_read(b, &c, 1), 1);
	cr_assert_eq(weft_write(b, "y", 1), 1);
	cr_assert_eq(weft_read(a, &c, 1), 1);
	cr_assert_eq(weft_io_shutdown(a, SHUT_RDWR), 0);
	cr_assert_eq(weft_read(b, &c, 1), 0, "the peer sees end of stream");
	cr_assert_eq(weft_io_close(a), 0);
	cr_assert_eq(weft_io_shutdown(a, SHUT_WR), -EBADF, "a closed registration");
	cr_assert_eq(weft_io_close(b), 0);
	/* a TCP socket never connected: shutdown(2)'s -ENOTCONN */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(weft_io_register(rt, fd, &a), 0);
	cr_assert_eq(weft_io_shutdown(a, SHUT_WR), -ENOTCONN);
	cr_assert_eq(weft_io_close(a), 0);
	/* not a socket */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(weft_io_register(rt, p[0], &a), 0);
	cr_assert_eq(weft_io_shutdown(a, SHUT_RD), -ENOTSOCK);
	cr_assert_eq(weft_io_close(a), 0);
	close(p[1]);
	/* after the runtime's shutdown it still half-closes (no wait) */
	pair(rt, &a, &b);
	cr_assert_eq(weft_runtime_shutdown(rt, 3000 * 1000000ull), 0);
	cr_assert_eq(weft_io_shutdown(a, SHUT_WR), 0);
	cr_assert_eq(read(weft_io_fd(b), &c, 1), 0, "the peer sees end of stream");
	cr_assert_eq(weft_io_close(a), 0);
	cr_assert_eq(weft_io_close(b), 0);
	wt_rt_destroy(rt);
}

struct shut_wait {
	struct weft_io *io;
	atomic_bool started;
	atomic_bool pending;   /* the poll task's waker is registered */
	atomic_long rc;
};

static void *read_in_fiber(void *arg)
{
	struct shut_wait *w = arg;
	char buf[8];
	atomic_store(&w->started, true);
	atomic_store(&w->rc, weft_read(w->io, buf, sizeof buf));
	return NULL;
}

/* More than a TCP connection's buffers hold (wmem_max and rmem_max are a
 * few MiB): the write must wait at some point. */
#define BIG_WRITE (16u << 20)

static void *write_in_fiber(void *arg)
{
	struct shut_wait *w = arg;
	static char big[BIG_WRITE];
	atomic_store(&w->started, true);
	atomic_store(&w->rc, weft_write(w->io, big, sizeof big));
	return NULL;
}

/* A poll task reading: waits with weft_io_poll_ready, then one recv. */
static enum weft_poll read_poll(void *state, struct weft_cx *cx)
{
	struct shut_wait *w = state;
	for (;;) {
		struct weft_io_ready rd;
		if (weft_io_poll_ready(w->io, cx, WEFT_IO_READABLE, &rd) == WEFT_PENDING) {
			atomic_store(&w->pending, true);
			return WEFT_PENDING;
		}
		char buf[8];
		ssize_t n = recv(weft_io_fd(w->io), buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			weft_io_clear_ready(w->io, rd);
			continue;
		}
		atomic_store(&w->rc, n < 0 ? -errno : n);
		return WEFT_READY;
	}
}

/* Fill the send buffer of io (nobody reads the peer): its WRITABLE is
 * cleared, so a weft_write waits for an event. */
static void fill_send_buffer(struct weft_io *io)
{
	static char chunk[65536];
	ssize_t n;
	while ((n = weft_send(io, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
		;
	cr_assert_eq(n, -EAGAIN);
}

/*
 * SHUT_RD on this thread wakes a read waiting in a fiber and a poll
 * task's readiness wait on the same registration: end of stream (0).
 * SHUT_WR wakes a write waiting for buffer space: -EPIPE. On a Unix
 * stream socket and on TCP, under whichever driver WEFT_IO_DRIVER picks
 * (ctest runs this file under both). A Unix socket whose send buffer is
 * full polls without EPOLLOUT after SHUT_WR: with shutdown(2) on
 * weft_io_fd alone, the writer waited for good.
 */
static void shutdown_wakes_waiters(bool tcp)
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_io *a, *b;
	if (tcp)
		tcp_conn(rt, &a, &b);
	else
		pair(rt, &a, &b);
	/* a fiber and a poll task blocked reading a */
	struct shut_wait r = { .io = a, .rc = 99 }, p = { .io = a, .rc = 99 };
	struct weft_task *rt_task, *pt_task;
	cr_assert_eq(weft_spawn(rt, read_in_fiber, &r, &rt_task), 0);
	cr_assert_eq(weft_spawn_poll(rt, read_poll, &p, NULL, &pt_task), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&r.started) && atomic_load(&p.pending), WT_LONG_MS));
	cr_assert_eq(weft_task_is_finished(rt_task), false, "the reader has nothing to read");
	cr_assert_eq(weft_io_shutdown(a, SHUT_RD), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(rt_task) && weft_task_is_finished(pt_task),
				WT_LONG_MS),
		  "%s: a read waiting when SHUT_RD came still waits (fiber %d, poll task %d)",
		  tcp ? "tcp" : "unix", weft_task_is_finished(rt_task),
		  weft_task_is_finished(pt_task));
	cr_assert_eq(weft_join(rt_task, NULL), 0);
	cr_assert_eq(weft_join(pt_task, NULL), 0);
	cr_assert_eq(atomic_load(&r.rc), 0, "the fiber's read: %ld", atomic_load(&r.rc));
	cr_assert_eq(atomic_load(&p.rc), 0, "the poll task's recv: %ld", atomic_load(&p.rc));
	cr_assert_eq(weft_io_close(a), 0);
	cr_assert_eq(weft_io_close(b), 0);
	/* a fiber blocked writing, on a fresh connection (its read side open:
	 * shut both ways, a socket polls as hung up, which wakes writers
	 * anyway); its buffer full (a Unix socket's stays
	 * full, nobody reads b; TCP's may take more as ACKs come, so the
	 * write is larger than both ends' buffers and waits later if not at
	 * once) */
	if (tcp)
		tcp_conn(rt, &a, &b);
	else
		pair(rt, &a, &b);
	fill_send_buffer(a);
	struct shut_wait w = { .io = a, .rc = 99 };
	struct weft_task *wt;
	cr_assert_eq(weft_spawn(rt, write_in_fiber, &w, &wt), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&w.started), WT_LONG_MS));
	cr_assert_eq(weft_io_shutdown(a, SHUT_WR), 0);
	cr_assert(WT_WAIT_UNTIL(weft_task_is_finished(wt), WT_LONG_MS),
		  "%s: a write waiting when SHUT_WR came still waits", tcp ? "tcp" : "unix");
	cr_assert_eq(weft_join(wt, NULL), 0);
	long wrc = atomic_load(&w.rc);
	if (tcp) /* -EPIPE, or what it wrote before SHUT_WR came (io.h) */
		cr_assert(wrc == -EPIPE || (wrc > 0 && wrc < (long)BIG_WRITE), "the write: %ld", wrc);
	else
		cr_assert_eq(wrc, -EPIPE, "the write: %ld", wrc);
	cr_assert_eq(weft_io_close(a), 0);
	cr_assert_eq(weft_io_close(b), 0);
	wt_rt_destroy(rt);
}

/*
 * A datagram socket after SHUT_RD: Linux says EAGAIN to a read, not 0,
 * and polls it as hung up (EPOLLRDHUP) for good. HUP is a state, so the
 * read's wait for READABLE ended on it at once and the read went round
 * and round (read(2) EAGAIN, wait, ...) until its deadline, a core's
 * worth of CPU - for good without a deadline; io.h says it waits for a
 * datagram. Here the reads that found nothing are counted: a handful,
 * not thousands. A UDP datagram that comes meanwhile is read. Then an
 * accept on a listener with the same lasting HUP.
 */
struct dgram_read { struct weft_io *io; ssize_t r; char buf[16]; };

static uint64_t io_events(struct weft_runtime *rt)
{
	struct weft_metrics *m;
	cr_assert_eq(weft_runtime_metrics(rt, &m), 0);
	uint64_t n = m->io_ready_events;
	weft_metrics_free(m);
	return n;
}

static void *dgram_read_in_fiber(void *arg)
{
	struct dgram_read *d = arg;
	d->r = weft_read(d->io, d->buf, sizeof d->buf);
	return NULL;
}

Test(io_shutdown, a_read_or_accept_with_hup_set_waits_without_spinning, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(1);
	for (int udp = 0; udp < 2; udp++) {
		int sv[2];
		if (udp) {
			struct sockaddr_in sa[2];
			for (int i = 0; i < 2; i++) {
				sv[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
				cr_assert_geq(sv[i], 0);
				sa[i] = (struct sockaddr_in){ .sin_family = AF_INET,
							       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
				socklen_t len = sizeof sa[i];
				cr_assert_eq(bind(sv[i], (struct sockaddr *)&sa[i], sizeof sa[i]), 0);
				cr_assert_eq(getsockname(sv[i], (struct sockaddr *)&sa[i], &len), 0);
			}
			for (int i = 0; i < 2; i++)
				cr_assert_eq(connect(sv[i], (struct sockaddr *)&sa[1 - i],
						     sizeof sa[1 - i]), 0);
		} else {
			cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
		}
		struct weft_io *a;
		cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
		cr_assert_eq(weft_io_shutdown(a, SHUT_RD), 0);
		cr_assert(WT_WAIT_UNTIL(weft_io_wait(a, WEFT_IO_READABLE, 0) > 0 &&
					(weft_io_wait(a, WEFT_IO_READABLE, 0) & WEFT_IO_HUP),
					WT_LONG_MS), "the driver has seen the hang-up");
		atomic_store(&watch_eagain, 0);
		atomic_store(&watch_fd, sv[0]);
		char buf[16];
		uint64_t t0 = wt_now_ns();
		cr_assert_eq(weft_io_set_deadline(a, WEFT_IO_READABLE, t0 + 1000000000ull), 0);
		cr_assert_eq(weft_read(a, buf, sizeof buf), -ETIMEDOUT);
		int eagain = atomic_load(&watch_eagain);
		atomic_store(&watch_fd, -1);
		cr_assert_leq(eagain, 4, "%s: %d reads found nothing in %.2f s (a spin)",
			      udp ? "udp" : "unix", eagain, (double)(wt_now_ns() - t0) / 1e9);
		if (udp) {
			/* a datagram that comes while the read waits */
			cr_assert_eq(weft_io_set_deadline(a, WEFT_IO_READABLE,
							  wt_now_ns() + 20000000000ull), 0);
			struct dgram_read d = { .io = a };
			struct weft_task *h;
			cr_assert_eq(weft_spawn(rt, dgram_read_in_fiber, &d, &h), 0);
			cr_assert_eq(send(sv[1], "dgram", 5, 0), 5);
			cr_assert_eq(weft_join(h, NULL), 0);
			cr_assert_eq(d.r, 5, "the datagram: %zd", d.r);
			cr_assert_eq(memcmp(d.buf, "dgram", 5), 0);
		}
		cr_assert_eq(weft_io_close(a), 0);
		close(sv[1]);
	}

	/* The same HUP state on a TCP socket registered before listen(2)
	 * (closed, it polls as hung up; listen makes no event): an accept's
	 * wait ended on it at once and the accept spun (0.94 s of CPU in its
	 * 1 s); it waits now, and a connection that comes is taken. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct weft_io *l;
	uint64_t ev0 = io_events(rt);
	cr_assert_eq(weft_io_register(rt, fd, &l), 0);
	/* the driver's event, not poll(2)'s answer: taken after listen, the
	 * event would say the socket's state then (no HUP) */
	cr_assert(WT_WAIT_UNTIL(io_events(rt) > ev0, WT_LONG_MS), "the driver has seen the socket");
	cr_assert(weft_io_wait(l, WEFT_IO_READABLE, 0) & WEFT_IO_HUP);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	cr_assert_eq(weft_io_set_deadline(l, WEFT_IO_READABLE, wt_now_ns() + 1000000000ull), 0);
	struct weft_io *s = NULL;
	uint64_t c0 = thread_cpu_ns(), t0 = wt_now_ns();
	cr_assert_eq(weft_accept(l, &s, NULL, NULL), -ETIMEDOUT);
	uint64_t cpu = thread_cpu_ns() - c0, wall = wt_now_ns() - t0;
	cr_assert_lt(cpu, 200000000ull, "the accept spun: %.3f s of CPU in %.3f s",
		     (double)cpu / 1e9, (double)wall / 1e9);
	cr_assert_eq(weft_io_set_deadline(l, WEFT_IO_READABLE, wt_now_ns() + 20000000000ull), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(weft_accept(l, &s, NULL, NULL), 0);
	cr_assert_eq(weft_io_close(s), 0);
	close(c);
	cr_assert_eq(weft_io_close(l), 0);
	wt_rt_destroy(rt);
}

Test(io_shutdown, wakes_a_reader_and_a_writer_waiting_on_a_unix_socket, .timeout = WT_TMO(20))
{
	shutdown_wakes_waiters(false);
}

Test(io_shutdown, wakes_a_reader_and_a_writer_waiting_on_tcp, .timeout = WT_TMO(20))
{
	shutdown_wakes_waiters(true);
}
