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
# A port that is not a number in 0..65535 is a usage error (exit 2), not
# another port: atoi took 70000 as 4464 and abc as 0 (any free port).
for prog in echo chat http_hello; do
  for bad in 70000 -1 abc 12x ""; do
    rc=0
    timeout 5 "$dir/$prog" "$bad" >/dev/null 2>"$out.err" || rc=$?
    [ "$rc" -eq 2 ] && grep -q usage "$out.err" ||
      { echo "$prog '$bad': exit $rc, expected a usage error (2): $(cat "$out.err")"; exit 1; }
  done
done
# skewed's SECONDS and WORKERS likewise: atoi took "abc" and "0.5" as 0
# seconds (nothing printed, exit 0) and "1 x" as the default workers.
for bad in "abc" "0.5" "-2" "1 x" "1 -1" "1 2 3"; do
  rc=0
  # shellcheck disable=SC2086
  timeout 5 "$dir/skewed" $bad >/dev/null 2>"$out.err" || rc=$?
  [ "$rc" -eq 2 ] && grep -q usage "$out.err" ||
    { echo "skewed $bad: exit $rc, expected a usage error (2): $(cat "$out.err")"; exit 1; }
done
# The idle seconds of chat, echo and kv likewise (1..1000000000).
for prog in chat echo kv; do
  for bad in abc 0 -1 5s; do
    rc=0
    timeout 5 "$dir/$prog" 0 "$bad" >/dev/null 2>"$out.err" || rc=$?
    [ "$rc" -eq 2 ] || { echo "$prog 0 $bad (idle seconds): exit $rc, expected 2"; exit 1; }
  done
done
rc=0
timeout 5 "$dir/http_hello" 0 2x >/dev/null 2>"$out.err" || rc=$?
[ "$rc" -eq 2 ] || { echo "http_hello 0 2x (workers): exit $rc, expected 2"; exit 1; }
# runner's TIMEOUT_MS and MAX_RUNNING are whole numbers too, and nothing
# follows them: strtoul without an end check took "10s" as a 10 ms limit
# (every command "timeout") and ignored "4x" and extra arguments.
sock=$(mktemp -u)
for bad in "10s" "5000 4x" "5000 4 9" "abc" "-5"; do
  rc=0
  # shellcheck disable=SC2086
  timeout 5 "$dir/runner" "$sock" $bad >/dev/null 2>"$out.err" || rc=$?
  rm -f "$sock"
  [ "$rc" -eq 2 ] || { echo "runner PATH $bad: exit $rc, expected a usage error (2)"; exit 1; }
done
# A PATH that can be no socket's is a usage error too: "", "@" and one of
# 108 bytes said "runner: : invalid argument" and exited 1.
long=/tmp/$(printf 'r%.0s' $(seq 120))
for bad in "" "@" "$long"; do
  rc=0
  timeout 5 "$dir/runner" "$bad" >/dev/null 2>"$out.err" || rc=$?
  [ "$rc" -eq 2 ] && grep -q usage "$out.err" ||
    { echo "runner '$bad': exit $rc, expected a usage error (2): $(cat "$out.err")"; exit 1; }
done
rm -f "$out.err"
echo "examples passed"
