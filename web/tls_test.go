package web_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/web"
	"github.com/intercomd/intercomd/web/devca"
)

// servePort serves app on one loopback port the way the daemon does: HTTPS
// with h's certificate, plain HTTP for the install page.
func servePort(t *testing.T, app *web.App, h *web.HTTPS) string {
	t.Helper()
	app.SetRoot(h.Root())
	return serveWith(t, h, app, app.PlainHTTP(), web.ServerOptions{})
}

// serveWith serves secure over HTTPS with h's certificate and plain over
// plain HTTP on one loopback port, under o, as the daemon does.
func serveWith(t *testing.T, h *web.HTTPS, secure, plain http.Handler, o web.ServerOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := web.Listen(ln, h.TLSConfig(), plain, o)
	srv := web.NewServer(secure, o)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// trusting is a client that trusts only root, and follows no redirects.
func trusting(root *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func fetch(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDeviceCAPort(t *testing.T) {
	state := t.TempDir()
	h, err := web.NewHTTPS(config.HTTP{}, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := h.Root()
	if root == nil {
		t.Fatal("no device CA without a configured certificate")
	}
	addr := servePort(t, web.New(testConfig(t), nil), h)
	c := trusting(root)

	// HTTPS, trusting the root alone.
	resp, _ := fetch(t, c, "https://"+addr+"/manifest.webmanifest")
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("https manifest: %s", resp.Status)
	}
	if p := resp.TLS.NegotiatedProtocol; p != "" && p != "http/1.1" {
		t.Errorf("ALPN %q: the WebSocket upgrade needs HTTP/1.1", p)
	}
	if got := resp.TLS.PeerCertificates[0]; !bytes.Equal(got.Raw, h.Certificate().Leaf.Raw) {
		t.Errorf("served certificate is not the device CA's")
	}

	// Plain HTTP on the same port: the install page and the root...
	resp, page := fetch(t, c, "http://"+addr+"/install")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("http install: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{web.Fingerprint(root.Raw), `href="ca.crt"`, `href="ca.mobileconfig"`, `href="https://` + addr + `/"`,
		"VPN &amp; Device Management", "Certificate Trust Settings", "Install a certificate", "Front door"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("install page lacks %q", want)
		}
	}
	resp, der := fetch(t, c, "http://"+addr+"/ca.crt")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-x509-ca-cert" || !bytes.Equal(der, root.Raw) {
		t.Errorf("ca.crt: %s %s, DER of the root %v", resp.Status, ct, bytes.Equal(der, root.Raw))
	}
	resp, prof := fetch(t, c, "http://"+addr+"/ca.mobileconfig")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-apple-aspen-config" || !bytes.Contains(prof, []byte("com.apple.security.root")) {
		t.Errorf("ca.mobileconfig: %s %s", resp.Status, ct)
	}
	resp, _ = fetch(t, c, "http://"+addr+"/style.css")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the install page's style.css over plain HTTP: %s", resp.Status)
	}
	// ...and nothing else: the app, its configuration and the broker only
	// over HTTPS.
	for _, p := range []string{"/", "/config.json", "/mqtt", "/app.js?x=1"} {
		resp, _ := fetch(t, c, "http://"+addr+p)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://"+addr+p {
			t.Errorf("plain http %s: %s to %q, want a redirect to HTTPS", p, resp.Status, loc)
		}
	}
	// The install page is over HTTPS too.
	if resp, _ := fetch(t, c, "https://"+addr+"/install"); resp.StatusCode != http.StatusOK {
		t.Errorf("https install: %s", resp.Status)
	}
	// A connection that sends nothing does not hold up others.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if resp, _ := fetch(t, c, "https://"+addr+"/healthz"); resp.StatusCode == 0 {
		t.Errorf("no answer beside an idle connection")
	}
}

// writePair writes a certificate for localhost from a throwaway device CA.
func writePair(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	ca, _, err := devca.LoadOrCreate(t.TempDir(), "other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(devca.NamesFor("", nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca.Cert
}

func TestConfiguredCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	firstRoot := writePair(t, certFile, keyFile)
	state := t.TempDir()
	h, err := web.NewHTTPS(config.HTTP{CertFile: certFile, KeyFile: keyFile}, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Root() != nil {
		t.Errorf("a device CA beside a configured certificate")
	}
	if _, err := os.Stat(filepath.Join(state, devca.RootKey)); !os.IsNotExist(err) {
		t.Errorf("a device CA was made although a certificate is configured")
	}
	app := web.New(testConfig(t), nil)
	addr := servePort(t, app, h)
	if resp, _ := fetch(t, trusting(firstRoot), "https://"+addr+"/manifest.webmanifest"); resp.StatusCode != http.StatusOK {
		t.Fatalf("configured certificate: %s", resp.Status)
	}
	// Nothing to install: the page says so, and there is no root to get.
	resp, page := fetch(t, trusting(firstRoot), "http://"+addr+"/install")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "nothing to install") {
		t.Errorf("install page with a configured certificate: %s", resp.Status)
	}
	if resp, _ := fetch(t, trusting(firstRoot), "http://"+addr+"/ca.crt"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ca.crt with a configured certificate: %s", resp.Status)
	}

	// Renewed on disk (tailscale cert, certbot): served after the next check.
	time.Sleep(10 * time.Millisecond) // a later modification time
	secondRoot := writePair(t, certFile, keyFile)
	h.Check(time.Now())
	if resp, _ := fetch(t, trusting(secondRoot), "https://"+addr+"/manifest.webmanifest"); resp.StatusCode != http.StatusOK {
		t.Errorf("renewed configured certificate not served: %s", resp.Status)
	}
	// Broken on disk: the last good one stays served.
	if err := os.WriteFile(keyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.Check(time.Now())
	if resp, _ := fetch(t, trusting(secondRoot), "https://"+addr+"/manifest.webmanifest"); resp.StatusCode != http.StatusOK {
		t.Errorf("after a broken key file: %s", resp.Status)
	}

	// A configured pair that does not load at start is an error naming it.
	if _, err := web.NewHTTPS(config.HTTP{CertFile: certFile, KeyFile: filepath.Join(dir, "missing.pem")}, state, nil); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("missing key: err = %v, want one naming %s", err, certFile)
	}
}

// TLS 1.2 offered two CBC suites with SHA-1 MACs: a client offering only
// those (and the RSA ones) gets no connection now, and a TLS 1.2 client
// gets a forward-secret AEAD suite.
func TestTLSRefusesCBCSuites(t *testing.T) {
	addr := servePort(t, web.New(testConfig(t), nil), deviceHTTPS(t))
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: cbc})
	if err == nil {
		s := c.ConnectionState().CipherSuite
		c.Close()
		t.Fatalf("a client offering only CBC and RSA key exchange connected with %s", tls.CipherSuiteName(s))
	}
	c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if name := tls.CipherSuiteName(st.CipherSuite); !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")) {
		t.Errorf("TLS 1.2 suite %s", name)
	}
	for _, s := range web.TLSConfig(tls.Certificate{}).CipherSuites {
		for _, bad := range tls.InsecureCipherSuites() {
			if s == bad.ID {
				t.Errorf("insecure suite %s configured", bad.Name)
			}
		}
	}
}

// HTTPS responses carry HSTS, X-Frame-Options and nosniff.
func TestSecureHeaders(t *testing.T) {
	app := web.New(testConfig(t), nil)
	h := deviceHTTPS(t)
	app.SetRoot(h.Root())
	addr := serveWith(t, h, web.Secure(app), app.PlainHTTP(), web.ServerOptions{})
	c := trusting(h.Root())
	for _, p := range []string{"/", "/config.json", "/app.js", "/nope"} {
		resp, _ := fetch(t, c, "https://"+addr+p)
		for k, want := range map[string]string{
			"Strict-Transport-Security": "max-age=31536000",
			"X-Frame-Options":           "DENY",
			"X-Content-Type-Options":    "nosniff",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", p, k, got, want)
			}
		}
	}
	if resp, _ := fetch(t, c, "https://"+addr+"/"); !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the page's CSP: %q", resp.Header.Get("Content-Security-Policy"))
	}
	// Not over plain HTTP, where browsers ignore it.
	resp, _ := fetch(t, c, "http://"+addr+"/install")
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over plain HTTP")
	}
}
