// Package registry guarantees that warden serves a model version only after
// its signature and every one of its file digests verify: it hashes model
// directories (streamed, in parallel), signs and verifies them in the
// OpenSSF model-signing format (a Sigstore bundle carrying a DSSE envelope
// whose in-toto statement lists every file and its SHA-256), and keeps the
// registry of models and datasets with their states (staged → verified →
// active → retired) and an audited history of every transition.
//
// docs/models.md states exactly which parts of the format are supported.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Errors of the registry. Each is wrapped with the detail (which file,
// which key); errors.Is tells the kind.
var (
	// ErrPath is a path in a manifest or a model directory that warden
	// refuses: absolute, with "..", not canonical, or a symlink.
	ErrPath = errors.New("unsafe path")
	// ErrIntegrity is a model directory whose files differ from the signed
	// manifest (*IntegrityError lists every difference).
	ErrIntegrity = errors.New("model files do not match the signed manifest")
	// ErrBundle is a signature bundle that cannot be parsed or is not in
	// the supported subset of the format.
	ErrBundle = errors.New("malformed signature bundle")
	// ErrSignature is a bundle whose signature does not verify with any
	// trusted key.
	ErrSignature = errors.New("signature does not verify")
	// ErrKey is an unusable key file.
	ErrKey = errors.New("unusable key")
)

// FileDigest is one file of a model: its path relative to the model
// directory (slash-separated), its SHA-256 and its size.
type FileDigest struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // lowercase hex
	Size   int64  `json:"size"`
}

// Manifest is the list of a model's files, sorted by path.
type Manifest struct {
	Files []FileDigest `json:"files"`
}

// RootDigest is the OpenSSF model-signing subject digest: SHA-256 over the
// raw bytes of every file digest, in manifest (path) order.
func (m *Manifest) RootDigest() string {
	h := sha256.New()
	for _, f := range m.Files {
		b, err := hex.DecodeString(f.SHA256)
		if err != nil || len(b) != sha256.Size {
			// Manifests are built by HashDir or parseStatement, which both
			// check the form; a bad digest here is a broken invariant.
			panic("registry: manifest holds a malformed digest")
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TotalBytes is the sum of the file sizes.
func (m *Manifest) TotalBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// HashOptions tune HashDir.
type HashOptions struct {
	// Ignore lists slash-separated paths relative to the directory that are
	// left out (a directory path leaves out everything under it).
	Ignore []string
	// Workers is the number of files hashed at once; default GOMAXPROCS.
	Workers int
}

// DefaultIgnore are the paths left out of a model manifest unless told
// otherwise: the default signature file and version-control metadata (as
// the OpenSSF model-signing tools do).
var DefaultIgnore = []string{DefaultSignatureName, ".git", ".gitattributes", ".github", ".gitignore"}

// DefaultSignatureName is the signature file `warden model sign` writes in
// the model directory by default.
const DefaultSignatureName = "model.sig"

// maxFiles bounds a model directory and a manifest.
const maxFiles = 100_000

// CleanPath checks a manifest path: relative, slash-separated, canonical,
// valid UTF-8 without control characters, no "." or ".." element. It
// returns the path or an error wrapping ErrPath.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty path", ErrPath)
	case len(p) > 4096:
		return "", fmt.Errorf("%w: path longer than 4096 bytes", ErrPath)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrPath, p)
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p) || (len(p) > 1 && p[1] == ':'):
		return "", fmt.Errorf("%w: %q is an absolute path", ErrPath, p)
	case strings.Contains(p, `\`):
		return "", fmt.Errorf("%w: %q holds a backslash", ErrPath, p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q holds a control character", ErrPath, p)
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "..":
			return "", fmt.Errorf("%w: %q leads out of the model directory (\"..\")", ErrPath, p)
		case ".", "":
			return "", fmt.Errorf("%w: %q is not in canonical form", ErrPath, p)
		}
	}
	if path.Clean(p) != p {
		return "", fmt.Errorf("%w: %q is not in canonical form", ErrPath, p)
	}
	return p, nil
}

// ignored reports whether rel is, or is under, one of ignore.
func ignored(rel string, ignore []string) bool {
	for _, ig := range ignore {
		if rel == ig || strings.HasPrefix(rel, ig+"/") {
			return true
		}
	}
	return false
}

// HashDir builds the manifest of the model directory dir: every regular
// file under it except the ignored ones, hashed with SHA-256 by a pool of
// workers that stream each file through a fixed buffer. It refuses a
// directory holding a symlink (one leading out of the directory is named as
// such), a device, pipe or socket, or more than 100,000 files. Files are
// opened through an os.Root, so that nothing swapped in during the walk
// can lead out of dir either.
func HashDir(ctx context.Context, dir string, opts HashOptions) (*Manifest, error) {
	for _, ig := range opts.Ignore {
		if _, err := CleanPath(ig); err != nil {
			return nil, fmt.Errorf("registry: ignore path: %w", err)
		}
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: model directory: %w", err)
	}
	if realDir, err = filepath.Abs(realDir); err != nil {
		return nil, fmt.Errorf("registry: model directory: %w", err)
	}
	fi, err := os.Stat(realDir)
	if err != nil {
		return nil, fmt.Errorf("registry: model directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("registry: %s is not a directory", dir)
	}
	root, err := os.OpenRoot(realDir)
	if err != nil {
		return nil, fmt.Errorf("registry: model directory: %w", err)
	}
	defer root.Close()

	var files []FileDigest
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, perr := CleanPath(rel); perr != nil {
			return perr
		}
		if ignored(rel, opts.Ignore) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return symlinkError(realDir, rel)
		case d.IsDir():
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%w: %q is not a regular file (%s)", ErrPath, rel, t.Type())
		}
		if len(files) >= maxFiles {
			return fmt.Errorf("registry: more than %d files in the model directory", maxFiles)
		}
		files = append(files, FileDigest{Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if err := hashFiles(ctx, root, files, opts.Workers); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", dir, err)
	}
	return &Manifest{Files: files}, nil
}

// symlinkError names a symlink: one whose target is outside dir is an
// escape; any other is refused too, since the signed format records files,
// not links (allow_symlinks is false).
func symlinkError(dir, rel string) error {
	target, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("%w: symlink %q cannot be resolved", ErrPath, rel)
	}
	if r, err := filepath.Rel(dir, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
		return fmt.Errorf("%w: symlink %q leads out of the model directory", ErrPath, rel)
	}
	return fmt.Errorf("%w: %q is a symlink; symlinks are not supported in a model directory (copy the file instead)", ErrPath, rel)
}

// hashBufferSize is each worker's read buffer.
const hashBufferSize = 1 << 20

var hashBuffers = sync.Pool{New: func() any { b := make([]byte, hashBufferSize); return &b }}

// hashFiles fills in the digest and size of every file, Workers at a time
// (default GOMAXPROCS). The first error stops the others.
func hashFiles(ctx context.Context, root *os.Root, files []FileDigest, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > len(files) {
		workers = len(files)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bp := hashBuffers.Get().(*[]byte)
			defer hashBuffers.Put(bp)
			for i := range jobs {
				sum, n, err := hashFile(ctx, root, files[i].Path, *bp)
				if err != nil {
					fail(err)
					continue
				}
				files[i].SHA256, files[i].Size = sum, n
			}
		}()
	}
feed:
	for i := range files {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// hashFile streams one file through SHA-256.
func hashFile(ctx context.Context, root *os.Root, rel string, buf []byte) (string, int64, error) {
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		return "", 0, fmt.Errorf("open %q: %w", rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("stat %q: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%w: %q is not a regular file", ErrPath, rel)
	}
	h := sha256.New()
	var n int64
	for {
		m, err := f.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n += int64(m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("read %q: %w", rel, err)
		}
		if n&(64<<20-1) < int64(m) && ctx.Err() != nil { // every 64 MiB or so
			return "", 0, ctx.Err()
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Mismatch is one difference between a model directory and its signed
// manifest.
type Mismatch struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // changed | added | removed
}

// Mismatch kinds.
const (
	MismatchChanged = "changed" // the file's digest differs from the signed one
	MismatchAdded   = "added"   // the file is in the directory but not in the signed manifest
	MismatchRemoved = "removed" // the file is in the signed manifest but not in the directory
)

// IntegrityError lists every difference between a model directory and its
// signed manifest. It wraps ErrIntegrity.
type IntegrityError struct {
	Mismatches []Mismatch
}

func (e *IntegrityError) Error() string {
	const show = 5
	var parts []string
	for i, m := range e.Mismatches {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Mismatches)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %q", m.Kind, m.Path))
	}
	return fmt.Sprintf("%v: %s", ErrIntegrity, strings.Join(parts, ", "))
}

func (e *IntegrityError) Unwrap() error { return ErrIntegrity }

// Diff compares the signed manifest want with the recomputed got. It
// returns nil when they are equal, else an *IntegrityError naming every
// changed, added and removed file, in path order.
func Diff(want, got *Manifest) error {
	var ms []Mismatch
	i, j := 0, 0
	for i < len(want.Files) || j < len(got.Files) {
		switch {
		case j == len(got.Files) || i < len(want.Files) && want.Files[i].Path < got.Files[j].Path:
			ms = append(ms, Mismatch{Path: want.Files[i].Path, Kind: MismatchRemoved})
			i++
		case i == len(want.Files) || got.Files[j].Path < want.Files[i].Path:
			ms = append(ms, Mismatch{Path: got.Files[j].Path, Kind: MismatchAdded})
			j++
		default:
			if want.Files[i].SHA256 != got.Files[j].SHA256 {
				ms = append(ms, Mismatch{Path: want.Files[i].Path, Kind: MismatchChanged})
			}
			i++
			j++
		}
	}
	if len(ms) == 0 {
		return nil
	}
	return &IntegrityError{Mismatches: ms}
}
