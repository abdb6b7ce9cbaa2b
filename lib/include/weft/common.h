/*
 * weft/common.h - export macro, size-versioned options, poll results.
 *
 * Included by every other public header; not meant to be included alone.
 */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

/* Every call returns 0 or a negative errno code: the codes a caller
 * compares with (-EPIPE, -ETIMEDOUT, ...) come with the headers, as a Go
 * or Tokio user's error kinds come with their package (a program
 * comparing them failed to build without its own <errno.h>) */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_STATIC_DEFINE)
#define WEFT_API
#elif defined(WEFT_BUILDING)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/*
 * Options structs start with `size_t sz`. Fill them with WEFT_OPTS_INIT (or
 * WEFT_OPTS) so that `sz` is set and every field you do not name is zero
 * (zero always means "the default"):
 *
 *     struct weft_runtime_opts o = WEFT_OPTS_INIT(weft_runtime_opts, .workers = 4);
 *     weft_runtime_create(&o, &rt);
 *
 * WEFT_OPTS_INIT(TYPE, fields...) is a compound literal of `struct TYPE`,
 * standard C11 (clean under -std=c11 -pedantic); the field list may be
 * empty (WEFT_OPTS_INIT(weft_runtime_opts)), and it can be used where an
 * expression is wanted (&WEFT_OPTS_INIT(weft_runtime_opts, .workers = 1)).
 * WEFT_OPTS(TYPE, NAME, fields...) declares NAME and also zeroes its
 * padding first; it uses a GNU statement expression (GCC, Clang).
 * Both are C: C++ has no compound literals (nor, before C++20, designated
 * initializers); there, value-initialise the struct and set `sz`:
 * `weft_runtime_opts o{}; o.sz = sizeof o; o.workers = 4;`. The same goes
 * for the WEFT_SEL_* arm macros of weft/weft.h.
 *
 * The library reads fields only up to `sz`, so a program built against an
 * older header keeps working; bytes past the fields the library knows must
 * be zero, otherwise the call fails with -EINVAL.
 *
 * The library cannot tell how large the caller's object really is, so it
 * trusts `sz` only up to WEFT_OPTS_MAX_SZ: a larger `sz` (SIZE_MAX, a
 * garbage value) fails with -EINVAL before any byte past the known fields
 * is read. Options structs stay far below this bound.
 */
#define WEFT_OPTS_MAX_SZ 4096
#define WEFT_OPTS_INIT(...)                                             \
	((struct WEFT__OPTS_TYPE(__VA_ARGS__, ~)){                     \
		.sz = sizeof(struct WEFT__OPTS_TYPE(__VA_ARGS__, ~)),   \
		WEFT__OPTS_FIELDS(__VA_ARGS__, ) })
/* Split "TYPE, fields..." without ever passing an empty variadic list
 * (which C11 does not allow): the extra argument is `~` for the type
 * and empty for the fields, leaving a trailing comma, which an initializer
 * list accepts. */
#define WEFT__OPTS_TYPE(TYPE, ...) TYPE
#define WEFT__OPTS_FIELDS(TYPE, ...) __VA_ARGS__

#define WEFT_OPTS(TYPE, NAME, ...)                                  \
	struct TYPE NAME = ({                                       \
		memset(&NAME, 0, sizeof(struct TYPE));              \
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ }; \
	})

/* What a poll function returns. */
enum weft_poll {
	WEFT_READY = 0,   /* done: the task completes */
	WEFT_PENDING = 1, /* not done: a waker will schedule the next poll */
};

/* "No limit" for calls that take a timeout in nanoseconds. */
#define WEFT_FOREVER UINT64_MAX

#ifdef __cplusplus
}
#endif
#endif /* WEFT_COMMON_H */
