/*
 * spawn_fail.c - an LD_PRELOAD module for test_load.py's spawn-fail:
 * weft_spawn_poll refuses its 3rd and 4th calls with -ENOMEM (running the
 * drop first, as libweft does on an error), as a spawn does when no
 * memory is left; libweft's otherwise. weft_spawn refuses its 3rd call
 * with -EAGAIN, as a fiber's spawn does on a kernel without
 * MADV_GUARD_INSTALL once vm.max_map_count is spent (weft.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <weft/weft.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int weft_spawn_poll(struct weft_runtime *rt, weft_poll_fn poll, void *state,
			   weft_drop_fn drop, struct weft_task **out)
{
	static atomic_int calls;
	int n = atomic_fetch_add(&calls, 1) + 1;
	if (n == 3 || n == 4) {
		if (drop)
			drop(state);
		return -ENOMEM;
	}
	int (*real)(struct weft_runtime *, weft_poll_fn, void *, weft_drop_fn, struct weft_task **) =
		(int (*)(struct weft_runtime *, weft_poll_fn, void *, weft_drop_fn,
			 struct weft_task **))dlsym(RTLD_NEXT, "weft_spawn_poll");
	return real(rt, poll, state, drop, out);
}

EXPORT int weft_spawn(struct weft_runtime *rt, void *(*fn)(void *arg), void *arg,
		      struct weft_task **out)
{
	static atomic_int calls;
	if (atomic_fetch_add(&calls, 1) + 1 == 3)
		return -EAGAIN;
	int (*real)(struct weft_runtime *, void *(*)(void *), void *, struct weft_task **) =
		(int (*)(struct weft_runtime *, void *(*)(void *), void *,
			 struct weft_task **))dlsym(RTLD_NEXT, "weft_spawn");
	return real(rt, fn, arg, out);
}
