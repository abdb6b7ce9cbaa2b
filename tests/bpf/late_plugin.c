/*
 * late_plugin.c - the plugin late_target dlopens: a weft runtime running
 * waves of jobs spawned from one worker (the others must steal), then shut
 * down. Linked with libweft, so dlopen maps libweft too.
 */
#include <stdlib.h>
#include <time.h>
#include <weft/weft.h>

static enum weft_poll job(void *state, struct weft_cx *cx)
{
	int *yields = state;
	volatile unsigned x = 0;
	for (int i = 0; i < 2000; i++)
		x += (unsigned)i;
	if ((*yields)-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	return WEFT_READY;
}

static enum weft_poll spawner(void *state, struct weft_cx *cx)
{
	(void)state;
	for (int i = 0; i < 600; i++) {
		int *y = malloc(sizeof(*y));
		if (!y)
			abort();
		*y = 3;
		if (weft_spawn_poll(weft_cx_runtime(cx), job, y, free, NULL))
			abort();
	}
	return WEFT_READY;
}

__attribute__((visibility("default"))) int late_run(int workers, int waves)
{
	WEFT_OPTS(weft_runtime_opts, o, .workers = workers);
	struct weft_runtime *rt;
	if (weft_runtime_create(&o, &rt))
		return 1;
	for (int w = 0; w < waves; w++) {
		struct weft_task *t;
		if (weft_spawn_poll(rt, spawner, NULL, NULL, &t) || weft_join(t, NULL))
			return 1;
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	if (weft_runtime_shutdown(rt, 5000000000ull))
		return 1;
	return weft_runtime_destroy(rt) ? 1 : 0;
}
