package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/server"
)

func init() {
	register("serve", "run the gateway: warden serve --config warden.yaml", cmdServe)
	register("version", "print the version", cmdVersion)
	register("config", "check a config file: warden config validate FILE", cmdConfig)
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses args and maps -h and errors to exit codes; ok=false means return code.
func parseArgs(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", stderr)
	cfgPath := fs.String("config", "warden.yaml", "config file")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	drain := fs.Duration("drain", 15*time.Second, "how long to wait for in-flight requests at shutdown")
	pprofAddr := fs.String("pprof", "", "serve Go profiling endpoints (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off by default")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "warden serve: -log-level: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "warden serve: %v\n", err)
		return exitUsage
	}
	gc, limit := applyRuntime(cfg.Runtime, os.Getenv)
	if limit == math.MaxInt64 {
		limit = 0 // none
	}
	logger.Info("go runtime", "gc_percent", gc, "memory_limit_bytes", limit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "warden serve: %v\n", err)
		return exitFail
	}
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "warden serve: %v\n", err)
		return exitFail
	}
	if *pprofAddr != "" {
		stopProf, err := servePprof(*pprofAddr, logger)
		if err != nil {
			fmt.Fprintf(stderr, "warden serve: -pprof: %v\n", err)
			_ = srv.Close()
			return exitUsage
		}
		defer stopProf()
	}
	fmt.Fprintf(stdout, "warden serving on %v (admin %s)\n", srv.ListenerAddrs(), srv.AdminAddr())
	<-ctx.Done()
	logger.Info("shutting down", "drain", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("shutdown", "err", err)
		return exitFail
	}
	return exitOK
}

// applyRuntime sets the garbage collector's target and the soft memory
// limit from the config, each unless the environment already set it (GOGC,
// GOMEMLIMIT: the runtime read those at start). It returns the values in
// effect (limit math.MaxInt64: none).
func applyRuntime(r config.Runtime, getenv func(string) string) (gcPercent int, memoryLimit int64) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(r.GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" && r.MemoryLimitBytes > 0 {
		debug.SetMemoryLimit(r.MemoryLimitBytes)
	}
	gcPercent = debug.SetGCPercent(-1) // read it back …
	debug.SetGCPercent(gcPercent)      // … and restore it
	return gcPercent, debug.SetMemoryLimit(-1)
}

// servePprof serves the runtime profiles on a loopback address only:
// profiles reveal memory contents and must never face a network.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Warn("profiling endpoints enabled", "address", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func cmdVersion(_ []string, stdout, _ io.Writer) int {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(stdout, "warden %s\n", v)
	return exitOK
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "validate" {
		fmt.Fprintln(stderr, "usage: warden config validate FILE")
		return exitUsage
	}
	cfg, err := config.Load(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "ok: %s: %d listener(s), %d route(s), policy %s\n", args[1], len(cfg.Listeners), len(cfg.Routes), cfg.Policy.Dir)
	return exitOK
}
