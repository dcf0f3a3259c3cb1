#!/usr/bin/env bash
# device.sh — `--device` end to end (issue 12). On a machine without a GPU (CI): auto and cpu
# give the same digits, cuda fails clearly (no CUDA in the build, or no visible GPU) with a
# non-zero exit and no output file; a job file's bad device is refused naming the file; a sweep
# started on one device refuses to resume on another. With a GPU (bench/gpu_check.sh runs this
# script there): eval within 1e-4 relative of the CPU, RTN codes equal, GPTQ/AWQ perplexity within
# 0.1%, a small sweep on cuda, and 1 vs 2 ranks identical on the GPU (the shared-device path).
# Args: $1 qsweep binary, $2 source dir, $3 shared dir. QSWEEP_PY: the Python with h5py (default
# /usr/bin/python3, Debian's; bench/gpu_check.sh sets the GPU node's).
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"
CAL="$SRC/demo/data/kjv-test.txt"
EV="$tmp/eval.ids"
"$QS" tokenize --model "$M" --data "$CAL" --output "$tmp/all.ids" >/dev/null
{ head -1 "$tmp/all.ids"; sed 1d "$tmp/all.ids" | tr ' ' '\n' | head -2600 | tr '\n' ' '; echo; } >"$EV"
ev=(eval --model "$M" --data "$EV" --ctx 128)

pc=$("$QS" "${ev[@]}" --device cpu -q --output-dir "$tmp/cpu" | grep '^perplexity')
pa=$("$QS" "${ev[@]}" --output-dir "$tmp/auto" 2>"$tmp/auto.err" | grep '^perplexity')
if grep -q 'compute: cuda' "$tmp/auto.err"; then gpu=1; else gpu=0; fi
[ -n "$pc" ] && ok "eval --device cpu: $pc" || bad "eval --device cpu printed no perplexity"
if [ "$gpu" = 0 ]; then
  [ "$pa" = "$pc" ] && ok "no GPU: --device auto computes on the CPU, same digits" || bad "auto '$pa' vs cpu '$pc'"
  if "$QS" "${ev[@]}" --device cuda -q --output-dir "$tmp/cuda" >/dev/null 2>"$tmp/cuda.err"; then
    bad "--device cuda without a GPU exited 0"
  elif grep -Eq 'built without CUDA|sees no CUDA device' "$tmp/cuda.err" && [ ! -e "$tmp/cuda/eval.h5" ]; then
    ok "--device cuda without a GPU: $(head -c 120 "$tmp/cuda.err")..."
  else bad "--device cuda error unclear: $(cat "$tmp/cuda.err")"; fi
  if "${MPIRUN[@]}" -n 2 "$QS" "${ev[@]}" --device cuda -q --output-dir "$tmp/cuda2" >/dev/null 2>"$tmp/cuda2.err"; then
    bad "2 ranks --device cuda without a GPU exited 0"
  else ok "2 ranks --device cuda without a GPU: both stop (no rank left waiting)"; fi
fi
if "$QS" "${ev[@]}" --device gpu -q --output-dir "$tmp/gpu" >/dev/null 2>"$tmp/gpu.err"; then bad "--device gpu accepted"
elif grep -q -- '--device gpu: expected auto' "$tmp/gpu.err"; then ok "--device gpu refused with the choices"
else bad "--device gpu: $(cat "$tmp/gpu.err")"; fi

# --compute-dtype: bf16 and tf32x3 exist on CUDA only; on the CPU they are refused, never
# relabelled fp32.
for dt in bf16 tf32x3; do
  if "$QS" "${ev[@]}" --device cpu --compute-dtype $dt -q --output-dir "$tmp/${dt}cpu" >/dev/null 2>"$tmp/${dt}cpu.err"; then
    bad "--compute-dtype $dt on the cpu exited 0"
  elif grep -q -- "--compute-dtype $dt runs on CUDA only" "$tmp/${dt}cpu.err" && [ ! -e "$tmp/${dt}cpu" ]; then
    ok "--compute-dtype $dt on the cpu refused, no output"
  else bad "$dt on cpu: $(cat "$tmp/${dt}cpu.err")"; fi
done
if "$QS" "${ev[@]}" --compute-dtype fp16 -q --output-dir "$tmp/fp16" >/dev/null 2>"$tmp/fp16.err"; then bad "--compute-dtype fp16 accepted"
elif grep -q -- '--compute-dtype fp16: expected fp32' "$tmp/fp16.err"; then ok "--compute-dtype fp16 refused with the choices"
else bad "--compute-dtype fp16: $(cat "$tmp/fp16.err")"; fi

# Job files: a top-level device, checked before any work.
job() {  # $1 path, $2 device line
  cat >"$1" <<JOB
model = $M
calib = $CAL
eval = $EV
$2
[quantize]
method = rtn
bits = 4
group-size = 64
n-calib = 4
seq-len = 64
[eval]
ctx = 128
JOB
}
job "$tmp/bad.ini" "device = gpu"
if "$QS" run "$tmp/bad.ini" --output-dir "$tmp/badsweep" -q >/dev/null 2>"$tmp/bad.err"; then bad "job device = gpu accepted"
elif grep -q "bad.ini: device =.*expected auto" "$tmp/bad.err" && [ ! -e "$tmp/badsweep" ]; then ok "job file device = gpu refused naming the file"
else bad "job device error: $(cat "$tmp/bad.err")"; fi
job "$tmp/dt.ini" "compute-dtype = half"
if "$QS" run "$tmp/dt.ini" --output-dir "$tmp/dtsweep" -q >/dev/null 2>"$tmp/dt.err"; then bad "job compute-dtype = half accepted"
elif grep -q "dt.ini: compute-dtype =.*expected fp32" "$tmp/dt.err" && [ ! -e "$tmp/dtsweep" ]; then ok "job file compute-dtype = half refused naming the file"
else bad "job compute-dtype error: $(cat "$tmp/dt.err")"; fi
job "$tmp/cpu.ini" "device = cpu"
if "$QS" run "$tmp/cpu.ini" --output-dir "$tmp/sweep" -q >/dev/null 2>"$tmp/sweep.err" &&
   grep -q '"compute": "cpu fp32"' "$tmp/sweep/inputs.json"; then ok "sweep on device = cpu records compute cpu fp32"
else bad "sweep on cpu: $(tail -3 "$tmp/sweep.err")"; fi
# A sweep whose recorded device differs from this run's refuses to resume (its cells would mix).
sed -i 's/"compute": "cpu fp32"/"compute": "cuda fp32"/' "$tmp/sweep/inputs.json"
if "$QS" run "$tmp/cpu.ini" --output-dir "$tmp/sweep" --resume -q >/dev/null 2>"$tmp/resume.err"; then bad "resume on another device accepted"
elif grep -q 'compute device cuda fp32 -> cpu fp32' "$tmp/resume.err" && grep -q -- '--device cuda' "$tmp/resume.err"; then
  ok "resume refused: the sweep started on cuda, this run computes on cpu"
else bad "resume on another device: $(cat "$tmp/resume.err")"; fi

if [ "$gpu" = 1 ]; then
  rel() { awk -v a="$1" -v b="$2" 'BEGIN{r=(a-b)/b; if(r<0)r=-r; printf "%.3g", r}'; }
  under() { awk -v r="$1" -v m="$2" 'BEGIN{exit !(r+0 < m+0)}'; }
  pg=$("$QS" "${ev[@]}" --device cuda -q --output-dir "$tmp/cuda" | awk '/^perplexity/{print $2}')
  r=$(rel "$pg" "$(echo "$pc" | awk '{print $2}')")
  under "$r" 1e-4 && ok "eval on cuda within 1e-4 of cpu (rel $r)" || bad "eval cuda rel $r"
  # Tasks: packed branches, the chunk resident on the GPU; the same predictions as the CPU.
  python3 "$SRC/analysis/make_tasks.py" --input "$CAL" --out "$tmp/tk" --n 24 --seed 2 >/dev/null || bad "make_tasks.py"
  tc=$("$QS" eval --model "$M" --tasks "$tmp/tk.jsonl" --ctx 128 --device cpu -q --output-dir "$tmp/tkc" | grep '^tasks.*n=')
  tg=$("$QS" eval --model "$M" --tasks "$tmp/tk.jsonl" --ctx 128 --device cuda -q --output-dir "$tmp/tkg" | grep '^tasks.*n=')
  [ -n "$tc" ] && [ "${tc#*: }" = "${tg#*: }" ] && ok "tasks on cuda: ${tg#*: } (the cpu's)" || bad "tasks cuda '$tg' vs cpu '$tc'"
  # Calibration statistics on the device (resident hidden states, device sums).
  cal=(calibrate --model "$M" --calib "$CAL" --n-calib 8 --seq-len 128 -q)
  "$QS" "${cal[@]}" --device cuda --output-dir "$tmp/calg" >/dev/null && [ -s "$tmp/calg/stats.h5" ] \
    && ok "calibrate on cuda" || bad "calibrate on cuda"
  for method in rtn gptq awq praq; do  # praq: AWQ with Robust-PRAQ's importance, computed on the GPU
    m=$method; [ $method = praq ] && m="awq --awq-salience praq"
    # shellcheck disable=SC2206
    q=(quantize --model "$M" --method $m --bits 4 --group-size 64 --calib "$CAL" --n-calib 8 --seq-len 128 -q)
    "$QS" "${q[@]}" --device cpu --output-dir "$tmp/q$method-cpu" >/dev/null && "$QS" "${q[@]}" --device cuda --output-dir "$tmp/q$method-cuda" >/dev/null || bad "quantize $method"
    a=$("$QS" "${ev[@]}" --device cpu --quantized "$tmp/q$method-cpu" -q --output-dir "$tmp/q$method-cpu" | awk '/^perplexity/{print $2}')
    b=$("$QS" "${ev[@]}" --device cuda --quantized "$tmp/q$method-cuda" -q --output-dir "$tmp/q$method-cuda" | awk '/^perplexity/{print $2}')
    r=$(rel "$b" "$a")
    under "$r" 1e-3 && ok "$method on cuda: perplexity within 0.1% of cpu ($b vs $a)" || bad "$method cuda $b vs cpu $a"
  done
  # RTN's codes do not depend on the device (only its error statistics do): both files evaluated
  # on the CPU give the same digits exactly when their dequantized weights are the same.
  a=$("$QS" "${ev[@]}" --device cpu --quantized "$tmp/qrtn-cpu" -q --output-dir "$tmp/rc" | grep '^perplexity')
  b=$("$QS" "${ev[@]}" --device cpu --quantized "$tmp/qrtn-cuda" -q --output-dir "$tmp/rg" | grep '^perplexity')
  [ -n "$a" ] && [ "$a" = "$b" ] && ok "rtn codes equal on cpu and cuda (the same cpu $a)" || bad "rtn weights differ: '$a' vs '$b'"
  # 1 vs 2 ranks on one GPU (the shared-device path: the MPI reduction of host copies).
  if command -v "${MPIRUN[0]}" >/dev/null; then
    "${MPIRUN[@]}" -n 2 "$QS" "${ev[@]}" --device cuda -q --output-dir "$tmp/cuda2" >/dev/null 2>&1 \
      && "$QS" diff -q "$tmp/cuda" "$tmp/cuda2" && ok "eval on cuda: 1 and 2 ranks identical" || bad "eval on cuda: 1 vs 2 ranks differ"
    "${MPIRUN[@]}" -n 2 "$QS" quantize --model "$M" --method gptq --bits 4 --group-size 64 --calib "$CAL" --n-calib 8 --seq-len 128 -q \
      --device cuda --output-dir "$tmp/qgptq-cuda2" >/dev/null 2>&1 && "$QS" diff -q "$tmp/qgptq-cuda" "$tmp/qgptq-cuda2" \
      && ok "gptq on cuda: 1 and 2 ranks identical" || bad "gptq on cuda: 1 vs 2 ranks differ"
  else bad "no ${MPIRUN[0]} on this node: 1 vs 2 ranks not checked"; fi
  # --compute-dtype bf16: what it costs in perplexity (reported; bf16 rounding of every GEMM input).
  pb=$("$QS" "${ev[@]}" --device cuda --compute-dtype bf16 -q --output-dir "$tmp/bf16" | awk '/^perplexity/{print $2}')
  r=$(rel "$pb" "$pg")
  under "$r" 1e-2 && ok "eval bf16 on cuda: perplexity $pb vs fp32 $pg (rel $r, under 1%)" || bad "eval bf16 rel $r"
  # QSWEEP_CUDA_ATTENTION=flash: bf16's fused attention kernel (opt-in) against the GEMM path's bf16.
  pf=$(QSWEEP_CUDA_ATTENTION=flash "$QS" "${ev[@]}" --device cuda --compute-dtype bf16 -q --output-dir "$tmp/bf16f" | awk '/^perplexity/{print $2}')
  r=$(rel "$pf" "$pb")
  under "$r" 2e-3 && ok "eval bf16 with the fused attention: perplexity $pf vs $pb (rel $r, under 0.2%)" || bad "eval bf16 flash $pf vs $pb (rel $r)"
  # tf32x3 (fp32 emulated on TF32 tensor cores), with and without the fused attention: both fp32-class.
  pt=$("$QS" "${ev[@]}" --device cuda --compute-dtype tf32x3 -q --output-dir "$tmp/t3" | awk '/^perplexity/{print $2}')
  r=$(rel "$pt" "$pg")
  under "$r" 1e-4 && ok "eval tf32x3 on cuda: perplexity $pt vs fp32 $pg (rel $r, under 1e-4)" || bad "eval tf32x3 rel $r"
  pf=$(QSWEEP_CUDA_ATTENTION=flash "$QS" "${ev[@]}" --device cuda --compute-dtype tf32x3 -q --output-dir "$tmp/t3f" | awk '/^perplexity/{print $2}')
  r=$(rel "$pf" "$pt")
  under "$r" 1e-5 && ok "eval tf32x3 with the fused attention: perplexity $pf vs $pt (rel $r, under 1e-5)" || bad "eval tf32x3 flash $pf vs $pt (rel $r)"
  # Block-AP and the fisher score: their blocks' forward and backward on the GPU.
  ba=(quantize --model "$M" --method blockap --bits 2 --group-size 64 --calib "$CAL" --n-calib 8 --seq-len 128 --val-windows 2 -q)
  "$QS" "${ba[@]}" --device cpu --output-dir "$tmp/bap-cpu" >/dev/null && "$QS" "${ba[@]}" --device cuda --output-dir "$tmp/bap-cuda" >/dev/null || bad "blockap"
  a=$("$QS" "${ev[@]}" --device cpu --quantized "$tmp/bap-cpu" -q --output-dir "$tmp/bap-cpu" | awk '/^perplexity/{print $2}')
  b=$("$QS" "${ev[@]}" --device cpu --quantized "$tmp/bap-cuda" -q --output-dir "$tmp/bap-cuda" | awk '/^perplexity/{print $2}')
  r=$(rel "$b" "$a")
  under "$r" 1e-2 && ok "blockap W2 trained on cuda: perplexity $b vs cpu-trained $a (rel $r)" || bad "blockap cuda $b vs cpu $a"
  fi=(sensitivity --model "$M" --calib "$CAL" --method rtn --n-calib 8 --seq-len 64 --palette 3:64,4:128 --score fisher --fisher-windows 4 -q)
  "$QS" "${fi[@]}" --device cpu --output-dir "$tmp/fi-cpu" >/dev/null && "$QS" "${fi[@]}" --device cuda --output-dir "$tmp/fi-cuda" >/dev/null \
    && "${QSWEEP_PY:-/usr/bin/python3}" -c "import sys,h5py,numpy as np; a,b=(h5py.File(f)['scores/fisher'][:] for f in sys.argv[1:]); sys.exit(0 if np.allclose(a,b,rtol=1e-3,atol=0) else 1)" \
       "$tmp/fi-cpu/sensitivity.h5" "$tmp/fi-cuda/sensitivity.h5" && ok "fisher scores on cuda = cpu to 1e-3" || bad "fisher on cuda"
  job "$tmp/cuda.ini" "device = cuda"
  "$QS" run "$tmp/cuda.ini" --output-dir "$tmp/cudasweep" -q >/dev/null && grep -q '"compute": "cuda fp32"' "$tmp/cudasweep/inputs.json" \
    && ok "sweep on cuda" || bad "sweep on cuda"
fi
exit $fail
