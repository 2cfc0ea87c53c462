package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/visitorlog"
)

// TestDaemonVisitorLog: a ring answered by alice, who opens the door, and
// one she declines are in the visitor log with the camera's picture of
// each ring, served to signed-in users only.
func TestDaemonVisitorLog(t *testing.T) {
	d := startDaemon(t, "camera:\n  devices:\n    - {device: test-pattern, width: 320, height: 240, fps: 15}\n")
	alice, _ := d.phone(t, "alice")
	tok := d.token(t, "alice")
	list := func() []visitorlog.Entry {
		t.Helper()
		code, b := d.api(t, "GET", "/api/visitors", tok, nil)
		var v struct{ Visitors []visitorlog.Entry }
		if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
			t.Fatalf("GET /api/visitors: %d %s", code, b)
		}
		return v.Visitors
	}
	waitEntry := func(what string, ok func(visitorlog.Entry) bool) visitorlog.Entry {
		t.Helper()
		for end := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l := list(); len(l) > 0 && ok(l[0]) {
				return l[0]
			}
			if time.Now().After(end) {
				t.Fatalf("the visitor log never showed %s: %+v", what, list())
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	if err := alice.Do(ctx, calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.InCall)
	if err := alice.Do(ctx, calling.OpenDoor{}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[relay: ON]", 5*time.Second)
	waitEntry("alice's door opening", func(e visitorlog.Entry) bool { return len(e.Doors) == 1 })
	time.Sleep(100 * time.Millisecond) // a call of measurable length
	if err := alice.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	answered := waitEntry("the answered ring", func(e visitorlog.Entry) bool { return e.Outcome == visitorlog.Answered && e.Snapshot })
	if answered.AnsweredBy != "alice" || answered.Doors[0].By != "alice" || answered.DurationMS <= 0 {
		t.Errorf("answered ring: %+v", answered)
	}
	code, pic := d.api(t, "GET", "/api/visitors/"+answered.ID+"/snapshot", tok, nil)
	if code != http.StatusOK {
		t.Fatalf("snapshot: %d %s", code, pic)
	}
	img, err := jpeg.Decode(bytes.NewReader(pic))
	if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Errorf("the snapshot is not the camera's 320x240 JPEG: %v", err)
	}
	for _, path := range []string{"/api/visitors", "/api/visitors/" + answered.ID + "/snapshot"} {
		if code, b := d.api(t, "GET", path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %s", path, code, b)
		}
		if code, b := d.api(t, "GET", path, tok[:len(tok)-2]+"xx", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a bad token: %d %s", path, code, b)
		}
	}

	waitState(t, alice, calling.Idle)
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	if err := alice.Do(ctx, calling.Reject{}); err != nil {
		t.Fatal(err)
	}
	declined := waitEntry("the declined ring", func(e visitorlog.Entry) bool { return e.ID != answered.ID && e.Outcome == visitorlog.Declined })
	if declined.AnsweredBy != "" || len(declined.DeclinedBy) != 1 || declined.DeclinedBy[0] != "alice" || declined.DurationMS != 0 {
		t.Errorf("declined ring: %+v", declined)
	}
}
