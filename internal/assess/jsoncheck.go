package assess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// checkJSONObject checks that data is exactly one JSON object (RFC 8259)
// whose nesting is at most maxDepth (the object itself is depth 1) and in
// which no object has two members with the same name. encoding/json keeps
// the last of duplicate names while other parsers keep the first; refusing
// them means the signer and warden cannot read different claims from the
// same signed bytes.
func checkJSONObject(data []byte, maxDepth int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not converted: only the structure matters here
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	if err := walkObject(dec, 1, maxDepth); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// walkObject reads the members of an object whose '{' was just read.
func walkObject(dec *json.Decoder, depth, maxDepth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	seen := map[string]struct{}{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return errors.New("not JSON: member name is not a string")
		}
		if _, dup := seen[name]; dup {
			return fmt.Errorf("duplicate member name %q", clip(name))
		}
		seen[name] = struct{}{}
		if err := walkValue(dec, depth, maxDepth); err != nil {
			return err
		}
	}
	return closeDelim(dec, '}')
}

// walkValue reads one value inside a container at depth.
func walkValue(dec *json.Decoder, depth, maxDepth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1, maxDepth)
	case '[':
		if depth+1 > maxDepth {
			return fmt.Errorf("nested more than %d levels deep", maxDepth)
		}
		for dec.More() {
			if err := walkValue(dec, depth+1, maxDepth); err != nil {
				return err
			}
		}
		return closeDelim(dec, ']')
	default:
		return fmt.Errorf("not JSON: unexpected %q", rune(d))
	}
}

func closeDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("not JSON: expected %q", rune(want))
	}
	return nil
}
