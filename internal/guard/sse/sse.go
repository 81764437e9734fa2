// Package sse reads and writes server-sent event streams as the WHATWG HTML
// standard defines them (§9.2.6 "Interpreting an event stream"). Its
// guarantee: the Parser accepts any byte sequence, fed in any split, without
// panicking and within MaxEventBytes of memory, and gives the same blocks
// however the input was split; what AppendEvent writes always parses back
// to the event it was given.
package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// DefaultMaxEventBytes bounds one line and one event when
// Parser.MaxEventBytes is 0.
const DefaultMaxEventBytes = 1 << 20

// ErrEventTooLarge is returned when a line or an event exceeds the limit.
var ErrEventTooLarge = errors.New("sse: event exceeds the size limit")

// Event is one block of the stream: the fields seen up to a blank line, or
// a comment line.
type Event struct {
	Type    string // the last event field; "" means "message"
	Data    []byte // the data fields joined by "\n"
	HasData bool   // at least one data field: the block dispatches an event
	ID      string // the last id field (ids containing NUL are ignored, as the standard says)
	HasID   bool
	Retry   int // the last valid retry field in ms, -1 if none
	// Comment is set (and nothing else) for a comment line, the text after
	// the colon.
	Comment   []byte
	IsComment bool
}

// Parser is an incremental event stream parser. The zero value is ready to
// use with DefaultMaxEventBytes.
type Parser struct {
	MaxEventBytes int

	pre     []byte // the first bytes, until the byte order mark is decided
	started bool
	line    []byte // the line in progress
	skipLF  bool   // the last line ended with CR: a following LF ends nothing
	ev      Event  // the block in progress
	fields  bool   // ev has a field
	size    int    // bytes in ev
}

var bom = []byte("\xEF\xBB\xBF")

func (p *Parser) limit() int {
	if p.MaxEventBytes > 0 {
		return p.MaxEventBytes
	}
	return DefaultMaxEventBytes
}

// Feed parses b, calling fn for every complete block: an event (HasData),
// a block of only id, retry or event fields, or a comment line. The *Event
// and its slices are valid only during the call. A non-nil error from fn
// stops Feed and is returned; so is ErrEventTooLarge, after which the
// parser must not be used again.
func (p *Parser) Feed(b []byte, fn func(*Event) error) error {
	if !p.started {
		take := min(len(bom)-len(p.pre), len(b))
		p.pre = append(p.pre, b[:take]...)
		b = b[take:]
		if bytes.HasPrefix(bom, p.pre) && len(p.pre) < len(bom) {
			return nil // wait: this may still be a byte order mark
		}
		p.started = true
		pre := p.pre
		p.pre = nil
		if !bytes.Equal(pre, bom) {
			if err := p.feed(pre, fn); err != nil {
				return err
			}
		}
	}
	return p.feed(b, fn)
}

func (p *Parser) feed(b []byte, fn func(*Event) error) error {
	for len(b) > 0 {
		if p.skipLF {
			p.skipLF = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := indexEOL(b)
		if i < 0 {
			if len(p.line)+len(b)+p.size > p.limit() {
				return ErrEventTooLarge
			}
			p.line = append(p.line, b...)
			return nil
		}
		var line []byte
		if len(p.line) > 0 {
			if len(p.line)+i+p.size > p.limit() {
				return ErrEventTooLarge
			}
			p.line = append(p.line, b[:i]...)
			line = p.line
		} else {
			if i+p.size > p.limit() {
				return ErrEventTooLarge
			}
			line = b[:i]
		}
		if b[i] == '\r' {
			p.skipLF = true
		}
		b = b[i+1:]
		err := p.processLine(line, fn)
		p.line = p.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// End reports the end of the stream. A block without its closing blank
// line is discarded, as the standard says; End reports whether one was.
func (p *Parser) End() (discarded bool) {
	if !p.started && len(p.pre) > 0 {
		p.started = true
		pre := p.pre
		p.pre = nil
		_ = p.feed(pre, func(*Event) error { return nil })
	}
	discarded = p.fields || len(p.line) > 0
	p.reset()
	p.line = p.line[:0]
	return discarded
}

func (p *Parser) reset() {
	p.ev.Type, p.ev.ID, p.ev.HasID, p.ev.HasData = "", "", false, false
	p.ev.Data = p.ev.Data[:0]
	p.ev.Retry = -1
	p.fields = false
	p.size = 0
}

func (p *Parser) processLine(line []byte, fn func(*Event) error) error {
	if len(line) == 0 {
		if !p.fields {
			return nil
		}
		err := fn(&p.ev)
		p.reset()
		return err
	}
	if line[0] == ':' {
		return fn(&Event{Comment: line[1:], IsComment: true, Retry: -1})
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if !p.fields {
		p.ev.Retry = -1
	}
	switch string(name) {
	case "event":
		p.ev.Type = string(value)
	case "data":
		if p.ev.HasData {
			p.ev.Data = append(p.ev.Data, '\n')
		}
		p.ev.Data = append(p.ev.Data, value...)
		p.ev.HasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.ev.ID, p.ev.HasID = string(value), true
		}
	case "retry":
		if n, ok := parseRetry(value); ok {
			p.ev.Retry = n
		}
	default:
		return nil // unknown fields are ignored
	}
	p.fields = true
	p.size += len(line) + 1
	return nil
}

// parseRetry reads a retry value: ASCII digits only.
func parseRetry(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// AppendEvent appends ev as one block ending with a blank line. Line breaks
// in Data start new data lines; line breaks in Type or ID, which the
// standard cannot carry, become spaces. A comment event is written as a
// comment line. A block without data, id, retry or type writes nothing.
func AppendEvent(dst []byte, ev *Event) []byte {
	if ev.IsComment {
		return AppendComment(dst, ev.Comment)
	}
	if !ev.HasData && !ev.HasID && ev.Retry < 0 && ev.Type == "" {
		return dst
	}
	if ev.Type != "" {
		dst = appendField(dst, "event", []byte(ev.Type))
	}
	if ev.HasID {
		dst = appendField(dst, "id", []byte(ev.ID))
	}
	if ev.Retry >= 0 {
		dst = append(append(append(dst, "retry: "...), strconv.Itoa(ev.Retry)...), '\n')
	}
	if ev.HasData {
		data := ev.Data
		for {
			i := indexEOL(data)
			if i < 0 {
				dst = append(append(append(dst, "data: "...), data...), '\n')
				break
			}
			dst = append(append(append(dst, "data: "...), data[:i]...), '\n')
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			data = data[i+1:]
		}
	}
	return append(dst, '\n')
}

// indexEOL is bytes.IndexAny(b, "\r\n") done with vectorised IndexByte
// searches rather than a byte loop (events carry kilobytes of JSON), over
// doubling windows so that a call costs O(distance to the line end) even
// when one of the two bytes is rare.
func indexEOL(b []byte) int {
	for lo, hi := 0, min(len(b), 256); lo < len(b); lo, hi = hi, min(len(b), 2*hi) {
		w := b[lo:hi]
		i := bytes.IndexByte(w, '\n')
		if i < 0 {
			i = len(w)
		}
		if j := bytes.IndexByte(w[:i], '\r'); j >= 0 {
			return lo + j
		}
		if i < len(w) {
			return lo + i
		}
	}
	return -1
}

func appendField(dst []byte, name string, v []byte) []byte {
	dst = append(append(dst, name...), ": "...)
	for _, c := range v {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// AppendComment appends a comment line (":" text); line breaks in text
// become spaces.
func AppendComment(dst, text []byte) []byte {
	dst = append(dst, ':')
	for _, c := range text {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// AppendError appends the event that ends a stream with an error, in the
// shape OpenAI clients understand:
//
//	event: error
//	data: {"error":{"message":…,"type":…,"code":…,"request_id":…}}
func AppendError(dst []byte, message, typ, code, requestID string) []byte {
	var body struct {
		Error struct {
			Message   string `json:"message"`
			Type      string `json:"type"`
			Code      string `json:"code"`
			RequestID string `json:"request_id,omitempty"`
		} `json:"error"`
	}
	body.Error.Message, body.Error.Type, body.Error.Code, body.Error.RequestID = message, typ, code, requestID
	data, _ := json.Marshal(body) // cannot fail: only strings
	return AppendEvent(dst, &Event{Type: "error", Data: data, HasData: true, Retry: -1})
}
