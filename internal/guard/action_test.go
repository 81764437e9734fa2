package guard_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
)

var tenantKey = []byte("tenant-a-secret-key")

func mustPolicy(t testing.TB, rules map[string]string, key []byte) *guard.Policy {
	t.Helper()
	p, err := guard.NewPolicy(rules, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPolicy(t *testing.T) {
	tests := []struct {
		name    string
		rules   map[string]string
		key     []byte
		wantErr string
	}{
		{"mask", map[string]string{"pii": "mask"}, nil, ""},
		{"hash with key", map[string]string{"email": "hash"}, tenantKey, ""},
		{"hash without key", map[string]string{"email": "hash"}, nil, "needs a tenant key"},
		{"unknown action", map[string]string{"pii": "redact"}, nil, "unknown action"},
		{"empty name", map[string]string{"": "mask"}, nil, "empty"},
		{"none", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := guard.NewPolicy(tt.rules, tt.key)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestActionFor(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask", "payment_card": "block", "secret": "hash"}, tenantKey)
	tests := []struct {
		typ, class string
		want       guard.Action
	}{
		{"email", "pii", guard.ActionMask},
		{"payment_card", "pii", guard.ActionBlock}, // the type's rule beats the class's
		{"aws_access_key", "secret", guard.ActionHash},
		{"prompt_injection", "injection", guard.ActionFlag},
	}
	for _, tt := range tests {
		if got := p.ActionFor(guard.Finding{Type: tt.typ, Class: tt.class}); got != tt.want {
			t.Errorf("ActionFor(%s/%s) = %v, want %v", tt.typ, tt.class, got, tt.want)
		}
	}
	var nilPolicy *guard.Policy
	if got := nilPolicy.ActionFor(guard.Finding{Type: "email", Class: "pii"}); got != guard.ActionFlag {
		t.Errorf("nil policy: %v", got)
	}
}

// redact scans text with DLP and applies p.
func redact(t *testing.T, p *guard.Policy, text string) (string, []guard.Finding, error) {
	t.Helper()
	fs, err := guard.ScanBody(dlp.New(), guard.FormatText, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	out, err := guard.RedactBody(p, guard.FormatText, []byte(text), fs)
	return string(out), fs, err
}

func TestRedactText(t *testing.T) {
	tests := []struct {
		name    string
		rules   map[string]string
		text    string
		want    string // a regexp the output must match entirely
		blocked string // the type that blocks, if any
	}{
		{"mask", map[string]string{"pii": "mask"}, "mail jane@example.com now", `mail \[EMAIL\] now`, ""},
		{"hash", map[string]string{"email": "hash"}, "mail jane@example.com now", `mail \[EMAIL:[0-9a-f]{8}\] now`, ""},
		{"flag only", map[string]string{"secret": "mask"}, "mail jane@example.com now", `mail jane@example\.com now`, ""},
		{"block", map[string]string{"pii": "mask", "payment_card": "block"}, "jane@example.com 4111 1111 1111 1111", ``, "payment_card"},
		{"two types", map[string]string{"pii": "mask"}, "+44 20 7946 0958 / 10.0.0.1", `\[PHONE\] / \[IPV4\]`, ""},
		{"nothing found", map[string]string{"pii": "block"}, "plain words only", `plain words only`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, fs, err := redact(t, mustPolicy(t, tt.rules, tenantKey), tt.text)
			if tt.blocked != "" {
				var be *guard.BlockedError
				if !errors.As(err, &be) || !errors.Is(err, guard.ErrBlocked) || be.Finding.Type != tt.blocked {
					t.Fatalf("err = %v, want a block on %s", err, tt.blocked)
				}
				if strings.Contains(err.Error(), "4111") {
					t.Fatalf("the error carries the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile("^" + tt.want + "$").MatchString(out) {
				t.Fatalf("got %q, want /%s/", out, tt.want)
			}
			for _, f := range fs {
				if f.Action == guard.ActionFlag && strings.Contains(tt.want, strings.ToUpper(f.Type)) {
					t.Errorf("finding %+v not acted on", f)
				}
			}
		})
	}
}

// TestHashTokens: the same value gives the same token in a tenant whatever
// its formatting; another tenant's key gives another token.
func TestHashTokens(t *testing.T) {
	rules := map[string]string{"pii": "hash"}
	a := mustPolicy(t, rules, tenantKey)
	b := mustPolicy(t, rules, []byte("tenant-b-secret-key"))
	token := func(p *guard.Policy, text string) string {
		out, _, err := redact(t, p, text)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := [][2]string{
		{"4111 1111 1111 1111", "4111-1111-1111-1111"},
		{"Jane.Roe@Example.com", "jane.roe@example.com"},
		{"DE89 3704 0044 0532 0130 00", "DE89370400440532013000"},
	}
	for _, s := range same {
		if x, y := token(a, s[0]), token(a, s[1]); x != y {
			t.Errorf("%q → %s but %q → %s", s[0], x, s[1], y)
		}
		if x, y := token(a, s[0]), token(b, s[0]); x == y {
			t.Errorf("two tenants give %s for %q", x, s[0])
		}
	}
	if x, y := token(a, "jane@example.com"), token(a, "john@example.com"); x == y {
		t.Errorf("two addresses give the same token %s", x)
	}
}

func TestFindingGateway(t *testing.T) {
	f := guard.Finding{Guard: "dlp", Type: "email", Class: "pii", Start: 3, End: 19, Score: 0.95, Action: guard.ActionHash}
	want := gateway.Finding{Guard: "dlp", Type: "email", Class: "pii", Where: "request", Start: 3, End: 19, Score: 0.95, Action: "hashed"}
	if got := f.Gateway(guard.WhereRequest); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := guard.AppendGateway(nil, guard.WhereResponse, []guard.Finding{f}); len(got) != 1 || got[0].Where != "response" {
		t.Fatalf("AppendGateway: %+v", got)
	}
}

func TestApplyOverlaps(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	text := []byte("0123456789abcdef")
	fs := []guard.Finding{
		{Type: "a", Class: "pii", Start: 2, End: 6},
		{Type: "b", Class: "pii", Start: 4, End: 9}, // overlaps a: one placeholder for both
		{Type: "c", Class: "other", Start: 10, End: 12},
		{Type: "d", Class: "pii", Start: 14, End: 99}, // beyond the text: clipped
	}
	if err := p.Decide(fs); err != nil {
		t.Fatal(err)
	}
	if got, want := string(p.Apply(nil, text, fs)), "01[A]9abcd[D]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
