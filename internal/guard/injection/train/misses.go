package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/warden-ai/warden/internal/guard/injection/internal/dataset"
	"github.com/warden-ai/warden/internal/guard/injection/internal/engine"
)

// Error analysis: counts of missed attacks by family, attack variant and language (a guess from
// the script and a few function words), so that the largest general gaps can be chosen without
// reading validation rows. Texts are printed only for training rows (-miss-text).

var scriptNames = [engine.NumScripts]string{"latin", "cyrillic", "greek", "arabic", "hebrew", "devanagari",
	"bengali", "indic", "thai", "han", "kana", "hangul", "other"}

// latinLangs are a few frequent function words per language; the language of a Latin-script text
// is the one with the most of them (en when none).
var latinLangs = []struct {
	lang  string
	words []string
}{
	{"en", []string{"the", "and", "is", "you", "to", "of", "what", "can", "your", "a"}},
	{"es", []string{"el", "la", "los", "las", "que", "de", "y", "es", "por", "para", "una", "puedes"}},
	{"fr", []string{"le", "la", "les", "et", "est", "vous", "de", "des", "une", "pour", "que", "pouvez"}},
	{"de", []string{"der", "die", "das", "und", "ist", "sie", "ich", "nicht", "ein", "eine", "mit", "zu"}},
	{"it", []string{"il", "la", "che", "di", "e", "per", "una", "sono", "del", "della", "puoi"}},
	{"pt", []string{"o", "a", "os", "que", "de", "e", "uma", "para", "voce", "nao", "do", "da"}},
	{"nl", []string{"de", "het", "een", "en", "is", "van", "je", "niet", "dat", "wat"}},
	{"pl", []string{"i", "w", "nie", "jest", "sie", "na", "to", "z", "czy", "co", "jak"}},
	{"tr", []string{"bir", "ve", "bu", "ne", "icin", "mi", "misin", "nasil", "ile", "da", "de"}},
	{"id", []string{"yang", "dan", "di", "ini", "itu", "apa", "dengan", "untuk", "saya", "anda", "bisakah"}},
	{"vi", []string{"la", "va", "cua", "cho", "toi", "ban", "khong", "nhung", "mot", "cac", "co"}},
	{"sw", []string{"na", "ya", "wa", "kwa", "ni", "je", "la", "za", "unaweza"}},
	{"tl", []string{"ang", "ng", "mga", "sa", "na", "ko", "mo", "ba", "ito"}},
}

func langOf(text string) string {
	var t engine.Text
	t.Fold([]byte(text), 0)
	s := t.DominantScript()
	if s < 0 {
		return "none"
	}
	if s != engine.ScriptLatin {
		return scriptNames[s]
	}
	count := map[string]int{}
	for _, w := range strings.FieldsFunc(string(t.R), func(r rune) bool {
		return !(r >= 'a' && r <= 'z')
	}) {
		count[w]++
	}
	best, bn := "en", 0
	for _, l := range latinLangs {
		n := 0
		for _, w := range l.words {
			n += count[w]
		}
		if n > bn {
			best, bn = l.lang, n
		}
	}
	return best
}

// missReport prints recall breakdowns of attack rows by family, variant and language.
func missReport(w io.Writer, title string, rows []*dataset.Row, pred []bool) {
	by := map[string]dataset.Breakdown{"family": {}, "variant": {}, "language": {}, "family × language": {}}
	for i, r := range rows {
		if !r.Attack {
			continue
		}
		l := langOf(r.Text)
		v := r.Variant
		if v == "" {
			v = "(none)"
		}
		by["family"].Add(r.Family(), true, pred[i])
		by["variant"].Add(v, true, pred[i])
		by["language"].Add(l, true, pred[i])
		by["family × language"].Add(r.Family()+" "+l, true, pred[i])
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "\n%s: missed attacks\n", title)
	for _, k := range keys {
		fmt.Fprintf(w, " by %s (attacks, missed):\n", k)
		b := by[k]
		for _, key := range b.Keys() {
			m := b[key]
			fmt.Fprintf(w, "   %-60s %4d  missed %4d  recall %.3f\n", key, m.TP+m.FN, m.FN, m.Recall())
		}
	}
}

// missChars is how much of a missed training attack -miss-text prints.
var missChars = 300
