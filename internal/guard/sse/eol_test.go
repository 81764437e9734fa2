package sse

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestIndexEOL: indexEOL is bytes.IndexAny(b, "\r\n").
func TestIndexEOL(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\r\n")
	for range 20000 {
		b := make([]byte, rng.IntN(2000))
		rare := rng.IntN(4) == 0
		for i := range b {
			b[i] = alphabet[rng.IntN(2)]
			if !rare || rng.IntN(300) == 0 {
				b[i] = alphabet[rng.IntN(4)]
			}
		}
		if got, want := indexEOL(b), bytes.IndexAny(b, "\r\n"); got != want {
			t.Fatalf("indexEOL(%q) = %d, want %d", b, got, want)
		}
	}
}
