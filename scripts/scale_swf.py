#!/usr/bin/env python3
"""Scale an SWF trace to a larger machine: every job's processor counts
(fields 5 and 8) and the header's MaxNodes/MaxProcs are multiplied by K.
The result stands in for a large machine's trace (docs/benchmarks.md uses
lublin_256 x16 = 4,096 nodes and x192 = 49,152 nodes, Theta's and Mira's
scale) when no such trace is at hand; queueing behaviour is the original's.

Usage: scale_swf.py IN.swf K > OUT.swf
"""
import sys


def main():
    src, k = sys.argv[1], int(sys.argv[2])
    for line in open(src):
        s = line.strip()
        if s.startswith(";"):
            key, _, v = s[1:].partition(":")
            if key.strip() in ("MaxNodes", "MaxProcs"):
                s = f"; {key.strip()}: {int(v) * k}"
            print(s)
            continue
        f = s.split()
        if len(f) >= 18:
            for i in (4, 7):
                if int(f[i]) > 0:
                    f[i] = str(int(f[i]) * k)
        print(" ".join(f))


if __name__ == "__main__":
    main()
