package guard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Action is what is done with a finding.
type Action uint8

// Actions, in increasing strength: when findings overlap, the stronger wins.
const (
	ActionFlag  Action = iota // reported only; the text passes unchanged
	ActionMask                // replaced by a typed placeholder, "[EMAIL]"
	ActionHash                // replaced by a keyed token, "[EMAIL:3f9a1c2e]"
	ActionBlock               // the exchange is refused
)

// String returns the gateway.Finding.Action word: flagged, masked, hashed, blocked.
func (a Action) String() string {
	switch a {
	case ActionMask:
		return "masked"
	case ActionHash:
		return "hashed"
	case ActionBlock:
		return "blocked"
	default:
		return "flagged"
	}
}

// ParseAction reads an obligation value: "mask", "hash" or "block".
func ParseAction(s string) (Action, error) {
	switch s {
	case "mask":
		return ActionMask, nil
	case "hash":
		return ActionHash, nil
	case "block":
		return ActionBlock, nil
	}
	return ActionFlag, fmt.Errorf("guard: unknown action %q (want mask, hash or block)", s)
}

// HashTokenBytes is how many bytes of the HMAC a hash token keeps (hex-encoded in the token).
const HashTokenBytes = 4

// Policy decides the action for each finding and carries it out. It is
// built from gateway.Obligations.Mask: a finding type ("email") or a data
// class ("pii") to "mask", "hash" or "block"; a rule for the type beats a
// rule for the class; a finding no rule names is only flagged. A nil
// *Policy flags everything. A Policy is safe for concurrent use.
type Policy struct {
	rules map[string]Action
	key   []byte
}

// NewPolicy builds a Policy from rules (gateway.Obligations.Mask). key is the
// tenant's secret for "hash" tokens: the same value gives the same token
// under the same key, and nobody without the key can test a guess. A hash
// rule without a key is an error (fail closed), as is an unknown action.
func NewPolicy(rules map[string]string, key []byte) (*Policy, error) {
	p := &Policy{rules: make(map[string]Action, len(rules)), key: slices.Clone(key)}
	for k, v := range rules {
		if k == "" {
			return nil, errors.New("guard: policy rule with an empty data class or finding type")
		}
		a, err := ParseAction(v)
		if err != nil {
			return nil, fmt.Errorf("guard: policy rule %s: %w", k, err)
		}
		if a == ActionHash && len(key) == 0 {
			return nil, fmt.Errorf("guard: policy rule %s: hash needs a tenant key", k)
		}
		p.rules[k] = a
	}
	return p, nil
}

// ActionFor returns the action for f.
func (p *Policy) ActionFor(f Finding) Action {
	if p == nil {
		return ActionFlag
	}
	if a, ok := p.rules[f.Type]; ok {
		return a
	}
	if a, ok := p.rules[f.Class]; ok {
		return a
	}
	return ActionFlag
}

// Rewrites reports whether p can change text (any mask, hash or block rule).
func (p *Policy) Rewrites() bool { return p != nil && len(p.rules) > 0 }

// ErrBlocked is matched by errors.Is for every *BlockedError.
var ErrBlocked = errors.New("guard: blocked by policy")

// BlockedError reports that a finding's action is block: the exchange must
// be refused (403 before the upstream was called, a final SSE error event
// in a stream). Finding says what was found, never the value.
type BlockedError struct{ Finding Finding }

func (e *BlockedError) Error() string {
	return fmt.Sprintf("guard: blocked by policy: %s (%s) at %d..%d", e.Finding.Type, e.Finding.Class, e.Finding.Start, e.Finding.End)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Decide sets the Action of each finding in fs from the policy and returns
// the first blocked finding's error, or nil.
func (p *Policy) Decide(fs []Finding) error {
	var blocked error
	for i := range fs {
		fs[i].Action = p.ActionFor(fs[i])
		if fs[i].Action == ActionBlock && blocked == nil {
			blocked = &BlockedError{Finding: fs[i]}
		}
	}
	return blocked
}

// Apply appends text to dst with the findings' actions carried out and
// returns it. fs must be sorted by Start with actions decided (Decide) and
// offsets relative to text; findings outside text are ignored. Overlapping
// findings are merged: the union is replaced once, by the first one's
// placeholder. Apply never blocks: call Decide first.
func (p *Policy) Apply(dst, text []byte, fs []Finding) []byte {
	return p.apply(dst, text, fs, nil)
}

// apply is Apply with an optional decoder for hash values: spans of raw
// JSON string content are decoded before hashing, so a value gets the same
// token whether or not it was written with escapes.
func (p *Policy) apply(dst, text []byte, fs []Finding, decode func(dst, raw []byte) []byte) []byte {
	last := 0
	for i := 0; i < len(fs); i++ {
		f := fs[i]
		if f.Action != ActionMask && f.Action != ActionHash {
			continue
		}
		s, e := max(f.Start, last), min(f.End, len(text))
		if s >= e {
			continue
		}
		// Merge everything that overlaps the span.
		for i+1 < len(fs) && fs[i+1].Start < e {
			if n := fs[i+1]; n.Action == ActionMask || n.Action == ActionHash {
				e = max(e, min(n.End, len(text)))
			}
			i++
		}
		dst = append(dst, text[last:s]...)
		dst = p.token(dst, f, text[s:e], decode)
		last = e
	}
	return append(dst, text[last:]...)
}

// token appends the replacement for value: "[TYPE]" or "[TYPE:hex]".
func (p *Policy) token(dst []byte, f Finding, value []byte, decode func(dst, raw []byte) []byte) []byte {
	dst = append(dst, '[')
	dst = appendLabel(dst, f.Type)
	if f.Action == ActionHash && p != nil && len(p.key) > 0 {
		if decode != nil {
			var buf [256]byte
			value = decode(buf[:0], value)
		}
		m := hmac.New(sha256.New, p.key)
		m.Write([]byte(f.Type))
		m.Write([]byte{0})
		m.Write(canonical(make([]byte, 0, len(value)), f.Type, value))
		var sum [sha256.Size]byte
		dst = append(dst, ':')
		dst = hex.AppendEncode(dst, m.Sum(sum[:0])[:HashTokenBytes])
	}
	return append(dst, ']')
}

// appendLabel appends the placeholder label for a type: upper case letters,
// digits and '_' only, so that a placeholder never needs escaping in JSON
// and never looks like the value it replaces.
func appendLabel(dst []byte, typ string) []byte {
	if typ == "" {
		return append(dst, "REDACTED"...)
	}
	for i := 0; i < len(typ) && i < 40; i++ {
		c := typ[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// canonical is the form of a value that is hashed: numbers lose their
// formatting, so "4111 1111 1111 1111" and "4111-1111-1111-1111" give the
// same token, e-mail addresses their case; everything else is hashed
// exactly.
func canonical(dst []byte, typ string, v []byte) []byte {
	switch typ {
	case TypePaymentCard, TypePhone, TypeSSN, TypeIBAN:
		for _, c := range v {
			switch {
			case c >= '0' && c <= '9', c == '+':
				dst = append(dst, c)
			case c >= 'a' && c <= 'z':
				dst = append(dst, c-('a'-'A'))
			case c >= 'A' && c <= 'Z':
				dst = append(dst, c)
			}
		}
		return dst
	case TypeEmail:
		for _, c := range v {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	return append(dst, v...)
}
