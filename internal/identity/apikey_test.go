package identity

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// A fixed, valid key for format tests (not a real credential).
const (
	testID     = "0123456789abcdef01234567"
	testSecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	testKey    = KeyPrefix + testID + "_" + testSecret
)

func TestKeyFormatConstants(t *testing.T) {
	if KeyIDLen != 24 || KeySecretLen != 43 || KeyLen != 71 || len(testKey) != KeyLen {
		t.Fatalf("KeyIDLen=%d KeySecretLen=%d KeyLen=%d len(testKey)=%d", KeyIDLen, KeySecretLen, KeyLen, len(testKey))
	}
}

func TestParseAPIKey(t *testing.T) {
	// A secret whose own alphabet contains '_' and '-' must still parse by position.
	underscoreSecret := "_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-A"
	tests := []struct {
		name       string
		in         string
		wantID     string
		wantSecret string
		ok         bool
	}{
		{"valid", testKey, testID, testSecret, true},
		{"valid underscores in secret", KeyPrefix + testID + "_" + underscoreSecret, testID, underscoreSecret, true},
		{"valid last char Q", KeyPrefix + testID + "_" + strings.Repeat("z", 42) + "Q", testID, strings.Repeat("z", 42) + "Q", true},
		{"empty", "", "", "", false},
		{"prefix only", KeyPrefix, "", "", false},
		{"wrong prefix", "wx_" + testID + "_" + testSecret, "", "", false},
		{"uppercase prefix", "WK_" + testID + "_" + testSecret, "", "", false},
		{"other vendor prefix", "sk-" + testID + "_" + testSecret, "", "", false},
		{"missing separator", KeyPrefix + testID + "-" + testSecret, "", "", false},
		{"id too short", KeyPrefix + testID[1:] + "_" + testSecret + "A", "", "", false},
		{"id too long", KeyPrefix + testID + "0_" + testSecret[1:], "", "", false},
		{"secret too short", KeyPrefix + testID + "_" + testSecret[1:], "", "", false},
		{"secret too long", testKey + "A", "", "", false},
		{"uppercase hex id", KeyPrefix + strings.ToUpper(testID) + "_" + testSecret, "", "", false},
		{"non-hex id", KeyPrefix + "0123456789abcdeg01234567" + "_" + testSecret, "", "", false},
		{"padding in secret", KeyPrefix + testID + "_" + testSecret[:42] + "=", "", "", false},
		{"std base64 char +", KeyPrefix + testID + "_" + "+" + testSecret[1:], "", "", false},
		{"std base64 char /", KeyPrefix + testID + "_" + "/" + testSecret[1:], "", "", false},
		{"non-canonical last char", KeyPrefix + testID + "_" + testSecret[:42] + "B", "", "", false},
		{"space inside", KeyPrefix + testID + "_" + testSecret[:20] + " " + testSecret[21:], "", "", false},
		{"leading space", " " + testKey[:KeyLen-1], "", "", false},
		{"trailing newline", testKey[:KeyLen-1] + "\n", "", "", false},
		{"NUL byte", KeyPrefix + testID + "_" + testSecret[:42] + "\x00", "", "", false},
		{"non-ASCII", KeyPrefix + testID + "_" + testSecret[:41] + "é", "", "", false},
		{"huge", strings.Repeat("A", 10<<20), "", "", false},
		{"huge with prefix", KeyPrefix + strings.Repeat("a", 1<<20), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, secret, err := ParseAPIKey(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseAPIKey: %v", err)
				}
				if id != tt.wantID || secret != tt.wantSecret {
					t.Fatalf("got (%q, %q), want (%q, %q)", id, secret, tt.wantID, tt.wantSecret)
				}
				return
			}
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("err = %v, want ErrMalformedKey", err)
			}
			if id != "" || secret != "" {
				t.Fatalf("got (%q, %q) with an error", id, secret)
			}
			if len(tt.in) >= 8 && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("error %q echoes the input", err)
			}
		})
	}
}

func TestNewKeyRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, secret, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		key := formatKey(id, secret)
		gotID, gotSecret, err := ParseAPIKey(key)
		if err != nil {
			t.Fatalf("generated key %d chars does not parse: %v", len(key), err)
		}
		if gotID != id || gotSecret != secret {
			t.Fatal("round trip changed the key")
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret does not decode to 32 bytes: %v", err)
		}
		if seen[id] || seen[secret] {
			t.Fatal("duplicate random value")
		}
		seen[id], seen[secret] = true, true
	}
}

func FuzzParseAPIKey(f *testing.F) {
	for _, s := range []string{
		"", testKey, "wk_", "wk__", testKey + "A", testKey[:KeyLen-1], testKey[:KeyLen-1] + "B",
		KeyPrefix + strings.ToUpper(testID) + "_" + testSecret, "Bearer " + testKey,
		strings.Repeat("_", KeyLen), KeyPrefix + strings.Repeat("f", KeyIDLen) + "_" + strings.Repeat("-", KeySecretLen),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseAPIKey(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("error does not wrap ErrMalformedKey: %v", err)
			}
			return
		}
		if formatKey(id, secret) != s {
			t.Fatalf("accepted %q but it does not re-assemble", s)
		}
		if !ValidKeyID(id) {
			t.Fatalf("accepted invalid id %q", id)
		}
		// The hand-written secret check must agree with the strict decoder.
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(secret)
		if derr != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != secret {
			t.Fatalf("accepted non-canonical secret %q: %v", secret, derr)
		}
	})
}

// FuzzValidSecretMatchesDecoder checks the allocation-free secret check
// against encoding/base64 on arbitrary 43-byte strings.
func FuzzValidSecretMatchesDecoder(f *testing.F) {
	f.Add(testSecret)
	f.Add(testSecret[:42] + "B")
	f.Add(strings.Repeat("_", 43))
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
		// The decoder skips '\r' and '\n' anywhere; a key has none.
		want := err == nil && len(raw) == 32 && !strings.ContainsAny(s, "\r\n")
		if got := validSecret(s); got != want {
			t.Fatalf("validSecret(%q) = %v, decoder says %v (%v)", s, got, want, err)
		}
	})
}
