package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity/revoke"
	"github.com/warden-ai/warden/internal/identity/token"
)

func init() {
	register("token", "issue and revoke warden tokens; list and rotate their signing keys", runToken)
}

const tokenUsage = `usage:
  warden token issue --subject ID [--kind user|service|agent] [--actor AGENT] [--scopes a,b]
                     [--groups g,h] [--roles r,s] [--ttl 5m] [--json] (--config FILE | --keys PATH)
  warden token revoke (--jti ID [--until RFC3339] | --subject ID [--until RFC3339]) [--reason TEXT]
                      (--config FILE | --revocations PATH)
  warden token keys list [--json] (--config FILE | --keys PATH)
  warden token keys rotate (--config FILE | --keys PATH)

warden tokens are short-lived ES256 JWTs. Clients normally get them from
POST /v1/warden/token (RFC 8693 token exchange); 'issue' mints one directly
from the signing key file, for operators and tests. With --actor the token
is an agent's, acting for --subject (a user).

'revoke' writes to the durable revocation list (identity.revocations_path):
--jti ends one token (until its expiry; default now + max_ttl, by which
every token has expired); --subject ends every token of that principal, as
subject or actor, issued up to now (until default now + 30 days). Running
servers end requests and streams that use them within about a second.

'keys rotate' makes a new signing key at once; the previous keys keep
verifying the tokens they signed until those expire. A running server
rotates by itself every identity.tokens.rotate_every.

Run 'warden token <subcommand> -h' for its flags.
`

func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return exitOK
	case "issue":
		return tokenIssue(args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(args[1:], stdout, stderr)
	case "keys":
		return tokenKeys(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden token: unknown subcommand %q\n\n%s", args[0], tokenUsage)
		return exitUsage
	}
}

// tokenFiles selects the files: --config FILE (identity.tokens.keys_path,
// identity.revocations_path) or a path given directly.
type tokenFiles struct {
	config      string
	keys        string
	revocations string
}

func (tf *tokenFiles) registerKeys(fs *flag.FlagSet) {
	fs.StringVar(&tf.config, "config", "", "warden config `FILE`; identity.tokens names the key file")
	fs.StringVar(&tf.keys, "keys", "", "signing key file `PATH` (instead of --config)")
}

func (tf *tokenFiles) registerRevocations(fs *flag.FlagSet) {
	fs.StringVar(&tf.config, "config", "", "warden config `FILE`; identity.revocations_path names the list")
	fs.StringVar(&tf.revocations, "revocations", "", "revocation list `PATH` (instead of --config)")
}

// settings resolves the token settings and paths. direct is the path given
// instead of --config ("" if none) and flagName its flag. On failure it has
// printed why and returns the exit code.
func (tf *tokenFiles) settings(cmd, direct, flagName string, stderr io.Writer) (config.Tokens, string, int) {
	cfg := token.WithDefaults(config.Tokens{})
	switch {
	case tf.config != "" && direct != "":
		fmt.Fprintf(stderr, "warden token %s: give either --config or --%s, not both\n", cmd, flagName)
		return cfg, "", exitUsage
	case direct != "":
		return cfg, "", exitOK
	case tf.config == "":
		fmt.Fprintf(stderr, "warden token %s: --config FILE or --%s PATH is required\n", cmd, flagName)
		return cfg, "", exitUsage
	}
	c, err := config.Load(tf.config)
	if err != nil {
		fmt.Fprintf(stderr, "warden token %s: cannot load config %s:\n%v\n", cmd, tf.config, err)
		fmt.Fprintf(stderr, "hint: 'token' only needs identity.tokens and identity.revocations_path from the config; "+
			"if the config is fine for 'serve' but fails here, pass the file directly with --%s PATH\n", flagName)
		return cfg, "", exitFail
	}
	cfg = token.WithDefaults(c.Identity.Tokens)
	cfg.KeysPath = tokenResolve(c.Dir, cfg.KeysPath)
	revocations := c.Identity.RevocationsPath
	if revocations == "" {
		revocations = token.DefaultRevocationsFile
	}
	return cfg, tokenResolve(c.Dir, revocations), exitOK
}

// tokenResolve makes a relative path relative to the config's directory.
func tokenResolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// openKeys opens the signing key file. On failure it has printed why.
func (tf *tokenFiles) openKeys(cmd string, stderr io.Writer) (*token.KeySet, config.Tokens, int) {
	cfg, _, code := tf.settings(cmd, tf.keys, "keys", stderr)
	if code != exitOK {
		return nil, cfg, code
	}
	if tf.keys != "" {
		cfg.KeysPath = tf.keys
	}
	ks, err := token.OpenKeySet(cfg.KeysPath, cfg.RotateEvery.D(), cfg.MaxTTL.D())
	if err != nil {
		fmt.Fprintf(stderr, "warden token %s: %v\n", cmd, err)
		return nil, cfg, exitFail
	}
	return ks, cfg, exitOK
}

// tokenFlagSet returns a flag set that reports to stderr and prints usage
// with the given synopsis.
func tokenFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden token "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden token %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// tokenParse parses flags; positional arguments are refused. It returns an
// exit code when parsing ended the command (-h: exitOK, errors: exitUsage).
func tokenParse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return exitOK, false
}

// tokenList splits a comma-separated flag value; empty items are an error.
func tokenList(name, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("--%s %q: empty item", name, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// tokenIssued is the --json output of `token issue`. It holds the token:
// it is meant for a program, not a log.
type tokenIssued struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	JTI         string    `json:"jti"`
	Subject     string    `json:"subject"`
	Actor       string    `json:"actor,omitempty"`
	Kind        string    `json:"kind"`
	Scopes      []string  `json:"scopes"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"`
}

func tokenIssue(args []string, stdout, stderr io.Writer) int {
	const synopsis = "--subject ID [--kind user|service|agent] [--actor AGENT] [--scopes a,b] [--groups g,h] [--roles r,s] [--ttl 5m] [--json] (--config FILE | --keys PATH)"
	fs := tokenFlagSet("issue", synopsis, stderr)
	var (
		tf      tokenFiles
		subject = fs.String("subject", "", "the token's subject; with --actor, the user the agent acts for (required)")
		kind    = fs.String("kind", "", "principal kind: user (default), service or agent; agent with --actor")
		actor   = fs.String("actor", "", "the agent acting for --subject (the act claim)")
		scopes  = fs.String("scopes", "", "comma-separated scopes, e.g. inference:chat,tools:*")
		groups  = fs.String("groups", "", "comma-separated groups")
		roles   = fs.String("roles", "", "comma-separated roles")
		ttl     = fs.Duration("ttl", 0, "lifetime (default identity.tokens.ttl, 5m; at most max_ttl)")
		asJSON  = fs.Bool("json", false, "print the token and its details as JSON")
	)
	tf.registerKeys(fs)
	if code, done := tokenParse(fs, args, stderr); done {
		return code
	}
	if *subject == "" {
		fmt.Fprintln(stderr, "warden token issue: --subject is required")
		return exitUsage
	}
	switch *kind {
	case "", gateway.KindUser, gateway.KindService, gateway.KindAgent:
	default:
		fmt.Fprintf(stderr, "warden token issue: --kind %q: must be user, service or agent\n", *kind)
		return exitUsage
	}
	if *actor != "" && *kind != "" && *kind != gateway.KindAgent {
		fmt.Fprintln(stderr, "warden token issue: a token with --actor is an agent's; drop --kind or use --kind agent")
		return exitUsage
	}
	if *ttl < 0 {
		fmt.Fprintln(stderr, "warden token issue: --ttl must not be negative")
		return exitUsage
	}
	var lists [3][]string
	for i, f := range []struct{ name, v string }{{"scopes", *scopes}, {"groups", *groups}, {"roles", *roles}} {
		l, err := tokenList(f.name, f.v)
		if err != nil {
			fmt.Fprintf(stderr, "warden token issue: %v\n", err)
			return exitUsage
		}
		lists[i] = l
	}
	ks, cfg, code := tf.openKeys("issue", stderr)
	if ks == nil {
		return code
	}
	now := time.Now()
	rotated, err := ks.EnsureCurrent(now)
	if err != nil {
		fmt.Fprintf(stderr, "warden token issue: %v\n", err)
		return exitFail
	}
	if rotated {
		fmt.Fprintf(stderr, "made a new signing key in %s\n", ks.Path())
	}
	if *ttl > cfg.MaxTTL.D() {
		fmt.Fprintf(stderr, "warden token issue: --ttl %s is above max_ttl; the token lives %s\n", *ttl, cfg.MaxTTL.D())
	}
	claims := token.Claims{Subject: *subject, Kind: *kind, Actor: *actor, Scopes: lists[0], Groups: lists[1], Roles: lists[2]}
	tok, exp, err := token.NewIssuer(ks, cfg).Issue(claims, *ttl, now)
	if err != nil {
		fmt.Fprintf(stderr, "warden token issue: %v\n", err)
		if errors.Is(err, token.ErrInvalidClaims) {
			return exitUsage
		}
		return exitFail
	}
	// Read back what was signed (our own fresh token; go-jose parses it).
	var wc struct {
		jwt.Claims
		Kind  string `json:"kind"`
		Scope string `json:"scope"`
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err == nil {
		err = parsed.UnsafeClaimsWithoutVerification(&wc)
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden token issue: reading the issued token: %v\n", err)
		return exitFail
	}
	if *asJSON {
		out := tokenIssued{AccessToken: tok, TokenType: "Bearer", JTI: wc.ID, Subject: wc.Subject, Actor: *actor,
			Kind: wc.Kind, Scopes: strings.Fields(wc.Scope), ExpiresAt: exp, ExpiresIn: exp.Unix() - now.Unix()}
		if out.Scopes == nil {
			out.Scopes = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden token issue: %v\n", err)
			return exitFail
		}
	} else if _, err := fmt.Fprintln(stdout, tok); err != nil {
		fmt.Fprintf(stderr, "warden token issue: %v\n", err)
		return exitFail
	}
	who := wc.Subject
	if *actor != "" {
		who = fmt.Sprintf("%s acting for %s", *actor, wc.Subject)
	}
	fmt.Fprintf(stderr, "issued token %s for %s %s (scopes: %s; expires: %s)\n", wc.ID, wc.Kind, who,
		tokenScopesText(strings.Fields(wc.Scope)), exp.UTC().Format(time.RFC3339))
	fmt.Fprintf(stderr, "revoke it with: warden token revoke --jti %s --until %s\n", wc.ID, exp.UTC().Format(time.RFC3339))
	return exitOK
}

func tokenRevoke(args []string, stdout, stderr io.Writer) int {
	const synopsis = "(--jti ID [--until RFC3339] | --subject ID [--until RFC3339]) [--reason TEXT] (--config FILE | --revocations PATH)"
	fs := tokenFlagSet("revoke", synopsis, stderr)
	var (
		tf      tokenFiles
		jti     = fs.String("jti", "", "the token id to revoke (printed by 'issue'; the credential_id in audit records)")
		subject = fs.String("subject", "", "revoke every token of this principal (as subject or actor) issued up to now")
		until   = fs.String("until", "", "RFC 3339 time until which the revocation is kept (the token's expiry; default now + max_ttl for --jti, now + 30 days for --subject)")
		reason  = fs.String("reason", "", "why, for the record")
	)
	tf.registerRevocations(fs)
	if code, done := tokenParse(fs, args, stderr); done {
		return code
	}
	var e revoke.Entry
	switch {
	case *jti != "" && *subject != "":
		fmt.Fprintln(stderr, "warden token revoke: give either --jti or --subject, not both")
		return exitUsage
	case *jti != "":
		e = revoke.Entry{Kind: revoke.KindToken, Value: *jti}
	case *subject != "":
		e = revoke.Entry{Kind: revoke.KindSubject, Value: *subject}
	default:
		fmt.Fprintln(stderr, "warden token revoke: --jti ID or --subject ID is required")
		return exitUsage
	}
	e.Reason = *reason
	now := time.Now()
	if *until != "" {
		t, err := time.Parse(time.RFC3339, *until)
		if err != nil {
			fmt.Fprintf(stderr, "warden token revoke: --until %q: want an RFC 3339 time like 2030-01-02T15:04:05Z\n", *until)
			return exitUsage
		}
		if !t.After(now) {
			fmt.Fprintf(stderr, "warden token revoke: --until %s is not in the future (an expired token needs no revocation)\n", *until)
			return exitUsage
		}
		e.Until = t
	}
	cfg, path, code := tf.settings("revoke", tf.revocations, "revocations", stderr)
	if code != exitOK {
		return code
	}
	if tf.revocations != "" {
		path = tf.revocations
	}
	if e.Until.IsZero() && e.Kind == revoke.KindToken {
		e.Until = now.Add(cfg.MaxTTL.D()) // every token has expired by then
	}
	l, err := revoke.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "warden token revoke: %v\n", err)
		return exitFail
	}
	if err := l.Revoke(e); err != nil {
		fmt.Fprintf(stderr, "warden token revoke: %v\n", err)
		if errors.Is(err, revoke.ErrInvalid) {
			return exitUsage
		}
		return exitFail
	}
	for _, got := range l.Entries() {
		if got.Kind == e.Kind && got.Value == e.Value {
			e = got
		}
	}
	what := "token " + e.Value
	if e.Kind == revoke.KindSubject {
		what = fmt.Sprintf("every token of %s issued up to %s", e.Value, e.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "revoked %s (kept until %s)\n", what, e.Until.UTC().Format(time.RFC3339))
	fmt.Fprintln(stderr, "running servers stop accepting it within about a second")
	return exitOK
}

func tokenKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return exitOK
	case "list", "ls":
		return tokenKeysList(args[1:], stdout, stderr)
	case "rotate":
		return tokenKeysRotate(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden token keys: unknown subcommand %q\n\n%s", args[0], tokenUsage)
		return exitUsage
	}
}

// tokenKeyListed is one entry of `token keys list --json`: never the private key.
type tokenKeyListed struct {
	token.KeyInfo
	Status string `json:"status"`
}

func tokenKeysList(args []string, stdout, stderr io.Writer) int {
	fs := tokenFlagSet("keys list", "[--json] (--config FILE | --keys PATH)", stderr)
	var tf tokenFiles
	asJSON := fs.Bool("json", false, "print the keys as a JSON array")
	tf.registerKeys(fs)
	if code, done := tokenParse(fs, args, stderr); done {
		return code
	}
	ks, _, code := tf.openKeys("keys list", stderr)
	if ks == nil {
		return code
	}
	now := time.Now()
	keys := ks.Keys()
	if *asJSON {
		out := make([]tokenKeyListed, 0, len(keys))
		for _, k := range keys {
			out = append(out, tokenKeyListed{KeyInfo: k, Status: k.Status(now)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden token keys list: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tRETIRE AFTER\tDROP AFTER\tSTATUS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.Created.UTC().Format(time.RFC3339),
			k.RetireAfter.UTC().Format(time.RFC3339), k.DropAfter.UTC().Format(time.RFC3339), k.Status(now))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "warden token keys list: %v\n", err)
		return exitFail
	}
	if len(keys) == 0 {
		fmt.Fprintf(stderr, "no signing keys in %s (a server makes one at start; or run 'warden token keys rotate')\n", ks.Path())
	}
	return exitOK
}

func tokenKeysRotate(args []string, stdout, stderr io.Writer) int {
	fs := tokenFlagSet("keys rotate", "(--config FILE | --keys PATH)", stderr)
	var tf tokenFiles
	tf.registerKeys(fs)
	if code, done := tokenParse(fs, args, stderr); done {
		return code
	}
	ks, _, code := tf.openKeys("keys rotate", stderr)
	if ks == nil {
		return code
	}
	k, err := ks.Rotate(time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "warden token keys rotate: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "new signing key %s (signs until %s)\n", k.KID, k.RetireAfter.UTC().Format(time.RFC3339))
	fmt.Fprintln(stderr, "previous keys stop signing now and keep verifying their tokens until those expire; running servers switch within about a second")
	return exitOK
}

func tokenScopesText(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	return strings.Join(scopes, ",")
}
