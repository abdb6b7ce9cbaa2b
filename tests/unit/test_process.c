/*
 * test_process.c - weft_process_spawn and friends: stdio pipes driven by
 * fibers and threads, exit status, signals through the pidfd, time
 * limits, options (cwd, environment, /dev/null), the child's signal mask,
 * close-on-exec between children, and errors that leave no process,
 * zombie or descriptor behind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <weft/io.h>

#include "wt.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Nothing of ours left to reap (no zombie). */
static void assert_no_children(void)
{
	errno = 0;
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child was left behind");
	cr_assert_eq(errno, ECHILD);
}

/* Read io to EOF into buf (NUL-terminated); the byte count. */
static size_t read_all(struct weft_io *io, char *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		cr_assert_lt(n, cap - 1, "more output than expected");
		ssize_t r = weft_read(io, buf + n, cap - 1 - n);
		cr_assert_geq(r, 0, "weft_read: %zd", r);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return n;
}

/* ------------------------------------------------ cat, driven by fibers */

#define CAT_BYTES (512u * 1024)

struct cat { struct weft_process p; unsigned char *sent, *got; size_t n; int rc; };

static void *cat_writer(void *arg)
{
	struct cat *c = arg;
	for (size_t off = 0; off < CAT_BYTES;) {
		size_t k = 1 + (off * 7919) % 20000;
		if (k > CAT_BYTES - off)
			k = CAT_BYTES - off;
		ssize_t w = weft_write(c->p.in, c->sent + off, k);
		if (w <= 0)
			return (void *)1;
		off += (size_t)w;
	}
	weft_io_close(c->p.in); /* EOF for cat */
	c->p.in = NULL;
	return NULL;
}

static void *cat_reader(void *arg)
{
	struct cat *c = arg;
	for (;;) {
		ssize_t r = weft_read(c->p.out, c->got + c->n, CAT_BYTES + 1 - c->n);
		if (r < 0)
			return (void *)1;
		if (r == 0)
			return NULL;
		c->n += (size_t)r;
	}
}

static void *cat_main(void *arg)
{
	struct cat *c = arg;
	struct weft_task *w, *r;
	void *rw, *rr;
	if (weft_spawn(weft_runtime_current(), cat_writer, c, &w) ||
	    weft_spawn(weft_runtime_current(), cat_reader, c, &r))
		return (void *)1;
	if (weft_join(w, &rw) || weft_join(r, &rr) || rw || rr)
		return (void *)2;
	int status = -1;
	c->rc = weft_process_wait(&c->p, &status, WEFT_FOREVER);
	if (c->rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		c->rc = -1000;
	return NULL;
}

Test(process, cat_through_pipes_from_fibers, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	int fds = count_fds();
	struct cat *c = calloc(1, sizeof(*c));
	c->sent = malloc(CAT_BYTES);
	c->got = malloc(CAT_BYTES + 1);
	uint64_t seed = 9;
	for (size_t i = 0; i < CAT_BYTES; i++)
		c->sent[i] = (unsigned char)wt_rand(&seed);
	char *argv[] = { "cat", NULL };
	cr_assert_eq(weft_process_spawn(rt, "cat", argv,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE }),
					&c->p), 0);
	cr_assert_gt(c->p.pid, 0);
	cr_assert(c->p.child && c->p.in && c->p.out);
	cr_assert_null(c->p.err, "stderr inherited: no pipe");
	struct weft_task *t;
	void *res;
	cr_assert_eq(weft_spawn(rt, cat_main, c, &t), 0);
	cr_assert_eq(weft_join(t, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(c->rc, 0, "wait: %d", c->rc);
	cr_assert_eq(c->n, CAT_BYTES, "cat echoed %zu of %u bytes", c->n, CAT_BYTES);
	cr_assert(!memcmp(c->sent, c->got, CAT_BYTES));
	cr_assert_null(c->p.child, "reaped: the registration is gone");
	cr_assert_eq(weft_process_wait(&c->p, NULL, 0), -ECHILD);
	cr_assert_eq(weft_process_close(&c->p), 0);
	cr_assert_null(c->p.out);
	/* (io_uring closes a registration's fd at the driver's next pass) */
	cr_assert(WT_WAIT_UNTIL(count_fds() == fds, WT_LONG_MS), "every descriptor closed");
	assert_no_children();
	free(c->sent);
	free(c->got);
	free(c);
	wt_rt_destroy(rt);
}

/* ------------------------------------------- status, stderr, from a thread */

Test(process, exit_status_and_stderr_from_a_thread, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "/bin/sh", argv,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_NULL, WEFT_STDIO_NULL,
								   WEFT_STDIO_PIPE }),
					&p), 0);
	cr_assert(p.err && !p.in && !p.out);
	char buf[64];
	read_all(p.err, buf, sizeof buf);
	cr_assert_str_eq(buf, "err\n", "stdout went to /dev/null: %s", buf);
	int status = 0;
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3, "status %#x", status);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

Test(process, cwd_and_environment, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int fds = count_fds();
	char *argv[] = { "sh", "-c", "pwd; echo \"$WEFT_T\"; echo \"${HOME:-unset}\"", NULL };
	char *envp[] = { "WEFT_T=from the options", "PATH=/usr/bin:/bin", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "sh", argv,
					&WEFT_OPTS_INIT(weft_process_opts, .envp = envp, .cwd = "/proc",
							.stdio = { [1] = WEFT_STDIO_PIPE }),
					&p), 0);
	char buf[256];
	read_all(p.out, buf, sizeof buf);
	cr_assert_str_eq(buf, "/proc\nfrom the options\nunset\n");
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	weft_process_close(&p);
	/* a cwd that does not exist: the spawn's error, nothing left */
	cr_assert_eq(weft_process_spawn(rt, "sh", argv,
					&WEFT_OPTS_INIT(weft_process_opts, .cwd = "/nonexistent/dir",
							.stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE }),
					&p), -ENOENT);
	cr_assert(WT_WAIT_UNTIL(count_fds() == fds, WT_LONG_MS), "a descriptor left open");
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------- the caller's descriptors, groups */

/* WEFT_STDIO_FD: the child's stdin from a file, its stdout and stderr to
 * the caller's descriptors - also the caller's 1 and 2 crossed (its stdout
 * to the caller's fd 2 and back), which copies made before the dup2s keep
 * apart; the caller's descriptors stay open and nothing else is left. */
Test(process, standard_streams_from_the_callers_descriptors, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int fds = count_fds();
	char in_path[] = "/tmp/weft-proc-in-XXXXXX", out_path[] = "/tmp/weft-proc-out-XXXXXX";
	int in = mkstemp(in_path), out = mkstemp(out_path);
	cr_assert(in >= 0 && out >= 0);
	unlink(in_path);
	unlink(out_path);
	cr_assert_eq(write(in, "from a file\n", 12), 12);
	cr_assert_eq(lseek(in, 0, SEEK_SET), 0);
	char *argv[] = { "sh", "-c", "cat; echo err >&2", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "/bin/sh", argv,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_FD, WEFT_STDIO_FD,
								   WEFT_STDIO_FD },
							.fd = { in, out, out }),
					&p), 0);
	cr_assert(!p.in && !p.out && !p.err, "no pipes");
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	cr_assert_eq(weft_process_close(&p), 0);
	char buf[64] = { 0 };
	cr_assert_eq(pread(out, buf, sizeof buf - 1, 0), 16, "%s", buf);
	cr_assert_str_eq(buf, "from a file\nerr\n");
	cr_assert_eq(fcntl(in, F_GETFD), 0, "the caller's descriptor is still open, unchanged");

	/* the caller's 1 and 2 crossed: pipes in their places for the while */
	int a[2], b[2], save1 = dup(1), save2 = dup(2);
	cr_assert(!pipe(a) && !pipe(b) && save1 >= 0 && save2 >= 0);
	fflush(stdout);
	fflush(stderr);
	cr_assert(dup2(a[1], 1) == 1 && dup2(b[1], 2) == 2);
	char *argv2[] = { "sh", "-c", "echo to-out; echo to-err >&2", NULL };
	int rc = weft_process_spawn(rt, "/bin/sh", argv2,
				    &WEFT_OPTS_INIT(weft_process_opts,
						    .stdio = { WEFT_STDIO_NULL, WEFT_STDIO_FD,
							       WEFT_STDIO_FD },
						    .fd = { -1, 2, 1 }),
				    &p);
	int wrc = rc ? rc : weft_process_wait(&p, NULL, WEFT_FOREVER);
	dup2(save1, 1);
	dup2(save2, 2);
	close(save1);
	close(save2);
	close(a[1]);
	close(b[1]);
	cr_assert_eq(rc, 0);
	cr_assert_eq(wrc, 0);
	weft_process_close(&p);
	char ga[32] = { 0 }, gb[32] = { 0 };
	cr_assert_gt(read(a[0], ga, sizeof ga - 1), 0);
	cr_assert_gt(read(b[0], gb, sizeof gb - 1), 0);
	cr_assert_str_eq(ga, "to-err\n", "the caller's fd 1 got %s", ga);
	cr_assert_str_eq(gb, "to-out\n", "the caller's fd 2 got %s", gb);
	close(a[0]);
	close(b[0]);

	/* not open, or none given: -EBADF, nothing left */
	int dead = dup(in);
	close(dead);
	WEFT_OPTS(weft_process_opts, bad, .stdio = { [1] = WEFT_STDIO_FD }, .fd = { 0, dead, 0 });
	cr_assert_eq(weft_process_spawn(rt, "/bin/true", argv, &bad, &p), -EBADF);
	bad.fd[1] = -1;
	cr_assert_eq(weft_process_spawn(rt, "/bin/true", argv, &bad, &p), -EBADF);
	close(in);
	close(out);
	cr_assert(WT_WAIT_UNTIL(count_fds() == fds, WT_LONG_MS), "a descriptor left open");
	assert_no_children();
	wt_rt_destroy(rt);
}

/* WEFT_STDIO_FD with another child's pipe end (io.h names the case): a
 * pipeline, the first child's stdout pipe as the second's stdin. That end
 * is registered with the runtime, so its open file is O_NONBLOCK, and the
 * child's copy (a dup: the same open file) was too - the second child's
 * first read, before the first had written, failed with EAGAIN ("cat:
 * Resource temporarily unavailable"), where Go (File.Fd) and Tokio
 * (Stdio::from(ChildStdout)) give the child a blocking descriptor. The
 * caller's registration must stay non-blocking. Found by a review. */
Test(process, a_pipeline_from_another_childs_pipe_end, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv1[] = { "sh", "-c", "sleep 0.3; echo through", NULL };
	char *argv2[] = { "cat", NULL };
	struct weft_process p1, p2;
	cr_assert_eq(weft_process_spawn(rt, "/bin/sh", argv1,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_NULL, WEFT_STDIO_PIPE }),
					&p1), 0);
	int fd = weft_io_fd(p1.out);
	cr_assert_eq(weft_process_spawn(rt, "cat", argv2,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_FD, WEFT_STDIO_PIPE,
								   WEFT_STDIO_NULL },
							.fd = { fd }),
					&p2), 0);
	cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK, "the caller's registration stays non-blocking");
	char buf[64];
	read_all(p2.out, buf, sizeof buf);
	int st1 = -1, st2 = -1;
	cr_assert_eq(weft_process_wait(&p1, &st1, WEFT_FOREVER), 0);
	cr_assert_eq(weft_process_wait(&p2, &st2, WEFT_FOREVER), 0);
	cr_assert_str_eq(buf, "through\n", "the second child read \"%s\" (exit %d)", buf,
			 WIFEXITED(st2) ? WEXITSTATUS(st2) : -1);
	cr_assert(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
	weft_process_close(&p1);
	weft_process_close(&p2);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* WEFT_STDIO_INHERIT of a standard stream the caller registered itself
 * (its stdout, a pipe to a pager, written with weft_write): the child's
 * copy shares the open file, O_NONBLOCK included, and `head -c 300000`
 * wrote what the pipe held, then failed with EAGAIN ("error writing
 * 'standard output': Resource temporarily unavailable", 65,536 bytes and
 * exit 1). Found by a review. In a forked child, with its own runtime and
 * its stdout a pipe the test reads once it is full. */
static int inherit_case(int wfd)
{
	if (dup2(wfd, 1) != 1)
		return 10;
	close(wfd);
	struct weft_runtime *rt;
	struct weft_io *out;
	if (weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt) ||
	    weft_io_register(rt, 1, &out))
		return 11;
	char *argv[] = { "head", "-c", "300000", "/dev/zero", NULL };
	struct weft_process p;
	int status = -1;
	if (weft_process_spawn(rt, "head", argv, NULL, &p) ||
	    weft_process_wait(&p, &status, WEFT_FOREVER) || weft_process_close(&p))
		return 12;
	if (!(fcntl(1, F_GETFL) & O_NONBLOCK))
		return 13; /* the caller's registration stays non-blocking */
	weft_io_close(out);
	weft_runtime_destroy(rt);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 14;
}

Test(process, an_inherited_stream_the_caller_registered_is_blocking_in_the_child,
     .timeout = WT_TMO(30))
{
	int pfd[2];
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	int cap = fcntl(pfd[0], F_GETPIPE_SZ);
	cr_assert_gt(cap, 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		_exit(inherit_case(pfd[1]));
	}
	close(pfd[1]);
	/* full (the writer waits, or gave up with EAGAIN), or the caller has
	 * already ended: then read it all */
	int status = -1, queued = 0;
	pid_t done = 0;
	WT_WAIT_UNTIL((ioctl(pfd[0], FIONREAD, &queued) == 0 && queued >= cap) ||
			      (done = waitpid(pid, &status, WNOHANG)) != 0,
		      WT_LONG_MS);
	char buf[65536];
	size_t n = 0;
	ssize_t r;
	while ((r = read(pfd[0], buf, sizeof buf)) > 0)
		n += (size_t)r;
	close(pfd[0]);
	if (!done)
		cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the child of the caller said %d (1: head failed)",
		     WEXITSTATUS(status));
	cr_assert_eq(n, 300000, "the child wrote %zu of 300000 bytes", n);
}

/* The child's process group and session, from /proc/PID/stat (fields 5
 * and 6; sh's comm has no space), read by the child itself. */
static void group_and_session(struct weft_runtime *rt, const struct weft_process_opts *o,
			      pid_t *pid, long *pgid, long *sid)
{
	char *argv[] = { "sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat", NULL };
	struct weft_process p;
	struct weft_process_opts oo = *o;
	oo.stdio[1] = WEFT_STDIO_PIPE;
	cr_assert_eq(weft_process_spawn(rt, "/bin/sh", argv, &oo, &p), 0);
	char buf[64];
	read_all(p.out, buf, sizeof buf);
	cr_assert_eq(sscanf(buf, "%ld %ld", pgid, sid), 2, "%s", buf);
	*pid = p.pid;
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	weft_process_close(&p);
}

Test(process, a_process_group_or_a_session_of_its_own, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	pid_t pid;
	long pg, sid;
	group_and_session(rt, &WEFT_OPTS_INIT(weft_process_opts), &pid, &pg, &sid);
	cr_assert_eq(pg, (long)getpgrp(), "by default the caller's group");
	cr_assert_eq(sid, (long)getsid(0));
	group_and_session(rt, &WEFT_OPTS_INIT(weft_process_opts, .setpgid = true), &pid, &pg, &sid);
	cr_assert_eq(pg, (long)pid, "a new group led by the child");
	cr_assert_eq(sid, (long)getsid(0), "in the caller's session");
	group_and_session(rt, &WEFT_OPTS_INIT(weft_process_opts, .setsid = true), &pid, &pg, &sid);
	cr_assert(pg == (long)pid && sid == (long)pid, "a new session: group %ld session %ld",
		  pg, sid);

	/* joining a group: a leader that stays up, a second child in it, and
	 * one signal to the group ends both */
	char *slp[] = { "sleep", "30", NULL };
	struct weft_process lead, member;
	cr_assert_eq(weft_process_spawn(rt, "sleep", slp,
					&WEFT_OPTS_INIT(weft_process_opts, .setpgid = true), &lead), 0);
	cr_assert_eq(weft_process_spawn(rt, "sleep", slp,
					&WEFT_OPTS_INIT(weft_process_opts, .setpgid = true,
							.pgid = lead.pid), &member), 0);
	cr_assert_eq(getpgid(member.pid), lead.pid);
	cr_assert_eq(kill(-lead.pid, SIGTERM), 0);
	int st1 = 0, st2 = 0;
	cr_assert_eq(weft_process_wait(&lead, &st1, 10ull * 1000000000ull), 0);
	cr_assert_eq(weft_process_wait(&member, &st2, 10ull * 1000000000ull), 0);
	cr_assert(WIFSIGNALED(st1) && WTERMSIG(st1) == SIGTERM && WIFSIGNALED(st2) &&
		  WTERMSIG(st2) == SIGTERM);
	weft_process_close(&lead);
	weft_process_close(&member);

	/* both, a negative group, a group that is not ours: refused, no child */
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "true", slp,
					&WEFT_OPTS_INIT(weft_process_opts, .setpgid = true,
							.setsid = true), &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(rt, "true", slp,
					&WEFT_OPTS_INIT(weft_process_opts, .setpgid = true,
							.pgid = -5), &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(rt, "true", slp,
					&WEFT_OPTS_INIT(weft_process_opts, .setpgid = true,
							.pgid = 1), &p), -EPERM);
	/* a caller's struct that ends inside the new fields */
	WEFT_OPTS(weft_process_opts, half);
	half.sz = offsetof(struct weft_process_opts, fd) + 2;
	cr_assert_eq(weft_process_spawn(rt, "true", slp, &half, &p), -EINVAL);
	half.sz = offsetof(struct weft_process_opts, pgid) + 1;
	cr_assert_eq(weft_process_spawn(rt, "true", slp, &half, &p), -EINVAL);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------- the child's mask */

Test(process, child_starts_with_no_signal_blocked, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGTERM);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &s, &old), 0);
	char *argv[] = { "grep", "SigBlk", "/proc/self/status", NULL };
	struct weft_process p;
	int rc = weft_process_spawn(rt, "grep", argv,
				    &WEFT_OPTS_INIT(weft_process_opts,
						    .stdio = { [1] = WEFT_STDIO_PIPE }),
				    &p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	cr_assert_eq(rc, 0);
	char buf[128];
	read_all(p.out, buf, sizeof buf);
	cr_assert_str_eq(buf, "SigBlk:\t0000000000000000\n", "%s", buf);
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	weft_process_close(&p);
	wt_rt_destroy(rt);
}

/* -------------------------------------- one child's pipe in no other one */

Test(process, a_pipe_end_is_not_inherited_by_the_next_child, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *cat[] = { "cat", NULL }, *slp[] = { "sleep", "20", NULL };
	struct weft_process a, b;
	cr_assert_eq(weft_process_spawn(rt, "cat", cat,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_NULL }),
					&a), 0);
	cr_assert_eq(weft_process_spawn(rt, "sleep", slp, NULL, &b), 0);
	/* b holding a copy of a's stdin would keep cat waiting for EOF for
	 * 20 s; a's own copy is the only one */
	cr_assert_eq(weft_io_close(a.in), 0);
	a.in = NULL;
	int status;
	cr_assert_eq(weft_process_wait(&a, &status, 5000000000ull), 0,
		     "cat did not see EOF: its stdin leaked into the next child");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(weft_process_kill(&b, SIGKILL), 0);
	cr_assert_eq(weft_process_wait(&b, &status, WEFT_FOREVER), 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	weft_process_close(&a);
	weft_process_close(&b);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------------ signals, time limits, close */

Test(process, kill_timeout_and_a_second_wait, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	int status = 0;
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_process_wait(&p, &status, 20000000), -ETIMEDOUT);
	cr_assert_geq(wt_now_ns() - t0, 20000000ull);
	cr_assert_not_null(p.child, "still running: still registered");
	cr_assert_eq(weft_process_kill(&p, 0), 0);
	cr_assert_eq(weft_process_kill(&p, -1), -EINVAL);
	cr_assert_eq(weft_process_kill(&p, SIGTERM), 0);
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %#x", status);
	cr_assert_eq(weft_process_kill(&p, SIGTERM), -ESRCH, "reaped: no signal to any pid");
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), -ECHILD);
	cr_assert_eq(weft_process_close(&p), 0);
	cr_assert_eq(weft_process_close(&p), 0, "nothing left to close");
	/* closed without a wait: the child runs on, the caller's to reap */
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	pid_t pid = p.pid;
	cr_assert_eq(weft_process_close(&p), 0);
	cr_assert_eq(p.pid, pid);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------------------ wait from a poll task */

struct pw {
	struct weft_process *p;
	atomic_int polls;
	int rc, status;
};

static enum weft_poll pw_poll(void *state, struct weft_cx *cx)
{
	struct pw *w = state;
	atomic_fetch_add(&w->polls, 1);
	int rc = weft_process_wait_poll(w->p, cx, &w->status);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	w->rc = rc;
	return WEFT_READY;
}

Test(process, a_poll_task_waits_for_the_child, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	/* it ends when its stdin does: the task's first poll finds it running */
	char *argv[] = { "sh", "-c", "read x; exit 5", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "/bin/sh", argv,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_PIPE }),
					&p), 0);
	struct pw w = { .p = &p, .rc = 1 };
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, pw_poll, &w, NULL, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&w.polls) >= 1, WT_LONG_MS));
	wt_sleep_ms(20);
	cr_assert_eq(atomic_load(&w.polls), 1, "polled again before the child ended");
	cr_assert_eq(weft_io_close(p.in), 0);
	p.in = NULL;
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(w.rc, 0, "rc %d", w.rc);
	cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 5, "status %#x", w.status);
	cr_assert_geq(atomic_load(&w.polls), 2);
	cr_assert_null(p.child, "reaped: the registration is gone");
	/* reaped: -ECHILD, as the blocking form; bad arguments */
	w.rc = 1;
	cr_assert_eq(weft_spawn_poll(rt, pw_poll, &w, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(w.rc, -ECHILD);
	struct weft_cx *no_cx = NULL;
	cr_assert_eq(weft_process_wait_poll(NULL, no_cx, NULL), -EINVAL);
	cr_assert_eq(weft_process_wait_poll(&p, no_cx, NULL), -EINVAL);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

/*
 * A poll task forks while its child runs: in the forked child (which goes
 * on in the task's code, weft.h) weft_process_wait_poll says -ECHILD, as
 * weft_process_wait and weft_process_kill do. It polled the parent's
 * registration and said WEFT_PENDING (its waker hung on the parent's copy
 * of the runtime): a task that returned that went back into a runtime the
 * child cannot run (found by a review).
 */
struct fw { struct weft_process *p; int child_status; };

static enum weft_poll fork_wait_poll(void *state, struct weft_cx *cx)
{
	struct fw *w = state;
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10);
		int rc = weft_process_wait_poll(w->p, cx, NULL);
		_exit(rc == -ECHILD ? 0 : rc == WEFT_PENDING ? 1 : 2);
	}
	if (pid > 0)
		while (waitpid(pid, &w->child_status, 0) < 0 && errno == EINTR)
			;
	return WEFT_READY;
}

Test(process, a_poll_wait_in_a_child_forked_from_a_poll_task_says_echild, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	struct fw w = { .p = &p, .child_status = -1 };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, fork_wait_poll, &w, NULL, &t), 0);
	cr_assert_eq(weft_join(t, NULL), 0);
	cr_assert(WIFEXITED(w.child_status), "forked child: status %#x", w.child_status);
	cr_assert_eq(WEXITSTATUS(w.child_status), 0,
		     "forked child: 1 WEFT_PENDING, 2 another answer than -ECHILD (%d)",
		     WEXITSTATUS(w.child_status));
	/* the parent's own wait is untouched */
	cr_assert_eq(weft_process_kill(&p, SIGKILL), 0);
	int status;
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

/*
 * weft_process_close in a forked child: -ECHILD with p untouched, so the
 * child can close its copies (close(weft_io_fd(...)), weft.h). It cleared
 * the fields while its weft_io_closes said -ECHILD: the child could no
 * longer find its copy of `cat`'s stdin, and cat never saw the end of its
 * input while the child lived (found by a review).
 */
Test(process, a_close_in_a_forked_child_leaves_the_copies_to_close, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "cat", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "cat", argv,
					&WEFT_OPTS_INIT(weft_process_opts,
							.stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE }),
					&p), 0);
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(10);
		close(go[1]);
		int bad = 0;
		struct weft_process copy;
		memcpy(&copy, &p, sizeof(p));
		if (weft_process_close(&p) != -ECHILD)
			bad |= 1;
		if (memcmp(&p, &copy, sizeof(p)))
			bad |= 2; /* a field cleared */
		/* the copies, closed as weft.h says */
		struct weft_io *ios[3] = { p.in, p.out, p.child };
		for (int i = 0; i < 3; i++)
			if (!ios[i] || weft_io_fd(ios[i]) < 0 || close(weft_io_fd(ios[i])))
				bad |= 4;
		/* stays until the parent has read cat's output to its end */
		char x;
		(void)!read(go[0], &x, 1);
		_exit(bad);
	}
	close(go[0]);
	/* the child's copy of cat's stdin is closed once it is at its read */
	cr_assert_eq(weft_write(p.in, "hi\n", 3), 3);
	cr_assert_eq(weft_io_close(p.in), 0);
	p.in = NULL;
	cr_assert_eq(weft_io_set_deadline(p.out, WEFT_IO_READABLE, weft_now_ns() + 5000 * 1000000ull),
		     0);
	char buf[16];
	size_t n = 0;
	ssize_t r;
	while ((r = weft_read(p.out, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(go[1]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "forked child: status %#x", st);
	cr_assert_eq(WEXITSTATUS(st), 0, "forked child: mask %#x (1 not -ECHILD, 2 p changed, "
		     "4 a copy not found or not closed)", WEXITSTATUS(st));
	cr_assert_eq(r, 0, "cat's output did not end: %zd (its stdin still open in the child)", r);
	cr_assert_eq(n, 3);
	int status;
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------------------ errors leave nothing */

Test(process, errors_leave_no_process_zombie_or_descriptor, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int fds = count_fds();
	struct weft_process p;
	char *argv[] = { "x", NULL }, *none[] = { NULL };
	WEFT_OPTS(weft_process_opts, all_pipes, .stdio = { 1, 1, 1 });
	cr_assert_eq(weft_process_spawn(rt, "/nonexistent/prog", argv, &all_pipes, &p), -ENOENT);
	cr_assert(!p.pid && !p.child && !p.in && !p.out && !p.err, "out is cleared");
	cr_assert_eq(weft_process_spawn(rt, "weft-no-such-program", argv, &all_pipes, &p),
		     -ENOENT);
	cr_assert_eq(weft_process_spawn(rt, "/proc", argv, &all_pipes, &p), -EACCES);
	cr_assert_eq(weft_process_spawn(rt, "", argv, NULL, &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(rt, "true", none, NULL, &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(rt, "true", NULL, NULL, &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(NULL, "true", argv, NULL, &p), -EINVAL);
	cr_assert_eq(weft_process_spawn(rt, "true", argv, NULL, NULL), -EINVAL);
	WEFT_OPTS(weft_process_opts, bad, .stdio = { 7 });
	cr_assert_eq(weft_process_spawn(rt, "true", argv, &bad, &p), -EINVAL);
	bad = (struct weft_process_opts)WEFT_OPTS_INIT(weft_process_opts);
	bad.sz = 4; /* no header produced it */
	cr_assert_eq(weft_process_spawn(rt, "true", argv, &bad, &p), -EINVAL);
	bad.sz = offsetof(struct weft_process_opts, cwd) + 3; /* half a pointer */
	cr_assert_eq(weft_process_spawn(rt, "true", argv, &bad, &p), -EINVAL);
	bad.sz = WEFT_OPTS_MAX_SZ + 1;
	cr_assert_eq(weft_process_spawn(rt, "true", argv, &bad, &p), -EINVAL);
	bad.sz = offsetof(struct weft_process_opts, cwd); /* an older header's: fine */
	cr_assert_eq(weft_process_spawn(rt, "true", argv, &bad, &p), 0);
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	cr_assert_eq(weft_process_close(&p), 0);
	cr_assert_eq(weft_process_wait(NULL, NULL, 0), -EINVAL);
	cr_assert_eq(weft_process_kill(NULL, 0), -EINVAL);
	cr_assert_eq(weft_process_close(NULL), -EINVAL);
	cr_assert(WT_WAIT_UNTIL(count_fds() == fds, WT_LONG_MS), "a descriptor left open");
	/* the child has started when its registration fails (shutdown): it
	 * is killed and reaped, and its pipes closed */
	cr_assert_eq(weft_runtime_shutdown(rt, 1000000000), 0);
	char *slp[] = { "sleep", "30", NULL };
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_process_spawn(rt, "sleep", slp, &all_pipes, &p), -ESHUTDOWN);
	cr_assert_lt(wt_now_ns() - t0, 10000000000ull, "the child was not waited out");
	cr_assert(!p.pid && !p.child);
	cr_assert(WT_WAIT_UNTIL(count_fds() == fds, WT_LONG_MS), "a descriptor left open");
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------------ kill beside a wait (review) */

/* The usual "kill it when the time is up": one thread waits, another
 * kills. The kill read the child's registration that the wait reaped and
 * closed: a NULL dereference in 5 of 5 runs of a review's program. Now
 * the kill has its own pidfd: 0 or -ESRCH, never a crash. */
struct kw { struct weft_process *p; int rc, status; };

static void *kw_wait(void *arg)
{
	struct kw *k = arg;
	k->rc = weft_process_wait(k->p, &k->status, WEFT_FOREVER);
	return NULL;
}

Test(process, kill_beside_a_wait_on_another_thread, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "true", NULL };
	int esrch = 0;
	for (int r = 0; r < 300; r++) {
		struct weft_process p;
		cr_assert_eq(weft_process_spawn(rt, "true", argv, NULL, &p), 0);
		struct kw k = { .p = &p };
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, kw_wait, &k), 0);
		int rc;
		while ((rc = weft_process_kill(&p, 0)) == 0)
			;
		cr_assert_eq(rc, -ESRCH, "round %d: kill said %d", r, rc);
		esrch++;
		pthread_join(th, NULL);
		cr_assert_eq(k.rc, 0);
		cr_assert(WIFEXITED(k.status) && WEXITSTATUS(k.status) == 0);
		cr_assert_eq(weft_process_close(&p), 0);
		cr_assert_eq(weft_process_kill(&p, 0), -EBADF, "after close");
	}
	cr_assert_eq(esrch, 300);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* --------------------------------- a caller with 0-2 closed (review) */

/* A daemon has closed its standard streams, so pipe2 and open hand out
 * 0-2: the child's dup2s onto 0-2 overwrote one another and a /dev/null
 * stderr became the stdout pipe (found by a review: 2 of 216 stdio and
 * closed-fd combinations). In a forked child, with its own runtime. */
static int daemon_case(int closed_mask)
{
	struct weft_runtime *rt;
	if (weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt))
		return 10;
	/* after the runtime's own fds, which would take 0-2 first */
	for (int fd = 0; fd < 3; fd++)
		if (closed_mask & (1 << fd))
			close(fd);
	char *argv[] = { "sh", "-c", "readlink /proc/self/fd/0 /proc/self/fd/2", NULL };
	struct weft_process p;
	if (weft_process_spawn(rt, "sh", argv,
			       &WEFT_OPTS_INIT(weft_process_opts,
					       .stdio = { WEFT_STDIO_NULL, WEFT_STDIO_PIPE,
							  WEFT_STDIO_NULL }),
			       &p))
		return 11;
	char buf[256];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf - 1 && (r = weft_read(p.out, buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	int status;
	if (weft_process_wait(&p, &status, WEFT_FOREVER) || weft_process_close(&p))
		return 12;
	weft_runtime_destroy(rt);
	return strcmp(buf, "/dev/null\n/dev/null\n") ? 13 : 0;
}

Test(process, a_caller_without_its_standard_streams, .timeout = WT_TMO(30))
{
	for (int mask = 1; mask < 8; mask++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			_exit(daemon_case(mask));
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "fds %s%s%s closed: case failed with %d (13: the child's stdin or "
			  "stderr was not /dev/null)", mask & 1 ? "0 " : "", mask & 2 ? "1 " : "",
			  mask & 4 ? "2" : "", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* ------------------------------- no descriptor for the pidfd (review) */

/* The program ran out of descriptors just for the pidfd (its streams
 * inherited, so spawning needed none): the spawn said -EMFILE and left
 * the child running, its pid cleared from the result (found by a review).
 * In a forked child, whose descriptor limit this may lower. */
static int emfile_case(void)
{
	struct weft_runtime *rt;
	if (weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt))
		return 10;
	struct rlimit rl = { 64, 64 };
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 11;
	while (dup(0) >= 0)
		;
	if (errno != EMFILE)
		return 12;
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p;
	int rc = weft_process_spawn(rt, "sleep", argv, NULL, &p);
	if (rc != -EMFILE)
		return 13;
	errno = 0;
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		return 14; /* a child left behind */
	return 0;
}

Test(process, no_descriptor_for_the_pidfd_leaves_no_child, .timeout = WT_TMO(30))
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(emfile_case());
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "case failed with %d (13: not -EMFILE; 14: the child was left behind)",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ------------------------------------ a zombie a tracer still holds */

/*
 * A debugger (a ptracer that is not the parent: gdb -p, strace -p) holds
 * the child's zombie until it waits for it: the pidfd is readable at the
 * exit, but waitid(WNOHANG) finds nothing to reap until the tracer lets
 * go. weft_process_wait went round its wait and reap without sleeping for
 * as long (the readiness was never cleared: a thread's whole CPU), and
 * weft_child_wait said -ECHILD, leaving the caller's child a zombie (found
 * by a review). Both wait until the tracer lets go, and reap it.
 */
struct tracer { pid_t pid; };

/* A process that seizes `child` (no stop) and holds its zombie for
 * hold_ms before it exits (which hands the zombie to the parent). false
 * if ptrace is not allowed here. */
static bool trace_child(pid_t child, unsigned hold_ms, struct tracer *t)
{
	int sync[2];
	cr_assert_eq(pipe(sync), 0);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		/* none of the test's pipes kept open here: the tracee's end
		 * of stream must come from the test */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != sync[1])
				close(fd);
		char ok = ptrace(PTRACE_SEIZE, child, 0, 0) == 0 ? 'y' : 'n';
		if (write(sync[1], &ok, 1) != 1)
			_exit(1);
		usleep(hold_ms * 1000u);
		_exit(0);
	}
	close(sync[1]);
	char ok = 'n';
	cr_assert_eq(read(sync[0], &ok, 1), 1);
	close(sync[0]);
	return ok == 'y';
}

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A forked child that exits 7 at its pipe's end (closing *go ends it):
 * ends only once the test lets it, however late it is traced. */
static pid_t child_exiting_at_eof(int *go)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		char x;
		close(p[1]);
		(void)!read(p[0], &x, 1);
		_exit(7);
	}
	close(p[0]);
	*go = p[1];
	return c;
}

/* `head -c 1` with its stdin a pipe, seized by a tracer that holds its
 * zombie for 1.5 s: it ends at its stdin's end (p->in closed), however
 * late it is traced. Skips (a failure with CI=true) where ptrace is not
 * allowed. */
static void spawn_traced_head(struct weft_runtime *rt, struct weft_process *p, struct tracer *t)
{
	char *argv[] = { "head", "-c", "1", NULL };
	cr_assert_eq(weft_process_spawn(rt, "head", argv,
					&WEFT_OPTS_INIT(weft_process_opts, .stdio = { WEFT_STDIO_PIPE }),
					p), 0);
	if (!trace_child(p->pid, 1500, t)) {
		weft_io_close(p->in);
		p->in = NULL;
		cr_assert_eq(weft_process_wait(p, NULL, WEFT_FOREVER), 0);
		weft_process_close(p);
		waitpid(t->pid, NULL, 0);
		wt_rt_destroy(rt);
		WT_SKIP("ptrace(PTRACE_SEIZE) is not allowed here");
	}
}

Test(process, a_zombie_a_tracer_holds_is_waited_for_without_spinning, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	/* no child of its own: a SIGCHLD would stop a tracee. It ends when
	 * its stdin does, so only once it is traced, however late that is */
	struct weft_process p;
	struct tracer t;
	spawn_traced_head(rt, &p, &t);
	uint64_t t0 = wt_now_ns();
	cr_assert_eq(weft_io_close(p.in), 0); /* EOF: it exits, a zombie the tracer holds */
	p.in = NULL;
	double c0 = thread_cpu_s();
	int status = -1;
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	double cpu = thread_cpu_s() - c0, took = (double)(wt_now_ns() - t0) / 1e9;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_geq(took, 0.3, "reaped before the tracer let go? %.3f s", took);
	cr_assert_lt(cpu, 0.1, "the wait spun: %.3f s of CPU in %.3f s", cpu, took);
	cr_assert_eq(waitpid(t.pid, NULL, 0), t.pid);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();

	/* weft_child_wait: the same child, ours to reap, not -ECHILD */
	int go;
	pid_t c = child_exiting_at_eof(&go); /* ends once traced: at the pipe's end */
	cr_assert(trace_child(c, 500, &t));
	close(go);
	status = -1;
	int rc = weft_child_wait(rt, c, &status, WEFT_FOREVER);
	cr_assert_eq(rc, 0, "weft_child_wait = %d", rc);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
	cr_assert_eq(waitpid(t.pid, NULL, 0), t.pid);
	assert_no_children();
	wt_rt_destroy(rt);
}

/*
 * The same zombie, waited for with a time limit shorter than the tracer's
 * hold: the pidfd is readable, nothing can be reaped, and once the limit
 * has passed the wait must say -ETIMEDOUT (the child still the caller's).
 * Both waits looked again at once, with no time left, for as long as the
 * tracer held on: a thread's whole CPU, and the limit ignored.
 */
Test(process, a_time_limit_ends_the_wait_for_a_zombie_a_tracer_holds, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_process p;
	struct tracer t;
	spawn_traced_head(rt, &p, &t);
	cr_assert_eq(weft_io_close(p.in), 0); /* EOF: a zombie the tracer holds */
	p.in = NULL;
	wt_sleep_ms(100); /* it has ended: its pidfd is readable */
	int status = -1;
	uint64_t t0 = wt_now_ns();
	double c0 = thread_cpu_s();
	int rc = weft_process_wait(&p, &status, 200000000ull);
	double cpu = thread_cpu_s() - c0, took = (double)(wt_now_ns() - t0) / 1e9;
	cr_assert_eq(rc, -ETIMEDOUT, "weft_process_wait = %d after %.3f s (%.3f s of CPU)", rc,
		     took, cpu);
	cr_assert_lt(took, 1.0, "the 200 ms limit ended the wait after %.3f s", took);
	cr_assert_lt(cpu, 0.1, "the wait spun: %.3f s of CPU in %.3f s", cpu, took);
	cr_assert_eq(status, -1, "status untouched");
	cr_assert_not_null(p.child, "not reaped: still registered");
	cr_assert_eq(weft_process_wait(&p, &status, 0), -ETIMEDOUT, "a look, nothing to reap");
	cr_assert_eq(weft_process_wait(&p, &status, WEFT_FOREVER), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_eq(waitpid(t.pid, NULL, 0), t.pid);
	cr_assert_eq(weft_process_close(&p), 0);

	/* weft_child_wait, on a forked child the tracer holds */
	int go;
	pid_t c = child_exiting_at_eof(&go); /* ends once traced: at the pipe's end */
	cr_assert(trace_child(c, 1500, &t));
	close(go);
	wt_sleep_ms(100);
	status = -1;
	t0 = wt_now_ns();
	c0 = thread_cpu_s();
	rc = weft_child_wait(rt, c, &status, 200000000ull);
	cpu = thread_cpu_s() - c0;
	took = (double)(wt_now_ns() - t0) / 1e9;
	cr_assert_eq(rc, -ETIMEDOUT, "weft_child_wait = %d after %.3f s (%.3f s of CPU)", rc, took,
		     cpu);
	cr_assert_lt(took, 1.0, "the 200 ms limit ended the wait after %.3f s", took);
	cr_assert_lt(cpu, 0.1, "the wait spun: %.3f s of CPU in %.3f s", cpu, took);
	cr_assert_eq(status, -1, "status untouched");
	cr_assert_eq(weft_child_wait(rt, c, &status, WEFT_FOREVER), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
	cr_assert_eq(waitpid(t.pid, NULL, 0), t.pid);
	assert_no_children();
	wt_rt_destroy(rt);
}

/*
 * The same zombie through weft_child_open, waited for as io.h says: a
 * WEFT_SEL_READY arm, then weft_child_reap, again on -EAGAIN. The reap's
 * -EAGAIN clears the readiness it looked at (as a weft call's EAGAIN
 * does), so the next select waits for the tracer to let go. It did not:
 * the pidfd stayed readable with nothing to reap, and the loop went round
 * at once for as long as the tracer held on (found by a review: 1.4
 * million rounds a second).
 */
Test(process, a_select_and_reap_loop_waits_for_a_zombie_a_tracer_holds, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	int go;
	pid_t c = child_exiting_at_eof(&go); /* ends once traced: at the pipe's end */
	struct tracer t;
	if (!trace_child(c, 600, &t)) {
		close(go);
		waitpid(c, NULL, 0);
		waitpid(t.pid, NULL, 0);
		wt_rt_destroy(rt);
		WT_SKIP("ptrace(PTRACE_SEIZE) is not allowed here");
	}
	struct weft_io *io;
	cr_assert_eq(weft_child_open(rt, c, &io), 0);
	close(go); /* it exits: a zombie the tracer holds */
	double c0 = thread_cpu_s();
	int status = -1, rc, rounds = 0;
	do {
		struct weft_select_arm arm[] = { WEFT_SEL_READY(io, WEFT_IO_READABLE) };
		cr_assert_eq(weft_select_timeout(arm, 1, 5000000000ull), 0);
		rc = weft_child_reap(io, &status);
		rounds++;
	} while (rc == -EAGAIN && rounds < 100000);
	double cpu = thread_cpu_s() - c0;
	cr_assert_eq(rc, 0, "weft_child_reap = %d after %d rounds", rc, rounds);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
	cr_assert_lt(rounds, 20, "the loop went round %d times (%.3f s of CPU)", rounds, cpu);
	cr_assert_lt(cpu, 0.1, "the loop spun: %.3f s of CPU", cpu);
	cr_assert_eq(waitpid(t.pid, NULL, 0), t.pid);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ----------------------------- a spawn once shutdown has begun (review) */

/* A spawn on a runtime shut down says -ESHUTDOWN without starting the
 * program: it started it, then killed it when the pidfd's registration
 * said -ESHUTDOWN - the program ran for a moment (a shell's first command
 * could take effect). Counted by SIGCHLD, which every child of ours that
 * ends raises. */
static atomic_int g_sigchld;

static void on_sigchld(int sig)
{
	(void)sig;
	atomic_fetch_add(&g_sigchld, 1);
}

Test(process, a_spawn_once_shutdown_has_begun_starts_nothing, .timeout = WT_TMO(30))
{
	struct sigaction sa = { .sa_handler = on_sigchld }, old;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGCHLD, &sa, &old), 0);
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	atomic_store(&g_sigchld, 0);
	char *argv[] = { "true", NULL };
	struct weft_process p;
	int before = count_fds();
	for (int k = 0; k < 3; k++) {
		cr_assert_eq(weft_process_spawn(rt, "true", argv,
						&WEFT_OPTS_INIT(weft_process_opts,
								.stdio = { WEFT_STDIO_PIPE,
									   WEFT_STDIO_PIPE,
									   WEFT_STDIO_NULL }),
						&p),
			     -ESHUTDOWN);
		cr_assert_null(p.child);
	}
	cr_assert_eq(count_fds(), before, "a descriptor was left behind");
	assert_no_children();
	cr_assert_eq(atomic_load(&g_sigchld), 0, "%d children were started and killed",
		     atomic_load(&g_sigchld));
	wt_rt_destroy(rt);
	cr_assert_eq(sigaction(SIGCHLD, &old, NULL), 0);
}

/* ------------------------------------- two waits at once (review) */

/* Two tasks wait for one child (io.h: "-ECHILD ... reaped by another
 * wait"): one reaps it (0, its status), the other says -ECHILD. The
 * other said -EBADF (its wait woke on the registration the reap closed),
 * or -EINVAL when it read p->child just cleared (found by a review). */
struct w2 { struct weft_process *p; int rc, status; atomic_int *started; };

static void *w2_wait(void *arg)
{
	struct w2 *w = arg;
	atomic_fetch_add(w->started, 1);
	w->rc = weft_process_wait(w->p, &w->status, WEFT_FOREVER);
	return NULL;
}

Test(process, two_waits_at_once_one_reaps_the_other_says_echild, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	for (int r = 0; r < 40; r++) {
		/* half the rounds: both wait before the child ends; the
		 * others: it ends as they start */
		char *argv_sleep[] = { "sleep", "30", NULL }, *argv_true[] = { "true", NULL };
		char **argv = r % 2 ? argv_true : argv_sleep;
		struct weft_process p;
		cr_assert_eq(weft_process_spawn(rt, argv[0], argv, NULL, &p), 0);
		atomic_int started = 0;
		struct w2 w[2] = { { .p = &p, .started = &started }, { .p = &p, .started = &started } };
		struct weft_task *t[2];
		for (int k = 0; k < 2; k++)
			cr_assert_eq(weft_spawn(rt, w2_wait, &w[k], &t[k]), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&started) == 2, WT_LONG_MS));
		if (argv == argv_sleep)
			cr_assert_eq(weft_process_kill(&p, SIGKILL), 0);
		for (int k = 0; k < 2; k++)
			cr_assert_eq(weft_join_timeout(t[k], NULL, 5000 * 1000000ull), 0,
				     "round %d: wait %d hung", r, k);
		int win = w[0].rc == 0 ? 0 : 1;
		cr_assert_eq(w[win].rc, 0, "round %d: %d and %d", r, w[0].rc, w[1].rc);
		cr_assert_eq(w[!win].rc, -ECHILD, "round %d: the other wait said %d", r,
			     w[!win].rc);
		if (argv == argv_sleep)
			cr_assert(WIFSIGNALED(w[win].status) && WTERMSIG(w[win].status) == SIGKILL);
		else
			cr_assert(WIFEXITED(w[win].status) && WEXITSTATUS(w[win].status) == 0);
		cr_assert_null(p.child);
		cr_assert_eq(weft_process_close(&p), 0);
	}
	/* and a weft_process_close beside a wait ends it with -EBADF (io.h),
	 * the child left unreaped, the caller's */
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	pid_t pid = p.pid;
	atomic_int started = 0;
	struct w2 w = { .p = &p, .started = &started };
	struct weft_task *t;
	cr_assert_eq(weft_spawn(rt, w2_wait, &w, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&started) == 1, WT_LONG_MS));
	cr_assert_eq(weft_join_timeout(t, NULL, 20 * 1000000ull), -ETIMEDOUT, "it waits");
	cr_assert_eq(weft_process_close(&p), 0);
	cr_assert_eq(weft_join_timeout(t, NULL, 5000 * 1000000ull), 0, "the wait hung");
	cr_assert_eq(w.rc, -EBADF);
	cr_assert_eq(kill(pid, SIGKILL), 0, "not reaped");
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------------------ a kill beside a close (review) */

/*
 * This executable defines syscall(), which libweft resolves here: armed,
 * a weft_process_kill's pidfd_send_signal on the kill descriptor waits
 * inside the call while a weft_process_close runs on another thread.
 * The close used to close the descriptor under the kill at once; the test
 * then gives the freed number to another child's pidfd, and the kill went
 * on to signal that child (found by a review). Now the close waits for
 * the kill to leave: the kill reaches its own child, and the other child
 * lives. The held call goes on once the close is waiting for it (the
 * descriptor bits of p->_kill_fd cleared, a kill still counted: lib/io/
 * process.c) or, as before, once the close has finished and the number
 * was taken.
 */
static struct {
	atomic_int armed, entered, close_done, taken;
	int fd;
	struct weft_process *p;
} g_hold;

/* default visibility: the project builds with -fvisibility=hidden */
__attribute__((visibility("default"))) long syscall(long n, ...)
{
	va_list ap;
	va_start(ap, n);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* looked up by whichever thread comes first (the same answer) */
	static long (*_Atomic real)(long, ...);
	long (*fn)(long, ...) = atomic_load(&real);
	if (!fn) {
		fn = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
		atomic_store(&real, fn);
	}
	if (n == SYS_pidfd_send_signal && atomic_load(&g_hold.armed) && (int)a[0] == g_hold.fd &&
	    atomic_exchange(&g_hold.armed, 0)) {
		atomic_store(&g_hold.entered, 1);
		for (int i = 0; i < 500000; i++) { /* 5 s at most */
			int v = __atomic_load_n(&g_hold.p->_kill_fd, __ATOMIC_SEQ_CST);
			if ((v != 0 && (v & ((1 << 21) - 1)) == 0) ||
			    (atomic_load(&g_hold.close_done) && atomic_load(&g_hold.taken)))
				break;
			usleep(10);
		}
	}
	/* six arguments, as many as a system call takes: those the caller
	 * did not pass are ignored by the call */
	return fn(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

struct kc { struct weft_process *p; int rc; };

static void *kc_kill(void *arg)
{
	struct kc *k = arg;
	k->rc = weft_process_kill(k->p, SIGTERM);
	return NULL;
}

static void *kc_close(void *arg)
{
	struct kc *k = arg;
	k->rc = weft_process_close(k->p);
	atomic_store(&g_hold.close_done, 1);
	return NULL;
}

Test(process, a_kill_beside_a_close_never_signals_another_child, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p, other;
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &other), 0);
	pid_t mine = p.pid;
	int other_pidfd = (int)syscall(SYS_pidfd_open, other.pid, 0);
	cr_assert_geq(other_pidfd, 0);
	g_hold.p = &p;
	g_hold.fd = (p._kill_fd & ((1 << 21) - 1)) - 1;
	atomic_store(&g_hold.entered, 0);
	atomic_store(&g_hold.close_done, 0);
	atomic_store(&g_hold.taken, 0);
	atomic_store(&g_hold.armed, 1);
	struct kc k = { .p = &p }, c = { .p = &p };
	pthread_t kt, ct;
	cr_assert_eq(pthread_create(&kt, NULL, kc_kill, &k), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_hold.entered), WT_LONG_MS));
	cr_assert_eq(pthread_create(&ct, NULL, kc_close, &c), 0);
	/* Once the close is done - under the held kill, as it was, or after
	 * the kill it waited for - the freed number goes to the other
	 * child's pidfd, as a spawn on another thread could take it. */
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_hold.close_done), WT_LONG_MS));
	int taken = fcntl(other_pidfd, F_DUPFD_CLOEXEC, g_hold.fd);
	atomic_store(&g_hold.taken, 1);
	pthread_join(kt, NULL);
	pthread_join(ct, NULL);
	cr_assert_eq(c.rc, 0);
	siginfo_t si = { 0 };
	cr_assert_eq(waitid(P_PID, (id_t)other.pid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
	cr_assert_eq(si.si_pid, 0, "the kill signalled the other child (the close freed "
		     "its descriptor, number %d, under it; taken again: %d)", g_hold.fd, taken);
	cr_assert_eq(k.rc, 0);
	int status;
	cr_assert_eq(waitpid(mine, &status, 0), mine, "not reaped: the caller's after the close");
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %#x", status);
	if (taken >= 0)
		close(taken);
	close(other_pidfd);
	cr_assert_eq(weft_process_kill(&other, SIGKILL), 0);
	cr_assert_eq(weft_process_wait(&other, NULL, WEFT_FOREVER), 0);
	cr_assert_eq(weft_process_close(&other), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------- a wait after, or across, a close (review) */

/* weft_process_close on another thread while a poll task waits in
 * weft_process_wait_poll: the task, polled again, says -EBADF as the
 * blocking wait does - it said -ECHILD ("reaped already", io.h), found
 * p->child cleared, and a caller that took that at its word left the
 * child unreaped (found by a review). A wait after the close says
 * -EBADF too, as weft_process_kill does; -ECHILD stays for a reaped child
 * and for a p a failed spawn zeroed. */
struct cw { struct weft_process *p; atomic_int polls; int rc; };

static enum weft_poll cw_poll(void *arg, struct weft_cx *cx)
{
	struct cw *w = arg;
	int rc = weft_process_wait_poll(w->p, cx, NULL);
	atomic_fetch_add(&w->polls, 1);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	w->rc = rc;
	return WEFT_READY;
}

Test(process, a_wait_across_or_after_a_close_says_ebadf, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	char *argv[] = { "sleep", "30", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "sleep", argv, NULL, &p), 0);
	pid_t pid = p.pid;
	struct cw w = { .p = &p };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, cw_poll, &w, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&w.polls) >= 1, WT_LONG_MS));
	cr_assert_eq(weft_process_close(&p), 0);
	cr_assert_eq(weft_join_timeout(t, NULL, 5000 * 1000000ull), 0, "the poll wait hung");
	cr_assert_eq(w.rc, -EBADF, "the poll wait said %d", w.rc);
	cr_assert_eq(weft_process_wait(&p, NULL, 0), -EBADF);
	cr_assert_eq(kill(pid, SIGKILL), 0, "not reaped: the caller's");
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* a failed spawn's zeroed p, and a reaped one: -ECHILD */
	char *bad[] = { "nope", NULL };
	cr_assert_eq(weft_process_spawn(rt, "/nonexistent/nope", bad, NULL, &p), -ENOENT);
	cr_assert_eq(weft_process_wait(&p, NULL, 0), -ECHILD);
	char *tr[] = { "true", NULL };
	cr_assert_eq(weft_process_spawn(rt, "true", tr, NULL, &p), 0);
	cr_assert_eq(weft_process_wait(&p, NULL, WEFT_FOREVER), 0);
	cr_assert_eq(weft_process_wait(&p, NULL, 0), -ECHILD);
	cr_assert_eq(weft_process_close(&p), 0);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ------------------------- a close beside a wait that reaps (review) */

/*
 * weft_process_close on one thread while weft_process_wait on another
 * reaps the child: the wait closed the registration, then cleared
 * p->child; a close in between took the closed registration and closed
 * it again, and said -EBADF (with the registration's memory reused
 * meanwhile, it would have closed another one). Staged: this program's
 * close(2) (which libweft calls) holds the wait inside its close of the
 * pidfd while the test closes p. Now the wait takes the registration out
 * of p->child before it closes it, and the close finds nothing to close.
 */
static struct { atomic_int armed, entered, go; int fd; } g_close_hold;

__attribute__((visibility("default"))) int close(int fd)
{
	static int (*_Atomic real)(int);
	int (*fn)(int) = atomic_load(&real);
	if (!fn) {
		fn = (int (*)(int))dlsym(RTLD_NEXT, "close");
		atomic_store(&real, fn);
	}
	if (atomic_load(&g_close_hold.armed) && fd == g_close_hold.fd &&
	    atomic_exchange(&g_close_hold.armed, 0)) {
		atomic_store(&g_close_hold.entered, 1);
		for (int i = 0; i < 500000 && !atomic_load(&g_close_hold.go); i++) /* 5 s at most */
			usleep(10);
	}
	return fn(fd);
}

struct rw { struct weft_process *p; int rc, status; };

static void *rw_wait(void *arg)
{
	struct rw *w = arg;
	w->rc = weft_process_wait(w->p, &w->status, WEFT_FOREVER);
	return NULL;
}

Test(process, a_close_beside_a_wait_that_reaps_closes_nothing_twice, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	char *argv[] = { "true", NULL };
	struct weft_process p;
	cr_assert_eq(weft_process_spawn(rt, "true", argv, NULL, &p), 0);
	g_close_hold.fd = weft_io_fd(p.child);
	cr_assert_geq(g_close_hold.fd, 0);
	atomic_store(&g_close_hold.entered, 0);
	atomic_store(&g_close_hold.go, 0);
	atomic_store(&g_close_hold.armed, 1);
	struct rw w = { .p = &p, .rc = 1, .status = -1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, rw_wait, &w), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_close_hold.entered), WT_LONG_MS),
		  "the wait never closed the pidfd");
	int crc = weft_process_close(&p);
	atomic_store(&g_close_hold.go, 1);
	pthread_join(th, NULL);
	atomic_store(&g_close_hold.armed, 0);
	cr_assert_eq(w.rc, 0, "wait: %d", w.rc);
	cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0, "status %#x", w.status);
	cr_assert_eq(crc, 0, "the close closed the reaped child's registration again: %d", crc);
	cr_assert_null(p.child);
	assert_no_children();
	wt_rt_destroy(rt);
}

/* ---------------- a wait's registration reused under it (2026-12-07) */

/*
 * A wait read p->child and used it without a reference of its own while
 * a weft_process_close (or a wait that reaped) on another thread closed
 * it; the driver freed the registration and the next weft_io_register
 * took its memory. The wait then went on with another file's
 * registration: a poll wait hung its waker there and never ended, a
 * blocking wait could reap through another child's pidfd (found by a
 * review). Staged: this program's pthread_mutex_lock (which libweft
 * calls) holds the poll task where weft_io_poll_ready takes the
 * registration's lock, while the test closes p and registers pipes until
 * one gets the registration's memory. Now a wait holds the registration
 * from the moment it reads p->child: its memory is not reused, and the
 * wait says -EBADF.
 */
static struct { atomic_int armed, entered, go; char *lo; } g_lock_hold;

__attribute__((visibility("default"))) int pthread_mutex_lock(pthread_mutex_t *m)
{
	static int (*_Atomic real)(pthread_mutex_t *);
	int (*fn)(pthread_mutex_t *) = atomic_load(&real);
	if (!fn) {
		fn = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
		atomic_store(&real, fn);
	}
	/* a mutex inside the registration (its lock; 256 bytes in all) */
	if (atomic_load(&g_lock_hold.armed) && (char *)m >= g_lock_hold.lo &&
	    (char *)m < g_lock_hold.lo + 256 && atomic_exchange(&g_lock_hold.armed, 0)) {
		atomic_store(&g_lock_hold.entered, 1);
		for (int i = 0; i < 500000 && !atomic_load(&g_lock_hold.go); i++) /* 5 s at most */
			usleep(10);
	}
	return fn(m);
}

/* Spawned on a worker: under io_uring the pidfd's poll is armed then,
 * under the registration's lock, not later by a worker the hold would
 * catch instead of the wait. */
static void *spawn_sleep(void *arg)
{
	char *argv[] = { "sleep", "30", NULL };
	return (void *)(intptr_t)weft_process_spawn(weft_runtime_current(), "sleep", argv, NULL,
						   arg);
}

Test(process, a_wait_holds_its_registration_against_reuse, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_process p;
	struct weft_task *st;
	void *src;
	cr_assert_eq(weft_spawn(rt, spawn_sleep, &p, &st), 0);
	cr_assert_eq(weft_join(st, &src), 0);
	cr_assert_null(src, "spawn: %d", (int)(intptr_t)src);
	pid_t pid = p.pid;
	struct weft_io *old = p.child;
	g_lock_hold.lo = (char *)old;
	atomic_store(&g_lock_hold.entered, 0);
	atomic_store(&g_lock_hold.go, 0);
	atomic_store(&g_lock_hold.armed, 1);
	struct cw w = { .p = &p, .rc = 1 };
	struct weft_task *t;
	cr_assert_eq(weft_spawn_poll(rt, cw_poll, &w, NULL, &t), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&g_lock_hold.entered), WT_LONG_MS),
		  "the poll wait never took the registration's lock");
	cr_assert_eq(weft_process_close(&p), 0);
	/* registrations, each made readable (a driver pass frees what was
	 * closed) and closed again, until one takes the old one's memory or
	 * 300 have been made: 64 to a slab, so a freed one comes round */
	struct weft_io *reused = NULL;
	int fds[2] = { -1, -1 };
	for (int i = 0; i < 300 && !reused; i++) {
		struct weft_io *r;
		cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
		cr_assert_eq(weft_io_register(rt, fds[0], &r), 0);
		cr_assert_eq(write(fds[1], "x", 1), 1);
		if (r == old) {
			reused = r; /* kept: the wait, let go, finds it */
			break;
		}
		cr_assert_eq(weft_io_close(r), 0);
		close(fds[1]);
		wt_sleep_ms(1);
	}
	atomic_store(&g_lock_hold.go, 1);
	int jrc = weft_join_timeout(t, NULL, 5000 * 1000000ull);
	if (reused) { /* let a hung wait go: its waker hangs on this one */
		cr_assert_eq(weft_io_close(reused), 0);
		close(fds[1]);
		if (jrc)
			cr_assert_eq(weft_join(t, NULL), 0);
	}
	cr_assert_eq(jrc, 0, "the wait hung on another registration");
	cr_assert_null(reused, "the registration was reused while a wait held it");
	cr_assert_eq(w.rc, -EBADF, "the poll wait said %d", w.rc);
	cr_assert_eq(kill(pid, SIGKILL), 0, "not reaped: the caller's");
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	assert_no_children();
	wt_rt_destroy(rt);
}
