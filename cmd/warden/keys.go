package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

func init() {
	register("keys", "create, list, rotate, revoke and prune API keys for service accounts and agents", runKeys)
}

const (
	// keysDefaultTTL is the lifetime `keys create` gives a key unless told otherwise.
	keysDefaultTTL = 90 * 24 * time.Hour
	// keysDefaultOverlap is how long `keys rotate` keeps the old key working.
	keysDefaultOverlap = 24 * time.Hour
	// keysDefaultPruneAge is how long `keys prune` keeps dead keys' records.
	keysDefaultPruneAge = 30 * 24 * time.Hour
)

const keysUsage = `usage:
  warden keys create --subject NAME [--kind service|agent] [--scopes a,b] [--ttl 90d | --no-expiry] [--json] (--config FILE | --store PATH)
  warden keys list [--json] (--config FILE | --store PATH)
  warden keys rotate [--overlap 24h] [--json] (--config FILE | --store PATH) ID
  warden keys revoke (--config FILE | --store PATH) ID
  warden keys prune [--older-than 30d] (--config FILE | --store PATH)

The key store is the file named by keys.path in the config (--config), or
given directly (--store). Keys are stored only as SHA-256 hashes; 'create'
and 'rotate' print the key once. A running 'warden serve' picks up new,
rotated and revoked keys within about a second.

Keys expire: 90 days by default, at most 365 days (--ttl); a key that never
expires must be asked for with --no-expiry. 'rotate' replaces a key with a
new one for the same subject, kind and scopes and the same lifetime; the old
key keeps working for the overlap (default 24h, 0 stops it at once), so
clients can switch without downtime. 'prune' deletes the records of keys
revoked or expired for longer than --older-than (default 30 days); active
keys are never pruned. 'list' shows when each key last authenticated, as
last written by the servers (they write it about once a minute).

Run 'warden keys <subcommand> -h' for its flags.
`

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	case "create":
		return keysCreate(args[1:], stdout, stderr)
	case "list", "ls":
		return keysList(args[1:], stdout, stderr)
	case "rotate":
		return keysRotate(args[1:], stdout, stderr)
	case "revoke":
		return keysRevoke(args[1:], stdout, stderr)
	case "prune":
		return keysPrune(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden keys: unknown subcommand %q\n\n%s", args[0], keysUsage)
		return exitUsage
	}
}

// keyStoreFlags selects the key store: --config FILE (keys.path) or --store PATH.
type keyStoreFlags struct {
	config string
	store  string
}

func (sf *keyStoreFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.config, "config", "", "warden config `FILE`; its keys.path names the key store")
	fs.StringVar(&sf.store, "store", "", "key store `PATH` (instead of --config)")
}

// open opens the selected store. On failure it has printed why and returns
// the exit code.
func (sf *keyStoreFlags) open(cmd string, stderr io.Writer) (*identity.KeyStore, int) {
	var path string
	switch {
	case sf.config != "" && sf.store != "":
		fmt.Fprintf(stderr, "warden keys %s: give either --config or --store, not both\n", cmd)
		return nil, exitUsage
	case sf.store != "":
		path = sf.store
	case sf.config != "":
		cfg, err := config.Load(sf.config)
		if err != nil {
			fmt.Fprintf(stderr, "warden keys %s: cannot load config %s:\n%v\n", cmd, sf.config, err)
			fmt.Fprintf(stderr, "hint: 'keys' only needs keys.path from the config; if the config is fine for 'serve' "+
				"but fails here (for example an upstream credential env var is not set in this shell), "+
				"pass the key store directly with --store PATH\n")
			return nil, exitFail
		}
		path = cfg.Keys.Path
	default:
		fmt.Fprintf(stderr, "warden keys %s: --config FILE or --store PATH is required\n", cmd)
		return nil, exitUsage
	}
	ks, err := identity.OpenKeyStore(path)
	if err != nil {
		fmt.Fprintf(stderr, "warden keys %s: %v\n", cmd, err)
		return nil, exitFail
	}
	return ks, exitOK
}

// newKeysFlagSet returns a flag set that reports to stderr and prints usage
// with the given synopsis.
func newKeysFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden keys %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseKeysArgs parses flags that may come before or after positional arguments
// (`revoke ID --store x` as well as `revoke --store x ID`); everything after
// "--" is positional. It returns the positional arguments and an exit code
// when parsing ended the command (-h gives exitOK, bad flags exitUsage).
func parseKeysArgs(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			return nil, exitUsage, true // flag has printed the error and the usage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, false
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), exitOK, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// keyDurationFlag is a non-negative duration: a Go duration ("720h") or whole
// days ("90d").
type keyDurationFlag time.Duration

func (t *keyDurationFlag) String() string {
	d := time.Duration(*t)
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (t *keyDurationFlag) Set(s string) error {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 32)
		if err != nil || days < 0 || days > 100*365 {
			return fmt.Errorf("%q: want a number of days like 90d, or a duration like 720h", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q: want a duration like 720h, or a number of days like 90d", s)
		}
	}
	if d < 0 {
		return fmt.Errorf("%q: must not be negative", s)
	}
	*t = keyDurationFlag(d)
	return nil
}

// flagWasSet reports whether the named flag was given on the command line.
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// keysCreated is the --json output of `keys create`. It holds the key: it is
// meant for a secret manager, not a log.
type keysCreated struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func keysCreate(args []string, stdout, stderr io.Writer) int {
	fs := newKeysFlagSet("create", "--subject NAME [--kind service|agent] [--scopes a,b] [--ttl 90d | --no-expiry] [--json] (--config FILE | --store PATH)", stderr)
	var (
		sf       keyStoreFlags
		subject  = fs.String("subject", "", "who the key is for, e.g. a service account name (required)")
		kind     = fs.String("kind", gateway.KindService, "principal kind: service or agent")
		scopes   = fs.String("scopes", "", "comma-separated scopes, e.g. inference:chat,models:read")
		ttl      = keyDurationFlag(keysDefaultTTL)
		noExpiry = fs.Bool("no-expiry", false, "make a key that never expires (prefer a --ttl and 'warden keys rotate')")
		asJSON   = fs.Bool("json", false, "print the key and its record as JSON")
	)
	fs.Var(&ttl, "ttl", "lifetime: a `duration` (720h) or days (90d), at most 365d")
	sf.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden keys create: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if *subject == "" {
		fmt.Fprintln(stderr, "warden keys create: --subject is required")
		return exitUsage
	}
	if *kind != gateway.KindService && *kind != gateway.KindAgent {
		fmt.Fprintf(stderr, "warden keys create: --kind %q: must be service or agent\n", *kind)
		return exitUsage
	}
	switch {
	case *noExpiry && flagWasSet(fs, "ttl"):
		fmt.Fprintln(stderr, "warden keys create: give --ttl or --no-expiry, not both")
		return exitUsage
	case *noExpiry:
		ttl = 0 // the store's "never expires"
	case ttl == 0:
		fmt.Fprintln(stderr, "warden keys create: --ttl 0 would make a key that never expires; if that is what you want, say --no-expiry")
		return exitUsage
	case time.Duration(ttl) > identity.MaxKeyTTL:
		fmt.Fprintf(stderr, "warden keys create: --ttl %s is longer than the maximum of 365d; rotate keys instead "+
			"('warden keys rotate'), or, if the key must never expire, say --no-expiry\n", ttl.String())
		return exitUsage
	}
	var scopeList []string
	if *scopes != "" {
		for s := range strings.SplitSeq(*scopes, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				fmt.Fprintf(stderr, "warden keys create: --scopes %q: empty scope\n", *scopes)
				return exitUsage
			}
			scopeList = append(scopeList, s)
		}
	}
	ks, code := sf.open("create", stderr)
	if ks == nil {
		return code
	}
	key, rec, err := ks.Create(*subject, *kind, scopeList, time.Duration(ttl))
	if err != nil {
		fmt.Fprintf(stderr, "warden keys create: %v\n", err)
		if errors.Is(err, identity.ErrInvalidArgument) {
			return exitUsage
		}
		return exitFail
	}

	if *asJSON {
		out := keysCreated{ID: rec.ID, Key: key, Subject: rec.Subject, Kind: rec.Kind, Scopes: rec.Scopes,
			CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt}
		if out.Scopes == nil {
			out.Scopes = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden keys create: %v\n", err)
			return exitFail
		}
	} else if _, err := fmt.Fprintln(stdout, key); err != nil {
		fmt.Fprintf(stderr, "warden keys create: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "created API key %s for %s %q (scopes: %s; expires: %s) in %s\n",
		rec.ID, rec.Kind, rec.Subject, keysScopesText(rec.Scopes), keysExpiresText(rec.ExpiresAt), ks.Path())
	fmt.Fprintln(stderr, "store the key now: it will not be shown again (only its hash is kept)")
	return exitOK
}

// keysListed is one entry of `keys list --json`. It never holds the hash.
type keysListed struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	// RotatedFrom and RotatedTo link a key to its predecessor and successor.
	RotatedFrom string `json:"rotated_from,omitempty"`
	RotatedTo   string `json:"rotated_to,omitempty"`
	Status      string `json:"status"`
}

func keysList(args []string, stdout, stderr io.Writer) int {
	fs := newKeysFlagSet("list", "[--json] (--config FILE | --store PATH)", stderr)
	var sf keyStoreFlags
	asJSON := fs.Bool("json", false, "print the keys as a JSON array")
	sf.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden keys list: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	ks, code := sf.open("list", stderr)
	if ks == nil {
		return code
	}
	now := time.Now()
	recs := ks.List()

	if *asJSON {
		out := make([]keysListed, 0, len(recs))
		for _, r := range recs {
			scopes := r.Scopes
			if scopes == nil {
				scopes = []string{}
			}
			out = append(out, keysListed{ID: r.ID, Subject: r.Subject, Kind: r.Kind, Scopes: scopes,
				CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, LastUsed: r.LastUsed,
				RotatedFrom: r.RotatedFrom, RotatedTo: r.RotatedTo, Status: r.Status(now)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden keys list: %v\n", err)
			return exitFail
		}
		return exitOK
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUBJECT\tKIND\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tSTATUS")
	for _, r := range recs {
		// Subjects and scopes are printable ASCII without spaces (enforced by
		// the store), so they cannot break the table or the terminal.
		status := r.Status(now)
		if r.RotatedTo != "" {
			status += " (rotated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Subject, r.Kind, keysScopesText(r.Scopes),
			r.CreatedAt.UTC().Format(time.RFC3339), keysExpiresText(r.ExpiresAt), keysTimeOr(r.LastUsed, "never"), status)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "warden keys list: %v\n", err)
		return exitFail
	}
	if len(recs) == 0 {
		fmt.Fprintf(stderr, "no keys in %s\n", ks.Path())
	}
	return exitOK
}

func keysRevoke(args []string, stdout, stderr io.Writer) int {
	fs := newKeysFlagSet("revoke", "(--config FILE | --store PATH) ID", stderr)
	var sf keyStoreFlags
	sf.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	id, ok := keysIDArg("revoke", pos, stderr)
	if !ok {
		return exitUsage
	}
	ks, code := sf.open("revoke", stderr)
	if ks == nil {
		return code
	}
	for _, r := range ks.List() {
		if r.ID == id && !r.RevokedAt.IsZero() {
			fmt.Fprintf(stdout, "key %s (%s) was already revoked at %s\n", id, r.Subject, r.RevokedAt.UTC().Format(time.RFC3339))
			return exitOK
		}
	}
	if err := ks.Revoke(id); err != nil {
		if errors.Is(err, identity.ErrUnknownKey) {
			fmt.Fprintf(stderr, "warden keys revoke: no key with id %s in %s\n", id, ks.Path())
		} else {
			fmt.Fprintf(stderr, "warden keys revoke: %v\n", err)
		}
		return exitFail
	}
	fmt.Fprintf(stdout, "revoked key %s\n", id)
	fmt.Fprintln(stderr, "running servers stop accepting it within about a second")
	return exitOK
}

// keysIDArg returns the one key id among the positional arguments. A whole
// key is accepted too, so that a leaked key can be revoked or rotated without
// looking its id up first; it is never echoed. On failure it has printed why.
func keysIDArg(cmd string, pos []string, stderr io.Writer) (string, bool) {
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "warden keys %s: exactly one key ID is required (see 'warden keys list')\n", cmd)
		return "", false
	}
	id := pos[0]
	if identity.ValidKeyID(id) {
		return id, true
	}
	kid, _, err := identity.ParseAPIKey(id)
	if err != nil {
		fmt.Fprintf(stderr, "warden keys %s: not a key id (%d lowercase hex digits) or a key\n", cmd, identity.KeyIDLen)
		return "", false
	}
	return kid, true
}

// keysRotated is the --json output of `keys rotate`: the new key, like
// `keys create --json`, and when the old one stops working.
type keysRotated struct {
	keysCreated
	RotatedFrom  string    `json:"rotated_from"`
	OldExpiresAt time.Time `json:"old_expires_at"`
}

func keysRotate(args []string, stdout, stderr io.Writer) int {
	fs := newKeysFlagSet("rotate", "[--overlap 24h] [--json] (--config FILE | --store PATH) ID", stderr)
	var (
		sf      keyStoreFlags
		overlap = keyDurationFlag(keysDefaultOverlap)
		asJSON  = fs.Bool("json", false, "print the new key and its record as JSON")
	)
	fs.Var(&overlap, "overlap", "how long the old key keeps working: a `duration` (1h) or days (7d); 0 stops it at once")
	sf.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	id, ok := keysIDArg("rotate", pos, stderr)
	if !ok {
		return exitUsage
	}
	if time.Duration(overlap) > identity.MaxKeyTTL {
		fmt.Fprintf(stderr, "warden keys rotate: --overlap %s is longer than the maximum of 365d\n", overlap.String())
		return exitUsage
	}
	ks, code := sf.open("rotate", stderr)
	if ks == nil {
		return code
	}
	key, rec, err := ks.Rotate(id, time.Duration(overlap), time.Now())
	switch {
	case err == nil:
	case errors.Is(err, identity.ErrUnknownKey):
		fmt.Fprintf(stderr, "warden keys rotate: no key with id %s in %s\n", id, ks.Path())
		return exitFail
	case errors.Is(err, identity.ErrInvalidArgument):
		fmt.Fprintf(stderr, "warden keys rotate: %v\n", err)
		return exitUsage
	default: // revoked, expired, already rotated, or the store failed
		fmt.Fprintf(stderr, "warden keys rotate: %v\n", err)
		return exitFail
	}
	var oldExpires time.Time
	for _, r := range ks.List() {
		if r.ID == id {
			oldExpires = r.ExpiresAt
		}
	}

	if *asJSON {
		out := keysRotated{
			keysCreated: keysCreated{ID: rec.ID, Key: key, Subject: rec.Subject, Kind: rec.Kind, Scopes: rec.Scopes,
				CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt},
			RotatedFrom:  id,
			OldExpiresAt: oldExpires,
		}
		if out.Scopes == nil {
			out.Scopes = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden keys rotate: %v\n", err)
			return exitFail
		}
	} else if _, err := fmt.Fprintln(stdout, key); err != nil {
		fmt.Fprintf(stderr, "warden keys rotate: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "rotated API key %s to %s for %s %q (scopes: %s; expires: %s) in %s\n",
		id, rec.ID, rec.Kind, rec.Subject, keysScopesText(rec.Scopes), keysExpiresText(rec.ExpiresAt), ks.Path())
	if overlap == 0 {
		fmt.Fprintf(stderr, "the old key %s stopped working now; running servers refuse it within about a second\n", id)
	} else {
		fmt.Fprintf(stderr, "the old key %s keeps working until %s: move clients to the new key before then\n",
			id, keysTimeOr(oldExpires, "?"))
	}
	fmt.Fprintln(stderr, "store the key now: it will not be shown again (only its hash is kept)")
	return exitOK
}

func keysPrune(args []string, stdout, stderr io.Writer) int {
	fs := newKeysFlagSet("prune", "[--older-than 30d] (--config FILE | --store PATH)", stderr)
	var (
		sf        keyStoreFlags
		olderThan = keyDurationFlag(keysDefaultPruneAge)
	)
	fs.Var(&olderThan, "older-than", "delete keys revoked or expired for longer than this `duration` (720h) or days (30d)")
	sf.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden keys prune: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	ks, code := sf.open("prune", stderr)
	if ks == nil {
		return code
	}
	n, err := ks.Prune(time.Duration(olderThan), time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "warden keys prune: %v\n", err)
		if errors.Is(err, identity.ErrInvalidArgument) {
			return exitUsage
		}
		return exitFail
	}
	noun := "keys"
	if n == 1 {
		noun = "key"
	}
	fmt.Fprintf(stdout, "pruned %d %s revoked or expired for more than %s from %s\n", n, noun, olderThan.String(), ks.Path())
	return exitOK
}

func keysScopesText(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	return strings.Join(scopes, ",")
}

func keysExpiresText(t time.Time) string { return keysTimeOr(t, "never") }

// keysTimeOr formats t in RFC 3339 UTC, or returns zero for the zero time.
func keysTimeOr(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}
