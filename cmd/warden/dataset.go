package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	register("dataset", "sign dataset versions with their provenance and verify their chain of custody", runDataset)
}

const datasetUsage = `usage:
  warden dataset sign   --key PRIVATE.pem --name NAME --version VERSION [--source TEXT] [--license TEXT]
                        [--parent VERSION --parent-signature FILE --transformation TEXT]
                        [--signature FILE] DIR
  warden dataset verify --key PUBLIC.pem [--key ...] [--signature FILE] [--chain DIR] [--json] DIR
  warden dataset register [--signature FILE] [--json] [connection flags] DIR
  warden dataset list     [--json] [connection flags] [NAME]

sign hashes every file of DIR and signs its manifest together with the
version's provenance: source, licence, and — unless it is an origin — the
parent version, the parent's digest (read from --parent-signature, whose
signature must verify with the public half of --key) and the transformation
that made this version from it. Default signature: DIR/model.sig.

verify checks the signature and every file of DIR, then walks the chain of
custody back to its origin: the signed manifest of each earlier version is
read from --chain DIR as VERSION.sig (default: the directory of
--signature). Every link must verify with a trusted key, name the same
dataset and carry exactly the digest its child names. The first broken link
is reported.

register records a signed dataset version in warden's registry through the
admin API (POST /v1/warden/datasets): warden verifies the signature, every
file and the chain of custody through the versions it already holds (the
parent must be registered first), and audits the registration. DIR must be
under models.roots. list shows the registered datasets and versions.

Exit status: 0 the chain verified (or the registry call succeeded), 1 a
link is broken (or warden refused), 2 bad usage.
`

func runDataset(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, datasetUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, datasetUsage)
		return exitOK
	case "sign":
		return datasetSign(args[1:], stdout, stderr)
	case "verify":
		return datasetVerify(args[1:], stdout, stderr)
	case "register":
		return datasetRegister(args[1:], stdout, stderr)
	case "list", "ls", "show":
		return datasetList(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden dataset: unknown subcommand %q\n\n%s", args[0], datasetUsage)
		return exitUsage
	}
}

func datasetSign(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("dataset", "sign", "--key PRIVATE.pem --name NAME --version VERSION [...] DIR", stderr)
	keyFile := fs.String("key", "", "PEM private key, ECDSA P-256 or Ed25519 (required)")
	var prov registry.DatasetProvenance
	fs.StringVar(&prov.Name, "name", "", "dataset name (required)")
	fs.StringVar(&prov.Version, "version", "", "this version (required)")
	fs.StringVar(&prov.Source, "source", "", "where the data came from")
	fs.StringVar(&prov.License, "license", "", "the data's licence")
	fs.StringVar(&prov.Parent, "parent", "", "the version this one was made from")
	parentSig := fs.String("parent-signature", "", "the parent version's signature (with --parent)")
	fs.StringVar(&prov.Transformation, "transformation", "", "how this version was made from the parent (with --parent)")
	sigPath := fs.String("signature", "", "where to write the signature (default DIR/model.sig)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || *keyFile == "" || prov.Name == "" || prov.Version == "" {
		fmt.Fprintln(stderr, "warden dataset sign: --key, --name, --version and one dataset directory are required")
		return exitUsage
	}
	if (prov.Parent == "") != (*parentSig == "") {
		fmt.Fprintln(stderr, "warden dataset sign: --parent and --parent-signature go together")
		return exitUsage
	}
	dir := pos[0]
	pemBytes, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset sign: --key: %v\n", err)
		return exitUsage
	}
	signer, err := registry.ParseSigner(pemBytes)
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset sign: --key %s: %v\n", *keyFile, err)
		return exitUsage
	}
	if prov.Parent != "" {
		pubPEM, err := signer.PublicKeyPEM()
		if err == nil {
			var tk registry.TrustedKey
			if tk, err = registry.ParseTrustedKey("signer", pubPEM); err == nil {
				var data []byte
				if data, _, err = localfile.ReadFile(*parentSig, 64<<20); err == nil && data == nil {
					err = errors.New("no such file")
				}
				if err == nil {
					var signed *registry.Signed
					if signed, _, err = registry.InspectBundle(data, []registry.TrustedKey{tk}); err == nil {
						switch p := signed.Dataset; {
						case p == nil:
							err = errors.New("it signs a model, not a dataset")
						case p.Name != prov.Name || p.Version != prov.Parent:
							err = fmt.Errorf("it is for %s@%s, not %s@%s", p.Name, p.Version, prov.Name, prov.Parent)
						default:
							prov.ParentDigest = signed.RootDigest
						}
					}
				}
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "warden dataset sign: --parent-signature %s: %v\n", *parentSig, err)
			return exitFail
		}
	}
	out := *sigPath
	if out == "" {
		out = filepath.Join(dir, registry.DefaultSignatureName)
	}
	ign := append([]string{}, registry.DefaultIgnore...)
	if rel, err := filepath.Rel(dir, out); err == nil && !filepath.IsAbs(rel) && rel != ".." && len(rel) > 0 && rel[0] != '.' {
		ign = appendUnique(ign, filepath.ToSlash(rel))
	}
	bundle, m, err := registry.SignDataset(context.Background(), dir, signer, prov, registry.SignOptions{Ignore: ign})
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset sign: %v\n", err)
		return exitFail
	}
	if err := localfile.WriteAtomic(out, bundle); err != nil {
		fmt.Fprintf(stderr, "warden dataset sign: write %s: %v\n", out, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s\n", out)
	fmt.Fprintf(stderr, "signed dataset %s@%s: %d files, %d bytes, root digest sha256:%s\n",
		grantSafe(prov.Name), grantSafe(prov.Version), len(m.Files), m.TotalBytes(), m.RootDigest())
	return exitOK
}

func datasetVerify(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("dataset", "verify", "--key PUBLIC.pem [--key ...] [--signature FILE] [--chain DIR] [--json] DIR", stderr)
	var keyFiles multiFlag
	fs.Var(&keyFiles, "key", "PEM public key to trust (repeatable; at least one)")
	sigPath := fs.String("signature", "", "the signature of the newest version (default DIR/model.sig)")
	chainDir := fs.String("chain", "", "directory of earlier versions' signatures, VERSION.sig (default: the signature's directory)")
	asJSON := fs.Bool("json", false, "print the chain as JSON")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || len(keyFiles) == 0 {
		fmt.Fprintln(stderr, "warden dataset verify: --key FILE and one dataset directory are required")
		return exitUsage
	}
	dir := pos[0]
	keys, err := loadTrustedKeys(keyFiles)
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset verify: --key: %v\n", err)
		return exitUsage
	}
	in := *sigPath
	if in == "" {
		in = filepath.Join(dir, registry.DefaultSignatureName)
	}
	bundle, _, err := localfile.ReadFile(in, 64<<20)
	if err != nil || bundle == nil {
		fmt.Fprintf(stderr, "warden dataset verify: signature %s: %v\n", in, orMissing(err))
		return exitFail
	}
	cd := *chainDir
	if cd == "" {
		cd = filepath.Dir(in)
	}
	lookup := func(version string) ([]byte, error) {
		if registry.ValidName(version) != nil {
			return nil, fmt.Errorf("version name %q is not a safe file name", version)
		}
		data, _, err := localfile.ReadFile(filepath.Join(cd, version+".sig"), 64<<20)
		return data, err
	}
	start := time.Now()
	chain, err := registry.VerifyDatasetChain(context.Background(), dir, bundle, keys, lookup)
	if *asJSON {
		res := map[string]any{"ok": err == nil, "chain": chain}
		if err != nil {
			res["error"] = err.Error()
			var ce *registry.ChainError
			if errors.As(err, &ce) {
				res["broken_at"] = ce.Version
			}
		}
		printJSON("dataset verify", res, stdout, stderr)
		if err != nil {
			return exitFail
		}
		return exitOK
	}
	for i, l := range chain {
		from := "origin"
		if l.Parent != "" {
			from = fmt.Sprintf("from %s by %q", grantSafe(l.Parent), grantSafe(l.Transformation))
		}
		files := ""
		if l.FilesChecked {
			files = ", files checked"
		}
		fmt.Fprintf(stdout, "%d. %s sha256:%s signed by %s; %s; source %s; licence %s%s\n", i+1, grantSafe(l.Version),
			l.RootDigest, grantSafe(l.Signer), from, grantSafe(l.Source), grantSafe(l.License), files)
	}
	if err != nil {
		return printVerifyFailure("dataset", err, false, stdout, stderr)
	}
	fmt.Fprintf(stdout, "OK chain of custody verified: %d versions back to the origin (%s)\n", len(chain), time.Since(start).Round(time.Millisecond))
	return exitOK
}

// datasetRegister sends a signed dataset version to warden's registry.
func datasetRegister(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("dataset", "register", "[--signature FILE] [--json] [connection flags] DIR", stderr)
	var conn grantConn
	conn.register(fs)
	sigPath := fs.String("signature", "", "the signature (default DIR/"+registry.DefaultSignatureName+")")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "warden dataset register: one dataset directory is required")
		return exitUsage
	}
	dir, err := filepath.Abs(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset register: %v\n", err)
		return exitUsage
	}
	in := *sigPath
	if in == "" {
		in = filepath.Join(dir, registry.DefaultSignatureName)
	}
	bundle, _, err := localfile.ReadFile(in, 64<<20)
	if err != nil || bundle == nil {
		fmt.Fprintf(stderr, "warden dataset register: signature %s: %v\n", in, orMissing(err))
		return exitUsage
	}
	if !json.Valid(bundle) {
		fmt.Fprintf(stderr, "warden dataset register: signature %s is not JSON\n", in)
		return exitUsage
	}
	c, code := datasetClient(&conn, "register", stderr)
	if c == nil {
		return code
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/datasets", nil, map[string]any{"dir": dir, "bundle": json.RawMessage(bundle)})
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset register: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("register", raw, stdout, stderr)
	}
	var v struct {
		Version *datasetVersionView `json:"version"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Version == nil {
		fmt.Fprintln(stderr, "warden dataset register: warden's answer holds no version")
		return exitFail
	}
	fmt.Fprintf(stdout, "%s@%s registered (root digest sha256:%s, signed by %s, parent %s)\n", grantSafe(v.Version.Name),
		grantSafe(v.Version.Version), grantSafe(v.Version.RootDigest), grantSafe(v.Version.Signer), grantSafe(orNoParent(v.Version.Parent)))
	return exitOK
}

// datasetList prints the registered datasets.
func datasetList(args []string, stdout, stderr io.Writer) int {
	fs := modelFlagSet("dataset", "list", "[--json] [connection flags] [NAME]", stderr)
	var conn grantConn
	conn.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 1 || len(pos) == 1 && registry.ValidName(pos[0]) != nil {
		fmt.Fprintln(stderr, "warden dataset list: at most one dataset name")
		return exitUsage
	}
	c, code := datasetClient(&conn, "list", stderr)
	if c == nil {
		return code
	}
	path := "/v1/warden/datasets"
	if len(pos) == 1 {
		path += "/" + pos[0]
	}
	raw, err := c.do(http.MethodGet, path, nil, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden dataset list: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("list", raw, stdout, stderr)
	}
	type datasetView struct {
		Name     string               `json:"name"`
		Versions []datasetVersionView `json:"versions"`
	}
	var v struct {
		Datasets []datasetView `json:"datasets"`
		Dataset  *datasetView  `json:"dataset"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		fmt.Fprintf(stderr, "warden dataset list: %v\n", err)
		return exitFail
	}
	if v.Dataset != nil {
		v.Datasets = []datasetView{*v.Dataset}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tVERSION\tPARENT\tSIGNER\tLICENSE\tROOT DIGEST")
	for _, d := range v.Datasets {
		for _, dv := range d.Versions {
			dg := dv.RootDigest
			if len(dg) > 16 {
				dg = dg[:16] + "…"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", grantSafe(d.Name), grantSafe(dv.Version),
				grantSafe(orNoParent(dv.Parent)), grantSafe(dv.Signer), grantSafe(dv.License), dg)
		}
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}

// datasetVersionView is a dataset version as the API returns it, for printing.
type datasetVersionView struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Parent     string `json:"parent"`
	License    string `json:"license"`
	RootDigest string `json:"root_digest"`
	Signer     string `json:"signer"`
}

func orNoParent(p string) string {
	if p == "" {
		return "(origin)"
	}
	return p
}

func datasetClient(conn *grantConn, cmd string, stderr io.Writer) (*grantClient, int) {
	var buf bytes.Buffer
	c, code := conn.client(cmd, &buf)
	if c == nil {
		fmt.Fprint(stderr, strings.Replace(buf.String(), "warden grant ", "warden dataset ", 1))
	}
	return c, code
}
