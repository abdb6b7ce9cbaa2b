/*
 * load.h - weft-load internals shared by load.c (command line, driver,
 * statistics, output) and shapes.c (the workload shapes).
 *
 * Vocabulary. A run issues *units* 0, 1, 2, ... (a wave of the skewed
 * shape, one fork-join tree, one burst, one ping-pong pair, one client
 * connection, ...). Each unit is a graph of *nodes*; a node is one spawned
 * task (poll task or fiber). The graph of unit k is a pure function of
 * (shape, seed, k): every parameter - wave size, tree shape, sleep lengths,
 * message sizes, the gaps between bursts - comes from hash(seed, k, node).
 * Each node has a 64-bit hash of its identity and parameters; the run adds
 * the hashes of the nodes that complete (a wrapping sum, so completion
 * order does not matter) and compares the sum with the one enumerated from
 * the generator alone (shape->enumerate) for the units issued.
 */
#ifndef WEFT_LOAD_H
#define WEFT_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <weft/weft.h>

/* ------------------------------------------------------------- hashing */

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
static inline uint64_t h2(uint64_t a, uint64_t b) { return mix64(a ^ mix64(b)); }
static inline uint64_t h3(uint64_t a, uint64_t b, uint64_t c) { return h2(h2(a, b), c); }
/* lo..hi inclusive from a hash */
static inline uint64_t hrange(uint64_t h, uint64_t lo, uint64_t hi)
{
	return lo + h % (hi - lo + 1);
}

/* ---------------------------------------------------------- statistics */

/* Log-linear histogram: 16 sub-buckets per power of two (error < 6.25%). */
#define HIST_SUB 16
#define HIST_N (61 * HIST_SUB)
unsigned hist_index(uint64_t v);
uint64_t hist_lower(unsigned i);
uint64_t hist_upper(unsigned i);

/* Graph sum: node count and wrapping sum of node hashes. */
struct gsum {
	uint64_t nodes;
	uint64_t digest;
};
static inline void gsum_add(struct gsum *g, uint64_t node_hash)
{
	g->nodes++;
	g->digest += node_hash;
}

/* ---------------------------------------------------------------- units */

struct unit {
	uint64_t idx;        /* k */
	uint64_t t_start;    /* intended start (open loop) or issue time */
	atomic_long refs;    /* 1 for the issuer + 1 per node not yet finished */
	atomic_bool lost;    /* a node was cancelled: the unit is incomplete */
};

/* A node's bookkeeping; embed it first in each task's state. */
struct node {
	struct unit *u;
	uint64_t t_spawn;
	uint64_t hash;
	bool done;
};

/* Take a unit reference and fill n (call before spawning n's task). */
void node_init(struct node *n, struct unit *u, uint64_t hash);
/* The node's task completed: record latency and hash, drop the unit ref. */
void node_done(struct node *n);
/* From a drop function: if the node did not complete, count it cancelled
 * and drop the unit ref. */
void node_drop(struct node *n);
/* Shape-specific operation (message round trip, timer firing, ...) with a
 * latency (0: none measured). */
void op_record(uint64_t latency_ns);
void op_error(void);

/* ---------------------------------------------------------------- shapes */

struct shape {
	const char *name;
	const char *help;
	bool open_loop;          /* default mode: open loop at default_rate */
	double default_rate;     /* units per second */
	unsigned default_conc;   /* units in flight (closed loop) */
	const char *ops_name;    /* what an op is, NULL: no ops */
	const char *op_latency;  /* what the op latency measures, NULL: none */
	int (*setup)(void);      /* before the first unit (may be NULL) */
	void (*teardown)(void);  /* after the last unit is issued (may be NULL) */
	bool (*drained)(void);   /* extra drain condition (may be NULL) */
	/* Issue unit u from the driver thread (an outside thread). */
	void (*start)(struct unit *u);
	/* Add the nodes of unit k to g without running anything. */
	void (*enumerate)(uint64_t k, struct gsum *g);
	/* Gap before unit k+1 in open loop, as a factor of 1/rate (mean 1). */
	double (*gap)(uint64_t k);
};

extern const struct shape *const load_shapes[];

/* Run context, set before setup. */
extern struct weft_runtime *load_rt;
extern uint64_t load_seed;

/* CPU work: about `iters` dependent additions. */
/* Spin `iters` + load_extra_spin iterations (--extra-spin). */
void spin(uint64_t iters);
extern uint64_t load_extra_spin;

#endif /* WEFT_LOAD_H */
