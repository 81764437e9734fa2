// Package canary makes canary tokens, finds them in model output and puts
// them into system prompts.
//
// Its guarantee: a configured canary is found in any text that contains it
// (ASCII case ignored), also when the text arrives in pieces — the Scanner
// holds back every suffix that could still grow into a canary — and a
// finding names the type and span, never the token.
package canary

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/warden-ai/warden/internal/guard"
)

// Finding vocabulary.
const (
	// Guard is gateway.Finding.Guard of a canary finding.
	Guard = "canary"
	// TypeLeak is the finding type of a canary seen in a response.
	TypeLeak = "canary_leak"
	// ClassLeak is its data class.
	ClassLeak = "leak"
)

// Prefix starts every generated token: "wdn-canary-" and 32 hex digits.
const Prefix = "wdn-canary-"

// MinBytes is the shortest token accepted: shorter ones would match
// ordinary text.
const MinBytes = 16

// MaxBytes is the longest token accepted.
const MaxBytes = 256

// New returns a fresh token: Prefix and 128 random bits in hex.
func New() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("canary: %w", err)
	}
	return Prefix + hex.EncodeToString(b[:]), nil
}

// Check reports whether tok can be a canary: MinBytes to MaxBytes of
// printable ASCII without spaces, so that it survives JSON and SSE
// unchanged and is never split by a tokenizer into ordinary words only.
func Check(tok string) error {
	if len(tok) < MinBytes || len(tok) > MaxBytes {
		return fmt.Errorf("%d bytes: must be %d to %d", len(tok), MinBytes, MaxBytes)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}

// needle is what is looked for: a generated token's random part (so that
// a model dropping the prefix still leaks), else the whole token, folded
// to lower case.
func needle(tok string) []byte {
	n := []byte(tok)
	if r, ok := bytes.CutPrefix(n, []byte(Prefix)); ok && len(r) >= MinBytes && isHex(r) {
		n = r
	}
	return bytes.ToLower(n)
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Scanner finds canaries. It implements guard.Scanner; its findings are
// TypeLeak / ClassLeak with score 1.
type Scanner struct {
	needles [][]byte
	longest int
}

// NewScanner returns a Scanner for tokens; each must pass Check.
func NewScanner(tokens ...string) (*Scanner, error) {
	if len(tokens) == 0 {
		return nil, errors.New("canary: no token")
	}
	s := &Scanner{}
	for _, t := range tokens {
		if err := Check(t); err != nil {
			return nil, fmt.Errorf("canary: token: %w", err)
		}
		n := needle(t)
		s.needles = append(s.needles, n)
		s.longest = max(s.longest, len(n))
	}
	return s, nil
}

// Scan reports every occurrence of a canary in text.
func (s *Scanner) Scan(text []byte) []guard.Finding {
	var out []guard.Finding
	for _, n := range s.needles {
		for i := 0; i+len(n) <= len(text); {
			j := indexFold(text[i:], n)
			if j < 0 {
				break
			}
			out = append(out, guard.Finding{Guard: Guard, Type: TypeLeak, Class: ClassLeak,
				Start: i + j, End: i + j + len(n), Score: 1})
			i += j + len(n)
		}
	}
	return out
}

// Hold returns the length of the longest suffix of text that is the start
// of a canary (ASCII case ignored): it may still become one.
func (s *Scanner) Hold(text []byte) int {
	h := 0
	for _, n := range s.needles {
		for k := min(len(n)-1, len(text)); k > h; k-- {
			if equalFold(text[len(text)-k:], n[:k]) {
				h = k
				break
			}
		}
	}
	return h
}

// indexFold is bytes.Index ignoring ASCII case; n is lower case.
func indexFold(s, n []byte) int {
	if len(n) == 0 {
		return 0
	}
	first := n[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper = first - ('a' - 'A')
	}
	for i := 0; i+len(n) <= len(s); i++ {
		j := bytes.IndexByte(s[i:len(s)-len(n)+1], first)
		if upper != first {
			if k := bytes.IndexByte(s[i:len(s)-len(n)+1], upper); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		i += j
		if equalFold(s[i:i+len(n)], n) {
			return i
		}
	}
	return -1
}

// equalFold compares a with lower-case b, ignoring ASCII case in a.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

var _ guard.Scanner = (*Scanner)(nil)
