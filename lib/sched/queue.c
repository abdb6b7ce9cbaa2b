/*
 * queue.c - the per-core run queue: a bounded ring of 256 task pointers with
 * one owner and any number of thieves, of which at most one copies at a time.
 *
 * Indices are free-running 32-bit counters masked by 255, so tail - head is
 * the length even across wrap-around and full (256) is told from empty (0).
 * `head` packs two indices, (steal << 32) | real:
 *  - real:  the next slot the owner pops;
 *  - steal: the first slot a thief is still copying out of. steal == real
 *           when no thief is at work.
 * The owner computes free space against `steal`, never `real`, so a slot a
 * thief is still reading is never overwritten.
 *
 * Owner push: write the slot, then a release store of tail publishes it.
 * Thief: acquire-load head, acquire-load tail (pairs with that release, so
 * the slots below tail are visible), claim n = ceil(len/2) slots by CAS-ing
 * real forward while leaving steal behind, copy the pointers into its own
 * ring, then CAS steal up to the current real, which hands the slots back to
 * the owner (acq_rel: the owner's next acquire load of head orders the reuse
 * of those slots after our reads). A thief that finds steal != real gives up:
 * someone else is copying.
 * Owner pop: CAS real forward (and steal with it when no thief works).
 * Overflow: when 256 are queued and no thief works, the owner claims the
 * oldest 128 with one CAS and hands them, plus the new task, to the caller
 * for the inject queue.
 *
 * Memory-ordering argument in the C11 model alone (x86 would hide LB and
 * make every CAS a fence). "Owner" is the thread holding the core; a
 * hand-off (block_in_place) starts the next holder with pthread_create,
 * which orders the old holder's accesses before the new one's.
 *  (Q1) head is only ever written by CAS (never a plain store after init).
 *       So two claims of one slot cannot both succeed (RMW atomicity), and
 *       an acquire load of head synchronises with every earlier release CAS
 *       on it, since later CASes continue its release sequence.
 *  (Q2) steal and real only move forward (mod 2^32), so an old head is a
 *       safe head: the owner sees less room than there is, and a thief's
 *       CAS from an old head fails. (ABA needs 2^32 claims meanwhile.)
 *  (Q3) tail and the slots are written only by the ring's owner (a thief
 *       writes slots of its own ring, which it owns). The owner's relaxed
 *       loads of tail read its own last store.
 * There is no SB: owner and thieves settle every conflict (pop, steal,
 * overflow taking the same slots) with CASes on the one word head (Q1),
 * never by one side storing and then loading another location. (Chase-Lev,
 * whose owner pops at the other end, needs a seq_cst fence there.)
 *
 *  operation                    order   pairs with / shape / why enough
 *  push, push_batch: slots      rlx +   thief's acquire load of tail, then
 *    then store tail            rel     its slot loads: MP. The slot write
 *                                       happens before the read, so the
 *                                       read cannot return an older value
 *                                       (coherence); the task's contents
 *                                       ride along.
 *  push, free_owner, and the    acq     the thief's claim-release CAS: LB.
 *    thief's load of dst head           Thief [read slot i; CAS steal past
 *                                       i] vs owner [load head, steal > i;
 *                                       write slot i again]: the release/
 *                                       acquire pair makes the read happen
 *                                       before the write, so it cannot read
 *                                       it. C11 allows LB for relaxed
 *                                       accesses: both halves are needed.
 *  steal: claim CAS             ac_rl   atomicity only (Q1); the slots were
 *                                       published by tail (MP above).
 *  steal: load tail             acq     push's release store of tail (MP).
 *  steal: slot loads/stores     rlx     published by tail, kept from reuse
 *                                       by the LB pair; dst's own tail
 *                                       release publishes the copies (MP).
 *  steal: claim-release CAS     ac_rl   release: the LB pair above. Its
 *                                       acquire is not needed.
 *  steal: first load of head    acq     with every head CAS a release, the
 *                                       tail loaded next is >= real (MP:
 *                                       who moved real had seen that tail),
 *                                       so avail is not negative; a head
 *                                       older than tail (avail > 256) is
 *                                       reloaded. Not needed for safety:
 *                                       the CAS validates head.
 *  pop: CAS                     ac_rl   atomicity against thieves (Q1); the
 *                                       slot is the owner's own write.
 *                                       release: tail >= real for the loads
 *                                       above and weft__ring_len; acquire:
 *                                       not needed (the next push reloads).
 *  overflow: CAS                ac_rl   succeeds only with steal == real,
 *                                       i.e. no claim open; then the owner
 *                                       reads its own slots. release: as
 *                                       pop; acquire: as push's head load.
 *  ring_len: head, then tail    acq     tail >= real as above; tail more
 *                                       than 256 ahead of an old head reads
 *                                       as 0 (a snapshot). The idle rescan
 *                                       gets its ordering from idle.c.
 * Nothing here is seq_cst.
 */
#include "queue.h"
/* Not runtime.h: this file also builds alone into tests/harness/ring_harness.c. */
#include "chaos.h"
#include "die.h"

#define HALF (WEFT_RING_CAP / 2)

static inline uint32_t h_real(uint64_t h) { return (uint32_t)h; }
static inline uint32_t h_steal(uint64_t h) { return (uint32_t)(h >> 32); }
static inline uint64_t h_pack(uint32_t steal, uint32_t real)
{
	return ((uint64_t)steal << 32) | real;
}

void weft__ring_init(struct weft__ring *q)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (unsigned i = 0; i < WEFT_RING_CAP; i++)
		atomic_init(&q->slot[i], NULL);
}

unsigned weft__ring_free_owner(const struct weft__ring *q)
{
	/* acquire: pairs with a thief's release of its claim (see header). */
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	return WEFT_RING_CAP - (tail - h_steal(h));
}

unsigned weft__ring_push_owner(struct weft__ring *q, struct weft_task *t,
			       struct weft__tlist *overflow)
{
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	for (;;) {
		/* acquire: pairs with the thief's acq_rel CAS releasing slots. */
		uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
		uint32_t steal = h_steal(h), real = h_real(h);
		if (tail - steal < WEFT_RING_CAP) {
			atomic_store_explicit(&q->slot[tail & WEFT_RING_MASK], t,
					      memory_order_relaxed);
			/* release: publishes the slot to thieves (their acquire of tail). */
			atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
			return 0;
		}
		if (steal != real) {
			/* A thief is copying and will free room soon; this one
			 * task goes to the inject queue instead of waiting. */
			weft__tlist_push(overflow, t);
			return 1;
		}
		WEFT_CHAOS_POINT();
		/* Full and no thief: claim the oldest half in one CAS. */
		uint64_t nh = h_pack(real + HALF, real + HALF);
		if (!atomic_compare_exchange_strong_explicit(&q->head, &h, nh,
							     memory_order_acq_rel,
							     memory_order_acquire))
			continue; /* a thief got in first; retry */
		for (uint32_t i = 0; i < HALF; i++)
			weft__tlist_push(overflow,
					 atomic_load_explicit(&q->slot[(real + i) & WEFT_RING_MASK],
							      memory_order_relaxed));
		weft__tlist_push(overflow, t);
		return HALF + 1;
	}
}

void weft__ring_push_batch_owner(struct weft__ring *q, struct weft__tlist *batch)
{
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct weft_task *t;
	if (batch->n > weft__ring_free_owner(q))
		weft__die("batch of %zu does not fit the ring", batch->n);
	while ((t = weft__tlist_pop(batch)))
		atomic_store_explicit(&q->slot[tail++ & WEFT_RING_MASK], t, memory_order_relaxed);
	/* release: publishes the slots to thieves. */
	atomic_store_explicit(&q->tail, tail, memory_order_release);
}

struct weft_task *weft__ring_pop_owner(struct weft__ring *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	for (;;) {
		uint32_t steal = h_steal(h), real = h_real(h);
		if (real == tail)
			return NULL;
		uint64_t nh = steal == real ? h_pack(real + 1, real + 1)
					    : h_pack(steal, real + 1);
		WEFT_CHAOS_POINT();
		/* acq_rel: orders against thieves claiming the same slots. */
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, nh,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return atomic_load_explicit(&q->slot[real & WEFT_RING_MASK],
						    memory_order_relaxed);
	}
}

struct weft_task *weft__ring_steal(struct weft__ring *src, struct weft__ring *dst,
				   unsigned *n_stolen, unsigned *src_depth)
{
	uint32_t dtail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
	uint64_t dh = atomic_load_explicit(&dst->head, memory_order_acquire);
	if (dtail - h_steal(dh) > HALF)
		return NULL;

	uint64_t h = atomic_load_explicit(&src->head, memory_order_acquire);
	uint32_t first, n, avail;
	for (;;) {
		uint32_t steal = h_steal(h), real = h_real(h);
		if (steal != real)
			return NULL; /* another thief is copying */
		/* acquire: pairs with the owner's release store of tail. */
		uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
		avail = tail - real;
		if (avail == 0)
			return NULL;
		if (avail > WEFT_RING_CAP) { /* head moved under us; reload */
			h = atomic_load_explicit(&src->head, memory_order_acquire);
			continue;
		}
		n = avail - avail / 2;
		first = real;
		WEFT_CHAOS_POINT();
		if (atomic_compare_exchange_weak_explicit(&src->head, &h,
							  h_pack(steal, real + n),
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct weft_task *t = atomic_load_explicit(
			&src->slot[(first + i) & WEFT_RING_MASK], memory_order_relaxed);
		atomic_store_explicit(&dst->slot[(dtail + i) & WEFT_RING_MASK], t,
				      memory_order_relaxed);
	}
	WEFT_CHAOS_POINT(); /* the owner runs while we hold the claim */
	/* Release the claim: steal catches up with real. acq_rel: our slot
	 * reads above happen before the owner (acquire of head) reuses them. */
	h = atomic_load_explicit(&src->head, memory_order_acquire);
	for (;;) {
		if (h_steal(h) != first)
			weft__die("ring steal claim lost (steal %u, expected %u)", h_steal(h), first);
		uint64_t nh = h_pack(h_real(h), h_real(h));
		if (atomic_compare_exchange_weak_explicit(&src->head, &h, nh,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	*n_stolen = n;
	*src_depth = avail;
	n--;
	struct weft_task *ret = atomic_load_explicit(&dst->slot[(dtail + n) & WEFT_RING_MASK],
						     memory_order_relaxed);
	if (n)
		/* release: publishes the copied slots to thieves of dst. */
		atomic_store_explicit(&dst->tail, dtail + n, memory_order_release);
	return ret;
}

unsigned weft__ring_len_served(const struct weft__ring *q, uint32_t *served)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
	uint32_t len = tail - h_real(h);
	*served = h_real(h);
	return len > WEFT_RING_CAP ? 0 : len;
}

unsigned weft__ring_len(const struct weft__ring *q)
{
	uint32_t served;
	return weft__ring_len_served(q, &served);
}
