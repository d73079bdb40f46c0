// Package mock provides two in-process [kisfeed.Source] implementations
// that need no network:
//
//   - [Source] serves the deterministic synthetic market of package sim,
//     so it reports the same numbers as the KIS emulator for the same seed
//     and instant. The data-source factory uses it when ENABLE_KIS_API=false.
//   - [FuncSource] is a struct of func fields for tests: set the ones a
//     test needs and count or script calls in them.
package mock
