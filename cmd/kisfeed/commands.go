package main

import "github.com/spf13/cobra"

// commands lists the subcommands, one constructor per file.
func commands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newEmulatorCmd(a),
		newQuoteCmd(a), newOrderBookCmd(a), newCandlesCmd(a), newInfoCmd(a), newTokenCmd(a),
		newIngestCmd(a), newMigrateCmd(a), newVerifyCmd(a), newCalendarCmd(a),
		newServeCmd(a), newLoadtestCmd(a),
	}
}

var errNotYet = errorString("not implemented yet")

type errorString string

func (e errorString) Error() string { return string(e) }
