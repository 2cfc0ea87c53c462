//go:build kernel

package vmtest

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/warthog618/go-gpiocdev"
	"github.com/warthog618/go-gpiosim"
)

// guestHint is appended to failures: these tests only pass inside the guest.
const guestHint = "(kernel tests run inside the guest: go test -exec \"$PWD/test/vm/exec\" -tags kernel, or test/vm/run)"

// v4l2Capability mirrors struct v4l2_capability from linux/videodev2.h.
type v4l2Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

const (
	// vidiocQuerycap is _IOR('V', 0, struct v4l2_capability).
	vidiocQuerycap = 2<<30 | uintptr(unsafe.Sizeof(v4l2Capability{}))<<16 | 'V'<<8 | 0
	// v4l2CapVideoCapture is V4L2_CAP_VIDEO_CAPTURE.
	v4l2CapVideoCapture = 0x00000001
)

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func TestKernelVividCamera(t *testing.T) {
	name, err := os.ReadFile("/sys/class/video4linux/video0/name")
	if err != nil {
		t.Fatalf("read video0 name: %v %s", err, guestHint)
	}
	if !strings.HasPrefix(string(name), "vivid") {
		t.Errorf("video0 name = %q, want vivid-...", name)
	}

	f, err := os.OpenFile("/dev/video0", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/video0: %v %s", err, guestHint)
	}
	defer f.Close()
	conn, err := f.SyscallConn()
	if err != nil {
		t.Fatalf("raw conn of /dev/video0: %v", err)
	}
	var c v4l2Capability
	var errno syscall.Errno
	if err := conn.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, vidiocQuerycap, uintptr(unsafe.Pointer(&c)))
	}); err != nil {
		t.Fatalf("control /dev/video0: %v", err)
	}
	if errno != 0 {
		t.Fatalf("VIDIOC_QUERYCAP on /dev/video0: %v", errno)
	}
	if got := cString(c.Driver[:]); got != "vivid" {
		t.Errorf("VIDIOC_QUERYCAP driver = %q, want vivid", got)
	}
	if c.DeviceCaps&v4l2CapVideoCapture == 0 {
		t.Errorf("VIDIOC_QUERYCAP device caps %#x lack V4L2_CAP_VIDEO_CAPTURE", c.DeviceCaps)
	}
}

func TestKernelLoopbackSoundCard(t *testing.T) {
	cards, err := os.ReadFile("/proc/asound/cards")
	if err != nil {
		t.Fatalf("read /proc/asound/cards: %v %s", err, guestHint)
	}
	if !bytes.Contains(cards, []byte("Loopback")) {
		t.Fatalf("/proc/asound/cards has no Loopback card:\n%s", cards)
	}
	// Card 0 is the first one loaded: snd-aloop.
	for _, dev := range []string{"/dev/snd/pcmC0D0p", "/dev/snd/pcmC0D1c"} {
		if _, err := os.Stat(dev); err != nil {
			t.Errorf("loopback PCM: %v", err)
		}
	}
}

// TestGPIOSimPiHeader builds a gpio-sim bank shaped like a Raspberry Pi 4's
// (label pinctrl-bcm2711, lines GPIO0..GPIO57) and drives it through the GPIO
// character device as the daemon would: find a line by name, read an input,
// see its edges, drive an output.
func TestKernelGPIOSimPiHeader(t *testing.T) {
	var opts []gpiosim.NewBankOption
	for i := range 58 {
		opts = append(opts, gpiosim.WithNamedLine(i, "GPIO"+strconv.Itoa(i)))
	}
	sim, err := gpiosim.NewSim(gpiosim.WithBank(gpiosim.NewBank("pinctrl-bcm2711", 58, opts...)))
	if err != nil {
		t.Fatalf("create gpio-sim chip through configfs: %v %s", err, guestHint)
	}
	defer sim.Close()
	chip := &sim.Chips[0]

	name, offset, err := gpiocdev.FindLine("GPIO17")
	if err != nil {
		t.Fatalf("find line GPIO17: %v", err)
	}
	if name != chip.ChipName() || offset != 17 {
		t.Fatalf("GPIO17 found at %s:%d, want %s:17", name, offset, chip.ChipName())
	}

	events := make(chan gpiocdev.LineEvent, 8)
	in, err := gpiocdev.RequestLine(name, 17, gpiocdev.AsInput, gpiocdev.WithBothEdges,
		gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) {
			select {
			case events <- e:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("request GPIO17: %v", err)
	}
	defer in.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, level := range []int{1, 0, 1} {
		if err := chip.SetPull(17, level); err != nil {
			t.Fatalf("pull GPIO17 to %d: %v", level, err)
		}
		want := gpiocdev.LineEventFallingEdge
		if level == 1 {
			want = gpiocdev.LineEventRisingEdge
		}
		select {
		case e := <-events:
			if e.Type != want || e.Offset != 17 {
				t.Fatalf("after pulling GPIO17 to %d: event %v on line %d, want %v on 17", level, e.Type, e.Offset, want)
			}
		case <-ctx.Done():
			t.Fatalf("no edge event after pulling GPIO17 to %d", level)
		}
		if v, err := in.Value(); err != nil || v != level {
			t.Fatalf("GPIO17 value = %d, %v; want %d", v, err, level)
		}
	}

	out, err := gpiocdev.RequestLine(name, 27, gpiocdev.AsOutput(1))
	if err != nil {
		t.Fatalf("request GPIO27 as output: %v", err)
	}
	defer out.Close()
	for _, v := range []int{1, 0} {
		if err := out.SetValue(v); err != nil {
			t.Fatalf("set GPIO27 to %d: %v", v, err)
		}
		if got, err := chip.Level(27); err != nil || got != v {
			t.Fatalf("simulated level of GPIO27 = %d, %v; want %d", got, err, v)
		}
	}
}

// TestDeliberateFailure fails when INTERCOMD_VM_SMOKE_FAIL=1, to check by hand
// that a failure inside the guest fails go test on the host.
func TestKernelDeliberateFailure(t *testing.T) {
	if os.Getenv("INTERCOMD_VM_SMOKE_FAIL") != "1" {
		t.Skip("set INTERCOMD_VM_SMOKE_FAIL=1 to check that a failing kernel test fails go test")
	}
	t.Fatal("deliberate failure (INTERCOMD_VM_SMOKE_FAIL=1)")
}
