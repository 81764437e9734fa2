package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The admin listener serves the latest signed checkpoint, the key that
// verifies it and the log's state; the checkpoint key is made at the first
// start, private.
func TestAuditAdminEndpoints(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	cfg.Audit.Checkpoint.Interval = config.Duration(50 * time.Millisecond)
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := "http://" + srv.AdminAddr()

	if fi, err := os.Stat(cfg.Audit.Checkpoint.KeyFile); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("key file: %v %v", fi, err)
	}
	code, vkey := get(t, admin+"/audit/key")
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if code != 200 || err != nil || v.Name() != "warden/audit" {
		t.Fatalf("/audit/key %d %q %v", code, vkey, err)
	}
	if code, _ := get(t, admin+"/audit/checkpoint"); code != 404 {
		t.Errorf("/audit/checkpoint before any record: %d, want 404", code)
	}

	// A refused request is a record; a checkpoint follows within the interval.
	res, err := http.Get("http://" + srv.ListenerAddrs()[0] + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cp *audit.Checkpoint
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, body := get(t, admin+"/audit/checkpoint"); code == 200 {
			if cp, err = audit.OpenCheckpoint([]byte(body), v); err != nil {
				t.Fatalf("served checkpoint does not verify: %v\n%s", err, body)
			}
			break
		}
	}
	if cp == nil || cp.Tree.N != 1 || cp.Origin != "warden/audit" {
		t.Fatalf("checkpoint %+v", cp)
	}
	code, status := getJSON(t, admin+"/audit/status")
	if code != 200 || status["records"] != float64(1) || status["checkpointed"] != float64(1) || status["healthy"] != true || status["mode"] != "sync" {
		t.Errorf("/audit/status %d %v", code, status)
	}
	_, metrics := get(t, admin+"/metrics")
	for _, m := range []string{"warden_audit_records 1", "warden_audit_checkpoint_size 1", "warden_audit_healthy 1", "warden_audit_repairs_at_open 0"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// A torn tail is repaired at start, and the repair is visible in the
// status and the metrics.
func TestAuditRepairAtStartIsReported(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + srv.ListenerAddrs()[0] + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// A write cut short by a crash.
	segs, _ := filepath.Glob(filepath.Join(cfg.Audit.Path, "seg-*.log"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 0, 40, 1, 2, 3, 4, '{'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	srv, err = New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatalf("start after a torn write: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := "http://" + srv.AdminAddr()
	_, status := getJSON(t, admin+"/audit/status")
	if reps, _ := status["repairs"].([]any); len(reps) != 1 || !strings.Contains(reps[0].(string), "torn tail") {
		t.Errorf("status repairs %v", status["repairs"])
	}
	if _, metrics := get(t, admin+"/metrics"); !strings.Contains(metrics, "warden_audit_repairs_at_open 1") {
		t.Error("the repair is not in the metrics")
	}
}
