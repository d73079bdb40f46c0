package main

import "github.com/spf13/cobra"

// newBenchQuotesCmd is a placeholder until its issue lands.
func newBenchQuotesCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "quotes", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
