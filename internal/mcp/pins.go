package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Pin modes: what happens to a tool warden sees for the first time.
const (
	// PinApprove (the default) pins a first-seen tool as pending: it is
	// hidden from tools/list and its calls are refused until an operator
	// approves it (warden mcp approve). Nothing an MCP server adds reaches
	// an agent unreviewed.
	PinApprove = "approve"
	// PinTOFU approves a first-seen tool's definition (trust on first
	// use); a later change is still refused until approved.
	PinTOFU = "tofu"
	// PinOff turns pinning off.
	PinOff = "off"
)

// Pin statuses.
const (
	PinApproved = "approved" // Digest is approved and is what the server shows
	PinPending  = "pending"  // first seen, never approved; Pending awaits approval
	PinChanged  = "changed"  // the server changed an approved tool; Pending awaits approval
)

// Pin is the pinned definition of one tool of one MCP server (route).
type Pin struct {
	Server     string    `json:"server"` // route name
	Tool       string    `json:"tool"`
	Status     string    `json:"status"`
	Digest     string    `json:"digest,omitempty"`  // approved definition; "" if never approved
	Pending    string    `json:"pending,omitempty"` // definition seen and awaiting approval
	FirstSeen  time.Time `json:"first_seen"`
	ChangedAt  time.Time `json:"changed_at,omitzero"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	ApprovedBy string    `json:"approved_by,omitempty"`
}

// Pin errors.
var (
	ErrPinNotFound = errors.New("mcp: no such pinned tool")
	ErrPinDigest   = errors.New("mcp: the digest is not the one awaiting approval")
)

// PinStore keeps the pinned tool definitions in a JSON file, rewritten
// atomically (temporary file, fsync, rename) on every change. It is safe
// for concurrent use within one process; one warden process owns a file.
type PinStore struct {
	mu   sync.Mutex
	path string // "" keeps pins in memory only
	mode string
	pins map[string]*Pin // server + "\x00" + tool
	now  func() time.Time
}

type pinFile struct {
	Version int    `json:"version"`
	Pins    []*Pin `json:"pins"`
}

// OpenPinStore loads the pins in path (a missing file is an empty store).
func OpenPinStore(path, mode string) (*PinStore, error) {
	switch mode {
	case "":
		mode = PinApprove
	case PinApprove, PinTOFU:
	default:
		return nil, fmt.Errorf("mcp: pins: unknown mode %q", mode)
	}
	s := &PinStore{path: path, mode: mode, pins: map[string]*Pin{}, now: time.Now}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mcp: pins: %w", err)
	}
	var f pinFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("mcp: pins: %s: %w", path, err)
	}
	for _, p := range f.Pins {
		if p == nil || p.Server == "" || p.Tool == "" {
			return nil, fmt.Errorf("mcp: pins: %s: a pin without server or tool", path)
		}
		s.pins[pinKey(p.Server, p.Tool)] = p
	}
	return s, nil
}

func pinKey(server, tool string) string { return server + "\x00" + tool }

// Mode returns the store's mode.
func (s *PinStore) Mode() string { return s.mode }

// Observe records that server lists tool with definition digest d and
// reports whether the tool may be shown and called (its approved
// definition is the one seen) and whether this observation found an
// approved definition changed (to be audited).
func (s *PinStore) Observe(server, tool, d string) (ok, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	k := pinKey(server, tool)
	p := s.pins[k]
	switch {
	case p == nil:
		p = &Pin{Server: server, Tool: tool, FirstSeen: now}
		if s.mode == PinTOFU {
			p.Status, p.Digest, p.ApprovedAt, p.ApprovedBy = PinApproved, d, now, "tofu"
		} else {
			p.Status, p.Pending = PinPending, d
		}
		s.pins[k] = p
		return p.Status == PinApproved, false, s.saveLocked()
	case p.Digest == d && p.Digest != "":
		if p.Status != PinApproved { // the server went back to the approved definition
			p.Status, p.Pending = PinApproved, ""
			return true, false, s.saveLocked()
		}
		return true, false, nil
	case p.Pending == d:
		return false, false, nil
	default:
		changed = p.Status == PinApproved
		if p.Digest != "" {
			p.Status = PinChanged
		}
		p.Pending, p.ChangedAt = d, now
		return false, changed, s.saveLocked()
	}
}

// Callable reports whether tool of server has an approved definition that
// is the one last seen.
func (s *PinStore) Callable(server, tool string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pins[pinKey(server, tool)]
	return p != nil && p.Status == PinApproved
}

// Approve approves the pending definition of tool, which must have digest
// d, on behalf of by.
func (s *PinStore) Approve(server, tool, d, by string) (Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pins[pinKey(server, tool)]
	if p == nil {
		return Pin{}, ErrPinNotFound
	}
	if p.Pending == "" || p.Pending != d {
		if p.Status == PinApproved && p.Digest == d {
			return *p, nil // already approved: idempotent
		}
		return Pin{}, ErrPinDigest
	}
	old := *p
	p.Status, p.Digest, p.Pending = PinApproved, d, ""
	p.ApprovedAt, p.ApprovedBy = s.now().UTC(), by
	if err := s.saveLocked(); err != nil {
		*p = old
		return Pin{}, err
	}
	return *p, nil
}

// List returns every pin, sorted by server and tool.
func (s *PinStore) List() []Pin {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pin, 0, len(s.pins))
	for _, p := range s.pins {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Pin) int {
		if c := strings.Compare(a.Server, b.Server); c != 0 {
			return c
		}
		return strings.Compare(a.Tool, b.Tool)
	})
	return out
}

// saveLocked writes the store atomically. Callers hold s.mu.
func (s *PinStore) saveLocked() error {
	if s.path == "" {
		return nil
	}
	f := pinFile{Version: 1, Pins: make([]*Pin, 0, len(s.pins))}
	for _, p := range s.pins {
		f.Pins = append(f.Pins, p)
	}
	slices.SortFunc(f.Pins, func(a, b *Pin) int { return strings.Compare(pinKey(a.Server, a.Tool), pinKey(b.Server, b.Tool)) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("mcp: pins: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".mcp-pins-*")
	if err != nil {
		return fmt.Errorf("mcp: pins: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mcp: pins: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mcp: pins: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mcp: pins: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("mcp: pins: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// ToolDigest is the pinned digest of a tool definition: the SHA-256 of
// the canonical JSON (keys sorted, numbers as written) of its name, title,
// description, input and output schemas and annotations. Anything the
// model reads about the tool is in it.
func ToolDigest(tool map[string]json.RawMessage) (string, error) {
	canon := map[string]any{}
	for _, k := range []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"} {
		raw, ok := tool[k]
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("mcp: tool %s: %w", k, err)
		}
		canon[k] = v
	}
	b, err := json.Marshal(canon) // maps marshal with sorted keys
	if err != nil {
		return "", fmt.Errorf("mcp: tool: %w", err)
	}
	return digest(b), nil
}
