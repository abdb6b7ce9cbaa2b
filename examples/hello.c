/* hello.c - spawn poll tasks that yield a few times, then join them. */
#include <stdio.h>
#include <weft/weft.h>

struct counter { int left; long id; };

static enum weft_poll count_down(void *state, struct weft_cx *cx)
{
	struct counter *c = state;
	if (c->left-- > 0) { /* yield: wake ourselves, let others run */
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	weft_cx_set_result(cx, (void *)(c->id * c->id));
	return WEFT_READY;
}

int main(void)
{
	struct weft_runtime *rt;
	struct counter c[8];
	struct weft_task *t[8];
	int rc = weft_runtime_create(NULL, &rt); /* one worker per CPU */
	if (rc) { fprintf(stderr, "create: %s\n", weft_strerror(rc)); return 1; }
	int n = 0;
	for (; n < 8; n++) {
		c[n] = (struct counter){ .left = 3, .id = n };
		if ((rc = weft_spawn_poll(rt, count_down, &c[n], NULL, &t[n]))) {
			fprintf(stderr, "spawn: %s\n", weft_strerror(rc));
			break; /* t[n] was not set: join only the tasks spawned */
		}
	}
	for (int i = 0; i < n; i++) {
		void *r;
		if (weft_join(t[i], &r) == 0)
			printf("task %d -> %ld\n", i, (long)r);
	}
	return weft_runtime_destroy(rt) || n < 8 ? 1 : 0;
}
