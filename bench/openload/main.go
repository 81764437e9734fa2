// Command openload offers HTTP load at a fixed rate, open loop: request i is
// due at a time drawn in advance (Poisson arrivals at -rate per second, or
// evenly spaced with -even), whether or not earlier requests have been
// answered, and its latency is counted from that due time. A slow server
// therefore shows in the latency of every request that had to wait, which a
// closed-loop generator hides (coordinated omission), and the arrivals do
// not fall into step with the responses.
//
// The generator's own lateness is not the server's: Go's timers wake up to
// a millisecond late on a busy machine, so a request the generator sends
// late is timed from when it was sent (queued for a free connection), not
// from its due time. Waiting for a connection, because all of them were
// busy with slower responses, is counted. The mean and largest lateness are
// printed to standard error.
//
// bench/run.sh uses it for the fixed-rate runs (RATE=N): wrk's per-connection
// delay() is closed loop: a connection's next request waits for its last
// response, so a slow target is offered less load, and requests that share
// a timer tick leave together; at the same 2,000 req/s every target's p50
// and p99 came out higher than with open-loop arrivals (bench/RESULTS.md,
// session 7).
//
// It sends the body of -body (POST, Content-Type: application/json) with the
// Authorization header from the environment variable WRK_AUTH, over at most
// -conns keep-alive connections, and prints one line in chat.lua's format:
//
//	WRK_RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N
//	           max_us=N non2xx=N connect=N read=N write=N timeout=N
//
// with requests not finished by the end of the run, or failed, counted as
// errors (read), and a status >= 400 as non2xx.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openload:", err)
		os.Exit(1)
	}
}

type result struct {
	latency time.Duration
	status  int
	err     error
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("openload", flag.ContinueOnError)
	url := fs.String("url", "", "target URL (required)")
	rate := fs.Float64("rate", 0, "requests per second (required)")
	duration := fs.Duration("duration", 10*time.Second, "how long to offer load")
	conns := fs.Int("conns", 32, "most connections open at once")
	bodyFile := fs.String("body", "", "file holding the JSON request body (required)")
	even := fs.Bool("even", false, "evenly spaced arrivals instead of Poisson")
	seed := fs.Uint64("seed", 1, "seed of the arrival times")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *rate <= 0 || *bodyFile == "" || *conns < 1 || *duration <= 0 {
		return errors.New("-url, -rate > 0, -body, -conns >= 1 and -duration > 0 are required")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	auth := os.Getenv("WRK_AUTH")
	if auth == "" {
		return errors.New("WRK_AUTH is not set")
	}
	debug.SetGCPercent(400) // the generator's own collections would add to every target's tail

	due := schedule(*rate, *duration, *even, *seed)
	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxConnsPerHost:     *conns,
			MaxIdleConnsPerHost: *conns,
			DisableCompression:  true,
		},
	}
	type job struct {
		i  int
		at time.Time // when the clock starts: due, or sent if later
	}
	jobs := make(chan job, len(due))
	results := make([]result, len(due))
	ctx, cancel := context.WithTimeout(context.Background(), *duration+*timeout)
	defer cancel()
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for j := range jobs {
				results[j.i] = send(ctx, client, *url, auth, body, j.at)
			}
		})
	}
	var late, maxLate time.Duration
	for i, d := range due {
		at := start.Add(d)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		if now := time.Now(); now.After(at) {
			late += now.Sub(at)
			maxLate = max(maxLate, now.Sub(at))
			at = now
		}
		jobs <- job{i, at}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(os.Stderr, "openload: %d requests due, sent late by %v on average, %v at most\n",
		len(due), late/time.Duration(max(len(due), 1)), maxLate)
	fmt.Fprintln(out, summary(results, elapsed))
	return nil
}

// schedule returns the due times of the requests, from 0 to d.
func schedule(rate float64, d time.Duration, even bool, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 0x6f70656e6c6f6164))
	var due []time.Duration
	for t := 0.0; ; {
		if even {
			t += 1 / rate
		} else {
			t += rng.ExpFloat64() / rate
		}
		at := time.Duration(t * float64(time.Second))
		if at >= d {
			return due
		}
		due = append(due, at)
	}
}

// send makes one request and returns its latency from dueAt.
func send(ctx context.Context, c *http.Client, url, auth string, body []byte, dueAt time.Time) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	res, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return result{latency: time.Since(dueAt), status: res.StatusCode, err: err}
}

// summary formats the results as chat.lua's WRK_RESULT line.
func summary(results []result, elapsed time.Duration) string {
	var lat []time.Duration
	non2xx, failed := 0, 0
	for _, r := range results {
		switch {
		case r.err != nil:
			failed++
		case r.status >= 400:
			non2xx++
			lat = append(lat, r.latency)
		default:
			lat = append(lat, r.latency)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) int64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p/100*float64(len(lat))+0.5) - 1
		return lat[min(max(i, 0), len(lat)-1)].Microseconds()
	}
	n := len(lat)
	return fmt.Sprintf("WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=0 read=%d write=0 timeout=0",
		n, elapsed.Microseconds(), float64(n)/elapsed.Seconds(), pct(50), pct(90), pct(99), pct(100), non2xx, failed)
}
