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

static bool open_sym(struct stall *st)
{
	if (!st->sym && !st->sym_err)
		st->sym_err = sym_open(&st->sym, st->pid);
	return st->sym != NULL;
}

/* A consistent copy of the registry: gen even and unchanged around it. */
static int read_registry(struct stall *st)
{
	if (!st->reg_addr) {
		if (!open_sym(st))
			return st->reg_err = st->sym_err;
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
	if (e)
		return st->reg_err = e;
	if (r.magic != WEFT_PROBE_REG_MAGIC)
		return st->reg_err = -EPROTO;
	if ((gen & 1) || gen != r.gen)
		return -EAGAIN; /* a runtime came or went: keep the last copy */
	st->reg = r;
	return st->reg_err = 0;
}

void stall_sample(struct stall *st, uint64_t now_ns)
{
	if (read_registry(st) && st->reg_err)
		return;
	for (unsigned s = 0; s < WEFT_PROBE_REG_SLOTS; s++) {
		const struct weft_probe_reg_slot *slot = &st->reg.slot[s];
		unsigned n = slot->rt ? (unsigned)slot->ncores : 0;
		if (n > STALL_MAX_CORES)
			n = STALL_MAX_CORES;
		for (unsigned i = 0; i < STALL_MAX_CORES; i++) {
			struct stall_core *c = &st->core[s][i];
			struct weft_probe_counters pc;
			if (i >= n || peek(st->pid, slot->counters + (uint64_t)i * slot->stride, &pc,
					   sizeof(pc))) {
				c->seen = false;
				continue;
			}
			uint64_t id = 0, fn = 0, site = 0;
			if (pc.cur_task &&
			    (peek(st->pid, pc.cur_task + st->reg.task_id_off, &id, sizeof(id)) ||
			     peek(st->pid, pc.cur_task + st->reg.task_poll_off, &fn, sizeof(fn)) ||
			     peek(st->pid, pc.cur_task + st->reg.task_spawn_off, &site, sizeof(site)))) {
				c->seen = false;
				continue;
			}
			if (c->seen && c->seq == pc.poll_count && c->task == id && c->fn == fn &&
			    c->site == site) {
				c->confirmed = true;
				continue;
			}
			c->seq = pc.poll_count;
			c->task = id;
			c->fn = fn;
			c->site = site;
			c->since_ns = now_ns;
			c->seen = true;
			c->confirmed = false;
		}
	}
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
	/* the detail is printed inside a JSON string */
	for (char *p = buf; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '?';
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
	char where[32], fn[128], site[128];
	if (nrt > 1)
		snprintf(where, sizeof(where), "runtime 0x%llx W%d",
			 (unsigned long long)st->reg.slot[ws].rt, wi);
	else
		snprintf(where, sizeof(where), "W%d", wi);
	name(st, c->fn, false, fn, sizeof(fn));
	if (c->site)
		name(st, c->site, true, site, sizeof(site));
	else
		snprintf(site, sizeof(site), "unknown");
	iv->lint[LINT_LONG_POLL] = true;
	snprintf(iv->lint_detail[LINT_LONG_POLL], sizeof(iv->lint_detail[0]),
		 "%s task %llu in one poll for %.2f s (still running): %s, spawned at %s", where,
		 (unsigned long long)c->task, (double)worst_ns / 1e9, fn, site);
}

void stall_fini(struct stall *st)
{
	sym_close(st->sym);
	st->sym = NULL;
}
