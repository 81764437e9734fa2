package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// RequestIDHeader carries warden's request id on every response and to the upstream.
const RequestIDHeader = "X-Request-Id"

// Observer is told about every finished exchange (metrics).
type Observer interface {
	ObserveExchange(ex *Exchange, status int, elapsed time.Duration)
}

// Handler runs each request through the stages in order. It is the only
// place that turns a stage's error into an HTTP response.
type Handler struct {
	stages   []Stage
	nexts    []func(*Exchange) error // nexts[i] runs stages[i+1:]; built once, no per-request closures
	logger   *slog.Logger
	observer Observer
	now      func() time.Time
}

// HandlerOptions configure a Handler. Zero values are usable.
type HandlerOptions struct {
	Logger   *slog.Logger
	Observer Observer
	Now      func() time.Time
}

// errChainEnd is returned when the last stage calls next: no stage produced a
// response, which is a wiring fault, so the request fails closed.
var errChainEnd = errors.New("gateway: request reached the end of the chain without a handler")

// NewHandler builds a handler over stages, run in order.
func NewHandler(stages []Stage, opts HandlerOptions) *Handler {
	h := &Handler{stages: stages, logger: opts.Logger, observer: opts.Observer, now: opts.Now}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.nexts = make([]func(*Exchange) error, len(stages)+1)
	h.nexts[len(stages)] = func(*Exchange) error { return errChainEnd }
	for i := len(stages) - 1; i >= 0; i-- {
		st, next := stages[i], h.nexts[i+1]
		h.nexts[i] = func(ex *Exchange) error { return st.Handle(ex, next) }
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &Exchange{
		ID:      NewRequestID(),
		Start:   h.now(),
		Request: r,
		Writer:  NewResponseWriter(w),
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ex.SourceIP = ap.Addr().Unmap()
	}
	w.Header().Set(RequestIDHeader, ex.ID)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity, as net/http does
				h.logger.Error("gateway: panic in request path", "request_id", ex.ID, "panic", p)
			}
			h.observe(ex, ex.Writer.Status())
			panic(p) // let net/http abort the connection
		}
	}()
	err := h.nexts[0](ex)
	status := ex.Writer.Status()
	if err != nil {
		ge := AsError(err)
		if !ex.Writer.Started() {
			WriteError(ex.Writer, ex.ID, ge)
			status = ge.Status
		}
		level := slog.LevelInfo
		if ge.Status >= 500 {
			level = slog.LevelError
		}
		h.logger.Log(r.Context(), level, "request refused", "request_id", ex.ID, "status", ge.Status,
			"code", ge.Code, "cause", ge.Error())
	}
	if status == 0 {
		status = http.StatusOK
	}
	h.observe(ex, status)
}

func (h *Handler) observe(ex *Exchange, status int) {
	if h.observer != nil {
		h.observer.ObserveExchange(ex, status, h.now().Sub(ex.Start))
	}
}

// NewRequestID returns 128 random bits in hex. Client-supplied ids are never
// used: an id an attacker can choose is an id an attacker can collide.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

var _ http.Handler = (*Handler)(nil)
