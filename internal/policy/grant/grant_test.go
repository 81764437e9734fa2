package grant

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// approvedGrant is a valid stored grant, approved by bob.
func approvedGrant() Grant {
	return Grant{
		ID: "g_0123456789abcdef01234567", State: StateApproved, Principal: "alice", Action: "chat.completions",
		Segment: "inference", Duration: Duration(time.Hour), Reason: "incident 42",
		RequestedBy: "alice", RequestedAt: t0, DecideBy: t0.Add(DefaultPendingTTL),
		ApprovedBy: "bob", NotBefore: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Minute + time.Hour),
		History: []Event{
			{Step: StepRequest, By: "alice", At: t0, RequestID: "r1"},
			{Step: StepApprove, By: "bob", At: t0.Add(time.Minute), RequestID: "r2", Note: "ok"},
		},
	}
}

func doc(t *testing.T, gs ...Grant) []byte {
	t.Helper()
	b, err := Encode(gs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecode(t *testing.T) {
	edit := func(f func(*Grant)) Grant {
		g := approvedGrant()
		f(&g)
		return g
	}
	tests := []struct {
		name string
		data []byte
		want string // part of the error; "" means valid
	}{
		{"valid", doc(t, approvedGrant()), ""},
		{"empty store", []byte(`{"version":1,"grants":[]}`), ""},
		{"empty file", []byte("  \n"), "empty file"},
		{"not JSON", []byte("grants"), "corrupt"},
		{"unknown field", []byte(`{"version":1,"grants":[],"extra":1}`), "unknown field"},
		{"trailing data", []byte(`{"version":1,"grants":[]} {}`), "trailing data"},
		{"wrong version", []byte(`{"version":2,"grants":[]}`), "unsupported version 2"},
		{"duplicate id", doc(t, approvedGrant(), approvedGrant()), "duplicate id"},
		{"bad id", doc(t, edit(func(g *Grant) { g.ID = "g_XYZ" })), "id: must be"},
		{"self-approved", doc(t, edit(func(g *Grant) { g.ApprovedBy = "alice" })), "cannot be approved by its requester or its grantee"},
		{"approved by the grantee", doc(t, edit(func(g *Grant) { g.RequestedBy, g.History[0].By = "carol", "carol" })), ""},
		{"expiry extended by hand", doc(t, edit(func(g *Grant) { g.ExpiresAt = g.ExpiresAt.Add(time.Hour) })), "expires_at must be not_before + duration"},
		{"duration above the hard maximum", doc(t, edit(func(g *Grant) {
			g.Duration = Duration(8 * 24 * time.Hour)
			g.ExpiresAt = g.NotBefore.Add(g.Duration.D())
		})), "duration"},
		{"approved without approver", doc(t, edit(func(g *Grant) { g.ApprovedBy = "" })), "needs approved_by"},
		{"requested with an approval", doc(t, edit(func(g *Grant) { g.State = StateRequested })), "no approval"},
		{"unknown state", doc(t, edit(func(g *Grant) { g.State = "active" })), "state: unknown"},
		{"revoked without end", doc(t, edit(func(g *Grant) { g.State = StateRevoked })), "has an end"},
		{"revoked", doc(t, edit(func(g *Grant) { g.State, g.EndedBy, g.EndedAt = StateRevoked, "carol", t0.Add(2*time.Minute) })), ""},
		{"expired with ended_by", doc(t, edit(func(g *Grant) { g.State, g.EndedBy, g.EndedAt = StateExpired, "x", t0.Add(2*time.Hour) })), "no ended_by"},
		{"grant management action", doc(t, edit(func(g *Grant) { g.Action = "grant.approve" })), "grant management"},
		{"no history", doc(t, edit(func(g *Grant) { g.History = nil })), "history"},
		{"history not starting with the request", doc(t, edit(func(g *Grant) { g.History[0].By = "mallory" })), "first event is the request"},
		{"unknown step", doc(t, edit(func(g *Grant) { g.History[1].Step = "escalate" })), "step: unknown"},
		{"control character in reason", doc(t, edit(func(g *Grant) { g.Reason = "a\x00b" })), "control characters"},
		{"decide_by before request", doc(t, edit(func(g *Grant) { g.DecideBy = t0 })), "decide_by"},
		{"duration as number", []byte(`{"version":1,"grants":[{"id":"g_0123456789abcdef01234567","duration":3600}]}`), "duration must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	g := approvedGrant()
	g2 := approvedGrant()
	g2.ID, g2.RequestedAt = "g_ffffffffffffffffffffffff", t0.Add(-time.Hour)
	g2.DecideBy = g2.RequestedAt.Add(time.Hour)
	data := doc(t, g, g2)
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != g2.ID || !reflect.DeepEqual(got[1], g) {
		t.Fatalf("round trip: %+v", got)
	}
	again := doc(t, got...)
	if !bytes.Equal(again, data) {
		t.Fatalf("encoding is not stable:\n%s\n%s", data, again)
	}
}

func TestStatusAndAt(t *testing.T) {
	g := approvedGrant()
	if st := g.Status(g.ExpiresAt.Add(-time.Nanosecond)); st != StateApproved {
		t.Fatalf("before expiry: %s", st)
	}
	if st := g.Status(g.ExpiresAt); st != StateExpired {
		t.Fatalf("at expiry: %s", st)
	}
	a := g.At(g.ExpiresAt.Add(time.Hour))
	if a.State != StateExpired || !a.EndedAt.Equal(g.ExpiresAt) || g.State != StateApproved {
		t.Fatalf("At: %+v (original %s)", a, g.State)
	}
	a.History[0].By = "changed"
	if g.History[0].By != "alice" {
		t.Fatal("At shares the history with the original")
	}
	gw := g.Gateway()
	if gw.ID != g.ID || gw.ApprovedBy != "bob" || !gw.ExpiresAt.Equal(g.ExpiresAt) || gw.Principal != "alice" {
		t.Fatalf("Gateway: %+v", gw)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // part of the error; "" means parsed
		req  Request
	}{
		{"full", `{"principal":"svc","action":"*","segment":"training","resource":"trainer","duration":"90m","reason":"r"}`, "",
			Request{Principal: "svc", Action: "*", Segment: "training", Resource: "trainer", Duration: Duration(90 * time.Minute), Reason: "r"}},
		{"minimal", `{"action":"embeddings","segment":"inference","duration":"1h","reason":"r"}`, "",
			Request{Action: "embeddings", Segment: "inference", Duration: Duration(time.Hour), Reason: "r"}},
		{"unknown field", `{"action":"a","admin":true}`, "unknown field", Request{}},
		{"array", `[]`, "JSON object", Request{}},
		{"empty", ``, "JSON object", Request{}},
		{"trailing", `{"action":"a"} x`, "trailing data", Request{}},
		{"numeric duration", `{"duration":3600}`, "duration must be a string", Request{}},
		{"bad duration", `{"duration":"forever"}`, "want a number with a unit", Request{}},
		{"oversize", `{"reason":"` + strings.Repeat("a", MaxRequestBytes) + `"}`, "larger than", Request{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tc.body))
			if tc.want == "" {
				if err != nil || got != tc.req {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.req)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

func TestParseNote(t *testing.T) {
	for body, want := range map[string]string{"": "", " \n": "", `{"note":"looks fine"}`: "looks fine", `{}`: ""} {
		if got, err := ParseNote([]byte(body)); err != nil || got != want {
			t.Errorf("ParseNote(%q) = %q, %v", body, got, err)
		}
	}
	for _, body := range []string{`{"note":1}`, `{"reason":"x"}`, `"x"`, `{"note":"a\u0007b"}`} {
		if _, err := ParseNote([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseNote(%q) = %v, want ErrInvalid", body, err)
		}
	}
}

// FuzzDecode: the store parser never panics, and what it accepts survives
// an encode/decode round trip unchanged and holds the store's invariants.
func FuzzDecode(f *testing.F) {
	seed := approvedGrant()
	data, err := Encode([]Grant{seed})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"version":1,"grants":[]}`))
	f.Add([]byte(`{"version":1,"grants":[{"id":"g_0123456789abcdef01234567","state":"requested"}]}`))
	f.Add([]byte(`{"version":1,"grants":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		gs, err := Decode(data)
		if err != nil {
			return
		}
		for i := range gs {
			g := &gs[i]
			if g.ApprovedBy != "" && (g.ApprovedBy == g.RequestedBy || g.ApprovedBy == g.Principal) {
				t.Fatalf("self-approved grant accepted: %+v", g)
			}
			if g.Active(g.NotBefore) && g.ExpiresAt.Sub(g.NotBefore) > HardMaxDuration {
				t.Fatalf("grant longer than the hard maximum accepted: %+v", g)
			}
		}
		out, err := Encode(gs)
		if err != nil {
			t.Fatalf("accepted grants do not encode: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalizeNil(gs), normalizeNil(again)) {
			t.Fatalf("round trip changed the grants")
		}
	})
}

// normalizeNil makes nil and empty slices compare equal.
func normalizeNil(gs []Grant) []Grant {
	if len(gs) == 0 {
		return nil
	}
	return gs
}

// FuzzParseRequest: the request parser never panics; what it accepts and
// Validate passes re-encodes to the same request.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"principal":"svc","action":"*","segment":"training","resource":"trainer","duration":"90m","reason":"r"}`))
	f.Add([]byte(`{"action":"grant.approve","segment":"control","duration":"1h","reason":"x"}`))
	f.Add([]byte(`{"duration":"-1h"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if err := req.Validate(DefaultMaxDuration); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if strings.HasPrefix(req.Action, "grant.") || req.Duration.D() > DefaultMaxDuration || req.Duration.D() < MinDuration ||
			req.Duration.D()%time.Second != 0 {
			t.Fatalf("Validate accepted %+v", req)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRequest(b)
		if err != nil || back != req {
			t.Fatalf("round trip: %+v, %v (from %+v)", back, err, req)
		}
	})
}
