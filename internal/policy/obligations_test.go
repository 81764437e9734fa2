package policy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
)

func TestEnforceObligations(t *testing.T) {
	tests := []struct {
		name        string
		d           gateway.Decision
		wantChanged bool
		wantAllow   bool
		wantReasons []string
	}{
		{"allow without obligations", gateway.Decision{Allow: true, Reasons: []string{"ok"}}, false, true, []string{"ok"}},
		{"allow with unknown obligations",
			gateway.Decision{Allow: true, Reasons: []string{"ok"}, Obligations: map[string]any{"rate": "low", "cap": true, "mask": map[string]any{}}},
			true, false, []string{"unsupported obligation: cap", "unsupported obligation: rate"}},
		{"allow with known obligations only",
			gateway.Decision{Allow: true, Reasons: []string{"ok"}, Obligations: map[string]any{"mask": map[string]any{}, "max_tokens": json.Number("5")}},
			false, true, []string{"ok"}},
		{"deny with obligations stays as is",
			gateway.Decision{Reasons: []string{"no"}, Obligations: map[string]any{"mfa": true}}, false, false, []string{"no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.d
			if changed := EnforceObligations(&d); changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if d.Allow != tt.wantAllow || !slices.Equal(d.Reasons, tt.wantReasons) {
				t.Errorf("decision = %+v, want allow %v reasons %q", d, tt.wantAllow, tt.wantReasons)
			}
			if len(d.Obligations) != len(tt.d.Obligations) {
				t.Error("obligations were dropped; the audit record needs them")
			}
		})
	}
	if EnforceObligations(nil) {
		t.Error("EnforceObligations(nil) reported a change")
	}
}

func TestDenyUnenforced(t *testing.T) {
	enforced := func(k string) bool { return k == ObligationMaxTokens }
	d := gateway.Decision{Allow: true, Reasons: []string{"ok"},
		Obligations: map[string]any{"max_tokens": json.Number("5"), "rate_class": "bulk", "mask": map[string]any{"pii": "mask"}}}
	if !DenyUnenforced(&d, enforced) {
		t.Fatal("DenyUnenforced did not deny")
	}
	want := []string{"unsupported obligation: mask (not enabled on this gateway)", "unsupported obligation: rate_class (not enabled on this gateway)"}
	if d.Allow || !slices.Equal(d.Reasons, want) {
		t.Errorf("decision = %+v, want deny with %q", d, want)
	}
	d = gateway.Decision{Allow: true, Reasons: []string{"ok"}, Obligations: map[string]any{"max_tokens": json.Number("5")}}
	if DenyUnenforced(&d, enforced) || !d.Allow {
		t.Errorf("enforced obligation denied: %+v", d)
	}
}

func TestCheckObligations(t *testing.T) {
	tests := []struct {
		name string
		obl  map[string]any
		err  string
	}{
		{"none", nil, ""},
		{"all valid", map[string]any{
			"mask": map[string]any{"pii": "mask", "email": "hash", "secret": "block"}, "max_tokens": json.Number("256"),
			"require_mfa": true, "rate_class": "bulk.low-1", "audit_level": "standard"}, ""},
		{"empty mask", map[string]any{"mask": map[string]any{}}, ""},
		{"max_tokens 256.0", map[string]any{"max_tokens": json.Number("256.0")}, ""},
		{"max_tokens at the bound", map[string]any{"max_tokens": json.Number("9007199254740992")}, ""},
		{"unknown kinds are not checked", map[string]any{"cap": "anything"}, ""},
		{"max_tokens past the bound", map[string]any{"max_tokens": json.Number("9007199254740993")}, "positive integer up to"},
		{"max_tokens boolean", map[string]any{"max_tokens": true}, "got boolean"},
		{"mask null", map[string]any{"mask": nil}, "got null"},
		{"mask value number", map[string]any{"mask": map[string]any{"pii": json.Number("1")}}, "pii: want"},
		{"rate_class empty", map[string]any{"rate_class": ""}, "class name"},
		{"audit_level boolean", map[string]any{"audit_level": true}, "got true"},
		{"first error in sorted order", map[string]any{"rate_class": 1, "audit_level": 1}, "obligation audit_level"},
	}
	for _, tt := range tests {
		err := checkObligations(tt.obl)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: checkObligations = %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestEnforceMaxTokens(t *testing.T) {
	tests := []struct {
		name, action, method, body string
		value                      any
		wantBody, wantApplied      string
		wantStatus                 int // 0: no error
	}{
		{name: "lowers", action: "chat.completions", body: `{"model":"m","max_tokens":4096}`, value: json.Number("256"),
			wantBody: `{"model":"m","max_tokens":256}`, wantApplied: "max_tokens:256:lowered"},
		{name: "keeps a smaller request", action: "chat.completions", body: `{"model":"m","max_completion_tokens":10}`, value: json.Number("256"),
			wantBody: `{"model":"m","max_completion_tokens":10}`, wantApplied: "max_tokens:256:kept"},
		{name: "sets chat max_completion_tokens", action: "chat.completions", body: `{"model":"m"}`, value: json.Number("256"),
			wantBody: `{"max_completion_tokens":256,"model":"m"}`, wantApplied: "max_tokens:256:set"},
		{name: "sets completions max_tokens", action: "completions", body: `{"model":"m"}`, value: json.Number("99"),
			wantBody: `{"max_tokens":99,"model":"m"}`, wantApplied: "max_tokens:99:set"},
		{name: "sets responses max_output_tokens", action: "responses", body: `{"model":"m"}`, value: json.Number("5"),
			wantBody: `{"max_output_tokens":5,"model":"m"}`, wantApplied: "max_tokens:5:set"},
		{name: "embeddings: nothing to set", action: "embeddings", body: `{"model":"m","input":"x"}`, value: json.Number("5"),
			wantBody: `{"model":"m","input":"x"}`, wantApplied: "max_tokens:5:kept"},
		{name: "generic route: lowers what is there", action: "http.post", body: `{"max_tokens":"lots"}`, value: json.Number("5"),
			wantBody: `{"max_tokens":5}`, wantApplied: "max_tokens:5:lowered"},
		{name: "no body", action: "models.list", method: http.MethodGet, value: json.Number("5"), wantApplied: "max_tokens:5:no_body"},
		{name: "body not JSON is refused", action: "http.post", body: `max_tokens=99999`, value: json.Number("5"), wantStatus: 403},
		{name: "malformed value is an internal fault", action: "chat.completions", body: `{}`, value: "5", wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ex := newExchange()
			ex.Action = tt.action
			ex.Request = httptest.NewRequest(method, "/v1/x", strings.NewReader(tt.body))
			ex.Request.Header.Set("Content-Length", strconv.Itoa(len(tt.body)))
			ex.Body = nil
			if tt.body != "" {
				ex.Body = []byte(tt.body)
			}
			err := EnforceMaxTokens(ex, tt.value)
			if tt.wantStatus != 0 {
				if err == nil || gateway.AsError(err).Status != tt.wantStatus {
					t.Fatalf("EnforceMaxTokens = %v, want status %d", err, tt.wantStatus)
				}
				if string(ex.Body) != tt.body {
					t.Errorf("body changed on refusal: %s", ex.Body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(ex.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", ex.Body, tt.wantBody)
			}
			if tt.body != "" {
				if ex.Request.ContentLength != int64(len(ex.Body)) || ex.Request.Header.Get("Content-Length") != strconv.Itoa(len(ex.Body)) {
					t.Errorf("Content-Length %d / %q, body %d bytes", ex.Request.ContentLength, ex.Request.Header.Get("Content-Length"), len(ex.Body))
				}
			}
			limit, _ := strconv.ParseInt(string(tt.value.(json.Number)), 10, 64)
			if ex.Obligations.MaxTokens != limit || !slices.Equal(ex.Obligations.Applied, []string{tt.wantApplied}) {
				t.Errorf("obligations = %+v, want MaxTokens %d, Applied [%s]", ex.Obligations, limit, tt.wantApplied)
			}
		})
	}
}

func TestEnforceAuditLevel(t *testing.T) {
	for _, tt := range []struct {
		value     any
		wantLevel string
		wantErr   bool
	}{
		{"full", "full", false},
		{"standard", "", false},
		{"verbose", "", true},
		{true, "", true},
	} {
		ex := newExchange()
		err := EnforceAuditLevel(ex, tt.value)
		if (err != nil) != tt.wantErr || ex.Obligations.AuditLevel != tt.wantLevel {
			t.Errorf("EnforceAuditLevel(%v) = %v, level %q; want error %v, level %q", tt.value, err, ex.Obligations.AuditLevel, tt.wantErr, tt.wantLevel)
		}
		if !tt.wantErr && !slices.Equal(ex.Obligations.Applied, []string{"audit_level:" + tt.value.(string)}) {
			t.Errorf("Applied = %q", ex.Obligations.Applied)
		}
	}
}
