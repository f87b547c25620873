package main

import (
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// pprofFlag turns on the server's profile endpoint (server/pprof.go):
// admins only, on the Unix socket only, e.g.
// curl --unix-socket /run/hpc/hpc.sock http://hpc/debug/pprof/heap > heap.prof
var pprofFlag = &cli.BoolFlag{Name: "pprof", Usage: "serve Go runtime profiles (heap, CPU, goroutines) at /debug/pprof/ to admins on the Unix socket"}

// serverGCPercent is the Go collector's target for the daemons that hold
// the job queue (hpcd server, hpcd dev) unless GOGC is set: the heap may
// grow to 1.5 times what is live between collections instead of the
// runtime's default 2 times. The queue is long-lived and most of the heap,
// and the garbage is each scheduling pass's and each request's, so the
// default's headroom was a large part of the server's RSS: 100,000
// pending jobs behind 1,000 virtual nodes, 327 MiB at GOGC=100 and 277 MiB
// at 50, the collector's share of the available CPU 5.3 % and 7.1 %
// (BenchmarkPendingRSS100k, docs/benchmarks.md).
const serverGCPercent = 50

// setServerGC applies serverGCPercent unless the environment sets GOGC
// (the runtime has then applied it already). GOMEMLIMIT is left to the
// admin: a soft limit that the live heap outgrows makes the collector run
// back to back.
func setServerGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}
