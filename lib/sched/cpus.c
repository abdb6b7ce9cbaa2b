/*
 * cpus.c - how many CPUs this process may use: the CPUs of its affinity
 * mask, capped by a cgroup CPU quota rounded up, as Go (1.25, GOMAXPROCS)
 * and Rust (available_parallelism, so Tokio) count them. In a container
 * limited to 1.5 CPUs of a 64-CPU host that is 2, not 64 workers that the
 * quota throttles in turn.
 *
 * The quota: the process's cgroup (/proc/self/cgroup) under each cgroup
 * file system mounted (/proc/self/mountinfo) - cgroup v2 (cpu.max: "max
 * PERIOD" or "QUOTA PERIOD") and v1's cpu controller (cpu.cfs_quota_us,
 * -1 for none, and cpu.cfs_period_us) - and every ancestor up to the
 * mount's root, the smallest. A cgroup path outside the mount's root (a
 * container's view of a mount it was not given) is read at the mount
 * point alone. Anything missing or unreadable means "no limit from
 * there"; nothing here fails the runtime.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define CG_PATH_MAX 1024

/*
 * Files are read with open/read into buffers on the stack, never stdio:
 * fopen's allocations at runtime creation moved later heap blocks,
 * and spawn_many_local_fiber ran 15% slower for it (an A/B that found
 * this change as the cause). About 4 KiB of stack in all.
 */
struct line_reader {
	int fd;
	size_t n, pos;
	char buf[512];
};

static bool lr_open(struct line_reader *r, const char *path)
{
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	r->n = r->pos = 0;
	return r->fd >= 0;
}

/* The next line, without its newline, cut to cap - 1 bytes; false at the
 * end of the file. */
static bool lr_line(struct line_reader *r, char *line, size_t cap)
{
	size_t len = 0;
	bool any = false;
	for (;;) {
		if (r->pos == r->n) {
			ssize_t k = read(r->fd, r->buf, sizeof(r->buf));
			if (k <= 0)
				break;
			r->n = (size_t)k;
			r->pos = 0;
		}
		any = true;
		char c = r->buf[r->pos++];
		if (c == '\n')
			break;
		if (len + 1 < cap)
			line[len++] = c;
	}
	line[len] = '\0';
	return any;
}

static void lr_close(struct line_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* Is `word` one of the comma-separated tokens of `list`? */
static bool has_token(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, word, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* The first line of a small file, or false. */
static bool read_line(const char *path, char *buf, size_t n)
{
	struct line_reader r;
	if (!lr_open(&r, path))
		return false;
	bool ok = lr_line(&r, buf, n);
	lr_close(&r);
	return ok;
}

static bool parse_u64(const char *s, char **end, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return false;
	*out = strtoull(s, end, 10);
	return true;
}

/* ceil(quota / period) of the cgroup directory `dir`, or 0 (no limit). */
static unsigned level_limit(const char *dir, bool v2)
{
	char path[CG_PATH_MAX + 32], line[128];
	uint64_t quota, period;
	char *end;
	if (v2) {
		snprintf(path, sizeof(path), "%s/cpu.max", dir);
		if (!read_line(path, line, sizeof(line)) || !parse_u64(line, &end, &quota) ||
		    *end != ' ' || !parse_u64(end + 1, &end, &period))
			return 0; /* "max PERIOD" too */
	} else {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
		if (!read_line(path, line, sizeof(line)) || !parse_u64(line, &end, &quota))
			return 0; /* -1 too */
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
		if (!read_line(path, line, sizeof(line)) || !parse_u64(line, &end, &period))
			return 0;
	}
	if (!quota || !period)
		return 0;
	uint64_t cpus = quota / period + (quota % period != 0);
	return cpus > UINT32_MAX ? UINT32_MAX : (unsigned)cpus;
}

static void strip_slashes(char *s)
{
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
}

/* The smallest limit from the cgroup at mount point `mnt` (whose root in
 * the hierarchy is `root`) for hierarchy path `cg`, up to the mount. */
static unsigned mount_limit(const char *mnt, const char *root, const char *cg, bool v2)
{
	const char *rel = cg;
	size_t rl = strlen(root);
	if (strcmp(root, "/")) {
		if (!strncmp(cg, root, rl) && (cg[rl] == '/' || cg[rl] == '\0'))
			rel = cg + rl;
		else
			rel = ""; /* not under the mount's root: the mount point alone */
	}
	char base[CG_PATH_MAX], dir[CG_PATH_MAX];
	if ((size_t)snprintf(base, sizeof(base), "%s", mnt) >= sizeof(base))
		return 0;
	strip_slashes(base);
	if ((size_t)snprintf(dir, sizeof(dir), "%s%s", strcmp(base, "/") ? base : "", rel) >=
	    sizeof(dir))
		return 0;
	if (!dir[0])
		strcpy(dir, "/");
	strip_slashes(dir);
	size_t bl = strlen(base);
	unsigned best = 0;
	for (;;) {
		unsigned l = level_limit(dir, v2);
		if (l && (!best || l < best))
			best = l;
		if (strlen(dir) <= bl)
			break;
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		if (slash == dir)
			slash[1] = '\0'; /* up to "/" */
		else
			*slash = '\0';
	}
	return best;
}

unsigned weft__cgroup_cpu_limit(const char *proc_cgroup, const char *mountinfo)
{
	enum { LINE = 2 * CG_PATH_MAX };
	char v1[CG_PATH_MAX] = "", v2[CG_PATH_MAX] = "";
	bool have_v1 = false, have_v2 = false;
	char buf[LINE];
	struct line_reader f;
	if (!lr_open(&f, proc_cgroup))
		return 0;
	while (lr_line(&f, buf, LINE)) {
		char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || strlen(c2 + 1) >= CG_PATH_MAX)
			continue;
		*c1 = *c2 = '\0';
		if (!strcmp(buf, "0") && c1 + 1 == c2) {
			strcpy(v2, c2 + 1);
			have_v2 = true;
		} else if (has_token(c1 + 1, "cpu")) {
			strcpy(v1, c2 + 1);
			have_v1 = true;
		}
	}
	lr_close(&f);
	unsigned best = 0;
	bool open_mi = (have_v1 || have_v2) && lr_open(&f, mountinfo);
	while (open_mi && lr_line(&f, buf, LINE)) {
		/* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
		char *sep = strstr(buf, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		char *fields[5] = { 0 }, *save = NULL, *tok = strtok_r(buf, " ", &save);
		for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
			fields[i] = tok;
		char *fstype = strtok_r(sep + 3, " ", &save);
		char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
		char *super = source ? strtok_r(NULL, " ", &save) : NULL;
		if (!fields[4] || !fstype)
			continue;
		bool is_v2 = !strcmp(fstype, "cgroup2") && have_v2;
		bool is_v1 = !strcmp(fstype, "cgroup") && have_v1 && super && has_token(super, "cpu");
		if (!is_v2 && !is_v1)
			continue;
		unescape(fields[3]);
		unescape(fields[4]);
		unsigned l = mount_limit(fields[4], fields[3], is_v2 ? v2 : v1, is_v2);
		if (l && (!best || l < best))
			best = l;
	}
	if (open_mi)
		lr_close(&f);
	return best;
}

/* CPUs this thread may run on (1 if that cannot be read). A kernel with
 * more possible CPUs than a cpu_set_t holds (1,024) refuses that mask with
 * EINVAL: a larger one is asked for then (on the heap: only there). */
static unsigned affinity_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		int n = CPU_COUNT(&set);
		return n > 0 ? (unsigned)n : 1;
	}
	for (int ncpu = 2 * CPU_SETSIZE; errno == EINVAL && ncpu <= (1 << 20); ncpu *= 2) {
		size_t size = CPU_ALLOC_SIZE(ncpu);
		cpu_set_t *big = CPU_ALLOC(ncpu);
		if (!big)
			break;
		int n = sched_getaffinity(0, size, big) == 0 ? CPU_COUNT_S(size, big) : 0;
		CPU_FREE(big);
		if (n > 0)
			return (unsigned)n;
	}
	return 1;
}

unsigned weft__available_cpus(void)
{
	unsigned n = affinity_cpus();
	unsigned q = weft__cgroup_cpu_limit("/proc/self/cgroup", "/proc/self/mountinfo");
	return q && q < n ? q : n;
}
