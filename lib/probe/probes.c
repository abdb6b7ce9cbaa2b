/*
 * probes.c - the USDT semaphores (see probes.h). A tracer that attaches to a
 * probe increments its semaphore (the kernel does it for uprobes with a
 * reference counter offset); the library only reads them.
 */
#include <pthread.h>
#include <stddef.h>

#include "fiber.h"
#include "probes.h"
#include "runtime.h"
#include "task.h"

/* The registry (probe_abi.h). Exported: readers find it by its dynamic
 * symbol. Writers hold reg_lock; gen's release stores order the slot
 * writes for a reader that checks gen before and after. */
__attribute__((visibility("default"))) struct weft_probe_registry weft_probe_registry = {
	.magic = WEFT_PROBE_REG_MAGIC,
	.task_id_off = offsetof(struct weft_task, id),
	.task_poll_off = offsetof(struct weft_task, poll),
	.task_spawn_off = offsetof(struct weft_task, spawn_site),
	.ring_head_off = (long long)offsetof(struct weft__core, ring.head) -
			 (long long)offsetof(struct weft__core, c),
	.ring_tail_off = (long long)offsetof(struct weft__core, ring.tail) -
			 (long long)offsetof(struct weft__core, c),
	.fiber_magic = WEFT_PROBE_FIBER_MAGIC,
	.task_arg_off = offsetof(struct weft_task, arg),
	.fiber_fn_off = offsetof(struct weft__fiber, fn),
	.fiber_lazy_fn_off = offsetof(struct weft__stack, fn),
	.counters_size = sizeof(struct weft_probe_counters),
	/* fiber_poll, fiber_poll_lazy: at the first registration (static
	 * functions of fiber.c, weft__fiber_probe_polls) */
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runtimes created while every slot was taken, oldest first: each gets
 * the next slot that frees (one created while 16 were listed stayed
 * unlisted for good, even after the others were destroyed). */
static struct weft_runtime *reg_wait_head;

static void slot_write(struct weft_probe_registry *r, unsigned i, struct weft_runtime *rt)
{
	struct weft_probe_reg_slot *s = &r->slot[i];
	/* Seqlock writer: gen odd, the slot, gen even. Each store is a
	 * release, so none moves above the odd gen (no standalone fence:
	 * ThreadSanitizer rejects one). */
	__atomic_store_n(&r->gen, r->gen + 1, __ATOMIC_RELEASE);
	if (rt) {
		__atomic_store_n(&s->ncores, rt->n, __ATOMIC_RELEASE);
		__atomic_store_n(&s->counters, (uintptr_t)&rt->cores[0].c, __ATOMIC_RELEASE);
		__atomic_store_n(&s->stride, sizeof(rt->cores[0]), __ATOMIC_RELEASE);
		__atomic_store_n(&r->inject_len[i], (uintptr_t)&rt->inject.len, __ATOMIC_RELEASE);
		__atomic_store_n(&s->rt, (uintptr_t)rt, __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&s->rt, 0, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r->gen, r->gen + 1, __ATOMIC_RELEASE);
}

void weft__probe_register(struct weft_runtime *rt, bool add)
{
	struct weft_probe_registry *r = &weft_probe_registry;
	pthread_mutex_lock(&reg_lock);
	if (add && !r->fiber_poll) {
		/* before any fiber of any runtime exists, and before the slot
		 * is written (its gen bump publishes these too) */
		weft__fiber_probe_polls(&r->fiber_poll, &r->fiber_poll_lazy);
	}
	if (!add && rt->reg_waiting) { /* never listed: leave the queue */
		struct weft_runtime **pp = &reg_wait_head;
		while (*pp != rt)
			pp = &(*pp)->reg_wait_next;
		*pp = rt->reg_wait_next;
		rt->reg_waiting = false;
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	unsigned i;
	for (i = 0; i < WEFT_PROBE_REG_SLOTS; i++)
		if (r->slot[i].rt == (add ? 0 : (uintptr_t)rt))
			break;
	if (i == WEFT_PROBE_REG_SLOTS) {
		if (add) { /* every slot taken: queue for the next that frees */
			struct weft_runtime **pp = &reg_wait_head;
			while (*pp)
				pp = &(*pp)->reg_wait_next;
			rt->reg_wait_next = NULL;
			rt->reg_waiting = true;
			*pp = rt;
		}
	} else if (add) {
		slot_write(r, i, rt);
	} else if (reg_wait_head) { /* the freed slot goes to the oldest waiting */
		struct weft_runtime *next = reg_wait_head;
		reg_wait_head = next->reg_wait_next;
		next->reg_waiting = false;
		slot_write(r, i, next);
	} else {
		slot_write(r, i, NULL);
	}
	pthread_mutex_unlock(&reg_lock);
}

/* In a forked child (fork.c, from pthread_atfork): the parent's runtimes
 * did not come along, so the child's registry lists none of them (a
 * monitor of the child showed the parent's workers, and its task frozen
 * in a poll, as long polls), and the lock another parent thread may have
 * held at the fork is made anew (a create in the child could wait on it
 * for good). Found by a review. */
void weft__probe_after_fork(void)
{
	struct weft_probe_registry *r = &weft_probe_registry;
	pthread_mutex_init(&reg_lock, NULL);
	reg_wait_head = NULL;
	/* Odd from here on, even at the end, whatever the fork found: another
	 * parent thread between slot_write's two gen stores left it odd, and
	 * two increments kept it odd in the child for good (no reader's copy
	 * ever consistent again). */
	unsigned long long gen = r->gen | 1;
	__atomic_store_n(&r->gen, gen, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < WEFT_PROBE_REG_SLOTS; i++)
		__atomic_store_n(&r->slot[i].rt, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->gen, gen + 1, __ATOMIC_RELEASE);
}

void weft__probe_update(struct weft_runtime *rt)
{
	struct weft_probe_registry *r = &weft_probe_registry;
	pthread_mutex_lock(&reg_lock);
	for (unsigned i = 0; i < WEFT_PROBE_REG_SLOTS; i++) {
		struct weft_probe_reg_slot *s = &r->slot[i];
		if (s->rt != (uintptr_t)rt)
			continue;
		__atomic_store_n(&r->gen, r->gen + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&s->ncores, rt->n, __ATOMIC_RELEASE);
		__atomic_store_n(&r->gen, r->gen + 1, __ATOMIC_RELEASE);
		break;
	}
	pthread_mutex_unlock(&reg_lock);
}

#ifdef WEFT_WITH_PROBES
#define WEFT__DEFINE_SEMA(name) \
	volatile unsigned short WEFT__SEMA(name) __attribute__((section(".probes"))) = 0
WEFT__DEFINE_SEMA(runtime_create);
WEFT__DEFINE_SEMA(runtime_shutdown);
WEFT__DEFINE_SEMA(runtime_resize);
WEFT__DEFINE_SEMA(worker_start);
WEFT__DEFINE_SEMA(worker_stop);
WEFT__DEFINE_SEMA(steal);
WEFT__DEFINE_SEMA(steal_fail);
WEFT__DEFINE_SEMA(park);
WEFT__DEFINE_SEMA(unpark);
WEFT__DEFINE_SEMA(notify);
WEFT__DEFINE_SEMA(overflow);
WEFT__DEFINE_SEMA(maintenance);
WEFT__DEFINE_SEMA(block_in_place);
WEFT__DEFINE_SEMA(stall);
#else
typedef int weft__probes_disabled; /* keep the translation unit non-empty */
#endif
