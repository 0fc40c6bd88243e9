// Command probe answers the benchmark's questions about durability:
//
//	probe sqlite FILE   the SQLite file's persistent settings (journal_mode,
//	                    page_size, ...) and the number of payments in it,
//	                    read through a read-only connection.
//	probe fsync DIR     how long this disk takes to make an 8 KiB append
//	                    durable (write + fdatasync), the floor under every
//	                    durable commit.
//
// Output is "name value" lines. probe never writes to a database; the fsync
// probe writes and removes one scratch file in DIR.
package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe sqlite FILE | probe fsync DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sqlite":
		err = probeSQLite(os.Stdout, os.Args[2])
	case "fsync":
		err = probeFsync(os.Stdout, os.Args[2], 200)
	default:
		err = fmt.Errorf("unknown probe %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// probeSQLite prints the settings a file carries. journal_mode=wal is
// stored in the file; synchronous is a per-connection setting that no file
// records, so it is not printed here (the script gets it from the sqlite
// package's own test of the server's connection).
func probeSQLite(w io.Writer, path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	q := url.Values{"mode": {"ro"}, "_query_only": {"on"}}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, p := range []string{"journal_mode", "page_size", "wal_autocheckpoint", "auto_vacuum"} {
		var v string
		if err := db.QueryRow("PRAGMA " + p).Scan(&v); err != nil {
			return fmt.Errorf("PRAGMA %s: %w", p, err)
		}
		fmt.Fprintf(w, "%s %s\n", p, v)
	}
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM payments").Scan(&n); err == nil {
		fmt.Fprintf(w, "payments %d\n", n)
	}
	return nil
}

// probeFsync appends n 8 KiB blocks to a scratch file, each followed by
// fdatasync, as a WAL commit does, and prints the latency distribution.
func probeFsync(w io.Writer, dir string, n int) error {
	f, err := os.CreateTemp(dir, "payloom-fsync-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 8<<10)
	for i := range block {
		block[i] = byte(i)
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			return err
		}
		if err := fdatasync(f); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, max(0, int(math.Ceil(p*float64(len(lat))))-1))]
	}
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) }
	fmt.Fprintf(w, "fsync_dir %s\n", filepath.Clean(dir))
	fmt.Fprintf(w, "fsync_samples %d\n", n)
	fmt.Fprintf(w, "fsync_mean_us %s\n", us(sum/time.Duration(n)))
	fmt.Fprintf(w, "fsync_p50_us %s\n", us(q(0.5)))
	fmt.Fprintf(w, "fsync_p99_us %s\n", us(q(0.99)))
	fmt.Fprintf(w, "fsync_max_us %s\n", us(lat[len(lat)-1]))
	return nil
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
