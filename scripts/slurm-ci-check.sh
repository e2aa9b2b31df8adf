#!/usr/bin/env bash
# End-to-end check of slurm/ntkscape.sbatch on a local single-node Slurm (CI runs it after the test
# suite; needs root, `apt-get install slurm-wlm munge` and a release build). Three runs of
# configs/tiny.yaml on 2 ranks:
#   1. direct:  mpirun -np 2 ntkscape run configs/tiny.yaml
#   2. slurm:   sbatch --wait --ntasks=2 slurm/ntkscape.sbatch configs/tiny.yaml
#   3. requeue: the same job sent SIGUSR1 (`scancel --signal=USR1 --batch`, what --signal does
#               before the time limit) while its ranks train: the ranks save their state and stop
#               (status 75), the batch script requeues the job, and the restarted job finishes.
# Every file in each run's tables/ must be byte-identical to the direct run's (no table holds a
# wall-clock time: timings live in manifest.json and the logs, which are not compared).
# The local Slurm is started with scripts/local-slurm.sh and stopped again (by PID) at the end.
#
#   scripts/slurm-ci-check.sh [WORK_DIR]     # default: a new directory under /tmp
# The binary: $NTKSCAPE, else .build/release/ntkscape.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${NTKSCAPE:-$root/.build/release/ntkscape}
experiment=$root/configs/tiny.yaml
work=${1:-$(mktemp -d /tmp/ntkscape-slurm-check.XXXXXX)}
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

say() { echo "slurm-ci-check: $*"; }
fail() { echo "slurm-ci-check: FAILED: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "$bin is missing: run 'swift build -c release' first"

scripts/local-slurm.sh start
trap 'scripts/local-slurm.sh stop' EXIT

# The tables of run directory root $1 against the direct run's.
same_tables() {
    local a b
    a=$(echo "$work"/direct/tiny-*/tables) b=$(echo "$1"/tiny-*/tables)
    [ -d "$b" ] || fail "$1 has no tables directory"
    diff -r "$a" "$b" >/dev/null || { diff -rq "$a" "$b" >&2; fail "tables of $1 differ from the direct run's ($a)"; }
    say "$(ls "$b" | wc -l) table files of $1 are byte-identical to the direct run's"
}

# The state of job $1 (COMPLETED, FAILED, ...) and its restart count, from `scontrol show job`.
job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

say "1. direct: mpirun -np 2 ntkscape run configs/tiny.yaml"
start=$(date +%s)
mpirun -np 2 --bind-to none "$bin" run "$experiment" --runs "$work/direct" > "$work/direct.log" 2>&1 \
    || { tail -20 "$work/direct.log" >&2; fail "the direct run failed (log: $work/direct.log)"; }
say "   finished in $(( $(date +%s) - start )) s"

say "2. slurm: sbatch --wait --ntasks=2 slurm/ntkscape.sbatch configs/tiny.yaml"
start=$(date +%s)
NTKSCAPE=$bin sbatch --wait --ntasks=2 --output="$work/slurm-%j.log" "$root/slurm/ntkscape.sbatch" "$experiment" \
    --runs "$work/slurm" > "$work/sbatch.out" 2>&1 \
    || { cat "$work"/sbatch.out "$work"/slurm-*.log >&2; fail "the Slurm job failed"; }
say "   $(cat "$work/sbatch.out"); finished in $(( $(date +%s) - start )) s; $(grep -h 'launcher:' "$work"/slurm-*.log)"
same_tables "$work/slurm"

say "3. requeue: SIGUSR1 to the batch script while the ranks train"
start=$(date +%s)
job=$(NTKSCAPE=$bin sbatch --parsable --ntasks=2 --output="$work/requeue-%j.log" "$root/slurm/ntkscape.sbatch" "$experiment" \
    --runs "$work/requeue")
log=$work/requeue-$job.log
# Wait until both ranks train (the parent and a child of spawn time 0), then one more second.
for _ in $(seq 600); do
    n=$(grep -cE 'r0-(parent|s0-c[01]) starts' "$log" 2>/dev/null) || true
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.1
done
grep -qE 'r0-s0-c[01] starts' "$log" || { cat "$log" >&2; fail "job $job did not start training within 60 s"; }
sleep 1
scancel --signal=USR1 --batch "$job"
signalled=$(date +%s)
# The job stops, requeues, runs again and completes; at most 10 minutes.
state=""
for _ in $(seq 600); do
    state=$(job_field "$job" JobState)
    case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) break ;; esac
    sleep 1
done
restarts=$(job_field "$job" Restarts)
cat "$log"
[ "$state" = COMPLETED ] || fail "job $job ended in state ${state:-unknown} (log: $log)"
[ "${restarts:-0}" -ge 1 ] || fail "job $job was not requeued (Restarts=${restarts:-?})"
grep -q 'stopped on request in task' "$log" || fail "no rank reported a stop with its training state saved"
stop_line=$(grep -m1 'stopped by SIGUSR1' "$log") || fail "no 'stopped by SIGUSR1' summary in $log"
grep -q 'requeueing job' "$log" || fail "the batch script did not requeue the job"
grep -q "(restart 1)" "$log" || fail "the requeued job did not start again"
say "   job $job: stopped, requeued (Restarts=$restarts) and completed $(( $(date +%s) - signalled )) s after the signal" \
    "($(( $(date +%s) - start )) s in all)"
same_tables "$work/requeue"
say "passed (work directory: $work)"
