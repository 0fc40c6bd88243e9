package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func query(t *testing.T, url, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	var name string
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t.Run("use", func(t *testing.T) {
		url := NewDatabase(t)
		name = query(t, url, "SELECT current_database()")
		if n := query(t, url, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'"); n != "0" {
			t.Errorf("tables in a new database = %s; want 0", n)
		}
		// A connection left open must not keep the database from being
		// dropped: it stays open until the outer test ends.
		var err error
		conn, err = pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(context.Background(), "CREATE TABLE x (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	if got := query(t, Shared().URL("postgres"),
		"SELECT count(*)::text FROM pg_database WHERE datname = $1", name); got != "0" {
		t.Errorf("database %q still exists after its test: count = %s; want 0", name, got)
	}
}

func TestSharedClusterSettings(t *testing.T) {
	url := NewDatabase(t)
	tests := []struct{ setting, want string }{
		{"listen_addresses", "127.0.0.1"},
		{"server_version_num", "15"}, // prefix
		{"unix_socket_directories", Shared().Dir()},
		{"fsync", map[bool]string{true: "on", false: "off"}[envFsync()]},
	}
	for _, tt := range tests {
		got := query(t, url, "SELECT current_setting($1)", tt.setting)
		if tt.setting == "server_version_num" {
			got = got[:2]
		}
		if got != tt.want {
			t.Errorf("current_setting(%q) = %q; want %q", tt.setting, got, tt.want)
		}
	}
	if os.Geteuid() == 0 {
		if got := query(t, url, "SELECT current_user"); got != "postgres" {
			t.Errorf("current_user = %q; want postgres", got)
		}
	}
}

// TestStartStop starts a private cluster, stops it, and checks that nothing
// is left: no process, no directory.
func TestStartStop(t *testing.T) {
	t0 := time.Now()
	c, err := StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster started in %v", time.Since(t0))
	if got := query(t, c.URL("postgres"), "SELECT 'up'"); got != "up" {
		t.Fatalf("SELECT 'up' = %q", got)
	}
	pid := c.cmd.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop() = %v; want nil", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("postmaster %d still alive after Stop", pid)
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("Stat(%q) after Stop = %v; want not exist", c.Dir(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.URL("postgres")); err == nil {
		conn.Close(ctx)
		t.Errorf("connected to a stopped cluster")
	}
}

// TestKilledOwnerTakesClusterDown runs a child process that starts a
// cluster and is then SIGKILLed: the postmaster must die with it, and the
// next StartCluster must remove the directory left behind.
func TestKilledOwnerTakesClusterDown(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		c, err := StartCluster()
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString(c.Dir() + "\n")
		time.Sleep(time.Hour) // until killed
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestKilledOwnerTakesClusterDown$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var line []byte
	buf := make([]byte, 1)
	for {
		if _, err := out.Read(buf); err != nil || buf[0] == '\n' {
			break
		}
		line = append(line, buf[0])
	}
	dir := string(line)
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start a cluster: %q (%v)", dir, err)
	}
	pm, ok := readPID(filepath.Join(dir, "data", "postmaster.pid"))
	if !ok {
		t.Fatalf("no postmaster pid in %s", dir)
	}
	cmd.Process.Kill()
	cmd.Wait()

	// The postmaster exits on its own once its parent is gone; wait for it
	// (bounded; immediate shutdown takes milliseconds).
	deadline := time.Now().Add(30 * time.Second)
	for alive(pm) && isPostgres(pm) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pm) && isPostgres(pm) {
		syscall.Kill(pm, syscall.SIGKILL)
		t.Fatalf("postmaster %d outlived its killed owner", pm)
	}
	sweepStale()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		os.RemoveAll(dir)
		t.Errorf("Stat(%q) after sweepStale = %v; want not exist", dir, err)
	}
}

func TestMissingBinariesSayHowToInstall(t *testing.T) {
	t.Setenv("PAYLOOM_PG_BIN", t.TempDir())
	c, err := StartCluster()
	if err == nil {
		c.Stop()
		t.Fatal("StartCluster() without binaries = nil error; want one")
	}
	if want := "apt-get install -y postgresql-15"; !strings.Contains(err.Error(), want) {
		t.Errorf("StartCluster() without binaries = %q; want it to say %q", err, want)
	}
}

func TestStartIsStoppedWithTheTest(t *testing.T) {
	var c *Cluster
	t.Run("own cluster", func(t *testing.T) {
		c = Start(t)
		if got := query(t, c.URL("postgres"), "SELECT 'up'"); got != "up" {
			t.Fatalf("SELECT 'up' = %q", got)
		}
	})
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("Stat(%q) after the test = %v; want not exist", c.Dir(), err)
	}
}
