/*
 * metrics_hole.c - an LD_PRELOAD module for test_load.py's metrics-hole:
 * weft_runtime_metrics fails with -ENOMEM on its 2nd, 3rd and 4th calls
 * (weft-load's 2nd to 4th progress samples), as it does when a snapshot
 * cannot be allocated, and calls libweft's otherwise. With
 * METRICS_HOLE_FROM=N in the environment, every call from the Nth on
 * fails instead (1: all of them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <weft/metrics.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int weft_runtime_metrics(struct weft_runtime *rt, struct weft_metrics **out)
{
	static atomic_int calls;
	int n = atomic_fetch_add(&calls, 1) + 1;
	const char *from = getenv("METRICS_HOLE_FROM");
	if (from ? n >= atoi(from) : n >= 2 && n <= 4)
		return -ENOMEM;
	int (*real)(struct weft_runtime *, struct weft_metrics **) =
		(int (*)(struct weft_runtime *, struct weft_metrics **))dlsym(RTLD_NEXT, "weft_runtime_metrics");
	return real(rt, out);
}
