package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// missing skips the test loudly, or fails it when CI=true.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(what)
	}
	t.Skip("SKIPPING: " + what)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "this test needs root")
	}
}

func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" not found: install the Debian package "+pkg)
	}
	return p
}

func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// script runs one of the packaging scripts with extra environment and
// returns its standard output, trimmed.
func script(ctx context.Context, t testing.TB, name string, env ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(t), "packaging", name))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("packaging/%s %s: %v\n%s", name, strings.Join(env, " "), err, stderr.String())
	}
	t.Logf("packaging/%s %s: %s", name, strings.Join(env, " "), strings.TrimSpace(stderr.String()))
	return strings.TrimSpace(stdout.String())
}

// binary builds intercomd for arch with packaging/build into dir and
// returns its path.
func binary(t testing.TB, arch, dir string) string {
	t.Helper()
	switch arch {
	case "arm64":
		requireTool(t, "aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu")
	case "armhf":
		requireTool(t, "arm-linux-gnueabihf-g++", "g++-arm-linux-gnueabihf")
	}
	ctx := testContext(t, 10*time.Minute)
	return script(ctx, t, "build", "ARCH="+arch, "VERSION="+testVersion, "OUT="+filepath.Join(dir, "intercomd_"+arch))
}

// testVersion is stamped into the binaries and packages the tests build.
const testVersion = "9.8.7~test"

func hostArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	default:
		return runtime.GOARCH
	}
}
