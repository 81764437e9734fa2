// Command train builds warden's prompt-injection model from the labelled data set, and evaluates
// the embedded model.
//
//	go run ./internal/guard/injection/train -data ../shared/datasets/injection-dev.jsonl \
//	    -out internal/guard/injection/model.bin        # train, report, write the weights
//	go run ./internal/guard/injection/train -loso -out internal/guard/injection/model.bin  # the same, with leave-one-source-out figures
//	go run ./internal/guard/injection/train -cv-only -words 0      # cross-validation only (no final fit, validation untouched): ablations
//	go run ./internal/guard/injection/train -eval      # evaluate the embedded weights on the validation split
//	go run ./internal/guard/injection/train -eval -split all -data other.jsonl   # on every row of another file
//	go run ./internal/guard/injection/train -eval -export /tmp/injection-val.jsonl  # also write the split for peers
//	go run ./internal/guard/injection/train -cv-only -probe my-prompts.txt   # also score texts of your own (one per line)
//
// The defaults are the shipped configuration: n-gram sums divided by √F, character 1–2-grams of
// Han, kana and Hangul (-ideo), the sentences and lines of long texts scored on their own with
// n-gram weights of their own (-segments -segments-long -segment-weights), the positive span of
// an instruction planted in a document chosen among the segments holding it (-planted-span
// -planted-segments), L2 1e-6, 300 + 3×100 L-BFGS iterations, the mean of the five fold models
// shipped (so the out-of-fold threshold applies to it), and 12,000 generated ordinary prompts
// (package benign, synthetic) added as benign examples to the training side of every fold and
// weighing as much as the real benign rows. Cross-validation scores real rows only; the prompts of held-aside templates are scored
// separately, as a false-positive check on phrasings never trained on.
//
// Rule weights are held near their hand-set priors by an L2 pull of strength -mu (1e-3); with
// -rule-floor the pull below a prior has that strength instead, so a prior acts as a floor
// (tried with -mu 1e-5, not shipped: bench/RESULTS.md).
//
// Training is deterministic: the split and the folds are hashes of the texts, the optimiser is
// full-batch L-BFGS from a fixed start, and sums are reduced in a fixed order.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard/injection"
	"github.com/warden-ai/warden/internal/guard/injection/internal/attacks"
	"github.com/warden-ai/warden/internal/guard/injection/internal/benign"
	"github.com/warden-ai/warden/internal/guard/injection/internal/dataset"
	"github.com/warden-ai/warden/internal/guard/injection/internal/engine"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

type options struct {
	data, out, split, export string
	eval, loso, cvOnly       bool
	cfg                      engine.Config
	fpr                      float64
	iters                    int
	lambdas                  string
	dump                     int
	script                   bool
	mil                      int     // multiple-instance rounds after the first fit
	milWhole                 bool    // keep a long attack text's whole-text example as a positive in MIL rounds
	milIters                 int     // L-BFGS iterations of a multiple-instance round (warm-started)
	domainAll                bool    // the domain nuisance offset applies to every span of a BIPIA text, not only the whole text
	rules                    bool    // use the rule indicators as features (false: ablation)
	windowBias               bool    // learn an offset for window spans
	milSkip                  bool    // leave long attack texts out of the first fit
	winNeg                   bool    // the windows of long benign texts are negatives even when Detect scores whole texts only
	bias                     float64 // fixed bias; NaN: learned
	bag                      bool
	alone                    bool    // planted instructions on their own are benign prompts (see plantedAlone)
	genSpans                 bool    // the segments and windows of generated prompts are negatives too
	foldByInsertion          bool    // cross-validation folds of planted instructions by the inserted text
	plantedForm              bool    // a located planted instruction's positive segment keeps its form features and rules, not its n-grams
	plantedSegments          bool    // with plantedSpan: a located insertion's positive span is a segment when one holds it
	plantedSpan              bool    // positive spans of planted instructions are chosen where the insertion is (see plantedSpans)
	gen                      int     // generated benign prompts (package benign) added to every training fold
	genWeight                float64 // their total weight, as a fraction of the real benign rows' total weight
	genSeed                  uint64
	genAttacks               int     // generated attacks (package attacks) added to every training fold
	genAttackWeight          float64 // their total weight, as a fraction of the real attack rows' total weight
	genAttackSeed            uint64
	mu                       float64 // L2 strength pulling rule weights towards their priors
	floor                    float64 // L2 strength below the priors (0: mu)
	probe                    string  // files of texts (one per line) to score with the mean of the fold models, for error analysis
	misses                   bool    // print missed-attack counts by family, variant and language
	oofOut                   string  // write the chosen configuration's out-of-fold scores here (JSON lines), for analysis
	missText                 string  // print the out-of-fold missed training attacks whose family, variant or language contains this
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	var o options
	var bits, minN, maxN, words, window, stride, long uint
	fs.StringVar(&o.data, "data", "../shared/datasets/injection-dev.jsonl", "labelled JSON-lines data set")
	fs.StringVar(&o.out, "out", "", "write the trained weights here")
	fs.BoolVar(&o.eval, "eval", false, "evaluate the embedded weights instead of training")
	fs.StringVar(&o.split, "split", "val", "rows to evaluate with -eval: val, train or all")
	fs.StringVar(&o.export, "export", "", "with -eval: write the evaluated rows (text, label, source) to this JSON-lines file, for peer detectors")
	fs.BoolVar(&o.loso, "loso", false, "also report leave-one-source-out cross-validation on the training split")
	fs.UintVar(&bits, "bits", 18, "log2 of the hashed feature table size")
	fs.UintVar(&minN, "minn", 3, "shortest character n-gram")
	fs.UintVar(&maxN, "maxn", 5, "longest character n-gram (-minn 0 -maxn 0: no character n-grams)")
	fs.UintVar(&words, "words", 2, "word features: 0 none, 1 unigrams, 2 unigrams and bigrams")
	fs.BoolVar(&o.cfg.Cues, "cues", false, "cue-word features (multilingual lexicon concepts, and the same at a sentence start)")
	fs.BoolVar(&o.cfg.Ideo, "ideo", true, "character unigrams and bigrams of Han, kana and Hangul")
	fs.BoolVar(&o.cfg.MaskEncoded, "mask-encoded", false, "leave the n-grams of encoded runs (hex, base64) out of the sums")
	fs.BoolVar(&o.cfg.SegmentFeatures, "segment-features", false, "with -segments: features of a segment's form (first word, first two words, last character) with weights of their own")
	fs.BoolVar(&o.cfg.SegmentsLong, "segments-long", true, "with -segments: only long texts are scored by segments")
	fs.BoolVar(&o.cfg.SegmentWeights, "segment-weights", true, "with -segments: segments are scored with n-gram weights of their own, not shared with whole texts and windows")
	fs.BoolVar(&o.cfg.Segments, "segments", true, "long texts are also scored by their sentences and lines (with a learned segment offset)")
	fs.UintVar(&window, "window", 128, "window length in folded characters, for long texts")
	fs.UintVar(&stride, "stride", 64, "window stride")
	fs.UintVar(&long, "long", 400, "texts longer than this many folded characters (and than a window) are also scored by windows")
	fs.IntVar(&o.mil, "mil", 3, "multiple-instance rounds: refits in which each long attack text's positive example is its highest-scoring span")
	fs.IntVar(&o.milIters, "mil-iters", 100, "L-BFGS iterations of each multiple-instance round (warm-started from the previous fit)")
	fs.BoolVar(&o.domainAll, "domain-all", true, "apply the document-domain nuisance offset to every span of a BIPIA text (false: the whole-text example only)")
	fs.BoolVar(&o.milWhole, "mil-whole", false, "in multiple-instance rounds, keep long attack texts' whole-text examples as positives too")
	fs.BoolVar(&o.milSkip, "mil-skip", true, "leave long attack texts out of the first fit (their positive span is chosen by the model of the short texts)")
	fs.BoolVar(&o.winNeg, "window-negatives", true, "train on the windows of long benign texts as negatives even when Detect scores whole texts only")
	fs.BoolVar(&o.windowBias, "window-bias", true, "learn a logit offset for windows (spans shorter than the whole text)")
	fs.BoolVar(&o.rules, "rules", true, "use the rules as features (false: ablation, the rule indicators are left out)")
	fs.Float64Var(&o.bias, "bias", math.NaN(), "fix the model's bias (the logit of a text with no evidence) at this value; NaN learns it")
	fs.BoolVar(&o.alone, "planted-alone", false, "train on each planted instruction, recovered from its clean document, as a benign prompt on its own")
	fs.BoolVar(&o.foldByInsertion, "fold-by-insertion", false, "cross-validation folds of attacks whose insertion is located (see -planted-span) by the inserted text: out-of-fold figures for instructions never trained on")
	fs.BoolVar(&o.plantedForm, "planted-form", false, "with -planted-span and -segment-features: a located instruction's positive segment is trained on its form features and rules only, not its n-grams")
	fs.BoolVar(&o.genSpans, "gen-spans", false, "in multiple-instance rounds, the segments and windows of the generated prompts are negatives too")
	fs.BoolVar(&o.plantedSegments, "planted-segments", true, "with -planted-span and -segments: a located planted instruction's positive span is a segment holding it when there is one (not a window): with -segment-weights, what it teaches stays in the segment weights")
	fs.BoolVar(&o.plantedSpan, "planted-span", true, "in multiple-instance rounds, the positive span of an attack whose clean document is in the data is chosen among the spans holding the inserted text")
	fs.BoolVar(&o.bag, "bag", true, "ship the mean of the fold models (the models the threshold was chosen for) instead of refitting on the whole training split")
	fs.IntVar(&o.gen, "gen", 12000, "generated ordinary prompts (synthetic benign, package benign) added to the training side of every fold and of the final fit; those of held-aside templates only measure FPR")
	fs.Float64Var(&o.genWeight, "gen-weight", 1, "total weight of the generated prompts relative to the real benign training rows")
	fs.Uint64Var(&o.genSeed, "gen-seed", 1, "seed of the generated prompts")
	fs.IntVar(&o.genAttacks, "gen-attacks", 0, "generated jailbreak and prompt-leak prompts (synthetic attacks, package attacks) added to the training side of every fold and of the final fit; those built from held-aside phrasings only measure recall")
	fs.Float64Var(&o.genAttackWeight, "gen-attack-weight", 0.25, "total weight of the generated attacks relative to the real attack training rows")
	fs.Uint64Var(&o.genAttackSeed, "gen-attack-seed", 1, "seed of the generated attacks")
	fs.StringVar(&o.probe, "probe", "", "comma-separated files of texts, one per line (\\n for a newline), scored with the mean of the chosen fold models at the out-of-fold threshold (printed only)")
	fs.Float64Var(&o.mu, "mu", 1e-3, "L2 strength pulling the rule weights towards their hand-set priors")
	fs.Float64Var(&o.floor, "rule-floor", 0, "L2 strength below a rule's prior (large: the prior is a floor the weight cannot be trained below; 0: -mu on both sides)")
	fs.BoolVar(&o.misses, "misses", false, "print missed-attack counts by family, attack variant and language (out of fold; with -eval, the evaluated split: counts only)")
	fs.StringVar(&o.oofOut, "oof-out", "", "write the out-of-fold score of every training row (family, variant, label, folded length, logit, threshold) to this JSON-lines file, for error analysis")
	fs.StringVar(&o.missText, "miss-text", "", "print the texts of out-of-fold missed training attacks whose family, variant or language contains this (training split only)")
	fs.IntVar(&missChars, "miss-chars", 300, "characters of each text -miss-text prints")
	fs.BoolVar(&o.cvOnly, "cv-only", false, "stop after cross-validation (and -loso): no final fit, no validation")
	var norm string
	fs.StringVar(&norm, "norm", "sqrt", "n-gram sum normalisation: mean or sqrt")
	fs.BoolVar(&o.cfg.PromptWindows, "prompt-windows", true, "Detect also scores windows of long texts")
	fs.Float64Var(&o.fpr, "fpr", 0.015, "false-positive rate the threshold is chosen for, on out-of-fold training scores")
	fs.IntVar(&o.iters, "iters", 300, "L-BFGS iterations at most (a fixed budget: with the small L2 strengths used, it also acts as early stopping)")
	fs.IntVar(&o.dump, "dump", 0, "print the N highest-scoring benign and lowest-scoring attack training rows (out-of-fold), for error analysis")
	fs.StringVar(&o.lambdas, "lambda", "1e-6", "comma-separated L2 strengths to cross-validate")
	fs.BoolVar(&o.script, "script-nuisance", true, "fit per-script offsets during training and drop them at inference")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.cfg = engine.Config{Bits: uint8(bits), MinN: uint8(minN), MaxN: uint8(maxN), Words: uint8(words), Window: uint16(window),
		Stride: uint16(stride), Long: uint16(max(long, window)), PromptWindows: o.cfg.PromptWindows, Cues: o.cfg.Cues, Ideo: o.cfg.Ideo, Segments: o.cfg.Segments, SegmentsLong: o.cfg.SegmentsLong, SegmentFeatures: o.cfg.SegmentFeatures, SegmentWeights: o.cfg.SegmentWeights && o.cfg.Segments, MaskEncoded: o.cfg.MaskEncoded}
	switch norm {
	case "mean":
		o.cfg.Norm = 1
	case "sqrt":
	default:
		return fmt.Errorf("-norm %q: want mean or sqrt", norm)
	}
	raw, err := os.ReadFile(o.data)
	if err != nil {
		return err
	}
	rows, err := dataset.Read(bytesReader(raw))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	groups := dataset.Assign(rows)
	fmt.Fprintf(w, "data %s (sha256 %s…): %d rows, %d near-duplicate groups\n", o.data, hex.EncodeToString(sum[:8]), len(rows), groups)
	printSplit(w, rows)
	if o.eval {
		return evaluate(w, o, rows)
	}
	return trainAll(w, o, rows, hex.EncodeToString(sum[:]))
}

func printSplit(w io.Writer, rows []dataset.Row) {
	var c [2][2]int
	for _, r := range rows {
		c[b2i(r.Val)][b2i(r.Attack)]++
	}
	fmt.Fprintf(w, "split: train %d attack / %d benign, validation %d attack / %d benign\n", c[0][1], c[0][0], c[1][1], c[1][0])
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func selectRows(rows []dataset.Row, split string) ([]dataset.Row, error) {
	var out []dataset.Row
	for _, r := range rows {
		switch split {
		case "val":
			if r.Val {
				out = append(out, r)
			}
		case "train":
			if !r.Val {
				out = append(out, r)
			}
		case "all":
			out = append(out, r)
		default:
			return nil, fmt.Errorf("-split %q: want val, train or all", split)
		}
	}
	return out, nil
}

// evaluate scores rows with the embedded detector, the way a caller does.
func evaluate(w io.Writer, o options, rows []dataset.Row) error {
	sel, err := selectRows(rows, o.split)
	if err != nil {
		return err
	}
	d := injection.Default()
	var all dataset.Metrics
	bySource, byVariant, doc := dataset.Breakdown{}, dataset.Breakdown{}, dataset.Breakdown{}
	start := time.Now()
	var nbytes int
	for _, r := range sel {
		res := d.Detect([]byte(r.Text))
		nbytes += len(r.Text)
		all.Add(r.Attack, res.Attack)
		bySource.Add(r.Family(), r.Attack, res.Attack)
		if r.Attack && r.Variant != "" {
			byVariant.Add(r.Variant, r.Attack, res.Attack)
		}
		if len(r.Text) > 1000 {
			doc.Add(r.Family(), r.Attack, d.DetectDocument([]byte(r.Text)).Attack)
		}
	}
	el := time.Since(start)
	if o.misses {
		rs := make([]*dataset.Row, len(sel))
		pred := make([]bool, len(sel))
		for i := range sel {
			rs[i] = &sel[i]
			pred[i] = d.Detect([]byte(sel[i].Text)).Attack
		}
		missReport(w, "embedded model, "+o.split+" split", rs, pred)
	}
	fmt.Fprintf(w, "\nembedded model, Detect on the %s split (%d rows, threshold %.3f):\n  %s\n", o.split, len(sel), d.Threshold(), all)
	fmt.Fprintf(w, "  scoring time %v for %d bytes (%.1f MB/s, one goroutine, includes DetectDocument on long rows)\n",
		el.Round(time.Millisecond), nbytes, float64(nbytes)/el.Seconds()/1e6)
	fmt.Fprintln(w, "per source:")
	bySource.Write(w, "  ")
	fmt.Fprintln(w, "per attack variant (recall):")
	byVariant.Write(w, "  ")
	fmt.Fprintln(w, "DetectDocument on rows longer than 1,000 bytes:")
	doc.Write(w, "  ")
	if o.export != "" {
		f, err := os.Create(o.export)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		for _, r := range sel {
			if err := enc.Encode(map[string]string{"text": r.Text, "label": r.Label, "source": r.Source, "family": r.Family()}); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %d rows to %s (not for committing)\n", len(sel), o.export)
	}
	return nil
}

// prepared is a row with its analysis.
type prepared struct {
	row *dataset.Row
	a   *engine.Analysis
	// alone holds, for an attack that is an instruction planted in a document, the analysis of
	// the instruction on its own (see plantedAlone).
	alone []*engine.Analysis
	gen   bool // a generated prompt: trained on, never scored out of fold
	// ins is, for an attack that is a benign row of its near-duplicate group plus one inserted
	// instruction, the folded span of the insertion (hasIns); see plantedSpans.
	ins     [2]int
	hasIns  bool
	insText string
}

type builder struct {
	cfg        engine.Config
	rules      bool
	windowBias bool
	count      []int32
	touch      []uint32
}

// span is a part of a text the detector scores: the whole text, a window, or a segment (a
// sentence or line of a long text).
type span struct {
	a, b int
	seg  bool
	k    int // with seg: the segment's index in Analysis.Segs
}

// spansOf returns the spans of a scored by the detector: the whole text when whole is true, and
// when windows is true, the windows of a long text and (with Config.Segments) the segments of
// any text that has more than one.
func spansOf(cfg engine.Config, a *engine.Analysis, whole, windows bool) []span {
	var out []span
	for _, w := range cfg.Windows(a.N, whole, windows) {
		out = append(out, span{a: w[0], b: w[1]})
	}
	if windows && cfg.Segments && (cfg.IsLong(a.N) || !cfg.SegmentsLong) {
		for k, sg := range a.Segs {
			out = append(out, span{a: sg[0], b: sg[1], seg: true, k: k})
		}
	}
	return out
}

// example builds the training example of span sp of a.
func (b *builder) example(a *engine.Analysis, sp span, y, wt float64) example {
	s, e := sp.a, sp.b
	if b.count == nil {
		b.count = make([]int32, 1<<b.cfg.Bits)
	}
	b.touch = b.touch[:0]
	for _, k := range a.Buckets[a.Pos[s]:a.Pos[e]] {
		if b.count[k] == 0 {
			b.touch = append(b.touch, k)
		}
		b.count[k]++
	}
	sort.Slice(b.touch, func(i, j int) bool { return b.touch[i] < b.touch[j] })
	ex := example{y: y, w: wt, script: a.Script, domain: -1, win: b.windowBias && !sp.seg && !(s == 0 && e == a.N), seg: sp.seg}
	norm := b.cfg.NormFactor(int(a.Pos[e] - a.Pos[s]))
	ex.idx = make([]uint32, len(b.touch))
	ex.val = make([]float32, len(b.touch))
	var table uint32 // offset of the weight table: a segment's own with Config.SegmentWeights
	if sp.seg && b.cfg.SegmentWeights {
		table = 1 << b.cfg.Bits
	}
	for i, k := range b.touch {
		ex.idx[i] = table + k
		ex.val[i] = float32(float64(b.count[k]) * norm)
		b.count[k] = 0
	}
	if b.rules {
		for _, h := range a.Hits {
			if h.Start >= s && h.End <= e {
				ex.rules |= 1 << uint(h.Rule)
			}
		}
	}
	if sp.seg && b.cfg.SegmentFeatures {
		for _, f := range a.SegF[sp.k][:a.SegN[sp.k]] {
			ex.idx = append(ex.idx, f)
			ex.val = append(ex.val, 1)
		}
	}
	return ex
}

// examples builds the training examples of rows. Every span the detector scores (the whole text,
// and for a text longer than a window, every window) of a benign text is a negative: the
// detector's score is the highest span score, so every span must stay low. An attack text needs
// only one high span: without parameters x its whole text is the positive example; with x
// (multiple-instance learning) the positive is the span x scores highest, which for an instruction
// planted in a long document is the window that holds it.
func examples(o options, ps []prepared, l layout, x []float64) []example {
	var npos, nneg, ngen, ngenAtk float64
	for _, p := range ps {
		switch {
		case p.gen && p.row.Attack:
			ngenAtk++
		case p.gen:
			ngen++
		case p.row.Attack:
			npos++
		default:
			nneg++
		}
	}
	b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
	out := make([]example, 0, len(ps))
	for _, p := range ps {
		first := len(out)
		if p.gen && p.row.Attack {
			// a generated attack: a positive whole text, together weighing genAttackWeight of the
			// real attack rows
			out = append(out, b.example(p.a, span{b: p.a.N}, 1, o.genAttackWeight*npos/ngenAtk*(npos+nneg)/(2*npos)))
			continue
		}
		if p.gen {
			// a generated prompt: a negative whole text (and windows, if long), together weighing
			// genWeight of the real benign rows
			wt := o.genWeight * nneg / ngen * (npos + nneg) / (2 * nneg)
			out = append(out, b.example(p.a, span{b: p.a.N}, 0, wt))
			if x != nil && o.genSpans {
				// multiple-instance rounds: its other spans (segments, windows) are negatives
				// too, as for the real benign rows
				if sp := spansOf(o.cfg, p.a, false, o.cfg.PromptWindows); len(sp) > 0 {
					ww := wt / math.Sqrt(float64(len(sp)))
					for _, s := range sp {
						out = append(out, b.example(p.a, s, 0, ww))
					}
				}
			}
			continue
		}
		out = rowExamples(out, b, o, p, l, x, npos, nneg)
		if o.domainAll {
			setDomain(out, first, len(out), domainOf(p.row))
		} else {
			setDomain(out, first, first+1, domainOf(p.row)) // the whole-text example comes first
		}
		for _, a := range p.alone {
			out = append(out, b.example(a, span{b: a.N}, 0, (npos+nneg)/(2*nneg)))
		}
	}
	return out
}

// plantedAlone finds, for every attack row that is a document with a planted instruction, the
// instruction itself: the text between the longest common prefix and suffix of the row and a
// benign row of its near-duplicate group (the same document, clean). Such an instruction is
// often a harmless task ("what is the capital of …?") that is an attack only because it sits
// inside data the model reads; on its own, as a prompt, it is benign. Training on it as a
// negative whole-text example keeps the model from learning that questions and requests are
// attacks, and leaves the evidence where it belongs: an instruction inside a document (a window).
func plantedAlone(cfg engine.Config, ps []prepared) int {
	benign := map[int][]string{}
	for _, p := range ps {
		if !p.row.Attack {
			benign[p.row.Group] = append(benign[p.row.Group], p.row.Text)
		}
	}
	n := 0
	for i := range ps {
		p := &ps[i]
		if !p.row.Attack {
			continue
		}
		for _, clean := range benign[p.row.Group] {
			if instr, ok := insertion(p.row.Text, clean); ok {
				p.alone = append(p.alone, engine.Analyze(cfg, []byte(instr), false))
				n++
				break
			}
		}
	}
	return n
}

// plantedSpans locates, for every attack row that is a benign training row with one inserted
// text (an instruction planted in a document), the insertion in folded coordinates. Multiple-instance learning then picks the positive span of such a row among the
// spans that hold the insertion, rather than wherever the document's own text happens to score
// highest: the document's text is benign (its clean copy is a benign row), and a positive span
// made of it would teach the model that e-mails or tables of that kind are attacks.
func plantedSpans(ps []prepared) int {
	// candidates: the benign rows sharing the attack's first or last 32 bytes (an insertion at
	// the start, in the middle or at the end keeps one of them)
	const k = 32
	byHead, byTail := map[string][]string{}, map[string][]string{}
	for _, p := range ps {
		if t := p.row.Text; !p.row.Attack && !p.gen && len(t) >= k {
			byHead[t[:k]] = append(byHead[t[:k]], t)
			byTail[t[len(t)-k:]] = append(byTail[t[len(t)-k:]], t)
		}
	}
	n := 0
	for i := range ps {
		p := &ps[i]
		t := p.row.Text
		if !p.row.Attack || len(t) < k {
			continue
		}
		for _, clean := range append(append([]string(nil), byHead[t[:k]]...), byTail[t[len(t)-k:]]...) {
			bs, be, ok := insertionAt(p.row.Text, clean)
			if !ok {
				continue
			}
			var ft engine.Text
			ft.Fold([]byte(p.row.Text), 0)
			fa, fb := -1, -1
			for k := range ft.R {
				off := ft.SrcOff(k)
				if off >= bs && off < be {
					if fa < 0 {
						fa = k
					}
					fb = k + 1
				}
			}
			if fa >= 0 && fb <= p.a.N {
				p.ins, p.hasIns, p.insText = [2]int{fa, fb}, true, p.row.Text[bs:be]
				n++
			}
			break
		}
	}
	return n
}

// insertionAt returns the byte range of attacked that was inserted into clean, when attacked is
// clean with one insertion of at least 8 bytes.
func insertionAt(attacked, clean string) (int, int, bool) {
	if len(attacked) < len(clean)+8 {
		return 0, 0, false
	}
	pre := 0
	for pre < len(clean) && attacked[pre] == clean[pre] {
		pre++
	}
	suf := 0
	for suf < len(clean)-pre && attacked[len(attacked)-1-suf] == clean[len(clean)-1-suf] {
		suf++
	}
	if pre+suf != len(clean) {
		return 0, 0, false
	}
	return pre, len(attacked) - suf, true
}

// insertion returns the text inserted into clean to give attacked, when attacked is clean with
// one short insertion.
func insertion(attacked, clean string) (string, bool) {
	start, end, ok := insertionAt(attacked, clean)
	if !ok {
		return "", false
	}
	instr := strings.TrimSpace(attacked[start:end])
	if len(instr) < 8 || len(instr) > 600 || !utf8.ValidString(instr) {
		return "", false
	}
	return instr, true
}

func rowExamples(out []example, b *builder, o options, p prepared, l layout, x []float64, npos, nneg float64) []example {
	y, wt := 0.0, (npos+nneg)/(2*nneg)
	if p.row.Attack {
		y, wt = 1, (npos+nneg)/(2*npos)
	}
	spans := spansOf(o.cfg, p.a, true, o.cfg.PromptWindows)
	if !p.row.Attack && o.winNeg {
		spans = spansOf(o.cfg, p.a, true, true) // hard negatives even where Detect does not score windows
	}
	long := len(spans) > 1
	if x == nil && o.windowBias && o.cfg.PromptWindows {
		// First fit: whole texts only, so that the window offset is learned in the
		// multiple-instance rounds from positive and negative windows alike (with benign windows
		// alone it would only learn to switch windows off).
		spans = spans[:1]
	}
	if !p.row.Attack {
		out = append(out, b.example(p.a, span{b: p.a.N}, 0, wt))
		if k := len(spans) - 1; k > 0 {
			ww := wt / math.Sqrt(float64(k))
			for _, sp := range spans[1:] {
				out = append(out, b.example(p.a, sp, 0, ww))
			}
		}
		return out
	}
	if x == nil && long && o.milSkip {
		return out // first fit: long attack texts wait until a model can point at their best span
	}
	if x == nil || len(spans) == 1 {
		return append(out, b.example(p.a, span{b: p.a.N}, y, wt))
	}
	located := p.hasIns && o.plantedSpan
	segOnly := false // the positive is a segment that holds the insertion, when there is one
	if located && o.plantedSegments {
		for _, sp := range spans {
			segOnly = segOnly || sp.seg && holds(sp, p.ins, false)
		}
	}
	best, bz := -1, math.Inf(-1)
	for k, sp := range spans {
		if located && (!holds(sp, p.ins, k == 0) || segOnly && !sp.seg) {
			continue
		}
		ex := b.example(p.a, sp, 0, 0)
		if z := l.logit(x, &ex, false); z > bz {
			best, bz = k, z
		}
	}
	if best < 0 {
		best = 0
	}
	if o.milWhole && best != 0 {
		out = append(out, b.example(p.a, span{b: p.a.N}, y, wt))
	}
	ex := b.example(p.a, spans[best], y, wt)
	if sp := spans[best]; o.plantedForm && p.hasIns && o.plantedSpan && sp.seg && o.cfg.SegmentFeatures {
		// only the segment's form (and rules) is evidence: its words are left to the rest of the
		// data, where the same request may well be an ordinary prompt
		k := len(ex.idx) - int(p.a.SegN[sp.k])
		ex.idx, ex.val = ex.idx[k:], ex.val[k:]
	}
	return append(out, ex)
}

// holds reports whether span sp holds the inserted text ins: the insertion is at least half of
// the span or the span covers at least half of the insertion. The whole text (whole) never
// counts for a long text: most of it is the clean document.
func holds(sp span, ins [2]int, whole bool) bool {
	if whole {
		return false
	}
	ov := min(sp.b, ins[1]) - max(sp.a, ins[0])
	return ov > 0 && (2*ov >= sp.b-sp.a || 2*ov >= ins[1]-ins[0])
}

// fit trains on whole texts and benign windows, then refits o.mil times with each long attack
// text's positive example moved to its highest-scoring span under the previous fit.
func fit(o options, l layout, h hyper, ps []prepared) []float64 {
	x := train(l, h, examples(o, ps, l, nil), o.iters, nil)
	if o.cfg.SegmentWeights && o.windowBias && o.cfg.PromptWindows {
		// the first fit has no segments (see rowExamples): their own weights start from the whole texts' weights,
		// so that the first multiple-instance round can point at a segment
		n := 1 << o.cfg.Bits
		copy(x[n:2*n], x[:n])
	}
	for r := 0; r < o.mil; r++ {
		x = train(l, h, examples(o, ps, l, x), o.milIters, x) // warm start
	}
	return x
}

// score returns the detector's logit for a prepared row under parameters x (script offsets not used).
func score(l layout, cfg engine.Config, x []float64, p prepared, b *builder) float64 {
	best := math.Inf(-1)
	for _, sp := range spansOf(cfg, p.a, true, cfg.PromptWindows) {
		ex := b.example(p.a, sp, 0, 0)
		if z := l.logit(x, &ex, false); z > best {
			best = z
		}
	}
	return best
}

// thresholdFor returns the smallest logit threshold whose false-positive rate on the benign
// scores is at most fpr.
func thresholdFor(benign []float64, fpr float64) float64 {
	s := append([]float64(nil), benign...)
	sort.Float64s(s)
	allowed := int(math.Floor(fpr * float64(len(s))))
	if allowed >= len(s) {
		return math.Inf(-1)
	}
	// predictions are score >= t; leave the `allowed` highest benign scores above
	i := len(s) - 1 - allowed
	return math.Nextafter(s[i], math.Inf(1))
}

type cvResult struct {
	h         hyper
	oof       []float64 // per training row
	threshold float64   // logit
	m         dataset.Metrics
	models    [][]float64 // the fold models, in fold order
}

func crossValidate(o options, l layout, h hyper, ps, extra []prepared) cvResult {
	oof := make([]float64, len(ps))
	var models [][]float64
	b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
	for f := 0; f < dataset.Folds; f++ {
		var tr, te []int
		for i, p := range ps {
			if p.row.Fold == f {
				te = append(te, i)
			} else {
				tr = append(tr, i)
			}
		}
		sub := make([]prepared, len(tr), len(tr)+len(extra))
		for k, i := range tr {
			sub[k] = ps[i]
		}
		t0 := time.Now()
		x := fit(o, l, h, append(sub, extra...))
		models = append(models, x)
		fmt.Fprintf(os.Stderr, "  fold %d fitted in %v\n", f, time.Since(t0).Round(time.Second))
		for _, i := range te {
			oof[i] = score(l, o.cfg, x, ps[i], b)
		}
	}
	var benign []float64
	for i, p := range ps {
		if !p.row.Attack {
			benign = append(benign, oof[i])
		}
	}
	t := thresholdFor(benign, o.fpr)
	var m dataset.Metrics
	for i, p := range ps {
		m.Add(p.row.Attack, oof[i] >= t)
	}
	return cvResult{h: h, oof: oof, threshold: t, m: m, models: models}
}

func trainAll(w io.Writer, o options, rows []dataset.Row, dataSum string) error {
	if o.out == "" && !o.cvOnly {
		return fmt.Errorf("-out is required when training")
	}
	start := time.Now()
	var trainRows, valRows []prepared
	for i := range rows {
		r := &rows[i]
		if len(r.Text) > engine.MaxChunk {
			return fmt.Errorf("row longer than %d bytes: %s", engine.MaxChunk, r.Source)
		}
		p := prepared{row: r, a: engine.Analyze(o.cfg, []byte(r.Text), false)}
		if r.Val {
			valRows = append(valRows, p)
		} else {
			trainRows = append(trainRows, p)
		}
	}
	if o.alone {
		fmt.Fprintf(w, "planted instructions recovered as benign prompts on their own: %d\n", plantedAlone(o.cfg, trainRows))
	}
	if o.plantedSpan || o.foldByInsertion {
		n := plantedSpans(trainRows)
		if o.foldByInsertion {
			// cross-validation folds of located planted instructions by the inserted text, so
			// that no instruction is scored out of fold after being trained on in another document
			for _, p := range trainRows {
				if p.hasIns {
					key := strings.ToLower(strings.Join(strings.Fields(p.insText), " "))
					h := sha256.Sum256([]byte("warden/injection/insertion-folds/v1\x00" + key))
					p.row.Fold = int(binary.LittleEndian.Uint64(h[:8]) % dataset.Folds)
				}
			}
		}
		located := dataset.Breakdown{}
		for _, p := range trainRows {
			if p.row.Attack && strings.HasPrefix(p.row.Family(), "BIPIA") {
				located.Add(p.row.Family(), true, p.hasIns)
			}
		}
		fmt.Fprintf(w, "planted instructions located in their documents (positive spans chosen there): %d\n", n)
		located.Write(w, "  ")
	}
	genTrain, genHeld := generated(o)
	atkTrain, atkHeld := generatedAttacks(o)
	extra := append(genTrain[:len(genTrain):len(genTrain)], atkTrain...) // the generated training rows of every fit
	if o.genAttacks > 0 {
		fmt.Fprintf(w, "generated attacks (synthetic jailbreaks and prompt leaks, seed %d): %d for training (total weight %.2f of the real attack rows), %d from held-aside phrasings for measuring only\n",
			o.genAttackSeed, len(atkTrain), o.genAttackWeight, len(atkHeld))
	}
	if o.gen > 0 {
		nt, nl := benign.Templates()
		fmt.Fprintf(w, "generated ordinary prompts (synthetic benign, %d templates in %d languages, seed %d): %d for training (total weight %.2f of the real benign rows), %d from held-aside templates for measuring only\n",
			nt, nl, o.genSeed, len(genTrain), o.genWeight, len(genHeld))
	}
	l := newLayout(o.cfg)
	fmt.Fprintf(w, "features: %d-bit hashed character %d..%d-grams, word features %d, cue features %v, ideographic 1-2-grams %v, segments %v (own weights %v), encoded runs masked %v, rules %v (%d); window %d stride %d long %d (window bias %v), prompt windows %v; MIL rounds %d (whole kept %v); analysed in %v\n",
		o.cfg.Bits, o.cfg.MinN, o.cfg.MaxN, o.cfg.Words, o.cfg.Cues, o.cfg.Ideo, o.cfg.Segments, o.cfg.SegmentWeights, o.cfg.MaskEncoded, o.rules, engine.NumRules, o.cfg.Window, o.cfg.Stride, o.cfg.Long, o.windowBias, o.cfg.PromptWindows,
		o.mil, o.milWhole, time.Since(start).Round(time.Millisecond))

	grid := []hyper{}
	for _, f := range strings.Split(o.lambdas, ",") {
		lam, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || lam <= 0 {
			return fmt.Errorf("-lambda: bad value %q", f)
		}
		grid = append(grid, hyper{lambda: lam, mu: o.mu, floor: o.floor, nu: 1e-4, script: o.script, bias0: o.bias, fixBias: !math.IsNaN(o.bias)})
	}
	fmt.Fprintf(w, "\n%d-fold cross-validation on the training split (threshold at out-of-fold FPR ≤ %.3f):\n", dataset.Folds, o.fpr)
	var best cvResult
	for i, h := range grid {
		r := crossValidate(o, l, h, trainRows, extra)
		fmt.Fprintf(w, "  lambda %.0e mu %.0e nu %.0e nuisance %v: %s; recall at OOF FPR 1%% %.3f, 1.5%% %.3f, 2%% %.3f\n", h.lambda, h.mu, h.nu, h.script, r.m,
			recallAt(trainRows, r.oof, 0.01), recallAt(trainRows, r.oof, 0.015), recallAt(trainRows, r.oof, 0.02))
		if len(genHeld) > 0 {
			x := average(r.models)
			b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
			fp := 0
			var flagged []string
			for _, p := range genHeld {
				if z := score(l, o.cfg, x, p, b); z >= r.threshold {
					fp++
					flagged = append(flagged, fmt.Sprintf("%.3f %s %q", z, p.row.File, truncate(p.row.Text, 100)))
				}
			}
			fmt.Fprintf(w, "    held-aside generated prompts, mean of the fold models at that threshold: FPR %.4f (%d of %d)\n", float64(fp)/float64(len(genHeld)), fp, len(genHeld))
			for _, f := range flagged[:min(len(flagged), 30)] {
				fmt.Fprintf(w, "      %s\n", f)
			}
		}
		if len(atkHeld) > 0 {
			x := average(r.models)
			b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
			bd := dataset.Breakdown{}
			tp := 0
			for _, p := range atkHeld {
				hit := score(l, o.cfg, x, p, b) >= r.threshold
				bd.Add(p.row.File, true, hit)
				if hit {
					tp++
				}
			}
			fmt.Fprintf(w, "    held-aside generated attacks, mean of the fold models at that threshold: recall %.4f (%d of %d)\n", float64(tp)/float64(len(atkHeld)), tp, len(atkHeld))
			bd.Write(w, "      ")
		}
		if o.probe != "" {
			if err := probe(w, o, l, r); err != nil {
				return err
			}
		}
		if i == 0 || r.m.Recall() > best.m.Recall()+1e-9 {
			best = r
		}
	}
	fmt.Fprintf(w, "chosen: lambda %.0e (highest out-of-fold recall at the FPR target), logit threshold %.4f\n", best.h.lambda, best.threshold)
	if o.dump > 0 {
		dump(w, o, l, trainRows, best, o.dump)
	}
	if o.oofOut != "" {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for i, p := range trainRows {
			if err := enc.Encode(map[string]any{"family": p.row.Family(), "variant": p.row.Variant, "attack": p.row.Attack,
				"n": p.a.N, "long": o.cfg.IsLong(p.a.N), "logit": best.oof[i], "threshold": best.threshold}); err != nil {
				return err
			}
		}
		if err := os.WriteFile(o.oofOut, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.misses || o.missText != "" {
		rs := make([]*dataset.Row, len(trainRows))
		pred := make([]bool, len(trainRows))
		for i, p := range trainRows {
			rs[i], pred[i] = p.row, best.oof[i] >= best.threshold
		}
		if o.misses {
			missReport(w, "out-of-fold (training split)", rs, pred)
		}
		if o.missText != "" {
			fmt.Fprintf(w, "out-of-fold missed training attacks matching %q:\n", o.missText)
			for i, r := range rs {
				if r.Attack && !pred[i] && (strings.Contains(r.Family(), o.missText) || strings.Contains(r.Variant, o.missText) || langOf(r.Text) == o.missText) {
					fmt.Fprintf(w, "  %7.3f %-28s %-5s %q\n", best.oof[i], r.Variant, langOf(r.Text), truncate(r.Text, missChars))
				}
			}
		}
	}

	oofBySource := dataset.Breakdown{}
	for i, p := range trainRows {
		oofBySource.Add(p.row.Family(), p.row.Attack, best.oof[i] >= best.threshold)
	}
	fmt.Fprintln(w, "out-of-fold, per source:")
	oofBySource.Write(w, "  ")

	if o.loso {
		leaveOneSourceOut(w, o, l, best, trainRows, extra)
	}
	if o.cvOnly {
		fmt.Fprintf(w, "total time %v (-cv-only: no final fit, validation not scored)\n", time.Since(start).Round(time.Second))
		return nil
	}

	var x []float64
	if o.bag {
		x = average(best.models)
	} else {
		x = fit(o, l, best.h, append(append([]prepared(nil), trainRows...), extra...))
	}
	m := quantise(o.cfg, l, x, best.threshold)
	fmt.Fprintf(w, "final fit: bias %.3f, window bias %.3f, segment bias %.3f, n-gram scale %.3g\n", m.Bias, m.WindowBias, m.SegmentBias, m.Scale)
	// validation, once, through the same scanning code the detector uses
	var val dataset.Metrics
	bySource, byVariant := dataset.Breakdown{}, dataset.Breakdown{}
	var s engine.Scratch
	var out engine.Outcome
	for _, p := range valRows {
		m.Scan([]byte(p.row.Text), false, &s, &out)
		pred := sigmoid(out.Logit) >= m.Threshold
		val.Add(p.row.Attack, pred)
		bySource.Add(p.row.Family(), p.row.Attack, pred)
		if p.row.Attack && p.row.Variant != "" {
			byVariant.Add(p.row.Variant, true, pred)
		}
	}
	genFPR := heldFPR(w, m, genHeld)
	meta := map[string]any{
		"generated_benign": map[string]any{"train": len(genTrain), "held": len(genHeld), "weight": o.genWeight, "seed": o.genSeed, "held_fpr": genFPR},
		"data_sha256":      dataSum, "lambda": best.h.lambda, "mu": best.h.mu, "rule_floor": best.h.floor, "nu": best.h.nu,
		"oof_fpr_target": o.fpr, "oof_recall": best.m.Recall(), "oof_fpr": best.m.FPR(),
		"val_precision": val.Precision(), "val_recall": val.Recall(), "val_fpr": val.FPR(),
		"oof_recall_at_fpr": map[string]float64{"0.01": recallAt(trainRows, best.oof, 0.01), "0.015": recallAt(trainRows, best.oof, 0.015),
			"0.02": recallAt(trainRows, best.oof, 0.02)},
		"features": fmt.Sprintf("char %d..%d-grams, words %d, cues %v, ideo %v, segments %v (own weights %v), mask encoded %v, rules %v, window %d/%d long %d, window bias %v",
			o.cfg.MinN, o.cfg.MaxN, o.cfg.Words, o.cfg.Cues, o.cfg.Ideo, o.cfg.Segments, o.cfg.SegmentWeights, o.cfg.MaskEncoded, o.rules, o.cfg.Window, o.cfg.Stride, o.cfg.Long, o.windowBias),
		"split":   "sha256 of near-duplicate group key, 20% validation",
		"trainer": fmt.Sprintf("L-BFGS, class-balanced log-loss, %d MIL rounds (long attack texts skipped in the first fit: %v)", o.mil, o.milSkip),
	}
	if o.genAttacks > 0 { // absent otherwise: weights trained without them stay byte-identical
		atkRecall := heldRecall(w, m, atkHeld)
		meta["generated_attacks"] = map[string]any{"train": len(atkTrain), "held": len(atkHeld), "weight": o.genAttackWeight, "seed": o.genAttackSeed, "held_recall": atkRecall}
	}
	m.Meta, _ = json.Marshal(meta)
	blob := m.Encode()
	if _, err := engine.Decode(blob); err != nil {
		return fmt.Errorf("re-reading the weights: %w", err)
	}
	if err := os.WriteFile(o.out, blob, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwrote %s (%d bytes)\n", o.out, len(blob))
	fmt.Fprintln(w, "rule weights (prior → trained):")
	for r := 0; r < engine.NumRules; r++ {
		fmt.Fprintf(w, "  %-32s %5.2f → %5.2f\n", engine.RuleName(r), engine.RulePrior(r), m.Rule[r])
	}
	fmt.Fprintf(w, "\nvalidation split (%d rows), quantised model, threshold %.4f:\n  %s\n", len(valRows), m.Threshold, val)
	fmt.Fprintln(w, "per source:")
	bySource.Write(w, "  ")
	fmt.Fprintln(w, "per attack variant (recall):")
	byVariant.Write(w, "  ")
	fmt.Fprintf(w, "total time %v\n", time.Since(start).Round(time.Second))
	return nil
}

// average returns the element-wise mean of the fold models. The model is linear in its
// parameters, so every span's logit under the mean is the mean of the fold models' logits: the
// threshold chosen on their out-of-fold scores carries over, which a refit with a different
// amount of data would not guarantee.
func average(xs [][]float64) []float64 {
	out := make([]float64, len(xs[0]))
	for _, x := range xs {
		for j, v := range x {
			out[j] += v
		}
	}
	for j := range out {
		out[j] /= float64(len(xs))
	}
	return out
}

// quantise converts float parameters to the weight file's int16 table.
func quantise(cfg engine.Config, l layout, x []float64, logitThreshold float64) *engine.Model {
	var mx float64
	for j := 0; j < l.nw; j++ {
		mx = math.Max(mx, math.Abs(x[j]))
	}
	if mx == 0 {
		mx = 1
	}
	m := &engine.Model{Cfg: cfg, Bias: x[l.bias()], Scale: mx / 32767, W: make([]int16, l.nw), FoldSum: engine.FoldChecksum()}
	for j := 0; j < l.nw; j++ {
		m.W[j] = int16(math.Round(x[j] / m.Scale))
	}
	for r := 0; r < l.nr; r++ {
		m.Rule[r] = x[l.rule(r)]
	}
	m.WindowBias = x[l.win()]
	m.SegmentBias = x[l.seg()]
	m.Threshold = sigmoid(logitThreshold)
	m.DocThreshold = m.Threshold
	return m
}

// leaveOneSourceOut trains without each source in turn and scores that source: an estimate of how
// the detector does on a source it has never seen. A source is a data domain with its attacks and
// its benign texts together (a BIPIA task's clean and attacked contexts; PurpleLlama's English
// injections and the system prompts they target; its multilingual injections and multilingual
// false-refusal prompts): leaving out only one label of a domain would measure the domain, not
// the detector.
func leaveOneSourceOut(w io.Writer, o options, l layout, best cvResult, ps, genTrain []prepared) {
	srcs := map[string]bool{}
	for _, p := range ps {
		srcs[sourceOf(p.row)] = true
	}
	names := make([]string, 0, len(srcs))
	for f := range srcs {
		names = append(names, f)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "leave-one-source-out (train on the other sources of the training split, same threshold):")
	bd, bySource := dataset.Breakdown{}, dataset.Breakdown{}
	var all dataset.Metrics
	b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
	for _, f := range names {
		var tr, te []prepared
		for _, p := range ps {
			if sourceOf(p.row) == f {
				te = append(te, p)
			} else {
				tr = append(tr, p)
			}
		}
		x := fit(o, l, best.h, append(tr, genTrain...))
		for _, p := range te {
			pred := score(l, o.cfg, x, p, b) >= best.threshold
			bd.Add(p.row.Family(), p.row.Attack, pred)
			bySource.Add(f, p.row.Attack, pred)
			all.Add(p.row.Attack, pred)
		}
	}
	fmt.Fprintf(w, "  pooled: %s\n", all)
	fmt.Fprintln(w, " per left-out source:")
	bySource.Write(w, "  ")
	fmt.Fprintln(w, " per family:")
	bd.Write(w, "  ")
}

// sourceOf returns the leave-one-source-out group of a row.
func sourceOf(r *dataset.Row) string {
	f := r.Family()
	switch {
	case strings.HasPrefix(f, "BIPIA/"):
		return strings.TrimSuffix(f, "+attack")
	case f == "PurpleLlama/prompt_injection" || f == "PurpleLlama/system_prompts":
		return "PurpleLlama/prompt_injection (English, with its system prompts)"
	case f == "PurpleLlama/prompt_injection_multilingual" || f == "PurpleLlama/mitre_frr_multilingual":
		return "PurpleLlama multilingual (injections and false-refusal prompts)"
	case strings.HasPrefix(f, "self-instruct/"):
		return "self-instruct"
	}
	return f
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

func truncate(s string, n int) string {
	t := []rune(s)
	if len(t) > n {
		return string(t[:n]) + "…"
	}
	return s
}

// dump prints the out-of-fold errors nearest the threshold, for error analysis on the terminal
// (nothing is written to files).
func dump(w io.Writer, o options, l layout, ps []prepared, r cvResult, n int) {
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return r.oof[idx[a]] > r.oof[idx[b]] })
	b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
	show := func(i int) {
		p := ps[i]
		t := []rune(p.row.Text)
		if len(t) > 110 {
			t = t[:110]
		}
		fmt.Fprintf(w, "  %7.3f %-40s %q\n", r.oof[i], p.row.Family(), string(t))
		// the span that decided the score, under the model of the row's fold
		x := r.models[p.row.Fold]
		best, bz := span{}, math.Inf(-1)
		for _, sp := range spansOf(o.cfg, p.a, true, o.cfg.PromptWindows) {
			ex := b.example(p.a, sp, 0, 0)
			if z := l.logit(x, &ex, false); z > bz {
				best, bz = sp, z
			}
		}
		var ft engine.Text
		ft.Fold([]byte(p.row.Text), 0)
		kind := "whole"
		switch {
		case best.seg:
			kind = "segment"
		case best.a != 0 || best.b != p.a.N:
			kind = "window"
		}
		var rules []string
		for _, h := range p.a.Hits {
			if h.Start >= best.a && h.End <= best.b {
				rules = append(rules, engine.RuleName(h.Rule))
			}
		}
		if best.b <= len(ft.R) {
			fmt.Fprintf(w, "          %s %v %q\n", kind, rules, truncate(string(ft.R[best.a:best.b]), 160))
		}
	}
	fmt.Fprintln(w, "highest-scoring benign rows:")
	k := 0
	for _, i := range idx {
		if !ps[i].row.Attack && k < n {
			show(i)
			k++
		}
	}
	fmt.Fprintln(w, "lowest-scoring attack rows:")
	k = 0
	for j := len(idx) - 1; j >= 0; j-- {
		if i := idx[j]; ps[i].row.Attack && k < n {
			show(i)
			k++
		}
	}
}

func setDomain(ex []example, from, to, d int) {
	for i := from; i < to; i++ {
		ex[i].domain = d
	}
}

// domainOf returns the nuisance domain of a row: BIPIA's e-mail, table and code contexts appear
// both clean (benign) and with a planted instruction (attack).
func domainOf(r *dataset.Row) int {
	f := r.Family()
	switch {
	case strings.HasPrefix(f, "BIPIA/email"):
		return 0
	case strings.HasPrefix(f, "BIPIA/table"):
		return 1
	case strings.HasPrefix(f, "BIPIA/code"):
		return 2
	}
	return -1
}

// recallAt returns the out-of-fold recall at the threshold giving false-positive rate fpr.
func recallAt(ps []prepared, oof []float64, fpr float64) float64 {
	var benign []float64
	for i, p := range ps {
		if !p.row.Attack {
			benign = append(benign, oof[i])
		}
	}
	t := thresholdFor(benign, fpr)
	var m dataset.Metrics
	for i, p := range ps {
		m.Add(p.row.Attack, oof[i] >= t)
	}
	return m.Recall()
}

// generated returns the generated ordinary prompts (package benign), analysed: those of training
// templates and those of held-aside templates.
func generated(o options) (train, held []prepared) {
	if o.gen <= 0 {
		return nil, nil
	}
	for _, g := range benign.Generate(o.gen, o.genSeed) {
		r := &dataset.Row{Text: g.Text, Label: "benign", Source: "warden/synthetic-benign:" + g.Lang, File: "warden/synthetic-benign:" + g.Lang, Fold: -1}
		p := prepared{row: r, a: engine.Analyze(o.cfg, []byte(g.Text), false), gen: true}
		if g.Held {
			held = append(held, p)
		} else {
			train = append(train, p)
		}
	}
	return train, held
}

// generatedAttacks returns the generated attacks (package attacks), analysed: those built from
// training phrasings and those built from held-aside ones.
func generatedAttacks(o options) (train, held []prepared) {
	if o.genAttacks <= 0 {
		return nil, nil
	}
	for _, g := range attacks.Generate(o.genAttacks, o.genAttackSeed) {
		r := &dataset.Row{Text: g.Text, Label: "attack", Attack: true, Source: "warden/synthetic-attack:" + g.Family, File: "warden/synthetic-attack:" + g.Family, Fold: -1}
		p := prepared{row: r, a: engine.Analyze(o.cfg, []byte(g.Text), false), gen: true}
		if g.Held {
			held = append(held, p)
		} else {
			train = append(train, p)
		}
	}
	return train, held
}

// heldFPR scores the held-aside generated prompts with the quantised model, as Detect would,
// prints their false-positive rate per language and the highest-scoring ones, and returns the
// overall rate.
func heldFPR(w io.Writer, m *engine.Model, held []prepared) float64 {
	return heldRate(w, m, held, false)
}

// heldRecall scores the held-aside generated attacks with the quantised model, as Detect would,
// prints their recall per family and the lowest-scoring ones, and returns the overall recall.
func heldRecall(w io.Writer, m *engine.Model, held []prepared) float64 {
	return heldRate(w, m, held, true)
}

// heldRate scores held-aside generated texts with the quantised model, as Detect would, and
// prints and returns the share flagged: attacks' recall (with the lowest-scoring texts) or
// ordinary prompts' false-positive rate (with the highest-scoring ones).
func heldRate(w io.Writer, m *engine.Model, held []prepared, attacks bool) float64 {
	if len(held) == 0 {
		return 0
	}
	var s engine.Scratch
	var out engine.Outcome
	bd := dataset.Breakdown{}
	type scored struct {
		p float64
		t string
	}
	var all []scored
	flagged := 0
	for _, p := range held {
		m.Scan([]byte(p.row.Text), false, &s, &out)
		pr := sigmoid(out.Logit)
		if attacks {
			bd.Add(p.row.File, true, pr >= m.Threshold)
		} else {
			bd.Add(p.row.Family(), false, pr >= m.Threshold)
		}
		if pr >= m.Threshold {
			flagged++
		}
		all = append(all, scored{pr, p.row.Text})
	}
	rate := float64(flagged) / float64(len(held))
	if attacks {
		sort.SliceStable(all, func(i, j int) bool { return all[i].p < all[j].p })
		fmt.Fprintf(w, "\nheld-aside generated attacks (phrasings never trained on), quantised model: recall %.4f (%d of %d)\n", rate, flagged, len(held))
	} else {
		sort.SliceStable(all, func(i, j int) bool { return all[i].p > all[j].p })
		fmt.Fprintf(w, "\nheld-aside generated prompts (templates never trained on), quantised model: FPR %.4f (%d of %d)\n", rate, flagged, len(held))
	}
	bd.Write(w, "  ")
	if attacks {
		fmt.Fprintln(w, "  lowest-scoring:")
	} else {
		fmt.Fprintln(w, "  highest-scoring:")
	}
	for _, a := range all[:min(8, len(all))] {
		if attacks {
			fmt.Fprintf(w, "    %.3f %q\n", a.p, truncate(a.t, 160))
		} else {
			fmt.Fprintf(w, "    %.3f %q\n", a.p, a.t)
		}
	}
	return rate
}

// probe scores the lines of the files in o.probe with the mean of the fold models.
func probe(w io.Writer, o options, l layout, best cvResult) error {
	x := average(best.models)
	b := &builder{cfg: o.cfg, rules: o.rules, windowBias: o.windowBias}
	for _, f := range strings.Split(o.probe, ",") {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "probe %s:\n", f)
		n, flagged := 0, 0
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			line = strings.ReplaceAll(line, `\n`, "\n")
			p := prepared{row: &dataset.Row{Text: line}, a: engine.Analyze(o.cfg, []byte(line), false)}
			z := score(l, o.cfg, x, p, b)
			mark := " "
			if z >= best.threshold {
				mark = "*"
				flagged++
			}
			n++
			fmt.Fprintf(w, "  %s %.3f %q\n", mark, sigmoid(z), line)
		}
		fmt.Fprintf(w, "  flagged %d of %d\n", flagged, n)
	}
	return nil
}
