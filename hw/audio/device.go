package audio

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
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

// openDevice opens a duplex device per cfg whose data and stop callbacks are
// cb. For BackendAuto it tries ALSA, then PulseAudio.
func openDevice(cfg *Config, cb malgo.DeviceCallbacks) (*device, error) {
	switch cfg.Backend {
	case BackendAuto:
		d, errALSA := openWith(BackendALSA, cfg, cb)
		if errALSA == nil {
			return d, nil
		}
		d, errPulse := openWith(BackendPulse, cfg, cb)
		if errPulse == nil {
			return d, nil
		}
		err := fmt.Errorf("open audio device: alsa: %w; pulse: %w", errALSA, errPulse)
		if errors.Is(errALSA, ErrNoDevice) || errors.Is(errPulse, ErrNoDevice) {
			return nil, fmt.Errorf("%w (%w)", ErrNoDevice, err)
		}
		return nil, err
	default:
		d, err := openWith(cfg.Backend, cfg, cb)
		if err != nil {
			return nil, fmt.Errorf("open audio device: %w", err)
		}
		return d, nil
	}
}

func openWith(b Backend, cfg *Config, cb malgo.DeviceCallbacks) (*device, error) {
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
	dev, err := malgo.InitDevice(mctx.Context, dc, cb)
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
