/*
 * fuzz_ops.c - operation sequences on a 1- or 2-worker runtime.
 *
 * Input: byte 0 picks the worker count (1 or 2) and the LIFO slot; then
 * each byte (plus an argument byte) is one operation from the fuzzer
 * thread: spawn a poll task (ready at once / waits for N foreign wakes /
 * yields N times / receives from a channel until it is closed), wake a
 * task's stored waker from this (foreign) thread, abort, join (blocking
 * when the task is sure to finish, else join with a short timeout), detach,
 * weft_yield, channel try_send / try_recv / close, shutdown.
 *
 * Checked after each step: no drop ran twice; a refused spawn ran its drop
 * before returning; spawns after shutdown fail with -ESHUTDOWN. At the end
 * (shutdown, then every handle joined, wakers dropped): each task's drop
 * ran exactly once; a join returned 0 only for a task whose poll finished
 * (with the task's result) and -ECANCELED only for one that was aborted or
 * cut off by shutdown; weft_runtime_destroy returns 0; the channel is freed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "fuzz_check.h"

#define MAXT 24

enum mode { M_READY, M_WAKES, M_YIELD, M_CHAN, M_COUNT };

struct tstate {
	enum mode mode;
	unsigned need;              /* wakes / yields before READY */
	atomic_uint wakes;          /* foreign wakes delivered */
	unsigned polls;             /* only touched by the task's poller */
	atomic_int drops;
	atomic_bool finished;       /* the poll returned READY */
	pthread_mutex_t lock;       /* guards waker */
	weft_waker waker;           /* the latest waker clone (M_WAKES) */
	struct weft_wait w;         /* M_CHAN */
	struct weft_chan *ch;
	uint32_t received;
};

struct slot {
	struct tstate *s;
	struct weft_task *h;        /* join handle, NULL once consumed */
	bool aborted;
	bool spawned;
};

static enum weft_poll tpoll(void *arg, struct weft_cx *cx)
{
	struct tstate *s = arg;
	s->polls++;
	switch (s->mode) {
	case M_READY:
		break;
	case M_WAKES:
		if (atomic_load(&s->wakes) < s->need) {
			pthread_mutex_lock(&s->lock);
			weft_waker_drop(&s->waker);
			s->waker = weft_waker_clone(weft_cx_waker(cx));
			pthread_mutex_unlock(&s->lock);
			/* re-check after publishing the waker: a wake may have
			 * taken the previous one in between */
			if (atomic_load(&s->wakes) < s->need)
				return WEFT_PENDING;
		}
		break;
	case M_YIELD:
		if (s->polls <= s->need) {
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		break;
	case M_CHAN: {
		uint32_t x;
		int rc;
		while ((rc = weft_chan_recv_poll(s->ch, &s->w, cx, &x)) == 0)
			s->received++;
		if (rc == WEFT_PENDING)
			return WEFT_PENDING;
		CHECK(rc == -EPIPE);
		break;
	}
	default:
		abort();
	}
	atomic_store(&s->finished, true);
	weft_cx_set_result(cx, s);
	return WEFT_READY;
}

static void tdrop(void *arg)
{
	struct tstate *s = arg;
	if (s->mode == M_CHAN)
		weft_wait_cancel(&s->w);
	int d = atomic_fetch_add(&s->drops, 1);
	CHECK(d == 0);
}

static struct tstate *tstate_new(enum mode m, unsigned need, struct weft_chan *ch)
{
	struct tstate *s = calloc(1, sizeof(*s));
	CHECK(s);
	s->mode = m;
	s->need = need;
	s->ch = ch;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void tstate_free(struct tstate *s)
{
	pthread_mutex_lock(&s->lock);
	weft_waker_drop(&s->waker);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The task is certain to finish on its own (no outside wake needed). */
static bool will_finish(const struct slot *sl, bool chan_closed, bool down)
{
	return down || sl->aborted || sl->s->mode == M_READY || sl->s->mode == M_YIELD ||
	       (sl->s->mode == M_WAKES && atomic_load(&sl->s->wakes) >= sl->s->need) ||
	       (sl->s->mode == M_CHAN && chan_closed);
}

static void check_join(struct slot *sl, int rc, void *res, bool down)
{
	if (rc == 0) {
		CHECK(res == sl->s && atomic_load(&sl->s->finished));
	} else {
		CHECK(rc == -ECANCELED);
		CHECK(sl->aborted || down);
		CHECK(!atomic_load(&sl->s->finished));
	}
	/* joined: the drop ran before the joiner was released */
	CHECK(atomic_load(&sl->s->drops) == 1);
	sl->h = NULL;
}

static void wake_slot(struct slot *sl)
{
	struct tstate *s = sl->s;
	atomic_fetch_add(&s->wakes, 1);
	pthread_mutex_lock(&s->lock);
	weft_waker w = s->waker;
	s->waker = (weft_waker){ NULL, NULL };
	pthread_mutex_unlock(&s->lock);
	weft_waker_wake(&w); /* no-op on an empty waker */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	WEFT_OPTS(weft_runtime_opts, o, .workers = 1 + (data[0] & 1),
		  .disable_lifo_slot = (data[0] >> 1) & 1, .rng_seed = 1);
	struct weft_runtime *rt;
	CHECK(weft_runtime_create(&o, &rt) == 0);
	struct weft_chan *ch;
	CHECK(weft_chan_create(sizeof(uint32_t), 1 + (data[0] >> 2 & 3), &ch) == 0);
	bool chan_closed = false, down = false;
	uint32_t sent = 0, got = 0;
	struct slot sl[MAXT];
	memset(sl, 0, sizeof(sl));
	unsigned n = 0;

	for (size_t i = 1; i < size; i += 2) {
		uint8_t op = data[i], arg = i + 1 < size ? data[i + 1] : 0;
		struct slot *t = n ? &sl[arg % n] : NULL;
		switch (op % 12) {
		case 0: case 1: { /* spawn */
			if (n == MAXT)
				break;
			enum mode m = (enum mode)(arg % M_COUNT);
			struct slot *x = &sl[n++];
			x->s = tstate_new(m, 1 + (arg >> 4) % 3, ch);
			bool keep = !(arg & 8);
			int rc = weft_spawn_poll(rt, tpoll, x->s, tdrop, keep ? &x->h : NULL);
			if (down) {
				CHECK(rc == -ESHUTDOWN && atomic_load(&x->s->drops) == 1);
				x->h = NULL;
			} else {
				CHECK(rc == 0);
				x->spawned = true;
			}
			break;
		}
		case 2: case 3: /* foreign wake */
			if (t)
				wake_slot(t);
			break;
		case 4: /* abort */
			if (t && t->h) {
				CHECK(weft_abort(t->h) == 0);
				t->aborted = true;
			}
			break;
		case 5: /* join */
			if (t && t->h) {
				void *res = NULL;
				if (will_finish(t, chan_closed, down)) {
					int rc = weft_join(t->h, &res);
					check_join(t, rc, res, down);
				} else {
					int rc = weft_join_timeout(t->h, &res, 1000000);
					if (rc != -ETIMEDOUT)
						check_join(t, rc, res, down);
				}
			}
			break;
		case 6: /* detach */
			if (t && t->h) {
				CHECK(weft_detach(t->h) == 0);
				t->h = NULL;
			}
			break;
		case 7: /* yield from outside the runtime */
			CHECK(weft_yield() == 0);
			break;
		case 8: { /* try_send */
			uint32_t x = sent;
			int rc = weft_chan_try_send(ch, &x);
			CHECK(rc == 0 || rc == -EAGAIN || (rc == -EPIPE && chan_closed));
			CHECK(rc != -EPIPE || chan_closed);
			if (rc == 0)
				sent++;
			break;
		}
		case 9: { /* try_recv */
			uint32_t x;
			int rc = weft_chan_try_recv(ch, &x);
			CHECK(rc == 0 || rc == -EAGAIN || (rc == -EPIPE && chan_closed));
			if (rc == 0)
				got++;
			break;
		}
		case 10: /* close */
			CHECK(weft_chan_close(ch) == 0);
			chan_closed = true;
			break;
		case 11: /* shutdown (rarely: only when arg says so) */
			if ((arg & 7) == 0) {
				CHECK(weft_runtime_shutdown(rt, WEFT_FOREVER) == 0);
				down = true;
			}
			break;
		}
		for (unsigned k = 0; k < n; k++)
			CHECK(atomic_load(&sl[k].s->drops) <= 1);
	}

	CHECK(weft_runtime_shutdown(rt, WEFT_FOREVER) == 0);
	down = true;
	for (unsigned k = 0; k < n; k++) {
		if (sl[k].h) {
			void *res = NULL;
			int rc = weft_join(sl[k].h, &res);
			check_join(&sl[k], rc, res, true);
		}
		/* wakers kept by pending tasks hold task memory: drop them */
		pthread_mutex_lock(&sl[k].s->lock);
		weft_waker_drop(&sl[k].s->waker);
		pthread_mutex_unlock(&sl[k].s->lock);
	}
	for (unsigned k = 0; k < n; k++)
		CHECK(atomic_load(&sl[k].s->drops) == 1);
	CHECK(weft_runtime_destroy(rt) == 0);
	/* items: each sent one was received at most once */
	uint32_t rcvd = got;
	for (unsigned k = 0; k < n; k++)
		rcvd += sl[k].s->received;
	CHECK(rcvd <= sent);
	CHECK(weft_chan_destroy(ch) == 0);
	for (unsigned k = 0; k < n; k++)
		tstate_free(sl[k].s);
	return 0;
}
