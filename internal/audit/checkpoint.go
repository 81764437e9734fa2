package audit

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// A checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is
// a tlog-checkpoint (C2SP):
//
//	<origin>
//	<tree size, decimal>
//	<root hash, base64>
//
// followed by a blank line and an Ed25519 signature line per signer. The
// size and hash lines are written and read by tlog.FormatTree and
// tlog.ParseTree; only the first line differs from theirs, and it names this
// log instead of the Go checksum database.

// DefaultOrigin is the origin of a log whose configuration names none.
const DefaultOrigin = "warden/audit"

// maxCheckpointBytes bounds a signed checkpoint read from disk, a witness
// or a command line.
const maxCheckpointBytes = 64 << 10

// treePrefix is the first line tlog.FormatTree writes.
var treePrefix = []byte("go.sum database tree\n")

// CheckOrigin reports whether s can be an origin: 1-255 bytes of printable
// characters, no space and no '+' (it is also the signing key's name).
func CheckOrigin(s string) error {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return errors.New("origin must be 1-255 bytes of UTF-8")
	}
	for _, r := range s {
		if r == '+' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("origin %q: must not contain spaces, '+' or control characters", s)
		}
	}
	return nil
}

// formatCheckpoint returns the checkpoint text of tree for origin.
func formatCheckpoint(origin string, tree tlog.Tree) []byte {
	t := tlog.FormatTree(tree)
	return append([]byte(origin+"\n"), t[len(treePrefix):]...)
}

// parseCheckpointText parses a checkpoint's text (the note's text, without
// signatures) into its origin and tree. Extension lines after the hash are
// allowed and ignored, as C2SP says.
func parseCheckpointText(text []byte) (string, tlog.Tree, error) {
	origin, rest, ok := bytes.Cut(text, []byte("\n"))
	if !ok || CheckOrigin(string(origin)) != nil {
		return "", tlog.Tree{}, errors.New("malformed checkpoint: bad origin line")
	}
	tree, err := tlog.ParseTree(append(bytes.Clone(treePrefix), rest...))
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("malformed checkpoint: %w", err)
	}
	return string(origin), tree, nil
}

// Checkpoint is a verified signed checkpoint.
type Checkpoint struct {
	Origin string
	Tree   tlog.Tree // N records, root hash
	Signed []byte    // the signed note as stored
}

// CheckpointError says a checkpoint cannot be trusted: malformed, not
// signed by the verifier key, a bad signature, or another log's.
type CheckpointError struct {
	Reason string
}

func (e *CheckpointError) Error() string { return "checkpoint: " + e.Reason }

// OpenCheckpoint parses a signed checkpoint and checks its signature with
// v. A note signed only by other keys, or whose signature by v's key does
// not verify, is a *CheckpointError that says so; it is never accepted.
func OpenCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	if len(signed) > maxCheckpointBytes {
		return nil, &CheckpointError{Reason: fmt.Sprintf("%d bytes, more than %d", len(signed), maxCheckpointBytes)}
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var by []string
			for _, s := range unverified.Note.UnverifiedSigs {
				by = append(by, fmt.Sprintf("%s (key hash %08x)", s.Name, s.Hash))
			}
			return nil, &CheckpointError{Reason: fmt.Sprintf("not signed by the verifier key %s (key hash %08x); signed by %s: forged, or another log's",
				v.Name(), v.KeyHash(), strings.Join(by, ", "))}
		case errors.As(err, &invalid):
			return nil, &CheckpointError{Reason: fmt.Sprintf("the signature by %s does not verify: the checkpoint was altered or forged", invalid.Name)}
		default:
			return nil, &CheckpointError{Reason: fmt.Sprintf("not a signed note: %v", err)}
		}
	}
	origin, tree, err := parseCheckpointText([]byte(n.Text))
	if err != nil {
		return nil, &CheckpointError{Reason: err.Error()}
	}
	return &Checkpoint{Origin: origin, Tree: tree, Signed: bytes.Clone(signed)}, nil
}

// Key is a log's checkpoint signing key with its verifier.
type Key struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// Name is the key's name; warden names a new key after the log's origin.
func (k *Key) Name() string { return k.verifier.Name() }

// VerifierKey is the public verifier key in note format
// (name+hash+base64), what `warden audit verify --key` takes.
func (k *Key) VerifierKey() string { return k.vkey }

// Verifier returns the key's note verifier.
func (k *Key) Verifier() note.Verifier { return k.verifier }

// sign signs a checkpoint of tree.
func (k *Key) sign(origin string, tree tlog.Tree) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(formatCheckpoint(origin, tree))}, k.signer)
}

// NewKey pairs an encoded signer key with its verifier key and checks that
// they belong together.
func NewKey(skey, vkey string) (*Key, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, errors.New("audit: key: malformed signer key")
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, errors.New("audit: key: malformed verifier key")
	}
	if s.Name() != v.Name() || s.KeyHash() != v.KeyHash() {
		return nil, errors.New("audit: key: the signer and verifier keys do not belong together")
	}
	msg, err := note.Sign(&note.Note{Text: "warden audit key check\n"}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		return nil, errors.New("audit: key: the verifier key does not verify the signer key's signature")
	}
	return &Key{signer: s, verifier: v, vkey: vkey}, nil
}

// ParseKeyFile parses a key file: the signer key on one line and its
// verifier key on the next; empty lines and lines starting with '#' are
// ignored.
func ParseKeyFile(data []byte) (*Key, error) {
	var lines []string
	for l := range strings.SplitSeq(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "PRIVATE+KEY+") {
		return nil, errors.New("audit: key file: want the signer key (PRIVATE+KEY+...) and the verifier key, one per line")
	}
	return NewKey(lines[0], lines[1])
}

// LoadKey reads a key file, which must not be readable or writable by
// group or others.
func LoadKey(path string) (*Key, error) {
	data, st, err := localfile.ReadFile(path, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("audit: key file: %w", err)
	}
	if !st.Exists {
		return nil, fmt.Errorf("audit: key file %s: %w", path, fs.ErrNotExist)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: key file %s is accessible by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	k, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

// LoadOrCreateKey loads the key file at path, or, if there is none,
// generates an Ed25519 key named name and writes it there with mode 0600.
// created reports a new key. Two processes racing to create it end up with
// the same key: the file is linked into place only if absent.
func LoadOrCreateKey(path, name string) (k *Key, created bool, err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		k, err := LoadKey(path)
		return k, false, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, false, fmt.Errorf("audit: generate checkpoint key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	text := "# warden audit checkpoint key: the signer key (secret), then its verifier key (public)\n" + skey + "\n" + vkey + "\n"
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadKey(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("audit: key file: %w", err)
	}
	if err := localfile.SyncDir(dir); err != nil {
		return nil, false, fmt.Errorf("audit: key file: sync directory: %w", err)
	}
	k, err = NewKey(skey, vkey)
	return k, err == nil, err
}

// ParseVerifierKey parses a verifier key given as text (name+hash+base64)
// or as the path of a file holding one: a file of just the verifier key,
// or a key file, whose verifier line is used.
func ParseVerifierKey(s string) (note.Verifier, error) {
	s = strings.TrimSpace(s)
	if v, err := note.NewVerifier(s); err == nil {
		return v, nil
	}
	data, st, err := localfile.ReadFile(s, 64<<10)
	if err != nil || !st.Exists {
		return nil, fmt.Errorf("audit: %.80q is neither a verifier key (name+hash+key) nor a readable file holding one", s)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "PRIVATE+") {
			continue
		}
		v, err := note.NewVerifier(l)
		if err != nil {
			return nil, fmt.Errorf("audit: %s: malformed verifier key", s)
		}
		return v, nil
	}
	return nil, fmt.Errorf("audit: %s holds no verifier key", s)
}
