#!/usr/bin/env bash
# Starts a single-node Slurm (slurmctld + slurmd + munged) on this machine for trying the sbatch
# script: `apt-get install slurm-wlm munge`, then `scripts/local-slurm.sh start`, then e.g.
# `sbatch --wait --ntasks=2 slurm/ntkscape.sbatch configs/quick.yaml`; `scripts/local-slurm.sh stop`.
# Needs root (it writes /etc/slurm and /etc/munge); no systemd required.
set -euo pipefail
cpus=$(nproc)
case "${1:-start}" in
start)
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=localhost
AuthType=auth/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
EnforcePartLimits=ALL
NodeName=localhost CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    pgrep -x slurmctld >/dev/null || (slurmctld -D >/var/log/slurm/slurmctld.out 2>&1 &)
    pgrep -x slurmd >/dev/null || (slurmd -D -N localhost >/var/log/slurm/slurmd.out 2>&1 &)
    for _ in $(seq 50); do sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed' && { sinfo; exit 0; }; sleep 0.2; done
    echo "Slurm did not come up; see /var/log/slurm/" >&2; exit 1 ;;
stop)
    pkill -x slurmd || true; pkill -x slurmctld || true ;;
*)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
