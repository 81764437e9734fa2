package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warden-ai/warden/internal/config"
)

// fakeWorkloadAPI is a minimal SPIFFE Workload API (FetchX509SVID only): it
// streams the current X.509 context and again after every set.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	mu      sync.Mutex
	resp    *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced by set
}

func (f *fakeWorkloadAPI) set(svid *testLeaf, spiffeID string, bundle []*x509.Certificate, federated map[string][]*x509.Certificate) error {
	key, err := x509.MarshalPKCS8PrivateKey(svid.key)
	if err != nil {
		return err
	}
	resp := &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{{
			SpiffeId: spiffeID, X509Svid: concatDER(svid.chain), X509SvidKey: key, Bundle: concatDER(bundle),
		}},
		FederatedBundles: map[string][]byte{},
	}
	for td, certs := range federated {
		resp.FederatedBundles[td] = concatDER(certs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resp = resp
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
	return nil
}

func (f *fakeWorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		f.mu.Lock()
		resp, changed := f.resp, f.changed
		f.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

func concatDER(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

// startFakeAgent serves the fake Workload API on a unix socket.
func startFakeAgent(t *testing.T, f *fakeWorkloadAPI) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wl") // short: unix socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(s, f)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return sock
}

func TestWorkloadSource(t *testing.T) {
	ca1, ca2 := newCA(t, "example.org"), newCA(t, "example.org")
	partner := newCA(t, "partner.org")
	svid1 := ca1.leaf(t, []string{"spiffe://example.org/warden"})
	svid2 := ca2.leaf(t, []string{"spiffe://example.org/warden"})

	fake := &fakeWorkloadAPI{}
	if err := fake.set(svid1, "spiffe://example.org/warden", []*x509.Certificate{ca1.cert},
		map[string][]*x509.Certificate{"spiffe://partner.org": {partner.cert}}); err != nil {
		t.Fatal(err)
	}
	sock := startFakeAgent(t, fake)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := NewWorkloadSource(ctx, sock, nil) // a bare path is accepted
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Healthy(); err != nil {
		t.Fatalf("healthy: %v", err)
	}

	// warden's own certificate is the SVID.
	serial := func() string {
		c, err := ws.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Certificate) == 0 || c.PrivateKey == nil || c.Leaf == nil {
			t.Fatalf("incomplete certificate %+v", c)
		}
		return c.Leaf.SerialNumber.String()
	}
	if got := serial(); got != svid1.cert.SerialNumber.String() {
		t.Fatalf("server certificate serial %s, want %s", got, svid1.cert.SerialNumber)
	}

	// Its bundles verify clients, federated trust domains included.
	a := New(ws, config.MTLS{}, Options{})
	auth := func(l *testLeaf) error {
		_, err := a.Authenticate(context.Background(), creds(l.chain...), time.Now())
		return err
	}
	old := ca1.leaf(t, []string{"spiffe://example.org/agent/a"})
	fresh := ca2.leaf(t, []string{"spiffe://example.org/agent/b"})
	if err := auth(old); err != nil {
		t.Errorf("client of the agent's trust domain: %v", err)
	}
	if err := auth(partner.leaf(t, []string{"spiffe://partner.org/x"})); err != nil {
		t.Errorf("client of a federated trust domain: %v", err)
	}
	if err := auth(newCA(t, "evil.org").leaf(t, []string{"spiffe://evil.org/x"})); classify(err) != notProven {
		t.Errorf("client of an unknown trust domain: %v, want not proven", err)
	}
	if err := auth(fresh); classify(err) != notProven {
		t.Errorf("client of the next CA before rotation: %v, want not proven", err)
	}

	// The agent rotates the SVID and the CA, and drops the federation.
	if err := fake.set(svid2, "spiffe://example.org/warden", []*x509.Certificate{ca2.cert}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated SVID", func() bool { return serial() == svid2.cert.SerialNumber.String() })
	if err := auth(fresh); err != nil {
		t.Errorf("client of the new CA after rotation: %v", err)
	}
	if err := auth(old); classify(err) != notProven {
		t.Errorf("client of the removed CA after rotation: %v, want not proven", err)
	}
	if err := auth(partner.leaf(t, []string{"spiffe://partner.org/y"})); classify(err) != notProven {
		t.Errorf("client of a trust domain no longer federated: %v, want not proven", err)
	}

	// Closed: fail closed.
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("example.org")); !errors.Is(err, ErrBundleUnavailable) {
		t.Errorf("bundle after close: %v, want ErrBundleUnavailable", err)
	}
	if err := auth(fresh); classify(err) != fault {
		t.Errorf("authenticate after close: %v, want a fault", err)
	}
	if ws.Healthy() == nil {
		t.Error("healthy after close")
	}
}

func TestWorkloadSourceErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := NewWorkloadSource(ctx, "relative/path.sock", nil); err == nil {
		t.Error("invalid address accepted")
	}
	// Nobody listening: gives up when ctx is done.
	if _, err := NewWorkloadSource(ctx, "unix:///nonexistent/agent.sock", nil); err == nil {
		t.Error("no agent: no error")
	}
}
