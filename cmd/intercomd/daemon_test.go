package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/mqttsig"
)

// syncBuffer is a bytes.Buffer safe for the daemon's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) waitFor(t testing.TB, sub string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(s.String(), sub) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never saw %q in:\n%s", sub, s.String())
}

func freePort(t testing.TB) int { return mqtttest.FreePort(t) }

type daemonUnderTest struct {
	dir     string
	mqttURL string
	stdin   *io.PipeWriter
	stdout  *syncBuffer
	stderr  *syncBuffer
	done    chan error
	cancel  context.CancelFunc
}

// startDaemon runs the daemon in-process through dispatch, with a config
// on free loopback ports, the simulated panel and stdin as its button.
func startDaemon(t testing.TB, extra string) *daemonUnderTest {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf(`version: 1
device:
  user: door
  state_dir: %s
signaling:
  embedded:
    listen: 127.0.0.1:%d
calling:
  invite_timeout: 10s
  door_users: [alice]
%s`, filepath.Join(dir, "state"), port, extra)
	if !strings.Contains(extra, "http:") {
		cfg += "http:\n  listen: 127.0.0.1:0\n"
	}
	if !strings.Contains(extra, "gpio:") {
		cfg += "gpio:\n  backend: sim\n  relay: {line: GPIO22, pulse: 500ms}\n"
	}
	path := filepath.Join(dir, "intercomd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	d := &daemonUnderTest{dir: dir, mqttURL: fmt.Sprintf("tcp://127.0.0.1:%d", port), stdin: stdinW,
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	env := &cmdEnv{stdin: stdinR, stdout: d.stdout, stderr: d.stderr, getenv: func(k string) string {
		switch k {
		case "INTERCOMD_PUSH_INSECURE":
			return "1"
		}
		return ""
	}, faults: faults{loopbackMedia: true}}
	go func() { d.done <- dispatch(ctx, []string{"run", "--config", path}, env) }()
	t.Cleanup(func() {
		cancel()
		stdinW.Close()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s\nstdout:\n%s", d.stderr.String(), d.stdout.String())
		}
	})
	d.stderr.waitFor(t, "intercomd ready", 20*time.Second)
	return d
}

// ringDoorbell presses the simulated button until rung reports the call
// arrived. The daemon rings whoever it knows to be online, and learns that
// from presence a moment after the phone signs in: a press before that
// rings nobody (and says so), and is repeated.
func (d *daemonUnderTest) ringDoorbell(t testing.TB, rung func() bool) {
	t.Helper()
	const nobody = "doorbell pressed but nobody to ring"
	for try := 0; try < 20; try++ {
		before := strings.Count(d.stderr.String(), nobody)
		if _, err := io.WriteString(d.stdin, "\n"); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if rung() {
				return
			}
			if strings.Count(d.stderr.String(), nobody) > before {
				break // pressed too early: press again
			}
		}
	}
	t.Fatal("the doorbell never rang the phone")
}

// phone signs a user in to the daemon's embedded broker with a token
// issued from the daemon's own secret.
func (d *daemonUnderTest) phone(t testing.TB, user string) (*endpoint.Endpoint, <-chan calling.Event) {
	t.Helper()
	tok := d.token(t, user)
	soft, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: 880})
	if err != nil {
		t.Fatal(err)
	}
	var m *media.Media
	ep, err := endpoint.Start(t.Context(), endpoint.Options{
		MQTT:    mqttsig.Options{Brokers: []string{d.mqttURL}, Password: tok, RetryInterval: 100 * time.Millisecond},
		Calling: calling.Config{User: user},
		Media: func(post func(calling.Input)) agent.Media {
			m, err = media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Post: post, Audio: soft, User: user})
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	events, _ := ep.Subscribe(256)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Close(ctx)
		m.Close()
		soft.Close()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := ep.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return ep, events
}

func waitState(t *testing.T, ep *endpoint.Endpoint, s calling.State) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for ep.State() != s {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, want %s", ep.User(), ep.State(), s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The whole flow on a laptop: the doorbell button rings the signed-in
// phone, the LED follows the state, the phone opens the door and the relay
// pulses, the phone hangs up, and the daemon stops cleanly with the relay off.
func TestDaemonDoorbellAnswerOpenDoor(t *testing.T) {
	d := startDaemon(t, "")
	alice, _ := d.phone(t, "alice")
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	d.stdout.waitFor(t, "[dialing] [LED: fast-blink]", 5*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := alice.Do(ctx, calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.InCall)
	d.stdout.waitFor(t, "[in_call] [LED: on]", 5*time.Second)
	if err := alice.Do(ctx, calling.OpenDoor{}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[relay: ON]", 5*time.Second)
	d.stdout.waitFor(t, "[LED: heartbeat]", 5*time.Second)
	d.stdout.waitFor(t, "[relay: off]", 5*time.Second)
	d.stderr.waitFor(t, "door open", time.Second)
	if err := alice.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[idle] [LED: off]", 5*time.Second)
	start := time.Now()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
		d.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("daemon took more than 5 s to stop")
	}
	t.Logf("stopped in %s", time.Since(start))
	if strings.Count(d.stdout.String(), "[relay: ON]") != 1 {
		t.Errorf("relay energised other than once:\n%s", d.stdout.String())
	}
}

// A phone not listed in door_users cannot open the door.
func TestDaemonRefusesDoorForUnlistedUser(t *testing.T) {
	d := startDaemon(t, "  callers: [alice, bob]\n")
	bob, events := d.phone(t, "bob")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := bob.Do(ctx, calling.Call{Users: []string{"door"}, Type: calling.Audio}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[ringing] [LED: fast-blink]", 5*time.Second)
	if _, err := io.WriteString(d.stdin, "\n"); err != nil { // answer with the button
		t.Fatal(err)
	}
	waitState(t, bob, calling.InCall)
	if err := bob.Do(ctx, calling.OpenDoor{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-events:
			if r, ok := ev.(calling.DoorResult); ok {
				if r.OK {
					t.Fatal("the door opened for bob")
				}
				if strings.Contains(d.stdout.String(), "[relay: ON]") {
					t.Fatal("relay energised for an unlisted user")
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no door result")
		}
	}
}

// Only the callers may call the door: a stranger's invitation (any token
// holder's) is refused unrung, so a visitor's press rings the residents
// rather than answering it. calling.callers is reloadable.
func TestDaemonRefusesStrangersCall(t *testing.T) {
	d := startDaemon(t, "")
	alice, _ := d.phone(t, "alice")
	mallory, events := d.phone(t, "mallory")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	refused := func() {
		t.Helper()
		if err := mallory.Do(ctx, calling.Call{Users: []string{"door"}, Type: calling.Video}); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case ev := <-events:
				if e, ok := ev.(calling.CallEnd); ok {
					if e.Reason != calling.ReasonCallNotAllowed {
						t.Fatalf("mallory's call ended with %s, want %s", e.Reason, calling.ReasonCallNotAllowed)
					}
					return
				}
			case <-ctx.Done():
				t.Fatal("mallory's call was not refused")
			}
		}
	}
	refused()
	d.stderr.waitFor(t, "CallRefused from=mallory", 5*time.Second)
	if strings.Contains(d.stdout.String(), "[ringing]") {
		t.Fatalf("the door rang for a stranger:\n%s", d.stdout.String())
	}
	// A press rings the residents (alice), never the stranger.
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	if mallory.State() != calling.Idle {
		t.Fatalf("mallory is %s after the press", mallory.State())
	}
	if err := alice.Do(ctx, calling.Reject{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.Idle)

	// Listed after a reload, mallory's call rings the door.
	d.reload(t, "door_users: [alice]", "door_users: [alice]\n  callers: [alice, mallory]")
	if err := mallory.Do(ctx, calling.Call{Users: []string{"door"}, Type: calling.Video}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[ringing] [LED: fast-blink]", 10*time.Second)
}

// reload edits the daemon's configuration file, replacing each old text
// by its new one (pairs), and reloads it with SIGHUP.
func (d *daemonUnderTest) reload(t *testing.T, oldNew ...string) {
	t.Helper()
	path := filepath.Join(d.dir, "intercomd.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(oldNew); i += 2 {
		b = bytes.Replace(b, []byte(oldNew[i]), []byte(oldNew[i+1]), 1)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(d.stderr.String(), "reload: applied")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); strings.Count(d.stderr.String(), "reload: applied") == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the daemon did not reload")
		}
	}
}

// SIGHUP reloads what can change live and names what needs a restart.
func TestDaemonReload(t *testing.T) {
	d := startDaemon(t, "")
	d.reload(t, "invite_timeout: 10s", "invite_timeout: 20s",
		"door_users: [alice]", "door_users: [alice, bob]",
		"state_dir: ", "name: Back door\n  state_dir: ")
	log := d.stderr.String()
	for _, want := range []string{"calling.invite_timeout", "calling.door_users", "need a restart", "device.name"} {
		if !strings.Contains(log, want) {
			t.Errorf("reload log lacks %q:\n%s", want, log)
		}
	}
}

// TestLimitProcs checks the daemon's default of one processor for Go code,
// and that a GOMAXPROCS from the environment wins.
func TestLimitProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	runtime.GOMAXPROCS(2)
	limitProcs(func(string) string { return "2" })
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Fatalf("with GOMAXPROCS set in the environment: %d processors, want them left alone (2)", n)
	}
	limitProcs(func(string) string { return "" })
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("by default: %d processors, want 1", n)
	}
}

// Each doorbell press pulses the bell for gpio.bell.pulse, whether or not
// anybody is signed in to ring.
func TestDaemonDoorbellRingsBell(t *testing.T) {
	d := startDaemon(t, "gpio:\n  backend: sim\n  relay: {line: GPIO22, pulse: 500ms}\n  bell: {line: GPIO23, pulse: 300ms}\n")
	alice, _ := d.phone(t, "alice")
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	d.stdout.waitFor(t, "[bell: ON]", 5*time.Second)
	d.stdout.waitFor(t, "[bell: off]", 5*time.Second)
	if strings.Contains(d.stdout.String(), "[relay: ON]") {
		t.Errorf("a doorbell press energised the door relay:\n%s", d.stdout.String())
	}
}

// Media is built before signaling opens: a media error stops start-up with
// a message naming it, and the daemon never says it is ready.
func TestDaemonMediaErrorStopsStartup(t *testing.T) {
	busy, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 1
device: {user: door, state_dir: %s}
signaling: {embedded: {listen: "127.0.0.1:0"}}
http: {listen: "127.0.0.1:0"}
gpio: {backend: sim}
media: {udp_port: %d}
`, filepath.Join(dir, "state"), port)
	path := filepath.Join(dir, "intercomd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	env := &cmdEnv{stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = dispatch(ctx, []string{"run", "--config", path}, env)
	if err == nil || !strings.Contains(err.Error(), "media") {
		t.Fatalf("run returned %v, want a media error", err)
	}
	if strings.Contains(stderr.String(), "intercomd ready") {
		t.Fatalf("the daemon said it was ready with broken media:\n%s", stderr)
	}
	t.Logf("run: %v", err)
}
