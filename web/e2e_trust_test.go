package web_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserTrustsDeviceCA runs e2e/trust.test.mjs and e2e/push.test.mjs
// (rings to a closed app, which need a service worker): Chromium trusting only
// the device's root, put into an NSS database (certutil, libnss3-tools) in
// a HOME of its own, with no certificate error ignored.
func TestBrowserTrustsDeviceCA(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are long; not with -short")
	}
	chromium := browserEnv(t)
	certutil, err := exec.LookPath("certutil")
	needTool(t, "certutil (apt-get install libnss3-tools)", err)
	bin := buildDaemon(t)
	// The push test answers a ring from a closed app: the page opens and
	// loads while the door rings, which a loaded machine makes slow.
	d := startDevice(t, bin, func(c string) string {
		return strings.Replace(c, "invite_timeout: 10s", "invite_timeout: 30s", 1)
	})
	ctl := d.control(t)

	// The root, as a phone gets it: over plain HTTP from the install page's
	// port, checked against what `intercomd cert` prints.
	plain := strings.Replace(d.url, "https://", "http://", 1)
	resp, err := http.Get(plain + "ca.crt")
	if err != nil {
		t.Fatalf("GET %sca.crt: %v", plain, err)
	}
	der, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Fatalf("ca.crt: %s %s %v", resp.Status, resp.Header.Get("Content-Type"), err)
	}
	out, err := exec.Command(bin, "cert", "--config", d.config).CombinedOutput()
	if err != nil {
		t.Fatalf("intercomd cert: %v\n%s", err, out)
	}
	sum := sha256.Sum256(der)
	fp := strings.ToUpper(strings.Join(strings.Fields(fmt.Sprintf("% x", sum)), ":"))
	if !strings.Contains(string(out), "SHA-256 "+fp) {
		t.Errorf("intercomd cert printed\n%s\nbut the device serves the root %s", out, fp)
	}

	trusted, untrusted := t.TempDir(), t.TempDir()
	crt := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(crt, der, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, home := range []string{trusted, untrusted} {
		db := "sql:" + filepath.Join(home, ".pki", "nssdb")
		if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(certutil, "-d", db, "-N", "--empty-password").CombinedOutput(); err != nil {
			t.Fatalf("certutil -N: %v\n%s", err, out)
		}
		if home == trusted {
			if out, err := exec.Command(certutil, "-d", db, "-A", "-t", "C,,", "-n", "intercomd", "-i", crt).CombinedOutput(); err != nil {
				t.Fatalf("certutil -A: %v\n%s", err, out)
			}
		}
	}
	runNode(t, chromium, d, ctl, 3*time.Minute, []string{"TRUSTED_HOME=" + trusted, "UNTRUSTED_HOME=" + untrusted}, "e2e/trust.test.mjs", "e2e/push.test.mjs")
}
