// Package synthetic serves the synthetic market (package sim) as an
// in-process [kisfeed.Source] that needs no network: [Source] reports the
// same numbers as the KIS emulator for the same seed and instant. The
// wiring uses it when ENABLE_KIS_API=false (mode "mock" in config, a
// legacy name kept for compatibility).
package synthetic
