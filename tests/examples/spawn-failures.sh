#!/usr/bin/env bash
# The examples when a spawn fails (-ENOMEM from the LD_PRELOAD module
# spawn_fail.so, WEFT_TEST_FAIL_SPAWN=N: the Nth spawn call): each says so
# on stderr and exits 1, having joined only the tasks it did spawn - no
# join on a handle that was never set, no wait for a task that never ran.
set -euo pipefail
dir=$1 shim=$2
err=$(mktemp)
trap 'rm -f "$err"' EXIT

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
echo "spawn failures: passed"
