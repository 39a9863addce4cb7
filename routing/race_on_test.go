//go:build race

package routing

// raceEnabled scales the longest randomized tests down under the race
// detector, which slows Pebble by an order of magnitude.
const raceEnabled = true
