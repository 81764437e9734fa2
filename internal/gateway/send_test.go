package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProxySend(t *testing.T) {
	type seen struct {
		method, uri, body, cred, auth, session string
	}
	var mu sync.Mutex
	var got []seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("X-Upstream-Key"),
			r.Header.Get("Authorization"), r.Header.Get("Mcp-Session-Id")})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, "http://example.invalid/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(strings.Repeat("x", 100<<10))) // more than warden reads
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	roots := x509.NewCertPool()
	roots.AddCert(secure.Certificate())

	p, err := NewProxy([]UpstreamSpec{
		{Route: "plain", URL: plain.URL + "/base?k=v", StripPrefix: "/mcp/plain/", CredentialHeader: "X-Upstream-Key",
			CredentialValue: "secret-1", Timeout: 5 * time.Second, DialTimeout: time.Second},
		{Route: "secure", URL: secure.URL, CredentialHeader: "X-Upstream-Key", CredentialValue: "secret-2",
			Timeout: 5 * time.Second, DialTimeout: time.Second, TLSConfig: &tls.Config{RootCAs: roots}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hdr := http.Header{"Mcp-Session-Id": {"s-1"}, "Authorization": {"Bearer client-key"}, "Connection": {"close"}}
	cases := []struct {
		route, path, method, body string
		wantStatus                int
		want                      seen
	}{
		{"plain", "/mcp/plain/mcp", http.MethodDelete, "", http.StatusAccepted,
			seen{http.MethodDelete, "/base/mcp?k=v", "", "secret-1", "", "s-1"}},
		{"plain", "/mcp/plain/mcp", http.MethodPost, `{"jsonrpc":"2.0"}`, http.StatusAccepted,
			seen{http.MethodPost, "/base/mcp?k=v", `{"jsonrpc":"2.0"}`, "secret-1", "", "s-1"}},
		{"secure", "/mcp/secure", http.MethodDelete, "", http.StatusAccepted,
			seen{http.MethodDelete, "/mcp/secure", "", "secret-2", "", "s-1"}},
		{"secure", "/redirect", http.MethodDelete, "", http.StatusFound, // not followed
			seen{http.MethodDelete, "/redirect", "", "secret-2", "", "s-1"}},
	}
	for _, c := range cases {
		mu.Lock()
		got = nil
		mu.Unlock()
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		status, err := p.Send(context.Background(), c.route, &url.URL{Path: c.path}, c.method, hdr, body)
		if err != nil || status != c.wantStatus {
			t.Errorf("%s %s: status %d, err %v; want %d", c.route, c.path, status, err, c.wantStatus)
			continue
		}
		mu.Lock()
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s %s: upstream saw %+v, want %+v", c.route, c.path, got, c.want)
		}
		mu.Unlock()
	}
	if _, err := p.Send(context.Background(), "nope", &url.URL{Path: "/"}, http.MethodDelete, nil, nil); err == nil {
		t.Error("unknown route: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Send(ctx, "plain", &url.URL{Path: "/mcp/plain/mcp"}, http.MethodDelete, nil, nil); err == nil {
		t.Error("cancelled context: no error")
	}
}
