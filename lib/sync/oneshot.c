/*
 * oneshot.c - weft_oneshot: one pointer from one sender to one receiver.
 *
 * Owns: the object itself (freed by whichever end is consumed second), the
 * value while it is sent but not received (value_drop'd if the receiver is
 * dropped without receiving, or received by a select's arm with no place
 * for it), and a wait list that holds at most the
 * receiver's entry.
 * Invariants (under `lock`): `sent` and `sender_gone` never go back to
 * false; sent => sender_gone; once receiver_gone is set, nothing but
 * the sender end touches the object. The end whose consumption finds the
 * other already gone frees the object, after unlocking (the other end's
 * last access was under the lock, so the unlock/lock pair orders it before
 * the free).
 * The send grants the waiting receiver WQ_GRANT_WAKE: nothing to pass on
 * at cancel; the value stays in the object for the receiver end.
 */
#include <errno.h>
#include <stdlib.h>

#include "waitlist.h"

struct weft_oneshot {
	struct weft__slock lock;
	struct weft__waitq q;
	void *value;
	void (*value_drop)(void *value);
	bool sent, sender_gone, receiver_gone;
};

int weft_oneshot_create(void (*value_drop)(void *value), struct weft_oneshot **out)
{
	if (!out)
		return -EINVAL;
	struct weft_oneshot *o = weft__calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	weft__waitq_init(&o->q, &o->lock, NULL);
	o->value_drop = value_drop;
	*out = o;
	return 0;
}

/* Consume the sender end; rc 0 with sent value, else just drop it. `call`
 * names the public function for the misuse message. */
static int sender_release(struct weft_oneshot *o, bool send, void *value, const char *call)
{
	struct weft__wakes wk;
	wk.n = 0; /* not "= { 0 }": that would zero all 16 slots on every call */
	int rc = 0;
	weft__slock_lock(&o->lock);
	if (o->sender_gone)
		weft__die("%s on oneshot %p: the sender end was already consumed (by "
			  "weft_oneshot_send or weft_oneshot_sender_drop); it is consumed "
			  "exactly once", call, (void *)o);
	o->sender_gone = true;
	bool free_it = o->receiver_gone;
	if (o->receiver_gone) {
		rc = send ? -EPIPE : 0;
	} else {
		if (send) {
			o->value = value;
			o->sent = true;
		}
		weft__waitq_grant_head(&o->q, WQ_GRANT_WAKE, &wk);
	}
	weft__slock_unlock(&o->lock);
	weft__wakes_run(&wk);
	if (free_it)
		weft__free(o);
	return rc;
}

int weft_oneshot_send(struct weft_oneshot *o, void *value)
{
	if (!o)
		return -EINVAL;
	return sender_release(o, true, value, "weft_oneshot_send");
}

int weft_oneshot_sender_drop(struct weft_oneshot *o)
{
	if (!o)
		return -EINVAL;
	return sender_release(o, false, NULL, "weft_oneshot_sender_drop");
}

/* Under the lock: 0 (*value received) or -EPIPE (sender dropped), both
 * consuming the receiver end, or -EAGAIN. When it returns 0 or -EPIPE
 * the sender end is gone too: the caller frees o after unlocking. */
static int try_take(struct weft_oneshot *o, void **value)
{
	int rc;
	if (o->sent) {
		*value = o->value;
		o->value = NULL;
		o->sent = false;
		rc = 0;
	} else if (o->sender_gone) {
		rc = -EPIPE;
	} else {
		return -EAGAIN;
	}
	o->receiver_gone = true;
	return rc;
}

/*
 * Under the lock, before a receive: the receiver end is still there. A
 * receive that consumed it freed the object (try_take: the sender end is
 * gone by then), so a live object with receiver_gone was dropped by
 * weft_oneshot_receiver_drop while the sender end lives. A receive after
 * that was taken as one more wait: its entry linked on an object the
 * send (-EPIPE: the receiver is gone) then freed under it, a use after
 * free at the entry's next poll or cancel (found by a review). `call`
 * names the misuse, as sender_release does.
 */
static void receiver_alive(struct weft_oneshot *o, const char *call)
{
	if (o->receiver_gone)
		weft__die("%s on oneshot %p: the receiver end was already consumed (by "
			  "weft_oneshot_receiver_drop); it is consumed exactly once",
			  call, (void *)o);
}

/* The poll form; with `drop`, a value received goes to value_drop. */
static int recv_poll(struct weft_oneshot *o, struct weft_wait *w, struct weft_cx *cx,
		     void **value, bool drop)
{
	if (weft_budget_poll_proceed(cx) == WEFT_PENDING)
		return WEFT_PENDING;
	uint32_t grant;
	weft__slock_lock(&o->lock);
	receiver_alive(o, "a receive (weft_oneshot_recv, _poll, _timeout, a select's arm)");
	if (weft__waitq_poll_entry(&o->q, w, cx, &grant) != WQ_LINKED) {
		int rc = try_take(o, value);
		if (rc != -EAGAIN) {
			void (*vd)(void *) = o->value_drop;
			weft__slock_unlock(&o->lock);
			weft__free(o);
			if (rc == 0 && drop && vd)
				vd(*value);
			return rc;
		}
		/* a second receiver: the first to take the value frees the
		 * oneshot under the other's linked entry (a use after free,
		 * found by a review); said, as try_recv says it */
		if (o->q.outstanding)
			weft__die("weft_oneshot_recv on oneshot %p while another wait entry is "
				  "linked: a oneshot has one receiver", (void *)o);
		weft__waitq_link(&o->q, w, weft_cx_waker(cx), 0);
	}
	weft__slock_unlock(&o->lock);
	weft_budget_refund(cx);
	return WEFT_PENDING;
}

int weft_oneshot_recv_poll(struct weft_oneshot *o, struct weft_wait *w, struct weft_cx *cx,
			   void **value)
{
	if (!o || !w || !cx || !value || !weft__wait_usable(w, &o->q))
		return -EINVAL;
	return recv_poll(o, w, cx, value, false);
}

/*
 * A select's ONESHOT_RECV arm with no place for the value (weft.h: its ptr
 * may be NULL) received it and dropped it on the floor: the value_drop the
 * oneshot was made with never saw it, and a malloc'd value leaked (found
 * by a review). It is a value sent and never received by anyone.
 */
int weft__oneshot_recv_poll_drop(struct weft_oneshot *o, struct weft_wait *w,
				 struct weft_cx *cx)
{
	void *v = NULL;
	if (!o || !w || !cx || !weft__wait_usable(w, &o->q))
		return -EINVAL;
	return recv_poll(o, w, cx, &v, true);
}

struct oneshot_recv_args { struct weft_oneshot *o; struct weft_wait *w; void **value; int rc; };

static enum weft_poll oneshot_recv_fn(void *arg, struct weft_cx *cx)
{
	struct oneshot_recv_args *a = arg;
	int rc = weft_oneshot_recv_poll(a->o, a->w, cx, a->value);
	if (rc == WEFT_PENDING)
		return WEFT_PENDING;
	a->rc = rc;
	return WEFT_READY;
}

static int oneshot_recv_until(struct weft_oneshot *o, void **value, uint64_t deadline)
{
	if (!o || !value)
		return -EINVAL;
	struct weft_wait w = WEFT_WAIT_INIT;
	struct oneshot_recv_args a = { o, &w, value, 0 };
	int rc = weft__wait_deadline(oneshot_recv_fn, &a, &w, deadline);
	if (rc) {
		weft_wait_cancel(&w);
		return rc;
	}
	return a.rc;
}

int weft_oneshot_recv(struct weft_oneshot *o, void **value)
{
	return oneshot_recv_until(o, value, WEFT_FOREVER);
}

int weft_oneshot_recv_timeout(struct weft_oneshot *o, void **value, uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return oneshot_recv_until(o, value, timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns);
}

int weft_oneshot_try_recv(struct weft_oneshot *o, void **value)
{
	if (!o || !value)
		return -EINVAL;
	weft__slock_lock(&o->lock);
	receiver_alive(o, "weft_oneshot_try_recv");
	if (o->q.outstanding)
		weft__die("oneshot %p: try_recv while a wait entry is linked", (void *)o);
	int rc = try_take(o, value);
	weft__slock_unlock(&o->lock);
	if (rc != -EAGAIN)
		weft__free(o);
	return rc;
}

int weft_oneshot_receiver_drop(struct weft_oneshot *o)
{
	if (!o)
		return -EINVAL;
	weft__slock_lock(&o->lock);
	if (o->q.outstanding)
		weft__die("oneshot %p: receiver dropped with its wait entry linked "
			  "(weft_wait_cancel it first)", (void *)o);
	if (o->receiver_gone)
		weft__die("weft_oneshot_receiver_drop on oneshot %p: the receiver end was "
			  "already consumed; it is consumed exactly once", (void *)o);
	o->receiver_gone = true;
	void *v = o->sent ? o->value : NULL;
	bool drop_v = o->sent;
	o->sent = false;
	o->value = NULL;
	bool free_it = o->sender_gone;
	void (*vd)(void *) = o->value_drop;
	weft__slock_unlock(&o->lock);
	if (drop_v && vd)
		vd(v);
	if (free_it)
		weft__free(o);
	return 0;
}
