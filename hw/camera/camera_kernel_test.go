//go:build kernel

// These tests need a real V4L2 device: /dev/video0 from the vivid test driver loaded
// with n_devs=1 node_types=0x1, as test/vm/exec provides:
//
//	go test -exec "$PWD/test/vm/exec" -tags kernel ./hw/camera

package camera

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

const vividDevice = "/dev/video0"

func requireVivid(t *testing.T) DeviceInfo {
	t.Helper()
	if _, err := os.Stat(vividDevice); err != nil {
		t.Fatalf("%s missing (%v): run these tests in a guest with vivid loaded (test/vm/exec)", vividDevice, err)
	}
	for _, d := range Devices() {
		if d.Path == vividDevice {
			return d
		}
	}
	t.Fatalf("Devices() does not list %s", vividDevice)
	return DeviceInfo{}
}

func TestKernelDevices(t *testing.T) {
	d := requireVivid(t)
	t.Logf("%s: name %q, bus %q, label %q, %d formats, err %v", d.Path, d.Name, d.BusInfo, d.Label, len(d.Formats), d.Err)
	if d.Err != nil {
		t.Fatalf("reading formats of %s: %v", d.Path, d.Err)
	}
	if d.Name == "" {
		t.Error("no card name")
	}
	i := slices.IndexFunc(d.Formats, func(f Format) bool {
		return f.PixelFormat == PixelFormatYUYV && f.Width == 640 && f.Height == 480
	})
	if i < 0 {
		t.Fatalf("vivid does not list YUYV 640x480: %+v", d.Formats)
	}
	if len(d.Formats[i].FrameRates) == 0 {
		t.Error("no frame rates listed for YUYV 640x480")
	}
	for _, f := range d.Formats {
		if f.PixelFormat == PixelFormatYUYV {
			t.Logf("YUYV %dx%d: %v fps", f.Width, f.Height, f.FrameRates)
		}
	}
}

// bestRate returns the highest frame rate at most want that the device lists for the
// size in YUYV: what VIDIOC_S_PARM settles on.
func bestRate(t *testing.T, d DeviceInfo, w, h int, want float64) float64 {
	t.Helper()
	best := 0.0
	for _, f := range d.Formats {
		if f.PixelFormat == PixelFormatYUYV && f.Width == w && f.Height == h {
			for _, r := range f.FrameRates {
				if r <= want {
					best = max(best, r)
				}
			}
		}
	}
	if best == 0 {
		t.Fatalf("%s lists no YUYV %dx%d rate up to %g fps", d.Path, w, h, want)
	}
	return best
}

// vivid captures at the requested 30 fps (which needs VIDIOC_S_PARM: its default is
// 5 fps) where the size allows it — vivid offers at most 25 fps at 640x480 and 30 at
// 640x360 — and the encoder's output decodes at the captured size.
func TestKernelCaptureEncode(t *testing.T) {
	d := requireVivid(t)
	for _, size := range [][2]int{{640, 480}, {640, 360}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			captureEncode(t, d, size[0], size[1], 30)
		})
	}
}

func captureEncode(t *testing.T, d DeviceInfo, w, h int, fps float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want := bestRate(t, d, w, h, fps)
	var sink *bindSink
	p := startPipeline(ctx, t, Config{Sources: []Source{{
		Name: "vivid", Device: vividDevice, Width: w, Height: h, FrameRate: fps, PixelFormat: PixelFormatYUYV,
	}}}, func(p *Pipeline) { sink = newBindSink(t, p, "vivid") })

	frames := collect(ctx, t, sink.assembler, int(3*want)+1)
	if !frames[0].key() {
		t.Errorf("first frame is not a key frame: NAL types %v", nalTypes(frames[0].data))
	}
	var intervals []time.Duration
	for i := 1; i < len(frames); i++ {
		intervals = append(intervals, frames[i].at.Sub(frames[i-1].at))
	}
	slices.Sort(intervals)
	median := intervals[len(intervals)/2]
	rate := float64(time.Second) / float64(median)
	span := frames[len(frames)-1].at.Sub(frames[0].at)
	t.Logf("%d frames in %s: %.1f fps by median interval, %.1f fps mean; device rate %g fps",
		len(frames), span, rate, float64(len(frames)-1)/span.Seconds(), want)
	if rate < want*0.8 || rate > want*1.2 {
		t.Errorf("capture rate %.1f fps (median interval %s), want %g ±20%% (is VIDIOC_S_PARM applied?)", rate, median, want)
	}
	if n := p.EncodersRunning(); n != 1 {
		t.Errorf("EncodersRunning = %d, want 1", n)
	}

	ffmpeg, ffprobe := requireFFmpeg(t)
	path := writeH264(t, frames)
	if gw, gh, profile := probeSize(ctx, t, ffprobe, path); gw != w || gh != h || profile != "Constrained Baseline" {
		t.Errorf("ffprobe: %dx%d %s, want %dx%d Constrained Baseline", gw, gh, profile, w, h)
	}
	imgs := decodeGray(ctx, t, ffmpeg, path, w, h)
	if len(imgs) != len(frames) {
		t.Errorf("ffmpeg decoded %d frames, %d were sent", len(imgs), len(frames))
	}
	// vivid's pattern is not uniform: the decoded picture has contrast.
	if len(imgs) > 0 {
		lo, hi := 255, 0
		for _, v := range imgs[len(imgs)-1].Pix {
			lo, hi = min(lo, int(v)), max(hi, int(v))
		}
		if hi-lo < 100 {
			t.Errorf("decoded picture is flat (luma %d..%d)", lo, hi)
		}
	}
}

// Opening by card name works; a second source on the same device reports ErrBusy.
func TestKernelOpenErrors(t *testing.T) {
	d := requireVivid(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var sink *bindSink
	startPipeline(ctx, t, Config{Sources: []Source{{Name: "byname", Device: d.Name}}},
		func(p *Pipeline) { sink = newBindSink(t, p, "byname") })
	if f := sink.next(ctx, t); !f.key() {
		t.Error("first frame by name is not a key frame")
	}

	busy, err := New(Config{Sources: []Source{{Device: vividDevice}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Start(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("second open of %s: %v, want ErrBusy", vividDevice, err)
	}
	_ = busy.Close()
}

// An unsupported format reports ErrFormat and leaves the device closed; closing a
// pipeline releases the device, which opens again at once.
func TestKernelReopen(t *testing.T) {
	requireVivid(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 3 {
		p, err := New(Config{Sources: []Source{{Device: vividDevice, PixelFormat: PixelFormatMJPEG}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Start(ctx)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("round %d: vivid has no MJPEG: %v, want ErrFormat", i, err)
		}
		_ = p.Close()

		sink := &bindSink{assembler: newAssembler(), id: "reopen"}
		p, err = New(Config{Sources: []Source{{Device: vividDevice}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Track().Bind(sink); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if f := sink.next(ctx, t); !f.key() {
			t.Errorf("round %d: first frame is not a key frame", i)
		}
		_ = p.Close()
	}
	checkNoPipelineGoroutines(t)
}
