package benign

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	a, b := Generate(3000, 1), Generate(3000, 1)
	if len(a) != 3000 {
		t.Fatalf("got %d prompts", len(a))
	}
	langs, held, tmpl := map[string]int{}, 0, map[int]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("not deterministic at %d: %q vs %q", i, a[i].Text, b[i].Text)
		}
		if strings.ContainsAny(a[i].Text, "{}") {
			t.Errorf("unfilled slot: %q", a[i].Text)
		}
		langs[a[i].Lang]++
		tmpl[a[i].Template] = true
		if a[i].Held {
			held++
		}
	}
	n, nl := Templates()
	if n < 500 || len(langs) != nl || nl < 15 {
		t.Errorf("%d templates, %d languages (%d used)", n, nl, len(langs))
	}
	if len(tmpl) < n*9/10 {
		t.Errorf("only %d of %d templates used", len(tmpl), n)
	}
	if held < 300 || held > 1000 {
		t.Errorf("%d held-aside prompts of 3000", held)
	}
	if Generate(10, 2)[0] == a[0] {
		t.Error("seed ignored")
	}
}
