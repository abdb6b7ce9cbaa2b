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
#
# Exit: 0 ok, 1 failure (the server did not listen, strace recorded
# nothing), 2 usage or a missing tool. Before 2026-12-07 a missing strace
# exited 1 without a word, a server that did not start or a REQUESTS of
# abc ended in a Python traceback, and REQUESTS 0 in one with exit 0.
set -euo pipefail
usage() {
	[ -z "${1:-}" ] || echo "syscalls: $1" >&2
	echo "usage: syscalls.sh HTTP_HELLO [REQUESTS] [WORKERS]   (REQUESTS >= 1, WORKERS 1..256)" >&2
	exit 2
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
server=$1
n=${2:-20000}
workers=${3:-2}
port=${PORT:-18090}
[[ "$n" =~ ^[1-9][0-9]{0,8}$ ]] || usage "REQUESTS: expected a count >= 1, got '$n'"
[[ "$workers" =~ ^[1-9][0-9]{0,2}$ ]] && [ "$workers" -le 256 ] || usage "WORKERS: expected 1..256, got '$workers'"
[[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$port" -le 65535 ] || usage "PORT: expected 1..65535, got '$port'"
[ -x "$server" ] && [ -f "$server" ] || usage "$server: not an executable (examples/http_hello of a build)"
for tool in strace python3; do
	command -v "$tool" >/dev/null || { echo "syscalls: $tool not installed" >&2; exit 2; }
done
out=$(mktemp)
spid=
trap '[ -z "$spid" ] || kill "$spid" 2>/dev/null || true; rm -f "$out" "$out.err"' EXIT

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
else:
    sys.exit("syscalls: the server did not listen on 127.0.0.1:%d within 5 s" % port)
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
strace -f -c -o "$out" -p "$tids" 2>"$out.err" &
stpid=$!
sleep 0.5 # let strace attach
client "$n"
kill -INT "$stpid" 2>/dev/null || true
wait "$stpid" 2>/dev/null || true
cat "$out"
total=$(awk '$NF == "total" { print $4 }' "$out")
if [ -z "$total" ]; then
	echo "syscalls: strace recorded nothing (ptrace not allowed? root, or kernel.yama.ptrace_scope = 0):" >&2
	tail -3 "$out.err" >&2
	exit 1
fi
echo "requests: $n  workers: $workers  calls: $total  per request: $(python3 -c "print(round($total / $n, 2))")"
