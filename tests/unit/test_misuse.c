/*
 * test_misuse.c - misuse answered (issue 14): each mistake a new user made
 * in a client program either returns the -errno its header documents or
 * aborts with a message that says what was wrong, instead of hanging,
 * crashing or returning a code the header does not list.
 *
 * Aborts are checked in a forked child (stderr to a pipe, alarm(10) against
 * a hang): the child must die of SIGABRT and its message must name the
 * mistake.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"

/* ------------------------------------------------------------ death tests */

/* Run fn in a child with stderr captured into out; it must abort (SIGABRT)
 * within 10 s. */
static void expect_abort(void (*fn)(void), char *out, size_t outsz)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		alarm(10); /* a hang dies of SIGALRM, not SIGABRT */
		fn();
		_exit(0);
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while (len < outsz - 1 && (n = read(p[0], out + len, outsz - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	out[len] = 0;
	close(p[0]);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		  "child did not abort: %s %d; stderr: \"%s\"",
		  WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		  out);
}

#define EXPECT_IN(out, needle) \
	cr_assert(strstr((out), (needle)), "abort message lacks \"%s\": \"%s\"", (needle), (out))

/* ------------------------------------------- (a) poll returns a bad value */

/* The worker may poll the task before weft_spawn_poll returns; it waits
 * until main has printed the id, or the abort could come first and the
 * output would lack the line the test reads the id from. */
static atomic_bool id_printed;

static enum weft_poll bad_poll(void *state, struct weft_cx *cx)
{
	while (!atomic_load(&id_printed))
		sched_yield();
	return (enum weft_poll)7;
}

static void child_bad_poll(void)
{
	struct weft_runtime *rt = NULL;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	if (weft_runtime_create(&o, &rt))
		_exit(3);
	struct weft_task *t;
	if (weft_spawn_poll(rt, bad_poll, NULL, NULL, &t))
		_exit(4);
	fprintf(stderr, "spawned task %llu\n", (unsigned long long)weft_task_id(t));
	atomic_store(&id_printed, true);
	weft_join(t, NULL); /* before: hangs (7 was taken as PENDING) */
	_exit(5);
}

Test(misuse, poll_returns_neither_ready_nor_pending_aborts, .timeout = WT_TMO(30))
{
	char out[4096], needle[96];
	unsigned long long id = 0;
	expect_abort(child_bad_poll, out, sizeof out);
	/* not the first line in a chaos build, which names its seed first */
	const char *line = strstr(out, "spawned task ");
	cr_assert(line && sscanf(line, "spawned task %llu", &id) == 1, "%s", out);
	snprintf(needle, sizeof needle, "task %llu: poll function returned 7", id);
	EXPECT_IN(out, needle);
	EXPECT_IN(out, "WEFT_PENDING");
	/* the file named relative to the source tree (no_build_paths) */
	EXPECT_IN(out, "weft: fatal: lib/sched/task.c:");
}

/* ------------------------------------------------ (b) an absurd opts.sz */

Test(misuse, opts_sz_beyond_bound_is_refused_without_reading, .timeout = WT_TMO(10))
{
	/* Zero bytes well past WEFT_OPTS_MAX_SZ: only the bound refuses. */
	static struct { struct weft_runtime_opts o; unsigned char tail[2 * WEFT_OPTS_MAX_SZ]; } x;
	struct weft_runtime *rt = (struct weft_runtime *)&x; /* must stay untouched */
	x.o.workers = 1;
	x.o.sz = SIZE_MAX; /* before: scanned SIZE_MAX bytes for a non-zero one: SIGSEGV */
	cr_assert_eq(weft_runtime_create(&x.o, &rt), -EINVAL);
	x.o.sz = WEFT_OPTS_MAX_SZ + 1;
	cr_assert_eq(weft_runtime_create(&x.o, &rt), -EINVAL);
	cr_assert_eq(rt, (struct weft_runtime *)&x, "out-parameter written on failure");
	x.o.sz = WEFT_OPTS_MAX_SZ; /* the largest size accepted, tail all zero */
	cr_assert_eq(weft_runtime_create(&x.o, &rt), 0);
	wt_rt_destroy(rt);
}

/* ------------------------------------------ (c) channel buffer too large */

static atomic_long c_allocs;
static void *c_alloc(size_t size, size_t align, void *ctx)
{
	atomic_fetch_add(&c_allocs, 1);
	return align <= 16 ? malloc(size) : aligned_alloc(align, (size + align - 1) & ~(align - 1));
}
static void c_free(void *p, void *ctx) { free(p); }

Test(misuse, chan_create_buffer_too_large_is_einval, .timeout = WT_TMO(10))
{
	static const struct weft_allocator counting = { c_alloc, c_free, NULL };
	cr_assert_eq(weft_set_allocator(&counting), 0);
	struct weft_chan *ch = (struct weft_chan *)&counting;
	static const struct { size_t item, cap; } bad[] = {
		{ 1, SIZE_MAX },                         /* before: malloc(SIZE_MAX), -ENOMEM */
		{ 1, WEFT_CHAN_MAX_BYTES + 1 },
		{ 4096, WEFT_CHAN_MAX_BYTES / 4096 + 1 },
		{ SIZE_MAX / 2 + 1, 2 },                 /* the product overflows */
		{ SIZE_MAX, 1 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = weft_chan_create(bad[i].item, bad[i].cap, &ch);
		cr_assert_eq(rc, -EINVAL, "weft_chan_create(%zu, %zu) = %d (%s), want -EINVAL",
			     bad[i].item, bad[i].cap, rc, weft_strerror(rc));
	}
	cr_assert_eq(ch, (struct weft_chan *)&counting, "out-parameter written on failure");
	cr_assert_eq(atomic_load(&c_allocs), 0, "a refused channel allocated memory");
	cr_assert_eq(weft_chan_create(8, 1024, &ch), 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	cr_assert_eq(weft_set_allocator(NULL), 0);
}

/* ----------------------------------- (d) I/O on a shut-down runtime */

static void *nop_fn(void *arg) { return arg; }

Test(misuse, io_entry_points_on_shut_down_runtime_eshutdown, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_io *lst;
	cr_assert_eq(weft_tcp_listen(rt, "127.0.0.1", 0, 16, &lst), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);

	struct weft_io *io = NULL;
	int rc = weft_tcp_listen(rt, "127.0.0.1", 0, 16, &io); /* before: 0 */
	cr_assert_eq(rc, -ESHUTDOWN, "weft_tcp_listen = %d (%s)", rc, weft_strerror(rc));
	cr_assert_null(io);

	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	rc = weft_io_register(rt, sv[0], &io);
	cr_assert_eq(rc, -ESHUTDOWN, "weft_io_register = %d (%s)", rc, weft_strerror(rc));
	cr_assert_null(io);
	close(sv[0]);
	close(sv[1]);

	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = weft_connect(rt, (struct sockaddr *)&a, sizeof a, &io);
	cr_assert_eq(rc, -ESHUTDOWN, "weft_connect = %d (%s)", rc, weft_strerror(rc));
	rc = weft_tcp_connect(rt, "127.0.0.1", 1, &io);
	cr_assert_eq(rc, -ESHUTDOWN, "weft_tcp_connect = %d (%s)", rc, weft_strerror(rc));
	cr_assert_null(io);

	rc = weft_accept(lst, &io, NULL, NULL);
	cr_assert_eq(rc, -ESHUTDOWN, "weft_accept = %d (%s)", rc, weft_strerror(rc));
	cr_assert_null(io);
	cr_assert_eq(weft_io_close(lst), 0);

	/* the task entry points answered so already */
	cr_assert_eq(weft_spawn(rt, nop_fn, NULL, NULL), -ESHUTDOWN);
	cr_assert_eq(weft_spawn_blocking(rt, nop_fn, NULL, NULL), -ESHUTDOWN);
	wt_rt_destroy(rt);
}

/* Registrations racing shutdown: each is refused (-ESHUTDOWN) or made
 * before shutdown marked the registrations, so a wait on it ends with
 * -ESHUTDOWN; none is left that no driver reports on (-ETIMEDOUT). */
#define RACE_REGS 4096
static struct weft_runtime *race_rt;
static struct weft_io *race_io[2][RACE_REGS];
static int race_peer[2][RACE_REGS];
static atomic_int race_n[2], race_bad;

static void *race_registrar(void *arg)
{
	long k = (long)arg;
	for (int i = 0; i < RACE_REGS; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
			atomic_fetch_add(&race_bad, 1);
			break;
		}
		int rc = weft_io_register(race_rt, sv[0], &race_io[k][i]);
		if (rc) {
			close(sv[0]);
			close(sv[1]);
			if (rc != -ESHUTDOWN)
				atomic_fetch_add(&race_bad, 1);
			break;
		}
		race_peer[k][i] = sv[1];
		atomic_store(&race_n[k], i + 1);
	}
	return NULL;
}

Test(misuse, io_register_racing_shutdown_refused_or_marked, .timeout = WT_TMO(60))
{
	for (int round = 0; round < 20; round++) {
		race_rt = wt_rt_create(1);
		atomic_store(&race_n[0], 0);
		atomic_store(&race_n[1], 0);
		pthread_t th[2];
		for (long k = 0; k < 2; k++)
			cr_assert_eq(pthread_create(&th[k], NULL, race_registrar, (void *)k), 0);
		while (atomic_load(&race_n[0]) + atomic_load(&race_n[1]) < 8 * (round + 1))
			sched_yield();
		cr_assert_eq(weft_runtime_shutdown(race_rt, WEFT_FOREVER), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		cr_assert_eq(atomic_load(&race_bad), 0, "a registration failed otherwise");
		for (int k = 0; k < 2; k++) {
			for (int i = 0; i < atomic_load(&race_n[k]); i++) {
				int rc = weft_io_wait(race_io[k][i], WEFT_IO_READABLE, 0);
				cr_assert_eq(rc, -ESHUTDOWN, "round %d: registration %d/%d: wait = %d (%s)",
					     round, k, i, rc, weft_strerror(rc));
				cr_assert_eq(weft_io_close(race_io[k][i]), 0);
				close(race_peer[k][i]);
			}
		}
		wt_rt_destroy(race_rt);
	}
}

/* -------------------------- (e) zero timeout checks current readiness */

Test(misuse, io_wait_zero_timeout_sees_current_readiness, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	for (int i = 0; i < 200; i++) {
		int sv[2];
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		cr_assert_eq(write(sv[1], "x", 1), 1);
		struct weft_io *io;
		cr_assert_eq(weft_io_register(rt, sv[0], &io), 0);
		/* right after registering: the driver may not have seen the
		 * first edge yet (before: -ETIMEDOUT most of the time) */
		int rc = weft_io_wait(io, WEFT_IO_WRITABLE, 0);
		cr_assert(rc > 0 && (rc & WEFT_IO_WRITABLE), "round %d: wait(WRITABLE, 0) = %d (%s)",
			  i, rc, weft_strerror(rc));
		rc = weft_io_wait(io, WEFT_IO_READABLE, 0);
		cr_assert(rc > 0 && (rc & WEFT_IO_READABLE), "round %d: wait(READABLE, 0) = %d (%s)",
			  i, rc, weft_strerror(rc));
		cr_assert_eq(weft_io_close(io), 0);
		close(sv[1]);
	}
	/* nothing to read: timeout 0 still times out */
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, sv[0], &io), 0);
	cr_assert_eq(weft_io_wait(io, WEFT_IO_READABLE, 0), -ETIMEDOUT);
	cr_assert_eq(weft_io_close(io), 0);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/* weft_io_wait's events: a bit no WEFT_IO_* names was ignored (the wait
 * went on as if it were not there), where weft_io_set_deadline and
 * weft_io_copier_create refuse unknown bits; and the -EINVAL for no
 * direction at all was missing from the header. Both refused now, with
 * nothing waited for. */
Test(misuse, io_wait_unknown_event_bits_einval, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(write(sv[1], "x", 1), 1);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, sv[0], &io), 0);
	struct weft_io_ready r = { 0, 0 };
	unsigned bad[] = { 0, WEFT_IO_HUP, WEFT_IO_READABLE | 0x40, WEFT_IO_WRITABLE | 0x80000000u };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(weft_io_wait(io, bad[i], 0), -EINVAL, "events %#x", bad[i]);
		cr_assert_eq(weft_io_wait_ready(io, bad[i], WEFT_FOREVER, &r), -EINVAL,
			     "events %#x", bad[i]);
		cr_assert_eq(r.mask, 0, "nothing filled in on -EINVAL");
	}
	/* the bits a ready mask carries may be asked for beside a direction */
	int rc = weft_io_wait(io, WEFT_IO_READABLE | WEFT_IO_HUP | WEFT_IO_ERROR, WEFT_FOREVER);
	cr_assert(rc > 0 && (rc & WEFT_IO_READABLE), "%d", rc);
	cr_assert_eq(weft_io_close(io), 0);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/* The socket calls' common errors promise -EINVAL for a NULL out: a NULL
 * buffer with a non-zero length went to the system call instead - a read
 * waited for data (forever without a deadline) and then said -EFAULT, a
 * write said -EFAULT - where weft_read_full and weft_writev already said
 * -EINVAL. Refused before any wait or system call now. */
Test(misuse, socket_calls_null_buffer_einval, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *io;
	cr_assert_eq(weft_io_register(rt, sv[0], &io), 0);
	/* nothing to read: without the check the reads wait until here */
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_io_set_deadline(io, WEFT_IO_READABLE, t0 + 3000000000ull), 0);
	cr_assert_eq(weft_read(io, NULL, 5), -EINVAL);
	cr_assert_eq(weft_recv(io, NULL, 5, 0), -EINVAL);
	cr_assert_eq(weft_recvfrom(io, NULL, 5, 0, NULL, NULL), -EINVAL);
	cr_assert_lt(wt_now_ns() - t0, 1000000000ull, "a read waited before refusing");
	cr_assert_eq(weft_write(io, NULL, 5), -EINVAL);
	cr_assert_eq(weft_send(io, NULL, 5, 0), -EINVAL);
	cr_assert_eq(weft_sendto(io, NULL, 5, 0, NULL, 0), -EINVAL);
	char b;
	cr_assert_eq(recv(sv[1], &b, 1, MSG_DONTWAIT), -1, "nothing was sent");
	cr_assert_eq(errno, EAGAIN);
	/* a length of 0 with no buffer stays allowed */
	cr_assert_eq(weft_write(io, NULL, 0), 0);
	cr_assert_eq(weft_io_close(io), 0);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/* weft_accept with an address buffer but no length: the kernel accepted
 * the connection, could not store its address (-EFAULT) and closed it -
 * the client was reset and the connection lost. Refused with -EINVAL
 * before anything is accepted, as weft_recvfrom refuses it; the pending
 * connection is still there for the next accept. */
Test(misuse, accept_addr_without_len_einval_and_keeps_the_connection, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_io *l, *c = NULL;
	cr_assert_eq(weft_tcp_listen(rt, "127.0.0.1", 0, 0, &l), 0);
	int port = weft_io_local_port(l);
	cr_assert_gt(port, 0);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(cfd, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(weft_io_set_deadline(l, WEFT_IO_READABLE, wt_now_ns() + 2000000000ull), 0);
	struct sockaddr_storage ss;
	cr_assert_eq(weft_accept(l, &c, (struct sockaddr *)&ss, NULL), -EINVAL);
	cr_assert_null(c, "out untouched");
	int rc = weft_accept(l, &c, NULL, NULL);
	cr_assert_eq(rc, 0, "the pending connection was lost: %d (%s)", rc, weft_strerror(rc));
	cr_assert_eq(weft_write(c, "ok", 2), 2);
	char b[2];
	cr_assert_eq(read(cfd, b, 2), 2, "the client's connection works");
	cr_assert_eq(weft_io_close(c), 0);
	cr_assert_eq(weft_io_close(l), 0);
	close(cfd);
	wt_rt_destroy(rt);
}

/* io.h: a call on a registration after weft_io_close (or _deregister)
 * returns -EBADF. weft_io_fd still returned the old number - closed, or
 * by then another file's, so a setsockopt on it reached that file - and
 * weft_io_set_deadline said 0. */
Test(misuse, io_fd_and_set_deadline_after_close_ebadf, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_io *a, *b;
	cr_assert_eq(weft_io_register(rt, sv[0], &a), 0);
	cr_assert_eq(weft_io_register(rt, sv[1], &b), 0);
	cr_assert_eq(weft_io_fd(a), sv[0]);
	cr_assert_eq(weft_io_close(a), 0);
	int other = socket(AF_UNIX, SOCK_STREAM, 0); /* takes the closed number */
	cr_assert_eq(other, sv[0]);
	cr_assert_eq(weft_io_fd(a), -EBADF, "the closed registration named fd %d", other);
	cr_assert_eq(weft_io_set_deadline(a, WEFT_IO_READABLE, 0), -EBADF);
	cr_assert_eq(weft_io_deregister(b), sv[1]);
	cr_assert_eq(weft_io_fd(b), -EBADF, "deregistered: the number is the caller's");
	cr_assert_eq(weft_io_set_deadline(b, WEFT_IO_WRITABLE, 0), -EBADF);
	cr_assert_eq(weft_io_fd(NULL), -EINVAL);
	close(other);
	close(sv[1]);
	wt_rt_destroy(rt);
}

/* ---------------------------- (f) alive_tasks drops before the joiner */

static enum weft_poll ready_poll(void *state, struct weft_cx *cx) { return WEFT_READY; }

Test(misuse, alive_tasks_zero_once_join_returned, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	for (int i = 0; i < 20000; i++) {
		struct weft_task *t;
		cr_assert_eq(weft_spawn_poll(rt, ready_poll, NULL, NULL, &t), 0);
		if (i & 1)
			while (!weft_task_is_finished(t)) /* join's fast path */
				;
		cr_assert_eq(weft_join(t, NULL), 0);
		struct weft_metrics *m = wt_metrics(rt);
		uint64_t alive = m->alive_tasks;
		weft_metrics_free(m);
		cr_assert_eq(alive, 0, "round %d: alive_tasks %llu just after weft_join returned", i,
			     (unsigned long long)alive);
	}
	wt_rt_destroy(rt);
}

/* ------------------------------- (f2) one handle joined from two threads */

/*
 * A handle has one joiner at a time (weft.h, weft_join). Two threads in
 * weft_join on it at once took the join waker slot from each other: the
 * one whose waker was replaced was never woken and hung for good, also
 * after the other had joined (found by a review). Now the later one says
 * -EBUSY at once, as does weft_join_timeout, and the other joins as usual.
 */
static atomic_bool gate_open, gate_waker_set;
static weft_waker gate_waker;
static int gate_value;

static enum weft_poll gate_poll(void *state, struct weft_cx *cx)
{
	if (atomic_load(&gate_open)) {
		weft_cx_set_result(cx, state);
		return WEFT_READY;
	}
	if (!atomic_load(&gate_waker_set)) {
		gate_waker = weft_waker_clone(weft_cx_waker(cx));
		atomic_store(&gate_waker_set, true);
	}
	return WEFT_PENDING;
}

struct joiner {
	struct weft_task *t;
	bool timed;
	void *res;
	atomic_int rc;
	atomic_bool done;
};

static void *joiner_fn(void *arg)
{
	struct joiner *j = arg;
	int rc = j->timed ? weft_join_timeout(j->t, &j->res, 600ull * 1000000000)
			  : weft_join(j->t, &j->res);
	atomic_store(&j->rc, rc);
	atomic_store(&j->done, true);
	return NULL;
}

Test(misuse, join_from_two_threads_at_once_is_ebusy_not_a_hang, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	for (int timed = 0; timed < 2; timed++) {
		atomic_store(&gate_open, false);
		atomic_store(&gate_waker_set, false);
		struct weft_task *t;
		cr_assert_eq(weft_spawn_poll(rt, gate_poll, &gate_value, NULL, &t), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&gate_waker_set), WT_LONG_MS));
		static struct joiner j[2];
		pthread_t th[2];
		for (int k = 0; k < 2; k++) {
			j[k] = (struct joiner){ .t = t, .timed = k == 1 && timed };
			cr_assert_eq(pthread_create(&th[k], NULL, joiner_fn, &j[k]), 0);
		}
		cr_assert(WT_WAIT_UNTIL(atomic_load(&j[0].done) || atomic_load(&j[1].done),
					WT_LONG_MS),
			  "round %d: neither join returned: one of them can never be woken", timed);
		int busy = atomic_load(&j[0].done) ? 0 : 1;
		cr_assert_eq(atomic_load(&j[busy].rc), -EBUSY, "round %d: the later join", timed);
		cr_assert_not(atomic_load(&j[!busy].done), "round %d: the task has not finished", timed);
		/* the other waits: every join meanwhile is refused at once */
		cr_assert_eq(weft_join(t, NULL), -EBUSY);
		cr_assert_eq(weft_join_timeout(t, NULL, 1000), -EBUSY);
		atomic_store(&gate_open, true);
		weft_waker_wake(&gate_waker);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&j[!busy].done), WT_LONG_MS),
			  "round %d: the waiting join was not woken", timed);
		cr_assert_eq(atomic_load(&j[!busy].rc), 0);
		cr_assert_eq(j[!busy].res, &gate_value);
		for (int k = 0; k < 2; k++)
			cr_assert_eq(pthread_join(th[k], NULL), 0);
	}
	wt_rt_destroy(rt);
}

/* --------------------------------------------- (g) oneshot sent twice */

static void child_oneshot_send_twice(void)
{
	struct weft_oneshot *o;
	if (weft_oneshot_create(NULL, &o))
		_exit(3);
	weft_oneshot_send(o, (void *)1);
	weft_oneshot_send(o, (void *)2); /* the receiver end is still alive */
	_exit(5);
}

Test(misuse, oneshot_second_send_aborts_naming_the_call, .timeout = WT_TMO(30))
{
	char out[4096];
	expect_abort(child_oneshot_send_twice, out, sizeof out);
	EXPECT_IN(out, "weft_oneshot_send");
	EXPECT_IN(out, "sender end");
	EXPECT_IN(out, "weft: fatal: lib/sync/oneshot.c:");
}

/* A second receive on one oneshot while the first's entry is linked: the
 * receive that took the value freed the oneshot under the other entry (a
 * use after free; a review, 2026-12-06). Now an abort naming the misuse,
 * as weft_oneshot_try_recv beside a linked entry. */
static struct weft_oneshot *two_rx_o;
static enum weft_poll two_receivers_poll(void *state, struct weft_cx *cx)
{
	static struct weft_wait w1 = WEFT_WAIT_INIT, w2 = WEFT_WAIT_INIT;
	void *v;
	if (weft_oneshot_recv_poll(two_rx_o, &w1, cx, &v) != WEFT_PENDING)
		_exit(6);
	weft_oneshot_recv_poll(two_rx_o, &w2, cx, &v); /* before: linked as well */
	_exit(5);
}

static void child_oneshot_two_receivers(void)
{
	struct weft_runtime *rt = NULL;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	if (weft_runtime_create(&o, &rt) || weft_oneshot_create(NULL, &two_rx_o))
		_exit(3);
	struct weft_task *t;
	if (weft_spawn_poll(rt, two_receivers_poll, NULL, NULL, &t))
		_exit(4);
	weft_join(t, NULL);
	_exit(7);
}

Test(misuse, oneshot_second_receiver_aborts, .timeout = WT_TMO(30))
{
	char out[4096];
	expect_abort(child_oneshot_two_receivers, out, sizeof out);
	EXPECT_IN(out, "another wait entry is linked");
	EXPECT_IN(out, "weft: fatal: lib/sync/oneshot.c:");
}

/* A receive after weft_oneshot_receiver_drop while the sender end lives:
 * try_recv said -EAGAIN, and a blocking receive waited, its entry linked
 * on a oneshot the send (-EPIPE) then freed under it - ASan saw its next
 * poll lock freed memory (a review, 2026-12-07). Now an abort naming the
 * call, as for a second receiver_drop. */
static void child_oneshot_try_recv_after_drop(void)
{
	struct weft_oneshot *o;
	if (weft_oneshot_create(NULL, &o) || weft_oneshot_receiver_drop(o))
		_exit(3);
	void *v;
	weft_oneshot_try_recv(o, &v); /* before: -EAGAIN */
	_exit(5);
}

static void child_oneshot_recv_after_drop(void)
{
	struct weft_oneshot *o;
	if (weft_oneshot_create(NULL, &o) || weft_oneshot_receiver_drop(o))
		_exit(3);
	void *v;
	weft_oneshot_recv_timeout(o, &v, 1000 * 1000); /* before: -ETIMEDOUT */
	_exit(5);
}

Test(misuse, oneshot_receive_after_receiver_drop_aborts, .timeout = WT_TMO(30))
{
	char out[4096];
	expect_abort(child_oneshot_try_recv_after_drop, out, sizeof out);
	EXPECT_IN(out, "weft_oneshot_try_recv on oneshot");
	EXPECT_IN(out, "receiver end was already consumed");
	EXPECT_IN(out, "weft: fatal: lib/sync/oneshot.c:");
	expect_abort(child_oneshot_recv_after_drop, out, sizeof out);
	EXPECT_IN(out, "weft_oneshot_recv");
	EXPECT_IN(out, "receiver end was already consumed");
}

/* A NULL handle to a call with no error to return (the poll forms
 * weft_io_poll_ready, weft_timer_poll, weft_interval_poll_tick; the void
 * weft_io_clear_ready, weft_timer_cancel): an abort naming the call, as
 * io.h and time.h say. Before: SIGSEGV, nothing said (a review,
 * 2026-12-07). */
static int null_handle_call;
static enum weft_poll null_handle_poll(void *state, struct weft_cx *cx)
{
	struct weft_io_ready rd;
	switch (null_handle_call) {
	case 0: return weft_io_poll_ready(NULL, cx, WEFT_IO_READABLE, &rd);
	case 1: return weft_timer_poll(NULL, cx, 0);
	default: return weft_interval_poll_tick(NULL, cx);
	}
}

static void child_null_handle_poll(void)
{
	struct weft_runtime *rt = NULL;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
	if (weft_runtime_create(&o, &rt))
		_exit(3);
	struct weft_task *t;
	if (weft_spawn_poll(rt, null_handle_poll, NULL, NULL, &t))
		_exit(4);
	weft_join(t, NULL);
	_exit(5);
}

static void child_null_clear_ready(void)
{
	weft_io_clear_ready(NULL, (struct weft_io_ready){ .mask = WEFT_IO_READABLE });
	_exit(5);
}

static void child_null_timer_cancel(void)
{
	weft_timer_cancel(NULL);
	_exit(5);
}

Test(misuse, null_handle_to_a_call_without_an_error_aborts_naming_it, .timeout = WT_TMO(60))
{
	static const char *const polls[] = { "weft_io_poll_ready: NULL registration",
					     "weft_timer_poll: NULL timer",
					     "weft_interval_poll_tick: NULL interval" };
	char out[4096];
	for (int i = 0; i < 3; i++) {
		null_handle_call = i;
		expect_abort(child_null_handle_poll, out, sizeof out);
		EXPECT_IN(out, polls[i]);
	}
	expect_abort(child_null_clear_ready, out, sizeof out);
	EXPECT_IN(out, "weft_io_clear_ready: NULL registration");
	expect_abort(child_null_timer_cancel, out, sizeof out);
	EXPECT_IN(out, "weft_timer_cancel: NULL timer");
}

/* ------------------------------------------------ (h) generic strerror */

Test(misuse, strerror_texts_fit_every_call, .timeout = WT_TMO(10))
{
	const char *p = weft_strerror(WEFT_PENDING);
	cr_assert(strstr(p, "pending") && !strstr(p, "not permitted"),
		  "weft_strerror(WEFT_PENDING) = \"%s\"", p);
	cr_assert(strstr(weft_strerror(-EPERM), "not permitted"), "%s", weft_strerror(-EPERM));
	cr_assert(strstr(weft_strerror(WEFT_READY), "success"));
	/* A code several calls return: its text starts with the generic
	 * meaning; what it means for one call comes only after "e.g.". */
	static const struct { int code; const char *specific; } c[] = {
		{ -EBUSY, "join" },            /* also weft_mutex_try_lock, destroys */
		{ -EBUSY, "waker" },
		{ -EDEADLK, "worker" },        /* also blocking calls from poll tasks */
		{ -ECANCELED, "task" },
		{ -EPIPE, "peer" },            /* also channels, oneshots */
		{ -EBADF, "registration" },    /* also a bad fd given to weft_io_register */
		{ -ESHUTDOWN, "runtime" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		const char *s = weft_strerror(c[i].code), *spec = strstr(s, c[i].specific);
		const char *eg = strstr(s, "e.g.");
		cr_assert(!spec || (eg && eg < spec), "weft_strerror(%d) = \"%s\": \"%s\" is not generic",
			  c[i].code, s, c[i].specific);
	}
}

/* ------------------------------------- (i) options in pedantic C11 */

Test(misuse, opts_init_fills_sz_and_named_fields, .timeout = WT_TMO(10))
{
	struct weft_runtime_opts o = WEFT_OPTS_INIT(weft_runtime_opts, .workers = 2,
						   .event_interval = 31);
	cr_assert_eq(o.sz, sizeof(struct weft_runtime_opts));
	cr_assert_eq(o.workers, 2);
	cr_assert_eq(o.event_interval, 31);
	cr_assert_eq(o.global_queue_interval, 0);
	cr_assert_null(o.thread_name_prefix);
	struct weft_runtime_opts d = WEFT_OPTS_INIT(weft_runtime_opts);
	cr_assert_eq(d.sz, sizeof(struct weft_runtime_opts));
	cr_assert_eq(d.workers, 0);
	struct weft_runtime *rt;
	cr_assert_eq(weft_runtime_create(&o, &rt), 0);
	struct weft_metrics *m = wt_metrics(rt);
	cr_assert_eq(m->workers, 2);
	weft_metrics_free(m);
	wt_rt_destroy(rt);
	/* as an argument, without a variable */
	cr_assert_eq(weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt), 0);
	wt_rt_destroy(rt);
}
