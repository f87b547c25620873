// Command hpc-shim is the small per-job supervisor that hpcd starts for
// every job (and the init stage that becomes the job). It is the same code
// as hpcd's built-in shim, in a binary a fraction of hpcd's size, so each
// job starts faster; hpcd uses it when it lies beside hpcd.
package main

import (
	"fmt"
	"os"

	"github.com/hpc-sched/hpc/exec"
)

func main() {
	if exec.ShimMain() {
		return
	}
	fmt.Fprintln(os.Stderr, "hpc-shim: started by hpcd for each job; not meant to be run by hand")
	os.Exit(2)
}
