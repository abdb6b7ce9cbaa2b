#!/bin/sh
# cgroup-workers.sh PRINT_WORKERS - the default worker count on a real
# cgroup: a process limited to 1 CPU (quota = period) gets 1 worker, to
# 1.5 CPUs min(2, its CPUs); outside, one per CPU of its affinity;
# WEFT_WORKERS overrides, and a bad WEFT_WORKERS fails the create with a
# message. Needs root to make a cgroup: skips (77) otherwise, but fails
# under CI=true, where it must run.
set -eu
prog=$1
fail() { echo "FAIL: $*"; exit 1; }
skip() {
	echo "SKIP: $*"
	[ "${CI:-}" = true ] && exit 1
	exit 77
}

set -- $("$prog")
workers=$1 aff=$2
echo "no limit: $workers workers, $aff CPUs in the affinity mask"
# (this process may itself sit in a limited cgroup: then fewer)
[ "$workers" -ge 1 ] && [ "$workers" -le "$aff" ] || fail "default workers $workers for $aff CPUs"

got=$(WEFT_WORKERS=3 "$prog" | cut -d' ' -f1)
[ "$got" = 3 ] || fail "WEFT_WORKERS=3 gave $got workers"
for bad in abc 0 -1 257 3x ' 3' '3 ' +3; do
	if out=$(WEFT_WORKERS=$bad "$prog" 2>&1); then
		fail "WEFT_WORKERS=$bad was accepted: $out"
	fi
	echo "$out" | grep -q "WEFT_WORKERS=$bad: expected a number of workers" ||
		fail "WEFT_WORKERS=$bad: no clear message: $out"
done
echo "WEFT_WORKERS: 3 taken, bad values refused with a message"

[ "$(id -u)" = 0 ] || skip "not root: cannot make a cgroup"
cg=
if [ -w /sys/fs/cgroup/cpu/cgroup.procs ] 2>/dev/null; then
	cg=/sys/fs/cgroup/cpu/weft-test-$$ kind=v1
elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	cg=/sys/fs/cgroup/weft-test-$$ kind=v2
	grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
		echo +cpu > /sys/fs/cgroup/cgroup.subtree_control || skip "cannot enable the cpu controller"
else
	skip "no writable cgroup cpu controller (v1 cpu mount or v2 cpu.max)"
fi
mkdir "$cg" || skip "cannot create $cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT

limit() { # QUOTA PERIOD
	if [ $kind = v1 ]; then
		echo "$2" > "$cg/cpu.cfs_period_us"
		echo "$1" > "$cg/cpu.cfs_quota_us"
	else
		echo "$1 $2" > "$cg/cpu.max"
	fi
}
inside() { sh -c 'echo $$ > "$1/cgroup.procs" && exec "$2"' sh "$cg" "$prog" | cut -d' ' -f1; }

limit 100000 100000
got=$(inside)
[ "$got" = 1 ] || fail "$kind quota of 1 CPU: $got workers"
limit 150000 100000
want=$((aff < 2 ? aff : 2))
got=$(inside)
[ "$got" = "$want" ] || fail "$kind quota of 1.5 CPUs: $got workers, want $want"
echo "$kind cgroup: 1 CPU -> 1 worker, 1.5 CPUs -> $want"
echo "PASS"
