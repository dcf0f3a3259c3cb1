#!/usr/bin/env bash
# setup.sh — install qsweep's build and run dependencies from Debian packages (idempotent).
#
# Everything qsweep links against comes from Debian: Open MPI, parallel HDF5 (the openmpi
# flavour), OpenBLAS built against OpenMP (so OpenBLAS and qsweep's own OpenMP loops share one
# thread pool instead of two spinning pools fighting over the cores), Boost.Program_options,
# GoogleTest, Google Benchmark, nlohmann-json, sentencepiece, and for tokenizer.json PCRE2 (Unicode
# regexes with JIT) and utf8proc (NFC/NFKC normalization). The Python analysis scripts use
# Debian's python3-* packages through /usr/bin/python3 (python3-torch: the PyTorch reference of
# Block-AP's training loop in tests/reference/, run by the tests). Packages already installed are skipped,
# so running this twice costs one dpkg query.
#
#   bash scripts/setup.sh [PACKAGE...]    extra Debian packages a step needs (scripts/fuzz.sh: clang)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git ccache
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  libopenblas-openmp-dev liblapacke-dev
  libboost-program-options-dev
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev
  libsentencepiece-dev sentencepiece
  libpcre2-dev libutf8proc-dev
  python3-numpy python3-h5py python3-pandas python3-matplotlib python3-scipy
  python3-torch
  "$@"
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
