/* fibers.c - producers and a consumer as plain functions on fibers. */
#include <stdio.h>
#include <weft/weft.h>

static struct weft_chan *ch;
static void *produce(void *arg)
{
	for (long i = 1; i <= 1000; i++) {
		long v = (long)arg * 1000 + i;
		if (weft_chan_send(ch, &v)) /* suspends this fiber while the channel is full */
			break; /* closed */
	}
	return NULL;
}

int main(void)
{
	struct weft_runtime *rt; struct weft_task *p[4];
	long v, sum = 0;
	int np = 0, rc;
	if (weft_runtime_create(NULL, &rt) || weft_chan_create(sizeof(long), 16, &ch))
		return 1;
	for (; np < 4; np++)
		if ((rc = weft_spawn(rt, produce, (void *)(long)np, &p[np]))) {
			fprintf(stderr, "spawn: %s\n", weft_strerror(rc));
			weft_chan_close(ch); /* the producers spawned stop sending */
			break;
		}
	for (int n = 0; n < 4000 && weft_chan_recv(ch, &v) == 0; n++)
		sum += v; /* main is not a fiber: recv blocks this thread */
	for (int i = 0; i < np; i++)
		weft_join(p[i], NULL);
	if (np == 4)
		printf("sum %ld\n", sum); /* 6000000 + 4 * 500500 = 8002000 */
	return weft_chan_destroy(ch) || weft_runtime_destroy(rt) || np < 4;
}
