/*
 * wheel.h - hierarchical timer wheel (see wheel.c).
 */
#ifndef WEFT_WHEEL_H
#define WEFT_WHEEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/weft.h>

#include "slock.h"

/* The wheels' unit. Deadlines round up to it: at 1 ms, a 1 ms sleep
 * started just after a boundary took ~2 ms. */
#define WEFT_TICK_NS 250000ull
#define WHEEL_LEVELS 6
#define WHEEL_SLOTS 64
#define WHEEL_NEAR 4096 /* level 0: 1-tick slots over the next 4,096 ticks (1.024 s) */

enum { TIMER_IDLE = 0, TIMER_PENDING = 1, TIMER_FIRED = 2 };

struct weft__tshard;

struct weft__timer {
	struct weft__timer *prev, *next;
	uint64_t when_tick;               /* deadline, ticks since the runtime started */
	weft_waker waker;                 /* under the shard's lock */
	/* where it was inserted, set under that shard's lock; atomic: a
	 * cancel from another thread reads it before it holds any lock */
	struct weft__tshard *_Atomic shard;
	_Atomic uint8_t state;            /* TIMER_*; FIRED written under the lock */
	uint8_t level;
	uint16_t slot;
};

struct weft__wheel {
	uint64_t elapsed;                             /* ticks: everything before has fired */
	/* level 0: deadlines in [elapsed, elapsed + WHEEL_NEAR), slot when % WHEEL_NEAR */
	uint64_t near_occ[WHEEL_NEAR / 64];           /* bit per non-empty slot */
	uint64_t near_sum;                            /* bit per non-zero near_occ word */
	struct weft__timer *near[WHEEL_NEAR];
	/* levels 1..: [0] unused */
	uint64_t occupied[WHEEL_LEVELS];              /* bit per non-empty slot */
	struct weft__timer *slot[WHEEL_LEVELS][WHEEL_SLOTS];
};

/*
 * One wheel and its lock: each core has one (timers set by the thread that
 * holds the core), the driver one more (timers set by threads holding no
 * core). driver.c has the protocol.
 */
struct weft__tshard {
	struct weft__slock lock;                        /* slock.h: an inline CAS uncontended */
	struct weft__wheel wheel;
	_Atomic uint64_t next_tick;                     /* earliest deadline; UINT64_MAX: none */
};

void weft__wheel_init(struct weft__wheel *w);
/* Insert a timer with when_tick set; false if it is already due (not inserted). */
bool weft__wheel_insert(struct weft__wheel *w, struct weft__timer *t);
void weft__wheel_remove(struct weft__wheel *w, struct weft__timer *t);
/* Earliest deadline of any timer (ticks), or UINT64_MAX. */
uint64_t weft__wheel_next(const struct weft__wheel *w);
/* Advance to now_tick: each timer due is unlinked and handed to fire(t,
 * arg), in deadline order, at most `max` of them (the rest stay due, in
 * order, for the next call). After the call t is not touched again: its
 * owner may reuse it once it sees it fired. Returns how many. */
typedef void (*weft__wheel_fire_fn)(struct weft__timer *t, void *arg);
size_t weft__wheel_fire(struct weft__wheel *w, uint64_t now_tick, size_t max,
			weft__wheel_fire_fn fire, void *arg);
/* The same, the timers appended to *fired (linked through next) instead
 * of handed to a function. Returns how many. */
size_t weft__wheel_advance(struct weft__wheel *w, uint64_t now_tick, struct weft__timer **fired,
			   size_t max);

#endif /* WEFT_WHEEL_H */
