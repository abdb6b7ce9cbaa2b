#!/usr/bin/env python3
"""A server example out of file descriptors (EMFILE on accept).

    accept-errors.py PROGRAM echo|http|kv|chat|runner|proxy
    accept-errors.py PROGRAM echo ACCEPT_FAIL_MODULE

The server starts; its fd limit is then lowered (prlimit) to what it has
open plus 3, and 8 clients connect: 3 are accepted, the others wait in the
listen queue while every accept fails with EMFILE. For 1.5 s the server
must stay up, use little CPU (it backs off instead of retrying at once)
and write at most a few lines to stderr (one a second, not one per
failure); the clients it accepted are still served. Once every client has
closed, a new client is served. (kv, chat and runner looked for the next
client at once after a failed accept: a core spun at 100% with nothing
said.) proxy relays to an echo server run here; each client it accepts
takes a second fd (its connection to the target), so its limit is what
it has open plus 2: one client (served first) and its target, the
others queued (proxy said so every 50 ms, 36 lines in 1.8 s).

With ACCEPT_FAIL_MODULE (accept_fail.c, LD_PRELOAD), accept loses
connections to other errors instead. An error of one connection (EPERM,
EPROTO, ECONNABORTED, ENETUNREACH, EHOSTUNREACH: its first 2 connections
are closed and accept fails so) must be reported on stderr and the next
client served (echo exited 1 on all but ECONNABORTED); an error saying the
listener is unusable (EBADF, EINVAL) must end it, status 1, with the error
named.
"""
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

REQUEST = {"echo": (b"ping\n", b"ping\n"),
           "http": (b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK"),
           "kv": (b"GET k\n", b"NOT_FOUND\n"),
           "chat": (b"", b"welcome"),  # said on joining
           "runner": (b"exit 3\n", b"exit 3\n"),
           "proxy": (b"ping\n", b"ping\n")}  # to the echo target below


def fail(msg):
    print("accept-errors: FAIL:", msg)
    sys.exit(1)


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def exchange(s, kind, want=None):
    ask, want = REQUEST[kind][0], want or REQUEST[kind][1]
    s.sendall(ask)
    got = b""
    while len(got) < len(want):
        d = s.recv(4096)
        if not d:
            break
        got += d
    return got.startswith(want)


def connect(port, timeout):
    if isinstance(port, str):  # runner: a Unix socket's path
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(port)
        return s
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def served(port, kind):
    """A new client gets its answer (within 2 s)."""
    s = connect(port, 2)
    try:
        return exchange(s, kind)
    except (socket.timeout, ConnectionError):
        # not this time: proxy's relays of the closed clients still in
        # its backlog hold fds for a moment, and a relay whose connect to
        # the target fails (EMFILE) closes its client over the unread
        # request, a reset (the caller tries again, for up to 5 s)
        return False
    finally:
        s.close()


prog, kind = sys.argv[1], sys.argv[2]


def lost_connections(module):
    """accept fails with errno E (accept_fail.c); see the docstring."""
    import errno
    for name, fatal in (("EPERM", False), ("EPROTO", False), ("ECONNABORTED", False),
                        ("ENETUNREACH", False), ("EHOSTUNREACH", False),
                        ("EBADF", True), ("EINVAL", True)):
        env = dict(os.environ, LD_PRELOAD=module,
                   WEFT_TEST_ACCEPT_FAIL="%d:%s" % (getattr(errno, name), "0+" if fatal else "2"))
        err = tempfile.TemporaryFile("w+")
        srv = subprocess.Popen([prog, "0"], stdout=subprocess.PIPE, stderr=err, text=True,
                               env=env)
        try:
            m = re.search(r"127\.0\.0\.1:(\d+)", srv.stdout.readline())
            if not m:
                fail("%s: no port on stdout" % name)
            port = int(m.group(1))
            if fatal:
                s = connect(port, 2)
                try:
                    srv.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    fail("%s: the server still runs with its listener unusable" % name)
                s.close()
                err.seek(0)
                msg = err.read()
                print("accept-errors: %s: exit %d, %r" % (name, srv.returncode, msg.strip()))
                if srv.returncode != 1 or "accept" not in msg:
                    fail("%s: exit %d, %r" % (name, srv.returncode, msg))
                continue
            for _ in range(2):   # lost: closed by the module
                try:
                    s = connect(port, 2)
                except OSError:   # refused: the server is gone (below)
                    break
                try:
                    s.recv(16)
                except (socket.timeout, ConnectionError):
                    pass
                s.close()
            time.sleep(0.2)
            end = time.time() + 5
            while True:
                if srv.poll() is not None:
                    err.seek(0)
                    fail("%s: the server exited (%d): %r" % (name, srv.returncode, err.read()))
                try:
                    if served(port, kind):
                        break
                except OSError:
                    pass
                if time.time() > end:
                    fail("%s: no client served after the lost connections" % name)
            err.seek(0)
            lines = err.read().splitlines()
            print("accept-errors: %s: served after 2 lost connections, stderr %r"
                  % (name, lines[:2]))
            if not lines or "accept" not in lines[0]:
                fail("%s: the accept error was not reported" % name)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
            err.close()
    print("accept-errors: passed")


if len(sys.argv) > 3:
    lost_connections(sys.argv[3])
    sys.exit(0)
tmp = tempfile.mkdtemp(prefix="weft-accept-")


def echo_target():
    """An echo server for proxy to relay to: its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)

    def serve(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)

    def accept():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1]


if kind == "runner":
    args = [prog, os.path.join(tmp, "r.sock")]
elif kind == "proxy":
    args = [prog, "0", "127.0.0.1", str(echo_target())]
else:
    args = [prog, "0"] + (["2"] if kind == "http" else [])
err = tempfile.TemporaryFile("w+")
srv = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
clients = []
try:
    m = re.search(r"listening on (\S+)" if kind == "runner" else r"(?:127\.0\.0\.1:|port )(\d+)",
                  srv.stdout.readline())
    if not m:
        fail("no port on stdout")
    port = m.group(1) if kind == "runner" else int(m.group(1))
    nfd = len(os.listdir("/proc/%d/fd" % srv.pid))
    spare = 2 if kind == "proxy" else 3  # proxy: a client and its target
    resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (nfd + spare, nfd + spare))
    if kind == "proxy":
        # its first client and that client's target connection first,
        # so that the others meet EMFILE at accept, not at the connect
        clients.append(connect(port, 5))
        if not exchange(clients[0], kind):
            fail("the first client is not served")
    while len(clients) < 8:
        clients.append(connect(port, 5))
    time.sleep(0.3)
    c0 = cpu_s(srv.pid)
    time.sleep(1.5)
    if srv.poll() is not None:
        err.seek(0)
        fail("the server exited (%d) on EMFILE: %r" % (srv.returncode, err.read()[-300:]))
    cpu = cpu_s(srv.pid) - c0
    err.seek(0)
    lines = err.read().splitlines()
    print("accept-errors: %s: %.2f s CPU in 1.5 s of EMFILE, %d stderr lines: %r"
          % (os.path.basename(prog), cpu, len(lines), lines[:2]))
    if not lines or "accept" not in lines[0]:
        fail("the accept error was not reported")
    if len(lines) > 4:
        fail("%d stderr lines in 1.8 s: not rate-limited" % len(lines))
    if cpu > 0.3:
        fail("%.2f s CPU in 1.5 s: accept retried without a pause" % cpu)
    # (runner's command needs fds of its own: out of them, it answers an error)
    if not exchange(clients[0], kind, b"e" if kind == "runner" else None):
        fail("an accepted client is no longer served")
    for s in clients:
        s.close()
    clients = []
    end = time.time() + 5
    while not served(port, kind):
        if time.time() > end:
            fail("no client served after the others closed")
    if srv.poll() is not None:
        fail("the server exited (%d)" % srv.returncode)
    print("accept-errors: passed")
finally:
    for s in clients:
        s.close()
    if srv.poll() is None:
        srv.kill()
        srv.wait()
    err.close()
    shutil.rmtree(tmp, ignore_errors=True)
