package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// decisionCache is the virtual document cache of one decision: OPA keeps
// there the value of every rule it evaluated, so that a rule read twice is
// evaluated once. It answers for the constant and folded rules from their
// trees (outside `with`, which may replace them or what they are made of)
// and keeps the rest in flat
// hash tables that are reused from decision to decision: OPA's own cache
// is a trie that allocates a node and a hash map per key and level, some
// sixty allocations per decision of the zero-trust example, all garbage
// the moment the decision is made.
//
// It behaves as OPA's cache does: one frame per `with` (Push), lookups in
// the top frame only, exact references only (a value cached for a
// reference says nothing about a longer or a shorter one), and a reference
// once marked undefined stays so within its frame. References are copied
// on Put: OPA may reuse the slice it passed.
type decisionCache struct {
	consts *constNode
	folded *constNode
	frames []*cacheFrame // frames[len-1] is the top; frames[0] the decision's own
	spare  []*cacheFrame // popped frames, kept for reuse
}

// cacheFrame is one frame: entries chained by the hash of their reference.
type cacheFrame struct {
	head    map[int]int32 // hash of a reference -> index of its first entry
	entries []cacheEntry
	terms   []*ast.Term // the entries' references, copied
}

type cacheEntry struct {
	ref       ast.Ref
	value     *ast.Term
	undefined bool
	next      int32 // index of the next entry with the same hash, or -1
}

var decisionCaches = sync.Pool{New: func() any { return &decisionCache{} }}

// newDecisionCache returns an empty cache for one decision; release it
// when the decision no longer reads the cache.
func newDecisionCache(consts, folded *constNode) *decisionCache {
	c := decisionCaches.Get().(*decisionCache)
	c.consts, c.folded = consts, folded
	c.Push()
	return c
}

// release empties the cache and returns it to the pool. Frames that grew
// unusually large are dropped rather than kept.
func (c *decisionCache) release() {
	for len(c.frames) > 0 {
		c.Pop()
	}
	c.consts, c.folded = nil, nil
	decisionCaches.Put(c)
}

// maxKeptEntries bounds the entries a frame may hold and still be reused.
const maxKeptEntries = 1024

func (c *decisionCache) Push() {
	var f *cacheFrame
	if n := len(c.spare); n > 0 {
		f, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		f = &cacheFrame{head: make(map[int]int32, 32)}
	}
	c.frames = append(c.frames, f)
}

func (c *decisionCache) Pop() {
	n := len(c.frames)
	if n == 0 {
		return
	}
	f := c.frames[n-1]
	c.frames[n-1] = nil
	c.frames = c.frames[:n-1]
	if len(f.entries) > maxKeptEntries {
		return
	}
	clear(f.head)
	clear(f.entries) // drop the references to terms
	f.entries = f.entries[:0]
	clear(f.terms)
	f.terms = f.terms[:0]
	c.spare = append(c.spare, f)
}

func (c *decisionCache) top() *cacheFrame { return c.frames[len(c.frames)-1] }

func (c *decisionCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if len(c.frames) == 1 { // outside `with`
		if v := c.consts.get(ref); v != nil {
			return v, false
		}
		if n := c.folded.lookup(ref); n != nil && (n.value != nil || n.undefined) {
			return n.value, n.undefined
		}
	}
	f := c.top()
	if e := f.find(ref); e != nil {
		if e.undefined {
			return nil, true
		}
		return e.value, false
	}
	return nil, false
}

func (c *decisionCache) Put(ref ast.Ref, value *ast.Term) {
	f := c.top()
	if e := f.find(ref); e != nil {
		if value != nil {
			e.value = value
		} else {
			e.undefined = true
		}
		return
	}
	h := ref.Hash()
	next, ok := f.head[h]
	if !ok {
		next = -1
	}
	start := len(f.terms)
	f.terms = append(f.terms, ref...)
	f.entries = append(f.entries, cacheEntry{ref: f.terms[start:len(f.terms):len(f.terms)], value: value, undefined: value == nil, next: next})
	f.head[h] = int32(len(f.entries) - 1)
}

// Keys returns the references with a value in the top frame.
func (c *decisionCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.top().entries {
		if e.value != nil {
			keys = append(keys, e.ref.Copy())
		}
	}
	return keys
}

// find returns the entry of exactly ref, or nil.
func (f *cacheFrame) find(ref ast.Ref) *cacheEntry {
	i, ok := f.head[ref.Hash()]
	if !ok {
		return nil
	}
	for i >= 0 {
		e := &f.entries[i]
		if refEqual(e.ref, ref) {
			return e
		}
		i = e.next
	}
	return nil
}

// refEqual compares references term by term as OPA's cache does.
func refEqual(a, b ast.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

var _ topdown.VirtualCache = (*decisionCache)(nil)
