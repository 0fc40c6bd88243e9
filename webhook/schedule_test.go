package webhook_test

import (
	"slices"
	"testing"
	"time"

	"github.com/payloom/payloom/webhook"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in   string
		want []time.Duration
		ok   bool
	}{
		{"0s,50ms,50ms,50ms", []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}, true},
		{" 0s , 5s,5m,30m,2h ", []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}, true},
		{"1h", []time.Duration{time.Hour}, true},
		{"", nil, false},
		{"  ", nil, false},
		{"0s,,5s", nil, false},
		{"0s,5", nil, false}, // a bare number has no unit
		{"0s,-5s", nil, false},
		{"0s,soon", nil, false},
		{"0s" + repeat(",1s", 100), nil, false},
	}
	for _, tt := range tests {
		got, err := webhook.ParseSchedule(tt.in)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
