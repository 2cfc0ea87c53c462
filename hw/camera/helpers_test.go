package camera

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// frame is one access unit reassembled from the track's RTP packets.
type frame struct {
	data []byte    // Annex B
	at   time.Time // when its last packet arrived
}

func (f frame) key() bool { return IsKeyFrame(f.data) }

func (f frame) hash() [32]byte { return sha256.Sum256(f.data) }

// assembler turns the track's H.264 RTP packets back into access units, as a receiver
// does: depacketize, append until the marker bit.
type assembler struct {
	mu     sync.Mutex
	depack codecs.H264Packet
	cur    []byte
	out    chan frame
}

func newAssembler() *assembler { return &assembler{out: make(chan frame, 4096)} }

func (a *assembler) push(h *rtp.Header, payload []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	nal, err := a.depack.Unmarshal(payload)
	if err != nil {
		return fmt.Errorf("depacketize h264: %w", err)
	}
	a.cur = append(a.cur, nal...)
	if h.Marker {
		select {
		case a.out <- frame{data: a.cur, at: time.Now()}:
		default:
			return fmt.Errorf("test receiver overflow")
		}
		a.cur = nil
	}
	return nil
}

// next waits for the next frame.
func (a *assembler) next(ctx context.Context, t *testing.T) frame {
	t.Helper()
	select {
	case f := <-a.out:
		return f
	case <-ctx.Done():
		t.Fatalf("no video frame: %v", ctx.Err())
		return frame{}
	}
}

// drain discards the frames received so far and returns how many there were.
func (a *assembler) drain() int { return len(a.pending()) }

// pending returns the frames received so far and not yet read.
func (a *assembler) pending() []frame {
	var fs []frame
	for {
		select {
		case f := <-a.out:
			fs = append(fs, f)
		default:
			return fs
		}
	}
}

// bindSink binds the pipeline's track to an in-process receiver, as a PeerConnection's
// sender would: same Bind, same packetizer, same fan-out.
type bindSink struct {
	*assembler
	id string
}

func (s *bindSink) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{CodecParameters(102)}
}
func (s *bindSink) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (s *bindSink) SSRC() webrtc.SSRC                                      { return 1234 }
func (s *bindSink) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (s *bindSink) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (s *bindSink) WriteStream() webrtc.TrackLocalWriter                   { return s }
func (s *bindSink) ID() string                                             { return s.id }
func (s *bindSink) RTCPReader() interceptor.RTCPReader                     { return nil }

func (s *bindSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return len(payload), s.push(h, payload)
}

func (s *bindSink) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return len(b), s.push(&p.Header, p.Payload)
}

func newBindSink(t *testing.T, p *Pipeline, id string) *bindSink {
	t.Helper()
	s := &bindSink{assembler: newAssembler(), id: id}
	if _, err := p.Track().Bind(s); err != nil {
		t.Fatalf("bind track: %v", err)
	}
	t.Cleanup(func() { _ = p.Track().Unbind(s) })
	return s
}

// startPipeline builds and starts a pipeline, closing it and checking for leaked
// goroutines at the end of the test.
func startPipeline(ctx context.Context, t *testing.T, cfg Config, beforeStart func(*Pipeline)) *Pipeline {
	t.Helper()
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if beforeStart != nil {
		beforeStart(p)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := p.EncodersRunning(); n != 0 {
			t.Errorf("EncodersRunning after Close = %d, want 0", n)
		}
		checkNoPipelineGoroutines(t)
	})
	if err := p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

func patternSourceConfig(name string, seed uint16) Source {
	return Source{Name: name, Device: TestPatternDevice, Width: 640, Height: 480, FrameRate: 30, PatternSeed: seed}
}

// checkNoPipelineGoroutines fails if goroutines running this package's code remain,
// waiting a while for ones that are finishing.
func checkNoPipelineGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, line := range strings.Split(g, "\n") {
				line = strings.TrimSpace(line)
				if strings.Contains(line, "/hw/camera/") && !strings.Contains(line, "_test.go") {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of hw/camera still running:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireFFmpeg returns the paths of ffmpeg and ffprobe, skipping the test loudly when
// they are missing, or failing it when CI=true.
func requireFFmpeg(t *testing.T) (ffmpeg, ffprobe string) {
	t.Helper()
	ffmpeg, err1 := exec.LookPath("ffmpeg")
	ffprobe, err2 := exec.LookPath("ffprobe")
	if err1 != nil || err2 != nil {
		msg := "ffmpeg/ffprobe not installed (apt-get install -y ffmpeg): cannot decode the H.264 output with a real decoder"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return ffmpeg, ffprobe
}

// writeH264 writes frames as an Annex B elementary stream.
func writeH264(t *testing.T, frames []frame) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.h264")
	var buf bytes.Buffer
	for _, f := range frames {
		buf.Write(f.data)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// probeSize returns the coded picture size ffprobe reads from an H.264 file.
func probeSize(ctx context.Context, t *testing.T, ffprobe, path string) (w, h int, profile string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-f", "h264", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,profile", "-of", "default=noprint_wrappers=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "width":
			w, _ = strconv.Atoi(v)
		case "height":
			h, _ = strconv.Atoi(v)
		case "profile":
			profile = v
		}
	}
	return w, h, profile
}

// decodeGray decodes an H.264 file with ffmpeg into grey pictures of w×h.
func decodeGray(ctx context.Context, t *testing.T, ffmpeg, path string, w, h int) []*image.Gray {
	t.Helper()
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-f", "h264", "-i", path,
		"-f", "rawvideo", "-pix_fmt", "gray", "-vsync", "passthrough", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffmpeg reported decoding errors:\n%s", stderr.String())
	}
	size := w * h
	if len(out)%size != 0 {
		t.Fatalf("ffmpeg produced %d bytes, not a multiple of %dx%d", len(out), w, h)
	}
	var imgs []*image.Gray
	for off := 0; off < len(out); off += size {
		imgs = append(imgs, &image.Gray{Pix: out[off : off+size], Stride: w, Rect: image.Rect(0, 0, w, h)})
	}
	return imgs
}

// collect returns the frames received until n have arrived.
func collect(ctx context.Context, t *testing.T, a *assembler, n int) []frame {
	t.Helper()
	frames := make([]frame, 0, n)
	for len(frames) < n {
		frames = append(frames, a.next(ctx, t))
	}
	return frames
}
