#!/usr/bin/env bash
# fuzz.sh — fuzz qsweep's file parsers (safetensors header and shard index, config.json,
# tokenizer.json + tokenizer_config.json, job files, pre-tokenized data) with libFuzzer under
# ASan + UBSan: installs clang and its runtime from Debian if missing, configures and builds
# build-fuzz/ (-DQSWEEP_FUZZ=ON, clang++), then runs each target of tests/fuzz/ for SECONDS on a
# scratch copy of its seed corpus (the repository's corpus never grows), as many at a time as
# there are cores. Prints per target the executions and any finding; exits 1 on a finding.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default 10 s; targets: all of tests/fuzz)
#
# A finding leaves its input in build-fuzz/fuzz-runs/TARGET/ (crash-*, leak-*, timeout-*,
# oom-*); reproduce with build-fuzz/tests/fuzz/fuzz_TARGET FILE, and add the input, once fixed,
# to tests/fuzz/corpus/TARGET/ as a regression seed. QSWEEP_FUZZ_ARGS adds libFuzzer flags;
# QSWEEP_FUZZ_JOBS sets how many targets run at once. QSWEEP_FUZZ_STEPS picks the steps (default
# "setup build run"; scripts/test.sh installs first, builds while the tests run, fuzzes after).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then  # libFuzzer reads -max_total_time=0 as "no limit"
  echo "fuzz: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(safetensors safetensors_index config hf_tokenizer job_file token_ids jsonl)
fi

steps=" ${QSWEEP_FUZZ_STEPS:-setup build run} "
for s in $steps; do
  case $s in setup | build | run) ;; *) echo "fuzz: QSWEEP_FUZZ_STEPS: unknown step '$s' (setup, build, run)" >&2; exit 2 ;; esac
done

# --- setup: qsweep's own dependencies (the configure step finds them all), then clang (idempotent)
if [[ $steps == *" setup "* ]]; then
  bash scripts/setup.sh clang-14 libclang-rt-14-dev libomp-14-dev
fi

# --- build: only the fuzz targets and the parsers they link (no MPI, tests or benchmarks)
if [[ $steps == *" build "* ]]; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DQSWEEP_FUZZ=ON -DQSWEEP_WITH_MPI=OFF -DQSWEEP_BUILD_TESTS=OFF -DQSWEEP_BUILD_BENCH=OFF -DQSWEEP_NATIVE=OFF >/dev/null
  cmake --build build-fuzz --target qsweep_fuzz -j"$(nproc)"
fi
[[ $steps == *" run "* ]] || exit 0

# --- run
export QSWEEP_TOKEN_CACHE=off  # the parsers, not a per-user cache, are under test
runs=build-fuzz/fuzz-runs
jobs=${QSWEEP_FUZZ_JOBS:-$(nproc)}
# The targets' scratch files (each input is written to a file): tmpfs when there is one.
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/qsweep-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
run_target() {  # TARGET: fuzzes it for $seconds in $runs/TARGET, the log in $runs/TARGET/log
  local t=$1 dir=$runs/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$scratch/$t"
  cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
  local dict=""
  case $t in
    safetensors | safetensors_index) dict="tests/fuzz/dict/json.dict tests/fuzz/dict/safetensors.dict" ;;
    config | hf_tokenizer | jsonl) dict="tests/fuzz/dict/json.dict tests/fuzz/dict/$t.dict" ;;
    *) dict="tests/fuzz/dict/$t.dict" ;;
  esac
  # shellcheck disable=SC2086
  cat $dict >"$dir/dict"
  # -timeout: one input running this long is a hang; -rss_limit_mb: and this much memory, a finding.
  # shellcheck disable=SC2086
  TMPDIR=$scratch/$t build-fuzz/tests/fuzz/fuzz_"$t" "$dir/corpus" -dict="$dir/dict" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/" ${QSWEEP_FUZZ_ARGS:-} >"$dir/log" 2>&1
}

echo "fuzz: ${#targets[@]} targets, ${seconds} s each, ${jobs} at a time (logs in $runs/)"
pids=()
for t in "${targets[@]}"; do
  [ -x build-fuzz/tests/fuzz/fuzz_"$t" ] || { echo "fuzz: no target '$t'"; exit 2; }
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
  pids+=($!)
done
status=()
for i in "${!targets[@]}"; do
  if wait "${pids[$i]}"; then status+=(0); else status+=($?); fi
done

found=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  dir=$runs/$t
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  corpus=$(ls "$dir/corpus" | wc -l)
  artifacts=$(ls "$dir" | grep -E '^(crash|leak|timeout|oom)-' || true)
  if [ "${status[$i]}" -eq 0 ] && [ -z "$artifacts" ]; then
    printf 'fuzz: %-18s %10s executions, corpus %d inputs, no finding\n' "$t" "${execs:-?}" "$corpus"
  else
    found=1
    printf 'fuzz: %-18s %10s executions: FINDING (exit %s) %s\n' "$t" "${execs:-?}" "${status[$i]}" "$artifacts"
    { grep -E 'ERROR|FINDING|runtime error|SUMMARY|#[0-9]+ 0x' "$dir/log" || tail -5 "$dir/log"; } | head -20 | sed 's/^/    /'
    echo "    full report: $dir/log"
  fi
done
[ $found -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FINDINGS above"
exit $found
