#!/usr/bin/env bash
# Placement quality and speed: replays lublin_256 (1,024-job windows at
# fixed offsets and the whole trace) per policy, and the generated GPU
# workload (ours against first fit), through `hpcd simulate`, printing the
# markdown tables of docs/benchmarks.md. Run from the repository root.
set -euo pipefail
trace=${TRACE:-../shared/traces/lublin_256.swf}
hpcd=${HPCD:-bin/hpcd}
[ -x "$hpcd" ] || go build -o bin/ ./cmd/...

echo "| policy | jobs | avg bounded slowdown | avg wait (s) | max wait (s) | utilization | makespan (s) | wall (s) |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
for policy in fcfs easy conservative; do
  for from in 0 2048 4096 6144 8192 whole; do
    if [ "$from" = whole ]; then args=(); label="whole trace"; else args=(--from "$from" --jobs 1024); label="$from..$((from + 1023))"; fi
    "$hpcd" simulate --trace "$trace" --policy "$policy" "${args[@]}" --json |
      jq -r --arg p "$policy" --arg l "$label" \
        '"| \($p) | \($l) | \(.avg_bounded_slowdown*10|round/10) | \(.avg_wait_s|round) | \(.max_wait_s|round) | \(.utilization*1000|round/1000) | \(.makespan_s|round) | \(.wall_s*10|round/10) |"'
  done
done
echo
echo "| seed | placer | avg bounded slowdown | avg wait (s) | avg wait, 8 GPUs/node (s) | GPU utilization | on best interconnect | CPU jobs on GPU nodes | wall (s) |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
for seed in 1 2 3; do
  for placer in ours first-fit; do
    flag=(); [ "$placer" = first-fit ] && flag=(--first-fit)
    "$hpcd" simulate --gpu-workload --seed "$seed" "${flag[@]}" --json |
      jq -r --arg s "$seed" --arg p "$placer" \
        '"| \($s) | \($p) | \(.avg_bounded_slowdown*100|round/100) | \(.avg_wait_s|round) | \(.avg_wait_by_gpus_s["8"]|round) | \(.gpu_utilization*1000|round/1000) | \(.best_link_share*1000|round/10)% | \(.cpu_jobs_on_gpu_nodes*1000|round/10)% | \(.wall_s*100|round/100) |"'
  done
done
