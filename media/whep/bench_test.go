package whep_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/intercomd/intercomd/media/whep"
	"github.com/intercomd/intercomd/media/whep/wheptest"
)

// BenchmarkPostToFirstFrame measures, for a pion viewer on loopback, the
// time from the WHEP POST to the arrival of the last packet (the one with
// the marker bit) of the first complete key frame: what a restreamer
// waits before it has a picture to decode. The camera is the test pattern
// at 640x480, 30 fps, encoded by openh264.
//
// cold: nobody else watches, so each session switches the camera on (a new
// encoder) and off again after it. warm: another viewer keeps the camera
// running, so the session waits for the key frame its connection asks for.
//
// Run: go test -run '^$' -bench PostToFirstFrame -benchtime 50x ./media/whep/
func BenchmarkPostToFirstFrame(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			r := newRigSized(b, whep.Options{MaxViewers: 2}, 640, 480, 30)
			tok := token(b, "frigate", time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if mode == "warm" {
				other, err := wheptest.Dial(ctx, r.url, wheptest.Options{Token: tok, Loopback: true})
				if err != nil {
					b.Fatal(err)
				}
				defer other.Close()
				if _, _, err := other.FirstKeyFrame(ctx); err != nil {
					b.Fatal(err)
				}
			}
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				if mode == "cold" {
					// Not timed by hand: only POST to frame counts.
					for r.cam.EncodersRunning() != 0 || r.srv.Viewers() != 0 {
						time.Sleep(5 * time.Millisecond)
					}
				}
				c, err := wheptest.Dial(ctx, r.url, wheptest.Options{Token: tok, Loopback: true})
				if err != nil {
					b.Fatal(err)
				}
				at, _, err := c.FirstKeyFrame(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, at.Sub(c.Posted))
				if status, err := c.Delete(ctx); err != nil || status != http.StatusOK {
					b.Fatalf("DELETE: %d %v", status, err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			p := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.95), "p95-ms")
			b.ReportMetric(p(1), "max-ms")
			b.Logf("%s: POST to first complete key frame over %d sessions: p50 %.1f ms, p95 %.1f ms, max %.1f ms", mode, len(lat), p(0.5), p(0.95), p(1))
		})
	}
}
