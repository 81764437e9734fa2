//go:build !linux

package audit

// syncData makes a file's data durable; where fdatasync(2) is not used,
// that is a full fsync.
func syncData(f storeFile) error { return f.Sync() }
