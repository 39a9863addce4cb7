// Package bench holds Veil's benchmarks: speed is measured here, with
// `go test -bench`, never in timed tests.
//
// Each benchmark that measures Veil runs beside a baseline measured in the
// same command (a plain Go map lookup for ResolveCall, raw synced Pebble
// batches for session creates), because this machine is shared and noisy:
// results are reported as medians of -count runs and as ratios to the
// baseline, not as absolute numbers alone. README.md says how to run and
// read them, and keeps the last results.
//
// Fixtures are real on-disk Pebble stores in a temporary directory, filled
// once per size and reused by every benchmark of the run:
//
//	bulk load (store.Options{NoSync: true}, 4 goroutines)
//	  routing.New ── AddNumber x1000 ── SetRoute x2 ── CreateSession xN
//	close ── reopen with synced writes ── routing.New (index rebuilt from disk)
//	  └── the Service every benchmark measures, like a restarted daemon
//
// The package has no non-test code; it imports routing and store and
// nothing imports it.
package bench
