/*
 * swap_plugin.c - two plugins for swap_host (schedtop_longpoll_swap), built
 * from this file with SWAP_FN defined to a_first_plugin_fn and to
 * b_second_plugin_fn: the same code at the same offset, so the second,
 * loaded where the first was, has its function at the first's address.
 * It spins *(double *)state seconds in one poll.
 */
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((visibility("default"))) int SWAP_FN(void *state, void *cx);
int SWAP_FN(void *state, void *cx)
{
	(void)cx;
	double end = now_s() + *(double *)state;
	volatile unsigned long x = 0;
	while (now_s() < end)
		x++;
	return 0; /* WEFT_READY */
}
