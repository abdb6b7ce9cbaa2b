#!/usr/bin/env bash
# run-fuzz.sh BUILD_DIR [SECONDS]
# Replays every regression input of each fuzz target, then fuzzes each
# target for SECONDS (default 60) starting from a temporary copy of its
# corpus (the repository is not modified). Exits non-zero on any crash.
# New crash inputs are left in the temporary directory, whose path is
# printed: copy them to tests/fuzz/regressions/<target>/ after the fix.
# The targets run FUZZ_JOBS at a time (default: the CPU count, at most 4):
# each fuzzer is one thread, so on two CPUs two of them get as much CPU
# as one alone did, and the stage takes half the time (CI's suite had
# crept to 28 of its 30 minutes).
set -uo pipefail
build=${1:?usage: run-fuzz.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/weft-fuzz.XXXXXX)
status=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
jobs=${FUZZ_JOBS:-$(nproc)}
if ! [[ $jobs =~ ^[0-9]+$ ]] || [ "$jobs" -lt 1 ]; then
	echo "run-fuzz: FUZZ_JOBS must be a positive whole number (got '$jobs')" >&2
	exit 2
fi
[ "$jobs" -gt 4 ] && jobs=4

# One target: replay its regressions, then fuzz it. Exit status 1 on a
# failure; run in the background, so it says everything itself.
fuzz_one() {
	local t=$1 status=0
	local bin=$build/tests/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "run-fuzz: $bin missing (build with -DWEFT_FUZZ=ON)" >&2
		return 1
	fi
	local reg=$here/regressions/$t
	if compgen -G "$reg/*" >/dev/null; then
		echo "run-fuzz: $t: replaying $(ls "$reg" | wc -l) regression inputs"
		if ! "$bin" -runs=1 "$reg"/* >"$work/$t-replay.log" 2>&1; then
			tail -40 "$work/$t-replay.log"
			echo "run-fuzz: $t: a regression input fails" >&2
			status=1
		fi
	fi
	mkdir -p "$work/$t/corpus" "$work/$t/crash"
	cp "$here/corpus/$t"/* "$work/$t/corpus/" 2>/dev/null || true
	echo "run-fuzz: $t: fuzzing for ${secs}s"
	# opts creates a runtime (1-4 threads) per input. AddressSanitizer keeps
	# a record of every thread a process ever had, and past ~500,000 threads
	# its shadow reservation fails (ENOMEM) - a sanitizer limit, not a weft
	# bug (no mapping leaks: checked over 3,000 create/destroy cycles). Cap
	# the inputs per process well below that.
	local extra=()
	[ "$t" = opts ] && extra=(-runs=120000)
	# schedtop reads recorded files: a pair of snapshots alone is ~300 bytes.
	local maxlen=512
	[ "$t" = schedtop ] && maxlen=4096
	if ! "$bin" -max_total_time="$secs" "${extra[@]}" -timeout=20 -rss_limit_mb=4096 -max_len=$maxlen \
		-artifact_prefix="$work/$t/crash/" -print_final_stats=1 \
		"$work/$t/corpus" >"$work/$t.log" 2>&1; then
		tail -60 "$work/$t.log"
		echo "run-fuzz: $t: CRASH; inputs in $work/$t/crash/" >&2
		status=1
	else
		grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$t.log" | sed "s/^/run-fuzz: $t: /"
	fi
	return $status
}

running=0
for t in ring opts ops schedtop; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || status=1
		running=$((running - 1))
	fi
	fuzz_one "$t" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || status=1
	running=$((running - 1))
done
if [ $status -eq 0 ]; then
	rm -rf "$work"
else
	echo "run-fuzz: logs and crash inputs kept in $work" >&2
fi
exit $status
