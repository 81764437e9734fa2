package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// WorkloadSource takes warden's own X.509-SVID and the trust bundles (its
// own trust domain's and the federated ones) from a SPIFFE Workload API
// endpoint, typically a SPIRE agent's socket. The agent pushes rotated SVIDs
// and bundles over a stream; every call sees the latest.
//
// When the agent goes away the source keeps the last SVID and bundles and
// reconnects with backoff; Healthy reports an SVID that has expired meanwhile.
type WorkloadSource struct {
	src    *workloadapi.X509Source
	closed atomic.Bool
	cert   atomic.Pointer[svidCert] // tls.Certificate built for the current SVID
}

type svidCert struct {
	svid *x509svid.SVID
	cert *tls.Certificate
}

// NewWorkloadSource connects to the Workload API at socket ("unix:///path",
// a bare absolute path, or "tcp://ip:port") and waits for the first SVID and
// bundles, or until ctx is done: give ctx a deadline. ctx bounds only that
// wait; the source keeps watching until Close. logger may be nil.
func NewWorkloadSource(ctx context.Context, socket string, logger *slog.Logger) (*WorkloadSource, error) {
	if strings.HasPrefix(socket, "/") {
		socket = "unix://" + socket
	}
	if err := workloadapi.ValidateAddress(socket); err != nil {
		return nil, fmt.Errorf("mtls: workload api socket %q: %w", socket, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(
		workloadapi.WithAddr(socket),
		workloadapi.WithLogger(spiffeLogger{logger}),
	))
	if err != nil {
		return nil, fmt.Errorf("mtls: workload api %s: %w", socket, err)
	}
	return &WorkloadSource{src: src}, nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source: ErrUnknownTrustDomain
// when the agent has no bundle for td, ErrBundleUnavailable once closed.
func (w *WorkloadSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if w.closed.Load() {
		return nil, fmt.Errorf("%w: workload api source closed", ErrBundleUnavailable)
	}
	b, err := w.src.GetX509BundleForTrustDomain(td)
	if err != nil {
		if w.closed.Load() {
			return nil, fmt.Errorf("%w: %w", ErrBundleUnavailable, err)
		}
		return nil, fmt.Errorf("%w: %q: %w", ErrUnknownTrustDomain, td, err)
	}
	return b, nil
}

// GetX509SVID implements x509svid.Source: warden's current SVID.
func (w *WorkloadSource) GetX509SVID() (*x509svid.SVID, error) {
	svid, err := w.src.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("mtls: workload api: %w", err)
	}
	return svid, nil
}

// GetCertificate returns warden's current SVID as a server certificate
// (tls.Config.GetCertificate).
func (w *WorkloadSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	svid, err := w.GetX509SVID()
	if err != nil {
		return nil, err
	}
	if c := w.cert.Load(); c != nil && c.svid == svid {
		return c.cert, nil
	}
	if len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return nil, errors.New("mtls: workload api: SVID without certificate or key")
	}
	cert := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	w.cert.Store(&svidCert{svid: svid, cert: cert})
	return cert, nil
}

// Updated returns a channel that receives after each update from the agent.
func (w *WorkloadSource) Updated() <-chan struct{} { return w.src.Updated() }

// Healthy returns nil while the source is open and warden's SVID is valid.
func (w *WorkloadSource) Healthy() error {
	if w.closed.Load() {
		return fmt.Errorf("%w: workload api source closed", ErrBundleUnavailable)
	}
	svid, err := w.GetX509SVID()
	if err != nil {
		return err
	}
	if len(svid.Certificates) == 0 {
		return errors.New("mtls: workload api: SVID without certificate")
	}
	if exp := svid.Certificates[0].NotAfter; !time.Now().Before(exp) {
		return fmt.Errorf("mtls: workload api: warden's SVID %s expired at %s; is the agent reachable?",
			svid.ID, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// Close stops watching the Workload API. Later calls fail closed.
func (w *WorkloadSource) Close() error {
	w.closed.Store(true)
	if err := w.src.Close(); err != nil {
		return fmt.Errorf("mtls: workload api: close: %w", err)
	}
	return nil
}

// spiffeLogger adapts slog to go-spiffe's logger.
type spiffeLogger struct{ l *slog.Logger }

func (s spiffeLogger) Debugf(format string, args ...any) { s.l.Debug(fmt.Sprintf(format, args...)) }
func (s spiffeLogger) Infof(format string, args ...any)  { s.l.Info(fmt.Sprintf(format, args...)) }
func (s spiffeLogger) Warnf(format string, args ...any)  { s.l.Warn(fmt.Sprintf(format, args...)) }
func (s spiffeLogger) Errorf(format string, args ...any) { s.l.Error(fmt.Sprintf(format, args...)) }

var (
	_ x509bundle.Source = (*WorkloadSource)(nil)
	_ x509svid.Source   = (*WorkloadSource)(nil)
)
