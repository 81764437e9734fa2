package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Retention: Archive moves old segments out of the log directory. A segment
// can go once a verified signed checkpoint covers every record in it and it
// is not the active one. The stored hashes stay, so Verify still checks the
// whole tree against the checkpoint; it re-reads archived records only when
// given the archive directory.
//
// archive.json in the log directory lists the archived segments, from
// record 0 on without gaps:
//
//	{"version":1,"segments":[{"name":"seg-…","first":0,"count":N,"sha256":"<hex of the file>"}, …]}

const manifestFile = "archive.json"

type archiveManifest struct {
	Version  int               `json:"version"`
	Segments []archivedSegment `json:"segments"`
}

type archivedSegment struct {
	Name   string `json:"name"`
	First  int64  `json:"first"`
	Count  int64  `json:"count"`
	SHA256 string `json:"sha256"`
}

// next is the first record not archived.
func (m archiveManifest) next() int64 {
	if len(m.Segments) == 0 {
		return 0
	}
	s := m.Segments[len(m.Segments)-1]
	return s.First + s.Count
}

func (m archiveManifest) has(name string) bool {
	for _, s := range m.Segments {
		if s.Name == name {
			return true
		}
	}
	return false
}

// readManifest reads the archive manifest of a log directory; no file is
// an empty manifest.
func readManifest(dir string) (archiveManifest, error) {
	data, st, err := localfile.ReadFile(filepath.Join(dir, manifestFile), 16<<20)
	if err != nil {
		return archiveManifest{}, fmt.Errorf("%s: %w", manifestFile, err)
	}
	if !st.Exists {
		return archiveManifest{Version: 1}, nil
	}
	m, err := parseManifest(data)
	if err != nil {
		return archiveManifest{}, fmt.Errorf("%s: %w", manifestFile, err)
	}
	return m, nil
}

// parseManifest decodes and checks an archive manifest: version 1, segments
// contiguous from record 0, names that match their first record.
func parseManifest(data []byte) (archiveManifest, error) {
	var m archiveManifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("malformed: %w", err)
	}
	if dec.More() {
		return m, errors.New("malformed: data after the object")
	}
	if m.Version != 1 {
		return m, fmt.Errorf("version %d, want 1", m.Version)
	}
	var next int64
	for i, s := range m.Segments {
		if s.First != next || s.Count <= 0 || s.Count > 1<<40 || s.Name != segName(s.First) {
			return m, fmt.Errorf("segment %d (%.40q): not contiguous from record 0 or misnamed", i, s.Name)
		}
		if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != sha256.Size {
			return m, fmt.Errorf("segment %s: malformed sha256", s.Name)
		}
		next += s.Count
	}
	return m, nil
}

// ArchiveReport says what Archive did.
type ArchiveReport struct {
	Segments   []string // names of the segments moved
	First, End int64    // records [First, End) were moved
	Bytes      int64
	Checkpoint *Checkpoint // the checkpoint that covers them
	Retained   int64       // the first record left in the log
}

// Archive moves every segment of the log in dir that is fully covered by
// its latest checkpoint (verified with v) to archiveDir. It first verifies
// the whole log (Verify) and refuses to move anything from a log that does
// not verify. It may run while warden writes the log: the active segment is
// never moved, and readers find moved segments through archive.json. Two
// archivers exclude each other with a lock.
func Archive(ctx context.Context, dir, archiveDir string, v note.Verifier) (ArchiveReport, error) {
	var rep ArchiveReport
	if archiveDir == "" {
		return rep, errors.New("audit: archive: no archive directory given")
	}
	unlock, err := localfile.Lock(filepath.Join(dir, "ARCHIVE.lock"), 10*time.Second)
	if err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	defer unlock()
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	defer b.Close()
	vr, err := VerifyBackend(ctx, b, VerifyOptions{Verifier: v})
	if err != nil {
		return rep, fmt.Errorf("audit: archive: the log does not verify; nothing was moved: %w", err)
	}
	if vr.Checkpoint == nil {
		return rep, errors.New("audit: archive: the log has no checkpoint yet; nothing can be archived")
	}
	rep.Checkpoint = vr.Checkpoint
	covered := vr.Checkpoint.Tree.N
	if err := os.MkdirAll(archiveDir, 0o700); err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}

	b.mu.Lock()
	segs := append([]segment(nil), b.segs...)
	m := b.archived
	b.mu.Unlock()
	rep.First, rep.End = m.next(), m.next()
	var moved []segment
	for i := 0; i+1 < len(segs); i++ {
		s, end := segs[i], segs[i+1].first
		if end > covered {
			break
		}
		sum, n, err := copyToArchive(filepath.Join(dir, s.name), filepath.Join(archiveDir, s.name))
		if err != nil {
			return rep, fmt.Errorf("audit: archive %s: %w", s.name, err)
		}
		m.Segments = append(m.Segments, archivedSegment{Name: s.name, First: s.first, Count: end - s.first, SHA256: sum})
		moved = append(moved, s)
		rep.Segments = append(rep.Segments, s.name)
		rep.End, rep.Bytes = end, rep.Bytes+n
	}
	rep.Retained = m.next()
	if len(moved) == 0 {
		return rep, nil
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return rep, fmt.Errorf("audit: archive: %w", err)
	}
	if err := localfile.WriteAtomic(filepath.Join(dir, manifestFile), append(data, '\n')); err != nil {
		return rep, fmt.Errorf("audit: archive: write %s: %w", manifestFile, err)
	}
	for _, s := range moved {
		if err := os.Remove(filepath.Join(dir, s.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, fmt.Errorf("audit: archive: remove %s (it is archived; remove it by hand): %w", s.name, err)
		}
	}
	if err := localfile.SyncDir(dir); err != nil {
		return rep, fmt.Errorf("audit: archive: sync directory: %w", err)
	}
	return rep, nil
}

// copyToArchive copies src to dst durably and returns the hex SHA-256 of
// the content. If dst exists (an archive run that stopped before updating
// the manifest), it must have the same content.
func copyToArchive(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	h := sha256.New()
	if existing, err := os.Open(dst); err == nil {
		defer existing.Close()
		h2 := sha256.New()
		if _, err := io.Copy(h2, existing); err != nil {
			return "", 0, err
		}
		n, err := io.Copy(h, in)
		if err != nil {
			return "", 0, err
		}
		if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
			return "", 0, fmt.Errorf("%s exists in the archive with other content", filepath.Base(dst))
		}
		return hex.EncodeToString(h.Sum(nil)), n, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	if err := os.Link(tmp.Name(), dst); err != nil {
		return "", 0, err
	}
	if err := localfile.SyncDir(filepath.Dir(dst)); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
