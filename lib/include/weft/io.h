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
 * weft_runtime_shutdown has begun, calls that would make a registration
 * (weft_io_register, weft_accept, weft_connect, weft_tcp_listen,
 * weft_tcp_connect) fail with -ESHUTDOWN, as spawns do. All calls return a byte count or 0 on success, or a
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

/* Register fd (made non-blocking) with rt's driver. -EINVAL, -ENOMEM,
 * -ESHUTDOWN (rt is shut down or shutting down; fd untouched unless the
 * shutdown raced with the call, and never closed), or the epoll_ctl error
 * (e.g. -EPERM for a regular file). */
WEFT_API int weft_io_register(struct weft_runtime *rt, int fd, struct weft_io **out);
/* Deregister and close the fd; wakes every waiter with -EBADF. */
WEFT_API int weft_io_close(struct weft_io *io);
/* Deregister without closing; returns the fd (>= 0) for the caller to keep. */
WEFT_API int weft_io_deregister(struct weft_io *io);
WEFT_API int weft_io_fd(const struct weft_io *io);

/*
 * Poll form. A readiness value carries a tick; weft_io_clear_ready clears
 * the bits only if no newer readiness arrived since it was read, so an
 * event that lands between "read returned EAGAIN" and "clear" is never
 * lost. weft_io_poll_ready returns WEFT_READY with *ready set when any bit
 * of `interest` (or HUP, ERROR, CLOSED) is set, else registers cx's waker.
 */
struct weft_io_ready { unsigned mask; uint64_t tick; };
WEFT_API enum weft_poll weft_io_poll_ready(struct weft_io *io, struct weft_cx *cx,
					   unsigned interest, struct weft_io_ready *ready);
WEFT_API void weft_io_clear_ready(struct weft_io *io, struct weft_io_ready ready);

/* Wait until one of `events` is ready: returns the ready mask (> 0),
 * -ETIMEDOUT, -EBADF (closed), -ESHUTDOWN, -EDEADLK, -ENOMEM.
 * timeout_ns: WEFT_FOREVER for none; 0 reports whether the fd is ready now,
 * without waiting. A wait that runs out of time asks the fd (poll(2) with
 * timeout 0) before returning -ETIMEDOUT, so readiness the driver has not
 * reported yet - right after weft_io_register, say - is not missed. */
WEFT_API int weft_io_wait(struct weft_io *io, unsigned events, uint64_t timeout_ns);

/* Socket calls (blocking-style). read/recv return 0 at end of stream.
 * weft_write/weft_send write all n bytes unless an error occurs. */
WEFT_API ssize_t weft_read(struct weft_io *io, void *buf, size_t n);
WEFT_API ssize_t weft_write(struct weft_io *io, const void *buf, size_t n);
WEFT_API ssize_t weft_recv(struct weft_io *io, void *buf, size_t n, int flags);
WEFT_API ssize_t weft_send(struct weft_io *io, const void *buf, size_t n, int flags);
/* Accept a connection, registered with the listener's runtime. addr/len may
 * be NULL. After shutdown: -ESHUTDOWN (an accepted fd is closed). */
WEFT_API int weft_accept(struct weft_io *listener, struct weft_io **out,
			 struct sockaddr *addr, socklen_t *addrlen);
WEFT_API int weft_connect(struct weft_runtime *rt, const struct sockaddr *addr, socklen_t len,
			  struct weft_io **out);
/* TCP over IPv4/IPv6 by host name or address ("127.0.0.1", "::1", "localhost").
 * Listen: port 0 picks a free port (see weft_io_local_port).
 * weft_connect, weft_tcp_listen and weft_tcp_connect return -ESHUTDOWN on
 * a runtime that is shut down (nothing is resolved, bound or connected). */
WEFT_API int weft_tcp_listen(struct weft_runtime *rt, const char *host, uint16_t port,
			     int backlog, struct weft_io **out);
WEFT_API int weft_tcp_connect(struct weft_runtime *rt, const char *host, uint16_t port,
			      struct weft_io **out);
/* The local port of a socket, or a negative errno. */
WEFT_API int weft_io_local_port(const struct weft_io *io);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
