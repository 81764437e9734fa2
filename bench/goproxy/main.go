// Command goproxy is a bare net/http/httputil.ReverseProxy with the same
// upstream transport settings as warden's proxy stage and nothing else: no
// audit, identity, body check or policy. bench/run.sh runs it as the optional
// "go-rp" target (BASELINE_GO=1) to separate the cost of Go's HTTP server and
// client from the cost of warden's stages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18084", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "upstream base URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("goproxy: bad -upstream %q", *upstream)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Transport: &http.Transport{ // as in internal/gateway.newReverseProxy
			DialContext:           dialer.DialContext,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
		},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("goproxy: %v", err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		<-c
		_ = srv.Close()
	}()
	fmt.Printf("goproxy on http://%s -> %s\n", ln.Addr(), target)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("goproxy: %v", err)
	}
}
