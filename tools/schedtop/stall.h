/*
 * stall.h - the long-poll lint: a core that has been in one poll longer
 * than LINT_LONG_POLL_MS, named while it is still stuck - task id, poll
 * function and spawn site, symbolized to function and file:line. Needs no
 * BPF: it reads the target's runtime registry and cores' counters (lib/
 * probe_abi.h) from the target's memory.
 */
#ifndef SCHEDTOP_STALL_H
#define SCHEDTOP_STALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "probe_abi.h"

struct sym_ctx;

#define STALL_MAX_CORES 64 /* per runtime */

struct stall_core {
	uint64_t seq, task, fn, site;       /* the poll last seen */
	uint64_t since_ns;                  /* when it was first seen */
	bool seen, confirmed;               /* confirmed: two reads agreed on it */
};

struct stall {
	int pid;
	uint64_t threshold_ns;
	struct sym_ctx *sym;                /* the target's symbols */
	int sym_err;
	uint64_t reg_addr;                  /* weft_probe_registry in the target */
	int reg_err;                        /* why it is not known (-errno) */
	struct weft_probe_registry reg;     /* last consistent copy */
	struct stall_core core[WEFT_PROBE_REG_SLOTS][STALL_MAX_CORES];
};

void stall_init(struct stall *st, int pid, uint64_t threshold_ns);

/* Read every runtime's cores' current polls at time `now_ns`. */
void stall_sample(struct stall *st, uint64_t now_ns);

/* The longest poll over the threshold, if any: sets iv's LINT_LONG_POLL
 * with the detail (symbolized). */
void stall_lint(struct stall *st, struct interval *iv, uint64_t now_ns);

void stall_fini(struct stall *st);

#endif /* SCHEDTOP_STALL_H */
