/*
 * test_schedtop_args.c - schedtop's command line (tools/schedtop/args.c):
 * what it accepts and what it refuses, with which message. No BPF, no
 * privileges; runs in every build.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static int failures;

/* Parse the NULL-terminated words; the return code and the message in msg. */
static int parse(char *msg, size_t n, struct schedtop_args *a, ...)
{
	char *argv[32] = { "schedtop" };
	int argc = 1;
	va_list ap;
	va_start(ap, a);
	for (char *w; (w = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = w;
	va_end(ap);
	argv[argc] = NULL;
	FILE *f = fmemopen(msg, n, "w");
	if (!f)
		abort();
	memset(msg, 0, n);
	int rc = schedtop_parse_args(argc, argv, a, f);
	fclose(f);
	return rc;
}

static int has(const char *msg, const char *want)
{
	return !want || strstr(msg, want);
}

#define EXPECT(want_rc, want_msg, ...)                                                   \
	do {                                                                             \
		char m_[512];                                                            \
		struct schedtop_args a_;                                                 \
		int rc_ = parse(m_, sizeof(m_), &a_, __VA_ARGS__, (char *)NULL);         \
		if (rc_ != (want_rc) || !has(m_, want_msg)) {                            \
			failures++;                                                      \
			fprintf(stderr, "FAIL %s:%d: %s: rc %d (want %d), message %s\n", \
				__FILE__, __LINE__, #__VA_ARGS__, rc_, want_rc, m_);     \
		}                                                                        \
	} while (0)

static void test_record(void)
{
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--batch", "-r", "s.jsonl");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "--batch", "--record", "s.jsonl", "--", "prog");
	/* accepted and ignored before: an empty file, no word */
	EXPECT(SCHEDTOP_ARGS_USAGE, "--record FILE works with --batch only", "-p", "1", "-r",
	       "s.jsonl");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--record FILE works with --batch only", "trace", "-p", "1",
	       "-o", "t.json", "-r", "s.jsonl");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--record FILE works with --batch only", "metrics", "-p", "1",
	       "--once", "-r", "s.jsonl");
}

/* "schedtop stall -p PID" said "invalid interval 'stall'" */
static void test_unknown_command(void)
{
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown command 'stall'", "stall", "-p", "1");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown command 'tarce'", "tarce", "-p", "1", "-o", "t.json");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "0.5", "3");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "0.5", "-p", "1");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid interval 'x'", "-p", "1", "x");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid interval '-'", "-p", "1", "-");
}

/* Numbers: plain decimal. " 5", "+5" and "0x10" were taken (strtol and
 * strtod skip blanks and take a sign; strtod takes hex and "inf"), and a
 * count given both as -n and as the argument kept the argument without a
 * word (a review, 2026-12-07). */
static void test_numbers(void)
{
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid PID ' 5'", "-p", " 5");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid PID '+5'", "-p", "+5");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid count '+3'", "-p", "1", "--batch", "-n", "+3");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid count ' 3'", "-p", "1", "0.5", " 3");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid interval '0x10'", "-p", "1", "0x10");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid interval '+1'", "-p", "1", "+1");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid interval 'inf'", "-p", "1", "inf");
	EXPECT(SCHEDTOP_ARGS_USAGE, "invalid duration ' 2'", "trace", "-p", "1", "-o", "t.json",
	       "-d", " 2");
	EXPECT(SCHEDTOP_ARGS_USAGE, "the count given twice", "-p", "1", "--batch", "-n", "5", "1",
	       "3");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--batch", "-n", "5", "0.25");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", ".5", "3");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "1e-1", "3");
}

/* options of another mode were taken and did nothing: no file written, no
 * end to the run, a prefix never looked at */
static void test_other_modes_options(void)
{
	EXPECT(SCHEDTOP_ARGS_USAGE, "-o works with trace, convert and record only", "-p", "1",
	       "--batch", "--json", "-o", "out.jsonl");
	EXPECT(SCHEDTOP_ARGS_USAGE, "-o works with trace, convert and record only", "metrics",
	       "-p", "1", "--once", "-o", "m.txt");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--duration and --warmup work with trace only", "-p", "1",
	       "--batch", "--duration", "3");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--duration and --warmup work with trace only", "record",
	       "-p", "1", "-o", "d", "--warmup", "1");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--count works with the live view and --batch only",
	       "trace", "-p", "1", "-o", "t.json", "-n", "3");
	EXPECT(SCHEDTOP_ARGS_USAGE, "--prefix works with --no-bpf only", "-p", "1", "--batch",
	       "--prefix", "io");
	/* where they belong */
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "trace", "-p", "1", "-d", "3", "-w", "1", "-o", "t.json");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "convert", "e.jsonl", "-o", "t.json");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "record", "-p", "1", "-o", "d");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--batch", "-n", "3");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--prefix", "io", "--no-bpf", "--batch");
}

/* --help is printed with fputs: a "%%" in it was printed as two */
static void test_help_text(void)
{
	if (strstr(schedtop_usage, "%%")) {
		failures++;
		fprintf(stderr, "FAIL: --help holds '%%%%': %s\n", strstr(schedtop_usage, "%%") - 20);
	}
	if (!strstr(schedtop_usage, "more than PCT %\n")) {
		failures++;
		fprintf(stderr, "FAIL: --help lacks 'more than PCT %%'\n");
	}
	/* the example program is where the README's build puts it (it said
	 * build/examples/skewed, which no documented build makes) */
	if (!strstr(schedtop_usage, "-- build/release/examples/skewed ")) {
		failures++;
		fprintf(stderr, "FAIL: --help's example is not build/release/examples/skewed\n");
	}
}

/* An unknown option is named as given: in "-p 1 -Zb" it was said to be
 * '1', the word before (getopt had not left "-Zb" yet). */
static void test_unknown_option(void)
{
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '-Z'", "-p", "1", "-Zb");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '-Z'", "-p", "1", "--batch", "-Zb");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '-Z'", "-p", "1", "-bZ");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '-N'", "-p", "1", "-Nb");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '--bogus'", "-p", "1", "--bogus");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '--batch=3'", "-p", "1", "--batch=3");
	EXPECT(SCHEDTOP_ARGS_USAGE, "unknown option '--no-bpf=1'", "-p", "1", "--no-bpf=1");
	EXPECT(SCHEDTOP_ARGS_USAGE, "option needs an argument: -n", "-p", "1", "--batch", "-n");
	/* the long-only options still work */
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--no-bpf", "--prefix", "load", "--batch");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "record", "-p", "1", "--last", "5s", "--on", "lint",
	       "--max-events", "2048", "-o", "d");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "metrics", "-p", "1", "--listen", "127.0.0.1:9464");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "metrics", "-p", "1", "--once");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "diff", "a", "b", "--fail-over", "10", "--min-change", "2");
	EXPECT(SCHEDTOP_ARGS_OK, NULL, "-p", "1", "--wait", "--batch");
}

int main(void)
{
	test_record();
	test_unknown_command();
	test_unknown_option();
	test_other_modes_options();
	test_help_text();
	test_numbers();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("PASS\n");
	return 0;
}
