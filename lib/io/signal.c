/*
 * signal.c - Unix signals into channels (weft/signal.h).
 *
 * The handler does only what is async-signal-safe: it counts the delivery
 * in `hits[signo]` and writes one byte into a non-blocking pipe (a full
 * pipe already holds a wake-up). One relay thread per process reads the
 * pipe and, under `lock`, compares each signal's count with what it saw
 * last and try-sends the signal's number into every channel notified for
 * it. `stop` takes the same lock, so after it returns the relay sends the
 * channel nothing more. A signal's handler is installed when its first
 * channel comes and the previous disposition put back when its last goes.
 * In a forked child (no relay thread there) every relayed signal gets its
 * previous disposition back and the table starts empty; the fork itself
 * happens under `lock` with every signal blocked (before_fork).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"
#include <weft/signal.h>
#include <weft/sync.h>

#define NSIGS 65 /* signals 1..64 */

struct listener {
	struct weft_chan *ch;
	int signo;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct listener *ls;         /* under lock */
static size_t nls, capls;
static unsigned nlisten[NSIGS];     /* channels per signal; under lock */
static struct sigaction prev[NSIGS]; /* disposition before ours, while nlisten > 0 */
static uint64_t seen[NSIGS];        /* the relay's last look at hits; under lock */
static _Atomic uint64_t hits[NSIGS];
static _Atomic uint64_t dropped;
static int pipe_r = -1, pipe_w = -1;
static bool relay_started;

static void on_signal(int signo)
{
	int saved = errno;
	if (signo > 0 && signo < NSIGS)
		atomic_fetch_add_explicit(&hits[signo], 1, memory_order_relaxed);
	unsigned char b = (unsigned char)signo;
	ssize_t w = write(pipe_w, &b, 1); /* EAGAIN: the relay has a wake-up pending */
	(void)w;
	errno = saved;
}

static void deliver_locked(void)
{
	for (int s = 1; s < NSIGS; s++) {
		uint64_t h = atomic_load_explicit(&hits[s], memory_order_relaxed);
		if (h == seen[s])
			continue;
		seen[s] = h;
		for (size_t i = 0; i < nls; i++) {
			if (ls[i].signo != s)
				continue;
			int v = s;
			if (weft_chan_try_send(ls[i].ch, &v))
				atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		}
	}
}

/* arg: the read end, its own from here (the write end's close, by a
 * notify that started the relay and then failed, ends it: stop_relay). */
static void *relay_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char buf[64];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd); /* end of file: stop_relay_locked */
			return NULL;
		}
		pthread_mutex_lock(&lock);
		deliver_locked();
		pthread_mutex_unlock(&lock);
	}
}

/* fork(): the forking thread holds `lock` and has every signal blocked
 * across it, so the child copies a table no notify or stop is changing
 * (a fork between a notify's sigaction and its count left weft's handler
 * in the child for good: 984 of 2,000 forks in a review's program), and a
 * signal sent to the new child waits, blocked, until the child has its
 * previous dispositions back (it went to weft's handler and was lost: 40
 * of 40). `fork_mask` is the forking thread's own mask, under `lock`. */
static sigset_t fork_mask;

static void before_fork(void)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_mutex_lock(&lock);
	fork_mask = old;
}

static void after_fork_parent(void)
{
	sigset_t old = fork_mask;
	pthread_mutex_unlock(&lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void after_fork_child(void)
{
	sigset_t old = fork_mask;
	pthread_mutex_init(&lock, NULL);
	for (int s = 1; s < NSIGS; s++) {
		if (nlisten[s])
			sigaction(s, &prev[s], NULL);
		nlisten[s] = 0;
	}
	for (size_t i = 0; i < nls; i++)
		weft__chan_sig_ref(ls[i].ch, -1); /* the child's copies of the channels */
	nls = 0;
	if (pipe_r >= 0) {
		close(pipe_r);
		close(pipe_w);
	}
	pipe_r = pipe_w = -1;
	relay_started = false;
	pthread_sigmask(SIG_SETMASK, &old, NULL); /* pending ones meet the old dispositions */
}

static bool relayable(int signo)
{
	if (signo <= 0 || signo >= NSIGS || signo > SIGRTMAX)
		return false;
	/* 32 .. SIGRTMIN-1 are the C library's own (glibc: thread
	 * cancellation, setxid): its sigaction says EINVAL, and only after
	 * the relay had been started (a thread and two fds left behind) */
	if (signo > 31 && signo < SIGRTMIN)
		return false;
	switch (signo) {
	case SIGKILL: case SIGSTOP:                 /* cannot be caught */
	case SIGSEGV: case SIGBUS: case SIGFPE:     /* a fault's handler must act */
	case SIGILL: case SIGTRAP: case SIGSYS:     /* on the faulting thread */
		return false;
	default:
		return true;
	}
}

/* The fork handlers, once per process, before `lock` is first taken:
 * registered under it, a fork in between (the first notify's realloc
 * and the registration) ran no before_fork and copied the lock held, so
 * every notify and stop in that child hung (18 of 400 children of a
 * review's program). pthread_once is safe across a fork. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_rc;

static void install_atfork(void)
{
	atfork_rc = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* The pipe and the relay thread, once per process (under lock). */
static int start_relay_locked(void)
{
	if (relay_started)
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	/* the relay blocks in read: its end blocking, the handler's not */
	int fl = fcntl(fds[0], F_GETFL);
	if (fl < 0 || fcntl(fds[0], F_SETFL, fl & ~O_NONBLOCK)) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	pipe_r = fds[0];
	pipe_w = fds[1];
	/* No signal of the process runs its handler on the relay thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	int rc = pthread_create(&th, &attr, relay_main, (void *)(intptr_t)pipe_r);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		close(pipe_r);
		close(pipe_w);
		pipe_r = pipe_w = -1;
		return rc == EAGAIN ? -EAGAIN : -rc;
	}
	pthread_setname_np(th, "weft-signal");
	relay_started = true;
	return 0;
}

/* A relay this notify started, when its sigaction then failed (no signal
 * has weft's handler, so nothing writes into the pipe): closing the write
 * end ends the thread, which closes the read end. Until 2026-12-06 the
 * thread and both descriptors were left behind ("nothing changes on an
 * error"). Under lock. */
static void stop_relay_locked(void)
{
	close(pipe_w);
	pipe_r = pipe_w = -1;
	relay_started = false;
}

int weft_signal_notify(struct weft_chan *ch, int signo)
{
	if (!ch || !relayable(signo) || weft__chan_item_size(ch) != sizeof(int))
		return -EINVAL;
	pthread_once(&atfork_once, install_atfork);
	if (atfork_rc)
		return -atfork_rc;
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nls; i++)
		if (ls[i].ch == ch && ls[i].signo == signo)
			goto out; /* already: a no-op */
	if (nls == capls) {
		size_t ncap = capls ? 2 * capls : 8;
		struct listener *n = realloc(ls, ncap * sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		ls = n;
		capls = ncap;
	}
	bool started_here = !relay_started;
	if ((rc = start_relay_locked()))
		goto out;
	if (!nlisten[signo]) {
		struct sigaction sa = { 0 };
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART | SA_ONSTACK;
		sigfillset(&sa.sa_mask);
		/* deliveries before this point are not ours to relay */
		seen[signo] = atomic_load_explicit(&hits[signo], memory_order_relaxed);
		if (sigaction(signo, &sa, &prev[signo])) {
			rc = -errno;
			if (started_here && nls == 0)
				stop_relay_locked();
			goto out;
		}
	}
	nlisten[signo]++;
	ls[nls++] = (struct listener){ ch, signo };
	weft__chan_sig_ref(ch, 1); /* destroy says -EBUSY until the stop */
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int weft_signal_stop(struct weft_chan *ch)
{
	if (!ch)
		return -EINVAL;
	/* The fork handlers before the lock, here too: a stop may come
	 * before any notify (-ENOENT), and a fork while it held the lock
	 * gave the child a lock held for good (a review). Not installed:
	 * no notify succeeded, nothing to stop. */
	pthread_once(&atfork_once, install_atfork);
	if (atfork_rc)
		return -ENOENT;
	bool found = false;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nls;) {
		if (ls[i].ch != ch) {
			i++;
			continue;
		}
		int s = ls[i].signo;
		ls[i] = ls[--nls];
		found = true;
		weft__chan_sig_ref(ch, -1);
		if (--nlisten[s] == 0)
			sigaction(s, &prev[s], NULL); /* its disposition before the first notify */
	}
	pthread_mutex_unlock(&lock);
	return found ? 0 : -ENOENT;
}

uint64_t weft_signal_dropped(void)
{
	return atomic_load_explicit(&dropped, memory_order_relaxed);
}
