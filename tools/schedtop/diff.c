/*
 * diff.c - `schedtop diff`: see diff.h. Every recording is read with
 * jwalk (a real JSON reader: weft-load's output nests the same key names,
 * "p99", at several places), one JSON value per line or the whole file.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "jwalk.h"
#include "model.h" /* lint_names */

/* ---------------------------------------------------------- one object */

#define OBJ_MAX_LEAVES 4096
#define OBJ_MAX_COLS 64

struct leaf {
	char path[96];
	double v;
	char s[48];
	enum jwalk_kind kind;
};

/*
 * The per-worker rows ("worker[i].key" in schedtop's JSON, "per_worker[i].key"
 * in weft-load's) are only ever summed, or their maximum taken, over the
 * rows: each column is kept as its sum and maximum, not as one leaf per
 * row. Kept as leaves, about 47 per schedtop row, a runtime of more than
 * 87 workers filled OBJ_MAX_LEAVES and its recording was refused ("more
 * values than diff reads (4096)"), and each lookup walked thousands of
 * leaves (found by a review).
 */
struct col {
	char arr[12];       /* "worker" or "per_worker" */
	char key[40];
	double sum, max;    /* max starts at 0, as max_rows did */
	unsigned rows;      /* rows that have the key, numeric */
};

#define OBJ_MAX_ODD 32

/*
 * A value diff reads as a number that is a string or true/false ("12.5"
 * for polls_per_s, say) is an error, said with its name: it was left out
 * without a word, and the interval still counted as a sample (a per-worker
 * one was left out of the sum over the rows). null is a value not known,
 * as weft-load writes one: left out, as a missing key is (it read as 0).
 */
struct obj {
	struct leaf l[OBJ_MAX_LEAVES];
	unsigned n;
	struct col c[OBJ_MAX_COLS];
	unsigned nc;
	bool full;          /* more values than OBJ_MAX_LEAVES, or columns */
	/* per-worker keys that are not numbers in some row (a row's "state",
	 * its "rt"): an error only when diff reads one as a number */
	struct {
		char arr[12], key[40];
		enum jwalk_kind kind;
	} odd[OBJ_MAX_ODD];
	unsigned nodd;
	char bad[112];      /* the first value read as a number that is none */
	enum jwalk_kind bad_kind;
};

static void obj_reset(struct obj *o)
{
	o->n = o->nc = o->nodd = 0;
	o->full = false;
	o->bad[0] = '\0';
}

static void mark_bad(struct obj *o, const char *path, enum jwalk_kind kind)
{
	if (o->bad[0])
		return;
	snprintf(o->bad, sizeof(o->bad), "%s", path);
	o->bad_kind = kind;
}

/* "worker[12].cpu_pct" -> arr "worker", key "cpu_pct": a column of a
 * per-worker row (a direct key; nested ones are not compared). */
static bool row_col(const char *path, char *arr, size_t an, char *key, size_t kn)
{
	const char *b = strchr(path, '[');
	if (!b || (size_t)(b - path) >= an)
		return false;
	size_t al = (size_t)(b - path);
	if (!((al == 6 && !strncmp(path, "worker", 6)) || (al == 10 && !strncmp(path, "per_worker", 10))))
		return false;
	const char *p = b + 1;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p[0] != ']' || p[1] != '.')
		return false;
	p += 2;
	if (strpbrk(p, ".[") || strlen(p) >= kn)
		return true; /* nested in a row: not a column, not kept */
	memcpy(arr, path, al);
	arr[al] = '\0';
	snprintf(key, kn, "%s", p);
	return true;
}

static int collect(void *ctx, const struct jwalk_leaf *jl)
{
	struct obj *o = ctx;
	/* weft-load's time series and histogram buckets are not compared */
	if (!strncmp(jl->path, "series", 6) || strstr(jl->path, ".buckets[") ||
	    !strncmp(jl->path, "steal_matrix", 12) || strlen(jl->path) >= sizeof(o->l[0].path))
		return 0;
	char arr[sizeof(o->c[0].arr)] = "", key[sizeof(o->c[0].key)];
	if (row_col(jl->path, arr, sizeof(arr), key, sizeof(key))) {
		if (!arr[0] || jl->kind == JW_NULL)
			return 0;
		if (jl->kind != JW_NUM) {
			unsigned i = 0;
			while (i < o->nodd && (strcmp(o->odd[i].key, key) || strcmp(o->odd[i].arr, arr)))
				i++;
			if (i == o->nodd && o->nodd < OBJ_MAX_ODD) {
				snprintf(o->odd[i].arr, sizeof(o->odd[i].arr), "%s", arr);
				snprintf(o->odd[i].key, sizeof(o->odd[i].key), "%s", key);
				o->odd[i].kind = jl->kind;
				o->nodd++;
			}
			return 0;
		}
		struct col *c = NULL;
		for (unsigned i = 0; i < o->nc && !c; i++)
			if (!strcmp(o->c[i].key, key) && !strcmp(o->c[i].arr, arr))
				c = &o->c[i];
		if (!c) {
			if (o->nc == OBJ_MAX_COLS) {
				o->full = true;
				return 1;
			}
			c = &o->c[o->nc++];
			memset(c, 0, sizeof(*c));
			snprintf(c->arr, sizeof(c->arr), "%s", arr);
			snprintf(c->key, sizeof(c->key), "%s", key);
		}
		c->sum += jl->num;
		if (jl->num > c->max)
			c->max = jl->num;
		c->rows++;
		return 0;
	}
	if (o->n == OBJ_MAX_LEAVES) {
		o->full = true;
		return 1;
	}
	struct leaf *l = &o->l[o->n++];
	snprintf(l->path, sizeof(l->path), "%s", jl->path);
	l->kind = jl->kind;
	l->v = jl->num;
	if (l->kind == JW_STR)
		snprintf(l->s, sizeof(l->s), "%s", jl->str);
	else
		l->s[0] = '\0';
	return 0;
}

static const struct leaf *get(const struct obj *o, const char *path)
{
	for (unsigned i = 0; i < o->n; i++)
		if (!strcmp(o->l[i].path, path))
			return &o->l[i];
	return NULL;
}

static bool num(struct obj *o, const char *path, double *v)
{
	const struct leaf *l = get(o, path);
	if (!l || l->kind == JW_NULL)
		return false;
	if (l->kind != JW_NUM) {
		mark_bad(o, path, l->kind);
		return false;
	}
	*v = l->v;
	return true;
}

static const char *str(const struct obj *o, const char *path)
{
	const struct leaf *l = get(o, path);
	return l && l->kind == JW_STR ? l->s : NULL;
}

static const struct col *column(struct obj *o, const char *arr, const char *key)
{
	for (unsigned i = 0; i < o->nodd; i++)
		if (!strcmp(o->odd[i].key, key) && !strcmp(o->odd[i].arr, arr)) {
			char p[sizeof(o->bad)];
			snprintf(p, sizeof(p), "%s[].%s", arr, key);
			mark_bad(o, p, o->odd[i].kind);
		}
	for (unsigned i = 0; i < o->nc; i++)
		if (!strcmp(o->c[i].key, key) && !strcmp(o->c[i].arr, arr))
			return &o->c[i];
	return NULL;
}

/* Sum of "<arr>[i].<key>" over the rows; rows: how many have it. */
static double sum_rows(struct obj *o, const char *arr, const char *key, unsigned *rows)
{
	const struct col *c = column(o, arr, key);
	if (rows)
		*rows = c ? c->rows : 0;
	return c ? c->sum : 0;
}

static double max_rows(struct obj *o, const char *arr, const char *key)
{
	const struct col *c = column(o, arr, key);
	return c ? c->max : 0;
}

/* ---------------------------------------------------------- metrics */

/* `times` samples of value v */
static void add_n(struct diff_run *r, const char *name, int dir, double v, uint64_t times)
{
	struct diff_metric *m = NULL;
	if (!isfinite(v))
		return;
	for (unsigned i = 0; i < r->nm; i++)
		if (!strcmp(r->m[i].name, name)) {
			m = &r->m[i];
			break;
		}
	if (!m) {
		if (r->nm == DIFF_MAX_METRICS)
			return;
		m = &r->m[r->nm++];
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->dir = dir;
	}
	m->sum += v * (double)times;
	m->sumsq += v * v * (double)times;
	m->n += times;
}

static void add(struct diff_run *r, const char *name, int dir, double v)
{
	add_n(r, name, dir, v, 1);
}

static void copy(struct diff_run *r, struct obj *o, const char *path, int dir)
{
	double v;
	if (num(o, path, &v))
		add(r, path, dir, v);
}

static void from_load(struct diff_run *r, struct obj *o)
{
	static const char *const lat[] = { "task", "unit", "op" };
	static const char *const pct[] = { "p50", "p90", "p99", "p999", "max", "mean" };
	char p[96];
	double tasks = 0, v, t0, end;
	unsigned workers;
	copy(r, o, "throughput.tasks_per_s", +1);
	copy(r, o, "throughput.ops_per_s", +1);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned k = 0; k < 6; k++) {
			snprintf(p, sizeof(p), "latency_ns.%s.%s", lat[i], pct[k]);
			copy(r, o, p, -1);
		}
	copy(r, o, "units.incomplete", -1);
	copy(r, o, "op_errors", -1);
	copy(r, o, "tasks.cancelled", -1);
	num(o, "tasks.completed", &tasks);
	if (tasks > 0) {
		add(r, "steal_operations per 1k tasks", 0,
		    1000 * sum_rows(o, "per_worker", "steal_operations", NULL) / tasks);
		add(r, "tasks_stolen per 1k tasks", 0,
		    1000 * sum_rows(o, "per_worker", "tasks_stolen", NULL) / tasks);
		add(r, "parks per 1k tasks", 0, 1000 * sum_rows(o, "per_worker", "parks", NULL) / tasks);
		add(r, "noop_unparks per 1k tasks", -1,
		    1000 * sum_rows(o, "per_worker", "noop_unparks", NULL) / tasks);
		add(r, "overflows per 1k tasks", 0,
		    1000 * sum_rows(o, "per_worker", "overflows", NULL) / tasks);
	}
	double busy = sum_rows(o, "per_worker", "busy_ns", &workers);
	if (workers && num(o, "t0_ns", &t0) && num(o, "end_ns", &end) && end > t0)
		add(r, "worker busy %", 0, 100 * busy / ((end - t0) * workers));
	if (num(o, "workers", &v))
		add(r, "workers", 0, v);
}

static void from_schedtop(struct diff_run *r, struct obj *o)
{
	double dt = 0, v;
	unsigned w;
	num(o, "interval_s", &dt);
	if (dt < 0.01)
		return;
	copy(r, o, "polls_per_s", +1);
	copy(r, o, "steals_per_s", 0);
	copy(r, o, "tasks_stolen_per_s", 0);
	copy(r, o, "parks_per_s", 0);
	copy(r, o, "unparks_per_s", 0);
	copy(r, o, "inject_depth", 0);
	copy(r, o, "overhead.bpf_ns_per_event", -1);
	copy(r, o, "overhead.schedtop_cpu_pct", -1);
	add(r, "workers cpu_pct (sum)", 0, sum_rows(o, "worker", "cpu_pct", &w));
	add(r, "noop_unparks_per_s", -1, sum_rows(o, "worker", "noop_unparks", NULL) / dt);
	add(r, "steal_fails_per_s", 0, sum_rows(o, "worker", "steal_fails", NULL) / dt);
	add(r, "steal_waits_per_s", 0, sum_rows(o, "worker", "steal_waits", NULL) / dt);
	add(r, "overflows_per_s", 0, sum_rows(o, "worker", "overflows", NULL) / dt);
	add(r, "invol_cs_per_s", -1, sum_rows(o, "worker", "invol_cs", NULL) / dt);
	add(r, "migrations_per_s", 0, sum_rows(o, "worker", "migrations", NULL) / dt);
	add(r, "futex_waits_per_s", 0, sum_rows(o, "worker", "futex_waits", NULL) / dt);
	add(r, "park_p99_ns (max worker)", 0, max_rows(o, "worker", "park_p99_ns"));
	add(r, "unpark_p99_ns (max worker)", -1, max_rows(o, "worker", "unpark_p99_ns"));
	/* lints: the share of intervals each fired in; every lint schedtop
	 * has (a list of its own here left blocking-call out) */
	const char *const *lints = lint_names;
	for (unsigned k = 0; k < LINT_NR; k++) {
		char name[64], p[64];
		bool fired = false;
		for (unsigned i = 0;; i++) {
			snprintf(p, sizeof(p), "lints[%u].name", i);
			const char *s = str(o, p);
			if (!s)
				break;
			if (!strcmp(s, lints[k]))
				fired = true;
		}
		snprintf(name, sizeof(name), "lint %s (share of intervals)", lints[k]);
		add(r, name, -1, fired ? 1 : 0);
	}
	if (num(o, "workers", &v))
		add(r, "workers", 0, v);
}

static void from_nobpf(struct diff_run *r, struct obj *o)
{
	double dt = 0;
	num(o, "interval_s", &dt);
	if (dt < 0.01)
		return;
	add(r, "workers cpu_pct (sum)", 0, sum_rows(o, "worker", "cpu_pct", NULL));
	add(r, "context_switches_per_s", 0, sum_rows(o, "worker", "context_switches", NULL) / dt);
	add(r, "invol_cs_per_s", -1, sum_rows(o, "worker", "invol_cs", NULL) / dt);
	add(r, "vol_cs_per_s", 0, sum_rows(o, "worker", "vol_cs", NULL) / dt);
	add(r, "cpu_migrations_per_s", 0, sum_rows(o, "worker", "cpu_migrations", NULL) / dt);
}

/* Trace events, counted per second of trace. */
#define TR_TYPES 12
struct trace_acc {
	double win_start, first;
	bool started;
	char type[TR_TYPES][48];
	unsigned ntypes;
	double count[TR_TYPES];
	double stolen, steals;
	bool too_long; /* past TR_MAX_SPAN_S from the first event */
};

/* A trace of one run spans far less: a longer one is refused, not read */
#define TR_MAX_SPAN_S (7 * 86400.0)

static void trace_flush(struct diff_run *r, struct trace_acc *t)
{
	char name[64];
	for (unsigned i = 0; i < t->ntypes; i++) {
		snprintf(name, sizeof(name), "%s events/s", t->type[i]);
		add(r, name, 0, t->count[i]);
		t->count[i] = 0;
	}
	if (t->steals > 0)
		add(r, "tasks per steal", 0, t->stolen / t->steals);
	t->stolen = t->steals = 0;
	r->samples++;
}

/* `k` seconds without an event, at once: one line a day apart used to
 * cost 86,400 flushes, minutes of CPU for a crafted trace (a review) */
static void trace_empty(struct diff_run *r, struct trace_acc *t, uint64_t k)
{
	char name[64];
	for (unsigned i = 0; i < t->ntypes; i++) {
		snprintf(name, sizeof(name), "%s events/s", t->type[i]);
		add_n(r, name, 0, 0, k);
	}
	r->samples += k;
}

static void from_trace(struct diff_run *r, struct trace_acc *t, struct obj *o)
{
	double ts, n;
	const char *ty = str(o, "type");
	if (!ty || !num(o, "ts_ns", &ts) || !(ts >= 0 && ts < 2e19))
		return;
	/* A gap of any length costs one flush (trace_empty), and a trace
	 * spanning more than TR_MAX_SPAN_S is refused below: a gap of more
	 * than a day dropped every later event without a word (a 2-day trace
	 * with a 25 h quiet night was read up to the night; found by a
	 * review). */
	if (!t->started) {
		t->started = true;
		t->win_start = t->first = ts;
	}
	if (ts - t->first > TR_MAX_SPAN_S * 1e9) {
		t->too_long = true;
		return;
	}
	if (ts >= t->win_start + 1e9) { /* whole seconds only: a partial last one is left out */
		uint64_t k = (uint64_t)((ts - t->win_start) / 1e9);
		trace_flush(r, t);
		if (k > 1)
			trace_empty(r, t, k - 1);
		t->win_start += (double)k * 1e9;
	}
	unsigned i;
	for (i = 0; i < t->ntypes; i++)
		if (!strcmp(t->type[i], ty))
			break;
	if (i == t->ntypes) {
		if (t->ntypes == TR_TYPES)
			return;
		snprintf(t->type[t->ntypes++], sizeof(t->type[0]), "%s", ty);
		/* the seconds already flushed had none of it: without their
		 * zeros a type first seen late was averaged over the seconds
		 * since, 100 steal_fails in the last of 10 s read "100
		 * events/s", not 10 (found by a review) */
		if (r->samples) {
			char name[64];
			snprintf(name, sizeof(name), "%s events/s", t->type[i]);
			add_n(r, name, 0, 0, r->samples);
		}
	}
	t->count[i]++;
	if (!strcmp(ty, "steal") && num(o, "n", &n)) {
		t->stolen += n;
		t->steals++;
	}
}

/* ---------------------------------------------------------- reading */

static char *slurp(const char *path, int *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		*err = -errno;
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
		if (n + 1 < cap)
			break;
		char *nb = realloc(buf, cap *= 2);
		if (!nb)
			free(buf);
		buf = nb;
	}
	/* a directory opens and reads as an error (EISDIR): it was taken as
	 * an empty file, "DIR: empty" (a review); an I/O error likewise */
	int rerr = ferror(f) ? (errno ? errno : EIO) : 0;
	fclose(f);
	if (buf && rerr) {
		free(buf);
		*err = -rerr;
		return NULL;
	}
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static const char *kind_of(const struct obj *o)
{
	const char *s = str(o, "tool");
	if (s && !strcmp(s, "weft-load"))
		return "weft-load";
	s = str(o, "schema");
	if (s && !strcmp(s, "schedtop/1"))
		return "schedtop";
	if (s && !strcmp(s, "schedtop-nobpf/1"))
		return "schedtop-nobpf";
	if (str(o, "type") && get(o, "ts_ns"))
		return "trace";
	return NULL;
}

/* ------------------------------------------------- record dumps */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* The end of the JSON value at p (a string, an object, an array or a
 * scalar), or NULL when it does not end. Only the brackets and strings
 * are followed: jwalk checks each interval afterwards. */
static const char *value_end(const char *p)
{
	int depth = 0;
	do {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && !*++p)
					return NULL;
			if (!*p)
				return NULL;
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return NULL;
			p++;
		} else if (!*p) {
			return NULL;
		} else if (depth == 0) { /* a scalar at the top */
			while (*p && !strchr(",}] \t\r\n", *p))
				p++;
			return p;
		} else {
			p++;
		}
	} while (depth > 0);
	return p;
}

/*
 * A `schedtop record` dump (`.json`, "schedtop-record/1"): its "intervals"
 * are schedtop --batch --json objects, one per interval of the window.
 * They are returned one per line, to be read as a recording of that kind;
 * NULL when buf is not such a dump (or has no intervals array). diff said
 * of it "one JSON object, not weft-load's output, nor a schedtop recording
 * or a trace", or, with more intervals, "line 1: more values than diff
 * reads" (found by a review).
 */
static char *record_intervals(const char *buf, unsigned *count)
{
	const char *p = skip_ws(buf), *iv = NULL;
	bool is_record = false;
	if (*p != '{')
		return NULL;
	for (p = skip_ws(p + 1); *p == '"';) {
		const char *k = p, *ke = value_end(p);
		if (!ke || *(p = skip_ws(ke)) != ':')
			return NULL;
		const char *v = skip_ws(p + 1), *ve = value_end(v);
		if (!ve)
			return NULL;
		if (ke - k == 8 && !strncmp(k, "\"schema\"", 8))
			is_record = ve - v == 19 && !strncmp(v, "\"schedtop-record/1\"", 19);
		else if (ke - k == 11 && !strncmp(k, "\"intervals\"", 11) && *v == '[')
			iv = v;
		p = skip_ws(ve);
		if (*p == ',')
			p = skip_ws(p + 1);
	}
	if (!is_record || !iv)
		return NULL;
	char *out = malloc(strlen(iv) + 2), *o = out;
	if (!out)
		return NULL;
	*count = 0;
	for (p = skip_ws(iv + 1); *p && *p != ']';) {
		const char *e = value_end(p);
		if (!e)
			break;
		/* one line each: a dump pretty-printed (jq .) has newlines
		 * between the tokens, never inside a JSON string */
		for (; p < e; p++)
			*o++ = *p == '\n' || *p == '\r' ? ' ' : *p;
		*o++ = '\n';
		(*count)++;
		p = skip_ws(e);
		if (*p == ',')
			p = skip_ws(p + 1);
	}
	*o = '\0';
	return out;
}

/* A schedtop schema this diff does not read (a newer schedtop's
 * "schedtop/2", its latency file): said by name, where diff said "not a
 * schedtop, weft-load or trace record" of a file that says it is one (a
 * review). true when `err` was written. */
/* o had a value read as a number that is none (struct obj): said, with
 * where, in `err`; true then. */
static bool bad_value(const struct obj *o, const char *path, unsigned line, char *err, size_t n)
{
	if (!o->bad[0])
		return false;
	char where[16] = "", safe[sizeof(o->bad)];
	if (line)
		snprintf(where, sizeof(where), ":%u", line);
	tx_safe(safe, sizeof(safe), o->bad); /* the file's text, for a terminal */
	snprintf(err, n, "%s%s: %s is %s, not a number", path, where, safe,
		 o->bad_kind == JW_STR ? "a string" : "true or false");
	return true;
}

static bool other_schema(const struct obj *o, const char *path, unsigned line, char *err, size_t n)
{
	const char *s = str(o, "schema");
	if (!s || strncmp(s, "schedtop", 8))
		return false;
	char where[16] = "", safe[64];
	if (line)
		snprintf(where, sizeof(where), ":%u", line);
	tx_safe(safe, sizeof(safe), s); /* the file's text, for a terminal */
	snprintf(err, n, "%s%s: schema \"%s\", which this schedtop's diff does not read (it reads "
			 "schedtop/1, schedtop-nobpf/1 and schedtop-record/1 recordings, trace events and "
			 "weft-load's output)", path, where, safe);
	return true;
}

int diff_load(const char *path, struct diff_run *r, char *err, size_t n)
{
	int rc = 0;
	memset(r, 0, sizeof(*r));
	char *buf = slurp(path, &rc);
	if (!buf) {
		snprintf(err, n, "%s: %s", path, strerror(-rc));
		return rc;
	}
	struct obj *o = malloc(sizeof(*o));
	struct trace_acc *ta = calloc(1, sizeof(*ta));
	struct obj *first = malloc(sizeof(*first));
	if (!o || !ta || !first) {
		rc = -ENOMEM;
		snprintf(err, n, "%s: out of memory", path);
		goto out;
	}
	/* a record dump: its interval reports, read as a recording */
	unsigned nrec = 0;
	char *ivs = record_intervals(buf, &nrec);
	if (ivs) {
		free(buf);
		buf = ivs;
		if (!nrec) {
			snprintf(err, n, "%s: a schedtop record dump with no interval report", path);
			rc = -EINVAL;
			goto out;
		}
	}
	/* one value in the whole file (weft-load --json), or one per line */
	obj_reset(o);
	unsigned nobj = 0, used = 0;
	int whole = ivs ? -EINVAL : jwalk(buf, collect, o);
	/* trace's run.json, not its run.jsonl - an easy slip, since trace
	 * writes both: "run.json:1: not JSON" (a large one, the whole walk
	 * stopped at 4096 values and the lines were tried) or "one JSON
	 * object, not ..." (a review) */
	if (whole >= 0 && (get(o, "displayTimeUnit") || get(o, "traceEvents[0].ph"))) {
		snprintf(err, n, "%s: a trace-event file (Perfetto/Chrome JSON): diff reads the events, "
				 "the .jsonl that schedtop trace wrote beside it (a record dump's "
				 ".events.jsonl)", path);
		rc = -EINVAL;
		goto out;
	}
	if (whole == 0) {
		const char *k = kind_of(o);
		if (k && !strcmp(k, "weft-load")) {
			snprintf(r->kind, sizeof(r->kind), "%s", k);
			from_load(r, o);
			r->samples = 1;
			if (bad_value(o, path, 0, err, n))
				rc = -EINVAL;
			goto out;
		}
		/* else one line of another kind (a one-interval schedtop
		 * recording was refused here: found by a review): read it as
		 * lines, below */
		if (!k) {
			if (!other_schema(o, path, 0, err, n))
				snprintf(err, n, "%s: one JSON object, not weft-load's output, nor a "
						 "schedtop recording or a trace", path);
			rc = -EINVAL;
			goto out;
		}
	}
	unsigned line = 0, final_line = 0, first_line = 0;
	double run_pid = -1, last_ts = -1;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		line++;
		while (*l == ' ' || *l == '\t' || *l == '\r')
			l++;
		if (!*l)
			continue;
		obj_reset(o);
		int jr = jwalk(l, collect, o);
		const char *k = jr ? NULL : kind_of(o);
		if (!k) {
			if (jr || o->full || !other_schema(o, path, line, err, n))
				snprintf(err, n, "%s:%u: %s", path, line,
					 o->full ? "more values than diff reads (4096)"
					 : jr	 ? "not JSON"
						 : "not a schedtop, weft-load or trace record");
			rc = -EINVAL;
			goto out;
		}
		if (!r->kind[0])
			snprintf(r->kind, sizeof(r->kind), "%s", k);
		else if (strcmp(r->kind, k)) {
			snprintf(err, n, "%s:%u: a %s record among %s records", path, line, k, r->kind);
			rc = -EINVAL;
			goto out;
		}
		nobj++;
		if (!strcmp(k, "trace")) {
			from_trace(r, ta, o);
			if (bad_value(o, path, line, err, n)) {
				rc = -EINVAL;
				goto out;
			}
			if (ta->too_long) {
				snprintf(err, n, "%s:%u: the trace spans more than %.0f days from its "
						 "first event: not one run",
					 path, line, TR_MAX_SPAN_S / 86400);
				rc = -EINVAL;
				goto out;
			}
			continue;
		}
		if (!strcmp(k, "weft-load")) {
			from_load(r, o);
			if (bad_value(o, path, line, err, n)) {
				rc = -EINVAL;
				goto out;
			}
			used++;
			continue;
		}
		/* Runs appended to one file (`>>` twice) were read as one
		 * recording: the second run's first interval, from its attach,
		 * averaged in as a whole one (a listed limit). A run ends with
		 * its final line; its pid and clock hold throughout. */
		const struct leaf *fin = get(o, "final");
		double pid = -1, ts = -1;
		num(o, "pid", &pid);
		num(o, "ts_ns", &ts);
		if (bad_value(o, path, line, err, n)) {
			rc = -EINVAL;
			goto out;
		}
		if (final_line || (run_pid >= 0 && pid >= 0 && pid != run_pid) ||
		    (ts >= 0 && ts <= last_ts)) {
			snprintf(err, n, "%s:%u: a second run starts here (%s): diff reads one run per "
					 "file; split it",
				 path, line,
				 final_line ? "after the first one's final line"
				 : pid != run_pid ? "another pid" : "its clock starts over");
			rc = -EINVAL;
			goto out;
		}
		if (fin && (fin->kind == JW_BOOL || fin->kind == JW_NUM) && fin->v)
			final_line = line;
		if (run_pid < 0)
			run_pid = pid;
		if (ts >= 0)
			last_ts = ts;
		/* schedtop: the first interval starts at the attach; it is left
		 * out once there are three or more */
		if (nobj == 1) {
			*first = *o;
			first_line = line;
			continue;
		}
		/* ... and the last, when it ends at the target's exit or a
		 * signal: a part of an interval, whose workers stopped or whose
		 * counters (published every 61 ticks) lag. It was averaged with
		 * the whole ones: a dump of 1 s intervals at ~102k polls/s
		 * ending in 0.1 s at 48.6k read "polls_per_s 91969" (found by a
		 * review). A last interval that -n ended ("count") is whole. */
		const char *end = str(o, "end");
		if (nobj >= 3 && end && (!strcmp(end, SCHEDTOP_END_EXITED) ||
					 !strcmp(end, SCHEDTOP_END_SIGNAL)))
			continue;
		if (!strcmp(k, "schedtop"))
			from_schedtop(r, o);
		else
			from_nobpf(r, o);
		if (bad_value(o, path, line, err, n)) {
			rc = -EINVAL;
			goto out;
		}
		used++;
	}
	if (!nobj) {
		snprintf(err, n, "%s: empty", path);
		rc = -EINVAL;
		goto out;
	}
	if ((!strcmp(r->kind, "schedtop") || !strcmp(r->kind, "schedtop-nobpf")) && nobj < 3) {
		if (!strcmp(r->kind, "schedtop"))
			from_schedtop(r, first);
		else
			from_nobpf(r, first);
		if (bad_value(first, path, first_line, err, n)) {
			rc = -EINVAL;
			goto out;
		}
		used++;
	}
	if (strcmp(r->kind, "trace"))
		r->samples = used;
	else if (!r->samples) {
		snprintf(err, n, "%s: the trace is shorter than one second", path);
		rc = -EINVAL;
	}
out:
	free(buf);
	free(o);
	free(ta);
	free(first);
	return rc;
}

/* ---------------------------------------------------------- compare */

static const struct diff_metric *find(const struct diff_run *r, const char *name)
{
	for (unsigned i = 0; i < r->nm; i++)
		if (!strcmp(r->m[i].name, name))
			return &r->m[i];
	return NULL;
}

static double mean(const struct diff_metric *m)
{
	return m->n ? m->sum / m->n : 0;
}

static double var(const struct diff_metric *m)
{
	if (m->n < 2)
		return 0;
	double mu = mean(m), v = (m->sumsq - m->n * mu * mu) / (m->n - 1);
	return v > 0 ? v : 0;
}

struct cmp {
	const char *name;
	int dir;
	double a, b, delta, pct; /* pct NAN: A is 0 and B is not */
	bool sig, past;
};

static struct cmp compare(const struct diff_metric *ma, const struct diff_metric *mb,
			  double fail_over, double min_change)
{
	struct cmp c = { .name = ma->name, .dir = ma->dir, .a = mean(ma), .b = mean(mb) };
	c.delta = c.b - c.a;
	if (c.a != 0)
		c.pct = 100 * c.delta / fabs(c.a);
	else
		c.pct = c.b == 0 ? 0 : NAN;
	double mag = isnan(c.pct) ? INFINITY : fabs(c.pct);
	c.sig = mag >= min_change && c.delta != 0;
	if (c.sig && ma->n >= 2 && mb->n >= 2) {
		double se = sqrt(var(ma) / ma->n + var(mb) / mb->n);
		c.sig = fabs(c.delta) > 3 * se;
	}
	bool worse = c.dir * c.delta < 0;
	c.past = fail_over >= 0 && c.sig && c.dir && worse && mag > fail_over;
	return c;
}

static const char *verdict(const struct cmp *c)
{
	if (!c->sig)
		return "";
	if (!c->dir)
		return "changed";
	return c->dir * c->delta > 0 ? "better" : "worse";
}

static const char *dir_name(int dir)
{
	return dir > 0 ? "higher-better" : dir < 0 ? "lower-better" : "neutral";
}

/* JSON has no inf or nan: a mean of 1e308 and 1e308, or a delta from
 * -1e308 to 1e308, was printed as a bare `inf` (a review) */
static void json_num(FILE *f, const char *fmt, double v)
{
	if (isfinite(v))
		fprintf(f, fmt, v);
	else
		fputs("null", f);
}

/* A metric only one recording has (a trace event type seen in one run):
 * its mean, nothing compared. Those of A were dropped silently (a review). */
static void print_only(FILE *f, const struct diff_metric *m, const char *in, bool json,
		       bool *first)
{
	if (json) {
		fprintf(f, "%s{\"name\":", *first ? "" : ",");
		jw_print_str(f, m->name);
		fprintf(f, ",\"direction\":\"%s\",\"only_in\":\"%s\",\"a\":", dir_name(m->dir), in);
		if (*in == 'A')
			json_num(f, "%.6g", mean(m));
		else
			fputs("null", f);
		fprintf(f, ",\"b\":");
		if (*in == 'B')
			json_num(f, "%.6g", mean(m));
		else
			fputs("null", f);
		fprintf(f, ",\"delta\":null,\"change_pct\":null,\"significant\":false,"
			   "\"verdict\":\"\",\"past_threshold\":false}");
		*first = false;
		return;
	}
	char name[256];
	tx_safe(name, sizeof(name), m->name);
	if (*in == 'A')
		fprintf(f, "%-40s %14.6g %14s (only in A)\n", name, mean(m), "-");
	else
		fprintf(f, "%-40s %14s %14.6g (only in B)\n", name, "-", mean(m));
}

int diff_print(FILE *f, const char *an, const struct diff_run *a, const char *bn,
	       const struct diff_run *b, double fail_over, double min_change, bool json)
{
	int past = 0;
	if (json)
		fprintf(f, "{\"schema\":\"schedtop-diff/1\",\"kind\":\"%s\",\"a_samples\":%" PRIu64 ","
			   "\"b_samples\":%" PRIu64 ",\"fail_over_pct\":%g,\"min_change_pct\":%g,\"metrics\":[",
			a->kind, a->samples, b->samples, fail_over, min_change);
	else
		fprintf(f, "A: %s (%s, %" PRIu64 " sample%s)\nB: %s (%s, %" PRIu64 " sample%s)\n"
			   "%-40s %14s %14s %14s %9s\n",
			an, a->kind, a->samples, a->samples == 1 ? "" : "s", bn, b->kind, b->samples,
			b->samples == 1 ? "" : "s", "metric (mean over samples)", "A", "B", "delta",
			"change");
	bool first = true;
	for (unsigned i = 0; i < a->nm; i++) {
		const struct diff_metric *mb = find(b, a->m[i].name);
		if (!mb) {
			print_only(f, &a->m[i], "A", json, &first);
			continue;
		}
		struct cmp c = compare(&a->m[i], mb, fail_over, min_change);
		past += c.past;
		if (json) {
			fprintf(f, "%s{\"name\":", first ? "" : ",");
			jw_print_str(f, c.name);
			fprintf(f, ",\"direction\":\"%s\",\"a\":", dir_name(c.dir));
			json_num(f, "%.6g", c.a);
			fprintf(f, ",\"b\":");
			json_num(f, "%.6g", c.b);
			fprintf(f, ",\"delta\":");
			json_num(f, "%.6g", c.delta);
			fprintf(f, ",\"change_pct\":"); /* null too when A is 0 and B is not */
			json_num(f, "%.2f", c.pct);
			fprintf(f, ",\"significant\":%s,\"verdict\":\"%s\",\"past_threshold\":%s}",
				c.sig ? "true" : "false", verdict(&c), c.past ? "true" : "false");
			first = false;
			continue;
		}
		char pct[24], name[256];
		if (isnan(c.pct))
			snprintf(pct, sizeof(pct), "new");
		else
			snprintf(pct, sizeof(pct), "%+.1f%%", c.pct);
		fprintf(f, "%-40s %14.6g %14.6g %+14.6g %9s %s%s%s\n", tx_safe(name, sizeof(name), c.name),
			c.a, c.b, c.delta, pct, c.sig ? "* " : "", verdict(&c),
			c.past ? "  PAST --fail-over" : "");
	}
	for (unsigned i = 0; i < b->nm; i++)
		if (!find(a, b->m[i].name))
			print_only(f, &b->m[i], "B", json, &first);
	if (json) {
		fprintf(f, "],\"past_threshold\":%d}\n", past);
		return past;
	}
	fprintf(f, "* significant: |change| >= %g%%%s\n", min_change,
		a->samples > 1 && b->samples > 1 ? " and more than 3 standard errors apart" : "");
	if (fail_over >= 0)
		fprintf(f, "%d metric%s worse by more than %g%% (--fail-over)\n", past,
			past == 1 ? "" : "s", fail_over);
	return past;
}
