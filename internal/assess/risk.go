package assess

import "math"

// RiskSource gives a principal's current risk score, 0 (no concern) to 1
// (certain threat). The behaviour engine implements it; it is consulted on
// every request, so it must be fast and safe for concurrent use.
type RiskSource interface {
	Risk(principalID string) float64
}

// clampRisk bounds a score to [0, 1]. A score that is not a number (NaN, or
// an infinity, which no real measurement yields) counts as 1: unknown is
// risky, and policy must never see a value it cannot compare.
func clampRisk(r float64) float64 {
	switch {
	case math.IsNaN(r), math.IsInf(r, 0):
		return 1
	case r <= 0:
		return 0 // also turns -0 into 0
	case r > 1:
		return 1
	}
	return r
}
