/*
 * swap_host.c - a plugin host that unloads a plugin and loads another at
 * its addresses, then stalls in the second (schedtop_longpoll_swap).
 *
 *   swap_host PLUGIN_A PLUGIN_B SECONDS
 *
 * Starts a 2-worker runtime, dlopens PLUGIN_A, prints "ready PID" and waits
 * for SIGUSR1 (schedtop attaches meanwhile and reads the maps with A in
 * them); then dlcloses A, dlopens B, prints "a ADDR b ADDR" (A's function's
 * address while it was loaded, B's) and spawns a poll task running B's
 * b_second_plugin_fn, which spins SECONDS in one poll.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft/weft.h>

#include "ready_wait.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: swap_host PLUGIN_A PLUGIN_B SECONDS\n");
		return 2;
	}
	double secs = atof(argv[3]);
	WEFT_OPTS(weft_runtime_opts, o, .workers = 2);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt))
		return 1;
	void *a = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	void *fa = a ? dlsym(a, "a_first_plugin_fn") : NULL;
	if (!fa) {
		fprintf(stderr, "swap_host: %s\n", dlerror());
		return 1;
	}
	if (ready_wait())
		return 1;
	dlclose(a);
	void *b = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
	void *fb = b ? dlsym(b, "b_second_plugin_fn") : NULL;
	if (!fb) {
		fprintf(stderr, "swap_host: %s\n", dlerror());
		return 1;
	}
	printf("a %p b %p\n", fa, fb);
	fflush(stdout);
	enum weft_poll (*poll)(void *, struct weft_cx *);
	*(void **)&poll = fb;
	struct weft_task *t;
	if (weft_spawn_poll(rt, poll, &secs, NULL, &t) || weft_join(t, NULL))
		return 1;
	dlclose(b);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
