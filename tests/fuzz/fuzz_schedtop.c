/*
 * fuzz_schedtop.c - schedtop's readers of recorded files, fed arbitrary
 * bytes: the code `schedtop convert` and `schedtop report` run on a file,
 * compiled from tools/schedtop/ (trace.c, model.c) as it is.
 *
 * The first byte (mod 4) picks the reader, the rest is the file:
 *  - 0: event JSON lines (trace_jsonl_read), then what `convert` does
 *    with them (sort, Chrome trace-event JSON, summary);
 *  - 1: snapshot JSON lines (snap_read until the end or an error), then
 *    what `report` does with each pair (interval_compute, text and JSON).
 *
 * Checked, besides ASan/UBSan: the events read, written back with
 * trace_jsonl_write and read again, come back field for field (the writer
 * and the reader agree on the format); a snapshot's header fields survive
 * snap_write + snap_read the same way; sorting keeps the events and orders
 * them by time.
 *
 * 3: one JSON value for jwalk (the reader of `schedtop diff`): walked or
 *    refused (-EINVAL), every path and string within its bound, the same
 *    answer twice.
 *
 * A first byte of 2 (mod 4) instead feeds the command line: the rest is
 * split at NUL bytes into argv and given to schedtop_parse_args
 * (tools/schedtop/args.c, what main() runs before it attaches anything).
 * Checked: an accepted command line is consistent (a mode that watches a
 * process has exactly one of -p PID and "-- CMD"; interval, duration and
 * warmup are finite and in range; report/convert have their file; a
 * rejected one printed a message), and parsing the same argv again gives
 * the same result (getopt state does not leak between calls).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "jwalk.h"
#include "model.h"
#include "trace.h"

#include "fuzz_check.h"

static FILE *sink(void)
{
	static FILE *null;
	if (!null)
		null = fopen("/dev/null", "w");
	CHECK(null);
	return null;
}

static bool same_event(const struct weft_bpf_event *a, const struct weft_bpf_event *b)
{
	return a->ts == b->ts && a->type == b->type && a->core == b->core && a->tid == b->tid &&
	       a->cpu == b->cpu && a->rt_id == b->rt_id && a->a0 == b->a0 && a->a1 == b->a1 &&
	       a->a2 == b->a2;
}

static void events(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return; /* fmemopen refuses size 0 on some libcs */
	struct evbuf b = { 0 };
	size_t bad = 0;
	int rc = trace_jsonl_read(f, &b, &bad);
	fclose(f);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	CHECK(rc == 0 || bad >= 1);

	/* round trip: write what was read, read it back */
	char *text = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&text, &len);
	CHECK(w);
	for (size_t i = 0; i < b.n; i++)
		trace_jsonl_write(w, &b.ev[i]);
	CHECK(fclose(w) == 0);
	struct evbuf b2 = { 0 };
	if (len) {
		FILE *r = fmemopen(text, len, "r");
		CHECK(r);
		CHECK(trace_jsonl_read(r, &b2, &bad) == 0);
		fclose(r);
	}
	CHECK(b2.n == b.n);
	for (size_t i = 0; i < b.n; i++)
		CHECK(same_event(&b.ev[i], &b2.ev[i]));
	free(text);
	evbuf_free(&b2);

	if (rc == 0) {
		size_t n = b.n;
		evbuf_sort(&b);
		CHECK(b.n == n);
		for (size_t i = 1; i < b.n; i++)
			CHECK(b.ev[i - 1].ts <= b.ev[i].ts);
		struct trace_stats st;
		trace_chrome_write(sink(), &b, 1234, &st);
		trace_summary(sink(), &b);
	}
	evbuf_free(&b);
}

static void snapshots(const uint8_t *data, size_t size)
{
	static struct snap s[2], back;
	static struct interval iv;
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return;
	struct lint_state ls = { 0 };
	int r, n = 0;
	while ((r = snap_read(f, &s[n & 1])) == 1) {
		struct snap *cur = &s[n & 1], *prev = &s[(n + 1) & 1];
		if (n++ > 0) {
			interval_compute(&iv, prev, cur, &ls);
			CHECK(iv.workers <= WEFT_BPF_MAX_CORES);
			interval_print_text(sink(), &iv, 1234);
			interval_print_json(sink(), &iv, 1234, n == 3 ? SCHEDTOP_END_COUNT : NULL);
		}
		/* the header fields survive a write and a read */
		char *text = NULL;
		size_t len = 0;
		FILE *w = open_memstream(&text, &len);
		CHECK(w);
		snap_write(w, cur, (unsigned)n);
		CHECK(fclose(w) == 0);
		FILE *rd = fmemopen(text, len, "r");
		CHECK(rd);
		CHECK(snap_read(rd, &back) == 1);
		fclose(rd);
		free(text);
		CHECK(back.ncores == cur->ncores && back.ts_ns == cur->ts_ns &&
		      back.drops == cur->drops && back.events == cur->events &&
		      back.usdt_events == cur->usdt_events &&
		      back.cores_dropped == cur->cores_dropped &&
		      back.workers_declared == cur->workers_declared &&
		      back.runtimes_created == cur->runtimes_created &&
		      back.runtimes_shutdown == cur->runtimes_shutdown &&
		      back.last_rt == cur->last_rt && back.bpf_run_ns == cur->bpf_run_ns &&
		      back.bpf_run_cnt == cur->bpf_run_cnt && back.self_cpu_ns == cur->self_cpu_ns &&
		      !strcmp(back.futex_src, cur->futex_src));
		if (n > 8)
			break; /* enough pairs for one input */
	}
	CHECK(r >= -1 && r <= 1);
	fclose(f);
}

#define MAX_ARGS 24

/* Split data at NUL bytes into argv (argv[0] is the program name). */
static int split_args(const uint8_t *data, size_t size, char *buf, char **argv)
{
	memcpy(buf, data, size);
	buf[size] = '\0';
	int argc = 0;
	argv[argc++] = (char *)"schedtop";
	for (size_t i = 0; i <= size && argc < MAX_ARGS; ) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	return argc;
}

static int count_leaf(void *ctx, const struct jwalk_leaf *l)
{
	size_t *n = ctx;
	CHECK(l->path && strlen(l->path) < JWALK_MAX_PATH);
	CHECK(l->kind != JW_STR || (l->str && strlen(l->str) < JWALK_MAX_STR));
	(*n)++;
	return 0;
}

/* schedtop diff's JSON reader: any input is walked or refused, and the
 * same input gives the same answer twice. */
static void json_values(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	size_t n1 = 0, n2 = 0;
	int r1 = jwalk(buf, count_leaf, &n1), r2 = jwalk(buf, count_leaf, &n2);
	CHECK(r1 == 0 || r1 == -EINVAL || r1 == -ENOMEM);
	CHECK(r1 == r2 && n1 == n2);
	free(buf);
}

static void command_line(const uint8_t *data, size_t size)
{
	char *buf1 = malloc(size + 1), *buf2 = malloc(size + 1);
	CHECK(buf1 && buf2);
	char *argv1[MAX_ARGS + 1], *argv2[MAX_ARGS + 1];
	int argc = split_args(data, size, buf1, argv1);
	CHECK(split_args(data, size, buf2, argv2) == argc);
	char *msg = NULL;
	size_t msg_len = 0;
	FILE *err = open_memstream(&msg, &msg_len);
	CHECK(err);
	struct schedtop_args a, b;
	int r1 = schedtop_parse_args(argc, argv1, &a, err);
	fflush(err);
	size_t first_len = msg_len;
	int r2 = schedtop_parse_args(argc, argv2, &b, err);
	fclose(err);
	CHECK(r1 == SCHEDTOP_ARGS_OK || r1 == SCHEDTOP_ARGS_USAGE);
	CHECK(r1 == r2);
	CHECK((r1 == SCHEDTOP_ARGS_USAGE) == (first_len > 0)); /* a refusal says why */
	if (r1 == SCHEDTOP_ARGS_OK) {
		CHECK(a.mode == b.mode && a.pid == b.pid && a.count == b.count && a.help == b.help &&
		      a.batch == b.batch && a.json == b.json && a.no_bpf == b.no_bpf &&
		      a.npos == b.npos && (a.cmd == NULL) == (b.cmd == NULL));
		CHECK(a.interval == b.interval && a.duration == b.duration && a.warmup == b.warmup);
		if (!a.help) {
			CHECK(a.count >= 0 && a.npos >= 0);
			CHECK(a.interval >= 0.01 && a.interval <= 1e9);
			CHECK(a.duration > 0 && a.duration <= 1e9);
			CHECK(a.warmup >= 0 && a.warmup <= 1e9);
			size_t pl = strlen(a.prefix);
			CHECK(pl >= 1 && pl <= 11);
			switch (a.mode) {
			case M_TOP:
			case M_TRACE:
				CHECK((a.pid > 0) != (a.cmd != NULL));
				CHECK(!a.cmd || a.cmd[0]);
				CHECK(a.mode == M_TOP || a.out);
				CHECK(!a.no_bpf || (a.mode == M_TOP && !a.record));
				CHECK(!a.wait_lib || (a.pid > 0 && !a.no_bpf));
				break;
			case M_REPORT:
				CHECK(a.npos == 1 && a.pos[0]);
				break;
			case M_CONVERT:
				CHECK(a.npos == 1 && a.pos[0] && a.out);
				break;
			case M_LIST:
				CHECK(a.npos == 0);
				break;
			case M_RECORD:
				CHECK((a.pid > 0) != (a.cmd != NULL));
				CHECK(a.out && a.last >= a.interval && rec_parse_on(a.on));
				CHECK(a.max_events >= 1024);
				break;
			case M_METRICS:
				CHECK((a.pid > 0) != (a.cmd != NULL));
				CHECK(!a.listen != !a.once);
				break;
			case M_DIFF:
				CHECK(a.npos == 2 && a.pos[0] && a.pos[1]);
				CHECK(a.min_change >= 0);
				break;
			}
		}
	}
	free(msg);
	free(buf1);
	free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: events(data + 1, size - 1); break;
	case 1: snapshots(data + 1, size - 1); break;
	case 3: json_values(data + 1, size - 1); break;
	default: command_line(data + 1, size - 1); break;
	}
	return 0;
}
