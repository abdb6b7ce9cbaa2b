/*
 * priv.c - schedtop's privileges; see priv.h for the model.
 *
 * Capabilities are read and set with the raw capget/capset system calls
 * (two 32-bit words per set, _LINUX_CAPABILITY_VERSION_3), as mon.c did
 * before, so schedtop needs no libcap. Which capability each step needs,
 * measured on Linux 6.18 and read from the kernel's checks:
 *   - bpf(BPF_PROG_LOAD/BPF_MAP_CREATE/BPF_BTF_LOAD): CAP_BPF; tracing
 *     program types (tp_btf, uprobe programs) also CAP_PERFMON;
 *   - perf_event_open of a uprobe (what libbpf does for each USDT probe):
 *     CAP_PERFMON from 5.8 to 6.15, CAP_SYS_ADMIN again since 6.16 (commit
 *     "perf: Revert to requiring CAP_SYS_ADMIN for uprobes", also taken by
 *     stable kernels): a uprobe placed inside an instruction can corrupt
 *     the traced program;
 *   - BPF_ENABLE_STATS (the overhead figures): CAP_SYS_ADMIN; optional.
 * CAP_SYS_ADMIN implies CAP_BPF and CAP_PERFMON in every one of these.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mon.h"
#include "priv.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#define CAPBIT(c) (1ull << (c))

/* All an ordinary user's copy may hold: the rest of its file capabilities
 * are dropped at start. */
static const uint64_t keep_user = CAPBIT(CAP_BPF) | CAPBIT(CAP_PERFMON) | CAPBIT(CAP_SYS_ADMIN);
/* What root keeps after the attach: write the output where it was asked
 * to, read any file and any process's memory map (symbols). */
static const uint64_t keep_root =
	CAPBIT(CAP_DAC_OVERRIDE) | CAPBIT(CAP_DAC_READ_SEARCH) | CAPBIT(CAP_SYS_PTRACE);

static const char fix_text[] =
	"  fix: run it as root:   sudo schedtop ...\n"
	"   or: let a group use a copy with file capabilities (docs/OBSERVABILITY.md, Privileges):\n"
	"       sudo setcap cap_bpf,cap_perfmon,cap_sys_admin=p \"$(command -v schedtop)\"\n"
	"  without privileges: schedtop --no-bpf -p PID shows the perf counters and\n"
	"  /proc figures of your own processes' worker threads";

static struct {
	uid_t uid;
	gid_t gid;
	bool root;
	uint64_t prm; /* permitted after priv_init */
} me;

struct caps {
	uint64_t eff, prm, inh;
};

static int caps_get(struct caps *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -errno;
	c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
	c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int caps_set(const struct caps *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)c->eff, (uint32_t)c->prm, (uint32_t)c->inh },
		{ (uint32_t)(c->eff >> 32), (uint32_t)(c->prm >> 32), (uint32_t)(c->inh >> 32) },
	};
	if (syscall(SYS_capset, &h, d))
		return -errno;
	/* Ambient capabilities would survive an exec. Linux 4.3+. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	return 0;
}

int priv_init(char *why, size_t n)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	struct caps c = { 0 }; /* caps_get fills it; zeroed for the compiler */
	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg)) {
		snprintf(why, n, "schedtop: cannot read its own ids: %s", strerror(errno));
		return 1;
	}
	if (e != r || s != r || eg != rg || sg != rg) {
		snprintf(why, n,
			 "schedtop: refusing to run set-user-ID or set-group-ID (real uid %u gid %u, "
			 "effective uid %u gid %u): remove the bits (chmod u-s,g-s) and grant file "
			 "capabilities instead (docs/OBSERVABILITY.md, Privileges), or use sudo",
			 (unsigned)r, (unsigned)rg, (unsigned)e, (unsigned)eg);
		return 1;
	}
	me.uid = r;
	me.gid = rg;
	me.root = r == 0;
	int err = caps_get(&c);
	if (!err && !me.root) {
		/* Nothing effective until priv_raise; nothing beyond keep_user. */
		c.prm &= keep_user;
		c.eff = 0;
		c.inh = 0;
		err = caps_set(&c);
	}
	if (err) {
		snprintf(why, n, "schedtop: cannot %s its capabilities: %s",
			 me.root ? "read" : "lower", strerror(-err));
		return 1;
	}
	me.prm = c.prm;
	return 0;
}

bool priv_is_root(void)
{
	return me.root;
}

/* The running kernel's release, for messages. */
static const char *kernel_release(void)
{
	static struct utsname u;
	return uname(&u) ? "?" : u.release;
}

/* Whether uprobes need CAP_SYS_ADMIN is not guessed from the version
 * (stable kernels took the change too): the attach tells (priv_explain). */
int priv_missing(char *why, size_t n)
{
	bool admin = me.prm & CAPBIT(CAP_SYS_ADMIN);
	bool bpf = admin || (me.prm & CAPBIT(CAP_BPF));
	bool perfmon = admin || (me.prm & CAPBIT(CAP_PERFMON));
	if (bpf && perfmon)
		return 0;
	snprintf(why, n,
		 "schedtop needs CAP_BPF and CAP_PERFMON to load its BPF programs, and on "
		 "Linux 6.16+ CAP_SYS_ADMIN to create uprobes (or root); missing:%s%s%s\n%s",
		 bpf ? "" : " CAP_BPF", perfmon ? "" : " CAP_PERFMON",
		 admin ? "" : " (and CAP_SYS_ADMIN on Linux 6.16+)", fix_text);
	return SCHEDTOP_EXIT_SKIP;
}

int priv_raise(void)
{
	if (me.root)
		return 0;
	struct caps c = { .eff = me.prm, .prm = me.prm, .inh = 0 };
	return caps_set(&c);
}

int priv_drop(char *why, size_t n)
{
	uint64_t keep = me.root ? keep_root : 0;
	struct caps c = { 0 }; /* caps_get fills it; zeroed for the compiler */
	int err = caps_get(&c);
	if (!err) {
		c.eff &= keep;
		c.prm &= keep;
		c.inh = 0;
		err = caps_set(&c);
	}
	if (!err)
		err = caps_get(&c);
	if (!err && ((c.eff | c.prm | c.inh) & ~keep))
		err = -EPERM;
	if (err) {
		snprintf(why, n, "schedtop: cannot drop its capabilities after the attach (%s); "
				 "stopping rather than going on with them", strerror(-err));
		return 1;
	}
	me.prm = c.prm;
	return 0;
}

int priv_child(void)
{
	if (me.root)
		return 0; /* root's command runs as root, as under sudo */
	struct caps c = { 0, 0, 0 };
	return caps_set(&c);
}

/* A user or group name (getpwuid/getgrgid share one static buffer, so
 * it is copied out). */
struct idname {
	char s[64];
};

static struct idname id_name(bool group, unsigned id)
{
	struct idname r;
	const char *name = NULL;
	if (group) {
		struct group *gr = getgrgid(id);
		name = gr ? gr->gr_name : NULL;
	} else {
		struct passwd *pw = getpwuid(id);
		name = pw ? pw->pw_name : NULL;
	}
	snprintf(r.s, sizeof(r.s), "%s", name ? name : "no name");
	return r;
}

int priv_may_observe(int pid, char *why, size_t n)
{
	static const char *const which[] = { "real", "effective", "saved", "filesystem" };
	char p[64], line[256];
	unsigned u[4] = { 0 }, g[4] = { 0 };
	int hu = 0, hg = 0;
	if (me.root)
		return 0;
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	FILE *f = fopen(p, "r");
	if (!f) {
		snprintf(why, n, "schedtop: no process %d", pid);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (!hu && sscanf(line, "Uid: %u %u %u %u", &u[0], &u[1], &u[2], &u[3]) == 4)
			hu = 1;
		else if (!hg && sscanf(line, "Gid: %u %u %u %u", &g[0], &g[1], &g[2], &g[3]) == 4)
			hg = 1;
	}
	fclose(f);
	if (!hu || !hg) {
		snprintf(why, n, "schedtop: cannot read the credentials of process %d", pid);
		return 1;
	}
	for (int k = 0; k < 8; k++) {
		bool group = k >= 4;
		unsigned have = group ? g[k - 4] : u[k];
		unsigned mine = group ? (unsigned)me.gid : (unsigned)me.uid;
		const char *what = group ? "gid" : "uid";
		if (have == mine)
			continue;
		snprintf(why, n,
			 "schedtop: not attaching to process %d: its %s %s is %u (%s), your real "
			 "%s is %u (%s). schedtop watches only processes that run with your own "
			 "ids (the ptrace rule, checked with your real ids); root may watch any.",
			 pid, which[k % 4], what, have, id_name(group, have).s, what, mine,
			 id_name(group, mine).s);
		return 1;
	}
	/* The files under /proc/PID (not the directory itself) of a process
	 * that is not dumpable are owned by root. */
	struct stat st;
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	if (stat(p, &st)) {
		snprintf(why, n, "schedtop: no process %d", pid);
		return 1;
	}
	if (st.st_uid != me.uid) {
		snprintf(why, n,
			 "schedtop: not attaching to process %d: it is not dumpable (it gained "
			 "privileges at exec - set-user-ID or file capabilities - or called "
			 "prctl(PR_SET_DUMPABLE, 0)), so the kernel lets only root trace it",
			 pid);
		return 1;
	}
	/* Last, the kernel's own check: the memory map is shown only to whom
	 * may ptrace-read the process, and no capability is in effect here. */
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(why, n, "schedtop: not attaching to process %d: the kernel refused you "
				 "its memory map (%s)", pid, strerror(e));
		return 1;
	}
	close(fd);
	return 0;
}

bool priv_explain(int step, int err, char *why, size_t n)
{
	bool admin = me.prm & CAPBIT(CAP_SYS_ADMIN);
	bool bpf = admin || (me.prm & CAPBIT(CAP_BPF));
	bool perfmon = admin || (me.prm & CAPBIT(CAP_PERFMON));
	if (step == MON_STEP_USDT && !admin) {
		snprintf(why, n,
			 "schedtop: the kernel refused to create the uprobes behind weft's USDT "
			 "probes (%s). Missing: CAP_SYS_ADMIN. This kernel (%s) requires it for "
			 "uprobes: Linux 6.16 and the stable kernels that took the same fix no "
			 "longer accept CAP_PERFMON, because a uprobe placed inside an instruction "
			 "can corrupt the traced program.\n%s",
			 strerror(-err), kernel_release(), fix_text);
		return true;
	}
	if ((step == MON_STEP_LOAD || step == MON_STEP_TP) && !(bpf && perfmon)) {
		snprintf(why, n, "schedtop: the kernel refused to %s the BPF programs (%s). "
				 "Missing:%s%s\n%s",
			 step == MON_STEP_LOAD ? "load" : "attach", strerror(-err),
			 bpf ? "" : " CAP_BPF", perfmon ? "" : " CAP_PERFMON", fix_text);
		return true;
	}
	return false;
}
