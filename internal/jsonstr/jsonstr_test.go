package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendUnescaped(t *testing.T) {
	for _, s := range []string{``, `plain`, `\"\\\/\b\f\n\r\t`, `\u0000`, `\u00e9 é`, `\uD834\uDD1E`, `\uDD1E\uD834`,
		`\ud800\ud800`, `\ud800\\`, `\ud800x`, "bad \xff utf8 \xe2\x82", `\u0041\u0042`} {
		raw := []byte(`"` + s + `"`)
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("%s: not a JSON string: %v", s, err)
		}
		if got := AppendUnescaped([]byte("pre:"), raw[1:len(raw)-1]); string(got) != "pre:"+want {
			t.Errorf("AppendUnescaped(%q) = %q, want %q", s, got, "pre:"+want)
		}
	}
}

func TestHex4(t *testing.T) {
	for in, want := range map[string]rune{"0041": 'A', "fFfF": 0xffff, "12": -1, "12g4": -1, "": -1} {
		if got := Hex4([]byte(in)); got != want {
			t.Errorf("Hex4(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzAppendUnescaped: on every valid JSON string the decoded text is
// encoding/json's; on anything else it does not panic.
func FuzzAppendUnescaped(f *testing.F) {
	for _, s := range []string{`"a\nb"`, `"\ud83d\ude00"`, `"\ud800"`, "\"\xff\"", `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		raw = bytes.TrimSpace(raw) // encoding/json allows white space around the value
		if len(raw) < 2 || json.Unmarshal(raw, &want) != nil || raw[0] != '"' {
			if len(raw) > 0 {
				_ = AppendUnescaped(nil, raw)
			}
			return
		}
		if got := AppendUnescaped(nil, raw[1:len(raw)-1]); string(got) != want {
			t.Fatalf("%q: got %q, want %q", raw, got, want)
		}
	})
}
