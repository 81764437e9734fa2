package limit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backends returns every backend the conformance suite runs against:
// Memory always, Redis when WARDEN_TEST_REDIS names a server (host:port).
func backends(t *testing.T) map[string]func(t *testing.T) Backend {
	m := map[string]func(t *testing.T) Backend{
		"memory": func(*testing.T) Backend { return NewMemory(MemoryOptions{}) },
	}
	addr := redisTestAddr(os.Getenv("WARDEN_TEST_REDIS"))
	m["redis"] = func(t *testing.T) Backend {
		if addr == "" {
			t.Skip("WARDEN_TEST_REDIS is not set (e.g. WARDEN_TEST_REDIS=127.0.0.1:6379): the Redis backend is not tested")
		}
		r, err := NewRedis(RedisOptions{Addrs: []string{addr}, KeyPrefix: fmt.Sprintf("warden-test:%d:", time.Now().UnixNano())})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ping(context.Background()); err != nil {
			t.Fatalf("WARDEN_TEST_REDIS=%s: %v", addr, err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	return m
}

// redisTestAddr accepts WARDEN_TEST_REDIS as host:port or as a redis:// URL
// (the form .ci/run exports) and returns host:port; keys are isolated by a
// per-test prefix, so the URL's database number is not needed.
func redisTestAddr(v string) string {
	if strings.HasPrefix(v, "redis://") || strings.HasPrefix(v, "rediss://") {
		if u, err := url.Parse(v); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return v
}

// t0 is a fixed instant in the middle of a minute, so windows are predictable.
var t0 = time.Date(2030, 5, 17, 12, 30, 30, 0, time.UTC)

func rate(key string, per time.Duration, n, burst int64) Check {
	return Check{Key: key, Kind: KindRate, Cost: 1, Interval: per / time.Duration(n), Burst: burst}
}

func window(key string, limit, cost int64, end time.Time) Check {
	return Check{Key: key, Kind: KindWindow, Cost: cost, Limit: limit, End: end}
}

func TestConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("RateBurstThenSteady", func(t *testing.T) {
				b := open(t)
				ctx := context.Background()
				c := []Check{rate(Key("p1", "r"), time.Minute, 60, 3)} // one a second, 3 at once
				for i := range 3 {
					res, err := b.Take(ctx, "p1", t0, c)
					if err != nil || !res.Allowed || res.Failed != -1 {
						t.Fatalf("burst request %d: %+v %v", i, res, err)
					}
				}
				res, err := b.Take(ctx, "p1", t0, c)
				if err != nil || res.Allowed || res.Failed != 0 || res.RetryAfter != time.Second {
					t.Fatalf("over the burst: %+v %v (want refused, retry after 1s)", res, err)
				}
				res, _ = b.Take(ctx, "p1", t0.Add(999*time.Millisecond), c)
				if res.Allowed || res.RetryAfter != time.Millisecond {
					t.Fatalf("just before the next emission: %+v", res)
				}
				if res, _ = b.Take(ctx, "p1", t0.Add(time.Second), c); !res.Allowed {
					t.Fatalf("after one interval: %+v", res)
				}
				if res, _ = b.Take(ctx, "p1", t0.Add(time.Second), c); res.Allowed {
					t.Fatalf("a second one in the same interval: %+v", res)
				}
				// Idle long enough: the whole burst is back.
				for i := range 3 {
					if res, _ = b.Take(ctx, "p1", t0.Add(time.Hour), c); !res.Allowed {
						t.Fatalf("burst after idle, %d: %+v", i, res)
					}
				}
				// Another tag is independent.
				if res, _ = b.Take(ctx, "p2", t0, []Check{rate(Key("p2", "r"), time.Minute, 60, 3)}); !res.Allowed {
					t.Fatalf("another principal: %+v", res)
				}
			})
			t.Run("WindowCounter", func(t *testing.T) {
				b := open(t)
				ctx := context.Background()
				end := t0.Truncate(time.Minute).Add(time.Minute)
				k := Key("p1", "t", "m", itoa(end.Unix()))
				if res, _ := b.Take(ctx, "p1", t0, []Check{window(k, 100, 60, end)}); !res.Allowed {
					t.Fatalf("60 of 100: %+v", res)
				}
				res, _ := b.Take(ctx, "p1", t0, []Check{window(k, 100, 41, end)})
				if res.Allowed || res.RetryAfter != 30*time.Second {
					t.Fatalf("60+41 of 100: %+v (want refused, retry after 30s: the window's end)", res)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 40, end)}); !res.Allowed {
					t.Fatalf("60+40 of 100: %+v", res)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 0, end)}); res.Allowed {
					t.Fatalf("a zero-cost check on a full window must be refused: %+v", res)
				}
				// Refund 30, then 30 fit again.
				if err := b.Add(ctx, "p1", t0, []Adjustment{{Key: k, Delta: -30, End: end}}); err != nil {
					t.Fatal(err)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 30, end)}); !res.Allowed {
					t.Fatalf("after a refund: %+v", res)
				}
				// Usage beyond the reservation is added without a limit.
				if err := b.Add(ctx, "p1", t0, []Adjustment{{Key: k, Delta: 500, End: end}}); err != nil {
					t.Fatal(err)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 0, end)}); res.Allowed {
					t.Fatalf("after overuse was added: %+v", res)
				}
				// A refund never takes the counter below zero.
				if err := b.Add(ctx, "p1", t0, []Adjustment{{Key: k, Delta: -10_000, End: end}}); err != nil {
					t.Fatal(err)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 100, end)}); !res.Allowed {
					t.Fatalf("after a large refund: %+v", res)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{window(k, 100, 1, end)}); res.Allowed {
					t.Fatalf("the refund went below zero: %+v", res)
				}
				// The next window starts empty.
				next := end.Add(time.Minute)
				k2 := Key("p1", "t", "m", itoa(next.Unix()))
				if res, _ = b.Take(ctx, "p1", end, []Check{window(k2, 100, 100, next)}); !res.Allowed {
					t.Fatalf("next window: %+v", res)
				}
				// Adding to a window that has ended does nothing (and no error).
				if err := b.Add(ctx, "p1", next, []Adjustment{{Key: k, Delta: 5, End: end}}); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("AllOrNothing", func(t *testing.T) {
				b := open(t)
				ctx := context.Background()
				end := t0.Add(time.Hour)
				r := rate(Key("p1", "r"), time.Minute, 60, 2)
				tk := Key("p1", "t")
				if res, _ := b.Take(ctx, "p1", t0, []Check{r, window(tk, 10, 10, end)}); !res.Allowed {
					t.Fatalf("first: %+v", res)
				}
				// The window is full: refused at index 1, and the rate limit is not charged.
				res, _ := b.Take(ctx, "p1", t0, []Check{r, window(tk, 10, 1, end)})
				if res.Allowed || res.Failed != 1 || res.RetryAfter != time.Hour {
					t.Fatalf("full window: %+v", res)
				}
				if res, _ = b.Take(ctx, "p1", t0, []Check{r}); !res.Allowed {
					t.Fatalf("the refused Take charged the rate limit: %+v", res)
				}
				// Both fail: Failed is the first, RetryAfter the longest.
				res, _ = b.Take(ctx, "p1", t0, []Check{r, window(tk, 10, 1, end)})
				if res.Allowed || res.Failed != 0 || res.RetryAfter != time.Hour {
					t.Fatalf("both full: %+v", res)
				}
			})
			t.Run("Concurrent", func(t *testing.T) {
				b := open(t)
				ctx := context.Background()
				c := []Check{rate(Key("hot", "r"), time.Hour, 1, 50), window(Key("hot", "t"), 1000, 10, t0.Add(time.Hour))}
				var ok, refused atomic.Int64
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 20 {
							res, err := b.Take(ctx, "hot", t0, c)
							if err != nil {
								t.Error(err)
								return
							}
							if res.Allowed {
								ok.Add(1)
							} else {
								refused.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				if ok.Load() != 50 || refused.Load() != 110 {
					t.Fatalf("160 concurrent takes against a burst of 50: %d allowed, %d refused", ok.Load(), refused.Load())
				}
			})
			t.Run("BadChecks", func(t *testing.T) {
				b := open(t)
				for _, c := range [][]Check{
					nil,
					{{Key: "k", Kind: KindRate, Cost: 1, Interval: 0, Burst: 1}},
					{{Key: "k", Kind: KindRate, Cost: 1, Interval: time.Second, Burst: 0}},
					{{Key: "k", Kind: KindWindow, Cost: 1, Limit: 0, End: t0}},
					{{Key: "", Kind: KindWindow, Cost: 1, Limit: 1, End: t0}},
					{{Key: "k", Kind: 9, Cost: 1}},
					{{Key: "k", Kind: KindWindow, Cost: -1, Limit: 1, End: t0}},
				} {
					if _, err := b.Take(context.Background(), "p", t0, c); err == nil {
						t.Errorf("Take(%+v) = nil error", c)
					}
				}
			})
		})
	}
}

// TestRedisDown: a Redis that does not answer is an error from every
// method, quickly (the fail mode is the stage's business).
func TestRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	r, err := NewRedis(RedisOptions{Addrs: []string{dead}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	start := time.Now()
	if _, err := r.Take(ctx, "p", t0, []Check{rate(Key("p", "r"), time.Minute, 1, 1)}); err == nil {
		t.Fatal("Take against a dead port succeeded")
	}
	if err := r.Add(ctx, "p", t0, []Adjustment{{Key: Key("p", "t"), Delta: 1, End: t0.Add(time.Hour)}}); err == nil {
		t.Fatal("Add against a dead port succeeded")
	}
	if err := r.Ping(ctx); err == nil {
		t.Fatal("Ping against a dead port succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failing took %v", d)
	}
}

// TestMemoryBounded: expired keys are swept, and live keys past MaxKeys
// are an error (ErrFull), never unbounded growth.
func TestMemoryBounded(t *testing.T) {
	m := NewMemory(MemoryOptions{MaxKeys: memShards * 4})
	ctx := context.Background()
	full := 0
	for i := range 10 * memShards * 4 {
		tag := fmt.Sprint("p", i)
		_, err := m.Take(ctx, tag, t0, []Check{rate(Key(tag, "r"), time.Minute, 60, 1)})
		if errors.Is(err, ErrFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full == 0 || m.Len() > memShards*4 {
		t.Fatalf("full %d times, %d keys held (max %d)", full, m.Len(), memShards*4)
	}
	// A minute later every key has expired: new ones fit again (tags
	// spread over the shards unevenly, so a few shards may still be full).
	later := t0.Add(time.Minute)
	ok := 0
	for i := range memShards {
		tag := fmt.Sprint("q", i)
		if _, err := m.Take(ctx, tag, later, []Check{rate(Key(tag, "r"), time.Minute, 60, 1)}); err == nil {
			ok++
		}
	}
	if ok < memShards/2 {
		t.Fatalf("after expiry only %d of %d new keys fit", ok, memShards)
	}
	if m.Len() > memShards*4 {
		t.Fatalf("%d keys held after the sweep", m.Len())
	}
}
