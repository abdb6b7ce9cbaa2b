/*
 * uring.c - the io_uring driver: readiness from io_uring multishot polls
 * in place of epoll, chosen at run time (weft_runtime_opts.io_driver, or
 * WEFT_IO_DRIVER=uring), epoll the default and the fallback.
 *
 * It is the epoll driver's shape on another kernel interface, so driver.c
 * and io.c keep one design:
 * - A registration arms one multishot IORING_OP_POLL_ADD for every event
 *   io.c asks epoll for; each wakeup of the fd posts a completion carrying
 *   the fd's current mask (what an EPOLLET epoll_wait returns), its
 *   user_data the registration's address.
 * - The thread holding the driver lock (driver.c) is the only consumer of
 *   the completion queue: it waits in io_uring_enter with a timeout in ns
 *   (IORING_ENTER_EXT_ARG), or, polling without blocking, only reads the
 *   queue's memory: no system call at all.
 * - Any thread submits, under `sq_lock`, and enters the kernel at once:
 *   submission never waits for the driver. Polls, though, are armed only
 *   by the runtime's worker threads (io.c, driver_add): the kernel posts a
 *   poll's completions as task work of the thread that armed it,
 *   interrupting or waking it, and cancels the poll (ECANCELED) at its
 *   next event once that thread has exited; io.c arms such a poll again.
 * - An unpark (weft__driver_wake) submits a NOP whose completion wakes the
 *   waiter: one system call, like the eventfd write it replaces, and no
 *   eventfd. `wake_pending` coalesces them: set by the waker that submits,
 *   cleared by the consumer when it takes that completion, so wakes that
 *   come while one is in flight are covered by it.
 *
 * What differs from epoll, and what io.c does about it:
 * - A poll request holds a reference to the file, and its end is
 *   asynchronous: after the cancel (weft__uring_disarm) its last completion
 *   (no IORING_CQE_F_MORE) still comes. So a registration is a reference
 *   of the kernel's as well (io.c), dropped only when that last completion
 *   is consumed: no completion can name freed memory.
 * - A multishot poll can end by itself (the completion queue overflowed):
 *   a last completion with a mask, after events that kept it armed or
 *   with an overflow seen since it was armed (`overflows`), re-arms it.
 *   The count can miss one (io.c, poll_ended), so a poll that ends at once
 *   otherwise is armed again once; one that ends at once again is a file
 *   whose poll never waits (a hung-up terminal's): re-armed, it would end
 *   so at every pass.
 * - Files without readiness (regular files, directories, block devices,
 *   /dev/null): epoll refuses them with EPERM, io_uring would report them
 *   always ready. io.c refuses them with EPERM under both drivers.
 * - Poll completions are posted as task work of the worker that armed
 *   the poll: if that thread is not the one waiting, the kernel interrupts
 *   or wakes it to post the completion.
 *   That is the relay epoll's wait queue avoids: on HTTP hello the server
 *   makes twice epoll's context switches and serves 0.79x its requests
 *   (docs/BENCHMARKS.md), so epoll stays the default.
 *
 * ThreadSanitizer cannot see the kernel pass a registration from the
 * submitter to the consumer: `submits` is bumped (release) after the
 * registration is written and before it is submitted, and loaded (acquire)
 * by the consumer after it reads completions, an edge it can see.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

#ifdef WEFT_WITH_URING
#include <liburing.h>

#if defined(__SANITIZE_THREAD__)
#define WEFT_URING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_URING_TSAN 1
#endif
#endif
#ifdef WEFT_URING_TSAN
#include <sanitizer/tsan_interface.h>
/* liburing maps and unmaps the rings with raw system calls, which
 * ThreadSanitizer does not intercept: the shadow of a ring unmapped by one
 * runtime's destroy outlives it, and a ring mapped later at the same
 * address (another runtime's, on another thread) is taken for the same
 * memory - a race between two runtimes' workers that never shared a byte.
 * The unmap comes before any later mapping of the address; say so: a
 * release before each io_uring_queue_exit, an acquire after each init. */
static char ring_reuse;
#define RING_GONE() __tsan_release(&ring_reuse)
#define RING_NEW() __tsan_acquire(&ring_reuse)
#else
#define RING_GONE() ((void)0)
#define RING_NEW() ((void)0)
#endif

#define URING_SQ_ENTRIES 256
#define URING_CQ_ENTRIES 16384
#define TAG_WAKE 0ull   /* the NOP of weft__uring_wake */
#define TAG_IGNORE 1ull /* a withdrawn submission */
#define TAG_CANCEL 1ull /* low bit of a cancel's user_data: reg | TAG_CANCEL */

struct weft__uring {
	struct io_uring ring;
	pthread_mutex_t sq_lock;
	_Atomic bool wake_pending;
	_Atomic uint64_t submits;
	_Atomic uint64_t overflows;
	_Atomic unsigned test_oneshot; /* weft__uring_test_oneshot */
};

/*
 * Count an overflow of the completion queue if there is one (completions
 * waiting in the kernel's list, or the queue full). Looked at before every
 * system call that may move the waiting ones in (a submission, a wait, the
 * peek's flush), all of which are ours: a completion that went through the
 * list is read only after such a look saw it there. So a poll that ended
 * at once because its first event found no room is told from one that
 * cannot wait (weft__uring_overflows, io.c poll_ended).
 */
static void note_overflow(struct weft__uring *u)
{
	/* the head with an atomic load: submitters look too, while the
	 * consumer moves it (io_uring_cq_ready reads it plainly) */
	unsigned ready = io_uring_smp_load_acquire(u->ring.cq.ktail) -
			 IO_URING_READ_ONCE(*u->ring.cq.khead);
	if ((IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) ||
	    ready >= *u->ring.cq.kring_entries)
		/* seq_cst: before the system call that may move the list
		 * in; pairs with weft__uring_overflows, read by the consumer
		 * after it took a completion that came through the list */
		atomic_fetch_add_explicit(&u->overflows, 1, memory_order_seq_cst);
}

uint64_t weft__uring_overflows(struct weft_runtime *rt)
{
	/* seq_cst: pairs with note_overflow's count */
	return atomic_load_explicit(&rt->driver.uring->overflows, memory_order_seq_cst);
}

/*
 * Submit a NOP and wait for it: the ring is of no use if io_uring_enter is
 * refused while io_uring_setup is not (a seccomp filter that names only
 * the one, as an allow-list without it does): every registration failed
 * and the first wake was fatal (weft__uring_wake), where the environment's
 * choice should fall back to epoll (found by a review). Its error, or 0.
 */
static int probe_enter(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe)
		return -EAGAIN;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
	int rc;
	while ((rc = io_uring_submit_and_wait(ring, 1)) == -EINTR)
		;
	if (rc < 0)
		return rc;
	struct io_uring_cqe *cqe;
	rc = io_uring_wait_cqe(ring, &cqe);
	if (rc < 0)
		return rc;
	rc = cqe->res < 0 ? cqe->res : 0;
	io_uring_cqe_seen(ring, cqe);
	return rc;
}

int weft__uring_init(struct weft_runtime *rt)
{
	struct weft__uring *u = weft__calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = URING_CQ_ENTRIES;
	int rc = io_uring_queue_init_params(URING_SQ_ENTRIES, &u->ring, &p);
	if (rc == -EINVAL) { /* before 5.18: no SUBMIT_ALL (and then no CQE_SKIP either) */
		weft__free(u);
		return -EOPNOTSUPP;
	}
	if (rc < 0) { /* ENOSYS: no io_uring; EPERM: kernel.io_uring_disabled, seccomp */
		weft__free(u);
		return rc;
	}
	RING_NEW();
	/* EXT_ARG: a wait with a timeout and no SQE; NODROP: no completion
	 * lost to overflow; CQE_SKIP: removals post nothing when they work. */
	unsigned need = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP | IORING_FEAT_CQE_SKIP;
	if ((p.features & need) != need) {
		RING_GONE();
		io_uring_queue_exit(&u->ring);
		weft__free(u);
		return -EOPNOTSUPP;
	}
	rc = probe_enter(&u->ring);
	if (rc < 0) { /* EPERM: a seccomp filter */
		RING_GONE();
		io_uring_queue_exit(&u->ring);
		weft__free(u);
		return rc;
	}
	pthread_mutex_init(&u->sq_lock, NULL);
	atomic_init(&u->wake_pending, false);
	atomic_init(&u->submits, 0);
	atomic_init(&u->overflows, 0);
	atomic_init(&u->test_oneshot, 0);
	rt->driver.uring = u;
	return 0;
}

void weft__uring_fini(struct weft_runtime *rt)
{
	struct weft__uring *u = rt->driver.uring;
	if (!u)
		return;
	RING_GONE();
	io_uring_queue_exit(&u->ring);
	pthread_mutex_destroy(&u->sq_lock);
	weft__free(u);
	rt->driver.uring = NULL;
}

/* Caller holds sq_lock, and `sqe` is the only entry queued (every call
 * submits at once). An SQE the kernel did not take stays queued and would
 * go in with the next submission, so one that cannot be submitted (after
 * retries: EINTR, EAGAIN and EBUSY are transient, and a count short of it
 * means the kernel could not allocate its request) is turned into an
 * ignored NOP first. */
static int submit_locked(struct weft__uring *u, struct io_uring_sqe *sqe)
{
	int n = 0;
	for (int tries = 0; tries < 100; tries++) {
		note_overflow(u);
		n = io_uring_submit(&u->ring);
		if (n >= 0 && io_uring_sq_ready(&u->ring) == 0)
			return 0;
		if (n != -EINTR)
			sched_yield();
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return n < 0 ? n : -ENOMEM;
}

static struct io_uring_sqe *get_sqe_locked(struct weft__uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) { /* full: everything is submitted at once, so only after a failure */
		note_overflow(u);
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/*
 * Tests: arm the next n polls oneshot. A oneshot poll of a ready fd ends at
 * once with the mask and no IORING_CQE_F_MORE: the completions a multishot
 * poll posts when its first event finds no room in the completion queue
 * and its last finds room again, which no test can time (io.c,
 * poll_ended).
 */
void weft__uring_test_oneshot(struct weft_runtime *rt, unsigned n)
{
	atomic_store_explicit(&rt->driver.uring->test_oneshot, n, memory_order_relaxed);
}

static bool test_oneshot_take(struct weft__uring *u)
{
	unsigned n = atomic_load_explicit(&u->test_oneshot, memory_order_relaxed);
	while (n && !atomic_compare_exchange_weak_explicit(&u->test_oneshot, &n, n - 1,
							   memory_order_relaxed, memory_order_relaxed))
		;
	return n != 0;
}

int weft__uring_arm(struct weft_runtime *rt, int fd, void *reg, uint32_t events)
{
	struct weft__uring *u = rt->driver.uring;
	bool oneshot = test_oneshot_take(u);
	/* release: the registration's fields, for the consumer (see top) */
	atomic_fetch_add_explicit(&u->submits, 1, memory_order_release);
	pthread_mutex_lock(&u->sq_lock);
	struct io_uring_sqe *sqe = get_sqe_locked(u);
	if (!sqe) {
		pthread_mutex_unlock(&u->sq_lock);
		return -EAGAIN;
	}
	if (oneshot)
		io_uring_prep_poll_add(sqe, fd, events);
	else
		io_uring_prep_poll_multishot(sqe, fd, events);
	io_uring_sqe_set_data(sqe, reg);
	int rc = submit_locked(u, sqe);
	pthread_mutex_unlock(&u->sq_lock);
	return rc;
}

/*
 * Cancel reg's poll. IORING_OP_ASYNC_CANCEL, not POLL_REMOVE: a removal
 * that finds the poll while its task work runs (posting an event) fails
 * with EALREADY and leaves it armed (about 4% of closes under traffic,
 * found by test_io_driver); a cancel marks it cancelled, and that task
 * work ends it. The cancel's own completion says only whether it found the
 * poll (success posts nothing; ENOENT: it had ended). Its user_data is
 * reg | TAG_CANCEL; EALREADY, which a cancel returns only for work the
 * kernel runs in its own threads (never a poll, on the kernels measured),
 * would have it sent again.
 */
static int cancel_locked(struct weft__uring *u, void *reg)
{
	struct io_uring_sqe *sqe = get_sqe_locked(u);
	if (!sqe)
		return -EAGAIN;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)reg, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)reg | TAG_CANCEL);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return submit_locked(u, sqe);
}

int weft__uring_disarm(struct weft_runtime *rt, void *reg)
{
	struct weft__uring *u = rt->driver.uring;
	pthread_mutex_lock(&u->sq_lock);
	int rc = cancel_locked(u, reg);
	pthread_mutex_unlock(&u->sq_lock);
	return rc;
}

void weft__uring_wake(struct weft_runtime *rt)
{
	struct weft__uring *u = rt->driver.uring;
	if (atomic_load_explicit(&u->wake_pending, memory_order_relaxed) ||
	    atomic_exchange_explicit(&u->wake_pending, true, memory_order_acq_rel))
		return; /* a wake is in flight: the consumer has not taken it yet */
	pthread_mutex_lock(&u->sq_lock);
	struct io_uring_sqe *sqe = get_sqe_locked(u);
	int rc = -EAGAIN;
	if (sqe) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, TAG_WAKE);
		rc = submit_locked(u, sqe);
	}
	pthread_mutex_unlock(&u->sq_lock);
	/* A wake that cannot be sent (the kernel out of memory for a request)
	 * could leave every worker asleep with work queued: say so and stop,
	 * never hang. The eventfd write of the epoll driver cannot fail. */
	if (rc)
		weft__die("io_uring driver: cannot submit a wake: %s", strerror(-rc));
}

/*
 * Wait up to timeout_ns (-1: until something comes, 0: do not wait) and
 * take at most `max` completions into ev[] as epoll events: data.ptr the
 * registration (NULL: a wake), events the poll mask, with WEFT__EV_ENDED
 * when the poll ended (io.c re-arms or lets the registration go), and
 * WEFT__EV_FAILED if with an error. Caller
 * holds the driver lock. Returns how many, or -errno (EINTR).
 */
int weft__uring_wait(struct weft_runtime *rt, struct epoll_event *ev, int max, int64_t timeout_ns)
{
	struct weft__uring *u = rt->driver.uring;
	/* shut down: the completions left name registrations that may be
	 * gone (io.c, weft__io_shutdown); no driver pass comes then anyway */
	if (atomic_load_explicit(&rt->driver.no_driver, memory_order_relaxed))
		return 0;
	weft__io_arm_pending(rt);
	note_overflow(u);
	if (timeout_ns != 0 && io_uring_cq_ready(&u->ring) == 0) {
		struct __kernel_timespec ts = { timeout_ns / 1000000000ll, timeout_ns % 1000000000ll };
		struct io_uring_getevents_arg arg = {
			.sigmask = 0,
			.sigmask_sz = _NSIG / 8,
			.ts = timeout_ns < 0 ? 0 : (uint64_t)(uintptr_t)&ts,
		};
		int rc = io_uring_enter2((unsigned)u->ring.ring_fd, 0, 1,
					 IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
					 (sigset_t *)&arg, sizeof(arg));
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
	}
	struct io_uring_cqe *cqes[64];
	int got = 0;
	while (got < max) {
		unsigned want = (unsigned)(max - got) < 64 ? (unsigned)(max - got) : 64;
		note_overflow(u); /* the peek flushes the kernel's list when the queue is empty */
		unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, want);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
			if (tag & TAG_CANCEL) {
				/* a cancel that did not take: the poll was
				 * being run; again (ENOENT: it had ended) */
				if (cqes[i]->res == -EALREADY && tag != TAG_IGNORE) {
					pthread_mutex_lock(&u->sq_lock);
					int rc = cancel_locked(u, (void *)(uintptr_t)(tag & ~TAG_CANCEL));
					pthread_mutex_unlock(&u->sq_lock);
					if (rc)
						weft__die("io_uring driver: cannot cancel a poll: %s",
							  strerror(-rc));
				}
				continue;
			}
			if (tag == TAG_WAKE) {
				atomic_store_explicit(&u->wake_pending, false, memory_order_relaxed);
				ev[got].data.ptr = NULL;
				ev[got].events = 0;
				got++;
				continue;
			}
			int32_t res = cqes[i]->res;
			uint32_t e = res >= 0 ? (uint32_t)res
				   : res == -ECANCELED ? WEFT__EV_FAILED | WEFT__EV_CANCELED
				   : WEFT__EV_FAILED;
			if (!(cqes[i]->flags & IORING_CQE_F_MORE))
				e |= WEFT__EV_ENDED;
			ev[got].data.ptr = (void *)(uintptr_t)tag;
			ev[got].events = e;
			got++;
		}
		io_uring_cq_advance(&u->ring, n);
	}
	/* acquire: pairs with weft__uring_arm's release (see top) */
	(void)atomic_load_explicit(&u->submits, memory_order_acquire);
	return got;
}

#else /* !WEFT_WITH_URING */

int weft__uring_init(struct weft_runtime *rt)
{
	(void)rt;
	return -ENOSYS;
}
void weft__uring_fini(struct weft_runtime *rt) { (void)rt; }
int weft__uring_arm(struct weft_runtime *rt, int fd, void *reg, uint32_t events)
{
	(void)rt, (void)fd, (void)reg, (void)events;
	return -ENOSYS;
}
int weft__uring_disarm(struct weft_runtime *rt, void *reg)
{
	(void)rt, (void)reg;
	return -ENOSYS;
}
void weft__uring_wake(struct weft_runtime *rt) { (void)rt; }
uint64_t weft__uring_overflows(struct weft_runtime *rt)
{
	(void)rt;
	return 0;
}
void weft__uring_test_oneshot(struct weft_runtime *rt, unsigned n) { (void)rt, (void)n; }
int weft__uring_wait(struct weft_runtime *rt, struct epoll_event *ev, int max, int64_t timeout_ns)
{
	(void)rt, (void)ev, (void)max, (void)timeout_ns;
	return -ENOSYS;
}
#endif
