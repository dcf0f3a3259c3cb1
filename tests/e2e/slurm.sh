#!/usr/bin/env bash
# slurm.sh — qsweep under a real Slurm: starts munge, slurmctld and slurmd on this host
# (tests/e2e/lib/slurm_cluster.sh), submits a small sweep with `qsweep submit` (2 ranks, srun
# --mpi=pmix), sends the batch shell its warning signal (USR1) once while a cell runs, and checks
# that the job exits 75, requeues itself, resumes, completes, and leaves a sweep.h5 identical to
# a local `mpirun -n 2` run. Then the same sweep as a 2-task job array (cells dealt to the tasks,
# merged by the last one), and a mis-launched job (world smaller than the allocation) that must
# stop with a clear error.
# Stops the daemons it started. Exit 77 (skip) only where slurm-wlm cannot be installed.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
source "$SRC/tests/e2e/lib/slurm_cluster.sh"
if ! out=$(slurm_install 2>&1); then
  echo "SKIP: slurm-wlm cannot be installed here: $out"
  exit 77
fi
tmp=$(mktemp -d)
cleanup() { slurm_down "$tmp/slurm" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; fail=1; }
slurm_up "$tmp/slurm" || { echo "FAIL: could not start the Slurm daemons"; exit 1; }
ok "slurmctld + slurmd + munged up ($(sinfo -h -o '%P %D %c %t'))"

source "$SRC/tests/e2e/lib/small_data.sh"
small_data "$QS" "$SRC" "$tmp" || { echo "FAIL: test data"; exit 1; }

# The reference: a local mpirun -n 2 run (outside Slurm).
("${MPIRUN[@]}" -n 2 "$QS" run "$tmp/job.ini" --output-dir "$tmp/local" -q >/dev/null 2>"$tmp/local.err") ||
  { bad "local reference run"; cat "$tmp/local.err"; }

wait_done() {  # job-id timeout-s: poll until the job (or array) has left the queue
  local i
  for i in $(seq $(($2 * 2))); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  return 1
}

# 1. Submit, signal once while a cell runs, requeue, resume, finish.
sub=$("$QS" submit "$tmp/job.ini" --nodes 1 --ntasks-per-node 2 --time 00:10:00 --output-dir "$tmp/slurm-run" 2>&1)
jid=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' <<<"$sub")
if [ -n "$jid" ] && [ -s "$tmp/slurm-run/qsweep.sbatch" ] && grep -q '^#SBATCH --ntasks-per-node=2' "$tmp/slurm-run/qsweep.sbatch"; then
  ok "qsweep submit wrote qsweep.sbatch and submitted job $jid"
else bad "qsweep submit: $sub"; fi
signalled=0
for _ in $(seq 600); do
  if ls "$tmp/slurm-run/cells/"*/started >/dev/null 2>&1 || ls "$tmp/slurm-run/cells/"*/cell.h5 >/dev/null 2>&1; then
    sleep 1
    scancel -b -s USR1 "$jid" && signalled=1
    break
  fi
  sleep 0.1
done
[ $signalled -eq 1 ] && ok "sent USR1 to the batch shell of job $jid while a cell ran" || bad "job $jid never started a cell"
wait_done "$jid" 300 || bad "job $jid still in the queue after 300 s"
info=$(scontrol show job "$jid" 2>&1)
log="$tmp/slurm-run/slurm-$jid.out"
if grep -q "JobState=COMPLETED" <<<"$info" && grep -q "Restarts=1" <<<"$info" && grep -q "exited with 75" "$log" &&
   grep -q "requeueing $jid" "$log" && grep -q "restart 1" "$log"; then
  ok "job exited 75 on the signal, requeued itself, resumed and completed (Restarts=1)"
else bad "requeue cycle"; grep -o "JobState=[A-Z_]* .*Restarts=[0-9]*" <<<"$info"; cat "$log"; fi
if "$QS" diff "$tmp/local" "$tmp/slurm-run" >"$tmp/diff.out"; then ok "sweep.h5 after signal + requeue == local mpirun -n 2 (qsweep diff)"
else bad "Slurm sweep differs from local"; cat "$tmp/diff.out"; fi

# 2. A 2-task array: cells dealt to the tasks, the last one merges.
sub=$("$QS" submit "$tmp/job.ini" --nodes 1 --ntasks-per-node 1 --array 2 --time 00:10:00 --output-dir "$tmp/array-run" 2>&1)
ajid=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' <<<"$sub")
[ -n "$ajid" ] || bad "array submit: $sub"
wait_done "$ajid" 300 || bad "array job $ajid still in the queue after 300 s"
if "$QS" diff "$tmp/local" "$tmp/array-run" >"$tmp/diff.out"; then ok "2-task array: merged sweep.h5 == local run"
else bad "array sweep differs or is missing"; cat "$tmp/diff.out" "$tmp/array-run/"slurm-*.out; fi

# 3. --dry-run writes the script and submits nothing; a mis-launched step stops with a clear error.
out=$("$QS" submit "$tmp/job.ini" --nodes 2 --ntasks-per-node 4 --gpus-per-task 1 --partition gpu --array 3 --dry-run --output-dir "$tmp/dry" 2>&1)
if grep -q "dry run: not submitted" <<<"$out" && grep -q '^#SBATCH --gpus-per-task=1' "$tmp/dry/qsweep.sbatch" &&
   grep -q '^#SBATCH --array=0-2' "$tmp/dry/qsweep.sbatch" && grep -q '^#SBATCH --partition=gpu' "$tmp/dry/qsweep.sbatch" &&
   grep -q '^#SBATCH --signal=B:USR1@120' "$tmp/dry/qsweep.sbatch" && bash -n "$tmp/dry/qsweep.sbatch"; then
  ok "submit --dry-run: GPU template with nodes, gpus, partition, array filled in"
else bad "submit --dry-run: $out"; fi
# A world smaller than the allocation (mpirun -n 1 in a 2-task job) would run the sweep as
# several rank-0 copies: qsweep refuses before any work.
mis=$(sbatch --parsable -n 2 -o "$tmp/mis.out" --wrap "mpirun --allow-run-as-root -n 1 '$QS' run '$tmp/job.ini' --output-dir '$tmp/mis'; echo rc=\$?")
wait_done "$mis" 60
if grep -q "Slurm started 2 tasks but this MPI world has 1 rank" "$tmp/mis.out" && grep -q "rc=1" "$tmp/mis.out" && [ ! -e "$tmp/mis" ]; then
  ok "mpirun -n 1 in a 2-task allocation: clear error, non-zero exit, no output"
else bad "mis-launch not caught"; cat "$tmp/mis.out"; fi
exit $fail
