package simulator_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/simulator"
)

// TestMain doubles as the simulator binary: re-executed with
// PAYLOOM_SIMULATOR_MAIN=1, the test binary runs simulator.Main as
// `payloom simulator` would, so that a test can start it as a real
// process without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("PAYLOOM_SIMULATOR_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := simulator.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMainProcess starts the simulator as a separate process on a port the
// system picks, drives it across the socket, and stops it with SIGINT.
func TestMainProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0", "--seed", "7", "--log")
	cmd.Env = append(os.Environ(), "PAYLOOM_SIMULATOR_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the simulator's first line: %v (stderr: %s)", err, stderr.String())
	}
	const prefix = "payloom simulator listening on "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("first line = %q; want it to start with %q", line, prefix)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, prefix))

	c := simulator.NewConnector(url, simulator.ConnectorOptions{Name: "acquirer_a"})
	if res := mustAuthorize(t, c, authReq("p1", simulator.CardApprove, 1234, false)); res.Status != payloom.AuthorizationApproved {
		t.Fatalf("Authorize = %s; want approved", res.Status)
	}
	ctl := &simulator.Control{BaseURL: url}
	if _, err := ctl.AddRules(bg, simulator.Rule{Reference: "pay_p2", Action: simulator.ActionDrop, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authorize(bg, authReq("p2", simulator.CardApprove, 99, true)); err == nil {
		t.Fatal("Authorize dropped by the process = nil error; want an error (unknown outcome)")
	}
	look, err := c.Lookup(bg, &payloom.LookupRequest{IdempotencyKey: "p2"})
	if err != nil || !look.Found || look.Result.Status != payloom.AuthorizationApproved {
		t.Fatalf("Lookup(p2) = %+v, %v; want found approved", look, err)
	}
	l, err := ctl.Ledger(bg)
	if err != nil || len(l.Approved()) != 2 {
		t.Fatalf("Ledger = %+v, %v; want 2 approved authorizations", l, err)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("simulator exit after SIGINT = %v; want 0 (stderr: %s)", err, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "key=p1") || strings.Contains(logs, simulator.CardApprove) {
		t.Errorf("stderr log lacks key=p1 or shows a card number:\n%s", logs)
	}
}

func TestMainArguments(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := [][]string{
		{"--no-such-flag"},
		{"--error-rate", "0.7", "--drop-rate", "0.7"},
		{"--hang-rate", "-1"},
		{"--late-rate", "0.6", "--error-rate", "0.6"},
		{"--late-commit-after", "-1s"},
		{"stray"},
		{"--addr", busy.Addr().String()},
	}
	for _, args := range tests {
		if err := simulator.Main(bg, args, io.Discard, io.Discard); err == nil {
			t.Errorf("Main(%q) = nil; want an error", args)
		}
	}
	// A cancelled context stops a healthy simulator cleanly.
	ctx, cancel := context.WithCancel(bg)
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- simulator.Main(ctx, []string{"--addr", "127.0.0.1:0"}, &out, io.Discard) }()
	waitFor(t, func() bool { return strings.Contains(out.String(), "listening on http://127.0.0.1:") })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Main after cancel = %v; want nil", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
