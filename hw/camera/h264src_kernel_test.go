//go:build kernel

package camera

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const loopbackDevice = "/dev/video7"

// feedLoopback writes access units to a v4l2loopback device as a camera that sends
// H.264 would deliver them, one buffer each, at 30 a second, until ctx ends.
func feedLoopback(ctx context.Context, t *testing.T, aus [][]byte) {
	feedLoopbackFormat(ctx, t, 'H'|'2'<<8|'6'<<16|'4'<<24, aus)
}

// feedLoopbackFormat writes compressed frames of fourcc to the loopback, one
// buffer each, at 30 a second, until ctx ends.
func feedLoopbackFormat(ctx context.Context, t *testing.T, fourcc uint32, aus [][]byte) {
	t.Helper()
	f, err := os.OpenFile(loopbackDevice, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// struct v4l2_format, VIDEO_OUTPUT, v4l2_pix_format fourcc 640x480, sizeimage 1 MB.
	var fmtBuf [208]byte
	le := binary.LittleEndian
	le.PutUint32(fmtBuf[0:], 2)
	le.PutUint32(fmtBuf[8:], 640)
	le.PutUint32(fmtBuf[12:], 480)
	le.PutUint32(fmtBuf[16:], fourcc)
	le.PutUint32(fmtBuf[20:], 1)
	le.PutUint32(fmtBuf[28:], 1<<20)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), 0xc0d05605, uintptr(unsafe.Pointer(&fmtBuf))); e != 0 {
		t.Fatalf("VIDIOC_S_FMT on the loopback's output: %v", e)
	}
	// The loopback offers its format to readers once a first buffer is
	// written: written here, so that the camera opens once this returns.
	if _, err := f.Write(aus[0]); err != nil {
		t.Fatalf("write to the loopback: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := f.Write(aus[i%len(aus)]); err != nil {
				return
			}
		}
	}()
	// The next test sets the loopback's format anew: only once this
	// producer has let go of it (ctx ends before cleanups run).
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the loopback feeder did not stop")
		}
	})
}

// h264AccessUnits encodes 60 frames with ffmpeg's libx264 (constrained baseline,
// a key frame every 15) and cuts the stream into access units.
func h264AccessUnits(t *testing.T, ffmpeg string) [][]byte {
	t.Helper()
	out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30",
		"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-preset", "ultrafast",
		"-g", "15", "-frames:v", "60", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	var a auSplitter
	r := bufio.NewReader(bytes.NewReader(out))
	var aus [][]byte
	for {
		au, err := a.next(r)
		if err != nil {
			break
		}
		aus = append(aus, au)
	}
	if len(aus) != 60 {
		t.Fatalf("%d access units from 60 frames", len(aus))
	}
	return aus
}

// loadLoopback loads v4l2loopback as loopbackDevice.
func loadLoopback(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("modprobe", "v4l2loopback", "video_nr=7", "max_buffers=4").CombinedOutput(); err != nil {
		t.Fatalf("modprobe v4l2loopback: %v\n%s", err, out)
	}
}

func TestCameraH264Passthrough(t *testing.T) {
	ffmpeg, ffprobe := requireFFmpeg(t)
	loadLoopback(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feedLoopback(ctx, t, h264AccessUnits(t, ffmpeg))
	src := Source{Name: "uvc", Device: loopbackDevice, Width: 640, Height: 480, FrameRate: 30, PixelFormat: PixelFormatH264}
	p := startPipeline(ctx, t, Config{Sources: []Source{src}}, nil)
	sink := newBindSink(t, p, "v")
	p.ViewerJoined() // no such control on the loopback: the next periodic key frame serves
	frames := collect(ctx, t, sink.assembler, 45)
	first := 0
	for !frames[first].key() {
		first++
	}
	if first > 15 {
		t.Errorf("first key frame after %d frames (GOP 15)", first)
	}
	path := writeH264(t, frames[first:])
	if w, h, _ := probeSize(ctx, t, ffprobe, path); w != 640 || h != 480 {
		t.Errorf("ffprobe reads %dx%d", w, h)
	}
	if imgs := decodeGray(ctx, t, ffmpeg, path, 640, 480); len(imgs) != len(frames)-first {
		t.Errorf("ffmpeg decoded %d of %d frames", len(imgs), len(frames)-first)
	}
	if n := p.EncodersRunning(); n != 1 {
		t.Errorf("EncodersRunning = %d", n)
	}
}

// A camera that says it sends H.264 and sends garbage: nothing reaches the viewers,
// the status says why, and the pipeline keeps retrying.
func TestCameraH264Garbage(t *testing.T) {
	loadLoopback(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	garbage := make([][]byte, 8)
	for i := range garbage {
		garbage[i] = bytes.Repeat([]byte{0xa5, byte(i), 0x3c, 0x7e}, 2000)
	}
	feedLoopback(ctx, t, garbage)
	expectGarbageRefused(ctx, t, PixelFormatH264, "no H.264")
}

// expectGarbageRefused runs a pipeline on the loopback (fed with garbage) in
// format pf: nothing reaches the viewers, the status says why (the error
// contains why) and the pipeline keeps retrying.
func expectGarbageRefused(ctx context.Context, t *testing.T, pf PixelFormat, why string) {
	t.Helper()
	src := Source{Name: "uvc", Device: loopbackDevice, Width: 640, Height: 480, FrameRate: 30, PixelFormat: pf}
	p := startPipeline(ctx, t, Config{Sources: []Source{src}, RetryInterval: 200 * time.Millisecond}, nil)
	sink := newBindSink(t, p, "v")
	for {
		st := p.Status()
		if st.Err != nil && strings.Contains(st.Err.Error(), why) && st.EncodersStarted >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("status never reported the garbage (last %+v)", p.Status())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := sink.drain(); n != 0 {
		t.Errorf("%d frames of garbage reached the viewer", n)
	}
}
