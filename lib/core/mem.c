/*
 * mem.c - the library's allocator. Every allocation weft makes (runtime,
 * task slabs, fibers' bookkeeping, registrations, sync objects, metrics
 * snapshots) goes through one pair of functions, replaceable with
 * weft_set_allocator before any runtime exists - for a custom allocator,
 * or to inject failures in tests. Fiber stacks are mmap'd, not allocated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "runtime.h"
#include "sanitize.h"

static void *default_alloc(size_t size, size_t align, void *ctx)
{
	(void)ctx;
	if (align <= 16)
		return malloc(size);
	/* aligned_alloc wants a size that is a multiple of the alignment */
	return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

static void default_free(void *p, void *ctx)
{
	(void)ctx;
	free(p);
}

static struct weft_allocator cur = { .alloc = default_alloc, .free = default_free };
static _Atomic int live_runtimes;

void weft__runtime_count(int delta)
{
	atomic_fetch_add_explicit(&live_runtimes, delta, memory_order_acq_rel);
}

int weft_set_allocator(const struct weft_allocator *a)
{
	if (a && (!a->alloc || !a->free))
		return -EINVAL;
	if (atomic_load_explicit(&live_runtimes, memory_order_acquire))
		return -EBUSY;
	cur = a ? *a : (struct weft_allocator){ .alloc = default_alloc, .free = default_free };
	return 0;
}

void *weft__malloc(size_t n) { return cur.alloc(n ? n : 1, 16, cur.ctx); }

void *weft__calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t total = n * size;
	void *p = cur.alloc(total ? total : 1, 16, cur.ctx);
	if (p)
		memset(p, 0, total);
	return p;
}

void *weft__alloc_aligned(size_t size) { return cur.alloc(size, WEFT_CACHELINE, cur.ctx); }

void weft__mem_release(void)
{
#ifdef __GLIBC__
	/* glibc keeps freed heap memory unless its top is past a threshold
	 * that grows with the largest block ever mmap'd and freed (up to 64
	 * MiB): after a burst's task slabs are freed, pages of them stay
	 * resident. malloc_trim gives every free page back. Not for a
	 * caller's allocator: its memory is its business. Not under a
	 * sanitizer either: its allocator holds the memory, glibc's heap is
	 * unused and never set up, and malloc_trim sets it up without a
	 * lock, so two workers trimming first at once crashed in glibc's
	 * mtrim (SEGV, about 1 process in 75 with four threads; found by a
	 * review in an ASan run of test_probes). */
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
	if (cur.free == default_free)
		(void)malloc_trim(0);
#endif
#endif
}

void weft__free(void *p)
{
	if (p)
		cur.free(p, cur.ctx);
}
