package resources

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Short names keep the expected matrices readable.
const (
	no = LinkNone
	sy = LinkSystem
	nd = LinkNode
	hb = LinkHostBridge
	ss = LinkSingleSwitch
	nv = LinkNVLink
)

func TestFixtures(t *testing.T) {
	tests := []struct {
		name string
		got  [][]Link
		want [][]Link
	}{
		{"nvswitch-3", NVSwitchLinks(3), [][]Link{{no, nv, nv}, {nv, no, nv}, {nv, nv, no}}},
		{"pcie-2", PCIeLinks(2), [][]Link{{no, ss}, {ss, no}}},
		{"nvlink-pairs-4", NVLinkPairsLinks(4), [][]Link{
			{no, nv, sy, sy},
			{nv, no, sy, sy},
			{sy, sy, no, nv},
			{sy, sy, nv, no},
		}},
		{"nvlink-pairs-8", NVLinkPairsLinks(8), [][]Link{
			{no, nv, hb, hb, sy, sy, sy, sy},
			{nv, no, hb, hb, sy, sy, sy, sy},
			{hb, hb, no, nv, sy, sy, sy, sy},
			{hb, hb, nv, no, sy, sy, sy, sy},
			{sy, sy, sy, sy, no, nv, hb, hb},
			{sy, sy, sy, sy, nv, no, hb, hb},
			{sy, sy, sy, sy, hb, hb, no, nv},
			{sy, sy, sy, sy, hb, hb, nv, no},
		}},
		{"nvlink-pairs-3", NVLinkPairsLinks(3), [][]Link{{no, nv, sy}, {nv, no, sy}, {sy, sy, no}}},
		{"two-socket-8", TwoSocketLinks(8), [][]Link{
			{no, nd, nd, nd, sy, sy, sy, sy},
			{nd, no, nd, nd, sy, sy, sy, sy},
			{nd, nd, no, nd, sy, sy, sy, sy},
			{nd, nd, nd, no, sy, sy, sy, sy},
			{sy, sy, sy, sy, no, nd, nd, nd},
			{sy, sy, sy, sy, nd, no, nd, nd},
			{sy, sy, sy, sy, nd, nd, no, nd},
			{sy, sy, sy, sy, nd, nd, nd, no},
		}},
		{"single-gpu", NVSwitchLinks(1), [][]Link{{no}}},
		{"empty", TwoSocketLinks(0), [][]Link{}},
		{"negative", PCIeLinks(-2), [][]Link{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", tt.got, tt.want)
			}
		})
	}
}

// TestFixturesShape: every fixture at every size is square, symmetric and
// LinkNone exactly on the diagonal.
func TestFixturesShape(t *testing.T) {
	fixtures := map[string]func(int) [][]Link{
		"nvswitch": NVSwitchLinks, "nvlink-pairs": NVLinkPairsLinks, "pcie": PCIeLinks, "two-socket": TwoSocketLinks,
	}
	for name, f := range fixtures {
		for n := 0; n <= 16; n++ {
			m := f(n)
			if len(m) != n {
				t.Fatalf("%s(%d): %d rows", name, n, len(m))
			}
			for i := range m {
				if len(m[i]) != n {
					t.Fatalf("%s(%d): row %d has %d entries", name, n, i, len(m[i]))
				}
				for j := range m[i] {
					if m[i][j] != m[j][i] {
						t.Errorf("%s(%d): [%d][%d]=%v but [%d][%d]=%v", name, n, i, j, m[i][j], j, i, m[j][i])
					}
					if (i == j) != (m[i][j] == LinkNone) {
						t.Errorf("%s(%d): [%d][%d]=%v", name, n, i, j, m[i][j])
					}
				}
			}
		}
	}
}

func TestLinkOrderAndText(t *testing.T) {
	order := []Link{LinkNone, LinkSystem, LinkNode, LinkHostBridge, LinkMultiSwitch, LinkSingleSwitch, LinkNVLink}
	for i := 1; i < len(order); i++ {
		if !(order[i-1] < order[i]) {
			t.Errorf("%v not below %v", order[i-1], order[i])
		}
	}
	b, err := json.Marshal(TwoSocketLinks(2))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[["none","system"],["system","none"]]` {
		t.Errorf("JSON = %s", b)
	}
	for _, l := range order {
		text, _ := l.MarshalText()
		var back Link
		if err := back.UnmarshalText(text); err != nil || back != l {
			t.Errorf("%v round-tripped to %v (%v)", l, back, err)
		}
	}
	if got := Link(42).String(); got != "unknown" {
		t.Errorf("Link(42) = %q", got)
	}
}
