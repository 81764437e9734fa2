package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
)

// newTestConfig writes a config with a plaintext listener on a free port and
// the example policy, and returns it loaded.
func newTestConfig(t *testing.T, upstream string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"authz.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "policy", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgText := `listeners:
  - name: test
    address: 127.0.0.1:0
    tls: {mode: "off"}
admin:
  address: 127.0.0.1:0
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream: {url: "` + upstream + `"}
keys: {path: keys.json}
policy: {dir: policy}
audit: {path: audit.log}
`
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &v)
	return res.StatusCode, v
}

func TestAdminEndpointsAndReadinessFailClosed(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	srv, err := New(context.Background(), cfg, Options{KeysPollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := "http://" + srv.AdminAddr()

	if code, body := getJSON(t, admin+"/healthz"); code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, body)
	}
	if code, body := getJSON(t, admin+"/readyz"); code != 200 || !strings.HasPrefix(body["policy_version"].(string), "sha256:") {
		t.Fatalf("readyz %d %v", code, body)
	}
	res, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("metrics %d", res.StatusCode)
	}

	// A corrupt key store makes warden unready and refuse requests with 503.
	if err := os.WriteFile(cfg.Keys.Path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, body := getJSON(t, admin+"/readyz")
		if code == 503 {
			if _, ok := body["failing"].(map[string]any)["keys"]; !ok {
				t.Fatalf("readyz body %v", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz stayed 200 with a corrupt key store")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+srv.ListenerAddrs()[0]+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer wk_"+strings.Repeat("a", 20)+"_"+strings.Repeat("A", 43))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Fatalf("request with a corrupt key store: %d, want 503", res.StatusCode)
	}
}

func TestStartRefusedOnBrokenState(t *testing.T) {
	for name, breakIt := range map[string]func(cfg *config.Config) error{
		"torn audit log": func(cfg *config.Config) error {
			return os.WriteFile(cfg.Audit.Path, []byte(`{"seq":1,"partial`), 0o600)
		},
		"corrupt key store": func(cfg *config.Config) error {
			return os.WriteFile(cfg.Keys.Path, []byte(`[]]`), 0o600)
		},
		"policy that does not compile": func(cfg *config.Config) error {
			return os.WriteFile(filepath.Join(cfg.Policy.Dir, "bad.rego"), []byte("package warden.authz\nallow if {"), 0o600)
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := newTestConfig(t, "http://127.0.0.1:1")
			if err := breakIt(cfg); err != nil {
				t.Fatal(err)
			}
			srv, err := New(context.Background(), cfg, Options{})
			if err == nil {
				srv.Close()
				t.Fatal("warden started on broken state")
			}
		})
	}
}
