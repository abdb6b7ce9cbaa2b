/*
 * registry.c - which worker thread holds which core.
 *
 * Readers (anyone who wakes a worker: notifiers on any thread) load a
 * core's slot with acquire and unpark the worker found there, with no lock.
 * Writers (a thread taking up a core: at start, or a spare taking a core
 * handed over by block_in_place) store themselves with release. There is
 * no grace period: worker structs are type-stable - the first thread of
 * each core lives in rt->workers, every other one (a spare, blocking.c) is
 * kept on the runtime's list until destroy - so a reader that loaded the
 * previous holder still touches a live parker, and at worst wakes a thread
 * that no longer holds the core: a spurious wake, which every park loop
 * absorbs. It cannot miss the holder it has to wake: a notifier unparks a
 * core it took off the sleepers list, the core's holder listed it (under
 * the idle lock) after storing itself here, and a sleeping core does not
 * change hands (only its driver, running a task, gives it away).
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

int weft__registry_init(struct weft_runtime *rt)
{
	/* a slot for every core the runtime may grow to */
	struct weft__registry *r = weft__calloc(1, sizeof(struct weft__registry));
	if (!r)
		return -ENOMEM;
	rt->registry = r;
	return 0;
}

void weft__registry_set(struct weft_runtime *rt, unsigned core, struct weft__worker *w)
{
	/* release: a reader that sees w sees it initialised (its parker). */
	atomic_store_explicit(&rt->registry->holder[core], w, memory_order_release);
}

void weft__registry_unpark(struct weft_runtime *rt, unsigned core)
{
	struct weft__worker *w =
		atomic_load_explicit(&rt->registry->holder[core], memory_order_acquire);
	if (w)
		weft__parker_unpark(&w->parker);
}

uint64_t weft__registry_tid(struct weft_runtime *rt, unsigned core)
{
	struct weft__worker *w =
		atomic_load_explicit(&rt->registry->holder[core], memory_order_acquire);
	return w ? (uint64_t)atomic_load_explicit(&w->tid, memory_order_relaxed) : 0;
}

void weft__registry_fini(struct weft_runtime *rt)
{
	weft__free(rt->registry);
}
