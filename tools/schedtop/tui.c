/*
 * tui.c - the ncurses live view. Three views over the same interval data
 * (model.c): 1 workers, 2 steal matrix heatmap, 3 histograms. Every line
 * goes through put(), which cuts it to the terminal's width: view 1 keeps
 * whole columns by priority, the header its pieces, view 3 merges buckets
 * rather than hiding any; nothing wraps at 80x24 or larger. A count that
 * does not fit its cell is shortened (fmt_count: 1.0M), never cut. Keys: q quit,
 * h help, s next sort column, 1/2/3 views. On exit (q, Ctrl-C, count, the
 * target exiting) the terminal is restored and the last interval is printed
 * as text, so the final summary stays on screen.
 */
#include <curses.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "jwalk.h"
#include "model.h"
#include "stall.h"
#include "tui.h"

#define SPARK_N 16
static const char spark_chars[] = " _.-=+*#%@";

enum sort_key { SORT_CORE, SORT_POLLS, SORT_STEALS, SORT_PARKS, SORT_CPU, SORT_NR };
static const char *const sort_names[SORT_NR] = { "worker", "polls/s", "steals in", "parks",
						 "cpu%" };

struct tui {
	int view;
	bool help;
	enum sort_key sort;
	uint64_t spark[WEFT_BPF_MAX_CORES][SPARK_N];
	unsigned spark_pos;
	const struct interval *iv;
};

static double sort_val(const struct worker_row *r, enum sort_key k)
{
	switch (k) {
	case SORT_POLLS: return r->polls_per_s;
	case SORT_STEALS: return (double)r->steals_in;
	case SORT_PARKS: return (double)r->parks;
	case SORT_CPU: return r->cpu_pct;
	default: return -(double)r->core;
	}
}

/* The view's text is UTF-8 (tx_safe escapes the rest), and ncursesw
 * places it as characters in a UTF-8 locale (tui_run sets one); without
 * one, put() shows '?' for each non-ASCII character. */
static bool utf8_ok;

/* Print at (y, x), clipped to the screen's width: nothing ever wraps into
 * the next line. The text is cut after a whole character, and measured in
 * the cells its characters take (wcwidth), not in bytes: a lint naming a
 * symbol in UTF-8 was cut short of the edge, or inside a character (found
 * by a review). Returns the columns written. */
static int vput(int y, int x, int maxw, const char *fmt, va_list ap)
{
	char raw[1024], buf[4096];
	if (y < 0 || y >= LINES || x >= COLS || maxw <= 0)
		return 0;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	tx_safe(buf, sizeof(buf), raw); /* lint details hold the target's symbols */
	int room = COLS - x - (y == LINES - 1 ? 1 : 0); /* the last cell scrolls */
	if (room > maxw)
		room = maxw;
	size_t i = 0;
	int cols = 0;
	while (buf[i]) {
		size_t k = jw_utf8_len(buf + i);
		int cw = 1;
		if (!k) { /* not after tx_safe; one byte, shown as '?' */
			buf[i] = '?';
			k = 1;
		} else if (k > 1 && !utf8_ok) {
			buf[i] = '?';
			memmove(buf + i + 1, buf + i + k, strlen(buf + i + k) + 1);
			k = 1;
		} else if (k > 1) {
			wchar_t wc;
			mbstate_t ms;
			memset(&ms, 0, sizeof(ms));
			if (mbrtowc(&wc, buf + i, k, &ms) == k) {
				int w = wcwidth(wc);
				cw = w < 0 ? 1 : w;
			}
		}
		if (cols + cw > room)
			break;
		cols += cw;
		i += k;
	}
	if (i > 0)
		mvaddnstr(y, x, buf, (int)i);
	return cols;
}

static int put(int y, int x, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(int y, int x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vput(y, x, INT_MAX, fmt, ap);
	va_end(ap);
	return n;
}

/* put() in at most w columns. */
static int put_w(int y, int x, int w, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put_w(int y, int x, int w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vput(y, x, w, fmt, ap);
	va_end(ap);
	return n;
}

/* A duration in human units, short: 950ns 12us 3.4ms 134ms 2.1s */
static void fmt_dur(char *b, size_t n, uint64_t ns)
{
	if (ns < 1000)
		snprintf(b, n, "%lluns", (unsigned long long)ns);
	else if (ns < 10000)
		snprintf(b, n, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000)
		snprintf(b, n, "%lluus", (unsigned long long)(ns / 1000));
	else if (ns < 10000000)
		snprintf(b, n, "%.1fms", (double)ns / 1e6);
	else if (ns < 1000000000)
		snprintf(b, n, "%llums", (unsigned long long)(ns / 1000000));
	else
		snprintf(b, n, "%.1fs", (double)ns / 1e9);
}

/* A percentile from log2 buckets is the bucket's upper bound: shown as
 * "<134ms" (every sample in that bucket was shorter); in the open top
 * bucket (hist_pct's HIST_OPEN) its lower bound, ">=...". */
static void fmt_pct(char *b, size_t n, uint64_t bound_ns)
{
	char d[24];
	if (!bound_ns) {
		snprintf(b, n, "-");
		return;
	}
	if (bound_ns == HIST_OPEN) {
		fmt_dur(d, sizeof(d), 1ull << (WEFT_BPF_HIST_SLOTS - 1));
		snprintf(b, n, ">=%s", d);
		return;
	}
	fmt_dur(d, sizeof(d), bound_ns);
	snprintf(b, n, "<%s", d);
}

/* A rate with a k/M suffix so that it fits 7 columns. */
static void fmt_rate(char *b, size_t n, double v)
{
	if (v < 99999.5)
		snprintf(b, n, "%.0f", v);
	else if (v < 9999.5e3)
		snprintf(b, n, "%.0fk", v / 1e3);
	else
		snprintf(b, n, "%.1fM", v / 1e6);
}

/* A count in at most w columns (w >= 4): whole when its digits fit, else
 * shortened to 4 columns with a k/M/G/T/P/E suffix (12k, 1.0M, 999M), never
 * cut: a steal-matrix cell of a million steals pushed the row's next cells
 * a column right, and a histogram row in a narrow box lost its count's
 * last digits, 1234 read as 12 (found by a review). */
static void fmt_count(char *b, size_t n, uint64_t v, int w)
{
	static const char sfx[] = "kMGTPE";
	if (snprintf(b, n, "%llu", (unsigned long long)v) <= w)
		return;
	double x = (double)v;
	for (int i = 0; sfx[i]; i++) {
		x /= 1000;
		if (x < 9.95) {
			snprintf(b, n, "%.1f%c", x, sfx[i]);
			return;
		}
		if (x < 999.5 || !sfx[i + 1]) {
			snprintf(b, n, "%.0f%c", x, sfx[i]);
			return;
		}
	}
}

/* The header's pieces, most important first: a narrow terminal shows the
 * first ones that fit, in this order, on each line. */
static void header(const struct interval *iv, int pid)
{
	char seg[8][160], ia[32], r1[24], r2[24], r3[24], r4[24];
	int ns = 0;
	fmt_age(ia, sizeof(ia), iv->inject_age_s, iv->inject_stale);
	fmt_rate(r1, sizeof(r1), iv->polls_per_s);
	fmt_rate(r2, sizeof(r2), iv->steals_per_s);
	fmt_rate(r3, sizeof(r3), iv->tasks_stolen_per_s);
	fmt_rate(r4, sizeof(r4), iv->parks_per_s);
	snprintf(seg[ns++], sizeof(seg[0]), "schedtop pid %d", pid);
	if (iv->runtimes > 1) /* as the text output (found missing by a review) */
		snprintf(seg[ns++], sizeof(seg[0]), "runtimes %u", iv->runtimes);
	snprintf(seg[ns++], sizeof(seg[0]), "workers %u", iv->workers);
	snprintf(seg[ns++], sizeof(seg[0]), "polls/s %s", r1);
	snprintf(seg[ns++], sizeof(seg[0]), "steals/s %s (tasks/s %s)", r2, r3);
	snprintf(seg[ns++], sizeof(seg[0]), "parks/s %s", r4);
	snprintf(seg[ns++], sizeof(seg[0]), "inject %llu%s (%s)",
		 (unsigned long long)iv->inject_depth, iv->inject_stale ? "?" : "", ia);
	/* the last line is the view's footer: a header line there (under 4
	 * lines) was drawn under it, its tail left after the footer's text */
	int foot = LINES - 1;
	int x = 0;
	for (int i = 0; i < ns && 0 < foot; i++) {
		int w = (int)strlen(seg[i]) + (i ? 2 : 0);
		if (x + w > COLS - 1)
			break;
		x += put(0, x, "%s%s", i ? "  " : "", seg[i]);
	}
	ns = 0;
	if (iv->cores_over)
		snprintf(seg[ns++], sizeof(seg[0]), "cores over %d NOT SHOWN", WEFT_BPF_MAX_CORES);
	snprintf(seg[ns++], sizeof(seg[0]), "interval %.2fs", iv->dt_s);
	snprintf(seg[ns++], sizeof(seg[0]), "bpf %.0fns/event %.0f events/s", iv->bpf_ns_per_event,
		 iv->bpf_events_per_s);
	snprintf(seg[ns++], sizeof(seg[0]), "schedtop cpu %.1f%%", iv->self_cpu_pct);
	snprintf(seg[ns++], sizeof(seg[0]), "drops %llu", (unsigned long long)iv->drops);
	snprintf(seg[ns++], sizeof(seg[0]), "futex %s", iv->futex_src[0] ? iv->futex_src : "-");
	x = 0;
	for (int i = 0; i < ns && 1 < foot; i++) {
		int w = (int)strlen(seg[i]) + (i ? 2 : 0);
		if (x + w > COLS - 1)
			break;
		x += put(1, x, "%s%s", i ? "  " : "", seg[i]);
	}
	if (2 >= foot)
		return;
	/* lints: one line, each name in bold, details clipped to the width.
	 * A detail leaves room for the names after it: long-poll's filled the
	 * line, and a blocking-call in the same interval was not on the view
	 * at all (found by a review). */
	int names = 0; /* the columns of the names still to come, each with the "  " before it */
	for (unsigned l = 0; l < LINT_NR; l++)
		if (iv->lint[l])
			names += (int)strlen(lint_names[l]) + 5;
	for (unsigned k = 0; k < iv->nlat; k++)
		if (iv->lat[k].stalls_known && iv->lat[k].stalls)
			names += snprintf(NULL, 0, "[stalls %llu] ", (unsigned long long)iv->lat[k].stalls) + 2;
	x = 0;
	for (unsigned l = 0; l < LINT_NR; l++) {
		if (!iv->lint[l] || x >= COLS - 1)
			continue;
		names -= (int)strlen(lint_names[l]) + 5;
		attron(A_BOLD | (has_colors() ? COLOR_PAIR(1) : 0));
		x += put(2, x, "[%s] ", lint_names[l]);
		attroff(A_BOLD | (has_colors() ? COLOR_PAIR(1) : 0));
		x += put_w(2, x, COLS - x - names - (names ? 2 : 0), "%s", iv->lint_detail[l]);
		x += put(2, x, "  ");
	}
	/* then the stalls the runtimes counted (polls over their stall
	 * threshold, under the long-poll lint's 100 ms), the latest named */
	for (unsigned k = 0; k < iv->nlat && x < COLS - 1; k++) {
		const struct rt_lat *r = &iv->lat[k];
		if (!r->stalls_known || !r->stalls)
			continue;
		names -= snprintf(NULL, 0, "[stalls %llu] ", (unsigned long long)r->stalls) + 2;
		attron(A_BOLD);
		x += put(2, x, "[stalls %llu] ", (unsigned long long)r->stalls);
		attroff(A_BOLD);
		x += put_w(2, x, COLS - x - names - (names ? 2 : 0), "%s", r->last_stall);
		x += put(2, x, "  ");
	}
}

/* View 1's columns. Rates are per second; "<" values are bucket bounds.
 * prio: the order in which columns are kept when the terminal is narrow
 * (0 always). */
enum col_id { C_RT, C_W, C_TID, C_STATE, C_AGE, C_POLLS, C_DEPTH, C_SPARK, C_STLIN, C_STLOUT, C_PARKS,
	      C_P50, C_P99, C_U99, C_CPU, C_INVOL, C_MIGR, C_WAIT, C_NR };
static const struct {
	const char *title;
	int width, prio;
	bool left;
} cols[C_NR] = {
	[C_RT] = { "RT", 14, 0, true },       /* only with several runtimes */
	[C_W] = { "W", 3, 0, true },          [C_TID] = { "TID", 7, 4, true },
	[C_STATE] = { "STATE", 9, 0, true },  [C_AGE] = { "AGE", 8, 6, false },
	[C_POLLS] = { "POLLS/s", 7, 0, false }, [C_DEPTH] = { "DEPTH", 6, 1, false },
	[C_SPARK] = { "DEPTH HISTORY", 16, 7, true }, [C_STLIN] = { "STEAL/s", 7, 1, false },
	[C_STLOUT] = { "ROBBED/s", 8, 3, false }, [C_PARKS] = { "PARKS/s", 7, 2, false },
	[C_P50] = { "PARK50", 7, 4, false },  [C_P99] = { "PARK99", 7, 2, false },
	[C_U99] = { "UNPK99", 7, 3, false },  [C_CPU] = { "CPU%", 5, 1, false },
	[C_INVOL] = { "INVOL/s", 7, 5, false }, [C_MIGR] = { "MIGR/s", 6, 5, false },
	/* search rounds waited on a ring of short tasks its owner serves */
	[C_WAIT] = { "WAIT/s", 7, 6, false },
};

/* Which columns fit `width`: by priority, then shown in their order. */
static unsigned pick_cols(int width, bool show[C_NR], bool multi)
{
	int used = 0;
	unsigned hidden = 0;
	memset(show, 0, sizeof(bool) * C_NR);
	for (int prio = 0; prio <= 7; prio++)
		for (int c = 0; c < C_NR; c++) {
			if (cols[c].prio != prio || (c == C_RT && !multi))
				continue;
			int w = cols[c].width + (used ? 1 : 0);
			if (used + w <= width) {
				show[c] = true;
				used += w;
			} else {
				hidden++;
			}
		}
	return hidden;
}

static void view_workers(struct tui *t, int pid)
{
	const struct interval *iv = t->iv;
	unsigned idx[WEFT_BPF_MAX_CORES];
	bool show[C_NR];
	char cell[C_NR][40], line[512];
	double dt = iv->dt_s > 0 ? iv->dt_s : 1;
	for (unsigned i = 0; i < iv->workers; i++)
		idx[i] = iv->order[i]; /* by runtime, then core */
	for (unsigned i = 1; i < iv->workers && t->sort != SORT_CORE; i++) /* stable, descending */
		for (unsigned j = i; j > 0 && sort_val(&iv->row[idx[j]], t->sort) >
						 sort_val(&iv->row[idx[j - 1]], t->sort); j--) {
			unsigned x = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = x;
		}
	unsigned hidden = pick_cols(COLS - 1, show, iv->runtimes > 1);
	size_t o = 0;
	for (int c = 0; c < C_NR; c++)
		if (show[c])
			o += (size_t)snprintf(line + o, sizeof(line) - o, cols[c].left ? "%s%-*s" : "%s%*s",
					      o ? " " : "", cols[c].width, cols[c].title);
	attron(A_REVERSE);
	put(4, 0, "%s", line);
	attroff(A_REVERSE);
	int rows = LINES - 1 - 5;
	unsigned k;
	for (k = 0; k < iv->workers && (int)k < rows; k++) {
		const struct worker_row *r = &iv->row[idx[k]];
		uint64_t mx = 1;
		for (unsigned s = 0; s < SPARK_N; s++)
			if (t->spark[r->slot][s] > mx)
				mx = t->spark[r->slot][s];
		char *sp = cell[C_SPARK];
		for (unsigned s = 0; s < SPARK_N; s++) {
			uint64_t v = t->spark[r->slot][(t->spark_pos + s) % SPARK_N];
			sp[s] = spark_chars[v * (sizeof(spark_chars) - 2) / mx];
		}
		sp[SPARK_N] = '\0';
		snprintf(cell[C_RT], sizeof(cell[0]), "0x%llx", (unsigned long long)r->rt);
		snprintf(cell[C_W], sizeof(cell[0]), "%u", r->core);
		snprintf(cell[C_TID], sizeof(cell[0]), "%u", r->tid);
		snprintf(cell[C_STATE], sizeof(cell[0]), "%s", state_name(r->state));
		fmt_age(cell[C_AGE], sizeof(cell[0]), r->age_s, r->stale);
		fmt_rate(cell[C_POLLS], sizeof(cell[0]), r->polls_per_s);
		snprintf(cell[C_DEPTH], sizeof(cell[0]), "%llu%s", (unsigned long long)r->local_depth,
			 r->depth_stale ? "?" : "");
		fmt_rate(cell[C_STLIN], sizeof(cell[0]), (double)r->steals_in / dt);
		fmt_rate(cell[C_STLOUT], sizeof(cell[0]), (double)r->steals_out / dt);
		fmt_rate(cell[C_PARKS], sizeof(cell[0]), (double)r->parks / dt);
		fmt_pct(cell[C_P50], sizeof(cell[0]), r->park_p50_ns);
		fmt_pct(cell[C_P99], sizeof(cell[0]), r->park_p99_ns);
		fmt_pct(cell[C_U99], sizeof(cell[0]), r->unpark_p99_ns);
		snprintf(cell[C_CPU], sizeof(cell[0]), "%.1f", r->cpu_pct);
		fmt_rate(cell[C_INVOL], sizeof(cell[0]), (double)r->invol_cs / dt);
		fmt_rate(cell[C_MIGR], sizeof(cell[0]), (double)r->migrations / dt);
		fmt_rate(cell[C_WAIT], sizeof(cell[0]), (double)r->steal_waits / dt);
		o = 0;
		for (int c = 0; c < C_NR; c++)
			if (show[c])
				o += (size_t)snprintf(line + o, sizeof(line) - o,
						      cols[c].left ? "%s%-*.*s" : "%s%*.*s", o ? " " : "",
						      cols[c].width, cols[c].width, cell[c]);
		put(5 + (int)k, 0, "%s", line);
	}
	char more[96] = "";
	if (k < iv->workers && hidden)
		snprintf(more, sizeof(more), "  %u workers, %u columns not shown", iv->workers - k,
			 hidden);
	else if (k < iv->workers)
		snprintf(more, sizeof(more), "  %u workers not shown", iv->workers - k);
	else if (hidden)
		snprintf(more, sizeof(more), "  %u columns hidden", hidden);
	put(LINES - 1, 0, "1 workers  sort %s%s  per second; <x: bucket bound  q h s 2 3",
	    sort_names[t->sort], more);
	(void)pid;
}

/* The label of the k-th worker in display order: "w3", or with several
 * runtimes "r2w3" (runtime 2 in display order, its core 3): "w0 w0 w1"
 * did not say whose worker 0 was which. */
static void wlabel(const struct interval *iv, unsigned k, char *b, size_t n)
{
	unsigned rk = 1;
	for (unsigned i = 1; i <= k; i++)
		if (iv->row[iv->order[i]].rt != iv->row[iv->order[i - 1]].rt)
			rk++;
	if (iv->runtimes > 1)
		snprintf(b, n, "r%uw%u", rk, iv->row[iv->order[k]].core);
	else
		snprintf(b, n, "w%u", iv->row[iv->order[k]].core);
}

static void view_matrix(struct tui *t)
{
	const struct interval *iv = t->iv;
	uint64_t mx = 0;
	for (unsigned a = 0; a < iv->workers; a++)
		for (unsigned b = 0; b < iv->workers; b++)
			if (iv->matrix[a][b] > mx)
				mx = iv->matrix[a][b];
	/* Each line only above the footer, which keeps the last one: under
	 * 8 lines the title, the labels and the legend were drawn on the
	 * footer's line and the footer over them, and under 6 it covered the
	 * title (found by a review). Short of room the rows go first, then
	 * the legend, the labels, the title; the footer says so. */
	int foot = LINES - 1;
	if (4 < foot)
		put(4, 0, "steal operations this interval: rows thief, columns victim (max %llu)",
		    (unsigned long long)mx);
	unsigned ncol = 0, nrow = 0;
	char lb[32];
	/* the columns the width holds, whether the line is drawn or not */
	for (int cx = 8; ncol < iv->workers && cx + 7 <= COLS - 1; cx += 7)
		ncol++;
	int x = 5 < foot ? put(5, 0, "thief\\v ") : 0;
	for (unsigned v = 0; v < ncol && 5 < foot; v++) {
		wlabel(iv, v, lb, sizeof(lb));
		x += put(5, x, " %6s", lb); /* worker order */
	}
	/* with several runtimes, a line under the rows says which is which */
	int legend = iv->runtimes > 1 ? 1 : 0;
	for (unsigned a = 0; a < iv->workers && 6 + (int)a < foot - legend; a++, nrow++) {
		wlabel(iv, a, lb, sizeof(lb));
		x = put(6 + (int)a, 0, "%-7s ", lb);
		for (unsigned v = 0; v < ncol; v++) {
			uint64_t xv = iv->matrix[iv->order[a]][iv->order[v]];
			int lvl = mx ? (int)(xv * 4 / mx) : 0;
			if (has_colors() && xv)
				attron(COLOR_PAIR(2 + (lvl > 3 ? 3 : lvl)));
			char c[24];
			fmt_count(c, sizeof(c), xv, 6);
			x += put(6 + (int)a, x, " %6s", c);
			if (has_colors() && xv)
				attroff(COLOR_PAIR(2 + (lvl > 3 ? 3 : lvl)));
		}
	}
	if (legend && 6 + (int)nrow < foot) {
		char leg[512];
		size_t l = (size_t)snprintf(leg, sizeof(leg), "runtimes:");
		unsigned rk = 0;
		for (unsigned k = 0; k < iv->workers && l < sizeof(leg); k++)
			if (!k || iv->row[iv->order[k]].rt != iv->row[iv->order[k - 1]].rt)
				l += (size_t)snprintf(leg + l, sizeof(leg) - l, " r%u 0x%llx", ++rk,
						      (unsigned long long)iv->row[iv->order[k]].rt);
		put(6 + (int)nrow, 0, "%s", leg);
	}
	/* what would show the rest: "widen" alone sent a terminal too short
	 * for the rows to one wide enough already (found by a review) */
	bool narrow = ncol < iv->workers, shrt = nrow < iv->workers || 6 + legend > foot;
	put(foot, 0, "2 steal matrix%s  q quit h help 1 3",
	    narrow && shrt ? "  (cut to the terminal: widen, make taller)" :
	    narrow	   ? "  (cut to the terminal: widen)" :
	    shrt	   ? "  (cut to the terminal: make taller)" : "");
}

/* The bounds of a row of buckets i..j_end: a time in human units or a
 * count. The top bucket has no upper bound: shown as 2^64 - 1. */
static void range_bounds(char *a, char *b, size_t n, int i, int j_end, bool time)
{
	uint64_t lo = i ? 1ull << i : 0,
		 hi = j_end + 1 < WEFT_BPF_HIST_SLOTS ? 1ull << (j_end + 1) : UINT64_MAX;
	if (time) {
		fmt_dur(a, n, lo);
		fmt_dur(b, n, hi);
	} else {
		snprintf(a, n, "%llu", (unsigned long long)lo);
		snprintf(b, n, "%llu", (unsigned long long)hi);
	}
}

/* One histogram in a box of h lines and w columns at (y, x): title, then
 * the buckets from the lowest to the highest that holds a sample, in
 * human units; when they do not fit, adjacent buckets are merged (the
 * title says how many per row), so the whole range is always shown. */
static void hist_box(int y, int x, int h, int w, const char *title, const uint64_t *s, bool time)
{
	uint64_t total = 0;
	int first = -1, last = -1;
	char p50[32], p99[32];
	for (int i = 0; i < WEFT_BPF_HIST_SLOTS; i++) {
		total += s[i];
		if (s[i] && first < 0) first = i;
		if (s[i]) last = i;
	}
	uint64_t b50 = hist_pct(s, WEFT_BPF_HIST_SLOTS, 50), b99 = hist_pct(s, WEFT_BPF_HIST_SLOTS, 99);
	if (time) {
		fmt_pct(p50, sizeof(p50), b50);
		fmt_pct(p99, sizeof(p99), b99);
	} else if (!total) {
		/* no sample: "-" as the time boxes say, where it read "p50<0" */
		snprintf(p50, sizeof(p50), "-");
		snprintf(p99, sizeof(p99), "-");
	} else {
		/* HIST_OPEN: the top bucket, 2^63 and up */
		snprintf(p50, sizeof(p50), "%s%llu", b50 == HIST_OPEN ? ">=" : "<",
			 b50 == HIST_OPEN ? 1ull << (WEFT_BPF_HIST_SLOTS - 1) : (unsigned long long)b50);
		snprintf(p99, sizeof(p99), "%s%llu", b99 == HIST_OPEN ? ">=" : "<",
			 b99 == HIST_OPEN ? 1ull << (WEFT_BPF_HIST_SLOTS - 1) : (unsigned long long)b99);
	}
	int rows = h - 1, span = first < 0 ? 1 : last - first + 1,
	    per = (span + rows - 1) / (rows > 0 ? rows : 1);
	if (per < 1)
		per = 1;
	/* The title, and " xN" when a row merges N buckets: the marker is
	 * what says how to read the rows, so a narrow box drops the sample
	 * count first, then cuts the percentiles, never the marker (at 80
	 * columns "wake->run n=336 p50<2.0us p99<4.2ms" left no room for
	 * it; found by a review). */
	/* Then p99, then p50 go whole: cut, "p50<8.4ms" read "p50<8." (found
	 * by a review, at 30 columns); only the bare title is ever cut. */
	char t[160], xn[16] = "";
	if (per > 1)
		snprintf(xn, sizeof(xn), " x%d", per);
	int xl = (int)strlen(xn);
	int tl = snprintf(t, sizeof(t), "%s n=%llu p50%s p99%s", title, (unsigned long long)total,
			  p50, p99);
	if (tl + xl > w)
		tl = snprintf(t, sizeof(t), "%s p50%s p99%s", title, p50, p99);
	if (tl + xl > w)
		tl = snprintf(t, sizeof(t), "%s p50%s", title, p50);
	if (tl + xl > w)
		tl = snprintf(t, sizeof(t), "%s", title);
	if (tl + xl > w)
		tl = w - xl > 0 ? w - xl : 0;
	put(y, x, "%.*s%s", tl, t, xl <= w ? xn : "");
	if (first < 0) {
		put(y + 1, x, "%.*s", w, "  (no data)");
		return;
	}
	/* Each row: its bounds "lo-<hi", its count, a bar. The columns are
	 * 15 and 7 wide where the box has room; a narrower box (a terminal
	 * under 48 columns) packs them to what its rows need (cut at 15 and
	 * 7, the rows showed their bounds and no count: found by a review, at
	 * 40x10), then shortens the counts (1.0M), then shows a row's lower
	 * bound only ("2.0us-", the next row's is its upper); a count is never
	 * cut (under 34 columns the boxes cut them: a review). */
	char rng[WEFT_BPF_HIST_SLOTS][56], cnt[WEFT_BPF_HIST_SLOTS][24];
	uint64_t val[WEFT_BPF_HIST_SLOTS];
	int nr = 0;
	for (int i = first; i <= last && nr < rows; i += per, nr++) {
		int j_end = i + per - 1 > last ? last : i + per - 1;
		val[nr] = 0;
		for (int j = i; j <= j_end; j++)
			val[nr] += s[j];
		char a[24], b[24];
		range_bounds(a, b, sizeof(a), i, j_end, time);
		snprintf(rng[nr], sizeof(rng[0]), "%s-<%s", a, b);
		snprintf(cnt[nr], sizeof(cnt[0]), "%llu", (unsigned long long)val[nr]);
	}
	uint64_t mx = 0;
	int rw = 0, cw = 0;
	for (int r = 0; r < nr; r++) {
		mx = val[r] > mx ? val[r] : mx;
		rw = (int)strlen(rng[r]) > rw ? (int)strlen(rng[r]) : rw;
		cw = (int)strlen(cnt[r]) > cw ? (int)strlen(cnt[r]) : cw;
	}
	if ((rw > 15 ? rw : 15) + 1 + (cw > 7 ? cw : 7) <= w) {
		rw = rw > 15 ? rw : 15;
		cw = cw > 7 ? cw : 7;
	}
	if (rw + 1 + cw > w) {
		cw = 0;
		for (int r = 0; r < nr; r++) {
			fmt_count(cnt[r], sizeof(cnt[0]), val[r], 4);
			cw = (int)strlen(cnt[r]) > cw ? (int)strlen(cnt[r]) : cw;
		}
	}
	if (rw + 1 + cw > w) {
		rw = 0;
		for (int r = 0, i = first; r < nr; r++, i += per) {
			char a[24];
			if (time)
				fmt_dur(a, sizeof(a), i ? 1ull << i : 0);
			else
				fmt_count(a, sizeof(a), i ? 1ull << i : 0, 4);
			snprintf(rng[r], sizeof(rng[0]), "%s-", a);
			rw = (int)strlen(rng[r]) > rw ? (int)strlen(rng[r]) : rw;
		}
	}
	if (rw + 1 + cw > w) /* under 12 columns: the bounds are cut, not the count */
		rw = w - 1 - cw > 0 ? w - 1 - cw : 0;
	int bw = w - rw - cw - 2;
	if (bw > 30)
		bw = 30;
	for (int r = 0; r < nr; r++) {
		char bar[32];
		int n = bw > 0 && mx ? (int)(val[r] * (uint64_t)bw / mx) : 0;
		memset(bar, '#', (size_t)n);
		bar[n] = '\0';
		char ln[128];
		int ll = snprintf(ln, sizeof(ln), "%-*.*s %*s %s", rw, rw, rng[r], cw, cnt[r], bar);
		put(y + 1 + r, x, "%.*s", ll < w ? ll : w, ln);
	}
}

static void view_hists(struct tui *t)
{
	const struct interval *iv = t->iv;
	uint64_t sum[WEFT_H_NR][WEFT_BPF_HIST_SLOTS];
	memset(sum, 0, sizeof(sum));
	for (unsigned w = 0; w < iv->workers; w++)
		for (unsigned h = 0; h < WEFT_H_NR; h++)
			for (unsigned k = 0; k < WEFT_BPF_HIST_SLOTS; k++)
				sum[h][k] += iv->hist[w][h][k];
	/* Two pairs of boxes between the header and the footer, each box a
	 * title and at least one row: where both pairs do not fit (under 9
	 * lines) the bottom one is left out and the footer says so. The
	 * boxes were kept 2 lines high whatever the room, and the bottom pair
	 * was drawn over the footer (found by a review, at 80x8). */
	int room = LINES - 5, bw = (COLS - 2) / 2;
	int pairs = room >= 4 ? 2 : room >= 2 ? 1 : 0, hh = pairs ? room / pairs : 0;
	if (pairs >= 1) {
		hist_box(4, 0, hh, bw, "park", sum[WEFT_H_PARK_NS], true);
		hist_box(4, bw + 2, hh, bw, "wake->run", sum[WEFT_H_UNPARK_LAT_NS], true);
	}
	if (pairs == 2) {
		hist_box(4 + hh, 0, hh, bw, "tasks/steal", sum[WEFT_H_STEAL_BATCH], false);
		hist_box(4 + hh, bw + 2, hh, bw, "futex wait", sum[WEFT_H_FUTEX_NS], true);
	}
	put(LINES - 1, 0, "3 histograms%s, all workers, this interval; rows lo-<hi, xN: N buckets "
			  "a row  q h 1 2",
	    pairs == 2 ? "" : pairs ? " (2 of 4: taller shows all)" : " (none fit: taller)");
}

static void view_help(void)
{
	static const char *const lines[] = {
		"keys: q quit (prints the last interval), h help, s next sort column, 1 2 3 views",
		"View 1, one row per worker; rates are per second over the interval:",
		"  STATE     running | searching | parked | stopped (latest probe)",
		"  AGE       how old STATE and DEPTH are; DEPTH '?': not reported this interval",
		"  POLLS/s   task polls (a task is polled once per wake-up)",
		"  DEPTH     local queue depth (latest), DEPTH HISTORY its sparkline",
		"  STEAL/s   steal operations by this worker, ROBBED/s steals from it",
		"  PARKS/s   parks; PARK50/PARK99 park time percentiles",
		"  UNPK99    woken -> running again, p99",
		"  <x        a percentile from log2 buckets: the bucket's upper bound",
		"  CPU%      on-CPU time; INVOL/s preemptions; MIGR/s CPU migrations",
		"A narrow terminal drops the least important columns first; the",
		"footer says how many. Lints: docs/OBSERVABILITY.md",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		put(4 + (int)i, 1, "%s", lines[i]);
}

int tui_run(struct mon *m, struct stall *st, int pid, double interval, long count, int pidfd,
	    volatile sig_atomic_t *exiting)
{
	struct tui t;
	struct snap *prev = calloc(1, sizeof(*prev)), *cur = calloc(1, sizeof(*cur));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	bool gone = false;
	long n = 0;
	if (!prev || !cur || !iv) {
		free(prev); free(cur); free(iv);
		return 1;
	}
	memset(&t, 0, sizeof(t));
	t.view = 1;
	t.iv = iv;
	/* a UTF-8 locale for ncursesw, so that it takes the lints' UTF-8 as
	 * characters: the user's, else C.UTF-8 (with the narrow library the
	 * bytes went to the terminal as they were, read as UTF-8 there) */
	char saved_ctype[64];
	snprintf(saved_ctype, sizeof(saved_ctype), "%s", setlocale(LC_CTYPE, NULL));
	utf8_ok = setlocale(LC_CTYPE, "") && !strcmp(nl_langinfo(CODESET), "UTF-8");
	if (!utf8_ok)
		utf8_ok = (setlocale(LC_CTYPE, "C.UTF-8") || setlocale(LC_CTYPE, "C.utf8")) &&
			  !strcmp(nl_langinfo(CODESET), "UTF-8");
	/* newterm, not initscr: initscr exits the program itself on a
	 * terminal it cannot use (schedtop left its command running) */
	SCREEN *scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		setlocale(LC_CTYPE, saved_ctype);
		fprintf(stderr, "schedtop: cannot start the terminal UI; use --batch\n");
		free(prev); free(cur); free(iv);
		return 1;
	}
	set_term(scr);
	cbreak();
	noecho();
	curs_set(0);
	keypad(stdscr, TRUE);
	timeout(100);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_RED, -1);
		init_pair(2, COLOR_BLUE, -1);
		init_pair(3, COLOR_GREEN, -1);
		init_pair(4, COLOR_YELLOW, -1);
		init_pair(5, COLOR_RED, -1);
	}
	struct timespec t_start;
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	stall_sample(st, (uint64_t)t_start.tv_sec * 1000000000ull + (uint64_t)t_start.tv_nsec);
	stall_sync_slots(st, m);
	mon_snapshot(m, prev);
	/* the polls read from memory at the attach: the first interval counts
	 * a core's polls from them (it read 0 polls/s beside the parks) */
	stall_fill_snap(st, prev);
	interval_compute(iv, prev, prev, &ls);
	struct timespec last;
	clock_gettime(CLOCK_MONOTONIC, &last);
	bool quit = false;
	while (!quit && !*exiting && !gone) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double el = (double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9;
		if (pidfd >= 0) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			gone = poll(&p, 1, 0) > 0;
		} else {
			gone = mon_target_gone(pid);
		}
		uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
		stall_sample(st, now_ns);
		if (el >= interval || gone) {
			last = now;
			stall_sync_slots(st, m);
			mon_snapshot(m, cur);
			stall_fill_snap(st, cur);
			interval_compute(iv, prev, cur, &ls);
			stall_lint(st, iv, now_ns);
			stall_blocking_lint(st, iv, prev, cur);
			stall_latency(st, iv);
			for (unsigned w = 0; w < iv->workers; w++)
				t.spark[w][t.spark_pos] = iv->row[w].local_depth;
			t.spark_pos = (t.spark_pos + 1) % SPARK_N;
			struct snap *x = prev; prev = cur; cur = x;
			if (count && ++n >= count)
				quit = true;
		}
		erase();
		header(iv, pid);
		if (t.help) view_help();
		else if (t.view == 2) view_matrix(&t);
		else if (t.view == 3) view_hists(&t);
		else view_workers(&t, pid);
		refresh();
		/* Wait for a key at most until the next interval is due: a
		 * fixed 100 ms made every interval under 0.1 s last 0.1 s
		 * (`schedtop -p PID 0.02 100` took 14 s, not 2; found by a
		 * review). */
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = interval - (double)(now.tv_sec - last.tv_sec) -
			      (double)(now.tv_nsec - last.tv_nsec) / 1e9;
		timeout(left <= 0 ? 0 : left >= 0.1 ? 100 : (int)(left * 1000) + 1);
		int ch = getch();
		/* A key closes the help and still does what the help says it
		 * does: q there only closed the help, and 1 2 3 went back to
		 * the view it was opened from (found by a review). A resize
		 * is no key: it closed the help too. */
		if (t.help && ch != ERR && ch != KEY_RESIZE) {
			t.help = false;
			if (ch == 'h' || ch == '?')
				continue;
		}
		switch (ch) {
		case 'q': case 'Q': quit = true; break;
		case 'h': case '?': t.help = true; break;
		case 's': t.sort = (t.sort + 1) % SORT_NR; break;
		case '1': t.view = 1; break;
		case '2': t.view = 2; break;
		case '3': t.view = 3; break;
		default: break;
		}
	}
	endwin();
	setlocale(LC_CTYPE, saved_ctype);
	if (gone)
		printf("target %d exited; last interval:\n", pid);
	interval_print_text(stdout, iv, pid);
	free(prev);
	free(cur);
	free(iv);
	return 0;
}
