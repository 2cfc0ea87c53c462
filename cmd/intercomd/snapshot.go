package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"sync"
	"time"

	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/web"
)

// Snapshots of the door's camera at ring time, for the notifications.
const (
	maxSnapshots = 8               // calls whose picture is kept
	snapshotWait = 2 * time.Second // for the first frame after the ring
)

// snapshot is the picture of one call, taken once, its URL keyed with
// 128 random bits.
type snapshot struct {
	key  string
	done chan struct{}
	jpeg []byte
}

type snapshots struct {
	mu    sync.Mutex
	cam   *camera.Pipeline
	calls map[string]*snapshot
	order []string
}

// setCamera gives push the camera pipeline (nil: no video, no snapshots).
func (p *pusher) setCamera(cam *camera.Pipeline) {
	if p == nil {
		return
	}
	p.snaps.mu.Lock()
	p.snaps.cam = cam
	p.snaps.mu.Unlock()
}

// take starts the snapshot of call (once) and returns its path, or "" with
// no camera.
func (s *snapshots) take(call string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cam == nil {
		return ""
	}
	if s.calls == nil {
		s.calls = map[string]*snapshot{}
	}
	sn := s.calls[call]
	if sn == nil {
		var k [16]byte
		_, _ = rand.Read(k[:])
		sn = &snapshot{key: hex.EncodeToString(k[:]), done: make(chan struct{})}
		s.calls[call] = sn
		s.order = append(s.order, call)
		if len(s.order) > maxSnapshots {
			delete(s.calls, s.order[0])
			s.order = s.order[1:]
		}
		cam := s.cam
		go func() {
			defer close(sn.done)
			ctx, cancel := context.WithTimeout(context.Background(), snapshotWait)
			defer cancel()
			sn.jpeg, _ = cam.Snapshot(ctx)
		}()
	}
	return "api/calls/" + url.PathEscape(call) + "/snapshot?k=" + sn.key
}

// get waits (boundedly) for call's picture; with key "" the key is not
// checked (the device's own ntfy publication).
func (s *snapshots) get(call, key string) []byte {
	s.mu.Lock()
	sn := s.calls[call]
	s.mu.Unlock()
	if sn == nil || (key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(sn.key)) != 1) {
		return nil
	}
	select {
	case <-sn.done:
		return sn.jpeg
	case <-time.After(snapshotWait):
		return nil
	}
}

// snapshotFor serves a call's picture to a user the call rings.
func (d *daemon) snapshotFor(call, user, key string) ([]byte, error) {
	if _, ok := d.push.notifier.Ringing(call, user); !ok {
		return nil, web.ErrNotRinging
	}
	if key == "" {
		return nil, web.ErrNotRinging
	}
	return d.push.snaps.get(call, key), nil
}
