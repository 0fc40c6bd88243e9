package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/payloom/payloom"
)

// Main is the payloom program with its I/O and environment as fields, so
// that tests run it in-process exactly as the binary does.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the binary).
	Getenv func(string) string
	// Ready, if set, is called by serve once it listens, with the base URL
	// of the server (tests use it to learn the port).
	Ready func(url string)
}

// NewMain returns a Main bound to the process's stdout, stderr and
// environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Run runs the command named by args (without the program name). For serve
// it returns when ctx is done and the server has shut down.
func (m *Main) Run(ctx context.Context, args []string) error {
	cmd := m.rootCommand()
	cmd.SetArgs(args)
	if m.Stdin != nil {
		cmd.SetIn(m.Stdin)
	}
	cmd.SetOut(m.Stdout)
	cmd.SetErr(m.Stderr)
	return cmd.ExecuteContext(ctx)
}

// envBinding ties a flag to the environment variable that sets it when the
// flag is not given on the command line.
type envBinding struct{ flag, env string }

// globalOptions are the flags every command that opens the store shares.
type globalOptions struct {
	dataDir     string
	databaseURL string
	logLevel    levelFlag
}

func (m *Main) rootCommand() *cobra.Command {
	var g globalOptions
	root := &cobra.Command{
		Use:   "payloom",
		Short: "Payloom is a self-hosted payment server",
		Long: "Payloom is a self-hosted payment orchestration server: it tokenizes cards,\n" +
			"takes, captures, cancels and refunds payments idempotently, and keeps its\n" +
			"state in an embedded SQLite file (or PostgreSQL).",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags win over the environment, which wins over defaults.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return m.applyEnv(cmd)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data", "./payloom-data", "directory of the embedded store and the vault key file (env PAYLOOM_DATA)")
	pf.StringVar(&g.databaseURL, "database-url", "", "PostgreSQL URL; when set, the store is PostgreSQL instead of the embedded SQLite file (env PAYLOOM_DATABASE_URL)")
	pf.Var(&g.logLevel, "log-level", "log level: debug, info, warn or error (env PAYLOOM_LOG_LEVEL)")
	setEnvBindings(root, envBinding{"data", "PAYLOOM_DATA"}, envBinding{"database-url", "PAYLOOM_DATABASE_URL"},
		envBinding{"log-level", "PAYLOOM_LOG_LEVEL"})

	root.AddCommand(
		m.serveCommand(&g),
		m.merchantsCommand(&g),
		m.keysCommand(&g),
		m.vaultCommand(&g),
		m.auditCommand(&g),
		m.migrateCommand(&g),
		m.webhooksCommand(),
		m.versionCommand(),
		m.simulatorCommand(),
	)
	return root
}

const envBindingsAnnotation = "payloom_env"

// setEnvBindings records, on the command, which environment variable sets
// which of its flags; applyEnv reads them.
func setEnvBindings(cmd *cobra.Command, bs ...envBinding) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	var parts []string
	if prev := cmd.Annotations[envBindingsAnnotation]; prev != "" {
		parts = append(parts, prev)
	}
	for _, b := range bs {
		parts = append(parts, b.flag+"="+b.env)
	}
	cmd.Annotations[envBindingsAnnotation] = strings.Join(parts, ",")
}

// applyEnv sets every flag that was not given on the command line from its
// environment variable, on cmd and its parents. A malformed value is an
// error naming the variable.
func (m *Main) applyEnv(cmd *cobra.Command) error {
	for c := cmd; c != nil; c = c.Parent() {
		spec := c.Annotations[envBindingsAnnotation]
		if spec == "" {
			continue
		}
		for _, pair := range strings.Split(spec, ",") {
			name, env, _ := strings.Cut(pair, "=")
			f := cmd.Flags().Lookup(name)
			if f == nil || f.Changed {
				continue
			}
			v := m.getenv(env)
			if v == "" {
				continue
			}
			if err := cmd.Flags().Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	}
	return nil
}

func (m *Main) getenv(key string) string {
	if m.Getenv == nil {
		return ""
	}
	return m.Getenv(key)
}

// levelFlag is a log level as a flag value, checked when it is set (from
// the command line or the environment).
type levelFlag struct{ level slog.Level }

func (f *levelFlag) String() string { return strings.ToLower(f.level.String()) }
func (f *levelFlag) Type() string   { return "level" }

func (f *levelFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug":
		f.level = slog.LevelDebug
	case "info":
		f.level = slog.LevelInfo
	case "warn", "warning":
		f.level = slog.LevelWarn
	case "error":
		f.level = slog.LevelError
	default:
		return fmt.Errorf("invalid log level %q (want debug, info, warn or error)", s)
	}
	return nil
}

// newLogger returns the JSON logger on stderr at the configured level.
func (m *Main) newLogger(level levelFlag) *slog.Logger {
	return slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: level.level}))
}

func (m *Main) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(m.Stdout, "payloom", version)
			return err
		},
	}
}

func (m *Main) migrateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := m.newLogger(g.logLevel)
			st, err := openStore(cmd.Context(), g.dataDir, g.databaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Migrate(cmd.Context()); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			logger.InfoContext(cmd.Context(), "migrations applied", "store", st.kind)
			fmt.Fprintln(m.Stderr, "The schema is up to date.")
			return nil
		},
	}
}

func (m *Main) merchantsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merchants",
		Short: "Manage merchants",
	}
	var name string
	var minAmount, maxAmount int64
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create a merchant and print its id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := m.openAdmin(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.Close()
			mr := &payloom.Merchant{Name: name, MinAmount: minAmount, MaxAmount: maxAmount}
			if err := a.auth.CreateMerchant(cmd.Context(), mr); err != nil {
				return userError(err)
			}
			fmt.Fprintf(m.Stderr, "Created merchant %s (%s).\n", mr.ID, mr.Name)
			_, err = fmt.Fprintln(m.Stdout, mr.ID)
			return err
		},
	}
	create.Flags().StringVar(&name, "name", "", "the merchant's name (required)")
	create.Flags().Int64Var(&minAmount, "min-amount", 0, "smallest payment amount in minor units (default 1)")
	create.Flags().Int64Var(&maxAmount, "max-amount", 0, "largest payment amount in minor units (default 99999999)")
	_ = create.MarkFlagRequired("name")
	cmd.AddCommand(create)
	return cmd
}

func (m *Main) keysCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage secret API keys",
	}
	var merchantID, mode, permissions string
	var platform bool
	create := &cobra.Command{
		Use:   "create (--merchant mrch_... | --platform) --mode test|live [--permissions a,b]",
		Short: "Create a secret key and print it (shown once)",
		Long: "Create a secret key and print it on stdout. The key is shown only this once:\n" +
			"Payloom stores a hash of it. A --platform key may act for any merchant and\n" +
			"names the merchant in each request (merchant_id).\n\n" +
			"--permissions lists what the key may do, comma-separated: " + payloom.JoinPermissions(payloom.Permissions) + ".\n" +
			"\"default\" (the default) is every permission except raw_card_data and audit:read;\n" +
			"\"all\" is every permission, raw_card_data included.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var livemode bool
			switch mode {
			case "test":
			case "live":
				livemode = true
			default:
				return fmt.Errorf("--mode must be test or live, not %q", mode)
			}
			switch {
			case platform && merchantID != "":
				return errors.New("give either --merchant or --platform, not both")
			case !platform && merchantID == "":
				return errors.New("give --merchant mrch_... (or --platform for a platform key)")
			}
			perms, err := payloom.ParsePermissions(permissions)
			if err != nil {
				return fmt.Errorf("--permissions: %s", payloom.ErrorMessage(err))
			}
			a, err := m.openAdmin(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.Close()
			key, secret, err := a.auth.CreateAPIKey(cliActor(cmd.Context()), merchantID, livemode, perms...)
			if err != nil {
				return userError(err)
			}
			owner := "merchant " + key.MerchantID
			if key.Platform || key.MerchantID == "" {
				owner = "the platform"
			}
			fmt.Fprintf(m.Stderr, "Created %s-mode key %s for %s with permissions %s. The secret is shown once; store it now.\n",
				mode, key.ID, owner, payloom.JoinPermissions(key.Permissions))
			_, err = fmt.Fprintln(m.Stdout, secret.Reveal())
			return err
		},
	}
	create.Flags().StringVar(&merchantID, "merchant", "", "the merchant the key belongs to (mrch_...)")
	create.Flags().BoolVar(&platform, "platform", false, "make a platform key that may act for any merchant")
	create.Flags().StringVar(&mode, "mode", "", "test or live (required)")
	create.Flags().StringVar(&permissions, "permissions", "default", "comma-separated permissions, \"default\" or \"all\"")
	_ = create.MarkFlagRequired("mode")

	revoke := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key; requests with it fail from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := m.openAdmin(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.auth.RevokeAPIKey(cliActor(cmd.Context()), args[0]); err != nil {
				return userError(err)
			}
			fmt.Fprintf(m.Stderr, "Revoked key %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, revoke)
	return cmd
}

// cliActor marks what an operator command does as done by "cli" from
// "cli" in the audit log.
func cliActor(ctx context.Context) context.Context {
	return payloom.WithActor(ctx, payloom.Actor{ID: payloom.AuditActorCLI, Source: payloom.AuditSourceCLI})
}

// auditPageSize is how many events `audit list` reads per query (the
// store's largest page); a variable so that tests can page through few.
var auditPageSize = 100

func (m *Main) auditCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log",
	}
	var merchantID, action string
	var limit int
	list := &cobra.Command{
		Use:   "list [--merchant mrch_...] [--action NAME] [--limit N]",
		Short: "Print audit events, newest first, one JSON object per line",
		Long: "Print audit events (key created or revoked, vault rotation and retirement, raw card\n" +
			"data received, permission denied), newest first, one JSON object per line.\n" +
			"--merchant \"\" is not a filter; use --merchant none for events that concern no\n" +
			"merchant (vault rotations).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return errors.New("--limit must be from 1 to 1000")
			}
			f := payloom.AuditFilter{}
			switch {
			case merchantID == "none":
				f.MerchantID = new(string)
			case merchantID != "":
				if !payloom.HasPrefix(merchantID, payloom.PrefixMerchant) {
					return fmt.Errorf("--merchant must be a merchant ID (mrch_...) or none")
				}
				f.MerchantID = &merchantID
			}
			if action != "" {
				a := payloom.AuditAction(action)
				f.Action = &a
			}
			a, err := m.openAdmin(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.Close()
			enc := json.NewEncoder(m.Stdout)
			enc.SetEscapeHTML(false)
			// Pages of at most auditPageSize, following the cursor.
			for left := limit; left > 0; {
				f.Limit = min(left, auditPageSize)
				page, err := a.audit.ListAuditEvents(cmd.Context(), f)
				if err != nil {
					return userError(err)
				}
				for _, ev := range page.Data {
					if err := enc.Encode(ev); err != nil {
						return err
					}
				}
				left -= len(page.Data)
				if !page.HasMore || len(page.Data) == 0 {
					break
				}
				f.StartingAfter = page.Data[len(page.Data)-1].ID
			}
			return nil
		},
	}
	list.Flags().StringVar(&merchantID, "merchant", "", "only this merchant's events (mrch_...), or none")
	list.Flags().StringVar(&action, "action", "", "only events of this action (api_key.created ...)")
	list.Flags().IntVar(&limit, "limit", 100, "print at most this many events (1 to 1000)")
	cmd.AddCommand(list)
	return cmd
}

// userError turns an application error into its client-safe text (with the
// parameter) and leaves other errors whole: the operator sees them.
func userError(err error) error {
	var e *payloom.Error
	if errors.As(err, &e) {
		if e.Param != "" {
			return fmt.Errorf("%s (%s)", e.Message, e.Param)
		}
		return errors.New(e.Message)
	}
	return err
}
