/*
 * test_chan_order.c - a later caller never overtakes a waiting one on a
 * channel, in the two states where it used to (found by a review of the
 * channels, sixteenth session).
 *
 * The poll forms are driven by hand from the test thread: each waiter has
 * its own weft_cx with a waker that counts its wakes (and may run a hook),
 * so the wait lists are built in exactly the order the test wants and
 * every step is deterministic. No runtime is involved.
 *
 *  1. Rendezvous: receiver R3 waits behind R1; R1 has been handed an item
 *     that it has not collected yet, and sender S waits because that item
 *     holds the channel's one slot. A new receiver must not take S's item:
 *     it is R3's once R1 collects.
 *  2. Buffered: a freed slot belongs to the first waiting sender even when
 *     reaching it takes more than one batch of wakes (arms of selects that
 *     another arm already won are woken and skipped, 15 per batch). A new
 *     sender that comes in while the batch is woken (here: from one of
 *     those wakes) must not take the slot.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "runtime.h"

struct hand_cx {
	unsigned budget;
	struct weft_cx cx;
	atomic_int woke;
	void (*on_wake)(struct hand_cx *);
};

static void *hc_clone(void *d) { return d; }
static void hc_wake(void *d)
{
	struct hand_cx *c = d;
	atomic_fetch_add(&c->woke, 1);
	if (c->on_wake)
		c->on_wake(c);
}
static void hc_drop(void *d) { (void)d; }
static const struct weft_waker_vtable hc_vt = { hc_clone, hc_wake, hc_wake, hc_drop };

static void hc_init(struct hand_cx *c)
{
	memset(c, 0, sizeof(*c));
	c->budget = 128;
	c->cx.budget = &c->budget;
	c->cx.waker = (weft_waker){ &hc_vt, c };
}

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
