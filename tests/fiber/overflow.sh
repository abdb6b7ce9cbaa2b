#!/usr/bin/env bash
# Death test: a fiber stack overflow must hit the guard page, print the task
# id and stack size, and abort (SIGABRT, exit status 134).
set -u
bin=$1
out=$("$bin" 2>&1)
status=$?
id=$(sed -n 's/^task \([0-9]*\)$/\1/p' <<<"$out")
echo "$out"
[ "$status" -eq 134 ] || { echo "FAIL: exit status $status, expected 134 (SIGABRT)"; exit 1; }
grep -q "weft: fiber stack overflow in task $id (stack size 65536 bytes)" <<<"$out" \
  || { echo "FAIL: no overflow report naming task $id"; exit 1; }
echo "PASS"
