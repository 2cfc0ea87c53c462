//go:build kernel

package camera

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera/m2m/m2mtest"
)

func TestCameraEncoderChoice(t *testing.T) {
	node := m2mtest.Vicodec(t)
	if encs := Encoders(); len(encs) != 1 || encs[0].Kind != EncoderOpenH264 {
		t.Errorf("Encoders() = %+v, want only openh264 (vicodec makes no H.264)", encs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// hardware, on a device that cannot make H.264: the source does not start.
	cfg := Config{Sources: []Source{patternSourceConfig("p", 1)}, Encoder: Encoder{Kind: EncoderHardware, Device: node}}
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(ctx)
	p.Close()
	if err == nil || !strings.Contains(err.Error(), "does not produce H264") {
		t.Errorf("encoder hardware on vicodec: Start = %v, want an error saying it does not produce H264", err)
	}

	// auto: falls back to openh264 and says why.
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cfg.Encoder.Kind = EncoderAuto
	p, err = New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sink := newBindSink(t, p, "v")
	if err := p.Start(ctx); err != nil {
		t.Fatalf("encoder auto: Start: %v", err)
	}
	defer p.Close()
	if f := sink.next(ctx, t); !f.key() {
		t.Error("first frame is not a key frame")
	}
	b, _ := os.ReadFile(logs.Name())
	l := string(b)
	if !strings.Contains(l, "hardware encoder does not work: using openh264") || !strings.Contains(l, "encoder=openh264") {
		t.Errorf("log does not say the hardware encoder was refused and openh264 chosen:\n%s", l)
	}
}
