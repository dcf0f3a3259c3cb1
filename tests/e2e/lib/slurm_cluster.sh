# slurm_cluster.sh — a throwaway one-node Slurm cluster for end-to-end tests. Source it, then:
#   slurm_install        apt-get install slurmctld/slurmd/slurm-client/munge/libpmix-dev if missing
#   slurm_up WORKDIR     write WORKDIR/etc/slurm.conf, start munged, slurmctld and slurmd as root,
#                        export SLURM_CONF, wait until `sinfo` shows the node idle (60 s at most);
#                        first stops what an earlier slurm_up left running (same or last WORKDIR)
#   slurm_down [WORKDIR] cancel our jobs, stop exactly the daemons slurm_up started (pid files in
#                        WORKDIR/run, checked by process name); call it before removing WORKDIR
# Debian 12 (Slurm 22.05, Open MPI 4.1, PMIx 4), run as root, no systemd: plain daemons.
# Nothing is written under /etc: the daemons get -f, clients find the cluster through SLURM_CONF
# (slurmd also sets it in every job), and munged runs on its own key and socket
# (AuthInfo=socket=...), so a system munged is left alone. Ports 6817/6818 (SLURM_CTLD_PORT,
# SLURM_D_PORT) must be free. srun --mpi=pmix dlopens .../pmix2/lib/libpmix.so from libpmix-dev.
# cred_expire=10 makes a requeued job eligible again after ~11 s (default 120 s). No slurmdbd:
# sacct does not work; poll `squeue -h -j ID` until empty, then `scontrol show job ID`
# (JobState=, Restarts=, ExitCode=; kept MinJobAge=600 s after the end).

SLURM_CLUSTER_LAST=${SLURM_CLUSTER_LAST:-/tmp/slurm_cluster.last}  # WORKDIR of the last slurm_up

slurm_install() {
  local pkgs=(slurmctld slurmd slurm-client munge libpmix-dev) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "slurm_install: installing ${missing[*]}"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive \
          apt-get install -y --no-install-recommends "${missing[@]}"; }; } >/dev/null ||
      { echo "slurm_install: cannot install ${missing[*]}" >&2; return 1; }
  fi
  [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] ||
    { echo "slurm_install: Slurm has no mpi/pmix plugin" >&2; return 1; }
}

_slurm_pid() {  # print the pid in WORKDIR $1/run/$2.pid if it is a live (not zombie) process named $2
  local pid comm state
  pid=$(cat "$1/run/$2.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
  read -r _ comm state _ 2>/dev/null <"/proc/$pid/stat" || return 1
  [ "$comm" = "($2)" ] && [ "$state" != Z ] && echo "$pid"
}

_slurm_any_alive() {  # any of our daemons of WORKDIR $1 still running?
  local d; for d in slurmd slurmctld munged; do _slurm_pid "$1" $d >/dev/null && return 0; done
  return 1
}

slurm_down() {
  local w=${1:-${SLURM_CLUSTER_DIR:-$(cat "$SLURM_CLUSTER_LAST" 2>/dev/null)}} d i
  [ -n "$w" ] && [ -d "$w/run" ] || return 0
  if _slurm_pid "$w" slurmctld >/dev/null; then  # cancel our jobs first, so no job step outlives us
    local -x SLURM_CONF=$w/etc/slurm.conf
    scancel --quiet --user=root 2>/dev/null
    for i in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  local pids=() pid
  for d in slurmd slurmctld munged; do pid=$(_slurm_pid "$w" $d) && pids+=("$pid"); done
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null
    for i in $(seq 100); do _slurm_any_alive "$w" || break; sleep 0.1; done
    for d in slurmd slurmctld munged; do pid=$(_slurm_pid "$w" $d) && kill -9 "$pid"; done
  fi
  rm -f "$w"/run/*.pid
}

slurm_up() {
  local w=${1:?usage: slurm_up WORKDIR} host node i st
  mkdir -p "$w" && w=$(cd "$w" && pwd) || return 1
  # Leftovers: daemons of the previous slurm_up (this WORKDIR or the last one recorded).
  slurm_down "$w"; slurm_down "$(cat "$SLURM_CLUSTER_LAST" 2>/dev/null)"
  local cport=${SLURM_CTLD_PORT:-6817} dport=${SLURM_D_PORT:-6818}
  for i in $cport $dport; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$i") 2>/dev/null; then
      echo "slurm_up: port $i is taken by a daemon slurm_up did not start (pgrep -a slurm)" >&2
      return 1
    fi
  done
  rm -rf "$w/state" "$w/spool" "$w/log"
  mkdir -p "$w/etc" "$w/run" "$w/state" "$w/spool" "$w/log" "$w/munge" || return 1
  echo "$w" >"$SLURM_CLUSTER_LAST"

  # munged (as root, --force) on a key made once per WORKDIR; it wants the key owner-only.
  chmod 0755 "$w/munge"
  [ -s "$w/munge/munge.key" ] || mungekey --create --keyfile="$w/munge/munge.key" || return 1
  chmod 0400 "$w/munge/munge.key"
  munged --force --socket="$w/munge/munge.socket" --key-file="$w/munge/munge.key" \
    --pid-file="$w/run/munged.pid" --log-file="$w/log/munged.log" \
    --seed-file="$w/munge/munged.seed" ||
    { echo "slurm_up: munged failed, see $w/log/munged.log" >&2; return 1; }

  host=$(hostname -s)
  node=$(slurmd -C | head -n1)  # NodeName=<host> CPUs=... RealMemory=...
  cat >"$w/etc/slurm.conf" <<EOF
ClusterName=e2e
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$w/munge/munge.socket,cred_expire=10
StateSaveLocation=$w/state
SlurmdSpoolDir=$w/spool
SlurmctldPidFile=$w/run/slurmctld.pid
SlurmdPidFile=$w/run/slurmd.pid
SlurmctldLogFile=$w/log/slurmctld.log
SlurmdLogFile=$w/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobRequeue=1
ReturnToService=2
MinJobAge=600
KillWait=5
SchedulerParameters=sched_interval=1,bf_interval=1
InactiveLimit=0
MailProg=/bin/true
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$w/etc/slurm.conf SLURM_CLUSTER_DIR=$w
  slurmctld -c -f "$SLURM_CONF" ||
    { echo "slurm_up: slurmctld failed, see $w/log/slurmctld.log" >&2; return 1; }
  slurmd -c -f "$SLURM_CONF" ||
    { echo "slurm_up: slurmd failed, see $w/log/slurmd.log" >&2; return 1; }
  for i in $(seq 120); do
    st=$(sinfo -h -n "$host" -o %t 2>/dev/null) || true
    [ "$st" = idle ] && return 0
    sleep 0.5
  done
  echo "slurm_up: node $host is '${st:-?}', not idle, after 60 s; logs in $w/log" >&2
  tail -n 20 "$w/log/slurmctld.log" "$w/log/slurmd.log" >&2
  return 1
}
