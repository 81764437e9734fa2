package engine

import (
	"math"
	"unicode/utf8"
)

// Character n-grams are hashed with a polynomial hash, so that all orders ending at a position
// are computed with independent multiplications: h[n](i) = h[n-1](i-1)·gramP + c(i).
const (
	gramSeed = 0x2545F4914F6CDD1D
	gramP    = 0x9E3779B97F4A7C15
	gramMix  = 0xD6E8FEB86659FD93
)

// Word features: a word is a run of word runes of a script written with spaces (see isWordRune
// and unsegmented; unsegmented scripts are covered by the character n-grams). Its hash is
// FNV-like over its runes (digits read as '0'); the unigram feature is the word, the bigram
// feature the pair of it and the word before it, where the word before the first word of a
// sentence (after '.', '!', '?', ';', ':', '|' or a line break, and at the start of the text) is
// the sentence-start marker, so "<s> translate" is the feature of an imperative opening a
// sentence.
const (
	wordSeed  = 0x84222325CBF29CE4
	wordP     = 0x100000001B3
	wordUni   = 0x5851F42D4C957F2D
	wordBiP   = 0xBF58476D1CE4E5B9
	sentStart = 0x94D049BB133111EB
	cueSeed   = 0x2127599BF4325C37
	ideoUni   = 0x3C6EF372FE94F82B
	ideoBi    = 0xA54FF53A5F1D36F1
)

// ideo reports whether r is a character of an ideographic or syllabic script whose single
// characters and pairs are features (Config.Ideo): Han, hiragana and katakana, Hangul syllables.
func ideo(r rune) bool {
	return r >= 0x3040 && r <= 0x30FF || r >= 0x31F0 && r <= 0x31FF || r >= 0x3400 && r <= 0x9FFF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x20000 && r <= 0x2FFFF || r >= 0xAC00 && r <= 0xD7A3
}

func gramChar(r rune) uint64 {
	switch {
	case r >= '0' && r <= '9':
		r = '0'
	case r == '\n':
		r = ' '
	}
	return uint64(r)
}

// wordClass classifies a folded rune for the word features.
const (
	wcOther = iota // punctuation, symbols, white space: ends a word
	wcWord         // part of a word
	wcBreak        // ends a word and a sentence
	wcUnseg        // a character of an unsegmented script: ends a word, no bigram across it
	// wcEnd is a fullwidth '!' or '?' (wcOther otherwise), in prefix35Pair only: a segment
	// may end there (see NextSegment).
	wcEnd
)

var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			t[c] = wcWord
		case c == '.', c == '!', c == '?', c == ';', c == ':', c == '|', c == '\n':
			t[c] = wcBreak
		}
	}
	return t
}()

func wordClass(r rune) uint8 {
	if r < 128 {
		if r < 0 {
			return wcOther
		}
		return asciiClass[r]
	}
	switch {
	case r == 0x3002 || r == 0xFF61 || r == 0x0964 || r == 0x061F || r == 0x06D4:
		return wcBreak
	case unsegmented(r):
		return wcUnseg
	case isWordRune(r):
		return wcWord
	}
	return wcOther
}

func bucketOf(h uint64, shift uint) uint32 { return uint32((h * gramMix) >> shift) }

// buckets calls emit(i, bucket) for every feature ending at folded position i, in order: the
// character n-grams, the word unigram and bigram of a word whose last rune is i, then the
// features of the cue words ending at i (cues, ordered by position). It is the
// reference the trainer uses; prefix computes the same sums with a specialised loop (a test keeps
// them equal).
func (c Config) buckets(R []rune, cues []cue, emit func(i int, bucket uint32)) {
	var h [MaxOrder + 1]uint64
	if !c.Cues {
		cues = nil
	}
	h[0] = gramSeed
	shift := 64 - uint(c.Bits)
	wh, prev := uint64(wordSeed), uint64(sentStart)
	for i, r := range R {
		g := gramChar(r)
		for n := MaxOrder; n >= 1; n-- {
			h[n] = h[n-1]*gramP + g
		}
		if c.MaxN > 0 {
			for n := int(c.MinN); n <= int(c.MaxN) && n <= i+1; n++ {
				emit(i, bucketOf(h[n], shift))
			}
		}
		if c.Ideo && ideo(r) {
			emit(i, bucketOf(h[1]^ideoUni, shift))
			if i > 0 && ideo(R[i-1]) {
				emit(i, bucketOf(h[2]^ideoBi, shift))
			}
		}
		if c.Words > 0 {
			switch wordClass(r) {
			case wcWord:
				wh = (wh ^ g) * wordP
				if i+1 == len(R) || wordClass(R[i+1]) != wcWord {
					emit(i, bucketOf(wh^wordUni, shift))
					if c.Words >= 2 && prev != 0 {
						emit(i, bucketOf(prev*wordBiP+wh, shift))
					}
					prev, wh = wh, wordSeed
				}
			case wcBreak:
				prev = sentStart
			case wcUnseg:
				prev = 0
			}
		}
		for len(cues) > 0 && int(cues[0].pos) <= i {
			for x := cues[0].mask; x != 0; x &= x - 1 {
				emit(i, bucketOf(cueHash(trailingZeros(x), false), shift))
				if cues[0].start {
					emit(i, bucketOf(cueHash(trailingZeros(x), true), shift))
				}
			}
			cues = cues[1:]
		}
	}
}

// cueList returns where scanRules records cue words: nowhere when the model has no cue features.
func (m *Model) cueList(s *Scratch) *[]cue {
	if m.Cfg.Cues {
		return &s.cues
	}
	return nil
}

// cueHash is the feature hash of cue concept c, at the start of a sentence or anywhere.
func cueHash(c int, start bool) uint64 {
	h := uint64(cueSeed) + uint64(c)*wordBiP
	if start {
		h ^= sentStart
	}
	return h
}

// prefix fills pre[i+1] with the sum of the weights in W (a table of 1<<Bits) of the features
// ending at positions ≤ i, and cnt[i+1] with their number.
func (m *Model) prefix(W []int16, R []rune, cues []cue, pre []int64, cnt []int32) {
	if !m.Cfg.Cues {
		cues = nil
	}
	if m.Cfg.MinN == 3 && m.Cfg.MaxN == 5 && m.Cfg.Words == 2 {
		m.prefix35(W, R, cues, pre, cnt)
		return
	}
	shift := 64 - uint(m.Cfg.Bits)
	minN, maxN := int(m.Cfg.MinN), int(m.Cfg.MaxN)
	words, bigrams := m.Cfg.Words > 0, m.Cfg.Words >= 2
	ideoOn := m.Cfg.Ideo
	var use [MaxOrder + 1]bool
	orders := int32(0)
	if maxN > 0 {
		for n := minN; n <= maxN; n++ {
			use[n] = true
			orders++
		}
	} else {
		minN = 1 // no orders: the partial loop below never runs (i+1 >= maxN always holds)
	}
	var h1, h2, h3, h4, h5, h6 uint64
	seed := uint64(gramSeed)
	wh, prev := uint64(wordSeed), uint64(sentStart)
	var acc int64
	var k int32
	pre[0], cnt[0] = 0, 0
	pre, cnt = pre[1:len(R)+1], cnt[1:len(R)+1]
	cls := uint8(wcOther)
	if words && len(R) > 0 {
		cls = wordClass(R[0])
	}
	for i, r := range R {
		g := gramChar(r)
		h6 = h5*gramP + g
		h5 = h4*gramP + g
		h4 = h3*gramP + g
		h3 = h2*gramP + g
		h2 = h1*gramP + g
		h1 = seed*gramP + g
		if i+1 >= maxN { // every order ends here: loop-invariant branches
			if use[1] {
				acc += int64(W[bucketOf(h1, shift)])
			}
			if use[2] {
				acc += int64(W[bucketOf(h2, shift)])
			}
			if use[3] {
				acc += int64(W[bucketOf(h3, shift)])
			}
			if use[4] {
				acc += int64(W[bucketOf(h4, shift)])
			}
			if use[5] {
				acc += int64(W[bucketOf(h5, shift)])
			}
			if use[6] {
				acc += int64(W[bucketOf(h6, shift)])
			}
			k += orders
		} else {
			hs := [MaxOrder + 1]uint64{0, h1, h2, h3, h4, h5, h6}
			for n := minN; n <= i+1; n++ {
				acc += int64(W[bucketOf(hs[n], shift)])
				k++
			}
		}
		if ideoOn && r >= 0x3040 {
			if ideo(r) {
				acc += int64(W[bucketOf(h1^ideoUni, shift)])
				k++
				if i > 0 && ideo(R[i-1]) {
					acc += int64(W[bucketOf(h2^ideoBi, shift)])
					k++
				}
			}
		}
		if words {
			next := uint8(wcOther)
			if i+1 < len(R) {
				next = wordClass(R[i+1])
			}
			switch cls {
			case wcWord:
				wh = (wh ^ g) * wordP
				if next != wcWord {
					acc += int64(W[bucketOf(wh^wordUni, shift)])
					k++
					if bigrams && prev != 0 {
						acc += int64(W[bucketOf(prev*wordBiP+wh, shift)])
						k++
					}
					prev, wh = wh, wordSeed
				}
			case wcBreak:
				prev = sentStart
			case wcUnseg:
				prev = 0
			}
			cls = next
		}
		for len(cues) > 0 && int(cues[0].pos) <= i {
			for x := cues[0].mask; x != 0; x &= x - 1 {
				c := trailingZeros(x)
				acc += int64(W[bucketOf(cueHash(c, false), shift)])
				k++
				if cues[0].start {
					acc += int64(W[bucketOf(cueHash(c, true), shift)])
					k++
				}
			}
			cues = cues[1:]
		}
		pre[i], cnt[i] = acc, k
	}
}

// Hit is a rule hit in input byte offsets.
type Hit struct {
	Rule       int
	Start, End int
}

// Outcome is the result of Scan.
type Outcome struct {
	Logit      float64 // the highest span logit
	ModelLogit float64 // Bias + n-gram part of that span (rules excluded)
	Start, End int     // input bytes of that span
	Hits       []Hit   // rule hits, valid until the Scratch is reused
}

// Scratch holds the buffers of one Scan; reuse it (one goroutine at a time) to avoid allocation.
type Scratch struct {
	t       Text
	hits    hitList
	mt      matcher
	pre     []int64
	segPre  []int64 // prefix sums of the segment weights (Config.SegmentWeights)
	ends    []int32 // where segments may end (see nextSegmentAt)
	cnt     []int32
	cues    []cue
	words   wordFeats // the word features scanRules records (see sums35Words)
	dec     Text
	decHits hitList
	decMt   matcher
	decBuf  [3072]byte
	out     []Hit
	masks   [maxMasks][2]int32 // encoded runs of the chunk, in folded positions (see mask)
	nmask   int
}

// chunkOverlap is how much consecutive chunks of a long input overlap, in bytes; it exceeds any
// window so a planted instruction is never split between chunks without being whole in one.
const chunkOverlap = 4 << 10

// Scan scores input with m. doc selects document mode (rules for third-party content, and
// the window scores only, not the whole text, for long inputs).
func (m *Model) Scan(input []byte, doc bool, s *Scratch, out *Outcome) {
	*out = Outcome{Logit: math.Inf(-1), ModelLogit: math.Inf(-1)}
	s.out = s.out[:0]
	if len(input) == 0 {
		out.Logit, out.ModelLogit = m.Bias, m.Bias
		out.Hits = s.out
		return
	}
	single := len(input) <= MaxChunk
	for start := 0; start < len(input); {
		end := len(input)
		if end-start > MaxChunk {
			end = cutPoint(input, start+MaxChunk)
		}
		m.scanChunk(input, start, end, doc, single, s, out)
		if end >= len(input) {
			break
		}
		next := cutPoint(input, end-chunkOverlap)
		if next <= start {
			next = end
		}
		start = next
	}
	out.Hits = s.out
}

// cutPoint returns a UTF-8 boundary at or before i, preferring white space in the preceding 256 bytes.
func cutPoint(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	for k := i; k > i-256 && k > 0; k-- {
		if b[k] == ' ' || b[k] == '\n' {
			return k
		}
	}
	for k := i; k > i-utf8.UTFMax && k > 0; k-- {
		if utf8.RuneStart(b[k]) {
			return k
		}
	}
	return i
}

func (m *Model) scanChunk(input []byte, start, end int, doc, single bool, s *Scratch, out *Outcome) {
	t := &s.t
	t.Fold(input[start:end], start)
	s.hits.reset()
	s.cues = s.cues[:0]
	s.nmask = 0
	wf := m.wordList(s)
	scanRules(t, input, doc, &s.hits, &s.mt, m.cueList(s), wf)
	s.encodings(input, start, end, doc)
	for k := 0; k < s.hits.n; k++ {
		h := s.hits.h[k]
		dup := false
		for _, o := range s.out {
			if o.Rule == int(h.rule) && o.Start == int(h.bs) {
				dup = true
				break
			}
		}
		if !dup && len(s.out) < 4*MaxHits {
			s.out = append(s.out, Hit{Rule: int(h.rule), Start: int(h.bs), End: int(h.be)})
		}
	}
	n := len(t.R)
	if cap(s.pre) < n+1 {
		s.pre = make([]int64, n+1, n+1+n/4)
		s.cnt = make([]int32, n+1, n+1+n/4)
	}
	pre, cnt := s.pre[:n+1], s.cnt[:n+1]
	W := int(m.Cfg.Window)
	long := n > m.Cfg.long()
	segs := m.Cfg.Segments && (doc || m.Cfg.PromptWindows) && (long || !m.Cfg.SegmentsLong)
	// the prefix sums whole texts and windows (textSum) and segments (segSum) are scored with
	segPre, textSum, segSum := pre, sumPlain, sumPlain
	var ends []int32
	if segs && m.Cfg.SegmentWeights {
		if cap(s.ends) < n {
			s.ends = make([]int32, n, cap(s.pre))
		}
		var paired bool
		if ends, paired = m.prefixPairWords(t.R, s.cues, wf, pre, cnt, s.ends[:n]); paired {
			textSum, segSum = sumText, sumSeg
		} else {
			if cap(s.segPre) < n+1 {
				s.segPre = make([]int64, n+1, cap(s.pre))
			}
			segPre = s.segPre[:n+1]
			m.prefixWords(m.W, t.R, s.cues, wf, pre, cnt)
			m.prefixWords(m.SegW(), t.R, s.cues, wf, segPre, cnt)
		}
	} else {
		m.prefixWords(m.W, t.R, s.cues, wf, pre, cnt)
	}
	if m.Cfg.MaskEncoded && s.nmask > 0 {
		applyMasks(pre, cnt, s.masks[:s.nmask]) // paired sums too: the masking is linear
		if &segPre[0] != &pre[0] {
			applyMasks(segPre, cnt, s.masks[:s.nmask]) // cnt is already masked: this leaves it as it is
		}
	}
	if single && (!doc || !long) {
		m.span(t, input, pre, textSum, cnt, 0, n, 0, &s.hits, out)
	}
	if (long && (doc || m.Cfg.PromptWindows)) || (!single && n > W) {
		for a := 0; ; a += int(m.Cfg.Stride) {
			b := min(a+W, n)
			m.span(t, input, pre, textSum, cnt, a, b, m.WindowBias, &s.hits, out)
			if b == n {
				break
			}
		}
	}
	if segs {
		for a := 0; a < n; {
			var sa, sb, next int
			if ends != nil {
				sa, sb, next, ends = nextSegmentAt(t.R, a, ends)
			} else {
				sa, sb, next = NextSegment(t.R, a)
			}
			if sb-sa >= SegmentMin && sb-sa <= SegmentMax && sb-sa < n {
				off := m.SegmentBias
				if m.Cfg.SegmentFeatures {
					f, k := m.Cfg.SegmentFeatureBuckets(t.R, sa, sb)
					var sum int64
					for _, b := range f[:k] {
						sum += int64(m.W[b])
					}
					off += m.Scale * float64(sum)
				}
				m.span(t, input, segPre, segSum, cnt, sa, sb, off, &s.hits, out)
			}
			a = next
		}
	}
}

// Segments of a text: its sentences and lines, of SegmentMin to SegmentMax folded characters
// (shorter ones are too short to hold an instruction, longer ones are covered by the windows),
// scored when the text has more than one.
const (
	SegmentMin = 16
	SegmentMax = 256
)

// Hash salts of the segment features.
const (
	segFirst  = 0x9FB21C651E98DF25
	segFirst2 = 0xC13FA9A902A6328F
	segEnd    = 0x91E10DA5C79E7B1D
)

// MaxSegmentFeatures is the number of features of a segment's form.
const MaxSegmentFeatures = 3

// SegmentFeatureBuckets returns the buckets of the form features of segment [a, b) of R: its
// first word, its first two words (a word of an unsegmented script is one character), and the
// kind of its last character (question mark, full stop, exclamation mark, colon, other). They
// count once each, outside the n-gram normalisation.
func (c Config) SegmentFeatureBuckets(R []rune, a, b int) (f [MaxSegmentFeatures]uint32, n int) {
	shift := 64 - uint(c.Bits)
	var words [2]uint64
	nw := 0
	for i := a; i < b && nw < 2; {
		r := R[i]
		switch cl := wordClass(r); cl {
		case wcWord:
			wh := uint64(wordSeed)
			for i < b && wordClass(R[i]) == wcWord {
				wh = (wh ^ gramChar(R[i])) * wordP
				i++
			}
			words[nw] = wh
			nw++
		case wcUnseg:
			words[nw] = (uint64(wordSeed) ^ gramChar(r)) * wordP
			nw++
			i++
		default:
			i++
		}
	}
	if nw > 0 {
		f[n] = bucketOf(words[0]^segFirst, shift)
		n++
	}
	if nw > 1 {
		f[n] = bucketOf((words[0]*wordBiP+words[1])^segFirst2, shift)
		n++
	}
	end := uint64(0)
	switch R[b-1] {
	case '?', 0xFF1F, 0x061F:
		end = 1
	case '.', 0x3002, 0x0964:
		end = 2
	case '!', 0xFF01:
		end = 3
	case ':', 0xFF1A:
		end = 4
	}
	f[n] = bucketOf(segEnd+end*wordBiP, shift)
	n++
	return f, n
}

// segEndASCII marks the ASCII runes that may end a segment.
var segEndASCII = [128]bool{'\n': true, '.': true, '!': true, '?': true}

// NextSegment returns the segment [a, b) that starts at or after folded position from, and the
// position the next segment starts from. A segment ends at a line break, or after a sentence
// end (. ! ? ؟ । followed by white space or the end of the text; 。！？ anywhere); leading white
// space is not part of it.
func NextSegment(R []rune, from int) (a, b, next int) {
	a = from
	for a < len(R) && (R[a] == ' ' || R[a] == '\n') {
		a++
	}
	for i := a; i < len(R); i++ {
		if r := R[i]; r < 128 && !segEndASCII[r&127] || r >= 128 && r != 0x061F && r != 0x0964 && r < 0x3002 {
			continue // the common case: not a segment end (a branch, not the switch below)
		}
		switch R[i] {
		case '\n':
			return a, i, i + 1
		case '.', '!', '?', 0x061F, 0x0964:
			if i+1 == len(R) || R[i+1] == ' ' || R[i+1] == '\n' {
				return a, i + 1, i + 1
			}
		case 0x3002, 0xFF01, 0xFF1F:
			return a, i + 1, i + 1
		}
	}
	return a, len(R), len(R)
}

// nextSegmentAt is NextSegment with ends, the positions of R where a segment may end in
// ascending order (a superset of the line breaks and the sentence ends NextSegment looks for): it
// looks at those positions only, and returns the rest of them for the next call.
func nextSegmentAt(R []rune, from int, ends []int32) (a, b, next int, rest []int32) {
	a = from
	for a < len(R) && (R[a] == ' ' || R[a] == '\n') {
		a++
	}
	for len(ends) > 0 && int(ends[0]) < a {
		ends = ends[1:]
	}
	for ; len(ends) > 0; ends = ends[1:] {
		i := int(ends[0])
		switch R[i] {
		case '\n':
			return a, i, i + 1, ends[1:]
		case '.', '!', '?', 0x061F, 0x0964:
			if i+1 == len(R) || R[i+1] == ' ' || R[i+1] == '\n' {
				return a, i + 1, i + 1, ends[1:]
			}
		case 0x3002, 0xFF01, 0xFF1F:
			return a, i + 1, i + 1, ends[1:]
		}
	}
	return a, len(R), len(R), ends
}

// How prefix sums are read (see spanSum).
const (
	sumPlain uint8 = iota // one table's sums
	sumText               // the whole-text table's half of paired sums (see pairTable)
	sumSeg                // the segment table's half of paired sums
)

// spanSum returns the weight sum of the features of span [a, b) from prefix sums pre of kind.
func spanSum(pre []int64, kind uint8, a, b int) int64 {
	if kind == sumPlain {
		return pre[b] - pre[a]
	}
	ta, tb := int64(int32(pre[a])), int64(int32(pre[b]))
	if kind == sumText {
		return tb - ta
	}
	return (pre[b]-tb)>>32 - (pre[a]-ta)>>32
}

// SpanLogit returns the logit of folded span [a, b) given the n-gram prefix sums and the hits.
func (m *Model) spanLogit(pre []int64, kind uint8, cnt []int32, a, b int, hits *hitList) (logit, model float64) {
	model = m.Bias + m.Scale*float64(spanSum(pre, kind, a, b))*m.Cfg.NormFactor(int(cnt[b]-cnt[a]))
	logit = model
	var seen uint64
	for k := 0; k < hits.n; k++ {
		h := &hits.h[k]
		if int(h.fs) >= a && int(h.fe) <= b && seen&(1<<h.rule) == 0 {
			seen |= 1 << h.rule
			logit += m.Rule[h.rule]
		}
	}
	return logit, model
}

func (m *Model) span(t *Text, input []byte, pre []int64, kind uint8, cnt []int32, a, b int, off float64, hits *hitList, out *Outcome) {
	l, ml := m.spanLogit(pre, kind, cnt, a, b, hits)
	l, ml = l+off, ml+off
	if l > out.Logit {
		out.Logit, out.ModelLogit = l, ml
		out.Start = t.SrcOff(a)
		if b > a {
			out.End = t.SrcEnd(b-1, input)
		} else {
			out.End = out.Start
		}
	}
}

// SpanHit is a rule hit in folded coordinates.
type SpanHit struct{ Rule, Start, End int }

// Analysis is the trainer's view of one text: its folded length, the n-gram buckets of every
// position and the rule hits. Only the first MaxChunk bytes of the input are analysed.
type Analysis struct {
	N       int
	Buckets []uint32 // flattened; position i's buckets are Buckets[Pos[i]:Pos[i+1]]
	Pos     []int32
	Hits    []SpanHit
	Script  int      // dominant script, or -1
	Segs    [][2]int // the segments Scan scores (see NextSegment)
	// SegF holds, per segment, its form features (Config.SegmentFeatures).
	SegF [][MaxSegmentFeatures]uint32
	SegN []uint8
}

// Analyze extracts the features Scan scores, for training.
func Analyze(cfg Config, input []byte, doc bool) *Analysis {
	if len(input) > MaxChunk {
		input = input[:cutPoint(input, MaxChunk)]
	}
	s := new(Scratch)
	t := &s.t
	t.Fold(input, 0)
	s.hits.reset()
	scanRules(t, input, doc, &s.hits, &s.mt, &s.cues, nil)
	s.encodings(input, 0, len(input), doc)
	a := &Analysis{N: len(t.R), Pos: make([]int32, len(t.R)+1), Script: t.DominantScript()}
	masks := s.masks[:s.nmask]
	if !cfg.MaskEncoded {
		masks = nil
	}
	cfg.buckets(t.R, s.cues, func(i int, b uint32) {
		for len(masks) > 0 && int(masks[0][1]) <= i {
			masks = masks[1:]
		}
		if len(masks) > 0 && int(masks[0][0]) <= i {
			return // inside an encoded run
		}
		a.Buckets = append(a.Buckets, b)
		a.Pos[i+1] = int32(len(a.Buckets))
	})
	for i := 1; i <= a.N; i++ { // positions without any n-gram
		if a.Pos[i] < a.Pos[i-1] {
			a.Pos[i] = a.Pos[i-1]
		}
	}
	for k := 0; k < s.hits.n; k++ {
		h := s.hits.h[k]
		a.Hits = append(a.Hits, SpanHit{Rule: int(h.rule), Start: int(h.fs), End: int(h.fe)})
	}
	for i := 0; i < a.N; {
		sa, sb, next := NextSegment(t.R, i)
		if sb-sa >= SegmentMin && sb-sa <= SegmentMax && sb-sa < a.N {
			a.Segs = append(a.Segs, [2]int{sa, sb})
			f, k := cfg.SegmentFeatureBuckets(t.R, sa, sb)
			a.SegF = append(a.SegF, f)
			a.SegN = append(a.SegN, uint8(k))
		}
		i = next
	}
	return a
}

// long returns the length above which a text is scored by windows.
func (c Config) long() int { return max(int(c.Long), int(c.Window)) }

// IsLong reports whether a text of n folded characters is long: scored by windows (and
// segments) as well.
func (c Config) IsLong(n int) bool { return n > c.long() }

// Windows returns the folded spans Scan scores for a text of n folded characters (at most one
// chunk long): the whole text when whole is true, and the windows when windows is true and the
// text is long.
func (c Config) Windows(n int, whole, windows bool) [][2]int {
	var out [][2]int
	W := int(c.Window)
	if whole {
		out = append(out, [2]int{0, n})
	}
	if windows && n > c.long() {
		for a := 0; ; a += int(c.Stride) {
			b := min(a+W, n)
			out = append(out, [2]int{a, b})
			if b == n {
				break
			}
		}
	}
	return out
}

// prefixPair fills pre with the paired sums (see pairTable) of the whole-text and segment
// weights and returns the positions where a segment may end (see nextSegmentAt), written to ends
// (of capacity len(R) at least): one pass over the features, their hashes computed once and both
// weights summed with one load and one addition. It reports false, and leaves pre and cnt
// unusable, for a model without the paired table, a configuration other than 3..5-grams with
// word bigrams, or a text with more than maxPairFeatures features.
func (m *Model) prefixPair(R []rune, cues []cue, pre []int64, cnt []int32, ends []int32) ([]int32, bool) {
	if len(m.pair) != 1<<m.Cfg.Bits || m.Cfg.MinN != 3 || m.Cfg.MaxN != 5 || m.Cfg.Words != 2 {
		return nil, false
	}
	if !m.Cfg.Cues {
		cues = nil
	}
	return m.prefix35Pair(R, cues, pre, cnt, ends)
}

// pairTable returns the paired weight table of a model with segment weights: entry b is
// W[b] + SegW()[b]·2³² (modulo 2⁶⁴), so that a sum of entries is T + S·2³² for the sums T and S
// of the two tables' weights; with at most maxPairFeatures features, |T| < 2³¹ and |S| < 2³¹,
// so T is the sum's low 32 bits read as a signed number and S the rest (see spanSum).
func (m *Model) pairTable() []int64 {
	if !m.Cfg.SegmentWeights || len(m.W) != 2<<m.Cfg.Bits {
		return nil
	}
	n := 1 << m.Cfg.Bits
	p := make([]int64, n)
	for b := range p {
		p[b] = int64(m.W[b]) + int64(m.W[n+b])<<32
	}
	return p
}

// maxPairFeatures is the most features whose paired sums can be split: the sums of their
// weights stay within |T| ≤ 65535·32768 < 2³¹.
const maxPairFeatures = 1<<16 - 1

// prefix35Pair is prefix35 over the paired table (see prefixPair). The positions where a segment
// may end are the sentence breaks of the word features and the fullwidth '!' and '?'.
func (m *Model) prefix35Pair(R []rune, cues []cue, pre []int64, cnt []int32, ends []int32) ([]int32, bool) {
	P := m.pair
	var acc int64
	add := func(b uint32) { acc += P[b] }
	shift := 64 - uint(m.Cfg.Bits)
	ideoOn := m.Cfg.Ideo
	var h1, h2, h3, h4, h5 uint64
	seed := uint64(gramSeed)
	wh, prev := uint64(wordSeed), uint64(sentStart)
	var k int32
	ne := 0
	ends = ends[:len(R)] // at most one per position
	pre[0], cnt[0] = 0, 0
	pre, cnt = pre[1:len(R)+1], cnt[1:len(R)+1]
	n := len(R)
	cls := uint8(wcOther)
	if n > 0 {
		cls = wordClass(R[0])
		if r := R[0]; r == 0xFF01 || r == 0xFF1F {
			cls = wcEnd
		}
	}
	for i := 0; i < n; i++ {
		g := gramChar(R[i])
		h5 = h4*gramP + g
		h4 = h3*gramP + g
		h3 = h2*gramP + g
		h2 = h1*gramP + g
		h1 = seed*gramP + g
		switch i {
		case 0, 1:
		case 2:
			add(bucketOf(h3, shift))
			k++
		case 3:
			add(bucketOf(h3, shift))
			add(bucketOf(h4, shift))
			k += 2
		default:
			add(bucketOf(h3, shift))
			add(bucketOf(h4, shift))
			add(bucketOf(h5, shift))
			k += 3
		}
		if r := R[i]; ideoOn && r >= 0x3040 && ideo(r) {
			add(bucketOf(h1^ideoUni, shift))
			k++
			if i > 0 && ideo(R[i-1]) {
				add(bucketOf(h2^ideoBi, shift))
				k++
			}
		}
		next := uint8(wcOther)
		if i+1 < n {
			if c := R[i+1]; c < 128 && c >= 0 {
				next = asciiClass[c]
			} else {
				next = wordClass(c)
				if c == 0xFF01 || c == 0xFF1F {
					next = wcEnd
				}
			}
		}
		switch cls {
		case wcWord:
			wh = (wh ^ g) * wordP
			if next != wcWord {
				add(bucketOf(wh^wordUni, shift))
				k++
				if prev != 0 {
					add(bucketOf(prev*wordBiP+wh, shift))
					k++
				}
				prev, wh = wh, wordSeed
			}
		case wcBreak:
			prev = sentStart
			ends[ne] = int32(i)
			ne++
		case wcEnd:
			ends[ne] = int32(i)
			ne++
		case wcUnseg:
			prev = 0
		}
		cls = next
		for len(cues) > 0 && int(cues[0].pos) <= i {
			for x := cues[0].mask; x != 0; x &= x - 1 {
				c := trailingZeros(x)
				add(bucketOf(cueHash(c, false), shift))
				k++
				if cues[0].start {
					add(bucketOf(cueHash(c, true), shift))
					k++
				}
			}
			cues = cues[1:]
		}
		pre[i], cnt[i] = acc, k
	}
	if k > maxPairFeatures {
		return nil, false
	}
	return ends[:ne], true
}

// prefix35 is prefix for the shipped configuration (character 3..5-grams, word unigrams and
// bigrams), specialised: no per-order branches, and the word class of ASCII runes read from a
// table in the loop. A test keeps it equal to buckets.
func (m *Model) prefix35(W []int16, R []rune, cues []cue, pre []int64, cnt []int32) {
	shift := 64 - uint(m.Cfg.Bits)
	ideoOn := m.Cfg.Ideo
	var h1, h2, h3, h4, h5 uint64
	seed := uint64(gramSeed)
	wh, prev := uint64(wordSeed), uint64(sentStart)
	var acc int64
	var k int32
	pre[0], cnt[0] = 0, 0
	pre, cnt = pre[1:len(R)+1], cnt[1:len(R)+1]
	n := len(R)
	cls := uint8(wcOther)
	if n > 0 {
		cls = wordClass(R[0])
	}
	for i := 0; i < n; i++ {
		g := gramChar(R[i])
		h5 = h4*gramP + g
		h4 = h3*gramP + g
		h3 = h2*gramP + g
		h2 = h1*gramP + g
		h1 = seed*gramP + g
		switch i {
		case 0, 1: // no 3-gram ends here yet
		case 2:
			acc += int64(W[bucketOf(h3, shift)])
			k++
		case 3:
			acc += int64(W[bucketOf(h3, shift)]) + int64(W[bucketOf(h4, shift)])
			k += 2
		default:
			acc += int64(W[bucketOf(h3, shift)]) + int64(W[bucketOf(h4, shift)]) + int64(W[bucketOf(h5, shift)])
			k += 3
		}
		if r := R[i]; ideoOn && r >= 0x3040 && ideo(r) {
			acc += int64(W[bucketOf(h1^ideoUni, shift)])
			k++
			if i > 0 && ideo(R[i-1]) {
				acc += int64(W[bucketOf(h2^ideoBi, shift)])
				k++
			}
		}
		next := uint8(wcOther)
		if i+1 < n {
			if c := R[i+1]; c < 128 && c >= 0 {
				next = asciiClass[c]
			} else {
				next = wordClass(c)
			}
		}
		switch cls {
		case wcWord:
			wh = (wh ^ g) * wordP
			if next != wcWord {
				acc += int64(W[bucketOf(wh^wordUni, shift)])
				k++
				if prev != 0 {
					acc += int64(W[bucketOf(prev*wordBiP+wh, shift)])
					k++
				}
				prev, wh = wh, wordSeed
			}
		case wcBreak:
			prev = sentStart
		case wcUnseg:
			prev = 0
		}
		cls = next
		for len(cues) > 0 && int(cues[0].pos) <= i {
			for x := cues[0].mask; x != 0; x &= x - 1 {
				c := trailingZeros(x)
				acc += int64(W[bucketOf(cueHash(c, false), shift)])
				k++
				if cues[0].start {
					acc += int64(W[bucketOf(cueHash(c, true), shift)])
					k++
				}
			}
			cues = cues[1:]
		}
		pre[i], cnt[i] = acc, k
	}
}

// wordList returns where scanRules records the word features (see wordFeats): nowhere when the
// model's configuration is not the one sums35Words computes (character 3..5-grams, word unigrams
// and bigrams).
func (m *Model) wordList(s *Scratch) *wordFeats {
	if m.Cfg.MinN == 3 && m.Cfg.MaxN == 5 && m.Cfg.Words == 2 {
		return &s.words
	}
	return nil
}

// prefixWords is prefix, with the word features scanRules recorded in wf when they are usable.
func (m *Model) prefixWords(W []int16, R []rune, cues []cue, wf *wordFeats, pre []int64, cnt []int32) {
	if wf == nil || !wf.ok {
		m.prefix(W, R, cues, pre, cnt)
		return
	}
	if !m.Cfg.Cues {
		cues = nil
	}
	sums35Words(W, R, wf, cues, 64-uint(m.Cfg.Bits), m.Cfg.Ideo, pre, cnt)
}

// prefixPairWords is prefixPair, with the word features scanRules recorded in wf when they are
// usable; the positions where a segment may end are then those of wf.
func (m *Model) prefixPairWords(R []rune, cues []cue, wf *wordFeats, pre []int64, cnt []int32, ends []int32) ([]int32, bool) {
	if wf == nil || !wf.ok || len(m.pair) != 1<<m.Cfg.Bits {
		return m.prefixPair(R, cues, pre, cnt, ends)
	}
	if !m.Cfg.Cues {
		cues = nil
	}
	if sums35Words(m.pair, R, wf, cues, 64-uint(m.Cfg.Bits), m.Cfg.Ideo, pre, cnt) > maxPairFeatures {
		return nil, false
	}
	return wf.ends, true
}

// sums35Words computes what prefix35 and prefix35Pair do (with W the table, or the paired table)
// from the word features of wf (see wordFeats) instead of finding the words itself, and returns
// the number of features of the text. The word and cue features are first added where they end,
// pre[i+1] and cnt[i+1] for position i, then the loop over the text adds the character features
// and turns those into prefix sums: the sums are of integers, so their order does not change them.
// Finding the words in the loop cost as much as the rest of it (a branch mispredicted at most
// word ends, and more values live than registers), and scanRules finds them anyway. A test keeps
// it equal to prefix35 and prefix35Pair, which remain for the texts wf cannot describe.
func sums35Words[E int16 | int64](W []E, R []rune, wf *wordFeats, cues []cue, shift uint, ideoOn bool, pre []int64, cnt []int32) int32 {
	n := len(R)
	pre, cnt = pre[:n+1], cnt[:n+1]
	clear(pre)
	clear(cnt)
	for _, w := range wf.words {
		b := int(w.pos) + 1
		pre[b] += int64(W[bucketOf(w.h^wordUni, shift)])
		cnt[b]++
		if w.prev != 0 {
			pre[b] += int64(W[bucketOf(w.prev*wordBiP+w.h, shift)])
			cnt[b]++
		}
	}
	// the cue words, in order: prefix35 adds a cue at the first position at or after its own,
	// and never one after the last position
	for _, c := range cues {
		b := int(c.pos) + 1
		if b > n {
			break
		}
		for x := c.mask; x != 0; x &= x - 1 {
			cc := trailingZeros(x)
			pre[b] += int64(W[bucketOf(cueHash(cc, false), shift)])
			cnt[b]++
			if c.start {
				pre[b] += int64(W[bucketOf(cueHash(cc, true), shift)])
				cnt[b]++
			}
		}
	}
	var h1, h2, h3, h4, h5 uint64
	seed := uint64(gramSeed)
	var acc int64
	var k int32
	pre, cnt = pre[1:], cnt[1:]
	for i, r := range R {
		g := gramChar(r)
		h5 = h4*gramP + g
		h4 = h3*gramP + g
		h3 = h2*gramP + g
		h2 = h1*gramP + g
		h1 = seed*gramP + g
		switch i {
		case 0, 1: // no 3-gram ends here yet
		case 2:
			acc += int64(W[bucketOf(h3, shift)])
			k++
		case 3:
			acc += int64(W[bucketOf(h3, shift)]) + int64(W[bucketOf(h4, shift)])
			k += 2
		default:
			acc += int64(W[bucketOf(h3, shift)]) + int64(W[bucketOf(h4, shift)]) + int64(W[bucketOf(h5, shift)])
			k += 3
		}
		if ideoOn && r >= 0x3040 && ideo(r) {
			acc += int64(W[bucketOf(h1^ideoUni, shift)])
			k++
			if i > 0 && ideo(R[i-1]) {
				acc += int64(W[bucketOf(h2^ideoBi, shift)])
				k++
			}
		}
		acc += pre[i]
		k += cnt[i]
		pre[i], cnt[i] = acc, k
	}
	return k
}
