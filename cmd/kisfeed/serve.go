package main

import "github.com/spf13/cobra"

// newServeCmd is a placeholder until its issue lands.
func newServeCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newLoadtestCmd is a placeholder until its issue lands.
func newLoadtestCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "loadtest", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
