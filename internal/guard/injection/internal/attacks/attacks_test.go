package attacks

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	a, b := Generate(3000, 1), Generate(3000, 1)
	if len(a) != 3000 {
		t.Fatalf("got %d prompts", len(a))
	}
	held, fam := 0, map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("not deterministic at %d: %q vs %q", i, a[i].Text, b[i].Text)
		}
		if strings.ContainsAny(a[i].Text, "{}") {
			t.Errorf("unfilled slot: %q", a[i].Text)
		}
		fam[a[i].Family]++
		if a[i].Held {
			held++
		}
	}
	if held < 400 || held > 800 {
		t.Errorf("%d held-aside prompts of 3000", held)
	}
	for _, f := range []string{"persona", "leak", "fiction"} {
		if fam[f] < 200 {
			t.Errorf("family %s: %d prompts", f, fam[f])
		}
	}
	if Generate(10, 2)[0] == a[0] {
		t.Error("seed ignored")
	}
}

// TestHeldPhrasings: a held-aside prompt uses no phrasing of the training side (where the list
// has held-aside phrasings at all), so its recall measures unseen wording.
func TestHeldPhrasings(t *testing.T) {
	for k, v := range phrasings {
		if len(v) < 5 {
			t.Errorf("list %s has %d phrasings, want at least 5", k, len(v))
		}
	}
	train := map[string]bool{}
	for k, p := range parts() {
		if len(p.held) == 0 {
			continue
		}
		for _, s := range p.train {
			if len(s) >= 12 && k != "task" {
				train[strings.ReplaceAll(s, "{name}", "")] = true
			}
		}
	}
	for _, g := range Generate(2000, 3) {
		if !g.Held {
			continue
		}
		for s := range train {
			if !strings.Contains(s, "{task}") && strings.Contains(strings.ToLower(g.Text), strings.ToLower(s)) && len(s) > 20 {
				t.Errorf("held prompt %q contains training phrasing %q", g.Text, s)
			}
		}
	}
}
