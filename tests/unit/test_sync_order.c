/*
 * test_sync_order.c - wait-list schedules driven by hand, where the sync
 * primitives used to break their contract (found by reviews, sixteenth
 * and seventeenth sessions).
 *
 * The poll forms are driven from the test thread: each waiter has its own
 * weft_cx with a waker that counts its wakes (and may run a hook inside
 * the wake), so the wait lists are built in exactly the order the test
 * wants and every step is deterministic. No runtime is involved (one test
 * uses plain threads and the blocking forms).
 *
 * Channels - a later caller never overtakes a waiting one:
 *  1. Rendezvous: receiver R3 waits behind R1; R1 has been handed an item
 *     that it has not collected yet, and sender S waits because that item
 *     holds the channel's one slot. A new receiver must not take S's item:
 *     it is R3's once R1 collects.
 *  2. Buffered: a freed slot belongs to the first waiting sender even when
 *     reaching it takes more than one batch of wakes (arms of selects that
 *     another arm already won are woken and skipped, 15 per batch). A new
 *     sender that comes in while the batch is woken (here: from one of
 *     those wakes) must not take the slot.
 * Condition variable - a signal is never lost to a cancelled waiter, also
 * once that waiter has left the cond to queue for the mutex; destroy waits
 * for such a waiter; a waiter that times out while queued for the mutex
 * was signalled and keeps its place.
 * Broadcast and watch - one send wakes each waiter once, even when woken
 * receivers take the item and wait again while the send still runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <pthread.h>
#include <unistd.h>

#include "runtime.h"
#include "waitlist.h"
#include "../common/hand_cx.h" /* after runtime.h: struct weft_cx */

struct rx { struct hand_cx c; struct weft_wait w; uint64_t v; };
struct tx { struct hand_cx c; struct weft_wait w; uint64_t v; };

static void rx_init(struct rx *r) { hc_init(&r->c); r->w = (struct weft_wait)WEFT_WAIT_INIT; r->v = 0; }
static void tx_init(struct tx *t, uint64_t v) { hc_init(&t->c); t->w = (struct weft_wait)WEFT_WAIT_INIT; t->v = v; }
static int rx_poll(struct weft_chan *ch, struct rx *r) { return weft_chan_recv_poll(ch, &r->w, &r->c.cx, &r->v); }
static int tx_poll(struct weft_chan *ch, struct tx *t) { return weft_chan_send_poll(ch, &t->w, &t->c.cx, &t->v); }

Test(chan_order, rendezvous_new_receiver_waits_behind_earlier_ones)
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	struct rx r1, r3, r2;
	struct tx s;
	rx_init(&r1);
	rx_init(&r3);
	rx_init(&r2);
	tx_init(&s, 222);
	cr_assert_eq(rx_poll(ch, &r1), WEFT_PENDING);
	cr_assert_eq(rx_poll(ch, &r3), WEFT_PENDING);
	uint64_t a = 111;
	cr_assert_eq(weft_chan_try_send(ch, &a), 0, "a receiver waits: the send completes");
	cr_assert_eq(atomic_load(&r1.c.woke), 1, "the item went to the first receiver");
	cr_assert_eq(atomic_load(&r3.c.woke), 0);
	cr_assert_eq(tx_poll(ch, &s), WEFT_PENDING, "the item in transit holds the slot");

	/* A newcomer, while R3 waits and S's item is R3's next. */
	uint64_t x = 0;
	int rc = weft_chan_try_recv(ch, &x);
	cr_assert_eq(rc, -EAGAIN, "try_recv overtook a waiting receiver (rc %d, got %llu)", rc,
		     (unsigned long long)x);
	cr_assert_eq(rx_poll(ch, &r2), WEFT_PENDING, "a new receiver queues behind R3");
	cr_assert_eq(atomic_load(&s.c.woke), 0, "S's item is still S's");

	cr_assert_eq(rx_poll(ch, &r1), 0);
	cr_assert_eq(r1.v, 111);
	/* R1 collecting frees the slot: S's item goes straight to R3. */
	cr_assert_eq(atomic_load(&r3.c.woke), 1, "R3 was handed S's item");
	cr_assert_eq(atomic_load(&s.c.woke), 1, "S completed");
	cr_assert_eq(rx_poll(ch, &r3), 0);
	cr_assert_eq(r3.v, 222);
	cr_assert_eq(tx_poll(ch, &s), 0);
	cr_assert_eq(atomic_load(&r2.c.woke), 0);
	cr_assert_eq(rx_poll(ch, &r2), WEFT_PENDING);

	/* And the newcomer is served next, in turn. */
	uint64_t b = 333;
	cr_assert_eq(weft_chan_try_send(ch, &b), 0);
	cr_assert_eq(rx_poll(ch, &r2), 0);
	cr_assert_eq(r2.v, 333);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* Test 2's selects: arm 0 sends on the full buffered channel, arm 1 on a
 * rendezvous channel, where a receiver wins each select through arm 1. */
enum { NSEL = 16 };
static struct weft_chan *bch, *rch;
static struct hand_cx sel_cx[NSEL];
static struct weft_select_arm sel[NSEL][2];
static uint64_t sel_item[NSEL];
static int newcomer_rc = 1, newcomer_calls;

static void newcomer(struct hand_cx *c)
{
	(void)c;
	if (newcomer_calls++)
		return;
	uint64_t late = 999;
	newcomer_rc = weft_chan_try_send(bch, &late);
}

Test(chan_order, freed_slot_stays_the_waiting_senders_across_wake_batches)
{
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &bch), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &rch), 0);
	uint64_t first = 1;
	cr_assert_eq(weft_chan_try_send(bch, &first), 0); /* full */
	for (int i = 0; i < NSEL; i++) {
		hc_init(&sel_cx[i]);
		sel_item[i] = 100 + (uint64_t)i;
		sel[i][0] = WEFT_SEL_SEND(bch, &sel_item[i]);
		sel[i][1] = WEFT_SEL_SEND(rch, &sel_item[i]);
		size_t idx = 99;
		cr_assert_eq(weft_select_poll(sel[i], 2, &sel_cx[i].cx, &idx), WEFT_PENDING);
	}
	/* Each select is won through its rendezvous arm; their arms on bch
	 * stay linked (until each select is polled) and can no longer win. */
	for (int i = 0; i < NSEL; i++) {
		uint64_t x = 0;
		cr_assert_eq(weft_chan_try_recv(rch, &x), 0);
		cr_assert_eq(x, 100 + (uint64_t)i);
	}
	struct tx s;
	tx_init(&s, 7);
	cr_assert_eq(tx_poll(bch, &s), WEFT_PENDING, "full: S waits behind the arms");

	/* A slot frees. Reaching S takes two batches (15 skipped arms, then
	 * one more and S); a sender comes in from a wake of the first batch. */
	sel_cx[0].on_wake = newcomer;
	uint64_t x = 0;
	cr_assert_eq(weft_chan_try_recv(bch, &x), 0);
	cr_assert_eq(x, 1);
	cr_assert_eq(newcomer_calls, 1, "the hook ran once, inside the wakes");
	cr_assert_eq(newcomer_rc, -EAGAIN, "a new sender took the slot a waiting sender was owed (rc %d)",
		     newcomer_rc);
	cr_assert_eq(atomic_load(&s.c.woke), 1, "S got the slot");
	cr_assert_eq(tx_poll(bch, &s), 0);
	cr_assert_eq(weft_chan_try_recv(bch, &x), 0);
	cr_assert_eq(x, 7, "S's item is next, not the newcomer's");
	cr_assert_eq(weft_chan_try_recv(bch, &x), -EAGAIN);

	for (int i = 0; i < NSEL; i++) {
		/* woken once as its rendezvous arm won, once as bch skipped it */
		cr_assert_eq(atomic_load(&sel_cx[i].woke), 2, "select %d woken %d times", i,
			     atomic_load(&sel_cx[i].woke));
		size_t idx = 99;
		cr_assert_eq(weft_select_poll(sel[i], 2, &sel_cx[i].cx, &idx), 0);
		cr_assert_eq(idx, 1, "select %d won by its rendezvous arm", i);
		cr_assert_eq(sel[i][1].rc, 0);
	}
	cr_assert_eq(weft_chan_destroy(bch), 0);
	cr_assert_eq(weft_chan_destroy(rch), 0);
}

/* ------------------------------------------------------------- cond */

struct cw { struct hand_cx c; struct weft_wait w; };
static void cw_init(struct cw *x) { hc_init(&x->c); x->w = (struct weft_wait)WEFT_WAIT_INIT; }
static int cw_poll(struct weft_cond *c, struct weft_mutex *m, struct cw *x)
{
	return weft_cond_wait_poll(c, m, &x->w, &x->c.cx);
}

/* Each cond test's cond and mutex; destroyed after it, which checks that
 * nothing is left waiting on either. */
static struct weft_cond *g_c;
static struct weft_mutex *g_m;

static void cond_setup(void)
{
	cr_assert_eq(weft_cond_create(&g_c), 0);
	cr_assert_eq(weft_mutex_create(&g_m), 0);
}

static void cond_teardown(void)
{
	if (g_c)
		cr_assert_eq(weft_cond_destroy(g_c), 0);
	cr_assert_eq(weft_mutex_destroy(g_m), 0);
}

TestSuite(cond_order, .init = cond_setup, .fini = cond_teardown);

/* A and B wait; P (the test thread) locks m and signals: A is granted the
 * signal. A's next poll queues it for m, which P holds. */
static void signal_a_while_p_holds(struct weft_cond *c, struct weft_mutex *m, struct cw *a,
				   struct cw *b)
{
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	cr_assert_eq(cw_poll(c, m, a), WEFT_PENDING);
	if (b) {
		cr_assert_eq(weft_mutex_try_lock(m), 0);
		cr_assert_eq(cw_poll(c, m, b), WEFT_PENDING);
	}
	cr_assert_eq(weft_mutex_try_lock(m), 0, "the waits released m");
	cr_assert_eq(weft_cond_signal(c), 0);
	cr_assert_eq(atomic_load(&a->c.woke), 1);
	cr_assert_eq(cw_poll(c, m, a), WEFT_PENDING, "A took the signal and queues for m");
}

Test(cond_order, signal_passed_on_when_cancelled_queued_for_the_mutex)
{
	struct weft_cond *c = g_c;
	struct weft_mutex *m = g_m;
	struct cw a, b;
	cw_init(&a);
	cw_init(&b);
	signal_a_while_p_holds(c, m, &a, &b);
	weft_wait_cancel(&a.w); /* A's task aborted */
	cr_assert_eq(atomic_load(&b.c.woke), 1, "A's signal went to B");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(cw_poll(c, m, &b), 0, "B returns holding m");
	cr_assert_eq(weft_mutex_try_lock(m), -EBUSY);
	cr_assert_eq(weft_mutex_unlock(m), 0);
}

Test(cond_order, signal_and_mutex_passed_on_when_cancelled_holding_the_grant)
{
	struct weft_cond *c = g_c;
	struct weft_mutex *m = g_m;
	struct cw a, b;
	cw_init(&a);
	cw_init(&b);
	signal_a_while_p_holds(c, m, &a, &b);
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(atomic_load(&a.c.woke), 2, "m was handed to A");
	weft_wait_cancel(&a.w); /* aborted before it returned */
	cr_assert_eq(atomic_load(&b.c.woke), 1, "A's signal went to B");
	cr_assert_eq(cw_poll(c, m, &b), 0, "B takes m, which A's cancel let go");
	cr_assert_eq(weft_mutex_unlock(m), 0);
}

Test(cond_order, broadcast_not_passed_on_by_a_cancelled_waiter)
{
	struct weft_cond *c = g_c;
	struct weft_mutex *m = g_m;
	struct cw a, b;
	cw_init(&a);
	cw_init(&b);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	cr_assert_eq(cw_poll(c, m, &a), WEFT_PENDING);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	cr_assert_eq(weft_cond_broadcast(c), 0);
	cr_assert_eq(cw_poll(c, m, &a), WEFT_PENDING, "A queues for m");
	/* B waits after the broadcast (its wait lets go of the m the test
	 * thread took, which goes to A): a cancelled A owes it nothing. */
	cr_assert_eq(cw_poll(c, m, &b), WEFT_PENDING);
	cr_assert_eq(atomic_load(&a.c.woke), 2, "m handed to A");
	weft_wait_cancel(&a.w);
	cr_assert_eq(atomic_load(&b.c.woke), 0, "a broadcast is not passed on");
	cr_assert_eq(weft_mutex_try_lock(m), 0, "A's cancel let m go");
	cr_assert_eq(weft_cond_signal(c), 0);
	cr_assert_eq(cw_poll(c, m, &b), WEFT_PENDING, "B queues for m");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(cw_poll(c, m, &b), 0);
	cr_assert_eq(weft_mutex_unlock(m), 0);
}

Test(cond_order, destroy_refused_while_a_waiter_queues_for_the_mutex)
{
	struct weft_cond *c = g_c;
	struct weft_mutex *m = g_m;
	struct cw a;
	cw_init(&a);
	signal_a_while_p_holds(c, m, &a, NULL);
	/* A is on the mutex's list only, but its cancel would reach c. */
	cr_assert_eq(weft_cond_destroy(c), -EBUSY);
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(cw_poll(c, m, &a), 0);
	cr_assert_eq(weft_cond_destroy(c), 0, "A's wait is over");
	g_c = NULL; /* destroyed here */
	cr_assert_eq(weft_mutex_unlock(m), 0);
}

/* Blocking form: T waits with a 100 ms limit and is signalled at once, but
 * the test thread keeps m; locker L queues for m after T. When T's limit
 * passes while it queues for m, it was signalled: it keeps its place, so
 * it gets m before L and returns 0 (it used to leave the list and lock
 * again, behind L). */
static struct weft_cond *tc;
static struct weft_mutex *tm;
static atomic_int t_order, l_order, order_next = 1, t_rc = 99, t_locked;

static void *timed_waiter(void *arg)
{
	(void)arg;
	cr_assert_eq(weft_mutex_lock(tm), 0);
	atomic_store(&t_locked, 1);
	int rc = weft_cond_wait_timeout(tc, tm, 100 * 1000 * 1000ull);
	atomic_store(&t_order, atomic_fetch_add(&order_next, 1));
	atomic_store(&t_rc, rc);
	weft_mutex_unlock(tm);
	return NULL;
}

static void *late_locker(void *arg)
{
	(void)arg;
	cr_assert_eq(weft_mutex_lock(tm), 0);
	atomic_store(&l_order, atomic_fetch_add(&order_next, 1));
	weft_mutex_unlock(tm);
	return NULL;
}

Test(cond_order, timed_out_while_queued_for_the_mutex_keeps_its_place, .timeout = 30)
{
	cr_assert_eq(weft_cond_create(&tc), 0);
	cr_assert_eq(weft_mutex_create(&tm), 0);
	pthread_t t, l;
	cr_assert_eq(pthread_create(&t, NULL, timed_waiter, NULL), 0);
	/* T held m; m free again means T is waiting on the cond. */
	while (!atomic_load(&t_locked))
		usleep(1000);
	while (weft_mutex_try_lock(tm) != 0)
		usleep(1000);
	cr_assert_not(weft__mutex_has_waiter(tm), "nobody queues for m yet");
	cr_assert_eq(weft_cond_signal(tc), 0);
	/* T takes the signal and queues for m, before L is made (a fixed
	 * 30 ms may not be enough for T to run on a busy host: L would
	 * queue first and T's place would be behind it, rightly) */
	cr_assert(WT_WAIT_UNTIL(weft__mutex_has_waiter(tm), WT_LONG_MS), "T never queued for m");
	cr_assert_eq(pthread_create(&l, NULL, late_locker, NULL), 0);
	usleep(200 * 1000); /* L queues behind T; T's 100 ms pass */
	cr_assert_eq(atomic_load(&t_order), 0, "T returned without m");
	cr_assert_eq(weft_mutex_unlock(tm), 0);
	pthread_join(t, NULL);
	pthread_join(l, NULL);
	cr_assert_eq(atomic_load(&t_rc), 0, "T was signalled (rc %d)", atomic_load(&t_rc));
	cr_assert_eq(atomic_load(&t_order), 1, "T got m after L: it lost its place");
	cr_assert_eq(atomic_load(&l_order), 2);
	cr_assert_eq(weft_cond_destroy(tc), 0);
	cr_assert_eq(weft_mutex_destroy(tm), 0);
}

/* ------------------------------------------------- broadcast and watch */

/* Receivers whose wake takes what is new and waits again at once, as a
 * task on another worker may while the send is still waking the others. */
enum { NRX = 40 };
struct brx {
	struct hand_cx c;
	struct weft_wait w;
	struct weft_broadcast_rx *rx;
	struct weft_watch_rx *wrx;
	uint64_t v;
	int got;
};
static struct brx brx[NRX];
static long total_wakes;

static void brx_rewait(struct hand_cx *c)
{
	struct brx *r = (struct brx *)c;
	total_wakes++;
	if (total_wakes > 100 * NRX)
		return; /* runaway: the assertions below report it */
	r->c.budget = 128;
	if (r->rx) {
		if (weft_broadcast_recv_poll(r->rx, &r->w, &r->c.cx, &r->v, NULL) == 0)
			r->got++;
		cr_assert_eq(weft_broadcast_recv_poll(r->rx, &r->w, &r->c.cx, &r->v, NULL),
			     WEFT_PENDING);
	} else {
		if (weft_watch_changed_poll(r->wrx, &r->w, &r->c.cx) == 0)
			r->got++;
		cr_assert_eq(weft_watch_changed_poll(r->wrx, &r->w, &r->c.cx), WEFT_PENDING);
	}
}

Test(broadcast_order, one_send_wakes_each_waiter_once)
{
	struct weft_broadcast *b;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b), 0);
	total_wakes = 0;
	for (int i = 0; i < NRX; i++) {
		memset(&brx[i], 0, sizeof(brx[i]));
		hc_init(&brx[i].c);
		brx[i].c.on_wake = brx_rewait;
		brx[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_broadcast_subscribe(b, &brx[i].rx), 0);
		cr_assert_eq(weft_broadcast_recv_poll(brx[i].rx, &brx[i].w, &brx[i].c.cx, &brx[i].v,
						      NULL), WEFT_PENDING);
	}
	uint64_t x = 42;
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(total_wakes, NRX, "one send made %ld wakes for %d waiters", total_wakes, NRX);
	for (int i = 0; i < NRX; i++) {
		cr_assert_eq(brx[i].got, 1);
		cr_assert_eq(brx[i].v, 42);
	}
	/* They all wait again: the next send wakes each once more. */
	x = 43;
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(total_wakes, 2 * NRX);
	for (int i = 0; i < NRX; i++)
		brx[i].c.on_wake = NULL;
	cr_assert_eq(weft_broadcast_close(b), 0);
	for (int i = 0; i < NRX; i++) {
		cr_assert_eq(atomic_load(&brx[i].c.woke), 3, "close woke receiver %d", i);
		weft_wait_cancel(&brx[i].w);
		cr_assert_eq(weft_broadcast_rx_drop(brx[i].rx), 0);
	}
	cr_assert_eq(weft_broadcast_destroy(b), 0);
}

/* An entry linked for one receiver, polled with another receiver of the
 * same channel: sync.h's -EINVAL (`w` linked elsewhere). It said
 * WEFT_PENDING - the entry waits past the first receiver's cursor - with
 * an item there for the second (found by a review). */
Test(broadcast_order, entry_of_another_receiver_is_einval)
{
	struct weft_broadcast *b, *b2;
	struct weft_broadcast_rx *r1, *r2, *o;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b), 0);
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b2), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &r2), 0);
	uint64_t x = 7, v = 0;
	cr_assert_eq(weft_broadcast_send(b, &x), 0); /* for r2 only */
	cr_assert_eq(weft_broadcast_subscribe(b, &r1), 0);
	cr_assert_eq(weft_broadcast_subscribe(b2, &o), 0);
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING);
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), -EINVAL,
		     "an entry linked for another receiver");
	cr_assert_eq(weft_broadcast_recv_poll(o, &w, &h.cx, &v, NULL), -EINVAL,
		     "an entry linked on another channel");
	cr_assert_eq(v, 0, "nothing taken");
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING,
		     "its own receiver still waits with it");
	struct weft_wait w2 = WEFT_WAIT_INIT;
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w2, &h.cx, &v, NULL), 0);
	cr_assert_eq(v, 7);
	/* woken by a send: still r1's until r1's poll collects it */
	x = 8;
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), 0);
	cr_assert_eq(v, 8);
	/* collected: idle again, any receiver may use it */
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), 0);
	cr_assert_eq(v, 8);
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_broadcast_rx_drop(r1), 0);
	cr_assert_eq(weft_broadcast_rx_drop(r2), 0);
	cr_assert_eq(weft_broadcast_rx_drop(o), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
	cr_assert_eq(weft_broadcast_destroy(b2), 0);
}

/* The same misuse in another order: the entry linked for r1, cancelled,
 * then linked for r2. r1 still named it as its own (nothing cleared it at
 * the cancel), so r1's poll passed the check and said WEFT_PENDING on r2's
 * link (found by a review). -EINVAL now; r2 keeps its wait. */
Test(broadcast_order, entry_cancelled_then_linked_for_another_is_einval)
{
	struct weft_broadcast *b;
	struct weft_broadcast_rx *r1, *r2;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &r1), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &r2), 0);
	struct hand_cx h;
	hc_init(&h);
	uint64_t x = 7, v = 0;
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), WEFT_PENDING);
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), -EINVAL,
		     "an entry r1 cancelled, now linked for r2");
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), -EINVAL);
	cr_assert_eq(v, 0, "nothing taken");
	cr_assert_eq(weft_broadcast_recv_poll(r2, &w, &h.cx, &v, NULL), 0, "still r2's");
	cr_assert_eq(v, 7);
	/* idle again: r1 may use it, and its own link of it is its own */
	v = 0;
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING,
		     "cancelled and linked again by the same receiver");
	cr_assert_eq(weft_broadcast_recv_poll(r1, &w, &h.cx, &v, NULL), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_broadcast_rx_drop(r1), 0);
	cr_assert_eq(weft_broadcast_rx_drop(r2), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
}

/* The same for a watch: an entry linked for one receiver, polled with
 * another receiver that has a value it has not seen. It said WEFT_PENDING
 * (the entry waits past the first receiver's version), and after a send
 * woke it the second receiver's poll took the first one's wake and
 * replaced its waker (found by a review, beside the broadcast's fix). */
Test(watch_order, entry_of_another_receiver_is_einval)
{
	struct weft_watch *wt, *wt2;
	struct weft_watch_rx *r1, *r2, *o;
	uint64_t x = 1, v = 0;
	cr_assert_eq(weft_watch_create(sizeof(uint64_t), &x, &wt), 0);
	cr_assert_eq(weft_watch_create(sizeof(uint64_t), &x, &wt2), 0);
	cr_assert_eq(weft_watch_subscribe(wt, &r2), 0);
	x = 7;
	cr_assert_eq(weft_watch_send(wt, &x), 0); /* unseen by r2 only */
	cr_assert_eq(weft_watch_subscribe(wt, &r1), 0);
	cr_assert_eq(weft_watch_subscribe(wt2, &o), 0);
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING);
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), -EINVAL,
		     "an entry linked for another receiver");
	cr_assert_eq(weft_watch_changed_poll(o, &w, &h.cx), -EINVAL,
		     "an entry linked on another channel");
	cr_assert_eq(weft_watch_has_changed(r2), 1, "nothing marked seen");
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING,
		     "its own receiver still waits with it");
	struct weft_wait w2 = WEFT_WAIT_INIT;
	cr_assert_eq(weft_watch_changed_poll(r2, &w2, &h.cx), 0);
	cr_assert_eq(weft_watch_get(r2, &v), 0);
	cr_assert_eq(v, 7);
	/* woken by a send: still r1's until r1's poll collects it */
	x = 8;
	cr_assert_eq(weft_watch_send(wt, &x), 0);
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), -EINVAL);
	cr_assert_eq(weft_watch_has_changed(r2), 1, "r2 took r1's wake");
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), 0);
	cr_assert_eq(weft_watch_has_changed(r1), 0);
	/* collected: idle again, any receiver may use it */
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), 0);
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_watch_rx_drop(r1), 0);
	cr_assert_eq(weft_watch_rx_drop(r2), 0);
	cr_assert_eq(weft_watch_rx_drop(o), 0);
	cr_assert_eq(weft_watch_destroy(wt), 0);
	cr_assert_eq(weft_watch_destroy(wt2), 0);
}

/* The same misuse in another order: the entry linked for r1, cancelled,
 * then linked for r2. r1 still named it as its own (nothing cleared it at
 * the cancel), so r1's poll passed the check and said WEFT_PENDING on r2's
 * link, and after a send it would take r2's wake (found by a review).
 * -EINVAL now, nothing marked seen; r2 keeps its wait. */
Test(watch_order, entry_cancelled_then_linked_for_another_is_einval)
{
	struct weft_watch *wt;
	struct weft_watch_rx *r1, *r2;
	uint64_t x = 1;
	cr_assert_eq(weft_watch_create(sizeof(uint64_t), &x, &wt), 0);
	cr_assert_eq(weft_watch_subscribe(wt, &r1), 0);
	cr_assert_eq(weft_watch_subscribe(wt, &r2), 0);
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), WEFT_PENDING);
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), -EINVAL,
		     "an entry r1 cancelled, now linked for r2");
	x = 7;
	cr_assert_eq(weft_watch_send(wt, &x), 0);
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), -EINVAL);
	cr_assert_eq(weft_watch_has_changed(r1), 1, "nothing marked seen");
	cr_assert_eq(weft_watch_changed_poll(r2, &w, &h.cx), 0, "still r2's");
	cr_assert_eq(weft_watch_has_changed(r2), 0);
	/* idle again: r1 may use it, and its own link of it is its own */
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), 0);
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING,
		     "cancelled and linked again by the same receiver");
	cr_assert_eq(weft_watch_changed_poll(r1, &w, &h.cx), WEFT_PENDING);
	weft_wait_cancel(&w);
	cr_assert_eq(weft_watch_rx_drop(r1), 0);
	cr_assert_eq(weft_watch_rx_drop(r2), 0);
	cr_assert_eq(weft_watch_destroy(wt), 0);
}

Test(watch_order, one_send_wakes_each_waiter_once)
{
	struct weft_watch *wt;
	uint64_t x = 1;
	cr_assert_eq(weft_watch_create(sizeof(uint64_t), &x, &wt), 0);
	total_wakes = 0;
	for (int i = 0; i < NRX; i++) {
		memset(&brx[i], 0, sizeof(brx[i]));
		hc_init(&brx[i].c);
		brx[i].c.on_wake = brx_rewait;
		brx[i].w = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_watch_subscribe(wt, &brx[i].wrx), 0);
		cr_assert_eq(weft_watch_changed_poll(brx[i].wrx, &brx[i].w, &brx[i].c.cx),
			     WEFT_PENDING);
	}
	x = 2;
	cr_assert_eq(weft_watch_send(wt, &x), 0);
	cr_assert_eq(total_wakes, NRX, "one send made %ld wakes for %d waiters", total_wakes, NRX);
	for (int i = 0; i < NRX; i++)
		cr_assert_eq(brx[i].got, 1);
	for (int i = 0; i < NRX; i++)
		brx[i].c.on_wake = NULL;
	cr_assert_eq(weft_watch_close(wt), 0);
	for (int i = 0; i < NRX; i++) {
		cr_assert_eq(atomic_load(&brx[i].c.woke), 2, "close woke receiver %d", i);
		weft_wait_cancel(&brx[i].w);
		cr_assert_eq(weft_watch_rx_drop(brx[i].wrx), 0);
	}
	cr_assert_eq(weft_watch_destroy(wt), 0);
}

/*
 * Select arms (eighteenth session, a review of select.c).
 * 1. Two receive arms on rendezvous channels of 16-byte items share one
 *    destination (Go's `case m = <-a: case m = <-b:`). Senders on both
 *    channels find the arms waiting. Before, each was handed its item into
 *    the shared destination and the losing arm's cancel gave back what it
 *    found there, the winner's item: one item lost, one received twice.
 * 2. A send and a receive arm of one select on one rendezvous channel must
 *    not pair with each other: the send completed with no receiver and
 *    left its item buffered.
 * 3. With the budget spent, an arm that could not look (a cancelled token,
 *    first) must not lose to a later arm that takes no budget (a timer
 *    already due): the round is pending, the task woken to run again.
 */
struct sel_msg {
	uint64_t a, b;
};

Test(select_order, receive_arms_sharing_a_destination_lose_no_item)
{
	struct weft_chan *c1, *c2;
	cr_assert_eq(weft_chan_create(sizeof(struct sel_msg), 0, &c1), 0);
	cr_assert_eq(weft_chan_create(sizeof(struct sel_msg), 0, &c2), 0);
	struct sel_msg m = { 0, 0 };
	struct weft_select_arm arms[2] = { WEFT_SEL_RECV(c1, &m), WEFT_SEL_RECV(c2, &m) };
	struct hand_cx h;
	hc_init(&h);
	size_t idx = 99;
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING);
	struct sel_msg A = { 1, 1 }, B = { 2, 2 };
	cr_assert_eq(weft_chan_try_send(c2, &B), 0); /* a receiver waits on each */
	cr_assert_eq(weft_chan_try_send(c1, &A), 0);
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
	cr_assert_eq(idx, 0);
	cr_assert_eq(arms[0].rc, 0);
	cr_assert(m.a == 1 && m.b == 1, "arm 0 received {%llu,%llu}, c1 sent {1,1}",
		  (unsigned long long)m.a, (unsigned long long)m.b);
	struct sel_msg x = { 0, 0 };
	cr_assert_eq(weft_chan_try_recv(c1, &x), -EAGAIN, "c1's item was received twice");
	cr_assert_eq(weft_chan_try_recv(c2, &x), 0, "c2's item was lost");
	cr_assert(x.a == 2 && x.b == 2, "c2 gave {%llu,%llu}, it was sent {2,2}",
		  (unsigned long long)x.a, (unsigned long long)x.b);
	cr_assert_eq(weft_chan_destroy(c1), 0);
	cr_assert_eq(weft_chan_destroy(c2), 0);
}

Test(select_order, send_and_receive_arms_of_one_select_do_not_pair)
{
	/* arm order x which other party comes: a sender or a receiver */
	for (int k = 0; k < 4; k++) {
		int order = k & 1, other_sends = k >> 1;
		struct weft_chan *c;
		cr_assert_eq(weft_chan_create(sizeof(struct sel_msg), 0, &c), 0);
		struct sel_msg out = { 7, 7 }, in = { 0, 0 };
		struct weft_select_arm arms[2];
		arms[order] = WEFT_SEL_SEND(c, &out);
		arms[1 - order] = WEFT_SEL_RECV(c, &in);
		struct hand_cx h;
		hc_init(&h);
		size_t idx = 99;
		for (int round = 0; round < 3; round++)
			cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING,
				     "case %d round %d: arm %zu completed with no other party", k,
				     round, idx);
		size_t len = 9;
		cr_assert_eq(weft_chan_len(c, &len), 0);
		cr_assert_eq(len, 0, "case %d: an item left buffered", k);
		cr_assert_eq(in.a, 0, "case %d: the receive arm's buffer was written", k);
		if (other_sends) {
			struct sel_msg other = { 9, 9 };
			cr_assert_eq(weft_chan_try_send(c, &other), 0,
				     "case %d: a sender could not reach the receive arm", k);
			cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
			cr_assert_eq(idx, (size_t)(1 - order), "case %d: arm %zu won", k, idx);
			cr_assert_eq(in.a, 9);
		} else {
			struct sel_msg got = { 0, 0 };
			cr_assert_eq(weft_chan_try_recv(c, &got), 0,
				     "case %d: a receiver could not reach the send arm", k);
			cr_assert_eq(got.a, 7);
			cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
			cr_assert_eq(idx, (size_t)order, "case %d: arm %zu won", k, idx);
		}
		cr_assert_eq(weft_chan_len(c, &len), 0);
		cr_assert_eq(len, 0, "case %d: an item left buffered", k);
		cr_assert_eq(weft_chan_destroy(c), 0);
	}
}

Test(select_order, spent_budget_keeps_an_earlier_arm_first)
{
	struct weft_token *t;
	cr_assert_eq(weft_token_create(NULL, &t), 0);
	weft_token_cancel(t);
	struct weft_timer due;
	memset(&due, 0, sizeof(due));
	struct weft_select_arm arms[2] = { WEFT_SEL_CANCELLED(t), WEFT_SEL_AT(&due, 0) };
	struct hand_cx h;
	hc_init(&h);
	h.budget = 0;
	size_t idx = 99;
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING,
		     "arm %zu won while the token arm could not look", idx);
	cr_assert_geq(atomic_load(&h.woke), 1, "the task was not woken to run again");
	h.budget = 128;
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
	cr_assert_eq(idx, 0, "with budget the token arm wins: %zu", idx);
	cr_assert_eq(weft_token_destroy(t), 0);
}

/*
 * Destroy between two batches of wakes (eighteenth session, a review of
 * the wait lists): a notifier granting more than 16 waiters drops the lock
 * to wake each batch and takes it again. Here, from inside the first
 * batch's wakes, the 17th waiter gives up, the granted 16 collect and give
 * back, and destroy is called while the notifier has still to lock again:
 * it must say -EBUSY. Before, it freed the object and the notifier locked
 * freed memory (valgrind, ASan); once the notifier returns, destroy is 0.
 */
#define GAP_N 17

static struct hand_cx gap_c[GAP_N];
static struct weft_wait gap_w[GAP_N];
static struct weft_sem *gap_sem;
static struct weft_rwlock *gap_rw;
static int gap_rc;
static bool gap_ran;

static void sem_gap_hook(struct hand_cx *me)
{
	if (me != &gap_c[0] || gap_ran)
		return;
	gap_ran = true;
	weft_wait_cancel(&gap_w[GAP_N - 1]);
	for (int i = 0; i < GAP_N - 1; i++)
		cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, 1, &gap_w[i], &gap_c[i].cx), 0);
	for (int i = 0; i < GAP_N - 1; i++)
		cr_assert_eq(weft_sem_release_n(gap_sem, 1), 0);
	gap_rc = weft_sem_destroy(gap_sem);
}

Test(destroy_gap, sem_release_n_between_wake_batches, .timeout = 10)
{
	cr_assert_eq(weft_sem_create(0, &gap_sem), 0);
	gap_ran = false;
	for (int i = 0; i < GAP_N; i++) {
		hc_init(&gap_c[i]);
		gap_c[i].on_wake = sem_gap_hook;
		gap_w[i] = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, 1, &gap_w[i], &gap_c[i].cx), WEFT_PENDING);
	}
	cr_assert_eq(weft_sem_release_n(gap_sem, GAP_N), 0);
	cr_assert(gap_ran);
	cr_assert_eq(gap_rc, -EBUSY, "destroy during release_n's wake batches: %d", gap_rc);
	cr_assert_eq(weft_sem_destroy(gap_sem), 0);
}

static void rw_gap_hook(struct hand_cx *me)
{
	if (me != &gap_c[0] || gap_ran)
		return;
	gap_ran = true;
	weft_wait_cancel(&gap_w[GAP_N - 1]);
	for (int i = 0; i < GAP_N - 1; i++) {
		cr_assert_eq(weft_rwlock_read_poll(gap_rw, &gap_w[i], &gap_c[i].cx), 0);
		cr_assert_eq(weft_rwlock_read_unlock(gap_rw), 0);
	}
	gap_rc = weft_rwlock_destroy(gap_rw);
}

Test(destroy_gap, rwlock_write_unlock_between_wake_batches, .timeout = 10)
{
	cr_assert_eq(weft_rwlock_create(&gap_rw), 0);
	cr_assert_eq(weft_rwlock_try_write(gap_rw), 0);
	gap_ran = false;
	for (int i = 0; i < GAP_N; i++) {
		hc_init(&gap_c[i]);
		gap_c[i].on_wake = rw_gap_hook;
		gap_w[i] = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_rwlock_read_poll(gap_rw, &gap_w[i], &gap_c[i].cx), WEFT_PENDING);
	}
	cr_assert_eq(weft_rwlock_write_unlock(gap_rw), 0);
	cr_assert(gap_ran);
	cr_assert_eq(gap_rc, -EBUSY, "destroy during write_unlock's wake batches: %d", gap_rc);
	cr_assert_eq(weft_rwlock_destroy(gap_rw), 0);
}

/* The same for a cancel that passes its grant on in batches: waiter 0
 * holds a grant of 17 permits and cancels; the permits go to 17 waiters
 * of one (16 in gap_w[1..16], the 17th gap_extra), woken in two batches. */
static struct hand_cx gap_extra_c;
static struct weft_wait gap_extra_w;

static void cancel_gap_hook(struct hand_cx *me)
{
	if (me != &gap_c[1] || gap_ran)
		return;
	gap_ran = true;
	for (int i = 1; i < GAP_N; i++)
		cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, 1, &gap_w[i], &gap_c[i].cx), 0);
	weft_wait_cancel(&gap_extra_w);
	cr_assert_eq(weft_sem_release_n(gap_sem, GAP_N - 1), 0);
	gap_rc = weft_sem_destroy(gap_sem);
}

Test(destroy_gap, sem_cancel_passing_on_between_wake_batches, .timeout = 10)
{
	cr_assert_eq(weft_sem_create(0, &gap_sem), 0);
	gap_ran = false;
	hc_init(&gap_c[0]);
	gap_w[0] = (struct weft_wait)WEFT_WAIT_INIT;
	cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, GAP_N, &gap_w[0], &gap_c[0].cx), WEFT_PENDING);
	for (int i = 1; i < GAP_N; i++) {
		hc_init(&gap_c[i]);
		gap_c[i].on_wake = cancel_gap_hook;
		gap_w[i] = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, 1, &gap_w[i], &gap_c[i].cx), WEFT_PENDING);
	}
	hc_init(&gap_extra_c);
	gap_extra_w = (struct weft_wait)WEFT_WAIT_INIT;
	cr_assert_eq(weft_sem_acquire_n_poll(gap_sem, 1, &gap_extra_w, &gap_extra_c.cx), WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(gap_sem, GAP_N), 0); /* granted to waiter 0 */
	weft_wait_cancel(&gap_w[0]);
	cr_assert(gap_ran);
	cr_assert_eq(gap_rc, -EBUSY, "destroy during a cancel's wake batches: %d", gap_rc);
	cr_assert_eq(weft_sem_destroy(gap_sem), 0);
}

/* A semaphore entry polled again with another count is refused: it said 0
 * with the first count's permits taken (found by the same review). */
Test(destroy_gap, sem_entry_polled_again_with_another_count)
{
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(1, &s), 0);
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_sem_acquire_n_poll(s, 3, &w, &h.cx), WEFT_PENDING);
	cr_assert_eq(weft_sem_acquire_n_poll(s, 1, &w, &h.cx), -EINVAL);
	cr_assert_eq(weft_sem_release_n(s, 2), 0); /* granted: 3 taken */
	cr_assert_eq(weft_sem_acquire_n_poll(s, 1, &w, &h.cx), -EINVAL);
	cr_assert_eq(weft_sem_acquire_n_poll(s, 3, &w, &h.cx), 0);
	cr_assert_eq(weft_sem_available(s), 0);
	cr_assert_eq(weft_sem_destroy(s), 0);
}

/*
 * Permits granted to waiters and given back by their cancels must fit the
 * count (sync.h: "they are never lost"). 15 waiters of WEFT_SEM_MAX_PERMITS
 * (2^60) each, each granted by a release of as many, none collecting: a
 * 16th release must be refused, or the 15 cancels return their 15 * 2^60
 * on top of it and the count wraps to 0 (found by a review: every permit
 * was lost).
 */
#define OVF_N 15

Test(destroy_gap, sem_permits_given_back_by_cancels_are_not_lost)
{
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(0, &s), 0);
	static struct hand_cx c[OVF_N];
	static struct weft_wait w[OVF_N];
	for (int i = 0; i < OVF_N; i++) {
		hc_init(&c[i]);
		w[i] = (struct weft_wait)WEFT_WAIT_INIT;
		cr_assert_eq(weft_sem_acquire_n_poll(s, WEFT_SEM_MAX_PERMITS, &w[i], &c[i].cx),
			     WEFT_PENDING);
		cr_assert_eq(weft_sem_release_n(s, WEFT_SEM_MAX_PERMITS), 0, "release %d", i);
		cr_assert_eq(atomic_load(&c[i].woke), 1, "waiter %d granted", i);
	}
	cr_assert_eq(weft_sem_available(s), 0);
	/* 15 * 2^60 out in grants: 2^60 more could not all come back */
	cr_assert_eq(weft_sem_release_n(s, WEFT_SEM_MAX_PERMITS), -EOVERFLOW);
	cr_assert_eq(weft_sem_release_n(s, WEFT_SEM_MAX_PERMITS - 1), 0, "fits: 2^64 - 1");
	cr_assert_eq(weft_sem_release_n(s, 1), -EOVERFLOW);
	for (int i = 0; i < OVF_N; i++)
		weft_wait_cancel(&w[i]);
	cr_assert_eq(weft_sem_available(s), UINT64_MAX, "every permit given back");
	cr_assert_eq(weft_sem_release_n(s, 1), -EOVERFLOW, "past the maximum until it comes down");
	cr_assert_eq(weft_sem_try_acquire_n(s, WEFT_SEM_MAX_PERMITS), 0);
	cr_assert_eq(weft_sem_available(s), UINT64_MAX - WEFT_SEM_MAX_PERMITS);
	cr_assert_eq(weft_sem_destroy(s), 0);
}

/* A release of 0 adds nothing and is never refused: after a cancel gave
 * back a grant that took the count past WEFT_SEM_MAX_PERMITS it said
 * -EOVERFLOW (found by a review). */
Test(destroy_gap, sem_release_of_zero_past_the_maximum)
{
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(0, &s), 0);
	struct hand_cx h;
	hc_init(&h);
	struct weft_wait w = WEFT_WAIT_INIT;
	cr_assert_eq(weft_sem_acquire_n_poll(s, WEFT_SEM_MAX_PERMITS, &w, &h.cx), WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(s, WEFT_SEM_MAX_PERMITS), 0); /* granted, not collected */
	cr_assert_eq(weft_sem_release_n(s, 1), 0);
	cr_assert_eq(weft_sem_release_n(s, 0), 0);
	weft_wait_cancel(&w); /* the grant comes back: 2^60 + 1 */
	cr_assert_eq(weft_sem_available(s), WEFT_SEM_MAX_PERMITS + 1);
	cr_assert_eq(weft_sem_release_n(s, 0), 0, "a release of 0 past the maximum");
	cr_assert_eq(weft_sem_release_n(s, 1), -EOVERFLOW, "past the maximum until it comes down");
	cr_assert_eq(weft_sem_available(s), WEFT_SEM_MAX_PERMITS + 1, "nothing released");
	cr_assert_eq(weft_sem_try_acquire_n(s, 0), 0);
	cr_assert_eq(weft_sem_try_acquire_n(s, 2), 0);
	cr_assert_eq(weft_sem_release_n(s, 1), 0, "back under the maximum");
	cr_assert_eq(weft_sem_destroy(s), 0);
}

/*
 * A receiver that finds a select's send arm at the head of a rendezvous
 * channel's senders while that select cannot be completed (being polled,
 * or won by another arm) takes the arm off the list with a wake
 * (WQ_GRANT_WAKE). That wake must be run: the arm is on no list any more,
 * so only its select's next poll puts it back (found by a review: the
 * receiver that then waited dropped the wake, the select was never polled
 * again and the arm's waker clone leaked).
 */
static atomic_int lw_clones, lw_wakes, lw_drops;
static void *lw_clone(void *d) { atomic_fetch_add(&lw_clones, 1); return d; }
static void lw_wake(void *d) { atomic_fetch_add(&lw_wakes, 1); hc_wake(d); }
static void lw_wake_ref(void *d) { hc_wake(d); }
static void lw_drop(void *d) { (void)d; atomic_fetch_add(&lw_drops, 1); }
static const struct weft_waker_vtable lw_vt = { lw_clone, lw_wake, lw_wake_ref, lw_drop };

Test(chan_order, select_send_arm_taken_off_by_a_waiting_receiver_is_woken)
{
	struct weft_chan *c;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &c), 0);
	uint64_t out = 77, in = 0;
	struct weft_select_arm arms[2] = { WEFT_SEL_SEND(c, &out), WEFT_SEL_RECV(c, &in) };
	struct hand_cx h;
	hc_init(&h);
	size_t idx = 99;
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING);
	/* The receive arm found the send arm while its own select was being
	 * polled: the send arm was taken off the list, so the select must run
	 * again to put it back. */
	cr_assert_gt(atomic_load(&h.woke), 0, "select left with its send arm off the list, not woken");
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING);
	uint64_t got = 0;
	cr_assert_eq(weft_chan_try_recv(c, &got), 0, "a receiver could not reach the send arm");
	cr_assert_eq(got, 77);
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
	cr_assert_eq(idx, 0);
	cr_assert_eq(weft_chan_destroy(c), 0);
}

Test(chan_order, select_send_arm_that_lost_is_woken_not_leaked)
{
	struct weft_chan *c1, *c2;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &c1), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &c2), 0);
	uint64_t a = 1, b = 2;
	struct weft_select_arm arms[2] = { WEFT_SEL_SEND(c1, &a), WEFT_SEL_SEND(c2, &b) };
	struct hand_cx h;
	hc_init(&h);
	h.cx.waker = (weft_waker){ &lw_vt, &h };
	atomic_store(&lw_clones, 0);
	atomic_store(&lw_wakes, 0);
	atomic_store(&lw_drops, 0);
	size_t idx = 99;
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING);
	uint64_t x = 0;
	cr_assert_eq(weft_chan_try_recv(c1, &x), 0); /* arm 0 wins the claim */
	cr_assert_eq(x, 1);
	/* A receiver on c2 finds arm 1, which lost: it is woken and skipped. */
	struct rx r;
	rx_init(&r);
	cr_assert_eq(rx_poll(c2, &r), WEFT_PENDING);
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
	cr_assert_eq(idx, 0);
	weft_wait_cancel(&r.w);
	int clones = atomic_load(&lw_clones), gone = atomic_load(&lw_wakes) + atomic_load(&lw_drops);
	cr_assert_eq(clones, gone, "%d waker clones, %d woken or dropped: a clone leaked", clones, gone);
	cr_assert_eq(weft_chan_destroy(c1), 0);
	cr_assert_eq(weft_chan_destroy(c2), 0);
}

/*
 * Rendezvous: the first waiting sender may be a select's send arm whose
 * only waiting receiver is an arm of the same select (they never pair).
 * A sender behind it still meets that receiver: here it queued while an
 * item in transit held the slot, and when that item landed it was left
 * waiting next to the receiver for good (found by a review).
 */
Test(chan_order, rendezvous_sender_behind_a_select_arm_without_a_peer_is_served)
{
	struct weft_chan *c;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &c), 0);
	struct rx r0;
	rx_init(&r0);
	cr_assert_eq(rx_poll(c, &r0), WEFT_PENDING);
	uint64_t five = 5;
	cr_assert_eq(weft_chan_try_send(c, &five), 0); /* in transit to r0 */

	uint64_t out = 77, in = 0;
	struct weft_select_arm arms[2] = { WEFT_SEL_SEND(c, &out), WEFT_SEL_RECV(c, &in) };
	struct hand_cx h;
	hc_init(&h);
	size_t idx = 99;
	for (int round = 0; round < 3; round++)
		cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), WEFT_PENDING);

	struct tx t;
	tx_init(&t, 9);
	cr_assert_eq(tx_poll(c, &t), WEFT_PENDING, "the item in transit holds the slot");
	atomic_store(&h.woke, 0);
	cr_assert_eq(rx_poll(c, &r0), 0);
	cr_assert_eq(r0.v, 5);
	/* The slot is free: t's item goes to the select's receive arm. */
	cr_assert_eq(atomic_load(&t.c.woke), 1, "the waiting sender was not served");
	cr_assert_eq(tx_poll(c, &t), 0);
	cr_assert_gt(atomic_load(&h.woke), 0, "the select was not woken");
	cr_assert_eq(weft_select_poll(arms, 2, &h.cx, &idx), 0);
	cr_assert_eq(idx, 1);
	cr_assert_eq(in, 9);
	cr_assert_eq(weft_chan_destroy(c), 0);
}

/*
 * weft_chan_len leaves out items already handed to a receiver (sync.h).
 * An item of more than 8 bytes sent to a waiting poll-form receiver on a
 * buffered channel, or to a select's receive arm on a rendezvous channel,
 * is reserved for it in the buffer rather than copied into its place; len
 * counted it (found by a review: 1 on a rendezvous channel with nothing a
 * receiver could take, and try_recv said -EAGAIN).
 */
Test(chan_order, len_leaves_out_an_item_reserved_for_a_receiver)
{
	struct weft_chan *c;
	cr_assert_eq(weft_chan_create(sizeof(struct sel_msg), 4, &c), 0);
	struct sel_msg in = { 0, 0 }, A = { 1, 1 }, B = { 2, 2 }, x;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct hand_cx h;
	hc_init(&h);
	cr_assert_eq(weft_chan_recv_poll(c, &w, &h.cx, &in), WEFT_PENDING);
	cr_assert_eq(weft_chan_try_send(c, &A), 0);
	cr_assert_eq(atomic_load(&h.woke), 1, "the item went to the waiting receiver");
	size_t len = 9;
	cr_assert_eq(weft_chan_len(c, &len), 0);
	cr_assert_eq(len, 0, "buffered: the receiver's item counted (len %zu)", len);
	cr_assert_eq(weft_chan_try_recv(c, &x), -EAGAIN);
	cr_assert_eq(weft_chan_try_send(c, &B), 0);
	cr_assert_eq(weft_chan_len(c, &len), 0);
	cr_assert_eq(len, 1, "buffered: one item for a new receiver (len %zu)", len);
	cr_assert_eq(weft_chan_recv_poll(c, &w, &h.cx, &in), 0);
	cr_assert_eq(in.a, 1);
	cr_assert_eq(weft_chan_destroy(c), 0);

	cr_assert_eq(weft_chan_create(sizeof(struct sel_msg), 0, &c), 0);
	struct weft_select_arm arms[1] = { WEFT_SEL_RECV(c, &in) };
	size_t idx = 99;
	cr_assert_eq(weft_select_poll(arms, 1, &h.cx, &idx), WEFT_PENDING);
	cr_assert_eq(weft_chan_try_send(c, &B), 0, "a receive arm waits");
	cr_assert_eq(weft_chan_len(c, &len), 0);
	cr_assert_eq(len, 0, "rendezvous: the arm's item counted (len %zu)", len);
	cr_assert_eq(weft_chan_try_recv(c, &x), -EAGAIN);
	cr_assert_eq(weft_select_poll(arms, 1, &h.cx, &idx), 0);
	cr_assert_eq(idx, 0);
	cr_assert_eq(in.a, 2);
	cr_assert_eq(weft_chan_destroy(c), 0);
}

/*
 * Close wakes the waiting senders in batches of 16, the lock dropped
 * between them. A receiver that comes in that gap must not take the item
 * of a sender still waiting for its wake: close was called, so that
 * sender gets -EPIPE (sync.h), and the rendezvous channel, which buffers
 * nothing, is closed and drained for the receiver (found by a review: the
 * receiver took the 17th sender's item, whose send then said 0).
 */
#define CLOSE_GAP_N 17
static struct weft_chan *cg_ch;
static struct tx cg_tx[CLOSE_GAP_N];
static int cg_rc;
static uint64_t cg_got;
static bool cg_ran;

static void close_gap_hook(struct hand_cx *me)
{
	if (me != &cg_tx[0].c || cg_ran)
		return;
	cg_ran = true;
	cg_rc = weft_chan_try_recv(cg_ch, &cg_got);
}

Test(chan_order, rendezvous_close_leaves_no_waiting_sender_to_a_receiver)
{
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &cg_ch), 0);
	cg_ran = false;
	cg_got = 0;
	for (int i = 0; i < CLOSE_GAP_N; i++) {
		tx_init(&cg_tx[i], 100 + (uint64_t)i);
		cg_tx[i].c.on_wake = close_gap_hook;
		cr_assert_eq(tx_poll(cg_ch, &cg_tx[i]), WEFT_PENDING);
	}
	cr_assert_eq(weft_chan_close(cg_ch), 0);
	cr_assert(cg_ran);
	cr_assert_eq(cg_rc, -EPIPE, "a receive during close's wake batches: %d (item %llu)", cg_rc,
		     (unsigned long long)cg_got);
	for (int i = 0; i < CLOSE_GAP_N; i++)
		cr_assert_eq(tx_poll(cg_ch, &cg_tx[i]), -EPIPE, "sender %d", i);
	cr_assert_eq(weft_chan_destroy(cg_ch), 0);
}

/*
 * The channel's calls wake in batches of 16 with the lock dropped between
 * them too, and destroy must say -EBUSY meanwhile (sync.h), as for the
 * semaphore and rwlock above. Close with 17 receivers waiting: from inside
 * the first batch's wakes the 17th gives up, the 16 woken collect their
 * -EPIPE, and destroy is called while close has still to lock again (found
 * by a review: destroy freed the channel, close then locked freed memory).
 * The same for a receive whose freed slot skips more than 15 send arms of
 * selects that another arm already won.
 */
static struct weft_chan *gap_ch;
static struct rx gap_rx[GAP_N];

static void chan_close_gap_hook(struct hand_cx *me)
{
	if (me != &gap_rx[0].c || gap_ran)
		return;
	gap_ran = true;
	weft_wait_cancel(&gap_rx[GAP_N - 1].w);
	for (int i = 0; i < GAP_N - 1; i++)
		cr_assert_eq(rx_poll(gap_ch, &gap_rx[i]), -EPIPE);
	gap_rc = weft_chan_destroy(gap_ch);
}

Test(destroy_gap, chan_close_between_wake_batches, .timeout = 10)
{
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &gap_ch), 0);
	gap_ran = false;
	for (int i = 0; i < GAP_N; i++) {
		rx_init(&gap_rx[i]);
		gap_rx[i].c.on_wake = chan_close_gap_hook;
		cr_assert_eq(rx_poll(gap_ch, &gap_rx[i]), WEFT_PENDING);
	}
	cr_assert_eq(weft_chan_close(gap_ch), 0);
	cr_assert(gap_ran);
	cr_assert_eq(gap_rc, -EBUSY, "destroy during close's wake batches: %d", gap_rc);
	cr_assert_eq(weft_chan_destroy(gap_ch), 0);
}

static void chan_recv_gap_hook(struct hand_cx *me)
{
	if (me != &sel_cx[0] || gap_ran)
		return;
	gap_ran = true;
	for (int i = 0; i < NSEL; i++) {
		size_t idx = 99;
		cr_assert_eq(weft_select_poll(sel[i], 2, &sel_cx[i].cx, &idx), 0);
		cr_assert_eq(idx, 1);
	}
	weft_wait_cancel(&gap_rx[0].w); /* the plain sender behind the arms */
	gap_rc = weft_chan_destroy(bch);
}

Test(destroy_gap, chan_recv_skipping_lost_select_arms_between_wake_batches, .timeout = 10)
{
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &bch), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &rch), 0);
	uint64_t first = 1;
	cr_assert_eq(weft_chan_try_send(bch, &first), 0); /* full */
	for (int i = 0; i < NSEL; i++) {
		hc_init(&sel_cx[i]);
		sel_item[i] = 100 + (uint64_t)i;
		sel[i][0] = WEFT_SEL_SEND(bch, &sel_item[i]);
		sel[i][1] = WEFT_SEL_SEND(rch, &sel_item[i]);
		size_t idx = 99;
		cr_assert_eq(weft_select_poll(sel[i], 2, &sel_cx[i].cx, &idx), WEFT_PENDING);
	}
	for (int i = 0; i < NSEL; i++) {
		uint64_t x = 0;
		cr_assert_eq(weft_chan_try_recv(rch, &x), 0); /* each select won by arm 1 */
	}
	/* a plain sender behind the 16 arms (gap_rx[0]'s entry and cx) */
	rx_init(&gap_rx[0]);
	uint64_t seven = 7;
	cr_assert_eq(weft_chan_send_poll(bch, &gap_rx[0].w, &gap_rx[0].c.cx, &seven), WEFT_PENDING);
	gap_ran = false;
	sel_cx[0].on_wake = chan_recv_gap_hook;
	uint64_t x = 0;
	cr_assert_eq(weft_chan_try_recv(bch, &x), 0);
	cr_assert(gap_ran);
	cr_assert_eq(gap_rc, -EBUSY, "destroy during a receive's wake batches: %d", gap_rc);
	cr_assert_eq(weft_chan_destroy(bch), 0);
	cr_assert_eq(weft_chan_destroy(rch), 0);
}

/* ---------------------------------------------------------------- joinset */

static enum weft_poll js_pend_forever(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	return WEFT_PENDING;
}

static int js_hook_aborts;
static void js_abort_in_the_window(struct weft_joinset *s)
{
	js_hook_aborts++;
	cr_assert_eq(weft_joinset_abort_all(s), 0);
}

/* weft_joinset_abort_all between a member's spawn and its listing (another
 * thread's abort_all, run here by the test hook at that point): the member
 * is aborted too. The walk did not see it, unlisted then, and it stayed
 * waiting for ever; a spawn after abort_all still is not aborted (found by
 * a review). */
Test(joinset_order, abort_all_reaches_a_member_being_spawned, .timeout = 10)
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_joinset *s;
	cr_assert_eq(weft_joinset_create(&s), 0);
	js_hook_aborts = 0;
	weft__joinset_spawned_hook = js_abort_in_the_window;
	int rc = weft_joinset_spawn_poll(s, rt, js_pend_forever, NULL, NULL, NULL);
	weft__joinset_spawned_hook = NULL;
	cr_assert_eq(rc, 0);
	cr_assert_eq(js_hook_aborts, 1);
	cr_assert_eq(weft_joinset_spawn_poll(s, rt, js_pend_forever, NULL, NULL, NULL), 0);
	void *r;
	rc = weft_joinset_join_next_timeout(s, &r, NULL, 2000000000ull);
	cr_assert_eq(rc, -ECANCELED, "the member spawned during abort_all: %d (%s)", rc,
		     weft_strerror(rc));
	rc = weft_joinset_join_next_timeout(s, &r, NULL, 50000000ull);
	cr_assert_eq(rc, -ETIMEDOUT, "the member spawned after abort_all: %d (%s)", rc,
		     weft_strerror(rc));
	cr_assert_eq(weft_joinset_abort_all(s), 0);
	cr_assert_eq(weft_joinset_join_next_timeout(s, &r, NULL, 2000000000ull), -ECANCELED);
	cr_assert_eq(weft_joinset_destroy(s), 0);
	wt_rt_destroy(rt);
}

/*
 * weft.h: a join set's len counts a member from its spawn on. The member
 * may run, even end, before the spawn has listed it (held open here by
 * the test hook until the member has looked): it saw len 0, and its
 * join_next on its own set said -ENOENT, not -EDEADLK (found by a
 * review). Part 1, a poll task that reads len and ends; part 2, a fiber
 * that joins the next of its own set: it waits while it is being spawned
 * and gets -EDEADLK once listed (it is the only member).
 */
static struct weft_joinset *js_len_set;
static atomic_long js_len_seen = -1;
static atomic_int js_self_rc = 1;

static enum weft_poll js_reads_len(void *state, struct weft_cx *cx)
{
	(void)state;
	(void)cx;
	atomic_store(&js_len_seen, (long)weft_joinset_len(js_len_set));
	return WEFT_READY;
}

static void js_wait_for_the_member(struct weft_joinset *s)
{
	cr_assert(WT_WAIT_UNTIL(atomic_load(&js_len_seen) != -1, WT_LONG_MS));
	cr_assert_eq(weft_joinset_len(s), 1, "len while the member is being spawned");
}

static void *js_joins_own_set(void *arg)
{
	(void)arg;
	atomic_store(&js_self_rc, weft_joinset_join_next(js_len_set, NULL, NULL));
	return NULL;
}

static void js_let_the_member_join(struct weft_joinset *s)
{
	(void)s;
	/* the old code said -ENOENT at once; now it waits for the listing */
	uint64_t end = wt_now_ns() + 50000000ull;
	while (atomic_load(&js_self_rc) == 1 && wt_now_ns() < end)
		usleep(1000);
}

Test(joinset_order, len_counts_a_member_that_runs_before_its_spawn_returns, .timeout = 20)
{
	struct weft_runtime *rt = wt_rt_create(1);
	cr_assert_eq(weft_joinset_create(&js_len_set), 0);
	weft__joinset_spawned_hook = js_wait_for_the_member;
	int rc = weft_joinset_spawn_poll(js_len_set, rt, js_reads_len, NULL, NULL, NULL);
	weft__joinset_spawned_hook = NULL;
	cr_assert_eq(rc, 0);
	cr_assert_eq(atomic_load(&js_len_seen), 1, "the member saw len %ld",
		     atomic_load(&js_len_seen));
	cr_assert_eq(weft_joinset_join_next(js_len_set, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_len(js_len_set), 0);

	weft__joinset_spawned_hook = js_let_the_member_join;
	rc = weft_joinset_spawn(js_len_set, rt, js_joins_own_set, NULL, NULL);
	weft__joinset_spawned_hook = NULL;
	cr_assert_eq(rc, 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&js_self_rc) != 1, WT_LONG_MS),
		  "the member's join_next of its own set still waits");
	cr_assert_eq(atomic_load(&js_self_rc), -EDEADLK, "the member's join_next said %d (%s)",
		     atomic_load(&js_self_rc), weft_strerror(atomic_load(&js_self_rc)));
	cr_assert_eq(weft_joinset_join_next(js_len_set, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_destroy(js_len_set), 0);
	wt_rt_destroy(rt);
}

/*
 * Joiners that are not members, while the set's members come and go one
 * at a time: each look-again for "one member left, running" (it may be
 * the joiner itself: -EDEADLK) woke every joiner linked, also the ones
 * that could not be that member - about two wakes for each member (found
 * by a review). Hand-driven joiners here (no task: never a member), the
 * wakes counted. Part 1: two joiners, two members; the first joiner takes
 * one member, and the second, left waiting for the other, is not woken.
 * Part 2: a member spawned while a joiner waits (linked by the test hook
 * while the spawn is under way, as a joiner racing the spawn): its
 * listing, the only member and running, does not wake the joiner; only
 * its end does - one wake per member.
 */
static struct weft_sem *js_gate[2];

static void *js_gated(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	if (weft_sem_acquire_n(js_gate[i], 1))
		return NULL;
	return (void *)(i + 10);
}

static struct cw js_hooked;
static int js_hooked_rc = 1;

/* Part 3: a wait entry linked by a hand-driven joiner (no member), then
 * polled by a poll task member once the set is down to that member. */
static struct weft_joinset *js_moved_set;
static struct cw js_moved;
static atomic_int js_moved_go, js_moved_rc = 1000;

static enum weft_poll js_moved_poll(void *state, struct weft_cx *cx)
{
	(void)state;
	if (!atomic_load(&js_moved_go)) { /* not yet: look later */
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	int rc = weft_joinset_join_next_poll(js_moved_set, &js_moved.w, cx, NULL, NULL);
	atomic_store(&js_moved_rc, rc);
	return rc == WEFT_PENDING ? WEFT_PENDING : WEFT_READY;
}

static void js_link_in_the_window(struct weft_joinset *s)
{
	js_hooked_rc = weft_joinset_join_next_poll(s, &js_hooked.w, &js_hooked.c.cx, NULL, NULL);
}

Test(joinset_order, a_joiner_that_is_no_member_is_not_woken_for_the_last_one_running,
     .timeout = 20)
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_joinset *s;
	cr_assert_eq(weft_joinset_create(&s), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_sem_create(0, &js_gate[i]), 0);
	cr_assert_eq(weft_joinset_spawn(s, rt, js_gated, (void *)0, NULL), 0);
	cr_assert_eq(weft_joinset_spawn(s, rt, js_gated, (void *)1, NULL), 0);
	struct cw j1, j2;
	cw_init(&j1);
	cw_init(&j2);
	void *r = NULL;
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), WEFT_PENDING);
	cr_assert_eq(weft_joinset_join_next_poll(s, &j2.w, &j2.c.cx, &r, NULL), WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(js_gate[1], 1), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&j1.c.woke) == 1, WT_LONG_MS), "member 1's end "
		  "woke no joiner");
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), 0);
	cr_assert_eq((uintptr_t)r, 11);
	cr_assert_eq(atomic_load(&j2.c.woke), 0, "a joiner that is no member was woken when "
		     "one member was left running");
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(js_gate[0], 1), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&j2.c.woke) == 1, WT_LONG_MS), "member 0's end "
		  "woke no joiner");
	r = NULL;
	cr_assert_eq(weft_joinset_join_next_poll(s, &j2.w, &j2.c.cx, &r, NULL), 0);
	cr_assert_eq((uintptr_t)r, 10);
	/* the set is empty: the other joiner looks again (-ENOENT) */
	cr_assert_eq(atomic_load(&j1.c.woke), 2);
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), -ENOENT);

	/* part 2: one member at a time, the joiner linked while it is spawned */
	enum { ROUNDS = 8 };
	cw_init(&js_hooked);
	for (int i = 0; i < ROUNDS; i++) {
		js_hooked_rc = 1;
		weft__joinset_spawned_hook = js_link_in_the_window;
		int rc = weft_joinset_spawn(s, rt, js_gated, (void *)0, NULL);
		weft__joinset_spawned_hook = NULL;
		cr_assert_eq(rc, 0);
		cr_assert_eq(js_hooked_rc, WEFT_PENDING, "round %d: %d", i, js_hooked_rc);
		cr_assert_eq(atomic_load(&js_hooked.c.woke), i, "round %d: the member's listing "
			     "woke the joiner (%d wakes)", i, atomic_load(&js_hooked.c.woke));
		cr_assert_eq(weft_sem_release_n(js_gate[0], 1), 0);
		cr_assert(WT_WAIT_UNTIL(atomic_load(&js_hooked.c.woke) == i + 1, WT_LONG_MS),
			  "round %d: the member's end woke no joiner", i);
		r = NULL;
		cr_assert_eq(weft_joinset_join_next_poll(s, &js_hooked.w, &js_hooked.c.cx, &r,
							 NULL), 0);
		cr_assert_eq((uintptr_t)r, 10);
	}
	cr_assert_eq(atomic_load(&js_hooked.c.woke), ROUNDS, "%d wakes for %d members",
		     atomic_load(&js_hooked.c.woke), ROUNDS);
	cr_assert_eq(weft_joinset_len(s), 0);

	/* part 3: the entry was not woken (linked where it could be no
	 * member); the member that polls it once it is left alone is told
	 * -EDEADLK all the same */
	js_moved_set = s;
	cw_init(&js_moved);
	cw_init(&j1);
	cr_assert_eq(weft_joinset_spawn(s, rt, js_gated, (void *)1, NULL), 0);
	cr_assert_eq(weft_joinset_spawn_poll(s, rt, js_moved_poll, NULL, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), WEFT_PENDING);
	cr_assert_eq(weft_joinset_join_next_poll(s, &js_moved.w, &js_moved.c.cx, NULL, NULL),
		     WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(js_gate[1], 1), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&j1.c.woke) == 1, WT_LONG_MS));
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), 0);
	cr_assert_eq(atomic_load(&js_moved.c.woke), 0);
	atomic_store(&js_moved_go, 1);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&js_moved_rc) != 1000, WT_LONG_MS), "never polled");
	cr_assert_eq(atomic_load(&js_moved_rc), -EDEADLK, "the member alone said %d",
		     atomic_load(&js_moved_rc));
	cr_assert_eq(weft_joinset_join_next(s, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_len(s), 0);
	cr_assert_eq(weft_joinset_destroy(s), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_sem_destroy(js_gate[i]), 0);
	wt_rt_destroy(rt);
}

/*
 * An entry linked by another task that may be a member (flagged: here a
 * member of another set), after the set came down to one member; then
 * polled by that member. The member alone looked again only for an
 * entry linked unflagged: this one said WEFT_PENDING, and the member
 * waited for itself for good (found by a review). It says -EDEADLK, as
 * for an entry linked by a hand-driven joiner (part 3 above).
 */
static struct weft_joinset *js_flag_other;      /* the set the linker is a member of */
static atomic_int js_flag_link_rc = 1000;

static enum weft_poll js_flag_linker(void *state, struct weft_cx *cx)
{
	(void)state;
	/* a member of js_flag_other (in_joinset) links js_moved.w on
	 * js_moved_set, where it is no member */
	atomic_store(&js_flag_link_rc,
		     weft_joinset_join_next_poll(js_moved_set, &js_moved.w, cx, NULL, NULL));
	return WEFT_READY; /* the entry stays linked, for the member to poll */
}

Test(joinset_order, a_member_alone_polling_an_entry_another_member_linked_is_edeadlk,
     .timeout = 20)
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_joinset *s;
	cr_assert_eq(weft_joinset_create(&s), 0);
	cr_assert_eq(weft_joinset_create(&js_flag_other), 0);
	cr_assert_eq(weft_sem_create(0, &js_gate[1]), 0);
	js_moved_set = s;
	atomic_store(&js_moved_go, 0);
	atomic_store(&js_moved_rc, 1000);
	cw_init(&js_moved);
	struct cw j1;
	cw_init(&j1);
	void *r = NULL;
	/* the set: a gated fiber and the poll task member, waiting for go */
	cr_assert_eq(weft_joinset_spawn(s, rt, js_gated, (void *)1, NULL), 0);
	cr_assert_eq(weft_joinset_spawn_poll(s, rt, js_moved_poll, NULL, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), WEFT_PENDING);
	cr_assert_eq(weft_sem_release_n(js_gate[1], 1), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&j1.c.woke) == 1, WT_LONG_MS));
	cr_assert_eq(weft_joinset_join_next_poll(s, &j1.w, &j1.c.cx, &r, NULL), 0);
	cr_assert_eq((uintptr_t)r, 11);
	/* down to the poll task member: now a member of another set links */
	cr_assert_eq(weft_joinset_spawn_poll(js_flag_other, rt, js_flag_linker, NULL, NULL, NULL),
		     0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&js_flag_link_rc) != 1000, WT_LONG_MS), "never polled");
	cr_assert_eq(atomic_load(&js_flag_link_rc), WEFT_PENDING);
	cr_assert_eq(weft_joinset_join_next(js_flag_other, NULL, NULL), 0);
	atomic_store(&js_moved_go, 1);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&js_moved_rc) != 1000, WT_LONG_MS), "never polled");
	cr_assert_eq(atomic_load(&js_moved_rc), -EDEADLK, "the member alone said %d",
		     atomic_load(&js_moved_rc));
	cr_assert_eq(weft_joinset_join_next(s, NULL, NULL), 0);
	cr_assert_eq(weft_joinset_len(s), 0);
	cr_assert_eq(weft_joinset_destroy(s), 0);
	cr_assert_eq(weft_joinset_destroy(js_flag_other), 0);
	cr_assert_eq(weft_sem_destroy(js_gate[1]), 0);
	wt_rt_destroy(rt);
}
