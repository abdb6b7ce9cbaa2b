/*
 * fuzz_ring.c - lib/sched/queue.c (the per-core ring) against a sequential model.
 *
 * Two rings, A and B, both driven by the fuzzer thread (single-threaded:
 * the ring's concurrency is covered by tests/queue and tests/tsan). Each
 * input byte picks an operation:
 *   push to A/B (weft__ring_push_owner; on overflow the model predicts the
 *   oldest 128 plus the new task, in order), push a batch to A/B
 *   (weft__ring_push_batch_owner, at most weft__ring_free_owner), pop A/B
 *   (FIFO), steal A->B / B->A (ceil(n/2) of the oldest, the last one
 *   returned, nothing if the thief's ring is more than half full).
 * After every step: weft__ring_len and weft__ring_free_owner agree with the
 * model. At the end every task pushed is accounted for exactly once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "task.h"
#include "tlist.h"

#include "fuzz_check.h"

#define MAXT 4096

static struct weft__ring ring[2]; /* static: honours _Alignas(128) */
static struct weft_task tasks[MAXT];
static unsigned char seen[MAXT];

/* The model: a FIFO of task ids per ring. */
struct fifo {
	uint32_t v[WEFT_RING_CAP];
	unsigned head, n;
};
static struct fifo model[2];

static void f_push(struct fifo *f, uint32_t id)
{
	CHECK(f->n < WEFT_RING_CAP);
	f->v[(f->head + f->n++) % WEFT_RING_CAP] = id;
}
static uint32_t f_pop(struct fifo *f)
{
	CHECK(f->n > 0);
	uint32_t id = f->v[f->head];
	f->head = (f->head + 1) % WEFT_RING_CAP;
	f->n--;
	return id;
}

static void consume(struct weft_task *t)
{
	CHECK(t >= tasks && t < tasks + MAXT);
	CHECK(!seen[t->id]);
	seen[t->id] = 1;
}

static void check_len(void)
{
	for (int r = 0; r < 2; r++) {
		CHECK(weft__ring_len(&ring[r]) == model[r].n);
		CHECK(weft__ring_free_owner(&ring[r]) == WEFT_RING_CAP - model[r].n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t next = 0;
	for (int r = 0; r < 2; r++) {
		weft__ring_init(&ring[r]);
		memset(&model[r], 0, sizeof(model[r]));
	}
	memset(seen, 0, sizeof(seen));
	size_t i = 0;
	while (i < size) {
		uint8_t op = data[i++];
		int r = op & 1, o = !r;
		switch ((op >> 1) % 5) {
		case 0: { /* push one, or a run of pushes */
			unsigned cnt = 1 + (op >> 4) * ((op & 8) ? 37 : 1);
			for (unsigned k = 0; k < cnt && next < MAXT; k++) {
				struct weft_task *t = &tasks[next];
				memset(t, 0, sizeof(*t));
				t->id = next++;
				struct weft__tlist over = WEFT__TLIST_INIT;
				unsigned rc = weft__ring_push_owner(&ring[r], t, &over);
				if (model[r].n < WEFT_RING_CAP) {
					CHECK(rc == 0 && over.n == 0);
					f_push(&model[r], t->id);
				} else {
					/* full, no thief: oldest half + t, in order */
					CHECK(rc == WEFT_RING_CAP / 2 + 1 && over.n == rc);
					for (unsigned j = 0; j < WEFT_RING_CAP / 2; j++) {
						struct weft_task *x = weft__tlist_pop(&over);
						CHECK(x && x->id == f_pop(&model[r]));
						consume(x);
					}
					struct weft_task *x = weft__tlist_pop(&over);
					CHECK(x == t && !weft__tlist_pop(&over));
					consume(x);
				}
			}
			break;
		}
		case 1: { /* batch push, bounded by the free space */
			unsigned want = i < size ? data[i++] : 1;
			unsigned room = weft__ring_free_owner(&ring[r]);
			if (want > room)
				want = room;
			struct weft__tlist b = WEFT__TLIST_INIT;
			for (unsigned k = 0; k < want && next < MAXT; k++) {
				struct weft_task *t = &tasks[next];
				memset(t, 0, sizeof(*t));
				t->id = next++;
				weft__tlist_push(&b, t);
				f_push(&model[r], t->id);
			}
			weft__ring_push_batch_owner(&ring[r], &b);
			CHECK(b.n == 0);
			break;
		}
		case 2: case 3: { /* pop (weighted) */
			struct weft_task *t = weft__ring_pop_owner(&ring[r]);
			if (!model[r].n) {
				CHECK(t == NULL);
			} else {
				CHECK(t && t->id == f_pop(&model[r]));
				consume(t);
			}
			break;
		}
		case 4: { /* steal from o into r */
			unsigned got = 0, depth = 0;
			struct weft_task *t = weft__ring_steal(&ring[o], &ring[r], &got, &depth);
			unsigned n = model[o].n;
			if (model[r].n > WEFT_RING_CAP / 2 || n == 0) {
				CHECK(t == NULL);
				break;
			}
			unsigned take = n - n / 2;
			CHECK(t && got == take && depth == n);
			for (unsigned j = 0; j + 1 < take; j++)
				f_push(&model[r], f_pop(&model[o]));
			CHECK(t->id == f_pop(&model[o]));
			consume(t);
			break;
		}
		}
		check_len();
	}
	/* Drain: everything left comes out in model order, exactly once. */
	for (int r = 0; r < 2; r++) {
		struct weft_task *t;
		while ((t = weft__ring_pop_owner(&ring[r]))) {
			CHECK(t->id == f_pop(&model[r]));
			consume(t);
		}
		CHECK(model[r].n == 0);
	}
	for (uint32_t k = 0; k < next; k++)
		CHECK(seen[k]);
	return 0;
}
