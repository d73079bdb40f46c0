package main

import "github.com/spf13/cobra"

// newEmulatorCmd is a placeholder until its issue lands.
func newEmulatorCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "emulator", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
