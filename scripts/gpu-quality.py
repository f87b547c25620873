#!/usr/bin/env python3
"""Placement quality on generated heterogeneous GPU workloads (issue 11 item 5).

Runs `hpcd simulate --gpu-workload` for every seed, mix and ranking and prints, per mix, a
markdown table of mean bounded slowdown / GPU utilisation / mean fragmented GPUs, and whether
the first ranking (the default) is at least as good as every other on both bounded slowdown
and GPU utilisation for that seed against each baseline (first fit and best fit).

    go build -o bin/hpcd ./cmd/hpcd
    python3 scripts/gpu-quality.py                      # seeds 1-10, both mixes
    python3 scripts/gpu-quality.py --seeds 1-20 --rankings default,packing,first-fit,best-fit

Every run is a separate, deterministic `hpcd simulate` process: anyone can rerun one cell.
"""
import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

MIXES = {
    "classic": [],
    "sharing": ["--share-jobs", "0.3", "--model-jobs", "0.2"],
}


def seeds_of(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def run(hpcd, seed, mix, ranking, policy):
    cmd = [hpcd, "simulate", "--gpu-workload", "--seed", str(seed), "--ranking", ranking,
           "--policy", policy, "--json"] + MIXES[mix]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("gpu-quality: %s: %s" % (" ".join(cmd), res.stderr.strip()))
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hpcd", default="bin/hpcd")
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--mixes", default="classic,sharing")
    ap.add_argument("--rankings", default="default,first-fit,best-fit",
                    help="the first is compared against the baselines")
    ap.add_argument("--baselines", default="first-fit,best-fit")
    ap.add_argument("--policy", default="easy")
    ap.add_argument("--jobs", type=int, default=2, help="parallel simulations")
    ap.add_argument("--curve", action="store_true", help="also print the fragmentation curves of the first seed")
    a = ap.parse_args()
    seeds = seeds_of(a.seeds)
    mixes = a.mixes.split(",")
    ranks = a.rankings.split(",")
    bases = [b for b in a.baselines.split(",") if b in ranks[1:]]
    keys = [(s, m, r) for m in mixes for s in seeds for r in ranks]
    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        got = dict(zip(keys, ex.map(lambda k: run(a.hpcd, k[0], k[1], k[2], a.policy), keys)))
    for m in mixes:
        print("\n%s mix (%s), EASY=%s\n" % (m, " ".join(MIXES[m]) or "no extra flags", a.policy))
        print("| seed | " + " | ".join("%s BSLD / GPU util / frag" % r for r in ranks) + " | %s ≥ %s on both? |" % (ranks[0], " and ".join(bases)))
        print("|---|" + "---|" * len(ranks) + "---|")
        wins, sums = 0, {r: [0.0, 0.0, 0.0] for r in ranks}
        for s in seeds:
            cells = []
            for r in ranks:
                g = got[(s, m, r)]
                b, u, f = g["avg_bounded_slowdown"], g["gpu_utilization"], g["frag_mean_gpus"]
                sums[r][0] += b
                sums[r][1] += u
                sums[r][2] += f
                cells.append("%.2f / %.3f / %.2f" % (b, u, f))
            d = got[(s, m, ranks[0])]
            bad = []
            for r in bases:
                o = got[(s, m, r)]
                if d["avg_bounded_slowdown"] > o["avg_bounded_slowdown"] + 1e-9:
                    bad.append("BSLD %+.2f vs %s" % (d["avg_bounded_slowdown"] - o["avg_bounded_slowdown"], r))
                if d["gpu_utilization"] < o["gpu_utilization"] - 1e-9:
                    bad.append("util %+.4f vs %s" % (d["gpu_utilization"] - o["gpu_utilization"], r))
            if not bad:
                wins += 1
            print("| %d | %s | %s |" % (s, " | ".join(cells), "yes" if not bad else "no: " + "; ".join(bad)))
        n = len(seeds)
        print("| **mean** | " + " | ".join("**%.2f / %.3f / %.2f**" % (sums[r][0] / n, sums[r][1] / n, sums[r][2] / n) for r in ranks)
              + " | %d of %d |" % (wins, n))
        if a.curve:
            s = seeds[0]
            print("\nfragmented GPUs over time, seed %d, %s mix (20 equal spans of the makespan)\n" % (s, m))
            print("| ranking | mean | curve |\n|---|--:|---|")
            for r in ranks:
                g = got[(s, m, r)]
                print("| %s | %.2f | %s |" % (r, g["frag_mean_gpus"], " ".join("%.1f" % p["fragmented_gpus"] for p in g["frag_curve"])))


if __name__ == "__main__":
    main()
