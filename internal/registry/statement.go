package registry

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The OpenSSF model-signing format (github.com/sigstore/model-transparency,
// docs/model_signing_format.md): a DSSE envelope of payload type
// application/vnd.in-toto+json holding an in-toto Statement v1 with
// predicate type https://model_signing/signature/v1.0.
const (
	PayloadType        = "application/vnd.in-toto+json"
	StatementType      = "https://in-toto.io/Statement/v1"
	ModelPredicateType = "https://model_signing/signature/v1.0"
	// DatasetPredicateType is warden's own predicate for dataset versions
	// (the model predicate plus provenance: source, licence, parent,
	// transformation). See docs/models.md.
	DatasetPredicateType = "https://warden.dev/dataset/v1"

	serializationFiles = "files"
	hashSHA256         = "sha256"
	// maxPayloadBytes bounds the statement a bundle may carry.
	maxPayloadBytes = 32 << 20
)

// The statement is built and parsed by hand, with plain structs: the
// in-toto Go library represents the predicate as a protobuf Struct, which
// turns every number into a float and gives no control over field order;
// the model-signing predicate is small and fully specified, and a strict
// parser of exactly the subset warden supports is the safer input
// boundary.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type serialization struct {
	Method        string   `json:"method"`
	HashType      string   `json:"hash_type"`
	AllowSymlinks bool     `json:"allow_symlinks"`
	IgnorePaths   []string `json:"ignore_paths"`
}

type resource struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
}

// modelPredicate is the model-signing v1.0 predicate.
type modelPredicate struct {
	Serialization serialization `json:"serialization"`
	Resources     []resource    `json:"resources"`
}

// Signed is what a verified statement says: the subject name, the files
// and their digests, the paths the signer left out, and for a dataset its
// provenance.
type Signed struct {
	Name          string
	RootDigest    string // hex SHA-256 over the file digests (the subject digest)
	Manifest      *Manifest
	Ignore        []string
	PredicateType string
	Dataset       *DatasetProvenance // nil for a model
}

// buildStatement returns the in-toto statement for m, named name, with
// the given ignore paths and predicate type; for a dataset, prov is added
// to the predicate.
func buildStatement(name string, m *Manifest, ignore []string, predicateType string, prov *DatasetProvenance) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("registry: the statement needs a subject name")
	}
	res := make([]resource, 0, len(m.Files))
	for _, f := range m.Files {
		res = append(res, resource{Name: f.Path, Algorithm: hashSHA256, Digest: f.SHA256})
	}
	if ignore == nil {
		ignore = []string{}
	}
	ser := serialization{Method: serializationFiles, HashType: hashSHA256, IgnorePaths: ignore}
	var pred any = modelPredicate{Serialization: ser, Resources: res}
	if prov != nil {
		pred = datasetPredicate{Serialization: ser, Resources: res, Dataset: *prov}
	}
	pb, err := json.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("registry: encode predicate: %w", err)
	}
	st := statement{
		Type:          StatementType,
		Subject:       []subject{{Name: name, Digest: map[string]string{hashSHA256: m.RootDigest()}}},
		PredicateType: predicateType,
		Predicate:     pb,
	}
	return json.Marshal(st)
}

// parseStatement parses and checks a statement: the supported predicate
// types, method "files" with SHA-256, one subject whose digest is the root
// digest of the listed files, every path safe and listed once.
func parseStatement(payload []byte) (*Signed, error) {
	bad := func(format string, args ...any) (*Signed, error) {
		return nil, fmt.Errorf("%w: statement: %s", ErrBundle, fmt.Sprintf(format, args...))
	}
	if len(payload) > maxPayloadBytes {
		return bad("larger than %d bytes", maxPayloadBytes)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return bad("not a JSON in-toto statement: %v", err)
	}
	if st.Type != StatementType {
		return bad("_type is %q, want %q", clip(st.Type), StatementType)
	}
	if st.PredicateType != ModelPredicateType && st.PredicateType != DatasetPredicateType {
		return bad("predicateType %q is not supported (want %q)", clip(st.PredicateType), ModelPredicateType)
	}
	if len(st.Subject) != 1 {
		return bad("want exactly one subject, got %d", len(st.Subject))
	}
	sub := st.Subject[0]
	if sub.Name == "" || len(sub.Name) > 256 {
		return bad("the subject name must be 1 to 256 bytes")
	}
	root, ok := sub.Digest[hashSHA256]
	if !ok || !validHexDigest(root) {
		return bad("the subject has no sha256 digest of 64 lowercase hex digits")
	}
	var (
		ser  serialization
		res  []resource
		prov *DatasetProvenance
	)
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	if st.PredicateType == DatasetPredicateType {
		dec.DisallowUnknownFields()
		var p datasetPredicate
		if err := dec.Decode(&p); err != nil {
			return bad("dataset predicate: %v", err)
		}
		if err := p.Dataset.validate(); err != nil {
			return bad("dataset predicate: %v", err)
		}
		ser, res, prov = p.Serialization, p.Resources, &p.Dataset
	} else {
		var p modelPredicate
		if err := dec.Decode(&p); err != nil {
			return bad("predicate: %v", err)
		}
		ser, res = p.Serialization, p.Resources
	}
	if ser.Method != serializationFiles {
		return bad("serialization method %q is not supported (only %q: one digest per file; shards are not supported)", clip(ser.Method), serializationFiles)
	}
	if ser.HashType != hashSHA256 {
		return bad("hash_type %q is not supported (only sha256)", clip(ser.HashType))
	}
	if ser.AllowSymlinks {
		return bad("allow_symlinks is true; warden refuses symlinks in model directories")
	}
	for _, ig := range ser.IgnorePaths {
		if _, err := CleanPath(ig); err != nil {
			return bad("ignore_paths: %v", err)
		}
	}
	if len(res) > maxFiles {
		return bad("more than %d resources", maxFiles)
	}
	m := &Manifest{Files: make([]FileDigest, 0, len(res))}
	seen := make(map[string]bool, len(res))
	for _, r := range res {
		p, err := CleanPath(r.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: statement: resource: %w", ErrBundle, err)
		}
		if seen[p] {
			return bad("resource %q is listed twice", p)
		}
		seen[p] = true
		if r.Algorithm != hashSHA256 {
			return bad("resource %q: algorithm %q is not supported (only sha256)", p, clip(r.Algorithm))
		}
		if !validHexDigest(r.Digest) {
			return bad("resource %q: digest is not 64 lowercase hex digits", p)
		}
		if ignored(p, ser.IgnorePaths) {
			return bad("resource %q is under an ignored path", p)
		}
		m.Files = append(m.Files, FileDigest{Path: p, SHA256: r.Digest, Size: -1})
	}
	// The format lists resources in path order; the root digest is over
	// that order, so sort before checking it.
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if got := m.RootDigest(); got != root {
		return bad("the subject digest %s is not the digest of the listed files (%s): the manifest is inconsistent", root, got)
	}
	return &Signed{Name: sub.Name, RootDigest: root, Manifest: m, Ignore: ser.IgnorePaths,
		PredicateType: st.PredicateType, Dataset: prov}, nil
}

func validHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return false
	}
	return strings.ToLower(s) == s
}

// clip shortens attacker-supplied text before it goes into an error.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
