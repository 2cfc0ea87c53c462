package m2m

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	bufTypeCapture  = 1 // V4L2_BUF_TYPE_VIDEO_CAPTURE
	capVideoCapture = 0x00000001
)

// Capture reads compressed frames (such as H.264 from a UVC camera that encodes
// itself) from a single-planar V4L2 capture device, one frame per buffer. Its
// methods are not safe for concurrent use, except Close.
type Capture struct {
	dev      string
	fd       int
	bufs     [][]byte
	hasForce bool
	timeout  time.Duration

	mu     sync.Mutex // held while a buffer is in use; Close waits for it
	closed bool
}

// OpenCapture opens dev and starts streaming format at width x height.
func OpenCapture(dev string, fourcc uint32, width, height int, fps float64) (*Capture, error) {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dev, Err: err}
	}
	c := &Capture{dev: dev, fd: fd, timeout: 5 * time.Second}
	if err := c.setup(fourcc, width, height, fps); err != nil {
		c.release()
		return nil, fmt.Errorf("camera %s: %w", dev, err)
	}
	return c, nil
}

func (c *Capture) setup(fourcc uint32, width, height int, fps float64) error {
	var f format
	f.Type = bufTypeCapture
	le := binary.LittleEndian
	le.PutUint32(f.Fmt.Raw[0:], uint32(width))
	le.PutUint32(f.Fmt.Raw[4:], uint32(height))
	le.PutUint32(f.Fmt.Raw[8:], fourcc)
	le.PutUint32(f.Fmt.Raw[12:], fieldNone)
	if err := ioctl(c.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		// A device whose format is fixed by its producer (a loopback being written
		// to) refuses to change it: take it if it is the one wanted.
		if !errors.Is(err, unix.EBUSY) || ioctl(c.fd, vidiocGFmt, unsafe.Pointer(&f)) != nil ||
			le.Uint32(f.Fmt.Raw[0:]) != uint32(width) || le.Uint32(f.Fmt.Raw[4:]) != uint32(height) {
			return fmt.Errorf("set format %s %dx%d: %w", fourCC(fourcc), width, height, err)
		}
	}
	if got := le.Uint32(f.Fmt.Raw[8:]); got != fourcc {
		return fmt.Errorf("camera offers %s, not %s", fourCC(got), fourCC(fourcc))
	}
	if fps > 0 {
		var p streamParm
		p.Type = bufTypeCapture
		putU32(p.Parm[8:], 1000)
		putU32(p.Parm[12:], uint32(fps*1000+0.5))
		_ = ioctl(c.fd, vidiocSParm, unsafe.Pointer(&p)) // not every camera sets its rate
	}
	c.hasForce = queryCtrl(c.fd, cidForceKeyFrame)
	rb := requestBuffers{Count: 4, Type: bufTypeCapture, Memory: memoryMmap}
	if err := ioctl(c.fd, vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return fmt.Errorf("VIDIOC_REQBUFS: %w", err)
	}
	if rb.Count == 0 {
		return errors.New("driver gave no buffers")
	}
	for i := uint32(0); i < rb.Count; i++ {
		b := buffer{Index: i, Type: bufTypeCapture, Memory: memoryMmap}
		if err := ioctl(c.fd, vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return fmt.Errorf("VIDIOC_QUERYBUF %d: %w", i, err)
		}
		mem, err := unix.Mmap(c.fd, int64(uint32(b.M)), int(b.Length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mmap buffer %d: %w", i, err)
		}
		c.bufs = append(c.bufs, mem)
		if err := ioctl(c.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
			return fmt.Errorf("VIDIOC_QBUF: %w", err)
		}
	}
	t := int32(bufTypeCapture)
	if err := ioctl(c.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
		return fmt.Errorf("VIDIOC_STREAMON: %w", err)
	}
	return nil
}

// Read waits for the next frame and returns a copy of it.
func (c *Capture) Read() ([]byte, error) {
	deadline := time.Now().Add(c.timeout)
	for {
		data, ok, err := c.take()
		if err != nil || ok {
			return data, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("camera %s: no frame within %s", c.dev, c.timeout)
		}
		// Short waits, so that Close is seen soon.
		if err := c.poll(min(left, 100*time.Millisecond)); err != nil {
			return nil, err
		}
	}
}

func (c *Capture) poll(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return os.ErrClosed
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, int(d/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("camera %s: poll: %w", c.dev, err)
	}
	return nil
}

// take dequeues a finished buffer, copies it and queues it again.
func (c *Capture) take() ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, os.ErrClosed
	}
	b := buffer{Type: bufTypeCapture, Memory: memoryMmap}
	if err := ioctl(c.fd, vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("camera %s: VIDIOC_DQBUF: %w", c.dev, err)
	}
	data := append([]byte(nil), c.bufs[b.Index][:min(int(b.BytesUsed), len(c.bufs[b.Index]))]...)
	if err := ioctl(c.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return nil, false, fmt.Errorf("camera %s: VIDIOC_QBUF: %w", c.dev, err)
	}
	if b.Flags&bufFlagError != 0 || len(data) == 0 {
		return nil, false, nil
	}
	return data, true, nil
}

// RequestKeyFrame asks the camera for a key frame (V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME);
// it reports false when the camera has no such control and the next periodic key
// frame must do.
func (c *Capture) RequestKeyFrame() bool {
	return c.hasForce && setCtrl(c.fd, cidForceKeyFrame, 1) == nil
}

// Close stops streaming and closes the device.
func (c *Capture) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	t := int32(bufTypeCapture)
	_ = ioctl(c.fd, vidiocStreamOff, unsafe.Pointer(&t))
	return c.release()
}

func (c *Capture) release() error {
	for _, b := range c.bufs {
		_ = unix.Munmap(b)
	}
	c.bufs = nil
	return unix.Close(c.fd)
}

// CaptureFormats lists the fourcc codes a single-planar capture device offers
// (VIDIOC_ENUM_FMT), such as "YUYV", "MJPG", "H264".
func CaptureFormats(dev string) ([]string, error) {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dev, Err: err}
	}
	defer unix.Close(fd)
	var out []string
	for _, f := range enumFormats(fd, bufTypeCapture) {
		out = append(out, fourCC(f))
	}
	return out, nil
}
