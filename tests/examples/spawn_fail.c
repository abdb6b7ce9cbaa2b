/*
 * spawn_fail.c - an LD_PRELOAD module for the example tests: one spawn
 * fails as it does when no task memory or stack can be had (-ENOMEM).
 *
 *   WEFT_TEST_FAIL_SPAWN=N    the Nth call of weft_spawn or weft_spawn_poll
 *                             (counted together, from 1) fails
 *   WEFT_TEST_FAIL_SPAWN=N+   that call and every later one fail
 *
 * Other calls go to libweft. A refused weft_spawn_poll runs drop(state), as
 * libweft's own refusals do (weft.h: drop runs whatever the spawn returned).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <weft/weft.h>

#define EXPORT __attribute__((visibility("default")))

static unsigned long calls;

static int should_fail(void)
{
	unsigned long k = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
	const char *s = getenv("WEFT_TEST_FAIL_SPAWN");
	char *end;
	if (!s)
		return 0;
	unsigned long n = strtoul(s, &end, 10);
	return k == n || (*end == '+' && k >= n);
}

EXPORT int weft_spawn(struct weft_runtime *rt, void *(*fn)(void *arg), void *arg,
		      struct weft_task **out)
{
	static int (*real)(struct weft_runtime *, void *(*)(void *), void *, struct weft_task **);
	if (should_fail())
		return -ENOMEM;
	if (!real)
		real = (int (*)(struct weft_runtime *, void *(*)(void *), void *, struct weft_task **))
			dlsym(RTLD_NEXT, "weft_spawn");
	return real(rt, fn, arg, out);
}

EXPORT int weft_spawn_poll(struct weft_runtime *rt, weft_poll_fn poll, void *state,
			   weft_drop_fn drop, struct weft_task **out)
{
	static int (*real)(struct weft_runtime *, weft_poll_fn, void *, weft_drop_fn,
			   struct weft_task **);
	if (should_fail()) {
		if (drop)
			drop(state);
		return -ENOMEM;
	}
	if (!real)
		real = (int (*)(struct weft_runtime *, weft_poll_fn, void *, weft_drop_fn,
				struct weft_task **))dlsym(RTLD_NEXT, "weft_spawn_poll");
	return real(rt, poll, state, drop, out);
}
