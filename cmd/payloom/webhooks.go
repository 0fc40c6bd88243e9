package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payloom/payloom/webhook"
)

// scheduleFlag is a webhook retry schedule as a flag value, parsed when it
// is set (from the command line or PAYLOOM_WEBHOOK_RETRY_SCHEDULE), so that
// a bad value stops the start with an error naming the flag or variable.
type scheduleFlag struct {
	text     string
	schedule []time.Duration // nil: the package default
}

func (f *scheduleFlag) String() string { return f.text }
func (f *scheduleFlag) Type() string   { return "durations" }

func (f *scheduleFlag) Set(s string) error {
	d, err := webhook.ParseSchedule(s)
	if err != nil {
		return err
	}
	f.text, f.schedule = s, d
	return nil
}

// formatSchedule renders a schedule as ParseSchedule reads it.
func formatSchedule(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (m *Main) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Tools for webhook receivers",
	}
	var secret, file string
	var tolerance time.Duration
	verify := &cobra.Command{
		Use:   "verify --secret whsec_... --file DELIVERY",
		Short: "Check the signature of a saved webhook delivery",
		Long: "Check a saved webhook delivery against an endpoint's signing secret, with the\n" +
			"rules receivers apply (Standard Webhooks): one v1 signature in webhook-signature\n" +
			"must be the HMAC-SHA256 of id.timestamp.body under the secret, and\n" +
			"webhook-timestamp must be within --tolerance of now. Prints \"valid\" and exits 0,\n" +
			"or exits 1 with the reason.\n\n" +
			"The file (\"-\" for stdin) is either JSON,\n" +
			"  {\"headers\": {\"webhook-id\": \"...\", \"webhook-timestamp\": \"...\",\n" +
			"               \"webhook-signature\": \"...\"}, \"body\": \"<the raw body as a JSON string>\"}\n" +
			"or the raw HTTP request as received (request line, headers, blank line, body).\n" +
			"The secret may also come from PAYLOOM_WEBHOOK_SECRET, which keeps it out of\n" +
			"the shell history and the process list.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if secret == "" {
				return errors.New("give the endpoint's signing secret with --secret whsec_... (or PAYLOOM_WEBHOOK_SECRET)")
			}
			if file == "" {
				return errors.New("give the saved delivery with --file PATH (- for stdin)")
			}
			if tolerance <= 0 {
				return errors.New("--tolerance must be positive")
			}
			if err := verifyDelivery(cmd.InOrStdin(), secret, file, tolerance); err != nil {
				// The errors name what failed, never the secret.
				return fmt.Errorf("invalid delivery: %w", err)
			}
			_, err := fmt.Fprintln(m.Stdout, "valid")
			return err
		},
	}
	f := verify.Flags()
	f.StringVar(&secret, "secret", "", "the endpoint's signing secret, whsec_... (env PAYLOOM_WEBHOOK_SECRET)")
	f.StringVar(&file, "file", "", "the saved delivery: JSON {headers, body} or a raw HTTP request; - reads stdin")
	f.DurationVar(&tolerance, "tolerance", webhook.DefaultTolerance, "how far webhook-timestamp may be from now, either way")
	setEnvBindings(verify, envBinding{"secret", "PAYLOOM_WEBHOOK_SECRET"})
	cmd.AddCommand(verify)
	return cmd
}

// verifyDelivery checks the saved delivery at path ("-": stdin).
func verifyDelivery(stdin io.Reader, secret, path string, tolerance time.Duration) error {
	if path != "-" {
		return webhook.VerifyFile(secret, path, tolerance)
	}
	h, body, err := webhook.ReadDelivery(stdin)
	if err != nil {
		return err
	}
	return webhook.Verify(secret, h, body, tolerance)
}
