# common.sh — what every e2e script shares: the mpirun command line for real ranks on this host
# (as root, oversubscribed, without the single-copy mechanism containers refuse), and the
# PASS/FAIL reporting (`ok NAME`, `bad NAME` sets fail=1; the script exits $fail).
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
fail=0
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; fail=1; }
# token_cache_in DIR: a token cache of this test's own (DIR/token-cache, gone with DIR), for the
# scripts that tokenize the same 3.7 MB calibration text in many runs (CTest sets
# QSWEEP_TOKEN_CACHE=off, so that a test that must tokenize does).
token_cache_in() { export QSWEEP_TOKEN_CACHE="$1/token-cache"; }
