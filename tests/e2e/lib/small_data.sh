# small_data.sh — sourced by the sweep tests: `small_data QS SRC DIR` writes DIR/eval.ids (the
# first 3000 tokens of kjv-test) and DIR/calib.ids (the next 20000), pre-tokenized with the
# bundled model's tokenizer, and DIR/job.ini, the test grid on them (RTN/GPTQ x 3/4 bits on the
# bundled model, KL included: 4 cells that run in seconds).
small_data() {
  local qs=$1 src=$2 dir=$3
  "$qs" tokenize --model "$src/demo/kjv-llama" --data "$src/demo/data/kjv-test.txt" --output "$dir/all.ids" >/dev/null || return 1
  { head -1 "$dir/all.ids"; sed 1d "$dir/all.ids" | tr ' ' '\n' | head -3000 | tr '\n' ' '; echo; } >"$dir/eval.ids"
  { head -1 "$dir/all.ids"; sed 1d "$dir/all.ids" | tr ' ' '\n' | tail -n +3001 | head -20000 | tr '\n' ' '; echo; } >"$dir/calib.ids"
  cat >"$dir/job.ini" <<EOF
# test grid: 2 methods x 2 bit widths
model = $src/demo/kjv-llama
calib = calib.ids
eval  = eval.ids
[quantize]
method     = rtn, gptq
bits       = 3, 4
group-size = 64
n-calib    = 8
seq-len    = 128
calib-chunk = 2
[eval]
ctx = 128
kl-divergence = true
EOF
}
