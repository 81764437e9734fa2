package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	for _, even := range []bool{false, true} {
		due := schedule(2000, 10*time.Second, even, 1)
		if n := len(due); math.Abs(float64(n)-20000) > 500 {
			t.Errorf("even=%v: %d requests due in 10 s at 2,000/s", even, n)
		}
		for i := 1; i < len(due); i++ {
			if due[i] < due[i-1] || due[i] >= 10*time.Second {
				t.Fatalf("even=%v: due times out of order or range at %d", even, i)
			}
		}
	}
	// Poisson gaps: the coefficient of variation of exponential gaps is 1.
	due := schedule(2000, 10*time.Second, false, 1)
	var sum, sq float64
	for i := 1; i < len(due); i++ {
		g := float64(due[i] - due[i-1])
		sum += g
		sq += g * g
	}
	n := float64(len(due) - 1)
	mean := sum / n
	cv := math.Sqrt(sq/n-mean*mean) / mean
	if cv < 0.9 || cv > 1.1 {
		t.Errorf("Poisson gaps: coefficient of variation %.2f, want about 1", cv)
	}
}

func TestSummary(t *testing.T) {
	var rs []result
	for i := 1; i <= 100; i++ {
		rs = append(rs, result{latency: time.Duration(i) * time.Millisecond, status: 200})
	}
	rs = append(rs, result{err: errors.New("reset")}, result{latency: time.Millisecond, status: 503})
	got := summary(rs, 2*time.Second)
	for _, want := range []string{"requests=101 ", "p50_us=50000 ", "p99_us=99000 ", "max_us=100000 ", "non2xx=1 ", "read=1 ", "rps=50.5 "} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if got := summary(nil, time.Second); !strings.Contains(got, "requests=0 ") {
		t.Errorf("empty summary %q", got)
	}
}
