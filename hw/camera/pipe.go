package camera

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os/exec"
	"sync"

	"github.com/pion/mediadevices/pkg/codec"
)

// RpicamCommand is the command line of a Pi camera module source: rpicam-vid
// (libcamera) writing H.264 to its standard output, with SPS/PPS before every key
// frame (--inline), constrained baseline level 3.1, key frames every intra frames.
func RpicamCommand(width, height int, fps float64, bitRate, intra int) []string {
	return []string{"rpicam-vid", "-t", "0", "-n", "--codec", "h264", "--inline",
		"--profile", "baseline", "--level", "3.1", "--flush",
		"--width", fmt.Sprint(width), "--height", fmt.Sprint(height),
		"--framerate", fmt.Sprint(fps), "--bitrate", fmt.Sprint(bitRate),
		"--intra", fmt.Sprint(max(intra, 1)), "-o", "-"}
}

// pipeSource runs a command that writes an H.264 Annex B stream to its standard
// output and passes its access units through, unencoded: it is both the session's
// capture (close) and its encoder (Read). The pipeline reopens it, and so restarts
// the command, every RetryInterval after it ends.
type pipeSource struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	r      *bufio.Reader
	au     auSplitter
	params paramCache

	closeOnce sync.Once
	waitErr   error
}

func openPipe(src Source) (*pipeSource, error) {
	if len(src.Command) == 0 {
		return nil, errors.New("pipe source without a command")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, src.Command[0], src.Command[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", src.Command[0], err)
	}
	return &pipeSource{cmd: cmd, cancel: cancel, r: bufio.NewReaderSize(out, 256<<10)}, nil
}

// Read is unused: a pipe source gives encoded frames only.
func (s *pipeSource) Read() (image.Image, func(), error) {
	return nil, nil, errors.New("pipe source gives no raw frames")
}

func (s *pipeSource) close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.waitErr = s.cmd.Wait()
	})
	return nil
}

// encoder returns the session's encoder side: the access units of the stream.
func (s *pipeSource) encoder() codec.ReadCloser { return pipeEncoder{s} }

type pipeEncoder struct{ s *pipeSource }

func (e pipeEncoder) Read() ([]byte, func(), error) {
	au, err := e.s.next()
	return au, func() {}, err
}
func (e pipeEncoder) Close() error                        { return nil }
func (e pipeEncoder) Controller() codec.EncoderController { return nil }

// next returns the next access unit, with the latest SPS and PPS before an IDR that
// comes without them (a late joiner can decode from it).
func (s *pipeSource) next() ([]byte, error) {
	for {
		au, err := s.au.next(s.r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = s.close()
				if s.waitErr != nil {
					return nil, fmt.Errorf("%s ended: %w: %w", s.cmd.Path, s.waitErr, io.EOF)
				}
				return nil, fmt.Errorf("%s ended: %w", s.cmd.Path, io.EOF)
			}
			return nil, err
		}
		if au = s.params.frame(au); au != nil {
			return au, nil
		}
	}
}

// paramCache keeps the latest SPS and PPS of a passed-through stream and puts them
// before key frames that come without them, so a late joiner can decode from any
// key frame.
type paramCache struct{ params []byte }

// frame returns au ready to send, or nil when it holds no slice (parameter sets
// alone, which are kept for the next key frame).
func (c *paramCache) frame(au []byte) []byte {
	hasSPS, hasIDR, hasSlice := false, false, false
	for _, t := range nalTypes(au) {
		hasSPS = hasSPS || t == 7
		hasIDR = hasIDR || t == 5
		hasSlice = hasSlice || t == 5 || t == 1
	}
	if hasSPS {
		c.params = paramSets(au)
	}
	switch {
	case !hasSlice:
		return nil
	case hasIDR && !hasSPS && c.params != nil:
		return append(append([]byte(nil), c.params...), au...)
	}
	return au
}

// paramSets returns the SPS and PPS NAL units of an Annex B access unit.
func paramSets(au []byte) []byte {
	var out []byte
	for _, n := range splitNALs(au) {
		if t := n[0] & 0x1f; t == 7 || t == 8 {
			out = append(append(out, 0, 0, 0, 1), n...)
		}
	}
	return out
}

// splitNALs returns the NAL units of an Annex B stream, without start codes.
func splitNALs(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// auSplitter cuts an Annex B byte stream into access units: a new one starts at an
// access unit delimiter, SPS, PPS or SEI after a slice, or at a slice whose
// first_mb_in_slice is 0 after a slice. An access unit is therefore complete when
// the next one's first NAL unit arrives.
type auSplitter struct {
	cur      []byte
	hasSlice bool
	pending  []byte // the NAL unit that began the next access unit
	synced   bool   // the reader is past a start code
}

func (a *auSplitter) next(r *bufio.Reader) ([]byte, error) {
	if a.pending != nil {
		a.cur, a.hasSlice, a.pending = a.pending, isSliceNAL(a.pending), nil
	}
	for {
		nal, err := a.readNAL(r)
		if err != nil {
			if errors.Is(err, io.EOF) && a.hasSlice {
				au := a.cur
				a.cur, a.hasSlice = nil, false
				return au, nil
			}
			return nil, err
		}
		t := nal[4] & 0x1f
		begins := a.hasSlice && (t == 9 || t == 7 || t == 8 || t == 6 ||
			((t == 1 || t == 5) && len(nal) > 5 && nal[5]&0x80 != 0))
		if begins {
			au := a.cur
			a.cur, a.hasSlice, a.pending = nil, false, nal
			return au, nil
		}
		a.cur = append(a.cur, nal...)
		a.hasSlice = a.hasSlice || t == 1 || t == 5
	}
}

func isSliceNAL(n []byte) bool { t := n[4] & 0x1f; return t == 1 || t == 5 }

// readNAL reads one NAL unit and returns it behind a 4-byte start code. It consumes
// the start code that ends the unit, so a.synced says the next call starts in a unit.
func (a *auSplitter) readNAL(r *bufio.Reader) ([]byte, error) {
	zeros := 0
	for !a.synced { // skip to the first start code
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case b == 0:
			zeros++
		case b == 1 && zeros >= 2:
			a.synced = true
		default:
			zeros = 0
		}
	}
	nal := []byte{0, 0, 0, 1}
	zeros = 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			a.synced = false
			if errors.Is(err, io.EOF) && len(nal) > 4 {
				return nal, nil
			}
			return nil, err
		}
		if b == 1 && zeros >= 2 {
			nal = nal[:len(nal)-zeros]
			if len(nal) > 4 {
				return nal, nil
			}
			zeros = 0
			continue
		}
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
		nal = append(nal, b)
	}
}
