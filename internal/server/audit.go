package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/audit/pgstore"
	"github.com/warden-ai/warden/internal/config"
)

// openAudit opens the audit log of cfg: the checkpoint key (generated at
// the first start), the log's storage (the directory, repairing a torn
// tail, which is logged and counted; or the PostgreSQL schema, created or
// migrated, with its writer lock taken), and the log's metrics. If the
// storage cannot be opened, warden does not start.
func (s *Server) openAudit(cfg *config.Config) (*audit.Log, error) {
	a := cfg.Audit
	key, created, err := audit.LoadOrCreateKey(a.Checkpoint.KeyFile, a.Checkpoint.Origin)
	if err != nil {
		return nil, err
	}
	if created {
		s.logger.Warn("audit: generated a checkpoint signing key; keep it apart from the log and give its verifier key to auditors",
			"key_file", a.Checkpoint.KeyFile, "verifier_key", key.VerifierKey())
	}
	opts := audit.Options{
		Key:                key,
		Origin:             a.Checkpoint.Origin,
		Mode:               audit.Mode(a.Mode),
		MaxPending:         a.Async.MaxPending,
		MaxDelay:           a.Async.MaxDelay.D(),
		CheckpointEvery:    a.Checkpoint.Every,
		CheckpointInterval: a.Checkpoint.Interval.D(),
		Witness:            a.Checkpoint.Witness,
		Logger:             s.logger,
	}
	var l *audit.Log
	switch a.Backend {
	case config.AuditBackendPostgres:
		l, err = openPostgresAudit(a, opts)
		if err == nil {
			s.logger.Info("audit: log in PostgreSQL", "schema", a.Postgres.Schema, "database", l.Backend().(*pgstore.Backend).Target())
		}
	default:
		l, err = audit.Open(a.Path, opts)
	}
	if err != nil {
		return nil, err
	}
	if st := l.Stats(); len(st.Repairs) > 0 {
		s.logger.Error("audit: the log had a torn tail, repaired at open; see GET /audit/status and 'warden audit verify'",
			"repairs", st.Repairs)
	}
	if err := registerAuditMetrics(s.metrics.Registry(), l); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("audit metrics: %w", err)
	}
	return l, nil
}

// openPostgresAudit opens the log in the PostgreSQL schema of a.
func openPostgresAudit(a config.Audit, opts audit.Options) (*audit.Log, error) {
	dsn, err := a.Postgres.ConnString()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.Postgres.Timeout.D()+5*time.Second)
	defer cancel()
	b, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: a.Postgres.Schema, Timeout: a.Postgres.Timeout.D()})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l, err := audit.OpenBackend(b, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return l, nil
}

// registerAuditMetrics exports the log's state.
func registerAuditMetrics(reg *prometheus.Registry, l *audit.Log) error {
	gauge := func(name, help string, fn func(audit.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return fn(l.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("warden_audit_records", "Records in the audit log.", func(s audit.Stats) float64 { return float64(s.Records) }),
		gauge("warden_audit_checkpoint_size", "Records covered by the latest signed checkpoint.",
			func(s audit.Stats) float64 { return float64(s.Checkpointed) }),
		gauge("warden_audit_unanchored_records", "Records not yet covered by a signed checkpoint.",
			func(s audit.Stats) float64 { return float64(s.Records - s.Checkpointed) }),
		gauge("warden_audit_repairs_at_open", "Torn-tail repairs made when the log was opened (0 after a clean shutdown).",
			func(s audit.Stats) float64 { return float64(len(s.Repairs)) }),
		gauge("warden_audit_lost_records", "Async mode: records answered whose write then failed.",
			func(s audit.Stats) float64 { return float64(s.Lost) }),
		gauge("warden_audit_healthy", "1 while the audit log accepts records; 0 while requests are refused.", func(s audit.Stats) float64 {
			if s.Err != "" {
				return 0
			}
			return 1
		}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// auditRoutes serves the log's public parts on the admin listener: the
// latest signed checkpoint (C2SP tlog-checkpoint in a signed note), the
// verifier key, and the log's state. Checkpoints and the verifier key are
// public by design; records are not served.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /audit/checkpoint", func(w http.ResponseWriter, _ *http.Request) {
		cp := s.audit.Checkpoint()
		if cp == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no checkpoint yet: the log has no records"})
			return
		}
		writeText(w, cp.Signed)
	})
	mux.HandleFunc("GET /audit/key", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, []byte(s.audit.VerifierKey()+"\n"))
	})
	mux.HandleFunc("GET /audit/status", func(w http.ResponseWriter, _ *http.Request) {
		st := s.audit.Stats()
		if st.Repairs == nil {
			st.Repairs = []string{}
		}
		body := map[string]any{
			"origin":       s.audit.Origin(),
			"mode":         st.Mode,
			"records":      st.Records,
			"checkpointed": st.Checkpointed,
			"repairs":      st.Repairs,
			"lost":         st.Lost,
			"healthy":      st.Err == "",
		}
		if st.Err != "" {
			body["error"] = st.Err
		}
		if !st.CheckpointTime.IsZero() {
			body["checkpoint_time"] = st.CheckpointTime.UTC()
		}
		if !st.WitnessTime.IsZero() {
			body["witness_time"] = st.WitnessTime.UTC()
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func writeText(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
