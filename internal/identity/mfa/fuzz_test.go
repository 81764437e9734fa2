package mfa

import (
	"strings"
	"testing"
)

// knownParseErrors are all the texts parseVerifyRequest may return: none
// quotes the input, so nothing a client sends reaches the log.
var knownParseErrors = map[string]bool{
	"empty body":             true,
	"body is not valid JSON": true,
	`body is not an object with only a string "code"`: true,
	"trailing data after the JSON object":             true,
	`"code" is required`:                              true,
}

// FuzzParseVerifyRequest: the step-up body parser never panics, accepts
// only bounded input, and what it accepts re-validates consistently.
func FuzzParseVerifyRequest(f *testing.F) {
	for _, s := range []string{
		`{"code":"123456"}`, `{"code":""}`, `{"code":null}`, `{}`, `null`, `[]`, `"123456"`,
		`{"code":"123456"} `, `{"code":"123456"}{}`, `{"code":123456}`, `{"CODE":"123456"}`,
		`{"code":"12345\u0036"}`, `{"code":"١٢٣٤٥٦"}`, `{"code":"123456","x":1}`, `{"code":"1","code":"2"}`,
		`{"code`, "", "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, err := parseVerifyRequest(body)
		if err != nil {
			if code != "" {
				t.Fatalf("error %v with code %q", err, code)
			}
			if !strings.HasPrefix(err.Error(), "body larger than") && !knownParseErrors[err.Error()] {
				t.Fatalf("unexpected error text (it might quote the body): %v", err)
			}
			return
		}
		if len(body) > maxVerifyBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if ValidCode(code) {
			for i := 0; i < len(code); i++ {
				if code[i] < '0' || code[i] > '9' {
					t.Fatalf("ValidCode(%q) with a non-digit", code)
				}
			}
			if len(code) != Digits {
				t.Fatalf("ValidCode(%q) with length %d", code, len(code))
			}
		}
	})
}

// FuzzDecodeStore: the store file parser never panics and what it accepts
// is structurally valid.
func FuzzDecodeStore(f *testing.F) {
	f.Add([]byte(`{"version":1,"key_check":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","enrollments":[]}`))
	f.Add([]byte(`{"version":1,"key_check":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","enrollments":[{"user":"alice","secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","created_at":"2026-03-01T12:00:00Z","last_step":1,"confirmed":true}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := decodeStore("fuzz.json", data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range sf.Enrollments {
			if validateUser(r.User) != nil || seen[r.User] || !validSealed(r.Secret) || r.LastStep < 0 {
				t.Fatalf("accepted invalid record %+v", r)
			}
			seen[r.User] = true
		}
	})
}
