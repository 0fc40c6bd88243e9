// Package pgtest runs throwaway PostgreSQL 15 clusters for tests and
// benchmarks: initdb into a temporary directory, a postmaster listening only
// on 127.0.0.1 (and a Unix socket inside that directory) on a free port, and
// removal of everything when stopped.
//
// A test binary normally shares one cluster: TestMain calls
// os.Exit(pgtest.Main(m)), and each test takes a fresh database with
// NewDatabase. Code outside `go test` (a multi-node test harness, a bench
// script) uses StartCluster and Stop.
//
// The cluster never listens on anything but the loopback address, trusts
// every local connection (it holds only test data), and runs fsync=off unless
// Options.Fsync or PAYLOOM_PGTEST_FSYNC=on asks for durability: tests need
// PostgreSQL's semantics, not its crash safety, while a benchmark of commit
// latency must turn fsync on to mean anything.
//
// The binaries come from /usr/lib/postgresql/15/bin (or PAYLOOM_PG_BIN).
// When they are missing StartCluster fails and says to install them; it
// never skips. When the process runs as root the cluster runs as the
// "postgres" user, because initdb and postgres refuse to run as root.
//
// A cluster does not outlive the process that started it: the postmaster is
// a direct child started with a parent-death signal (SIGQUIT, PostgreSQL's
// immediate shutdown), so a test binary killed by a timeout or SIGKILL takes
// its cluster down with it, and the next StartCluster removes directories
// left behind by such processes.
package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBinDir is where Debian's postgresql-15 package installs the server.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// dirPrefix names the temporary directories, so that StartCluster can find
// and remove the ones a killed process left behind.
const dirPrefix = "payloom-pgtest-"

// Options configure a cluster. The zero value is what tests want.
type Options struct {
	// Fsync turns on fsync, full_page_writes and synchronous_commit, as in
	// production. Off by default: faster, identical semantics.
	Fsync bool
	// MaxConnections is the server's max_connections (default 200, enough
	// for several nodes' pools plus tests).
	MaxConnections int
	// StartTimeout bounds initdb plus startup (default 60s).
	StartTimeout time.Duration
}

// Cluster is one running throwaway PostgreSQL cluster.
type Cluster struct {
	dir  string // the temporary directory holding everything
	port int
	cmd  *exec.Cmd
	// exited is closed when the postmaster has exited.
	exited chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// StartCluster starts a cluster with the default Options, except that the
// environment variable PAYLOOM_PGTEST_FSYNC=on turns fsync on.
func StartCluster() (*Cluster, error) {
	return StartClusterWith(Options{Fsync: envFsync()})
}

func envFsync() bool {
	switch strings.ToLower(os.Getenv("PAYLOOM_PGTEST_FSYNC")) {
	case "1", "on", "true", "yes":
		return true
	}
	return false
}

// BinDir returns the directory the PostgreSQL binaries are taken from.
func BinDir() string {
	if d := os.Getenv("PAYLOOM_PG_BIN"); d != "" {
		return d
	}
	return DefaultBinDir
}

// StartClusterWith initializes and starts a cluster. The caller must Stop
// it.
func StartClusterWith(o Options) (*Cluster, error) {
	if o.MaxConnections == 0 {
		o.MaxConnections = 200
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	bin := BinDir()
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("pgtest: PostgreSQL 15 server binaries not found (%s/%s): "+
				"run `apt-get install -y postgresql-15` (or set PAYLOOM_PG_BIN)", bin, name)
		}
	}
	sweepStale()

	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s to postgres: %w", dir, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()

	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	var out bytes.Buffer
	initdb.Stdout, initdb.Stderr = &out, &out
	initdb.Env = serverEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := runLocked(initdb); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out.String())
	}

	// A free port can be taken by someone else between our probe and the
	// postmaster's bind: try a few.
	for try := 0; ; try++ {
		err := c.startServer(ctx, bin, data, cred, o)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || try == 4 {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

var errPortInUse = errors.New("port in use")

func (c *Cluster) startServer(ctx context.Context, bin, data string, cred *syscall.Credential, o Options) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child holds its own copy

	durability := "off"
	if o.Fsync {
		durability = "on"
	}
	args := []string{
		"-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=" + strconv.Itoa(o.MaxConnections),
		"-c", "fsync=" + durability,
		"-c", "full_page_writes=" + durability,
		"-c", "synchronous_commit=" + durability,
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic", // tests provoke errors on purpose
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes
		// its backends down and releases shared memory.
		Pdeathsig: syscall.SIGQUIT,
		// Its own process group: a ^C on the test doesn't reach it
		// directly, and Stop can kill the whole group as a last resort.
		Setpgid: true,
	}
	exited := make(chan struct{})
	var exitErr error // written before exited is closed
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that forked the
		// child exits, not the process: keep this thread for as long as
		// the postmaster lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.cmd, c.port, c.exited = cmd, port, exited

	// Ready when it accepts a connection.
	for {
		select {
		case <-exited:
			log := tail(logPath)
			if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("pgtest: postgres exited during startup (%v):\n%s", exitErr, log)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w\n%s", ctx.Err(), tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
	}
}

// runLocked runs a command from a locked OS thread so that its parent-death
// signal is tied to a thread that lives as long as the wait.
func runLocked(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- cmd.Run()
	}()
	return <-done
}

// serverCredential returns the postgres user's credential when running as
// root (initdb and postgres refuse root), nil otherwise.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres user "+
			"(run `apt-get install -y postgresql-15`): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has a non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// serverEnv is the environment without libpq's PG* variables, which would
// otherwise redirect initdb or the server, and with a C locale.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// sweepStale removes clusters whose owning process is gone (killed before
// it could Stop them). Their postmasters normally died with the owner; one
// that did not is killed here.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, ok := readPID(filepath.Join(dir, "owner.pid"))
		if !ok || alive(owner) {
			continue
		}
		if pm, ok := readPID(filepath.Join(dir, "data", "postmaster.pid")); ok && alive(pm) && isPostgres(pm) {
			syscall.Kill(pm, syscall.SIGKILL)
		}
		os.RemoveAll(dir)
	}
}

func readPID(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte("postgres"))
}

// URL returns the connection URL of a database in the cluster, as the
// superuser "postgres" over TCP on 127.0.0.1.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Port returns the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// Dir returns the cluster's temporary directory (data/, postgres.log, and
// the Unix socket).
func (c *Cluster) Dir() string { return c.dir }

// CreateDatabase creates an empty database.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return c.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// CloneDatabase creates a database as a copy of template, which must have
// no open connections (PostgreSQL waits a few seconds for them to go).
// Cloning a migrated template is faster than migrating each test's
// database.
func (c *Cluster) CloneDatabase(ctx context.Context, name, template string) error {
	return c.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE "+pgx.Identifier{template}.Sanitize())
}

// DropDatabase drops a database, disconnecting whoever is still connected.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	return c.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func (c *Cluster) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// Stop shuts the cluster down at once (immediate mode: nothing in it is
// worth a checkpoint) and removes its directory. It is safe to call more
// than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil {
			select {
			case <-c.exited:
			default:
				c.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-c.exited:
				case <-time.After(10 * time.Second):
					// Kill the postmaster's group and whatever is left.
					syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
					<-c.exited
				}
			}
		}
		if c.dir != "" {
			if err := os.RemoveAll(c.dir); err != nil {
				c.stopErr = fmt.Errorf("pgtest: %w", err)
			}
		}
	})
	return c.stopErr
}

// shared is the cluster of the test binary, started by Main.
var shared *Cluster

// Main starts a cluster, runs the tests and stops the cluster. Use it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// If the cluster cannot start, every test fails: the message says why (for
// example that postgresql-15 must be installed).
func Main(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse() // for testing.Verbose
	}
	t0 := time.Now()
	c, err := StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "pgtest: cluster on 127.0.0.1:%d started in %v (fsync=%v)\n",
			c.port, time.Since(t0).Round(time.Millisecond), envFsync())
	}
	shared = c
	defer c.Stop()
	return m.Run()
}

// Shared returns the cluster started by Main, or nil.
func Shared() *Cluster { return shared }

// NewDatabase creates a fresh database in the cluster started by Main and
// returns its URL. The database is dropped when the test ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, "")
}

// NewDatabaseFrom is NewDatabase with a copy of the template database
// (see Cluster.CloneDatabase).
func NewDatabaseFrom(tb testing.TB, template string) string {
	tb.Helper()
	return newDatabase(tb, template)
}

func newDatabase(tb testing.TB, template string) string {
	tb.Helper()
	c := shared
	if c == nil {
		tb.Fatal("pgtest: no cluster; call os.Exit(pgtest.Main(m)) from TestMain")
	}
	name := RandomName("t_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if template == "" {
		err = c.CreateDatabase(ctx, name)
	} else {
		err = c.CloneDatabase(ctx, name, template)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c.URL(name)
}

// RandomName returns prefix followed by 16 random hex digits: a database
// name no other test uses.
func RandomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Start starts a cluster of the test's own, stopped when the test ends: for
// tests that must stop or break the server. Others share Main's cluster
// through NewDatabase.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := StartCluster()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}
