/*
 * exec_window.c - LD_PRELOAD'ed into schedtop (test_schedtop.py
 * exec_window): puts `schedtop -- CMD`'s first read of CMD's maps across
 * CMD's exec, as it falls now and then when the first sample and the exec
 * run at once on two CPUs.
 *
 * In schedtop: the first open of /proc/N/maps of a process that is still
 * a copy of schedtop (CMD, forked, before its exec) lets that process
 * exec, and returns once it has (its /proc/N/exe another file). The file
 * was opened on the mm the exec dropped: it reads empty. In the forked
 * child: execvp waits (up to 10 s) for that open, and execs CMD without
 * this library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* [0]: the open was made; shared with the forked child */
static int *opened;

__attribute__((constructor)) static void init(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	opened = p == MAP_FAILED ? NULL : p;
}

/* Is pid running the program this process runs? */
static bool same_exe(int pid)
{
	char p[64];
	struct stat a, b;
	snprintf(p, sizeof(p), "/proc/%d/exe", pid);
	return !stat(p, &a) && !stat("/proc/self/exe", &b) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

__attribute__((visibility("default"))) int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT,
										      "open");
	int pid = 0, at = 0;
	bool hold = opened && !__atomic_load_n(opened, __ATOMIC_ACQUIRE) &&
		    sscanf(path, "/proc/%d/maps%n", &pid, &at) == 1 && at && !path[at] &&
		    pid != getpid() && same_exe(pid);
	int fd = real(path, flags, mode);
	if (hold && fd >= 0) {
		__atomic_store_n(opened, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < 10000 && same_exe(pid); i++)
			usleep(1000);
		if (!same_exe(pid))
			fprintf(stderr, "exec_window: maps of %d opened before its exec\n", pid);
	}
	return fd;
}

__attribute__((visibility("default"))) int execvp(const char *file, char *const argv[])
{
	for (int i = 0; i < 10000 && opened && !__atomic_load_n(opened, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	unsetenv("LD_PRELOAD");
	int (*real)(const char *, char *const[]) =
		(int (*)(const char *, char *const[]))dlsym(RTLD_NEXT, "execvp");
	return real(file, argv);
}
