//go:build !unix

package main

import (
	"errors"
	"time"
)

// raiseNoFile fails: cablebench needs Unix file descriptor limits.
func raiseNoFile() (uint64, error) {
	return 0, errors.New("cablebench: needs a Unix system (RLIMIT_NOFILE)")
}

// selfCPU is not measured outside Unix.
func selfCPU() time.Duration { return 0 }
