package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/web"
)

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`version: 1
device: {user: door, name: Front door}
signaling:
  groups: {residents: [alice, bob]}
  directory:
    - {user: alice, name: Alice}
    - {user: bob}
    - {user: door, name: listed twice}
calling:
  invite_timeout: 20s
  door_users: [alice]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesTheApp(t *testing.T) {
	cfg := testConfig(t)
	h := web.New(cfg, nil)

	resp := get(t, h, "/")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(body, []byte(`<script src="app.js"`)) {
		t.Errorf("index.html does not load app.js")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'wasm-unsafe-eval'") || strings.Contains(csp, "'unsafe-inline'") {
		t.Errorf("CSP = %q", csp)
	}

	for path, ct := range map[string]string{
		"/app.js":               "text/javascript",
		"/sw.js":                "text/javascript",
		"/wasm_exec.js":         "text/javascript",
		"/style.css":            "text/css",
		"/manifest.webmanifest": "application/manifest+json",
		"/icon-192.png":         "image/png",
		"/icon-512.png":         "image/png",
	} {
		resp := get(t, h, path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s = %s %q, want 200 %s", path, resp.Status, resp.Header.Get("Content-Type"), ct)
		}
	}
	// Text is gzipped for clients that accept it.
	js := get(t, h, "/app.js")
	plainJS, _ := io.ReadAll(js.Body)
	zjs := get(t, h, "/app.js", "Accept-Encoding", "gzip")
	if zjs.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("app.js not gzipped for a client accepting gzip")
	}
	zr, err := gzip.NewReader(zjs.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plainJS) || js.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzipped app.js differs from the plain one")
	}
	for _, path := range []string{"/nope", "/calling.wasm.gz", "/../web.go"} {
		if resp := get(t, h, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %s, want 404", path, resp.Status)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/config.json", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", rec.Code)
	}
}

func TestHandlerServesWasmCompressedOrNot(t *testing.T) {
	cfg := testConfig(t)
	h := web.New(cfg, nil)

	gz := get(t, h, "/calling.wasm", "Accept-Encoding", "gzip, deflate, br")
	if gz.Header.Get("Content-Type") != "application/wasm" || gz.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: Content-Type %q, Content-Encoding %q", gz.Header.Get("Content-Type"), gz.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	plain := get(t, h, "/calling.wasm")
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("identity: Content-Type %q, Content-Encoding %q", plain.Header.Get("Content-Type"), plain.Header.Get("Content-Encoding"))
	}
	raw, _ := io.ReadAll(plain.Body)
	if !bytes.Equal(raw, inflated) || !bytes.HasPrefix(raw, []byte("\x00asm")) {
		t.Fatalf("identity and gzip bodies differ or are not WebAssembly (%d and %d bytes)", len(raw), len(inflated))
	}
	if len(raw) < 1<<20 {
		t.Errorf("calling.wasm is %d bytes: too small to hold the calling core", len(raw))
	}
}

// signIn lets a token of secret read the app's /config.json and returns
// the header of alice's.
func signIn(t *testing.T, app *web.App) []string {
	t.Helper()
	secret, err := usersig.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	app.SetTokens(web.Tokens{Secret: secret})
	tok, err := usersig.Sign(secret, "alice", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return []string{"Authorization", "Bearer " + tok}
}

// Without signing in /config.json gave the directory, the groups and who
// may open the door to anyone: it needs a valid token now.
func TestClientConfigNeedsToken(t *testing.T) {
	app := web.New(testConfig(t), nil)
	secret, err := usersig.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	sign := func(user string, exp time.Duration) string {
		tok, err := usersig.Sign(secret, user, time.Now().Add(exp))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	valid := sign("alice", time.Hour)
	check := func(name string, want int, header ...string) {
		t.Helper()
		resp := get(t, app, "/config.json", header...)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Errorf("%s: %s, want %d", name, resp.Status, want)
		}
		if want != http.StatusOK && (bytes.Contains(body, []byte("directory")) || bytes.Contains(body, []byte("door_users")) || bytes.Contains(body, []byte("Alice"))) {
			t.Errorf("%s: refused, yet told: %s", name, body)
		}
		if want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
	}
	check("no tokens set", http.StatusUnauthorized, "Authorization", valid)
	app.SetTokens(web.Tokens{Secret: secret, Accept: func(tok string, c usersig.Claims) string {
		if c.User == "mallory" {
			return "revoked"
		}
		return ""
	}})
	check("no token", http.StatusUnauthorized)
	check("not bearer", http.StatusUnauthorized, "Authorization", "Basic YWxpY2U6eA==")
	check("garbage", http.StatusUnauthorized, "Authorization", "Bearer v1.alice.x.y")
	check("expired", http.StatusUnauthorized, "Authorization", sign("alice", -time.Minute))
	check("revoked", http.StatusUnauthorized, "Authorization", sign("mallory", time.Hour))
	other, _ := usersig.NewSecret()
	forged, _ := usersig.Sign(other, "alice", time.Now().Add(time.Hour))
	check("another secret's", http.StatusUnauthorized, "Authorization", "Bearer "+forged)
	check("valid", http.StatusOK, "Authorization", valid)
}

func TestClientConfig(t *testing.T) {
	cfg := testConfig(t)
	h := web.New(cfg, nil)
	resp := get(t, h, "/config.json", signIn(t, h)...)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("config.json is cacheable: %q", resp.Header.Get("Cache-Control"))
	}
	var c web.ClientConfig
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := []web.ClientEntry{{User: "door", Name: "Front door", Door: true}, {User: "alice", Name: "Alice"}, {User: "bob", Name: "bob"}}
	if !slices.Equal(c.Directory, want) {
		t.Errorf("directory = %+v, want %+v", c.Directory, want)
	}
	if c.MQTTPath != "/mqtt" || c.MQTTURL != "" || c.Prefix != "intercomd" || c.InviteTimeoutMS != 20000 {
		t.Errorf("config = %+v", c)
	}
	if !slices.Equal(c.DoorUsers, []string{"alice"}) || !slices.Equal(c.Groups["residents"], []string{"alice", "bob"}) {
		t.Errorf("door users %v, groups %v", c.DoorUsers, c.Groups)
	}

	ext, err := config.Parse("ext.yaml", []byte("version: 1\nsignaling:\n  broker: external\n  external: {url: \"wss://mqtt.example.org:8084/mqtt\", username: door}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := web.NewClientConfig(ext).MQTTURL; got != "wss://mqtt.example.org:8084/mqtt" {
		t.Errorf("external broker: mqtt_url = %q", got)
	}
}

func TestSignInLink(t *testing.T) {
	got := web.SignInLink("https://door.local:8443/", "v1.alice.1798761600.3q2-7wAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab")
	if want := "https://door.local:8443/#token=v1.alice.1798761600.3q2-7wAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"; got != want {
		t.Errorf("SignInLink = %q, want %q", got, want)
	}
}

func TestSetConfigAfterReload(t *testing.T) {
	cfg := testConfig(t)
	app := web.New(cfg, nil)
	// The daemon changes its configuration in place on reload; the app
	// serves its own copy until told.
	cfg.Calling.DoorUsers = append(cfg.Calling.DoorUsers, "bob")
	auth := signIn(t, app)
	doors := func() []string {
		var c web.ClientConfig
		if err := json.NewDecoder(get(t, app, "/config.json", auth...).Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c.DoorUsers
	}
	if got := doors(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("before SetConfig: door users %v", got)
	}
	app.SetConfig(cfg)
	if got := doors(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("after SetConfig: door users %v", got)
	}
}
