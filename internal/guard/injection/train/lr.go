package main

import (
	"math"
	"sync"

	"github.com/warden-ai/warden/internal/guard/injection/internal/engine"
)

// example is one training span: sparse n-gram features, rule indicators and the nuisance script.
type example struct {
	idx    []uint32
	val    []float32
	rules  uint64
	script int  // nuisance slot of the dominant script, or -1
	domain int  // nuisance slot of the data domain, or -1
	win    bool // a window (a span shorter than the whole text): the window bias applies
	seg    bool // a segment (a sentence or line of a long text): the segment bias applies
	y      float64
	w      float64
}

// params of the logistic regression, laid out in one vector for L-BFGS:
// [ n-gram weights (1<<bits; with segment weights, the segments' own 1<<bits follow) | rule weights (NumRules) | script and domain offsets | bias | window bias | segment bias ].
type layout struct{ nw, nr, ns int }

// Nuisance slots: one per script, then one per mixed-label document domain (BIPIA e-mail, table,
// code). They absorb what a script or a domain's style says about the label in this data set, so
// the n-gram weights learn the difference between attack and benign within a script or domain
// rather than the script or style itself; they are not part of the shipped model.
const numDomains = 3

func newLayout(cfg engine.Config) layout {
	return layout{nw: cfg.Tables() << cfg.Bits, nr: engine.NumRules, ns: engine.NumScripts + numDomains}
}
func (l layout) size() int      { return l.nw + l.nr + l.ns + 3 }
func (l layout) rule(r int) int { return l.nw + r }
func (l layout) script(s int) int {
	return l.nw + l.nr + s
}
func (l layout) bias() int { return l.nw + l.nr + l.ns }
func (l layout) win() int  { return l.nw + l.nr + l.ns + 1 }
func (l layout) seg() int  { return l.nw + l.nr + l.ns + 2 }

// hyper are the regularisation strengths.
type hyper struct {
	lambda float64 // L2 on n-gram weights
	mu     float64 // L2 pulling rule weights towards their priors
	// floor is the L2 strength below a rule's prior (0: mu on both sides). A large value makes
	// the prior a floor: a rule's weight may rise with the data, but n-grams that co-occur with
	// it in benign texts cannot talk it below its hand-set severity.
	floor  float64
	nu     float64 // L2 on the per-script nuisance offsets (dropped at inference)
	script bool    // fit per-script nuisance offsets
	// bias0 is the fixed value of the bias when fixBias is set: a text without evidence either
	// way then scores bias0, so attack evidence must come from positive weights rather than from
	// the absence of the benign vocabulary of the training data.
	bias0   float64
	fixBias bool
}

func (l layout) logit(x []float64, e *example, withScript bool) float64 {
	z := x[l.bias()]
	if e.win {
		z += x[l.win()]
	}
	if e.seg {
		z += x[l.seg()]
	}
	for k, i := range e.idx {
		z += x[i] * float64(e.val[k])
	}
	for r := e.rules; r != 0; r &= r - 1 {
		z += x[l.rule(trailing(r))]
	}
	if withScript {
		if e.script >= 0 {
			z += x[l.script(e.script)]
		}
		if e.domain >= 0 {
			z += x[l.script(engine.NumScripts+e.domain)]
		}
	}
	return z
}

func trailing(x uint64) int {
	n := 0
	for x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// logloss returns log(1+exp(-z)) for y=1, log(1+exp(z)) for y=0, computed stably.
func logloss(y, z float64) float64 {
	if y < 0.5 {
		z = -z
	}
	if z > 0 {
		return math.Log1p(math.Exp(-z))
	}
	return -z + math.Log1p(math.Exp(z))
}

const workers = 2

// objective returns the regularised weighted log-loss and its gradient. The work is split into a
// fixed number of contiguous parts whose results are added in order, so it is deterministic.
func objective(l layout, h hyper, ex []example, x, g []float64, parts [][]float64) float64 {
	var wsum float64
	for i := range ex {
		wsum += ex[i].w
	}
	chunk := (len(ex) + workers - 1) / workers
	losses := make([]float64, workers)
	var wg sync.WaitGroup
	for p := 0; p < workers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			gp := parts[p]
			clear(gp)
			lo, hi := p*chunk, min((p+1)*chunk, len(ex))
			var loss float64
			for i := lo; i < hi; i++ {
				e := &ex[i]
				z := l.logit(x, e, h.script)
				loss += e.w * logloss(e.y, z)
				d := e.w * (sigmoid(z) - e.y)
				for k, j := range e.idx {
					gp[j] += d * float64(e.val[k])
				}
				for r := e.rules; r != 0; r &= r - 1 {
					gp[l.rule(trailing(r))] += d
				}
				if h.script && e.script >= 0 {
					gp[l.script(e.script)] += d
				}
				if h.script && e.domain >= 0 {
					gp[l.script(engine.NumScripts+e.domain)] += d
				}
				gp[l.bias()] += d
				if e.win {
					gp[l.win()] += d
				}
				if e.seg {
					gp[l.seg()] += d
				}
			}
			losses[p] = loss
		}(p)
	}
	wg.Wait()
	clear(g)
	var loss float64
	for p := 0; p < workers; p++ {
		loss += losses[p]
		for j, v := range parts[p] {
			if v != 0 {
				g[j] += v
			}
		}
	}
	loss /= wsum
	for j := range g {
		g[j] /= wsum
	}
	for j := 0; j < l.nw; j++ {
		loss += h.lambda / 2 * x[j] * x[j]
		g[j] += h.lambda * x[j]
	}
	if h.fixBias {
		g[l.bias()] = 0
	}
	for r := 0; r < l.nr; r++ {
		d := x[l.rule(r)] - engine.RulePrior(r)
		mu := h.mu
		if d < 0 && h.floor > 0 {
			mu = h.floor
		}
		loss += mu / 2 * d * d
		g[l.rule(r)] += mu * d
	}
	for s := 0; s < l.ns; s++ {
		v := x[l.script(s)]
		loss += h.nu / 2 * v * v
		g[l.script(s)] += h.nu * v
	}
	for _, j := range []int{l.win(), l.seg()} {
		if v := x[j]; v != 0 {
			loss += h.nu / 2 * v * v
			g[j] += h.nu * v
		}
	}
	return loss
}

// train minimises the objective with L-BFGS (memory 10, backtracking line search) from x0, or
// from the rule priors when x0 is nil, for at most iters iterations.
func train(l layout, h hyper, ex []example, iters int, x0 []float64) []float64 {
	n := l.size()
	x := make([]float64, n)
	if x0 != nil {
		copy(x, x0)
	} else {
		for r := 0; r < l.nr; r++ {
			x[l.rule(r)] = engine.RulePrior(r)
		}
	}
	if h.fixBias {
		x[l.bias()] = h.bias0
	}
	parts := make([][]float64, workers)
	for p := range parts {
		parts[p] = make([]float64, n)
	}
	g := make([]float64, n)
	f := objective(l, h, ex, x, g, parts)
	const mem = 10
	var S, Y [][]float64
	var rho []float64
	d := make([]float64, n)
	xn := make([]float64, n)
	gn := make([]float64, n)
	alpha := make([]float64, mem)
	for it := 0; it < iters; it++ {
		// two-loop recursion: d = -H g
		copy(d, g)
		for i := len(S) - 1; i >= 0; i-- {
			alpha[i] = rho[i] * dot(S[i], d)
			axpy(-alpha[i], Y[i], d)
		}
		if k := len(S); k > 0 {
			gamma := dot(S[k-1], Y[k-1]) / dot(Y[k-1], Y[k-1])
			scale(gamma, d)
		}
		for i := 0; i < len(S); i++ {
			b := rho[i] * dot(Y[i], d)
			axpy(alpha[i]-b, S[i], d)
		}
		scale(-1, d)
		gd := dot(g, d)
		if gd >= 0 { // not a descent direction: restart with steepest descent
			S, Y, rho = S[:0], Y[:0], rho[:0]
			copy(d, g)
			scale(-1, d)
			gd = dot(g, d)
		}
		step := 1.0
		if len(S) == 0 {
			step = 1 / math.Max(1, math.Sqrt(dot(g, g)))
		}
		var fn float64
		ok := false
		for ls := 0; ls < 30; ls++ {
			copy(xn, x)
			axpy(step, d, xn)
			fn = objective(l, h, ex, xn, gn, parts)
			if fn <= f+1e-4*step*gd {
				ok = true
				break
			}
			step /= 2
		}
		if !ok {
			break
		}
		s := make([]float64, n)
		y := make([]float64, n)
		for j := range s {
			s[j] = xn[j] - x[j]
			y[j] = gn[j] - g[j]
		}
		sy := dot(s, y)
		copy(x, xn)
		copy(g, gn)
		rel := (f - fn) / math.Max(1e-12, math.Abs(f))
		f = fn
		if sy > 1e-12 {
			if len(S) == mem {
				S, Y, rho = S[1:], Y[1:], rho[1:]
			}
			S, Y, rho = append(S, s), append(Y, y), append(rho, 1/sy)
		}
		if rel < 1e-7 {
			break
		}
	}
	return x
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}
