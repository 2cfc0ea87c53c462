// Package pushtest runs a local RFC 8030 push service for tests: the npm
// package web-push-testing (a devDependency in web/package.json, installed
// by npm ci), which checks each push's VAPID signature and decrypts it with
// the keys of the subscription it made. Production code never imports it.
package pushtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Missing skips the test loudly, or fails it under CI, where every
// prerequisite must be installed (scripts/test-deps).
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing %s (scripts/test-deps installs it)", what)
	}
	t.Skipf("SKIP: missing %s (run scripts/test-deps and npm ci in web/)", what)
}

// Service is a local RFC 8030 push service: the npm package
// web-push-testing (web/package.json), which checks the VAPID signature
// and decrypts each push with the keys of the subscription it made.
type Service struct {
	// Base is the service's address, http://localhost:port.
	Base string
}

// Start runs the service until the test ends.
func Start(t testing.TB) *Service {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "web", "node_modules", "web-push-testing", "src", "bin", "server.js")
	if _, err := os.Stat(script); err != nil {
		Missing(t, "web-push-testing in web/node_modules")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, script, fmt.Sprint(port))
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("web-push-testing: %s", out.String())
		}
	})
	ps := &Service{Base: fmt.Sprintf("http://localhost:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(ps.Base+"/status", "application/json", nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return ps
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("web-push-testing did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ps *Service) post(t testing.TB, path string, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(ps.Base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// Sub is a subscription as PushSubscription.toJSON gives it, and the
// service's handle for its messages.
type Sub struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
	ClientHash string `json:"clientHash"`
}

// Subscribe makes a subscription bound to the VAPID public key, as a
// browser's pushManager.subscribe does.
func (ps *Service) Subscribe(t testing.TB, vapidKey string) Sub {
	t.Helper()
	var r struct {
		Data Sub `json:"data"`
	}
	if c := ps.post(t, "/subscribe", map[string]any{"userVisibleOnly": "true", "applicationServerKey": vapidKey}, &r); c != 200 {
		t.Fatalf("subscribe: %d", c)
	}
	return r.Data
}

// Messages returns the decrypted payloads the service holds for a
// subscription.
func (ps *Service) Messages(t testing.TB, s Sub) []string {
	t.Helper()
	var r struct {
		Data struct {
			Messages []string `json:"messages"`
		} `json:"data"`
	}
	if c := ps.post(t, "/get-notifications", map[string]string{"clientHash": s.ClientHash}, &r); c != 200 {
		t.Fatalf("get-notifications: %d", c)
	}
	return r.Data.Messages
}
