package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// segFiles returns the segment files of dir, oldest first.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// rawRecords reads every record of dir's segments straight from the files.
func rawRecords(t testing.TB, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, path := range segFiles(t, dir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = data[fileHeaderLen:]
		for len(data) > 0 {
			p, n, err := parseFrame(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out = append(out, bytes.Clone(p))
			data = data[n:]
		}
	}
	return out
}

// writeRecords replaces dir's segments with one segment holding recs,
// correctly framed: what someone with write access can do.
func writeRecords(t testing.TB, dir string, recs [][]byte) {
	t.Helper()
	for _, p := range segFiles(t, dir) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	data := fileHeader(segmentMagic, 0)
	for _, r := range recs {
		data = appendFrame(data, r)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(0)), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rebuildHashes recomputes the hashes file from recs with tlog.
func rebuildHashes(t testing.TB, dir string, recs [][]byte) {
	t.Helper()
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, rec := range recs {
		hs, err := tlog.StoredHashes(int64(i), rec, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	var data []byte
	for _, h := range hashes {
		data = append(data, h[:]...)
	}
	if err := os.WriteFile(filepath.Join(dir, hashesFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func truncateFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func lastSeg(t testing.TB, dir string) string {
	s := segFiles(t, dir)
	return s[len(s)-1]
}

// Torn tails left by a crash or a full disk are repaired at open, kept as
// evidence under torn/, reported, and the log then verifies.
func TestOpenRepairsTornTail(t *testing.T) {
	const n = 6
	tests := []struct {
		name        string
		crash       func(t *testing.T, dir string)
		wantRecords int64
		wantRepair  string
		wantTorn    bool // bytes kept under torn/
	}{
		{"half a frame at the end", func(t *testing.T, dir string) {
			frame := appendFrame(nil, []byte(`{"index":6,"time":"2026-03-01T12:00:00Z"}`))
			appendFile(t, lastSeg(t, dir), frame[:len(frame)/2])
		}, n, "torn tail", true},
		{"a frame header only", func(t *testing.T, dir string) {
			appendFile(t, lastSeg(t, dir), []byte{0, 0, 0})
		}, n, "torn tail", true},
		{"garbage after the last frame", func(t *testing.T, dir string) {
			appendFile(t, lastSeg(t, dir), bytes.Repeat([]byte{0xff}, 40))
		}, n, "torn tail", true},
		{"zeros after the last frame (preallocated or unwritten blocks)", func(t *testing.T, dir string) {
			appendFile(t, lastSeg(t, dir), make([]byte, 4096))
		}, n, "torn tail", true},
		{"records durable, their hashes not", func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, hashesFile), tlog.StoredHashCount(n-2)*tlog.HashSize)
		}, n, "recomputed the stored hashes of records 4..5 from the records: 2 were missing", false},
		{"hashes cut mid-way", func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, hashesFile), tlog.StoredHashCount(n-1)*tlog.HashSize-10)
		}, n, "recomputed the stored hashes of records 4..5 from the records: 2 were missing", false},
		{"hashes after the checkpoint lost or wrong", func(t *testing.T, dir string) {
			p := filepath.Join(dir, hashesFile)
			data, _ := os.ReadFile(p)
			at := tlog.StoredHashIndex(0, n-1) * tlog.HashSize
			copy(data[at:], make([]byte, tlog.HashSize)) // a block that was never written reads as zeros
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			cp := filepath.Join(dir, checkpointsFile) // and the last checkpoint was not made
			truncateFile(t, cp, fileHeaderLen)
		}, n, "1 differed from the hashes on disk", true},
		{"a checkpoint cut mid-way", func(t *testing.T, dir string) {
			p := filepath.Join(dir, checkpointsFile)
			truncateFile(t, p, fileSize(t, p)-20)
		}, n, "incomplete checkpoint", true},
		{"a new segment with half a header", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, segName(n)), fileHeader(segmentMagic, n)[:5], 0o600); err != nil {
				t.Fatal(err)
			}
		}, n, "incomplete header", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeLog(t, n, Options{})
			tt.crash(t, dir)

			// A read-only look reports the tail and changes nothing.
			before := rawDir(t, dir)
			if ro, err := OpenFileBackend(dir, FileOptions{ReadOnly: true}); err == nil {
				ro.Close()
			}
			if !equalDirs(before, rawDir(t, dir)) {
				t.Fatal("a read-only open changed the log")
			}

			l, err := Open(dir, testOptions(t, Options{}))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			st := l.Stats()
			if st.Records != tt.wantRecords {
				t.Errorf("records %d after repair, want %d", st.Records, tt.wantRecords)
			}
			if !strings.Contains(strings.Join(st.Repairs, "\n"), tt.wantRepair) {
				t.Errorf("repairs %q, want %q", st.Repairs, tt.wantRepair)
			}
			appendN(t, l, 100, 2) // the repaired log takes appends
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			kept, _ := os.ReadDir(filepath.Join(dir, tornDir))
			if tt.wantTorn != (len(kept) > 0) {
				t.Errorf("torn/ holds %d files, want some: %v", len(kept), tt.wantTorn)
			}
			rep, err := verify(t, dir)
			if err != nil || rep.Records != tt.wantRecords+2 || rep.Tail != 0 {
				t.Fatalf("verify after repair: %+v %v", rep, err)
			}
			// The repair stays on record (repairs.log) for verify to show.
			if !strings.Contains(strings.Join(rep.Repairs, "\n"), tt.wantRepair) {
				t.Errorf("verify does not report the repair: %q", rep.Repairs)
			}
		})
	}
}

// Damage that an interrupted write cannot explain is refused at open, and
// the files are left as they are.
func TestOpenRefusesDamage(t *testing.T) {
	const n = 6
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"acknowledged record cut off", func(t *testing.T, dir string) {
			p := lastSeg(t, dir)
			truncateFile(t, p, fileSize(t, p)-3)
		}, "record 5"},
		{"last record removed, its hashes kept", func(t *testing.T, dir string) {
			recs := rawRecords(t, dir)
			writeRecords(t, dir, recs[:n-1])
		}, "acknowledged records are missing"},
		{"hashes for a record that is not there", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, hashesFile), make([]byte, tlog.HashSize))
		}, "record 6"},
		{"a record changed and the hashes recomputed", func(t *testing.T, dir string) {
			recs := rawRecords(t, dir)
			recs[2] = bytes.Replace(recs[2], []byte(`"status":200`), []byte(`"status":201`), 1)
			writeRecords(t, dir, recs)
			rebuildHashes(t, dir, recs)
		}, "checkpoint's root"},
		{"records deleted with their hashes", func(t *testing.T, dir string) {
			recs := rawRecords(t, dir)
			writeRecords(t, dir, recs[:n-2])
			rebuildHashes(t, dir, recs[:n-2])
		}, "shorter than its checkpoint"},
		{"first segment missing", func(t *testing.T, dir string) {
			segs := segFiles(t, dir)
			if err := os.Remove(segs[0]); err != nil {
				t.Fatal(err)
			}
		}, "missing"},
		{"segment renamed", func(t *testing.T, dir string) {
			segs := segFiles(t, dir)
			first, _ := parseSegName(filepath.Base(segs[1]))
			to := filepath.Join(dir, segName(first+1))
			if _, err := os.Stat(to); err == nil {
				t.Fatalf("%s exists", to)
			}
			if err := os.Rename(segs[1], to); err != nil {
				t.Fatal(err)
			}
		}, "renamed"},
		{"unknown format", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, formatFile), []byte("warden audit log, format 9\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "FORMAT"},
		{"checkpoints out of order", func(t *testing.T, dir string) {
			p := filepath.Join(dir, checkpointsFile)
			data, _ := os.ReadFile(p)
			first, _, err := parseFrame(data[fileHeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			appendFile(t, p, appendFrame(nil, first))
		}, "tampered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeLog(t, n, Options{SegmentBytes: 2 << 10, CheckpointEvery: 3})
			if len(segFiles(t, dir)) < 2 {
				t.Fatal("want several segments")
			}
			tt.damage(t, dir)
			before := rawDir(t, dir)
			l, err := Open(dir, testOptions(t, Options{}))
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded on a damaged log")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !equalDirs(before, rawDir(t, dir)) {
				t.Error("Open changed a log it refused")
			}
		})
	}
}

// rawDir maps each file of dir (not LOCK) to its content.
func rawDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == lockFile {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

func equalDirs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOpenPathProblems(t *testing.T) {
	t.Run("a file, as an older warden's log", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(p, []byte(`{"seq":1}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(p, testOptions(t, Options{}))
		if err == nil || !strings.Contains(err.Error(), "older warden") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a directory of other files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, testOptions(t, Options{}))
		if err == nil || !strings.Contains(err.Error(), "not an audit log directory") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("missing parent directories are created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b", "audit")
		l, err := Open(dir, testOptions(t, Options{}))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	})
	t.Run("read-only open of a missing log", func(t *testing.T) {
		_, err := OpenFileBackend(filepath.Join(t.TempDir(), "none"), FileOptions{ReadOnly: true})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no path", func(t *testing.T) {
		if _, err := OpenFileBackend("", FileOptions{}); err == nil {
			t.Fatal("no error")
		}
	})
}

// A reader of a log being written sees records whose hashes are not yet
// on disk as pending, and a half-written frame as torn bytes.
func TestReadOnlyPending(t *testing.T) {
	dir := writeLog(t, 4, Options{})
	truncateFile(t, filepath.Join(dir, hashesFile), tlog.StoredHashCount(3)*tlog.HashSize)
	appendFile(t, lastSeg(t, dir), []byte{0, 0, 1})
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, _ := b.Size(context.Background()); n != 3 {
		t.Errorf("Size %d, want 3 (the records with hashes)", n)
	}
	if recs, torn := b.Pending(); recs != 1 || torn != 3 {
		t.Errorf("pending %d records, %d torn bytes; want 1 and 3", recs, torn)
	}
	if err := b.Append(context.Background(), 3, nil, nil); err == nil {
		t.Error("Append on a read-only backend succeeded")
	}
}
