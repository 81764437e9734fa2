package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArchive(t *testing.T) {
	k, _ := keys(t)
	ctx := context.Background()
	l, dir := openTemp(t, Options{SegmentBytes: 4 << 10, CheckpointEvery: 10})
	appendN(t, l, 0, 40)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := len(segFiles(t, dir))
	arch := filepath.Join(t.TempDir(), "archive")

	// The writer keeps running while the archive is made.
	l, err := Open(dir, testOptions(t, Options{SegmentBytes: 4 << 10, CheckpointEvery: 10}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Archive(ctx, dir, arch, k.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != before-1 || rep.First != 0 || rep.End != rep.Retained || rep.Retained == 0 || rep.Retained > 40 {
		t.Fatalf("report %+v with %d segments before", rep, before)
	}
	if got := len(segFiles(t, dir)); got != 1 {
		t.Errorf("%d segments left, want the active one", got)
	}
	appendN(t, l, 40, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Without the archive: the stored hashes of archived records are still
	// checked against the checkpoint; their contents are not read.
	vr, err := verify(t, dir)
	if err != nil || vr.Records != 45 || vr.Archived != rep.Retained || vr.Tail != 0 {
		t.Fatalf("verify without the archive: %+v %v", vr, err)
	}
	// With it, every record is read again.
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true, ArchiveDir: arch})
	if err != nil {
		t.Fatal(err)
	}
	vr, err = VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier()})
	b.Close()
	if err != nil || vr.Archived != 0 || vr.Records != 45 {
		t.Fatalf("verify with the archive: %+v %v", vr, err)
	}
	// Readers skip archived records; reads of them say why.
	n := 0
	if err := ReadAll(dir, func(r Record) error {
		if n == 0 && r.Index != rep.Retained {
			t.Errorf("first record read %d, want %d", r.Index, rep.Retained)
		}
		n++
		return nil
	}); err != nil || n != int(45-rep.Retained) {
		t.Errorf("ReadAll: %d records, %v", n, err)
	}
	b, _ = OpenFileBackend(dir, FileOptions{ReadOnly: true})
	var ae *ArchivedError
	if err := b.ReadRecords(ctx, 0, 1, func(int64, []byte) error { return nil }); !errors.As(err, &ae) || ae.First != rep.Retained {
		t.Errorf("reading an archived record: %v", err)
	}
	b.Close()

	// A change to an archived record is found when the archive is given.
	seg := filepath.Join(arch, rep.Segments[0])
	data, _ := os.ReadFile(seg)
	data = bytes.Replace(data, []byte("req-0001"), []byte("req-9999"), 1)
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ = OpenFileBackend(dir, FileOptions{ReadOnly: true, ArchiveDir: arch})
	_, err = VerifyBackend(ctx, b, VerifyOptions{Verifier: k.Verifier()})
	b.Close()
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Index != 1 {
		t.Errorf("tampered archive: %v", err)
	}

	// Archiving again moves the segments sealed since, then nothing (the
	// active segment stays).
	rep2, err := Archive(ctx, dir, arch, k.Verifier())
	if err != nil || rep2.First != rep.Retained || rep2.Retained >= 45 {
		t.Errorf("second archive: %+v %v", rep2, err)
	}
	rep3, err := Archive(ctx, dir, arch, k.Verifier())
	if err != nil || len(rep3.Segments) != 0 || rep3.Retained != rep2.Retained {
		t.Errorf("third archive: %+v %v", rep3, err)
	}
	if vr, err := verify(t, dir); err != nil || vr.Archived != rep2.Retained {
		t.Errorf("verify after the second archive: %+v %v", vr, err)
	}
}

func TestArchiveRefuses(t *testing.T) {
	k, _ := keys(t)
	ctx := context.Background()
	t.Run("a log that does not verify", func(t *testing.T) {
		dir := writeLog(t, 20, Options{SegmentBytes: 4 << 10})
		recs := rawRecords(t, dir)
		recs[3] = bytes.Replace(recs[3], []byte("req-0003"), []byte("req-3333"), 1)
		writeRecords(t, dir, recs)
		_, err := Archive(ctx, dir, t.TempDir(), k.Verifier())
		if err == nil || !strings.Contains(err.Error(), "nothing was moved") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("another key", func(t *testing.T) {
		dir := writeLog(t, 20, Options{SegmentBytes: 4 << 10})
		if _, err := Archive(ctx, dir, t.TempDir(), mustKey(t, "x").Verifier()); err == nil {
			t.Fatal("archived with another key")
		}
	})
	t.Run("no archive directory", func(t *testing.T) {
		dir := writeLog(t, 2, Options{})
		if _, err := Archive(ctx, dir, "", k.Verifier()); err == nil {
			t.Fatal("archived without a directory")
		}
	})
	t.Run("records after the checkpoint stay", func(t *testing.T) {
		l, dir := openTemp(t, Options{SegmentBytes: 2 << 10, CheckpointEvery: 1 << 30})
		appendN(t, l, 0, 20) // no checkpoint until Close
		snap := copyDir(t, dir)
		_ = l.Close()
		rep, err := Archive(ctx, snap, t.TempDir(), k.Verifier())
		if err == nil || !strings.Contains(err.Error(), "no checkpoint") {
			t.Fatalf("archive without a checkpoint: %+v %v", rep, err)
		}
	})
}

func TestParseManifest(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"empty list", `{"version":1,"segments":[]}`, true},
		{"two", `{"version":1,"segments":[{"name":"` + segName(0) + `","first":0,"count":3,"sha256":"` + sum + `"},{"name":"` + segName(3) + `","first":3,"count":2,"sha256":"` + sum + `"}]}`, true},
		{"gap", `{"version":1,"segments":[{"name":"` + segName(1) + `","first":1,"count":3,"sha256":"` + sum + `"}]}`, false},
		{"misnamed", `{"version":1,"segments":[{"name":"x","first":0,"count":3,"sha256":"` + sum + `"}]}`, false},
		{"zero count", `{"version":1,"segments":[{"name":"` + segName(0) + `","first":0,"count":0,"sha256":"` + sum + `"}]}`, false},
		{"bad sum", `{"version":1,"segments":[{"name":"` + segName(0) + `","first":0,"count":1,"sha256":"xy"}]}`, false},
		{"version", `{"version":2,"segments":[]}`, false},
		{"unknown field", `{"version":1,"segments":[],"x":1}`, false},
		{"trailing", `{"version":1,"segments":[]} {}`, false},
		{"not json", `nope`, false},
	}
	for _, tt := range tests {
		if _, err := parseManifest([]byte(tt.data)); (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
}
