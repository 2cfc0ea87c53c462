package media

import (
	"fmt"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/audio"
)

// Speaker volumes for ControlHandsFree, in percent of unity gain.
const (
	HandsFreeVolume = 100
	HandsetVolume   = 60
)

// EngineAudio adapts the device's audio engine (hw/audio) to Audio. The
// engine is started and closed by its owner.
type EngineAudio struct {
	Engine *audio.Engine
}

var _ Audio = EngineAudio{}

// SetMicOutput implements Audio.
func (a EngineAudio) SetMicOutput(out func([]byte, time.Duration)) {
	if out == nil {
		a.Engine.OnEncoded(nil)
		return
	}
	a.Engine.OnEncoded(func(f audio.Frame) { out(f.Opus, f.Duration) })
}

// AddParty implements Audio.
func (a EngineAudio) AddParty(user string) (AudioParty, error) {
	p, err := a.Engine.AddParty(user)
	if err != nil {
		return nil, fmt.Errorf("audio party %s: %w", user, err)
	}
	return p, nil
}

// Ring implements Audio.
func (a EngineAudio) Ring(t calling.Tone) {
	switch t {
	case calling.ToneRingtone:
		_ = a.Engine.Ring(audio.ToneRingtone)
	case calling.ToneRingback:
		_ = a.Engine.Ring(audio.ToneRingback)
	default:
		a.Engine.StopRing()
	}
}

// SetMicMute implements Audio.
func (a EngineAudio) SetMicMute(m bool) { a.Engine.SetMuted(m) }

// SetHandsFree implements Audio.
func (a EngineAudio) SetHandsFree(on bool) {
	if on {
		a.Engine.SetVolume(HandsFreeVolume)
	} else {
		a.Engine.SetVolume(HandsetVolume)
	}
}

// MicLevel implements Audio.
func (a EngineAudio) MicLevel() int { return a.Engine.MicLevel() }
