package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// The request body fields that limit how many tokens a model generates:
// max_tokens (OpenAI completions and the older chat parameter),
// max_completion_tokens (OpenAI chat completions) and max_output_tokens
// (OpenAI responses).
const (
	fieldMaxTokens           = "max_tokens"
	fieldMaxCompletionTokens = "max_completion_tokens"
	fieldMaxOutputTokens     = "max_output_tokens"
)

// tokenField reports whether a top-level key (raw JSON string contents,
// escapes undecoded) names a token limit. Keys are decoded first
// ("max\u005ftokens" is max_tokens to every JSON parser) and compared
// without regard to case, because some upstreams decode JSON into structs
// case-insensitively (Go's encoding/json does): "MAX_TOKENS" must not slip
// past the policy or the cap.
func tokenField(raw []byte) bool {
	ascii := bytes.IndexByte(raw, '\\') < 0
	for _, c := range raw {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return asciiEqualFold(raw, fieldMaxTokens) || asciiEqualFold(raw, fieldMaxCompletionTokens) ||
			asciiEqualFold(raw, fieldMaxOutputTokens)
	}
	var key string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &key); err != nil {
		return false
	}
	return strings.EqualFold(key, fieldMaxTokens) || strings.EqualFold(key, fieldMaxCompletionTokens) ||
		strings.EqualFold(key, fieldMaxOutputTokens)
}

// asciiEqualFold compares ASCII b and s without regard to case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// RequestedMaxTokens returns the largest token limit a JSON object body asks
// for in max_tokens, max_completion_tokens or max_output_tokens, every
// occurrence counted (a duplicate key cannot hide a larger value from the
// policy). It reads values as generously as a lax upstream would: a
// numeric string counts as its number, a fraction rounds up, a value too
// large or infinite counts as math.MaxInt64, a negative one as 0. null,
// booleans, objects and arrays count as no limit. A body that is not a
// single valid JSON object asks for nothing: 0.
func RequestedMaxTokens(body []byte) (int64, error) {
	if !looksLikeObject(body) || !json.Valid(body) {
		return 0, nil
	}
	var max int64
	ok := topLevelMembers(body, func(key []byte, vs, ve int) {
		if !tokenField(key) {
			return
		}
		if n, ok := tokenCount(body[vs:ve]); ok && n > max {
			max = n
		}
	})
	if !ok {
		// json.Valid accepted it: the scanner disagrees with encoding/json.
		return 0, errors.New("request body: valid JSON object the scanner cannot read")
	}
	return max, nil
}

// tokenCount reads one token-limit value; ok=false means it sets no limit.
func tokenCount(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	s := string(v)
	switch v[0] {
	case 'n', 't', 'f', '{', '[':
		return 0, false
	case '"':
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return max(n, 0), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	switch {
	case math.IsNaN(f) || f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= 0:
		return 0, true
	default:
		return int64(math.Ceil(f)), true
	}
}

// CapMaxTokens rewrites a JSON object body so that it asks for at most
// limit tokens: every max_tokens, max_completion_tokens and
// max_output_tokens whose value is not a plain integer literal between 0
// and limit (a larger number, a fraction, a string, null, ...) is set to
// limit. If the body has none of them and insert is not "", insert: limit
// is added. It returns the new body (body itself if nothing changed) and
// what it did: "lowered", "set" or "kept". A body that is not a single
// valid JSON object is an error: the limit cannot be applied to it.
func CapMaxTokens(body []byte, limit int64, insert string) ([]byte, string, error) {
	if limit <= 0 {
		return nil, "", errors.New("limit must be positive")
	}
	if !looksLikeObject(body) || !json.Valid(body) {
		return nil, "", errors.New("the request body is not a JSON object")
	}
	type span struct{ start, end int }
	var replace []span
	found := false
	ok := topLevelMembers(body, func(key []byte, vs, ve int) {
		if !tokenField(key) {
			return
		}
		found = true
		if !withinLimit(body[vs:ve], limit) {
			replace = append(replace, span{vs, ve})
		}
	})
	if !ok {
		return nil, "", errors.New("the request body is not a JSON object")
	}
	num := strconv.AppendInt(nil, limit, 10)
	switch {
	case len(replace) > 0:
		out := make([]byte, 0, len(body)+len(replace)*len(num))
		last := 0
		for _, r := range replace {
			out = append(out, body[last:r.start]...)
			out = append(out, num...)
			last = r.end
		}
		return append(out, body[last:]...), "lowered", nil
	case found || insert == "":
		return body, "kept", nil
	}
	open := bytes.IndexByte(body, '{')
	rest := body[open+1:]
	member, err := json.Marshal(insert)
	if err != nil {
		return nil, "", err
	}
	member = append(append(member, ':'), num...)
	if len(bytes.TrimLeft(rest, " \t\r\n")) > 0 && bytes.TrimLeft(rest, " \t\r\n")[0] != '}' {
		member = append(member, ',')
	}
	out := make([]byte, 0, len(body)+len(member))
	out = append(out, body[:open+1]...)
	out = append(out, member...)
	return append(out, rest...), "set", nil
}

// withinLimit reports whether v is a plain JSON integer literal in 0..limit.
func withinLimit(v []byte, limit int64) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return err == nil && n <= limit
}

// looksLikeObject reports whether body's first non-space byte is '{'.
func looksLikeObject(body []byte) bool {
	t := bytes.TrimLeft(body, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// topLevelMembers calls fn for each member of the JSON object in body with
// the raw key (between the quotes, escapes undecoded) and the byte span of
// the value. body must be valid JSON (json.Valid); the scan relies on it
// only to find where values end and never reads out of bounds. It
// reports false if body is not an object.
func topLevelMembers(body []byte, fn func(key []byte, vs, ve int)) bool {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return true
	}
	for i < len(body) {
		if body[i] != '"' {
			return false
		}
		ke := skipString(body, i)
		if ke < 0 {
			return false
		}
		key := body[i+1 : ke-1]
		i = skipSpace(body, ke)
		if i >= len(body) || body[i] != ':' {
			return false
		}
		vs := skipSpace(body, i+1)
		ve := skipValue(body, vs)
		if ve < 0 {
			return false
		}
		fn(key, vs, ve)
		i = skipSpace(body, ve)
		if i >= len(body) {
			return false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or -1 if it does not end.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
// Objects and arrays are skipped by counting brackets outside strings.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
	scalar:
		for ; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				break scalar
			}
		}
		if j == i {
			return -1
		}
		return j
	}
}
