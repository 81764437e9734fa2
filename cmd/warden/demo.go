package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/warden-ai/warden/internal/demo"
)

func init() {
	register("demo", "run the guided tour on the embedded defaults (--once: run it and exit)", cmdDemo)
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	once := fs.Bool("once", false, "run the tour and exit: 0 only if every step behaved")
	dir := fs.String("dir", "", "working directory (default: a new temporary directory)")
	listen := fs.String("listen", "", "gateway address (default 127.0.0.1:8443, or a free port)")
	admin := fs.String("admin", "", "admin address (default 127.0.0.1:9090, or a free port)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := demo.Run(ctx, demo.Options{Dir: *dir, Once: *once, Listen: *listen, Admin: *admin, Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "warden demo: %v\n", err)
		return exitFail
	}
	if !ok {
		fmt.Fprintln(stderr, "warden demo: some steps FAILED")
		return exitFail
	}
	return exitOK
}
