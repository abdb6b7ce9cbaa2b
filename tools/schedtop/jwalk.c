/*
 * jwalk.c - see jwalk.h. Recursive descent over RFC 8259 JSON; \u escapes
 * are decoded to UTF-8 (surrogate pairs included).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwalk.h"

struct jw {
	const char *p;
	jwalk_fn fn;
	void *ctx;
	char path[JWALK_MAX_PATH];
	size_t plen;
	char str[JWALK_MAX_STR];
};

static void ws(struct jw *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
		else return -EINVAL;
	}
	*out = v;
	return 0;
}

/* A string at j->p (the opening quote) into buf. */
static int string(struct jw *j, char *buf, size_t n)
{
	size_t k = 0;
	j->p++;
	for (;;) {
		unsigned char c = (unsigned char)*j->p++;
		unsigned cp;
		if (c == '"')
			break;
		if (c < 0x20)
			return -EINVAL; /* NUL (end of input) or a raw control byte */
		if (c != '\\') {
			if (k + 1 >= n)
				return -EINVAL;
			buf[k++] = (char)c;
			continue;
		}
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"': case '\\': case '/': cp = c; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (hex4(j->p, &cp))
				return -EINVAL;
			j->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;
				if (j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -EINVAL;
				j->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return -EINVAL;
			} else if (cp == 0) {
				/* leaves are C strings: a NUL would cut the
				 * value short without a word */
				return -EINVAL;
			}
			break;
		default:
			return -EINVAL;
		}
		char u[4];
		size_t ul;
		if (cp < 0x80) { u[0] = (char)cp; ul = 1; }
		else if (cp < 0x800) { u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3f)); ul = 2; }
		else if (cp < 0x10000) {
			u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u[2] = (char)(0x80 | (cp & 0x3f)); ul = 3;
		} else {
			u[0] = (char)(0xf0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f)); ul = 4;
		}
		if (k + ul >= n)
			return -EINVAL;
		memcpy(buf + k, u, ul);
		k += ul;
	}
	buf[k] = '\0';
	return 0;
}

static int leaf(struct jw *j, enum jwalk_kind kind, double num, const char *str)
{
	struct jwalk_leaf l = { .path = j->path, .kind = kind, .num = num, .str = str };
	return j->fn(j->ctx, &l);
}

/* Number syntax of RFC 8259 (strtod alone would take hex, inf, nan). */
static int number(struct jw *j, double *out)
{
	const char *s = j->p, *q = s;
	if (*q == '-')
		q++;
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
		while (*q >= '0' && *q <= '9')
			q++;
	else
		return -EINVAL;
	if (*q == '.') {
		q++;
		if (!(*q >= '0' && *q <= '9'))
			return -EINVAL;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!(*q >= '0' && *q <= '9'))
			return -EINVAL;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	*out = strtod(s, NULL);
	j->p = q;
	return 0;
}

static int value(struct jw *j, int depth);

static int push(struct jw *j, const char *fmt, const char *key, size_t idx)
{
	int n = key ? snprintf(j->path + j->plen, sizeof(j->path) - j->plen, fmt,
			       j->plen ? "." : "", key)
		    : snprintf(j->path + j->plen, sizeof(j->path) - j->plen, fmt, idx);
	if (n < 0 || (size_t)n >= sizeof(j->path) - j->plen)
		return -EINVAL;
	j->plen += (size_t)n;
	return 0;
}

static int object(struct jw *j, int depth)
{
	size_t base = j->plen;
	char key[JWALK_MAX_PATH];
	j->p++;
	ws(j);
	if (*j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		int r;
		ws(j);
		if (*j->p != '"' || string(j, key, sizeof(key)))
			return -EINVAL;
		ws(j);
		if (*j->p++ != ':')
			return -EINVAL;
		if ((r = push(j, "%s%s", key, 0)))
			return r;
		if ((r = value(j, depth + 1)))
			return r;
		j->plen = base;
		j->path[base] = '\0';
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != '}')
			return -EINVAL;
		return 0;
	}
}

static int array(struct jw *j, int depth)
{
	size_t base = j->plen;
	j->p++;
	ws(j);
	if (*j->p == ']') {
		j->p++;
		return 0;
	}
	for (size_t i = 0;; i++) {
		int r;
		if ((r = push(j, "[%zu]", NULL, i)))
			return r;
		if ((r = value(j, depth + 1)))
			return r;
		j->plen = base;
		j->path[base] = '\0';
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != ']')
			return -EINVAL;
		return 0;
	}
}

static int value(struct jw *j, int depth)
{
	double v;
	ws(j);
	switch (*j->p) {
	/* depth counts the containers around this value: at most
	 * JWALK_MAX_DEPTH of them, empty or not (the check on leaves alone
	 * let an empty innermost container one level deeper through) */
	case '{': return depth < JWALK_MAX_DEPTH ? object(j, depth) : -EINVAL;
	case '[': return depth < JWALK_MAX_DEPTH ? array(j, depth) : -EINVAL;
	case '"':
		if (string(j, j->str, sizeof(j->str)))
			return -EINVAL;
		return leaf(j, JW_STR, 0, j->str);
	case 't':
		if (strncmp(j->p, "true", 4))
			return -EINVAL;
		j->p += 4;
		return leaf(j, JW_BOOL, 1, NULL);
	case 'f':
		if (strncmp(j->p, "false", 5))
			return -EINVAL;
		j->p += 5;
		return leaf(j, JW_BOOL, 0, NULL);
	case 'n':
		if (strncmp(j->p, "null", 4))
			return -EINVAL;
		j->p += 4;
		return leaf(j, JW_NULL, 0, NULL);
	default:
		if (number(j, &v))
			return -EINVAL;
		return leaf(j, JW_NUM, v, NULL);
	}
}

int jwalk(const char *s, jwalk_fn fn, void *ctx)
{
	struct jw *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->p = s;
	j->fn = fn;
	j->ctx = ctx;
	j->plen = 0;
	j->path[0] = '\0';
	int r = value(j, 0);
	if (!r) {
		ws(j);
		if (*j->p)
			r = -EINVAL;
	}
	free(j);
	return r;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	/* 0x80-0xc1 (continuation, overlong 2-byte) and 0xf5-0xff (past
	 * U+10FFFF, or never a lead byte) start nothing: 0xf5-0xff used to
	 * count as 3-byte leads, and "\xf8\x80\x80" passed (a review) */
	size_t n = p[0] >= 0xf0 && p[0] <= 0xf4   ? 4
		   : p[0] >= 0xe0 && p[0] <= 0xef ? 3
		   : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
						  : 0;
	if (!n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
		return 0; /* overlong, surrogate */
	if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
		return 0; /* overlong, past U+10FFFF */
	return n;
}

size_t jw_utf8_len(const char *s)
{
	return utf8_len((const unsigned char *)s);
}

/* Bytes of the (possibly cut) UTF-8 sequence a lead byte starts, 1 for
 * anything else. */
static size_t utf8_seq(unsigned char c)
{
	return c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

size_t jw_utf8_fit(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (p[i]) {
		size_t k = utf8_len(p + i);
		if (!k)
			k = 1; /* an invalid byte: one byte, as the printers take it */
		if (i + k > max)
			break;
		i += k;
	}
	return i;
}

void jw_utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;
	/* back over at most 3 continuation bytes to the last lead byte */
	while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char)s[i - 1] >= 0xc0 && !utf8_len((unsigned char *)s + i - 1) &&
	    utf8_seq((unsigned char)s[i - 1]) > n - (i - 1))
		s[i - 1] = '\0';
}

void jw_print_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);
		if (!n) {
			fputs("\\ufffd", f);
			p++;
		} else if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

void jw_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = utf8_len(p);
		if (!n || *p == '"' || *p == '\\' || *p < 0x20) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

char *tx_safe(char *dst, size_t n, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	if (!n)
		return dst;
	while (*p) {
		size_t k = utf8_len(p);
		bool esc = !k || *p < 0x20 || *p == 0x7f ||
			   (k == 2 && p[0] == 0xc2 && p[1] < 0xa0); /* C1 */
		if (esc) {
			/* the whole character of a C1 control, else one byte */
			size_t m = k == 2 ? 2 : 1;
			if (o + 4 * m >= n)
				break;
			for (size_t i = 0; i < m; i++)
				o += (size_t)snprintf(dst + o, n - o, "\\x%02x", p[i]);
			p += m;
		} else {
			if (o + k >= n)
				break;
			memcpy(dst + o, p, k);
			o += k;
			p += k;
		}
	}
	dst[o] = '\0';
	return dst;
}
