package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

func init() {
	register("grant", "request, approve, deny, list and revoke just-in-time grants (a client of warden's grant API)", runGrant)
}

const grantUsage = `usage:
  warden grant request --action ACTION --segment SEGMENT --duration 2h --reason TEXT
                       [--principal ID] [--resource NAME] [--json] [connection flags]
  warden grant approve [--note TEXT] [--json] [connection flags] ID
  warden grant deny    [--note TEXT] [--json] [connection flags] ID
  warden grant revoke  [--note TEXT] [--json] [connection flags] ID
  warden grant list    [--principal ID] [--requested-by ID] [--status STATE] [--limit N] [--json] [connection flags]

connection flags:
  --server URL      warden's data-plane URL, e.g. https://warden.example:8443 (default $WARDEN_URL)
  --key-file FILE   file holding your API key or bearer token
                    (default $WARDEN_API_KEY, then $WARDEN_TOKEN)
  --ca-file FILE    PEM certificate(s) that verify warden's TLS certificate (default: system roots)
  --timeout 10s     how long to wait for warden

A just-in-time grant is a time-bound permission: ACTION ("*" for any) on
SEGMENT, optionally limited to one route, model or tool (--resource), for
--principal (default: you). It does nothing until a different principal
holding the approver role approves it; the approval starts it and it expires
by itself after --duration (at most policy.grants.max_duration). Requests not
decided within 24h lapse. Every step goes through warden's identity, policy
and audit like any request. 'list' shows your own grants, or every grant if
you hold the approver role; --status is requested, approved, denied,
revoked, expired or open.

Exit status: 0 done, 1 refused by warden or warden unreachable, 2 bad usage.
Run 'warden grant <subcommand> -h' for its flags.
`

func runGrant(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, grantUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, grantUsage)
		return exitOK
	case "request":
		return grantRequest(args[1:], stdout, stderr)
	case "approve", "deny", "revoke":
		return grantStep(args[0], args[1:], stdout, stderr)
	case "list", "ls":
		return grantList(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden grant: unknown subcommand %q\n\n%s", args[0], grantUsage)
		return exitUsage
	}
}

// grantConn holds the connection flags.
type grantConn struct {
	server  string
	keyFile string
	caFile  string
	timeout time.Duration
	asJSON  bool
}

func (c *grantConn) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "warden's data-plane `URL` (default $WARDEN_URL)")
	fs.StringVar(&c.keyFile, "key-file", "", "`FILE` holding the API key or bearer token (default $WARDEN_API_KEY, then $WARDEN_TOKEN)")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM `FILE` of certificates that verify warden's TLS certificate (default: system roots)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for warden")
	fs.BoolVar(&c.asJSON, "json", false, "print warden's JSON answer")
}

// maxGrantResponseBytes bounds what the client reads from warden.
const maxGrantResponseBytes = 4 << 20

// grantClient is a configured connection to warden's grant API.
type grantClient struct {
	base       *url.URL
	credential string
	http       *http.Client
}

// client validates the connection flags and builds the client. On failure
// it has printed why and returns the exit code.
func (c *grantConn) client(cmd string, stderr io.Writer) (*grantClient, int) {
	fail := func(code int, format string, args ...any) (*grantClient, int) {
		fmt.Fprintf(stderr, "warden grant %s: %s\n", cmd, fmt.Sprintf(format, args...))
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

// grantServerURL checks the server URL: https, or http to a loopback
// address only (the credential would otherwise cross the network in clear);
// no credentials, query or fragment.
func grantServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("want https://host[:port]")
	case u.Host == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("must not hold credentials; use --key-file")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must not have a query or fragment")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return nil, errors.New("plain http is allowed to loopback addresses only: your credential would cross the network in clear")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// grantCredential reads the credential from --key-file, or the environment.
func grantCredential(keyFile string) (cred, source string, err error) {
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return "", "", fmt.Errorf("--key-file: %w", err)
		}
		if len(b) > 64<<10 {
			return "", "", fmt.Errorf("--key-file %s: larger than 64 KiB; it should hold one key or token", keyFile)
		}
		cred = strings.TrimSpace(string(b))
		if cred == "" {
			return "", "", fmt.Errorf("--key-file %s is empty", keyFile)
		}
		return cred, "--key-file " + keyFile, nil
	}
	for _, env := range []string{"WARDEN_API_KEY", "WARDEN_TOKEN"} {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, "$" + env, nil
		}
	}
	return "", "", nil
}

// checkCredential refuses what cannot go into an Authorization header.
func checkCredential(c string) error {
	for i := 0; i < len(c); i++ {
		if b := c[i]; b <= ' ' || b >= 0x7f {
			return errors.New("the credential holds a space or a control or non-ASCII character; it should be one key or token")
		}
	}
	return nil
}

// grantAPIError is warden's error body.
type grantAPIError struct {
	Error struct {
		Message   string `json:"message"`
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// do sends one request to the grant API and returns the JSON answer of a
// 2xx response. Any other outcome is an error ready to print.
func (c *grantClient) do(method, path string, query url.Values, body any) (json.RawMessage, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.credential)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach warden: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxGrantResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading warden's answer: %w", err)
	}
	if len(data) > maxGrantResponseBytes {
		return nil, fmt.Errorf("warden's answer is larger than %d bytes", maxGrantResponseBytes)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var e grantAPIError
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("refused (%d %s): %s (request id %s)", res.StatusCode, grantSafe(e.Error.Code),
				grantSafe(e.Error.Message), grantSafe(e.Error.RequestID))
		}
		return nil, fmt.Errorf("refused with HTTP status %d (not a warden error body; is --server warden's data-plane URL?)", res.StatusCode)
	}
	if !json.Valid(data) {
		return nil, errors.New("warden's answer is not JSON (is --server warden's data-plane URL?)")
	}
	return data, nil
}

// grantView is a grant as the API returns it, for printing.
type grantView struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	Principal   string    `json:"principal"`
	Action      string    `json:"action"`
	Segment     string    `json:"segment"`
	Resource    string    `json:"resource"`
	Duration    string    `json:"duration"`
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	DecideBy    time.Time `json:"decide_by"`
	ApprovedBy  string    `json:"approved_by"`
	NotBefore   time.Time `json:"not_before"`
	ExpiresAt   time.Time `json:"expires_at"`
	EndedBy     string    `json:"ended_by"`
	EndedAt     time.Time `json:"ended_at"`
}

func (g *grantView) what() string {
	s := fmt.Sprintf("%s on segment %s", g.Action, g.Segment)
	if g.Resource != "" {
		s += " (" + g.Resource + ")"
	}
	return s
}

func grantNewFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden grant "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden grant %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// grantPrintJSON prints warden's answer indented.
func grantPrintJSON(cmd string, raw json.RawMessage, stdout, stderr io.Writer) int {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		fmt.Fprintf(stderr, "warden grant %s: %v\n", cmd, err)
		return exitFail
	}
	buf.WriteByte('\n')
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "warden grant %s: %v\n", cmd, err)
		return exitFail
	}
	return exitOK
}

// grantOne decodes {"grant":{...}}.
func grantOne(raw json.RawMessage) (grantView, error) {
	var v struct {
		Grant *grantView `json:"grant"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Grant == nil || v.Grant.ID == "" {
		return grantView{}, errors.New("warden's answer holds no grant")
	}
	return *v.Grant, nil
}

func grantRequest(args []string, stdout, stderr io.Writer) int {
	const synopsis = "--action ACTION --segment SEGMENT --duration 2h --reason TEXT [--principal ID] [--resource NAME] [--json] [connection flags]"
	fs := grantNewFlagSet("request", synopsis, stderr)
	var conn grantConn
	conn.register(fs)
	principal := fs.String("principal", "", "who the grant is for (default: you)")
	action := fs.String("action", "", `the action it permits, e.g. chat.completions, or "*" for any (required)`)
	segment := fs.String("segment", "", "the segment it applies to, e.g. inference (required)")
	resource := fs.String("resource", "", "limit it to one route, model or tool name")
	duration := fs.Duration("duration", 0, "how long it lasts once approved, e.g. 2h (required; at most policy.grants.max_duration)")
	reason := fs.String("reason", "", "why you need it, for the approver and the record (required)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden grant request: unexpected argument %q\n", grantSafe(pos[0]))
		return exitUsage
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"action", *action}, {"segment", *segment}, {"reason", *reason}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if *duration == 0 {
		missing = append(missing, "--duration")
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "warden grant request: %s required\n", strings.Join(missing, ", "))
		return exitUsage
	}
	if *duration < 0 {
		fmt.Fprintln(stderr, "warden grant request: --duration must be positive")
		return exitUsage
	}
	c, code := conn.client("request", stderr)
	if c == nil {
		return code
	}
	body := map[string]string{"action": *action, "segment": *segment, "duration": duration.String(), "reason": *reason}
	if *principal != "" {
		body["principal"] = *principal
	}
	if *resource != "" {
		body["resource"] = *resource
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/grants", nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "warden grant request: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("request", raw, stdout, stderr)
	}
	g, err := grantOne(raw)
	if err != nil {
		fmt.Fprintf(stderr, "warden grant request: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s\n", grantSafe(g.ID))
	fmt.Fprintf(stderr, "requested grant %s for %s: %s for %s; it needs approval by someone else holding the approver role before %s\n",
		grantSafe(g.ID), grantSafe(g.Principal), grantSafe(g.what()), grantSafe(g.Duration), grantTime(g.DecideBy))
	return exitOK
}

func grantStep(step string, args []string, stdout, stderr io.Writer) int {
	fs := grantNewFlagSet(step, "[--note TEXT] [--json] [connection flags] ID", stderr)
	var conn grantConn
	conn.register(fs)
	note := fs.String("note", "", "a note for the record")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "warden grant %s: exactly one grant ID is required (see 'warden grant list')\n", step)
		return exitUsage
	}
	id := pos[0]
	if !grantIDForm(id) {
		fmt.Fprintf(stderr, "warden grant %s: %q is not a grant id (g_ and 24 hex digits)\n", step, grantSafe(id))
		return exitUsage
	}
	c, code := conn.client(step, stderr)
	if c == nil {
		return code
	}
	var body any
	if *note != "" {
		body = map[string]string{"note": *note}
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/grants/"+id+"/"+step, nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "warden grant %s: %v\n", step, err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON(step, raw, stdout, stderr)
	}
	g, err := grantOne(raw)
	if err != nil {
		fmt.Fprintf(stderr, "warden grant %s: %v\n", step, err)
		return exitFail
	}
	switch step {
	case "approve":
		fmt.Fprintf(stdout, "approved grant %s for %s: %s until %s\n", grantSafe(g.ID), grantSafe(g.Principal),
			grantSafe(g.what()), grantTime(g.ExpiresAt))
	case "deny":
		fmt.Fprintf(stdout, "denied grant %s for %s\n", grantSafe(g.ID), grantSafe(g.Principal))
	default:
		fmt.Fprintf(stdout, "revoked grant %s for %s\n", grantSafe(g.ID), grantSafe(g.Principal))
		fmt.Fprintln(stderr, "every warden sharing the grant store stops honouring it within about a second")
	}
	return exitOK
}

func grantList(args []string, stdout, stderr io.Writer) int {
	fs := grantNewFlagSet("list", "[--principal ID] [--requested-by ID] [--status STATE] [--limit N] [--json] [connection flags]", stderr)
	var conn grantConn
	conn.register(fs)
	principal := fs.String("principal", "", "only grants for this principal")
	requestedBy := fs.String("requested-by", "", "only grants requested by this principal")
	status := fs.String("status", "", "only grants in this state: requested, approved, denied, revoked, expired or open")
	limit := fs.Int("limit", 0, "at most this many grants, newest first (default: warden's limit, 1000)")
	pos, code, done := parseKeysArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "warden grant list: unexpected argument %q\n", grantSafe(pos[0]))
		return exitUsage
	}
	switch *status {
	case "", "requested", "approved", "denied", "revoked", "expired", "open":
	default:
		fmt.Fprintf(stderr, "warden grant list: --status %q: want requested, approved, denied, revoked, expired or open\n", grantSafe(*status))
		return exitUsage
	}
	if *limit < 0 {
		fmt.Fprintln(stderr, "warden grant list: --limit must not be negative")
		return exitUsage
	}
	c, code := conn.client("list", stderr)
	if c == nil {
		return code
	}
	q := url.Values{}
	for k, v := range map[string]string{"principal": *principal, "requested_by": *requestedBy, "status": *status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	raw, err := c.do(http.MethodGet, "/v1/warden/grants", q, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden grant list: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("list", raw, stdout, stderr)
	}
	var v struct {
		Grants *[]grantView `json:"grants"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Grants == nil {
		fmt.Fprintln(stderr, "warden grant list: warden's answer holds no grant list")
		return exitFail
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPRINCIPAL\tACTION\tSEGMENT\tRESOURCE\tREQUESTED BY\tAPPROVED BY\tUNTIL\tREASON")
	for _, g := range *v.Grants {
		until := g.DecideBy // a request: when it lapses
		switch {
		case !g.EndedAt.IsZero():
			until = g.EndedAt
		case g.State == "approved":
			until = g.ExpiresAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", grantSafe(g.ID), grantSafe(g.State), grantSafe(g.Principal),
			grantSafe(g.Action), grantSafe(g.Segment), grantSafe(g.Resource), grantSafe(g.RequestedBy), grantSafe(g.ApprovedBy),
			grantTime(until), grantSafe(grantClip(g.Reason, 60)))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "warden grant list: %v\n", err)
		return exitFail
	}
	if len(*v.Grants) == 0 {
		fmt.Fprintln(stderr, "no grants (without the approver role you see only grants you requested or that are for you)")
	}
	return exitOK
}

// grantIDForm reports whether id looks like a grant id.
func grantIDForm(id string) bool {
	if len(id) != 26 || !strings.HasPrefix(id, "g_") {
		return false
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func grantTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func grantClip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// grantSafe returns s with non-graphic characters (controls, bidi
// overrides, invalid UTF-8) escaped, and "-" for "": values come from other
// principals and must not drive the terminal.
func grantSafe(s string) string {
	if s == "" {
		return "-"
	}
	safe := utf8.ValidString(s)
	for _, r := range s {
		if !safe || !unicode.IsGraphic(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
