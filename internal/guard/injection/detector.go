package injection

import (
	_ "embed" // the weights
	"fmt"
	"math"
	"sync"

	"github.com/warden-ai/warden/internal/guard/injection/internal/engine"
)

// model.bin is produced by ./train; its format is documented in internal/engine/model.go.
//
//go:embed model.bin
var modelFile []byte

// Hit is one piece of evidence: a rule that matched, or "model" for the span the statistical
// model scored highest when that span alone crosses the threshold. Start and End are byte offsets
// into the input (End exclusive).
type Hit struct {
	Rule       string
	Start, End int
}

// Result is the outcome of a scan. Score is a probability-like value in [0, 1]; Attack is
// Score ≥ the detector's threshold.
type Result struct {
	Score  float64
	Attack bool
	Hits   []Hit
}

// ModelRule is the Hit.Rule of the statistical model's evidence.
const ModelRule = "model"

// Detector scores texts. It is safe for concurrent use.
type Detector struct {
	m         *engine.Model
	threshold float64
	doc       float64
	pool      *sync.Pool
}

var defaultDetector = sync.OnceValue(func() *Detector {
	d, err := load(modelFile)
	if err != nil {
		panic(fmt.Sprintf("injection: embedded weights unusable: %v", err))
	}
	return d
})

// Default returns the detector with the embedded weights and their default thresholds. It panics
// if the embedded weights are corrupt or were trained with a different text folding: that is a
// broken build, not a property of any input.
func Default() *Detector { return defaultDetector() }

func load(b []byte) (*Detector, error) {
	m, err := engine.Decode(b)
	if err != nil {
		return nil, err
	}
	return &Detector{m: m, threshold: m.Threshold, doc: m.DocThreshold,
		pool: &sync.Pool{New: func() any { return new(engine.Scratch) }}}, nil
}

// WithThreshold returns a copy of d that flags scores ≥ t, for prompts and documents alike.
// t is clamped to [0, 1]; NaN keeps d's thresholds.
func (d *Detector) WithThreshold(t float64) *Detector {
	c := *d
	if !math.IsNaN(t) {
		t = math.Min(1, math.Max(0, t))
		c.threshold, c.doc = t, t
	}
	return &c
}

// Threshold returns the prompt threshold.
func (d *Detector) Threshold() float64 { return d.threshold }

// Detect scores a prompt or any text of unknown kind. Long texts are scored as a whole and by
// windows; the highest score counts.
func (d *Detector) Detect(text []byte) Result { return d.detect(text, false, d.threshold) }

// DetectDocument scores third-party content an LLM will read: a tool or MCP result, a retrieved
// document, an e-mail. It scores windows of the text (short texts as a whole), so one planted
// instruction in a long benign document decides the score, and it also applies the rules that
// only make sense in data ("in your response, …").
func (d *Detector) DetectDocument(text []byte) Result { return d.detect(text, true, d.doc) }

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

func (d *Detector) detect(text []byte, doc bool, threshold float64) Result {
	s := d.pool.Get().(*engine.Scratch)
	var out engine.Outcome
	d.m.Scan(text, doc, s, &out)
	r := Result{Score: sigmoid(out.Logit)}
	r.Attack = r.Score >= threshold
	modelHit := sigmoid(out.ModelLogit) >= threshold
	if n := len(out.Hits) + b2i(modelHit); n > 0 {
		r.Hits = make([]Hit, 0, n)
		for _, h := range out.Hits {
			r.Hits = append(r.Hits, Hit{Rule: engine.RuleName(h.Rule), Start: h.Start, End: h.End})
		}
		if modelHit {
			r.Hits = append(r.Hits, Hit{Rule: ModelRule, Start: out.Start, End: out.End})
		}
	}
	d.pool.Put(s)
	return r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
