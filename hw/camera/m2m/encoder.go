package m2m

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNotEncoder: the device is not a V4L2 memory-to-memory encoder from I420 to the
// wanted format.
var ErrNotEncoder = errors.New("not a V4L2 memory-to-memory encoder")

// Config configures an Encoder.
type Config struct {
	// Device is the encoder's node, such as /dev/video11.
	Device string
	// Format is the encoded fourcc: FourCCH264 (default), or FourCCFWHT for vicodec.
	Format uint32
	// Width, Height and FrameRate of the raw frames.
	Width, Height int
	FrameRate     float64
	// BitRate in bits per second, KeyFrameInterval in frames.
	BitRate, KeyFrameInterval int
	// Timeout bounds the wait for one encoded frame; default 2 s.
	Timeout time.Duration
}

// Frame is one encoded frame.
type Frame struct {
	Data     []byte // the caller's to keep
	KeyFrame bool   // the driver flagged it a key frame
}

type mapped struct {
	mem []byte
}

// Encoder is one open stateful V4L2 encoder. Its methods are not safe for
// concurrent use except ForceKeyFrame and Close, which may be called from any
// goroutine.
type Encoder struct {
	cfg  Config
	fd   int
	card string

	out     []mapped // raw frame buffers (OUTPUT queue)
	outFree []uint32
	cap     []mapped // encoded buffers (CAPTURE queue)

	yStride, cStride, yRows int // layout of a raw buffer the driver asked for

	mu        sync.Mutex
	forceKey  bool
	closed    bool
	seq       int64
	hasForce  bool   // the driver offers V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME
	header    []byte // stream header sent alone (SPS/PPS), prepended to the next frame
	Unapplied []string
}

// Open opens and configures the encoder and starts streaming.
func Open(cfg Config) (*Encoder, error) {
	if cfg.Format == 0 {
		cfg.Format = FourCCH264
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	fd, err := unix.Open(cfg.Device, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: cfg.Device, Err: err}
	}
	e := &Encoder{cfg: cfg, fd: fd}
	if err := e.setup(); err != nil {
		e.release()
		return nil, fmt.Errorf("encoder %s: %w", cfg.Device, err)
	}
	return e, nil
}

// Card returns the driver's card name (VIDIOC_QUERYCAP).
func (e *Encoder) Card() string { return e.card }

// Probe reports whether path is a memory-to-memory encoder from I420 to format, and
// its card name.
func Probe(path string, format uint32) (string, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return probe(fd, format)
}

func probe(fd int, format uint32) (string, error) {
	var c capability
	if err := ioctl(fd, vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
		return "", fmt.Errorf("%w: VIDIOC_QUERYCAP: %v", ErrNotEncoder, err)
	}
	caps := c.Capabilities
	if caps&capDeviceCaps != 0 {
		caps = c.DeviceCaps
	}
	card := cstr(c.Card[:])
	if caps&capVideoM2MMplane == 0 || caps&capStreaming == 0 {
		return card, fmt.Errorf("%w: %s has no multi-planar M2M streaming", ErrNotEncoder, card)
	}
	if !contains(enumFormats(fd, bufTypeCaptureMplane), format) {
		return card, fmt.Errorf("%w: %s does not produce %s", ErrNotEncoder, card, fourCC(format))
	}
	if !contains(enumFormats(fd, bufTypeOutputMplane), FourCCI420) {
		return card, fmt.Errorf("%w: %s does not take I420 (YU12)", ErrNotEncoder, card)
	}
	return card, nil
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// FindH264 returns the first /dev/video* node that is an H.264 encoder from I420,
// or "" when there is none.
func FindH264() (path, card string) { return Find(FourCCH264) }

// Find returns the first /dev/video* node that encodes I420 into format, or "".
func Find(format uint32) (path, card string) {
	nodes, _ := filepath.Glob("/dev/video*")
	for _, n := range nodes {
		if c, err := Probe(n, format); err == nil {
			return n, c
		}
	}
	return "", ""
}

func (e *Encoder) setup() error {
	card, err := probe(e.fd, e.cfg.Format)
	e.card = card
	if err != nil {
		return err
	}
	w, h := uint32(e.cfg.Width), uint32(e.cfg.Height)
	// The encoded side first: the stateful encoder interface derives the raw side
	// from it.
	var f format
	f.Type = bufTypeCaptureMplane
	pix := pixMplane{Width: w, Height: h, PixelFormat: e.cfg.Format, Field: fieldNone, NumPlanes: 1}
	pix.Planes[0].SizeImage = max(w*h*3/2, 512*1024)
	pix.put(&f.Fmt.Raw)
	if err := ioctl(e.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return fmt.Errorf("set encoded format %s %dx%d: %w", fourCC(e.cfg.Format), w, h, err)
	}
	f = format{Type: bufTypeOutputMplane}
	pix = pixMplane{Width: w, Height: h, PixelFormat: FourCCI420, Field: fieldNone, NumPlanes: 1}
	pix.put(&f.Fmt.Raw)
	if err := ioctl(e.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return fmt.Errorf("set raw format I420 %dx%d: %w", w, h, err)
	}
	got := getPixMplane(&f.Fmt.Raw)
	if got.PixelFormat != FourCCI420 || got.NumPlanes != 1 || got.Width != w || got.Height < h {
		return fmt.Errorf("driver offers %s %dx%d in %d planes for raw frames, want I420 %dx%d in one", fourCC(got.PixelFormat), got.Width, got.Height, got.NumPlanes, w, h)
	}
	bpl, size := got.Planes[0].BytesPerLine, got.Planes[0].SizeImage
	if bpl < w {
		bpl = w
	}
	e.yStride, e.cStride = int(bpl), int(bpl/2)
	e.yRows = int(h)
	if rows := int(size) / (e.yStride * 3 / 2); rows > e.yRows {
		e.yRows = rows // the driver pads the luma plane to its alignment
	}
	if e.yStride*e.yRows*3/2 > int(size) {
		return fmt.Errorf("driver's raw buffer of %d bytes is too small for %dx%d (stride %d)", size, w, h, bpl)
	}
	e.setControls()
	if e.cfg.FrameRate > 0 {
		var p streamParm
		p.Type = bufTypeOutputMplane
		// struct v4l2_outputparm: capability, outputmode, timeperframe{num, den}.
		putU32(p.Parm[8:], 1000)
		putU32(p.Parm[12:], uint32(e.cfg.FrameRate*1000+0.5))
		if err := ioctl(e.fd, vidiocSParm, unsafe.Pointer(&p)); err != nil {
			e.Unapplied = append(e.Unapplied, "frame rate")
		}
	}
	if e.out, err = e.mapBuffers(bufTypeOutputMplane, 2); err != nil {
		return fmt.Errorf("raw buffers: %w", err)
	}
	for i := range e.out {
		e.outFree = append(e.outFree, uint32(i))
	}
	if e.cap, err = e.mapBuffers(bufTypeCaptureMplane, 4); err != nil {
		return fmt.Errorf("encoded buffers: %w", err)
	}
	return e.streamOn()
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// setControls applies bit rate, key frame interval, profile and level; what the
// driver does not offer is listed in Unapplied.
func (e *Encoder) setControls() {
	type ctl struct {
		name string
		id   uint32
		v    int32
	}
	ctls := []ctl{
		{"bit rate mode", cidBitrateMode, bitrateModeCBR},
		{"bit rate", cidBitrate, int32(e.cfg.BitRate)},
	}
	if e.cfg.KeyFrameInterval > 0 {
		ctls = append(ctls, ctl{"key frame interval", cidGOPSize, int32(e.cfg.KeyFrameInterval)})
	}
	if e.cfg.Format == FourCCH264 {
		ctls = append(ctls,
			ctl{"H.264 intra period", cidH264IPeriod, int32(e.cfg.KeyFrameInterval)},
			ctl{"H.264 constrained baseline", cidH264Profile, h264ProfileConstrainedBase},
			ctl{"H.264 level 3.1", cidH264Level, h264Level31},
			ctl{"SPS/PPS before every key frame", cidRepeatSeqHeader, 1})
	}
	for _, c := range ctls {
		if c.id == cidH264IPeriod && e.cfg.KeyFrameInterval <= 0 {
			continue
		}
		if c.id == cidBitrate && c.v <= 0 {
			continue
		}
		if err := setCtrl(e.fd, c.id, c.v); err != nil {
			e.Unapplied = append(e.Unapplied, c.name)
		}
	}
	// A button control: setting it on a driver that lacks it fails with EINVAL, so
	// probe it with a harmless query instead of pressing it now.
	e.hasForce = queryCtrl(e.fd, cidForceKeyFrame)
}

func queryCtrl(fd int, id uint32) bool {
	var q [68]byte // struct v4l2_queryctrl: id, type, name[32], min, max, step, default, flags, reserved[2]
	putU32(q[0:], id)
	return ioctl(fd, ioc(iocRead|iocWrite, 36, 68), unsafe.Pointer(&q)) == nil && q[56]&1 == 0 // not V4L2_CTRL_FLAG_DISABLED
}

func (e *Encoder) mapBuffers(typ uint32, n uint32) ([]mapped, error) {
	rb := requestBuffers{Count: n, Type: typ, Memory: memoryMmap}
	if err := ioctl(e.fd, vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return nil, fmt.Errorf("VIDIOC_REQBUFS: %w", err)
	}
	if rb.Count == 0 {
		return nil, errors.New("driver gave no buffers")
	}
	bufs := make([]mapped, rb.Count)
	for i := range bufs {
		var pl [maxPlanes]plane
		b := buffer{Index: uint32(i), Type: typ, Memory: memoryMmap, M: uintptr(unsafe.Pointer(&pl[0])), Length: maxPlanes}
		if err := ioctl(e.fd, vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return bufs, fmt.Errorf("VIDIOC_QUERYBUF %d: %w", i, err)
		}
		mem, err := unix.Mmap(e.fd, int64(uint32(pl[0].M)), int(pl[0].Length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return bufs, fmt.Errorf("mmap buffer %d: %w", i, err)
		}
		bufs[i].mem = mem
	}
	return bufs, nil
}

func (e *Encoder) queue(typ, index, used uint32, ts int64) error {
	pl := [1]plane{{BytesUsed: used, Length: uint32(len(e.bufs(typ)[index].mem))}}
	b := buffer{Index: index, Type: typ, Memory: memoryMmap, Field: fieldNone, M: uintptr(unsafe.Pointer(&pl[0])), Length: 1,
		Timestamp: unix.NsecToTimeval(ts * int64(time.Microsecond))}
	if err := ioctl(e.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return fmt.Errorf("VIDIOC_QBUF: %w", err)
	}
	return nil
}

func (e *Encoder) bufs(typ uint32) []mapped {
	if typ == bufTypeOutputMplane {
		return e.out
	}
	return e.cap
}

// dequeue takes one finished buffer of typ; ok is false when none is ready.
func (e *Encoder) dequeue(typ uint32) (b buffer, used uint32, ok bool, err error) {
	var pl [maxPlanes]plane
	b = buffer{Type: typ, Memory: memoryMmap, M: uintptr(unsafe.Pointer(&pl[0])), Length: maxPlanes}
	if err := ioctl(e.fd, vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return b, 0, false, nil
		}
		return b, 0, false, fmt.Errorf("VIDIOC_DQBUF: %w", err)
	}
	return b, pl[0].BytesUsed, true, nil
}

func (e *Encoder) streamOn() error {
	for i := range e.cap {
		if err := e.queue(bufTypeCaptureMplane, uint32(i), 0, 0); err != nil {
			return err
		}
	}
	for _, t := range []int32{bufTypeOutputMplane, bufTypeCaptureMplane} {
		if err := ioctl(e.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
			return fmt.Errorf("VIDIOC_STREAMON: %w", err)
		}
	}
	return nil
}

// restartCapture stops and restarts the encoded side: the stateful encoder
// interface starts a new stream, with a key frame, after it.
func (e *Encoder) restartCapture() error {
	t := int32(bufTypeCaptureMplane)
	if err := ioctl(e.fd, vidiocStreamOff, unsafe.Pointer(&t)); err != nil {
		return fmt.Errorf("VIDIOC_STREAMOFF: %w", err)
	}
	for i := range e.cap {
		if err := e.queue(bufTypeCaptureMplane, uint32(i), 0, 0); err != nil {
			return err
		}
	}
	if err := ioctl(e.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
		return fmt.Errorf("VIDIOC_STREAMON: %w", err)
	}
	return nil
}

// ForceKeyFrame makes the next frame a key frame.
func (e *Encoder) ForceKeyFrame() {
	e.mu.Lock()
	e.forceKey = true
	e.mu.Unlock()
}

// HasForceKeyFrameControl reports whether the driver offers
// V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME; without it ForceKeyFrame restarts the
// encoded stream.
func (e *Encoder) HasForceKeyFrameControl() bool { return e.hasForce }

// SetBitRate changes the target bit rate from the next frame on.
func (e *Encoder) SetBitRate(bps int) error { return setCtrl(e.fd, cidBitrate, int32(bps)) }

// Encode encodes one frame, an *image.YCbCr in 4:2:0 or 4:2:2 of the configured size,
// and returns it encoded.
func (e *Encoder) Encode(img image.Image) (Frame, error) {
	e.mu.Lock()
	force, closed := e.forceKey, e.closed
	e.forceKey = false
	e.mu.Unlock()
	if closed {
		return Frame{}, os.ErrClosed
	}
	if force {
		if e.hasForce {
			if err := setCtrl(e.fd, cidForceKeyFrame, 1); err != nil {
				return Frame{}, err
			}
		} else if err := e.restartCapture(); err != nil {
			return Frame{}, fmt.Errorf("restart for a key frame: %w", err)
		}
	}
	if err := e.reclaim(); err != nil {
		return Frame{}, err
	}
	deadline := time.Now().Add(e.cfg.Timeout)
	for len(e.outFree) == 0 {
		if err := e.wait(deadline); err != nil {
			return Frame{}, err
		}
		if err := e.reclaim(); err != nil {
			return Frame{}, err
		}
	}
	idx := e.outFree[len(e.outFree)-1]
	e.outFree = e.outFree[:len(e.outFree)-1]
	if err := e.fill(e.out[idx].mem, img); err != nil {
		e.outFree = append(e.outFree, idx)
		return Frame{}, err
	}
	e.seq++
	if err := e.queue(bufTypeOutputMplane, idx, uint32(e.yStride*e.yRows*3/2), e.seq); err != nil {
		return Frame{}, err
	}
	for {
		b, used, ok, err := e.dequeue(bufTypeCaptureMplane)
		if err != nil {
			return Frame{}, err
		}
		if !ok {
			if err := e.wait(deadline); err != nil {
				return Frame{}, err
			}
			continue
		}
		data := append([]byte(nil), e.cap[b.Index].mem[:min(int(used), len(e.cap[b.Index].mem))]...)
		flags := b.Flags
		if err := e.queue(bufTypeCaptureMplane, b.Index, 0, 0); err != nil {
			return Frame{}, err
		}
		if flags&bufFlagError != 0 {
			return Frame{}, errors.New("driver flagged the encoded buffer as corrupt")
		}
		if len(data) == 0 {
			continue
		}
		if e.cfg.Format == FourCCH264 && !hasSlice(data) {
			e.header = append(e.header, data...) // SPS/PPS sent on their own
			continue
		}
		if len(e.header) > 0 {
			data = append(e.header, data...)
			e.header = nil
		}
		return Frame{Data: data, KeyFrame: flags&bufFlagKeyFrame != 0 || e.streamKeyFrame(data)}, nil
	}
}

// streamKeyFrame reads from the stream itself whether a frame is a key frame, for
// drivers that do not flag it: an IDR slice in H.264, the I-frame flag of vicodec's
// FWHT header (big-endian flags at offset 20, V4L2_FWHT_FL_I_FRAME).
func (e *Encoder) streamKeyFrame(data []byte) bool {
	switch e.cfg.Format {
	case FourCCFWHT:
		return len(data) >= 24 && binary.BigEndian.Uint32(data[20:])&(1<<10) != 0
	case FourCCH264:
		for i := 0; i+3 < len(data); i++ {
			if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 && data[i+3]&0x1f == 5 {
				return true
			}
		}
	}
	return false
}

// reclaim takes back the raw buffers the driver has finished reading.
func (e *Encoder) reclaim() error {
	for {
		b, _, ok, err := e.dequeue(bufTypeOutputMplane)
		if err != nil || !ok {
			return err
		}
		e.outFree = append(e.outFree, b.Index)
	}
}

func (e *Encoder) wait(deadline time.Time) error {
	left := time.Until(deadline)
	if left <= 0 {
		return fmt.Errorf("encoder %s: no frame within %s", e.cfg.Device, e.cfg.Timeout)
	}
	fds := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN | unix.POLLOUT}}
	_, err := unix.Poll(fds, int(left/time.Millisecond)+1)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("poll: %w", err)
	}
	if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && fds[0].Revents&(unix.POLLIN|unix.POLLOUT) == 0 {
		return fmt.Errorf("encoder %s: device error (poll %#x)", e.cfg.Device, fds[0].Revents)
	}
	return nil
}

// fill copies img into a raw buffer laid out as the driver asked.
func (e *Encoder) fill(dst []byte, img image.Image) error {
	y, ok := img.(*image.YCbCr)
	if !ok || y.Rect.Dx() != e.cfg.Width || y.Rect.Dy() != e.cfg.Height {
		return fmt.Errorf("frame %T %v: want %dx%d YCbCr", img, img.Bounds(), e.cfg.Width, e.cfg.Height)
	}
	var vstep int // chroma rows per output chroma row
	switch y.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		vstep = 1
	case image.YCbCrSubsampleRatio422:
		vstep = 2
	default:
		return fmt.Errorf("frame subsampling %v: want 4:2:0 or 4:2:2", y.SubsampleRatio)
	}
	w, h := e.cfg.Width, e.cfg.Height
	for r := 0; r < h; r++ {
		copy(dst[r*e.yStride:r*e.yStride+w], y.Y[r*y.YStride:])
	}
	cb := dst[e.yStride*e.yRows:]
	cr := cb[e.cStride*e.yRows/2:]
	for r := 0; r < h/2; r++ {
		src := r * vstep * y.CStride
		copy(cb[r*e.cStride:r*e.cStride+w/2], y.Cb[src:])
		copy(cr[r*e.cStride:r*e.cStride+w/2], y.Cr[src:])
	}
	return nil
}

// hasSlice reports whether an Annex B buffer holds a coded slice (NAL type 1 or 5).
func hasSlice(b []byte) bool {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if t := b[i+3] & 0x1f; t == 1 || t == 5 {
				return true
			}
		}
	}
	return false
}

// Close stops streaming and releases the device.
func (e *Encoder) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	for _, t := range []int32{bufTypeOutputMplane, bufTypeCaptureMplane} {
		_ = ioctl(e.fd, vidiocStreamOff, unsafe.Pointer(&t))
	}
	return e.release()
}

func (e *Encoder) release() error {
	for _, b := range append(e.out, e.cap...) {
		if b.mem != nil {
			_ = unix.Munmap(b.mem)
		}
	}
	e.out, e.cap = nil, nil
	return unix.Close(e.fd)
}
