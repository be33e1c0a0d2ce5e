#!/usr/bin/env bash
# Installs the Debian 12 packages cram builds and tests with; installs only what is missing, so
# it is cheap to run every time. Uses sudo when not run as root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libyaml-dev libcjson-dev libutf8proc-dev libzstd-dev
      libopenblas-dev libopenblas0-openmp libopenmpi-dev openmpi-bin
      libcmocka-dev clang libclang-rt-14-dev clang-format
      libpng-dev) # libpng-dev: tests/test_report.c decodes the PNG plots with it
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
