/*
 * elfnote.c - see elfnote.h. The stapsdt notes are in .note.stapsdt, a
 * note section that is not loaded (no PT_NOTE segment covers it), so the
 * section headers are what is read: the ELF header, the section header
 * table, then each SHT_NOTE section, at most ELFNOTE_MAX_SECTION of it.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfnote.h"

#ifndef NT_STAPSDT
#define NT_STAPSDT 3
#endif

static uint64_t rd(const unsigned char *p, unsigned n, bool be)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
	return v;
}

static bool full_read(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	return true;
}

/* The notes of one section: a stapsdt note whose provider is weft and
 * probe park (the byte search this replaces looked for "weft\0park\0"). */
static bool notes_have_weft(const unsigned char *p, size_t len, size_t align, bool is64, bool be)
{
	size_t off = 0, addrs = is64 ? 24 : 12; /* pc, base, semaphore */
	while (len - off >= 12) {
		uint64_t namesz = rd(p + off, 4, be), descsz = rd(p + off + 4, 4, be);
		uint64_t type = rd(p + off + 8, 4, be);
		off += 12;
		uint64_t name_pad = (namesz + align - 1) & ~(uint64_t)(align - 1);
		uint64_t desc_pad = (descsz + align - 1) & ~(uint64_t)(align - 1);
		if (name_pad > len - off || desc_pad > len - off - name_pad)
			return false; /* a note past the section: malformed */
		const unsigned char *name = p + off, *desc = p + off + name_pad;
		off += name_pad + desc_pad;
		if (type != NT_STAPSDT || namesz != 8 || memcmp(name, "stapsdt", 8) ||
		    descsz < addrs + 10)
			continue;
		/* provider\0probe\0args\0 after the three addresses */
		if (!memcmp(desc + addrs, "weft\0park\0", 10))
			return true;
	}
	return false;
}

bool elf_has_weft_notes(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char eh[64], *sh = NULL, *note = NULL;
	bool found = false;
	if (!full_read(fd, eh, EI_NIDENT, 0) || memcmp(eh, ELFMAG, SELFMAG))
		goto out;
	bool is64 = eh[EI_CLASS] == ELFCLASS64, be = eh[EI_DATA] == ELFDATA2MSB;
	if ((!is64 && eh[EI_CLASS] != ELFCLASS32) || (!be && eh[EI_DATA] != ELFDATA2LSB))
		goto out;
	if (!full_read(fd, eh, is64 ? 64 : 52, 0))
		goto out;
	uint64_t shoff = is64 ? rd(eh + 0x28, 8, be) : rd(eh + 0x20, 4, be);
	unsigned shentsize = (unsigned)rd(eh + (is64 ? 0x3a : 0x2e), 2, be);
	unsigned shnum = (unsigned)rd(eh + (is64 ? 0x3c : 0x30), 2, be);
	/* shnum 0 with shoff set: more than 0xff00 sections, not a weft
	 * program; at most 65535 headers of 64 bytes otherwise */
	if (!shoff || !shnum || shentsize != (is64 ? 64u : 40u))
		goto out;
	sh = malloc((size_t)shnum * shentsize);
	note = malloc(ELFNOTE_MAX_SECTION);
	if (!sh || !note || !full_read(fd, sh, (size_t)shnum * shentsize, shoff))
		goto out;
	uint64_t budget = ELFNOTE_MAX_TOTAL; /* bytes of notes still to read */
	for (unsigned i = 0; i < shnum && !found && budget; i++) {
		const unsigned char *s = sh + (size_t)i * shentsize;
		if (rd(s + 4, 4, be) != SHT_NOTE)
			continue;
		uint64_t off = is64 ? rd(s + 0x18, 8, be) : rd(s + 0x10, 4, be);
		uint64_t size = is64 ? rd(s + 0x20, 8, be) : rd(s + 0x14, 4, be);
		uint64_t align = is64 ? rd(s + 0x30, 8, be) : rd(s + 0x20, 4, be);
		if (size > ELFNOTE_MAX_SECTION)
			size = ELFNOTE_MAX_SECTION;
		if (size > budget)
			size = budget;
		budget -= size;
		if (!size || !full_read(fd, note, (size_t)size, off))
			continue;
		found = notes_have_weft(note, (size_t)size, align == 8 ? 8 : 4, is64, be);
	}
out:
	free(sh);
	free(note);
	close(fd);
	return found;
}
