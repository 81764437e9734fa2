package tlsconf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseClientAuth(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		want    tls.ClientAuthType
		wantErr bool
	}{
		{"", tls.NoClientCert, false},
		{"none", tls.NoClientCert, false},
		{"optional", tls.RequestClientCert, false},
		{"require", tls.RequireAnyClientCert, false},
		{"Require", 0, true},
		{"verify", 0, true},
		{"require_and_verify", 0, true},
	} {
		got, err := ParseClientAuth(tt.mode)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseClientAuth(%q) = %v, %v; want %v, err %v", tt.mode, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestServerConfig(t *testing.T) {
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	for _, tt := range []struct {
		mode string
		want tls.ClientAuthType
	}{
		{"", tls.NoClientCert},
		{ClientAuthNone, tls.NoClientCert},
		{ClientAuthOptional, tls.RequestClientCert},
		{ClientAuthRequire, tls.RequireAnyClientCert},
	} {
		c, err := ServerConfig(tt.mode, getCert)
		if err != nil {
			t.Fatalf("%q: %v", tt.mode, err)
		}
		if c.MinVersion != tls.VersionTLS12 || strings.Join(c.NextProtos, ",") != "h2,http/1.1" ||
			c.ClientAuth != tt.want || c.GetCertificate == nil || len(c.Certificates) != 0 || c.ClientCAs != nil {
			t.Errorf("%q: %+v", tt.mode, c)
		}
	}
	if _, err := ServerConfig("bogus", getCert); err == nil {
		t.Error("unknown client_auth accepted")
	}
	if _, err := ServerConfig("none", nil); err == nil {
		t.Error("nil certificate source accepted")
	}
}

// pair is a generated server certificate and key as PEM.
type pair struct {
	serial          *big.Int
	certPEM, keyPEM []byte
}

var (
	caOnce sync.Once
	caCert *x509.Certificate
	caKey  crypto.Signer
)

func testCA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	caOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsconf test CA"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			panic(err)
		}
		caCert, _ = x509.ParseCertificate(der)
		caKey = k
	})
	return caCert, caKey
}

func newPair(t *testing.T, notBefore, notAfter time.Time) pair {
	t.Helper()
	ca, caK := testCA(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "warden"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caK)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pair{
		serial:  serial,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
	}
}

func validPair(t *testing.T) pair {
	return newPair(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// server serves TLS with ServerConfig and the reloader; serial dials it and
// returns the serial number of the certificate the client was shown.
type server struct {
	addr  string
	roots *x509.CertPool
}

func startServer(t *testing.T, r *CertReloader) *server {
	t.Helper()
	cfg, err := ServerConfig(ClientAuthNone, r.GetCertificate)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				var b [1]byte
				_, _ = c.Read(b[:]) // until the client closes
			}()
		}
	}()
	ca, _ := testCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &server{addr: ln.Addr().String(), roots: roots}
}

func (s *server) serial(t *testing.T) string {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	p1 := validPair(t)
	writeAtomic(t, certFile, p1.certPEM)
	writeAtomic(t, keyFile, p1.keyPEM)
	var logs bytes.Buffer
	r, err := NewCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, r)
	if got := srv.serial(t); got != p1.serial.String() {
		t.Fatalf("serial %s, want %s", got, p1.serial)
	}
	if err := r.Reload(); err != nil || r.Healthy() != nil {
		t.Fatalf("reload of unchanged files: %v, %v", err, r.Healthy())
	}

	// Renewed: the client sees the new certificate, no restart.
	p2 := validPair(t)
	writeAtomic(t, certFile, p2.certPEM)
	writeAtomic(t, keyFile, p2.keyPEM)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := srv.serial(t); got != p2.serial.String() {
		t.Fatalf("after renewal: serial %s, want %s", got, p2.serial)
	}

	p3 := validPair(t)
	expired := newPair(t, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	bad := []struct {
		name        string
		cert, key   []byte
		wantErrPart string
	}{
		{"garbage certificate", []byte("garbage"), p2.keyPEM, "failed to find any PEM data"},
		{"garbage key", p2.certPEM, []byte("garbage"), "failed to find any PEM data"},
		{"key of another certificate", p3.certPEM, p2.keyPEM, "does not match"},
		{"empty certificate", nil, p2.keyPEM, "empty"},
		{"expired", expired.certPEM, expired.keyPEM, "expired"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			writeAtomic(t, certFile, tt.cert)
			writeAtomic(t, keyFile, tt.key)
			err := r.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.wantErrPart) {
				t.Fatalf("reload: %v, want an error mentioning %q", err, tt.wantErrPart)
			}
			if r.Healthy() == nil {
				t.Error("healthy after a refused reload")
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("refusal not logged: %q", logs.String())
			}
			if got := srv.serial(t); got != p2.serial.String() {
				t.Errorf("serving serial %s, want the previous %s", got, p2.serial)
			}
		})
	}

	t.Run("missing files", func(t *testing.T) {
		if err := os.Remove(certFile); err != nil {
			t.Fatal(err)
		}
		if err := r.Reload(); err == nil {
			t.Fatal("reload without a certificate file succeeded")
		}
		if got := srv.serial(t); got != p2.serial.String() {
			t.Errorf("serving serial %s, want the previous %s", got, p2.serial)
		}
	})

	// Written one after the other: picked up once both are in place.
	writeAtomic(t, certFile, p3.certPEM)
	if err := r.Reload(); err == nil {
		t.Fatal("new certificate with the old key accepted")
	}
	writeAtomic(t, keyFile, p3.keyPEM)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if r.Healthy() != nil {
		t.Errorf("healthy: %v", r.Healthy())
	}
	if got := srv.serial(t); got != p3.serial.String() {
		t.Errorf("serial %s, want %s", got, p3.serial)
	}
	if r.Current().Leaf.SerialNumber.Cmp(p3.serial) != 0 {
		t.Error("Current() is not the pair in service")
	}
}

func TestCertReloaderWatch(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	p1 := validPair(t)
	writeAtomic(t, certFile, p1.certPEM)
	writeAtomic(t, keyFile, p1.keyPEM)
	r, err := NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	p2 := validPair(t)
	writeAtomic(t, keyFile, p2.keyPEM) // the key first: refused until the certificate follows
	writeAtomic(t, certFile, p2.certPEM)
	deadline := time.Now().Add(5 * time.Second)
	for srv.serial(t) != p2.serial.String() {
		if time.Now().After(deadline) {
			t.Fatal("renewed certificate not picked up by Watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Healthy(); err != nil {
		t.Errorf("healthy: %v", err)
	}
}

func TestNewCertReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	p := validPair(t)
	other := validPair(t)
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		writeAtomic(t, path, data)
		return path
	}
	cert, key := write("c.pem", p.certPEM), write("k.pem", p.keyPEM)
	otherKey := write("ok.pem", other.keyPEM)
	garbage := write("g.pem", []byte("garbage"))
	for _, tt := range []struct{ name, cert, key string }{
		{"missing certificate", filepath.Join(dir, "nope"), key},
		{"missing key", cert, filepath.Join(dir, "nope")},
		{"garbage certificate", garbage, key},
		{"mismatched key", cert, otherKey},
	} {
		if _, err := NewCertReloader(tt.cert, tt.key, nil); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
