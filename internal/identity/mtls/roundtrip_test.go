package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/tlsconf"
)

// A real TLS server configured by tlsconf (client_auth require, certificate
// from a CertReloader) runs identity.Stage with the mTLS authenticator on
// r.TLS.PeerCertificates: the wiring works end to end, and a bad client
// certificate passes the handshake and is refused with a 401.
func TestTLSRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()

	// warden's server certificate, from files.
	serverCA := newCA(t, "server.test")
	srvLeaf := serverCA.leaf(t, nil, withCN("warden"), withIP(net.IPv4(127, 0, 0, 1)), withEKU(x509.ExtKeyUsageServerAuth))
	certFile, keyFile := filepath.Join(f.dir, "server.crt"), filepath.Join(f.dir, "server.key")
	writeAtomic(t, certFile, pemCerts(srvLeaf.chain...))
	writeAtomic(t, keyFile, pemKey(t, srvLeaf.key))
	reloader, err := tlsconf.NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := tlsconf.ServerConfig(tlsconf.ClientAuthRequire, reloader.GetCertificate)
	if err != nil {
		t.Fatal(err)
	}

	stage := identity.NewStage(f.auth, nil, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &gateway.Exchange{ID: "rt", Request: r, Writer: gateway.NewResponseWriter(w)}
		err := stage.Handle(ex, func(ex *gateway.Exchange) error {
			_, err := io.WriteString(ex.Writer, ex.Principal.Kind+" "+ex.Principal.ID)
			return err
		})
		if err != nil {
			ge := gateway.AsError(err)
			w.WriteHeader(ge.Status)
			_, _ = io.WriteString(w, ge.Code)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: tcfg, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String() + "/v1/models"

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	get := func(clientCert *testLeaf) (int, string, error) {
		cc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if clientCert != nil {
			c := clientCert.tlsCert()
			cc.Certificates = []tls.Certificate{c}
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: true}}
		defer client.CloseIdleConnections()
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	evil := newCA(t, "evil.org")
	tests := []struct {
		name       string
		cert       *testLeaf
		wantStatus int
		wantBody   string
	}{
		{"valid agent SVID", f.ca.leaf(t, []string{"spiffe://example.org/agent/planner"}), 200, "agent spiffe://example.org/agent/planner"},
		{"valid SVID via intermediate", f.ca.intermediate(t, now.Add(-time.Hour), now.Add(time.Hour)).leaf(t, []string{"spiffe://example.org/svc/a"}), 200, "service spiffe://example.org/svc/a"},
		{"another trust domain", evil.leaf(t, []string{"spiffe://evil.org/agent/x"}), 401, "invalid_client_certificate"},
		{"untrusted CA claiming the trust domain", newCA(t, "example.org").leaf(t, []string{"spiffe://example.org/agent/x"}), 401, "invalid_client_certificate"},
		{"expired certificate", f.ca.leaf(t, []string{"spiffe://example.org/a"}, withValidity(now.Add(-2*time.Hour), now.Add(-time.Hour))), 401, "invalid_client_certificate"},
		{"no SPIFFE ID", f.ca.leaf(t, nil, withCN("legacy")), 401, "invalid_client_certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := get(tt.cert)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		_, _, err := get(nil)
		if err == nil {
			t.Fatal("request without a client certificate succeeded")
		}
	})
}
