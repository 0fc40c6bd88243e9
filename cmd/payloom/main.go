// Command payloom is Payloom's one binary: the payment server (payloom
// serve), the operator commands that share its store (merchants, keys,
// migrate, version), and a tool for webhook receivers (webhooks verify).
//
// This is the only package that knows every other package: it reads the
// configuration (flags, then PAYLOOM_* environment variables, then
// defaults), opens the store, and wires the vault, the sandbox processor,
// the engine, the webhook dispatcher and service, and the HTTP API
// together. It holds no payment logic.
//
// It must never print or log a card number, a CVC, an API secret or a
// webhook signing secret, except that a newly created secret key is written
// once to stdout, where the operator asked for it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// The first SIGINT/SIGTERM cancels ctx (serve shuts down gracefully);
	// after that, signals get their default action again, so a second
	// Ctrl-C kills a shutdown that takes too long.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := NewMain().Run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "payloom:", err)
		os.Exit(1)
	}
}
