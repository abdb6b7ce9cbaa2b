/*
 * mon.c - load bpf/weft.bpf.c (skeleton weft.skel.h) and attach it to one
 * process; see mon.h. libbpf-tools shape: open, set rodata, load, attach,
 * read; every error path goes through mon_close().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "elfnote.h"
#include "launch.h"
#include "mon.h"
#include "priv.h"
#include "weft.skel.h"

/* Does the file hold stapsdt notes of provider weft? Its note sections
 * only (elfnote.c): reading every byte took 45 s for a 20 GiB sparse
 * executable in `schedtop list` (a review). */
bool mon_file_has_weft_notes(const char *path)
{
	return elf_has_weft_notes(path);
}

/* Is `path` (here) the file with this device and inode? */
static bool same_file(const char *path, unsigned dmaj, unsigned dmin, unsigned long ino)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_ino == ino && major(st.st_dev) == dmaj &&
	       minor(st.st_dev) == dmin;
}

/*
 * The file a mapping of the target shows, as a path that names that file
 * here: the target's own path when it does (the usual case); else the
 * same path under /proc/PID/root (a target in another mount namespace:
 * the probes went on the host's file of that name, and every figure read
 * 0 - found by a review); else the mapping itself in /proc/PID/map_files
 * (a library deleted since, by an upgrade). The path as shown otherwise.
 */
static void mapped_path(int pid, const char *range, unsigned dmaj, unsigned dmin,
			unsigned long ino, char *path, char *out, size_t n)
{
	static const char del[] = " (deleted)";
	size_t pl = strlen(path), dl = sizeof(del) - 1;
	if (pl > dl && !strcmp(path + pl - dl, del))
		path[pl - dl] = '\0';
	char alt[PATH_MAX + 64];
	if (same_file(path, dmaj, dmin, ino)) {
		snprintf(out, n, "%s", path);
		return;
	}
	snprintf(alt, sizeof(alt), "/proc/%d/root%s", pid, path);
	if (same_file(alt, dmaj, dmin, ino)) {
		snprintf(out, n, "%s", alt);
		return;
	}
	snprintf(alt, sizeof(alt), "/proc/%d/map_files/%s", pid, range);
	if (same_file(alt, dmaj, dmin, ino)) {
		snprintf(out, n, "%s", alt);
		return;
	}
	snprintf(out, n, "%s", path);
}

/*
 * The executable of `pid` (statically linked with weft) as a path that
 * names it here: the target's own path when it does, else that path
 * under /proc/PID/root, else /proc/PID/exe itself. The path as the link
 * shows it was used as it stood: for a target in another mount namespace
 * it named the host's file of that name (the attach failed with "has no
 * weft:runtime_create probe", or opened whatever the host had there, a
 * FIFO included; found by a review).
 */
static void exe_path(int pid, char *exe, char *out, size_t n)
{
	char self[64], alt[PATH_MAX + 64];
	struct stat st;
	snprintf(self, sizeof(self), "/proc/%d/exe", pid);
	if (stat(self, &st)) {
		snprintf(out, n, "%s", exe);
		return;
	}
	static const char del[] = " (deleted)";
	size_t pl = strlen(exe), dl = sizeof(del) - 1;
	if (pl > dl && !strcmp(exe + pl - dl, del))
		exe[pl - dl] = '\0';
	unsigned dmaj = major(st.st_dev), dmin = minor(st.st_dev);
	snprintf(alt, sizeof(alt), "/proc/%d/root%s", pid, exe);
	if (same_file(exe, dmaj, dmin, st.st_ino))
		snprintf(out, n, "%s", exe);
	else if (same_file(alt, dmaj, dmin, st.st_ino))
		snprintf(out, n, "%s", alt);
	else
		snprintf(out, n, "%s", self);
}

int mon_find_lib(int pid, char *out, size_t n)
{
	char p[64], line[PATH_MAX + 256];
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	int rc = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		const char *base = strrchr(path, '/') + 1;
		if (!strncmp(base, "libweft.so", 10) || !strncmp(base, "libweft-", 8)) {
			/* "start-end perms offset maj:min inode path" */
			char range[64];
			unsigned dmaj = 0, dmin = 0;
			unsigned long ino = 0;
			if (sscanf(line, "%63s %*s %*s %x:%x %lu", range, &dmaj, &dmin, &ino) == 4)
				mapped_path(pid, range, dmaj, dmin, ino, path, out, n);
			else
				snprintf(out, n, "%s", path);
			rc = 0;
			break;
		}
	}
	fclose(f);
	if (rc) {
		char exe[PATH_MAX];
		snprintf(p, sizeof(p), "/proc/%d/exe", pid);
		ssize_t k = readlink(p, exe, sizeof(exe) - 1);
		if (k > 0) {
			exe[k] = '\0';
			if (mon_file_has_weft_notes(p)) {
				exe_path(pid, exe, out, n);
				rc = 0;
			}
		}
	}
	return rc;
}

/*
 * The libweft a command would load, or the command itself if it is
 * linked statically with weft. The dynamic loader lists the libraries
 * without running the program (launch_lib_for_exe: PT_INTERP --list).
 * LD_TRACE_LOADED_OBJECTS was used before, which a static program ignores:
 * it ran, in full, once before the real run (a static server never let
 * schedtop attach: found by a review).
 */
int mon_find_lib_for_cmd(char *const argv[], char *out, size_t n)
{
	char exe[PATH_MAX];
	const char *cand = argv[0];
	if (!strchr(cand, '/')) {
		const char *path = getenv("PATH");
		char *dup = strdup(path ? path : "/usr/bin:/bin");
		for (char *save = NULL, *dir = dup ? strtok_r(dup, ":", &save) : NULL; dir;
		     dir = strtok_r(NULL, ":", &save)) {
			snprintf(exe, sizeof(exe), "%s/%s", dir, cand);
			if (access(exe, X_OK) == 0) {
				cand = exe;
				break;
			}
		}
		free(dup);
	}
	char real[PATH_MAX];
	if (!realpath(cand, real))
		return -ENOENT;
	if (launch_lib_for_exe(real, environ, out, n) == 0)
		return 0;
	/* statically linked: the probes are in the executable */
	if (mon_file_has_weft_notes(real)) {
		snprintf(out, n, "%s", real);
		return 0;
	}
	return -ENOENT;
}

static bool verbose_libbpf;
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose_libbpf)
		return 0;
	if (level == LIBBPF_WARN || verbose_libbpf)
		return vfprintf(stderr, fmt, args);
	return 0;
}

static const char *const usdt_names[] = { "runtime_create", "runtime_shutdown", "worker_start",
					  "worker_stop", "steal", "steal_fail", "park",
					  "unpark", "notify", "overflow", "maintenance" };

static bool is_futex_tp(const struct bpf_program *p)
{
	const char *n = bpf_program__name(p);
	return !strcmp(n, "weft_sys_enter") || !strcmp(n, "weft_sys_exit");
}

/* PROC_PID_INIT_INO (include/linux/proc_ns.h): the initial pid
 * namespace's inode number, fixed since Linux 3.8. */
#define PID_NS_INIT_INO 0xEFFFFFFCu

/*
 * Is `pid` (as this process sees it) the id the kernel-side programs
 * compare with task->tgid? Only in the initial pid namespace. Elsewhere
 * (schedtop under `unshare -p`, in a container) *ns gets this process's
 * pid namespace, in which the BPF side looks the target up to learn its
 * global id (bpf/weft.bpf.c, target_tgid). If the namespace cannot be
 * read, the pid is taken as global, as before.
 */
static bool pid_is_global(struct stat *ns)
{
	return stat("/proc/self/ns/pid", ns) || ns->st_ino == PID_NS_INIT_INO;
}

/* Open and load the skeleton. Futex sleeps are timed in sched_switch
 * (`switch_futex`), or by the raw syscall tracepoints. */
static int load_skel(struct mon *m, int pid, bool switch_futex, bool verbose)
{
	struct stat ns;
	bool global = pid_is_global(&ns);

	m->skel = weft_bpf__open();
	if (!m->skel) {
		int err = -errno;
		fprintf(stderr, "schedtop: cannot open the BPF object: %s\n", strerror(-err));
		return err ? err : -EINVAL;
	}
	if (!global) {
		m->skel->rodata->target_nspid = (unsigned)pid;
		m->skel->rodata->pidns_dev = (uint64_t)ns.st_dev;
		m->skel->rodata->pidns_ino = (uint64_t)ns.st_ino;
	}
	m->skel->rodata->futex_from_switch = switch_futex;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, m->skel->obj)
		if (is_futex_tp(prog))
			bpf_program__set_autoload(prog, !switch_futex);
	int err = weft_bpf__load(m->skel);
	if (err) {
		m->step = MON_STEP_LOAD;
		if (!switch_futex || verbose)
			fprintf(stderr, "schedtop: cannot load the BPF programs%s: %s%s\n",
				switch_futex ? " (futex sleeps in sched_switch)" : "",
				strerror(-err), verbose ? "" : " (-v shows the verifier log)");
		return err;
	}
	/* before anything is attached: the tracepoints see it from their
	 * first run (the mapped .bss is the map's value) */
	if (global)
		m->skel->bss->target_tgid = (unsigned)pid;
	snprintf(m->futex_src, sizeof(m->futex_src), "%s",
		 switch_futex ? "sched_switch" : "tp_btf:sys_enter,sys_exit");
	return 0;
}

/* Fired on every steal or park cycle: attached only to record a trace;
 * the counts come from the cores' counters (see bpf/weft.bpf.c). */
static bool is_trace_only_probe(const char *probe)
{
	return !strcmp(probe, "steal") || !strcmp(probe, "steal_fail") || !strcmp(probe, "park") ||
	       !strcmp(probe, "unpark") || !strcmp(probe, "notify");
}

static int attach_all(struct mon *m, int pid, const char *lib, bool trace)
{
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, m->skel->obj) {
		const char *name = bpf_program__name(prog);
		struct bpf_link *l = NULL;
		const char *probe = NULL;
		if (!bpf_program__autoload(prog))
			continue;
		for (size_t i = 0; i < sizeof(usdt_names) / sizeof(usdt_names[0]); i++)
			if (!strcmp(name + 5, usdt_names[i]))
				probe = usdt_names[i];
		if (probe && !trace && is_trace_only_probe(probe))
			continue;
		if (probe)
			l = bpf_program__attach_usdt(prog, pid, lib, "weft", probe, NULL);
		else
			l = bpf_program__attach(prog);
		if (!l) {
			int err = -errno;
			m->step = probe ? MON_STEP_USDT : MON_STEP_TP;
			fprintf(stderr, "schedtop: cannot attach %s%s%s: %s\n", name,
				probe ? " to weft:" : "", probe ? probe : "", strerror(-err));
			if (err == -ENOENT && probe)
				fprintf(stderr, "schedtop: %s has no weft:%s probe (built with "
						"-DWEFT_PROBES=OFF?)\n", lib, probe);
			return err ? err : -EINVAL;
		}
		if (m->nlinks < (int)(sizeof(m->links) / sizeof(m->links[0])))
			m->links[m->nlinks++] = l;
		else
			bpf_link__destroy(l), fprintf(stderr, "schedtop: too many links\n");
	}
	return 0;
}

int mon_open(struct mon *m, int pid, const char *lib, bool verbose, bool trace)
{
	int err;
	memset(m, 0, sizeof(*m));
	m->stats_fd = -1;
	m->pid = pid;
	snprintf(m->lib, sizeof(m->lib), "%s", lib);
	verbose_libbpf = verbose;
	libbpf_set_print(libbpf_print);

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		fprintf(stderr, "schedtop: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
				"BPF programs cannot work here (CONFIG_DEBUG_INFO_BTF=y is needed)\n");
		return -EOPNOTSUPP;
	}
	/* SCHEDTOP_FUTEX=tp forces the syscall tracepoints. */
	const char *want = getenv("SCHEDTOP_FUTEX");
	bool switch_futex = !(want && !strcmp(want, "tp"));
	err = load_skel(m, pid, switch_futex, verbose);
	if (err && switch_futex && err != -EPERM && err != -EACCES) {
		/* before 5.15 (no bpf_task_pt_regs): the tracepoints */
		if (verbose)
			fprintf(stderr, "schedtop: futex sleeps from sched_switch failed (%s); "
					"using the sys_enter/sys_exit tracepoints\n", strerror(-err));
		mon_close(m);
		err = load_skel(m, pid, false, verbose);
	}
	if (!err) {
		/* BPF_ENABLE_STATS: our own run time per event, as bpftop does.
		 * The stats stay on only while this fd is open. */
		m->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		m->stats_err = m->stats_fd < 0 ? -errno : 0;
		err = attach_all(m, pid, lib, trace);
		if (!err)
			return 0;
	}
	mon_close(m);
	if (err == -EPERM || err == -EACCES)
		return err;
	return err ? err : -EINVAL;
}

int mon_add_core(struct mon *m, uint64_t rt, unsigned core)
{
	struct weft_bpf_slot_key k = { .rt = rt, .core = core };
	uint32_t v;
	int fd = bpf_map__fd(m->skel->maps.slots);
	if (!bpf_map_lookup_elem(fd, &k, &v))
		return 0;
	uint64_t n = __atomic_fetch_add(&m->skel->bss->slots_used, 1, __ATOMIC_RELAXED);
	if (n >= WEFT_BPF_MAX_CORES) {
		/* counted as the BPF side counts a core it has no slot for */
		__atomic_fetch_add(&m->skel->bss->cores_dropped, 1, __ATOMIC_RELAXED);
		return -ENOSPC;
	}
	v = (uint32_t)n;
	if (bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST)) {
		int e = errno;
		/* The BPF side added the key meanwhile (EEXIST), or the insert
		 * failed: either way index n stays unused, a hole the snapshots
		 * drop (it once showed as a third, empty worker of two). */
		m->skel->bss->cores[n].core = WEFT_BPF_SLOT_HOLE;
		return e == EEXIST ? 0 : -e;
	}
	/* the core first: a snapshot takes a slot whose runtime is set as
	 * whole (snap_drop_holes) */
	m->skel->bss->cores[n].core = core;
	__atomic_store_n(&m->skel->bss->cores[n].rt_id, rt, __ATOMIC_RELEASE);
	return 0;
}

/* The kernel's global id of the target's thread `tid` (its id in the
 * target's own pid namespace), 0 if not known. */
static unsigned tid_global(const struct mon *m, unsigned tid)
{
	char p[96], line[256];
	struct stat self, target;
	/* schedtop itself outside the initial pid namespace: its ids are not
	 * the global ones either (load_skel) */
	if (m->skel->rodata->target_nspid)
		return 0;
	snprintf(p, sizeof(p), "/proc/%d/ns/pid", m->pid);
	if (stat("/proc/self/ns/pid", &self) || stat(p, &target))
		return 0;
	if (self.st_ino == target.st_ino && self.st_dev == target.st_dev)
		return tid;
	/* the target in a pid namespace of its own (a container): the thread
	 * whose innermost id (NSpid's last) is tid; its first is ours */
	snprintf(p, sizeof(p), "/proc/%d/task", m->pid);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	unsigned found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%.20s/status", m->pid, e->d_name);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "NSpid:", 6))
				continue;
			char *end, *q = line + 6;
			unsigned long first = strtoul(q, &end, 10), last = first;
			for (q = end; *q && *q != '\n'; q = end) {
				unsigned long v = strtoul(q, &end, 10);
				if (end == q)
					break;
				last = v;
			}
			if (last == tid && first <= UINT32_MAX)
				found = (unsigned)first;
			break;
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

int mon_seed_thread(struct mon *m, uint64_t rt, unsigned core, uint64_t counters, unsigned tid)
{
	struct weft_bpf_slot_key k = { .rt = rt, .core = core };
	uint32_t v;
	if (bpf_map_lookup_elem(bpf_map__fd(m->skel->maps.slots), &k, &v) ||
	    v >= WEFT_BPF_MAX_CORES)
		return -ENOENT;
	struct weft_bpf_core *c = (struct weft_bpf_core *)&m->skel->bss->cores[v];
	if (!tid || __atomic_load_n(&c->state, __ATOMIC_RELAXED) == WEFT_ST_STOPPED)
		return 0;
	/* Only over 0 or our own last one: the BPF side's learn_tid writes
	 * the tid a probe of the core's thread carried, which is newer than
	 * a read of the target's memory; it replaces ours likewise. */
	unsigned want = m->seeded[v];
	if (__atomic_load_n(&c->tid, __ATOMIC_RELAXED) != want || (want && m->seeded_as[v] == tid))
		return 0;
	unsigned g = tid_global(m, tid);
	if (!g)
		return -ENOENT;
	if (!__atomic_compare_exchange_n(&c->tid, &want, g, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return 0;
	m->seeded[v] = g;
	m->seeded_as[v] = tid;
	uint64_t none = 0;
	__atomic_compare_exchange_n(&c->counters_ptr, &none, counters, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	/* after the tid: a thread's entry made before it takes the core's
	 * slot at its next event (tstate_get) */
	__atomic_fetch_add(&m->skel->bss->tid_seed_gen, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* The copy's steal counters and matrix still equal the live ones. */
static bool steals_settled(const struct snap *s, const struct weft_bpf__bss *b)
{
	for (unsigned i = 0; i < WEFT_BPF_SLOTS; i++) {
		const struct weft_bpf_core *c = &s->cores[i];
		const volatile struct weft_bpf_core *l = &b->cores[i];
		if (c->steal_ops_in != l->steal_ops_in || c->tasks_stolen_in != l->tasks_stolen_in ||
		    c->steal_ops_out != l->steal_ops_out ||
		    c->tasks_stolen_out != l->tasks_stolen_out)
			return false;
	}
	return !memcmp(s->matrix, (const void *)b->matrix, sizeof(s->matrix));
}

void mon_snapshot(struct mon *m, struct snap *s)
{
	struct timespec ts;
	struct rusage ru;
	const struct weft_bpf__bss *b = m->skel->bss;
	memset(s, 0, sizeof(*s));
	s->pid = (uint64_t)m->pid;
	/* One steal lands in BPF as a thief's count, then a matrix cell and
	 * the victim's count: a copy taken between them had a matrix row that
	 * did not sum to the thief's steals (schedtop_json failed on it once
	 * in CI). Copy again until nothing steal-related moved during the
	 * copy (a BPF update takes ~1 us, the copy ~10; bounded, and a run
	 * that never settles keeps the last copy, off by a steal at most). */
	for (int tries = 0; tries < 8; tries++) {
		memcpy(s->cores, (const void *)b->cores, sizeof(s->cores));
		memcpy(s->hists, (const void *)b->hists, sizeof(s->hists));
		memcpy(s->matrix, (const void *)b->matrix, sizeof(s->matrix));
#if defined(__SANITIZE_THREAD__) /* see the seqlock readers below */
		__asm__ __volatile__("" ::: "memory");
#else
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
		if (steals_settled(s, b))
			break;
	}
	for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++) {
		const volatile struct weft_bpf_block *lb = &b->blocks[i];
		struct weft_bpf_block *sb = &s->blocks[i];
		memcpy(sb, (const void *)lb, sizeof(*sb));
		/* seqlock readers: odd, or changed during the copy, is torn.
		 * The writer is BPF in the kernel, which ThreadSanitizer cannot
		 * see (and whose -Werror build refuses a standalone fence): a
		 * compiler barrier there, the acquire fence everywhere else. */
#if defined(__SANITIZE_THREAD__)
		__asm__ __volatile__("" ::: "memory");
#else
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
		if ((sb->cur.seq & 1) || sb->cur.seq != lb->cur.seq)
			sb->cur.start_ts = 0;
		if ((sb->done.seq & 1) || sb->done.seq != lb->done.seq)
			sb->done.start_ts = 0;
	}
	/* the clock after the copies: every timestamp copied is then at or
	 * before the snapshot's (read before them, a busy worker's event
	 * during the copy came out later than the snapshot: age unknown) */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->ts_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	s->drops = b->drops;
	s->events = b->events;
	s->usdt_events = b->usdt_events;
	s->cores_dropped = b->cores_dropped;
	s->workers_declared = b->workers_declared;
	s->runtimes_created = b->runtimes_created;
	s->runtimes_shutdown = b->runtimes_shutdown;
	s->last_rt = b->last_rt;
	s->slots_used = b->slots_used;
	snap_drop_holes(s);
	s->ncores = snap_ncores(s);
	snprintf(s->futex_src, sizeof(s->futex_src), "%s", m->futex_src);
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, m->skel->obj) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
			s->bpf_run_ns += info.run_time_ns;
			s->bpf_run_cnt += info.run_cnt;
		}
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		s->self_cpu_ns = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
				 (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

struct rb_ctx {
	mon_event_fn fn;
	void *ctx;
};
static struct rb_ctx rbc;

static int rb_cb(void *ctx, void *data, size_t size)
{
	if (size < sizeof(struct weft_bpf_event))
		return 0;
	return rbc.fn(rbc.ctx, data);
}

int mon_trace_start(struct mon *m, mon_event_fn fn, void *ctx)
{
	rbc.fn = fn;
	rbc.ctx = ctx;
	m->rb = ring_buffer__new(bpf_map__fd(m->skel->maps.rb), rb_cb, NULL, NULL);
	if (!m->rb)
		return -errno;
	m->skel->bss->trace_on = 1;
	return 0;
}

void mon_trace_stop(struct mon *m)
{
	if (m->skel)
		m->skel->bss->trace_on = 0;
}

int mon_trace_poll(struct mon *m, int timeout_ms)
{
	return m->rb ? ring_buffer__poll(m->rb, timeout_ms) : -EINVAL;
}

void mon_close(struct mon *m)
{
	if (m->rb)
		ring_buffer__free(m->rb);
	m->rb = NULL;
	for (int i = 0; i < m->nlinks; i++)
		bpf_link__destroy(m->links[i]);
	m->nlinks = 0;
	if (m->skel)
		weft_bpf__destroy(m->skel);
	m->skel = NULL;
	if (m->stats_fd >= 0)
		close(m->stats_fd);
	m->stats_fd = -1;
}

bool mon_target_gone(int pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	/* Gone only if /proc says so: out of fds (EMFILE) or memory, an
	 * fopen failure read as the target's exit ended a trace early and
	 * stopped the metrics server (found by a review). */
	FILE *f = fopen(p, "r");
	if (!f)
		return errno == ENOENT || errno == ESRCH;
	bool gone = false;
	errno = 0;
	if (!fgets(buf, sizeof(buf), f)) {
		gone = errno == ESRCH; /* reaped between the open and the read */
	} else {
		char *rp = strrchr(buf, ')');
		if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
			gone = true;
	}
	fclose(f);
	return gone;
}
