//go:build !faults

package main

import "testing"

// A production build ignores the fault hooks' environment.
func TestNoFaultHooksInProduction(t *testing.T) {
	env := map[string]string{"INTERCOMD_FAULT": "wedge-loop", "INTERCOMD_LOOPBACK_MEDIA": "1"}
	if f := envFaults(func(k string) string { return env[k] }); f != (faults{}) {
		t.Fatalf("fault hooks %+v set from the environment in a production build", f)
	}
}
