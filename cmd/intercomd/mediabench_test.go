package main

// BenchmarkDaemonMedia measures the media cost of the daemon process alone:
// the daemon runs as a child process and the viewers (softphones) run in the
// benchmark's process, so their receive paths are not counted. CPU is read
// from /proc/<pid>/stat (utime+stime), memory from /proc/<pid>/status
// (VmRSS sampled every 250 ms, VmHWM at the end of the window).
//
// Every figure comes from one run, in phases of the same length:
//
//  1. encode: a child process (this test binary in helper mode) opens the
//     daemon's camera pipeline exactly as the daemon does (openCamera on the
//     same configuration, with the daemon's GOMAXPROCS), switches it on and
//     binds one in-process sink that drains the track. That is capture,
//     openh264 encoding and RTP packetization for one receiver, and nothing
//     else. It runs once before the 1-to-1 call and once after it; the
//     mean of the two is the baseline of the 1-to-1 ratio.
//  2. 1-to-1: the intercomd binary built from this package (go build),
//     with the same configuration; the doorbell (the simulated button,
//     pressed through stdin) rings one softphone, which accepts. CPU, RSS
//     and the capture-to-decode latency are measured in the same window.
//     Then a receive-only preview: the same binary, the doorbell rings
//     the softphone, which previews the door (calling.Preview) and is
//     measured while it still rings: the door's video and audio go out,
//     nothing comes back.
//  3. and 4. 1 viewer then 4 viewers: the doorbell is a ring group (the
//     first phone to accept takes the call and the others are cancelled),
//     and the daemon offers no other way to place a call from outside, so
//     the intercomd binary cannot be put into a call with 4 viewers. A child
//     process (this test binary in helper mode) runs the daemon's own run()
//     on the same configuration and places video calls through its endpoint
//     without the ring group: first to one phone, then to four. Both calls
//     are measured in that same process, so the ratio compares like with
//     like.
//
// Latency ("capture to playout", playout meaning decoded at the viewer):
// for every frame the viewer receives during the 1-to-1 window (from a key
// frame on), the time from the capture stamp in the test pattern's bar code
// (wall clock, taken in the daemon when the frame is generated) to the
// arrival at the viewer of the frame's last packet, the one with the RTP
// marker bit (the at of OnVideoFrame), plus the time a decoder takes for one
// frame. The viewer's sample builder hands the frame over only when a packet
// of the next frame arrives, most of a frame interval later; that wait is
// the viewer's, not the daemon's, and is not counted. The frames are
// decoded afterwards with ffmpeg (one thread, low delay), which reads the
// stamps; the decode time per frame is the difference between decoding all
// of them and decoding the first alone, divided by the other frames. A live
// ffmpeg fed through pipes is not used: its command-line tool holds one
// frame back, which would add a frame time that belongs to ffmpeg, not to
// the daemon. Rendering and display are not included.
//
// The picture is the test pattern at 640x480, 30 fps, with the encoder at
// 1 Mbit/s and sensor-like noise of ±4 luma steps (camera.devices[].pattern_noise):
// a real camera's noise and detail keep the encoder at its configured rate,
// while the clean pattern compresses to under 200 kbit/s, which would measure
// the daemon against a fifth of the work. Both the encoder's output (encode
// alone) and the video the viewer receives (1-to-1) are logged.
//
// Run: go test -run '^$' -bench DaemonMedia -benchtime 1x ./cmd/intercomd/
//
// It needs ffmpeg; without it the benchmark is skipped, or fails when CI=true.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/usersig"
)

const (
	// benchHelperEnv selects a helper mode of the test binary: "encode" or
	// "daemon"; benchConfigEnv names the configuration file it loads.
	benchHelperEnv = "INTERCOMD_BENCH_HELPER"
	benchConfigEnv = "INTERCOMD_BENCH_CONFIG"

	benchWidth, benchHeight = 640, 480
	// benchWindow is the length of each measurement window; benchWarmup
	// passes between the first key frame and the window.
	benchWindow = 15 * time.Second
	benchWarmup = 3 * time.Second
)

// benchYAML is the configuration of every phase. %[1]s is the state
// directory, %[2]d the embedded broker's port.
const benchYAML = `version: 1
device:
  user: door
  state_dir: %[1]s
log:
  level: info
signaling:
  embedded:
    listen: "127.0.0.1:%[2]d"
http:
  listen: "127.0.0.1:0"
calling:
  invite_timeout: 30s
  auto_answer: true
  doorbell:
    users: [alice]
camera:
  bitrate: 1000000
  devices:
    - {device: test-pattern, width: 640, height: 480, fps: 30, pattern_noise: 4}
audio:
  backend: "null"
  test_tone: 440
gpio:
  backend: sim
`

var benchViewers = []string{"alice", "bob", "carol", "dave"}

func BenchmarkDaemonMedia(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		msg := "BENCHMARK NOT RUN: ffmpeg not found in PATH (Debian package ffmpeg); it decodes the received video to read the capture stamps"
		if os.Getenv("CI") == "true" {
			b.Fatal(msg)
		}
		b.Skip(msg)
	}
	bin := buildIntercomd(b)
	tck := clockTicks(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	wake := threadWakeCPU(20000)
	for range b.N {
		// 1. Encoding alone, before and after the call (the mean is the
		// baseline, so that drift of the machine over the run cancels).
		encodeAlone := func() (procSample, float64) {
			enc := startChild(b, benchDir(b), os.Args[0], []string{"-test.run=^TestHelperBenchProcess$"}, "encode")
			enc.waitOut(b, ctx, "first key frame")
			time.Sleep(benchWarmup)
			s := sampleProc(b, enc.pid(), tck, benchWindow)
			enc.stop(b)
			rate := enc.encodedRate(b)
			b.Logf("encode alone: %.1f%% of a core (%.2f s CPU in %.1f s), %.0f thread wake-ups/s, RSS %.1f MB, encoder output %.0f kbit/s; load %s", s.pct, s.cpu.Seconds(), s.wall.Seconds(), s.switches, s.rssMB, rate/1000, s.load)
			return s, rate
		}
		encode, encRate := encodeAlone()

		// 2. The intercomd binary in a 1-to-1 call rung by its doorbell.
		dir := benchDir(b)
		dmn := startChild(b, dir, bin, []string{"run", "--config", filepath.Join(dir.path, "intercomd.yaml")}, "")
		dmn.waitErr(b, ctx, "intercomd ready")
		rec := &recorder{}
		alice := startViewer(b, ctx, dir, "alice", rec.push)
		time.Sleep(500 * time.Millisecond) // the daemon sees alice's presence
		if _, err := io.WriteString(dmn.stdin, "\n"); err != nil {
			b.Fatal(err)
		}
		alice.waitFrames(b, ctx, dmn)
		time.Sleep(benchWarmup)
		rec.recording.Store(true)
		one := sampleProc(b, dmn.pid(), tck, benchWindow)
		rec.recording.Store(false)
		dmn.stop(b)
		lat := rec.results(b, ctx)
		if len(lat.total) < int(benchWindow.Seconds())*30/2 {
			b.Fatalf("only %d of %d frames received in %s carry a readable stamp", len(lat.total), lat.frames, benchWindow)
		}
		b.Logf("intercomd, 1-to-1: %.1f%% of a core (%.2f s CPU in %.1f s), RSS max %.1f MB, VmHWM %.1f MB, video received %.0f kbit/s; load %s", one.pct, one.cpu.Seconds(), one.wall.Seconds(), one.rssMB, one.hwmMB, rec.rate()/1000, one.load)
		after, rateAfter := encodeAlone()
		encode.pct, encode.switches = (encode.pct+after.pct)/2, (encode.switches+after.switches)/2
		encRate = (encRate + rateAfter) / 2
		extra := one.switches - encode.switches
		b.Logf("encode alone, mean of before and after: %.2f%% of a core; 1-to-1 ÷ encode alone = %.2f", encode.pct, one.pct/encode.pct)
		b.Logf("thread wake-ups: encode alone %.0f/s, 1-to-1 %.0f/s; one costs %.1f µs of CPU on this machine, so the %.0f more a second cost about %.1f%% of a core of the %.1f%% the call adds to encoding",
			encode.switches, one.switches, float64(wake.Nanoseconds())/1000, extra, extra*wake.Seconds()*100, one.pct-encode.pct)
		b.Logf("capture to arrival of the marker-bit packet: p50 %.1f ms, p95 %.1f ms, max %.1f ms over %d of %d frames; decode %.2f ms a frame (ffmpeg, one thread)",
			ms(percentileD(lat.arrival, 0.5)), ms(percentileD(lat.arrival, 0.95)), ms(percentileD(lat.arrival, 1)), len(lat.arrival), lat.frames, ms(lat.decode))

		// 2b. The intercomd binary rung by its doorbell, previewed: the
		// softphone watches the door, receive only, while it rings.
		dir = benchDir(b)
		dmn = startChild(b, dir, bin, []string{"run", "--config", filepath.Join(dir.path, "intercomd.yaml")}, "")
		dmn.waitErr(b, ctx, "intercomd ready")
		watcher := startViewerAnswering(b, ctx, dir, "alice", nil, calling.Preview{})
		time.Sleep(500 * time.Millisecond) // the daemon sees alice's presence
		if _, err := io.WriteString(dmn.stdin, "\n"); err != nil {
			b.Fatal(err)
		}
		watcher.waitFramesIn(b, ctx, dmn, calling.Ringing)
		time.Sleep(benchWarmup)
		preview := sampleProc(b, dmn.pid(), tck, benchWindow)
		if st := watcher.state(); st != calling.Ringing {
			b.Fatalf("the previewing phone is %s, not still invited: the window outlasted the ring", st)
		}
		dmn.stop(b)
		b.Logf("intercomd, receive-only preview: %.1f%% of a core, %.0f thread wake-ups/s, RSS max %.1f MB; preview ÷ encode alone = %.2f; load %s",
			preview.pct, preview.switches, preview.rssMB, preview.pct/encode.pct, preview.load)

		// 3. and 4. The daemon's run() in a child, calling 1 then 4 viewers.
		dir = benchDir(b)
		hub := startChild(b, dir, os.Args[0], []string{"-test.run=^TestHelperBenchProcess$"}, "daemon")
		hub.waitErr(b, ctx, "intercomd ready")
		var viewers []*viewer
		for _, u := range benchViewers {
			viewers = append(viewers, startViewer(b, ctx, dir, u, nil))
		}
		hub.command(b, ctx, "call alice")
		viewers[0].waitFrames(b, ctx, hub)
		time.Sleep(benchWarmup)
		hub1 := sampleProc(b, hub.pid(), tck, benchWindow)
		hub.command(b, ctx, "hangup")
		for _, v := range viewers[:1] {
			v.waitState(b, ctx, calling.Idle)
		}
		hub.command(b, ctx, "call "+strings.Join(benchViewers, " "))
		for _, v := range viewers {
			v.waitFrames(b, ctx, hub)
		}
		time.Sleep(benchWarmup)
		hub4 := sampleProc(b, hub.pid(), tck, benchWindow)
		for _, v := range viewers {
			if v.state() != calling.InCall {
				b.Fatalf("%s left the 4-viewer call: %s", v.user, v.state())
			}
		}
		hub.stop(b)
		b.Logf("daemon run() in a child, 1 viewer: %.1f%% of a core, %.0f thread wake-ups/s, RSS max %.1f MB; load %s", hub1.pct, hub1.switches, hub1.rssMB, hub1.load)
		b.Logf("daemon run() in a child, 4 viewers: %.1f%% of a core, %.0f thread wake-ups/s, RSS max %.1f MB, VmHWM %.1f MB; load %s", hub4.pct, hub4.switches, hub4.rssMB, hub4.hwmMB, hub4.load)

		b.ReportMetric(one.pct/encode.pct, "cpu-ratio-1to1")
		b.ReportMetric(preview.pct/encode.pct, "cpu-ratio-preview")
		b.ReportMetric(one.switches/encode.switches, "wakeup-ratio-1to1")
		b.ReportMetric(preview.switches, "preview-wakeups/s")
		b.ReportMetric(hub4.pct/hub1.pct, "cpu-ratio-4v1")
		b.ReportMetric(one.rssMB, "rss-MB")
		b.ReportMetric(ms(percentileD(lat.total, 0.5)), "latency-p50-ms")
		b.ReportMetric(ms(percentileD(lat.total, 0.95)), "latency-p95-ms")
		b.ReportMetric(encode.pct, "encode-cpu%")
		b.ReportMetric(one.pct, "1to1-cpu%")
		b.ReportMetric(hub4.rssMB, "rss-4v-MB")
		b.ReportMetric(encRate/1000, "encode-kbit/s")
		b.ReportMetric(one.switches, "1to1-wakeups/s")
		b.ReportMetric(encode.switches, "encode-wakeups/s")
		b.ReportMetric(float64(wake.Nanoseconds())/1000, "cpu-us/wakeup")
	}
}

// TestHelperBenchProcess is a helper mode of the test binary for
// BenchmarkDaemonMedia: it does nothing unless INTERCOMD_BENCH_HELPER is set.
func TestHelperBenchProcess(t *testing.T) {
	mode := os.Getenv(benchHelperEnv)
	if mode == "" {
		return
	}
	cfg, err := config.Load(os.Getenv(benchConfigEnv))
	if err != nil {
		t.Fatal(err)
	}
	limitProcs(os.Getenv) // as the daemon does
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch mode {
	case "encode":
		helperEncode(ctx, t, cfg)
	case "daemon":
		helperDaemon(ctx, t, cfg)
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// helperEncode opens the camera pipeline the way the daemon does, switches
// it on with one sink bound to the track, and runs until stdin closes.
func helperEncode(ctx context.Context, t *testing.T, cfg *config.Config) {
	d := &daemon{cfg: cfg, env: &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv},
		log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	cam, err := d.openCamera(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	sink := &drainSink{first: make(chan struct{})}
	if _, err := cam.Track().Bind(sink); err != nil {
		t.Fatal(err)
	}
	if err := cam.SetEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.first:
		fmt.Println("first key frame")
	case <-time.After(30 * time.Second):
		t.Fatal("no frame from the encoder")
	}
	start, startBytes := time.Now(), sink.bytes.Load()
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Printf("drained %d packets, %d bytes; %.0f bit/s\n", sink.packets.Load(), sink.bytes.Load(),
		float64(8*(sink.bytes.Load()-startBytes))/time.Since(start).Seconds())
}

// helperDaemon runs the daemon and places calls on commands read from
// stdin: "call USER..." (a video call, not a ring group) or "hangup". Each
// command is answered with "ok" or "error: ..." on stdout. It stops when
// stdin closes.
func helperDaemon(ctx context.Context, t *testing.T, cfg *config.Config) {
	logs := &syncBuffer{}
	d := &daemon{cfg: cfg, level: new(slog.LevelVar), env: &cmdEnv{stdout: io.Discard, stderr: os.Stderr, getenv: os.Getenv,
		faults: faults{loopbackMedia: true}},
		log: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, logs), nil))}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	logs.waitFor(t, "intercomd ready", 30*time.Second) // d.ep is set from here on
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var in calling.Input
		switch f[0] {
		case "call":
			if err := waitOnline(ctx, d.ep, f[1:]); err != nil {
				fmt.Println("error:", err)
				continue
			}
			in = calling.Call{Users: f[1:], Type: calling.Video}
		case "hangup":
			in = calling.Hangup{}
		default:
			fmt.Println("error: unknown command", f[0])
			continue
		}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		err := d.ep.Do(cctx, in)
		ccancel()
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println("ok")
	}
}

// waitOnline waits until the endpoint sees every one of users online.
func waitOnline(ctx context.Context, ep *endpoint.Endpoint, users []string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		online := ep.Online()
		missing := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return slices.Contains(online, u) })
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not online: %v", missing)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drainSink is bound to the camera track as one PeerConnection's sender
// would be, and throws the packets away.
type drainSink struct {
	packets, bytes atomic.Int64
	first          chan struct{}
	once           sync.Once
}

func (s *drainSink) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{camera.CodecParameters(102)}
}
func (s *drainSink) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (s *drainSink) SSRC() webrtc.SSRC                                      { return 1234 }
func (s *drainSink) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (s *drainSink) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (s *drainSink) WriteStream() webrtc.TrackLocalWriter                   { return s }
func (s *drainSink) ID() string                                             { return "drain" }
func (s *drainSink) RTCPReader() interceptor.RTCPReader                     { return nil }

func (s *drainSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	s.packets.Add(1)
	s.bytes.Add(int64(len(payload)))
	if h.Marker {
		s.once.Do(func() { close(s.first) })
	}
	return len(payload), nil
}

func (s *drainSink) Write(p []byte) (int, error) {
	var h rtp.Header
	n, err := h.Unmarshal(p)
	if err != nil {
		return 0, err
	}
	return s.WriteRTP(&h, p[n:])
}

// buildIntercomd builds the daemon binary from this package.
func buildIntercomd(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "intercomd")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-tags", "faults", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build intercomd: %v\n%s", err, out)
	}
	return bin
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times.
func clockTicks(b *testing.B) float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		b.Logf("getconf CLK_TCK: %v; assuming 100", err)
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}

type benchDirs struct {
	path    string // holds intercomd.yaml and state/
	mqttURL string
}

// benchDir writes the benchmark's configuration, on a free port, into a new
// directory.
func benchDir(b *testing.B) benchDirs {
	dir := b.TempDir()
	port := freePort(b)
	if err := os.WriteFile(filepath.Join(dir, "intercomd.yaml"), fmt.Appendf(nil, benchYAML, filepath.Join(dir, "state"), port), 0o600); err != nil {
		b.Fatal(err)
	}
	return benchDirs{path: dir, mqttURL: fmt.Sprintf("tcp://127.0.0.1:%d", port)}
}

// child is a process under measurement.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *syncBuffer
	stderr *syncBuffer
	helper bool // this test binary in a helper mode: it stops when stdin closes
	done   chan struct{}
	err    error
}

func startChild(b *testing.B, dir benchDirs, path string, args []string, helper string) *child {
	b.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "INTERCOMD_LOOPBACK_MEDIA=1",
		benchConfigEnv+"="+filepath.Join(dir.path, "intercomd.yaml"))
	if helper != "" {
		cmd.Env = append(cmd.Env, benchHelperEnv+"="+helper)
	}
	c := &child{cmd: cmd, helper: helper != "", stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	b.Cleanup(func() {
		c.stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
		if b.Failed() {
			b.Logf("%s stderr:\n%s\nstdout:\n%s", filepath.Base(path), tail(c.stderr.String()), tail(c.stdout.String()))
		}
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// encodedRate is the bit rate an encode helper reported when it stopped.
func (c *child) encodedRate(b *testing.B) float64 {
	b.Helper()
	out := c.stdout.String()
	i := strings.LastIndex(out, "; ")
	var bps float64
	if i < 0 {
		b.Fatalf("no bit rate from the encode helper: %q", tail(out))
	}
	if _, err := fmt.Sscanf(out[i+2:], "%f bit/s", &bps); err != nil {
		b.Fatalf("no bit rate from the encode helper: %q: %v", tail(out), err)
	}
	return bps
}

func (c *child) waitOut(b *testing.B, ctx context.Context, s string) { c.wait(b, ctx, c.stdout, s) }
func (c *child) waitErr(b *testing.B, ctx context.Context, s string) { c.wait(b, ctx, c.stderr, s) }

func (c *child) wait(b *testing.B, ctx context.Context, buf *syncBuffer, s string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for !strings.Contains(buf.String(), s) {
		select {
		case <-c.done:
			b.Fatalf("%s exited (%v) before %q", c.cmd.Path, c.err, s)
		case <-ctx.Done():
			b.Fatalf("no %q from %s", s, c.cmd.Path)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// command sends a line to a helper daemon and waits for its answer.
func (c *child) command(b *testing.B, ctx context.Context, line string) {
	b.Helper()
	oks := strings.Count(c.stdout.String(), "ok\n")
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for strings.Count(c.stdout.String(), "ok\n") == oks {
		if out := c.stdout.String(); strings.Contains(out, "error:") {
			b.Fatalf("%q: %s", line, out)
		}
		select {
		case <-ctx.Done():
			b.Fatalf("no answer to %q", line)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop ends the process (closing stdin for a helper, SIGTERM as systemd
// does for intercomd) and checks it stopped cleanly.
func (c *child) stop(b *testing.B) {
	b.Helper()
	c.stdin.Close()
	if !c.helper {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
		if c.err != nil {
			b.Errorf("%s: %v", c.cmd.Path, c.err)
		}
	case <-time.After(15 * time.Second):
		b.Errorf("%s did not stop within 15 s", c.cmd.Path)
	}
}

func tail(s string) string {
	if len(s) > 6000 {
		return "..." + s[len(s)-6000:]
	}
	return s
}

// procSample is the CPU and memory of one process over a window.
type procSample struct {
	cpu, wall    time.Duration
	pct          float64 // CPU in percent of one core
	switches     float64 // context switches a second, all threads (those that exit in the window are missed)
	rssMB, hwmMB float64 // the largest VmRSS seen; VmHWM at the end
	load         string  // the machine's load averages at the end (other processes disturb the figures)
}

// sampleProc measures pid over d.
func sampleProc(b *testing.B, pid int, tck float64, d time.Duration) procSample {
	b.Helper()
	c0, t0, n0 := procCPU(b, pid, tck), time.Now(), procSwitches(pid)
	var s procSample
	for end := t0.Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		rss, _ := procMem(b, pid)
		s.rssMB = max(s.rssMB, rss)
	}
	s.cpu, s.wall = procCPU(b, pid, tck)-c0, time.Since(t0)
	rss, hwm := procMem(b, pid)
	s.rssMB, s.hwmMB = max(s.rssMB, rss), hwm
	s.pct = 100 * s.cpu.Seconds() / s.wall.Seconds()
	s.switches = float64(procSwitches(pid)-n0) / s.wall.Seconds()
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.load = strings.Join(strings.Fields(string(raw))[:3], " ")
	}
	return s
}

// procCPU returns utime+stime of pid.
func procCPU(b *testing.B, pid int, tck float64) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3 of the line, utime 14 and stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("short /proc/%d/stat: %s", pid, raw)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	return time.Duration((ut + st) / tck * float64(time.Second))
}

// procSwitches returns the context switches, voluntary and not, of every
// live thread of pid.
func procSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasSuffix(f[0], "ctxt_switches:") {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				n += v
			}
		}
	}
	return n
}

// threadWakeCPU returns the CPU one thread wake-up costs on this machine:
// two goroutines, each locked to its own OS thread, pass a token back and
// forth, so every pass puts one thread to sleep and wakes the other.
func threadWakeCPU(passes int) time.Duration {
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range ping {
			pong <- struct{}{}
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	for range passes / 2 {
		ping <- struct{}{}
		<-pong
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	close(ping)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	return cpu / time.Duration(passes)
}

// BenchmarkThreadWake reports the CPU of one thread wake-up (see
// threadWakeCPU): the unit price of the daemon's overhead over encoding.
//
// Run: go test -run '^$' -bench ThreadWake ./cmd/intercomd/
func BenchmarkThreadWake(b *testing.B) {
	const passes = 20000
	var total time.Duration
	for range b.N {
		total += threadWakeCPU(passes)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N)/1000, "cpu-us/wakeup")
}

// procMem returns VmRSS and VmHWM of pid in MB.
func procMem(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v / 1024
		case "VmHWM:":
			hwm = v / 1024
		}
	}
	return rss, hwm
}

// viewer is a softphone that accepts every invitation and counts the video
// frames it receives.
type viewer struct {
	user   string
	ep     *endpoint.Endpoint
	frames atomic.Int64
}

func (v *viewer) state() calling.State { return v.ep.State() }

// startViewer signs user in to the daemon of dir with a token issued from
// the daemon's secret; onFrame, when set, also receives each access unit.
func startViewer(b *testing.B, ctx context.Context, dir benchDirs, user string, onFrame func([]byte, time.Time)) *viewer {
	b.Helper()
	return startViewerAnswering(b, ctx, dir, user, onFrame, calling.Accept{})
}

// startViewerAnswering is startViewer answering every invitation with
// answer: calling.Accept, or calling.Preview to watch the door, receive
// only, while it rings.
func startViewerAnswering(b *testing.B, ctx context.Context, dir benchDirs, user string, onFrame func([]byte, time.Time), answer calling.Input) *viewer {
	b.Helper()
	secret, err := usersig.LoadOrCreateSecret(filepath.Join(dir.path, "state", "token.key"))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := usersig.Sign(secret, user, time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	soft, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: 880})
	if err != nil {
		b.Fatal(err)
	}
	v := &viewer{user: user}
	var m *media.Media
	ep, err := endpoint.Start(ctx, endpoint.Options{
		MQTT:    mqttsig.Options{Brokers: []string{dir.mqttURL}, Password: tok, RetryInterval: 100 * time.Millisecond},
		Calling: calling.Config{User: user},
		Media: func(post func(calling.Input)) agent.Media {
			m, err = media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Post: post, Audio: soft, User: user,
				OnVideoFrame: func(_ string, au []byte, at time.Time) {
					v.frames.Add(1)
					if onFrame != nil {
						onFrame(au, at)
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			return m
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	v.ep = ep
	events, unsubscribe := ep.Subscribe(256)
	actx, stopAccepting := context.WithCancel(ctx)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			select {
			case <-actx.Done():
				return
			case ev := <-events:
				if _, ok := ev.(calling.Invited); ok {
					dctx, cancel := context.WithTimeout(actx, 10*time.Second)
					_ = ep.Do(dctx, answer)
					cancel()
				}
			}
		}
	}()
	b.Cleanup(func() {
		stopAccepting()
		<-accepting
		unsubscribe()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Close(cctx)
		m.Close()
		soft.Close()
	})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := ep.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	return v
}

// waitFrames waits until the viewer is in a call and has received video
// (from a key frame on); of a fails first, its output is shown.
func (v *viewer) waitFrames(b *testing.B, ctx context.Context, of *child) {
	b.Helper()
	v.waitFramesIn(b, ctx, of, calling.InCall)
}

// waitFramesIn waits until the viewer is in state s and has received video.
func (v *viewer) waitFramesIn(b *testing.B, ctx context.Context, of *child, s calling.State) {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	n := v.frames.Load()
	for v.state() != s || v.frames.Load() == n {
		select {
		case <-of.done:
			b.Fatalf("the daemon exited (%v)", of.err)
		case <-ctx.Done():
			b.Fatalf("%s: no video (state %s, %d frames)", v.user, v.state(), v.frames.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (v *viewer) waitState(b *testing.B, ctx context.Context, s calling.State) {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for v.state() != s {
		select {
		case <-ctx.Done():
			b.Fatalf("%s is %s, want %s", v.user, v.state(), s)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// recorder keeps the access units one viewer receives while recording,
// from a key frame on, with their arrival times.
type recorder struct {
	recording atomic.Bool

	mu    sync.Mutex
	aus   [][]byte
	times []time.Time
}

// rate is the video bit rate of the recorded access units, bits per second.
func (r *recorder) rate() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.times) < 2 {
		return 0
	}
	bits := 0
	for _, au := range r.aus[1:] {
		bits += 8 * len(au)
	}
	return float64(bits) / r.times[len(r.times)-1].Sub(r.times[0]).Seconds()
}

// push runs on the viewer's RTP reader; it copies au.
func (r *recorder) push(au []byte, at time.Time) {
	if !r.recording.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.aus) == 0 && !camera.IsKeyFrame(au) {
		return
	}
	r.aus = append(r.aus, slices.Clone(au))
	r.times = append(r.times, at)
}

// latency is what the recorded frames say about capture-to-playout.
type latency struct {
	arrival []time.Duration // capture stamp to complete access unit at the viewer
	decode  time.Duration   // the decoder's time per frame
	total   []time.Duration // arrival + decode
	frames  int             // access units recorded
}

// ffmpegDecode is one decoder run: single-threaded, no frame reordering
// delay, one grey picture out per access unit in.
func ffmpegDecode(ctx context.Context, stream string) ([]byte, time.Duration, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-threads", "1", "-flags", "low_delay",
		"-f", "h264", "-i", stream, "-f", "rawvideo", "-pix_fmt", "gray", "-fps_mode", "passthrough", "pipe:1").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, 0, fmt.Errorf("ffmpeg: %w", err)
	}
	return out, time.Since(start), nil
}

// results decodes the recorded frames with ffmpeg to read their capture
// stamps and times the decoder: the decode time per frame is the
// difference between decoding every frame and decoding the first one
// alone, divided by the other frames.
func (r *recorder) results(b *testing.B, ctx context.Context) latency {
	b.Helper()
	r.mu.Lock()
	aus, times := r.aus, r.times
	r.mu.Unlock()
	if len(aus) < 2 {
		b.Fatalf("%d frames recorded", len(aus))
	}
	dir := b.TempDir()
	all, first := filepath.Join(dir, "all.h264"), filepath.Join(dir, "first.h264")
	if err := errors.Join(os.WriteFile(all, slices.Concat(aus...), 0o600), os.WriteFile(first, aus[0], 0o600)); err != nil {
		b.Fatal(err)
	}
	raw, tAll, err := ffmpegDecode(ctx, all)
	if err != nil {
		b.Fatal(err)
	}
	_, tFirst, err := ffmpegDecode(ctx, first)
	if err != nil {
		b.Fatal(err)
	}
	const size = benchWidth * benchHeight
	if len(raw) != len(aus)*size {
		b.Fatalf("ffmpeg decoded %d pictures from %d access units", len(raw)/size, len(aus))
	}
	l := latency{frames: len(aus), decode: max(0, tAll-tFirst) / time.Duration(len(aus)-1)}
	for i := range aus {
		img := &image.Gray{Pix: raw[i*size : (i+1)*size], Stride: benchWidth, Rect: image.Rect(0, 0, benchWidth, benchHeight)}
		stamp, ok := camera.PatternTimestamp(img)
		if !ok {
			continue
		}
		l.arrival = append(l.arrival, times[i].Sub(stamp))
		l.total = append(l.total, times[i].Sub(stamp)+l.decode)
	}
	return l
}

func percentileD(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
