/*
 * tlist.h - intrusive singly linked list of tasks through weft_task.qnext.
 * Not thread-safe: a list belongs to whoever holds it.
 */
#ifndef WEFT_TLIST_H
#define WEFT_TLIST_H

#include <stddef.h>

struct weft_task;

struct weft__tlist {
	struct weft_task *head, *tail;
	size_t n;
};

#define WEFT__TLIST_INIT { NULL, NULL, 0 }

void weft__tlist_push(struct weft__tlist *l, struct weft_task *t);
struct weft_task *weft__tlist_pop(struct weft__tlist *l);
/* Append all of src to dst; src becomes empty. */
void weft__tlist_append(struct weft__tlist *dst, struct weft__tlist *src);

#endif /* WEFT_TLIST_H */
