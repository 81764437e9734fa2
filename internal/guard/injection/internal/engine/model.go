package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Config fixes the feature extraction a model was trained with.
type Config struct {
	Bits uint8 // log2 of the number of hashed feature buckets
	MinN uint8 // shortest character n-gram (0 with MaxN 0: no character n-grams)
	MaxN uint8 // longest character n-gram
	// Words selects word features: 0 none, 1 word unigrams, 2 unigrams and bigrams (a bigram's
	// first word may be the sentence-start marker).
	Words uint8
	// Cues adds the cue-word features: one per cue concept of a word (see cueConcepts), and one
	// more when the word opens a sentence.
	Cues bool
	// Ideo adds character unigrams and bigrams of the ideographic and syllabic scripts (Han,
	// kana, Hangul syllables; see ideo): there a character is a syllable or a morpheme, so
	// one- and two-character units are the words that the 3..5-grams are too long to share
	// between texts.
	Ideo bool
	// Segments makes texts scored by their sentences and lines too (see NextSegment), each with
	// the segment offset: an instruction planted as a sentence of an e-mail or a line of a table
	// is then scored on its own, not diluted by the text around it.
	Segments bool
	// SegmentsLong limits Segments to long texts (those scored by windows too).
	SegmentsLong bool
	// SegmentFeatures adds features of a segment's form to its score (see segmentFeatures):
	// its first word, its first two words and how it ends, each with weights of their own, so
	// that an imperative or a question among the sentences of a document can weigh more than
	// the same words opening a prompt.
	SegmentFeatures bool
	// SegmentWeights gives segments n-gram weights of their own: the weight table holds two
	// tables of 1<<Bits weights, the first for whole texts and windows, the second for segments
	// (see Model.SegW), so that what the segments learn (an ordinary request among a document's
	// sentences is an attack) cannot raise the score of a text scored as a whole.
	SegmentWeights bool
	// MaskEncoded leaves the n-grams of encoded runs (hex, base64; see Scratch.mask) out of the
	// sums: a payload's characters are not language and would drown the words around it.
	MaskEncoded bool
	Window      uint16 // window length, in folded characters, for long texts
	Stride      uint16 // distance between window starts
	// Long is the length, in folded characters, above which a text is long: scored by windows as
	// well (at least Window).
	Long uint16
	// Norm is how the n-gram sum is normalised by the number F of n-grams: 0 divides by √F,
	// 1 divides by F (the mean weight).
	Norm uint8
	// PromptWindows makes Detect score windows of long texts as well as the whole text.
	PromptWindows bool
}

// MinNormFeatures is the fewest features √F normalisation divides by. With
// √F, a span of one or two features (a lone word such as "a") would carry
// each feature's weight almost undivided, so a single n-gram that leans
// "attack" could flag it; such a span is too short to hold an instruction,
// and the model must not decide it on that little evidence. Spans of at
// least this many features (about four characters of text) are unaffected.
const MinNormFeatures = 16

// NormFactor returns the factor the feature sum of f features is multiplied by.
func (c Config) NormFactor(f int) float64 {
	if f <= 0 {
		return 0
	}
	if c.Norm == 1 {
		return 1 / float64(f)
	}
	return 1 / math.Sqrt(float64(max(f, MinNormFeatures)))
}

// Feature flags, the fifth byte of the weight file.
const (
	flagCues = 1 << iota
	flagIdeo
	flagSegments
	flagMaskEncoded
	flagSegmentsLong
	flagSegmentFeatures
	flagSegmentWeights
	knownFlags = flagCues | flagIdeo | flagSegments | flagMaskEncoded | flagSegmentsLong | flagSegmentFeatures | flagSegmentWeights
)

// Tables returns how many weight tables of 1<<Bits weights a model has: 2 with SegmentWeights,
// else 1.
func (c Config) Tables() int {
	if c.SegmentWeights {
		return 2
	}
	return 1
}

func (c Config) flags() uint8 {
	var f uint8
	if c.Cues {
		f |= flagCues
	}
	if c.Ideo {
		f |= flagIdeo
	}
	if c.Segments {
		f |= flagSegments
	}
	if c.MaskEncoded {
		f |= flagMaskEncoded
	}
	if c.SegmentsLong {
		f |= flagSegmentsLong
	}
	if c.SegmentFeatures {
		f |= flagSegmentFeatures
	}
	if c.SegmentWeights {
		f |= flagSegmentWeights
	}
	return f
}

// Model is a logistic-regression model over hashed features of the folded text plus one
// indicator per rule:
//
//	logit(span) = Bias + Scale·Σ W[bucket(g)]·norm(F) + Σ_rules hit in span · Rule[r]
//	              (+ WindowBias when the span is a window rather than the whole text,
//	               + SegmentBias when it is a sentence or line of a long text)
//
// where g runs over the F features that end inside the span: character n-grams (MinN…MaxN
// characters, digits read as '0'), word unigrams and word bigrams (see Config.Words), and
// norm(F) is 1/F or 1/√F (Config.Norm). With Config.SegmentWeights a segment's features are
// weighed by the second table (SegW) instead of W.
type Model struct {
	Cfg          Config
	Bias         float64
	Scale        float64
	W            []int16 // the weight tables (Config.Tables of 1<<Bits each), the first for whole texts and windows
	Rule         [NumRules]float64
	Threshold    float64 // default probability threshold for prompts
	DocThreshold float64 // default probability threshold for documents
	WindowBias   float64 // added to the logit of a window (a span shorter than the whole text)
	SegmentBias  float64 // added to the logit of a segment (a sentence or line of a long text)
	FoldSum      uint32
	Meta         []byte // provenance (JSON), informational
	// pair holds W and SegW side by side (see pairTable), for a decoded model with segment
	// weights; without it, Scan sums the two tables in two passes.
	pair []int64
}

// The weight file (little-endian):
//
//	magic "WDNINJ03"
//	u8 bits, u8 minN, u8 maxN, u8 words, u8 feature flags (1 cues, 2 ideo, 4 segments, 8 mask encoded, 16 segments of long texts only, 32 segment features, 64 segment weights), u16 window, u16 stride, u16 long, u8 norm, u8 prompt-windows
//	u32 fold-table checksum
//	f64 bias, f64 scale, f64 threshold, f64 docThreshold, f64 window bias, f64 segment bias
//	u16 rule count, then per rule: u8 name length, name, f64 weight
//	u32 meta length, meta
//	u32 weight count (= 1<<bits, or 2<<bits with segment weights: the text table, then the segment table), then that many int16
//	32-byte SHA-256 of everything before it
const magic = "WDNINJ03"

// MaxBits bounds the table size a weight file may declare (1<<22 int16 = 8 MiB).
const MaxBits = 22

// MaxOrder is the longest character n-gram a weight file may declare.
const MaxOrder = 6

// Encode serialises m in the weight file format.
func (m *Model) Encode() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(magic)
	b.Write([]byte{m.Cfg.Bits, m.Cfg.MinN, m.Cfg.MaxN, m.Cfg.Words, m.Cfg.flags()})
	b.Write(le.AppendUint16(nil, m.Cfg.Window))
	b.Write(le.AppendUint16(nil, m.Cfg.Stride))
	b.Write(le.AppendUint16(nil, m.Cfg.Long))
	b.Write([]byte{m.Cfg.Norm, b2u8(m.Cfg.PromptWindows)})
	b.Write(le.AppendUint32(nil, m.FoldSum))
	for _, f := range []float64{m.Bias, m.Scale, m.Threshold, m.DocThreshold, m.WindowBias, m.SegmentBias} {
		b.Write(le.AppendUint64(nil, math.Float64bits(f)))
	}
	b.Write(le.AppendUint16(nil, NumRules))
	for id := 0; id < NumRules; id++ {
		name := ruleDefs[id].name
		b.WriteByte(byte(len(name)))
		b.WriteString(name)
		b.Write(le.AppendUint64(nil, math.Float64bits(m.Rule[id])))
	}
	b.Write(le.AppendUint32(nil, uint32(len(m.Meta))))
	b.Write(m.Meta)
	b.Write(le.AppendUint32(nil, uint32(len(m.W))))
	for _, w := range m.W {
		b.Write(le.AppendUint16(nil, uint16(w)))
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// ErrCorrupt is returned by Decode for a weight file that fails its checks.
var ErrCorrupt = errors.New("injection model: corrupt weight file")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = corrupt("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}
func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}
func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}
func (r *reader) f64() float64 {
	if v := r.take(8); v != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	}
	return 0
}

func finite(fs ...float64) bool {
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

// Decode parses and verifies a weight file. It checks the checksum, every field's range and
// that the file was trained with this build's text folding.
func Decode(b []byte) (*Model, error) {
	if len(b) < len(magic)+sha256.Size {
		return nil, corrupt("too short (%d bytes)", len(b))
	}
	body, tail := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], tail) {
		return nil, corrupt("checksum mismatch")
	}
	r := &reader{b: body}
	if string(r.take(len(magic))) != magic {
		return nil, corrupt("bad magic")
	}
	m := &Model{}
	m.Cfg.Bits, m.Cfg.MinN, m.Cfg.MaxN, m.Cfg.Words = r.u8(), r.u8(), r.u8(), r.u8()
	flags := r.u8()
	m.Cfg.Cues, m.Cfg.Ideo, m.Cfg.Segments = flags&flagCues != 0, flags&flagIdeo != 0, flags&flagSegments != 0
	m.Cfg.MaskEncoded, m.Cfg.SegmentsLong = flags&flagMaskEncoded != 0, flags&flagSegmentsLong != 0
	m.Cfg.SegmentFeatures, m.Cfg.SegmentWeights = flags&flagSegmentFeatures != 0, flags&flagSegmentWeights != 0
	m.Cfg.Window, m.Cfg.Stride, m.Cfg.Long = r.u16(), r.u16(), r.u16()
	m.Cfg.Norm = r.u8()
	pw := r.u8()
	m.Cfg.PromptWindows = pw == 1
	m.FoldSum = r.u32()
	m.Bias, m.Scale, m.Threshold, m.DocThreshold, m.WindowBias, m.SegmentBias = r.f64(), r.f64(), r.f64(), r.f64(), r.f64(), r.f64()
	nr := int(r.u16())
	for id := range m.Rule {
		m.Rule[id] = math.NaN()
	}
	for i := 0; i < nr && r.err == nil; i++ {
		name := string(r.take(int(r.u8())))
		w := r.f64()
		id := ruleID(name)
		if id < 0 {
			return nil, corrupt("unknown rule %q", name)
		}
		m.Rule[id] = w
	}
	for id := range m.Rule {
		if math.IsNaN(m.Rule[id]) {
			m.Rule[id] = ruleDefs[id].prior // a rule newer than the file keeps its prior
		}
	}
	m.Meta = append([]byte(nil), r.take(int(r.u32()))...)
	nw := int(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	c := m.Cfg
	switch {
	case c.Bits < 8 || c.Bits > MaxBits:
		return nil, corrupt("bits %d out of range", c.Bits)
	case !(c.MinN == 0 && c.MaxN == 0) && (c.MinN < 1 || c.MaxN < c.MinN || c.MaxN > MaxOrder):
		return nil, corrupt("n-gram orders %d..%d out of range", c.MinN, c.MaxN)
	case c.Words > 2 || (c.MaxN == 0 && c.Words == 0):
		return nil, corrupt("word features %d out of range", c.Words)
	case c.Window < 16 || c.Stride < 1 || c.Stride > c.Window || c.Long < c.Window:
		return nil, corrupt("window %d / stride %d / long %d out of range", c.Window, c.Stride, c.Long)
	case c.Norm > 1 || pw > 1 || flags&^knownFlags != 0:
		return nil, corrupt("bad normalisation flags")
	case c.SegmentWeights && !c.Segments:
		return nil, corrupt("segment weights without segments")
	case nw != c.Tables()<<c.Bits:
		return nil, corrupt("weight count %d, want %d", nw, c.Tables()<<c.Bits)
	case !finite(m.Bias, m.Scale, m.Threshold, m.DocThreshold, m.WindowBias, m.SegmentBias) || m.Scale <= 0 ||
		math.Abs(m.WindowBias) > 100 || math.Abs(m.SegmentBias) > 100:
		return nil, corrupt("non-finite parameters")
	case m.Threshold <= 0 || m.Threshold >= 1 || m.DocThreshold <= 0 || m.DocThreshold >= 1:
		return nil, corrupt("thresholds out of (0,1)")
	}
	for _, w := range m.Rule {
		if !finite(w) || math.Abs(w) > 100 {
			return nil, corrupt("rule weight out of range")
		}
	}
	raw := r.take(2 * nw)
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(r.b))
	}
	m.W = make([]int16, nw)
	for i := range m.W {
		m.W[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	m.pair = m.pairTable()
	if m.FoldSum != FoldChecksum() {
		return nil, fmt.Errorf("injection model: trained with text folding %08x, this build folds as %08x: retrain the model",
			m.FoldSum, FoldChecksum())
	}
	return m, nil
}

// SegW returns the weights segments are scored with: the second table with
// Config.SegmentWeights, else W.
func (m *Model) SegW() []int16 {
	if m.Cfg.SegmentWeights {
		return m.W[1<<m.Cfg.Bits:]
	}
	return m.W
}

func ruleID(name string) int {
	for id := range ruleDefs {
		if ruleDefs[id].name == name {
			return id
		}
	}
	return -1
}

func b2u8(b bool) byte {
	if b {
		return 1
	}
	return 0
}
