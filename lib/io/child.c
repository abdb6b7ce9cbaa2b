/*
 * child.c - weft_child_wait: wait for a child process without holding a
 * worker (Go's cmd.Wait, Tokio's Child::wait).
 *
 * A pidfd (pidfd_open, Linux 5.3) polls readable once its process has
 * ended; it is registered with the runtime's driver like a socket, waited
 * on with weft_io_wait (a fiber suspends, a thread blocks, the time limit
 * and cancellation as for any I/O wait), given back with
 * weft_io_deregister, and the child is reaped through it with
 * waitid(P_PIDFD, WNOHANG) (Linux 5.4). A first waitid before the wait
 * catches a child that has already ended and a pid that is not our child
 * (-ECHILD), without touching the driver.
 *
 * weft_child_open hands the pidfd's registration to the caller instead,
 * for a weft_select arm beside others (a token, a channel), as Tokio's
 * Child holds its pidfd; weft_child_reap then reaps through it and closes
 * it. open checks the pid is our child with WNOWAIT, which reaps nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

#include "runtime.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

/* reap through the pidfd if the child has ended: 1 reaped (*si filled),
 * 0 still running, or a negative errno */
static int reap(int pfd, siginfo_t *si)
{
	memset(si, 0, sizeof(*si));
	if (waitid((idtype_t)P_PIDFD, (id_t)pfd, si, WEXITED | WNOHANG))
		return -errno;
	return si->si_pid != 0;
}

/* siginfo to the status word waitpid(2) fills, for WIFEXITED and friends */
static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default: /* CLD_KILLED */
		return si->si_status & 0x7f;
	}
}

/* pid's pidfd, or a negative errno: -ESRCH (no such process), -ENOSYS
 * (before Linux 5.3), -EMFILE, and -ECHILD for a thread id that is not
 * its process's leader - a thread, never a child of ours (io.h), which
 * pidfd_open refuses with -ENOENT on newer kernels and -EINVAL on older
 * ones (which say -EINVAL too for a process reaped already whose pid is
 * still held, by someone's pidfd: no child of ours to wait for either;
 * with flags 0 and pid > 0 nothing else says either). Both came back as
 * they were, errors io.h does not name (found by a review). */
static int pidfd_of(pid_t pid)
{
	/* Non-blocking from the start (Linux 5.10; every waitid here says
	 * WNOHANG, so it changes none of them): the registration then finds
	 * O_NONBLOCK set, and its deregistration has no flag to give back -
	 * which would walk the runtime's registrations for a dup to hand it
	 * to (io.c, pass_nonblock_locked) on every wait. Older kernels
	 * refuse the flag with -EINVAL: open it blocking there. */
	int pfd = (int)syscall(SYS_pidfd_open, pid, PIDFD_NONBLOCK);
	if (pfd < 0 && errno == EINVAL)
		pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0)
		return pfd;
	return errno == ENOENT || errno == EINVAL ? -ECHILD : -errno;
}

int weft_child_wait(struct weft_runtime *rt, pid_t pid, int *status, uint64_t timeout_ns)
{
	if (!rt || pid <= 0)
		return -EINVAL;
	/* Before the reap: in a forked child, a child that had ended was
	 * reaped and 0 returned on the parent's runtime (weft.h: -ECHILD) */
	if (WEFT__FORKED(rt))
		return -ECHILD;
	/* The cancellation point (weft.h), also for a child that has ended
	 * already and need not be waited for: the reap below took it and
	 * said 0 in a cancelled fiber, where every other blocking call of
	 * io.h, weft_process_wait's among them, says -ECANCELED and leaves
	 * the child to reap (found by a review). */
	if (weft__cancelled())
		return -ECANCELED;
	int pfd = pidfd_of(pid);
	if (pfd < 0)
		return pfd;
	siginfo_t si;
	int rc = reap(pfd, &si);
	if (rc == 0) {
		struct weft_io *io;
		rc = weft_io_register(rt, pfd, &io);
		if (rc) {
			close(pfd);
			return rc;
		}
		uint64_t deadline = weft__child_deadline(timeout_ns);
		for (;;) {
			struct weft_io_ready ready;
			rc = weft_io_wait_ready(io, WEFT_IO_READABLE, weft__child_left(deadline),
						&ready);
			if (rc < 0)
				break;
			rc = reap(pfd, &si); /* reaped elsewhere: -ECHILD */
			if (rc != 0)
				break;
			/* readable, yet nothing to reap: a ptracer that is not
			 * the parent holds the zombie until it waits for it
			 * (this said -ECHILD, and the child was left a zombie).
			 * Wait for the next wake, when the tracer lets go. */
			weft_io_clear_ready(io, ready);
			rc = weft__child_backoff(ready, deadline);
			if (rc)
				break;
		}
		int fd = weft_io_deregister(io);
		if (fd < 0) { /* -ECHILD in a forked child: io is still registered */
			weft_io_close(io);
			return fd;
		}
	}
	close(pfd);
	if (rc < 0)
		return rc;
	if (status)
		*status = status_of(&si);
	return 0;
}

uint64_t weft__child_deadline(uint64_t timeout_ns)
{
	if (timeout_ns == WEFT_FOREVER)
		return WEFT_FOREVER;
	uint64_t now = weft_now_ns();
	return timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
}

uint64_t weft__child_left(uint64_t deadline)
{
	if (deadline == WEFT_FOREVER)
		return WEFT_FOREVER;
	uint64_t now = weft_now_ns();
	return deadline > now ? deadline - now : 0;
}

/* Nothing to reap after a wait that said `ready`: if that was an error
 * that stays (io_uring: the pidfd's poll failed, and no readiness will
 * come), the next wait ends at once too, so look again in 10 ms (until
 * the deadline) instead of spinning. With no time left, -ETIMEDOUT: a
 * wait at its deadline answers from poll(2), which says readable for a
 * zombie a tracer holds, and the callers looked again at once for as long
 * as it held on (a spin, the limit ignored). 0, -ETIMEDOUT, or
 * -ECANCELED (a cancelled fiber). */
#define CHILD_POLL_NS 10000000ull
int weft__child_backoff(struct weft_io_ready ready, uint64_t deadline)
{
	uint64_t left = weft__child_left(deadline);
	if (!left)
		return -ETIMEDOUT;
	if (!(ready.mask & WEFT_IO_ERROR))
		return 0;
	return weft_sleep_ns(left < CHILD_POLL_NS ? left : CHILD_POLL_NS);
}

int weft__child_pidfd(pid_t pid)
{
	int pfd = pidfd_of(pid);
	if (pfd < 0)
		return pfd;
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)pfd, &si, WEXITED | WNOHANG | WNOWAIT)) {
		int e = -errno; /* -ECHILD: not ours */
		close(pfd);
		return e;
	}
	return pfd;
}

int weft_child_open(struct weft_runtime *rt, pid_t pid, struct weft_io **out)
{
	if (!rt || pid <= 0 || !out)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	int pfd = weft__child_pidfd(pid);
	if (pfd < 0)
		return pfd;
	int rc = weft_io_register(rt, pfd, out);
	if (rc)
		close(pfd);
	else
		weft__io_mark_child(*out);
	return rc;
}

int weft__child_reap_keep(struct weft_io *io, int *status)
{
	/* Reaped (or closed) already: its fd number may be another file's
	 * now - another child's pidfd even, whose child this would reap. And
	 * a reference for the waitid, as the socket calls take: a close on
	 * another thread meanwhile keeps the pidfd open until it is dropped
	 * (without it the number could be taken mid-call: found by a review). */
	if (weft__io_hold(io))
		return -EBADF;
	siginfo_t si;
	uint64_t tick = weft__io_tick(io); /* before the look: a newer event stays */
	int rc = reap(weft__io_fd(io), &si); /* held: open even if a close began */
	if (rc == 0) {
		/* still running: the registration stays, its readiness
		 * cleared as a weft call's EAGAIN clears it (io.h). A zombie a
		 * tracer holds is readable with nothing to reap, and a select
		 * on the READY arm then reap, as io.h says to loop, went round
		 * at once for as long as the tracer held on (a review's loop:
		 * 1.4 million rounds a second). */
		weft_io_clear_ready(io, (struct weft_io_ready){ WEFT_IO_READABLE, tick });
		weft__io_release(io);
		return -EAGAIN;
	}
	weft__io_release(io);
	if (rc < 0)
		return rc;
	if (status)
		*status = status_of(&si);
	return 0;
}

int weft_child_reap(struct weft_io *io, int *status)
{
	/* A registration weft_child_open did not make (a socket, a pipe, a
	 * pidfd of a process that is not our child) is the caller's mistake:
	 * refused, untouched. The waitid's -ECHILD closed it as a child
	 * reaped by another wait (a socket's -EBADF left it open, though
	 * -EBADF says closed): found by a review. */
	if (!io || !weft__io_is_child(io))
		return -EINVAL;
	int st = 0;
	int rc = weft__child_reap_keep(io, &st);
	if (rc == -EAGAIN || rc == -EBADF)
		return rc;
	int crc = weft_io_close(io);
	if (rc < 0)
		return rc;
	if (crc == -ECHILD) /* a forked child: the registration is its parent's */
		return crc;
	if (status)
		*status = st;
	return 0;
}
