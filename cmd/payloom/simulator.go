package main

import (
	"github.com/spf13/cobra"

	"github.com/payloom/payloom/processor/simulator"
)

// simulatorCommand runs the fake acquirer (processor/simulator) in this
// process: `payloom simulator --addr 127.0.0.1:7070 --error-rate 0.1`.
// Its flags are the simulator's own (simulator.Main parses them), so cobra
// passes the arguments through untouched.
func (m *Main) simulatorCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "simulator [--addr host:port] [--seed n] [--error-rate p] [--hang-rate p] [--drop-rate p] [--latency d] [--log]",
		Short:              "Run the simulated acquirer that fault tests and benchmarks route payments to",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return simulator.Main(cmd.Context(), args, m.Stdout, m.Stderr)
		},
	}
}
