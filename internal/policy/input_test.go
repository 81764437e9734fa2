package policy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestNewInput(t *testing.T) {
	ex := newExchange()
	ex.Start = time.Date(2025, 6, 7, 23, 30, 15, 999, time.FixedZone("CEST", 2*3600))
	ex.SourceIP = netip.MustParseAddr("::ffff:10.0.0.7")
	ex.Stream = true
	ex.Principal.OnBehalfOf = "alice@example.org"
	ex.Principal.ExpiresAt = time.Date(2025, 6, 8, 0, 0, 0, 0, time.UTC)
	in, err := NewInput(ex)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"principal":{"kind":"service","id":"spiffe://example.org/billing-bot","on_behalf_of":"alice@example.org",` +
		`"auth_method":"api_key","credential_id":"key_01","auth_time":"2025-06-02T09:59:00Z","expires_at":"2025-06-08T00:00:00Z",` +
		`"scopes":["inference:chat.completions"],"issuer":"","groups":[],"roles":[],"mfa":false,"workload":""},"action":"chat.completions",` +
		`"resource":{"route":"openai","segment":"inference","api":"openai","method":"POST","path":"/v1/chat/completions","model":"gpt-4o-mini","stream":true},` +
		`"context":{"time":"2025-06-07T21:30:15Z","unix":1749331815,"weekday":"Sat","hour":21,"source_ip":"10.0.0.7","request_id":"req_01","request_bytes":37}}`
	if string(got) != want {
		t.Errorf("NewInput JSON =\n%s\nwant\n%s", got, want)
	}
}

func TestNewInputRequestBytes(t *testing.T) {
	ex := newExchange()
	ex.Body = nil
	ex.Request = httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader("12345"))
	in, err := NewInput(ex)
	if err != nil {
		t.Fatal(err)
	}
	if in.Context.RequestBytes != 5 {
		t.Errorf("request_bytes before the body is read = %d, want Content-Length 5", in.Context.RequestBytes)
	}
	ex.Route, ex.Principal.Scopes = nil, nil
	if in, err = NewInput(ex); err != nil {
		t.Fatal(err)
	}
	v := in.Value().(ast.Object)
	if s := v.Get(ast.StringTerm("principal")).Value.(ast.Object).Get(ast.StringTerm("scopes")); s.String() != "[]" {
		t.Errorf("scopes of a principal without scopes = %v, want []", s)
	}
	ex.Principal = nil
	if _, err := NewInput(ex); err == nil || !strings.Contains(err.Error(), "no principal") {
		t.Errorf("NewInput without principal: err = %v", err)
	}
}

// TestValueMatchesJSON checks that the hand-built Rego value is the JSON
// encoding of the Input, so that eval, tests and the gateway agree.
func TestValueMatchesJSON(t *testing.T) {
	for _, expires := range []time.Time{{}, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)} {
		in := baseInput()
		in.Principal.OnBehalfOf = "alice"
		in.Principal.ExpiresAt = expires
		in.Resource.Stream = true
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			t.Fatal(err)
		}
		want, err := ast.InterfaceToValue(x)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.Value(); got.Compare(want) != 0 {
			t.Errorf("Value() =\n%v\nwant (from JSON)\n%v", got, want)
		}
	}
}

func TestParseInput(t *testing.T) {
	full := `{"principal":{"kind":"user","id":"alice","scopes":["inference:*"],"auth_time":"2025-06-02T09:00:00+02:00"},` +
		`"action":"models.list","resource":{"segment":"inference"},"context":{"time":"2025-06-02T10:00:00.5+02:00","unix":1,"hour":99}}`
	in, err := ParseInput(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	c := in.Context
	if c.Time.Format(time.RFC3339) != "2025-06-02T08:00:00Z" || c.Unix != 1748851200 || c.Hour != 8 || c.Weekday != "Mon" {
		t.Errorf("context = %+v, want derived from time in UTC", c)
	}
	if in.Principal.Scopes[0] != "inference:*" || in.Action != "models.list" {
		t.Errorf("input = %+v", in)
	}

	before := time.Now().Add(-time.Second)
	in, err = ParseInput(strings.NewReader(`{"action":"chat.completions"}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.Context.Time.Before(before) {
		t.Errorf("context.time = %v, want now when absent", in.Context.Time)
	}

	for _, bad := range []string{
		``,
		`[]`,
		`{"actoin":"typo"}`,
		`{"principal":{"auth_time":"yesterday"}}`,
		`{"context":{"unix":"1"}}`,
		`{} {}`,
		`{"action":"x"} trailing`,
		`{"resource":{"stream":"yes"}}`,
	} {
		if _, err := ParseInput(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseInput(%q): no error", bad)
		}
	}
	if _, err := ParseInput(strings.NewReader(`{"action":"` + strings.Repeat("a", maxInputBytes) + `"}`)); err == nil {
		t.Error("ParseInput of an oversized document: no error")
	}
}
