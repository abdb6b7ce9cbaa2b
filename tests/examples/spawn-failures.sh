#!/usr/bin/env bash
# The examples when a spawn fails (-ENOMEM from the LD_PRELOAD module
# spawn_fail.so, WEFT_TEST_FAIL_SPAWN=N: the Nth spawn call): each says so
# on stderr and exits 1, having joined only the tasks it did spawn - no
# join on a handle that was never set, no wait for a task that never ran.
# The echo server closes a connection whose fiber was refused and serves
# the next one.
set -euo pipefail
dir=$1 shim=$2
err=$(mktemp) out=$(mktemp) pid=
trap 'rm -f "$err" "$out"; [ -z "$pid" ] || kill $pid 2>/dev/null' EXIT

# expect N WANT_STDOUT_LINE PROGRAM ARGS...: exit 1 with "spawn: " on stderr
expect() {
  local n=$1 want=$2 rc=0 out; shift 2
  out=$(WEFT_TEST_FAIL_SPAWN=$n LD_PRELOAD=$shim timeout 10 "$@" 2>"$err") || rc=$?
  if [ $rc -ne 1 ] || ! grep -q "spawn: " "$err"; then
    echo "FAIL: $* with spawn $n refused: exit $rc (want 1), stderr: $(head -c 300 "$err")"
    exit 1
  fi
  if [ -n "$want" ] && ! grep -qx "$want" <<<"$out"; then
    echo "FAIL: $* with spawn $n refused: no '$want' in: $out"
    exit 1
  fi
  echo "ok: $(basename "$1") with spawn $n refused: exit 1, $(head -1 "$err")"
}

# the 3rd of 8 poll tasks refused: the first two are joined and printed
expect 3 "task 1 -> 1" "$dir/hello"
# the 2nd producer refused: the first one stops (channel closed), no sum
expect 2 "" "$dir/fibers"
# the spawner task refused, then one of the jobs it spawns
expect 1 "" "$dir/skewed" 1 2
expect 2 "" "$dir/skewed" 1 2

# echo: the first connection's fiber refused
WEFT_TEST_FAIL_SPAWN=1 LD_PRELOAD=$shim "$dir/echo" 0 > "$out" &
pid=$!
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "FAIL: echo server did not start"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
rc=0; read -r -t 5 line <&3 || rc=$?
exec 3<&-
# 1: end of stream (closed); above 128: still open after 5 s
[ $rc -eq 1 ] || { echo "FAIL: echo: the refused connection was not closed (read: $rc)"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello weft\n' >&3
read -r -t 5 line <&3 || true
exec 3>&-
[ "$line" = "hello weft" ] || { echo "FAIL: echo: the next connection got '$line'"; exit 1; }
echo "ok: echo with spawn 1 refused: that connection closed, the next one served"
echo "spawn failures: passed"
