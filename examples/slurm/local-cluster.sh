#!/usr/bin/env bash
# A single-node Slurm on this machine, for trying the recipes end to end: Debian's slurm-wlm and
# munge, as root, no systemd. Usage:
#
#   examples/slurm/local-cluster.sh up      # install (apt) if needed, configure, start
#   examples/slurm/local-cluster.sh demo    # the recipe's two arrays against the simulator
#   examples/slurm/local-cluster.sh down    # stop the daemons
#
# `demo` runs examples/slurm/submit.sh on a copy of the demo manifest (base_url = "simulator"):
# a fetch array, then a clip array chained with afterok, and waits for both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state=/tmp/onc-pipe-slurm
conf=/etc/slurm/slurm.conf

up() {
  if ! command -v slurmctld >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  mkdir -p "$state"/{ctld,d} /etc/slurm /run/munge /var/log/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /run/munge /var/log/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- munged --force
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))"
  cat > "$conf" <<EOF
ClusterName=onc-pipe-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 1 50); do
    if timeout 2 sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then
      echo "slurm is up: $(sinfo -h -o '%P %D %T')"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm did not come up; see $state/*.log" >&2
  return 1
}

down() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  # Wait for them to go: an `up` that finds a controller still shutting down would wait on it.
  for _ in $(seq 1 100); do
    if ! pgrep -x slurmd >/dev/null && ! pgrep -x slurmctld >/dev/null && ! pgrep -x munged >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  for daemon in slurmd slurmctld munged; do pkill -9 -x "$daemon" 2>/dev/null || true; done
}

demo() {
  local work
  work="$(mktemp -d /tmp/onc-pipe-slurm-demo.XXXXXX)"
  cp "$repo/manifests/demo.toml" "$work/m.toml"
  cd "$work"
  export ONC_PIPE="${ONC_PIPE:-$repo/target/debug/onc-pipe}" MANIFEST="$work/m.toml" ONC_TOKEN=simulated
  export ONC_PIPE_CACHE="$work/cache"
  # One small node: the recipes ask for 4 CPUs and 4G per clip task; here each task gets one
  # CPU (command-line options override the scripts' #SBATCH lines).
  printf '#!/bin/sh\nexec sbatch --cpus-per-task=1 --mem=400M "$@"\n' > "$work/sbatch-local"
  chmod +x "$work/sbatch-local"
  export SBATCH="$work/sbatch-local"
  local out
  out="$(bash "$here/submit.sh")"
  echo "$out"
  local jobs
  jobs="$(echo "$out" | grep -oE '[0-9]+' | tr '\n' ',' | sed 's/,$//')"
  for _ in $(seq 1 600); do
    if [ -z "$(squeue -h -j "$jobs" 2>/dev/null)" ]; then break; fi
    sleep 0.5
  done
  sacct -n -X -j "$jobs" -o JobID,State,ExitCode 2>/dev/null || true
  local failed
  failed="$(grep -l '^onc-pipe: ' "$work"/onc-*.log 2>/dev/null || true)"
  local cut
  cut="$(cat "$work"/onc-clip-*.log 2>/dev/null | awk '/^clips: / {n += $2} END {print n + 0}')"
  echo "clips cut by the clip array: $cut (run records in $work/cache/runs)"
  [ "$cut" -gt 0 ] || { echo "the clip array cut nothing" >&2; return 1; }
  [ -z "$failed" ] || { echo "errors in: $failed" >&2; return 1; }
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  demo) demo ;;
  *) echo "usage: $0 up|demo|down" >&2; exit 2 ;;
esac
