package resources

// Link is how directly two GPUs of one node talk to each other. Larger is
// better, so the placer can compare links with < and sum them as a score.
// The levels follow NVML's topology levels (nvmlGpuTopologyLevel_t) with
// NVLink above them all.
type Link uint8

const (
	LinkNone         Link = iota // unknown, or the same GPU
	LinkSystem                   // across CPU sockets (SMP interconnect, NVML SYSTEM)
	LinkNode                     // same NUMA node, across PCIe host bridges (NVML NODE)
	LinkHostBridge               // same PCIe host bridge (NVML HOSTBRIDGE)
	LinkMultiSwitch              // through several PCIe switches (NVML MULTIPLE)
	LinkSingleSwitch             // behind one PCIe switch (NVML SINGLE)
	LinkNVLink                   // NVLink bridge or NVSwitch
)

var linkNames = [...]string{"none", "system", "node", "hostbridge", "multi-switch", "single-switch", "nvlink"}

func (l Link) String() string {
	if int(l) < len(linkNames) {
		return linkNames[l]
	}
	return "unknown"
}

// MarshalText writes the link's name, so JSON matrices stay readable.
func (l Link) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (l *Link) UnmarshalText(b []byte) error {
	for i, n := range linkNames {
		if n == string(b) {
			*l = Link(i)
			return nil
		}
	}
	*l = LinkNone
	return nil
}
