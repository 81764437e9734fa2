package mfa

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// base is a fixed time 10 s into a TOTP step.
var base = time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func openStore(t testing.TB, path string, key []byte) *Store {
	t.Helper()
	s, err := Open(path, key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStore opens a store in a fresh directory and enrolls user alice.
func newStore(t testing.TB) (s *Store, path string, key []byte, secret string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "data", "mfa.json")
	key = newKey(t)
	s = openStore(t, path, key)
	_, secret, err := s.Enroll("alice", "warden", base)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return s, path, key, secret
}

func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode returns a well-formed code that matches none of the steps
// accepted at at.
func wrongCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for d := -Skew; d <= Skew; d++ {
		valid[codeAt(t, secret, at.Add(time.Duration(d)*Period))] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%0*d", Digits, n); !valid[c] {
			return c
		}
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:KeySize] // base64 of it has + and / (std) or - and _ (url)
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw)), true},
		{"hex with newline", hex.EncodeToString(raw) + "\n", true},
		{"base64 std", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), true},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(raw), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(raw), true},
		{"empty", "", false},
		{"spaces", "   ", false},
		{"short hex", hex.EncodeToString(raw[:31]), false},
		{"long hex", hex.EncodeToString(append(raw, 1)), false},
		{"hex with non-hex", "zz" + hex.EncodeToString(raw)[2:], false},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"all zero", strings.Repeat("0", 64), false},
		{"passphrase", "correct horse battery staple", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.ok {
				if err != nil || !bytes.Equal(k, raw) {
					t.Fatalf("ParseKey = %x, %v; want %x", k, err, raw)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKey accepted %q", tt.in)
			}
			if trimmed := strings.TrimSpace(tt.in); len(trimmed) > 8 && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

func TestOpenArguments(t *testing.T) {
	if _, err := Open("", newKey(t)); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "m.json"), make([]byte, 16)); err == nil {
		t.Error("16-byte key accepted")
	}
	var zero Store // not opened: every method fails closed, nothing panics
	if err := zero.Verify("alice", "123456", base); !errors.Is(err, ErrUnavailable) {
		t.Errorf("zero Store Verify = %v", err)
	}
	if _, _, err := zero.Enroll("alice", "warden", base); !errors.Is(err, ErrUnavailable) {
		t.Errorf("zero Store Enroll = %v", err)
	}
	var nilStore *Store
	if err := nilStore.Verify("alice", "123456", base); !errors.Is(err, ErrUnavailable) {
		t.Errorf("nil Store Verify = %v", err)
	}
}

func TestVerify(t *testing.T) {
	type attempt struct {
		at      time.Duration // when, relative to base
		codeFor time.Duration // the code of the step at base+codeFor
		code    string        // if set, sent instead
		wrong   bool          // send a well-formed code of no accepted step
		user    string        // default alice
		want    error
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"current code", []attempt{{want: nil}}},
		{"same code again", []attempt{{want: nil}, {at: 5 * time.Second, want: ErrReplayedCode}}},
		{"same code in the next step", []attempt{{want: nil}, {at: 30 * time.Second, want: ErrReplayedCode}}},
		{"previous step after a newer one", []attempt{{want: nil}, {at: 10 * time.Second, codeFor: -Period, want: ErrReplayedCode}}},
		{"next step, then current", []attempt{{codeFor: Period, want: nil}, {want: ErrReplayedCode}}},
		{"previous step accepted (skew)", []attempt{{codeFor: -Period, want: nil}}},
		{"next step accepted (skew)", []attempt{{codeFor: Period, want: nil}}},
		{"two steps old", []attempt{{codeFor: -2 * Period, want: ErrInvalidCode}}},
		{"two steps ahead", []attempt{{codeFor: 2 * Period, want: ErrInvalidCode}}},
		{"successive steps", []attempt{{want: nil}, {at: Period, codeFor: Period, want: nil}, {at: 2 * Period, codeFor: 2 * Period, want: nil}}},
		{"wrong code", []attempt{{wrong: true, want: ErrInvalidCode}}},
		{"wrong then right", []attempt{{wrong: true, want: ErrInvalidCode}, {want: nil}}},
		{"empty", []attempt{{code: "-", want: ErrInvalidCode}}},
		{"short", []attempt{{code: "12345", want: ErrInvalidCode}}},
		{"long", []attempt{{code: "1234567", want: ErrInvalidCode}}},
		{"letter", []attempt{{code: "12345a", want: ErrInvalidCode}}},
		{"leading space", []attempt{{code: " 12345", want: ErrInvalidCode}}},
		{"trailing newline", []attempt{{code: "12345\n", want: ErrInvalidCode}}},
		{"non-ASCII digits", []attempt{{code: "١٢٣٤٥٦", want: ErrInvalidCode}}},
		{"sign", []attempt{{code: "+12345", want: ErrInvalidCode}}},
		{"not enrolled", []attempt{{user: "bob", want: ErrNotEnrolled}}},
		{"invalid user id", []attempt{{user: "bob smith", want: ErrNotEnrolled}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, secret := newStore(t)
			for i, a := range tt.attempts {
				now := base.Add(a.at)
				code := codeAt(t, secret, base.Add(a.codeFor))
				switch {
				case a.wrong:
					code = wrongCode(t, secret, now)
				case a.code == "-":
					code = ""
				case a.code != "":
					code = a.code
				}
				user := a.user
				if user == "" {
					user = "alice"
				}
				err := s.Verify(user, code, now)
				if a.want == nil {
					if err != nil {
						t.Fatalf("attempt %d: Verify = %v, want success", i, err)
					}
					continue
				}
				if !errors.Is(err, a.want) || !errors.Is(err, ErrNotProven) {
					t.Fatalf("attempt %d: Verify = %v, want %v", i, err, a.want)
				}
				if ValidCode(code) && strings.Contains(err.Error(), code) {
					t.Fatalf("attempt %d: error contains the code: %v", i, err)
				}
			}
		})
	}
}

func TestVerifyReplayPersists(t *testing.T) {
	s, path, key, secret := newStore(t)
	code := codeAt(t, secret, base)
	if err := s.Verify("alice", code, base); err != nil {
		t.Fatal(err)
	}
	// A new Store (a restarted or second process) refuses the code too.
	s2 := openStore(t, path, key)
	if err := s2.Verify("alice", code, base.Add(time.Second)); !errors.Is(err, ErrReplayedCode) {
		t.Fatalf("after reopen: Verify = %v, want ErrReplayedCode", err)
	}
	var sf storeFile
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sf); err != nil {
		t.Fatal(err)
	}
	if want := base.Unix() / 30; len(sf.Enrollments) != 1 || sf.Enrollments[0].LastStep != want || !sf.Enrollments[0].Confirmed {
		t.Fatalf("stored enrollment = %+v, want last_step %d, confirmed", sf.Enrollments, want)
	}
}

func TestVerifyConcurrentOneCode(t *testing.T) {
	s, path, key, secret := newStore(t)
	other := openStore(t, path, key) // a second "process" on the same file
	code := codeAt(t, secret, base)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		st := s
		if i%2 == 1 {
			st = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = st.Verify("alice", code, base)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrReplayedCode), errors.Is(err, ErrTooManyAttempts):
		default:
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent uses of one code succeeded, want exactly 1 (errors: %v)", ok, errs)
	}
}

func TestWrongKey(t *testing.T) {
	_, path, _, _ := newStore(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, newKey(t)); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "wrong encryption key") {
		t.Fatalf("Open with another key = %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("opening with another key changed the file")
	}

	// A store opened on a missing file, then the file is written with
	// another key: it fails closed and never overwrites the file.
	dir := t.TempDir()
	p := filepath.Join(dir, "mfa.json")
	mine := openStore(t, p, newKey(t))
	theirs := openStore(t, p, newKey(t))
	_, secret, err := theirs.Enroll("alice", "warden", base)
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.Verify("alice", codeAt(t, secret, base), base); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with wrong key = %v, want ErrUnavailable", err)
	}
	written, _ := os.ReadFile(p)
	if _, _, err := mine.Enroll("bob", "warden", base); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Enroll with wrong key = %v, want ErrUnavailable", err)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(after, written) {
		t.Fatal("a store with the wrong key overwrote the file")
	}
	if err := mine.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy = %v", err)
	}
	if _, err := mine.List(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("List = %v", err)
	}
}

func TestCiphertextMovedToAnotherUser(t *testing.T) {
	s, path, key, aliceSecret := newStore(t)
	if _, _, err := s.Enroll("mallory", "warden", base); err != nil {
		t.Fatal(err)
	}
	// mallory, who can write the file, copies alice's sealed secret into
	// her own record... and the other way round is just as useless.
	editStore(t, path, func(sf *storeFile) {
		var aliceSealed string
		for _, r := range sf.Enrollments {
			if r.User == "alice" {
				aliceSealed = r.Secret
			}
		}
		for i := range sf.Enrollments {
			if sf.Enrollments[i].User == "mallory" {
				sf.Enrollments[i].Secret = aliceSealed
			}
		}
	})
	s = openStore(t, path, key) // the structure and key check are fine
	err := s.Verify("mallory", codeAt(t, aliceSecret, base), base)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotProven) || !strings.Contains(err.Error(), "mallory") {
		t.Fatalf("Verify with a moved secret = %v, want ErrUnavailable", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy = %v, want ErrUnavailable", err)
	}
	// alice's own record still works.
	if err := s.Verify("alice", codeAt(t, aliceSecret, base), base); err != nil {
		t.Fatalf("alice: %v", err)
	}
}

func editStore(t *testing.T, path string, edit func(*storeFile)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sf storeFile
	if err := json.Unmarshal(data, &sf); err != nil {
		t.Fatal(err)
	}
	edit(&sf)
	out, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptStore(t *testing.T) {
	tests := []struct {
		name string
		edit func(data []byte, sf *storeFile) []byte // returns the new file content
		want string
	}{
		{"not JSON", func([]byte, *storeFile) []byte { return []byte("{") }, "corrupt"},
		{"empty file", func([]byte, *storeFile) []byte { return nil }, "empty file"},
		{"trailing data", func(d []byte, _ *storeFile) []byte { return append(d, "{}"...) }, "trailing data"},
		{"unknown field", func(d []byte, _ *storeFile) []byte {
			return bytes.Replace(d, []byte(`"version"`), []byte(`"extra":1,"version"`), 1)
		}, "unknown field"},
		{"wrong version", func(_ []byte, sf *storeFile) []byte { sf.Version = 2; return marshal(sf) }, "unsupported version"},
		{"no key check", func(_ []byte, sf *storeFile) []byte { sf.KeyCheck = ""; return marshal(sf) }, "key_check"},
		{"duplicate user", func(_ []byte, sf *storeFile) []byte {
			sf.Enrollments = append(sf.Enrollments, sf.Enrollments[0])
			return marshal(sf)
		}, "duplicate user"},
		{"bad user", func(_ []byte, sf *storeFile) []byte { sf.Enrollments[0].User = "a b"; return marshal(sf) }, "user"},
		{"secret not base64", func(_ []byte, sf *storeFile) []byte { sf.Enrollments[0].Secret = "%%%"; return marshal(sf) }, "secret"},
		{"secret too short", func(_ []byte, sf *storeFile) []byte {
			sf.Enrollments[0].Secret = base64.StdEncoding.EncodeToString(make([]byte, 20))
			return marshal(sf)
		}, "secret"},
		{"negative last step", func(_ []byte, sf *storeFile) []byte { sf.Enrollments[0].LastStep = -1; return marshal(sf) }, "last_step"},
		{"no created_at", func(_ []byte, sf *storeFile) []byte { sf.Enrollments[0].CreatedAt = time.Time{}; return marshal(sf) }, "created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path, key, secret := newStore(t)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var sf storeFile
			if err := json.Unmarshal(data, &sf); err != nil {
				t.Fatal(err)
			}
			bad := tt.edit(data, &sf)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path, key); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want ErrUnavailable mentioning %q", err, tt.want)
			}
			// A store opened before the damage fails closed and leaves the file alone.
			if err := s.Verify("alice", codeAt(t, secret, base), base); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify = %v, want ErrUnavailable", err)
			}
			if _, _, err := s.Enroll("bob", "warden", base); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Enroll = %v, want ErrUnavailable", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
				t.Fatal("the damaged file was overwritten")
			}
		})
	}
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // test helper on test-built values
	}
	return b
}

func TestRateLimit(t *testing.T) {
	s, _, _, secret := newStore(t)
	now := base
	for i := range MaxFailures {
		if err := s.Verify("alice", wrongCode(t, secret, now), now); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Even the right code is refused now, and the wait is reported.
	err := s.Verify("alice", codeAt(t, secret, now), now)
	if !errors.Is(err, ErrTooManyAttempts) || !errors.Is(err, ErrNotProven) {
		t.Fatalf("after %d failures: %v, want ErrTooManyAttempts", MaxFailures, err)
	}
	if d, ok := RetryAfter(err); !ok || d <= 0 || d > FailureWindow {
		t.Fatalf("RetryAfter = %s, %v", d, ok)
	}
	// Other users are not affected.
	if _, bobSecret, err := s.Enroll("bob", "warden", base); err != nil {
		t.Fatal(err)
	} else if err := s.Verify("bob", codeAt(t, bobSecret, now), now); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// After the window, alice may try again.
	later := now.Add(FailureWindow)
	if err := s.Verify("alice", codeAt(t, secret, later), later); err != nil {
		t.Fatalf("after the window: %v", err)
	}

	// A success clears the failures.
	now = later.Add(Period)
	for range MaxFailures - 1 {
		_ = s.Verify("alice", wrongCode(t, secret, now), now)
	}
	if err := s.Verify("alice", codeAt(t, secret, now), now); err != nil {
		t.Fatal(err)
	}
	for i := range MaxFailures {
		if err := s.Verify("alice", wrongCode(t, secret, now), now); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("failure %d after a success: %v", i, err)
		}
	}
}

func TestLimiterInflightAndSweep(t *testing.T) {
	l := newLimiter(2, time.Minute)
	r1, err1 := l.begin("u", base)
	r2, err2 := l.begin("u", base)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := l.begin("u", base); !errors.Is(err, ErrTooManyAttempts) {
		t.Fatalf("third attempt in flight: %v", err)
	}
	r1(attemptAborted)
	r1(attemptFailed) // a second call is ignored
	r2(attemptOK)
	if len(l.users) != 0 {
		t.Fatalf("idle users kept: %d", len(l.users))
	}
	for i := range minSweep + 10 {
		r, err := l.begin(strconv.Itoa(i), base)
		if err != nil {
			t.Fatal(err)
		}
		r(attemptFailed)
	}
	// The map grew past the first threshold while every failure was recent:
	// nothing could go, and the threshold doubled.
	if len(l.users) != minSweep+10 || l.sweepAt < 2*minSweep {
		t.Fatalf("users %d, sweepAt %d", len(l.users), l.sweepAt)
	}
	// As if the map had grown past the threshold again, an hour later: the
	// sweep drops every expired failure.
	l.sweepAt = minSweep
	r, _ := l.begin("x", base.Add(time.Hour))
	r(attemptAborted)
	if len(l.users) != 0 || l.sweepAt != minSweep {
		t.Fatalf("after the sweep: %d users, sweepAt %d", len(l.users), l.sweepAt)
	}
}

func TestEnroll(t *testing.T) {
	s, path, _, secret := newStore(t)
	url, secret2, err := s.Enroll("spiffe://example.org/user/bob", "Acme AI", base)
	if err != nil {
		t.Fatal(err)
	}
	k, err := otp.NewKeyFromURL(url)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type() != "totp" || k.Issuer() != "Acme AI" || k.AccountName() != "spiffe://example.org/user/bob" ||
		k.Secret() != secret2 || k.Period() != 30 || k.Digits() != otp.DigitsSix || k.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("otpauth URL %q parses to %v %v %v %v %v", url, k.Issuer(), k.AccountName(), k.Period(), k.Digits(), k.Algorithm())
	}
	if len(secret2) != 32 { // 20 bytes in unpadded base32
		t.Fatalf("secret length %d", len(secret2))
	}

	// The file is private and holds no secret in clear.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(secret2)) {
		t.Fatal("a TOTP secret is stored in clear")
	}

	// Re-enrolling replaces the secret and resets the replay floor.
	if err := s.Verify("alice", codeAt(t, secret, base), base); err != nil {
		t.Fatal(err)
	}
	_, secret3, err := s.Enroll("alice", "warden", base)
	if err != nil {
		t.Fatal(err)
	}
	if secret3 == secret {
		t.Fatal("re-enrolling kept the secret")
	}
	if err := s.Verify("alice", codeAt(t, secret, base.Add(Period)), base.Add(Period)); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("old secret after re-enrolling: %v", err)
	}
	if err := s.Verify("alice", codeAt(t, secret3, base), base); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestEnrollInvalid(t *testing.T) {
	s, _, _, _ := newStore(t)
	tests := []struct{ name, user, issuer string }{
		{"empty user", "", "warden"},
		{"user with space", "a b", "warden"},
		{"user with control", "a\nb", "warden"},
		{"user too long", strings.Repeat("u", maxUserLen+1), "warden"},
		{"non-ASCII user", "jürgen", "warden"},
		{"empty issuer", "alice", ""},
		{"issuer with colon", "alice", "a:b"},
		{"issuer with newline", "alice", "a\nb"},
		{"issuer with leading space", "alice", " a"},
		{"issuer too long", "alice", strings.Repeat("i", maxIssuerLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Enroll(tt.user, tt.issuer, base); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Enroll(%q, %q) = %v, want ErrInvalidArgument", tt.user, tt.issuer, err)
			}
		})
	}
}

func TestListRemove(t *testing.T) {
	s, _, _, secret := newStore(t)
	if _, _, err := s.Enroll("bob", "warden", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify("alice", codeAt(t, secret, base), base); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].User != "alice" || list[1].User != "bob" {
		t.Fatalf("List = %+v", list)
	}
	step := base.Truncate(Period)
	if !list[0].Confirmed || !list[0].LastCodeAt.Equal(step) || !list[0].CreatedAt.Equal(base) {
		t.Fatalf("alice = %+v, want confirmed, last code at %s", list[0], step)
	}
	if list[1].Confirmed || !list[1].LastCodeAt.IsZero() {
		t.Fatalf("bob = %+v, want unconfirmed", list[1])
	}
	if err := s.Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("alice"); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("second Remove = %v", err)
	}
	if err := s.Remove("no one"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Remove(invalid) = %v", err)
	}
	if err := s.Verify("alice", codeAt(t, secret, base.Add(Period)), base.Add(Period)); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("Verify after Remove = %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyEmptyUser(t *testing.T) {
	s, _, _, secret := newStore(t)
	if err := s.Verify("", codeAt(t, secret, base), base); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("Verify(\"\") = %v", err)
	}
}
