#!/usr/bin/env python3
"""examples/kv driven by three clients: pipelined requests answered in order
in one batch, a value set by one client read by the other, errors, the
connection's name in the log lines (a fiber-local value, logged through a
bounded queue: a log that falls behind drops lines, counted, and the
server's memory stays bounded), QUIT, then SIGTERM: the open connection is told BYE and
the server exits 0 having served all three; a client that sends and never
reads is dropped by the 2 s write limit and cannot hold shutdown up. And
a client that sends its requests and then its end of stream (`printf ... |
nc -N`) gets every answer before the close; one whose requests after QUIT,
or the rest of a request too long, the server never reads gets every
answer, then the end of the stream, not a reset."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

def fail(msg):
    print("kv-test: FAIL:", msg)
    sys.exit(1)

def read_lines(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    end = time.time() + timeout
    while buf.count(b"\n") < n and time.time() < end:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        if not data:
            break
        buf += data
    lines = buf.decode().split("\n")[:-1]
    if len(lines) < n:
        fail("wanted %d lines, got %r" % (n, lines))
    return lines

def half_closed():
    """Requests, then the client's end of stream (shutdown SHUT_WR): every
    answer comes before the server closes (they were dropped: the end of
    stream ended the connection with the batch still in the writer)."""
    srv = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"port (\d+)", srv.stdout.readline()).group(1))
        for req, want in [(b"SET a 1\nGET a\n", b"OK\nVALUE 1\n"), (b"GET a\n", b"VALUE 1\n"),
                          (b"DEL a\nGET a", b"OK\nNOT_FOUND\n")]:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            got = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            s.close()
            if got != want:
                fail("%r then end of stream: answered %r, want %r" % (req, got, want))
    finally:
        srv.kill()
        srv.wait()


def unread_input():
    """The server closes with input it never read: requests pipelined after
    QUIT, the rest of a request too long. The client gets every answer,
    then the end of the stream (the close over the unread bytes reset the
    connection: ECONNRESET after the answers, or instead of them)."""
    srv = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"port (\d+)", srv.stdout.readline()).group(1))
        for req, want in [(b"SET a 1\nQUIT\n" + b"GET a\n" * 1000, b"OK\nBYE\n"),
                          (b"GET " + b"k" * 3000 + b"\n" + b"GET a\n" * 10,
                           b"ERR request too long\n")]:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            s.settimeout(5)
            got, how = b"", "EOF"
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
            except ConnectionResetError:
                how = "reset"
            s.close()
            if (got, how) != (want, "EOF"):
                fail("%r...: answered %r then %s, want %r then EOF" % (req[:12], got, how, want))
    finally:
        srv.kill()
        srv.wait()


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def log_behind():
    """A log that falls behind: the server's stdout is a pipe nobody reads
    (a terminal paused by ^S, a stalled consumer) while a client pipelines
    400,000 SETs. Every SET is answered, and the server's memory stays
    bounded: log lines that find the logger's queue full are dropped and
    counted ("N log lines dropped" once the log is read again). Before,
    each line queued in an unbounded channel: 64 MB and more here,
    growing with every request."""
    env = dict(os.environ, WEFT_WORKERS="2")  # the logger's blocked write holds one
    srv = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(re.search(r"port (\d+)", srv.stdout.readline()).group(1))
        before = rss_kib(srv.pid)
        s = socket.create_connection(("127.0.0.1", port))
        total, chunk = 400000, 1000
        req = b"".join(b"SET k%d v\n" % i for i in range(chunk))
        err = []

        def send():
            try:
                for _ in range(total // chunk):
                    s.sendall(req)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=send)
        t.start()
        s.settimeout(30)
        want, got = b"OK\n" * total, bytearray()
        try:
            while len(got) < len(want):
                d = s.recv(1 << 16)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        t.join(30)
        if err or bytes(got) != want:
            fail("log behind: %d of %d answers (%r)" % (got.count(b"\n"), total, err))
        grew = rss_kib(srv.pid) - before
        if grew > 32 * 1024:
            fail("log behind: the server grew by %d KiB for 400,000 SETs (the log queue "
                 "is unbounded)" % grew)
        # the log is read again: the logger says what it dropped
        out = []
        r = threading.Thread(target=lambda: out.append(srv.stdout.read()))
        r.start()
        s.close()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            fail("log behind: still running 20 s after SIGTERM")
        r.join(20)
        if srv.returncode != 0 or not out or \
                not re.search(r"^\[kv\] \d+ log lines dropped", out[0], re.M):
            fail("log behind: exit %s, no count of dropped lines in the log" % srv.returncode)
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait()


half_closed()
unread_input()
log_behind()
srv = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True)
try:
    m = re.search(r"port (\d+)", srv.stdout.readline())
    if not m:
        fail("no port")
    port = int(m.group(1))
    a = socket.create_connection(("127.0.0.1", port))
    b = socket.create_connection(("127.0.0.1", port))
    # pipelined: six requests in one packet, six answers in order
    a.sendall(b"SET a 1\nSET b two words\nGET a\nGET zz\nDEL a\nGET a\n")
    got = read_lines(a, 6)
    if got != ["OK", "OK", "VALUE 1", "NOT_FOUND", "OK", "NOT_FOUND"]:
        fail("pipelined answers: %r" % got)
    b.sendall(b"GET b\r\nFOO x\nGET\n" + b"GET " + b"k" * 65 + b"\n")
    got = read_lines(b, 4)
    if got[0] != "VALUE two words" or not all(l.startswith("ERR ") for l in got[1:]):
        fail("b's answers: %r" % got)
    # a request whose next one is still partial: answered now, not held
    # until the client sends more
    a.sendall(b"GET b\nGE")
    if read_lines(a, 1, timeout=2) != ["VALUE two words"]:
        fail("an answer held back behind a partial request")
    a.sendall(b"T zz\nSET sp  1\nGET sp\nSET novalue\nBAD\n")
    got = read_lines(a, 5)
    if got[:3] != ["NOT_FOUND", "OK", "VALUE 1"] or not got[3].startswith("ERR SET needs") \
            or not got[4].startswith("ERR unknown"):
        fail("answers: %r" % got)
    # a client that sends requests and never reads the answers: its
    # connection is dropped (2 s write limit), so it cannot hold shutdown
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(0.5)
    sent = 0
    try:
        while sent < 64 << 20:
            sent += c.send(b"GET b\n" * 1024)
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    a.sendall(b"QUIT\n")
    if read_lines(a, 1) != ["BYE"]:
        fail("QUIT")
    a.settimeout(5)
    if a.recv(10) != b"":
        fail("a's connection stays open after QUIT")
    srv.send_signal(signal.SIGTERM)
    if read_lines(b, 1) != ["BYE server shutting down"]:
        fail("b not told of the shutdown")
    b.close()  # the server lingers for its clients' ends: 2 s at most
    try:
        out, _ = srv.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        fail("still running 10 s after SIGTERM (a client that does not read held it)")
    if srv.returncode != 0:
        fail("server exited %d" % srv.returncode)
    for want in [r"\[conn-\d+\] connected", r"\[conn-\d+\] SET a", r"\[conn-\d+\] DEL a",
                 r"\[conn-\d+\] closed", r"SIGTERM, served 3 connections"]:
        if not re.search(want, out):
            fail("log: no %r in %r" % (want, out))
    names = set(re.findall(r"\[(conn-\d+)\] connected", out))
    if len(names) != 3:
        fail("three connections, three names: %r" % names)
    print("kv-test: passed")
finally:
    if srv.poll() is None:
        srv.kill()
