package assess

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// geoFiles writes a city and an ASN database and returns their paths.
func geoFiles(t testing.TB, dir string) (city, asn string) {
	t.Helper()
	city, asn = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeMMDB(t, city, "GeoLite2-City",
		geoRecord{"203.0.113.0/24", cityData("DE", "Berlin")},
		geoRecord{"2001:db8:1::/48", cityData("US", "")}, // a Country-level record
		geoRecord{"81.2.69.0/24", cityData("GB", "London")},
	)
	writeMMDB(t, asn, "GeoLite2-ASN",
		geoRecord{"203.0.113.0/24", asnData(64500, "Example Net")},
		geoRecord{"198.51.100.0/24", asnData(64501, "Only ASN Ltd")},
	)
	return city, asn
}

func TestGeoLocate(t *testing.T) {
	city, asn := geoFiles(t, t.TempDir())
	both, err := OpenGeo(config.Geo{CityDB: city, ASNDB: asn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	cityOnly, err := OpenGeo(config.Geo{CityDB: city}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cityOnly.Close()
	asnOnly, err := OpenGeo(config.Geo{ASNDB: asn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer asnOnly.Close()

	tests := []struct {
		name string
		geo  *Geo
		ip   string // "" = the zero netip.Addr
		want *gateway.Geo
	}{
		{"city and asn", both, "203.0.113.7", &gateway.Geo{Country: "DE", City: "Berlin", ASN: 64500, Org: "Example Net"}},
		{"IPv4-mapped IPv6", both, "::ffff:203.0.113.7", &gateway.Geo{Country: "DE", City: "Berlin", ASN: 64500, Org: "Example Net"}},
		{"asn only record", both, "198.51.100.9", &gateway.Geo{ASN: 64501, Org: "Only ASN Ltd"}},
		{"country-level record, IPv6", both, "2001:db8:1::5", &gateway.Geo{Country: "US"}},
		{"city db only", cityOnly, "203.0.113.7", &gateway.Geo{Country: "DE", City: "Berlin"}},
		{"asn db only", asnOnly, "203.0.113.7", &gateway.Geo{ASN: 64500, Org: "Example Net"}},
		{"another city", both, "81.2.69.160", &gateway.Geo{Country: "GB", City: "London"}},
		{"miss", both, "192.0.2.1", nil},
		{"miss IPv6", both, "2001:db8:2::1", nil},
		{"private 10/8", both, "10.1.2.3", nil},
		{"private 192.168/16", both, "192.168.1.1", nil},
		{"loopback", both, "127.0.0.1", nil},
		{"loopback IPv6", both, "::1", nil},
		{"link-local", both, "169.254.1.1", nil},
		{"link-local IPv6", both, "fe80::1", nil},
		{"unique local IPv6", both, "fd00::1", nil},
		{"shared address space", both, "100.64.0.1", nil},
		{"this network", both, "0.1.2.3", nil},
		{"unspecified", both, "0.0.0.0", nil},
		{"multicast", both, "224.0.0.1", nil},
		{"broadcast", both, "255.255.255.255", nil},
		{"no address", both, "", nil},
		{"no databases", nil, "203.0.113.7", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			got, err := tt.geo.Locate(ip)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Locate(%s) = %+v, want %+v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestOpenGeoErrors(t *testing.T) {
	dir := t.TempDir()
	city, _ := geoFiles(t, dir)
	good, err := os.ReadFile(city)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Flip a byte in the search tree: the metadata still parses, the tree does not verify.
	corrupt := append([]byte(nil), good...)
	for i := range 64 {
		corrupt[i] ^= 0xff
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing.mmdb"), "no such file"},
		{"empty", put("empty.mmdb", nil), "empty"},
		{"not a database", put("text.mmdb", []byte("hello, world")), "not a MaxMind DB"},
		{"truncated", put("trunc.mmdb", good[:len(good)/2]), "not a MaxMind DB"},
		{"corrupt tree", put("corrupt.mmdb", corrupt), "MaxMind DB"},
		{"a directory", dir, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := OpenGeo(config.Geo{CityDB: tt.path}, nil)
			if err == nil {
				g.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "city_db") {
				t.Fatalf("err = %v, want %q and the field", err, tt.want)
			}
		})
	}
	if _, err := OpenGeo(config.Geo{}, nil); err == nil {
		t.Fatal("no databases accepted")
	}
	if _, err := OpenGeo(config.Geo{CityDB: city, ASNDB: filepath.Join(dir, "missing.mmdb")}, nil); err == nil || !strings.Contains(err.Error(), "asn_db") {
		t.Fatalf("err = %v", err)
	}
}

func TestGeoReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	writeMMDB(t, path, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("DE", "Berlin")})
	db, err := OpenGeoDB(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Geo{city: db}
	defer g.Close()
	ip := netip.MustParseAddr("203.0.113.7")
	country := func() string {
		t.Helper()
		got, err := g.Locate(ip)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			return ""
		}
		return got.Country
	}
	if c := country(); c != "DE" {
		t.Fatalf("country %q", c)
	}
	if err := g.Reload(); err != nil || country() != "DE" {
		t.Fatalf("reload of an unchanged file: %v", err)
	}

	// Replaced by rename. The old database is closed: nothing uses it.
	before := db.cur.Load()
	writeMMDB(t, path, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("FR", "Paris")})
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := before.refs.Load(); n != 0 {
		t.Fatalf("the replaced database has %d references, want 0 (closed)", n)
	}
	if c := country(); c != "FR" {
		t.Fatalf("after a replaced file: country %q, want FR", c)
	}

	// Rewritten in place with the same size, and the same modification
	// time as before: the inode is the same, so only size/mtime tell. Bump
	// the mtime as a writer would.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	nl := mmdbBytes(t, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("NL", "Paris")})
	if err := os.WriteFile(path, nl, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Time{}, fi.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if c := country(); c != "NL" {
		t.Fatalf("after an in-place rewrite: country %q, want NL", c)
	}

	// A bad file keeps the database in service and is reported until fixed.
	writeFile(t, path, []byte("not a database"))
	if err := g.Reload(); err == nil {
		t.Fatal("a bad file was loaded")
	}
	if err := g.Healthy(); err == nil || !strings.Contains(err.Error(), "not a MaxMind DB") {
		t.Fatalf("Healthy = %v", err)
	}
	if c := country(); c != "NL" {
		t.Fatalf("the database in service was dropped: country %q", c)
	}
	if err := g.Reload(); err == nil || g.Healthy() == nil {
		t.Fatal("an unchanged bad file stopped being reported")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err == nil || !strings.Contains(g.Healthy().Error(), "does not exist") {
		t.Fatalf("a missing file: Healthy = %v", g.Healthy())
	}
	if c := country(); c != "NL" {
		t.Fatalf("the database in service was dropped: country %q", c)
	}
	writeMMDB(t, path, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("SE", "Stockholm")})
	if err := g.Reload(); err != nil || g.Healthy() != nil {
		t.Fatalf("Reload = %v, Healthy = %v", err, g.Healthy())
	}
	if c := country(); c != "SE" {
		t.Fatalf("country %q, want SE", c)
	}

	// After Close, lookups fail closed and reloads are refused.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Locate(ip); err == nil {
		t.Fatal("lookup after Close succeeded")
	}
	if err := g.Reload(); err == nil || g.Healthy() == nil {
		t.Fatal("reload after Close")
	}
	if err := g.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// TestGeoReloadConcurrent swaps databases under concurrent lookups; with
// -race it shows that a replaced reader is never closed while a lookup uses
// it, and every lookup sees one whole database.
func TestGeoReloadConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	versions := [][]byte{
		mmdbBytes(t, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("DE", "Berlin")}),
		mmdbBytes(t, "GeoLite2-City", geoRecord{"203.0.113.0/24", cityData("FR", "Paris")}, geoRecord{"198.51.100.0/24", cityData("ES", "")}),
	}
	writeFile(t, path, versions[0])
	db, err := OpenGeoDB(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Geo{city: db}
	ip := netip.MustParseAddr("203.0.113.7")

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				got, err := g.Locate(ip)
				switch {
				case err != nil:
					errs <- err
					return
				case got == nil || !(got.Country == "DE" && got.City == "Berlin" || got.Country == "FR" && got.City == "Paris"):
					errs <- errors.New("torn or missing record")
					return
				}
			}
		})
	}
	for i := range 40 {
		writeFile(t, path, versions[i%2])
		if err := db.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Close while lookups run: each either succeeds on the old database or
	// fails closed; none uses a closed reader.
	stop.Store(false)
	var failed atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := g.Locate(ip); err != nil {
					failed.Add(1)
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 4 {
		t.Fatalf("%d of 4 lookers saw the close", failed.Load())
	}
	if m := db.cur.Load(); m != nil {
		t.Fatal("a database is still current after Close")
	}
}
