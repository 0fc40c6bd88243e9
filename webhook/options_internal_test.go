package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 9 * time.Nanosecond, 50 * time.Millisecond, 5 * time.Second, 24 * time.Hour} {
		lo, hi := d-d/10, d+d/10
		for range 200 {
			if got := jitter(d); got < lo || got > hi {
				t.Fatalf("jitter(%v) = %v; want within [%v, %v]", d, got, lo, hi)
			}
		}
	}
	// It does spread: 200 draws of 24h are not all equal.
	first, spread := jitter(24*time.Hour), false
	for range 200 {
		if jitter(24*time.Hour) != first {
			spread = true
			break
		}
	}
	if !spread {
		t.Errorf("jitter(24h) returned %v 201 times; want a spread", first)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"120", 120 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999", MaxRetryAfter},
		{now.Add(30 * 24 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v; want %v", tt.value, got, tt.want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	o.defaults()
	if o.Timeout != 15*time.Second || len(o.Schedule) != 10 || o.Lease <= o.Timeout || o.DisableAfter != 72*time.Hour {
		t.Errorf("defaults: Timeout %v, Schedule %v, Lease %v, DisableAfter %v; want 15s, 10 entries, > Timeout, 72h",
			o.Timeout, o.Schedule, o.Lease, o.DisableAfter)
	}
	if !o.AllowPrivate(false) || o.AllowPrivate(true) || !o.AllowHTTP(false) || o.AllowHTTP(true) {
		t.Errorf("default AllowPrivate/AllowHTTP must allow test mode only")
	}
	var sum time.Duration
	for _, d := range o.Schedule {
		sum += d
	}
	if sum < 72*time.Hour || sum > 80*time.Hour {
		t.Errorf("default schedule spans %v; want about three days", sum)
	}
}
