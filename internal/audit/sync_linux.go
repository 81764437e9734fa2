//go:build linux

package audit

import (
	"errors"
	"os"
	"syscall"
)

// syncData makes a file's data durable with fdatasync(2), which skips the
// metadata that does not matter for reading the data back (mtime); the
// size of an appended file is still made durable. Anything that is not an
// *os.File (a test's wrapper) is synced with its Sync method.
func syncData(f storeFile) error {
	of, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	rc, err := of.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: of.Name(), Err: serr}
	}
	return nil
}
