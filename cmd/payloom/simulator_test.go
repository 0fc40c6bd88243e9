package main

import (
	"strings"
	"testing"
)

// The simulator command hands its arguments to simulator.Main untouched:
// cobra would refuse --error-rate as an unknown flag, simulator.Main
// validates its value.
func TestSimulatorCommandPassesFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"simulator", "--error-rate", "2"}, "between 0 and 1"},
		{[]string{"simulator", "--addr", "127.0.0.1:0", "extra"}, "unexpected arguments"},
		{[]string{"simulator", "--addr", "256.0.0.1:1"}, "simulator:"},
	}
	for _, tt := range tests {
		_, _, err := run(t, nil, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("payloom %s = %v; want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}
