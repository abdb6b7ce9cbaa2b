/*
 * diff.h - `schedtop diff A B`: compare two recordings of runs. No BPF.
 *
 * A recording is one of
 *  - schedtop --batch --json output (schema schedtop/1, one object per
 *    interval; schedtop-nobpf/1 likewise): each interval is one sample of
 *    each metric (the first is dropped when there are three or more: it
 *    starts at the attach; so is the last then, when it ended at the
 *    target's exit or a signal: a part of an interval);
 *  - weft-load --json / --output (tool weft-load): one sample;
 *  - schedtop trace JSON lines (run.jsonl): one sample per second of trace.
 * Each metric has a direction: higher is better (throughput), lower is
 * better (latency, overhead, wasted wake-ups), or neutral (steals, parks:
 * what changed, neither good nor bad by itself).
 *
 * A change is significant when |change| >= min_change_pct and, when both
 * runs have two or more samples of it, the means differ by more than 3
 * standard errors (Welch). It counts against --fail-over PCT when it is
 * significant, directional, worse, and by more than PCT percent.
 */
#ifndef SCHEDTOP_DIFF_H
#define SCHEDTOP_DIFF_H

#include <stdbool.h>
#include <stdio.h>

#include <stdint.h>

#define DIFF_MAX_METRICS 96

struct diff_metric {
	char name[64];
	int dir;            /* +1 higher is better, -1 lower is better, 0 neutral */
	double sum, sumsq;
	uint64_t n;         /* a week of trace seconds and more: not an unsigned */
};

struct diff_run {
	char kind[24];      /* "weft-load", "schedtop", "schedtop-nobpf", "trace" */
	uint64_t samples;
	unsigned nm;
	struct diff_metric m[DIFF_MAX_METRICS];
};

/* Read a recording. 0, or -errno with `err` saying what is wrong (file,
 * line, format). */
int diff_load(const char *path, struct diff_run *r, char *err, size_t n);

/* Print the comparison (text, or one JSON object with `json`). fail_over
 * < 0: no threshold. Returns the number of metrics past the threshold. */
int diff_print(FILE *f, const char *a_name, const struct diff_run *a, const char *b_name,
	       const struct diff_run *b, double fail_over, double min_change_pct, bool json);

#endif /* SCHEDTOP_DIFF_H */
