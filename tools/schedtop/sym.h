/*
 * sym.h - code addresses of a running process to function, file and line,
 * through elfutils' libdwfl: the modules from /proc/PID/maps, ELF symbol
 * tables, DWARF line tables (and separate debug files where installed).
 *
 * Runs after schedtop has dropped its capabilities, but root's schedtop
 * keeps CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE and may
 * read any file. So a module's file is never opened by the path the maps
 * show (the target's words): only through the target's own root
 * (/proc/PID/root/PATH) or the mapping itself (/proc/PID/map_files, which
 * needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), and used only if it is
 * the regular file of the maps line's device and inode. A module that
 * cannot be opened so has no symbols.
 */
#ifndef SCHEDTOP_SYM_H
#define SCHEDTOP_SYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sym_ctx;

struct sym_info {
	char func[128];   /* "" when no symbol covers the address */
	uint64_t offset;  /* address - function start */
	char file[256];   /* source file, "" without line information; a
			   * longer path is "..." and its last 252 bytes */
	int line;         /* 0 without line information */
	char module[128]; /* basename of the mapped file, "" when none maps it */
	uint64_t rel;     /* the address in the module's file (its ELF
			   * vaddr, as addr2line -e FILE takes it) ... */
	bool has_rel;     /* ... when the file could be read */
};

/* Report the modules `pid` maps now. 0 or -errno (-ESRCH: no such
 * process, -EACCES: its maps are not the caller's to read). */
int sym_open(struct sym_ctx **out, int pid);

/* Re-read the maps (after a dlopen in the target). 0 or -errno. */
int sym_refresh(struct sym_ctx *c);

/* Re-read the maps, and the modules when they changed since the last
 * read: a library unloaded and another mapped at its addresses (a plugin
 * host's dlclose, then dlopen) kept the first one's symbols, and a stall
 * in the second was named as a function of the first. So did another file
 * at the same path (a plugin rebuilt in place): a module whose mappings
 * changed device or inode is read again. 0 or -errno. */
int sym_sync(struct sym_ctx *c);

/* Symbolize `addr`. For a return address (a call site) pass
 * `return_address` true: the line is looked up one byte earlier, inside
 * the call instruction. 0 when at least the module is known; -ENOENT when
 * nothing maps the address. */
int sym_lookup(struct sym_ctx *c, uint64_t addr, bool return_address, struct sym_info *out);

/* The address of the data or function symbol `name` in any module of the
 * target (the first found; dynamic and static symbol tables). 0 or
 * -ENOENT. */
int sym_find(struct sym_ctx *c, const char *name, uint64_t *addr);

/* "func+0x1c (file.c:42)" / "func+0x1c [libfoo.so]" / "0x7f... [prog+0x1358]"
 * (no symbol: a stripped file, its address in the file) / "0x7f... [?]" */
void sym_format(const struct sym_info *s, uint64_t addr, char *buf, size_t n);

void sym_close(struct sym_ctx *c);

#endif /* SCHEDTOP_SYM_H */
