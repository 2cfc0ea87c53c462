//go:build linux

package gpio

import (
	"fmt"
	"slices"
	"testing"

	"github.com/warthog618/go-gpiocdev"
)

// TestInputOptions checks that every bias and inversion an input can be
// configured with reaches the line request as the gpiocdev option that
// asks the kernel for it.
func TestInputOptions(t *testing.T) {
	want := map[Bias][]gpiocdev.LineReqOption{
		BiasAsIs:     nil,
		BiasPullUp:   {gpiocdev.WithPullUp},
		BiasPullDown: {gpiocdev.WithPullDown},
		BiasDisabled: {gpiocdev.WithBiasDisabled},
	}
	for _, b := range Biases() {
		w, ok := want[b]
		if !ok {
			t.Fatalf("bias %s: no expected option in this test", b)
		}
		for _, activeLow := range []bool{false, true} {
			opts, err := inputOptions("intercomd", InputConfig{Name: "call", Bias: b, ActiveLow: activeLow})
			if err != nil {
				t.Fatalf("bias %s: %v", b, err)
			}
			exp := []gpiocdev.LineReqOption{gpiocdev.WithConsumer("intercomd"), gpiocdev.WithBothEdges}
			if activeLow {
				exp = append(exp, gpiocdev.AsActiveLow)
			}
			exp = append(exp, w...)
			if !slices.Equal(opts, exp) {
				t.Errorf("bias %s, active_low %v: options %#v, want %#v", b, activeLow, opts, exp)
			}
		}
	}
	if _, err := inputOptions("intercomd", InputConfig{Name: "call", Bias: BiasDisabled + 1}); err == nil {
		t.Error("an unknown bias was requested as is")
	}
}

func TestOutputOptions(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		for _, initial := range []bool{false, true} {
			opts := outputOptions("intercomd", OutputConfig{Name: RelayName, ActiveLow: activeLow}, initial)
			exp := []gpiocdev.LineReqOption{gpiocdev.WithConsumer("intercomd")}
			if activeLow {
				exp = append(exp, gpiocdev.AsActiveLow)
			}
			v := 0
			if initial {
				v = 1
			}
			// OutputOption is a slice: compare its printed form.
			exp = append(exp, gpiocdev.AsOutput(v))
			if fmt.Sprint(opts) != fmt.Sprint(exp) {
				t.Errorf("active_low %v, initial %v: options %#v, want %#v", activeLow, initial, opts, exp)
			}
		}
	}
}

func TestBiasSpelling(t *testing.T) {
	for _, b := range Biases() {
		got, err := ParseBias(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBias(%q) = %v, %v", b, got, err)
		}
	}
	if _, err := ParseBias("disable"); err == nil {
		t.Error(`ParseBias("disable") accepted; the spelling is "disabled"`)
	}
}
