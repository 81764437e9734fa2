package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/audit/pgstore"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/store/localfile"
)

func init() {
	register("audit", "verify, prove, explain, read and archive the audit log", runAudit)
}

const auditUsage = `usage:
  warden audit verify      SOURCE [--key VKEY] [--checkpoint FILE] [--witness FILE] [--archive DIR] [--allow-tail] [--json]
  warden audit show ID     SOURCE [--key VKEY]
  warden audit prove ID    SOURCE [--key VKEY] [--checkpoint FILE] [--json]
  warden audit consistency SOURCE [--key VKEY] --old SIZE|FILE [--new SIZE|FILE] [--json]
  warden audit tail        SOURCE [-n 20] [--json]
  warden audit export      SOURCE [--from INDEX] [--to INDEX] [--archive DIR]
  warden audit archive     SOURCE [--key VKEY] [--archive DIR]

SOURCE is --config FILE (the log is audit.path, or with audit.backend:
postgres the schema audit.postgres.schema; the verifier key comes from
audit.checkpoint.key_file), --log DIR, or --postgres DSN [--schema NAME]
(a DSN, or env:VAR to read it from the environment variable VAR; schema
default warden_audit). With --log or --postgres, give --key. PostgreSQL
logs are read-only here: archive is for the file backend. VKEY is a verifier
key (name+hash+key, as GET /audit/key on the admin listener prints it) or a
file holding one. ID is a log index or a request id.

verify   checks every record and stored hash against the latest signed
         checkpoint (or --checkpoint FILE). Exit 0: intact and fully covered
         by the checkpoint. Exit 1: a changed, deleted, inserted or reordered
         record (the first one is named), a checkpoint not signed by the key,
         a log shorter than its checkpoint - or a log longer than it: records
         after the checkpoint are checked for internal consistency and
         reported, and accepted only with --allow-tail (a running warden
         checkpoints them within audit.checkpoint.interval).
show     explains one record in plain words.
prove    prints the inclusion proof of a record and checks it.
consistency  prints and checks the proof that a checkpoint extends an older one.
tail     prints the last records, oldest first.
export   prints records as JSON lines, byte for byte as stored: the Merkle
         tree's leaf hash of a line is SHA-256(0x00 || line).
archive  moves segments fully covered by the checkpoint to the archive
         directory (--archive, or audit.archive_dir).
Exit codes: 0 ok, 1 failure, 2 usage.
`

func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) int{
		"verify": auditVerify, "show": auditShow, "prove": auditProve, "consistency": auditConsistency,
		"tail": auditTail, "export": auditExport, "archive": auditArchive,
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "warden audit: unknown subcommand %q\n", args[0])
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
	return cmd(args[1:], stdout, stderr)
}

// auditCmd holds what every subcommand shares: where the log is, the key,
// and how to report.
type auditCmd struct {
	name           string
	fs             *flag.FlagSet
	config, log    string
	postgres       string // DSN, or env:VAR
	schema         string
	key            string
	archive        string
	stdout, stderr io.Writer

	cfg *config.Config // loaded from --config
}

func newAuditCmd(name string, stdout, stderr io.Writer) *auditCmd {
	c := &auditCmd{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet("warden audit "+name, flag.ContinueOnError)
	c.fs.StringVar(&c.config, "config", "", "warden config `FILE`; the log is its audit.path")
	c.fs.StringVar(&c.log, "log", "", "audit log `DIR`")
	c.fs.StringVar(&c.postgres, "postgres", "", "PostgreSQL `DSN` of the log (or env:VAR); never printed with its password")
	c.fs.StringVar(&c.schema, "schema", pgstore.DefaultSchema, "PostgreSQL `SCHEMA` of the log, with --postgres")
	return c
}

func (c *auditCmd) withKey() {
	c.fs.StringVar(&c.key, "key", "", "verifier key `VKEY` (name+hash+key) or a file holding it; default: from audit.checkpoint.key_file")
}

func (c *auditCmd) withArchive(help string) {
	c.fs.StringVar(&c.archive, "archive", "", help)
}

// parse parses args, allowing up to maxArgs positional arguments (flags
// may come before or after them). It returns the positional arguments, or
// an exit code when the command should stop.
func (c *auditCmd) parse(args []string, maxArgs int) ([]string, int, bool) {
	c.fs.SetOutput(c.stderr)
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "%s\nflags of %s:\n", auditUsage, c.fs.Name())
		c.fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) > maxArgs {
		fmt.Fprintf(c.stderr, "%s: unexpected argument %q\n", c.fs.Name(), pos[maxArgs])
		c.fs.Usage()
		return nil, exitUsage, false
	}
	sources := 0
	for _, src := range []string{c.config, c.log, c.postgres} {
		if src != "" {
			sources++
		}
	}
	if sources != 1 {
		fmt.Fprintf(c.stderr, "%s: give exactly one of --config FILE or --log DIR or --postgres DSN\n", c.fs.Name())
		return nil, exitUsage, false
	}
	if c.config != "" {
		cfg, err := config.Load(c.config)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s: cannot load config %s to find the audit log:\n%v\n", c.fs.Name(), c.config, err)
			fmt.Fprintf(c.stderr, "hint: 'audit' only needs the audit section of the config; if the config is fine for 'serve' "+
				"but fails here (for example an upstream credential env var is not set in this shell), "+
				"pass the log directly with --log DIR and the verifier key with --key\n")
			return nil, exitFail, false
		}
		c.cfg = cfg
		if cfg.Audit.Backend == config.AuditBackendPostgres {
			dsn, err := cfg.Audit.Postgres.ConnString()
			if err != nil {
				fmt.Fprintf(c.stderr, "%s: %v\n", c.fs.Name(), err)
				return nil, exitFail, false
			}
			c.postgres, c.schema = dsn, cfg.Audit.Postgres.Schema
		} else {
			c.log = cfg.Audit.Path
		}
	} else if name, ok := strings.CutPrefix(c.postgres, "env:"); ok {
		dsn := strings.TrimSpace(os.Getenv(name))
		if dsn == "" {
			fmt.Fprintf(c.stderr, "%s: --postgres env:%s: the variable is not set or empty\n", c.fs.Name(), name)
			return nil, exitUsage, false
		}
		c.postgres = dsn
	}
	return pos, exitOK, true
}

// verifier returns the verifier key: --key, or the config's key file.
func (c *auditCmd) verifier() (note.Verifier, int) {
	src := c.key
	if src == "" && c.cfg != nil {
		src = c.cfg.Audit.Checkpoint.KeyFile
	}
	if src == "" {
		fmt.Fprintf(c.stderr, "%s: a verifier key is needed: --key VKEY, or --config FILE with audit.checkpoint.key_file\n", c.fs.Name())
		return nil, exitUsage
	}
	v, err := audit.ParseVerifierKey(src)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", c.fs.Name(), err)
		return nil, exitFail
	}
	return v, exitOK
}

// open opens the log read-only, with the archive if withArchive (file
// backend only).
func (c *auditCmd) open(withArchive bool) (audit.Backend, error) {
	if c.postgres != "" {
		if withArchive {
			return nil, errors.New("--archive is for the file backend; a PostgreSQL log keeps every record")
		}
		return pgstore.Open(context.Background(), c.postgres, pgstore.Options{Schema: c.schema, ReadOnly: true})
	}
	opts := audit.FileOptions{ReadOnly: true}
	if withArchive {
		opts.ArchiveDir = c.archive
	}
	return audit.OpenFileBackend(c.log, opts)
}

func (c *auditCmd) fail(err error) int {
	fmt.Fprintf(c.stderr, "%s: %v\n", c.fs.Name(), err)
	return exitFail
}

// readCheckpointFile reads a signed checkpoint from a file.
func readCheckpointFile(path string) ([]byte, error) {
	data, st, err := localfile.ReadFile(path, 64<<10)
	if err != nil {
		return nil, err
	}
	if !st.Exists {
		return nil, fmt.Errorf("%s: %w", path, os.ErrNotExist)
	}
	return data, nil
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("verify", stdout, stderr)
	c.withKey()
	c.withArchive("re-read archived records from `DIR` too")
	checkpoint := c.fs.String("checkpoint", "", "verify against the signed checkpoint in `FILE` instead of the log's latest")
	var witnesses multiFlag
	c.fs.Var(&witnesses, "witness", "also check that the log extends the checkpoint in `FILE` (repeatable; default: audit.checkpoint.witness)")
	allowTail := c.fs.Bool("allow-tail", false, "exit 0 when records after the checkpoint are internally consistent")
	asJSON := c.fs.Bool("json", false, "print the report as JSON")
	if _, code, ok := c.parse(args, 0); !ok {
		return code
	}
	v, code := c.verifier()
	if code != exitOK {
		return code
	}
	opts := audit.VerifyOptions{Verifier: v}
	if *checkpoint != "" {
		data, err := readCheckpointFile(*checkpoint)
		if err != nil {
			return c.fail(err)
		}
		opts.Checkpoint = data
	}
	if len(witnesses) == 0 && c.cfg != nil && c.cfg.Audit.Checkpoint.Witness != "" {
		w := audit.WitnessPath(c.cfg.Audit.Checkpoint.Witness, c.cfg.Audit.Checkpoint.Origin)
		if _, err := os.Stat(w); err == nil {
			witnesses = append(witnesses, w)
		}
	}
	for _, w := range witnesses {
		data, err := readCheckpointFile(w)
		if err != nil {
			return c.fail(fmt.Errorf("witness: %w", err))
		}
		opts.Others = append(opts.Others, audit.NamedCheckpoint{Name: w, Signed: data})
	}
	if c.cfg != nil {
		opts.Origin = c.cfg.Audit.Checkpoint.Origin
	}
	b, err := c.open(c.archive != "")
	var rep audit.Report
	if err == nil {
		rep, err = audit.VerifyBackend(context.Background(), b, opts)
		b.Close()
	} else {
		var ce *audit.CorruptError
		if errors.As(err, &ce) {
			err = &audit.VerifyError{Index: ce.Index, Reason: ce.Error()}
		}
	}
	var ve *audit.VerifyError
	var cpe *audit.CheckpointError
	if err != nil && !errors.As(err, &ve) && !errors.As(err, &cpe) {
		return c.fail(err) // the log could not be read: not a verdict
	}
	failed := err != nil
	for _, o := range rep.Others {
		failed = failed || o.Err != nil
	}
	tailFails := err == nil && rep.Tail > 0 && !*allowTail
	if *asJSON {
		printVerifyJSON(stdout, &rep, err, failed || tailFails)
	} else {
		printVerify(stdout, &rep, err, *allowTail)
	}
	if failed || tailFails {
		return exitFail
	}
	return exitOK
}

func printVerify(w io.Writer, rep *audit.Report, err error, allowTail bool) {
	var ve *audit.VerifyError
	var cpe *audit.CheckpointError
	switch {
	case errors.As(err, &cpe):
		fmt.Fprintf(w, "FAILED: %v\nnothing in the log can be trusted against this checkpoint\n", cpe)
	case errors.As(err, &ve):
		fmt.Fprintf(w, "FAILED: %v\n", ve)
		if ve.End > ve.Index+1 {
			fmt.Fprintf(w, "records before %d verify; the change is in records %d..%d; everything from %d on is not trusted\n",
				ve.Index, ve.Index, ve.End-1, ve.Index)
		} else {
			fmt.Fprintf(w, "the first %d records verify; record %d and everything after it are not trusted\n", ve.Index, ve.Index)
		}
	case rep.Checkpoint == nil && rep.Records == 0:
		fmt.Fprintf(w, "ok: the log is empty\n")
	case rep.Checkpoint == nil:
		verdict := "NOT CHECKPOINTED"
		if allowTail {
			verdict = "ok (unsigned)"
		}
		fmt.Fprintf(w, "%s: %d records; no signed checkpoint covers them yet\n", verdict, rep.Records)
		printTail(w, rep, 0)
	default:
		cp := rep.Checkpoint
		verdict := "ok"
		if rep.Tail > 0 && !allowTail {
			verdict = "NOT FULLY CHECKPOINTED"
		}
		fmt.Fprintf(w, "%s: %d records; the signed checkpoint of %d records (origin %s) verifies, root %s\n",
			verdict, rep.Records, cp.Tree.N, audit.TerminalSafe(cp.Origin), cp.Tree.Hash)
		printTail(w, rep, cp.Tree.N)
	}
	switch {
	case err != nil || rep.HeadSize == 0:
	case rep.Pending > 0:
		fmt.Fprintf(w, "head: %s (root of the first %d records, those with stored hashes)\n", rep.Head, rep.HeadSize)
	default:
		fmt.Fprintf(w, "head: %s (root of all %d records)\n", rep.Head, rep.HeadSize)
	}
	if rep.Archived > 0 {
		fmt.Fprintf(w, "archived: records 0..%d were not re-read (their stored hashes were checked); give --archive DIR to read them\n", rep.Archived-1)
	}
	if rep.TornBytes > 0 {
		fmt.Fprintf(w, "torn: %d bytes of an incomplete record at the end (a write in progress, or a torn tail warden repairs at its next start)\n",
			rep.TornBytes)
	}
	for _, r := range rep.Repairs {
		fmt.Fprintf(w, "repaired at an earlier start: %s\n", audit.TerminalSafe(r))
	}
	for _, o := range rep.Others {
		if o.Err != nil {
			fmt.Fprintf(w, "FAILED: witness %s: %v\n", o.Name, o.Err)
		} else {
			fmt.Fprintf(w, "witness %s: checkpoint of %d records is a prefix of the log\n", o.Name, o.Checkpoint.Tree.N)
		}
	}
}

// printTail describes the records no signed checkpoint covers yet.
func printTail(w io.Writer, rep *audit.Report, from int64) {
	n := rep.Tail
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "tail: %d records after the checkpoint (%d..%d) are not yet covered by a signed checkpoint", n, from, from+n-1)
	switch {
	case rep.Pending == 0:
		fmt.Fprintf(w, "; they match their stored hashes\n")
	case rep.Pending == n:
		fmt.Fprintf(w, "; their stored hashes are written with the next checkpoint, so they were checked for framing and position only\n")
	default:
		fmt.Fprintf(w, "; %d match their stored hashes, %d are not hashed yet (checked for framing and position only)\n", n-rep.Pending, rep.Pending)
	}
}

func printVerifyJSON(w io.Writer, rep *audit.Report, err error, failed bool) {
	repairs := rep.Repairs
	if repairs == nil {
		repairs = []string{}
	}
	out := map[string]any{"ok": !failed, "records": rep.Records, "tail": rep.Tail, "archived": rep.Archived,
		"pending": rep.Pending, "torn_bytes": rep.TornBytes, "repairs": repairs}
	if rep.Head != "" {
		out["head"] = rep.Head
	}
	if cp := rep.Checkpoint; cp != nil {
		out["checkpoint"] = map[string]any{"origin": cp.Origin, "size": cp.Tree.N, "root": cp.Tree.Hash.String()}
	}
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		out["first_bad"] = ve.Index
		if ve.End > ve.Index+1 {
			out["bad_end"] = ve.End
		}
	}
	if err != nil {
		out["error"] = err.Error()
	}
	var others []map[string]any
	for _, o := range rep.Others {
		m := map[string]any{"name": o.Name, "ok": o.Err == nil}
		if o.Err != nil {
			m["error"] = o.Err.Error()
		}
		others = append(others, m)
	}
	if others != nil {
		out["witnesses"] = others
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

var errNoCheckpoint = errors.New("the log has no checkpoint yet")

// latest returns the checkpoint to prove against: --checkpoint FILE or the
// log's latest, verified with v.
func latest(ctx context.Context, b audit.Backend, v note.Verifier, file string) (*audit.Checkpoint, error) {
	var signed []byte
	var err error
	if file != "" {
		if signed, err = readCheckpointFile(file); err != nil {
			return nil, err
		}
	} else if _, signed, err = b.LatestCheckpoint(ctx); err != nil {
		return nil, err
	}
	if signed == nil {
		return nil, errNoCheckpoint
	}
	return audit.OpenCheckpoint(signed, v)
}

func auditShow(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("show", stdout, stderr)
	c.withKey()
	pos, code, ok := c.parse(args, 1)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "%s: give the record's log index or request id\n", c.fs.Name())
		return exitUsage
	}
	b, err := c.open(c.archive != "")
	if err != nil {
		return c.fail(err)
	}
	defer b.Close()
	ctx := context.Background()
	r, _, err := audit.Find(ctx, b, pos[0])
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprint(stdout, audit.Explain(&r))
	// Inclusion, when a key is at hand.
	if c.key == "" && c.cfg == nil {
		fmt.Fprintln(stdout, "Inclusion: not checked (no verifier key; give --key).")
		return exitOK
	}
	v, code := c.verifier()
	if code != exitOK {
		return code
	}
	cp, err := latest(ctx, b, v, "")
	switch {
	case errors.Is(err, errNoCheckpoint):
		fmt.Fprintln(stdout, "Inclusion: not yet covered by a signed checkpoint (the log has none yet).")
		return exitOK
	case err != nil:
		fmt.Fprintf(stdout, "Inclusion: NOT PROVEN: %v.\n", err)
		return exitFail
	case r.Index >= cp.Tree.N:
		fmt.Fprintf(stdout, "Inclusion: not yet covered by a signed checkpoint (the latest covers %d records).\n", cp.Tree.N)
		return exitOK
	}
	if _, _, err := audit.Prove(ctx, b, r.Index, cp); err != nil {
		fmt.Fprintf(stdout, "Inclusion: NOT PROVEN: %v.\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "Inclusion: proven in the signed checkpoint of %d records (origin %s); 'warden audit prove %d' prints the proof.\n",
		cp.Tree.N, audit.TerminalSafe(cp.Origin), r.Index)
	return exitOK
}

func auditProve(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("prove", stdout, stderr)
	c.withKey()
	checkpoint := c.fs.String("checkpoint", "", "prove against the signed checkpoint in `FILE` instead of the log's latest")
	asJSON := c.fs.Bool("json", false, "print the proof as JSON")
	pos, code, ok := c.parse(args, 1)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "%s: give the record's log index or request id\n", c.fs.Name())
		return exitUsage
	}
	v, code := c.verifier()
	if code != exitOK {
		return code
	}
	b, err := c.open(c.archive != "")
	if err != nil {
		return c.fail(err)
	}
	defer b.Close()
	ctx := context.Background()
	r, _, err := audit.Find(ctx, b, pos[0])
	if err != nil {
		return c.fail(err)
	}
	cp, err := latest(ctx, b, v, *checkpoint)
	if err != nil {
		return c.fail(err)
	}
	proof, rec, err := audit.Prove(ctx, b, r.Index, cp)
	var ve *audit.VerifyError
	if err != nil && !errors.As(err, &ve) {
		return c.fail(err)
	}
	leaf := tlogLeaf(rec)
	if *asJSON {
		hs := make([]string, len(proof))
		for i, h := range proof {
			hs[i] = h.String()
		}
		out := map[string]any{"index": r.Index, "request_id": r.RequestID, "leaf_hash": leaf, "tree_size": cp.Tree.N,
			"root": cp.Tree.Hash.String(), "origin": cp.Origin, "proof": hs, "checkpoint": string(cp.Signed), "ok": err == nil}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		fmt.Fprintf(stdout, "record:    %d (request %s)\nleaf hash: %s\ntree:      %d records, root %s (origin %s, signature verified)\nproof:     %d hashes\n",
			r.Index, audit.TerminalSafe(r.RequestID), leaf, cp.Tree.N, cp.Tree.Hash, audit.TerminalSafe(cp.Origin), len(proof))
		for _, h := range proof {
			fmt.Fprintf(stdout, "  %s\n", h)
		}
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAILED: %v\n", err)
		return exitFail
	}
	if !*asJSON {
		fmt.Fprintln(stdout, "ok: the inclusion proof checks against the signed root")
	}
	return exitOK
}

// checkpointArg resolves --old/--new: a tree size from the log's stored
// history, or a file holding a signed checkpoint.
func checkpointArg(ctx context.Context, b audit.Backend, v note.Verifier, arg string) (*audit.Checkpoint, error) {
	if n, err := strconv.ParseInt(arg, 10, 64); err == nil {
		return audit.FindCheckpoint(ctx, b, v, n)
	}
	data, err := readCheckpointFile(arg)
	if err != nil {
		return nil, err
	}
	return audit.OpenCheckpoint(data, v)
}

func auditConsistency(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("consistency", stdout, stderr)
	c.withKey()
	oldArg := c.fs.String("old", "", "the older checkpoint: a tree `SIZE` from the log's history, or a FILE")
	newArg := c.fs.String("new", "", "the newer checkpoint, like --old; default the log's latest")
	asJSON := c.fs.Bool("json", false, "print the proof as JSON")
	if _, code, ok := c.parse(args, 0); !ok {
		return code
	}
	if *oldArg == "" {
		fmt.Fprintf(stderr, "%s: --old SIZE|FILE is required\n", c.fs.Name())
		return exitUsage
	}
	v, code := c.verifier()
	if code != exitOK {
		return code
	}
	b, err := c.open(false)
	if err != nil {
		return c.fail(err)
	}
	defer b.Close()
	ctx := context.Background()
	older, err := checkpointArg(ctx, b, v, *oldArg)
	if err != nil {
		return c.fail(fmt.Errorf("--old: %w", err))
	}
	var newer *audit.Checkpoint
	if *newArg != "" {
		newer, err = checkpointArg(ctx, b, v, *newArg)
	} else {
		newer, err = latest(ctx, b, v, "")
	}
	if err != nil {
		return c.fail(fmt.Errorf("--new: %w", err))
	}
	if older.Origin != newer.Origin {
		fmt.Fprintf(stdout, "FAILED: the checkpoints are of different logs (%s, %s)\n", audit.TerminalSafe(older.Origin), audit.TerminalSafe(newer.Origin))
		return exitFail
	}
	if older.Tree.N > newer.Tree.N {
		older, newer = newer, older
	}
	proof, err := audit.Consistency(b, older, newer)
	var ve *audit.VerifyError
	if err != nil && !errors.As(err, &ve) {
		return c.fail(err)
	}
	if *asJSON {
		hs := make([]string, len(proof))
		for i, h := range proof {
			hs[i] = h.String()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"old_size": older.Tree.N, "old_root": older.Tree.Hash.String(), "new_size": newer.Tree.N,
			"new_root": newer.Tree.Hash.String(), "proof": hs, "ok": err == nil})
	} else {
		fmt.Fprintf(stdout, "old: %d records, root %s\nnew: %d records, root %s\nproof: %d hashes\n",
			older.Tree.N, older.Tree.Hash, newer.Tree.N, newer.Tree.Hash, len(proof))
		for _, h := range proof {
			fmt.Fprintf(stdout, "  %s\n", h)
		}
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAILED: %v\n", err)
		return exitFail
	}
	if !*asJSON {
		fmt.Fprintln(stdout, "ok: the newer checkpoint's tree holds the older one as a prefix")
	}
	return exitOK
}

func auditTail(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("tail", stdout, stderr)
	n := c.fs.Int("n", 20, "number of records")
	asJSON := c.fs.Bool("json", false, "print records as JSON lines, as stored")
	if _, code, ok := c.parse(args, 0); !ok {
		return code
	}
	if *n <= 0 {
		fmt.Fprintf(stderr, "%s: -n must be positive\n", c.fs.Name())
		return exitUsage
	}
	b, err := c.open(false)
	if err != nil {
		return c.fail(err)
	}
	defer b.Close()
	ctx := context.Background()
	size, err := audit.Readable(ctx, b)
	if err != nil {
		return c.fail(err)
	}
	start := max(0, size-int64(*n))
	if *asJSON {
		if err := exportRange(ctx, b, start, size, stdout); err != nil {
			return c.fail(err)
		}
		return exitOK
	}
	recs, err := audit.Tail(ctx, b, *n)
	if err != nil {
		return c.fail(err)
	}
	for i := range recs {
		fmt.Fprintln(stdout, auditFormatRecord(&recs[i]))
	}
	return exitOK
}

// exportRange prints records [start, end) as stored, one per line,
// skipping archived ones.
func exportRange(ctx context.Context, b audit.Backend, start, end int64, w io.Writer) error {
	err := b.ReadRecords(ctx, start, end, func(_ int64, rec []byte) error {
		if _, err := w.Write(rec); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	})
	var ae *audit.ArchivedError
	if errors.As(err, &ae) && ae.First > start {
		return exportRange(ctx, b, ae.First, end, w)
	}
	return err
}

func auditExport(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("export", stdout, stderr)
	c.withArchive("read archived records from `DIR` too")
	from := c.fs.Int64("from", 0, "first log `INDEX`")
	to := c.fs.Int64("to", -1, "end `INDEX` (exclusive); default the end of the log")
	if _, code, ok := c.parse(args, 0); !ok {
		return code
	}
	b, err := c.open(c.archive != "")
	if err != nil {
		return c.fail(err)
	}
	defer b.Close()
	ctx := context.Background()
	size, err := audit.Readable(ctx, b)
	if err != nil {
		return c.fail(err)
	}
	end := size
	if *to >= 0 {
		end = min(*to, size)
	}
	if *from < 0 || *from > end {
		fmt.Fprintf(stderr, "%s: --from %d is outside 0..%d\n", c.fs.Name(), *from, end)
		return exitUsage
	}
	if err := exportRange(ctx, b, *from, end, stdout); err != nil {
		return c.fail(err)
	}
	return exitOK
}

func auditArchive(args []string, stdout, stderr io.Writer) int {
	c := newAuditCmd("archive", stdout, stderr)
	c.withKey()
	c.withArchive("the archive `DIR`; default audit.archive_dir")
	if _, code, ok := c.parse(args, 0); !ok {
		return code
	}
	if c.postgres != "" {
		fmt.Fprintf(stderr, "%s: archive is for the file backend; a PostgreSQL log keeps every record in its tables\n", c.fs.Name())
		return exitUsage
	}
	if c.archive == "" && c.cfg != nil {
		c.archive = c.cfg.Audit.ArchiveDir
	}
	if c.archive == "" {
		fmt.Fprintf(stderr, "%s: no archive directory: give --archive DIR or set audit.archive_dir\n", c.fs.Name())
		return exitUsage
	}
	v, code := c.verifier()
	if code != exitOK {
		return code
	}
	rep, err := audit.Archive(context.Background(), c.log, c.archive, v)
	if err != nil {
		return c.fail(err)
	}
	if len(rep.Segments) == 0 {
		fmt.Fprintf(stdout, "nothing to archive: records from %d on are in the active segment or not yet covered by the checkpoint of %d records\n",
			rep.Retained, rep.Checkpoint.Tree.N)
		return exitOK
	}
	fmt.Fprintf(stdout, "archived records %d..%d (%d segments, %d bytes) to %s; the log keeps records from %d on and every stored hash\n",
		rep.First, rep.End-1, len(rep.Segments), rep.Bytes, c.archive, rep.Retained)
	return exitOK
}

// tlogLeaf is the base64 leaf hash of a stored record.
func tlogLeaf(rec []byte) string {
	return audit.LeafHash(rec).String()
}

// auditFormatRecord is the one-line human form of a record:
//
//	index time request_id principal method path action decision status code
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
		strconv.FormatInt(r.Index, 10),
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
		fields[i] = audit.TerminalSafe(f)
	}
	return strings.Join(fields, "  ")
}
