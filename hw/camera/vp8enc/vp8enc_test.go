package vp8enc_test

import (
	"image"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera/vp8enc"
)

func frame(w, h int, shade byte) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = byte(i%w) + shade
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 128, 128
	}
	return img
}

// isKey reads a VP8 frame's tag (RFC 6386 9.1): a key frame has bit 0
// clear and the start code 9d 01 2a, then its width and height.
func isKey(f []byte) (key bool, w, h int) {
	if len(f) < 10 || f[0]&1 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return false, 0, 0
	}
	return true, int(f[6]) | int(f[7]&0x3f)<<8, int(f[8]) | int(f[9]&0x3f)<<8
}

// The first frame is a key frame of the configured size, the next ones are
// not, and a forced one is.
func TestEncodeKeyFrames(t *testing.T) {
	enc, err := vp8enc.New(vp8enc.Config{Width: 160, Height: 120, FrameRate: 30, BitRate: 300_000, KeyFrameInterval: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for i := range 6 {
		force := i == 4
		data, key, err := enc.Encode(frame(160, 120, byte(i*3)), time.Second/30, force)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		k, w, h := isKey(data)
		if want := i == 0 || force; key != want || k != want {
			t.Errorf("frame %d: key %v (tag says %v), want %v", i, key, k, want)
		}
		if k && (w != 160 || h != 120) {
			t.Errorf("frame %d: key frame of %dx%d, want 160x120", i, w, h)
		}
	}
	if err := enc.SetBitRate(200_000); err != nil {
		t.Errorf("set bit rate: %v", err)
	}
	enc.Close()
	if _, _, err := enc.Encode(frame(160, 120, 0), time.Second/30, false); err == nil {
		t.Error("a closed encoder encodes")
	}
}

// Bad settings and frames that do not fit are errors that name the fault.
func TestBadInput(t *testing.T) {
	for _, c := range []struct {
		cfg  vp8enc.Config
		want string
	}{
		{vp8enc.Config{Width: 161, Height: 120, FrameRate: 30, BitRate: 1e5}, "size"},
		{vp8enc.Config{Width: 160, Height: 120, BitRate: 1e5}, "frame rate"},
		{vp8enc.Config{Width: 160, Height: 120, FrameRate: 30, BitRate: 1e5, Speed: 17}, "speed"},
	} {
		if _, err := vp8enc.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", c.cfg, err, c.want)
		}
	}
	enc, err := vp8enc.New(vp8enc.Config{Width: 160, Height: 120, FrameRate: 30, BitRate: 1e5})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if _, _, err := enc.Encode(frame(320, 240, 0), time.Second/30, false); err == nil {
		t.Error("a frame of another size was encoded")
	}
	if _, _, err := enc.Encode(image.NewYCbCr(image.Rect(0, 0, 160, 120), image.YCbCrSubsampleRatio422), time.Second/30, false); err == nil {
		t.Error("a 4:2:2 frame was encoded")
	}
}
