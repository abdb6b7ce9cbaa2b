#!/usr/bin/env python3
"""examples/chat driven by three clients: join notices, a line relayed to
the other client (not echoed to its sender), an idle client dropped after
its deadline, then SIGTERM while a fourth client sends as fast as it can:
the connected clients are told (the fourth too: the notice, then the end
of the stream, not a reset), the server waits for every connection fiber
(its join set) and exits 0 having served all four."""
import re
import signal
import socket
import subprocess
import sys
import threading
import time

def fail(msg):
    print("chat-test: FAIL:", msg)
    sys.exit(1)

def lines_until(sock, pattern, timeout=5.0):
    """Read lines until one matches pattern; return all lines read."""
    sock.settimeout(timeout)
    buf, got, end = b"", [], time.time() + timeout
    while time.time() < end:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        if not data:
            got.append("<EOF>")
            if pattern == "<EOF>":
                return got
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            got.append(line.decode())
            if re.search(pattern, got[-1]):
                return got
    fail("waited for %r, got %r" % (pattern, got))

binary = sys.argv[1]
srv = subprocess.Popen([binary, "0", "2"], stdout=subprocess.PIPE, text=True)
try:
    first = srv.stdout.readline()
    m = re.search(r"port (\d+)", first)
    if not m:
        fail("no port in %r" % first)
    port = int(m.group(1))

    a = socket.create_connection(("127.0.0.1", port))
    wa = lines_until(a, r"welcome, you are user(\d+)")
    ida = re.search(r"user(\d+)", wa[-1]).group(1)
    b = socket.create_connection(("127.0.0.1", port))
    wb = lines_until(b, r"welcome, you are user(\d+)")
    idb = re.search(r"user(\d+)", wb[-1]).group(1)
    lines_until(a, r"\* user%s joined" % idb)

    a.sendall(b"hello from a\n")
    lines_until(b, r"^user%s: hello from a$" % ida)
    b.sendall(b"hi a\n")
    got = lines_until(a, r"^user%s: hi a$" % idb)
    if any("hello from a" in l for l in got):
        fail("a line came back to its sender: %r" % got)

    # Three lines in one packet: each relayed, the last two from what the
    # server's reader already holds (its select's LINE arm), none waiting
    # for more input. And a line over the server's 200 bytes: in pieces.
    a.sendall(b"one\ntwo\nthree\n")
    got = lines_until(b, r"^user%s: three$" % ida, timeout=3)
    said = [l for l in got if l.startswith("user%s: " % ida)]
    if said[-3:] != ["user%s: one" % ida, "user%s: two" % ida, "user%s: three" % ida]:
        fail("three lines in one packet came out as %r" % said)
    a.sendall(b"x" * 450 + b"\n")
    got = lines_until(b, r"^user%s: x{50}$" % ida, timeout=3)
    pieces = [len(l) - len("user%s: " % ida) for l in got if l.startswith("user%s: x" % ida)]
    if pieces != [200, 200, 50]:
        fail("a 450-byte line came out in pieces of %r" % pieces)
    # one of a whole number of pieces: its newline alone is not a line of
    # its own (it came out as an empty line after the pieces)
    a.sendall(b"y" * 400 + b"\nafter\n")
    got = lines_until(b, r"^user%s: after$" % ida, timeout=3)
    said = [l[len("user%s: " % ida):] for l in got if l.startswith("user%s: " % ida)]
    if said[-3:] != ["y" * 200, "y" * 200, "after"]:
        fail("a 400-byte line then \"after\" came out as %r" % [l[:12] for l in said])
    a.sendall(b"z" * 200 + b"\r\nafter2\n")  # a telnet client's line end
    got = lines_until(b, r"^user%s: after2$" % ida, timeout=3)
    said = [l[len("user%s: " % ida):] for l in got if l.startswith("user%s: " % ida)]
    if said[-2:] != ["z" * 200, "after2"]:
        fail("a 200-byte line ended by CR LF came out as %r" % [l[:12] for l in said])

    # Typing a character at a time is typing: a sends "slowly" one byte
    # every 0.6 s (3.6 s, past the 2 s idle limit) while b says a line now
    # and then; a is not dropped and its line comes through whole.
    for i, ch in enumerate(b"slowly"):
        a.sendall(bytes([ch]))
        if i % 3 == 2:
            b.sendall(b"here\n")
        time.sleep(0.6)
    a.sendall(b"\n")
    got = lines_until(b, r"^user%s: slowly$" % ida, timeout=3)
    if any("left" in l for l in got):
        fail("a client typing slowly was dropped: %r" % got)

    # c says nothing: dropped after the 2 s idle deadline, while a and b
    # keep talking (so they are not idle)
    talking = threading.Event()
    def chatter():
        while not talking.wait(0.4):
            a.sendall(b"tick\n")
            b.sendall(b"tock\n")
    th = threading.Thread(target=chatter)
    th.start()
    c = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    lines_until(c, r"welcome")
    lines_until(c, r"idle too long", timeout=15)
    waited = time.time() - t0
    if not 1.5 <= waited <= 14:  # the upper bound only catches a missing deadline
        fail("idle drop after %.1f s, expected about 2" % waited)
    lines_until(c, "<EOF>")
    c.close()
    talking.set()
    th.join()

    # keep a and b active, then shut down while d sends lines as fast as
    # it can: d still gets the notice whole, then the end of the stream
    # (the close over its unread lines reset the connection: ECONNRESET)
    d = socket.create_connection(("127.0.0.1", port))
    lines_until(d, r"welcome")
    a.sendall(b"still here\n")
    b.sendall(b"me too\n")
    lines_until(b, r"^user%s: still here$" % ida)
    flooding = threading.Event()
    def flood():
        while not flooding.is_set():
            try:
                d.sendall(b"spam spam spam\n" * 64)
            except OSError:
                break
    th = threading.Thread(target=flood)
    th.start()
    time.sleep(0.3)
    srv.send_signal(signal.SIGTERM)
    d.settimeout(5)
    buf, how = b"", "open"
    try:
        while True:
            data = d.recv(65536)
            if not data:
                how = "EOF"
                break
            buf += data
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        pass
    flooding.set()
    th.join()
    d.close()
    if not buf.endswith(b"\nserver shutting down, bye\n") or how != "EOF":
        fail("a client sending at the shutdown got %r then %s, want the notice then EOF"
             % (buf[-60:], how))
    lines_until(a, r"server shutting down")
    lines_until(b, r"server shutting down")
    lines_until(a, "<EOF>")
    lines_until(b, "<EOF>")
    a.close()  # the server lingers for its clients' ends: 2 s at most
    b.close()
    out, _ = srv.communicate(timeout=10)
    if srv.returncode != 0:
        fail("server exited %d" % srv.returncode)
    if not re.search(r"SIGTERM, served 4 connections", out):
        fail("summary: %r" % out)
    print("chat-test: passed")
finally:
    if srv.poll() is None:
        srv.kill()
