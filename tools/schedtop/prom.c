/*
 * prom.c - see prom.h.
 *
 * Counters are cumulative since schedtop attached (the BPF side's first
 * read of a core is its baseline), except weft_worker_polls_total and
 * weft_worker_busy_seconds_total, which are the runtime's own counters
 * since the runtime started; either way they only grow while one schedtop
 * runs, and a restart of schedtop or of the runtime is a counter reset,
 * which rate() handles.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "jwalk.h"
#include "prom.h"

struct cmetric {
	const char *name, *help;
	size_t off;          /* offset in struct weft_bpf_core */
	double scale;        /* 1e-9: ns to seconds */
};

/* Histogram buckets written (finite `le`): see prom_write */
#define PROM_BUCKETS 32
_Static_assert(PROM_BUCKETS <= WEFT_BPF_HIST_SLOTS, "prom writes buckets the BPF side has");

#define OFF(x) offsetof(struct weft_bpf_core, x)

static const struct cmetric counters[] = {
	{ "weft_worker_polls_total", "Task polls by this worker (the runtime's counter since it started).", OFF(polls), 1 },
	{ "weft_worker_busy_seconds_total", "Time this worker spent polling tasks (the runtime's counter since it started).", OFF(busy_ns), 1e-9 },
	{ "weft_worker_steals_total", "Successful steal operations by this worker as the thief.", OFF(steal_ops_in), 1 },
	{ "weft_worker_tasks_stolen_total", "Tasks this worker took in its steals.", OFF(tasks_stolen_in), 1 },
	{ "weft_worker_stolen_from_total", "Steal operations that took tasks from this worker's queue.", OFF(steal_ops_out), 1 },
	{ "weft_worker_steal_failures_total", "Searches of every queue that found nothing.", OFF(steal_fails), 1 },
	{ "weft_worker_steal_wait_rounds_total", "Search rounds spent waiting on a queue of short tasks its worker serves itself (steal policy).", OFF(steal_waits), 1 },
	{ "weft_worker_parks_total", "Times this worker parked.", OFF(parks), 1 },
	{ "weft_worker_unparks_total", "Times this worker woke from a park (notified, or leaving on work it saw itself, or retired).", OFF(unparks), 1 },
	{ "weft_worker_noop_unparks_total", "Unparks after which the worker parked again without polling a task.", OFF(noop_unparks), 1 },
	{ "weft_worker_overflows_total", "Times the local queue was full and half of it moved to the inject queue.", OFF(overflows), 1 },
	{ "weft_worker_park_seconds_total", "Time asleep in completed park sleeps.", OFF(park_ns), 1e-9 },
	{ "weft_worker_cpu_seconds_total", "On-CPU time of the worker's thread (sched_switch).", OFF(oncpu_ns), 1e-9 },
	{ "weft_worker_voluntary_context_switches_total", "Voluntary context switches of the worker's thread.", OFF(vol_switches), 1 },
	{ "weft_worker_involuntary_context_switches_total", "Involuntary context switches (preemptions) of the worker's thread.", OFF(invol_switches), 1 },
	{ "weft_worker_migrations_total", "CPU migrations of the worker's thread.", OFF(migrations), 1 },
	{ "weft_worker_futex_waits_total", "Futex waits of the worker's thread that slept.", OFF(futex_waits), 1 },
	{ "weft_worker_futex_wait_seconds_total", "Time the worker's thread slept in futex waits.", OFF(futex_wait_ns), 1e-9 },
};

struct hmetric {
	const char *name, *help;
	unsigned h;          /* WEFT_H_* */
	double scale;        /* bucket bound unit: 1e-9 ns -> s; 1: tasks */
	long sum_off;        /* offset of the sum in weft_bpf_core, -1: not known */
	double sum_scale;
};

static const struct hmetric hists[] = {
	{ "weft_worker_park_duration_seconds", "One park sleep: asleep in the park until running again.", WEFT_H_PARK_NS, 1e-9, (long)OFF(park_ns), 1e-9 },
	{ "weft_worker_unpark_latency_seconds", "Woken from a park sleep until running again (no _sum: only the buckets are kept).", WEFT_H_UNPARK_LAT_NS, 1e-9, -1, 0 },
	{ "weft_worker_steal_batch_tasks", "Tasks taken per steal operation as the thief.", WEFT_H_STEAL_BATCH, 1, -1, 0 },
	{ "weft_worker_futex_wait_duration_seconds", "One futex wait that slept (kernel view).", WEFT_H_FUTEX_NS, 1e-9, (long)OFF(futex_wait_ns), 1e-9 },
};

static uint64_t field(const struct weft_bpf_core *c, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)c + off, sizeof(v));
	return v;
}

/*
 * On-CPU time of core i's thread up to the snapshot: the finished spans
 * (oncpu_ns, added at each switch out) and the one in progress, as the
 * interval view counts it (model.c, oncpu_time). With oncpu_ns alone, a
 * worker spinning in one poll alone on its CPU never switched out and its
 * counter stood still: a rate of 0 at 100 % busy (found by a review).
 * A counter never goes down: a block_in_place hand-off makes the spare's
 * span, which began later, the core's span in progress, so the value is
 * held at the last one written for the series until the time catches up.
 */
static uint64_t cpu_ns(const struct snap *s, unsigned i)
{
	static struct {
		uint64_t rt;
		unsigned core;
		uint64_t ns;
	} last[WEFT_BPF_SLOTS];
	const struct weft_bpf_core *c = &s->cores[i];
	uint64_t ns = c->oncpu_ns;
	if (c->oncpu_since && s->ts_ns > c->oncpu_since)
		ns += s->ts_ns - c->oncpu_since;
	for (unsigned k = 0; k < WEFT_BPF_SLOTS; k++) {
		if (!last[k].rt) {
			last[k].rt = c->rt_id;
			last[k].core = c->core;
			last[k].ns = ns;
			return ns;
		}
		if (last[k].rt == c->rt_id && last[k].core == c->core) {
			if (ns < last[k].ns)
				return last[k].ns;
			return last[k].ns = ns;
		}
	}
	return ns;
}

/* worker: the core's index in its runtime (`w`, the slot, is not) */
static void labels(char *b, size_t n, const struct weft_bpf_core *c, unsigned w)
{
	(void)w;
	snprintf(b, n, "runtime=\"0x%llx\",worker=\"%u\"", c->rt_id, c->core);
}

/* A count times its scale in the format's float syntax, exact: a count
 * as it is, nanoseconds as seconds with every digit (at %.9g a seconds
 * counter lost its last digits past 10^6 s: 1000000.12 for
 * 1000000.123456789, and a rate over a scrape interval read zero or a
 * 10 ms step). */
static void val(FILE *f, uint64_t v, double scale)
{
	if (scale == 1)
		fprintf(f, "%" PRIu64 "\n", v);
	else if (scale == 1e-9 && v % 1000000000u == 0)
		fprintf(f, "%" PRIu64 "\n", v / 1000000000u);
	else if (scale == 1e-9) {
		char frac[16];
		int k = snprintf(frac, sizeof(frac), "%09" PRIu64, v % 1000000000u);
		while (k > 1 && frac[k - 1] == '0')
			frac[--k] = '\0';
		fprintf(f, "%" PRIu64 ".%s\n", v / 1000000000u, frac);
	} else
		fprintf(f, "%.17g\n", (double)v * scale);
}

static const char *const state_label[WEFT_ST_NR] = { "unknown", "running", "searching", "parked",
						     "stopped" };

/* A core is exported once a probe or the target's registry (stall.c) gave
 * its runtime id: a series' labels never change while schedtop runs (0x0
 * first and the address later would be two series, the first one ending
 * at once). */
static bool shown(const struct snap *s, unsigned i)
{
	return s->cores[i].rt_id != 0;
}

void prom_write(FILE *f, const struct snap *s, int pid, const char *lib)
{
	unsigned n = snap_ncores(s);
	char lb[96];
	fprintf(f, "# HELP weft_schedtop_target_info The process schedtop watches.\n"
		   "# TYPE weft_schedtop_target_info gauge\n"
		   "weft_schedtop_target_info{pid=\"%d\",lib=\"", pid);
	/* label value escapes; the format is UTF-8, and a path with a byte
	 * that is not made a scrape fail to parse (a review): U+FFFD */
	for (const char *p = lib ? lib : ""; *p;) {
		size_t k = jw_utf8_len(p);
		if (!k) {
			fputs("\xef\xbf\xbd", f);
			p++;
			continue;
		}
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		if (*p == '\n')
			fputs("\\n", f);
		else
			fwrite(p, 1, k, f);
		p += k;
	}
	fprintf(f, "\"} 1\n");
	fprintf(f, "# HELP weft_workers Worker threads seen for the runtime.\n"
		   "# TYPE weft_workers gauge\n");
	uint64_t rts[WEFT_BPF_MAX_CORES];
	unsigned nrt = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned k;
		if (!shown(s, i))
			continue;
		for (k = 0; k < nrt && rts[k] != s->cores[i].rt_id; k++)
			;
		if (k == nrt)
			rts[nrt++] = s->cores[i].rt_id;
	}
	for (unsigned k = 0; k < nrt; k++) {
		unsigned cnt = 0;
		for (unsigned i = 0; i < n; i++)
			if (s->cores[i].rt_id == rts[k])
				cnt++;
		fprintf(f, "weft_workers{runtime=\"0x%" PRIx64 "\"} %u\n", rts[k], cnt);
	}
	for (size_t m = 0; m < sizeof(counters) / sizeof(counters[0]); m++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", counters[m].name, counters[m].help,
			counters[m].name);
		for (unsigned i = 0; i < n; i++) {
			if (!shown(s, i))
				continue;
			labels(lb, sizeof(lb), &s->cores[i], i);
			fprintf(f, "%s{%s} ", counters[m].name, lb);
			uint64_t v = counters[m].off == OFF(oncpu_ns) ? cpu_ns(s, i)
								    : field(&s->cores[i], counters[m].off);
			/* a core the BPF side has not read yet (its worker asleep
			 * in its park since before the attach): the count read
			 * from the target's memory, never less than that */
			if (counters[m].off == OFF(polls) && i < WEFT_BPF_MAX_CORES &&
			    s->fresh_polls_ts[i] && !s->cores[i].polls_done &&
			    s->fresh_polls[i] > v)
				v = s->fresh_polls[i];
			val(f, v, counters[m].scale);
		}
	}
	fprintf(f, "# HELP weft_worker_local_queue_depth Tasks in the worker's local queue, latest seen.\n"
		   "# TYPE weft_worker_local_queue_depth gauge\n");
	for (unsigned i = 0; i < n; i++) {
		if (!shown(s, i))
			continue;
		labels(lb, sizeof(lb), &s->cores[i], i);
		fprintf(f, "weft_worker_local_queue_depth{%s} %llu\n", lb, s->cores[i].local_depth);
	}
	fprintf(f, "# HELP weft_worker_inject_queue_depth Tasks in the runtime's inject queue, as this worker last saw it.\n"
		   "# TYPE weft_worker_inject_queue_depth gauge\n");
	for (unsigned i = 0; i < n; i++) {
		if (!shown(s, i))
			continue;
		labels(lb, sizeof(lb), &s->cores[i], i);
		fprintf(f, "weft_worker_inject_queue_depth{%s} %llu\n", lb, s->cores[i].inject_depth);
	}
	fprintf(f, "# HELP weft_worker_state The worker's latest state (1 for the current one).\n"
		   "# TYPE weft_worker_state gauge\n");
	for (unsigned i = 0; i < n; i++) {
		if (!shown(s, i))
			continue;
		labels(lb, sizeof(lb), &s->cores[i], i);
		uint64_t ts;
		unsigned cur = snap_state(s, i, &ts); /* BPF's, else read from memory */
		for (unsigned st = 1; st < WEFT_ST_NR; st++)
			fprintf(f, "weft_worker_state{%s,state=\"%s\"} %d\n", lb, state_label[st],
				cur == st);
	}
	for (size_t m = 0; m < sizeof(hists) / sizeof(hists[0]); m++) {
		const struct hmetric *h = &hists[m];
		fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
		for (unsigned i = 0; i < n; i++) {
			if (!shown(s, i))
				continue;
			const unsigned long long *slot = s->hists[i][h->h].slot;
			uint64_t acc = 0;
			labels(lb, sizeof(lb), &s->cores[i], i);
			/* slot k holds [2^k, 2^(k+1)): integer values, so le = 2^(k+1) - 1.
			 * The first 32 only, the series there always were: the
			 * BPF side has 64 buckets now, and what is above them
			 * (4.3 s for times) counts in +Inf, where a 7 s park
			 * used to count under le 4.29 s (the top bucket held
			 * every larger value) */
			/* %.10g: 2^32 - 1 has ten digits; at %.9g the top buckets'
			 * le read 1.07374182 (below its values), 2.14748365 and
			 * 4.2949673, and 4.2949673e+09 tasks */
			for (unsigned k = 0; k < PROM_BUCKETS; k++) {
				acc += slot[k];
				fprintf(f, "%s_bucket{%s,le=\"%.10g\"} %" PRIu64 "\n", h->name, lb,
					(double)((1ull << (k + 1)) - 1) * h->scale, acc);
			}
			for (unsigned k = PROM_BUCKETS; k < WEFT_BPF_HIST_SLOTS; k++)
				acc += slot[k];
			fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", h->name, lb, acc);
			fprintf(f, "%s_count{%s} %" PRIu64 "\n", h->name, lb, acc);
			if (h->sum_off >= 0) {
				fprintf(f, "%s_sum{%s} ", h->name, lb);
				val(f, field(&s->cores[i], (size_t)h->sum_off), h->sum_scale);
			}
		}
	}
	fprintf(f, "# HELP weft_schedtop_ring_drops_total Trace events lost to a full ring buffer.\n"
		   "# TYPE weft_schedtop_ring_drops_total counter\n"
		   "weft_schedtop_ring_drops_total %" PRIu64 "\n", s->drops);
	fprintf(f, "# HELP weft_schedtop_bpf_runs_total Runs of schedtop's BPF programs (BPF_ENABLE_STATS).\n"
		   "# TYPE weft_schedtop_bpf_runs_total counter\n"
		   "weft_schedtop_bpf_runs_total %" PRIu64 "\n", s->bpf_run_cnt);
	fprintf(f, "# HELP weft_schedtop_bpf_run_seconds_total Time in schedtop's BPF programs (BPF_ENABLE_STATS).\n"
		   "# TYPE weft_schedtop_bpf_run_seconds_total counter\n"
		   "weft_schedtop_bpf_run_seconds_total ");
	val(f, s->bpf_run_ns, 1e-9);
}
