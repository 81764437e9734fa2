package audit

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// The stored form of records and the tree over them are a format: readers
// outside warden depend on them. testdata/records.jsonl holds ten sample
// records as stored and testdata/records.root the RFC 6962 root of the tree
// over them; a change to either is a format change, made on purpose with
// AUDIT_UPDATE_GOLDEN=1.
func TestGoldenRecordsAndRoot(t *testing.T) {
	var stored []byte
	for i := range 10 {
		r := sampleRecord(i)
		if i%3 == 1 {
			r.Full = &Full{RequestHeaders: []string{"Authorization", "Content-Type"}, ResponseSHA256: strings.Repeat("cd", 32)}
		}
		normalize(r)
		body, err := encodeBody(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(appendRecord(stored, int64(i), body), '\n')
	}
	lines := bytes.Split(bytes.TrimSuffix(stored, []byte("\n")), []byte("\n"))
	root := rfc6962Root(lines).String() + "\n"
	recPath, rootPath := filepath.Join("testdata", "records.jsonl"), filepath.Join("testdata", "records.root")
	if os.Getenv("AUDIT_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(recPath, stored, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rootPath, []byte(root), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, want) {
		t.Errorf("the stored form of records changed:\n got %s\nwant %s", stored, want)
	}
	wantRoot, err := os.ReadFile(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	if root != string(wantRoot) {
		t.Errorf("root %s, want %s", root, wantRoot)
	}

	// A log written by Append has these very bytes and this root.
	l, dir := openTemp(t, Options{})
	for i := range 10 {
		r := sampleRecord(i)
		if i%3 == 1 {
			r.Full = &Full{RequestHeaders: []string{"Authorization", "Content-Type"}, ResponseSHA256: strings.Repeat("cd", 32)}
		}
		if err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verify(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Checkpoint.Tree.Hash.String() + "\n"; got != string(wantRoot) {
		t.Errorf("the log's signed root %s, want %s", got, wantRoot)
	}
	if got := bytes.Join(readBack(t, dir), []byte("\n")); !bytes.Equal(append(got, '\n'), want) {
		t.Error("the log's stored records differ from the golden ones")
	}
}

// rfc6962Root is the Merkle tree hash of RFC 6962 section 2.1, written
// from the RFC and independent of tlog: MTH({}) = SHA-256(), MTH({d}) =
// SHA-256(0x00 || d), MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) ||
// MTH(D[k:n])) with k the largest power of two below n.
func rfc6962Root(leaves [][]byte) tlog.Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := rfc6962Root(leaves[:k]), rfc6962Root(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}
