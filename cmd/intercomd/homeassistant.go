package main

import (
	"context"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/homeassistant"
	"github.com/intercomd/intercomd/hw/camera"
)

// haPrincipal is who opens the door from Home Assistant, in the door's log.
const haPrincipal = "homeassistant"

// startHomeAssistant connects to the broker Home Assistant uses when
// homeassistant.broker is set: with homeassistant.enabled it publishes the
// device, without it removes what an earlier run published. It returns the
// function that leaves the broker. A bridge that cannot start is a warning:
// the door works without Home Assistant.
func (d *daemon) startHomeAssistant(ctx context.Context, cam *camera.Pipeline) func() {
	h := d.cfg.HomeAssistant
	if h.Broker == "" {
		return func() {}
	}
	node := h.NodeID
	if node == "" {
		node = d.cfg.Device.User
	}
	url := h.AppURL
	if url == "" {
		url = d.cfg.Push.AppURL
	}
	b, err := homeassistant.Start(ctx, homeassistant.BridgeOptions{
		Options: homeassistant.Options{
			Prefix: h.DiscoveryPrefix,
			NodeID: node,
			Device: homeassistant.Device{ID: "intercomd-" + node, Name: d.cfg.Device.Name,
				Model: "intercomd door station", SWVersion: version, URL: url},
		},
		Broker:    h.Broker,
		Username:  h.Username,
		Password:  h.Password.Reveal(),
		ClientID:  "intercomd-ha-" + node,
		Enabled:   h.Enabled,
		Principal: haPrincipal,
		OnOpen:    d.openFromHomeAssistant,
		Logger:    d.log,
	})
	if err != nil {
		d.log.Warn("Home Assistant not started; the door works without it", "err", err)
		return func() {}
	}
	d.ha = b
	d.haCam = cam
	return b.Close
}

// openFromHomeAssistant opens the door on the calling loop through the same
// station path (and relay limits) as a phone's Open door.
func (d *daemon) openFromHomeAssistant(by string) {
	ep := d.live.Load()
	if ep == nil || d.st == nil {
		d.log.Warn("door open from Home Assistant before the daemon is ready", "by", by)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = ep.Tick(ctx, func() { d.st.Door(by) })
}

// watchHomeAssistant reports the calls to Home Assistant: the ring (and its
// snapshot) when the door starts a call, its outcome when it ends, and the
// call state.
func (d *daemon) watchHomeAssistant(ctx context.Context, ep *endpoint.Endpoint) {
	if d.ha == nil {
		return
	}
	events, unsubscribe := ep.Subscribe(64)
	go func() {
		defer unsubscribe()
		var ringing, answered, declined bool
		for {
			var ev calling.Event
			select {
			case <-ctx.Done():
				return
			case ev = <-events:
			}
			switch e := ev.(type) {
			case calling.StateChanged:
				d.ha.CallState(e.To.String())
				if e.To == calling.Dialing && e.From == calling.Idle {
					ringing, answered, declined = true, false, false
					d.ha.Ring()
					go d.haSnapshot(ctx)
				}
			case calling.UserEnter:
				if ringing && !answered {
					answered = true
					d.ha.Outcome(homeassistant.EventAnswered)
				}
			case calling.Rejected:
				declined = true
			case calling.CallEnd:
				if ringing && !answered {
					if declined {
						d.ha.Outcome(homeassistant.EventDeclined)
					} else {
						d.ha.Outcome(homeassistant.EventMissed)
					}
				}
				ringing = false
			}
		}
	}()
}

// haSnapshot takes the picture of the ring from the camera's shared
// pipeline (no second encoder) and publishes it.
func (d *daemon) haSnapshot(ctx context.Context) {
	if d.haCam == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotWait)
	defer cancel()
	jpeg, err := d.haCam.Snapshot(ctx)
	if err != nil {
		d.log.Warn("Home Assistant snapshot", "err", err)
		return
	}
	d.ha.Snapshot(jpeg)
}
