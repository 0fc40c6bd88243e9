package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor/simulator"
)

// parseTestRoute reads --test-route: a comma-separated, ordered list of the
// processors test-mode payments are routed to, each "sandbox" (the
// built-in sandbox) or "name=http://host:port" (a `payloom simulator` under
// that name). Names must be unique: attempts, captures and refunds find
// their processor by it. An empty string is no route: the sandbox alone,
// as without routing.
func parseTestRoute(s string, sb payloom.Processor, timeout time.Duration) ([]payloom.Processor, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []payloom.Processor
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var p payloom.Processor
		switch name, base, ok := strings.Cut(part, "="); {
		case part == sb.Name() && !ok:
			p = sb
		case ok && name != "" && name != sb.Name():
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("--test-route entry %d (%q): %q is not an http(s) URL", i, part, base)
			}
			p = simulator.NewConnector(base, simulator.ConnectorOptions{Name: name, Timeout: timeout})
		default:
			return nil, fmt.Errorf("--test-route entry %d (%q): want %q or name=http://host:port", i, part, sb.Name())
		}
		if seen[p.Name()] {
			return nil, fmt.Errorf("--test-route entry %d: the name %q is used twice", i, p.Name())
		}
		seen[p.Name()] = true
		out = append(out, p)
	}
	return out, nil
}
