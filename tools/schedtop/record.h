/*
 * record.h - `schedtop record`: a flight recorder. It keeps the last
 * `--last` seconds of the runtime's events (steal, steal_fail, park,
 * unpark, notify, overflow, from the BPF ring buffer) and of its interval
 * reports in bounded memory, and writes the window out - a Perfetto /
 * Chrome trace-event file, the events as JSON lines, and a JSON snapshot
 * with the interval reports - when a lint fires, on SIGUSR1 to schedtop,
 * and when it stops. Dumps are named by UTC time and reason:
 *   DIR/20261202T195803.123Z-lint-long-poll.{json,trace.json,events.jsonl}
 */
#ifndef SCHEDTOP_RECORD_H
#define SCHEDTOP_RECORD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct mon;
struct stall;


struct rec_opts {
	double last_s;       /* the window */
	double interval;     /* interval reports (and lint checks) every this many s */
	const char *dir;
	unsigned on;         /* REC_ON_* (args.h) */
	size_t max_events;   /* the event ring's capacity */
};

/* Catch SIGUSR1 (a dump request) from now on: called at the start, before
 * the attach, so that a request while it attaches is a dump once recording
 * runs. SIGUSR1's default action ends the process: a request sent in the
 * first ~0.1-0.3 s (the attach) killed schedtop, status 138, nothing said,
 * nothing recorded (found by a review). */
void record_catch_usr1(void);

/* DIR can take dumps: made if missing (*created then true), a directory
 * schedtop may write. Called before the attach - `record -o FILE -- CMD`
 * started CMD, attached, then refused FILE and stopped CMD (found by a
 * review) - and again by record_run. 0, or -1 said on stderr. */
int record_dir_check(const char *dir, bool *created);

/* Record until the target exits or *exiting. The BPF side must have been
 * opened with trace = true. 0, or 1 when a dump could not be written. */
int record_run(struct mon *m, struct stall *st, int pid, int pidfd, const struct rec_opts *o,
	       volatile sig_atomic_t *exiting);

#endif /* SCHEDTOP_RECORD_H */
