/*
 * test_schedtop_logic.c - schedtop's aggregation, lint and trace code fed
 * with recorded fixtures (tests/bpf/fixtures), no BPF and no privileges.
 * The same functions run on live data in schedtop (tools/schedtop/model.c,
 * trace.c).
 *
 *   test_schedtop_logic FIXTURE_DIR LIBWEFT
 *
 * Fixtures: skewed.snap.jsonl (recorded with `schedtop --record` against
 * examples/skewed), *.snap.jsonl made by make_lint_fixtures.py (one lint
 * each), steal-trace.jsonl (recorded with `schedtop trace`).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diff.h"
#include "elfnote.h"
#include "jwalk.h"
#include "model.h"
#include "prom.h"
#include "trace.h"

static int failures;
#define CHECK(c, ...)                                                     \
	do {                                                              \
		if (!(c)) {                                               \
			failures++;                                       \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c); \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
		}                                                         \
	} while (0)

static const char *dir;

static FILE *fx(const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	if (!f) {
		perror(p);
		exit(1);
	}
	return f;
}

/* Run every interval of a snapshot file; lints[i] = bitmask of interval i. */
static int run_snaps(const char *name, unsigned *lints, int max, struct interval *last)
{
	FILE *f = fx(name);
	struct snap *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	int n = 0, k = 0, r;
	while ((r = snap_read(f, b)) == 1) {
		if (n++ > 0 && k < max) {
			interval_compute(iv, a, b, &ls);
			lints[k] = 0;
			for (int l = 0; l < LINT_NR; l++)
				if (iv->lint[l])
					lints[k] |= 1u << l;
			if (last)
				*last = *iv;
			k++;
		}
		struct snap *t = a; a = b; b = t;
	}
	CHECK(r == 0, "%s: snapshot file malformed", name);
	fclose(f);
	free(a);
	free(b);
	free(iv);
	return k;
}

static void test_hist_pct(void)
{
	uint64_t s[WEFT_BPF_HIST_SLOTS] = { 0 };
	CHECK(hist_pct(s, WEFT_BPF_HIST_SLOTS, 50) == 0, "empty");
	s[3] = 98; s[10] = 2;       /* 98 in [8,16), 2 in [1024,2048) */
	CHECK(hist_pct(s, WEFT_BPF_HIST_SLOTS, 50) == 16, "p50 %llu",
	      (unsigned long long)hist_pct(s, WEFT_BPF_HIST_SLOTS, 50));
	CHECK(hist_pct(s, WEFT_BPF_HIST_SLOTS, 98) == 16, "p98");
	CHECK(hist_pct(s, WEFT_BPF_HIST_SLOTS, 99) == 2048, "p99");

	/* A 7 s park (7e9 ns: log2 bucket 32) has a bucket of its own below
	 * the top one, whose bound (2^33 ns, 8.6 s) is true. With 32 buckets
	 * it was counted in the top one and read as 2^32 ns, 4.3 s. */
	CHECK(WEFT_BPF_HIST_SLOTS == 64, "BPF histograms of %d buckets", WEFT_BPF_HIST_SLOTS);
	uint64_t w[64] = { 0 };
	w[32] = 1;
	CHECK(hist_pct(w, 64, 50) == 1ull << 33, "7 s park p50 %llu",
	      (unsigned long long)hist_pct(w, 64, 50));
	CHECK(hist_pct(w, 64, 50) >= 7000000000ull, "a bound below the sample");
	/* The top bucket counts everything from 2^(n-1) up (the runtime's 32
	 * latency buckets cap there): no upper bound, not 2^n */
	uint64_t t[32] = { 0 };
	t[31] = 1;
	CHECK(hist_pct(t, 32, 50) == UINT64_MAX, "open top bucket of 32: %llu",
	      (unsigned long long)hist_pct(t, 32, 50));
	t[0] = 3;
	CHECK(hist_pct(t, 32, 50) == 2, "below the top bucket");
	CHECK(hist_pct(t, 32, 99) == UINT64_MAX, "p99 in the top bucket");
	w[32] = 0;
	w[63] = 1; /* 2^63 ns and up: no shift past 63 bits */
	CHECK(hist_pct(w, 64, 99) == UINT64_MAX, "open top bucket of 64");

	/* text says so: at least the top bucket's lower bound (2^31 ns) */
	struct interval *iv = calloc(1, sizeof(*iv));
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	iv->nlat = 1;
	iv->lat[0].poll_p50_ns = 1024;
	iv->lat[0].poll_p99_ns = hist_pct(t, 32, 99);
	iv->lat[0].polls_timed = 4;
	interval_print_text(f, iv, 1);
	fclose(f);
	CHECK(strstr(out, "poll p50 1024ns p99 >=2.1s,") != NULL, "text: %s", out);
	free(out);
	free(iv);
}

/* A recording from before the 64-bucket histograms: 32 values per
 * histogram and no "hbins"; its 32nd bucket had no upper bound, and read
 * as a finite one (2^32) the new reader showed a 7 s park as 4.3 s again
 * (a review). The same 32 values with "hbins":64 are a bucket of
 * [2^31, 2^32). */
static void test_old_recording_top_bucket(void)
{
	char old[1024], now[1024];
	char zeros[256] = "";
	for (int i = 0; i < 31; i++)
		strcat(zeros, "0 ");
	const char *hdr = "{\"snap\":0,\"ncores\":1,\"ts_ns\":1%s}\n"
			  "{\"snap\":0,\"slot\":0,\"state\":0,\"tid\":7,\"core\":0,"
			  "\"h0\":\"%s1\"}\n{\"snap\":0,\"end\":1}\n";
	snprintf(old, sizeof(old), hdr, "", zeros);
	snprintf(now, sizeof(now), hdr, ",\"hbins\":64", zeros);
	struct snap *s = calloc(1, sizeof(*s));
	FILE *m = fmemopen(old, strlen(old), "r");
	CHECK(snap_read(m, s) == 1, "old file read");
	fclose(m);
	CHECK(hist_pct((const uint64_t *)s->hists[0][WEFT_H_PARK_NS].slot, WEFT_BPF_HIST_SLOTS, 50) == UINT64_MAX,
	      "old file's top bucket: %llu",
	      (unsigned long long)hist_pct((const uint64_t *)s->hists[0][WEFT_H_PARK_NS].slot,
					   WEFT_BPF_HIST_SLOTS, 50));
	m = fmemopen(now, strlen(now), "r");
	CHECK(snap_read(m, s) == 1, "new file read");
	fclose(m);
	CHECK(s->hbins == 64, "hbins %u", s->hbins);
	CHECK(hist_pct((const uint64_t *)s->hists[0][WEFT_H_PARK_NS].slot, WEFT_BPF_HIST_SLOTS, 50) == 1ull << 32,
	      "new file's bucket 31: %llu",
	      (unsigned long long)hist_pct((const uint64_t *)s->hists[0][WEFT_H_PARK_NS].slot,
					   WEFT_BPF_HIST_SLOTS, 50));
	/* and the writer says so */
	char *buf = NULL;
	size_t len = 0;
	m = open_memstream(&buf, &len);
	snap_write(m, s, 0);
	fclose(m);
	CHECK(strstr(buf, "\"hbins\":64") != NULL, "written: %.200s", buf);
	free(buf);
	free(s);
}

/* Two threads adding the same (runtime, core) at once leave a slot index
 * unused (CI once showed a two-worker run as three, the second empty, and
 * schedtop_ops_wrappers compared the wrong worker). */
static void test_drop_holes(void)
{
	struct snap *s = calloc(1, sizeof(*s));
	s->slots_used = 5;
	unsigned cores[5] = { 0, WEFT_BPF_SLOT_HOLE, 1, WEFT_BPF_SLOT_HOLE, 2 };
	for (unsigned i = 0; i < 5; i++) {
		s->cores[i].core = cores[i];
		s->cores[i].rt_id = cores[i] == WEFT_BPF_SLOT_HOLE ? 0 : 0x1000;
		s->cores[i].parks = 100 + i;
		s->hists[i][WEFT_H_PARK_NS].slot[3] = 10 + i;
		s->fresh_depth[i] = 20 + i;
		s->blocks[i].cur.start_ts = 30 + i;
	}
	s->matrix[0][2].ops = 5;   /* core 1 robbed by core 0 */
	s->matrix[2][0].ops = 7;   /* core 0 robbed by core 1 */
	s->matrix[4][2].tasks = 9; /* core 1 robbed by core 2 */
	CHECK(snap_drop_holes(s) == 2, "two holes");
	CHECK(s->slots_used == 3 && snap_ncores(s) == 3, "slots %llu, ncores %u",
	      (unsigned long long)s->slots_used, snap_ncores(s));
	for (unsigned j = 0; j < 3; j++) {
		unsigned from = j == 0 ? 0 : j == 1 ? 2 : 4;
		CHECK(s->cores[j].core == j && s->cores[j].parks == 100 + from, "slot %u: core %u parks %llu",
		      j, s->cores[j].core, s->cores[j].parks);
		CHECK(s->hists[j][WEFT_H_PARK_NS].slot[3] == 10 + from, "slot %u hist", j);
		CHECK(s->fresh_depth[j] == 20 + from && s->blocks[j].cur.start_ts == 30 + from,
		      "slot %u depth/blocks", j);
	}
	CHECK(s->matrix[0][1].ops == 5 && s->matrix[1][0].ops == 7 && s->matrix[2][1].tasks == 9,
	      "matrix %llu %llu %llu", s->matrix[0][1].ops, s->matrix[1][0].ops,
	      s->matrix[2][1].tasks);
	CHECK(s->matrix[0][2].ops == 0 && s->matrix[2][0].ops == 0 && s->matrix[4][2].tasks == 0,
	      "old matrix cells cleared");
	CHECK(s->cores[3].parks == 0 && s->cores[4].parks == 0, "tail cleared");
	CHECK(snap_drop_holes(s) == 0 && s->slots_used == 3, "no holes left");

	/* A slot given out while the snapshot was copied: its index counted
	 * in slots_used, its runtime and core not stored yet (bpf/weft.bpf.c
	 * slot_of, mon_add_core). It showed as a worker 0 of runtime 0x0
	 * beside the real ones ("runtimes 2"); now it and the slots after it
	 * wait for the next snapshot, whose indexes are the same. */
	memset(s, 0, sizeof(*s));
	s->slots_used = 5;
	unsigned fill[5] = { 0, WEFT_BPF_SLOT_HOLE, 1, 2, 3 };
	for (unsigned i = 0; i < 5; i++) {
		s->cores[i].core = fill[i];
		s->cores[i].rt_id = fill[i] == WEFT_BPF_SLOT_HOLE ? 0 : 0x1000;
		s->cores[i].parks = 100 + i;
	}
	s->cores[3].rt_id = 0; /* raw slot 3 (core 2): index taken, not filled yet */
	s->cores[3].core = 0;
	CHECK(snap_drop_holes(s) == 1, "one hole");
	CHECK(s->slots_used == 2 && snap_ncores(s) == 2, "in flight: slots %llu, ncores %u",
	      (unsigned long long)s->slots_used, snap_ncores(s));
	CHECK(s->cores[1].core == 1 && s->cores[1].parks == 102, "slot 1: core %u parks %llu",
	      s->cores[1].core, s->cores[1].parks);
	/* the slot after it keeps its index (the next snapshot's, once the
	 * slot in flight is filled) */
	CHECK(s->cores[3].core == 3 && s->cores[3].parks == 104, "slot 3: core %u parks %llu",
	      s->cores[3].core, s->cores[3].parks);
	struct interval *iv = calloc(1, sizeof(*iv));
	struct snap *p = calloc(1, sizeof(*p));
	s->ts_ns = 2000000000ull;
	interval_compute(iv, p, s, NULL);
	CHECK(iv->workers == 2 && iv->runtimes == 1, "in flight: %u workers, %u runtimes",
	      iv->workers, iv->runtimes);
	for (unsigned k = 0; k < iv->workers; k++)
		CHECK(iv->row[k].rt == 0x1000, "row %u of runtime 0x%llx", k,
		      (unsigned long long)iv->row[k].rt);
	/* filled: every slot shows, at the index it had */
	s->cores[2].rt_id = 0x1000;
	s->cores[2].core = 2;
	s->slots_used = 4;
	CHECK(snap_drop_holes(s) == 0 && s->slots_used == 4 && s->cores[3].core == 3,
	      "filled: slots %llu", (unsigned long long)s->slots_used);
	free(p);
	free(iv);
	free(s);
}

/* A busy worker's probe can fire while the snapshot is being copied: its
 * timestamp is then later than the snapshot's own. That is a current
 * reading (age 0), not an unknown one (schedtop_lints failed in CI on a
 * 199-deep queue shown stale at age -1, the imbalance lint's count reset). */
static void test_event_after_snapshot(void)
{
	struct snap *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	a->ts_ns = 1000000000ull;
	b->ts_ns = 1250000000ull;
	for (struct snap *s = a; s; s = s == a ? b : NULL) {
		s->slots_used = 1;
		s->cores[0].rt_id = 0x1000;
		s->cores[0].state = WEFT_ST_RUNNING;
		s->cores[0].state_ts = s->ts_ns - 100000000ull;
		s->cores[0].last_event_ts = s->ts_ns + 3000; /* during the copy */
		s->cores[0].local_depth = 199;
		s->ncores = snap_ncores(s);
	}
	interval_compute(iv, a, b, &ls);
	const struct worker_row *r = &iv->row[0];
	CHECK(iv->workers == 1, "%u workers", iv->workers);
	CHECK(r->age_s == 0 && !r->stale, "age %.6f stale %d", r->age_s, r->stale);
	CHECK(!r->depth_stale && r->local_depth == 199, "depth %llu stale %d",
	      (unsigned long long)r->local_depth, r->depth_stale);
	CHECK(iv->inject_age_s == 0 && !iv->inject_stale, "inject age %.6f stale %d",
	      iv->inject_age_s, iv->inject_stale);
	free(a);
	free(b);
	free(iv);
}

/* Polls from the cores' own counters (raw, since the runtime started):
 * a runtime destroyed and created again at the same address restarts them
 * from 0, which read as 0 polls for the interval and total.polls going
 * backwards; a core first seen in an interval (`-- CMD`: the runtime
 * started after the first snapshot) read as 0 polls while its parks
 * counted. */
static void set_core(struct snap *s, uint64_t ts, uint64_t ptr, uint64_t polls)
{
	s->ts_ns = ts;
	s->slots_used = 1;
	s->cores[0].rt_id = 0x1000;
	s->cores[0].state = WEFT_ST_RUNNING;
	s->cores[0].counters_ptr = ptr;
	s->cores[0].polls = polls;
	s->ncores = snap_ncores(s);
}

static void test_polls_restart(void)
{
	struct snap *s[4];
	for (int i = 0; i < 4; i++)
		s[i] = calloc(1, sizeof(*s[i]));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	const uint64_t sec = 1000000000ull;
	set_core(s[0], 1 * sec, 0x2000, 5000);
	set_core(s[1], 2 * sec, 0x2000, 300);  /* re-created, same counters */
	set_core(s[2], 3 * sec, 0x2000, 900);
	set_core(s[3], 4 * sec, 0x9000, 7000); /* re-created, counters elsewhere */
	uint64_t want_polls[3] = { 300, 600, 7000 }, want_tot[3] = { 5300, 5900, 12900 };
	for (int k = 0; k < 3; k++) {
		interval_compute(iv, s[k], s[k + 1], &ls);
		CHECK(iv->row[0].polls == want_polls[k], "interval %d: polls %llu, want %llu", k,
		      (unsigned long long)iv->row[0].polls, (unsigned long long)want_polls[k]);
		CHECK(iv->row[0].tot_polls == want_tot[k], "interval %d: total.polls %llu, want %llu",
		      k, (unsigned long long)iv->row[0].tot_polls, (unsigned long long)want_tot[k]);
		CHECK(iv->polls_per_s == (double)want_polls[k], "interval %d: polls/s %.0f", k,
		      iv->polls_per_s);
	}
	/* first seen: the first snapshot has no slot at all (-- CMD) */
	struct lint_state ls2 = { 0 };
	memset(s[0], 0, sizeof(*s[0]));
	s[0]->ts_ns = 1 * sec;
	set_core(s[1], 2 * sec, 0x2000, 4000);
	interval_compute(iv, s[0], s[1], &ls2);
	CHECK(iv->row[0].polls == 4000 && iv->polls_per_s == 4000.0,
	      "core first seen: polls %llu, polls/s %.0f, want 4000",
	      (unsigned long long)iv->row[0].polls, iv->polls_per_s);
	/* attached to a running runtime: the slot known, its counters not yet
	 * (their value is the polls since the runtime started): no delta */
	set_core(s[0], 1 * sec, 0, 0);
	set_core(s[1], 2 * sec, 0x2000, 123456789);
	interval_compute(iv, s[0], s[1], &ls2);
	CHECK(iv->row[0].polls == 0, "attach: polls %llu, want 0 (no baseline)",
	      (unsigned long long)iv->row[0].polls);
	for (int i = 0; i < 4; i++)
		free(s[i]);
	free(iv);
}

/* Two snapshots (s) computed live, and through a recording's text and
 * back (r), as `schedtop record` writes them and `schedtop report` reads
 * them: the replay must give the live interval. */
struct replay_case {
	struct snap *s[2], *r[2];
	struct interval *live, *replay;
};

static struct replay_case replay_case_new(void)
{
	struct replay_case c;
	for (int i = 0; i < 2; i++) {
		c.s[i] = calloc(1, sizeof(*c.s[i]));
		c.r[i] = calloc(1, sizeof(*c.r[i]));
	}
	c.live = calloc(1, sizeof(*c.live));
	c.replay = calloc(1, sizeof(*c.replay));
	return c;
}

static void replay_case_run(struct replay_case *c)
{
	struct lint_state l1 = { 0 }, l2 = { 0 };
	interval_compute(c->live, c->s[0], c->s[1], &l1);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	snap_write(m, c->s[0], 0);
	snap_write(m, c->s[1], 1);
	fclose(m);
	m = fmemopen(buf, len, "r");
	CHECK(snap_read(m, c->r[0]) == 1 && snap_read(m, c->r[1]) == 1, "read back");
	fclose(m);
	free(buf);
	interval_compute(c->replay, c->r[0], c->r[1], &l2);
}

static void replay_case_free(struct replay_case *c)
{
	for (int i = 0; i < 2; i++) {
		free(c->s[i]);
		free(c->r[i]);
	}
	free(c->live);
	free(c->replay);
}

/* `schedtop report` replays what --batch --record wrote: the same
 * intervals as the live run. A core the registry lists but that fired no
 * probe yet (attached to a running runtime: rt_id known, no thread, state
 * unknown) was left out of the recording, so the replay took the core as
 * new in the next snapshot and counted every poll since the runtime
 * started into the first interval (weft_load: polls/s 243883 replayed,
 * 59937 live). */
static void test_record_replay_attach(void)
{
	const uint64_t sec = 1000000000ull;
	struct replay_case rc = replay_case_new();
	struct snap **s = rc.s;
	/* the registry's core, not heard of yet */
	s[0]->ts_ns = 1 * sec;
	s[0]->pid = 42;
	s[0]->slots_used = 1;
	s[0]->cores[0].rt_id = 0x1000;
	s[0]->ncores = snap_ncores(s[0]);
	set_core(s[1], 2 * sec, 0x2000, 123456789);
	s[1]->pid = 42;
	s[1]->cores[0].tid = 7;
	replay_case_run(&rc);
	const struct interval *live = rc.live, *replay = rc.replay;
	CHECK(live->row[0].polls == 0, "live: polls %llu, want 0 (no baseline)",
	      (unsigned long long)live->row[0].polls);
	CHECK(replay->workers == live->workers && replay->row[0].polls == live->row[0].polls &&
	      replay->polls_per_s == live->polls_per_s,
	      "replayed: %u workers, polls %llu (%.0f/s); live: %u workers, polls %llu (%.0f/s)",
	      replay->workers, (unsigned long long)replay->row[0].polls, replay->polls_per_s,
	      live->workers, (unsigned long long)live->row[0].polls, live->polls_per_s);
	replay_case_free(&rc);
}

/* A worker on CPU through the interval, never switched out (a spinner
 * alone on its CPU): live, its CPU time counts the span in progress
 * (oncpu_since), 100 %. The recording left oncpu_since out, so `schedtop
 * report` of the same snapshots showed 0 % (a review, 2026-12-07). */
static void test_record_replay_oncpu(void)
{
	const uint64_t sec = 1000000000ull;
	struct replay_case rc = replay_case_new();
	struct snap **s = rc.s, **r = rc.r;
	for (int i = 0; i < 2; i++) {
		set_core(s[i], (uint64_t)(i + 2) * sec, 0x2000, 1000);
		s[i]->pid = 42;
		s[i]->cores[0].tid = 7;
		s[i]->cores[0].oncpu_ns = sec / 2; /* finished spans, before */
		s[i]->cores[0].oncpu_since = sec;  /* on CPU since 1 s */
	}
	replay_case_run(&rc);
	const struct interval *live = rc.live, *replay = rc.replay;
	CHECK(live->row[0].cpu_pct > 99.9 && live->row[0].cpu_pct < 100.1, "live: cpu %.1f%%, want 100",
	      live->row[0].cpu_pct);
	CHECK(r[1]->cores[0].oncpu_since == sec && replay->row[0].cpu_pct == live->row[0].cpu_pct,
	      "replayed: cpu %.1f%% (oncpu_since %llu); live: %.1f%%", replay->row[0].cpu_pct,
	      (unsigned long long)r[1]->cores[0].oncpu_since, live->row[0].cpu_pct);
	replay_case_free(&rc);
}

/* Attached by pid to a short run that ends within the first interval
 * (weft_load 2 40): every worker stops (worker_stop) before the interval
 * ends, so no poll count was read at both ends - polls/s is unknown, 0 -
 * yet steal-storm fired, "2484 steal attempts/s vs 0 polls/s": stopped
 * workers were left out of the check that every poll counter is known,
 * and with all of them stopped the check passed. A worker stopped only at
 * the end of the interval still ran in it. */
static void test_storm_first_interval_exit(void)
{
	const uint64_t sec = 1000000000ull;
	struct snap *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	a->ts_ns = 1 * sec;
	b->ts_ns = a->ts_ns + sec / 4;
	for (struct snap *s = a; s; s = s == a ? b : NULL) {
		s->slots_used = 2;
		for (unsigned i = 0; i < 2; i++) {
			s->cores[i].rt_id = 0x1000;
			s->cores[i].core = i;
			s->cores[i].tid = 7 + i;
		}
		s->ncores = snap_ncores(s);
	}
	for (unsigned i = 0; i < 2; i++) {
		a->cores[i].state = WEFT_ST_RUNNING; /* its counters not read yet */
		b->cores[i].state = WEFT_ST_STOPPED;
		b->cores[i].counters_ptr = 0x2000 + 0x1000 * i;
		b->cores[i].polls = 50000;
		b->cores[i].steal_fails = 300;
	}
	interval_compute(iv, a, b, &ls);
	CHECK(!iv->lint[LINT_STEAL_STORM], "steal-storm with polls unknown: %s",
	      iv->lint_detail[LINT_STEAL_STORM]);
	/* a core retired before the interval (stopped at both ends) does not
	 * make the polls unknown */
	struct lint_state ls2 = { 0 };
	for (unsigned i = 0; i < 2; i++) {
		a->cores[i].counters_ptr = b->cores[i].counters_ptr;
		a->cores[i].polls = 50000;
		b->cores[i].state = WEFT_ST_RUNNING;
	}
	a->cores[1].state = b->cores[1].state = WEFT_ST_STOPPED;
	a->cores[1].counters_ptr = b->cores[1].counters_ptr = 0;
	b->cores[0].polls = 50010;
	b->cores[0].steal_fails = 600;
	interval_compute(iv, a, b, &ls2);
	CHECK(iv->lint[LINT_STEAL_STORM], "no steal-storm beside a retired core: 2400 attempts/s "
	      "vs 40 polls/s");
	free(a);
	free(b);
	free(iv);
}

/* A recording damaged in the middle - a line cut short, a header or end
 * line lost, a line that is not an object - is malformed where it is
 * damaged: snap_read says so (-1) for that snapshot, after reading the
 * whole ones before it. Read as they came, a cut core line gave its
 * other counters as 0 and `schedtop report` printed a core's polls as 0
 * and then 384k/s, exit 0. */
static int read_all(const char *text, int *whole)
{
	struct snap *s = calloc(1, sizeof(*s));
	FILE *m = fmemopen((void *)text, strlen(text), "r");
	int r;
	*whole = 0;
	while ((r = snap_read(m, s)) == 1)
		(*whole)++;
	fclose(m);
	free(s);
	return r;
}

static void test_record_damaged(void)
{
	const uint64_t sec = 1000000000ull;
	struct snap *s = calloc(1, sizeof(*s));
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	for (unsigned k = 0; k < 3; k++) {
		set_core(s, (k + 1) * sec, 0x2000, 1000 * (k + 1));
		s->cores[0].tid = 7;
		s->matrix[0][0].ops = k + 1;
		snap_write(m, s, k);
	}
	fclose(m);
	int whole, r = read_all(buf, &whole);
	CHECK(r == 0 && whole == 3, "intact: r %d, %d snapshots", r, whole);
	/* the lines of snapshot 1: header, core, steal cell, end */
	char *l[4], *p = buf;
	for (int i = 0; i < 4 * 1; i++)
		p = strchr(p, '\n') + 1;
	for (int i = 0; i < 4; i++) {
		l[i] = p;
		p = strchr(p, '\n') + 1;
	}
	char *cut = malloc(len + 64);
	struct {
		const char *what;
		size_t at, skip;   /* drop [at, at+skip) */
		const char *put;   /* then insert this */
	} d[] = {
		{ "core line cut short", (size_t)(l[1] - buf) + 120, (size_t)(l[2] - l[1]) - 121, "" },
		{ "steal cell cut short", (size_t)(l[2] - buf) + 30, (size_t)(l[3] - l[2]) - 31, "" },
		{ "header lost", (size_t)(l[0] - buf), (size_t)(l[1] - l[0]), "" },
		{ "end line lost", (size_t)(l[3] - buf), (size_t)(p - l[3]), "" },
		{ "a line that is not an object", (size_t)(l[2] - buf), 0, "garbage\n" },
	};
	for (size_t k = 0; k < sizeof(d) / sizeof(d[0]); k++) {
		memcpy(cut, buf, d[k].at);
		strcpy(cut + d[k].at, d[k].put);
		strcat(cut, buf + d[k].at + d[k].skip);
		r = read_all(cut, &whole);
		CHECK(r == -1 && whole == 1, "%s: r %d after %d whole snapshots, want -1 after 1",
		      d[k].what, r, whole);
	}
	/* blank lines are no damage */
	memcpy(cut, buf, (size_t)(l[2] - buf));
	strcpy(cut + (l[2] - buf), "\n");
	strcat(cut, l[2]);
	r = read_all(cut, &whole);
	CHECK(r == 0 && whole == 3, "a blank line: r %d, %d snapshots", r, whole);
	/* but zeros are: what a crash leaves at the end of a file being
	 * appended to (its size written, its last blocks not). They read as
	 * blank lines, the recording as whole. */
	char *z = calloc(1, len + 4096);
	memcpy(z, buf, len);
	struct snap *t = calloc(1, sizeof(*t));
	FILE *zm = fmemopen(z, len + 4096, "r");
	whole = 0;
	while ((r = snap_read(zm, t)) == 1)
		whole++;
	fclose(zm);
	CHECK(r == -1 && whole == 3, "a tail of zeros: r %d after %d whole snapshots, want -1 "
	      "after 3", r, whole);
	free(t);
	free(z);
	free(cut);
	free(buf);
	free(s);
}

static void test_recorded(void)
{
	unsigned lints[16];
	static struct interval iv;
	int k = run_snaps("skewed.snap.jsonl", lints, 16, &iv);
	CHECK(k == 3, "3 intervals, got %d", k);
	CHECK(iv.workers == 2, "workers %u", iv.workers);
	uint64_t steals = 0, msum = 0, out = 0;
	for (unsigned i = 0; i < iv.workers; i++) {
		steals += iv.row[i].steals_in;
		out += iv.row[i].steals_out;
		for (unsigned v = 0; v < iv.workers; v++)
			msum += iv.matrix[i][v];
		CHECK(iv.row[i].parks > 0, "worker %u parks", i);
		CHECK(iv.row[i].polls_per_s > 0, "worker %u polls", i);
	}
	CHECK(steals > 0, "steals in the recorded interval");
	CHECK(steals == msum, "matrix %llu != steals %llu", (unsigned long long)msum,
	      (unsigned long long)steals);
	CHECK(steals == out, "steals in %llu != out %llu", (unsigned long long)steals,
	      (unsigned long long)out);
	CHECK(iv.dt_s > 0.4 && iv.dt_s < 0.6, "interval %.3f", iv.dt_s);
	/* JSON output of the same interval is one line */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	interval_print_json(m, &iv, 42, SCHEDTOP_END_EXITED);
	fclose(m);
	CHECK(strchr(buf, '\n') == buf + len - 1, "one line");
	CHECK(strstr(buf, "\"final\":true,\"end\":\"target-exited\"") && strstr(buf, "\"pid\":42"),
	      "json fields");
	free(buf);
	/* a lint detail cut inside a UTF-8 character (a symbol's é at the
	 * buffer's end) still makes UTF-8 JSON: it was printed raw */
	iv.lint[LINT_LONG_POLL] = true;
	snprintf(iv.lint_detail[LINT_LONG_POLL], sizeof(iv.lint_detail[0]), "%s",
		 "W0 task 1 in one poll: spin_\xc3\xa9\xc3");
	m = open_memstream(&buf, &len);
	interval_print_json(m, &iv, 42, SCHEDTOP_END_EXITED);
	fclose(m);
	size_t bad = 0;
	for (size_t i = 0; i < len;) {
		size_t cl = jw_utf8_len(buf + i);
		bad += !cl;
		i += cl ? cl : 1;
	}
	CHECK(!bad, "JSON with a cut lint detail: %zu bytes not UTF-8", bad);
	CHECK(strstr(buf, "spin_\xc3\xa9\\ufffd\"}"), "the cut byte as U+FFFD: %s",
	      strstr(buf, "\"lints\""));
	iv.lint[LINT_LONG_POLL] = false;
	free(buf);
}

static void test_lint(const char *file, int want_intervals, unsigned want_mask_last,
		      unsigned want_mask_first)
{
	unsigned lints[16] = { 0 };
	int k = run_snaps(file, lints, 16, NULL);
	CHECK(k == want_intervals, "%s: %d intervals", file, k);
	if (k < 1)
		return;
	CHECK(lints[k - 1] == want_mask_last, "%s: last interval lints 0x%x, want 0x%x", file,
	      lints[k - 1], want_mask_last);
	CHECK(lints[0] == want_mask_first, "%s: first interval lints 0x%x, want 0x%x", file,
	      lints[0], want_mask_first);
}

/* The fixture's own counts, from its text (not the reader's answers
 * written back): its non-empty lines, those of one event type. */
static size_t fx_count(const char *name, const char *needle)
{
	FILE *f = fx(name);
	char line[4096];
	size_t n = 0;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n' && (!needle || strstr(line, needle)))
			n++;
	fclose(f);
	return n;
}

/* `schedtop convert` of an events file damaged in the middle: a line cut
 * short (its steal read as victim 0, 0 tasks) or a line that is not an
 * object (skipped) was taken silently, exit 0; it is a bad line, named. */
static void test_trace_damaged(void)
{
	static const char good[] =
		"{\"ts_ns\":100,\"type\":\"park\",\"core\":0,\"tid\":7,\"cpu\":0,\"rt\":1,"
		"\"kind\":0,\"local_depth\":0,\"inject_depth\":0}\n"
		"\n"
		"{\"ts_ns\":200,\"type\":\"steal\",\"core\":1,\"tid\":8,\"cpu\":1,\"rt\":1,"
		"\"victim\":0,\"n\":118,\"victim_depth\":236}\n";
	const char *bad[] = {
		"{\"ts_ns\":100,\"type\":\"park\",\"core\":0,\"tid\":7}\n"
		"{\"ts_ns\":200,\"type\":\"steal\",\"core\":1,\"tid\":8,\"cpu\":1,\"rt\":1,\"vic\n"
		"{\"ts_ns\":300,\"type\":\"park\",\"core\":1,\"tid\":8}\n",
		"{\"ts_ns\":100,\"type\":\"park\",\"core\":0,\"tid\":7}\n"
		"garbage\n"
		"{\"ts_ns\":300,\"type\":\"park\",\"core\":1,\"tid\":8}\n",
	};
	struct evbuf b = { 0 };
	size_t line = 0;
	FILE *m = fmemopen((void *)good, sizeof(good) - 1, "r");
	CHECK(trace_jsonl_read(m, &b, &line) == 0 && b.n == 2 && b.ev[1].a1 == 118,
	      "intact (a blank line in it): %zu events, bad line %zu", b.n, line);
	fclose(m);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		evbuf_free(&b);
		line = 0;
		m = fmemopen((void *)bad[k], strlen(bad[k]), "r");
		int r = trace_jsonl_read(m, &b, &line);
		fclose(m);
		CHECK(r == -EINVAL && line == 2, "damaged file %zu: r %d, bad line %zu, want line 2",
		      k, r, line);
	}
	/* zeros after the last line (a crash's tail), and a NUL inside a
	 * line: read as a blank line, and as the line up to the NUL */
	static const char zeros[] = "{\"ts_ns\":100,\"type\":\"park\",\"core\":0,\"tid\":7}\n"
				    "\0\0\0\0\0\0\0\0";
	static const char inner[] = "{\"ts_ns\":100,\"type\":\"park\",\"core\":0,\"tid\":7}\n"
				    "{\"ts_ns\":200,\"type\":\"park\",\"core\":1}\0garbage\n";
	const struct { const char *t; size_t n; } nul[] = {
		{ zeros, sizeof(zeros) - 1 }, { inner, sizeof(inner) - 1 },
	};
	for (size_t k = 0; k < 2; k++) {
		evbuf_free(&b);
		line = 0;
		m = fmemopen((void *)nul[k].t, nul[k].n, "r");
		int r = trace_jsonl_read(m, &b, &line);
		fclose(m);
		CHECK(r == -EINVAL && line == 2, "NUL bytes, file %zu: r %d, bad line %zu, want 2", k,
		      r, line);
	}
	evbuf_free(&b);
}

static void test_trace(void)
{
	size_t want_events = fx_count("steal-trace.jsonl", NULL);
	size_t want_steals = fx_count("steal-trace.jsonl", "\"type\":\"steal\"");
	size_t want_parks = fx_count("steal-trace.jsonl", "\"type\":\"park\"");
	CHECK(want_events > 100 && want_steals > 10 && want_parks > 10,
	      "fixture: %zu events, %zu steals, %zu parks", want_events, want_steals, want_parks);
	FILE *f = fx("steal-trace.jsonl");
	struct evbuf b = { 0 };
	size_t bad = 0;
	CHECK(trace_jsonl_read(f, &b, &bad) == 0, "read, bad line %zu", bad);
	fclose(f);
	CHECK(b.n == want_events, "events %zu, the fixture has %zu", b.n, want_events);
	evbuf_sort(&b);
	size_t steals = 0;
	for (size_t i = 0; i < b.n; i++) {
		if (b.ev[i].type == WEFT_EV_STEAL)
			steals++;
		if (i)
			CHECK(b.ev[i].ts >= b.ev[i - 1].ts, "sorted");
	}
	CHECK(steals == want_steals, "steals %zu, the fixture has %zu", steals, want_steals);

	/* round trip: write JSON lines, read back, same events */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	for (size_t i = 0; i < b.n; i++)
		trace_jsonl_write(m, &b.ev[i]);
	fclose(m);
	struct evbuf b2 = { 0 };
	m = fmemopen(buf, len, "r");
	CHECK(trace_jsonl_read(m, &b2, NULL) == 0, "re-read");
	fclose(m);
	CHECK(b2.n == b.n && !memcmp(b2.ev, b.ev, b.n * sizeof(*b.ev)), "round trip differs");
	free(buf);
	evbuf_free(&b2);

	/* Chrome trace: one flow per steal, spans on both worker tracks */
	struct trace_stats st;
	buf = NULL;
	m = open_memstream(&buf, &len);
	trace_chrome_write(m, &b, 7, &st);
	fclose(m);
	CHECK(st.flows == steals, "flows %zu", st.flows);
	CHECK(st.spans > 10, "spans %zu", st.spans);
	CHECK(strstr(buf, "\"ph\":\"s\"") && strstr(buf, "\"bp\":\"e\""), "flow events");
	CHECK(buf[0] == '{' && strstr(buf, "\n]}\n"), "closed JSON");
	free(buf);

	/* completed park sleeps: a park then an unpark of the same core, in
	 * time order (sorted above), counted here, not copied from a run */
	size_t parks = 0;
	for (size_t i = 0; i < b.n; i++) {
		if (b.ev[i].type != WEFT_EV_PARK)
			continue;
		for (size_t j = i + 1; j < b.n; j++) {
			if (b.ev[j].core != b.ev[i].core || b.ev[j].rt_id != b.ev[i].rt_id)
				continue;
			if (b.ev[j].type == WEFT_EV_UNPARK)
				parks++;
			if (b.ev[j].type == WEFT_EV_UNPARK || b.ev[j].type == WEFT_EV_PARK)
				break;
		}
	}
	CHECK(parks > 10 && parks <= want_parks, "completed parks %zu of %zu", parks, want_parks);
	char want_sum[64];
	snprintf(want_sum, sizeof(want_sum), "park time (%zu parks)", parks);
	buf = NULL;
	m = open_memstream(&buf, &len);
	trace_summary(m, &b);
	fclose(m);
	CHECK(strstr(buf, "all") && strstr(buf, want_sum), "summary lacks '%s': %s", want_sum, buf);
	free(buf);
	evbuf_free(&b);

	/* More runtimes than the 16 the tracks had room for (a process that
	 * creates runtimes one after another, or many_rt): every one's
	 * events are drawn and summed. Those of the 17th and later were left
	 * out of the trace and the summary, unsaid (20 runtimes: 16 rows). */
	struct evbuf many = { 0 };
	for (unsigned r = 0; r < 20; r++) {
		struct weft_bpf_event e = { .rt_id = 0x10000 + r * 0x1000, .core = 1 };
		e.ts = 1000 + r * 100;
		e.type = WEFT_EV_WORKER_START;
		e.tid = 100 + r;
		evbuf_push(&many, &e);
		e.ts += 10;
		e.type = WEFT_EV_STEAL;
		e.a0 = 0; /* from core 0 of the same runtime */
		e.a1 = 3;
		evbuf_push(&many, &e);
		e.ts += 10;
		e.type = WEFT_EV_PARK;
		e.a0 = e.a1 = 0;
		evbuf_push(&many, &e);
	}
	buf = NULL;
	m = open_memstream(&buf, &len);
	trace_chrome_write(m, &many, 7, &st);
	fclose(m);
	CHECK(st.flows == 20, "20 runtimes: flows %zu", st.flows);
	CHECK(strstr(buf, "runtime 19 (0x23000) worker 1"), "no track of the 20th runtime");
	free(buf);
	buf = NULL;
	m = open_memstream(&buf, &len);
	trace_summary(m, &many);
	fclose(m);
	unsigned rows = 0;
	for (const char *q = buf; (q = strstr(q, "\n0x")); q++)
		rows++;
	CHECK(rows == 20 && strstr(buf, "0x23000"), "20 runtimes: %u summary rows: %s", rows, buf);
	CHECK(strstr(buf, "all") && strstr(buf, "        20           60"),
	      "20 runtimes: all steals: %s", buf);
	free(buf);
	evbuf_free(&many);

	/* a line that is not an event is reported with its number */
	static char two[] = "{\"ts_ns\":1,\"type\":\"steal\",\"core\":0}\n{\"x\":1}\n";
	m = fmemopen(two, strlen(two), "r");
	struct evbuf b3 = { 0 };
	CHECK(trace_jsonl_read(m, &b3, &bad) != 0 && bad == 2, "bad line %zu", bad);
	fclose(m);
	evbuf_free(&b3);
}

/* The target's library path is a Prometheus label value: bytes that are
 * not UTF-8 made the whole scrape unparseable (a review). */
static void test_prom_label_utf8(void)
{
	struct snap *s = calloc(1, sizeof(*s));
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (!s || !f) {
		CHECK(0, "no memory");
		return;
	}
	prom_write(f, s, 42, "/x/lib\xff\xc3(\"q\\\n\xf8\x80\x80.so");
	fclose(f);
	const char *want = "lib=\"/x/lib\xef\xbf\xbd\xef\xbf\xbd(\\\"q\\\\\\n"
			   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.so\"} 1";
	CHECK(strstr(out, want), "label value: %.200s", out);
	for (const char *p = out; *p;) {
		size_t k = jw_utf8_len(p);
		CHECK(k, "byte 0x%02x at %zu is not UTF-8", (unsigned char)*p, (size_t)(p - out));
		p += k ? k : 1;
	}
	free(out);
	free(s);
}

/* The scrape of s, as schedtop metrics writes it (free it); NULL if out
 * of memory. */
static char *scrape(const struct snap *s)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (!f)
		return NULL;
	prom_write(f, s, 42, "/x/libweft.so");
	fclose(f);
	return out;
}

/* A snapshot of one shown core of runtime rt (free it). */
static struct snap *one_core(unsigned long long rt)
{
	struct snap *s = calloc(1, sizeof(*s));
	if (s) {
		s->slots_used = 1;
		s->cores[0].rt_id = rt;
	}
	return s;
}

/* A bucket's le is exactly 2^(k+1) - 1 (ns in seconds, or tasks): written
 * with 9 digits the top ones read 1.07374182 s, below the values they
 * hold, and 4.2949673e+09 tasks. */
static void test_prom_le_exact(void)
{
	struct snap *s = one_core(0x1000);
	char *out = s ? scrape(s) : NULL;
	if (!out) {
		CHECK(0, "no memory");
		free(s);
		return;
	}
	static const char *const want[] = {
		"weft_worker_park_duration_seconds_bucket{runtime=\"0x1000\",worker=\"0\",le=\"1.073741823\"}",
		"weft_worker_park_duration_seconds_bucket{runtime=\"0x1000\",worker=\"0\",le=\"4.294967295\"}",
		"weft_worker_steal_batch_tasks_bucket{runtime=\"0x1000\",worker=\"0\",le=\"4294967295\"}",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(strstr(out, want[i]), "no %s in the scrape", want[i]);
	CHECK(!strstr(out, "e+09\""), "an le in exponent form: %s", strstr(out, "e+09\"") - 60);
	free(out);
	free(s);
}

/* weft_worker_cpu_seconds_total counted a thread's time on CPU only at its
 * switch out: a worker spinning in one poll, alone on its CPU, never
 * switches, and its counter stood still (rate 0 at 100 % busy: a review).
 * The span in progress counts too, and the counter never goes down when a
 * hand-off gives the core to a spare whose span began later. */
static double prom_cpu(const struct snap *s)
{
	char *out = scrape(s);
	double v = -1;
	const char *k = "weft_worker_cpu_seconds_total{runtime=\"0x7000\",worker=\"0\"} ";
	const char *p = out ? strstr(out, k) : NULL;
	if (p)
		v = strtod(p + strlen(k), NULL);
	free(out);
	return v;
}

static void test_prom_cpu_in_progress(void)
{
	struct snap *s = one_core(0x7000);
	if (!s) {
		CHECK(0, "no memory");
		return;
	}
	s->cores[0].tid = 99;
	s->cores[0].state = WEFT_ST_RUNNING;
	s->cores[0].oncpu_ns = 1000000000ull;     /* 1 s in finished spans */
	s->cores[0].oncpu_since = 7000000000ull;  /* on CPU since 7 s */
	s->ts_ns = 10000000000ull;                /* scraped at 10 s */
	double a = prom_cpu(s);
	CHECK(a > 3.99 && a < 4.01, "spinning 3 s: cpu seconds %g, want 4", a);
	s->ts_ns = 11000000000ull;
	double b = prom_cpu(s);
	CHECK(b > 4.99 && b < 5.01, "a second later: cpu seconds %g, want 5", b);
	/* a hand-off: the spare's span (since 10.8 s) is the core's now */
	s->cores[0].oncpu_since = 10800000000ull;
	s->ts_ns = 11100000000ull;
	double c = prom_cpu(s);
	CHECK(c >= b, "after a hand-off: cpu seconds %g, below the last scrape's %g", c, b);
	free(s);
}

/* Seconds counters keep every nanosecond: written with %.9g a worker busy
 * for 11.6 days read 1000000.12 (a rate over a short scrape interval moved
 * in 10 ms steps or read zero; a review). */
static void test_prom_seconds_exact(void)
{
	struct snap *s = one_core(0x1000);
	if (!s) {
		CHECK(0, "no memory");
		return;
	}
	s->cores[0].busy_ns = 1000000123456789ull;
	s->cores[0].polls = 12345678901234567ull;
	s->bpf_run_ns = 3000000000ull;
	char *out = scrape(s);
	if (!out) {
		CHECK(0, "no memory");
		free(s);
		return;
	}
	static const char *const want[] = {
		"weft_worker_busy_seconds_total{runtime=\"0x1000\",worker=\"0\"} 1000000.123456789\n",
		"weft_worker_polls_total{runtime=\"0x1000\",worker=\"0\"} 12345678901234567\n",
		"weft_schedtop_bpf_run_seconds_total 3\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(strstr(out, want[i]), "no %s in the scrape", want[i]);
	free(out);
	free(s);
}

/* A trace whose events are a day apart: each line cost 86,400 one-second
 * flushes (50,000 lines: 2 min 18 s of CPU, a review). Empty seconds now go
 * in at once, and a trace spanning more than 7 days is refused. */
/* A new temp file for writing; its name in path (32 bytes). NULL if
 * none could be made. */
static FILE *open_tmp(char *path)
{
	strcpy(path, "/tmp/schedtop-logic-XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f && fd >= 0)
		close(fd);
	return f;
}

static void alarmed(int sig)
{
	(void)sig;
	static const char m[] = "FAIL: diff_load on day-apart events took more than 5 s\n";
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

static void test_diff_sparse_trace(void)
{
	char path[32];
	FILE *f = open_tmp(path);
	if (!f) {
		CHECK(0, "mkstemp");
		return;
	}
	/* 6 events, 86,399.5 s apart: 5 * 86,399.5 s = 431,997 whole seconds */
	for (int i = 0; i < 6; i++)
		fprintf(f, "{\"ts_ns\":%.0f,\"type\":\"steal\",\"n\":2}\n", 1e9 + i * 86399.5e9);
	fclose(f);
	struct diff_run *r = calloc(1, sizeof(*r));
	char err[256] = "";
	signal(SIGALRM, alarmed);
	alarm(5);
	int rc = diff_load(path, r, err, sizeof(err));
	CHECK(rc == 0, "day-apart trace: %d %s", rc, err);
	CHECK(r->samples == 431997, "samples %llu", (unsigned long long)r->samples);
	CHECK(r->nm >= 1 && r->m[0].n == 431997 && r->m[0].sum == 5,
	      "%s: n %llu sum %g", r->m[0].name, (unsigned long long)r->m[0].n, r->m[0].sum);

	/* a quiet gap of 2 days: the events after it count (they were dropped
	 * without a word past a day: a review, 2026-12-07) */
	f = fopen(path, "w");
	for (int i = 0; f && i < 3; i++)
		fprintf(f, "{\"ts_ns\":%.0f,\"type\":\"steal\",\"n\":2}\n", 1e9 + i * 1e9);
	for (int i = 0; f && i < 3; i++)
		fprintf(f, "{\"ts_ns\":%.0f,\"type\":\"park\"}\n", 1e9 + 2 * 86400e9 + i * 1e9);
	if (f)
		fclose(f);
	rc = diff_load(path, r, err, sizeof(err));
	/* whole seconds up to the last event's: 2 days and 2 s; the parks of
	 * the first two of the last 3 s (the last second is partial) */
	const struct diff_metric *pk = NULL;
	for (unsigned i = 0; i < r->nm; i++)
		if (!strcmp(r->m[i].name, "park events/s"))
			pk = &r->m[i];
	CHECK(rc == 0 && r->samples == 2 * 86400 + 2 && pk && pk->n == r->samples && pk->sum == 2,
	      "a 2-day gap: rc %d samples %llu, park events/s n %llu sum %g %s", rc,
	      (unsigned long long)r->samples, pk ? (unsigned long long)pk->n : 0ull, pk ? pk->sum : -1,
	      err);

	/* 3,000 such lines span 8.2 years: refused at the first line past 7 days */
	f = fopen(path, "w");
	for (int i = 0; f && i < 3000; i++)
		fprintf(f, "{\"ts_ns\":%.0f,\"type\":\"steal\",\"n\":2}\n", 1e9 + i * 86399.5e9);
	if (f)
		fclose(f);
	rc = diff_load(path, r, err, sizeof(err));
	alarm(0);
	CHECK(rc == -EINVAL && strstr(err, "more than 7 days") && strstr(err, ":9:"),
	      "a trace of 8 years: %d %s", rc, err);
	unlink(path);
	free(r);
}

static int count_leaf(void *ctx, const struct jwalk_leaf *l)
{
	(void)l;
	(*(unsigned *)ctx)++;
	return 0;
}

static char *write_tmp(const char *text, char *path)
{
	FILE *f = open_tmp(path);
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

static char *print_diff(const char *pa, const char *pb, bool json)
{
	struct diff_run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char err[256] = "", *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	CHECK(a && b && f, "no memory");
	int ra = diff_load(pa, a, err, sizeof(err));
	CHECK(ra == 0, "%s: %s", pa, err);
	int rb = diff_load(pb, b, err, sizeof(err));
	CHECK(rb == 0, "%s: %s", pb, err);
	diff_print(f, "A", a, "B", b, -1, 5, json);
	fclose(f);
	if (!out)
		exit(1);
	free(a);
	free(b);
	return out;
}

/* `schedtop diff` output: metric names come from the trace's event types,
 * and were printed raw (a quote broke the JSON, an ESC reached the
 * terminal); an infinite mean or delta was a bare `inf`; metrics only A
 * had were left out (a review). */
static void test_diff_output(void)
{
	static const char ta[] =
		"{\"ts_ns\":1000000000,\"type\":\"x\\\"y\\u001b[31m\"}\n"
		"{\"ts_ns\":1200000000,\"type\":\"aonly\"}\n"
		"{\"ts_ns\":2100000000,\"type\":\"x\\\"y\\u001b[31m\"}\n";
	static const char tb[] =
		"{\"ts_ns\":1000000000,\"type\":\"x\\\"y\\u001b[31m\"}\n"
		"{\"ts_ns\":1300000000,\"type\":\"bonly\"}\n"
		"{\"ts_ns\":2100000000,\"type\":\"bonly\"}\n";
	char pa[32], pb[32], la[32], lb[32];
	if (!write_tmp(ta, pa) || !write_tmp(tb, pb) ||
	    !write_tmp("{\"tool\":\"weft-load\",\"throughput\":{\"tasks_per_s\":1e308}}\n", la) ||
	    !write_tmp("{\"tool\":\"weft-load\",\"throughput\":{\"tasks_per_s\":-1e308}}\n", lb)) {
		CHECK(0, "mkstemp");
		return;
	}
	char *j = print_diff(pa, pb, true);
	unsigned leaves = 0;
	CHECK(jwalk(j, count_leaf, &leaves) == 0, "diff --json of odd names is not JSON: %s", j);
	CHECK(strstr(j, "\"name\":\"x\\\"y\\u001b[31m events/s\""), "name: %s", j);
	CHECK(strstr(j, "{\"name\":\"aonly events/s\",\"direction\":\"neutral\",\"only_in\":\"A\","
			     "\"a\":1,\"b\":null,"),
	      "only in A: %s", j);
	CHECK(strstr(j, "{\"name\":\"bonly events/s\",\"direction\":\"neutral\",\"only_in\":\"B\","
			     "\"a\":null,\"b\":1,"),
	      "only in B: %s", j);
	free(j);
	char *t = print_diff(pa, pb, false);
	CHECK(!strchr(t, '\x1b'), "raw ESC in the text: %s", t);
	CHECK(strstr(t, "x\"y\\x1b[31m events/s"), "name in the text: %s", t);
	CHECK(strstr(t, "aonly events/s") && strstr(t, "(only in A)"), "only in A: %s", t);
	CHECK(strstr(t, "bonly events/s") && strstr(t, "(only in B)"), "only in B: %s", t);
	free(t);
	j = print_diff(la, lb, true);
	leaves = 0;
	CHECK(jwalk(j, count_leaf, &leaves) == 0, "diff --json of 1e308 / -1e308 is not JSON: %s", j);
	CHECK(strstr(j, "\"a\":1e+308,\"b\":-1e+308,\"delta\":null,\"change_pct\":null,"),
	      "non-finite numbers: %s", j);
	free(j);
	unlink(pa);
	unlink(pb);
	unlink(la);
	unlink(lb);
}

/* `schedtop diff` compares the share of intervals every lint fired in:
 * its own list of lints left out blocking-call, so a run that drew it in
 * every interval passed --fail-over beside one that never did (a review). */
static void test_diff_every_lint(void)
{
	char pa[32], pb[32];
	static const char row[] = "{\"schema\":\"schedtop/1\",\"final\":false,\"interval_s\":0.5,"
				  "\"workers\":2,\"polls_per_s\":100,\"worker\":[],\"lints\":[%s]}\n";
	char a[1024] = "", b[1024] = "", line[512];
	for (int i = 0; i < 4; i++) {
		snprintf(line, sizeof(line), row, "");
		strcat(a, line);
		snprintf(line, sizeof(line), row, "{\"name\":\"blocking-call\",\"detail\":\"x\"}");
		strcat(b, line);
	}
	if (!write_tmp(a, pa) || !write_tmp(b, pb)) {
		CHECK(0, "mkstemp");
		return;
	}
	struct diff_run *ra = calloc(1, sizeof(*ra)), *rb = calloc(1, sizeof(*rb));
	char err[256] = "", *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	CHECK(ra && rb && f, "no memory");
	CHECK(diff_load(pa, ra, err, sizeof(err)) == 0, "%s: %s", pa, err);
	CHECK(diff_load(pb, rb, err, sizeof(err)) == 0, "%s: %s", pb, err);
	int past = diff_print(f, "A", ra, "B", rb, 10, 5, false);
	fclose(f);
	for (unsigned l = 0; l < LINT_NR; l++) {
		char want[64];
		snprintf(want, sizeof(want), "lint %s (share of intervals)", lint_names[l]);
		CHECK(out && strstr(out, want), "diff has no '%s': %s", want, out ? out : "");
	}
	CHECK(past == 1, "blocking-call in every interval of B, none of A: %d metrics past "
			 "--fail-over 10, want 1: %s", past, out ? out : "");
	free(out);
	free(ra);
	free(rb);
	unlink(pa);
	unlink(pb);
}

static const struct diff_metric *diff_find(const struct diff_run *r, const char *name)
{
	for (unsigned i = 0; i < r->nm; i++)
		if (!strcmp(r->m[i].name, name))
			return &r->m[i];
	return NULL;
}

/* A recording of a runtime with WEFT_MAX_WORKERS (256) workers: each
 * worker row was kept as ~47 leaves, so past 87 workers diff refused the
 * file, "more values than diff reads (4096)" (a review, 2026-12-06). The
 * rows here are shaped as schedtop's (a string, a nested object, numbers)
 * and weft-load's per_worker. */
static void test_diff_many_workers(void)
{
	enum { W = 256, LINES = 4 };
	char *text = NULL, *load = NULL;
	size_t tn = 0, ln = 0;
	FILE *f = open_memstream(&text, &tn);
	for (int l = 0; l < LINES; l++) {
		fprintf(f, "{\"schema\":\"schedtop/1\",\"final\":false,\"interval_s\":0.5,"
			   "\"workers\":%d,\"polls_per_s\":1000,\"worker\":[", W);
		for (int w = 0; w < W; w++) {
			fprintf(f, "%s{\"rt\":\"0x1\",\"core\":%d,\"state\":\"running\"", w ? "," : "", w);
			/* ~40 more numeric columns, as a real row has */
			for (int k = 0; k < 40; k++)
				fprintf(f, ",\"col%d\":%d", k, k);
			fprintf(f, ",\"cpu_pct\":0.5,\"noop_unparks\":2,\"park_p99_ns\":%d,"
				   "\"total\":{\"polls\":%d,\"parks\":1}}", 1000 + w, w);
		}
		fprintf(f, "],\"lints\":[]}\n");
	}
	fclose(f);
	f = open_memstream(&load, &ln);
	fprintf(f, "{\"tool\":\"weft-load\",\"workers\":%d,\"t0_ns\":0,\"end_ns\":1000000000,"
		   "\"tasks\":{\"completed\":1000},\"per_worker\":[", W);
	for (int w = 0; w < W; w++)
		fprintf(f, "%s{\"worker\":%d,\"polls\":10,\"busy_ns\":500000000,\"steal_operations\":1,"
			   "\"tasks_stolen\":4,\"parks\":2,\"noop_unparks\":0,\"overflows\":0}",
			w ? "," : "", w);
	fprintf(f, "]}\n");
	fclose(f);
	char pa[32], pl[32], err[256] = "";
	struct diff_run *r = calloc(1, sizeof(*r));
	CHECK(r && text && load && write_tmp(text, pa) && write_tmp(load, pl), "setup");
	int rc = diff_load(pa, r, err, sizeof(err));
	CHECK(rc == 0, "schedtop/1, %d workers: %d %s", W, rc, err);
	const struct diff_metric *m = diff_find(r, "workers cpu_pct (sum)");
	CHECK(m && m->n == LINES - 1 && fabs(m->sum / m->n - 0.5 * W) < 1e-6,
	      "cpu_pct sum over %d workers: %g, want %g", W, m && m->n ? m->sum / m->n : -1, 0.5 * W);
	m = diff_find(r, "park_p99_ns (max worker)");
	CHECK(m && m->n && m->sum / m->n == 1000 + W - 1, "park p99 max: %g", m && m->n ? m->sum / m->n : -1);
	m = diff_find(r, "noop_unparks_per_s");
	CHECK(m && m->n && fabs(m->sum / m->n - 2.0 * W / 0.5) < 1e-6, "noop unparks/s: %g",
	      m && m->n ? m->sum / m->n : -1);
	rc = diff_load(pl, r, err, sizeof(err));
	CHECK(rc == 0, "weft-load, %d workers: %d %s", W, rc, err);
	m = diff_find(r, "worker busy %");
	CHECK(m && m->n == 1 && fabs(m->sum - 50) < 1e-6, "busy %%: %g", m ? m->sum : -1);
	m = diff_find(r, "parks per 1k tasks");
	CHECK(m && m->n == 1 && fabs(m->sum - 2.0 * W) < 1e-6, "parks per 1k tasks: %g", m ? m->sum : -1);
	unlink(pa);
	unlink(pl);
	free(r);
	free(text);
	free(load);
}

/* An event type first seen late in a trace: the seconds before it had
 * none, and count in its mean. They were left out, so 100 steal_fails in
 * the last of 10 seconds read "steal_fail events/s 100", not 10 (a review,
 * 2026-12-07). */
static void test_diff_late_type(void)
{
	char path[32];
	FILE *f = open_tmp(path);
	if (!f) {
		CHECK(0, "mkstemp");
		return;
	}
	/* one steal a second for 11 s; 100 steal_fails in second 9 (0-based) */
	for (int s = 0; s <= 10; s++) {
		fprintf(f, "{\"ts_ns\":%d000000000,\"type\":\"steal\",\"n\":1}\n", s + 1);
		for (int k = 0; s == 9 && k < 100; k++)
			fprintf(f, "{\"ts_ns\":%d%09d,\"type\":\"steal_fail\"}\n", s + 1, 1000 + k);
	}
	fclose(f);
	struct diff_run *r = calloc(1, sizeof(*r));
	char err[256] = "";
	int rc = diff_load(path, r, err, sizeof(err));
	CHECK(rc == 0 && r->samples == 10, "late type: rc %d samples %llu %s", rc,
	      (unsigned long long)r->samples, err);
	const struct diff_metric *m = diff_find(r, "steal_fail events/s");
	CHECK(m && m->n == 10 && m->sum == 100, "steal_fail events/s: n %llu sum %g (want 10, 100)",
	      m ? (unsigned long long)m->n : 0ull, m ? m->sum : -1);
	m = diff_find(r, "steal events/s");
	CHECK(m && m->n == 10 && m->sum == 10, "steal events/s: n %llu sum %g",
	      m ? (unsigned long long)m->n : 0ull, m ? m->sum : -1);
	unlink(path);
	free(r);
}

/* The last interval of a recording that ended at the target's exit (or a
 * signal) is a part of one: a dump of 1 s intervals at ~102k polls/s that
 * ended in 0.1 s at 48.6k read "polls_per_s 91969" (a review, 2026-12-07).
 * It is left out as the first is; a last interval that -n ended is whole. */
static void test_diff_partial_last(void)
{
	static const char iv[] = "{\"schema\":\"schedtop/1\",\"final\":%s,%s\"interval_s\":%s,"
				 "\"workers\":1,\"polls_per_s\":%d,\"worker\":[{\"core\":0}],\"lints\":[]}\n";
	const char *ends[] = { "\"end\":\"target-exited\",", "\"end\":\"signal\",", "\"end\":\"count\"," };
	struct diff_run *r = calloc(1, sizeof(*r));
	for (int k = 0; r && k < 3; k++) {
		char text[2048] = "", one[512], path[32], err[256] = "";
		/* the attach's, two whole ones, and the last */
		snprintf(one, sizeof(one), iv, "false", "", "1", 50000);
		strcat(text, one);
		for (int i = 0; i < 2; i++) {
			snprintf(one, sizeof(one), iv, "false", "", "1", 100000);
			strcat(text, one);
		}
		snprintf(one, sizeof(one), iv, "true", ends[k], k < 2 ? "0.1" : "1", k < 2 ? 40000 : 100000);
		strcat(text, one);
		CHECK(write_tmp(text, path), "setup");
		int rc = diff_load(path, r, err, sizeof(err));
		const struct diff_metric *m = diff_find(r, "polls_per_s");
		unsigned want = k < 2 ? 2 : 3;
		CHECK(rc == 0 && r->samples == want && m && m->n == want && m->sum == 100000.0 * want,
		      "last interval %s: rc %d, samples %llu, polls_per_s n %llu mean %g (want %u, 100000) %s",
		      ends[k], rc, (unsigned long long)r->samples, m ? (unsigned long long)m->n : 0ull,
		      m && m->n ? m->sum / (double)m->n : -1, want, err);
		unlink(path);
	}
	free(r);
}

/* Two runs appended to one file (`schedtop --json ... >> runs.jsonl`
 * twice) were read as one recording: the second run's attach interval
 * counted as a whole one. A line after a final one, another pid, or a
 * clock that starts over is refused, saying where (a listed limit). One
 * run of the same lines is still read. */
static void test_diff_appended_runs(void)
{
	static const char iv[] = "{\"schema\":\"schedtop/1\",\"final\":%s,\"pid\":%d,\"ts_ns\":%d,"
				 "\"interval_s\":1,\"workers\":1,\"polls_per_s\":100000,"
				 "\"worker\":[{\"core\":0}],\"lints\":[]}\n";
	/* pid and ts of each line; the last column: final */
	static const int runs[4][4][3] = {
		{ { 7, 1, 0 }, { 7, 2, 0 }, { 7, 3, 0 }, { 7, 4, 1 } },  /* one run */
		{ { 7, 1, 0 }, { 7, 2, 1 }, { 7, 3, 0 }, { 7, 4, 1 } },  /* after a final line */
		{ { 7, 1, 0 }, { 7, 2, 0 }, { 8, 3, 0 }, { 8, 4, 1 } },  /* another pid, no final */
		{ { 7, 5, 0 }, { 7, 6, 0 }, { 7, 1, 0 }, { 7, 2, 1 } },  /* the clock starts over */
	};
	static const char *const why[4] = { NULL, "after the first one's final line", "another pid",
					    "its clock starts over" };
	struct diff_run *r = calloc(1, sizeof(*r));
	for (int k = 0; r && k < 4; k++) {
		char text[4096] = "", one[512], path[32], err[256] = "";
		for (int i = 0; i < 4; i++) {
			snprintf(one, sizeof(one), iv, runs[k][i][2] ? "true" : "false", runs[k][i][0],
				 runs[k][i][1]);
			strcat(text, one);
		}
		CHECK(write_tmp(text, path), "setup");
		int rc = diff_load(path, r, err, sizeof(err));
		if (!why[k])
			CHECK(rc == 0 && r->samples == 3, "one run: rc %d samples %llu %s", rc,
			      (unsigned long long)r->samples, err);
		else
			CHECK(rc == -EINVAL && strstr(err, ":3: a second run starts here") &&
				      strstr(err, why[k]),
			      "appended runs (%s): rc %d, %s", why[k], rc, err);
		unlink(path);
	}
	free(r);
}

/* A `schedtop record` dump (.json, schedtop-record/1) compared with diff:
 * its interval reports are a schedtop recording. diff refused it, "one
 * JSON object, not weft-load's output, nor a schedtop recording or a
 * trace" (a review, 2026-12-06). Compact as schedtop writes it, and
 * pretty-printed with a lint detail holding brackets, quotes and a
 * backslash; a dump without interval reports is refused with a reason. */
static void test_diff_record_dump(void)
{
	static const char iv[] = "{\"schema\":\"schedtop/1\",\"final\":false,\"interval_s\":1,"
				 "\"workers\":2,\"polls_per_s\":%d,\"worker\":[{\"core\":0,\"cpu_pct\":10},"
				 "{\"core\":1,\"cpu_pct\":20}],\"lints\":[]}";
	char compact[4096], pretty[4096], empty[512], ivs[2048] = "", one[512];
	for (int i = 0; i < 4; i++) {
		snprintf(one, sizeof(one), iv, 1000 * (i + 1));
		if (i)
			strcat(ivs, ",");
		strcat(ivs, one);
	}
	snprintf(compact, sizeof(compact),
		 "{\"schema\":\"schedtop-record/1\",\"pid\":7,\"reason\":\"lint-long-poll\","
		 "\"lint\":\"long-poll\",\"detail\":\"f ] } [ { \\\" \\\\\",\"window\":{\"last_s\":30,"
		 "\"events\":3},\"intervals\":[%s]}\n", ivs);
	snprintf(pretty, sizeof(pretty),
		 "{\n  \"window\": {\"events\": 3},\n  \"detail\": \"x]\",\n  \"intervals\": [\n    %s\n  ],\n"
		 "  \"schema\": \"schedtop-record/1\"\n}\n", ivs);
	/* newlines between the tokens of the intervals, as jq writes them */
	for (char *q = strstr(pretty, "\"intervals\""); q && *q; q++)
		if (*q == ',' && q[1] == '"')
			*q = '\n', memmove(q + 1, q, strlen(q) + 1), *q = ',';
	snprintf(empty, sizeof(empty), "{\"schema\":\"schedtop-record/1\",\"intervals\":[]}\n");
	char pc[32], pp[32], pe[32], err[256] = "";
	struct diff_run *r = calloc(1, sizeof(*r));
	CHECK(r && write_tmp(compact, pc) && write_tmp(pretty, pp) && write_tmp(empty, pe), "setup");
	const char *files[] = { pc, pp };
	for (int k = 0; k < 2; k++) {
		int rc = diff_load(files[k], r, err, sizeof(err));
		CHECK(rc == 0 && !strcmp(r->kind, "schedtop") && r->samples == 3,
		      "record dump (%s): rc %d kind %s samples %llu: %s", k ? "pretty" : "compact", rc,
		      r->kind, (unsigned long long)r->samples, err);
		const struct diff_metric *m = diff_find(r, "polls_per_s");
		/* the first interval is left out (3 or more): 2000, 3000, 4000 */
		CHECK(m && m->n == 3 && m->sum == 9000, "polls_per_s: n %llu sum %g",
		      m ? (unsigned long long)m->n : 0ull, m ? m->sum : -1);
		m = diff_find(r, "workers cpu_pct (sum)");
		CHECK(m && m->n == 3 && m->sum == 90, "cpu_pct: %g", m ? m->sum : -1);
	}
	int rc = diff_load(pe, r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "no interval report"), "a dump without intervals: %d %s", rc, err);
	unlink(pc);
	unlink(pp);
	unlink(pe);
	free(r);
}

/* A recording of a schema diff does not read - a newer schedtop's
 * "schedtop/2", schedtop trace's latency file - was "not a schedtop,
 * weft-load or trace record" / "one JSON object, not ..." though it says
 * what it is (a review, 2026-12-06): the schema is named. */
static void test_diff_other_schema(void)
{
	char p2[32], pl[32], err[512] = "";
	struct diff_run *r = calloc(1, sizeof(*r));
	CHECK(r && write_tmp("{\"schema\":\"schedtop/2\",\"interval_s\":1}\n"
			     "{\"schema\":\"schedtop/2\",\"interval_s\":1}\n", p2) &&
	      write_tmp("{\"schema\":\"schedtop-latency/1\",\"latency\":[]}\n", pl), "setup");
	int rc = diff_load(p2, r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, ":1: schema \"schedtop/2\", which this schedtop's diff does not read"),
	      "schedtop/2: %d %s", rc, err);
	rc = diff_load(pl, r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "schema \"schedtop-latency/1\", which"), "latency: %d %s", rc, err);
	unlink(p2);
	unlink(pl);
	free(r);
}

/* A value diff reads as a number that is a string (or true/false): said,
 * with its line and name. It was left out without a word while the
 * interval still counted as a sample, and a worker row's was left out of
 * the sum over the rows (a review, 2026-12-07). Strings where diff reads
 * none (a row's "state") are fine; null is a value not known (weft-load's
 * "workers" when it cannot tell), left out, where it read as 0. */
static void test_diff_not_a_number(void)
{
	static const char row[] = "{\"rt\":\"0x1\",\"core\":0,\"state\":\"running\",\"cpu_pct\":%s}";
	char line[512], rowbuf[160], path[32], err[512];
	struct diff_run *r = calloc(1, sizeof(*r));
	CHECK(r, "setup");
	if (!r)
		return;
	/* 4 intervals; in `which` (1-based; 0: none) polls_per_s or a row's
	 * cpu_pct is a string (the first interval is left out: not read) */
	for (int c = 0; c < 4; c++) {
		int which = c == 0 ? 0 : c == 1 ? 3 : c == 2 ? 2 : 4;
		bool in_row = c >= 2;
		char *text = NULL;
		size_t tn = 0;
		FILE *f = open_memstream(&text, &tn);
		for (int l = 1; l <= 4; l++) {
			bool odd = l == which;
			snprintf(rowbuf, sizeof(rowbuf), row, odd && in_row ? "\"50.0\"" : "50.0");
			snprintf(line, sizeof(line),
				 "{\"schema\":\"schedtop/1\",\"pid\":7,\"ts_ns\":%d,\"final\":false,"
				 "\"interval_s\":0.5,\"workers\":1,\"polls_per_s\":%s,\"worker\":[%s],"
				 "\"lints\":[]}",
				 l * 1000, odd && !in_row ? "\"1000\"" : "1000", rowbuf);
			fprintf(f, "%s\n", line);
		}
		fclose(f);
		CHECK(text && write_tmp(text, path), "setup");
		err[0] = '\0';
		int rc = diff_load(path, r, err, sizeof(err));
		if (!which) {
			CHECK(rc == 0, "numbers only: %d %s", rc, err);
			const struct diff_metric *m = diff_find(r, "polls_per_s");
			CHECK(m && m->n == 3, "polls_per_s: %u samples", m ? (unsigned)m->n : 0);
		} else {
			char want[96];
			snprintf(want, sizeof(want), ":%d: %s is a string, not a number", which,
				 in_row ? "worker[].cpu_pct" : "polls_per_s");
			CHECK(rc == -EINVAL && strstr(err, want), "a string at line %d: %d '%s', want '%s'",
			      which, rc, err, want);
		}
		unlink(path);
		free(text);
	}
	/* weft-load's whole-file output: true for a number; null is not known */
	CHECK(write_tmp("{\"tool\":\"weft-load\",\"workers\":2,"
			"\"throughput\":{\"tasks_per_s\":true}}\n", path), "setup");
	int rc = diff_load(path, r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, ": throughput.tasks_per_s is true or false, not a number"),
	      "true for tasks_per_s: %d %s", rc, err);
	unlink(path);
	CHECK(write_tmp("{\"tool\":\"weft-load\",\"workers\":null,"
			"\"throughput\":{\"tasks_per_s\":10}}\n", path), "setup");
	rc = diff_load(path, r, err, sizeof(err));
	CHECK(rc == 0 && !diff_find(r, "workers") && diff_find(r, "throughput.tasks_per_s"),
	      "workers null: %d %s, read as %g", rc, err,
	      diff_find(r, "workers") ? diff_find(r, "workers")->sum : -1.0);
	unlink(path);
	/* a trace event whose time is a string */
	CHECK(write_tmp("{\"ts_ns\":1000000000,\"type\":\"steal\",\"n\":1}\n"
			"{\"ts_ns\":\"2000000000\",\"type\":\"steal\",\"n\":1}\n", path), "setup");
	rc = diff_load(path, r, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, ":2: ts_ns is a string, not a number"),
	      "trace ts_ns string: %d %s", rc, err);
	unlink(path);
	free(r);
}

/* weft's probes found from the note sections only: `schedtop list` read
 * each executable in full, 45 s for a 20 GiB sparse one (a review). */
static void alarmed_notes(int sig)
{
	(void)sig;
	static const char m[] = "FAIL: elf_has_weft_notes on a 20 GiB sparse file took more than 5 s\n";
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

static void put(unsigned char *p, uint64_t v, unsigned n, bool be)
{
	for (unsigned i = 0; i < n; i++)
		p[be ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

/* An ELF32 file with one note section holding a stapsdt note of `probe`. */
static void write_elf32(const char *path, bool be, const char *provider, const char *probe)
{
	unsigned char f[256] = { 0x7f, 'E', 'L', 'F', 1, be ? 2 : 1, 1 };
	put(f + 0x10, 2, 2, be);      /* ET_EXEC */
	put(f + 0x20, 52, 4, be);     /* e_shoff */
	put(f + 0x28, 52, 2, be);     /* e_ehsize */
	put(f + 0x2e, 40, 2, be);     /* e_shentsize */
	put(f + 0x30, 2, 2, be);      /* e_shnum: null, .note.stapsdt */
	unsigned char *sh = f + 52 + 40, *n = f + 132;
	put(sh + 4, 7, 4, be);        /* SHT_NOTE */
	put(sh + 0x10, 132, 4, be);   /* offset */
	put(sh + 0x20, 4, 4, be);     /* align */
	size_t pl = strlen(provider) + 1, ql = strlen(probe) + 1, desc = 12 + pl + ql + 1;
	put(n, 8, 4, be);
	put(n + 4, desc, 4, be);
	put(n + 8, 3, 4, be);         /* NT_STAPSDT */
	memcpy(n + 12, "stapsdt", 8);
	memcpy(n + 20 + 12, provider, pl);
	memcpy(n + 20 + 12 + pl, probe, ql);
	size_t size = 20 + ((desc + 3) & ~(size_t)3);
	put(sh + 0x14, size, 4, be);
	FILE *o = fopen(path, "w");
	if (!o || fwrite(f, 1, 132 + size, o) != 132 + size)
		CHECK(0, "writing %s", path);
	if (o)
		fclose(o);
}

/* An ELF64 file of 1 MiB followed by 65535 section headers, each a note
 * section of that whole 1 MiB. */
static void write_elf64_many_notes(const char *path)
{
	const size_t mib = 1u << 20, shnum = 65535;
	unsigned char *f = calloc(1, mib + shnum * 64);
	if (!f) {
		CHECK(0, "calloc");
		return;
	}
	memcpy(f, "\x7f" "ELF\x02\x01\x01", 7);
	put(f + 0x10, 3, 2, false);     /* ET_DYN */
	put(f + 0x28, mib, 8, false);   /* e_shoff */
	put(f + 0x34, 64, 2, false);    /* e_ehsize */
	put(f + 0x3a, 64, 2, false);    /* e_shentsize */
	put(f + 0x3c, shnum, 2, false); /* e_shnum */
	for (size_t i = 0; i < shnum; i++) {
		unsigned char *sh = f + mib + i * 64;
		put(sh + 4, 7, 4, false);     /* SHT_NOTE */
		put(sh + 0x20, mib, 8, false); /* size; offset 0 */
		put(sh + 0x30, 4, 8, false);   /* align */
	}
	FILE *o = fopen(path, "w");
	if (!o || fwrite(f, 1, mib + shnum * 64, o) != mib + shnum * 64)
		CHECK(0, "writing %s", path);
	if (o)
		fclose(o);
	free(f);
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void copy_file(const char *from, const char *to, off_t len, off_t truncate_to)
{
	char buf[1 << 16];
	FILE *i = fopen(from, "r"), *o = fopen(to, "w");
	size_t k;
	off_t done = 0;
	while (i && o && done < len && (k = fread(buf, 1, sizeof(buf), i)) > 0) {
		if ((off_t)k > len - done)
			k = (size_t)(len - done);
		fwrite(buf, 1, k, o);
		done += (off_t)k;
	}
	CHECK(i && o, "copy %s to %s", from, to);
	if (i)
		fclose(i);
	if (o)
		fclose(o);
	if (truncate_to)
		CHECK(truncate(to, truncate_to) == 0, "truncate %s", to);
}

static void test_elf_notes(const char *libweft, const char *plain)
{
	char p[] = "/tmp/schedtop-elf-XXXXXX";
	int fd = mkstemp(p);
	if (fd < 0) {
		CHECK(0, "mkstemp");
		return;
	}
	close(fd);
	CHECK(elf_has_weft_notes(libweft), "%s: no weft notes found", libweft);
	CHECK(!elf_has_weft_notes(plain), "%s: weft notes found", plain);
	signal(SIGALRM, alarmed_notes);
	alarm(5);
	copy_file(plain, p, (off_t)1 << 40, (off_t)20 << 30);
	CHECK(!elf_has_weft_notes(p), "a sparse 20 GiB copy of %s: weft notes found", plain);
	copy_file(libweft, p, (off_t)1 << 40, (off_t)20 << 30);
	CHECK(elf_has_weft_notes(p), "a sparse 20 GiB copy of %s: no weft notes found", libweft);
	alarm(0);
	/* cut short: the section headers (at the end) are gone */
	copy_file(libweft, p, 4096, 0);
	CHECK(!elf_has_weft_notes(p), "libweft cut to 4 KiB: weft notes found");
	copy_file(libweft, p, 40, 0);
	CHECK(!elf_has_weft_notes(p), "libweft cut to 40 bytes: weft notes found");
	write_elf32(p, true, "weft", "park");
	CHECK(elf_has_weft_notes(p), "ELF32 big-endian: no weft notes found");
	write_elf32(p, false, "weft", "park");
	CHECK(elf_has_weft_notes(p), "ELF32 little-endian: no weft notes found");
	write_elf32(p, true, "weft", "steal");
	CHECK(!elf_has_weft_notes(p), "weft:steal only: weft:park found");
	write_elf32(p, true, "other", "park");
	CHECK(!elf_has_weft_notes(p), "other:park: weft notes found");
	/* the same 1 MiB as 65535 note sections: 64 GiB copied before, 2.5 s
	 * of CPU for one file; a bounded read now (CPU time: what a loaded
	 * machine does not stretch) */
	write_elf64_many_notes(p);
	double t0 = cpu_s();
	CHECK(!elf_has_weft_notes(p), "65535 note sections: weft notes found");
	double cpu = cpu_s() - t0;
	CHECK(cpu < 0.5, "65535 note sections over the same 1 MiB: %.2f s of CPU", cpu);
	unlink(p);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_schedtop_logic FIXTURE_DIR LIBWEFT\n");
		return 2;
	}
	dir = argv[1];
	test_hist_pct();
	test_old_recording_top_bucket();
	test_prom_label_utf8();
	test_prom_le_exact();
	test_prom_cpu_in_progress();
	test_prom_seconds_exact();
	test_diff_sparse_trace();
	test_diff_late_type();
	test_diff_output();
	test_diff_every_lint();
	test_diff_many_workers();
	test_diff_not_a_number();
	test_diff_record_dump();
	test_diff_partial_last();
	test_diff_appended_runs();
	test_diff_other_schema();
	test_elf_notes(argv[2], "/bin/sleep"); /* no weft in it */
	test_drop_holes();
	test_event_after_snapshot();
	test_polls_restart();
	test_record_replay_attach();
	test_record_replay_oncpu();
	test_record_damaged();
	test_storm_first_interval_exit();
	test_recorded();
	/* imbalance needs LINT_IMBALANCE_INTERVALS (3) intervals in a row */
	test_lint("imbalance.snap.jsonl", 4, 1u << LINT_IMBALANCE, 0);
	/* two deep queues are two busy workers: no imbalance */
	test_lint("both-deep.snap.jsonl", 4, 0, 0);
	test_lint("storm.snap.jsonl", 1, 1u << LINT_STEAL_STORM, 1u << LINT_STEAL_STORM);
	/* not in the first interval after attach, when polls/s is still unknown */
	test_lint("storm-attach.snap.jsonl", 2, 1u << LINT_STEAL_STORM, 0);
	/* the other shape: tasks bouncing both ways; one way is no storm */
	test_lint("bounce.snap.jsonl", 1, 1u << LINT_STEAL_STORM, 1u << LINT_STEAL_STORM);
	test_lint("spread.snap.jsonl", 1, 0, 0);
	test_lint("herd.snap.jsonl", 1, 1u << LINT_HERD, 1u << LINT_HERD);
	test_lint("herd-skew.snap.jsonl", 1, 0, 0); /* bursts, but too few for a storm */
	/* a burst trickling in from a slowed spawner: too few polls a second */
	test_lint("herd-bursty.snap.jsonl", 1, 0, 0);
	test_lint("herd-empty.snap.jsonl", 1, 1u << LINT_HERD, 1u << LINT_HERD);
	test_lint("pingpong.snap.jsonl", 1, 0, 0); /* as empty, but busy: no herd */
	test_lint("stuck.snap.jsonl", 1, 1u << LINT_STUCK_WORKER, 1u << LINT_STUCK_WORKER);
	/* queued tasks read at one end only are not a stuck worker */
	test_lint("stuck-once.snap.jsonl", 1, 0, 0);
	test_trace();
	test_trace_damaged();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("PASS: schedtop logic on fixtures\n");
	return 0;
}
