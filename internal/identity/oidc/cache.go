package oidc

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// tokenCache remembers tokens whose signature and claims were verified, by
// SHA-256 of the token (the token itself is not kept), so that a client
// reusing its token skips the signature check. Only successes are stored,
// so an attacker cannot fill it without valid tokens; it is bounded anyway.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]*cacheEntry
	max int
}

// cacheEntry is one verified token. It is immutable once stored.
type cacheEntry struct {
	p         *provider
	kid       string
	fp        [32]byte // thumbprint of the key that verified the token
	times     tokenTimes
	principal gateway.Principal
}

func newTokenCache(n int) *tokenCache {
	return &tokenCache{m: make(map[[sha256.Size]byte]*cacheEntry), max: n}
}

// lookup returns the principal of a remembered token after the checks that
// can change since it was verified: its key is still in the issuer's key set
// and exp, nbf and iat hold at now. hit is false when the token must be
// verified in full.
func (c *tokenCache) lookup(sum [sha256.Size]byte, now time.Time) (p gateway.Principal, hit bool, err error) {
	c.mu.RLock()
	e := c.m[sum]
	c.mu.RUnlock()
	if e == nil {
		return p, false, nil
	}
	if ks := e.p.keys.Load(); ks == nil || !ks.has(e.kid, e.fp) {
		c.remove(sum)
		return p, false, nil
	}
	if err := e.p.checkTimes(e.times, now); err != nil {
		return p, true, err
	}
	return clonePrincipal(e.principal), true, nil
}

// contains reports whether the token was verified before (it may have
// expired since).
func (c *tokenCache) contains(sum [sha256.Size]byte) bool {
	c.mu.RLock()
	_, ok := c.m[sum]
	c.mu.RUnlock()
	return ok
}

// put remembers a verified token, making room if the cache is full: first
// by dropping expired tokens, then arbitrary ones.
func (c *tokenCache) put(sum [sha256.Size]byte, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.times.exp.Add(old.p.skew)) {
				delete(c.m, k)
			}
		}
		for k := range c.m { // map order is unspecified: random enough
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[sum] = e
}

func (c *tokenCache) remove(sum [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.m, sum)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// clonePrincipal copies the slices so that callers cannot change a cached entry.
func clonePrincipal(p gateway.Principal) gateway.Principal {
	p.Scopes = slices.Clone(p.Scopes)
	p.Groups = slices.Clone(p.Groups)
	p.Roles = slices.Clone(p.Roles)
	return p
}
