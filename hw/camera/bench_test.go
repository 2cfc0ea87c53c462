package camera

import (
	"image"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/io/video"
)

// cpuTime returns the user plus system CPU time of the process so far, openh264's own
// threads included.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncode640x480 encodes 640x480 frames with the pipeline's encoder settings
// (openh264, 1 Mbit/s, no frame skipping so every frame is encoded), as fast as it can:
//
//   - pattern: the moving test pattern, an easy picture (drawing included, see
//     BenchmarkPatternDraw);
//   - noisy: the pattern with sensor-like noise (±6 luma levels, fresh each frame), closer
//     to what a real camera costs;
//   - vp8-pattern, vp8-noisy: the same pictures through the second encoder, VP8 (libvpx,
//     real-time, 1 Mbit/s), which runs beside openh264 while a phone without H.264 watches.
//
// ns/op is the wall time per frame; cpu-ns/frame the process CPU time per frame (user
// plus system, openh264's threads included), which the daemon's CPU use at 30 fps is
// compared against; core-%@30fps the share of one core that 30 frames a second need.
func BenchmarkEncode640x480(b *testing.B) {
	b.Run("pattern", func(b *testing.B) { benchmarkEncode(b, 0, false) })
	b.Run("noisy", func(b *testing.B) { benchmarkEncode(b, 6, false) })
	b.Run("vp8-pattern", func(b *testing.B) { benchmarkEncode(b, 0, true) })
	b.Run("vp8-noisy", func(b *testing.B) { benchmarkEncode(b, 6, true) })
}

func benchmarkEncode(b *testing.B, noise int, vp8 bool) {
	p, err := New(Config{
		Sources: []Source{patternSourceConfig("bench", 0)},
		Encoder: Encoder{SteadyFrameRate: true},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := p.cfg.Sources[0]
	ps, err := newPatternSource(src)
	if err != nil {
		b.Fatal(err)
	}
	defer ps.close()
	var reader video.Reader = video.ReaderFunc(func() (image.Image, func(), error) {
		ps.draw(time.Now())
		ps.frame++
		return ps.img, func() {}, nil
	})
	if noise > 0 {
		// Precomputed noisy frames, cycled: each differs from the previous one by noise.
		rng := rand.New(rand.NewPCG(1, 2))
		var frames []*image.YCbCr
		for range 8 {
			ps.draw(time.Now())
			ps.frame++
			f := *ps.img
			f.Y = append([]byte(nil), ps.img.Y...)
			f.Cb = append([]byte(nil), ps.img.Cb...)
			f.Cr = append([]byte(nil), ps.img.Cr...)
			for i, v := range f.Y {
				f.Y[i] = byte(min(max(int(v)+rng.IntN(2*noise+1)-noise, 0), 255))
			}
			frames = append(frames, &f)
		}
		n := 0
		reader = video.ReaderFunc(func() (image.Image, func(), error) {
			n++
			return frames[n%len(frames)], func() {}, nil
		})
	}
	newEncoder := p.newEncoder
	if vp8 {
		newEncoder = func(r video.Reader, src Source) (codec.ReadCloser, error) {
			enc, err := p.newVP8(r, src, src.Width, src.Height)
			if err == nil {
				// Frames as a camera gives them, 1/30 s apart, for the rate
				// control (openh264 assumes the configured frame rate).
				t := time.Now()
				enc.(*vp8Reader).now = func() time.Time { t = t.Add(time.Second / 30); return t }
			}
			return enc, err
		}
	}
	enc, err := newEncoder(reader, src)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	for range 10 { // past the first key frame and the encoder's warm-up
		if _, _, err := enc.Read(); err != nil {
			b.Fatal(err)
		}
	}

	var bytes int
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		data, release, err := enc.Read()
		if err != nil {
			b.Fatal(err)
		}
		bytes += len(data)
		release()
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	perFrame := float64(cpu) / float64(b.N)
	b.ReportMetric(perFrame, "cpu-ns/frame")
	b.ReportMetric(perFrame*30/float64(time.Second)*100, "core-%@30fps")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/frame")
}

// BenchmarkPatternDraw measures drawing one 640x480 test pattern frame.
func BenchmarkPatternDraw(b *testing.B) {
	ps, err := newPatternSource(patternSourceConfig("bench", 0))
	if err != nil {
		b.Fatal(err)
	}
	defer ps.close()
	now := time.Now()
	for b.Loop() {
		ps.draw(now)
		ps.frame++
	}
}
