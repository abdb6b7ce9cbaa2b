#!/usr/bin/env bash
# The README's examples build and do what they say: hello, fibers (spawn,
# channel, join), and the echo server answering a client.
set -euo pipefail
dir=$1
"$dir/hello" | grep -q "task 7 -> 49"
"$dir/fibers" | grep -qx "sum 8002000"
out=$(mktemp)
"$dir/echo" 0 > "$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "echo server did not start"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello weft\n' >&3
read -r -t 5 line <&3
[ "$line" = "hello weft" ] || { echo "echo answered '$line'"; exit 1; }
exec 3>&-
echo "examples passed"
