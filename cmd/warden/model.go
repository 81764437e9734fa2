package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-ai/warden/internal/registry"
	"github.com/warden-ai/warden/internal/store/localfile"
)

func init() {
	register("model", "sign and verify model directories; register, promote, roll back and list registry models", runModel)
}

const modelUsage = `usage:
  warden model keygen   [--type ecdsa|ed25519] --out PREFIX
  warden model sign     --key PRIVATE.pem [--name NAME] [--signature FILE] [--ignore PATH]... DIR
  warden model verify   --key PUBLIC.pem [--key ...] [--name NAME] [--signature FILE] [--json] DIR
  warden model register --name NAME --version VERSION [--signature FILE] [--source TEXT] [--commit TEXT]
                        [--notes TEXT] [--json] [connection flags] DIR
  warden model promote  --version VERSION [--json] [connection flags] NAME
  warden model rollback [--reason TEXT] [--json] [connection flags] NAME
  warden model list     [--json] [connection flags] [NAME]

sign hashes every file of DIR (SHA-256, streamed, in parallel) and writes a
signature in the OpenSSF model-signing format: a Sigstore bundle holding a
DSSE envelope whose in-toto statement lists every file and its digest
(default DIR/model.sig). verify checks the signature with the given public
keys and recomputes every digest; it names each changed, added or removed
file. Keys are PEM, ECDSA P-256 or Ed25519 (docs/models.md).

register, promote, rollback and list are clients of warden's model API
(/v1/warden/models): DIR is read by warden itself and must be under one of
models.roots. promote and rollback need the approver role (models.approver_role)
and, when policy says so, MFA. Connection flags are those of 'warden grant':
--server URL, --key-file FILE, --ca-file FILE, --timeout.

Exit status: 0 done, 1 verification failed or refused by warden, 2 bad usage.
`

func runModel(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, modelUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, modelUsage)
		return exitOK
	case "keygen":
		return modelKeygen(args[1:], stdout, stderr)
	case "sign":
		return modelSign(args[1:], stdout, stderr)
	case "verify":
		return modelVerify(args[1:], stdout, stderr)
	case "register":
		return modelRegister(args[1:], stdout, stderr)
	case "promote", "rollback":
		return modelStep(args[0], args[1:], stdout, stderr)
	case "list", "ls", "show":
		return modelList(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden model: unknown subcommand %q\n\n%s", args[0], modelUsage)
		return exitUsage
	}
}

func modelFlagSet(cmd, name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+cmd+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden %s %s %s\n\nflags:\n", cmd, name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func modelKeygen(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("model", "keygen", "[--type ecdsa|ed25519] --out PREFIX", stderr)
	typ := fs.String("type", "ecdsa", "key type: ecdsa (P-256) or ed25519")
	out := fs.String("out", "", "write PREFIX.key (private, mode 0600) and PREFIX.pub (required)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 || *out == "" {
		fmt.Fprintln(stderr, "warden model keygen: --out PREFIX is required and takes no arguments")
		return exitUsage
	}
	var priv any
	var pub any
	switch *typ {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fmt.Fprintf(stderr, "warden model keygen: %v\n", err)
			return exitFail
		}
		priv, pub = k, &k.PublicKey
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			fmt.Fprintf(stderr, "warden model keygen: %v\n", err)
			return exitFail
		}
		priv, pub = k, p
	default:
		fmt.Fprintf(stderr, "warden model keygen: --type %q: want ecdsa or ed25519\n", grantSafe(*typ))
		return exitUsage
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err == nil {
		var pubDER []byte
		if pubDER, err = x509.MarshalPKIXPublicKey(pub); err == nil {
			if _, serr := os.Stat(*out + ".key"); serr == nil {
				err = fmt.Errorf("%s.key exists; not overwriting a key", *out)
			} else if err = localfile.WriteAtomic(*out+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})); err == nil {
				err = os.WriteFile(*out+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden model keygen: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s.key\n%s.pub\n", *out, *out)
	return exitOK
}

func modelSign(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("model", "sign", "--key PRIVATE.pem [--name NAME] [--signature FILE] [--ignore PATH]... DIR", stderr)
	keyFile := fs.String("key", "", "PEM private key, ECDSA P-256 or Ed25519 (required)")
	name := fs.String("name", "", "the model name the signature is for (default: the directory's name)")
	sigPath := fs.String("signature", "", "where to write the signature (default DIR/model.sig)")
	var ignore multiFlag
	fs.Var(&ignore, "ignore", "a path relative to DIR to leave out (repeatable; model.sig and .git* are always left out)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || *keyFile == "" {
		fmt.Fprintln(stderr, "warden model sign: --key FILE and one model directory are required")
		return exitUsage
	}
	dir := pos[0]
	pemBytes, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "warden model sign: --key: %v\n", err)
		return exitUsage
	}
	signer, err := registry.ParseSigner(pemBytes)
	if err != nil {
		fmt.Fprintf(stderr, "warden model sign: --key %s: %v\n", *keyFile, err)
		return exitUsage
	}
	out := *sigPath
	if out == "" {
		out = filepath.Join(dir, registry.DefaultSignatureName)
	}
	ign := append(append([]string{}, registry.DefaultIgnore...), ignore...)
	// A signature written inside DIR under another name is left out too.
	if rel, err := filepath.Rel(dir, out); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
		ign = appendUnique(ign, filepath.ToSlash(rel))
	}
	n := *name
	if n == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			fmt.Fprintf(stderr, "warden model sign: %v\n", err)
			return exitUsage
		}
		n = filepath.Base(abs)
	}
	start := time.Now()
	bundle, m, err := registry.SignModel(context.Background(), dir, signer, registry.SignOptions{Name: n, Ignore: ign})
	if err != nil {
		fmt.Fprintf(stderr, "warden model sign: %v\n", err)
		return exitFail
	}
	if err := localfile.WriteAtomic(out, bundle); err != nil {
		fmt.Fprintf(stderr, "warden model sign: write %s: %v\n", out, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s\n", out)
	fmt.Fprintf(stderr, "signed %s: %d files, %d bytes, root digest sha256:%s (%s)\n",
		grantSafe(n), len(m.Files), m.TotalBytes(), m.RootDigest(), time.Since(start).Round(time.Millisecond))
	return exitOK
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// loadTrustedKeys reads PEM public keys; each is named by its file name.
func loadTrustedKeys(files []string) ([]registry.TrustedKey, error) {
	var keys []registry.TrustedKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		k, err := registry.ParseTrustedKey(filepath.Base(f), b)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func modelVerify(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("model", "verify", "--key PUBLIC.pem [--key ...] [--name NAME] [--signature FILE] [--json] DIR", stderr)
	var keyFiles multiFlag
	fs.Var(&keyFiles, "key", "PEM public key to trust (repeatable; at least one)")
	name := fs.String("name", "", "require the signature to be for this model name")
	sigPath := fs.String("signature", "", "the signature (default DIR/model.sig)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || len(keyFiles) == 0 {
		fmt.Fprintln(stderr, "warden model verify: --key FILE and one model directory are required")
		return exitUsage
	}
	dir := pos[0]
	keys, err := loadTrustedKeys(keyFiles)
	if err != nil {
		fmt.Fprintf(stderr, "warden model verify: --key: %v\n", err)
		return exitUsage
	}
	in := *sigPath
	if in == "" {
		in = filepath.Join(dir, registry.DefaultSignatureName)
	}
	bundle, _, err := localfile.ReadFile(in, 64<<20)
	if err != nil || bundle == nil {
		fmt.Fprintf(stderr, "warden model verify: signature %s: %v\n", in, orMissing(err))
		return exitFail
	}
	start := time.Now()
	v, err := registry.VerifyModel(context.Background(), dir, bundle, keys, registry.VerifyOptions{Name: *name})
	if err != nil {
		return printVerifyFailure("model", err, *asJSON, stdout, stderr)
	}
	if *asJSON {
		return printJSON("model verify", v, stdout, stderr)
	}
	fmt.Fprintf(stdout, "OK %s: signature by %s; %d files, %d bytes match; root digest sha256:%s (%s)\n",
		grantSafe(v.Name), grantSafe(v.Signer), v.Files, v.Bytes, v.RootDigest, time.Since(start).Round(time.Millisecond))
	return exitOK
}

func orMissing(err error) error {
	if err == nil {
		return errors.New("no such file")
	}
	return err
}

// printVerifyFailure prints why verification failed: every mismatch on
// its own line.
func printVerifyFailure(what string, err error, asJSON bool, stdout, stderr io.Writer) int {
	var ie *registry.IntegrityError
	if asJSON {
		res := map[string]any{"ok": false, "error": err.Error()}
		if errors.As(err, &ie) {
			res["mismatches"] = ie.Mismatches
		}
		printJSON(what+" verify", res, stdout, stderr)
		return exitFail
	}
	fmt.Fprintf(stderr, "warden %s verify: FAILED: %v\n", what, err)
	if errors.As(err, &ie) {
		for _, m := range ie.Mismatches {
			fmt.Fprintf(stderr, "  %-8s %s\n", m.Kind, grantSafe(m.Path))
		}
	}
	return exitFail
}

func printJSON(cmd string, v any, stdout, stderr io.Writer) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "warden %s: %v\n", cmd, err)
		return exitFail
	}
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(stderr, "warden %s: %v\n", cmd, err)
		return exitFail
	}
	return exitOK
}

// modelClient builds the API client from the connection flags, with
// messages that name the model command.
func modelClient(conn *grantConn, cmd string, stderr io.Writer) (*grantClient, int) {
	var buf bytes.Buffer
	c, code := conn.client(cmd, &buf)
	if c == nil {
		fmt.Fprint(stderr, strings.Replace(buf.String(), "warden grant ", "warden model ", 1))
	}
	return c, code
}

// modelVersionView is a model version as the API returns it, for printing.
type modelVersionView struct {
	Version      string    `json:"version"`
	State        string    `json:"state"`
	RootDigest   string    `json:"root_digest"`
	Signer       string    `json:"signer"`
	ActivatedAt  time.Time `json:"activated_at"`
	RegisteredBy string    `json:"registered_by"`
	LastError    string    `json:"last_error"`
}

func modelRegister(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("model", "register", "--name NAME --version VERSION [--signature FILE] [--source TEXT] [--commit TEXT] [--notes TEXT] [--json] [connection flags] DIR", stderr)
	var conn grantConn
	conn.register(fs)
	name := fs.String("name", "", "registry model name (required; must equal the name signed)")
	version := fs.String("version", "", "version to register (required)")
	sigPath := fs.String("signature", "", "the signature (default DIR/model.sig)")
	source := fs.String("source", "", "provenance: where the model came from")
	commit := fs.String("commit", "", "provenance: training code revision")
	notes := fs.String("notes", "", "provenance: notes")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || *name == "" || *version == "" {
		fmt.Fprintln(stderr, "warden model register: --name, --version and one model directory are required")
		return exitUsage
	}
	dir, err := filepath.Abs(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "warden model register: %v\n", err)
		return exitUsage
	}
	in := *sigPath
	if in == "" {
		in = filepath.Join(dir, registry.DefaultSignatureName)
	}
	bundle, _, err := localfile.ReadFile(in, 64<<20)
	if err != nil || bundle == nil {
		fmt.Fprintf(stderr, "warden model register: signature %s: %v\n", in, orMissing(err))
		return exitUsage
	}
	if !json.Valid(bundle) {
		fmt.Fprintf(stderr, "warden model register: signature %s is not JSON\n", in)
		return exitUsage
	}
	c, code := modelClient(&conn, "register", stderr)
	if c == nil {
		return code
	}
	body := map[string]any{"name": *name, "version": *version, "dir": dir, "bundle": json.RawMessage(bundle),
		"provenance": map[string]string{"source": *source, "commit": *commit, "notes": *notes}}
	raw, err := c.do(http.MethodPost, "/v1/warden/models", nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "warden model register: %v\n", err)
		return exitFail
	}
	return printModelVersion("register", *name, raw, conn.asJSON, stdout, stderr)
}

func printModelVersion(cmd, name string, raw json.RawMessage, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		return grantPrintJSON(cmd, raw, stdout, stderr)
	}
	var v struct {
		Version *modelVersionView `json:"version"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Version == nil {
		fmt.Fprintf(stderr, "warden model %s: warden's answer holds no version\n", cmd)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s@%s %s (root digest sha256:%s, signed by %s)\n", grantSafe(name), grantSafe(v.Version.Version),
		grantSafe(v.Version.State), grantSafe(v.Version.RootDigest), grantSafe(v.Version.Signer))
	return exitOK
}

func modelStep(step string, args []string, stdout, stderr io.Writer) int {
	synopsis := "--version VERSION [--json] [connection flags] NAME"
	if step == "rollback" {
		synopsis = "[--reason TEXT] [--json] [connection flags] NAME"
	}
	fs := modelFlagSet("model", step, synopsis, stderr)
	var conn grantConn
	conn.register(fs)
	version := fs.String("version", "", "the version to promote (promote only; required there)")
	reason := fs.String("reason", "", "why, for the record (rollback)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || registry.ValidName(pos[0]) != nil {
		fmt.Fprintf(stderr, "warden model %s: one model name is required\n", step)
		return exitUsage
	}
	if step == "promote" && *version == "" {
		fmt.Fprintln(stderr, "warden model promote: --version is required")
		return exitUsage
	}
	c, code := modelClient(&conn, step, stderr)
	if c == nil {
		return code
	}
	body := map[string]string{}
	if *version != "" {
		body["version"] = *version
	}
	if *reason != "" {
		body["reason"] = *reason
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/models/"+pos[0]+"/"+step, nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "warden model %s: %v\n", step, err)
		return exitFail
	}
	return printModelVersion(step, pos[0], raw, conn.asJSON, stdout, stderr)
}

func modelList(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("model", "list", "[--json] [connection flags] [NAME]", stderr)
	var conn grantConn
	conn.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 1 || len(pos) == 1 && registry.ValidName(pos[0]) != nil {
		fmt.Fprintln(stderr, "warden model list: at most one model name")
		return exitUsage
	}
	c, code := modelClient(&conn, "list", stderr)
	if c == nil {
		return code
	}
	path := "/v1/warden/models"
	if len(pos) == 1 {
		path += "/" + pos[0]
	}
	raw, err := c.do(http.MethodGet, path, nil, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden model list: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("list", raw, stdout, stderr)
	}
	type modelView struct {
		Name     string             `json:"name"`
		Versions []modelVersionView `json:"versions"`
	}
	var v struct {
		Models []modelView `json:"models"`
		Model  *modelView  `json:"model"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		fmt.Fprintf(stderr, "warden model list: %v\n", err)
		return exitFail
	}
	if v.Model != nil {
		v.Models = []modelView{*v.Model}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tSTATE\tSIGNER\tROOT DIGEST\tNOTE")
	for _, m := range v.Models {
		for _, mv := range m.Versions {
			d := mv.RootDigest
			if len(d) > 16 {
				d = d[:16] + "…"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", grantSafe(m.Name), grantSafe(mv.Version), grantSafe(mv.State),
				grantSafe(mv.Signer), d, grantSafe(mv.LastError))
		}
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}
