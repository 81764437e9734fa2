package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestHelloFingerprint(t *testing.T) {
	base := func() *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{
			SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
			CipherSuites:      []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			SupportedCurves:   []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
			SupportedPoints:   []uint8{0},
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256, tls.PKCS1WithSHA256},
			SupportedProtos:   []string{"h2", "http/1.1"},
			Extensions:        []uint16{0, 10, 11, 13, 16, 23, 35, 43, 45, 51, 65281},
		}
	}
	want := HelloFingerprint(base())
	if want == 0 {
		t.Fatal("fingerprint 0")
	}
	same := map[string]func(h *tls.ClientHelloInfo){
		"extensions permuted (as browsers do)": func(h *tls.ClientHelloInfo) {
			h.Extensions = []uint16{51, 65281, 43, 10, 0, 45, 16, 13, 35, 23, 11}
		},
		"GREASE values": func(h *tls.ClientHelloInfo) {
			h.CipherSuites = append([]uint16{0x4a4a}, h.CipherSuites...)
			h.SupportedCurves = append([]tls.CurveID{0xfafa}, h.SupportedCurves...)
			h.SupportedVersions = append([]uint16{0x2a2a}, h.SupportedVersions...)
			h.Extensions = append([]uint16{0x0a0a}, append(h.Extensions, 0xdada)...)
		},
		"no server name": func(h *tls.ClientHelloInfo) { h.Extensions = h.Extensions[1:] },
		"resumption, padding, early data": func(h *tls.ClientHelloInfo) {
			h.Extensions = append(h.Extensions, 21, 42, 41)
		},
		"another connection": func(h *tls.ClientHelloInfo) { h.ServerName = "other.example" },
	}
	for name, f := range same {
		h := base()
		f(h)
		if got := HelloFingerprint(h); got != want {
			t.Errorf("%s: fingerprint changed", name)
		}
	}
	differ := map[string]func(h *tls.ClientHelloInfo){
		"cipher order": func(h *tls.ClientHelloInfo) {
			h.CipherSuites[0], h.CipherSuites[1] = h.CipherSuites[1], h.CipherSuites[0]
		},
		"one cipher fewer": func(h *tls.ClientHelloInfo) { h.CipherSuites = h.CipherSuites[:2] },
		"curves":           func(h *tls.ClientHelloInfo) { h.SupportedCurves = h.SupportedCurves[1:] },
		"signature scheme": func(h *tls.ClientHelloInfo) { h.SignatureSchemes = h.SignatureSchemes[:2] },
		"ALPN":             func(h *tls.ClientHelloInfo) { h.SupportedProtos = []string{"http/1.1"} },
		"ALPN split":       func(h *tls.ClientHelloInfo) { h.SupportedProtos = []string{"h", "2http/1.1"} },
		"TLS 1.2 only":     func(h *tls.ClientHelloInfo) { h.SupportedVersions = h.SupportedVersions[1:] },
		"an extension":     func(h *tls.ClientHelloInfo) { h.Extensions = append(h.Extensions, 27) },
	}
	for name, f := range differ {
		h := base()
		f(h)
		if got := HelloFingerprint(h); got == want {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}

// TestClientHelloThroughListener: a TLS listener made with
// FingerprintListener and ConnContext gives every exchange of a connection
// its client's fingerprint: the same for one client on every connection
// (resumed or not), different for a client with another TLS stack, 0 on a
// plaintext listener.
func TestClientHelloThroughListener(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &Exchange{Request: r}
		w.Header().Set("X-Proto", r.Proto)
		fmt.Fprint(w, ex.ClientHello())
	})
	ts := httptest.NewUnstartedServer(handler)
	cfg := &tls.Config{}
	ts.Listener = FingerprintListener(ts.Listener, cfg)
	ts.TLS = cfg // StartTLS clones it, GetConfigForClient included
	ts.Config.ConnContext = ConnContext
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()

	get := func(c *http.Client, proto string) uint64 {
		t.Helper()
		resp, err := c.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("X-Proto"); got != proto {
			t.Fatalf("request over %s, want %s", got, proto)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		v, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			t.Fatalf("body %q", b)
		}
		c.CloseIdleConnections() // the next request opens a new connection
		return v
	}
	a := ts.Client()
	a.Transport.(*http.Transport).TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	fa := get(a, "HTTP/2.0")
	if fa == 0 {
		t.Fatal("no fingerprint")
	}
	for i := 0; i < 3; i++ { // new connections, resumed sessions
		if got := get(a, "HTTP/2.0"); got != fa {
			t.Fatalf("connection %d of one client: fingerprint %x, first %x", i+2, got, fa)
		}
	}
	tr := a.Transport.(*http.Transport).Clone()
	b := &http.Client{Transport: tr}
	tr.TLSClientConfig.MaxVersion = tls.VersionTLS12
	tr.TLSClientConfig.CurvePreferences = []tls.CurveID{tls.CurveP256}
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if fb := get(b, "HTTP/1.1"); fb == 0 || fb == fa {
		t.Fatalf("another client: fingerprint %x, first client %x", fb, fa)
	}

	plain := httptest.NewUnstartedServer(handler)
	plain.Config.ConnContext = ConnContext
	plain.Start()
	defer plain.Close()
	resp, err := plain.Client().Get(plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "0" {
		t.Fatalf("plaintext listener: fingerprint %s, want 0", body)
	}
}
