// Package cameratest helps the tests of packages that receive intercomd's video track
// (camera.Pipeline.Track) over WebRTC: it reassembles the H.264 RTP packets into access
// units as a receiver's depacketizer does, and decodes them with a real decoder
// (ffmpeg) into pictures whose test-pattern bar code camera.DecodePattern reads, which
// gives each frame's capture time for latency and frame-rate checks.
//
// It starts no goroutines. An Assembler is used by one goroutine at a time.
package cameratest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os/exec"
	"time"

	"github.com/intercomd/intercomd/hw/camera"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// ErrNoFFmpeg: ffmpeg is not installed (Debian: apt-get install ffmpeg).
var ErrNoFFmpeg = errors.New("ffmpeg not found in PATH")

// Frame is one H.264 access unit as received.
type Frame struct {
	// Data is the access unit in Annex B form (start codes before each NAL unit).
	Data []byte
	// Timestamp is its RTP timestamp; Arrived when its last packet was pushed.
	Timestamp uint32
	Arrived   time.Time
}

// KeyFrame reports whether the frame holds an IDR slice.
func (f Frame) KeyFrame() bool { return camera.IsKeyFrame(f.Data) }

// Assembler turns H.264 RTP packets (RFC 6184, packetization mode 1) into access units:
// it depacketizes each payload and ends a frame at the marker bit. Packets must come in
// order (loopback and in-process tests deliver them so); a frame whose first packets
// were missed comes out damaged, as on a real receiver.
type Assembler struct {
	depack codecs.H264Packet
	cur    []byte
}

// Push adds one packet. It returns the completed frame and true when pkt ends one.
func (a *Assembler) Push(pkt *rtp.Packet) (Frame, bool, error) {
	nal, err := a.depack.Unmarshal(pkt.Payload)
	if err != nil {
		return Frame{}, false, fmt.Errorf("depacketize h264 seq %d: %w", pkt.SequenceNumber, err)
	}
	a.cur = append(a.cur, nal...)
	if !pkt.Marker {
		return Frame{}, false, nil
	}
	f := Frame{Data: a.cur, Timestamp: pkt.Timestamp, Arrived: time.Now()}
	a.cur = nil
	return f, true, nil
}

// RTPReader is what ReadFrames reads; *webrtc.TrackRemote implements it.
type RTPReader interface {
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
}

// ReadFrames reads packets from r until n frames are complete, and returns them. It
// returns early with the frames so far and the error when a read fails; closing the
// PeerConnection makes a blocked read fail.
func ReadFrames(r RTPReader, n int) ([]Frame, error) {
	var a Assembler
	frames := make([]Frame, 0, n)
	for len(frames) < n {
		pkt, _, err := r.ReadRTP()
		if err != nil {
			return frames, fmt.Errorf("read rtp: %w", err)
		}
		f, ok, err := a.Push(pkt)
		if err != nil {
			return frames, err
		}
		if ok {
			frames = append(frames, f)
		}
	}
	return frames, nil
}

// AnnexB concatenates frames into an H.264 elementary stream, as ffmpeg reads with
// `-f h264`. Start it at a key frame.
func AnnexB(frames []Frame) []byte {
	var buf bytes.Buffer
	for _, f := range frames {
		buf.Write(f.Data)
	}
	return buf.Bytes()
}

// DecodeGray decodes frames (starting with a key frame) with ffmpeg into one grey
// picture of width×height per decoded frame; the grey levels are the decoded luma.
// ffmpeg's complaints about the stream are returned as an error along with the
// pictures it did decode.
func DecodeGray(ctx context.Context, frames []Frame, width, height int) ([]*image.Gray, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrNoFFmpeg
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-f", "h264", "-i", "pipe:0",
		"-f", "rawvideo", "-pix_fmt", "gray", "-vsync", "passthrough", "pipe:1")
	cmd.Stdin = bytes.NewReader(AnnexB(frames))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, stderr.Bytes())
	}
	size := width * height
	if size == 0 || len(out)%size != 0 {
		return nil, fmt.Errorf("ffmpeg produced %d bytes, not whole %dx%d pictures", len(out), width, height)
	}
	imgs := make([]*image.Gray, 0, len(out)/size)
	for off := 0; off < len(out); off += size {
		imgs = append(imgs, &image.Gray{Pix: out[off : off+size], Stride: width, Rect: image.Rect(0, 0, width, height)})
	}
	if stderr.Len() > 0 {
		return imgs, fmt.Errorf("ffmpeg decoding errors: %s", stderr.Bytes())
	}
	return imgs, nil
}
