//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package localfile

import (
	"errors"
	"io/fs"
	"time"
)

// Lock is not implemented here: without an advisory lock, concurrent
// writers could lose each other's changes, so writing is refused.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	return nil, errors.New("writing needs flock(2), not available on this platform")
}

// SyncDir does nothing where directories cannot be synced.
func SyncDir(string) error { return nil }

// StampOf identifies a file version by size and mtime.
func StampOf(fi fs.FileInfo) Stamp {
	return Stamp{Exists: true, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
}
