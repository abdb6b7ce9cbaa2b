/*
 * process.c - weft_process_spawn: start a program with its standard
 * streams as pipes registered with the runtime (Go's exec.Cmd with
 * StdinPipe/StdoutPipe, Tokio's process::Command), and wait for, signal
 * and release it.
 *
 * posix_spawn(p) starts the child (glibc: clone(CLONE_VM | CLONE_VFORK),
 * so an exec failure - ENOENT, EACCES, ENOEXEC - comes back as the call's
 * own error and no half-started child is left). Every descriptor made
 * here is O_CLOEXEC from birth, so another thread's concurrent fork or
 * spawn cannot inherit one; the child's ends are moved to 0, 1, 2 with
 * file actions (dup2 clears the flag on the copy). The child starts with
 * an empty signal mask (a worker's mask, or the caller's, is not its
 * business); caught signals go back to their defaults at exec.
 *
 * Nothing is half-done on failure: before the child exists, everything
 * made is closed; after, a registration that fails (-ENOMEM, -ESHUTDOWN,
 * -EMFILE for the pidfd) kills the child with SIGKILL and reaps it -
 * through its pidfd, or, with none, by pid while it is our unreaped child
 * (its pid held) - so the caller gets an error and no process, zombie or
 * descriptor behind it.
 *
 * The child's registration is its pidfd (weft_child_open), so waiting
 * (weft_process_wait), a select arm on it and signalling
 * (pidfd_send_signal) all name this child, never a process that took over
 * its pid after it was reaped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/io.h>
#include <weft/weft.h>

#include "runtime.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/*
 * p->_kill_fd: weft_process_kill's pidfd + 1 in the low bits (0: none),
 * and above them the number of kills in flight on it. A kill counts
 * itself in before it reads the descriptor and out after its system
 * call; weft_process_close clears the descriptor bits, then waits for
 * the count to drain before it closes the descriptor. Without that a
 * kill beside a close could signal through a number the close had freed
 * and another child's pidfd had taken at once - another process (found
 * by a review). A kill is one system call that does not block, so the
 * wait is short. A wait counts itself in the same way while it reads
 * p->child and takes a reference on it (hold_child).
 */
#define KILL_FD_BITS 21 /* descriptors below 2^21 - 1; pidfds are low */
#define KILL_FD_MASK ((1 << KILL_FD_BITS) - 1)
#define KILL_ONE (1 << KILL_FD_BITS)

static int read_process_opts(const struct weft_process_opts *in, struct weft_process_opts *o)
{
	/* where a caller's struct may end: after a field (or an array
	 * element), never inside one */
	static const struct { size_t off, size, unit; } fields[] = {
		{ offsetof(struct weft_process_opts, cwd), sizeof(((struct weft_process_opts *)0)->cwd), 0 },
		{ offsetof(struct weft_process_opts, stdio), sizeof(((struct weft_process_opts *)0)->stdio),
		  sizeof(enum weft_stdio) },
		{ offsetof(struct weft_process_opts, fd), sizeof(((struct weft_process_opts *)0)->fd),
		  sizeof(int) },
		{ offsetof(struct weft_process_opts, setpgid), sizeof(bool), 0 },
		{ offsetof(struct weft_process_opts, pgid), sizeof(pid_t), 0 },
		{ offsetof(struct weft_process_opts, setsid), sizeof(bool), 0 },
	};
	for (size_t k = 0; in && k < sizeof(fields) / sizeof(fields[0]); k++) {
		size_t sz = in->sz, off = fields[k].off, end = off + fields[k].size;
		if (sz > off && sz < end && (!fields[k].unit || (sz - off) % fields[k].unit)) {
			memset(o, 0, sizeof(*o));
			return -EINVAL; /* ends inside a field */
		}
	}
	int rc = weft__opts_read(o, in, sizeof(*o),
				 offsetof(struct weft_process_opts, envp) + sizeof(o->envp));
	if (rc)
		return rc;
	for (int i = 0; i < 3; i++) {
		unsigned s = (unsigned)o->stdio[i];
		if (s > WEFT_STDIO_FD || (s == WEFT_STDIO_FD && o->fd[i] < 0))
			return s == WEFT_STDIO_FD ? -EBADF : -EINVAL;
	}
	if ((o->setpgid && o->setsid) || o->pgid < 0)
		return -EINVAL;
	return 0;
}

/* The parent's ends of the pipes (index = the child's fd), the child's,
 * and /dev/null: -1 where there is none. */
struct fds { int parent[3], child[3], devnull; };

static void close_fds(struct fds *f, bool parent_too)
{
	for (int i = 0; i < 3; i++) {
		if (f->child[i] >= 0)
			close(f->child[i]);
		if (parent_too && f->parent[i] >= 0)
			close(f->parent[i]);
		f->child[i] = -1;
		if (parent_too)
			f->parent[i] = -1;
	}
	if (f->devnull >= 0)
		close(f->devnull);
	f->devnull = -1;
}

/* fd itself if it is 3 or above, else a close-on-exec copy that is (fd
 * closed): with the caller's 0-2 closed (a daemon), pipe2 and open hand
 * those out, and the child's dup2s onto 0-2 then overwrote one another -
 * a /dev/null stderr became the stdout pipe (found by a review). */
static int high_fd(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return h;
}

/* A blocking copy of fd, at 3 or above, if fd is a non-blocking pipe;
 * else (or when none can be had) -1, errno untouched. A dup shares the
 * open file, O_NONBLOCK included, and a pipe end registered with a
 * runtime (io.h's own example: another child's) is non-blocking: the
 * child's first read or write that had to wait failed with EAGAIN (found
 * by a review: "cat: Resource temporarily unavailable" in a pipeline).
 * Such a pipe is opened again through /proc, an open file of the child's
 * own made blocking (Go's File.Fd and Tokio's Stdio::from(ChildStdout)
 * hand the child a blocking one too), and the caller's stays
 * non-blocking for its registration. Anything else (a socket cannot be
 * opened again), or no /proc: nothing. */
static int blocking_copy(int fd)
{
	int e = errno;
	int fl = fcntl(fd, F_GETFL);
	struct stat sb;
	if (fl >= 0 && (fl & O_NONBLOCK) && !fstat(fd, &sb) && S_ISFIFO(sb.st_mode)) {
		char path[40];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		/* O_NONBLOCK for the open itself: a named FIFO's would wait
		 * for its other end */
		int r = high_fd(open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC));
		if (r >= 0 && !fcntl(r, F_SETFL, fl & ~O_NONBLOCK)) {
			errno = e;
			return r;
		}
		if (r >= 0)
			close(r);
	}
	errno = e;
	return -1;
}

/* The child's copy of the caller's descriptor fd (WEFT_STDIO_FD), at 3 or
 * above: blocking_copy's, else the dup, as it is. */
static int child_copy(int fd)
{
	int r = blocking_copy(fd);
	return r >= 0 ? r : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Pipes and /dev/null as the options ask. 0 or a negative errno. */
static int make_fds(const struct weft_process_opts *o, struct fds *f)
{
	for (int i = 0; i < 3; i++) {
		if (o->stdio[i] == WEFT_STDIO_NULL && f->devnull < 0) {
			f->devnull = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
			if (f->devnull < 0)
				return -errno;
		}
		if (o->stdio[i] == WEFT_STDIO_INHERIT) {
			/* The caller's own i, as it is - unless it is a
			 * non-blocking pipe: a program that registered its
			 * stdout (a pipe to `less`) with a runtime handed every
			 * child a non-blocking stdout, and `head -c 300000`
			 * wrote 64 KiB, then failed with EAGAIN (found by a
			 * review). Then the child gets a blocking copy, as
			 * for WEFT_STDIO_FD. */
			f->child[i] = blocking_copy(i);
			continue;
		}
		if (o->stdio[i] == WEFT_STDIO_FD) {
			/* a copy at 3 or above, closed after the spawn: the
			 * caller's 0-2 given in other places (stdout to its
			 * stderr and back) would be overwritten by the dup2s
			 * onto 0-2 before they were read */
			f->child[i] = child_copy(o->fd[i]);
			if (f->child[i] < 0)
				return -errno;
			continue;
		}
		if (o->stdio[i] != WEFT_STDIO_PIPE)
			continue;
		int p[2];
		if (pipe2(p, O_CLOEXEC))
			return -errno;
		/* stdin: the child reads p[0]; stdout, stderr: it writes p[1] */
		f->parent[i] = i == 0 ? p[1] : p[0];
		f->child[i] = high_fd(i == 0 ? p[0] : p[1]);
		if (f->child[i] < 0)
			return -errno;
	}
	return 0;
}

static int start(const char *file, char *const argv[], const struct weft_process_opts *o,
		 struct fds *f, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc)
		return -rc;
	rc = posix_spawnattr_init(&at);
	if (rc) {
		posix_spawn_file_actions_destroy(&fa);
		return -rc;
	}
	sigset_t none;
	sigemptyset(&none);
	short flags = POSIX_SPAWN_SETSIGMASK;
	if (o->setpgid)
		flags |= POSIX_SPAWN_SETPGROUP;
	if (o->setsid)
		flags |= POSIX_SPAWN_SETSID;
	rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc && o->setpgid)
		rc = posix_spawnattr_setpgroup(&at, o->pgid);
	if (!rc)
		rc = posix_spawnattr_setflags(&at, flags);
	for (int i = 0; i < 3 && !rc; i++) {
		/* INHERIT: a blocking copy (make_fds), or nothing to do */
		int from = o->stdio[i] == WEFT_STDIO_NULL ? f->devnull : f->child[i];
		if (from >= 0)
			rc = posix_spawn_file_actions_adddup2(&fa, from, i);
	}
	if (!rc && o->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
	if (!rc) {
		char *const *envp = o->envp ? o->envp : environ;
		rc = strchr(file, '/') ? posix_spawn(pid, file, &fa, &at, argv, envp)
				       : posix_spawnp(pid, file, &fa, &at, argv, envp);
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

/* The child exists but cannot be handed over: end it and reap it,
 * through its pidfd (never by pid: a pid reaped by someone else may name
 * another process by now). */
static void discard_child(int pfd)
{
	siginfo_t si;
	syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
	/* A registration (even one that failed) made the pidfd non-blocking,
	 * and waitid on such a pidfd says EAGAIN while the killed child is
	 * still dying: it was left a zombie. Block for it. */
	int fl = fcntl(pfd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(pfd, F_SETFL, fl & ~O_NONBLOCK);
	while (waitid((idtype_t)P_PIDFD, (id_t)pfd, &si, WEXITED) < 0 && errno == EINTR)
		;
}

/*
 * The child's pidfd, checked to be our child, registered with rt as
 * out->child, and a second descriptor of it for weft_process_kill. -ESRCH
 * or -ECHILD: the child was reaped by someone else before the pidfd was
 * opened (SIGCHLD ignored, or a waitpid(-1) elsewhere: both ruled out in
 * weft/io.h) - then the pid may name another process, which is left
 * alone, and there is nothing to kill or reap.
 */
static int adopt_child(struct weft_runtime *rt, pid_t pid, struct weft_process *out)
{
	int pfd = weft__child_pidfd(pid);
	if (pfd == -ECHILD)
		return pfd; /* not ours: the pid was reused */
	if (pfd < 0) {
		int e = pfd;
		/* No pidfd (-EMFILE, -ENFILE, -ENOSYS before Linux 5.3), the
		 * child still ours and unreaped - so its pid cannot have been
		 * reused: end it by pid and reap it (it was left running, its
		 * pid cleared from *out: found by a review). */
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (e != -ESRCH && !waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT)) {
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		return e;
	}
	int kfd = fcntl(pfd, F_DUPFD_CLOEXEC, 3);
	if (kfd >= KILL_FD_MASK) { /* past the bits it has (2 million fds open) */
		close(kfd);
		kfd = -1;
		errno = EMFILE;
	}
	int rc = kfd < 0 ? -errno : weft_io_register(rt, pfd, &out->child);
	if (!rc)
		weft__io_mark_child(out->child);
	if (rc) {
		discard_child(pfd);
		close(pfd);
		if (kfd >= 0)
			close(kfd);
		return rc;
	}
	out->_kill_fd = kfd + 1;
	return 0;
}

int weft_process_spawn(struct weft_runtime *rt, const char *file, char *const argv[],
		       const struct weft_process_opts *opts, struct weft_process *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!rt || !file || !*file || !argv || !argv[0] || !out)
		return -EINVAL;
	/* Before the spawn: in a forked child the program was started, and
	 * killed again once the registration said -ECHILD (or the spawn's
	 * error, -ENOENT, came instead; found by a review). */
	if (WEFT__FORKED(rt))
		return -ECHILD;
	/* Likewise once shutdown has begun: the program was started, and
	 * killed again when the pidfd's registration said -ESHUTDOWN - it
	 * ran for a moment, a shell's first command could take effect (found
	 * by a review). A shutdown that begins after this look still meets
	 * the registration, and the child is killed and reaped as before.
	 * seq_cst: as the socket calls' look (io.c, shut_down). */
	if (atomic_load_explicit(&rt->closed, memory_order_seq_cst))
		return -ESHUTDOWN;
	struct weft_process_opts o;
	int rc = read_process_opts(opts, &o);
	if (rc)
		return rc;
	struct fds f = { { -1, -1, -1 }, { -1, -1, -1 }, -1 };
	rc = make_fds(&o, &f);
	pid_t pid = 0;
	if (!rc)
		rc = start(file, argv, &o, &f, &pid);
	close_fds(&f, rc != 0); /* the child's ends are the child's now */
	if (rc)
		return rc;
	rc = adopt_child(rt, pid, out);
	struct weft_io **slot[3] = { &out->in, &out->out, &out->err };
	for (int i = 0; i < 3 && !rc; i++) {
		if (f.parent[i] < 0)
			continue;
		rc = weft_io_register(rt, f.parent[i], slot[i]);
		if (!rc)
			f.parent[i] = -1; /* the registration owns it */
	}
	if (rc) {
		for (int i = 0; i < 3; i++) {
			if (*slot[i])
				weft_io_close(*slot[i]);
			if (f.parent[i] >= 0)
				close(f.parent[i]);
		}
		if (out->child) { /* registered: the pipes failed */
			discard_child(out->_kill_fd - 1);
			weft_io_close(out->child);
			close(out->_kill_fd - 1);
		}
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->pid = pid;
	out->_fork_gen = rt->fork_gen + 1;
	return 0;
}

/* In a child forked since p's spawn (fork.c): the generation is the
 * runtime's, kept at spawn, so neither p->child nor its rt is read. */
static bool forked(const struct weft_process *p)
{
	return p->_fork_gen &&
	       atomic_load_explicit(&weft__fork_gen, memory_order_relaxed) != p->_fork_gen - 1;
}

/* The kills and hold_child()s in flight on p (KILL_FD_BITS) gone: after
 * the registration is taken out of p->child (or the kill descriptor's
 * bits cleared), none can still be reading either. Each is a few
 * instructions that do not block, so the wait is short. seq_cst, against
 * hold_child's count and its look at p->child. */
static void drain(struct weft_process *p)
{
	while (__atomic_load_n(&p->_kill_fd, __ATOMIC_SEQ_CST) & ~KILL_FD_MASK)
		sched_yield();
}

/*
 * p->child with a reference of the caller's (weft__io_release it), or
 * NULL: reaped, closed, or never started (no_child says which). A wait
 * on another task (two at once: io.h) or a weft_process_close may take
 * the registration out of p->child and close it at any time; a wait that
 * had read the pointer then used it with no reference of its own, and the
 * driver could free it and the next weft_io_register take the memory: the
 * wait went on with another file's registration - a poll wait hung its
 * waker there and never ended, or reaped through its fd (found by a
 * review). So the read is counted in p->_kill_fd as a kill is, and whoever
 * takes the registration out waits for the count to drain before it
 * closes it (drain): a reference taken here comes first, and the memory
 * stays the registration's until it is released. No descriptor bits: p
 * was closed (or never started), nothing to read.
 */
static struct weft_io *hold_child(struct weft_process *p)
{
	int v = __atomic_load_n(&p->_kill_fd, __ATOMIC_RELAXED);
	do {
		if (!(v & KILL_FD_MASK))
			return NULL;
	} while (!__atomic_compare_exchange_n(&p->_kill_fd, &v, v + KILL_ONE, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	struct weft_io *io = __atomic_load_n(&p->child, __ATOMIC_SEQ_CST);
	if (io && weft__io_hold(io))
		io = NULL; /* closed already: p->child is being cleared */
	/* release: the drain's load sees the reference taken above */
	__atomic_fetch_sub(&p->_kill_fd, KILL_ONE, __ATOMIC_RELEASE);
	return io;
}

/*
 * Reap p's child through io, its registration (weft__child_reap_keep):
 * 0 and *status, -EAGAIN (running), -EBADF (closed under the wait), or
 * waitid's error. Once reaped, or waitid failed, the registration is done
 * with, and whoever takes it out of p->child closes it: this wait, or a
 * weft_process_close (or another wait) beside it, which then closes it
 * itself. Before, the reap closed it and the wait cleared p->child only
 * after: a close in between took the closed registration and closed it
 * again - weft_process_close said -EBADF, and had the registration's
 * memory been reused meanwhile it would have closed another (found by a
 * review).
 */
static int reap_child(struct weft_process *p, struct weft_io *io, int *status)
{
	int rc = weft__child_reap_keep(io, status);
	if (rc == -EAGAIN || rc == -EBADF)
		return rc;
	/* seq_cst, against hold_child: a wait that read io before it went
	 * holds it once the count has drained */
	if (__atomic_compare_exchange_n(&p->child, &io, NULL, false, __ATOMIC_SEQ_CST,
					__ATOMIC_RELAXED)) {
		drain(p);
		weft_io_close(io);
	}
	return rc;
}

/* What a wait says when the registration was closed under it (-EBADF),
 * or is gone (p->child NULL): closed by the reap of a wait - on another
 * task even - the child reaped: -ECHILD, as io.h says (a wait beside the
 * reaper said -EBADF, or -EINVAL when it read p->child just cleared:
 * found by a review); or by weft_process_close, which let go of the kill
 * descriptor before it closed the registration: -EBADF, as a kill then
 * says (a poll wait across the close said -ECHILD, "reaped", and the
 * child was left unreaped: found by a review). A p a failed spawn zeroed
 * (no pid): -ECHILD. */
static int no_child(struct weft_process *p)
{
	if (__atomic_load_n(&p->_kill_fd, __ATOMIC_RELAXED) & KILL_FD_MASK)
		return -ECHILD;
	return p->pid ? -EBADF : -ECHILD;
}

/* weft_process_wait with io, p->child, held (hold_child) */
static int wait_held(struct weft_process *p, struct weft_io *io, int *status,
		     uint64_t timeout_ns)
{
	uint64_t deadline = weft__child_deadline(timeout_ns);
	for (;;) {
		struct weft_io_ready ready;
		int rc = weft_io_wait_ready(io, WEFT_IO_READABLE, weft__child_left(deadline),
					    &ready);
		if (rc == -EBADF)
			return no_child(p);
		if (rc < 0)
			return rc;
		rc = reap_child(p, io, status);
		if (rc == -EAGAIN) {
			/* not reapable yet (a ptracer that is not the parent
			 * holds its zombie until it waits for it): forget this
			 * readiness unless a newer one came, and wait for the
			 * next (the tracer letting go wakes the pidfd). Kept
			 * set, every wait returned at once: a spin. */
			weft_io_clear_ready(io, ready);
			rc = weft__child_backoff(ready, deadline);
			if (rc)
				return rc;
			continue;
		}
		if (rc == -EBADF)
			return no_child(p);
		return rc; /* p->child is NULL: the registration is closed */
	}
}

int weft_process_wait(struct weft_process *p, int *status, uint64_t timeout_ns)
{
	if (!p)
		return -EINVAL;
	struct weft_io *io = hold_child(p);
	if (!io)
		return no_child(p); /* reaped already, closed, or never started */
	int rc = wait_held(p, io, status, timeout_ns);
	weft__io_release(io);
	return rc;
}

/* weft_process_wait_poll with io, p->child, held (hold_child) */
static int wait_poll_held(struct weft_process *p, struct weft_io *io, struct weft_cx *cx,
			  int *status)
{
	for (;;) {
		struct weft_io_ready ready;
		if (weft_io_poll_ready(io, cx, WEFT_IO_READABLE, &ready) == WEFT_PENDING)
			return WEFT_PENDING;
		if (ready.mask & WEFT_IO_SHUTDOWN)
			return -ESHUTDOWN;
		int rc = reap_child(p, io, status);
		if (rc == -EAGAIN) {
			/* io_uring, the pidfd's poll failed: its ERROR stays, so
			 * every poll would say ready - a spin across the task's
			 * polls. A poll form cannot wait 10 ms as the blocking
			 * one does: say so (the blocking wait still works). */
			if (weft__io_broken(io))
				return -EIO;
			/* not ended after all: forget this readiness (unless a
			 * newer one came) and poll again, which registers cx */
			weft_io_clear_ready(io, ready);
			continue;
		}
		if (rc == -EBADF)
			return no_child(p);
		return rc; /* p->child is NULL: the registration is closed */
	}
}

int weft_process_wait_poll(struct weft_process *p, struct weft_cx *cx, int *status)
{
	if (!p || !cx)
		return -EINVAL;
	/* In a child forked from a poll task: -ECHILD first, as the blocking
	 * wait says. The poll below has no fork check of its own (weft.h): it
	 * took the parent's io->lock, whose holder may not exist here, hung
	 * its waker on the parent's copy and said WEFT_PENDING, and a task
	 * that took that at its word returned into the runtime, which ends
	 * the child (found by a review). */
	if (forked(p))
		return -ECHILD;
	struct weft_io *io = hold_child(p);
	if (!io)
		return no_child(p); /* reaped already, closed, or never started */
	int rc = wait_poll_held(p, io, cx, status);
	weft__io_release(io);
	return rc;
}

int weft_process_kill(struct weft_process *p, int sig)
{
	if (!p || sig < 0)
		return -EINVAL;
	/* In a forked child: -ECHILD, as the other calls say first (fork.c).
	 * The pidfd came along with the fork, so the child's kill signalled
	 * the parent's process (found by a review). The generation is the
	 * runtime's, kept at spawn: p->child may be reaped and freed by a
	 * wait on another thread (see below), so its rt is not read here. */
	if (forked(p))
		return -ECHILD;
	/* Its own descriptor of the pidfd, not the registration: a wait on
	 * another thread reaps and closes that (a kill that read p->child
	 * as the wait cleared it crashed: found by a review). A reaped
	 * child's pidfd says ESRCH. */
	/* Counted in while the descriptor is there (see KILL_FD_BITS):
	 * acquire pairs with the spawner's store and close's release of the
	 * descriptor bits; seq_cst, a read-modify-write against close's. */
	int v = __atomic_load_n(&p->_kill_fd, __ATOMIC_RELAXED);
	do {
		if (!(v & KILL_FD_MASK))
			return -EBADF; /* weft_process_close'd, or never started */
	} while (!__atomic_compare_exchange_n(&p->_kill_fd, &v, v + KILL_ONE, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	int kfd = (v & KILL_FD_MASK) - 1;
	int rc = syscall(SYS_pidfd_send_signal, kfd, sig, NULL, 0) < 0 ? -errno : 0;
	/* release: the close that waits for the count closes the descriptor
	 * only after this call's use of it (its acquire load) */
	__atomic_fetch_sub(&p->_kill_fd, KILL_ONE, __ATOMIC_RELEASE);
	return rc;
}

int weft_process_close(struct weft_process *p)
{
	if (!p)
		return -EINVAL;
	/* In a forked child: -ECHILD with p untouched, as the other calls
	 * say first. The child closes its copies with close(2) (weft.h),
	 * finding them through weft_io_fd(p->in) and the rest; this close
	 * shut the kill descriptor, then had each weft_io_close say -ECHILD
	 * and cleared the fields all the same, so the child could no longer
	 * find its copy of the child's stdin pipe, and the program read by
	 * the parent never saw its input end while the forked child lived
	 * (found by a review). */
	if (forked(p))
		return -ECHILD;
	int first = 0;
	/* the kill descriptor first: a wait on another task that finds the
	 * registration closed under it reads it to tell this close from
	 * another wait's reap (no_child). Its bits cleared (no kill or
	 * hold_child counts itself in after this), then closed once those
	 * already in have left (KILL_FD_BITS); seq_cst against their CAS.
	 * After that no wait is between reading p->child and holding it, so
	 * the registration below is closed under none. */
	int v = __atomic_fetch_and(&p->_kill_fd, ~KILL_FD_MASK, __ATOMIC_SEQ_CST);
	if (v & KILL_FD_MASK) {
		drain(p);
		close((v & KILL_FD_MASK) - 1);
	}
	struct weft_io **slot[3] = { &p->in, &p->out, &p->err };
	for (int i = 0; i < 3; i++) {
		if (!*slot[i])
			continue;
		int rc = weft_io_close(*slot[i]);
		if (rc && !first)
			first = rc;
		*slot[i] = NULL;
	}
	struct weft_io *child = __atomic_exchange_n(&p->child, NULL, __ATOMIC_RELAXED);
	if (child) {
		int rc = weft_io_close(child);
		if (rc && !first)
			first = rc;
	}
	return first;
}
