/*
 * args.c - schedtop's command line (see args.h).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "args.h"

/* The text of --help: printed as it is (fputs), so '%' is written once. */
const char schedtop_usage[] =
	"Usage: schedtop [-p PID] [-v] [--batch [-n N] [--json]] [interval [count]]\n"
	"       schedtop -p PID --no-bpf [--prefix NAME] [--batch [--json]] [interval [count]]\n"
	"       schedtop [options] -- CMD [ARGS...]\n"
	"       schedtop trace (-p PID | -- CMD...) --duration S [--warmup S] -o FILE\n"
	"       schedtop list\n"
	"       schedtop report SNAPSHOTS.jsonl [--json]\n"
	"       schedtop convert EVENTS.jsonl -o TRACE.json\n"
	"       schedtop diff A B [--fail-over PCT] [--min-change PCT] [--json]\n"
	"       schedtop metrics (-p PID | -- CMD...) (--listen ADDR:PORT | --once [interval])\n"
	"       schedtop record (-p PID | -- CMD...) [--last 30s] [--on lint,signal,exit] -o DIR\n"
	"\n"
	"Watch the workers of a weft runtime: steals, parks, queue depths (USDT\n"
	"probes of libweft) joined with the kernel's view of the same threads.\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID       process to watch\n"
	"      --wait          with -p: wait until the process loads libweft (dlopen)\n"
	"  -b, --batch         no terminal UI: one report per interval on stdout\n"
	"  -n, --count N       stop after N intervals (same as the count argument)\n"
	"  -j, --json          with --batch: one JSON object per line\n"
	"  -r, --record FILE   with --batch: also write raw snapshots (for `schedtop report`)\n"
	"      --no-bpf        no BPF, no privileges needed: per worker thread the\n"
	"                      software perf counters (task-clock, context switches,\n"
	"                      migrations) and /proc; the columns that need BPF are\n"
	"                      listed as missing. Without it, schedtop exits 77 when\n"
	"                      it may not load BPF (it never falls back by itself).\n"
	"                      On a terminal it clears the screen each interval\n"
	"                      (terminfo's clear: TERM=dumb is refused, use --batch)\n"
	"      --prefix NAME   --no-bpf: worker threads are named NAME-<n>\n"
	"                      (default weft-worker, the runtime's thread_name_prefix)\n"
	"  -d, --duration S    trace: seconds to record (default 5)\n"
	"  -w, --warmup S      trace: seconds to wait before recording (default 0)\n"
	"  -o, --output FILE   trace/convert: trace-event JSON to FILE, JSON lines to\n"
	"                      FILE with .jsonl instead of .json (trace -o /dev/stdout\n"
	"                      or a pipe: the JSON only, the summary on stderr)\n"
	"      --listen A:P    metrics: serve GET /metrics (Prometheus text format) on\n"
	"                      ADDR:PORT, e.g. 127.0.0.1:9464, [::1]:9464, :9464\n"
	"      --once          metrics: print one scrape after `interval` (default 1 s)\n"
	"      --last DUR      record: keep the last DUR of events (30s, 2m, 500ms)\n"
	"      --on LIST       record: dump the window when a lint fires (lint), on\n"
	"                      SIGUSR1 to schedtop (signal), when it stops (exit)\n"
	"      --max-events N  record: event ring capacity (default 262144, 14 MiB)\n"
	"      --fail-over PCT diff: exit 1 when a metric got worse by more than PCT %\n"
	"                      (significant changes of directional metrics only)\n"
	"      --min-change PCT diff: smallest change called significant (default 5)\n"
	"  -v, --verbose       libbpf debug output\n"
	"  -h, --help          this help\n"
	"  interval            seconds between reports (default 1, may be fractional)\n"
	"  count               number of reports (default: until the target exits)\n"
	"\n"
	"Examples:\n"
	"  schedtop -p $(pidof myserver)           # live view, 1 s refresh\n"
	"  schedtop -p 1234 --batch -n 5 --json    # 5 JSON objects, 1 per second\n"
	"  schedtop -p 1234 --batch 0.5 10         # text, every 0.5 s, 10 times\n"
	"  schedtop trace -p 1234 --duration 3 -o run.json   # open run.json in ui.perfetto.dev\n"
	"  schedtop --batch -- build/release/examples/skewed 5 2  # start a program and watch it\n"
	"  schedtop --batch -- sh -c './server > log'        # through a wrapper (sh, env, taskset)\n"
	"  schedtop list                           # which processes use weft\n"
	"  schedtop -p 1234 --no-bpf --batch -n 3  # as an ordinary user, own process\n"
	"\n"
	"Live view keys: q quit, h help, s change sort, 1 workers, 2 steal matrix,\n"
	"3 histograms.\n"
	"\n"
	"Privileges: root, or a copy with `setcap cap_bpf,cap_perfmon,cap_sys_admin=p`\n"
	"(docs/OBSERVABILITY.md, Privileges); capabilities are used only to load and\n"
	"attach, and only your own (dumpable) processes may be watched unless root.\n"
	"Exit status: 0 ok, 1 failure (also: not allowed to watch that process),\n"
	"2 usage, 77 BPF unavailable: a capability missing, no BTF (never with --no-bpf).\n"
	"With -- CMD, a CMD that fails on its own passes its status on (128+N if killed\n"
	"by signal N), as time(1) does; one that schedtop stops leaves 0.\n";

static int usage_err(FILE *err, const char *fmt, const char *arg)
{
	fprintf(err, "schedtop: ");
	fprintf(err, fmt, arg ? arg : "");
	fprintf(err, "\nTry 'schedtop -h' for more information.\n");
	return SCHEDTOP_ARGS_USAGE;
}

/* Plain decimal only: strtod and strtol also take a leading blank or
 * sign, and strtod hex ("0x10" was 16 s) and "inf" (found by a review) */
static bool plain_number(const char *s, bool fraction)
{
	if (!isdigit((unsigned char)s[0]) && !(fraction && s[0] == '.'))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) &&
		    !(fraction && (*s == '.' || *s == 'e' || *s == 'E' || *s == '-' || *s == '+')))
			return false;
	return true;
}

static bool parse_double(const char *s, double *out)
{
	char *e;
	errno = 0;
	if (!plain_number(s, true))
		return false;
	double v = strtod(s, &e);
	if (e == s || *e || errno || !(v >= 0) || v > 1e9) /* !(v >= 0): NaN too */
		return false;
	*out = v;
	return true;
}

static bool parse_int(const char *s, long *out)
{
	char *e;
	errno = 0;
	if (!plain_number(s, false))
		return false;
	long v = strtol(s, &e, 10);
	if (e == s || *e || errno || v < 0)
		return false;
	*out = v;
	return true;
}

unsigned rec_parse_on(const char *s)
{
	unsigned on = 0;
	char buf[128];
	if (!s || strlen(s) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "lint")) on |= REC_ON_LINT;
		else if (!strcmp(t, "signal")) on |= REC_ON_SIGNAL;
		else if (!strcmp(t, "exit")) on |= REC_ON_EXIT;
		else return 0;
	}
	return on;
}

double rec_parse_duration(const char *s)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (e == s || errno || !(v > 0) || !isfinite(v))
		return -1;
	if (!*e || !strcmp(e, "s"))
		;
	else if (!strcmp(e, "ms"))
		v /= 1000;
	else if (!strcmp(e, "m"))
		v *= 60;
	else if (!strcmp(e, "h"))
		v *= 3600;
	else
		return -1;
	return v > 1e6 ? -1 : v;
}

static int check_mode(struct schedtop_args *a, FILE *err)
{
	char **pos = a->pos;
	int npos = a->npos;
	switch (a->mode) {
	case M_LIST:
		if (npos)
			return usage_err(err, "list takes no arguments%s", NULL);
		return SCHEDTOP_ARGS_OK;
	case M_REPORT:
		if (npos != 1)
			return usage_err(err, "report needs one snapshot file%s", NULL);
		return SCHEDTOP_ARGS_OK;
	case M_CONVERT:
		if (npos != 1 || !a->out)
			return usage_err(err, "convert needs EVENTS.jsonl and -o FILE%s", NULL);
		return SCHEDTOP_ARGS_OK;
	case M_DIFF:
		if (npos != 2)
			return usage_err(err, "diff needs two recordings, A and B%s", NULL);
		return SCHEDTOP_ARGS_OK;
	case M_TRACE:
		if (npos)
			return usage_err(err, "trace takes no positional argument ('%s')", pos[0]);
		if (!a->out)
			return usage_err(err, "trace needs -o FILE%s", NULL);
		break;
	case M_RECORD:
		if (npos > 1)
			return usage_err(err, "record takes at most an interval ('%s')", pos[1]);
		if (npos == 1 && (!parse_double(pos[0], &a->interval) || a->interval < 0.01))
			return usage_err(err, "invalid interval '%s'", pos[0]);
		if (!a->out)
			return usage_err(err, "record needs -o DIR%s", NULL);
		if (!rec_parse_on(a->on))
			return usage_err(err, "invalid --on '%s' (lint, signal, exit, comma-separated)",
					 a->on);
		if (a->last < a->interval)
			return usage_err(err, "--last must be at least one interval%s", NULL);
		break;
	case M_METRICS:
		if (npos > 1)
			return usage_err(err, "metrics takes at most an interval ('%s')", pos[1]);
		if (npos == 1 && (!a->once || !parse_double(pos[0], &a->interval) ||
				  a->interval < 0.01))
			return usage_err(err, "invalid interval '%s' (metrics --once INTERVAL)", pos[0]);
		if (!a->listen == !a->once)
			return usage_err(err, "metrics needs --listen ADDR:PORT or --once%s", NULL);
		if (a->json || a->batch)
			return usage_err(err, "metrics writes the Prometheus text format only%s", NULL);
		break;
	case M_TOP:
		/* a word first: a mistyped or unknown command, not an interval
		 * ("schedtop stall -p PID" said "invalid interval 'stall'") */
		if (npos >= 1 && pos[0] == a->first_word &&
		    ((pos[0][0] >= 'a' && pos[0][0] <= 'z') || (pos[0][0] >= 'A' && pos[0][0] <= 'Z')))
			return usage_err(err, "unknown command '%s' (commands: trace, list, report, "
					      "convert, diff, metrics, record)", pos[0]);
		if (npos > 2)
			return usage_err(err, "too many arguments ('%s')", pos[2]);
		if (npos >= 1 && (!parse_double(pos[0], &a->interval) || a->interval < 0.01))
			return usage_err(err, "invalid interval '%s'", pos[0]);
		/* -n N and a count argument both: one was ignored */
		if (npos == 2 && a->count)
			return usage_err(err, "the count given twice (-n and '%s'): give one", pos[1]);
		if (npos == 2 && (!parse_int(pos[1], &a->count) || a->count <= 0))
			return usage_err(err, "invalid count '%s'", pos[1]);
		if (a->json && !a->batch)
			return usage_err(err, "--json needs --batch%s", NULL);
		break;
	}
	/* the modes that watch a process */
	if (!a->pid && !a->cmd)
		return usage_err(err, "need -p PID or -- CMD%s", NULL);
	if (a->pid && a->cmd)
		return usage_err(err, "-p and -- CMD exclude each other%s", NULL);
	if (a->no_bpf && a->mode != M_TOP)
		return usage_err(err, "--no-bpf works with the live view and --batch only%s", NULL);
	if (a->wait_lib && !a->pid)
		return usage_err(err, "--wait works with -p PID (with -- CMD schedtop follows CMD "
				      "until a process loads libweft)%s", NULL);
	if (a->wait_lib && a->no_bpf)
		return usage_err(err, "--wait needs BPF (--no-bpf finds workers by name as they "
				      "appear)%s", NULL);
	if (a->no_bpf && a->record)
		return usage_err(err, "--record needs BPF (it records BPF snapshots)%s", NULL);
	/* only --batch writes snapshots: the live view and trace took -r FILE,
	 * left it empty and said nothing (found by a review) */
	if (a->record && (a->mode != M_TOP || !a->batch))
		return usage_err(err, "--record FILE works with --batch only (the live view, "
				      "trace, metrics and record do not write snapshots)%s", NULL);
	return SCHEDTOP_ARGS_OK;
}

int schedtop_parse_args(int argc, char **argv, struct schedtop_args *a, FILE *err)
{
	*a = (struct schedtop_args){
		.mode = M_TOP, .prefix = "weft-worker", .interval = 1.0, .duration = 5.0,
		.fail_over = -1, .min_change = 5.0,
		.last = 30.0, .on = "lint,signal,exit", .max_events = 262144,
	};
	int nopt = argc;
	for (int i = 1; i < argc; i++)
		if (argv[i] && !strcmp(argv[i], "--")) {
			nopt = i;
			a->cmd = argv + i + 1;
			argv[i] = NULL;
			break;
		}
	if (a->cmd && !a->cmd[0])
		return usage_err(err, "-- needs a command%s", NULL);
	int first = 1;
	a->first_word = nopt > 1 ? argv[1] : NULL;
	if (nopt > 1) {
		if (!strcmp(argv[1], "trace")) a->mode = M_TRACE;
		else if (!strcmp(argv[1], "list")) a->mode = M_LIST;
		else if (!strcmp(argv[1], "report")) a->mode = M_REPORT;
		else if (!strcmp(argv[1], "convert")) a->mode = M_CONVERT;
		else if (!strcmp(argv[1], "diff")) a->mode = M_DIFF;
		else if (!strcmp(argv[1], "metrics")) a->mode = M_METRICS;
		else if (!strcmp(argv[1], "record")) a->mode = M_RECORD;
		if (a->mode != M_TOP)
			first = 2;
	}
	/* the long options without a short form: values no short option has,
	 * so that optopt names an unknown short option (below) */
#define LONG_ONLY(c) (0x100 | (c))
	static const struct option lo[] = {
		{ "pid", required_argument, 0, 'p' },   { "batch", no_argument, 0, 'b' },
		{ "count", required_argument, 0, 'n' }, { "json", no_argument, 0, 'j' },
		{ "record", required_argument, 0, 'r' },
		{ "duration", required_argument, 0, 'd' }, { "warmup", required_argument, 0, 'w' },
		{ "output", required_argument, 0, 'o' }, { "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },        { "no-bpf", no_argument, 0, LONG_ONLY('N') },
		{ "prefix", required_argument, 0, LONG_ONLY('P') },
		{ "wait", no_argument, 0, LONG_ONLY('A') },
		{ "last", required_argument, 0, LONG_ONLY('T') }, { "on", required_argument, 0, LONG_ONLY('E') },
		{ "max-events", required_argument, 0, LONG_ONLY('X') },
		{ "listen", required_argument, 0, LONG_ONLY('L') }, { "once", no_argument, 0, LONG_ONLY('O') },
		{ "fail-over", required_argument, 0, LONG_ONLY('F') }, { "min-change", required_argument, 0, LONG_ONLY('M') },
		{ 0, 0, 0, 0 },
	};
	char **av = argv + first - 1; /* av[0] stands in for the program name */
	int ac = nopt - first + 1;
	optind = 0; /* glibc: full reinitialisation, the parser may run again */
	opterr = 0;
	int o;
	bool prefix_given = false;
	const char *misplaced = NULL; /* said after a mistyped command's message */
	/* An option of another mode was taken and did nothing: `--batch -o
	 * FILE` wrote to stdout and left no file, `-p PID --duration 3` ran
	 * until Ctrl-C, `--prefix` without --no-bpf was never looked at
	 * (found by a review) */
	while ((o = getopt_long(ac, av, ":p:bn:jr:d:w:o:vh", lo, NULL)) != -1) {
		if ((o == 'd' || o == 'w') && a->mode != M_TRACE && !misplaced)
			misplaced = "--duration and --warmup work with trace only%s";
		if (o == 'o' && a->mode != M_TRACE && a->mode != M_CONVERT && a->mode != M_RECORD &&
		    !misplaced)
			misplaced = "-o works with trace, convert and record only (--batch writes to "
				    "stdout; --record FILE keeps snapshots)%s";
		if (o == 'n' && a->mode != M_TOP && !misplaced)
			misplaced = "--count works with the live view and --batch only%s";
		switch (o) {
		case 'p':
			if (!parse_int(optarg, &a->pid) || a->pid <= 0 || a->pid > 0x7fffffff)
				return usage_err(err, "invalid PID '%s'", optarg);
			break;
		case 'b': a->batch = true; break;
		case 'n':
			if (!parse_int(optarg, &a->count) || a->count <= 0)
				return usage_err(err, "invalid count '%s'", optarg);
			break;
		case 'j': a->json = true; break;
		case 'r': a->record = optarg; break;
		case 'd':
			if (!parse_double(optarg, &a->duration) || a->duration <= 0)
				return usage_err(err, "invalid duration '%s'", optarg);
			break;
		case 'w':
			if (!parse_double(optarg, &a->warmup))
				return usage_err(err, "invalid warmup '%s'", optarg);
			break;
		case 'o': a->out = optarg; break;
		case 'v': a->verbose = true; break;
		case LONG_ONLY('N'): a->no_bpf = true; break;
		case LONG_ONLY('P'):
			if (!optarg[0] || strlen(optarg) > 11 || strchr(optarg, '/'))
				return usage_err(err, "invalid thread name prefix '%s' (1 to 11 bytes)",
						 optarg);
			a->prefix = optarg;
			prefix_given = true;
			break;
		case LONG_ONLY('A'): a->wait_lib = true; break;
		case LONG_ONLY('T'):
		case LONG_ONLY('E'):
		case LONG_ONLY('X'):
			if (a->mode != M_RECORD)
				return usage_err(err, "--last, --on and --max-events work with record "
						      "only%s", NULL);
			if (o == LONG_ONLY('T') && (a->last = rec_parse_duration(optarg)) <= 0)
				return usage_err(err, "invalid --last '%s' (e.g. 30s, 2m, 500ms)", optarg);
			if (o == LONG_ONLY('E'))
				a->on = optarg;
			if (o == LONG_ONLY('X') && (!parse_int(optarg, &a->max_events) || a->max_events < 1024 ||
					 a->max_events > 100000000))
				return usage_err(err, "invalid --max-events '%s' (1024 to 1e8)", optarg);
			break;
		case LONG_ONLY('L'):
			if (a->mode != M_METRICS)
				return usage_err(err, "--listen works with metrics only%s", NULL);
			a->listen = optarg;
			break;
		case LONG_ONLY('O'):
			if (a->mode != M_METRICS)
				return usage_err(err, "--once works with metrics only%s", NULL);
			a->once = true;
			break;
		case LONG_ONLY('F'):
			if (a->mode != M_DIFF)
				return usage_err(err, "--fail-over works with diff only%s", NULL);
			if (!parse_double(optarg, &a->fail_over))
				return usage_err(err, "invalid --fail-over '%s' (percent >= 0)", optarg);
			break;
		case LONG_ONLY('M'):
			if (a->mode != M_DIFF)
				return usage_err(err, "--min-change works with diff only%s", NULL);
			if (!parse_double(optarg, &a->min_change))
				return usage_err(err, "invalid --min-change '%s' (percent >= 0)", optarg);
			break;
		case 'h': a->help = true; return SCHEDTOP_ARGS_OK;
		case ':': return usage_err(err, "option needs an argument: %s", av[optind - 1]);
		default:
			/* An unknown short option: getopt leaves optind on its word
			 * while more of it is to be read, so av[optind - 1] was the
			 * word before ("-p 1 -Zb" said "unknown option '1'"). "bjvh":
			 * a long option given a value it takes none of
			 * ("--batch=3"), named by its word. */
			if (optopt > 0 && optopt < 0x100 && !strchr("bjvh", optopt)) {
				char opt[3] = { '-', (char)optopt, '\0' };
				return usage_err(err, "unknown option '%s'", opt);
			}
			return usage_err(err, "unknown option '%s'", av[optind - 1]);
		}
	}
	a->pos = av + optind;
	a->npos = ac - optind;
	if (prefix_given && !a->no_bpf && !misplaced)
		misplaced = "--prefix works with --no-bpf only (with BPF the runtime names its "
			    "workers)%s";
	/* "tarce -p 1 -o t.json": the mistyped command is the news */
	bool word = a->mode == M_TOP && a->npos >= 1 && a->pos[0] == a->first_word &&
		    ((a->pos[0][0] >= 'a' && a->pos[0][0] <= 'z') ||
		     (a->pos[0][0] >= 'A' && a->pos[0][0] <= 'Z'));
	if (misplaced && !word)
		return usage_err(err, misplaced, NULL);
	return check_mode(a, err);
}
