/*
 * weft/io.h - file descriptor readiness (epoll, edge-triggered) and socket
 * calls that suspend a fiber (or block a thread) instead of the worker.
 *
 * A registration (struct weft_io) owns its fd from weft_io_register() until
 * weft_io_close() (closes it) or weft_io_deregister() (gives it back). Close
 * through weft: a task waiting on the fd then gets -EBADF instead of
 * waiting forever. Close every registration before weft_runtime_destroy:
 * after shutdown, operations on a registration fail with -ESHUTDOWN, and
 * destroy frees registrations still open (their fds stay open). Once
 * shutdown has begun, a blocking call that would wait (in a thread, a
 * blocking job or a weft_block_in_place fn; a fiber's says -ECANCELED)
 * returns -ESHUTDOWN instead: no event would come once the workers stop. Once
 * weft_runtime_shutdown has begun, calls that would make a registration
 * (weft_io_register, weft_accept, weft_connect, weft_tcp_listen,
 * weft_tcp_connect, weft_udp_bind) fail with -ESHUTDOWN, as spawns do. All calls return a byte count or 0 on success, or a
 * negative errno; blocking-style calls return -EDEADLK from a poll task
 * (use weft_io_poll_ready there), and -ECANCELED in a fiber that has been
 * cancelled (weft_abort, shutdown; see weft_spawn in weft.h) - weft_io_close
 * still works, so the fiber can close what it opened.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <sys/socket.h>
#include <sys/types.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_runtime;
struct weft_cx;
struct weft_io;

/* Readiness bits */
#define WEFT_IO_READABLE 0x1u
#define WEFT_IO_WRITABLE 0x2u
#define WEFT_IO_HUP      0x4u  /* peer closed (or half-closed its write side) */
#define WEFT_IO_ERROR    0x8u
#define WEFT_IO_CLOSED   0x10u /* weft_io_close was called */
#define WEFT_IO_SHUTDOWN 0x20u /* the runtime shut down: no event will come */

/* Register fd (made non-blocking) with rt's driver. On failure the fd is
 * left open and as it was (its blocking mode restored). -EINVAL, -ENOMEM,
 * -ESHUTDOWN (rt is shut down or shutting down), -EPERM for a file
 * without readiness (regular files, directories, block devices, character
 * devices such as /dev/null), or the driver's error (epoll_ctl's;
 * io_uring: a submission's). Under the io_uring driver the kernel holds
 * the file while it is registered: end a registration with weft_io_close
 * or weft_io_deregister, not close(2) alone, or the file stays open. */
WEFT_API int weft_io_register(struct weft_runtime *rt, int fd, struct weft_io **out);
/* Deregister and close the fd; wakes every waiter with -EBADF. A call on
 * the registration still in progress on another thread (past its checks,
 * in its read or write) keeps the fd open until it returns, and the fd is
 * closed then: no call ever reaches a file that took over the number.
 * Returns 0, or close(2)'s error when the fd was closed within this call.
 * (Under io_uring the close waits for the kernel's poll to end, at the
 * next driver pass; after shutdown it closes at once.) A call started on
 * the registration after the close returns -EBADF, as long as no new
 * registration has reused its memory: the handle is not checked beyond
 * that, so do not use it after the close. A second weft_io_close or
 * weft_io_deregister of it returns -EBADF and touches nothing (no fd is
 * closed twice), with the same limit: once a newer registration has its
 * memory, it would end that one, as a double close(2) closes whichever
 * file took the number (freed registrations are reused oldest first, so a
 * closed one is taken again as late as can be). */
WEFT_API int weft_io_close(struct weft_io *io);
/* Deregister without closing; returns the fd (>= 0) for the caller to keep,
 * as it was registered: O_NONBLOCK, if weft_io_register set it, is cleared
 * again (it is the open file's, shared with every dup and fork of the fd -
 * a stdout, a pipe a shell shares - as Go's File.Fd makes it blocking;
 * one registered non-blocking stays so, and so does a socket weft made
 * (weft_accept's, and those of the connect, listen and bind calls below:
 * created non-blocking, as Tokio's into_std gives them back; clear the
 * flag with fcntl(2) for blocking use). Calls on the registration still
 * in progress on other threads may use the fd until they return, and the
 * flag is cleared when the last of them returns: close it, or register it
 * again, only after they have (a later clear would leave the new
 * registration's fd blocking). While another registration of the same
 * open file is live (a dup registered too: a terminal's stdin and stdout)
 * the flag stays set, for it, and its own deregistration clears it
 * (a dup in another runtime is not seen: deregister that one first;
 * where kcmp(2) is refused, one that may share the file with another
 * registration is left non-blocking).
 * -EBADF if it was closed or deregistered already (see
 * weft_io_close). weft_io_close leaves the flag as it is (on a file that
 * other descriptors share, deregister, then close(2)). */
WEFT_API int weft_io_deregister(struct weft_io *io);
/* The registered fd (>= 0), for the caller's own calls on it (setsockopt,
 * getsockopt; for a half-close use weft_io_shutdown, which also wakes the
 * calls waiting on the registration). -EINVAL (NULL io), -EBADF once weft_io_close or
 * weft_io_deregister was called (see there: the number may name another
 * file by then). In a forked child it still answers, for the child's
 * close(2) of its copy. */
WEFT_API int weft_io_fd(const struct weft_io *io);
/*
 * Half-close (shutdown(2); Go's TCPConn.CloseWrite and CloseRead, Tokio's
 * AsyncWriteExt::shutdown). how: SHUT_WR ends what we send - the peer
 * reads the bytes written before, then end of stream (0), and we can
 * still read what it sends back until its own end; SHUT_RD ends what we
 * read - reads return the bytes already queued, then 0 (the peer is not
 * told: on TCP, bytes it sends later are still taken in and may be read);
 * SHUT_RDWR both. The registration stays open and registered: it is still
 * weft_io_close that frees it and closes the fd. It never waits, so it
 * works after weft_runtime_shutdown too (before destroy), as
 * weft_io_close does.
 * Calls waiting on the registration in other tasks, fibers or threads
 * (weft_read, weft_write and the other socket calls, weft_io_wait, a poll
 * task's weft_io_poll_ready) are woken for each direction shut, under
 * either driver, whether or not the kernel reports readiness for it (a
 * Unix stream socket with a full send buffer reports none after
 * SHUT_WR), and make their call again: a read waiting when SHUT_RD comes
 * returns 0 (end of stream), a write waiting when SHUT_WR comes -EPIPE
 * (or the count of bytes it wrote before, as weft_write reports a
 * partial write); so do the calls made afterwards. On a datagram socket
 * (UDP, Unix datagram) Linux answers a non-blocking read after SHUT_RD
 * with EAGAIN, not 0: such a read goes on waiting for a datagram (close
 * the registration to end it).
 * Returns 0 or a negative errno: -EINVAL (NULL io; how not SHUT_RD,
 * SHUT_WR or SHUT_RDWR), -EBADF (the registration was closed or
 * deregistered; see weft_io_close for a handle whose memory was reused),
 * -ECHILD (a registration made before fork, in the child: the socket is
 * the parent's too), and shutdown(2)'s -errno: -ENOTCONN (not connected:
 * a TCP socket never connected, or whose connection has ended), -ENOTSOCK
 * (a pipe or other file that is not a socket).
 */
WEFT_API int weft_io_shutdown(struct weft_io *io, int how);

/*
 * Poll form. A readiness value carries a tick; weft_io_clear_ready clears
 * the bits only if no newer readiness arrived since it was read, so an
 * event that lands between "read returned EAGAIN" and "clear" is never
 * lost. Clear after an operation returned EAGAIN: ERROR goes too when it is
 * in ready.mask (a socket returns its pending error before EAGAIN, so the
 * error was consumed; left set, it made every later poll ready at once).
 * weft_io_poll_ready returns WEFT_READY with *ready set when a direction
 * of `interest` is ready, or ERROR, CLOSED or SHUTDOWN is set, or HUP as
 * it concerns that direction (READABLE: the peer closed its write side;
 * WRITABLE: the connection hung up both ways), else registers cx's waker:
 * `interest` must hold WEFT_IO_READABLE and/or WEFT_IO_WRITABLE - with
 * neither (0, or HUP alone) no waker is registered and HUP is not
 * reported, so the task would never be woken; one waker per direction,
 * the last poller's (as Tokio's
 * poll_read_ready), so poll one registration's direction from one task at
 * a time. The blocking calls have no such limit: any number may wait on
 * one registration (each is woken by an event for its direction, and by
 * close with -EBADF). SHUTDOWN is set once the runtime has shut down, and
 * for a thread's wait (weft_select outside a task: in a
 * weft_block_in_place fn, say) as soon as shutdown begins; the calls on
 * the registration then say -ESHUTDOWN instead of waiting. A task's
 * registered waker is woken when shutdown begins. io must not be NULL:
 * neither call has an error to return, so a NULL io aborts with a message
 * naming the call.
 */
struct weft_io_ready { unsigned mask; uint64_t tick; };
WEFT_API enum weft_poll weft_io_poll_ready(struct weft_io *io, struct weft_cx *cx,
					   unsigned interest, struct weft_io_ready *ready);
WEFT_API void weft_io_clear_ready(struct weft_io *io, struct weft_io_ready ready);

/* Wait until one of `events` is ready: returns the ready mask (> 0),
 * -ETIMEDOUT, -EBADF (closed), -ESHUTDOWN, -EDEADLK, -ENOMEM, -ECANCELED
 * (a cancelled fiber), -EINVAL (NULL io, events with neither
 * WEFT_IO_READABLE nor WEFT_IO_WRITABLE, or with a bit no WEFT_IO_*
 * names; HUP, ERROR, CLOSED and SHUTDOWN are reported without asking).
 * timeout_ns: WEFT_FOREVER for none; 0 reports whether the fd is ready now,
 * without waiting. A wait that runs out of time asks the fd (poll(2) with
 * timeout 0) before returning -ETIMEDOUT, so readiness the driver has not
 * reported yet - right after weft_io_register, say - is not missed.
 * Readiness stays set until a weft call on the registration (weft_read,
 * weft_recv, ...) gets EAGAIN, or until weft_io_clear_ready: a caller that
 * does its own I/O on weft_io_fd(io) (read(2) to EAGAIN) must wait with
 * weft_io_wait_ready and clear with what it returned, or its next wait
 * returns at once, for good (as Tokio's AsyncFd guard's clear_ready). */
WEFT_API int weft_io_wait(struct weft_io *io, unsigned events, uint64_t timeout_ns);
/* weft_io_wait that also fills *ready (may be NULL) with the readiness and
 * its tick on success, for weft_io_clear_ready after the caller's own
 * operation got EAGAIN. */
WEFT_API int weft_io_wait_ready(struct weft_io *io, unsigned events, uint64_t timeout_ns,
				struct weft_io_ready *ready);

/*
 * Deadlines (Go's SetReadDeadline / SetWriteDeadline). A registration has
 * one deadline per direction, CLOCK_MONOTONIC ns (weft_now_ns), WEFT_FOREVER
 * (the default) for none. Set it for READABLE (weft_read, weft_recv,
 * weft_recvfrom, weft_accept on a listener) and/or WRITABLE (weft_write,
 * weft_send, weft_sendto): a call that would have to wait past it returns
 * -ETIMEDOUT instead (a call that can make progress without waiting still
 * does, even after the deadline). It applies to calls and waits that begin
 * after it is set; set it again (or WEFT_FOREVER) for the next request.
 * Errors: -EINVAL (NULL io, events not a non-empty subset of
 * WEFT_IO_READABLE | WEFT_IO_WRITABLE), -EBADF (closed or deregistered).
 */
WEFT_API int weft_io_set_deadline(struct weft_io *io, unsigned events, uint64_t deadline_ns);

/*
 * Socket calls (blocking-style: a fiber suspends, a thread blocks).
 * Errors common to all of them: -EINVAL (NULL io, a NULL buffer with a
 * length above 0, or a NULL out; before any wait), -EBADF
 * (the registration was closed, also while waiting), -ESHUTDOWN (the
 * runtime shut down), -ETIMEDOUT (the registration's deadline for that
 * direction passed while the call had to wait), -EDEADLK (from a poll task
 * on a worker, if the call has to wait), -ECHILD (after fork), -ENOMEM,
 * -EIO (io_uring: the registration's poll failed, so no readiness will
 * come; the call had to wait), and the system call's own -errno (e.g.
 * -ECONNRESET, -EPIPE).
 * read/recv return 0 at end of stream. A read of 0 bytes returns 0 at
 * once (as read(2) with a count of 0, Go's Read of an empty buffer): no
 * wait, no system call, nothing consumed (-EBADF if closed, -ECANCELED in
 * a cancelled fiber); so does weft_recv (and weft_recvfrom, which sets
 * *addrlen to 0: no sender) of 0 bytes on a stream socket,
 * while on a datagram or seqpacket socket it waits for a message and
 * takes it, as recv(2) does. weft_write/weft_send write all n
 * bytes unless an error occurs; if it occurs after some bytes were written
 * (a deadline included), they return that count instead. Such a write is
 * as many write(2)s as the kernel's buffer takes: two tasks writing on
 * one stream registration at once may interleave their bytes (Go's Write
 * keeps each whole; here, serialise the writers - a weft_mutex, or one
 * writer task fed by a channel). A write of 0
 * bytes on a stream socket (weft_sendto's too, with a NULL addr) returns
 * 0 at once, with no system call (-EBADF if closed, -ECANCELED in a
 * cancelled fiber); on a datagram socket it sends an empty datagram. MSG_DONTWAIT in
 * the flags of weft_recv, weft_send, weft_recvfrom or weft_sendto means
 * no wait, as for recv(2): -EAGAIN where the call would have waited (a
 * send that wrote some bytes returns their count). MSG_WAITALL in the
 * flags of weft_recv or weft_recvfrom on a stream socket waits for all n
 * bytes, as recv(2) on a blocking socket does: n, or fewer if the stream
 * ended first or an error came after some bytes (a deadline, -ECANCELED),
 * as weft_read_full; with MSG_DONTWAIT, MSG_PEEK or MSG_OOB it is one
 * call, returning what is there (weft_recvmsg is always one call).
 */
WEFT_API ssize_t weft_read(struct weft_io *io, void *buf, size_t n);
/* Read until n bytes are in buf (Go's io.ReadFull, Tokio's read_exact):
 * n, or fewer if the stream ended first (0 at end of stream; compare with
 * n), or if an error came after some bytes (a deadline included) - as
 * weft_write reports a partial write; an error before any byte is
 * returned as weft_read returns it. On a datagram socket each read is one
 * datagram: use weft_read there. */
WEFT_API ssize_t weft_read_full(struct weft_io *io, void *buf, size_t n);
WEFT_API ssize_t weft_write(struct weft_io *io, const void *buf, size_t n);
WEFT_API ssize_t weft_recv(struct weft_io *io, void *buf, size_t n, int flags);
WEFT_API ssize_t weft_send(struct weft_io *io, const void *buf, size_t n, int flags);
/*
 * Gather write (writev(2); Tokio's write_vectored, Go's net.Buffers): the
 * iovcnt segments of iov, in order, as one stream - all of them unless an
 * error occurs, with the count written then if any byte was (as
 * weft_write). Any number of segments (IOV_MAX is not a limit): up to 64
 * go to each system call (sendmsg on a socket, writev otherwise); iov
 * itself is not modified. Empty segments are skipped. On a datagram or
 * seqpacket socket the segments are one message, sent by one sendmsg
 * (whole or not at all; -EMSGSIZE past IOV_MAX non-empty segments, or
 * the kernel's -EMSGSIZE for a message too large). Errors: as weft_write,
 * and -EINVAL (NULL io, iovcnt < 0, NULL iov with iovcnt > 0, a NULL base
 * with a non-zero length, a total above SSIZE_MAX).
 */
struct iovec;
WEFT_API ssize_t weft_writev(struct weft_io *io, const struct iovec *iov, int iovcnt);
/*
 * Copy from src to dst until src's end of stream (Go's io.Copy, Tokio's
 * io::copy), blocking-style. Returns 0 once src has said end of stream and
 * every byte read has been written; dst is left open (not shut down).
 * *copied (may be NULL) gets the bytes written to dst, on error too (bytes
 * read from src but not yet written are lost then). Bytes pass through a
 * 32 KiB buffer. Each wait is bounded by the registration's deadline for
 * it (src's READABLE, dst's WRITABLE: weft_io_set_deadline), -ETIMEDOUT
 * past it (bytes that can still move without waiting are moved first).
 * Once shutdown has begun, a copy moves what is there for one more turn
 * and returns -ESHUTDOWN, waiting or not (a stream that never pauses does
 * not hold shutdown up). A
 * fiber's copy gives up the worker as weft_read and weft_write do (its
 * budget), so a fast stream does not starve the others. Errors: as
 * the socket calls above (-ETIMEDOUT, -EBADF once either is closed,
 * -ESHUTDOWN, -ECANCELED, -EDEADLK from a poll task, -ECHILD, -ENOMEM, the
 * read's or write's -errno such as -ECONNRESET or -EPIPE), and
 * -EPROTOTYPE, before anything is read, when src is a datagram or
 * seqpacket socket (each read would take one message, cut to the buffer,
 * and an empty datagram would read as src's end: the copy ended there,
 * leaving the datagrams after it; a datagram dst is fine: each write is
 * one datagram). Do not read src
 * or write dst elsewhere meanwhile: the copy waits as the poll form does
 * (one waiter per registration and direction).
 */
WEFT_API int weft_io_copy(struct weft_io *dst, struct weft_io *src, uint64_t *copied);
/*
 * Copy a to b and b to a at once until both have said end of stream (a
 * proxy's loop; Tokio's copy_bidirectional, Go's two io.Copy goroutines).
 * When one side says end of stream and its bytes are written, the other
 * side's write half is shut down (shutdown(SHUT_WR)) if it is a socket,
 * so the end passes through; then the copy goes on the other way. The
 * first error ends both directions (the registrations stay open; the
 * caller closes them). *a_to_b and *b_to_a (may be NULL) get the bytes
 * written each way, on error too. The directions take turns of at most
 * 16 reads and writes, so a side that never runs dry does not hold the
 * other up. Waits, deadlines and errors as weft_io_copy (-EPROTOTYPE if
 * either is a datagram or seqpacket socket); -EINVAL if a == b.
 */
WEFT_API int weft_io_copy_bidirectional(struct weft_io *a, struct weft_io *b, uint64_t *a_to_b,
					uint64_t *b_to_a);
/*
 * The copies' poll form, for poll tasks (Tokio's copy and
 * copy_bidirectional futures). weft_io_copier_create: a copier of src to
 * dst, and with WEFT_COPY_BOTH of dst to src too (as
 * weft_io_copy_bidirectional: ends passed on, turns of 16 calls); it holds
 * both registrations (a close makes its next poll say -EBADF, the memory
 * stays valid) and its buffers until weft_io_copier_destroy. Errors:
 * -EINVAL (NULL out, an unknown flag, dst == src with WEFT_COPY_BOTH),
 * -EBADF (a registration already closed), -ESHUTDOWN (its runtime is shut
 * down or shutting down), -ECHILD (one made before a fork, in the
 * child), -EPROTOTYPE (src, or with WEFT_COPY_BOTH dst, a datagram or
 * seqpacket socket: as weft_io_copy), -ENOMEM.
 * weft_io_copier_poll: 0 once done, WEFT_PENDING (cx's waker is registered
 * for what it waits on, or the task's budget ran out and it was woken: one
 * unit a read or write), or the first error (returned again by later
 * polls; -EINVAL for NULL c or cx). Registration deadlines do not apply:
 * bound it with a timer (weft_timer_poll, or a select's TIMER arm beside
 * it). Poll one copier from one task, and nothing else on the same
 * registration and direction (one waker per direction, as
 * weft_io_poll_ready). weft_io_copier_counts: bytes written to dst and
 * (WEFT_COPY_BOTH) to src so far. Destroy from the task's drop too.
 */
struct weft_io_copier;
#define WEFT_COPY_BOTH 1u
WEFT_API int weft_io_copier_create(struct weft_io *dst, struct weft_io *src, unsigned flags,
				   struct weft_io_copier **out);
WEFT_API int weft_io_copier_poll(struct weft_io_copier *c, struct weft_cx *cx);
WEFT_API void weft_io_copier_counts(const struct weft_io_copier *c, uint64_t *to_dst,
				    uint64_t *to_src);
WEFT_API void weft_io_copier_destroy(struct weft_io_copier *c);
/*
 * Buffered reading (Go's bufio.Reader, Tokio's BufReader), blocking-style
 * as weft_read (whose errors, deadlines and cancellation apply; -EDEADLK
 * from a poll task) for a call that must read: one the buffered bytes
 * answer returns them at once, in a poll task or a cancelled fiber too
 * (a cancelled fiber's loop over lines gets the lines buffered, then
 * -ECANCELED). A reader buffers one registration's bytes; it does
 * not own the registration (close it after weft_reader_destroy, or at
 * least not before the reader's last call). One caller at a time.
 * weft_reader_create: bufsize 0 means 4 KiB, at most 16 MiB (else -EINVAL);
 * -EBADF (the registration was closed or deregistered: no reader made);
 * -ECHILD (a registration made before a fork, in the child);
 * -EPROTOTYPE (a datagram or seqpacket socket: a read there takes one
 * message, cut to the room left in the buffer, and an empty datagram
 * would read as the end of stream; use weft_recvfrom or weft_recvmsg);
 * -ENOMEM. Nothing read is ever dropped: on an error, bytes already read
 * stay buffered for the next call. So after an error in the middle of a
 * line (-ECONNRESET) the next weft_reader_until can hand out that partial
 * line as the stream's last one, without its delimiter (a TCP read after
 * a reset says 0): a line without its delimiter is not known to be whole
 * (Go's ReadString returns it with the error instead). A packet-mode pipe
 * (O_DIRECT) reads one packet per call and drops what does not fit: a
 * reader on one may lose the end of a packet larger than its free room
 * (up to 4 KiB); read such pipes with weft_read and a 4 KiB buffer.
 * weft_reader_until: the next bytes up to and including the first `delim`
 * (a byte value, 0-255): returns their length with *line pointing at them
 * inside the reader (valid until the reader's next call); at end of
 * stream the rest without a delimiter (check the last byte), then 0;
 * -EMSGSIZE if the buffer is full without a delimiter (those bytes stay:
 * take them with weft_reader_read).
 * weft_reader_read: buffered bytes first (up to n); with none buffered,
 * one weft_read, straight into buf when n is at least the buffer size,
 * else into the buffer; 0 at end of stream.
 * Bytes a reader holds are not readiness: a select's READY arm or
 * weft_io_wait on the registration can wait while a whole line sits
 * buffered (a short read cleared the fd's readiness). Wait for lines with
 * a select's LINE arm (weft.h) or weft_reader_until_poll instead, which
 * look in the buffer first. Reading the registration
 * directly while bytes are buffered takes them out of order.
 * weft_reader_read_exact (io.ReadFull, read_exact): n once n bytes have
 * come; 0 at end of stream with nothing buffered; -EPIPE at end of stream
 * with fewer than n (they stay buffered: weft_reader_buffered); -EMSGSIZE
 * if n exceeds the buffer size. weft_reader_buffered: bytes buffered.
 */
struct weft_reader;
WEFT_API int weft_reader_create(struct weft_io *io, size_t bufsize, struct weft_reader **out);
WEFT_API void weft_reader_destroy(struct weft_reader *r);
WEFT_API ssize_t weft_reader_until(struct weft_reader *r, int delim, const char **line);
WEFT_API ssize_t weft_reader_read(struct weft_reader *r, void *buf, size_t n);
WEFT_API ssize_t weft_reader_read_exact(struct weft_reader *r, void *buf, size_t n);
WEFT_API size_t weft_reader_buffered(const struct weft_reader *r);
/* Poll form of weft_reader_until, for poll tasks and weft_select's LINE
 * arm (weft.h): 0 with *out set to the next line (out->len bytes at
 * out->data, inside the reader, valid until its next call; at end of
 * stream the rest without a delimiter, then len 0), WEFT_PENDING (cx's
 * waker is registered for the registration's READABLE - one waker per
 * direction, as weft_io_poll_ready - or the task's budget ran out and it
 * was woken: one unit a read), or an error as weft_reader_until's
 * (-EMSGSIZE, -EBADF, -ESHUTDOWN - for a thread's wait as soon as shutdown
 * begins, as a READY arm's -, -ECHILD, the read's -errno; -EINVAL for a NULL
 * argument or a delim outside 0-255). Unlike a readiness wait, it sees
 * the lines the reader already holds. Registration deadlines do not
 * apply: bound it with a timer (or a select's deadline). */
struct weft_line { const char *data; size_t len; };
struct weft_cx;
WEFT_API int weft_reader_until_poll(struct weft_reader *r, struct weft_cx *cx, int delim,
				    struct weft_line *out);
/*
 * Buffered writing (Go's bufio.Writer, Tokio's BufWriter), blocking-style
 * as weft_write (whose errors, deadlines and cancellation apply; -EDEADLK
 * from a poll task for a call that must write). A writer buffers bytes for
 * one registration, which it does not own; one caller at a time. Nothing
 * is sent until the buffer is full or weft_writer_flush: call it when a
 * message is complete. Nothing accepted is ever dropped: on an error the
 * bytes not yet written stay buffered, and a later flush tries them again
 * (after -ETIMEDOUT, say); the error is not sticky.
 * weft_writer_create: bufsize 0 means 4 KiB, at most 16 MiB (else
 * -EINVAL); -EBADF (the registration was closed or deregistered: no
 * writer made); -ECHILD (made before a fork, in the child); -ENOMEM.
 * weft_writer_write: accepts all n bytes (buffered, or written: a write
 * of at least the buffer's size with nothing buffered goes straight to
 * weft_write) and returns n; if an error stops it, the count accepted so
 * far (the bytes after it are still the caller's; the next call meets the
 * error), or the error if none was (-ETIMEDOUT, -EPIPE, -ECANCELED, ...).
 * weft_writer_printf: formats as printf straight into the buffer; a text
 * that does not fit the free space is formatted apart at once (before any
 * wait), then goes in whole after a flush, or through when longer than
 * the buffer. Returns the length of the text sent, or as
 * weft_writer_write for a text longer than the buffer; for a text that
 * fits the buffer it is all or nothing: -errno from the flush and nothing
 * accepted; -EINVAL for a format vsnprintf refuses; -ENOMEM. (A format
 * whose arguments read differently each time, %m or %n say, is
 * formatted twice when it does not fit; the text counted is the one sent.)
 * weft_writer_flush: writes every buffered byte: 0, or the error with the
 * unwritten bytes still buffered (those written are gone from it).
 * weft_writer_buffered: bytes accepted and not yet written.
 * weft_writer_destroy: frees the writer without writing; returns the
 * bytes it still held, discarded (0 if flushed): flush first.
 * On a datagram or seqpacket socket each write the writer makes is one
 * message: what a flush finds buffered, or a write it passes straight
 * through. Flush after each message and every message goes whole, of
 * any size; without, one that does not fit the free space is cut (a
 * write tops the buffer up with its first bytes and sends that as a
 * message, the rest going into the next).
 */
struct weft_writer;
WEFT_API int weft_writer_create(struct weft_io *io, size_t bufsize, struct weft_writer **out);
WEFT_API size_t weft_writer_destroy(struct weft_writer *w);
WEFT_API ssize_t weft_writer_write(struct weft_writer *w, const void *buf, size_t n);
WEFT_API ssize_t weft_writer_printf(struct weft_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
WEFT_API int weft_writer_flush(struct weft_writer *w);
/* Poll form of weft_writer_flush, for poll tasks: 0 once every buffered
 * byte is written, WEFT_PENDING (cx's waker is registered for the
 * registration's WRITABLE - one waker per direction, as
 * weft_io_poll_ready - or the task's budget ran out and it was woken: one
 * unit a write), or the error (the unwritten bytes stay buffered;
 * -EINVAL for NULL w or cx). Registration deadlines do not apply. A poll
 * task keeps its writes within the buffer (weft_writer_buffered against
 * the size it gave) and calls this when the buffer is full or a message
 * is complete: a weft_writer_write that overflows would flush
 * blocking-style, -EDEADLK when that must wait. */
WEFT_API int weft_writer_flush_poll(struct weft_writer *w, struct weft_cx *cx);
WEFT_API size_t weft_writer_buffered(const struct weft_writer *w);
/* Datagrams: one call, one datagram. recvfrom fills addr/addrlen (both
 * NULL, or both set: -EINVAL for addr without addrlen) with the sender;
 * sendto sends one datagram to addr (NULL on a connected socket) and
 * returns the bytes sent. A datagram socket has no end of stream: 0 from
 * weft_recvfrom (weft_recv, weft_read) is an empty datagram, taken, and
 * the next call waits for the next one (as Go's ReadFrom; weft_sendto of
 * 0 bytes sends one). A datagram longer than n is cut to n and the rest
 * dropped, as recvfrom(2) does, with nothing to say so: pass MSG_TRUNC in
 * flags to get its whole length back (a count above n), or use
 * weft_recvmsg and look for MSG_TRUNC in msg_flags. On a connected UDP
 * socket, an ICMP error for an earlier datagram (nobody listening at the
 * peer's port) comes back once from the next call: -ECONNREFUSED, as
 * from Go's Read; a call waiting for a datagram wakes with it. An
 * unconnected Unix datagram socket sending to a receiver whose queue is
 * full of other senders' datagrams gets EAGAIN, and the kernel does not
 * wake it when room is made: weft_sendto then waits until the write
 * deadline (set one), as Go's WriteToUnix does. */
WEFT_API ssize_t weft_recvfrom(struct weft_io *io, void *buf, size_t n, int flags,
			       struct sockaddr *addr, socklen_t *addrlen);
WEFT_API ssize_t weft_sendto(struct weft_io *io, const void *buf, size_t n, int flags,
			     const struct sockaddr *addr, socklen_t addrlen);
/* One sendmsg(2) / recvmsg(2) (Go's WriteMsgUnix / ReadMsgUnix): the
 * message's data with its ancillary data (msg_control) - descriptors
 * passed over a Unix socket (SCM_RIGHTS), credentials - waiting for the
 * socket as weft_send / weft_recv do (the registration's deadline for that
 * direction, MSG_DONTWAIT, the common errors above). One call, one system
 * call's worth: on a stream socket sendmsg may take only some of the bytes
 * (returned; the ancillary data went with them, send the rest with
 * weft_send) - one with no bytes, no ancillary data and no address
 * returns 0 at once with no system call, as weft_send of nothing does
 * (with ancillary data it goes to the kernel) -, and recvmsg returns what one recvmsg read (0 at end of
 * stream), with msg_flags and msg_controllen set as recvmsg sets them
 * (MSG_CTRUNC: the control buffer was too small, and descriptors that did
 * not fit were closed by the kernel). Descriptors received are
 * close-on-exec (MSG_CMSG_CLOEXEC is always added, and not reported in
 * msg_flags unless the caller passed it), as every descriptor weft makes,
 * so a child spawned meanwhile does not inherit them. -EINVAL, before any
 * wait and with nothing taken, for a NULL msg, and for a NULL msg_iov,
 * iov_base or msg_control with a length (an empty segment's NULL base is
 * fine); -EMSGSIZE (the kernel's) for more than IOV_MAX segments. A
 * recvmsg with no data segments on a stream socket waits, as any receive
 * does (deadline, MSG_DONTWAIT: -EAGAIN), until a byte or the end of the
 * stream is there, then returns 0 either way, taking nothing: give it at
 * least one byte of room. MSG_ERRQUEUE (weft_recvmsg, weft_recv,
 * weft_recvfrom) reads the socket's error queue (IP_RECVERR's reports,
 * MSG_ZEROCOPY's completions): it waits for WEFT_IO_ERROR alone, which
 * is how the kernel announces an entry, not for bytes to read, and one
 * that finds the queue empty leaves the registration's readiness for
 * bytes as it was (a weft_read after it reads what is queued). So does
 * a read that can find nothing with bytes queued: a MSG_PEEK past the
 * end of what SO_PEEK_OFF has peeked, a MSG_OOB before the urgent byte
 * has come (weft_recv, weft_recvfrom, weft_recvmsg); one that waits is
 * woken by the next bytes to come (the urgent byte among them). */
WEFT_API ssize_t weft_sendmsg(struct weft_io *io, const struct msghdr *msg, int flags);
WEFT_API ssize_t weft_recvmsg(struct weft_io *io, struct msghdr *msg, int flags);
/* Accept a connection, registered with the listener's runtime. addr/len may
 * be NULL (both NULL, or both set: -EINVAL for addr without addrlen,
 * before anything is accepted; also NULL listener or out). Once
 * shutdown has begun: -ESHUTDOWN, with the connection left queued (one
 * accepted just as shutdown begins is closed: its registration is
 * refused). The
 * listener's READABLE deadline bounds the wait (-ETIMEDOUT). A TCP
 * connection, accepted here or made by the connect calls below, has
 * TCP_NODELAY set (Nagle's algorithm off, as Go's net package does; Tokio
 * leaves it on): setsockopt on weft_io_fd turns it back on. */
WEFT_API int weft_accept(struct weft_io *listener, struct weft_io **out,
			 struct sockaddr *addr, socklen_t *addrlen);
/* Connect a TCP socket to one address. Errors: -EINVAL, -ESHUTDOWN, the
 * connect's -errno (e.g. -ECONNREFUSED), -EDEADLK (poll task), -ENOMEM;
 * the _timeout form also -ETIMEDOUT (the connection was abandoned). */
WEFT_API int weft_connect(struct weft_runtime *rt, const struct sockaddr *addr, socklen_t len,
			  struct weft_io **out);
WEFT_API int weft_connect_timeout(struct weft_runtime *rt, const struct sockaddr *addr,
				  socklen_t len, struct weft_io **out, uint64_t timeout_ns);

/*
 * Name resolution errors (getaddrinfo's, mapped to values below every
 * -errno, so they never collide; weft_strerror has a text for each):
 *   WEFT_EAI_NONAME  the host is not known (EAI_NONAME)
 *   WEFT_EAI_NODATA  the host is known but has no address of the family
 *                    wanted (EAI_NODATA, EAI_ADDRFAMILY)
 *   WEFT_EAI_AGAIN   temporary failure of the name server: try again later
 *   WEFT_EAI_FAIL    permanent failure of the name server
 *   WEFT_EAI_OTHER   any other resolver error
 * EAI_MEMORY is -ENOMEM and EAI_SYSTEM the system error (-errno).
 */
#define WEFT_EAI_NONAME (-4097)
#define WEFT_EAI_NODATA (-4098)
#define WEFT_EAI_AGAIN  (-4099)
#define WEFT_EAI_FAIL   (-4100)
#define WEFT_EAI_OTHER  (-4101)

/*
 * TCP over IPv4/IPv6 by host name or address ("127.0.0.1", "::1",
 * "localhost"; an address in brackets, "[::1]", as in a URL, is the
 * address inside). Names are resolved with getaddrinfo, never on a thread
 * that runs tasks: from a fiber on the runtime's blocking pool (the fiber
 * waits), from a thread outside the runtime on that thread. A numeric
 * address needs no lookup and works from anywhere; a poll task that would
 * need a lookup gets -EDEADLK. A lookup the caller stops waiting for (the
 * _timeout form's -ETIMEDOUT, a cancelled fiber's -ECANCELED) cannot be
 * interrupted: it runs on to its end on the blocking pool and its result
 * is freed there. weft_runtime_shutdown's time limit still holds, but
 * weft_runtime_destroy waits for that lookup to end (up to the resolver's
 * own time limits: resolv.conf's timeout times its attempts, per name
 * server and search domain). Every address the name resolves to is tried
 * in order until one works. A zone may follow a link-local IPv6 address
 * ("fe80::1%eth0", "[fe80::1%eth0]"). Refused without a lookup: "" and a
 * host with ':' or brackets that is not an IPv6 address ("host:80",
 * "[::1]:80": the port goes in port, not in host; also a zone the C
 * library refuses: an interface this host lacks, or "::1%lo", a zone
 * on an address that takes none) are -EINVAL; a name
 * longer than DNS allows (over 253 bytes, 254 with a final dot) is
 * WEFT_EAI_NONAME.
 *
 * weft_tcp_listen: host NULL listens on every address of both families
 * (Go's net.Listen("tcp", ":8080")): one IPv6 socket on "::" with
 * IPV6_V6ONLY off, which takes IPv4 clients too. Their addresses are
 * handed out as plain IPv4 ones (AF_INET, as Go reports them; the kernel's
 * ::ffff:a.b.c.d is converted by weft_accept's addr, weft_io_peer_addr,
 * weft_io_local_addr, weft_recvfrom and weft_recvmsg's msg_name), so a
 * struct sockaddr_in is enough for them (an IPv6 client's needs a struct
 * sockaddr_in6 or sockaddr_storage; a buffer too small is filled as far
 * as it goes and *addrlen says the whole length, as the kernel does), and
 * the listener's own address is "::" (weft_io_local_port works as for any
 * socket). On a host without IPv6 (socket(AF_INET6) says EAFNOSUPPORT, or
 * binding "::" EADDRNOTAVAIL) it listens on IPv4's 0.0.0.0 instead; any
 * other error is returned, not worked around (a port an IPv4 socket holds
 * is -EADDRINUSE). A host given is bound as named: "0.0.0.0" is IPv4
 * only, "::" follows the system's net.ipv6.bindv6only. Port 0 picks a
 * free port (see weft_io_local_port); backlog 0 means SOMAXCONN.
 * SO_REUSEADDR is set.
 * Errors: -EINVAL (NULL rt or out, backlog < 0, a host refused as
 * above), -ESHUTDOWN (nothing is resolved, bound or connected), a
 * WEFT_EAI_* code, -ENOMEM, -EDEADLK (as above), and the bind/listen -errno of the last address tried (e.g.
 * -EADDRINUSE).
 * weft_tcp_connect: as weft_connect, for each address in turn; the error
 * of the last address tried if none connects. The _timeout form's limit
 * covers the lookup and every attempt: with several addresses each gets
 * an equal share of the time left (at least 500 ms while that much is
 * left, the last one all of it), so one that never answers does not keep
 * the next untried, as with Go's dialer; -ETIMEDOUT once the limit is
 * spent. The addresses are tried one at a time: there is no Happy
 * Eyeballs race of IPv6 against IPv4 as Go's dialer runs. Without a limit an address that never answers holds the call
 * until the kernel gives up on it (about two minutes, then the next is
 * tried): give a limit. host must not be NULL (-EINVAL).
 */
WEFT_API int weft_tcp_listen(struct weft_runtime *rt, const char *host, uint16_t port,
			     int backlog, struct weft_io **out);
WEFT_API int weft_tcp_connect(struct weft_runtime *rt, const char *host, uint16_t port,
			      struct weft_io **out);
WEFT_API int weft_tcp_connect_timeout(struct weft_runtime *rt, const char *host, uint16_t port,
				      struct weft_io **out, uint64_t timeout_ns);
/* A UDP socket bound to host and port (0: any), as weft_tcp_listen
 * resolves and binds, but without SO_REUSEADDR: a port already bound is
 * -EADDRINUSE. Use weft_recvfrom / weft_sendto. host NULL: both families
 * on one socket, as weft_tcp_listen's (IPv4 0.0.0.0 on a host without
 * IPv6): weft_recvfrom gives an IPv4 sender as a plain sockaddr_in
 * (converted from the kernel's IPv4-mapped address), and weft_sendto
 * takes that, a mapped address or an IPv6 one. */
WEFT_API int weft_udp_bind(struct weft_runtime *rt, const char *host, uint16_t port,
			   struct weft_io **out);
/* Resolve host and port (SOCK_STREAM) as weft_tcp_connect does; free *res
 * with freeaddrinfo(). Errors: -EINVAL (NULL argument, or a host that
 * cannot be a name: see above), a WEFT_EAI_* code,
 * -ENOMEM, -EDEADLK, -ESHUTDOWN (the blocking pool is shut down). */
struct addrinfo;
WEFT_API int weft_resolve(struct weft_runtime *rt, const char *host, uint16_t port,
			  struct addrinfo **res);
/*
 * Unix-domain stream sockets (Go's net.Listen("unix"), Tokio's
 * UnixListener / UnixStream). path is a file system path, or "@name" for
 * Linux's abstract namespace (no file). Accept with weft_accept, then the
 * socket calls above. weft_unix_listen binds and listens (backlog 0:
 * SOMAXCONN); it does not remove a file already at path (-EADDRINUSE: a
 * stale socket file is the caller's to unlink), and the file stays after
 * weft_io_close (unlink it when done). Errors: -EINVAL (NULL rt, out or
 * path, an empty path or "@", backlog < 0), -ENAMETOOLONG (longer than
 * sun_path allows: a path of 108 bytes or more, an "@name" of 109 or
 * more), -ESHUTDOWN, weft_io_register's, and
 * bind/listen/connect's -errno (-EADDRINUSE, -ENOENT: no such socket,
 * -ECONNREFUSED: nobody listens there, -EACCES). A connect to a listener
 * whose backlog is full fails with -EAGAIN at once (the kernel offers no
 * readiness to wait for; Go's Dial says the same). The _timeout form also
 * -ETIMEDOUT.
 */
WEFT_API int weft_unix_listen(struct weft_runtime *rt, const char *path, int backlog,
			      struct weft_io **out);
WEFT_API int weft_unix_connect(struct weft_runtime *rt, const char *path, struct weft_io **out);
WEFT_API int weft_unix_connect_timeout(struct weft_runtime *rt, const char *path,
				       struct weft_io **out, uint64_t timeout_ns);
/*
 * Wait for child process pid to end and reap it (waitpid(2) for weft: Go's
 * cmd.Wait, Tokio's Child::wait), without holding a worker: a fiber
 * suspends, a thread blocks; start the child with posix_spawn, or fork
 * and exec at once (weft.h, fork). status (may be NULL) gets what
 * waitpid would store (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG).
 * timeout_ns: WEFT_FOREVER for none, 0 to look without waiting.
 * Errors: -EINVAL (NULL rt, pid <= 0), -ESRCH (no such process: a child
 * reaped already - by another wait, or because SIGCHLD is ignored - is
 * gone), -ECHILD (not a child of this process - a thread's id, not its
 * process's, among them - or reaped by another wait while this one waited), -ETIMEDOUT (still running: not reaped, wait
 * again), -ESHUTDOWN, -EDEADLK (poll task on a worker), -ECANCELED (the
 * calling fiber was cancelled, also when the child has ended already: it
 * is not reaped), -ENOSYS (a kernel before 5.3: no pidfd),
 * -ENOMEM, -EMFILE.
 */
WEFT_API int weft_child_wait(struct weft_runtime *rt, pid_t pid, int *status,
			     uint64_t timeout_ns);
/*
 * The same in two steps, to wait for a child beside other things (Tokio's
 * Child in a select!): weft_child_open registers pid's pidfd with rt's
 * driver; it turns readable once the child has ended, so a
 * WEFT_SEL_READY(io, WEFT_IO_READABLE) arm (or weft_io_wait) waits for it
 * next to a token's arm, a channel's, a timer's. weft_child_reap then
 * reaps the child and closes the registration: 0 (status as above),
 * -EAGAIN (still running: the registration stays, its readiness cleared
 * as after any weft call's EAGAIN; wait again), or an
 * error (-ECHILD: reaped by another wait; the registration is closed;
 * -EBADF: reaped or closed already - caught while the registration's memory
 * is not reused, as a second weft_io_close is; -EINVAL: NULL io, or a
 * registration weft_child_open did not make - a socket, a pipe, a pidfd
 * the caller registered itself -, left untouched).
 * To give up on a child, weft_io_close the registration (the child stays
 * the caller's to reap). open's errors: -EINVAL (NULL rt or out, pid <=
 * 0), -ESRCH, -ECHILD (not a child of this process, a thread's id
 * included), weft_io_register's
 * (-ESHUTDOWN, -ENOMEM), -ENOSYS, -EMFILE.
 */
WEFT_API int weft_child_open(struct weft_runtime *rt, pid_t pid, struct weft_io **out);
WEFT_API int weft_child_reap(struct weft_io *io, int *status);

/*
 * Processes (Go's exec.Cmd, Tokio's process::Command): start `file` with
 * argv (argv[0] first, NULL-terminated) and each standard stream
 * inherited, a pipe registered with rt, or /dev/null. `file` without a
 * '/' is looked up in PATH (execvp's rules) - the caller's PATH, not one
 * in opts.envp (as Go's exec.Command; Rust's Command would use the
 * child's); a relative `file` with a '/' ("./tool") is found from
 * opts.cwd when that is set (the child changes directory first, as Go's
 * Dir). The child starts with an empty signal mask; every descriptor weft
 * makes is close-on-exec, so no other child inherits one. Its signal
 * dispositions are exec's: a signal the caller catches (weft's
 * weft_signal_notify included) starts at its default, one the caller
 * ignores stays ignored (as Go's os/exec; unlike libuv, and unlike Rust's
 * Command for SIGPIPE): a program that set SIGPIPE to SIG_IGN passes that
 * on, and a shell cannot undo it - weft's own writes never raise SIGPIPE,
 * so a weft program need not ignore it. glibc's posix_spawn (2.36, at
 * least) also leaves its two internal signals, 32 and 33, ignored in the
 * child; glibc programs take them back as they start.
 *
 *     char *argv[] = { "sort", "-n", NULL };
 *     struct weft_process p;
 *     int rc = weft_process_spawn(rt, "sort", argv,
 *             &WEFT_OPTS_INIT(weft_process_opts,
 *                     .stdio = { WEFT_STDIO_PIPE, WEFT_STDIO_PIPE }), &p);
 *     weft_write(p.in, "3\n1\n2\n", 6);
 *     weft_io_close(p.in); p.in = NULL;     // EOF: sort answers now
 *     ... weft_read(p.out, buf, sizeof buf) until it returns 0 ...
 *     rc = weft_process_wait(&p, &status, WEFT_FOREVER);
 *     weft_process_close(&p);
 *
 * Errors of spawn, with nothing left behind (no process, no zombie, no
 * descriptor) and *out zeroed (every field 0 or NULL, so weft_process_close
 * on it is a no-op; unlike the other constructors, which leave their
 * out-parameter untouched on failure): -EINVAL (NULL or empty argument, argv[0] NULL, bad
 * options), -EBADF (a WEFT_STDIO_FD descriptor not open), posix_spawn's (-ENOENT, -EACCES, -ENOEXEC: the program could
 * not be executed - never a child that starts and exits 127, as a shell's
 * would; -ENOENT also for an opts.cwd that does not exist; -E2BIG: argv
 * and the environment past the kernel's limit; -EAGAIN, -ENOMEM), pipe2's
 * and open's (-EMFILE),
 * -ESHUTDOWN once rt's shutdown has begun (nothing is started), and the
 * registrations' (-ESHUTDOWN for a shutdown that began during the spawn,
 * -ENOMEM, -EMFILE for its pidfd, -ENOSYS before Linux 5.3: a child
 * already started is then killed with SIGKILL and reaped). SIGCHLD must not be ignored (the kernel would reap the child
 * itself) and no other waitpid(-1) may take it: a child reaped that way
 * before weft opened its pidfd gives -ESRCH or -ECHILD (its pid may name
 * another process by then, which is left alone; the program did run).
 */
enum weft_stdio {
	WEFT_STDIO_INHERIT = 0, /* the parent's own descriptor; one that is a
				 * non-blocking pipe (the parent registered its
				 * stdout, a pipe to a pager) is opened again for
				 * the child, blocking, as for WEFT_STDIO_FD. A
				 * socket cannot be opened again: one the parent
				 * registered (a socket-activated or inetd-style
				 * service's 0-2) reaches the child non-blocking,
				 * and a child that does not expect it fails its
				 * reads or writes with EAGAIN. Give such a child
				 * WEFT_STDIO_PIPE and copy, or weft_io_deregister
				 * the socket first (it is blocking again then) */
	WEFT_STDIO_PIPE,        /* a pipe; the parent's end registered with rt */
	WEFT_STDIO_NULL,        /* /dev/null */
	WEFT_STDIO_FD,          /* the caller's descriptor in opts.fd[i] (a file, a
				 * socket, another child's pipe end): the child gets a
				 * copy, the caller's stays open and its own (Go's
				 * cmd.Stdout = f, Tokio's Stdio::from); a non-blocking
				 * pipe (a registered one) is opened again for the child,
				 * blocking; other non-blocking files (a registered
				 * socket) stay so, as for WEFT_STDIO_INHERIT */
};

struct weft_process_opts {
	size_t sz;               /* WEFT_OPTS_INIT sets it */
	char *const *envp;       /* the environment; NULL: the caller's (environ) */
	const char *cwd;         /* the child's working directory; NULL: the caller's */
	enum weft_stdio stdio[3]; /* stdin, stdout, stderr; default INHERIT */
	int fd[3];               /* for WEFT_STDIO_FD: the caller's descriptors (any
				  * number, also 0-2 in another place: stdio[1] FD
				  * with fd[1] = 2 sends the child's stdout to the
				  * caller's stderr); -EBADF at the spawn for one that
				  * is not open */
	/* A process group for the child, as Go's SysProcAttr.Setpgid/Pgid
	 * (Tokio's process_group): pgid 0, a new group led by the child (a
	 * signal to -pid then reaches it and whatever it starts); otherwise
	 * the existing group pgid (-EPERM from the spawn when it is not a
	 * group of the caller's session). Default: the caller's group. */
	bool setpgid;
	pid_t pgid;
	/* A new session (setsid(2), Go's Setsid): a new group too, and no
	 * controlling terminal. With setpgid: -EINVAL. */
	bool setsid;
};

struct weft_process {
	pid_t pid;
	/* The child's pidfd registration: readable once the child has ended
	 * (a WEFT_SEL_READY arm waits for it beside others, then
	 * weft_child_reap - which closes it: set the field to NULL then; or
	 * weft_process_wait, which does). NULL once reaped. */
	struct weft_io *child;
	/* The parent's ends of the WEFT_STDIO_PIPE streams, else NULL: write
	 * the child's stdin to `in`, read its stdout and stderr from `out`
	 * and `err` (weft_write, weft_read, weft_reader_create, copies). To
	 * close one early (stdin, to send EOF), weft_io_close it and set the
	 * field to NULL. */
	struct weft_io *in, *out, *err;
	int _kill_fd;            /* private: weft_process_kill's pidfd + 1 (0: none),
				  * and the kills (and waits reading `child`) in
				  * flight on it */
	unsigned _fork_gen;      /* private: the runtime's fork generation + 1 (0: none);
				  * in the tail padding: the size is unchanged */
};

WEFT_API int weft_process_spawn(struct weft_runtime *rt, const char *file, char *const argv[],
				const struct weft_process_opts *opts, struct weft_process *out);
/* Wait for the child to end and reap it: 0 and *status (may be NULL) as
 * waitpid's (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG); p->child is
 * NULL then. timeout_ns: WEFT_FOREVER for none, 0 to look without waiting.
 * The pipes stay open (read what the child wrote after it ended). Two
 * tasks may wait at once: one reaps, the other says -ECHILD. Errors:
 * -EINVAL, -ECHILD (reaped already, or reaped by another wait, also one
 * that waited beside this one), -ETIMEDOUT (still running), -EBADF
 * (after weft_process_close, or one on another task meanwhile, which ends
 * the wait: the child is not reaped), weft_io_wait's (-ECANCELED in a
 * cancelled fiber, -EDEADLK in a poll task: use weft_process_wait_poll
 * there, -ESHUTDOWN). */
WEFT_API int weft_process_wait(struct weft_process *p, int *status, uint64_t timeout_ns);
/* Poll form, for poll tasks: 0 and *status once the child has ended and
 * is reaped (p->child NULL then), WEFT_PENDING with cx's waker registered
 * on the child's registration (one waiting task at a time, as
 * weft_io_poll_ready), or an error: -EINVAL (NULL p or cx), -ECHILD (as
 * weft_process_wait; and first, before the poll, in a child forked from
 * the poll task, as weft_process_kill), -EBADF (as weft_process_wait; or p->child closed),
 * -ESHUTDOWN, -EIO (io_uring: the pidfd's poll
 * failed, so no readiness will come while the child runs; the child is
 * not reaped - weft_process_wait still waits for it, looking every 10 ms). */
WEFT_API int weft_process_wait_poll(struct weft_process *p, struct weft_cx *cx, int *status);
/* Send signal sig to the child through its pidfd (never to a process that
 * took over its pid): 0 (also to a child that has ended and is not reaped
 * yet, which ignores it), -ESRCH (reaped), -EBADF (after
 * weft_process_close), -EINVAL, -EPERM, -ECHILD in a forked child (before
 * anything else but -EINVAL, as spawn and the waits: the child's copy of
 * the pidfd would signal the parent's process). Safe beside a weft_process_wait on
 * another thread or fiber (the usual "kill it when the time is up"); sig 0
 * checks that it has not been reaped. Safe beside weft_process_close
 * too: a kill that began first reaches this child (the close waits for
 * it), one after says -EBADF. */
WEFT_API int weft_process_kill(struct weft_process *p, int sig);
/* Close whatever is still open in p (pipes, the child's registration);
 * the fields become NULL. A child not yet reaped keeps running and is the
 * caller's to reap (waitpid(p->pid)): weft reaps nothing in the background
 * (unlike Tokio, which reaps a dropped Child's zombie later), so a close
 * without a wait leaves a zombie once the child ends. A wait on another
 * task ends with -EBADF. Returns 0 or the first close error; -ECHILD in a
 * forked child, p untouched (the child closes its copies with close(2),
 * weft_io_fd(p->in) and the others, as weft.h says). */
WEFT_API int weft_process_close(struct weft_process *p);
/* The local port of a socket, or a negative errno (-EBADF once the
 * registration is closed or deregistered). */
WEFT_API int weft_io_local_port(const struct weft_io *io);
/* A socket's own address (getsockname) or its peer's (getpeername), as
 * Go's LocalAddr/RemoteAddr and Tokio's local_addr/peer_addr: *len in is
 * addr's size, out the address's (larger than given: truncated, as the
 * system calls do). 0, -EINVAL (a NULL argument), -EBADF (closed or
 * deregistered), or the call's -errno (-ENOTCONN: no peer, -ENOTSOCK). */
WEFT_API int weft_io_local_addr(const struct weft_io *io, struct sockaddr *addr, socklen_t *len);
WEFT_API int weft_io_peer_addr(const struct weft_io *io, struct sockaddr *addr, socklen_t *len);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
