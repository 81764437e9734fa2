package registry

import (
	"context"
	"fmt"
	"strings"
)

// DatasetProvenance is what a dataset version's signed manifest says about
// where it came from: its name and version, its source and licence, and —
// unless it is an origin — the parent version it was made from, the
// parent's root digest, and the transformation that made it.
type DatasetProvenance struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Source         string `json:"source,omitempty"`
	License        string `json:"license,omitempty"`
	Parent         string `json:"parent,omitempty"`         // parent version, "" for an origin
	ParentDigest   string `json:"parent_digest,omitempty"`  // the parent's root digest (hex SHA-256)
	Transformation string `json:"transformation,omitempty"` // how this version was made from the parent
}

// datasetPredicate is warden's dataset predicate: the model-signing
// predicate plus the provenance.
type datasetPredicate struct {
	Serialization serialization     `json:"serialization"`
	Resources     []resource        `json:"resources"`
	Dataset       DatasetProvenance `json:"dataset"`
}

func (p *DatasetProvenance) validate() error {
	if err := ValidName(p.Name); err != nil {
		return fmt.Errorf("dataset name: %w", err)
	}
	if err := ValidName(p.Version); err != nil {
		return fmt.Errorf("dataset version: %w", err)
	}
	for _, f := range []struct{ name, v string }{{"source", p.Source}, {"license", p.License}, {"transformation", p.Transformation}} {
		if len(f.v) > 1024 || strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%s: at most 1024 bytes without control characters", f.name)
		}
	}
	switch {
	case p.Parent == "" && p.ParentDigest != "":
		return fmt.Errorf("parent_digest without a parent")
	case p.Parent != "":
		if err := ValidName(p.Parent); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		if p.Parent == p.Version {
			return fmt.Errorf("version %s names itself as its parent", p.Version)
		}
		if !validHexDigest(p.ParentDigest) {
			return fmt.Errorf("parent_digest must be 64 lowercase hex digits")
		}
		if p.Transformation == "" {
			return fmt.Errorf("a version with a parent must say which transformation made it")
		}
	}
	return nil
}

// SignDataset hashes the dataset directory and returns the signature
// bundle over its manifest and provenance.
func SignDataset(ctx context.Context, dir string, s *Signer, prov DatasetProvenance, opts SignOptions) ([]byte, *Manifest, error) {
	if err := prov.validate(); err != nil {
		return nil, nil, fmt.Errorf("registry: %w", err)
	}
	opts.Name = prov.Name + "@" + prov.Version
	return signDir(ctx, dir, s, opts, DatasetPredicateType, &prov)
}

// Link is one verified step of a dataset's chain of custody.
type Link struct {
	Version        string `json:"version"`
	RootDigest     string `json:"root_digest"`
	Signer         string `json:"signer"`
	Source         string `json:"source,omitempty"`
	License        string `json:"license,omitempty"`
	Parent         string `json:"parent,omitempty"`
	Transformation string `json:"transformation,omitempty"`
	FilesChecked   bool   `json:"files_checked"` // the version's files were recomputed (only the newest)
}

// ChainError is the first broken link of a chain of custody.
type ChainError struct {
	Version string // the version whose link is broken
	Err     error
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("chain of custody broken at version %s: %v", e.Version, e.Err)
}

func (e *ChainError) Unwrap() error { return e.Err }

// maxChain bounds a chain of custody.
const maxChain = 1000

// VerifyDatasetChain verifies the dataset in dir against its bundle (the
// newest version: signature and every file), then walks its parents back
// to the origin: lookup returns the bundle of a version (nil, nil if there
// is none), and each parent's signature must verify with a trusted key and
// its root digest equal the digest its child names. It returns the chain,
// newest first, or the chain up to the first broken link and a
// *ChainError naming it.
func VerifyDatasetChain(ctx context.Context, dir string, bundleJSON []byte, keys []TrustedKey,
	lookup func(version string) ([]byte, error)) ([]Link, error) {
	v, err := VerifyModel(ctx, dir, bundleJSON, keys, VerifyOptions{})
	if err != nil {
		return nil, &ChainError{Version: "(the dataset in " + dir + ")", Err: err}
	}
	prov := v.Signed.Dataset
	if prov == nil {
		return nil, &ChainError{Version: v.Name, Err: fmt.Errorf("%w: the bundle signs a model, not a dataset", ErrBundle)}
	}
	chain := []Link{linkOf(prov, v.RootDigest, v.Signer, true)}
	seen := map[string]bool{prov.Version: true}
	name := prov.Name
	for prov.Parent != "" {
		if ctx.Err() != nil {
			return chain, ctx.Err()
		}
		if len(chain) >= maxChain {
			return chain, &ChainError{Version: prov.Parent, Err: fmt.Errorf("longer than %d versions", maxChain)}
		}
		parent, wantDigest := prov.Parent, prov.ParentDigest
		if seen[parent] {
			return chain, &ChainError{Version: parent, Err: fmt.Errorf("the chain loops back to version %s", parent)}
		}
		seen[parent] = true
		data, err := lookup(parent)
		if err != nil {
			return chain, &ChainError{Version: parent, Err: err}
		}
		if data == nil {
			return chain, &ChainError{Version: parent, Err: fmt.Errorf("no signed manifest of version %s was found", parent)}
		}
		signed, signer, err := verifyBundle(data, keys)
		if err != nil {
			return chain, &ChainError{Version: parent, Err: err}
		}
		p := signed.Dataset
		switch {
		case p == nil:
			return chain, &ChainError{Version: parent, Err: fmt.Errorf("%w: the bundle signs a model, not a dataset", ErrBundle)}
		case p.Name != name || p.Version != parent:
			return chain, &ChainError{Version: parent, Err: fmt.Errorf("the bundle is for %s@%s, not %s@%s", p.Name, p.Version, name, parent)}
		case signed.RootDigest != wantDigest:
			return chain, &ChainError{Version: parent, Err: fmt.Errorf("its digest %s is not the parent digest %s its child names: the parent was altered or replaced", signed.RootDigest, wantDigest)}
		}
		chain = append(chain, linkOf(p, signed.RootDigest, signer, false))
		prov = p
	}
	return chain, nil
}

func linkOf(p *DatasetProvenance, digest, signer string, files bool) Link {
	return Link{Version: p.Version, RootDigest: digest, Signer: signer, Source: p.Source, License: p.License,
		Parent: p.Parent, Transformation: p.Transformation, FilesChecked: files}
}

// ValidName checks a model, dataset or version name: 1 to 128 of
// [A-Za-z0-9._-], not starting with '.' or '-'.
func ValidName(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("must be 1 to 128 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '-' || c == '_') && i > 0:
		default:
			return fmt.Errorf("%q: use letters, digits, '.', '-' and '_' (not first)", clip(s))
		}
	}
	return nil
}
