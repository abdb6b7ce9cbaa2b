/*
 * writer.c - buffered writing over a registration (weft/io.h: Go's
 * bufio.Writer, Tokio's BufWriter, with a printf).
 *
 * The buffer holds bytes accepted and not yet written in [0, len). Writes
 * go through weft_write, so a fiber suspends, a thread blocks, deadlines
 * and cancellation apply, and a poll task gets -EDEADLK. weft_write
 * returns a short count only when an error stopped it; the next call
 * then returns that error, or goes on if it can - so the loops below
 * either progress or end with an error.
 *
 * An error is never sticky (bufio.Writer's is): the unwritten bytes stay
 * at the front of the buffer and the next flush tries them again, which
 * is what a caller wants after a deadline (-ETIMEDOUT) on a peer that was
 * only slow.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <weft/io.h>

#include "runtime.h"

#define WRITER_DEFAULT 4096u
#define WRITER_MAX ((size_t)16 << 20)

struct weft_writer {
	struct weft_io *io;
	size_t cap, len;
	char buf[]; /* cap + 1 bytes: room for vsnprintf's terminating NUL */
};

int weft_writer_create(struct weft_io *io, size_t bufsize, struct weft_writer **out)
{
	if (!io || !out || bufsize > WRITER_MAX)
		return -EINVAL;
	/* closed or deregistered already: -EBADF here, not a writer that
	 * only its first call finds unusable (weft_io_fd says which) */
	int fd = weft_io_fd(io);
	if (fd < 0)
		return fd;
	if (weft__io_forked(io))
		return -ECHILD; /* as weft_reader_create */
	if (!bufsize)
		bufsize = WRITER_DEFAULT;
	struct weft_writer *w = weft__malloc(sizeof(*w) + bufsize + 1);
	if (!w)
		return -ENOMEM;
	*w = (struct weft_writer){ .io = io, .cap = bufsize };
	*out = w;
	return 0;
}

size_t weft_writer_destroy(struct weft_writer *w)
{
	if (!w)
		return 0;
	size_t lost = w->len;
	weft__free(w);
	return lost;
}

size_t weft_writer_buffered(const struct weft_writer *w) { return w ? w->len : 0; }

/* Write the buffer out: blocking-style (cx NULL: weft_write) or one
 * non-blocking write at a time for a poll form. The written bytes leave
 * and the rest move to the front: 0, WEFT__IO_WAIT (poll form), or the
 * error. */
static int flush_out(struct weft_writer *w, struct weft_cx *cx)
{
	size_t done = 0;
	int rc = 0;
	while (done < w->len) {
		ssize_t k = cx ? weft__io_xfer_poll(w->io, w->buf + done, w->len - done, true, cx)
			       : weft_write(w->io, w->buf + done, w->len - done);
		if (k < 0) {
			rc = (int)k;
			break;
		}
		done += (size_t)k;
	}
	if (done) {
		memmove(w->buf, w->buf + done, w->len - done);
		w->len -= done;
	}
	return rc;
}

int weft_writer_flush(struct weft_writer *w)
{
	return w ? flush_out(w, NULL) : -EINVAL;
}

int weft_writer_flush_poll(struct weft_writer *w, struct weft_cx *cx)
{
	if (!w || !cx)
		return -EINVAL;
	int rc = flush_out(w, cx);
	return rc == WEFT__IO_WAIT ? WEFT_PENDING : rc;
}

ssize_t weft_writer_write(struct weft_writer *w, const void *buf, size_t n)
{
	if (!w || (!buf && n))
		return -EINVAL;
	if (n > SSIZE_MAX)
		return -EINVAL;
	const char *p = buf;
	size_t accepted = 0;
	while (n) {
		if (!w->len && n >= w->cap) {
			/* nothing buffered and a buffer's worth or more: no
			 * copy, straight through. A short count means an error
			 * stopped it: say so now (the next call meets it). */
			ssize_t k = weft_write(w->io, p, n);
			if (k < 0)
				return accepted ? (ssize_t)accepted : k;
			return (ssize_t)(accepted + (size_t)k);
		}
		if (n <= w->cap - w->len) {
			memcpy(w->buf + w->len, p, n);
			w->len += n;
			return (ssize_t)(accepted + n);
		}
		/* top the buffer up, then write it out whole (bufio's way:
		 * full-size writes) */
		size_t m = w->cap - w->len;
		memcpy(w->buf + w->len, p, m);
		w->len += m;
		accepted += m;
		p += m;
		n -= m;
		int rc = weft_writer_flush(w);
		if (rc) /* (m is 0 when the buffer was full: then the error) */
			return accepted ? (ssize_t)accepted : rc;
	}
	return (ssize_t)accepted;
}

/* Format once more into a buffer of its own, returning the text and its
 * length in *len (the second pass's: the arguments may read differently
 * from the first, %m or %n say, and the text sent must be the one counted).
 * `guess` is the first pass's length. NULL: -EINVAL or -ENOMEM in *rc. */
static char *format_apart(const char *fmt, va_list ap, size_t guess, char *small,
			  size_t small_size, size_t *len, ssize_t *rc)
{
	size_t size = guess + 1;
	for (;;) {
		char *t = size <= small_size ? small : weft__malloc(size);
		if (!t) {
			*rc = -ENOMEM;
			return NULL;
		}
		va_list aq;
		va_copy(aq, ap);
		int r = vsnprintf(t, size, fmt, aq);
		va_end(aq);
		if (r < 0) {
			if (t != small)
				weft__free(t);
			*rc = -EINVAL;
			return NULL;
		}
		if ((size_t)r < size) {
			*len = (size_t)r;
			return t;
		}
		if (t != small)
			weft__free(t);
		size = (size_t)r + 1; /* longer this time: once more, with room */
	}
}

ssize_t weft_writer_printf(struct weft_writer *w, const char *fmt, ...)
{
	if (!w || !fmt)
		return -EINVAL;
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	/* straight into the free end (+1: the buffer keeps a byte for the
	 * NUL, which is not counted) */
	int r = vsnprintf(w->buf + w->len, w->cap - w->len + 1, fmt, ap);
	va_end(ap);
	ssize_t rc;
	if (r < 0) {
		rc = -EINVAL;
	} else if ((size_t)r <= w->cap - w->len) {
		w->len += (size_t)r; /* the common case: formatted once, in place */
		rc = r;
	} else {
		/* It did not fit: the whole text apart, now, before any wait
		 * (a flush may suspend the fiber, and what the arguments say
		 * may change meanwhile); then it goes in whole after a flush,
		 * or through when longer than the buffer. */
		char small[512];
		size_t len = 0;
		char *t = format_apart(fmt, ap2, (size_t)r, small, sizeof small, &len, &rc);
		if (t) {
			if (len <= w->cap - w->len) {
				memcpy(w->buf + w->len, t, len);
				w->len += len;
				rc = (ssize_t)len;
			} else if (len <= w->cap) {
				int f = weft_writer_flush(w); /* all or nothing */
				if (f) {
					rc = f;
				} else {
					memcpy(w->buf + w->len, t, len);
					w->len += len;
					rc = (ssize_t)len;
				}
			} else {
				rc = weft_writer_write(w, t, len);
			}
			if (t != small)
				weft__free(t);
		}
	}
	va_end(ap2);
	return rc;
}
