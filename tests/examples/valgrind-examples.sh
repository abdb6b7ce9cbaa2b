#!/usr/bin/env bash
# The examples under valgrind (memcheck): no invalid access, no leak, and
# fibers work with their stacks registered (VALGRIND_STACK_REGISTER).
set -euo pipefail
dir=$1
for ex in hello fibers; do
  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$dir/$ex" > /dev/null
  echo "valgrind $ex: clean"
done
