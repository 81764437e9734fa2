// Package attacks generates jailbreak and prompt-leak prompts of the kinds shared in the wild —
// a persona "freed" from its rules, demands never to refuse, dual answers, a leak of the system
// prompt asked for in many ways — from hand-written phrasings combined at random with a fixed
// seed. They are synthetic attack training examples for the injection model: the labelled data set
// has prompt injections (PurpleLlama, BIPIA) but almost no persona jailbreaks, and a model trained
// on it alone catches the classic wordings ("do anything now", "developer mode") and misses their
// paraphrases.
//
// Phrasings, not prompts, are split: a fixed fifth of every list of phrasings (by a hash of the
// phrasing) is held aside, and a held-aside prompt is built from held-aside phrasings only, so the
// recall measured on them is that of wordings the model has never seen.
package attacks

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
)

// Prompt is one generated attack.
type Prompt struct {
	Text   string
	Family string // persona, leak or fiction
	Held   bool   // built from held-aside phrasings: for measuring, never for training
}

// part is one list of phrasings, split into the training and the held-aside ones.
type part struct{ train, held []string }

func split(list []string) part {
	var p part
	for _, s := range list {
		h := fnv.New32a()
		h.Write([]byte(s))
		if h.Sum32()%5 == 0 {
			p.held = append(p.held, s)
		} else {
			p.train = append(p.train, s)
		}
	}
	return p
}

var parts = sync.OnceValue(func() map[string]part {
	out := map[string]part{}
	for k, v := range phrasings {
		out[k] = split(v)
	}
	return out
})

// Generate returns n distinct prompts drawn with the given seed: about a fifth held aside, the
// rest for training. The result depends only on n and seed.
func Generate(n int, seed uint64) []Prompt {
	r := rand.New(rand.NewPCG(seed, 0xa77ac4))
	ps := parts()
	seen := map[string]bool{}
	out := make([]Prompt, 0, n)
	for tries := 0; len(out) < n && tries < 50*n; tries++ {
		held := r.IntN(5) == 0
		pick := func(key string) string {
			p := ps[key]
			list := p.train
			if held && len(p.held) > 0 {
				list = p.held
			}
			return list[r.IntN(len(list))]
		}
		var text, family string
		switch x := r.Float64(); {
		case x < 0.55:
			family = "persona"
			name := personaName(r)
			var b strings.Builder
			b.WriteString(pick("opener"))
			b.WriteString(pick("intro"))
			b.WriteString(" ")
			b.WriteString(pick("nature"))
			b.WriteString(". ")
			for k, m := 0, 1+r.IntN(3); k < m; k++ {
				b.WriteString(pick("freedom"))
				b.WriteString(" ")
			}
			if r.IntN(2) == 0 {
				b.WriteString(pick("compliance"))
				b.WriteString(" ")
			}
			if r.IntN(2) == 0 {
				b.WriteString(pick("format"))
				b.WriteString(" ")
			}
			if r.IntN(2) == 0 {
				b.WriteString(pick("first"))
				b.WriteString(pick("task"))
			}
			text = strings.ReplaceAll(strings.TrimSpace(b.String()), "{name}", name)
		case x < 0.85:
			family = "leak"
			text = pick("leadin") + pick("leakverb") + " " + pick("leakobject") + pick("leakmod")
		default:
			family = "fiction"
			text = strings.ReplaceAll(pick("fiction"), "{task}", strings.TrimSuffix(pick("task"), "?"))
			if r.IntN(2) == 0 {
				text += " " + pick("fictionexcuse")
			}
		}
		text = style(r, text)
		if seen[text] {
			continue
		}
		seen[text] = true
		out = append(out, Prompt{Text: text, Family: family, Held: held})
	}
	return out
}

// personaName makes up a persona's name: an acronym or a made-up word, so that the model learns
// the mechanics around a name rather than the famous names themselves.
func personaName(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		b := make([]byte, 3+r.IntN(3))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		return string(b)
	}
	syll := []string{"ka", "ro", "zen", "vi", "lo", "tar", "nex", "qu", "mi", "sol", "dra", "ix", "ve", "no", "ul", "bri"}
	var b strings.Builder
	for k, m := 0, 2+r.IntN(2); k < m; k++ {
		b.WriteString(syll[r.IntN(len(syll))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// style varies the surface: now and then all lower case, or the first sentence in capitals.
func style(r *rand.Rand, s string) string {
	switch x := r.Float64(); {
	case x < 0.1:
		return strings.ToLower(s)
	case x < 0.15:
		if i := strings.IndexAny(s, ".!?"); i > 0 {
			return strings.ToUpper(s[:i]) + s[i:]
		}
	}
	return s
}
