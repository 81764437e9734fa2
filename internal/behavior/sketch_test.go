package behavior

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestPromptText(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}`, "hello there"},
		{`{"prompt": "complete me"}`, "complete me"},
		{`{"input":["a","b"],"model":"e"}`, ""},
		{`{"input":"embed this"}`, "embed this"},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":"look at this"}]}]}`, "look at this"},
		{`{"messages":[{"role":"user","content":"say \"content\": no"}]}`, `say \"content\": no`},
		{`{"content" :  "spaced"}`, "spaced"},
		{`{"type":"content","x":1}`, ""},
		{`{"content":"unterminated`, "unterminated"},
		{`{"content":"ends in escape\`, `ends in escape\`},
		{``, ""},
		{`not json at all: "content"`, ""},
	}
	for _, tc := range tests {
		if got := string(PromptText([]byte(tc.body))); got != tc.want {
			t.Errorf("PromptText(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestSketchBasics(t *testing.T) {
	if Sketch(nil) != 0 || Sketch([]byte(" ,.;\\n ")) != 0 {
		t.Fatal("a text without words has a sketch")
	}
	a := Sketch([]byte("Hello World, how are you today?"))
	if a == 0 || a != Sketch([]byte("hello world how ARE you today")) {
		t.Fatal("sketch is not case- and punctuation-insensitive")
	}
	if Sketch([]byte("one")) == 0 {
		t.Fatal("a one-word text has no sketch")
	}
	if sketchMatches(a, a) != 16 {
		t.Fatal("a sketch does not match itself")
	}
}

// TestSketchSeparates: prompts from one template with a few words changed
// are near duplicates; unrelated prompts almost never are.
func TestSketchSeparates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("w%d", rng.IntN(5000)) }
	sentence := func(n int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = word()
		}
		return w
	}
	tpl := sentence(20)
	near, far := 0, 0
	const n = 2000
	for i := 0; i < n; i++ {
		a, b := append([]string(nil), tpl...), append([]string(nil), tpl...)
		a[rng.IntN(len(a))], b[rng.IntN(len(b))] = word(), word()
		if sketchMatches(Sketch([]byte(strings.Join(a, " "))), Sketch([]byte(strings.Join(b, " ")))) >= nearDupBins {
			near++
		}
		x, y := sentence(5+rng.IntN(40)), sentence(5+rng.IntN(40))
		if sketchMatches(Sketch([]byte(strings.Join(x, " "))), Sketch([]byte(strings.Join(y, " ")))) >= nearDupBins {
			far++
		}
	}
	if near < n*8/10 || far > n/200 {
		t.Fatalf("template variants near duplicates %d/%d, unrelated %d/%d", near, n, far, n)
	}
}

// FuzzPromptText: the extractor and the sketch never panic and keep their
// contracts on any body.
func FuzzPromptText(f *testing.F) {
	for _, s := range []string{`{"messages":[{"role":"user","content":"hi"}]}`, `{"content":"\`, `"text":"`, `::""`, `{"prompt":"a\"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := PromptText(body)
		if p != nil && len(p) > len(body) {
			t.Fatal("prompt longer than the body")
		}
		s := Sketch(p)
		if len(p) == 0 && s != 0 {
			t.Fatal("sketch of nothing")
		}
		_ = sketchMatches(s, Sketch(body))
	})
}
