//go:build !race

package runner

// raceEnabled is whether the tests run under the race detector, which
// makes every connection several times dearer: load tests shrink.
const raceEnabled = false
