/*
 * hand_cx.h - a task context driven by hand, for tests that call the sync
 * primitives' poll forms directly (test_sync_order.c, test_wake_gap.c):
 * its waker counts wakes and may run a hook inside the wake - where a
 * primitive that wakes in batches has its lock dropped - to force an
 * interleaving without threads. A hook that must run once clears
 * c->on_wake first.
 */
#ifndef WEFT_TESTS_HAND_CX_H
#define WEFT_TESTS_HAND_CX_H

#include <stdatomic.h>
#include <string.h>

#include <weft/weft.h> /* struct weft_cx itself: the including test has runtime.h */

struct hand_cx {
	unsigned budget;
	struct weft_cx cx;
	atomic_int woke;
	void (*on_wake)(struct hand_cx *);
};

static inline void *hc_clone(void *d) { return d; }
static inline void hc_wake(void *d)
{
	struct hand_cx *c = d;
	atomic_fetch_add(&c->woke, 1);
	if (c->on_wake)
		c->on_wake(c);
}
static inline void hc_drop(void *d) { (void)d; }
static const struct weft_waker_vtable hc_vt = { hc_clone, hc_wake, hc_wake, hc_drop };

static inline void hc_init(struct hand_cx *c)
{
	memset(c, 0, sizeof(*c));
	c->budget = 128;
	c->cx.budget = &c->budget;
	c->cx.waker = (weft_waker){ &hc_vt, c };
}

#endif
