/*
 * inject.c - the runtime-wide queue for tasks scheduled from outside the
 * workers and for overflow batches. A mutex-protected intrusive FIFO; `len`
 * is an atomic copy of the length so workers check for work without the
 * lock. Once closed (shutdown), pushes fail and the caller keeps the task.
 */
#include <errno.h>

#include "runtime.h"

void weft__inject_init(struct weft__inject *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
	q->closed = false;
	q->remote_pushes = 0;
	atomic_init(&q->len, 0);
}

void weft__inject_fini(struct weft__inject *q) { pthread_mutex_destroy(&q->lock); }

static void set_len(struct weft__inject *q, size_t len)
{
	/* release: pairs with the acquire in weft__inject_len, so a worker that
	 * sees a length also sees the idle-protocol writes made before. */
	atomic_store_explicit(&q->len, len, memory_order_release);
}

int weft__inject_push(struct weft__inject *q, struct weft_task *t, bool remote)
{
	WEFT_CHAOS_POINT();
	t->qnext = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return -ESHUTDOWN;
	}
	if (q->tail)
		q->tail->qnext = t;
	else
		q->head = t;
	q->tail = t;
	q->remote_pushes += remote;
	set_len(q, atomic_load_explicit(&q->len, memory_order_relaxed) + 1);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int weft__inject_push_batch(struct weft__inject *q, struct weft__tlist *b)
{
	if (!b->n)
		return 0;
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return -ESHUTDOWN;
	}
	if (q->tail)
		q->tail->qnext = b->head;
	else
		q->head = b->head;
	q->tail = b->tail;
	set_len(q, atomic_load_explicit(&q->len, memory_order_relaxed) + b->n);
	pthread_mutex_unlock(&q->lock);
	b->head = b->tail = NULL;
	b->n = 0;
	return 0;
}

size_t weft__inject_pop_batch(struct weft__inject *q, size_t max, struct weft__tlist *out)
{
	if (!max || !weft__inject_len(q))
		return 0;
	size_t n = 0;
	pthread_mutex_lock(&q->lock);
	while (n < max && q->head) {
		struct weft_task *t = q->head;
		q->head = t->qnext;
		weft__tlist_push(out, t);
		n++;
	}
	if (!q->head)
		q->tail = NULL;
	set_len(q, atomic_load_explicit(&q->len, memory_order_relaxed) - n);
	pthread_mutex_unlock(&q->lock);
	return n;
}

void weft__inject_close(struct weft__inject *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}
