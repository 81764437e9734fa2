//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package mfa

import (
	"errors"
	"time"
)

// lockFile is not implemented here: without an advisory lock, two processes
// could both accept one code, so every read-modify-write (and so every
// verification) is refused: fail closed.
func lockFile(path string, timeout time.Duration) (unlock func(), err error) {
	return nil, errors.New("mfa: store: needs flock(2), not available on this platform")
}

func syncDir(string) error { return nil }
