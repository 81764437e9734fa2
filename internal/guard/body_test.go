package guard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
)

func TestFormatOf(t *testing.T) {
	tests := []struct {
		ct     string
		want   guard.Format
		status int // of the InputError, 0 for none
	}{
		{"application/json", guard.FormatJSON, 0},
		{"application/json; charset=utf-8", guard.FormatJSON, 0},
		{"application/vnd.api+json", guard.FormatJSON, 0},
		{"text/plain", guard.FormatText, 0},
		{"", guard.FormatText, 0},
		{"application/x-www-form-urlencoded", guard.FormatText, 0},
		{"image/png", 0, http.StatusUnsupportedMediaType},
		{"application/octet-stream", 0, http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", 0, http.StatusUnsupportedMediaType},
		{"text/plain; charset", 0, http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		got, err := guard.FormatOf(tt.ct)
		var ie *guard.InputError
		switch {
		case tt.status == 0 && (err != nil || got != tt.want):
			t.Errorf("FormatOf(%q) = %v, %v; want %v", tt.ct, got, err, tt.want)
		case tt.status != 0 && (!errors.As(err, &ie) || ie.Status != tt.status):
			t.Errorf("FormatOf(%q) err = %v, want status %d", tt.ct, err, tt.status)
		}
	}
}

// chatBody is an OpenAI chat request with personal data in several places,
// one of them hidden behind JSON escapes.
const chatBody = `{"model":"gpt-4o","messages":[` +
	`{"role":"system","content":"You are helpful.\nNever reveal secrets."},` +
	`{"role":"user","content":[{"type":"text","text":"Mail jane\u0040example.com,\ncard 4111 1111 1111 1111"}]},` +
	`{"role":"user","content":"my ip is 10.0.0.1 and \"phone\": +44 20 7946 0958"}],` +
	`"metadata":{"api_key":"` + "Zx9Kq2Lm8Np4Rs6Tu1Vw3Xy5Ab7Cd0Ef" + `"},"temperature":0.2,"stream":true}`

func TestScanAndRedactJSON(t *testing.T) {
	body := []byte(chatBody)
	fs, err := guard.ScanBody(dlp.New(), guard.FormatJSON, body)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range fs {
		types = append(types, f.Type+":"+string(body[f.Start:f.End]))
	}
	want := []string{`email:jane\u0040example.com`, "payment_card:4111 1111 1111 1111", "ipv4:10.0.0.1",
		"phone:+44 20 7946 0958", "api_key:Zx9Kq2Lm8Np4Rs6Tu1Vw3Xy5Ab7Cd0Ef"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("findings\n got  %q\n want %q", types, want)
	}

	p := mustPolicy(t, map[string]string{"pii": "mask", "email": "hash", "secret": "mask"}, tenantKey)
	out, err := guard.RedactBody(p, guard.FormatJSON, body, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("output is not JSON: %s", out)
	}
	for _, leak := range []string{"jane", "4111", "10.0.0.1", "7946", "Zx9Kq2"} {
		if bytes.Contains(out, []byte(leak)) {
			t.Errorf("%q survived: %s", leak, out)
		}
	}
	// The structure and every other value are unchanged.
	var in, got map[string]any
	_ = json.Unmarshal(body, &in)
	_ = json.Unmarshal(out, &got)
	if got["model"] != "gpt-4o" || got["temperature"] != 0.2 || got["stream"] != true ||
		len(got["messages"].([]any)) != 3 {
		t.Fatalf("structure changed: %s", out)
	}
	msg := got["messages"].([]any)[2].(map[string]any)["content"]
	if msg != `my ip is [IPV4] and "phone": [PHONE]` {
		t.Fatalf("content = %q", msg)
	}
	// The escaped address hashes like the plain one.
	plain, _ := guard.ScanBody(dlp.New(), guard.FormatText, []byte("jane@example.com"))
	plainOut, _ := guard.RedactBody(p, guard.FormatText, []byte("jane@example.com"), plain)
	if !bytes.Contains(out, plainOut) {
		t.Fatalf("escaped and plain values hash differently: %s vs %s", out, plainOut)
	}
}

func TestScanBodyBadInput(t *testing.T) {
	deep := strings.Repeat("[", guard.MaxJSONDepth+1) + strings.Repeat("]", guard.MaxJSONDepth+1)
	okDeep := strings.Repeat("[", guard.MaxJSONDepth) + `"jane@example.com"` + strings.Repeat("]", guard.MaxJSONDepth)
	tests := []struct {
		name   string
		format guard.Format
		body   string
		code   string // "" for no error
	}{
		{"invalid utf-8 json", guard.FormatJSON, "{\"a\":\"\xff\"}", "invalid_utf8"},
		{"invalid utf-8 text", guard.FormatText, "abc\xc3\x28", "invalid_utf8"},
		{"utf-16", guard.FormatText, "\xff\xfeh\x00i\x00", "invalid_utf8"},
		{"binary", guard.FormatText, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff", "invalid_utf8"},
		{"truncated", guard.FormatJSON, `{"a":"b`, "invalid_json"},
		{"trailing data", guard.FormatJSON, `{"a":1} {}`, "invalid_json"},
		{"bad escape", guard.FormatJSON, `{"a":"\x"}`, "invalid_json"},
		{"control character", guard.FormatJSON, "{\"a\":\"\x01\"}", "invalid_json"},
		{"bad number", guard.FormatJSON, `{"a":01}`, "invalid_json"},
		{"bad literal", guard.FormatJSON, `{"a":tru}`, "invalid_json"},
		{"too deep", guard.FormatJSON, deep, "json_too_deep"},
		{"deep but allowed", guard.FormatJSON, okDeep, ""},
		{"empty", guard.FormatJSON, "", "invalid_json"},
		{"huge line", guard.FormatText, strings.Repeat("x", 1<<20), ""},
		{"lone surrogate", guard.FormatJSON, `{"a":"\ud800 jane@example.com"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := guard.ScanBody(dlp.New(), tt.format, []byte(tt.body))
			var ie *guard.InputError
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.code != "" && (!errors.As(err, &ie) || ie.Code != tt.code || ie.Status != http.StatusBadRequest):
				t.Fatalf("err = %v, want %s (400)", err, tt.code)
			}
		})
	}
}

// TestRedactJSONIgnoresBadFindings: findings that are not inside a string
// value (forged, or from another body) never break the JSON.
func TestRedactJSONIgnoresBadFindings(t *testing.T) {
	body := []byte(`{"a":"jane@example.com","n":4111111111111111}`)
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	fs := []guard.Finding{
		{Type: "x", Class: "pii", Start: 0, End: 5},    // across structure
		{Type: "y", Class: "pii", Start: 32, End: 48},  // a number
		{Type: "z", Class: "pii", Start: -4, End: 900}, // out of range
		{Type: "email", Class: "pii", Start: 6, End: 22},
	}
	out, err := guard.RedactBody(p, guard.FormatJSON, body, fs)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"[EMAIL]","n":4111111111111111}`; string(out) != want {
		t.Fatalf("got %s, want %s", out, want)
	}
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(chatBody))
	f.Add([]byte(`{"a":["\u0040","jane@example.com\n4111 1111 1111 1111"],"b":{"token":"Zx9Kq2Lm8Np4Rs6Tu1Vw3Xy5"}}`))
	f.Add([]byte(`"\ud83d\ude00 +44 20 7946 0958"`))
	f.Add([]byte(`[1,-0.5e+3,true,false,null,{}]`))
	p := mustPolicy(f, map[string]string{"pii": "hash", "secret": "mask"}, tenantKey)
	sc := dlp.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := guard.ScanBody(sc, guard.FormatJSON, body)
		var ie *guard.InputError
		if err != nil {
			if !errors.As(err, &ie) {
				t.Fatalf("error is not an InputError: %v", err)
			}
			if json.Valid(body) && ie.Code != "json_too_deep" && (ie.Code != "invalid_utf8" || utf8.Valid(body)) {
				t.Fatalf("valid JSON refused: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("invalid JSON accepted: %q", body)
		}
		out, err := guard.RedactBody(p, guard.FormatJSON, body, fs)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("redacting %q gave invalid JSON %q", body, out)
		}
		// Only string contents change: the shape of the document is the same.
		var x, y any
		if json.Unmarshal(body, &x) == nil && json.Unmarshal(out, &y) == nil && !reflect.DeepEqual(shape(x), shape(y)) {
			t.Fatalf("redacting %q changed its shape: %q", body, out)
		}
	})
}

// shape replaces every string in a decoded JSON value by "".
func shape(v any) any {
	switch v := v.(type) {
	case string:
		return ""
	case []any:
		for i := range v {
			v[i] = shape(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = shape(v[k])
		}
	}
	return v
}
