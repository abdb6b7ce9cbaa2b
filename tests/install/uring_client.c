/*
 * uring_client.c - a client of the installed library that asks for the
 * io_uring driver: a fiber reads through a registered socket what the main
 * thread writes. Built by check-install.sh with the shared library and
 * with the static one (pkg-config --static: liburing comes from weft.pc's
 * Requires.private). With --without: the library was built without
 * io_uring, and asking for it must fail with -ENOSYS.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/io.h>
#include <weft/weft.h>

static void *reader(void *arg)
{
	static char buf[16];
	ssize_t n = weft_read(arg, buf, sizeof(buf) - 1);
	return n > 0 ? buf : NULL;
}

int main(int argc, char **argv)
{
	struct weft_runtime *rt;
	struct weft_io *io;
	struct weft_task *t;
	void *got = NULL;
	int sv[2], rc;
	rc = weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 2,
						 .io_driver = WEFT_IO_DRIVER_URING),
				 &rt);
	if (argc > 1 && !strcmp(argv[1], "--without")) {
		/* a libweft built with -DWEFT_IO_URING=OFF says so at the call */
		if (rc != -ENOSYS) {
			fprintf(stderr, "uring_client: built without io_uring, create gave %d\n", rc);
			return 1;
		}
		printf("uring_client: ENOSYS without io_uring\n");
		return 0;
	}
	if (rc) {
		fprintf(stderr, "uring_client: create: %s\n", weft_strerror(rc));
		return 1;
	}
	if (weft_runtime_io_driver(rt) != WEFT_IO_DRIVER_URING || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    (rc = weft_io_register(rt, sv[0], &io)) || (rc = weft_spawn(rt, reader, io, &t)) ||
	    write(sv[1], "over uring", 10) != 10 || (rc = weft_join(t, &got)) || !got) {
		fprintf(stderr, "uring_client: %s\n", rc ? weft_strerror(rc) : "no data");
		return 1;
	}
	printf("uring_client: %s\n", (char *)got);
	weft_io_close(io);
	close(sv[1]);
	return weft_runtime_destroy(rt) ? 1 : 0;
}
