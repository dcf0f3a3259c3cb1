#!/usr/bin/env bash
# blas_kernels.sh — the OpenBLAS kernel choice for real (issue 11): when the library runs kernels
# older than the CPU supports, qsweep sets OPENBLAS_CORETYPE and re-executes once, before MPI
# starts (on 1 and 2 ranks); the backend line names only the kernels in use and a warning says
# what was replaced; a user's own OPENBLAS_CORETYPE wins, with a warning when it is older than
# the CPU. The library's "older" choice is faked with QSWEEP_TEST_BLAS_CORENAME=Prescott in the
# first process only (this CPU is known to the library); the re-executed process is real.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! grep -qw avx2 /proc/cpuinfo; then echo "SKIP: no AVX2 on this CPU"; exit 77; fi
M="$SRC/demo/kjv-llama"
head -c 40000 "$SRC/demo/data/kjv-test.txt" >"$tmp/test.txt"  # a fifth of the file: the kernels, not the text, are under test
args=(eval --model "$M" --data "$tmp/test.txt" --ctx 128)
kernels() { sed -n 's/.*backend: cpu (OpenBLAS [^,]*, kernels \([A-Za-z0-9_]*\),.*/\1/p' "$1" | head -1; }

"$QS" "${args[@]}" --output-dir "$tmp/plain" >"$tmp/plain.out" 2>"$tmp/plain.err" || bad "plain eval"
plain=$(kernels "$tmp/plain.err")
QSWEEP_TEST_BLAS_CORENAME=Prescott "$QS" "${args[@]}" --output-dir "$tmp/fake" >"$tmp/fake.out" 2>"$tmp/fake.err" || bad "eval with the library's choice faked"
fake=$(kernels "$tmp/fake.err")
if [ -n "$plain" ] && [ "$fake" = "$plain" ] && [ "$fake" != Prescott ] &&
   grep -q "OpenBLAS chose generic Prescott kernels on this AVX.* CPU.*qsweep set OPENBLAS_CORETYPE=$fake and restarted" "$tmp/fake.err" &&
   [ "$(grep '^perplexity' "$tmp/fake.out")" = "$(grep '^perplexity' "$tmp/plain.out")" ]; then
  ok "library on Prescott kernels: qsweep re-executed with OPENBLAS_CORETYPE=$fake (the family it runs unasked), said so, same perplexity"
else bad "re-execution: plain '$plain', after '$fake': $(grep -i 'backend\|openblas' "$tmp/fake.err")"; fi

QSWEEP_TEST_BLAS_CORENAME=Prescott "${MPIRUN[@]}" -n 2 "$QS" "${args[@]}" --output-dir "$tmp/fake2" >"$tmp/fake2.out" 2>"$tmp/fake2.err" || bad "2 ranks"
if [ "$(kernels "$tmp/fake2.err")" = "$plain" ] && [ "$(grep -c 'and restarted' "$tmp/fake2.err")" = 1 ] &&
   [ "$(grep '^perplexity' "$tmp/fake2.out")" = "$(grep '^perplexity' "$tmp/plain.out")" ]; then
  ok "2 ranks: both re-executed before MPI started, one warning, same perplexity"
else bad "2 ranks: $(cat "$tmp/fake2.err" | head -5)"; fi

OPENBLAS_CORETYPE=Prescott "$QS" "${args[@]}" --output-dir "$tmp/user" >/dev/null 2>"$tmp/user.err" || bad "user's OPENBLAS_CORETYPE"
if [ "$(kernels "$tmp/user.err")" = Prescott ] &&
   grep -q "OPENBLAS_CORETYPE=Prescott (set by you) runs Prescott kernels, older than this .* CPU supports" "$tmp/user.err"; then
  ok "a user's OPENBLAS_CORETYPE wins, with a warning that it is older than the CPU"
else bad "user's choice: $(grep -i 'backend\|openblas' "$tmp/user.err")"; fi
exit $fail
