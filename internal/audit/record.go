// Package audit keeps warden's audit log: one record per exchange, allowed or
// denied, appended to a JSON-lines file whose records are chained by SHA-256
// so that any change to a written record is detected by Verify, and each
// Append returns only once its record is on stable storage.
//
// # Hash chain
//
// Every record is one line: the JSON encoding of Record followed by "\n".
// Record's field order is fixed, with seq first and prev, hash last, so a line
// always ends in
//
//	,"prev":"<64 hex>","hash":"<64 hex>"}
//
// The hash of record n is
//
//	hash_n = SHA-256( prev_n || body_n )
//
// where prev_n is the 32 raw bytes of hash_{n-1} (32 zero bytes for n = 1,
// written as 64 "0"s in the prev field) and body_n is the exact bytes of
// line n without its "\n" and with the 64 hex digits of the hash field
// removed, i.e. the record's encoding with hash set to "". Hex is lowercase.
//
// The verifier hashes the bytes as stored; it does not re-encode the record.
// Every byte of a line except the hash digits is therefore covered by the
// hash, and the hash digits are covered by the comparison and by the next
// record's prev: a change to any byte of any record is detected, and so is a
// deleted, inserted or reordered record (seq must count 1, 2, 3, ... and prev
// must equal the previous hash). Hashing stored bytes also keeps old logs
// verifiable if a future encoder writes JSON differently.
//
// What the chain alone cannot detect: removal of records from the end of the
// file (the shorter file is a valid chain), and an attacker who rewrites the
// file and recomputes every hash after the change. Both need the head hash
// to be anchored outside the file; signed checkpoints in the Merkle log that
// replaces this format provide that. Until then, operators can record the
// head printed by "warden audit verify".
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one audited exchange. JSON field names are snake_case; the field
// order is part of the format (seq first, prev and hash last) and must not
// change. Seq, Prev and Hash are assigned by Append.
type Record struct {
	Seq       uint64     `json:"seq"`                 // 1, 2, 3, ... in file order
	Time      time.Time  `json:"time"`                // when warden received the request, UTC, RFC 3339 with nanoseconds
	RequestID string     `json:"request_id"`          // warden's request id
	Principal *Principal `json:"principal,omitempty"` // nil: no principal was proven
	SourceIP  string     `json:"source_ip,omitempty"` // TCP peer address
	Method    string     `json:"method"`
	Path      string     `json:"path"` // escaped path only; never the query string, which may carry secrets
	Route     string     `json:"route,omitempty"`
	Segment   string     `json:"segment,omitempty"`
	Action    string     `json:"action,omitempty"`
	Model     string     `json:"model,omitempty"`
	Stream    bool       `json:"stream,omitempty"`
	Decision  *Decision  `json:"decision,omitempty"` // nil: authorization did not run

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

	Prev string `json:"prev"` // hex hash of the previous record; 64 "0"s for the first
	Hash string `json:"hash"` // hex hash of this record, see the package comment
}

// Principal is the audited identity: who called and how it was proven.
// It carries identifiers only, never a credential.
type Principal struct {
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	OnBehalfOf   string `json:"on_behalf_of,omitempty"`
	AuthMethod   string `json:"auth_method"`
	CredentialID string `json:"credential_id,omitempty"`
}

// Decision is the audited authorization outcome.
type Decision struct {
	Allow         bool           `json:"allow"`
	Reasons       []string       `json:"reasons,omitempty"`
	Obligations   map[string]any `json:"obligations,omitempty"`
	PolicyVersion string         `json:"policy_version,omitempty"`
}

const (
	// MaxReasonBytes bounds Record.Reason; Append truncates longer reasons.
	MaxReasonBytes = 1 << 10
	// MaxLineBytes bounds one record line, "\n" included. Append refuses
	// larger records and readers treat longer lines as an error.
	MaxLineBytes = 1 << 20

	hashHexLen = 64
	// ZeroHash is the prev of the first record and the head of an empty log.
	ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
)

const truncMark = "…[truncated]"

// truncateReason cuts s to at most MaxReasonBytes bytes on a UTF-8 boundary,
// marking the cut.
func truncateReason(s string) string {
	if len(s) <= MaxReasonBytes {
		return s
	}
	cut := MaxReasonBytes - len(truncMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncMark
}

// The encoding of a record with Seq = 0, Prev = "" and Hash = "" starts and
// ends with these; Append marshals the part between them once, in the
// caller's goroutine, and the writer splices in seq and prev.
var (
	encPrefix = []byte(`{"seq":0,`)
	encSuffix = []byte(`,"prev":"","hash":""}`)
	// A stored line ends with hashField + 64 hex digits + `"}`.
	hashField = []byte(`,"hash":"`)
)

// encodeMiddle normalizes r (UTC time, truncated reason, path without query)
// and returns the JSON of every field between seq and prev, without the
// separating commas. r's Seq, Prev and Hash are ignored.
func encodeMiddle(r *Record) ([]byte, error) {
	c := *r
	c.Seq, c.Prev, c.Hash = 0, "", ""
	normalize(&c)
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	if !bytes.HasPrefix(b, encPrefix) || !bytes.HasSuffix(b, encSuffix) || len(b) <= len(encPrefix)+len(encSuffix) {
		// Only a change to Record's field order can cause this.
		return nil, fmt.Errorf("encode record: unexpected encoding %.40q", b)
	}
	return b[len(encPrefix) : len(b)-len(encSuffix)], nil
}

// normalize applies the rules Append enforces on every record.
func normalize(r *Record) {
	r.Time = r.Time.UTC()
	r.Reason = truncateReason(r.Reason)
	if i := strings.IndexByte(r.Path, '?'); i >= 0 {
		r.Path = r.Path[:i]
	}
}

// parseLine decodes one stored line (without "\n"). It checks the JSON and
// the shape of the hash field, not the chain.
func parseLine(line []byte) (Record, error) {
	var r Record
	if len(line) == 0 {
		return r, fmt.Errorf("empty line")
	}
	if _, _, err := splitHash(line); err != nil {
		return r, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // obligations keep their numbers exactly as written
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("not a JSON record: %v", err)
	}
	if dec.More() {
		return r, fmt.Errorf("not a JSON record: data after the object")
	}
	return r, nil
}

// splitHash splits a stored line into the part before the hash digits and
// the digits. The line must end in `,"hash":"<64 lowercase hex>"}`.
func splitHash(line []byte) (head []byte, hexHash []byte, err error) {
	n := len(line)
	need := len(hashField) + hashHexLen + 2
	if n < need+1 || line[n-2] != '"' || line[n-1] != '}' || !bytes.Equal(line[n-need:n-need+len(hashField)], hashField) {
		return nil, nil, fmt.Errorf("malformed record: does not end with the hash field")
	}
	h := line[n-2-hashHexLen : n-2]
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, nil, fmt.Errorf("malformed record: hash is not 64 lowercase hex digits")
		}
	}
	return line[:n-2-hashHexLen], h, nil
}
