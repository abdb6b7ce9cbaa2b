#!/usr/bin/env bash
# tools/bench/weftfiber-peer.sh without its weft-bench binary (WEFT_BENCH
# unset and no release build, or WEFT_BENCH naming a missing file) must
# say so and exit 1; it printed only bash's "No such file or directory".
# Usage: bench-peer-errors.sh SOURCE_DIR
set -uo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a copy in a tree with no build/release, for the default path
mkdir -p "$tmp/tree/tools/bench"
cp "$src/tools/bench/weftfiber-peer.sh" "$tmp/tree/tools/bench/"
fail=0
check() { # name, expected message part, command...
	local name=$1 want=$2
	shift 2
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -ne 1 ] || ! grep -qF -- "$want" <<<"$out"; then
		echo "FAIL: $name: exit $rc, output: $out"
		fail=1
	fi
}
check "WEFT_BENCH missing" "WEFT_BENCH=$tmp/none is not an executable file" \
	env WEFT_BENCH="$tmp/none" "$src/tools/bench/weftfiber-peer.sh" ping_pong 10
check "WEFT_BENCH unset" "set WEFT_BENCH" \
	env -u WEFT_BENCH "$tmp/tree/tools/bench/weftfiber-peer.sh" ping_pong 10
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
