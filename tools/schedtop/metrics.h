/*
 * metrics.h - `schedtop metrics`: the runtime's per-worker counters and
 * histograms (prom.c) served over HTTP for Prometheus to scrape
 * (--listen ADDR:PORT, GET /metrics), or printed once (--once).
 */
#ifndef SCHEDTOP_METRICS_H
#define SCHEDTOP_METRICS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct mon;
struct stall;

/* Bind and listen on "ADDR:PORT" ("127.0.0.1:9464", "[::1]:9464",
 * ":9464" for every address; PORT 0..65535, 0 for any free port). Done
 * before the attach, as the user. Returns the socket, with `shown` the
 * ADDR as given and the port bound ("127.0.0.1:41235" for port 0), or
 * -errno with `err` saying why. */
int metrics_listen(const char *addr, char *shown, size_t shown_n, char *err, size_t n);

/* Serve scrapes on `fd` until the target exits (pidfd readable) or
 * *exiting. Each scrape reads the target's registry (`st`: every core it
 * lists has its series, a worker that fired no probe too) and takes a
 * fresh snapshot. 0, or 1 on a failure. */
int metrics_serve(struct mon *m, struct stall *st, int fd, int pid, int pidfd,
		  volatile sig_atomic_t *exiting);

/* --once: wait `interval` seconds (or until the target exits), print one
 * scrape on stdout. */
int metrics_once(struct mon *m, struct stall *st, int pid, int pidfd, double interval,
		 volatile sig_atomic_t *exiting);

#endif /* SCHEDTOP_METRICS_H */
