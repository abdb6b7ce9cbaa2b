/*
 * test_wake_gap.c - single-waiter wakes (notify_one, cond_signal, a permit
 * passed on by a cancelled waiter) that run while a notify_all / broadcast
 * is between two batches of wakes. Driven by hand, as test_sync_order.c:
 * the hook in the first woken waiter's wake runs with the object's lock
 * dropped and the older waiters of the second batch still linked (each
 * hook runs once: it clears itself).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "runtime.h"
#include "../common/hand_cx.h" /* after runtime.h: struct weft_cx */

#define NW 17 /* one more than a batch of wakes */

struct waiter { struct hand_cx c; struct weft_wait w; };

/* ------------------------------------------------------------- notify */

static struct weft_notify *nt;
static struct waiter nw[NW + 2];

static void notify_one_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	/* After notify_all began: a new waiter, then a notify_one. */
	if (weft_notify_wait_poll(nt, &nw[NW].w, &nw[NW].c.cx) != WEFT_PENDING)
		return;
	weft_notify_one(nt);
}

Test(notify_gap, notify_one_during_notify_all_is_not_absorbed)
{
	cr_assert_eq(weft_notify_create(&nt), 0);
	for (int i = 0; i < NW + 2; i++) {
		hc_init(&nw[i].c);
		nw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
	}
	for (int i = 0; i < NW; i++)
		cr_assert_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), WEFT_PENDING);
	nw[0].c.on_wake = notify_one_in_gap;
	cr_assert_eq(weft_notify_all(nt), 0);
	for (int i = 0; i < NW; i++) {
		cr_expect_eq(atomic_load(&nw[i].c.woke), 1, "waiter %d woken %d times", i,
			     atomic_load(&nw[i].c.woke));
		cr_expect_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), 0);
	}
	/* The notify_one came after the new waiter linked and after notify_all
	 * had released every older waiter: it is the new waiter's (or, at the
	 * least, a stored permit). */
	int late = weft_notify_wait_poll(nt, &nw[NW].w, &nw[NW].c.cx);
	int fresh = weft_notify_wait_poll(nt, &nw[NW + 1].w, &nw[NW + 1].c.cx);
	cr_expect(late == 0 || fresh == 0,
		  "the notify_one was lost: the waiter linked before it sleeps (woke %d), "
		  "and no permit is stored", atomic_load(&nw[NW].c.woke));
	weft_wait_cancel(&nw[NW].w);
	weft_wait_cancel(&nw[NW + 1].w);
	cr_assert_eq(weft_notify_destroy(nt), 0);
}

/* A waiter holding notify_one's permit is cancelled while a notify_all is
 * between batches: the permit goes to a waiter notify_all has not
 * released, not to one it is about to release anyway. */
static struct weft_wait perm_w = WEFT_WAIT_INIT;

static void cancel_permit_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	if (weft_notify_wait_poll(nt, &nw[NW].w, &nw[NW].c.cx) != WEFT_PENDING)
		return;
	weft_wait_cancel(&perm_w); /* passes its notify_one permit on */
}

Test(notify_gap, permit_passed_on_during_notify_all_is_not_absorbed)
{
	cr_assert_eq(weft_notify_create(&nt), 0);
	for (int i = 0; i < NW + 2; i++) {
		hc_init(&nw[i].c);
		nw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
	}
	/* perm_w takes the stored permit at enable. */
	cr_assert_eq(weft_notify_one(nt), 0);
	cr_assert_eq(weft_notify_enable(nt, &perm_w), 0);
	for (int i = 0; i < NW; i++)
		cr_assert_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), WEFT_PENDING);
	nw[0].c.on_wake = cancel_permit_in_gap;
	cr_assert_eq(weft_notify_all(nt), 0);
	for (int i = 0; i < NW; i++)
		cr_expect_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), 0);
	int late = weft_notify_wait_poll(nt, &nw[NW].w, &nw[NW].c.cx);
	int fresh = weft_notify_wait_poll(nt, &nw[NW + 1].w, &nw[NW + 1].c.cx);
	cr_expect(late == 0 || fresh == 0,
		  "the permit passed on by the cancelled waiter was lost");
	weft_wait_cancel(&nw[NW].w);
	weft_wait_cancel(&nw[NW + 1].w);
	cr_assert_eq(weft_notify_destroy(nt), 0);
}

/* A waiter of the notify_all's second batch polled in the gap: the
 * notify_all released it (it was linked before the call), so it says 0
 * there, as it would after its batch. Before, WEFT_PENDING (found by a
 * review, beside the wait group's). */
static int nt_gap_rc = 1;

static void poll_last_notified_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	nt_gap_rc = weft_notify_wait_poll(nt, &nw[NW - 1].w, &nw[NW - 1].c.cx);
}

Test(notify_gap, waiter_of_a_later_batch_polled_in_the_gap_was_notified)
{
	cr_assert_eq(weft_notify_create(&nt), 0);
	for (int i = 0; i < NW; i++) {
		hc_init(&nw[i].c);
		nw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), WEFT_PENDING);
	}
	nw[0].c.on_wake = poll_last_notified_in_gap;
	cr_assert_eq(weft_notify_all(nt), 0);
	cr_expect_eq(nt_gap_rc, 0, "released, polled in the gap: %d", nt_gap_rc);
	for (int i = 0; i < NW - 1; i++)
		cr_expect_eq(weft_notify_wait_poll(nt, &nw[i].w, &nw[i].c.cx), 0, "waiter %d", i);
	/* no permit was stored, and the entry that said 0 is idle */
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_notify_wait_poll(nt, &w, &h.cx), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_notify_destroy(nt), 0, "the entry that said 0 is idle");
}

/* --------------------------------------------------------------- cond */

static struct weft_cond *cv;
static struct weft_mutex *mx;
static struct waiter cw[NW + 1];

static void signal_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	/* A new waiter (holding the mutex, as it must), then a signal. */
	if (weft_mutex_try_lock(mx) != 0)
		return;
	if (weft_cond_wait_poll(cv, mx, &cw[NW].w, &cw[NW].c.cx) != WEFT_PENDING)
		return;
	weft_cond_signal(cv);
}

Test(cond_gap, signal_during_broadcast_is_not_absorbed)
{
	cr_assert_eq(weft_cond_create(&cv), 0);
	cr_assert_eq(weft_mutex_create(&mx), 0);
	for (int i = 0; i < NW + 1; i++) {
		hc_init(&cw[i].c);
		cw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
	}
	for (int i = 0; i < NW; i++) {
		cr_assert_eq(weft_mutex_try_lock(mx), 0);
		cr_assert_eq(weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx), WEFT_PENDING);
	}
	cw[0].c.on_wake = signal_in_gap;
	cr_assert_eq(weft_cond_broadcast(cv), 0);
	for (int i = 0; i < NW; i++)
		cr_expect_eq(atomic_load(&cw[i].c.woke), 1, "waiter %d", i);
	cr_expect_eq(atomic_load(&cw[NW].c.woke), 1,
		     "the signal was lost: the waiter that linked before it sleeps");
	/* Drain: every waiter takes the mutex in turn. */
	for (int i = 0; i < NW + 1; i++) {
		int rc = weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx);
		if (rc == 0)
			cr_assert_eq(weft_mutex_unlock(mx), 0);
		else
			weft_wait_cancel(&cw[i].w);
	}
	for (int i = 0; i < NW + 1; i++)
		weft_wait_cancel(&cw[i].w);
	cr_assert_eq(weft_cond_destroy(cv), 0);
	cr_assert_eq(weft_mutex_destroy(mx), 0);
}

/* The same for a signal passed on by a cancelled waiter: P holds a signal
 * (not yet collected) and gives up while a broadcast is between batches. */
static struct waiter cp;

static void cancel_signalled_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	if (weft_mutex_try_lock(mx) != 0)
		return;
	if (weft_cond_wait_poll(cv, mx, &cw[NW].w, &cw[NW].c.cx) != WEFT_PENDING)
		return;
	weft_wait_cancel(&cp.w); /* passes its signal on */
}

Test(cond_gap, signal_passed_on_during_broadcast_is_not_absorbed)
{
	cr_assert_eq(weft_cond_create(&cv), 0);
	cr_assert_eq(weft_mutex_create(&mx), 0);
	hc_init(&cp.c);
	cp.w = (struct weft_wait)WEFT_WAIT_INIT;
	for (int i = 0; i < NW + 1; i++) {
		hc_init(&cw[i].c);
		cw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
	}
	cr_assert_eq(weft_mutex_try_lock(mx), 0);
	cr_assert_eq(weft_cond_wait_poll(cv, mx, &cp.w, &cp.c.cx), WEFT_PENDING);
	cr_assert_eq(weft_cond_signal(cv), 0);
	cr_assert_eq(atomic_load(&cp.c.woke), 1, "P holds the signal");
	for (int i = 0; i < NW; i++) {
		cr_assert_eq(weft_mutex_try_lock(mx), 0);
		cr_assert_eq(weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx), WEFT_PENDING);
	}
	cw[0].c.on_wake = cancel_signalled_in_gap;
	cr_assert_eq(weft_cond_broadcast(cv), 0);
	for (int i = 0; i < NW; i++)
		cr_expect_eq(atomic_load(&cw[i].c.woke), 1, "waiter %d", i);
	cr_expect_eq(atomic_load(&cw[NW].c.woke), 1,
		     "the signal P passed on was lost: the waiter that linked before it sleeps");
	for (int i = 0; i < NW + 1; i++) {
		int rc = weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx);
		if (rc == 0)
			cr_assert_eq(weft_mutex_unlock(mx), 0);
	}
	for (int i = 0; i < NW + 1; i++)
		weft_wait_cancel(&cw[i].w);
	cr_assert_eq(weft_cond_destroy(cv), 0);
	cr_assert_eq(weft_mutex_destroy(mx), 0);
}

/* A waiter of the broadcast's second batch polled in the gap: the
 * broadcast released it, so it goes on to the mutex there (free: it takes
 * it and says 0). Before, WEFT_PENDING until its batch came (found by a
 * review, beside notify's). */
static int cv_gap_rc = 1;

static void poll_last_broadcast_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	cv_gap_rc = weft_cond_wait_poll(cv, mx, &cw[NW - 1].w, &cw[NW - 1].c.cx);
	if (cv_gap_rc == 0)
		weft_mutex_unlock(mx);
}

Test(cond_gap, waiter_of_a_later_batch_polled_in_the_gap_was_woken)
{
	cr_assert_eq(weft_cond_create(&cv), 0);
	cr_assert_eq(weft_mutex_create(&mx), 0);
	for (int i = 0; i < NW; i++) {
		hc_init(&cw[i].c);
		cw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_mutex_try_lock(mx), 0);
		cr_assert_eq(weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx), WEFT_PENDING);
	}
	cw[0].c.on_wake = poll_last_broadcast_in_gap;
	cr_assert_eq(weft_cond_broadcast(cv), 0);
	cr_expect_eq(cv_gap_rc, 0, "released, polled in the gap: %d", cv_gap_rc);
	for (int i = 0; i < NW - 1; i++) {
		cr_expect_eq(weft_cond_wait_poll(cv, mx, &cw[i].w, &cw[i].c.cx), 0, "waiter %d", i);
		cr_assert_eq(weft_mutex_unlock(mx), 0);
	}
	cr_assert_eq(weft_cond_destroy(cv), 0, "the entry that said 0 is idle");
	cr_assert_eq(weft_mutex_destroy(mx), 0);
}

/* ---------------------------------------------------------- waitgroup */

/* The counter reaches zero with 17 waiters linked: the last one sits in the
 * second batch of wakes. Polled in the gap it was released already (sync.h:
 * every waiter linked when the counter reaches zero is), so it says 0 - a
 * poll task that polls once more before giving up, or a timed wait whose
 * time runs out there, learns it. Before, it said WEFT_PENDING until its
 * batch came (found by a review; the barrier had the same fixed). */
static struct weft_waitgroup *wg;
static struct waiter gw[NW];
static int gap_rc = 1;

static void poll_last_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	gap_rc = weft_waitgroup_wait_poll(wg, &gw[NW - 1].w, &gw[NW - 1].c.cx);
}

Test(waitgroup_gap, waiter_released_in_a_later_batch_says_so_in_the_gap)
{
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	cr_assert_eq(weft_waitgroup_add(wg, 1), 0);
	for (int i = 0; i < NW; i++) {
		hc_init(&gw[i].c);
		gw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_waitgroup_wait_poll(wg, &gw[i].w, &gw[i].c.cx), WEFT_PENDING);
	}
	gw[0].c.on_wake = poll_last_in_gap;
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	cr_expect_eq(gap_rc, 0, "released, polled in the gap: %d", gap_rc);
	/* the counter goes up again: the others were released all the same */
	cr_assert_eq(weft_waitgroup_add(wg, 1), 0);
	for (int i = 0; i < NW - 1; i++)
		cr_expect_eq(weft_waitgroup_wait_poll(wg, &gw[i].w, &gw[i].c.cx), 0, "waiter %d", i);
	cr_assert_eq(weft_waitgroup_add(wg, -1), 0);
	cr_assert_eq(weft_waitgroup_destroy(wg), 0, "the entry that said 0 is idle");
}

/* ---------------------------------------------------------- semaphore */

/* The semaphore is closed with 17 waiters linked: the last one sits in the
 * close's second batch. Polled in the gap it says -EPIPE, as every waiter
 * of a closed semaphore does (sync.h). Before, WEFT_PENDING until its batch
 * came (found by a review). */
static struct weft_sem *sm;
static struct waiter sw[NW];
static int sem_gap_rc = 1;

static void poll_last_closed_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	sem_gap_rc = weft_sem_acquire_n_poll(sm, 1, &sw[NW - 1].w, &sw[NW - 1].c.cx);
}

Test(sem_gap, waiter_of_a_later_batch_polled_in_the_gap_is_told_closed)
{
	cr_assert_eq(weft_sem_create(0, &sm), 0);
	for (int i = 0; i < NW; i++) {
		hc_init(&sw[i].c);
		sw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_sem_acquire_n_poll(sm, 1, &sw[i].w, &sw[i].c.cx), WEFT_PENDING);
	}
	sw[0].c.on_wake = poll_last_closed_in_gap;
	cr_assert_eq(weft_sem_close(sm), 0);
	cr_expect_eq(sem_gap_rc, -EPIPE, "closed, polled in the gap: %d", sem_gap_rc);
	for (int i = 0; i < NW - 1; i++)
		cr_expect_eq(weft_sem_acquire_n_poll(sm, 1, &sw[i].w, &sw[i].c.cx), -EPIPE,
			     "waiter %d", i);
	cr_assert_eq(weft_sem_destroy(sm), 0, "the entry that said -EPIPE is idle");
}

/* ------------------------------------------------------------- rwlock */

/* A writer unlocks with 17 readers linked: every one of them gets the read
 * lock, the last in the unlock's second batch. Polled in the gap it holds
 * the lock and says 0, as sync.h says. Before, it said WEFT_PENDING until
 * its batch came (found by a review). */
static struct weft_rwlock *rl;
static struct waiter rw[NW];
static int rw_gap_rc = 1;

static void poll_last_reader_in_gap(struct hand_cx *c)
{
	c->on_wake = NULL; /* once */
	rw_gap_rc = weft_rwlock_read_poll(rl, &rw[NW - 1].w, &rw[NW - 1].c.cx);
}

Test(rwlock_gap, reader_of_a_later_batch_polled_in_the_gap_holds_the_lock)
{
	cr_assert_eq(weft_rwlock_create(&rl), 0);
	cr_assert_eq(weft_rwlock_try_write(rl), 0);
	for (int i = 0; i < NW; i++) {
		hc_init(&rw[i].c);
		rw[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_rwlock_read_poll(rl, &rw[i].w, &rw[i].c.cx), WEFT_PENDING);
	}
	rw[0].c.on_wake = poll_last_reader_in_gap;
	cr_assert_eq(weft_rwlock_write_unlock(rl), 0);
	cr_expect_eq(rw_gap_rc, 0, "released, polled in the gap: %d", rw_gap_rc);
	cr_expect_eq(atomic_load(&rw[NW - 1].c.woke), 0, "its own poll took it: no wake left");
	for (int i = 0; i < NW - 1; i++) {
		cr_expect_eq(atomic_load(&rw[i].c.woke), 1, "reader %d woken", i);
		cr_expect_eq(weft_rwlock_read_poll(rl, &rw[i].w, &rw[i].c.cx), 0, "reader %d", i);
	}
	cr_assert_eq(weft_rwlock_try_write(rl), -EBUSY, "held by the readers");
	for (int i = 0; i < NW; i++)
		cr_assert_eq(weft_rwlock_read_unlock(rl), 0, "hold %d", i);
	cr_assert_eq(weft_rwlock_read_unlock(rl), -EPERM, "exactly %d holds", NW);
	cr_assert_eq(weft_rwlock_destroy(rl), 0, "every entry idle, nothing held");
}
