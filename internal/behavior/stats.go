package behavior

import "math"

// This file holds the online statistics the baselines are made of. All of
// them are O(1) in time and space per update and use float32: a baseline
// does not need more than 7 significant digits, and it halves the memory.

// robust is a bounded-influence online estimate of the centre (L) and the
// spread (D, the mean absolute deviation) of a quantity, kept on a log
// scale: request sizes and rates are closer to log-normal than normal, and
// on a log scale "ten times more" is the same distance whatever the level.
//
// Each update is an exponentially weighted step towards the new value, but
// the value is first clipped (winsorized) to L ± winsor·D. An outlier — a
// single huge response, or an attacker's traffic — therefore moves the
// baseline by at most a bounded step, as a median would be moved, while
// ordinary values move it like an EWMA. The pair behaves as an online
// approximation of median and MAD (exactly so for symmetric distributions
// once converged), at the cost of two floats.
type robust struct {
	L, D float32
}

const winsor = 4

// z is how many deviations x lies above the centre; the spread is floored
// so that a perfectly regular principal does not turn tiny changes into
// large scores.
func (r robust) z(x, floor float32) float32 {
	return (x - r.L) / max(r.D, floor)
}

// update moves the estimate towards x with weight a (0 < a ≤ 1).
func (r *robust) update(x, a, floor float32) {
	lim := winsor * max(r.D, floor)
	dx := min(max(x-r.L, -lim), lim)
	r.L += a * dx
	ad := dx
	if ad < 0 {
		ad = -ad
	}
	r.D += a * (ad - r.D)
}

// alpha is the weight of the n-th update (n counted from 0) of a statistic
// whose prior counts as n0 observations: 1/(n+n0) while the history is
// short (an average of the prior and everything seen), then aMin (an
// exponential window of about 2/aMin observations).
func alpha(n uint16, n0, aMin float32) float32 {
	return max(1/(float32(n)+n0), aMin)
}

// bernoulliStep is the CUSUM increment of one observation of an event
// whose baseline probability is p0, against the alternative that it has
// become p1 > p0: the log-likelihood ratio log(p1/p0) when the event
// happened, log((1-p1)/(1-p0)) (negative) when it did not. Summed over
// observations, it is Page's CUSUM statistic for a rise in the event rate.
func bernoulliStep(event bool, p0, p1 float32) float32 {
	if event {
		return fastLn(p1 / p0)
	}
	return fastLn((1 - p1) / (1 - p0))
}

// altRate is the alternative rate a rise is tested against: at least
// pAlt, and altFactor times the baseline rate — or, for a common event,
// non-events altFactor times rarer. (A rise to a fixed rate below 1 would
// be below the baseline of a principal whose events are already that
// common, and its CUSUM would drift upwards.)
func altRate(p0 float32) float32 { return altRateBy(p0, altFactor) }

// altRateBy is altRate with another factor for a rare event (a common
// event's non-events are still tested against altFactor times fewer).
func altRateBy(p0, factor float32) float32 {
	return max(pAlt, min(factor*p0, 1-(1-p0)/altFactor))
}

const (
	pAlt      = 0.5
	altFactor = 6
	// promptAltFactor is the rise near-duplicate prompts are tested
	// against. Probing with a short template (15 words, 1–3 changed) makes
	// only about two in three prompts near duplicates of one of the last
	// 4: from a baseline of 15% that is a fourfold rise, which a test
	// against a sixfold one (85%) barely sees — its statistic drifts
	// upwards only above a rate of 48%, and the baseline creeps up while
	// the probing goes on. Against a threefold rise (at least pAlt) the
	// statistic drifts upwards from a rate of about 30%. A common event
	// (a templated service's near duplicates) is still tested against
	// six times fewer non-events: runs of a template come by chance.
	promptAltFactor = 3
)

// fastLn is ln(x) to about 1e-5 for x > 0 (exponent plus a short series
// on the mantissa); it is -20 for x ≤ 0 or NaN. It is several times faster
// than math.Log and precise enough for scores.
func fastLn(x float32) float32 {
	if !(x > 0) {
		return -20
	}
	if x > math.MaxFloat32 {
		return 89
	}
	b := math.Float32bits(x)
	e := int32(b>>23&0xff) - 127
	if e == -127 { // subnormal
		return -20
	}
	m := math.Float32frombits(b&0x7fffff | 0x3f800000) // [1, 2)
	// ln m = 2 artanh t with t = (m-1)/(m+1) in [0, 1/3): four terms of
	// the series leave an error below 2e-5.
	t := (m - 1) / (m + 1)
	t2 := t * t
	lnm := 2 * t * (1 + t2*(1.0/3+t2*(1.0/5+t2*(1.0/7))))
	return float32(e)*math.Ln2 + lnm
}

// ln1p is ln(1+x) for x ≥ 0 (negative x counts as 0).
func ln1p(x int64) float32 {
	if x <= 0 {
		return 0
	}
	return fastLn(1 + float32(x))
}

// expm1 is the inverse of ln1p, for reporting a log-scale centre.
func expm1(l float32) float64 { return math.Expm1(float64(l)) }
