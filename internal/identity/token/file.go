package token

// File helpers in the style of identity.KeyStore: stamps to notice changes
// cheaply, bounded reads, atomic replacement. (internal/identity/revoke has a
// copy; both are candidates for a shared internal package.)

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileStamp identifies one version of a file cheaply.
type fileStamp struct {
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64 // UnixNano
}

// readFile reads the file at path, at most max bytes. A missing file gives
// nil data and a stamp with exists=false. Errors name the path.
func readFile(path string, max int64) ([]byte, fileStamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fileStamp{}, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > max {
		return nil, fileStamp{}, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fileStamp{}, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	if data == nil {
		data = []byte{} // an existing empty file is not a missing file
	}
	return data, stampOf(fi), nil
}

// statPath returns the stamp of the file at path; a missing file is a valid
// stamp with exists=false.
func statPath(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return stampOf(fi), nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory (mode 0600) is written and fsynced, renamed over path, and the
// directory is fsynced so the rename survives a crash. Readers see the old
// file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) (err error) {
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
	if err = syncDir(dir); err != nil {
		// The new file is in place; only its durability across a crash is in doubt.
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
