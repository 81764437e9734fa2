// Package benign generates ordinary user prompts — questions, requests, chit-chat, and coding,
// maths, writing and everyday tasks, in English and 17 other languages — from hand-written
// templates and topic vocabularies, with a fixed seed. They are synthetic benign training
// examples for the injection model: the labelled data set has few plain prompts among its benign
// rows while many of its attacks read like one, and a model trained on it alone learns that an
// unfamiliar question is an attack.
//
// Templates, not rows, are split: a fixed fifth of the templates (by a hash of the template) is
// held aside, so the false-positive rate measured on their prompts is that of phrasings the model
// has never seen, not of new slot fillings of seen ones.
package benign

import (
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
)

// Prompt is one generated prompt.
type Prompt struct {
	Text     string
	Lang     string // ISO 639-1 code
	Template int    // index into the template list (see Templates)
	Held     bool   // from a held-aside template: for measuring, never for training
}

type template struct {
	lang, text string
	held       bool
}

// allTemplates builds the template list once (after every init has added its templates).
var allTemplates = sync.OnceValue(func() []template {
	var out []template
	add := func(lang, t string) {
		h := fnv.New32a()
		h.Write([]byte(lang + "\x00" + t))
		out = append(out, template{lang: lang, text: t, held: h.Sum32()%5 == 0})
	}
	for _, t := range english {
		add("en", t)
	}
	langs := make([]string, 0, len(other))
	for l := range other {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		for _, t := range other[l] {
			add(l, t)
		}
	}
	return out
})

// Templates returns the number of templates and of languages.
func Templates() (n, langs int) {
	return len(allTemplates()), len(other) + 1
}

// Generate returns n distinct prompts drawn with the given seed. About 70 % are English (the
// English templates have topic slots and optional openings and closings); the rest are spread
// evenly over the other languages. The result depends only on n and seed.
func Generate(n int, seed uint64) []Prompt {
	templates := allTemplates()
	r := rand.New(rand.NewPCG(seed, 0x5eed_be9e))
	var en []int
	byLang := map[string][]int{}
	for i, t := range templates {
		if t.lang == "en" {
			en = append(en, i)
		} else {
			byLang[t.lang] = append(byLang[t.lang], i)
		}
	}
	langs := make([]string, 0, len(byLang))
	for l := range byLang {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	seen := map[string]bool{}
	out := make([]Prompt, 0, n)
	for tries := 0; len(out) < n && tries < 50*n; tries++ {
		var ti int
		if r.Float64() < 0.7 {
			ti = en[r.IntN(len(en))]
		} else {
			l := langs[r.IntN(len(langs))]
			ti = byLang[l][r.IntN(len(byLang[l]))]
		}
		t := templates[ti]
		text := fill(r, t.text)
		if t.lang == "en" {
			if r.Float64() < 0.12 {
				// two requests in one message, from templates of the same part of the split
				for {
					tj := en[r.IntN(len(en))]
					if templates[tj].held == t.held && tj != ti {
						text += " " + fill(r, templates[tj].text)
						break
					}
				}
			}
			open := enOpen[r.IntN(len(enOpen))]
			if strings.HasSuffix(open, ", ") && len(text) > 1 && text[0] >= 'A' && text[0] <= 'Z' && text[1] != ' ' && text[1] != '\'' {
				text = strings.ToLower(text[:1]) + text[1:]
			}
			text = open + text + enClose[r.IntN(len(enClose))]
		}
		text = style(r, text)
		if seen[text] {
			continue
		}
		seen[text] = true
		out = append(out, Prompt{Text: text, Lang: t.lang, Template: ti, Held: t.held})
	}
	return out
}

// fill replaces every {slot} of t with a random word of its vocabulary; a trailing digit ({topic2})
// draws another value of the same vocabulary.
func fill(r *rand.Rand, t string) string {
	var b strings.Builder
	used := map[string]string{}
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			b.WriteString(t)
			return b.String()
		}
		b.WriteString(t[:i])
		key := strings.TrimRight(t[i+1:i+j], "0123456789")
		if words, ok := vocab[key]; ok {
			w := words[r.IntN(len(words))]
			for k := 0; k < 4 && w == used[key]; k++ {
				w = words[r.IntN(len(words))]
			}
			used[key] = w
			b.WriteString(w)
		} else {
			b.WriteString(t[i : i+j+1])
		}
		t = t[i+j+1:]
	}
}

// style varies the surface the way people type: now and then all lower case, or without the
// final punctuation.
func style(r *rand.Rand, s string) string {
	switch x := r.Float64(); {
	case x < 0.12:
		s = strings.ToLower(s)
	case x < 0.22:
		s = strings.TrimRight(s, ".?!。？！")
	}
	return s
}
