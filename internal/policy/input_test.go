package policy

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/warden-ai/warden/internal/gateway"
)

// fullExchange is an exchange with every part of the input filled in.
func fullExchange(t *testing.T) (*gateway.Exchange, InputOptions) {
	t.Helper()
	ex := newExchange()
	ex.Start = time.Date(2025, 6, 7, 23, 30, 15, 999, time.FixedZone("CEST", 2*3600))
	ex.SourceIP = netip.MustParseAddr("::ffff:10.0.0.7")
	ex.Stream = true
	ex.Tool = "search"
	ex.Body = []byte(`{"model":"gpt-4o-mini","max_tokens":512,"max_completion_tokens":"1024","messages":[]}`)
	ex.Principal.OnBehalfOf = "alice@example.org"
	ex.Principal.AuthTime = time.Date(2025, 6, 2, 9, 59, 0, 500, time.UTC)
	ex.Principal.ExpiresAt = time.Date(2025, 6, 8, 0, 0, 0, 0, time.UTC)
	ex.Principal.Groups = []string{"ml-team"}
	ex.Principal.Roles = []string{"approver"}
	ex.Principal.MFA = true
	ex.Assessment = &gateway.Assessment{
		Posture:       map[string]any{"managed": true, "os": map[string]any{"name": "macOS", "patch": 3}},
		PostureSource: "header",
		Risk:          0.35,
		Geo:           &gateway.Geo{Country: "DE", City: "Berlin", ASN: 3320, Org: "Deutsche Telekom AG"},
	}
	ex.Findings = []gateway.Finding{
		{Guard: "dlp", Type: "email", Class: "pii"},
		{Guard: "dlp", Type: "aws_access_key", Class: "secret"},
		{Guard: "dlp", Type: "email", Class: "pii"},
	}
	ex.Usage.PromptTokens = 42
	ex.Grants = []gateway.Grant{{ID: "g1", Principal: ex.Principal.ID, Action: "*", Segment: "training",
		Resource: "datasets", Reason: "incident 42", RequestedBy: "bob", ApprovedBy: "carol",
		ExpiresAt: time.Date(2025, 6, 8, 1, 0, 0, 0, time.UTC)}}
	ex.Sanctions = []string{"throttle"}
	loc, err := LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	nets, err := NewNetworks(map[string][]string{"corp": {"10.0.0.0/8"}, "all": {"0.0.0.0/0"}, "lab": {"192.168.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	return ex, InputOptions{Location: loc, Networks: nets}
}

func TestNewInput(t *testing.T) {
	ex, opts := fullExchange(t)
	in, err := NewInput(ex, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"principal":{"kind":"service","id":"spiffe://example.org/billing-bot","on_behalf_of":"alice@example.org",` +
		`"auth_method":"api_key","credential_id":"key_01","auth_time":"2025-06-02T09:59:00Z","expires_at":"2025-06-08T00:00:00Z",` +
		`"scopes":["inference:chat.completions"],"issuer":"","groups":["ml-team"],"roles":["approver"],"mfa":true,"workload":""},` +
		`"action":"chat.completions",` +
		`"resource":{"route":"openai","segment":"inference","api":"openai","method":"POST","path":"/v1/chat/completions","model":"gpt-4o-mini","stream":true,"tool":"search","arguments":{}},` +
		`"context":{"time":"2025-06-07T21:30:15Z","unix":1749331815,"weekday":"Sat","hour":21,` +
		`"timezone":"Europe/Berlin","local_time":"2025-06-07T23:30:15+02:00","local_weekday":"Sat","local_hour":23,` +
		`"source_ip":"10.0.0.7","networks":["all","corp"],` +
		`"geo":{"country":"DE","city":"Berlin","asn":3320,"org":"Deutsche Telekom AG"},` +
		`"posture":{"managed":true,"os":{"name":"macOS","patch":3}},"posture_source":"header","risk":0.35,` +
		`"data_classes":["pii","secret"],"finding_types":["aws_access_key","email"],` +
		`"request_id":"req_01","request_bytes":85,"tokens":{"prompt":42,"max":1024}},` +
		`"grants":[{"id":"g1","action":"*","segment":"training","resource":"datasets","requested_by":"bob","approved_by":"carol","expires_at":"2025-06-08T01:00:00Z"}],"sanctions":["throttle"]}`
	if string(got) != want {
		t.Errorf("NewInput JSON =\n%s\nwant\n%s", got, want)
	}
}

// TestNewInputEmpty: an exchange with nothing beyond identity and route
// still has every field, with "", 0, [] and {}.
func TestNewInputEmpty(t *testing.T) {
	ex := newExchange()
	ex.Body = nil
	ex.SourceIP = netip.Addr{}
	in, err := NewInput(ex, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"timezone":"UTC","local_time":"2025-06-02T10:00:00Z","local_weekday":"Mon","local_hour":10`,
		`"source_ip":"","networks":[],"geo":{"country":"","city":"","asn":0,"org":""},"posture":{},"posture_source":"","risk":0,`,
		`"data_classes":[],"finding_types":[]`,
		`"tokens":{"prompt":0,"max":0}`,
		`"grants":[]`,
		`"tool":""`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("NewInput JSON lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "expires_at") {
		t.Errorf("expires_at present for a credential that does not expire:\n%s", got)
	}
}

func TestNewInputErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*gateway.Exchange)
		want string
	}{
		{"no principal", func(ex *gateway.Exchange) { ex.Principal = nil }, "no principal"},
		{"no request", func(ex *gateway.Exchange) { ex.Request = nil }, "no request"},
		{"risk above 1", func(ex *gateway.Exchange) { ex.Assessment = &gateway.Assessment{Risk: 1.5} }, "outside 0..1"},
		{"risk NaN", func(ex *gateway.Exchange) { ex.Assessment = &gateway.Assessment{Risk: math.NaN()} }, "outside 0..1"},
		{"posture without JSON form", func(ex *gateway.Exchange) {
			ex.Assessment = &gateway.Assessment{Posture: map[string]any{"f": func() {}}}
		}, "context.posture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := newExchange()
			tt.edit(ex)
			_, err := NewInput(ex, InputOptions{})
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewInput: err = %v, want ErrInput containing %q", err, tt.want)
			}
		})
	}
}

func TestNewInputRequestBytes(t *testing.T) {
	ex := newExchange()
	ex.Body = nil
	ex.Request = httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader("12345"))
	in, err := NewInput(ex, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Context.RequestBytes != 5 || in.Context.Tokens.Max != 0 {
		t.Errorf("before the body is read: request_bytes %d (want Content-Length 5), tokens.max %d (want 0)",
			in.Context.RequestBytes, in.Context.Tokens.Max)
	}
	ex.Route, ex.Principal.Scopes = nil, nil
	if in, err = NewInput(ex, InputOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	if s := v.(ast.Object).Get(ast.StringTerm("principal")).Value.(ast.Object).Get(ast.StringTerm("scopes")); s.String() != "[]" {
		t.Errorf("scopes of a principal without scopes = %v, want []", s)
	}
}

func TestNewInputTimezone(t *testing.T) {
	tests := []struct {
		zone                      string
		start                     time.Time
		wantLocal, wantDay        string
		wantHour, wantUTCHour     int
		wantUTCDay, wantLocalZone string
	}{
		{"UTC", time.Date(2025, 6, 2, 23, 0, 0, 0, time.UTC), "2025-06-02T23:00:00Z", "Mon", 23, 23, "Mon", "UTC"},
		{"Europe/Berlin", time.Date(2025, 6, 2, 23, 0, 0, 0, time.UTC), "2025-06-03T01:00:00+02:00", "Tue", 1, 23, "Mon", "Europe/Berlin"},
		{"Europe/Berlin", time.Date(2025, 1, 2, 23, 0, 0, 0, time.UTC), "2025-01-03T00:00:00+01:00", "Fri", 0, 23, "Thu", "Europe/Berlin"},
		{"America/Los_Angeles", time.Date(2025, 6, 2, 3, 0, 0, 0, time.UTC), "2025-06-01T20:00:00-07:00", "Sun", 20, 3, "Mon", "America/Los_Angeles"},
		{"Asia/Kolkata", time.Date(2025, 6, 2, 20, 0, 0, 0, time.UTC), "2025-06-03T01:30:00+05:30", "Tue", 1, 20, "Mon", "Asia/Kolkata"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.start.Format(time.RFC3339), func(t *testing.T) {
			loc, err := LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			ex := newExchange()
			ex.Start = tt.start
			in, err := NewInput(ex, InputOptions{Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			c := in.Context
			v, err := in.Value()
			if err != nil {
				t.Fatal(err)
			}
			local := v.(ast.Object).Get(ast.StringTerm("context")).Value.(ast.Object).Get(ast.StringTerm("local_time")).Value
			if local.Compare(ast.String(tt.wantLocal)) != 0 || c.LocalWeekday != tt.wantDay || c.LocalHour != tt.wantHour ||
				c.Hour != tt.wantUTCHour || c.Weekday != tt.wantUTCDay || c.Timezone != tt.wantLocalZone {
				t.Errorf("context = local %v %s %d, utc %s %d, zone %s; want local %s %s %d, utc %s %d, zone %s",
					local, c.LocalWeekday, c.LocalHour, c.Weekday, c.Hour, c.Timezone,
					tt.wantLocal, tt.wantDay, tt.wantHour, tt.wantUTCDay, tt.wantUTCHour, tt.wantLocalZone)
			}
		})
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus_Mons", "../etc/passwd"} {
		if _, err := LoadLocation(bad); err == nil {
			t.Errorf("LoadLocation(%q): no error", bad)
		}
	}
}

// TestValueMatchesJSON checks that the hand-built Rego value is the JSON
// encoding of the Input, so that eval, tests and the gateway agree.
func TestValueMatchesJSON(t *testing.T) {
	full, opts := fullExchange(t)
	fullIn, err := NewInput(full, opts)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := NewInput(newExchange(), InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noExpiry := fullIn
	noExpiry.Principal.ExpiresAt = time.Time{}
	bigNumbers := fullIn
	bigNumbers.Context.Tokens = TokensInput{Prompt: 1 << 40, Max: math.MaxInt64}
	bigNumbers.Context.Risk = 1e-9
	bigNumbers.Context.Geo.ASN = math.MaxUint32
	for name, in := range map[string]Input{"full": fullIn, "empty": empty, "no expiry": noExpiry, "big numbers": bigNumbers} {
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.UseNumber() // exact numbers, as OPA reads JSON
			var x any
			if err := dec.Decode(&x); err != nil {
				t.Fatal(err)
			}
			want, err := ast.InterfaceToValue(x)
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.Value()
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("Value() =\n%v\nwant (from JSON)\n%v", got, want)
			}
			// The same document read back by ParseInput gives the same value.
			back, err := ParseInput(strings.NewReader(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			bv, err := back.Value()
			if err != nil {
				t.Fatal(err)
			}
			if bv.Compare(want) != 0 {
				t.Errorf("ParseInput(JSON).Value() =\n%v\nwant\n%v", bv, want)
			}
		})
	}
}

func TestParseInput(t *testing.T) {
	full := `{"principal":{"kind":"user","id":"alice","scopes":["inference:*"],"auth_time":"2025-06-02T09:00:00.7+02:00"},` +
		`"action":"models.list","resource":{"segment":"inference","tool":"search"},` +
		`"context":{"time":"2025-06-02T10:00:00.5+02:00","unix":1,"hour":99,"timezone":"America/New_York","local_hour":3,` +
		`"networks":["vpn","corp","vpn"],"data_classes":["secret","pii"],"risk":0.5,"posture":{"n":1.50},"tokens":{"max":300}},` +
		`"grants":[{"id":"g","expires_at":"2025-06-02T12:00:00.9Z"}]}`
	in, err := ParseInput(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	c := in.Context
	if c.Time.Format(time.RFC3339) != "2025-06-02T08:00:00Z" || c.Unix != 1748851200 || c.Hour != 8 || c.Weekday != "Mon" {
		t.Errorf("context = %+v, want derived from time in UTC", c)
	}
	if c.LocalTime.Format(time.RFC3339) != "2025-06-02T04:00:00-04:00" || c.LocalHour != 4 || c.LocalWeekday != "Mon" {
		t.Errorf("local = %v %d %s, want derived from time in America/New_York", c.LocalTime, c.LocalHour, c.LocalWeekday)
	}
	if !slices.Equal(c.Networks, []string{"corp", "vpn"}) || !slices.Equal(c.DataClasses, []string{"pii", "secret"}) {
		t.Errorf("lists not sorted and unique: %q %q", c.Networks, c.DataClasses)
	}
	if in.Principal.AuthTime.Format(time.RFC3339Nano) != "2025-06-02T07:00:00Z" || in.Grants[0].ExpiresAt.Format(time.RFC3339Nano) != "2025-06-02T12:00:00Z" {
		t.Errorf("times not truncated to the second in UTC: %v %v", in.Principal.AuthTime, in.Grants[0].ExpiresAt)
	}
	if in.Principal.Scopes[0] != "inference:*" || in.Action != "models.list" || in.Resource.Tool != "search" || c.Tokens.Max != 300 {
		t.Errorf("input = %+v", in)
	}
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	if p := v.(ast.Object).Get(ast.StringTerm("context")).Value.(ast.Object).Get(ast.StringTerm("posture")); p.String() != `{"n": 1.50}` {
		t.Errorf("posture = %v, want the number as written", p)
	}

	before := time.Now().Add(-time.Second)
	in, err = ParseInput(strings.NewReader(`{"action":"chat.completions"}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.Context.Time.Before(before) || in.Context.Timezone != "UTC" {
		t.Errorf("context.time = %v, timezone %q; want now and UTC when absent", in.Context.Time, in.Context.Timezone)
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
		`{"context":{"timezone":"Mars/Base"}}`,
		`{"context":{"timezone":"Local"}}`,
		`{"context":{"risk":1.01}}`,
		`{"context":{"risk":-0.1}}`,
		`{"context":{"tokens":{"max":-1}}}`,
		`{"context":{"geo":{"asn":-1}}}`,
		`{"context":{"geo":{"region":"x"}}}`,
		`{"grants":[{"principal":"x"}]}`,
		`{"context":{"posture":[1]}}`,
	} {
		if _, err := ParseInput(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseInput(%q): no error", bad)
		}
	}
	if _, err := ParseInput(strings.NewReader(`{"action":"` + strings.Repeat("a", maxInputBytes) + `"}`)); err == nil {
		t.Error("ParseInput of an oversized document: no error")
	}
}

// TestQuickstartTestInput keeps the input document the quickstart's Rego
// tests use the one the gateway builds for the same request.
func TestQuickstartTestInput(t *testing.T) {
	rs, err := rego.New(
		rego.Query("data.warden.authz_test.request"),
		rego.Load([]string{quickstart}, func(_ string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && !strings.HasSuffix(info.Name(), ".rego")
		}),
	).Eval(context.Background())
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("evaluating the test's request: %v, %v", rs, err)
	}
	want, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	ex := newExchange()
	ex.Body = nil
	ex.Request.ContentLength = 128
	in, err := NewInput(ex, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	if got.Compare(want) != 0 {
		t.Errorf("the gateway builds\n%v\nthe quickstart tests use\n%v", got, want)
	}
}
