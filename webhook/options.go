package webhook

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// DefaultSchedule is the Standard Webhooks example schedule: the delay
// before the first try (none), then before each retry; about three days in
// all.
var DefaultSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Defaults of Options.
const (
	DefaultTimeout         = 15 * time.Second
	DefaultWorkers         = 8
	DefaultPollInterval    = time.Second
	DefaultBatchSize       = 100
	DefaultDisableAfter    = 72 * time.Hour
	DefaultRotationOverlap = 24 * time.Hour
	DefaultMaxEndpoints    = 16
	// MaxRetryAfter caps how long a Retry-After answer may postpone the
	// next try.
	MaxRetryAfter = 24 * time.Hour
	// maxScheduleLength bounds a configured schedule.
	maxScheduleLength = 100
)

// Options configure a Dispatcher and a Service; the zero value is the
// production configuration.
type Options struct {
	// Schedule is the delay before the first try, then before each
	// retry (default DefaultSchedule); each delay gets ±10% jitter. A
	// delivery still failing after the last entry's try fails.
	Schedule []time.Duration
	// Timeout bounds one HTTP request, response included (default 15s).
	Timeout time.Duration
	// Workers is how many requests a dispatcher sends at once (default 8).
	Workers int
	// Lease is how long a claimed delivery is reserved for the claiming
	// dispatcher (default 2×Timeout + 30s): longer than a request, short
	// enough that a dead node's deliveries resume soon.
	Lease time.Duration
	// PollInterval is how often Run looks for new events and due
	// deliveries (default 1s).
	PollInterval time.Duration
	// BatchSize is how many events one fan-out transaction takes, and how
	// many deliveries RunOnce claims (default 100).
	BatchSize int
	// DisableAfter disables an endpoint whose deliveries have all failed
	// for that long (default 72h).
	DisableAfter time.Duration
	// RotationOverlap is how long a rotated-out secret keeps signing
	// (default 24h).
	RotationOverlap time.Duration
	// MaxEndpoints bounds a scope's endpoints (default 16, at most 100).
	MaxEndpoints int
	// AllowPrivate reports whether endpoints of a mode may resolve to
	// loopback, private, link-local and other internal addresses (default:
	// only in test mode, so that a developer can use their laptop).
	AllowPrivate func(livemode bool) bool
	// AllowHTTP reports whether endpoints of a mode may use plain http
	// (default: only in test mode).
	AllowHTTP func(livemode bool) bool
	// Resolver resolves endpoint hosts at validation (default
	// net.DefaultResolver).
	Resolver *net.Resolver
	// Owner names this node's leases (default host name, process ID and a
	// random suffix).
	Owner string
	// Clock defaults to time.Now.
	Clock payloom.Clock
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Schedule == nil {
		o.Schedule = DefaultSchedule
	}
	if len(o.Schedule) == 0 {
		o.Schedule = []time.Duration{0}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Lease <= 0 {
		o.Lease = 2*o.Timeout + 30*time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = DefaultDisableAfter
	}
	if o.RotationOverlap <= 0 {
		o.RotationOverlap = DefaultRotationOverlap
	}
	if o.MaxEndpoints <= 0 || o.MaxEndpoints > 100 {
		o.MaxEndpoints = DefaultMaxEndpoints
	}
	if o.AllowPrivate == nil {
		o.AllowPrivate = func(livemode bool) bool { return !livemode }
	}
	if o.AllowHTTP == nil {
		o.AllowHTTP = func(livemode bool) bool { return !livemode }
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// defaultOwner names this process's leases; the random part tells apart
// two dispatchers in one process, and a restarted process from its
// previous life.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return fmt.Sprintf("%s/%d/%08x", host, os.Getpid(), rand.Uint32())
}

// ParseSchedule parses a retry schedule: comma-separated Go durations, the
// first being the delay before the first try ("0s,5s,5m,30m"), as in
// PAYLOOM_WEBHOOK_RETRY_SCHEDULE.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("webhook: empty retry schedule")
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxScheduleLength {
		return nil, fmt.Errorf("webhook: retry schedule has %d entries; at most %d", len(parts), maxScheduleLength)
	}
	out := make([]time.Duration, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("webhook: retry schedule entry %d: %w", i+1, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("webhook: retry schedule entry %d (%s) is negative", i+1, d)
		}
		out[i] = d
	}
	return out, nil
}

// jitter spreads d by ±10% so that deliveries that failed together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	spread := d / 10
	if spread <= 0 {
		return d
	}
	return d - spread + rand.N(2*spread+1)
}

// retryAfter reads a Retry-After header (delay in seconds or an HTTP date)
// relative to now, capped at MaxRetryAfter; 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
