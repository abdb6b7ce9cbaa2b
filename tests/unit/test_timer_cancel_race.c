/*
 * test_timer_cancel_race.c - weft_timer_cancel from a thread outside the
 * runtime, racing the timer's firing (weft/time.h allows it: at most one
 * spurious wake follows), while the task the firing woke arms the timer
 * again at once - on the core it runs on now, so maybe in another core's
 * shard. Linked with -Wl,--wrap=weft__slock_lock_slow: the wrapper holds
 * the cancelling thread at the shard lock it found in the timer (the
 * test holds that lock a moment, so the cancel takes the slow path) until
 * the timer has fired and been armed again elsewhere; then lets it go.
 *
 * Before the fix the cancel, holding the old shard's lock and seeing the
 * timer PENDING, unlinked it from the old shard's wheel: that slot's head
 * was NULL (a crash), or another wheel's list was cut under the wrong
 * lock. It must cancel the timer where it is now: it never fires, and no
 * wheel holds it.
 */
#include "../common/wt.h"

#include <weft/time.h>

#include "runtime.h"
#include "wheel.h"

#define MS 1000000ull

void __real_weft__slock_lock_slow(struct weft__slock *l);
void __wrap_weft__slock_lock_slow(struct weft__slock *l);

static _Thread_local bool is_canceller;
static atomic_int stalled, go_on;

void __wrap_weft__slock_lock_slow(struct weft__slock *l)
{
	if (is_canceller && !atomic_load(&go_on)) {
		atomic_store(&stalled, 1);
		while (!atomic_load(&go_on))
			wt_sleep_ms(1);
	}
	__real_weft__slock_lock_slow(l);
}

struct rearm {
	struct weft_timer t;
	atomic_int armed, fires;
};

/* Arms its timer 100 ms out; each time it fires, at once again, 10 s out. */
static enum weft_poll rearm_poll(void *state, struct weft_cx *cx)
{
	struct rearm *r = state;
	for (;;) {
		uint64_t d = weft_now_ns() + (atomic_load(&r->fires) ? 10000 : 100 * WEFT_TEST_SLOW) * MS;
		if (weft_timer_poll(&r->t, cx, d) == WEFT_PENDING) {
			atomic_fetch_add(&r->armed, 1);
			return WEFT_PENDING;
		}
		atomic_fetch_add(&r->fires, 1);
	}
}

static void rearm_drop(void *state)
{
	struct rearm *r = state;
	weft_timer_cancel(&r->t);
}

static void *cancel_thread(void *arg)
{
	is_canceller = true;
	weft_timer_cancel(arg);
	return NULL;
}

static struct weft__timer *inner(struct rearm *r) { return (struct weft__timer *)&r->t; }

static struct weft__tshard *shard_of(struct rearm *r)
{
	return __atomic_load_n(&inner(r)->shard, __ATOMIC_ACQUIRE);
}

static uint64_t wheel_next(struct weft__tshard *sh)
{
	weft__slock_lock(&sh->lock);
	uint64_t n = weft__wheel_next(&sh->wheel);
	weft__slock_unlock(&sh->lock);
	return n;
}

Test(timer_cancel, from_a_thread_while_its_owner_arms_it_again_on_another_core,
     .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	static struct rearm r;
	int crossed = 0, attempts = 0;
	while (!crossed && attempts++ < 40) {
		memset(&r, 0, sizeof(r));
		atomic_store(&stalled, 0);
		atomic_store(&go_on, 0);
		struct weft_task *h;
		cr_assert_eq(weft_spawn_poll(rt, rearm_poll, &r, rearm_drop, &h), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&r.armed) == 1, WT_LONG_MS), "never armed");
		struct weft__tshard *s1 = shard_of(&r);
		/* the cancel finds the timer PENDING in s1 and waits for s1's
		 * lock: held here a moment, then the wrapper holds it back */
		weft__slock_lock(&s1->lock);
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, cancel_thread, &r.t), 0);
		bool at_lock = WT_WAIT_UNTIL(atomic_load(&stalled), WT_LONG_MS);
		weft__slock_unlock(&s1->lock);
		cr_assert(at_lock, "the cancel never waited for the shard's lock");
		/* the timer fires; its task arms it again where it runs */
		cr_assert(WT_WAIT_UNTIL(atomic_load(&r.armed) == 2, WT_LONG_MS), "never fired");
		struct weft__tshard *s2 = shard_of(&r);
		atomic_store(&go_on, 1);
		cr_assert_eq(pthread_join(th, NULL), 0);
		if (s2 != s1) {
			crossed = 1;
			cr_assert_eq(atomic_load(&inner(&r)->state), TIMER_IDLE,
				     "the timer armed in the other shard was not cancelled");
			cr_assert_eq(wheel_next(s2), UINT64_MAX, "the other shard still holds it");
			cr_assert_eq(wheel_next(s1), UINT64_MAX);
		}
		cr_assert_eq(weft_abort(h), 0);
		cr_assert_eq(weft_join(h, NULL), -ECANCELED);
		cr_assert_eq(atomic_load(&r.fires), 1, "fired after its cancel returned");
	}
	cr_log_info("armed again in another shard after %d attempt(s)", attempts);
	cr_assert(crossed, "the task never ran on the other core in %d attempts", attempts - 1);
	wt_rt_destroy(rt);
}
