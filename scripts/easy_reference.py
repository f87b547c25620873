#!/usr/bin/env python3
"""Plain count-based EASY backfilling on an SWF trace: the reference that
`hpcd simulate --trace ... --policy easy` is compared with, for results
(job-for-job start times) and for speed (docs/benchmarks.md).

It follows the conventions of placement/sim.SWFWorkload: jobs with run time
<= 0, P <= 0 or P > N are skipped (P = max(allocated, requested)), the rest
sorted by submit time (file order on ties) and numbered 1.. in that order;
the estimate is the requested time when positive, else the run time; a job
runs min(run, estimate). N single-CPU nodes (default: MaxProcs, else
MaxNodes, else the largest request). At each instant, ended jobs free their
nodes, arrivals join the queue, then one pass: start jobs in queue order
(submit time, then id) while they fit; the first that does not gets the
shadow time (when enough nodes come free by the running jobs' estimates)
and the extra nodes then; every later job starts if it fits now and ends by
the shadow time or needs no more than the extra nodes.

Usage: easy_reference.py TRACE.swf [--nodes N] [--from K] [--jobs M] [--starts OUT.csv]
Prints the summary as JSON; --starts writes id,start_s for every job.
"""
import argparse
import bisect
import gzip
import heapq
import json
import sys
import time


def read_swf(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    header, jobs = {}, []
    with opener(path, "rt") as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            if s[0] == ";":
                k, _, v = s[1:].partition(":")
                try:
                    header[k.strip()] = int(v.strip())
                except ValueError:
                    pass
                continue
            v = [int(round(float(x))) for x in s.split()[:18]]
            jobs.append(v)
    return header, jobs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--nodes", type=int, default=0)
    ap.add_argument("--from", dest="first", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--starts")
    a = ap.parse_args()
    header, recs = read_swf(a.trace)
    n = a.nodes or header.get("MaxProcs", 0) or header.get("MaxNodes", 0) or max(max(r[4], r[7]) for r in recs)
    t0 = time.perf_counter()
    kept = [r for r in recs if r[3] > 0 and 0 < max(r[4], r[7]) <= n]
    skipped = len(recs) - len(kept)
    kept.sort(key=lambda r: r[1])  # stable: file order on ties
    end = len(kept) if a.jobs == 0 else min(len(kept), a.first + a.jobs)
    first_submit = kept[0][1]
    jobs = []  # (id, submit, procs, estimate, run)
    for i in range(a.first, end):
        r = kept[i]
        est = r[8] if r[8] > 0 else r[3]
        jobs.append((i + 1, r[1] - first_submit, max(r[4], r[7]), est, min(r[3], est)))

    free = n
    queue = []         # indices into jobs, in arrival order (= queue order)
    running = []       # sorted (estimated end, procs)
    ends = []          # heap (real end, index)
    start = [None] * len(jobs)
    nxt = 0
    while nxt < len(jobs) or ends:
        now = jobs[nxt][1] if nxt < len(jobs) else ends[0][0]
        if ends and ends[0][0] < now:
            now = ends[0][0]
        while ends and ends[0][0] == now:
            _, i = heapq.heappop(ends)
            free += jobs[i][2]
            running.pop(bisect.bisect_left(running, (start[i] + jobs[i][3], jobs[i][2], i)))
        while nxt < len(jobs) and jobs[nxt][1] == now:
            queue.append(nxt)
            nxt += 1
        if not queue:
            continue
        left = []
        k = 0
        while k < len(queue) and jobs[queue[k]][2] <= free:  # start in order while they fit
            i = queue[k]
            free -= jobs[i][2]
            start[i] = now
            bisect.insort(running, (now + jobs[i][3], jobs[i][2], i))
            heapq.heappush(ends, (now + jobs[i][4], i))
            k += 1
        if k < len(queue):
            head = jobs[queue[k]]
            avail, shadow = free, None
            for e, p, _ in running:
                avail += p
                if avail >= head[2]:
                    shadow = e
                    break
            extra = avail - head[2]
            left.append(queue[k])
            for i in queue[k + 1:]:
                p, est = jobs[i][2], jobs[i][3]
                short = shadow is not None and now + est <= shadow
                if p <= free and (short or p <= extra):
                    if not short:
                        extra -= p
                    free -= p
                    start[i] = now
                    bisect.insort(running, (now + est, p, i))
                    heapq.heappush(ends, (now + jobs[i][4], i))
                else:
                    left.append(i)
        queue = left
    wall = time.perf_counter() - t0
    waits = [start[i] - j[1] for i, j in enumerate(jobs)]
    bsld = [max(1.0, (w + j[4]) / max(j[4], 10)) for w, j in zip(waits, jobs)]
    makespan = max(start[i] + j[4] for i, j in enumerate(jobs)) - min(j[1] for j in jobs)
    print(json.dumps({
        "jobs": len(jobs), "skipped": skipped,
        "avg_wait_s": sum(waits) / len(jobs), "max_wait_s": max(waits),
        "avg_bounded_slowdown": sum(bsld) / len(jobs),
        "utilization": sum(j[2] * j[4] for j in jobs) / (n * makespan) if makespan else 0,
        "makespan_s": makespan, "wall_s": wall,
    }, indent=2))
    if a.starts:
        with open(a.starts, "w") as f:
            f.write("id,start_s\n")
            for i, j in enumerate(jobs):
                f.write(f"{j[0]},{start[i]}\n")


if __name__ == "__main__":
    sys.exit(main())
