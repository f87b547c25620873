package main

import "github.com/urfave/cli/v2"

// pprofFlag turns on the server's profile endpoint (server/pprof.go):
// admins only, on the Unix socket only, e.g.
// curl --unix-socket /run/hpc/hpc.sock http://hpc/debug/pprof/heap > heap.prof
var pprofFlag = &cli.BoolFlag{Name: "pprof", Usage: "serve Go runtime profiles (heap, CPU, goroutines) at /debug/pprof/ to admins on the Unix socket"}
