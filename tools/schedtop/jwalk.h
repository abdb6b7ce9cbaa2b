/*
 * jwalk.h - a small JSON reader for the files schedtop compares (its own
 * --json lines, weft-load --json, trace JSON lines): it walks one JSON
 * value and hands every scalar leaf to a callback with its path,
 * "a.b[2].c". One allocation per walk; nesting is bounded (JWALK_MAX_DEPTH).
 */
#ifndef SCHEDTOP_JWALK_H
#define SCHEDTOP_JWALK_H

#include <stdbool.h>
#include <stddef.h>

#define JWALK_MAX_DEPTH 16
#define JWALK_MAX_PATH 256
#define JWALK_MAX_STR 4096

enum jwalk_kind { JW_NUM, JW_STR, JW_BOOL, JW_NULL };

struct jwalk_leaf {
	const char *path;   /* "key.sub[3].x"; "" for a top-level scalar */
	enum jwalk_kind kind;
	double num;         /* JW_NUM; JW_BOOL: 0 or 1 */
	const char *str;    /* JW_STR: the string, unescaped, NUL-terminated */
};

/* Return nonzero from the callback to stop the walk (jwalk returns it). */
typedef int (*jwalk_fn)(void *ctx, const struct jwalk_leaf *leaf);

/*
 * Walk the JSON value at the start of `s` (whitespace around it allowed,
 * nothing else after it). 0, the callback's nonzero value, or -EINVAL
 * (not JSON, nested deeper than JWALK_MAX_DEPTH, a path longer than
 * JWALK_MAX_PATH - 1 bytes, a string longer than JWALK_MAX_STR - 1 or
 * holding \u0000, which a C string cannot carry), -ENOMEM.
 */
int jwalk(const char *s, jwalk_fn fn, void *ctx);

/* Writing JSON strings: bytes that are not valid UTF-8 (a thread name the
 * kernel cut to 15 bytes inside a character) made schedtop's output
 * unreadable to strict parsers (found by a review). */
#include <stdio.h>
/* s as a JSON string, quoted: escapes, and U+FFFD for each invalid byte. */
void jw_print_str(FILE *f, const char *s);
/* In place, for text already inside a JSON string: quotes, backslashes,
 * control characters and invalid UTF-8 bytes become '?'. */
void jw_sanitize(char *s);

/* Text from the target (thread names, paths, symbols) for a terminal: a
 * name holding ESC sequences retitled or cleared the reader's terminal
 * (found by a review). Copies `s` into dst (n bytes, always terminated,
 * never cut inside an escape) with C0 controls, DEL, the C1 controls
 * U+0080-U+009F and bytes that are not UTF-8 written as \xNN (a byte
 * each). Returns dst. */
char *tx_safe(char *dst, size_t n, const char *s);

/* Bytes of the valid UTF-8 character at s (1-4), 0 if s starts none. */
size_t jw_utf8_len(const char *s);

/* The bytes of s's longest prefix of at most `max` bytes that does not end
 * inside a UTF-8 character: where to cut s to fit `max` bytes. */
size_t jw_utf8_fit(const char *s, size_t max);

/* s cut by snprintf at a buffer's end may end inside a UTF-8 character:
 * drops such a broken last character, in place. */
void jw_utf8_trim(char *s);

#endif /* SCHEDTOP_JWALK_H */
