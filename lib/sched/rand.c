/*
 * rand.c - small fast generators. Each core has a 64-bit xorshift-family
 * generator (two 32-bit halves, shifts 17/7/16) for picking steal victims;
 * the runtime derives per-core seeds from one splitmix64 sequence, so a
 * fixed rng_seed reproduces every core's sequence.
 */
#include "runtime.h"

void weft__rng_seed(struct weft__rng *r, uint64_t seed)
{
	r->one = (uint32_t)(seed >> 32);
	r->two = (uint32_t)seed;
	if (r->one == 0 && r->two == 0)
		r->two = 1;
}

uint32_t weft__rng_next(struct weft__rng *r)
{
	uint32_t a = r->one, b = r->two;
	a ^= a << 17;
	a = a ^ b ^ (a >> 7) ^ (b >> 16);
	r->one = b;
	r->two = a;
	return a + b;
}

uint32_t weft__rng_below(struct weft__rng *r, uint32_t n)
{
	return (uint32_t)(((uint64_t)weft__rng_next(r) * n) >> 32);
}

uint64_t weft__seedgen_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
