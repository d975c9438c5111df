package main

import (
	"os"
	"testing"

	"dunning/internal/testenv"
)

// A Temporal CLI profile of the machine running the tests does not leak
// into the commands they run.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithoutUserConfig(m)) }
