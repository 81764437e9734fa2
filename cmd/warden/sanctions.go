package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register("sanctions", "list, impose and lift sanctions: quarantine, require_mfa, throttle (a client of warden's sanctions API)", runSanctions)
}

const sanctionsUsage = `usage:
  warden sanctions list [--principal KIND:ID] [--json] [connection flags]
  warden sanctions add  --principal KIND:ID --type TYPE --duration 1h --reason TEXT
                        [--class NAME] [--json] [connection flags]
  warden sanctions lift [--json] [connection flags] ID

connection flags:
  --server URL      warden's data-plane URL, e.g. https://warden.example:8443 (default $WARDEN_URL)
  --key-file FILE   file holding your API key or bearer token
                    (default $WARDEN_API_KEY, then $WARDEN_TOKEN)
  --ca-file FILE    PEM certificate(s) that verify warden's TLS certificate (default: system roots)
  --timeout 10s     how long to wait for warden

A sanction binds a principal (KIND:ID, e.g. agent:research-bot or
user:alice@example.org) for a duration (at most responses.max_duration):

  quarantine    every request is refused with 403 "quarantined"
  require_mfa   every request needs a verified second factor (users only)
  throttle      the rate class --class of limits.classes applies

Playbooks impose sanctions on anomalies by themselves; these commands are
for operators. A sanction takes effect on the principal's next request, on
every warden sharing the sanctions file, survives restarts, and ends by
itself or when lifted. Every step goes through warden's identity, policy and
audit like any request (actions sanction.list, sanction.create and
sanction.lift in segment "control").

Exit status: 0 done, 1 refused by warden or warden unreachable, 2 bad usage.
`

func runSanctions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, sanctionsUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, sanctionsUsage)
		return exitOK
	case "list", "ls":
		return sanctionsList(args[1:], stdout, stderr)
	case "add":
		return sanctionsAdd(args[1:], stdout, stderr)
	case "lift":
		return sanctionsLift(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden sanctions: unknown subcommand %q\n\n%s", grantSafe(args[0]), sanctionsUsage)
		return exitUsage
	}
}

// sanctionView is a sanction as the API returns it, for printing.
type sanctionView struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Type      string    `json:"type"`
	Class     string    `json:"class"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *sanctionView) what() string {
	if s.Type == "throttle" && s.Class != "" {
		return "throttle (" + s.Class + ")"
	}
	return s.Type
}

func sanctionsFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden sanctions "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden sanctions %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// sanctionsClient validates the connection flags and builds the client (the
// grant command's client: same flags, same checks). On failure it has
// printed why and returns the exit code.
func sanctionsClient(c *grantConn, cmd string, stderr io.Writer) (*grantClient, int) {
	fail := func(code int, format string, args ...any) (*grantClient, int) {
		fmt.Fprintf(stderr, "warden sanctions %s: %s\n", cmd, fmt.Sprintf(format, args...))
		return nil, code
	}
	server := c.server
	if server == "" {
		server = os.Getenv("WARDEN_URL")
	}
	if server == "" {
		return fail(exitUsage, "--server URL (or $WARDEN_URL) is required")
	}
	base, err := grantServerURL(server)
	if err != nil {
		return fail(exitUsage, "--server %q: %v", grantSafe(server), err)
	}
	if c.timeout <= 0 {
		return fail(exitUsage, "--timeout must be positive")
	}
	cred, source, err := grantCredential(c.keyFile)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if cred == "" {
		return fail(exitUsage, "no credential: give --key-file FILE, or set $WARDEN_API_KEY or $WARDEN_TOKEN")
	}
	if err := checkCredential(cred); err != nil {
		return fail(exitUsage, "%s: %v", source, err)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return fail(exitUsage, "--ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fail(exitUsage, "--ca-file %s: no PEM certificate in it", c.caFile)
		}
		tcfg.RootCAs = pool
	}
	hc := &http.Client{
		Timeout:   c.timeout,
		Transport: &http.Transport{TLSClientConfig: tcfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
		// Never follow a redirect: it would carry the credential elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &grantClient{base: base, credential: cred, http: hc}, exitOK
}

// validPrincipalArg checks KIND:ID before anything is sent.
func validPrincipalArg(p string) bool {
	kind, id, ok := strings.Cut(p, ":")
	return ok && (kind == "user" || kind == "service" || kind == "agent") && id != "" && !strings.ContainsAny(id, " \t\r\n")
}

func sanctionsList(args []string, stdout, stderr io.Writer) int {
	fs := sanctionsFlagSet("list", "[--principal KIND:ID] [--json] [connection flags]", stderr)
	var conn grantConn
	conn.register(fs)
	principal := fs.String("principal", "", "only sanctions on this principal, KIND:ID")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden sanctions list: unexpected argument %q\n", grantSafe(pos[0]))
		return exitUsage
	}
	if *principal != "" && !validPrincipalArg(*principal) {
		fmt.Fprintf(stderr, "warden sanctions list: --principal %q: want KIND:ID with KIND user, service or agent\n", grantSafe(*principal))
		return exitUsage
	}
	c, code := sanctionsClient(&conn, "list", stderr)
	if c == nil {
		return code
	}
	q := url.Values{}
	if *principal != "" {
		q.Set("principal", *principal)
	}
	raw, err := c.do(http.MethodGet, "/v1/warden/sanctions", q, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden sanctions list: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("list", raw, stdout, stderr)
	}
	var v struct {
		Sanctions *[]sanctionView `json:"sanctions"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Sanctions == nil {
		fmt.Fprintln(stderr, "warden sanctions list: warden's answer holds no sanction list")
		return exitFail
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tSANCTION\tUNTIL\tSOURCE\tBY\tREASON")
	for _, s := range *v.Sanctions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", grantSafe(s.ID), grantSafe(s.Principal), grantSafe(s.what()),
			grantTime(s.ExpiresAt), grantSafe(s.Source), grantSafe(s.CreatedBy), grantSafe(grantClip(s.Reason, 60)))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "warden sanctions list: %v\n", err)
		return exitFail
	}
	if len(*v.Sanctions) == 0 {
		fmt.Fprintln(stderr, "no sanctions in force")
	}
	return exitOK
}

func sanctionsAdd(args []string, stdout, stderr io.Writer) int {
	const synopsis = "--principal KIND:ID --type TYPE --duration 1h --reason TEXT [--class NAME] [--json] [connection flags]"
	fs := sanctionsFlagSet("add", synopsis, stderr)
	var conn grantConn
	conn.register(fs)
	principal := fs.String("principal", "", "the principal, KIND:ID, e.g. agent:research-bot (required)")
	typ := fs.String("type", "", "quarantine, require_mfa or throttle (required)")
	duration := fs.Duration("duration", 0, "how long it lasts, e.g. 2h (required; at most responses.max_duration)")
	reason := fs.String("reason", "", "why, for the record (required)")
	class := fs.String("class", "", "the limits.classes entry a throttle applies (throttle only)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden sanctions add: unexpected argument %q\n", grantSafe(pos[0]))
		return exitUsage
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"principal", *principal}, {"type", *typ}, {"reason", *reason}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if *duration == 0 {
		missing = append(missing, "--duration")
	}
	if *typ == "throttle" && *class == "" {
		missing = append(missing, "--class")
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "warden sanctions add: %s required\n", strings.Join(missing, ", "))
		return exitUsage
	}
	switch {
	case !validPrincipalArg(*principal):
		fmt.Fprintf(stderr, "warden sanctions add: --principal %q: want KIND:ID with KIND user, service or agent\n", grantSafe(*principal))
		return exitUsage
	case *typ != "quarantine" && *typ != "require_mfa" && *typ != "throttle":
		fmt.Fprintf(stderr, "warden sanctions add: --type %q: want quarantine, require_mfa or throttle\n", grantSafe(*typ))
		return exitUsage
	case *class != "" && *typ != "throttle":
		fmt.Fprintln(stderr, "warden sanctions add: --class is for --type throttle only")
		return exitUsage
	case *duration < 0:
		fmt.Fprintln(stderr, "warden sanctions add: --duration must be positive")
		return exitUsage
	}
	c, code := sanctionsClient(&conn, "add", stderr)
	if c == nil {
		return code
	}
	body := map[string]string{"principal": *principal, "type": *typ, "duration": duration.String(), "reason": *reason}
	if *class != "" {
		body["class"] = *class
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/sanctions", nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "warden sanctions add: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("add", raw, stdout, stderr)
	}
	var v struct {
		Sanction *sanctionView `json:"sanction"`
		Changed  bool          `json:"changed"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Sanction == nil || v.Sanction.ID == "" {
		fmt.Fprintln(stderr, "warden sanctions add: warden's answer holds no sanction")
		return exitFail
	}
	s := v.Sanction
	fmt.Fprintf(stdout, "%s\n", grantSafe(s.ID))
	if v.Changed {
		fmt.Fprintf(stderr, "%s on %s until %s; it applies from the principal's next request\n",
			grantSafe(s.what()), grantSafe(s.Principal), grantTime(s.ExpiresAt))
	} else {
		fmt.Fprintf(stderr, "%s on %s was already in force until %s (%s); nothing changed\n",
			grantSafe(s.what()), grantSafe(s.Principal), grantTime(s.ExpiresAt), grantSafe(s.ID))
	}
	return exitOK
}

func sanctionsLift(args []string, stdout, stderr io.Writer) int {
	fs := sanctionsFlagSet("lift", "[--json] [connection flags] ID", stderr)
	var conn grantConn
	conn.register(fs)
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "warden sanctions lift: exactly one sanction ID is required (see 'warden sanctions list')")
		return exitUsage
	}
	id := pos[0]
	if !sanctionIDForm(id) {
		fmt.Fprintf(stderr, "warden sanctions lift: %q is not a sanction id (s_ and 24 hex digits)\n", grantSafe(id))
		return exitUsage
	}
	c, code := sanctionsClient(&conn, "lift", stderr)
	if c == nil {
		return code
	}
	raw, err := c.do(http.MethodDelete, "/v1/warden/sanctions/"+id, nil, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden sanctions lift: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("lift", raw, stdout, stderr)
	}
	var v struct {
		Sanction *sanctionView `json:"sanction"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Sanction == nil {
		fmt.Fprintln(stderr, "warden sanctions lift: warden's answer holds no sanction")
		return exitFail
	}
	fmt.Fprintf(stdout, "lifted %s on %s (%s)\n", grantSafe(v.Sanction.what()), grantSafe(v.Sanction.Principal), grantSafe(v.Sanction.ID))
	return exitOK
}

// sanctionIDForm reports whether id looks like a sanction id.
func sanctionIDForm(id string) bool {
	if len(id) != 26 || !strings.HasPrefix(id, "s_") {
		return false
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
