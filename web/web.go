// Package web serves intercomd's phone web app: a progressive web app that
// signs in with a user token, lists the directory with presence, calls the
// door or another phone and answers the door's ring, with WebRTC in the
// browser. The app runs the same calling core as the daemon (package calling
// compiled to WebAssembly, see web/bridge and web/wasm) and speaks MQTT over
// WebSocket to the broker (the embedded one at /mqtt on the same origin, or
// signaling.external.web_url).
//
// The built app (web/dist, made by `npm ci && go generate .` in web/ from
// web/src, web/wasm and the npm packages locked in web/package-lock.json) is
// committed and embedded in the binary; TestBundleUpToDate checks that it
// matches its sources. Browser tests: `go test ./web -run TestBrowser`
// (Debian's chromium, node; see e2e_test.go). App serves it with /config.json, which tells a
// signed-in page where to connect and whom it can call; the daemon mounts MQTT over WebSocket at /mqtt
// itself. HTTPS serves everything with a configured certificate or one from
// the device's own certificate authority (package devca; browsers grant
// camera and microphone, and register service workers, only on origins they
// trust), and Listener serves the install page of that authority's root
// (/install, /ca.crt, /ca.mobileconfig) over plain HTTP on the same port.
//
// App is safe for concurrent use: it serves a snapshot of the configuration,
// replaced whole by SetConfig after a reload. The package keeps no global
// state.
package web

//go:generate go run ./internal/webgen -out dist

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/intercomd/intercomd/config"
)

//go:embed all:dist
var dist embed.FS

// ClientConfig is the JSON served at /config.json to a signed-in user:
// what the page needs to connect and call. It is not secret from the
// residents, but tells a stranger who lives there and who may open the
// door, so it is served only with a valid token (App.SetTokens).
type ClientConfig struct {
	Device ClientDevice `json:"device"`
	// MQTTURL is the ws:// or wss:// broker address for an external broker;
	// empty means MQTTPath on the page's own origin.
	MQTTURL  string `json:"mqtt_url,omitempty"`
	MQTTPath string `json:"mqtt_path"`
	Prefix   string `json:"prefix"`
	// Directory lists the people and devices the app shows, the device
	// first.
	Directory []ClientEntry       `json:"directory"`
	Groups    map[string][]string `json:"groups"`
	// DoorUsers may open the door (the device checks again: this only
	// decides whether the app shows the button).
	DoorUsers       []string `json:"door_users"`
	InviteTimeoutMS int64    `json:"invite_timeout_ms"`
	MultiDevice     bool     `json:"multi_device"`
}

// ClientDevice names the intercom itself.
type ClientDevice struct {
	User string `json:"user"`
	Name string `json:"name"`
}

// ClientEntry is one directory entry; Door marks the device itself.
type ClientEntry struct {
	User string `json:"user"`
	Name string `json:"name"`
	Door bool   `json:"door,omitempty"`
}

// NewClientConfig derives the page's configuration from cfg.
func NewClientConfig(cfg *config.Config) ClientConfig {
	c := ClientConfig{
		Device:          ClientDevice{User: cfg.Device.User, Name: cfg.Device.Name},
		MQTTPath:        "/mqtt",
		Prefix:          cfg.Signaling.TopicPrefix,
		Groups:          map[string][]string{},
		DoorUsers:       append([]string{}, cfg.Calling.DoorUsers...),
		InviteTimeoutMS: cfg.Calling.InviteTimeout.Milliseconds(),
		MultiDevice:     cfg.Calling.MultiDevice,
	}
	if cfg.Signaling.Broker == config.BrokerExternal {
		c.MQTTURL = cfg.Signaling.External.WebURL
	}
	c.Directory = append(c.Directory, ClientEntry{User: cfg.Device.User, Name: cfg.Device.Name, Door: true})
	for _, e := range cfg.Signaling.Directory {
		if e.User == cfg.Device.User {
			continue
		}
		name := e.Name
		if name == "" {
			name = e.User
		}
		c.Directory = append(c.Directory, ClientEntry{User: e.User, Name: name})
	}
	for g, members := range cfg.Signaling.Groups {
		c.Groups[g] = append([]string{}, members...)
	}
	return c
}

// App serves the phone web app and /config.json. Mount it at "/" beside
// the broker's /mqtt.
type App struct {
	root   fs.FS
	client atomic.Pointer[ClientConfig]
	tokens atomic.Pointer[Tokens] // who may read /config.json; nil: nobody
	log    *slog.Logger

	root509 atomic.Pointer[x509.Certificate] // the device CA's root; see SetRoot

	gzOnce sync.Once
	gz     map[string][]byte // gzipped text files, made on first use
}

// New returns the app for cfg; log (nil discards) receives serving errors.
func New(cfg *config.Config, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("web: embedded dist missing: " + err.Error()) // a build error, never at run time
	}
	a := &App{root: root, log: log}
	a.SetConfig(cfg)
	return a
}

// SetConfig replaces what /config.json tells the pages (after a reload).
// It copies what it needs from cfg, so cfg may change afterwards.
func (a *App) SetConfig(cfg *config.Config) {
	c := NewClientConfig(cfg)
	a.client.Store(&c)
}

// SetTokens sets how the tokens of the users who may read /config.json are
// verified; until it is called nobody may.
func (a *App) SetTokens(t Tokens) { a.tokens.Store(&t) }

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	switch name {
	case "config.json":
		a.serveConfig(w, r)
		return
	case "install", "ca.crt", "ca.mobileconfig", "install.html":
		a.serveInstall(w, r, strings.TrimSuffix(name, ".html"))
		return
	case "":
		name = "index.html"
	}
	if name == "calling.wasm" {
		a.serveWasm(w, r)
		return
	}
	b, err := fs.ReadFile(a.root, name)
	if err != nil || strings.HasSuffix(name, ".gz") {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".webmanifest":
		ct = "application/manifest+json"
	case "":
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// The service worker and the page must never be stale; the rest is
	// versioned by the service worker's cache.
	w.Header().Set("Cache-Control", "no-cache")
	if name == "index.html" {
		w.Header().Set("Content-Security-Policy", csp)
	}
	if z := a.compressed(name, b); z != nil {
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			b = z
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// compressed returns the gzipped form of a text file of the app (the
// bundle is large: MQTT.js), or nil for other files.
func (a *App) compressed(name string, b []byte) []byte {
	a.gzOnce.Do(func() {
		a.gz = map[string][]byte{}
		_ = fs.WalkDir(a.root, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !compressible(p) {
				return err
			}
			raw, err := fs.ReadFile(a.root, p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(raw)
			_ = zw.Close()
			a.gz[p] = buf.Bytes()
			return nil
		})
	})
	return a.gz[name]
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".css", ".html", ".webmanifest":
		return true
	}
	return false
}

// csp allows the app's own scripts and WebAssembly, MQTT over WebSocket to
// any host (an external broker), media from the camera.
const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:; " +
	"worker-src 'self' blob:; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// serveConfig serves the page's configuration to a signed-in user.
func (a *App) serveConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	t := a.tokens.Load()
	if t == nil {
		t = &Tokens{}
	}
	if _, _, err := t.Verify(r); err != nil {
		refuse(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.client.Load())
}

// serveWasm serves the embedded, gzipped calling core: as it is to clients
// that accept gzip, inflated for the others.
func (a *App) serveWasm(w http.ResponseWriter, r *http.Request) {
	f, err := a.root.Open("calling.wasm.gz")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/wasm")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		if st, err := f.Stat(); err == nil {
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = io.Copy(w, f)
		return
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		a.log.Error("embedded calling.wasm.gz is corrupt", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, zr)
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") || strings.Contains(params, "q=0.")
		}
	}
	return false
}
