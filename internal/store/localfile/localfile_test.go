package localfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAtomicAndRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "store.json")

	data, st, err := ReadFile(p, 100)
	if err != nil || data != nil || st.Exists {
		t.Fatalf("missing file: data %q stamp %+v err %v", data, st, err)
	}
	if err := WriteAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	data, st1, err := ReadFile(p, 100)
	if err != nil || string(data) != "one" || !st1.Exists {
		t.Fatalf("after write: %q %+v %v", data, st1, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v err %v", fi.Mode(), err)
	}
	if err := WriteAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	st2, err := StatPath(p)
	if err != nil || st2 == st1 {
		t.Fatalf("stamp did not change after a rewrite: %+v", st2)
	}
	if _, _, err := ReadFile(p, 2); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized read: %v", err)
	}
	if _, _, err := ReadFile(dir, 100); err == nil {
		t.Fatal("reading a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	empty := filepath.Join(dir, "empty")
	if err := WriteAtomic(empty, nil); err != nil {
		t.Fatal(err)
	}
	if data, st, err := ReadFile(empty, 10); err != nil || data == nil || !st.Exists {
		t.Fatalf("an empty file must read as empty, not missing: %v %+v %v", data, st, err)
	}
}

func TestLockExcludesOtherHolders(t *testing.T) {
	p := filepath.Join(t.TempDir(), "store.lock")
	unlock, err := Lock(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Lock(p, 100*time.Millisecond); err == nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("second holder got the lock: %v", err)
	}
	unlock()
	unlock2, err := Lock(p, time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}
