// Package dataset reads the labelled injection data set, splits it reproducibly into training and
// validation rows, and computes detection-quality figures. It never writes rows anywhere except
// where a caller asks it to (the comparison export under /tmp).
package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/warden-ai/warden/internal/guard/injection/internal/engine"
)

// Row is one labelled text.
type Row struct {
	Text    string `json:"text"`
	Label   string `json:"label"`
	Source  string `json:"source"`
	Attack  bool   `json:"-"`
	File    string `json:"-"` // source without "#fragment"
	Variant string `json:"-"` // the fragment: PurpleLlama injection variant or BIPIA attack category
	Group   int    `json:"-"` // near-duplicate group
	Val     bool   `json:"-"` // in the validation split
	Fold    int    `json:"-"` // cross-validation fold of a training row (0..Folds-1)
}

// MaxLine bounds one JSON line (the data set's texts are at most 8,000 characters).
const MaxLine = 1 << 20

// Load reads a JSON-lines file of rows.
func Load(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	return Read(f)
}

// Read parses JSON-lines rows from r.
func Read(r io.Reader) ([]Row, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	var rows []Row
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var row Row
		if err := json.Unmarshal(b, &row); err != nil {
			return nil, fmt.Errorf("dataset: line %d: %w", line, err)
		}
		switch row.Label {
		case "attack":
			row.Attack = true
		case "benign":
		default:
			return nil, fmt.Errorf("dataset: line %d: label %q is neither attack nor benign", line, row.Label)
		}
		row.File, row.Variant, _ = strings.Cut(row.Source, "#")
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dataset: line %d: %w", line+1, err)
	}
	return rows, nil
}

// Family is a short name for the row's source file, used in the per-source breakdown. BIPIA
// constructed rows are named by their context file's task and the attack kind.
func (r *Row) Family() string {
	f := r.File
	repo, path, _ := strings.Cut(f, ":")
	switch {
	case strings.Contains(f, "+"):
		ctx, _, _ := strings.Cut(path, "+")
		parts := strings.Split(ctx, "/")
		if len(parts) >= 2 {
			return "BIPIA/" + parts[1] + "+attack"
		}
	case repo == "microsoft/BIPIA":
		parts := strings.Split(path, "/")
		if len(parts) >= 2 {
			return "BIPIA/" + parts[1]
		}
	case strings.Contains(path, "prompt_injection_multilingual"):
		return "PurpleLlama/prompt_injection_multilingual"
	case strings.Contains(path, "prompt_injection.json"):
		if r.Attack {
			return "PurpleLlama/prompt_injection"
		}
		return "PurpleLlama/system_prompts"
	case strings.Contains(path, "frr_multilingual"):
		return "PurpleLlama/mitre_frr_multilingual"
	case strings.Contains(path, "mitre_frr"):
		return "PurpleLlama/mitre_frr"
	}
	name := path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		name = path[i+1:]
	}
	short := repo
	if i := strings.Index(repo, "/"); i >= 0 {
		short = repo[i+1:]
	}
	return short + "/" + strings.TrimSuffix(name, ".jsonl")
}

// Split parameters. The split is a pure function of the texts: no random state, no file order.
const (
	ValPercent = 20
	Folds      = 5
	splitSalt  = "warden/injection/split/v1"
	foldSalt   = "warden/injection/folds/v1"
	shingleN   = 5   // words per shingle
	jaccardMin = 0.5 // near-duplicate threshold
	commonDF   = 64  // shingles in more rows than this are boilerplate and do not link rows
)

// normalized returns the folded, white-space-collapsed text used for grouping.
func normalized(s string) []string {
	var t engine.Text
	t.Fold([]byte(s), 0)
	var words []string
	var b strings.Builder
	for _, r := range t.R {
		if r == ' ' || r == '\n' {
			if b.Len() > 0 {
				words = append(words, b.String())
				b.Reset()
			}
			continue
		}
		b.WriteRune(r)
	}
	if b.Len() > 0 {
		words = append(words, b.String())
	}
	return words
}

func shingles(words []string) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	add := func(ws []string) {
		h := sha256.Sum256([]byte(strings.Join(ws, " ")))
		k := binary.LittleEndian.Uint64(h[:8])
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(words) < shingleN {
		add(words)
		return out
	}
	for i := 0; i+shingleN <= len(words); i++ {
		add(words[i : i+shingleN])
	}
	return out
}

type unionFind []int

func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

func (u unionFind) union(a, b int) {
	a, b = u.find(a), u.find(b)
	if a != b {
		if a > b {
			a, b = b, a
		}
		u[b] = a
	}
}

func unit(salt, key string) float64 {
	h := sha256.Sum256([]byte(salt + "\x00" + key))
	return float64(binary.LittleEndian.Uint64(h[:8])>>11) / float64(1<<53)
}

// Assign groups near-duplicate rows (word 5-gram Jaccard ≥ 0.5 on the folded text, transitively),
// then puts each group in the validation split when a hash of the group's key falls in the first
// ValPercent percent, and gives each training group a cross-validation fold the same way. The
// group key is the sorted, normalised text of its smallest member, so the split does not depend
// on the order of the file. It returns the number of groups.
func Assign(rows []Row) int {
	sh := make([][]uint64, len(rows))
	df := map[uint64][]int{}
	norm := make([]string, len(rows))
	for i := range rows {
		w := normalized(rows[i].Text)
		norm[i] = strings.Join(w, " ")
		sh[i] = shingles(w)
		for _, k := range sh[i] {
			df[k] = append(df[k], i)
		}
	}
	uf := make(unionFind, len(rows))
	for i := range uf {
		uf[i] = i
	}
	for i := range rows {
		shared := map[int]int{}
		for _, k := range sh[i] {
			if l := df[k]; len(l) <= commonDF {
				for _, j := range l {
					if j > i {
						shared[j]++
					}
				}
			}
		}
		for j, n := range shared {
			if float64(n)/float64(len(sh[i])+len(sh[j])-n) >= jaccardMin {
				uf.union(i, j)
			}
		}
	}
	key := map[int]string{}
	for i := range rows {
		g := uf.find(i)
		if k, ok := key[g]; !ok || norm[i] < k {
			key[g] = norm[i]
		}
	}
	ids := map[int]int{}
	for i := range rows {
		g := uf.find(i)
		if _, ok := ids[g]; !ok {
			ids[g] = len(ids)
		}
		rows[i].Group = ids[g]
		k := key[g]
		rows[i].Val = unit(splitSalt, k) < ValPercent/100.0
		rows[i].Fold = int(unit(foldSalt, k) * Folds)
	}
	return len(ids)
}

// Metrics are detection-quality counts and rates.
type Metrics struct {
	TP, FP, TN, FN int
}

// Add counts one prediction.
func (m *Metrics) Add(attack, predicted bool) {
	switch {
	case attack && predicted:
		m.TP++
	case attack:
		m.FN++
	case predicted:
		m.FP++
	default:
		m.TN++
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Precision is TP/(TP+FP).
func (m Metrics) Precision() float64 { return ratio(m.TP, m.TP+m.FP) }

// Recall is TP/(TP+FN).
func (m Metrics) Recall() float64 { return ratio(m.TP, m.TP+m.FN) }

// FPR is FP/(FP+TN).
func (m Metrics) FPR() float64 { return ratio(m.FP, m.FP+m.TN) }

// F1 is the harmonic mean of precision and recall.
func (m Metrics) F1() float64 {
	p, r := m.Precision(), m.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func (m Metrics) String() string {
	return fmt.Sprintf("precision %.3f  recall %.3f  FPR %.4f  F1 %.3f  (TP %d FP %d TN %d FN %d)",
		m.Precision(), m.Recall(), m.FPR(), m.F1(), m.TP, m.FP, m.TN, m.FN)
}

// Breakdown holds metrics per key.
type Breakdown map[string]*Metrics

// Add counts one prediction under key.
func (b Breakdown) Add(key string, attack, predicted bool) {
	m := b[key]
	if m == nil {
		m = &Metrics{}
		b[key] = m
	}
	m.Add(attack, predicted)
}

// Keys returns the keys in order.
func (b Breakdown) Keys() []string {
	ks := make([]string, 0, len(b))
	for k := range b {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Write prints one line per key: recall for attack-only keys, FPR for benign-only keys, both otherwise.
func (b Breakdown) Write(w io.Writer, indent string) {
	for _, k := range b.Keys() {
		m := b[k]
		pos, neg := m.TP+m.FN, m.FP+m.TN
		switch {
		case neg == 0:
			fmt.Fprintf(w, "%s%-52s attacks %4d  recall %.3f\n", indent, k, pos, m.Recall())
		case pos == 0:
			fmt.Fprintf(w, "%s%-52s benign  %4d  FPR    %.4f\n", indent, k, neg, m.FPR())
		default:
			fmt.Fprintf(w, "%s%-52s attacks %4d  recall %.3f  benign %4d  FPR %.4f\n", indent, k, pos, m.Recall(), neg, m.FPR())
		}
	}
}
