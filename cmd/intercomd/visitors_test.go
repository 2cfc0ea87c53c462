package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/push/pushtest"
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
		// Signed in, but not rung by the doorbell nor a door user.
		if code, b := d.api(t, "GET", path, d.token(t, "mallory"), nil); code != http.StatusForbidden {
			t.Errorf("GET %s as a user the doorbell does not ring: %d %s, want 403", path, code, b)
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

// TestDaemonVoiceMessage: a ring nobody answers asks the visitor for a
// message; the microphone (a 440 Hz test tone) is recorded into the ring's
// entry until the next ring stops it, which rings as usual. The message
// is served as Ogg Opus to signed-in users only and decodes to the tone.
func TestDaemonVoiceMessage(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		pushtest.Missing(t, "ffmpeg")
	}
	d := startDaemon(t, "audio:\n  test_tone: 440\nvisitor_log:\n  voice_message: {enabled: true, max_duration: 2m, silence: 0s}\n")
	alice, _ := d.phone(t, "alice")
	tok := d.token(t, "alice")
	entry := func(id string) visitorlog.Entry {
		t.Helper()
		code, b := d.api(t, "GET", "/api/visitors", tok, nil)
		var v struct{ Visitors []visitorlog.Entry }
		if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
			t.Fatalf("GET /api/visitors: %d %s", code, b)
		}
		for _, e := range v.Visitors {
			if e.ID == id || (id == "" && len(v.Visitors) > 0) {
				return e
			}
		}
		return visitorlog.Entry{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// Alice's phone rings and she lets it: the invitation times out
	// (calling.invite_timeout, 10 s here).
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	waitState(t, alice, calling.Idle)
	d.stderr.waitFor(t, "recording the visitor's voice message", 20*time.Second)
	missed := entry("")
	if missed.Outcome != visitorlog.Missed {
		t.Fatalf("the ring: %+v, want missed", missed)
	}
	// A second of message, then the doorbell again: it rings alice as
	// ever and ends the recording, whose message goes in the first entry.
	time.Sleep(time.Second) // the length of the message, not a wait for an event
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	var msg visitorlog.Entry
	for end := time.Now().Add(15 * time.Second); !msg.Message; time.Sleep(20 * time.Millisecond) {
		if msg = entry(missed.ID); time.Now().After(end) {
			t.Fatalf("the missed ring never got its message: %+v", msg)
		}
	}
	if msg.MessageMS < 500 || msg.MessageMS > 30_000 {
		t.Errorf("a message of %d ms, want about the second before the next ring", msg.MessageMS)
	}
	if err := alice.Do(ctx, calling.Reject{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.Idle)

	path := "/api/visitors/" + missed.ID + "/message"
	for _, bad := range []string{"", tok[:len(tok)-2] + "xx"} {
		if code, b := d.api(t, "GET", path, bad, nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with token %q: %d %s, want 401", path, bad, code, b)
		}
	}
	code, h, ogg := d.apiHeader(t, "GET", path, tok, nil)
	if code != http.StatusOK || h.Get("Content-Type") != "audio/ogg" {
		t.Fatalf("GET %s: %d %s %.200q", path, code, h.Get("Content-Type"), ogg)
	}
	dec, err := audiotest.FFmpegDecode(ctx, ffmpeg, t.TempDir(), ogg)
	if err != nil || dec.Complaints != "" {
		t.Fatalf("ffmpeg: %v %s", err, dec.Complaints)
	}
	if got := float64(len(dec.PCM)) / 48; math.Abs(got-float64(msg.MessageMS)) > 50 {
		t.Errorf("%.0f ms decoded, the entry says %d ms", got, msg.MessageMS)
	}
	if f := audiotest.DominantFrequency(dec.PCM[len(dec.PCM)/4:], 48000); math.Abs(f-440) > 5 {
		t.Errorf("the message decodes to %.1f Hz, want the microphone's 440 Hz", f)
	}
	t.Logf("a message of %d ms: %d bytes, %.0f bytes a second", msg.MessageMS, len(ogg), float64(len(ogg))*1000/float64(msg.MessageMS))
}

// A greeting that cannot be read stops start-up with an error naming the
// key and the file.
func TestVoiceMessageGreetingRefused(t *testing.T) {
	notWAV := filepath.Join(t.TempDir(), "greeting.mp3")
	if err := os.WriteFile(notWAV, []byte("ID3\x04 an mp3"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"/nonexistent/greeting.wav": "visitor_log.voice_message.greeting: /nonexistent/greeting.wav: open",
		notWAV:                      "visitor_log.voice_message.greeting: " + notWAV + ": not a WAV file",
	} {
		c := config.Default()
		c.VisitorLog.VoiceMessage.Enabled = true
		c.VisitorLog.VoiceMessage.Greeting = file
		d := &daemon{cfg: c, log: slog.New(slog.DiscardHandler)}
		if err := d.openVisitors(t.TempDir()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("greeting %s: %v, want an error saying %q", file, err, want)
		}
		if d.visitors != nil {
			t.Errorf("greeting %s: the log opened anyway", file)
		}
		// check-config says so too, naming the file and the key.
		cfgPath := filepath.Join(t.TempDir(), "intercomd.yaml")
		yaml := fmt.Sprintf("version: 1\nvisitor_log:\n  voice_message:\n    enabled: true\n    greeting: %q\n", file)
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := dispatch(t.Context(), []string{"check-config", "--config", cfgPath}, &cmdEnv{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }})
		if err == nil || !strings.Contains(err.Error(), cfgPath+": "+want) {
			t.Errorf("check-config with greeting %s: %v, want an error saying %q", file, err, cfgPath+": "+want)
		}
	}
}
