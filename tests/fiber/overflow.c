/* overflow.c - a fiber that overflows its stack; weft must report the task
 * and abort (checked by overflow.sh).
 *
 *   fiber_overflow deep|big [fallback|chained]
 *
 * deep: recursion in 1 KiB frames. big: 40 KiB frames - built without
 * -fstack-clash-protection, so a frame's first store lands up to 40 KiB
 * below the previous one: it must hit the 64 KiB guard region, not the
 * memory beyond. fallback: this program's madvise() answers EINVAL to
 * MADV_GUARD_INSTALL, as a kernel before 6.13 does, so weft guards stacks
 * with mprotect instead (libweft resolves madvise here: the executable
 * exports it). chained: the program has its own SIGSEGV handler, installed
 * before the runtime, for faults on a page of its own (as a GC's write
 * barrier or a JIT has), and takes one such fault before the overflow:
 * both its handler and weft's report must work (weft's handler used to
 * give the signal back for good after the first fault not its own).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <weft/weft.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static volatile int limit = 1 << 30; /* never reached; hides the recursion from -Winfinite-recursion */
static int fallback, guard_refused;

__attribute__((visibility("default"))) int madvise(void *addr, size_t len, int advice)
{
	static int (*real)(void *, size_t, int);
	if (!real)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
	if (fallback && advice == MADV_GUARD_INSTALL) {
		guard_refused++;
		errno = EINVAL;
		return -1;
	}
	return real(addr, len, advice);
}

static int deep(int n)
{
	volatile char frame[1024];
	frame[0] = (char)n;
	if (n >= limit)
		return 0;
	return deep(n + 1) + frame[0];
}

static int big(int n)
{
	volatile char frame[40 * 1024];
	frame[0] = (char)n; /* the lowest address of the frame, touched first */
	if (n >= limit)
		return 0;
	return big(n + 1) + frame[0];
}

static char *own_page;
static volatile int own_faults;
static void own_segv(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;
	if (a >= own_page && a < own_page + 4096) {
		own_faults++;
		mprotect(own_page, 4096, PROT_READ | PROT_WRITE);
		return;
	}
	/* not its page: say where (async-signal-safe), then the fault happens
	 * again with the default action. (A chaos-build CI run once ended
	 * with status 139 and nothing printed: weft's handler, installed by a
	 * worker just then, had not learned this one yet and put SIG_DFL
	 * back for this very fault; see install_handler in lib/fiber/fiber.c
	 * and the install_window test.) */
	char msg[64] = "own_segv: a fault not on its page at 0x";
	size_t n = strlen(msg);
	for (int sh = 60; sh >= 0; sh -= 4)
		msg[n++] = "0123456789abcdef"[((uintptr_t)a >> sh) & 0xf];
	msg[n++] = '\n';
	ssize_t w = write(2, msg, n);
	(void)w;
	signal(SIGSEGV, SIG_DFL);
}

static void *wait_fn(void *wg) { return (void *)(long)weft_waitgroup_wait(wg); }
/* The overflowing fiber waits for main to print its id first: a worker
 * could otherwise run it and abort the process before the line is out. */
static struct weft_waitgroup *go;
static void *run_deep(void *arg) { weft_waitgroup_wait(go); return (void *)(long)deep((int)(long)arg); }
static void *run_big(void *arg) { weft_waitgroup_wait(go); return (void *)(long)big((int)(long)arg); }

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "deep") && strcmp(argv[1], "big"))) {
		fprintf(stderr, "usage: fiber_overflow deep|big [fallback|chained]\n");
		return 2;
	}
	fallback = argc > 2 && !strcmp(argv[2], "fallback");
	int chained = argc > 2 && !strcmp(argv[2], "chained");
	if (chained) {
		own_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = own_segv;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		if (own_page == MAP_FAILED || sigaction(SIGSEGV, &sa, NULL))
			return 2;
	}
	struct weft_runtime *rt;
	struct weft_task *t, *quiet;
	if (weft_runtime_create(NULL, &rt))
		return 2;
	/* A fiber suspended next to the one that overflows: its stack sits in
	 * the slot just below, where a frame jumping the guard would land. */
	struct weft_waitgroup *wg;
	if (weft_waitgroup_create(&wg) || weft_waitgroup_add(wg, 1) ||
	    weft_spawn(rt, wait_fn, wg, &quiet))
		return 2;
	if (weft_waitgroup_create(&go) || weft_waitgroup_add(go, 1) ||
	    weft_spawn(rt, argv[1][0] == 'd' ? run_deep : run_big, NULL, &t))
		return 2;
	if (chained) {
		own_page[0] = 1; /* its handler makes the page writable */
		if (own_faults != 1 || own_page[0] != 1) {
			fprintf(stderr, "the program's own SIGSEGV handler was not called\n");
			return 4;
		}
		printf("own fault handled\n");
		fflush(stdout); /* out before anything else can end the process */
	}
	printf("task %llu guard_install_refused %d\n", (unsigned long long)weft_task_id(t),
	       guard_refused);
	fflush(stdout);
	weft_waitgroup_done(go);
	weft_join(t, NULL);
	return 3; /* not reached: the overflow aborts */
}
