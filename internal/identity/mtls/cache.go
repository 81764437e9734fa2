package mtls

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// DefaultCacheSize is how many verified leaves an Authenticator remembers by default.
const DefaultCacheSize = 4096

// credKeyLen is the length of a credential id: the first 16 bytes of the
// leaf's SHA-256 fingerprint, shown as 32 hex digits.
const credKeyLen = 16

func credKey(full [sha256.Size]byte) (k [credKeyLen]byte) {
	copy(k[:], full[:credKeyLen])
	return k
}

// parseCredentialID is the inverse of hex-encoding a credKey.
func parseCredentialID(s string) (k [credKeyLen]byte, ok bool) {
	if len(s) != 2*credKeyLen {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, false
	}
	return k, true
}

// leafCache is a bounded, least-recently-used map of verified leaves. Only
// successful verifications are stored, so a client cannot evict entries
// without certificates that verify.
type leafCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recently used; values are *verified
	items map[[credKeyLen]byte]*list.Element
}

func newLeafCache(size int) *leafCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &leafCache{max: size, ll: list.New(), items: make(map[[credKeyLen]byte]*list.Element)}
}

func (c *leafCache) get(k [credKeyLen]byte) *verified {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(el)
	return el.Value.(*verified)
}

func (c *leafCache) put(e *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[e.key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*verified).key)
	}
}

func (c *leafCache) remove(k [credKeyLen]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.Remove(el)
		delete(c.items, k)
	}
}

func (c *leafCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
