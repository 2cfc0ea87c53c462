package tjpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"testing"
)

// need skips without libjpeg-turbo outside CI and fails in CI, where
// scripts/test-deps installs libturbojpeg0.
func need(t testing.TB) {
	t.Helper()
	if err := Load(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (scripts/test-deps installs libturbojpeg0)", err)
		}
		t.Skipf("SKIP: %v: install libturbojpeg0", err)
	}
}

// picture is a camera-like frame: smooth colour gradients and sharp edges.
func picture(w, h int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio444)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.YOffset(x, y)
			img.Y[i] = byte(40 + 170*x/w)
			if (x/16+y/16)%5 == 0 {
				img.Y[i] = 235
			}
			img.Cb[i] = byte(60 + 130*y/h)
			img.Cr[i] = byte(200 - 140*x/w)
		}
	}
	return img
}

func encode(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ffmpegJPEG encodes a test picture with ffmpeg in the given pixel format
// (yuvj422p, yuvj444p, yuvj420p), as cameras' MJPEG comes in.
func ffmpegJPEG(t *testing.T, pixFmt string, w, h int) []byte {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg missing (scripts/test-deps installs it)")
		}
		t.Skip("SKIP: ffmpeg missing")
	}
	out, err := exec.Command(ff, "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d", w, h),
		"-frames:v", "1", "-pix_fmt", pixFmt, "-q:v", "3", "-f", "mjpeg", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v", pixFmt, err)
	}
	return out
}

// compare checks got (I420) against what the standard library decodes from
// the same JPEG, sample by sample, chroma taken at the same places: the two
// decoders' IDCTs and upsampling differ by a few levels at most.
func compare(t *testing.T, data []byte, got *image.YCbCr) {
	t.Helper()
	ref, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	b := got.Bounds()
	var sum, n, csum, cn float64
	worst := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var ry, rcb, rcr uint8
			switch r := ref.(type) {
			case *image.YCbCr:
				c := r.YCbCrAt(x, y)
				ry, rcb, rcr = c.Y, c.Cb, c.Cr
			case *image.Gray:
				ry, rcb, rcr = r.GrayAt(x, y).Y, 128, 128
			default:
				t.Fatalf("image/jpeg gave %T", ref)
			}
			c := got.YCbCrAt(x, y)
			d := absDiff(c.Y, ry)
			sum += float64(d)
			n++
			worst = max(worst, d)
			csum += float64(absDiff(c.Cb, rcb) + absDiff(c.Cr, rcr))
			cn += 2
		}
	}
	if mean := sum / n; mean > 1.5 || worst > 40 || math.IsNaN(mean) {
		t.Fatalf("luma differs from image/jpeg by %.2f on average, %d at worst", mean, worst)
	}
	// Chroma is reduced to 4:2:0 here and upsampled there: at colour edges
	// they differ, on average little.
	if mean := csum / cn; mean > 3 {
		t.Fatalf("chroma differs from image/jpeg by %.2f on average", mean)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func decode(t *testing.T, data []byte, w, h int) *image.YCbCr {
	t.Helper()
	d, err := NewDecoder(w, h)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dst := d.NewFrame()
	if err := d.Decode(data, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestDecodeSubsamplings(t *testing.T) {
	need(t)
	t.Run("420 from Go", func(t *testing.T) {
		data := encode(t, picture(640, 480))
		compare(t, data, decode(t, data, 640, 480))
	})
	t.Run("odd size", func(t *testing.T) {
		data := encode(t, picture(321, 241))
		compare(t, data, decode(t, data, 321, 241))
	})
	t.Run("gray", func(t *testing.T) {
		g := image.NewGray(image.Rect(0, 0, 64, 48))
		for i := range g.Pix {
			g.Pix[i] = byte(i)
		}
		data := encode(t, g)
		got := decode(t, data, 64, 48)
		compare(t, data, got)
		if got.Cb[0] != 128 || got.Cr[len(got.Cr)-1] != 128 {
			t.Fatal("a grey picture has colour")
		}
	})
	for _, pf := range []string{"yuvj422p", "yuvj444p", "yuvj420p"} {
		t.Run(pf, func(t *testing.T) {
			data := ffmpegJPEG(t, pf, 1280, 720)
			compare(t, data, decode(t, data, 1280, 720))
		})
	}
}

// Motion JPEG frames from cameras often carry no Huffman tables.
func TestDecodeWithoutHuffmanTables(t *testing.T) {
	need(t)
	data := encode(t, picture(320, 240))
	stripped := stripSegments(data, 0xc4)
	if len(stripped) == len(data) {
		t.Fatal("no DHT segment to strip")
	}
	if _, err := jpeg.Decode(bytes.NewReader(stripped)); err == nil {
		t.Fatal("image/jpeg decodes a frame without Huffman tables: the test proves nothing")
	}
	compare(t, data, decode(t, stripped, 320, 240))
}

// stripSegments removes every marker segment of type marker before the
// start of scan.
func stripSegments(data []byte, marker byte) []byte {
	out := append([]byte(nil), data[:2]...)
	for i := 2; i+4 <= len(data); {
		m := data[i+1]
		n := int(data[i+2])<<8 | int(data[i+3])
		if m == 0xda {
			return append(out, data[i:]...)
		}
		if m != marker {
			out = append(out, data[i:i+2+n]...)
		}
		i += 2 + n
	}
	return out
}

func TestDecodeBadFrames(t *testing.T) {
	need(t)
	d, err := NewDecoder(320, 240)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dst := d.NewFrame()
	good := encode(t, picture(320, 240))
	if err := d.Decode(encode(t, picture(640, 480)), dst); !errors.Is(err, ErrSize) {
		t.Fatalf("a frame of another size: %v, want ErrSize", err)
	}
	for name, data := range map[string][]byte{
		"empty":   nil,
		"garbage": bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000),
		"header":  good[:20],
	} {
		if err := d.Decode(data, dst); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// A frame cut short (a USB camera dropping the end) decodes as far as it
	// goes: the top of the picture is there.
	if err := d.Decode(good[:len(good)*2/3], dst); err != nil {
		t.Fatalf("truncated frame: %v", err)
	}
	if c := dst.YCbCrAt(300, 5); absDiff(c.Y, color.YCbCrModel.Convert(picture(320, 240).At(300, 5)).(color.YCbCr).Y) > 40 {
		t.Fatalf("truncated frame's top row reads %d", c.Y)
	}
	// And the decoder still works.
	if err := d.Decode(good, dst); err != nil {
		t.Fatal(err)
	}
	compare(t, good, dst)
	if err := d.Decode(good, image.NewYCbCr(image.Rect(0, 0, 320, 240), image.YCbCrSubsampleRatio422)); err == nil {
		t.Fatal("decoded into a 4:2:2 frame")
	}
	d.Close()
	if err := d.Decode(good, dst); err == nil {
		t.Fatal("decoded after Close")
	}
}
