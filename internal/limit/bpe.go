package limit

import (
	"container/heap"
	"hash/maphash"
	"math"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// capturingLoader is tiktoken-go's loader of the embedded ranks that also
// keeps the maps it returns, so the fast encoder shares them with
// tiktoken-go (they are read-only) instead of holding a second copy.
type capturingLoader struct {
	inner tiktoken.BpeLoader
	mu    sync.Mutex
	ranks map[string]map[string]int // by file name, e.g. "o200k_base.tiktoken"
}

func (l *capturingLoader) LoadTiktokenBpe(file string) (map[string]int, error) {
	m, err := l.inner.LoadTiktokenBpe(file)
	if err == nil {
		l.mu.Lock()
		l.ranks[path.Base(file)] = m
		l.mu.Unlock()
	}
	return m, err
}

var ranksLoader = &capturingLoader{inner: loader.NewOfflineLoader(), ranks: map[string]map[string]int{}}

// ranksOf returns the ranks of an encoding tiktoken-go has loaded, or
// loads them from the embedded files if it loaded them some other way.
func ranksOf(encoding string) (map[string]int, error) {
	ranksLoader.mu.Lock()
	m := ranksLoader.ranks[encoding+".tiktoken"]
	ranksLoader.mu.Unlock()
	if m != nil {
		return m, nil
	}
	return ranksLoader.LoadTiktokenBpe(encoding + ".tiktoken")
}

// fastEncoder counts tokens as tiktoken-go's EncodeOrdinary does, with a
// hand-written pre-tokenizer (pretok.go), the same ranks and the same
// merge order, a cache of the pieces that need merging, and no
// allocation in the steady state.
type fastEncoder struct {
	ranks map[string]int
	// maxToken is the length of the longest token: a longer pair is
	// never one, and is not looked up.
	maxToken int
	next     func(s string, i int) int // nextCL100k or nextO200k
	cache    pieceCache
}

func newFastEncoder(encoding string) (*fastEncoder, error) {
	var next func(string, int) int
	switch encoding {
	case EncodingO200k:
		next = nextO200k
	case EncodingCL100k:
		next = nextCL100k
	default:
		return nil, nil // no fast path for it
	}
	ranks, err := ranksOf(encoding)
	if err != nil {
		return nil, err
	}
	classOnce.Do(buildClassTable)
	e := &fastEncoder{ranks: ranks, next: next}
	for tok := range ranks {
		e.maxToken = max(e.maxToken, len(tok))
	}
	e.cache.seed = maphash.MakeSeed()
	return e, nil
}

// bufPool holds byte buffers for texts being assembled (request texts,
// text with invalid UTF-8 made valid).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuf: larger buffers are dropped rather than pooled.
const maxPooledBuf = 1 << 20

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// count returns the number of tokens of text.
func (e *fastEncoder) count(text string) int64 {
	if !utf8.ValidString(text) {
		// tiktoken-go turns the text into runes, so every byte that is not
		// part of a valid sequence is U+FFFD; do the same.
		b := getBuf()
		defer putBuf(b)
		*b = appendValid((*b)[:0], text)
		text = unsafe.String(unsafe.SliceData(*b), len(*b)) // *b is not written while text is used
	}
	n := int64(0)
	for i := 0; i < len(text); {
		j := e.next(text, i)
		if j <= i || j > len(text) { // cannot happen; never loop or panic
			j = len(text)
		}
		n += int64(e.pieceTokens(text[i:j]))
		i = j
	}
	return n
}

// appendValid appends s with each byte of an invalid UTF-8 sequence
// replaced by U+FFFD, as []rune(s) does.
func appendValid(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// maxCachedPiece: longer pieces are merged each time.
const maxCachedPiece = 48

// pieceTokens is the number of tokens of one piece.
func (e *fastEncoder) pieceTokens(p string) int {
	if len(p) <= 1 {
		return len(p) // every byte is a token
	}
	if _, ok := e.ranks[p]; ok {
		return 1
	}
	if len(p) > maxCachedPiece {
		return e.merge(p)
	}
	slot := &e.cache.slots[maphash.String(e.cache.seed, p)&(cacheSlots-1)]
	if ent := slot.Load(); ent != nil && ent.piece == p {
		return int(ent.n)
	}
	n := e.merge(p)
	slot.Store(&cacheEntry{piece: strings.Clone(p), n: int32(n)}) // p may be in a pooled buffer
	return n
}

// pieceCache is a direct-mapped cache piece → token count of the pieces
// that needed merging: a fixed number of slots, each replaced by the last
// piece that hashed to it (the key is compared in full, so a collision
// costs a merge, never a wrong count). Reads and writes are lock-free.
type pieceCache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[cacheEntry]
}

const cacheSlots = 8192 // a power of two

type cacheEntry struct {
	piece string
	n     int32
}

// mergeQuadratic bounds the pieces merged with the simple quadratic
// algorithm (tiktoken-go's own); longer ones use a heap, which gives the
// same merges in O(n log n).
const mergeQuadratic = 256

// merge returns the number of tokens byte-pair merging makes of p (2 or
// more bytes, not itself a token). It merges exactly as tiktoken-go's
// bytePairMerge: repeatedly the adjacent pair of parts with the lowest
// rank, the leftmost of equal ranks, until no pair is a token.
func (e *fastEncoder) merge(p string) int {
	if len(p) > mergeQuadratic {
		return e.mergeHeap(p)
	}
	type part struct{ start, rank int32 }
	var buf [mergeQuadratic + 1]part
	parts := buf[:len(p)+1]
	rank := func(i, skip int) int32 {
		if i+skip+2 < len(parts) {
			if r, ok := e.ranks[p[parts[i].start:parts[i+skip+2].start]]; ok {
				return int32(r)
			}
		}
		return math.MaxInt32
	}
	for i := range parts {
		parts[i] = part{int32(i), math.MaxInt32}
	}
	for i := 0; i < len(parts)-2; i++ {
		parts[i].rank = rank(i, 0)
	}
	for len(parts) > 1 {
		minRank, at := int32(math.MaxInt32), -1
		for i := 0; i < len(parts)-1; i++ {
			if parts[i].rank < minRank {
				minRank, at = parts[i].rank, i
			}
		}
		if at < 0 {
			break
		}
		parts[at].rank = rank(at, 1)
		if at > 0 {
			parts[at-1].rank = rank(at-1, 1)
		}
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	return len(parts) - 1
}

// mergeHeap is merge for long pieces: the parts form a linked list and
// the candidate pairs a min-heap ordered by (rank, start), which picks
// the same pair as the linear scan; stale entries are skipped.
func (e *fastEncoder) mergeHeap(p string) int {
	n := len(p)
	next := make([]int32, n) // start of the next part, n at the end
	prev := make([]int32, n) // start of the previous part, -1 at the start
	alive := make([]bool, n)
	rankAt := make([]int32, n) // rank of the pair starting at a part
	for i := range n {
		next[i], prev[i], alive[i] = int32(i+1), int32(i-1), true
	}
	pairRank := func(i int32) int32 { // the part at i with the one after it
		j := next[i]
		if int(j) >= n || int(next[j])-int(i) > e.maxToken {
			return math.MaxInt32
		}
		if r, ok := e.ranks[p[i:next[j]]]; ok {
			return int32(r)
		}
		return math.MaxInt32
	}
	h := &pairHeap{}
	for i := range n - 1 {
		r := pairRank(int32(i))
		rankAt[i] = r
		if r != math.MaxInt32 {
			h.items = append(h.items, pairItem{r, int32(i)})
		}
	}
	heap.Init(h)
	parts := n
	for h.Len() > 0 {
		it := heap.Pop(h).(pairItem)
		i := it.start
		if !alive[i] || rankAt[i] != it.rank {
			continue // stale: ranks are unique, so an equal rank is the same pair
		}
		j := next[i] // merge the part at j into the part at i
		alive[j] = false
		next[i] = next[j]
		if int(next[j]) < n {
			prev[next[j]] = i
		}
		parts--
		r := pairRank(i)
		rankAt[i] = r
		if r != math.MaxInt32 {
			heap.Push(h, pairItem{r, i})
		}
		if pi := prev[i]; pi >= 0 {
			r := pairRank(pi)
			rankAt[pi] = r
			if r != math.MaxInt32 {
				heap.Push(h, pairItem{r, pi})
			}
		}
	}
	return parts
}

type pairItem struct{ rank, start int32 }

type pairHeap struct{ items []pairItem }

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	return x.rank < y.rank || (x.rank == y.rank && x.start < y.start)
}
func (h *pairHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(pairItem)) }
func (h *pairHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}
