#!/usr/bin/env bash
# libweft's strings (abort messages name __FILE__) must not carry the build
# machine's source path: file names are relative to the source tree.
# Usage: no-build-paths.sh LIBWEFT_SO SOURCE_DIR
set -euo pipefail
lib=$1 src=$2
rodata=$(readelf -p .rodata "$lib")
if grep -F "$src/" <<<"$rodata"; then
  echo "FAIL: $lib holds strings with the source path $src/ (above)"
  exit 1
fi
# The check must see the file names it is about.
grep -q '[[:space:]]lib/sched/task\.c$' <<<"$rodata" \
  || { echo "FAIL: no relative \"lib/sched/task.c\" string in $lib's .rodata"; exit 1; }
echo "PASS"
