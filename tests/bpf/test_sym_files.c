/*
 * test_sym_files.c - the symbolizer (tools/schedtop/sym.c) must read the
 * files a target maps, never a file the target names. Run as root (77
 * otherwise), as schedtop usually is, against tests/bpf/sym_swap_target
 * run as nobody:
 *   1. deleted: the target maps a library in a directory it may write,
 *      deletes it and leaves a symlink "lib.so (deleted)" to a root-only
 *      copy of sym_secret (mode 0600 in a 0700 directory). Before, libdwfl
 *      opened the path the maps show and followed the link: the secret's
 *      symbols came back. Now: no symbol of the secret; the decoy's own
 *      symbol through /proc/PID/map_files (root here has CAP_SYS_ADMIN).
 *   2. namespace: the target runs in a mount namespace of its own where
 *      DIR/lib.so is the decoy; on the host DIR/lib.so is the root-only
 *      secret. Before, the host's file was parsed; now the target's,
 *      through /proc/PID/root.
 *   3. normal: the decoy mapped plainly is symbolized.
 *   4. debug file: the decoy without DWARF, and beside it "lib.so.debug",
 *      the name libdwfl tries for a separate debug file, a symlink to the
 *      root-only secret (with DWARF). Before, libdwfl's standard search
 *      opened it as root and the decoy's address was named at the
 *      secret's source file and line; now a debug file is used only if
 *      the target's user could read it.
 *   5. debug FIFO: "lib.so.debug" a FIFO. Before, libdwfl's open of it
 *      blocked the symbolizer for good; now only a regular file is opened.
 *   6. reloaded: a plugin rebuilt in place (another file at the same path)
 *      and loaded again at the same addresses. Before, the refresh after
 *      the maps changed kept libdwfl's module of that name and range with
 *      the old file's symbols: the new function was named as the old one.
 *
 *   test_sym_files SYM_SWAP_TARGET DECOY_SO SECRET_SO DECOY_NODEBUG_SO DECOY_DEBUG_SO \
 *                  PLUGIN_A PLUGIN_B
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sym.h"

#define NOBODY 65534

#include "check.h"

static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	char buf[1 << 16];
	ssize_t n = 0;
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	int ok = in >= 0 && out >= 0 && n == 0 && fchmod(out, mode) == 0;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok ? 0 : -1;
}

/* Start the target as nobody; in a new mount namespace with the decoy
 * copied to NSLIB over a tmpfs on its directory when `nslib` is given.
 * Its pid; the decoy function's address in *addr. */
static pid_t start(const char *target, const char *lib, const char *link, const char *nsdir,
		   const char *decoy, unsigned long long *addr)
{
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		if (nsdir) {
			if (unshare(CLONE_NEWNS) ||
			    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
			    mount("none", nsdir, "tmpfs", 0, "mode=0755") ||
			    copy_file(decoy, lib, 0644)) {
				perror("test_sym_files: namespace");
				_exit(126);
			}
		}
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY)) {
			perror("test_sym_files: setuid nobody");
			_exit(126);
		}
		execl(target, target, lib, link, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	int ok = f && fscanf(f, "%llx", addr) == 1;
	if (f)
		fclose(f);
	if (!ok) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static pid_t target_pid; /* the running target, killed if the check blocks */

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "FAIL: the symbolizer blocked for 20 s\n";
	if (target_pid > 0)
		kill(target_pid, SIGKILL);
	if (write(1, m, sizeof(m) - 1) < 0) {
		/* nothing else to tell */
	}
	_exit(1);
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Symbolize the target: the decoy's function at `addr` when `want_decoy`,
 * and never anything of the secret. */
static void check(const char *what, pid_t pid, unsigned long long addr, bool want_decoy)
{
	struct sym_ctx *c;
	fflush(stdout);
	target_pid = pid;
	alarm(20); /* a symbolizer that blocks (a FIFO opened) fails here */
	int r = sym_open(&c, pid);
	CHECK(r == 0, "%s: sym_open: %s", what, strerror(-r));
	if (r)
		return;
	uint64_t a = 0;
	r = sym_find(c, "sym_secret_root_only_fn", &a);
	CHECK(r == -ENOENT, "%s: the root-only file's symbol found at %#llx", what,
	      (unsigned long long)a);
	struct sym_info s;
	char buf[512];
	r = sym_lookup(c, addr, false, &s);
	sym_format(&s, addr, buf, sizeof(buf));
	printf("%s: %#llx -> %s\n", what, addr, buf);
	CHECK(!strstr(s.func, "secret"), "%s: symbolized as %s", what, s.func);
	CHECK(!strstr(s.file, "secret"), "%s: line from the root-only file: %s:%d", what, s.file,
	      s.line);
	if (want_decoy)
		CHECK(r == 0 && !strcmp(s.func, "sym_decoy_fn"), "%s: func \"%s\"", what, s.func);
	sym_close(c);
	alarm(0);
}

/* A plugin host reloads a plugin rebuilt in place (sym_swap_target
 * --reload): after the maps change, the new file's symbols. */
static void reloaded(const char *target, const char *plug, const char *plugnew)
{
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(target, target, plug, "--reload", plugnew, "a_first_plugin_fn",
		      "b_second_plugin_fn", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	unsigned long long a = 0, b = 0;
	struct sym_ctx *c = NULL;
	struct sym_info s;
	fflush(stdout);
	target_pid = pid;
	alarm(20);
	CHECK(f && fscanf(f, "%llx", &a) == 1, "reloaded: the target printed no address");
	int r = a ? sym_open(&c, pid) : -1;
	CHECK(r == 0, "reloaded: sym_open: %d", r);
	if (!r) {
		r = sym_lookup(c, a, false, &s);
		CHECK(r == 0 && !strcmp(s.func, "a_first_plugin_fn"), "reloaded: first: %s",
		      s.func);
		CHECK(write(in[1], "go\n", 3) == 3, "reloaded: cannot tell the target");
		CHECK(fscanf(f, "%llx", &b) == 1, "reloaded: no second address");
		r = sym_sync(c);
		CHECK(r == 0, "reloaded: sym_sync: %d", r);
		r = sym_lookup(c, b, false, &s);
		printf("reloaded: %#llx (first %#llx) -> %s (%s:%d)\n", b, a, s.func, s.file,
		       s.line);
		if (a != b)
			printf("note: the plugin was loaded again elsewhere\n");
		CHECK(r == 0 && !strcmp(s.func, "b_second_plugin_fn"), "reloaded: second: %s",
		      s.func);
		sym_close(c);
	}
	alarm(0);
	if (f)
		fclose(f);
	close(in[1]);
	stop(pid);
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: test_sym_files SYM_SWAP_TARGET DECOY_SO SECRET_SO "
				"DECOY_NODEBUG_SO DECOY_DEBUG_SO PLUGIN_A PLUGIN_B\n");
		return 2;
	}
	if (geteuid() != 0) {
		const char *ci = getenv("CI");
		printf("SKIP: needs root (to run the target as nobody)\n");
		return ci && *ci && strcmp(ci, "false") ? 1 : 77; /* a skip fails in CI */
	}
	const char *decoy = argv[2], *secret = argv[3], *nodebug = argv[4];
	const char *decoy_debug = argv[5];
	signal(SIGALRM, on_alarm);
	char base[] = "/tmp/schedtop-symf-XXXXXX";
	if (!mkdtemp(base) || chmod(base, 0755))
		return 1;
	char priv[256], pub[256], nsdir[256], hidden[300], lib[300], nslib[300];
	snprintf(priv, sizeof(priv), "%s/root", base);
	snprintf(pub, sizeof(pub), "%s/pub", base);
	snprintf(nsdir, sizeof(nsdir), "%s/ns", base);
	snprintf(hidden, sizeof(hidden), "%s/secret.so", priv);
	snprintf(lib, sizeof(lib), "%s/lib.so", pub);
	snprintf(nslib, sizeof(nslib), "%s/lib.so", nsdir);
	/* the target runs as nobody: from the 0755 temporary directory, not
	 * from the build tree (under /root, 0700 on Debian, it could not be
	 * executed: found by a review) */
	char target[300];
	snprintf(target, sizeof(target), "%s/sym_swap_target", base);
	if (mkdir(priv, 0700) || mkdir(pub, 0777) || chmod(pub, 0777) || mkdir(nsdir, 0755) ||
	    copy_file(secret, hidden, 0600) || copy_file(decoy, lib, 0644) ||
	    copy_file(secret, nslib, 0600) || copy_file(argv[1], target, 0755)) {
		perror("test_sym_files: setup");
		return 1;
	}
	unsigned long long addr;

	pid_t pid = start(target, lib, NULL, NULL, decoy, &addr);
	CHECK(pid > 0, "normal: target did not start");
	if (pid > 0) {
		check("normal", pid, addr, true);
		stop(pid);
	}

	if (copy_file(decoy, lib, 0644))
		return 1;
	pid = start(target, lib, hidden, NULL, decoy, &addr);
	CHECK(pid > 0, "deleted: target did not start");
	if (pid > 0) {
		check("deleted + symlink to a root-only file", pid, addr, true);
		stop(pid);
	}

	pid = start(target, nslib, NULL, nsdir, decoy, &addr);
	CHECK(pid > 0, "namespace: target did not start");
	if (pid > 0) {
		check("another mount namespace", pid, addr, true);
		stop(pid);
	}

	/* a separate debug file by the name libdwfl tries (no debuglink, no
	 * build ID needed): a link to the root-only secret, then a FIFO */
	char dbg[320], fifo[320];
	snprintf(dbg, sizeof(dbg), "%s.debug", lib);
	snprintf(fifo, sizeof(fifo), "%s/fifo", pub);
	if (copy_file(nodebug, lib, 0644) || symlink(hidden, dbg) || mkfifo(fifo, 0666)) {
		perror("test_sym_files: debug file setup");
		return 1;
	}
	pid = start(target, lib, NULL, NULL, decoy, &addr);
	CHECK(pid > 0, "debug file: target did not start");
	if (pid > 0) {
		check("debug file linked to a root-only file", pid, addr, true);
		stop(pid);
	}
	/* the same name leading to the decoy's debug file, which the target
	 * may read: used */
	char pubdbg[320];
	snprintf(pubdbg, sizeof(pubdbg), "%s/decoy.debug", pub);
	if (copy_file(decoy_debug, pubdbg, 0644) || unlink(dbg) || symlink(pubdbg, dbg))
		return 1;
	pid = start(target, lib, NULL, NULL, decoy, &addr);
	CHECK(pid > 0, "readable debug file: target did not start");
	if (pid > 0) {
		struct sym_ctx *c;
		struct sym_info s = { 0 };
		int r = sym_open(&c, pid);
		if (!r) {
			r = sym_lookup(c, addr, false, &s);
			sym_close(c);
		}
		CHECK(r == 0 && strstr(s.file, "sym_decoy.c") && s.line > 0,
		      "a debug file the target may read: not used (r %d, \"%s\":%d)", r, s.file,
		      s.line);
		stop(pid);
	}
	if (unlink(dbg) || symlink(fifo, dbg))
		return 1;
	pid = start(target, lib, NULL, NULL, decoy, &addr);
	CHECK(pid > 0, "debug FIFO: target did not start");
	if (pid > 0) {
		check("debug file linked to a FIFO", pid, addr, true);
		stop(pid);
	}

	char plug[320], plugnew[320];
	snprintf(plug, sizeof(plug), "%s/plugin.so", pub);
	snprintf(plugnew, sizeof(plugnew), "%s/plugin.so.new", pub);
	if (copy_file(argv[6], plug, 0644) || copy_file(argv[7], plugnew, 0644))
		return 1;
	reloaded(target, plug, plugnew);

	char rm[400];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", base);
	if (system(rm))
		printf("note: could not remove %s\n", base);
	if (failures)
		return 1;
	printf("PASS: only the files the target maps are symbolized\n");
	return 0;
}
