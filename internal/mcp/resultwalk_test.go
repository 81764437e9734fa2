package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
	"github.com/warden-ai/warden/internal/jsonstr"
)

// visit is one text a result walk passes to the guards.
type visit struct {
	text    string
	content bool
}

// walkVisits: the texts stringWalker visits in each member of result.
func walkVisits(result map[string]json.RawMessage) []visit {
	var out []visit
	w := stringWalker{fn: func(text []byte, content bool) bool {
		out = append(out, visit{string(text), content})
		return true
	}}
	for k, raw := range result {
		w.fn([]byte(k), false)
		w.data, w.pos = raw, 0
		w.value(keyKindOf([]byte(k)))
	}
	return out
}

// treeVisits: the texts scanResult's tree walk (encoding/json into any)
// visits, the reference.
func treeVisits(result map[string]json.RawMessage) ([]visit, error) {
	var out []visit
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k != "" {
					out = append(out, visit{k, false})
				}
				walk(e, k)
			}
		case []any:
			for _, e := range x {
				walk(e, key)
			}
		case json.Number:
			out = append(out, visit{string(x), false})
		case string:
			if x == "" {
				return
			}
			out = append(out, visit{x, key == "text" || key == "systemPrompt" || key == "message"})
		}
	}
	for k, raw := range result {
		out = append(out, visit{k, false})
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		walk(v, k)
	}
	return out, nil
}

func sortVisits(v []visit) []visit {
	slices.SortFunc(v, func(a, b visit) int {
		if c := strings.Compare(a.text, b.text); c != 0 {
			return c
		}
		switch {
		case a.content == b.content:
			return 0
		case a.content:
			return 1
		}
		return -1
	})
	return v
}

// diffWalk compares the walks over result, a JSON object.
func diffWalk(result []byte) string {
	if !utf8.Valid(result) {
		return ""
	}
	members, ok := objectMembers(result)
	if !ok {
		return ""
	}
	want, err := treeVisits(members)
	if err != nil {
		return fmt.Sprintf("reference: %v", err)
	}
	got := walkVisits(members)
	if !slices.Equal(sortVisits(got), sortVisits(want)) {
		return fmt.Sprintf("walk %+v, reference %+v", got, want)
	}
	return ""
}

var walkSeeds = []string{
	`{"content":[{"type":"text","text":"echo: hello"}]}`,
	`{"content":[{"type":"text","text":"a\nb \"q\" \\ \/ \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041 \b\f\r\t"},{"type":"image","mimeType":"image/png","data":"AAAA"}],"isError":false}`,
	`{"contents":[{"uri":"file:///a","mimeType":"text/plain","text":"t"},{"uri":"file:///b","blob":"QUJD"}]}`,
	`{"messages":[{"role":"user","content":{"type":"text","text":"hi"}}],"description":""}`,
	`{"structuredContent":{"a":[1,-2.5e3,true,false,null,"s",{"text":["x","y"]},[[["deep"]]]],"t\u0065xt":"escaped key","\u0074ype":"skipped"},"text":"top","type":"top type"}`,
	`{ "a" : [ "x" , { "text" : "y" } ] , "b" : "" , "c" : { } , "d" : [ ] }`,
}

func TestResultWalk(t *testing.T) {
	for _, s := range walkSeeds {
		if d := diffWalk([]byte(s)); d != "" {
			t.Errorf("%s: %s", s, d)
		}
	}
	for _, s := range []string{`\u0000`, `\uD834\uDD1E`, `\uDD1E\uD834`, `\ud800\ud800`, `\ud800\\`, `\ud800\u12`, `x\u00`} {
		raw := []byte(`"` + s + `"`)
		var want string
		if json.Unmarshal(raw, &want) != nil {
			continue
		}
		if got := jsonstr.AppendUnescaped(nil, raw[1:len(raw)-1]); string(got) != want {
			t.Errorf("AppendUnescaped(%s) = %q, want %q", s, got, want)
		}
	}
}

// TestScanResultEscaped: a finding behind escapes is found (the fast pass
// decodes strings as the tree walk does), and a clean result is unchanged.
func TestScanResultEscaped(t *testing.T) {
	g := &Gateway{Scanner: fakeScanner{}}
	ex := newExchange(ActionToolsCall, "3")
	ex.Obligations.Mask = map[string]string{"secret": "mask"}
	out, err := g.handle(ex, []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"the \u0073ecret\n is here"}]}}`))
	if err != nil || bytes.Contains(out, []byte(`ecret\n is`)) || len(ex.Findings) != 1 {
		t.Fatalf("escaped secret: %s, %v, findings %+v", out, err, ex.Findings)
	}
	clean := []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"nothing to see"},{"type":"image","mimeType":"image/png","data":"AAAA"}]}}`)
	ex = newExchange(ActionToolsCall, "3")
	ex.Obligations.Mask = map[string]string{"secret": "mask"}
	out, err = g.handle(ex, clean)
	if err != nil || !bytes.Equal(out, clean) || len(ex.Findings) != 0 {
		t.Fatalf("clean result: %s, %v, findings %+v", out, err, ex.Findings)
	}
	// No member is exempt: a secret hidden in a discriminator or a blob is
	// found too.
	for _, hidden := range []string{`{"type":"a secret"}`, `{"mimeType":"secret/x"}`, `{"blob":"secret"}`} {
		ex = newExchange(ActionToolsCall, "3")
		ex.Obligations.Mask = map[string]string{"secret": "mask"}
		out, err = g.handle(ex, []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[`+hidden+`]}}`))
		if err != nil || bytes.Contains(out, []byte("secret")) || len(ex.Findings) != 1 {
			t.Errorf("%s: %s, %v, findings %+v", hidden, out, err, ex.Findings)
		}
	}
}

// FuzzResultWalk: the fast pass over a result visits exactly the texts
// (decoded) that scanResult's tree walk visits.
func FuzzResultWalk(f *testing.F) {
	for _, s := range walkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := diffWalk(data); d != "" {
			t.Fatalf("%q: %s", data, d)
		}
	})
}

// TestScanResultNamesAndNumbers: a secret in a member name or a card
// number sent as a JSON number is found like one in a string: masked
// (a number becomes the masked string, a name is renamed without merging
// two members) or blocked.
func TestScanResultNamesAndNumbers(t *testing.T) {
	g := &Gateway{Scanner: guard.Multi(dlp.New(), fakeScanner{})}
	tests := []struct {
		name, result string
		mask         map[string]string
		wantOut      []string // substrings of the passed message
		lacks        []string
		blocked      bool
		findings     int
	}{
		{name: "secret in a member name", result: `{"structuredContent":{"the secret":1}}`, mask: map[string]string{"api_key": "mask"},
			lacks: []string{"the secret"}, findings: 1},
		{name: "secret in a top-level member name", result: `{"secret":{"a":1}}`, mask: map[string]string{"api_key": "mask"},
			lacks: []string{`"secret"`}, findings: 1},
		{name: "two names masked alike stay two members", result: `{"structuredContent":{"[API_KEY]":1,"secret":2}}`, mask: map[string]string{"api_key": "mask"},
			wantOut: []string{`"[API_KEY]":1`, `"[API_KEY]#2":2`}, lacks: []string{"secret"}, findings: 1},
		{name: "card number as a number, masked", result: `{"structuredContent":{"card":4111111111111111}}`, mask: map[string]string{"payment_card": "mask"},
			lacks: []string{"4111111111111111"}, findings: 1},
		{name: "card number as a number, blocked", result: `{"structuredContent":{"n":[4111111111111111]}}`, mask: map[string]string{"payment_card": "block"},
			wantOut: []string{CodeResultBlocked}, lacks: []string{"4111111111111111"}, blocked: true, findings: 1},
		{name: "ordinary numbers and names pass unchanged", result: `{"structuredContent":{"count":3,"ratio":-2.5e3,"ok":true}}`, mask: map[string]string{"payment_card": "mask"},
			wantOut: []string{`"count":3`, `"ratio":-2.5e3`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := newExchange(ActionToolsCall, "3")
			ex.Obligations.Mask = tc.mask
			out, err := g.handle(ex, []byte(`{"jsonrpc":"2.0","id":3,"result":`+tc.result+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON passed: %s", out)
			}
			for _, w := range tc.wantOut {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("passed %s, want %q in it", out, w)
				}
			}
			for _, l := range tc.lacks {
				if bytes.Contains(out, []byte(l)) {
					t.Errorf("passed %s, which holds %q", out, l)
				}
			}
			if len(ex.Findings) != tc.findings {
				t.Errorf("findings %+v, want %d", ex.Findings, tc.findings)
			}
		})
	}
}
