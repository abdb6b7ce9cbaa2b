/*
 * weft_strerror's text for a code must fit every call that returns it
 * (weft.h): the generic meaning first, one call's meaning only after
 * "e.g.". Codes from real calls: a program that does not exist
 * (weft_process_spawn), a Unix socket path that does not exist
 * (weft_unix_connect) and a pid that is not a child (weft_child_wait).
 * They read "nothing to take" and "object of the parent process".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <weft/weft.h>

static int fails;

/* The part of weft_strerror(rc) before "e.g." contains `want`. */
static void expect(const char *call, int rc, int code, const char *want)
{
	const char *s = weft_strerror(rc), *eg = strstr(s, "e.g.");
	const char *w = strstr(s, want);
	if (rc != code) {
		printf("%s: %d (%s), expected %d\n", call, rc, s, code);
		fails++;
	} else if (!w || (eg && w > eg)) {
		printf("%s: %d: \"%s\" does not say \"%s\"\n", call, rc, s, want);
		fails++;
	}
}

int main(void)
{
	struct weft_runtime *rt;
	if (weft_runtime_create(&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1), &rt))
		return 1;
	char *argv[] = { "weft-no-such-program", NULL };
	struct weft_process p;
	expect("weft_process_spawn", weft_process_spawn(rt, "/nonexistent/weft-no-such-program",
							argv, NULL, &p),
	       -ENOENT, "no such");
	struct weft_io *io;
	expect("weft_unix_connect", weft_unix_connect(rt, "/nonexistent/weft.sock", &io),
	       -ENOENT, "no such");
	int rc = weft_child_wait(rt, 1, NULL, 0); /* pid 1: never our child */
	if (rc != -ENOSYS)                        /* a kernel before 5.3: no pidfd */
		expect("weft_child_wait", rc, -ECHILD, "no child");
	if (weft_runtime_destroy(rt))
		return 1;
	if (!fails)
		printf("strerror_client: texts fit\n");
	return fails != 0;
}
