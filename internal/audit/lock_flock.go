//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, released when f is closed,
// so that two logs never append to the same file.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(lerr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	switch {
	case lerr == nil:
		return nil
	case errors.Is(lerr, syscall.EWOULDBLOCK):
		return errors.New("the file is locked by another process or log")
	default:
		return fmt.Errorf("lock: %w", lerr)
	}
}
