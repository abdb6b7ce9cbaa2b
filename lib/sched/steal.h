/*
 * steal.h - the steal policy: whether a thief takes from a victim's ring
 * now (worker.c, steal_work). A pure function of what the thief read, so
 * tests/queue/test_steal.c checks every rule without timing.
 *
 * Moving a task to another core costs cache misses on its header, its
 * state and whatever it touches next (hundreds of ns on the machines we
 * measure). For tasks that poll for tens of ns and whose worker serves its
 * ring anyway, a steal buys no parallelism, and the moved tasks pull the
 * lines they share with the victim's tasks back and forth: a receiver
 * waking its senders on its own core, a thief taking half of them, every
 * send and receive then moving the channel's lock between the cores
 * (fanout_mpsc 2-3x slower on two workers than on one; docs/BENCHMARKS.md).
 * So a thief takes from a non-empty ring when
 *  - the victim's tasks are long: its mean poll >= WEFT__STEAL_TASK_NS,
 *    each task moved is worth its misses; or
 *  - its backlog is: tasks x mean poll >= WEFT__STEAL_BACKLOG_NS, or half
 *    a ring of tasks (WEFT_RING_CAP / 2: however short, the victim is
 *    near overflowing into the inject queue); or
 *  - the victim has taken nothing from its ring for WEFT__STEAL_WAIT_NS
 *    since this thief first declined (it is in a long poll, or its thread
 *    was preempted: the queue is not being served).
 * Otherwise it declines and remembers (served count, time) per victim.
 * The backlog threshold is high on purpose: a ring of 64 woken senders
 * whose mean poll, channel contention included, drifted to 500 ns read as
 * a 32 us backlog, the thief took half, and the senders bounced from then
 * on (a mean inflated by the contention itself). The price: a burst of
 * fewer than 128 tasks of 0.3-2 us each runs on its own worker, up to
 * ~64 us longer than if split.
 */
#ifndef WEFT_STEAL_H
#define WEFT_STEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

#ifndef WEFT__STEAL_TASK_NS
#define WEFT__STEAL_TASK_NS 2000u
#endif
#ifndef WEFT__STEAL_BACKLOG_NS
#define WEFT__STEAL_BACKLOG_NS 128000u
#endif
#ifndef WEFT__STEAL_WAIT_NS
#define WEFT__STEAL_WAIT_NS 16000u
#endif

/* One thief's memory of one victim: the victim ring's served count when
 * the thief first declined, and the clock then (0: no decline pending). */
struct weft__steal_look {
	uint32_t served;
	uint64_t since_ns;
};

enum weft__steal_verdict {
	WEFT__STEAL_EMPTY, /* nothing to take */
	WEFT__STEAL_NOW,   /* take half */
	WEFT__STEAL_WAIT,  /* short tasks being served: look again later */
};

/* The first two rules: a ring worth a thief now, whoever serves it (long
 * tasks, or a backlog). Also the owner's test for whether a push to its
 * own ring is worth waking a peer for (worker.c, short_ring_notified). */
static inline bool weft__steal_ring_worth(uint64_t len, uint64_t mean_poll_ns)
{
	return mean_poll_ns >= WEFT__STEAL_TASK_NS || len * mean_poll_ns >= WEFT__STEAL_BACKLOG_NS ||
	       len >= WEFT_RING_CAP / 2;
}

/*
 * len, served: the victim ring's depth and served count (one snapshot,
 * weft__ring_len_served); mean_poll_ns: the victim's published mean poll;
 * lk: this thief's look at the victim (NULL: none kept, take); *now: a
 * clock reading, or 0, then read here through now_fn when needed.
 */
static inline enum weft__steal_verdict
weft__steal_verdict(uint64_t len, uint32_t served, uint64_t mean_poll_ns,
		    struct weft__steal_look *lk, uint64_t *now, uint64_t (*now_fn)(void))
{
	if (!len)
		return WEFT__STEAL_EMPTY;
	if (weft__steal_ring_worth(len, mean_poll_ns) || !lk)
		return WEFT__STEAL_NOW;
	if (!*now)
		*now = now_fn();
	if (!lk->since_ns || lk->served != served) {
		lk->served = served;
		lk->since_ns = *now;
		return WEFT__STEAL_WAIT;
	}
	return *now - lk->since_ns >= WEFT__STEAL_WAIT_NS ? WEFT__STEAL_NOW : WEFT__STEAL_WAIT;
}

#endif /* WEFT_STEAL_H */
