package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/warden-ai/warden/internal/guard"
)

// datasetTypes maps the dataset's entity types to warden's finding types.
var datasetTypes = map[string]string{
	"EMAIL":          guard.TypeEmail,
	"PHONE":          guard.TypePhone,
	"SSN":            guard.TypeSSN,
	"CREDIT_CARD":    guard.TypePaymentCard,
	"IBAN":           guard.TypeIBAN,
	"IPV4":           guard.TypeIPv4,
	"AWS_ACCESS_KEY": guard.TypeAWSAccessKey,
	"GITHUB_TOKEN":   guard.TypeGitHubToken,
	"OPENAI_KEY":     guard.TypeOpenAIKey,
	"JWT":            guard.TypeJWT,
	"PRIVATE_KEY":    guard.TypePrivateKey,
}

// overlapTypes are scored by overlap rather than by exact span: the dataset
// labels only the header line of a private key, warden masks the block.
var overlapTypes = map[string]bool{guard.TypePrivateKey: true}

type record struct {
	Text     string `json:"text"`
	Entities []struct {
		Type  string `json:"type"`
		Start int    `json:"start"`
		End   int    `json:"end"`
	} `json:"entities"`
}

// typeStats counts one finding type.
type typeStats struct {
	Gold, Pred, TP int // TP: predictions matching a gold span of the type
	FN             int // gold spans no prediction matched
}

func (s typeStats) precision() float64 {
	if s.Pred == 0 {
		return 1
	}
	return float64(s.TP) / float64(s.Pred)
}

func (s typeStats) recall() float64 {
	if s.Gold == 0 {
		return 1
	}
	return float64(s.Gold-s.FN) / float64(s.Gold)
}

// Report is the result of an evaluation.
type Report struct {
	Rows, LookalikeRows, LookalikeFlagged int
	Types                                 map[string]*typeStats // by warden type; types outside the dataset count only predictions
	Errors                                []string              // examples of misses and false alarms
}

// evaluate scans every row of a pii-dev.jsonl-shaped stream with sc. A
// prediction is a true positive when a gold entity of the same type has
// exactly its span (by overlap for overlapTypes).
func evaluate(r io.Reader, sc guard.Scanner, maxErrors int) (*Report, error) {
	rep := &Report{Types: map[string]*typeStats{}}
	st := func(t string) *typeStats {
		if rep.Types[t] == nil {
			rep.Types[t] = &typeStats{}
		}
		return rep.Types[t]
	}
	for _, t := range datasetTypes {
		st(t)
	}
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 0, 1<<20), 1<<24)
	line := 0
	for in.Scan() {
		line++
		if len(strings.TrimSpace(in.Text())) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(in.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rep.Rows++
		for _, g := range rec.Entities {
			if _, ok := datasetTypes[g.Type]; !ok {
				return nil, fmt.Errorf("line %d: unknown entity type %q", line, g.Type)
			}
			if g.Start < 0 || g.End > len(rec.Text) || g.Start >= g.End {
				return nil, fmt.Errorf("line %d: bad span %d..%d", line, g.Start, g.End)
			}
		}
		text := []byte(rec.Text)
		fs := sc.Scan(text)
		if len(rec.Entities) == 0 {
			rep.LookalikeRows++
			if len(fs) > 0 {
				rep.LookalikeFlagged++
			}
		}
		matchedGold := make([]bool, len(rec.Entities))
		for _, f := range fs {
			s := st(f.Type)
			s.Pred++
			hit := false
			for gi, g := range rec.Entities {
				gt := datasetTypes[g.Type]
				if gt != f.Type {
					continue
				}
				if (f.Start == g.Start && f.End == g.End) || (overlapTypes[gt] && f.Start < g.End && g.Start < f.End) {
					if !matchedGold[gi] {
						matchedGold[gi] = true
						hit = true
						break
					}
				}
			}
			if hit {
				s.TP++
			} else if len(rep.Errors) < maxErrors {
				rep.Errors = append(rep.Errors, fmt.Sprintf("line %d: false %s %q in %q", line, f.Type, rec.Text[f.Start:f.End], rec.Text))
			}
		}
		for gi, g := range rec.Entities {
			gt := datasetTypes[g.Type]
			s := st(gt)
			s.Gold++
			if !matchedGold[gi] {
				s.FN++
				if len(rep.Errors) < maxErrors {
					rep.Errors = append(rep.Errors, fmt.Sprintf("line %d: missed %s %q in %q", line, gt, rec.Text[g.Start:g.End], rec.Text))
				}
			}
		}
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// write prints the report as a table.
func (rep *Report) write(w io.Writer) {
	types := make([]string, 0, len(rep.Types))
	for t := range rep.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	inDataset := func(t string) bool { return slices.Contains(datasetValues(), t) }
	fmt.Fprintf(w, "%-16s %6s %6s %6s %9s %7s\n", "type", "gold", "pred", "tp", "precision", "recall")
	var tg, tp, tt, tfn int
	for _, t := range types {
		s := rep.Types[t]
		if !inDataset(t) {
			if s.Pred > 0 {
				fmt.Fprintf(w, "%-16s %6s %6d %6s %9s %7s  (not labelled in the dataset: every prediction is a false alarm)\n", t, "-", s.Pred, "-", "-", "-")
			}
			tp += s.Pred
			continue
		}
		fmt.Fprintf(w, "%-16s %6d %6d %6d %9.4f %7.4f\n", t, s.Gold, s.Pred, s.TP, s.precision(), s.recall())
		tg += s.Gold
		tp += s.Pred
		tt += s.TP
		tfn += s.FN
	}
	micro := typeStats{Gold: tg, Pred: tp, TP: tt, FN: tfn}
	fmt.Fprintf(w, "%-16s %6d %6d %6d %9.4f %7.4f\n", "all (micro)", tg, tp, tt, micro.precision(), micro.recall())
	fmt.Fprintf(w, "rows %d, lookalike-only rows %d, flagged %d\n", rep.Rows, rep.LookalikeRows, rep.LookalikeFlagged)
}

func datasetValues() []string {
	out := make([]string, 0, len(datasetTypes))
	for _, v := range datasetTypes {
		out = append(out, v)
	}
	return out
}
