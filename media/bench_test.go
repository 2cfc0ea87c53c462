package media_test

import (
	"context"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCallSetup measures a video call from the invitation (answered
// at once) to the first frame the softphone receives; run with
// -benchtime=50x for p50/p95 over 50 calls.
func BenchmarkCallSetup(b *testing.B) {
	env := mqtttest.StartEmbedded(b, mqtttest.Options{})
	dev := newParty(b, env, "door", partyOpts{tone: 440, camera: true, width: 320, height: 240, fps: 15})
	soft := newParty(b, env, "alice", partyOpts{tone: 880, autoAnswer: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		dm, sm := dev.eventCount(), soft.eventCount()
		start := time.Now()
		dev.call(ctx, calling.Video, "alice")
		var at time.Time
		for {
			var ok bool
			if at, _, ok = soft.firstFrameAfter("door", start); ok {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatal("no video")
			case <-time.After(2 * time.Millisecond):
			}
		}
		ds = append(ds, at.Sub(start))
		if err := dev.ep.Do(ctx, calling.Hangup{}); err != nil {
			b.Fatal(err)
		}
		dev.wait(ctx, dm, "call end", isCallEnd)
		soft.wait(ctx, sm, "call end", isCallEnd)
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(ds, 0.5))/1e6, "p50-ms")
	b.ReportMetric(float64(percentile(ds, 0.95))/1e6, "p95-ms")
}

// BenchmarkCaptureToReceive measures the time from the test pattern's
// capture stamp to the arrival of the complete access unit at the
// softphone (decoded afterwards with ffmpeg to read the stamps).
func BenchmarkCaptureToReceive(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("SKIPPED: ffmpeg not found (Debian package ffmpeg)")
	}
	env := mqtttest.StartEmbedded(b, mqtttest.Options{})
	const w, h = 320, 240
	dev := newParty(b, env, "door", partyOpts{tone: 440, camera: true, width: w, height: h, fps: 15})
	soft := newParty(b, env, "alice", partyOpts{tone: 880, autoAnswer: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev.call(ctx, calling.Video, "alice")
	soft.wait(ctx, 0, "door entering", isEnter("door"))
	time.Sleep(time.Duration(b.N) * 3 * time.Second)
	_, times, data := soft.videoFrames("door")
	f := filepath.Join(b.TempDir(), "v.h264")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		b.Fatal(err)
	}
	raw, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "h264", "-i", f, "-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; (i+1)*w*h <= len(raw) && i < len(times); i++ {
		img := &image.Gray{Pix: raw[i*w*h : (i+1)*w*h], Stride: w, Rect: image.Rect(0, 0, w, h)}
		if ts, ok := camera.PatternTimestamp(img); ok {
			lat = append(lat, times[i].Sub(ts))
		}
	}
	if len(lat) == 0 {
		b.Fatal("no stamped frame decoded")
	}
	b.ReportMetric(float64(percentile(lat, 0.5))/1e6, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.95))/1e6, "p95-ms")
	b.ReportMetric(float64(len(lat)), "frames")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// cpuOver returns the process CPU use in percent of one core over d.
func cpuOver(d time.Duration) float64 {
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(d)
	return float64(cpuTime()-c0) / float64(time.Since(t0)) * 100
}

// BenchmarkCPU compares the process CPU of the camera encoding alone (640x480,
// 15 fps), a 1-to-1 video call, and a call with 4 viewers; softphones run in
// the same process, so the call figures include their receive paths. It
// also reports the resident memory during the 4-viewer call.
func BenchmarkCPU(b *testing.B) {
	env := mqtttest.StartEmbedded(b, mqtttest.Options{})
	dev := newParty(b, env, "door", partyOpts{tone: 440, camera: true, width: 640, height: 480, fps: 15})
	var softs []*party
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		softs = append(softs, newParty(b, env, u, partyOpts{tone: 880, autoAnswer: true}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	window := time.Duration(b.N) * 5 * time.Second

	if err := dev.cam.SetEnabled(ctx, true); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second)
	encode := cpuOver(window)
	if err := dev.cam.SetEnabled(ctx, false); err != nil {
		b.Fatal(err)
	}

	dev.call(ctx, calling.Video, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	time.Sleep(time.Second)
	one := cpuOver(window)
	mark := dev.eventCount()
	if err := dev.ep.Do(ctx, calling.Hangup{}); err != nil {
		b.Fatal(err)
	}
	dev.wait(ctx, mark, "call end", isCallEnd)

	mark = dev.eventCount()
	dev.call(ctx, calling.Video, "alice", "bob", "carol", "dave")
	for _, s := range softs {
		dev.wait(ctx, mark, s.user+" entering", isEnter(s.user))
	}
	time.Sleep(time.Second)
	four := cpuOver(window)
	rss := rssKB()
	if n := dev.cam.EncodersRunning(); n != 1 {
		b.Errorf("%d encoders for 4 viewers", n)
	}
	b.ReportMetric(encode, "encode-only-cpu%")
	b.ReportMetric(one, "1-viewer-cpu%")
	b.ReportMetric(four, "4-viewers-cpu%")
	b.ReportMetric(rss/1024, "rss-MB")
}
