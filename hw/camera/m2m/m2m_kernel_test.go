//go:build kernel

package m2m_test

import (
	"image"
	"os"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera/m2m"
	"github.com/intercomd/intercomd/hw/camera/m2m/m2mtest"
)

func testFrame(w, h, n int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Y[y*img.YStride+x] = byte(x + y + 4*n)
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = byte(i+n), byte(255-i)
	}
	return img
}

func TestCameraM2MVicodec(t *testing.T) {
	dev := m2mtest.Vicodec(t)
	cfg := m2m.Config{Device: dev, Format: m2m.FourCCFWHT, Width: 640, Height: 480, FrameRate: 30,
		BitRate: 1_000_000, KeyFrameInterval: 10, Timeout: 20 * time.Second}
	for round := 0; round < 2; round++ { // the second round checks stop and restart
		enc, err := m2m.Open(cfg)
		if err != nil {
			t.Fatalf("round %d: open %s: %v", round, dev, err)
		}
		t.Logf("round %d: %s (%s), force-key-frame control %v, not applied: %v", round, dev, enc.Card(), enc.HasForceKeyFrameControl(), enc.Unapplied)
		var keys []int
		for i := 0; i < 25; i++ {
			if i == 13 {
				enc.ForceKeyFrame()
			}
			f, err := enc.Encode(testFrame(640, 480, i))
			if err != nil {
				t.Fatalf("round %d: frame %d: %v", round, i, err)
			}
			if len(f.Data) < 16 {
				t.Fatalf("round %d: frame %d: %d bytes", round, i, len(f.Data))
			}
			if f.KeyFrame {
				keys = append(keys, i)
			}
		}
		t.Logf("round %d: key frames at %v", round, keys)
		want := map[int]bool{0: true, 10: true, 13: true}
		for k := range want {
			found := false
			for _, g := range keys {
				found = found || g == k
			}
			if !found {
				t.Errorf("round %d: no key frame at frame %d (GOP 10, forced at 13): key frames at %v", round, k, keys)
			}
		}
		if err := enc.Close(); err != nil {
			t.Errorf("round %d: close: %v", round, err)
		}
		if _, err := enc.Encode(testFrame(640, 480, 0)); err == nil {
			t.Errorf("round %d: encode after close succeeded", round)
		}
	}
}

func TestCameraM2MRefusesNonEncoders(t *testing.T) {
	m2mtest.Vicodec(t)
	// vivid's webcam is a capture device, not a codec.
	if _, err := m2m.Probe("/dev/video0", m2m.FourCCH264); err == nil {
		t.Error("vivid's /dev/video0 accepted as an H.264 encoder")
	}
	if _, err := m2m.Probe("/dev/does-not-exist", m2m.FourCCH264); !os.IsNotExist(err) {
		t.Errorf("missing node: %v, want not-exist", err)
	}
}
