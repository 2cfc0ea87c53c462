package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// readQR reads back a code printed by printQR: dark modules are spaces,
// light ones blocks, two rows a line.
func readQR(out string) [][]bool {
	var bits [][]bool
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			default:
				return nil
			}
		}
		bits = append(bits, top, bottom)
	}
	return bits
}

// qrAfter returns the QR code printed after the line holding marker.
func qrAfter(t *testing.T, out, marker string) [][]bool {
	t.Helper()
	i := strings.Index(out, marker)
	if i < 0 {
		t.Fatalf("output lacks %q:\n%s", marker, out)
	}
	rest := out[i:]
	rest = rest[strings.Index(rest, "\n")+1:]
	return readQR(rest)
}

func sameCode(t *testing.T, got [][]bool, text string) {
	t.Helper()
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	if len(got) < len(want) {
		t.Fatalf("QR code of %d rows, want %d", len(got), len(want))
	}
	for y := range want {
		if fmt.Sprint(got[y]) != fmt.Sprint(want[y]) {
			t.Fatalf("QR code row %d differs from the code of %q", y, text)
		}
	}
}

func TestCertCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "intercomd.yaml")
	state := filepath.Join(dir, "state")
	if err := os.WriteFile(cfg, []byte("version: 1\ndevice: {state_dir: "+state+"}\nhttp: {listen: \"0.0.0.0:8443\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := &cmdEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	url := "http://192.168.1.20:8443/install"
	if err := dispatch(context.Background(), []string{"cert", "--config", cfg, "--url", url}, env); err != nil {
		t.Fatalf("cert: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	b, err := os.ReadFile(filepath.Join(state, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	sum := sha256.Sum256(blk.Bytes)
	fp := strings.ToUpper(strings.Join(strings.Fields(fmt.Sprintf("% x", sum)), ":"))
	if !strings.Contains(out, "SHA-256 "+fp+"\n") {
		t.Errorf("printed fingerprint is not the root's %s:\n%s", fp, out)
	}
	sameCode(t, qrAfter(t, out, url), url)

	// Again: the same root.
	stdout.Reset()
	if err := dispatch(context.Background(), []string{"cert", "--config", cfg}, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), fp) || !strings.Contains(stdout.String(), ":8443/install") {
		t.Errorf("second run:\n%s", stdout.String())
	}
}

func TestUserSigPrintsQR(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "intercomd.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\ndevice: {state_dir: "+filepath.Join(dir, "state")+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := &cmdEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if err := dispatch(context.Background(), []string{"usersig", "--config", cfg, "--user", "alice", "--origin", "https://door.local:8443"}, env); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(stdout.String(), "\n", 3)
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "https://door.local:8443/#token=v1.alice.") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	sameCode(t, readQR(lines[2]), lines[1])
}
