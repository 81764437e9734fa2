package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/mfa"
	"github.com/warden-ai/warden/internal/identity/mtls"
	"github.com/warden-ai/warden/internal/identity/oidc"
	"github.com/warden-ai/warden/internal/identity/revoke"
	"github.com/warden-ai/warden/internal/identity/token"
	"github.com/warden-ai/warden/internal/policy"
	"github.com/warden-ai/warden/internal/tlsconf"
)

// bundleWatchInterval is how often trust bundle and certificate files are
// checked for rotation.
const bundleWatchInterval = 2 * time.Second

// identityParts are the authenticators built from cfg.Identity and what they
// need at run time.
type identityParts struct {
	stage     *identity.Stage
	peer      identity.Authenticator // nil without mtls
	bearer    []identity.Authenticator
	workload  *mtls.WorkloadSource // nil without a SPIRE socket
	revoked   *revoke.List
	issuer    *token.Issuer
	jwks      http.Handler
	native    map[string]gateway.NativeHandler // warden's own endpoints, by action
	enforcers map[string]policy.ObligationFunc // obligations identity can enforce
	checks    map[string]func() error
	closers   []func() error
}

// buildIdentity opens every configured authentication method. Background
// refreshes run until ctx ends.
func (s *Server) buildIdentity(ctx context.Context, cfg *config.Config) (*identityParts, error) {
	ip := &identityParts{checks: map[string]func() error{}, native: map[string]gateway.NativeHandler{},
		enforcers: map[string]policy.ObligationFunc{}}
	apiKeys := identity.NewAPIKeyAuthenticator(s.keys)
	ip.bearer = append(ip.bearer, apiKeys)

	// warden-issued tokens: signing keys that rotate, and the revocation list
	// every running warden watches.
	tcfg := token.WithDefaults(cfg.Identity.Tokens)
	revs, err := revoke.Open(cfg.Identity.RevocationsPath)
	if err != nil {
		return nil, fmt.Errorf("identity.revocations_path: %w", err)
	}
	go revs.Watch(ctx, revoke.DefaultWatchInterval, s.logger)
	ip.revoked = revs
	ip.checks["revocations"] = revs.Healthy
	keys, err := token.OpenKeySet(tcfg.KeysPath, tcfg.RotateEvery.D(), tcfg.MaxTTL.D())
	if err != nil {
		return nil, fmt.Errorf("identity.tokens.keys_path: %w", err)
	}
	if _, err := keys.EnsureCurrent(time.Now()); err != nil {
		return nil, fmt.Errorf("identity.tokens: signing key: %w", err)
	}
	go keys.Watch(ctx, time.Second, s.logger)
	go keys.Maintain(ctx, time.Minute, s.logger)
	ip.checks["token_keys"] = keys.Healthy
	ip.issuer = token.NewIssuer(keys, tcfg)
	ip.jwks = keys.JWKSHandler()
	// A token derived from an API key ends when the key is revoked.
	ip.bearer = append(ip.bearer, token.NewAuthenticator(keys, revs, tcfg).CheckParents(apiKeys.CheckParent))

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
	ip.stage = identity.NewStage(ip.peer, ip.bearer, time.Now)

	// RFC 8693 exchange: the subject token must be a JWT (an OIDC token or a
	// warden token), proven exactly as a request carrying it would be.
	verifySubject := func(ctx context.Context, tok string) (gateway.Principal, error) {
		if identity.KindOf(tok) != identity.BearerJWT {
			return gateway.Principal{}, identity.NotProven("subject_token is not a JWT")
		}
		return ip.stage.AuthenticateBearer(ctx, tok, time.Now())
	}
	ip.native["token.exchange"] = token.NewExchanger(ip.issuer, verifySubject, tcfg)

	if m := cfg.Identity.MFA; m != nil {
		key, err := m.Key()
		if err != nil {
			return nil, fmt.Errorf("identity.mfa.encryption_key: %w", err)
		}
		store, err := mfa.Open(m.StorePath, key)
		if err != nil {
			return nil, fmt.Errorf("identity.mfa: %w", err)
		}
		ip.checks["mfa"] = store.Healthy
		ip.native["mfa.verify"] = mfa.NewStepUp(store, ip.issuer, m.ElevatedTTL.D())
		ip.enforcers[policy.ObligationRequireMFA] = mfa.RequireMFA
	}
	ip.native["credential.revoke"] = &revoker{keys: s.keys, revoked: revs, tokenTTL: tcfg.MaxTTL.D()}
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
	case config.TLSModeSPIFFE:
		if s.ident == nil || s.ident.workload == nil {
			return nil, fmt.Errorf("listener %q: tls mode spiffe needs identity.mtls.workload_api_socket", l.Name)
		}
		getCert = s.ident.workload.GetCertificate // rotates with the SVID
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
