/*
 * io.c - readiness registrations (epoll, edge-triggered) and the socket
 * calls built on them.
 *
 * A registration holds the fd, a readiness word and one waker per
 * direction. Readiness word: (tick << 8) | bits. The driver ORs in the
 * READABLE/WRITABLE bits of each epoll event and bumps the tick (one CAS);
 * clearing (after an operation returned EAGAIN) succeeds only if the tick is
 * still the one the caller read before trying, so readiness that arrived in
 * between survives. HUP and ERROR are states, not edges: each event (epoll
 * reports the fd's whole current mask) replaces them, so a socket that was
 * "hung up" only while unconnected does not stay so (a stale HUP made every
 * wait return at once and a reader spin on EAGAIN). ERROR is also cleared,
 * with the direction's bit, after a call that returned EAGAIN: a socket's
 * pending error is returned before EAGAIN, so that call proves it consumed,
 * and edge-triggered epoll reports nothing new (a connected UDP socket's
 * ICMP error, consumed by a recv's -ECONNREFUSED, stayed set and every
 * later wait returned at once: a 1 s timed recv spun 0.6 s of CPU, found by
 * a review). Not after a broken io_uring poll (RD_BROKEN): no event would
 * ever come to wake the wait. EPOLLRDHUP (the peer
 * shut its write side) wakes readers only; EPOLLHUP (both directions) and
 * EPOLLERR wake writers too. Readiness polls spend the cooperative budget,
 * like every other resource, so a task that keeps finding readiness still
 * yields.
 * Wakers are guarded by a small mutex: a waiter stores its waker, then
 * re-reads readiness, so an event between its first check and the store is
 * seen either by the re-read or by the driver's wake.
 *
 * Lifetime: epoll events carry the registration's address. Deregistering
 * removes the fd from epoll first and then retires the registration; it is
 * freed only when a later driver pass begins (the driver lock is held
 * across each epoll_wait + dispatch), so no event still in hand can point
 * at freed memory. Retired entries left at destroy are freed then.
 * weft_io_close leaves the fd's close(2) to the last reference (io_unref),
 * so a call in progress never reaches a file that reused the number.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include <weft/io.h>

#include "runtime.h"
#include "waitlist.h"

#define RD_BITS 0xffull
#define RD_TICK_ONE 0x100ull

struct weft_io {
	struct weft_runtime *rt;
	int fd;
	bool is_socket;                 /* writes use send(MSG_NOSIGNAL): no SIGPIPE */
	bool is_fifo;                   /* a pipe: writes keep SIGPIPE off (write_nosig) */
	bool is_msg;                    /* a datagram or seqpacket socket: one write, one
					 * message (weft_writev sends every segment at once) */
	bool stream;                    /* TCP or a plain FIFO: a short read or write means
					 * the kernel buffer ran dry or full (io.c, short_xfer) */
	_Atomic bool urgent;            /* an EPOLLPRI came: a read may stop at the urgent mark */
	/* io_uring driver: the poll's cancel was asked (under lock); the
	 * poll posted an event and stayed armed (driver thread only); the
	 * overflows counted when it was armed; the link of the driver's
	 * arm_pending list. */
	bool uring_removing;
	bool uring_more;
	bool uring_retried;             /* armed again after an unexplained end (io->lock) */
	uint64_t uring_gen;             /* weft__uring_overflows when armed (io->lock) */
	struct weft_io *arm_next;
	/* io_uring: the poll holds a reference, and io is on the driver's
	 * `polled` list (both under retired_lock): whoever takes it off
	 * drops that reference - the poll's last completion, or after
	 * shutdown, when no driver pass reads completions, the shutdown or a
	 * close (poll_unref_locked). */
	bool polled;
	bool stop_woken;                /* weft__io_stop_waiters passed it (retired_lock) */
	struct weft_io *poll_prev, *poll_next;
	_Atomic int refs;               /* the owner's + one per blocking call in progress */
	_Atomic bool detached;          /* weft_io_close / _deregister was called (once only) */
	bool close_fd;                  /* weft_io_close: the last reference closes fd
					 * (set under retired_lock) */
	bool set_nonblock;              /* O_NONBLOCK was weft's: a deregistration
					 * clears it again (fd_done); handed on to
					 * another live registration of the same
					 * open file (pass_nonblock_locked) */
	bool is_child;                  /* a child's pidfd (weft_child_open, a
					 * process's): weft_child_reap takes it */
	_Atomic bool fd_closed;         /* fd closed already: io_uring, the poll's reference
					 * the only one left (io_unref) */
	_Atomic uint64_t readiness;
	_Atomic uint64_t rdeadline, wdeadline;  /* weft_io_set_deadline; WEFT_FOREVER: none */
	pthread_mutex_t lock;
	weft_waker rwaker, wwaker;      /* the poll form's: the last poller's, per direction */
	/* The blocking calls' waiters (weft_read, weft_accept, weft_io_wait
	 * ...), any number of them: entries on their callers' frames, each
	 * linked with (the readiness tick it saw << 2) | the directions it
	 * waits for. `blocked` counts them, for the driver's fast path. */
	struct weft__slock wlock;
	struct weft__waitq waiters;
	_Atomic unsigned blocked;
	struct weft_io *retired_next;
	struct weft_io *reg_prev, *reg_next;  /* live registrations, under regs_lock */
	dev_t dev;                      /* the file's (fstat), for pass_nonblock_locked */
	ino_t ino;
};

/*
 * Registration slab: registrations come from chunks of SLAB_REGS and go
 * back to a free list (under retired_lock) when retired, so connection
 * churn does not hit the allocator; chunks are freed at destroy.
 */
#define SLAB_REGS 64
struct reg_chunk {
	struct reg_chunk *next;
	struct weft_io reg[SLAB_REGS];
};

/* Caller holds retired_lock. At the tail: a registration's memory is
 * taken again last, after every other free one, so a stale handle (a
 * second close, a reap after a close) finds it still closed for as long
 * as can be - what io.h's "-EBADF while the memory is not reused" rests on
 * (LIFO reuse handed a just-closed slot to the very next registration). */
static void reg_put_locked(struct weft__driver *d, struct weft_io *io)
{
	io->retired_next = NULL;
	if (d->reg_free_tail)
		d->reg_free_tail->retired_next = io;
	else
		d->reg_free = io;
	d->reg_free_tail = io;
}

static struct weft_io *reg_alloc(struct weft__driver *d)
{
	pthread_mutex_lock(&d->retired_lock);
	struct weft_io *io = d->reg_free;
	if (io) {
		d->reg_free = io->retired_next;
		if (!d->reg_free)
			d->reg_free_tail = NULL;
	} else {
		struct reg_chunk *c = weft__malloc(sizeof(*c));
		if (c) {
			c->next = d->reg_chunks;
			d->reg_chunks = c;
			for (unsigned i = 1; i < SLAB_REGS; i++)
				reg_put_locked(d, &c->reg[i]);
			io = &c->reg[0];
		}
	}
	pthread_mutex_unlock(&d->retired_lock);
	if (io)
		memset(io, 0, sizeof(*io));
	return io;
}


/* Internal readiness bits: the runtime shut down (operations fail); both
 * directions hung up (EPOLLHUP: writers wake too, and see WEFT_IO_HUP);
 * io_uring: the poll is gone and cannot be armed again (poll_gone), so the
 * ERROR set with it is never cleared. */
#define RD_SHUTDOWN WEFT_IO_SHUTDOWN /* public since it shows in ready masks */
#define RD_WRHUP 0x40u
#define RD_BROKEN 0x80u
/* The state-like bits each event replaces. */
#define RD_STATE (WEFT_IO_HUP | WEFT_IO_ERROR | RD_WRHUP)

static unsigned epoll_to_bits(uint32_t ev)
{
	unsigned b = 0;
	if (ev & (EPOLLIN | EPOLLPRI))
		b |= WEFT_IO_READABLE;
	if (ev & EPOLLOUT)
		b |= WEFT_IO_WRITABLE;
	if (ev & (EPOLLHUP | EPOLLRDHUP))
		b |= WEFT_IO_HUP;
	if (ev & EPOLLHUP)
		b |= RD_WRHUP;
	if (ev & EPOLLERR)
		b |= WEFT_IO_ERROR;
	return b;
}

/* OR `bits` into the readiness word and bump the tick; the bits in `state`
 * are replaced (cleared unless in `bits`) instead. */
static uint64_t update_bits(struct weft_io *io, unsigned bits, unsigned state)
{
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_relaxed), n;
	/* release: a waiter that sees the bits sees what the driver saw;
	 * seq_cst: against the blocking waiters (wake_waiters). */
	do
		n = ((r & ~RD_BITS) + RD_TICK_ONE) | (r & RD_BITS & ~(uint64_t)state) | bits;
	while (!atomic_compare_exchange_weak_explicit(&io->readiness, &r, n, memory_order_seq_cst,
						      memory_order_relaxed));
	return n;
}

static void set_bits(struct weft_io *io, unsigned bits) { update_bits(io, bits, 0); }

/* Which waiters an event with these bits concerns. */
#define WAKES_READERS (WEFT_IO_READABLE | WEFT_IO_HUP | WEFT_IO_ERROR | WEFT_IO_CLOSED | RD_SHUTDOWN)
#define WAKES_WRITERS (WEFT_IO_WRITABLE | RD_WRHUP | WEFT_IO_ERROR | WEFT_IO_CLOSED | RD_SHUTDOWN)

/*
 * Wake the blocking waiters that bits concern and that linked having seen
 * a tick below `bound` (the event's own tick after its update: a waiter
 * woken in one batch that finds nothing and links again is not woken
 * again by the same event, which would otherwise go on as long as it kept
 * re-linking). Lost wakeups: the event's update (seq_cst RMW) then its
 * seq_cst load of `blocked`, against the waiter's seq_cst increment (under
 * wlock, after linking) then its seq_cst load of the readiness: either the
 * event sees the waiter, or the waiter sees the event's bits.
 */
static void wake_waiters(struct weft_io *io, unsigned bits, uint64_t bound)
{
	unsigned dirs = (bits & WAKES_READERS ? WEFT_IO_READABLE : 0) |
			(bits & WAKES_WRITERS ? WEFT_IO_WRITABLE : 0);
	if (!dirs || !atomic_load_explicit(&io->blocked, memory_order_seq_cst))
		return;
	struct weft__wakes wk;
	wk.n = 0;
	for (bool more = true; more;) {
		more = false;
		weft__slock_lock(&io->wlock);
		struct weft_wait *e = io->waiters.head;
		while (e) {
			struct weft_wait *next = e->_next;
			if ((e->_arg & dirs) && (e->_arg >> 2) < bound) {
				if (weft__wakes_full(&wk)) {
					more = true;
					break;
				}
				weft__waitq_grant_entry(&io->waiters, e, WQ_GRANT_WAKE, &wk);
				atomic_fetch_sub_explicit(&io->blocked, 1, memory_order_relaxed);
			}
			e = next;
		}
		weft__slock_unlock(&io->wlock);
		weft__wakes_run(&wk);
	}
}

static void wake_dir_bound(struct weft_io *io, unsigned bits, uint64_t bound)
{
	weft_waker r = { 0 }, w = { 0 };
	pthread_mutex_lock(&io->lock);
	if (bits & WAKES_READERS) {
		r = io->rwaker;
		io->rwaker = (weft_waker){ 0 };
	}
	if (bits & WAKES_WRITERS) {
		w = io->wwaker;
		io->wwaker = (weft_waker){ 0 };
	}
	pthread_mutex_unlock(&io->lock);
	weft_waker_wake(&r);
	weft_waker_wake(&w);
	wake_waiters(io, bits, bound);
}

/* For states every waiter returns on (close, shutdown, error): all. */
static void wake_dir(struct weft_io *io, unsigned bits) { wake_dir_bound(io, bits, UINT64_MAX); }

static void poll_ended(struct weft_io *io, uint32_t how);

/*
 * io_uring: a completion's mask is what woke the fd (the wakeup's key),
 * not its state. A writable wakeup of a socket whose peer shut its write
 * side says EPOLLOUT alone, and taking it as the whole state dropped the
 * HUP that epoll, which reports the fd's mask, still shows (found by a
 * review: weft_io_poll_ready for READABLE said READABLE without HUP once
 * the peer had read what we wrote). So when an event would take a state
 * bit away, the fd is asked (poll(2), no wait) and its state goes in with
 * the event's own: rare (a state bit is set only after a hang-up or an
 * error), and a HUP that was true only while unconnected still goes. The
 * poll's reference keeps io; ours keeps the fd open (io_unref) while a
 * closed registration's number could be closed under the call.
 */
static int io_unref(struct weft_io *io);
static void io_ref(struct weft_io *io);

static unsigned uring_state(struct weft_io *io, unsigned bits)
{
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_relaxed);
	if (!(r & RD_STATE & ~(uint64_t)bits))
		return bits;
	/*
	 * Acquire, as io_tryref's (the poll's reference makes the count at
	 * least 1 here, so no 0 check): a close's io_unref closes the fd
	 * when its decrement finds only the poll's reference left, and that
	 * decrement (acq_rel) comes after `detached` is set. An increment
	 * after it in the count's order reads from it, and with acquire
	 * synchronizes with it: the check below sees `detached` and does not
	 * poll. One before it is counted by it: the fd stays open until our
	 * io_unref. A relaxed increment gave the second half only: on a
	 * weak-memory CPU (aarch64) the load of `detached` could be
	 * satisfied before the increment and read false, and poll(2) an fd
	 * closed - or another file that took the number (found by a review;
	 * x86's locked add orders it anyway).
	 */
	atomic_fetch_add_explicit(&io->refs, 1, memory_order_acquire);
	if (!atomic_load_explicit(&io->detached, memory_order_acquire)) {
		struct pollfd p = { .fd = io->fd, .events = POLLIN | POLLPRI | POLLOUT | POLLRDHUP };
		int n;
		while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
			;
		if (n > 0 && !(p.revents & POLLNVAL)) {
			if (p.revents & (POLLHUP | POLLRDHUP))
				bits |= WEFT_IO_HUP;
			if (p.revents & POLLHUP)
				bits |= RD_WRHUP;
			if (p.revents & POLLERR)
				bits |= WEFT_IO_ERROR;
		}
	}
	io_unref(io);
	return bits;
}

static void io_event(struct weft_runtime *rt, struct weft_io *io, uint32_t events)
{
	unsigned bits = epoll_to_bits(events);
	if (rt->driver.uring)
		bits = uring_state(io, bits);
	atomic_fetch_add_explicit(&rt->driver.io_ready_events, 1, memory_order_relaxed);
	if ((events & EPOLLPRI) && !atomic_load_explicit(&io->urgent, memory_order_relaxed))
		atomic_store_explicit(&io->urgent, true, memory_order_relaxed); /* before the bits */
	uint64_t r = update_bits(io, bits, RD_STATE);
	wake_dir_bound(io, bits, r >> 8);
}

void weft__io_ready(struct weft_runtime *rt, void *reg, uint32_t events)
{
	struct weft_io *io = reg;
	if (events & WEFT__EV_ENDED) {
		uint32_t how = events & (WEFT__EV_FAILED | WEFT__EV_CANCELED);
		events &= ~(WEFT__EV_ENDED | WEFT__EV_FAILED | WEFT__EV_CANCELED);
		/* The last completion's mask is an event, but not one that
		 * kept the poll armed: counted as one (uring_more), a poll
		 * that ends at once with a mask - a file whose poll never
		 * waits, such as a hung-up terminal's - was armed again at
		 * every driver pass, for good (found by a review). */
		if (!how && events)
			io_event(rt, io, events);
		poll_ended(io, how);
		return;
	}
	if (rt->driver.uring)
		io->uring_more = true; /* a completion with IORING_CQE_F_MORE: still armed */
	io_event(rt, io, events);
}

void weft__io_free_retired(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	if (!atomic_load_explicit(&d->retired_any, memory_order_relaxed))
		return;
	pthread_mutex_lock(&d->retired_lock);
	struct weft_io *io = d->retired;
	d->retired = NULL;
	atomic_store_explicit(&d->retired_any, false, memory_order_relaxed);
	pthread_mutex_unlock(&d->retired_lock);
	while (io) {
		struct weft_io *next = io->retired_next;
		weft_waker_drop(&io->rwaker); /* stored by a waiter racing with close */
		weft_waker_drop(&io->wwaker);
		pthread_mutex_destroy(&io->lock);
		pthread_mutex_lock(&d->retired_lock);
		reg_put_locked(d, io);
		pthread_mutex_unlock(&d->retired_lock);
		io = next;
	}
}

/* New registrations are refused once shutdown began: the driver would
 * never report on them, and shutdown would not mark them. seq_cst pairs
 * with the store in weft_runtime_shutdown. */
static bool shut_down(struct weft_runtime *rt)
{
	return atomic_load_explicit(&rt->closed, memory_order_seq_cst);
}

/* The first check of the calls that make a socket and register it (a
 * connect, a listen, a bind): -ECHILD in a forked child, -ESHUTDOWN once
 * shutdown has begun, else 0. Before the socket is made: the child's
 * connect reached the peer (a connection in the parent's listener's queue
 * that nobody asked for) and a bind took the address, before the
 * registration said -ECHILD (found by a review). */
static int refuse_new_socket(struct weft_runtime *rt)
{
	if (WEFT__FORKED(rt))
		return -ECHILD;
	return shut_down(rt) ? -ESHUTDOWN : 0;
}

static bool waiter_cancelled(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			     struct weft__wakes *wk);

#define WANTED (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

/* Arm io's poll (io_uring). Caller holds io->lock. */
static int uring_arm_locked(struct weft_io *io)
{
	io->uring_more = false;
	io->uring_gen = weft__uring_overflows(io->rt);
	return weft__uring_arm(io->rt, io->fd, io, WANTED);
}

/* io_uring: the poll takes its reference's place on the books (caller
 * holds retired_lock; io_ref done). */
static void poll_ref_locked(struct weft__driver *d, struct weft_io *io)
{
	io->polled = true;
	io->poll_prev = NULL;
	io->poll_next = d->polled;
	if (d->polled)
		d->polled->poll_prev = io;
	d->polled = io;
}

/* io_uring: take the poll's reference off the books, if it is still on
 * them: true if so, and the caller drops it (retired_lock held). */
static bool poll_unref_locked(struct weft__driver *d, struct weft_io *io)
{
	if (!io->polled)
		return false;
	io->polled = false;
	if (io->poll_prev)
		io->poll_prev->poll_next = io->poll_next;
	else
		d->polled = io->poll_next;
	if (io->poll_next)
		io->poll_next->poll_prev = io->poll_prev;
	return true;
}

/* io_uring: the poll's reference goes (its last completion came, or it
 * was never armed); `broken`: no readiness will come while the
 * registration stays open, so waiters see the error on their call. */
static void poll_gone(struct weft_io *io, bool broken)
{
	if (broken) {
		/* added to the state, not in its place: a hang-up seen (the
		 * poll's last mask, a hung-up terminal's) stays reported, as
		 * epoll reports it (it cleared HUP: found by a review) */
		update_bits(io, WEFT_IO_ERROR | RD_BROKEN, 0);
		wake_dir(io, WEFT_IO_ERROR);
	}
	struct weft__driver *d = &io->rt->driver;
	pthread_mutex_lock(&d->retired_lock);
	bool ours = poll_unref_locked(d, io);
	pthread_mutex_unlock(&d->retired_lock);
	if (!ours)
		return; /* dropped at shutdown already */
	atomic_fetch_add_explicit(&d->io_polls_ended, 1, memory_order_relaxed);
	io_unref(io);
}

/*
 * Into the driver's interest set. epoll: EPOLL_CTL_ADD, edge-triggered.
 * io_uring (uring.c): a multishot poll, which holds a reference of the
 * registration's until its last completion (weft__io_ready, poll_ended).
 * What epoll refuses is refused under both with its error: regular files,
 * directories and block devices have no readiness (EPERM), nor does any
 * file without a poll method (under io_uring, asked of the registry, an
 * epoll instance every registered fd is in with no events: io_uring would
 * call such a file always ready, and each poll would end at once), and an
 * fd registered already is -EEXIST.
 *
 * Under io_uring a poll's completions are posted by the thread that
 * submitted it, which the kernel interrupts or wakes to do so, and whose
 * exit cancels it: only this runtime's worker threads arm polls. A
 * registration made on any other thread is queued (`arm_pending`) for the
 * next driver pass, which the wake below starts (a NOP, completed within
 * this call: nothing is left for this thread to post).
 */
static int driver_add(struct weft_io *io, const struct stat *st)
{
	struct weft_runtime *rt = io->rt;
	struct weft__driver *d = &rt->driver;
	if (st && (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISBLK(st->st_mode)))
		return -EPERM;
	if (!d->uring) {
		struct epoll_event ev = { .events = WANTED | EPOLLET, .data.ptr = io };
		return epoll_ctl(d->epfd, EPOLL_CTL_ADD, io->fd, &ev) ? -errno : 0;
	}
	/* epoll's verdict, from the registry (driver.c: an epoll instance
	 * never waited on, each registered fd in it with no events):
	 * -EEXIST for an fd registered already (io_uring took a second
	 * registration, and closing both closed the number twice: the second
	 * close ended whichever file took it meanwhile), -EPERM for a file
	 * without poll, of any type (a character device like /dev/null, an
	 * anonymous inode's like an fsopen context: io_uring calls it always
	 * ready, and its poll was armed again at every pass). */
	struct epoll_event rev = { .events = 0, .data.ptr = io };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, io->fd, &rev))
		return -errno;
	struct weft__ctx *ctx = weft__ctx();
	bool worker = ctx && ctx->rt == rt && ctx->worker;
	pthread_mutex_lock(&d->retired_lock);
	if (atomic_load_explicit(&d->no_driver, memory_order_relaxed)) {
		pthread_mutex_unlock(&d->retired_lock);
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, io->fd, NULL);
		return -ESHUTDOWN; /* a registration that raced the whole shutdown */
	}
	io_ref(io); /* the poll's, on the books before any completion can come */
	poll_ref_locked(d, io);
	if (!worker) {
		io->arm_next = d->arm_pending;
		d->arm_pending = io;
		atomic_store_explicit(&d->arm_pending_any, true, memory_order_relaxed);
	}
	pthread_mutex_unlock(&d->retired_lock);
	if (!worker) {
		weft__driver_wake(rt);
		return 0;
	}
	pthread_mutex_lock(&io->lock);
	int rc = uring_arm_locked(io);
	pthread_mutex_unlock(&io->lock);
	if (rc) {
		pthread_mutex_lock(&d->retired_lock);
		poll_unref_locked(d, io);
		pthread_mutex_unlock(&d->retired_lock);
		atomic_fetch_sub_explicit(&io->refs, 1, memory_order_relaxed);
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	}
	return rc;
}

/* io_uring: arm the registrations made outside the workers (driver_add).
 * Called by the driver lock's holder before it reads completions. */
void weft__io_arm_pending(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	if (!atomic_load_explicit(&d->arm_pending_any, memory_order_relaxed))
		return;
	pthread_mutex_lock(&d->retired_lock);
	struct weft_io *io = d->arm_pending;
	d->arm_pending = NULL;
	atomic_store_explicit(&d->arm_pending_any, false, memory_order_relaxed);
	pthread_mutex_unlock(&d->retired_lock);
	while (io) {
		struct weft_io *next = io->arm_next;
		pthread_mutex_lock(&io->lock);
		bool removing = io->uring_removing;
		int rc = removing ? 0 : uring_arm_locked(io);
		pthread_mutex_unlock(&io->lock);
		if (removing || rc)
			poll_gone(io, rc != 0); /* closed before it was armed, or cannot be */
		io = next;
	}
}

/* Out of the interest set: no event after this under epoll; under
 * io_uring the poll's cancel is asked, and its last completion drops the
 * poll's reference. */
static void driver_del(struct weft_io *io)
{
	struct weft_runtime *rt = io->rt;
	/* under io_uring too: out of the registry (driver_add) */
	epoll_ctl(rt->driver.epfd, EPOLL_CTL_DEL, io->fd, NULL);
	if (!rt->driver.uring)
		return;
	pthread_mutex_lock(&io->lock);
	io->uring_removing = true;
	pthread_mutex_unlock(&io->lock);
	/* asked after shutdown too: the kernel lets go of the file */
	int rc = weft__uring_disarm(rt, io);
	if (rc)
		weft__die("io_uring driver: cannot cancel the poll of fd %d: %s", io->fd,
			  strerror(-rc));
	/* After shutdown no driver pass reads the poll's last completion:
	 * the poll's reference goes now (else weft_io_close after shutdown
	 * never closed the fd: found by a review). Before, shutdown finds it
	 * still on the books and drops it (weft__io_shutdown). The owner's
	 * reference is still held: this is never the last. */
	struct weft__driver *d = &rt->driver;
	pthread_mutex_lock(&d->retired_lock);
	bool drop = atomic_load_explicit(&d->no_driver, memory_order_relaxed) &&
		    poll_unref_locked(d, io);
	pthread_mutex_unlock(&d->retired_lock);
	if (drop)
		io_unref(io);
}

/*
 * io_uring: the poll of `io` ended (its last completion). Asked to
 * (driver_del): the poll's reference goes. Otherwise it is armed again,
 * from this thread (a worker holding the driver), when
 *  - it was cancelled (ECANCELED): the thread that armed it exited (a
 *    spare or retired worker), and the kernel cancels such a thread's
 *    polls at their next event; the new poll's first check reports the
 *    readiness that event carried;
 *  - it ended by itself with a mask after at least one event that kept it
 *    armed, or with the completion queue overflowed since it was armed
 *    (uring.c, note_overflow: an event that finds no room ends a multishot
 *    poll on some kernels, even its first).
 *  - it ended at once with a mask, once: the overflow count can miss the
 *    queue full. The kernel (io_poll_check_events, 6.x) refuses the event
 *    when the queue is full as it counts it - completions it has written
 *    but not yet published included - and posts the last completion at
 *    the end of that task-work run; if the driver took completions in
 *    between, that one finds room, and the driver never saw the queue
 *    full (a registration marked broken for good: found by a review).
 *    `uring_retried` says this arm is that second chance.
 * A poll that failed otherwise, or ended at once with a mask again (a
 * file whose poll never waits, such as a hung-up terminal's: io_uring
 * calls it always ready), marks the registration with an error instead:
 * no readiness will come, and re-arming would spin.
 * Under io->lock, against driver_del: either the cancel is asked after the
 * new poll is in the kernel (it finds it), or we see it asked and do not
 * arm.
 */
static void poll_ended(struct weft_io *io, uint32_t how)
{
	pthread_mutex_lock(&io->lock);
	bool removing = io->uring_removing;
	bool explained = io->uring_more || weft__uring_overflows(io->rt) != io->uring_gen;
	bool at_once = !how && !explained;
	bool again = !removing &&
		     ((how & WEFT__EV_CANCELED) ||
		      (!(how & WEFT__EV_FAILED) && (explained || !io->uring_retried)));
	if (again)
		io->uring_retried = at_once;
	if (again && uring_arm_locked(io) == 0) {
		pthread_mutex_unlock(&io->lock);
		atomic_fetch_add_explicit(&io->rt->driver.io_polls_rearmed, 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_unlock(&io->lock);
	poll_gone(io, !removing);
}

/* A refused registration leaves the fd as it found it: O_NONBLOCK is a
 * property of the open file description, shared with every dup and fork
 * of the fd (it stayed set on a refused /dev/null: found by a review). */
static void restore_flags(int fd, int fl)
{
	if (!(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl);
}

int weft_io_register(struct weft_runtime *rt, int fd, struct weft_io **out)
{
	if (!rt || fd < 0 || !out)
		return -EINVAL;
	if (WEFT__FORKED(rt))
		return -ECHILD;
	if (shut_down(rt))
		return -ESHUTDOWN; /* checked again, under the lock, below */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	struct weft_io *io = reg_alloc(&rt->driver);
	if (!io) {
		restore_flags(fd, fl);
		return -ENOMEM;
	}
	io->rt = rt;
	io->fd = fd;
	io->set_nonblock = !(fl & O_NONBLOCK);
	struct stat st;
	bool have_st = fstat(fd, &st) == 0;
	if (have_st) {
		io->dev = st.st_dev;
		io->ino = st.st_ino;
	}
	io->is_socket = have_st && S_ISSOCK(st.st_mode);
	io->is_fifo = have_st && S_ISFIFO(st.st_mode);
	io->is_msg = false;
	/* Packet-mode pipes (O_DIRECT) return one packet per read. */
	io->stream = have_st && S_ISFIFO(st.st_mode) && !(fl & O_DIRECT);
	if (io->is_socket) {
		/* TCP (and MPTCP) only: a Unix stream socket's read stops
		 * where passed descriptors or credentials change, SCTP's
		 * one-to-one sockets (SOCK_STREAM too) return one message. */
		int proto = 0;
		socklen_t len = sizeof(proto);
		io->stream = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
			     (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP);
		int type = 0;
		len = sizeof(type);
		io->is_msg = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
			     type != SOCK_STREAM;
	}
	/* io_uring reports the wakeup's key, not the fd's state: every TCP
	 * data arrival says EPOLLPRI, so urgent data cannot be told apart, and
	 * a read stopped at an urgent mark would be taken for a dry buffer and
	 * wait for an edge that never comes. Under it a short transfer on a
	 * socket is not trusted (a read that finds nothing costs an EAGAIN,
	 * as epoll's did before short_xfer). A pipe has no urgent data (its
	 * wakeups say EPOLLIN or EPOLLOUT, never EPOLLPRI): it keeps it, as
	 * under epoll. Not trusted there either, a pipe read dry stayed
	 * READABLE under io_uring alone, and weft_io_wait said it was ready
	 * with nothing to read (found by a review). */
	if (rt->driver.uring && io->is_socket)
		io->stream = false;
	atomic_init(&io->urgent, false);
	atomic_init(&io->readiness, 0);
	atomic_init(&io->rdeadline, WEFT_FOREVER);
	atomic_init(&io->wdeadline, WEFT_FOREVER);
	atomic_init(&io->refs, 1);
	pthread_mutex_init(&io->lock, NULL);
	weft__waitq_init(&io->waiters, &io->wlock, waiter_cancelled);
	atomic_store_explicit(&rt->driver.io_registered, true, memory_order_relaxed);
	int e = driver_add(io, have_st ? &st : NULL);
	if (e) {
		pthread_mutex_destroy(&io->lock);
		pthread_mutex_lock(&rt->driver.retired_lock);
		reg_put_locked(&rt->driver, io);
		pthread_mutex_unlock(&rt->driver.retired_lock);
		restore_flags(fd, fl);
		return e;
	}
	struct weft__driver *d = &rt->driver;
	pthread_mutex_lock(&d->retired_lock);
	/* Shutdown sets the flag before weft__io_shutdown takes this lock
	 * to mark every listed registration: a registration listed first is
	 * marked there, one that comes later sees the flag here. */
	if (shut_down(rt)) {
		pthread_mutex_unlock(&d->retired_lock);
		driver_del(io);
		/* The fd is the caller's again from here, restored below: the
		 * last reference must not touch it. Under io_uring that is the
		 * poll's, dropped at a later driver pass, when the caller may
		 * have closed the fd and a new file taken its number - whose
		 * O_NONBLOCK that pass cleared (found by a review). */
		atomic_store_explicit(&io->fd_closed, true, memory_order_relaxed);
		/* A driver pass may hold an event for io: retire it (freed
		 * at the next pass or at destroy), do not reuse it at once. */
		io_unref(io);
		restore_flags(fd, fl);
		return -ESHUTDOWN;
	}
	io->reg_next = d->regs;
	if (d->regs)
		d->regs->reg_prev = io;
	d->regs = io;
	pthread_mutex_unlock(&d->retired_lock);
	atomic_fetch_add_explicit(&rt->driver.io_registered_count, 1, memory_order_relaxed);
	*out = io;
	return 0;
}

/*
 * io_uring, at shutdown: no worker is left, so no driver pass will read a
 * completion again, and a poll's reference, dropped at its last
 * completion, would never go: weft_io_close after shutdown never closed
 * the fd, nor did a close just before it whose poll had not ended yet
 * (found by a review). So the books close here: every reference a poll
 * still holds is dropped now, and from here a close drops its own
 * (driver_del) and a registration is refused (driver_add), each deciding
 * under retired_lock, where no_driver is set. The completions left in the
 * ring are never read (weft__uring_wait); destroy tears the ring down.
 */
static void uring_no_driver(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	if (!d->uring)
		return;
	pthread_mutex_lock(&d->retired_lock);
	if (atomic_load_explicit(&d->no_driver, memory_order_relaxed)) {
		pthread_mutex_unlock(&d->retired_lock);
		return;
	}
	atomic_store_explicit(&d->no_driver, true, memory_order_relaxed);
	struct weft_io *list = d->polled;
	d->polled = NULL;
	for (struct weft_io *io = list; io; io = io->poll_next)
		io->polled = false; /* off the books: the links are ours now */
	d->arm_pending = NULL; /* never armed, and never will be */
	atomic_store_explicit(&d->arm_pending_any, false, memory_order_relaxed);
	pthread_mutex_unlock(&d->retired_lock);
	while (list) {
		struct weft_io *next = list->poll_next;
		io_unref(list); /* a closed one's last: its fd is closed */
		list = next;
	}
}

/*
 * Shutdown has begun (rt->closed): the workers stop once the fibers are
 * done, and no driver pass comes after that. A thread blocked in an I/O
 * call - a fiber's block_in_place fn, a blocking job, any thread outside
 * the runtime - would wait for good, and shutdown with it: it waits for
 * the fibers (the fn's fiber cannot end before its fn) and for every
 * worker thread (the fn's included): -ETIMEDOUT, and destroy hung (found
 * by a review). Wake the blocking waiters: their wait sees rt->closed and
 * returns -ESHUTDOWN (wait_poll; a fiber's wait says -ECANCELED first, as
 * every fiber is cancelled by then). An operation that need not wait
 * still goes through. The readiness bits are left alone: a poll task
 * still running until its worker stops must not read RD_SHUTDOWN (set by
 * weft__io_shutdown once the workers are gone) as "ready" for good.
 * Wakers run with no lock held, as in weft__io_shutdown.
 */
void weft__io_stop_waiters(struct weft_runtime *rt)
{
	enum { PASS = 32 };
	struct weft__driver *d = &rt->driver;
	for (;;) {
		struct weft_io *ios[PASS];
		size_t n = 0;
		pthread_mutex_lock(&d->retired_lock);
		for (struct weft_io *io = d->regs; io && n < PASS; io = io->reg_next) {
			if (io->stop_woken)
				continue;
			io->stop_woken = true;
			io_ref(io); /* listed: the owner's reference is still there */
			ios[n++] = io;
		}
		pthread_mutex_unlock(&d->retired_lock);
		for (size_t i = 0; i < n; i++) {
			/* the poll form's wakers too: a thread waiting in a
			 * select's READY arm (weft_io_copy's wait, say) in a
			 * block_in_place fn held shutdown up, never woken (found
			 * by a review) */
			wake_dir(ios[i], RD_SHUTDOWN);
			io_unref(ios[i]);
		}
		if (n < PASS)
			break;
	}
}

void weft__io_shutdown(struct weft_runtime *rt)
{
	/* No worker is left: make further operations fail (-ESHUTDOWN) and
	 * wake the waiters, so a thread blocked in weft_read outside the
	 * runtime returns (its waker used to be dropped, and it slept on for
	 * good: found by a review). Before shutdown waits for the blocking
	 * pool: a job blocked in weft_read holds that wait up, and nothing
	 * else wakes it (this ran after that wait, which timed out, and
	 * destroy hung: found by a review). A task's waker goes through the runtime's
	 * after-shutdown path. The structs stay valid until closed, or until
	 * destroy frees them.
	 * Wakers run with no lock held (a task's drop may close a
	 * registration, which takes retired_lock): each pass marks up to
	 * `cap` registrations not yet marked, holding a reference on each,
	 * and wakes them after the lock (room for all of them if that can be
	 * allocated). A waiter that polls after the mark sees RD_SHUTDOWN and
	 * waits no more. */
	enum { PASS = 32 };
	struct weft__driver *d = &rt->driver;
	struct weft_io *small[PASS], **ios = small, **big = NULL;
	size_t cap = PASS, nregs = 0;
	pthread_mutex_lock(&d->retired_lock);
	for (struct weft_io *io = d->regs; io; io = io->reg_next)
		nregs++;
	pthread_mutex_unlock(&d->retired_lock);
	if (nregs > PASS && (big = weft__malloc(nregs * sizeof(*big)))) {
		ios = big;
		cap = nregs;
	}
	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&d->retired_lock);
		for (struct weft_io *io = d->regs; io && n < cap; io = io->reg_next) {
			if (atomic_load_explicit(&io->readiness, memory_order_relaxed) & RD_SHUTDOWN)
				continue;
			set_bits(io, RD_SHUTDOWN);
			io_ref(io); /* listed: the owner's reference is still there */
			ios[n++] = io;
		}
		pthread_mutex_unlock(&d->retired_lock);
		for (size_t i = 0; i < n; i++) {
			wake_dir(ios[i], RD_SHUTDOWN);
			io_unref(ios[i]);
		}
		if (n < cap)
			break;
	}
	weft__free(big);
	uring_no_driver(rt);
	weft__io_free_retired(rt);
}

void weft__io_fini(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	/* io_uring: the polls of registrations left open are cancelled here,
	 * not left to the ring's teardown. A child forked without exec holds
	 * the ring's fd, and with it the ring, every poll still armed and the
	 * file each poll holds, for as long as it lives: the caller's
	 * close(2) of such an fd after destroy left the socket open, its peer
	 * never seeing EOF until the child exited (found by a review). The
	 * cancel names the registration only as user_data: freeing it below
	 * is safe, and no completion is read again. */
	if (d->uring)
		for (struct weft_io *io = d->regs; io; io = io->reg_next)
			(void)weft__uring_disarm(rt, io);
	struct weft_io *io = d->regs;
	d->regs = NULL;
	while (io) {
		struct weft_io *next = io->reg_next;
		pthread_mutex_destroy(&io->lock);
		io = next;
	}
	weft__io_free_retired(rt);
	while (d->reg_chunks) {
		struct reg_chunk *c = d->reg_chunks;
		d->reg_chunks = c->next;
		weft__free(c);
	}
	d->reg_free = d->reg_free_tail = NULL;
}

static void io_ref(struct weft_io *io) { atomic_fetch_add_explicit(&io->refs, 1, memory_order_relaxed); }

/*
 * A call's reference, taken at its entry: none once the count is 0 (the
 * registration was closed and its last reference went: it is retired,
 * or freed to the slab). A call made after weft_io_close used to take the
 * count 0 -> 1 -> 0 and retire the registration a second time: the
 * retired list linked it to itself, the slab's free list then too, and
 * later registrations shared one struct (found by a review). The call
 * gets -EBADF instead, while the slot is not reused (io.h).
 *
 * Acquire on success: under io_uring a close may close the fd while the
 * poll still holds a reference (io_unref: the decrement that leaves only
 * the poll's). That decrement comes after WEFT_IO_CLOSED is set and is a
 * release; a reference taken after it in the count's order reads from it
 * (or from a later RMW in its release sequence) and so sees the bit in
 * the CLOSED check every call makes before its first use of the fd; one
 * taken before it is counted by it, and the fd stays open. With a relaxed
 * CAS a weak-memory CPU could let the check miss the bit and the call use
 * a closed number (x86's locked CAS orders it anyway).
 */
static bool io_tryref(struct weft_io *io)
{
	int n = atomic_load_explicit(&io->refs, memory_order_relaxed);
	do {
		if (n <= 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&io->refs, &n, n + 1, memory_order_acquire,
							memory_order_relaxed));
	return true;
}

/* io_tryref for a call that may make no system call (a write of 0 bytes):
 * a closed registration is -EBADF even while a reference keeps it (an
 * io_uring poll's, until its last completion is read). */
static bool io_tryref_open(struct weft_io *io)
{
	if (!io_tryref(io))
		return false;
	if (atomic_load_explicit(&io->readiness, memory_order_acquire) & WEFT_IO_CLOSED) {
		io_unref(io);
		return false;
	}
	return true;
}

/* The last reference retires the registration: it is freed at the next
 * driver pass, when no epoll event in hand can still point at it. After
 * weft_io_close it also closes the fd, and returns close's result (else
 * 0): a call in progress holds a reference from before its CLOSED check
 * until after its last use of the fd, so no call reads or writes a file
 * that took over the number (a close at once let an in-flight read get
 * another file's bytes: found by a review). */
static int last_ref(struct weft_io *io);

/*
 * The fd once no call uses it any more: weft_io_close closes it (close's
 * -errno, or 0); weft_io_deregister gives it back as it was registered -
 * O_NONBLOCK, if weft set it, cleared again. The flag belongs to the open
 * file, shared with every dup and fork of the fd: a deregistered stdout
 * (or a pipe a shell shares) stayed non-blocking for the others, whose
 * writes then failed with EAGAIN (found by a review). Go's Fd() makes the
 * fd blocking too; Tokio's into_std leaves it non-blocking.
 */
static int fd_done(int fd, bool close_fd, bool set_nonblock)
{
	if (close_fd)
		return close(fd) ? -errno : 0;
	if (set_nonblock) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return 0;
}

static int io_unref(struct weft_io *io)
{
	struct weft__driver *d = &io->rt->driver;
	/*
	 * io_uring, after weft_io_close: an armed poll holds a reference
	 * until a driver pass reads its last completion - with every worker
	 * busy, seconds (a child's stdin pipe "closed" that way reached EOF
	 * 1.95 s late: found by a review). Once the poll's is the only
	 * reference left, no call is using the fd: close it now; the memory
	 * waits for the completion. Decided under retired_lock, which the
	 * poll's reference leaves the books under (poll_unref_locked) before
	 * it is dropped: `polled` and a count of 1 after ours mean the one
	 * left is the poll's.
	 *
	 * Every decrement that may leave one reference is made under the
	 * lock, and `detached` is read after it, there. It was read before
	 * the decrement, lock-free: a call's unref that read "not detached"
	 * while weft_io_close ran decremented after the close's (which saw
	 * the call's reference left and did not close) and left the poll's
	 * alone: the fd stayed open until the poll's last completion (found
	 * by a review). Now a decrement to 1 with `polled` means the owner's
	 * reference went before ours, and its decrement (acq_rel, after the
	 * exchange that set `detached`) is read by ours: `detached` is seen.
	 * The check cannot come after a lock-free decrement instead: once
	 * ours is gone, the poll's last completion may retire io and a later
	 * registration reuse its memory. Above two, a decrement leaves at
	 * least two: lock-free.
	 */
	if (d->uring) {
		int n = atomic_load_explicit(&io->refs, memory_order_relaxed);
		while (n > 2)
			/* acq_rel, as below */
			if (atomic_compare_exchange_weak_explicit(&io->refs, &n, n - 1,
								  memory_order_acq_rel,
								  memory_order_relaxed))
				return 0;
		pthread_mutex_lock(&d->retired_lock);
		/* acq_rel: pairs with the owner's decrement in detach (see above) */
		int prev = atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel);
		if (prev != 1) {
			bool now = prev == 2 && io->polled &&
				   atomic_load_explicit(&io->detached, memory_order_relaxed) &&
				   !atomic_exchange_explicit(&io->fd_closed, true,
							     memory_order_relaxed);
			int fd = io->fd;
			bool close_fd = io->close_fd, nb = io->set_nonblock;
			pthread_mutex_unlock(&d->retired_lock);
			return now ? fd_done(fd, close_fd, nb) : 0;
		}
		pthread_mutex_unlock(&d->retired_lock);
		return last_ref(io);
	}
	/* acq_rel: the freeing side sees every use by the others. */
	if (atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel) != 1)
		return 0;
	return last_ref(io);
}

static int last_ref(struct weft_io *io)
{
	int rc = !atomic_exchange_explicit(&io->fd_closed, true, memory_order_relaxed)
			 ? fd_done(io->fd, io->close_fd, io->set_nonblock)
			 : 0;
	struct weft__driver *d = &io->rt->driver;
	pthread_mutex_lock(&d->retired_lock);
	io->retired_next = d->retired;
	d->retired = io;
	atomic_store_explicit(&d->retired_any, true, memory_order_relaxed);
	pthread_mutex_unlock(&d->retired_lock);
	return rc;
}

/* Out of the driver and the live list; wakes every waiter (-EBADF). With
 * close_fd the fd is closed by the last reference (io_unref): returns
 * close's result if that was ours, else 0. Without, returns the fd. */
/*
 * a and b, both registered, are descriptors of one open file (a dup): 1;
 * not: 0; kcmp(2) cannot say (no CONFIG_KCMP, a seccomp filter): -1. The
 * inode alone does not tell: two opens of a FIFO share it, and so do all
 * the files of an anonymous inode (eventfds, timerfds, pidfds before
 * 6.9).
 */
static int same_open_file(const struct weft_io *a, const struct weft_io *b)
{
	if (a->dev != b->dev || a->ino != b->ino)
		return 0;
	pid_t me = getpid();
	long r = syscall(SYS_kcmp, me, me, KCMP_FILE, a->fd, b->fd);
	return r < 0 ? -1 : r == 0;
}

/*
 * A deregistration's O_NONBLOCK is the open file's, shared with every dup:
 * while another registration of the same file is live (a terminal's stdin
 * and stdout, an inetd socket's 0 and 1, each registered), clearing it made
 * that one's fd blocking under it - its next read with nothing queued
 * blocked a worker thread in read(2) (found by a review). The flag is then
 * left set and the duty to clear it handed on to that registration, whose
 * own deregistration clears it (or hands it on again). One that kcmp(2)
 * cannot tell apart leaves the flag set with no hand-over (as before
 * deregistrations cleared it): cleared, it might be under a dup; handed
 * on, another file's own O_NONBLOCK might be cleared. Under retired_lock,
 * io just taken off d->regs: the one that takes the duty is still listed,
 * so its detach comes later, under this lock, and reads it. A walk of the
 * runtime's registrations, on a deregistration of a file weft made
 * non-blocking only (a close does not clear the flag).
 */
static void pass_nonblock_locked(struct weft__driver *d, struct weft_io *io)
{
	bool unsure = false;
	for (struct weft_io *o = d->regs; o; o = o->reg_next) {
		int same = same_open_file(io, o);
		if (same > 0) {
			o->set_nonblock = true;
			io->set_nonblock = false;
			return;
		}
		unsure |= same < 0;
	}
	if (unsure)
		io->set_nonblock = false;
}

static int detach(struct weft_io *io, bool close_fd)
{
	if (!io)
		return -EINVAL;
	/* In a forked child the epoll instance is the parent's: a delete
	 * there would take the fd out of the parent's runtime (the child
	 * closes its copy of the fd with close(2)). */
	if (WEFT__FORKED(io->rt))
		return -ECHILD;
	/* A second close would unlink it again and drop the owner's
	 * reference twice: the fd closed under a call in progress, or a file
	 * that took the number since closed. Caught while the memory is not
	 * reused (io.h). */
	if (atomic_exchange_explicit(&io->detached, true, memory_order_acq_rel))
		return -EBADF;
	struct weft__driver *d = &io->rt->driver;
	int fd = io->fd;
	driver_del(io);
	set_bits(io, WEFT_IO_CLOSED);
	wake_dir(io, WEFT_IO_CLOSED);
	atomic_fetch_add_explicit(&d->io_deregistered_count, 1, memory_order_relaxed);
	pthread_mutex_lock(&d->retired_lock);
	if (io->reg_prev)
		io->reg_prev->reg_next = io->reg_next;
	else
		d->regs = io->reg_next;
	if (io->reg_next)
		io->reg_next->reg_prev = io->reg_prev;
	io->close_fd = close_fd; /* under the lock: io_unref reads it there */
	if (!close_fd && io->set_nonblock)
		pass_nonblock_locked(d, io);
	pthread_mutex_unlock(&d->retired_lock);
	/* the owner's reference; blocking calls in progress keep theirs */
	int rc = io_unref(io);
	return close_fd ? rc : fd;
}

bool weft__io_broken(const struct weft_io *io)
{
	return atomic_load_explicit(&io->readiness, memory_order_acquire) & RD_BROKEN;
}

int weft__io_hold(struct weft_io *io)
{
	if (!io_tryref(io))
		return -EBADF;
	/* after the reference: a close that came before it may have closed
	 * the fd already (io_uring, only the poll's reference left) */
	if (atomic_load_explicit(&io->detached, memory_order_seq_cst)) {
		io_unref(io);
		return -EBADF;
	}
	return 0;
}

void weft__io_release(struct weft_io *io) { io_unref(io); }

uint64_t weft__io_tick(const struct weft_io *io)
{
	return atomic_load_explicit(&io->readiness, memory_order_acquire) >> 8;
}

int weft_io_close(struct weft_io *io) { return detach(io, true); }
int weft_io_deregister(struct weft_io *io) { return detach(io, false); }
int weft_io_fd(const struct weft_io *io)
{
	if (!io)
		return -EINVAL;
	/* closed or deregistered: the number is closed or the caller's, and
	 * may name another file by now (a setsockopt on it reached that
	 * file); -EBADF as every call after the close (io.h). A forked
	 * child still gets it: it closes its copy with close(2) (weft.h). */
	if (atomic_load_explicit(&((struct weft_io *)(uintptr_t)io)->detached, memory_order_acquire))
		return -EBADF;
	return io->fd;
}

int weft__io_fd(const struct weft_io *io) { return io->fd; }
bool weft__io_is_msg(const struct weft_io *io) { return io->is_msg; }
void weft__io_mark_child(struct weft_io *io) { io->is_child = true; }
bool weft__io_is_child(const struct weft_io *io) { return io->is_child; }

bool weft__io_forked(const struct weft_io *io) { return WEFT__FORKED(io->rt); }

/*
 * shutdown(2) through the registration. The kernel's own wakeup is not
 * enough for the calls waiting on it: a Unix stream socket whose send
 * buffer is full polls without EPOLLOUT after SHUT_WR, so no event ever
 * comes and a writer waiting in another fiber waited for good; and until
 * the driver's next pass the readiness word still says "not ready", so a
 * read right after SHUT_RD waited for that pass. So the directions shut
 * are marked ready here as an event would mark them (the tick bumped, the
 * waiters of those directions woken): each makes its call again and gets
 * the kernel's answer, 0 for a read after SHUT_RD, -EPIPE for a write
 * after SHUT_WR. One that finds nothing to say (a datagram socket's read
 * is EAGAIN) clears the bit with its tick and waits again, as after any
 * event. Not in a forked child: the socket is the parent's too, and
 * shutdown acts on the socket, not on the child's copy of the fd.
 */
int weft_io_shutdown(struct weft_io *io, int how)
{
	if (!io || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
		return -EINVAL;
	if (WEFT__FORKED(io->rt))
		return -ECHILD;
	/* the reference keeps the number ours for the call (io_unref) */
	if (!io_tryref_open(io))
		return -EBADF;
	int rc = shutdown(io->fd, how) ? -errno : 0;
	if (!rc) {
		unsigned bits = (how != SHUT_WR ? WEFT_IO_READABLE : 0) |
				(how != SHUT_RD ? WEFT_IO_WRITABLE : 0);
		uint64_t r = update_bits(io, bits, 0);
		wake_dir_bound(io, bits, r >> 8);
	}
	io_unref(io);
	return rc;
}

/* ------------------------------------------------------------- poll form */

/* Internal interest, beside WEFT_IO_READABLE: a read of the socket's error
 * queue (MSG_ERRQUEUE), which only EPOLLERR announces - bytes to read are
 * no readiness for it. Never in a ready mask (ready_mask keeps RD_BITS). */
#define IO_ERRQ 0x100u
/* Internal interest, beside WEFT_IO_READABLE: only an event newer than the
 * tick the waiter saw counts (wait_arg.after). For a read that can find
 * nothing with bytes queued - a MSG_PEEK past SO_PEEK_OFF's end, a MSG_OOB
 * before the urgent byte: READABLE stays set for the plain reads, and the
 * next bytes to come are what such a read waits for. */
#define IO_EDGE 0x200u

/* The bits of readiness word r that satisfy `interest`, as reported to the
 * caller: readers see HUP (the peer will send nothing more), writers only a
 * full hang-up (reported as HUP too); errors, close and shutdown end every
 * wait. */
static unsigned ready_mask(uint64_t r, unsigned interest)
{
	unsigned b = (unsigned)(r & RD_BITS), m = b & (WEFT_IO_ERROR | WEFT_IO_CLOSED | RD_SHUTDOWN);
	if ((interest & WEFT_IO_READABLE) && !(interest & IO_ERRQ))
		m |= b & WAKES_READERS;
	if (interest & WEFT_IO_WRITABLE) {
		m |= b & (WAKES_WRITERS & ~RD_WRHUP);
		if (b & RD_WRHUP)
			m |= WEFT_IO_HUP;
	}
	return m;
}

enum weft_poll weft_io_poll_ready(struct weft_io *io, struct weft_cx *cx, unsigned interest,
				  struct weft_io_ready *ready)
{
	/* a poll form has no error to return: a NULL registration said
	 * nothing and crashed (found by a review) */
	if (!io)
		weft__die("weft_io_poll_ready: NULL registration");
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING; /* spent: the task was woken to run again later */
	/* A thread's blocking wait (weft_select, no task) ends once shutdown
	 * has begun, as the blocking calls' waits do (wait_poll): no event
	 * may come once the workers stop. A task is not told: it is being
	 * cancelled, and a readiness that stays would make it spin. */
	bool thread = !cx->task;
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_acquire);
	if (thread && atomic_load_explicit(&io->rt->closed, memory_order_acquire))
		r |= RD_SHUTDOWN;
	unsigned m = ready_mask(r, interest);
	if (!m) {
		weft_budget_refund(cx);
		pthread_mutex_lock(&io->lock);
		if (interest & WEFT_IO_READABLE && !weft_waker_will_wake(&io->rwaker, &cx->waker)) {
			weft_waker_drop(&io->rwaker);
			io->rwaker = weft_waker_clone(&cx->waker);
		}
		if (interest & WEFT_IO_WRITABLE && !weft_waker_will_wake(&io->wwaker, &cx->waker)) {
			weft_waker_drop(&io->wwaker);
			io->wwaker = weft_waker_clone(&cx->waker);
		}
		pthread_mutex_unlock(&io->lock);
		/* re-read: an event between the first read and the store; and
		 * the closed flag, against weft__io_stop_waiters, which sets it
		 * before it takes io->lock to wake the wakers */
		r = atomic_load_explicit(&io->readiness, memory_order_acquire);
		if (thread && atomic_load_explicit(&io->rt->closed, memory_order_acquire))
			r |= RD_SHUTDOWN;
		m = ready_mask(r, interest);
		if (!m)
			return WEFT_PENDING;
	}
	if (ready)
		*ready = (struct weft_io_ready){ .mask = m, .tick = r >> 8 };
	return WEFT_READY;
}

/* ERROR goes too when it is in the mask: the call that returned EAGAIN
 * consumed the pending error (see the top), unless the poll is broken. */
void weft_io_clear_ready(struct weft_io *io, struct weft_io_ready ready)
{
	if (!io) /* nothing to return it in: as weft_io_poll_ready */
		weft__die("weft_io_clear_ready: NULL registration");
	unsigned want = ready.mask & (WEFT_IO_READABLE | WEFT_IO_WRITABLE | WEFT_IO_ERROR);
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_relaxed);
	for (;;) {
		unsigned clear = r & RD_BROKEN ? want & ~WEFT_IO_ERROR : want;
		if ((r >> 8) != ready.tick || !(r & clear))
			break;
		if (atomic_compare_exchange_weak_explicit(&io->readiness, &r, r & ~(uint64_t)clear,
							  memory_order_acq_rel, memory_order_relaxed))
			break;
	}
}

/* --------------------------------------------------------- blocking form */

struct wait_arg {
	struct weft_io *io;
	unsigned interest;
	uint64_t after;         /* IO_EDGE: the tick the caller saw */
	struct weft_io_ready ready;
	struct weft_wait w;
};

/* weft_wait_cancel of a waiter's entry, under wlock: one less linked (a
 * granted entry was counted out when it was woken). */
static bool waiter_cancelled(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			     struct weft__wakes *wk)
{
	(void)arg;
	(void)wk;
	if (grant == WQ_GRANT_NONE) {
		struct weft_io *io = weft__container_of(q, struct weft_io, waiters);
		atomic_fetch_sub_explicit(&io->blocked, 1, memory_order_relaxed);
	}
	return false;
}

/* The bits of r that end a's wait: with IO_EDGE, none before an event
 * after a->after, but close and shutdown (the bits may be set already, by
 * bytes the caller's read could not use: it spun on them). */
static unsigned wait_mask(const struct wait_arg *a, uint64_t r)
{
	unsigned m = ready_mask(r, a->interest);
	if ((a->interest & IO_EDGE) && (r >> 8) <= a->after)
		m &= WEFT_IO_CLOSED | RD_SHUTDOWN;
	return m;
}

/*
 * The blocking calls' poll: any number of callers may wait on one
 * registration and direction (two fibers accepting on one listener); each
 * waits with its own entry in `waiters` (the poll form's single waker per
 * direction kept only the last: the first waiter was never woken, not
 * even by close - found by a review). The entry is left linked when this
 * returns READY; io_wait_until takes it out.
 */
static enum weft_poll wait_poll(void *arg, struct weft_cx *cx)
{
	struct wait_arg *a = arg;
	struct weft_io *io = a->io;
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_acquire);
	/* The runtime is shutting down: a wait would outlast the workers
	 * (weft__io_stop_waiters) */
	if (atomic_load_explicit(&io->rt->closed, memory_order_acquire))
		r |= RD_SHUTDOWN;
	unsigned m = wait_mask(a, r);
	if (!m) {
		weft_budget_refund(cx);
		uint32_t grant;
		weft__slock_lock(&io->wlock);
		if (weft__waitq_poll_entry(&io->waiters, &a->w, cx, &grant) != WQ_LINKED) {
			weft__waitq_link(&io->waiters, &a->w, weft_cx_waker(cx),
					 ((r >> 8) << 2) | (a->interest & (WEFT_IO_READABLE |
									   WEFT_IO_WRITABLE)));
			atomic_fetch_add_explicit(&io->blocked, 1, memory_order_seq_cst);
		}
		weft__slock_unlock(&io->wlock);
		/* re-read: an event between the first read and the link; and
		 * the closed flag, against weft__io_stop_waiters (the store,
		 * then its load of `blocked`, both seq_cst) */
		r = atomic_load_explicit(&io->readiness, memory_order_seq_cst);
		if (atomic_load_explicit(&io->rt->closed, memory_order_seq_cst))
			r |= RD_SHUTDOWN;
		m = wait_mask(a, r);
		if (!m)
			return WEFT_PENDING;
	}
	a->ready = (struct weft_io_ready){ .mask = m, .tick = r >> 8 };
	return WEFT_READY;
}

static int io_wait_until(struct weft_io *io, unsigned events, uint64_t deadline,
			 struct weft_io_ready *out);

static uint64_t deadline_after(uint64_t timeout_ns)
{
	if (timeout_ns == WEFT_FOREVER)
		return WEFT_FOREVER;
	uint64_t now = weft__now_ns();
	return timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
}

int weft_io_wait_ready(struct weft_io *io, unsigned events, uint64_t timeout_ns,
		       struct weft_io_ready *ready)
{
	/* a direction is needed (nothing else registers a wait); the other
	 * bits a ready mask carries may come beside it, but a bit no
	 * WEFT_IO_* names is refused, as weft_io_set_deadline does */
	if (!io || !(events & (WEFT_IO_READABLE | WEFT_IO_WRITABLE)) ||
	    (events & ~(unsigned)(WEFT_IO_READABLE | WEFT_IO_WRITABLE | WEFT_IO_HUP | WEFT_IO_ERROR |
				  WEFT_IO_CLOSED | WEFT_IO_SHUTDOWN)))
		return -EINVAL;
	if (WEFT__FORKED(io->rt))
		return -ECHILD; /* no driver would wake it */
	if (!io_tryref(io))
		return -EBADF;
	int rc = io_wait_until(io, events, deadline_after(timeout_ns), ready);
	io_unref(io);
	return rc;
}

int weft_io_wait(struct weft_io *io, unsigned events, uint64_t timeout_ns)
{
	return weft_io_wait_ready(io, events, timeout_ns, NULL);
}

int weft_io_set_deadline(struct weft_io *io, unsigned events, uint64_t deadline_ns)
{
	if (!io || !(events & (WEFT_IO_READABLE | WEFT_IO_WRITABLE)) ||
	    (events & ~(WEFT_IO_READABLE | WEFT_IO_WRITABLE)))
		return -EINVAL;
	if (WEFT__FORKED(io->rt))
		return -ECHILD;
	if (atomic_load_explicit(&io->detached, memory_order_acquire))
		return -EBADF; /* closed or deregistered (io.h) */
	if (events & WEFT_IO_READABLE)
		atomic_store_explicit(&io->rdeadline, deadline_ns, memory_order_relaxed);
	if (events & WEFT_IO_WRITABLE)
		atomic_store_explicit(&io->wdeadline, deadline_ns, memory_order_relaxed);
	return 0;
}

static uint64_t io_deadline(struct weft_io *io, unsigned dir)
{
	return atomic_load_explicit(dir == WEFT_IO_READABLE ? &io->rdeadline : &io->wdeadline,
				    memory_order_relaxed);
}

/*
 * A wait ran out of time: before saying -ETIMEDOUT, ask the fd itself.
 * The readiness word learns of readiness only from the driver's epoll
 * edges, and the first edge of a new registration may still be on its
 * way (the driver asleep or busy), so weft_io_wait(io, WRITABLE, 0) right
 * after weft_io_register said -ETIMEDOUT for a writable socket. A
 * zero-timeout poll(2) reports the fd's state now. The word is read again
 * afterwards: if the registration was closed meanwhile, the fd number
 * poll(2) saw may already name another file, and -EBADF is the answer.
 */
static int timed_out(struct weft_io *io, unsigned events)
{
	short want = 0;
	if (events & WEFT_IO_READABLE)
		want |= POLLIN | POLLPRI | POLLRDHUP;
	if (events & WEFT_IO_WRITABLE)
		want |= POLLOUT;
	struct pollfd p = { .fd = io->fd, .events = want };
	int n;
	while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	unsigned b = 0;
	if (n > 0 && !(p.revents & POLLNVAL)) {
		if (p.revents & (POLLIN | POLLPRI))
			b |= WEFT_IO_READABLE;
		if (p.revents & POLLOUT)
			b |= WEFT_IO_WRITABLE;
		if (p.revents & (POLLHUP | POLLRDHUP))
			b |= WEFT_IO_HUP;
		if (p.revents & POLLHUP)
			b |= RD_WRHUP;
		if (p.revents & POLLERR)
			b |= WEFT_IO_ERROR;
	}
	uint64_t r = atomic_load_explicit(&io->readiness, memory_order_acquire);
	if (r & WEFT_IO_CLOSED)
		return -EBADF;
	if (r & RD_SHUTDOWN)
		return -ESHUTDOWN;
	unsigned m = ready_mask(b, events);
	return m ? (int)m : -ETIMEDOUT;
}

/* The caller holds a reference on io. */
/* `out` (may be NULL): the readiness with its tick, for a caller's
 * weft_io_clear_ready after its own operation got EAGAIN. `after`: for
 * IO_EDGE in events, the tick the caller read before its call. */
static int io_wait_after(struct weft_io *io, unsigned events, uint64_t after,
			 uint64_t deadline, struct weft_io_ready *out)
{
	/* the cancellation point (weft.h), also for a wait that need not
	 * wait: a time limit already past skips weft__wait_deadline's */
	if (weft__cancelled())
		return -ECANCELED;
	struct wait_arg a = { .io = io, .interest = events, .after = after,
			      .w = WEFT_WAIT_INIT };
	int rc = deadline <= weft__now_ns() ? -ETIMEDOUT
					   : weft__io_wait_deadline(wait_poll, &a, &a.w, deadline);
	weft_wait_cancel(&a.w); /* still linked (ready at the re-read, timed out) */
	if (rc == -ETIMEDOUT) {
		/* the answer comes from poll(2), not from the bits: the tick
		 * read first, so a clear with it spares any newer event */
		uint64_t tick = atomic_load_explicit(&io->readiness, memory_order_acquire) >> 8;
		rc = timed_out(io, events);
		if (rc > 0 && out)
			*out = (struct weft_io_ready){ (unsigned)rc, tick };
		return rc;
	}
	if (rc)
		return rc;
	if (a.ready.mask & WEFT_IO_CLOSED)
		return -EBADF;
	if (a.ready.mask & RD_SHUTDOWN)
		return -ESHUTDOWN;
	if (out)
		*out = a.ready;
	return (int)a.ready.mask;
}

static int io_wait_until(struct weft_io *io, unsigned events, uint64_t deadline,
			 struct weft_io_ready *out)
{
	return io_wait_after(io, events, 0, deadline, out);
}

/* A transfer of fewer bytes than asked that shows the kernel buffer ran
 * dry or full: on TCP or a plain FIFO only (a datagram, a record, a packet,
 * a terminal line, a Unix socket's chunk that carried descriptors is short
 * with more queued behind it), never for a peek (the bytes stay),
 * out-of-band data or the error queue, and not once urgent data was seen
 * on the socket (a read stops at the urgent mark). want 0 (accept):
 * never. Not known here:
 * a socket switched to kernel TLS after it was registered (a read stops
 * at a control record); such a socket is not for weft_read. */
static inline bool short_xfer(struct weft_io *io, ssize_t n, size_t want, int flags)
{
	return want && n > 0 && (size_t)n < want && io->stream &&
	       !(flags & (MSG_PEEK | MSG_OOB | MSG_ERRQUEUE)) &&
	       !atomic_load_explicit(&io->urgent, memory_order_relaxed);
}

/* Bytes (or the end of the stream) queued on io's fd now: poll(2), no
 * wait. The caller holds a reference, so the number is still io's. */
static bool fd_has_input(const struct weft_io *io)
{
	struct pollfd p = { .fd = io->fd, .events = POLLIN | POLLRDHUP };
	int n;
	while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	return n > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP));
}

/* Run op until it stops returning EAGAIN, waiting for `dir` in between.
 * A short transfer (above) means the kernel buffer ran dry or full:
 * readiness is cleared then (tick-guarded), and a call that finds `dir`
 * cleared after the registration's first event (tick > 0) waits for the
 * driver's next edge instead of paying a read or write that returns
 * EAGAIN (HTTP hello: 1.96 reads per request, one of them EAGAIN). Every
 * clear follows a call that saw the buffer dry or full, so the next edge
 * (new bytes, or room) sets the bit again; the first call on a new
 * registration, whose first edge may still be on its way, is made
 * without waiting. The caller holds a reference on io (see the REF
 * wrappers below). */
#define IO_RETRY(io, dir, want, flags, call)                                            \
	do {                                                                      \
		if (weft__cancelled())                                            \
			return -ECANCELED;                                        \
		/* an error queue read (MSG_ERRQUEUE) waits for ERROR alone \
		 * and its EAGAIN clears only that: see errq_ below */       \
		const bool errq_ = ((flags) & MSG_ERRQUEUE) != 0;                 \
		/* a peek (past SO_PEEK_OFF's end) or an out-of-band read  \
		 * (before the urgent byte) can say EAGAIN with bytes       \
		 * queued: see keep_ below */                               \
		const bool edge_ = !errq_ && (dir) == WEFT_IO_READABLE &&        \
				   ((flags) & (MSG_PEEK | MSG_OOB)) != 0;         \
		/* waited_: a wait just ended; its answer may come from     \
		 * poll(2) at a deadline, not from the bits: call now. */    \
		for (bool waited_ = false;;) {                                    \
			uint64_t r_ = atomic_load_explicit(&(io)->readiness,      \
							   memory_order_acquire); \
			if (r_ & WEFT_IO_CLOSED)                                  \
				return -EBADF;                                    \
			if (r_ & RD_SHUTDOWN)                                     \
				return -ESHUTDOWN;                                \
			if (WEFT__FORKED((io)->rt))                               \
				return -ECHILD;                                   \
			/* not for the error queue: a plain read's EAGAIN     \
			 * clears ERROR with entries still queued there */    \
			if (!waited_ && !errq_ && (r_ >> 8) != 0 &&               \
			    !ready_mask(r_, (dir)) && !((flags) & MSG_DONTWAIT)) { \
				int w_ = io_wait_until((io), (dir),               \
						       io_deadline((io), (dir)), NULL); \
				if (w_ < 0)                                       \
					return w_;                                \
				waited_ = true;                                   \
				continue;                                         \
			}                                                         \
			bool after_wait_ = waited_;                               \
			waited_ = false;                                          \
			ssize_t n_ = (call);                                      \
			if (n_ >= 0) {                                            \
				weft__coop_spend();                               \
				if (short_xfer((io), n_, (want), (flags)))        \
					weft_io_clear_ready((io),                 \
						(struct weft_io_ready){ (dir), r_ >> 8 }); \
				return n_;                                        \
			}                                                         \
			int e_ = errno;                                           \
			if (e_ == EINTR)                                          \
				continue;                                         \
			if (e_ != EAGAIN && e_ != EWOULDBLOCK)                    \
				return -e_;                                       \
			/* io_uring, the poll failed: no readiness will come, \
			 * and its ERROR ends every wait at once (a spin) */  \
			if (atomic_load_explicit(&(io)->readiness,                \
						 memory_order_acquire) & RD_BROKEN) \
				return -EIO;                                      \
			/* An empty error queue says nothing of the bytes to  \
			 * read: clearing READABLE too lost them, and a        \
			 * weft_read after it waited for good with data queued \
			 * (found by a review). Nor does a peek past the peek  \
			 * offset or an urgent byte not come yet (the same     \
			 * review): when the fd has bytes for a plain read,    \
			 * such a read clears nothing (the out-of-band one     \
			 * consumes no pending error either) and waits for the \
			 * next event (IO_EDGE). With none, its EAGAIN is a    \
			 * plain read's: cleared, so a weft_io_wait after it   \
			 * waits. */                                            \
			const bool keep_ = edge_ && fd_has_input((io));           \
			if (!keep_)                                               \
				weft_io_clear_ready((io), (struct weft_io_ready){ \
					errq_ ? WEFT_IO_ERROR                     \
					      : (dir) | WEFT_IO_ERROR,            \
					r_ >> 8 });                               \
			/* the caller's MSG_DONTWAIT: no wait (it waited) */    \
			if ((flags) & MSG_DONTWAIT)                               \
				return -EAGAIN;                                   \
			uint64_t dl_ = io_deadline((io), (dir));                  \
			/* EAGAIN right after a wait, the deadline passed: the \
			 * wait's answer came from poll(2), which can call an  \
			 * fd ready that the call is not (a Unix datagram to a \
			 * full receiver): asked again it spun for good */     \
			if (after_wait_ && dl_ != WEFT_FOREVER && weft__now_ns() >= dl_) \
				return -ETIMEDOUT;                                \
			/* A read's EAGAIN with HUP set: a datagram socket  \
			 * after SHUT_RD (a stream would say 0), a listener   \
			 * registered before listen(2) while closed (listen    \
			 * makes no event). HUP is a state, so a wait for      \
			 * READABLE ended on it at once and the call spun      \
			 * until its deadline, for good without one (found by  \
			 * a review): only a newer event (a datagram, a        \
			 * connection) ends the wait then, as for keep_. */   \
			const bool hup_ = !errq_ && (dir) == WEFT_IO_READABLE &&  \
					  (r_ & WEFT_IO_HUP);                     \
			const unsigned wait_ = errq_ ? (dir) | IO_ERRQ            \
					       : keep_ || hup_ ? (dir) | IO_EDGE  \
							       : (dir);           \
			int w_ = io_wait_after((io), wait_, r_ >> 8, dl_, NULL);  \
			if (w_ < 0)                                               \
				return w_;                                        \
			waited_ = true;                                           \
		}                                                                 \
	} while (0)

static ssize_t read_ref(struct weft_io *io, void *buf, size_t n, int flags, bool sock)
{
	IO_RETRY(io, WEFT_IO_READABLE, n, flags,
		 sock ? recv(io->fd, buf, n, flags) : read(io->fd, buf, n));
}

/* A read of nothing returns 0 at once, as read(2) with a count of 0 does
 * and Go's Read of an empty buffer: it waited for readability (found by a
 * review), which read(2) never does. No system call; still -EBADF once
 * closed and the cancellation point weft.h promises, as weft_read_full
 * of nothing. */
static ssize_t read_nothing(struct weft_io *io)
{
	if (!io_tryref_open(io))
		return -EBADF;
	ssize_t r = weft__cancelled() ? -ECANCELED : 0;
	io_unref(io);
	return r;
}

ssize_t weft_read(struct weft_io *io, void *buf, size_t n)
{
	/* a NULL buffer is refused before any wait (it waited for data,
	 * then the read said -EFAULT), as weft_read_full does */
	if (!io || (!buf && n))
		return -EINVAL;
	if (!n)
		return read_nothing(io);
	if (!io_tryref(io))
		return -EBADF;
	ssize_t r = read_ref(io, buf, n, 0, false);
	io_unref(io);
	return r;
}

ssize_t weft_read_full(struct weft_io *io, void *buf, size_t n)
{
	if (!io || (!buf && n))
		return -EINVAL;
	/* _open: a read of nothing makes no system call (as write_all) */
	if (!io_tryref_open(io))
		return -EBADF;
	size_t done = 0;
	/* the cancellation point (weft.h), a read of nothing too */
	ssize_t err = weft__cancelled() ? -ECANCELED : 0;
	while (!err && done < n) {
		ssize_t r = read_ref(io, (char *)buf + done, n - done, 0, false);
		if (r <= 0) {
			err = r; /* 0: end of stream */
			break;
		}
		done += (size_t)r;
	}
	io_unref(io);
	return done || !err ? (ssize_t)done : err;
}

/*
 * MSG_WAITALL on a stream socket: recv(2) on a blocking socket waits for
 * all n bytes (or the end of the stream, an error), but on the
 * registration's non-blocking fd one recv returns what is queued, so
 * weft_recv handed back the first bytes to come, short, with the flag
 * taken and ignored (found by a review). The calls loop as weft_read_full
 * then. Not with MSG_DONTWAIT (no wait: recv(2)'s answer, short), MSG_PEEK
 * (a peek again would see the same bytes), MSG_OOB (one byte) or
 * MSG_ERRQUEUE (one entry); a datagram is one message anyway.
 */
static bool recv_all(const struct weft_io *io, int flags)
{
	return (flags & MSG_WAITALL) && io->is_socket && !io->is_msg &&
	       !(flags & (MSG_DONTWAIT | MSG_PEEK | MSG_OOB | MSG_ERRQUEUE));
}

ssize_t weft_recv(struct weft_io *io, void *buf, size_t n, int flags)
{
	if (!io || (!buf && n))
		return -EINVAL;
	/* on a stream socket as weft_read; a datagram socket's recv(2) of
	 * nothing waits for a datagram and takes it, and so does this */
	if (!n && io->is_socket && !io->is_msg)
		return read_nothing(io);
	if (!io_tryref(io))
		return -EBADF;
	ssize_t r = read_ref(io, buf, n, flags, true);
	if (recv_all(io, flags)) {
		/* the rest, as weft_read_full: the count if the end of the
		 * stream or an error comes after some bytes */
		size_t done = r > 0 ? (size_t)r : 0;
		while (r > 0 && done < n) {
			r = read_ref(io, (char *)buf + done, n - done, flags, true);
			if (r > 0)
				done += (size_t)r;
		}
		if (done)
			r = (ssize_t)done;
	}
	io_unref(io);
	return r;
}

/*
 * write(2) to a pipe whose reader is gone raises SIGPIPE, which kills the
 * process unless it is handled (a review's program: exit 141), where io.h
 * promises -EPIPE; sockets avoid it with MSG_NOSIGNAL, pipes have no such
 * flag. So SIGPIPE is blocked in this thread around the write, and one it
 * raised is taken off again (unless one was already pending: that one is
 * the caller's). Pipes only: three more system calls per write.
 */
static ssize_t writev_nosig(int fd, const struct iovec *iov, int cnt)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t r = writev(fd, iov, cnt);
	int e = errno;
	if (r < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return r;
}

static ssize_t write_nosig(int fd, const void *buf, size_t n)
{
	struct iovec one = { (void *)buf, n };
	return writev_nosig(fd, &one, 1);
}

static ssize_t write_some(struct weft_io *io, const void *buf, size_t n, int flags, bool sock)
{
	IO_RETRY(io, WEFT_IO_WRITABLE, n, flags,
		 sock ? send(io->fd, buf, n, flags | MSG_NOSIGNAL)
		      : io->is_fifo ? write_nosig(io->fd, buf, n) : write(io->fd, buf, n));
}

/* One sendmsg/writev of iov[0, cnt), want bytes in all. */
static ssize_t writev_some(struct weft_io *io, const struct iovec *iov, int cnt, size_t want)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	IO_RETRY(io, WEFT_IO_WRITABLE, want, 0,
		 io->is_socket ? sendmsg(io->fd, &mh, MSG_NOSIGNAL)
		 : io->is_fifo ? writev_nosig(io->fd, iov, cnt) : writev(io->fd, iov, cnt));
}

static ssize_t write_all(struct weft_io *io, const void *buf, size_t n, int flags, bool sock)
{
	if (!io || (!buf && n))
		return -EINVAL;
	size_t done = 0;
	ssize_t err = 0;
	if (!io_tryref_open(io))
		return -EBADF;
	if (weft__cancelled()) { /* a write of nothing too (weft.h) */
		io_unref(io);
		return -ECANCELED;
	}
	if (!n && io->is_msg) {
		/* one call, one message: an empty datagram is one too, as
		 * send(2) and weft_writev send it (the loop below sent none) */
		err = write_some(io, buf, 0, flags, sock);
		io_unref(io);
		return err;
	}
	while (done < n) {
		ssize_t w = write_some(io, (const char *)buf + done, n - done, flags, sock);
		if (w < 0) {
			err = w;
			break;
		}
		done += (size_t)w;
	}
	io_unref(io);
	return done || !err ? (ssize_t)done : err;
}

ssize_t weft_write(struct weft_io *io, const void *buf, size_t n)
{
	return write_all(io, buf, n, 0, io && io->is_socket);
}

ssize_t weft_send(struct weft_io *io, const void *buf, size_t n, int flags)
{
	return write_all(io, buf, n, flags, true);
}

/* Segments per system call: a window of the caller's array copied to the
 * stack (1 KiB), its first entry advanced past what was written. */
#define WRITEV_WINDOW 64

/* A datagram or seqpacket socket: the segments are one message, so one
 * sendmsg with all of them (never partial: the message goes whole or not
 * at all), not a window at a time (a message per window). */
static ssize_t writev_message(struct weft_io *io, const struct iovec *iov, int iovcnt,
			      size_t total)
{
	int cnt = 0;
	for (int k = 0; k < iovcnt; k++)
		cnt += iov[k].iov_len != 0;
	if (cnt > IOV_MAX)
		return -EMSGSIZE; /* more than one sendmsg can carry */
	struct iovec stack_win[WRITEV_WINDOW], *win = stack_win;
	if (cnt > WRITEV_WINDOW && !(win = weft__malloc((size_t)cnt * sizeof(*win))))
		return -ENOMEM;
	cnt = 0;
	for (int k = 0; k < iovcnt; k++)
		if (iov[k].iov_len)
			win[cnt++] = iov[k];
	ssize_t r = -EBADF;
	if (io_tryref_open(io)) {
		r = writev_some(io, win, cnt, total);
		io_unref(io);
	}
	if (win != stack_win)
		weft__free(win);
	return r;
}

ssize_t weft_writev(struct weft_io *io, const struct iovec *iov, int iovcnt)
{
	if (!io || iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return -EINVAL; /* the count would not fit the result */
		total += iov[i].iov_len;
	}
	if (io->is_msg)
		return writev_message(io, iov, iovcnt, total);
	if (!io_tryref_open(io))
		return -EBADF;
	if (weft__cancelled()) { /* a write of nothing too (weft.h) */
		io_unref(io);
		return -ECANCELED;
	}
	size_t done = 0, off = 0; /* off: bytes of iov[i] already written */
	ssize_t err = 0;
	int i = 0;
	while (done < total) {
		while (iov[i].iov_len == off) { /* empty, or written: the next */
			i++;
			off = 0;
		}
		struct iovec win[WRITEV_WINDOW];
		int cnt = 0;
		size_t want = 0;
		for (int k = i; k < iovcnt && cnt < WRITEV_WINDOW; k++) {
			if (!iov[k].iov_len)
				continue;
			win[cnt] = iov[k];
			if (k == i) {
				win[cnt].iov_base = (char *)win[cnt].iov_base + off;
				win[cnt].iov_len -= off;
			}
			want += win[cnt++].iov_len;
		}
		ssize_t w = writev_some(io, win, cnt, want);
		if (w < 0) {
			err = w;
			break;
		}
		done += (size_t)w;
		/* advance (i, off) by w bytes */
		for (size_t left = (size_t)w; left;) {
			size_t room = iov[i].iov_len - off;
			if (left < room) {
				off += left;
				break;
			}
			left -= room;
			i++;
			off = 0;
		}
	}
	io_unref(io);
	return done || !err ? (ssize_t)done : err;
}

/* ------------------------------------------------------------------ copy */

#define COPY_BUF (32u * 1024u) /* per direction, as Go's io.Copy */

/* One direction of a copy: bytes read from src and not yet written to dst
 * are buf[pos, len). */
struct copy_dir {
	struct weft_io *src, *dst;
	char *buf;
	size_t pos, len;
	uint64_t total; /* written to dst */
	uint64_t calls; /* reads and writes that moved bytes or saw the end */
	bool eof;       /* src said end of stream */
	bool done;      /* eof seen, everything written (and passed on) */
	unsigned need;  /* what it waits for: WEFT_IO_READABLE on src, WRITABLE on dst */
	bool spent;     /* poll form: the task's budget ran out (it was woken) */
};

/* The registration's state as an error: closed, shut down, forked; 0 if
 * usable. A shutdown in progress does not stop a copy that can go on
 * without waiting, as it does not stop weft_read (copy_run refuses the
 * wait). */
static int copy_usable(struct weft_io *io, uint64_t r)
{
	if (r & WEFT_IO_CLOSED)
		return -EBADF;
	if (r & RD_SHUTDOWN)
		return -ESHUTDOWN;
	if (WEFT__FORKED(io->rt))
		return -ECHILD;
	return 0;
}

/*
 * One read or write for a poll form (reader.c's weft_reader_until_poll,
 * writer.c's weft_writer_flush_poll): > 0 bytes, 0 at end of stream (a
 * read), WEFT__IO_WAIT when it must wait (EAGAIN: readiness cleared with
 * the tick read before the call, and cx's waker registered for the
 * direction; or the task's budget ran out and it was woken), or -errno
 * (-EBADF closed, -ESHUTDOWN, -ECHILD, the call's error: -EPIPE for a
 * write to a reader gone, never SIGPIPE).
 */
ssize_t weft__io_xfer_poll(struct weft_io *io, void *buf, size_t n, bool write_,
			   struct weft_cx *cx)
{
	unsigned dir = write_ ? WEFT_IO_WRITABLE : WEFT_IO_READABLE;
	if (!io_tryref(io))
		return -EBADF;
	ssize_t rc;
	for (;;) {
		uint64_t r = atomic_load_explicit(&io->readiness, memory_order_acquire);
		int e = copy_usable(io, r);
		if (e) {
			rc = e;
			break;
		}
		if (weft_budget_poll_proceed(cx) == WEFT_PENDING) {
			rc = WEFT__IO_WAIT; /* woken to run again */
			break;
		}
		if (write_)
			rc = io->is_socket ? send(io->fd, buf, n, MSG_NOSIGNAL)
			     : io->is_fifo ? write_nosig(io->fd, buf, n)
					   : write(io->fd, buf, n);
		else
			rc = io->is_socket ? recv(io->fd, buf, n, 0) : read(io->fd, buf, n);
		if (rc >= 0)
			break;
		e = errno;
		if (e == EINTR) {
			weft_budget_refund(cx);
			continue;
		}
		if (e != EAGAIN && e != EWOULDBLOCK) {
			rc = -e;
			break;
		}
		/* io_uring, the poll failed: its ERROR stays and every poll
		 * would find it, call and get EAGAIN (a spin across polls), as
		 * the blocking calls' IO_RETRY says */
		if (r & RD_BROKEN) {
			rc = -EIO;
			break;
		}
		weft_budget_refund(cx);
		weft_io_clear_ready(io, (struct weft_io_ready){ dir | WEFT_IO_ERROR, r >> 8 });
		struct weft_io_ready ready;
		if (weft_io_poll_ready(io, cx, dir, &ready) == WEFT_PENDING) {
			rc = WEFT__IO_WAIT;
			break;
		}
		/* A thread is told of shutdown as soon as it begins (no event
		 * may come): a wait it would start ends, as the blocking calls'
		 * do. Read again, it spun on EAGAIN until the workers stopped
		 * (found by a review: shutdown hung on a select in a
		 * block_in_place fn). */
		if (ready.mask & WEFT_IO_SHUTDOWN) {
			rc = -ESHUTDOWN;
			break;
		}
		/* ready again meanwhile (or closed, an error): once more */
	}
	io_unref(io);
	return rc;
}

/* A direction's turn ends after this many reads and writes, so that a
 * source that never runs dry does not hold the other direction up. */
#define COPY_TURN 16

/*
 * Move d along without waiting, for at most COPY_TURN calls: write what
 * is buffered, read more, until a call says EAGAIN (d->need says on what;
 * that readiness is cleared, with the tick read before the call, so an
 * event that came meanwhile stays), or end of stream has been written out
 * (d->done; with pass_eof and a socket as dst, its write side is shut
 * down, as Tokio's copy_bidirectional does). d->need 0 and not done: the
 * turn ended with more to do. 0, or the first error.
 */
static int copy_dir_run(struct copy_dir *d, bool pass_eof, struct weft_cx *cx)
{
	d->need = 0;
	for (unsigned turn = 0; !d->done && turn < COPY_TURN;) {
		if (weft__cancelled())
			return -ECANCELED;
		/* the poll form spends its task's budget, one unit a call */
		if (cx && weft_budget_poll_proceed(cx) == WEFT_PENDING) {
			d->spent = true;
			return 0;
		}
		bool writing = d->pos < d->len;
		struct weft_io *io = writing ? d->dst : d->src;
		uint64_t r = atomic_load_explicit(&io->readiness, memory_order_acquire);
		int e = copy_usable(io, r);
		if (e)
			return e;
		ssize_t n;
		if (writing) {
			const char *p = d->buf + d->pos;
			size_t want = d->len - d->pos;
			n = io->is_socket ? send(io->fd, p, want, MSG_NOSIGNAL)
			    : io->is_fifo ? write_nosig(io->fd, p, want)
					  : write(io->fd, p, want);
		} else if (d->eof) {
			if (pass_eof && d->dst->is_socket && shutdown(d->dst->fd, SHUT_WR) < 0 &&
			    errno != ENOTCONN)
				return -errno;
			d->done = true;
			break;
		} else {
			n = read(io->fd, d->buf, COPY_BUF);
		}
		if (n < 0) {
			e = errno;
			if (e == EINTR)
				continue;
			if (e != EAGAIN && e != EWOULDBLOCK)
				return -e;
			if (cx)
				weft_budget_refund(cx);
			unsigned dir = writing ? WEFT_IO_WRITABLE : WEFT_IO_READABLE;
			weft_io_clear_ready(io, (struct weft_io_ready){ dir | WEFT_IO_ERROR, r >> 8 });
			d->need = dir;
			return 0;
		}
		turn++;
		d->calls++;
		if (!cx)
			weft__coop_spend();
		if (writing) {
			d->pos += (size_t)n;
			d->total += (uint64_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else {
			d->pos = 0;
			d->len = (size_t)n;
		}
	}
	return 0;
}

/* A direction that must wait: the end it waits on (*io, for d->need)
 * and the end at its other side (*other), whose close no readiness of
 * *io reports. 0, or -EBADF (-ESHUTDOWN) when *other is closed already:
 * nothing would ever move again (found by a review). */
static int copy_wait_ends(const struct copy_dir *d, struct weft_io **io, struct weft_io **other)
{
	bool w = d->need == WEFT_IO_WRITABLE;
	*io = w ? d->dst : d->src;
	*other = w ? d->src : d->dst;
	return copy_usable(*other, atomic_load_explicit(&(*other)->readiness, memory_order_acquire));
}

/*
 * What a copy waits for when every direction left has to: each
 * direction's readiness (`io`, `need`), and the close of the registration
 * at the direction's other end (`other`), which no readiness of `io`
 * reports. A copy waiting for src to turn readable went on waiting after
 * dst was closed - for good on an idle src, and the bytes it read next
 * were lost to the write's -EBADF (found by a review). The close is
 * watched through the poll-form waker of the direction the copy itself
 * owns on `other` (src's READABLE, dst's WRITABLE: io.h, nobody else
 * waits there meanwhile), so it costs no wait entry; an event of that
 * direction only wakes the copy to look again.
 */
struct copy_wait {
	unsigned n;
	struct { struct weft_io *io, *other; unsigned need; } w[2];
};

/* `io` closed (or the runtime shut down): READY; else cx's waker goes to
 * the `dir` waker of io, and the state is read again after the store (a
 * close sets CLOSED, then takes io->lock to wake that waker). */
static enum weft_poll close_watch_poll(struct weft_io *io, unsigned dir, struct weft_cx *cx)
{
	const uint64_t ended = WEFT_IO_CLOSED | RD_SHUTDOWN;
	if (atomic_load_explicit(&io->readiness, memory_order_acquire) & ended)
		return WEFT_READY;
	pthread_mutex_lock(&io->lock);
	weft_waker *slot = dir == WEFT_IO_READABLE ? &io->rwaker : &io->wwaker;
	if (!weft_waker_will_wake(slot, &cx->waker)) {
		weft_waker_drop(slot);
		*slot = weft_waker_clone(&cx->waker);
	}
	pthread_mutex_unlock(&io->lock);
	return atomic_load_explicit(&io->readiness, memory_order_acquire) & ended ? WEFT_READY
										 : WEFT_PENDING;
}

static enum weft_poll copy_wait_poll(void *arg, struct weft_cx *cx)
{
	struct copy_wait *cw = arg;
	for (unsigned i = 0; i < cw->n; i++) {
		if (weft_io_poll_ready(cw->w[i].io, cx, cw->w[i].need, NULL) == WEFT_READY)
			return WEFT_READY;
		/* the copy owns the other end's other direction */
		unsigned own = cw->w[i].need == WEFT_IO_READABLE ? WEFT_IO_WRITABLE
								 : WEFT_IO_READABLE;
		if (close_watch_poll(cw->w[i].other, own, cx) == WEFT_READY)
			return WEFT_READY;
	}
	return WEFT_PENDING;
}

/*
 * Run the directions in turns until each is done or one fails. When every
 * direction left has to wait, wait (copy_wait_poll) on what each
 * needs, bounded by the earliest deadline (weft_io_set_deadline) among
 * those waits: a copy that would wait past it returns -ETIMEDOUT, after
 * one more turn that made no progress (the fds themselves are asked, not
 * only the readiness the driver reported). Once shutdown has begun, a copy
 * gets one more round (bytes already there move), then returns -ESHUTDOWN
 * (-ECANCELED in a cancelled fiber), done or not: one in a
 * weft_block_in_place fn with a source that never ran dry held its worker
 * and so shutdown (found by a review).
 */
static int copy_run(struct copy_dir *dirs, unsigned ndirs, bool pass_eof)
{
	struct weft_runtime *rt = dirs[0].src->rt;
	for (bool timed_out = false;;) {
		struct copy_wait cw = { .n = 0 };
		unsigned left = 0;
		bool moving = false;
		bool closing = atomic_load_explicit(&rt->closed, memory_order_acquire);
		uint64_t deadline = WEFT_FOREVER, before = 0, after = 0; /* calls */
		for (unsigned i = 0; i < ndirs; i++) {
			struct copy_dir *d = &dirs[i];
			if (d->done)
				continue;
			before += d->calls;
			int rc = copy_dir_run(d, pass_eof, NULL);
			after += d->calls;
			if (rc)
				return rc;
			if (d->done)
				continue;
			left++;
			if (!d->need) {
				moving = true; /* its turn ended: no wait */
				continue;
			}
			struct weft_io *io, *other;
			if ((rc = copy_wait_ends(d, &io, &other)))
				return rc;
			uint64_t dl = io_deadline(io, d->need);
			if (dl < deadline)
				deadline = dl;
			cw.w[cw.n].io = io;
			cw.w[cw.n].other = other;
			cw.w[cw.n++].need = d->need;
		}
		if (!left)
			return 0;
		if (closing)
			return weft__cancelled() ? -ECANCELED : -ESHUTDOWN;
		if (moving)
			continue;
		if (timed_out && after == before)
			return -ETIMEDOUT;
		if (atomic_load_explicit(&rt->closed, memory_order_acquire))
			return weft__cancelled() ? -ECANCELED : -ESHUTDOWN;
		int rc = weft__io_wait_deadline(copy_wait_poll, &cw, NULL, deadline);
		timed_out = rc == -ETIMEDOUT;
		if (rc < 0 && !timed_out)
			return rc;
	}
}

/* a and b as the copy's two ends; b is read from only when b_read. A
 * datagram or seqpacket source is refused: each read takes one message,
 * cut to the 32 KiB buffer with the rest dropped, and an empty datagram
 * reads as 0, which ended the copy as if the source had ended (its later
 * datagrams never moved, and a bidirectional copy shut the other side's
 * write half) - found by a review. */
static int copy_start(struct weft_io *a, struct weft_io *b, bool b_read)
{
	if (!a || !b)
		return -EINVAL;
	/* weft.h: registrations made before a fork say -ECHILD in the
	 * child; weft_io_copier_create made a copier there, which failed
	 * only at its first poll (found by a review) */
	if (WEFT__FORKED(a->rt) || WEFT__FORKED(b->rt))
		return -ECHILD;
	/* _open: under io_uring a closed registration keeps the poll's
	 * reference until a driver pass, and io_tryref alone let
	 * weft_io_copier_create take it (0 where io.h says -EBADF) */
	if (!io_tryref_open(a))
		return -EBADF;
	if (!io_tryref_open(b)) {
		io_unref(a);
		return -EBADF;
	}
	if (a->is_msg || (b_read && b->is_msg)) {
		io_unref(b);
		io_unref(a);
		return -EPROTOTYPE;
	}
	return 0;
}

int weft_io_copy(struct weft_io *dst, struct weft_io *src, uint64_t *copied)
{
	if (copied)
		*copied = 0;
	int rc = copy_start(src, dst, false);
	if (rc)
		return rc;
	struct copy_dir d = { .src = src, .dst = dst, .buf = weft__malloc(COPY_BUF) };
	rc = d.buf ? copy_run(&d, 1, false) : -ENOMEM;
	weft__free(d.buf);
	io_unref(dst);
	io_unref(src);
	if (copied)
		*copied = d.total;
	return rc;
}

int weft_io_copy_bidirectional(struct weft_io *a, struct weft_io *b, uint64_t *a_to_b,
			       uint64_t *b_to_a)
{
	if (a_to_b)
		*a_to_b = 0;
	if (b_to_a)
		*b_to_a = 0;
	if (a && a == b)
		return -EINVAL;
	int rc = copy_start(a, b, true);
	if (rc)
		return rc;
	char *buf = weft__malloc(2 * COPY_BUF);
	struct copy_dir d[2] = {
		{ .src = a, .dst = b, .buf = buf },
		{ .src = b, .dst = a, .buf = buf ? buf + COPY_BUF : NULL },
	};
	rc = buf ? copy_run(d, 2, true) : -ENOMEM;
	weft__free(buf);
	io_unref(b);
	io_unref(a);
	if (a_to_b)
		*a_to_b = d[0].total;
	if (b_to_a)
		*b_to_a = d[1].total;
	return rc;
}

struct weft_io_copier {
	struct copy_dir d[2];
	unsigned ndirs;
	unsigned first; /* the direction that goes first, alternating by poll */
	int err; /* the first error, returned again by later polls */
};

int weft_io_copier_create(struct weft_io *dst, struct weft_io *src, unsigned flags,
			  struct weft_io_copier **out)
{
	if (!out || !dst || !src || (flags & ~WEFT_COPY_BOTH) ||
	    ((flags & WEFT_COPY_BOTH) && dst == src))
		return -EINVAL;
	if (atomic_load_explicit(&src->rt->closed, memory_order_acquire) ||
	    atomic_load_explicit(&dst->rt->closed, memory_order_acquire))
		return -ESHUTDOWN; /* as a registration would be refused */
	int rc = copy_start(src, dst, flags & WEFT_COPY_BOTH);
	if (rc)
		return rc;
	unsigned ndirs = flags & WEFT_COPY_BOTH ? 2 : 1;
	struct weft_io_copier *c = weft__calloc(1, sizeof(*c));
	char *buf = c ? weft__malloc(ndirs * COPY_BUF) : NULL;
	if (!buf) {
		weft__free(c);
		io_unref(dst);
		io_unref(src);
		return -ENOMEM;
	}
	c->ndirs = ndirs;
	c->d[0] = (struct copy_dir){ .src = src, .dst = dst, .buf = buf };
	if (ndirs == 2)
		c->d[1] = (struct copy_dir){ .src = dst, .dst = src, .buf = buf + COPY_BUF };
	*out = c;
	return 0;
}

int weft_io_copier_poll(struct weft_io_copier *c, struct weft_cx *cx)
{
	if (!c || !cx)
		return -EINVAL;
	if (c->err)
		return c->err;
	bool both = c->ndirs == 2;
	/* each poll starts with the other direction: a poll that starts with
	 * little budget left (a task from the LIFO slot) runs one only */
	c->first ^= both;
	for (;;) {
		bool again = false, left = false;
		for (unsigned k = 0; k < c->ndirs; k++) {
			struct copy_dir *d = &c->d[(k + c->first) % c->ndirs];
			if (d->done)
				continue;
			d->spent = false;
			int rc = copy_dir_run(d, both, cx);
			if (rc)
				return c->err = rc;
			if (d->spent)
				return WEFT_PENDING; /* woken to run again */
			if (d->done)
				continue;
			left = true;
			if (!d->need) {
				again = true;
				continue;
			}
			/* the other end's close is watched as copy_run's wait
			 * does (a close wakes only its own registration's
			 * wakers: the task slept for good on an idle src after
			 * dst was closed - found by a review) */
			struct weft_io *io, *other;
			if ((rc = copy_wait_ends(d, &io, &other)))
				return c->err = rc;
			unsigned own = d->need == WEFT_IO_WRITABLE ? WEFT_IO_READABLE
								   : WEFT_IO_WRITABLE;
			if (weft_io_poll_ready(io, cx, d->need, NULL) == WEFT_READY ||
			    close_watch_poll(other, own, cx) == WEFT_READY)
				again = true;
		}
		if (!left)
			return 0;
		if (!again)
			return WEFT_PENDING;
	}
}

void weft_io_copier_counts(const struct weft_io_copier *c, uint64_t *to_dst, uint64_t *to_src)
{
	if (to_dst)
		*to_dst = c ? c->d[0].total : 0;
	if (to_src)
		*to_src = c && c->ndirs == 2 ? c->d[1].total : 0;
}

void weft_io_copier_destroy(struct weft_io_copier *c)
{
	if (!c)
		return;
	weft__free(c->d[0].buf);
	io_unref(c->d[0].dst);
	io_unref(c->d[0].src);
	weft__free(c);
}

static int accept_once(struct weft_io *l, struct sockaddr *addr, socklen_t *len)
{
	IO_RETRY(l, WEFT_IO_READABLE, 0, 0, accept4(l->fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

/*
 * An address the kernel gave (ss, got bytes) into the caller's buffer of
 * cap bytes, cut to it as the kernel cuts; returns the address's whole
 * length, as the kernel sets *addrlen. An IPv4 peer of a dual-stack socket
 * (a NULL-host listener binds "::" with IPV6_V6ONLY off) comes from the
 * kernel as ::ffff:a.b.c.d; it goes out as the sockaddr_in it is, as Go
 * reports it: a caller's struct sockaddr_in (which the IPv4-only NULL
 * host used to fill) would otherwise get a cut AF_INET6 address without
 * its IPv4 part (found by this session's review of the dual-stack change).
 */
static socklen_t addr_out(const struct sockaddr_storage *ss, socklen_t got,
			  struct sockaddr *addr, socklen_t cap)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in v4;
	const void *src = ss;
	if (got > sizeof(*ss))
		got = sizeof(*ss);
	if (got >= sizeof(*s6) && ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		v4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = s6->sin6_port };
		memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], sizeof(v4.sin_addr));
		src = &v4;
		got = sizeof(v4);
	}
	memcpy(addr, src, got < cap ? got : cap);
	return got;
}

int weft_accept(struct weft_io *listener, struct weft_io **out, struct sockaddr *addr,
		socklen_t *addrlen)
{
	/* addr without addrlen: the kernel would accept, fail to store the
	 * address (EFAULT) and close the connection - lost to the client */
	if (!listener || !out || (addr && !addrlen))
		return -EINVAL;
	struct weft_runtime *rt = listener->rt; /* not after the unref: a close may free it */
	if (!io_tryref(listener))
		return -EBADF;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	/* Once shutdown has begun the registration would be refused (io.h),
	 * so refuse before a connection leaves the queue, as a connect is
	 * refused before its socket is made: the accept took a queued
	 * client, the registration said -ESHUTDOWN and the close ended the
	 * client's connection - lost to whoever takes the listener next (a
	 * review). Closed and cancelled say so first, as they did. */
	int fd;
	if (atomic_load_explicit(&listener->readiness, memory_order_acquire) & WEFT_IO_CLOSED)
		fd = -EBADF;
	else if (weft__cancelled())
		fd = -ECANCELED;
	else if (!(fd = refuse_new_socket(rt)))
		fd = accept_once(listener, addr ? (struct sockaddr *)&ss : NULL, addr ? &sl : NULL);
	io_unref(listener);
	if (fd < 0)
		return fd;
	if (addr)
		*addrlen = addr_out(&ss, sl, addr, *addrlen);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = weft_io_register(rt, fd, out);
	if (rc)
		close(fd);
	return rc;
}

/* Connect one address; the caller checked rt. */
static int connect_until(struct weft_runtime *rt, const struct sockaddr *addr, socklen_t len,
			 int type, uint64_t deadline, struct weft_io **out)
{
	/* the cancellation point (weft.h), before the connection is made:
	 * the wait below checks too late (the peer has it by then), and a
	 * time limit already past does not check at all */
	if (weft__cancelled())
		return -ECANCELED;
	int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* connect first, register after: an unconnected TCP socket polls as
	 * EPOLLHUP, which is not news the caller wants. */
	if (connect(fd, addr, len) && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct weft_io *io;
	int rc = weft_io_register(rt, fd, &io);
	if (rc) {
		close(fd);
		return rc;
	}
	io_ref(io);
	rc = io_wait_until(io, WEFT_IO_WRITABLE, deadline, NULL); /* io is ours alone here */
	io_unref(io);
	if (rc >= 0) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		rc = -err;
	}
	if (rc) {
		weft_io_close(io);
		return rc;
	}
	if (type == SOCK_STREAM && addr->sa_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	*out = io;
	return 0;
}

int weft_connect_timeout(struct weft_runtime *rt, const struct sockaddr *addr, socklen_t len,
			 struct weft_io **out, uint64_t timeout_ns)
{
	if (!rt || !addr || !out)
		return -EINVAL;
	int rc = refuse_new_socket(rt);
	if (rc)
		return rc;
	return connect_until(rt, addr, len, SOCK_STREAM, deadline_after(timeout_ns), out);
}

int weft_connect(struct weft_runtime *rt, const struct sockaddr *addr, socklen_t len,
		 struct weft_io **out)
{
	return weft_connect_timeout(rt, addr, len, out, WEFT_FOREVER);
}

/* ------------------------------------------------------- name resolution */

/*
 * getaddrinfo may block for seconds (DNS), so it never runs on a thread
 * that holds a core: from a fiber it runs as a job on the blocking pool
 * while the fiber waits on a oneshot; from a plain thread (outside the
 * runtime, or inside block_in_place) it runs there. A numeric host (or
 * NULL) is tried first with AI_NUMERICHOST, which does no I/O, so listening
 * on an address works from anywhere, poll tasks included; a poll task that
 * would need the resolver gets -EDEADLK. The job owns a heap copy of its
 * inputs and sends the result through the oneshot; a result nobody
 * receives (the receiver dropped) is freed by the oneshot's value_drop.
 */
struct resolve_job {
	char *host;
	char port[8];
	struct addrinfo hints;
	struct weft_oneshot *done;
	int rc;
	struct addrinfo *res;
};

static int map_eai(int rc, int saved_errno)
{
	switch (rc) {
	case 0: return 0;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return saved_errno ? -saved_errno : -EIO;
	case EAI_NONAME: return WEFT_EAI_NONAME;
#ifdef EAI_NODATA
	case EAI_NODATA: return WEFT_EAI_NODATA;
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY: return WEFT_EAI_NODATA;
#endif
	case EAI_AGAIN: return WEFT_EAI_AGAIN;
	case EAI_FAIL: return WEFT_EAI_FAIL;
	case EAI_SERVICE:
	case EAI_SOCKTYPE:
	case EAI_FAMILY:
	case EAI_BADFLAGS: return -EINVAL;
	}
	return WEFT_EAI_OTHER;
}

static void job_free(void *p)
{
	struct resolve_job *j = p;
	if (j->res)
		freeaddrinfo(j->res);
	weft__free(j->host);
	weft__free(j);
}

/* The job was cancelled before it ran (shutdown): nobody will send, so let
 * go of the sender (the waiting fiber, if any, gets -EPIPE) and free it. */
static void resolve_job_unrun(void *arg)
{
	struct resolve_job *j = arg;
	struct weft_oneshot *done = j->done;
	job_free(j);
	weft_oneshot_sender_drop(done);
}

static void *resolve_job_run(void *arg)
{
	struct resolve_job *j = arg;
	errno = 0;
	int rc = getaddrinfo(j->host, j->port, &j->hints, &j->res);
	j->rc = map_eai(rc, errno);
	if (weft_oneshot_send(j->done, j))
		job_free(j); /* the receiver is gone */
	return NULL;
}

/* `deadline` (CLOCK_MONOTONIC ns, WEFT_FOREVER for none) bounds a lookup
 * that is not numeric: it runs on the blocking pool, and the caller (a
 * fiber, or with a deadline any thread) waits for it until then, leaving
 * it to finish on its own (-ETIMEDOUT). Without a deadline a thread makes
 * the lookup itself. */
static int resolve(struct weft_runtime *rt, const char *host, uint16_t port, bool passive,
		   int type, struct addrinfo **res, uint64_t deadline)
{
	char p[8];
	snprintf(p, sizeof(p), "%u", port);
	/* "[::1]" as Go's and URLs' host part: the address inside (getaddrinfo
	 * said EAI_NONAME to the brackets) */
	char unbracketed[256];
	size_t hn = host ? strlen(host) : 0;
	if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']' && hn - 2 < sizeof(unbracketed)) {
		memcpy(unbracketed, host + 1, hn - 2);
		unbracketed[hn - 2] = '\0';
		host = unbracketed;
	}
	bool bracketed = host == unbracketed;
	if (host && !*host)
		return -EINVAL; /* "": no host named (a lookup of "" asks the resolver) */
	struct addrinfo hints = { .ai_socktype = type,
				  .ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICHOST |
					      AI_NUMERICSERV };
	/* A numeric host (or NULL) resolves without any lookup. */
	struct addrinfo *num;
	int rc = getaddrinfo(host, p, &hints, &num);
	if (rc == 0 && bracketed && num->ai_family != AF_INET6) {
		/* brackets hold an IPv6 address (RFC 3986's IP-literal):
		 * "[127.0.0.1]" or "[1]" is no host, though what is inside
		 * parses as IPv4 (a review found them resolved and connected) */
		freeaddrinfo(num);
		return -EINVAL;
	}
	if (rc == 0)
		*res = num;
	if (rc != EAI_NONAME)
		return map_eai(rc, errno);
	/* Not numeric, and no name either: brackets hold an IPv6 address, and
	 * no host name has a ':' ("host:80", "[::1]:80": the port belongs in
	 * port). Before 2026-12-06 these went to the resolver (a DNS query,
	 * seconds with a slow server) and came back WEFT_EAI_NONAME. A name
	 * longer than DNS allows (253 bytes, one more with the final dot)
	 * is not known, as Go says, without asking. */
	if (bracketed || strpbrk(host, ":[]"))
		return -EINVAL;
	if (strlen(host) > 254)
		return WEFT_EAI_NONAME;
	hints.ai_flags &= ~AI_NUMERICHOST;
	struct weft__ctx *ctx = weft__ctx();
	if (!(ctx && ctx->fiber)) {
		if (ctx && ctx->core)
			return -EDEADLK; /* a poll task: the lookup would stall the core */
		if (deadline == WEFT_FOREVER) {
			errno = 0;
			rc = getaddrinfo(host, p, &hints, res);
			return map_eai(rc, errno);
		}
	}
	/* The cancellation point (io.h) before the lookup starts: a
	 * cancelled fiber set a lookup going on the blocking pool (a thread
	 * started for it, a DNS query sent) only to say -ECANCELED at its
	 * wait (found by a review). */
	if (weft__cancelled())
		return -ECANCELED;
	if (deadline != WEFT_FOREVER && deadline <= weft__now_ns())
		return -ETIMEDOUT;
	/* A fiber, or a time limit: run the lookup on the blocking pool. */
	struct resolve_job *j = weft__calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	size_t hl = strlen(host) + 1;
	j->host = weft__malloc(hl);
	if (!j->host || weft_oneshot_create(job_free, &j->done)) {
		weft__free(j->host);
		weft__free(j);
		return -ENOMEM;
	}
	memcpy(j->host, host, hl);
	memcpy(j->port, p, sizeof(p));
	j->hints = hints;
	struct weft_oneshot *done = j->done;
	rc = weft__spawn_blocking_drop(rt, resolve_job_run, j, resolve_job_unrun, NULL);
	if (rc) {
		weft_oneshot_sender_drop(done);
		weft_oneshot_receiver_drop(done);
		job_free(j);
		return rc;
	}
	void *v;
	if (deadline == WEFT_FOREVER) {
		rc = weft_oneshot_recv(done, &v);
	} else {
		uint64_t now = weft__now_ns();
		rc = weft_oneshot_recv_timeout(done, &v, deadline > now ? deadline - now : 0);
	}
	if (rc) {
		/* -ECANCELED (the fiber was cancelled), -ETIMEDOUT (out of
		 * time, the lookup still running): let go of the receiver;
		 * the job's result, sent or not yet, is freed by value_drop or
		 * by the job itself (its send fails). -EPIPE: the job was
		 * cancelled unrun (the runtime is shutting down); that receive
		 * consumed the receiver already. */
		if (rc == -EPIPE)
			return -ESHUTDOWN;
		weft_oneshot_receiver_drop(done);
		return rc;
	}
	j = v;
	rc = j->rc;
	*res = j->res;
	j->res = NULL;
	job_free(j);
	return rc;
}

/* ---------------------------------------------------------------- TCP/UDP */

/* A socket of sa's family bound to sa (and listening, for a stream):
 * its fd in *out, or -errno with nothing left open. dual: an IPv6
 * socket that takes IPv4 too (IPV6_V6ONLY off, whatever the system's
 * bindv6only says). */
static int open_bound(const struct sockaddr *sa, socklen_t len, int type, int backlog, bool dual,
		      int *out)
{
	int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* TCP: past TIME_WAIT. Not UDP: there it lets a second socket
	 * bind the port and take its datagrams */
	int one = 1, zero = 0;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* checked: left on, the listener would be IPv6 only, silently */
	if ((dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, sa, len) || (type == SOCK_STREAM && listen(fd, backlog ? backlog : SOMAXCONN))) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/*
 * host NULL: every address of both families, as Go's net.Listen("tcp",
 * ":port") and a Tokio listener on "[::]" - one IPv6 socket on "::" that
 * takes IPv4 too (its clients show as IPv4-mapped addresses). Until
 * 2026-12-06 it bound the first of getaddrinfo's AI_PASSIVE list, which is
 * 0.0.0.0: IPv6 clients were refused. Only a host without IPv6 falls back
 * to 0.0.0.0: socket(AF_INET6) refused (EAFNOSUPPORT: ipv6.disable=1), or
 * "::" not bindable (EADDRNOTAVAIL). Any other error is the caller's: a
 * port an IPv4 socket holds is -EADDRINUSE, not an IPv4 listener beside it
 * that IPv6 clients cannot reach.
 */
static int bind_wildcard(uint16_t port, int type, int backlog, int *fd)
{
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int rc = open_bound((struct sockaddr *)&any6, sizeof(any6), type, backlog, true, fd);
	if (rc != -EAFNOSUPPORT && rc != -EADDRNOTAVAIL)
		return rc;
	struct sockaddr_in any4 = { .sin_family = AF_INET, .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_ANY) };
	return open_bound((struct sockaddr *)&any4, sizeof(any4), type, backlog, false, fd);
}

static int bind_socket(struct weft_runtime *rt, const char *host, uint16_t port, int type,
		       int backlog, struct weft_io **out)
{
	int rc, fd = -1;
	if (!host) {
		if (shut_down(rt))
			return -ESHUTDOWN; /* before binding the port */
		rc = bind_wildcard(port, type, backlog, &fd);
		if (rc)
			return rc;
	} else {
		struct addrinfo *ai;
		rc = resolve(rt, host, port, true, type, &ai, WEFT_FOREVER);
		if (rc)
			return rc;
		if (shut_down(rt)) {
			freeaddrinfo(ai);
			return -ESHUTDOWN; /* before binding the port */
		}
		/* Every address in order; the first that binds (and listens) wins. */
		rc = -EADDRNOTAVAIL;
		for (struct addrinfo *a = ai; a; a = a->ai_next)
			if (!(rc = open_bound(a->ai_addr, a->ai_addrlen, type, backlog, false, &fd)))
				break;
		freeaddrinfo(ai);
		if (rc)
			return rc;
	}
	rc = weft_io_register(rt, fd, out);
	if (rc)
		close(fd);
	return rc;
}

int weft_tcp_listen(struct weft_runtime *rt, const char *host, uint16_t port, int backlog,
		    struct weft_io **out)
{
	if (!rt || !out || backlog < 0)
		return -EINVAL;
	int rc = refuse_new_socket(rt); /* before resolving */
	if (rc)
		return rc;
	return bind_socket(rt, host, port, SOCK_STREAM, backlog, out);
}

int weft_udp_bind(struct weft_runtime *rt, const char *host, uint16_t port, struct weft_io **out)
{
	if (!rt || !out)
		return -EINVAL;
	int rc = refuse_new_socket(rt);
	if (rc)
		return rc;
	return bind_socket(rt, host, port, SOCK_DGRAM, 0, out);
}

/* The least time one of several addresses gets before the next is tried:
 * less than a round trip to a far host would give up on a slow but live
 * address. Go's dialer takes 2 s; weft's limits are often shorter. */
#define CONNECT_SHARE_MIN_NS (500 * 1000000ull)

/* The deadline of one attempt with `left` addresses (this one included)
 * still to try before the caller's deadline. */
static uint64_t address_deadline(uint64_t deadline, size_t left)
{
	if (deadline == WEFT_FOREVER || left <= 1)
		return deadline;
	uint64_t now = weft__now_ns();
	if (deadline <= now)
		return deadline;
	uint64_t rem = deadline - now, share = rem / left;
	if (share < CONNECT_SHARE_MIN_NS)
		share = rem < CONNECT_SHARE_MIN_NS ? rem : CONNECT_SHARE_MIN_NS;
	return now + share;
}

static int connect_host(struct weft_runtime *rt, const char *host, uint16_t port, int type,
			struct weft_io **out, uint64_t timeout_ns)
{
	if (!rt || !host || !out)
		return -EINVAL;
	int rc = refuse_new_socket(rt); /* before resolving */
	if (rc)
		return rc;
	uint64_t deadline = deadline_after(timeout_ns);
	struct addrinfo *ai;
	/* the time limit covers the lookup too (io.h) */
	rc = resolve(rt, host, port, false, type, &ai, deadline);
	if (rc)
		return rc;
	/* Every address in order until one connects (Happy Eyeballs is not
	 * attempted); the last address's error if none does. Under a time
	 * limit each address gets an equal share of the time left (at least
	 * CONNECT_SHARE_MIN_NS, when that much is left), as Go's dialer
	 * does: until 2026-12-06 an address that never answered (a SYN
	 * dropped) took the whole limit and the next was never tried. An
	 * -ETIMEDOUT ends the attempts only once the caller's limit is
	 * spent: the kernel's own (no answer after its SYN retries) also
	 * ended them, with the other addresses untried. */
	size_t left = 0;
	for (struct addrinfo *a = ai; a; a = a->ai_next)
		left++;
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next, left--) {
		if (shut_down(rt)) {
			rc = -ESHUTDOWN;
			break;
		}
		rc = connect_until(rt, a->ai_addr, a->ai_addrlen, type,
				   address_deadline(deadline, left), out);
		if (!rc || rc == -ESHUTDOWN || rc == -EDEADLK || rc == -ECANCELED ||
		    (rc == -ETIMEDOUT && deadline != WEFT_FOREVER && deadline <= weft__now_ns()))
			break;
	}
	freeaddrinfo(ai);
	return rc;
}

int weft_tcp_connect(struct weft_runtime *rt, const char *host, uint16_t port, struct weft_io **out)
{
	return connect_host(rt, host, port, SOCK_STREAM, out, WEFT_FOREVER);
}

int weft_tcp_connect_timeout(struct weft_runtime *rt, const char *host, uint16_t port,
			     struct weft_io **out, uint64_t timeout_ns)
{
	return connect_host(rt, host, port, SOCK_STREAM, out, timeout_ns);
}

int weft_resolve(struct weft_runtime *rt, const char *host, uint16_t port,
		 struct addrinfo **res)
{
	if (!rt || !host || !res)
		return -EINVAL;
	/* weft.h: every call taking a pre-fork runtime says -ECHILD in the
	 * child - this one answered a numeric host, or any host from a plain
	 * thread, without looking at rt (found by a review) */
	if (WEFT__FORKED(rt))
		return -ECHILD;
	return resolve(rt, host, port, false, SOCK_STREAM, res, WEFT_FOREVER);
}

/* Datagrams: one call, one datagram (no "send all" loop). */
static ssize_t recvfrom_ref(struct weft_io *io, void *buf, size_t n, int flags,
			    struct sockaddr *addr, socklen_t *len)
{
	IO_RETRY(io, WEFT_IO_READABLE, 0, flags, recvfrom(io->fd, buf, n, flags, addr, len));
}

ssize_t weft_recvfrom(struct weft_io *io, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *addrlen)
{
	if (!io || (!buf && n) || (addr && !addrlen))
		return -EINVAL;
	/* Nothing to read on a stream socket: 0 at once, as weft_recv (and
	 * no sender, as recvfrom(2) on TCP says). recvfrom(2) of 0 bytes
	 * says EAGAIN there until a byte is queued, so it waited for one -
	 * until the deadline on a quiet connection (found by a review). */
	if (!n && io->is_socket && !io->is_msg) {
		ssize_t r = read_nothing(io);
		if (!r && addr)
			*addrlen = 0;
		return r;
	}
	if (!io_tryref(io))
		return -EBADF;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t r = recvfrom_ref(io, buf, n, flags, addr ? (struct sockaddr *)&ss : NULL,
				 addr ? &sl : NULL);
	if (recv_all(io, flags)) {
		/* MSG_WAITALL: the rest, as weft_recv (the sender is the
		 * stream's peer, said by the first call) */
		size_t done = r > 0 ? (size_t)r : 0;
		while (r > 0 && done < n) {
			r = recvfrom_ref(io, (char *)buf + done, n - done, flags, NULL, NULL);
			if (r > 0)
				done += (size_t)r;
		}
		if (done)
			r = (ssize_t)done;
	}
	io_unref(io);
	if (r >= 0 && addr)
		*addrlen = addr_out(&ss, sl, addr, *addrlen);
	return r;
}

static ssize_t sendto_ref(struct weft_io *io, const void *buf, size_t n, int flags,
			  const struct sockaddr *addr, socklen_t len)
{
	IO_RETRY(io, WEFT_IO_WRITABLE, 0, flags,
		 sendto(io->fd, buf, n, flags | MSG_NOSIGNAL, addr, len));
}

ssize_t weft_sendto(struct weft_io *io, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t addrlen)
{
	if (!io || (!buf && n))
		return -EINVAL;
	/* Nothing to send on a stream socket, to no address: 0 at once, as
	 * weft_send (no system call). It called sendto(2), which waited for
	 * room behind a full send buffer (the "cleared, so wait first" of
	 * IO_RETRY) and said -EPIPE where weft_send says 0 (found by a
	 * review). With an address the kernel has its say (a Unix stream's
	 * -EISCONN, TCP Fast Open's connect). */
	if (!n && !addr && io->is_socket && !io->is_msg)
		return write_all(io, buf, 0, flags, true);
	if (!io_tryref(io))
		return -EBADF;
	ssize_t r = sendto_ref(io, buf, n, flags, addr, addrlen);
	io_unref(io);
	return r;
}

/* The msghdr's buffers, as the other socket calls check theirs before
 * any wait: a NULL one with a length (msg_iov with msg_iovlen, an
 * iov_base with iov_len, msg_control with msg_controllen) is -EINVAL. The
 * kernel said -EFAULT only once a message had come, and had taken it: a
 * datagram lost to a caller's mistake (found by a review). */
static bool msg_ok(const struct msghdr *msg)
{
	if (!msg || (msg->msg_iovlen && !msg->msg_iov) ||
	    (msg->msg_controllen && !msg->msg_control))
		return false;
	/* past IOV_MAX the kernel refuses the call (-EMSGSIZE) before
	 * anything is taken: not read here, the array may be shorter */
	for (size_t i = 0; msg->msg_iovlen <= IOV_MAX && i < msg->msg_iovlen; i++)
		if (msg->msg_iov[i].iov_len && !msg->msg_iov[i].iov_base)
			return false;
	return true;
}

static ssize_t recvmsg_ref(struct weft_io *io, struct msghdr *msg, int flags)
{
	IO_RETRY(io, WEFT_IO_READABLE, 0, flags, recvmsg(io->fd, msg, flags | MSG_CMSG_CLOEXEC));
}

ssize_t weft_recvmsg(struct weft_io *io, struct msghdr *msg, int flags)
{
	if (!io || !msg_ok(msg))
		return -EINVAL;
	if (!io_tryref(io))
		return -EBADF;
	/* the sender through a buffer of ours, for addr_out */
	void *name = msg->msg_name;
	socklen_t cap = msg->msg_namelen;
	struct sockaddr_storage ss;
	if (name) {
		msg->msg_name = &ss;
		msg->msg_namelen = sizeof(ss);
	}
	ssize_t r = recvmsg_ref(io, msg, flags);
	io_unref(io);
	if (name) {
		socklen_t got = msg->msg_namelen;
		msg->msg_name = name;
		msg->msg_namelen = r >= 0 ? addr_out(&ss, got, name, cap) : cap;
	}
	/* recvmsg(2) echoes MSG_CMSG_CLOEXEC into msg_flags: the bit weft
	 * added is not the caller's to see (a caller that refused any flag
	 * it did not know took every message as odd - found by a review) */
	if (r >= 0 && !(flags & MSG_CMSG_CLOEXEC))
		msg->msg_flags &= ~MSG_CMSG_CLOEXEC;
	return r;
}

static ssize_t sendmsg_ref(struct weft_io *io, const struct msghdr *msg, int flags)
{
	IO_RETRY(io, WEFT_IO_WRITABLE, 0, flags, sendmsg(io->fd, msg, flags | MSG_NOSIGNAL));
}

/* No data, no ancillary data, no address: nothing for a stream socket's
 * sendmsg(2) to send. */
static bool msg_empty(const struct msghdr *msg)
{
	if (msg->msg_name || msg->msg_controllen || msg->msg_iovlen > IOV_MAX)
		return false;
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		if (msg->msg_iov[i].iov_len)
			return false;
	return true;
}

ssize_t weft_sendmsg(struct weft_io *io, const struct msghdr *msg, int flags)
{
	if (!io || !msg_ok(msg))
		return -EINVAL;
	/* Nothing to send on a stream socket: 0 at once, as weft_send and
	 * weft_sendto of nothing (no system call). It called sendmsg(2),
	 * which behind a full send buffer waited for room to send nothing
	 * (found by a review). Ancillary data (SCM_RIGHTS) or an address
	 * with no bytes still goes to the kernel: it has its say. */
	if (io->is_socket && !io->is_msg && msg_empty(msg))
		return write_all(io, NULL, 0, flags, true);
	if (!io_tryref(io))
		return -EBADF;
	ssize_t r = sendmsg_ref(io, msg, flags);
	io_unref(io);
	return r;
}

static int sock_name(const struct weft_io *cio, struct sockaddr *addr, socklen_t *len, bool peer)
{
	if (!cio || !addr || !len)
		return -EINVAL;
	/* the reference count is the library's to change, const or not */
	struct weft_io *io = (struct weft_io *)(uintptr_t)cio;
	if (WEFT__FORKED(io->rt))
		return -ECHILD; /* weft.h: a registration made before the fork */
	if (!io_tryref_open(io))
		return -EBADF;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc = (peer ? getpeername(io->fd, (struct sockaddr *)&ss, &sl)
		       : getsockname(io->fd, (struct sockaddr *)&ss, &sl)) ? -errno : 0;
	io_unref(io);
	if (!rc)
		*len = addr_out(&ss, sl, addr, *len);
	return rc;
}

int weft_io_local_addr(const struct weft_io *io, struct sockaddr *addr, socklen_t *len)
{
	return sock_name(io, addr, len, false);
}

int weft_io_peer_addr(const struct weft_io *io, struct sockaddr *addr, socklen_t *len)
{
	return sock_name(io, addr, len, true);
}

int weft_io_local_port(const struct weft_io *io)
{
	/* a closed registration is -EBADF as for every other call (this
	 * asked the number, which another socket may have taken since, and
	 * said that socket's port) */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc = sock_name(io, (struct sockaddr *)&ss, &len, false);
	if (rc)
		return rc;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

/* ---------------------------------------------------------- Unix sockets */

/* A path, or "@name" for Linux's abstract namespace (Go's convention),
 * as a sockaddr_un. */
static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	if (!path || !path[0] || (path[0] == '@' && !path[1]))
		return -EINVAL;
	size_t n = strlen(path);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* a path needs its NUL; an abstract name's "@" becomes its leading
	 * NUL and it has no other */
	if (n > sizeof(sa->sun_path) || (path[0] != '@' && n == sizeof(sa->sun_path)))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@') {
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

/* The address, and no shutdown begun (before binding: no file is made). */
static int unix_start(struct weft_runtime *rt, const char *path, struct sockaddr_un *sa,
		      socklen_t *len)
{
	int rc = unix_addr(path, sa, len);
	if (rc)
		return rc;
	return refuse_new_socket(rt);
}

int weft_unix_listen(struct weft_runtime *rt, const char *path, int backlog,
		     struct weft_io **out)
{
	if (!rt || !out || backlog < 0)
		return -EINVAL;
	struct sockaddr_un sa;
	socklen_t len;
	int rc = unix_start(rt, path, &sa, &len);
	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (listen(fd, backlog ? backlog : SOMAXCONN)) {
		rc = -errno;
		goto unbind;
	}
	rc = weft_io_register(rt, fd, out);
	if (!rc)
		return 0;
unbind:
	/* leave no socket file behind for a listener that never was */
	close(fd);
	if (path[0] != '@')
		unlink(path);
	return rc;
}

int weft_unix_connect_timeout(struct weft_runtime *rt, const char *path, struct weft_io **out,
			      uint64_t timeout_ns)
{
	if (!rt || !out)
		return -EINVAL;
	struct sockaddr_un sa;
	socklen_t len;
	int rc = unix_start(rt, path, &sa, &len);
	if (rc)
		return rc;
	return connect_until(rt, (struct sockaddr *)&sa, len, SOCK_STREAM,
			     deadline_after(timeout_ns), out);
}

int weft_unix_connect(struct weft_runtime *rt, const char *path, struct weft_io **out)
{
	return weft_unix_connect_timeout(rt, path, out, WEFT_FOREVER);
}
