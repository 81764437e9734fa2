package tlsconf

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is how often Watch polls the files when given no interval.
const DefaultWatchInterval = 5 * time.Second

// maxPEMBytes bounds a certificate or key file.
const maxPEMBytes = 1 << 20

// CertReloader serves a certificate and key from PEM files and reloads them
// when their content changes. A new pair is published only when both files
// parse, the key matches the certificate and the certificate has not
// expired; otherwise the previous pair stays in service and the error is
// logged and reported by Healthy. Files written one after the other (the
// certificate, then the key) are picked up once both are in place.
type CertReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	cur atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // serialises Reload; guards the fields below
	certSum [sha256.Size]byte
	keySum  [sha256.Size]byte
	lastErr error
}

// NewCertReloader loads certFile and keyFile; an invalid pair is an error.
// logger may be nil.
func NewCertReloader(certFile, keyFile string, logger *slog.Logger) (*CertReloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, logger: logger, now: time.Now}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := r.load(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	r.cur.Store(cert)
	r.certSum, r.keySum = sha256.Sum256(certPEM), sha256.Sum256(keyPEM)
	return r, nil
}

// GetCertificate returns the current pair (tls.Config.GetCertificate).
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Current returns the certificate in service.
func (r *CertReloader) Current() *tls.Certificate { return r.cur.Load() }

// Healthy returns nil when the files in place are the pair in service, else
// why the last reload was refused.
func (r *CertReloader) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Reload re-reads the files and publishes the new pair if they changed and
// are valid. It returns nil when nothing changed or the new pair is in
// service, and the error otherwise (the previous pair stays in service).
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, err := r.read()
	if err != nil {
		r.refuse(err)
		// Read again next time even if the content turns out unchanged.
		r.certSum, r.keySum = [sha256.Size]byte{}, [sha256.Size]byte{}
		return err
	}
	cs, ks := sha256.Sum256(certPEM), sha256.Sum256(keyPEM)
	if cs == r.certSum && ks == r.keySum {
		return nil // unchanged: in service, or already refused and reported
	}
	r.certSum, r.keySum = cs, ks
	cert, err := r.load(certPEM, keyPEM)
	if err != nil {
		r.refuse(err)
		return err
	}
	r.cur.Store(cert)
	r.lastErr = nil
	r.logger.Info("tls: certificate reloaded", "cert_file", r.certFile,
		"serial", cert.Leaf.SerialNumber.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// refuse records a refused reload and logs it unless the same refusal was
// logged by the previous poll. r.mu is held.
func (r *CertReloader) refuse(err error) {
	repeat := r.lastErr != nil && r.lastErr.Error() == err.Error()
	r.lastErr = err
	if repeat {
		return
	}
	r.logger.Error("tls: new certificate refused; still serving the previous one",
		"cert_file", r.certFile, "key_file", r.keyFile, "error", err)
}

// Watch reloads every interval (DefaultWatchInterval when interval <= 0)
// until ctx is done.
func (r *CertReloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Reload() // logged; reported by Healthy
		}
	}
}

func (r *CertReloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readBounded(r.certFile); err != nil {
		return nil, nil, fmt.Errorf("tls: cert_file: %w", err)
	}
	if keyPEM, err = readBounded(r.keyFile); err != nil {
		return nil, nil, fmt.Errorf("tls: key_file: %w", err)
	}
	return certPEM, keyPEM, nil
}

// load parses a pair: both must parse, the key must match, the leaf must
// not have expired.
func (r *CertReloader) load(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: %s, %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil { // only with GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: %s: %w", r.certFile, err)
		}
	}
	if now := r.now(); !now.Before(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("tls: %s: certificate expired at %s", r.certFile,
			cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPEMBytes)
	}
	if len(data) == 0 {
		return nil, errors.New(path + ": empty")
	}
	return data, nil
}
