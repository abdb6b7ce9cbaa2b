/*
 * timer.c - the public time API over the driver's wheel: sleep, poll-style
 * timers, intervals, join with a timeout.
 */
#include <errno.h>
#include <time.h>

#include "runtime.h"

struct timer_pub {
	struct weft__timer t;
	struct weft_runtime *rt;
	uint64_t deadline_ns;
};
_Static_assert(sizeof(struct timer_pub) <= sizeof(struct weft_timer), "weft_timer too small");

uint64_t weft_now_ns(void) { return weft__now_ns(); }

enum weft_poll weft_timer_poll(struct weft_timer *pub, struct weft_cx *cx, uint64_t deadline_ns)
{
	struct timer_pub *p = (struct timer_pub *)pub;
	if (!cx->rt) { /* a thread's cx (no runtime): only the clock */
		return weft__now_ns() >= deadline_ns ? WEFT_READY : WEFT_PENDING;
	}
	if (atomic_load_explicit(&p->t.state, memory_order_relaxed) == TIMER_IDLE) {
		p->rt = cx->rt;
		p->deadline_ns = deadline_ns;
	}
	enum weft_poll r = weft__timer_poll(p->rt, &p->t, p->deadline_ns, cx);
	if (r == WEFT_READY)
		atomic_store_explicit(&p->t.state, TIMER_IDLE, memory_order_relaxed);
	return r;
}

void weft_timer_cancel(struct weft_timer *pub)
{
	struct timer_pub *p = (struct timer_pub *)pub;
	if (p->rt)
		weft__timer_cancel(p->rt, &p->t);
}

struct sleep_arg { struct weft__timer t; uint64_t deadline; };

static enum weft_poll sleep_poll(void *arg, struct weft_cx *cx)
{
	struct sleep_arg *s = arg;
	return weft__timer_poll(cx->rt, &s->t, s->deadline, cx);
}

int weft_sleep_until(uint64_t deadline_ns)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		/* The fiber's wait deadline is the sleep: wait on nothing. */
		int rc = weft__wait_deadline((weft__wait_poll_fn)0, NULL, NULL, deadline_ns);
		return rc == -ETIMEDOUT ? 0 : rc;
	}
	if (ctx && ctx->core)
		return -EDEADLK;
	(void)sleep_poll;
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ull),
			       (long)(deadline_ns % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return 0;
}

int weft_sleep_ns(uint64_t ns)
{
	uint64_t now = weft__now_ns();
	return weft_sleep_until(ns > UINT64_MAX - now ? UINT64_MAX - 1 : now + ns);
}

int weft_interval_init(struct weft_interval *iv, uint64_t period_ns)
{
	if (!iv || !period_ns)
		return -EINVAL;
	*iv = (struct weft_interval){ .next_ns = weft__now_ns() + period_ns, .period_ns = period_ns };
	return 0;
}

enum weft_poll weft_interval_poll_tick(struct weft_interval *iv, struct weft_cx *cx)
{
	if (weft_timer_poll(&iv->timer, cx, iv->next_ns) == WEFT_PENDING)
		return WEFT_PENDING;
	uint64_t now = weft__now_ns();
	iv->next_ns += iv->period_ns;
	if (iv->next_ns <= now) /* missed ticks: skip, do not burst */
		iv->next_ns = now + iv->period_ns - (now - iv->next_ns) % iv->period_ns;
	return WEFT_READY;
}

int weft_interval_tick(struct weft_interval *iv)
{
	if (!iv)
		return -EINVAL;
	int rc = weft_sleep_until(iv->next_ns);
	if (rc)
		return rc;
	uint64_t now = weft__now_ns();
	iv->next_ns += iv->period_ns;
	if (iv->next_ns <= now)
		iv->next_ns = now + iv->period_ns - (now - iv->next_ns) % iv->period_ns;
	return 0;
}

void weft_interval_cancel(struct weft_interval *iv)
{
	if (iv)
		weft_timer_cancel(&iv->timer);
}
