#!/usr/bin/env python3
"""A server example's idle deadline (slowloris).

    idle-test.py PROGRAM echo|kv

The server runs with an idle time of 2 s (its second argument). Beside
an active client, which sends a request every 0.25 s for 3.5 s and gets
every answer (it is never cut: each request is progress), a client that
connects and sends nothing must be disconnected after about 2 s (kv says
"BYE idle too long" first). kv: a client that sends a byte every 0.2 s and
never ends its line is cut too (bytes of a line are not a request). echo:
a client that sends and never reads its echoes is cut once a write has
waited 2 s (the bytes that were echoed come, then the end). Before, none
of them was ever cut: a client that said nothing held its fiber and fd
for ever.
"""
import re
import socket
import subprocess
import sys
import threading
import time

from streams import read_to_end

IDLE = 2  # seconds: the active client's 0.25 s pauses leave a loaded host 1.75 s
ACTIVE_FOR = 3.5


def fail(msg):
    print("idle-test: FAIL:", msg)
    sys.exit(1)


def silent(port, kind, res):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    got, how = read_to_end(s, IDLE + 6)
    res["silent"] = (time.time() - t0, got, how)
    s.close()


def trickle(port, res):
    """kv: a line that never ends, one byte every 0.2 s."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    t0, got, how = time.time(), b"", "open"
    while time.time() - t0 < IDLE + 6 and how == "open":
        try:
            s.send(b"G")
        except OSError:
            pass
        time.sleep(0.2)
        try:
            d = s.recv(4096)
            if not d:
                how = "EOF"
            got += d
        except BlockingIOError:
            pass
        except ConnectionResetError:
            how = "reset"
    res["trickle"] = (time.time() - t0, got, how)
    s.close()


def no_reader(port, res):
    """echo: send until the buffers are full, never read; after 3 s, read
    what there is: the echo stopped and the connection ended."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    sent, chunk, t0 = 0, b"x" * 65536, time.time()
    while time.time() - t0 < 1.0:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    time.sleep(IDLE + 1.5)  # its buffers were full within 1 s: cut by now
    s.setblocking(True)
    got, how = read_to_end(s, 5)
    res["no_reader"] = (sent, len(got), how)
    s.close()


def main():
    prog, kind = sys.argv[1], sys.argv[2]
    srv = subprocess.Popen([prog, "0", "%d" % IDLE], stdout=subprocess.PIPE, text=True)
    try:
        first = srv.stdout.readline()
        m = re.search(r"(?:port |:)(\d+)", first)
        if not m:
            fail("%s 0 %d did not start (exit %r): %r" % (prog, IDLE, srv.poll(), first))
        port = int(m.group(1))
        res = {}
        th = [threading.Thread(target=silent, args=(port, kind, res))]
        if kind == "kv":
            th.append(threading.Thread(target=trickle, args=(port, res)))
        else:
            th.append(threading.Thread(target=no_reader, args=(port, res)))
        for t in th:
            t.start()
        # the active client: a request every 0.25 s, all answered, for
        # longer than three idle times
        a = socket.create_connection(("127.0.0.1", port))
        a.settimeout(5)
        if kind == "kv":
            a.sendall(b"SET k v\n")
            if a.recv(100) != b"OK\n":
                fail("kv: SET not answered")
        t0, i = time.time(), 0
        while time.time() - t0 < ACTIVE_FOR:
            req, want = ((b"GET k\n", b"VALUE v\n") if kind == "kv"
                         else (b"ping %d\n" % i, b"ping %d\n" % i))
            a.sendall(req)
            got = b""
            try:
                while len(got) < len(want):
                    d = a.recv(100)
                    if not d:
                        break
                    got += d
            except (socket.timeout, ConnectionResetError) as e:
                fail("the active client, request %d after %.1f s: %r" % (i, time.time() - t0, e))
            if got != want:
                fail("the active client was cut after %.1f s (request %d answered %r)"
                     % (time.time() - t0, i, got))
            i += 1
            time.sleep(0.25)
        a.close()
        for t in th:
            t.join(15)
        took, got, how = res["silent"]
        if how == "open":
            fail("a client that sends nothing is still connected after %.1f s (idle %.0f s)"
                 % (took, IDLE))
        if not IDLE * 0.9 <= took <= IDLE + 4:  # the upper bound only catches a missing deadline
            fail("a silent client was cut after %.2f s, idle time %.0f s" % (took, IDLE))
        want = b"BYE idle too long\n" if kind == "kv" else b""
        if got != want or how != "EOF":
            fail("the silent client got %r then %s, want %r then EOF" % (got, how, want))
        if kind == "kv":
            took_t, got_t, how_t = res["trickle"]
            if how_t == "open":
                fail("a client sending a byte every 0.2 s and never a whole line is still "
                     "connected after %.1f s" % took_t)
            if not got_t.startswith(b"BYE idle too long\n") and how_t != "reset":
                fail("the trickling client got %r then %s" % (got_t, how_t))
            print("idle-test: kv: silent client cut after %.2f s, trickling one after %.2f s, "
                  "the active one served %d requests" % (took, took_t, i))
        else:
            sent, echoed, how_n = res["no_reader"]
            if how_n == "open":
                fail("a client that does not read its echoes is still connected (sent %d, "
                     "read %d)" % (sent, echoed))
            if echoed >= sent:
                fail("a client that does not read: everything echoed (%d bytes)" % sent)
            print("idle-test: echo: silent client cut after %.2f s; one not reading cut "
                  "(%d of %d bytes echoed); the active one served %d requests"
                  % (took, echoed, sent, i))
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    print("idle-test: passed")


main()
