package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// Record is one audited exchange: who asked for what, what policy decided
// and why, what the gateway did about it and what came of it. It carries
// identifiers, digests, types and offsets, never a body, a query string, a
// header value or a credential. docs/audit.md documents every field.
//
// The stored form of a record is its JSON encoding with Index first; that
// byte string is the leaf of the Merkle tree (see the package comment).
type Record struct {
	Index     int64      `json:"index"`               // position in the log, 0-based; assigned by Append
	Time      time.Time  `json:"time"`                // when warden received the request, UTC
	RequestID string     `json:"request_id"`          // warden's request id
	Principal *Principal `json:"principal,omitempty"` // nil: no principal was proven
	SourceIP  string     `json:"source_ip,omitempty"` // TCP peer address
	Method    string     `json:"method"`
	Path      string     `json:"path"`             // escaped path only; never the query string
	Action    string     `json:"action,omitempty"` // e.g. "chat.completions"
	Resource  *Resource  `json:"resource,omitempty"`
	Stream    bool       `json:"stream,omitempty"`
	Decision  *Decision  `json:"decision,omitempty"` // nil: authorization did not run

	Obligations *Obligations `json:"obligations,omitempty"` // what the allowing decision required and what was done
	Findings    []Finding    `json:"findings,omitempty"`    // what the guards found: types and spans, never the text
	Grants      []string     `json:"grants,omitempty"`      // ids of the just-in-time grants in force

	Status int    `json:"status"`           // the status the client got (0: nothing was sent, the connection was aborted)
	Code   string `json:"code,omitempty"`   // public error code, e.g. "invalid_api_key"
	Reason string `json:"reason,omitempty"` // internal cause; at most MaxReasonBytes

	Upstream       string  `json:"upstream,omitempty"` // upstream base URL, no credentials
	UpstreamStatus int     `json:"upstream_status,omitempty"`
	LatencyMS      float64 `json:"latency_ms"`            // receipt to end of exchange
	UpstreamMS     float64 `json:"upstream_ms,omitempty"` // time to upstream response headers
	BytesIn        int64   `json:"bytes_in"`              // request body bytes
	BytesOut       int64   `json:"bytes_out"`             // response body bytes sent to the client
	BodySHA256     string  `json:"body_sha256,omitempty"` // hex SHA-256 of the request body; the body itself is never stored
	Usage          *Usage  `json:"usage,omitempty"`       // token usage; nil when nothing was counted
	Full           *Full   `json:"full,omitempty"`        // extra detail when the decision asked for audit level "full"

	// Truncated names the fields Append shortened to keep the record within
	// its bounds (see normalize).
	Truncated []string `json:"truncated,omitempty"`
}

// Principal is the audited identity: who called and how it was proven.
// It carries identifiers only, never a credential.
type Principal struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	OnBehalfOf   string `json:"on_behalf_of,omitempty"`
	AuthMethod   string `json:"auth_method"`
	CredentialID string `json:"credential_id,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	MFA          bool   `json:"mfa,omitempty"`
	Workload     string `json:"workload,omitempty"`
}

// Resource is what the request was for.
type Resource struct {
	Route   string `json:"route,omitempty"`
	Segment string `json:"segment,omitempty"`
	API     string `json:"api,omitempty"`
	Model   string `json:"model,omitempty"`
	Tool    string `json:"tool,omitempty"`
	// ArgumentsSHA256 is the hex SHA-256 of an MCP message's arguments as
	// sent (tools/call, prompts/get); never the arguments themselves.
	ArgumentsSHA256 string `json:"arguments_sha256,omitempty"`
	// MCPSession is a digest of the MCP session id; never the id itself.
	MCPSession string `json:"mcp_session,omitempty"`
}

// Decision is the audited authorization outcome.
type Decision struct {
	Allow         bool           `json:"allow"`
	Reasons       []string       `json:"reasons,omitempty"`
	Obligations   map[string]any `json:"obligations,omitempty"` // as the policy returned them
	PolicyVersion string         `json:"policy_version,omitempty"`
}

// Obligations are the requirements of an allowing decision as the gateway
// understood them, and what it carried out (Applied).
type Obligations struct {
	Applied    []string          `json:"applied,omitempty"` // e.g. "cap_max_tokens:256"
	AuditLevel string            `json:"audit_level,omitempty"`
	MaxTokens  int64             `json:"max_tokens,omitempty"`
	RateClass  string            `json:"rate_class,omitempty"`
	Mask       map[string]string `json:"mask,omitempty"` // data class or finding type → mask | hash | block
}

// Finding is one thing a guard found: its type and where, never the text.
type Finding struct {
	Guard  string  `json:"guard"`
	Type   string  `json:"type"`
	Class  string  `json:"class,omitempty"`
	Where  string  `json:"where"`
	Start  int64   `json:"start"`
	End    int64   `json:"end"`
	Score  float64 `json:"score,omitempty"`
	Action string  `json:"action,omitempty"`
}

// Usage is the token usage of the exchange.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	Reported         bool  `json:"reported"` // the numbers are the upstream's, not warden's count
}

// Full is the extra detail recorded when the decision's audit level is
// "full". It still holds no secret: header names without values, and a
// digest of the response body.
type Full struct {
	// RequestHeaders are the names of the request's headers, canonical
	// form, sorted, without duplicates. Never their values.
	RequestHeaders []string `json:"request_headers"`
	// ResponseSHA256 is the hex SHA-256 of every response body byte sent
	// to the client, when warden saw all of them from the first one. It is
	// absent for error bodies warden writes itself after the record was
	// made (the error code is recorded instead).
	ResponseSHA256 string `json:"response_sha256,omitempty"`
}

// Bounds Append enforces. Longer values are cut and the field is named in
// Record.Truncated; a record that still exceeds MaxRecordBytes is refused.
const (
	// MaxReasonBytes bounds Reason, each decision reason and each applied
	// obligation.
	MaxReasonBytes = 1 << 10
	// MaxListLen bounds Decision.Reasons, Obligations.Applied, Grants and
	// Full.RequestHeaders.
	MaxListLen = 64
	// MaxFindings bounds Findings.
	MaxFindings = 256
	// MaxRecordBytes bounds the stored form of one record.
	MaxRecordBytes = 1 << 20
)

const truncMark = "…[truncated]"

// truncateString cuts s to at most MaxReasonBytes bytes on a UTF-8
// boundary, marking the cut. The bool reports a cut.
func truncateString(s string) (string, bool) {
	if len(s) <= MaxReasonBytes {
		return s, false
	}
	cut := MaxReasonBytes - len(truncMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncMark, true
}

// normalize applies the rules Append enforces on every record: time in UTC,
// the path without a query, strings and lists within their bounds. It
// copies what it shortens (slices, and the Decision, Obligations and Full
// holding them), so that values the caller shares are untouched.
func normalize(r *Record) {
	r.Time = r.Time.UTC()
	if i := strings.IndexByte(r.Path, '?'); i >= 0 {
		r.Path = r.Path[:i]
	}
	r.Truncated = nil
	mark := func(field string, cut bool) {
		if cut {
			r.Truncated = append(r.Truncated, field)
		}
	}
	var cut bool
	r.Reason, cut = truncateString(r.Reason)
	mark("reason", cut)
	if d := r.Decision; d != nil {
		if reasons, cut := boundList(d.Reasons); cut {
			c := *d
			c.Reasons = reasons
			r.Decision = &c
			mark("decision.reasons", true)
		}
	}
	if o := r.Obligations; o != nil {
		if applied, cut := boundList(o.Applied); cut {
			c := *o
			c.Applied = applied
			r.Obligations = &c
			mark("obligations.applied", true)
		}
	}
	r.Grants, cut = boundList(r.Grants)
	mark("grants", cut)
	if len(r.Findings) > MaxFindings {
		r.Findings = r.Findings[:MaxFindings:MaxFindings]
		mark("findings", true)
	}
	if f := r.Full; f != nil {
		if names, cut := boundList(f.RequestHeaders); cut {
			c := *f
			c.RequestHeaders = names
			r.Full = &c
			mark("full.request_headers", true)
		}
	}
}

// boundList returns l with at most MaxListLen elements of at most
// MaxReasonBytes each, copying it if anything is cut.
func boundList(l []string) ([]string, bool) {
	cut := len(l) > MaxListLen
	for _, s := range l {
		if len(s) > MaxReasonBytes {
			cut = true
			break
		}
	}
	if !cut {
		return l, false
	}
	out := make([]string, 0, min(len(l), MaxListLen))
	for _, s := range l[:min(len(l), MaxListLen)] {
		t, _ := truncateString(s)
		out = append(out, t)
	}
	return out, true
}

// indexPrefix is how every stored record starts; the decimal index and a
// comma follow.
var indexPrefix = []byte(`{"index":`)

// encodeBody returns the JSON encoding of r after the index: everything
// from the first field after "index" to the closing brace, appended to
// buf[:0]. The writer prepends `{"index":N,`. r must be normalized (Append
// does that first).
func encodeBody(buf []byte, r *Record) (body []byte, err error) {
	b, err := appendBody(buf[:0], r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// bodyPool recycles encoding buffers: the writer returns a record's buffer
// once it has copied the record into its batch.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBody() *[]byte { return bodyPool.Get().(*[]byte) }

func putBody(b *[]byte) {
	if cap(*b) <= 64<<10 { // a huge record's buffer is left to the GC
		bodyPool.Put(b)
	}
}

// appendRecord appends the stored form of the record at index with the
// given body (encodeBody's output) to dst.
func appendRecord(dst []byte, index int64, body []byte) []byte {
	dst = append(dst, indexPrefix...)
	dst = strconv.AppendInt(dst, index, 10)
	dst = append(dst, ',')
	return append(dst, body...)
}

// LeafHash is the Merkle tree's leaf hash of a stored record: the RFC 6962
// leaf hash SHA-256(0x00 || record), as tlog.RecordHash computes it.
func LeafHash(record []byte) tlog.Hash { return tlog.RecordHash(record) }

// storedIndex returns the index a stored record names in its first field,
// without decoding the rest. It is how verification spots a record stored
// at the wrong position before comparing hashes.
func storedIndex(data []byte) (int64, error) {
	if !bytes.HasPrefix(data, indexPrefix) {
		return 0, errors.New("does not start with the index field")
	}
	rest := data[len(indexPrefix):]
	end := bytes.IndexByte(rest, ',')
	if end <= 0 || end > 19 {
		return 0, errors.New("malformed index field")
	}
	digits := rest[:end]
	if len(digits) > 1 && digits[0] == '0' {
		return 0, errors.New("malformed index field")
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errors.New("malformed index field")
		}
		n = n*10 + int64(c-'0')
	}
	if n < 0 {
		return 0, errors.New("malformed index field")
	}
	return n, nil
}

// ParseRecord decodes a stored record. It checks that the data is one JSON
// object of the record schema starting with its index; it does not check
// hashes (Verify does). Unknown fields are accepted so that a newer
// warden's records stay readable; obligation numbers keep their exact
// text.
func ParseRecord(data []byte) (Record, error) {
	var r Record
	if len(data) == 0 {
		return r, errors.New("audit: parse record: empty")
	}
	if len(data) > MaxRecordBytes {
		return r, fmt.Errorf("audit: parse record: %d bytes, more than %d", len(data), MaxRecordBytes)
	}
	idx, err := storedIndex(data)
	if err != nil {
		return r, fmt.Errorf("audit: parse record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("audit: parse record: not a JSON record: %w", err)
	}
	if dec.More() {
		return r, errors.New("audit: parse record: data after the object")
	}
	if r.Index != idx {
		return r, errors.New("audit: parse record: more than one index field")
	}
	return r, nil
}
