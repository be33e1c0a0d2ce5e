#!/usr/bin/env bash
# Gathers, here, the small Debian libraries that cram needs and a GPU machine lacks, so that
# scripts/gpu_check.sh can build cram there with that machine's own nvcc and CUDA libraries:
#   scripts/gpu_prepare.sh [--no-check]   -> .gpu-libs/ and .gpu-blas/ (git-ignored; carry them)
# .gpu-libs/ (about 2 MiB; every gpu_check.sh mode carries it) holds
#   lib/              libyaml, libcjson, libutf8proc, libzstd, libcmocka (with their soname and
#                     link-time .so names)
#   lib/pkgconfig/    a .pc file per module, relocatable (prefix=${pcfiledir}/../..)
#   include/          the headers of those -dev packages
#   tools/pkg-config  a pkg-config for a machine that has none (pkgconf and its library)
# .gpu-blas/ (about 38 MiB; only the modes that run CPU rows carry it: test, bench) holds
#   lib/              OpenBLAS (the OpenMP build, which cram dlopens when a CPU backend opens: see
#                     src/ops/cpu/ops_cpu_blas.c) and the gfortran/quadmath runtimes it needs
# cram builds without OpenBLAS and runs CUDA-only work (pretrain and eval with impl.device=cuda,
# cram info, cram data) without it; scripts/gpu_carry.sh lists what each mode carries.
# Nothing from the CUDA toolkit travels (the GPU machine links its own), nor glibc, nor the
# compiler's runtimes (libgcc_s, libstdc++, libgomp: the compiler there links its own, and an
# older libgomp ahead of it could lack symbols its code needs). OpenMPI is not carried: with its
# plugins and help files it would add ~15 MB and needs mpirun to be of use, so the GPU machine
# builds with CRAM_MPI=OFF (one GPU, one rank).
# Unless --no-check, the folders are then checked: a CPU-only configure and build of cram and
# test_config that may use nothing but .gpu-libs (PKG_CONFIG_LIBDIR), `cram info` and `cram data`
# run without loading any OpenBLAS, and the OpenBLAS of .gpu-blas loads with its carried runtimes;
# all in a scratch build folder that is deleted afterwards (CRAM_PREPARE_BUILD, default
# build-gpucheck/).
set -euo pipefail
cd "$(dirname "$0")/.."
check=1
case "${1:-}" in
  "") ;;
  --no-check) check=0 ;;
  *)
    echo "usage: scripts/gpu_prepare.sh [--no-check]" >&2
    exit 2
    ;;
esac
libs="$PWD/.gpu-libs"
blas="$PWD/.gpu-blas"
# each folder's own ceiling; what a mode carries in all is checked by scripts/gpu_carry.sh
libs_limit_mib=12
blas_limit_mib=45
modules="yaml-0.1 libcjson libutf8proc libzstd cmocka"
openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 # the first path cram tries

die() {
  echo "gpu_prepare: $*" >&2
  exit 1
}
for tool in pkg-config dpkg ldd cc; do
  command -v $tool >/dev/null || die "$tool not found"
done
[ -e "$openblas" ] || die "$openblas not found (apt-get install libopenblas0-openmp)"

# libraries that must never travel: glibc, the compiler's runtimes, CUDA and the NVIDIA driver
never_carried() {
  case "$1" in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | libresolv.so* | libutil.so* | \
      libmvec.so* | libanl.so* | libnsl.so* | ld-linux*) return 0 ;;
    libgcc_s.so* | libstdc++.so* | libgomp.so* | libatomic.so*) return 0 ;;
    libcuda.so* | libcudart* | libcublas* | libcudnn* | libnccl* | libnvrtc* | libnvJitLink* | \
      libcufft* | libcurand* | libcusolver* | libcusparse* | libcupti* | libnvToolsExt* | \
      libnvidia* | libOpenCL*) return 0 ;;
  esac
  return 1
}

# copy a library file (following links) into a lib folder under its real name, with a link of
# its soname; what it needs in turn goes to the same folder
carry_lib() { # lib folder, path [link-time name]
  local dir=$1 real base soname
  real=$(readlink -f "$2")
  base=$(basename "$real")
  never_carried "$base" && die "refusing to carry $base"
  [ -e "$dir/$base" ] || cp "$real" "$dir/$base"
  soname=$(objdump -p "$real" | awk '$1 == "SONAME" {print $2}')
  [ -n "$soname" ] && [ "$soname" != "$base" ] && ln -sfn "$base" "$dir/$soname"
  [ -n "${3:-}" ] && [ "$3" != "$base" ] && ln -sfn "$base" "$dir/$3"
  # unless glibc, the compiler's runtime or already in one of the carried folders
  ldd "$real" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    never_carried "$name" || [ -e "$libs/lib/$name" ] || [ -e "$dir/$name" ] ||
      carry_lib "$dir" "$path"
  done
}

rm -rf "$libs" "$blas"
mkdir -p "$libs/lib/pkgconfig" "$libs/include" "$libs/tools" "$blas/lib"
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
for mod in $modules; do
  pkg-config --exists "$mod" || die "pkg-config module $mod not found (scripts/install-deps.sh)"
  [ -z "$(pkg-config --print-requires "$mod")" ] || die "$mod requires other modules: not handled"
  # the shared libraries it links, found where the compiler finds them
  lflags=""
  for l in $(pkg-config --libs-only-l "$mod"); do
    name=${l#-l}
    so=""
    for dir in $(pkg-config --libs-only-L "$mod" | sed 's/-L//g'); do
      [ -e "$dir/lib$name.so" ] && so="$dir/lib$name.so" && break
    done
    [ -n "$so" ] || so=$(cc -print-file-name="lib$name.so")
    [ -e "$so" ] || die "$mod: lib$name.so not found"
    carry_lib "$libs/lib" "$so" "lib$name.so"
    lflags="$lflags $l"
  done
  # its headers: every file its -dev package installs under /usr/include
  pc=$(pkg-config --path "$mod")
  pkg=$(dpkg -S "$(readlink -f "$pc")" 2>/dev/null | head -1 | cut -d: -f1) ||
    die "$mod: no Debian package owns $pc"
  dpkg -L "$pkg" | grep '^/usr/include/.' | while read -r f; do
    [ -f "$f" ] || continue
    mkdir -p "$libs/include/$(dirname "${f#/usr/include/}")"
    cp "$f" "$libs/include/${f#/usr/include/}"
  done
  # the compile flags with /usr/include replaced by the carried include folder
  cflags=""
  for c in $(pkg-config --cflags "$mod"); do
    case "$c" in
      -I/usr/include*) cflags="$cflags -I\${includedir}${c#-I/usr/include}" ;;
      -I*) die "$mod: include folder outside /usr/include: $c" ;;
      *) cflags="$cflags $c" ;;
    esac
  done
  cat >"$libs/lib/pkgconfig/$mod.pc" <<EOF
# Carried by scripts/gpu_prepare.sh from $pkg; relocatable.
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $mod
Description: $mod as Debian packages it ($pkg)
Version: $(pkg-config --modversion "$mod")
Libs: -L\${libdir}$lflags
Cflags:$cflags
EOF
done

# OpenBLAS, in its own folder: cram dlopens it (gpu_check.sh points CRAM_OPENBLAS there); its
# gfortran and quadmath runtimes come along, libgomp is the compiler's own on the GPU machine
carry_lib "$blas/lib" "$openblas" libopenblas.so.0

# a pkg-config for a GPU machine without one: pkgconf, its library, and a wrapper that finds both
pkgconf_bin=$(readlink -f "$(command -v pkgconf || command -v pkg-config)")
cp "$pkgconf_bin" "$libs/tools/pkgconf"
ldd "$pkgconf_bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
  never_carried "$name" || cp -L "$path" "$libs/tools/$name"
done
cat >"$libs/tools/pkg-config" <<'EOF'
#!/bin/sh
# pkgconf carried by scripts/gpu_prepare.sh, for a machine that has no pkg-config
d=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/pkgconf" "$@"
EOF
chmod +x "$libs/tools/pkg-config"

# nothing of CUDA or glibc may have slipped in, no OpenBLAS into .gpu-libs, and each folder and
# each mode's carry must stay small
for f in "$libs"/lib/* "$libs"/tools/* "$blas"/lib/*; do
  [ -d "$f" ] && continue
  ! never_carried "$(basename "$f")" || die "$(basename "$f") must not be carried"
done
! compgen -G "$libs/lib/libopenblas*" >/dev/null || die "OpenBLAS ended up in .gpu-libs"
# shellcheck source=scripts/gpu_carry.sh disable=SC1091
. scripts/gpu_carry.sh
size_guard() { # folder, limit in MiB
  local b
  b=$(gpu_carry_bytes "$1")
  if [ "$b" -gt $(($2 * 1024 * 1024)) ]; then
    rm -rf "$libs" "$blas"
    die "$(basename "$1") would be $(gpu_carry_mib "$b") MiB, over its $2 MiB limit: both folders removed"
  fi
  echo "gpu_prepare: $(basename "$1") is $(gpu_carry_mib "$b") MiB:"
  (cd "$1" && find . -mindepth 2 -maxdepth 2 -type f ! -path './include/*' -printf '  %P (%s bytes)\n' | sort)
}
size_guard "$libs" "$libs_limit_mib"
size_guard "$blas" "$blas_limit_mib"
# test and bench carry these two folders alone; pretrain and eval carry .gpu-libs with a data
# folder that may not be made yet (then it counts as empty and the line says it is missing)
rc=0
gpu_carry_report test || rc=$?
if [ $rc -eq 2 ]; then
  rm -rf "$libs" "$blas"
  die "the test and bench modes would not fit a carry: .gpu-libs and .gpu-blas removed"
fi
for m in pretrain eval; do
  rc=0
  gpu_carry_report "$m" || rc=$?
  [ $rc -ne 2 ] || die "the $m mode would not fit a carry with this .gpu-libs and its data folder"
done

[ $check -eq 1 ] || exit 0

# ---- check: configure and build against the carried folder alone (CPU part only) ----
scratch=$(realpath -m "${CRAM_PREPARE_BUILD:-build-gpucheck}")
rm -rf "$scratch"
trap 'rm -rf "$scratch"' EXIT
echo "gpu_prepare: checking the folders with a CPU build in $scratch (deleted afterwards)"
mkdir -p "$scratch"
PKG_CONFIG_LIBDIR="$libs/lib/pkgconfig" PKG_CONFIG_PATH="" \
  cmake -S . -B "$scratch" -DCMAKE_BUILD_TYPE=Release -DCRAM_CUDA=OFF -DCRAM_MPI=OFF \
  -DPKG_CONFIG_EXECUTABLE="$libs/tools/pkg-config" >"$scratch/configure.log" 2>&1 ||
  { cat "$scratch/configure.log"; die "configure against .gpu-libs failed"; }
cache="$scratch/CMakeCache.txt"
for v in YAML CJSON UTF8PROC ZSTD CMOCKA; do
  grep -q "^${v}_FOUND:INTERNAL=1" "$cache" || die "$v: not found in the carried folder"
  # the libraries pkg_check_modules resolved, and the include folders it passes
  vals=$(sed -n -e "s/^pkgcfg_lib_${v}_[^:]*:FILEPATH=//p" -e "s/^${v}_INCLUDE_DIRS:INTERNAL=//p" \
    "$cache" | tr ';' ' ')
  [ -n "$vals" ] || die "$v: no library or include folder in the cache"
  for x in $vals; do
    case "$(realpath -m "$x")" in
      "$libs"/*) ;;
      *) die "$v: $x is outside the carried folder" ;;
    esac
  done
  echo "  $v: $(sed -n "s/^pkgcfg_lib_${v}_[^:]*:FILEPATH=//p" "$cache")"
done
cmake --build "$scratch" -j"${JOBS:-$(nproc)}" --target cram test_config >/dev/null ||
  die "build against .gpu-libs failed"
# every header of a carried library came from the carried folder ...
seen=$(grep -rhoE '[^ :\\]+/(yaml|cJSON|utf8proc|zstd|zdict|zstd_errors|cmocka|cmocka_pbc)\.h' \
  "$scratch" --include='*.d' --include='*.make' | sort -u)
for want in yaml.h cJSON.h utf8proc.h zstd.h cmocka.h; do
  grep -q "/$want\$" <<<"$seen" || die "no dependency file of the build names $want"
done
for h in $seen; do
  case "$(realpath -m "$h")" in
    "$libs"/include/*) ;;
    *) die "the build read $h, not the carried header" ;;
  esac
done
# ... and the programs find the carried libraries by their RUNPATH, with no LD_LIBRARY_PATH
for exe in "$scratch/cram" "$scratch/test_config"; do
  for l in libyaml libcjson libutf8proc libzstd libcmocka; do
    where=$(env -u LD_LIBRARY_PATH ldd "$exe" | awk -v l="$l" 'index($1, l) == 1 {print $3}')
    [ -z "$where" ] && continue # not linked by this one (cmocka by cram)
    case "$(realpath -m "$where")" in "$libs"/lib/*) ;; *) die "$exe loads $l from $where" ;; esac
  done
done
# CUDA-only work needs no OpenBLAS: `cram info` and a small `cram data` build open none. The
# dynamic loader's own record of the files it opens (LD_DEBUG=files) is the witness; the OpenBLAS
# check below runs under it too, so a record that would miss a load fails there
cat >"$scratch/blas_load.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h = argc > 1 ? dlopen(argv[1], RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!h) return fprintf(stderr, "%s\n", dlerror()), 1;
    char *(*core)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    if (!core || !dlsym(h, "cblas_sgemm")) return fprintf(stderr, "no cblas_sgemm\n"), 1;
    printf("%s\n", core());
    return 0;
}
EOF
cc -o "$scratch/blas_load" "$scratch/blas_load.c" -ldl || die "cannot build the OpenBLAS check"
mkdir -p "$scratch/ld" "$scratch/run"
no_blas=(env -u CRAM_OPENBLAS "LD_LIBRARY_PATH=$libs/lib" "CRAM_CONFIG_PATH=$PWD/configs"
  LD_DEBUG=files)
"${no_blas[@]}" LD_DEBUG_OUTPUT="$scratch/ld/info" "$scratch/cram" info >"$scratch/info.log" 2>&1 ||
  { cat "$scratch/info.log"; die "cram info failed with .gpu-libs alone"; }
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
(cd "$scratch/run" && "${no_blas[@]}" LD_DEBUG_OUTPUT="$scratch/ld/data" "$scratch/cram" data \
  data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus" \
  impl.path="$scratch/run/data" >"$scratch/data.log" 2>&1) ||
  { tail -n 20 "$scratch/data.log"; die "cram data failed with .gpu-libs alone"; }
if cat "$scratch"/ld/info.* "$scratch"/ld/data.* | grep -q 'file=.*openblas'; then
  die "cram info or cram data opened an OpenBLAS"
fi
echo "  cram info, cram data: run with .gpu-libs alone and open no OpenBLAS"

# the OpenBLAS of .gpu-blas finds its runtimes in that folder and loads the way cram loads it
# (dlopen of $CRAM_OPENBLAS, RTLD_NOW)
for l in libgfortran libquadmath; do
  where=$(LD_LIBRARY_PATH="$blas/lib" ldd "$blas/lib/libopenblas.so.0" |
    awk -v l="$l" 'index($1, l) == 1 {print $3}')
  case "$(realpath -m "$where")" in "$blas"/lib/*) ;; *) die "OpenBLAS loads $l from '$where'" ;; esac
done
core=$(LD_LIBRARY_PATH="$blas/lib" LD_DEBUG=files LD_DEBUG_OUTPUT="$scratch/ld/blas" \
  "$scratch/blas_load" "$blas/lib/libopenblas.so.0") || die "the carried OpenBLAS does not load"
grep -q 'file=.*openblas' "$scratch"/ld/blas.* ||
  die "LD_DEBUG=files recorded no OpenBLAS load: the check of cram info and cram data proves nothing"
echo "  OpenBLAS (.gpu-blas): loads, $core kernels"
# the tests pass with the carried libraries first
CRAM_OPENBLAS="$blas/lib/libopenblas.so.0" LD_LIBRARY_PATH="$blas/lib:$libs/lib" \
  CRAM_CONFIG_PATH="$PWD/configs" "$scratch/test_config" >/dev/null 2>&1 || die "test_config failed"
echo "gpu_prepare: check passed (headers, link, RUNPATH and test_config from .gpu-libs; cram info and cram data without OpenBLAS; OpenBLAS from .gpu-blas)"
