package gpio_test

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/gpio"
)

// BenchmarkEdgeToEvent measures the time from a release edge on the sim
// backend to the press event reaching a consumer goroutine; it reports the
// median and the 99th percentile.
func BenchmarkEdgeToEvent(b *testing.B) {
	sim := gpio.NewSim()
	cfg := gpio.Config{Buttons: []gpio.ButtonConfig{{Name: "call", Line: "GPIO17"}}}
	p, err := gpio.Open(cfg, sim, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	lat := make(chan time.Duration, 1)
	go func() {
		for ev := range p.Events() {
			lat <- time.Since(ev.Time)
		}
	}()
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		if err := sim.Press("call"); err != nil {
			b.Fatal(err)
		}
		if err := sim.Release("call"); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, <-lat)
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
}
