package dlp

import (
	"bytes"
	"testing"
	"time"
)

// TestAdversarialInput feeds long repetitions of what detectors look for:
// every one must scan in time linear in its length. The bound is loose (a
// busy machine, the race detector); quadratic behaviour misses it by
// orders of magnitude.
func TestAdversarialInput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	pats := []string{"a@", "1 ", "1-", "+1 ", "(1) ", "-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\n",
		"eyJ.", "eyJhbGciOiJIUzI1NiJ9.", ":", "=", "a=", "key=", "key:", "password=", "token=x", "AKIA", "1.", "1.2.3.4.",
		"DE89 ", "DE89", "0000 ", "::1:", "Q~", "1Q~", "Bearer ", "Basic ", "x", "sk-", "\\n", "PRIVATE KEY", "-----END ", "A1 ",
		"a:1:", "$1", "ssn 1", "phone 1", "-", "@", "((", "+", "ghp_", "4111 ", "4", "AB12 ", "aws_secret_access_key=",
		"AccountKey=", ".", "é"}
	const size = 256 << 10
	for _, p := range pats {
		text := bytes.Repeat([]byte(p), size/len(p))
		t0 := time.Now()
		New().Scan(text)
		New().Hold(text)
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("%q × %d: %v", p, size/len(p), d)
		}
	}
}
