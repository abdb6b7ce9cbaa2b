/*
 * tlist.c - intrusive task list (FIFO through weft_task.qnext). Owned by one
 * holder at a time; no synchronisation.
 */
#include "tlist.h"
#include "task.h"

void weft__tlist_push(struct weft__tlist *l, struct weft_task *t)
{
	t->qnext = NULL;
	if (l->tail)
		l->tail->qnext = t;
	else
		l->head = t;
	l->tail = t;
	l->n++;
}

struct weft_task *weft__tlist_pop(struct weft__tlist *l)
{
	struct weft_task *t = l->head;
	if (!t)
		return NULL;
	l->head = t->qnext;
	if (!l->head)
		l->tail = NULL;
	t->qnext = NULL;
	l->n--;
	return t;
}

void weft__tlist_append(struct weft__tlist *dst, struct weft__tlist *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		dst->tail->qnext = src->head;
	else
		dst->head = src->head;
	dst->tail = src->tail;
	dst->n += src->n;
	src->head = src->tail = NULL;
	src->n = 0;
}
