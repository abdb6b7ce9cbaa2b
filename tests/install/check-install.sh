#!/usr/bin/env bash
# Install weft into a scratch prefix, then build a program against it twice:
# with pkg-config and with CMake's find_package(weft). Run both.
# Usage: check-install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(find "$tmp/prefix" -name weft.pc -printf '%h\n' | head -1)
test -n "$libdir" || { echo "weft.pc not installed"; exit 1; }
test -f "$tmp/prefix/include/weft/weft.h" || { echo "headers not installed"; exit 1; }

# pkg-config, shared library
export PKG_CONFIG_PATH="$libdir"
cc -std=gnu11 "$src/examples/hello.c" -o "$tmp/hello-pc" $(pkg-config --cflags --libs weft) \
   -Wl,-rpath,"$(dirname "$libdir")"
"$tmp/hello-pc" | grep -q "task 7 -> 49"

# Standard C11, pedantic: the public headers and WEFT_OPTS_INIT need no GNU
# extension (WEFT_OPTS does: a statement expression).
cc -std=c11 -pedantic -Wall -Wextra -Werror "$src/tests/install/opts_c11.c" -o "$tmp/opts-c11" \
   $(pkg-config --cflags --libs weft) -Wl,-rpath,"$(dirname "$libdir")"
"$tmp/opts-c11" | grep -q "opts_c11: 49"

# Each installed header on its own, from C (c11, pedantic) and, if there is
# a C++ compiler, from C++ (extern "C" headers; pedantic too: the
# flexible array member of weft_metrics failed -Wpedantic -Werror there).
for h in "$tmp"/prefix/include/weft/*.h; do
  printf '#include <weft/%s>\n#include <weft/%s>\nint weft_check_tu;\n' "${h##*/}" "${h##*/}" > "$tmp/hdr.c"
  cc -std=c11 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags weft) -c "$tmp/hdr.c" -o "$tmp/hdr.o" ||
    { echo "${h##*/} alone does not compile as C11"; exit 1; }
  if command -v c++ >/dev/null; then
    cp "$tmp/hdr.c" "$tmp/hdr.cpp"
    c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags weft) -c "$tmp/hdr.cpp" -o "$tmp/hdr.o" ||
      { echo "${h##*/} alone does not compile as C++17"; exit 1; }
  fi
done

# The static initialisers from C++ (-Wextra's missing-field-initializers:
# WEFT_WAIT_INIT's { 0 } failed there with g++ and clang++).
if command -v c++ >/dev/null; then
  cat > "$tmp/inits.cpp" <<'CXX'
#include <weft/weft.h>
static struct weft_wait gw = WEFT_WAIT_INIT;
static struct weft_timer gt = WEFT_TIMER_INIT;
static struct weft_once go = WEFT_ONCE_INIT;
int weft_check_inits();
int weft_check_inits()
{
	struct weft_wait w = WEFT_WAIT_INIT;
	struct weft_timer t = WEFT_TIMER_INIT;
	struct weft_once o = WEFT_ONCE_INIT;
	return (int)(w._state + t._opaque[0] + o._opaque[0] + gw._state + gt._opaque[0] + go._opaque[0]);
}
CXX
  c++ -std=c++17 -Wall -Wextra -Werror $(pkg-config --cflags weft) -c "$tmp/inits.cpp" -o "$tmp/inits.o" ||
    { echo "the WEFT_*_INIT initialisers do not compile as C++17"; exit 1; }
fi

# The io_uring driver from the installed headers: shared, and static with
# weft.pc's private dependency (liburing). A library built
# with -DWEFT_IO_URING=OFF (no liburing in weft.pc) must refuse it: ENOSYS.
if pkg-config --print-requires-private weft | grep -q '^liburing'; then
  uring_arg= uring_says="uring_client: over uring"
else
  uring_arg=--without uring_says="uring_client: ENOSYS without io_uring"
fi
cc -std=gnu11 -Wall -Werror "$src/tests/install/uring_client.c" -o "$tmp/uring-shared" \
   $(pkg-config --cflags --libs weft) -Wl,-rpath,"$(dirname "$libdir")"
"$tmp/uring-shared" $uring_arg | grep -qx "$uring_says"
cc -std=gnu11 -Wall -Werror "$src/tests/install/uring_client.c" -o "$tmp/uring-static" \
   $(pkg-config --cflags weft) $(pkg-config --static --libs weft | sed 's/-lweft\b/-l:libweft.a/')
if ldd "$tmp/uring-static" | grep -q libweft; then echo "uring-static: libweft linked shared"; exit 1; fi
"$tmp/uring-static" $uring_arg | grep -qx "$uring_says"

# weft_strerror's texts fit the calls that return each code (a missing
# program's -ENOENT read "nothing to take", a non-child's -ECHILD "object
# of the parent process").
cc -std=gnu11 -Wall -Werror "$src/tests/install/strerror_client.c" -o "$tmp/strerror" \
   $(pkg-config --cflags --libs weft) -Wl,-rpath,"$(dirname "$libdir")"
out=$("$tmp/strerror") || { echo "weft_strerror texts do not fit: $out"; exit 1; }

# CMake package config
mkdir -p "$tmp/proj"
cp "$src/examples/hello.c" "$tmp/proj/"
cat > "$tmp/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(use_weft C)
find_package(weft 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE weft::weft)
# The static target carries its private dependencies (liburing): its link
# interface named the build's PkgConfig::URING, which weftConfig.cmake
# does not create, and the configure failed.
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE weft::weft_static)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
ninja -C "$tmp/proj/build" >/dev/null
LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/proj/build/hello" | grep -q "task 7 -> 49"
if ldd "$tmp/proj/build/hello_static" | grep -q libweft; then echo "hello_static: libweft linked shared"; exit 1; fi
"$tmp/proj/build/hello_static" | grep -q "task 7 -> 49"

# A weft built without io_uring needs no pkg-config in the projects that
# use it: its weftConfig.cmake asked for PkgConfig all the same, and
# find_package(weft) failed on a machine without pkg-config. That config
# (configured only, nothing built) goes beside this install's targets, at
# the depth below the prefix from which weftTargets.cmake finds it; a
# project that cannot find PkgConfig finds weft there, and hello links.
cmake -S "$src" -B "$tmp/nouring" -G Ninja -DWEFT_IO_URING=OFF -DWEFT_BUILD_TESTS=OFF \
  -DWEFT_BUILD_TOOLS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
nupkg="$(dirname "$libdir")/cmake/weft-nouring"
mkdir -p "$nupkg"
cp "$tmp/nouring/lib/weftConfig.cmake" "$tmp/nouring/lib/weftConfigVersion.cmake" "$nupkg/"
cp "$(dirname "$libdir")"/cmake/weft/weftTargets*.cmake "$nupkg/"
mkdir -p "$tmp/nuproj"
cp "$src/examples/hello.c" "$tmp/nuproj/"
cat > "$tmp/nuproj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(use_weft_nouring C)
find_package(weft 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE weft::weft)
CM
cmake -S "$tmp/nuproj" -B "$tmp/nuproj/build" -G Ninja -Dweft_DIR="$nupkg" \
  -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON >"$tmp/nuproj.log" 2>&1 ||
  { echo "find_package(weft) of a weft without io_uring needs pkg-config:"; cat "$tmp/nuproj.log"; exit 1; }
ninja -C "$tmp/nuproj/build" >/dev/null
LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/nuproj/build/hello" | grep -q "task 7 -> 49"

# Loaded with dlopen by a program that does not link it (a plugin host):
# libweft's thread-locals use the initial-exec model, which needs room in
# the static TLS block; a runtime is created, runs a fiber and is destroyed.
cat > "$tmp/dl.c" <<'DL'
#include <dlfcn.h>
#include <stdio.h>
struct weft_runtime;
struct weft_task;
static void *twice(void *arg) { return (void *)((long)arg * 2); }
int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
	int (*create)(const void *, struct weft_runtime **) = (int (*)(const void *, struct weft_runtime **))dlsym(h, "weft_runtime_create");
	int (*spawn)(struct weft_runtime *, void *(*)(void *), void *, struct weft_task **) = (int (*)(struct weft_runtime *, void *(*)(void *), void *, struct weft_task **))dlsym(h, "weft_spawn");
	int (*join)(struct weft_task *, void **) = (int (*)(struct weft_task *, void **))dlsym(h, "weft_join");
	int (*destroy)(struct weft_runtime *) = (int (*)(struct weft_runtime *))dlsym(h, "weft_runtime_destroy");
	struct weft_runtime *rt;
	struct weft_task *t;
	void *r = 0;
	if (!create || !spawn || !join || !destroy || create(0, &rt) || spawn(rt, twice, (void *)21, &t) ||
	    join(t, &r) || destroy(rt)) { fprintf(stderr, "calls failed\n"); return 1; }
	printf("dlopen: %ld\n", (long)r);
	return 0;
}
DL
cc -std=gnu11 "$tmp/dl.c" -o "$tmp/dl" -ldl
"$tmp/dl" "$(dirname "$libdir")/libweft.so" | grep -q "dlopen: 42"

# The installed tools find the installed library (their build-tree RUNPATH
# is stripped at install; a prefix outside ld.so's paths left libweft
# unfound: found by a review), and weft.pc asks for no library weft does
# not use (liburcu-bp, left over, failed pkg-config without it).
for tool in load/weft-load bench/weft-bench; do
  name=${tool#*/}
  if [ -x "$build/tools/$tool" ] && [ ! -x "$tmp/prefix/bin/$name" ]; then
    echo "$name was built but not installed"; exit 1
  fi
  if [ -x "$tmp/prefix/bin/$name" ]; then
    "$tmp/prefix/bin/$name" --help >/dev/null 2>&1 || { echo "installed $name does not start"; exit 1; }
  fi
done
if pkg-config --print-requires-private weft | grep -qv '^liburing'; then
  echo "weft.pc requires more than liburing: $(pkg-config --print-requires-private weft)"; exit 1
fi

# The soname follows the package's compatibility promise (SameMinorVersion
# before 1.0): libweft.so.0.1, so a 0.2 with another ABI is never loaded in
# its place (it was libweft.so.0 for every 0.x).
ver=$(pkg-config --modversion weft)
case $ver in
  0.*) want_soname=libweft.so.${ver%.*} ;;
  *) want_soname=libweft.so.${ver%%.*} ;;
esac
soname=$(readelf -d "$(dirname "$libdir")/libweft.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
test "$soname" = "$want_soname" || { echo "soname $soname, want $want_soname for version $ver"; exit 1; }
test -e "$(dirname "$libdir")/$soname" || { echo "$soname not installed"; exit 1; }

# An absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR (as packagers pass) goes into
# weft.pc as given: it was appended to a prefix relative to the .pc
# ("${pcfiledir}/../..//opt/..."). Configure only; nothing is built.
cmake -S "$src" -B "$tmp/abs" -G Ninja -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_TOOLS=OFF \
  -DWEFT_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=/opt/weftabs \
  -DCMAKE_INSTALL_LIBDIR=/opt/weftabs/lib64 -DCMAKE_INSTALL_INCLUDEDIR=/opt/weftabs/inc >/dev/null
for v in prefix=/opt/weftabs libdir=/opt/weftabs/lib64 includedir=/opt/weftabs/inc; do
  grep -qx "$v" "$tmp/abs/lib/weft.pc" || { echo "absolute dirs: weft.pc lacks $v:"; cat "$tmp/abs/lib/weft.pc"; exit 1; }
done

# The shared library exports only weft_ symbols.
bad=$(nm -D --defined-only "$(dirname "$libdir")/libweft.so" | awk '{print $3}' | grep -v '^weft_' || true)
test -z "$bad" || { echo "unexpected exported symbols: $bad"; exit 1; }
echo "install check passed"
