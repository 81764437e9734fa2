package mfa

import (
	"testing"
	"time"
)

// BenchmarkVerify measures an accepted code: read, decrypt, three HMACs and
// a durable write (fsync of file and directory). Every iteration is a new
// time step, so every code is fresh.
func BenchmarkVerify(b *testing.B) {
	s, _, _, secret := newStore(b)
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = codeAt(b, secret, base.Add(time.Duration(i)*Period))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Verify("alice", codes[i], base.Add(time.Duration(i)*Period)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWrongCode measures a refused code (no write), with the
// failure limit out of the way.
func BenchmarkVerifyWrongCode(b *testing.B) {
	s, _, _, secret := newStore(b)
	s.limit = newLimiter(1<<62, time.Nanosecond)
	code := wrongCode(b, secret, base)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Verify("alice", code, base); err == nil {
			b.Fatal("wrong code accepted")
		}
	}
}

func BenchmarkParseVerifyRequest(b *testing.B) {
	body := []byte(`{"code":"123456"}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseVerifyRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
