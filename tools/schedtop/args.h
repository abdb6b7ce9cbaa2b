/*
 * args.h - schedtop's command line, parsed and checked without side
 * effects (no BPF, no fork), so that main() only dispatches and the parser
 * can be fuzzed on its own (tests/fuzz/fuzz_schedtop.c).
 */
#ifndef SCHEDTOP_ARGS_H
#define SCHEDTOP_ARGS_H

#include <stdbool.h>
#include <stdio.h>

enum schedtop_mode { M_TOP, M_TRACE, M_LIST, M_REPORT, M_CONVERT, M_DIFF, M_METRICS, M_RECORD };

struct schedtop_args {
	enum schedtop_mode mode;
	char **cmd;             /* the command after "--", or NULL */
	long pid, count;        /* count 0: until the target exits or Ctrl-C */
	bool batch, json, verbose, no_bpf, help;
	bool wait_lib;          /* -p PID --wait: wait until the process loads libweft */
	const char *prefix;     /* worker thread name prefix for --no-bpf */
	const char *out, *record;
	double interval, duration, warmup;
	double last;            /* record: the window, seconds */
	const char *on;         /* record: what dumps ("lint,signal,exit") */
	long max_events;        /* record: the event ring's capacity */
	const char *listen;     /* metrics: ADDR:PORT to serve /metrics on */
	bool once;              /* metrics: print one scrape and exit */
	double fail_over;       /* diff: gate threshold in percent; < 0: none */
	double min_change;      /* diff: smallest change called significant, percent */
	const char *first_word; /* argv[1] as given: a word there is a command */
	char **pos;             /* positional arguments left (report/convert: the file) */
	int npos;
};

/* record: what dumps the window (--on) */
#define REC_ON_LINT 1u
#define REC_ON_SIGNAL 2u
#define REC_ON_EXIT 4u

/* "lint,signal,exit" (any subset) to REC_ON_*; 0 on a bad token. */
unsigned rec_parse_on(const char *s);

/* "30s", "2m", "500ms", "1.5" (seconds) to seconds; < 0 when invalid. */
double rec_parse_duration(const char *s);

/* --help's text. */
extern const char schedtop_usage[];

#define SCHEDTOP_ARGS_OK 0
#define SCHEDTOP_ARGS_USAGE 2   /* the message went to `err` */

/*
 * Parse argv (argc entries) into *a. "--" in argv is replaced by NULL (the
 * command after it is a->cmd). Returns SCHEDTOP_ARGS_OK (a->help: print the
 * usage and exit 0) or SCHEDTOP_ARGS_USAGE. Every check that needs no
 * system call is done here: option values, the mode's positional
 * arguments, -p vs "--", and --no-bpf / --record combinations. Safe to
 * call many times in one process (getopt is reset).
 */
int schedtop_parse_args(int argc, char **argv, struct schedtop_args *a, FILE *err);

#endif /* SCHEDTOP_ARGS_H */
