package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestRequestedMaxTokens(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"none", `{"model":"m","messages":[]}`, 0},
		{"max_tokens", `{"max_tokens":256}`, 256},
		{"max_completion_tokens", `{"max_completion_tokens": 1024}`, 1024},
		{"max_output_tokens", `{"max_output_tokens":77}`, 77},
		{"largest of several", `{"max_tokens":10,"max_completion_tokens":900,"max_output_tokens":30}`, 900},
		{"duplicate key: largest counts", `{"max_tokens":10,"max_tokens":100000}`, 100000},
		{"duplicate key, larger first", `{"max_tokens":100000,"max_tokens":10}`, 100000},
		{"escaped key", `{"max\u005ftokens":5000}`, 5000},
		{"key in another case", `{"MAX_Tokens":7000}`, 7000},
		{"key with the Kelvin sign", `{"max_to\u212aens":8000}`, 8000},
		{"similar key", `{"max_tokens_x":9000,"max-tokens":9000}`, 0},
		{"numeric string", `{"max_tokens":" 4096 "}`, 4096},
		{"fraction rounds up", `{"max_tokens":2.1}`, 3},
		{"exponent", `{"max_tokens":1e5}`, 100000},
		{"huge", `{"max_tokens":1e400}`, math.MaxInt64},
		{"int64 overflow", `{"max_tokens":99999999999999999999}`, math.MaxInt64},
		{"infinite string", `{"max_tokens":"Infinity"}`, math.MaxInt64},
		{"negative", `{"max_tokens":-1}`, 0},
		{"null", `{"max_tokens":null}`, 0},
		{"boolean", `{"max_tokens":true}`, 0},
		{"object", `{"max_tokens":{"n":99999}}`, 0},
		{"non-numeric string", `{"max_tokens":"lots"}`, 0},
		{"nested keys do not count", `{"metadata":{"max_tokens":99999},"messages":[{"max_tokens":5}]}`, 0},
		{"string mentioning the key", `{"prompt":"\"max_tokens\":99999"}`, 0},
		{"leading space", " \n{\"max_tokens\":8}", 8},
		{"not an object", `[{"max_tokens":9}]`, 0},
		{"not JSON", `{"max_tokens":9`, 0},
		{"two documents", `{"max_tokens":1}{"max_tokens":99}`, 0},
		{"empty", ``, 0},
		{"form body", `max_tokens=999`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RequestedMaxTokens([]byte(tt.body))
			if err != nil || got != tt.want {
				t.Errorf("RequestedMaxTokens(%s) = %d, %v; want %d", tt.body, got, err, tt.want)
			}
		})
	}
}

func TestCapMaxTokens(t *testing.T) {
	tests := []struct {
		name, body, insert string
		limit              int64
		want, what, err    string
	}{
		{name: "lower", body: `{"model":"m","max_tokens":4096}`, limit: 256,
			want: `{"model":"m","max_tokens":256}`, what: "lowered"},
		{name: "keep smaller", body: `{"model":"m","max_tokens":100}`, limit: 256,
			want: `{"model":"m","max_tokens":100}`, what: "kept"},
		{name: "keep equal", body: `{"max_completion_tokens":256}`, limit: 256,
			want: `{"max_completion_tokens":256}`, what: "kept"},
		{name: "lower every field and duplicate", body: `{"max_tokens":10,"max_tokens":999, "max_output_tokens" : 5000 ,"x":1}`, limit: 256,
			want: `{"max_tokens":10,"max_tokens":256, "max_output_tokens" : 256 ,"x":1}`, what: "lowered"},
		{name: "string, null, fraction, negative are replaced",
			body:  `{"max_tokens":"100","max_completion_tokens":null,"max_output_tokens":1.5,"max\u005ftokens":-1}`,
			limit: 256, want: `{"max_tokens":256,"max_completion_tokens":256,"max_output_tokens":256,"max\u005ftokens":256}`, what: "lowered"},
		{name: "case-insensitive key", body: `{"Max_Tokens":4096}`, limit: 256,
			want: `{"Max_Tokens":256}`, what: "lowered"},
		{name: "insert into empty object", body: `{}`, insert: "max_tokens", limit: 64,
			want: `{"max_tokens":64}`, what: "set"},
		{name: "insert before members", body: ` { "model":"m"}`, insert: "max_completion_tokens", limit: 64,
			want: ` {"max_completion_tokens":64, "model":"m"}`, what: "set"},
		{name: "no field, nothing to insert", body: `{"input":"x"}`, limit: 64,
			want: `{"input":"x"}`, what: "kept"},
		{name: "nested field untouched, insert at top", body: `{"metadata":{"max_tokens":9999}}`, insert: "max_output_tokens", limit: 64,
			want: `{"max_output_tokens":64,"metadata":{"max_tokens":9999}}`, what: "set"},
		{name: "not an object", body: `["max_tokens"]`, limit: 64, err: "not a JSON object"},
		{name: "not JSON", body: `{"max_tokens":`, limit: 64, err: "not a JSON object"},
		{name: "zero limit", body: `{}`, limit: 0, err: "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, what, err := CapMaxTokens([]byte(tt.body), tt.limit, tt.insert)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("CapMaxTokens = %s, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want || what != tt.what {
				t.Fatalf("CapMaxTokens(%s) = %s, %q, %v; want %s, %q", tt.body, got, what, err, tt.want, tt.what)
			}
			if !json.Valid(got) {
				t.Fatalf("output is not valid JSON: %s", got)
			}
		})
	}
}

// FuzzRequestedMaxTokens checks the top-level scanner against
// encoding/json: no panic, and the value found is at least what
// encoding/json decodes for each field (it keeps the last duplicate).
func FuzzRequestedMaxTokens(f *testing.F) {
	for _, s := range []string{
		`{"max_tokens":256}`, `{"a":{"max_tokens":1},"max_output_tokens":"12"}`, `{"max\u005ftokens":9e3}`,
		`{"s":"\\\"","max_completion_tokens":[1,{"x":"]"}]}`, `{`, `[]`, `{"max_tokens":-0.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := RequestedMaxTokens(body)
		if err != nil {
			t.Fatalf("RequestedMaxTokens(%q): %v", body, err)
		}
		if got < 0 {
			t.Fatalf("RequestedMaxTokens(%q) = %d", body, got)
		}
		var m map[string]json.RawMessage
		if !looksLikeObject(body) || json.Unmarshal(body, &m) != nil {
			if got != 0 {
				t.Fatalf("RequestedMaxTokens(%q) = %d for a body that is not a JSON object", body, got)
			}
			return
		}
		for _, k := range []string{fieldMaxTokens, fieldMaxCompletionTokens, fieldMaxOutputTokens} {
			if v, ok := m[k]; ok {
				if n, ok := tokenCount(bytes.TrimSpace(v)); ok && n > got {
					t.Fatalf("RequestedMaxTokens(%q) = %d, but %s decodes as %d", body, got, k, n)
				}
			}
		}
	})
}

// FuzzCapMaxTokens: no panic; a capped body is valid JSON whose every
// token field, as encoding/json and as RequestedMaxTokens read it, is at
// most the limit; a refused body is not a JSON object.
func FuzzCapMaxTokens(f *testing.F) {
	for _, s := range []string{
		`{"max_tokens":4096}`, `{}`, `{"model":"m"}`, `{"max_tokens":"9","max_tokens":null}`,
		`{"x":[{"max_tokens":1}],"max_output_tokens":1e9}`, `not json`, ` {"a" : "}" }`,
	} {
		f.Add([]byte(s), int64(256), "max_tokens")
	}
	f.Fuzz(func(t *testing.T, body []byte, limit int64, insert string) {
		out, what, err := CapMaxTokens(body, limit, insert)
		if err != nil {
			if limit > 0 && looksLikeObject(body) && json.Valid(body) {
				t.Fatalf("CapMaxTokens(%q, %d) refused a JSON object: %v", body, limit, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("CapMaxTokens(%q, %d) = %q: not valid JSON", body, limit, out)
		}
		if what == "kept" && !bytes.Equal(out, body) {
			t.Fatalf("kept, but the body changed: %q -> %q", body, out)
		}
		max, err := RequestedMaxTokens(out)
		if err != nil || max > limit {
			t.Fatalf("CapMaxTokens(%q, %d) = %q, which asks for %d (%v)", body, limit, out, max, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("capped body does not decode: %v", err)
		}
		for _, k := range []string{fieldMaxTokens, fieldMaxCompletionTokens, fieldMaxOutputTokens} {
			if v, ok := m[k]; ok && !withinLimit(bytes.TrimSpace(v), limit) {
				t.Fatalf("CapMaxTokens(%q, %d) = %q: %s is %s", body, limit, out, k, v)
			}
		}
		if what == "set" && insert != "" {
			var key string // insert as JSON writes it: invalid UTF-8 becomes U+FFFD
			if b, err := json.Marshal(insert); err != nil || json.Unmarshal(b, &key) != nil {
				t.Fatalf("insert %q does not round-trip", insert)
			}
			if _, ok := m[key]; !ok {
				t.Fatalf("set, but %q is not in %q", insert, out)
			}
		}
	})
}
