package voicemsg

import (
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
)

// BenchmarkRecord encodes a 20 s message of a voice-like signal (one op)
// at the daemon's default Opus complexity (audio.mic_complexity 5) and
// libopus' own (10), as Record does, and reports the Ogg bytes a second
// of message and the CPU a second of message costs (cpu-ms/s: the share
// of one core while recording, in thousandths).
func BenchmarkRecord(b *testing.B) {
	const seconds = 20
	voice := audiotest.Voice(seconds*audio.SampleRate, 1)
	for _, c := range []struct {
		name       string
		complexity int
	}{{"complexity5", 5}, {"complexity10", 10}} {
		b.Run(c.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				tk, err := newTake(Config{MaxDuration: seconds * time.Second, Bitrate: 16000, Complexity: c.complexity})
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; !tk.done(); i++ {
					if err := tk.add(voice[i*audio.FrameSamples : (i+1)*audio.FrameSamples]); err != nil {
						b.Fatal(err)
					}
				}
				m, err := tk.message()
				tk.close()
				if err != nil || m.Duration != seconds*time.Second {
					b.Fatalf("%v %v", m.Duration, err)
				}
				size = len(m.Ogg)
			}
			b.ReportMetric(float64(size)/seconds, "bytes/s")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/seconds, "cpu-ms/s")
		})
	}
}
