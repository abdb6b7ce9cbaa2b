/*
 * prom.h - one snapshot of the BPF aggregates in the Prometheus text
 * exposition format (version 0.0.4), for `schedtop metrics`. No BPF here:
 * the same function formats live and recorded snapshots.
 *
 * Names follow the Prometheus conventions: prefix weft_, base units
 * (seconds), counters end in _total, histograms are cumulative _bucket
 * series with le= upper bounds (seconds, or tasks for the steal batch),
 * _count and, where the sum is known, _sum. Labels: runtime (the runtime's
 * id, its address in hex) and worker (the core index).
 */
#ifndef SCHEDTOP_PROM_H
#define SCHEDTOP_PROM_H

#include <stdio.h>
#include "model.h"

/* Write the scrape for `s` (pid: the process watched, for
 * weft_schedtop_target_info). */
void prom_write(FILE *f, const struct snap *s, int pid, const char *lib);

#endif /* SCHEDTOP_PROM_H */
