/*
 * tui.c - the ncurses live view. Three views over the same interval data
 * (model.c): 1 workers, 2 steal matrix heatmap, 3 histograms. Keys: q quit,
 * h help, s next sort column, 1/2/3 views. On exit (q, Ctrl-C, count, the
 * target exiting) the terminal is restored and the last interval is printed
 * as text, so the final summary stays on screen.
 */
#include <curses.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void fmt_ns(char *b, size_t n, uint64_t ns)
{
	if (!ns) snprintf(b, n, "-");
	else if (ns < 10000) snprintf(b, n, "%lluns", (unsigned long long)ns);
	else if (ns < 10000000) snprintf(b, n, "%lluus", (unsigned long long)(ns / 1000));
	else snprintf(b, n, "%llums", (unsigned long long)(ns / 1000000));
}

static void header(const struct interval *iv, int pid)
{
	char ia[32];
	fmt_age(ia, sizeof(ia), iv->inject_age_s, iv->inject_stale);
	mvprintw(0, 0, "schedtop  pid %d  workers %u  tasks(polls)/s %.0f  steals/s %.0f  parks/s %.0f"
		       "  inject %llu%s (%s)", pid, iv->workers, iv->polls_per_s, iv->steals_per_s,
		 iv->parks_per_s, (unsigned long long)iv->inject_depth, iv->inject_stale ? "?" : "",
		 ia);
	mvprintw(1, 0, "overhead: bpf %.0f ns/event, %.0f events/s, schedtop cpu %.1f%%, drops %llu"
		       "  futex: %s",
		 iv->bpf_ns_per_event, iv->bpf_events_per_s, iv->self_cpu_pct,
		 (unsigned long long)iv->drops, iv->futex_src[0] ? iv->futex_src : "-");
	int y = 2;
	move(y, 0);
	for (unsigned l = 0; l < LINT_NR; l++) {
		if (!iv->lint[l])
			continue;
		attron(A_BOLD | (has_colors() ? COLOR_PAIR(1) : 0));
		printw("[%s] ", lint_names[l]);
		attroff(A_BOLD | (has_colors() ? COLOR_PAIR(1) : 0));
		printw("%s  ", iv->lint_detail[l]);
	}
}

static void view_workers(struct tui *t, int pid)
{
	const struct interval *iv = t->iv;
	unsigned idx[WEFT_BPF_MAX_CORES];
	for (unsigned i = 0; i < iv->workers; i++)
		idx[i] = i;
	for (unsigned i = 1; i < iv->workers; i++) /* insertion sort, descending */
		for (unsigned j = i; j > 0 && sort_val(&iv->row[idx[j]], t->sort) >
						 sort_val(&iv->row[idx[j - 1]], t->sort); j--) {
			unsigned x = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = x;
		}
	attron(A_REVERSE);
	mvprintw(4, 0, "%-3s %-7s %-9s %8s %8s %6s %-16s %6s %6s %5s %6s %6s %6s %5s %5s %4s",
		 "W", "TID", "STATE", "AGE", "POLLS/s", "DEPTH", "DEPTH HISTORY", "STL_IN", "STL_OUT",
		 "PARKS", "PARK50", "PARK99", "UNPK99", "CPU%", "INVOL", "MIGR");
	attroff(A_REVERSE);
	for (unsigned k = 0; k < iv->workers && 5 + (int)k < LINES - 1; k++) {
		const struct worker_row *r = &iv->row[idx[k]];
		char sp[SPARK_N + 1], a[24], b[24], c[24], age[32], dep[32];
		fmt_age(age, sizeof(age), r->age_s, r->stale);
		snprintf(dep, sizeof(dep), "%llu%s", (unsigned long long)r->local_depth,
			 r->stale ? "?" : "");
		uint64_t mx = 1;
		for (unsigned s = 0; s < SPARK_N; s++)
			if (t->spark[r->core][s] > mx)
				mx = t->spark[r->core][s];
		for (unsigned s = 0; s < SPARK_N; s++) {
			uint64_t v = t->spark[r->core][(t->spark_pos + s) % SPARK_N];
			sp[s] = spark_chars[v * (sizeof(spark_chars) - 2) / mx];
		}
		sp[SPARK_N] = '\0';
		fmt_ns(a, sizeof(a), r->park_p50_ns);
		fmt_ns(b, sizeof(b), r->park_p99_ns);
		fmt_ns(c, sizeof(c), r->unpark_p99_ns);
		mvprintw(5 + (int)k, 0,
			 "%-3u %-7u %-9s %8s %8.0f %6s %-16s %6llu %6llu %5llu %6s %6s %6s %5.1f %5llu %4llu",
			 r->core, r->tid, state_name(r->state), age, r->polls_per_s, dep, sp, (unsigned long long)r->steals_in,
			 (unsigned long long)r->steals_out, (unsigned long long)r->parks, a, b, c,
			 r->cpu_pct, (unsigned long long)r->invol_cs, (unsigned long long)r->migrations);
	}
	mvprintw(LINES - 1, 0, "view 1: workers  sort: %s   q quit  h help  s sort  1/2/3 views",
		 sort_names[t->sort]);
	(void)pid;
}

static void view_matrix(struct tui *t)
{
	const struct interval *iv = t->iv;
	uint64_t mx = 0;
	for (unsigned a = 0; a < iv->workers; a++)
		for (unsigned b = 0; b < iv->workers; b++)
			if (iv->matrix[a][b] > mx)
				mx = iv->matrix[a][b];
	mvprintw(4, 0, "steal operations this interval: rows thief, columns victim (max %llu)",
		 (unsigned long long)mx);
	move(5, 0);
	printw("%8s", "");
	for (unsigned v = 0; v < iv->workers && 8 + 7 * (int)v < COLS - 7; v++)
		printw(" %6s", "");
	mvprintw(5, 0, "thief\\v ");
	for (unsigned v = 0; v < iv->workers && 8 + 7 * (int)v < COLS - 7; v++)
		printw("   w%-3u", v);
	for (unsigned a = 0; a < iv->workers && 6 + (int)a < LINES - 1; a++) {
		mvprintw(6 + (int)a, 0, "w%-6u ", a);
		for (unsigned v = 0; v < iv->workers && 8 + 7 * (int)v < COLS - 7; v++) {
			uint64_t x = iv->matrix[a][v];
			int lvl = mx ? (int)(x * 4 / mx) : 0;
			if (has_colors() && x)
				attron(COLOR_PAIR(2 + (lvl > 3 ? 3 : lvl)));
			printw(" %6llu", (unsigned long long)x);
			if (has_colors() && x)
				attroff(COLOR_PAIR(2 + (lvl > 3 ? 3 : lvl)));
		}
	}
	mvprintw(LINES - 1, 0, "view 2: steal matrix   q quit  h help  1/2/3 views");
}

static void hist_box(int y, int x, int h, const char *title, const uint64_t *s, const char *unit)
{
	uint64_t mx = 0;
	int first = -1, last = -1;
	for (int i = 0; i < WEFT_BPF_HIST_SLOTS; i++) {
		if (s[i] > mx) mx = s[i];
		if (s[i] && first < 0) first = i;
		if (s[i]) last = i;
	}
	mvprintw(y, x, "%s (%s, p50 %llu p99 %llu)", title, unit,
		 (unsigned long long)hist_pct(s, WEFT_BPF_HIST_SLOTS, 50),
		 (unsigned long long)hist_pct(s, WEFT_BPF_HIST_SLOTS, 99));
	if (first < 0) {
		mvprintw(y + 1, x, "  (no data)");
		return;
	}
	if (last - first + 1 > h - 1)
		first = last - (h - 2);
	for (int i = first, row = 1; i <= last; i++, row++) {
		int n = mx ? (int)(s[i] * 20 / mx) : 0;
		char bar[21];
		memset(bar, '*', (size_t)n);
		bar[n] = '\0';
		mvprintw(y + row, x, "%9llu-%-9llu %7llu |%-20s|", i ? 1ull << i : 0ull,
			 (1ull << (i + 1)) - 1, (unsigned long long)s[i], bar);
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
	int hh = (LINES - 6) / 2;
	if (hh < 4) hh = 4;
	hist_box(4, 0, hh, "park duration", sum[WEFT_H_PARK_NS], "ns");
	hist_box(4, COLS / 2, hh, "unpark -> running", sum[WEFT_H_UNPARK_LAT_NS], "ns");
	hist_box(4 + hh, 0, hh, "tasks per steal", sum[WEFT_H_STEAL_BATCH], "tasks");
	hist_box(4 + hh, COLS / 2, hh, "futex wait (kernel)", sum[WEFT_H_FUTEX_NS], "ns");
	mvprintw(LINES - 1, 0, "view 3: histograms (all workers, this interval)   q quit  h help");
}

static void view_help(void)
{
	static const char *const lines[] = {
		"schedtop keys:",
		"  q        quit (prints the last interval)",
		"  h        this help (any key closes it)",
		"  s        next sort column (view 1)",
		"  1 2 3    workers / steal matrix / histograms",
		"",
		"Columns (view 1), per interval:",
		"  STATE     running | searching | parked | stopped (latest probe)",
		"  POLLS/s   task polls (from the worker's counters, read at maintenance/park)",
		"  DEPTH     local queue depth (latest), DEPTH HISTORY its sparkline",
		"  AGE       how old STATE and DEPTH are; 'old' and DEPTH '?': not reported this interval",
		"  STL_IN    successful steals by this worker, STL_OUT steals from it",
		"  PARKS     times parked; PARK50/99 park duration percentiles",
		"  UNPK99    notify -> worker running again, p99",
		"  CPU%      on-CPU time (sched_switch), INVOL involuntary switches,",
		"  MIGR      CPU migrations (kernel view of the same thread)",
		"Lints: imbalance, steal-storm, herd, stuck-worker (docs/OBSERVABILITY.md)",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		mvprintw(4 + (int)i, 2, "%s", lines[i]);
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
	if (!initscr()) {
		fprintf(stderr, "schedtop: cannot start the terminal UI; use --batch\n");
		free(prev); free(cur); free(iv);
		return 1;
	}
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
	mon_snapshot(m, prev);
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
			mon_snapshot(m, cur);
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
		int ch = getch();
		if (t.help && ch != ERR) {
			t.help = false;
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
	if (gone)
		printf("target %d exited; last interval:\n", pid);
	interval_print_text(stdout, iv, pid);
	free(prev);
	free(cur);
	free(iv);
	return 0;
}
