// Command probe answers the benchmark's questions about durability:
//
//	probe sqlite FILE   the SQLite file's persistent settings (journal_mode,
//	                    page_size, ...) and the number of payments in it,
//	                    read through a read-only connection.
//	probe fsync DIR     how long this disk takes to make an 8 KiB append
//	                    durable (write + fdatasync), the floor under every
//	                    durable commit.
//	probe log DIR       the most payments per second any durable write path
//	                    could take on this machine: a bare append-only log
//	                    (no index, no SQL) written as Payloom writes a
//	                    payment, see probeLog.
//	probe pg URL        the same on PostgreSQL: a payment's three durable
//	                    writes as three single-INSERT commits, see probePG.
//
// Output is "name value" lines. The sqlite probe only reads; the fsync and
// log probes write and remove one scratch file in DIR; the pg probe
// creates, fills and drops one table in the database at URL. The log and
// pg probes write random bytes: PostgreSQL would compress zeros.
package main

import (
	"context"
	"crypto/rand"
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

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/mattn/go-sqlite3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe sqlite FILE | probe fsync DIR | probe log DIR | probe pg URL")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sqlite":
		err = probeSQLite(os.Stdout, os.Args[2])
	case "fsync":
		err = probeFsync(os.Stdout, os.Args[2], 200)
	case "log":
		err = probeLog(os.Stdout, os.Args[2], 32, 5*time.Second)
	case "pg":
		err = probePG(os.Stdout, os.Args[2], 32, 5*time.Second)
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

// logWrites are the sizes of a card payment's three durable writes in
// Payloom, each waited for before the next: payment_created (the payment,
// its attempt, its first event, the key's claim), the processor's ledger,
// payment_recorded (the payment and attempt again, two events, the stored
// response).
var logWrites = []int{1600, 400, 4600}

// probeLog measures the floor of a durable write path on this machine:
// users goroutines create payments for d, each as the three appends of
// logWrites, waiting for each to be durable; one writer goroutine appends
// whatever is queued as one write and one fdatasync (group commit, as
// Payloom's SQLite store does), with no index, no SQL and no HTTP. Its
// payments/s bound what any store could do here with those writes; its
// CPU µs per payment is what they cost at the least.
func probeLog(w io.Writer, dir string, users int, d time.Duration) error {
	f, err := os.CreateTemp(dir, "payloom-log-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	type write struct {
		b    []byte
		done chan error
	}
	queue := make(chan *write, 4*users)
	bodies := map[int][]byte{}
	for _, n := range logWrites {
		bodies[n] = randomBytes(n)
	}
	var groups int64
	go func() {
		buf := make([]byte, 0, 1<<20)
		var batch []*write
		for wr := range queue {
			batch = append(batch[:0], wr)
		drain:
			for {
				select {
				case more, ok := <-queue:
					if !ok {
						break drain
					}
					batch = append(batch, more)
				default:
					break drain
				}
			}
			buf = buf[:0]
			for _, b := range batch {
				buf = append(buf, b.b...)
			}
			_, err := f.Write(buf)
			if err == nil {
				err = fdatasync(f)
			}
			groups++
			for _, b := range batch {
				b.done <- err
			}
		}
	}()
	payments, elapsed, cpuUS, err := drive(users, d, func() error {
		for _, n := range logWrites {
			wr := &write{b: bodies[n], done: make(chan error, 1)}
			queue <- wr
			if err := <-wr.done; err != nil {
				return err
			}
		}
		return nil
	})
	close(queue)
	if err != nil {
		return fmt.Errorf("log probe: %w", err)
	}
	fmt.Fprintf(w, "log_users %d\n", users)
	fmt.Fprintf(w, "log_payments_per_s %.0f\n", float64(payments)/elapsed.Seconds())
	fmt.Fprintf(w, "log_cpu_us_per_payment %.1f\n", cpuUS/float64(payments))
	fmt.Fprintf(w, "log_writes_per_group %.1f\n", float64(payments)*float64(len(logWrites))/float64(groups))
	return nil
}

// probePG is probeLog on PostgreSQL: users goroutines create payments for
// d, each as three commits of one INSERT of logWrites' sizes into a table
// with a bigserial key, one after the other, on a pool of users
// connections. No other index, no foreign key, no read: the least a
// payment's three durable writes cost there. The server's commit settings
// are the database's (bench/run's cluster: fsync and synchronous_commit on).
func probePG(w io.Writer, url string, users int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return errors.New("pg probe: invalid database URL")
	}
	cfg.MaxConns = int32(users)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pg probe: %w", err)
	}
	defer pool.Close()
	const table = "payloom_log_probe"
	// A table left by a killed run is replaced.
	if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+table+"; CREATE TABLE "+table+
		" (id bigserial PRIMARY KEY, body bytea NOT NULL)"); err != nil {
		return fmt.Errorf("pg probe: %w", err)
	}
	defer pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
	bodies := make([][]byte, len(logWrites))
	for i, n := range logWrites {
		bodies[i] = randomBytes(n)
	}
	payments, elapsed, cpuUS, err := drive(users, d, func() error {
		for _, b := range bodies {
			if _, err := pool.Exec(ctx, "INSERT INTO "+table+" (body) VALUES ($1)", b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pg probe: %w", err)
	}
	fmt.Fprintf(w, "pg_log_users %d\n", users)
	fmt.Fprintf(w, "pg_log_payments_per_s %.0f\n", float64(payments)/elapsed.Seconds())
	fmt.Fprintf(w, "pg_log_client_cpu_us_per_payment %.1f\n", cpuUS/float64(payments))
	return nil
}

// drive runs users goroutines that call pay, one payment each, until d has
// passed, and returns the payments made, the time it took and the process's
// CPU time over it in µs. An error of pay stops its goroutine and is
// returned; so is a run without any payment.
func drive(users int, d time.Duration, pay func() error) (payments int64, elapsed time.Duration, cpuUS float64, err error) {
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	stop := start.Add(d)
	counts := make([]int64, users)
	errs := make(chan error, users)
	for u := range users {
		go func() {
			var err error
			for err == nil && time.Now().Before(stop) {
				if err = pay(); err == nil {
					counts[u]++
				}
			}
			errs <- err
		}()
	}
	for range users {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	elapsed = time.Since(start)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		return 0, 0, 0, err
	}
	for _, c := range counts {
		payments += c
	}
	if payments == 0 {
		return 0, 0, 0, errors.New("no payment completed")
	}
	cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
	return payments, elapsed, float64(cpu) / 1e3, nil
}

// randomBytes returns n random bytes: a body no layer can compress.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
