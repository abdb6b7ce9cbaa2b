#!/usr/bin/env python3
"""examples/proxy in front of examples/echo, driven as a user would:
a client sends 2 MiB and its end of stream through the proxy and gets every
byte back, then the end (the echo server closes after the client's end, and
the proxy passes both ends on); 16 clients at once; a target that refuses
connections closes the client's at once and says why; bad arguments are a
usage error; SIGTERM with a connection open lets it finish its exchange
within the 2 s drain, then the proxy exits 0; SIGTERM with a connection
that never ends cancels it after the drain."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

def fail(msg):
    print("proxy-test: FAIL:", msg)
    sys.exit(1)

def start(args, what):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if "listening on 127.0.0.1:" not in line:
        p.kill()
        fail("%s did not start: %r %r" % (what, line, p.stderr.read()))
    return p, int(line.split("127.0.0.1:")[1].split(",")[0].split()[0])

def pattern(n, seed):
    return bytes((i * 131 + seed) & 0xff for i in range(n))

def round_trip(port, data, timeout=20.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = bytearray()
    def reader():
        while True:
            d = s.recv(65536)
            if not d:
                return
            got.extend(d)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(timeout)
    s.close()
    return bytes(got)

def stop(p, timeout=10):
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the proxy did not exit after SIGTERM")
    return p.returncode, err

def main():
    proxy, echo = sys.argv[1], sys.argv[2]
    for bad in (["0", "127.0.0.1"], ["70000", "127.0.0.1", "7"], ["0", "127.0.0.1", "0"],
                ["0", "127.0.0.1", "x"], ["0", "", "7"], ["0", "127.0.0.1:7", "7"],
                ["0", "[::1]:7", "7"], ["0", "[::1", "7"]):
        try:
            r = subprocess.run([proxy] + bad, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            fail("proxy %s: still running after 10 s (want a usage error)" % bad)
        if r.returncode != 2 or "usage" not in r.stderr:
            fail("proxy %s: exit %d, %r (want a usage error)" % (bad, r.returncode, r.stderr))

    e, eport = start([echo, "0"], "echo")
    try:
        p, pport = start([proxy, "0", "127.0.0.1", str(eport)], "proxy")
        data = pattern(2 * 1024 * 1024 + 5, 7)
        back = round_trip(pport, data)
        if back != data:
            fail("2 MiB through the proxy: %d bytes back, equal: %s" % (len(back), back == data))
        # 16 clients at once
        outs = {}
        def one(i):
            d = pattern(100000 + i, i)
            outs[i] = round_trip(pport, d) == d
        th = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in th:
            t.start()
        for t in th:
            t.join(30)
        if len(outs) != 16 or not all(outs.values()):
            fail("16 clients at once: %r" % outs)
        # SIGTERM with a connection open: it finishes within the drain
        s = socket.create_connection(("127.0.0.1", pport), timeout=10)
        s.sendall(b"before\n")
        if s.recv(100) != b"before\n":
            fail("no echo through the proxy")
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(b"during the drain\n")
        if s.recv(100) != b"during the drain\n":
            fail("the open connection stopped working in the drain")
        s.shutdown(socket.SHUT_WR)
        if s.recv(100) != b"":
            fail("no end of stream after the client's end")
        s.close()
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("the proxy did not exit once its last connection ended")
        if p.returncode != 0:
            fail("proxy exit %d after SIGTERM: %s" % (p.returncode, err))
        # whole lines (a review: "7 bytes up" also matched the 2 MiB line)
        if not re.search(r"^proxy: conn \d+: 24 bytes up, 24 down: done$", err, re.M):
            fail("the drained connection's log line is missing: %r" % err)
        if not re.search(r"^proxy: conn \d+: 2097157 bytes up, 2097157 down: done$", err, re.M):
            fail("the 2 MiB connection's log line: %r" % err)
        # a connection that never ends is cancelled after the drain
        p, pport = start([proxy, "0", "127.0.0.1", str(eport)], "proxy")
        s = socket.create_connection(("127.0.0.1", pport), timeout=10)
        s.sendall(b"x")
        if s.recv(10) != b"x":
            fail("no echo through the second proxy")
        t0 = time.time()
        rc, err = stop(p)
        took = time.time() - t0
        if rc != 0 or "cancelling" not in err or "down: cancelled" not in err:
            fail("proxy with a connection left open: exit %d, %r" % (rc, err))
        if took < 1.8 or took > 6:
            fail("the drain took %.2f s (2 s expected)" % took)
        s.settimeout(5)
        if s.recv(10) != b"":
            fail("the cancelled connection was not closed")
        s.close()
    finally:
        e.kill()
        e.wait()

    # a target that refuses: the client's connection is closed, the log says why
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # bound, not listening: connections refused
        p, pport = start([proxy, "0", "127.0.0.1", str(dead)], "proxy")
        s = socket.create_connection(("127.0.0.1", pport), timeout=10)
        s.settimeout(5)
        try:
            if s.recv(10) != b"":
                fail("a client of a dead target got bytes")
        except ConnectionResetError:
            pass
        s.close()
        rc, err = stop(p)
        if rc != 0 or "Connection refused" not in err:
            fail("dead target: exit %d, %r" % (rc, err))
    print("proxy-test: ok")

main()
