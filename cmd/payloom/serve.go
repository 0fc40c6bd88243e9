package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/accounts"
	"github.com/payloom/payloom/api"
	"github.com/payloom/payloom/api/hpp"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/processor/sandbox"
	"github.com/payloom/payloom/vault"
	"github.com/payloom/payloom/webhook"
)

// serveConfig is the server's configuration after flags and environment.
type serveConfig struct {
	Addr           string
	DataDir        string
	DatabaseURL    string
	LockTimeout    time.Duration
	IdempotencyTTL time.Duration
	SandboxLatency time.Duration
	// CrashAfter is a test hook: when the engine reports this phase, the
	// process SIGKILLs itself (PAYLOOM_FAULT_CRASH_AFTER).
	CrashAfter string
	// ShutdownTimeout bounds how long in-flight requests may run after a
	// shutdown signal.
	ShutdownTimeout time.Duration

	// Webhook delivery tuning (tests shorten them): the retry schedule
	// (nil: webhook.DefaultSchedule), the delivery lease (0: the package
	// default) and the dispatcher's poll interval.
	WebhookSchedule     scheduleFlag
	WebhookLease        time.Duration
	WebhookPollInterval time.Duration

	// PublicURL is where shoppers reach the server (payment_url,
	// receipt_url, 3-D Secure); empty means http://{the address it
	// listens on}. ExpiryInterval paces the job that expires unpaid
	// payments.
	PublicURL      string
	ExpiryInterval time.Duration

	// TestRoute routes test-mode payments over several processors with
	// fallback (see parseTestRoute); MaxAttempts bounds a payment's
	// attempts across them (per confirmation of a hosted-page payment),
	// MaxPaymentAttempts all the attempts of one payment.
	TestRoute          string
	MaxAttempts        int
	MaxPaymentAttempts int
	// LookupGrace is how old an unanswered attempt must be before its
	// processor's "not found" fails it; LateCheckInterval and
	// LateCheckWindow pace and bound the watch for late authorizations
	// on such attempts (engine.Config).
	LookupGrace       time.Duration
	LateCheckInterval time.Duration
	LateCheckWindow   time.Duration
	// PprofAddr, if set, serves net/http/pprof on its own listener; it
	// must be a loopback address (profiles reveal internals, and a CPU
	// profile costs CPU).
	PprofAddr string
}

// faultPhases are the phases the engine reports to its FaultHook, in the
// order a request reaches them.
var faultPhases = []string{
	engine.PhasePaymentCreated, engine.PhaseProcessorCalled, engine.PhasePaymentRecorded,
	engine.PhaseActionClaimed, engine.PhaseActionCalled, engine.PhaseActionRecorded,
	engine.PhaseRefundCreated, engine.PhaseRefundCalled, engine.PhaseRefundRecorded,
	engine.PhasePaymentConfirmed, engine.PhaseAuthenticationRecorded,
	engine.PhaseLateReversalClaimed, engine.PhaseLateReversalCalled, engine.PhaseLateReversalRecorded,
}

func (m *Main) serveCommand(g *globalOptions) *cobra.Command {
	cfg := serveConfig{ShutdownTimeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the payment server",
		Long: "Run the payment server. On an empty store it creates a merchant and a test-mode\n" +
			"secret key and prints both once. SIGINT or SIGTERM shut it down gracefully:\n" +
			"in-flight requests finish (for at most 30s), then the store is closed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.DataDir, cfg.DatabaseURL = g.dataDir, g.databaseURL
			cfg.CrashAfter = m.getenv("PAYLOOM_FAULT_CRASH_AFTER")
			return m.serve(cmd.Context(), cfg, m.newLogger(g.logLevel))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on (env PAYLOOM_ADDR)")
	f.DurationVar(&cfg.LockTimeout, "idempotency-lock-timeout", 30*time.Second,
		"how long a request holds its Idempotency-Key before a retry may take it over (env PAYLOOM_IDEMPOTENCY_LOCK_TIMEOUT)")
	f.DurationVar(&cfg.IdempotencyTTL, "idempotency-ttl", 24*time.Hour,
		"how long idempotency keys and their responses are kept (env PAYLOOM_IDEMPOTENCY_TTL)")
	f.DurationVar(&cfg.SandboxLatency, "sandbox-latency", 0,
		"delay the sandbox processor adds to every call (env PAYLOOM_SANDBOX_LATENCY)")
	f.Var(&cfg.WebhookSchedule, "webhook-retry-schedule",
		"webhook retry schedule: comma-separated Go durations, the first being the delay before the first try "+
			"(default "+formatSchedule(webhook.DefaultSchedule)+"; env PAYLOOM_WEBHOOK_RETRY_SCHEDULE)")
	f.DurationVar(&cfg.WebhookLease, "webhook-lease", 0,
		"how long a node reserves a webhook delivery it is sending; a dead node's deliveries resume after it "+
			"(default 2x the 15s request timeout + 30s; env PAYLOOM_WEBHOOK_LEASE)")
	f.DurationVar(&cfg.WebhookPollInterval, "webhook-poll-interval", webhook.DefaultPollInterval,
		"how often the webhook dispatcher looks for new events and due retries (env PAYLOOM_WEBHOOK_POLL_INTERVAL)")
	f.StringVar(&cfg.PublicURL, "public-url", "",
		"the URL shoppers reach this server at, for payment pages, receipts and 3-D Secure, e.g. https://pay.example.com "+
			"(default http://{the listening address}; env PAYLOOM_PUBLIC_URL)")
	f.DurationVar(&cfg.ExpiryInterval, "expiry-interval", engine.DefaultExpiryInterval,
		"how often unpaid payments past their expires_at are expired (env PAYLOOM_EXPIRY_INTERVAL)")
	f.StringVar(&cfg.TestRoute, "test-route", "",
		"test-mode processors to route payments to, in fallback order: comma-separated \"sandbox\" or "+
			"name=http://host:port of a `payloom simulator` (default: the sandbox alone; env PAYLOOM_TEST_ROUTE)")
	f.IntVar(&cfg.MaxAttempts, "max-attempts", engine.DefaultMaxAttempts,
		"most processor attempts of one payment when a route falls back (env PAYLOOM_MAX_ATTEMPTS)")
	f.IntVar(&cfg.MaxPaymentAttempts, "max-payment-attempts", engine.DefaultMaxPaymentAttempts,
		"most processor attempts of one payment in all, across the confirmations of its payment page "+
			"(env PAYLOOM_MAX_PAYMENT_ATTEMPTS)")
	f.DurationVar(&cfg.LookupGrace, "lookup-grace", engine.DefaultLookupGrace,
		"how old an unanswered payment attempt must be before the processor's \"not found\" fails it "+
			"(younger, it is sent again under the same key; older, it is only looked up until the grace, the processor "+
			"timeout and the processor's lookup lag have passed; env PAYLOOM_LOOKUP_GRACE)")
	f.DurationVar(&cfg.LateCheckInterval, "late-check-interval", engine.DefaultLateCheckInterval,
		"how often attempts failed after an unknown outcome are checked for a late authorization to void "+
			"(env PAYLOOM_LATE_CHECK_INTERVAL)")
	f.DurationVar(&cfg.LateCheckWindow, "late-check-window", engine.DefaultLateCheckWindow,
		"how long after failing such an attempt is checked (env PAYLOOM_LATE_CHECK_WINDOW)")
	f.StringVar(&cfg.PprofAddr, "pprof-addr", "",
		"serve Go's profiler (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; off by default (env PAYLOOM_PPROF_ADDR)")
	setEnvBindings(cmd,
		envBinding{"test-route", "PAYLOOM_TEST_ROUTE"},
		envBinding{"max-attempts", "PAYLOOM_MAX_ATTEMPTS"},
		envBinding{"max-payment-attempts", "PAYLOOM_MAX_PAYMENT_ATTEMPTS"},
		envBinding{"addr", "PAYLOOM_ADDR"},
		envBinding{"pprof-addr", "PAYLOOM_PPROF_ADDR"},
		envBinding{"idempotency-lock-timeout", "PAYLOOM_IDEMPOTENCY_LOCK_TIMEOUT"},
		envBinding{"idempotency-ttl", "PAYLOOM_IDEMPOTENCY_TTL"},
		envBinding{"sandbox-latency", "PAYLOOM_SANDBOX_LATENCY"},
		envBinding{"webhook-retry-schedule", "PAYLOOM_WEBHOOK_RETRY_SCHEDULE"},
		envBinding{"webhook-lease", "PAYLOOM_WEBHOOK_LEASE"},
		envBinding{"webhook-poll-interval", "PAYLOOM_WEBHOOK_POLL_INTERVAL"},
		envBinding{"public-url", "PAYLOOM_PUBLIC_URL"},
		envBinding{"expiry-interval", "PAYLOOM_EXPIRY_INTERVAL"},
		envBinding{"lookup-grace", "PAYLOOM_LOOKUP_GRACE"},
		envBinding{"late-check-interval", "PAYLOOM_LATE_CHECK_INTERVAL"},
		envBinding{"late-check-window", "PAYLOOM_LATE_CHECK_WINDOW"},
	)
	return cmd
}

// serve runs the server until ctx is done, then shuts it down gracefully.
func (m *Main) serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	if cfg.LockTimeout <= 0 {
		return errors.New("--idempotency-lock-timeout must be positive")
	}
	if cfg.IdempotencyTTL <= cfg.LockTimeout {
		return errors.New("--idempotency-ttl must be longer than --idempotency-lock-timeout")
	}
	if cfg.SandboxLatency < 0 {
		return errors.New("--sandbox-latency must not be negative")
	}
	if cfg.WebhookLease < 0 {
		return errors.New("--webhook-lease (PAYLOOM_WEBHOOK_LEASE) must not be negative")
	}
	if cfg.WebhookPollInterval <= 0 {
		return errors.New("--webhook-poll-interval (PAYLOOM_WEBHOOK_POLL_INTERVAL) must be positive")
	}
	if cfg.ExpiryInterval <= 0 {
		return errors.New("--expiry-interval (PAYLOOM_EXPIRY_INTERVAL) must be positive")
	}
	if cfg.LookupGrace <= 0 {
		return errors.New("--lookup-grace (PAYLOOM_LOOKUP_GRACE) must be positive")
	}
	if least := engine.MinLookupGrace(cfg.LockTimeout, cfg.MaxAttempts); cfg.LookupGrace < least {
		return fmt.Errorf("--lookup-grace (PAYLOOM_LOOKUP_GRACE) must be at least %s with this lock timeout and --max-attempts: "+
			"a shorter grace fails payments a crashed node committed before another node resends them", least)
	}
	if cfg.LateCheckInterval <= 0 {
		return errors.New("--late-check-interval (PAYLOOM_LATE_CHECK_INTERVAL) must be positive")
	}
	if cfg.LateCheckWindow <= 0 {
		return errors.New("--late-check-window (PAYLOOM_LATE_CHECK_WINDOW) must be positive")
	}
	if cfg.PprofAddr != "" {
		if err := checkLoopback(cfg.PprofAddr); err != nil {
			return fmt.Errorf("--pprof-addr (PAYLOOM_PPROF_ADDR): %w", err)
		}
	}
	if err := checkPublicURL(cfg.PublicURL); err != nil {
		return err
	}
	tuneGC(logger)
	if cfg.CrashAfter != "" && !slices.Contains(faultPhases, cfg.CrashAfter) {
		return fmt.Errorf("PAYLOOM_FAULT_CRASH_AFTER=%q is not a phase (want one of %s)",
			cfg.CrashAfter, strings.Join(faultPhases, ", "))
	}

	st, err := openStore(ctx, cfg.DataDir, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(cfg.DataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// An existing directory is the operator's; say so rather than
		// change its mode behind their back.
		logger.Warn("the data directory is accessible to other users; it holds the store and the vault key (chmod 700 it)",
			"dir", cfg.DataDir, "mode", fi.Mode().Perm().String())
	}
	// The store is closed last, after every request and background job
	// that could use it has stopped.
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	logDurability(ctx, st, logger)

	keys, err := vault.LoadKeyring(cfg.DataDir, m.getenv)
	if err != nil {
		return fmt.Errorf("load vault keys: %w", err)
	}
	v := vault.New(st, keys, vault.Options{Logger: logger})
	sb := sandbox.New(st, sandbox.Options{Latency: cfg.SandboxLatency})

	testRoute, err := parseTestRoute(cfg.TestRoute, sb, engine.DefaultProcessorTimeout)
	if err != nil {
		return err
	}
	if testRoute != nil {
		logger.Info("test-mode payments of merchants without processor accounts are routed", "route", cfg.TestRoute,
			"max_attempts", cfg.MaxAttempts)
	}

	var faultHook func(string)
	if cfg.CrashAfter != "" {
		logger.Warn("fault injection enabled: the process kills itself after this phase (test hook)",
			"phase", cfg.CrashAfter, "known_phases", faultPhases)
		faultHook = crashAfter(cfg.CrashAfter, logger)
	}
	// Listen before the engine exists: the default public URL is the
	// address the kernel gave (with --addr host:0, the port it chose).
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String()
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	if publicURL == "" {
		publicURL = defaultPublicURL(ln.Addr())
	}
	// Payments are routed over each merchant's processor accounts and
	// routing rules; a merchant without accounts keeps the default route
	// (the sandbox or --test-route in test mode, none in live mode).
	router := accounts.New(st, v, connectorFactory(engine.DefaultProcessorTimeout, publicURL), accounts.Options{
		Sandbox: sb, TestRoute: testRoute, Logger: logger,
	})
	eng := engine.New(engine.Config{
		Store:          st,
		Vault:          v,
		Processor:      processorFor(sb),
		Logger:         logger,
		LockTimeout:    cfg.LockTimeout,
		IdempotencyTTL: cfg.IdempotencyTTL,
		FaultHook:      faultHook,
		PublicURL:      publicURL,
		ExpiryInterval: cfg.ExpiryInterval,
		Router:         router,
		MaxAttempts:    cfg.MaxAttempts,
		// Bounds every payment's attempts, routed or not.
		MaxPaymentAttempts: cfg.MaxPaymentAttempts,

		LookupGrace:       cfg.LookupGrace,
		LateCheckInterval: cfg.LateCheckInterval,
		LateCheckWindow:   cfg.LateCheckWindow,
	})
	router.SetHealth(eng.ProcessorHealth)
	// The dispatcher and the service share one configuration: the
	// service checks URLs with the same policy the dispatcher's dialer
	// enforces. The live-mode address guard is never relaxed here.
	whOpts := webhook.Options{
		Schedule:     cfg.WebhookSchedule.schedule,
		Lease:        cfg.WebhookLease,
		PollInterval: cfg.WebhookPollInterval,
		Logger:       logger,
	}
	if cfg.WebhookLease > 0 && cfg.WebhookLease < webhook.DefaultTimeout {
		logger.Warn("the webhook lease is shorter than the webhook request timeout: a slow receiver may get "+
			"a delivery twice (receivers deduplicate on webhook-id)",
			"lease", cfg.WebhookLease.String(), "timeout", webhook.DefaultTimeout.String())
	}
	dispatcher := webhook.NewDispatcher(st, whOpts)
	apiHandler := api.New(api.Config{
		Payments:    eng,
		Idempotency: eng,
		Auth:        eng,
		Checkout:    eng,
		Vault:       v,
		Webhooks:    webhook.NewService(st, whOpts),
		Customers:   eng,
		Audit:       eng,
		Processors:  router,
		Notify:      dispatcher.Notify,
		Logger:      logger,
		// Ready: the store answers and has every migration this binary
		// needs.
		Ready: func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return err
			}
			current, err := st.MigrationsCurrent(ctx)
			if err != nil {
				return err
			}
			if !current {
				return errors.New("the store lacks migrations this binary needs")
			}
			return nil
		},
	})

	handler := routes(apiHandler, hpp.New(hpp.Config{
		Checkout: eng, Auth: eng, Vault: v, PublicURL: publicURL, Logger: logger,
		SavedCards: savedCards(eng), MaxPaymentAttempts: cfg.MaxPaymentAttempts,
	}), sb.ChallengeHandler(logger))

	if err := bootstrap(ctx, eng, m.Stdout, url, logger); err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// A payment may wait on the processor; WriteTimeout bounds the
		// whole request, so it is generous.
		WriteTimeout:   120 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Request contexts deliberately do not derive from ctx: a shutdown
		// lets in-flight requests finish instead of cancelling them.
	}

	// Background work runs on every node: the engine's loops, and the
	// webhook dispatcher (fan-out takes each event once and deliveries are
	// leased one by one, so any number of nodes may share a store).
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		eng.RunBackground(bgCtx)
	}()
	go func() {
		defer wg.Done()
		// On shutdown, requests in flight are abandoned and their
		// deliveries released for the next start (or another node).
		dispatcher.Run(bgCtx)
	}()
	defer func() {
		stopBackground()
		wg.Wait()
	}()

	if cfg.PprofAddr != "" {
		_, stopPprof, err := startPprof(cfg.PprofAddr, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopPprof()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	logger.Info("listening", "addr", ln.Addr().String(), "public_url", publicURL, "store", st.kind, "version", version)
	fmt.Fprintf(m.Stdout, "payloom listening on %s\n", url)
	if m.Ready != nil {
		m.Ready(url)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		// Requests still running are cut off; each write is a sequence of
		// committed phases, so a retry with the same key resumes it.
		logger.Warn("shutdown timed out; closing remaining connections", "err", err)
		srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
	}
	stopBackground()
	wg.Wait()
	logger.Info("shutdown complete")
	return nil
}

// processorFor routes test-mode payments to the sandbox. No live processor
// exists yet: live mode answers that none is configured.
func processorFor(sb payloom.Processor) func(payloom.Scope) (payloom.Processor, error) {
	return func(scope payloom.Scope) (payloom.Processor, error) {
		if !scope.Livemode {
			return sb, nil
		}
		return nil, payloom.Errorf(payloom.CodeInvalidState, "no live-mode processor is configured")
	}
}

// crashAfter returns the engine fault hook that SIGKILLs the process when
// the named phase completes: the crash test uses it to stop the process
// between two committed phases, as a power cut would.
func crashAfter(phase string, logger *slog.Logger) func(string) {
	return func(p string) {
		if p != phase {
			return
		}
		logger.Warn("fault injection: killing the process", "phase", p)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never return into the engine
	}
}

// bootstrap creates, on a store without merchants, a default merchant and a
// test-mode key, and prints both to out. It runs once per store: the next
// start finds a merchant and prints nothing.
func bootstrap(ctx context.Context, auth payloom.AuthService, out io.Writer, url string, logger *slog.Logger) error {
	mr := &payloom.Merchant{Name: "Default merchant"}
	key, secret, created, err := auth.Bootstrap(ctx, mr)
	if err != nil {
		return fmt.Errorf("create default merchant and key: %w", err)
	}
	if !created {
		return nil
	}
	logger.Info("created default merchant and test-mode key", "merchant_id", mr.ID, "key_id", key.ID)
	printBox(out, []string{
		"Payloom created a merchant and a test-mode secret key.",
		"The key is shown only this once: store it now.",
		"",
		"  Merchant ID:  " + mr.ID,
		"  Secret key:   " + secret.Reveal(),
		"",
		"Try it:",
		"  curl " + url + "/v1/payments \\",
		"    -H 'Authorization: Bearer " + secret.Reveal() + "'",
	})
	return nil
}

// printBox writes lines inside an ASCII frame.
func printBox(out io.Writer, lines []string) {
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	border := "+" + strings.Repeat("-", width+2) + "+"
	fmt.Fprintln(out, border)
	for _, l := range lines {
		fmt.Fprintf(out, "| %s%s |\n", l, strings.Repeat(" ", width-len(l)))
	}
	fmt.Fprintln(out, border)
}

// savedCards lists, for the hosted page, the cards a payment's customer
// saved: their summaries with the vault token each one charges.
func savedCards(cs payloom.CustomerService) hpp.SavedCardsFunc {
	return func(ctx context.Context, scope payloom.Scope, customerID string) ([]payloom.CardSummary, error) {
		if !payloom.HasPrefix(customerID, payloom.PrefixCustomer) {
			return nil, nil // a free-text customer reference has no saved cards
		}
		list, err := cs.ListPaymentMethods(ctx, scope, customerID, payloom.ListParams{Limit: 100})
		if payloom.IsCode(err, payloom.CodeNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var out []payloom.CardSummary
		for _, pm := range list.Data {
			if pm.Card == nil || pm.CardToken == "" {
				continue
			}
			c := *pm.Card
			c.Token = pm.CardToken
			out = append(out, c)
		}
		return out, nil
	}
}

// gcPercent is the server's default GOGC. A payment request allocates a few
// hundred short-lived objects and the live heap is small (tens of MB), so
// the default of 100 spends a tenth of the CPU collecting. 400 trades some
// tens of MB of RSS for that CPU (bench/run: peak RSS stays far below the
// 150 MB goal). An operator's GOGC or GOMEMLIMIT in the environment wins.
const gcPercent = 400

func tuneGC(logger *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	logger.Debug("garbage collector tuned", "gogc", gcPercent)
}
