/*
 * opts.c - reading a caller's options struct (weft/common.h: structs that
 * start with `size_t sz`, filled by WEFT_OPTS_INIT).
 */
#include <errno.h>
#include <string.h>

#include <weft/common.h>

#include "runtime.h"

int weft__opts_read(void *dst, const void *src, size_t known, size_t min_sz)
{
	memset(dst, 0, known);
	if (!src)
		return 0;
	size_t sz;
	memcpy(&sz, src, sizeof(sz));
	/* The caller's object may be smaller than any sz claims: scan its
	 * tail only up to the documented bound (SIZE_MAX scanned into
	 * unmapped memory). */
	if (sz < min_sz || sz > WEFT_OPTS_MAX_SZ)
		return -EINVAL;
	if (sz > known) {
		const unsigned char *tail = (const unsigned char *)src + known;
		for (size_t i = 0; i < sz - known; i++)
			if (tail[i])
				return -EINVAL;
	}
	memcpy(dst, src, sz < known ? sz : known);
	memcpy(dst, &known, sizeof(known));
	return 0;
}
