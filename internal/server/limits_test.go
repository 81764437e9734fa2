package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/policy"
)

// TestLimitsRedisDownAtStart: with failure_mode closed (the default) an
// unreachable Redis stops the start; with open, warden starts and the
// rate_class obligation has its enforcer.
func TestLimitsRedisDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, mode := range []string{config.LimitsFailClosed, config.LimitsFailOpen} {
		t.Run(mode, func(t *testing.T) {
			cfg := newTestConfig(t, "http://127.0.0.1:1")
			cfg.Limits = config.Limits{
				Backend: config.LimitsBackendRedis, FailureMode: mode, MaxKeys: 100,
				Redis:    &config.LimitsRedis{Addresses: []string{dead}, KeyPrefix: "t:", Timeout: config.Duration(100 * time.Millisecond)},
				Defaults: config.LimitDefaults{Service: "std"},
				Classes:  []config.LimitClass{{Name: "std", Requests: &config.LimitRequests{Limit: 5, Per: config.Duration(time.Minute), Burst: 5}}},
			}
			s, err := New(context.Background(), cfg, Options{})
			if mode == config.LimitsFailClosed {
				if err == nil || !strings.Contains(err.Error(), "redis is unreachable") {
					if s != nil {
						s.Close()
					}
					t.Fatalf("closed: New = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			if !containsKind(s.policy.stage.Enforced(), policy.ObligationRateClass) {
				t.Fatalf("rate_class has no enforcer: %v", s.policy.stage.Enforced())
			}
		})
	}
}

func containsKind(kinds []string, k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}
