/*
 * test_sync.c - the contract of weft/sync.h, one primitive at a time.
 *
 * For each primitive: its non-waiting semantics and error codes on the
 * test thread; waiting poll tasks (a generic `waiter` task below) woken in
 * FIFO order; abort while waiting (the task's drop calls weft_wait_cancel:
 * the others still get woken, nothing leaks, weft_runtime_destroy == 0 and
 * the object's destroy == 0); abort of a waiter that was already granted
 * something (it must pass the grant on); close while waiting; the blocking
 * forms from plain threads outside the runtime; and -EDEADLK for a
 * blocking form called from a poll task on a worker (fibers will lift it).
 *
 * "Pending in order": each waiter is spawned and seen parked (its poll
 * returned WEFT_PENDING with the entry linked) before the next is spawned,
 * so the wait-list order is the spawn order. workers = 1 where a gate task
 * must keep the only worker busy while the test thread arranges a race.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

/* ------------------------------------------------------- generic waiter */

enum op {
	OP_ONESHOT_RECV, OP_CHAN_RECV, OP_CHAN_SEND, OP_NOTIFY, OP_MUTEX, OP_SEM, OP_WG,
	OP_CHAN_SEND16, /* a 16-byte item { arg, ~arg } from a stack temporary */
	OP_BCAST_RECV,  /* obj: a weft_broadcast_rx; got: the item, arg: lagged */
	OP_WATCH_CHANGED, /* obj: a weft_watch_rx */
	OP_BLOCKING, /* call every blocking form once, record the return codes */
};

static atomic_int order_ctr; /* completion order across waiters */

struct waiter {
	enum op op;
	void *obj;
	uint64_t arg;             /* chan send value, sem n */
	struct weft_wait w;
	atomic_int polls;
	atomic_int parked;        /* returned WEFT_PENDING at least once */
	atomic_int done;          /* rc/got/order valid */
	atomic_int drops;
	int rc;
	uint64_t got;
	int order;
	bool unlock_after;        /* OP_MUTEX: unlock right after acquiring */
	bool own_receiver;        /* OP_ONESHOT_RECV: drop must drop the receiver */
	int blocking_rc[7];
	struct weft_task *h;
};

static enum weft_poll waiter_poll(void *state, struct weft_cx *cx)
{
	struct waiter *t = state;
	int rc = 0;
	void *v = NULL;
	atomic_fetch_add(&t->polls, 1);
	switch (t->op) {
	case OP_ONESHOT_RECV:
		rc = weft_oneshot_recv_poll(t->obj, &t->w, cx, &v);
		if (rc != WEFT_PENDING) {
			t->own_receiver = false;
			t->got = (uintptr_t)v;
		}
		break;
	case OP_CHAN_RECV:
		rc = weft_chan_recv_poll(t->obj, &t->w, cx, &t->got);
		break;
	case OP_CHAN_SEND:
		rc = weft_chan_send_poll(t->obj, &t->w, cx, &t->arg);
		break;
	case OP_BCAST_RECV:
		rc = weft_broadcast_recv_poll(t->obj, &t->w, cx, &t->got, &t->arg);
		break;
	case OP_WATCH_CHANGED:
		rc = weft_watch_changed_poll(t->obj, &t->w, cx);
		break;
	case OP_CHAN_SEND16: {
		uint64_t big[2] = { t->arg, ~t->arg };
		rc = weft_chan_send_poll(t->obj, &t->w, cx, big);
		break;
	}
	case OP_NOTIFY:
		rc = weft_notify_wait_poll(t->obj, &t->w, cx);
		break;
	case OP_MUTEX:
		rc = weft_mutex_lock_poll(t->obj, &t->w, cx);
		if (rc == 0 && t->unlock_after)
			weft_mutex_unlock(t->obj);
		break;
	case OP_SEM:
		rc = weft_sem_acquire_n_poll(t->obj, t->arg, &t->w, cx);
		break;
	case OP_WG:
		rc = weft_waitgroup_wait_poll(t->obj, &t->w, cx);
		break;
	case OP_BLOCKING: {
		void **objs = t->obj;
		void *val;
		uint64_t item = 0;
		t->blocking_rc[0] = weft_oneshot_recv(objs[0], &val);
		t->blocking_rc[1] = weft_chan_recv(objs[1], &item);
		t->blocking_rc[2] = weft_chan_send(objs[1], &item);
		t->blocking_rc[3] = weft_notify_wait(objs[2]);
		t->blocking_rc[4] = weft_mutex_lock(objs[3]);
		t->blocking_rc[5] = weft_sem_acquire_n(objs[4], 1);
		t->blocking_rc[6] = weft_waitgroup_wait(objs[5]);
		break;
	}
	}
	if (rc == WEFT_PENDING) {
		atomic_store(&t->parked, 1);
		return WEFT_PENDING;
	}
	t->rc = rc;
	t->order = atomic_fetch_add(&order_ctr, 1);
	atomic_store(&t->done, 1); /* seq_cst: publishes rc, got, order */
	return WEFT_READY;
}

static void waiter_drop(void *state)
{
	struct waiter *t = state;
	weft_wait_cancel(&t->w);
	if (t->own_receiver)
		weft_oneshot_receiver_drop(t->obj);
	atomic_fetch_add(&t->drops, 1);
}

static void waiter_spawn(struct weft_runtime *rt, struct waiter *t, enum op op, void *obj,
			 uint64_t arg)
{
	memset(t, 0, sizeof(*t));
	t->op = op;
	t->obj = obj;
	t->arg = arg;
	t->own_receiver = op == OP_ONESHOT_RECV;
	int rc = weft_spawn_poll(rt, waiter_poll, t, waiter_drop, &t->h);
	cr_assert_eq(rc, 0, "spawn waiter = %d", rc);
}

/* Spawn and wait until the task has linked its entry. */
static void waiter_park(struct weft_runtime *rt, struct waiter *t, enum op op, void *obj,
			uint64_t arg)
{
	waiter_spawn(rt, t, op, obj, arg);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&t->parked) || atomic_load(&t->done), WT_LONG_MS),
		  "waiter never polled");
	cr_assert(!atomic_load(&t->done), "waiter finished at once (rc %d), expected to wait",
		  t->rc);
}

static void waiter_expect_done(struct waiter *t, int rc, const char *what)
{
	cr_assert(WT_WAIT_UNTIL(atomic_load(&t->done), WT_LONG_MS), "%s: waiter never woken", what);
	cr_assert_eq(t->rc, rc, "%s: rc %d (%s), want %d", what, t->rc, weft_strerror(t->rc), rc);
}

static void waiter_join(struct waiter *t, int want)
{
	int rc = weft_join(t->h, NULL);
	cr_assert_eq(rc, want, "join waiter = %d, want %d", rc, want);
	t->h = NULL;
	cr_assert_eq(atomic_load(&t->drops), 1, "waiter drop ran %d times", atomic_load(&t->drops));
}

/* Abort a waiter and check its drop ran once (join gives -ECANCELED). */
static void waiter_abort(struct waiter *t)
{
	cr_assert_eq(weft_abort(t->h), 0);
	waiter_join(t, -ECANCELED);
	cr_assert(!atomic_load(&t->done));
}

/* Still waiting after a pause: nothing woke it. */
static void waiter_still_waiting(struct waiter *t, const char *what)
{
	wt_sleep_ms(30);
	cr_assert(!atomic_load(&t->done), "%s: woken (rc %d), expected to keep waiting", what,
		  t->rc);
}

/* ------------------------------------------------------------ wait entry */

Test(wait, cancel_idle_entry_is_noop, .timeout = WT_TMO(10))
{
	struct weft_wait w = WEFT_WAIT_INIT;
	weft_wait_cancel(&w);
	weft_wait_cancel(&w);
	weft_wait_cancel(NULL);
	struct weft_wait z;
	memset(&z, 0, sizeof(z));
	weft_wait_cancel(&z);
}

/* An entry linked to one object is refused by another (-EINVAL). */
Test(wait, entry_of_another_object_einval, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_notify *n1, *n2;
	cr_assert_eq(weft_notify_create(&n1), 0);
	cr_assert_eq(weft_notify_create(&n2), 0);
	struct waiter t;
	waiter_park(rt, &t, OP_NOTIFY, n1, 0);
	t.obj = n2; /* next poll uses the other object with the linked entry */
	cr_assert_eq(weft_notify_one(n1), 0); /* wakes the task; its poll now uses n2 */
	waiter_expect_done(&t, -EINVAL, "entry linked elsewhere");
	/* The entry was granted by n1 and never consumed; the task's drop
	 * cancels it, which stores the notify_one permit back in n1. */
	waiter_join(&t, 0);
	cr_assert_eq(weft_notify_wait(n1), 0, "the cancelled grant became a permit");
	cr_assert_eq(weft_notify_destroy(n1), 0);
	cr_assert_eq(weft_notify_destroy(n2), 0);
	wt_rt_destroy(rt);
}

/* ---------------------------------------------------------------- oneshot */

static atomic_int value_drops;
static void count_value_drop(void *v) { (void)v; atomic_fetch_add(&value_drops, 1); }

Test(oneshot, send_then_try_recv, .timeout = WT_TMO(10))
{
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(NULL, &o), 0);
	void *v = NULL;
	cr_assert_eq(weft_oneshot_try_recv(o, &v), -EAGAIN);
	cr_assert_eq(weft_oneshot_send(o, (void *)0x1234), 0);
	cr_assert_eq(weft_oneshot_try_recv(o, &v), 0); /* frees o */
	cr_assert_eq(v, (void *)0x1234);
}

Test(oneshot, errors, .timeout = WT_TMO(10))
{
	void *v;
	cr_assert_eq(weft_oneshot_create(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_oneshot_send(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_oneshot_sender_drop(NULL), -EINVAL);
	cr_assert_eq(weft_oneshot_receiver_drop(NULL), -EINVAL);
	cr_assert_eq(weft_oneshot_try_recv(NULL, &v), -EINVAL);
	cr_assert_eq(weft_oneshot_recv(NULL, &v), -EINVAL);
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(NULL, &o), 0);
	cr_assert_eq(weft_oneshot_recv(o, NULL), -EINVAL); /* nothing consumed */
	cr_assert_eq(weft_oneshot_sender_drop(o), 0);
	cr_assert_eq(weft_oneshot_try_recv(o, &v), -EPIPE); /* frees o */
}

Test(oneshot, receiver_gone_send_epipe, .timeout = WT_TMO(10))
{
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(count_value_drop, &o), 0);
	cr_assert_eq(weft_oneshot_receiver_drop(o), 0);
	cr_assert_eq(weft_oneshot_send(o, (void *)1), -EPIPE); /* frees o */
	cr_assert_eq(atomic_load(&value_drops), 0, "a refused value is the sender's");
}

Test(oneshot, unreceived_value_dropped, .timeout = WT_TMO(10))
{
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(count_value_drop, &o), 0);
	cr_assert_eq(weft_oneshot_send(o, (void *)1), 0);
	cr_assert_eq(weft_oneshot_receiver_drop(o), 0);
	cr_assert_eq(atomic_load(&value_drops), 1);
}

Test(oneshot, task_waits_then_receives, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(NULL, &o), 0);
	struct waiter t;
	waiter_park(rt, &t, OP_ONESHOT_RECV, o, 0);
	waiter_still_waiting(&t, "nothing sent");
	cr_assert_eq(weft_oneshot_send(o, (void *)0xabc), 0);
	waiter_expect_done(&t, 0, "send");
	cr_assert_eq(t.got, 0xabc);
	waiter_join(&t, 0);
	wt_rt_destroy(rt);
}

Test(oneshot, sender_drop_wakes_with_epipe, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(NULL, &o), 0);
	struct waiter t;
	waiter_park(rt, &t, OP_ONESHOT_RECV, o, 0);
	cr_assert_eq(weft_oneshot_sender_drop(o), 0);
	waiter_expect_done(&t, -EPIPE, "sender dropped");
	waiter_join(&t, 0);
	wt_rt_destroy(rt);
}

Test(oneshot, abort_while_waiting, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_oneshot *o;
	cr_assert_eq(weft_oneshot_create(count_value_drop, &o), 0);
	struct waiter t;
	waiter_park(rt, &t, OP_ONESHOT_RECV, o, 0);
	waiter_abort(&t); /* drop: cancel entry, drop the receiver */
	cr_assert_eq(weft_oneshot_send(o, (void *)7), -EPIPE); /* frees o */
	cr_assert_eq(atomic_load(&value_drops), 0);
	wt_rt_destroy(rt);
}

struct thread_recv { struct weft_oneshot *o; void *v; int rc; };

static void *oneshot_recv_thread(void *arg)
{
	struct thread_recv *a = arg;
	a->rc = weft_oneshot_recv(a->o, &a->v);
	return NULL;
}

Test(oneshot, blocking_recv_on_plain_thread, .timeout = WT_TMO(20))
{
	struct thread_recv a = { 0 };
	cr_assert_eq(weft_oneshot_create(NULL, &a.o), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, oneshot_recv_thread, &a), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_oneshot_send(a.o, (void *)99), 0);
	pthread_join(th, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(a.v, (void *)99);
}

/* ---------------------------------------------------------------- channel */

Test(chan, errors, .timeout = WT_TMO(10))
{
	struct weft_chan *ch = (void *)1;
	cr_assert_eq(weft_chan_create(8, 4, NULL), -EINVAL);
	cr_assert_eq(weft_chan_create(0, 4, &ch), -EINVAL);
	cr_assert_eq(weft_chan_create(SIZE_MAX / 2, 4, &ch), -EINVAL);
	cr_assert_eq(weft_chan_create(SIZE_MAX / 2, 0, &ch), -EINVAL);
	cr_assert_eq(ch, (void *)1, "out written by a failed create");
	uint64_t x = 0;
	cr_assert_eq(weft_chan_try_send(NULL, &x), -EINVAL);
	cr_assert_eq(weft_chan_try_recv(NULL, &x), -EINVAL);
	cr_assert_eq(weft_chan_send(NULL, &x), -EINVAL);
	cr_assert_eq(weft_chan_recv(NULL, &x), -EINVAL);
	cr_assert_eq(weft_chan_close(NULL), -EINVAL);
	cr_assert_eq(weft_chan_destroy(NULL), -EINVAL);
	size_t len;
	cr_assert_eq(weft_chan_len(NULL, &len), -EINVAL);
	cr_assert_eq(weft_chan_is_closed(NULL), -EINVAL);
	cr_assert_eq(weft_chan_create(8, 4, &ch), 0);
	cr_assert_eq(weft_chan_try_send(ch, NULL), -EINVAL);
	cr_assert_eq(weft_chan_try_recv(ch, NULL), -EINVAL);
	cr_assert_eq(weft_chan_len(ch, NULL), -EINVAL);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

Test(chan, len_and_is_closed, .timeout = WT_TMO(10))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 3, &ch), 0);
	size_t len = 99;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(weft_chan_is_closed(ch), 0);
	uint64_t x = 1;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_is_closed(ch), 1);
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 2, "close keeps the buffered items");
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 1);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ------------------------------------------------------- rendezvous channel */

Test(rendezvous, try_forms_need_a_partner, .timeout = WT_TMO(10))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	uint64_t x = 5;
	cr_assert_eq(weft_chan_try_send(ch, &x), -EAGAIN, "no receiver: a send cannot complete");
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	size_t len = 9;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_try_send(ch, &x), -EPIPE);
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EPIPE);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* A sender waits until a receiver takes its item; then it completes. */
Test(rendezvous, sender_waits_for_receiver, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	struct waiter s[2];
	waiter_park(rt, &s[0], OP_CHAN_SEND, ch, 7);
	waiter_park(rt, &s[1], OP_CHAN_SEND, ch, 8);
	waiter_still_waiting(&s[0], "sender without receiver");
	size_t len = 9;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 0, "a waiting sender's item is not buffered");
	uint64_t x;
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 7, "FIFO: the first sender's item");
	waiter_expect_done(&s[0], 0, "first sender");
	waiter_still_waiting(&s[1], "second sender");
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 8);
	waiter_expect_done(&s[1], 0, "second sender");
	for (int i = 0; i < 2; i++)
		waiter_join(&s[i], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/* A receiver waits; a send hands it the item and completes at once. */
Test(rendezvous, receiver_waits_for_sender, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	struct waiter r[2];
	waiter_park(rt, &r[0], OP_CHAN_RECV, ch, 0);
	waiter_park(rt, &r[1], OP_CHAN_RECV, ch, 0);
	uint64_t x = 41;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	waiter_expect_done(&r[0], 0, "first receiver");
	cr_assert_eq(r[0].got, 41);
	waiter_still_waiting(&r[1], "second receiver");
	cr_assert_eq(weft_chan_close(ch), 0);
	waiter_expect_done(&r[1], -EPIPE, "second receiver after close");
	for (int i = 0; i < 2; i++)
		waiter_join(&r[i], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/* Close wakes a waiting sender with -EPIPE; its item is not sent. */
Test(rendezvous, close_fails_waiting_sender, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	struct waiter s;
	waiter_park(rt, &s, OP_CHAN_SEND, ch, 3);
	cr_assert_eq(weft_chan_close(ch), 0);
	waiter_expect_done(&s, -EPIPE, "sender after close");
	uint64_t x;
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EPIPE);
	waiter_join(&s, 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * The item handed to a receiver that is aborted before it runs is held for
 * the next receiver (senders wait meanwhile), and received exactly once.
 */
Test(rendezvous, cancelled_receiver_item_held_for_next, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &ch), 0);
	struct waiter r;
	waiter_park(rt, &r, OP_CHAN_RECV, ch, 0);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	uint64_t x = 99;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	cr_assert_eq(weft_abort(r.h), 0);
	wt_gate_open(&g);
	waiter_join(&r, -ECANCELED);
	size_t len = 0;
	cr_assert_eq(weft_chan_len(ch, &len), 0);
	cr_assert_eq(len, 1, "the given-back item is held");
	x = 100;
	cr_assert_eq(weft_chan_try_send(ch, &x), -EAGAIN);
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 99);
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/* Threads with the blocking forms and 24-byte items (through pointers):
 * every item arrives once, in order, and a sender never runs ahead of its
 * receiver by more than the item in hand. */
struct rv_big { uint64_t seq, a, b; };
struct rv_arg { struct weft_chan *ch; atomic_long taken; int rc; };

static void *rv_sender(void *p)
{
	struct rv_arg *a = p;
	for (uint64_t i = 0; i < 2000; i++) {
		struct rv_big b = { i, i * 3, ~i };
		if ((a->rc = weft_chan_send(a->ch, &b)) != 0)
			return NULL;
		/* completed only once taken: */
		if (atomic_load(&a->taken) < (long)i) {
			a->rc = -1000;
			return NULL;
		}
	}
	return NULL;
}

Test(rendezvous, blocking_threads_big_items, .timeout = WT_TMO(30))
{
	struct rv_arg a = { 0 };
	cr_assert_eq(weft_chan_create(sizeof(struct rv_big), 0, &a.ch), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, rv_sender, &a), 0);
	for (uint64_t i = 0; i < 2000; i++) {
		struct rv_big b;
		cr_assert_eq(weft_chan_recv(a.ch, &b), 0);
		cr_assert(b.seq == i && b.a == i * 3 && b.b == ~i, "item %llu wrong",
			  (unsigned long long)i);
		atomic_store(&a.taken, (long)i + 1);
	}
	pthread_join(th, NULL);
	cr_assert_eq(a.rc, 0, "sender rc %d", a.rc);
	cr_assert_eq(weft_chan_destroy(a.ch), 0);
}

Test(chan, fifo_full_empty_close_drain, .timeout = WT_TMO(10))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &ch), 0);
	uint64_t x;
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(weft_chan_try_send(ch, &i), 0);
	x = 4;
	cr_assert_eq(weft_chan_try_send(ch, &x), -EAGAIN, "full at capacity");
	/* Wrap around the ring a few times. */
	for (uint64_t i = 0; i < 40; i++) {
		cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
		cr_assert_eq(x, i);
		uint64_t y = i + 4;
		cr_assert_eq(weft_chan_try_send(ch, &y), 0);
	}
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_close(ch), 0, "close is idempotent");
	x = 0;
	cr_assert_eq(weft_chan_try_send(ch, &x), -EPIPE);
	cr_assert_eq(weft_chan_send(ch, &x), -EPIPE, "blocking send after close");
	for (uint64_t i = 40; i < 44; i++) {
		cr_assert_eq(weft_chan_recv(ch, &x), 0, "drain after close");
		cr_assert_eq(x, i);
	}
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EPIPE);
	cr_assert_eq(weft_chan_recv(ch, &x), -EPIPE);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

Test(chan, large_items_copied, .timeout = WT_TMO(10))
{
	struct weft_chan *ch;
	char a[100], b[100];
	cr_assert_eq(weft_chan_create(sizeof(a), 3, &ch), 0);
	for (int k = 0; k < 10; k++) {
		memset(a, 'a' + k, sizeof(a));
		cr_assert_eq(weft_chan_try_send(ch, a), 0);
		memset(a, 0, sizeof(a));
		cr_assert_eq(weft_chan_try_recv(ch, b), 0);
		for (size_t i = 0; i < sizeof(b); i++)
			cr_assert_eq(b[i], 'a' + k);
	}
	cr_assert_eq(weft_chan_destroy(ch), 0, "items still buffered are discarded");
}

Test(chan, receivers_woken_fifo, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 8, &ch), 0);
	struct waiter r[4];
	for (int i = 0; i < 4; i++)
		waiter_park(rt, &r[i], OP_CHAN_RECV, ch, 0);
	uint64_t x = 0;
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	for (uint64_t i = 0; i < 4; i++) {
		x = 100 + i;
		cr_assert_eq(weft_chan_try_send(ch, &x), 0);
		waiter_expect_done(&r[i], 0, "receiver");
		cr_assert_eq(r[i].got, 100 + i, "receiver %d got %llu", (int)i,
			     (unsigned long long)r[i].got);
		for (int j = (int)i + 1; j < 4; j++)
			cr_assert(!atomic_load(&r[j].done), "receiver %d woken before %d", j, (int)i);
	}
	for (int i = 0; i < 4; i++)
		waiter_join(&r[i], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

Test(chan, senders_woken_fifo_no_barging, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &ch), 0);
	uint64_t x = 1;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	struct waiter s[3];
	for (int i = 0; i < 3; i++)
		waiter_park(rt, &s[i], OP_CHAN_SEND, ch, 10 + (uint64_t)i);
	for (uint64_t want = 1; want <= 12; want = want == 1 ? 10 : want + 1) {
		cr_assert_eq(weft_chan_recv(ch, &x), 0);
		cr_assert_eq(x, want, "received %llu, want %llu", (unsigned long long)x,
			     (unsigned long long)want);
		if (want < 12) {
			/* The freed slot belongs to the first waiting sender. */
			uint64_t y = 999;
			int rc = weft_chan_try_send(ch, &y);
			cr_assert_eq(rc, -EAGAIN, "try_send overtook a waiting sender (%d)", rc);
		}
	}
	for (int i = 0; i < 3; i++) {
		waiter_expect_done(&s[i], 0, "sender");
		waiter_join(&s[i], 0);
	}
	/* (The values 10, 11, 12 arriving in that order is the FIFO check: each
	 * sender's completion is recorded after its send, so `order` may not be.) */
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * A sender waiting on a full channel gets the first slot freed, at once,
 * whatever the capacity. Holding senders back until half the channel was
 * free (tried for fanout_mpsc: fewer parks) deadlocked a task that both
 * receives and sends on one channel, and a receiver that takes one item
 * and then waits for its producers: here the sender must complete after
 * a single receive.
 */
Test(chan, waiting_sender_gets_the_first_freed_slot, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &ch), 0);
	for (uint64_t x = 1; x <= 4; x++)
		cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	struct waiter s;
	waiter_park(rt, &s, OP_CHAN_SEND, ch, 10);
	uint64_t x;
	cr_assert_eq(weft_chan_recv(ch, &x), 0);
	cr_assert_eq(x, 1);
	waiter_expect_done(&s, 0, "sender after one receive of four");
	waiter_join(&s, 0);
	uint64_t want[] = { 2, 3, 4, 10 };
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(weft_chan_recv(ch, &x), 0);
		cr_assert_eq(x, want[i]);
	}
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

Test(chan, close_while_waiting, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *full, *empty;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &full), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &empty), 0);
	uint64_t x = 5;
	cr_assert_eq(weft_chan_try_send(full, &x), 0);
	struct waiter s[2], r[3];
	for (int i = 0; i < 2; i++)
		waiter_park(rt, &s[i], OP_CHAN_SEND, full, 1);
	for (int i = 0; i < 3; i++)
		waiter_park(rt, &r[i], OP_CHAN_RECV, empty, 0);
	cr_assert_eq(weft_chan_close(full), 0);
	cr_assert_eq(weft_chan_close(empty), 0);
	for (int i = 0; i < 2; i++)
		waiter_expect_done(&s[i], -EPIPE, "sender on closed channel");
	for (int i = 0; i < 3; i++)
		waiter_expect_done(&r[i], -EPIPE, "receiver on closed empty channel");
	/* The buffered item survives the close for receivers. */
	struct waiter d;
	waiter_spawn(rt, &d, OP_CHAN_RECV, full, 0);
	waiter_expect_done(&d, 0, "drain after close");
	cr_assert_eq(d.got, 5);
	waiter_join(&d, 0);
	for (int i = 0; i < 2; i++)
		waiter_join(&s[i], 0);
	for (int i = 0; i < 3; i++)
		waiter_join(&r[i], 0);
	cr_assert_eq(weft_chan_destroy(full), 0);
	cr_assert_eq(weft_chan_destroy(empty), 0);
	wt_rt_destroy(rt);
}

Test(chan, abort_while_waiting, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &ch), 0);
	struct waiter r[3];
	for (int i = 0; i < 3; i++)
		waiter_park(rt, &r[i], OP_CHAN_RECV, ch, 0);
	cr_assert_eq(weft_chan_destroy(ch), -EBUSY, "destroy with linked waiters");
	waiter_abort(&r[1]);
	uint64_t x = 1;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	x = 2;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	waiter_expect_done(&r[0], 0, "first receiver");
	waiter_expect_done(&r[2], 0, "third receiver");
	/* Woken in order; which buffered item each takes depends on which
	 * of the two runs first. */
	cr_assert(r[0].got + r[2].got == 3 && r[0].got * r[2].got == 2,
		  "receivers got %llu and %llu", (unsigned long long)r[0].got,
		  (unsigned long long)r[2].got);
	waiter_join(&r[0], 0);
	waiter_join(&r[2], 0);
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN, "no item duplicated");
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * The item reserved for a woken receiver that is aborted before it runs
 * goes to the next receiver. workers = 1 and a gate hold the worker while
 * the send grants the item and the abort lands.
 */
Test(chan, abort_granted_receiver_passes_item, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &ch), 0);
	struct waiter r[2];
	for (int i = 0; i < 2; i++)
		waiter_park(rt, &r[i], OP_CHAN_RECV, ch, 0);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	uint64_t x = 42;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0); /* granted to r[0], which cannot run */
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN, "the item is reserved");
	cr_assert_eq(weft_abort(r[0].h), 0);
	wt_gate_open(&g);
	waiter_join(&r[0], -ECANCELED);
	waiter_expect_done(&r[1], 0, "second receiver after the first was aborted");
	cr_assert_eq(r[1].got, 42);
	waiter_join(&r[1], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * A sender of a small item (kept in its wait entry) is completed by the
 * receive that frees a slot: its item moves into the buffer at once. An
 * abort that lands afterwards cannot undo the send: the item is received
 * exactly once, and the next sender keeps waiting for the next slot.
 */
Test(chan, completed_sender_abort_keeps_item_sent, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &ch), 0);
	uint64_t x = 1;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0);
	struct waiter s[2];
	for (int i = 0; i < 2; i++)
		waiter_park(rt, &s[i], OP_CHAN_SEND, ch, 10 + (uint64_t)i);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0); /* s[0]'s item moves in */
	cr_assert_eq(x, 1);
	cr_assert_eq(weft_chan_try_send(ch, &x), -EAGAIN,
		     "the first sender's item is buffered before it runs");
	cr_assert_eq(weft_chan_destroy(ch), -EBUSY, "s[1] still linked");
	cr_assert_eq(weft_abort(s[0].h), 0);
	wt_gate_open(&g);
	waiter_join(&s[0], -ECANCELED);
	waiter_still_waiting(&s[1], "second sender");
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 10);
	waiter_expect_done(&s[1], 0, "second sender");
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 11);
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	waiter_join(&s[1], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * A poll-form sender of an item larger than 8 bytes has no storage (its
 * item may be a temporary): a freed slot is reserved for it instead, and if
 * it is aborted before using it the slot goes to the next sender.
 */
Test(chan, abort_granted_sender_passes_slot, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(2 * sizeof(uint64_t), 1, &ch), 0);
	uint64_t x[2] = { 1, 1 };
	cr_assert_eq(weft_chan_try_send(ch, x), 0);
	struct waiter s[2];
	for (int i = 0; i < 2; i++)
		waiter_park(rt, &s[i], OP_CHAN_SEND16, ch, 10 + (uint64_t)i);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_chan_try_recv(ch, x), 0); /* slot granted to s[0] */
	cr_assert_eq(weft_chan_try_send(ch, x), -EAGAIN, "the slot is reserved");
	cr_assert_eq(weft_abort(s[0].h), 0);
	wt_gate_open(&g);
	waiter_join(&s[0], -ECANCELED);
	waiter_expect_done(&s[1], 0, "second sender");
	cr_assert_eq(weft_chan_try_recv(ch, x), 0);
	cr_assert_eq(x[0], 11);
	cr_assert_eq(x[1], ~(uint64_t)11);
	cr_assert_eq(weft_chan_try_recv(ch, x), -EAGAIN);
	waiter_join(&s[1], 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * Direct hand-off to a waiting receiver, then the receiver is aborted
 * before it runs: the item it was handed goes back to the head of the
 * buffer, ahead of an item sent after it, and is received exactly once.
 */
Test(chan, handoff_cancelled_receiver_gives_item_back, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 2, &ch), 0);
	struct waiter r;
	waiter_park(rt, &r, OP_CHAN_RECV, ch, 0);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	uint64_t x = 42;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0); /* into r's entry */
	x = 43;
	cr_assert_eq(weft_chan_try_send(ch, &x), 0); /* buffered */
	x = 44;
	cr_assert_eq(weft_chan_try_send(ch, &x), -EAGAIN, "the handed-off item holds a slot");
	cr_assert_eq(weft_abort(r.h), 0);
	wt_gate_open(&g);
	waiter_join(&r, -ECANCELED);
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 42, "the given-back item leaves first");
	cr_assert_eq(weft_chan_try_recv(ch, &x), 0);
	cr_assert_eq(x, 43);
	cr_assert_eq(weft_chan_try_recv(ch, &x), -EAGAIN);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

/*
 * A fiber suspended in weft_chan_recv of 64-byte items is handed one,
 * then aborted before it runs: -ECANCELED, the item goes to the next
 * receiver, and the fiber's buffer is left as it was (sync.h: a receive
 * that fails received nothing). Before, the sender copied the item
 * straight into the caller's buffer, and the cancel gave it back from
 * there: the call said -ECANCELED with an item in its buffer, one the
 * next receiver got too. On a rendezvous and on a buffered channel.
 */
struct big64 { uint64_t v[8]; };
struct fiber_big_rx { struct weft_chan *ch; struct big64 buf; int rc; };

static void *fiber_recv_big(void *p)
{
	struct fiber_big_rx *a = p;
	a->rc = weft_chan_recv(a->ch, &a->buf);
	return NULL;
}

Test(chan, cancelled_blocking_receiver_leaves_its_buffer_alone, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	for (size_t cap = 0; cap <= 2; cap += 2) {
		struct fiber_big_rx a = { .rc = 1 };
		cr_assert_eq(weft_chan_create(sizeof(struct big64), cap, &a.ch), 0);
		memset(&a.buf, 0x5a, sizeof(a.buf));
		struct weft_task *h;
		cr_assert_eq(weft_spawn(rt, fiber_recv_big, &a, &h), 0);
		/* one worker: the gate runs once the fiber has suspended */
		struct wt_gate g;
		wt_gate_hold(rt, &g);
		struct big64 x;
		for (int i = 0; i < 8; i++)
			x.v[i] = 1000 + (uint64_t)i;
		/* rendezvous: 0 only with the fiber's receive waiting */
		cr_assert_eq(weft_chan_try_send(a.ch, &x), 0, "cap %zu", cap);
		cr_assert_eq(weft_abort(h), 0);
		wt_gate_open(&g);
		cr_assert_eq(weft_join(h, NULL), -EINTR);
		cr_assert_eq(a.rc, -ECANCELED, "cap %zu: rc %d", cap, a.rc);
		for (size_t i = 0; i < sizeof(a.buf); i++)
			cr_assert_eq(((unsigned char *)&a.buf)[i], 0x5a,
				     "cap %zu: byte %zu of a failed receive's buffer written", cap, i);
		struct big64 y;
		memset(&y, 0, sizeof(y));
		cr_assert_eq(weft_chan_try_recv(a.ch, &y), 0, "cap %zu: the item went on", cap);
		cr_assert_eq(memcmp(&x, &y, sizeof(x)), 0);
		cr_assert_eq(weft_chan_try_recv(a.ch, &y), -EAGAIN);
		cr_assert_eq(weft_chan_destroy(a.ch), 0);
	}
	wt_rt_destroy(rt);
}

/*
 * Same with a blocking receiver on a thread that times out: the item
 * handed to it as the time ran out is given back, or it is received; never
 * lost, never twice, and a receive that timed out left its buffer alone.
 * Repeated to land in the window now and then; with 8-byte items (kept in
 * the entry) and 64-byte ones.
 */
struct timed_rx { struct weft_chan *ch; int rc; struct big64 got; };

static void *timed_rx_thread(void *arg)
{
	struct timed_rx *t = arg;
	t->rc = weft_chan_recv_timeout(t->ch, &t->got, 200 * 1000);
	return NULL;
}

Test(chan, handoff_timed_out_receiver_loses_nothing, .timeout = WT_TMO(60))
{
	uint64_t seed = 7;
	for (size_t isz = sizeof(uint64_t); isz <= sizeof(struct big64); isz *= 8) {
		struct weft_chan *ch;
		cr_assert_eq(weft_chan_create(isz, 1, &ch), 0);
		for (uint64_t i = 1; i <= 300; i++) {
			struct timed_rx t = { ch, 1, { { 0 } } };
			struct big64 item, x;
			for (int k = 0; k < 8; k++)
				item.v[k] = i * 8 + (uint64_t)k;
			pthread_t th;
			cr_assert_eq(pthread_create(&th, NULL, timed_rx_thread, &t), 0);
			usleep(150 + (unsigned)(wt_rand(&seed) % 100));
			int src = weft_chan_try_send(ch, &item);
			pthread_join(th, NULL);
			int left = weft_chan_try_recv(ch, &x);
			if (src != 0) {
				cr_assert_eq(src, -EAGAIN);
				cr_assert_eq(left, -EAGAIN);
				continue;
			}
			if (t.rc == 0) {
				cr_assert_eq(memcmp(&t.got, &item, isz), 0);
				cr_assert_eq(left, -EAGAIN, "item %llu received twice",
					     (unsigned long long)i);
			} else {
				struct big64 zero = { { 0 } };
				cr_assert_eq(t.rc, -ETIMEDOUT);
				cr_assert_eq(memcmp(&t.got, &zero, sizeof(zero)), 0,
					     "%zu-byte item %llu written by a receive that timed out",
					     isz, (unsigned long long)i);
				cr_assert_eq(left, 0, "item %llu lost", (unsigned long long)i);
				cr_assert_eq(memcmp(&x, &item, isz), 0);
			}
		}
		cr_assert_eq(weft_chan_destroy(ch), 0);
	}
}

/*
 * Fan-in: 64 producer tasks on 2 workers into a capacity-16 channel, one
 * consumer: every item received exactly once and each producer's items in
 * order, through every hand-off path (small items in entries).
 */
enum { FAN_P = 64, FAN_N = 2000 };

struct fan {
	struct weft_chan *ch;
	struct weft_wait cw;
	uint32_t next_seq[FAN_P];
	uint64_t received;
	atomic_int bad;
	struct fan_p { struct fan *f; uint32_t id, next; struct weft_wait w; } p[FAN_P];
};

static enum weft_poll fan_producer(void *state, struct weft_cx *cx)
{
	struct fan_p *p = state;
	while (p->next < FAN_N) {
		uint64_t item = (uint64_t)p->id << 32 | p->next;
		int rc = weft_chan_send_poll(p->f->ch, &p->w, cx, &item);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		if (rc)
			atomic_fetch_add(&p->f->bad, 1);
		p->next++;
	}
	return WEFT_READY;
}

static enum weft_poll fan_consumer(void *state, struct weft_cx *cx)
{
	struct fan *f = state;
	while (f->received < (uint64_t)FAN_P * FAN_N) {
		uint64_t item;
		int rc = weft_chan_recv_poll(f->ch, &f->cw, cx, &item);
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		uint32_t id = (uint32_t)(item >> 32), seq = (uint32_t)item;
		if (rc || id >= FAN_P || seq != f->next_seq[id])
			atomic_fetch_add(&f->bad, 1);
		else
			f->next_seq[id]++;
		f->received++;
	}
	return WEFT_READY;
}

Test(chan, fanout_64_producers_conserve_items, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	static struct fan f;
	memset(&f, 0, sizeof(f));
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 16, &f.ch), 0);
	struct weft_task *c, *h[FAN_P];
	cr_assert_eq(weft_spawn_poll(rt, fan_consumer, &f, NULL, &c), 0);
	for (uint32_t i = 0; i < FAN_P; i++) {
		f.p[i] = (struct fan_p){ .f = &f, .id = i };
		cr_assert_eq(weft_spawn_poll(rt, fan_producer, &f.p[i], NULL, &h[i]), 0);
	}
	for (int i = 0; i < FAN_P; i++)
		cr_assert_eq(weft_join(h[i], NULL), 0);
	cr_assert_eq(weft_join(c, NULL), 0);
	cr_assert_eq(atomic_load(&f.bad), 0, "%d items out of order, foreign or failed",
		     atomic_load(&f.bad));
	for (int i = 0; i < FAN_P; i++)
		cr_assert_eq(f.next_seq[i], FAN_N, "producer %d: %u items", i, f.next_seq[i]);
	uint64_t x;
	cr_assert_eq(weft_chan_try_recv(f.ch, &x), -EAGAIN);
	cr_assert_eq(weft_chan_destroy(f.ch), 0);
	wt_rt_destroy(rt);
}

/* The same with fibers and 24-byte items: the blocking forms hand items
 * over through pointers to the fibers' own (suspended) frames. */
struct big { uint64_t id, seq, check; };
static struct weft_chan *g_bigch;

static void *big_producer(void *arg)
{
	uint64_t id = (uintptr_t)arg;
	for (uint64_t i = 0; i < 500; i++) {
		struct big b = { id, i, id * 1000003 + i };
		if (weft_chan_send(g_bigch, &b))
			return (void *)1;
	}
	return NULL;
}

static void *big_consumer(void *arg)
{
	(void)arg;
	uint64_t next[32] = { 0 };
	for (int n = 0; n < 32 * 500; n++) {
		struct big b;
		if (weft_chan_recv(g_bigch, &b) || b.id >= 32 || b.seq != next[b.id] ||
		    b.check != b.id * 1000003 + b.seq)
			return (void *)1;
		next[b.id]++;
	}
	return NULL;
}

Test(chan, fanout_fibers_big_items, .timeout = WT_TMO(60))
{
	struct weft_runtime *rt = wt_rt_create(2);
	cr_assert_eq(weft_chan_create(sizeof(struct big), 4, &g_bigch), 0);
	struct weft_task *c, *h[32];
	cr_assert_eq(weft_spawn(rt, big_consumer, NULL, &c), 0);
	for (uintptr_t i = 0; i < 32; i++)
		cr_assert_eq(weft_spawn(rt, big_producer, (void *)i, &h[i]), 0);
	void *r;
	for (int i = 0; i < 32; i++) {
		cr_assert_eq(weft_join(h[i], &r), 0);
		cr_assert_null(r, "producer %d failed", i);
	}
	cr_assert_eq(weft_join(c, &r), 0);
	cr_assert_null(r, "consumer saw a wrong, foreign or out-of-order item");
	cr_assert_eq(weft_chan_destroy(g_bigch), 0);
	wt_rt_destroy(rt);
}

/* Shutdown cancels waiting tasks: their drops cancel the entries. */
Test(chan, shutdown_with_waiters, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &ch), 0);
	struct waiter r[4];
	for (int i = 0; i < 4; i++)
		waiter_park(rt, &r[i], OP_CHAN_RECV, ch, 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_detach(r[i].h), 0);
	cr_assert_eq(weft_runtime_shutdown(rt, WEFT_FOREVER), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(atomic_load(&r[i].drops), 1);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

struct chan_thread { struct weft_chan *ch; uint64_t n; uint64_t sum; int rc; };

static void *chan_producer(void *arg)
{
	struct chan_thread *a = arg;
	for (uint64_t i = 1; i <= a->n && !a->rc; i++)
		a->rc = weft_chan_send(a->ch, &i);
	return NULL;
}

static void *chan_consumer(void *arg)
{
	struct chan_thread *a = arg;
	uint64_t x, last = 0;
	int rc;
	while ((rc = weft_chan_recv(a->ch, &x)) == 0) {
		if (x != last + 1)
			a->rc = -1000; /* out of order */
		last = x;
		a->sum += x;
		a->n++;
	}
	if (rc != -EPIPE)
		a->rc = rc;
	return NULL;
}

Test(chan, blocking_threads_outside_runtime, .timeout = WT_TMO(30))
{
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 2, &ch), 0);
	struct chan_thread p = { ch, 20000, 0, 0 }, c = { ch, 0, 0, 0 };
	pthread_t tp, tc;
	cr_assert_eq(pthread_create(&tc, NULL, chan_consumer, &c), 0);
	cr_assert_eq(pthread_create(&tp, NULL, chan_producer, &p), 0);
	pthread_join(tp, NULL);
	cr_assert_eq(p.rc, 0);
	cr_assert_eq(weft_chan_close(ch), 0);
	pthread_join(tc, NULL);
	cr_assert_eq(c.rc, 0, "consumer rc %d", c.rc);
	cr_assert_eq(c.n, 20000);
	cr_assert_eq(c.sum, 20000ull * 20001 / 2);
	cr_assert_eq(weft_chan_destroy(ch), 0);
}

/* ----------------------------------------------------------------- notify */

Test(notify, permit_stored_once, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(NULL), -EINVAL);
	cr_assert_eq(weft_notify_create(&n), 0);
	cr_assert_eq(weft_notify_one(n), 0);
	cr_assert_eq(weft_notify_one(n), 0); /* at most one permit */
	cr_assert_eq(weft_notify_wait(n), 0, "permit consumed without waiting");
	struct waiter t;
	waiter_park(rt, &t, OP_NOTIFY, n, 0);
	waiter_still_waiting(&t, "only one permit");
	cr_assert_eq(weft_notify_one(n), 0);
	waiter_expect_done(&t, 0, "notify_one");
	waiter_join(&t, 0);
	cr_assert_eq(weft_notify_destroy(n), 0);
	wt_rt_destroy(rt);
}

Test(notify, one_fifo_all_wakes_rest_no_permit, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	enum { N = 40 }; /* more than one wake batch */
	static struct waiter t[N];
	for (int i = 0; i < N; i++)
		waiter_park(rt, &t[i], OP_NOTIFY, n, 0);
	cr_assert_eq(weft_notify_one(n), 0);
	waiter_expect_done(&t[0], 0, "first waiter");
	waiter_still_waiting(&t[1], "notify_one wakes one");
	cr_assert_eq(weft_notify_all(n), 0);
	for (int i = 1; i < N; i++)
		waiter_expect_done(&t[i], 0, "notify_all");
	for (int i = 0; i < N; i++)
		waiter_join(&t[i], 0);
	struct waiter late;
	waiter_park(rt, &late, OP_NOTIFY, n, 0); /* notify_all stored no permit */
	waiter_abort(&late);
	cr_assert_eq(weft_notify_destroy(n), 0);
	wt_rt_destroy(rt);
}

Test(notify, abort_granted_passes_permit, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	struct waiter t[2];
	for (int i = 0; i < 2; i++)
		waiter_park(rt, &t[i], OP_NOTIFY, n, 0);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_notify_one(n), 0); /* granted to t[0] */
	cr_assert_eq(weft_abort(t[0].h), 0);
	wt_gate_open(&g);
	waiter_join(&t[0], -ECANCELED);
	waiter_expect_done(&t[1], 0, "the permit went to the next waiter");
	waiter_join(&t[1], 0);
	/* And with nobody left, a cancelled permit is stored. */
	waiter_park(rt, &t[0], OP_NOTIFY, n, 0);
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_notify_one(n), 0);
	cr_assert_eq(weft_abort(t[0].h), 0);
	wt_gate_open(&g);
	waiter_join(&t[0], -ECANCELED);
	cr_assert_eq(weft_notify_wait(n), 0, "the permit was stored");
	cr_assert_eq(weft_notify_destroy(n), 0);
	wt_rt_destroy(rt);
}

Test(notify, abort_while_waiting, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_notify *n;
	cr_assert_eq(weft_notify_create(&n), 0);
	struct waiter t[3];
	for (int i = 0; i < 3; i++)
		waiter_park(rt, &t[i], OP_NOTIFY, n, 0);
	cr_assert_eq(weft_notify_destroy(n), -EBUSY);
	waiter_abort(&t[0]);
	cr_assert_eq(weft_notify_one(n), 0);
	waiter_expect_done(&t[1], 0, "second waiter is now first");
	waiter_still_waiting(&t[2], "one notify");
	cr_assert_eq(weft_notify_one(n), 0);
	waiter_expect_done(&t[2], 0, "third");
	waiter_join(&t[1], 0);
	waiter_join(&t[2], 0);
	cr_assert_eq(weft_notify_destroy(n), 0);
	wt_rt_destroy(rt);
}

struct notify_thread { struct weft_notify *n; int rc; atomic_int started; };

static void *notify_thread(void *arg)
{
	struct notify_thread *a = arg;
	atomic_store(&a->started, 1);
	a->rc = weft_notify_wait(a->n);
	return NULL;
}

Test(notify, blocking_wait_on_plain_thread, .timeout = WT_TMO(20))
{
	struct notify_thread a = { 0 };
	cr_assert_eq(weft_notify_create(&a.n), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, notify_thread, &a), 0);
	cr_assert(WT_WAIT_UNTIL(atomic_load(&a.started), WT_LONG_MS));
	wt_sleep_ms(20);
	cr_assert_eq(weft_notify_one(a.n), 0); /* wakes it, or leaves a permit */
	pthread_join(th, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(weft_notify_destroy(a.n), 0);
}

/* ------------------------------------------------------------------ mutex */

Test(mutex, try_lock_unlock_errors, .timeout = WT_TMO(10))
{
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_mutex_unlock(m), -EPERM);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), -EBUSY);
	cr_assert_eq(weft_mutex_destroy(m), -EBUSY, "destroy while locked");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(weft_mutex_lock(m), 0, "blocking lock of a free mutex");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(weft_mutex_try_lock(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_unlock(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_lock(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_destroy(m), 0);
}

Test(mutex, fifo_handoff_no_barging, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	struct waiter t[5];
	for (int i = 0; i < 5; i++)
		waiter_park(rt, &t[i], OP_MUTEX, m, 0);
	/* t[i] keeps the mutex; the test thread unlocks on its behalf. */
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(weft_mutex_unlock(m), 0);
		waiter_expect_done(&t[i], 0, "lock hand-off");
		for (int j = i + 1; j < 5; j++)
			cr_assert(!atomic_load(&t[j].done), "waiter %d got the mutex before %d", j, i);
		cr_assert_eq(weft_mutex_try_lock(m), -EBUSY, "barged in after hand-off to %d", i);
	}
	cr_assert_eq(weft_mutex_unlock(m), 0);
	for (int i = 0; i < 5; i++)
		waiter_join(&t[i], 0);
	cr_assert_eq(weft_mutex_destroy(m), 0);
	wt_rt_destroy(rt);
}

Test(mutex, abort_waiting_and_granted, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	struct waiter t[3];
	for (int i = 0; i < 3; i++)
		waiter_park(rt, &t[i], OP_MUTEX, m, 0);
	t[2].unlock_after = true; /* read at its next poll, after the wake below */
	waiter_abort(&t[1]);      /* unlinked while waiting */
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_mutex_unlock(m), 0); /* handed to t[0], which cannot run */
	cr_assert_eq(weft_abort(t[0].h), 0);   /* its drop hands it on to t[2] */
	wt_gate_open(&g);
	waiter_join(&t[0], -ECANCELED);
	waiter_expect_done(&t[2], 0, "the mutex went to the next live waiter");
	waiter_join(&t[2], 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0, "t[2] unlocked it");
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(weft_mutex_destroy(m), 0);
	wt_rt_destroy(rt);
}

struct mutex_thread { struct weft_mutex *m; long *counter; int n; int rc; };

static void *mutex_thread(void *arg)
{
	struct mutex_thread *a = arg;
	for (int i = 0; i < a->n && !a->rc; i++) {
		a->rc = weft_mutex_lock(a->m);
		long v = *a->counter;
		if ((i & 63) == 0)
			sched_yield();
		*a->counter = v + 1;
		if (!a->rc)
			a->rc = weft_mutex_unlock(a->m);
	}
	return NULL;
}

Test(mutex, blocking_threads_mutual_exclusion, .timeout = WT_TMO(30))
{
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	long counter = 0;
	struct mutex_thread a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct mutex_thread){ m, &counter, 5000, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, mutex_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].rc, 0);
	}
	cr_assert_eq(counter, 20000);
	cr_assert_eq(weft_mutex_destroy(m), 0);
}

/* -------------------------------------------------------------- semaphore */

Test(sem, counts_and_errors, .timeout = WT_TMO(10))
{
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(0, NULL), -EINVAL);
	cr_assert_eq(weft_sem_create(WEFT_SEM_MAX_PERMITS + 1, &s), -EINVAL);
	cr_assert_eq(weft_sem_create(3, &s), 0);
	cr_assert_eq(weft_sem_available(s), 3);
	cr_assert_eq(weft_sem_try_acquire_n(s, 2), 0);
	cr_assert_eq(weft_sem_try_acquire_n(s, 2), -EAGAIN);
	cr_assert_eq(weft_sem_try_acquire_n(s, 0), 0);
	cr_assert_eq(weft_sem_acquire_n(s, 1), 0, "blocking acquire that fits");
	cr_assert_eq(weft_sem_available(s), 0);
	cr_assert_eq(weft_sem_try_acquire_n(s, WEFT_SEM_MAX_PERMITS + 1), -EINVAL);
	cr_assert_eq(weft_sem_acquire_n(s, WEFT_SEM_MAX_PERMITS + 1), -EINVAL);
	cr_assert_eq(weft_sem_release_n(s, 3), 0);
	cr_assert_eq(weft_sem_release_n(s, WEFT_SEM_MAX_PERMITS), -EOVERFLOW);
	cr_assert_eq(weft_sem_available(s), 3, "a refused release changes nothing");
	cr_assert_eq(weft_sem_release_n(NULL, 1), -EINVAL);
	cr_assert_eq(weft_sem_destroy(s), 0);
}

Test(sem, strict_fifo_large_request_first, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(0, &s), 0);
	struct waiter big, small;
	waiter_park(rt, &big, OP_SEM, s, 3);
	waiter_park(rt, &small, OP_SEM, s, 1);
	cr_assert_eq(weft_sem_release_n(s, 1), 0);
	waiter_still_waiting(&small, "small request behind a large one");
	cr_assert_eq(weft_sem_try_acquire_n(s, 1), -EAGAIN, "try_acquire overtook waiters");
	cr_assert_eq(weft_sem_release_n(s, 2), 0);
	waiter_expect_done(&big, 0, "large request");
	waiter_still_waiting(&small, "no permit left");
	cr_assert_eq(weft_sem_release_n(s, 2), 0);
	waiter_expect_done(&small, 0, "small request");
	cr_assert_eq(weft_sem_available(s), 1);
	waiter_join(&big, 0);
	waiter_join(&small, 0);
	cr_assert_eq(weft_sem_destroy(s), 0);
	wt_rt_destroy(rt);
}

Test(sem, abort_head_unblocks_next_and_granted_returns_permits, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(1, &s), 0);
	struct waiter big, small;
	waiter_park(rt, &big, OP_SEM, s, 5);
	waiter_park(rt, &small, OP_SEM, s, 1);
	cr_assert_eq(weft_sem_destroy(s), -EBUSY);
	waiter_abort(&big); /* the head leaves: the small request now fits */
	waiter_expect_done(&small, 0, "request behind the aborted head");
	waiter_join(&small, 0);
	cr_assert_eq(weft_sem_available(s), 0);
	/* A granted request that is aborted returns its permits. */
	struct waiter a, b;
	waiter_park(rt, &a, OP_SEM, s, 2);
	waiter_park(rt, &b, OP_SEM, s, 2);
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_sem_release_n(s, 2), 0); /* granted to a */
	cr_assert_eq(weft_abort(a.h), 0);
	wt_gate_open(&g);
	waiter_join(&a, -ECANCELED);
	waiter_expect_done(&b, 0, "permits passed on");
	waiter_join(&b, 0);
	cr_assert_eq(weft_sem_available(s), 0);
	cr_assert_eq(weft_sem_destroy(s), 0);
	wt_rt_destroy(rt);
}

/* Many small requests released at once: more than one wake batch. */
Test(sem, release_many_waiters, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(0, &s), 0);
	enum { N = 50 };
	static struct waiter t[N];
	for (int i = 0; i < N; i++)
		waiter_park(rt, &t[i], OP_SEM, s, 1);
	cr_assert_eq(weft_sem_release_n(s, N + 3), 0);
	for (int i = 0; i < N; i++) {
		waiter_expect_done(&t[i], 0, "released");
		waiter_join(&t[i], 0);
	}
	cr_assert_eq(weft_sem_available(s), 3);
	cr_assert_eq(weft_sem_destroy(s), 0);
	wt_rt_destroy(rt);
}

/* Closed (Tokio's Semaphore::close): 40 waiters (three wake batches) all
 * get -EPIPE, later acquires too; permits taken before stay taken and come
 * back through release. */
Test(sem, close_wakes_every_waiter_with_epipe, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_sem *s;
	cr_assert_eq(weft_sem_create(2, &s), 0);
	cr_assert_eq(weft_sem_try_acquire_n(s, 2), 0);
	enum { N = 40 };
	static struct waiter t[N];
	for (int i = 0; i < N; i++)
		waiter_park(rt, &t[i], OP_SEM, s, 1);
	cr_assert(!weft_sem_is_closed(s));
	cr_assert_eq(weft_sem_close(s), 0);
	cr_assert(weft_sem_is_closed(s));
	for (int i = 0; i < N; i++) {
		waiter_expect_done(&t[i], -EPIPE, "woken by the close");
		waiter_join(&t[i], 0);
	}
	cr_assert_eq(weft_sem_try_acquire_n(s, 1), -EPIPE);
	cr_assert_eq(weft_sem_try_acquire_n(s, 0), -EPIPE);
	cr_assert_eq(weft_sem_acquire_n(s, 1), -EPIPE);
	cr_assert_eq(weft_sem_acquire_n_timeout(s, 1, 1000000000ull), -EPIPE);
	cr_assert_eq(weft_sem_release_n(s, 2), 0, "permits taken before the close go back");
	cr_assert_eq(weft_sem_available(s), 2);
	cr_assert_eq(weft_sem_try_acquire_n(s, 1), -EPIPE, "and are not handed out again");
	cr_assert_eq(weft_sem_close(s), 0, "idempotent");
	cr_assert_eq(weft_sem_close(NULL), -EINVAL);
	cr_assert(!weft_sem_is_closed(NULL));
	cr_assert_eq(weft_sem_destroy(s), 0);
	wt_rt_destroy(rt);
}

/* -------------------------------------------------------------- waitgroup */

Test(waitgroup, counts_and_errors, .timeout = WT_TMO(10))
{
	struct weft_waitgroup *wg;
	cr_assert_eq(weft_waitgroup_create(NULL), -EINVAL);
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	cr_assert_eq(weft_waitgroup_wait(wg), 0, "wait on zero returns at once");
	cr_assert_eq(weft_waitgroup_done(wg), -EINVAL, "below zero");
	cr_assert_eq(weft_waitgroup_add(wg, 2), 0);
	cr_assert_eq(weft_waitgroup_add(wg, INT64_MAX), -EINVAL, "overflow");
	cr_assert_eq(weft_waitgroup_add(wg, -3), -EINVAL);
	cr_assert_eq(weft_waitgroup_add(wg, -2), 0);
	cr_assert_eq(weft_waitgroup_wait(wg), 0);
	cr_assert_eq(weft_waitgroup_add(NULL, 1), -EINVAL);
	cr_assert_eq(weft_waitgroup_destroy(wg), 0);
}

Test(waitgroup, waiters_released_at_zero, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_waitgroup *wg;
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	cr_assert_eq(weft_waitgroup_add(wg, 3), 0);
	enum { N = 20 };
	static struct waiter t[N];
	for (int i = 0; i < N; i++)
		waiter_park(rt, &t[i], OP_WG, wg, 0);
	cr_assert_eq(weft_waitgroup_destroy(wg), -EBUSY, "destroy with linked waiters");
	waiter_abort(&t[5]);
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	waiter_still_waiting(&t[0], "count 1");
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	/* Raised again at once: the waiters of the zero still return. */
	cr_assert_eq(weft_waitgroup_add(wg, 1), 0);
	for (int i = 0; i < N; i++) {
		if (i == 5)
			continue;
		waiter_expect_done(&t[i], 0, "count reached zero");
		waiter_join(&t[i], 0);
	}
	struct waiter late;
	waiter_park(rt, &late, OP_WG, wg, 0);
	cr_assert_eq(weft_waitgroup_done(wg), 0);
	waiter_expect_done(&late, 0, "second round");
	waiter_join(&late, 0);
	cr_assert_eq(weft_waitgroup_destroy(wg), 0);
	wt_rt_destroy(rt);
}

struct wg_thread { struct weft_waitgroup *wg; int rc; atomic_int done; };

static void *wg_thread(void *arg)
{
	struct wg_thread *a = arg;
	a->rc = weft_waitgroup_wait(a->wg);
	atomic_store(&a->done, 1);
	return NULL;
}

static enum weft_poll wg_done_task(void *state, struct weft_cx *cx)
{
	weft_waitgroup_done(state);
	return WEFT_READY;
}

Test(waitgroup, blocking_wait_on_plain_thread, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct wg_thread a = { 0 };
	cr_assert_eq(weft_waitgroup_create(&a.wg), 0);
	cr_assert_eq(weft_waitgroup_add(a.wg, 100), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, wg_thread, &a), 0);
	for (int i = 0; i < 99; i++)
		cr_assert_eq(weft_spawn_poll(rt, wg_done_task, a.wg, NULL, NULL), 0);
	wt_sleep_ms(20);
	cr_assert(!atomic_load(&a.done), "released before the last done");
	cr_assert_eq(weft_spawn_poll(rt, wg_done_task, a.wg, NULL, NULL), 0);
	pthread_join(th, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(weft_waitgroup_destroy(a.wg), 0);
	wt_rt_destroy(rt);
}

/* ---------------------------------------------- blocking forms on workers */

/*
 * A poll task calling the blocking forms gets -EDEADLK from each (until
 * fibers land), and nothing is consumed or linked: afterwards every object
 * is intact and destroys cleanly.
 */
Test(blocking, from_poll_task_edeadlk, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_oneshot *o;
	struct weft_chan *ch;
	struct weft_notify *n;
	struct weft_mutex *m;
	struct weft_sem *s;
	struct weft_waitgroup *wg;
	cr_assert_eq(weft_oneshot_create(NULL, &o), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &ch), 0);
	cr_assert_eq(weft_notify_create(&n), 0);
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_sem_create(5, &s), 0);
	cr_assert_eq(weft_waitgroup_create(&wg), 0);
	void *objs[6] = { o, ch, n, m, s, wg };
	struct waiter t;
	waiter_spawn(rt, &t, OP_BLOCKING, objs, 0);
	waiter_expect_done(&t, 0, "blocking calls");
	waiter_join(&t, 0);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(t.blocking_rc[i], -EDEADLK, "blocking call %d = %d (%s), want -EDEADLK",
			     i, t.blocking_rc[i], weft_strerror(t.blocking_rc[i]));
	/* Nothing consumed: */
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	cr_assert_eq(weft_mutex_unlock(m), 0);
	cr_assert_eq(weft_sem_available(s), 5);
	cr_assert_eq(weft_oneshot_send(o, (void *)1), 0);
	void *v;
	cr_assert_eq(weft_oneshot_try_recv(o, &v), 0);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	cr_assert_eq(weft_notify_destroy(n), 0);
	cr_assert_eq(weft_mutex_destroy(m), 0);
	cr_assert_eq(weft_sem_destroy(s), 0);
	cr_assert_eq(weft_waitgroup_destroy(wg), 0);
	wt_rt_destroy(rt);
}

/* --------------------------------------------------------------- broadcast */

Test(broadcast, errors, .timeout = WT_TMO(10))
{
	struct weft_broadcast *b = (void *)1;
	struct weft_broadcast_rx *rx = (void *)1;
	uint64_t x = 0, lag = 0;
	cr_assert_eq(weft_broadcast_create(8, 4, NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_create(0, 4, &b), -EINVAL);
	cr_assert_eq(weft_broadcast_create(8, 0, &b), -EINVAL);
	cr_assert_eq(weft_broadcast_create(SIZE_MAX / 2, 4, &b), -EINVAL);
	cr_assert_eq(b, (void *)1, "out written by a failed create");
	cr_assert_eq(weft_broadcast_destroy(NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_send(NULL, &x), -EINVAL);
	cr_assert_eq(weft_broadcast_close(NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_subscribe(NULL, &rx), -EINVAL);
	cr_assert_eq(weft_broadcast_rx_drop(NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_try_recv(NULL, &x, &lag), -EINVAL);
	cr_assert_eq(weft_broadcast_recv(NULL, &x, &lag), -EINVAL);
	cr_assert_eq(weft_broadcast_recv_timeout(NULL, &x, &lag, 1000), -EINVAL);
	cr_assert_eq(weft_broadcast_create(8, 4, &b), 0);
	cr_assert_eq(weft_broadcast_send(b, NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_subscribe(b, NULL), -EINVAL);
	cr_assert_eq(weft_broadcast_subscribe(b, &rx), 0);
	cr_assert_eq(weft_broadcast_try_recv(rx, NULL, &lag), -EINVAL);
	cr_assert_eq(weft_broadcast_destroy(b), -EBUSY, "a receiver exists");
	cr_assert_eq(weft_broadcast_rx_drop(rx), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
}

Test(broadcast, every_receiver_sees_every_item, .timeout = WT_TMO(10))
{
	struct weft_broadcast *b;
	struct weft_broadcast_rx *r1, *r2, *late;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 8, &b), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &r1), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &r2), 0);
	uint64_t x, lag = 77;
	cr_assert_eq(weft_broadcast_try_recv(r1, &x, &lag), -EAGAIN);
	for (x = 1; x <= 5; x++)
		cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &late), 0);
	struct weft_broadcast_rx *rs[2] = { r1, r2 };
	for (int r = 0; r < 2; r++) {
		for (uint64_t i = 1; i <= 5; i++) {
			cr_assert_eq(weft_broadcast_try_recv(rs[r], &x, &lag), 0);
			cr_assert_eq(x, i, "receiver %d item %llu", r, (unsigned long long)i);
		}
		cr_assert_eq(weft_broadcast_try_recv(rs[r], &x, &lag), -EAGAIN);
	}
	cr_assert_eq(lag, 77, "lagged untouched without a lag");
	cr_assert_eq(weft_broadcast_try_recv(late, &x, &lag), -EAGAIN,
		     "a receiver sees only items sent after it subscribed");
	x = 6;
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_try_recv(late, &x, &lag), 0);
	cr_assert_eq(x, 6);
	cr_assert_eq(weft_broadcast_close(b), 0);
	cr_assert_eq(weft_broadcast_send(b, &x), -EPIPE);
	cr_assert_eq(weft_broadcast_try_recv(r1, &x, &lag), 0, "kept items survive close");
	cr_assert_eq(x, 6);
	cr_assert_eq(weft_broadcast_try_recv(r1, &x, &lag), -EPIPE);
	cr_assert_eq(weft_broadcast_try_recv(late, &x, &lag), -EPIPE);
	cr_assert_eq(weft_broadcast_rx_drop(r1), 0);
	cr_assert_eq(weft_broadcast_rx_drop(r2), 0);
	cr_assert_eq(weft_broadcast_rx_drop(late), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
}

/* A receiver more than `capacity` behind gets -EOVERFLOW with the count
 * missed, then continues from the oldest item kept. */
Test(broadcast, lagging_receiver_told_how_many, .timeout = WT_TMO(10))
{
	struct weft_broadcast *b;
	struct weft_broadcast_rx *rx;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b), 0);
	cr_assert_eq(weft_broadcast_subscribe(b, &rx), 0);
	uint64_t x, lag = 0;
	for (x = 1; x <= 10; x++)
		cr_assert_eq(weft_broadcast_send(b, &x), 0);
	x = 0;
	cr_assert_eq(weft_broadcast_try_recv(rx, &x, &lag), -EOVERFLOW);
	cr_assert_eq(lag, 6, "items 1..6 were overwritten");
	cr_assert_eq(x, 0, "nothing written on -EOVERFLOW");
	for (uint64_t i = 7; i <= 10; i++) {
		cr_assert_eq(weft_broadcast_try_recv(rx, &x, &lag), 0);
		cr_assert_eq(x, i);
	}
	cr_assert_eq(weft_broadcast_try_recv(rx, &x, NULL), -EAGAIN);
	for (x = 11; x <= 20; x++)
		cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_try_recv(rx, &x, NULL), -EOVERFLOW, "lagged may be NULL");
	cr_assert_eq(weft_broadcast_try_recv(rx, &x, NULL), 0);
	cr_assert_eq(x, 17);
	cr_assert_eq(weft_broadcast_rx_drop(rx), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
}

/* Poll-task receivers wait; one send wakes every one of them; close ends
 * them with -EPIPE; an aborted waiter leaves the list. */
Test(broadcast, waiting_tasks_all_woken, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_broadcast *b;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 4, &b), 0);
	struct weft_broadcast_rx *rx[4];
	struct waiter t[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(weft_broadcast_subscribe(b, &rx[i]), 0);
		waiter_park(rt, &t[i], OP_BCAST_RECV, rx[i], 0);
	}
	cr_assert_eq(weft_broadcast_destroy(b), -EBUSY);
	waiter_abort(&t[3]);
	uint64_t x = 314;
	cr_assert_eq(weft_broadcast_send(b, &x), 0);
	for (int i = 0; i < 3; i++) {
		waiter_expect_done(&t[i], 0, "receiver");
		cr_assert_eq(t[i].got, 314);
		waiter_join(&t[i], 0);
		waiter_park(rt, &t[i], OP_BCAST_RECV, rx[i], 0);
	}
	cr_assert_eq(weft_broadcast_close(b), 0);
	for (int i = 0; i < 3; i++) {
		waiter_expect_done(&t[i], -EPIPE, "receiver after close");
		waiter_join(&t[i], 0);
	}
	for (int i = 0; i < 4; i++)
		cr_assert_eq(weft_broadcast_rx_drop(rx[i]), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0);
	wt_rt_destroy(rt);
}

struct bc_thread { struct weft_broadcast_rx *rx; uint64_t sum, n; int rc; };

static void *bc_reader(void *arg)
{
	struct bc_thread *a = arg;
	uint64_t x, lag;
	while ((a->rc = weft_broadcast_recv(a->rx, &x, &lag)) == 0) {
		a->sum += x;
		a->n++;
	}
	return NULL;
}

/* Blocking receivers on threads, capacity large enough for no lag: each
 * gets every item; the timeout form times out with nothing taken. */
Test(broadcast, blocking_threads_and_timeout, .timeout = WT_TMO(30))
{
	struct weft_broadcast *b;
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 1024, &b), 0);
	struct bc_thread a[3] = { 0 };
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(weft_broadcast_subscribe(b, &a[i].rx), 0);
		cr_assert_eq(pthread_create(&th[i], NULL, bc_reader, &a[i]), 0);
	}
	for (uint64_t x = 1; x <= 1000; x++)
		cr_assert_eq(weft_broadcast_send(b, &x), 0);
	cr_assert_eq(weft_broadcast_close(b), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].rc, -EPIPE);
		cr_assert_eq(a[i].n, 1000);
		cr_assert_eq(a[i].sum, 1000 * 1001 / 2);
		cr_assert_eq(weft_broadcast_rx_drop(a[i].rx), 0);
	}
	cr_assert_eq(weft_broadcast_destroy(b), 0);
	cr_assert_eq(weft_broadcast_create(sizeof(uint64_t), 2, &b), 0);
	struct weft_broadcast_rx *rx;
	cr_assert_eq(weft_broadcast_subscribe(b, &rx), 0);
	uint64_t x;
	cr_assert_eq(weft_broadcast_recv_timeout(rx, &x, NULL, 2 * 1000 * 1000), -ETIMEDOUT);
	cr_assert_eq(weft_broadcast_destroy(b), -EBUSY, "the receiver is still there");
	cr_assert_eq(weft_broadcast_rx_drop(rx), 0);
	cr_assert_eq(weft_broadcast_destroy(b), 0, "the timed-out wait left nothing linked");
}

/* ------------------------------------------------------------------- watch */

Test(watch, errors, .timeout = WT_TMO(10))
{
	struct weft_watch *wt = (void *)1;
	struct weft_watch_rx *rx;
	uint64_t v = 0;
	cr_assert_eq(weft_watch_create(8, &v, NULL), -EINVAL);
	cr_assert_eq(weft_watch_create(8, NULL, &wt), -EINVAL);
	cr_assert_eq(weft_watch_create(0, &v, &wt), -EINVAL);
	cr_assert_eq(weft_watch_create(SIZE_MAX, &v, &wt), -EINVAL);
	cr_assert_eq(wt, (void *)1, "out written by a failed create");
	cr_assert_eq(weft_watch_destroy(NULL), -EINVAL);
	cr_assert_eq(weft_watch_send(NULL, &v), -EINVAL);
	cr_assert_eq(weft_watch_close(NULL), -EINVAL);
	cr_assert_eq(weft_watch_subscribe(NULL, &rx), -EINVAL);
	cr_assert_eq(weft_watch_rx_drop(NULL), -EINVAL);
	cr_assert_eq(weft_watch_get(NULL, &v), -EINVAL);
	cr_assert_eq(weft_watch_has_changed(NULL), -EINVAL);
	cr_assert_eq(weft_watch_changed(NULL), -EINVAL);
	cr_assert_eq(weft_watch_changed_timeout(NULL, 1000), -EINVAL);
	cr_assert_eq(weft_watch_create(8, &v, &wt), 0);
	cr_assert_eq(weft_watch_send(wt, NULL), -EINVAL);
	cr_assert_eq(weft_watch_subscribe(wt, NULL), -EINVAL);
	cr_assert_eq(weft_watch_subscribe(wt, &rx), 0);
	cr_assert_eq(weft_watch_get(rx, NULL), -EINVAL);
	cr_assert_eq(weft_watch_destroy(wt), -EBUSY, "a receiver exists");
	cr_assert_eq(weft_watch_rx_drop(rx), 0);
	cr_assert_eq(weft_watch_destroy(wt), 0);
}

/* The latest value, intermediate ones skipped; changed marks it seen. */
Test(watch, latest_value_and_changed, .timeout = WT_TMO(10))
{
	struct weft_watch *wt;
	struct weft_watch_rx *rx;
	uint64_t v = 10;
	cr_assert_eq(weft_watch_create(sizeof(v), &v, &wt), 0);
	cr_assert_eq(weft_watch_subscribe(wt, &rx), 0);
	cr_assert_eq(weft_watch_has_changed(rx), 0, "the initial value counts as seen");
	v = 0;
	cr_assert_eq(weft_watch_get(rx, &v), 0);
	cr_assert_eq(v, 10);
	for (v = 11; v <= 13; v++)
		cr_assert_eq(weft_watch_send(wt, &v), 0);
	cr_assert_eq(weft_watch_has_changed(rx), 1);
	cr_assert_eq(weft_watch_changed(rx), 0, "a newer value: no wait");
	cr_assert_eq(weft_watch_has_changed(rx), 0, "changed marked it seen");
	cr_assert_eq(weft_watch_get(rx, &v), 0);
	cr_assert_eq(v, 13, "only the latest value");
	cr_assert_eq(weft_watch_changed_timeout(rx, 2 * 1000 * 1000), -ETIMEDOUT);
	v = 14;
	cr_assert_eq(weft_watch_send(wt, &v), 0);
	cr_assert_eq(weft_watch_close(wt), 0);
	cr_assert_eq(weft_watch_send(wt, &v), -EPIPE);
	cr_assert_eq(weft_watch_has_changed(rx), 1, "unseen value survives close");
	cr_assert_eq(weft_watch_changed(rx), 0);
	cr_assert_eq(weft_watch_changed(rx), -EPIPE);
	cr_assert_eq(weft_watch_has_changed(rx), -EPIPE);
	cr_assert_eq(weft_watch_get(rx, &v), 0, "readable after close");
	cr_assert_eq(v, 14);
	cr_assert_eq(weft_watch_rx_drop(rx), 0);
	cr_assert_eq(weft_watch_destroy(wt), 0);
}

/* Poll-task receivers waiting for a change: one send wakes them all; close
 * ends the next wait with -EPIPE; an aborted waiter leaves the list. */
Test(watch, waiting_tasks_all_woken, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_watch *wt;
	uint64_t v = 0;
	cr_assert_eq(weft_watch_create(sizeof(v), &v, &wt), 0);
	struct weft_watch_rx *rx[3];
	struct waiter t[3];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(weft_watch_subscribe(wt, &rx[i]), 0);
		waiter_park(rt, &t[i], OP_WATCH_CHANGED, rx[i], 0);
	}
	cr_assert_eq(weft_watch_destroy(wt), -EBUSY);
	waiter_abort(&t[2]);
	v = 5;
	cr_assert_eq(weft_watch_send(wt, &v), 0);
	for (int i = 0; i < 2; i++) {
		waiter_expect_done(&t[i], 0, "watcher");
		waiter_join(&t[i], 0);
		cr_assert_eq(weft_watch_get(rx[i], &v), 0);
		cr_assert_eq(v, 5);
		waiter_park(rt, &t[i], OP_WATCH_CHANGED, rx[i], 0);
	}
	cr_assert_eq(weft_watch_close(wt), 0);
	for (int i = 0; i < 2; i++) {
		waiter_expect_done(&t[i], -EPIPE, "watcher after close");
		waiter_join(&t[i], 0);
	}
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_watch_rx_drop(rx[i]), 0);
	cr_assert_eq(weft_watch_destroy(wt), 0);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------------ budget */

/* A task receiving from a channel that always has items still yields: each
 * poll form consumes budget and returns WEFT_PENDING once it is spent. */
struct budget_state { struct weft_chan *ch; struct weft_wait w; int got; int pendings; atomic_int done; };

static enum weft_poll budget_poll(void *state, struct weft_cx *cx)
{
	struct budget_state *b = state;
	for (;;) {
		uint64_t x;
		int rc = weft_chan_recv_poll(b->ch, &b->w, cx, &x);
		if (rc == WEFT_PENDING) {
			b->pendings++;
			return WEFT_PENDING;
		}
		if (rc == -EPIPE) {
			atomic_store(&b->done, 1);
			return WEFT_READY;
		}
		b->got++;
	}
}

Test(budget, poll_forms_respect_budget, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct budget_state b = { 0 };
	enum { N = 3 * WEFT_BUDGET + 5 };
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), N, &b.ch), 0);
	for (uint64_t i = 0; i < N; i++)
		cr_assert_eq(weft_chan_try_send(b.ch, &i), 0);
	cr_assert_eq(weft_chan_close(b.ch), 0);
	struct weft_task *h;
	cr_assert_eq(weft_spawn_poll(rt, budget_poll, &b, NULL, &h), 0);
	cr_assert_eq(weft_join(h, NULL), 0);
	cr_assert_eq(b.got, N);
	cr_assert_geq(b.pendings, 3, "only %d forced yields for %d items", b.pendings, N);
	cr_assert_eq(weft_chan_destroy(b.ch), 0);
	wt_rt_destroy(rt);
}

/* ------------------------------------------------------------------ fibers */

/*
 * Inside a fiber the blocking forms suspend the fiber (weft__wait), so the
 * same calls work there and on plain threads.
 */
struct fchan { struct weft_chan *ch; uint64_t n; uint64_t sum; int rc; };

static void *fiber_producer(void *arg)
{
	struct fchan *a = arg;
	for (uint64_t i = 1; i <= a->n && !a->rc; i++)
		a->rc = weft_chan_send(a->ch, &i);
	return NULL;
}

static void *fiber_consumer(void *arg)
{
	struct fchan *a = arg;
	uint64_t x;
	int rc;
	while ((rc = weft_chan_recv(a->ch, &x)) == 0) {
		a->sum += x;
		a->n++;
	}
	a->rc = rc == -EPIPE ? 0 : rc;
	return NULL;
}

Test(fiber, chan_blocking_calls_suspend, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 4, &ch), 0);
	struct fchan p[2] = { { ch, 5000, 0, 0 }, { ch, 5000, 0, 0 } };
	struct fchan c[2] = { { ch, 0, 0, 0 }, { ch, 0, 0, 0 } };
	struct weft_task *hp[2], *hc[2];
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(weft_spawn(rt, fiber_consumer, &c[i], &hc[i]), 0);
		cr_assert_eq(weft_spawn(rt, fiber_producer, &p[i], &hp[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(weft_join(hp[i], NULL), 0);
		cr_assert_eq(p[i].rc, 0, "producer fiber rc %d", p[i].rc);
	}
	cr_assert_eq(weft_chan_close(ch), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(weft_join(hc[i], NULL), 0);
		cr_assert_eq(c[i].rc, 0, "consumer fiber rc %d", c[i].rc);
	}
	cr_assert_eq(c[0].n + c[1].n, 10000);
	cr_assert_eq(c[0].sum + c[1].sum, 2 * 5000ull * 5001 / 2);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}

struct fmutex { struct weft_mutex *m; long *counter; int rc; };

static void *fiber_mutex_worker(void *arg)
{
	struct fmutex *a = arg;
	for (int i = 0; i < 300 && !a->rc; i++) {
		a->rc = weft_mutex_lock(a->m);
		long v = *a->counter;
		if (i % 10 == 0)
			weft_yield(); /* hold the mutex across a suspension */
		*a->counter = v + 1;
		if (!a->rc)
			a->rc = weft_mutex_unlock(a->m);
	}
	return NULL;
}

Test(fiber, mutex_across_suspension, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	long counter = 0;
	struct fmutex a[8];
	struct weft_task *h[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (struct fmutex){ m, &counter, 0 };
		cr_assert_eq(weft_spawn(rt, fiber_mutex_worker, &a[i], &h[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(weft_join(h[i], NULL), 0);
		cr_assert_eq(a[i].rc, 0);
	}
	cr_assert_eq(counter, 8 * 300);
	cr_assert_eq(weft_mutex_destroy(m), 0);
	wt_rt_destroy(rt);
}

static void *fiber_lock_once(void *arg)
{
	struct fmutex *a = arg;
	a->rc = weft_mutex_lock(a->m);
	if (!a->rc) {
		++*a->counter;
		a->rc = weft_mutex_unlock(a->m);
	}
	return NULL;
}

/* A fiber aborted while suspended in a blocking call gets -ECANCELED from
 * it and returns; the call leaves the wait list, and a grant it had not
 * yet collected is passed on. */
Test(fiber, abort_suspended_waiters, .timeout = WT_TMO(30))
{
	struct weft_runtime *rt = wt_rt_create(1);
	struct weft_mutex *m;
	cr_assert_eq(weft_mutex_create(&m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	long counter = 0;
	struct fmutex a[3];
	struct weft_task *h[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct fmutex){ m, &counter, 0 };
		cr_assert_eq(weft_spawn(rt, fiber_lock_once, &a[i], &h[i]), 0);
		/* Let it suspend in weft_mutex_lock, in order: the one worker
		 * takes the inject queue in order and reaches a task queued
		 * after the fiber only once the fiber has suspended. A 10 ms
		 * sleep here was too short on a loaded CI run: h[1] had not
		 * started when it was aborted, and its join said so. */
		struct wt_gate q;
		wt_gate_hold(rt, &q);
		wt_gate_open(&q);
	}
	cr_assert_eq(weft_abort(h[1]), 0);        /* waiting in the list */
	cr_assert_eq(weft_join(h[1], NULL), -EINTR);
	cr_assert_eq(a[1].rc, -ECANCELED, "its weft_mutex_lock returned -ECANCELED");
	struct wt_gate g;
	wt_gate_hold(rt, &g);
	cr_assert_eq(weft_mutex_unlock(m), 0);    /* handed to a[0], which cannot run */
	cr_assert_eq(weft_abort(h[0]), 0);        /* its cancel hands it to a[2] */
	wt_gate_open(&g);
	cr_assert_eq(weft_join(h[0], NULL), -EINTR);
	cr_assert_eq(a[0].rc, -ECANCELED);
	cr_assert_eq(weft_join(h[2], NULL), 0);
	cr_assert_eq(counter, 1, "only a[2] held the mutex");
	cr_assert_eq(a[2].rc, 0);
	cr_assert_eq(counter, 1, "only the last fiber ran its critical section");
	cr_assert_eq(weft_mutex_destroy(m), 0, "the mutex ended free, no entry linked");
	wt_rt_destroy(rt);
}

/*
 * A select's send arm on a rendezvous channel: a receiver that arrives
 * wakes it and the select hands the item over (arm 0 wins); when another
 * arm wins instead, the losing send arm has sent nothing (a later receive
 * times out). Before weft_select used the revocable send, a receiver could
 * complete a losing send arm behind the select's back (select_stress saw
 * duplicated items on buffered channels).
 */
struct rv_sel { struct weft_chan *rv, *other; uint64_t x, y; int rc; };

static void *rv_selector(void *p)
{
	struct rv_sel *s = p;
	struct weft_select_arm arms[] = { WEFT_SEL_SEND(s->rv, &s->x), WEFT_SEL_RECV(s->other, &s->y) };
	s->rc = weft_select_timeout(arms, 2, 5ull * 1000000000ull);
	if (s->rc >= 0 && arms[s->rc].rc)
		s->rc = -1000 + arms[s->rc].rc;
	return NULL;
}

Test(rendezvous, select_send_arm_hands_over_or_sends_nothing, .timeout = WT_TMO(30))
{
	struct rv_sel s = { 0 };
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 0, &s.rv), 0);
	cr_assert_eq(weft_chan_create(sizeof(uint64_t), 1, &s.other), 0);
	pthread_t th;
	uint64_t got = 0;
	/* a receiver comes: the send arm wins */
	s.x = 5;
	cr_assert_eq(pthread_create(&th, NULL, rv_selector, &s), 0);
	wt_sleep_ms(20);
	cr_assert_eq(weft_chan_recv_timeout(s.rv, &got, 2000ull * 1000000ull), 0);
	cr_assert_eq(got, 5);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 0, "select = %d, want arm 0", s.rc);
	/* the other arm wins: nothing sent on the rendezvous channel */
	s.x = 6;
	cr_assert_eq(pthread_create(&th, NULL, rv_selector, &s), 0);
	wt_sleep_ms(20);
	uint64_t one = 1;
	cr_assert_eq(weft_chan_try_send(s.other, &one), 0);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 1, "select = %d, want arm 1", s.rc);
	cr_assert_eq(s.y, 1);
	cr_assert_eq(weft_chan_recv_timeout(s.rv, &got, 50ull * 1000000ull), -ETIMEDOUT,
		     "the losing send arm sent %llu", (unsigned long long)got);
	cr_assert_eq(weft_chan_destroy(s.rv), 0);
	cr_assert_eq(weft_chan_destroy(s.other), 0);
}

/* Counted senders: 8 fibers and a thread each send 500 items and say
 * done; the receiver reads every item and then -EPIPE, with nobody
 * calling weft_chan_close. Errors: more dones than adds, n 0. */
struct producers { struct weft_chan *ch; long base; };
static void *counted_producer(void *arg)
{
	struct producers *p = arg;
	for (long i = 0; i < 500; i++) {
		long v = p->base + i;
		if (weft_chan_send(p->ch, &v))
			return (void *)1;
	}
	return (void *)(intptr_t)weft_chan_sender_done(p->ch);
}

Test(chan, the_last_counted_sender_closes_it, .timeout = WT_TMO(20))
{
	struct weft_runtime *rt = wt_rt_create(2);
	struct weft_chan *ch;
	cr_assert_eq(weft_chan_create(sizeof(long), 16, &ch), 0);
	cr_assert_eq(weft_chan_sender_done(ch), -EINVAL, "nothing counted yet");
	cr_assert_eq(weft_chan_sender_add(ch, 0), -EINVAL);
	cr_assert_eq(weft_chan_sender_add(ch, 8), 0);
	cr_assert_eq(weft_chan_sender_add(ch, 1), 0);
	struct producers p[9];
	struct weft_task *h[8];
	for (int i = 0; i < 8; i++) {
		p[i] = (struct producers){ ch, i * 1000L };
		cr_assert_eq(weft_spawn(rt, counted_producer, &p[i], &h[i]), 0);
	}
	p[8] = (struct producers){ ch, 8000L };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, counted_producer, &p[8]), 0);
	static bool seen[9000];
	memset(seen, 0, sizeof seen);
	long v;
	int n = 0, rc;
	while ((rc = weft_chan_recv(ch, &v)) == 0) {
		cr_assert(v >= 0 && v < 9000 && v % 1000 < 500 && !seen[v], "item %ld", v);
		seen[v] = true;
		n++;
	}
	cr_assert_eq(rc, -EPIPE, "after the last sender: %d", rc);
	cr_assert_eq(n, 9 * 500, "%d items", n);
	cr_assert_eq(weft_chan_is_closed(ch), 1);
	for (int i = 0; i < 8; i++) {
		void *r;
		cr_assert_eq(weft_join(h[i], &r), 0);
		cr_assert_null(r, "producer %d", i);
	}
	void *r;
	pthread_join(th, &r);
	cr_assert_null(r);
	cr_assert_eq(weft_chan_sender_done(ch), -EINVAL, "more dones than senders");
	cr_assert_eq(weft_chan_sender_add(ch, SIZE_MAX), 0, "count 0 again: SIZE_MAX fits");
	cr_assert_eq(weft_chan_sender_add(ch, 1), -EOVERFLOW);
	cr_assert_eq(weft_chan_sender_add(NULL, 1), -EINVAL);
	cr_assert_eq(weft_chan_destroy(ch), 0);
	wt_rt_destroy(rt);
}
