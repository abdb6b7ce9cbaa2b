#!/usr/bin/env bash
# Death test: a fiber stack overflow must hit the guard region, print the
# task id and stack size, and abort (SIGABRT, exit status 134).
#   overflow.sh BIN deep|big [fallback|chained]
set -u
bin=$1 mode=$2 fb=${3:-}
out=$("$bin" "$mode" $fb 2>&1)
status=$?
id=$(sed -n 's/^task \([0-9]*\) .*$/\1/p' <<<"$out")
refused=$(sed -n 's/^task [0-9]* guard_install_refused \([0-9]*\)$/\1/p' <<<"$out")
echo "$out"
[ "$status" -eq 134 ] || { echo "FAIL: exit status $status, expected 134 (SIGABRT)"; exit 1; }
grep -q "weft: fiber stack overflow in task $id (stack size 65536 bytes)" <<<"$out" \
  || { echo "FAIL: no overflow report naming task $id"; exit 1; }
if [ "$fb" = fallback ]; then
  [ "${refused:-0}" -ge 1 ] || { echo "FAIL: the mprotect fallback was not exercised"; exit 1; }
fi
if [ "$fb" = chained ]; then
  grep -q "^own fault handled$" <<<"$out" || { echo "FAIL: the program's own handler did not run"; exit 1; }
fi
echo "PASS"
