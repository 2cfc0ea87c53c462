package m2m

import (
	"testing"
	"unsafe"
)

// The request numbers videodev2.h gives on 64-bit Linux (amd64, arm64): they check
// the structures' sizes.
func TestIoctlNumbers64(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the reference numbers are those of 64-bit Linux")
	}
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"VIDIOC_QUERYCAP", vidiocQueryCap, 0x80685600},
		{"VIDIOC_S_FMT", vidiocSFmt, 0xc0d05605},
		{"VIDIOC_REQBUFS", vidiocReqBufs, 0xc0145608},
		{"VIDIOC_QUERYBUF", vidiocQueryBuf, 0xc0585609},
		{"VIDIOC_QBUF", vidiocQBuf, 0xc058560f},
		{"VIDIOC_DQBUF", vidiocDQBuf, 0xc0585611},
		{"VIDIOC_STREAMON", vidiocStreamOn, 0x40045612},
		{"VIDIOC_S_PARM", vidiocSParm, 0xc0cc5616},
		{"VIDIOC_S_CTRL", vidiocSCtrl, 0xc008561c},
		{"VIDIOC_ENUM_FMT", vidiocEnumFmt, 0xc0405602},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if s := unsafe.Sizeof(plane{}); s != 64 {
		t.Errorf("sizeof(struct v4l2_plane) = %d, want 64", s)
	}
}

func TestHasSlice(t *testing.T) {
	sps := []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce}
	if hasSlice(sps) {
		t.Error("SPS+PPS taken for a frame")
	}
	if !hasSlice(append(sps, 0, 0, 1, 0x65, 0x88)) || !hasSlice([]byte{0, 0, 1, 0x41, 0x9a}) {
		t.Error("IDR or non-IDR slice not seen")
	}
}
