package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// reindex rewrites the index field of a stored record, as someone moving
// records around and hiding it would.
func reindex(t testing.TB, rec []byte, i int) []byte {
	t.Helper()
	old, err := storedIndex(rec)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(rec, fmt.Appendf(nil, `{"index":%d,`, old), fmt.Appendf(nil, `{"index":%d,`, i), 1)
}

// setCheckpoint replaces the log's checkpoint history by one checkpoint.
func setCheckpoint(t testing.TB, dir string, size int64, signed []byte) {
	t.Helper()
	p := append(make([]byte, 0, 8+len(signed)), byte(size>>56), byte(size>>48), byte(size>>40), byte(size>>32),
		byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
	p = append(p, signed...)
	data := appendFrame(fileHeader(checkpointMagic, 0), p)
	if err := os.WriteFile(filepath.Join(dir, checkpointsFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 20
	k, other := keys(t)
	var deletedFirst int64
	tests := []struct {
		name      string
		tamper    func(t *testing.T, dir string, recs [][]byte)
		wantIndex int64
		wantEnd   int64 // 0: a single entry
		want      string
	}{
		{"a byte of a record changed, frame fixed up", func(t *testing.T, dir string, recs [][]byte) {
			recs[7] = bytes.Replace(recs[7], []byte(`"status":200`), []byte(`"status":201`), 1)
			writeRecords(t, dir, recs)
		}, 7, 0, "does not match its stored hash"},
		{"a byte of a record changed in place", func(t *testing.T, dir string, recs [][]byte) {
			for _, p := range segFiles(t, dir) {
				data, _ := os.ReadFile(p)
				if i := bytes.Index(data, []byte(`"request_id":"req-0007"`)); i >= 0 {
					data[i+len(`"request_id":"req-`)] = '9'
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, 7, 0, "checksum"},
		{"a record deleted", func(t *testing.T, dir string, recs [][]byte) {
			writeRecords(t, dir, append(recs[:7:7], recs[8:]...))
		}, 7, 0, "position 7 is record 8"},
		{"a record deleted and the rest renumbered", func(t *testing.T, dir string, recs [][]byte) {
			out := append(recs[:7:7], recs[8:]...)
			for i := 7; i < len(out); i++ {
				out[i] = reindex(t, out[i], i)
			}
			writeRecords(t, dir, out)
		}, 7, 0, "does not match its stored hash"},
		{"a record inserted", func(t *testing.T, dir string, recs [][]byte) {
			forged := reindex(t, bytes.Replace(recs[7], []byte("req-0007"), []byte("req-forged"), 1), 7)
			writeRecords(t, dir, append(append(recs[:7:7], forged), recs[7:]...))
		}, 7, 0, "does not match its stored hash"},
		{"two records swapped", func(t *testing.T, dir string, recs [][]byte) {
			recs[7], recs[8] = recs[8], recs[7]
			writeRecords(t, dir, recs)
		}, 7, 0, "position 7 is record 8"},
		{"two records swapped and renumbered", func(t *testing.T, dir string, recs [][]byte) {
			recs[7], recs[8] = reindex(t, recs[8], 7), reindex(t, recs[7], 8)
			writeRecords(t, dir, recs)
		}, 7, 0, "does not match its stored hash"},
		{"an interior stored hash changed", func(t *testing.T, dir string, recs [][]byte) {
			p := filepath.Join(dir, hashesFile)
			data, _ := os.ReadFile(p)
			// Record 11 completes the subtree of records 8..11 (level 2).
			at := (tlog.StoredHashIndex(0, 11) + 2) * tlog.HashSize
			data[at] ^= 1
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 11, 0, "hashes file was altered"},
		{"records rewritten and hashes recomputed", func(t *testing.T, dir string, recs [][]byte) {
			recs[12] = bytes.Replace(recs[12], []byte(`"allow":true`), []byte(`"allow":false`), 1)
			writeRecords(t, dir, recs)
			rebuildHashes(t, dir, recs)
		}, 10, 15, "hashes recomputed"},
		{"the last records deleted with their hashes", func(t *testing.T, dir string, recs [][]byte) {
			writeRecords(t, dir, recs[:17])
			rebuildHashes(t, dir, recs[:17])
		}, 17, 20, "shorter than its checkpoint"},
		{"records cut from the end, their hashes kept", func(t *testing.T, dir string, recs [][]byte) {
			writeRecords(t, dir, recs[:10])
		}, 10, 20, "acknowledged records were deleted or cut off"},
		{"a middle segment deleted", func(t *testing.T, dir string, recs [][]byte) {
			segs := segFiles(t, dir)
			if len(segs) < 3 {
				t.Fatalf("%d segments, want 3 or more", len(segs))
			}
			deletedFirst, _ = parseSegName(filepath.Base(segs[1]))
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
		}, -1, 0, "the segment ends before this record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeLog(t, n, Options{CheckpointEvery: 5, SegmentBytes: 4 << 10})
			tt.tamper(t, dir, rawRecords(t, dir))
			_, err := Verify(dir, k.VerifierKey())
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify: %v, want a *VerifyError", err)
			}
			if tt.wantIndex < 0 { // the first record of the deleted segment
				tt.wantIndex = deletedFirst
			}
			if ve.Index != tt.wantIndex || (tt.wantEnd != 0 && ve.End != tt.wantEnd) {
				t.Errorf("first bad entry %d..%d, want %d..%d: %v", ve.Index, ve.End, tt.wantIndex, tt.wantEnd, ve)
			}
			if !strings.Contains(ve.Error(), tt.want) {
				t.Errorf("error %q does not say %q", ve, tt.want)
			}
		})
	}

	t.Run("a checkpoint signed by another key", func(t *testing.T) {
		dir := writeLog(t, 3, Options{})
		signed, err := other.sign(testOrigin, tlog.Tree{N: 3, Hash: tlog.Hash{1}})
		if err != nil {
			t.Fatal(err)
		}
		setCheckpoint(t, dir, 3, signed)
		_, err = Verify(dir, k.VerifierKey())
		var ce *CheckpointError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not signed by the verifier key") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a checkpoint's size altered", func(t *testing.T) {
		dir := writeLog(t, 3, Options{})
		rep, _ := verify(t, dir)
		altered := bytes.Replace(rep.Checkpoint.Signed, []byte("\n3\n"), []byte("\n2\n"), 1)
		setCheckpoint(t, dir, 2, altered)
		_, err := Verify(dir, k.VerifierKey())
		var ce *CheckpointError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("the verifier key of another log", func(t *testing.T) {
		dir := writeLog(t, 3, Options{})
		_, err := Verify(dir, mustKey(t, "another/log").VerifierKey())
		var ce *CheckpointError
		if !errors.As(err, &ce) {
			t.Fatalf("err %v", err)
		}
	})
}

// A log longer than its checkpoint verifies; the tail is counted and
// checked record by record.
func TestVerifyTail(t *testing.T) {
	dir := writeLog(t, 8, Options{CheckpointEvery: 5})
	k, _ := keys(t)
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cp5, err := FindCheckpoint(context.Background(), b, k.Verifier(), 5)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	setCheckpoint(t, dir, 5, cp5.Signed) // the checkpoint of 8 was never made
	rep, err := verify(t, dir)
	if err != nil || rep.Records != 8 || rep.Checkpointed() != 5 || rep.Tail != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
	// A changed record in the tail is found too.
	recs := rawRecords(t, dir)
	recs[6] = bytes.Replace(recs[6], []byte("req-0006"), []byte("req-0666"), 1)
	writeRecords(t, dir, recs)
	var ve *VerifyError
	if _, err := verify(t, dir); !errors.As(err, &ve) || ve.Index != 6 {
		t.Fatalf("tail record changed: %v", err)
	}
	// No checkpoint at all: everything is tail.
	if err := os.WriteFile(filepath.Join(dir, checkpointsFile), fileHeader(checkpointMagic, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	dir2 := writeLog(t, 8, Options{})
	if err := os.WriteFile(filepath.Join(dir2, checkpointsFile), fileHeader(checkpointMagic, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := verify(t, dir2); err != nil || rep.Checkpoint != nil || rep.Tail != 8 {
		t.Fatalf("no checkpoint: %+v %v", rep, err)
	}
}

func TestVerifyOptions(t *testing.T) {
	k, _ := keys(t)
	ctx := context.Background()
	dir := writeLog(t, 12, Options{CheckpointEvery: 4})
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	old, err := FindCheckpoint(ctx, b, k.Verifier(), 4)
	if err != nil {
		t.Fatal(err)
	}
	// Against an older checkpoint: the rest is tail.
	rep, err := VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier(), Checkpoint: old.Signed, Workers: 3})
	if err != nil || rep.Checkpointed() != 4 || rep.Tail != 8 {
		t.Fatalf("older checkpoint: %+v %v", rep, err)
	}
	if _, err := VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier(), Origin: "other/origin"}); err == nil {
		t.Error("another origin verified")
	}
	if _, err := VerifyBackend(ctx, b, VerifyOptions{}); err == nil {
		t.Error("verified without a key")
	}

	// A witness's copy: consistent, from the future, or from a fork.
	future, _ := k.sign(testOrigin, tlog.Tree{N: 15, Hash: tlog.Hash{9}})
	fork, _ := k.sign(testOrigin, tlog.Tree{N: 8, Hash: tlog.Hash{9}})
	rep, err = VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier(), Others: []NamedCheckpoint{
		{"old", old.Signed}, {"future", future}, {"fork", fork}, {"junk", []byte("junk")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "rolled back", "fork", "not a signed note"}
	for i, o := range rep.Others {
		if (want[i] == "") != (o.Err == nil) || (o.Err != nil && !strings.Contains(o.Err.Error(), want[i])) {
			t.Errorf("%s: %v, want %q", o.Name, o.Err, want[i])
		}
	}
}

func TestProveAndConsistency(t *testing.T) {
	k, _ := keys(t)
	ctx := context.Background()
	dir := writeLog(t, 37, Options{CheckpointEvery: 10})
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rep, err := VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier()})
	if err != nil {
		t.Fatal(err)
	}
	cp := rep.Checkpoint
	for _, i := range []int64{0, 1, 17, 36} {
		proof, rec, err := Prove(ctx, b, i, cp)
		if err != nil {
			t.Fatalf("Prove(%d): %v", i, err)
		}
		// The proof checks independently, and fails for another record.
		if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, i, tlog.RecordHash(rec)); err != nil {
			t.Errorf("CheckRecord(%d): %v", i, err)
		}
		if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, i, tlog.RecordHash(append(rec, ' '))); err == nil {
			t.Errorf("proof of %d accepted another record", i)
		}
	}
	if _, _, err := Prove(ctx, b, 37, cp); err == nil {
		t.Error("proved a record beyond the checkpoint")
	}
	for _, size := range []int64{10, 20, 30} {
		old, err := FindCheckpoint(ctx, b, k.Verifier(), size)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := Consistency(b, old, cp)
		if err != nil {
			t.Fatalf("Consistency(%d, 37): %v", size, err)
		}
		if err := tlog.CheckTree(proof, 37, cp.Tree.Hash, size, old.Tree.Hash); err != nil {
			t.Errorf("CheckTree: %v", err)
		}
	}
	forked := &Checkpoint{Tree: tlog.Tree{N: 20, Hash: tlog.Hash{7}}}
	var ve *VerifyError
	if _, err := Consistency(b, forked, cp); !errors.As(err, &ve) {
		t.Errorf("a forked checkpoint: %v", err)
	}
	if _, err := FindCheckpoint(ctx, b, k.Verifier(), 11); err == nil {
		t.Error("found a checkpoint of a size never made")
	}
}

func TestFindTailReadAll(t *testing.T) {
	dir := writeLog(t, 7, Options{SegmentBytes: 2 << 10})
	ctx := context.Background()
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tt := range []struct {
		id   string
		want string
	}{{"3", "req-0003"}, {"req-0005", "req-0005"}, {"0", "req-0000"}} {
		r, raw, err := Find(ctx, b, tt.id)
		if err != nil || r.RequestID != tt.want || !bytes.Contains(raw, []byte(tt.want)) {
			t.Errorf("Find(%q): %v %v", tt.id, r.RequestID, err)
		}
	}
	for _, id := range []string{"7", "-1", "req-9999", `req" or "x`} {
		if _, _, err := Find(ctx, b, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Find(%q): %v, want ErrNotFound", id, err)
		}
	}
	for _, tt := range []struct{ n, count int }{{1, 1}, {3, 3}, {50, 7}} {
		recs, err := Tail(ctx, b, tt.n)
		if err != nil || len(recs) != tt.count || recs[len(recs)-1].RequestID != "req-0006" {
			t.Errorf("Tail(%d): %d records, %v", tt.n, len(recs), err)
		}
	}
	if _, err := Tail(ctx, b, 0); err == nil {
		t.Error("Tail(0) succeeded")
	}
	stop := errors.New("stop")
	n := 0
	err = ReadAll(dir, func(r Record) error {
		if r.Index != int64(n) {
			return fmt.Errorf("index %d at %d", r.Index, n)
		}
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("ReadAll: %v after %d", err, n)
	}
}

func TestParseVerifierKey(t *testing.T) {
	k, _ := keys(t)
	dir := t.TempDir()
	vfile := filepath.Join(dir, "v.pub")
	if err := os.WriteFile(vfile, []byte("# comment\n"+k.VerifierKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kfile := filepath.Join(dir, "k")
	if _, _, err := LoadOrCreateKey(kfile, "x/y"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{k.VerifierKey(), " " + k.VerifierKey() + "\n", vfile, kfile} {
		if _, err := ParseVerifierKey(s); err != nil {
			t.Errorf("ParseVerifierKey(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "nonsense", filepath.Join(dir, "missing"), dir} {
		if _, err := ParseVerifierKey(s); err == nil {
			t.Errorf("ParseVerifierKey(%q) succeeded", s)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.key")
	k1, created, err := LoadOrCreateKey(path, "warden/audit")
	if err != nil || !created || k1.Name() != "warden/audit" {
		t.Fatalf("create: %v %v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode().Perm(), err)
	}
	k2, created, err := LoadOrCreateKey(path, "ignored")
	if err != nil || created || k2.VerifierKey() != k1.VerifierKey() {
		t.Fatalf("load: %v %v", created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	other := mustKey(t, "warden/audit")
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	tests := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"signer only", lines[1]},
		{"verifier of another key", lines[1] + "\n" + other.VerifierKey()},
		{"swapped", lines[2] + "\n" + lines[1]},
		{"garbage", "PRIVATE+KEY+x\nnope"},
	}
	for _, tt := range tests {
		if _, err := ParseKeyFile([]byte(tt.text)); err == nil {
			t.Errorf("%s: parsed", tt.name)
		}
	}
	if _, err := ParseKeyFile(data); err != nil {
		t.Errorf("the generated file: %v", err)
	}
}
