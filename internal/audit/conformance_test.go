package audit_test

import (
	"path/filepath"
	"testing"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/audit/audittest"
)

// The file backend passes the conformance suite every backend must pass,
// with small segments so that reads and appends cross segment boundaries.
func TestFileBackendConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) func(t *testing.T) audit.Backend {
		dir := filepath.Join(t.TempDir(), "log")
		return func(t *testing.T) audit.Backend {
			b, err := audit.OpenFileBackend(dir, audit.FileOptions{SegmentBytes: 4 << 10})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	})
}
