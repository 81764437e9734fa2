package guard_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard"
)

func TestAddSystemText(t *testing.T) {
	const tok = "wdn-canary-00112233445566778899aabbccddeeff"
	tests := []struct {
		name, action, body, want string
		ok                       bool
	}{
		{"append to system", "chat.completions",
			`{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"hi"}]}`,
			`{"messages":[{"role":"system","content":"Be kind.\n\n` + tok + `"},{"role":"user","content":"hi"}]}`, true},
		{"append to empty developer", "chat.completions",
			`{"messages":[{"content":"","role":"developer"}]}`,
			`{"messages":[{"content":"` + tok + `","role":"developer"}]}`, true},
		{"new system message", "chat.completions",
			`{"model":"m","messages": [ {"role":"user","content":"hi"}]}`,
			`{"model":"m","messages": [{"role":"system","content":"` + tok + `"}, {"role":"user","content":"hi"}]}`, true},
		{"system with parts gets a new message", "chat.completions",
			`{"messages":[{"role":"system","content":[{"type":"text","text":"s"}]}]}`,
			`{"messages":[{"role":"system","content":"` + tok + `"},{"role":"system","content":[{"type":"text","text":"s"}]}]}`, true},
		{"empty messages", "chat.completions", `{"messages":[ ]}`, `{"messages":[{"role":"system","content":"` + tok + `"} ]}`, true},
		{"responses instructions", "responses", `{"instructions":"Be brief.","input":"hi"}`,
			`{"instructions":"Be brief.\n\n` + tok + `","input":"hi"}`, true},
		{"responses without instructions", "responses", `{"input":"hi"}`, `{"instructions":"` + tok + `","input":"hi"}`, true},
		{"responses empty object", "responses", `{ }`, `{"instructions":"` + tok + `" }`, true},
		{"responses null instructions", "responses", `{"instructions":null}`, `{"instructions":null}`, false},
		{"no messages", "chat.completions", `{"prompt":"x"}`, `{"prompt":"x"}`, false},
		{"messages not an array", "chat.completions", `{"messages":{}}`, `{"messages":{}}`, false},
		{"other action", "embeddings", `{"input":"x"}`, `{"input":"x"}`, false},
		{"array root", "chat.completions", `[]`, `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ins, ok, err := guard.AddSystemText(tt.action, []byte(tt.body), tok)
			if err != nil || ok != tt.ok || string(out) != tt.want {
				t.Fatalf("got %s ok=%v err=%v\nwant %s ok=%v", out, ok, err, tt.want, tt.ok)
			}
			if ok && string(out[:ins.At])+string(out[ins.At+ins.Len:]) != tt.body {
				t.Fatalf("insertion %+v does not describe the change", ins)
			}
		})
	}
	if _, _, _, err := guard.AddSystemText("chat.completions", []byte(`{"messages":`), tok); err == nil {
		t.Fatal("invalid JSON: no error")
	}
	// Text that needs escaping stays valid JSON.
	out, _, ok, err := guard.AddSystemText("chat.completions", []byte(`{"messages":[]}`), `a"b\c`)
	if err != nil || !ok || !json.Valid(out) {
		t.Fatalf("%s %v %v", out, ok, err)
	}
}

func TestInsertionShift(t *testing.T) {
	fs := []guard.Finding{{Start: 1, End: 5}, {Start: 5, End: 9}, {Start: 3, End: 7}}
	guard.Insertion{At: 5, Len: 10}.Shift(fs)
	want := []guard.Finding{{Start: 1, End: 5}, {Start: 15, End: 19}, {Start: 3, End: 17}}
	for i := range fs {
		if fs[i] != want[i] {
			t.Fatalf("%d: %+v, want %+v", i, fs[i], want[i])
		}
	}
}

// FuzzAddSystemText: the result is valid JSON whenever the input is, the
// token is in it exactly when ok, and the insertion describes the change.
func FuzzAddSystemText(f *testing.F) {
	for _, s := range []string{`{"messages":[{"role":"system","content":"s"}]}`, `{"messages":[]}`, `{"instructions":"i"}`, `{}`, `{"messages":[{"role":"user"}]}`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	const tok = "wdn-canary-fuzzfuzzfuzzfuzz"
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		action := "responses"
		if chat {
			action = "chat.completions"
		}
		out, ins, ok, err := guard.AddSystemText(action, body, tok)
		if err != nil {
			if json.Valid(body) && utf8.Valid(body) { // the guards refuse invalid UTF-8 anywhere
				t.Fatalf("valid JSON refused: %v", err)
			}
			return
		}
		if !ok {
			if !bytes.Equal(out, body) {
				t.Fatal("not ok but changed")
			}
			return
		}
		if !json.Valid(out) || !bytes.Contains(out, []byte(tok)) {
			t.Fatalf("%q -> %q", body, out)
		}
		if ins.At < 0 || ins.At+ins.Len > len(out) || !bytes.Equal(append(bytes.Clone(out[:ins.At]), out[ins.At+ins.Len:]...), body) {
			t.Fatalf("insertion %+v", ins)
		}
	})
}
