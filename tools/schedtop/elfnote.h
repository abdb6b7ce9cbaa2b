/*
 * elfnote.h - does an ELF file carry weft's USDT probes? Only the file's
 * note sections are read, not the file: `schedtop list` read every byte
 * of each process's executable and took 45 s with a 20 GiB (sparse) one
 * running (found by a review).
 */
#ifndef SCHEDTOP_ELFNOTE_H
#define SCHEDTOP_ELFNOTE_H

#include <stdbool.h>

/* Each note section is read up to this much, and all of them together up
 * to ELFNOTE_MAX_TOTAL: 65535 section headers naming the same 1 MiB as a
 * note section each had 64 GiB copied, 2.5 s per such process in
 * `schedtop list` (found by a review). */
#define ELFNOTE_MAX_SECTION (1u << 20)
#define ELFNOTE_MAX_TOTAL (16u << 20)

/* Does `path` hold a stapsdt note (NT_STAPSDT, owner "stapsdt") for the
 * probe weft:park? ELF32 or ELF64, either byte order; false for anything
 * else, a malformed header included. */
bool elf_has_weft_notes(const char *path);

#endif /* SCHEDTOP_ELFNOTE_H */
