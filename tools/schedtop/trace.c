/*
 * trace.c - trace events to JSON lines, Chrome trace-event JSON and a
 * summary (see trace.h).
 *
 * Worker state over time is rebuilt from the events with the same rules as
 * the BPF side's `state` field: worker_start, unpark and steal_fail start
 * `searching`; steal and overflow mean the worker runs tasks (`running`);
 * park starts `parked`; worker_stop ends the track; worker_seen (schedtop's
 * own, at the trace's start and end) gives the state schedtop read, so
 * a worker that fires no probe all along (asleep in its park) has its
 * track and its row in the summary too. A worker that finds
 * work in its own ring or the inject queue fires no probe, so `searching`
 * after an unpark lasts until the next sign of running (documented as an
 * upper bound in docs/OBSERVABILITY.md). Spans on one track are emitted in
 * time order, each ending where the next begins, so they never overlap.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "model.h"
#include "trace.h"

static const struct {
	const char *name;
	const char *arg[3];
} ev_info[WEFT_EV_NR] = {
	[WEFT_EV_RUNTIME_CREATE] = { "runtime_create", { "workers", NULL, NULL } },
	[WEFT_EV_RUNTIME_SHUTDOWN] = { "runtime_shutdown", { NULL, NULL, NULL } },
	[WEFT_EV_WORKER_START] = { "worker_start", { "thread", NULL, NULL } },
	[WEFT_EV_WORKER_STOP] = { "worker_stop", { "thread", NULL, NULL } },
	[WEFT_EV_STEAL] = { "steal", { "victim", "n", "victim_depth" } },
	[WEFT_EV_STEAL_FAIL] = { "steal_fail", { NULL, NULL, NULL } },
	[WEFT_EV_PARK] = { "park", { "kind", "local_depth", "inject_depth" } },
	[WEFT_EV_UNPARK] = { "unpark", { "reason", NULL, NULL } },
	[WEFT_EV_NOTIFY] = { "notify", { "to", NULL, NULL } },
	[WEFT_EV_OVERFLOW] = { "overflow", { "n", NULL, NULL } },
	[WEFT_EV_WORKER_SEEN] = { "worker_seen", { "state", NULL, NULL } },
};

const char *ev_type_name(unsigned type)
{
	return type < WEFT_EV_NR && ev_info[type].name ? ev_info[type].name : "unknown";
}

int evbuf_push(struct evbuf *b, const struct weft_bpf_event *e)
{
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 4096;
		struct weft_bpf_event *p = realloc(b->ev, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->ev = p;
		b->cap = nc;
	}
	b->ev[b->n++] = *e;
	return 0;
}

void evbuf_free(struct evbuf *b)
{
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

static int ev_cmp(const void *x, const void *y)
{
	const struct weft_bpf_event *a = x, *b = y;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return 0;
}

struct ev_pos {
	struct weft_bpf_event e;
	size_t i;
};

static int ev_pos_cmp(const void *x, const void *y)
{
	const struct ev_pos *a = x, *b = y;
	int c = ev_cmp(&a->e, &b->e);
	if (c)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

void evbuf_sort(struct evbuf *b)
{
	/* qsort is not stable: break ties by original position. */
	size_t n = b->n;
	struct ev_pos *t = malloc(n * sizeof(*t) + 1);
	if (!t) {
		qsort(b->ev, n, sizeof(*b->ev), ev_cmp);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		t[i].e = b->ev[i];
		t[i].i = i;
	}
	qsort(t, n, sizeof(*t), ev_pos_cmp);
	for (size_t i = 0; i < n; i++)
		b->ev[i] = t[i].e;
	free(t);
}

void trace_jsonl_write(FILE *f, const struct weft_bpf_event *e)
{
	unsigned ty = e->type < WEFT_EV_NR ? e->type : 0;
	fprintf(f, "{\"ts_ns\":%llu,\"type\":\"%s\",\"core\":%d,\"tid\":%u,\"cpu\":%u,\"rt\":%llu",
		e->ts, ev_type_name(e->type), e->core, e->tid, e->cpu, e->rt_id);
	const long long a[3] = { e->a0, e->a1, e->a2 };
	for (int i = 0; i < 3; i++)
		if (ev_info[ty].arg[i])
			fprintf(f, ",\"%s\":%lld", ev_info[ty].arg[i], a[i]);
	fprintf(f, "}\n");
}

int trace_jsonl_read(FILE *f, struct evbuf *b, size_t *bad_line)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	int rc = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, f)) > 0) {
		lineno++;
		size_t n = strlen(line);
		/* a NUL in it: the zeros a crash leaves at the end of a file
		 * being appended to read as a blank line, and whatever
		 * followed a NUL on a line was dropped (a review) */
		if (n != (size_t)got) {
			rc = -EINVAL;
			break;
		}
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
			     line[n - 1] == '\t'))
			line[--n] = '\0';
		if (!n)
			continue; /* a blank line */
		/* one whole object a line: a line cut short (its steal read
		 * as victim 0, 0 tasks) or one that is not an object (it was
		 * skipped) is a bad line, not taken silently (a review) */
		if (line[0] != '{' || line[n - 1] != '}') {
			rc = -EINVAL;
			break;
		}
		struct weft_bpf_event e;
		memset(&e, 0, sizeof(e));
		char name[32];
		uint64_t v;
		if (!jf_str(line, "type", name, sizeof(name)) || !jf_u64(line, "ts_ns", &v)) {
			rc = -EINVAL;
			break;
		}
		e.ts = v;
		for (unsigned t = 1; t < WEFT_EV_NR; t++)
			if (ev_info[t].name && !strcmp(ev_info[t].name, name))
				e.type = t;
		if (!e.type) {
			rc = -EINVAL;
			break;
		}
		if (jf_u64(line, "core", &v)) e.core = (int)(int64_t)v;
		if (jf_u64(line, "tid", &v)) e.tid = (unsigned)v;
		if (jf_u64(line, "cpu", &v)) e.cpu = (unsigned)v;
		if (jf_u64(line, "rt", &v)) e.rt_id = v;
		long long *a[3] = { &e.a0, &e.a1, &e.a2 };
		for (int i = 0; i < 3; i++)
			if (ev_info[e.type].arg[i] && jf_u64(line, ev_info[e.type].arg[i], &v))
				*a[i] = (long long)v;
		if (evbuf_push(b, &e)) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc && bad_line)
		*bad_line = lineno;
	free(line);
	return rc;
}

/* ------------------------------------------------------------ tracks */

/* Workers of several runtimes stay apart: a track per (runtime, core),
 * runtimes numbered in the order their first event came, as many as the
 * events name (room for 16 before: the events of the 17th runtime and
 * later were left out of the trace and the summary, unsaid - found by a
 * review). */
struct rt_index {
	unsigned long long *rt;
	unsigned n, cap, last;
};

static int rt_idx(struct rt_index *x, unsigned long long rt)
{
	if (x->last < x->n && x->rt[x->last] == rt)
		return (int)x->last;
	for (unsigned i = 0; i < x->n; i++)
		if (x->rt[i] == rt)
			return (int)(x->last = i);
	if (x->n == x->cap) {
		unsigned nc = x->cap ? 2 * x->cap : 16;
		unsigned long long *p = realloc(x->rt, nc * sizeof(*p));
		if (!p)
			return -1;
		x->rt = p;
		x->cap = nc;
	}
	x->rt[x->n] = rt;
	return (int)(x->last = x->n++);
}

/* The track of core `core` of e's runtime, or -1. */
static int track_of(struct rt_index *x, const struct weft_bpf_event *e, long long core)
{
	int r = rt_idx(x, e->rt_id);
	if (r < 0 || core < 0 || core >= WEFT_BPF_MAX_CORES)
		return -1;
	return r * WEFT_BPF_MAX_CORES + (int)core;
}

static unsigned count_runtimes(const struct evbuf *b)
{
	struct rt_index x = { 0 };
	for (size_t i = 0; i < b->n; i++)
		rt_idx(&x, b->ev[i].rt_id);
	free(x.rt);
	return x.n;
}

/* Tracks for every (runtime, core) of b: one row of cores per runtime. */
static size_t tracks_for(const struct evbuf *b, unsigned *nrt)
{
	*nrt = count_runtimes(b);
	return (size_t)(*nrt ? *nrt : 1) * WEFT_BPF_MAX_CORES;
}

/* ------------------------------------------------------------ chrome JSON */

struct track {
	int seen;
	unsigned state;
	unsigned long long start;
	unsigned tid;
};

static unsigned next_state(const struct weft_bpf_event *e, unsigned cur)
{
	switch (e->type) {
	case WEFT_EV_WORKER_START: return WEFT_ST_SEARCHING;
	case WEFT_EV_STEAL: return WEFT_ST_RUNNING;
	case WEFT_EV_OVERFLOW: return WEFT_ST_RUNNING;
	case WEFT_EV_STEAL_FAIL: return WEFT_ST_SEARCHING;
	case WEFT_EV_PARK: return WEFT_ST_PARKED;
	case WEFT_EV_UNPARK: return WEFT_ST_SEARCHING;
	case WEFT_EV_WORKER_STOP: return WEFT_ST_STOPPED;
	case WEFT_EV_WORKER_SEEN: return e->a0 > 0 && e->a0 < WEFT_ST_NR ? (unsigned)e->a0 : cur;
	default: return cur;
	}
}

static void us(FILE *f, unsigned long long ns)
{
	fprintf(f, "%llu.%03llu", ns / 1000, ns % 1000);
}

static bool sep_first;
static void sep(FILE *f)
{
	fputs(sep_first ? "\n" : ",\n", f);
	sep_first = false;
}

static void span(FILE *f, int pid, int core, unsigned state, unsigned long long t0,
		 unsigned long long a, unsigned long long b, struct trace_stats *st)
{
	if (state == WEFT_ST_UNKNOWN || state == WEFT_ST_STOPPED || b <= a)
		return;
	sep(f);
	fprintf(f, "{\"name\":\"%s\",\"cat\":\"state\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":",
		state_name(state), pid, core + 1);
	us(f, a - t0);
	fprintf(f, ",\"dur\":");
	us(f, b - a);
	fprintf(f, "}");
	st->spans++;
}

void trace_chrome_write(FILE *f, const struct evbuf *b, int pid, struct trace_stats *st)
{
	struct trace_stats dummy;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	unsigned nrt;
	size_t ntr = tracks_for(b, &nrt);
	struct track *tr = calloc(ntr, sizeof(*tr));
	struct rt_index rx = { 0 };
	bool multi = nrt > 1;
	if (!tr)
		return;
	unsigned long long t0 = b->n ? b->ev[0].ts : 0, tend = b->n ? b->ev[b->n - 1].ts : 0;
	unsigned long long flow_id = 0;
	sep_first = true;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"schedtop\",\"pid\":%d},"
		   "\"traceEvents\":[", pid);
	sep(f);
	fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
		   "\"args\":{\"name\":\"weft pid %d\"}}", pid, pid);
	sep(f);
	fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
		   "\"args\":{\"name\":\"outside workers\"}}", pid);
	for (size_t i = 0; i < b->n; i++) {
		const struct weft_bpf_event *e = &b->ev[i];
		int c = track_of(&rx, e, e->core); /* the track; e->core: the worker */
		if (c >= 0 && e->type != WEFT_EV_NOTIFY) {
			struct track *t = &tr[c];
			if (!t->seen) {
				t->seen = 1;
				t->tid = e->tid;
				sep(f);
				if (multi)
					fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
						   "\"tid\":%d,\"args\":{\"name\":\"runtime %d (0x%llx) "
						   "worker %d (tid %u)\"}}", pid, c + 1,
						c / WEFT_BPF_MAX_CORES, e->rt_id, e->core, e->tid);
				else
					fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
						   "\"tid\":%d,\"args\":{\"name\":\"worker %d (tid %u)\"}}",
						pid, c + 1, e->core, e->tid);
				sep(f);
				fprintf(f, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,"
					   "\"tid\":%d,\"args\":{\"sort_index\":%d}}", pid, c + 1, c + 1);
				t->state = next_state(e, WEFT_ST_UNKNOWN);
				t->start = e->ts;
			} else {
				unsigned ns = next_state(e, t->state);
				if (ns != t->state) {
					span(f, pid, c, t->state, t0, t->start, e->ts, st);
					t->state = ns;
					t->start = e->ts;
				}
			}
		}
		switch (e->type) {
		case WEFT_EV_STEAL: {
			int vt = track_of(&rx, e, e->a0); /* the victim, same runtime */
			if (vt >= 0 && c >= 0) {
				flow_id++;
				sep(f);
				fprintf(f, "{\"name\":\"steal\",\"cat\":\"steal\",\"ph\":\"s\",\"id\":%llu,"
					   "\"pid\":%d,\"tid\":%d,\"ts\":", flow_id, pid, vt + 1);
				us(f, e->ts - t0);
				fprintf(f, "}");
				sep(f);
				fprintf(f, "{\"name\":\"steal\",\"cat\":\"steal\",\"ph\":\"f\",\"bp\":\"e\","
					   "\"id\":%llu,\"pid\":%d,\"tid\":%d,\"ts\":", flow_id, pid, c + 1);
				us(f, e->ts - t0);
				fprintf(f, "}");
				sep(f);
				fprintf(f, "{\"name\":\"steal %lld from w%lld\",\"cat\":\"steal\",\"ph\":\"i\","
					   "\"s\":\"t\",\"pid\":%d,\"tid\":%d,\"ts\":", e->a1, e->a0, pid, c + 1);
				us(f, e->ts - t0);
				fprintf(f, ",\"args\":{\"victim\":%lld,\"n\":%lld,\"victim_depth\":%lld}}",
					e->a0, e->a1, e->a2);
				st->flows++;
				st->instants++;
			}
			break;
		}
		case WEFT_EV_NOTIFY:
		case WEFT_EV_OVERFLOW:
		case WEFT_EV_RUNTIME_CREATE:
		case WEFT_EV_RUNTIME_SHUTDOWN:
			sep(f);
			fprintf(f, "{\"name\":\"%s\",\"cat\":\"event\",\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,"
				   "\"tid\":%d,\"ts\":", ev_type_name(e->type), pid,
				c >= 0 ? c + 1 : 0);
			us(f, e->ts - t0);
			fprintf(f, ",\"args\":{\"a0\":%lld}}", e->a0);
			st->instants++;
			break;
		default:
			break;
		}
	}
	for (size_t c = 0; c < ntr; c++)
		if (tr[c].seen)
			span(f, pid, (int)c, tr[c].state, t0, tr[c].start, tend, st);
	fprintf(f, "\n]}\n");
	free(tr);
	free(rx.rt);
}

/* ---------------------------------------------------------------- summary */

static int u64_cmp(const void *x, const void *y)
{
	unsigned long long a = *(const unsigned long long *)x, b = *(const unsigned long long *)y;
	return a < b ? -1 : a > b;
}

void trace_summary(FILE *f, const struct evbuf *b)
{
	unsigned nrt;
	size_t ntr = tracks_for(b, &nrt);
	unsigned long long *ops = calloc(ntr, sizeof(*ops));
	unsigned long long *tasks = calloc(ntr, sizeof(*tasks));
	unsigned long long *parks = calloc(ntr, sizeof(*parks));
	unsigned long long *park_at = calloc(ntr, sizeof(*park_at));
	unsigned char *seen = calloc(ntr, 1);
	unsigned long long *dur = malloc((b->n + 1) * sizeof(*dur));
	struct rt_index rx = { 0 };
	size_t nd = 0;
	if (!ops || !tasks || !parks || !park_at || !seen || !dur)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		const struct weft_bpf_event *e = &b->ev[i];
		int c = track_of(&rx, e, e->core);
		if (c < 0)
			continue;
		if (e->type != WEFT_EV_NOTIFY)
			seen[c] = 1;
		switch (e->type) {
		case WEFT_EV_STEAL:
			ops[c]++;
			tasks[c] += (unsigned long long)e->a1;
			break;
		case WEFT_EV_PARK:
			parks[c]++;
			park_at[c] = e->ts;
			break;
		case WEFT_EV_UNPARK:
			if (park_at[c])
				dur[nd++] = e->ts - park_at[c];
			park_at[c] = 0;
			break;
		default:
			break;
		}
	}
	unsigned long long span = b->n ? b->ev[b->n - 1].ts - b->ev[0].ts : 0;
	fprintf(f, "summary: %zu events over %.3f s\n", b->n, (double)span / 1e9);
	if (rx.n > 1)
		fprintf(f, "%-16s ", "runtime");
	fprintf(f, "%-6s %10s %12s %14s %8s\n", "worker", "steals", "tasks_stolen", "tasks/steal",
		"parks");
	unsigned long long to = 0, tt = 0;
	for (size_t c = 0; c < ntr; c++) {
		if (!seen[c])
			continue;
		if (rx.n > 1)
			fprintf(f, "0x%-14llx ", rx.rt[c / WEFT_BPF_MAX_CORES]);
		fprintf(f, "w%-5d %10llu %12llu %14.2f %8llu\n", (int)(c % WEFT_BPF_MAX_CORES), ops[c],
			tasks[c], ops[c] ? (double)tasks[c] / (double)ops[c] : 0.0, parks[c]);
		to += ops[c];
		tt += tasks[c];
	}
	fprintf(f, "%-6s %10llu %12llu %14.2f\n", "all", to, tt, to ? (double)tt / (double)to : 0.0);
	if (nd) {
		qsort(dur, nd, sizeof(*dur), u64_cmp);
		fprintf(f, "park time (%zu parks): p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n",
			nd, (double)dur[nd / 2] / 1e3, (double)dur[nd * 90 / 100] / 1e3,
			(double)dur[nd * 99 / 100] / 1e3, (double)dur[nd - 1] / 1e3);
	} else {
		fprintf(f, "park time: no complete park\n");
	}
out:
	free(ops);
	free(tasks);
	free(parks);
	free(park_at);
	free(seen);
	free(dur);
	free(rx.rt);
}
