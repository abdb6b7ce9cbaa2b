/*
 * weft/sync.h - synchronisation between tasks and threads: oneshot, bounded
 * and rendezvous channel, broadcast and watch channels, notify, async
 * mutex, counting semaphore, wait group.
 *
 * Also: reader-writer lock, condition variable, once, cancellation tokens,
 * barrier.
 * Included by weft/weft.h; it may also be included alone.
 *
 * Two forms of every waiting call:
 *  - poll form `weft_X_Y_poll(obj, w, cx, ...)` for poll tasks. It returns
 *    0 or a negative errno when done, or WEFT_PENDING after linking the
 *    caller-owned wait entry `w` into the object's FIFO wait list with a
 *    clone of cx's waker. Call it again (with the same `w`) when woken. Each
 *    call consumes one unit of the cooperative budget (refunded when the
 *    call returns WEFT_PENDING for lack of readiness); when the budget is
 *    spent it returns WEFT_PENDING and the task is polled again later.
 *  - blocking form `weft_X_Y(obj, ...)`: blocks a thread outside the
 *    runtime (and suspends the calling fiber). From a
 *    poll task on a worker thread it returns -EDEADLK and does nothing:
 *    poll tasks use the poll form. In a fiber that has been cancelled
 *    (weft_abort, shutdown) every blocking form returns -ECANCELED, also
 *    one that would not have to wait, and leaves its entry unlinked
 *    (anything granted to it is passed on): see weft_spawn in weft.h.
 *
 * Wait entries and cancellation. A `struct weft_wait` belongs to the caller;
 * initialise it with WEFT_WAIT_INIT (or zero it) and use it for one object at
 * a time. A poll task keeps its entry in its state and calls
 * weft_wait_cancel() on it from its drop function: if the task is aborted
 * (weft_abort, runtime shutdown) while waiting, the entry is unlinked, its
 * waker dropped, and anything already granted to it (a notify permit, the
 * mutex, semaphore permits, a channel slot or item) is passed on to the next
 * waiter, so nothing leaks and no wakeup is lost. After a poll form returned
 * a result (not WEFT_PENDING) the entry is unlinked again and may be reused
 * or freed; weft_wait_cancel on it is a no-op. An entry must not be freed
 * while linked: cancel it first. The object an entry is linked to must stay
 * alive until the entry is cancelled or the poll form has returned a result.
 *
 *     struct rx { struct weft_chan *ch; struct weft_wait w; uint64_t sum; };
 *
 *     static enum weft_poll rx_poll(void *state, struct weft_cx *cx)
 *     {
 *             struct rx *r = state;
 *             uint64_t x;
 *             int rc;
 *             while ((rc = weft_chan_recv_poll(r->ch, &r->w, cx, &x)) == 0)
 *                     r->sum += x;
 *             return rc == WEFT_PENDING ? WEFT_PENDING : WEFT_READY; // -EPIPE: done
 *     }
 *
 *     static void rx_drop(void *state)
 *     {
 *             struct rx *r = state;
 *             weft_wait_cancel(&r->w);   // aborted while waiting: leave the list
 *             free(r);
 *     }
 *
 * Inside a fiber the runtime cancels the entry of a blocking call itself
 * when the fiber is dropped while suspended.
 *
 * Calls that take an object return -EINVAL for a NULL object or a NULL
 * required pointer, and for a wait entry linked to a different object.
 * Objects are allocated by their constructor from weft's allocator
 * (malloc, or the one weft_set_allocator set: weft.h; -ENOMEM on
 * failure; *out untouched) and freed by the matching destroy (or, for the
 * oneshot, when both ends are gone). A destroy that finds waiters still
 * linked (or holding a grant not yet collected), or a call still waking
 * waiters in batches (a release, unlock, notify_all, send or cancel that
 * hands on to more than 16), returns -EBUSY and frees nothing. Unless stated otherwise, every call may be made from any thread,
 * inside or outside the runtime, concurrently with the others.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_cx;
struct weft_waker_vtable;

/* ------------------------------------------------------------ wait entries */

/*
 * One waiter's place in an object's wait list. All fields are private to
 * weft; the struct is public only so that callers can embed it (in a poll
 * task's state, on a stack) without an allocation.
 */
struct weft_wait {
	struct weft_wait *_next, *_prev;             /* list links while linked */
	void *_queue;                                /* the wait list; NULL when idle */
	const struct weft_waker_vtable *_waker_vtable; /* cloned waker while linked */
	void *_waker_data;
	uint64_t _arg;                               /* per-object (permits wanted, ...) */
	uint32_t _state;                             /* idle / linked / granted */
	uint32_t _grant;                             /* what was granted */
	void *_sel;                                  /* weft_select's claim word, or NULL */
};

/* Initialiser for an idle entry (all zero). C++: value-initialisation
 * ({ 0 } would leave the other members to -Wmissing-field-initializers). */
#ifdef __cplusplus
#define WEFT_WAIT_INIT {}
#else
#define WEFT_WAIT_INIT { 0 }
#endif

/*
 * Leave the wait list: unlink `w` if linked, drop its waker, and pass on
 * whatever had already been granted to it but not yet collected by a poll.
 * No-op on an idle (zeroed, or already completed/cancelled) entry; NULL is
 * ignored. Must not run concurrently with a poll form using the same entry.
 */
WEFT_API void weft_wait_cancel(struct weft_wait *w);

/* ----------------------------------------------------------------- oneshot */

/*
 * A single value (a pointer) from one sender to one receiver.
 *
 * Ownership: weft_oneshot_create() returns one object with two ends, the
 * sender and the receiver, both held by the caller (hand them to two
 * tasks). The sender end is consumed exactly once, by weft_oneshot_send()
 * or weft_oneshot_sender_drop(); the receiver end exactly once, by a receive
 * that returned 0 or -EPIPE, or by weft_oneshot_receiver_drop(). The object
 * is freed when both ends are consumed; do not touch it afterwards.
 * Consuming an end twice (a second weft_oneshot_send, a send after
 * weft_oneshot_sender_drop, a second weft_oneshot_receiver_drop, a
 * receive of any form after weft_oneshot_receiver_drop) is a
 * programming error, not an error code: while the other end is still
 * alive weft aborts with a message naming the call ("weft_oneshot_send on
 * oneshot 0x...: the sender end was already consumed ..."); once both
 * ends are consumed the object is freed and the call is a use after free,
 * which cannot be detected.
 * `value_drop` (may be NULL) is called with a value that was sent but never
 * received (the receiver was dropped after the send, or a select's
 * ONESHOT_RECV arm with no place for the value took it: weft.h).
 */
struct weft_oneshot;

/* Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_oneshot_create(void (*value_drop)(void *value),
				 struct weft_oneshot **out);

/*
 * Send `value` and consume the sender end. Never blocks.
 * Returns 0, or -EPIPE when the receiver end is already gone (the value is
 * not delivered and stays the caller's; the sender end is still consumed),
 * or -EINVAL (NULL o; nothing consumed). A second send aborts (see above).
 */
WEFT_API int weft_oneshot_send(struct weft_oneshot *o, void *value);

/* Consume the sender end without sending: the receiver gets -EPIPE.
 * After a send or another sender_drop it aborts (see above). */
WEFT_API int weft_oneshot_sender_drop(struct weft_oneshot *o);

/*
 * Receive (poll form). WEFT_PENDING: nothing yet, `w` linked. 0: *value
 * holds the sent value. -EPIPE: the sender end was dropped without sending.
 * 0 and -EPIPE consume the receiver end (the object may be freed at once);
 * -EINVAL consumes nothing. One receiver: a receive (any form) with a
 * second entry while one is linked is a fatal error, as above.
 */
WEFT_API int weft_oneshot_recv_poll(struct weft_oneshot *o, struct weft_wait *w,
				    struct weft_cx *cx, void **value);

/* Receive (blocking form). 0 and -EPIPE consume the receiver end, as above;
 * every other result consumes nothing - -ETIMEDOUT (the _timeout form, time
 * up), -ECANCELED (the calling fiber aborted or shut down), -EDEADLK (on a
 * worker), -ENOMEM and -EINVAL: the end stays the caller's, to receive on
 * again or to drop. */
WEFT_API int weft_oneshot_recv(struct weft_oneshot *o, void **value);
WEFT_API int weft_oneshot_recv_timeout(struct weft_oneshot *o, void **value, uint64_t timeout_ns);

/* Receive without waiting: 0 or -EPIPE (receiver consumed, as above), or
 * -EAGAIN (nothing sent yet; nothing consumed). Not while the receiver's
 * wait entry is linked (cancel it first; a linked entry is a fatal error). */
WEFT_API int weft_oneshot_try_recv(struct weft_oneshot *o, void **value);

/*
 * Consume the receiver end without receiving. A value already sent is
 * passed to value_drop. A poll task must weft_wait_cancel() its entry
 * before this call (a still-linked entry is a fatal error).
 */
WEFT_API int weft_oneshot_receiver_drop(struct weft_oneshot *o);

/* ----------------------------------------------------------------- channel */

/*
 * Multi-producer multi-consumer channel of fixed-size items, copied in and
 * out by value (memcpy of item_size bytes): buffered (capacity >= 1) or
 * rendezvous (capacity 0, as Go's unbuffered channel).
 *
 * Ownership: created by weft_chan_create(), freed by weft_chan_destroy()
 * once no wait entry is linked to it (-EBUSY while one is, or while a call
 * is still waking waiters in batches, as above); items still buffered are
 * discarded then. A call that has not returned must not race the destroy
 * otherwise (the memory is gone once it says 0). Any number of senders and
 * receivers may use it concurrently.
 *
 * Semantics: items leave the buffer in the order they were sent (FIFO);
 * each item is received exactly once. Senders blocked on a full channel and
 * receivers blocked on an empty one are served in FIFO order: an item sent
 * while receivers wait goes to the first of them (copied straight into its
 * place), a slot freed while senders wait is filled with the first waiting
 * sender's item, so a later caller cannot overtake a waiting one, and one
 * waiter is woken per item or slot. (When several woken receivers hold
 * reservations at once, which of the buffered items each takes depends on
 * the order in which they run.) After weft_chan_close(), sends fail with
 * -EPIPE (waiting senders are woken and get -EPIPE), and receivers take
 * the items still buffered or already on their way to a receiver, then get
 * -EPIPE. A receiver cancelled (weft_wait_cancel, an aborted task, a dropped
 * fiber, a timeout) after an item was handed to it gives the item back: it
 * goes to the next receiver, ahead of everything buffered.
 *
 * Rendezvous (capacity 0): a send completes only when a receiver has taken
 * the item: it waits for a receiver (weft_chan_try_send gives -EAGAIN
 * unless one is waiting), a receive waits for a sender. An item given back
 * by a cancelled receiver is held for the next receiver (at most one such
 * item at a time; senders wait meanwhile).
 *
 * Items and poll forms. A sender's poll form that returns WEFT_PENDING has
 * taken its item: when a receiver makes room it moves the item itself and
 * the sender's next poll just returns 0; the `item` passed to that later
 * poll is not read. So do not change the item between polls (send another
 * item only after 0). A receiver's next poll after WEFT_PENDING writes the
 * item to the `item` it is given then. (Items of at most 8 bytes are kept
 * in the wait entry; larger ones of the poll forms on a buffered channel
 * are copied at the poll that completes, through a slot or item reserved
 * for the entry.) For items larger than 8 bytes on a rendezvous channel
 * only, the poll forms keep the `item` pointer given with the call that
 * returned WEFT_PENDING and read (send) or write (receive) through it from
 * other threads until the entry completes or is cancelled: it must stay
 * valid and be passed again unchanged (the blocking sends always satisfy
 * this). A blocking receive writes its `item` only when it returns 0: one
 * that fails (-ETIMEDOUT, -ECANCELED, -EPIPE) leaves it untouched, also
 * after an item was handed to it and given back.
 *
 * Cancelling a sender. A sender whose item a receiver already took has
 * completed, even if it has not been polled since: weft_wait_cancel (an
 * abort, a dropped fiber) cannot take the item back, it is received once.
 * To learn whether a waiting send went out, poll it once more before
 * cancelling: a completed send returns 0 without waiting. A receiver
 * cancelled after an item was handed to it gives it back (see above), so
 * a given-back item may reach a receiver after later items of the same
 * sender that other receivers took meanwhile.
 */
struct weft_chan;

/* Largest buffer (item_size * capacity bytes) a channel may have: 1 TiB. */
#define WEFT_CHAN_MAX_BYTES ((size_t)1 << 40)

/* The buffer of item_size * max(capacity, 1) bytes is allocated here, at
 * once; capacity 0 makes a rendezvous channel.
 * Errors: -EINVAL (NULL out, item_size 0, or a buffer larger than
 * WEFT_CHAN_MAX_BYTES or whose size overflows; nothing is allocated),
 * -ENOMEM (a buffer within the bound that cannot be allocated). */
WEFT_API int weft_chan_create(size_t item_size, size_t capacity,
			      struct weft_chan **out);

/* An unbounded channel (Tokio's mpsc::unbounded_channel): a sender never
 * waits, so weft_chan_send and weft_chan_try_send may be called from
 * anywhere - a poll task, a plain thread, a signal-free callback - and
 * never return WEFT_PENDING, -EAGAIN or -EDEADLK. Its buffer grows as
 * items queue up (doubling, up to WEFT_CHAN_MAX_BYTES) and shrinks as
 * they are received; a send that cannot grow it returns -ENOMEM with
 * nothing sent. That can happen while a receiver waits too: an item
 * handed to a waiting receiver holds its room in the buffer until that
 * receiver collects it (one that cancels puts it back, first in line,
 * and that must not fail), so with the buffer full of items buffered or
 * on their way to receivers, the next one, even for a waiting receiver,
 * needs it to grow. Every other call works as on a buffered channel (close,
 * receive forms, select arms, weft_signal_notify). Nothing bounds the
 * memory a fast sender and a slow receiver use: prefer a bounded channel
 * where back-pressure is wanted. A fiber cancelled before its send still
 * gets -ECANCELED from weft_chan_send (its cancellation point), also from
 * its weft_block_in_place fn, where the runtime's shutdown counts as
 * cancellation from its start (as the fn's waits see it). Its sends
 * spend no budget (no send form yields the worker: a loop of sends runs
 * on), unlike the other poll forms here.
 * Errors: -EINVAL (NULL out, item_size 0 or over WEFT_CHAN_MAX_BYTES / 16),
 * -ENOMEM. */
WEFT_API int weft_chan_create_unbounded(size_t item_size, struct weft_chan **out);

/* Free the channel. -EBUSY (nothing freed) while wait entries are linked
 * or hold a grant not yet collected, or while it is notified for a signal
 * (weft/signal.h: weft_signal_stop first). -EINVAL: NULL ch. */
WEFT_API int weft_chan_destroy(struct weft_chan *ch);

/* Close: idempotent, returns 0 (-EINVAL: NULL ch). Wakes every waiting
 * sender (-EPIPE) and, once no item is buffered or on its way to a
 * receiver, every waiting receiver (-EPIPE). */
WEFT_API int weft_chan_close(struct weft_chan *ch);

/* Counted senders (Tokio's Sender clones, whose last drop closes; Go's
 * "close once every producer is done"): weft_chan_sender_add counts n more
 * senders, weft_chan_sender_done uncounts one and, for the last, closes
 * the channel (as weft_chan_close: the receivers drain what is buffered,
 * then get -EPIPE). Call done after the sender's last send. The count
 * starts at 0 and nothing looks at it until an add: an uncounted channel
 * is closed with weft_chan_close as ever (which may also be called while
 * senders are counted). Errors: -EINVAL (NULL ch, n 0, or a done with no
 * sender counted), -EOVERFLOW. */
WEFT_API int weft_chan_sender_add(struct weft_chan *ch, size_t n);
WEFT_API int weft_chan_sender_done(struct weft_chan *ch);

/* Number of items buffered now (a snapshot; items already handed to a
 * receiver or still held by a waiting sender are not counted; always 0
 * on a rendezvous channel except for an item given back by a cancelled
 * receiver). 0 and *len set, or -EINVAL (NULL ch or len). */
WEFT_API int weft_chan_len(struct weft_chan *ch, size_t *len);

/* 1 if weft_chan_close() was called, 0 if not, -EINVAL for NULL ch. */
WEFT_API int weft_chan_is_closed(struct weft_chan *ch);

/* Send a copy of item_size bytes at `item`. Poll form: 0, WEFT_PENDING
 * (full, or no receiver on a rendezvous channel; `w` linked), -EPIPE
 * (closed; the item is not sent), -EINVAL (NULL argument, `w` linked to
 * another object), -ENOMEM (an unbounded channel that cannot grow; not
 * sent). The send forms (a select's SEND arm too) may say -ENOMEM only on
 * an unbounded channel. */
WEFT_API int weft_chan_send_poll(struct weft_chan *ch, struct weft_wait *w,
				 struct weft_cx *cx, const void *item);
/* Blocking form: 0, -EPIPE, -EINVAL, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_chan_send(struct weft_chan *ch, const void *item);
/* 0, -EAGAIN (full, or earlier senders are waiting; rendezvous: no
 * receiver waiting), -EPIPE (closed), -EINVAL, -ENOMEM (unbounded). */
WEFT_API int weft_chan_try_send(struct weft_chan *ch, const void *item);

/* Receive into item_size bytes at `item`. Poll form: 0, WEFT_PENDING
 * (empty, or no sender on a rendezvous channel; `w` linked), -EPIPE (closed and drained), -EINVAL. */
WEFT_API int weft_chan_recv_poll(struct weft_chan *ch, struct weft_wait *w,
				 struct weft_cx *cx, void *item);
/* Blocking form: 0, -EPIPE, -EINVAL, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_chan_recv(struct weft_chan *ch, void *item);
/* 0, -EAGAIN (nothing available to a new receiver; rendezvous: no sender
 * waiting), -EPIPE (closed, drained), -EINVAL. */
WEFT_API int weft_chan_try_recv(struct weft_chan *ch, void *item);
/* Every blocking-style wait here also has a _timeout form taking a time
 * limit in ns: -ETIMEDOUT when it passes first, with nothing taken (no
 * item, permit, lock or value; a grant that raced with the timeout is passed
 * on to the next waiter). */
/* Blocking send/recv with a time limit: -ETIMEDOUT when it passes first
 * (nothing was sent / received; a send whose item a receiver took as the
 * time ran out returns 0; one that finds the channel closed as the time
 * ran out - a receiver: closed and drained - returns -EPIPE, also while
 * the close still wakes waiters in batches). Otherwise as
 * weft_chan_send/recv. */
WEFT_API int weft_chan_send_timeout(struct weft_chan *ch, const void *item, uint64_t timeout_ns);
WEFT_API int weft_chan_recv_timeout(struct weft_chan *ch, void *item, uint64_t timeout_ns);

/*
 * Receive a batch (Tokio's recv_many): up to `max` items into the array
 * `items` (max * item_size bytes), in order, with *got set to how many.
 * Waits as the single-item form for the first item; then takes what else
 * is there without waiting, under the lock on a buffered channel (dropped
 * only to wake a batch of senders): the
 * buffered items and, as each slot frees, the items of senders waiting
 * for room - so a batch may be larger than the capacity, and FIFO holds as
 * for single receives (so an item a cancelled receiver gave back, which
 * goes to the head, can follow newer items of its sender in a batch, as it
 * could in two single receives). It never takes an item a waiting receiver
 * is owed. On a rendezvous channel the rest are hand-offs from waiting
 * senders.
 * Returns 0 with *got >= 1, or the single-item form's error with *got 0
 * (-EPIPE closed and drained, -EAGAIN for the try form, -ETIMEDOUT,
 * -ECANCELED, -EDEADLK, WEFT_PENDING for the poll form, whose later polls
 * write the batch to the `items` given then - except that on a rendezvous
 * channel with items over 8 bytes the first item is written through the
 * `items` of the poll that returned WEFT_PENDING, as for
 * weft_chan_recv_poll: keep it valid and pass it again); -EINVAL for a
 * NULL argument or max 0.
 */
WEFT_API int weft_chan_recv_many(struct weft_chan *ch, void *items, size_t max, size_t *got);
WEFT_API int weft_chan_recv_many_timeout(struct weft_chan *ch, void *items, size_t max,
					 size_t *got, uint64_t timeout_ns);
WEFT_API int weft_chan_try_recv_many(struct weft_chan *ch, void *items, size_t max, size_t *got);
WEFT_API int weft_chan_recv_many_poll(struct weft_chan *ch, struct weft_wait *w,
				      struct weft_cx *cx, void *items, size_t max, size_t *got);

/* --------------------------------------------------------------- broadcast */

/*
 * Broadcast channel: every receiver sees every item sent after it
 * subscribed, in order (Tokio's broadcast). Items of item_size bytes are
 * copied in and out. The channel keeps the last `capacity` items; a
 * receiver that falls further behind than that has lagged: its next
 * receive returns -EOVERFLOW with the number of items it missed in
 * *lagged, and its following receives continue from the oldest item still
 * kept. Sending never waits (a slow receiver cannot hold a sender back).
 *
 * Ownership: weft_broadcast_create() / weft_broadcast_destroy() (-EBUSY
 * while receivers exist or wait entries are linked). Each receiver is a
 * handle from weft_broadcast_subscribe(), used by one task or thread at a
 * time, freed by weft_broadcast_rx_drop() (after any wait entry it used
 * was cancelled or completed). The channel must outlive its receivers.
 */
struct weft_broadcast;
struct weft_broadcast_rx;

/* Errors: -EINVAL (NULL out, item_size 0, capacity 0, a history larger
 * than WEFT_CHAN_MAX_BYTES), -ENOMEM. */
WEFT_API int weft_broadcast_create(size_t item_size, size_t capacity,
				   struct weft_broadcast **out);
/* 0, -EBUSY (receivers or linked entries remain; nothing freed), -EINVAL. */
WEFT_API int weft_broadcast_destroy(struct weft_broadcast *b);
/* Send a copy of `item` to every receiver; wakes every waiting receiver.
 * 0 (also with no receiver: the item is only kept in the history),
 * -EPIPE (closed; not sent), -EINVAL (NULL b or item). */
WEFT_API int weft_broadcast_send(struct weft_broadcast *b, const void *item);
/* Close: idempotent, 0 (-EINVAL: NULL b). Receivers take what is still
 * kept for them, then get -EPIPE. */
WEFT_API int weft_broadcast_close(struct weft_broadcast *b);
/* A new receiver that sees items sent from now on. 0, -EINVAL (NULL
 * argument), -ENOMEM. Subscribing to a closed channel works (its receives
 * give -EPIPE). */
WEFT_API int weft_broadcast_subscribe(struct weft_broadcast *b,
				      struct weft_broadcast_rx **out);
/* Free a receiver: 0, -EINVAL (NULL). */
WEFT_API int weft_broadcast_rx_drop(struct weft_broadcast_rx *rx);
/*
 * Receive the next item into `item`. Poll form: 0, WEFT_PENDING (nothing
 * new; `w` linked), -EOVERFLOW (lagged: *lagged, if not NULL, is the
 * number of items missed; nothing written to item; call again for the
 * oldest kept item), -EPIPE (closed and nothing left for this receiver),
 * -EINVAL (NULL rx, w, cx or item; `w` linked elsewhere: on another
 * channel, or for another receiver of this one - a receiver waits with
 * one entry at a time, the last it linked, until a poll collects it or
 * it is cancelled).
 */
WEFT_API int weft_broadcast_recv_poll(struct weft_broadcast_rx *rx, struct weft_wait *w,
				      struct weft_cx *cx, void *item, uint64_t *lagged);
/* Blocking forms: as the poll form, plus -EDEADLK (on a worker), -ENOMEM,
 * and -ETIMEDOUT for the _timeout form (nothing taken; one woken by a send
 * or the close as its time ran out takes the item, or says -EOVERFLOW or
 * -EPIPE, instead). */
WEFT_API int weft_broadcast_recv(struct weft_broadcast_rx *rx, void *item, uint64_t *lagged);
WEFT_API int weft_broadcast_recv_timeout(struct weft_broadcast_rx *rx, void *item,
					 uint64_t *lagged, uint64_t timeout_ns);
/* Without waiting: 0, -EAGAIN (nothing new), -EOVERFLOW, -EPIPE, -EINVAL. */
WEFT_API int weft_broadcast_try_recv(struct weft_broadcast_rx *rx, void *item,
				     uint64_t *lagged);

/* ------------------------------------------------------------------- watch */

/*
 * Watch channel: one value, the latest sent, and a "changed" wait (Tokio's
 * watch). Each receiver remembers the version it has seen; a wait returns
 * when a newer value exists. Values sent in between may be skipped: a
 * receiver sees the latest value, not every value. Sending never waits.
 *
 * Ownership: weft_watch_create() / weft_watch_destroy() (-EBUSY while
 * receivers exist or wait entries are linked); receivers from
 * weft_watch_subscribe(), one task or thread at a time each, freed by
 * weft_watch_rx_drop() (after any wait entry it used was cancelled or
 * completed). The channel must outlive its receivers.
 */
struct weft_watch;
struct weft_watch_rx;

/* Errors: -EINVAL (NULL out or initial, item_size 0 or larger than
 * WEFT_CHAN_MAX_BYTES), -ENOMEM. */
WEFT_API int weft_watch_create(size_t item_size, const void *initial,
			       struct weft_watch **out);
/* 0, -EBUSY (receivers or linked entries remain; nothing freed), -EINVAL. */
WEFT_API int weft_watch_destroy(struct weft_watch *wt);
/* Replace the value; wakes every waiting receiver. 0, -EPIPE (closed; the
 * value is unchanged), -EINVAL (NULL wt or item). */
WEFT_API int weft_watch_send(struct weft_watch *wt, const void *item);
/* Close: idempotent, 0 (-EINVAL: NULL). Waiting receivers wake: those with
 * an unseen value get 0, the rest -EPIPE. The value stays readable. */
WEFT_API int weft_watch_close(struct weft_watch *wt);
/* A new receiver; the value current now counts as seen. 0, -EINVAL,
 * -ENOMEM. */
WEFT_API int weft_watch_subscribe(struct weft_watch *wt, struct weft_watch_rx **out);
/* Free a receiver: 0, -EINVAL (NULL). */
WEFT_API int weft_watch_rx_drop(struct weft_watch_rx *rx);
/* Copy the current value into `item` and mark it seen. 0, -EINVAL (NULL
 * rx or item). Works after close. */
WEFT_API int weft_watch_get(struct weft_watch_rx *rx, void *item);
/* 1 if a value newer than the one seen exists, 0 if not, -EPIPE (closed
 * and nothing unseen), -EINVAL. Marks nothing. */
WEFT_API int weft_watch_has_changed(struct weft_watch_rx *rx);
/* Wait for a newer value than the one seen; 0 marks it seen (read it with
 * weft_watch_get). Poll form: 0, WEFT_PENDING (`w` linked), -EPIPE
 * (closed and nothing unseen), -EINVAL (NULL rx, w or cx; `w` linked
 * elsewhere: on another channel, or for another receiver of this one -
 * a receiver waits with one entry at a time, the last it linked, until
 * a poll collects it or it is cancelled; nothing marked seen). */
WEFT_API int weft_watch_changed_poll(struct weft_watch_rx *rx, struct weft_wait *w,
				     struct weft_cx *cx);
/* Blocking forms: as the poll form, plus -EDEADLK (on a worker), -ENOMEM,
 * -ETIMEDOUT (_timeout form; nothing marked seen; one woken by a send or
 * the close as its time ran out says 0 or -EPIPE instead). */
WEFT_API int weft_watch_changed(struct weft_watch_rx *rx);
WEFT_API int weft_watch_changed_timeout(struct weft_watch_rx *rx, uint64_t timeout_ns);

/* ------------------------------------------------------------------ notify */

/*
 * Wake tasks waiting for an event. weft_notify_one() wakes the first waiter
 * or, if nobody waits, stores one permit (at most one) that the next wait
 * consumes at once. weft_notify_all() wakes every waiter linked before the
 * call and stores no permit; a waiter it released says 0 at its next poll
 * (also while the call still wakes others in batches), and a _timeout
 * wait it released as the time ran out returns 0.
 *
 * Ownership: weft_notify_create() / weft_notify_destroy() (-EBUSY while
 * entries are linked).
 */
struct weft_notify;

/* Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_notify_create(struct weft_notify **out);
/* Errors: -EINVAL (NULL n), -EBUSY (entries linked or enabled). */
WEFT_API int weft_notify_destroy(struct weft_notify *n);
/* 0, or -EINVAL (NULL n). */
WEFT_API int weft_notify_one(struct weft_notify *n);
WEFT_API int weft_notify_all(struct weft_notify *n);
/*
 * Register-then-check (Tokio's Notified::enable). A notify_all that runs
 * between "check a condition" and "wait" is otherwise lost: it releases
 * only entries already linked and stores no permit. The flag pattern that
 * cannot lose a wakeup:
 *
 *     struct weft_wait w = WEFT_WAIT_INIT;
 *     weft_notify_enable(n, &w);             // from here on, notifies count
 *     if (!atomic_load(&flag))
 *             weft_notify_wait_enabled(n, &w); // returns at once if notified since
 *     else
 *             weft_wait_cancel(&w);
 *
 * and on the other side: atomic_store(&flag, 1); weft_notify_all(n);
 *
 * weft_notify_enable links `w` (idle) without a waker, or, when a permit
 * is stored, takes the permit into `w`. From then on a notify_one may
 * choose `w` (FIFO among the waiters) and every notify_all releases it; the
 * next weft_notify_wait_poll / weft_notify_wait_enabled with `w` returns 0
 * at once if either happened. Enabling an entry already attached to `n` is
 * a no-op. The entry counts as a waiter (destroy returns -EBUSY) until a
 * wait with it returned or weft_wait_cancel(w), which passes a notify_one
 * grant it holds on to the next waiter (or back to the permit).
 * Errors: -EINVAL (NULL n or w, or w attached to another object).
 */
WEFT_API int weft_notify_enable(struct weft_notify *n, struct weft_wait *w);
/* Blocking wait with the caller's entry (enabled or idle). Returns 0,
 * -EINVAL (as above), -EDEADLK (poll task on a worker), -ENOMEM, and for
 * the _timeout form -ETIMEDOUT. `w` is idle again when it returns, whatever
 * the result (a grant that raced with an error is passed on). */
WEFT_API int weft_notify_wait_enabled(struct weft_notify *n, struct weft_wait *w);
WEFT_API int weft_notify_wait_enabled_timeout(struct weft_notify *n, struct weft_wait *w,
					      uint64_t timeout_ns);
/* Poll form: 0 (notified or permit consumed, or - for an enabled entry -
 * notified since the enable) or WEFT_PENDING. */
WEFT_API int weft_notify_wait_poll(struct weft_notify *n, struct weft_wait *w,
				   struct weft_cx *cx);
/* Blocking form: 0, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_notify_wait(struct weft_notify *n);
/* -ETIMEDOUT when the time passes first. */
WEFT_API int weft_notify_wait_timeout(struct weft_notify *n, uint64_t timeout_ns);

/* ------------------------------------------------------------------- mutex */

/*
 * Async mutex: a task waiting for it suspends instead of blocking its
 * worker. Fair under contention: unlock hands the mutex directly to the
 * first waiter (FIFO), so a later caller cannot barge in. It is not tied
 * to a thread: any task or thread may unlock it (typically the one that
 * locked it, possibly after moving to another worker).
 *
 * Ownership: weft_mutex_create() / weft_mutex_destroy() (-EBUSY while
 * locked or while entries are linked).
 */
struct weft_mutex;

WEFT_API int weft_mutex_create(struct weft_mutex **out);
WEFT_API int weft_mutex_destroy(struct weft_mutex *m);
/* Poll form: 0 (the caller holds the mutex) or WEFT_PENDING; -EINVAL
 * (NULL argument, or w attached to another object - one a
 * weft_cond_wait_poll queued for m after its signal too: it is the
 * cond's; w left as it was). */
WEFT_API int weft_mutex_lock_poll(struct weft_mutex *m, struct weft_wait *w,
				  struct weft_cx *cx);
/* Blocking form: 0, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_mutex_lock(struct weft_mutex *m);
WEFT_API int weft_mutex_lock_timeout(struct weft_mutex *m, uint64_t timeout_ns);
/* 0 or -EBUSY (held, or others are waiting). */
WEFT_API int weft_mutex_try_lock(struct weft_mutex *m);
/* 0, or -EPERM if the mutex is not locked. */
WEFT_API int weft_mutex_unlock(struct weft_mutex *m);

/* --------------------------------------------------------------- semaphore */

/*
 * Counting semaphore. Waiters are served strictly in FIFO order: a request
 * for n permits at the head of the list holds back smaller later requests
 * until it is satisfied (no starvation of large requests). A waiter whose
 * request a release satisfied (with every request ahead of it) holds its
 * permits from that release on: its next poll says 0 also while the
 * release still wakes waiters in batches, and a _timeout wait whose time
 * runs out in that gap returns 0.
 *
 * Ownership: weft_sem_create() / weft_sem_destroy() (-EBUSY while entries
 * are linked, and while a release or a cancel is still waking waiters).
 * Permits granted to a waiter that cancels go back to the count even if
 * that takes it past WEFT_SEM_MAX_PERMITS (they are never lost); a release
 * of n > 0 then says -EOVERFLOW until the count comes down.
 */
struct weft_sem;

/* Largest number of permits a semaphore holds or a request asks for. */
#define WEFT_SEM_MAX_PERMITS ((uint64_t)1 << 60)

/* Errors: -EINVAL (NULL out, permits > WEFT_SEM_MAX_PERMITS), -ENOMEM. */
WEFT_API int weft_sem_create(uint64_t permits, struct weft_sem **out);
WEFT_API int weft_sem_destroy(struct weft_sem *s);
/* Poll form: 0 (n permits taken) or WEFT_PENDING; -EPIPE (closed: see
 * weft_sem_close); -EINVAL for n > WEFT_SEM_MAX_PERMITS, or for an entry
 * polled again with another n than the one it waits for (cancel it
 * first). n = 0 succeeds at once (unless closed). */
WEFT_API int weft_sem_acquire_n_poll(struct weft_sem *s, uint64_t n,
				     struct weft_wait *w, struct weft_cx *cx);
/* Blocking form: 0, -EPIPE, -EINVAL, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_sem_acquire_n(struct weft_sem *s, uint64_t n);
WEFT_API int weft_sem_acquire_n_timeout(struct weft_sem *s, uint64_t n, uint64_t timeout_ns);
/* 0, or -EAGAIN (not enough permits, or earlier requests are waiting),
 * -EPIPE (closed), -EINVAL (n > WEFT_SEM_MAX_PERMITS). */
WEFT_API int weft_sem_try_acquire_n(struct weft_sem *s, uint64_t n);
/* Close the semaphore (Tokio's Semaphore::close), e.g. to stop a pool
 * taking work at shutdown: every waiter returns -EPIPE (also one polled,
 * or whose time runs out, before the close's wake reaches it), and so does
 * every later acquire; permits already taken stay taken and may be released
 * (the count goes on, for weft_sem_available). Idempotent. 0, -EINVAL. */
WEFT_API int weft_sem_close(struct weft_sem *s);
WEFT_API bool weft_sem_is_closed(struct weft_sem *s);
/* Return n permits: 0 (always for n = 0: nothing to add), or -EOVERFLOW
 * (n or the count would pass WEFT_SEM_MAX_PERMITS, or the count and the
 * permits granted to waiters that have not collected them yet would pass
 * UINT64_MAX - their cancels could not give them all back; nothing
 * released). */
WEFT_API int weft_sem_release_n(struct weft_sem *s, uint64_t n);
/* Permits currently available (a snapshot). */
WEFT_API uint64_t weft_sem_available(struct weft_sem *s);

/* --------------------------------------------------------------- waitgroup */

/*
 * Go's WaitGroup: a counter; waiters wake when it reaches zero. A wait on
 * a zero counter returns at once. Every waiter linked when the counter
 * reaches zero is released, even if the counter is raised again before it
 * runs: its next poll says 0 (also while the call that released it still
 * wakes waiters in batches), and a _timeout wait released as its time runs
 * out returns 0.
 *
 * Ownership: weft_waitgroup_create() / weft_waitgroup_destroy() (-EBUSY
 * while entries are linked).
 */
struct weft_waitgroup;

WEFT_API int weft_waitgroup_create(struct weft_waitgroup **out);
WEFT_API int weft_waitgroup_destroy(struct weft_waitgroup *wg);
/* Add delta (may be negative). -EINVAL if the counter would go below zero
 * or past INT64_MAX (counter unchanged). */
WEFT_API int weft_waitgroup_add(struct weft_waitgroup *wg, int64_t delta);
/* weft_waitgroup_add(wg, -1). */
WEFT_API int weft_waitgroup_done(struct weft_waitgroup *wg);
/* Poll form: 0 (counter reached zero) or WEFT_PENDING. */
WEFT_API int weft_waitgroup_wait_poll(struct weft_waitgroup *wg, struct weft_wait *w,
				      struct weft_cx *cx);
/* Blocking form: 0, -EDEADLK (on a worker), -ENOMEM. */
WEFT_API int weft_waitgroup_wait(struct weft_waitgroup *wg);
WEFT_API int weft_waitgroup_wait_timeout(struct weft_waitgroup *wg, uint64_t timeout_ns);

/* ----------------------------------------------------------------- barrier */

/*
 * Tokio's Barrier (pthread_barrier for tasks, fibers and threads): n
 * parties wait, and all are released when the n-th arrives; then it is
 * ready for the next round (a generation). Exactly one party of each
 * round, the one that arrived last, is told it is the leader (*leader
 * true; leader may be NULL). A waiter that gives up (its time limit, the
 * fiber cancelled, a poll task's weft_wait_cancel) before its round is
 * complete takes its arrival back, so the round still needs n; one whose
 * round was released as it gave up returns 0, as released.
 *
 * Ownership: weft_barrier_create() / weft_barrier_destroy() (-EBUSY while
 * parties wait).
 */
struct weft_barrier;

/* -EINVAL (NULL out, n 0), -ENOMEM. */
WEFT_API int weft_barrier_create(size_t n, struct weft_barrier **out);
WEFT_API int weft_barrier_destroy(struct weft_barrier *b);
/* Poll form: 0 (released; *leader set) or WEFT_PENDING (arrived: keep w
 * and poll again when woken, or weft_wait_cancel(w) to leave); -EINVAL
 * (NULL b, w or cx, or w attached to another object). To give up, poll
 * once more first: 0 says the round was released (the arrival counted,
 * do not cancel); a round that closes between that poll and the cancel
 * still counts the arrival, unseen (the blocking forms see it). */
WEFT_API int weft_barrier_wait_poll(struct weft_barrier *b, struct weft_wait *w,
				    struct weft_cx *cx, bool *leader);
/* Blocking form: 0 (released; *leader set), -EINVAL, -EDEADLK (poll task
 * on a worker), -ENOMEM, -ECANCELED (a cancelled fiber); the _timeout form
 * also -ETIMEDOUT (arrival taken back). */
WEFT_API int weft_barrier_wait(struct weft_barrier *b, bool *leader);
WEFT_API int weft_barrier_wait_timeout(struct weft_barrier *b, uint64_t timeout_ns,
				       bool *leader);

/* ------------------------------------------------------------------ rwlock */

/*
 * Async reader-writer lock: any number of readers or one writer. Fair and
 * writer-preferring: waiters are served in arrival order, and a caller
 * gets the lock at once only when nobody waits, so a waiting writer holds
 * back the readers that arrive after it (no writer starvation) while the
 * readers queued before it still go first (no reader starvation). When the
 * lock is released to waiting readers, every reader up to the next waiting
 * writer gets it together: each of them holds it from that release on -
 * its next poll says 0 also while the release still wakes waiters in
 * batches, and a _timeout form granted or released as its time runs out
 * returns 0. Like the mutex it is not tied to a thread.
 *
 * Because it is not tied to a thread or task, it cannot tell a holder from
 * anyone else, and two patterns wait for ever (as Go's sync.RWMutex and
 * Tokio's RwLock do; the _timeout forms then say -ETIMEDOUT, the try forms
 * -EBUSY):
 *  - no upgrade: a write lock taken while the caller holds a read lock
 *    waits for that read hold to end, i.e. for ever. Release the read hold
 *    first, take the write lock, and look at the data again.
 *  - no recursive read: a second read lock taken by a holder waits behind
 *    any writer already queued (writer preference), and that writer waits
 *    for the first hold. Take the read lock once per holder.
 *
 * Ownership: weft_rwlock_create() / weft_rwlock_destroy() (-EBUSY while
 * held or while entries are linked).
 */
struct weft_rwlock;

/* Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_rwlock_create(struct weft_rwlock **out);
/* Errors: -EINVAL (NULL l), -EBUSY. */
WEFT_API int weft_rwlock_destroy(struct weft_rwlock *l);
/* Poll forms: 0 (held for reading / writing) or WEFT_PENDING; -EINVAL (NULL
 * l, w or cx; w attached elsewhere or linked for the other mode). */
WEFT_API int weft_rwlock_read_poll(struct weft_rwlock *l, struct weft_wait *w,
				   struct weft_cx *cx);
WEFT_API int weft_rwlock_write_poll(struct weft_rwlock *l, struct weft_wait *w,
				    struct weft_cx *cx);
/* Blocking forms: 0, -EINVAL (NULL l), -EDEADLK (poll task on a worker),
 * -ENOMEM; the _timeout forms also -ETIMEDOUT (not acquired). */
WEFT_API int weft_rwlock_read(struct weft_rwlock *l);
WEFT_API int weft_rwlock_write(struct weft_rwlock *l);
WEFT_API int weft_rwlock_read_timeout(struct weft_rwlock *l, uint64_t timeout_ns);
WEFT_API int weft_rwlock_write_timeout(struct weft_rwlock *l, uint64_t timeout_ns);
/* 0, -EBUSY (not available now, or others are waiting), -EINVAL (NULL). */
WEFT_API int weft_rwlock_try_read(struct weft_rwlock *l);
WEFT_API int weft_rwlock_try_write(struct weft_rwlock *l);
/* 0, -EPERM (not held for reading / writing), -EINVAL (NULL). */
WEFT_API int weft_rwlock_read_unlock(struct weft_rwlock *l);
WEFT_API int weft_rwlock_write_unlock(struct weft_rwlock *l);

/* ---------------------------------------------------- condition variable */

/*
 * Condition variable used with a weft_mutex. Wait with the mutex held; the
 * wait releases it and takes it again before returning (also on
 * -ETIMEDOUT). Check the predicate in a loop: a wait may also return
 * after a broadcast that was meant for an older state. A signal with
 * nobody waiting does nothing (there is no stored permit; use weft_notify
 * for that). Signals are not lost to a waiter that times out or is
 * cancelled: a signal it had already received goes to the next waiter.
 * A broadcast releases every waiter linked before it: one whose time runs
 * out before the broadcast's wake reaches it returns 0 (m held again).
 *
 * Ownership: weft_cond_create() / weft_cond_destroy() (-EBUSY while entries
 * are linked).
 */
struct weft_cond;

/* Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_cond_create(struct weft_cond **out);
/* Errors: -EINVAL (NULL c), -EBUSY. */
WEFT_API int weft_cond_destroy(struct weft_cond *c);
/* Wake the first waiter / every waiter waiting now. 0, or -EINVAL (NULL). */
WEFT_API int weft_cond_signal(struct weft_cond *c);
WEFT_API int weft_cond_broadcast(struct weft_cond *c);
/*
 * Blocking form: called holding m. 0 (signalled; m held again), -ETIMEDOUT
 * (_timeout form: m held again), -EINVAL (NULL c or m), -EPERM (m was not
 * locked), -EDEADLK (poll task on a worker) and -ENOMEM (m still held,
 * nothing waited), -ECANCELED (the calling fiber was cancelled: m is NOT
 * held - released and not taken back, since a cancelled fiber's waits
 * return at once; a signal it had received is passed on).
 */
WEFT_API int weft_cond_wait(struct weft_cond *c, struct weft_mutex *m);
WEFT_API int weft_cond_wait_timeout(struct weft_cond *c, struct weft_mutex *m,
				    uint64_t timeout_ns);
/*
 * Poll form: the first call (holding m, `w` idle) links w and releases m,
 * returning WEFT_PENDING; later calls with the same w return WEFT_PENDING
 * until signalled and m taken again, then 0 (m held). -EINVAL (NULL
 * argument, or w attached to another object - one queued for m by
 * weft_mutex_lock_poll too; w left as it was), -EPERM (m was not locked;
 * w left idle). A task dropped while
 * waiting cancels w (a signal or the mutex granted to it is passed on).
 */
WEFT_API int weft_cond_wait_poll(struct weft_cond *c, struct weft_mutex *m,
				 struct weft_wait *w, struct weft_cx *cx);

/* -------------------------------------------------------------------- once */

/*
 * Run an initialiser exactly once. Callers that arrive while it runs wait
 * for it to finish (fibers suspend, threads block) and then see everything
 * it wrote; later callers return at once. fn may itself suspend (it runs
 * in the fiber of the first caller). A weft_once or weft_once_try on the
 * same object from fn itself (the task or thread running it) returns
 * -EDEADLK at once: it would wait for itself. If the fiber running fn is
 * cancelled, fn's blocking calls return -ECANCELED and whatever fn does
 * then is the once's outcome: it counts as done when fn returns.
 * A call that never returns from fn is as if it was never made (POSIX's
 * pthread_once, for a cancelled init routine): the once is not done, and
 * the next caller, or one already waiting, runs fn itself. That is a
 * fiber discarded while suspended in fn (weft_runtime_shutdown's timeout
 * ran out; after its fiber-local dtors), and a thread that exits in fn
 * (pthread_exit, or a pthread_cancel acted on); not a fiber's
 * weft_block_in_place fn exiting its thread. fn must not be left by a
 * longjmp (or a C++ exception): the call keeps a record for the fiber or
 * thread running fn in that call's frame, and leaving it that way is
 * undefined behaviour, as for a pthread_once routine.
 *
 * The struct belongs to the caller: zero it or use WEFT_ONCE_INIT (static
 * storage is fine); no destroy. It must stay in place while in use.
 */
struct weft_once { uint64_t _opaque[8]; };
#define WEFT_ONCE_INIT { { 0 } }

/* 0 once fn has run (by this call or another). -EINVAL (NULL once or fn),
 * and for a caller that would have to wait: -EDEADLK (a poll task on a
 * worker, or fn's own task or thread: see above), -ENOMEM, -ECANCELED (a
 * cancelled fiber: fn may not have finished). */
WEFT_API int weft_once(struct weft_once *once, void (*fn)(void *arg), void *arg);
/* A fallible initialiser (Tokio's OnceCell::get_or_try_init): fn returns
 * 0 (done, as weft_once's fn) or an error, which this call returns and
 * after which the once is not done - the next caller, or one that was
 * waiting, runs fn again. 0 once fn has succeeded (by this call or
 * another), fn's non-zero result, or weft_once's errors. A weft_once
 * waiting beside a failed try may then run its own fn. */
WEFT_API int weft_once_try(struct weft_once *once, int (*fn)(void *arg), void *arg);
/* True once fn has run to its end (weft_once_try: succeeded). */
WEFT_API bool weft_once_done(const struct weft_once *once);

/* ------------------------------------------------------------------- token */

/*
 * Cancellation token (Tokio's CancellationToken, Go's context.Done): one
 * side calls weft_token_cancel() once something should stop; any number of
 * tasks, fibers and threads check weft_token_is_cancelled() or wait for it
 * (alone, or as an arm of weft_select). Cancelling is permanent and
 * idempotent. A child token (created with a parent) is cancelled when its
 * parent is, and may also be cancelled alone without touching the parent.
 *
 * Ownership: weft_token_create() / weft_token_destroy(). A token must
 * outlive its children: destroy returns -EBUSY (nothing freed) while the
 * token has children or while wait entries are linked to it.
 */
struct weft_token;
struct weft_runtime;

/* parent may be NULL. A child of an already cancelled parent starts
 * cancelled. Errors: -EINVAL (NULL out), -ENOMEM. */
WEFT_API int weft_token_create(struct weft_token *parent, struct weft_token **out);
/* Errors: -EINVAL (NULL t), -EBUSY (children alive, or entries linked). */
WEFT_API int weft_token_destroy(struct weft_token *t);
/*
 * A token that cancels itself at deadline_ns (CLOCK_MONOTONIC, as
 * weft_now_ns; WEFT_FOREVER for none), as Go's context.WithDeadline; for a
 * timeout pass weft_now_ns() + timeout. Its deadline is the earlier of
 * deadline_ns and the parent's (a child of a token with a deadline has it
 * too, weft_token_create included). When deadline_ns is the earlier and
 * still ahead, one small poll task on rt (NULL: the calling task's
 * runtime) waits for it on a timer and then cancels the token and its
 * descendants, waking every waiter; the task ends as soon as the token is
 * cancelled or destroyed. weft_token_is_cancelled, weft_token_err and the
 * waits also read the clock, so they say "cancelled" from the deadline on
 * even when the task runs late or the runtime has shut down (a poll-form
 * waiter is then woken only by the task; polled, it says 0). A deadline
 * already passed gives a token cancelled from the start (no task).
 * Errors: -EINVAL (NULL out; rt NULL outside a task when a task is
 * needed), -ENOMEM, and weft_spawn_poll's (-ESHUTDOWN, -ECHILD): nothing
 * is created then. A token with a task may be destroyed before, during or
 * after its runtime's shutdown; its memory goes with the last of the token
 * and the task.
 */
WEFT_API int weft_token_create_deadline(struct weft_runtime *rt, struct weft_token *parent,
					uint64_t deadline_ns, struct weft_token **out);
/* Cancel t and every descendant; wakes every waiter. 0, or -EINVAL (NULL). */
WEFT_API int weft_token_cancel(struct weft_token *t);
/* True once t (or an ancestor) was cancelled or its deadline has passed;
 * false for NULL. */
WEFT_API bool weft_token_is_cancelled(const struct weft_token *t);
/* Why t is cancelled (Go's ctx.Err()): 0 (not cancelled, or NULL),
 * -ECANCELED (weft_token_cancel on it or an ancestor) or -ETIMEDOUT (its
 * deadline passed). The first cause stays. */
WEFT_API int weft_token_err(const struct weft_token *t);
/* t's deadline (WEFT_FOREVER: none, or NULL). */
WEFT_API uint64_t weft_token_deadline(const struct weft_token *t);
/* Poll form: 0 (cancelled, or its deadline passed - also for an entry
 * linked before it, which is then unlinked) or WEFT_PENDING; -EINVAL (NULL
 * t, w or cx, or w attached to another object). */
WEFT_API int weft_token_wait_poll(struct weft_token *t, struct weft_wait *w,
				  struct weft_cx *cx);
/* Blocking form: 0 once cancelled (or at its deadline), -EINVAL (NULL t),
 * -EDEADLK (poll task on a worker), -ENOMEM; the _timeout form also
 * -ETIMEDOUT (when timeout_ns ends before the token's deadline). */
WEFT_API int weft_token_wait(struct weft_token *t);
WEFT_API int weft_token_wait_timeout(struct weft_token *t, uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
