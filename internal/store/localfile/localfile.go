// Package localfile provides the embedded store's file primitives: reads
// bounded in size, cheap stamps to notice a changed file, crash-safe atomic
// replacement (temp file, fsync, rename, directory fsync) and an advisory
// lock shared by every process that writes the file. Readers never see a
// half-written file, and two writers never lose each other's changes.
package localfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Stamp identifies one version of a file cheaply.
type Stamp struct {
	Exists   bool
	Dev, Ino uint64
	Size     int64
	Mtime    int64 // UnixNano
}

// ReadFile reads the file at path, at most max bytes. A missing file gives
// nil data and a stamp with Exists=false. Errors name the path.
func ReadFile(path string, max int64) ([]byte, Stamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Stamp{}, nil
	}
	if err != nil {
		return nil, Stamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, Stamp{}, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > max {
		return nil, Stamp{}, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, Stamp{}, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, Stamp{}, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	if data == nil {
		data = []byte{} // an existing empty file is not a missing file
	}
	return data, StampOf(fi), nil
}

// StatPath returns the stamp of the file at path; a missing file is a valid
// stamp with Exists=false.
func StatPath(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Stamp{}, nil
	}
	if err != nil {
		return Stamp{}, err
	}
	return StampOf(fi), nil
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory (mode 0600) is written and fsynced, renamed over path, and the
// directory is fsynced so the rename survives a crash. Readers see the old
// file or the new one, never a mix.
func WriteAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if err = SyncDir(dir); err != nil {
		// The new file is in place; only its durability across a crash is in doubt.
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
