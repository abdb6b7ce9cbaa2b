/*
 * chaos.h - schedule perturbation points (build with -DWEFT_CHAOS=ON).
 *
 * At each point, a chaos build may yield the CPU, spin a little or sleep a
 * few microseconds, chosen by a per-thread generator seeded from
 * WEFT_CHAOS_SEED (printed at the first point when unset), so interleavings
 * that plain runs almost never produce get exercised. Points sit between the
 * atomic steps of the ring, the task state word, parking, the idle protocol
 * and the inject queue. In normal builds they compile to nothing.
 */
#ifndef WEFT_CHAOS_H
#define WEFT_CHAOS_H

#ifdef WEFT_CHAOS
void weft__chaos_point(void);
#define WEFT_CHAOS_POINT() weft__chaos_point()
#else
#define WEFT_CHAOS_POINT() do { } while (0)
#endif

#endif /* WEFT_CHAOS_H */
