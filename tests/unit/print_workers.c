/*
 * print_workers.c - for cgroup-workers.sh: creates a runtime with the
 * default worker count and prints "WORKERS AFFINITY" (the workers it got,
 * the CPUs of this process's affinity mask); a create error is printed on
 * stderr and exits 2.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>

#include <weft/metrics.h>
#include <weft/weft.h>

int main(void)
{
	struct weft_runtime *rt;
	int rc = weft_runtime_create(NULL, &rt);
	if (rc) {
		fprintf(stderr, "print_workers: weft_runtime_create: %s\n", weft_strerror(rc));
		return 2;
	}
	struct weft_metrics *m;
	if ((rc = weft_runtime_metrics(rt, &m))) {
		fprintf(stderr, "print_workers: metrics: %s\n", weft_strerror(rc));
		return 2;
	}
	cpu_set_t set;
	int aff = sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
	printf("%u %d\n", m->workers, aff);
	weft_metrics_free(m);
	weft_runtime_destroy(rt);
	return 0;
}
