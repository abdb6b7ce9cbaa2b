#!/usr/bin/env python3
"""examples/kv driven by two clients: pipelined requests answered in order
in one batch, a value set by one client read by the other, errors, the
connection's name in the log lines (a fiber-local value, logged through an
unbounded channel), QUIT, then SIGTERM: the open connection is told BYE and
the server exits 0 having served both."""
import re
import signal
import socket
import subprocess
import sys
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
    a.sendall(b"QUIT\n")
    if read_lines(a, 1) != ["BYE"]:
        fail("QUIT")
    a.settimeout(5)
    if a.recv(10) != b"":
        fail("a's connection stays open after QUIT")
    srv.send_signal(signal.SIGTERM)
    if read_lines(b, 1) != ["BYE server shutting down"]:
        fail("b not told of the shutdown")
    out, _ = srv.communicate(timeout=10)
    if srv.returncode != 0:
        fail("server exited %d" % srv.returncode)
    for want in [r"\[conn-\d+\] connected", r"\[conn-\d+\] SET a", r"\[conn-\d+\] DEL a",
                 r"\[conn-\d+\] closed", r"SIGTERM, served 2 connections"]:
        if not re.search(want, out):
            fail("log: no %r in %r" % (want, out))
    names = set(re.findall(r"\[(conn-\d+)\] connected", out))
    if len(names) != 2:
        fail("two connections, two names: %r" % names)
    print("kv-test: passed")
finally:
    if srv.poll() is None:
        srv.kill()
