package server

import (
	"fmt"
	"testing"
)

func TestEnvCacheSharesEqualEnvironments(t *testing.T) {
	var c envCache
	a, ka := c.intern(map[string]string{"A": "1", "B": "2"})
	b, kb := c.intern(map[string]string{"B": "2", "A": "1"})
	if fmt.Sprintf("%p", a) != fmt.Sprintf("%p", b) || ka != kb {
		t.Error("equal environments were not shared")
	}
	// "A=1" + "B=" must not collide with "A=1B=" + nothing.
	x, kx := c.intern(map[string]string{"A": "1", "B": ""})
	y, ky := c.intern(map[string]string{"A": "1B"})
	if fmt.Sprintf("%p", x) == fmt.Sprintf("%p", y) || kx == ky || kx == ka {
		t.Error("different environments were shared")
	}
	for i := 0; i < maxEnvCache+10; i++ {
		c.intern(map[string]string{"I": fmt.Sprint(i)})
	}
	if len(c.maps) > maxEnvCache {
		t.Errorf("cache holds %d environments, bound is %d", len(c.maps), maxEnvCache)
	}
}
