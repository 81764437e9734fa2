package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

func BenchmarkAuthenticate(b *testing.B) {
	k := newKit(b)
	tok := k.issue(b, Claims{Subject: "alice", Actor: "agent-1", Scopes: []string{"inference:chat", "tools:search"},
		Groups: []string{"eng"}, Roles: []string{"dev"}}, 0, t0)
	c := creds(tok)
	ctx := context.Background()
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if !k.auth.Handles(c) {
			b.Fatal("not handled")
		}
		if _, err := k.auth.Authenticate(ctx, c, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandles(b *testing.B) {
	k := newKit(b)
	c := creds(k.issue(b, Claims{Subject: "alice", Scopes: []string{"inference:chat"}}, 0, t0))
	b.ReportAllocs()
	for b.Loop() {
		if !k.auth.Handles(c) {
			b.Fatal("not handled")
		}
	}
}

func BenchmarkRevalidate(b *testing.B) {
	k := newKit(b)
	p, err := k.auth.Verify(k.issue(b, Claims{Subject: "alice", Actor: "agent-1"}, 0, t0), t0)
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.auth.Revalidate(&p, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	k := newKit(b)
	c := Claims{Subject: "alice", Actor: "agent-1", Scopes: []string{"inference:chat", "tools:search"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.iss.Issue(c, 0, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeExchange(b *testing.B) {
	k := newKit(b)
	ex := NewExchanger(k.iss, nil, testCfg)
	ex.now = func() time.Time { return t0 }
	body := []byte(exchangeForm("scope", "inference:chat").Encode())
	caller := &gateway.Principal{Kind: "service", ID: "svc", Scopes: []string{"inference:chat", "models:read"}}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/warden/token", nil)
		r.Header.Set("Content-Type", formCT)
		rec := httptest.NewRecorder()
		if err := ex.ServeExchange(&gateway.Exchange{Request: r, Writer: gateway.NewResponseWriter(rec), Body: body, Principal: caller}); err != nil {
			b.Fatal(err)
		}
	}
}
