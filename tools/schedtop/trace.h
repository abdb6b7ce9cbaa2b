/*
 * trace.h - schedtop's trace mode without BPF: events (struct
 * weft_bpf_event, from the ring buffer or read back from JSON lines) to
 * JSON lines, to Chrome/Perfetto trace-event JSON, and to a text summary.
 * `schedtop convert` and the fixture tests drive the same functions.
 */
#ifndef SCHEDTOP_TRACE_H
#define SCHEDTOP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "weft.h"

struct evbuf {
	struct weft_bpf_event *ev;
	size_t n, cap;
};

int evbuf_push(struct evbuf *b, const struct weft_bpf_event *e); /* 0 or -ENOMEM */
void evbuf_free(struct evbuf *b);
void evbuf_sort(struct evbuf *b); /* by timestamp, stable */

const char *ev_type_name(unsigned type);

/* One JSON object per line. */
void trace_jsonl_write(FILE *f, const struct weft_bpf_event *e);
/* Append every event of a JSON lines file; 0, or -EINVAL on a bad line
 * (its number in *bad_line). */
int trace_jsonl_read(FILE *f, struct evbuf *b, size_t *bad_line);

struct trace_stats {
	size_t spans, flows, instants;
};
/* Chrome trace-event JSON: one track per worker (running / searching /
 * parked spans), steals as flow arrows victim -> thief. */
void trace_chrome_write(FILE *f, const struct evbuf *b, int pid, struct trace_stats *st);
/* Steals per worker, tasks per steal, park time percentiles. */
void trace_summary(FILE *f, const struct evbuf *b);

#endif /* SCHEDTOP_TRACE_H */
