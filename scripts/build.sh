#!/usr/bin/env bash
# build.sh — install dependencies (scripts/setup.sh, idempotent), configure and build qsweep in
# build/ (Release). Extra arguments go to cmake's configure step, e.g. -DQSWEEP_WITH_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
