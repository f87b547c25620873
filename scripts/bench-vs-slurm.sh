#!/usr/bin/env bash
# Throughput of hpc and of Slurm 22.05, side by side in one run on this
# machine (issue 10's aims). Starts the peer Slurm cluster of
# ../shared/peers/slurm, measures it, stops it, then runs hpc's
# benchmarks on the same work. Run from the repository root as root.
#
#   N_ARRAY=2000 N_SERIAL=500 N_CONC=2000 scripts/bench-vs-slurm.sh
set -euo pipefail
N_ARRAY=${N_ARRAY:-2000}; N_SERIAL=${N_SERIAL:-500}; N_CONC=${N_CONC:-2000}
PEER=${PEER:-$(cd "$(dirname "$0")/../.." && pwd)/shared/peers/slurm}
[ -d "$PEER" ] || PEER=/work/shared/peers/slurm
now() { date +%s.%N; }
calc() { awk "BEGIN{printf \"%.2f\\n\", $*}"; }
active() { squeue -h -t PD,R,CG,CF,S -o %i | wc -l; }
wait_idle() { while [ "$(active)" != 0 ]; do sleep 0.1; done; }
SB="sbatch --parsable -o /dev/null"

"$PEER/setup.sh" >/tmp/bench-vs-slurm.setup.log 2>&1
trap '"$PEER/stop.sh" >/dev/null 2>&1 || true' EXIT
until [ "$(sinfo -h -N -t idle -o %N | wc -l)" = "$(sinfo -h -N -o %N | wc -l)" ]; do sleep 0.2; done
wait_idle
echo "== Slurm 22.05 (4 slurmd on loopback)"
t0=$(now); for _ in $(seq "$N_SERIAL"); do $SB --wrap true >/dev/null; done; t1=$(now); wait_idle; t2=$(now)
echo "slurm serial sbatch x$N_SERIAL: submits/s $(calc "$N_SERIAL / ($t1 - $t0)"), all done in $(calc "$t2 - $t0") s"
t0=$(now); $SB --array=0-$((N_ARRAY - 1)) --wrap true >/dev/null; t1=$(now); wait_idle; t2=$(now)
echo "slurm array of $N_ARRAY: submit $(calc "($t1 - $t0) * 1000") ms, drain $(calc "$N_ARRAY / ($t2 - $t0)") jobs/s"
t0=$(now); seq "$N_CONC" | xargs -P 8 -I{} $SB --hold --wrap true >/dev/null; t1=$(now)
echo "slurm 8 concurrent sbatch --hold x$N_CONC: $(calc "$N_CONC / ($t1 - $t0)") submits/s"
scancel --state=PENDING --partition=main; wait_idle
"$PEER/stop.sh" >/dev/null 2>&1; trap - EXIT

echo "== hpc (hpcd dev, cgroup isolation)"
HPC_BENCH_ARRAY=$N_ARRAY HPC_BENCH_SERIAL=$N_SERIAL go test -run XXX -timeout 30m \
  -bench 'SerialSubmit|ArrayDrain|ConcurrentSubmits' -benchtime 1x ./e2e/ | grep -E '^Benchmark'
