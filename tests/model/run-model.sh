#!/usr/bin/env bash
# run-model.sh MODEL.pml MODE EXPECT [SPIN_DEFINES...]
#   MODE:   safety (assertions, invalid end states) | np (non-progress cycles)
#   EXPECT: pass (pan must report "errors: 0") | fail (pan must find an error:
#           a deliberately broken variant, so the check cannot silently pass)
# Runs spin -a, compiles pan.c and runs pan in a scratch directory.
# Exit 77 (skip) when spin is missing, unless CI=true (then it fails).
set -euo pipefail
model=$1 mode=$2 expect=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v spin >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "run-model: spin not installed (Debian package spin; scripts/setup-deps)" >&2
		exit 1
	fi
	echo "run-model: SKIP: spin not installed (apt-get install spin)"
	exit 77
fi
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here"/*.pml "$tmp"/
cd "$tmp"
spin "$@" -a "$model"
case $mode in
	safety) $CC -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM=3000 -o pan pan.c; args=(-m500000) ;;
	np)     $CC -O2 -w -DNP -DCOLLAPSE -DMEMLIM=3000 -o pan pan.c; args=(-m500000 -l) ;;
	*) echo "run-model: bad mode $mode" >&2; exit 2 ;;
esac
set +e
./pan "${args[@]}" >pan.out 2>&1
set -e
grep -E "errors:|states, stored|elapsed|assertion violated|invalid end state|acceptance cycle|non-progress|max search depth too small|out of memory" pan.out || true
if grep -q "max search depth too small\|out of memory\|pan: reached -DMEMLIM" pan.out; then
	echo "run-model: search incomplete" >&2
	exit 1
fi
errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | tail -1)
if [ -z "$errors" ]; then
	cat pan.out
	echo "run-model: no verdict from pan" >&2
	exit 1
fi
if [ "$expect" = pass ]; then
	if [ "$errors" != 0 ]; then
		./pan "${args[@]}" -r pan.trail >/dev/null 2>&1 || true
		spin -t -p -g "$@" "$model" | tail -60 || true
		echo "run-model: FAIL: $model ($*) found an error" >&2
		exit 1
	fi
	echo "run-model: OK: $model $mode ($*): errors: 0"
else
	if [ "$errors" = 0 ]; then
		echo "run-model: FAIL: broken variant $model ($*) was NOT caught" >&2
		exit 1
	fi
	echo "run-model: OK: broken variant $model ($*) caught as expected"
fi
