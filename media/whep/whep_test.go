package whep_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/media/whep"
	"github.com/intercomd/intercomd/media/whep/wheptest"
	"github.com/intercomd/intercomd/usersig"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type rig struct {
	srv *whep.Server
	url string
	cam *camera.Pipeline
	m   *media.Media
	log *mqtttest.LogBuffer
}

// newRig serves WHEP over a real camera pipeline (the test pattern at
// 320x240, off until wanted) and a soft audio engine, on loopback.
func newRig(t testing.TB, o whep.Options) *rig {
	t.Helper()
	return newRigSized(t, o, 320, 240, 15)
}

// newRigSized is newRig with the picture's size and rate.
func newRigSized(t testing.TB, o whep.Options, width, height int, fps float64) *rig {
	t.Helper()
	leaktest.Check(t)
	r := &rig{log: &mqtttest.LogBuffer{}}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cam, err := camera.New(camera.Config{
		Sources:  []camera.Source{{Name: "pattern", Device: camera.TestPatternDevice, Width: width, Height: height, FrameRate: fps}},
		StartOff: true,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Close() })
	soft, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: 440})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { soft.Close() })
	m, err := media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Post: func(calling.Input) {},
		Audio: soft, Camera: cam, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	o.Media, o.Secret, o.Logger = m, secret, log
	if o.Users == nil {
		o.Users = []string{"frigate"}
	}
	srv, err := whep.New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whep", srv)
	mux.Handle("/whep/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		if t.Failed() {
			t.Logf("log:\n%s", r.log)
		}
	})
	r.srv, r.url, r.cam, r.m = srv, hs.URL+"/whep", cam, m
	return r
}

func token(t testing.TB, user string, life time.Duration) string {
	t.Helper()
	tok, err := usersig.Sign(secret, user, time.Now().Add(life))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// eventually waits for cond, failing with what after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(t *testing.T, endpoint string, o wheptest.Options) *wheptest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	o.Loopback = true
	c, err := wheptest.Dial(ctx, endpoint, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Two viewers, one with a bearer token and one with ?token= as go2rtc
// sends it, get the picture and the sound from the one encoder; the camera
// runs from the first viewer to the last and stops when both have gone:
// one by DELETE, one by closing its connection without a word.
func TestViewersShareOneEncoder(t *testing.T) {
	r := newRig(t, whep.Options{MaxViewers: 2})
	if n := r.cam.EncodersRunning(); n != 0 {
		t.Fatalf("%d encoders before any viewer", n)
	}
	tok := token(t, "frigate", time.Hour)
	a := dial(t, r.url, wheptest.Options{Token: tok})
	b := dial(t, r.url+"?"+url.Values{"token": {tok}}.Encode(), wheptest.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for name, c := range map[string]*wheptest.Client{"bearer": a, "query": b} {
		if _, au, err := c.FirstKeyFrame(ctx); err != nil {
			t.Fatalf("%s viewer: %v", name, err)
		} else if !media.IsKeyFrame(au) {
			t.Fatalf("%s viewer: first frame is no key frame", name)
		}
		eventually(t, name+" viewer hears the microphone", func() bool { return c.AudioPackets() > 10 })
	}
	if n, started := r.cam.EncodersRunning(), r.cam.EncodersStarted(); n != 1 || started != 1 {
		t.Fatalf("two viewers: %d encoders running, %d started; want 1 and 1", n, started)
	}
	if n := r.srv.Viewers(); n != 2 {
		t.Fatalf("%d viewers, want 2", n)
	}
	if status, err := a.Delete(ctx); err != nil || status != http.StatusOK {
		t.Fatalf("DELETE: %d %v", status, err)
	}
	if n := r.srv.Viewers(); n != 1 {
		t.Fatalf("after DELETE: %d viewers, want 1", n)
	}
	before := b.Frames()
	eventually(t, "the other viewer keeps getting frames", func() bool { return b.Frames() > before+5 })
	if n := r.cam.EncodersRunning(); n != 1 {
		t.Fatalf("one viewer left: %d encoders running", n)
	}
	b.Close()
	eventually(t, "the silent viewer's session ends", func() bool { return r.srv.Viewers() == 0 })
	eventually(t, "the camera stops with the last viewer", func() bool { return r.cam.EncodersRunning() == 0 })
	if !strings.Contains(r.log.String(), "whep viewer left") {
		t.Fatalf("no log line for the viewers leaving:\n%s", r.log)
	}
}

// offerFor makes a complete receive-only offer from a pion client.
func offerFor(t *testing.T, o wheptest.Options) string {
	t.Helper()
	o.Loopback = true
	pc, err := wheptest.NewPeerConnection(o)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	offer, err := wheptest.CompleteOffer(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	return offer
}

// onlyCodec keeps, in every m= section of kind, the payload types of codec
// alone.
func onlyCodec(offer, kind, codec string) string {
	var pts []string
	var out []string
	section := ""
	for _, line := range strings.Split(strings.TrimSpace(offer), "\r\n") {
		if strings.HasPrefix(line, "m=") {
			section = strings.TrimPrefix(strings.Fields(line)[0], "m=")
		}
		if section == kind && strings.HasPrefix(line, "a=rtpmap:") {
			pt, enc, _ := strings.Cut(strings.TrimPrefix(line, "a=rtpmap:"), " ")
			if strings.HasPrefix(strings.ToLower(enc), strings.ToLower(codec)+"/") {
				pts = append(pts, pt)
			}
		}
	}
	section = ""
	for _, line := range strings.Split(strings.TrimSpace(offer), "\r\n") {
		if strings.HasPrefix(line, "m=") {
			f := strings.Fields(line)
			section = strings.TrimPrefix(f[0], "m=")
			if section == kind {
				line = strings.Join(append(f[:3], pts...), " ")
			}
		}
		if section == kind && (strings.HasPrefix(line, "a=rtpmap:") || strings.HasPrefix(line, "a=fmtp:") || strings.HasPrefix(line, "a=rtcp-fb:")) {
			_, rest, _ := strings.Cut(line, ":")
			pt, _, _ := strings.Cut(rest, " ")
			keep := false
			for _, p := range pts {
				keep = keep || p == pt
			}
			if !keep {
				continue
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

// modeZero makes every H.264 format of an offer packetization-mode 0 (one
// NAL unit per packet), which the device does not send.
func modeZero(offer string) string {
	return strings.ReplaceAll(offer, "packetization-mode=1", "packetization-mode=0")
}

// Bad requests get their status and a log line, and leave nothing open: no
// session, no viewer, no encoder, no goroutine (newRig checks).
func TestRefusals(t *testing.T) {
	r := newRig(t, whep.Options{MaxViewers: 1})
	good := token(t, "frigate", time.Hour)
	offer := offerFor(t, wheptest.Options{})
	expired, err := usersig.Sign(secret, "frigate", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := usersig.Sign([]byte("another secret, 32 bytes long..."), "frigate", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendonly := strings.ReplaceAll(offer, "a=recvonly", "a=sendonly")
	noMedia := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
	cases := []struct {
		name, token, contentType, body string
		status                         int
	}{
		{"no token", "", "application/sdp", offer, http.StatusUnauthorized},
		{"garbage token", "v1.frigate.1.xyz", "application/sdp", offer, http.StatusUnauthorized},
		{"expired token", expired, "application/sdp", offer, http.StatusUnauthorized},
		{"token of another secret", forged, "application/sdp", offer, http.StatusUnauthorized},
		{"user not allowed to watch", token(t, "mallory", time.Hour), "application/sdp", offer, http.StatusForbidden},
		{"not SDP content type", good, "application/json", `{"sdp":"x"}`, http.StatusUnsupportedMediaType},
		{"oversized", good, "application/sdp", offer + strings.Repeat("a=x-pad:"+strings.Repeat("z", 100)+"\r\n", 1000), http.StatusRequestEntityTooLarge},
		{"not SDP at all", good, "application/sdp", "hello", http.StatusBadRequest},
		{"no audio or video", good, "application/sdp", noMedia, http.StatusBadRequest},
		{"offers to send, not receive", good, "application/sdp", sendonly, http.StatusBadRequest},
		{"VP8 video only", good, "application/sdp", onlyCodec(offerFor(t, wheptest.Options{Video: true}), "video", "VP8"), http.StatusUnsupportedMediaType},
		{"VP8 and PCMU", good, "application/sdp", onlyCodec(onlyCodec(offer, "video", "VP8"), "audio", "PCMU"), http.StatusUnsupportedMediaType},
		{"H.264 packetization-mode 0 only", good, "application/sdp", modeZero(onlyCodec(offerFor(t, wheptest.Options{Video: true}), "video", "H264")), http.StatusUnsupportedMediaType},
		{"no ICE credentials", good, "application/sdp", strings.ReplaceAll(offer, "a=ice-ufrag:", "a=x-ufrag:"), http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := strings.Count(r.log.String(), "whep request refused")
			res, body, err := wheptest.Post(t.Context(), nil, r.url, c.token, c.contentType, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, strings.TrimSpace(body), c.status)
			}
			if strings.Count(r.log.String(), "whep request refused") != before+1 {
				t.Fatalf("no log line for the refusal:\n%s", r.log)
			}
			if c.status == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if n := r.srv.Viewers(); n != 0 {
				t.Fatalf("%d sessions left open", n)
			}
			t.Logf("%d %s", res.StatusCode, strings.TrimSpace(body))
		})
	}

	// Full: the one place is taken, the next viewer waits.
	c := dial(t, r.url, wheptest.Options{Token: good})
	_, err = wheptest.Dial(t.Context(), r.url, wheptest.Options{Token: good, Loopback: true})
	var se *wheptest.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Fatalf("a viewer beyond max_viewers: %v, want 503", err)
	}
	if !strings.Contains(r.log.String(), "whep.max_viewers") {
		t.Fatalf("no log line for the refusal when full:\n%s", r.log)
	}
	// Methods WHEP does not use here.
	for _, m := range []struct{ method, path string }{{http.MethodPatch, c.Location}, {http.MethodGet, r.url}} {
		req, _ := http.NewRequestWithContext(t.Context(), m.method, m.path, strings.NewReader("a=candidate:x"))
		req.Header.Set("Authorization", "Bearer "+good)
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %d, want 405", m.method, res.StatusCode)
		}
	}
	// Only its own user ends a session; an unknown one is not found.
	for _, d := range []struct {
		location, token string
		status          int
	}{
		{c.Location, token(t, "other", time.Hour), http.StatusForbidden},
		{r.url + "/0123", good, http.StatusNotFound},
		{c.Location, "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, d.location, nil)
		if d.token != "" {
			req.Header.Set("Authorization", "Bearer "+d.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != d.status {
			t.Fatalf("DELETE %s: %d, want %d", d.location, res.StatusCode, d.status)
		}
	}
	if n := r.srv.Viewers(); n != 1 {
		t.Fatalf("%d viewers after the refused DELETEs, want 1", n)
	}
	c.Close()
	eventually(t, "the session ends", func() bool { return r.srv.Viewers() == 0 })
	eventually(t, "the camera stops", func() bool { return r.cam.EncodersRunning() == 0 })
}

// A client that never connects is dropped after the connect timeout, and
// its place is free again.
func TestConnectTimeout(t *testing.T) {
	r := newRig(t, whep.Options{MaxViewers: 1, ConnectTimeout: time.Second})
	pc, err := wheptest.NewPeerConnection(wheptest.Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	offer, err := wheptest.CompleteOffer(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := wheptest.Post(t.Context(), nil, r.url, token(t, "frigate", time.Hour), "application/sdp", strings.NewReader(offer))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %v %v", res, err)
	}
	// The answer is never applied: the client's ICE agent never starts.
	eventually(t, "the session that never connected ends", func() bool { return r.srv.Viewers() == 0 })
	if !strings.Contains(r.log.String(), "not connected within 1s") {
		t.Fatalf("no log line saying why:\n%s", r.log)
	}
	eventually(t, "the camera stops", func() bool { return r.cam.EncodersRunning() == 0 })
	c := dial(t, r.url, wheptest.Options{Token: token(t, "frigate", time.Hour)})
	if _, _, err := c.FirstKeyFrame(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A session whose token is revoked ends at once (Drop); Basic
// authentication with the token as the password is accepted.
func TestDropAndBasicAuth(t *testing.T) {
	r := newRig(t, whep.Options{})
	tok := token(t, "frigate", time.Hour)
	u, _ := url.Parse(r.url)
	u.User = url.UserPassword("frigate", tok)
	c := dial(t, u.String(), wheptest.Options{})
	eventually(t, "connected", func() bool { return c.State() == webrtc.PeerConnectionStateConnected })
	// Basic with the wrong user name for the token is refused.
	u.User = url.UserPassword("someone", tok)
	if _, err := wheptest.Dial(t.Context(), u.String(), wheptest.Options{Loopback: true}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("basic authentication naming another user: %v, want 401", err)
	}
	r.srv.Drop(func(user, token string) bool { return user == "frigate" && token == tok })
	eventually(t, "the revoked session ends", func() bool { return r.srv.Viewers() == 0 })
	if !strings.Contains(r.log.String(), "token revoked or expired") {
		t.Fatalf("no log line saying why:\n%s", r.log)
	}
	eventually(t, "the client sees the end", func() bool {
		s := c.State()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	})
}

// An offer whose video the device cannot send (VP8 only) but whose audio
// it can is served the audio alone, and the camera stays off.
func TestAudioAloneWhenVideoCodecUnsupported(t *testing.T) {
	r := newRig(t, whep.Options{})
	pc, err := wheptest.NewPeerConnection(wheptest.Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	audio := make(chan struct{})
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				once.Do(func() { close(audio) })
			}
		}
	})
	offer, err := wheptest.CompleteOffer(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	res, answer, err := wheptest.Post(t.Context(), nil, r.url, token(t, "frigate", time.Hour), "application/sdp",
		strings.NewReader(onlyCodec(offer, "video", "VP8")))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %v %v %s", res, err, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-audio:
	case <-time.After(30 * time.Second):
		t.Fatal("no audio")
	}
	if n := r.cam.EncodersRunning(); n != 0 {
		t.Fatalf("%d encoders running for an audio-only viewer", n)
	}
}
