/*
 * test_jwalk.c - the JSON reader behind `schedtop diff` (tools/schedtop/
 * jwalk.c): paths of nested values, escapes, and what it must refuse. No
 * BPF, no privileges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwalk.h"

static int failures;
#define CHECK(c, ...)                                                              \
	do {                                                                       \
		if (!(c)) {                                                        \
			failures++;                                                \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c); \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
		}                                                                  \
	} while (0)

struct acc {
	char out[2048];
	size_t n;
};

static int take(void *ctx, const struct jwalk_leaf *l)
{
	struct acc *a = ctx;
	int k;
	switch (l->kind) {
	case JW_NUM: k = snprintf(a->out + a->n, sizeof(a->out) - a->n, "%s=%g;", l->path, l->num); break;
	case JW_STR: k = snprintf(a->out + a->n, sizeof(a->out) - a->n, "%s='%s';", l->path, l->str); break;
	case JW_BOOL: k = snprintf(a->out + a->n, sizeof(a->out) - a->n, "%s=%s;", l->path, l->num ? "true" : "false"); break;
	default: k = snprintf(a->out + a->n, sizeof(a->out) - a->n, "%s=null;", l->path); break;
	}
	a->n += (size_t)k;
	return 0;
}

static void walk_ok(const char *json, const char *want)
{
	struct acc a = { .n = 0 };
	a.out[0] = '\0';
	int r = jwalk(json, take, &a);
	CHECK(r == 0, "%s: %d", json, r);
	CHECK(!strcmp(a.out, want), "%s:\n  got  %s\n  want %s", json, a.out, want);
}

static void walk_bad(const char *json)
{
	struct acc a = { .n = 0 };
	CHECK(jwalk(json, take, &a) == -EINVAL, "accepted %s", json);
}

static int stop_at_b(void *ctx, const struct jwalk_leaf *l)
{
	(void)ctx;
	return !strcmp(l->path, "b") ? 7 : 0;
}

/* jw_print_str's output for `s` equals `want` */
static void print_is(const char *s, const char *want)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return;
	jw_print_str(f, s);
	fclose(f);
	CHECK(!strcmp(buf, want), "jw_print_str:\n  got  %s\n  want %s", buf, want);
	free(buf);
}

static void sanitized_is(const char *s, const char *want)
{
	char b[256];
	snprintf(b, sizeof(b), "%s", s);
	jw_sanitize(b);
	CHECK(!strcmp(b, want), "jw_sanitize:\n  got  %s\n  want %s", b, want);
}

int main(void)
{
	/* invalid UTF-8 out: every byte of a sequence that is not UTF-8 is
	 * replaced (0xf5-0xff passed as 3-byte leads before), valid text is
	 * kept, surrogates and overlong forms are refused */
	print_is("ab\xf8\x80\x80" "c\xff\xbf\xbf" "d", "\"ab\\ufffd\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\"");
	print_is("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	print_is("\xed\xa0\x80\xc0\xaf\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
	print_is("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x1b", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\u001b\"");
	sanitized_is("ab\xf8\x80\x80" "c\xfe", "ab???c?");
	sanitized_is("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");

	/* cutting UTF-8 to a byte budget: after a whole character only */
	CHECK(jw_utf8_fit("ab\xc3\xa9" "c", 3) == 2, "fit inside é: %zu", jw_utf8_fit("ab\xc3\xa9" "c", 3));
	CHECK(jw_utf8_fit("ab\xc3\xa9" "c", 4) == 4, "fit after é");
	CHECK(jw_utf8_fit("\xf0\x9f\x98\x80", 3) == 0, "fit inside a 4-byte character");
	CHECK(jw_utf8_fit("abc", 10) == 3, "fit: the whole");
	char cut[16];
	snprintf(cut, sizeof(cut), "%s", "ab\xc3"); /* é cut by snprintf */
	jw_utf8_trim(cut);
	CHECK(!strcmp(cut, "ab"), "trim a cut 2-byte character: %s", cut);
	snprintf(cut, sizeof(cut), "%s", "a\xe2\x82");
	jw_utf8_trim(cut);
	CHECK(!strcmp(cut, "a"), "trim a cut 3-byte character: %s", cut);
	snprintf(cut, sizeof(cut), "%s", "a\xc3\xa9");
	jw_utf8_trim(cut);
	CHECK(!strcmp(cut, "a\xc3\xa9"), "trim keeps a whole character: %s", cut);
	snprintf(cut, sizeof(cut), "%s", "a\xf0\x9f\x98\x80");
	jw_utf8_trim(cut);
	CHECK(!strcmp(cut, "a\xf0\x9f\x98\x80"), "trim keeps a whole 4-byte character");

	/* weft-load's shape: the same key at several depths */
	walk_ok("{\"latency_ns\":{\"task\":{\"p99\":12},\"unit\":{\"p99\":3.5e2}},\"x\":[1,[2,{\"y\":-0.5}]]}",
		"latency_ns.task.p99=12;latency_ns.unit.p99=350;x[0]=1;x[1][0]=2;x[1][1].y=-0.5;");
	walk_ok(" {\"a\":true,\"b\":false,\"c\":null,\"d\":{},\"e\":[]} \n", "a=true;b=false;c=null;");
	walk_ok("{\"s\":\"q\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\"}", "s='q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80';");
	walk_ok("42", "=42;");
	walk_bad("");
	walk_bad("{");
	walk_bad("{\"a\":1,}");
	walk_bad("{\"a\":1} x");
	walk_bad("{\"a\":01}");
	walk_bad("{\"a\":.5}");
	walk_bad("{\"a\":0x10}");
	walk_bad("{\"a\":nan}");
	walk_bad("[1 2]");
	walk_bad("{\"a\":\"\\ud800\"}");
	walk_bad("{\"a\":\"tab\there\"}");
	/* a NUL inside a string cut the value (and a key) short, silently */
	walk_bad("{\"a\":\"ab\\u0000cd\"}");
	walk_bad("{\"a\\u0000b\":1}");
	walk_ok("{\"a\":\"\\u0001\"}", "a='\x01';");
	walk_bad("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]");
	/* JWALK_MAX_DEPTH (16) containers, empty or not; 17 refused either
	 * way (17 were taken when the innermost was empty) */
	walk_ok("[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]=1;");
	walk_ok("[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]", "");
	walk_bad("[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]");
	walk_bad("[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]");
	walk_bad("[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]");
	CHECK(jwalk("{\"a\":1,\"b\":2,\"c\":3}", stop_at_b, NULL) == 7, "callback stops the walk");
	if (failures)
		return 1;
	printf("PASS: jwalk\n");
	return 0;
}
