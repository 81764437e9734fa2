package limit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// memShards is the number of independently locked parts of Memory.
const memShards = 64

// DefaultMaxKeys bounds Memory when MemoryOptions.MaxKeys is 0.
const DefaultMaxKeys = 1 << 20

// sweepEvery is how often a shard drops its expired keys.
const sweepEvery = 10 * time.Second

// Memory is the in-process Backend: sharded maps, one lock per shard, all
// keys of a tag in one shard (so Take is atomic under one lock). Memory is
// bounded: expired keys are swept, and past MaxKeys live keys Take fails
// with ErrFull.
type Memory struct {
	seed      maphash.Seed
	maxPerShd int
	shards    [memShards]memShard
}

type memShard struct {
	mu        sync.Mutex
	m         map[string]memEntry
	nextSweep int64 // unix ns
	_         [40]byte
}

// memEntry is a GCRA theoretical arrival time (unix ns) or a window count.
type memEntry struct {
	v   int64
	exp int64 // unix ns after which the entry is as good as absent
}

// MemoryOptions tune Memory; the zero value is usable.
type MemoryOptions struct {
	// MaxKeys bounds the live keys; default DefaultMaxKeys.
	MaxKeys int
}

// NewMemory returns an empty in-process backend.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	m := &Memory{seed: maphash.MakeSeed(), maxPerShd: max(1, o.MaxKeys/memShards)}
	for i := range m.shards {
		m.shards[i].m = map[string]memEntry{}
	}
	return m
}

func (m *Memory) shard(tag string) *memShard {
	return &m.shards[maphash.String(m.seed, tag)%memShards]
}

// satMul multiplies non-negative a and b, saturating well below overflow.
func satMul(a, b int64) int64 {
	const limit = math.MaxInt64 / 4
	if a == 0 || b == 0 {
		return 0
	}
	if a > limit/b {
		return limit
	}
	return a * b
}

// Take implements Backend.
func (m *Memory) Take(_ context.Context, tag string, now time.Time, checks []Check) (Result, error) {
	if !validChecks(checks) {
		return Result{}, errBadCheck
	}
	t := now.UnixNano()
	s := m.shard(tag)
	var next [maxChecks]memEntry
	res := Result{Allowed: true, Failed: -1}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maybeSweep(t)
	newKeys := 0
	for i := range checks {
		c := &checks[i]
		e, ok := s.m[c.Key]
		if ok && e.exp <= t {
			ok = false
		}
		if !ok {
			newKeys++
		}
		var retry int64
		switch c.Kind {
		case KindRate:
			tat := t
			if ok && e.v > t {
				tat = e.v
			}
			iv := int64(c.Interval)
			nt := tat + satMul(iv, c.Cost)
			if allowAt := nt - satMul(iv, c.Burst); t < allowAt {
				retry = allowAt - t
			}
			next[i] = memEntry{v: nt, exp: nt}
		case KindWindow:
			var n int64
			if ok {
				n = e.v
			}
			if n >= c.Limit || n+c.Cost > c.Limit {
				retry = max(1, c.End.UnixNano()-t)
			}
			next[i] = memEntry{v: n + c.Cost, exp: c.End.UnixNano()}
		}
		if retry > 0 {
			if res.Allowed {
				res.Allowed, res.Failed = false, i
			}
			res.RetryAfter = max(res.RetryAfter, time.Duration(retry))
		}
	}
	if !res.Allowed {
		return res, nil
	}
	if len(s.m)+newKeys > m.maxPerShd {
		s.sweep(t)
		if len(s.m)+newKeys > m.maxPerShd {
			return Result{}, ErrFull
		}
	}
	for i := range checks {
		if checks[i].Cost == 0 || next[i].exp <= t {
			continue // nothing charged, or nothing to remember
		}
		s.m[checks[i].Key] = next[i]
	}
	return res, nil
}

// Add implements Backend.
func (m *Memory) Add(_ context.Context, tag string, now time.Time, adds []Adjustment) error {
	if len(adds) > maxChecks {
		return errBadCheck
	}
	t := now.UnixNano()
	s := m.shard(tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range adds {
		end := a.End.UnixNano()
		if a.Key == "" || end <= t || a.Delta == 0 {
			continue
		}
		e, ok := s.m[a.Key]
		if !ok || e.exp <= t {
			e = memEntry{}
		}
		e.v += a.Delta
		e.exp = end
		if e.v <= 0 {
			delete(s.m, a.Key)
			continue
		}
		if !ok && len(s.m) >= m.maxPerShd {
			s.sweep(t)
			if len(s.m) >= m.maxPerShd {
				return ErrFull
			}
		}
		s.m[a.Key] = e
	}
	return nil
}

func (s *memShard) maybeSweep(t int64) {
	if t >= s.nextSweep {
		s.sweep(t)
	}
}

// sweep drops the shard's expired entries.
func (s *memShard) sweep(t int64) {
	for k, e := range s.m {
		if e.exp <= t {
			delete(s.m, k)
		}
	}
	s.nextSweep = t + int64(sweepEvery)
}

// Len returns the number of keys held, expired ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Ping implements Backend; memory always answers.
func (m *Memory) Ping(context.Context) error { return nil }

// Close implements Backend.
func (m *Memory) Close() error { return nil }

var _ Backend = (*Memory)(nil)
