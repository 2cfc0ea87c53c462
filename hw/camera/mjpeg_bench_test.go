package camera

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"

	"github.com/intercomd/intercomd/hw/camera/tjpeg"
)

// benchMJPEG runs decode over one camera-like JPEG frame (the noisy test
// pattern, quality 85, as a UVC camera's MJPEG) at 640x480 and 1280x720,
// reporting cpu-ns/frame and core-%@30fps as BenchmarkEncode640x480 does.
func benchMJPEG(b *testing.B, decode func(b *testing.B, w, h int) func([]byte) error) {
	for _, size := range [][2]int{{640, 480}, {1280, 720}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			ps, err := newPatternSource(Source{Name: "p", Device: TestPatternDevice, Width: size[0], Height: size[1], FrameRate: 30, PatternNoise: 4})
			if err != nil {
				b.Fatal(err)
			}
			img, release, err := ps.Read()
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
				b.Fatal(err)
			}
			release()
			_ = ps.close()
			data := buf.Bytes()
			dec := decode(b, size[0], size[1])
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			c0 := cpuTime(b)
			for i := 0; i < b.N; i++ {
				if err := dec(data); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime(b) - c0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)*30/1e7, "core-%@30fps")
		})
	}
}

// BenchmarkMJPEGDecodeGo decodes with the standard library's image/jpeg, what
// mediadevices uses for MJPEG cameras (and intercomd without libjpeg-turbo).
func BenchmarkMJPEGDecodeGo(b *testing.B) {
	benchMJPEG(b, func(*testing.B, int, int) func([]byte) error {
		return func(data []byte) error {
			_, err := jpeg.Decode(bytes.NewReader(data))
			return err
		}
	})
}

// BenchmarkMJPEGDecodeTurbo decodes with libjpeg-turbo into the encoder's
// I420, as an MJPEG camera's frames are.
func BenchmarkMJPEGDecodeTurbo(b *testing.B) {
	benchMJPEG(b, func(b *testing.B, w, h int) func([]byte) error {
		d, err := tjpeg.NewDecoder(w, h)
		if err != nil {
			b.Skipf("SKIP: %v", err)
		}
		b.Cleanup(d.Close)
		dst := d.NewFrame()
		return func(data []byte) error { return d.Decode(data, dst) }
	})
}
