package engine

import "unicode/utf8"

// Per folded rune flags, stored in the top bits of Text.Src.
const (
	flagConfusable = 1 << 31 // the rune came from a confusable mapping
	flagAfterZW    = 1 << 30 // a zero-width character was removed just before this rune
	flagTag        = 1 << 29 // the rune was decoded from a Unicode tag character
	offMask        = 1<<29 - 1
)

// MaxChunk is the largest input, in bytes, that one Text holds; longer inputs are processed in
// overlapping chunks so that memory stays bounded whatever the input size.
const MaxChunk = 32 << 10

// Script classes counted by Fold (the letters of the source text, before folding).
const (
	ScriptLatin = iota
	ScriptCyrillic
	ScriptGreek
	ScriptArabic
	ScriptHebrew
	ScriptDevanagari
	ScriptBengali
	ScriptIndic // other Brahmic scripts of India
	ScriptThai
	ScriptHan
	ScriptKana
	ScriptHangul
	ScriptOther
	NumScripts
)

// Text is a folded view of (a chunk of) an input.
type Text struct {
	R   []rune   // folded runes
	Src []uint32 // per folded rune: byte offset in the input (low 29 bits) and flags
	// Counts of removed or decoded invisible characters, by class.
	Inv [5]int
	// Bidi override/isolate controls (U+202A–U+202E, U+2066–U+2069) seen, and the offset of the first.
	BidiCtl, BidiAt int
	// Tag characters decoded outside emoji flag sequences, and the offset of the first.
	Tags, TagAt int
	// Script letter counts of the source.
	Script [NumScripts]int
	// Base is the input offset of the chunk; End the input offset just past it.
	Base, End int
}

func (t *Text) reset(n int) {
	if cap(t.R) < n {
		t.R = make([]rune, 0, n)
		t.Src = make([]uint32, 0, n)
	}
	t.R, t.Src = t.R[:0], t.Src[:0]
	t.Inv = [5]int{}
	t.BidiCtl, t.BidiAt, t.Tags, t.TagAt = 0, -1, 0, -1
	t.Script = [NumScripts]int{}
}

func scriptOf(r rune) int {
	switch {
	case r < 0x250:
		return ScriptLatin
	case r >= 0x370 && r < 0x400:
		return ScriptGreek
	case r >= 0x400 && r < 0x530:
		return ScriptCyrillic
	case r >= 0x590 && r < 0x600:
		return ScriptHebrew
	case r >= 0x600 && r < 0x780, r >= 0x8A0 && r < 0x900, r >= 0xFB50 && r < 0xFE00, r >= 0xFE70 && r < 0xFF00:
		return ScriptArabic
	case r >= 0x900 && r < 0x980:
		return ScriptDevanagari
	case r >= 0x980 && r < 0xA00:
		return ScriptBengali
	case r >= 0xA00 && r < 0xE00:
		return ScriptIndic
	case r >= 0xE00 && r < 0xE80:
		return ScriptThai
	case r >= 0x1E00 && r < 0x1F00:
		return ScriptLatin
	case r >= 0x1F00 && r < 0x2000:
		return ScriptGreek
	case r >= 0x3040 && r < 0x3100, r >= 0x31F0 && r < 0x3200, r >= 0xFF66 && r < 0xFFA0:
		return ScriptKana
	case r >= 0x1100 && r < 0x1200, r >= 0x3130 && r < 0x3190, r >= 0xAC00 && r < 0xD7B0:
		return ScriptHangul
	case r >= 0x3400 && r < 0xA000, r >= 0xF900 && r < 0xFB00, r >= 0x20000 && r < 0x30000:
		return ScriptHan
	case r >= 0xFF21 && r < 0xFF5B:
		return ScriptLatin
	}
	return ScriptOther
}

// Fold writes the folded form of src into t. base is src's offset in the whole input.
func (t *Text) Fold(src []byte, base int) {
	ft := table()
	t.reset(len(src) + 8)
	t.Base, t.End = base, base+len(src)
	var pending uint32 // flags for the next emitted rune
	prevFlagEmoji := false
	emit := func(r rune, off int, flags uint32) {
		if r == ' ' || r == '\n' {
			if n := len(t.R); n > 0 && (t.R[n-1] == ' ' || t.R[n-1] == '\n') {
				if r == '\n' {
					t.R[n-1] = '\n'
				}
				return
			}
		}
		t.R = append(t.R, r)
		t.Src = append(t.Src, uint32(off)&offMask|flags|pending)
		pending = 0
	}
	for i := 0; i < len(src); {
		if src[i] < utf8.RuneSelf {
			i, pending = t.foldASCII(src, i, pending)
			prevFlagEmoji = false
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size == 1 {
			emit(utf8.RuneError, i, 0)
			i++
			continue
		}
		if r >= 0xE0020 && r <= 0xE007E { // tag character: decode
			t.Inv[invTag]++
			if !prevFlagEmoji {
				if t.Tags == 0 {
					t.TagAt = base + i
				}
				t.Tags++
			}
			c := byte(r - 0xE0000)
			if c >= 'A' && c <= 'Z' {
				c += 32
			}
			emit(rune(c), i, flagTag)
			i += size
			continue
		}
		if r == 0x1F3F4 { // black flag: starts subdivision flag tag sequences
			prevFlagEmoji = true
		} else if r != 0xE007F {
			prevFlagEmoji = false
		}
		t.Script[scriptOf(r)]++
		e := ft.lookup(r)
		switch e >> 28 {
		case 0:
			emit(r, i, 0)
		case kindDrop:
			cl := int(e & 0xF)
			t.Inv[cl]++
			switch cl {
			case invZeroWidth:
				pending |= flagAfterZW
			case invBidi:
				if (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
					if t.BidiCtl == 0 {
						t.BidiAt = base + i
					}
					t.BidiCtl++
				}
			}
		case kindMap:
			start, n := (e&0x0FFFFFFF)>>3, e&7
			var fl uint32
			if ft.confusable(r) {
				fl = flagConfusable
			}
			for _, fr := range ft.pool[start : start+n] {
				emit(fr, i, fl)
			}
		}
		i += size
	}
}

// The folding of ASCII bytes (foldASCII): the folded rune in the low 7 bits, and flags.
const (
	asciiSpace = 1 << 8  // white space: one ' ' or '\n' stands for a run of it
	asciiDrop  = 1 << 9  // a control character: removed
	asciiLatin = 1 << 10 // a letter, counted as ScriptLatin
)

var asciiFold = func() (t [utf8.RuneSelf]uint16) {
	for c := range utf8.RuneSelf {
		e := uint16(c)
		switch {
		case c >= 'A' && c <= 'Z':
			e = uint16(c+32) | asciiLatin
		case c >= 'a' && c <= 'z':
			e |= asciiLatin
		case c == '\n' || c == '\r' || c == '\v' || c == '\f':
			e = '\n' | asciiSpace
		case c == ' ' || c == '\t':
			e = ' ' | asciiSpace
		case c < 0x20 || c == 0x7F:
			e = asciiDrop
		}
		t[c] = e
	}
	return t
}()

// foldASCII folds the run of ASCII bytes of src from i on, as Fold's loop would one byte at a
// time (a letter is lower-cased and counted, white space after white space only turns a ' ' into
// '\n', a control character is removed and counted), but from a table and writing into the
// slices' spare capacity. pending holds the flags for the next rune emitted; it returns where the
// run ends and the flags still pending.
func (t *Text) foldASCII(src []byte, i int, pending uint32) (int, uint32) {
	if need := len(t.R) + len(src) - i; cap(t.R) < need || cap(t.Src) < need { // at most a rune per byte
		t.R = append(make([]rune, 0, need+need/4), t.R...)
		t.Src = append(make([]uint32, 0, need+need/4), t.Src...)
	}
	n := len(t.R)
	R, Src := t.R[:cap(t.R)], t.Src[:cap(t.Src)]
	var prevSpace uint16 // asciiSpace when the last rune emitted is ' ' or '\n'
	if n > 0 && (R[n-1] == ' ' || R[n-1] == '\n') {
		prevSpace = asciiSpace
	}
	latin, drops := 0, 0
	for ; i < len(src); i++ {
		c := src[i]
		if c >= utf8.RuneSelf {
			break
		}
		e := asciiFold[c]
		if e&(asciiDrop|prevSpace) != 0 { // rare: a control character, or white space after white space
			if e&asciiDrop != 0 {
				drops++
			} else if e&0x7F == '\n' {
				R[n-1] = '\n'
			}
			continue
		}
		latin += int(e>>10) & 1
		prevSpace = e & asciiSpace
		R[n] = rune(e & 0x7F)
		Src[n] = uint32(i)&offMask | pending
		pending = 0
		n++
	}
	t.R, t.Src = R[:n], Src[:n]
	t.Script[ScriptLatin] += latin
	t.Inv[invOther] += drops
	return i, pending
}

// SrcOff returns the input byte offset of folded rune i.
func (t *Text) SrcOff(i int) int {
	if i >= len(t.Src) {
		return t.End
	}
	return t.Base + int(t.Src[i]&offMask)
}

// SrcEnd returns the input byte offset just past the source of folded rune i.
func (t *Text) SrcEnd(i int, input []byte) int {
	if i+1 < len(t.Src) && t.Src[i+1]&offMask != t.Src[i]&offMask {
		return t.Base + int(t.Src[i+1]&offMask)
	}
	off := t.SrcOff(i)
	if off >= len(input) {
		return len(input)
	}
	_, n := utf8.DecodeRune(input[off:])
	return off + n
}

// DominantScript returns the script with the most letters, or -1 for a text without letters.
func (t *Text) DominantScript() int {
	best, bn := -1, 0
	for s, n := range t.Script {
		if n > bn {
			best, bn = s, n
		}
	}
	return best
}
