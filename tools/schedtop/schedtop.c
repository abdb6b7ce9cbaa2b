/*
 * schedtop - watch a running weft runtime: the runtime's view (USDT probes:
 * steals, parks, unparks, queue depths) joined with the kernel's view of the
 * same threads (sched_switch, migrations, futex waits).
 *
 *   schedtop -p PID [interval [count]]            live view (ncurses)
 *   schedtop -p PID --batch [-n N] [--json]       text / one JSON object per interval
 *   schedtop -p PID --no-bpf [--batch [--json]]   no privileges: perf counters + /proc
 *   schedtop trace -p PID --duration S -o FILE    trace-event JSON + JSON lines
 *   schedtop [opts] -- CMD ARGS...                start CMD and watch it
 *   schedtop list                                 processes that use weft
 *   schedtop report FILE [--json]                 replay recorded snapshots (no BPF)
 *   schedtop convert EVENTS.jsonl -o FILE         JSON lines -> trace-event JSON (no BPF)
 *
 * Exit: 0 ok, 1 failure, 2 usage, 77 when BPF cannot work here (privileges,
 * kernel); --no-bpf never needs BPF, so it never exits 77. The target
 * exiting ends schedtop with a final summary.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "diff.h"
#include "fallback.h"
#include "jwalk.h"
#include "launch.h"
#include "metrics.h"
#include "mon.h"
#include "record.h"
#include "model.h"
#include "priv.h"
#include "stall.h"
#include "trace.h"
#include "tui.h"

/* The process (thread group) id of a process or thread id, or -1. */
static int tgid_of(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int tgid = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static volatile sig_atomic_t exiting;
static void on_sig(int sig)
{
	(void)sig;
	exiting = 1;
}


/* ------------------------------------------------------------------ list */

static int cmd_list(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;
	if (!d) {
		perror("schedtop: /proc");
		return 1;
	}
	printf("%-8s %-16s %s\n", "PID", "COMM", "PROBES IN");
	while ((de = readdir(d))) {
		char lib[PATH_MAX], p[64], comm[32] = "?", *e;
		long pid = strtol(de->d_name, &e, 10);
		if (e == de->d_name || *e || pid <= 0 || pid == getpid())
			continue;
		if (mon_find_lib((int)pid, lib, sizeof(lib)))
			continue;
		snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
		FILE *f = fopen(p, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		char scomm[sizeof(comm) * 4], slib[sizeof(lib) * 4];
		printf("%-8ld %-16s %s\n", pid, tx_safe(scomm, sizeof(scomm), comm),
		       tx_safe(slib, sizeof(slib), lib));
		found++;
	}
	closedir(d);
	if (!found)
		fprintf(stderr, "schedtop: no running process uses weft (or none you may inspect)\n");
	return 0;
}

/* ---------------------------------------------------------------- report */

/* fopen of a file to read, a directory refused: it opens, then reads as
 * an error that was taken for an empty file - `convert DIR -o T` wrote an
 * empty trace with exit 0, `report DIR` said "need at least 2 snapshots,
 * found 0" (found by a review) */
static FILE *open_input(const char *path)
{
	FILE *f = fopen(path, "re");
	struct stat sb;
	if (f && !fstat(fileno(f), &sb) && S_ISDIR(sb.st_mode)) {
		fclose(f);
		errno = EISDIR;
		return NULL;
	}
	return f;
}

/*
 * What a file that `report` cannot read from its first line is, said with
 * the command that reads it: `report` of schedtop's other outputs -
 * --batch --json's interval reports above all, "report" by name - said
 * "malformed snapshot 1" (found by a review).
 */
static const char *what_file(FILE *f)
{
	static char head[65536];
	rewind(f);
	size_t k = fread(head, 1, sizeof(head) - 1, f);
	head[k] = '\0';
	if (strstr(head, "\"schedtop-record/1\""))
		return "a schedtop record dump: its intervals are interval reports already (schedtop "
		       "diff compares dumps; its .trace.json opens in Perfetto)";
	if (strstr(head, "\"tool\"") && strstr(head, "\"weft-load\""))
		return "weft-load's output, not snapshots (tools/report/weft_report.py makes a page "
		       "of it)";
	if (strstr(head, "\"schedtop/1\"") || strstr(head, "\"schedtop-nobpf/1\""))
		return "schedtop --batch --json interval reports, not snapshots: report replays "
		       "what --batch --record FILE wrote (compare reports with schedtop diff)";
	if (strstr(head, "\"ts_ns\"") && strstr(head, "\"type\""))
		return "schedtop events (trace or record JSON lines), not snapshots: schedtop convert "
		       "makes a trace-event file of them";
	return "malformed snapshot 1 (report reads what schedtop --batch --record FILE wrote)";
}

static int cmd_report(const char *path, bool json)
{
	FILE *f = open_input(path);
	if (!f) {
		fprintf(stderr, "schedtop: %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct snap *prev = calloc(1, sizeof(*prev)), *cur = calloc(1, sizeof(*cur));
	/* one interval held back, so that the last one can say it is final */
	struct interval *iv = calloc(1, sizeof(*iv)), *held = calloc(1, sizeof(*held));
	struct lint_state ls = { 0 };
	int rc = 0, n = 0, r, pid = 0;
	if (!prev || !cur || !iv || !held) {
		rc = 1;
		goto out;
	}
	while ((r = snap_read(f, cur)) == 1) {
		if (n++ > 0) {
			if (n > 2) {
				if (json)
					interval_print_json(stdout, held, pid, NULL);
				else
					interval_print_text(stdout, held, pid);
			}
			interval_compute(iv, prev, cur, &ls);
			struct interval *x = held;
			held = iv;
			iv = x;
		}
		pid = (int)cur->pid;
		struct snap *t = prev;
		prev = cur;
		cur = t;
	}
	if (n >= 2) {
		if (json)
			interval_print_json(stdout, held, pid, r < 0 ? NULL : SCHEDTOP_END_EOF);
		else
			interval_print_text(stdout, held, pid);
	}
	if (r < 0 && n == 0) {
		fprintf(stderr, "schedtop: %s: %s\n", path, what_file(f));
		rc = 1;
	} else if (r < 0) {
		fprintf(stderr, "schedtop: %s: malformed snapshot %d\n", path, n + 1);
		rc = 1;
	} else if (n < 2) {
		fprintf(stderr, "schedtop: %s: need at least 2 snapshots, found %d\n", path, n);
		rc = 1;
	}
out:
	fclose(f);
	free(prev);
	free(cur);
	free(iv);
	free(held);
	return rc;
}

/* --------------------------------------------------------------- convert */

static void jsonl_name(const char *out, char *buf, size_t n)
{
	size_t l = strlen(out);
	if (l > 5 && !strcmp(out + l - 5, ".json"))
		snprintf(buf, n, "%.*s.jsonl", (int)(l - 5), out);
	else
		snprintf(buf, n, "%s.jsonl", out);
}

/* Close f: 0, or the errno of a write that failed on the way (the error
 * flag: fclose alone says nothing of a write that failed before its
 * last flush). */
static int close_checked(FILE *f)
{
	errno = 0;
	int e = fflush(f) || ferror(f) ? (errno ? errno : EIO) : 0;
	if (fclose(f) && !e)
		e = errno ? errno : EIO;
	return e;
}

/* Write the trace-event JSON to f (opened on `out`), and close it. */
static int write_chrome_to(FILE *f, const struct evbuf *b, const char *out, int pid)
{
	struct trace_stats st;
	trace_chrome_write(f, b, pid, &st);
	int e = close_checked(f);
	if (e) {
		fprintf(stderr, "schedtop: %s: %s\n", out, strerror(e));
		return 1;
	}
	fprintf(stderr, "schedtop: wrote %s (%zu spans, %zu steal flows)\n", out, st.spans, st.flows);
	return 0;
}

/*
 * convert's -o: the trace is written to a new file beside OUT and renamed
 * over it once whole, so a write that fails (a full disk, the file size
 * limit) leaves OUT as it was and no partial file. It was opened with
 * truncation: the last trace at OUT was lost and a cut one that does not
 * parse was left in its place (found by a review). OUT a symlink: the file
 * it names is replaced. A device or a FIFO (-o /dev/stdout) is written in
 * place. As an open for writing would: a file we may not write is refused
 * and one that exists keeps its mode, and a file we may write in a
 * directory we may not is written in place (a rename replaced a read-only
 * file, gave it the default mode, and could not write into such a
 * directory at all).
 */
static int write_chrome(const struct evbuf *b, const char *out, int pid)
{
	struct stat sb;
	char real[PATH_MAX], tmp[PATH_MAX + 16];
	bool exists = !stat(out, &sb);
	if (exists && S_ISREG(sb.st_mode) && faccessat(AT_FDCWD, out, W_OK, AT_EACCESS)) {
		fprintf(stderr, "schedtop: %s: %s; nothing written\n", out, strerror(errno));
		return 1;
	}
	const char *dst = realpath(out, real) ? real : out;
	int fd = -1;
	if (exists && !S_ISREG(sb.st_mode))
		errno = 0; /* a device or a FIFO: in place */
	else if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", dst) >= sizeof(tmp))
		errno = ENAMETOOLONG;
	else
		fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0 && (errno == 0 || (exists && (errno == EACCES || errno == EPERM ||
						 errno == EROFS)))) {
		FILE *f = fopen(out, "we");
		if (!f) {
			fprintf(stderr, "schedtop: %s: %s\n", out, strerror(errno));
			return 1;
		}
		return write_chrome_to(f, b, out, pid);
	}
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "schedtop: %s: %s\n", out, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return 1;
	}
	/* mkostemp makes it 0600: OUT's own mode, or the one fopen would
	 * have given a new file */
	mode_t um = umask(0);
	umask(um);
	fchmod(fd, exists ? sb.st_mode & 0777 : 0666 & ~um);
	if (exists && !geteuid() && fchown(fd, sb.st_uid, sb.st_gid))
		fprintf(stderr, "schedtop: %s: keeping its owner: %s\n", out, strerror(errno));
	struct trace_stats st;
	trace_chrome_write(f, b, pid, &st);
	int e = close_checked(f);
	if (!e && rename(tmp, dst))
		e = errno;
	if (e) {
		unlink(tmp);
		fprintf(stderr, "schedtop: %s: %s; nothing written (%s is as it was)\n", out,
			strerror(e), out);
		return 1;
	}
	fprintf(stderr, "schedtop: wrote %s (%zu spans, %zu steal flows)\n", out, st.spans, st.flows);
	return 0;
}

static int cmd_convert(const char *in, const char *out)
{
	FILE *f = open_input(in);
	struct evbuf b = { 0 };
	size_t bad = 0;
	if (!f) {
		fprintf(stderr, "schedtop: %s: %s\n", in, strerror(errno));
		return 1;
	}
	/* -o the input itself (or a link to it): the trace was written over
	 * the events once they had been read, exit 0 (found by a review) */
	struct stat si, so;
	if (!fstat(fileno(f), &si) && !stat(out, &so) && si.st_dev == so.st_dev &&
	    si.st_ino == so.st_ino) {
		fprintf(stderr, "schedtop: convert: -o %s is the input file: writing it would destroy "
				"the events; name another file\n", out);
		fclose(f);
		return 2;
	}
	int r = trace_jsonl_read(f, &b, &bad);
	fclose(f);
	if (r) {
		fprintf(stderr, "schedtop: %s:%zu: not a schedtop event line\n", in, bad);
		evbuf_free(&b);
		return 1;
	}
	evbuf_sort(&b);
	int rc = write_chrome(&b, out, 0);
	trace_summary(stdout, &b);
	evbuf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------ diff */

/* stdout could not take what was printed (a full disk, /dev/full, a
 * reader that left): said on stderr, except for the reader that left
 * (EPIPE, as stdout_failed below). errno of the failed write is kept when
 * the flush itself has nothing left to fail on. */
static bool stdout_flush_failed(const char *what)
{
	int saved = errno, e;
	if (fflush(stdout))
		e = errno;
	else if (ferror(stdout))
		e = saved ? saved : EIO;
	else
		return false;
	if (e != EPIPE)
		fprintf(stderr, "schedtop: %s: writing to stdout: %s\n", what, strerror(e));
	return true;
}

/* rc, or 1 when stdout could not take what the command printed */
static int stdout_checked(const char *what, int rc)
{
	return stdout_flush_failed(what) && !rc ? 1 : rc;
}

/* Exit status as diff(1): 0 within the threshold, 1 past it, 2 trouble. */
static int cmd_diff(const char *a, const char *b, double fail_over, double min_change, bool json)
{
	struct diff_run *ra = malloc(sizeof(*ra)), *rb = malloc(sizeof(*rb));
	char err[512];
	int rc = 2;
	if (!ra || !rb)
		goto out;
	if (diff_load(a, ra, err, sizeof(err)) || diff_load(b, rb, err, sizeof(err))) {
		fprintf(stderr, "schedtop: diff: %s\n", err);
		goto out;
	}
	if (strcmp(ra->kind, rb->kind)) {
		fprintf(stderr, "schedtop: diff: %s is %s output, %s is %s output: nothing to "
				"compare\n", a, ra->kind, b, rb->kind);
		goto out;
	}
	rc = diff_print(stdout, a, ra, b, rb, fail_over, min_change, json) ? 1 : 0;
	/* `diff A B > /dev/full` (or a full disk) exited 0, nothing written
	 * and nothing said: a CI gate read "no regression" (a review) */
	if (stdout_flush_failed("diff"))
		rc = 2;
out:
	free(ra);
	free(rb);
	return rc;
}

/* ------------------------------------------------------ attach (BPF modes) */

struct target {
	int pid;
	pid_t child;      /* `-- CMD`: our child, started after attach */
	int go_fd;        /* write end: lets the child exec */
	int pidfd;
	bool wrapped;     /* CMD is a wrapper: pid is the process it started (launch.c) */
	struct launch launch;
};

/* `-- CMD` where CMD does not load libweft itself: follow it to the
 * process that does, held at its exec. 0, or 1 with the reason printed. */
static int follow_wrapper(char *const cmd[], struct target *t, char *lib, size_t n)
{
	char why[512];
	int r = launch_follow(cmd, &t->launch, lib, n, why, sizeof(why));
	if (r) {
		fprintf(stderr, "schedtop: %s\n", why);
		if (r == -ECHILD)
			fprintf(stderr, "schedtop: %s does not load libweft and started nothing that "
					"does (it holds no weft probes either)\n", cmd[0]);
		return 1;
	}
	t->wrapped = true;
	t->child = t->launch.child;
	t->pid = t->launch.target;
	/* It runs with the caller's ids (a set-user-ID program does not gain
	 * its privileges under ptrace); the rule for -p PID holds all the same. */
	if (priv_may_observe(t->pid, why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		launch_abort(&t->launch);
		t->child = 0;
		return 1;
	}
	char slib[PATH_MAX * 4];
	fprintf(stderr, "schedtop: %s started pid %d, which loads %s\n", cmd[0], t->pid,
		tx_safe(slib, sizeof(slib), lib));
	launch_detach_others(&t->launch);
	return 0;
}

static int start_child(char *const cmd[], struct target *t)
{
	int fds[2];
	if (pipe(fds))
		return -errno;
	pid_t c = fork();
	if (c < 0)
		return -errno;
	if (c == 0) {
		char x;
		close(fds[1]);
		/* The caller's own ids and no capabilities, whatever schedtop holds. */
		if (priv_child()) {
			perror("schedtop: dropping capabilities for the command");
			_exit(127);
		}
		/* Wait until the probes are attached (or schedtop gave up). */
		if (read(fds[0], &x, 1) != 1)
			_exit(127);
		close(fds[0]);
		launch_child_stdio();
		execvp(cmd[0], cmd);
		fprintf(stderr, "schedtop: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	t->child = c;
	t->pid = c;
	t->go_fd = fds[1];
	return 0;
}

static void release_child(struct target *t)
{
	if (t->go_fd >= 0) {
		if (write(t->go_fd, "g", 1) != 1)
			perror("schedtop: start child");
		close(t->go_fd);
		t->go_fd = -1;
	}
}

/* Sleep up to `ms`; true if the target exited meanwhile. */
static bool wait_target(struct target *t, int ms)
{
	if (t->pidfd >= 0) {
		struct pollfd p = { .fd = t->pidfd, .events = POLLIN };
		int r = poll(&p, 1, ms);
		if (r > 0)
			return true;
		return false;
	}
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	return mon_target_gone(t->pid);
}

/* mon_open failed: say why, as precisely as the step and the privileges
 * allow. Returns the exit code. */
static int attach_failed(const struct mon *m, int r)
{
	char why[1024];
	if (r != -EPERM && r != -EACCES)
		return r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL ? SCHEDTOP_EXIT_SKIP : 1;
	if (priv_explain(m->step, r, why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		return SCHEDTOP_EXIT_SKIP;
	}
	if (priv_is_root()) {
		/* root already: the verifier (EACCES) or a lockdown refused it */
		fprintf(stderr, "schedtop: the kernel refused the BPF programs as root (%s): "
				"the verifier rejected one, or lockdown forbids BPF; -v shows "
				"the verifier log\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "schedtop: the kernel refused BPF (%s) although schedtop held every "
			"capability it needs: lockdown, a security module (SELinux, AppArmor) "
			"or seccomp forbids it; -v shows libbpf's log\n", strerror(-r));
	return SCHEDTOP_EXIT_SKIP;
}

/* Check who may be watched, raise the capabilities, load and attach, drop
 * them for good. Returns 0 or the exit code to leave with. */
static int attach(struct mon *m, struct target *t, char *const cmd[], bool verbose, bool trace,
		  bool wait_lib)
{
	char why[1024], lib[PATH_MAX];
	if (priv_missing(why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		return SCHEDTOP_EXIT_SKIP;
	}
	int r;
	if (cmd) {
		r = mon_find_lib_for_cmd(cmd, lib, sizeof(lib));
		if (r) {
			if (follow_wrapper(cmd, t, lib, sizeof(lib)))
				return 1;
		} else if ((r = start_child(cmd, t))) {
			fprintf(stderr, "schedtop: fork: %s\n", strerror(-r));
			return 1;
		}
	} else {
		/* The pidfd pins the process we checked: if it exits before the
		 * attach is done, its pid may name someone else's by then. */
		t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
		if (t->pidfd < 0 && errno == ESRCH) {
			fprintf(stderr, "schedtop: no process %d\n", t->pid);
			return 1;
		}
		int tgid = tgid_of(t->pid);
		if (tgid > 0 && tgid != t->pid) {
			/* a thread id: it attached, with every kernel column 0
			 * (found by a review) */
			fprintf(stderr, "schedtop: %d is a thread of process %d: use -p %d\n",
				t->pid, tgid, tgid);
			return 1;
		}
		if (priv_may_observe(t->pid, why, sizeof(why))) {
			fprintf(stderr, "%s\n", why);
			return 1;
		}
		/* exited, its parent not having reaped it yet (a zombie): its
		 * maps read empty, and it was "process N does not use weft"
		 * (found by a review) */
		if (wait_target(t, 0)) {
			fprintf(stderr, "schedtop: process %d has exited (its parent has not reaped "
					"it yet)\n", t->pid);
			return 1;
		}
		r = mon_find_lib(t->pid, lib, sizeof(lib));
		if (r == -ENOENT && wait_lib) {
			/* it may dlopen libweft later: look again every 100 ms */
			fprintf(stderr, "schedtop: waiting for process %d to load libweft "
					"(Ctrl-C to stop)\n", t->pid);
			while (r == -ENOENT && !exiting) {
				if (wait_target(t, 100)) {
					fprintf(stderr, "schedtop: process %d exited before it loaded "
							"libweft\n", t->pid);
					return 1;
				}
				r = mon_find_lib(t->pid, lib, sizeof(lib));
			}
			if (r == -ENOENT) {
				fprintf(stderr, "schedtop: stopped waiting for process %d\n", t->pid);
				return 1;
			}
			char slib[PATH_MAX * 4];
			if (!r)
				fprintf(stderr, "schedtop: process %d loaded %s\n", t->pid,
					tx_safe(slib, sizeof(slib), lib));
		}
		if (r == -ESRCH) {
			fprintf(stderr, "schedtop: no process %d\n", t->pid);
			return 1;
		}
		if (r == -EACCES || r == -EPERM) {
			fprintf(stderr, "schedtop: process %d exists, but its /proc/%d/maps may not be "
					"read: %s\n", t->pid, t->pid, strerror(-r));
			return 1;
		}
		if (r) {
			fprintf(stderr, "schedtop: process %d does not use weft (no libweft mapped, "
					"no weft probes in its executable)\n", t->pid);
			return 1;
		}
	}
	r = priv_raise();
	if (!r)
		r = mon_open(m, t->pid, lib, verbose, trace);
	else
		fprintf(stderr, "schedtop: cannot raise its capabilities: %s\n", strerror(-r));
	int code = r ? attach_failed(m, r) : 0;
	if (!r && t->pidfd >= 0 && wait_target(t, 0)) {
		fprintf(stderr, "schedtop: process %d exited while schedtop attached\n", t->pid);
		code = 1;
	}
	if (priv_drop(why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		code = 1;
	}
	if (code) {
		if (!r)
			mon_close(m);
		if (t->wrapped) {
			launch_abort(&t->launch); /* the program never ran a probe */
			t->child = 0;
		} else if (t->child > 0) {
			close(t->go_fd); /* the child exits 127 without running CMD */
			t->go_fd = -1;
			waitpid(t->child, NULL, 0);
			t->child = 0;
		}
		return code;
	}
	if (m->stats_err)
		fprintf(stderr, "schedtop: no BPF run-time figures (BPF_ENABLE_STATS: %s; it needs "
				"CAP_SYS_ADMIN): the overhead line shows 0 ns per run\n",
			strerror(-m->stats_err));
	if (t->pidfd < 0)
		t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (t->wrapped)
		launch_release(&t->launch);
	else if (t->child > 0)
		release_child(t);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep one interval (Ctrl-C ends it early); true if the target exited.
 * With `st`, sample the cores' current polls every 50 ms meanwhile. */
static bool wait_interval(struct target *t, double interval, struct stall *st)
{
	bool gone = false;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long ms = (long)(interval * 1000);
	while (!exiting && !gone) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= ms)
			break;
		long slice = st ? 50 : 200;
		gone = wait_target(t, (int)(ms - el < slice ? ms - el : slice));
		if (st)
			stall_sample(st, now_ns());
	}
	return gone;
}

/* The status is our child's: CMD, which with a wrapper (sh -c) is not the
 * process watched (t->pid) - its status was told as the watched one's
 * (found by a review). Returns the status to pass on as schedtop's own, as
 * time(1) and strace do: CMD's exit status, or 128 + the signal that
 * killed it; 0 when it succeeded or was not reaped. `stopped`: schedtop
 * stopped it (-n, Ctrl-C), which is no news: "killed by signal 15" after
 * every `-n 5` read as CMD failing (found by a review). */
static int reap(struct target *t, const char *cmd, bool stopped)
{
	int st = 0;
	bool done = false;
	pid_t who = t->child;
	if (t->wrapped && t->launch.child_reaped) { /* reaped while following */
		st = t->launch.child_status;
		who = t->launch.child;
		done = true;
	} else if (t->child > 0 && waitpid(t->child, &st, 0) == t->child) {
		done = true;
	}
	if (done && stopped) {
		t->child = 0;
	} else if (done) {
		char name[256];
		tx_safe(name, sizeof(name), cmd);
		t->child = 0;
		if (WIFEXITED(st) && WEXITSTATUS(st))
			fprintf(stderr, "schedtop: %s (pid %d) exited with status %d\n", name,
				(int)who, WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			fprintf(stderr, "schedtop: %s (pid %d) killed by signal %d\n", name, (int)who,
				WTERMSIG(st));
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
	}
	return 0;
}

/* stdout could not take the interval's report: the reader went away
 * (`schedtop --batch --json | head -n 3`; SIGPIPE is ignored, so the
 * writes failed with EPIPE and schedtop ran on, attached, until the
 * target exited: found by a review), or a disk filled. The run ends, exit
 * 1; said on stderr unless it is the pipe's reader that left. */
static bool stdout_failed(void)
{
	if (!ferror(stdout))
		return false;
	int e = errno;
	if (e != EPIPE)
		fprintf(stderr, "schedtop: writing the report to stdout: %s\n", strerror(e));
	return true;
}

/* --record's file: where it is, and how much of it is whole snapshots */
struct rec_file {
	FILE *f;
	const char *path;
	off_t whole;
	bool failed;
};

/*
 * Append a snapshot to the --record file. A write that fails (a full disk,
 * the file size limit) ends the recording: said with the reason, the file
 * cut back to the snapshots written whole, so that `schedtop report` reads
 * them, and the run exits 1. The failure was silent: snap_write does not
 * look at its writes and the file was closed unchecked, so a run with a
 * full disk exited 0 leaving a snapshot cut short, "malformed snapshot 6"
 * to report (found by a review).
 */
static void rec_write(struct rec_file *r, const struct snap *s, unsigned seq)
{
	if (!r->f || r->failed)
		return;
	errno = 0;
	snap_write(r->f, s, seq); /* it ends with an fflush */
	if (!ferror(r->f)) {
		r->whole = ftello(r->f);
		return;
	}
	int e = errno ? errno : EIO;
	r->failed = true;
	fprintf(stderr, "schedtop: %s: %s: the recording stops, the file keeps its first %u "
			"snapshot%s\n", r->path, strerror(e), seq, seq == 1 ? "" : "s");
	/* closed first: what its buffer still held would go in after the cut */
	int fd = dup(fileno(r->f));
	fclose(r->f);
	r->f = NULL;
	if (fd < 0 || ftruncate(fd, r->whole))
		fprintf(stderr, "schedtop: %s: cutting it back to its whole snapshots: %s\n", r->path,
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

static int run_batch(struct mon *m, struct stall *st, struct target *t, double interval,
		     long count, bool json, struct rec_file *rec)
{
	struct snap *prev = calloc(1, sizeof(*prev)), *cur = calloc(1, sizeof(*cur));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	unsigned seq = 0;
	int rc = 0;
	if (!prev || !cur || !iv) {
		free(prev); free(cur); free(iv);
		return 1;
	}
	stall_sample(st, now_ns());
	stall_sync_slots(st, m);
	mon_snapshot(m, prev);
	/* the polls read from memory at the attach: the first interval counts
	 * a core's polls from them (it read 0 polls/s beside the parks: found
	 * by a review) */
	stall_fill_snap(st, prev);
	rec_write(rec, prev, seq++);
	if (!json) {
		char slib[PATH_MAX * 4];
		printf("Attached to pid %d (%s). Ctrl-C to stop.\n", t->pid,
		       tx_safe(slib, sizeof(slib), m->lib));
	}
	fflush(stdout);
	for (long n = 1;; n++) { /* a signal still ends with a final report */
		bool gone = wait_interval(t, interval, st);
		stall_sync_slots(st, m);
		mon_snapshot(m, cur);
		stall_fill_snap(st, cur);
		rec_write(rec, cur, seq++);
		interval_compute(iv, prev, cur, &ls);
		stall_lint(st, iv, now_ns());
		stall_blocking_lint(st, iv, prev, cur);
		stall_latency(st, iv);
		const char *end = gone ? SCHEDTOP_END_EXITED : exiting ? SCHEDTOP_END_SIGNAL
				: count && n >= count ? SCHEDTOP_END_COUNT : NULL;
		bool last = end != NULL;
		if (json) {
			interval_print_json(stdout, iv, t->pid, end);
		} else {
			if (gone)
				printf("--- target %d exited; final interval:\n", t->pid);
			interval_print_text(stdout, iv, t->pid);
			if (last) {
				/* POLLS is the core's own counter (since the runtime
				 * started); the others count from the attach */
				/* several runtimes: each has its W0, so the rows
				 * name the runtime as the interval's rows do */
				bool rts = iv->runtimes > 1;
				printf("--- totals: POLLS since the runtime started, the others since "
				       "attach\n%s%-3s %10s %10s %10s %10s %8s %8s %8s\n",
				       rts ? "RT             " : "", "W", "POLLS", "STEALS_IN",
				       "TASKS_IN", "STEALS_OUT", "PARKS", "NOOP", "OVERFL");
				for (unsigned i = 0; i < iv->workers; i++) {
					const struct worker_row *r = &iv->row[iv->order[i]];
					if (rts)
						printf("0x%-12llx ", (unsigned long long)r->rt);
					printf("%-3u %10llu %10llu %10llu %10llu %8llu %8llu %8llu\n", r->core,
					       (unsigned long long)r->tot_polls,
					       (unsigned long long)r->tot_steals_in,
					       (unsigned long long)r->tot_tasks_in,
					       (unsigned long long)r->tot_steals_out,
					       (unsigned long long)r->tot_parks,
					       (unsigned long long)r->tot_noop,
					       (unsigned long long)r->tot_overflows);
				}
			} else {
				printf("\n");
			}
		}
		fflush(stdout);
		struct snap *x = prev;
		prev = cur;
		cur = x;
		if (stdout_failed()) {
			rc = 1;
			break;
		}
		if (last)
			break;
	}
	free(prev);
	free(cur);
	free(iv);
	return rec->failed ? 1 : rc;
}

struct trace_ctx {
	struct evbuf b;
	int err;
};

static int on_event(void *ctx, const struct weft_bpf_event *e)
{
	struct trace_ctx *tc = ctx;
	if (evbuf_push(&tc->b, e)) {
		tc->err = -ENOMEM;
		return -ENOMEM;
	}
	return 0;
}

/* trace's three output files, opened before anything is attached: a
 * path that cannot be written fails at once, not after the whole
 * recording (`-o /nonexistent/t.json -d 60` lost the minute: found by a
 * review). */
struct trace_out {
	char json[PATH_MAX], jsonl[PATH_MAX], latency[PATH_MAX];
	FILE *fjson, *fjsonl, *flatency;
	bool created[3]; /* made by trace_out_open: removed on a discard */
	/* -o is not a regular file (/dev/stdout, a pipe, a FIFO) or is
	 * stdout itself: the JSON is written in place, never truncated, and
	 * the .jsonl and .latency.json beside it are not made (they would
	 * be /dev/stdout.jsonl). `trace -o /dev/stdout | ...` exited 1 (the
	 * truncation of a pipe failed), made two files in /dev and mixed
	 * the summary into the JSON (found by a review). */
	bool stream;
	FILE *summary; /* stdout, or stderr when the JSON goes to stdout */
};

/*
 * An output file opened before the attach, for writing, without
 * truncating it: a run that fails before it has anything to write (no such
 * process, not a weft program, the target gone during the warmup) leaves a
 * file that was there as it was - `trace -p WRONG -o run.json` deleted the
 * last run's run.json and run.jsonl, `--record snaps.jsonl` emptied
 * snaps.jsonl (found by a review). *created: the file is new (removed again
 * on such a failure); the caller truncates an old one (out_begin) when it
 * writes. NULL with errno set when it cannot be written.
 */
static FILE *out_open(const char *path, bool *created)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	*created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666); /* not truncated */
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		if (*created)
			unlink(path);
		errno = e;
	}
	return f;
}

/* What was in the file goes: the run has its output to write. */
static int out_begin(FILE *f, const char *path)
{
	if (ftruncate(fileno(f), 0)) {
		fprintf(stderr, "schedtop: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* discard: nothing was written - the files trace_out_open made are removed,
 * the ones that were there already are left as they were. */
static void trace_out_close(struct trace_out *o, bool discard)
{
	FILE **f[3] = { &o->fjson, &o->fjsonl, &o->flatency };
	const char *p[3] = { o->json, o->jsonl, o->latency };
	for (int i = 0; i < 3; i++) {
		if (!*f[i])
			continue;
		fclose(*f[i]);
		*f[i] = NULL;
		if (discard && o->created[i])
			unlink(p[i]);
	}
}

static int trace_out_open(struct trace_out *o, const char *out)
{
	memset(o, 0, sizeof(*o));
	size_t l = strlen(out);
	snprintf(o->json, sizeof(o->json), "%s", out);
	jsonl_name(out, o->jsonl, sizeof(o->jsonl));
	if (l > 5 && !strcmp(out + l - 5, ".json"))
		snprintf(o->latency, sizeof(o->latency), "%.*s.latency.json", (int)(l - 5), out);
	else
		snprintf(o->latency, sizeof(o->latency), "%s.latency.json", out);
	FILE **f[3] = { &o->fjson, &o->fjsonl, &o->flatency };
	const char *p[3] = { o->json, o->jsonl, o->latency };
	o->summary = stdout;
	for (int i = 0; i < 3; i++) {
		if (i > 0 && o->stream)
			break;
		if (!(*f[i] = out_open(p[i], &o->created[i]))) {
			fprintf(stderr, "schedtop: %s: %s\n", p[i], strerror(errno));
			trace_out_close(o, true);
			return 1;
		}
		struct stat fs, so;
		if (i == 0 && !fstat(fileno(o->fjson), &fs)) {
			bool is_stdout = !fstat(STDOUT_FILENO, &so) && so.st_dev == fs.st_dev &&
					 so.st_ino == fs.st_ino;
			o->stream = !S_ISREG(fs.st_mode) || is_stdout;
			if (is_stdout)
				o->summary = stderr;
			if (o->stream)
				fprintf(stderr, "schedtop: %s is %s: only the trace-event JSON goes "
						"there (no .jsonl or .latency.json beside it)%s\n", out,
					is_stdout ? "stdout" : "not a regular file",
					is_stdout ? "; the summary goes to stderr" : "");
		}
	}
	return 0;
}

/* A latency percentile in the trace summary: "8192 ns", or in the open
 * top bin of the runtime's histograms (hist_pct) ">=2147483648 ns". */
static void lat_bound(char *b, size_t n, uint64_t ns)
{
	if (ns == HIST_OPEN)
		snprintf(b, n, ">=%llu ns", 1ull << (WEFT_PROBE_LAT_BINS - 1));
	else
		snprintf(b, n, "%llu ns", (unsigned long long)ns);
}

/* The trace's task latency (runtime-kept histograms over the traced
 * span): printed with the summary and written to FILE.latency.json (f,
 * opened on `path`; closed here; NULL: not written). */
static int trace_latency(const struct interval *iv, FILE *f, const char *path, FILE *sum)
{
	if (f)
		fprintf(f, "{\"schema\":\"schedtop-latency/1\",\"latency\":[");
	fprintf(sum, "task latency (runtime histograms, 1 in %d sampled; bucket upper bounds):\n",
	       WEFT_PROBE_LAT_SAMPLE);
	for (unsigned k = 0; k < iv->nlat; k++) {
		const struct rt_lat *r = &iv->lat[k];
		if (f)
			fprintf(f, "%s{\"rt\":\"0x%llx\",\"workers\":%u,\"polls_timed\":%llu,"
			   "\"wakes_timed\":%llu,\"poll_p50_ns\":%llu,\"poll_p99_ns\":%llu,"
			   "\"wake_p50_ns\":%llu,\"wake_p99_ns\":%llu,\"ended\":%u}",
			k ? "," : "", (unsigned long long)r->rt, r->workers,
			(unsigned long long)r->polls_timed, (unsigned long long)r->wakes_timed,
			(unsigned long long)r->poll_p50_ns, (unsigned long long)r->poll_p99_ns,
			(unsigned long long)r->wake_p50_ns, (unsigned long long)r->wake_p99_ns,
			r->ended);
		char p[4][32], who[64];
		lat_bound(p[0], sizeof(p[0]), r->poll_p50_ns);
		lat_bound(p[1], sizeof(p[1]), r->poll_p99_ns);
		lat_bound(p[2], sizeof(p[2]), r->wake_p50_ns);
		lat_bound(p[3], sizeof(p[3]), r->wake_p99_ns);
		if (r->ended > 1)
			snprintf(who, sizeof(who), "%u runtimes that ended during the trace",
				 r->ended);
		else
			snprintf(who, sizeof(who), "runtime 0x%llx%s", (unsigned long long)r->rt,
				 r->ended ? " (ended during the trace)" : "");
		fprintf(sum, "  %s (%u workers): poll p50 %s p99 %s; wake->poll p50 "
		       "%s p99 %s (%llu polls, %llu wakes timed)\n",
		       who, r->workers, p[0], p[1], p[2], p[3],
		       (unsigned long long)r->polls_timed, (unsigned long long)r->wakes_timed);
	}
	if (!iv->nlat)
		fprintf(sum, "  none: no runtime listed in the target's weft_probe_registry\n");
	if (!f)
		return 0;
	fprintf(f, "]}\n");
	if (fclose(f)) {
		fprintf(stderr, "schedtop: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "schedtop: wrote %s\n", path);
	return 0;
}

/*
 * A worker_seen event (bpf/weft.h) for every core schedtop knows now - the
 * BPF side's slots and the cores the target's registry lists - with its
 * thread and state. Taken before the ring's first event and after its
 * last: a worker asleep in its park all through the trace fires no probe,
 * and the trace and its summary had no track or row for it, where the
 * live view names it (found by a review).
 */
static int trace_seen(struct mon *m, struct stall *st, struct evbuf *b)
{
	struct snap *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	stall_sync_slots(st, m);
	mon_snapshot(m, s);
	stall_fill_snap(st, s);
	uint64_t now = now_ns();
	unsigned n = snap_ncores(s);
	int r = 0;
	for (unsigned k = 0; k < n && !r; k++) {
		const struct weft_bpf_core *c = &s->cores[k];
		if (!c->rt_id)
			continue;
		uint64_t ts;
		struct weft_bpf_event e = { .ts = now, .rt_id = c->rt_id, .core = (int)c->core,
					    .type = WEFT_EV_WORKER_SEEN, .tid = c->tid };
		e.a0 = snap_state(s, k, &ts);
		r = evbuf_push(b, &e);
	}
	free(s);
	return r;
}

static int run_trace(struct mon *m, struct stall *st, struct target *t, double warmup,
		     double duration, struct trace_out *o)
{
	struct trace_ctx tc = { .err = 0 };
	bool gone = false;
	int rc = 0;
	struct interval *lat = calloc(1, sizeof(*lat));
	if (!lat) {
		trace_out_close(o, true);
		return 1;
	}
	if (warmup > 0) {
		fprintf(stderr, "schedtop: warming up %.1f s\n", warmup);
		gone = wait_interval(t, warmup, NULL); /* (int)(warmup * 1000) overflowed */
	}
	if (gone) {
		/* it said "wrote t.jsonl (0 events)" and exited 0 (found by a
		 * review) */
		fprintf(stderr, "schedtop: target %d exited during the warmup (%.1f s): nothing "
				"traced, no file written\n", t->pid, warmup);
		trace_out_close(o, true);
		free(lat);
		return 1;
	}
	stall_sample(st, now_ns());
	stall_latency(st, lat); /* the baseline */
	if (trace_seen(m, st, &tc.b))
		tc.err = -ENOMEM;
	int r = mon_trace_start(m, on_event, &tc);
	if (r) {
		fprintf(stderr, "schedtop: ring buffer: %s\n", strerror(-r));
		trace_out_close(o, true);
		free(lat);
		return 1;
	}
	fprintf(stderr, "schedtop: tracing pid %d for %.1f s\n", t->pid, duration);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!exiting && !gone && !tc.err) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (el >= duration)
			break;
		r = mon_trace_poll(m, 100);
		stall_sample(st, now_ns());
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "schedtop: ring buffer poll: %s\n", strerror(-r));
			rc = 1;
			break;
		}
		gone = mon_target_gone(t->pid);
	}
	mon_trace_stop(m);
	stall_sample(st, now_ns());
	stall_latency(st, lat);
	while (mon_trace_poll(m, 0) > 0)
		;
	if (!tc.err && trace_seen(m, st, &tc.b))
		tc.err = -ENOMEM;
	uint64_t drops = 0;
	struct snap *s = calloc(1, sizeof(*s));
	if (s) {
		mon_snapshot(m, s);
		drops = s->drops;
		free(s);
	}
	if (tc.err) {
		fprintf(stderr, "schedtop: out of memory after %zu events\n", tc.b.n);
		rc = 1;
	}
	evbuf_sort(&tc.b);
	if (!o->stream && (out_begin(o->fjson, o->json) || out_begin(o->fjsonl, o->jsonl) ||
			   out_begin(o->flatency, o->latency)))
		rc = 1;
	if (o->fjsonl) {
		for (size_t i = 0; i < tc.b.n; i++)
			trace_jsonl_write(o->fjsonl, &tc.b.ev[i]);
		int ce = fclose(o->fjsonl);
		o->fjsonl = NULL;
		if (ce) {
			fprintf(stderr, "schedtop: %s: %s\n", o->jsonl, strerror(errno));
			rc = 1;
		} else {
			fprintf(stderr, "schedtop: wrote %s (%zu events)\n", o->jsonl, tc.b.n);
		}
	}
	FILE *fj = o->fjson;
	o->fjson = NULL;
	if (write_chrome_to(fj, &tc.b, o->json, t->pid))
		rc = 1;
	FILE *sum = o->summary;
	if (gone)
		fprintf(sum, "target %d exited during the trace\n", t->pid);
	trace_summary(sum, &tc.b);
	fprintf(sum, "ring buffer drops: %llu%s\n", (unsigned long long)drops,
		drops ? " (events lost: the trace is incomplete)" : "");
	FILE *fl = o->flatency;
	o->flatency = NULL;
	if (trace_latency(lat, fl, o->latency, sum))
		rc = 1;
	free(lat);
	evbuf_free(&tc.b);
	return rc;
}

/* --------------------------------------------------------------- no BPF */

/* The --no-bpf view on a terminal: each line cut to the terminal's width
 * and the whole to its height but one. Its rows are 97 columns: at 80x24
 * every row wrapped onto a second line, and with a dozen workers the
 * screen scrolled the header away (found by a review). */
static void tty_print(const char *text, size_t len)
{
	struct winsize ws;
	size_t cols = 80, rows = 24;
	if (!ioctl(1, TIOCGWINSZ, &ws) && ws.ws_col && ws.ws_row) {
		cols = ws.ws_col;
		rows = ws.ws_row;
	}
	const char *p = text, *end = text + len;
	for (size_t line = 0; p < end && line + 1 < rows; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p), i = 0;
		/* characters, not bytes: a thread's name may hold UTF-8 */
		for (size_t c = 0; i < ll && c < cols; c++) {
			size_t k = jw_utf8_len(p + i);
			i += k ? k : 1;
		}
		if (i > ll)
			i = ll;
		fwrite(p, 1, i, stdout);
		fputc('\n', stdout);
		p += ll + (nl ? 1 : 0);
	}
}

static int run_fallback(struct target *t, char *const cmd[], const char *prefix, double interval,
			long count, bool batch, bool json)
{
	char why[1024], bpf_why[320];
	if (priv_missing(why, sizeof(why)))
		snprintf(bpf_why, sizeof(bpf_why),
			 "steals/parks/polls/depths need BPF: run as root or grant "
			 "cap_bpf,cap_perfmon,cap_sys_admin (sudo setcap "
			 "cap_bpf,cap_perfmon,cap_sys_admin=p \"$(command -v schedtop)\")");
	else
		snprintf(bpf_why, sizeof(bpf_why),
			 "BPF not used (--no-bpf): run without --no-bpf for these columns");
	if (cmd) {
		char lib[PATH_MAX];
		if (mon_find_lib_for_cmd(cmd, lib, sizeof(lib)) == 0) {
			int r = start_child(cmd, t);
			if (r) {
				fprintf(stderr, "schedtop: fork: %s\n", strerror(-r));
				return 1;
			}
			release_child(t);
		} else {
			/* a wrapper: watch the process it starts with libweft */
			if (follow_wrapper(cmd, t, lib, sizeof(lib)))
				return 1;
			launch_release(&t->launch);
		}
	} else {
		/* As attach() refuses it: /proc/TID/task lists the whole
		 * group, so a thread id was watched as "pid TID" and the watch
		 * ended as "target exited" when that thread did, the process
		 * running on (found by a review of OBSERVABILITY.md) */
		int tgid = tgid_of(t->pid);
		if (tgid > 0 && tgid != t->pid) {
			fprintf(stderr, "schedtop: %d is a thread of process %d: use -p %d\n",
				t->pid, tgid, tgid);
			return 1;
		}
	}
	struct fallback *fb = malloc(sizeof(*fb));
	if (!fb)
		return 1;
	int r = fb_open(fb, t->pid, prefix, bpf_why);
	if (!r)
		r = fb_sample(fb);
	if (r == -ESRCH) {
		fprintf(stderr, "schedtop: no process %d\n", t->pid);
		free(fb);
		return 1;
	}
	if (r) {
		fprintf(stderr, "schedtop: process %d exists, but /proc/%d/task may not be read: %s\n",
			t->pid, t->pid, strerror(-r));
		free(fb);
		return 1;
	}
	t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (!cmd && wait_target(t, 0)) {
		/* a zombie: its /proc/PID/task lists nothing, and this printed
		 * one empty report and exited 0 where the BPF path refuses it */
		fprintf(stderr, "schedtop: process %d has exited (its parent has not reaped "
				"it yet)\n", t->pid);
		fb_close(fb);
		free(fb);
		return 1;
	}
	bool tty = !batch && !json && isatty(1); /* main checked its clear (tui_check_clear) */
	int rc = 0;
	if (!json)
		printf("Watching pid %d without BPF (perf_event_open + /proc). Ctrl-C to stop.\n",
		       t->pid);
	fflush(stdout);
	for (long n = 1;; n++) { /* a signal still ends with a final report */
		bool gone = wait_interval(t, interval, NULL);
		/* A gone process has no /proc/PID/task: the last values stay. */
		if (fb_sample(fb))
			gone = true;
		const char *end = gone ? SCHEDTOP_END_EXITED : exiting ? SCHEDTOP_END_SIGNAL
				: count && n >= count ? SCHEDTOP_END_COUNT : NULL;
		bool last = end != NULL;
		if (json) {
			fb_print_json(stdout, fb, end);
		} else {
			char *text = NULL;
			size_t len = 0;
			FILE *mf = tty ? open_memstream(&text, &len) : NULL;
			FILE *o = mf ? mf : stdout;
			if (tty)
				tui_clear();
			if (gone)
				fprintf(o, "--- target %d exited; final interval:\n", t->pid);
			fb_print_text(o, fb);
			if (mf && !fclose(mf))
				tty_print(text, len);
			free(text);
			if (!tty && !last)
				printf("\n");
		}
		fflush(stdout);
		if (stdout_failed()) {
			rc = 1;
			break;
		}
		if (last)
			break;
	}
	fb_close(fb);
	free(fb);
	return rc;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	struct schedtop_args a;
	int pr = schedtop_parse_args(argc, argv, &a, stderr);
	if (pr)
		return pr;
	if (a.help) {
		fputs(schedtop_usage, stdout);
		return stdout_flush_failed("--help") ? 1 : 0;
	}
	char why[1024];
	if (priv_init(why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	/* Only the BPF load and attach use capabilities: an ordinary user's
	 * copy gives them up at once for everything else. */
	bool bpf_mode = (a.mode == M_TOP || a.mode == M_TRACE || a.mode == M_METRICS ||
			 a.mode == M_RECORD) && !a.no_bpf;
	if (!bpf_mode && !priv_is_root() && priv_drop(why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	switch (a.mode) {
	/* what they print on stdout is their result: a stdout that takes
	 * nothing (`report F > /dev/full`) exited 0, silent (a review) */
	case M_LIST: return stdout_checked("list", cmd_list());
	case M_REPORT: return stdout_checked("report", cmd_report(a.pos[0], a.json));
	case M_CONVERT: return stdout_checked("convert", cmd_convert(a.pos[0], a.out));
	case M_DIFF: return cmd_diff(a.pos[0], a.pos[1], a.fail_over, a.min_change, a.json);
	case M_TRACE: case M_TOP: case M_METRICS: case M_RECORD: break;
	}
	enum schedtop_mode mode = a.mode;
	char **cmd = a.cmd;
	long pid = a.pid, count = a.count;
	bool batch = a.batch, json = a.json, verbose = a.verbose, no_bpf = a.no_bpf;
	const char *prefix = a.prefix, *out = a.out, *record = a.record;
	double interval = a.interval, duration = a.duration, warmup = a.warmup;

	FILE *rec = NULL;
	bool rec_created = false;
	if (record && !(rec = out_open(record, &rec_created))) {
		fprintf(stderr, "schedtop: %s: %s\n", record, strerror(errno));
		return 1;
	}
	if (mode == M_RECORD)
		record_catch_usr1(); /* first: before SIGINT's, which a test waits for */
	struct sigaction sa = { .sa_handler = on_sig }; /* no SA_RESTART: waits end early */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* The terminal hung up (ssh dropped, tmux killed): end as on SIGTERM -
	 * detach, stop CMD, say where its log is - instead of dying where
	 * it stands. Not when started ignoring it (nohup). */
	struct sigaction old_hup;
	if (!sigaction(SIGHUP, NULL, &old_hup) && old_hup.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct mon m;
	struct target t = { .pid = (int)pid, .child = 0, .go_fd = -1, .pidfd = -1 };
	int rc, lfd = -1;
	char listen_at[300] = "";
	if (mode == M_METRICS && a.listen) {
		/* bound as the user, before anything is loaded: a port in use
		 * fails here, with nothing attached */
		lfd = metrics_listen(a.listen, listen_at, sizeof(listen_at), why, sizeof(why));
		if (lfd < 0) {
			fprintf(stderr, "schedtop: %s\n", why);
			return 1;
		}
	}
	if (mode == M_TOP && !batch && !no_bpf && tui_check_terminal(why, sizeof(why))) {
		/* before the command starts: a live view that cannot run left
		 * it running on its own (TERM=bogus: found by a review) */
		fprintf(stderr, "%s\n", why);
		if (rec)
			fclose(rec);
		return 1;
	}
	if (mode == M_TOP && !batch && no_bpf && !json && isatty(1) &&
	    tui_check_clear(why, sizeof(why))) {
		fprintf(stderr, "%s\n", why); /* as the live view with BPF: before anything starts */
		if (rec)
			fclose(rec);
		return 1;
	}
	/* The live view owns the terminal: the command's output would write
	 * over it for good (found by a review). Its stdout and stderr go to a
	 * log file, named when schedtop ends; its stdin is /dev/null (keys are
	 * the view's). */
	char cmd_log[PATH_MAX] = "";
	int log_fd = -1, null_fd = -1;
	if (mode == M_TOP && cmd && !batch && isatty(1)) {
		const char *tmp = getenv("TMPDIR");
		snprintf(cmd_log, sizeof(cmd_log), "%s/schedtop-cmd-XXXXXX.log",
			 tmp && tmp[0] == '/' ? tmp : "/tmp");
		log_fd = mkostemps(cmd_log, 4, O_CLOEXEC);
		null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (log_fd < 0) {
			fprintf(stderr, "schedtop: %s: %s (the command's output goes there in "
					"the live view; use --batch, or set TMPDIR)\n", cmd_log,
				strerror(errno));
			if (rec)
				fclose(rec);
			return 1;
		}
		launch_set_child_stdio(null_fd, log_fd);
	}
	if (no_bpf) {
		rc = run_fallback(&t, cmd, prefix, interval, count, batch, json);
		goto done;
	}
	struct trace_out tout;
	if (mode == M_TRACE && trace_out_open(&tout, out)) {
		rc = 1;
		if (rec)
			fclose(rec);
		goto log;
	}
	bool rec_dir_created = false;
	if (mode == M_RECORD && record_dir_check(out, &rec_dir_created)) {
		rc = 1;
		goto log;
	}
	rc = attach(&m, &t, cmd, verbose, mode == M_TRACE || mode == M_RECORD, a.wait_lib);
	if (rc) {
		if (rec_dir_created)
			rmdir(out); /* a run that attached nothing leaves nothing */
		if (mode == M_TRACE)
			trace_out_close(&tout, true);
		if (rec) {
			fclose(rec);
			if (rec_created)
				unlink(record);
		}
		goto log;
	}
	if (rec && out_begin(rec, record)) {
		rc = 1;
		mon_close(&m);
		fclose(rec);
		rec = NULL;
		goto done;
	}
	struct stall st;
	stall_init(&st, t.pid, (uint64_t)LINT_LONG_POLL_MS * 1000000ull);
	if (mode == M_RECORD) {
		struct rec_opts ro = { .last_s = a.last, .interval = interval, .dir = out,
				       .on = rec_parse_on(a.on), .max_events = (size_t)a.max_events };
		rc = record_run(&m, &st, t.pid, t.pidfd, &ro, &exiting);
	} else if (mode == M_METRICS && lfd >= 0) {
		fprintf(stderr, "schedtop: serving http://%s/metrics for pid %d\n", listen_at, t.pid);
		rc = metrics_serve(&m, &st, lfd, t.pid, t.pidfd, &exiting);
	} else if (mode == M_METRICS) {
		rc = metrics_once(&m, &st, t.pid, t.pidfd, interval, &exiting);
	} else if (mode == M_TRACE)
		rc = run_trace(&m, &st, &t, warmup, duration, &tout);
	else if (batch) {
		struct rec_file rf = { .f = rec, .path = record };
		rc = run_batch(&m, &st, &t, interval, count, json, &rf);
		rec = rf.f; /* NULL when a write failed: closed */
	} else
		rc = tui_run(&m, &st, t.pid, interval, count, t.pidfd, &exiting);
	stall_fini(&st);
	mon_close(&m);
done:
	if (t.child > 0) {
		bool stopped = exiting; /* a Ctrl-C reaches CMD too: ours */
		if (!mon_target_gone(t.pid)) {
			/* we stopped first (count, Ctrl-C): the program, and the
			 * wrapper that started it */
			kill(t.pid, SIGTERM);
			if (t.wrapped && t.child != t.pid)
				kill(t.child, SIGTERM);
			stopped = true;
		}
		/* CMD that ended on its own with a failure fails the run, as
		 * under time(1) or strace: `schedtop trace -- ./loadtest` in a
		 * CI job exited 0 whatever the load test said (a listed limit) */
		int cs = reap(&t, cmd[0], stopped);
		if (!rc && !stopped)
			rc = cs;
	}
	if (t.pidfd >= 0)
		close(t.pidfd);
	if (lfd >= 0)
		close(lfd);
	if (rec && fclose(rec)) {
		fprintf(stderr, "schedtop: %s: %s\n", record, strerror(errno));
		if (!rc)
			rc = 1;
	}
log:
	if (log_fd >= 0) {
		struct stat sb;
		char slog[PATH_MAX * 4];
		if (!fstat(log_fd, &sb) && sb.st_size == 0)
			unlink(cmd_log); /* it wrote nothing */
		else
			fprintf(stderr, "schedtop: the output of %s is in %s\n", cmd[0],
				tx_safe(slog, sizeof(slog), cmd_log));
		close(log_fd);
	}
	if (null_fd >= 0)
		close(null_fd);
	return rc;
}
