package server

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"sync"
)

// envCache shares one copy of each distinct job environment among the
// jobs that have it, in memory and in the store (a blob under the
// environment's hash, which job records name). A user's submits from one
// shell carry the same few kilobytes of environment; kept apart they were
// most of the server's memory and of every job record's size. The maps are
// never changed after interning.
type envCache struct {
	mu     sync.Mutex
	maps   map[string]map[string]string
	stored map[string]bool // keys known to be durable in the store
}

// maxEnvCache bounds the cache; when full it starts afresh (jobs keep the
// maps they have, new jobs share again from then on).
const maxEnvCache = 1024

// envKey is the environment's content hash.
func envKey(env map[string]string) string {
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
	return hex.EncodeToString(h.Sum(nil))
}

// intern returns the shared copy of env and its key.
func (c *envCache) intern(env map[string]string) (map[string]string, string) {
	if len(env) == 0 {
		return env, ""
	}
	key := envKey(env)
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.maps[key]; ok {
		return m, key
	}
	if c.maps == nil || len(c.maps) >= maxEnvCache {
		c.maps = map[string]map[string]string{}
		c.stored = map[string]bool{}
	}
	c.maps[key] = env
	return env, key
}

// isStored and markStored track which environments the store holds, so
// each is written once.
func (c *envCache) isStored(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stored[key]
}

func (c *envCache) markStored(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stored == nil {
		c.stored = map[string]bool{}
	}
	c.stored[key] = true
}
