#!/usr/bin/env bash
# mpi_rank_invariance.sh — `qsweep eval` under real MPI ranks: 1 rank and 2 ranks (and 3, an
# uneven split) must print the same perplexity to the last digit and write identical per-window
# NLL sums; provenance (rank count, hosts) must say how the run was made.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
head -c 60000 "$SRC/demo/data/kjv-test.txt" >"$tmp/test.txt"  # ~120 windows of 128: uneven over 3 ranks
run() {  # run NAME RANKS extra-args...
  local name=$1 n=$2; shift 2
  "${MPIRUN[@]}" -n "$n" "$QS" eval --model "$SRC/demo/kjv-llama" --data "$tmp/test.txt" \
    --output-dir "$tmp/$name" -q "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" \
    || { echo "FAIL $name: exit $?"; cat "$tmp/$name.err"; fail=1; }
}
for proto in gptq llamacpp; do
  run ${proto}_1 1 --protocol $proto --ctx 128
  run ${proto}_2 2 --protocol $proto --ctx 128
  run ${proto}_3 3 --protocol $proto --ctx 128
  p1=$(grep '^perplexity:' "$tmp/${proto}_1.out")
  for n in 2 3; do
    pn=$(grep '^perplexity:' "$tmp/${proto}_$n.out")
    if [ -n "$p1" ] && [ "$p1" = "$pn" ]; then echo "PASS $proto: $n ranks print '$pn' like 1 rank"
    else echo "FAIL $proto: 1 rank '$p1' vs $n ranks '$pn'"; fail=1; fi
    d1=$(h5dump -d /windows/nll_sum "$tmp/${proto}_1/eval.h5" | sed 1d)
    dn=$(h5dump -d /windows/nll_sum "$tmp/${proto}_$n/eval.h5" | sed 1d)
    if [ -n "$d1" ] && [ "$d1" = "$dn" ]; then echo "PASS $proto: per-window NLL identical with $n ranks"
    else echo "FAIL $proto: per-window NLL differs with $n ranks"; fail=1; fi
    if h5dump -a /n_ranks "$tmp/${proto}_$n/eval.h5" | grep -q "(0): $n\$"; then echo "PASS provenance n_ranks=$n"
    else echo "FAIL provenance n_ranks"; fail=1; fi
  done
done
exit $fail
