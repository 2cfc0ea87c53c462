//go:build kernel

package camera

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera/tjpeg"
)

// halves is a 640x480 picture, white on the left and black on the right,
// as the JPEG frames an MJPEG camera sends: every other one without Huffman
// tables, as many cameras send them.
func halves(t *testing.T) [][]byte {
	img := image.NewGray(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 320; x++ {
			img.Pix[y*img.Stride+x] = 255
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.Image(toYCbCr(img)), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	return [][]byte{full, withoutDHT(full)}
}

func toYCbCr(g *image.Gray) *image.YCbCr {
	y := image.NewYCbCr(g.Rect, image.YCbCrSubsampleRatio420)
	copy(y.Y, g.Pix)
	for i := range y.Cb {
		y.Cb[i], y.Cr[i] = 128, 128
	}
	return y
}

// withoutDHT drops the Huffman table segments before the start of scan.
func withoutDHT(data []byte) []byte {
	out := append([]byte(nil), data[:2]...)
	for i := 2; i+4 <= len(data); {
		n := int(data[i+2])<<8 | int(data[i+3])
		if data[i+1] == 0xda {
			return append(out, data[i:]...)
		}
		if data[i+1] != 0xc4 {
			out = append(out, data[i:i+2+n]...)
		}
		i += 2 + n
	}
	return out
}

func mean(g *image.Gray, r image.Rectangle) float64 {
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += float64(g.GrayAt(x, y).Y)
			n++
		}
	}
	return sum / n
}

// An MJPEG camera's frames, decoded by libjpeg-turbo and encoded to H.264,
// reach the viewer as the camera's picture.
func TestCameraMJPEG(t *testing.T) {
	ffmpeg, ffprobe := requireFFmpeg(t)
	if err := tjpeg.Load(); err != nil {
		t.Fatalf("%v (scripts/test-deps installs libturbojpeg0)", err)
	}
	loadLoopback(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedLoopbackFormat(ctx, t, fourCCMJPEG, halves(t))
	src := Source{Name: "uvc", Device: loopbackDevice, Width: 640, Height: 480, FrameRate: 30, PixelFormat: PixelFormatMJPEG}
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	p := startPipeline(ctx, t, Config{Sources: []Source{src}, Encoder: Encoder{Kind: EncoderOpenH264}}, func(p *Pipeline) {
		p.log = slog.New(slog.NewTextHandler(logs, nil))
	})
	sink := newBindSink(t, p, "v")
	p.ViewerJoined()
	frames := collect(ctx, t, sink.assembler, 20)
	first := 0
	for first < len(frames) && !frames[first].key() {
		first++
	}
	if first == len(frames) {
		t.Fatal("no key frame in 20 frames after a viewer joined")
	}
	path := writeH264(t, frames[first:])
	if w, h, _ := probeSize(ctx, t, ffprobe, path); w != 640 || h != 480 {
		t.Errorf("ffprobe reads %dx%d", w, h)
	}
	imgs := decodeGray(ctx, t, ffmpeg, path, 640, 480)
	if len(imgs) == 0 {
		t.Fatal("nothing decoded")
	}
	last := imgs[len(imgs)-1]
	if l, r := mean(last, image.Rect(40, 40, 280, 440)), mean(last, image.Rect(360, 40, 600, 440)); l < 200 || r > 40 {
		t.Errorf("the viewer sees %.0f on the left and %.0f on the right, want white and black", l, r)
	}
	if l, _ := os.ReadFile(logs.Name()); !strings.Contains(string(l), "decoder=libjpeg-turbo") {
		t.Errorf("the log does not say libjpeg-turbo decodes:\n%s", l)
	}
}

// A camera that says MJPEG and sends garbage: nothing reaches the viewers and
// the status says why.
func TestCameraMJPEGGarbage(t *testing.T) {
	if err := tjpeg.Load(); err != nil {
		t.Fatalf("%v (scripts/test-deps installs libturbojpeg0)", err)
	}
	loadLoopback(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	garbage := make([][]byte, 8)
	for i := range garbage {
		garbage[i] = bytes.Repeat([]byte{0xff, 0xd8, byte(i), 0x7e}, 2000)
	}
	feedLoopbackFormat(ctx, t, fourCCMJPEG, garbage)
	expectGarbageRefused(ctx, t, PixelFormatMJPEG, "no usable MJPEG")
}
