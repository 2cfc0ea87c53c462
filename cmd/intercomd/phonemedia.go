package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/media"
)

// phoneMedia is a softphone's media: WebRTC with a soft audio engine (a
// tone or silence as the microphone, what it hears reported by level) or
// the sound card, and no camera.
type phoneMedia struct {
	soft   *media.SoftAudio
	engine *audio.Engine
	m      *media.Media
	err    error
}

func newPhoneMedia(ctx context.Context, sound string, tone float64, log *slog.Logger) (*phoneMedia, error) {
	pm := &phoneMedia{}
	switch sound {
	case "soft":
		s, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: tone})
		if err != nil {
			return nil, err
		}
		pm.soft = s
	case "alsa", "null":
		cfg := audio.Config{Backend: audio.BackendALSA, Playback: "default", Capture: "default", NullFallback: true, Logger: log}
		if sound == "null" {
			cfg.Backend = audio.BackendNull
		}
		e, err := audio.New(cfg)
		if err != nil {
			return nil, err
		}
		if err := e.Start(ctx); err != nil {
			e.Close()
			return nil, err
		}
		pm.engine = e
	default:
		return nil, fmt.Errorf("--sound %q: want soft, alsa or null", sound)
	}
	return pm, nil
}

func (pm *phoneMedia) factory(user string, loopback bool, log *slog.Logger) func(post func(calling.Input)) agent.Media {
	return func(post func(calling.Input)) agent.Media {
		opts := media.Options{Config: media.Config{LoopbackOnly: loopback}, Post: post, User: user, Logger: log}
		if pm.soft != nil {
			opts.Audio = pm.soft
		} else {
			opts.Audio = media.EngineAudio{Engine: pm.engine}
		}
		m, err := media.New(opts)
		if err != nil {
			pm.err = err
			return &agent.SignalMedia{Post: post}
		}
		pm.m = m
		return m
	}
}

func (pm *phoneMedia) close() {
	if pm.m != nil {
		pm.m.Close()
	}
	if pm.soft != nil {
		pm.soft.Close()
	}
	if pm.engine != nil {
		pm.engine.Close()
	}
}
