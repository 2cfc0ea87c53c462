package audio

/*
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

// The start of miniaudio's struct ma_device (miniaudio.h, as vendored by
// malgo): the fields up to pUserData, which install checks before it
// replaces onData. Its include path lives inside another module.
typedef struct {
	void *pContext;
	int type;              // ma_device_type
	uint32_t sampleRate;
	int32_t state;         // ma_atomic_device_state
	void (*onData)(void *pDevice, void *pOutput, const void *pInput, uint32_t frameCount);
	void *onNotification;
	void *onStop;
	void *pUserData;
} icd_ma_device;

// icd_ring is the C side of a Go ring: the same buffer and counters.
typedef struct {
	int16_t *buf;
	uint32_t *r, *w;
	uint32_t mask;
} icd_ring;

// icd_feed is what the device thread shares with the processing loop. It
// lives in pinned Go memory.
typedef struct {
	icd_ring cap, play;
	uint32_t frame;     // samples in a frame: the loop is woken per whole frame
	int32_t fd;         // eventfd the loop reads through Go's netpoller
	uint32_t pending;   // a wake-up is signalled and the loop has not taken it
	uint32_t overruns, underruns;
} icd_feed;

static uint32_t icd_ring_len(icd_ring *q) {
	return __atomic_load_n(q->w, __ATOMIC_ACQUIRE) - __atomic_load_n(q->r, __ATOMIC_ACQUIRE);
}

static uint32_t icd_ring_write(icd_ring *q, const int16_t *p, uint32_t len) {
	uint32_t w = __atomic_load_n(q->w, __ATOMIC_RELAXED), r = __atomic_load_n(q->r, __ATOMIC_ACQUIRE);
	uint32_t room = q->mask + 1 - (w - r), n = len < room ? len : room;
	uint32_t start = w & q->mask, first = q->mask + 1 - start;
	if (first > n) first = n;
	memcpy(q->buf + start, p, first * sizeof(int16_t));
	memcpy(q->buf, p + first, (n - first) * sizeof(int16_t));
	__atomic_store_n(q->w, w + n, __ATOMIC_RELEASE);
	return n;
}

static uint32_t icd_ring_read(icd_ring *q, int16_t *p, uint32_t len) {
	uint32_t r = __atomic_load_n(q->r, __ATOMIC_RELAXED), w = __atomic_load_n(q->w, __ATOMIC_ACQUIRE);
	uint32_t n = len < w - r ? len : w - r;
	uint32_t start = r & q->mask, first = q->mask + 1 - start;
	if (first > n) first = n;
	memcpy(p, q->buf + start, first * sizeof(int16_t));
	memcpy(p + first, q->buf, (n - first) * sizeof(int16_t));
	__atomic_store_n(q->r, r + n, __ATOMIC_RELEASE);
	return n;
}

// icd_feed_data is the device callback's work: queue the captured samples,
// play from the speaker queue, and signal the eventfd once a whole frame is
// captured, unless a signal is already pending. It never enters Go.
static void icd_feed_data(icd_feed *f, void *out, const void *in, uint32_t frames) {
	if (in != NULL && icd_ring_write(&f->cap, in, frames) < frames) {
		__atomic_add_fetch(&f->overruns, 1, __ATOMIC_RELAXED);
	}
	if (out != NULL) {
		uint32_t n = icd_ring_read(&f->play, out, frames);
		if (n < frames) {
			memset((int16_t *)out + n, 0, (frames - n) * sizeof(int16_t));
			__atomic_add_fetch(&f->underruns, 1, __ATOMIC_RELAXED);
		}
	}
	if (in != NULL && icd_ring_len(&f->cap) < f->frame) {
		return;
	}
	if (__atomic_exchange_n(&f->pending, 1, __ATOMIC_ACQ_REL) == 0) {
		uint64_t one = 1;
		ssize_t r = write(f->fd, &one, sizeof one);
		(void)r; // only fails when the counter is full: the loop is woken anyway
	}
}

static void icd_on_data(void *dev, void *out, const void *in, uint32_t frames) {
	icd_feed_data(((icd_ma_device *)dev)->pUserData, out, in, frames);
}

// icd_install makes icd_on_data the data callback of dev, a device that is
// not started, after checking that the fields read match what malgo was
// given. It returns 0 on success.
static int icd_install(void *dev, uint32_t sampleRate, int type, icd_feed *f) {
	icd_ma_device *d = dev;
	if (d->pContext == NULL || d->type != type || d->sampleRate != sampleRate || d->onData == NULL || d->pUserData != f) {
		return -1;
	}
	d->onData = icd_on_data;
	return 0;
}

static int icd_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"
)

// backendNull is miniaudio's ma_backend_null. malgo.BackendNull has the value
// of ma_backend_custom (13), one too low.
const backendNull = malgo.Backend(14)

// Info describes the device an Engine opened.
type Info struct {
	Backend  Backend // the backend in use (never BackendAuto)
	Playback string  // playback device name as the backend reports it
	Capture  string  // capture device name
	Fallback bool    // the null backend replaced an unavailable device
}

// device is an open malgo duplex device and its context.
type device struct {
	ctx  *malgo.AllocatedContext
	dev  *malgo.Device
	info Info
}

func (d *device) close() {
	if d.dev != nil {
		d.dev.Uninit()
		d.dev = nil
	}
	if d.ctx != nil {
		_ = d.ctx.Uninit()
		d.ctx.Free()
		d.ctx = nil
	}
}

// feed connects the device thread to the processing loop without Go code
// on the device thread: the data callback is C (icd_feed_data), which
// copies the captured samples into the capture ring and fills the speaker
// buffer from the playback ring (both rings are Go memory, pinned), and
// signals an eventfd once a whole frame is captured. The loop reads the
// eventfd through Go's netpoller. A cgo callback would make the device
// thread take a Go thread and the scheduler's P on every period, waking
// Go threads each time; this way the process is woken once a frame, by the
// netpoller.
type feed struct {
	c      *C.icd_feed
	pin    runtime.Pinner
	wake   *os.File // the eventfd
	buf    [8]byte
	closed atomic.Bool
}

func newFeed(capRing, playRing *ring) (*feed, error) {
	fd := C.icd_eventfd()
	if fd < 0 {
		return nil, errors.New("audio: eventfd failed")
	}
	f := &feed{c: new(C.icd_feed), wake: os.NewFile(uintptr(fd), "audio-wakeup")}
	for _, q := range []*ring{capRing, playRing} {
		f.pin.Pin(q)
		f.pin.Pin(&q.buf[0])
	}
	f.pin.Pin(f.c)
	f.c.cap = cRing(capRing)
	f.c.play = cRing(playRing)
	f.c.frame = FrameSamples
	f.c.fd = C.int32_t(fd)
	return f, nil
}

func cRing(q *ring) C.icd_ring {
	return C.icd_ring{
		buf:  (*C.int16_t)(unsafe.Pointer(&q.buf[0])),
		r:    (*C.uint32_t)(unsafe.Pointer(&q.r)),
		w:    (*C.uint32_t)(unsafe.Pointer(&q.w)),
		mask: C.uint32_t(q.mask),
	}
}

// userData is the device's pUserData: the C state.
func (f *feed) userData() *byte { return (*byte)(unsafe.Pointer(f.c)) }

// install makes the C callback the data callback of dev, which must not
// be started yet.
func (f *feed) install(dev *malgo.Device) error {
	// malgo keeps the ma_device pointer in Device's only field.
	field := *(**unsafe.Pointer)(unsafe.Pointer(dev))
	if field == nil || *field == nil {
		return errors.New("audio: malgo's device has no ma_device")
	}
	raw := *field
	if C.icd_install(raw, SampleRate, C.int(malgo.Duplex), f.c) != 0 {
		return errors.New("audio: miniaudio's device does not have the layout this build expects (malgo version?)")
	}
	return nil
}

// data runs the device callback's work as the device thread would (tests).
func (f *feed) data(out, in []int16) {
	var o, i unsafe.Pointer
	if len(out) > 0 {
		o = unsafe.Pointer(&out[0])
	}
	if len(in) > 0 {
		i = unsafe.Pointer(&in[0])
	}
	C.icd_feed_data(f.c, o, i, C.uint32_t(max(len(out), len(in))))
}

// wait blocks until the device has captured a frame, poke is called or
// the deadline passes (os.ErrDeadlineExceeded).
func (f *feed) wait(deadline time.Time) error {
	if err := f.wake.SetReadDeadline(deadline); err != nil {
		return err
	}
	_, err := f.wake.Read(f.buf[:])
	// Taken: the device signals again for the next whole frame.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&f.c.pending)), 0)
	return err
}

// poke wakes wait.
func (f *feed) poke() {
	if f.closed.Load() {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = f.wake.Write(one[:])
}

// counts returns the device callbacks' overruns and underruns.
func (f *feed) counts() (overruns, underruns int64) {
	return int64(atomic.LoadUint32((*uint32)(unsafe.Pointer(&f.c.overruns)))),
		int64(atomic.LoadUint32((*uint32)(unsafe.Pointer(&f.c.underruns))))
}

// close releases the eventfd and the pinned memory; the device must be
// uninitialised first.
func (f *feed) close() {
	if f.closed.Swap(true) {
		return
	}
	_ = f.wake.Close()
	f.pin.Unpin()
}

// openDevice opens a duplex device per cfg whose data callback is f's and
// whose stop callback is stop. For BackendAuto it tries ALSA, then
// PulseAudio.
func openDevice(cfg *Config, f *feed, stop malgo.StopProc) (*device, error) {
	switch cfg.Backend {
	case BackendAuto:
		d, errALSA := openWith(BackendALSA, cfg, f, stop)
		if errALSA == nil {
			return d, nil
		}
		d, errPulse := openWith(BackendPulse, cfg, f, stop)
		if errPulse == nil {
			return d, nil
		}
		err := fmt.Errorf("open audio device: alsa: %w; pulse: %w", errALSA, errPulse)
		if errors.Is(errALSA, ErrNoDevice) || errors.Is(errPulse, ErrNoDevice) {
			return nil, fmt.Errorf("%w (%w)", ErrNoDevice, err)
		}
		return nil, err
	default:
		d, err := openWith(cfg.Backend, cfg, f, stop)
		if err != nil {
			return nil, fmt.Errorf("open audio device: %w", err)
		}
		return d, nil
	}
}

func openWith(b Backend, cfg *Config, f *feed, stop malgo.StopProc) (*device, error) {
	var mb malgo.Backend
	switch b {
	case BackendALSA:
		mb = malgo.BackendAlsa
	case BackendPulse:
		mb = malgo.BackendPulseaudio
	case BackendNull:
		mb = backendNull
	default:
		return nil, fmt.Errorf("backend %v cannot be opened directly", b)
	}
	log := cfg.Logger
	mctx, err := malgo.InitContext([]malgo.Backend{mb}, malgo.ContextConfig{}, func(msg string) {
		log.Debug("miniaudio", "backend", b.String(), "msg", strings.TrimSpace(msg))
	})
	if err != nil {
		hint := ""
		switch b {
		case BackendALSA:
			hint = " (is libasound2 installed?)"
		case BackendPulse:
			hint = " (is libpulse0 installed and a server running?)"
		}
		return nil, fmt.Errorf("%w: %s backend unavailable%s: %w", ErrNoDevice, b, hint, err)
	}
	d := &device{ctx: mctx, info: Info{Backend: b}}

	var pin runtime.Pinner
	defer pin.Unpin()
	dc := malgo.DefaultDeviceConfig(malgo.Duplex)
	dc.SampleRate = SampleRate
	dc.PeriodSizeInMilliseconds = uint32(cfg.Period.Milliseconds())
	dc.Periods = 3
	dc.PerformanceProfile = malgo.LowLatency
	dc.Playback.Format = malgo.FormatS16
	dc.Playback.Channels = Channels
	dc.Capture.Format = malgo.FormatS16
	dc.Capture.Channels = Channels
	dc.PUserData = f.userData()
	if b == BackendNull {
		d.info.Playback, d.info.Capture = "null", "null"
	} else {
		pid, pname, err := resolve(mctx, b, malgo.Playback, "playback", cfg.Playback)
		if err != nil {
			d.close()
			return nil, err
		}
		cid, cname, err := resolve(mctx, b, malgo.Capture, "capture", cfg.Capture)
		if err != nil {
			d.close()
			return nil, err
		}
		pin.Pin(pid)
		pin.Pin(cid)
		dc.Playback.DeviceID = unsafe.Pointer(pid)
		dc.Capture.DeviceID = unsafe.Pointer(cid)
		d.info.Playback, d.info.Capture = pname, cname
	}
	dev, err := malgo.InitDevice(mctx.Context, dc, malgo.DeviceCallbacks{Stop: stop})
	if err == nil {
		if err = f.install(dev); err != nil {
			dev.Uninit()
			d.close()
			return nil, err
		}
	}
	if err != nil {
		d.close()
		err = fmt.Errorf("open %s duplex device (playback %q, capture %q): %w", b, d.info.Playback, d.info.Capture, err)
		if b == BackendALSA && noSoundCard() {
			return nil, fmt.Errorf("%w: no sound card (/dev/snd does not exist): %w", ErrNoDevice, err)
		}
		return nil, err
	}
	d.dev = dev
	return d, nil
}

// noSoundCard reports whether the kernel exposes no ALSA device at all.
func noSoundCard() bool {
	_, err := os.Stat("/dev/snd")
	return errors.Is(err, os.ErrNotExist)
}

// isPCMName reports whether an ALSA device selector is a PCM name to open
// verbatim rather than a substring of an enumerated device.
func isPCMName(s string) bool {
	return strings.Contains(s, ":") || s == "default"
}

// resolve finds the device selected by want among the backend's devices.
func resolve(mctx *malgo.AllocatedContext, b Backend, kind malgo.DeviceType, role, want string) (*malgo.DeviceID, string, error) {
	if b == BackendALSA && isPCMName(want) {
		if len(want) >= 255 {
			return nil, "", fmt.Errorf("%s device %q: name too long", role, want)
		}
		if noSoundCard() && want != "default" {
			return nil, "", fmt.Errorf("%w: %s device %q: no sound card (/dev/snd does not exist)", ErrNoDevice, role, want)
		}
		id := new(malgo.DeviceID)
		copy(id[:], want)
		return id, want, nil
	}
	infos, err := mctx.Devices(kind)
	if err != nil {
		return nil, "", fmt.Errorf("list %s %s devices: %w", b, role, err)
	}
	var names []string
	var match []malgo.DeviceInfo
	for _, in := range infos {
		idStr := idString(in.ID)
		names = append(names, fmt.Sprintf("%q (id %s)", in.Name(), idStr))
		if containsFold(in.Name(), want) || containsFold(idStr, want) {
			match = append(match, in)
		}
	}
	switch {
	case len(infos) == 0:
		hint := ""
		if b == BackendALSA && noSoundCard() {
			hint = " (/dev/snd does not exist)"
		}
		return nil, "", fmt.Errorf("%w: no %s %s devices%s", ErrNoDevice, b, role, hint)
	case len(match) == 0:
		hint := ""
		if b == BackendALSA && noSoundCard() {
			hint = " (no sound card: /dev/snd does not exist)"
		}
		return nil, "", fmt.Errorf("%w: no %s %s device matches %q%s; have %s", ErrNoDevice, b, role, want, hint, strings.Join(names, ", "))
	case len(match) > 1:
		var amb []string
		for _, m := range match {
			amb = append(amb, fmt.Sprintf("%q (id %s)", m.Name(), idString(m.ID)))
		}
		return nil, "", fmt.Errorf("%s device %q is ambiguous: matches %s", role, want, strings.Join(amb, ", "))
	}
	id := match[0].ID
	return &id, match[0].Name(), nil
}

// idString renders a device ID: the text for backends whose IDs are strings
// (ALSA, PulseAudio), hex otherwise.
func idString(id malgo.DeviceID) string {
	end := 0
	for end < len(id) && id[end] != 0 {
		if id[end] < 0x20 || id[end] > 0x7e {
			return id.String()
		}
		end++
	}
	return string(id[:end])
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
