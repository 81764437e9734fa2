package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/warden-ai/warden/internal/config"
)

func TestApplyRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name      string
		r         config.Runtime
		env       map[string]string
		preGC     int
		preLimit  int64
		wantGC    int
		wantLimit int64
	}{
		{"config applies", config.Runtime{GCPercent: 400, MemoryLimitBytes: 1 << 30}, nil, 100, math.MaxInt64, 400, 1 << 30},
		{"no limit configured keeps none", config.Runtime{GCPercent: 250}, nil, 100, math.MaxInt64, 250, math.MaxInt64},
		{"GOGC in the environment wins", config.Runtime{GCPercent: 400}, map[string]string{"GOGC": "150"}, 150, math.MaxInt64, 150, math.MaxInt64},
		{"GOMEMLIMIT in the environment wins", config.Runtime{GCPercent: 400, MemoryLimitBytes: 1 << 30}, map[string]string{"GOMEMLIMIT": "512MiB"}, 100, 512 << 20, 400, 512 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.preGC) // what the runtime took from the environment
			debug.SetMemoryLimit(tc.preLimit)
			gc, limit := applyRuntime(tc.r, env(tc.env))
			if gc != tc.wantGC || limit != tc.wantLimit {
				t.Fatalf("gc %d, limit %d; want %d, %d", gc, limit, tc.wantGC, tc.wantLimit)
			}
			if now := debug.SetGCPercent(-1); now != tc.wantGC {
				t.Errorf("runtime gc percent %d, want %d", now, tc.wantGC)
			}
			debug.SetGCPercent(tc.wantGC)
		})
	}
}
