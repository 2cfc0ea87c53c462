//go:build kernel

// The whole daemon in a real kernel (run in the QEMU guest by test/vm/run):
// buttons, LED and relay on a gpio-sim chip laid out like a Raspberry Pi,
// video from vivid, sound through snd-aloop.
package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warthog618/go-gpiosim"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/gpio/gpiotest"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/usersig"
)

const (
	lineButton = 17 // active low, pulled up
	lineLED    = 27
	lineRelay  = 22
)

func piSim(t *testing.T) *gpiosim.Chip { return gpiotest.PiHeader(t) }

func level(t *testing.T, c *gpiosim.Chip, off int) int {
	t.Helper()
	v, err := c.Level(off)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitLevel waits until line off reads v.
func waitLevel(t *testing.T, c *gpiosim.Chip, off, v int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for level(t, c, off) != v {
		if time.Now().After(deadline) {
			t.Fatalf("line %d never read %d within %s", off, v, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blinks reports whether line off takes both levels within d.
func blinks(t *testing.T, c *gpiosim.Chip, off int, d time.Duration) bool {
	seen := map[int]bool{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		seen[level(t, c, off)] = true
	}
	return seen[0] && seen[1]
}

func TestKernelDaemonDoorbellVideoAudioDoor(t *testing.T) {
	chip := piSim(t)
	if err := chip.SetPull(lineButton, 1); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, `gpio:
  backend: chip
  buttons: [{name: call, line: GPIO17, active_low: true, bias: pull-up, debounce: 10ms}]
  leds: [{name: status, line: GPIO27}]
  relay: {line: GPIO22, pulse: 1s}
camera:
  fallback_test_pattern: false
  devices: [{name: vivid, device: /dev/video0, width: 640, height: 360, fps: 30}]
audio:
  backend: alsa
  playback: "hw:Loopback,0,0"
  capture: "hw:Loopback,1,0"
  echo_cancel: false # the test hears the speaker through the microphone on purpose
`)
	if level(t, chip, lineRelay) != 0 {
		t.Fatal("relay energised at start")
	}

	// alice: a softphone sending 880 Hz, counting the video it receives and
	// recording what it hears.
	secret, err := usersig.LoadOrCreateSecret(filepath.Join(d.dir, "state", "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := usersig.Sign(secret, "alice", time.Now().Add(time.Hour))
	var frames atomic.Int64
	heard := make(chan []int16, 512)
	soft, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: 880, OnParty: func(_ string, pcm []int16) {
		select {
		case heard <- append([]int16(nil), pcm...):
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer soft.Close()
	var m *media.Media
	alice, err := endpoint.Start(t.Context(), endpoint.Options{
		MQTT:    mqttsig.Options{Brokers: []string{d.mqttURL}, Password: tok, RetryInterval: 100 * time.Millisecond},
		Calling: calling.Config{User: "alice"},
		Media: func(post func(calling.Input)) agent.Media {
			m, err = media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Post: post, Audio: soft, User: "alice",
				OnVideoFrame: func(string, []byte, time.Time) { frames.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		alice.Close(ctx)
		m.Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := alice.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the daemon sees alice's presence

	// The visitor presses the button (active low).
	if err := chip.SetPull(lineButton, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if err := chip.SetPull(lineButton, 1); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.Ringing)
	if !blinks(t, chip, lineLED, 2*time.Second) {
		t.Error("the LED does not blink while the door rings")
	}
	if err := alice.Do(ctx, calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.InCall)
	waitLevel(t, chip, lineLED, 1, 10*time.Second)

	// vivid's video arrives; the device's microphone (the loopback of its own
	// speaker) carries alice's 880 Hz back to her.
	deadline := time.Now().Add(60 * time.Second)
	for frames.Load() < 30 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := frames.Load(); n < 30 {
		t.Errorf("alice received %d video frames from vivid", n)
	}
	var pcm []int16
	for len(pcm) < 48000 && time.Now().Before(deadline) {
		select {
		case p := <-heard:
			pcm = append(pcm, p...)
		case <-time.After(time.Second):
		}
	}
	if f := audiotest.DominantFrequency(pcm[len(pcm)/2:], 48000); f < 860 || f > 900 {
		t.Errorf("alice hears %.0f Hz through the device's loopback sound card, want 880", f)
	}

	// alice opens the door: the relay line pulses for about a second.
	if err := alice.Do(ctx, calling.OpenDoor{}); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, chip, lineRelay, 1, 10*time.Second)
	on := time.Now()
	waitLevel(t, chip, lineRelay, 0, 10*time.Second)
	if held := time.Since(on); held < 800*time.Millisecond || held > 1500*time.Millisecond {
		t.Errorf("relay held %s, want about 1 s", held)
	}
	if err := alice.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, chip, lineLED, 0, 10*time.Second)
}

// BenchmarkKernelButtonToAccept is BenchmarkButtonToAccept with the button
// on a gpio-sim line of a real kernel (debounce off): from driving the line
// to the accept leaving the calling loop.
// Run in the guest: test/vm/run -bench KernelButtonToAccept -benchtime 100x
func BenchmarkKernelButtonToAccept(b *testing.B) {
	opts := make([]gpiosim.NewBankOption, 0, 58)
	for i := range 58 {
		opts = append(opts, gpiosim.WithNamedLine(i, fmt.Sprintf("GPIO%d", i)))
	}
	s, err := gpiosim.NewSim(gpiosim.WithBank(gpiosim.NewBank("pinctrl-bcm2711", 58, opts...)))
	if err != nil {
		b.Fatalf("gpio-sim is not available: %v", err)
	}
	defer s.Close()
	chip := &s.Chips[0]
	if err := chip.SetPull(lineButton, 1); err != nil {
		b.Fatal(err)
	}
	benchButton(b, "gpio:\n  backend: chip\n  buttons: [{name: call, line: GPIO17, active_low: true, bias: pull-up, debounce: 0s}]\n  leds: []\n  relay: {line: \"\"}\n",
		func(_ *daemon, down bool) error {
			if down {
				return chip.SetPull(lineButton, 0)
			}
			return chip.SetPull(lineButton, 1)
		})
}
