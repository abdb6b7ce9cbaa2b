/*
 * weft/signal.h - Unix signals delivered into channels, as Go's
 * signal.Notify does: a fiber waits for SIGINT or SIGTERM with
 * weft_chan_recv, or as an arm of weft_select beside its other work (a
 * graceful shutdown without a sigwait thread of one's own).
 *
 *   struct weft_chan *sigs;
 *   weft_chan_create(sizeof(int), 4, &sigs);
 *   weft_signal_notify(sigs, SIGINT);
 *   weft_signal_notify(sigs, SIGTERM);
 *   ... in a fiber: int signo; weft_chan_recv(sigs, &signo);
 *   weft_signal_stop(sigs); weft_chan_destroy(sigs);
 *
 * Process-wide, not tied to a runtime. From the first weft_signal_notify
 * for a signal until the last weft_signal_stop that leaves it with no
 * channel, the signal's previous disposition (its default action, SIG_IGN,
 * or the program's own handler) does not apply: weft's handler counts each
 * delivery, and one relay thread per process (started by the first notify)
 * sends the signal's number into every channel notified for it. With the
 * last stop the previous disposition comes back.
 *
 * Deliveries never block the relay: a channel that is full (or rendezvous
 * with no receiver waiting, or closed) misses that delivery, which is
 * counted (weft_signal_dropped): give the channel a buffer, as Go asks. As
 * with the kernel's own standard signals, deliveries of one signal that
 * arrive before the relay runs coalesce: a channel gets at least one item
 * for them. A thread that blocks the signal (pthread_sigmask) is not
 * interrupted by it; a signal every thread blocks stays pending.
 *
 * The relay thread, once started, stays for the life of the process (the
 * last stop leaves it idle) and belongs to no runtime: notifications
 * outlive weft_runtime_destroy, and channels read by fibers of several
 * runtimes work alike. Real-time signals (SIGRTMIN..SIGRTMAX) coalesce
 * as the standard ones do here, though the kernel queues them.
 *
 * Under ThreadSanitizer (-fsanitize=thread) a handler runs only once the
 * thread the kernel chose enters a call TSan intercepts; weft's waits are
 * raw futex system calls, so a signal from another process that lands on
 * a thread waiting in weft (a weft_join in main, say) is not relayed until
 * that thread wakes. Such a program under TSan can block the notified
 * signals (pthread_sigmask) in every thread but one that waits in an
 * intercepted call, or be sent its signals with kill(2) from its own
 * threads. Other builds are not affected.
 *
 * SIGCHLD may be notified: weft_process_wait and weft_child_wait wait on
 * pidfds, not on SIGCHLD, and weft's handler leaves children for them to
 * reap (only SIG_IGN for SIGCHLD breaks them, see weft/io.h). SIGPIPE:
 * weft's own writes never raise it (sockets with MSG_NOSIGNAL; a pipe's
 * write takes off the SIGPIPE it raised and returns -EPIPE), so a channel
 * notified for SIGPIPE sees only those of the program's own writes and
 * of kill(2).
 *
 * A channel must be stopped (weft_signal_stop) before it is destroyed:
 * weft_chan_destroy says -EBUSY (nothing freed) while it is notified for
 * any signal. A forked child starts with no channel notified and the
 * previous dispositions back.
 */
#ifndef WEFT_SIGNAL_H_PUBLIC
#define WEFT_SIGNAL_H_PUBLIC

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_chan;

/* Send signo into ch on each delivery (ch's item size must be
 * sizeof(int)). Notifying the same channel for the same signal again is a
 * no-op (0). Errors: -EINVAL (NULL ch, an item size other than
 * sizeof(int), signo out of range, or a signal that cannot be relayed:
 * SIGKILL and SIGSTOP, which cannot be caught, and the fault signals
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS, whose handler must
 * act on the faulting thread, and the C library's reserved signals from 32
 * below SIGRTMIN), -ENOMEM, -EAGAIN (the relay thread could
 * not be started), -EMFILE/-ENFILE (no fd for its pipe), sigaction's
 * -errno (-EPERM under a seccomp filter that refuses it). Nothing changes
 * on an error: a relay thread the call started ends again. */
WEFT_API int weft_signal_notify(struct weft_chan *ch, int signo);

/* Stop every delivery into ch; when it returns, the relay sends ch nothing
 * more. 0, -ENOENT (ch was not notified for any signal), -EINVAL (NULL). */
WEFT_API int weft_signal_stop(struct weft_chan *ch);

/* Deliveries a channel missed because it could not take the item at once
 * (full, rendezvous, closed), over the process's life. */
WEFT_API uint64_t weft_signal_dropped(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SIGNAL_H_PUBLIC */
