/*
 * load.c - weft-load: load generator for weft with live progress, task
 * latency percentiles and the runtime's per-worker metrics.
 *
 *   weft-load --shape NAME [--workers N] [--duration S] [--warmup S]
 *             [--rate R | --concurrency C] [--seed S] [--units N] [--json]
 *
 * The driver (main thread, outside the runtime) issues units (see load.h):
 * closed loop keeps C units in flight (a new one starts when one completes),
 * open loop starts R units per second whatever happens to the earlier ones.
 * After warmup + duration (or N units) it stops issuing, waits for the units
 * in flight (at most --drain seconds; --units: until they are done, or
 * --drain), shuts the runtime down (so every worker publishes its final
 * counters) and prints the summary.
 *
 * Statistics are per thread (each worker and fiber completion records into
 * the thread it runs on; single writer, relaxed atomics so the progress
 * thread may read them while they change) and summed on demand.
 *
 * Exit: 0 ok, 1 failure (runtime error, echo errors, lost tasks), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load.h"

struct weft_runtime *load_rt;
uint64_t load_seed = 1;

/* ------------------------------------------------------------- histogram */

unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned top = (unsigned)(v >> (msb - 4)); /* 16..31 */
	unsigned i = (msb - 3) * HIST_SUB + (top & 15u);
	return i < HIST_N ? i : HIST_N - 1;
}

uint64_t hist_lower(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned msb = i / HIST_SUB + 3, sub = i % HIST_SUB;
	return (uint64_t)(16 + sub) << (msb - 4);
}

uint64_t hist_upper(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned msb = i / HIST_SUB + 3;
	return hist_lower(i) + ((uint64_t)1 << (msb - 4)) - 1;
}

struct hist {
	uint64_t b[HIST_N];
	uint64_t count, sum, min, max;
};

static void hist_clear(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	if (!h->count)
		return 0;
	/* rank = ceil(p% of count) in integers, p taken in thousandths of a
	 * percent: ceil() of a double put p99.9 one rank high whenever count
	 * was a multiple of 1000 (found by a review) */
	uint64_t pm = (uint64_t)llround(p * 1000.0);
	uint64_t want = (uint64_t)(((unsigned __int128)h->count * pm + 99999) / 100000), seen = 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t u = hist_upper(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

/* ------------------------------------------------------ per-thread stats */

struct tstats {
	atomic_uint_fast64_t done, cancelled, digest, ops, op_errors;
	atomic_uint_fast64_t lat_sum, lat_min, lat_max, op_sum, op_max;
	atomic_uint_fast64_t unit_sum, unit_max;
	atomic_uint_fast64_t lat[HIST_N], op[HIST_N], unit[HIST_N];
	struct tstats *next;      /* all stats ever made (for the sums) */
	struct tstats *free_next; /* recycled after its thread exited */
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tstats *stats_all;
static __thread struct tstats *stats_tls;
/* Stats of exited threads, handed to the next new thread: block_in_place
 * starts a thread per hand-off, so per-thread stats must be recycled or
 * memory grows with every hand-off. Counts keep accumulating (only sums
 * are reported), and there is still one writer at a time. */
static struct tstats *stats_free;
static pthread_key_t stats_key;
static pthread_once_t stats_once = PTHREAD_ONCE_INIT;

static void stats_thread_exit(void *p)
{
	struct tstats *s = p;
	pthread_mutex_lock(&stats_lock);
	s->free_next = stats_free;
	stats_free = s;
	pthread_mutex_unlock(&stats_lock);
}

static void stats_key_make(void) { pthread_key_create(&stats_key, stats_thread_exit); }

/* Single-writer add: only the owning thread writes its tstats. */
static inline void add(atomic_uint_fast64_t *p, uint64_t v)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/* noinline + barrier: a fiber may move to another thread between two weft
 * calls, so the thread-local pointer is looked up afresh on every use. */
static __attribute__((noinline)) struct tstats *my_stats(void)
{
	__asm__ volatile("" ::: "memory");
	struct tstats *s = stats_tls;
	if (s)
		return s;
	pthread_once(&stats_once, stats_key_make);
	pthread_mutex_lock(&stats_lock);
	s = stats_free;
	if (s)
		stats_free = s->free_next;
	pthread_mutex_unlock(&stats_lock);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			abort();
		atomic_store_explicit(&s->lat_min, UINT64_MAX, memory_order_relaxed);
		pthread_mutex_lock(&stats_lock);
		s->next = stats_all;
		stats_all = s;
		pthread_mutex_unlock(&stats_lock);
	}
	stats_tls = s;
	pthread_setspecific(stats_key, s);
	return s;
}

static atomic_long units_done, units_lost;
static sem_t unit_slots; /* closed loop: free slots */
static bool closed_loop;
static uint64_t lat_cut_ns; /* record task latency only for completions after this */

void node_init(struct node *n, struct unit *u, uint64_t hash)
{
	atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
	n->u = u;
	n->hash = hash;
	n->done = false;
	n->t_spawn = weft_now_ns();
}

static void unit_put(struct unit *u)
{
	/* acq_rel: the last one sees every node's writes before freeing. */
	if (atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (atomic_load_explicit(&u->lost, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&units_lost, 1, memory_order_relaxed);
	} else {
		uint64_t now = weft_now_ns(), lat = now > u->t_start ? now - u->t_start : 0;
		if (now >= lat_cut_ns) {
			struct tstats *s = my_stats();
			add(&s->unit[hist_index(lat)], 1);
			add(&s->unit_sum, lat);
			if (lat > atomic_load_explicit(&s->unit_max, memory_order_relaxed))
				atomic_store_explicit(&s->unit_max, lat, memory_order_relaxed);
		}
	}
	atomic_fetch_add_explicit(&units_done, 1, memory_order_release); /* pairs with drain */
	if (closed_loop)
		sem_post(&unit_slots);
	free(u);
}

void node_done(struct node *n)
{
	uint64_t now = weft_now_ns(), lat = now - n->t_spawn;
	struct tstats *s = my_stats();
	add(&s->done, 1);
	add(&s->digest, n->hash);
	if (now >= lat_cut_ns) {
		add(&s->lat[hist_index(lat)], 1);
		add(&s->lat_sum, lat);
		if (lat < atomic_load_explicit(&s->lat_min, memory_order_relaxed))
			atomic_store_explicit(&s->lat_min, lat, memory_order_relaxed);
		if (lat > atomic_load_explicit(&s->lat_max, memory_order_relaxed))
			atomic_store_explicit(&s->lat_max, lat, memory_order_relaxed);
	}
	n->done = true;
	unit_put(n->u);
}

void node_drop(struct node *n)
{
	if (n->done)
		return;
	add(&my_stats()->cancelled, 1);
	atomic_store_explicit(&n->u->lost, true, memory_order_relaxed);
	n->done = true;
	unit_put(n->u);
}

void op_record(uint64_t latency_ns)
{
	struct tstats *s = my_stats();
	add(&s->ops, 1);
	if (weft_now_ns() >= lat_cut_ns) {
		add(&s->op[hist_index(latency_ns)], 1);
		add(&s->op_sum, latency_ns);
		if (latency_ns > atomic_load_explicit(&s->op_max, memory_order_relaxed))
			atomic_store_explicit(&s->op_max, latency_ns, memory_order_relaxed);
	}
}

void op_error(void)
{
	add(&my_stats()->op_errors, 1);
}

struct totals {
	uint64_t done, cancelled, digest, ops, op_errors;
	struct hist lat, op, unit;
};

static void totals_read(struct totals *t, bool hists)
{
	memset(t, 0, sizeof(*t));
	hist_clear(&t->lat);
	hist_clear(&t->op);
	hist_clear(&t->unit);
	pthread_mutex_lock(&stats_lock);
	for (struct tstats *s = stats_all; s; s = s->next) {
#define RD(f) atomic_load_explicit(&s->f, memory_order_relaxed)
		t->done += RD(done);
		t->cancelled += RD(cancelled);
		t->digest += RD(digest);
		t->ops += RD(ops);
		t->op_errors += RD(op_errors);
		if (!hists)
			continue;
		for (unsigned i = 0; i < HIST_N; i++) {
			uint64_t a = RD(lat[i]), b = RD(op[i]), c = RD(unit[i]);
			t->lat.b[i] += a;
			t->lat.count += a;
			t->op.b[i] += b;
			t->op.count += b;
			t->unit.b[i] += c;
			t->unit.count += c;
		}
		t->unit.sum += RD(unit_sum);
		if (RD(unit_max) > t->unit.max)
			t->unit.max = RD(unit_max);
		t->lat.sum += RD(lat_sum);
		t->op.sum += RD(op_sum);
		if (RD(lat_min) < t->lat.min)
			t->lat.min = RD(lat_min);
		if (RD(lat_max) > t->lat.max)
			t->lat.max = RD(lat_max);
		if (RD(op_max) > t->op.max)
			t->op.max = RD(op_max);
#undef RD
	}
	pthread_mutex_unlock(&stats_lock);
	/* op and unit minimum: from the histogram */
	for (unsigned i = 0; t->op.count && i < HIST_N; i++)
		if (t->op.b[i]) {
			t->op.min = hist_lower(i);
			break;
		}
	for (unsigned i = 0; t->unit.count && i < HIST_N; i++)
		if (t->unit.b[i]) {
			t->unit.min = hist_lower(i);
			break;
		}
}

/* --------------------------------------------------------------- options */

/* Decimals of the progress lines' time: as many as --interval has (up to
 * 3). With one, --interval 0.05 printed each time twice ("0.1s", "0.1s",
 * "0.2s", ...) and 0.25 wrote 0.75 s as "0.8s" (found by a review). */
static int time_decimals = 1;

struct cfg {
	const struct shape *shape;
	int workers;
	double duration, warmup, rate, interval, drain;
	unsigned concurrency;
	uint64_t units;
	bool json, quiet, have_rate, have_conc, have_dur, have_drain, seed_set;
	const char *output;
};

static const char usage_text[] =
	"Usage: weft-load --shape NAME [--workers N] [--duration S] [--warmup S]\n"
	"                 [--rate R | --concurrency C] [--seed S] [--units N] [--json]\n"
	"\n"
	"Run a workload on a weft runtime; print progress on stderr once per\n"
	"second and a summary at the end (throughput, task latency spawn ->\n"
	"completion, per-worker steals/parks/overflows from the runtime's metrics).\n"
	"\n"
	"  -s, --shape NAME       workload (see below)\n"
	"  -w, --workers N        worker threads, 1..256 (default: CPUs)\n"
	"  -d, --duration S       seconds to measure after the warmup, 0.001..1e6\n"
	"                         (default 10)\n"
	"  -W, --warmup S         seconds of load before measuring, 0..1e6 (default 0)\n"
	"  -r, --rate R           open loop: start R units per second, 0.001..1e9\n"
	"  -c, --concurrency C    closed loop: keep C units in flight, 1..1000000\n"
	"  -S, --seed S           graph seed (default 1); same seed -> same task graph\n"
	"  -u, --units N          issue exactly N units, no time limit (exact task count;\n"
	"                         not with --duration or --warmup)\n"
	"  -j, --json             print the summary as one JSON object on stdout\n"
	"  -o, --output FILE      also write the JSON summary (with the time series) to FILE\n"
	"  -i, --interval S       progress interval, 0.05..3600 (default 1)\n"
	"      --drain S          wait at most S seconds (0..3600) for units in flight\n"
	"                         (default 10; with --units none until Ctrl-C, then 10)\n"
	"      --extra-spin N     N more spin iterations (0..1000000000) in every CPU-work call:\n"
	"                         a run made slower on purpose (the task graph and digest do not\n"
	"                         change)\n"
	"  -q, --quiet            no progress lines\n"
	"  -l, --list             list shapes\n"
	"  -h, --help             this text\n"
	"\n"
	"A unit is one wave / tree / burst / pair / connection of the shape; the\n"
	"graph of unit k (task count, parameters) depends only on the shape, the\n"
	"seed and k. A timed run issues units 0..n-1 and drains them, so its task\n"
	"count and graph digest equal the enumerated ones for its n; --units N\n"
	"fixes n. Ctrl-C (SIGINT, SIGTERM, a hangup) stops the run, which drains,\n"
	"shuts down and prints its summary, marked interrupted; a second Ctrl-C\n"
	"prints it at once. The summary is printed even\n"
	"when the shutdown times out (10 s). Exit: 0 ok, 1 failure (a shutdown\n"
	"that timed out or was not waited for too), 2 usage.\n"
	"\n"
	"Examples:\n"
	"  weft-load --shape skewed --workers 4 --duration 20\n"
	"  weft-load --shape echo --concurrency 64 --duration 5 --json\n"
	"  weft-load --shape bursty --rate 50 --duration 10\n"
	"  weft-load --shape fork-join --units 100 --seed 7 --json\n";

/* stdout took all that was written to it: the summary into a full disk
 * or a closed pipe was lost with exit 0 (found by a review). A reader that
 * left (EPIPE) knows it: no message, as schedtop. */
static bool stdout_ok(void)
{
	if (!fflush(stdout) && !ferror(stdout))
		return true;
	if (errno != EPIPE)
		fprintf(stderr, "weft-load: writing to stdout: %s\n", strerror(errno ? errno : EIO));
	return false;
}

static void list_shapes(FILE *f)
{
	fprintf(f, "Shapes:\n");
	for (const struct shape *const *s = load_shapes; *s; s++)
		fprintf(f, "  %-10s %s\n", (*s)->name, (*s)->help);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "weft-load: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'weft-load --help'.\n");
	return 2;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	/* digits only: strtoull skips blanks and then takes a sign, so " -1"
	 * passed the check of the first byte and was 2^64 - 1 */
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10); /* "010" is ten, not eight */
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
	static const struct option opts[] = {
		{ "shape", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "rate", required_argument, NULL, 'r' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'S' },
		{ "units", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		{ "drain", required_argument, NULL, 'D' },
		{ "extra-spin", required_argument, NULL, 'X' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *shape = NULL;
	char want = 0; /* 'l' --list, 'h' --help: once the words are all read */
	uint64_t u;
	int o;
	*c = (struct cfg){ .duration = 10, .interval = 1, .drain = 10 };
	opterr = 0;
	char badopt[3] = "-?";
	for (int before = optind;
	     (o = getopt_long(argc, argv, ":s:w:d:W:r:c:S:u:jo:i:qlh", opts, NULL)) != -1;
	     before = optind) {
		/* The option at fault, for a message: a long one is the word
		 * getopt just passed; a short one is optopt, since inside a
		 * cluster ("-zq") optind has not moved and argv[optind - 1] is
		 * the word before (it said "unknown option 'skewed'") */
		const char *bad = argv[optind - 1];
		if ((o == '?' || o == ':') && optopt &&
		    !(optind != before && !strncmp(bad, "--", 2))) {
			badopt[1] = (char)optopt;
			bad = badopt;
		}
		switch (o) {
		case 's': shape = optarg; break;
		case 'w':
			if (!parse_u64(optarg, 1, WEFT_MAX_WORKERS, &u))
				return usage_error("--workers: expected 1..256, got '%s'", optarg);
			c->workers = (int)u;
			break;
		/* The messages name the range checked: "expected seconds > 0"
		 * refused --duration 1e7 and 0.0001, both > 0 (found by a
		 * review) */
		case 'd':
			if (!parse_double(optarg, 0.001, 1e6, &c->duration))
				return usage_error("--duration: expected 0.001..1e6 seconds, got '%s'", optarg);
			c->have_dur = true;
			break;
		case 'W':
			if (!parse_double(optarg, 0, 1e6, &c->warmup))
				return usage_error("--warmup: expected 0..1e6 seconds, got '%s'", optarg);
			break;
		case 'r':
			if (!parse_double(optarg, 1e-3, 1e9, &c->rate))
				return usage_error("--rate: expected 0.001..1e9 units per second, got '%s'",
						   optarg);
			c->have_rate = true;
			break;
		case 'c':
			if (!parse_u64(optarg, 1, 1000000, &u))
				return usage_error("--concurrency: expected 1..1000000, got '%s'", optarg);
			c->concurrency = (unsigned)u;
			c->have_conc = true;
			break;
		case 'S':
			if (!parse_u64(optarg, 0, UINT64_MAX, &load_seed))
				return usage_error("--seed: expected an unsigned integer, got '%s'", optarg);
			break;
		case 'u':
			if (!parse_u64(optarg, 1, UINT64_MAX, &c->units))
				return usage_error("--units: expected a count >= 1, got '%s'", optarg);
			break;
		case 'j': c->json = true; break;
		case 'o':
			/* "" (an unset variable) ran the whole run, wrote
			 * ./.tmp and failed at the end (found by a review) */
			if (!optarg[0])
				return usage_error("--output: expected a file name, got '%s'", optarg);
			c->output = optarg;
			break;
		case 'i':
			if (!parse_double(optarg, 0.05, 3600, &c->interval))
				return usage_error("--interval: expected 0.05..3600 seconds, got '%s'", optarg);
			break;
		case 'D':
			if (!parse_double(optarg, 0, 3600, &c->drain))
				return usage_error("--drain: expected 0..3600 seconds, got '%s'", optarg);
			c->have_drain = true;
			break;
		case 'X':
			if (!parse_u64(optarg, 0, 1000000000, &load_extra_spin))
				/* the limit in digits, as the value is read:
				 * "expected 0..1e9" refused 1e9 (found by a
				 * review) */
				return usage_error("--extra-spin: expected 0..1000000000 iterations (digits), "
						   "got '%s'", optarg);
			break;
		case 'q': c->quiet = true; break;
		case 'l':
		case 'h':
			if (!want || o == 'h')
				want = (char)o;
			break;
		case ':': return usage_error("option %s needs an argument", bad);
		default: return usage_error("unknown option '%s'", bad);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	/* After the check above: --list and --help acted as soon as they were
	 * read, and `--list extra`, `--help extra` exited 0 with the word
	 * never looked at (found by a review) */
	if (want == 'h')
		fputs(usage_text, stdout);
	if (want) {
		list_shapes(stdout);
		exit(stdout_ok() ? 0 : 1);
	}
	if (!shape) {
		fprintf(stderr, "weft-load: --shape is required\n");
		list_shapes(stderr);
		return 2;
	}
	for (const struct shape *const *s = load_shapes; *s; s++)
		if (!strcmp((*s)->name, shape))
			c->shape = *s;
	if (!c->shape) {
		fprintf(stderr, "weft-load: unknown shape '%s'\n", shape);
		list_shapes(stderr);
		return 2;
	}
	if (c->have_rate && c->have_conc)
		return usage_error("--rate (open loop) and --concurrency (closed loop) exclude each other%s", "");
	/* --units runs no warmup: with one, the measured span began after the
	 * run had ended (3.7e12 tasks/s: found by a review) */
	if (c->units && c->warmup > 0)
		return usage_error("--warmup and --units exclude each other (--units measures every unit)%s", "");
	/* nor a time limit: --units runs until its units are done, and a
	 * --duration beside it was ignored without a word (found by a review) */
	if (c->units && c->have_dur)
		return usage_error("--duration and --units exclude each other (--units runs until its "
				   "units are done)%s", "");
	if (!c->have_rate && !c->have_conc) {
		if (c->shape->open_loop) {
			c->rate = c->shape->default_rate;
			c->have_rate = true;
		} else {
			c->concurrency = c->shape->default_conc;
		}
	}
	closed_loop = !c->have_rate;
	for (double step = c->interval * 10; time_decimals < 3 && fabs(step - round(step)) > 1e-6;
	     step *= 10)
		time_decimals++;
	return 0;
}

/* ---------------------------------------------------------- progress/series */

struct sample {
	double t;                /* seconds since start */
	uint64_t tasks, ops;     /* completed so far */
	uint64_t units_issued, units_done;
	uint64_t p50, p99;       /* task latency over the interval */
	struct weft_metrics *m;  /* runtime metrics snapshot */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct sample *s;
	size_t n, cap;
} series = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, 0, 0 };

static struct cfg cfg;
static uint64_t t0_ns;
static atomic_long units_issued;
static volatile sig_atomic_t interrupted;
/* A second SIGINT/SIGTERM/SIGHUP: stop waiting (the drain, the shutdown) and
 * print the summary now, as a second Ctrl-C does to a Go or Tokio
 * program. Before, it was ignored: up to --drain and then 10 s of
 * shutdown went by (found by a review). */
static volatile sig_atomic_t forced;

static uint64_t sum_steal_ops(const struct weft_metrics *m, bool tasks)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < m->workers; i++)
		s += tasks ? m->worker[i].steal_count : m->worker[i].steal_operations;
	return s;
}

static uint64_t sum_parks(const struct weft_metrics *m)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < m->workers; i++)
		s += m->worker[i].park_count;
	return s;
}

static struct hist prev_lat; /* progress thread only */

static void take_sample(void)
{
	struct sample s = { .t = (double)(weft_now_ns() - t0_ns) / 1e9 };
	struct totals t;
	totals_read(&t, true);
	s.tasks = t.done;
	s.ops = t.ops;
	s.units_issued = (uint64_t)atomic_load(&units_issued);
	s.units_done = (uint64_t)atomic_load(&units_done);
	struct hist d;
	hist_clear(&d);
	for (unsigned i = 0; i < HIST_N; i++) {
		d.b[i] = t.lat.b[i] - prev_lat.b[i];
		d.count += d.b[i];
		if (d.b[i])
			d.max = hist_upper(i);
	}
	s.p50 = hist_pct(&d, 50);
	s.p99 = hist_pct(&d, 99);
	prev_lat = t.lat;
	if (weft_runtime_metrics(load_rt, &s.m))
		s.m = NULL;
	pthread_mutex_lock(&series.lock);
	if (series.n == series.cap) {
		size_t nc = series.cap ? series.cap * 2 : 64;
		struct sample *p = realloc(series.s, nc * sizeof(*p));
		if (!p)
			abort();
		series.s = p;
		series.cap = nc;
	}
	series.s[series.n++] = s;
	/* The rates compare with the last sample whose metrics snapshot was
	 * taken, over the time since it: a failed snapshot (no memory) leaves
	 * a hole, and comparing with zero across it printed the run's totals
	 * as one interval's rate. */
	struct sample *prev = series.n > 1 ? &series.s[series.n - 2] : NULL;
	struct sample *mprev = NULL;
	for (size_t i = series.n - 1; i-- > 0;)
		if (series.s[i].m) {
			mprev = &series.s[i];
			break;
		}
	pthread_mutex_unlock(&series.lock);

	if (cfg.quiet)
		return;
	double dt = prev ? s.t - prev->t : s.t;
	double mdt = mprev ? s.t - mprev->t : s.t;
	uint64_t ptasks = prev ? prev->tasks : 0;
	if (dt <= 0)
		dt = 1;
	if (mdt <= 0)
		mdt = 1;
	char steals[16] = "      -", stolen[16] = "       -", parks[16] = "     -";
	/* "-" when the interval measured no latency: in the warmup, where
	 * none is recorded, tasks completed by the million and the line
	 * said "p99 0.0us" (found by a review) */
	char p99[24] = "        -";
	if (d.count)
		snprintf(p99, sizeof(p99), "%7.1fus", (double)s.p99 / 1e3);
	if (s.m) {
		snprintf(steals, sizeof(steals), "%7.0f",
			 (double)(sum_steal_ops(s.m, false) - (mprev ? sum_steal_ops(mprev->m, false) : 0)) / mdt);
		snprintf(stolen, sizeof(stolen), "%8.0f",
			 (double)(sum_steal_ops(s.m, true) - (mprev ? sum_steal_ops(mprev->m, true) : 0)) / mdt);
		snprintf(parks, sizeof(parks), "%6.0f",
			 (double)(sum_parks(s.m) - (mprev ? sum_parks(mprev->m) : 0)) / mdt);
	}
	fprintf(stderr,
		"weft-load: %6.*fs %s tasks/s %9.0f  steals/s %s (%s tasks)  parks/s %s"
		"  p99 %s  inflight %ld\n",
		time_decimals, s.t, cfg.warmup > 0 && s.t < cfg.warmup ? "warmup" : "      ",
		(double)(s.tasks - ptasks) / dt, steals, stolen, parks, p99,
		(long)(s.units_issued - s.units_done));
}

static void *progress_main(void *arg)
{
	struct timespec ts;
	uint64_t next = t0_ns;
	pthread_mutex_lock(&series.lock);
	while (!series.stop) {
		next += (uint64_t)(cfg.interval * 1e9);
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (!series.stop && pthread_cond_timedwait(&series.cond, &series.lock, &ts) != ETIMEDOUT)
			;
		/* A line that came due is printed even if the run ended
		 * before this thread got the CPU to print it: on a loaded
		 * machine a 1 s run at --interval 0.5 printed no progress at
		 * all (load_shape_fork-join, once under ctest -j2 beside two
		 * builds). */
		if (series.stop && weft_now_ns() < next)
			break;
		pthread_mutex_unlock(&series.lock);
		take_sample();
		pthread_mutex_lock(&series.lock);
	}
	pthread_mutex_unlock(&series.lock);
	return NULL;
}

/* ------------------------------------------------------------------ driver */

static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		forced = 1;
	interrupted = 1;
}

/* The shutdown runs on a thread of its own, so that main can stop waiting
 * for it at a second signal. */
#define SHUTDOWN_NS (10ull * 1000000000u)
static sem_t shut_done;
static int shut_rc;

static void *shutdown_main(void *arg)
{
	(void)arg;
	shut_rc = weft_runtime_shutdown(load_rt, SHUTDOWN_NS);
	sem_post(&shut_done);
	return NULL;
}

/* 0: shut down; -ETIMEDOUT: a task still runs after 10 s; -EINTR: a second
 * signal came first; another error of weft_runtime_shutdown. */
static int shutdown_runtime(void)
{
	pthread_t th;
	if (sem_init(&shut_done, 0, 0) || pthread_create(&th, NULL, shutdown_main, NULL))
		return weft_runtime_shutdown(load_rt, SHUTDOWN_NS);
	for (;;) {
		uint64_t t = weft_now_ns() + 50000000u; /* a signal may go to any thread */
		struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
		if (!sem_clockwait(&shut_done, CLOCK_MONOTONIC, &ts))
			break;
		if (forced)
			return -EINTR; /* the thread goes on alone; the process ends soon */
	}
	pthread_join(th, NULL);
	return shut_rc;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !interrupted)
		;
}

static void issue(uint64_t k, uint64_t t_start)
{
	struct unit *u = calloc(1, sizeof(*u));
	if (!u)
		abort();
	u->idx = k;
	u->t_start = t_start;
	atomic_init(&u->refs, 1);
	atomic_fetch_add_explicit(&units_issued, 1, memory_order_relaxed);
	cfg.shape->start(u);
	unit_put(u); /* the issuer's reference */
}

/* Issue units k.. until the deadline (or --units); returns the next k.
 * Open loop keeps its schedule in next_open across calls, and in
 * next_frac the fraction of a ns its gaps have run up beyond it. */
static uint64_t next_open;
static double next_frac;

static uint64_t drive(uint64_t k, uint64_t deadline)
{
	if (closed_loop) {
		for (; !interrupted && (!cfg.units || k < cfg.units); k++) {
			/* sem_clockwait need not look at an expired deadline
			 * when a slot is free: without this a run with a high
			 * --concurrency went on for 0.8 s of a 0.1 s --duration */
			if (weft_now_ns() >= deadline)
				break;
			struct timespec ts = { (time_t)(deadline / 1000000000u),
					       (long)(deadline % 1000000000u) };
			int rc;
			while ((rc = sem_clockwait(&unit_slots, CLOCK_MONOTONIC, &ts)) && errno == EINTR &&
			       !interrupted)
				;
			if (rc)
				break;
			issue(k, weft_now_ns());
		}
	} else {
		/* The gaps in ns as they are, the fractions carried to the
		 * next: cut to whole ns (6 for the 6.67 of --rate 1.5e8, 1 for
		 * 1.67 at 6e8) they started up to 67 % more units than asked
		 * (found by a review). */
		double mean = 1e9 / cfg.rate;
		for (; !interrupted && (!cfg.units || k < cfg.units); k++) {
			/* the clock too, not only the schedule: a driver behind a
			 * rate it cannot issue kept issuing long past --duration
			 * (found by a review: 10 s for 0.2 s) */
			if (next_open >= deadline || weft_now_ns() >= deadline)
				break;
			sleep_until(next_open);
			if (interrupted)
				break;
			/* unit latency counts from the scheduled start, so a
			 * driver that falls behind does not hide the queueing
			 * (no coordinated omission) */
			issue(k, next_open);
			double g = cfg.shape->gap ? cfg.shape->gap(k) : 1.0;
			double gap = mean * g + next_frac;
			uint64_t whole = (uint64_t)gap;
			next_frac = gap - (double)whole;
			next_open += whole;
		}
	}
	return k;
}

/* -------------------------------------------------------------- output */

/* How the runtime's shutdown went (result.shutdown_rc), in the summary. */
static const char *shutdown_word(int rc)
{
	return !rc ? "ok" : rc == -ETIMEDOUT ? "timed_out" : rc == -EINTR ? "not_waited" : "failed";
}

static void json_hist_summary(FILE *f, const struct hist *h)
{
	fprintf(f,
		"{\"count\":%" PRIu64 ",\"min\":%" PRIu64 ",\"mean\":%.0f,\"p50\":%" PRIu64
		",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
		",\"buckets\":[",
		h->count, h->count ? h->min : 0, h->count ? (double)h->sum / (double)h->count : 0.0,
		hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99), hist_pct(h, 99.9), h->max);
	bool first = true;
	for (unsigned i = 0; i < HIST_N; i++)
		if (h->b[i]) {
			fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", first ? "" : ",",
				hist_lower(i), hist_upper(i), h->b[i]);
			first = false;
		}
	fprintf(f, "]}");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

struct result {
	uint64_t issued, t_measure, t_deadline, t_end;
	uint64_t tasks_at_measure, tasks_at_deadline, ops_at_measure, ops_at_deadline;
	struct totals tot;
	struct gsum expect;
	struct weft_metrics *m;
	bool drained;
	/* A signal stopped the run before its end: a timed run's window cut
	 * short, or a --units job left unfinished. Not the signal flag: a
	 * Ctrl-C in the drain of a timed run, after the whole --duration was
	 * measured, marked it interrupted and the report said it stopped
	 * before its end (found by a review). */
	bool interrupted;
	int shutdown_rc; /* shutdown_runtime's */
	int rc;
};

/* The run's worker count: the final snapshot's, else the last progress
 * sample's, else --workers; 0 when none is known (the CPUs' count, and
 * no snapshot taken). A failed final read wrote "workers": 0, which the
 * report took for 1 worker and dropped the other workers' events (found
 * by a review). */
static unsigned run_workers(const struct result *r)
{
	if (r->m)
		return r->m->workers;
	unsigned w = (unsigned)cfg.workers;
	pthread_mutex_lock(&series.lock);
	for (size_t i = series.n; i-- > 0;)
		if (series.s[i].m) {
			w = series.s[i].m->workers;
			break;
		}
	pthread_mutex_unlock(&series.lock);
	return w;
}

static void write_json(FILE *f, const struct result *r, bool with_series)
{
	const struct shape *sh = cfg.shape;
	double meas = (double)(r->t_deadline - r->t_measure) / 1e9;
	if (meas <= 0)
		meas = 1e-9;
	uint64_t tasks = r->tasks_at_deadline - r->tasks_at_measure;
	uint64_t ops = r->ops_at_deadline - r->ops_at_measure;
	fprintf(f, "{\"tool\":\"weft-load\",\"version\":1,\"shape\":\"%s\",\"workers\":", sh->name);
	if (run_workers(r))
		fprintf(f, "%u,", run_workers(r));
	else
		fputs("null,", f); /* not known: missing, not 0 */
	if (closed_loop)
		fprintf(f, "\"mode\":\"closed\",\"concurrency\":%u,\"rate\":null,", cfg.concurrency);
	else
		fprintf(f, "\"mode\":\"open\",\"concurrency\":null,\"rate\":%.15g,", cfg.rate);
	/* --units has no time limit: duration_s said 10 (the default it
	 * never used), and the report of an interrupted --units run read
	 * "it measured 1.5 s of the 10 s asked for" (found by a review) */
	fprintf(f, "\"seed\":%" PRIu64 ",\"duration_s\":", load_seed);
	if (cfg.units)
		fputs("null", f);
	else
		fprintf(f, "%.15g", cfg.duration);
	fprintf(f, ",\"warmup_s\":%.15g,\"units_limit\":%" PRIu64 ",\"interrupted\":%s,\"shutdown\":\"%s\",",
		cfg.warmup, cfg.units, r->interrupted ? "true" : "false", shutdown_word(r->shutdown_rc));
	fprintf(f, "\"clock\":\"CLOCK_MONOTONIC\",\"t0_ns\":%" PRIu64 ",\"measure_start_ns\":%" PRIu64
		   ",\"measure_end_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64 ",\"measured_s\":%.6f,",
		t0_ns, r->t_measure, r->t_deadline, r->t_end, meas);
	fprintf(f, "\"throughput\":{\"tasks\":%" PRIu64 ",\"tasks_per_s\":%.1f,\"ops\":%" PRIu64
		   ",\"ops_per_s\":%.1f,\"ops_name\":",
		tasks, (double)tasks / meas, ops, (double)ops / meas);
	if (sh->ops_name)
		json_str(f, sh->ops_name);
	else
		fputs("null", f);
	fprintf(f, "},");
	fprintf(f, "\"units\":{\"issued\":%" PRIu64 ",\"completed\":%ld,\"incomplete\":%ld},",
		r->issued, atomic_load(&units_done) - atomic_load(&units_lost),
		(long)r->issued - (atomic_load(&units_done) - atomic_load(&units_lost)));
	fprintf(f, "\"tasks\":{\"completed\":%" PRIu64 ",\"cancelled\":%" PRIu64 "},", r->tot.done,
		r->tot.cancelled);
	fprintf(f, "\"graph\":{\"units\":%" PRIu64 ",\"tasks_expected\":%" PRIu64
		   ",\"digest_expected\":\"%016" PRIx64 "\",\"tasks_completed\":%" PRIu64
		   ",\"digest_completed\":\"%016" PRIx64 "\",\"complete\":%s},",
		r->issued, r->expect.nodes, r->expect.digest, r->tot.done, r->tot.digest,
		r->expect.nodes == r->tot.done && r->expect.digest == r->tot.digest ? "true" : "false");
	fprintf(f, "\"latency_ns\":{\"task\":");
	json_hist_summary(f, &r->tot.lat);
	fprintf(f, ",\"op\":");
	if (sh->op_latency) {
		json_hist_summary(f, &r->tot.op);
		fprintf(f, ",\"op_what\":");
		json_str(f, sh->op_latency);
	} else {
		fputs("null", f);
	}
	fprintf(f, ",\"unit\":");
	json_hist_summary(f, &r->tot.unit);
	fprintf(f, ",\"unit_what\":\"%s\"},\"op_errors\":%" PRIu64 ",",
		closed_loop ? "unit issue to its last task's completion"
			    : "unit scheduled start to its last task's completion",
		r->tot.op_errors);
	const struct weft_metrics *m = r->m;
	if (m) {
		fprintf(f, "\"runtime\":{\"spawned_tasks\":%" PRIu64 ",\"alive_tasks\":%" PRIu64
			   ",\"remote_schedule_count\":%" PRIu64 ",\"budget_forced_yield_count\":%" PRIu64
			   ",\"io_ready_events\":%" PRIu64 ",\"blocking_threads\":%" PRIu64
			   ",\"blocking_threads_exited\":%" PRIu64 ",\"block_in_place_count\":%" PRIu64 "},",
			m->spawned_tasks, m->alive_tasks, m->remote_schedule_count,
			m->budget_forced_yield_count, m->io_ready_events, m->blocking_threads,
			m->blocking_threads_exited, m->block_in_place_count);
		fprintf(f, "\"per_worker\":[");
		for (unsigned i = 0; i < m->workers; i++) {
			const struct weft_worker_metrics *w = &m->worker[i];
			fprintf(f, "%s{\"worker\":%u,\"polls\":%" PRIu64 ",\"busy_ns\":%" PRIu64
				   ",\"steal_operations\":%" PRIu64 ",\"tasks_stolen\":%" PRIu64
				   ",\"parks\":%" PRIu64 ",\"noop_unparks\":%" PRIu64 ",\"overflows\":%" PRIu64
				   ",\"local_schedule\":%" PRIu64 ",\"mean_poll_ns\":%" PRIu64 "}",
				i ? "," : "", i, w->poll_count, w->busy_ns, w->steal_operations,
				w->steal_count, w->park_count, w->noop_count, w->overflow_count,
				w->local_schedule_count, w->mean_poll_ns);
		}
		fprintf(f, "],");
	}
	fprintf(f, "\"per_worker_scope\":\"whole run (warmup and drain included), %s\"",
		r->shutdown_rc ? "read before the shutdown ended" : "after shutdown");
	if (with_series) {
		fprintf(f, ",\"series\":[");
		pthread_mutex_lock(&series.lock);
		for (size_t i = 0; i < series.n; i++) {
			const struct sample *s = &series.s[i];
			fprintf(f, "%s{\"t\":%.3f,\"tasks\":%" PRIu64 ",\"ops\":%" PRIu64
				   ",\"units_issued\":%" PRIu64 ",\"units_done\":%" PRIu64
				   ",\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64,
				i ? ",\n" : "\n", s->t, s->tasks, s->ops, s->units_issued, s->units_done,
				s->p50, s->p99);
			if (s->m) {
				fprintf(f, ",\"inject_depth\":%" PRIu64 ",\"alive_tasks\":%" PRIu64
					   ",\"worker\":[",
					s->m->inject_depth, s->m->alive_tasks);
				for (unsigned w = 0; w < s->m->workers; w++) {
					const struct weft_worker_metrics *x = &s->m->worker[w];
					fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
						   ",%" PRIu64 ",%" PRIu64 "]",
						w ? "," : "", x->poll_count, x->busy_ns, x->steal_operations,
						x->steal_count, x->park_count, x->overflow_count,
						x->local_queue_depth);
				}
				fprintf(f, "]");
			}
			fprintf(f, "}");
		}
		pthread_mutex_unlock(&series.lock);
		fprintf(f, "],\"series_worker_fields\":[\"polls\",\"busy_ns\",\"steal_operations\","
			   "\"tasks_stolen\",\"parks\",\"overflows\",\"local_depth\"]");
	}
	fprintf(f, "}\n");
}

static void fmt_ns(char *buf, size_t n, uint64_t ns)
{
	if (ns < 10000)
		snprintf(buf, n, "%" PRIu64 "ns", ns);
	else if (ns < 10000000)
		snprintf(buf, n, "%.1fus", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, n, "%.1fms", (double)ns / 1e6);
	else
		snprintf(buf, n, "%.2fs", (double)ns / 1e9);
}

static void print_hist_line(const char *what, const struct hist *h)
{
	char a[6][32];
	fmt_ns(a[0], 32, h->count ? h->min : 0);
	fmt_ns(a[1], 32, hist_pct(h, 50));
	fmt_ns(a[2], 32, hist_pct(h, 90));
	fmt_ns(a[3], 32, hist_pct(h, 99));
	fmt_ns(a[4], 32, hist_pct(h, 99.9));
	fmt_ns(a[5], 32, h->max);
	printf("%s (%" PRIu64 "):\n  min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", what,
	       h->count, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void print_text(const struct result *r)
{
	const struct shape *sh = cfg.shape;
	const struct weft_metrics *m = r->m;
	double meas = (double)(r->t_deadline - r->t_measure) / 1e9;
	if (meas <= 0)
		meas = 1e-9;
	uint64_t tasks = r->tasks_at_deadline - r->tasks_at_measure;
	uint64_t ops = r->ops_at_deadline - r->ops_at_measure;
	if (run_workers(r))
		printf("weft-load: shape %s, %u workers, ", sh->name, run_workers(r));
	else
		printf("weft-load: shape %s, workers not known, ", sh->name);
	if (closed_loop)
		printf("closed loop (concurrency %u)", cfg.concurrency);
	else
		printf("open loop (%.15g units/s)", cfg.rate);
	printf(", seed %" PRIu64 ", measured %.2f s", load_seed, meas);
	if (cfg.warmup > 0)
		printf(" after %.1f s warmup", cfg.warmup);
	printf("%s\n", r->interrupted ? " (interrupted)" : "");
	printf("throughput: %.0f tasks/s (%" PRIu64 " tasks)", (double)tasks / meas, tasks);
	if (sh->ops_name)
		printf(", %.0f %s/s", (double)ops / meas, sh->ops_name);
	printf("\n");
	print_hist_line("task latency, spawn -> completion", &r->tot.lat);
	if (sh->op_latency)
		print_hist_line(sh->op_latency, &r->tot.op);
	print_hist_line(closed_loop ? "unit latency, issue -> last task done"
				    : "unit latency, scheduled start -> last task done",
			&r->tot.unit);
	printf("graph: %" PRIu64 " units, %" PRIu64 " tasks expected, %" PRIu64
	       " completed, %" PRIu64 " cancelled, digest %016" PRIx64 " %s\n",
	       r->issued, r->expect.nodes, r->tot.done, r->tot.cancelled, r->tot.digest,
	       r->expect.nodes == r->tot.done && r->expect.digest == r->tot.digest
		       ? "(complete: matches the seed's graph)"
		       : "(INCOMPLETE: differs from the seed's graph)");
	if (r->tot.op_errors)
		printf("errors: %" PRIu64 "\n", r->tot.op_errors);
	if (r->shutdown_rc == -ETIMEDOUT)
		printf("shutdown: TIMED OUT after %llu s (a task still runs on a worker): the runtime "
		       "did not stop\n", SHUTDOWN_NS / 1000000000u);
	else if (r->shutdown_rc == -EINTR)
		printf("shutdown: not waited for (second signal): the runtime did not stop\n");
	else if (r->shutdown_rc)
		printf("shutdown: FAILED (%s)\n", weft_strerror(r->shutdown_rc));
	if (!m)
		return;
	printf("runtime metrics (whole run%s):\n",
	       r->shutdown_rc ? ", read before the shutdown ended" : "");
	printf("  %-6s %11s %6s %10s %11s %8s %7s %9s %11s\n", "worker", "polls", "busy%",
	       "steal_ops", "stolen", "parks", "noops", "overflows", "local_sched");
	double wall = (double)(r->t_end - t0_ns);
	uint64_t tot[8] = { 0 };
	for (unsigned i = 0; i < m->workers; i++) {
		const struct weft_worker_metrics *w = &m->worker[i];
		printf("  %-6u %11" PRIu64 " %5.1f%% %10" PRIu64 " %11" PRIu64 " %8" PRIu64 " %7" PRIu64
		       " %9" PRIu64 " %11" PRIu64 "\n",
		       i, w->poll_count, wall > 0 ? 100.0 * (double)w->busy_ns / wall : 0.0,
		       w->steal_operations, w->steal_count, w->park_count, w->noop_count,
		       w->overflow_count, w->local_schedule_count);
		tot[0] += w->poll_count;
		tot[1] += w->steal_operations;
		tot[2] += w->steal_count;
		tot[3] += w->park_count;
		tot[4] += w->noop_count;
		tot[5] += w->overflow_count;
		tot[6] += w->local_schedule_count;
	}
	printf("  %-6s %11" PRIu64 " %6s %10" PRIu64 " %11" PRIu64 " %8" PRIu64 " %7" PRIu64
	       " %9" PRIu64 " %11" PRIu64 "\n",
	       "all", tot[0], "", tot[1], tot[2], tot[3], tot[4], tot[5], tot[6]);
	printf("  spawned %" PRIu64 ", remote schedules %" PRIu64 ", forced yields %" PRIu64,
	       m->spawned_tasks, m->remote_schedule_count, m->budget_forced_yield_count);
	if (m->io_ready_events)
		printf(", io events %" PRIu64, m->io_ready_events);
	if (m->block_in_place_count || m->blocking_threads_exited || m->blocking_threads)
		printf(", block_in_place %" PRIu64 ", blocking threads %" PRIu64,
		       m->block_in_place_count, m->blocking_threads);
	printf("\n");
}

/* ------------------------------------------------------------------ main */

/* --output's temporary file until it is renamed into place (main). */
static char out_tmp[4096];
/* --output's link, resolved: the file the results replace (main) */
static char out_real[PATH_MAX];

static void drop_out_tmp(void)
{
	if (out_tmp[0])
		unlink(out_tmp);
}

int main(int argc, char **argv)
{
	int rc = parse_args(argc, argv, &cfg);
	if (rc)
		return rc;
	FILE *out = NULL;
	/* Written to NAME.tmp and renamed over NAME at the end: a failed run
	 * used to leave NAME emptied (found by a review). The file is made
	 * now, so a bad path fails before the run; an early exit removes it. */
	/* Only for a regular file (or a new one): a device or a FIFO (say
	 * /dev/stdout) is written in place, never renamed over. */
	struct stat ost, sst, lst;
	bool exists = cfg.output && stat(cfg.output, &ost) == 0;
	int stat_err = errno;
	bool direct = exists && !S_ISREG(ost.st_mode);
	/* The file replaced: NAME, or the file a link NAME points to. The
	 * NAME.XXXXXX renamed over a link replaced the link with a file,
	 * leaving its target as it was (found by a review); a link to nothing
	 * is refused, as there is no file to write through it to. */
	const char *out_path = cfg.output;
	if (cfg.output && !lstat(cfg.output, &lst) && S_ISLNK(lst.st_mode)) {
		if (!exists) {
			fprintf(stderr, "weft-load: %s: %s\n", cfg.output,
				stat_err == ENOENT ? "a symbolic link to nothing" : strerror(stat_err));
			return 1;
		}
		if (!direct && !(out_path = realpath(cfg.output, out_real))) {
			fprintf(stderr, "weft-load: %s: %s\n", cfg.output, strerror(errno));
			return 1;
		}
	}
	/* -o naming the file stdout writes to (/dev/stdout, /proc/self/fd/1,
	 * the file stdout is redirected to): the results go to stdout itself,
	 * once. With --json, stdout got two JSON objects (the summary, then
	 * the results with the series); with stdout on a regular file,
	 * /dev/stdout was taken for that file and a NAME.XXXXXX beside it
	 * renamed over the link - /dev/stdout itself, as root (found by a
	 * review). */
	if (exists && !fstat(STDOUT_FILENO, &sst) && sst.st_dev == ost.st_dev &&
	    sst.st_ino == ost.st_ino) {
		out = stdout;
		direct = true;
	}
	/* NAME.XXXXXX, made by mkstemp: a fixed NAME.tmp overwrote a user's
	 * file of that name, and two runs given one NAME wrote into the same
	 * temporary file (found by a review) */
	if (cfg.output && !direct &&
	    (size_t)snprintf(out_tmp, sizeof(out_tmp), "%s.XXXXXX", out_path) >= sizeof(out_tmp)) {
		fprintf(stderr, "weft-load: %s: name too long\n", cfg.output);
		return 1;
	}
	if (cfg.output && !direct) {
		int fd = mkstemp(out_tmp);
		if (fd >= 0) {
			mode_t um = umask(0); /* the mode fopen would give: 0666 & ~umask */
			umask(um);
			if (fchmod(fd, 0666 & ~um) || !(out = fdopen(fd, "w"))) {
				int e = errno;
				close(fd);
				unlink(out_tmp);
				errno = e;
			}
		}
	} else if (cfg.output && !out) {
		out = fopen(cfg.output, "w");
	}
	if (cfg.output && !out) {
		fprintf(stderr, "weft-load: %s: %s\n", cfg.output, strerror(errno));
		out_tmp[0] = '\0';
		return 1;
	}
	if (out && !direct)
		atexit(drop_out_tmp);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A hangup (the terminal or ssh session closed) stops the run as a
	 * Ctrl-C does: it killed weft-load, the --output results lost and
	 * their temporary file left behind (found by a review). Not under
	 * nohup, whose ignored SIGHUP is kept: that run goes on. */
	struct sigaction hup;
	if (!sigaction(SIGHUP, NULL, &hup) && hup.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	WEFT_OPTS(weft_runtime_opts, o, .workers = cfg.workers, .rng_seed = load_seed ? load_seed : 1,
		  .thread_name_prefix = "load");
	rc = weft_runtime_create(&o, &load_rt);
	if (rc) {
		fprintf(stderr, "weft-load: runtime: %s\n", weft_strerror(rc));
		return 1;
	}
	if (closed_loop && sem_init(&unit_slots, 0, cfg.concurrency)) {
		perror("weft-load: sem_init");
		return 1;
	}
	if (cfg.shape->setup && (rc = cfg.shape->setup())) {
		weft_runtime_destroy(load_rt);
		return 1;
	}

	struct result r = { 0 };
	t0_ns = weft_now_ns();
	r.t_measure = t0_ns + (uint64_t)(cfg.warmup * 1e9);
	uint64_t deadline = cfg.units ? UINT64_MAX : r.t_measure + (uint64_t)(cfg.duration * 1e9);
	lat_cut_ns = r.t_measure;
	pthread_t prog;
	pthread_condattr_t ca; /* the progress thread sleeps on CLOCK_MONOTONIC deadlines */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&series.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&prog, NULL, progress_main, NULL)) {
		fprintf(stderr, "weft-load: cannot start the progress thread\n");
		return 1;
	}
	struct totals t;
	next_open = t0_ns;
	if (cfg.warmup > 0 && !cfg.units) {
		/* Load during the warmup, then take the baseline at its end. */
		r.issued = drive(0, r.t_measure);
		/* drive() stops at the last issue before the edge: wait for
		 * the edge itself, or work of the warmup's last units would be
		 * counted in the measured window */
		if (!interrupted)
			sleep_until(r.t_measure);
		totals_read(&t, false);
		r.tasks_at_measure = t.done;
		r.ops_at_measure = t.ops;
	}
	r.issued = drive(r.issued, deadline);
	if (!cfg.units) {
		/* the window is --duration long, not up to the last issue */
		if (!interrupted)
			sleep_until(deadline);
		r.t_deadline = weft_now_ns();
		/* only a signal ends drive() or sleep_until() early */
		r.interrupted = r.t_deadline < deadline;
		/* Interrupted during warmup: the window never opened, and it
		 * holds nothing. The tasks done between the baseline read and
		 * this one were counted over a window of 0 s (clamped to 1 ns):
		 * 1e9 tasks/s per task (found by a review). */
		bool in_warmup = r.t_deadline < r.t_measure;
		if (in_warmup)
			r.t_measure = r.t_deadline;
		totals_read(&t, false);
		r.tasks_at_deadline = in_warmup ? r.tasks_at_measure : t.done;
		r.ops_at_deadline = in_warmup ? r.ops_at_measure : t.ops;
	}

	/* Drain: wait for the units in flight. */
	if (cfg.shape->teardown && !cfg.shape->drained)
		cfg.shape->teardown();
	uint64_t drain_end = weft_now_ns() + (uint64_t)(cfg.drain * 1e9);
	/* --units runs until its units are done: the default 10 s of drain
	 * gave up on the last units of a long job, cancelled them and failed
	 * the run (found by a review). It waits without a limit, unless
	 * --drain is given; a signal starts the default limit. */
	bool drain_open = cfg.units && !cfg.have_drain && !interrupted;
	bool torn_down = !cfg.shape->teardown || !cfg.shape->drained;
	for (;;) {
		bool units_ok = (uint64_t)atomic_load_explicit(&units_done, memory_order_acquire) >= r.issued;
		if (units_ok && !torn_down) {
			cfg.shape->teardown(); /* e.g. close the echo listener */
			torn_down = true;
		}
		if (units_ok && (!cfg.shape->drained || cfg.shape->drained())) {
			r.drained = true;
			break;
		}
		if (drain_open && interrupted) {
			drain_open = false;
			drain_end = weft_now_ns() + (uint64_t)(cfg.drain * 1e9);
		}
		if ((!drain_open && weft_now_ns() >= drain_end) || forced)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (!torn_down)
		cfg.shape->teardown();
	if (cfg.units) {
		/* --units measures the whole job: from the start until its last
		 * unit is done (it ended at the last issue, and left out the
		 * drain, most of the work) */
		r.t_deadline = weft_now_ns();
		totals_read(&t, false);
		r.tasks_at_deadline = t.done;
		r.ops_at_deadline = t.ops;
		r.interrupted = interrupted && (r.issued < cfg.units || !r.drained);
	}
	if (!r.drained && forced)
		fprintf(stderr, "weft-load: second signal: %ld of %" PRIu64 " units still running, not"
				" waited for; shutting down cancels them\n",
			(long)r.issued - atomic_load(&units_done), r.issued);
	else if (!r.drained)
		fprintf(stderr, "weft-load: %ld of %" PRIu64 " units still running after %.1f s of drain;"
				" shutting down cancels them\n",
			(long)r.issued - atomic_load(&units_done), r.issued, cfg.drain);

	pthread_mutex_lock(&series.lock);
	series.stop = true;
	pthread_cond_signal(&series.cond);
	pthread_mutex_unlock(&series.lock);
	pthread_join(prog, NULL);
	/* One last sample so the series covers the drain too. */
	bool q = cfg.quiet;
	cfg.quiet = true;
	take_sample();
	cfg.quiet = q;

	/* The summary is printed whatever the shutdown does: a timed-out
	 * shutdown used to exit 1 with no summary at all (found by a review).
	 * Figures are then those of a runtime still running. */
	rc = shutdown_runtime();
	r.shutdown_rc = rc;
	if (rc == -ETIMEDOUT)
		fprintf(stderr, "weft-load: shutdown timed out after %llu s (a task still runs on a"
				" worker); the summary's runtime figures were read before it ended\n",
			SHUTDOWN_NS / 1000000000u);
	else if (rc == -EINTR)
		fprintf(stderr, "weft-load: second signal: not waiting for the shutdown; the summary's"
				" runtime figures were read before it ended\n");
	else if (rc)
		fprintf(stderr, "weft-load: shutdown: %s\n", weft_strerror(rc));
	r.t_end = weft_now_ns();
	if (weft_runtime_metrics(load_rt, &r.m))
		r.m = NULL;
	totals_read(&r.tot, true);
	for (uint64_t k = 0; k < r.issued; k++)
		cfg.shape->enumerate(k, &r.expect);

	errno = 0;
	if (!cfg.json)
		print_text(&r);
	else if (out != stdout)
		write_json(stdout, &r, false);
	if (out == stdout) /* --output is stdout: its results, once */
		write_json(stdout, &r, true);
	int status = stdout_ok() ? 0 : 1;
	if (out && out != stdout) {
		write_json(out, &r, true);
		bool ok = !ferror(out);
		if (fclose(out) || !ok) {
			/* a failed write is a failed run (it exited 0) */
			fprintf(stderr, "weft-load: %s: %s\n", cfg.output, strerror(errno ? errno : EIO));
			status = 1;
		} else if (out_tmp[0] && rename(out_tmp, out_path)) {
			fprintf(stderr, "weft-load: %s: %s\n", cfg.output, strerror(errno));
			status = 1;
		} else {
			out_tmp[0] = '\0'; /* renamed: nothing to remove */
		}
	}
	if (r.tot.op_errors) {
		fprintf(stderr, "weft-load: %" PRIu64 " operation errors\n", r.tot.op_errors);
		status = 1;
	}
	/* a spawn refused (no memory, out of kernel mappings for a fiber's
	 * stack) lost its task: the graph said INCOMPLETE and the exit was 0
	 * (found by a review) */
	if (r.tot.cancelled) {
		fprintf(stderr, "weft-load: %" PRIu64 " tasks did not run to completion (a spawn "
				"refused, or cancelled at shutdown): the graph is incomplete\n",
			r.tot.cancelled);
		status = 1;
	}
	if (!r.drained)
		status = 1;
	if (rc) {
		/* not shut down: destroy would wait for the workers without a
		 * limit, and they may still run weft-load's code; end here */
		fflush(NULL);
		_exit(1);
	}
	weft_metrics_free(r.m);
	for (size_t i = 0; i < series.n; i++)
		weft_metrics_free(series.s[i].m);
	free(series.s);
	rc = weft_runtime_destroy(load_rt);
	if (rc) {
		fprintf(stderr, "weft-load: destroy: %s\n", weft_strerror(rc));
		status = 1;
	}
	return status;
}
