package camera

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"
)

// ffmpegAsRpicam is a command that behaves as rpicam-vid -t 0 --codec h264 --inline
// -o - does: baseline H.264 with SPS/PPS before every key frame, frames written as
// made (x264 in two slices per frame).
// frames > 0 makes it exit after that many frames, as a camera process dying.
func ffmpegAsRpicam(ffmpeg string, frames int) []string {
	cmd := []string{ffmpeg, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30",
		"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-preset", "ultrafast",
		"-g", "15"}
	if frames > 0 {
		cmd = append(cmd, "-frames:v", fmt.Sprint(frames))
	}
	return append(cmd, "-f", "h264", "-")
}

func TestCameraPipeSourcePassesH264Through(t *testing.T) {
	ffmpeg, ffprobe := requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := Source{Name: "pi", Device: "rpicam", Width: 640, Height: 480, Command: ffmpegAsRpicam(ffmpeg, 0)}
	p := startPipeline(ctx, t, Config{Sources: []Source{src}}, nil)
	sink := newBindSink(t, p, "v")
	frames := collect(ctx, t, sink.assembler, 40)
	keys := 0
	for i, f := range frames {
		if f.key() {
			keys++
			if ts := nalTypes(f.data); ts[0] != 7 {
				t.Errorf("key frame %d starts with NAL type %d, want the SPS before it: %v", i, ts[0], ts)
			}
		}
	}
	if !frames[0].key() || keys < 2 {
		t.Errorf("first frame key %v, %d key frames in 40 (GOP 15)", frames[0].key(), keys)
	}
	if n := p.EncodersRunning(); n != 1 {
		t.Errorf("EncodersRunning = %d, want 1 (the pass-through)", n)
	}
	// A late joiner's first frame: decodable from the second key frame alone.
	second := 1
	for !frames[second].key() {
		second++
	}
	path := writeH264(t, frames[second:])
	if w, h, _ := probeSize(ctx, t, ffprobe, path); w != 640 || h != 480 {
		t.Errorf("ffprobe reads %dx%d from the late joiner's stream", w, h)
	}
	if imgs := decodeGray(ctx, t, ffmpeg, path, 640, 480); len(imgs) != len(frames)-second {
		t.Errorf("ffmpeg decoded %d frames of %d", len(imgs), len(frames)-second)
	}
}

func TestCameraPipeSourceRestartsItsCommand(t *testing.T) {
	ffmpeg, _ := requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := Source{Name: "pi", Device: "rpicam", Width: 640, Height: 480, Command: ffmpegAsRpicam(ffmpeg, 10)}
	p := startPipeline(ctx, t, Config{Sources: []Source{src}, RetryInterval: 300 * time.Millisecond}, nil)
	sink := newBindSink(t, p, "v")
	frames := collect(ctx, t, sink.assembler, 35) // the command made only 10 at a time
	keys := 0
	for _, f := range frames {
		if f.key() {
			keys++
		}
	}
	if keys < 3 {
		t.Errorf("%d key frames in 35 frames of three runs of the command", keys)
	}
	if st := p.Status(); st.EncodersStarted < 4 {
		t.Errorf("EncodersStarted = %d after the command ended three times", st.EncodersStarted)
	}
}

// A stream that sends SPS/PPS only once: later key frames get them put back, and an
// access unit of parameter sets alone is not sent as a frame.
func TestCameraPipeSourceKeepsParameterSets(t *testing.T) {
	sps, pps := []byte{0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f}, []byte{0, 0, 0, 1, 0x68, 0xce, 0x3c}
	idr, p := []byte{0, 0, 1, 0x65, 0x88, 0x84}, []byte{0, 0, 1, 0x41, 0x9a, 0x02}
	var stream []byte
	for _, part := range [][]byte{sps, pps, idr, p, p, idr, p} {
		stream = append(stream, part...)
	}
	s := &pipeSource{r: bufio.NewReader(bytes.NewReader(stream)), cmd: exec.Command("true")}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cancel = func() {}
	var got [][]byte
	for {
		au, err := s.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("next: %v", err)
			}
			break
		}
		got = append(got, nalTypes(au))
	}
	want := [][]byte{{7, 8, 5}, {1}, {1}, {7, 8, 5}, {1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("access units %v, want %v", got, want)
	}
}
