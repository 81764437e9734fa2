package policy

import (
	"slices"
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
			gateway.Decision{Allow: true, Reasons: []string{"ok"}, Obligations: map[string]any{"rate": "low", "mask": true}},
			true, false, []string{"unsupported obligation: mask", "unsupported obligation: rate"}},
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
