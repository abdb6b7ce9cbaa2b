/*
 * sym.c - see sym.h. A thin layer over libdwfl (elfutils): one Dwfl
 * session per target process, its modules reported from one read of
 * /proc/PID/maps (dwfl_linux_proc_maps_report, see report()); symbols
 * from the ELF symbol tables, lines from the DWARF line tables (libdwfl
 * finds separate debug files itself).
 *
 * The ELF files are not opened by the paths in the maps: those are the
 * target's words. libdwfl's own dwfl_linux_proc_find_elf opened each path
 * as it stands, in schedtop's mount namespace and with schedtop's rights,
 * so a target run by nobody could map a library, delete it and leave a
 * symlink "lib.so (deleted)" to a root-only file, which root's schedtop
 * then parsed and printed symbols of; a target in another mount namespace
 * had the host's file of the same name parsed (found by a review).
 * find_elf below opens the path inside the target's root
 * (/proc/PID/root), or else the mapping itself (/proc/PID/map_files),
 * and uses the file only if it is the one the maps line names by device
 * and inode.
 *
 * A separate debug file is looked up the same way (find_debuginfo):
 * libdwfl's standard search opened, with schedtop's rights, whatever the
 * target left at "DIR/lib.so.debug" (or DIR/.debug/..., or the name in
 * the file's .gnu_debuglink), and used it unchecked when the file has no
 * build ID and no debuglink CRC: a link there to a root-only file had its
 * source files and lines printed for the target's addresses, and a link
 * to a FIFO blocked the symbolizer for good (found by a review). Now: by
 * build ID in the system's debug directories (libdwfl's own search, which
 * only takes absolute directories), else by name in the target's view of
 * the directories, only a regular file that the target's user could read
 * and that matches the build ID or the debuglink CRC when there is one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>

#include "sym.h"

/* One file-backed line of /proc/PID/maps, as read at the last refresh. */
struct sym_map {
	uint64_t start, end;
	unsigned dmaj, dmin;
	uint64_t ino;
	char *path; /* as the maps show it, " (deleted)" included */
};

struct sym_ctx {
	Dwfl *dwfl;
	int pid;
	struct sym_map *maps;
	size_t nmaps;
};

static char *debuginfo_path; /* NULL: libdwfl's default search path */

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp);

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name);

static const Dwfl_Callbacks callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static void maps_list_free(struct sym_map *maps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(maps[i].path);
	free(maps);
}

static void maps_free(struct sym_ctx *c)
{
	maps_list_free(c->maps, c->nmaps);
	c->maps = NULL;
	c->nmaps = 0;
}

/* The whole text of /proc/PID/maps, read once: what find_elf checks the
 * files against and what libdwfl reports the modules from (see
 * report()). *out is malloc'ed, NUL-terminated. 0 or -errno. */
static int maps_text(int pid, char **out, size_t *len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	int err = buf ? 0 : -ENOMEM;
	while (!err) {
		if (cap - n < 4096) {
			char *b = realloc(buf, cap * 2);
			if (!b) {
				err = -ENOMEM;
				break;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = -errno;
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The file-backed mappings in `text` (a read of /proc/PID/maps) with their
 * device and inode: what find_elf checks each file it opens against; and
 * the range of [vdso], 0-0 without one. 0 or -errno. */
static int maps_parse(const char *text, struct sym_map **out, size_t *nout, uint64_t *vdso_lo,
		      uint64_t *vdso_hi)
{
	struct sym_map *maps = NULL;
	size_t cap = 0, nmaps = 0;
	int err = 0;
	*vdso_lo = *vdso_hi = 0;
	for (const char *line = text; *line && !err;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		struct sym_map m = { 0 };
		int at = 0;
		char *l = strndup(line, ll);
		line += ll + (eol ? 1 : 0);
		if (!l) {
			err = -ENOMEM;
			break;
		}
		if (sscanf(l, "%" SCNx64 "-%" SCNx64 " %*s %*s %x:%x %" SCNu64 " %n", &m.start,
			   &m.end, &m.dmaj, &m.dmin, &m.ino, &at) != 5 || !at) {
			free(l);
			continue;
		}
		if (m.ino == 0 && !strcmp(l + at, "[vdso]")) {
			*vdso_lo = m.start;
			*vdso_hi = m.end;
		}
		if (m.ino == 0 || l[at] != '/') {
			free(l);
			continue;
		}
		if (nmaps == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct sym_map *n = realloc(maps, ncap * sizeof(*n));
			if (!n) {
				free(l);
				err = -ENOMEM;
				break;
			}
			maps = n;
			cap = ncap;
		}
		m.path = strdup(l + at);
		free(l);
		if (!m.path) {
			err = -ENOMEM;
			break;
		}
		maps[nmaps++] = m;
	}
	if (err) {
		maps_list_free(maps, nmaps);
		return err;
	}
	*out = maps;
	*nout = nmaps;
	return 0;
}

/* libdwfl's modules as they stand: name and range, and whether to keep. */
struct mod_list {
	struct mod_ent {
		char *name;
		Dwarf_Addr lo, hi;
		bool keep;
	} *v;
	size_t n, cap;
	bool oom;
};

static int list_mod(Dwfl_Module *m, void **userdata, const char *name, Dwarf_Addr base,
		    void *arg)
{
	(void)userdata;
	(void)base;
	struct mod_list *l = arg;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 32;
		struct mod_ent *v = realloc(l->v, ncap * sizeof(*v));
		if (!v) {
			l->oom = true;
			return DWARF_CB_ABORT;
		}
		l->v = v;
		l->cap = ncap;
	}
	struct mod_ent *e = &l->v[l->n];
	dwfl_module_info(m, NULL, &e->lo, &e->hi, NULL, NULL, NULL, NULL);
	e->name = strdup(name ? name : "");
	e->keep = true;
	if (!e->name) {
		l->oom = true;
		return DWARF_CB_ABORT;
	}
	l->n++;
	return DWARF_CB_OK;
}

static bool same_map(const struct sym_map *a, const struct sym_map *b)
{
	return a->start == b->start && a->end == b->end && a->dmaj == b->dmaj &&
	       a->dmin == b->dmin && a->ino == b->ino && !strcmp(a->path, b->path);
}

/*
 * Drop the modules whose file is not the one they were read from: every
 * mapping of the module in the old maps must be in the new ones, device
 * and inode included. libdwfl keeps a module reported again under the same
 * name and range, with the file it read before: a plugin rebuilt in place
 * (another file at the same path) and loaded again at the same addresses
 * was named with the old file's symbols (found by a review). The others
 * keep what libdwfl read of them.
 */
static void drop_changed(struct sym_ctx *c, const struct sym_map *maps, size_t n)
{
	struct mod_list l = { 0 };
	bool drop = false;
	dwfl_getmodules(c->dwfl, list_mod, &l, 0);
	for (size_t k = 0; k < l.n; k++) {
		struct mod_ent *e = &l.v[k];
		for (size_t i = 0; e->keep && i < c->nmaps; i++) {
			const struct sym_map *m = &c->maps[i];
			if (m->start < e->lo || m->end > e->hi || strcmp(m->path, e->name))
				continue;
			bool found = false;
			for (size_t j = 0; !found && j < n; j++)
				found = same_map(m, &maps[j]);
			e->keep = found;
		}
		drop |= !e->keep;
	}
	if (l.oom) { /* not known which: start over */
		drop = true;
		for (size_t k = 0; k < l.n; k++)
			l.v[k].keep = false;
	}
	if (drop) {
		dwfl_report_begin(c->dwfl);
		for (size_t k = 0; k < l.n; k++)
			if (l.v[k].keep)
				dwfl_report_module(c->dwfl, l.v[k].name, l.v[k].lo, l.v[k].hi);
		dwfl_report_end(c->dwfl, NULL, NULL);
	}
	for (size_t k = 0; k < l.n; k++)
		free(l.v[k].name);
	free(l.v);
}

/* Take `maps`, parsed from a read of the maps, as what the modules are
 * read from; on failure they are freed. */
static int maps_take(struct sym_ctx *c, struct sym_map *maps, size_t n)
{
	/* No file mapped: the process exited and is not reaped yet (a
	 * zombie's maps read empty; a live one maps at least its program).
	 * The symbols known are kept: refreshed to nothing, the final report
	 * after a target's exit named its latest stall by raw address. */
	if (!n) {
		maps_list_free(maps, n);
		return -ESRCH;
	}
	drop_changed(c, maps, n);
	maps_free(c);
	c->maps = maps;
	c->nmaps = n;
	return 0;
}

/* Open `path` without side effects (O_PATH: no FIFO or device is really
 * opened), and only if it is the regular file `m` names: then for
 * reading. The fd or -1. */
static int open_checked(const char *path, const struct sym_map *m)
{
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	struct stat st;
	int fd = -1;
	if (fstat(pfd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == m->ino &&
	    major(st.st_dev) == m->dmaj && minor(st.st_dev) == m->dmin) {
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	close(pfd);
	return fd;
}

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	(void)base;
	struct sym_ctx *c = *userdata;
	Dwarf_Addr lo = 0, hi = 0;
	*elfp = NULL;
	if (!c || !name || name[0] != '/')
		return -1; /* [vdso], [heap]: no file of the target to open */
	dwfl_module_info(mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
	for (size_t i = 0; i < c->nmaps; i++) {
		const struct sym_map *m = &c->maps[i];
		if (m->start < lo || m->end > hi || strcmp(m->path, name))
			continue;
		static const char del[] = " (deleted)";
		size_t pl = strlen(m->path), dl = sizeof(del) - 1;
		if (pl > dl && !strcmp(m->path + pl - dl, del))
			pl -= dl;
		char alt[PATH_MAX + 64];
		/* the target's own view of the path (another mount namespace,
		 * chroot); a symlink in it that leads out is caught by the
		 * device and inode check */
		snprintf(alt, sizeof(alt), "/proc/%d/root%.*s", c->pid, (int)pl, m->path);
		int fd = open_checked(alt, m);
		if (fd < 0) {
			/* deleted or replaced since: the mapping itself (needs
			 * CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) */
			snprintf(alt, sizeof(alt), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
				 c->pid, m->start, m->end);
			fd = open_checked(alt, m);
		}
		if (fd < 0)
			return -1;
		*file_name = strdup(alt);
		return fd;
	}
	return -1;
}

/* The target's filesystem uid and gid (what its file accesses are checked
 * against). 0 or -1. */
static int target_fsids(int pid, unsigned *uid, unsigned *gid)
{
	char p[64], line[256];
	unsigned v[4];
	int have = 0;
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	while (have != 3 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %u %u %u %u", &v[0], &v[1], &v[2], &v[3]) == 4) {
			*uid = v[3];
			have |= 1;
		} else if (sscanf(line, "Gid: %u %u %u %u", &v[0], &v[1], &v[2], &v[3]) == 4) {
			*gid = v[3];
			have |= 2;
		}
	}
	fclose(f);
	return have == 3 ? 0 : -1;
}

/* The CRC .gnu_debuglink records (CRC-32, as zlib's crc32) of all of fd,
 * an ELF file. */
static bool crc_matches(int fd, GElf_Word want)
{
	uint32_t tab[256];
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t r = i;
		for (int k = 0; k < 8; k++)
			r = (r >> 1) ^ (0xedb88320u & -(r & 1));
		tab[i] = r;
	}
	size_t cap = 1 << 16;
	unsigned char *buf = malloc(cap);
	uint32_t crc = 0xffffffffu;
	off_t off = 0;
	ssize_t n = -1;
	if (!buf || pread(fd, buf, SELFMAG, 0) != SELFMAG || memcmp(buf, ELFMAG, SELFMAG)) {
		free(buf);
		return false;
	}
	while ((n = pread(fd, buf, cap, off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			crc = tab[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
		off += n;
	}
	free(buf);
	return n == 0 && ~crc == want;
}

/* Does fd hold the debug file of mod: its build ID when mod has one, else
 * the debuglink's CRC when it gives one (0: none to check, as libdwfl). */
static bool debug_matches(Dwfl_Module *mod, int fd, GElf_Word crc)
{
	const unsigned char *id;
	GElf_Addr vaddr;
	int idlen = dwfl_module_build_id(mod, &id, &vaddr);
	if (idlen > 0) {
		Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		const void *did;
		ssize_t dlen = e ? dwelf_elf_gnu_build_id(e, &did) : -1;
		bool same = dlen == idlen && !memcmp(did, id, (size_t)idlen);
		elf_end(e);
		return same;
	}
	return !crc || crc_matches(fd, crc);
}

/* Open `path` for a debug file of the target: a regular file (no FIFO or
 * device is opened), not the main file itself, that the target's user
 * (fsuid, fsgid) may read by its mode bits - or anything for a target
 * running as root. The fd or -1. */
static int open_debug(const char *path, const struct stat *main_st, unsigned uid, unsigned gid)
{
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	struct stat st;
	int fd = -1;
	if (fstat(pfd, &st) == 0 && S_ISREG(st.st_mode) &&
	    !(st.st_dev == main_st->st_dev && st.st_ino == main_st->st_ino) &&
	    (uid == 0 || (st.st_uid == uid ? (st.st_mode & S_IRUSR) != 0
			  : st.st_gid == gid ? (st.st_mode & S_IRGRP) != 0
					      : (st.st_mode & S_IROTH) != 0))) {
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	close(pfd);
	return fd;
}

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	struct sym_ctx *c = *userdata;
	/* -1 without a build ID; also finds a dwz file by its own ID */
	int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name,
					      debuglink_file, debuglink_crc, debuginfo_file_name);
	if (fd >= 0)
		return fd;
	/* By name, in the directory of the path the maps give (modname),
	 * as the target sees it; file_name is where find_elf opened it. */
	unsigned uid = 0, gid = 0; /* target_fsids fills them */
	struct stat main_st = { 0 }; /* unknown: no file is inode 0 */
	if (!c || !modname || modname[0] != '/' || target_fsids(c->pid, &uid, &gid))
		return -1;
	if (file_name && stat(file_name, &main_st))
		memset(&main_st, 0, sizeof(main_st));
	static const char del[] = " (deleted)";
	size_t ml = strlen(modname), dl = sizeof(del) - 1;
	if (ml > dl && !strcmp(modname + ml - dl, del))
		ml -= dl;
	const char *slash = memrchr(modname, '/', ml);
	int dirl = (int)(slash - modname), basel = (int)(ml - (size_t)dirl - 1);
	char link[NAME_MAX + 8];
	if (debuglink_file) {
		if (snprintf(link, sizeof(link), "%s", debuglink_file) >= (int)sizeof(link))
			return -1;
	} else {
		snprintf(link, sizeof(link), "%.*s.debug", basel, slash + 1);
		debuglink_crc = 0;
	}
	/* libdwfl's default order: DIR, DIR/.debug, /usr/lib/debug/DIR */
	static const char *const fmt[] = { "/proc/%d/root%.*s/%s", "/proc/%d/root%.*s/.debug/%s",
					   "/proc/%d/root/usr/lib/debug%.*s/%s" };
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		char path[PATH_MAX + 64];
		if (snprintf(path, sizeof(path), fmt[i], c->pid, dirl, modname, link) >=
		    (int)sizeof(path))
			continue;
		fd = open_debug(path, &main_st, uid, gid);
		if (fd < 0)
			continue;
		if (debug_matches(mod, fd, debuglink_crc)) {
			*debuginfo_file_name = strdup(path);
			return fd;
		}
		close(fd);
	}
	return -1;
}

static int set_ctx(Dwfl_Module *m, void **userdata, const char *name, Dwarf_Addr base, void *arg)
{
	(void)m;
	(void)name;
	(void)base;
	*userdata = arg;
	return DWARF_CB_OK;
}

/*
 * Report the modules of `text`, one read of the maps, which `maps` (taken
 * over) and the vDSO's range were parsed from. The modules and the maps
 * find_elf checks their files against come from the same read: libdwfl's
 * dwfl_linux_proc_report read the maps again, after ours, and a library
 * mapped in between (the dynamic loader at work right after the target's
 * exec, or a dlopen) was a module whose file find_elf found in no line
 * it had. libdwfl keeps that failure with the module, and the module is
 * reported again, name and range unchanged, for as long as it stays
 * mapped: no symbol of the target's libc or libweft, and no runtime
 * registry, for the whole run (found by a review, 1 run in 13).
 */
static int report(struct sym_ctx *c, const char *text, size_t len, struct sym_map *maps,
		  size_t n, uint64_t vdso_lo, uint64_t vdso_hi)
{
	int e = maps_take(c, maps, n);
	if (e)
		return e;
	FILE *f = fmemopen((void *)text, len, "r");
	if (!f)
		return -errno;
	dwfl_report_begin(c->dwfl);
	/* 0, -1 (libdwfl's own failure) or an errno */
	int r = dwfl_linux_proc_maps_report(c->dwfl, f);
	fclose(f);
	/* as dwfl_linux_proc_report names it (it has no file: no symbols) */
	char vdso[32];
	snprintf(vdso, sizeof(vdso), "[vdso: %d]", c->pid);
	if (!r && vdso_hi > vdso_lo && !dwfl_report_module(c->dwfl, vdso, vdso_lo, vdso_hi))
		r = -1;
	if (dwfl_report_end(c->dwfl, NULL, NULL) != 0 && r == 0)
		r = -1;
	/* find_elf's way back to this session (the maps taken above) */
	dwfl_getmodules(c->dwfl, set_ctx, c, 0);
	if (r > 0)
		return -r;
	return r ? -EIO : 0;
}

/* Read the maps; with `if_changed`, report them only when their files
 * differ from the last read's. */
static int refresh(struct sym_ctx *c, bool if_changed)
{
	char *text = NULL;
	size_t len = 0, n = 0;
	struct sym_map *maps = NULL;
	uint64_t vlo = 0, vhi = 0;
	int e = maps_text(c->pid, &text, &len);
	if (e)
		return e == -ENOENT ? -ESRCH : e;
	e = maps_parse(text, &maps, &n, &vlo, &vhi);
	if (e) {
		free(text);
		return e;
	}
	bool same = if_changed && n == c->nmaps;
	for (size_t i = 0; same && i < n; i++)
		same = maps[i].start == c->maps[i].start && maps[i].end == c->maps[i].end &&
		       maps[i].dmaj == c->maps[i].dmaj && maps[i].dmin == c->maps[i].dmin &&
		       maps[i].ino == c->maps[i].ino && !strcmp(maps[i].path, c->maps[i].path);
	if (same)
		maps_list_free(maps, n);
	else
		e = report(c, text, len, maps, n, vlo, vhi);
	free(text);
	return e;
}

int sym_refresh(struct sym_ctx *c)
{
	return refresh(c, false);
}

int sym_sync(struct sym_ctx *c)
{
	return refresh(c, true);
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

/* A text cut to fit its buffer ends in "..." (a long C++ or Rust name
 * cut silently read as another name; found by a review) */
static void mark_cut(char *dst, size_t n, size_t wanted)
{
	if (n >= 4 && wanted >= n)
		memcpy(dst + n - 4, "...", 4);
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
	/* The address in the file: with no symbol (a stripped program) the
	 * address alone was all there was, and a PIE's or a library's
	 * address means nothing once the process is gone (a record dump
	 * read the next day): the file's own is what addr2line and a debug
	 * copy of the file take (found by a review). */
	Dwarf_Addr bias = 0;
	if (dwfl_module_getelf(m, &bias)) {
		out->rel = addr - bias;
		out->has_rel = true;
	}
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
	if (name) {
		copy(out->func, sizeof(out->func), name);
		mark_cut(out->func, sizeof(out->func), strlen(name));
		out->offset = off + (a != addr ? 1 : 0);
	}
	Dwfl_Line *line = dwfl_module_getsrc(m, a);
	if (line) {
		int lineno = 0;
		const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		if (file) {
			/* too long (a deep build tree): its end, where the
			 * file's name is, after "..."; cut at the buffer's end,
			 * the name printed was a piece of a directory's */
			size_t fl = strlen(file), keep = sizeof(out->file) - 4;
			if (fl >= sizeof(out->file))
				snprintf(out->file, sizeof(out->file), "...%s", file + fl - keep);
			else
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
	int w;
	if (s->func[0] && s->line)
		w = snprintf(buf, n, "%s+0x%llx (%s:%d)", s->func, (unsigned long long)s->offset,
			     file, s->line);
	else if (s->func[0])
		w = snprintf(buf, n, "%s+0x%llx [%s]", s->func, (unsigned long long)s->offset,
			     s->module[0] ? s->module : "?");
	else if (s->module[0] && s->has_rel)
		w = snprintf(buf, n, "0x%llx [%s+0x%llx]", (unsigned long long)addr, s->module,
			     (unsigned long long)s->rel);
	else
		w = snprintf(buf, n, "0x%llx [%s]", (unsigned long long)addr,
			     s->module[0] ? s->module : "?");
	if (w > 0)
		mark_cut(buf, n, (size_t)w);
}

void sym_close(struct sym_ctx *c)
{
	if (!c)
		return;
	if (c->dwfl)
		dwfl_end(c->dwfl);
	maps_free(c);
	free(c);
}
