package server

import (
	"crypto/sha256"
	"sort"
	"sync"
)

// envCache shares one copy of each distinct job environment among the
// jobs that have it. A user's submits from one shell carry the same few
// kilobytes of environment; kept apart they were most of the server's
// memory with 10,000 jobs queued. The maps are never changed after
// interning.
type envCache struct {
	mu   sync.Mutex
	maps map[[sha256.Size]byte]map[string]string
}

// maxEnvCache bounds the cache; when full it starts afresh (jobs keep the
// maps they have, new jobs share again from then on).
const maxEnvCache = 1024

func (c *envCache) intern(env map[string]string) map[string]string {
	if len(env) == 0 {
		return env
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(env[k]))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.maps[sum]; ok {
		return m
	}
	if c.maps == nil || len(c.maps) >= maxEnvCache {
		c.maps = map[[sha256.Size]byte]map[string]string{}
	}
	c.maps[sum] = env
	return env
}
