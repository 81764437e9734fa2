package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: profiling endpoints never listen beyond loopback.
func TestPprofLoopbackOnly(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0", "nonsense"} {
		if stop, err := servePprof(addr, logger); err == nil {
			stop()
			t.Errorf("servePprof(%q) accepted a non-loopback address", addr)
		}
	}
	stop, err := servePprof("127.0.0.1:0", logger)
	if err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
	stop()
}

func TestServeUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"serve", "--log-level", "loud"}, &out, &errb); code != exitUsage {
		t.Fatalf("bad log level: exit %d", code)
	}
	if code := run([]string{"serve", "--config", "/nonexistent/warden.yaml"}, &out, &errb); code != exitUsage {
		t.Fatalf("missing config: exit %d: %s", code, errb.String())
	}
	if code := run([]string{"config", "validate"}, &out, &errb); code != exitUsage {
		t.Fatalf("config validate without file: exit %d", code)
	}
}
