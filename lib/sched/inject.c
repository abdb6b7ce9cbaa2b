/*
 * inject.c - the runtime-wide queue for tasks scheduled from outside the
 * workers and for overflow batches.
 *
 * Pushers never take a lock. A task, or a batch, goes into `ring`, a
 * bounded array of WEFT_INJECT_RING slots, each with a sequence word (the
 * design of Dmitry Vyukov's bounded MPMC queue): a pusher claims the next
 * positions with one CAS on `enq`, writes the task pointers and publishes
 * each slot by storing its sequence. Consumers (workers taking a batch)
 * serialise on `lock` and take the published slots in position order,
 * reading pointers side by side: the task headers of a batch are fetched
 * together, not one after another. Before the ring, every task went onto
 * a stack (`incoming`, linked through qnext) that a consumer took whole and
 * reversed, oldest first: a chain of cache misses over headers written on
 * the pushing thread's CPU, then another walk to pop them (12% of
 * timers_fiber, whose 10,000 fibers main spawns). The stack stays as the
 * overflow when the ring is full: a push never waits. While the stack
 * holds tasks every push goes there, behind them. Each task pushed onto
 * the stack carries the ring position claimed when it was pushed (`enq`,
 * read just before, in `qbound`); a consumer that takes the stack (`head`,
 * oldest first) serves the ring below the highest of those (`bound`), then
 * `head`, then the rest of the ring. So each pusher's tasks leave in the
 * order it pushed them, across the two: its ring claims before a stack
 * push are below that push's mark, and once its task is on the stack it
 * claims again only after a consumer took the stack, above every mark
 * taken with it. (`bound` read by the consumer itself, before taking the
 * stack, let a claim made between the two and a stack push after it by
 * the same pusher swap places.)
 *
 * A batch claims all its positions with one CAS when the last of them is
 * free (slots are freed in position order, so the others are too) and
 * publishes its first slot last (PUBLISH_ORDER): the batch becomes visible
 * at once.
 *
 * `len` is incremented before a push publishes its tasks (and decremented
 * again if the push is refused), decremented by pops: it never counts
 * fewer tasks than are queued, so a worker seeing 0 may skip the queue. A
 * consumer that sees len > 0 may find the claim not published yet and take
 * nothing; the pusher notifies after its publish. So a parker's rescan
 * asks for published work (weft__inject_visible, runtime.h): the slot at
 * `deq`, the stack, or `head_nonempty`. Its publish is the pusher's
 * write in the idle protocol's store-buffering argument (idle.c; the
 * notify's seq_cst fence follows it).
 * A consumer cannot pass a claimed slot whose pusher has not published it:
 * the tasks behind it wait for that pusher (a few instructions, unless it
 * is preempted between the two).
 *
 * A task pushed by a thread without a core carries REMOTE_TAG in bit 0 of
 * its slot (or of its own qnext on the stack) while it is queued (task
 * memory is aligned, so the bit is free). remote_len counts them:
 * incremented before the publish like len, decremented by the pop that
 * takes one, so never below the number queued (a push preempted between
 * the two counts already: LIFO chains give way for nothing until it
 * publishes). Workers read it to cut LIFO chains short (worker.c).
 *
 * Close (shutdown) sets bit 63 of `enq` and bit 0 of `incoming` with RMWs:
 * a push whose claim or link came first is queued and is found by the
 * final drain (which waits for a claimed slot to be published); later
 * ones fail (-ESHUTDOWN) and the caller keeps the task.
 */
#include <errno.h>

#include "runtime.h"

#define INJECT_CLOSED ((uintptr_t)1)
#define ENQ_CLOSED (1ull << 63)
#define REMOTE_TAG ((uintptr_t)1)
#define RING_MASK ((uint64_t)WEFT_INJECT_RING - 1)

/* tests/queue/test_inject_order.c compiles this file with hooks at the
 * two points whose interleaving decides the order (a pusher between its
 * look at the stack and its claim; a consumer about to take the stack) */
#ifndef INJECT_TEST_HOOK
#define INJECT_TEST_HOOK(where) ((void)0)
#endif

/* A publish is a release store: the notify that follows it has a seq_cst
 * fence (idle.c) for the idle protocol's store-buffering pair. TSan builds
 * have no fences there: seq_cst. */
#if defined(__SANITIZE_THREAD__)
#define PUBLISH_ORDER memory_order_seq_cst
#else
#define PUBLISH_ORDER memory_order_release
#endif

_Static_assert((WEFT_INJECT_RING & (WEFT_INJECT_RING - 1)) == 0, "a power of 2");

static inline struct weft_task *untag(struct weft_task *p)
{
	return (struct weft_task *)((uintptr_t)p & ~REMOTE_TAG);
}

void weft__inject_init(struct weft__inject *q)
{
	atomic_init(&q->enq, 0);
	atomic_init(&q->deq_seen, 0);
	for (uint64_t i = 0; i < WEFT_INJECT_RING; i++) {
		atomic_init(&q->ring[i].seq, 0); /* position i is published as i + 1 */
		atomic_init(&q->ring[i].task, 0);
	}
	atomic_init(&q->incoming, 0);
	atomic_init(&q->remote_taken, 0);
	weft__slock_init(&q->lock);
	atomic_init(&q->deq, 0);
	q->head = q->tail = NULL;
	q->bound = 0;
	atomic_init(&q->len, 0);
	atomic_init(&q->remote_len, 0);
	atomic_init(&q->head_nonempty, false);
}

void weft__inject_fini(struct weft__inject *q) { (void)q; }

/* While the overflow stack holds tasks, pushes go there too, behind them
 * (see the header: a pusher's tasks leave in its order). seq_cst: a pusher
 * that sees the stack empty after a consumer took it claims after every
 * mark read before the tasks taken were pushed (refill_locked). */
static inline bool stack_nonempty(struct weft__inject *q)
{
	return atomic_load_explicit(&q->incoming, memory_order_seq_cst) & ~INJECT_CLOSED;
}

/* Claim n ring positions: the first, 0 when the ring has no room for them
 * (*closed false), or with *closed when the queue is closed. Returns the
 * position + 1 so that 0 can mean "none". */
static uint64_t ring_claim(struct weft__inject *q, uint64_t n, bool *closed)
{
	*closed = false;
	if (n > WEFT_INJECT_RING)
		return 0;
	uint64_t e = atomic_load_explicit(&q->enq, memory_order_relaxed);
	/* acquire, with the release below: the slots below it were read by
	 * the consumers before the pusher that stored it saw deq */
	uint64_t d = atomic_load_explicit(&q->deq_seen, memory_order_acquire);
	for (;;) {
		if (e & ENQ_CLOSED) {
			*closed = true;
			return 0;
		}
		if (d > e)
			d = e; /* consumers passed the enq we read: all below it is free */
		if (e + n - d > WEFT_INJECT_RING) {
			/* acquire: the consumers read every slot below deq
			 * before they stored it, so those slots may be reused */
			uint64_t nd = atomic_load_explicit(&q->deq, memory_order_acquire);
			if (nd == d)
				return 0; /* full */
			d = nd;
			/* may go back: a stale value only sends a pusher
			 * here again */
			atomic_store_explicit(&q->deq_seen, d, memory_order_release);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&q->enq, &e, e + n, memory_order_seq_cst,
							  memory_order_relaxed))
			return e + 1;
	}
}

static inline void slot_fill(struct weft__inject *q, uint64_t pos, uintptr_t v)
{
	atomic_store_explicit(&q->ring[pos & RING_MASK].task, v, memory_order_relaxed);
}

/* The mark of a stack push: the ring positions claimed so far, this
 * pusher's among them (its claim's CAS came first). */
static inline uint64_t stack_mark(struct weft__inject *q)
{
	return atomic_load_explicit(&q->enq, memory_order_seq_cst) & ~ENQ_CLOSED;
}

/* Link first..last (already chained newest first: last->qnext is free,
 * each task's qbound set) onto the overflow stack. The caller counted
 * them. */
static int push_chain(struct weft__inject *q, struct weft_task *first, struct weft_task *last,
		      uintptr_t tag)
{
	uintptr_t old = atomic_load_explicit(&q->incoming, memory_order_relaxed);
	do {
		if (old & INJECT_CLOSED) {
			last->qnext = NULL; /* as it was: the caller keeps the chain */
			return -ESHUTDOWN;
		}
		last->qnext = (struct weft_task *)(old | tag);
		/* release (seq_cst: weft__inject_visible, runtime.h): a
		 * consumer's acquire exchange sees the tasks' links and
		 * everything written to them before the push */
	} while (!atomic_compare_exchange_weak_explicit(&q->incoming, &old, (uintptr_t)first,
							memory_order_seq_cst,
							memory_order_relaxed));
	return 0;
}

/* before the publish: see the header (len never below what is queued) */
static inline void count_in(struct weft__inject *q, size_t n, uintptr_t tag)
{
	atomic_fetch_add_explicit(&q->len, n, memory_order_seq_cst);
	if (tag)
		atomic_fetch_add_explicit(&q->remote_len, 1, memory_order_relaxed);
}

static inline void count_out(struct weft__inject *q, size_t n, uintptr_t tag)
{
	if (tag)
		atomic_fetch_sub_explicit(&q->remote_len, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
}

int weft__inject_push(struct weft__inject *q, struct weft_task *t, bool remote)
{
	WEFT_CHAOS_POINT();
	uintptr_t tag = remote ? REMOTE_TAG : 0;
	count_in(q, 1, tag);
	bool closed = false;
	uint64_t pos = stack_nonempty(q) ? 0 : (INJECT_TEST_HOOK(1), ring_claim(q, 1, &closed));
	int rc = 0;
	if (pos--) {
		slot_fill(q, pos, (uintptr_t)t | tag);
		WEFT_CHAOS_POINT(); /* claimed, not yet published */
		/* release: the consumer's acquire load sees the task and all
		 * written to it before */
		atomic_store_explicit(&q->ring[pos & RING_MASK].seq, pos + 1, PUBLISH_ORDER);
	} else if (closed) {
		t->qnext = NULL; /* as a refused stack push leaves it */
		rc = -ESHUTDOWN;
	} else {
		t->qbound = stack_mark(q);
		rc = push_chain(q, t, t, tag);
	}
	if (rc) {
		count_out(q, 1, tag);
		return rc;
	}
	return 0;
}

int weft__inject_push_batch(struct weft__inject *q, struct weft__tlist *b)
{
	if (!b->n)
		return 0;
	count_in(q, b->n, 0);
	bool closed = false;
	uint64_t pos = stack_nonempty(q) ? 0 : (INJECT_TEST_HOOK(1), ring_claim(q, b->n, &closed));
	if (pos--) {
		/* every slot but the first, then the first: the consumer
		 * cannot pass it, so the batch appears whole */
		uint64_t i = 0;
		for (struct weft_task *t = b->head; t; t = t->qnext, i++)
			slot_fill(q, pos + i, (uintptr_t)t);
		for (i = 1; i < b->n; i++)
			atomic_store_explicit(&q->ring[(pos + i) & RING_MASK].seq, pos + i + 1,
					      memory_order_release);
		WEFT_CHAOS_POINT();
		atomic_store_explicit(&q->ring[pos & RING_MASK].seq, pos + 1, PUBLISH_ORDER);
		b->head = b->tail = NULL;
		b->n = 0;
		return 0;
	}
	if (closed) {
		count_out(q, b->n, 0);
		return -ESHUTDOWN;
	}
	/* the stack is newest first: link the batch in reverse, outside any
	 * lock; undone if the queue is closed (the caller keeps the batch) */
	struct weft_task *rev = NULL, *t = b->head, *last = b->head;
	uint64_t mark = stack_mark(q);
	while (t) {
		struct weft_task *next = t->qnext;
		t->qbound = mark;
		t->qnext = rev;
		rev = t;
		t = next;
	}
	if (push_chain(q, rev, last, 0)) {
		struct weft_task *fwd = NULL;
		for (t = rev; t;) { /* back to oldest first */
			struct weft_task *next = t->qnext;
			t->qnext = fwd;
			fwd = t;
			t = next;
		}
		b->head = fwd;
		count_out(q, b->n, 0);
		return -ESHUTDOWN;
	}
	b->head = b->tail = NULL;
	b->n = 0;
	return 0;
}

/* Under lock, FIFO empty: take the whole stack, oldest first, and set
 * `bound` to the highest mark on it (see the header). */
static void refill_locked(struct weft__inject *q)
{
	INJECT_TEST_HOOK(2);
	uintptr_t old = atomic_load_explicit(&q->incoming, memory_order_relaxed);
	/* before the stack leaves `incoming`: the tasks never look absent
	 * to weft__inject_visible (the pop's end stores the truth) */
	if (old & ~INJECT_CLOSED)
		atomic_store_explicit(&q->head_nonempty, true, memory_order_seq_cst);
	while ((old & ~INJECT_CLOSED) &&
	       !atomic_compare_exchange_weak_explicit(&q->incoming, &old, old & INJECT_CLOSED,
						      memory_order_seq_cst, memory_order_relaxed))
		;
	struct weft_task *t = (struct weft_task *)(old & ~INJECT_CLOSED), *fwd = NULL;
	if (!t)
		return;
	q->tail = t; /* the newest: last once reversed */
	uint64_t bound = 0;
	while (t) { /* each task keeps its own tag */
		uintptr_t link = (uintptr_t)t->qnext;
		if (t->qbound > bound)
			bound = t->qbound;
		t->qnext = (struct weft_task *)((uintptr_t)fwd | (link & REMOTE_TAG));
		fwd = t;
		t = untag((struct weft_task *)link);
	}
	q->head = fwd;
	q->bound = bound;
}

/* Under lock: up to max tasks from the FIFO taken from the stack. */
static size_t pop_head(struct weft__inject *q, size_t max, struct weft__tlist *out,
		       size_t *remote)
{
	size_t n = 0;
	while (n < max && q->head) {
		struct weft_task *t = q->head;
		uintptr_t link = (uintptr_t)t->qnext;
		*remote += link & REMOTE_TAG;
		q->head = untag((struct weft_task *)link);
		weft__task_prefetch_state(t); /* its header is in cache: qnext read */
		weft__tlist_push(out, t);
		n++;
	}
	if (!q->head)
		q->tail = NULL;
	return n;
}

/* Under lock: up to max tasks from the ring, in position order, below
 * position `until`. After
 * close, a claimed slot is waited for (the final drain must find every
 * task whose claim came before the close). */
static size_t pop_ring(struct weft__inject *q, size_t max, uint64_t until,
		       struct weft__tlist *out, size_t *remote)
{
	uint64_t d = atomic_load_explicit(&q->deq, memory_order_relaxed);
	size_t n = 0;
	while (n < max && d < until) {
		struct weft__inject_slot *sl = &q->ring[d & RING_MASK];
		/* acquire: pairs with the pusher's publish */
		if (atomic_load_explicit(&sl->seq, memory_order_acquire) != d + 1) {
			/* `enq` only once closed (the close marks `incoming`
			 * too): it is the pushers' line, and reading it at the
			 * end of every pop cost them a miss per push */
			if (!(atomic_load_explicit(&q->incoming, memory_order_relaxed) & INJECT_CLOSED))
				break;
			uint64_t e = atomic_load_explicit(&q->enq, memory_order_acquire);
			if (d < (e & ~ENQ_CLOSED)) {
				weft__cpu_relax(); /* claimed before the close */
				continue;
			}
			break;
		}
		uintptr_t v = atomic_load_explicit(&sl->task, memory_order_relaxed);
		struct weft_task *t = (struct weft_task *)(v & ~REMOTE_TAG);
		*remote += v & REMOTE_TAG;
		d++;
		weft__task_prefetch_state(t);
		weft__tlist_push(out, t);
		n++;
	}
	/* release: a pusher that sees it may reuse the slots below (we are
	 * done reading them); the slots themselves are left as they are,
	 * their lines only read here */
	if (n)
		atomic_store_explicit(&q->deq, d, memory_order_release);
	return n;
}

/*
 * Order: the ring below `bound`, then the FIFO taken from the stack, then
 * the rest of the ring; the stack is taken again only once that FIFO is
 * empty. Pushers go to the stack while it holds tasks, so the ring stops
 * growing and every task on the stack is served after finitely many ahead.
 */
size_t weft__inject_pop_batch(struct weft__inject *q, size_t max, struct weft__tlist *out)
{
	if (!max || !weft__inject_len(q))
		return 0;
	size_t n = 0, remote = 0;
	weft__slock_lock(&q->lock);
	for (;;) {
		if (!q->head && stack_nonempty(q))
			refill_locked(q);
		if (q->head) {
			n += pop_ring(q, max - n, q->bound, out, &remote);
			if (n == max || atomic_load_explicit(&q->deq, memory_order_relaxed) < q->bound)
				break; /* full, or a claim below bound not yet published */
			n += pop_head(q, max - n, out, &remote);
			if (q->head)
				break; /* full */
		}
		n += pop_ring(q, max - n, UINT64_MAX, out, &remote);
		if (n == max || !stack_nonempty(q))
			break;
	}
	/* head_nonempty means "takeable now": behind a claim below bound that
	 * is not published yet, head waits for that pusher, whose notify
	 * comes after its publish; saying true meanwhile would have parked
	 * workers wake each other for nothing (runtime.h) */
	atomic_store_explicit(&q->head_nonempty,
			      q->head != NULL &&
				      atomic_load_explicit(&q->deq, memory_order_relaxed) >= q->bound,
			      memory_order_release);
	if (remote) {
		atomic_fetch_sub_explicit(&q->remote_len, remote, memory_order_relaxed);
		atomic_store_explicit(&q->remote_taken,
				      atomic_load_explicit(&q->remote_taken, memory_order_relaxed) +
					      remote,
				      memory_order_relaxed);
	}
	if (n)
		atomic_fetch_sub_explicit(&q->len, n, memory_order_release);
	weft__slock_unlock(&q->lock);
	return n;
}

void weft__inject_close(struct weft__inject *q)
{
	atomic_fetch_or_explicit(&q->enq, ENQ_CLOSED, memory_order_seq_cst);
	atomic_fetch_or_explicit(&q->incoming, INJECT_CLOSED, memory_order_seq_cst);
}
