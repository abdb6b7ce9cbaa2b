/*
 * test_timer_cancel_race.c - weft_timer_cancel from a thread outside the
 * runtime, racing the timer's firing (weft/time.h allows it: the cancel
 * returns once the firing's wake has ended), while the task the firing woke arms the timer
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

#include <sys/wait.h>
#include <unistd.h>

#include <weft/time.h>

#include "runtime.h"
#include "wheel.h"

#define MS 1000000ull

void __real_weft__slock_lock_slow(struct weft__slock *l);
void __wrap_weft__slock_lock_slow(struct weft__slock *l);

static _Thread_local bool is_canceller;
static atomic_int stalled, go_on;

static atomic_int hold_owner, owner_held, owner_go;
static _Thread_local bool is_test_thread;

void __wrap_weft__slock_lock_slow(struct weft__slock *l)
{
	/* the second test: the first worker thread at a held lock */
	if (!is_test_thread && atomic_load(&hold_owner) && !atomic_exchange(&owner_held, 1)) {
		while (!atomic_load(&owner_go))
			wt_sleep_ms(1);
	}
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

/*
 * A cancel from another thread that lands while the timer's owner polls
 * it, between the owner's look (PENDING) and its take of the shard's
 * lock. weft/time.h: after a cancel the timer can be polled again for a
 * new deadline - and a poll just after a cancel arms it. This one found
 * the timer IDLE under the lock and said PENDING without arming it or
 * keeping the waker: the task slept for good (found by a review). The
 * wrapper holds the owner at the lock (the test holds the lock first, so
 * the owner takes the slow path) while the cancel runs.
 */
struct late { struct weft_timer t; _Atomic uint64_t deadline; weft_waker w; atomic_int polls; };

static enum weft_poll late_poll(void *state, struct weft_cx *cx)
{
	struct late *l = state;
	if (atomic_fetch_add(&l->polls, 1) == 0)
		l->w = weft_waker_clone(weft_cx_waker(cx));
	return weft_timer_poll(&l->t, cx, atomic_load(&l->deadline));
}

static struct weft__timer *late_inner(struct late *l) { return (struct weft__timer *)&l->t; }

static void late_drop(void *state)
{
	struct late *l = state;
	weft_timer_cancel(&l->t);
	weft_waker_drop(&l->w);
}

/* Spawn late_poll on l, its timer armed for deadline; the shard it went to. */
static struct weft__tshard *arm_late(struct weft_runtime *rt, struct late *l, uint64_t deadline,
				     struct weft_task **h)
{
	memset(l, 0, sizeof(*l));
	atomic_store(&l->deadline, deadline);
	cr_assert_eq(weft_spawn_poll(rt, late_poll, l, late_drop, h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&late_inner(l)->state) == TIMER_PENDING, WT_LONG_MS),
		  "never armed");
	return __atomic_load_n(&late_inner(l)->shard, __ATOMIC_ACQUIRE);
}

Test(timer_cancel, a_cancel_during_the_owners_poll_leaves_it_armed, .timeout = WT_TMO(30))
{
	is_test_thread = true;
	struct weft_runtime *rt = wt_rt_create(1);
	static struct late l;
	struct weft_task *h;
	struct weft__tshard *s = arm_late(rt, &l, weft_now_ns() + 1000 * MS, &h);
	/* the owner's next poll (a new deadline, which this poll may not
	 * take: it began with the timer still pending, whose first deadline
	 * counts) finds the lock held and is held back in the slow path */
	weft__slock_lock(&s->lock);
	atomic_store(&hold_owner, 1);
	atomic_store(&l.deadline, weft_now_ns() + 50 * MS);
	weft_waker_wake_by_ref(&l.w);
	bool held = WT_WAIT_UNTIL(atomic_load(&owner_held), WT_LONG_MS);
	weft__slock_unlock(&s->lock);
	cr_assert(held, "the owner's poll never waited for the shard's lock");
	weft_timer_cancel(&l.t); /* from this thread, the owner held */
	atomic_store(&owner_go, 1);
	void *r;
	int rc = weft_join_timeout(h, &r, 5000 * MS); /* it fires within 1 s */
	cr_assert_eq(rc, 0, "the poll that overlapped the cancel left the task waiting for good "
		     "(%d, %d polls; the timer %s)", rc, atomic_load(&l.polls),
		     atomic_load(&late_inner(&l)->state) == TIMER_IDLE ? "idle, not armed" : "armed");
	wt_rt_destroy(rt);
}

/*
 * A forked child cancelling a timer of the parent's runtime. The timer is
 * the parent's (time.h: nothing happens); the child took its shard's
 * lock, which a parent thread may have held at the fork, and spun on it
 * for good (found by a review). The test holds the lock across the fork.
 */
Test(timer_cancel, in_a_forked_child_is_a_no_op_that_takes_no_lock, .timeout = WT_TMO(30))
{
	is_test_thread = true;
	struct weft_runtime *rt = wt_rt_create(1);
	static struct late l;
	struct weft_task *h;
	struct weft__tshard *s = arm_late(rt, &l, weft_now_ns() + 3600000 * MS, &h);
	weft__slock_lock(&s->lock);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(5); /* a spin on the lock ends in SIGALRM */
		weft_timer_cancel(&l.t);
		_exit(0);
	}
	weft__slock_unlock(&s->lock);
	cr_assert_neq(pid, -1);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the child's cancel %s", WIFSIGNALED(st) ? "spun on the parent's shard lock"
							 : "failed");
	/* the parent's timer is untouched: still pending */
	cr_assert_eq(atomic_load(&late_inner(&l)->state), TIMER_PENDING);
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_join(h, NULL), -ECANCELED);
	wt_rt_destroy(rt);
}

/*
 * A cancel from another thread while the firing thread is inside the
 * timer's wake. weft_timer_cancel must not return before that wake ends:
 * "a timer cancelled from another core never fires" (issue 12) - nothing
 * of its firing may follow the return. It saw FIRED and returned at once,
 * the wake still running on the firer (found by a review). A waker of the
 * test's own whose wake takes a while (a cx of the test's making, so that
 * the firer is held inside the wake) shows it.
 */
static atomic_int slow_in_wake, slow_woken;

static void *slow_clone(void *d) { return d; }
static void slow_wake_by_ref(void *d)
{
	(void)d;
	atomic_store(&slow_in_wake, 1);
	wt_sleep_ms(300);
	atomic_store(&slow_woken, 1);
}
static void slow_wake(void *d) { slow_wake_by_ref(d); }
static void slow_drop(void *d) { (void)d; }

static const struct weft_waker_vtable slow_vtable = {
	.clone = slow_clone, .wake = slow_wake, .wake_by_ref = slow_wake_by_ref, .drop = slow_drop,
};

Test(timer_cancel, returns_only_after_a_wake_already_running, .timeout = WT_TMO(30))
{
	is_test_thread = true;
	struct weft_runtime *rt = wt_rt_create(1);
	static struct rearm r; /* its timer only */
	struct weft_timer *t = &r.t;
	unsigned budget = 64;
	struct weft_cx cx = { .rt = rt, .waker = { &slow_vtable, NULL }, .budget = &budget };
	cr_assert_eq(weft_timer_poll(t, &cx, weft_now_ns() + 20 * MS), WEFT_PENDING);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&slow_in_wake), WT_LONG_MS), "never fired");
	weft_timer_cancel(t); /* the firer is inside the wake */
	cr_assert(atomic_load(&slow_woken), "the timer's wake ran on after its cancel returned");
	cr_assert_eq(atomic_load(&inner(&r)->state), TIMER_IDLE);
	wt_rt_destroy(rt);
}

/*
 * weft_timer_poll in a forked child, on a timer armed in the parent's
 * runtime (the shard's lock held across the fork, as above). A cx of the
 * parent's runtime reads the clock only; a task of a runtime the child
 * made arms the timer anew there, for its own deadline. Both took the
 * parent's shard lock (the child spun on it for good), and the child's
 * task waited in the parent's wheel, which nobody in the child fires
 * (found by a review).
 */
static atomic_uint_fast64_t child_deadline;

static enum weft_poll child_timer_poll(void *state, struct weft_cx *cx)
{
	struct late *l = state;
	return weft_timer_poll(&l->t, cx, atomic_load(&child_deadline));
}

Test(timer_cancel, a_poll_in_a_forked_child_takes_no_lock, .timeout = WT_TMO(30))
{
	is_test_thread = true;
	struct weft_runtime *rt = wt_rt_create(1);
	static struct late l;
	struct weft_task *h;
	struct weft__tshard *s = arm_late(rt, &l, weft_now_ns() + 3600000 * MS, &h);
	weft__slock_lock(&s->lock);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10); /* a spin on the lock ends in SIGALRM */
		unsigned budget = 64;
		struct weft_cx cx = { .rt = rt, .waker = { &slow_vtable, NULL },
				      .budget = &budget };
		if (weft_timer_poll(&l.t, &cx, weft_now_ns() + 3600000 * MS) != WEFT_PENDING)
			_exit(2);
		if (weft_timer_poll(&l.t, &cx, weft_now_ns()) != WEFT_READY)
			_exit(3);
		WEFT_OPTS(weft_runtime_opts, o, .workers = 1);
		struct weft_runtime *crt;
		if (weft_runtime_create(&o, &crt))
			_exit(4);
		atomic_store(&child_deadline, weft_now_ns() + 20 * MS);
		struct weft_task *ch;
		if (weft_spawn_poll(crt, child_timer_poll, &l, NULL, &ch))
			_exit(5);
		if (weft_join_timeout(ch, NULL, 5000 * MS))
			_exit(6); /* waited in the parent's wheel */
		if (weft_now_ns() < atomic_load(&child_deadline))
			_exit(7);
		weft_runtime_destroy(crt);
		_exit(0);
	}
	weft__slock_unlock(&s->lock);
	cr_assert_neq(pid, -1);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's poll %s (exit %d)",
		  WIFSIGNALED(st) ? "spun on the parent's shard lock" : "failed",
		  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	/* the parent's timer is untouched: still pending */
	cr_assert_eq(atomic_load(&late_inner(&l)->state), TIMER_PENDING);
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_join(h, NULL), -ECANCELED);
	wt_rt_destroy(rt);
}

/*
 * weft_interval_reset in a forked child, on an interval whose timer is
 * armed in the parent's runtime. The timer is the parent's, as for
 * weft_timer_cancel above: the reset restarts the schedule and leaves the
 * timer alone. It cancelled it as in the parent - took the shard's lock,
 * which a parent thread may have held at the fork (the child spun on it
 * for good), and woke the parent's task in the child (found by a review).
 * The test holds the lock across the fork.
 */
struct iv_armed { struct weft_interval iv; atomic_int armed; };

static enum weft_poll iv_armed_poll(void *state, struct weft_cx *cx)
{
	struct iv_armed *a = state;
	if (weft_interval_poll_tick(&a->iv, cx) == WEFT_READY)
		return WEFT_READY;
	atomic_store(&a->armed, 1);
	return WEFT_PENDING;
}

static void iv_armed_drop(void *state)
{
	struct iv_armed *a = state;
	weft_interval_cancel(&a->iv);
}

Test(timer_cancel, an_interval_reset_in_a_forked_child_takes_no_lock, .timeout = WT_TMO(30))
{
	is_test_thread = true;
	struct weft_runtime *rt = wt_rt_create(1);
	static struct iv_armed a;
	cr_assert_eq(weft_interval_init(&a.iv, 3600000 * MS), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, iv_armed_poll, &a, iv_armed_drop, &h), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&a.armed), WT_LONG_MS), "never armed");
	struct weft__timer *in = (struct weft__timer *)&a.iv.timer;
	cr_assert_eq(atomic_load(&in->state), TIMER_PENDING);
	struct weft__tshard *s = __atomic_load_n(&in->shard, __ATOMIC_ACQUIRE);
	weft__slock_lock(&s->lock);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(5); /* a spin on the lock ends in SIGALRM */
		uint64_t before = weft_now_ns();
		if (weft_interval_reset(&a.iv, 1000 * MS) != 0)
			_exit(2);
		/* the schedule restarted all the same */
		_exit(a.iv.period_ns == 1000 * MS && a.iv.next_ns >= before + 1000 * MS ? 0 : 3);
	}
	weft__slock_unlock(&s->lock);
	cr_assert_neq(pid, -1);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the child's reset %s", WIFSIGNALED(st) ? "spun on the parent's shard lock"
							: "failed");
	/* the parent's timer is untouched: still pending */
	cr_assert_eq(atomic_load(&in->state), TIMER_PENDING);
	cr_assert_eq(weft_abort(h), 0);
	cr_assert_eq(weft_join(h, NULL), -ECANCELED);
	wt_rt_destroy(rt);
}
