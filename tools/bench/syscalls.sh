#!/usr/bin/env bash
# syscalls.sh - system calls per request on one keep-alive HTTP connection.
#
#   tools/bench/syscalls.sh HTTP_HELLO [REQUESTS] [WORKERS]
#
# Starts HTTP_HELLO (examples/http_hello: PORT WORKERS) on 127.0.0.1:$PORT
# (default 18090), warms up with 1,000 requests, then attaches
# `strace -c -f` to every thread of the server while one client sends
# REQUESTS (default 20,000) GET requests one at a time on one keep-alive
# connection, each waiting for its response. Prints strace's table and the
# calls per request (all system calls of the server process, idle ones
# included, divided by REQUESTS). Needs strace and python3; ptrace must be
# allowed (root, or kernel.yama.ptrace_scope = 0).
set -euo pipefail
server=${1:?usage: syscalls.sh HTTP_HELLO [REQUESTS] [WORKERS]}
n=${2:-20000}
workers=${3:-2}
port=${PORT:-18090}
out=$(mktemp)
trap 'kill "$spid" 2>/dev/null || true; rm -f "$out"' EXIT

"$server" "$port" "$workers" >/dev/null 2>&1 &
spid=$!

client() {
	python3 - "$port" "$1" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        time.sleep(0.05)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
want = len(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!")
for _ in range(n):
    s.sendall(req)
    got = 0
    while got < want:
        b = s.recv(want - got)
        if not b:
            sys.exit("server closed the connection")
        got += len(b)
s.close()
PY
}

client 1000 # warm-up (and waits for the server to listen)
tids=$(ls /proc/"$spid"/task | paste -sd, -)
strace -f -c -o "$out" -p "$tids" 2>/dev/null &
stpid=$!
sleep 0.5 # let strace attach
client "$n"
kill -INT "$stpid"
wait "$stpid" 2>/dev/null || true
cat "$out"
total=$(awk '$NF == "total" { print $4 }' "$out")
echo "requests: $n  workers: $workers  calls: $total  per request: $(python3 -c "print(round($total / $n, 2))")"
