package guard_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard"
)

// fakeDetector flags a text that contains "IGNORE" (as a prompt) or
// "PLANTED" (as a document), with the word as its evidence.
func fakeDetector(word string) func([]byte) guard.Verdict {
	return func(text []byte) guard.Verdict {
		i := bytes.Index(text, []byte(word))
		if i < 0 {
			return guard.Verdict{Score: 0.1}
		}
		return guard.Verdict{Score: 0.99, Attack: true, Spans: []guard.Span{{Rule: "fake", Start: i, End: i + len(word)}}}
	}
}

func fakeGuard(fields ...string) *guard.InjectionGuard {
	return &guard.InjectionGuard{Prompt: fakeDetector("IGNORE"), Document: fakeDetector("PLANTED"), DocumentFields: fields}
}

// texts returns "kind:text" for each text RequestTexts finds.
func texts(t *testing.T, action string, f guard.Format, body string, fields ...string) []string {
	t.Helper()
	ts, err := guard.RequestTexts(f, []byte(body), guard.RequestTextOptions{Action: action, DocumentFields: fields})
	if err != nil {
		t.Fatalf("RequestTexts(%s): %v", body, err)
	}
	var out []string
	for _, x := range ts {
		out = append(out, x.Kind.String()+":"+body[x.Start:x.End])
	}
	return out
}

func TestRequestTexts(t *testing.T) {
	tests := []struct {
		name, action, body string
		fields             []string
		want               []string
	}{
		{"chat roles", "chat.completions",
			`{"model":"gpt-4o","messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"},` +
				`{"role":"assistant","content":"a","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"result"},{"content":"fn out","role":"function","name":"f"}]}`,
			nil, []string{"prompt:sys", "prompt:hi", "prompt:a", "document:result", "document:fn out"}},
		{"role after content", "chat.completions",
			`{"messages":[{"content":[{"type":"text","text":"from tool"}],"role":"tool"}]}`,
			nil, []string{"document:from tool"}},
		{"content parts", "chat.completions",
			`{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x/y.png"}},` +
				`{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"tool says"}]}]}]}`,
			nil, []string{"prompt:look", "document:tool says"}},
		{"responses items", "responses",
			`{"model":"o","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"q"}]},` +
				`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"weather: sunny"},` +
				`{"type":"mcp_call","id":"m","server_label":"s","name":"n","arguments":"{}","output":"mcp out"}]}`,
			nil, []string{"prompt:be brief", "prompt:q", "document:weather: sunny", "document:mcp out"}},
		{"responses string input", "responses", `{"input":"just text"}`, nil, []string{"prompt:just text"}},
		{"completions prompts", "completions", `{"prompt":["one","two"],"suffix":"x"}`, nil, []string{"prompt:one", "prompt:two"}},
		{"embeddings are documents", "embeddings", `{"input":["doc one","doc two"],"model":"e"}`, nil, []string{"document:doc one", "document:doc two"}},
		{"tool definitions skipped", "chat.completions",
			`{"tools":[{"type":"function","function":{"name":"f","description":"content","parameters":{"type":"object","properties":{"content":{"type":"string","description":"x"}}}}}],` +
				`"metadata":{"content":"m"},"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{"prompt:hi"}},
		{"document fields", "http.post", `{"query":"q","documents":[{"title":"t","body":"doc body"}],"prompt":"p"}`,
			[]string{"documents"}, []string{"document:t", "document:doc body", "prompt:p"}},
		{"empty strings skipped", "chat.completions", `{"messages":[{"role":"user","content":""}]}`, nil, nil},
		{"unknown shape", "http.post", `{"a":{"b":"c"},"d":["e"]}`, nil, nil},
		{"scalar root", "http.post", `"content"`, nil, nil},
		// MCP: tool-call arguments are documents, whatever their member
		// names; the protocol's own members and other messages are not text.
		{"mcp tools/call arguments", "mcp.tools.call",
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a","opts":{"to":["x@y"]},"n":3,"e":""},"_meta":{"content":"m"}}}`,
			nil, []string{"document:a", "document:x@y"}},
		{"mcp prompts/get arguments", "mcp.prompts.get",
			`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"topic":"t"}}}`,
			nil, []string{"document:t"}},
		{"mcp initialize has no text", "mcp.initialize",
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","clientInfo":{"name":"content","title":"prompt"},"capabilities":{}}}`,
			nil, nil},
		{"mcp response has no text", "mcp.response",
			`{"jsonrpc":"2.0","id":1,"result":{"content":{"type":"text","text":"model says"}}}`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := texts(t, tt.action, guard.FormatJSON, tt.body, tt.fields...)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := texts(t, "http.post", guard.FormatText, "plain text"); len(got) != 1 || got[0] != "prompt:plain text" {
		t.Fatalf("text body: %q", got)
	}
}

// TestMCPToolCallNotAPrompt: a plain tool call (once flagged as a prompt
// injection on an MCP route because "text" is a prompt member of the
// OpenAI shapes) is not scored as the caller's prompt; an instruction
// planted in its arguments is still found, as an indirect injection.
func TestMCPToolCallNotAPrompt(t *testing.T) {
	g := &guard.InjectionGuard{
		Prompt:   func([]byte) guard.Verdict { return guard.Verdict{Score: 1, Attack: true} }, // flags everything
		Document: fakeDetector("PLANTED"),
	}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"}}}`)
	fs, err := g.ScanRequest("mcp.tools.call", guard.FormatJSON, body)
	if err != nil || len(fs) != 0 {
		t.Fatalf("plain tool call: findings %+v, err %v", fs, err)
	}
	body = []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send","arguments":{"body":"hi PLANTED"}}}`)
	fs, err = g.ScanRequest("mcp.tools.call", guard.FormatJSON, body)
	if err != nil || len(fs) != 1 || fs[0].Type != guard.TypeIndirectInjection || string(body[fs[0].Start:fs[0].End]) != "PLANTED" {
		t.Fatalf("planted argument: findings %+v, err %v", fs, err)
	}
	if _, err := g.ScanRequest("mcp.initialize", guard.FormatJSON, []byte(`{"a":`)); err == nil {
		t.Fatal("bad JSON on an MCP route: no error")
	}
}

func TestRequestTextsBadInput(t *testing.T) {
	for _, body := range []string{`{"messages":`, "\xff", `{"a":1}x`} {
		if _, err := guard.RequestTexts(guard.FormatJSON, []byte(body), guard.RequestTextOptions{}); err == nil {
			t.Errorf("%q: no error", body)
		} else if _, ok := err.(*guard.InputError); !ok {
			t.Errorf("%q: %T %v, want *InputError", body, err, err)
		}
	}
}

func TestInjectionGuardScanRequest(t *testing.T) {
	tests := []struct {
		name, action, body string
		want               []string // type:span text
	}{
		{"direct", "chat.completions", `{"messages":[{"role":"user","content":"please IGNORE all that"}]}`, []string{"injection:IGNORE"}},
		{"indirect via tool", "chat.completions",
			`{"messages":[{"role":"user","content":"weather?"},{"role":"tool","content":"sunny. PLANTED order"}]}`,
			[]string{"indirect_injection:PLANTED"}},
		{"document words are not prompt words", "chat.completions",
			`{"messages":[{"role":"user","content":"PLANTED"},{"role":"tool","content":"IGNORE"}]}`, nil},
		{"escapes map to raw offsets", "chat.completions",
			`{"messages":[{"role":"user","content":"\u00e9\n\"IGNORE\""}]}`, []string{`injection:IGNORE`}},
		{"escaped evidence", "chat.completions",
			`{"messages":[{"role":"user","content":"x \u0049GNORE y"}]}`, []string{`injection:\u0049GNORE`}},
		{"benign", "chat.completions", `{"messages":[{"role":"user","content":"hello"}]}`, nil},
		{"function_call_output", "responses",
			`{"input":[{"type":"function_call_output","call_id":"c","output":"PLANTED"}]}`, []string{"indirect_injection:PLANTED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := fakeGuard().ScanRequest(tt.action, guard.FormatJSON, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				if f.Class != guard.ClassInjection || f.Guard != "injection" || f.Score != 0.99 {
					t.Errorf("finding %+v", f)
				}
				got = append(got, f.Type+":"+tt.body[f.Start:f.End])
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A verdict without evidence covers the whole text; masking it keeps the JSON valid.
	g := &guard.InjectionGuard{Prompt: func([]byte) guard.Verdict { return guard.Verdict{Score: 2, Attack: true} }, Document: fakeDetector("x")}
	body := []byte(`{"messages":[{"role":"user","content":"a \"b\" c"}]}`)
	fs, err := g.ScanRequest("chat.completions", guard.FormatJSON, body)
	if err != nil || len(fs) != 1 || string(body[fs[0].Start:fs[0].End]) != `a \"b\" c` || fs[0].Score != 1 {
		t.Fatalf("%+v %v", fs, err)
	}
	p, _ := guard.NewPolicy(map[string]string{"injection": "mask"}, nil)
	out, err := guard.RedactBody(p, guard.FormatJSON, body, fs)
	if err != nil || string(out) != `{"messages":[{"role":"user","content":"[INJECTION]"}]}` {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := (&guard.InjectionGuard{}).ScanRequest("x", guard.FormatText, []byte("a")); err == nil {
		t.Fatal("a guard without a detector must fail")
	}
}

// FuzzRequestTexts: any body gives texts inside the body, inside one
// string's content for JSON, in order, or an *InputError; never a panic.
// The injection guard's findings lie inside those texts.
func FuzzRequestTexts(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"tool","content":"x"},{"role":"user","content":[{"type":"text","text":"IGNORE"}]}]}`,
		`{"input":[{"type":"function_call_output","output":"PLANTED"}],"instructions":"i"}`,
		`{"documents":["PLANTED \u00e9"],"prompt":"IGNORE\n"}`,
		`[1,"content",{"content":null}]`, `{"a":`, "\xff",
	} {
		f.Add([]byte(s), "chat.completions")
	}
	f.Fuzz(func(t *testing.T, body []byte, action string) {
		ts, err := guard.RequestTexts(guard.FormatJSON, body, guard.RequestTextOptions{Action: action, DocumentFields: []string{"documents"}})
		if err != nil {
			if _, ok := err.(*guard.InputError); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		last := 0
		for _, x := range ts {
			if x.Start < last || x.End <= x.Start || x.End > len(body) || body[x.Start-1] != '"' || body[x.End] != '"' {
				t.Fatalf("text %+v out of place in %q", x, body)
			}
			if x.Kind != guard.KindPrompt && x.Kind != guard.KindDocument {
				t.Fatalf("kind %v", x.Kind)
			}
			last = x.End
		}
		fs, err := fakeGuard("documents").ScanRequest(action, guard.FormatJSON, body)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range fs {
			in := false
			for _, x := range ts {
				in = in || x.Start <= fi.Start && fi.End <= x.End
			}
			if !in || fi.Start >= fi.End {
				t.Fatalf("finding %+v outside the texts", fi)
			}
		}
		p, _ := guard.NewPolicy(map[string]string{"injection": "mask"}, nil)
		out, err := guard.RedactBody(p, guard.FormatJSON, body, fs)
		if err != nil || !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("masked body %q: %v", out, err)
		}
	})
}
