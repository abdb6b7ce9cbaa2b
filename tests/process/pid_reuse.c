/*
 * pid_reuse.c - weft_process_spawn never signals a process by pid (run in
 * a new pid namespace: tests/CMakeLists.txt, `unshare -Urpf`).
 *
 * A program whose SIGCHLD handler reaps with waitpid(-1) (ruled out by
 * weft/io.h, common all the same) can lose a child between posix_spawn and
 * weft's pidfd_open, and the pid can be another process's by then. Staged
 * here: this program's syscall() (which libweft calls) holds the
 * pidfd_open 100 ms - the child, `true`, ends and the handler reaps it -,
 * then makes an unrelated process (a grandchild, `sleep 5`: not ours to
 * wait for) take the same pid through ns_last_pid. Before, the failed
 * registration's cleanup did kill(pid, SIGKILL) on it (found by a review,
 * 5 of 5 runs). Exits 0 if it survives and the spawn reports the lost
 * child, 1 if it was killed, 2 on a setup failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

static volatile int stage;
static int bystander_fd = -1;

static void reap_all(int s)
{
	(void)s;
	int e = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = e;
}

/* A process that is not our child, with pid `want`: a child writes
 * ns_last_pid and forks it, then exits (the grandchild goes to init). */
static pid_t bystander_at(pid_t want)
{
	int p[2];
	if (pipe(p))
		return -1;
	pid_t c = fork();
	if (c == 0) {
		char buf[32];
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		int n = snprintf(buf, sizeof buf, "%d", (int)want - 1);
		if (fd < 0 || write(fd, buf, (size_t)n) != n)
			_exit(1);
		close(fd);
		pid_t g = fork();
		if (g == 0) {
			execlp("sleep", "sleep", "5", (char *)NULL);
			_exit(127);
		}
		if (write(p[1], &g, sizeof g) != sizeof g)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	pid_t g = -1;
	if (read(p[0], &g, sizeof g) != sizeof g)
		g = -1;
	close(p[0]);
	usleep(20000); /* the intermediate child reaped by the handler */
	return g;
}

__attribute__((visibility("default"))) long syscall(long n, ...)
{
	static long (*real)(long, ...);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	va_list ap;
	va_start(ap, n);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (n == SYS_pidfd_open && stage == 1) {
		stage = 2;
		pid_t lost = (pid_t)a[0];
		/* `true` ends and the handler reaps it: wait until the pid is
		 * free (a busy CI host can take more than 100 ms to run
		 * `true`; the bystander then got the next pid instead). */
		for (int i = 0; i < 1000 && !(kill(lost, 0) && errno == ESRCH); i++)
			usleep(10000);
		usleep(20000);
		pid_t g = -1;
		/* Another thread of the namespace may take the pid between
		 * the ns_last_pid write and the fork: try again then. */
		for (int tries = 0; tries < 3 && g != lost; tries++) {
			if (g > 0)
				kill(g, SIGKILL);
			g = bystander_at(lost);
		}
		if (g != lost) {
			fprintf(stderr, "pid_reuse: the bystander got pid %d, not %d\n", (int)g, (int)lost);
			stage = -1;
		} else {
			bystander_fd = (int)real(SYS_pidfd_open, g, 0);
		}
	}
	return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = reap_all;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	struct weft_runtime *rt;
	if (weft_runtime_create(NULL, &rt))
		return 2;
	char *argv[] = { "true", NULL };
	struct weft_process p;
	stage = 1;
	int rc = weft_process_spawn(rt, "true", argv, NULL, &p);
	if (stage != 2 || bystander_fd < 0) {
		fprintf(stderr, "pid_reuse: setup failed (stage %d)\n", stage);
		return 2;
	}
	struct pollfd pf = { bystander_fd, POLLIN, 0 };
	int dead = poll(&pf, 1, 300) > 0;
	syscall(SYS_pidfd_send_signal, bystander_fd, SIGTERM, NULL, 0);
	printf("pid_reuse: spawn %d (%s); the process that took the pid %s\n", rc,
	       rc ? strerror(-rc) : "ok", dead ? "was KILLED" : "lives");
	if (!rc)
		weft_process_close(&p);
	weft_runtime_destroy(rt);
	return dead || (rc != -ECHILD && rc != -ESRCH) ? 1 : 0;
}
