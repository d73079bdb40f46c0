package main

import "github.com/spf13/cobra"

// newIngestCmd is a placeholder until its issue lands.
func newIngestCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "ingest", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newMigrateCmd is a placeholder until its issue lands.
func newMigrateCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "migrate", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newVerifyCmd is a placeholder until its issue lands.
func newVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "verify", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newCalendarCmd is a placeholder until its issue lands.
func newCalendarCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "calendar", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
