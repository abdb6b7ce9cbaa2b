/*
 * qtasks.h - fake tasks for the queue tests (test_ring, test_inject): the
 * queues only store and link task pointers, so calloc'd headers tagged by
 * `id` (their index) stand in for real tasks.
 */
#ifndef WEFT_TEST_QTASKS_H
#define WEFT_TEST_QTASKS_H

#include "../common/wt.h"

#include "task.h"

static inline struct weft_task *mk_tasks(size_t n)
{
	struct weft_task *t = calloc(n, sizeof *t);
	cr_assert_not_null(t);
	for (size_t i = 0; i < n; i++)
		t[i].id = i;
	return t;
}

#endif
