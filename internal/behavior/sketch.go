package behavior

import (
	"bytes"
	"math/bits"
)

// Prompt sketches: a 64-bit one-permutation MinHash of a prompt's word
// bigrams (16 bins of 4 bits, densified by rotation). Two prompts that share
// most of their bigrams — the same template with a few words changed, the
// signature of systematic querying — agree in most bins; unrelated prompts
// agree in about 1 bin of 16 by chance. Computing one costs one hash per
// byte and one compare per bigram; at most maxSketchBytes of text are read.

const (
	sketchBins     = 16
	maxSketchBytes = 4096
	// nearDupBins is how many of the 16 bins two sketches must share to
	// count as near duplicates (estimated Jaccard similarity of their
	// bigram sets ≳ 0.5: a 15-word template with 2 words changed; unrelated
	// prompts share 9 bins with probability about 10⁻⁶).
	nearDupBins = 9
)

// promptKeys are the JSON keys whose last string value is taken as the
// newest prompt: chat "content", completions "prompt", embeddings and
// responses "input", multimodal parts "text".
var promptKeys = [...][]byte{[]byte(`"content"`), []byte(`"prompt"`), []byte(`"input"`), []byte(`"text"`)}

// PromptText returns the raw (still JSON-escaped) bytes of the last string
// value of a prompt key in a JSON request body, or nil. It does not parse
// the document: it looks for the keys' occurrences followed by a colon
// and a string. A quoted key cannot occur inside a JSON string (its quotes
// would be escaped), so a match is a key or a whole string value; a value
// is skipped because no colon follows it. It never allocates.
func PromptText(body []byte) []byte {
	best := -1 // where the best value starts
	for off := 0; off < len(body); {
		c := bytes.IndexByte(body[off:], ':')
		if c < 0 {
			break
		}
		c += off
		off = c + 1
		// Before the colon: optional space, then one of the quoted keys.
		j := c - 1
		for j >= 0 && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j--
		}
		if j < 0 || body[j] != '"' || !isPromptKey(body[:j+1]) {
			continue
		}
		if v := valueStart(body, c); v >= 0 {
			best = v
		}
	}
	if best < 0 {
		return nil
	}
	v := body[best:]
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[:i]
		}
	}
	return v // unterminated: what there is
}

// isPromptKey reports whether b ends with one of the quoted prompt keys.
func isPromptKey(b []byte) bool {
	for _, k := range promptKeys {
		if bytes.HasSuffix(b, k) {
			return true
		}
	}
	return false
}

// valueStart returns where the string value starts when body[i:] is
// `\s* : \s* "`, else -1.
func valueStart(body []byte, i int) int {
	i = skipSpace(body, i)
	if i >= len(body) || body[i] != ':' {
		return -1
	}
	i = skipSpace(body, i+1)
	if i >= len(body) || body[i] != '"' {
		return -1
	}
	return i + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Sketch returns the prompt sketch of text (raw JSON string bytes or plain
// text): 0 when it holds no word. Words are runs of ASCII letters and
// digits and of non-ASCII bytes, compared case-insensitively; a JSON escape
// (\n, \") separates words.
func Sketch(text []byte) uint64 {
	if len(text) > maxSketchBytes {
		text = text[:maxSketchBytes]
	}
	const empty = uint64(1) << 60 // above every 60-bit value
	var mins [sketchBins]uint64
	for i := range mins {
		mins[i] = empty
	}
	var prev, cur uint64
	words, inWord := 0, false
	for i := 0; i <= len(text); i++ {
		var c byte = ' ' // the end of the text ends the last word
		if i < len(text) {
			c = text[i]
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 {
			if !inWord {
				inWord, cur = true, 0xcbf29ce484222325
			}
			cur = (cur ^ uint64(c)) * 0x100000001b3
			continue
		}
		if c == '\\' {
			i++ // a JSON escape: skip the escaped character
		}
		if !inWord {
			continue
		}
		inWord = false
		words++
		if words >= 2 {
			h := mix64(prev*0x9E3779B97F4A7C15 ^ cur)
			if b, low := h>>60, h&(empty-1); low < mins[b] {
				mins[b] = low
			}
		}
		prev = cur
	}
	switch words {
	case 0:
		return 0
	case 1:
		h := mix64(prev)
		mins[h>>60] = h & (empty - 1)
	}
	var s uint64
	for i := 0; i < sketchBins; i++ {
		// An empty bin takes the next full bin to the right, shifted by the
		// distance (densification by rotation).
		for j := 0; j < sketchBins; j++ {
			if m := mins[(i+j)%sketchBins]; m != empty {
				s |= uint64((uint8(mix64(m)&0xF)+uint8(j))&0xF) << (4 * i)
				break
			}
		}
	}
	if s == 0 {
		s = 1 // 0 means "no sketch"
	}
	return s
}

// sketchMatches is how many of the 16 bins two sketches share.
func sketchMatches(a, b uint64) int {
	x := a ^ b
	// a bin matches when its 4 bits of x are all zero
	x |= x >> 1
	x |= x >> 2
	x &= 0x1111111111111111
	return sketchBins - bits.OnesCount64(x)
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
