//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package token

import (
	"errors"
	"io/fs"
	"time"
)

// lockFile is not implemented here: without an advisory lock, concurrent
// writers could lose each other's changes, so writing is refused.
func lockFile(path string, timeout time.Duration) (unlock func(), err error) {
	return nil, errors.New("token: writing needs flock(2), not available on this platform")
}

func syncDir(string) error { return nil }

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
