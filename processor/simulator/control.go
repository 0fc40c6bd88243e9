package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Control is a client of a simulator's control API (/_control/...), for
// tests and benchmarks that drive a simulator running in another process.
type Control struct {
	BaseURL string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
}

// AddRules appends rules and returns them with their IDs (card numbers
// masked).
func (c *Control) AddRules(ctx context.Context, rules ...Rule) ([]Rule, error) {
	var out struct {
		Rules []Rule `json:"rules"`
	}
	err := c.do(ctx, http.MethodPost, "/_control/rules", map[string]any{"rules": rules}, &out)
	return out.Rules, err
}

// ClearRules removes every rule.
func (c *Control) ClearRules(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/_control/rules", nil, nil)
}

// SetFaults replaces the random fault mode.
func (c *Control) SetFaults(ctx context.Context, f Faults) error {
	return c.do(ctx, http.MethodPost, "/_control/faults", f, nil)
}

// Ledger returns what the simulator recorded.
func (c *Control) Ledger(ctx context.Context) (*Ledger, error) {
	var l Ledger
	if err := c.do(ctx, http.MethodGet, "/_control/ledger", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// CommitHeld commits every held late authorization and returns how many
// it committed.
func (c *Control) CommitHeld(ctx context.Context) (int, error) {
	var out struct {
		Committed int `json:"committed"`
	}
	err := c.do(ctx, http.MethodPost, "/_control/commit", nil, &out)
	return out.Committed, err
}

// Reset forgets the ledger, rules and faults.
func (c *Control) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_control/reset", nil, nil)
}

func (c *Control) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(mustMarshal(in))
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("simulator control %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("simulator control %s %s: %w", method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		var e errorAnswer
		json.Unmarshal(b, &e)
		return fmt.Errorf("simulator control %s %s: HTTP %d: %s", method, path, res.StatusCode, e.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("simulator control %s %s: %w", method, path, err)
		}
	}
	return nil
}
