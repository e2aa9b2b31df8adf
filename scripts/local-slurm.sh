#!/usr/bin/env bash
# A single-node Slurm (munged + slurmctld + slurmd) on this machine, for trying slurm/ntkscape.sbatch
# and for CI (scripts/slurm-ci-check.sh):
#
#   apt-get install -y slurm-wlm munge        # Debian 12: Slurm 22.05; srun's PMIx plugin comes with it
#   scripts/local-slurm.sh start              # idempotent: daemons already running are kept
#   sbatch --wait --ntasks=2 slurm/ntkscape.sbatch configs/tiny.yaml
#   scripts/local-slurm.sh stop               # stops exactly the daemons this script started
#
# Needs root (it writes /etc/slurm/slurm.conf and runs the daemons); no systemd required. The node
# gets this machine's CPUs and memory (`slurmd -C`). Every daemon this script starts has its PID
# recorded in $piddir; `stop` signals those PIDs only (never processes found by name), so a munged
# or Slurm started by someone else is left alone. Logs: /var/log/slurm/.
set -euo pipefail

piddir=/run/ntkscape-local-slurm
conf=/etc/slurm/slurm.conf

die() { echo "local-slurm: error: $*" >&2; exit 1; }

# The PID recorded for daemon $1 if that process still runs the same program, else nothing.
running_pid() {
    local file=$piddir/$1.pid pid
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
    echo "$pid"
}

# Waits up to 10 s for daemon $1 to write its own PID file $2, then records that PID in $piddir.
record_pid() {
    local name=$1 file=$2
    for _ in $(seq 100); do
        if [ -s "$file" ] && [ -d "/proc/$(cat "$file")" ]; then cp "$file" "$piddir/$name.pid"; return 0; fi
        sleep 0.1
    done
    die "$name did not start (no live PID in $file): see /var/log/slurm/$name.log"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "run as root: it writes $conf and starts the Slurm daemons"
    for program in munged slurmctld slurmd sinfo srun; do
        command -v "$program" >/dev/null || PATH=$PATH:/usr/sbin command -v "$program" >/dev/null \
            || die "$program is not installed: apt-get install -y slurm-wlm munge"
    done
    export PATH=$PATH:/usr/sbin
    mkdir -p "$piddir" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge

    # munge: the key (Debian's package creates one), then the daemon as the munge user.
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    if running_pid munged >/dev/null; then
        echo "munged already running (pid $(running_pid munged))"
    elif munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        echo "munged already running (not started by this script; left alone by stop)"
    else
        rm -f /run/munge/munged.pid
        runuser -u munge -- munged --pid-file=/run/munge/munged.pid
        record_pid munged /run/munge/munged.pid
    fi

    # The whole machine as one node: CPUs, sockets, cores and memory as slurmd sees them.
    local node
    node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*/NodeName=localhost/')
    [[ $node == NodeName=localhost*RealMemory=* ]] || die "unexpected 'slurmd -C' output: $node"
    # MpiDefault=none: slurm/ntkscape.sbatch asks for `srun --mpi=pmix` itself when `srun --mpi=list`
    # shows it (Debian's slurm-wlm-basic-plugins ships mpi_pmix.so, built against libpmix2, which
    # Open MPI already needs), and falls back to mpirun otherwise.
    cat > "$conf.new" <<CONF
ClusterName=local
SlurmctldHost=localhost
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
EnforcePartLimits=ALL
$node State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    if cmp -s "$conf.new" "$conf"; then rm "$conf.new"; else mv "$conf.new" "$conf"; fi

    if running_pid slurmctld >/dev/null; then
        echo "slurmctld already running (pid $(running_pid slurmctld))"
    else
        rm -f /run/slurmctld.pid
        slurmctld   # daemonises and writes SlurmctldPidFile
        record_pid slurmctld /run/slurmctld.pid
    fi
    if running_pid slurmd >/dev/null; then
        echo "slurmd already running (pid $(running_pid slurmd))"
    else
        rm -f /run/slurmd.pid
        slurmd -N localhost
        record_pid slurmd /run/slurmd.pid
    fi

    for _ in $(seq 100); do
        state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
        case "$state" in
        idle*|mixed*|allocated*) sinfo; return 0 ;;
        down*|drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    die "the node did not become idle within 20 s (state: ${state:-unknown}): see /var/log/slurm/slurmctld.log and slurmd.log"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        if pid=$(running_pid "$name"); then
            kill -TERM "$pid"
            for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
            if [ -d "/proc/$pid" ]; then
                echo "$name (pid $pid) did not stop within 10 s after SIGTERM; sending SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            echo "stopped $name (pid $pid)"
        fi
        rm -f "$piddir/$name.pid"
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
