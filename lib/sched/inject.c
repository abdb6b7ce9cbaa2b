/*
 * inject.c - the runtime-wide queue for tasks scheduled from outside the
 * workers and for overflow batches.
 *
 * Pushers never take a lock: a task (or a batch, linked newest first) goes
 * onto `incoming`, a stack, with one CAS. Consumers (workers taking a
 * batch) serialise on `lock`: one that finds its FIFO (`head`) empty takes
 * the whole stack with one exchange, reverses it (oldest first) and
 * appends it, so tasks leave in the order they were pushed. Before, one
 * mutex covered both sides: a thread spawning many tasks met the workers'
 * pops on it and slept on its futex (spawn_many_local spent 20% of its
 * time in futex wait and wake).
 *
 * `len` is incremented before a push links its tasks (and decremented
 * again if the push is refused), decremented by pops: it never counts
 * fewer tasks than are queued, so a worker seeing 0 may skip the queue. A
 * consumer that sees len > 0 may find the linking CAS not done yet and
 * take nothing; the pusher notifies after its link. So a parker's rescan
 * asks for linked work (weft__inject_visible, runtime.h): the link, or
 * `head_nonempty`, is the pusher's write in the idle protocol's
 * store-buffering argument (idle.c).
 *
 * A task pushed by a thread without a core carries REMOTE_TAG in bit 0 of
 * its own qnext while it is queued (task memory is aligned, so the bit is
 * free; only this file reads qnext of a queued task). remote_len counts
 * them: incremented before the link like len, decremented by the pop that
 * takes one, so never below the number queued (a push preempted between
 * the two counts already: LIFO chains give way for nothing until it
 * links). Workers read it to cut LIFO chains short (worker.c).
 *
 * Close (shutdown) sets bit 0 of `incoming` with an RMW: a push whose CAS
 * came first is in the stack and is found by the final drain; later ones
 * fail (-ESHUTDOWN) and the caller keeps the task.
 */
#include <errno.h>

#include "runtime.h"

#define INJECT_CLOSED ((uintptr_t)1)
#define REMOTE_TAG ((uintptr_t)1)

static inline struct weft_task *untag(struct weft_task *p)
{
	return (struct weft_task *)((uintptr_t)p & ~REMOTE_TAG);
}

void weft__inject_init(struct weft__inject *q)
{
	atomic_init(&q->incoming, 0);
	atomic_init(&q->remote_pushes, 0);
	weft__slock_init(&q->lock);
	q->head = q->tail = NULL;
	atomic_init(&q->len, 0);
	atomic_init(&q->remote_len, 0);
	atomic_init(&q->head_nonempty, false);
}

void weft__inject_fini(struct weft__inject *q) { (void)q; }

/* Link first..last (already chained newest first: last->qnext is free)
 * onto the stack. */
static int push_chain(struct weft__inject *q, struct weft_task *first, struct weft_task *last,
		      size_t n, uintptr_t tag)
{
	/* before the CAS: see the header (len never below what is queued) */
	atomic_fetch_add_explicit(&q->len, n, memory_order_seq_cst);
	if (tag)
		atomic_fetch_add_explicit(&q->remote_len, 1, memory_order_relaxed);
	uintptr_t old = atomic_load_explicit(&q->incoming, memory_order_relaxed);
	do {
		if (old & INJECT_CLOSED) {
			last->qnext = NULL; /* as it was: the caller keeps the chain */
			if (tag)
				atomic_fetch_sub_explicit(&q->remote_len, 1, memory_order_relaxed);
			atomic_fetch_sub_explicit(&q->len, n, memory_order_relaxed);
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

int weft__inject_push(struct weft__inject *q, struct weft_task *t, bool remote)
{
	WEFT_CHAOS_POINT();
	int rc = push_chain(q, t, t, 1, remote ? REMOTE_TAG : 0);
	if (!rc && remote)
		atomic_fetch_add_explicit(&q->remote_pushes, 1, memory_order_relaxed);
	return rc;
}

int weft__inject_push_batch(struct weft__inject *q, struct weft__tlist *b)
{
	if (!b->n)
		return 0;
	/* the stack is newest first: link the batch in reverse, outside any
	 * lock; undone if the queue is closed (the caller keeps the batch) */
	struct weft_task *rev = NULL, *t = b->head, *last = b->head;
	while (t) {
		struct weft_task *next = t->qnext;
		t->qnext = rev;
		rev = t;
		t = next;
	}
	if (push_chain(q, rev, last, b->n, 0)) {
		struct weft_task *fwd = NULL;
		for (t = rev; t;) { /* back to oldest first */
			struct weft_task *next = t->qnext;
			t->qnext = fwd;
			fwd = t;
			t = next;
		}
		b->head = fwd;
		return -ESHUTDOWN;
	}
	b->head = b->tail = NULL;
	b->n = 0;
	return 0;
}

/* Under lock, FIFO empty: take the whole stack, oldest first. */
static void refill_locked(struct weft__inject *q)
{
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
	while (t) { /* each task keeps its own tag */
		uintptr_t link = (uintptr_t)t->qnext;
		t->qnext = (struct weft_task *)((uintptr_t)fwd | (link & REMOTE_TAG));
		fwd = t;
		t = untag((struct weft_task *)link);
	}
	q->head = fwd;
}

size_t weft__inject_pop_batch(struct weft__inject *q, size_t max, struct weft__tlist *out)
{
	if (!max || !weft__inject_len(q))
		return 0;
	size_t n = 0, remote = 0;
	weft__slock_lock(&q->lock);
	if (!q->head)
		refill_locked(q);
	while (n < max && q->head) {
		struct weft_task *t = q->head;
		uintptr_t link = (uintptr_t)t->qnext;
		remote += link & REMOTE_TAG;
		q->head = untag((struct weft_task *)link);
		weft__task_prefetch_state(t); /* its header is in cache: qnext read */
		weft__tlist_push(out, t);
		n++;
		if (!q->head && n < max)
			refill_locked(q);
	}
	if (!q->head)
		q->tail = NULL;
	atomic_store_explicit(&q->head_nonempty, q->head != NULL, memory_order_release);
	if (remote)
		atomic_fetch_sub_explicit(&q->remote_len, remote, memory_order_relaxed);
	if (n)
		atomic_fetch_sub_explicit(&q->len, n, memory_order_release);
	weft__slock_unlock(&q->lock);
	return n;
}

void weft__inject_close(struct weft__inject *q)
{
	atomic_fetch_or_explicit(&q->incoming, INJECT_CLOSED, memory_order_seq_cst);
}
