package guard

import (
	"encoding/binary"
	"testing"
)

func TestPlain8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c != '"' && c != '\\' && c >= 0x20
			if got := plain8(binary.LittleEndian.Uint64(b)); got != want {
				t.Fatalf("plain8 with %#x at %d = %v, want %v", c, pos, got, want)
			}
		}
	}
}

func TestRawOffset(t *testing.T) {
	raw := []byte(`a\n\u00e9\ud83d\ude00b`) // decodes to "a\n" + "é" (2 bytes) + "😀" (4 bytes) + "b"
	tests := []struct {
		dec      int
		up       bool
		want     int
		wantText string
	}{
		{0, false, 0, ""}, {1, false, 1, "a"}, {2, false, 3, `a\n`},
		{3, false, 3, `a\n`}, {3, true, 9, `a\n\u00e9`}, // inside é: round down or up
		{4, false, 9, `a\n\u00e9`}, {5, false, 9, `a\n\u00e9`}, {5, true, 21, `a\n\u00e9\ud83d\ude00`},
		{8, false, 21, `a\n\u00e9\ud83d\ude00`}, {9, false, 22, string(raw)},
	}
	for _, tt := range tests {
		if got := rawOffset(raw, tt.dec, tt.up); got != tt.want || string(raw[:got]) != tt.wantText {
			t.Errorf("rawOffset(%d, %v) = %d, want %d", tt.dec, tt.up, got, tt.want)
		}
	}
	if got := string(decodeString(nil, raw)); got != "a\né😀b" {
		t.Errorf("decodeString = %q", got)
	}
}
