//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package localfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// Lock takes an exclusive advisory lock (flock(2)) on the lock file at
// path, creating it (mode 0600) if needed, and returns the function that
// releases it. flock locks belong to the open file description, so two
// holders in one process exclude each other just like two processes do.
// The lock file is never removed: removing it would let two writers lock two
// different files.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	fd := int(f.Fd())
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: still held by another writer after %s", path, timeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// SyncDir fsyncs a directory so that a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil // the file system cannot sync directories; nothing more to do
	}
	return err
}

// StampOf identifies a file version by device, inode, size and mtime. Writers
// replace the file by rename, so every write gives a new inode.
func StampOf(fi fs.FileInfo) Stamp {
	st := Stamp{Exists: true, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Dev = uint64(sys.Dev) //nolint:unconvert // the field's type differs between platforms
		st.Ino = uint64(sys.Ino) //nolint:unconvert
	}
	return st
}
