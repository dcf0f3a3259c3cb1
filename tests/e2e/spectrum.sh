#!/usr/bin/env bash
# spectrum.sh — `qsweep spectrum` end to end on the bundled kjv-llama: 1 rank and 2 (and 3) MPI
# ranks write identical CSVs and identical results.h5 metrics (timing and provenance aside);
# the plots are made; `qsweep recommend` exports a plan with every layer; bad input fails clearly
# without leaving results behind.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
M="$SRC/demo/kjv-llama"

"$QS" spectrum --model "$M" --output-dir "$tmp/r1" --save-eigenvalues --plot-format svg -q >"$tmp/r1.out" 2>&1 \
  || { bad "1 rank run"; cat "$tmp/r1.out"; }
for n in 2 3; do
  "${MPIRUN[@]}" -n $n "$QS" spectrum --model "$M" --output-dir "$tmp/r$n" --save-eigenvalues --no-plots -q \
    >"$tmp/r$n.out" 2>&1 || { bad "$n rank run"; cat "$tmp/r$n.out"; }
  for f in precision_alpha_hill_results.csv precision_summary_statistics.csv; do
    if cmp -s "$tmp/r1/$f" "$tmp/r$n/$f"; then ok "$f identical with $n ranks"; else bad "$f differs with $n ranks"; fi
  done
  a=$(h5dump -g /precisions "$tmp/r1/results.h5" | sed 1d; h5dump -g /layers "$tmp/r1/results.h5" | sed 1d)
  b=$(h5dump -g /precisions "$tmp/r$n/results.h5" | sed 1d; h5dump -g /layers "$tmp/r$n/results.h5" | sed 1d)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "results.h5 metrics and eigenvalues identical with $n ranks"
  else bad "results.h5 differs with $n ranks"; fi
done
rows=$(($(wc -l <"$tmp/r1/precision_alpha_hill_results.csv") - 1))
[ "$rows" = 29 ] && ok "29 layers in the CSV" || bad "CSV has $rows rows, expected 29"
[ -f "$tmp/r1/plots/alpha_distribution_by_precision.svg" ] && ok "plots made" || bad "no plots in $tmp/r1/plots"
n_ind=$(ls "$tmp/r1/plots/individual_layers" 2>/dev/null | wc -l)
[ "$n_ind" = 29 ] && ok "29 individual layer plots" || bad "individual_layers has $n_ind files"

"$QS" recommend --spectrum "$tmp/r1" --export-config "$tmp/plan.json" >"$tmp/rec.out" 2>&1 || bad "recommend"
if /usr/bin/python3 - "$tmp/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["default"] == {"bits": 4, "group_size": 128}, p["default"]
assert len(p["layers"]) == 29 and "lm_head" in p["layers"]
assert all(set(v) == {"bits", "group_size"} and v["bits"] in (3, 4, 8) for v in p["layers"].values())
PY
then ok "recommend plan schema"; else bad "recommend plan schema"; fi

# Bad input: a clear error, non-zero exit, no results.
for args in "--k-frac 1.5" "--precisions fp64,fp8" "--filter-layers no_such_layer" "--filter-layers ([bad"; do
  out=$("$QS" spectrum --model "$M" --output-dir "$tmp/bad" --no-plots -q $args 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q '^qsweep: error:' <<<"$out" && [ ! -e "$tmp/bad/results.h5" ]; then ok "error for $args"
  else bad "no clean error for $args (rc $rc): $out"; fi
done
exit $fail
