package engine

import (
	"hash/fnv"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Folding maps input text to the form the rules and the model see:
//
//   - compatibility forms are unified (Unicode NFKC: fullwidth and mathematical letters,
//     ligatures, circled and superscript characters become plain letters and digits);
//   - Latin, Greek and Cyrillic letters lose their diacritics (NFKD, then U+0300–U+036F
//     removed); other scripts keep their marks, which carry meaning there;
//   - letters are lower-cased, and common confusables (Cyrillic and Greek look-alikes,
//     Latin small capitals, dotless i) become the Latin letter they imitate;
//   - invisible characters (zero-width spaces and joiners, bidi controls, variation
//     selectors, soft hyphen, other default-ignorable code points) are removed and counted;
//   - Unicode tag characters (U+E0020–U+E007E, "ASCII smuggling") are decoded to the ASCII
//     character they encode, and counted;
//   - other control characters are removed; runs of white space become one ' ', or one
//     '\n' when the run contains a line break.
//
// The table is computed once from golang.org/x/text's NFKC/NFKD data; its checksum is stored in
// the weight file so that a model is never used with a folding it was not trained with.

// fold entry encoding (uint32):
//
//	0                 identity (after the ASCII fast path, which handles ASCII itself)
//	kindDrop<<28 | k  remove; k is the invisible class
//	kindMap<<28 | start<<3 | n   replace by foldPool[start:start+n] (n ≤ 7)
const (
	kindMap  = 1
	kindDrop = 2
)

// Invisible classes recorded by Fold.
const (
	invZeroWidth = 1 // zero-width space/joiner/non-joiner, word joiner, BOM, soft hyphen, …
	invBidi      = 2 // bidi embeddings, overrides and isolates
	invOther     = 3 // variation selectors and other default-ignorables, controls
	invTag       = 4 // tag characters (decoded, not dropped; recorded only)
)

const foldLimit = 0x30000 // runes at and above are identity except the special ranges in foldRune

type foldTable struct {
	page  [foldLimit >> 8]uint16 // 0 = identity page
	block []uint32               // 256 entries per page; block 0 is unused
	pool  []rune
	conf  [foldLimit >> 8]uint16 // pages of the "came from a confusable" bit set; 0 = none
	confB [][8]uint32            // 256-bit sets
	sum   uint32
}

var (
	foldOnce sync.Once
	folds    *foldTable
)

func table() *foldTable {
	foldOnce.Do(func() { folds = buildFold() })
	return folds
}

// FoldChecksum identifies the folding table; the weight file records the value it was trained with.
func FoldChecksum() uint32 { return table().sum }

// confusables maps look-alike letters from other scripts to the Latin letter they imitate. It
// lists the characters seen in homoglyph attacks (Unicode's confusables.txt restricted to
// lower-case single letters after NFKC and lower-casing).
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ї': 'i', 'ј': 'j', 'һ': 'h',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ү': 'y', 'ɡ': 'g', 'ᴦ': 'r', 'ь': 'b', 'п': 'n',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p',
	'τ': 't', 'υ': 'u', 'χ': 'x', 'ϲ': 'c', 'ϳ': 'j', 'ω': 'w', 'μ': 'u',
	// Armenian, Cherokee-like and others frequently used in spoofing
	'օ': 'o', 'ս': 'u', 'ց': 'g', 'հ': 'h', 'ո': 'n',
	// Latin look-alikes
	'ı': 'i', 'ȷ': 'j', 'ɑ': 'a', 'ɩ': 'i', 'ʟ': 'l', 'ɪ': 'i', 'ʀ': 'r', 'ʏ': 'y', 'ɴ': 'n',
	'ᴀ': 'a', 'ʙ': 'b', 'ᴄ': 'c', 'ᴅ': 'd', 'ᴇ': 'e', 'ꜰ': 'f', 'ɢ': 'g', 'ʜ': 'h', 'ᴊ': 'j',
	'ᴋ': 'k', 'ᴍ': 'm', 'ᴏ': 'o', 'ᴘ': 'p', 'ꞯ': 'q', 'ꜱ': 's', 'ᴛ': 't', 'ᴜ': 'u', 'ᴠ': 'v',
	'ᴡ': 'w', 'ᴢ': 'z', 'ſ': 's', 'ƅ': 'b', 'ɒ': 'a', 'ǝ': 'e', 'ɛ': 'e', 'ɔ': 'c',
}

// nativeLatin reports whether a confusable is a letter of a Latin-script alphabet (Turkish and
// Azerbaijani dotless ı): it folds like the others, but a word mixing it with plain letters is
// ordinary spelling, not a homoglyph.
func nativeLatin(r rune) bool { return r == 'ı' }

// invisibleClass reports whether r is removed by folding, and its class.
func invisibleClass(r rune) int {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x180E, r >= 0x200B && r <= 0x200D, r == 0x2060,
		r >= 0x2061 && r <= 0x2064, r == 0xFEFF, r == 0x115F, r == 0x1160, r == 0x3164,
		r == 0xFFA0, r == 0x17B4, r == 0x17B5:
		return invZeroWidth
	case r == 0x200E, r == 0x200F, r == 0x061C, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return invBidi
	case r >= 0xFE00 && r <= 0xFE0F, r >= 0x180B && r <= 0x180D, r == 0x180F, r >= 0x206A && r <= 0x206F,
		r >= 0x1BCA0 && r <= 0x1BCA3, r >= 0x1D173 && r <= 0x1D17A, r >= 0xE0100 && r <= 0xE01EF,
		r == 0xE0001, r == 0xE007F, r >= 0xFFF0 && r <= 0xFFF8:
		return invOther
	case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r >= 0x7F && r < 0xA0:
		return invOther
	}
	return 0
}

func isLineBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x0B || r == 0x0C || r == 0x85 || r == 0x2028 || r == 0x2029
}

// latinish reports whether a decomposed rune belongs to the scripts whose diacritics are stripped.
func latinish(r rune) bool {
	return r < 0x0530 || (r >= 0x1D00 && r <= 0x1DBF) || (r >= 0x1E00 && r <= 0x1FFF) ||
		(r >= 0x2C60 && r <= 0x2C7F) || (r >= 0xA720 && r <= 0xA7FF) || (r >= 0xAB30 && r <= 0xAB6F)
}

// computeFold returns the folded form of r, whether r is dropped (with its class), and whether
// a confusable mapping was applied.
func computeFold(r rune) (out []rune, drop int, conf bool) {
	if c := invisibleClass(r); c != 0 {
		return nil, c, false
	}
	if isLineBreak(r) {
		return []rune{'\n'}, 0, false
	}
	if unicode.IsSpace(r) {
		return []rune{' '}, 0, false
	}
	if r >= 0xAC00 && r <= 0xD7A3 { // Hangul syllables: keep composed
		return []rune{r}, 0, false
	}
	s := norm.NFKC.String(string(r))
	d := norm.NFKD.String(s)
	all := true
	for _, c := range d {
		if !latinish(c) {
			all = false
			break
		}
	}
	if all {
		b := make([]rune, 0, 4)
		for _, c := range d {
			if c >= 0x0300 && c <= 0x036F {
				continue
			}
			b = append(b, c)
		}
		s = string(b)
	}
	for _, c := range s {
		if unicode.IsSpace(c) {
			c = ' '
		}
		c = unicode.ToLower(c)
		if m, ok := confusables[c]; ok {
			c, conf = m, true
		}
		out = append(out, c)
	}
	return out, 0, conf
}

func buildFold() *foldTable {
	t := &foldTable{block: make([]uint32, 256), confB: make([][8]uint32, 1)}
	h := fnv.New32a()
	var buf [16]byte
	for r := rune(0x80); r < foldLimit; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		out, drop, conf := computeFold(r)
		var e uint32
		switch {
		case drop != 0:
			e = kindDrop<<28 | uint32(drop)
		case len(out) == 1 && out[0] == r:
			continue
		default:
			if len(out) > 7 {
				out = out[:7]
			}
			e = kindMap<<28 | uint32(len(t.pool))<<3 | uint32(len(out))
			t.pool = append(t.pool, out...)
		}
		p := r >> 8
		if t.page[p] == 0 {
			t.page[p] = uint16(len(t.block) / 256)
			t.block = append(t.block, make([]uint32, 256)...)
		}
		t.block[int(t.page[p])*256+int(r&0xFF)] = e
		if conf && !nativeLatin(r) {
			if t.conf[p] == 0 {
				t.conf[p] = uint16(len(t.confB))
				t.confB = append(t.confB, [8]uint32{})
			}
			t.confB[t.conf[p]][(r&0xFF)>>5] |= 1 << (r & 31)
		}
		n := utf8.EncodeRune(buf[:], r)
		h.Write(buf[:n])
		for _, c := range out {
			n = utf8.EncodeRune(buf[:], c)
			h.Write(buf[:n])
		}
		buf[0] = byte(drop)
		h.Write(buf[:1])
	}
	t.sum = h.Sum32()
	return t
}

// lookup returns the fold entry for a non-ASCII rune.
func (t *foldTable) lookup(r rune) uint32 {
	if r >= foldLimit {
		if r >= 0xE0020 && r <= 0xE007E {
			return 0 // handled by the caller (tag decoding)
		}
		if c := invisibleClass(r); c != 0 {
			return kindDrop<<28 | uint32(c)
		}
		return 0
	}
	p := t.page[r>>8]
	if p == 0 {
		return 0
	}
	return t.block[int(p)*256+int(r&0xFF)]
}

func (t *foldTable) confusable(r rune) bool {
	if r >= foldLimit {
		return false
	}
	p := t.conf[r>>8]
	return p != 0 && t.confB[p][(r&0xFF)>>5]&(1<<(r&31)) != 0
}
