#!/usr/bin/env bash
# Gathers, here, the small Debian libraries that cram needs and a GPU machine lacks, so that
# scripts/gpu_check.sh can build cram there with that machine's own nvcc and CUDA libraries:
#   scripts/gpu_prepare.sh [--no-check]   -> .gpu-libs/ (git-ignored; carry it to the GPU machine)
# .gpu-libs/ holds
#   lib/              libyaml, libcjson, libutf8proc, libzstd, libcmocka (with their soname and
#                     link-time .so names), OpenBLAS (the OpenMP build, which cram dlopens: see
#                     src/ops/cpu/ops_cpu_blas.c) and the gfortran/quadmath runtimes it needs
#   lib/pkgconfig/    a .pc file per module, relocatable (prefix=${pcfiledir}/../..)
#   include/          the headers of those -dev packages
#   tools/pkg-config  a pkg-config for a machine that has none (pkgconf and its library)
# Nothing from the CUDA toolkit travels (the GPU machine links its own), nor glibc, nor the
# compiler's runtimes (libgcc_s, libstdc++, libgomp: the compiler there links its own, and an
# older libgomp ahead of it could lack symbols its code needs). OpenMPI is not carried: with its
# plugins and help files it would add ~15 MB and needs mpirun to be of use, so the GPU machine
# builds with CRAM_MPI=OFF (one GPU, one rank).
# Unless --no-check, the folder is then checked: a CPU-only configure and build of cram and
# test_config that may use nothing but the carried libraries (PKG_CONFIG_LIBDIR), in a scratch
# build-gpucheck/ that is deleted afterwards.
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
limit_kib=$((50 * 1024)) # carried at most with the working tree: 64 MiB in all
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

# copy a library file (following links) under its real name, with a link of its soname
carry_lib() { # path [link-time name]
  local real base soname
  real=$(readlink -f "$1")
  base=$(basename "$real")
  never_carried "$base" && die "refusing to carry $base"
  [ -e "$libs/lib/$base" ] || cp "$real" "$libs/lib/$base"
  soname=$(objdump -p "$real" | awk '$1 == "SONAME" {print $2}')
  [ -n "$soname" ] && [ "$soname" != "$base" ] && ln -sfn "$base" "$libs/lib/$soname"
  [ -n "${2:-}" ] && [ "$2" != "$base" ] && ln -sfn "$base" "$libs/lib/$2"
  # what it needs in turn, unless glibc, the compiler's runtime or already there
  ldd "$real" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    never_carried "$name" || [ -e "$libs/lib/$name" ] || carry_lib "$path"
  done
}

rm -rf "$libs"
mkdir -p "$libs/lib/pkgconfig" "$libs/include" "$libs/tools"
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
    carry_lib "$so" "lib$name.so"
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

# OpenBLAS: cram dlopens it (gpu_check.sh points CRAM_OPENBLAS here); its gfortran and quadmath
# runtimes come along, libgomp is the compiler's own on the GPU machine
carry_lib "$openblas" libopenblas.so.0

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

# nothing of CUDA or glibc may have slipped in, and the whole must stay small
for f in "$libs"/lib/* "$libs"/tools/*; do
  [ -d "$f" ] && continue
  ! never_carried "$(basename "$f")" || die "$(basename "$f") must not be carried"
done
kib=$(du -sk "$libs" | cut -f1)
if [ "$kib" -gt "$limit_kib" ]; then
  rm -rf "$libs"
  die ".gpu-libs would be $((kib / 1024)) MiB, over the $((limit_kib / 1024)) MiB limit (it travels with the source, 64 MiB in all): removed"
fi
echo "gpu_prepare: .gpu-libs is $((kib / 1024)) MiB:"
(cd "$libs" && find lib tools -maxdepth 1 -type f -printf '  %p (%s bytes)\n' | sort)

[ $check -eq 1 ] || exit 0

# ---- check: configure and build against the carried folder alone (CPU part only) ----
scratch=build-gpucheck
rm -rf "$scratch"
trap 'rm -rf "$scratch"' EXIT
echo "gpu_prepare: checking .gpu-libs with a CPU build in $scratch (deleted afterwards)"
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
# the carried OpenBLAS finds its runtimes in the carried folder and loads the way cram loads it
# (dlopen of $CRAM_OPENBLAS, RTLD_NOW)
for l in libgfortran libquadmath; do
  where=$(LD_LIBRARY_PATH="$libs/lib" ldd "$libs/lib/libopenblas.so.0" |
    awk -v l="$l" 'index($1, l) == 1 {print $3}')
  case "$(realpath -m "$where")" in "$libs"/lib/*) ;; *) die "OpenBLAS loads $l from '$where'" ;; esac
done
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
core=$(LD_LIBRARY_PATH="$libs/lib" "$scratch/blas_load" "$libs/lib/libopenblas.so.0") ||
  die "the carried OpenBLAS does not load"
echo "  OpenBLAS: loads, $core kernels"
# the tests pass with the carried libraries first
CRAM_OPENBLAS="$libs/lib/libopenblas.so.0" LD_LIBRARY_PATH="$libs/lib" \
  CRAM_CONFIG_PATH="$PWD/configs" "$scratch/test_config" >/dev/null 2>&1 || die "test_config failed"
echo "gpu_prepare: check passed (headers, link, RUNPATH, OpenBLAS, test_config from .gpu-libs)"
