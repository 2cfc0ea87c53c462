package camera

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"
)

// BenchmarkMJPEGDecodeGo decodes one camera-like JPEG frame (the noisy test pattern,
// quality 85, as a UVC camera's MJPEG) with the standard library's image/jpeg, what
// mediadevices uses for MJPEG cameras; cpu-ns/frame and core-%@30fps as in
// BenchmarkEncode640x480.
func BenchmarkMJPEGDecodeGo(b *testing.B) {
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
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			c0 := cpuTime(b)
			for i := 0; i < b.N; i++ {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime(b) - c0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)*30/1e7, "core-%@30fps")
		})
	}
}
