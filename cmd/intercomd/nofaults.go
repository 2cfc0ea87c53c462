//go:build !faults

package main

// envFaults: a production build has no fault hooks (see faults.go).
func envFaults(func(string) string) faults { return faults{} }
