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
	for (long i = 0; i < 8; i++) {
		c[i] = (struct counter){ .left = 3, .id = i };
		weft_spawn_poll(rt, count_down, &c[i], NULL, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		void *r;
		if (weft_join(t[i], &r) == 0)
			printf("task %d -> %ld\n", i, (long)r);
	}
	return weft_runtime_destroy(rt) ? 1 : 0;
}
