package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/warden-ai/warden/internal/config"
)

func writeCityDB(t *testing.T, path string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City",
		Description: map[string]string{"en": "warden test"}, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := net.ParseCIDR("203.0.113.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestAssessWiring: a bad geo database stops the start with the field
// named; a good one is a readiness check that fails when the file on disk
// goes bad (while the loaded database stays in service) and recovers.
func TestAssessWiring(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	db := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(db, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Context.Geo = &config.Geo{CityDB: db}
	if srv, err := New(context.Background(), cfg, Options{}); err == nil {
		srv.Close()
		t.Fatal("started with a bad geo database")
	} else if !strings.Contains(err.Error(), "context") || !strings.Contains(err.Error(), "city_db") {
		t.Fatalf("error does not name the field: %v", err)
	}

	writeCityDB(t, db)
	cfg = newTestConfig(t, "http://127.0.0.1:1")
	cfg.Context.Geo = &config.Geo{CityDB: db}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if failing := srv.Ready(); failing != nil {
		t.Fatalf("not ready: %v", failing)
	}
	waitReady := func(want bool) map[string]string {
		t.Helper()
		deadline := time.Now().Add(3 * bundleWatchInterval)
		for {
			failing := srv.Ready()
			if (failing == nil) == want {
				return failing
			}
			if time.Now().After(deadline) {
				t.Fatalf("ready = %v, want %v (failing %v)", failing == nil, want, failing)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.WriteFile(db+".tmp", []byte("corrupt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(db+".tmp", db); err != nil {
		t.Fatal(err)
	}
	if failing := waitReady(false); !strings.Contains(failing["context_geo"], "not a MaxMind DB") {
		t.Fatalf("failing %v", failing)
	}
	writeCityDB(t, db)
	waitReady(true)
}
