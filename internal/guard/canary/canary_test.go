package canary_test

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/canary"
	"github.com/warden-ai/warden/internal/guard/dlp"
)

const tok = "wdn-canary-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
const core = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

func scanner(t testing.TB, toks ...string) *canary.Scanner {
	t.Helper()
	s, err := canary.NewScanner(toks...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNew(t *testing.T) {
	a, err := canary.New()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := canary.New()
	if a == b || !strings.HasPrefix(a, canary.Prefix) || len(a) != len(canary.Prefix)+32 || canary.Check(a) != nil {
		t.Fatalf("tokens %q %q", a, b)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		tok string
		ok  bool
	}{
		{tok, true}, {"short", false}, {strings.Repeat("x", 257), false}, {"has a space in it!!", false},
		{"tab\tinside-the-token", false}, {"nön-ascii-token-here", false}, {`quote"and\backslash`, true},
	} {
		if err := canary.Check(tc.tok); (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v", tc.tok, err)
		}
	}
	if _, err := canary.NewScanner(); err == nil {
		t.Error("no token: no error")
	}
	if _, err := canary.NewScanner("short"); err == nil {
		t.Error("short token: no error")
	}
}

func TestScan(t *testing.T) {
	s := scanner(t, tok, "Custom-Canary-Word-XYZ")
	tests := []struct {
		text string
		want []string
	}{
		{"nothing here", nil},
		{"my prompt says " + tok + ".", []string{core}},
		{"no prefix: " + core, []string{core}},
		{"upper: " + strings.ToUpper(tok), []string{strings.ToUpper(core)}},
		{"twice " + core + core, []string{core, core}},
		{"almost " + core[:31] + "x", nil},
		{"custom custom-canary-word-xyz!", []string{"custom-canary-word-xyz"}},
	}
	for _, tt := range tests {
		fs := s.Scan([]byte(tt.text))
		var got []string
		for _, f := range fs {
			if f.Type != canary.TypeLeak || f.Class != canary.ClassLeak || f.Guard != canary.Guard || f.Score != 1 {
				t.Errorf("finding %+v", f)
			}
			got = append(got, tt.text[f.Start:f.End])
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Scan(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestHold(t *testing.T) {
	s := scanner(t, tok)
	tests := []struct {
		text string
		want int
	}{
		{"", 0}, {"plain text", 0}, {"ends with 0f1e", 4}, {"ends with 0F1E2D", 6},
		{"x " + core[:31], 31}, {"x " + core + ".", 0}, {"x " + core, 1}, {"zzz0", 1},
	}
	for _, tt := range tests {
		if got := s.Hold([]byte(tt.text)); got != tt.want {
			t.Errorf("Hold(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

// TestStreamNeverLeaks: a canary split anywhere over any number of chunks
// blocks the stream, and no released output ever holds the random part
// whole or a piece of it that began before the block.
func TestStreamNeverLeaks(t *testing.T) {
	sc := guard.Multi(dlp.New(), scanner(t, tok))
	p, err := guard.NewPolicy(map[string]string{canary.TypeLeak: "block"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := "Sure! My instructions were: you are a bot. " + tok + " That is all."
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		st := guard.NewStream(sc, guard.StreamOptions{Policy: p})
		var out []byte
		var err error
		for rest := text; rest != "" && err == nil; {
			n := 1 + rng.IntN(min(len(rest), 12))
			out, err = st.Write(out, []byte(rest[:n]))
			rest = rest[n:]
		}
		if err == nil {
			out, err = st.Flush(out)
		}
		if !errors.Is(err, guard.ErrBlocked) {
			t.Fatalf("run %d: not blocked (%v): %q", i, err, out)
		}
		if strings.Contains(string(out), core[:8]) {
			t.Fatalf("run %d: released part of the canary: %q", i, out)
		}
	}
}

// TestSSESplitAcrossEvents: a canary split over chat chunk events ends the
// stream with a well-formed error event and never reaches the output.
func TestSSESplitAcrossEvents(t *testing.T) {
	var up strings.Builder
	pieces := []string{"Here: wdn-can", "ary-0f1e2d3c", "4b5a6978", "8796a5b4c3d2e1f0 done"}
	for _, p := range pieces {
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": p}}}})
		up.WriteString("data: " + string(b) + "\n\n")
	}
	up.WriteString("data: [DONE]\n\n")
	p, _ := guard.NewPolicy(map[string]string{canary.TypeLeak: "block"}, nil)
	res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(strings.NewReader(up.String()))}
	in, err := guard.InspectResponse(res, guard.ResponseOptions{Scanner: guard.Multi(dlp.New(), scanner(t, tok)), Policy: p, RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if strings.Contains(got, "0f1e2d3c") || strings.Contains(got, "[DONE]") ||
		!strings.HasSuffix(got, "\n\n") || !strings.Contains(got, "event: error\ndata: ") || !strings.Contains(got, `"code":"content_blocked"`) {
		t.Fatalf("output:\n%s", got)
	}
	fs := in.Findings()
	if len(fs) != 1 || fs[0].Type != canary.TypeLeak || fs[0].Action != guard.ActionBlock || !errors.Is(in.Err(), guard.ErrBlocked) {
		t.Fatalf("findings %+v err %v", fs, in.Err())
	}
}

func FuzzScanHold(f *testing.F) {
	f.Add([]byte("x "+tok), 3)
	f.Add([]byte(strings.ToUpper(core)), 10)
	f.Fuzz(func(t *testing.T, text []byte, cut int) {
		s := scanner(t, tok)
		fs := s.Scan(text)
		for _, fi := range fs {
			if !strings.EqualFold(string(text[fi.Start:fi.End]), core) {
				t.Fatalf("finding %+v = %q", fi, text[fi.Start:fi.End])
			}
		}
		if strings.Contains(strings.ToLower(string(text)), core) != (len(fs) > 0) {
			t.Fatalf("Scan(%q) = %v", text, fs)
		}
		// Hold covers every canary start that is cut off at the end.
		if cut < 0 || cut > len(text) {
			return
		}
		h := s.Hold(text[:cut])
		if h < 0 || h > cut || h >= len(core) {
			t.Fatalf("Hold = %d for %d bytes", h, cut)
		}
		for _, fi := range fs {
			if fi.Start < cut && fi.End > cut && cut-fi.Start > h {
				t.Fatalf("canary at %d cut at %d, hold %d", fi.Start, cut, h)
			}
		}
	})
}
