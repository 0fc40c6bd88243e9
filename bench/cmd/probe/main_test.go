package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payloom/payloom/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// lines parses "name value" output.
func lines(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("malformed output line %q", l)
		}
		m[k] = v
	}
	return m
}

func TestProbeSQLite(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"WAL", "wal"},
		{"DELETE", "delete"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "p.db")
		db, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"PRAGMA journal_mode=" + tt.mode, "CREATE TABLE payments (id TEXT)",
			"INSERT INTO payments VALUES ('a'), ('b')"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()
		var out bytes.Buffer
		if err := probeSQLite(&out, path); err != nil {
			t.Fatalf("probeSQLite(%q): %v", path, err)
		}
		got := lines(t, out.String())
		if got["journal_mode"] != tt.want || got["payments"] != "2" {
			t.Errorf("probeSQLite(%s file) = %v; want journal_mode %s and 2 payments", tt.mode, got, tt.want)
		}
	}
	if err := probeSQLite(&bytes.Buffer{}, filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Errorf("probeSQLite(missing file) = nil; want an error (and no file created)")
	}
}

func TestProbeFsync(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := probeFsync(&out, dir, 5); err != nil {
		t.Fatalf("probeFsync: %v", err)
	}
	got := lines(t, out.String())
	if got["fsync_samples"] != "5" {
		t.Errorf("fsync_samples = %q; want 5", got["fsync_samples"])
	}
	p50, err1 := strconv.Atoi(got["fsync_p50_us"])
	max, err2 := strconv.Atoi(got["fsync_max_us"])
	if err1 != nil || err2 != nil || p50 > max {
		t.Errorf("p50 %q, max %q; want integers with p50 <= max", got["fsync_p50_us"], got["fsync_max_us"])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("probeFsync left %d files in %s; want none", len(entries), dir)
	}
}

func TestProbeLog(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := probeLog(&out, dir, 4, 200*time.Millisecond); err != nil {
		t.Fatalf("probeLog: %v", err)
	}
	got := lines(t, out.String())
	rate, err1 := strconv.ParseFloat(got["log_payments_per_s"], 64)
	cpu, err2 := strconv.ParseFloat(got["log_cpu_us_per_payment"], 64)
	per, err3 := strconv.ParseFloat(got["log_writes_per_group"], 64)
	// 4 users each wait for a write before the next: a group holds 1 to 4.
	if err1 != nil || err2 != nil || err3 != nil || rate <= 0 || cpu <= 0 || per < 1 || per > 4 || got["log_users"] != "4" {
		t.Errorf("probeLog printed %v; want 4 users, positive rate and CPU, 1 to 4 writes per group", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("probeLog left %d files in %s; want none", len(entries), dir)
	}
}

func TestProbePG(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var out bytes.Buffer
	if err := probePG(&out, url, 4, 200*time.Millisecond); err != nil {
		t.Fatalf("probePG: %v", err)
	}
	got := lines(t, out.String())
	rate, err1 := strconv.ParseFloat(got["pg_log_payments_per_s"], 64)
	cpu, err2 := strconv.ParseFloat(got["pg_log_client_cpu_us_per_payment"], 64)
	if err1 != nil || err2 != nil || rate <= 0 || cpu <= 0 || got["pg_log_users"] != "4" {
		t.Errorf("probePG printed %v; want 4 users, positive rate and CPU", got)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left bool
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass('payloom_log_probe') IS NOT NULL").Scan(&left); err != nil || left {
		t.Errorf("probe table left behind: %v, %v; want it dropped", left, err)
	}
}
