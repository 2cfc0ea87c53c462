package voicemsg_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/voicemsg"
)

// voiceSource is a microphone saying audiotest.Voice over and over.
type voiceSource struct {
	pcm []int16
	pos int
}

func (v *voiceSource) Read(p []int16) {
	for i := range p {
		p[i] = v.pcm[v.pos]
		v.pos = (v.pos + 1) % len(v.pcm)
	}
}

// BenchmarkRecordOnNullDevice records a 5 s message (one op) in real time
// through an audio engine on the null device, whose microphone is a
// voice-like signal, and reports the process's CPU a second of message
// (cpu-ms/s: the engine's frames and the recorder's encoding together,
// user and system time) and the message's bytes a second; "engine" is the
// engine alone, running for a tap that does nothing.
//
//	go test -run XXX -bench RecordOnNullDevice -benchtime 3x ./voicemsg
func BenchmarkRecordOnNullDevice(b *testing.B) {
	const seconds = 5
	src := &voiceSource{pcm: voiceSamples()}
	e, err := audio.New(audio.Config{Backend: audio.BackendNull, Source: src, Complexity: 5})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if err := e.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Run("engine", func(b *testing.B) {
		// The engine running for a consumer that does nothing: what any
		// recording costs before encoding.
		var cpu time.Duration
		for b.Loop() {
			before := rusage(b)
			frames := make(chan struct{}, 1000)
			e.OnCapture(func([]int16) { frames <- struct{}{} })
			for range seconds * 50 {
				<-frames
			}
			e.OnCapture(nil)
			cpu += rusage(b) - before
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N)/seconds, "cpu-ms/s")
	})
	b.Run("record", func(b *testing.B) {
		var cpu time.Duration
		var size int
		for b.Loop() {
			before := rusage(b)
			m, err := voicemsg.Record(b.Context(), e, voicemsg.Config{Greeting: make([]int16, audio.FrameSamples),
				MaxDuration: seconds * time.Second, Complexity: 5})
			if err != nil || m.Duration != seconds*time.Second {
				b.Fatalf("%v %v", m.Duration, err)
			}
			cpu += rusage(b) - before
			size = len(m.Ogg)
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N)/seconds, "cpu-ms/s")
		b.ReportMetric(float64(size)/seconds, "bytes/s")
	})
}

func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// voiceSamples is 3 s of audiotest.Voice.
func voiceSamples() []int16 { return audiotest.Voice(3*audio.SampleRate, 1) }
