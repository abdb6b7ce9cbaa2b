#!/usr/bin/env python3
"""examples/chat at its limits.

    chat-limits.py CHAT_BINARY full|slow

full: MAX_CLIENTS (256) clients join; two more, talking at once (never
      read), are told "server full" and get the end of the stream, not a
      reset; their connections closed, while the members still talk to each other
      and never hear of the two; once a member leaves, a new client joins.
      SIGTERM: exit 0, every connection counted.
slow: a client that never reads (a 4 KiB receive buffer) while another
      floods the room: once the buffers are full, a line to it cannot be
      written within the 2 s write deadline and the server drops it (the
      others see it leave 2-10 s after the flood starts); what it was sent
      is whole lines, then the end of the stream. The flooding client is
      not dropped.
"""
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time

from streams import read_to_end

MAX_CLIENTS = 256


def fail(msg):
    print("chat-limits: FAIL:", msg)
    sys.exit(1)


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def lines_until(self, pattern, timeout=5.0):
        """Read lines until one matches pattern ("<EOF>": the end of the
        stream); return all lines read."""
        got, end = [], time.time() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                got.append(line.decode())
                if re.search(pattern, got[-1]):
                    return got
            left = end - time.time()
            if left <= 0:
                break
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                got.append("<EOF>")
                if pattern == "<EOF>":
                    return got
                break
            self.buf += data
        fail("waited for %r, got %r" % (pattern, got[-5:]))

    def close(self):
        self.s.close()


def start(binary, idle="300"):
    srv = subprocess.Popen([binary, "0", idle], stdout=subprocess.PIPE, text=True)
    m = re.search(r"port (\d+)", srv.stdout.readline())
    if not m:
        srv.kill()
        fail("no port on the server's first line")
    return srv, int(m.group(1))


def stop(srv, served):
    srv.send_signal(signal.SIGTERM)
    out, _ = srv.communicate(timeout=20)
    if srv.returncode != 0:
        fail("server exited %d" % srv.returncode)
    if not re.search(r"served %d connections" % served, out):
        fail("summary %r, expected %d connections served" % (out, served))


def test_full(binary):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    srv, port = start(binary)
    try:
        members = []
        for _ in range(MAX_CLIENTS):
            c = Client(port)
            c.lines_until(r"welcome, you are user\d+")
            members.append(c)
        over = [Client(port) for _ in range(2)]
        for c in over:
            # it talks at once; the server never reads it: told, then the
            # end of the stream (the close over its unread line reset the
            # connection: ECONNRESET after the notice, or instead of it)
            c.s.sendall(b"let me in\n" * 100)
            got, how = read_to_end(c.s)
            if got != b"server full, try again later\n" or how != "EOF":
                fail("a client over the limit got %r then %s, want the notice then EOF"
                     % (got, how))
            c.close()
        # the members still talk, and never heard of the two
        members[0].s.sendall(b"hello all\n")
        got = members[1].lines_until(r"^user\d+: hello all$")
        got += members[MAX_CLIENTS - 1].lines_until(r"^user\d+: hello all$")
        ids = {int(x) for l in got for x in re.findall(r"^\* user(\d+) joined", l)}
        if ids and max(ids) > MAX_CLIENTS:
            fail("members were told of a client the server did not take: %r" % sorted(ids)[-3:])
        # a member leaves: its slot is free for a new client
        members.pop().close()
        members[0].lines_until(r"\* user\d+ left")
        c = Client(port)
        c.lines_until(r"welcome, you are user\d+")
        members.append(c)
        for c in members:
            c.close()
        stop(srv, MAX_CLIENTS + 3)
        print("chat-limits: full: 2 clients over %d told and closed; a freed slot taken" % MAX_CLIENTS)
    finally:
        if srv.poll() is None:
            srv.kill()


def test_slow(binary):
    srv, port = start(binary)
    try:
        b = Client(port)
        idb = re.search(r"user(\d+)", b.lines_until(r"welcome, you are user\d+")[-1]).group(1)
        a = socket.socket()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.connect(("127.0.0.1", port))  # and never reads until the end
        joined = b.lines_until(r"^\* user(?!%s )\d+ joined$" % idb)[-1]
        ida = re.search(r"user(\d+)", joined).group(1)
        left = re.compile(r"^\* user%s left$" % ida)
        # b floods (150-byte lines, relayed to a only) and reads
        b.s.setblocking(False)
        chunk = (b"x" * 150 + b"\n") * 50
        pending, seen, t0 = b"", [], time.time()
        while not any(left.match(l) for l in seen):
            if time.time() - t0 > 15:
                fail("the client that does not read was not dropped in 15 s")
            if not pending:
                pending = chunk
            try:
                pending = pending[b.s.send(pending):]
            except BlockingIOError:
                pass
            select.select([b.s], [], [], 0.001)
            try:
                data = b.s.recv(65536)
                if not data:
                    fail("the flooding client was dropped")
                b.buf += data
            except BlockingIOError:
                pass
            while b"\n" in b.buf:
                line, b.buf = b.buf.split(b"\n", 1)
                seen.append(line.decode())
        waited = time.time() - t0
        if not 2 <= waited <= 10:
            fail("dropped %.1f s after the flood began; expected 2 s after the buffers filled" % waited)
        # what a got: whole lines, then the end of the stream
        a.settimeout(5)
        data = b""
        while True:
            d = a.recv(1 << 20)
            if not d:
                break
            data += d
        lines = data.split(b"\n")[:-1]
        bad = [l[:60] for l in lines if not re.match(rb"^(welcome, you are user\d+|\* user\d+ joined|user\d+: x+)$", l)]
        if bad:
            fail("%d malformed lines sent to the slow client: %r" % (len(bad), bad[:3]))
        a.close()
        b.s.setblocking(True)
        b.close()
        stop(srv, 2)
        print("chat-limits: slow: a client that does not read dropped %.1f s after the flood began "
              "(%d bytes, %d whole lines sent to it)" % (waited, len(data), len(lines)))
    finally:
        if srv.poll() is None:
            srv.kill()


binary, test = sys.argv[1], sys.argv[2]
if test == "full":
    test_full(binary)
elif test == "slow":
    test_slow(binary)
else:
    fail("unknown test %r" % test)
print("chat-limits: passed")
