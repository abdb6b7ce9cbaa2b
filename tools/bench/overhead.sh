#!/usr/bin/env bash
# Side-by-side overhead runs of weft-bench (issue 5), alternating A and B in
# one session (order ABAB..., then BABA... on odd rounds) so host phases hit
# both sides alike.
#
#   overhead.sh probes   ON_BUILD OFF_BUILD [--rounds N] [CASE[:ITERS]...]
#       A = weft-bench of ON_BUILD (-DWEFT_PROBES=ON, probes detached)
#       B = weft-bench of OFF_BUILD (-DWEFT_PROBES=OFF)
#   overhead.sh schedtop BUILD [--rounds N] [CASE[:ITERS]...]
#       A = weft-bench alone
#       B = `schedtop --batch -- weft-bench ...` (BPF attached before the
#           first batch; needs root). BUILD must have the schedtop target.
#   overhead.sh record BUILD [--rounds N] [CASE[:ITERS]...]
#       A = weft-bench alone
#       B = `schedtop record --last 30s --on exit -o TMP -- weft-bench ...`
#           (the flight recorder: every steal, park, unpark, notify and
#           overflow event goes through the ring buffer).
#
# Prints, per case, every run's median ns per batch with its rtt (ns,
# before/after), the median of the runs on each side, the ratio B/A, and
# whether |B/A - 1| is within the run-to-run spread of either side (its
# slowest run left out): "within noise".
# Defaults: 5 rounds; cases spawn_many_remote_idle:400 yield_many:200 (~1 s each).
set -euo pipefail
usage() { sed -n '2,23p' "$0" >&2; [ -z "${1:-}" ] || echo "overhead: $1" >&2; exit 2; }
mode=${1:-}; shift || true
# a missing BUILD was "$1: unbound variable", exit 1 (found by a review)
case "$mode" in
  probes) [ $# -ge 2 ] || usage "probes needs ON_BUILD and OFF_BUILD" ;;
  schedtop|record) [ $# -ge 1 ] || usage "$mode needs BUILD" ;;
esac
case "$mode" in
  probes) A=$1/tools/bench/weft-bench B=$2/tools/bench/weft-bench; shift 2
          label_a="probes compiled in (detached)" label_b="probes compiled out" ;;
  schedtop) A=$1/tools/bench/weft-bench B=$A ST=$1/tools/schedtop/schedtop; shift
          label_a="alone" label_b="schedtop --batch attached"
          [ -x "$ST" ] || { echo "overhead: $ST missing (ninja schedtop)" >&2; exit 2; } ;;
  record) A=$1/tools/bench/weft-bench B=$A ST=$1/tools/schedtop/schedtop; shift
          label_a="alone" label_b="schedtop record attached"
          [ -x "$ST" ] || { echo "overhead: $ST missing (ninja schedtop)" >&2; exit 2; } ;;
  *) usage ;;
esac
# A weft-bench missing, or failing, made every median empty and the
# verdict "B/A = -nan ... within noise", exit 0 (found by a review).
for b in "$A" "$B"; do
  [ -x "$b" ] || { echo "overhead: $b missing (ninja weft-bench)" >&2; exit 2; }
done
rounds=5 cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]{0,3}$ ]] || usage "--rounds: expected 1..9999, got '${2:-}'"
              rounds=$2; shift 2 ;;
    *) cases+=("$1"); shift ;;
  esac
done
[ ${#cases[@]} -gt 0 ] || cases=(spawn_many_remote_idle:400 yield_many:200)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

run() { # side case iters -> "median rtt_before/rtt_after"; fails saying why
  local side=$1 c=$2 n=$3 out rc=0 med
  if [ "$side" = A ]; then
    out=$("$A" "$c" "$n" 2>"$tmp/err") || rc=$?
  elif [ "$mode" = probes ]; then
    out=$("$B" "$c" "$n" 2>"$tmp/err") || rc=$?
  elif [ "$mode" = record ]; then
    out=$("$ST" record --last 30s --on exit -o "$tmp/rec" -- "$B" "$c" "$n" 2>"$tmp/err") || rc=$?
    grep -o 'exit: .*: [0-9]* events' "$tmp/err" | sed 's/.*: //' >> "$tmp/bpf.$c" || true
  else
    "$ST" --batch -- "$B" "$c" "$n" >"$tmp/st" 2>"$tmp/err" || rc=$?
    out=$(grep "^weft $c " "$tmp/st") || true
    grep -o 'bpf [0-9]*ns/ev [0-9]*ev/s' "$tmp/st" | tail -1 >> "$tmp/bpf.$c" || true
  fi
  med=$(sed -n 's/.*median_ns_per_batch=\([0-9]*\).*/\1/p' <<<"$out")
  if [ "$rc" != 0 ] || [ -z "$med" ]; then
    echo "overhead: side $side, $c $n: exit $rc, no result line:" >&2
    tail -5 "$tmp/err" >&2
    return 1
  fi
  printf '%s %s\n' "$med" "$(grep -o 'rtt_ns=[0-9-]*' "$tmp/err" | cut -d= -f2 | paste -sd/)"
}

echo "overhead $mode: A = $label_a, B = $label_b; $rounds rounds, alternating"
for spec in "${cases[@]}"; do
  c=${spec%%:*} n=${spec#*:}; [ "$n" != "$spec" ] || n=200
  : > "$tmp/a"; : > "$tmp/b"
  for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then order="A B"; else order="B A"; fi
    for s in $order; do
      res=$(run "$s" "$c" "$n") || exit 1
      if [ "$s" = A ]; then echo "$res" >> "$tmp/a"; else echo "$res" >> "$tmp/b"; fi
    done
  done
  awk -v c="$c" -v n="$n" '
    function sort(arr, k, s,   i, j, t) { for (i = 1; i <= k; i++) s[i] = arr[i]
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t } }
    function med(s, k) { return k % 2 ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2 }
    # run-to-run spread of one side, its slowest run left out (a slow host phase)
    function spread(s, k,   m) { m = k > 2 ? k - 1 : k; return (s[m] - s[1]) / med(s, k) }
    FNR == 1 { f++ }
    f == 1 { a[++na] = $1; ra = ra " " $1 " (" $2 ")" }
    f == 2 { b[++nb] = $1; rb = rb " " $1 " (" $2 ")" }
    END {
      sort(a, na, sa); sort(b, nb, sb)
      ma = med(sa, na); mb = med(sb, nb); r = mb / ma
      noise = spread(sa, na); if (spread(sb, nb) > noise) noise = spread(sb, nb)
      d = r > 1 ? r - 1 : 1 - r
      printf "%s (%s iters): median ns/batch (rtt ns)\n  A:%s\n  B:%s\n", c, n, ra, rb
      printf "  median A %.0f, B %.0f, B/A = %.3f; run-to-run spread (slowest run left out) %.1f%% -> %s\n",
        ma, mb, r, 100 * noise, d <= noise ? "within noise" : (r > 1 ? "B slower beyond noise" : "B faster beyond noise")
    }' "$tmp/a" "$tmp/b"
  [ ! -s "$tmp/bpf.$c" ] || echo "  schedtop self-report, per run (live: last interval; record: events in the window): $(paste -sd';' "$tmp/bpf.$c")"
done
