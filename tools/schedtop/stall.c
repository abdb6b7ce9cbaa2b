/*
 * stall.c - see stall.h.
 *
 * Around every poll the runtime writes, in the core's counters (lib/
 * probe_abi.h), poll_count (the poll's sequence number) and cur_task (the
 * task's address, 0 between polls); the task's id, poll function and spawn
 * site are read from the task itself, at offsets the registry gives. Where each core's
 * counters are, the target lists in weft_probe_registry, an exported
 * symbol schedtop finds with libdwfl - so runtimes created before schedtop
 * attached, whose worker_start probes it never saw, are covered too.
 * schedtop reads the registry and the counters with process_vm_readv, as
 * the user and after its privilege drop (the ptrace rule it checked before
 * attaching allows exactly this), every sample: each 50 ms while it waits
 * for the next interval (100 ms in the live view). The owner's stores are
 * plain, so one read may mix two polls; a poll counts once two reads agree
 * on all of them, and its age runs from the first of them: a lower
 * bound, short by at most one sample period. The runtime pays two plain
 * stores per poll and no clock read.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "jwalk.h"
#include "mon.h"
#include "stall.h"
#include "sym.h"

void stall_init(struct stall *st, int pid, uint64_t threshold_ns)
{
	memset(st, 0, sizeof(*st));
	st->pid = pid;
	st->threshold_ns = threshold_ns;
}

static int peek(int pid, uint64_t addr, void *buf, size_t n)
{
	struct iovec local = { buf, n };
	struct iovec remote = { (void *)(uintptr_t)addr, n };
	ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return r == (ssize_t)n ? 0 : (r < 0 ? -errno : -EIO);
}

/* The symbols, up to date with the target's maps once per sample: a
 * library unloaded and another mapped at its addresses kept the first
 * one's names (found by a review). An open that failed is tried again at
 * the next sample: `schedtop -- CMD` samples CMD as it execs, and maps
 * read then (opened before the exec, or before the kernel has mapped the
 * new program) are empty, which reads as a process gone. That failure was
 * kept for the whole run: no registry, no long-poll, no symbol (found by
 * a review, 1 run in 13). */
static bool open_sym(struct stall *st)
{
	if (!st->sym && (!st->sym_err || st->sym_gen != st->sample_gen)) {
		st->sym_err = sym_open(&st->sym, st->pid);
		st->sym_gen = st->sample_gen;
	} else if (st->sym && st->sym_gen != st->sample_gen) {
		sym_sync(st->sym);
		st->sym_gen = st->sample_gen;
	}
	return st->sym != NULL;
}

/* A consistent copy of the registry: gen even and unchanged around it. */
static int read_registry(struct stall *st)
{
	if (!st->reg_addr) {
		if (!open_sym(st))
			return st->reg_err = st->sym_err;
		/* the maps the symbols came from are another program's (exec) */
		if (st->reg_lost && sym_refresh(st->sym))
			return st->reg_err = -ENOENT;
		st->reg_lost = false;
		/* not found: maybe libweft is not loaded yet (dlopen) */
		if (sym_find(st->sym, "weft_probe_registry", &st->reg_addr) &&
		    (sym_refresh(st->sym) ||
		     sym_find(st->sym, "weft_probe_registry", &st->reg_addr)))
			return st->reg_err = -ENOENT;
	}
	struct weft_probe_registry r;
	unsigned long long gen;
	int e = peek(st->pid, st->reg_addr, &r, sizeof(r));
	if (!e)
		e = peek(st->pid, st->reg_addr + offsetof(struct weft_probe_registry, gen), &gen,
			 sizeof(gen));
	/* Unreadable, or no registry there: the target exec'd (the same pid,
	 * its libweft mapped elsewhere) and the address is the old program's.
	 * Looked up again at the next sample; the registry was never read
	 * again after an exec, and the latency and long-poll figures of the
	 * new program stayed empty (found by a review). */
	if (e || r.magic != WEFT_PROBE_REG_MAGIC) {
		st->reg_addr = 0;
		st->reg_lost = true;
		return st->reg_err = e ? e : -EPROTO;
	}
	/* The target wrote these: offsets that index our buffers must be
	 * small (a registry edited by the target sent ring_peek's memcpy to a
	 * wild address and crashed schedtop: found by a review). Addresses in
	 * the target are only ever read with process_vm_readv. */
	if (r.ring_head_off < -4096 || r.ring_head_off > 4096 || r.ring_tail_off < -4096 ||
	    r.ring_tail_off > 4096 || r.task_id_off > 4096 || r.task_poll_off > 4096 ||
	    r.task_spawn_off > 4096)
		return st->reg_err = -EPROTO;
	if ((gen & 1) || gen != r.gen)
		return -EAGAIN; /* a runtime came or went: keep the last copy */
	if (r.fiber_magic != WEFT_PROBE_FIBER_MAGIC) /* an older library: not these fields */
		r.fiber_magic = r.task_arg_off = r.fiber_poll = r.fiber_fn_off = r.fiber_poll_lazy =
			r.fiber_lazy_fn_off = r.counters_size = 0;
	st->reg = r;
	return st->reg_err = 0;
}

/*
 * A run queue's head and tail (ca: the core's counters), in one read when
 * they are close (they are 128 bytes apart): two reads were two system
 * calls, microseconds apart, and a busy ring moved meanwhile - a ping-pong
 * worker, pushing and popping millions of times a second, read as holding
 * 4-5 tasks (tail read after head: every push in between counted) where it
 * held at most one. One read copies both within nanoseconds.
 */
static int ring_peek(struct stall *st, uint64_t ca, uint64_t *head, uint32_t *tail)
{
	long long ho = st->reg.ring_head_off, to = st->reg.ring_tail_off;
	long long lo = ho < to ? ho : to;
	long long hi = ho + 8 > to + 4 ? ho + 8 : to + 4;
	unsigned char buf[512];
	if (hi - lo > (long long)sizeof(buf)) {
		int e = peek(st->pid, ca + (uint64_t)ho, head, sizeof(*head));
		return e ? e : peek(st->pid, ca + (uint64_t)to, tail, sizeof(*tail));
	}
	int e = peek(st->pid, ca + (uint64_t)lo, buf, (size_t)(hi - lo));
	if (e)
		return e;
	memcpy(head, buf + (ho - lo), sizeof(*head));
	memcpy(tail, buf + (to - lo), sizeof(*tail));
	return 0;
}

/* The function a task runs, from its poll function `poll`: that, or for a
 * fiber (poll is weft's fiber_poll or fiber_poll_lazy, which the registry
 * names) the fiber's own fn, read through the task's arg. *fiber says
 * which; 0 when the fiber's fn could not be read. */
static uint64_t task_fn(struct stall *st, uint64_t task, uint64_t poll, bool *fiber)
{
	const struct weft_probe_registry *r = &st->reg;
	*fiber = false;
	if (!poll || r->fiber_magic != WEFT_PROBE_FIBER_MAGIC ||
	    (poll != r->fiber_poll && poll != r->fiber_poll_lazy))
		return poll;
	*fiber = true;
	uint64_t arg = 0, fn = 0;
	uint64_t off = poll == r->fiber_poll ? r->fiber_fn_off : r->fiber_lazy_fn_off;
	if (peek(st->pid, task + r->task_arg_off, &arg, sizeof(arg)) || !arg ||
	    peek(st->pid, arg + off, &fn, sizeof(fn)))
		return 0;
	return fn;
}

static struct stall_acc *ended_get(struct stall *st, uint64_t rt);
static void end_core(struct stall *st, struct stall_acc *a, struct stall_core *c, unsigned i);

void stall_sample(struct stall *st, uint64_t now_ns)
{
	st->sample_gen++;
	int rr = read_registry(st);
	if (rr && st->reg_err) {
		/* No registry: the target exec'd (a task that execs a program
		 * without weft from inside its poll) or exited. A poll read
		 * before is not known to run on, and the cores it was read on
		 * are the old program's: the long-poll lint said "still
		 * running", its age growing, for as long as the new program
		 * ran (found by a review). */
		for (unsigned s = 0; s < WEFT_PROBE_REG_SLOTS; s++)
			for (unsigned i = 0; i < STALL_MAX_CORES; i++)
				st->core[s][i].seen = st->core[s][i].confirmed = false;
		return;
	}
	if (!rr)
		st->reg_reads++;
	for (unsigned s = 0; s < WEFT_PROBE_REG_SLOTS; s++) {
		const struct weft_probe_reg_slot *slot = &st->reg.slot[s];
		unsigned n = slot->rt ? (unsigned)slot->ncores : 0;
		if (n > STALL_MAX_CORES)
			n = STALL_MAX_CORES;
		uint64_t ilen = 0;
		if (slot->rt && st->reg.inject_len[s] &&
		    !peek(st->pid, st->reg.inject_len[s], &ilen, sizeof(ilen))) {
			st->inject[s] = ilen;
			st->inject_ts[s] = now_ns;
		}
		if (st->slot_rt[s] != slot->rt) { /* another runtime */
			/* the one before ended: what it counted up to the last
			 * read is still reported (stall_latency) */
			bool counted = false; /* anything since a baseline */
			for (unsigned i = 0; i < STALL_MAX_CORES; i++)
				counted |= (st->core[s][i].h_seen && st->core[s][i].h0_seen) ||
					   (st->core[s][i].stalls_seen && st->core[s][i].stalls0_seen);
			if (st->slot_rt[s] && counted) {
				struct stall_acc *a = ended_get(st, st->slot_rt[s]);
				for (unsigned i = 0; i < STALL_MAX_CORES; i++)
					end_core(st, a, &st->core[s][i], i);
			}
			/* one an earlier read did not list was created since:
			 * everything its cores counted is new, from 0 (a runtime
			 * created during `trace` read 0 polls timed: its first
			 * read was the baseline, found by a review); one there at
			 * the first read is read from then on */
			bool born = slot->rt && st->reg_reads > 1;
			st->slot_rt[s] = slot->rt;
			for (unsigned i = 0; i < STALL_MAX_CORES; i++) {
				struct stall_core *c = &st->core[s][i];
				c->h_seen = false;
				c->h0_seen = c->stalls0_seen = born;
				memset(c->poll_h0, 0, sizeof(c->poll_h0));
				memset(c->wake_h0, 0, sizeof(c->wake_h0));
				c->stalls0 = 0;
				c->stalls_seen = c->st_new = false;
				c->st_count = 0;
			}
		}
		struct stall_acc *reborn = NULL;
		for (unsigned i = 0; i < STALL_MAX_CORES; i++) {
			struct stall_core *c = &st->core[s][i];
			struct weft_probe_counters pc;
			c->holder_tid = 0;
			if (i >= n || peek(st->pid, slot->counters + (uint64_t)i * slot->stride, &pc,
					   sizeof(pc))) {
				c->seen = false;
				continue;
			}
			if (st->reg.counters_size >= offsetof(struct weft_probe_counters, holder_tid) +
							 sizeof(pc.holder_tid))
				c->holder_tid = pc.holder_tid;
			c->park_word = pc.park_word;
			c->cur_now = pc.cur_task;
			/* A core's counts only grow: fewer than at the last read,
			 * and this is a new runtime at the old one's address (and
			 * slot). The old one's counts go to its ended entry; the
			 * new one's all count, from 0. */
			bool fewer = c->h_seen && pc.poll_count < c->polls;
			for (unsigned b = 0; c->h_seen && !fewer && b < WEFT_PROBE_LAT_BINS; b++)
				fewer = pc.poll_ns_log2[b] < c->poll_h[b] ||
					pc.wake_ns_log2[b] < c->wake_h[b];
			if (fewer) {
				struct stall_acc none; /* nothing since a baseline to report */
				memset(&none, 0, sizeof(none));
				if (!reborn && (c->h0_seen || c->stalls0_seen))
					reborn = ended_get(st, slot->rt);
				end_core(st, c->h0_seen || c->stalls0_seen ? reborn : &none, c, i);
				c->h0_seen = c->stalls0_seen = true;
			}
			uint64_t head = 0;
			uint32_t tail = 0;
			uint64_t ca = slot->counters + (uint64_t)i * slot->stride;
			if (!ring_peek(st, ca, &head, &tail) &&
			    (uint32_t)(tail - (uint32_t)head) <= 1024) {
				c->depth = (uint32_t)(tail - (uint32_t)head);
				c->depth_ts = now_ns;
			}
			c->polls = pc.poll_count;
			c->polls_ts = now_ns;
			memcpy(c->poll_h, pc.poll_ns_log2, sizeof(c->poll_h));
			memcpy(c->wake_h, pc.wake_ns_log2, sizeof(c->wake_h));
			c->h_seen = true;
			/* The runtime's stall count, and its latest stall when the
			 * count moved, read as a seqlock reader does: stall_seq
			 * even, the fields, stall_seq the same (probe_abi.h) */
			if (st->reg.counters_size >= offsetof(struct weft_probe_counters, stall_seq) +
							 sizeof(pc.stall_seq)) {
				c->stalls = pc.stall_count;
				c->stalls_seen = true;
				const uint64_t so = offsetof(struct weft_probe_counters, stall_seq);
				const uint64_t fo = offsetof(struct weft_probe_counters, stall_count);
				uint64_t s1 = 1, s2 = 0, f[5];
				_Static_assert(offsetof(struct weft_probe_counters, stall_age_ns) ==
						       offsetof(struct weft_probe_counters, stall_count) + 32,
					       "the stall fields are consecutive");
				if (pc.stall_count != c->st_count &&
				    !peek(st->pid, ca + so, &s1, sizeof(s1)) && !(s1 & 1) &&
				    !peek(st->pid, ca + fo, f, sizeof(f)) &&
				    !peek(st->pid, ca + so, &s2, sizeof(s2)) && s1 == s2) {
					c->st_count = f[0];
					c->st_task = f[1];
					c->st_fn = f[2];
					c->st_site = f[3];
					c->st_age = f[4];
					c->st_new = true;
				}
			} else {
				c->stalls_seen = false;
			}
			uint64_t id = 0, fn = 0, site = 0;
			bool fiber = false;
			if (pc.cur_task &&
			    (peek(st->pid, pc.cur_task + st->reg.task_id_off, &id, sizeof(id)) ||
			     peek(st->pid, pc.cur_task + st->reg.task_poll_off, &fn, sizeof(fn)) ||
			     peek(st->pid, pc.cur_task + st->reg.task_spawn_off, &site, sizeof(site)))) {
				c->seen = false;
				continue;
			}
			/* a fiber: its own fn, not weft's fiber_poll (found by a review) */
			if (pc.cur_task)
				fn = task_fn(st, pc.cur_task, fn, &fiber);
			if (c->seen && c->seq == pc.poll_count && c->task == id && c->fn == fn &&
			    c->site == site) {
				c->confirmed = true;
				continue;
			}
			c->seq = pc.poll_count;
			c->task = id;
			c->cur_addr = pc.cur_task;
			c->fn = fn;
			c->fiber = fiber;
			c->site = site;
			c->since_ns = now_ns;
			c->seen = true;
			c->confirmed = false;
		}
	}
}

/*
 * Core c's state as its counters tell it, for a core the BPF side has
 * none for: no thread holds it (holder_tid 0: retired), stopped; its
 * thread's parker word says it sleeps in its park (on the futex, or in
 * the I/O driver's wait), parked; inside a poll (cur_task), running;
 * else awake between polls, searching. 0: not known (the registry not
 * read, the word unreadable). Workers asleep in their parks since
 * before the attach fire no probe, and read unknown for good on an
 * idle runtime (found by a review).
 */
static unsigned mem_state(struct stall *st, const struct stall_core *c)
{
	if (st->reg_err || !c->seen)
		return 0;
	if (st->reg.counters_size >= offsetof(struct weft_probe_counters, holder_tid) +
					 sizeof(c->holder_tid) &&
	    !c->holder_tid)
		return WEFT_ST_STOPPED;
	uint32_t word = 0;
	if (c->park_word && !peek(st->pid, c->park_word, &word, sizeof(word)) &&
	    (word == WEFT_PROBE_PARK_WORD_PARKED || word == WEFT_PROBE_PARK_WORD_DRIVER))
		return WEFT_ST_PARKED;
	if (c->cur_now)
		return WEFT_ST_RUNNING;
	return c->park_word ? WEFT_ST_SEARCHING : 0;
}

void stall_fill_snap(struct stall *st, struct snap *s)
{
	unsigned n = snap_ncores(s);
	for (unsigned k = 0; k < n && k < WEFT_BPF_MAX_CORES; k++) {
		const struct weft_bpf_core *bc = &s->cores[k];
		if (!bc->rt_id)
			continue;
		for (unsigned r = 0; r < WEFT_PROBE_REG_SLOTS; r++) {
			if (st->slot_rt[r] != bc->rt_id || st->reg.slot[r].rt != bc->rt_id ||
			    bc->core >= st->reg.slot[r].ncores || bc->core >= STALL_MAX_CORES)
				continue;
			const struct stall_core *c = &st->core[r][bc->core];
			if (c->depth_ts) {
				s->fresh_depth[k] = c->depth;
				s->fresh_depth_ts[k] = c->depth_ts;
			}
			if (c->polls_ts) {
				s->fresh_polls[k] = c->polls;
				s->fresh_polls_ts[k] = c->polls_ts;
			}
			unsigned ms = bc->state == WEFT_ST_UNKNOWN ? mem_state(st, c) : 0;
			if (ms) {
				s->fresh_state[k] = ms;
				s->fresh_state_ts[k] = c->polls_ts;
			}
			if (st->inject_ts[r] > s->fresh_inject_ts) {
				s->fresh_inject = st->inject[r];
				s->fresh_inject_ts = st->inject_ts[r];
			}
		}
	}
}

void stall_sync_slots(struct stall *st, struct mon *m)
{
	uint64_t rt[WEFT_BPF_MAX_CORES];
	unsigned core[WEFT_BPF_MAX_CORES];
	int n = stall_cores(st, rt, core, WEFT_BPF_MAX_CORES);
	for (int i = 0; i < n; i++)
		mon_add_core(m, rt[i], core[i]);
	/* Each core's thread, which the BPF side learns only from a probe of
	 * it: one asleep in its park since before the attach fires none, and
	 * if it woke and blocked in a task at once, blocking-call never
	 * fired (found by a review). */
	for (unsigned r = 0; r < WEFT_PROBE_REG_SLOTS; r++) {
		const struct weft_probe_reg_slot *slot = &st->reg.slot[r];
		if (!slot->rt || st->slot_rt[r] != slot->rt)
			continue;
		for (unsigned i = 0; i < slot->ncores && i < STALL_MAX_CORES; i++) {
			uint64_t tid = st->core[r][i].holder_tid;
			if (tid && tid <= UINT32_MAX)
				mon_seed_thread(m, slot->rt, i,
						slot->counters + (uint64_t)i * slot->stride,
						(unsigned)tid);
		}
	}
}

int stall_cores(const struct stall *st, uint64_t *rt, unsigned *core, int max)
{
	int n = 0;
	for (unsigned r = 0; r < WEFT_PROBE_REG_SLOTS; r++) {
		if (!st->reg.slot[r].rt || st->slot_rt[r] != st->reg.slot[r].rt)
			continue;
		for (unsigned i = 0; i < st->reg.slot[r].ncores && i < STALL_MAX_CORES && n < max; i++) {
			rt[n] = st->reg.slot[r].rt;
			core[n++] = i;
		}
	}
	return n;
}

static void name(struct stall *st, uint64_t addr, bool ret, char *buf, size_t n);

_Static_assert(MAX_RT >= WEFT_PROBE_REG_SLOTS + STALL_MAX_ENDED,
	       "room for every listed runtime and every ended one");

/* Add what core `i` (of a runtime) counted since its baselines to `a`:
 * histogram deltas, stall count delta and its latest stall, named; the
 * baselines move to the latest read. */
static void acc_core(struct stall *st, struct stall_acc *a, struct stall_core *c, unsigned i)
{
	if (c->h_seen) {
		if (c->h0_seen)
			for (unsigned b = 0; b < WEFT_PROBE_LAT_BINS; b++) {
				a->ph[b] += c->poll_h[b] >= c->poll_h0[b] ? c->poll_h[b] - c->poll_h0[b] : 0;
				a->wh[b] += c->wake_h[b] >= c->wake_h0[b] ? c->wake_h[b] - c->wake_h0[b] : 0;
			}
		memcpy(c->poll_h0, c->poll_h, sizeof(c->poll_h0));
		memcpy(c->wake_h0, c->wake_h, sizeof(c->wake_h0));
		c->h0_seen = true;
	}
	if (c->stalls_seen) {
		if (c->stalls0_seen && c->stalls >= c->stalls0) {
			a->stalls_known = true;
			a->stalls += c->stalls - c->stalls0;
			/* the longest of those read whole */
			if (c->st_new && c->stalls > c->stalls0 &&
			    (!a->last_stall[0] || c->st_age > a->last_age)) {
				char f[160], site[160];
				if (c->st_fn)
					name(st, c->st_fn, false, f, sizeof(f));
				else
					snprintf(f, sizeof(f), "(a task that ended as it was read)");
				name(st, c->st_site, true, site, sizeof(site));
				snprintf(a->last_stall, sizeof(a->last_stall),
					 "W%u task %llu %s, spawned at %s, over %.0f ms when counted", i,
					 (unsigned long long)c->st_task, f, site,
					 (double)c->st_age / 1e6);
				jw_utf8_trim(a->last_stall);
				a->last_age = c->st_age;
			}
		}
		c->stalls0 = c->stalls;
		c->stalls0_seen = true;
	}
	c->st_new = false;
}

/* The entry for runtime `rt`, ended in this sample (several of its cores
 * may be added to it). */
static struct stall_acc *ended_get(struct stall *st, uint64_t rt)
{
	for (unsigned k = 0; k < st->nended; k++)
		if (st->ended[k].rt == rt && st->ended[k].gen == st->sample_gen)
			return &st->ended[k];
	struct stall_acc *a;
	if (st->nended < STALL_MAX_ENDED) {
		a = &st->ended[st->nended++];
		memset(a, 0, sizeof(*a));
		a->rt = rt;
		a->gen = st->sample_gen;
	} else { /* merged into the last one */
		a = &st->ended[STALL_MAX_ENDED - 1];
		a->rt = 0;
		a->gen = 0;
	}
	a->runtimes++;
	return a;
}

/* Core `c` of a runtime that ended: what it counted since its baselines
 * goes to `a` (one more worker); the core starts from 0 for whatever
 * comes next in its slot. */
static void end_core(struct stall *st, struct stall_acc *a, struct stall_core *c, unsigned i)
{
	if (c->h_seen)
		a->workers++;
	acc_core(st, a, c, i);
	memset(c->poll_h, 0, sizeof(c->poll_h));
	memset(c->wake_h, 0, sizeof(c->wake_h));
	memset(c->poll_h0, 0, sizeof(c->poll_h0));
	memset(c->wake_h0, 0, sizeof(c->wake_h0));
	c->stalls = c->stalls0 = 0;
	c->st_count = 0;
}

static void lat_fill(struct rt_lat *l, const struct stall_acc *a)
{
	l->stalls_known = a->stalls_known;
	l->stalls = a->stalls;
	snprintf(l->last_stall, sizeof(l->last_stall), "%s", a->last_stall);
	for (unsigned b = 0; b < WEFT_PROBE_LAT_BINS; b++) {
		l->polls_timed += a->ph[b];
		l->wakes_timed += a->wh[b];
	}
	l->poll_p50_ns = hist_pct(a->ph, WEFT_PROBE_LAT_BINS, 50);
	l->poll_p99_ns = hist_pct(a->ph, WEFT_PROBE_LAT_BINS, 99);
	l->wake_p50_ns = hist_pct(a->wh, WEFT_PROBE_LAT_BINS, 50);
	l->wake_p99_ns = hist_pct(a->wh, WEFT_PROBE_LAT_BINS, 99);
}

void stall_latency(struct stall *st, struct interval *iv)
{
	iv->nlat = 0;
	for (unsigned s = 0; s < WEFT_PROBE_REG_SLOTS && iv->nlat < MAX_RT; s++) {
		const struct weft_probe_reg_slot *slot = &st->reg.slot[s];
		if (!slot->rt || st->slot_rt[s] != slot->rt)
			continue;
		struct stall_acc a;
		memset(&a, 0, sizeof(a));
		for (unsigned i = 0; i < STALL_MAX_CORES && i < slot->ncores; i++)
			acc_core(st, &a, &st->core[s][i], i);
		for (unsigned i = 0; i < STALL_MAX_CORES; i++)
			st->core[s][i].st_new = false;
		struct rt_lat *l = &iv->lat[iv->nlat++];
		memset(l, 0, sizeof(*l));
		l->rt = slot->rt;
		l->workers = (unsigned)slot->ncores;
		lat_fill(l, &a);
	}
	/* Runtimes destroyed (or re-created at their address) since: what
	 * they counted up to the last read. They were dropped, histograms and
	 * all - a runtime destroyed during `trace` had no latency line (found
	 * by a flaky test, schedtop_trace_late_rt). */
	for (unsigned k = 0; k < st->nended && iv->nlat < MAX_RT; k++) {
		struct rt_lat *l = &iv->lat[iv->nlat++];
		memset(l, 0, sizeof(*l));
		l->rt = st->ended[k].rt;
		l->workers = st->ended[k].workers;
		l->ended = st->ended[k].runtimes;
		lat_fill(l, &st->ended[k]);
	}
	st->nended = 0;
}

/* A symbol for `addr` in the target, its address when none can be had. */
static void name(struct stall *st, uint64_t addr, bool ret, char *buf, size_t n)
{
	struct sym_info si;
	int r = open_sym(st) ? sym_lookup(st->sym, addr, ret, &si) : st->sym_err;
	if (r == -ENOENT && st->sym && sym_refresh(st->sym) == 0) /* dlopen since */
		r = sym_lookup(st->sym, addr, ret, &si);
	if (r) {
		snprintf(buf, n, "0x%llx", (unsigned long long)addr);
		return;
	}
	sym_format(&si, addr, buf, n);
	jw_sanitize(buf); /* the detail is printed inside a JSON string */
}

/* A task's function as the lints name it: "fiber NAME (file:line)" for a
 * fiber's fn. */
static void fn_text(struct stall *st, uint64_t fn, bool fiber, char *buf, size_t n)
{
	char f[160];
	if (fiber && !fn) {
		snprintf(buf, n, "a fiber (its function unreadable)");
		return;
	}
	name(st, fn, false, f, sizeof(f));
	snprintf(buf, n, "%s%s", fiber ? "fiber " : "", f);
}

void stall_lint(struct stall *st, struct interval *iv, uint64_t now_ns)
{
	int ws = -1, wi = -1, nrt = 0;
	uint64_t worst_ns = 0;
	for (unsigned s = 0; s < WEFT_PROBE_REG_SLOTS; s++) {
		if (!st->reg.slot[s].rt)
			continue;
		nrt++;
		for (unsigned i = 0; i < STALL_MAX_CORES; i++) {
			const struct stall_core *c = &st->core[s][i];
			if (!c->seen || !c->confirmed || !c->task)
				continue;
			uint64_t age = now_ns - c->since_ns;
			if (age >= st->threshold_ns && age > worst_ns) {
				ws = (int)s;
				wi = (int)i;
				worst_ns = age;
			}
		}
	}
	if (ws < 0)
		return;
	const struct stall_core *c = &st->core[ws][wi];
	char where[32], fn[176], site[160];
	if (nrt > 1)
		snprintf(where, sizeof(where), "runtime 0x%llx W%d",
			 (unsigned long long)st->reg.slot[ws].rt, wi);
	else
		snprintf(where, sizeof(where), "W%d", wi);
	fn_text(st, c->fn, c->fiber, fn, sizeof(fn));
	if (c->site)
		name(st, c->site, true, site, sizeof(site));
	else
		snprintf(site, sizeof(site), "unknown");
	iv->lint[LINT_LONG_POLL] = true;
	snprintf(iv->lint_detail[LINT_LONG_POLL], sizeof(iv->lint_detail[0]),
		 "%s task %llu in one poll for %.2f s (still running): %s, spawned at %s", where,
		 (unsigned long long)c->task, (double)worst_ns / 1e9, fn, site);
	jw_utf8_trim(iv->lint_detail[LINT_LONG_POLL]); /* cut: never inside a character */
}

/* ------------------------------------------------------- blocking calls */

#if defined(__x86_64__)
static const struct { int nr; const char *name; } sysnames[] = {
	{ 0, "read" }, { 1, "write" }, { 2, "open" }, { 3, "close" }, { 7, "poll" },
	{ 17, "pread64" }, { 18, "pwrite64" }, { 19, "readv" }, { 20, "writev" },
	{ 23, "select" }, { 34, "pause" }, { 35, "nanosleep" }, { 42, "connect" },
	{ 43, "accept" }, { 44, "sendto" }, { 45, "recvfrom" }, { 46, "sendmsg" },
	{ 47, "recvmsg" }, { 61, "wait4" }, { 72, "fcntl" }, { 73, "flock" }, { 74, "fsync" },
	{ 75, "fdatasync" }, { 202, "futex" }, { 230, "clock_nanosleep" },
	{ 232, "epoll_wait" }, { 257, "openat" }, { 270, "pselect6" }, { 271, "ppoll" },
	{ 281, "epoll_pwait" }, { 288, "accept4" }, { 449, "futex_waitv" },
};
#elif defined(__aarch64__)
static const struct { int nr; const char *name; } sysnames[] = {
	{ 22, "epoll_pwait" }, { 56, "openat" }, { 57, "close" }, { 63, "read" },
	{ 64, "write" }, { 65, "readv" }, { 66, "writev" }, { 67, "pread64" },
	{ 72, "pselect6" }, { 73, "ppoll" }, { 82, "fsync" }, { 98, "futex" },
	{ 101, "nanosleep" }, { 115, "clock_nanosleep" }, { 202, "accept" },
	{ 203, "connect" }, { 206, "sendto" }, { 207, "recvfrom" }, { 211, "sendmsg" },
	{ 212, "recvmsg" }, { 242, "accept4" }, { 260, "wait4" }, { 449, "futex_waitv" },
};
#else
static const struct { int nr; const char *name; } sysnames[] = { { -2, "" } };
#endif

const char *stall_syscall_name(long long nr, char *buf, size_t n)
{
	if (nr < 0) {
		snprintf(buf, n, "no syscall (a page fault?)");
		return buf;
	}
	for (size_t i = 0; i < sizeof(sysnames) / sizeof(sysnames[0]); i++)
		if (sysnames[i].nr == nr) {
			snprintf(buf, n, "%s()", sysnames[i].name);
			return buf;
		}
	snprintf(buf, n, "syscall %lld", nr);
	return buf;
}

/* Is the instruction just before `ret` in the target a call? Then `ret`,
 * found on the stack, is a return address. */
static bool after_call(struct stall *st, uint64_t ret)
{
	unsigned char b[8];
	if (ret < 8 || peek(st->pid, ret - 8, b, sizeof(b)))
		return false;
#if defined(__x86_64__)
	if (b[3] == 0xe8)                             /* call rel32 */
		return true;
	if (b[6] == 0xff && (b[7] & 0x38) == 0x10)    /* call *reg */
		return true;
	if (b[5] == 0xff && (b[6] & 0x38) == 0x10)    /* call *disp8(reg) / *(reg) */
		return true;
	if (b[2] == 0xff && (b[3] & 0x38) == 0x10)    /* call *disp32(reg), *rip(rel) */
		return true;
	if (b[1] == 0xff && (b[2] & 0x38) == 0x10)    /* call *disp32(base,index) */
		return true;
	return false;
#elif defined(__aarch64__)
	uint32_t insn;
	memcpy(&insn, b + 4, 4);
	return (insn & 0xfc000000u) == 0x94000000u ||  /* bl */
	       (insn & 0xfffffc1fu) == 0xd63f0000u;    /* blr */
#else
	return false;
#endif
}

/* The user stack: the instruction the thread blocked at, then the return
 * addresses found on the copied stack (a word that points just after a
 * call instruction in mapped code). A scan, not an unwind: the libraries
 * on the path (libc) keep no frame pointers, and the copy is all there is
 * once the thread has run on. A stale return address left in a dead frame
 * may show; the first frames are the reliable ones. */
static void stack_text(struct stall *st, const struct weft_bpf_block_rec *r, char *buf, size_t n)
{
	size_t len = 0;
	char f[160];
	int frames = 0;
	name(st, r->ip, false, f, sizeof(f));
	len += (size_t)snprintf(buf + len, n - len, "%s", f);
	uint64_t last = 0;
	for (uint64_t i = 0; i < r->nstack && i < WEFT_BPF_STACK_WORDS && frames < 6 && len < n; i++) {
		uint64_t w = r->stack[i];
		struct sym_info si;
		if (w < 4096 || w == last || !st->sym || sym_lookup(st->sym, w, true, &si) ||
		    !si.func[0] || !after_call(st, w))
			continue;
		last = w;
		name(st, w, true, f, sizeof(f));
		len += (size_t)snprintf(buf + len, n - len, " < %s", f);
		frames++;
	}
	/* cut: "..." after the last whole character (at n - 4 it could
	 * split one, and the detail was not UTF-8; found by a review) */
	if (len >= n && n > 4)
		memcpy(buf + jw_utf8_fit(buf, n - 4), "...", 4);
}

/* The module of the first frame outside the C library: the code that made
 * the call. */
static bool is_libc(const char *m)
{
	return !strncmp(m, "libc.so", 7) || !strncmp(m, "libc-", 5) || !strncmp(m, "ld-linux", 8) ||
	       !strncmp(m, "libpthread", 10) || !strncmp(m, "[vdso", 5) || !m[0];
}

/* Did weft itself sleep (its inject lock, say, whose holder was
 * preempted), not the task's own code? Not a blocking call in a task. */
static bool made_by_weft(struct stall *st, const struct weft_bpf_block_rec *r)
{
	struct sym_info si;
	if (!open_sym(st))
		return false;
	if (!sym_lookup(st->sym, r->ip, false, &si) && !is_libc(si.module))
		return !strncmp(si.module, "libweft", 7);
	for (uint64_t i = 0; i < r->nstack && i < WEFT_BPF_STACK_WORDS; i++) {
		uint64_t w = r->stack[i];
		if (w < 4096 || sym_lookup(st->sym, w, true, &si) || !si.func[0] ||
		    is_libc(si.module) || !after_call(st, w))
			continue;
		return !strncmp(si.module, "libweft", 7);
	}
	return false;
}

void stall_blocking_lint(struct stall *st, struct interval *iv, const struct snap *prev,
			 const struct snap *cur)
{
	const struct weft_bpf_block_rec *worst = NULL;
	uint64_t worst_ns = 0, thr = (uint64_t)LINT_BLOCKING_MS * 1000000ull;
	int wcore = -1;
	bool ongoing = false;
	for (unsigned i = 0; i < iv->workers && i < WEFT_BPF_MAX_CORES; i++) {
		const struct weft_bpf_block *b = &cur->blocks[i];
		if (b->cur.start_ts && cur->ts_ns > b->cur.start_ts &&
		    cur->ts_ns - b->cur.start_ts >= thr && cur->ts_ns - b->cur.start_ts > worst_ns &&
		    !made_by_weft(st, &b->cur)) {
			worst = &b->cur;
			worst_ns = cur->ts_ns - b->cur.start_ts;
			wcore = (int)i;
			ongoing = true;
		}
		if (b->done.start_ts && b->done.end_ts > prev->ts_ns &&
		    b->done.end_ts - b->done.start_ts >= thr &&
		    b->done.end_ts - b->done.start_ts > worst_ns && !made_by_weft(st, &b->done)) {
			worst = &b->done;
			worst_ns = b->done.end_ts - b->done.start_ts;
			wcore = (int)i;
			ongoing = false;
		}
	}
	if (!worst)
		return;
	open_sym(st);
	char sc[64], fn[160], stack[400], task[200];
	uint64_t id = 0, pf = 0;
	struct stall_block_name *bn = &st->block_name[wcore];
	bool same = bn->start_ts == worst->start_ts && bn->task == worst->task;
	if (!peek(st->pid, worst->task + st->reg.task_id_off, &id, sizeof(id)) &&
	    !peek(st->pid, worst->task + st->reg.task_poll_off, &pf, sizeof(pf)) && st->reg.magic) {
		bool fiber;
		uint64_t uf = task_fn(st, worst->task, pf, &fiber);
		fn_text(st, uf, fiber, fn, sizeof(fn));
		snprintf(task, sizeof(task), "task %llu (%s)", (unsigned long long)id, fn);
		stack_text(st, worst, stack, sizeof(stack));
		bn->start_ts = worst->start_ts;
		bn->task = worst->task;
		snprintf(bn->task_text, sizeof(bn->task_text), "%s", task);
		snprintf(bn->stack, sizeof(bn->stack), "%s", stack);
	} else if (same) {
		/* the target's memory is gone (it exited): the episode as it
		 * was named while it ran */
		snprintf(task, sizeof(task), "%s", bn->task_text);
		snprintf(stack, sizeof(stack), "%s", bn->stack);
	} else {
		/* an episode not named before: the task the core's poll was
		 * last read in, if it is this one (stall_sample reads it every
		 * 50 ms while the target runs) */
		const struct stall_core *c = NULL;
		for (unsigned r = 0; r < WEFT_PROBE_REG_SLOTS && !c; r++)
			if (st->slot_rt[r] && st->slot_rt[r] == cur->cores[wcore].rt_id &&
			    cur->cores[wcore].core < STALL_MAX_CORES)
				c = &st->core[r][cur->cores[wcore].core];
		if (c && c->cur_addr == worst->task && c->task) {
			fn_text(st, c->fn, c->fiber, fn, sizeof(fn));
			snprintf(task, sizeof(task), "task %llu (%s)", (unsigned long long)c->task, fn);
		} else {
			snprintf(task, sizeof(task), "task at 0x%llx", (unsigned long long)worst->task);
		}
		stack_text(st, worst, stack, sizeof(stack));
	}
	iv->lint[LINT_BLOCKING_CALL] = true;
	char where[48] = "";
	if (iv->runtimes > 1)
		snprintf(where, sizeof(where), "runtime 0x%llx ",
			 (unsigned long long)cur->cores[wcore].rt_id);
	snprintf(iv->lint_detail[LINT_BLOCKING_CALL], sizeof(iv->lint_detail[0]) - 1,
		 "%sW%u blocked in %s for %.2f s %s, inside a poll of %s; stack: %s", where,
		 cur->cores[wcore].core,
		 stall_syscall_name(worst->nr, sc, sizeof(sc)), (double)worst_ns / 1e9,
		 ongoing ? "(still blocked)" : "(returned)", task, stack);
	/* a long stack is cut at the detail's end: never inside a character */
	jw_utf8_trim(iv->lint_detail[LINT_BLOCKING_CALL]);
}

void stall_fini(struct stall *st)
{
	sym_close(st->sym);
	st->sym = NULL;
}
