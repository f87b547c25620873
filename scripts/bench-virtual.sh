#!/bin/bash
# The cluster benchmark with real processes: `hpcd server` and one
# `hpcd agent --virtual 1000 --node-class docs/examples/cluster.hcl`
# (1,000 virtual nodes over HTTPS, one certificate each). Every node is
# filled with one long job, N short jobs (default 100,000; 1 s each, 70 %
# 32-CPU, 25 % one GPU, 5 % eight NVLink GPUs) are queued as arrays of
# 1,000 with `hpcsub submit`, and it reports the server's RSS with all of
# them pending and `hpcsub queue` times; then the long jobs are cancelled
# and it reports the jobs/s until the queue is empty.
# Usage: scripts/bench-virtual.sh [N]   (run from the repository root)
set -euo pipefail
N=${1:-100000}
go build -o bin/ ./cmd/...
tmp=$(mktemp -d /tmp/hpc-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
bin/hpcd server --data-dir "$tmp/server" --listen "unix://$tmp/s" --listen "https://127.0.0.1:$port" --log-level warn \
  --max-queued-per-user -1 --max-running-per-user -1 2>"$tmp/server.log" &
server=$!; pids+=("$server")
for _ in $(seq 300); do [ -f "$tmp/server/agent-join" ] && break; sleep 0.1; done
bin/hpcd agent --join "$tmp/server/agent-join" --data-dir "$tmp/agent" --virtual 1000 \
  --node-class docs/examples/cluster.hcl --log-level warn 2>"$tmp/agent.log" &
pids+=("$!")
export HPC_ADDR="unix://$tmp/s"
# Jobs in the given states: the server counts them (a few bytes), where a
# --json list of 100,000 jobs would itself load the server being measured.
count() { bin/hpcsub queue --count --state "$1" --json | awk -F: '/"/ { n += $2 } END { print n + 0 }'; }
for _ in $(seq 600); do
  [ "$(bin/hpcsub nodes --json 2>/dev/null | grep -c '"state": "IDLE"' || true)" = 1000 ] && break; sleep 0.2
done
echo "nodes: $(bin/hpcsub nodes --json | grep -c '"state": "IDLE"') idle"
job() { # name runtime extra
  printf 'job "%s" {\n  walltime = "2h"\n%s\n  task {\n    command = "/bin/true"\n    env     = { HPC_VIRTUAL_RUNTIME = "%s" }\n  }\n}\n' "$1" "$3" "$2"
}
cd "$tmp"
job fill-a100 3600 '  features = ["a100"]
  resources { cpus = 256 }
  array { count = 100 }' > fill-a100.hcl
job fill-l4 3600 '  features = ["l4"]
  resources { cpus = 64 }
  array { count = 300 }' > fill-l4.hcl
job fill-cpu 3600 '  features = ["cpu"]
  resources { cpus = 128 }
  array { count = 600 }' > fill-cpu.hcl
job cpu32 1 '  resources {
    cpus   = 32
    memory = "64GiB"
  }
  array { count = 700 }' > cpu32.hcl
job gpu1 1 '  resources {
    cpus = 4
    gpu { count = 1 }
  }
  array { count = 250 }' > gpu1.hcl
job nvl8 1 '  resources {
    cpus = 16
    gpu {
      count = 8
      link  = "nvlink"
    }
  }
  array { count = 50 }' > nvl8.hcl
cd - >/dev/null
for f in fill-a100 fill-l4 fill-cpu; do bin/hpcsub submit "$tmp/$f.hcl" >/dev/null; done
for _ in $(seq 600); do [ "$(count RUNNING)" = 1000 ] && break; sleep 0.2; done
echo "long jobs running: $(count RUNNING)"
t0=$(date +%s.%N)
for _ in $(seq $((N / 1000))); do
  for f in cpu32 gpu1 nvl8; do bin/hpcsub submit "$tmp/$f.hcl" >/dev/null; done
done
t1=$(date +%s.%N)
echo "queued $N jobs in $((N / 1000 * 3)) array submits: $(echo "$t1 - $t0" | bc) s"
sleep 5 # a few scheduling passes over the whole queue
echo "pending: $(count PENDING)"
grep -E 'VmRSS|VmHWM' "/proc/$server/status" | sed 's/^/server /'
for _ in 1 2 3; do
  /usr/bin/time -f "hpcsub queue: %e s wall, %U s user, %S s sys" bin/hpcsub queue >/dev/null
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
t2=$(date +%s.%N)
bin/hpcsub cancel --state RUNNING --user root >/dev/null
while [ "$(count PENDING,RUNNING)" != 0 ]; do sleep 0.2; done
t3=$(date +%s.%N)
echo "ran $N jobs in $(echo "$t3 - $t2" | bc) s: $(echo "$N / ($t3 - $t2)" | bc) jobs/s (counts polled every 0.2 s)"
grep -E 'VmHWM' "/proc/$server/status" | sed 's/^/server peak /'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
