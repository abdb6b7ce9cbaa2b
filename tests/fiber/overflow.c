/* overflow.c - a fiber that recurses without bound; weft must report the
 * task and abort (checked by overflow.sh). */
#include <stdio.h>
#include <weft/weft.h>

static volatile int limit = 1 << 30; /* never reached; hides the recursion from -Winfinite-recursion */

static int forever(int n)
{
	volatile char frame[1024];
	frame[0] = (char)n;
	if (n >= limit)
		return 0;
	return forever(n + 1) + frame[0];
}

static void *run(void *arg) { return (void *)(long)forever((int)(long)arg); }

int main(void)
{
	struct weft_runtime *rt;
	struct weft_task *t;
	if (weft_runtime_create(NULL, &rt))
		return 2;
	if (weft_spawn(rt, run, NULL, &t))
		return 2;
	printf("task %llu\n", (unsigned long long)weft_task_id(t));
	fflush(stdout);
	weft_join(t, NULL);
	return 3; /* not reached: the overflow aborts */
}
