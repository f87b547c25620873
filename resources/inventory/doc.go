// Package inventory reads what a node has: CPUs, memory and host facts
// through gopsutil, GPUs and their pairwise interconnect through NVML.
// It is apart from package resources because NVML needs cgo: the placer,
// the API and the CLI depend only on the plain resource types.
package inventory
