package main

import "github.com/spf13/cobra"

// newQuoteCmd is a placeholder until its issue lands.
func newQuoteCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "quote", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newOrderBookCmd is a placeholder until its issue lands.
func newOrderBookCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "orderbook", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newCandlesCmd is a placeholder until its issue lands.
func newCandlesCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "candles", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newInfoCmd is a placeholder until its issue lands.
func newInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "info", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}

// newTokenCmd is a placeholder until its issue lands.
func newTokenCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "token", Short: "(not implemented yet)", Hidden: true, RunE: func(*cobra.Command, []string) error { return withExit(1, errNotYet) }}
}
