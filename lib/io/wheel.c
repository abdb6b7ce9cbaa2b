/*
 * wheel.c - timer wheel, in ticks (WEFT_TICK_NS, 250 µs; wheel.h): level 0
 * is WHEEL_NEAR (4,096) slots of one tick over the next 4,096 ticks (1.024
 * s), relative to `elapsed` (slot = deadline mod 4,096); above it 5
 * hierarchical levels of 64 slots, 64^l ticks per slot at level l (level 1
 * is never used: its window is inside level 0's; level 5 spans ~199 days,
 * and a later deadline is clamped into it and cascades again).
 *
 * Why level 0 is relative and wide: a timer that changes level is touched
 * again when its slot comes due (re-inserted lower down: a cascade), and a
 * timer lives where its owner lives - a fiber's sleep on the fiber's
 * stack, a cold page by the time it cascades. With a 64 ms level 0 aligned
 * to 64 ms, most 50 ms sleeps sat one level up, and 30,000 fibers going to
 * sleep together cascaded together: one worker re-inserting 30,000 cold
 * timers under the shard's lock (~15 ms here) while everything due waited
 * (fiber_exit_storm). Now a timer due within ~1 s never cascades.
 *
 * Invariants: a level-0 timer's deadline is in [elapsed, elapsed +
 * WHEEL_NEAR). A timer above lives at the lowest level l >= 1 whose current
 * window holds its deadline: deadline and `elapsed` agree on every bit
 * above level l's 6 bits; it is there only if its deadline is WHEEL_NEAR
 * ticks or more away at insert. So within a level, occupied slots are at or after
 * the current position, and a slot's start time is (elapsed &
 * ~(level_span - 1)) + slot * slot_span.
 * Advancing takes the earliest occupied slot (over all levels); a level-0
 * slot's timers fire, a higher slot's timers are re-inserted (they cascade
 * to lower levels, now that `elapsed` has moved to the slot's start).
 * Insert, remove and "next deadline" are O(1) (bit tricks on the occupancy
 * words; level 0's 64 words have a summary word, a bit per non-zero word). Cancel is an unlink. Not thread-safe: the
 * caller holds the lock.
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

static struct weft__timer **slot_head(struct weft__wheel *w, unsigned level, unsigned slot)
{
	return level ? &w->slot[level][slot] : &w->near[slot];
}

static void set_occupied(struct weft__wheel *w, unsigned level, unsigned slot)
{
	if (level)
		w->occupied[level] |= 1ull << slot;
	else {
		w->near_occ[slot / 64] |= 1ull << (slot % 64);
		w->near_sum |= 1ull << (slot / 64);
	}
}

static void clear_occupied(struct weft__wheel *w, unsigned level, unsigned slot)
{
	if (level)
		w->occupied[level] &= ~(1ull << slot);
	else if (!(w->near_occ[slot / 64] &= ~(1ull << (slot % 64))))
		w->near_sum &= ~(1ull << (slot / 64));
}

/* Append t to a slot. A slot is a FIFO list: `next` runs from the head to
 * the tail (NULL-terminated), and the head's `prev` is the tail (every
 * other `prev` is the previous timer), so appending and taking a prefix
 * from the head touch no timer but the ends. */
static void slot_append(struct weft__wheel *w, struct weft__timer *t, unsigned level,
			unsigned slot)
{
	struct weft__timer **head = slot_head(w, level, slot);
	t->level = (uint8_t)level;
	t->slot = (uint16_t)slot;
	t->next = NULL;
	if (*head) {
		struct weft__timer *tail = (*head)->prev;
		tail->next = t;
		t->prev = tail;
		(*head)->prev = t;
	} else {
		t->prev = t;
		*head = t;
		set_occupied(w, level, slot);
	}
}

bool weft__wheel_insert(struct weft__wheel *w, struct weft__timer *t)
{
	if (t->when_tick <= w->elapsed)
		return false;
	uint64_t when = t->when_tick;
	if (when - w->elapsed < WHEEL_NEAR) {
		slot_append(w, t, 0, (unsigned)(when & (WHEEL_NEAR - 1)));
		return true;
	}
	unsigned level = level_for(w->elapsed, when); /* >= 2: they differ above bit 11 */
	if (level == WHEEL_LEVELS - 1) {
		/* The top level sees one window of slot_span(WHEEL_LEVELS)
		 * ticks from the current slot: a deadline past the slot just
		 * before it, one window on (the current slot's index again,
		 * or beyond), goes there and re-cascades when it comes due.
		 * Clamped to elapsed + window - 1, as before, it landed in
		 * the current slot's index, which level_next reads as due
		 * now: weft__wheel_fire moved it down and insert put it back,
		 * forever, under the shard's lock (weft_sleep_ns(UINT64_MAX)
		 * on a core whose shard had fired a timer). */
		uint64_t top = slot_span(WHEEL_LEVELS - 1);
		uint64_t lim = (w->elapsed & ~(top - 1)) + slot_span(WHEEL_LEVELS) - top;
		if (when > lim)
			when = lim;
	}
	slot_append(w, t, level, (unsigned)((when >> (6 * level)) & (WHEEL_SLOTS - 1)));
	return true;
}

void weft__wheel_remove(struct weft__wheel *w, struct weft__timer *t)
{
	struct weft__timer **head = slot_head(w, t->level, t->slot);
	if (t == *head) {
		*head = t->next;
		if (t->next)
			t->next->prev = t->prev; /* the new head keeps the tail */
		else
			clear_occupied(w, t->level, t->slot);
	} else {
		t->prev->next = t->next;
		if (t->next)
			t->next->prev = t->prev;
		else
			(*head)->prev = t->prev; /* t was the tail */
	}
	t->prev = t->next = NULL;
}

/* Deadline of the earliest level-0 slot, from the current position round
 * to it again: the rest of the current word, then the other words in
 * order (found through the summary word), then the current word's bits
 * before the position (wrapped). */
_Static_assert(WHEEL_NEAR == 64 * 64, "one summary word covers level 0");
static bool near_next(const struct weft__wheel *w, uint64_t *start, unsigned *slot_out)
{
	if (!w->near_sum)
		return false;
	unsigned pos = (unsigned)(w->elapsed & (WHEEL_NEAR - 1));
	unsigned pw = pos / 64;
	uint64_t bits = w->near_occ[pw] & (~0ull << (pos % 64));
	unsigned i = pw;
	if (!bits) {
		uint64_t sum = w->near_sum & ~(1ull << pw);
		if (sum) {
			unsigned r = (pw + 1) % 64; /* bit j: word (pw + 1 + j) % 64 */
			uint64_t rot = r ? (sum >> r) | (sum << (64 - r)) : sum;
			i = (r + (unsigned)__builtin_ctzll(rot)) % 64;
			bits = w->near_occ[i];
		} else {
			bits = w->near_occ[pw] & ((1ull << (pos % 64)) - 1);
			if (!bits)
				return false;
		}
	}
	unsigned s = i * 64 + (unsigned)__builtin_ctzll(bits);
	*slot_out = s;
	*start = w->elapsed + ((s - pos) & (WHEEL_NEAR - 1));
	return true;
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
	unsigned s;
	near_next(w, &best, &s);
	for (unsigned l = 1; l < WHEEL_LEVELS; l++) {
		if (!w->occupied[l])
			continue;
		uint64_t t = level_next(w, l, &s);
		if (t < best)
			best = t;
	}
	return best;
}

size_t weft__wheel_fire(struct weft__wheel *w, uint64_t now_tick, size_t max,
			weft__wheel_fire_fn fire, void *arg)
{
	size_t n = 0;
	for (;;) {
		if (n >= max)
			return n; /* `elapsed` stays at the last slot taken: the rest is still due */
		uint64_t best = UINT64_MAX;
		unsigned best_l = 0, best_s = 0;
		near_next(w, &best, &best_s);
		for (unsigned l = 1; l < WHEEL_LEVELS; l++) {
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
		if (best > now_tick)
			break;
		if (best > w->elapsed)
			w->elapsed = best;
		struct weft__timer **head = slot_head(w, best_l, best_s);
		struct weft__timer *list = *head;
		if (best_l == 0) {
			/* Fire a prefix of the slot, in the order the timers were
			 * set; what is left stays in place, still due. The timers
			 * live on their owners' stacks, each line cold: the next
			 * one is fetched while this one's waker runs, rather than
			 * all of them one after another before the first fires. */
			struct weft__timer *last = list->prev;
			while (list && n < max) {
				struct weft__timer *t = list;
				list = t->next;
				if (list)
					__builtin_prefetch(list, 1, 3);
				t->next = NULL;
				n++;
				fire(t, arg); /* t is its owner's again */
			}
			if (list) {
				list->prev = last; /* the new head keeps the tail */
				*head = list;
				return n;
			}
			*head = NULL;
			clear_occupied(w, 0, best_s);
			continue;
		}
		/* A higher slot: every timer goes down a level (or into level 0's
		 * current slot when due at the slot's start, `elapsed`: fired by
		 * the next round, within `max`). */
		*head = NULL;
		clear_occupied(w, best_l, best_s);
		while (list) {
			struct weft__timer *t = list;
			list = t->next;
			if (list)
				__builtin_prefetch(list, 1, 3);
			if (!weft__wheel_insert(w, t))
				slot_append(w, t, 0, (unsigned)(w->elapsed & (WHEEL_NEAR - 1)));
		}
	}
	if (now_tick > w->elapsed)
		w->elapsed = now_tick;
	return n;
}

static void append_fired(struct weft__timer *t, void *arg)
{
	struct weft__timer ***tail = arg;
	**tail = t;
	*tail = &t->next;
}

size_t weft__wheel_advance(struct weft__wheel *w, uint64_t now_tick, struct weft__timer **fired,
			   size_t max)
{
	struct weft__timer **tail = fired;
	while (*tail)
		tail = &(*tail)->next;
	return weft__wheel_fire(w, now_tick, max, append_fired, &tail);
}
