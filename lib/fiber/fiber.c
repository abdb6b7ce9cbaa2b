/*
 * fiber.c - fiber tasks: plain C functions that run on their own stack and
 * suspend instead of blocking a thread.
 *
 * A fiber is a poll task whose state is a struct weft__fiber and whose poll
 * switches into the fiber's stack (weft__ctx_switch, hand-written assembly
 * per architecture, no ucontext). The fiber runs until it finishes or
 * suspends (weft__fiber_suspend: a blocking-style weft call that must
 * wait), and the switch back makes the poll return READY or PENDING. A
 * woken fiber is polled again, maybe on another worker, and continues after
 * its suspension point; so nothing may keep a thread-local address across
 * one (weft__ctx() is the only way to the current worker).
 *
 * Stacks: slots of slabs (fiber.h), one MAP_NORESERVE mmap per slab of up
 * to 4,096 stacks, each above a 64 KiB guard region installed with
 * MADV_GUARD_INSTALL (no VMA split), or with mprotect(PROT_NONE) on a
 * kernel that does not know it (then two VMAs per stack in use). A fiber
 * takes its stack in weft_spawn, so a spawn that returned 0 runs; the
 * fiber's drop gives it back. Free stacks: the current core's cache (owner
 * only, up to CORE_CACHE_MAX), then the runtime's warm list (no bound; a
 * thread without a core takes it whole, `fwarm`: stack_take) and
 * each slab's cold list under the pool mutex; a slab whose slots all came
 * back cold gives its descriptor pages back too. Giving a stack back makes no system
 * call (an exit storm would make one each, with a TLB shootdown):
 * weft__fiber_trim gives idle stacks' pages back over time (at
 * maintenance: what a core's cache held throughout a period; before
 * parking, at most once per IDLE_TRIM_GAP_NS per core (a sooner park wakes
 * at the gap's end to do it): all but IDLE_KEEP; the warm list: what it
 * did not need over a window, trim_warm), sorted by address, one
 * MADV_DONTNEED per run of adjacent slots, so RSS returns after a burst.
 * Nothing is unmapped before destroy: mmap/munmap take the process's
 * memory-map lock for writing, madvise only reads it.
 *
 * Overflow: each worker thread has an alternate signal stack and a
 * SIGSEGV/SIGBUS handler; a fault inside the running fiber's guard region is
 * reported (task id, stack size) with write(2) and the process aborts. Any
 * other fault restores the previous disposition and re-faults.
 *
 * Sanitizers: ASan is told about every switch (start/finish_switch_fiber),
 * TSan gets a fiber per weft fiber, valgrind gets each stack registered.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"
#include "runtime.h"

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_VALGRIND 1
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

#define GUARD_MIN (64 * 1024)       /* address space below each stack; no RAM */
#define SLAB_BYTES (256ul << 20)    /* address space per slab mmap */
#define SLAB_SLOTS_MAX 4096u
#define SLABS_MAX 65536u            /* per pool: 16 TiB of stack address space */
#define GUARD_AHEAD 512u            /* slots a worker guards ahead of the carving */
#define GUARD_AHEAD_CALL 64u        /* ... at most this many per call (~0.1 ms) */
#define CORE_CACHE_MAX 64           /* warm stacks a core keeps */
#define IDLE_KEEP 16                /* ... when it goes to sleep or has not needed more */
#define SHARED_IDLE_KEEP 16
#define TRIM_PERIOD_NS 500000000ull /* timed trim at maintenance, per core */
#define IDLE_TRIM_GAP_NS 250000000ull /* at most one idle trim per core per gap */
#define WARM_SORT_MIN 256u          /* sort_warm: a warm list this long at least ... */
#define WARM_SORT_GAP_NS 50000000ull /* ... at most once per 50 ms per pool */
#define WARM_WINDOW_NS 200000000ull /* the shared warm list gives back what it did not need
				     * in a window this long at least (trim_warm) */
#define LAZY_HDR_STACKS 65536u      /* see struct weft__stack (fiber.h) */

enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

void weft__ctx_switch(void **save_sp, void *new_sp);
void weft__fiber_trampoline(void);
void weft__fiber_main(struct weft__fiber *f) __attribute__((noreturn, used));

static size_t page_size(void)
{
	static _Atomic size_t ps;
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);
	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

/* --------------------------------------------------------------- stacks */

static inline char *stack_top(struct weft__stack_pool *p, struct weft__stack *s)
{
	return s->lo + p->stack_size;
}

/* A fiber's header lives at the top of its own stack, above its first
 * frame: no allocation per spawn (a malloc by the spawning thread freed
 * by a worker was ~10% of spawn_many_local_fiber), and it comes and goes
 * with the stack. Written by the spawner, or by the first poll when the
 * spawn was lazy (fiber.h, struct weft__stack). */
#define FIBER_HDR_SIZE ((sizeof(struct weft__fiber) + 63) & ~(size_t)63)
/* One line per descriptor: the spawner writes one. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft__stack) == 64,
	       "a stack descriptor is one cache line");

static inline struct weft__fiber *fiber_at(struct weft__stack_pool *p, struct weft__stack *s)
{
	return (struct weft__fiber *)(stack_top(p, s) - FIBER_HDR_SIZE);
}

static void pool_init(struct weft__stack_pool *p, size_t stack_size)
{
	size_t ps = page_size();
	weft__slock_init(&p->lock);
	pthread_mutex_init(&p->trim_lock, NULL);
	p->warm = p->fwarm = NULL;
	atomic_init(&p->warm_n, 0);
	p->warm_low = 0;
	p->warm_since_ns = 0;
	atomic_init(&p->warm_sorted, false);
	atomic_init(&p->warm_sorted_ns, 0);
	p->slabs = p->avail = NULL;
	p->records = NULL;
	p->nrecords = 0;
	p->stack_size = (stack_size + ps - 1) & ~(ps - 1);
	p->guard_size = GUARD_MIN > ps ? GUARD_MIN : ps;
	p->slot_size = p->guard_size + p->stack_size;
	size_t n = SLAB_BYTES / p->slot_size;
	p->slab_slots = n < 1 ? 1 : n > SLAB_SLOTS_MAX ? SLAB_SLOTS_MAX : (unsigned)n;
	p->guard_mode = GUARD_UNKNOWN;
	atomic_init(&p->reserved, 0);
	atomic_init(&p->failures, 0);
	atomic_init(&p->guard_wanted, false);
	atomic_init(&p->guard_busy, false);
	atomic_init(&p->live, 0);
}

void weft__fiber_pool_init(struct weft_runtime *rt, size_t stack_size)
{
	pool_init(&rt->stacks, stack_size);
	for (unsigned i = 0; i < WEFT__STACK_CLASSES; i++)
		atomic_init(&rt->stack_class[i], NULL);
}

/*
 * The pool for a spawn's stack size (0: the runtime's). The runtime's own
 * size uses rt->stacks, the only pool with per-core caches; any other size
 * is rounded up to a power of two and gets that class's pool, made on
 * first use (a lost race frees its copy). NULL: no memory.
 */
static struct weft__stack_pool *pool_for(struct weft_runtime *rt, size_t size)
{
	size_t ps = page_size();
	size = (size + ps - 1) & ~(ps - 1);
	if (!size || size == rt->stacks.stack_size)
		return &rt->stacks;
	unsigned c = 0;
	while (((size_t)WEFT__STACK_CLASS_MIN << c) < size)
		c++;
	if (((size_t)WEFT__STACK_CLASS_MIN << c) == rt->stacks.stack_size)
		return &rt->stacks;
	struct weft__stack_pool *p = atomic_load_explicit(&rt->stack_class[c], memory_order_acquire);
	if (p)
		return p;
	struct weft__stack_pool *n = weft__calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	pool_init(n, (size_t)WEFT__STACK_CLASS_MIN << c);
	if (atomic_compare_exchange_strong_explicit(&rt->stack_class[c], &p, n,
						    memory_order_acq_rel, memory_order_acquire))
		return n;
	pthread_mutex_destroy(&n->trim_lock);
	weft__free(n);
	return p;
}

/*
 * Under p->lock: a new slab, at the head of both lists. The descriptors are
 * the first pages of the mapping itself (untouched until carved), so
 * stacks cost no allocation (weft_set_allocator). The slabs' records sit
 * side by side in one more mapping (SLABS_MAX of them, reserved at the
 * first slab, touched as used): records from malloc landed between the
 * burst's task slabs and kept the heap from shrinking after it. 0 or
 * -ENOMEM.
 */
static int slab_new(struct weft__stack_pool *p)
{
	size_t ps = page_size();
	size_t hdr = p->slab_slots * sizeof(struct weft__stack);
	hdr = (hdr + ps - 1) & ~(ps - 1);
	size_t len = hdr + p->slab_slots * p->slot_size;
	if (!p->records) {
		void *r = mmap(NULL, SLABS_MAX * sizeof(struct weft__slab), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r == MAP_FAILED)
			return -ENOMEM;
		p->records = r;
	}
	if (p->nrecords == SLABS_MAX)
		return -ENOMEM;
	struct weft__slab *sl = &p->records[p->nrecords];
	/* MAP_STACK: no transparent huge pages (6.7+), which would map the
	 * guards of untouched neighbours and a whole 2 MiB per stack; older
	 * kernels get the same from MADV_NOHUGEPAGE (whole mapping, no split). */
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	p->nrecords++;
	(void)madvise(m, len, MADV_NOHUGEPAGE);
	sl->map = m;
	sl->map_len = len;
	sl->desc_len = hdr;
	sl->slots = (char *)m + hdr;
	sl->nslots = p->slab_slots;
	sl->pool = p;
	sl->next = p->slabs;
	p->slabs = sl;
	sl->avail_next = p->avail;
	p->avail = sl;
	sl->on_avail = true;
	atomic_fetch_add_explicit(&p->reserved, len, memory_order_relaxed);
	return 0;
}

/* The lowest usable byte of slot i's stack. */
static inline char *slot_lo(struct weft__stack_pool *p, struct weft__slab *sl, unsigned i)
{
	return sl->slots + (size_t)i * p->slot_size + p->guard_size;
}

/*
 * Under p->lock: guard the region below a slot's stack. MADV_GUARD_INSTALL
 * (Linux 6.13+) puts markers in the page tables: the mapping stays one VMA.
 * Older kernels answer EINVAL (a sandbox filtering the call may say EPERM
 * or ENOSYS); from then on this runtime uses mprotect, which splits the
 * mapping (two VMAs per stack, so vm.max_map_count bounds live fibers),
 * and an ENOMEM from it means the mappings ran out: -EAGAIN.
 */
static int guard_install(struct weft__stack_pool *p, char *lo)
{
	char *g = lo - p->guard_size;
	if (p->guard_mode != GUARD_MPROTECT) {
		if (madvise(g, p->guard_size, MADV_GUARD_INSTALL) == 0) {
			p->guard_mode = GUARD_MADVISE;
			return 0;
		}
		int e = errno;
		bool unknown = e == EINVAL || e == EPERM || e == ENOSYS;
		if (!unknown || p->guard_mode == GUARD_MADVISE)
			return e == EAGAIN ? -EAGAIN : -ENOMEM;
		p->guard_mode = GUARD_MPROTECT;
	}
	if (mprotect(g, p->guard_size, PROT_NONE) == 0)
		return 0;
	return errno == ENOMEM ? -EAGAIN : -ENOMEM;
}

/* Every pool: the runtime's, then the classes made so far. */
#define FOR_EACH_POOL(rt, p)                                                           \
	for (unsigned i_ = 0; i_ <= WEFT__STACK_CLASSES; i_++)                         \
		for (struct weft__stack_pool *p = i_ == 0 ? &(rt)->stacks                    \
				: atomic_load_explicit(&(rt)->stack_class[i_ - 1],           \
						       memory_order_acquire);                \
		     p; p = NULL)

/*
 * Guards for the next GUARD_AHEAD slots of the slab being carved, by a
 * worker at maintenance or about to park, installed outside the lock: those slots belong to nobody yet. A spawner that
 * carves one of them first installs its guard itself (installing twice is
 * harmless: markers and PROT_NONE are idempotent), and `guarded` only
 * grows, under the lock, so a slot below it has its guard. Only once the
 * pool knows which kind of guard it uses (guard_install decided it under
 * the lock). Slabs are unmapped only at destroy, after the workers.
 */
static void guard_ahead(struct weft__stack_pool *p)
{
	/* One worker at a time: two would install the same slots. */
	if (!atomic_load_explicit(&p->guard_wanted, memory_order_relaxed) ||
	    atomic_exchange_explicit(&p->guard_busy, true, memory_order_acquire))
		return;
	weft__slock_lock(&p->lock);
	atomic_store_explicit(&p->guard_wanted, false, memory_order_relaxed);
	struct weft__slab *sl = p->avail;
	int mode = p->guard_mode;
	unsigned from = sl ? sl->guarded : 0, to = from;
	/* Not with the mprotect fallback: each guard there is two mappings
	 * against vm.max_map_count, kept for slots nobody may ever use. */
	if (sl && mode == GUARD_MADVISE) {
		unsigned want = sl->carved + GUARD_AHEAD < sl->nslots ? sl->carved + GUARD_AHEAD
								     : sl->nslots;
		to = from + GUARD_AHEAD_CALL < want ? from + GUARD_AHEAD_CALL : want;
		if (to < want) /* a maintenance or a park later does the next part */
			atomic_store_explicit(&p->guard_wanted, true, memory_order_relaxed);
	}
	weft__slock_unlock(&p->lock);
	/* Published every 16 slots: a spawner that catches up with us
	 * would install the rest of the batch again. */
	for (unsigned i = from; i < to;) {
		unsigned end = i + 16 < to ? i + 16 : to, j = i;
		for (; j < end; j++) {
			char *g = slot_lo(p, sl, j) - p->guard_size;
			int rc = madvise(g, p->guard_size, MADV_GUARD_INSTALL);
			if (rc)
				break; /* out of memory or mappings: the spawner will say so */
		}
		if (j > i) {
			weft__slock_lock(&p->lock);
			/* A spawner that caught up carved (and registered with
			 * Valgrind) the slots below sl->guarded itself: register
			 * only the ones this publication adds, each stack once. */
			if (sl->guarded < j) {
#ifdef WEFT_VALGRIND
				for (unsigned k = sl->guarded > i ? sl->guarded : i; k < j; k++)
					VALGRIND_STACK_REGISTER(slot_lo(p, sl, k),
								slot_lo(p, sl, k) + p->stack_size);
#endif
				sl->guarded = j;
			}
			weft__slock_unlock(&p->lock);
		}
		if (j < end)
			break;
		i = end;
	}
	atomic_store_explicit(&p->guard_busy, false, memory_order_release);
}

void weft__fiber_guard_ahead(struct weft_runtime *rt)
{
	FOR_EACH_POOL(rt, p)
		guard_ahead(p);
}

static struct weft__stack_cache *core_cache(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	return ctx && ctx->rt == rt && ctx->core ? &ctx->core->stacks : NULL;
}

/* Per-core caches hold stacks of the runtime's size only. */
static struct weft__stack_cache *pool_cache(struct weft_runtime *rt, struct weft__stack_pool *p)
{
	return p == &rt->stacks ? core_cache(rt) : NULL;
}

/* A stack for a new fiber: this core's cache, the runtime's warm list, a
 * cold or uncarved slot of a slab on the avail list, a new slab. 0, -ENOMEM or -EAGAIN. */
static int stack_take(struct weft_runtime *rt, struct weft__stack_pool *p, struct weft__stack **out,
		      bool *lazy)
{
	*lazy = false;
	struct weft__stack_cache *c = pool_cache(rt, p);
	struct weft__stack *s;
	if (c && (s = c->head)) {
		c->head = s->next;
		if (--c->n < c->low)
			c->low = c->n;
		*out = s;
		return 0;
	}
	int rc = 0;
	weft__slock_lock(&p->lock);
	/* A spawn with no core cache (a thread holding no core; any spawn
	 * from a pool of another stack size) takes the warm list whole, as
	 * `fwarm`: the workers push what they give back onto `warm` between
	 * two such spawns, so the next stack of the shared list is seldom
	 * the one popped next, while on `fwarm` it is, and its descriptor
	 * (written on another core) can be fetched a spawn ahead. Such a
	 * spawn is lazy: it leaves the header, a line and a page last
	 * touched on another core, to the worker that first polls the fiber
	 * and switches onto that stack anyway (fiber_poll_lazy). A worker's
	 * own spawn takes from `fwarm` only once `warm` is empty. */
	struct weft__stack **from;
	if (!c) {
		if (!p->fwarm) {
			p->fwarm = p->warm;
			p->warm = NULL;
		}
		from = &p->fwarm;
	} else {
		from = p->warm ? &p->warm : &p->fwarm;
	}
	if ((s = *from)) {
		struct weft__stack *nx = s->next;
		*from = nx;
		if (!c && nx && nx->next) /* nx's line came a spawn ago */
			__builtin_prefetch(nx->next, 1, 3);
		*lazy = !c;
		s->on_warm = false;
		unsigned n = atomic_load_explicit(&p->warm_n, memory_order_relaxed) - 1;
		atomic_store_explicit(&p->warm_n, n, memory_order_relaxed);
		if (n < p->warm_low)
			p->warm_low = n;
	} else if (p->avail || !(rc = slab_new(p))) {
		/* A slab with a cold slot or one not carved yet. */
		struct weft__slab *sl = p->avail;
		/* Under the mprotect fallback a stack given back by a trim gave
		 * its guard up too (give_back), so a cold stack, or a slot
		 * carved again after a reset, takes its guard (again: PROT_NONE
		 * twice is harmless). */
		bool reguard = p->guard_mode == GUARD_MPROTECT;
		if ((s = sl->cold)) {
			if (!reguard || !(rc = guard_install(p, s->lo))) {
				sl->cold = s->next;
				sl->cold_n--;
			}
		} else {
			unsigned i = sl->carved;
			s = (struct weft__stack *)sl->map + i;
			if ((i < sl->guarded && !reguard) || !(rc = guard_install(p, slot_lo(p, sl, i)))) {
				s->lo = slot_lo(p, sl, i);
				s->slab = sl;
				sl->carved++;
				if (i >= sl->guarded) {
					sl->guarded = i + 1;
#ifdef WEFT_VALGRIND
					VALGRIND_STACK_REGISTER(s->lo, s->lo + p->stack_size);
#endif
				}
			}
		}
		/* A cold stack, in a pool that has held LAZY_HDR_STACKS at
		 * once: its first touch is left to the worker (fiber.h). */
		*lazy = (size_t)p->nrecords * p->slab_slots >= LAZY_HDR_STACKS;
		if (!rc && !sl->cold && sl->carved == sl->nslots) {
			p->avail = sl->avail_next;
			sl->on_avail = false;
		}
		/* A guard install is 1-1.7 us in the kernel, most of a growing
		 * burst's spawn (fiber_rss): ask a parking worker to install
		 * the next ones (weft__fiber_guard_ahead) before we need them. */
		if (!rc && p->guard_mode == GUARD_MADVISE && sl->guarded < sl->nslots &&
		    sl->guarded - sl->carved < GUARD_AHEAD / 2 &&
		    !atomic_load_explicit(&p->guard_wanted, memory_order_relaxed))
			atomic_store_explicit(&p->guard_wanted, true, memory_order_relaxed);
	}
	weft__slock_unlock(&p->lock);
	if (rc) {
		atomic_fetch_add_explicit(&p->failures, 1, memory_order_relaxed);
		return rc;
	}
	*out = s;
	return 0;
}

/*
 * Stacks of one slab whose memory was given back, onto its cold list. A
 * slab all of whose carved slots are then cold holds nothing of anyone's:
 * its descriptor pages go back as well and it is carved afresh (the guards
 * stay). Under the lock, so that no carve writes a descriptor page while
 * it is dropped; once per slab emptied, so rare.
 */
static void push_cold_locked(struct weft__stack_pool *p, struct weft__slab *sl,
			     struct weft__stack *head, struct weft__stack *tail, unsigned n)
{
	tail->next = sl->cold;
	sl->cold = head;
	sl->cold_n += n;
	if (sl->cold_n == sl->carved) {
		(void)madvise(sl->map, sl->desc_len, MADV_DONTNEED);
		sl->cold = NULL;
		sl->cold_n = sl->carved = 0;
	}
	if (!sl->on_avail) {
		sl->avail_next = p->avail;
		p->avail = sl;
		sl->on_avail = true;
	}
}

static void push_cold(struct weft__stack_pool *p, struct weft__slab *sl, struct weft__stack *head,
		      struct weft__stack *tail, unsigned n)
{
	weft__slock_lock(&p->lock);
	push_cold_locked(p, sl, head, tail, n);
	weft__slock_unlock(&p->lock);
}

static void stack_give(struct weft_runtime *rt, struct weft__stack_pool *p, struct weft__stack *s)
{
#ifdef WEFT_ASAN
	/* The frames of the fiber that used it left redzones behind. */
	ASAN_UNPOISON_MEMORY_REGION(s->lo, p->stack_size);
#endif
	struct weft__stack_cache *c = pool_cache(rt, p);
	if (c && c->n < CORE_CACHE_MAX) {
		s->next = c->head;
		c->head = s;
		c->n++;
		return;
	}
	if (c) {
		/* Full: keep the half used last, the older half goes to the
		 * shared lists under one lock (one lock per exit past the
		 * cache made the pool's mutex ~15% of spawn_many_local_fiber,
		 * the spawning thread taking and the workers giving). */
		s->next = c->head;
		struct weft__stack *last = s;
		for (unsigned i = 1; i < CORE_CACHE_MAX / 2; i++)
			last = last->next;
		struct weft__stack *old = last->next;
		last->next = NULL;
		c->head = s;
		c->n = CORE_CACHE_MAX / 2;
		if (c->low > c->n)
			c->low = c->n;
		unsigned warm = 0;
		weft__slock_lock(&p->lock);
		while (old) {
			struct weft__stack *x = old;
			old = x->next;
			if (x->warm) {
				x->next = p->warm;
				x->on_warm = true;
				p->warm = x;
				warm++;
			} else {
				push_cold_locked(p, x->slab, x, x, 1);
			}
		}
		atomic_store_explicit(&p->warm_n,
				      atomic_load_explicit(&p->warm_n, memory_order_relaxed) + warm,
				      memory_order_relaxed);
		if (warm)
			atomic_store_explicit(&p->warm_sorted, false, memory_order_relaxed);
		weft__slock_unlock(&p->lock);
		return;
	}
	if (s->warm) {
		/* No system call here: a storm of exits would make one each
		 * (and a TLB shootdown). The trim gives the pages back later,
		 * in address order and in as few calls as runs of adjacent
		 * slots allow. */
		weft__slock_lock(&p->lock);
		s->next = p->warm;
		s->on_warm = true;
		p->warm = s;
		atomic_store_explicit(&p->warm_sorted, false, memory_order_relaxed);
		atomic_store_explicit(&p->warm_n,
				      atomic_load_explicit(&p->warm_n, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		weft__slock_unlock(&p->lock);
		return;
	}
	push_cold(p, s->slab, s, s, 1);
}

/*
 * Give back the pages of free stacks and put them on the cold list, in as
 * few system calls as their addresses allow: the stacks are marked, then
 * each slab's slots are walked in address order and a run of adjacent
 * marked slots is one MADV_DONTNEED over the stacks and the guards
 * between them (guard markers and PROT_NONE survive it; the range holds
 * no one else's stack). The walk is sequential over the descriptors (a
 * million stacks: 64 MB read, milliseconds), where sorting the list would
 * chase a million pointers. Trimmers of one pool take turns (trim_lock).
 */
static void give_back(struct weft__stack_pool *p, struct weft__stack *list)
{
	if (!list)
		return;
	pthread_mutex_lock(&p->trim_lock);
	for (struct weft__stack *s = list; s; s = s->next)
		s->trim = true;
	weft__slock_lock(&p->lock);
	struct weft__slab *sl = p->slabs;
	/* Under the mprotect fallback each guard is a mapping of its own
	 * (two per slot): the stacks given back give their guards up too,
	 * so that the slab's mapping merges back; stack_take guards them
	 * again. Kept, they held two mappings per stack ever in use, live
	 * fibers or not, until destroy (found by a review: 10,044 mappings
	 * with no fiber live after a burst of 5,000). */
	bool unguard = p->guard_mode == GUARD_MPROTECT;
	weft__slock_unlock(&p->lock);
	for (; sl; sl = sl->next) {
		weft__slock_lock(&p->lock);
		unsigned carved = sl->carved;
		weft__slock_unlock(&p->lock);
		/* carved may drop to 0 meanwhile (the slab emptied and was
		 * reset): then nothing here is marked and the reads below
		 * see zeroed descriptors. */
		struct weft__stack *head = NULL, *tail = NULL;
		unsigned n = 0;
		char *lo = NULL, *hi = NULL, *glo = NULL, *ghi = NULL;
		for (unsigned i = 0; i < carved; i++) {
			struct weft__stack *s = (struct weft__stack *)sl->map + i;
			if (!s->trim) {
				if (lo)
					(void)madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
				lo = NULL;
				/* a failure leaves the guards: still right */
				if (glo)
					(void)mprotect(glo, (size_t)(ghi - glo), PROT_READ | PROT_WRITE);
				glo = NULL;
				continue;
			}
			s->trim = false;
			if (unguard) {
				if (!glo)
					glo = s->lo - p->guard_size;
				ghi = s->lo + p->stack_size;
			}
			if (s->warm) {
				if (!lo)
					lo = s->lo;
				hi = s->lo + p->stack_size;
				s->warm = false;
			}
			/* appended: the cold list in address order, as a
			 * burst best takes it (pushed at the head, a burst
			 * took each trimmed run top down) */
			s->next = NULL;
			if (tail)
				tail->next = s;
			else
				head = s;
			tail = s;
			n++;
		}
		if (lo)
			(void)madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
		if (glo)
			(void)mprotect(glo, (size_t)(ghi - glo), PROT_READ | PROT_WRITE);
		if (head)
			push_cold(p, sl, head, tail, n);
	}
	pthread_mutex_unlock(&p->trim_lock);
}

static void trim_warm(struct weft__stack_pool *p, unsigned keep, bool wait, bool all);
static void sort_warm(struct weft__stack_pool *p, uint64_t now);

static bool trim_now(struct weft_runtime *rt, struct weft__core *core, bool idle, bool deep,
		     bool own_deep);

uint64_t weft__fiber_trim(struct weft_runtime *rt, struct weft__core *core, bool idle)
{
	/* A worker parks and unparks many times a second under a bursty
	 * load (a benchmark's batches, a server's request waves): trimming to
	 * IDLE_KEEP at each park gave every page back only for the next burst
	 * to fault it in again (spawn_many_local_fiber spent 90% of its time
	 * in the kernel). At most one idle trim per core per gap; a park that
	 * comes sooner sleeps no longer than the gap's end and trims then, so
	 * an idle runtime still gives its memory back within the gap. A trim
	 * that gave something back asks for one more a gap later: memory may
	 * still be coming free (tasks whose last reference a joining thread
	 * drops after the workers went idle), and nothing else would wake an
	 * idle worker to give it back. A core that has polled nothing since
	 * its last idle trim is idle for longer than a burst's gaps: that
	 * trim empties its own stack cache, and, if no other core is
	 * unparked either ("deep"), the shared ones and the task caches too, so RSS
	 * returns to where it was before the burst, not to that plus the
	 * caches (fiber_rss). Not the first idle trim of a core (nothing to
	 * compare with); the shared part not while another core runs (it may
	 * be using them). */
	if (!idle) {
		trim_now(rt, core, false, false, false);
		return 0;
	}
	uint64_t now = weft__now_ns();
	FOR_EACH_POOL(rt, p)
		sort_warm(p, now);
	if (now - core->idle_trimmed_ns < IDLE_TRIM_GAP_NS)
		return core->idle_trimmed_ns + IDLE_TRIM_GAP_NS;
	uint64_t st = atomic_load_explicit(&rt->idle.state, memory_order_relaxed);
	unsigned self = atomic_load_explicit(&core->sleeping, memory_order_relaxed) ? 0 : 1;
	/* The core's own cache is its own: emptied once this core has been
	 * idle for a gap, whatever the others do. */
	bool own_deep = core->idle_trimmed_ns != 0 && core->c.poll_count == core->idle_trim_polls;
	bool deep = own_deep && IDLE_UNPARKED(st) <= self;
	core->idle_trimmed_ns = now;
	core->idle_trim_polls = core->c.poll_count;
	size_t slabs = atomic_load_explicit(&rt->slab_count, memory_order_relaxed);
	/* every pool's warm stacks: those of a spawn's own stack size too
	 * (counting only the default pool, a trim that gave back per-size
	 * stacks said it gave nothing) */
	unsigned stacks = core->stacks.n;
	FOR_EACH_POOL(rt, p)
		stacks += atomic_load_explicit(&p->warm_n, memory_order_relaxed);
	/* frees: task slots were still being freed into the caches; a trim
	 * comes back for those that land after its drain (alloc.c) */
	bool frees = trim_now(rt, core, true, deep, own_deep);
	bool freed = atomic_load_explicit(&rt->slab_count, memory_order_relaxed) < slabs;
	if (deep && freed)
		weft__mem_release(); /* the task slabs' pages, still held by malloc */
	unsigned stacks_after = core->stacks.n;
	FOR_EACH_POOL(rt, p)
		stacks_after += atomic_load_explicit(&p->warm_n, memory_order_relaxed);
	bool gave = freed || stacks_after < stacks || frees;
	/* A trim that kept stacks in this core's cache comes back a gap
	 * later to empty it: returning 0 when this one had nothing beyond
	 * IDLE_KEEP to drop left them resident until the next burst
	 * (fiber/stack_memory_all_returns_when_idle, 1 run in 25). */
	/* Likewise warm stacks a window kept (trim_warm): given back at a
	 * later trim, if no burst needs them meanwhile. */
	/* And a trim that was not deep comes back while any pool keeps warm
	 * stacks, so that the deep one (keep 0) runs once every core is
	 * idle: up to SHARED_IDLE_KEEP stacks of a pool stayed resident for
	 * good otherwise, 64 MiB for 16 fibers of 8 MiB stacks that each
	 * touched 4 (found by a review). */
	bool warm_left = false;
	FOR_EACH_POOL(rt, p)
		if (atomic_load_explicit(&p->warm_n, memory_order_relaxed) >
		    (deep ? SHARED_IDLE_KEEP : 0))
			warm_left = true;
	return gave || (!own_deep && core->stacks.n) || warm_left ? now + IDLE_TRIM_GAP_NS : 0;
}

/* Does any pool's warm list - the runtime's or one of a spawn's own stack
 * size - hold more than `keep` stacks? Peeks only. At maintenance the
 * shared part of the trim ran only when the runtime's own pool had warm
 * stacks to spare, so the stacks of another size stayed resident for as
 * long as the workers never parked (found by a review). */
static bool warm_beyond(struct weft_runtime *rt, unsigned keep)
{
	FOR_EACH_POOL(rt, p)
		if (atomic_load_explicit(&p->warm_n, memory_order_relaxed) > keep)
			return true;
	return false;
}

static bool trim_now(struct weft_runtime *rt, struct weft__core *core, bool idle, bool deep,
		     bool own_deep)
{
	/* Task memory follows the same rhythm (alloc.c). */
	bool frees = weft__alloc_trim(rt, core, idle, deep);
	struct weft__stack_pool *p = &rt->stacks;
	struct weft__stack_cache *c = &core->stacks;
	unsigned drop = 0;
	bool shared = idle;
	if (idle) {
		unsigned keep = own_deep ? 0 : IDLE_KEEP;
		drop = c->n > keep ? c->n - keep : 0;
	} else if (c->n <= IDLE_KEEP && !warm_beyond(rt, SHARED_IDLE_KEEP)) {
		c->low = c->n; /* nothing to trim: no clock read */
	} else {
		/* Stacks that stayed in the cache for a whole period were not
		 * needed in it. */
		uint64_t now = weft__now_ns();
		if (now - c->trimmed_ns >= TRIM_PERIOD_NS) {
			drop = c->low > IDLE_KEEP ? c->low - IDLE_KEEP : 0;
			c->trimmed_ns = now;
			c->low = c->n - drop;
			shared = true;
		}
	}
	if (drop) {
		struct weft__stack *head = c->head, *tail = NULL;
		for (unsigned i = 0; i < drop; i++) {
			tail = c->head;
			c->head = tail->next;
		}
		tail->next = NULL;
		c->n -= drop;
		if (c->low > c->n)
			c->low = c->n;
		give_back(p, head);
	}
	/* The runtime-wide warm lists, by whoever gets to them first. */
	if (!shared)
		return frees;
	unsigned keep = deep ? 0 : SHARED_IDLE_KEEP;
	trim_warm(p, keep, idle, deep);
	for (unsigned i = 0; i < WEFT__STACK_CLASSES; i++) {
		struct weft__stack_pool *cp =
			atomic_load_explicit(&rt->stack_class[i], memory_order_acquire);
		if (cp)
			trim_warm(cp, keep, idle, deep);
	}
	return frees;
}

/* fwarm back onto the warm list (under the lock): before a trim, which
 * takes from `warm` only. A walk to fwarm's tail, at a trim only. */
static void fold_fwarm(struct weft__stack_pool *p)
{
	struct weft__stack *t = p->fwarm;
	if (!t)
		return;
	while (t->next)
		t = t->next;
	t->next = p->warm;
	p->warm = p->fwarm;
	p->fwarm = NULL;
}

/*
 * Put the warm list in address order, from a worker on its way to park.
 * A warm list is in the order the stacks came back, which after a few
 * bursts is no order: a burst that takes them in that order touches
 * stacks (fiber headers, timer entries walked by the wheel) all over the
 * address space, a TLB miss each, and in a VM each miss is a two-level
 * walk. fiber_exit_storm's median lateness was 3.7-6.0 ms with the warm
 * list kept between bursts against 1.4-2.4 ms with every stack faulted in
 * afresh in address order (the cold list's), and 2.2-3.1 ms sorted
 * (docs/BENCHMARKS.md). The sort reads each slab's descriptors in order
 * (one line each, a sequential read) and picks the ones flagged on_warm:
 * no pointer chase; so only when the list holds at least an eighth of the
 * carved stacks, at most once per WARM_SORT_GAP_NS per pool, and only if
 * the lock is free (a spawner comes first).
 */
static void sort_warm(struct weft__stack_pool *p, uint64_t now)
{
	unsigned n = atomic_load_explicit(&p->warm_n, memory_order_relaxed);
	if (n < WARM_SORT_MIN || atomic_load_explicit(&p->warm_sorted, memory_order_relaxed) ||
	    now - atomic_load_explicit(&p->warm_sorted_ns, memory_order_relaxed) < WARM_SORT_GAP_NS)
		return; /* peeks: checked again under the lock */
	if (!weft__slock_trylock(&p->lock))
		return;
	n = atomic_load_explicit(&p->warm_n, memory_order_relaxed);
	size_t carved = 0;
	for (struct weft__slab *sl = p->slabs; sl; sl = sl->next)
		carved += sl->carved;
	if (n >= WARM_SORT_MIN && !atomic_load_explicit(&p->warm_sorted, memory_order_relaxed) &&
	    carved <= (size_t)n * 8) {
		struct weft__stack *head = NULL, **tail = &head;
		unsigned got = 0;
		for (struct weft__slab *sl = p->slabs; sl; sl = sl->next)
			for (unsigned i = 0; i < sl->carved; i++) {
				struct weft__stack *s = (struct weft__stack *)sl->map + i;
				if (s->on_warm) {
					*tail = s;
					tail = &s->next;
					got++;
				}
			}
		*tail = NULL;
		if (got != n)
			weft__die("fiber stacks: %u on the warm list, %u flagged", n, got);
		p->warm = head; /* fwarm's stacks included */
		p->fwarm = NULL;
		atomic_store_explicit(&p->warm_sorted, true, memory_order_relaxed);
	}
	atomic_store_explicit(&p->warm_sorted_ns, now, memory_order_relaxed);
	weft__slock_unlock(&p->lock);
}

/*
 * Give back the pages of a pool's warm stacks that were not needed: those
 * beyond `keep` that stayed on the list for a whole window of at least
 * WARM_WINDOW_NS (the fewest the list held since the window began), or,
 * with `all` (the runtime has been idle for a gap), every one beyond
 * `keep`. Trimming to `keep` at every trim gave a bursty load's stacks
 * back between two bursts, and the next burst faulted them all in again:
 * timers_fiber (10,000 fibers a batch, the workers parking between
 * batches) spent 2.4-3.0 ms of system time per 5 ms batch in some
 * processes. A trim that comes before the window has run its length gives
 * nothing back and keeps the window open. At maintenance only if the lock
 * is free (a spawner may be carving under it); on the way to parking
 * (`wait`) in any case: an idle trim that found the lock held by a metrics
 * read gave nothing back, asked for no later trim, and the warm stacks
 * stayed resident until the next burst (fiber/every_stack_has_its_guard,
 * 3 runs in 40).
 */
static void trim_warm(struct weft__stack_pool *p, unsigned keep, bool wait, bool all)
{
	if (atomic_load_explicit(&p->warm_n, memory_order_relaxed) <= keep)
		return;
	if (wait)
		weft__slock_lock(&p->lock);
	else if (!weft__slock_trylock(&p->lock))
		return;
	unsigned n = atomic_load_explicit(&p->warm_n, memory_order_relaxed);
	unsigned unused = n;
	if (!all) {
		uint64_t now = weft__now_ns();
		if (now - p->warm_since_ns < WARM_WINDOW_NS) {
			weft__slock_unlock(&p->lock);
			return;
		}
		if (p->warm_low < unused)
			unused = p->warm_low;
		p->warm_since_ns = now;
	}
	fold_fwarm(p);
	struct weft__stack *list = NULL;
	unsigned drop = unused > keep ? unused - keep : 0;
	/* the stacks longest on the list are the ones at its tail, but a
	 * walk to the tail is a miss per stack: drop from the head, the
	 * list's stacks are interchangeable */
	for (unsigned i = 0; i < drop; i++) {
		struct weft__stack *s = p->warm;
		p->warm = s->next;
		s->on_warm = false;
		s->next = list;
		list = s;
	}
	n -= drop;
	atomic_store_explicit(&p->warm_n, n, memory_order_relaxed);
	p->warm_low = n;
	if (all)
		p->warm_since_ns = weft__now_ns();
	weft__slock_unlock(&p->lock);
	give_back(p, list); /* outside the lock: system calls */
}

static void live_add(struct weft_runtime *rt, int64_t d)
{
	struct weft__stack_cache *c = core_cache(rt);
	if (c) /* owner only: a plain read-modify-write, atomic for metrics */
		atomic_store_explicit(&c->live, atomic_load_explicit(&c->live, memory_order_relaxed) + d,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&rt->stacks.live, d, memory_order_relaxed);
}

int64_t weft__fiber_live(struct weft_runtime *rt)
{
	int64_t n = atomic_load_explicit(&rt->stacks.live, memory_order_relaxed);
	for (unsigned i = 0; i < rt->n; i++)
		n += atomic_load_explicit(&rt->cores[i].stacks.live, memory_order_relaxed);
	return n < 0 ? 0 : n;
}

static void pool_fini(struct weft__stack_pool *p)
{
	while (p->slabs) {
		struct weft__slab *sl = p->slabs;
		p->slabs = sl->next;
		munmap(sl->map, sl->map_len); /* descriptors included */
	}
	if (p->records)
		munmap(p->records, SLABS_MAX * sizeof(struct weft__slab));
	p->records = NULL;
	p->nrecords = 0;
	p->warm = p->fwarm = NULL;
	p->avail = NULL;
	pthread_mutex_destroy(&p->trim_lock);
}

void weft__fiber_shared_pool_fini(struct weft_runtime *rt)
{
	pool_fini(&rt->stacks);
	for (unsigned i = 0; i < WEFT__STACK_CLASSES; i++) {
		struct weft__stack_pool *p = atomic_load_explicit(&rt->stack_class[i],
								  memory_order_relaxed);
		if (p) {
			pool_fini(p);
			weft__free(p);
		}
	}
}


/*
 * Resident bytes of stack memory: mincore(2) over each slab's descriptor
 * pages and the slots carved since its last reset (guards included, which
 * never hold a page), in 16 MiB steps. Exact at the moment of each step;
 * costs a walk of the page tables of that address space (about the stacks
 * ever in use at once, times their size).
 */
static uint64_t resident_pages(char *lo, char *hi)
{
	size_t ps = page_size();
	unsigned char vec[4096];
	uint64_t pages = 0;
	while (lo < hi) {
		size_t len = (size_t)(hi - lo);
		if (len > sizeof(vec) * ps)
			len = sizeof(vec) * ps;
		if (mincore(lo, len, vec) == 0)
			for (size_t i = 0; i < (len + ps - 1) / ps; i++)
				pages += vec[i] & 1;
		lo += len;
	}
	return pages;
}

static uint64_t pool_resident(struct weft__stack_pool *p)
{
	uint64_t pages = 0;
	weft__slock_lock(&p->lock);
	struct weft__slab *sl = p->slabs;
	weft__slock_unlock(&p->lock);
	for (; sl; sl = sl->next) {
		weft__slock_lock(&p->lock);
		unsigned carved = sl->carved;
		weft__slock_unlock(&p->lock);
		pages += resident_pages(sl->map, sl->map + sl->desc_len);
		if (carved)
			pages += resident_pages(sl->slots, slot_lo(p, sl, carved - 1) + p->stack_size);
	}
	return pages * page_size();
}

void weft__fiber_metrics(struct weft_runtime *rt, struct weft_metrics *m)
{
	m->fibers_live = (uint64_t)weft__fiber_live(rt);
	FOR_EACH_POOL(rt, p) {
		m->fiber_stack_bytes_reserved += atomic_load_explicit(&p->reserved,
								      memory_order_relaxed);
		m->fiber_stack_alloc_failures += atomic_load_explicit(&p->failures,
								      memory_order_relaxed);
		m->fiber_stack_bytes_resident += pool_resident(p);
	}
}

void weft__fiber_pool_fini(struct weft__core *c)
{
	/* The stacks belong to the runtime's slabs. */
	c->stacks.head = NULL;
	c->stacks.n = 0;
}

/* ------------------------------------------------------------ switching */

/* Lay out f's first frame, just below its header at the top of its stack,
 * so that weft__ctx_switch "returns" into the trampoline with f in a
 * callee-saved register. */
static void *frame_init(struct weft__fiber *f)
{
	uintptr_t top = (uintptr_t)f & ~(uintptr_t)15; /* frames start below the header */
#if defined(__x86_64__)
	uint64_t *sp = (uint64_t *)(top - 24); /* after `ret`, rsp % 16 == 0 */
	sp -= 7;
	uint32_t mxcsr;
	uint16_t fcw;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	sp[0] = (uint64_t)mxcsr | ((uint64_t)fcw << 32);
	sp[1] = 0;                     /* r15 */
	sp[2] = 0;                     /* r14 */
	sp[3] = 0;                     /* r13 */
	sp[4] = (uint64_t)f;           /* r12 */
	sp[5] = 0;                     /* rbx */
	sp[6] = 0;                     /* rbp */
	sp[7] = (uint64_t)weft__fiber_trampoline;
	return sp;
#elif defined(__aarch64__)
	uint64_t *sp = (uint64_t *)(top - 176);
	memset(sp, 0, 176);
	sp[0] = (uint64_t)f;           /* x19 */
	sp[11] = (uint64_t)weft__fiber_trampoline; /* x30 */
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	sp[20] = fpcr;
	return sp;
#else
#error "weft fibers: unsupported architecture"
#endif
}

static void enter_fiber_side(struct weft__fiber *f)
{
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(f->fake_stack, &f->sched_bottom, &f->sched_size);
#else
	(void)f;
#endif
}

void weft__fiber_main(struct weft__fiber *f)
{
	enter_fiber_side(f);
	f->result = f->fn(f->arg);
	/* Still on the fiber: its dtors may use blocking calls. Not in a
	 * child forked by the fiber, which must not return here at all (it
	 * aborts below): the parent's fiber runs them. */
	if (f->locals && !weft__forked_task)
		weft__fiber_locals_end(f);
	f->done = 1;
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(NULL, f->sched_bottom, f->sched_size);
#endif
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(f->tsan_sched, 0);
#endif
	void *dead;
	weft__ctx_switch(&dead, f->sched_sp);
	__builtin_unreachable();
}

void weft__fiber_suspend(struct weft__fiber *f)
{
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(&f->fake_stack, f->sched_bottom, f->sched_size);
#endif
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(f->tsan_sched, 0);
#endif
	weft__ctx_switch(&f->sp, f->sched_sp);
	enter_fiber_side(f);
}

/* A new fiber's header, at the top of stack s. */
static struct weft__fiber *header_init(struct weft__stack_pool *pool, struct weft__stack *s,
				       void *(*fn)(void *), void *arg, void (*drop)(void *),
				       struct weft_runtime *rt)
{
	struct weft__fiber *f = fiber_at(pool, s);
#ifdef WEFT_ASAN
	/* a cached stack keeps the redzones its last fiber's frames left */
	ASAN_UNPOISON_MEMORY_REGION(f, FIBER_HDR_SIZE);
#endif
	/* Field by field, not memset: gcc makes that memset a `rep stos`,
	 * whose start on a line not in this core's cache was 54% of
	 * spawn_fiber in ping_pong_fiber; plain stores retire into the store
	 * buffer while the line is fetched (ping_pong_fiber 0.855x,
	 * spawn_many_local_fiber 0.836x, timers_fiber 0.903x in one A/B).
	 * Every field is set: a new field needs its store here too. */
	_Static_assert(sizeof(struct weft__fiber) ==
			       offsetof(struct weft__fiber, done) + sizeof(int) +
				       WEFT_FIBER_ASAN * 3 * sizeof(void *) +
				       WEFT_FIBER_TSAN * 2 * sizeof(void *),
		       "header_init does not set every field of struct weft__fiber");
	/* atomic: the stall report of another worker may read it during a
	 * lazy fiber's first poll (weft__fiber_user_fn) */
	__atomic_store_n(&f->fn, fn, __ATOMIC_RELAXED);
	f->arg = arg;
	f->drop = drop;
	f->result = NULL;
	f->stack = s;
	f->pool = pool;
	f->sp = NULL;
	f->sched_sp = NULL;
	f->cx = NULL;
	f->waiting = NULL;
	f->timer = NULL;
	f->timer_rt = NULL;
	f->task_id = 0;
	f->rt = rt;
	f->locals = NULL;
	f->started = false;
	f->done = 0;
#if WEFT_FIBER_ASAN
	f->fake_stack = NULL;
	f->sched_bottom = NULL;
	f->sched_size = 0;
#endif
#if WEFT_FIBER_TSAN
	f->tsan_fiber = NULL;
	f->tsan_sched = NULL;
#endif
	/* The header made the stack's top page resident: warm, so its page
	 * goes back with the stack even if fn never starts. */
	s->warm = true;
	return f;
}

static enum weft_poll fiber_poll(void *state, struct weft_cx *cx);
static void fiber_drop(void *state);

/* The first poll of a fiber spawned lazily (state: its stack's
 * descriptor): build the header here, make the task a plain fiber, and
 * run it. State and drop are read only by the task's poller and, after
 * it, by its last owner (task.c), ordered by the state word; the poll
 * function is also read meanwhile by the stall report of another worker
 * (worker.c, relaxed atomic) and by schedtop from outside, so that store
 * is atomic too: either value names a fiber. */
static enum weft_poll fiber_poll_lazy(void *state, struct weft_cx *cx)
{
	struct weft__stack *s = state;
	if (weft__task_cancelled(cx->task)) {
		/* fn never runs; fiber_drop_lazy gives the stack back */
		cx->error = -ECANCELED;
		return WEFT_READY;
	}
	struct weft__fiber *f = header_init(s->slab->pool, s, s->fn, s->arg, s->drop, s->rt);
	struct weft_task *t = cx->task;
	/* atomic, as the poll function: weft__fiber_user_fn reads both */
	__atomic_store_n(&t->arg, f, __ATOMIC_RELAXED);
	__atomic_store_n(&t->poll, fiber_poll, __ATOMIC_RELAXED);
	t->drop = fiber_drop;
	return fiber_poll(f, cx);
}

uintptr_t weft__fiber_user_fn(const struct weft_task *t, uintptr_t poll)
{
	if (poll != (uintptr_t)fiber_poll && poll != (uintptr_t)fiber_poll_lazy)
		return poll;
	void *arg = __atomic_load_n(&t->arg, __ATOMIC_RELAXED);
	if (!arg)
		return 0;
	void *(*fn)(void *) = poll == (uintptr_t)fiber_poll
				      ? __atomic_load_n(&((struct weft__fiber *)arg)->fn, __ATOMIC_RELAXED)
				      : __atomic_load_n(&((struct weft__stack *)arg)->fn, __ATOMIC_RELAXED);
	return (uintptr_t)fn;
}

void weft__fiber_probe_polls(unsigned long long *poll, unsigned long long *lazy)
{
	*poll = (unsigned long long)(uintptr_t)fiber_poll;
	*lazy = (unsigned long long)(uintptr_t)fiber_poll_lazy;
}

/* The header's memset was ~85% of fiber_poll_lazy and the first read of
 * it most of fiber_poll in spawn_many_local_fiber: its lines, last written
 * by whichever worker ran the stack's previous fiber, came in one at a time
 * as each fiber started. Requested for a whole batch at once, they come in
 * together. The descriptor was prefetched by the inject pop (t->arg); the
 * slab and pool lines are shared by every stack of the slab. */
void weft__fiber_prefetch_first(const struct weft_task *t)
{
	/* relaxed atomic: the stall report of another worker reads it too */
	if (__atomic_load_n(&t->poll, __ATOMIC_RELAXED) != fiber_poll_lazy)
		return; /* t->arg is not ours to follow */
	struct weft__stack *s = t->arg;
	const char *h = (const char *)fiber_at(s->slab->pool, s);
	__builtin_prefetch(h, 1, 3);      /* the header's two lines */
	__builtin_prefetch(h + 64, 1, 3);
	__builtin_prefetch(h - 64, 1, 3); /* the first frame, just below */
}

/* A lazily spawned fiber that never ran: its stack was never touched. */
static void fiber_drop_lazy(void *state)
{
	struct weft__stack *s = state;
	struct weft_runtime *rt = s->rt;
	void (*drop)(void *) = s->drop;
	void *arg = s->arg;
	stack_give(rt, s->slab->pool, s);
	live_add(rt, -1);
	/* arg is still the spawner's, handed to its drop */
	if (drop)
		drop(arg);
}

static enum weft_poll fiber_poll(void *state, struct weft_cx *cx)
{
	struct weft__fiber *f = state;
	struct weft__ctx *ctx = weft__ctx();
	if (!f->started) {
		if (weft__task_cancelled(cx->task)) {
			/* Cancelled before it started: fn never runs; the drop
			 * gives the stack back. */
			cx->error = -ECANCELED;
			return WEFT_READY;
		}
		f->started = true;
		cx->task->started = true;
		f->task_id = weft_cx_task_id(cx);
		/* here, not at spawn: the fiber starts with the FP control
		 * words of the worker that runs it first */
		f->sp = frame_init(f);
#ifdef WEFT_TSAN
		f->tsan_fiber = __tsan_create_fiber(0);
#endif
	}
	f->cx = cx;
	struct weft__fiber *outer = ctx->fiber;
	ctx->fiber = f;
#ifdef WEFT_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, f->stack->lo, f->pool->stack_size - FIBER_HDR_SIZE);
#endif
#ifdef WEFT_TSAN
	f->tsan_sched = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
	weft__ctx_switch(&f->sched_sp, f->sp);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	ctx->fiber = outer;
	f->cx = NULL;
	if (!f->done)
		return WEFT_PENDING;
#ifdef WEFT_TSAN
	__tsan_destroy_fiber(f->tsan_fiber);
	f->tsan_fiber = NULL;
#endif
	weft_cx_set_result(cx, f->result);
	/* Cancelled while running, and it has unwound: -EINTR for the
	 * joiner, who also receives the value fn returned. Shutdown cancels
	 * every fiber as weft_abort does, but marks only those on its list:
	 * one still in its first poll that returned without reaching a
	 * cancellation point after the close (it computed to its end) was
	 * reported as a plain 0 (found by a review of weft.h). */
	if (weft__task_cancelled(cx->task) ||
	    atomic_load_explicit(&cx->rt->closed, memory_order_relaxed))
		cx->error = -EINTR;
	return WEFT_READY; /* fiber_drop gives the stack back */
}

static void fiber_drop(void *state)
{
	struct weft__fiber *f = state;
	if (f->started && !f->done) {
		/* Discarded while suspended (shutdown's sweep, after its
		 * timeout ran out before the fiber unwound): forget its
		 * wait; nothing on its stack runs again. */
		if (f->waiting)
			weft_wait_cancel(f->waiting);
		if (f->timer)
			weft__timer_cancel(f->timer_rt, f->timer);
#ifdef WEFT_TSAN
		if (f->tsan_fiber)
			__tsan_destroy_fiber(f->tsan_fiber);
#endif
		/* its values: nothing else will destroy them (weft.h) */
		if (f->locals)
			weft__fiber_locals_discard(f);
		/* a weft_once whose fn it ran goes back to NEW: it stayed
		 * RUNNING and every later caller waited for ever (once.c).
		 * After the dtors, whose weft_once of it said -EDEADLK, as
		 * from fn; before the stack goes back, which holds the
		 * records. */
		weft__once_fiber_discarded(f);
	}
	/* f is on the stack: read it all before the stack goes back (another
	 * spawn may take it at once) */
	struct weft_runtime *rt = f->rt;
	void (*drop)(void *) = f->started ? NULL : f->drop;
	void *arg = f->arg;
	stack_give(rt, f->pool, f->stack);
	live_add(rt, -1);
	/* fn never started (aborted or shut down first, or the spawn
	 * failed): arg is still the spawner's, handed to its drop. */
	if (drop)
		drop(arg);
}

/* The spawn options as this library knows them: fields up to in->sz, the
 * rest zero (common.h). -EINVAL for a size no header produced or a
 * non-zero byte past the known fields. */
static int read_spawn_opts(const struct weft_spawn_opts *in, struct weft_spawn_opts *o)
{
	if (in && in->sz > offsetof(struct weft_spawn_opts, stack_size) &&
	    in->sz < offsetof(struct weft_spawn_opts, stack_size) + sizeof(o->stack_size)) {
		memset(o, 0, sizeof(*o));
		return -EINVAL; /* ends inside a field */
	}
	int rc = weft__opts_read(o, in, sizeof(*o),
				 offsetof(struct weft_spawn_opts, drop) + sizeof(o->drop));
	if (rc)
		return rc;
	if (o->stack_size && (o->stack_size < WEFT_FIBER_STACK_MIN ||
			      o->stack_size > WEFT_FIBER_STACK_MAX))
		return -EINVAL;
	return 0;
}

static int spawn_fiber(struct weft_runtime *rt, void *(*fn)(void *), void *arg,
		       const struct weft_spawn_opts *o, struct weft_task **out, void *site)
{
	if (!rt || !fn) {
		if (o->drop)
			o->drop(arg);
		return -EINVAL;
	}
	/* Before the stack pools: in a forked child a pool's lock may be held
	 * by a thread the child does not have (a spawn hung there, 4 forks in
	 * 40 in a review's program), and the spawn would be refused anyway. */
	if (WEFT__FORKED(rt)) {
		if (o->drop)
			o->drop(arg);
		return -ECHILD;
	}
	/* Refused before a stack is taken (weft__spawn_poll_at looks again):
	 * a spawn on a shut-down runtime took one first, mapping a new slab
	 * for nothing, and when that failed it said -ENOMEM, counted as a
	 * stack failure, instead of -ESHUTDOWN (found by a review). */
	if (atomic_load_explicit(&rt->closed, memory_order_relaxed)) {
		if (o->drop)
			o->drop(arg);
		return -ESHUTDOWN;
	}
	/* The stack now, so a fiber that cannot have one is refused here
	 * rather than failing unseen later. */
	struct weft__stack_pool *pool = pool_for(rt, o->stack_size);
	struct weft__stack *stack = NULL;
	bool lazy = false;
	int rc;
	if (pool) {
		rc = stack_take(rt, pool, &stack, &lazy);
	} else { /* no memory for the size's pool: a stack failure too */
		atomic_fetch_add_explicit(&rt->stacks.failures, 1, memory_order_relaxed);
		rc = -ENOMEM;
	}
	if (rc) {
		if (o->drop)
			o->drop(arg);
		return rc;
	}
	live_add(rt, 1);
	/* A fiber nobody joins is spawned without a handle: creating one and
	 * detaching it was one more RMW on the task's state word, often after
	 * a worker had already taken the task (the line on the other core). */
	if (lazy) {
		/* the stack untouched until a worker runs it (fiber.h) */
		__atomic_store_n(&stack->fn, fn, __ATOMIC_RELAXED); /* read by weft__fiber_user_fn */
		stack->arg = arg;
		stack->drop = o->drop;
		stack->rt = rt;
		rc = weft__spawn_poll_at(rt, fiber_poll_lazy, stack, fiber_drop_lazy, out, site,
					 WEFT__SPAWN_UNWIND);
	} else {
		struct weft__fiber *f = header_init(pool, stack, fn, arg, o->drop, rt);
		rc = weft__spawn_poll_at(rt, fiber_poll, f, fiber_drop, out, site,
					 WEFT__SPAWN_UNWIND);
	}
	if (rc)
		return rc; /* the drop gave the stack back and ran o->drop */
	/* The fiber may already have run and its stack gone to another
	 * spawn: do not touch either here. */
	return 0;
}

int weft_spawn(struct weft_runtime *rt, void *(*fn)(void *), void *arg, struct weft_task **out)
{
	weft__cancelled_spend(); /* a cancelled fiber's spawn loop yields */
	struct weft_spawn_opts o = { .sz = sizeof(o) };
	return spawn_fiber(rt, fn, arg, &o, out, __builtin_return_address(0));
}

int weft_spawn_with(struct weft_runtime *rt, void *(*fn)(void *), void *arg,
		    const struct weft_spawn_opts *opts, struct weft_task **out)
{
	weft__cancelled_spend(); /* as weft_spawn */
	struct weft_spawn_opts o;
	int rc = read_spawn_opts(opts, &o);
	if (rc)
		return rc; /* nothing read: drop not run */
	return spawn_fiber(rt, fn, arg, &o, out, __builtin_return_address(0));
}

bool weft_in_fiber(void)
{
	struct weft__ctx *ctx = weft__ctx();
	return ctx && ctx->fiber;
}

int weft_yield(void)
{
	struct weft__ctx *ctx = weft__ctx();
	if (ctx && ctx->fiber) {
		struct weft__fiber *f = ctx->fiber;
		if (__builtin_expect(weft__forked_task, 0))
			return -ECHILD; /* a forked child: never back into the parent's loop */
		weft_waker_wake_by_ref(weft_cx_waker(f->cx));
		weft__fiber_suspend(f);
		/* Still a yield when cancelled (a loop around it shares the
		 * core), but it says so. */
		return weft__task_cancelled(f->cx->task) ? -ECANCELED : 0;
	}
	if (ctx && ctx->core)
		return -EDEADLK;
	sched_yield();
	/* A discarded fiber's dtor (local.c): cancelled, as on the fiber; a
	 * dtor that yields until told so would otherwise hold shutdown for
	 * good (found by a review). So is the weft_block_in_place fn of a
	 * fiber that is cancelled or whose runtime shuts down (as
	 * weft__cancelled sees a fiber: one still in its first poll, as the
	 * fn's is, is not on the list shutdown cancels): the fiber's code, as
	 * its waits are (wait.c). Its yields said 0 for good (found by a
	 * review). */
	if (ctx && ctx->discarding)
		return -ECANCELED;
	struct weft__fiber *fip = ctx ? ctx->fiber_in_place : NULL;
	if (fip && fip->cx &&
	    (weft__task_cancelled(fip->cx->task) ||
	     atomic_load_explicit(&fip->cx->rt->closed, memory_order_relaxed)))
		return -ECANCELED;
	return 0;
}

/* ---------------------------------------------------- overflow reporting */

static struct sigaction prev_segv, prev_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[i++] = tmp[--n];
	return i;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	struct weft__ctx *ctx = weft__ctx();
	struct weft__fiber *f = !ctx ? NULL : ctx->fiber ? ctx->fiber : ctx->fiber_in_place;
	if (f && f->stack) {
		char *lo = f->stack->lo - f->pool->guard_size, *a = si->si_addr;
		if (a >= lo && a < f->stack->lo) {
			char msg[160];
			size_t n = 0;
			const char *p1 = "weft: fiber stack overflow in task ";
			const char *p2 = " (stack size ";
			const char *p3 = " bytes); raise fiber_stack_size\n";
			memcpy(msg + n, p1, strlen(p1)); n += strlen(p1);
			n += fmt_u64(msg + n, f->task_id);
			memcpy(msg + n, p2, strlen(p2)); n += strlen(p2);
			n += fmt_u64(msg + n, (uint64_t)f->pool->stack_size);
			memcpy(msg + n, p3, strlen(p3)); n += strlen(p3);
			ssize_t w = write(STDERR_FILENO, msg, n);
			(void)w;
			signal(SIGABRT, SIG_DFL);
			abort();
		}
	}
	/* Not ours: the handler that was there before ours gets it. A
	 * program's own handler (a GC's write barrier, a JIT, a wasm
	 * engine's bounds checks) is called, and ours stays installed: put
	 * back for good after the first such fault, it left every later
	 * stack overflow unreported (found by a review). The default (or
	 * SIG_IGN, which the kernel overrides for a fault) is put back and
	 * the fault happens again, the same as without weft. */
	const struct sigaction *prev = sig == SIGSEGV ? &prev_segv : &prev_bus;
	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, si, uc);
	} else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
	} else {
		sigaction(sig, prev, NULL);
	}
}

static void install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	/* The previous handlers first, ours after: sigaction(sig, &sa, &prev)
	 * puts ours in place before the kernel writes prev out, and a fault
	 * of the program's own in that window (another thread) found prev
	 * still zero, took it for SIG_DFL and died of its own fault: a
	 * chaos-build CI run of fiber_overflow_big_chained (status 139,
	 * nothing printed), made certain by a sigaction that sleeps there
	 * (tests/fiber/slow_sigaction.c). A handler the program installs on
	 * another thread between the two calls is not chained: install yours
	 * before the first runtime starts its workers. */
	sigaction(SIGSEGV, NULL, &prev_segv);
	sigaction(SIGBUS, NULL, &prev_bus);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

void *weft__fiber_thread_init(void)
{
	pthread_once(&handler_once, install_handler);
	size_t sz = 64 * 1024;
	void *alt = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (alt == MAP_FAILED)
		return NULL;
	stack_t ss = { .ss_sp = alt, .ss_size = sz, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL)) {
		munmap(alt, sz);
		return NULL;
	}
	return alt;
}

void weft__fiber_thread_fini(void *alt)
{
	if (!alt)
		return;
	stack_t ss = { .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	munmap(alt, 64 * 1024);
}
