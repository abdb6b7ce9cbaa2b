/*
 * pagefault_floor - the machine's floor for creating many fibers: how long
 * first writes to N fresh stack pages take, one page per 64 KiB slot of
 * one MAP_NORESERVE mapping (what a spawner does to each new fiber's
 * header page), from 1 or more threads; then the same pages again after
 * MADV_DONTNEED (a burst after the stacks were trimmed). No weft code:
 * this is what the kernel and the host charge, whatever the runtime does.
 *
 * Usage: pagefault_floor [FIBERS [THREADS]]   (default 1000000 1)
 * Prints one line per phase: seconds and microseconds per page. Exit 0 ok,
 * 1 failure (a line stdout did not take included), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SLOT (64ul << 10)

static char *base;
static unsigned long n_pages;
static unsigned n_threads;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Thread k writes the top page of slots k, k + n_threads, ... */
static void *toucher(void *arg)
{
	unsigned long k = (unsigned long)(uintptr_t)arg;
	for (unsigned long i = k; i < n_pages; i += n_threads)
		((volatile char *)base)[i * SLOT + SLOT - 64] = 1;
	return NULL;
}

static double touch_all(void)
{
	pthread_t th[64];
	double t0 = now_s();
	for (unsigned k = 1; k < n_threads; k++) {
		int rc = pthread_create(&th[k], NULL, toucher, (void *)(uintptr_t)k);
		if (rc) {
			fprintf(stderr, "pagefault_floor: pthread_create: %s\n", strerror(rc));
			exit(1);
		}
	}
	toucher((void *)0);
	for (unsigned k = 1; k < n_threads; k++)
		pthread_join(th[k], NULL);
	return now_s() - t0;
}

/* The two lines are the result: a stdout that did not take them (a full
 * disk, /dev/full) is a failure, said on stderr, exit 1, as weft-bench
 * does. It exited 0 with the lines lost (found by a review, 2026-12-07). */
static int stdout_checked(void)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	fprintf(stderr, "pagefault_floor: writing to stdout: %s\n", errno ? strerror(errno) : "error");
	return 1;
}

/* A count lo..hi in plain decimal digits, else 0. strtoul alone skips
 * blanks, takes a sign and wraps: THREADS 4294967297 ran 1 thread (the
 * cast to unsigned cut it), "-18446744073709551615" read 1 (found by a
 * review). */
static unsigned long count_arg(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	return errno || *end || v < lo || v > hi ? 0 : v;
}

int main(int argc, char **argv)
{
	/* more arguments than the two were ignored: a mistyped command
	 * line measured something else than asked, and said nothing */
	n_pages = argc > 1 ? count_arg(argv[1], 1, 1ul << 24) : 1000000ul;
	n_threads = argc > 2 ? (unsigned)count_arg(argv[2], 1, 64) : 1;
	if (argc > 3 || !n_pages || !n_threads) {
		fprintf(stderr, "usage: pagefault_floor [FIBERS (1..16777216) [THREADS (1..64)]]\n");
		return 2;
	}
	size_t len = n_pages * SLOT;
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "pagefault_floor: mmap of %zu bytes: %s\n", len, strerror(errno));
		return 1;
	}
	double t = touch_all();
	printf("first touch: %lu pages, %u thread(s): %.2f s (%.2f us per page)\n", n_pages,
	       n_threads, t, t / (double)n_pages * 1e6);
	if (madvise(base, len, MADV_DONTNEED)) {
		fprintf(stderr, "pagefault_floor: madvise: %s\n", strerror(errno));
		return 1;
	}
	t = touch_all();
	printf("after MADV_DONTNEED: %lu pages, %u thread(s): %.2f s (%.2f us per page)\n",
	       n_pages, n_threads, t, t / (double)n_pages * 1e6);
	munmap(base, len);
	return stdout_checked();
}
