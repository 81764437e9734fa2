package engine

import (
	"encoding/base64"
	"math/bits"
	"unicode/utf8"
)

// Encoded payloads: base64 and hex runs that decode to readable text are hits of their own, and
// the decoded text is scanned with the token rules once (no further decoding), so an instruction
// hidden in an encoding is reported as encoding.hidden_instruction.

const (
	minBase64 = 24 // characters
	minHex    = 32 // hex digits
)

var b64class [256]uint8 // 1 standard alphabet, 2 URL-safe extra ('-', '_'), 3 '=' padding

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		b64class[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		b64class[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		b64class[c] = 1
	}
	b64class['+'], b64class['/'] = 1, 1
	b64class['-'], b64class['_'] = 2, 2
	b64class['='] = 3
}

// b64kind tells the kind of a character of a base64 run (b64class 1 or 2), 0 for the others.
var b64kind [256]uint8

const (
	b64Upper = 1 << iota
	b64Lower
	b64Digit
	b64Sym // '+', '/'
	b64URL // '-', '_'
)

func init() {
	for c := range 256 {
		switch {
		case c >= 'A' && c <= 'Z':
			b64kind[c] = b64Upper
		case c >= 'a' && c <= 'z':
			b64kind[c] = b64Lower
		case c >= '0' && c <= '9':
			b64kind[c] = b64Digit
		case c == '+' || c == '/':
			b64kind[c] = b64Sym
		case c == '-' || c == '_':
			b64kind[c] = b64URL
		}
	}
}

// b64RunEnd returns the end of the run of base64 characters (b64kind ≠ 0) of b from i on. It
// reads eight bytes at a time: the run of a word ends inside the first eight, so the loop does
// not end on a branch mispredicted at almost every word, as a loop over the bytes does.
func b64RunEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := uint64(b64kind[b[i]]) | uint64(b64kind[b[i+1]])<<8 | uint64(b64kind[b[i+2]])<<16 |
			uint64(b64kind[b[i+3]])<<24 | uint64(b64kind[b[i+4]])<<32 | uint64(b64kind[b[i+5]])<<40 |
			uint64(b64kind[b[i+6]])<<48 | uint64(b64kind[b[i+7]])<<56
		// the lowest byte of w that is 0 (b64kind < 0x80) has the lowest bit of z set: bytes
		// below it borrow nothing, those above it may be marked wrongly but come after it
		if z := (w - ones) &^ w & highs; z != 0 {
			return i + bits.TrailingZeros64(z)/8
		}
	}
	for i < len(b) && b64kind[b[i]] != 0 {
		i++
	}
	return i
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// encodings looks for encoded payloads in input[start:end] and records their hits.
func (s *Scratch) encodings(input []byte, start, end int, doc bool) {
	b := input[start:end]
	for i := 0; i < len(b); {
		c := b[i]
		if b64class[c] == 0 || b64class[c] == 3 {
			i++
			continue
		}
		// hex escapes: \x41\x42…
		if c == 'x' && i > 0 && b[i-1] == '\\' {
			j, n := i, 0
			for j+2 < len(b) && b[j] == 'x' && isHex(b[j+1]) && isHex(b[j+2]) && n < len(s.decBuf) {
				s.decBuf[n] = unhex(b[j+1])<<4 | unhex(b[j+2])
				n++
				j += 3
				if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'x' {
					j++
				} else {
					break
				}
			}
			if n >= 12 {
				s.mask(start+i-1, start+j)
				s.payload(RHex, s.decBuf[:n], start+i-1, start+j, doc)
				i = j
				continue
			}
		}
		j := b64RunEnd(b, i)
		run := b[i:j]
		// the kinds of the run's characters, which only a run long enough for base64 needs
		var kinds uint8
		if len(run) >= minBase64 {
			for _, c := range run {
				kinds |= b64kind[c]
			}
		}
		upper, lower, digit := kinds&b64Upper != 0, kinds&b64Lower != 0, kinds&b64Digit != 0
		sym, url := kinds&b64Sym != 0, kinds&b64URL != 0
		for j < len(b) && b[j] == '=' {
			j++
		}
		switch {
		case len(run) >= minHex && allHex(run) && len(run)%2 == 0:
			n := min(len(run)/2, len(s.decBuf))
			for k := 0; k < n; k++ {
				s.decBuf[k] = unhex(run[2*k])<<4 | unhex(run[2*k+1])
			}
			s.mask(start+i, start+j)
			s.payload(RHex, s.decBuf[:n], start+i, start+j, doc)
		case len(run) >= minBase64 && upper && lower && (digit || sym || url) && !(sym && url):
			src := run[:min(len(run), len(s.decBuf)/3*4)]
			src = src[:len(src)/4*4]
			enc := base64.RawStdEncoding
			if url {
				enc = base64.RawURLEncoding
			}
			if n, err := enc.Decode(s.decBuf[:], src); err == nil || n > 0 {
				if len(run) >= minMaskBase64 {
					s.mask(start+i, start+j)
				}
				s.payload(RBase64, s.decBuf[:n], start+i, start+j, doc)
			}
		case len(run) == 2 && isHex(run[0]) && isHex(run[1]):
			// space-separated hex bytes: "49 67 6e 6f 72 65"
			k, n := i, 0
			for k+1 < len(b) && isHex(b[k]) && isHex(b[k+1]) && (k+2 == len(b) || b[k+2] == ' ') && n < len(s.decBuf) {
				s.decBuf[n] = unhex(b[k])<<4 | unhex(b[k+1])
				n++
				k += 3
			}
			if n >= 12 {
				s.mask(start+i, start+min(k, len(b)))
				s.payload(RHex, s.decBuf[:n], start+i, start+min(k, len(b)), doc)
				j = min(k, len(b))
			}
		}
		i = j
	}
}

// minMaskBase64 is the shortest base64 run whose characters are masked (Config.MaskEncoded).
const minMaskBase64 = 32

// maxMasks bounds the masked runs recorded per chunk.
const maxMasks = 16

// mask records input bytes [bs, be) as an encoded run: with Config.MaskEncoded, the n-gram
// features ending inside it are not counted. An encoded payload is not language: its character
// n-grams (digits read as '0', random letters) would only outweigh the words around it, so that
// "decode this and follow it: <400 hex digits>" would look like a table of numbers.
func (s *Scratch) mask(bs, be int) {
	if s.nmask >= maxMasks {
		return
	}
	fs, fe := foldedIndex(&s.t, bs), foldedIndex(&s.t, be)
	if fe > fs {
		s.masks[s.nmask] = [2]int32{int32(fs), int32(fe)}
		s.nmask++
	}
}

// applyMasks removes from the prefix sums the features ending inside the masked runs.
func applyMasks(pre []int64, cnt []int32, masks [][2]int32) {
	var dp int64
	var dc int32
	prevP, prevC := pre[0], cnt[0]
	k := 0
	for i := 0; i+1 < len(pre); i++ {
		curP, curC := pre[i+1], cnt[i+1]
		for k < len(masks) && int(masks[k][1]) <= i {
			k++
		}
		if k < len(masks) && int(masks[k][0]) <= i {
			dp += curP - prevP // position i's features
			dc += curC - prevC
		}
		prevP, prevC = curP, curC
		pre[i+1], cnt[i+1] = curP-dp, curC-dc
	}
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}

// readable reports whether decoded bytes look like natural-language text.
func readable(d []byte) bool {
	if len(d) < 12 || !utf8.Valid(d) {
		return false
	}
	letters, spaces, bad := 0, 0, 0
	for _, c := range d {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			letters++
		case c == ' ' || c == '\n':
			spaces++
		case c < 0x20 && c != '\t' && c != '\r':
			bad++
		}
	}
	return bad == 0 && spaces > 0 && letters*10 >= len(d)*6
}

// instructionRules are the rules whose hit in decoded text makes it a hidden instruction.
func instructionRule(r uint8) bool {
	return r <= REndMarker || r == RChatTemplate
}

func (s *Scratch) payload(rule int, d []byte, bs, be int, doc bool) {
	if !readable(d) {
		return
	}
	fs, fe := foldedIndex(&s.t, bs), foldedIndex(&s.t, be)
	s.hits.add(rawHit{rule: uint8(rule), fs: int32(fs), fe: int32(max(fe, fs+1)), bs: int32(bs), be: int32(be)})
	s.dec.Fold(d, 0)
	s.decHits.reset()
	scanRules(&s.dec, d, doc, &s.decHits, &s.decMt, nil, nil)
	for k := 0; k < s.decHits.n; k++ {
		if instructionRule(s.decHits.h[k].rule) {
			s.hits.add(rawHit{rule: RHiddenInstruction, fs: int32(fs), fe: int32(max(fe, fs+1)), bs: int32(bs), be: int32(be)})
			return
		}
	}
}
