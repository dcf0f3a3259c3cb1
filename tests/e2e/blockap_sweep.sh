#!/usr/bin/env bash
# blockap_sweep.sh — Block-AP (issue 16) as a sweep cell on the demo model: an rtn/blockap grid
# on 2 ranks; killed with SIGKILL while the blockap cell trains, --resume gives files identical to
# the uninterrupted run (the cell restarts from scratch); SIGTERM while it trains stops the run
# with exit 75 long before training could end (the stop flag is polled between steps), and a
# resume completes it.
# Args: $1 qsweep binary, $2 source dir, $3 shared dir.
set -u
QS=$1 SRC=$2
source "$SRC/tests/e2e/lib/common.sh"
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
source "$SRC/tests/e2e/lib/small_data.sh"
small_data "$QS" "$SRC" "$tmp" || { echo "FAIL: test data"; exit 1; }
sed -i 's/^method .*/method     = rtn, blockap/; s/^bits .*/bits       = 2/; s/^n-calib .*/n-calib    = 4/; s/^seq-len .*/seq-len    = 64/' "$tmp/job.ini"
sed 's/^\[eval\]/epochs = 400\n[eval]/' "$tmp/job.ini" >"$tmp/long.ini"  # training that would take minutes
sed -i 's/^\[eval\]/epochs = 12\n[eval]/' "$tmp/job.ini"  # a few seconds of training: time to kill it mid-way
run() {  # job dir extra-args...
  local job=$1 d=$2; shift 2
  "${MPIRUN[@]}" -n 2 "$QS" run "$job" --output-dir "$d" -q "$@" >"$d.out" 2>"$d.err"
}
started_blockap() {  # dir: waits until the blockap cell (the second; a started marker goes when a cell is done) runs
  for _ in $(seq 1 600); do
    [ "$(ls -d "$1/cells/"*/ 2>/dev/null | wc -l)" -ge 2 ] && ls "$1/cells/"*/started >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
run "$tmp/job.ini" "$tmp/a" && grep -q "2 cells: 2 done" "$tmp/a.out" && ok "rtn/blockap grid on 2 ranks" || { bad "grid: $(cat "$tmp/a.err")"; exit 1; }

# SIGKILL while the blockap cell trains, then --resume: identical to the uninterrupted run.
run "$tmp/job.ini" "$tmp/k" & pid=$!
started_blockap "$tmp/k" || bad "the blockap cell never started"
sleep 1
pkill -9 -f "run $tmp/job.ini --output-dir $tmp/k" ; pkill -9 -P $pid mpirun 2>/dev/null; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
sleep 0.5
[ -e "$tmp/k/sweep.h5" ] && bad "the killed run finished before the kill (make the cell longer)"
run "$tmp/job.ini" "$tmp/k" --resume; rc=$?
if [ $rc -eq 0 ] && "$QS" diff "$tmp/a" "$tmp/k" >"$tmp/diff.out"; then ok "SIGKILL during training + --resume == uninterrupted"
else bad "resume after SIGKILL (rc $rc)"; cat "$tmp/k.err" "$tmp/diff.out"; fi

# SIGTERM while a 400-epoch cell trains: exit 75 within seconds; resume completes it.
"$QS" run "$tmp/long.ini" --output-dir "$tmp/t" -q >"$tmp/t.out" 2>"$tmp/t.err" & pid=$!
started_blockap "$tmp/t" || bad "the long blockap cell never started"
sleep 1
t0=$(date +%s.%N)
kill -TERM $pid
wait $pid; rc=$?
dt=$(echo "$(date +%s.%N) - $t0" | bc)
if [ $rc -eq 75 ] && grep -q "stopped by signal 15" "$tmp/t.err" && [ "$(echo "$dt < 30" | bc)" = 1 ]; then
  ok "SIGTERM during training: exit 75 after ${dt:0:4} s (400 epochs would take minutes)"
else bad "SIGTERM during training: rc $rc after $dt s"; cat "$tmp/t.err"; fi
"$QS" status "$tmp/t" 2>/dev/null | grep -q "1 done" && ok "status after SIGTERM: the rtn cell done, blockap not" || bad "status after SIGTERM: $("$QS" status "$tmp/t" 2>&1 | tail -2)"
exit $fail
