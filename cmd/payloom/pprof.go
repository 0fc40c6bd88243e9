package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkLoopback accepts only a host:port whose host is a loopback IP or
// "localhost": the profiler shows goroutine stacks and heap contents and
// must never be reachable from another machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (use e.g. 127.0.0.1:6060)", addr)
	}
	return nil
}

// startPprof serves net/http/pprof on addr (checked with checkLoopback), on
// its own listener and mux: nothing of it is reachable through the API's
// address. It returns the address it listens on and a func that stops it.
func startPprof(addr string, logger *slog.Logger) (bound string, stop func(), err error) {
	if err := checkLoopback(addr); err != nil {
		return "", nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof listen: %w", err)
	}
	// "localhost" may resolve to a non-loopback address on a strange
	// host: check what was actually bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return "", nil, fmt.Errorf("--pprof-addr: %s is not a loopback address", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server", "err", err)
		}
	}()
	logger.Warn("profiler enabled (net/http/pprof)", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// logDurability logs the store's effective durability settings at start
// (SQLite: journal_mode and synchronous read back from the write
// connection), so that an operator can see what a 200 rests on.
func logDurability(ctx context.Context, st *store, logger *slog.Logger) {
	d, ok := st.migrator.(interface {
		Durability(context.Context) (string, string, error)
	})
	if !ok {
		return
	}
	jm, sync, err := d.Durability(ctx)
	if err != nil {
		logger.Error("read store durability settings", "err", err)
		return
	}
	level := slog.LevelInfo
	if jm != "wal" || (sync != "full" && sync != "extra") {
		level = slog.LevelWarn
	}
	logger.Log(ctx, level, "store durability", "store", st.kind, "journal_mode", jm, "synchronous", sync)
}
