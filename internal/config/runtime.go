package config

import "fmt"

// Runtime tunes the Go runtime of `warden serve` (docs/config.md).
type Runtime struct {
	// GCPercent is the garbage collector's target, as GOGC: the heap may
	// grow by this percentage of the live heap between two collections.
	// Default 400: warden's live heap is small next to the garbage a
	// request makes, and at Go's default of 100 a collection every few
	// hundred requests lands on the request that triggers it (the p99 of a
	// policy decision was 3–4× its value at 400; bench/RESULTS.md). -1
	// turns the collector off (never do that in production). The GOGC
	// environment variable, when set, wins.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitBytes is a soft limit on the memory the Go runtime uses
	// (GOMEMLIMIT): near it the collector runs as often as it must, so a
	// large gc_percent cannot take the heap past it. 0: no limit. Set it
	// below the container's memory limit. The GOMEMLIMIT environment
	// variable, when set, wins.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
}

// DefaultGCPercent is runtime.gc_percent's default.
const DefaultGCPercent = 400

func (c *Config) applyRuntimeDefaults() {
	if c.Runtime.GCPercent == 0 {
		c.Runtime.GCPercent = DefaultGCPercent
	}
}

func (c *Config) validateRuntime(v *validator) {
	r := &c.Runtime
	if r.GCPercent != -1 && (r.GCPercent < 10 || r.GCPercent > 10000) {
		v.add("runtime.gc_percent", fmt.Sprintf("%d: must be between 10 and 10000, or -1 (collector off)", r.GCPercent))
	}
	if r.MemoryLimitBytes != 0 && r.MemoryLimitBytes < 64<<20 {
		v.add("runtime.memory_limit_bytes", fmt.Sprintf("%d: must be 0 (no limit) or at least 67108864 (64 MiB)", r.MemoryLimitBytes))
	}
}
