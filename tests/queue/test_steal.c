/*
 * test_steal.c - the steal policy (lib/sched/steal.h), rule by rule, with
 * the clock given: long tasks and a backlog are taken at once; short tasks
 * that their worker keeps serving are left there; short tasks whose ring
 * has not been served for the wait are taken; a thief that keeps no look
 * at a victim takes as before the policy. The policy's effect on a real
 * runtime is tested in test_api (sched/short_channel_tasks_stay_on_their_
 * worker, sched/short_tasks_behind_a_long_poll_are_taken).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include "steal.h"

static uint64_t clock_reads;
static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	clock_reads++;
	return fake_now;
}

static enum weft__steal_verdict verdict(uint64_t len, uint32_t served, uint64_t mean,
					struct weft__steal_look *lk)
{
	uint64_t now = 0;
	return weft__steal_verdict(len, served, mean, lk, &now, fake_clock);
}

Test(steal, empty_ring_is_empty)
{
	struct weft__steal_look lk = { 0 };
	cr_assert_eq(verdict(0, 7, 100000, &lk), WEFT__STEAL_EMPTY);
	cr_assert_eq(lk.since_ns, 0, "an empty ring starts no wait");
}

Test(steal, long_tasks_are_taken_at_once)
{
	struct weft__steal_look lk = { 0 };
	clock_reads = 0;
	cr_assert_eq(verdict(1, 7, WEFT__STEAL_TASK_NS, &lk), WEFT__STEAL_NOW);
	cr_assert_eq(clock_reads, 0, "no clock read on the fast decisions");
}

Test(steal, a_backlog_is_taken_at_once)
{
	struct weft__steal_look lk = { 0 };
	uint64_t mean = 1600; /* ns: short tasks; 80 of them make the backlog */
	uint64_t enough = WEFT__STEAL_BACKLOG_NS / mean;
	cr_assert_eq(verdict(enough, 7, mean, &lk), WEFT__STEAL_NOW);
	cr_assert_eq(verdict(enough - 1, 7, mean, &lk), WEFT__STEAL_WAIT);
	/* half a ring of tasks however short */
	cr_assert_eq(verdict(WEFT_RING_CAP / 2, 7, 1, &lk), WEFT__STEAL_NOW);
	cr_assert_eq(verdict(WEFT_RING_CAP / 2 - 1, 7, 1, &lk), WEFT__STEAL_WAIT);
}

Test(steal, short_tasks_being_served_stay)
{
	struct weft__steal_look lk = { 0 };
	uint32_t served = 100;
	/* the victim takes a task from its ring between every two looks */
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(verdict(3, served, 50, &lk), WEFT__STEAL_WAIT, "look %d", i);
		served++;
		fake_now += WEFT__STEAL_WAIT_NS; /* however long it has been */
	}
}

Test(steal, short_tasks_not_served_for_the_wait_are_taken)
{
	struct weft__steal_look lk = { 0 };
	uint64_t t0 = fake_now;
	cr_assert_eq(verdict(3, 42, 50, &lk), WEFT__STEAL_WAIT);
	cr_assert_eq(lk.served, 42);
	cr_assert_eq(lk.since_ns, t0);
	fake_now = t0 + WEFT__STEAL_WAIT_NS - 1;
	cr_assert_eq(verdict(3, 42, 50, &lk), WEFT__STEAL_WAIT, "taken before the wait");
	/* more tasks pushed, none served: still the same wait */
	fake_now = t0 + WEFT__STEAL_WAIT_NS;
	cr_assert_eq(verdict(5, 42, 50, &lk), WEFT__STEAL_NOW);
}

Test(steal, a_served_task_restarts_the_wait)
{
	struct weft__steal_look lk = { 0 };
	uint64_t t0 = fake_now;
	cr_assert_eq(verdict(3, 42, 50, &lk), WEFT__STEAL_WAIT);
	fake_now = t0 + WEFT__STEAL_WAIT_NS / 2;
	cr_assert_eq(verdict(3, 43, 50, &lk), WEFT__STEAL_WAIT);
	cr_assert_eq(lk.since_ns, fake_now, "the wait restarts at the served task");
	fake_now = t0 + WEFT__STEAL_WAIT_NS;
	cr_assert_eq(verdict(3, 43, 50, &lk), WEFT__STEAL_WAIT, "the old start still counted");
	fake_now = t0 + WEFT__STEAL_WAIT_NS / 2 + WEFT__STEAL_WAIT_NS;
	cr_assert_eq(verdict(3, 43, 50, &lk), WEFT__STEAL_NOW);
}

Test(steal, the_clock_read_once_per_round)
{
	struct weft__steal_look a = { 0 }, b = { 0 };
	uint64_t now = 0;
	clock_reads = 0;
	weft__steal_verdict(3, 1, 50, &a, &now, fake_clock);
	weft__steal_verdict(3, 9, 50, &b, &now, fake_clock);
	cr_assert_eq(clock_reads, 1, "two victims looked at in one round: one clock read");
}

Test(steal, no_look_kept_takes)
{
	cr_assert_eq(verdict(1, 7, 50, NULL), WEFT__STEAL_NOW);
}
