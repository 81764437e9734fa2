package identity

import "testing"

func TestCompactJWS(t *testing.T) {
	for _, tc := range []struct {
		tok  string
		want bool
	}{
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true}, // empty signature: shape only, refused later
		{"a-b_c.d.e", true},
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIi\nOiJhIn0.c2ln", false},
		{"eyJhbGciOiJFUzI1NiJ9 .eyJzdWIiOiJhIn0.c2ln", false},
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0=.c2ln", false},
		{"eyJ+bGci.eyJz/WIi.c2ln", false},
		{".eyJzdWIiOiJhIn0.c2ln", false},
		{"eyJhbGciOiJFUzI1NiJ9..c2ln", false},
		{"a.b.c.d", false},
		{"a.b", false},
		{"", false},
	} {
		if got := CompactJWS(tc.tok); got != tc.want {
			t.Errorf("CompactJWS(%q) = %v, want %v", tc.tok, got, tc.want)
		}
	}
}
