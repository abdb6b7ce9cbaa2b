#!/usr/bin/env bash
# weftfiber-peer.sh - a peer for ../shared/peers' runner that runs the fiber
# form of a case: spawn_many_local, spawn_many_local_worker, ping_pong,
# timers and yield_many become weft-bench's <case>_fiber (same ops per
# batch), reported under the peer name "weftfiber" and the plain case name,
# so the runner's table puts them beside Go's goroutine rows. Other cases run as they are.
#
#   PEERS="go weftfiber" WEFTFIBER_BENCH=$PWD/tools/bench/weftfiber-peer.sh \
#     SKIP_HTTP=1 ONLY="spawn_many_local spawn_many_local_worker ping_pong yield_many timers" \
#     build/peers/run_peers.sh
#
# WEFT_BENCH: the weft-bench binary (default: this checkout's release build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=${WEFT_BENCH:-$root/build/release/tools/bench/weft-bench}
if [ $# -lt 1 ]; then
  echo "usage: $0 CASE ITERATIONS [WORKERS]" >&2
  exit 2
fi
# Checked here: a missing binary left only bash's "No such file or
# directory" (or, with `set -u` and the default path unbuilt, the same
# with no hint of what to build), and the runner's table a blank row.
if [ ! -x "$bench" ]; then
  if [ -z "${WEFT_BENCH:-}" ]; then
    echo "$0: no weft-bench at $bench: build the release tree (cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release && ninja -C build/release weft-bench) or set WEFT_BENCH" >&2
  else
    echo "$0: WEFT_BENCH=$WEFT_BENCH is not an executable file" >&2
  fi
  exit 1
fi
b=$1; shift
f=$b
case "$b" in
  spawn_many_local|spawn_many_local_worker|ping_pong|timers|yield_many) f=${b}_fiber ;;
esac
"$bench" "$f" "$@" | sed "s/^weft $f /weftfiber $b /"
