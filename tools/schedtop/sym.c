/*
 * sym.c - see sym.h. A thin layer over libdwfl (elfutils): one Dwfl
 * session per target process, its modules reported from /proc/PID/maps by
 * dwfl_linux_proc_report; symbols from the ELF symbol tables, lines from
 * the DWARF line tables (libdwfl finds separate debug files itself).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "sym.h"

struct sym_ctx {
	Dwfl *dwfl;
	int pid;
};

static char *debuginfo_path; /* NULL: libdwfl's default search path */

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

int sym_refresh(struct sym_ctx *c)
{
	dwfl_report_begin(c->dwfl);
	/* 0, -1 (libdwfl's own failure) or an errno from opening the maps */
	int r = dwfl_linux_proc_report(c->dwfl, c->pid);
	if (dwfl_report_end(c->dwfl, NULL, NULL) != 0 && r == 0)
		r = -1;
	if (r == ENOENT)
		return -ESRCH;
	if (r > 0)
		return -r;
	return r ? -EIO : 0;
}

int sym_open(struct sym_ctx **out, int pid)
{
	struct sym_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pid = pid;
	/* No debuginfod unless asked (SCHEDTOP_DEBUGINFOD=1): distributions set
	 * DEBUGINFOD_URLS in login shells, and for a stripped target libdwfl
	 * then made network requests from the sampling loop, up to 90 s each,
	 * deaf to SIGTERM (found by a review: the first report came after
	 * 268 s). The target, launched before this, keeps its environment. */
	const char *want = getenv("SCHEDTOP_DEBUGINFOD");
	if (!want || strcmp(want, "1"))
		unsetenv("DEBUGINFOD_URLS");
	c->dwfl = dwfl_begin(&callbacks);
	if (!c->dwfl) {
		free(c);
		return -ENOMEM;
	}
	int r = sym_refresh(c);
	if (r) {
		sym_close(c);
		return r;
	}
	*out = c;
	return 0;
}

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int sym_lookup(struct sym_ctx *c, uint64_t addr, bool return_address, struct sym_info *out)
{
	memset(out, 0, sizeof(*out));
	/* A return address points after the call: its line is the call's. */
	Dwarf_Addr a = return_address && addr ? addr - 1 : addr;
	Dwfl_Module *m = dwfl_addrmodule(c->dwfl, a);
	if (!m)
		return -ENOENT;
	const char *mname = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	if (mname) {
		const char *slash = strrchr(mname, '/');
		copy(out->module, sizeof(out->module), slash ? slash + 1 : mname);
	}
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
	if (name) {
		copy(out->func, sizeof(out->func), name);
		out->offset = off + (a != addr ? 1 : 0);
	}
	Dwfl_Line *line = dwfl_module_getsrc(m, a);
	if (line) {
		int lineno = 0;
		const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		if (file) {
			copy(out->file, sizeof(out->file), file);
			out->line = lineno;
		}
	}
	return 0;
}

struct find {
	const char *name;
	uint64_t addr;
	bool found;
};

static int find_in_module(Dwfl_Module *m, void **userdata, const char *mname, Dwarf_Addr base,
			  void *arg)
{
	struct find *f = arg;
	int n = dwfl_module_getsymtab(m);
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *s = dwfl_module_getsym_info(m, i, &sym, &addr, NULL, NULL, NULL);
		if (s && sym.st_shndx != SHN_UNDEF && !strcmp(s, f->name)) {
			f->addr = addr;
			f->found = true;
			return DWARF_CB_ABORT;
		}
	}
	return DWARF_CB_OK;
}

int sym_find(struct sym_ctx *c, const char *name, uint64_t *addr)
{
	struct find f = { .name = name };
	dwfl_getmodules(c->dwfl, find_in_module, &f, 0);
	if (!f.found)
		return -ENOENT;
	*addr = f.addr;
	return 0;
}

void sym_format(const struct sym_info *s, uint64_t addr, char *buf, size_t n)
{
	const char *file = strrchr(s->file, '/');
	file = file ? file + 1 : s->file;
	if (s->func[0] && s->line)
		snprintf(buf, n, "%s+0x%llx (%s:%d)", s->func, (unsigned long long)s->offset, file,
			 s->line);
	else if (s->func[0])
		snprintf(buf, n, "%s+0x%llx [%s]", s->func, (unsigned long long)s->offset,
			 s->module[0] ? s->module : "?");
	else
		snprintf(buf, n, "0x%llx [%s]", (unsigned long long)addr,
			 s->module[0] ? s->module : "?");
}

void sym_close(struct sym_ctx *c)
{
	if (!c)
		return;
	if (c->dwfl)
		dwfl_end(c->dwfl);
	free(c);
}
