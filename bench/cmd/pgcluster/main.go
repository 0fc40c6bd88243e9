// Command pgcluster starts a throwaway PostgreSQL 15 cluster for the
// benchmark (internal/pgtest with fsync, full_page_writes and
// synchronous_commit on, as in production), creates the databases it is
// asked for, prints where they are, and runs until SIGINT or SIGTERM (or
// -max-lifetime), when it stops the cluster and removes its directory.
//
// Output, one line each, then nothing until it stops:
//
//	db NAME URL
//	setting NAME VALUE     (fsync, synchronous_commit, full_page_writes, ...)
//	postmaster_pid PID
//	ready
//
// The cluster listens on 127.0.0.1 only and trusts local connections: it
// must never hold anything but benchmark data.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payloom/payloom/internal/pgtest"
)

func main() {
	dbs := flag.String("databases", "payloom", "comma-separated databases to create")
	life := flag.Duration("max-lifetime", 2*time.Hour, "stop on its own after this long")
	flag.Parse()
	if err := run(strings.Split(*dbs, ","), *life); err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
}

func run(dbs []string, life time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := pgtest.StartClusterWith(pgtest.Options{Fsync: true})
	if err != nil {
		return err
	}
	defer c.Stop()
	for _, db := range dbs {
		if db = strings.TrimSpace(db); db == "" {
			continue
		}
		if err := c.CreateDatabase(ctx, db); err != nil {
			return err
		}
		fmt.Printf("db %s %s\n", db, c.URL(db))
	}
	if err := printSettings(ctx, c.URL("postgres")); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir(), "data", "postmaster.pid")); err == nil {
		pid, _, _ := strings.Cut(string(b), "\n")
		fmt.Printf("postmaster_pid %s\n", strings.TrimSpace(pid))
	}
	fmt.Println("ready")
	select {
	case <-ctx.Done():
	case <-time.After(life):
		fmt.Fprintln(os.Stderr, "pgcluster: -max-lifetime reached, stopping")
	}
	return nil
}

// printSettings prints the settings a durable commit depends on, as the
// running server reports them.
func printSettings(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes",
		"wal_sync_method", "shared_buffers", "max_connections"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
		fmt.Printf("setting %s %s\n", name, strings.ReplaceAll(v, " ", "_"))
	}
	return nil
}
