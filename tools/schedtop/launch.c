/*
 * launch.c - follow a wrapper command to the process that loads libweft;
 * see launch.h.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"
#include "mon.h"
#include "priv.h"

/* ------------------------------------------------ which library, no run */

/* PT_INTERP of a 64-bit ELF file: 1 (found), 0 (none: static), -1 (not
 * an ELF file we read). */
static int elf_interp(const char *exe, char *out, size_t n)
{
	int fd = open(exe, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	Elf64_Ehdr eh;
	int rc = -1;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		goto out;
	rc = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph)) {
			rc = -1;
			break;
		}
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz >= n ||
		    pread(fd, out, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz) {
			rc = -1;
			break;
		}
		out[ph.p_filesz] = '\0';
		rc = 1;
		break;
	}
out:
	close(fd);
	return rc;
}

/* Whose credentials the loader runs with when it lists a traced process's
 * program: that process's real ids and groups; ngroups -1 when they could
 * not be read (the loader is not run then). */
#define LAUNCH_MAX_GROUPS 1024
struct run_as {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[LAUNCH_MAX_GROUPS];
};

/* The real uid and gid and the supplementary groups of `pid`. 0 or -1
 * (more groups than kept here included). */
static int run_as_of(pid_t pid, struct run_as *as)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int have = 0, bad = 0;
	unsigned u;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "Uid: %u", &u) == 1) {
			as->uid = (uid_t)u;
			have |= 1;
		} else if (sscanf(line, "Gid: %u", &u) == 1) {
			as->gid = (gid_t)u;
			have |= 2;
		} else if (!strncmp(line, "Groups:", 7)) {
			char *q = line + 7, *end;
			as->ngroups = 0;
			for (;;) {
				unsigned long g = strtoul(q, &end, 10);
				if (end == q)
					break;
				if (as->ngroups == LAUNCH_MAX_GROUPS) {
					bad = 1;
					break;
				}
				as->groups[as->ngroups++] = (gid_t)g;
				q = end;
			}
			have |= 4;
		}
	}
	free(line);
	fclose(f);
	return have == 7 && !bad ? 0 : -1;
}

/* In the loader's child, root only: become `as` (raw system calls: they
 * change this thread's credentials only, and the child has no other).
 * Leaving uid 0 clears every capability. 0 or -1. */
static int become(const struct run_as *as)
{
	if (syscall(SYS_setgroups, (size_t)as->ngroups, as->groups) ||
	    syscall(SYS_setresgid, as->gid, as->gid, as->gid) ||
	    syscall(SYS_setresuid, as->uid, as->uid, as->uid))
		return -1;
	return 0;
}

/* launch_lib_for_exe, the loader run as `as` when given. */
static int lib_for_exe_as(const char *exe, char *const envp[], const struct run_as *as,
			  char *out, size_t n)
{
	char interp[PATH_MAX];
	int rc = -ENOENT;
	if ((!as || as->ngroups >= 0) && elf_interp(exe, interp, sizeof(interp)) == 1) {
		int fds[2];
		if (pipe2(fds, O_CLOEXEC))
			return -errno;
		pid_t c = fork();
		if (c < 0) {
			close(fds[0]);
			close(fds[1]);
			return -errno;
		}
		if (c == 0) {
			/* as the traced process's own user: root following a
			 * wrapper (setpriv, su, runuser) to another user's
			 * program ran that program's loader, with that user's
			 * environment (LD_AUDIT, LD_PRELOAD), as root (found by
			 * a review) */
			if (priv_child() || (as && geteuid() == 0 && become(as)))
				_exit(127);
			dup2(fds[1], 1);
			int dn = open("/dev/null", O_WRONLY);
			if (dn >= 0)
				dup2(dn, 2);
			/* the loader lists what the program would map, with the
			 * program's own environment (LD_LIBRARY_PATH...), and
			 * never runs it */
			char *const av[] = { interp, (char *)"--list", (char *)exe, NULL };
			execve(interp, av, envp);
			_exit(127);
		}
		close(fds[1]);
		FILE *f = fdopen(fds[0], "r");
		char line[PATH_MAX + 64];
		while (f && fgets(line, sizeof(line), f)) {
			char *arrow = strstr(line, "=> ");
			if (rc == 0 || !strstr(line, "libweft") || !arrow)
				continue;
			/* "/path with spaces/libweft.so.0 (0x...)": drop the
			 * address only (cutting at the first space broke a path
			 * with a space in it: found by a review) */
			char *path = arrow + 3;
			path[strcspn(path, "\n")] = '\0';
			char *paren = strrchr(path, '(');
			if (paren && paren > path && paren[-1] == ' ' && !strncmp(paren, "(0x", 3))
				paren[-1] = '\0';
			char real[PATH_MAX];
			if (path[0] == '/') {
				snprintf(out, n, "%s", realpath(path, real) ? real : path);
				rc = 0;
			}
		}
		if (f)
			fclose(f);
		else
			close(fds[0]);
		while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (rc && mon_file_has_weft_notes(exe)) {
		snprintf(out, n, "%s", exe);
		rc = 0;
	}
	return rc;
}

int launch_lib_for_exe(const char *exe, char *const envp[], char *out, size_t n)
{
	return lib_for_exe_as(exe, envp, NULL, out, n);
}

/* The exe and environment of a process stopped at its exec. */
static int lib_for_pid(pid_t pid, char *out, size_t n)
{
	char p[64], exe[PATH_MAX];
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	ssize_t k = readlink(p, exe, sizeof(exe) - 1);
	if (k <= 0)
		return -ENOENT;
	exe[k] = '\0';
	snprintf(p, sizeof(p), "/proc/%d/environ", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -ENOENT;
	size_t cap = 1 << 16, len = 0;
	char *env = malloc(cap);
	while (env) {
		size_t got = fread(env + len, 1, cap - len - 1, f);
		len += got;
		if (len + 1 < cap)
			break;
		char *ne = realloc(env, cap *= 2);
		if (!ne)
			free(env);
		env = ne;
	}
	fclose(f);
	if (!env)
		return -ENOMEM;
	env[len] = '\0';
	size_t nv = 0;
	for (size_t i = 0; i < len; i++)
		if (!env[i])
			nv++;
	char **envp = calloc(nv + 2, sizeof(*envp));
	int rc = -ENOMEM;
	if (envp) {
		size_t j = 0;
		for (size_t i = 0; i < len && j < nv + 1; i += strlen(env + i) + 1)
			envp[j++] = env + i;
		envp[j] = NULL;
		/* as the process's own user: it chose the loader (PT_INTERP)
		 * and the environment */
		struct run_as *as = malloc(sizeof(*as));
		if (as) {
			if (run_as_of(pid, as))
				as->ngroups = -1; /* the probes in exe only */
			rc = lib_for_exe_as(exe, envp, as, out, n);
			free(as);
		}
	}
	free(envp);
	free(env);
	return rc;
}

/* --------------------------------------------------------------- tracing */

static void add(struct launch *l, pid_t p)
{
	for (int i = 0; i < l->ntraced; i++)
		if (l->traced[i] == p)
			return;
	if (l->ntraced == l->cap) {
		int nc = l->cap ? 2 * l->cap : 64;
		pid_t *n = realloc(l->traced, (size_t)nc * sizeof(*n));
		if (!n) {
			/* not followed: it stays traced until schedtop exits */
			fprintf(stderr, "schedtop: out of memory following process %d\n", (int)p);
			return;
		}
		l->traced = n;
		l->cap = nc;
	}
	l->traced[l->ntraced++] = p;
}

static void list_free(struct launch *l)
{
	free(l->traced);
	l->traced = NULL;
	l->ntraced = l->cap = 0;
}

static bool known(const struct launch *l, pid_t p)
{
	for (int i = 0; i < l->ntraced; i++)
		if (l->traced[i] == p)
			return true;
	return false;
}

static void drop(struct launch *l, pid_t p)
{
	for (int i = 0; i < l->ntraced; i++)
		if (l->traced[i] == p) {
			l->traced[i] = l->traced[--l->ntraced];
			return;
		}
}

static void ended(struct launch *l, pid_t p, int st)
{
	drop(l, p);
	if (p == l->child) {
		l->child_reaped = true;
		l->child_status = st;
	}
}

static bool is_new_child_event(int ev)
{
	return ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK || ev == PTRACE_EVENT_CLONE;
}

int launch_follow(char *const cmd[], struct launch *l, char *lib, size_t n, char *err, size_t en)
{
	int fds[2], ready[2];
	char x;
	memset(l, 0, sizeof(*l));
	if (pipe2(fds, O_CLOEXEC)) {
		snprintf(err, en, "pipe: %s", strerror(errno));
		return -errno;
	}
	if (pipe2(ready, O_CLOEXEC)) {
		snprintf(err, en, "pipe: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	pid_t c = fork();
	if (c < 0) {
		int e = errno;
		snprintf(err, en, "fork: %s", strerror(e));
		close(fds[0]);
		close(fds[1]);
		close(ready[0]);
		close(ready[1]);
		return -e;
	}
	if (c == 0) {
		close(fds[1]);
		close(ready[0]);
		if (priv_child())
			_exit(127);
		/* A copy of a capability binary is not dumpable: let its parent
		 * trace it (it holds no capability any more). */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		if (write(ready[1], "r", 1) != 1 || read(fds[0], &x, 1) != 1)
			_exit(127);
		launch_child_stdio();
		execvp(cmd[0], cmd);
		fprintf(stderr, "schedtop: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	close(ready[1]);
	l->child = c;
	/* seized only once it dropped its capabilities and became dumpable */
	ssize_t got = read(ready[0], &x, 1);
	close(ready[0]);
	if (got != 1) {
		snprintf(err, en, "%s: the child could not drop its capabilities", cmd[0]);
		close(fds[1]);
		waitpid(c, NULL, 0);
		return -EPERM;
	}
	/* EXITKILL: if schedtop dies while following, nothing stays traced
	 * and stopped for ever */
	if (ptrace(PTRACE_SEIZE, c, 0,
		   PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
			   PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) {
		int e = errno;
		snprintf(err, en, "cannot follow %s (ptrace: %s)", cmd[0], strerror(e));
		close(fds[1]); /* the child exits 127 without running CMD */
		waitpid(c, NULL, 0);
		return -e;
	}
	add(l, c);
	if (write(fds[1], "g", 1) != 1) {
		int e = errno;
		close(fds[1]);
		kill(c, SIGKILL);
		waitpid(c, NULL, __WALL);
		snprintf(err, en, "start %s: %s", cmd[0], strerror(e));
		list_free(l);
		return -e;
	}
	close(fds[1]);
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, __WALL);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			snprintf(err, en, "following %s: waitpid: %s", cmd[0], strerror(e));
			launch_abort(l);
			return -e;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			ended(l, p, st);
			if (!l->ntraced) {
				if (WIFEXITED(l->child_status))
					snprintf(err, en, "%s exited (status %d) and no process it "
							  "started loaded libweft",
						 cmd[0], WEXITSTATUS(l->child_status));
				else
					snprintf(err, en, "%s was killed (signal %d) before any "
							  "process it started loaded libweft",
						 cmd[0], WTERMSIG(l->child_status));
				list_free(l);
				return -ECHILD;
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		add(l, p); /* a new child may report before its parent's event */
		int ev = (int)((unsigned)st >> 16), sig = 0;
		if (is_new_child_event(ev)) {
			unsigned long np;
			if (!ptrace(PTRACE_GETEVENTMSG, p, 0, &np))
				add(l, (pid_t)np);
		} else if (ev == PTRACE_EVENT_EXEC) {
			if (lib_for_pid(p, lib, n) == 0) {
				l->target = p; /* held here, before ld.so runs */
				return 0;
			}
		} else if (ev == 0) {
			sig = WSTOPSIG(st); /* a signal for the tracee: deliver it */
		}
		ptrace(PTRACE_CONT, p, 0, sig);
	}
}

void launch_detach_others(struct launch *l)
{
	struct timespec t0, t1;
	for (int i = 0; i < l->ntraced; i++)
		if (l->traced[i] != l->target)
			ptrace(PTRACE_INTERRUPT, l->traced[i], 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (l->ntraced > (l->target && known(l, l->target) ? 1 : 0)) {
		int st;
		pid_t p = waitpid(-1, &st, __WALL | WNOHANG);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		if (p == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (t1.tv_sec - t0.tv_sec > 2) {
				fprintf(stderr, "schedtop: %d process(es) of the command did not "
						"stop to be detached; they stay traced until schedtop "
						"exits\n", l->ntraced - (l->target ? 1 : 0));
				break;
			}
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
			continue;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			ended(l, p, st);
			continue;
		}
		if (p == l->target || !WIFSTOPPED(st))
			continue;
		int ev = (int)((unsigned)st >> 16), sig = ev == 0 ? WSTOPSIG(st) : 0;
		if (is_new_child_event(ev)) {
			unsigned long np;
			/* It reports its own stop: detached then. Unless that
			 * stop came first (or its exit): the child is not ours
			 * any more and the interrupt fails. Listed anyway, it
			 * was waited for and never reported: the loop ran its
			 * 2 s with the target held at its exec, and said the
			 * processes "did not stop to be detached" (found by a
			 * review). */
			if (!ptrace(PTRACE_GETEVENTMSG, p, 0, &np) && (pid_t)np != l->target &&
			    !ptrace(PTRACE_INTERRUPT, (pid_t)np, 0, 0))
				add(l, (pid_t)np);
		}
		ptrace(PTRACE_DETACH, p, 0, sig);
		drop(l, p);
	}
}

void launch_release(struct launch *l)
{
	if (l->target > 0) {
		ptrace(PTRACE_DETACH, l->target, 0, 0);
		drop(l, l->target);
	}
	list_free(l);
}

void launch_abort(struct launch *l)
{
	if (l->target > 0)
		kill(l->target, SIGKILL);
	if (l->child > 0 && !l->child_reaped)
		kill(l->child, SIGKILL);
	for (int i = 0; i < l->ntraced; i++)
		kill(l->traced[i], SIGKILL);
	/* everything traced is dying: reap what is ours to reap */
	while (l->ntraced) {
		int st;
		pid_t p = waitpid(-1, &st, __WALL);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			ended(l, p, st);
	}
	l->target = 0;
	list_free(l);
}

static int child_in = -1, child_out = -1;

void launch_set_child_stdio(int in_fd, int out_fd)
{
	child_in = in_fd;
	child_out = out_fd;
}

void launch_child_stdio(void)
{
	if (child_in >= 0 && child_in != 0)
		dup2(child_in, 0);
	if (child_out >= 0) {
		if (child_out != 1)
			dup2(child_out, 1);
		if (child_out != 2)
			dup2(child_out, 2);
	}
}
