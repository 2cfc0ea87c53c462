//go:build linux

// Package gpiotest helps tests of the real-kernel tier drive GPIO through
// gpio-sim, the kernel's simulated GPIO chip.
package gpiotest

import (
	"fmt"
	"testing"

	"github.com/warthog618/go-gpiosim"
)

// PiHeaderLines is how many lines the simulated Raspberry Pi header has.
const PiHeaderLines = 58

// PiHeader creates a gpio-sim chip laid out like a Raspberry Pi header (one
// bank, lines named GPIO0 to GPIO57), removed when t ends. It fails t when
// gpio-sim is missing (it needs root, configfs and the gpio-sim module).
func PiHeader(t testing.TB) *gpiosim.Chip {
	t.Helper()
	opts := make([]gpiosim.NewBankOption, 0, PiHeaderLines)
	for i := range PiHeaderLines {
		opts = append(opts, gpiosim.WithNamedLine(i, fmt.Sprintf("GPIO%d", i)))
	}
	s, err := gpiosim.NewSim(gpiosim.WithBank(gpiosim.NewBank("pinctrl-bcm2711", PiHeaderLines, opts...)))
	if err != nil {
		t.Fatalf("gpio-sim is not available (needs root, configfs and the gpio-sim module): %v", err)
	}
	t.Cleanup(s.Close)
	return &s.Chips[0]
}
