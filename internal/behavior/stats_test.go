package behavior

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFastLn(t *testing.T) {
	for _, x := range []float32{1e-30, 1e-6, 0.01, 0.5, 1, 1.5, 2, 10, 1234.5, 1e9, 3e38} {
		if got, want := fastLn(x), math.Log(float64(x)); math.Abs(float64(got)-want) > 2e-3*math.Max(1, math.Abs(want)) {
			t.Errorf("fastLn(%g) = %g, want %g", x, got, want)
		}
	}
	for _, x := range []float32{0, -1, float32(math.NaN())} {
		if got := fastLn(x); got != -20 {
			t.Errorf("fastLn(%g) = %g, want -20", x, got)
		}
	}
	if fastLn(float32(math.Inf(1))) != 89 {
		t.Error("fastLn(+Inf)")
	}
}

// TestRobustConverges: on log-normal data the estimate converges to the
// median and the mean absolute deviation of the logs; a burst of outliers
// moves it by a bounded amount.
func TestRobustConverges(t *testing.T) {
	tests := []struct {
		median, sigma float64
	}{{300, 0.5}, {20, 1}, {5000, 0.2}}
	for _, tc := range tests {
		rng := rand.New(rand.NewPCG(7, 9))
		r := robust{L: ln1p(100), D: 1}
		for n := 0; n < 20000; n++ {
			x := tc.median * math.Exp(tc.sigma*rng.NormFloat64())
			r.update(ln1p(int64(x)), alpha(uint16(min(n, 65535)), priorWeight, 2.0/501), 0.01)
		}
		if got := expm1(r.L); math.Abs(math.Log(got/tc.median)) > 0.1 {
			t.Errorf("median %v: centre %v", tc.median, got)
		}
		if want := tc.sigma * math.Sqrt(2/math.Pi); math.Abs(float64(r.D)-want) > 0.25*want+0.02 {
			t.Errorf("sigma %v: deviation %v, want about %v", tc.sigma, r.D, want)
		}
		before := r.L
		for i := 0; i < 10; i++ {
			r.update(ln1p(1e9), 2.0/501, 0.01)
		}
		if shift := r.L - before; shift > 10*2.0/501*winsor*float32(tc.sigma) {
			t.Errorf("ten outliers moved the centre by %v", shift)
		}
	}
}

func TestBernoulliStep(t *testing.T) {
	tests := []struct {
		event bool
		p0    float32
		sign  int
	}{{true, 0.01, 1}, {false, 0.01, -1}, {true, 0.3, 1}, {false, 0.3, -1}, {true, 0.9, 1}}
	for _, tc := range tests {
		got := bernoulliStep(tc.event, tc.p0, altRate(tc.p0))
		if (got > 0) != (tc.sign > 0) || got == 0 {
			t.Errorf("bernoulliStep(%v, %v) = %v", tc.event, tc.p0, got)
		}
	}
	// Under the baseline the expected step is negative (no drift to alarm).
	for _, p := range []float32{0.01, 0.05, 0.2, 0.5} {
		p1 := altRate(p)
		if d := p*bernoulliStep(true, p, p1) + (1-p)*bernoulliStep(false, p, p1); d >= 0 {
			t.Errorf("drift under p0=%v is %v", p, d)
		}
	}
}

func TestDecay(t *testing.T) {
	h := time.Hour
	tests := []struct {
		r       float32
		elapsed time.Duration
		want    float64
	}{{0.8, 0, 0.8}, {0.8, h, 0.4}, {0.8, 2 * h, 0.2}, {0.8, -h, 0.8}, {0, h, 0}}
	for _, tc := range tests {
		if got := decay(tc.r, 0, int64(tc.elapsed), h); math.Abs(float64(got)-tc.want) > 1e-6 {
			t.Errorf("decay(%v, %v) = %v, want %v", tc.r, tc.elapsed, got, tc.want)
		}
	}
}

func TestPrefixKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.77", "192.0.2.0/24"}, {"::ffff:192.0.2.1", "192.0.2.0/24"}, {"2001:db8:1234:5678::1", "2001:db8:1234::/48"},
	}
	for _, tc := range tests {
		k := prefixKey(mustAddr(tc.addr))
		if got := prefixString(k); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.addr, got, tc.want)
		}
	}
}
