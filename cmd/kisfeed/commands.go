package main

import "github.com/spf13/cobra"

// commands lists the subcommands, one constructor per file.
func commands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newEmulatorCmd(a),
		newQuoteCmd(a), newOrderBookCmd(a), newCandlesCmd(a), newInfoCmd(a), newTokenCmd(a),
		newIngestCmd(a), newMigrateCmd(a), newVerifyCmd(a), newCalendarCmd(a),
		newServeCmd(a), newWatchCmd(a), newAPIKeyCmd(a), newLoadtestCmds(a),
		newBenchCmd(a),
	}
}

// newBenchCmd groups the benchmark commands that print figures.
func newBenchCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure the client and gateway against an emulator and print figures",
	}
	c.AddCommand(newBenchQuotesCmd(a), newBenchSharedCmd(a))
	return c
}

// newLoadtestCmds is loadtest (quotes at a constant rate) with its stream
// subcommand.
func newLoadtestCmds(a *app) *cobra.Command {
	c := newLoadtestCmd(a)
	c.AddCommand(newLoadtestStreamCmd(a))
	return c
}
