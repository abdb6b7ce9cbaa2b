/*
 * record.c - the flight recorder; see record.h.
 *
 * Memory is bounded by construction: events live in a ring of
 * max_events entries (struct weft_bpf_event, 48 bytes each) and older
 * than the window they are dropped; when the ring fills within the window
 * the oldest are overwritten and the dump says the window is truncated
 * and from when it really starts. Interval reports are kept as their JSON
 * text, one per interval of the window. A lint dumps on its rising edge
 * (it did not fire in the previous interval), at most once per window
 * length, so that a lint that stays on does not write the same window
 * again and again; SIGUSR1 and the stop always dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jwalk.h"
#include "args.h"
#include "mon.h"
#include "model.h"
#include "record.h"
#include "stall.h"
#include "trace.h"

static volatile sig_atomic_t dump_requested;
static void on_usr1(int sig)
{
	(void)sig;
	dump_requested = 1;
}

void record_catch_usr1(void)
{
	/* SA_RESTART: a request during the attach must not fail one of its
	 * reads with EINTR; the loop's epoll_wait returns early regardless */
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigaction(SIGUSR1, &sa, NULL);
}

int record_dir_check(const char *dir, bool *created)
{
	if (created)
		*created = false;
	if (mkdir(dir, 0777) == 0) {
		if (created)
			*created = true;
	} else if (errno != EEXIST) {
		fprintf(stderr, "schedtop: record: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	/* DIR a file, or one not writable: said now, not at the first dump,
	 * hours later, when the window it was to keep is lost (found by a
	 * review: `-o FILE` recorded on and failed at the lint) */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || faccessat(dfd, ".", W_OK | X_OK, AT_EACCESS)) {
		fprintf(stderr, "schedtop: record: %s: %s\n", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------- the rings */

struct evring {
	struct weft_bpf_event *ev;
	size_t cap, head, n;
	uint64_t overwritten;        /* events lost to a full ring */
	uint64_t last_overwritten_ts;
};

static int on_event(void *ctx, const struct weft_bpf_event *e)
{
	struct evring *r = ctx;
	if (r->n == r->cap) {
		r->last_overwritten_ts = r->ev[r->head].ts;
		r->head = (r->head + 1) % r->cap;
		r->n--;
		r->overwritten++;
	}
	r->ev[(r->head + r->n) % r->cap] = *e;
	r->n++;
	return 0;
}

static void ev_expire(struct evring *r, uint64_t from)
{
	while (r->n && r->ev[r->head].ts < from) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
}

struct ivtext {
	uint64_t ts_ns;
	char *json;                  /* one schedtop/1 object, no newline */
};

struct ivring {
	struct ivtext *iv;
	size_t cap, head, n;
};

static void iv_push(struct ivring *r, uint64_t ts, char *json)
{
	if (r->n == r->cap) {
		free(r->iv[r->head].json);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	r->iv[(r->head + r->n) % r->cap] = (struct ivtext){ ts, json };
	r->n++;
}

static void iv_expire(struct ivring *r, uint64_t from)
{
	/* an interval report belongs to the window when it ends inside it */
	while (r->n && r->iv[r->head].ts_ns < from) {
		free(r->iv[r->head].json);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
}

/* ------------------------------------------------------------- the dump */

struct rec {
	const struct rec_opts *o;
	int pid;
	struct evring ev;
	struct ivring iv;
	uint64_t ring_drops;         /* the BPF ring buffer's own drops, latest */
	unsigned dumps, failed;
};

/* The three files of a dump, in this order. */
static const char *const dump_ext[3] = { ".trace.json", ".events.jsonl", ".json" };

/*
 * Create the three files of dump `base` in the directory `dfd`: new files
 * only, never through a symlink. DIR may be shared (/tmp) and schedtop
 * runs as root, which writes anywhere: fopen followed a symlink planted at
 * the predictable name and truncated its target, and only the .json name
 * was checked for a previous dump (found by a review). 0, -EEXIST when one
 * of the names is taken (the files created are removed: the caller picks
 * another name), or -errno, said on stderr.
 */
static int open_dump(int dfd, const char *dir, const char *base, FILE *f[3])
{
	char name[160];
	int i, err = 0;
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", base, dump_ext[i]);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		f[i] = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f[i]) {
			err = -errno;
			if (fd >= 0)
				close(fd);
			break;
		}
	}
	if (!err)
		return 0;
	if (err != -EEXIST)
		fprintf(stderr, "schedtop: record: %s/%s: %s\n", dir, name, strerror(-err));
	while (i-- > 0) {
		fclose(f[i]);
		snprintf(name, sizeof(name), "%s%s", base, dump_ext[i]);
		unlinkat(dfd, name, 0);
	}
	return err;
}

static void json_str(FILE *f, const char *s) { jw_print_str(f, s); }

static int dump(struct rec *r, struct mon *m, const char *reason, const char *lint,
		const char *detail)
{
	/* what the ring buffer holds up to now belongs to the window */
	while (mon_trace_poll(m, 0) > 0)
		;
	uint64_t end = now_ns(), last_ns = (uint64_t)(r->o->last_s * 1e9);
	uint64_t start = end > last_ns ? end - last_ns : 0;
	ev_expire(&r->ev, start);
	iv_expire(&r->iv, start);
	struct evbuf b = { 0 };
	for (size_t i = 0; i < r->ev.n; i++) {
		const struct weft_bpf_event *e = &r->ev.ev[(r->ev.head + i) % r->ev.cap];
		if (e->ts >= start && e->ts <= end && evbuf_push(&b, e)) {
			fprintf(stderr, "schedtop: record: out of memory for the dump\n");
			evbuf_free(&b);
			r->failed++;
			return 1;
		}
	}
	evbuf_sort(&b);
	bool truncated = r->ev.overwritten && r->ev.last_overwritten_ts >= start;
	/* name: UTC time of the dump, then the reason */
	struct timespec wall;
	struct tm tm;
	char base[96], stamp[48];
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	FILE *out[3];
	int orc = -EEXIST, dfd = open(r->o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		orc = -errno;
		fprintf(stderr, "schedtop: record: %s: %s\n", r->o->dir, strerror(errno));
	}
	/* a name taken (two dumps in one ms, or planted): -2, -3, ... */
	for (int k = 1; dfd >= 0 && orc == -EEXIST && k < 100; k++) {
		if (k == 1)
			snprintf(base, sizeof(base), "%s.%03ldZ-%s", stamp, wall.tv_nsec / 1000000,
				 reason);
		else
			snprintf(base, sizeof(base), "%s.%03ldZ-%s-%d", stamp, wall.tv_nsec / 1000000,
				 reason, k);
		orc = open_dump(dfd, r->o->dir, base, out);
	}
	if (dfd >= 0)
		close(dfd);
	if (orc) {
		if (orc == -EEXIST)
			fprintf(stderr, "schedtop: record: %s: %s: 99 names taken\n", r->o->dir, base);
		evbuf_free(&b);
		r->failed++; /* nothing written: not counted as a dump */
		return 1;
	}
	struct trace_stats ts;
	trace_chrome_write(out[0], &b, r->pid, &ts);
	for (size_t i = 0; i < b.n; i++)
		trace_jsonl_write(out[1], &b.ev[i]);
	FILE *f = out[2];
	fprintf(f, "{\"schema\":\"schedtop-record/1\",\"pid\":%d,\"reason\":", r->pid);
	json_str(f, reason);
	if (lint) {
		fprintf(f, ",\"lint\":");
		json_str(f, lint);
		fprintf(f, ",\"detail\":");
		json_str(f, detail ? detail : "");
	}
	char wt[64];
	strftime(wt, sizeof(wt), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, ",\"wall_time\":\"%s.%03ldZ\",\"clock\":\"CLOCK_MONOTONIC\","
		   "\"window\":{\"last_s\":%g,\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64
		   ",\"events\":%zu,\"first_event_ns\":%llu,\"last_event_ns\":%llu,"
		   "\"ring_capacity\":%zu,\"events_overwritten\":%" PRIu64 ",\"truncated\":%s",
		wt, wall.tv_nsec / 1000000, r->o->last_s, start, end, b.n,
		b.n ? b.ev[0].ts : 0ull, b.n ? b.ev[b.n - 1].ts : 0ull, r->ev.cap,
		r->ev.overwritten, truncated ? "true" : "false");
	if (truncated)
		fprintf(f, ",\"complete_from_ns\":%" PRIu64, r->ev.last_overwritten_ts + 1);
	fprintf(f, ",\"bpf_ring_drops\":%" PRIu64 "},\"files\":{\"trace\":\"%s.trace.json\","
		   "\"events\":\"%s.events.jsonl\"},\"intervals\":[",
		r->ring_drops, base, base);
	for (size_t i = 0; i < r->iv.n; i++)
		fprintf(f, "%s%s", i ? "," : "", r->iv.iv[(r->iv.head + i) % r->iv.cap].json);
	fprintf(f, "]}\n");
	/* A write that failed (disk full, the file size limit) said nothing
	 * but "(1 failed, see above)" under a line giving the dump's event
	 * count, and left the cut files, a trace that does not parse, in DIR
	 * (found by a review): the file and the reason, and the dump's files
	 * removed - a dump is whole or not there. */
	int werr = 0;
	for (int i = 0; i < 3; i++) {
		errno = 0;
		int e = fflush(out[i]) || ferror(out[i]) ? (errno ? errno : EIO) : 0;
		if (fclose(out[i]) && !e)
			e = errno ? errno : EIO;
		if (e && !werr) {
			werr = e;
			fprintf(stderr, "schedtop: record: %s: %s/%s%s: %s; the dump's files are removed\n",
				reason, r->o->dir, base, dump_ext[i], strerror(e));
		}
	}
	if (werr) {
		dfd = open(r->o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		for (int i = 0; i < 3 && dfd >= 0; i++) {
			char name[160];
			snprintf(name, sizeof(name), "%s%s", base, dump_ext[i]);
			unlinkat(dfd, name, 0);
		}
		if (dfd >= 0)
			close(dfd);
		evbuf_free(&b);
		r->failed++; /* not counted as a dump */
		return 1;
	}
	fprintf(stderr, "schedtop: record: %s: %s/%s.{json,trace.json,events.jsonl}: %zu events, "
			"%.1f s%s\n",
		reason, r->o->dir, base, b.n,
		b.n ? (double)(b.ev[b.n - 1].ts - b.ev[0].ts) / 1e9 : 0.0,
		truncated ? " (ring full: the window is truncated, --max-events)" : "");
	evbuf_free(&b);
	r->dumps++;
	return 0;
}

/* ------------------------------------------------------------- the loop */

static bool target_gone(int pid, int pidfd)
{
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		return poll(&p, 1, 0) > 0;
	}
	return mon_target_gone(pid);
}

int record_run(struct mon *m, struct stall *st, int pid, int pidfd, const struct rec_opts *o,
	       volatile sig_atomic_t *exiting)
{
	struct rec r = { .o = o, .pid = pid };
	struct snap *prev = calloc(1, sizeof(*prev)), *cur = calloc(1, sizeof(*cur));
	struct interval *iv = calloc(1, sizeof(*iv));
	struct lint_state ls = { 0 };
	bool prev_lint[LINT_NR] = { false };
	uint64_t last_lint_dump = 0, last_ns = (uint64_t)(o->last_s * 1e9);
	int rc = 0;
	r.ev.cap = o->max_events;
	r.ev.ev = calloc(r.ev.cap, sizeof(*r.ev.ev));
	r.iv.cap = (size_t)ceil(o->last_s / o->interval) + 2;
	r.iv.iv = calloc(r.iv.cap, sizeof(*r.iv.iv));
	if (!prev || !cur || !iv || !r.ev.ev || !r.iv.iv) {
		fprintf(stderr, "schedtop: record: out of memory (--max-events %zu)\n", o->max_events);
		rc = 1;
		goto out;
	}
	if (record_dir_check(o->dir, NULL)) {
		rc = 1;
		goto out;
	}
	int e = mon_trace_start(m, on_event, &r.ev);
	if (e) {
		fprintf(stderr, "schedtop: record: ring buffer: %s\n", strerror(-e));
		rc = 1;
		goto out;
	}
	fprintf(stderr, "schedtop: recording pid %d: the last %g s, at most %zu events (%.1f MiB), "
			"dumps to %s on%s%s%s\n",
		pid, o->last_s, o->max_events,
		(double)(o->max_events * sizeof(struct weft_bpf_event)) / (1 << 20), o->dir,
		o->on & REC_ON_LINT ? " lint" : "", o->on & REC_ON_SIGNAL ? " SIGUSR1" : "",
		o->on & REC_ON_EXIT ? " exit" : "");
	/* as run_batch does: a row for every core the registry lists (also
	 * one that fired no probe since the attach, a worker stuck in a poll),
	 * and the depths and polls read from memory; without them the dumps'
	 * interval reports had no such row and no stuck-worker lint (found by
	 * a review) */
	stall_sample(st, now_ns());
	stall_sync_slots(st, m);
	mon_snapshot(m, prev);
	stall_fill_snap(st, prev); /* the first interval's polls count from these */
	uint64_t next = prev->ts_ns + (uint64_t)(o->interval * 1e9);
	bool gone = false;
	/* SIGINT/SIGTERM end with a last, partial interval report, as the
	 * target's exit does and as --batch does: the exit dump had none for
	 * the time since the last report (with `5` as the interval, 3 s of
	 * events and no report at all: found by a review) */
	bool stop = false;
	while (!stop && !gone) {
		stop = *exiting;
		int pr = stop ? 0 : mon_trace_poll(m, 50);
		if (pr < 0 && pr != -EINTR) {
			fprintf(stderr, "schedtop: record: ring buffer poll: %s\n", strerror(-pr));
			rc = 1;
			break;
		}
		uint64_t now = now_ns();
		stall_sample(st, now);
		ev_expire(&r.ev, now > last_ns ? now - last_ns : 0);
		gone = target_gone(pid, pidfd);
		if (dump_requested) {
			dump_requested = 0;
			/* a request --on does not take was dropped without a
			 * word: whoever sent it waited for a dump (a review) */
			if (!(o->on & REC_ON_SIGNAL))
				fprintf(stderr, "schedtop: record: SIGUSR1: no dump, --on does not "
						"list signal\n");
			else if (dump(&r, m, "signal", NULL, NULL))
				rc = 1;
		}
		if (now < next && !gone && !stop)
			continue;
		/* a signal just after a report: a sliver shorter than the
		 * shortest interval says nothing, and its counters, published
		 * every 61 ticks, can read as "no poll" */
		if (stop && !gone && now - prev->ts_ns < 10000000ull)
			break;
		next += (uint64_t)(o->interval * 1e9);
		if (next < now)
			next = now + (uint64_t)(o->interval * 1e9);
		stall_sync_slots(st, m);
		mon_snapshot(m, cur);
		stall_fill_snap(st, cur);
		r.ring_drops = cur->drops;
		interval_compute(iv, prev, cur, &ls);
		/* the same lints and latency as --batch --json (only the
		 * stall lints were made here: found by a review) */
		stall_lint(st, iv, now);
		stall_blocking_lint(st, iv, prev, cur);
		stall_latency(st, iv);
		char *text = NULL;
		size_t len = 0;
		FILE *mf = open_memstream(&text, &len);
		if (mf) {
			interval_print_json(mf, iv, pid, gone ? SCHEDTOP_END_EXITED
							: stop ? SCHEDTOP_END_SIGNAL : NULL);
			fclose(mf);
			if (len && text[len - 1] == '\n')
				text[len - 1] = '\0';
			iv_push(&r.iv, cur->ts_ns, text);
		}
		iv_expire(&r.iv, now > last_ns ? now - last_ns : 0);
		for (unsigned l = 0; l < LINT_NR; l++) {
			bool rising = iv->lint[l] && !prev_lint[l];
			prev_lint[l] = iv->lint[l];
			/* not from the signal's partial interval: the exit
			 * dump that follows holds the same window */
			if (!rising || !(o->on & REC_ON_LINT) || stop ||
			    (last_lint_dump && now - last_lint_dump < last_ns))
				continue;
			char reason[48];
			snprintf(reason, sizeof(reason), "lint-%s", lint_names[l]);
			if (dump(&r, m, reason, lint_names[l], iv->lint_detail[l]))
				rc = 1;
			last_lint_dump = now;
		}
		struct snap *x = prev;
		prev = cur;
		cur = x;
	}
	mon_trace_stop(m);
	if (o->on & REC_ON_EXIT && dump(&r, m, "exit", NULL, NULL))
		rc = 1;
	fprintf(stderr, "schedtop: record: %u dump%s written to %s", r.dumps, r.dumps == 1 ? "" : "s",
		o->dir);
	if (r.failed)
		fprintf(stderr, " (%u failed, see above)", r.failed);
	fputc('\n', stderr);
out:
	for (size_t i = 0; i < r.iv.n; i++)
		free(r.iv.iv[(r.iv.head + i) % r.iv.cap].json);
	free(r.iv.iv);
	free(r.ev.ev);
	free(prev);
	free(cur);
	free(iv);
	return rc;
}
