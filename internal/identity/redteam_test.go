package identity

// Red-team probes of the identify stage: header precedence, forged
// forwarding headers and certificate + bearer combinations. A passing test
// is a regression guard for an attack that was refused.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// fakePeer proves a fixed SPIFFE ID from any certificate, or refuses all.
type fakePeer struct {
	ok          bool
	revalidated error
}

func (f *fakePeer) Name() string                                   { return "mtls" }
func (f *fakePeer) Handles(c *Credentials) bool                    { return len(c.PeerCerts) > 0 }
func (f *fakePeer) Revalidate(*gateway.Principal, time.Time) error { return f.revalidated }
func (f *fakePeer) Authenticate(_ context.Context, c *Credentials, now time.Time) (gateway.Principal, error) {
	if !f.ok || len(c.PeerCerts) == 0 {
		return gateway.Principal{}, NotProven("certificate refused")
	}
	return gateway.Principal{Kind: gateway.KindService, ID: "spiffe://example.org/agent/x", AuthMethod: "mtls",
		CredentialID: "00112233445566778899aabbccddeeff", ExpiresAt: now.Add(time.Hour)}, nil
}

func withCert(ex *gateway.Exchange) *gateway.Exchange {
	ex.Request.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte{1}}}}
	return ex
}

func runStage(st *Stage, ex *gateway.Exchange) (called bool, status int) {
	err := st.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
	var ge *gateway.Error
	if errors.As(err, &ge) {
		status = ge.Status
	}
	return called, status
}

// A client cannot claim a client certificate, or a workload, with headers
// that front proxies commonly use to forward one: only r.TLS counts.
func TestRedTeamStageForwardedCertHeadersIgnored(t *testing.T) {
	f := newStageFixture(t)
	st := NewStage(&fakePeer{ok: true}, []Authenticator{NewAPIKeyAuthenticator(f.ks)}, func() time.Time { return f.now })
	forged := http.Header{
		"X-Forwarded-Client-Cert": {`By=spiffe://example.org/warden;Hash=00;URI=spiffe://example.org/agent/admin`},
		"X-Ssl-Client-Cert":       {"-----BEGIN CERTIFICATE-----MIIB-----END CERTIFICATE-----"},
		"X-Client-Cert":           {"MIIB"},
		"Ssl-Client-Verify":       {"SUCCESS"},
	}
	ex, _ := newExchange(forged)
	if called, status := runStage(st, ex); called || status != http.StatusUnauthorized {
		t.Fatalf("forwarded-certificate headers alone: called=%v status=%d", called, status)
	}
	h := forged.Clone()
	h.Set("Authorization", "Bearer "+f.active)
	ex, _ = newExchange(h)
	if called, _ := runStage(st, ex); !called {
		t.Fatal("valid key refused")
	}
	if ex.Principal.Workload != "" || ex.Principal.ID != "svc-chat" {
		t.Fatalf("forged header shaped the principal: %+v", ex.Principal)
	}
}

// With a certificate and a bearer token, both must verify: a good API key
// does not paper over a refused certificate, and a good certificate does not
// paper over a revoked key. When both verify, the stream ends when either
// credential fails its re-check.
func TestRedTeamStageCertificateAndBearerBothMustHold(t *testing.T) {
	f := newStageFixture(t)
	now := func() time.Time { return f.now }

	bad := NewStage(&fakePeer{ok: false}, []Authenticator{NewAPIKeyAuthenticator(f.ks)}, now)
	ex, _ := newExchange(http.Header{"Authorization": {"Bearer " + f.active}})
	if called, status := runStage(bad, withCert(ex)); called || status != http.StatusUnauthorized {
		t.Fatalf("refused certificate + good key: called=%v status=%d", called, status)
	}

	peer := &fakePeer{ok: true}
	good := NewStage(peer, []Authenticator{NewAPIKeyAuthenticator(f.ks)}, now)
	ex, _ = newExchange(http.Header{"Authorization": {"Bearer " + f.revoked}})
	if called, status := runStage(good, withCert(ex)); called || status != http.StatusUnauthorized {
		t.Fatalf("good certificate + revoked key: called=%v status=%d", called, status)
	}

	ex, _ = newExchange(http.Header{"Authorization": {"Bearer " + f.active}})
	if called, _ := runStage(good, withCert(ex)); !called {
		t.Fatal("good certificate + good key refused")
	}
	if ex.Principal.ID != "svc-chat" || ex.Principal.Workload != "spiffe://example.org/agent/x" || ex.Revalidate == nil {
		t.Fatalf("principal %+v", ex.Principal)
	}
	if err := ex.Revalidate(f.now); err != nil {
		t.Fatalf("revalidate while both hold: %v", err)
	}
	peer.revalidated = NotProven("certificate expired")
	if err := ex.Revalidate(f.now); err == nil {
		t.Fatal("the certificate's failed re-check did not end the exchange")
	}
	peer.revalidated = nil
	if err := f.ks.Revoke(f.activeRec.ID); err != nil {
		t.Fatal(err)
	}
	if err := ex.Revalidate(f.now); !errors.Is(err, ErrNotProven) {
		t.Fatalf("revoking the key did not end the exchange: %v", err)
	}
}
