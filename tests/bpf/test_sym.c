/*
 * test_sym.c - schedtop's symbolizer (tools/schedtop/sym.c, libdwfl) on a
 * real process: tests/bpf/sym_target prints addresses whose function, file
 * and line it knows; each must come back as printed. Also: a process that
 * does not exist is -ESRCH, an address nothing maps is -ENOENT.
 *
 *   test_sym SYM_TARGET [STRIPPED_COPY]
 *
 * STRIPPED_COPY, sym_target stripped: an address with no symbol is named
 * by its module and its address in the file ("0x55... [prog+0x1189]"),
 * which addr2line takes; it was the process's address alone, meaningless
 * once a PIE's process is gone.
 *
 * And a target that execs while sym_open reads it (exec_in_open): the
 * symbols of the program it became are found at the next sync.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sym.h"

#include "check.h"

/* Where `path`'s first mapping (file offset 0) starts in pid: a PIE's
 * load address, its first segment's vaddr being 0. */
static unsigned long long load_base(pid_t pid, const char *path)
{
	char mp[64], line[4096];
	unsigned long long lo = 0, off = 1;
	snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
	FILE *m = fopen(mp, "re");
	if (!m)
		return 0;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	while (fgets(line, sizeof(line), m)) {
		const char *p = strrchr(line, '/');
		size_t bl = strlen(base);
		if (!p || strncmp(p + 1, base, bl) || (p[1 + bl] != '\n' && p[1 + bl]))
			continue;
		if (sscanf(line, "%llx-%*x %*s %llx", &lo, &off) == 2 && off == 0)
			break;
		lo = 0;
	}
	fclose(m);
	return lo;
}

static void stripped(const char *path)
{
	int fds[2];
	if (pipe(fds))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	unsigned long long ra = 0, here = 0, x;
	int line;
	if (!f || fscanf(f, "%llx %d %llx %llx %llx %llx", &ra, &line, &here, &x, &x, &x) != 6) {
		printf("FAIL: %s printed no addresses\n", path);
		failures++;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	unsigned long long base = load_base(pid, path);
	struct sym_ctx *c;
	int r = sym_open(&c, pid);
	CHECK(r == 0 && base, "stripped: sym_open %d, load address %#llx", r, base);
	if (r == 0) {
		struct sym_info s;
		char buf[512], want[128];
		const char *mod = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		r = sym_lookup(c, here, false, &s);
		sym_format(&s, here, buf, sizeof(buf));
		printf("stripped: here %#llx -> %s\n", here, buf);
		snprintf(want, sizeof(want), "[%s+%#llx]", mod, here - base);
		CHECK(r == 0 && !s.func[0] && !s.line, "stripped: a symbol or a line: %s", buf);
		CHECK(strstr(buf, want), "stripped: %s, want %s", buf, want);
		sym_close(c);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* exec_in_open's child: held before its exec until exec_now() */
static pid_t held_pid;
static int held_go = -1;   /* write end: lets it exec */
static FILE *held_out;     /* its stdout */
static unsigned long long held_here, held_create;
static bool held_fired;    /* exec_now ran from open() */

/* Let the held child exec sym_target and wait until it printed its
 * addresses (its libraries mapped and main running). 0 or -1. */
static int exec_now(void)
{
	static int rc = -1;
	unsigned long long ra, x;
	int line;
	if (held_go < 0)
		return rc;
	if (write(held_go, "g", 1) == 1 && held_out &&
	    fscanf(held_out, "%llx %d %llx %llx %llx %llx", &ra, &line, &held_here, &held_create,
		   &x, &x) == 6)
		rc = 0;
	close(held_go);
	held_go = -1;
	return rc;
}

/* open(2) for this program and the libraries it uses (libdwfl's own
 * reads of /proc/PID): /proc/HELD/auxv is what dwfl_linux_proc_report
 * opened after sym.c had read the maps and before it read them itself -
 * the held child execs there. */
__attribute__((visibility("default"))) int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	char auxv[64];
	snprintf(auxv, sizeof(auxv), "/proc/%d/auxv", (int)held_pid);
	if (held_go >= 0 && !strcmp(path, auxv)) {
		held_fired = true;
		exec_now();
	}
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/*
 * A target that execs while sym_open reads it: right after an exec the
 * dynamic loader maps the libraries, as schedtop's first sample of
 * `schedtop -- CMD` reads the process. sym.c read the maps, then libdwfl
 * read them again for its modules: what was mapped in between (here, the
 * whole program the child became) was a module whose file find_elf found
 * in no line of the maps it had, libdwfl kept that failure, and sym_sync
 * reported the module again, same name and range, failure and all: no
 * runtime registry and no symbol of the program or its libraries, ever
 * (1 run in 13 of `schedtop -- stall_target 1.0 lock`). Now one read
 * gives both: the child's exec lands there (held until the open of its
 * auxv, libdwfl's first step) or, that read gone, after sym_open.
 */
static void exec_in_open(const char *target)
{
	int go[2], out[2];
	if (pipe(go) || pipe(out)) {
		CHECK(0, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char x;
		dup2(out[1], 1);
		close(out[0]);
		close(go[1]);
		if (read(go[0], &x, 1) != 1)
			_exit(127);
		execl(target, target, (char *)NULL);
		_exit(127);
	}
	close(go[0]);
	close(out[1]);
	held_pid = pid;
	held_go = go[1];
	held_out = fdopen(out[0], "r");
	struct sym_ctx *c;
	uint64_t reg = 0;
	int r = sym_open(&c, pid);
	CHECK(r == 0, "exec in open: sym_open: %s", strerror(-r));
	if (r == 0) {
		/* as schedtop's first sample does: looked up at once, the
		 * program's modules read */
		sym_find(c, "weft_probe_registry", &reg);
		bool fired = held_fired;
		CHECK(exec_now() == 0, "exec in open: sym_target printed no addresses");
		r = sym_sync(c);
		int f = sym_find(c, "weft_probe_registry", &reg);
		printf("exec in open (%s): sym_sync %d, weft_probe_registry %s %#llx\n",
		       fired ? "during sym_open's reads" : "after sym_open", r,
		       f ? "not found" : "at", (unsigned long long)reg);
		CHECK(r == 0 && f == 0, "exec in open: weft_probe_registry not found after the "
					"sync: %d", f);
		struct sym_info s;
		char buf[512];
		r = sym_lookup(c, held_here, false, &s);
		sym_format(&s, held_here, buf, sizeof(buf));
		printf("exec in open: here %#llx -> %s\n", held_here, buf);
		CHECK(r == 0 && !strcmp(s.func, "here"), "exec in open: here: %s", buf);
		r = sym_lookup(c, held_create, false, &s);
		sym_format(&s, held_create, buf, sizeof(buf));
		printf("exec in open: weft_runtime_create %#llx -> %s\n", held_create, buf);
		CHECK(r == 0 && !strcmp(s.func, "weft_runtime_create"),
		      "exec in open: weft_runtime_create: %s", buf);
		sym_close(c);
	}
	exec_now();
	held_pid = 0;
	if (held_out)
		fclose(held_out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: test_sym SYM_TARGET [STRIPPED_COPY]\n");
		return 2;
	}
	if (argc == 3)
		stripped(argv[2]);
	exec_in_open(argv[1]);
	int fds[2];
	if (pipe(fds))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(argv[1], argv[1], (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	unsigned long long ra = 0, here = 0, create = 0, lng = 0, deep = 0;
	int line = 0;
	if (!f || fscanf(f, "%llx %d %llx %llx %llx %llx", &ra, &line, &here, &create, &lng,
			 &deep) != 6) {
		printf("FAIL: sym_target printed no addresses\n");
		kill(pid, SIGKILL);
		return 1;
	}

	struct sym_ctx *c;
	int r = sym_open(&c, pid);
	CHECK(r == 0, "sym_open: %s", strerror(-r));
	if (r == 0) {
		struct sym_info s;
		char buf[512];

		r = sym_lookup(c, ra, true, &s);
		sym_format(&s, ra, buf, sizeof(buf));
		printf("return address %#llx -> %s\n", ra, buf);
		CHECK(r == 0 && !strcmp(s.func, "main"), "return address: func %s", s.func);
		CHECK(strstr(s.file, "sym_target.c") && s.line == line,
		      "return address: %s:%d, expected sym_target.c:%d", s.file, s.line, line);
		CHECK(!strcmp(s.module, "sym_target"), "module %s", s.module);

		r = sym_lookup(c, here, false, &s);
		sym_format(&s, here, buf, sizeof(buf));
		printf("here %#llx -> %s\n", here, buf);
		CHECK(r == 0 && !strcmp(s.func, "here") && s.offset == 0, "here: %s+%llu", s.func,
		      (unsigned long long)s.offset);

		r = sym_lookup(c, create, false, &s);
		sym_format(&s, create, buf, sizeof(buf));
		printf("weft_runtime_create %#llx -> %s\n", create, buf);
		CHECK(r == 0 && !strcmp(s.func, "weft_runtime_create"), "shared lib: func %s",
		      s.func);
		CHECK(!strncmp(s.module, "libweft.so", 10), "shared lib: module %s", s.module);
		CHECK(strstr(s.file, "runtime.c") && s.line > 0, "shared lib: %s:%d", s.file,
		      s.line);

		/* A name longer than the buffer says it was cut ("..."),
		 * and so does a formatted line cut by its buffer: both were
		 * cut silently, a wrong-looking name */
		r = sym_lookup(c, lng, false, &s);
		sym_format(&s, lng, buf, sizeof(buf));
		printf("long name %#llx -> %s\n", lng, buf);
		size_t fl = strlen(s.func);
		CHECK(r == 0 && !strncmp(s.func, "a_function_name_longer_than", 27) && fl >= 3 &&
			      !strcmp(s.func + fl - 3, "..."),
		      "long name: %s", s.func);
		char small[40];
		sym_format(&s, lng, small, sizeof(small));
		CHECK(strlen(small) == sizeof(small) - 1 && !strcmp(small + sizeof(small) - 4, "..."),
		      "a formatted line cut short: %s", small);

		/* A source path longer than the buffer keeps its end: cut
		 * at the buffer's end, the file printed was a piece of a
		 * directory's name */
		r = sym_lookup(c, deep, false, &s);
		sym_format(&s, deep, buf, sizeof(buf));
		printf("deep source path %#llx -> %s\n", deep, buf);
		size_t dl = strlen(s.file), want = strlen("/sym_deep_file.c");
		CHECK(r == 0 && dl > want && !strcmp(s.file + dl - want, "/sym_deep_file.c"),
		      "deep source path: file %s", s.file);
		CHECK(strstr(buf, "(sym_deep_file.c:") && s.line > 0, "deep source path: %s", buf);

		r = sym_lookup(c, 16, false, &s);
		CHECK(r == -ENOENT, "unmapped address: %d", r);

		/* The target exits and is not reaped yet (a zombie: its
		 * /proc/PID/maps reads empty, as schedtop's final interval
		 * after a target's exit saw): the symbols known stay. The sync
		 * took the empty list for a new mapping and dropped them all,
		 * and the final report named the latest stall by raw address
		 * (schedtop_stalls, about 1 run in 10 under load). */
		kill(pid, SIGKILL);
		siginfo_t si;
		CHECK(!waitid(P_PID, pid, &si, WEXITED | WNOWAIT), "waitid: %s", strerror(errno));
		r = sym_sync(c);
		printf("sym_sync on the exited target: %d\n", r);
		r = sym_lookup(c, here, false, &s);
		sym_format(&s, here, buf, sizeof(buf));
		printf("here, after the exit %#llx -> %s\n", here, buf);
		CHECK(r == 0 && !strcmp(s.func, "here"), "after the target exited: %d %s", r,
		      r ? "" : s.func);
		sym_close(c);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	r = sym_open(&c, pid);
	CHECK(r == -ESRCH, "a reaped process: %d (%s)", r, strerror(-r));
	if (!r)
		sym_close(c);
	if (failures)
		return 1;
	printf("PASS: symbols, lines and modules as the target printed them\n");
	return 0;
}
