/*
 * select.c - weft_select: wait on several operations, complete exactly one.
 *
 * Each arm is one of the poll forms of weft/sync.h, weft.h, time.h and io.h
 * with the arm's own wait entry. A round polls the arms in order (the fair
 * forms: from a random arm, round the array) and stops
 * at the first that returns a result (not WEFT_PENDING): that arm has
 * completed - taken its item, permit, lock, value or handle - and no later
 * arm was polled in this round, so no other arm took anything. Every other
 * arm is then cancelled with weft_wait_cancel, which unlinks its entry and
 * passes on whatever a notifier had granted to it meanwhile (a reserved
 * channel slot or item, a notify permit, semaphore permits, the mutex), so
 * nothing is lost. Arms without an entry leave at most a waker behind: a
 * join handle keeps it until the handle is consumed, an I/O registration
 * until its next readiness event or its close (a spurious wake at worst);
 * a timer arm is cancelled. A notifier that would finish an arm's whole
 * operation by itself (a channel receiver taking a waiting sender's item,
 * chan.c) must first win the select's claim word, so while one arm wins no
 * other can complete behind the select's back (weft_select_poll).
 *
 * The blocking form runs the round as the poll of weft__wait_deadline (a
 * fiber suspends between rounds, a thread parks). A fiber cancelled while
 * suspended must leave every wait list before its stack goes: the fiber
 * runtime cancels one entry for it (weft__fiber.waiting), so the select
 * hands it a guard entry, linked to a private wait list whose cancel hook
 * cancels all the arms. The same cancel ends a select that returned.
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "waitlist.h"

static int arm_poll(struct weft_select_arm *a, struct weft_cx *cx)
{
	switch (a->op) {
	case WEFT_SEL_CHAN_SEND:
		return weft_chan_send_poll(a->obj, &a->_w, cx, a->ptr);
	case WEFT_SEL_CHAN_RECV:
		return weft_chan_recv_poll(a->obj, &a->_w, cx, a->ptr);
	case WEFT_SEL_ONESHOT_RECV: {
		if (!a->ptr) /* the value is nobody's: to the oneshot's value_drop */
			return weft__oneshot_recv_poll_drop(a->obj, &a->_w, cx);
		void *v = NULL;
		int rc = weft_oneshot_recv_poll(a->obj, &a->_w, cx, &v);
		if (rc == 0)
			*(void **)a->ptr = v;
		return rc;
	}
	case WEFT_SEL_NOTIFY:
		return weft_notify_wait_poll(a->obj, &a->_w, cx);
	case WEFT_SEL_SEM:
		return weft_sem_acquire_n_poll(a->obj, a->arg, &a->_w, cx);
	case WEFT_SEL_MUTEX:
		return weft_mutex_lock_poll(a->obj, &a->_w, cx);
	case WEFT_SEL_TOKEN:
		return weft_token_wait_poll(a->obj, &a->_w, cx);
	case WEFT_SEL_JOIN:
		return weft_join_poll(a->obj, cx, a->ptr);
	case WEFT_SEL_JOINSET:
		return weft_joinset_join_next_poll(a->obj, &a->_w, cx, a->ptr, &a->id);
	case WEFT_SEL_IO:
		/* weft.h: a registration made before a fork says -ECHILD in
		 * the child, as a JOIN arm's task does; the poll form has no
		 * error to return, and the arm waited for an event only the
		 * parent's driver could report: for ever (found by a review) */
		if (weft__io_forked(a->obj))
			return -ECHILD;
		return weft_io_poll_ready(a->obj, cx, (unsigned)a->arg, &a->io_ready) == WEFT_READY
			       ? 0 : WEFT_PENDING;
	case WEFT_SEL_TIMER:
		return weft_timer_poll(a->obj, cx, a->arg) == WEFT_READY ? 0 : WEFT_PENDING;
	case WEFT_SEL_WAITGROUP:
		return weft_waitgroup_wait_poll(a->obj, &a->_w, cx);
	case WEFT_SEL_READER_LINE:
		/* completes only in its own poll (no one hands it a line), so
		 * it needs no claim: like IO, a losing arm's waker stays on the
		 * registration until its next event */
		return weft_reader_until_poll(a->obj, cx, (int)a->arg, a->ptr);
	case WEFT_SEL_WATCH:
		/* watch and broadcast senders only wake their waiters (the
		 * arm completes in its own poll): no claim needed */
		return weft_watch_changed_poll(a->obj, &a->_w, cx);
	case WEFT_SEL_BROADCAST:
		return weft_broadcast_recv_poll(a->obj, &a->_w, cx, a->ptr, &a->id);
	case WEFT_SEL_INTERVAL:
		return weft_interval_poll_tick(a->obj, cx) == WEFT_READY ? 0 : WEFT_PENDING;
	}
	return -EINVAL;
}

static void arm_cancel(struct weft_select_arm *a)
{
	if (a->op == WEFT_SEL_TIMER)
		weft_timer_cancel(a->obj);
	else if (a->op == WEFT_SEL_INTERVAL)
		weft_interval_cancel(a->obj); /* its next tick stays due */
	else
		weft_wait_cancel(&a->_w);
}

/* Every readiness bit weft/io.h names. */
#define IO_EVENT_BITS                                                                  \
	(WEFT_IO_READABLE | WEFT_IO_WRITABLE | WEFT_IO_HUP | WEFT_IO_ERROR | WEFT_IO_CLOSED | \
	 WEFT_IO_SHUTDOWN)

static bool arms_valid(const struct weft_select_arm *arms, size_t n, bool timer_ok)
{
	if (!arms || !n || n > WEFT_SELECT_MAX_ARMS)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!arms[i].obj || arms[i].op < WEFT_SEL_CHAN_SEND || arms[i].op > WEFT_SEL_INTERVAL)
			return false;
		if (arms[i].op == WEFT_SEL_TIMER && !timer_ok)
			return false;
		if (arms[i].op == WEFT_SEL_CHAN_SEND && !arms[i].ptr)
			return false;
		if ((arms[i].op == WEFT_SEL_CHAN_RECV || arms[i].op == WEFT_SEL_BROADCAST) &&
		    !arms[i].ptr)
			return false;
		if (arms[i].op == WEFT_SEL_READER_LINE && (!arms[i].ptr || arms[i].arg > 255))
			return false;
		/* more permits than a semaphore holds: weft_sem_acquire_n
		 * refuses it before any wait; the arm's poll said -EINVAL
		 * only when reached (a ready arm before it won instead) */
		if (arms[i].op == WEFT_SEL_SEM && arms[i].arg > WEFT_SEM_MAX_PERMITS)
			return false;
		/* two arms on one oneshot: the winner's receive frees it (both
		 * ends consumed) with the other arm's entry still on its wait
		 * list, which the cancel then touched (found by a review) */
		if (arms[i].op == WEFT_SEL_ONESHOT_RECV)
			for (size_t k = 0; k < i; k++)
				if (arms[k].op == WEFT_SEL_ONESHOT_RECV && arms[k].obj == arms[i].obj)
					return false;
		/* an interval never initialised: its poll aborts (it has no
		 * error to return), weft_interval_tick says -EINVAL */
		if (arms[i].op == WEFT_SEL_INTERVAL &&
		    !((const struct weft_interval *)arms[i].obj)->period_ns)
			return false;
		/* an IO arm asks for a direction: without READABLE or WRITABLE
		 * (0, HUP alone) weft_io_poll_ready registers no waker and
		 * reports nothing, so the select waited out its deadline with
		 * the fd ready (weft_io_wait refuses that too); bits no
		 * WEFT_IO_* names (or past the unsigned the interest is cut
		 * to) are refused as well */
		if (arms[i].op == WEFT_SEL_IO &&
		    (!(arms[i].arg & (WEFT_IO_READABLE | WEFT_IO_WRITABLE)) ||
		     (arms[i].arg & ~(uint64_t)IO_EVENT_BITS)))
			return false;
	}
	return true;
}

/*
 * Deregister every arm. First take the claim word, so that no notifier can
 * complete an arm behind our back any more; if one already had (a channel
 * receiver took a send arm's item), that arm's operation is done and
 * cannot be undone: its index is returned (its rc set to 0), else -1.
 */
static long select_cancel(struct weft_select_arm *arms, size_t n)
{
	if (!arms || !n)
		return -1;
	uintptr_t *claim = &arms[0]._claim;
	uintptr_t c = 0;
	long won = -1;
	if (!__atomic_compare_exchange_n(claim, &c, WEFT__SEL_POLLING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		for (size_t i = 0; i < n; i++)
			if ((uintptr_t)&arms[i]._w == c)
				won = (long)i;
	for (size_t i = 0; i < n; i++) {
		if ((long)i == won) {
			if (!weft__wait_cancel(&arms[i]._w))
				weft__die("select: claimed arm %zu not complete", i);
			arms[i].rc = 0;
		} else {
			arm_cancel(&arms[i]);
		}
	}
	__atomic_store_n(claim, 0, __ATOMIC_RELEASE);
	return won;
}

void weft_select_cancel(struct weft_select_arm *arms, size_t n)
{
	select_cancel(arms, n);
}

/* The winner is arm i: cancel the others, free the claim for reuse. */
static void finish(struct weft_select_arm *arms, size_t n, size_t i, uintptr_t *claim)
{
	for (size_t k = 0; k < n; k++)
		if (k != i)
			arm_cancel(&arms[k]);
	/* Every other entry is unlinked: no notifier can claim any more. */
	__atomic_store_n(claim, 0, __ATOMIC_RELEASE);
}

/*
 * The claim word (arms[0]._claim, waitlist.h): a notifier that would finish
 * an arm's whole operation for it (a channel receiver taking a waiting
 * sender's item) must win the claim first, so two arms never both complete.
 * The select holds the claim (POLLING) while it polls its arms, and a
 * notifier that finds it held wakes the arm instead. If a notifier won it
 * between two polls, that arm is the winner.
 */
/* Where a round starts: 0 (the array's order), or for the fair forms a
 * random arm (Go's select, Tokio's select! without `biased;`), from a
 * per-thread generator: a round is polled on one thread. */
static size_t round_start(size_t n, bool fair)
{
	static __thread struct weft__rng rng;
	static __thread bool seeded;
	if (!fair || n < 2)
		return 0;
	if (!seeded) {
		weft__rng_seed(&rng, weft__now_ns() ^ (uint64_t)(uintptr_t)&rng);
		seeded = true;
	}
	return weft__rng_below(&rng, (uint32_t)n);
}

static int select_poll(struct weft_select_arm *arms, size_t n, struct weft_cx *cx, size_t *index,
		       bool fair)
{
	if (!cx || !index || !arms_valid(arms, n, true))
		return -EINVAL;
	uintptr_t *claim = &arms[0]._claim;
	/* Read by notifiers under their locks, while this select may be
	 * re-polled on another thread: atomic, and stored once per arm. */
	for (size_t i = 0; i < n; i++) {
		if (__atomic_load_n(&arms[i]._w._sel, __ATOMIC_RELAXED) != claim)
			__atomic_store_n(&arms[i]._w._sel, claim, __ATOMIC_RELAXED);
		/* not completed (weft.h): the winner's is set below. A task's
		 * drop that cancels a pending select looks at its send arm's
		 * rc to know whether the item went; the WEFT_SEL_* arms
		 * started at 0, which read as sent, and an arm array reused
		 * from an earlier select kept its old result (found by a
		 * review). */
		arms[i].rc = -EINPROGRESS;
	}
	uintptr_t c = 0;
	if (!__atomic_compare_exchange_n(claim, &c, WEFT__SEL_POLLING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		for (size_t i = 0; i < n; i++) {
			if ((uintptr_t)&arms[i]._w != c)
				continue;
			/* completed for us: its poll collects the result. The
			 * notifier may still be finishing it under its lock (a
			 * receiver copying the item), and a poll whose budget
			 * is spent says PENDING before it looks: then wait for
			 * it under that lock, as select_cancel does (this died
			 * with "claimed arm not complete": found by a review) */
			int rc = arm_poll(&arms[i], cx);
			if (rc == WEFT_PENDING) {
				if (!weft__wait_cancel(&arms[i]._w))
					weft__die("select: claimed arm %zu not complete", i);
				rc = 0;
			}
			arms[i].rc = rc;
			finish(arms, n, i, claim);
			*index = i;
			return 0;
		}
		weft__die("select: claim word %#lx names no arm", (unsigned long)c);
	}
	size_t start = round_start(n, fair);
	for (size_t k = 0; k < n; k++) {
		size_t i = start + k < n ? start + k : start + k - n;
		int rc = arm_poll(&arms[i], cx);
		if (rc == WEFT_PENDING) {
			/* Budget spent: this arm may have said PENDING without
			 * looking, so no later arm may win this round (a timer
			 * arm, which takes no budget, won over a ready token
			 * before it; found by a review). The task runs again
			 * after the others. */
			if (weft_budget_remaining(cx) == 0) {
				weft_waker_wake_by_ref(weft_cx_waker(cx));
				break;
			}
			continue;
		}
		arms[i].rc = rc;
		finish(arms, n, i, claim);
		*index = i;
		return 0;
	}
	/* Nothing ready: give the claim back. A notifier that found it held
	 * woke the arm, so this select is polled again. */
	__atomic_store_n(claim, 0, __ATOMIC_RELEASE);
	return WEFT_PENDING;
}

int weft_select_poll(struct weft_select_arm *arms, size_t n, struct weft_cx *cx, size_t *index)
{
	return select_poll(arms, n, cx, index, false);
}

int weft_select_fair_poll(struct weft_select_arm *arms, size_t n, struct weft_cx *cx,
			  size_t *index)
{
	return select_poll(arms, n, cx, index, true);
}

/* ---------------------------------------------------------- blocking form */

struct select_wait {
	struct weft_select_arm *arms;
	size_t n;
	size_t index;
	bool fair;
	long won;                    /* an arm completed by a notifier as we gave up */
	struct weft__slock lock;     /* the guard's private wait list */
	struct weft__waitq q;
	struct weft_wait guard;
};

static bool guard_on_cancel(struct weft__waitq *q, uint32_t grant, uint64_t arg,
			    struct weft__wakes *wk)
{
	struct select_wait *s = weft__container_of(q, struct select_wait, q);
	(void)grant, (void)arg, (void)wk;
	/* Under the guard's private lock only: the arms' cancels take their
	 * own objects' locks. */
	long won = select_cancel(s->arms, s->n);
	if (won >= 0)
		s->won = won;
	return false;
}

static enum weft_poll select_wait_fn(void *arg, struct weft_cx *cx)
{
	struct select_wait *s = arg;
	return select_poll(s->arms, s->n, cx, &s->index, s->fair) == WEFT_PENDING ? WEFT_PENDING
										     : WEFT_READY;
}

/* An arm on a registration (READY, LINE): the select waits as an I/O wait
 * (wait.c) - in a fiber's weft_block_in_place fn, the runtime's close
 * does not cancel it at its start; the arm reports the shutdown (weft/io.h,
 * SHUTDOWN for a thread's wait). */
static bool has_io_arm(const struct weft_select_arm *arms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (arms[i].op == WEFT_SEL_IO || arms[i].op == WEFT_SEL_READER_LINE)
			return true;
	return false;
}

static int select_until(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns, bool fair)
{
	struct select_wait s = { .arms = arms, .n = n, .fair = fair, .won = -1,
				 .guard = WEFT_WAIT_INIT };
	weft__waitq_init(&s.q, &s.lock, guard_on_cancel);
	weft_waker none = { NULL, NULL };
	weft__slock_lock(&s.lock);
	weft__waitq_link(&s.q, &s.guard, &none, 0);
	weft__slock_unlock(&s.lock);
	int rc = has_io_arm(arms, n)
			 ? weft__io_wait_deadline(select_wait_fn, &s, &s.guard, deadline_ns)
			 : weft__wait_deadline(select_wait_fn, &s, &s.guard, deadline_ns);
	weft_wait_cancel(&s.guard); /* every arm but the winner's is idle already */
	/* Timed out or cancelled, but a send arm had been completed by a
	 * receiver meanwhile: its item is gone, so that arm is the result. */
	if (rc && s.won >= 0)
		return (int)s.won;
	return rc ? rc : (int)s.index;
}

/*
 * Every arm waits for the shutdown this thread runs: a JOIN arm on a task
 * of that runtime not finished yet, a JOIN_NEXT arm on a set whose
 * members are all such tasks (weft_join's and join_next's -EDEADLK). A
 * drop the shutdown runs here (a parent ending the tasks it owns) waited
 * in such a select for itself, for good (found by a review). Any other
 * arm - a channel another thread may send on, a timer - can end the wait
 * without this thread: then it waits.
 */
static bool waits_on_own_shutdown(struct weft_select_arm *arms, size_t n)
{
	if (!weft__in_a_shutdown())
		return false;
	for (size_t i = 0; i < n; i++) {
		if (arms[i].op == WEFT_SEL_JOIN) {
			if (!weft__join_waits_on_own_shutdown(arms[i].obj))
				return false;
		} else if (arms[i].op == WEFT_SEL_JOINSET) {
			if (!weft__joinset_waits_on_own_shutdown(arms[i].obj))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static int select_deadline(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns, bool fair)
{
	if (!arms_valid(arms, n, false))
		return -EINVAL;
	/* Not completed (weft.h), as select_poll marks them: a call that
	 * ends before its first poll (a cancelled fiber's -ECANCELED, the
	 * -EDEADLK below) left an array reused from an earlier select with
	 * the old winner's rc, which read as completed (found by a review). */
	for (size_t i = 0; i < n; i++)
		arms[i].rc = -EINPROGRESS;
	if (waits_on_own_shutdown(arms, n))
		return -EDEADLK;
	/* A token arm's deadline bounds the wait too, as weft_token_wait's
	 * does: after a shutdown dropped the token's deadline task nothing
	 * would wake a thread's select at it. At that deadline the token arm
	 * polls ready, so one more round returns at once. An interval arm's
	 * next tick likewise. */
	uint64_t cap = deadline_ns;
	for (size_t i = 0; i < n; i++) {
		uint64_t d;
		if (arms[i].op == WEFT_SEL_TOKEN)
			d = weft_token_deadline(arms[i].obj);
		else if (arms[i].op == WEFT_SEL_INTERVAL)
			/* a plain thread's cx has no timers (the clock only),
			 * and block_on's wheel fires after the tick: its wait
			 * ends at the tick, where the arm reads the clock */
			d = ((struct weft_interval *)arms[i].obj)->next_ns;
		else
			continue;
		if (d < cap)
			cap = d;
	}
	int rc = select_until(arms, n, cap, fair);
	if (rc == -ETIMEDOUT && cap < deadline_ns)
		rc = select_until(arms, n, deadline_ns, fair);
	return rc;
}

static uint64_t deadline_of(uint64_t timeout_ns)
{
	uint64_t now = weft_now_ns();
	return timeout_ns >= WEFT_FOREVER - now ? WEFT_FOREVER : now + timeout_ns;
}

int weft_select(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns)
{
	return select_deadline(arms, n, deadline_ns, false);
}

int weft_select_timeout(struct weft_select_arm *arms, size_t n, uint64_t timeout_ns)
{
	return select_deadline(arms, n, deadline_of(timeout_ns), false);
}

int weft_select_fair(struct weft_select_arm *arms, size_t n, uint64_t deadline_ns)
{
	return select_deadline(arms, n, deadline_ns, true);
}

int weft_select_fair_timeout(struct weft_select_arm *arms, size_t n, uint64_t timeout_ns)
{
	return select_deadline(arms, n, deadline_of(timeout_ns), true);
}
