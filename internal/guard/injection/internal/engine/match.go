package engine

import (
	"math/bits"
	"sync"
	"unicode/utf8"
)

// The lexicon is held in a small open-addressing table keyed by a 64-bit hash of the folded
// word (or word prefix), so a lookup is a multiply and one or two probes, with no allocation.

const (
	lexBits = 12
	lexSize = 1 << lexBits
	hInit   = 0xcbf29ce484222325
	hMul    = 0x100000001b3
)

type lexEntry struct {
	exact mask // concepts when the whole token equals the key
	stem  mask // concepts when the key is a prefix of the token
}

// lexFilterBits is the log2 of the number of bits of lexTable.filter.
const lexFilterBits = 15

// lexTable keeps the keys apart from the entries: most probes miss and touch only the keys.
type lexTable struct {
	// filter has the bit of every key set (see filterBit). A probe whose bit is clear cannot
	// find its hash among the keys, so get returns nil without reading them: the same answer as
	// the probe, from a 4 KiB bitmap that stays in the L1 cache where the 32 KiB of keys do not
	// (about 1300 keys set fewer than 4% of the bits, so nearly every miss stops here).
	filter [1 << lexFilterBits / 64]uint64
	keys   [lexSize]uint64
	vals   [lexSize]lexEntry
	// pairs has a bit for every two lower-case ASCII letters that begin a lexicon word: a token
	// beginning with two such letters and no bit set cannot match, so it is not probed.
	pairs [26*26/64 + 1]uint64
	// obf holds the hashes of the full words that count when written in rot13 or backwards.
	obf [64]uint64
	// obfPairs has a bit for the first and last letters of every such word written in rot13 or
	// backwards.
	obfPairs [26*26/64 + 1]uint64
	// maxIdeo and maxAlpha are the longest lexicon words, in characters, of the unsegmented
	// scripts written with ideographs or syllables (Chinese, Japanese) and of those written with
	// an alphabet (Thai, Lao, Khmer, Myanmar): the substrings looked up in a run of such text.
	maxIdeo, maxAlpha int
}

// maxUnsegLen bounds the length of the substrings of unsegmented text that are looked up.
const maxUnsegLen = 24

// allLexicon returns the lexicon maps, merged when the table is built.
func allLexicon() map[string][]int {
	m := make(map[string][]int, len(lexicon)+len(lexiconIntl))
	for _, lx := range []map[string][]int{lexicon, lexiconIntl} {
		for w, cs := range lx {
			m[w] = append(m[w], cs...)
		}
	}
	return m
}

func allUnsegmented(rs []rune) bool {
	for _, r := range rs {
		if !unsegmented(r) {
			return false
		}
	}
	return true
}

// alphabetic reports whether an unsegmented rune belongs to a script written with an alphabet
// (Thai, Lao, Khmer, Myanmar), whose words are longer in characters than Chinese or Japanese ones.
func alphabetic(r rune) bool {
	return r >= 0x0E00 && r <= 0x0EFF || r >= 0x1780 && r <= 0x17FF || r >= 0x1000 && r <= 0x109F
}

var (
	lexOnce sync.Once
	lex     *lexTable
)

func hstep(h uint64, r rune) uint64 { return (h ^ uint64(r)) * hMul }

// lexMix spreads a word hash over the table: FNV's top bits, which a slot or a filter bit could
// be read from directly, hardly depend on the last runes of a short word, so the words of the
// lexicon would crowd a few slots. Where a key sits does not change what get returns.
const lexMix = 0x9E3779B97F4A7C15

func (t *lexTable) slot(h uint64) int { return int((h * lexMix) >> (64 - lexBits)) }

// filterIndex returns the bit of lexTable.filter for key h.
func filterIndex(h uint64) uint64 { return (h * lexMix) >> (64 - lexFilterBits) }

// filterBit returns the word of filter and the bit in it for key h.
func filterBit(h uint64) (int, uint64) {
	f := filterIndex(h)
	return int(f / 64), 1 << (f % 64)
}

// mayHold returns 1 when get(h) may find an entry (h's bit in filter is set), else 0.
func (t *lexTable) mayHold(h uint64) uint32 {
	if h == 0 {
		h = 1 // as get does
	}
	f := filterIndex(h)
	return uint32(t.filter[f/64]>>(f%64)) & 1
}

func (t *lexTable) get(h uint64) *lexEntry {
	if h == 0 {
		h = 1
	}
	if w, b := filterBit(h); t.filter[w]&b == 0 {
		return nil // no key has this hash (see filter)
	}
	for i := t.slot(h); ; i = (i + 1) & (lexSize - 1) {
		k := t.keys[i]
		if k == h {
			return &t.vals[i]
		}
		if k == 0 {
			return nil
		}
	}
}

func (t *lexTable) put(h uint64, exact, stem mask) {
	if h == 0 {
		h = 1
	}
	w, b := filterBit(h)
	t.filter[w] |= b
	for i := t.slot(h); ; i = (i + 1) & (lexSize - 1) {
		if t.keys[i] == h || t.keys[i] == 0 {
			t.keys[i] = h
			t.vals[i].exact |= exact
			t.vals[i].stem |= stem
			return
		}
	}
}

// obfPair reports whether a word beginning with a and ending with b may be one of the
// obfuscatedWords in rot13 or backwards: a cheap filter before hashing.
func (t *lexTable) obfPair(a, b rune) bool {
	p, ok := asciiPair(a, b)
	return ok && t.obfPairs[p/64]&(1<<(p%64)) != 0
}

func (t *lexTable) isObf(h uint64) bool {
	for i := h >> 58; t.obf[i] != 0; i = (i + 1) & 63 {
		if t.obf[i] == h {
			return true
		}
	}
	return false
}

// obfuscatedWords are the attack words looked for in rot13 and reversed form.
var obfuscatedWords = []string{"ignore", "disregard", "forget", "previous", "instructions", "instruction", "rules",
	"password", "secret", "system", "prompt", "reveal", "jailbreak", "bypass", "override", "restrictions", "unrestricted"}

// lexiconTable builds the table; words are folded with the same folding as the input.
func lexiconTable() *lexTable {
	lexOnce.Do(func() {
		t := new(lexTable)
		var ft Text
		for w, cs := range allLexicon() {
			stem := false
			if n := len(w); n > 0 && w[n-1] == '*' {
				stem, w = true, w[:n-1]
			}
			ft.Fold([]byte(w), 0)
			h := uint64(hInit)
			for _, r := range ft.R {
				h = hstep(h, r)
			}
			var x mask
			for _, c := range cs {
				x |= bit(c)
			}
			if stem {
				t.put(h, 0, x)
			} else {
				t.put(h, x, 0)
			}
			if len(ft.R) >= 2 {
				if p, ok := asciiPair(ft.R[0], ft.R[1]); ok {
					t.pairs[p/64] |= 1 << (p % 64)
				}
			}
			if n := len(ft.R); n >= 2 && n <= maxUnsegLen && allUnsegmented(ft.R) {
				if alphabetic(ft.R[0]) {
					t.maxAlpha = max(t.maxAlpha, n)
				} else {
					t.maxIdeo = max(t.maxIdeo, n)
				}
			}
		}
		for _, w := range obfuscatedWords {
			rot := func(c byte) rune { return 'a' + rune(c-'a'+13)%26 }
			for _, p := range [][2]rune{{rot(w[0]), rot(w[len(w)-1])}, {rune(w[len(w)-1]), rune(w[0])}} {
				if k, ok := asciiPair(p[0], p[1]); ok {
					t.obfPairs[k/64] |= 1 << (k % 64)
				}
			}
			h := uint64(hInit)
			for _, r := range w {
				h = hstep(h, r)
			}
			i := h >> 58
			for t.obf[i] != 0 {
				i = (i + 1) & 63
			}
			t.obf[i] = h
		}
		lex = t
	})
	return lex
}

// LexiconWordsAreTokens reports the lexicon words that the tokenizer could never produce as one
// token (a test keeps this list empty).
func LexiconWordsAreTokens() []string {
	var bad []string
	var ft Text
	for w := range allLexicon() {
		w2 := w
		if n := len(w2); n > 0 && w2[n-1] == '*' {
			w2 = w2[:n-1]
		}
		ft.Fold([]byte(w2), 0)
		if len(ft.R) == 0 {
			bad = append(bad, w)
			continue
		}
		// unsegmented text is matched on substrings of 2..maxUnsegLen characters of one run
		if u := allUnsegmented(ft.R); (u && (len(ft.R) < 2 || len(ft.R) > maxUnsegLen)) || (!u && unsegmented(ft.R[0])) {
			bad = append(bad, w)
			continue
		}
		for _, r := range ft.R {
			if !isWordRune(r) {
				bad = append(bad, w)
				break
			}
		}
	}
	return bad
}

// isWordRune reports whether a folded rune is part of a word.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z'
	}
	switch {
	case r < 0xC0, r == 0xD7, r == 0xF7:
		return false
	case r >= 0x2000 && r <= 0x2BFF, r >= 0x2E00 && r <= 0x2E7F, r >= 0x3000 && r <= 0x303F:
		return false
	case r >= 0xFE10 && r <= 0xFE6F, r >= 0xFF00 && r <= 0xFF0F, r >= 0xFF1A && r <= 0xFF20:
		return false
	case r >= 0xE000 && r <= 0xF8FF, r >= 0x1F000 && r <= 0x1FAFF, r == utf8.RuneError:
		return false
	case r == 0x060C, r == 0x061B, r == 0x061F, r >= 0x066A && r <= 0x066D, r == 0x0964, r == 0x0965:
		return false
	}
	return true
}

// unsegmented reports whether r belongs to a script written without spaces between words; each
// of its characters is a token position, and the lexicon is matched on substrings.
func unsegmented(r rune) bool {
	return r >= 0x3040 && r <= 0x30FF || r >= 0x31F0 && r <= 0x31FF || r >= 0x3400 && r <= 0x9FFF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x20000 && r <= 0x2FFFF || r >= 0x0E00 && r <= 0x0EFF ||
		r >= 0x1780 && r <= 0x17FF || r >= 0x1000 && r <= 0x109F
}

// rawHit is a rule hit in folded coordinates [fs, fe) and input bytes [bs, be).
type rawHit struct {
	rule   uint8
	fs, fe int32
	bs, be int32
}

// MaxHits bounds the hits kept per chunk; further hits of a rule already hit are merged.
const MaxHits = 48

type hitList struct {
	h [MaxHits]rawHit
	n int
}

func (l *hitList) reset() { l.n = 0 }

func (l *hitList) add(h rawHit) {
	for i := l.n - 1; i >= 0 && i >= l.n-8; i-- {
		p := &l.h[i]
		if p.rule == h.rule && h.fs <= p.fe+2 && h.fe+2 >= p.fs {
			p.fs, p.fe = min(p.fs, h.fs), max(p.fe, h.fe)
			p.bs, p.be = min(p.bs, h.bs), max(p.be, h.be)
			return
		}
	}
	if l.n < MaxHits {
		l.h[l.n] = h
		l.n++
		return
	}
	// Full: keep the evidence that this rule fired by widening its last hit.
	for i := l.n - 1; i >= 0; i-- {
		if l.h[i].rule == h.rule {
			return
		}
	}
	l.h[l.n-1] = h
}

const ringSize = 64

// matcher holds the token-level state of one pass over a Text.
type matcher struct {
	lex  *lexTable
	ri   *ruleIndex
	doc  bool
	ord  int32                             // token ordinal
	half int32                             // position in half-words
	last [numConcepts][2]int32             // the two latest ordinals of each concept
	ring [ringSize]struct{ s, e, h int32 } // per ordinal: folded start, end, half position
	hits *hitList
	t    *Text
	in   []byte
	// role labels at line starts ("System:", "Assistant:")
	roleN, roleStrong int
	roleAt            [8][2]int32
	// words that are attack words once rot13-decoded or reversed
	rot, rev               int32
	rotS, rotE, revS, revE int32
	// a run of single letters ("i g n o r e")
	split          [32]rune
	splitN         int
	splitS, splitE int
	lastTokEnd     int
	scratch        [32]rune
	hs             [maxLexLen]uint64 // hashes of the prefixes of the current token (see lookupHashed)
	// cue words for the model's cue features (nil: not recorded), and whether the next token
	// opens a sentence
	cues      *[]cue
	sentStart bool
}

// cue is a word of the cue concepts ending at folded position pos.
type cue struct {
	pos   int32
	mask  mask
	start bool // the word opens a sentence
}

func (mt *matcher) init(t *Text, in []byte, doc bool, hits *hitList, cues *[]cue) {
	mt.lex, mt.ri, mt.doc, mt.t, mt.in, mt.hits = lexiconTable(), rules(), doc, t, in, hits
	mt.cues, mt.sentStart = cues, true
	if cues != nil {
		*cues = (*cues)[:0]
	}
	mt.ord, mt.half = 0, 0
	for c := range mt.last {
		mt.last[c] = [2]int32{-1 << 30, -1 << 30}
	}
	mt.roleN, mt.roleStrong, mt.rot, mt.rev = 0, 0, 0, 0
	mt.splitN, mt.lastTokEnd = 0, -10
}

func (mt *matcher) hit(rule int, fs, fe int) {
	t := mt.t
	mt.hits.add(rawHit{rule: uint8(rule), fs: int32(fs), fe: int32(fe),
		bs: int32(t.SrcOff(fs)), be: int32(t.SrcEnd(fe-1, mt.in))})
}

// before returns the latest ordinal of any concept in x that is < ord.
func (mt *matcher) before(x mask, ord int32) int32 {
	best := int32(-1 << 30)
	for x != 0 {
		c := trailingZeros(x)
		x &= x - 1
		l := mt.last[c]
		if l[0] < ord && l[0] > best {
			best = l[0]
		} else if l[0] >= ord && l[1] < ord && l[1] > best {
			best = l[1]
		}
	}
	return best
}

// trailingZeros returns the index of the lowest set bit of x ≠ 0 (every caller loops while x ≠ 0).
func trailingZeros(x mask) int { return bits.TrailingZeros64(x) }

// concept records a token with concepts x spanning folded [s, e) and evaluates the rules it may
// complete.
func (mt *matcher) concept(x mask, s, e int, step int32) {
	ord := mt.ord
	mt.ord++
	mt.half += step
	slot := &mt.ring[uint32(ord)%ringSize] // ord ≥ 0: the slot of ord%ringSize
	slot.s, slot.e, slot.h = int32(s), int32(e), mt.half
	start := mt.sentStart
	mt.sentStart = false
	if x != 0 {
		mt.rulesAt(x, e, ord, start)
	}
}

// rulesAt records the token of ordinal ord with concepts x ≠ 0, ending at folded position e,
// and evaluates the rules it may complete (see concept).
func (mt *matcher) rulesAt(x mask, e int, ord int32, start bool) {
	if c := x & cueConcepts; c != 0 && mt.cues != nil && e > 0 {
		pos := int32(e - 1)
		if n := len(*mt.cues); n > 0 && (*mt.cues)[n-1].pos > pos {
			pos = (*mt.cues)[n-1].pos // keep the list ordered
		}
		*mt.cues = append(*mt.cues, cue{pos: pos, mask: c, start: start})
	}
	for y := x; y != 0; y &= y - 1 {
		c := trailingZeros(y)
		mt.last[c][1] = mt.last[c][0]
		mt.last[c][0] = ord
	}
	for y := x; y != 0; y &= y - 1 {
		c := trailingZeros(y)
		for _, pr := range mt.ri.byConcept[c] {
			rd := &ruleDefs[pr.rule]
			if rd.doc && !mt.doc {
				continue
			}
			p := &rd.patterns[pr.pat]
			if first, ok := mt.eval(p, x, ord); ok {
				fs := int(mt.ring[first%ringSize].s)
				mt.hit(int(pr.rule), fs, e)
			}
		}
	}
}

// eval tests pattern p with the token at ord (concepts x) as anchor; it returns the ordinal
// where the match starts.
func (mt *matcher) eval(p *pattern, x mask, ord int32) (int32, bool) {
	h := mt.ring[ord%ringSize].h
	inSpan := func(o int32) bool {
		return o >= 0 && ord-o < ringSize && h-mt.ring[o%ringSize].h <= int32(p.span)
	}
	first := ord
	switch p.kind {
	case seq:
		k := len(p.steps)
		if x&p.steps[k-1] == 0 {
			return 0, false
		}
		pos := ord
		for i := k - 2; i >= 0; i-- {
			pos = mt.before(p.steps[i], pos)
			if !inSpan(pos) {
				return 0, false
			}
		}
		first = pos
	case near:
		anchored := false
		for _, st := range p.steps {
			if x&st != 0 && !anchored {
				anchored = true
				continue
			}
			o := mt.before(st, ord)
			if x&st != 0 {
				o = ord
			}
			if !inSpan(o) {
				return 0, false
			}
			first = min(first, o)
		}
		if !anchored {
			return 0, false
		}
	}
	if p.verbFinal {
		a := &mt.ring[ord%ringSize]
		if r := mt.t.R[a.s]; r < 0x250 || (r >= 0x1E00 && r < 0x1F00) {
			return 0, false
		}
		// a negation inside the match (or up to 3 words before it), or just after the anchor
		n := mt.before(bit(cNeg)|bit(cWithout), ord)
		if n >= 0 && ord-n < ringSize && mt.ring[first%ringSize].h-mt.ring[n%ringSize].h <= 6 {
			return 0, false
		}
		if mt.negAhead(int(a.e)) {
			return 0, false
		}
	}
	if p.neg {
		n := mt.before(bit(cNeg)|bit(cWithout), first)
		if n >= 0 && first-n < ringSize && mt.ring[first%ringSize].h-mt.ring[n%ringSize].h <= 6 {
			return 0, false
		}
	}
	return first, true
}

// negAhead reports whether a negation follows folded position e closely: in the next two words,
// or, in text written without spaces, in a lexicon word starting within the next 8 characters.
func (mt *matcher) negAhead(e int) bool {
	R := mt.t.R
	words := 0
	for i := e; i < len(R) && i < e+24 && words < 2; {
		r := R[i]
		switch {
		case unsegmented(r):
			for s := i; s < min(i+8, len(R)) && unsegmented(R[s]); s++ {
				h := hstep(hInit, R[s])
				for k := s + 1; k < min(s+4, len(R)) && unsegmented(R[k]); k++ {
					h = hstep(h, R[k])
					if mt.lookupExact(h, true)&bit(cNeg) != 0 {
						return true
					}
				}
			}
			return false
		case isWordRune(r):
			j := i
			for j < len(R) && isWordRune(R[j]) && !unsegmented(R[j]) {
				j++
			}
			if mt.lookupWord(R[i:j])&bit(cNeg) != 0 {
				return true
			}
			words++
			i = j
		default:
			if wordClass(r) == wcBreak {
				return false
			}
			i++
		}
	}
	return false
}

// asciiPair returns the index of two lower-case ASCII letters.
func asciiPair(a, b rune) (int, bool) {
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return 0, false
	}
	return int(a-'a')*26 + int(b-'a'), true
}

// lookupWord returns the concepts of a token whose runes are rs.
func (mt *matcher) lookupWord(rs []rune) mask {
	if len(rs) >= 2 {
		if p, ok := asciiPair(rs[0], rs[1]); ok && mt.lex.pairs[p/64]&(1<<(p%64)) == 0 {
			return 0
		}
	}
	h := uint64(hInit)
	var x mask
	n := min(len(rs), maxLexLen)
	for i := 0; i < n; i++ {
		h = hstep(h, rs[i])
		if e := mt.lex.get(h); e != nil {
			x |= e.stem
			if i == len(rs)-1 {
				x |= e.exact
			}
		}
	}
	return x
}

// maxLexLen is the most runes of a token that lookupWord hashes: the lexicon matches its
// prefixes of 1 to maxLexLen runes.
const maxLexLen = 24

// lookupHashed returns lookupWord(rs), given mt.hs[k], the hash of the first k+1 runes of rs
// (k < min(len(rs), maxLexLen)), and cand, with bit k set when mt.lex.mayHold(mt.hs[k]). It probes
// those hashes only: get returns nil for the others.
func (mt *matcher) lookupHashed(rs []rune, cand uint32) mask {
	if len(rs) >= 2 {
		if p, ok := asciiPair(rs[0], rs[1]); ok && mt.lex.pairs[p/64]&(1<<(p%64)) == 0 {
			return 0
		}
	}
	var x mask
	for ; cand != 0; cand &= cand - 1 {
		k := bits.TrailingZeros32(cand)
		if e := mt.lex.get(mt.hs[k]); e != nil {
			x |= e.stem
			if k == len(rs)-1 {
				x |= e.exact
			}
		}
	}
	return x
}

func (mt *matcher) lookupExact(h uint64, full bool) mask {
	if e := mt.lex.get(h); e != nil {
		if full {
			return e.exact | e.stem
		}
		return e.stem
	}
	return 0
}

// unsegmentedRun feeds a run [i, j) of text written without spaces to the rules: every character
// is a token, whose concepts are those of the lexicon words ending at it (any substring of 2 up to
// the longest lexicon word of its script). Substrings are hashed from each start forwards; a
// character's concepts are complete once every start before it has been extended, so the tokens
// are still recorded in order.
func (mt *matcher) unsegmentedRun(i, j int) {
	R := mt.t.R
	var ring [2 * maxUnsegLen]struct {
		x mask
		s int
	}
	const rn = len(ring)
	for s := i; s < j; s++ {
		lim := mt.lex.maxIdeo
		if alphabetic(R[s]) {
			lim = mt.lex.maxAlpha
		}
		h := hstep(hInit, R[s])
		for e := s + 1; e < j && e-s < lim; e++ {
			h = hstep(h, R[e])
			if mt.lex.mayHold(h) == 0 {
				continue // lookupExact would find nothing (and costs a call)
			}
			if x := mt.lookupExact(h, true); x != 0 {
				slot := &ring[e%rn]
				if slot.x == 0 {
					slot.s = s // starts are visited in order: the first is the earliest
				}
				slot.x |= x
			}
		}
		slot := &ring[s%rn]
		x, start := slot.x, s
		if x != 0 {
			start = slot.s
		}
		slot.x = 0
		mt.concept(x, start, s+1, 1)
	}
}

// wordFeats is what scanRules records, on the way, of the word features of the model (see
// Config.buckets) and of the positions where a segment may end, for sums35Words: its tokens are
// the words of the word features (both are the runs of word runes of the spaced scripts) unless
// the text holds a rune that is a word rune for the tokens and a sentence break for the words.
type wordFeats struct {
	words []wordEnd
	ends  []int32 // the sentence breaks of the word features and the fullwidth '!' and '?', in order
	ok    bool    // false: the text holds a rune the tokens and the words split differently
}

// wordEnd is a word of the word features.
type wordEnd struct {
	pos  int32  // folded position of its last rune
	h    uint64 // its hash
	prev uint64 // the hash of the word before it: sentStart at the start of a sentence, 0 for none
}

// scanRules runs the token rules and the structural rules over t, records the cue words in cues
// when cues is not nil, and the word features in wf when wf is not nil.
func scanRules(t *Text, in []byte, doc bool, hits *hitList, mt *matcher, cues *[]cue, wf *wordFeats) {
	mt.init(t, in, doc, hits, cues)
	R := t.R
	lineStart := true
	if wf != nil {
		wf.words, wf.ends, wf.ok = wf.words[:0], wf.ends[:0], true
	}
	prevWord := uint64(sentStart) // the prev of the next word (see wordEnd)
	for i := 0; i < len(R); {
		r := R[i]
		if !isWordRune(r) {
			if wordClass(r) == wcBreak {
				mt.sentStart = true
				prevWord = sentStart
				if wf != nil {
					wf.ends = append(wf.ends, int32(i))
				}
			} else if (r == 0xFF01 || r == 0xFF1F) && wf != nil {
				wf.ends = append(wf.ends, int32(i))
			}
			switch r {
			case '\n':
				lineStart = true
			case '<', '[':
				mt.literal(i)
			case '#':
				if lineStart {
					mt.literal(i)
				}
			}
			i++
			continue
		}
		if unsegmented(r) {
			j := i
			for j < len(R) && unsegmented(R[j]) {
				j++
			}
			mt.unsegmentedRun(i, j)
			i = j
			lineStart = false
			prevWord = 0 // no word bigram across an unsegmented rune
			continue
		}
		// a spaced-script token; the hashes of its prefixes are computed on the way, for
		// lookupHashed
		j := i
		hasDigit, hasLetter := false, false
		var fl uint32 // the flags of the token's ASCII letters after its first rune
		// the flags of the token's ASCII letters, or-ed and and-ed: a confusable letter among
		// them, and one that is not
		anyF, allF := uint32(0), ^uint32(0)
		h := uint64(hInit)
		var cand uint32
		wh := uint64(wordSeed) // the word's hash for the word features
		for ; j < len(R); j++ {
			c := R[j]
			if c < utf8.RuneSelf {
				if asciiClass[c] != wcWord {
					break
				}
				if c <= '9' {
					hasDigit = true
					wh = (wh ^ '0') * wordP // gramChar reads every digit as '0'
				} else {
					wh = (wh ^ uint64(c)) * wordP
					hasLetter = true
					f := t.Src[j]
					anyF, allF = anyF|f, allF&f
					if j > i && R[j-1] < utf8.RuneSelf {
						fl |= f
					}
				}
			} else {
				if !isWordRune(c) || unsegmented(c) {
					break
				}
				hasLetter = true
				wh = (wh ^ uint64(c)) * wordP
				if (c == 0xFF61 || c == 0x06D4) && wf != nil {
					wf.ok = false // a word rune that breaks sentences for the word features (see wordClass)
				}
			}
			if k := j - i; k < maxLexLen {
				h = hstep(h, c)
				mt.hs[k] = h
				cand |= mt.lex.mayHold(h) << k
			}
		}
		if wf != nil {
			wf.words = append(wf.words, wordEnd{pos: int32(j - 1), h: wh, prev: prevWord})
		}
		prevWord = wh
		conf, plain := anyF&flagConfusable != 0, allF&flagConfusable == 0
		zwIn := fl&flagAfterZW != 0
		tok := R[i:j]
		var x mask
		if cand != 0 { // else no prefix is in the lexicon
			x = mt.lookupHashed(tok, cand)
		}
		if hasDigit && hasLetter {
			if y := mt.leet(tok); y&attackConcepts != 0 {
				x |= y
				mt.hit(RLeet, i, j)
			}
		}
		if conf && plain && len(tok) >= 3 {
			mt.hit(RConfusable, i, j)
		}
		if zwIn {
			mt.hit(RInvisible, i, j)
		}
		if x == 0 && len(tok) >= 4 && len(tok) <= 12 && hasLetter && !hasDigit && mt.lex.obfPair(tok[0], tok[len(tok)-1]) {
			mt.obfuscated(tok, i, j) // (the last two conditions are its own, tested here to save the call)
		}
		// split letters: "i g n o r e", "i.g.n.o.r.e"
		if len(tok) == 1 && hasLetter {
			if mt.splitN == 0 || i-mt.lastTokEnd > 2 {
				mt.flushSplit()
				mt.splitS = i
			}
			if mt.splitN < len(mt.split) {
				mt.split[mt.splitN] = tok[0]
			}
			mt.splitN++
			mt.splitE = j
		} else {
			mt.flushSplit()
		}
		if lineStart && x&bit(cRole) != 0 {
			mt.roleLine(tok, j)
		}
		mt.concept(x, i, j, 2)
		mt.lastTokEnd = j
		lineStart = false
		i = j
	}
	mt.flushSplit()
	if mt.rot >= 2 {
		mt.hit(RRot13, int(mt.rotS), int(mt.rotE))
	}
	if mt.rev >= 2 {
		mt.hit(RReversed, int(mt.revS), int(mt.revE))
	}
	if mt.roleN >= 2 || mt.roleStrong > 0 {
		for k := 0; k < mt.roleN; k++ {
			mt.hit(RRoleLine, int(mt.roleAt[k][0]), int(mt.roleAt[k][1]))
		}
	}
	if t.Tags >= 3 {
		k := foldedIndex(t, t.TagAt)
		mt.hits.add(rawHit{rule: RTagSmuggling, fs: int32(k), fe: int32(min(k+t.Tags, len(R))),
			bs: int32(t.TagAt), be: int32(min(t.TagAt+4*t.Tags, t.End))})
	}
	if t.BidiCtl > 0 {
		dom := t.DominantScript()
		if dom != ScriptArabic && dom != ScriptHebrew {
			k := foldedIndex(t, t.BidiAt)
			mt.hits.add(rawHit{rule: RBidi, fs: int32(k), fe: int32(min(k+1, len(R))),
				bs: int32(t.BidiAt), be: int32(min(t.BidiAt+3, t.End))})
		}
	}
}

// foldedIndex returns the first folded rune whose source is at or after input offset off.
func foldedIndex(t *Text, off int) int {
	lo, hi := 0, len(t.Src)
	for lo < hi {
		h := (lo + hi) / 2
		if t.SrcOff(h) < off {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo
}

var leetMap = [10]rune{'o', 'i', 'z', 'e', 'a', 's', 'g', 't', 'b', 'g'}

// leet returns the concepts of tok with digits read as letters ("1gn0r3").
func (mt *matcher) leet(tok []rune) mask {
	n := min(len(tok), len(mt.scratch))
	for k := 0; k < n; k++ {
		c := tok[k]
		if c >= '0' && c <= '9' {
			c = leetMap[c-'0']
		}
		mt.scratch[k] = c
	}
	return mt.lookupWord(mt.scratch[:n])
}

// obfuscated checks whether an unknown word is an attack word written in rot13 or backwards.
func (mt *matcher) obfuscated(tok []rune, i, j int) {
	if len(tok) > 12 || !mt.lex.obfPair(tok[0], tok[len(tok)-1]) {
		return
	}
	hr, hv := uint64(hInit), uint64(hInit)
	for k, c := range tok {
		if c >= 'a' && c <= 'z' {
			c = 'a' + (c-'a'+13)%26
		}
		hr = hstep(hr, c)
		hv = hstep(hv, tok[len(tok)-1-k])
	}
	if mt.lex.isObf(hr) {
		if mt.rot == 0 {
			mt.rotS = int32(i)
		}
		mt.rot++
		mt.rotE = int32(j)
	}
	if mt.lex.isObf(hv) {
		if mt.rev == 0 {
			mt.revS = int32(i)
		}
		mt.rev++
		mt.revE = int32(j)
	}
}

// flushSplit ends a run of single letters; four or more letters that spell an attack word are a hit.
func (mt *matcher) flushSplit() {
	n := mt.splitN
	mt.splitN = 0
	if n < 4 {
		return
	}
	n = min(n, len(mt.split))
	if x := mt.lookupWord(mt.split[:n]); x&attackConcepts != 0 {
		mt.hit(RSplitWord, mt.splitS, mt.splitE)
		mt.concept(x, mt.splitS, mt.splitE, 0)
	}
}

// roleLine records a role label at the start of a line followed by ':' (or ']', '>', '|').
func (mt *matcher) roleLine(tok []rune, j int) {
	R := mt.t.R
	k := j
	for k < len(R) && R[k] == ' ' {
		k++
	}
	if k >= len(R) {
		return
	}
	switch R[k] {
	case ':', ']', '>', '|':
	default:
		return
	}
	if mt.roleN < len(mt.roleAt) {
		mt.roleAt[mt.roleN] = [2]int32{int32(j - len(tok)), int32(k + 1)}
		mt.roleN++
	}
	if string2(tok, "system") || string2(tok, "assistant") {
		mt.roleStrong++
	}
}

func string2(r []rune, s string) bool {
	if len(r) != len(s) {
		return false
	}
	for i := range r {
		if r[i] != rune(s[i]) {
			return false
		}
	}
	return true
}

// literals are delimiters of chat templates and data wrappers, in folded form.
var literals = []struct {
	s    string
	rule uint8
}{
	{"<|im_start|>", RChatTemplate}, {"<|im_end|>", RChatTemplate}, {"<|im_sep|>", RChatTemplate},
	{"<|system|>", RChatTemplate}, {"<|user|>", RChatTemplate}, {"<|assistant|>", RChatTemplate},
	{"<|endoftext|>", RChatTemplate}, {"<|begin_of_text|>", RChatTemplate}, {"<|end_of_text|>", RChatTemplate},
	{"<|start_header_id|>", RChatTemplate}, {"<|end_header_id|>", RChatTemplate}, {"<|eot_id|>", RChatTemplate},
	{"<|channel|>", RChatTemplate}, {"<|message|>", RChatTemplate}, {"<|end|>", RChatTemplate},
	{"<start_of_turn>", RChatTemplate}, {"<end_of_turn>", RChatTemplate},
	{"[inst]", RChatTemplate}, {"[/inst]", RChatTemplate}, {"<<sys>>", RChatTemplate}, {"<</sys>>", RChatTemplate},
	{"[system]", RChatTemplate}, {"[system message]", RChatTemplate}, {"<system>", RChatTemplate},
	{"</system>", RChatTemplate}, {"[admin]", RChatTemplate},
	{"### system", RChatTemplate}, {"### instruction", RChatTemplate}, {"### new instruction", RChatTemplate},
	{"</document>", RWrapperClose}, {"</context>", RWrapperClose}, {"</data>", RWrapperClose},
	{"</input>", RWrapperClose}, {"</user_input>", RWrapperClose}, {"</email>", RWrapperClose},
	{"</search_results>", RWrapperClose}, {"</tool_result>", RWrapperClose}, {"</function_results>", RWrapperClose},
	{"</instructions>", RWrapperClose}, {"</user>", RWrapperClose}, {"</untrusted>", RWrapperClose},
}

// literal matches the delimiter literals at folded position i.
func (mt *matcher) literal(i int) {
	R := mt.t.R
	for _, l := range literals {
		s := l.s
		if i+len(s) > len(R) {
			continue
		}
		ok := true
		for k := 0; k < len(s); k++ {
			if R[i+k] != rune(s[k]) {
				ok = false
				break
			}
		}
		if ok {
			mt.hit(int(l.rule), i, i+len(s))
			return
		}
	}
}
