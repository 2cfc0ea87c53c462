package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
)

// scrape reads the daemon's /metrics over its HTTPS port: the value of
// every series, keyed by the series as written (name{labels}).
func (d *daemonUnderTest) scrape(t *testing.T) (map[string]float64, int) {
	t.Helper()
	m := regexp.MustCompile(`msg=https listen=(\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatal("the daemon did not say where it serves HTTPS")
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the daemon's self-signed certificate
	}}
	resp, err := c.Get("https://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics line %q is not name{labels} value", line)
		}
		samples[line[:i]] = v
	}
	return samples, resp.StatusCode
}

// value returns the value of the series of metric name whose labels
// contain every one of labels (k="v"), and whether there is one.
func value(samples map[string]float64, name string, labels ...string) (float64, bool) {
	for k, v := range samples {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(k, l)
		}
		if all {
			return v, true
		}
	}
	return 0, false
}

// aliceAnswers signs alice in, rings the doorbell and has her answer: the
// call is up on both sides (alice's media may connect a moment before the
// door counts her in the call).
func (d *daemonUnderTest) aliceAnswers(t *testing.T) *endpoint.Endpoint {
	t.Helper()
	alice, _ := d.phone(t, "alice")
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	if err := alice.Do(t.Context(), calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, calling.InCall)
	d.stderr.waitFor(t, `event="UserEnter alice"`, 10*time.Second)
	return alice
}

// TestMetrics: with http.metrics the daemon's /metrics follows a doorbell
// call: the state while it lasts, the peer's call quality and the one video
// encoder, the door opening, and the call's end by reason.
func TestMetrics(t *testing.T) {
	d := startDaemon(t, "http:\n  listen: 127.0.0.1:0\n  metrics: true\n")
	fams, _ := d.scrape(t)
	if v, ok := value(fams, "intercomd_call_state", `state="idle"`); !ok || v != 1 {
		t.Fatalf("idle state %v (%v)", v, ok)
	}
	if v, ok := value(fams, "intercomd_signaling_connected"); !ok || v != 1 {
		t.Fatalf("signaling connected %v (%v)", v, ok)
	}
	if _, ok := value(fams, "intercomd_calls_total"); ok {
		t.Fatal("calls counted before any call")
	}

	alice := d.aliceAnswers(t)
	ctx := t.Context()
	if err := alice.Do(ctx, calling.OpenDoor{}); err != nil {
		t.Fatal(err)
	}
	d.stderr.waitFor(t, "door open", 5*time.Second)
	// Call quality is read every 5 s (media.stats_interval's default).
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams, _ = d.scrape(t)
		if v, ok := value(fams, "intercomd_peer_bitrate_bits_per_second", `peer="1"`, `direction="send"`); ok && v > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no call quality for alice in /metrics")
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"intercomd_call_state", []string{`state="in_call"`}, 1},
		{"intercomd_call_state", []string{`state="idle"`}, 0},
		{"intercomd_video_encoders", nil, 1},
		{"intercomd_vp8_encoders", nil, 0}, // alice takes H.264: no VP8 encoder
		{"intercomd_door_openings_total", nil, 1},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// Whoever reaches /metrics learns nothing of who calls whom: no label
	// carries a call ID or a user name.
	for series := range fams {
		if strings.Contains(series, "alice") || strings.Contains(series, `call="`) || strings.Contains(series, `user="`) {
			t.Errorf("series %s names a call or a user", series)
		}
	}
	if v, ok := value(fams, "intercomd_audio_frames_total"); !ok || v < 50 {
		t.Errorf("audio frames %v (present %v), want a second's worth at least", v, ok)
	}

	// The door's button hangs up: the door ends the call itself, so its
	// reason is "hangup" whatever alice's connection does meanwhile.
	if _, err := io.WriteString(d.stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		fams, _ = d.scrape(t)
		if v, _ := value(fams, "intercomd_calls_total", `reason="`+calling.ReasonHangup.String()+`"`); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call's end is not counted by reason %q: %v", calling.ReasonHangup, fams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, _ := value(fams, "intercomd_call_state", `state="idle"`); v != 1 {
		t.Errorf("idle state %v after the call", v)
	}
}

// TestMetricsSignalingAfterKick: once the device's user signs in elsewhere,
// the daemon is off signaling for good and /metrics says so.
func TestMetricsSignalingAfterKick(t *testing.T) {
	d := startDaemon(t, "http:\n  listen: 127.0.0.1:0\n  metrics: true\n")
	fams, _ := d.scrape(t)
	if v, ok := value(fams, "intercomd_signaling_connected"); !ok || v != 1 {
		t.Fatalf("signaling connected %v (%v) before the kick", v, ok)
	}
	d.phone(t, "door") // the same user signs in elsewhere
	d.stderr.waitFor(t, "logged in elsewhere", 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams, _ = d.scrape(t)
		if v, ok := value(fams, "intercomd_signaling_connected"); ok && v == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("intercomd_signaling_connected still 1 after the device was signed in elsewhere")
		}
	}
}

// TestMetricsOffByDefault: without http.metrics there is no /metrics.
func TestMetricsOffByDefault(t *testing.T) {
	d := startDaemon(t, "")
	if _, code := d.scrape(t); code == http.StatusOK {
		t.Fatal("/metrics served without http.metrics")
	}
}

// intercomd_door_openings_total counted requests (20 in 2 s counted 20): it
// counts the pulses the relay drove, a request during a pulse extending it.
func TestMetricsCountDoorPulses(t *testing.T) {
	d := startDaemon(t, "http:\n  listen: 127.0.0.1:0\n  metrics: true\ngpio:\n  backend: sim\n  relay: {line: GPIO22, pulse: 3s}\n")
	alice := d.aliceAnswers(t)
	ctx := t.Context()
	const requests = 20
	for range requests {
		if err := alice.Do(ctx, calling.OpenDoor{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(d.stderr.String(), `msg="door open"`) < requests {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d door requests reached the station", strings.Count(d.stderr.String(), `msg="door open"`), requests)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fams, _ := d.scrape(t)
	got, _ := value(fams, "intercomd_door_openings_total")
	pulses := strings.Count(d.stdout.String(), "[relay: ON]")
	if got != float64(pulses) || pulses == 0 || pulses >= requests {
		t.Fatalf("door openings %v for %d requests, the relay energised %d times", got, requests, pulses)
	}
	t.Logf("%d requests, %d pulses, counted %v", requests, pulses, got)
}
