package simulator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultAddr is where Main listens without --addr.
const DefaultAddr = "127.0.0.1:7070"

// Main runs a simulator until ctx is done: the body of `payloom simulator`.
// It prints "payloom simulator listening on http://ADDR" on stdout once it
// accepts connections (with --addr 127.0.0.1:0 that line names the port
// the system chose). Flags:
//
//	--addr        host:port to listen on (default 127.0.0.1:7070)
//	--seed        seed of the random fault mode (default 1)
//	--error-rate  probability of a 503 "not processed" answer
//	--hang-rate   probability of recording and then never answering
//	--drop-rate   probability of recording and then closing the connection
//	--late-rate   probability of a late commit: no answer, invisible to
//	              lookups until it commits
//	--throttle-rate  probability of a 429 "rate limited" answer (any
//	              request, retries of recorded keys too)
//	--late-commit-after  how long a late commit stays held (default 0:
//	              until POST /_control/commit)
//	--latency     delay added to every answer (e.g. 20ms)
//	--log         log one line per request on stderr
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", DefaultAddr, "host:port to listen on")
	var f Faults
	fs.Uint64Var(&f.Seed, "seed", 1, "seed of the random fault mode")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "probability of a 503 \"not processed\" answer")
	fs.Float64Var(&f.HangRate, "hang-rate", 0, "probability of recording the outcome and never answering")
	fs.Float64Var(&f.DropRate, "drop-rate", 0, "probability of recording the outcome and closing the connection")
	fs.Float64Var(&f.LateRate, "late-rate", 0, "probability of a late commit (no answer; lookups miss it until it commits)")
	fs.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "probability of a 429 \"rate limited\" answer, retries of recorded keys too")
	lateAfter := fs.Duration("late-commit-after", 0, "how long a late commit stays held (0: until POST /_control/commit)")
	latency := fs.Duration("latency", 0, "delay added to every answer")
	logRequests := fs.Bool("log", false, "log one line per request on stderr (never card data)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulator: unexpected arguments %q", fs.Args())
	}
	f.LateCommitAfterMS = int(lateAfter.Milliseconds())
	opts := Options{Faults: f, Latency: *latency}
	if *logRequests {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	sim := NewServer(opts)
	defer sim.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "payloom simulator listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("simulator: %w", err)
	case <-ctx.Done():
	}
	sim.Close() // release hung requests so that Shutdown can finish
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("simulator: %w", err)
	}
	return nil
}
