/*
 * driver.c - the runtime's driver: the timer wheel and the epoll instance
 * that one parked worker at a time sleeps in.
 *
 * Parking: a worker with nothing to do tries to take `lock`. If it wins it
 * marks its parker PARKED_DRIVER and sleeps in epoll_wait until the next
 * timer deadline; the others sleep on their futex. Unparking a worker in
 * the driver writes the eventfd. When I/O readiness or a due timer wakes
 * the sleeper, it takes itself off the sleepers and keeps its core while
 * it wakes the tasks, so they land in its own queue and it runs them (no
 * inject push, no relay through another worker's futex); the idle
 * protocol's last-searcher rule wakes at most one other worker.
 * Running workers also poll the driver without blocking at maintenance,
 * so a busy runtime still fires timers and sees I/O. While any other
 * worker runs, the driver's sleeper also wakes every WEFT_WATCH_MS to look
 * for a stalled core and a LIFO task stuck behind its poll (worker.c,
 * watch_cores).
 *
 * Timers: one wheel per core (`weft__core.timers`) plus one for threads
 * holding no core (`driver.timers`), each a `weft__tshard`: a wheel, its
 * lock and `next_tick`, the shard's earliest deadline (so a pass can skip a
 * shard without its lock). A timer goes into the shard of the core its
 * poll runs on and remembers it (`t->shard`); re-polls, cancels and the
 * firing take that shard's lock, so the owner's insert and cancel take
 * only its own core's lock, uncontended unless another thread cancels one
 * of its timers or fires them while it is away. Firing: every worker at
 * maintenance passes over every shard, its own first (the tasks it wakes
 * go to its own queue); the driver's sleeper passes over all of them when
 * it wakes and sleeps no longer than the earliest `next_tick` of all
 * shards, so timers fire on time when every worker is parked. Deadlines
 * are rounded up to the next tick (WEFT_TICK_NS, 250 µs) and "now" down, so a timer never
 * fires early; the driver's sleeper sleeps to the due tick's boundary in
 * ns (epoll_pwait2; whole milliseconds rounded up on kernels before 5.11). A timer set earlier than the deadline the driver thread
 * sleeps to wakes it (a seq_cst Dekker pair per shard: the setter stores
 * the shard's next_tick then loads sleep_until_tick; the sleeper stores
 * sleep_until_tick then loads every shard's next_tick). Wakers fire under the
 * shard's lock; they must not touch timers synchronously (task and thread
 * wakers only schedule).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define EVENTS_PER_WAIT 256
#define DRIVER_MAX_SLEEP_NS (60ll * 1000000000ll)

static void shard_init(struct weft__tshard *sh)
{
	weft__slock_init(&sh->lock);
	weft__wheel_init(&sh->wheel);
	atomic_init(&sh->next_tick, UINT64_MAX);
}

void weft__driver_core_init(struct weft__core *c)
{
	shard_init(&c->timers);
}

/*
 * epoll or io_uring (uring.c): the option, else WEFT_IO_DRIVER, else epoll.
 * Asked for by the option, an io_uring the kernel refuses fails the
 * create; asked for by the environment (a test matrix, an operator trying
 * it), it falls back to epoll and says so once on stderr.
 */
static int choose_driver(struct weft_runtime *rt)
{
	int want = rt->opts.io_driver;
	bool strict = want == WEFT_IO_DRIVER_URING;
	if (want == WEFT_IO_DRIVER_DEFAULT) {
		const char *env = getenv("WEFT_IO_DRIVER");
		if (!env || !*env || !strcmp(env, "epoll")) {
			want = WEFT_IO_DRIVER_EPOLL;
		} else if (!strcmp(env, "uring") || !strcmp(env, "io_uring")) {
			want = WEFT_IO_DRIVER_URING;
		} else {
			weft__warn("weft: WEFT_IO_DRIVER=%s: expected \"epoll\" or \"uring\"", env);
			return -EINVAL;
		}
	}
	if (want != WEFT_IO_DRIVER_URING)
		return 0;
	int rc = weft__uring_init(rt);
	if (rc == 0 || strict)
		return rc;
	weft__warn("weft: WEFT_IO_DRIVER=uring: io_uring is not available (%s); using epoll",
		rc == -EOPNOTSUPP ? "the kernel is older than 5.18" : strerror(-rc));
	return 0;
}

enum weft_io_driver weft_runtime_io_driver(const struct weft_runtime *rt)
{
	return rt && rt->driver.uring ? WEFT_IO_DRIVER_URING : WEFT_IO_DRIVER_EPOLL;
}

int weft__driver_init(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	pthread_mutex_init(&d->lock, NULL);
	shard_init(&d->timers);
	for (unsigned i = 0; i < rt->n; i++)
		shard_init(&rt->cores[i].timers);
	pthread_mutex_init(&d->retired_lock, NULL);
	d->retired = NULL;
	d->regs = NULL;
	d->reg_free = d->reg_free_tail = NULL;
	d->reg_chunks = NULL;
	atomic_init(&d->retired_any, false);
	atomic_init(&d->io_registered, false);
	atomic_init(&d->io_registered_count, 0);
	atomic_init(&d->io_deregistered_count, 0);
	atomic_init(&d->io_ready_events, 0);
	atomic_init(&d->io_polls_ended, 0);
	atomic_init(&d->io_polls_rearmed, 0);
	d->arm_pending = NULL;
	atomic_init(&d->arm_pending_any, false);
	atomic_init(&d->no_driver, false);
	d->polled = NULL;
	d->start_ns = weft__now_ns();
	atomic_init(&d->sleep_until_tick, UINT64_MAX);
	atomic_init(&d->unwatched, 0);
	atomic_init(&d->sleeper, false);
	d->uring = NULL;
	d->epfd = d->evfd = -1;
	int rc = choose_driver(rt);
	if (rc)
		return rc;
	/* Under io_uring as well, as a registry that is never waited on:
	 * every registered fd is in it with no events (io.c, driver_add), so
	 * what epoll refuses (a second registration of an fd, a file without
	 * poll) is refused under both drivers with epoll's error. */
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		int e = -errno;
		weft__uring_fini(rt);
		return e;
	}
	if (d->uring)
		return 0;
	d->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->evfd < 0) {
		int e = -errno;
		close(d->epfd);
		return e;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = NULL };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->evfd, &ev)) {
		int e = -errno;
		close(d->evfd);
		close(d->epfd);
		return e;
	}
	return 0;
}

void weft__driver_fini(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	weft__io_fini(rt);
	pthread_mutex_destroy(&d->retired_lock);
	weft__uring_fini(rt);
	if (d->evfd >= 0)
		close(d->evfd);
	if (d->epfd >= 0)
		close(d->epfd);
	pthread_mutex_destroy(&d->lock);
}

void weft__driver_wake(struct weft_runtime *rt)
{
	if (__builtin_expect(rt->driver.uring != NULL, 0)) {
		/* Not from a forked child's copy of the runtime (a task of
		 * the parent's woken there): the ring's memory is shared with
		 * the parent (MAP_SHARED survives fork), and an entry pushed
		 * here is taken by the kernel under the parent's feet - its
		 * next submission then went into a consumed slot, lost (its
		 * wake: wake_pending stayed set, and no wake came again).
		 * The child has no driver to wake. */
		if (WEFT__FORKED(rt))
			return;
		weft__uring_wake(rt);
		return;
	}
	uint64_t one = 1;
	ssize_t n = write(rt->driver.evfd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero, a wake is pending */
}

/*
 * A LIFO push, or a timer set earlier than any the driver knows of, found
 * the LIFO slots unwatched (`unwatched`, set in weft__driver_park): wake
 * the driver's sleeper, or if it left the driver vacant, one parked worker
 * (idle.c's rules), which takes the driver and its watch when it finds
 * nothing else to do. Once per vacancy: the first caller clears it.
 */
void weft__driver_unwatched(struct weft_runtime *rt, uint8_t u)
{
	if (u != WEFT__UNWATCHED_VACANT) {
		weft__driver_wake(rt);
		return;
	}
	if (atomic_compare_exchange_strong_explicit(&rt->driver.unwatched, &u, 0,
						    memory_order_seq_cst, memory_order_relaxed))
		weft__idle_notify(rt);
	else if (u == WEFT__UNWATCHED_SLEEPER)
		weft__driver_wake(rt); /* a sleeper came meanwhile */
}

uint64_t weft__driver_now_tick(struct weft_runtime *rt)
{
	return (weft__now_ns() - rt->driver.start_ns) / WEFT_TICK_NS;
}

static uint64_t deadline_to_tick(struct weft_runtime *rt, uint64_t deadline_ns)
{
	if (deadline_ns <= rt->driver.start_ns)
		return 0;
	uint64_t d = deadline_ns - rt->driver.start_ns;
	return d / WEFT_TICK_NS + (d % WEFT_TICK_NS != 0);
}

static void refresh_next(struct weft__tshard *sh)
{
	atomic_store_explicit(&sh->next_tick, weft__wheel_next(&sh->wheel), memory_order_relaxed);
}

/* The shard a new timer goes to: the caller's core's, if it holds one of
 * this runtime's cores, else the driver's. */
static struct weft__tshard *shard_for(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->core && ctx->rt == rt)
		return &ctx->core->timers;
	return &rt->driver.timers;
}

/* Earliest deadline over every shard. seq_cst loads: see the header. */
static uint64_t next_all(struct weft_runtime *rt)
{
	uint64_t best = atomic_load_explicit(&rt->driver.timers.next_tick, memory_order_seq_cst);
	for (unsigned i = 0; i < rt->n; i++) {
		uint64_t n = atomic_load_explicit(&rt->cores[i].timers.next_tick,
						  memory_order_seq_cst);
		if (n < best)
			best = n;
	}
	return best;
}

/* ----------------------------------------------------------------- timers */

/* When the earliest timer of any shard is due, in CLOCK_MONOTONIC ns (its
 * tick's boundary, as the driver's sleeper sleeps to), or 0: none, or
 * further than the driver sleeps at once. */
uint64_t weft__driver_next_due_ns(struct weft_runtime *rt)
{
	uint64_t next = next_all(rt);
	if (next > (uint64_t)DRIVER_MAX_SLEEP_NS / WEFT_TICK_NS + weft__driver_now_tick(rt))
		return 0;
	return rt->driver.start_ns + next * WEFT_TICK_NS;
}


enum weft_poll weft__timer_poll(struct weft_runtime *rt, struct weft__timer *t,
				uint64_t deadline_ns, struct weft_cx *cx)
{
	struct weft__driver *d = &rt->driver;
	/* acquire: pairs with the release store of FIRED under the lock. */
	uint8_t st = atomic_load_explicit(&t->state, memory_order_acquire);
	if (st == TIMER_FIRED)
		return WEFT_READY;
	if (st == TIMER_PENDING) {
		/* Only the owner inserts, so t->shard is stable while pending. */
		struct weft__tshard *sh = atomic_load_explicit(&t->shard, memory_order_relaxed);
		weft__slock_lock(&sh->lock);
		st = atomic_load_explicit(&t->state, memory_order_relaxed);
		if (st == TIMER_PENDING && !weft_waker_will_wake(&t->waker, &cx->waker)) {
			weft_waker_drop(&t->waker);
			t->waker = weft_waker_clone(&cx->waker);
		}
		weft__slock_unlock(&sh->lock);
		if (st != TIMER_IDLE)
			return st == TIMER_FIRED ? WEFT_READY : WEFT_PENDING;
		/* Cancelled from another thread between the look above and
		 * the lock: a poll after a cancel arms the timer again
		 * (time.h), and this said PENDING with no waker kept - the
		 * task slept for good (found by a review). The cancel's
		 * release pairs with this acquire before the re-arm. */
		atomic_thread_fence(memory_order_acquire);
	}
	/* A deadline already passed is due now, whatever the wheel says: it
	 * rounds up to the next tick, which the driver had not reached, so
	 * weft_sleep_ns(0) in a fiber and a poll-form timer for now waited up
	 * to a 250 us tick for nothing (found by a review). Never early: only
	 * a clock reading says so - this thread's last one, which the caller
	 * has usually just taken to make the deadline (weft_sleep_ns,
	 * weft_now_ns() + d). A fresh clock read here cost the timers bench
	 * ~3% a batch; a deadline passed since that reading waits for the
	 * next tick, as before. t stays IDLE (nothing armed). */
	if (deadline_ns <= weft__clock_seen)
		return WEFT_READY;
	struct weft__tshard *sh = shard_for(rt);
	weft__slock_lock(&sh->lock);
	t->when_tick = deadline_to_tick(rt, deadline_ns);
	atomic_store_explicit(&t->shard, sh, memory_order_relaxed);
	if (!weft__wheel_insert(&sh->wheel, t)) {
		atomic_store_explicit(&t->state, TIMER_FIRED, memory_order_relaxed);
		weft__slock_unlock(&sh->lock);
		return WEFT_READY;
	}
	t->waker = weft_waker_clone(&cx->waker);
	/* release: a cancel on another thread that sees this PENDING sees
	 * the shard it belongs to (weft__timer_cancel) */
	atomic_store_explicit(&t->state, TIMER_PENDING, memory_order_release);
	/* seq_cst store then load, against the driver's seq_cst store of
	 * sleep_until then loads of every next_tick: one of us sees the other. */
	bool wake_driver = false;
	if (t->when_tick < atomic_load_explicit(&sh->next_tick, memory_order_relaxed)) {
		atomic_store_explicit(&sh->next_tick, t->when_tick, memory_order_seq_cst);
		wake_driver = t->when_tick <
			      atomic_load_explicit(&d->sleep_until_tick, memory_order_seq_cst);
	}
	weft__slock_unlock(&sh->lock);
	if (wake_driver) {
		/* nobody in the driver (sleep_until is UINT64_MAX): if its last
		 * sleeper left it vacant, a parked worker takes it over, or a
		 * long poll here would make this timer late. seq_cst: after
		 * our store of next_tick, against maybe_vacate's store of the
		 * flag and its second look at next_tick */
		uint8_t u = atomic_load_explicit(&d->unwatched, memory_order_seq_cst);
		if (u == WEFT__UNWATCHED_VACANT)
			weft__driver_unwatched(rt, u);
		else
			weft__driver_wake(rt);
	}
	return WEFT_PENDING;
}

/*
 * Cancel, from the owner or from any other thread. A cancel from another
 * thread may race the firing, and the owner, woken by it, may poll the
 * timer again at once: a new deadline, in the shard of the core it runs on
 * now. So the shard read before the lock is checked again under it (a
 * timer PENDING under a shard's lock but armed in another is not in this
 * wheel: removing it there cut another wheel's list, and a slot head of
 * NULL crashed), and FIRED becomes IDLE only if it is still FIRED (a plain
 * store hid a new arming: the timer stayed linked, IDLE, and the owner's
 * next poll linked it a second time).
 *
 * A cancel returns only after the wake of a firing it raced has ended
 * (`settle`): FIRED is stored before the wake, both under the shard's
 * lock (fire_timer), so taking that lock once waits it out. A cancel that
 * saw FIRED returned at once while the firer was still inside the wake:
 * the timer "fired" after weft_timer_cancel returned (found by a review;
 * issue 12 asks that a timer cancelled from another core never fires).
 * A fiber's own sleep timer does not wait (weft__timer_cancel_own): its
 * waker is the fiber's task, which a late wake only polls once more, and
 * a fiber woken by a batch would wait for the whole batch's wakes.
 */
static weft_waker cancel_take(struct weft__timer *t, bool settle)
{
	weft_waker none = { NULL, NULL };
	for (;;) {
		/* acquire: pairs with the release store of FIRED (the firer is
		 * done with t, its waker already moved out) and of PENDING */
		uint8_t st = atomic_load_explicit(&t->state, memory_order_acquire);
		if (st == TIMER_IDLE)
			return none;
		if (st == TIMER_FIRED) {
			if (settle) {
				/* the shard it fired in: stored before PENDING
				 * (release), which the firer's lock and its
				 * release of FIRED pass on to our acquire */
				struct weft__tshard *fs =
					atomic_load_explicit(&t->shard, memory_order_relaxed);
				weft__slock_lock(&fs->lock);
				weft__slock_unlock(&fs->lock);
			}
			if (atomic_compare_exchange_strong_explicit(&t->state, &st, TIMER_IDLE,
								    memory_order_relaxed,
								    memory_order_relaxed) ||
			    st == TIMER_IDLE)
				return none; /* the firer took the waker */
			continue; /* armed again by its owner */
		}
		struct weft__tshard *sh = atomic_load_explicit(&t->shard, memory_order_relaxed);
		weft__slock_lock(&sh->lock);
		st = atomic_load_explicit(&t->state, memory_order_acquire);
		if (st == TIMER_PENDING &&
		    atomic_load_explicit(&t->shard, memory_order_relaxed) == sh) {
			weft__wheel_remove(&sh->wheel, t);
			refresh_next(sh);
			weft_waker w = t->waker; /* dropped or woken by the caller */
			t->waker = (weft_waker){ NULL, NULL };
			/* release: the owner's next poll reads IDLE (acquire,
			 * weft__timer_poll) and arms t again, maybe under another
			 * core's shard lock, which orders nothing with ours: it
			 * must see the unlink and the waker written above (a
			 * relaxed store raced them: tsan_api timer_cancel) */
			atomic_store_explicit(&t->state, TIMER_IDLE, memory_order_release);
			weft__slock_unlock(&sh->lock);
			return w;
		}
		/* fired meanwhile (and maybe armed again elsewhere): look again */
		weft__slock_unlock(&sh->lock);
	}
}

weft_waker weft__timer_cancel_take(struct weft_runtime *rt, struct weft__timer *t)
{
	(void)rt;
	return cancel_take(t, true);
}

void weft__timer_cancel(struct weft_runtime *rt, struct weft__timer *t)
{
	weft_waker w = weft__timer_cancel_take(rt, t);
	weft_waker_drop(&w);
}

void weft__timer_cancel_own(struct weft_runtime *rt, struct weft__timer *t)
{
	(void)rt;
	weft_waker w = cancel_take(t, false);
	weft_waker_drop(&w);
}

/* Fire one timer the wheel has just unlinked (under the shard's lock). */
static void fire_timer(struct weft__timer *t, void *arg)
{
	(void)arg;
	weft_waker w = t->waker;
	t->waker = (weft_waker){ NULL, NULL };
	/* release: the owner may reuse t as soon as it sees FIRED. */
	atomic_store_explicit(&t->state, TIMER_FIRED, memory_order_release);
	weft_waker_wake(&w);
}

/* Fire timers of one shard that are due, at most `max`. Cheap when
 * nothing is. Returns how many fired. */
static size_t shard_process(struct weft__tshard *sh, uint64_t now, size_t max)
{
	if (atomic_load_explicit(&sh->next_tick, memory_order_relaxed) > now)
		return 0;
	weft__slock_lock(&sh->lock);
	/* each timer fires as the wheel unlinks it (wheel.c: the next
	 * timer's line comes in meanwhile) */
	size_t n = weft__wheel_fire(&sh->wheel, now, max, fire_timer, NULL);
	refresh_next(sh);
	weft__slock_unlock(&sh->lock);
	return n;
}

/* How many timers a thread fires in one pass. A worker's wakes go to its
 * own queue: past its free room they overflow to the inject queue, where
 * they wait behind the local queue while newer fires run first - 30,000
 * fibers waking together (fiber_exit_storm) came out in a two-speed
 * order, a tenth at once and the rest up to 20 ms late. Fired no faster
 * than the queue takes them, the rest stay due in the wheel, in deadline
 * order, for the next pass (this worker's next maintenance, or another
 * worker's, which takes a share onto its own queue). A thread without a
 * core wakes into the inject queue: no bound.
 *
 * With less room than TIMERS_MIN_PASS, only the room: a pass that fired
 * 16 into a fuller queue overflowed it, and the overflow is half the
 * queue, its oldest - the earliest timers' tasks - sent to the inject
 * queue, which a worker with a full queue takes from a task at a time,
 * while the later deadlines fired at the next passes ran first (a
 * maintenance a few polls after a park had fired a full queue's worth:
 * test_time's burst, group 1 ran until 19,713 and group 3 from 14,046).
 * A queue kept full for good (a storm of local spawns) must not keep the
 * timers waiting for good: a pass after one that stopped short fires
 * TIMERS_MIN_PASS anyway (core->timers_short). */
#define TIMERS_MIN_PASS 16
static size_t fire_budget(struct weft__core *own)
{
	if (!own)
		return SIZE_MAX;
	size_t room = weft__ring_free_owner(&own->ring);
	if (room >= TIMERS_MIN_PASS)
		return room;
	return own->timers_short ? TIMERS_MIN_PASS : room;
}

/*
 * Fire every timer that is due, in deadline order across the shards (to
 * the tick): take the shard with the earliest next_tick and advance it
 * only up to the second earliest shard's, then look again. Each round
 * raises that shard's next_tick past the bound it was advanced to, so this
 * ends once nothing is due. On a tie the caller's own core's shard goes
 * first (what it wakes runs here).
 */
void weft__timers_process(struct weft_runtime *rt)
{
	uint64_t now = weft__driver_now_tick(rt);
	struct weft__ctx *ctx = weft__ctx();
	struct weft__core *own = ctx && ctx->rt == rt ? ctx->core : NULL;
	size_t budget = fire_budget(own), pass = budget;
	for (;;) {
		struct weft__tshard *best = NULL;
		uint64_t b1 = UINT64_MAX, b2 = UINT64_MAX;
		/* own first (wins ties), then the other cores, the driver's last */
		for (unsigned i = 0; i <= rt->n + 1; i++) {
			struct weft__tshard *sh;
			if (i == 0)
				sh = own ? &own->timers : NULL;
			else if (i <= rt->n)
				sh = &rt->cores[i - 1] == own ? NULL : &rt->cores[i - 1].timers;
			else
				sh = &rt->driver.timers;
			if (!sh)
				continue;
			uint64_t n = atomic_load_explicit(&sh->next_tick, memory_order_relaxed);
			if (n < b1) {
				b2 = b1;
				b1 = n;
				best = sh;
			} else if (n < b2) {
				b2 = n;
			}
		}
		if (b1 > now) {
			/* nothing left due: no timer waits for room, so the
			 * next pass is held to the room again */
			if (own && own->timers_short)
				own->timers_short = false;
			return;
		}
		size_t n = budget ? shard_process(best, b2 < now ? b2 : now, budget) : 0;
		if (n >= budget) {
			/* the rest stays due: next pass (the whole one then,
			 * if this one was short) */
			if (own)
				own->timers_short = pass < TIMERS_MIN_PASS;
			return;
		}
		budget -= n;
	}
}

/* ------------------------------------------------------------- epoll side */

static void dispatch(struct weft_runtime *rt, struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		if (!ev[i].data.ptr) { /* an unpark */
			if (rt->driver.uring)
				continue;
			uint64_t v;
			ssize_t r = read(rt->driver.evfd, &v, sizeof(v));
			(void)r;
			continue;
		}
		weft__io_ready(rt, ev[i].data.ptr, ev[i].events);
	}
}

static bool vacate_ok(struct weft_runtime *rt)
{
	return next_all(rt) == UINT64_MAX &&
	       IDLE_UNPARKED(atomic_load_explicit(&rt->idle.state, memory_order_seq_cst)) == 1;
}

/* Leave the driver vacant (see weft__driver_park) if this thread, holding
 * a core and the driver lock, is the only worker running and no timer is
 * set. Looked at again after the flag is up (seq_cst store, then loads):
 * a timer set (its seq_cst store of next_tick, then load of `unwatched`)
 * or a worker unparked to push into its LIFO slot (the notify's RMW on
 * idle.state, then its load of `unwatched`) between the first look and
 * the store either sees the flag and calls a parked worker in itself, or
 * is seen here, and this thread does it. false if the first look said
 * no (the flag stays down; the caller calls nobody in by it). */
static bool maybe_vacate(struct weft_runtime *rt)
{
	if (!vacate_ok(rt))
		return false;
	atomic_store_explicit(&rt->driver.unwatched, WEFT__UNWATCHED_VACANT, memory_order_seq_cst);
	if (vacate_ok(rt))
		return true;
	uint8_t u = WEFT__UNWATCHED_VACANT;
	if (atomic_compare_exchange_strong_explicit(&rt->driver.unwatched, &u, 0,
						    memory_order_seq_cst, memory_order_relaxed))
		weft__idle_notify(rt); /* else whoever took the flag down did */
	return true;
}

/* Poll readiness and timers without blocking; skipped if another thread
 * holds the driver. A vacant driver stays so across it: the tasks it
 * wakes into this worker's LIFO slot run next, no poll in progress. */
void weft__driver_poll_nowait(struct weft_runtime *rt)
{
	weft__timers_process(rt);
	if (!atomic_load_explicit(&rt->driver.io_registered, memory_order_relaxed))
		return;
	if (pthread_mutex_trylock(&rt->driver.lock))
		return;
	weft__io_free_retired(rt);
	struct epoll_event ev[EVENTS_PER_WAIT];
	int n = __builtin_expect(rt->driver.uring != NULL, 0)
			? weft__uring_wait(rt, ev, EVENTS_PER_WAIT, 0)
			: epoll_wait(rt->driver.epfd, ev, EVENTS_PER_WAIT, 0);
	bool lost_vacancy = false;
	if (n > 0) {
		uint8_t u = WEFT__UNWATCHED_VACANT;
		bool was_vacant = atomic_compare_exchange_strong_explicit(
			&rt->driver.unwatched, &u, 0, memory_order_seq_cst, memory_order_relaxed);
		dispatch(rt, ev, n);
		struct weft__ctx *ctx = weft__ctx();
		/* not vacant any more (another worker runs, a timer is set):
		 * nobody sleeps in the driver, and with the flag down no LIFO
		 * push or timer set calls a parked worker in: call one now */
		if (was_vacant)
			lost_vacancy = !(ctx && ctx->rt == rt && ctx->core && maybe_vacate(rt));
	}
	pthread_mutex_unlock(&rt->driver.lock);
	if (lost_vacancy)
		weft__idle_notify(rt);
}

/* Kernels before 5.11 have no epoll_pwait2: set at the first ENOSYS (and
 * by test_time, to run the fallback here). ThreadSanitizer (gcc 12's)
 * intercepts epoll_ctl and epoll_wait, whose pairing tells it that a
 * registration made before epoll_ctl is visible to the thread an event
 * hands it to, but not epoll_pwait2: under it, the fallback. */
#if defined(__SANITIZE_THREAD__)
#define PWAIT2_MISSING_AT_START true
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PWAIT2_MISSING_AT_START true
#endif
#endif
#ifndef PWAIT2_MISSING_AT_START
#define PWAIT2_MISSING_AT_START false
#endif
_Atomic bool weft__driver_no_pwait2 = PWAIT2_MISSING_AT_START;

/* epoll_wait with a timeout in ns (-1: none): epoll_pwait2's, or, without
 * it, epoll_wait's whole milliseconds rounded up (never early). The system
 * call itself, not glibc's wrapper (2.35 and later only): a kernel before
 * 5.11 says ENOSYS, a seccomp filter that does not know the call (systemd's
 * SystemCallFilter, older container profiles) EPERM; either way the
 * fallback from then on. */
static int wait_events(struct weft_runtime *rt, struct epoll_event *ev, int64_t timeout_ns)
{
	if (__builtin_expect(rt->driver.uring != NULL, 0))
		return weft__uring_wait(rt, ev, EVENTS_PER_WAIT, timeout_ns);
	int epfd = rt->driver.epfd;
#ifdef SYS_epoll_pwait2
	if (!atomic_load_explicit(&weft__driver_no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { (time_t)(timeout_ns / 1000000000ll),
				       (long)(timeout_ns % 1000000000ll) };
		long n = syscall(SYS_epoll_pwait2, epfd, ev, EVENTS_PER_WAIT,
				 timeout_ns < 0 ? NULL : &ts, NULL, (size_t)0);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)n;
		atomic_store_explicit(&weft__driver_no_pwait2, true, memory_order_relaxed);
	}
#endif
	int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
	return epoll_wait(epfd, ev, EVENTS_PER_WAIT, ms);
}

/*
 * Sleep in the driver if it is free: returns false at once when another
 * thread holds it (the caller sleeps on its futex instead). Otherwise waits
 * until an event, the next timer deadline or an unpark, then fires what is
 * due and returns true.
 */
bool weft__driver_park(struct weft_runtime *rt, struct weft__parker *p, uint64_t until_ns,
		       unsigned *linger)
{
	struct weft__driver *d = &rt->driver;
	if (pthread_mutex_trylock(&d->lock))
		return false;
	if (!weft__parker_begin_driver(p)) { /* a notification came first */
		pthread_mutex_unlock(&d->lock);
		return true;
	}
	weft__io_free_retired(rt);
	atomic_store_explicit(&d->sleeper, true, memory_order_relaxed);
	uint64_t next = next_all(rt), published = next;
	atomic_store_explicit(&d->sleep_until_tick, next, memory_order_seq_cst);
	/* How long to sleep, in ns (-1: until woken). Re-read after publishing
	 * sleep_until: a timer set in between either sees our sleep_until (and
	 * writes the eventfd) or is seen here. Never later than what was
	 * published: a timer set later only wakes us if it is due before
	 * that, so sleeping past it (the earliest timer cancelled or fired
	 * between the two reads) left a new timer due at or after it waiting
	 * for some other wake - for good on an idle runtime (found by a
	 * review; 23 of 3,189 rounds late by 69-244 ms with the window
	 * widened). Waking at a cancelled deadline is only an early wake. */
	int64_t timeout = -1;
	uint64_t now_ns = weft__now_ns();
	next = next_all(rt);
	if (next > published)
		next = published;
	if (next != UINT64_MAX) {
		/* the tick boundary at which the timer is due, not "now"
		 * rounded down plus whole milliseconds: that slept up to a
		 * millisecond past it. Capped in ticks first: a deadline
		 * near UINT64_MAX ns (a sleep "forever") is a tick count
		 * whose boundary in ns wraps, which read as due now and had
		 * the sleeper spin. */
		uint64_t now_tick = (now_ns - d->start_ns) / WEFT_TICK_NS;
		if (next <= now_tick)
			timeout = 0;
		else if (next - now_tick > (uint64_t)DRIVER_MAX_SLEEP_NS / WEFT_TICK_NS)
			timeout = DRIVER_MAX_SLEEP_NS;
		else {
			uint64_t at = d->start_ns + next * WEFT_TICK_NS;
			timeout = at <= now_ns ? 0 : (int64_t)(at - now_ns);
		}
	}
	if (until_ns) {
		uint64_t left = until_ns <= now_ns ? 0 : until_ns - now_ns;
		int64_t t = left > (uint64_t)DRIVER_MAX_SLEEP_NS ? DRIVER_MAX_SLEEP_NS : (int64_t)left;
		if (timeout < 0 || t < timeout)
			timeout = t;
	}
	if (timeout > DRIVER_MAX_SLEEP_NS)
		timeout = DRIVER_MAX_SLEEP_NS;
	/*
	 * The stall watch (worker.c, watch_cores): while another worker is
	 * unparked, its poll may last with a task waiting in its LIFO slot that
	 * no sleeping worker hears of, so wake every WEFT_WATCH_MS to look.
	 * With every other worker parked, sleep as the timers allow and say so
	 * in `unwatched`; a LIFO push that sees it writes the eventfd. seq_cst
	 * store then load, against the pusher's unpark (a seq_cst RMW on
	 * idle.state) then seq_cst load of `unwatched`: either we see it
	 * unparked, or it sees the flag. The last searcher to find work
	 * wakes us too while the flag is up (idle.c, "The watch"), and we
	 * keep the timeout a while after the last worker parked (linger).
	 */
	atomic_store_explicit(&d->unwatched, WEFT__UNWATCHED_SLEEPER, memory_order_seq_cst);
	if (weft__idle_watch_want(rt, linger)) {
		atomic_store_explicit(&d->unwatched, 0, memory_order_relaxed);
		if (timeout < 0 || timeout > WEFT_WATCH_MS * 1000000ll)
			timeout = WEFT_WATCH_MS * 1000000ll;
	}
	struct epoll_event ev[EVENTS_PER_WAIT];
	int n = wait_events(rt, ev, timeout);
	atomic_store_explicit(&d->unwatched, 0, memory_order_relaxed);
	atomic_store_explicit(&d->sleep_until_tick, UINT64_MAX, memory_order_relaxed);
	/* before leaving with work: our own relay (worker.c, run_task) sees
	 * the driver empty and wakes a parked worker to take it, unless we
	 * leave it vacant (below) */
	atomic_store_explicit(&d->sleeper, false, memory_order_relaxed);
	weft__parker_end_driver(p);
	/*
	 * Run what is ready here, without a relay. If an event came in or a
	 * timer is due and this thread holds a core, it takes itself off the
	 * sleepers (counted unparked and searching, as a notifier would have
	 * done) and keeps its core while it dispatches: the woken tasks go to
	 * its own LIFO slot and ring, and the park loop returns to run them.
	 * A wake while it searches notifies nobody; when it finds its work it
	 * is the last searcher, and that transition wakes at most one other
	 * worker. Without a core (not a worker) the tasks go to the inject
	 * queue as before.
	 */
	struct weft__ctx *ctx = weft__ctx();
	struct weft__core *core = ctx && ctx->rt == rt ? ctx->core : NULL;
	bool work = false;
	for (int i = 0; i < n && !work; i++)
		work = ev[i].data.ptr != NULL; /* an fd, not the eventfd's unpark */
	if (!work)
		work = next_all(rt) <= weft__driver_now_tick(rt);
	bool kept = core && work;
	if (kept) {
		weft__idle_unpark_self(rt, core);
	} else if (ctx) {
		core = ctx->core;
		ctx->core = NULL;
	}
	if (n > 0)
		dispatch(rt, ev, n);
	/* A worker that put its core aside found no timer due a moment ago:
	 * one that came due since waits for its next park loop, which fires
	 * it with the core, held to the queue's room. Fired here, without
	 * the core, every due timer went to the inject queue at once, which
	 * can put a later deadline group before an earlier one (found by a
	 * review, with 3d767a5's overflow; not reproduced on its own). */
	if (kept || !core)
		weft__timers_process(rt);
	/*
	 * Leave the driver vacant, with no relay (idle.c), when this is
	 * the only worker running and no timer is set: I/O readiness
	 * that its tasks consume in one short poll each (a keep-alive
	 * connection's request) then costs no futex wake and wait per
	 * event; this thread comes back to the driver when it parks.
	 * The first LIFO push or timer set meanwhile wakes a parked
	 * worker to take the driver (weft__driver_unwatched), and any
	 * ring or inject push notifies as always. The price: readiness
	 * of other fds waits for this worker's poll to end, as in
	 * Tokio (Go's sysmon polls the network after 10 ms).
	 */
	if (kept)
		maybe_vacate(rt);
	if (ctx)
		ctx->core = core;
	pthread_mutex_unlock(&d->lock);
	return true;
}
