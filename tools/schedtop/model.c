/*
 * model.c - per-interval figures and lints from two snapshots (see model.h).
 *
 * Counters in a snapshot only grow, so an interval is cur - prev; gauges
 * (state, depths) are taken from cur. Time spent in each state adds the
 * in-progress part (state_ts up to the snapshot time) on both ends, so a
 * worker parked for the whole interval shows 100 % parked even though no
 * event fired. BPF timestamps and snapshot times are both CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jwalk.h"
#include "model.h"
#include "probe_abi.h" /* WEFT_PROBE_LAT_BINS */

const char *const lint_names[LINT_NR] = { "imbalance", "steal-storm", "herd", "stuck-worker",
					  "long-poll", "blocking-call" };

static const char *const state_names[WEFT_ST_NR] = { "unknown", "running", "searching", "parked",
						     "stopped" };

const char *state_name(unsigned st)
{
	return st < WEFT_ST_NR ? state_names[st] : "?";
}

unsigned snap_state(const struct snap *s, unsigned i, uint64_t *ts)
{
	const struct weft_bpf_core *c = &s->cores[i];
	if (c->state != WEFT_ST_UNKNOWN || i >= WEFT_BPF_MAX_CORES || !s->fresh_state[i]) {
		*ts = c->state_ts;
		return c->state;
	}
	*ts = s->fresh_state_ts[i];
	return s->fresh_state[i];
}

static bool core_active(const struct weft_bpf_core *c)
{
	return c->tid || c->steal_ops_out || c->notified || c->parks || c->state;
}

unsigned snap_ncores(const struct snap *s)
{
	if (s->slots_used)
		return s->slots_used < WEFT_BPF_MAX_CORES ? (unsigned)s->slots_used : WEFT_BPF_MAX_CORES;
	unsigned n = s->workers_declared < WEFT_BPF_MAX_CORES ? (unsigned)s->workers_declared
							       : WEFT_BPF_MAX_CORES;
	for (unsigned i = WEFT_BPF_MAX_CORES; i > n; i--)
		if (core_active(&s->cores[i - 1]))
			return i;
	return n;
}

unsigned snap_drop_holes(struct snap *s)
{
	unsigned n = s->slots_used < WEFT_BPF_MAX_CORES ? (unsigned)s->slots_used : WEFT_BPF_MAX_CORES;
	int to[WEFT_BPF_MAX_CORES]; /* old slot -> new slot, -1: a hole */
	unsigned kept = 0;
	for (unsigned i = 0; i < n; i++)
		to[i] = s->cores[i].core == WEFT_BPF_SLOT_HOLE ? -1 : (int)kept++;
	if (kept == n)
		goto filled;
	for (unsigned i = 0; i < n; i++) {
		if (to[i] < 0 || (unsigned)to[i] == i)
			continue;
		unsigned j = (unsigned)to[i];
		s->cores[j] = s->cores[i];
		memcpy(s->hists[j], s->hists[i], sizeof(s->hists[j]));
		s->blocks[j] = s->blocks[i];
		s->fresh_depth[j] = s->fresh_depth[i];
		s->fresh_depth_ts[j] = s->fresh_depth_ts[i];
		s->fresh_polls[j] = s->fresh_polls[i];
		s->fresh_polls_ts[j] = s->fresh_polls_ts[i];
		s->fresh_state[j] = s->fresh_state[i];
		s->fresh_state_ts[j] = s->fresh_state_ts[i];
		for (unsigned v = 0; v < WEFT_BPF_MAX_CORES; v++)
			s->matrix[j][v] = s->matrix[i][v];
	}
	/* columns: victims move the same way (holes never received a steal) */
	for (unsigned t = 0; t < kept; t++)
		for (unsigned v = 0; v < n; v++)
			if (to[v] >= 0 && (unsigned)to[v] != v)
				s->matrix[t][to[v]] = s->matrix[t][v];
	for (unsigned i = kept; i < n; i++) {
		memset(&s->cores[i], 0, sizeof(s->cores[i]));
		memset(s->hists[i], 0, sizeof(s->hists[i]));
		memset(&s->blocks[i], 0, sizeof(s->blocks[i]));
		s->fresh_depth[i] = s->fresh_depth_ts[i] = 0;
		s->fresh_polls[i] = s->fresh_polls_ts[i] = 0;
		s->fresh_state[i] = 0;
		s->fresh_state_ts[i] = 0;
		memset(s->matrix[i], 0, sizeof(s->matrix[i]));
	}
	for (unsigned t = 0; t < kept; t++)
		for (unsigned v = kept; v < n; v++)
			memset(&s->matrix[t][v], 0, sizeof(s->matrix[t][v]));
	s->slots_used = kept;
filled:
	/* A slot given out while the copy was made: its index is counted in
	 * slots_used before its runtime and core are stored (bpf/weft.bpf.c
	 * slot_of, mon_add_core), and it showed as a worker 0 of runtime 0x0
	 * ("runtimes 2" over one). It, and the slots after it, wait for the
	 * next snapshot, where they have these same indexes. A runtime's id
	 * is its address: never 0 in a slot that is filled. */
	for (unsigned i = 0; i < kept; i++)
		if (!s->cores[i].rt_id) {
			s->slots_used = i;
			break;
		}
	return n - kept;
}

uint64_t hist_pct(const uint64_t *slots, unsigned n, double pct)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += slots[i];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)ceil((double)total * pct / 100.0);
	if (want == 0)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i + 1 < n; i++) {
		acc += slots[i];
		if (acc >= want)
			return 1ull << (i + 1);
	}
	/* the top bucket: every value from 2^(n-1) up was counted there, so
	 * it has no upper bound (2^n was reported: with 32 buckets, a 7 s
	 * park read as under 4.3 s) */
	return HIST_OPEN;
}

static uint64_t d(uint64_t a, uint64_t b)
{
	return a >= b ? a - b : 0; /* a counter never shrinks; 0 on a reset */
}

static double state_time(const struct snap *s, unsigned i, unsigned st)
{
	const struct weft_bpf_core *c = &s->cores[i];
	double t = (double)c->state_ns[st];
	if (c->state == st && c->state_ts && s->ts_ns > c->state_ts)
		t += (double)(s->ts_ns - c->state_ts);
	return t;
}

/* On-CPU time of core i's thread up to the snapshot: the finished spans,
 * and the one in progress. */
static double oncpu_time(const struct snap *s, unsigned i)
{
	const struct weft_bpf_core *c = &s->cores[i];
	double t = (double)c->oncpu_ns;
	if (c->oncpu_since && s->ts_ns > c->oncpu_since)
		t += (double)(s->ts_ns - c->oncpu_since);
	return t;
}

/* The first slot of runtime rt among the rows: its rank. */
static unsigned rt_rank(const struct interval *iv, uint64_t rt)
{
	for (unsigned i = 0; i < iv->workers; i++)
		if (iv->row[i].rt == rt)
			return i;
	return iv->workers;
}

/* Core slot i's local queue depth as snapshot s knows it: read from the
 * target's memory at s (stall.c) when that is newer than the last probe
 * or park that reported one, else that report. *fresh: read from memory. */
static uint64_t snap_depth(const struct snap *s, unsigned i, bool *fresh)
{
	const struct weft_bpf_core *b = &s->cores[i];
	uint64_t seen = b->last_event_ts > b->state_ts ? b->last_event_ts : b->state_ts;
	*fresh = i < WEFT_BPF_MAX_CORES && s->fresh_depth_ts[i] && s->fresh_depth_ts[i] > seen;
	return *fresh ? s->fresh_depth[i] : b->local_depth;
}

/*
 * Core slot i's polls in the interval, from the core's own poll counter,
 * readable once a probe gave the counters' address. A slot first seen in
 * this interval (a runtime created, a core added, or `-- CMD` started
 * after the first snapshot: no row in p) counts from 0, as the core did;
 * a slot p knew without the address (attached to a running runtime, its
 * counter holds the polls since it started) counts from the poll count p
 * read from the target's memory (the registry gives the address), else
 * has no delta until both ends have it (the interval in which a core's
 * first probe came read 0 polls beside its parks). A runtime created again
 * at the slot's address moved the old one's final count to polls_done
 * (bpf/weft.bpf.c, runtime_create). A counter read lower than before
 * otherwise (a recording from before polls_done) restarted from 0: its
 * value is this interval's, and the old one goes to *before for the totals.
 */
static uint64_t polls_delta(const struct snap *p, const struct snap *s, unsigned i,
			    uint64_t *before)
{
	const struct weft_bpf_core *a = &p->cores[i], *b = &s->cores[i];
	if (b->polls_done > a->polls_done) {
		/* the runtime at this address was created again in the interval
		 * (bpf/weft.h, polls_done): the old ones' final counts, less what
		 * p had of the first, and the new one's from 0 */
		uint64_t old = b->polls_done - a->polls_done, seen = 0;
		if (a->counters_ptr)
			seen = a->polls;
		else if (i < WEFT_BPF_MAX_CORES && p->fresh_polls_ts[i])
			seen = p->fresh_polls[i];
		return (old >= seen ? old - seen : 0) + b->polls;
	}
	if (!b->counters_ptr)
		return 0;
	if (!a->counters_ptr) {
		if (!a->rt_id)
			return b->polls;
		if (i < WEFT_BPF_MAX_CORES && p->fresh_polls_ts[i] && b->polls >= p->fresh_polls[i])
			return b->polls - p->fresh_polls[i];
		return 0;
	}
	/* a core's counters never move (the cores array is allocated once):
	 * other counters are another runtime's */
	if (b->polls >= a->polls && a->counters_ptr == b->counters_ptr)
		return b->polls - a->polls;
	if (before)
		*before += a->polls;
	return b->polls;
}

static void row_fill(struct worker_row *r, const struct snap *p, const struct snap *s, unsigned i,
		     double dt_s, struct interval *iv, struct lint_state *ls)
{
	const struct weft_bpf_core *a = &p->cores[i], *b = &s->cores[i];
	memset(r, 0, sizeof(*r));
	r->core = i < WEFT_BPF_MAX_CORES ? b->core : 0;
	r->slot = i;
	r->rt = b->rt_id;
	r->tid = b->tid;
	uint64_t st_ts;
	r->state = snap_state(s, i, &st_ts);
	uint64_t *before = ls && i < WEFT_BPF_MAX_CORES ? &ls->polls_before[i] : NULL;
	r->polls = polls_delta(p, s, i, before);
	r->steals_in = d(b->steal_ops_in, a->steal_ops_in);
	r->tasks_in = d(b->tasks_stolen_in, a->tasks_stolen_in);
	r->steals_out = d(b->steal_ops_out, a->steal_ops_out);
	r->tasks_out = d(b->tasks_stolen_out, a->tasks_stolen_out);
	r->steal_fails = d(b->steal_fails, a->steal_fails);
	r->steal_waits = d(b->steal_waits, a->steal_waits);
	r->parks = d(b->parks, a->parks);
	r->unparks = d(b->unparks, a->unparks);
	r->noop_unparks = d(b->noop_unparks, a->noop_unparks);
	r->overflows = d(b->overflows, a->overflows);
	r->spills = d(b->overflow_spills, a->overflow_spills);
	r->notified = d(b->notified, a->notified);
	r->local_depth = b->local_depth;
	r->depth_max = b->depth_max;
	uint64_t seen = b->last_event_ts > b->state_ts ? b->last_event_ts : b->state_ts;
	/* an event stamped after the snapshot's clock is current, not unknown
	 * (a busy worker's probe fired during the copy: schedtop_lints failed
	 * in CI on a 199-deep queue shown stale at age -1) */
	r->age_s = !seen ? -1 : s->ts_ns > seen ? (double)(s->ts_ns - seen) / 1e9 : 0;
	r->stale = b->state != WEFT_ST_PARKED && b->state != WEFT_ST_STOPPED &&
		   (r->age_s < 0 || r->age_s > (dt_s > 0 ? dt_s : 1.0));
	r->depth_age_s = r->age_s;
	r->depth_stale = r->stale;
	if (st_ts > seen) {
		/* the state read from the target's memory (snap_state): as
		 * old as that read; the depth keeps its own age */
		r->age_s = s->ts_ns > st_ts ? (double)(s->ts_ns - st_ts) / 1e9 : 0;
		r->stale = r->state != WEFT_ST_PARKED && r->state != WEFT_ST_STOPPED &&
			   r->age_s > (dt_s > 0 ? dt_s : 1.0);
	}
	if (i < WEFT_BPF_MAX_CORES && s->fresh_depth_ts[i] && s->fresh_depth_ts[i] > seen) {
		/* read from the target's memory at the last sample: current */
		r->local_depth = s->fresh_depth[i];
		r->depth_age_s = s->ts_ns > s->fresh_depth_ts[i]
					 ? (double)(s->ts_ns - s->fresh_depth_ts[i]) / 1e9 : 0;
		r->depth_stale = false;
	}
	r->polls_per_s = dt_s > 0 ? (double)r->polls / dt_s : 0;
	r->cpu_pct = dt_s > 0 ? 100.0 * (oncpu_time(s, i) - oncpu_time(p, i)) /
					(dt_s * 1e9)
			     : 0;
	if (r->cpu_pct < 0)
		r->cpu_pct = 0;
	r->vol_cs = d(b->vol_switches, a->vol_switches);
	r->invol_cs = d(b->invol_switches, a->invol_switches);
	r->invol_with_work = d(b->invol_with_work, a->invol_with_work);
	r->migrations = d(b->migrations, a->migrations);
	r->futex_waits = d(b->futex_waits, a->futex_waits);
	r->futex_wait_ns = d(b->futex_wait_ns, a->futex_wait_ns);
	r->tot_steals_in = b->steal_ops_in;
	r->tot_tasks_in = b->tasks_stolen_in;
	r->tot_steals_out = b->steal_ops_out;
	r->tot_tasks_out = b->tasks_stolen_out;
	r->tot_parks = b->parks;
	r->tot_unparks = b->unparks;
	r->tot_noop = b->noop_unparks;
	r->tot_overflows = b->overflows;
	r->tot_polls = (before ? *before : 0) + b->polls_done + b->polls;
	r->tot_steal_waits = b->steal_waits;
	double span = (double)(s->ts_ns > p->ts_ns ? s->ts_ns - p->ts_ns : 0);
	if (span > 0 && i < WEFT_BPF_MAX_CORES)
		for (unsigned st = 0; st < WEFT_ST_NR; st++) {
			double f = (state_time(s, i, st) - (p->ts_ns ? state_time(p, i, st) : 0)) / span;
			r->state_frac[st] = f < 0 ? 0 : f > 1 ? 1 : f;
		}
	if (i < WEFT_BPF_MAX_CORES) {
		for (unsigned h = 0; h < WEFT_H_NR; h++)
			for (unsigned k = 0; k < WEFT_BPF_HIST_SLOTS; k++)
				iv->hist[i][h][k] = d(s->hists[i][h].slot[k], p->hists[i][h].slot[k]);
		r->park_p50_ns = hist_pct(iv->hist[i][WEFT_H_PARK_NS], WEFT_BPF_HIST_SLOTS, 50);
		r->park_p99_ns = hist_pct(iv->hist[i][WEFT_H_PARK_NS], WEFT_BPF_HIST_SLOTS, 99);
		r->unpark_p99_ns = hist_pct(iv->hist[i][WEFT_H_UNPARK_LAT_NS], WEFT_BPF_HIST_SLOTS, 99);
		r->futex_p99_ns = hist_pct(iv->hist[i][WEFT_H_FUTEX_NS], WEFT_BPF_HIST_SLOTS, 99);
	}
}

void interval_compute(struct interval *iv, const struct snap *p, const struct snap *s,
		      struct lint_state *ls)
{
	memset(iv, 0, sizeof(*iv));
	iv->ts_ns = s->ts_ns;
	iv->dt_s = p->ts_ns && s->ts_ns > p->ts_ns ? (double)(s->ts_ns - p->ts_ns) / 1e9 : 0;
	iv->workers = snap_ncores(s);
	double dt = iv->dt_s;
	uint64_t polls = 0, steals = 0, tasks = 0, parks = 0, unparks = 0;
	uint64_t inject_seen = 0;
	for (unsigned i = 0; i < iv->workers; i++) {
		struct worker_row *r = &iv->row[i];
		row_fill(r, p, s, i, dt, iv, ls);
		polls += r->polls;
		steals += r->steals_in;
		tasks += r->tasks_in;
		parks += r->parks;
		unparks += r->unparks;
		/* inject depth: the latest report of any worker */
		uint64_t seen = s->cores[i].last_event_ts;
		if (seen && seen >= inject_seen) {
			inject_seen = seen;
			iv->inject_depth = s->cores[i].inject_depth;
		}
		for (unsigned v = 0; v < iv->workers; v++)
			iv->matrix[i][v] = d(s->matrix[i][v].ops, p->matrix[i][v].ops);
	}
	row_fill(&iv->other, p, s, WEFT_BPF_OTHER, dt, iv, NULL);
	/* display order: by runtime (first slot seen), then core */
	for (unsigned i = 0; i < iv->workers; i++)
		iv->order[i] = i;
	for (unsigned i = 1; i < iv->workers; i++)
		for (unsigned j = i; j > 0; j--) {
			const struct worker_row *a = &iv->row[iv->order[j - 1]], *b = &iv->row[iv->order[j]];
			unsigned ra = rt_rank(iv, a->rt), rb = rt_rank(iv, b->rt);
			if (ra < rb || (ra == rb && a->core <= b->core))
				break;
			unsigned x = iv->order[j]; iv->order[j] = iv->order[j - 1]; iv->order[j - 1] = x;
		}
	iv->runtimes = 0;
	for (unsigned i = 0; i < iv->workers; i++)
		if (rt_rank(iv, iv->row[i].rt) == i)
			iv->runtimes++;
	if (s->fresh_inject_ts > inject_seen) {
		inject_seen = s->fresh_inject_ts;
		iv->inject_depth = s->fresh_inject;
	}
	iv->inject_age_s = !inject_seen ? -1
			   : s->ts_ns > inject_seen ? (double)(s->ts_ns - inject_seen) / 1e9 : 0;
	iv->inject_stale = iv->inject_age_s < 0 || iv->inject_age_s > (dt > 0 ? dt : 1.0);
	if (dt > 0) {
		iv->polls_per_s = (double)polls / dt;
		iv->steals_per_s = (double)steals / dt;
		iv->tasks_stolen_per_s = (double)tasks / dt;
		iv->parks_per_s = (double)parks / dt;
		iv->unparks_per_s = (double)unparks / dt;
		uint64_t runs = d(s->bpf_run_cnt, p->bpf_run_cnt);
		iv->bpf_events_per_s = (double)runs / dt;
		iv->bpf_ns_per_event = runs ? (double)d(s->bpf_run_ns, p->bpf_run_ns) / (double)runs : 0;
		iv->self_cpu_pct = 100.0 * (double)d(s->self_cpu_ns, p->self_cpu_ns) / (dt * 1e9);
	}
	iv->drops = s->drops;
	iv->cores_over = s->cores_dropped > 0 || s->slots_used > WEFT_BPF_MAX_CORES;
	snprintf(iv->futex_src, sizeof(iv->futex_src), "%s", s->futex_src);
	iv->drops_delta = d(s->drops, p->drops);

	/* ---- lints (only over a real interval) */
	if (dt <= 0)
		return;
	/* imbalance: the same worker deep for LINT_IMBALANCE_INTERVALS in a row
	 * (a worker that is deep in one interval and drained in the next is
	 * work stealing doing its job) */
	int deep = -1;
	uint64_t deep_min = 0;
	for (unsigned i = 0; i < iv->workers; i++) {
		const struct worker_row *r = &iv->row[i];
		/* the shallowest current depth in the same runtime */
		uint64_t rmin = UINT64_MAX;
		for (unsigned j = 0; j < iv->workers; j++) {
			const struct worker_row *q = &iv->row[j];
			if (q->rt == r->rt && q->state != WEFT_ST_STOPPED && !q->depth_stale &&
			    q->local_depth < rmin)
				rmin = q->local_depth;
		}
		/* ... and the shallowest short enough that its worker would
		 * take work: two queues 212 and 129 deep are two busy workers,
		 * nothing stealing could fix (CI drew it once on the healthy
		 * skew load) */
		bool is_deep = rmin != UINT64_MAX && r->state != WEFT_ST_STOPPED && !r->depth_stale &&
			       rmin <= LINT_IMBALANCE_DEPTH && r->local_depth > rmin + LINT_IMBALANCE_DEPTH;
		ls->imbalance_run[i] = is_deep ? ls->imbalance_run[i] + 1 : 0;
		if (ls->imbalance_run[i] >= LINT_IMBALANCE_INTERVALS &&
		    (deep < 0 || r->local_depth > iv->row[deep].local_depth)) {
			deep = (int)i;
			deep_min = rmin;
		}
	}
	if (deep >= 0) {
		iv->lint[LINT_IMBALANCE] = true;
		const struct worker_row *r = &iv->row[deep];
		char where[48] = "";
		if (iv->runtimes > 1)
			snprintf(where, sizeof(where), "runtime 0x%" PRIx64 ": ", r->rt);
		snprintf(iv->lint_detail[LINT_IMBALANCE], sizeof(iv->lint_detail[0]),
			 "%slocal depth w%u=%" PRIu64 " vs %" PRIu64 " (its runtime's shallowest), "
			 "w%u deep for %u intervals", where, r->core, r->local_depth, deep_min, r->core,
			 ls->imbalance_run[deep]);
	}
	/* steal-storm and herd look at each runtime on its own: one runtime's
	 * polls say nothing of another's wakes. */
	for (unsigned k = 0; k < iv->workers; k++) {
		uint64_t rt = iv->row[k].rt;
		if (rt_rank(iv, rt) != k)
			continue; /* not the runtime's first row */
		uint64_t rpolls = 0, rsteals = 0, rfails = 0, runparks = 0, rnoops = 0, rboth = 0,
			 rtasks = 0;
		bool rknown = true;
		double parked = 0;
		unsigned live = 0;
		for (unsigned i = 0; i < iv->workers; i++) {
			const struct worker_row *r = &iv->row[i];
			if (r->rt != rt)
				continue;
			rpolls += r->polls;
			rsteals += r->steals_in;
			rtasks += r->tasks_in;
			rboth += r->steals_in < r->steals_out ? r->steals_in : r->steals_out;
			rfails += r->steal_fails;
			runparks += r->unparks;
			rnoops += r->noop_unparks;
			/* a core stopped at both ends ran nothing in the
			 * interval; one that stopped during it (a run that
			 * ended in the first interval) did, its polls unknown:
			 * with every core stopped at the end, steal-storm fired
			 * on "0 polls/s" (a review) */
			if ((s->cores[i].state != WEFT_ST_STOPPED ||
			     p->cores[i].state != WEFT_ST_STOPPED) &&
			    !(p->cores[i].counters_ptr && s->cores[i].counters_ptr))
				rknown = false;
			if (r->state != WEFT_ST_STOPPED) {
				parked += r->state_frac[WEFT_ST_PARKED];
				live++;
			}
		}
		parked = live ? parked / live : 0;
		char where[48] = "";
		if (iv->runtimes > 1)
			snprintf(where, sizeof(where), "runtime 0x%" PRIx64 ": ", rt);
		/* steal-storm compares with polls/s: not before every worker's
		 * poll counter was read at both ends of the interval (the first
		 * interval after attach shows 0 polls/s until each worker passed
		 * maintenance). */
		double attempts = (double)(rsteals + rfails) / dt;
		if (rknown && !iv->lint[LINT_STEAL_STORM] && attempts >= LINT_STEAL_STORM_MIN_PER_S &&
		    attempts >= LINT_STEAL_STORM_RATIO * ((double)rpolls / dt)) {
			iv->lint[LINT_STEAL_STORM] = true;
			snprintf(iv->lint_detail[LINT_STEAL_STORM], sizeof(iv->lint_detail[0]),
				 "%s%.0f steal attempts/s vs %.0f polls/s", where, attempts,
				 (double)rpolls / dt);
		}
		/* The storm's other shape: workers run dry every few dozen polls
		 * and steal from each other, so the same tasks cross between
		 * workers again and again (a channel's receiver wakes its
		 * senders on its own worker, the other worker takes them, they
		 * block, and so on), each crossing a round of cache misses.
		 * Tasks spread one way, from a spawner to its thieves, or an
		 * overloaded runtime's occasional big batches, are not it. */
		double sops = (double)rsteals / dt;
		if (rknown && !iv->lint[LINT_STEAL_STORM] && sops >= LINT_STEAL_BOUNCE_MIN_PER_S &&
		    (double)rsteals * LINT_STEAL_BOUNCE_POLLS >= (double)rpolls &&
		    (double)rboth >= LINT_STEAL_BOUNCE_BOTH * (double)rsteals) {
			iv->lint[LINT_STEAL_STORM] = true;
			snprintf(iv->lint_detail[LINT_STEAL_STORM], sizeof(iv->lint_detail[0]),
				 "%stasks bounce between workers: %.0f steals/s (%.0f tasks/s, %.0f%% "
				 "both ways) vs %.0f polls/s, a steal every %.0f polls",
				 where, sops, (double)rtasks / dt, 100.0 * (double)rboth / (double)rsteals,
				 (double)rpolls / dt, rsteals ? (double)rpolls / (double)rsteals : 0.0);
		}
		/* herd: a wake storm - workers pulled out of an idle runtime again
		 * and again by bursts of tasks woken at once. Not a herd: one
		 * task per wake (a thread spawning into an idle runtime: half
		 * those wakes find nothing, the relayed searcher), busy workers
		 * handing tasks back and forth (ping-pong), or a few big waves a
		 * second (skew, bursts). The same storm program also takes a
		 * second shape, in some intervals of a run: its tasks arrive one
		 * at a time, each push wakes a worker, and tens of thousands of
		 * wakes a second find nothing (another worker got there first):
		 * 4-9 polls per unpark, 90-97% of them empty. A ping-pong wakes as
		 * often and as emptily, but its workers are busy, not parked; a
		 * thread spawning into an idle runtime wakes ~3,000 times a
		 * second with half the wakes empty. */
		double ups = (double)runparks / dt;
		double empty = runparks ? (double)rnoops / (double)runparks : 0;
		if (!iv->lint[LINT_HERD] && ups >= LINT_HERD_MIN_UNPARKS_PER_S && runparks && rknown &&
		    parked >= LINT_HERD_PARKED &&
		    (((double)rpolls / (double)runparks >= LINT_HERD_POLLS_PER_UNPARK &&
		      (double)rpolls / dt >= LINT_HERD_MIN_POLLS_PER_S) ||
		     (ups >= LINT_HERD_EMPTY_UNPARKS_PER_S && empty >= LINT_HERD_EMPTY_SHARE))) {
			iv->lint[LINT_HERD] = true;
			snprintf(iv->lint_detail[LINT_HERD], sizeof(iv->lint_detail[0]),
				 "%s%.0f unparks/s out of an idle runtime (workers %.0f%% parked), %.0f "
				 "polls per unpark; %" PRIu64 " of %" PRIu64 " found no work", where, ups,
				 100 * parked, (double)rpolls / (double)runparks, rnoops, runparks);
		}
	}
	for (unsigned i = 0; i < iv->workers; i++) {
		const struct worker_row *r = &iv->row[i];
		const struct weft_bpf_core *a = &p->cores[i], *c = &s->cores[i];
		/* Queued tasks at both ends of the interval and no poll in
		 * between. One reading of a depth is not proof (a ping-pong's
		 * idle worker, parking and unparking 100k times a second, once
		 * read as holding 4 while its two fibers ran on the other).
		 * Polls: from memory at both ends (stall.c), else from the
		 * probes' counters at both ends (the first interval after
		 * attaching has no baseline). A worker stuck since before the
		 * attach reports no probe at all (state unknown): the memory
		 * reads are all there is, and enough (depths read at both
		 * ends, a parked core's queue is empty). */
		bool fa, fb;
		uint64_t da = snap_depth(p, i, &fa), db = snap_depth(s, i, &fb);
		bool mem = i < WEFT_BPF_MAX_CORES && p->fresh_polls_ts[i] && s->fresh_polls_ts[i];
		bool idle = mem ? s->fresh_polls[i] == p->fresh_polls[i]
				: r->polls == 0 && a->counters_ptr && c->counters_ptr;
		bool awake = (fa && fb) || ((r->state == WEFT_ST_RUNNING ||
					     r->state == WEFT_ST_SEARCHING) &&
					    a->state != WEFT_ST_PARKED);
		if (da > 0 && db > 0 && idle && awake) {
			iv->lint[LINT_STUCK_WORKER] = true;
			char where[48] = "";
			if (iv->runtimes > 1)
				snprintf(where, sizeof(where), "runtime 0x%" PRIx64 ": ", r->rt);
			snprintf(iv->lint_detail[LINT_STUCK_WORKER], sizeof(iv->lint_detail[0]),
				 "%sw%u holds %" PRIu64 " queued tasks, no poll for %.1f s", where,
				 r->core, db, dt);
			break;
		}
	}
}

/* ---------------------------------------------------------------- output */

static void fmt_ns(char *b, size_t n, uint64_t ns)
{
	if (!ns)
		snprintf(b, n, "-");
	else if (ns < 10000)
		snprintf(b, n, "%" PRIu64 "ns", ns);
	else if (ns < 10000000)
		snprintf(b, n, "%" PRIu64 "us", ns / 1000);
	else if (ns < 10000000000ull)
		snprintf(b, n, "%" PRIu64 "ms", ns / 1000000);
	else
		snprintf(b, n, "%" PRIu64 "s", ns / 1000000000);
}

/* A percentile of a histogram of `buckets` log2 buckets (hist_pct), as
 * the text shows it: the bucket's upper bound, or at least the lower bound
 * of the open top bucket (">=2.1s" for the runtime's 32-bucket latency
 * histograms). */
static void fmt_pct_ns(char *b, size_t n, uint64_t ns, unsigned buckets)
{
	if (ns != HIST_OPEN)
		fmt_ns(b, n, ns);
	else
		snprintf(b, n, ">=%.1fs", (double)(1ull << (buckets - 1)) / 1e9);
}

void fmt_age(char *b, size_t n, double age_s, bool stale)
{
	if (age_s < 0)
		snprintf(b, n, "never");
	else
		snprintf(b, n, "%.1fs%s", age_s, stale ? " old" : "");
}

void interval_print_text(FILE *f, const struct interval *iv, int pid)
{
	char ia[32];
	fmt_age(ia, sizeof(ia), iv->inject_age_s, iv->inject_stale);
	if (pid > 0)
		fprintf(f, "pid %d  ", pid);
	else
		fprintf(f, "pid ?  "); /* a recording without it */
	if (iv->runtimes > 1)
		fprintf(f, "runtimes %u  ", iv->runtimes);
	fprintf(f, "workers %u  polls/s %.0f  steals/s %.0f (tasks %.0f)  parks/s %.0f  "
		   "inject %" PRIu64 "%s (%s)  bpf %.0fns/ev %.0fev/s  drops %" PRIu64 "  futex %s\n",
		iv->workers, iv->polls_per_s, iv->steals_per_s, iv->tasks_stolen_per_s,
		iv->parks_per_s, iv->inject_depth, iv->inject_stale ? "?" : "", ia,
		iv->bpf_ns_per_event, iv->bpf_events_per_s, iv->drops,
		iv->futex_src[0] ? iv->futex_src : "-");
	if (iv->cores_over)
		fprintf(f, "NOT SHOWN: the process has more than %d (runtime, core) pairs; "
			   "the figures cover only the %u workers listed\n",
			WEFT_BPF_MAX_CORES, iv->workers);
	for (unsigned k = 0; k < iv->nlat; k++) {
		const struct rt_lat *l = &iv->lat[k];
		char a[24], b[24], c[24], e[24], rt[48] = "";
		fmt_pct_ns(a, sizeof(a), l->poll_p50_ns, WEFT_PROBE_LAT_BINS);
		fmt_pct_ns(b, sizeof(b), l->poll_p99_ns, WEFT_PROBE_LAT_BINS);
		fmt_pct_ns(c, sizeof(c), l->wake_p50_ns, WEFT_PROBE_LAT_BINS);
		fmt_pct_ns(e, sizeof(e), l->wake_p99_ns, WEFT_PROBE_LAT_BINS);
		if (l->ended > 1)
			snprintf(rt, sizeof(rt), " of %u runtimes that ended", l->ended);
		else if (l->ended)
			snprintf(rt, sizeof(rt), " runtime 0x%" PRIx64 " (ended)", l->rt);
		else if (iv->nlat > 1)
			snprintf(rt, sizeof(rt), " runtime 0x%" PRIx64, l->rt);
		fprintf(f, "latency%s: poll p50 %s p99 %s, wake->poll p50 %s p99 %s (sampled: %" PRIu64
			   " polls, %" PRIu64 " wakes)\n", rt, a, b, c, e, l->polls_timed,
			l->wakes_timed);
		if (l->stalls_known && l->stalls) {
			char safe[sizeof(l->last_stall) * 4];
			fprintf(f, "stalls%s: %" PRIu64 " polls over the runtime's stall threshold%s%s\n",
				rt, l->stalls, l->last_stall[0] ? "; the latest: " : "",
				tx_safe(safe, sizeof(safe), l->last_stall));
		}
	}
	for (unsigned l = 0; l < LINT_NR; l++) {
		char safe[sizeof(iv->lint_detail[l]) * 4]; /* symbols from the target's files */
		if (iv->lint[l])
			fprintf(f, "LINT %s: %s\n", lint_names[l],
				tx_safe(safe, sizeof(safe), iv->lint_detail[l]));
	}
	if (iv->runtimes > 1)
		fprintf(f, "%-14s ", "RT");
	/* Every rate per second, as in the live view (and the header): the
	 * rows' counts used to be per interval, so at --batch 0.25 they
	 * disagreed with the header's steals/s. JSON keeps both. */
	double ps = iv->dt_s > 0 ? 1.0 / iv->dt_s : 0;
	fprintf(f, "%-3s %-7s %-9s %7s %9s %6s %8s %9s %7s %6s %7s %7s %7s %5s %7s %6s %7s\n",
		"W", "TID", "STATE", "AGE", "POLLS/s", "DEPTH", "STL_IN/s", "STL_OUT/s", "PARKS/s",
		"NOOP/s", "PARK50", "PARK99", "UNPK99", "CPU%", "INVOL/s", "MIGR/s", "WAIT/s");
	for (unsigned k = 0; k < iv->workers; k++) {
		const struct worker_row *r = &iv->row[iv->order[k]];
		char p50[24], p99[24], u99[24], age[32], dep[32];
		if (iv->runtimes > 1)
			fprintf(f, "0x%-12" PRIx64 " ", r->rt);
		fmt_age(age, sizeof(age), r->age_s, r->stale);
		snprintf(dep, sizeof(dep), "%" PRIu64 "%s", r->local_depth, r->depth_stale ? "?" : "");
		fmt_pct_ns(p50, sizeof(p50), r->park_p50_ns, WEFT_BPF_HIST_SLOTS);
		fmt_pct_ns(p99, sizeof(p99), r->park_p99_ns, WEFT_BPF_HIST_SLOTS);
		fmt_pct_ns(u99, sizeof(u99), r->unpark_p99_ns, WEFT_BPF_HIST_SLOTS);
		fprintf(f, "%-3u %-7u %-9s %7s %9.0f %6s %8.0f %9.0f %7.0f %6.0f %7s %7s %7s %5.1f "
			   "%7.0f %6.0f %7.0f\n",
			r->core, r->tid, state_name(r->state), age, r->polls_per_s, dep,
			(double)r->steals_in * ps, (double)r->steals_out * ps, (double)r->parks * ps,
			(double)r->noop_unparks * ps, p50, p99, u99, r->cpu_pct,
			(double)r->invol_cs * ps, (double)r->migrations * ps,
			(double)r->steal_waits * ps);
	}
	fflush(f);
}

static void json_row(FILE *f, const struct worker_row *r, bool worker)
{
	fprintf(f, "{");
	if (worker) {
		fprintf(f, "\"rt\":\"0x%" PRIx64 "\",\"slot\":%u,", r->rt, r->slot);
		fprintf(f, "\"core\":%u,\"state\":\"%s\",\"age_s\":%.3f,\"stale\":%s,"
			   "\"depth_age_s\":%.3f,\"depth_stale\":%s,"
			   "\"running_pct\":%.1f,\"searching_pct\":%.1f,\"parked_pct\":%.1f,",
			r->core, state_name(r->state), r->age_s, r->stale ? "true" : "false",
			r->depth_age_s, r->depth_stale ? "true" : "false",
			100 * r->state_frac[WEFT_ST_RUNNING],
			100 * r->state_frac[WEFT_ST_SEARCHING], 100 * r->state_frac[WEFT_ST_PARKED]);
	}
	fprintf(f,
		"\"tid\":%u,\"polls\":%" PRIu64 ",\"polls_per_s\":%.1f,\"local_depth\":%" PRIu64
		",\"steals_in\":%" PRIu64 ",\"tasks_stolen_in\":%" PRIu64 ",\"steals_out\":%" PRIu64
		",\"tasks_stolen_out\":%" PRIu64 ",\"steal_fails\":%" PRIu64
		",\"steal_waits\":%" PRIu64 ",\"parks\":%" PRIu64
		",\"unparks\":%" PRIu64 ",\"noop_unparks\":%" PRIu64 ",\"overflows\":%" PRIu64
		",\"overflow_spills\":%" PRIu64 ",\"park_p50_ns\":%" PRIu64 ",\"park_p99_ns\":%" PRIu64
		",\"unpark_p99_ns\":%" PRIu64 ",\"cpu_pct\":%.1f,\"vol_cs\":%" PRIu64
		",\"invol_cs\":%" PRIu64 ",\"invol_with_work\":%" PRIu64 ",\"migrations\":%" PRIu64
		",\"futex_waits\":%" PRIu64 ",\"futex_wait_ns\":%" PRIu64 ",\"futex_p99_ns\":%" PRIu64
		",\"total\":{\"polls\":%" PRIu64 ",\"steals_in\":%" PRIu64 ",\"tasks_stolen_in\":%" PRIu64
		",\"steals_out\":%" PRIu64 ",\"tasks_stolen_out\":%" PRIu64 ",\"parks\":%" PRIu64
		",\"unparks\":%" PRIu64 ",\"noop_unparks\":%" PRIu64 ",\"overflows\":%" PRIu64
		",\"steal_waits\":%" PRIu64 "}}",
		r->tid, r->polls, r->polls_per_s, r->local_depth, r->steals_in, r->tasks_in,
		r->steals_out, r->tasks_out, r->steal_fails, r->steal_waits, r->parks, r->unparks,
		r->noop_unparks,
		r->overflows, r->spills, r->park_p50_ns, r->park_p99_ns, r->unpark_p99_ns, r->cpu_pct,
		r->vol_cs, r->invol_cs, r->invol_with_work, r->migrations, r->futex_waits,
		r->futex_wait_ns, r->futex_p99_ns, r->tot_polls, r->tot_steals_in, r->tot_tasks_in,
		r->tot_steals_out, r->tot_tasks_out, r->tot_parks, r->tot_unparks, r->tot_noop,
		r->tot_overflows, r->tot_steal_waits);
}

void interval_print_json(FILE *f, const struct interval *iv, int pid, const char *end)
{
	fprintf(f, "{\"schema\":\"schedtop/1\",\"final\":%s,", end ? "true" : "false");
	if (end)
		fprintf(f, "\"end\":\"%s\",", end);
	fprintf(f,
		"\"pid\":%d,\"ts_ns\":%" PRIu64
		",\"interval_s\":%.3f,\"runtimes\":%u,\"workers\":%u,\"polls_per_s\":%.1f,\"steals_per_s\":%.1f,"
		"\"tasks_stolen_per_s\":%.1f,\"parks_per_s\":%.1f,\"unparks_per_s\":%.1f,"
		"\"inject_depth\":%" PRIu64 ",\"inject_age_s\":%.3f,\"inject_stale\":%s,"
		"\"overhead\":{\"bpf_ns_per_event\":%.1f,"
		"\"bpf_events_per_s\":%.1f,\"schedtop_cpu_pct\":%.2f,\"drops\":%" PRIu64
		",\"futex_probe\":\"%s\"},\"cores_over_limit\":%s,\"lints\":[",
		pid, iv->ts_ns, iv->dt_s, iv->runtimes, iv->workers, iv->polls_per_s,
		iv->steals_per_s, iv->tasks_stolen_per_s, iv->parks_per_s, iv->unparks_per_s,
		iv->inject_depth, iv->inject_age_s, iv->inject_stale ? "true" : "false",
		iv->bpf_ns_per_event, iv->bpf_events_per_s, iv->self_cpu_pct,
		iv->drops, iv->futex_src, iv->cores_over ? "true" : "false");
	bool first = true;
	for (unsigned l = 0; l < LINT_NR; l++) {
		if (!iv->lint[l])
			continue;
		/* jw_print_str: a detail that is not UTF-8 (one cut inside a
		 * character) still makes valid JSON (U+FFFD) */
		fprintf(f, "%s{\"name\":\"%s\",\"detail\":", first ? "" : ",", lint_names[l]);
		jw_print_str(f, iv->lint_detail[l]);
		fputc('}', f);
		first = false;
	}
	fprintf(f, "],\"latency\":[");
	for (unsigned k = 0; k < iv->nlat; k++) {
		const struct rt_lat *l = &iv->lat[k];
		fprintf(f, "%s{\"rt\":\"0x%" PRIx64 "\",\"workers\":%u,\"polls_timed\":%" PRIu64
			   ",\"wakes_timed\":%" PRIu64 ",\"poll_p50_ns\":%" PRIu64
			   ",\"poll_p99_ns\":%" PRIu64 ",\"wake_p50_ns\":%" PRIu64
			   ",\"wake_p99_ns\":%" PRIu64,
			k ? "," : "", l->rt, l->workers, l->polls_timed, l->wakes_timed,
			l->poll_p50_ns, l->poll_p99_ns, l->wake_p50_ns, l->wake_p99_ns);
		if (l->stalls_known)
			fprintf(f, ",\"stalls\":%" PRIu64, l->stalls);
		else
			fprintf(f, ",\"stalls\":null");
		fputs(",\"last_stall\":", f);
		jw_print_str(f, l->last_stall);
		fprintf(f, ",\"ended\":%u}", l->ended);
	}
	fprintf(f, "],\"worker\":[");
	for (unsigned k = 0; k < iv->workers; k++) {
		if (k)
			fputc(',', f);
		json_row(f, &iv->row[iv->order[k]], true);
	}
	fprintf(f, "],\"other_threads\":");
	json_row(f, &iv->other, false);
	fprintf(f, ",\"steal_matrix\":[");
	for (unsigned t = 0; t < iv->workers; t++) { /* rows and columns in worker order */
		fprintf(f, "%s[", t ? "," : "");
		for (unsigned v = 0; v < iv->workers; v++)
			fprintf(f, "%s%" PRIu64, v ? "," : "", iv->matrix[iv->order[t]][iv->order[v]]);
		fputc(']', f);
	}
	fprintf(f, "]}\n");
	fflush(f);
}

void print_hist_text(FILE *f, const char *title, const uint64_t *slots, unsigned n,
		     const char *unit)
{
	uint64_t max = 0;
	int last = -1;
	for (unsigned i = 0; i < n; i++) {
		if (slots[i] > max)
			max = slots[i];
		if (slots[i])
			last = (int)i;
	}
	fprintf(f, "%s\n%24s : %-8s |%-40s|\n", title, unit, "count", "distribution");
	for (int i = 0; i <= last; i++) {
		/* the top bucket is open-ended (hist_pct): no upper bound */
		uint64_t lo = i ? 1ull << i : 0,
			 hi = (unsigned)i + 1 < n ? (1ull << (i + 1)) - 1 : UINT64_MAX;
		int stars = max ? (int)(slots[i] * 40 / max) : 0;
		char bar[41];
		memset(bar, '*', (size_t)stars);
		bar[stars] = '\0';
		fprintf(f, "%10" PRIu64 " -> %-10" PRIu64 " : %-8" PRIu64 " |%-40s|\n", lo, hi, slots[i],
			bar);
	}
}

/* ------------------------------------------------------- snapshot files */

#define CORE_U64_FIELDS(X)                                                               \
	X(steal_ops_in) X(tasks_stolen_in) X(steal_ops_out) X(tasks_stolen_out) X(steal_fails) \
	X(steal_waits) X(parks) X(unparks) X(noop_unparks) X(overflows) X(overflow_spills) X(overflow_tasks)  \
	X(notified) X(notifies_sent) X(park_ns) X(polls) X(polls_done) X(busy_ns) X(rt_id) X(counters_ptr)   \
	X(park_word) X(local_depth) X(inject_depth) X(depth_max) X(state_ts) X(park_ts)  \
	X(notify_ts) X(last_event_ts) X(last_poll_change_ts) X(oncpu_ns) X(vol_switches)       \
	X(invol_switches) X(invol_with_work) X(migrations) X(futex_waits) X(futex_wait_ns)      \
	X(oncpu_since)

#define SNAP_FIELDS(X)                                                                   \
	X(ts_ns) X(pid) X(drops) X(events) X(usdt_events) X(cores_dropped) X(workers_declared)       \
	X(runtimes_created) X(runtimes_shutdown) X(last_rt) X(bpf_run_ns) X(bpf_run_cnt)       \
	X(self_cpu_ns) X(slots_used)

void snap_write(FILE *f, const struct snap *s, unsigned seq)
{
	fprintf(f, "{\"snap\":%u,\"ncores\":%u", seq, s->ncores);
#define W(x) fprintf(f, ",\"" #x "\":%" PRIu64, (uint64_t)s->x);
	SNAP_FIELDS(W)
#undef W
	if (s->futex_src[0])
		fprintf(f, ",\"futex_src\":\"%s\"", s->futex_src);
	/* the bucket count, so a reader tells these histograms from those of
	 * before, whose last of 32 buckets had no upper bound */
	fprintf(f, ",\"hbins\":%u}\n", (unsigned)WEFT_BPF_HIST_SLOTS);
	for (unsigned i = 0; i < WEFT_BPF_SLOTS; i++) {
		const struct weft_bpf_core *c = &s->cores[i];
		/* also a core known only by its runtime (the registry lists
		 * it, no probe yet): left out, the replay took it as new in
		 * the next snapshot and counted all its polls since the
		 * runtime started into that interval */
		if (!core_active(c) && !c->oncpu_ns && !c->rt_id)
			continue;
		fprintf(f, "{\"snap\":%u,\"slot\":%u,\"state\":%u,\"tid\":%u,\"core\":%u", seq, i,
			c->state, c->tid, c->core);
#define W(x) fprintf(f, ",\"" #x "\":%" PRIu64, (uint64_t)c->x);
		CORE_U64_FIELDS(W)
#undef W
		fprintf(f, ",\"state_ns\":\"");
		for (unsigned st = 0; st < WEFT_ST_NR; st++)
			fprintf(f, "%s%llu", st ? " " : "", c->state_ns[st]);
		fputc('"', f);
		for (unsigned h = 0; h < WEFT_H_NR; h++) {
			/* up to the last bucket in use: 64 buckets, mostly 0,
			 * and a reader of the 32 of before reads the first 32 */
			unsigned nk = WEFT_BPF_HIST_SLOTS;
			while (nk > 1 && !s->hists[i][h].slot[nk - 1])
				nk--;
			fprintf(f, ",\"h%u\":\"", h);
			for (unsigned k = 0; k < nk; k++)
				fprintf(f, "%s%llu", k ? " " : "", s->hists[i][h].slot[k]);
			fputc('"', f);
		}
		fprintf(f, "}\n");
	}
	for (unsigned t = 0; t < WEFT_BPF_MAX_CORES; t++)
		for (unsigned v = 0; v < WEFT_BPF_MAX_CORES; v++)
			if (s->matrix[t][v].ops)
				fprintf(f,
					"{\"snap\":%u,\"thief\":%u,\"victim\":%u,\"ops\":%llu,\"tasks\":%llu}\n",
					seq, t, v, s->matrix[t][v].ops, s->matrix[t][v].tasks);
	fprintf(f, "{\"snap\":%u,\"end\":1}\n", seq);
	fflush(f);
}

static void parse_list(const char *str, unsigned long long *out, unsigned n)
{
	char *e;
	for (unsigned i = 0; i < n; i++) {
		out[i] = strtoull(str, &e, 10);
		if (e == str)
			break;
		str = e;
	}
}

/*
 * Every line of a snapshot is one whole object of that snapshot: the header
 * first, then its cores and steal cells, then its end line, each with the
 * header's "snap" number. A line cut short (a copy taken while schedtop
 * wrote, a disk that filled), a header or end line lost, or a line that is
 * not an object made the snapshot malformed; they were read as they came -
 * a cut core line's other counters as 0, the next snapshot's lines into
 * this one, a snapshot without a header at time 0 - and `schedtop report`
 * printed what followed from them (a core's polls 0, then 384k/s) with
 * exit 0 (found by a review).
 */
static bool snap_line_whole(char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	return n >= 2 && line[0] == '{' && line[n - 1] == '}';
}

int snap_read(FILE *f, struct snap *s)
{
	char *line = NULL;
	size_t cap = 0;
	bool any = false;
	uint64_t seq = 0;
	memset(s, 0, sizeof(*s));
	ssize_t got;
	while ((got = getline(&line, &cap, f)) > 0) {
		uint64_t v;
		/* a NUL in the line: the zeros a crash leaves at the end of a
		 * file being appended to were taken for blank lines, the
		 * recording read as whole, exit 0 (found by a review) */
		if (strlen(line) != (size_t)got)
			goto bad;
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue; /* a blank line */
		if (!snap_line_whole(line) || !jf_u64(line, "snap", &v))
			goto bad;
		if (!any) {
			/* the header: neither a core, a steal cell nor an end */
			if (!jf_u64(line, "ts_ns", &seq) || jf_u64(line, "slot", &seq) ||
			    jf_u64(line, "thief", &seq) || jf_u64(line, "end", &seq))
				goto bad;
			seq = v;
		} else if (v != seq) {
			goto bad; /* this snapshot's end line is missing */
		}
		any = true;
		if (jf_u64(line, "end", &v)) {
			free(line);
			if (!s->slots_used) /* recorded before slots: slot = core */
				for (unsigned i = 0; i < WEFT_BPF_MAX_CORES; i++)
					s->cores[i].core = i;
			return 1;
		}
		if (jf_u64(line, "slot", &v)) {
			if (v >= WEFT_BPF_SLOTS)
				goto bad;
			unsigned i = (unsigned)v;
			struct weft_bpf_core *c = &s->cores[i];
			char buf[2048]; /* a list of WEFT_BPF_HIST_SLOTS u64s fits */
			if (jf_u64(line, "state", &v)) c->state = (unsigned)v;
			if (jf_u64(line, "tid", &v)) c->tid = (unsigned)v;
			if (jf_u64(line, "core", &v)) c->core = (unsigned)v;
#define R(x) if (jf_u64(line, #x, &v)) c->x = v;
			CORE_U64_FIELDS(R)
#undef R
			if (jf_str(line, "state_ns", buf, sizeof(buf)))
				parse_list(buf, c->state_ns, WEFT_ST_NR);
			for (unsigned h = 0; h < WEFT_H_NR; h++) {
				char key[8];
				snprintf(key, sizeof(key), "h%u", h);
				if (!jf_str(line, key, buf, sizeof(buf)))
					continue;
				unsigned long long *sl = s->hists[i][h].slot;
				parse_list(buf, sl, WEFT_BPF_HIST_SLOTS);
				/* a file from before "hbins": 32 buckets, the last
				 * one every value from 2^31 ns up - open, as our top
				 * bucket is (read as 2^32, a 7 s park was "4.3 s"
				 * again: found by a review) */
				if (!s->hbins && sl[31]) {
					sl[WEFT_BPF_HIST_SLOTS - 1] += sl[31];
					sl[31] = 0;
				}
			}
			continue;
		}
		if (jf_u64(line, "thief", &v)) {
			uint64_t vi, ops = 0, tasks = 0;
			if (v >= WEFT_BPF_MAX_CORES || !jf_u64(line, "victim", &vi) ||
			    vi >= WEFT_BPF_MAX_CORES)
				goto bad;
			jf_u64(line, "ops", &ops);
			jf_u64(line, "tasks", &tasks);
			s->matrix[v][vi].ops = ops;
			s->matrix[v][vi].tasks = tasks;
			continue;
		}
		if (jf_u64(line, "ncores", &v))
			s->ncores = (unsigned)v;
		if (jf_u64(line, "hbins", &v))
			s->hbins = (unsigned)v;
		jf_str(line, "futex_src", s->futex_src, sizeof(s->futex_src));
#define R(x) if (jf_u64(line, #x, &v)) s->x = v;
		SNAP_FIELDS(R)
#undef R
	}
	free(line);
	return any ? -1 : 0; /* a snapshot without its end line is malformed */
bad:
	free(line);
	return -1;
}

/* ------------------------------------------------------------ flat JSON */

static const char *jf_find(const char *line, const char *key)
{
	char pat[80];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

bool jf_num(const char *line, const char *key, double *out)
{
	const char *p = jf_find(line, key);
	char *e;
	if (!p)
		return false;
	double v = strtod(p, &e);
	if (e == p)
		return false;
	*out = v;
	return true;
}

bool jf_u64(const char *line, const char *key, uint64_t *out)
{
	const char *p = jf_find(line, key);
	char *e;
	if (!p)
		return false;
	errno = 0;
	if (*p == '-') {
		long long v = strtoll(p, &e, 10);
		if (e == p)
			return false;
		*out = (uint64_t)v;
		return true;
	}
	uint64_t v = strtoull(p, &e, 0);
	if (e == p || errno)
		return false;
	*out = v;
	return true;
}

bool jf_str(const char *line, const char *key, char *out, size_t n)
{
	const char *p = jf_find(line, key);
	if (!p || *p != '"' || n == 0)
		return false;
	p++;
	size_t i = 0;
	while (*p && *p != '"' && i + 1 < n)
		out[i++] = *p++;
	out[i] = '\0';
	return *p == '"';
}
