/*
 * wheel.c - hierarchical timer wheel: 6 levels x 64 slots, 1 ms per slot at
 * level 0, 64^l ms per slot at level l (level 5 spans ~2.2 years).
 *
 * Invariant: a timer lives at the lowest level whose current window holds
 * its deadline: its deadline and `elapsed` agree on every bit above the
 * level's 6 bits. So within a level, occupied slots are at or after the
 * current position, and a slot's start time is
 * (elapsed & ~(level_span - 1)) + slot * slot_span.
 * Advancing takes the earliest occupied slot (over all levels); a level-0
 * slot's timers fire, a higher slot's timers are re-inserted (they cascade
 * to lower levels, now that `elapsed` has moved to the slot's start).
 * Insert, remove and "next deadline" are O(1) (bit tricks on the occupancy
 * words); cancel is an unlink. Not thread-safe: the caller holds the lock.
 */
#include "wheel.h"

static inline uint64_t slot_span(unsigned level) { return 1ull << (6 * level); }

static unsigned level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t diff = (elapsed ^ when) | (WHEEL_SLOTS - 1);
	unsigned bit = 63 - (unsigned)__builtin_clzll(diff);
	unsigned level = bit / 6;
	return level < WHEEL_LEVELS ? level : WHEEL_LEVELS - 1;
}

void weft__wheel_init(struct weft__wheel *w)
{
	*w = (struct weft__wheel){ 0 };
}

bool weft__wheel_insert(struct weft__wheel *w, struct weft__timer *t)
{
	if (t->when_ms <= w->elapsed)
		return false;
	uint64_t when = t->when_ms;
	unsigned level = level_for(w->elapsed, when);
	if (level == WHEEL_LEVELS - 1 && when - w->elapsed >= slot_span(WHEEL_LEVELS))
		when = w->elapsed + slot_span(WHEEL_LEVELS) - 1; /* clamp; re-cascades later */
	unsigned slot = (unsigned)((when >> (6 * level)) & (WHEEL_SLOTS - 1));
	t->level = (uint8_t)level;
	t->slot = (uint8_t)slot;
	t->prev = NULL;
	t->next = w->slot[level][slot];
	if (t->next)
		t->next->prev = t;
	w->slot[level][slot] = t;
	w->occupied[level] |= 1ull << slot;
	return true;
}

void weft__wheel_remove(struct weft__wheel *w, struct weft__timer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		w->slot[t->level][t->slot] = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (!w->slot[t->level][t->slot])
		w->occupied[t->level] &= ~(1ull << t->slot);
	t->prev = t->next = NULL;
}

/* Start time of the earliest occupied slot of `level`. */
static uint64_t level_next(const struct weft__wheel *w, unsigned level, unsigned *slot_out)
{
	uint64_t occ = w->occupied[level];
	unsigned pos = (unsigned)((w->elapsed >> (6 * level)) & (WHEEL_SLOTS - 1));
	uint64_t rotated = pos ? (occ >> pos) | (occ << (64 - pos)) : occ;
	unsigned slot = (pos + (unsigned)__builtin_ctzll(rotated)) & (WHEEL_SLOTS - 1);
	uint64_t level_span = slot_span(level + 1);
	uint64_t start = (w->elapsed & ~(level_span - 1)) + slot * slot_span(level);
	if (start < (w->elapsed & ~(slot_span(level) - 1)))
		start += level_span; /* only after a clamp at the top level */
	*slot_out = slot;
	return start;
}

uint64_t weft__wheel_next(const struct weft__wheel *w)
{
	uint64_t best = UINT64_MAX;
	for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
		if (!w->occupied[l])
			continue;
		unsigned s;
		uint64_t t = level_next(w, l, &s);
		if (t < best)
			best = t;
	}
	return best;
}

void weft__wheel_advance(struct weft__wheel *w, uint64_t now_ms, struct weft__timer **fired)
{
	struct weft__timer **tail = fired;
	while (*tail)
		tail = &(*tail)->next;
	for (;;) {
		uint64_t best = UINT64_MAX;
		unsigned best_l = 0, best_s = 0;
		for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
			if (!w->occupied[l])
				continue;
			unsigned s;
			uint64_t t = level_next(w, l, &s);
			if (t < best || (t == best && l < best_l)) {
				best = t;
				best_l = l;
				best_s = s;
			}
		}
		if (best > now_ms)
			break;
		if (best > w->elapsed)
			w->elapsed = best;
		struct weft__timer *list = w->slot[best_l][best_s];
		w->slot[best_l][best_s] = NULL;
		w->occupied[best_l] &= ~(1ull << best_s);
		/* Slots are pushed at the head: reverse, so timers of one slot
		 * fire in the order they were set. */
		struct weft__timer *rev = NULL;
		while (list) {
			struct weft__timer *n = list->next;
			list->next = rev;
			rev = list;
			list = n;
		}
		list = rev;
		while (list) {
			struct weft__timer *t = list;
			list = t->next;
			t->prev = t->next = NULL;
			if (best_l == 0 || t->when_ms <= w->elapsed || !weft__wheel_insert(w, t)) {
				*tail = t;
				tail = &t->next;
			}
		}
	}
	if (now_ms > w->elapsed)
		w->elapsed = now_ms;
}
