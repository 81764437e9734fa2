package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

// rechain recomputes prev and hash of lines[from:] (each ending in "\n") as
// an attacker with write access would, so that only what they could not fix
// remains detectable.
func rechain(t *testing.T, lines [][]byte, from int) {
	t.Helper()
	var prev [32]byte
	if from > 0 {
		_, h, err := splitHash(bytes.TrimSuffix(lines[from-1], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		hex.Decode(prev[:], h)
	}
	for i := from; i < len(lines); i++ {
		lines[i] = forge(t, lines[i], prev)
		_, h, _ := splitHash(bytes.TrimSuffix(lines[i], []byte("\n")))
		hex.Decode(prev[:], h)
	}
}

// forge rewrites line's prev to prev and recomputes its hash.
func forge(t *testing.T, line []byte, prev [32]byte) []byte {
	t.Helper()
	line = bytes.TrimSuffix(line, []byte("\n"))
	i := bytes.LastIndex(line, []byte(`,"prev":"`))
	if i < 0 {
		t.Fatalf("no prev in %s", line)
	}
	body := append(bytes.Clone(line[:i]), `,"prev":"`+hex.EncodeToString(prev[:])+`","hash":""}`...)
	sum := sha256.Sum256(append(prev[:], body...))
	out := append(body[:len(body)-2], hex.EncodeToString(sum[:])+`"}`+"\n"...)
	return out
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 5
	tests := []struct {
		name       string
		tamper     func(t *testing.T, lines [][]byte) [][]byte
		wantLine   int
		wantReason string
	}{
		{"changed byte in a field", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"status":200`), []byte(`"status":201`), 1)
			return l
		}, 3, "hash mismatch"},
		{"changed byte in the time", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`2026-03-01T12`), []byte(`2026-03-01T13`), 1)
			return l
		}, 2, "hash mismatch"},
		{"whitespace added", func(t *testing.T, l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte(`,"method"`), []byte(`, "method"`), 1)
			return l
		}, 4, "hash mismatch"},
		{"deleted record", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:2], l[3:]...)
		}, 3, "seq is 4, want 3"},
		{"deleted first record", func(t *testing.T, l [][]byte) [][]byte {
			return l[1:]
		}, 1, "seq is 2, want 1"},
		{"inserted copy", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:2], append([][]byte{bytes.Clone(l[1])}, l[2:]...)...)
		}, 3, "seq is 2, want 3"},
		{"inserted forged record chained to its predecessor", func(t *testing.T, l [][]byte) [][]byte {
			fake := bytes.Replace(l[2], []byte(`"req-0003"`), []byte(`"req-fake"`), 1)
			var prev [32]byte
			_, h, _ := splitHash(bytes.TrimSuffix(l[1], []byte("\n")))
			hex.Decode(prev[:], h)
			fake = forge(t, fake, prev) // seq 3, correct prev and hash
			return append(l[:2], append([][]byte{fake}, l[2:]...)...)
		}, 4, "seq is 3, want 4"},
		{"two records swapped", func(t *testing.T, l [][]byte) [][]byte {
			l[1], l[2] = l[2], l[1]
			return l
		}, 2, "seq is 3, want 2"},
		{"changed hash", func(t *testing.T, l [][]byte) [][]byte {
			i := bytes.LastIndex(l[2], []byte(`"hash":"`)) + len(`"hash":"`)
			if l[2][i] == '0' {
				l[2][i] = '1'
			} else {
				l[2][i] = '0'
			}
			return l
		}, 3, "hash mismatch"},
		{"changed record with its hash recomputed", func(t *testing.T, l [][]byte) [][]byte {
			var prev [32]byte
			_, h, _ := splitHash(bytes.TrimSuffix(l[1], []byte("\n")))
			hex.Decode(prev[:], h)
			l[2] = forge(t, bytes.Replace(l[2], []byte(`"allow":true`), []byte(`"allow":false`), 1), prev)
			return l
		}, 4, "prev does not match"},
		{"forged prev", func(t *testing.T, l [][]byte) [][]byte {
			var prev [32]byte
			prev[0] = 1
			l[2] = forge(t, l[2], prev) // hash consistent with the forged prev
			return l
		}, 3, "prev does not match"},
		{"renumbered after a deletion, hashes not recomputed", func(t *testing.T, l [][]byte) [][]byte {
			l = append(l[:2], l[3:]...)
			for i := 2; i < len(l); i++ {
				l[i] = bytes.Replace(l[i], []byte(`{"seq":`+string(rune('0'+i+2))), []byte(`{"seq":`+string(rune('0'+i+1))), 1)
			}
			return l
		}, 3, "prev does not match"},
		{"hash field duplicated", func(t *testing.T, l [][]byte) [][]byte {
			l[0] = bytes.Replace(l[0], []byte(`{"seq":1,`), []byte(`{"seq":1,"hash":"x",`), 1)
			return l
		}, 1, "hash mismatch"},
		{"torn tail", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = l[4][:len(l[4])-1]
			return l
		}, 5, "torn tail"},
		{"empty line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:1], append([][]byte{[]byte("\n")}, l[1:]...)...)
		}, 2, "empty line"},
		{"not JSON", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = append([]byte("#"), l[1]...)
			return l
		}, 2, "not a JSON record"},
		{"trailing data", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = append([]byte(`{} `), l[1]...)
			return l
		}, 2, "data after the object"},
		{"uppercase hex", func(t *testing.T, l [][]byte) [][]byte {
			i := bytes.LastIndex(l[0], []byte(`"hash":"`)) + len(`"hash":"`)
			copy(l[0][i:], bytes.ToUpper(l[0][i:i+64]))
			return l
		}, 1, "lowercase hex"},
		{"line too long", func(t *testing.T, l [][]byte) [][]byte {
			return append(l, append(bytes.Repeat([]byte("x"), MaxLineBytes+1), '\n'))
		}, 6, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeLog(t, n)
			if _, err := Verify(path); err != nil {
				t.Fatalf("intact log: %v", err)
			}
			lines := tt.tamper(t, readLines(t, path))
			if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %+v, %v; want a *VerifyError", rep, err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(ve.Reason, tt.wantReason) {
				t.Errorf("got line %d %q; want line %d %q", ve.Line, ve.Reason, tt.wantLine, tt.wantReason)
			}
			if rep.Records != uint64(tt.wantLine-1) {
				t.Errorf("report covers %d records, want %d before the bad line", rep.Records, tt.wantLine-1)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// A fully rechained rewrite and a truncated tail are valid chains: without
// an anchored head (signed checkpoints) they are not detectable. This test
// documents that limit; "warden audit verify" prints the head so that
// operators can compare.
func TestVerifyLimits(t *testing.T) {
	path := writeLog(t, 5)
	orig, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if err := os.WriteFile(path, bytes.Join(lines[:4], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(path)
	if err != nil || rep.Records != 4 || rep.Head == orig.Head {
		t.Errorf("truncated: %+v %v", rep, err)
	}
	lines[2] = bytes.Replace(lines[2], []byte(`"allow":true`), []byte(`"allow":false`), 1)
	rechain(t, lines, 2)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(path)
	if err != nil || rep.Head == orig.Head {
		t.Errorf("rechained: %+v %v; the head must differ", rep, err)
	}
}

func TestVerifyMissingFile(t *testing.T) {
	_, err := Verify(t.TempDir() + "/nope")
	var ve *VerifyError
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &ve) {
		t.Errorf("err %v", err)
	}
}

// noSync skips fsync: fuzz seeds need no durability, and each fuzz worker
// builds them.
type noSync struct{ logFile }

func (noSync) Sync() error { return nil }

func seedLog(f *testing.F) []byte {
	l, path := openTemp(f, Options{wrapFile: func(lf logFile) logFile { return noSync{lf} }})
	appendN(f, l, 1, 3)
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

func FuzzVerify(f *testing.F) {
	data := seedLog(f)
	f.Add(data)
	f.Add(data[:len(data)-1])
	f.Add(bytes.Replace(data, []byte("req-0002"), []byte("req-0003"), 1))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"seq":1,"prev":"` + ZeroHash + `","hash":"` + ZeroHash + `"}` + "\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := verifyReader(bytes.NewReader(b))
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error is not a *VerifyError: %v", err)
			}
			if ve.Line < 1 || rep.Records != uint64(ve.Line-1) {
				t.Fatalf("report %+v inconsistent with %v", rep, ve)
			}
			return
		}
		if lines := bytes.Count(b, []byte("\n")); rep.Records != uint64(lines) || (len(b) > 0 && b[len(b)-1] != '\n') {
			t.Fatalf("ok with %d records for %d lines", rep.Records, lines)
		}
		if len(rep.Head) != 64 {
			t.Fatalf("head %q", rep.Head)
		}
	})
}

func FuzzParseLine(f *testing.F) {
	data := seedLog(f)
	for _, l := range bytes.Split(data, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"seq":1,"hash":"` + ZeroHash + `"}`))
	f.Add([]byte(`{"decision":{"obligations":{"a":1e999}},"hash":"` + ZeroHash + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseLine(line)
		if err != nil {
			return
		}
		// Anything accepted has a well-formed hash field that parsing agrees with.
		_, h, err := splitHash(line)
		if err != nil {
			t.Fatalf("parseLine accepted a line splitHash rejects: %v", err)
		}
		if r.Hash != string(h) && !bytes.Contains(line[:len(line)-len(h)-2], []byte(`"hash"`)) {
			t.Fatalf("hash %q, line ends with %q", r.Hash, h)
		}
	})
}
