package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/media/whep/wheptest"
	"github.com/intercomd/intercomd/push/pushtest"
	"github.com/intercomd/intercomd/web/devca"
)

// go2rtcVersion is the go2rtc scripts/test-deps builds.
const go2rtcVersion = "v1.9.9"

// whepConfig serves WHEP to frigate at 320x240, with metrics.
const whepConfig = `http:
  listen: 127.0.0.1:0
  metrics: true
camera:
  devices: [{device: test-pattern, width: 320, height: 240, fps: 15}]
whep:
  enabled: true
  users: [frigate]
  max_viewers: 3
`

// requireGo2RTC returns go2rtc's path: $INTERCOMD_GO2RTC, or where
// scripts/test-deps builds it.
func requireGo2RTC(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INTERCOMD_GO2RTC"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err == nil {
		p := filepath.Join(dir, "intercomd", "go2rtc-"+go2rtcVersion)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	pushtest.Missing(t, "go2rtc "+go2rtcVersion+" (scripts/test-deps builds it into the user's cache directory)")
	return ""
}

// startGo2RTC runs go2rtc until the test ends with one stream, door,
// pulled over WHEP from endpoint with the token in the URL (as a go2rtc
// configuration must, go2rtc sending nothing but the URL), trusting the
// certificate authority in the file ca as README tells a Frigate container
// to. It returns the stream's RTSP restream; go2rtc pulls while a client
// reads it.
func startGo2RTC(t testing.TB, endpoint, tok, ca string) string {
	t.Helper()
	bin := requireGo2RTC(t)
	dir := t.TempDir()
	api, rtsp := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`api: {listen: "127.0.0.1:%d"}
rtsp: {listen: "127.0.0.1:%d"}
srtp: {listen: ""}
webrtc:
  listen: ""
  ice_servers: []
  filters: {loopback: true, networks: [udp4]}
streams:
  door: "webrtc:%s?%s"
`, api, rtsp, endpoint, url.Values{"token": {tok}}.Encode())
	if err := os.WriteFile(filepath.Join(dir, "go2rtc.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "go2rtc.yaml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("go2rtc:\n%s", out)
		}
	})
	out.waitFor(t, "[rtsp] listen", 20*time.Second)
	return fmt.Sprintf("rtsp://127.0.0.1:%d/door", rtsp)
}

// whepURL is the daemon's WHEP endpoint, and an HTTP client trusting the
// device's certificate authority (as go2rtc is set up to).
func (d *daemonUnderTest) whepURL(t testing.TB) (string, *http.Client, string) {
	t.Helper()
	return whepEndpoint(t, d.stderr.String(), filepath.Join(d.dir, "state"))
}

// whepEndpoint reads the WHEP endpoint from a daemon's log and the
// certificate authority from its state directory.
func whepEndpoint(t testing.TB, logs, stateDir string) (string, *http.Client, string) {
	t.Helper()
	m := regexp.MustCompile(`msg=https listen=(\S+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatal("the daemon did not say where it serves HTTPS")
	}
	ca := filepath.Join(stateDir, devca.RootCert)
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", ca)
	}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	return "https://" + m[1] + "/whep", hc, ca
}

// gauge scrapes one series.
func (d *daemonUnderTest) gauge(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, status := d.scrape(t)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	v, ok := value(fams, name, labels...)
	if !ok {
		t.Fatalf("no %s in /metrics", name)
	}
	return v
}

func waitGauge(t *testing.T, d *daemonUnderTest, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := d.gauge(t, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", name, v, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// go2rtc pulls the door's stream over WHEP with the token in the URL and
// restreams it over RTSP, where ffmpeg decodes frames of the configured
// size; a pion client watches at the same time. Both viewers are served
// by one encoder, nobody rings and the door stays idle; the camera stops
// when both have gone.
func TestGo2RTCPullsWHEP(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		pushtest.Missing(t, "ffmpeg")
	}
	d := startDaemon(t, whepConfig)
	endpoint, hc, ca := d.whepURL(t)
	tok := d.token(t, "frigate")
	if v := d.gauge(t, "intercomd_video_encoders"); v != 0 {
		t.Fatalf("%v encoders before any viewer", v)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pion, err := wheptest.Dial(ctx, endpoint, wheptest.Options{HTTP: hc, Token: tok, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pion.Close()
	if _, _, err := pion.FirstKeyFrame(ctx); err != nil {
		t.Fatal(err)
	}

	rtsp := startGo2RTC(t, endpoint, tok, ca)

	// ffmpeg pulls 90 frames (6 s) from go2rtc's RTSP restream, as gray
	// pictures: their bytes tell the size it decoded.
	const frames = 90
	var raw bytes.Buffer
	ffErr := &syncBuffer{}
	ff := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-rtsp_transport", "tcp",
		"-i", rtsp,
		"-map", "0:v", "-frames:v", fmt.Sprint(frames), "-f", "rawvideo", "-pix_fmt", "gray", "-")
	ff.Stdout, ff.Stderr = &raw, ffErr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	ffDone := make(chan error, 1)
	go func() { ffDone <- ff.Wait() }()
	// While ffmpeg watches through go2rtc, and the pion client directly:
	// two viewers, one encoder, no call.
	both := false
	for !both {
		select {
		case err := <-ffDone:
			t.Fatalf("ffmpeg ended before both viewers were seen: %v\n%s", err, ffErr)
		case <-time.After(100 * time.Millisecond):
		}
		both = d.gauge(t, "intercomd_whep_viewers") == 2
	}
	if v := d.gauge(t, "intercomd_video_encoders"); v != 1 {
		t.Fatalf("two viewers: %v video encoders, want 1", v)
	}
	if v := d.gauge(t, "intercomd_call_state", `state="idle"`); v != 1 {
		t.Fatal("a WHEP viewer took the door out of idle")
	}
	if err := <-ffDone; err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, ffErr)
	}
	if got, want := raw.Len(), frames*320*240; got != want {
		t.Fatalf("ffmpeg decoded %d bytes, want %d frames of 320x240 (%d)", got, frames, want)
	}
	t.Logf("ffmpeg decoded %d frames of 320x240 from go2rtc's restream", frames)
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", rtsp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264") || !strings.Contains(string(out), "opus") {
		t.Fatalf("ffprobe of the restream: %v\n%s", err, out)
	}

	// go2rtc lets go of the stream once nobody watches it: its session
	// ends without a DELETE (go2rtc never sends one).
	waitGauge(t, d, "intercomd_whep_viewers", 1)
	if status, err := pion.Delete(ctx); err != nil || status != http.StatusOK {
		t.Fatalf("DELETE: %d %v", status, err)
	}
	waitGauge(t, d, "intercomd_whep_viewers", 0)
	waitGauge(t, d, "intercomd_video_encoders", 0)
	if strings.Contains(d.stdout.String(), "[dialing]") || strings.Contains(d.stderr.String(), "msg=button") {
		t.Fatalf("a WHEP viewer rang:\n%s", d.stdout)
	}
}

// A viewer beside a call: it joins and leaves without touching the call,
// and the camera runs until the last of them is gone, whichever it is.
func TestWHEPBesideACall(t *testing.T) {
	d := startDaemon(t, whepConfig)
	endpoint, hc, _ := d.whepURL(t)
	alice, _ := d.phone(t, "alice")
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := alice.Do(ctx, calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.InCall)
	waitGauge(t, d, "intercomd_video_encoders", 1)

	v, err := wheptest.Dial(ctx, endpoint, wheptest.Options{HTTP: hc, Token: d.token(t, "frigate"), Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, _, err := v.FirstKeyFrame(ctx); err != nil {
		t.Fatal(err)
	}
	if v := d.gauge(t, "intercomd_video_encoders"); v != 1 {
		t.Fatalf("a call and a viewer: %v encoders, want 1", v)
	}
	if status, err := v.Delete(ctx); err != nil || status != http.StatusOK {
		t.Fatalf("DELETE: %d %v", status, err)
	}
	waitGauge(t, d, "intercomd_whep_viewers", 0)
	if alice.State() != calling.InCall {
		t.Fatalf("the viewer leaving ended the call: alice is %s", alice.State())
	}
	if v := d.gauge(t, "intercomd_video_encoders"); v != 1 {
		t.Fatalf("the call goes on: %v encoders, want 1", v)
	}

	// Now the viewer outlasts the call.
	v2, err := wheptest.Dial(ctx, endpoint, wheptest.Options{HTTP: hc, Token: d.token(t, "frigate"), Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if err := alice.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	d.stdout.waitFor(t, "[idle] [LED: off]", 10*time.Second)
	before := v2.Frames()
	deadline := time.Now().Add(20 * time.Second)
	for v2.Frames() < before+15 {
		if time.Now().After(deadline) {
			t.Fatalf("the viewer got %d frames after the call ended, want 15 more", v2.Frames()-before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := d.gauge(t, "intercomd_video_encoders"); v != 1 {
		t.Fatalf("the viewer alone: %v encoders, want 1", v)
	}
	v2.Close()
	waitGauge(t, d, "intercomd_whep_viewers", 0)
	waitGauge(t, d, "intercomd_video_encoders", 0)
}
