package m2m

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The V4L2 user API this package speaks: the multi-planar memory-to-memory
// interface of videodev2.h, as bcm2835-codec and vicodec (multiplanar=1) offer it.
const (
	capVideoM2MMplane = 0x00004000
	capStreaming      = 0x04000000
	capDeviceCaps     = 0x80000000

	bufTypeCaptureMplane = 9  // V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE: encoded stream out
	bufTypeOutputMplane  = 10 // V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE: raw frames in
	memoryMmap           = 1

	bufFlagKeyFrame = 0x00000008
	bufFlagError    = 0x00000040
	bufFlagLast     = 0x00100000

	fieldNone = 1

	maxPlanes = 8
)

// Pixel formats (fourcc codes).
const (
	FourCCI420 = 'Y' | 'U'<<8 | '1'<<16 | '2'<<24 // V4L2_PIX_FMT_YUV420
	FourCCH264 = 'H' | '2'<<8 | '6'<<16 | '4'<<24
	FourCCFWHT = 'F' | 'W'<<8 | 'H'<<16 | 'T'<<24 // vicodec's format
)

// Codec controls (V4L2_CID_CODEC_BASE + n).
const (
	cidGOPSize         = 0x009909cb
	cidBitrateMode     = 0x009909ce
	cidBitrate         = 0x009909cf
	cidRepeatSeqHeader = 0x009909e2
	cidForceKeyFrame   = 0x009909e5
	cidH264IPeriod     = 0x00990a66
	cidH264Level       = 0x00990a67
	cidH264Profile     = 0x00990a6b

	bitrateModeCBR             = 1
	h264ProfileConstrainedBase = 1
	h264Level31                = 9
)

type capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

// format is struct v4l2_format: the union is aligned as its pointer-holding
// member (struct v4l2_window) is.
type format struct {
	Type uint32
	Fmt  struct {
		_   [0]uintptr
		Raw [200]byte
	}
}

type requestBuffers struct {
	Count        uint32
	Type         uint32
	Memory       uint32
	Capabilities uint32
	Flags        uint8
	Reserved     [3]uint8
}

type timecode struct {
	Type, Flags                     uint32
	Frames, Seconds, Minutes, Hours uint8
	UserBits                        [4]uint8
}

type buffer struct {
	Index     uint32
	Type      uint32
	BytesUsed uint32
	Flags     uint32
	Field     uint32
	Timestamp unix.Timeval
	Timecode  timecode
	Sequence  uint32
	Memory    uint32
	M         uintptr // planes pointer for multi-planar buffers
	Length    uint32  // number of planes
	Reserved2 uint32
	RequestFD int32
}

type plane struct {
	BytesUsed  uint32
	Length     uint32
	M          uintptr // mem_offset in the low 32 bits for MMAP
	DataOffset uint32
	Reserved   [11]uint32
}

type control struct {
	ID    uint32
	Value int32
}

type streamParm struct {
	Type uint32
	Parm [200]byte
}

// ioctl request numbers, computed from the structures' sizes as _IOR/_IOW/_IOWR do.
func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'V'<<8 | nr }

const (
	iocWrite = 1
	iocRead  = 2
)

var (
	vidiocQueryCap  = ioc(iocRead, 0, unsafe.Sizeof(capability{}))
	vidiocGFmt      = ioc(iocRead|iocWrite, 4, unsafe.Sizeof(format{}))
	vidiocSFmt      = ioc(iocRead|iocWrite, 5, unsafe.Sizeof(format{}))
	vidiocReqBufs   = ioc(iocRead|iocWrite, 8, unsafe.Sizeof(requestBuffers{}))
	vidiocQueryBuf  = ioc(iocRead|iocWrite, 9, unsafe.Sizeof(buffer{}))
	vidiocQBuf      = ioc(iocRead|iocWrite, 15, unsafe.Sizeof(buffer{}))
	vidiocDQBuf     = ioc(iocRead|iocWrite, 17, unsafe.Sizeof(buffer{}))
	vidiocStreamOn  = ioc(iocWrite, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamOff = ioc(iocWrite, 19, unsafe.Sizeof(int32(0)))
	vidiocSParm     = ioc(iocRead|iocWrite, 22, unsafe.Sizeof(streamParm{}))
	vidiocSCtrl     = ioc(iocRead|iocWrite, 28, unsafe.Sizeof(control{}))
	vidiocEnumFmt   = ioc(iocRead|iocWrite, 2, 64) // struct v4l2_fmtdesc
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return e
		}
	}
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// pixMplane is the part of struct v4l2_pix_format_mplane (packed) this package
// reads and writes, encoded into format.Fmt.Raw.
type pixMplane struct {
	Width, Height, PixelFormat, Field, Colorspace uint32
	NumPlanes                                     uint8
	Planes                                        [maxPlanes]struct{ SizeImage, BytesPerLine uint32 }
}

func (p pixMplane) put(raw *[200]byte) {
	le := binary.LittleEndian
	*raw = [200]byte{}
	le.PutUint32(raw[0:], p.Width)
	le.PutUint32(raw[4:], p.Height)
	le.PutUint32(raw[8:], p.PixelFormat)
	le.PutUint32(raw[12:], p.Field)
	le.PutUint32(raw[16:], p.Colorspace)
	for i := 0; i < maxPlanes; i++ {
		le.PutUint32(raw[20+20*i:], p.Planes[i].SizeImage)
		le.PutUint32(raw[24+20*i:], p.Planes[i].BytesPerLine)
	}
	raw[180] = p.NumPlanes
}

func getPixMplane(raw *[200]byte) pixMplane {
	le := binary.LittleEndian
	p := pixMplane{
		Width: le.Uint32(raw[0:]), Height: le.Uint32(raw[4:]), PixelFormat: le.Uint32(raw[8:]),
		Field: le.Uint32(raw[12:]), Colorspace: le.Uint32(raw[16:]), NumPlanes: raw[180],
	}
	for i := 0; i < maxPlanes; i++ {
		p.Planes[i].SizeImage = le.Uint32(raw[20+20*i:])
		p.Planes[i].BytesPerLine = le.Uint32(raw[24+20*i:])
	}
	return p
}

func fourCC(v uint32) string {
	s := string([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24 & 0x7f)})
	if v&(1<<31) != 0 {
		s += "-BE" // V4L2_PIX_FMT_FLAG_BE
	}
	return s
}

// enumFormats lists the pixel formats of one buffer type (VIDIOC_ENUM_FMT).
func enumFormats(fd int, typ uint32) []uint32 {
	var out []uint32
	for i := uint32(0); i < 64; i++ {
		var d [64]byte // index, type, flags, description[32], pixelformat, mbus_code, reserved[3]
		binary.LittleEndian.PutUint32(d[0:], i)
		binary.LittleEndian.PutUint32(d[4:], typ)
		if err := ioctl(fd, vidiocEnumFmt, unsafe.Pointer(&d)); err != nil {
			break
		}
		out = append(out, binary.LittleEndian.Uint32(d[44:]))
	}
	return out
}

// errUnsupported reports a control or ioctl the driver does not offer.
func errUnsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ERANGE)
}

func setCtrl(fd int, id uint32, v int32) error {
	c := control{ID: id, Value: v}
	if err := ioctl(fd, vidiocSCtrl, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("set control %#x to %d: %w", id, v, err)
	}
	return nil
}
