package jobs

import "strings"

// VirtualEnvPrefix starts the variables that steer a job on a virtual node
// (package agent/virtual): HPC_VIRTUAL_RUNTIME, HPC_VIRTUAL_EXIT. Users
// set them; nothing in the system does.
const VirtualEnvPrefix = "HPC_VIRTUAL_"

// ReservedEnv reports whether key is a variable the batch system sets for
// a job (HPC_*), which neither a job file nor the submitter's environment
// may set. The HPC_VIRTUAL_ ones are not reserved.
func ReservedEnv(key string) bool {
	return strings.HasPrefix(key, "HPC_") && !strings.HasPrefix(key, VirtualEnvPrefix)
}
