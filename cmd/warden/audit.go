package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
)

func init() {
	register("audit", "verify or read the audit log (verify, tail)", runAudit)
}

const auditUsage = `usage:
  warden audit verify (--config FILE | --log PATH)
  warden audit tail [-n 20] [--json] (--config FILE | --log PATH)

verify recomputes the hash chain and prints "ok: N records, head HASH";
it exits 1 if any record was changed, deleted, inserted or moved.
Removal of records from the end is only visible by comparing the head with
one recorded earlier.
tail prints the last records, oldest first.
`

func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return exitOK
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "tail":
		return auditTail(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden audit: unknown subcommand %q\n", args[0])
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
}

// auditSource holds the flags that name the log.
type auditSource struct {
	config, log string
}

func (s *auditSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.config, "config", "", "warden config `FILE`; the log is its audit.path")
	fs.StringVar(&s.log, "log", "", "audit log `PATH`")
}

// path resolves the log path, returning an exit code on failure.
func (s *auditSource) path(cmd string, stderr io.Writer) (string, int) {
	switch {
	case (s.config == "") == (s.log == ""):
		fmt.Fprintf(stderr, "warden audit %s: give exactly one of --config FILE or --log PATH\n", cmd)
		return "", exitUsage
	case s.log != "":
		return s.log, exitOK
	}
	cfg, err := config.Load(s.config)
	if err != nil {
		fmt.Fprintf(stderr, "warden audit %s: cannot load config %s to find the audit log:\n%v\n", cmd, s.config, err)
		fmt.Fprintf(stderr, "hint: 'audit' only needs audit.path from the config; if the config is fine for 'serve' "+
			"but fails here (for example an upstream credential env var is not set in this shell), "+
			"pass the log directly with --log PATH\n")
		return "", exitFail
	}
	return cfg.Audit.Path, exitOK
}

// auditParseFlags parses args, returning an exit code when the command should stop.
func auditParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nflags:\n", auditUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("warden audit verify", flag.ContinueOnError)
	var src auditSource
	src.register(fs)
	if code, ok := auditParseFlags(fs, args, stderr); !ok {
		return code
	}
	path, code := src.path("verify", stderr)
	if code != exitOK {
		return code
	}
	rep, err := audit.Verify(path)
	if err != nil {
		// A verification failure is the command's result (stdout); a log
		// that cannot be read at all is an error (stderr).
		var ve *audit.VerifyError
		if !errors.As(err, &ve) {
			fmt.Fprintf(stderr, "warden audit verify: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "FAILED: %v\n", err)
		fmt.Fprintf(stdout, "the first %d records verify (head %s); line %d and everything after it are not trusted\n",
			rep.Records, rep.Head, ve.Line)
		return exitFail
	}
	fmt.Fprintf(stdout, "ok: %d records, head %s\n", rep.Records, rep.Head)
	return exitOK
}

func auditTail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("warden audit tail", flag.ContinueOnError)
	var src auditSource
	src.register(fs)
	n := fs.Int("n", 20, "number of records")
	asJSON := fs.Bool("json", false, "print records as JSON lines")
	if code, ok := auditParseFlags(fs, args, stderr); !ok {
		return code
	}
	if *n <= 0 {
		fmt.Fprintf(stderr, "warden audit tail: -n must be positive\n")
		return exitUsage
	}
	path, code := src.path("tail", stderr)
	if code != exitOK {
		return code
	}
	recs, err := audit.Tail(path, *n)
	if err != nil {
		fmt.Fprintf(stderr, "warden audit tail: %v\n", err)
		return exitFail
	}
	for i := range recs {
		if *asJSON {
			b, err := json.Marshal(&recs[i])
			if err != nil {
				fmt.Fprintf(stderr, "warden audit tail: %v\n", err)
				return exitFail
			}
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		fmt.Fprintln(stdout, auditFormatRecord(&recs[i]))
	}
	return exitOK
}

// auditFormatRecord is the one-line human form of a record:
//
//	seq time request_id principal method path action decision status code
//
// Values come from requests and identities, so control characters are
// escaped to keep them from driving the terminal.
func auditFormatRecord(r *audit.Record) string {
	principal := "-"
	if p := r.Principal; p != nil {
		principal = p.Kind + ":" + p.ID
		if p.OnBehalfOf != "" {
			principal += "(for " + p.OnBehalfOf + ")"
		}
	}
	decision := "-"
	if d := r.Decision; d != nil {
		decision = "deny"
		if d.Allow {
			decision = "allow"
		}
	}
	fields := []string{
		strconv.FormatUint(r.Seq, 10),
		r.Time.Format("2006-01-02T15:04:05.000Z07:00"),
		r.RequestID,
		principal,
		r.Method + " " + r.Path,
		r.Action,
		decision,
		strconv.Itoa(r.Status),
		r.Code,
	}
	for i, f := range fields {
		fields[i] = auditTerminalSafe(f)
	}
	return strings.Join(fields, "  ")
}

// auditTerminalSafe returns s with non-graphic characters (controls, format
// characters such as bidi overrides, invalid UTF-8) escaped, and "-" for "".
func auditTerminalSafe(s string) string {
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
