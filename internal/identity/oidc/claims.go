package oidc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/identity"
)

// maxPeekBytes bounds the payload Handles decodes to find the unverified
// iss; it is at least the largest max_token_bytes New accepts.
const maxPeekBytes = MaxTokenBytesLimit

// peekIssuer returns the iss claim of a compact JWS without verifying
// anything: it only routes the token to the provider whose keys and limits
// then decide. Claim names are matched exactly, as in claimSet.
func peekIssuer(tok string) (string, bool) {
	_, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return "", false
	}
	seg, _, ok := strings.Cut(rest, ".")
	if !ok || base64.RawURLEncoding.DecodedLen(len(seg)) > maxPeekBytes {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "", false
	}
	var iss string
	if v, ok := m["iss"]; !ok || json.Unmarshal(v, &iss) != nil {
		return "", false
	}
	return iss, true
}

// claimSet is a verified JWT claims set (RFC 7519 §4). Names are matched
// exactly; a name with dots that is not a top-level claim is looked up as a
// path into nested objects (Keycloak's "realm_access.roles").
type claimSet map[string]json.RawMessage

func parseClaims(payload []byte) (claimSet, error) {
	var m claimSet
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, identity.NotProven("oidc: claims are not a JSON object")
	}
	return m, nil
}

// lookup returns the claim's JSON value; a null value counts as absent.
func (c claimSet) lookup(name string) (json.RawMessage, bool) {
	if v, ok := c[name]; ok {
		return v, !isNull(v)
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	cur := map[string]json.RawMessage(c)
	parts := strings.Split(name, ".")
	for i, part := range parts {
		v, ok := cur[part]
		if !ok || isNull(v) {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		var next map[string]json.RawMessage
		if json.Unmarshal(v, &next) != nil {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// str returns a string claim.
func (c claimSet) str(name string) (string, bool, error) {
	v, ok := c.lookup(name)
	if !ok {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false, identity.NotProven("oidc: claim %q must be a string", name)
	}
	return s, true, nil
}

// Bounds of a NumericDate: the epoch to the end of year 9999.
const maxNumericDate = 253402300799

// date returns a NumericDate claim (RFC 7519 §2): seconds since the epoch,
// possibly fractional.
func (c claimSet) date(name string) (time.Time, bool, error) {
	v, ok := c.lookup(name)
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	if json.Unmarshal(v, &f) != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, identity.NotProven("oidc: claim %q must be a NumericDate (seconds since 1970)", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// list returns a claim that is an array of strings or a single string; with
// spaces, a string is split on whitespace (the OAuth scope claim, RFC 8693
// §4.2).
func (c claimSet) list(name string, spaces bool) ([]string, bool, error) {
	v, ok := c.lookup(name)
	if !ok {
		return nil, false, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if spaces {
			return strings.Fields(s), true, nil
		}
		return []string{s}, true, nil
	}
	var l []string
	if json.Unmarshal(v, &l) != nil {
		return nil, false, identity.NotProven("oidc: claim %q must be a string or an array of strings", name)
	}
	return l, true, nil
}
