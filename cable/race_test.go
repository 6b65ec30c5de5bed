//go:build race

package cable_test

// raceEnabled is whether the tests run under the race detector, which
// makes byte-by-byte work (decoding a 1 MB identifier) about ten times
// slower; load tests scale themselves down with it.
const raceEnabled = true
