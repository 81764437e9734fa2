package limit

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizers below split text exactly as tiktoken-go's regexp2
// does with the split patterns of cl100k_base and o200k_base (see
// tiktoken-go's encoding.go), without a regexp engine. Each next* function
// returns the end of the piece that starts at byte i: the alternatives of
// the pattern are tried in order, and within one alternative the
// backtracking of a greedy engine is reproduced case by case (comments
// give the reasoning). Character classes use the same unicode tables as
// regexp2 (\s is unicode.IsSpace; \p{X} is unicode.Is(unicode.X)), so both
// agree for every Go unicode version. The text must be valid UTF-8:
// tiktoken-go replaces every invalid byte with U+FFFD first (it converts
// the text to runes), and so does fastEncoder.count.
//
// tokens_equiv_test.go proves the equivalence on a corpus and by fuzzing.

// Character class bits of a rune.
const (
	cAny uint8 = 1 << iota // every rune (0 means: past the end of the text)
	cL                     // \p{L}
	cN                     // \p{N}
	cS                     // \s
	cNL                    // \r or \n
	cU                     // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k's "upper")
	cW                     // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k's "lower")
)

// classTableSize covers the BMP and the supplementary planes used by
// text (emoji, CJK extensions); beyond it classes are computed per rune.
const classTableSize = 0x40000

var (
	classOnce  sync.Once
	classTable []uint8
)

// classOf computes the class bits of r from the unicode tables.
func classOf(r rune) uint8 {
	c := cAny
	if unicode.Is(unicode.L, r) {
		c |= cL
	}
	if unicode.Is(unicode.N, r) {
		c |= cN
	}
	if unicode.IsSpace(r) {
		c |= cS
	}
	if r == '\r' || r == '\n' {
		c |= cNL
	}
	if unicode.Is(unicode.Lu, r) || unicode.Is(unicode.Lt, r) || unicode.Is(unicode.Lm, r) ||
		unicode.Is(unicode.Lo, r) || unicode.Is(unicode.M, r) {
		c |= cU
	}
	if unicode.Is(unicode.Ll, r) || unicode.Is(unicode.Lm, r) || unicode.Is(unicode.Lo, r) ||
		unicode.Is(unicode.M, r) {
		c |= cW
	}
	return c
}

// buildClassTable fills the table by walking the range tables (a few
// hundred thousand code points; about a millisecond).
func buildClassTable() {
	t := make([]uint8, classTableSize)
	for i := range t {
		t[i] = cAny
	}
	mark := func(tab *unicode.RangeTable, bit uint8) {
		for _, r := range tab.R16 {
			for c := uint32(r.Lo); c <= uint32(r.Hi) && c < classTableSize; c += uint32(r.Stride) {
				t[c] |= bit
			}
		}
		for _, r := range tab.R32 {
			for c := r.Lo; c <= r.Hi && c < classTableSize; c += r.Stride {
				t[c] |= bit
			}
		}
	}
	mark(unicode.L, cL)
	mark(unicode.N, cN)
	for _, tab := range []*unicode.RangeTable{unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M} {
		mark(tab, cU)
	}
	for _, tab := range []*unicode.RangeTable{unicode.Ll, unicode.Lm, unicode.Lo, unicode.M} {
		mark(tab, cW)
	}
	for r := rune(0); r < classTableSize; r++ {
		if (r > 0xFF && unicode.Is(unicode.White_Space, r)) || (r <= 0xFF && unicode.IsSpace(r)) {
			t[r] |= cS
		}
	}
	t['\r'] |= cNL
	t['\n'] |= cNL
	classTable = t
}

// at decodes the rune at byte i of s: its class and size (0, 0 at the end).
func at(s string, i int) (uint8, int) {
	if i >= len(s) {
		return 0, 0
	}
	if b := s[i]; b < utf8.RuneSelf {
		return classTable[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r < classTableSize {
		return classTable[r], n
	}
	return classOf(r), n
}

// isPrefix: [^\r\n\p{L}\p{N}] (an actual rune).
func isPrefix(c uint8) bool { return c != 0 && c&(cNL|cL|cN) == 0 }

// isPunct: [^\s\p{L}\p{N}] (an actual rune).
func isPunct(c uint8) bool { return c != 0 && c&(cS|cL|cN) == 0 }

// contraction matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at byte i and returns
// its end, or i. regexp2 compares case-insensitively by lowering the
// input rune with unicode.ToLower, so that is done here too.
func contraction(s string, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return i
	}
	r1, n1 := lowerAt(s, i+1)
	switch r1 {
	case 's', 't', 'm', 'd':
		return i + 1 + n1
	case 'r', 'v', 'l':
		r2, n2 := lowerAt(s, i+1+n1)
		if (r1 == 'l' && r2 == 'l') || (r1 != 'l' && r2 == 'e') {
			return i + 1 + n1 + n2
		}
	}
	return i
}

func lowerAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if b := s[i]; b < utf8.RuneSelf {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return rune(b), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return unicode.ToLower(r), n
}

// run returns the end of the longest run of runes with any of bits from i.
func run(s string, i int, bits uint8) int {
	for i < len(s) {
		c, n := at(s, i)
		if c&bits == 0 {
			break
		}
		i += n
	}
	return i
}

// digits: \p{N}{1,3} at i (the rune at i is a number).
func digits(s string, i, n0 int) int {
	j := i + n0
	for k := 1; k < 3; k++ {
		c, n := at(s, j)
		if c&cN == 0 {
			break
		}
		j += n
	}
	return j
}

// punct: ` ?[^\s\p{L}\p{N}]+` followed by the longest run of \r and \n
// (and / when slash is set: o200k's [\r\n/]*); -1 when it does not match
// at i.
func punct(s string, i int, c0 uint8, slash bool) int {
	start := -1
	if s[i] == ' ' {
		// The optional space is taken first; without it the class would
		// have to match the space itself, which it cannot.
		if c1, _ := at(s, i+1); isPunct(c1) {
			start = i + 1
		}
	} else if isPunct(c0) {
		start = i
	}
	if start < 0 {
		return -1
	}
	j := start
	for j < len(s) {
		c, n := at(s, j)
		if !isPunct(c) {
			break
		}
		j += n
	}
	for j < len(s) && (s[j] == '\r' || s[j] == '\n' || (slash && s[j] == '/')) {
		j++
	}
	return j
}

// space handles the last three alternatives, common to both patterns, at
// a whitespace rune:
//
//	\s*[\r\n]+   the greedy \s* gives back runes until a newline follows:
//	             the piece ends after the last newline of the run;
//	\s+(?!\S)    the whole run at the end of the text, else the run but
//	             its last rune (if that leaves one);
//	\s+          the whole run.
func space(s string, i int) int {
	j, lastNL, runes := i, -1, 0
	for j < len(s) {
		c, n := at(s, j)
		if c&cS == 0 {
			break
		}
		j += n
		runes++
		if c&cNL != 0 {
			lastNL = j
		}
	}
	if lastNL >= 0 {
		return lastNL
	}
	if j == len(s) || runes < 2 {
		return j
	}
	_, n := utf8.DecodeLastRuneInString(s[:j])
	return j - n
}

// nextCL100k returns the end of the piece at i (< len(s)) for
// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
func nextCL100k(s string, i int) int {
	c0, n0 := at(s, i)
	if s[i] == '\'' {
		if e := contraction(s, i); e > i {
			return e
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+: the prefix is taken when a letter follows.
	if isPrefix(c0) {
		if c1, n1 := at(s, i+n0); c1&cL != 0 {
			return run(s, i+n0+n1, cL)
		}
	}
	if c0&cL != 0 {
		return run(s, i+n0, cL)
	}
	if c0&cN != 0 {
		return digits(s, i, n0)
	}
	if e := punct(s, i, c0, false); e >= 0 {
		return e
	}
	if c0&cS != 0 {
		return space(s, i)
	}
	return i + max(n0, 1) // unreachable: every rune is a letter, number, space or other
}

// nextO200k returns the end of the piece at i (< len(s)) for o200k_base's
// pattern:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
func nextO200k(s string, i int) int {
	c0, n0 := at(s, i)
	// The first alternative with the prefix, then without it (a mark is
	// both a possible prefix and "upper"/"lower", so both are tried),
	// then the second alternative the same way.
	if isPrefix(c0) {
		if e := upperLower(s, i+n0); e >= 0 {
			return e
		}
	}
	if e := upperLower(s, i); e >= 0 {
		return e
	}
	if isPrefix(c0) {
		if e := upperThenLower(s, i+n0); e >= 0 {
			return e
		}
	}
	if e := upperThenLower(s, i); e >= 0 {
		return e
	}
	if c0&cN != 0 {
		return digits(s, i, n0)
	}
	if e := punct(s, i, c0, true); e >= 0 {
		return e
	}
	if c0&cS != 0 {
		return space(s, i)
	}
	return i + max(n0, 1) // unreachable
}

// upperLower matches U*W+C? at i, or returns -1. The greedy U* takes the
// longest run of U; if a W follows, W+ takes the longest run of W from
// there. Otherwise U* gives back runes until the rune after it is a W:
// the last W inside the run (U and W share Lm, Lo and M), and W+ takes
// just that one (the runes after it in the run are not W).
func upperLower(s string, i int) int {
	j, lastW := i, -1
	for j < len(s) {
		c, n := at(s, j)
		if c&cU == 0 {
			break
		}
		j += n
		if c&cW != 0 {
			lastW = j
		}
	}
	if c, _ := at(s, j); c&cW != 0 {
		return contraction(s, run(s, j, cW))
	}
	if lastW < 0 {
		return -1
	}
	return contraction(s, lastW)
}

// upperThenLower matches U+W*C? at i, or returns -1; no backtracking is
// needed since W* and C? always match.
func upperThenLower(s string, i int) int {
	j := run(s, i, cU)
	if j == i {
		return -1
	}
	return contraction(s, run(s, j, cW))
}
