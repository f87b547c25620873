#!/usr/bin/env bash
# GPU smoke test of a one-machine cluster on a host with an NVIDIA GPU:
# inventory through NVML, a 1-GPU job that sees and opens only its GPU, and a
# CPU job that cannot open any GPU device. Run from the repository root with
# bin/ built (go build -o bin/ ./cmd/...); writes its findings to ${OUT:-/tmp/gpu-smoke}.
set -u
root=$(pwd)
out=${OUT:-/tmp/gpu-smoke}
mkdir -p "$out"
work=$(mktemp -d)
chmod 0777 "$work"
# The socket lives apart: hpcd and hpcsub refuse a socket in a directory
# every user may write to.
run=$(mktemp -d)
export HPC_ADDR="unix://$run/hpcd.sock"
nvidia-smi -L > "$out/nvidia-smi.txt" 2>&1
bin/hpcd dev --data-dir "$work/data" --listen "$run/hpcd.sock" > "$out/hpcd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do bin/hpcsub nodes >/dev/null 2>&1 && break; sleep 0.2; done
bin/hpcsub nodes > "$out/nodes.txt" 2>&1
bin/hpcsub nodes --json > "$out/nodes.json" 2>&1
probe='echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"
for d in /dev/nvidia[0-9]*; do if (exec 3<"$d") 2>/dev/null; then echo "$d: open ok"; else echo "$d: open denied"; fi; done
nvidia-smi -L 2>&1 | head -3'
for kind in gpu cpu; do
  gpu=""
  [ "$kind" = gpu ] && gpu='gpu {
      count = 1
      link  = "any"
    }'
  cat > "$work/$kind.hcl" <<HCL
job "$kind-probe" {
  walltime = "2m"
  resources {
    cpus = 1
    $gpu
  }
  task {
    script = <<-EOT
$probe
    EOT
  }
}
HCL
  (cd "$work" && "$root/bin/hpcsub" submit --wait "$kind.hcl") > "$out/$kind-submit.txt" 2>&1
  id=$(head -1 "$out/$kind-submit.txt")
  bin/hpcsub show --json "$id" > "$out/$kind-show.json" 2>&1
  cp "$work/hpc-$id.out" "$out/$kind-job.out" 2>/dev/null
  cp "$work/hpc-$id.err" "$out/$kind-job.err" 2>/dev/null
done
kill -TERM $pid; wait $pid
cat "$out"/nvidia-smi.txt "$out"/nodes.txt "$out"/gpu-job.out "$out"/cpu-job.out
