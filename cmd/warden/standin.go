package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warden-ai/warden/internal/standin"
)

func init() {
	register("standin", "run the deterministic OpenAI-compatible stand-in model server (for demos and benchmarks)", cmdStandin)
}

func cmdStandin(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("standin", stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	keyEnv := fs.String("api-key-env", "", "require this environment variable's value as the bearer token")
	delay := fs.Duration("chunk-delay", 0, "delay between streamed chunks")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	s := &standin.Server{ChunkDelay: *delay}
	if *keyEnv != "" {
		s.APIKey = os.Getenv(*keyEnv)
		if s.APIKey == "" {
			fmt.Fprintf(stderr, "warden standin: %s is not set\n", *keyEnv)
			return exitUsage
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "warden standin: %v\n", err)
		return exitFail
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Fprintf(stdout, "stand-in model server on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "warden standin: %v\n", err)
		return exitFail
	}
	return exitOK
}
