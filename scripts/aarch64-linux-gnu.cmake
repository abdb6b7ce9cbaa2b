# CMake toolchain file: cross-build weft for aarch64 (Linux, glibc) with
# Debian's cross compiler (gcc-aarch64-linux-gnu) and multiarch arm64
# libraries (liburing-dev:arm64, systemtap-sdt-dev:arm64), as installed by
# scripts/setup-deps. Used by scripts/test (the aarch64 build):
#
#   cmake -S . -B build/aarch64 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=scripts/aarch64-linux-gnu.cmake
#
# Libraries and headers are looked up only in the arm64 multiarch
# directories; programs (bpftool, python3) on the build machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(WEFT_CROSS_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${WEFT_CROSS_TRIPLET}-gcc)
set(CMAKE_ASM_COMPILER ${WEFT_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${WEFT_CROSS_TRIPLET})

set(CMAKE_FIND_ROOT_PATH /usr/${WEFT_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must answer with the arm64 .pc files, never the build
# machine's; Criterion for arm64 is unpacked beside them by setup-deps (the
# arm64 package cannot be installed next to the amd64 one).
set(ENV{PKG_CONFIG_LIBDIR}
  "/usr/local/lib/weft-cross/aarch64-criterion/pkgconfig:/usr/lib/${WEFT_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
