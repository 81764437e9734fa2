package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity/mfa"
)

func init() {
	register("mfa", "enroll, list and remove TOTP second factors for users (step-up)", runMfa)
}

// Defaults for identity.mfa, applied here too in case the config left them zero.
const (
	mfaDefaultStorePath = "mfa.json"
	mfaDefaultIssuer    = "warden"
)

const mfaUsage = `usage:
  warden mfa enroll --user ID [--replace] [--issuer NAME] (--config FILE | --store PATH --key-env VAR)
  warden mfa list [--json] (--config FILE | --store PATH --key-env VAR)
  warden mfa remove --user ID (--config FILE | --store PATH --key-env VAR)

The enrollment store is identity.mfa.store_path in the config (--config), its
encryption key identity.mfa.encryption_key; or give the store directly
(--store) with the name of the environment variable holding the key
(--key-env; 64 hex digits or base64 of 32 bytes). TOTP secrets are stored
only encrypted. 'enroll' prints the otpauth:// URL and the secret once, for an
authenticator app; there is no command that shows them again or makes codes.
A running 'warden serve' sees changes at once.

Run 'warden mfa <subcommand> -h' for its flags.
`

func runMfa(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mfaUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, mfaUsage)
		return exitOK
	case "enroll":
		return mfaEnroll(args[1:], stdout, stderr)
	case "list", "ls":
		return mfaList(args[1:], stdout, stderr)
	case "remove", "rm":
		return mfaRemove(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden mfa: unknown subcommand %q\n\n%s", args[0], mfaUsage)
		return exitUsage
	}
}

// mfaStoreFlags selects the enrollment store and its key.
type mfaStoreFlags struct {
	config string
	store  string
	keyEnv string
	issuer string
}

func (sf *mfaStoreFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.config, "config", "", "warden config `FILE`; identity.mfa names the store and its key")
	fs.StringVar(&sf.store, "store", "", "enrollment store `PATH` (instead of --config; needs --key-env)")
	fs.StringVar(&sf.keyEnv, "key-env", "", "environment `VAR` holding the store's encryption key (with --store)")
}

// open opens the selected store. It returns the issuer from the config (or
// the default) too. On failure it has printed why and returns the exit code.
func (sf *mfaStoreFlags) open(cmd string, stderr io.Writer) (*mfa.Store, string, int) {
	var (
		path, keyText string
		issuer        = mfaDefaultIssuer
	)
	switch {
	case sf.config != "" && sf.store != "":
		fmt.Fprintf(stderr, "warden mfa %s: give either --config or --store, not both\n", cmd)
		return nil, "", exitUsage
	case sf.config != "" && sf.keyEnv != "":
		fmt.Fprintf(stderr, "warden mfa %s: --key-env goes with --store; with --config the key is identity.mfa.encryption_key\n", cmd)
		return nil, "", exitUsage
	case sf.store != "":
		if sf.keyEnv == "" {
			fmt.Fprintf(stderr, "warden mfa %s: --store needs --key-env VAR naming the variable that holds the encryption key\n", cmd)
			return nil, "", exitUsage
		}
		val, ok := os.LookupEnv(sf.keyEnv)
		if !ok || val == "" {
			fmt.Fprintf(stderr, "warden mfa %s: environment variable %s is not set or empty\n", cmd, sf.keyEnv)
			return nil, "", exitFail
		}
		path, keyText = sf.store, val
	case sf.config != "":
		cfg, err := config.Load(sf.config)
		if err != nil {
			fmt.Fprintf(stderr, "warden mfa %s: cannot load config %s:\n%v\n", cmd, sf.config, err)
			fmt.Fprintln(stderr, "hint: 'mfa' only needs identity.mfa from the config; if the config is fine for 'serve' "+
				"but fails here, pass the store directly with --store PATH --key-env VAR")
			return nil, "", exitFail
		}
		m := cfg.Identity.MFA
		if m == nil {
			fmt.Fprintf(stderr, "warden mfa %s: mfa is not configured (no identity.mfa in %s)\n", cmd, sf.config)
			return nil, "", exitFail
		}
		path = mfaResolve(cfg.Dir, m.StorePath)
		if m.StorePath == "" {
			path = mfaResolve(cfg.Dir, mfaDefaultStorePath)
		}
		if m.Issuer != "" {
			issuer = m.Issuer
		}
		cred := m.EncryptionKey
		cred.File = mfaResolve(cfg.Dir, cred.File)
		if keyText, err = cred.Secret(); err != nil {
			fmt.Fprintf(stderr, "warden mfa %s: identity.mfa.encryption_key: %v\n", cmd, err)
			return nil, "", exitFail
		}
	default:
		fmt.Fprintf(stderr, "warden mfa %s: --config FILE or --store PATH --key-env VAR is required\n", cmd)
		return nil, "", exitUsage
	}
	key, err := mfa.ParseKey(keyText)
	if err != nil {
		fmt.Fprintf(stderr, "warden mfa %s: %v\n", cmd, err)
		return nil, "", exitFail
	}
	st, err := mfa.Open(path, key)
	if err != nil {
		fmt.Fprintf(stderr, "warden mfa %s: %v\n", cmd, err)
		return nil, "", exitFail
	}
	if sf.issuer != "" {
		issuer = sf.issuer
	}
	return st, issuer, exitOK
}

// mfaResolve makes a relative path relative to the config's directory, as
// config.Load does for the paths it knows about.
func mfaResolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// newMfaFlagSet returns a flag set that reports to stderr and prints usage
// with the given synopsis.
func newMfaFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden mfa "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden mfa %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// mfaParse parses flags; no positional arguments are accepted. done reports
// that the command ends with code (-h: exitOK; bad flags: exitUsage).
func mfaParse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true // flag has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return exitOK, false
}

func mfaEnroll(args []string, stdout, stderr io.Writer) int {
	const synopsis = "--user ID [--replace] [--issuer NAME] (--config FILE | --store PATH --key-env VAR)"
	fs := newMfaFlagSet("enroll", synopsis, stderr)
	var sf mfaStoreFlags
	user := fs.String("user", "", "the user's principal id, as the identity stage proves it (required)")
	replace := fs.Bool("replace", false, "replace an existing enrollment (its authenticator entry stops working)")
	fs.StringVar(&sf.issuer, "issuer", "", "label shown in authenticator apps (default identity.mfa.issuer, or \"warden\")")
	sf.register(fs)
	if code, done := mfaParse(fs, args, stderr); done {
		return code
	}
	if *user == "" {
		fmt.Fprintln(stderr, "warden mfa enroll: --user is required")
		return exitUsage
	}
	st, issuer, code := sf.open("enroll", stderr)
	if st == nil {
		return code
	}
	list, err := st.List()
	if err != nil {
		fmt.Fprintf(stderr, "warden mfa enroll: %v\n", err)
		return exitFail
	}
	existed := slices.ContainsFunc(list, func(e mfa.Enrollment) bool { return e.User == *user })
	if existed && !*replace {
		fmt.Fprintf(stderr, "warden mfa enroll: %s is already enrolled in %s; pass --replace to give them a new secret "+
			"(the old authenticator entry stops working)\n", *user, st.Path())
		return exitFail
	}
	url, secret, err := st.Enroll(*user, issuer, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "warden mfa enroll: %v\n", err)
		if errors.Is(err, mfa.ErrInvalidArgument) {
			return exitUsage
		}
		return exitFail
	}
	if _, err := fmt.Fprintf(stdout, "%s\n%s\n", url, secret); err != nil {
		fmt.Fprintf(stderr, "warden mfa enroll: %v\n", err)
		return exitFail
	}
	verb := "enrolled"
	if existed {
		verb = "re-enrolled (the previous secret no longer works)"
	}
	fmt.Fprintf(stderr, "%s %s in %s (TOTP: SHA-1, 6 digits, 30 s)\n", verb, *user, st.Path())
	fmt.Fprintln(stderr, "give the user the otpauth:// URL (as a QR code) or the secret above now, over a private channel: "+
		"neither is shown again, and the store keeps the secret only encrypted")
	return exitOK
}

// mfaListed is one entry of `mfa list --json`. It never holds the secret.
type mfaListed struct {
	User       string    `json:"user"`
	CreatedAt  time.Time `json:"created_at"`
	Confirmed  bool      `json:"confirmed"`
	LastCodeAt time.Time `json:"last_code_at,omitzero"`
}

func mfaList(args []string, stdout, stderr io.Writer) int {
	fs := newMfaFlagSet("list", "[--json] (--config FILE | --store PATH --key-env VAR)", stderr)
	var sf mfaStoreFlags
	asJSON := fs.Bool("json", false, "print the enrollments as a JSON array")
	sf.register(fs)
	if code, done := mfaParse(fs, args, stderr); done {
		return code
	}
	st, _, code := sf.open("list", stderr)
	if st == nil {
		return code
	}
	list, err := st.List()
	if err != nil {
		fmt.Fprintf(stderr, "warden mfa list: %v\n", err)
		return exitFail
	}
	if *asJSON {
		out := make([]mfaListed, 0, len(list))
		for _, e := range list {
			out = append(out, mfaListed{User: e.User, CreatedAt: e.CreatedAt, Confirmed: e.Confirmed, LastCodeAt: e.LastCodeAt})
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "warden mfa list: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tCREATED\tCONFIRMED\tLAST CODE")
	for _, e := range list {
		// User ids are printable ASCII without spaces (enforced by the
		// store), so they cannot break the table or the terminal.
		last := "never"
		if !e.LastCodeAt.IsZero() {
			last = e.LastCodeAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.User, e.CreatedAt.UTC().Format(time.RFC3339), mfaYesNo(e.Confirmed), last)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "warden mfa list: %v\n", err)
		return exitFail
	}
	if len(list) == 0 {
		fmt.Fprintf(stderr, "no enrollments in %s\n", st.Path())
	}
	return exitOK
}

func mfaRemove(args []string, stdout, stderr io.Writer) int {
	fs := newMfaFlagSet("remove", "--user ID (--config FILE | --store PATH --key-env VAR)", stderr)
	var sf mfaStoreFlags
	user := fs.String("user", "", "the user whose enrollment to remove (required)")
	sf.register(fs)
	if code, done := mfaParse(fs, args, stderr); done {
		return code
	}
	if *user == "" {
		fmt.Fprintln(stderr, "warden mfa remove: --user is required")
		return exitUsage
	}
	st, _, code := sf.open("remove", stderr)
	if st == nil {
		return code
	}
	if err := st.Remove(*user); err != nil {
		switch {
		case errors.Is(err, mfa.ErrNotEnrolled):
			fmt.Fprintf(stderr, "warden mfa remove: %s is not enrolled in %s\n", *user, st.Path())
			return exitFail
		case errors.Is(err, mfa.ErrInvalidArgument):
			fmt.Fprintf(stderr, "warden mfa remove: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "warden mfa remove: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "removed the MFA enrollment of %s\n", *user)
	fmt.Fprintln(stderr, "their elevated tokens already issued stay valid until they expire")
	return exitOK
}

func mfaYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
