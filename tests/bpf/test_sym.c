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
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: test_sym SYM_TARGET [STRIPPED_COPY]\n");
		return 2;
	}
	if (argc == 3)
		stripped(argv[2]);
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
