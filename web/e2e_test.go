package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/usersig"
)

// The browser suite: a real intercomd (built from ./cmd/intercomd, embedded
// broker, test-pattern camera, null audio, simulated GPIO) and Debian's
// Chromium with fake camera and microphone, driven by playwright-core from
// the node test runner (web/e2e/*.test.mjs). The Go side owns the daemon and
// offers the browser tests a small control server on loopback: press the
// doorbell, count relay pulses, read the calling state, issue tokens.

// tokenSecret signs the tokens of the suite (the daemon's
// signaling.embedded.token_secret).
const tokenSecret = "e2e-secret-0123456789abcdef012345"

// needTool skips (or, under CI, fails) when what is missing.
func needTool(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("BROWSER TESTS NOT RUN: %s: %v", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// browserPath is the browser $env names, by default Debian's package pkg
// in /usr/bin; it skips (fails in CI) when that is missing.
func browserPath(t testing.TB, env, pkg string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path = "/usr/bin/" + pkg
	}
	_, err := os.Stat(path)
	needTool(t, fmt.Sprintf("%s (apt-get install %s)", path, pkg), err)
	return path
}

// browserEnv checks Chromium, node and the npm packages (installing them
// with `npm ci` when npm is there) and returns the chromium path.
func browserEnv(t testing.TB) string {
	t.Helper()
	chromium := browserPath(t, "CHROMIUM", "chromium")
	_, err := exec.LookPath("node")
	needTool(t, "node", err)
	if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
		_, nerr := exec.LookPath("npm")
		needTool(t, "npm, to install playwright-core", nerr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
		needTool(t, "npm ci in web/: "+string(out), err)
	}
	return chromium
}

// buildDaemon builds intercomd once per test binary (or uses INTERCOMD_BIN).
func buildDaemon(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("INTERCOMD_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "intercomd")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/intercomd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build intercomd: %v\n%s", err, out)
	}
	return bin
}

// device is a running intercomd.
type device struct {
	t      testing.TB
	url    string // https://127.0.0.1:port/
	config string // its configuration file
	stdin  io.WriteCloser
	client *http.Client

	mu     sync.Mutex
	relay  int            // "[relay: ON]" lines seen
	heard  map[string]int // "[heard: USER ...]" lines seen, by user
	output bytes.Buffer
	ntfy   *ntfyTopic // alice's ntfy topic
}

// ntfyTopic receives the device's ntfy publications for alice and keeps
// the last one's headers (the browser cannot subscribe to a push service
// here, so alice rings while her app is closed through ntfy).
type ntfyTopic struct {
	mu   sync.Mutex
	last http.Header
}

func (n *ntfyTopic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	n.mu.Lock()
	n.last = r.Header.Clone()
	n.mu.Unlock()
	fmt.Fprint(w, `{"id":"x","event":"message"}`)
}

const deviceConfig = `version: 1
device:
  user: door
  name: Front door
  state_dir: %[1]s
log:
  level: debug
  format: text
signaling:
  embedded:
    listen: "127.0.0.1:0"
    token_secret: %[2]q
  groups:
    residents: [alice, bob]
  directory:
    - {user: alice, name: Alice}
    - {user: bob, name: Bob}
calling:
  invite_timeout: 10s
  auto_answer: true
  door_users: [alice]
  doorbell:
    users: [alice, bob]
http:
  listen: "127.0.0.1:0"
push:
  contact: mailto:owner@example.org
  app_url: https://door.example
  ntfy:
    - {user: alice, server: %[3]q, topic: door-alice}
camera:
  devices:
    - {device: test-pattern, width: 320, height: 240, fps: 15}
audio:
  backend: "null"
  test_tone: 1000
visitor_log:
  voice_message: {enabled: true, max_duration: 3s, silence: 0s}
gpio:
  backend: sim
`

var (
	httpListen = regexp.MustCompile(`msg=https listen=(\S+)`)
	// heardLine is what a simulated device prints when a party's audio
	// reaches its speaker with some energy.
	heardLine = regexp.MustCompile(`\[heard: ([A-Za-z0-9_-]+)`)
)

// startDevice runs intercomd until the test ends; edits, if any, change its
// configuration file's text first.
func startDevice(t testing.TB, bin string, edits ...func(string) string) *device {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "intercomd.yaml")
	topic := &ntfyTopic{}
	ntfy := httptest.NewServer(topic)
	t.Cleanup(ntfy.Close)
	text := fmt.Sprintf(deviceConfig, filepath.Join(dir, "state"), tokenSecret, ntfy.URL)
	for _, edit := range edits {
		text = edit(text)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "INTERCOMD_SIM_STDIN=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, config: cfg, stdin: stdin, heard: map[string]int{}, ntfy: topic, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}}
	addr := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			if strings.Contains(sc.Text(), "[relay: ON]") {
				d.relay++
			}
			if m := heardLine.FindStringSubmatch(sc.Text()); m != nil {
				d.heard[m[1]]++
			}
			d.output.WriteString("out: " + sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := httpListen.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			d.mu.Lock()
			d.output.WriteString("log: " + sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	exited := make(chan error, 1)
	go func() {
		readers.Wait()
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("intercomd exited: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("intercomd did not stop within 10 s of SIGTERM")
		}
		if t.Failed() || testing.Verbose() {
			d.mu.Lock()
			t.Logf("intercomd output:\n%s", d.output.String())
			d.mu.Unlock()
		}
	})
	select {
	case a := <-addr:
		d.url = "https://" + a + "/"
	case err := <-exited:
		exited <- err
		t.Fatalf("intercomd exited at start: %v\n%s", err, d.output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("intercomd did not start its HTTP server within 30 s\n%s", d.output.String())
	}
	// The app must be served: a daemon without the web app fails here.
	// Its configuration goes to signed-in users only.
	tok, err := usersig.Sign([]byte(tokenSecret), "alice", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer " + tok, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, d.url+"config.json", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatalf("GET %sconfig.json: %v: the daemon does not serve the phone web app over HTTPS (serveHTTP must call mountWeb and webTLS)", d.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("GET %sconfig.json (token %v): %s, want %d", d.url, c.auth != "", resp.Status, c.want)
		}
	}
	return d
}

func (d *device) state() (string, error) {
	resp, err := d.client.Get(d.url + "healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// control serves the browser tests' hooks on loopback.
func (d *device) control(t testing.TB) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /press", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.WriteString(d.stdin, "\n"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /relay", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		fmt.Fprintf(w, `{"on":%d}`, d.relay)
	})
	mux.HandleFunc("GET /heard", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		fmt.Fprintf(w, `{"count":%d}`, d.heard[r.URL.Query().Get("user")])
	})
	mux.HandleFunc("GET /ntfy", func(w http.ResponseWriter, r *http.Request) {
		d.ntfy.mu.Lock()
		defer d.ntfy.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"title": d.ntfy.last.Get("Title"), "click": d.ntfy.last.Get("Click")})
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		st, err := d.state()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, st)
	})
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		ttl, err := time.ParseDuration(r.URL.Query().Get("ttl"))
		if err != nil {
			ttl = time.Hour
		}
		tok, err := usersig.Sign([]byte(tokenSecret), r.URL.Query().Get("user"), time.Now().Add(ttl))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, tok)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// runNode runs the node test runner over the given test files with the
// device's addresses in the environment, streaming its report to the log.
// E2E_ONLY, when set, runs only the tests whose names match that pattern.
func runNode(t testing.TB, chromium string, d *device, ctl string, timeout time.Duration, extraEnv []string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, files...)
	if p := os.Getenv("E2E_ONLY"); p != "" {
		args = append([]string{"--test-name-pattern=" + p}, args...)
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(),
		"INTERCOMD_URL="+d.url,
		"INTERCOMD_CONTROL="+ctl,
		"CHROMIUM="+chromium,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out.String())
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
}

// screenshotDir is where the suite saves its screenshots of every screen
// (390x844, light and dark) for people to look at: $SCREENSHOT_DIR/<browser>,
// by default web/e2e/screenshots/<browser>, which git ignores.
func screenshotDir(t testing.TB, browser string) string {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = "e2e/screenshots"
	}
	dir, err := filepath.Abs(filepath.Join(dir, browser))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are long; not with -short")
	}
	chromium := browserEnv(t)
	d := startDevice(t, buildDaemon(t))
	ctl := d.control(t)
	runNode(t, chromium, d, ctl, 10*time.Minute, []string{"SCREENSHOT_DIR=" + screenshotDir(t, "chromium")}, "e2e/app.test.mjs")
	if st, err := d.state(); err != nil || st != "idle" {
		t.Errorf("device state after the suite = %q, %v; want idle", st, err)
	}
}

// firefoxPath is Debian's Firefox ESR ($FIREFOX), or skips (fails in CI)
// naming what is missing.
func firefoxPath(t testing.TB) string {
	t.Helper()
	ff := browserPath(t, "FIREFOX", "firefox-esr")
	if _, err := os.Stat("node_modules/puppeteer-core/package.json"); err != nil {
		needTool(t, "puppeteer-core (npm ci in web/)", err)
	}
	return ff
}

// TestBrowserFirefox runs the main paths in Firefox ESR (puppeteer-core
// over WebDriver BiDi): sign-in, calling the door, answering a ring, media
// both ways from getStats, opening the door.
func TestBrowserFirefox(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are long; not with -short")
	}
	chromium := browserEnv(t)
	ff := firefoxPath(t)
	d := startDevice(t, buildDaemon(t))
	ctl := d.control(t)
	runNode(t, chromium, d, ctl, 8*time.Minute, []string{"FIREFOX=" + ff, "SCREENSHOT_DIR=" + screenshotDir(t, "firefox")}, "e2e/firefox.test.mjs")
	if st, err := d.state(); err != nil || st != "idle" {
		t.Errorf("device state after the suite = %q, %v; want idle", st, err)
	}
}

// BenchmarkCallToVideo measures, in each real browser (Chromium, and
// Firefox ESR when installed), over 20 calls: the time from tapping the
// door's video call button to the door's video playing (video-p50-ms,
// video-p90-ms; VP8 in a Firefox without H.264) and to the call being in
// progress (connected-p50-ms); and the time from the doorbell's press to
// the app ringing (ring-p50-ms, ring-p90-ms).
func BenchmarkCallToVideo(b *testing.B) {
	chromium := browserEnv(b)
	d := startDevice(b, buildDaemon(b))
	ctl := d.control(b)
	for _, browser := range []string{"chromium", "firefox"} {
		b.Run(browser, func(b *testing.B) {
			env := []string{"BENCH_CALLS=20", "BENCH_BROWSER=" + browser}
			if browser == "firefox" {
				env = append(env, "FIREFOX="+firefoxPath(b))
			}
			out := filepath.Join(b.TempDir(), "bench.json")
			env = append(env, "BENCH_OUT="+out)
			b.ResetTimer()
			for range b.N {
				runNode(b, chromium, d, ctl, 10*time.Minute, env, "e2e/bench.test.mjs")
			}
			b.StopTimer()
			raw, err := os.ReadFile(out)
			if err != nil {
				b.Fatalf("no figures: %v", err)
			}
			type pcts struct {
				P50 float64 `json:"p50_ms"`
				P90 float64 `json:"p90_ms"`
			}
			var res struct {
				Video     *pcts `json:"video"`
				Connected pcts  `json:"connected"`
				Ring      pcts  `json:"ring"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				b.Fatal(err)
			}
			if res.Video != nil {
				b.ReportMetric(res.Video.P50, "video-p50-ms")
				b.ReportMetric(res.Video.P90, "video-p90-ms")
			}
			b.ReportMetric(res.Connected.P50, "connected-p50-ms")
			b.ReportMetric(res.Ring.P50, "ring-p50-ms")
			b.ReportMetric(res.Ring.P90, "ring-p90-ms")
		})
	}
}
