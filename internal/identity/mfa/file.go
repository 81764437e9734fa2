package mfa

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Store file format.
const (
	storeVersion  = 1
	maxStoreBytes = 16 << 20 // an enrollment file this large is a mistake, not a store
	maxSealedLen  = 512      // base64 of nonce || ciphertext of a base32 secret
	// lockTimeout bounds the wait for another writer's advisory lock.
	lockTimeout = 30 * time.Second
)

// storeFile is the on-disk document:
//
//	{"version":1,"key_check":"...","enrollments":[{"user":...,"secret":...,...}]}
//
// key_check is a fixed text sealed with the store's key: a store opened with
// another key is refused before anything is written with it.
type storeFile struct {
	Version     int      `json:"version"`
	KeyCheck    string   `json:"key_check"`
	Enrollments []record `json:"enrollments"`
}

// record is one stored enrollment.
type record struct {
	User string `json:"user"`
	// Secret is base64(nonce || AES-256-GCM ciphertext) of the base32 TOTP
	// secret, with the user id as additional data.
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	// LastStep is the TOTP time step (Unix time / 30 s) of the last accepted
	// code; only later steps are accepted. 0: none yet.
	LastStep  int64 `json:"last_step"`
	Confirmed bool  `json:"confirmed"`
}

func (sf *storeFile) index(user string) int {
	return slices.IndexFunc(sf.Enrollments, func(r record) bool { return r.User == user })
}

// load reads and validates the file and checks the key. A missing file is an
// empty store. Errors wrap ErrUnavailable and name the path.
func (s *Store) load() (*storeFile, error) {
	data, err := readStore(s.path)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return &storeFile{Version: storeVersion}, nil
	}
	sf, err := decodeStore(s.path, data)
	if err != nil {
		return nil, err
	}
	if err := s.checkKey(sf); err != nil {
		return nil, err
	}
	return sf, nil
}

// update runs one read-modify-write of the store file under the
// cross-process lock. modify reports whether it changed anything; an error
// from it is returned as is and nothing is written.
func (s *Store) update(modify func(*storeFile) (changed bool, err error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.ensureDir(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	unlock, err := localfile.Lock(s.path+".lock", lockTimeout)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer unlock()

	// Re-read under the lock: another process may have written since.
	sf, err := s.load()
	if err != nil {
		return err // never overwrite a file we cannot read
	}
	changed, err := modify(sf)
	if err != nil || !changed {
		return err
	}
	if sf.KeyCheck == "" {
		if sf.KeyCheck, err = s.seal(keyCheckAD, keyCheckPlain); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	slices.SortFunc(sf.Enrollments, func(a, b record) int { return strings.Compare(a.User, b.User) })
	out, err := encodeStore(sf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := localfile.WriteAtomic(s.path, out); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// readStore reads the store file; a missing file gives nil data.
func readStore(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mfa: store: %w: %w", ErrUnavailable, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mfa: store: %w: %w", ErrUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("mfa: store %s: %w: not a regular file", path, ErrUnavailable)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStoreBytes+1))
	if err != nil {
		return nil, fmt.Errorf("mfa: store: read %s: %w: %w", path, ErrUnavailable, err)
	}
	if len(data) > maxStoreBytes {
		return nil, fmt.Errorf("mfa: store %s: %w: larger than %d bytes", path, ErrUnavailable, maxStoreBytes)
	}
	if data == nil {
		data = []byte{} // an existing empty file is not a missing file
	}
	return data, nil
}

// decodeStore parses and validates the document strictly: unknown fields,
// trailing data, a wrong version or an invalid record is an error wrapping
// ErrUnavailable and naming the path.
func decodeStore(path string, data []byte) (*storeFile, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("mfa: store %s: %w: corrupt: %s", path, ErrUnavailable, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corrupt("empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sf storeFile
	if err := dec.Decode(&sf); err != nil {
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("trailing data after the document")
	}
	if sf.Version != storeVersion {
		return nil, corrupt("unsupported version %d (want %d)", sf.Version, storeVersion)
	}
	if !validSealed(sf.KeyCheck) {
		return nil, corrupt("key_check: missing or malformed")
	}
	seen := make(map[string]int, len(sf.Enrollments))
	for i, r := range sf.Enrollments {
		if err := validateUser(r.User); err != nil {
			return nil, corrupt("enrollments[%d]: %v", i, err)
		}
		if j, dup := seen[r.User]; dup {
			return nil, corrupt("enrollments[%d]: duplicate user %s (also enrollments[%d])", i, r.User, j)
		}
		seen[r.User] = i
		if !validSealed(r.Secret) {
			return nil, corrupt("enrollments[%d]: secret: malformed", i)
		}
		if r.CreatedAt.IsZero() {
			return nil, corrupt("enrollments[%d]: created_at: required", i)
		}
		if r.LastStep < 0 {
			return nil, corrupt("enrollments[%d]: last_step: negative", i)
		}
	}
	return &sf, nil
}

// validSealed checks the shape of a sealed value: standard padded base64 of
// at least a nonce and a tag.
func validSealed(s string) bool {
	if len(s) == 0 || len(s) > maxSealedLen {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) >= 12+16
}

func encodeStore(sf *storeFile) ([]byte, error) {
	if sf.Enrollments == nil {
		sf.Enrollments = []record{}
	}
	out, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("mfa: store: encode: %w", err)
	}
	return append(out, '\n'), nil
}
