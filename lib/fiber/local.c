/*
 * local.c - fiber-local values (weft.h, weft_local_get/set).
 *
 * A fiber's values live in one array, allocated on its first set and hung
 * off the fiber's header: (key, value) pairs in the order the keys were
 * first set. The header is reached through weft__ctx(), as every fiber
 * call does, and only the fiber itself (or, for a fiber discarded without
 * returning, the thread discarding it) touches the array: no locking.
 *
 * Keys are the addresses of the caller's static key objects, so there is
 * no registry and nothing to create. A lookup is a scan: fibers use a
 * handful of keys, and a scan of a few pairs on one or two lines beats a
 * hash there.
 *
 * When fn returns, weft__fiber_locals_end runs the dtors in rounds, as
 * pthread keys do at thread exit: a dtor may set values again, which a
 * later round destroys; in the last round a set is refused (-EBUSY), so
 * every value stored has had its dtor run when the array is freed.
 */
#include <errno.h>
#include <stddef.h>

#include "fiber.h"
#include "runtime.h"
#include "weft/weft.h"

struct weft__local_pair {
	const struct weft_local_key *key;
	void *value;
};

struct weft__locals {
	unsigned n, cap;
	unsigned round;        /* 0 while fn runs; r during the dtors' round r */
	struct weft__local_pair e[];
};

#define LOCALS_FIRST_CAP 4

static struct weft__fiber *running_fiber(void)
{
	struct weft__ctx *ctx = weft__ctx();
	if (!ctx)
		return NULL;
	/* inside weft_block_in_place the fiber's code runs as plain code on
	 * a thread that gave its core away: still that fiber's values */
	return ctx->fiber ? ctx->fiber : ctx->fiber_in_place;
}

void *weft_local_get(const struct weft_local_key *key)
{
	struct weft__fiber *f = running_fiber();
	if (!key || !f || !f->locals)
		return NULL;
	struct weft__locals *l = f->locals;
	for (unsigned i = 0; i < l->n; i++)
		if (l->e[i].key == key)
			return l->e[i].value;
	return NULL;
}

int weft_local_set(const struct weft_local_key *key, void *value)
{
	if (!key)
		return -EINVAL;
	struct weft__fiber *f = running_fiber();
	if (!f)
		return -EPERM;
	struct weft__locals *l = f->locals;
	if (l && value && l->round >= WEFT_LOCAL_DTOR_ROUNDS)
		return -EBUSY; /* no round is left to destroy it */
	if (l)
		for (unsigned i = 0; i < l->n; i++)
			if (l->e[i].key == key) {
				l->e[i].value = value;
				return 0;
			}
	if (!value)
		return 0; /* clearing a key never set: nothing to store */
	if (!l || l->n == l->cap) {
		unsigned cap = l ? l->cap * 2 : LOCALS_FIRST_CAP;
		struct weft__locals *nl =
			weft__malloc(offsetof(struct weft__locals, e) + cap * sizeof(nl->e[0]));
		if (!nl)
			return -ENOMEM; /* nothing stored; the old values stay */
		nl->n = 0;
		nl->round = 0;
		if (l) {
			nl->n = l->n;
			nl->round = l->round;
			for (unsigned i = 0; i < l->n; i++)
				nl->e[i] = l->e[i];
			weft__free(l);
		}
		nl->cap = cap;
		l = nl;
		f->locals = l;
	}
	l->e[l->n].key = key;
	l->e[l->n].value = value;
	l->n++;
	return 0;
}

void weft__fiber_locals_end(struct weft__fiber *f)
{
	for (unsigned round = 1; round <= WEFT_LOCAL_DTOR_ROUNDS; round++) {
		bool any = false;
		f->locals->round = round;
		/* f->locals is read again after each dtor: a set from the dtor
		 * may have moved the array. Pairs added meanwhile are reached
		 * in this round too. */
		for (unsigned i = 0; i < f->locals->n; i++) {
			struct weft__local_pair *p = &f->locals->e[i];
			void *v = p->value;
			if (!v)
				continue;
			p->value = NULL;
			any = true;
			if (p->key->dtor)
				p->key->dtor(v);
		}
		if (!any)
			break;
	}
	weft__free(f->locals);
	f->locals = NULL;
}

void weft__fiber_locals_discard(struct weft__fiber *f)
{
	/* Whatever this thread runs (a plain thread, or a fiber of another
	 * runtime calling shutdown, inside block_in_place or not) is set
	 * aside: the dtors see f as the running fiber, and their waits are
	 * refused as a cancelled fiber's are. Nothing else runs on this
	 * thread meanwhile. */
	struct weft__ctx *saved = weft__ctx();
	struct weft__ctx as_f = {
		.rt = f->rt,
		.fiber_in_place = f,
		.discarding = true,
		.home = saved ? saved->home : NULL, /* whose thread this is (runtime.c) */
	};
	weft__ctx_set(&as_f);
	weft__fiber_locals_end(f);
	weft__ctx_set(saved);
}
