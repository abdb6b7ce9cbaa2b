/*
 * driver.c - the runtime's driver: the timer wheel and the epoll instance
 * that one parked worker at a time sleeps in.
 *
 * Parking: a worker with nothing to do tries to take `lock`. If it wins it
 * marks its parker PARKED_DRIVER and sleeps in epoll_wait until the next
 * timer deadline; the others sleep on their futex. Unparking a worker in
 * the driver writes the eventfd. Timers and I/O readiness found by the
 * driver wake their tasks from a thread that holds no core, so they go to
 * the inject queue and the idle protocol wakes whoever should run them.
 * Running workers also poll the driver without blocking at maintenance,
 * so a busy runtime still fires timers and sees I/O. While any other
 * worker runs, the driver's sleeper also wakes every WEFT_WATCH_MS to look
 * for a LIFO task stuck behind a long poll (worker.c, rescue_lifo).
 *
 * Timers: the wheel (time.c) under `wheel_lock`. `next_ms` caches the
 * earliest deadline so maintenance can skip the lock when nothing is due.
 * Deadlines are rounded up to the next millisecond and "now" down, so a
 * timer never fires early. A timer set earlier than the deadline the
 * driver thread sleeps to wakes it so it can sleep less. Wakers fire under
 * the wheel lock; they must not touch timers synchronously (task and
 * thread wakers only schedule).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define EVENTS_PER_WAIT 256

int weft__driver_init(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->wheel_lock, NULL);
	pthread_mutex_init(&d->retired_lock, NULL);
	d->retired = NULL;
	d->regs = NULL;
	d->reg_free = NULL;
	d->reg_chunks = NULL;
	atomic_init(&d->retired_any, false);
	atomic_init(&d->io_registered, false);
	atomic_init(&d->io_registered_count, 0);
	atomic_init(&d->io_deregistered_count, 0);
	atomic_init(&d->io_ready_events, 0);
	weft__wheel_init(&d->wheel);
	d->start_ns = weft__now_ns();
	atomic_init(&d->next_ms, UINT64_MAX);
	atomic_init(&d->sleep_until_ms, UINT64_MAX);
	atomic_init(&d->unwatched, false);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return -errno;
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
	close(d->evfd);
	close(d->epfd);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->wheel_lock);
}

void weft__driver_wake(struct weft_runtime *rt)
{
	uint64_t one = 1;
	ssize_t n = write(rt->driver.evfd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero, a wake is pending */
}

uint64_t weft__driver_now_ms(struct weft_runtime *rt)
{
	return (weft__now_ns() - rt->driver.start_ns) / 1000000ull;
}

static uint64_t deadline_to_ms(struct weft_runtime *rt, uint64_t deadline_ns)
{
	if (deadline_ns <= rt->driver.start_ns)
		return 0;
	uint64_t d = deadline_ns - rt->driver.start_ns;
	return d / 1000000ull + (d % 1000000ull != 0);
}

static void refresh_next(struct weft__driver *d)
{
	atomic_store_explicit(&d->next_ms, weft__wheel_next(&d->wheel), memory_order_relaxed);
}

/* ----------------------------------------------------------------- timers */

enum weft_poll weft__timer_poll(struct weft_runtime *rt, struct weft__timer *t,
				uint64_t deadline_ns, struct weft_cx *cx)
{
	struct weft__driver *d = &rt->driver;
	/* acquire: pairs with the release store of FIRED under the lock. */
	if (atomic_load_explicit(&t->state, memory_order_acquire) == TIMER_FIRED)
		return WEFT_READY;
	bool wake_driver = false;
	pthread_mutex_lock(&d->wheel_lock);
	uint8_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (st == TIMER_FIRED) {
		pthread_mutex_unlock(&d->wheel_lock);
		return WEFT_READY;
	}
	if (st == TIMER_PENDING) {
		if (!weft_waker_will_wake(&t->waker, &cx->waker)) {
			weft_waker_drop(&t->waker);
			t->waker = weft_waker_clone(&cx->waker);
		}
		pthread_mutex_unlock(&d->wheel_lock);
		return WEFT_PENDING;
	}
	t->when_ms = deadline_to_ms(rt, deadline_ns);
	if (!weft__wheel_insert(&d->wheel, t)) {
		atomic_store_explicit(&t->state, TIMER_FIRED, memory_order_relaxed);
		pthread_mutex_unlock(&d->wheel_lock);
		return WEFT_READY;
	}
	t->waker = weft_waker_clone(&cx->waker);
	atomic_store_explicit(&t->state, TIMER_PENDING, memory_order_relaxed);
	/* seq_cst store then load, against the driver's seq_cst store of
	 * sleep_until then load of next_ms: one of us sees the other. */
	if (t->when_ms < atomic_load_explicit(&d->next_ms, memory_order_relaxed))
		atomic_store_explicit(&d->next_ms, t->when_ms, memory_order_seq_cst);
	wake_driver = t->when_ms < atomic_load_explicit(&d->sleep_until_ms, memory_order_seq_cst);
	pthread_mutex_unlock(&d->wheel_lock);
	if (wake_driver)
		weft__driver_wake(rt);
	return WEFT_PENDING;
}

void weft__timer_cancel(struct weft_runtime *rt, struct weft__timer *t)
{
	struct weft__driver *d = &rt->driver;
	pthread_mutex_lock(&d->wheel_lock);
	if (atomic_load_explicit(&t->state, memory_order_relaxed) == TIMER_PENDING) {
		weft__wheel_remove(&d->wheel, t);
		refresh_next(d);
	}
	weft_waker_drop(&t->waker);
	atomic_store_explicit(&t->state, TIMER_IDLE, memory_order_relaxed);
	pthread_mutex_unlock(&d->wheel_lock);
}

/* Fire every timer that is due. Cheap when nothing is. */
void weft__timers_process(struct weft_runtime *rt)
{
	struct weft__driver *d = &rt->driver;
	uint64_t now = weft__driver_now_ms(rt);
	if (atomic_load_explicit(&d->next_ms, memory_order_relaxed) > now)
		return;
	pthread_mutex_lock(&d->wheel_lock);
	struct weft__timer *fired = NULL;
	weft__wheel_advance(&d->wheel, now, &fired);
	refresh_next(d);
	while (fired) {
		struct weft__timer *t = fired;
		fired = t->next;
		t->next = NULL;
		weft_waker w = t->waker;
		t->waker = (weft_waker){ NULL, NULL };
		/* release: the owner may reuse t as soon as it sees FIRED. */
		atomic_store_explicit(&t->state, TIMER_FIRED, memory_order_release);
		weft_waker_wake(&w);
	}
	pthread_mutex_unlock(&d->wheel_lock);
}

/* ------------------------------------------------------------- epoll side */

static void dispatch(struct weft_runtime *rt, struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		if (!ev[i].data.ptr) {
			uint64_t v;
			ssize_t r = read(rt->driver.evfd, &v, sizeof(v));
			(void)r;
			continue;
		}
		weft__io_ready(rt, ev[i].data.ptr, ev[i].events);
	}
}

/* Poll readiness and timers without blocking; skipped if another thread
 * holds the driver. */
void weft__driver_poll_nowait(struct weft_runtime *rt)
{
	weft__timers_process(rt);
	if (!atomic_load_explicit(&rt->driver.io_registered, memory_order_relaxed))
		return;
	if (pthread_mutex_trylock(&rt->driver.lock))
		return;
	weft__io_free_retired(rt);
	struct epoll_event ev[EVENTS_PER_WAIT];
	int n = epoll_wait(rt->driver.epfd, ev, EVENTS_PER_WAIT, 0);
	if (n > 0)
		dispatch(rt, ev, n);
	pthread_mutex_unlock(&rt->driver.lock);
}

/*
 * Sleep in the driver if it is free: returns false at once when another
 * thread holds it (the caller sleeps on its futex instead). Otherwise waits
 * until an event, the next timer deadline or an unpark, then fires what is
 * due and returns true.
 */
bool weft__driver_park(struct weft_runtime *rt, struct weft__parker *p)
{
	struct weft__driver *d = &rt->driver;
	if (pthread_mutex_trylock(&d->lock))
		return false;
	if (!weft__parker_begin_driver(p)) { /* a notification came first */
		pthread_mutex_unlock(&d->lock);
		return true;
	}
	weft__io_free_retired(rt);
	uint64_t next = atomic_load_explicit(&d->next_ms, memory_order_relaxed);
	atomic_store_explicit(&d->sleep_until_ms, next, memory_order_seq_cst);
	int timeout = -1;
	/* Re-read after publishing sleep_until: a timer set in between either
	 * sees our sleep_until (and writes the eventfd) or is seen here. */
	next = atomic_load_explicit(&d->next_ms, memory_order_seq_cst);
	if (next != UINT64_MAX) {
		uint64_t now = weft__driver_now_ms(rt);
		timeout = next <= now ? 0 : (next - now > 60000 ? 60000 : (int)(next - now));
	}
	/*
	 * The LIFO watch (worker.c, rescue_lifo): while another worker is
	 * unparked, its poll may last with a task waiting in its LIFO slot that
	 * no sleeping worker hears of, so wake every WEFT_WATCH_MS to look.
	 * With every other worker parked, sleep as the timers allow and say so
	 * in `unwatched`; a LIFO push that sees it writes the eventfd. seq_cst
	 * store then load, against the pusher's unpark (a seq_cst RMW on
	 * idle.state) then seq_cst load of `unwatched`: either we see it
	 * unparked, or it sees the flag.
	 */
	atomic_store_explicit(&d->unwatched, true, memory_order_seq_cst);
	if (IDLE_UNPARKED(atomic_load_explicit(&rt->idle.state, memory_order_seq_cst)) > 0) {
		atomic_store_explicit(&d->unwatched, false, memory_order_relaxed);
		if (timeout < 0 || timeout > WEFT_WATCH_MS)
			timeout = WEFT_WATCH_MS;
	}
	struct epoll_event ev[EVENTS_PER_WAIT];
	int n = epoll_wait(d->epfd, ev, EVENTS_PER_WAIT, timeout);
	atomic_store_explicit(&d->unwatched, false, memory_order_relaxed);
	atomic_store_explicit(&d->sleep_until_ms, UINT64_MAX, memory_order_relaxed);
	weft__parker_end_driver(p);
	/* Wake what is ready from a thread without a core: tasks go to the
	 * inject queue and the idle protocol decides who runs them. */
	struct weft__ctx *ctx = weft__ctx();
	struct weft__core *core = ctx ? ctx->core : NULL;
	if (ctx)
		ctx->core = NULL;
	if (n > 0)
		dispatch(rt, ev, n);
	weft__timers_process(rt);
	if (ctx)
		ctx->core = core;
	pthread_mutex_unlock(&d->lock);
	return true;
}
