/*
 * reader.c - buffered reading over a registration (weft/io.h: Go's
 * bufio.Reader, Tokio's BufReader with read_until and read_exact).
 *
 * The buffer holds bytes read and not yet handed out in [start, end);
 * a line is handed out as a pointer into it, valid until the next call,
 * which is why the buffer is only compacted (moved to the front) at the
 * start of a call that must read more. Reads go through weft_read, so a
 * fiber suspends, a thread blocks, deadlines and cancellation apply, and
 * a poll task gets -EDEADLK.
 */
#include <errno.h>
#include <string.h>

#include <weft/io.h>

#include "runtime.h"

#define READER_DEFAULT 4096u
#define READER_MAX ((size_t)16 << 20)

struct weft_reader {
	struct weft_io *io;
	size_t cap, start, end;
	char buf[];
};

int weft_reader_create(struct weft_io *io, size_t bufsize, struct weft_reader **out)
{
	if (!io || !out || bufsize > READER_MAX)
		return -EINVAL;
	/* closed or deregistered already: -EBADF here, not a reader that
	 * only its first call finds unusable (weft_io_fd says which) */
	int fd = weft_io_fd(io);
	if (fd < 0)
		return fd;
	/* weft.h: a registration made before a fork says -ECHILD in the
	 * child (weft_io_fd still answers there); a reader made on it
	 * failed only at its first read (found by a review) */
	if (weft__io_forked(io))
		return -ECHILD;
	/* one read, one message: a datagram cut to the room left in the
	 * buffer (the rest dropped, "nothing read is ever lost" broken) and
	 * an empty one taken for the end of stream (a review) */
	if (weft__io_is_msg(io))
		return -EPROTOTYPE;
	if (!bufsize)
		bufsize = READER_DEFAULT;
	struct weft_reader *r = weft__malloc(sizeof(*r) + bufsize);
	if (!r)
		return -ENOMEM;
	*r = (struct weft_reader){ .io = io, .cap = bufsize };
	*out = r;
	return 0;
}

void weft_reader_destroy(struct weft_reader *r) { weft__free(r); }

size_t weft_reader_buffered(const struct weft_reader *r) { return r ? r->end - r->start : 0; }

/* Read more into the buffer's free end, compacting first: with weft_read
 * (cx NULL, blocking-style) or the poll form's one read (weft__io_xfer_poll
 * with cx). > 0 bytes, 0 at end of stream, -EMSGSIZE when the buffer is
 * full, WEFT__IO_WAIT (poll form: must wait), or the read's error. */
static ssize_t fill(struct weft_reader *r, struct weft_cx *cx)
{
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap)
		return -EMSGSIZE;
	ssize_t n = cx ? weft__io_xfer_poll(r->io, r->buf + r->end, r->cap - r->end, false, cx)
		       : weft_read(r->io, r->buf + r->end, r->cap - r->end);
	if (n > 0)
		r->end += (size_t)n;
	return n;
}

/* The next line up to and including delim, or at end of stream what is
 * left without one (len 0: the end itself), taken from the buffer: 0 with
 * *data and *len set, or fill's error (the bytes buffered stay). Both
 * forms of weft_reader_until. */
static ssize_t next_line(struct weft_reader *r, int delim, struct weft_cx *cx,
			 const char **data, size_t *len)
{
	size_t scanned = 0; /* bytes after start already searched */
	for (;;) {
		char *p = memchr(r->buf + r->start + scanned, delim, r->end - r->start - scanned);
		if (p) {
			*len = (size_t)(p - (r->buf + r->start)) + 1;
			*data = r->buf + r->start;
			r->start += *len;
			return 0;
		}
		scanned = r->end - r->start;
		ssize_t n = fill(r, cx);
		if (n > 0)
			continue;
		if (n < 0)
			return n;
		*len = r->end - r->start;
		*data = r->buf + r->start;
		r->start = r->end;
		return 0;
	}
}

ssize_t weft_reader_until(struct weft_reader *r, int delim, const char **out)
{
	if (!r || !out || delim < 0 || delim > 255)
		return -EINVAL;
	size_t len;
	ssize_t rc = next_line(r, delim, NULL, out, &len);
	return rc < 0 ? rc : (ssize_t)len;
}

ssize_t weft_reader_read(struct weft_reader *r, void *buf, size_t n)
{
	if (!r || (!buf && n))
		return -EINVAL;
	size_t have = r->end - r->start;
	if (!have && n) {
		/* as bufio.Reader: a read as large as the buffer goes straight
		 * in; a smaller one fills the buffer (a parser reading a byte
		 * at a time made one read(2) per byte: a review) */
		if (n >= r->cap)
			return weft_read(r->io, buf, n);
		ssize_t k = fill(r, NULL);
		if (k <= 0)
			return k;
		have = r->end - r->start;
	}
	size_t k = have < n ? have : n;
	memcpy(buf, r->buf + r->start, k);
	r->start += k;
	return (ssize_t)k;
}

ssize_t weft_reader_read_exact(struct weft_reader *r, void *buf, size_t n)
{
	if (!r || (!buf && n))
		return -EINVAL;
	if (n > r->cap)
		return -EMSGSIZE;
	/* through the buffer, so that nothing read is lost when the stream
	 * ends or fails first: it stays buffered */
	while (r->end - r->start < n) {
		ssize_t k = fill(r, NULL); /* n <= cap: room once compacted */
		if (k < 0)
			return k;
		if (k == 0)
			return r->end == r->start ? 0 : -EPIPE;
	}
	memcpy(buf, r->buf + r->start, n);
	r->start += n;
	return (ssize_t)n;
}

int weft_reader_until_poll(struct weft_reader *r, struct weft_cx *cx, int delim,
			   struct weft_line *out)
{
	if (!r || !cx || !out || delim < 0 || delim > 255)
		return -EINVAL;
	ssize_t rc = next_line(r, delim, cx, &out->data, &out->len);
	return rc == WEFT__IO_WAIT ? WEFT_PENDING : (int)rc;
}
