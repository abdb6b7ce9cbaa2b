/*
 * late_target.c - a process that loads libweft late, with dlopen, as a
 * plugin host would (schedtop_ops_wrappers: `schedtop -p PID --wait`).
 *
 *   late_target PLUGIN.so DELAY_MS WORKERS WAVES
 *
 * Prints "ready PID", sleeps DELAY_MS, then dlopens PLUGIN (late_plugin.c,
 * linked with libweft) and runs its late_run(WORKERS, WAVES).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: late_target PLUGIN.so DELAY_MS WORKERS WAVES\n");
		return 2;
	}
	long ms = atol(argv[2]);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		fprintf(stderr, "late_target: %s\n", dlerror());
		return 1;
	}
	int (*run)(int, int) = (int (*)(int, int))dlsym(h, "late_run");
	if (!run) {
		fprintf(stderr, "late_target: %s\n", dlerror());
		return 1;
	}
	return run(atoi(argv[3]), atoi(argv[4]));
}
