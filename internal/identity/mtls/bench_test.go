package mtls

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkAuthenticate is the common case: a client certificate seen
// before (keep-alive connections, reconnecting workloads).
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b, nil)
	l := f.ca.intermediate(b, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)).leaf(b, []string{"spiffe://example.org/agent/a"})
	c := creds(l.chain...)
	now := time.Now()
	if _, err := f.auth.Authenticate(context.Background(), c, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.Authenticate(context.Background(), c, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateUncached is a certificate seen for the first time:
// full chain verification.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newFixture(b, nil)
	l := f.ca.intermediate(b, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)).leaf(b, []string{"spiffe://example.org/agent/a"})
	full := sha256.Sum256(l.cert.Raw)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.verify(l.chain, full, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRevalidate(b *testing.B) {
	f := newFixture(b, nil)
	l := f.ca.leaf(b, []string{"spiffe://example.org/agent/a"})
	now := time.Now()
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := f.auth.Revalidate(&p, now); err != nil {
			b.Fatal(err)
		}
	}
}
