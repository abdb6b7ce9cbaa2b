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
 * Stacks: mmap'd with a PROT_NONE guard page at the bottom, default 64 KiB,
 * taken from the current core's pool at the first poll and given back to
 * the pool of whichever core finishes the fiber (up to STACK_POOL_MAX per
 * core, 256 = 17 MiB of address space; beyond that, and off a core, they
 * go to a runtime-wide pool of up to SHARED_POOL_MAX under a mutex, and
 * only then are unmapped). mmap/mprotect/munmap serialise on the process's
 * memory-map lock, so reuse matters when many fibers come and go. A fiber that never
 * suspends thus borrows a pooled stack for one poll.
 *
 * Overflow: each worker thread has an alternate signal stack and a
 * SIGSEGV/SIGBUS handler; a fault inside the running fiber's guard page is
 * reported (task id, stack size) with write(2) and the process aborts. Any
 * other fault restores the previous disposition and re-faults.
 *
 * Sanitizers: ASan is told about every switch (start/finish_switch_fiber),
 * TSan gets a fiber per weft fiber, valgrind gets each stack registered.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"
#include "runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
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

#define STACK_POOL_MAX 256
#define SHARED_POOL_MAX 4096

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

static inline char *stack_top(struct weft__stack *s) { return (char *)s; }
static inline char *stack_guard(struct weft__stack *s) { return s->map; }

static struct weft__stack *stack_map(size_t size)
{
	size_t ps = page_size();
	size_t len = ((size + ps - 1) & ~(ps - 1)) + ps; /* + guard */
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m, ps, PROT_NONE)) {
		munmap(m, len);
		return NULL;
	}
	struct weft__stack *s = (struct weft__stack *)((char *)m + len - 64);
	s->map = m;
	s->map_len = len;
	s->next = NULL;
#ifdef WEFT_VALGRIND
	VALGRIND_STACK_REGISTER((char *)m + ps, (char *)s);
#endif
	return s;
}

static void stack_unmap(struct weft__stack *s)
{
	munmap(s->map, s->map_len);
}

static struct weft__stack *stack_take(struct weft_runtime *rt)
{
	struct weft__ctx *ctx = weft__ctx();
	struct weft__core *c = ctx ? ctx->core : NULL;
	if (c && c->stack_pool) {
		struct weft__stack *s = c->stack_pool;
		c->stack_pool = s->next;
		c->stack_pool_n--;
		return s;
	}
	if (atomic_load_explicit(&rt->stacks_n, memory_order_relaxed)) {
		pthread_mutex_lock(&rt->stacks_lock);
		struct weft__stack *s = rt->stacks;
		if (s) {
			rt->stacks = s->next;
			atomic_store_explicit(&rt->stacks_n,
					      atomic_load_explicit(&rt->stacks_n, memory_order_relaxed) - 1,
					      memory_order_relaxed);
		}
		pthread_mutex_unlock(&rt->stacks_lock);
		if (s)
			return s;
	}
	return stack_map(rt->fiber_stack_size);
}

static void stack_give(struct weft_runtime *rt, struct weft__stack *s)
{
#ifdef WEFT_ASAN
	/* The frames of the fiber that used it left redzones behind. */
	size_t ps = page_size();
	ASAN_UNPOISON_MEMORY_REGION(stack_guard(s) + ps, (size_t)(stack_top(s) - stack_guard(s)) - ps);
#endif
	struct weft__ctx *ctx = weft__ctx();
	struct weft__core *c = ctx && ctx->rt == rt ? ctx->core : NULL;
	if (c && c->stack_pool_n < STACK_POOL_MAX) {
		s->next = c->stack_pool;
		c->stack_pool = s;
		c->stack_pool_n++;
		return;
	}
	if (atomic_load_explicit(&rt->stacks_n, memory_order_relaxed) < SHARED_POOL_MAX) {
		pthread_mutex_lock(&rt->stacks_lock);
		s->next = rt->stacks;
		rt->stacks = s;
		atomic_store_explicit(&rt->stacks_n,
				      atomic_load_explicit(&rt->stacks_n, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		pthread_mutex_unlock(&rt->stacks_lock);
		return;
	}
	stack_unmap(s);
}

void weft__fiber_shared_pool_fini(struct weft_runtime *rt)
{
	while (rt->stacks) {
		struct weft__stack *s = rt->stacks;
		rt->stacks = s->next;
		stack_unmap(s);
	}
	pthread_mutex_destroy(&rt->stacks_lock);
}

void weft__fiber_pool_fini(struct weft__core *c)
{
	while (c->stack_pool) {
		struct weft__stack *s = c->stack_pool;
		c->stack_pool = s->next;
		stack_unmap(s);
	}
	c->stack_pool_n = 0;
}

/* ------------------------------------------------------------ switching */

/* Lay out a first frame so that weft__ctx_switch "returns" into the
 * trampoline with f in a callee-saved register. */
static void *frame_init(struct weft__stack *s, struct weft__fiber *f)
{
	uintptr_t top = (uintptr_t)stack_top(s) & ~(uintptr_t)15;
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

static enum weft_poll fiber_poll(void *state, struct weft_cx *cx)
{
	struct weft__fiber *f = state;
	struct weft__ctx *ctx = weft__ctx();
	if (!f->stack) {
		f->task_id = weft_cx_task_id(cx);
		f->rt = cx->rt;
		f->stack = stack_take(cx->rt);
		if (!f->stack) {
			/* Out of memory or of mappings (each stack is two: see
			 * vm.max_map_count). The fiber never runs; its joiner
			 * gets -ENOMEM. */
			cx->error = -ENOMEM;
			return WEFT_READY;
		}
		f->sp = frame_init(f->stack, f);
#ifdef WEFT_TSAN
		f->tsan_fiber = __tsan_create_fiber(0);
#endif
	}
	f->cx = cx;
	struct weft__fiber *outer = ctx->fiber;
	ctx->fiber = f;
#ifdef WEFT_ASAN
	void *fake = NULL;
	size_t ps = page_size();
	__sanitizer_start_switch_fiber(&fake, stack_guard(f->stack) + ps,
				       (size_t)(stack_top(f->stack) - stack_guard(f->stack)) - ps);
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
	stack_give(cx->rt, f->stack);
	f->stack = NULL;
	weft_cx_set_result(cx, f->result);
	return WEFT_READY;
}

static void fiber_drop(void *state)
{
	struct weft__fiber *f = state;
	if (f->stack) {
		/* Cancelled while suspended: forget its wait, discard its stack
		 * (nothing on it runs again). */
		if (f->waiting)
			weft_wait_cancel(f->waiting);
		if (f->timer)
			weft__timer_cancel(f->timer_rt, f->timer);
#ifdef WEFT_TSAN
		if (f->tsan_fiber)
			__tsan_destroy_fiber(f->tsan_fiber);
#endif
		stack_give(f->rt, f->stack);
	}
	weft__free(f);
}

int weft_spawn(struct weft_runtime *rt, void *(*fn)(void *), void *arg, struct weft_task **out)
{
	if (!rt || !fn)
		return -EINVAL;
	struct weft__fiber *f = weft__calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fn = fn;
	f->arg = arg;
	struct weft_task *t = NULL;
	int rc = weft_spawn_poll(rt, fiber_poll, f, fiber_drop, &t);
	if (rc)
		return rc; /* fiber_drop freed f */
	/* f may already have run and been freed: do not touch it here. */
	if (out)
		*out = t;
	else
		weft_detach(t);
	return 0;
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
		weft_waker_wake_by_ref(weft_cx_waker(f->cx));
		weft__fiber_suspend(f);
		return 0;
	}
	if (ctx && ctx->worker)
		return -EDEADLK;
	sched_yield();
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
	(void)uc;
	struct weft__ctx *ctx = weft__ctx();
	struct weft__fiber *f = ctx ? ctx->fiber : NULL;
	if (f && f->stack) {
		char *lo = stack_guard(f->stack), *a = si->si_addr;
		if (a >= lo && a < lo + page_size()) {
			char msg[160];
			size_t n = 0;
			const char *p1 = "weft: fiber stack overflow in task ";
			const char *p2 = " (stack size ";
			const char *p3 = " bytes); raise fiber_stack_size\n";
			memcpy(msg + n, p1, strlen(p1)); n += strlen(p1);
			n += fmt_u64(msg + n, f->task_id);
			memcpy(msg + n, p2, strlen(p2)); n += strlen(p2);
			n += fmt_u64(msg + n, (uint64_t)(f->stack->map_len - page_size()));
			memcpy(msg + n, p3, strlen(p3)); n += strlen(p3);
			ssize_t w = write(STDERR_FILENO, msg, n);
			(void)w;
			signal(SIGABRT, SIG_DFL);
			abort();
		}
	}
	/* Not ours: put back what was there and let the fault happen again. */
	sigaction(sig, sig == SIGSEGV ? &prev_segv : &prev_bus, NULL);
}

static void install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &prev_segv);
	sigaction(SIGBUS, &sa, &prev_bus);
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
