package resources

// Topology fixtures: plain-data Link matrices of common GPU node layouts,
// for the placer's tests, the simulator and node configuration without
// NVML. Each returns an n×n matrix, symmetric, LinkNone on the diagonal,
// and an empty matrix for n <= 0.

// NVSwitchLinks is a DGX/HGX-style node: every GPU reaches every other over
// NVLink through NVSwitches.
func NVSwitchLinks(n int) [][]Link {
	return buildLinks(n, func(i, j int) Link { return LinkNVLink })
}

// NVLinkPairsLinks is a node whose GPUs are bridged in NVLink pairs
// (0-1, 2-3, ...). Other pairs go over PCIe: LinkHostBridge within the
// same half of the GPUs (one socket), LinkSystem across the halves. With
// odd n the last GPU has no NVLink peer.
func NVLinkPairsLinks(n int) [][]Link {
	return buildLinks(n, func(i, j int) Link {
		switch {
		case i/2 == j/2:
			return LinkNVLink
		case half(i, n) == half(j, n):
			return LinkHostBridge
		default:
			return LinkSystem
		}
	})
}

// PCIeLinks is a PCIe-only node with every GPU behind one PCIe switch.
func PCIeLinks(n int) [][]Link {
	return buildLinks(n, func(i, j int) Link { return LinkSingleSwitch })
}

// TwoSocketLinks is a PCIe-only two-socket node: the first half of the GPUs
// hang off socket 0 and the second half off socket 1 (0-3 and 4-7 of
// eight). Within a socket GPUs share a NUMA node but not a host bridge
// (LinkNode); across sockets they cross the SMP interconnect (LinkSystem).
func TwoSocketLinks(n int) [][]Link {
	return buildLinks(n, func(i, j int) Link {
		if half(i, n) == half(j, n) {
			return LinkNode
		}
		return LinkSystem
	})
}

// half is 0 for the first half of n GPUs and 1 for the rest (the first
// half is the larger one when n is odd: 0-2 and 3-4 of five).
func half(i, n int) int { return i * 2 / n }

// buildLinks fills an n×n matrix from f, called for i != j only.
func buildLinks(n int, f func(i, j int) Link) [][]Link {
	if n < 0 {
		n = 0
	}
	m := make([][]Link, n)
	for i := range m {
		m[i] = make([]Link, n)
		for j := range m[i] {
			if i != j {
				m[i][j] = f(i, j)
			}
		}
	}
	return m
}
