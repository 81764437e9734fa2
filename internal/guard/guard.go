// Package guard finds sensitive data in request bodies and response streams
// and carries out what policy requires of it (mask, hash or block).
//
// Its guarantee: one Scanner interface serves whole bodies and streams, and
// a Stream releases a byte of output only once no continuation of the input
// can make that byte part of a finding, so a value split across chunks or
// SSE events is found and masked as if it had arrived in one piece. Scanning
// never panics on input, and time and memory are bounded by the input (and,
// for streams, by the configured hold limit).
package guard

import (
	"cmp"
	"slices"

	"github.com/warden-ai/warden/internal/gateway"
)

// Data classes seen by policy (gateway.Finding.Class, context.data_classes).
const (
	ClassPII       = "pii"
	ClassSecret    = "secret"
	ClassInjection = "injection"
)

// Where a finding was made (gateway.Finding.Where).
const (
	WhereRequest    = "request"
	WhereResponse   = "response"
	WhereToolResult = "tool_result"
	// WhereServerMessage: a message an MCP server sent the client on its
	// own (a sampling or elicitation request, a notification).
	WhereServerMessage = "server_message"
)

// ContextBytes is how much text before a finding a Scanner may look at to
// decide it (a keyword such as "api_key=", a boundary character). A Stream
// keeps this much already-released text so that decisions near a chunk
// boundary are the same as over the whole text.
const ContextBytes = 256

// Finding is one match: what was found and where, never the matched text.
type Finding struct {
	Guard  string  // the guard that found it: "dlp", "injection"
	Type   string  // e.g. "email", "payment_card", "aws_access_key"
	Class  string  // ClassPII, ClassSecret, ClassInjection
	Start  int     // byte offset of the match in the scanned text or stream
	End    int     // byte offset one past the match
	Score  float64 // confidence, 0..1
	Action Action  // what was done with it; ActionFlag until a Policy decides
}

// Gateway returns f in the gateway's vocabulary, recorded as found at where
// (WhereRequest, WhereResponse, WhereToolResult).
func (f Finding) Gateway(where string) gateway.Finding {
	return gateway.Finding{
		Guard: f.Guard, Type: f.Type, Class: f.Class, Where: where,
		Start: int64(f.Start), End: int64(f.End), Score: f.Score, Action: f.Action.String(),
	}
}

// AppendGateway appends fs to dst in the gateway's vocabulary.
func AppendGateway(dst []gateway.Finding, where string, fs []Finding) []gateway.Finding {
	for _, f := range fs {
		dst = append(dst, f.Gateway(where))
	}
	return dst
}

// A Scanner finds sensitive spans in text.
//
// Scan reports the findings in text as if text were the whole input, sorted
// by Start. To decide a match it may look at no more than ContextBytes
// before it and at the bytes up to the match's end plus one.
//
// Hold reports how many bytes at the end of text could still become part of
// a finding if more text followed (for example the digits of a card number
// that is not complete yet, or an unfinished word that might become a key).
// A Stream releases only what is before them. Hold must be cheap; it is
// called for every chunk of a stream.
//
// Implementations must be safe for concurrent use and must not retain text.
type Scanner interface {
	Scan(text []byte) []Finding
	Hold(text []byte) int
}

// Multi returns a Scanner that runs each of scanners over the same text:
// findings are merged in order of Start, the hold is the largest of theirs.
func Multi(scanners ...Scanner) Scanner {
	m := make(multi, 0, len(scanners))
	for _, s := range scanners {
		if s != nil {
			m = append(m, s)
		}
	}
	return m
}

type multi []Scanner

func (m multi) Scan(text []byte) []Finding {
	var out []Finding
	for _, s := range m {
		out = append(out, s.Scan(text)...)
	}
	sortFindings(out)
	return out
}

func (m multi) Hold(text []byte) int {
	h := 0
	for _, s := range m {
		h = max(h, s.Hold(text))
	}
	return min(h, len(text))
}

// Detector adapts a whole-text detector without streaming knowledge (the
// prompt-injection detector, for example) to Scanner. In a stream it holds
// back the last Window bytes, so a match up to Window bytes long is seen
// whole; Window 0 holds nothing back.
type Detector struct {
	Detect func(text []byte) []Finding
	Window int
}

// Scan calls d.Detect.
func (d Detector) Scan(text []byte) []Finding {
	fs := d.Detect(text)
	sortFindings(fs)
	return fs
}

// Hold returns min(d.Window, len(text)).
func (d Detector) Hold(text []byte) int { return max(0, min(d.Window, len(text))) }

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(b.End, a.End)
	})
}

// Interface guards.
var (
	_ Scanner = multi(nil)
	_ Scanner = Detector{}
)
