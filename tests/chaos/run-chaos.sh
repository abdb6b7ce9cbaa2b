#!/usr/bin/env bash
# Run every concurrency scenario (tests/tsan/tsan_runtime.c, built plain in
# a -DWEFT_CHAOS=ON tree) under SEEDS different perturbation seeds. A
# failure prints the seed; rerun it with WEFT_CHAOS_SEED=<seed> BIN.
# Usage: run-chaos.sh BIN [SEEDS] [FIRST_SEED]
set -u
bin=$1 seeds=${2:-50} first=${3:-1}
fails=0
for ((s = first; s < first + seeds; s++)); do
  if ! out=$(WEFT_CHAOS_SEED=$s timeout 120 "$bin" 2>&1); then
    echo "chaos: FAILED with WEFT_CHAOS_SEED=$s"
    echo "$out" | tail -20
    fails=$((fails + 1))
  fi
  printf '\rchaos: %d/%d seeds, %d failed' $((s - first + 1)) "$seeds" "$fails" >&2
done
echo >&2
echo "chaos: $((seeds - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
