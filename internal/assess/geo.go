package assess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// Geo locates addresses in a City/Country database and an ASN database;
// either may be absent.
type Geo struct {
	city *GeoDB
	asn  *GeoDB
}

// OpenGeo opens the databases of cfg; both files must be valid
// MaxMind-format databases.
func OpenGeo(cfg config.Geo, logger *slog.Logger) (*Geo, error) {
	if cfg.CityDB == "" && cfg.ASNDB == "" {
		return nil, errors.New("assess: geo: neither city_db nor asn_db is set")
	}
	g := &Geo{}
	var err error
	if cfg.CityDB != "" {
		if g.city, err = OpenGeoDB(cfg.CityDB, logger); err != nil {
			return nil, fmt.Errorf("assess: geo: city_db: %w", err)
		}
	}
	if cfg.ASNDB != "" {
		if g.asn, err = OpenGeoDB(cfg.ASNDB, logger); err != nil {
			if g.city != nil {
				_ = g.city.Close()
			}
			return nil, fmt.Errorf("assess: geo: asn_db: %w", err)
		}
	}
	return g, nil
}

func (g *Geo) dbs() []*GeoDB {
	var out []*GeoDB
	for _, d := range []*GeoDB{g.city, g.asn} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// Reload reloads every database whose file changed.
func (g *Geo) Reload() error {
	var errs []error
	for _, d := range g.dbs() {
		errs = append(errs, d.Reload())
	}
	return errors.Join(errs...)
}

// Healthy returns nil when every database file in place is in service.
func (g *Geo) Healthy() error {
	var errs []error
	for _, d := range g.dbs() {
		errs = append(errs, d.Healthy())
	}
	return errors.Join(errs...)
}

// Close closes the databases once their last lookup has finished.
func (g *Geo) Close() error {
	var errs []error
	for _, d := range g.dbs() {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// cityRecord is what warden reads from a GeoLite2/GeoIP2 City or Country
// record (a Country database has no city).
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
}

// asnRecord is a GeoLite2/GeoIP2 ASN record.
type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// Locate returns where ip is; nil for an invalid or non-public address and
// for one that no database holds. An error means a database is broken.
func (g *Geo) Locate(ip netip.Addr) (*gateway.Geo, error) {
	if g == nil || !ip.IsValid() {
		return nil, nil
	}
	ip = ip.Unmap()
	if !isPublic(ip) {
		return nil, nil
	}
	var out gateway.Geo
	found := false
	if g.city != nil {
		var rec cityRecord
		ok, err := g.city.lookup(ip, &rec)
		if err != nil {
			return nil, fmt.Errorf("assess: geo: city_db: %w", err)
		}
		if ok {
			found = true
			out.Country, out.City = rec.Country.ISOCode, rec.City.Names.EN
		}
	}
	if g.asn != nil {
		var rec asnRecord
		ok, err := g.asn.lookup(ip, &rec)
		if err != nil {
			return nil, fmt.Errorf("assess: geo: asn_db: %w", err)
		}
		if ok {
			found = true
			out.ASN, out.Org = rec.Number, rec.Org
		}
	}
	if !found {
		return nil, nil
	}
	return &out, nil
}

// nonPublic are IPv4 ranges that netip does not classify but that are
// never a client's location: "this network", shared address space (RFC
// 6598, carrier-grade NAT), IETF protocol assignments, benchmarking and the
// reserved class E.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// isPublic reports whether ip (unmapped) may have a location: a global
// unicast address that is not private (RFC 1918, RFC 4193) or in nonPublic.
func isPublic(ip netip.Addr) bool {
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// GeoDB is one MaxMind-format database file, reloaded when it changes.
//
// The file is read into memory rather than memory-mapped: a file rewritten
// in place under a mapping can fault (SIGBUS) the process or show a lookup
// half-old, half-new data. A database is closed when it has been replaced
// (or the GeoDB closed) and its last lookup has finished.
type GeoDB struct {
	path   string
	logger *slog.Logger

	cur atomic.Pointer[mmdb] // nil once closed

	mu      sync.Mutex  // serialises Reload and Close; guards the fields below
	loaded  os.FileInfo // the file in service
	refused os.FileInfo // the last file that did not load, so it is not retried
	lastErr error
	closed  bool
}

// mmdb is a loaded database with a reference count: one for being current,
// one per lookup in progress. At zero nobody can reach it and it is closed.
type mmdb struct {
	r    *maxminddb.Reader
	refs atomic.Int64
}

func (m *mmdb) acquire() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false // being closed: the caller takes the new current
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (m *mmdb) release() {
	if m.refs.Add(-1) == 0 {
		_ = m.r.Close() // in memory: releases nothing that can fail
	}
}

// OpenGeoDB loads and verifies the database at path.
func OpenGeoDB(path string, logger *slog.Logger) (*GeoDB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, fi, err := loadMMDB(path)
	if err != nil {
		return nil, err
	}
	d := &GeoDB{path: path, logger: logger, loaded: fi}
	d.cur.Store(m)
	return d, nil
}

// loadMMDB reads and verifies a database file. It returns the file info of
// what it read.
func loadMMDB(path string) (*mmdb, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	case fi.Size() == 0:
		return nil, nil, fmt.Errorf("%s is empty", path)
	case fi.Size() > config.MaxGeoDBBytes:
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, config.MaxGeoDBBytes)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, &changingError{fmt.Errorf("%s: read: %w (being written?)", path, err)}
	}
	if after, err := f.Stat(); err != nil || !sameFile(fi, after) {
		return nil, nil, &changingError{fmt.Errorf("%s changed while it was read", path)}
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a MaxMind DB: %w", path, err)
	}
	if err := r.Verify(); err != nil {
		return nil, nil, fmt.Errorf("%s: corrupt MaxMind DB: %w", path, err)
	}
	if v := r.Metadata.IPVersion; v != 4 && v != 6 {
		return nil, nil, fmt.Errorf("%s: unsupported ip_version %d", path, v)
	}
	m := &mmdb{r: r}
	m.refs.Store(1)
	return m, fi, nil
}

// changingError marks a file that was being written while it was read:
// it is retried on the next poll even if it then looks unchanged.
type changingError struct{ err error }

func (e *changingError) Error() string { return e.err.Error() }
func (e *changingError) Unwrap() error { return e.err }

// sameFile reports whether a and b describe the same file with the same
// modification time and size.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// lookup decodes the record of ip into v; false if there is none.
func (d *GeoDB) lookup(ip netip.Addr, v any) (bool, error) {
	for {
		m := d.cur.Load()
		if m == nil {
			return false, errors.New("database closed")
		}
		if !m.acquire() {
			continue // replaced under us: take the new one
		}
		res := m.r.Lookup(ip)
		found := res.Found()
		err := res.Err()
		if err == nil && found {
			err = res.Decode(v)
		}
		m.release()
		if err != nil {
			return false, fmt.Errorf("lookup: %w", err)
		}
		return found, nil
	}
}

// Reload loads the file if its modification time, size or inode changed
// since the database in service was loaded. A file that does not load
// leaves the previous database in service; the error is logged once,
// returned and reported by Healthy until a good file is in place.
func (d *GeoDB) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("assess: geo: database closed")
	}
	fi, err := os.Stat(d.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%s does not exist", d.path)
		}
		return d.refuse(nil, err)
	}
	switch {
	case sameFile(fi, d.loaded):
		d.lastErr, d.refused = nil, nil
		return nil
	case sameFile(fi, d.refused):
		return d.lastErr
	}
	m, read, err := loadMMDB(d.path)
	if err != nil {
		if _, ok := errors.AsType[*changingError](err); ok {
			fi = nil // retry on the next poll even if it then looks unchanged
		}
		return d.refuse(fi, err)
	}
	old := d.cur.Swap(m)
	d.loaded, d.refused, d.lastErr = read, nil, nil
	if old != nil {
		old.release()
	}
	d.logger.Info("assess: geo database reloaded", "file", d.path, "type", m.r.Metadata.DatabaseType,
		"built", m.r.Metadata.BuildTime().UTC().Format(time.RFC3339))
	return nil
}

func (d *GeoDB) refuse(fi os.FileInfo, err error) error {
	err = fmt.Errorf("assess: geo: %w", err)
	if d.lastErr == nil || d.lastErr.Error() != err.Error() {
		d.logger.Error("assess: geo database not reloaded; the previous one stays in service", "file", d.path, "err", err)
	}
	d.refused, d.lastErr = fi, err
	return err
}

// Healthy returns nil when the file in place is the database in service,
// else why it was refused.
func (d *GeoDB) Healthy() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("assess: geo: database closed")
	}
	return d.lastErr
}

// Watch reloads the database every interval (2s if interval <= 0) until
// ctx ends.
func (d *GeoDB) Watch(ctx context.Context, interval time.Duration) {
	watch(ctx, interval, func() { _ = d.Reload() })
}

// Close takes the database out of service; it is closed when the last
// lookup using it has finished. Later lookups fail.
func (d *GeoDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if old := d.cur.Swap(nil); old != nil {
		old.release()
	}
	return nil
}
