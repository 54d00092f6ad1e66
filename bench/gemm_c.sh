#!/bin/sh
# Compiles bench/c/gemm_openblas.c against OpenBLAS (Debian: libopenblas-dev)
# and prints its GFLOP/s for each size (default 256 512 1024 2048), to set
# beside `deno bench -A bench/gemm_bench.ts` run on the same machine.
#
#   sh bench/gemm_c.sh [sizes...]
#   OPENBLAS_NUM_THREADS=1 sh bench/gemm_c.sh 1024
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/kdeno_gemm_openblas
cflags=${CFLAGS:-"-O2"}
# Debian/Ubuntu put cblas.h under /usr/include/<triplet>; pkg-config knows.
inc=$(pkg-config --cflags openblas 2>/dev/null || true)
libs=$(pkg-config --libs openblas 2>/dev/null || echo "-lopenblas")
# shellcheck disable=SC2086
${CC:-cc} $cflags $inc "$here/c/gemm_openblas.c" -o "$out" $libs
exec "$out" "$@"
