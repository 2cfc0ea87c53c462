// Package m2mtest loads the kernel's virtual codec for tests of the memory-to-memory
// encoder, in the real-kernel tier (test/vm).
package m2mtest

import (
	"os/exec"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera/m2m"
)

// Vicodec loads vicodec with the multi-planar interface the Pi's bcm2835-codec has
// (modprobe vicodec multiplanar=1) and returns its FWHT encoder node.
func Vicodec(t testing.TB) string {
	t.Helper()
	if out, err := exec.Command("modprobe", "vicodec", "multiplanar=1").CombinedOutput(); err != nil {
		t.Fatalf("modprobe vicodec multiplanar=1: %v\n%s (run in the guest: test/vm/exec)", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if node, _ := m2m.Find(m2m.FourCCFWHT); node != "" {
			return node
		}
	}
	t.Fatal("no FWHT encoder node after loading vicodec")
	return ""
}
