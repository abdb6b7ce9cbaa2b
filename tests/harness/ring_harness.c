/*
 * ring_harness.c - the per-core run queue (lib/sched/queue.c, compiled here as it
 * is, with a 4-slot ring) under one owner and THIEVES thieves.
 *
 * Owner: pushes PUSHES tasks, writing each task's id (plain) just before
 * its push, and pops one after every third push; with 4 slots the ring
 * fills, so pushes overflow half the ring (or only the new task while a
 * thief is copying). Thieves: STEALS steals each into a ring of their own,
 * which they then pop empty. At the end the main thread pops what is left.
 *
 * Checks: every task comes out exactly once (owner pop, overflow list,
 * steal, or the final drain) - conservation; a consumer sees the id the
 * owner wrote before the push (the push's release of `tail` publishes the
 * slot and what it points to); a steal of a ring holding n takes ceil(n/2)
 * and hands them over in order, the last returned; an overflow hands over
 * 3 (half plus the new task) or 1; the owner's pops and each overflow list
 * come out oldest first.
 *
 * --broken: the owner drops its last task instead of pushing it;
 * conservation must catch it.
 */
#ifndef WEFT_RING_CAP
#define WEFT_RING_CAP 4u
#endif
#ifndef THIEVES
#define THIEVES 1
#endif
#ifndef PUSHES
#define PUSHES 6
#endif
#ifndef STEALS
#define STEALS 2
#endif

#include "harness.h"

/* The library's own code, not a copy. */
#include "../../lib/sched/queue.c"
#include "../../lib/sched/tlist.c"

#define HARNESS_PATHS(X) X(overflow_half) X(overflow_one) X(owner_pop) X(owner_pop_empty) \
	X(steal) X(steal_batch) X(steal_nothing) X(drained_at_end)
HARNESS_DECLARE_PATHS()

static struct weft__ring ring;                 /* the owner's */
static struct weft__ring thief_ring[THIEVES];  /* each thief's own */
static struct weft_task tasks[PUSHES];
static atomic_int seen[PUSHES];
static bool broken_run;

/* A consumer got t: it must be one of ours, carry the id written before it
 * was pushed, and not have come out before. */
static void take(struct weft_task *t)
{
	assert(t >= tasks && t < tasks + PUSHES);
	unsigned i = (unsigned)(t - tasks);
	assert(t->id == i + 1 && "the task's contents were not published with the slot");
	int before = atomic_fetch_add_explicit(&seen[i], 1, memory_order_relaxed);
	assert(before == 0 && "a task came out of the ring twice");
	(void)before;
}

static void *owner(void *arg)
{
	(void)arg;
	harness_seed(1);
	uint64_t last_popped = 0;
	for (unsigned i = 0; i < PUSHES; i++) {
		struct weft_task *t = &tasks[i];
		t->id = i + 1;
		if (broken_run && i == PUSHES - 1)
			break; /* planted bug: the last task is never queued */
		HARNESS_JITTER();
		struct weft__tlist ov = WEFT__TLIST_INIT;
		unsigned n = weft__ring_push_owner(&ring, t, &ov);
		assert(n == ov.n);
		assert(n == 0 || n == 1 || n == WEFT_RING_CAP / 2 + 1);
		if (n)
			assert(ov.tail == t && "the new task ends the overflow list");
		if (n == 1)
			HARNESS_HIT(overflow_one);
		else if (n)
			HARNESS_HIT(overflow_half);
		uint64_t prev = 0;
		struct weft_task *u;
		while ((u = weft__tlist_pop(&ov))) {
			assert(u->id > prev && "overflow list out of order");
			prev = u->id;
			take(u);
		}
		if (i % 3 == 2) {
			HARNESS_JITTER();
			u = weft__ring_pop_owner(&ring);
			if (!u)
				HARNESS_HIT(owner_pop_empty);
			if (u) {
				HARNESS_HIT(owner_pop);
				assert(u->id > last_popped && "owner pops out of order");
				last_popped = u->id;
				take(u);
			}
		}
	}
	return NULL;
}

static void *thief(void *arg)
{
	struct weft__ring *mine = arg;
	harness_seed((unsigned)(mine - thief_ring) + 2);
	for (unsigned k = 0; k < STEALS; k++) {
		HARNESS_JITTER();
		unsigned n = 0, depth = 0;
		struct weft_task *t = weft__ring_steal(&ring, mine, &n, &depth);
		if (!t) {
			HARNESS_HIT(steal_nothing);
			continue;
		}
		HARNESS_HIT(steal);
		if (n > 1)
			HARNESS_HIT(steal_batch);
		assert(depth >= 1 && depth <= WEFT_RING_CAP);
		assert(n == depth - depth / 2 && "a steal takes ceil(n/2)");
		/* the batch is consecutive: n - 1 in our ring, oldest first, then
		 * the one returned */
		uint64_t last = t->id;
		for (unsigned j = 1; j < n; j++) {
			struct weft_task *u = weft__ring_pop_owner(mine);
			assert(u && u->id == last - n + j && "stolen batch out of order");
			take(u);
		}
		assert(weft__ring_pop_owner(mine) == NULL);
		take(t);
	}
	return NULL;
}

static void scenario(unsigned iter, bool broken)
{
	(void)iter;
	broken_run = broken;
	weft__ring_init(&ring);
	for (unsigned i = 0; i < THIEVES; i++)
		weft__ring_init(&thief_ring[i]);
	for (unsigned i = 0; i < PUSHES; i++) {
		memset(&tasks[i], 0, sizeof tasks[i]);
		atomic_init(&seen[i], 0);
	}

	void *(*fn[1 + THIEVES])(void *);
	void *arg[1 + THIEVES];
	fn[0] = owner;
	arg[0] = NULL;
	for (unsigned i = 0; i < THIEVES; i++) {
		fn[1 + i] = thief;
		arg[1 + i] = &thief_ring[i];
	}
	harness_run(1 + THIEVES, fn, arg);

	/* Everyone is done: what is still queued comes out now, in order. */
	uint64_t prev = 0;
	struct weft_task *t;
	while ((t = weft__ring_pop_owner(&ring))) {
		HARNESS_HIT(drained_at_end);
		assert(t->id > prev);
		prev = t->id;
		take(t);
	}
	assert(weft__ring_len(&ring) == 0);
	for (unsigned i = 0; i < PUSHES; i++)
		assert(atomic_load(&seen[i]) == 1 && "a task was lost");
}

HARNESS_MAIN(scenario)
