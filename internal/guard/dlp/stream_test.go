package dlp

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/warden-ai/warden/internal/guard"
)

var streamTexts = []string{
	"Hi, I'm Jane - reach me at jane.roe@example.com or on +44 20 7946 0958. Card: 4111 1111 1111 1111, exp 09/27.",
	"IBAN GB82 WEST 1234 5698 7654 32 and DE89 3704 0044 0532 0130 00; server 192.168.1.10:8080.",
	"export AWS_ACCESS_KEY_ID=" + testAWS + "\nexport AWS_SECRET_ACCESS_KEY=" + testAWSSecret + "\n",
	"Authorization: Bearer " + testJWT + "\n\nand then " + testGitHub + " and " + testOpenAIPrj,
	"key file:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n-----END RSA PRIVATE KEY-----\nthat was it.",
	"SSN 123-45-6789, phone (415) 555-0132, ip 2001:db8::8a2e:370:7334, and 4242424242424242.",
	"nothing to see here, just prose about the weather in Berlin on 2024-06-19 at 09:14 and version 1.2.3.4.",
	"api_key=" + testGeneric + "&password=Tr0ub4dor&3 -- Basic dXNlcjpwYXNzd29yZDEyMw==",
	"héllo wörld → jane@example.com ✓ 4111-1111-1111-1111 ünd",
}

func testPolicy(t testing.TB) *guard.Policy {
	t.Helper()
	p, err := guard.NewPolicy(map[string]string{"pii": "mask", "secret": "hash", "email": "hash"}, []byte("test-tenant-key"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// whole masks text in one piece.
func whole(p *guard.Policy, text []byte) ([]byte, []guard.Finding) {
	fs := New().Scan(text)
	_ = p.Decide(fs)
	return p.Apply(nil, text, fs), fs
}

// streamed masks text fed in the given chunk sizes (cycled).
func streamed(t testing.TB, p *guard.Policy, text []byte, sizes []int, maxHold int) ([]byte, []guard.Finding) {
	t.Helper()
	st := guard.NewStream(New(), guard.StreamOptions{Policy: p, MaxHold: maxHold})
	var out []byte
	var err error
	for i, k := 0, 0; i < len(text); k++ {
		n := min(max(sizes[k%len(sizes)], 1), len(text)-i)
		if out, err = st.Write(out, text[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	if out, err = st.Flush(out); err != nil {
		t.Fatal(err)
	}
	return out, st.Findings()
}

// TestStreamMatchesWhole: however a text is split into chunks, the stream
// releases exactly what masking the whole text gives, with the same
// findings.
func TestStreamMatchesWhole(t *testing.T) {
	p := testPolicy(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range streamTexts {
		text := []byte(s)
		want, wantFs := whole(p, text)
		splits := [][]int{{1}, {2}, {3}, {7}, {64}, {len(text)}}
		for range 20 {
			sizes := make([]int, 8)
			for i := range sizes {
				sizes[i] = r.IntN(24) + 1
			}
			splits = append(splits, sizes)
		}
		for cut := 1; cut < len(text); cut++ {
			splits = append(splits, []int{cut, len(text)})
		}
		for _, sizes := range splits {
			got, gotFs := streamed(t, p, text, sizes, 0)
			if !bytes.Equal(got, want) {
				t.Fatalf("chunks %v of %q:\n got  %q\n want %q", sizes, text, got, want)
			}
			if !sameFindings(gotFs, wantFs) {
				t.Fatalf("chunks %v of %q: findings\n got  %+v\n want %+v", sizes, text, gotFs, wantFs)
			}
		}
	}
}

func sameFindings(a, b []guard.Finding) bool {
	return slices.EqualFunc(a, b, func(x, y guard.Finding) bool {
		return x.Type == y.Type && x.Start == y.Start && x.End == y.End && x.Action == y.Action
	})
}

// TestStreamNeverLeaks: no chunking releases a detected value in clear.
func TestStreamNeverLeaks(t *testing.T) {
	p := testPolicy(t)
	values := []string{"4111 1111 1111 1111", "jane.roe@example.com", testAWS, testJWT, "+44 20 7946 0958", "GB82 WEST 1234 5698 7654 32"}
	for _, v := range values {
		text := []byte("before " + v + " after")
		for cut := 1; cut < len(text); cut++ {
			got, _ := streamed(t, p, text, []int{cut, 1, len(text)}, 0)
			if bytes.Contains(got, []byte(v)) {
				t.Fatalf("cut at %d leaked %q: %q", cut, v, got)
			}
		}
	}
}

// TestStreamHoldLimit: a held region longer than MaxHold is released
// anyway (bounded memory), as if the input had ended there.
func TestStreamHoldLimit(t *testing.T) {
	p := testPolicy(t)
	long := bytes.Repeat([]byte("a"), 5000) // one word: held until the limit
	st := guard.NewStream(New(), guard.StreamOptions{Policy: p, MaxHold: 1024})
	var out []byte
	for i := 0; i < len(long); i += 100 {
		var err error
		if out, err = st.Write(out, long[i:i+100]); err != nil {
			t.Fatal(err)
		}
		if st.Held() > 1024+100 {
			t.Fatalf("held %d bytes, limit 1024", st.Held())
		}
	}
	out, _ = st.Flush(out)
	if !bytes.Equal(out, long) {
		t.Fatalf("output differs from input")
	}
}

func FuzzStream(f *testing.F) {
	for _, s := range streamTexts {
		f.Add([]byte(s), uint64(7))
	}
	f.Add([]byte("4111 1111 1111 1111"), uint64(1))
	p := testPolicy(f)
	f.Fuzz(func(t *testing.T, text []byte, seed uint64) {
		if len(text) > 4096 {
			return
		}
		checkInvariants(t, text)
		r := rand.New(rand.NewPCG(seed, seed>>7))
		sizes := make([]int, 6)
		for i := range sizes {
			sizes[i] = r.IntN(32) + 1
		}
		want, wantFs := whole(p, text)
		got, gotFs := streamed(t, p, text, sizes, 0)
		if !bytes.Equal(got, want) || !sameFindings(gotFs, wantFs) {
			t.Fatalf("chunks %v of %q:\n got  %q %+v\n want %q %+v", sizes, text, got, gotFs, want, wantFs)
		}
	})
}

// TestStreamReleasesEarly: the stream holds back only what may still
// become a match, not everything until Flush.
func TestStreamReleasesEarly(t *testing.T) {
	tests := []struct {
		chunks   []string
		wantOut  string // released after the last chunk, before Flush
		wantHeld int
	}{
		{[]string{"hello ", "world, how are ", "you"}, "hello world, how are ", 3},
		{[]string{"card 4111 1111 ", "1111 1111 and more text "}, "card [PAYMENT_CARD] and more text ", 0},
		{[]string{"mail jane@exa", "mple.com now"}, "mail [EMAIL] ", 3},
		{[]string{"ip 10.0.", "0.1"}, "ip ", 8},
	}
	p, err := guard.NewPolicy(map[string]string{"pii": "mask", "email": "mask"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		st := guard.NewStream(New(), guard.StreamOptions{Policy: p})
		var out []byte
		for _, c := range tt.chunks {
			out, err = st.Write(out, []byte(c))
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(out) != tt.wantOut || st.Held() != tt.wantHeld {
			t.Errorf("%q: released %q held %d, want %q held %d", tt.chunks, out, st.Held(), tt.wantOut, tt.wantHeld)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range streamTexts {
		f.Add([]byte(s))
	}
	f.Add([]byte("key=key=key=" + testGeneric))
	f.Fuzz(func(t *testing.T, text []byte) {
		checkInvariants(t, text)
		// Scanning is deterministic and does not depend on what follows a
		// finding's right neighbour: a prefix ending after a finding's
		// next byte has that finding too.
		fs := New().Scan(text)
		for _, fd := range fs {
			if fd.End+1 >= len(text) || fd.Type == "private_key" {
				continue
			}
			cut := fd.End + 1
			if k := New().Hold(text[:cut]); cut-k < fd.End {
				continue // the scanner itself says the prefix may still change it
			}
			if !slices.ContainsFunc(New().Scan(text[:cut]), func(g guard.Finding) bool {
				return g.Start == fd.Start && g.End == fd.End && g.Type == fd.Type
			}) {
				t.Fatalf("finding %+v of %q not found in prefix %q", fd, text, text[:cut])
			}
		}
	})
}
