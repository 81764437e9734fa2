package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/mtls"
	"github.com/warden-ai/warden/internal/identity/oidc"
	"github.com/warden-ai/warden/internal/tlsconf"
)

// bundleWatchInterval is how often trust bundle and certificate files are
// checked for rotation.
const bundleWatchInterval = 2 * time.Second

// identityParts are the authenticators built from cfg.Identity and what they
// need at run time.
type identityParts struct {
	peer     identity.Authenticator // nil without mtls
	bearer   []identity.Authenticator
	workload *mtls.WorkloadSource // nil without a SPIRE socket
	checks   map[string]func() error
	closers  []func() error
}

// buildIdentity opens every configured authentication method. Background
// refreshes run until ctx ends.
func (s *Server) buildIdentity(ctx context.Context, cfg *config.Config) (*identityParts, error) {
	ip := &identityParts{checks: map[string]func() error{}}
	ip.bearer = append(ip.bearer, identity.NewAPIKeyAuthenticator(s.keys))

	if m := cfg.Identity.MTLS; m != nil {
		var src x509bundle.Source
		if m.WorkloadAPISocket != "" {
			ws, err := mtls.NewWorkloadSource(ctx, m.WorkloadAPISocket, s.logger)
			if err != nil {
				return nil, fmt.Errorf("identity.mtls.workload_api_socket: %w", err)
			}
			ip.workload = ws
			ip.closers = append(ip.closers, ws.Close)
			ip.checks["mtls_workload_api"] = ws.Healthy
			src = ws
		} else {
			fb, err := mtls.NewFileBundles(m.TrustDomains, s.logger)
			if err != nil {
				return nil, fmt.Errorf("identity.mtls: %w", err)
			}
			go fb.Watch(ctx, bundleWatchInterval)
			ip.checks["mtls_bundles"] = fb.Healthy
			src = fb
		}
		ip.peer = mtls.New(src, *m, mtls.Options{})
	}

	if len(cfg.Identity.OIDC) > 0 {
		oa, err := oidc.New(ctx, cfg.Identity.OIDC, oidc.Options{Logger: s.logger})
		if err != nil {
			return nil, fmt.Errorf("identity.oidc: %w", err)
		}
		ip.closers = append(ip.closers, oa.Close)
		ip.bearer = append(ip.bearer, oa)
	}
	return ip, nil
}

// listenerTLSConfig returns a listener's TLS configuration, nil for mode off.
// Certificate files are reloaded when they change; a self-signed certificate
// is generated once per start.
func (s *Server) listenerTLSConfig(ctx context.Context, l config.Listener) (*tls.Config, error) {
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	switch l.TLS.Mode {
	case config.TLSModeOff:
		return nil, nil
	case config.TLSModeSelfSigned:
		cert := &s.self.Cert
		getCert = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	case config.TLSModeFiles:
		r, err := tlsconf.NewCertReloader(l.TLS.CertFile, l.TLS.KeyFile, s.logger.With("listener", l.Name))
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		go r.Watch(ctx, bundleWatchInterval)
		s.extraChecks["tls_"+l.Name] = r.Healthy
		getCert = r.GetCertificate
	default:
		return nil, fmt.Errorf("listener %q: unknown tls mode %q", l.Name, l.TLS.Mode)
	}
	tcfg, err := tlsconf.ServerConfig(l.TLS.ClientAuth, getCert)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.Name, err)
	}
	return tcfg, nil
}
