#!/usr/bin/env bash
# expect-fail.sh HARNESS: run HARNESS with a bug planted (--broken) and
# pass only if one of its assertions catches it. A harness whose checks
# hold even then checks nothing.
set -u
bin=$1
out=$("$bin" 200 --broken 2>&1)
status=$?
echo "$out" | tail -5
if [ "$status" -eq 0 ]; then
	echo "FAIL: $bin --broken passed: its checks did not catch the planted bug"
	exit 1
fi
if ! grep -q "Assertion" <<<"$out"; then
	echo "FAIL: $bin --broken exited with $status, but not from a failed assertion"
	exit 1
fi
echo "PASS: the planted bug was caught (exit status $status)"
