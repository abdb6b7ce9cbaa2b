/*
 * test_cpus.c - the cgroup CPU quota behind the default worker count
 * (lib/sched/cpus.c), read from fixture trees: a /proc/self/cgroup and a
 * /proc/self/mountinfo written here, and cgroup directories with their
 * limit files under a temporary directory. cgroup-workers.sh checks the
 * same on a real cgroup with a real runtime.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "../common/wt.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	/* mkdir -p of the directories on the way */
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	cr_assert(f, "fixture %s", path);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/weft-cpus-XXXXXX");
	cr_assert(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

/* The limit for a /proc/self/cgroup text and mountinfo lines (in which
 * "@" stands for the fixture's root). */
static unsigned limit(const char *cgroup, const char *mountinfo)
{
	char mi[2048] = "";
	for (const char *p = mountinfo; *p; p++) {
		if (*p == '@')
			strcat(mi, root);
		else
			strncat(mi, p, 1);
	}
	put("proc_cgroup", cgroup);
	put("mountinfo", mi);
	char a[300], b[300];
	snprintf(a, sizeof(a), "%s/proc_cgroup", root);
	snprintf(b, sizeof(b), "%s/mountinfo", root);
	return weft__cgroup_cpu_limit(a, b);
}

#define V2_MOUNT "30 1 0:26 / @/v2 rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
#define V1_MOUNT "40 1 0:30 / @/v1 rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
#define OTHER_MOUNTS "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" \
	"41 1 0:31 / @/mem rw - cgroup cgroup rw,memory\n"

TestSuite(cpus, .init = setup, .fini = teardown);

Test(cpus, v2_the_tightest_level_up_to_the_mount)
{
	put("v2/a/b/cpu.max", "max 100000\n");
	put("v2/a/cpu.max", "150000 100000\n");
	cr_assert_eq(limit("0::/a/b\n", OTHER_MOUNTS V2_MOUNT), 2, "1.5 CPUs on the parent: 2");
	put("v2/a/b/cpu.max", "50000 100000\n");
	cr_assert_eq(limit("0::/a/b\n", OTHER_MOUNTS V2_MOUNT), 1, "0.5 on the leaf: 1");
	put("v2/cpu.max", "20000 100000\n"); /* the mount's root counts too */
	put("v2/a/b/cpu.max", "max 100000\n");
	put("v2/a/cpu.max", "max 100000\n");
	cr_assert_eq(limit("0::/a/b\n", V2_MOUNT), 1);
}

Test(cpus, v1_cpu_controller_quota_and_period)
{
	put("v1/x/cpu.cfs_quota_us", "250000\n");
	put("v1/x/cpu.cfs_period_us", "100000\n");
	const char *cg = "5:memory:/other\n4:cpu,cpuacct:/x\n0::/\n";
	cr_assert_eq(limit(cg, OTHER_MOUNTS V1_MOUNT), 3, "2.5 CPUs: 3");
	put("v1/x/cpu.cfs_quota_us", "-1\n");
	cr_assert_eq(limit(cg, OTHER_MOUNTS V1_MOUNT), 0, "-1: no limit");
	/* a quota on the memory controller's mount is not a CPU quota */
	put("mem/other/cpu.cfs_quota_us", "100000\n");
	put("mem/other/cpu.cfs_period_us", "100000\n");
	cr_assert_eq(limit("5:memory:/other\n", OTHER_MOUNTS), 0);
}

Test(cpus, both_hierarchies_the_smaller)
{
	put("v1/x/cpu.cfs_quota_us", "400000\n");
	put("v1/x/cpu.cfs_period_us", "100000\n");
	put("v2/y/cpu.max", "300000 100000\n");
	cr_assert_eq(limit("4:cpu:/x\n0::/y\n", V1_MOUNT V2_MOUNT), 3);
}

Test(cpus, container_mount_of_a_subtree)
{
	/* the mount shows the hierarchy's /kubepods/pod1 at @/c */
	const char *mi = "50 1 0:40 /kubepods/pod1 @/c rw - cgroup2 cgroup2 rw\n";
	put("c/ctr/cpu.max", "200000 100000\n");
	cr_assert_eq(limit("0::/kubepods/pod1/ctr\n", mi), 2);
	/* a path outside the mount's root: the mount point alone */
	put("c/cpu.max", "100000 100000\n");
	cr_assert_eq(limit("0::/elsewhere\n", mi), 1);
	/* "/kubepods/pod10" is not under "/kubepods/pod1" */
	put("c/cpu.max", "max 100000\n");
	cr_assert_eq(limit("0::/kubepods/pod10/ctr\n", mi), 0);
}

Test(cpus, escaped_mount_point)
{
	put("sp ace/z/cpu.max", "100000 100000\n");
	cr_assert_eq(limit("0::/z\n", "30 1 0:26 / @/sp\\040ace rw - cgroup2 cgroup2 rw\n"), 1);
}

Test(cpus, nothing_or_garbage_is_no_limit)
{
	cr_assert_eq(limit("0::/\n", V2_MOUNT), 0, "no cpu.max at all");
	put("v2/cpu.max", "max 100000\n");
	cr_assert_eq(limit("0::/\n", V2_MOUNT), 0, "max");
	put("v2/cpu.max", "banana\n");
	cr_assert_eq(limit("0::/\n", V2_MOUNT), 0);
	put("v2/cpu.max", "100000 0\n");
	cr_assert_eq(limit("0::/\n", V2_MOUNT), 0, "a zero period");
	cr_assert_eq(limit("", V2_MOUNT), 0, "no cgroup lines");
	cr_assert_eq(limit("garbage without colons\n", V2_MOUNT), 0);
	cr_assert_eq(limit("0::/\n", "a line without the separator\n"), 0);
	cr_assert_eq(weft__cgroup_cpu_limit("/nonexistent/cgroup", "/nonexistent/mi"), 0);
	/* this machine's own files parse (whatever the answer) */
	unsigned own = weft__cgroup_cpu_limit("/proc/self/cgroup", "/proc/self/mountinfo");
	cr_log_info("this process's cgroup CPU limit: %u (0: none)", own);
	cr_assert_geq(weft__available_cpus(), 1);
}

/* sched_getaffinity as a kernel with more possible CPUs than a cpu_set_t
 * holds (1,024) answers it: EINVAL for a mask shorter than the kernel's
 * (sched_getaffinity(2)). 0: the real call. */
static unsigned big_possible, big_allowed;

int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
	if (!big_possible) {
		int (*real)(pid_t, size_t, cpu_set_t *) =
			(int (*)(pid_t, size_t, cpu_set_t *))dlsym(RTLD_NEXT, "sched_getaffinity");
		return real(pid, size, set);
	}
	if (size * 8 < big_possible || size % sizeof(unsigned long)) {
		errno = EINVAL;
		return -1;
	}
	memset(set, 0, size);
	for (unsigned i = 0; i < big_allowed; i++)
		CPU_SET_S(i, size, set);
	return 0;
}

Test(cpus, more_cpus_than_a_cpu_set_holds)
{
	unsigned q = weft__cgroup_cpu_limit("/proc/self/cgroup", "/proc/self/mountinfo");
	big_possible = 2048;
	big_allowed = 1500;
	unsigned n = weft__available_cpus();
	big_allowed = 3;
	unsigned three = weft__available_cpus();
	big_possible = 0;
	cr_assert_eq(n, q && q < 1500 ? q : 1500, "1,500 CPUs of 2,048 possible: %u", n);
	cr_assert_eq(three, q && q < 3 ? q : 3, "3 CPUs of 2,048 possible: %u", three);
}
