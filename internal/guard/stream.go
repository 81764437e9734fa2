package guard

import "errors"

// Defaults for StreamOptions.
const (
	// DefaultMaxHold is the most text a Stream holds back waiting to see
	// whether it completes a match. A private key block is the longest
	// thing that legitimately needs it; beyond it the stream releases what
	// it has as if the input had ended there.
	DefaultMaxHold = 64 << 10
	// DefaultMaxFindings is how many findings a Stream keeps; later ones are
	// still acted on but only counted (Dropped).
	DefaultMaxFindings = 1024
)

// rescanAfter is the held size beyond which a Stream waits for the held
// text to grow by a quarter before scanning it again, so that a long held
// region (a private key arriving a few bytes at a time) costs O(n log n)
// rather than O(n²).
const rescanAfter = 4096

// StreamOptions configure a Stream. The zero value flags findings only.
type StreamOptions struct {
	Policy      *Policy // what to do with findings; nil flags them only
	MaxHold     int     // 0 means DefaultMaxHold
	MaxFindings int     // 0 means DefaultMaxFindings
}

// Stream runs a Scanner over text that arrives in chunks (a request body
// read piece by piece, the content of an SSE response) and releases it with
// the policy's actions carried out. Text is released only once the scanner
// says no continuation can make it part of a finding, so a match split
// across chunks is masked exactly as it would be in the whole text; Flush
// releases the rest at the end. Offsets of findings are in the logical
// stream (the concatenation of all chunks). A Stream is not safe for
// concurrent use.
type Stream struct {
	sc          Scanner
	pol         *Policy
	maxHold     int
	maxFindings int

	buf     []byte // buf[:ctx] was released and is kept as context; buf[ctx:] is held
	ctx     int
	base    int // logical offset of buf[0]
	scanned int // len(buf) when it was last scanned

	findings []Finding
	dropped  int
	blocked  *BlockedError
}

// NewStream returns a Stream over sc.
func NewStream(sc Scanner, opt StreamOptions) *Stream {
	s := &Stream{sc: sc, pol: opt.Policy, maxHold: opt.MaxHold, maxFindings: opt.MaxFindings}
	if s.maxHold <= 0 {
		s.maxHold = DefaultMaxHold
	}
	if s.maxFindings <= 0 {
		s.maxFindings = DefaultMaxFindings
	}
	return s
}

// Write adds p to the stream and appends to dst the output that is now safe
// to release, with masks and hashes applied. When a finding's action is
// block, Write returns a *BlockedError and the stream releases nothing
// more: neither the blocked value nor anything held with it.
func (s *Stream) Write(dst, p []byte) ([]byte, error) {
	if s.blocked != nil {
		return dst, s.blocked
	}
	s.buf = append(s.buf, p...)
	held := len(s.buf) - s.ctx
	if held > s.maxHold {
		return s.release(dst, true)
	}
	if held > rescanAfter && len(s.buf)-s.scanned < held/4 {
		return dst, nil
	}
	return s.release(dst, false)
}

// Flush releases everything still held, as at the end of the input. The
// stream may be written again afterwards.
func (s *Stream) Flush(dst []byte) ([]byte, error) {
	if s.blocked != nil {
		return dst, s.blocked
	}
	return s.release(dst, true)
}

// Held is the number of bytes written but not yet released.
func (s *Stream) Held() int { return len(s.buf) - s.ctx }

// Offset is the logical offset one past the last released byte.
func (s *Stream) Offset() int { return s.base + s.ctx }

// Findings returns the findings so far (at most MaxFindings), with their
// actions and logical offsets. The slice is owned by the stream.
func (s *Stream) Findings() []Finding { return s.findings }

// Dropped is how many findings were acted on but not kept.
func (s *Stream) Dropped() int { return s.dropped }

// Blocked returns the error of the finding that blocked the stream, or nil.
func (s *Stream) Blocked() *BlockedError { return s.blocked }

func (s *Stream) release(dst []byte, final bool) ([]byte, error) {
	text := s.buf
	s.scanned = len(text)
	fs := s.sc.Scan(text)
	h := len(text)
	if !final {
		h -= max(0, min(s.sc.Hold(text), len(text)))
	}
	// Move the release point back until no finding crosses it and it is
	// at the start of a UTF-8 sequence; it never moves before ctx.
	for changed := true; changed; {
		changed = false
		if h < s.ctx {
			h = s.ctx
		}
		for h > s.ctx && h < len(text) && text[h]&0xC0 == 0x80 {
			h--
			changed = true
		}
		for _, f := range fs {
			if f.Start < h && f.End > h && f.End > s.ctx && h > s.ctx {
				h = max(f.Start, s.ctx)
				changed = true
			}
		}
	}
	// The findings to act on: those ending in (ctx, h]. One that began in
	// the released context (only possible when the hold limit forced a
	// release) is clipped to what is still held.
	out := fs[:0]
	for _, f := range fs {
		if f.End <= s.ctx || f.End > h || f.Start >= h {
			continue
		}
		f.Start = max(f.Start, s.ctx) - s.ctx
		f.End -= s.ctx
		out = append(out, f)
	}
	err := s.pol.Decide(out)
	for _, f := range out {
		if len(s.findings) < s.maxFindings {
			f.Start += s.base + s.ctx
			f.End += s.base + s.ctx
			s.findings = append(s.findings, f)
		} else {
			s.dropped++
		}
	}
	var be *BlockedError
	if errors.As(err, &be) {
		be.Finding.Start += s.base + s.ctx
		be.Finding.End += s.base + s.ctx
		s.blocked = be
		s.buf = nil
		return dst, be
	}
	dst = s.pol.Apply(dst, text[s.ctx:h], out)
	// Keep up to ContextBytes of released text for the next scan.
	keep := min(ContextBytes, h)
	drop := h - keep
	if drop > 0 {
		n := copy(s.buf, s.buf[drop:])
		s.buf = s.buf[:n]
		s.base += drop
		s.scanned -= drop
	}
	s.ctx = keep
	if cap(s.buf) > 4*s.maxHold && len(s.buf) < s.maxHold {
		s.buf = append(make([]byte, 0, 2*len(s.buf)), s.buf...) // give back a buffer grown by one huge chunk
	}
	return dst, nil
}
