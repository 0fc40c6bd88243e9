package stripe_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stripe-mock is a real process started once for the package's tests, on
// loopback ports the system picks. It is found on PATH or in
// $(go env GOPATH)/bin, and installed with `go install` when missing: the
// tests never skip for want of it.
const stripeMockModule = "github.com/stripe/stripe-mock@v0.203.0"

// mockURL is the HTTP base URL of the running stripe-mock.
var mockURL string

func TestMain(m *testing.M) {
	code, err := runWithStripeMock(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stripe tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runWithStripeMock(m *testing.M) (int, error) {
	bin, err := stripeMockBinary()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "stripe-mock")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	fixtures, err := writeFixtures(dir)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0", "-fixtures", fixtures)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// Read its log for the HTTP address, then keep draining it (a full
	// pipe would block stripe-mock).
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return 0, fmt.Errorf("stripe-mock exited before listening: %s", stderr.String())
		}
		mockURL = "http://" + a
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("stripe-mock did not listen within 60s: %s", stderr.String())
	}
	return m.Run(), nil
}

// stripeMockBinary finds stripe-mock, installing it if it is missing.
func stripeMockBinary() (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	goBin := goTool()
	env, err := exec.Command(goBin, "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(string(env), "\n")
	dir := strings.TrimSpace(lines[0]) // GOBIN, where go install puts binaries if set
	if dir == "" && len(lines) > 1 {
		dir = filepath.Join(strings.Split(strings.TrimSpace(lines[1]), string(os.PathListSeparator))[0], "bin")
	}
	p := filepath.Join(dir, "stripe-mock")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	fmt.Fprintln(os.Stderr, "stripe-mock not found; go install", stripeMockModule)
	if out, err := exec.Command(goBin, "install", stripeMockModule).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", stripeMockModule, err, out)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("go install %s did not produce %s: %w", stripeMockModule, p, err)
	}
	return p, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// writeFixtures writes stripe-mock's bundled fixtures with one change:
// the PaymentIntent fixture is "succeeded" instead of
// "requires_payment_method" with a stray last_payment_error. stripe-mock
// answers every PaymentIntent call with that one fixture, so without the
// change no authorization could ever look approved; with it, none can look
// declined, which is why the harness declares no decline scenarios.
func writeFixtures(dir string) (string, error) {
	out, err := exec.Command(goTool(), "mod", "download", "-json", stripeMockModule).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", stripeMockModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no module directory in %s", stripeMockModule, out)
	}
	b, err := os.ReadFile(filepath.Join(mod.Dir, "embedded", "openapi", "fixtures3.json"))
	if err != nil {
		return "", err
	}
	var fx map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &fx); err != nil {
		return "", fmt.Errorf("stripe-mock fixtures: %w", err)
	}
	var pi map[string]any
	if err := json.Unmarshal(fx["resources"]["payment_intent"], &pi); err != nil {
		return "", fmt.Errorf("stripe-mock payment_intent fixture: %w", err)
	}
	pi["status"] = "succeeded"
	pi["last_payment_error"] = nil
	pi["next_action"] = nil
	if fx["resources"]["payment_intent"], err = json.Marshal(pi); err != nil {
		return "", err
	}
	b, err = json.Marshal(fx)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "fixtures.json")
	return path, os.WriteFile(path, b, 0o600)
}
