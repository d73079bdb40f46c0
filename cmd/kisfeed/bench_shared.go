package main

import "github.com/spf13/cobra"

// newBenchSharedCmd is a placeholder until its issue lands.
func newBenchSharedCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "shared", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
