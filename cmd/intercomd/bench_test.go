package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
)

// BenchmarkButtonToAccept measures, with the simulated panel on the host,
// the time from the button's release edge (a press is decided on release;
// debounce is off) to the accept leaving the daemon's calling loop for the
// caller. It reports p50 and p95 over b.N presses.
// Run: go test -run '^$' -bench ButtonToAccept -benchtime 100x ./cmd/intercomd/
func BenchmarkButtonToAccept(b *testing.B) {
	benchButton(b, "gpio:\n  backend: sim\n  buttons: [{name: call, line: GPIO17, debounce: 0s}]\n",
		func(d *daemon, down bool) error { return d.sim.Set("call", down) })
}

// benchButton runs the button benchmark with the panel of gpioYAML, whose
// button set drives.
func benchButton(b *testing.B, gpioYAML string, set func(d *daemon, down bool) error) {
	dir := b.TempDir()
	port := freePort(b)
	cfg, err := config.Parse("bench.yaml", fmt.Appendf(nil, `version: 1
device: {user: door, state_dir: %s}
signaling: {embedded: {listen: "127.0.0.1:%d"}}
http: {listen: "127.0.0.1:0"}
%s`, filepath.Join(dir, "state"), port, gpioYAML))
	if err != nil {
		b.Fatal(err)
	}
	sent := make(chan time.Time, 1)
	stderr := &syncBuffer{}
	level := new(slog.LevelVar)
	d := &daemon{cfg: cfg, level: level, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		env: &cmdEnv{stdout: &syncBuffer{}, stderr: stderr, getenv: func(string) string { return "" },
			faults: faults{loopbackMedia: true}},
		onEffect: func(e calling.Effect) {
			if s, ok := e.(calling.Send); ok && s.Msg.Type == calling.MsgAccept && s.To != "door" {
				select {
				case sent <- time.Now():
				default:
				}
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	defer func() { cancel(); <-done }()
	spin(b, func() bool { return strings.Contains(stderr.String(), "intercomd ready") })
	dut := &daemonUnderTest{dir: dir, mqttURL: fmt.Sprintf("tcp://127.0.0.1:%d", port)}
	alice, _ := dut.phone(b, "alice")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := alice.Do(ctx, calling.Call{Users: []string{"door"}, Type: calling.Audio}); err != nil {
			b.Fatal(err)
		}
		spin(b, func() bool { return d.ep.State() == calling.Ringing })
		if err := set(d, true); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		edge := time.Now()
		if err := set(d, false); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-sent:
			lat = append(lat, at.Sub(edge))
		case <-time.After(5 * time.Second):
			b.Fatal("no accept")
		}
		spin(b, func() bool { return alice.State() == calling.InCall })
		if err := alice.Do(ctx, calling.Hangup{}); err != nil {
			b.Fatal(err)
		}
		spin(b, func() bool { return d.ep.State() == calling.Idle })
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}

// spin waits for cond, failing after 15 s.
func spin(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out waiting")
		}
		time.Sleep(100 * time.Microsecond)
	}
}
