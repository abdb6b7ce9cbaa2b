/*
 * test_ring.c - the per-core bounded run queue (lib/sched/queue.c) and the task
 * list it overflows into (lib/sched/tlist.c).
 *
 * Single-thread checks are deterministic and exact: 256 pushes fit, the 257th
 * moves the oldest half plus the new task to the overflow list in order, pops
 * are FIFO across wrap-around, a steal of n takes ceil(n/2) and returns the
 * last of them, a thief whose own ring is more than half full takes nothing,
 * and every task comes out exactly once.
 *
 * The stress test runs one owner (push, pop, overflow) against three thieves
 * and checks conservation: pushed == popped + stolen + overflowed, and every
 * task id is seen exactly once.
 *
 * Tasks are calloc'd `struct weft_task` headers: the ring only stores
 * pointers and the overflow list links through `qnext`; `id` tags them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "queue.h"
#include "task.h"
#include "tlist.h"
#include "qtasks.h"

/* ------------------------------------------------------------ fixtures */

static struct weft__ring ring_a, ring_b; /* static: honours _Alignas(128) */

/* Push t, expecting it to fit. */
static void push_fit(struct weft__ring *q, struct weft_task *t)
{
	struct weft__tlist ov = WEFT__TLIST_INIT;
	unsigned rc = weft__ring_push_owner(q, t, &ov);
	cr_assert_eq(rc, 0, "push of task %llu overflowed (%u) with %u queued",
		     (unsigned long long)t->id, rc, weft__ring_len(q));
	cr_assert_eq(ov.n, 0);
	cr_assert_null(ov.head);
}

/* Push tasks[from, to) expecting every one to fit. */
static void push_range(struct weft__ring *q, struct weft_task *tasks, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		push_fit(q, &tasks[i]);
}

/* Pop from q and expect exactly ids [from, to) in order, then empty. */
static void expect_pops(struct weft__ring *q, struct weft_task *tasks, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		struct weft_task *t = weft__ring_pop_owner(q);
		cr_assert_not_null(t, "ring empty; expected task %zu", i);
		cr_assert_eq(t, &tasks[i], "pop returned task %llu, expected %zu",
			     (unsigned long long)t->id, i);
	}
	cr_assert_null(weft__ring_pop_owner(q), "ring holds more than expected");
	cr_assert_eq(weft__ring_len(q), 0);
	cr_assert_eq(weft__ring_free_owner(q), WEFT_RING_CAP);
}

/* Move the ring's indices forward by `k` (push/pop k tasks of a scratch set)
 * so that later contents straddle the wrap-around of the slot array. */
static void advance(struct weft__ring *q, unsigned k)
{
	struct weft_task *scratch = mk_tasks(1);
	for (unsigned i = 0; i < k; i++) {
		push_fit(q, scratch);
		cr_assert_eq(weft__ring_pop_owner(q), scratch);
	}
	free(scratch);
}

/* ------------------------------------------------------------- tlist */

Test(tlist, fifo_and_append, .timeout = WT_TMO(10))
{
	struct weft_task *t = mk_tasks(10);
	struct weft__tlist a = WEFT__TLIST_INIT, b = WEFT__TLIST_INIT;

	cr_assert_null(weft__tlist_pop(&a));
	for (int i = 0; i < 4; i++)
		weft__tlist_push(&a, &t[i]);
	for (int i = 4; i < 10; i++)
		weft__tlist_push(&b, &t[i]);
	cr_assert_eq(a.n, 4);
	cr_assert_eq(b.n, 6);

	weft__tlist_append(&a, &b);
	cr_assert_eq(a.n, 10);
	cr_assert_eq(b.n, 0);
	cr_assert_null(b.head);
	cr_assert_null(weft__tlist_pop(&b));

	/* appending an empty list changes nothing */
	weft__tlist_append(&a, &b);
	cr_assert_eq(a.n, 10);
	/* appending to an empty list moves everything */
	weft__tlist_append(&b, &a);
	cr_assert_eq(b.n, 10);
	cr_assert_eq(a.n, 0);

	for (int i = 0; i < 10; i++) {
		struct weft_task *x = weft__tlist_pop(&b);
		cr_assert_eq(x, &t[i], "tlist pop %d returned %p", i, (void *)x);
		cr_assert_eq(b.n, (size_t)(9 - i));
	}
	cr_assert_null(weft__tlist_pop(&b));
	cr_assert_null(b.head);
	cr_assert_null(b.tail);

	/* reusable after being emptied */
	weft__tlist_push(&b, &t[3]);
	cr_assert_eq(weft__tlist_pop(&b), &t[3]);
	cr_assert_null(weft__tlist_pop(&b));
	free(t);
}

/* -------------------------------------------------------- owner side */

Test(ring, empty, .timeout = WT_TMO(10))
{
	weft__ring_init(&ring_a);
	cr_assert_eq(weft__ring_len(&ring_a), 0);
	cr_assert_eq(weft__ring_free_owner(&ring_a), WEFT_RING_CAP);
	cr_assert_null(weft__ring_pop_owner(&ring_a));
	cr_assert_null(weft__ring_pop_owner(&ring_a));
}

Test(ring, fits_256_fifo, .timeout = WT_TMO(10))
{
	struct weft_task *t = mk_tasks(WEFT_RING_CAP);
	weft__ring_init(&ring_a);
	for (unsigned i = 0; i < WEFT_RING_CAP; i++) {
		push_fit(&ring_a, &t[i]);
		cr_assert_eq(weft__ring_len(&ring_a), i + 1);
		cr_assert_eq(weft__ring_free_owner(&ring_a), WEFT_RING_CAP - i - 1);
	}
	expect_pops(&ring_a, t, 0, WEFT_RING_CAP);
	free(t);
}

static void overflow_at_257(unsigned offset)
{
	struct weft_task *t = mk_tasks(WEFT_RING_CAP + 1);
	weft__ring_init(&ring_a);
	advance(&ring_a, offset);
	push_range(&ring_a, t, 0, WEFT_RING_CAP);

	struct weft__tlist ov = WEFT__TLIST_INIT;
	unsigned n = weft__ring_push_owner(&ring_a, &t[WEFT_RING_CAP], &ov);
	cr_assert_eq(n, WEFT_RING_CAP / 2 + 1, "257th push returned %u, want 129", n);
	cr_assert_eq(ov.n, WEFT_RING_CAP / 2 + 1, "overflow list holds %zu, want 129", ov.n);
	cr_assert_eq(weft__ring_len(&ring_a), WEFT_RING_CAP / 2);
	cr_assert_eq(weft__ring_free_owner(&ring_a), WEFT_RING_CAP / 2);

	/* the overflow list: the oldest 128 in order, then the new task */
	for (unsigned i = 0; i < WEFT_RING_CAP / 2; i++) {
		struct weft_task *x = weft__tlist_pop(&ov);
		cr_assert_not_null(x, "overflow list ended at %u", i);
		cr_assert_eq(x, &t[i], "overflow[%u] is task %llu", i,
			     (unsigned long long)x->id);
	}
	cr_assert_eq(weft__tlist_pop(&ov), &t[WEFT_RING_CAP], "the new task ends the overflow list");
	cr_assert_null(weft__tlist_pop(&ov));

	/* the ring keeps the newest 128, still FIFO */
	expect_pops(&ring_a, t, WEFT_RING_CAP / 2, WEFT_RING_CAP);

	/* and is fully usable afterwards */
	push_range(&ring_a, t, 0, WEFT_RING_CAP);
	expect_pops(&ring_a, t, 0, WEFT_RING_CAP);
	free(t);
}

Test(ring, overflow_at_257_moves_half_plus_one, .timeout = WT_TMO(10)) { overflow_at_257(0); }
Test(ring, overflow_at_257_wrapped, .timeout = WT_TMO(10)) { overflow_at_257(200); }

Test(ring, push_batch, .timeout = WT_TMO(10))
{
	struct weft_task *t = mk_tasks(WEFT_RING_CAP);
	weft__ring_init(&ring_a);
	advance(&ring_a, 250);
	push_range(&ring_a, t, 0, 50);

	struct weft__tlist b = WEFT__TLIST_INIT;
	for (unsigned i = 50; i < WEFT_RING_CAP; i++)
		weft__tlist_push(&b, &t[i]);
	cr_assert_eq(weft__ring_free_owner(&ring_a), WEFT_RING_CAP - 50);
	weft__ring_push_batch_owner(&ring_a, &b);
	cr_assert_eq(weft__ring_len(&ring_a), WEFT_RING_CAP);
	cr_assert_eq(weft__ring_free_owner(&ring_a), 0);
	expect_pops(&ring_a, t, 0, WEFT_RING_CAP);

	/* an empty batch is a no-op */
	struct weft__tlist e = WEFT__TLIST_INIT;
	weft__ring_push_batch_owner(&ring_a, &e);
	cr_assert_eq(weft__ring_len(&ring_a), 0);
	free(t);
}

/*
 * Random push / pop / batch mix checked against a model. The ring is FIFO,
 * so it always holds the not-yet-seen ids below next_push in ascending
 * order; an overflow must hand over the 128 oldest of them and then the
 * pushed task (which thus leaves ahead of older ids still in the ring).
 * Runs over many wrap-arounds of the slot array.
 */
static unsigned char *model_seen;
static size_t model_out; /* lowest id not yet seen */

static size_t model_next(size_t next_push)
{
	while (model_out < next_push && model_seen[model_out])
		model_out++;
	return model_out;
}

Test(ring, model_random_ops, .timeout = WT_TMO(30))
{
	enum { N = 200000 };
	struct weft_task *t = mk_tasks(N);
	model_seen = calloc(N, 1);
	cr_assert_not_null(model_seen);
	model_out = 0;
	weft__ring_init(&ring_a);

	uint64_t rng = 0x9e3779b97f4a7c15ull;
	size_t next_push = 0, inring = 0, overflows = 0, pops = 0, batches = 0;
	while (next_push < N) {
		unsigned r = (unsigned)(wt_rand(&rng) % 100);
		if (r < 55) {
			struct weft__tlist ov = WEFT__TLIST_INIT;
			size_t id = next_push++;
			unsigned n = weft__ring_push_owner(&ring_a, &t[id], &ov);
			if (inring < WEFT_RING_CAP) {
				cr_assert_eq(n, 0, "push with %zu queued overflowed", inring);
				inring++;
				continue;
			}
			cr_assert_eq(n, WEFT_RING_CAP / 2 + 1, "push into a full ring returned %u", n);
			cr_assert_eq(ov.n, n);
			overflows++;
			for (unsigned i = 0; i < WEFT_RING_CAP / 2; i++) {
				size_t want = model_next(id);
				struct weft_task *x = weft__tlist_pop(&ov);
				cr_assert_eq(x, &t[want], "overflow[%u]: got %p want task %zu", i,
					     (void *)x, want);
				model_seen[want]++;
			}
			cr_assert_eq(weft__tlist_pop(&ov), &t[id], "the pushed task must end the overflow list");
			cr_assert_null(weft__tlist_pop(&ov));
			model_seen[id]++;
			inring -= WEFT_RING_CAP / 2;
		} else if (r < 95) {
			struct weft_task *x = weft__ring_pop_owner(&ring_a);
			if (inring == 0) {
				cr_assert_null(x, "pop from an empty ring returned %p", (void *)x);
				continue;
			}
			size_t want = model_next(next_push);
			cr_assert_eq(x, &t[want], "pop: got %p want task %zu", (void *)x, want);
			model_seen[want]++;
			inring--;
			pops++;
		} else {
			unsigned room = weft__ring_free_owner(&ring_a);
			cr_assert_eq(room, WEFT_RING_CAP - inring);
			unsigned k = (unsigned)(wt_rand(&rng) % 40);
			if (k > room)
				k = room;
			if (k > N - next_push)
				k = (unsigned)(N - next_push);
			struct weft__tlist b = WEFT__TLIST_INIT;
			for (unsigned i = 0; i < k; i++)
				weft__tlist_push(&b, &t[next_push++]);
			weft__ring_push_batch_owner(&ring_a, &b);
			inring += k;
			batches++;
		}
		cr_assert_eq(weft__ring_len(&ring_a), inring);
	}
	/* drain */
	while (inring) {
		size_t want = model_next(next_push);
		struct weft_task *x = weft__ring_pop_owner(&ring_a);
		cr_assert_eq(x, &t[want], "drain: got %p want task %zu", (void *)x, want);
		model_seen[want]++;
		inring--;
	}
	cr_assert_null(weft__ring_pop_owner(&ring_a));
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(model_seen[i], 1, "task %zu seen %u times", i, model_seen[i]);
	cr_assert_gt(overflows, 10, "the mix never filled the ring (%zu overflows)", overflows);
	cr_assert_gt(pops, 1000);
	cr_assert_gt(batches, 100);
	free(model_seen);
	free(t);
}

/* -------------------------------------------------------------- steal */

/*
 * src holds ids [0, n) (after `offset` wrap-around pushes), dst holds `pre`
 * other tasks. A steal takes k = ceil(n/2): it returns task k-1, appends
 * 0..k-2 to dst after its `pre` tasks, and leaves k..n-1 in src.
 */
static void steal_n(unsigned n, unsigned offset, unsigned pre)
{
	struct weft_task *t = mk_tasks(n);
	struct weft_task *d = mk_tasks(pre ? pre : 1);
	weft__ring_init(&ring_a);
	weft__ring_init(&ring_b);
	advance(&ring_a, offset);
	advance(&ring_b, offset / 2 + 3);
	push_range(&ring_a, t, 0, n);
	push_range(&ring_b, d, 0, pre);

	unsigned got = 12345, depth = 12345;
	struct weft_task *x = weft__ring_steal(&ring_a, &ring_b, &got, &depth);
	unsigned k = n - n / 2;
	cr_assert_not_null(x, "steal of %u (offset %u, dst %u) returned NULL", n, offset, pre);
	cr_assert_eq(got, k, "steal of %u took %u, want %u", n, got, k);
	cr_assert_eq(depth, n, "steal reported src depth %u, want %u", depth, n);
	cr_assert_eq(x, &t[k - 1], "steal of %u returned task %llu, want the last stolen %u",
		     n, (unsigned long long)x->id, k - 1);
	cr_assert_eq(weft__ring_len(&ring_a), n - k);
	cr_assert_eq(weft__ring_len(&ring_b), pre + k - 1);

	/* dst: its own tasks first, then the stolen ones in order */
	for (unsigned i = 0; i < pre; i++)
		cr_assert_eq(weft__ring_pop_owner(&ring_b), &d[i]);
	expect_pops(&ring_b, t, 0, k - 1);
	/* src: the newer half, in order */
	expect_pops(&ring_a, t, k, n);
	free(t);
	free(d);
}

Test(steal, takes_ceil_half_1, .timeout = WT_TMO(10)) { steal_n(1, 0, 0); }
Test(steal, takes_ceil_half_2, .timeout = WT_TMO(10)) { steal_n(2, 0, 0); }
Test(steal, takes_ceil_half_3, .timeout = WT_TMO(10)) { steal_n(3, 0, 0); }
Test(steal, takes_ceil_half_7, .timeout = WT_TMO(10)) { steal_n(7, 0, 0); }
Test(steal, takes_ceil_half_128, .timeout = WT_TMO(10)) { steal_n(128, 0, 0); }
Test(steal, takes_ceil_half_255, .timeout = WT_TMO(10)) { steal_n(255, 0, 0); }
Test(steal, takes_ceil_half_256, .timeout = WT_TMO(10)) { steal_n(256, 0, 0); }

Test(steal, wrapped_indices, .timeout = WT_TMO(10))
{
	static const unsigned ns[] = { 1, 2, 3, 7, 128, 255, 256 };
	for (unsigned i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		steal_n(ns[i], 200, 0);
		steal_n(ns[i], 255, 0);
		steal_n(ns[i], 129, 0);
	}
}

Test(steal, appends_after_dst_contents, .timeout = WT_TMO(10))
{
	steal_n(7, 30, 5);
	steal_n(256, 10, 100);
	/* exactly half full is not "more than half full": 128 + 127 fits */
	steal_n(256, 77, WEFT_RING_CAP / 2);
}

Test(steal, empty_src_gives_null, .timeout = WT_TMO(10))
{
	weft__ring_init(&ring_a);
	weft__ring_init(&ring_b);
	unsigned got = 0, depth = 0;
	cr_assert_null(weft__ring_steal(&ring_a, &ring_b, &got, &depth));
	advance(&ring_a, 100);
	cr_assert_null(weft__ring_steal(&ring_a, &ring_b, &got, &depth));
	cr_assert_eq(weft__ring_len(&ring_b), 0);
}

Test(steal, refuses_when_dst_more_than_half_full, .timeout = WT_TMO(10))
{
	struct weft_task *t = mk_tasks(64);
	struct weft_task *d = mk_tasks(WEFT_RING_CAP / 2 + 1);
	weft__ring_init(&ring_a);
	weft__ring_init(&ring_b);
	push_range(&ring_a, t, 0, 64);
	push_range(&ring_b, d, 0, WEFT_RING_CAP / 2 + 1);

	unsigned got = 0, depth = 0;
	cr_assert_null(weft__ring_steal(&ring_a, &ring_b, &got, &depth),
		       "steal into a ring holding 129 must take nothing");
	cr_assert_eq(weft__ring_len(&ring_a), 64, "src lost tasks in a refused steal");
	cr_assert_eq(weft__ring_len(&ring_b), WEFT_RING_CAP / 2 + 1);
	expect_pops(&ring_a, t, 0, 64);
	expect_pops(&ring_b, d, 0, WEFT_RING_CAP / 2 + 1);
	free(t);
	free(d);
}

/* Steal back and forth until empty: every task comes out exactly once. */
Test(steal, repeated_steals_conserve, .timeout = WT_TMO(10))
{
	enum { N = WEFT_RING_CAP };
	struct weft_task *t = mk_tasks(N);
	unsigned char seen[N] = { 0 };
	weft__ring_init(&ring_a);
	weft__ring_init(&ring_b);
	push_range(&ring_a, t, 0, N);

	unsigned total = 0, rounds = 0;
	for (;;) {
		unsigned got = 0, depth = 0;
		unsigned before = weft__ring_len(&ring_a);
		struct weft_task *x = weft__ring_steal(&ring_a, &ring_b, &got, &depth);
		if (!x) {
			cr_assert_eq(before, 0, "steal refused with %u in src and an empty dst", before);
			break;
		}
		cr_assert_eq(depth, before);
		cr_assert_eq(got, before - before / 2);
		seen[x->id]++;
		total++;
		while ((x = weft__ring_pop_owner(&ring_b)) != NULL) {
			seen[x->id]++;
			total++;
		}
		rounds++;
	}
	cr_assert_eq(total, N);
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "task %u seen %u times", i, seen[i]);
	/* 256 -> 128 -> 64 ... -> 1: 9 steals */
	cr_assert_eq(rounds, 9);
	free(t);
}

/* --------------------------------------------------- concurrent stress */

/*
 * Owner pushes STRESS_N tasks, popping some and draining overflow into a
 * counter; NTHIEF thieves steal into their own rings and drain them. At the
 * end pushed == popped + stolen + overflowed and each id was seen once.
 */
enum { STRESS_N = 1000000, NTHIEF = 3 };

static struct weft__ring owner_ring;
static struct weft__ring thief_ring[NTHIEF];
static struct weft_task *stress_tasks;
static atomic_uchar *stress_seen;
static atomic_int stress_done;
static atomic_ulong stress_dups, stress_bad;

struct thief_stats {
	unsigned long stolen;      /* sum of n_stolen */
	unsigned long received;    /* tasks actually received (returned + drained) */
	unsigned long ops;
	unsigned long bad_ratio;   /* n_stolen != ceil(depth/2) or out of range */
};
static struct thief_stats thief_stats[NTHIEF];

static void mark_seen(struct weft_task *t)
{
	if (t->id >= STRESS_N) {
		atomic_fetch_add(&stress_bad, 1);
		return;
	}
	if (atomic_fetch_add_explicit(&stress_seen[t->id], 1, memory_order_relaxed) != 0)
		atomic_fetch_add(&stress_dups, 1);
}

static void *thief_main(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	struct weft__ring *mine = &thief_ring[me];
	struct thief_stats *st = &thief_stats[me];
	for (;;) {
		int done = atomic_load_explicit(&stress_done, memory_order_acquire);
		unsigned got = 0, depth = 0;
		struct weft_task *x = weft__ring_steal(&owner_ring, mine, &got, &depth);
		if (x) {
			st->ops++;
			st->stolen += got;
			if (got == 0 || got > depth || got > WEFT_RING_CAP / 2)
				st->bad_ratio++;
			mark_seen(x);
			st->received++;
			unsigned drained = 0;
			while ((x = weft__ring_pop_owner(mine)) != NULL) {
				mark_seen(x);
				st->received++;
				drained++;
			}
			if (drained + 1 != got)
				atomic_fetch_add(&stress_bad, 1);
		} else if (done) {
			break; /* owner's ring was empty when done was set */
		} else if ((st->ops & 7) == 0) {
			sched_yield();
		}
	}
	return NULL;
}

Test(ring_stress, owner_vs_thieves_conservation, .timeout = WT_TMO(40))
{
	stress_tasks = mk_tasks(STRESS_N);
	stress_seen = calloc(STRESS_N, sizeof *stress_seen);
	cr_assert_not_null(stress_seen);
	weft__ring_init(&owner_ring);
	for (unsigned i = 0; i < NTHIEF; i++)
		weft__ring_init(&thief_ring[i]);

	pthread_t th[NTHIEF];
	for (unsigned i = 0; i < NTHIEF; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, thief_main, (void *)(uintptr_t)i), 0);

	unsigned long pushed = 0, popped = 0, overflowed = 0, overflow_events = 0;
	unsigned long bad_overflow = 0;
	uint64_t rng = 12345;
	for (size_t i = 0; i < STRESS_N; i++) {
		struct weft__tlist ov = WEFT__TLIST_INIT;
		unsigned n = weft__ring_push_owner(&owner_ring, &stress_tasks[i], &ov);
		pushed++;
		if (n) {
			overflow_events++;
			if (n != ov.n || (n != 1 && n != WEFT_RING_CAP / 2 + 1))
				bad_overflow++;
			struct weft_task *x;
			struct weft_task *last = NULL;
			while ((x = weft__tlist_pop(&ov)) != NULL) {
				mark_seen(x);
				overflowed++;
				last = x;
			}
			if (last != &stress_tasks[i])
				bad_overflow++; /* the pushed task must end the list */
		}
		/* pop less often than we push so the ring fills and overflows */
		uint64_t r = wt_rand(&rng) % 16;
		for (uint64_t k = 0; k < (r < 6 ? 1 : r < 7 ? 3 : 0); k++) {
			struct weft_task *x = weft__ring_pop_owner(&owner_ring);
			if (!x)
				break;
			mark_seen(x);
			popped++;
		}
	}
	struct weft_task *x;
	while ((x = weft__ring_pop_owner(&owner_ring)) != NULL) {
		mark_seen(x);
		popped++;
	}
	atomic_store_explicit(&stress_done, 1, memory_order_release);
	for (unsigned i = 0; i < NTHIEF; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);
	/* a thief mid-steal when the owner saw an empty ring has finished now */
	cr_assert_null(weft__ring_pop_owner(&owner_ring));

	unsigned long stolen = 0, received = 0, ops = 0, bad_ratio = 0;
	for (unsigned i = 0; i < NTHIEF; i++) {
		stolen += thief_stats[i].stolen;
		received += thief_stats[i].received;
		ops += thief_stats[i].ops;
		bad_ratio += thief_stats[i].bad_ratio;
		cr_assert_null(weft__ring_pop_owner(&thief_ring[i]));
	}
	cr_log_info("pushed %lu popped %lu stolen %lu (%lu steals) overflowed %lu (%lu events)",
		    pushed, popped, stolen, ops, overflowed, overflow_events);

	cr_assert_eq(atomic_load(&stress_dups), 0, "%lu tasks delivered twice",
		     atomic_load(&stress_dups));
	cr_assert_eq(atomic_load(&stress_bad), 0, "%lu bad ids or steal counts",
		     atomic_load(&stress_bad));
	cr_assert_eq(bad_overflow, 0, "%lu malformed overflow lists", bad_overflow);
	cr_assert_eq(bad_ratio, 0, "%lu steals with an impossible count", bad_ratio);
	cr_assert_eq(stolen, received, "thieves reported %lu stolen but received %lu",
		     stolen, received);
	cr_assert_eq(pushed, popped + stolen + overflowed,
		     "pushed %lu != popped %lu + stolen %lu + overflowed %lu", pushed, popped,
		     stolen, overflowed);
	for (size_t i = 0; i < STRESS_N; i++) {
		unsigned c = atomic_load_explicit(&stress_seen[i], memory_order_relaxed);
		cr_assert_eq(c, 1, "task %zu seen %u times", i, c);
	}
	/* the run exercised what it claims to */
	cr_assert_gt(ops, 0, "no steal ever succeeded");
	cr_assert_gt(popped, 0);
	free(stress_seen);
	free(stress_tasks);
}
